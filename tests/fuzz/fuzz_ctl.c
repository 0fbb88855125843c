// SPDX-License-Identifier: MIT
/*
 * fuzz_ctl: the control protocol (docs/FORMAT.md section 6), both sides.
 * Each input goes through
 *   - hoard_ctl_read_request(), the daemon's reader of one request line
 *     (the bytes sent over a socketpair, as a client would);
 *   - hoard_sync_request_decode(), the parser of "push|pull ..." lines:
 *     what it accepts re-encodes (hoard_sync_request_encode) to a line that
 *     decodes to the same fields;
 *   - hoard_ctl_parse_reply(), the client's parser of a reply;
 *   - hoard_sync_result_from_json(), the CLI's reader of a push or pull
 *     reply.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "hoard/ctl.h"
#include "hoard/sync.h"

static char *cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

static void request_reader(const uint8_t *data, size_t size)
{
	static char *buf;
	int sv[2], r;
	size_t len;

	/* more than a socket buffer would block the write: the reader's
	 * long-line path is reached with a line just over the limit */
	if (size > HOARD_CTL_REQUEST_MAX + 4096)
		return;
	if (!buf)
		buf = malloc(HOARD_CTL_REQUEST_MAX + 1);
	if (!buf || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	if (size && write(sv[0], data, size) != (ssize_t)size)
		abort();
	shutdown(sv[0], SHUT_WR);
	r = hoard_ctl_read_request(sv[1], buf);
	if (r == 0) {
		len = strlen(buf);
		if (len > HOARD_CTL_REQUEST_MAX || memchr(buf, '\n', len))
			fuzz_fail("request line of %zu bytes or with a "
				  "newline",
				  len);
	} else if (r != -EMSGSIZE && r != -EINVAL && r != -ENODATA) {
		fuzz_fail("request reader: %s", strerror(-r));
	}
	close(sv[0]);
	close(sv[1]);
}

static void sync_request(const char *line)
{
	struct hoard_sync_request q, back;
	struct hoard_sync_opts o = {0};
	char *again;
	int r = hoard_sync_request_decode(line, &q);

	if (r < 0 && r != -EINVAL && r != -ENOMEM)
		fuzz_fail("sync request decode: %d", r);
	if (r == 0 && (!strcmp(q.op, "push") || !strcmp(q.op, "pull"))) {
		o.s3 = &q.s3;
		o.url = q.url;
		o.volume = q.volume;
		o.ref = q.ref;
		o.jobs = q.jobs;
		o.lazy = q.lazy != 0;
		o.allow_rollback = q.allow_rollback != 0;
		again = hoard_sync_request_encode(q.op, &o);
		if (!again)
			abort();
		if (hoard_sync_request_decode(again, &back) < 0 ||
		    strcmp(back.op, q.op) || strcmp(back.url, q.url) ||
		    strcmp(back.volume, q.volume) || strcmp(back.ref, q.ref) ||
		    back.jobs != q.jobs || !back.lazy != !q.lazy ||
		    !back.allow_rollback != !q.allow_rollback)
			fuzz_fail("sync request does not survive encode and "
				  "decode");
		hoard_sync_request_clear(&back);
		free(again);
	}
	hoard_sync_request_clear(&q);
}

static void reply(const char *text)
{
	char *out = NULL;
	int r = hoard_ctl_parse_reply(text, &out);

	if (r < 0 && r != -EPROTO && r != -ENOMEM && !out)
		fuzz_fail("ERR reply %d without a message", r);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hoard_sync_result res;
	char *s = cstr(data, size);

	request_reader(data, size);
	sync_request(s);
	reply(s);
	hoard_sync_result_from_json(s, &res);
	free(s);
	return 0;
}
