/* SPDX-License-Identifier: MIT */
/*
 * ctl: the daemon's control socket (docs/FORMAT.md section 6).  Layer 6:
 * uses util only; knows nothing of what requests mean.
 *
 * Thread contract: the server runs one thread that accepts connections and
 * a thread per connection that calls the handler, at most
 * HOARD_CTL_WORKERS at a time: the handler is called for several requests
 * at once, and while FUSE threads run; it must do its own locking.  Its
 * threads have every signal blocked.
 */
#ifndef HOARD_CTL_H
#define HOARD_CTL_H

#include <stddef.h>

/* Return 0 and a malloc()ed payload in *ret_out, or -errno and optionally a
 * malloc()ed message in *ret_out. */
/* At most this many requests are served at once. */
#define HOARD_CTL_WORKERS 16

typedef int (*hoard_ctl_handler_fn)(void *ud, const char *request,
				    char **ret_out);

struct hoard_ctl_server;

/* Listen on path (an existing stale socket is replaced) and start the thread. */
int hoard_ctl_server_start(const char *path, hoard_ctl_handler_fn fn, void *ud,
			   struct hoard_ctl_server **ret);
/* Stop the thread, remove the socket; accepts NULL. */
void hoard_ctl_server_stop(struct hoard_ctl_server *s);

/*
 * Send one request and read the reply.  Returns 0 with the payload in
 * *ret_out, -ECONNREFUSED/-ENOENT when no daemon listens, the daemon's
 * -errno on ERR (then *ret_out is always set: the daemon's message, or
 * strerror), or another -errno (then *ret_out is left alone).  ret_out may
 * be NULL.
 */
int hoard_ctl_call(const char *path, const char *request, char **ret_out);
/* The same with another limit on the daemon's silence (requests that run
 * long, such as push and pull). */
int hoard_ctl_call_timeout(const char *path, const char *request,
			   unsigned timeout_s, char **ret_out);

/*
 * The two sides' parsers, public for tests/fuzz (fuzz_ctl) only; the
 * server and the client above are their one user each.
 *
 * hoard_ctl_read_request: read one request line from the connected socket
 * c into buf (HOARD_CTL_REQUEST_MAX + 1 bytes), NUL-terminated without its
 * "\n" (or "\r\n").  0, -EMSGSIZE (too long: the rest of the line was read
 * and dropped), -EINVAL (a NUL byte in it), -ENODATA (nothing sent),
 * -ETIMEDOUT or -errno.
 *
 * hoard_ctl_parse_reply: a whole reply ("OK\n" + payload, or
 * "ERR <errno> <message>\n") to the call's result, as hoard_ctl_call
 * returns it; -EPROTO for anything else.
 */
#define HOARD_CTL_REQUEST_MAX (64 * 1024)
int hoard_ctl_read_request(int c, char *buf);
int hoard_ctl_parse_reply(const char *reply, char **ret_out);

#endif
