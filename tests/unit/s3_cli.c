// SPDX-License-Identifier: MIT
/*
 * s3_cli: the S3 client (hoard/s3.h) from the command line, for
 * tests/e2e/test_s3_client.py.  Configured by the standard AWS environment
 * (hoard_s3_config_load()).  Not installed.
 *
 *   s3_cli [OPTIONS] put   s3://B/KEY FILE        FILE "-": stdin
 *   s3_cli [OPTIONS] get   s3://B/KEY FILE        FILE "-": stdout
 *   s3_cli [OPTIONS] range s3://B/KEY OFF LEN FILE
 *   s3_cli [OPTIONS] head  s3://B/KEY             one JSON object
 *   s3_cli [OPTIONS] ls    s3://B[/PREFIX] [DELIM] one JSON object a line
 *   s3_cli [OPTIONS] rm    s3://B/KEY
 *   s3_cli [OPTIONS] bucket s3://B                does it exist?
 *   s3_cli [OPTIONS] putmany s3://B/PREFIX N SIZE THREADS
 *   s3_cli [OPTIONS] getmany s3://B/PREFIX N SIZE THREADS
 *	N objects PREFIX000000.. of SIZE bytes made from their index, from
 *	THREADS threads sharing one client; getmany checks every byte.
 *
 * OPTIONS: --attempts N, --connect-timeout-ms N, --low-speed-time S,
 * --backoff-ms N, --max-keys N, --curl-sigv4, --stats (counters as JSON on
 * stderr at the end).
 *
 * Exit status: 0 success; 2 usage or -EINVAL; 3 -EACCES; 4 -ENOENT;
 * 5 -ENXIO; 6 -ECONNREFUSED or -EHOSTUNREACH; 7 -ETIMEDOUT; 8 -EBADMSG;
 * 9 -EAGAIN; 1 anything else.  A failure prints one line on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "hoard/s3.h"
#include "hoard/util.h"

struct many {
	struct hoard_s3_client *client;
	const char *bucket;
	const char *prefix;
	unsigned long n;
	size_t size;
	bool get;
	unsigned long next; /* atomic */
	int err;	    /* atomic: first failure */
};

static int exit_code(int r)
{
	switch (-r) {
	case 0:
		return 0;
	case EINVAL:
		return 2;
	case EACCES:
		return 3;
	case ENOENT:
		return 4;
	case ENXIO:
		return 5;
	case ECONNREFUSED:
	case EHOSTUNREACH:
		return 6;
	case ETIMEDOUT:
		return 7;
	case EBADMSG:
		return 8;
	case EAGAIN:
		return 9;
	default:
		return 1;
	}
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static int read_file(const char *path, uint8_t **ret, size_t *ret_len)
{
	size_t len = 0, cap = 1 << 20;
	uint8_t *buf = malloc(cap), *nb;
	int fd = strcmp(path, "-") ? open(path, O_RDONLY) : 0;
	ssize_t n;

	if (fd < 0 || !buf) {
		free(buf);
		return fd < 0 ? -errno : -ENOMEM;
	}
	while ((n = read(fd, buf + len, cap - len)) > 0) {
		len += (size_t)n;
		if (len == cap) {
			nb = realloc(buf, cap *= 2);
			if (!nb) {
				n = -1;
				errno = ENOMEM;
				break;
			}
			buf = nb;
		}
	}
	if (fd)
		close(fd);
	if (n < 0) {
		free(buf);
		return -errno;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

static int write_file(const char *path, const void *data, size_t len)
{
	int fd = strcmp(path, "-")
			 ? open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)
			 : 1;
	int r;

	if (fd < 0)
		return -errno;
	r = hoard_pwrite_full(fd, data, len, 0);
	if (fd == 1 && r == -ESPIPE) { /* a pipe */
		const uint8_t *p = data;

		for (r = 0; len;) {
			ssize_t n = write(1, p, len);

			if (n < 0) {
				r = -errno;
				break;
			}
			p += n;
			len -= (size_t)n;
		}
	}
	if (fd != 1 && close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

static void fill_object(uint8_t *p, size_t n, unsigned long index)
{
	uint64_t s = 0x9e3779b97f4a7c15ULL * (index + 1);

	for (size_t i = 0; i < n; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		p[i] = (uint8_t)(s >> 24);
	}
}

static void *many_thread(void *arg)
{
	struct many *m = arg;
	uint8_t *want = malloc(m->size ? m->size : 1);
	unsigned long i;
	char key[HOARD_S3_MAX_KEY + 1];
	void *got;
	size_t len;
	int r;

	if (!want) {
		__atomic_store_n(&m->err, -ENOMEM, __ATOMIC_RELAXED);
		return NULL;
	}
	while ((i = __atomic_fetch_add(&m->next, 1, __ATOMIC_RELAXED)) < m->n &&
	       !__atomic_load_n(&m->err, __ATOMIC_RELAXED)) {
		snprintf(key, sizeof(key), "%s%06lu", m->prefix, i);
		fill_object(want, m->size, i);
		if (!m->get) {
			r = hoard_s3_put_object(m->client, m->bucket, key, want,
						m->size, NULL);
		} else {
			r = hoard_s3_get_object(m->client, m->bucket, key, &got,
						&len, NULL);
			if (r == 0 &&
			    (len != m->size || memcmp(got, want, len) != 0)) {
				fprintf(stderr, "s3_cli: %s: wrong bytes\n",
					key);
				r = -EBADMSG;
			}
			if (r == 0)
				free(got);
		}
		if (r < 0) {
			fprintf(stderr, "s3_cli: %s\n", hoard_s3_last_error());
			__atomic_store_n(&m->err, r, __ATOMIC_RELAXED);
		}
	}
	free(want);
	return NULL;
}

static int cmd_many(struct hoard_s3_client *c, const char *bucket,
		    const char *prefix, char **argv, bool get)
{
	struct many m = {.client = c,
			 .bucket = bucket,
			 .prefix = prefix,
			 .n = strtoul(argv[0], NULL, 10),
			 .size = strtoul(argv[1], NULL, 10),
			 .get = get};
	unsigned long nthreads = strtoul(argv[2], NULL, 10), i;
	pthread_t tids[64];

	if (nthreads < 1 || nthreads > 64)
		return -EINVAL;
	for (i = 0; i < nthreads; i++)
		if (pthread_create(&tids[i], NULL, many_thread, &m) != 0)
			break;
	nthreads = i;
	for (i = 0; i < nthreads; i++)
		pthread_join(tids[i], NULL);
	return nthreads ? m.err : -EAGAIN;
}

static int ls_entry(const struct hoard_s3_entry *e, void *arg)
{
	(void)arg;
	printf("{\"key\": ");
	json_str(stdout, e->key);
	if (e->is_prefix) {
		printf(", \"prefix\": true}\n");
		return 0;
	}
	printf(", \"size\": %" PRIu64 ", \"mtime\": %" PRId64 ", \"etag\": ",
	       e->size, e->last_modified);
	json_str(stdout, e->etag);
	printf("}\n");
	return 0;
}

static int run(struct hoard_s3_client *c, const char *cmd, const char *bucket,
	       const char *key, int argc, char **argv)
{
	struct hoard_s3_object_info info;
	uint8_t *data;
	size_t len;
	ssize_t n;
	int r;

	if (!strcmp(cmd, "put") && argc == 1) {
		r = read_file(argv[0], &data, &len);
		if (r < 0)
			return r;
		r = hoard_s3_put_object(c, bucket, key, data, len, &info);
		free(data);
		if (r == 0)
			printf("{\"etag\": \"%s\", \"size\": %" PRIu64 "}\n",
			       info.etag, info.size);
		return r;
	}
	if (!strcmp(cmd, "get") && argc == 1) {
		r = hoard_s3_get_object(c, bucket, key, (void **)&data, &len,
					NULL);
		if (r == 0) {
			r = write_file(argv[0], data, len);
			free(data);
		}
		return r;
	}
	if (!strcmp(cmd, "range") && argc == 3) {
		len = strtoul(argv[1], NULL, 10);
		data = malloc(len ? len : 1);
		if (!data)
			return -ENOMEM;
		n = hoard_s3_get_range(c, bucket, key,
				       strtoull(argv[0], NULL, 10), len, data);
		r = n < 0 ? (int)n : write_file(argv[2], data, (size_t)n);
		free(data);
		return r;
	}
	if (!strcmp(cmd, "head") && argc == 0) {
		r = hoard_s3_head_object(c, bucket, key, &info);
		if (r == 0)
			printf("{\"size\": %" PRIu64 ", \"mtime\": %" PRId64
			       ", \"etag\": \"%s\"}\n",
			       info.size, info.last_modified, info.etag);
		return r;
	}
	if (!strcmp(cmd, "ls") && argc <= 1)
		return hoard_s3_list(c, bucket, key, argc ? argv[0] : NULL,
				     ls_entry, NULL);
	if (!strcmp(cmd, "rm") && argc == 0)
		return hoard_s3_delete_object(c, bucket, key);
	if (!strcmp(cmd, "bucket") && argc == 0)
		return hoard_s3_bucket_check(c, bucket);
	if ((!strcmp(cmd, "putmany") || !strcmp(cmd, "getmany")) && argc == 3)
		return cmd_many(c, bucket, key, argv, cmd[0] == 'g');
	fprintf(stderr, "s3_cli: bad command or arguments (see its source)\n");
	return -EINVAL;
}

static int parse_options(int *argc, char ***argv, struct hoard_s3_config *cfg,
			 bool *stats)
{
	while (*argc > 0 && !strncmp((*argv)[0], "--", 2)) {
		const char *o = (*argv)[0], *v = *argc > 1 ? (*argv)[1] : NULL;
		unsigned long x = v ? strtoul(v, NULL, 10) : 0;
		int used = 2;

		if (!strcmp(o, "--curl-sigv4")) {
			cfg->curl_sigv4 = true;
			used = 1;
		} else if (!strcmp(o, "--stats")) {
			*stats = true;
			used = 1;
		} else if (!v) {
			return -EINVAL;
		} else if (!strcmp(o, "--attempts")) {
			cfg->max_attempts = (unsigned)x;
		} else if (!strcmp(o, "--connect-timeout-ms")) {
			cfg->connect_timeout_ms = (unsigned)x;
		} else if (!strcmp(o, "--low-speed-time")) {
			cfg->low_speed_time_s = (unsigned)x;
		} else if (!strcmp(o, "--backoff-ms")) {
			cfg->backoff_base_ms = (unsigned)x;
		} else if (!strcmp(o, "--max-keys")) {
			cfg->list_max_keys = (unsigned)x;
		} else {
			return -EINVAL;
		}
		*argc -= used;
		*argv += used;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct hoard_s3_config cfg;
	struct hoard_s3_client *c = NULL;
	struct hoard_s3_stats st;
	char err[256], *bucket = NULL, *key = NULL;
	bool stats = false;
	int r;

	r = hoard_s3_config_load(&cfg, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "s3_cli: %s\n", err);
		return exit_code(r);
	}
	argc--;
	argv++;
	r = parse_options(&argc, &argv, &cfg, &stats);
	if (r < 0 || argc < 2) {
		fprintf(stderr, "usage: s3_cli [OPTIONS] COMMAND s3://BUCKET"
				"[/KEY] ARGS... (see tests/unit/s3_cli.c)\n");
		hoard_s3_config_clear(&cfg);
		return 2;
	}
	r = hoard_s3_url_parse(argv[1], &bucket, &key);
	if (r < 0) {
		fprintf(stderr, "s3_cli: bad S3 URL '%s'\n", argv[1]);
		goto out;
	}
	r = hoard_s3_client_new(&cfg, &c);
	if (r < 0) {
		fprintf(stderr, "s3_cli: cannot make a client: %s\n",
			strerror(-r));
		goto out;
	}
	r = run(c, argv[0], bucket, *key || strcmp(argv[0], "ls") ? key : NULL,
		argc - 2, argv + 2);
	if (r < 0 && *hoard_s3_last_error())
		fprintf(stderr, "s3_cli: %s\n", hoard_s3_last_error());
	else if (r < 0)
		fprintf(stderr, "s3_cli: %s\n", strerror(-r));
	if (stats) {
		hoard_s3_client_stats(c, &st);
		fprintf(stderr,
			"{\"requests\": %" PRIu64 ", \"retries\": %" PRIu64
			", \"bytes_up\": %" PRIu64 ", \"bytes_down\": %" PRIu64
			"}\n",
			st.requests, st.retries, st.bytes_up, st.bytes_down);
	}
out:
	hoard_s3_client_free(c);
	hoard_s3_config_clear(&cfg);
	free(bucket);
	free(key);
	return exit_code(r);
}
