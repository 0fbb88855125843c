// SPDX-License-Identifier: MIT
/*
 * ctl: the daemon's control socket (ctl.h; docs/FORMAT.md section 6).
 *
 * Server: one thread polls the listening socket and a wake-up pipe and
 * hands each connection to a worker thread of its own, at most
 * CTL_WORKERS at a time (more wait in the listen backlog until one ends).
 * A worker reads one request line (at most CTL_REQUEST_MAX bytes), calls
 * the handler, writes "OK\n" + payload or "ERR <errno> <message>\n",
 * closes and ends; the accepting thread joins it when it takes its slot
 * again.  A connection that sends nothing is dropped after
 * CTL_SERVER_TIMEOUT_S, so a stuck client holds a worker for no longer.
 * hoard_ctl_server_stop() writes to the pipe, joins the accepting thread,
 * then every worker (after its request), and removes the socket.
 *
 * The socket is created with bind() and made 0600 before listen(): until
 * listen() every connect() is refused, so there is no moment when another
 * user could connect.
 *
 * Client: connect, send the line, shut down the sending side, read until
 * the server closes (at most CTL_REPLY_MAX bytes, CTL_CLIENT_TIMEOUT_S of
 * silence).  On ERR, *ret_out always gets a message (possibly strerror's),
 * so a caller can tell the daemon's -ENOENT from "no socket": only the
 * latter leaves *ret_out untouched.
 *
 * Paths longer than sun_path (108 bytes) are reached through
 * /proc/self/fd/<dirfd>/<name>.  SIGPIPE is avoided with MSG_NOSIGNAL.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "hoard/ctl.h"
#include "hoard/util.h"

#define CTL_REQUEST_MAX	     HOARD_CTL_REQUEST_MAX
#define CTL_DISCARD_MAX	     (64u << 20) /* of an oversized request */
#define CTL_REPLY_MAX	     (256u << 20)
#define CTL_SERVER_TIMEOUT_S 10
#define CTL_CLIENT_TIMEOUT_S 120
#define CTL_BACKLOG	     16
#define CTL_WORKERS	     HOARD_CTL_WORKERS

struct hoard_ctl_server;

/* A connection being served.  used: only the accepting thread (and
 * stop, after joining it) reads or writes it; done: protected by mu. */
struct ctl_worker {
	struct hoard_ctl_server *s;
	pthread_t thread;
	int c; /* the connection; the worker closes it */
	bool used, done;
};

struct hoard_ctl_server {
	int fd;	     /* listening socket */
	int wake[2]; /* pipe: a byte in wake[0] means stop */
	char *path;
	hoard_ctl_handler_fn fn;
	void *ud;
	pthread_t thread;
	pthread_mutex_t mu; /* the workers' done flags */
	pthread_cond_t cv;  /* with mu: a worker is done */
	struct ctl_worker w[CTL_WORKERS];
};

/* ---- addresses and I/O helpers ---- */

/*
 * Fill sa for path.  A path too long for sun_path goes through
 * /proc/self/fd/N/<name>; then *ret_dirfd is the directory's O_PATH fd,
 * which the caller closes after bind()/connect() (else it is -1).
 */
static int ctl_addr(const char *path, struct sockaddr_un *sa,
		    socklen_t *ret_len, int *ret_dirfd)
{
	size_t n = strlen(path);
	const char *slash, *name;
	char *dir;
	int dfd;

	if (!n)
		return -EINVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (n < sizeof(sa->sun_path)) {
		memcpy(sa->sun_path, path, n + 1);
		*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
				       n + 1);
		*ret_dirfd = -1;
		return 0;
	}
	slash = strrchr(path, '/');
	if (!slash)
		return -ENAMETOOLONG;
	name = slash + 1;
	dir = strndup(path, (size_t)(slash - path) + 1);
	if (!dir)
		return -ENOMEM;
	dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (dfd < 0)
		return -errno;
	n = (size_t)snprintf(sa->sun_path, sizeof(sa->sun_path),
			     "/proc/self/fd/%d/%s", dfd, name);
	if (n >= sizeof(sa->sun_path)) {
		close(dfd);
		return -ENAMETOOLONG;
	}
	*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	*ret_dirfd = dfd;
	return 0;
}

/* bind (bind=true) or connect fd to path; 0 or -errno. */
static int ctl_attach(int fd, const char *path, bool bind_it)
{
	struct sockaddr_un sa;
	socklen_t len = 0;
	int dfd = -1, r;

	r = ctl_addr(path, &sa, &len, &dfd);
	if (r < 0)
		return r;
	if (bind_it)
		r = bind(fd, (struct sockaddr *)&sa, len);
	else
		r = connect(fd, (struct sockaddr *)&sa, len);
	r = r < 0 ? -errno : 0;
	if (dfd >= 0)
		close(dfd);
	/* a store path that is no directory has no daemon either: the
	 * caller's open of the store then names the problem */
	if (!bind_it && r == -ENOTDIR)
		r = -ENOENT;
	return r;
}

static int set_timeouts(int fd, int seconds)
{
	struct timeval tv = {.tv_sec = seconds};

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	return 0;
}

static int send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- server ---- */

/* See ctl.h. */
int hoard_ctl_read_request(int c, char *buf)
{
	size_t len = 0, dropped = 0;
	bool eol = false;
	char sink[4096];

	while (!eol) {
		bool keep = len < CTL_REQUEST_MAX;
		char *dst = keep ? buf + len : sink, *nl;
		size_t room = keep ? CTL_REQUEST_MAX - len : sizeof(sink);
		ssize_t n = recv(c, dst, room, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		if (n == 0)
			break;
		nl = memchr(dst, '\n', (size_t)n);
		eol = nl != NULL;
		if (keep) {
			len += nl ? (size_t)(nl - dst) : (size_t)n;
			continue;
		}
		dropped += nl ? (size_t)(nl - dst) : (size_t)n;
		if (dropped > CTL_DISCARD_MAX)
			break;
	}
	if (dropped)
		return -EMSGSIZE;
	if (!eol && !len)
		return -ENODATA;
	if (len && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	if (memchr(buf, '\0', len))
		return -EINVAL;
	return 0;
}

static void reply_err(int c, int err, const char *msg)
{
	char line[512];
	int n;

	n = snprintf(line, sizeof(line), "ERR %d %s", err,
		     msg && *msg ? msg : strerror(err));
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	for (int i = 0; i < n; i++) /* the message is one line */
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	send_all(c, line, (size_t)n);
}

static void serve_one(struct hoard_ctl_server *s, int c)
{
	char *req, *out = NULL;
	int r;

	if (set_timeouts(c, CTL_SERVER_TIMEOUT_S) < 0)
		return;
	req = malloc(CTL_REQUEST_MAX + 1);
	if (!req) {
		reply_err(c, ENOMEM, NULL);
		return;
	}
	r = hoard_ctl_read_request(c, req);
	if (r == -EMSGSIZE) {
		reply_err(c, EMSGSIZE, "request line longer than 65536 bytes");
		goto out_free_req;
	} else if (r == -EINVAL) {
		reply_err(c, EINVAL, "NUL byte in request");
		goto out_free_req;
	} else if (r < 0) {
		hoard_log(LOG_DEBUG, "ctl: dropping a connection: %s",
			  strerror(-r));
		goto out_free_req;
	}

	r = s->fn(s->ud, req, &out);
	if (r < 0) {
		reply_err(c, -r, out);
	} else if (send_all(c, "OK\n", 3) == 0 && out) {
		r = send_all(c, out, strlen(out));
		if (r < 0)
			hoard_log(LOG_DEBUG, "ctl: reply not sent: %s",
				  strerror(-r));
	}
	free(out);
out_free_req:
	free(req);
}

static void *work(void *arg)
{
	struct ctl_worker *w = arg;
	struct hoard_ctl_server *s = w->s;

	serve_one(s, w->c);
	close(w->c);
	pthread_mutex_lock(&s->mu);
	w->done = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/*
 * A free worker slot (a done worker is joined first), waiting for one
 * while all are busy; NULL once the wake-up pipe says stop.
 */
static struct ctl_worker *free_worker(struct hoard_ctl_server *s)
{
	struct ctl_worker *found = NULL;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		for (int i = 0; i < CTL_WORKERS && !found; i++) {
			struct ctl_worker *w = &s->w[i];

			if (w->used && w->done) {
				pthread_join(w->thread, NULL);
				w->used = false;
			}
			if (!w->used)
				found = w;
		}
		if (found)
			break;
		/* all busy: wake up now and then to see the pipe */
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200 * 1000 * 1000;
		if (ts.tv_nsec >= 1000 * 1000 * 1000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000 * 1000 * 1000;
		}
		pthread_cond_timedwait(&s->cv, &s->mu, &ts);
		pthread_mutex_unlock(&s->mu);
		struct pollfd p = {.fd = s->wake[0], .events = POLLIN};

		if (poll(&p, 1, 0) > 0)
			return NULL;
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return found;
}

static void *serve(void *arg)
{
	struct hoard_ctl_server *s = arg;

	for (;;) {
		struct pollfd p[2] = {
			{.fd = s->fd, .events = POLLIN},
			{.fd = s->wake[0], .events = POLLIN},
		};
		struct ctl_worker *w = free_worker(s);
		int c, r;

		if (!w)
			break;
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			hoard_log(LOG_ERR, "ctl: poll: %m");
			break;
		}
		if (p[1].revents)
			break;
		c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM)
				poll(NULL, 0, 100); /* let it pass */
			continue; /* EAGAIN, EINTR, ECONNABORTED, ... */
		}
		*w = (struct ctl_worker){.s = s, .c = c, .used = true};
		/* the worker inherits this thread's mask: every signal blocked */
		r = pthread_create(&w->thread, NULL, work, w);
		if (r != 0) {
			w->used = false;
			reply_err(c, r, "cannot start a thread");
			close(c);
		}
	}
	return NULL;
}

/* Remove a stale socket at path; -EADDRINUSE if something listens there,
 * -EEXIST if path is not a socket. */
static int remove_stale(const char *path)
{
	struct stat sb;
	int fd, r;

	if (lstat(path, &sb) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(sb.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = ctl_attach(fd, path, false);
	close(fd);
	if (r == 0)
		return -EADDRINUSE;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static int start_thread(struct hoard_ctl_server *s)
{
	sigset_t all, old;
	int r;

	/* signals go to the daemon's other threads, never to this one */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&s->thread, NULL, serve, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -r;
}

int hoard_ctl_server_start(const char *path, hoard_ctl_handler_fn fn, void *ud,
			   struct hoard_ctl_server **ret)
{
	struct hoard_ctl_server *s;
	int r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->fn = fn;
	s->ud = ud;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->path = strdup(path);
	if (!s->path) {
		r = -ENOMEM;
		goto out_free_server;
	}
	if (pipe2(s->wake, O_CLOEXEC) < 0) {
		r = -errno;
		goto out_free_path;
	}
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->fd < 0) {
		r = -errno;
		goto out_close_pipe;
	}
	r = remove_stale(path);
	if (r < 0)
		goto out_close_socket;
	r = ctl_attach(s->fd, path, true);
	if (r < 0)
		goto out_close_socket;
	if (chmod(path, 0600) < 0 || listen(s->fd, CTL_BACKLOG) < 0) {
		r = -errno;
		goto out_unlink;
	}
	r = start_thread(s);
	if (r < 0)
		goto out_unlink;
	*ret = s;
	return 0;

out_unlink:
	unlink(path);
out_close_socket:
	close(s->fd);
out_close_pipe:
	close(s->wake[0]);
	close(s->wake[1]);
out_free_path:
	free(s->path);
out_free_server:
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
	return r;
}

void hoard_ctl_server_stop(struct hoard_ctl_server *s)
{
	ssize_t n;

	if (!s)
		return;
	do
		n = write(s->wake[1], "x", 1);
	while (n < 0 && errno == EINTR);
	pthread_join(s->thread, NULL);
	/* the accepting thread is gone: only stop reads the used flags */
	for (int i = 0; i < CTL_WORKERS; i++)
		if (s->w[i].used)
			pthread_join(s->w[i].thread, NULL);
	close(s->fd);
	close(s->wake[0]);
	close(s->wake[1]);
	unlink(s->path);
	free(s->path);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* ---- client ---- */

/* Read until EOF into a malloc()ed NUL-terminated buffer. */
static int read_all(int fd, char **ret_buf)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap), *nb;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (cap - len < 2) {
			if (cap >= CTL_REPLY_MAX) {
				free(buf);
				return -EMSGSIZE;
			}
			nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		n = recv(fd, buf + len, cap - len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno == EAGAIN ? ETIMEDOUT : errno;

			free(buf);
			return -e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret_buf = buf;
	return 0;
}

/* See ctl.h. */
int hoard_ctl_parse_reply(const char *reply, char **ret_out)
{
	const char *msg;
	char *end, *out;
	long e;

	if (!strncmp(reply, "OK", 2) && (reply[2] == '\n' || !reply[2])) {
		out = strdup(reply[2] ? reply + 3 : "");
		if (!out)
			return -ENOMEM;
		if (ret_out)
			*ret_out = out;
		else
			free(out);
		return 0;
	}
	if (strncmp(reply, "ERR ", 4))
		return -EPROTO;
	errno = 0;
	e = strtol(reply + 4, &end, 10);
	if (errno || end == reply + 4 || e <= 0 || e > 4095 ||
	    (*end != ' ' && *end != '\n' && *end))
		return -EPROTO;
	msg = *end == ' ' ? end + 1 : end;
	out = strndup(msg, strcspn(msg, "\n"));
	if (out && !*out) {
		free(out);
		out = strdup(strerror((int)e));
	}
	if (!out)
		return -ENOMEM;
	if (ret_out)
		*ret_out = out;
	else
		free(out);
	return -(int)e;
}

int hoard_ctl_call(const char *path, const char *request, char **ret_out)
{
	return hoard_ctl_call_timeout(path, request, CTL_CLIENT_TIMEOUT_S,
				      ret_out);
}

int hoard_ctl_call_timeout(const char *path, const char *request,
			   unsigned timeout_s, char **ret_out)
{
	size_t len = strlen(request);
	char *reply = NULL;
	int fd, r;

	if (memchr(request, '\n', len) && request[len - 1] != '\n')
		return -EINVAL; /* one line only */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = set_timeouts(fd, (int)timeout_s);
	if (r < 0)
		goto out_close;
	r = ctl_attach(fd, path, false);
	if (r == -EAGAIN)
		r = -ETIMEDOUT; /* the backlog stayed full */
	if (r < 0)
		goto out_close;

	/* A failed send still lets the server's reply (e.g. an ERR about
	 * the request) be read. */
	r = send_all(fd, request, len);
	if (r == 0 && (!len || request[len - 1] != '\n'))
		r = send_all(fd, "\n", 1);
	if (r < 0 && r != -EPIPE && r != -ECONNRESET)
		goto out_close;
	shutdown(fd, SHUT_WR);

	r = read_all(fd, &reply);
	if (r < 0)
		goto out_close;
	r = hoard_ctl_parse_reply(reply, ret_out);
	free(reply);
out_close:
	close(fd);
	return r;
}
