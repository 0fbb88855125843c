// SPDX-License-Identifier: MIT
/*
 * syncreq: what push and pull print (sync.h) and the control-socket
 * requests that carry them to a running daemon (docs/FORMAT.md section 6).
 *
 * A request is one line of words separated by single spaces; each word is
 * percent-encoded (every byte <= 0x20, 0x7f and '%' as %XX), so URLs and
 * secrets with spaces survive.  The S3 settings travel as key=value words
 * because the daemon's environment is not the caller's.  The line holds the
 * caller's secret key: it goes over the 0600 socket only and is never
 * logged.
 */
#include <errno.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "hoard/json.h"
#include "hoard/sync.h"
#include "hoard/util.h"

/* ---- output ------------------------------------------------------------------ */

/* The figures of a push and of a pull, in the order of their JSON. */
enum result_kind { RK_U64, RK_BOOL, RK_KEY_ID };

struct result_field {
	const char *name;
	size_t off;
	enum result_kind kind;
};

/* clang-format off */
#define RU(x) {#x, offsetof(struct hoard_sync_result, x), RK_U64}
#define RB(x) {#x, offsetof(struct hoard_sync_result, x), RK_BOOL}
/* the signing key's id as a string, or null when unsigned */
#define RK {"signed_by", offsetof(struct hoard_sync_result, key_id), RK_KEY_ID}
static const struct result_field push_fields[] = {
	RU(files), RU(logical_bytes), RU(chunks), RU(chunks_new),
	RU(packs_new), RU(bytes_new), RU(bytes_dedup), RU(chunks_hashed),
	RB(manifest_new),
	RB(ref_updated), RK, RU(requests), RU(retries), RU(bytes_up),
	RU(bytes_down),
};
static const struct result_field pull_fields[] = {
	RU(files), RU(logical_bytes), RU(chunks), RU(chunks_fetched),
	RU(bytes_fetched), RU(range_gets), RU(added), RU(replaced),
	RU(identical), RU(kept_newer), RU(conflicts), RK, RU(requests),
	RU(retries), RU(bytes_up), RU(bytes_down),
};
/* clang-format on */
#undef RU
#undef RB
#undef RK

static json_t *result_value(const struct hoard_sync_result *x,
			    const struct result_field *f)
{
	const char *p = (const char *)x + f->off;

	switch (f->kind) {
	case RK_BOOL:
		return json_boolean(*(const bool *)p);
	case RK_KEY_ID:
		return *p ? json_string(p) : json_null();
	default:
		return hoard_json_u64(*(const uint64_t *)p);
	}
}

char *hoard_sync_result_json(const struct hoard_sync_result *x)
{
	const struct result_field *f = x->pull ? pull_fields : push_fields;
	size_t n = x->pull ? sizeof(pull_fields) / sizeof(pull_fields[0])
			   : sizeof(push_fields) / sizeof(push_fields[0]);
	json_t *o = json_pack("{s:s,s:s}", "op", x->pull ? "pull" : "push",
			      "manifest", x->manifest);
	int r = o ? 0 : -1;

	for (size_t i = 0; r == 0 && i < n; i++)
		r = json_object_set_new(o, f[i].name, result_value(x, &f[i]));
	if (r == 0)
		r = json_object_set_new(
			o, "seconds",
			hoard_json_real3((double)x->elapsed_ns / 1e9));
	if (r < 0) {
		json_decref(o);
		return NULL;
	}
	return hoard_json_dump(o, true);
}

static void human(uint64_t b, char *out, size_t n)
{
	static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)b;
	int i = 0;

	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	snprintf(out, n, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

char *hoard_sync_result_text(const struct hoard_sync_result *x)
{
	char a[32], b[32], c[32];
	double secs = (double)x->elapsed_ns / 1e9;
	char *out;
	int n;

	if (x->pull) {
		human(x->bytes_fetched, a, sizeof(a));
		human(x->logical_bytes, b, sizeof(b));
		n = asprintf(&out,
			     "pulled %llu files (%s): fetched %s in %llu "
			     "chunks; %llu added, %llu replaced, %llu "
			     "identical, %llu kept (local newer); %llu "
			     "requests in %.1f s\n",
			     (unsigned long long)x->files, b, a,
			     (unsigned long long)x->chunks_fetched,
			     (unsigned long long)x->added,
			     (unsigned long long)x->replaced,
			     (unsigned long long)x->identical,
			     (unsigned long long)x->kept_newer,
			     (unsigned long long)x->requests, secs);
	} else {
		human(x->bytes_new, a, sizeof(a));
		human(x->bytes_dedup, b, sizeof(b));
		human(x->logical_bytes, c, sizeof(c));
		n = asprintf(
			&out,
			"pushed %llu files (%s): %s new in %llu packs, "
			"%s deduplicated away; %llu requests in %.1f s%s\n",
			(unsigned long long)x->files, c, a,
			(unsigned long long)x->packs_new, b,
			(unsigned long long)x->requests, secs,
			x->ref_updated ? "" : " (ref unchanged)");
	}
	return n < 0 ? NULL : out;
}

/* ---- control-socket requests -------------------------------------------------- */

static int put_word(FILE *f, const char *w)
{
	fputc(' ', f);
	for (const unsigned char *p = (const unsigned char *)w; *p; p++) {
		if (*p <= 0x20 || *p == 0x7f || *p == '%')
			fprintf(f, "%%%02X", *p);
		else
			fputc(*p, f);
	}
	return 0;
}

static void put_kv(FILE *f, const char *k, const char *v)
{
	char *w;

	if (!v)
		return;
	if (asprintf(&w, "%s=%s", k, v) < 0)
		return;
	put_word(f, w);
	memset(w, 0, strlen(w));
	free(w);
}

static void put_kn(FILE *f, const char *k, unsigned v)
{
	char w[64];

	snprintf(w, sizeof(w), "%s=%u", k, v);
	put_word(f, w);
}

char *hoard_sync_request_encode(const char *op, const struct hoard_sync_opts *o)
{
	const struct hoard_s3_config *c = o->s3;
	char *line = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&line, &len);

	if (!f)
		return NULL;
	fputs(op, f);
	put_word(f, o->url);
	put_word(f, o->volume);
	put_word(f, o->ref ? o->ref : HOARD_SYNC_DEFAULT_REF);
	put_kn(f, "jobs", o->jobs);
	if (o->lazy)
		put_kn(f, "lazy", 1);
	if (o->allow_rollback)
		put_kn(f, "allow_rollback", 1);
	if (o->sign) {
		char hex[2 * HOARD_SIGN_SEED_SIZE + 1];

		hoard_hex(o->sign->seed, sizeof(o->sign->seed), hex);
		put_kv(f, "sign", hex);
		memset(hex, 0, sizeof(hex));
	}
	for (size_t i = 0; i < o->n_trust; i++) {
		char hex[2 * HOARD_SIGN_PUB_SIZE + 1];

		hoard_hex(o->trust[i].b, sizeof(o->trust[i].b), hex);
		put_kv(f, "trust", hex);
	}
	put_kv(f, "ak", c->access_key_id);
	put_kv(f, "sk", c->secret_access_key);
	put_kv(f, "st", c->session_token);
	put_kv(f, "region", c->region);
	put_kv(f, "endpoint", c->endpoint);
	put_kv(f, "ca", c->ca_bundle);
	put_kn(f, "attempts", c->max_attempts);
	put_kn(f, "connect_ms", c->connect_timeout_ms);
	put_kn(f, "backoff_base", c->backoff_base_ms);
	put_kn(f, "backoff_max", c->backoff_max_ms);
	if (fclose(f) != 0) {
		free(line);
		return NULL;
	}
	return line;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decode the word at *p (up to a space or the end); malloc()ed. */
static char *get_word(const char **p)
{
	const char *s = *p;
	size_t n = strcspn(s, " \n");
	char *w = malloc(n + 1), *o = w;

	if (!w)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n + 1 && hexval(s[i + 1]) >= 0 &&
		    hexval(s[i + 2]) >= 0) {
			*o++ = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	*p = s + n + (s[n] == ' ');
	return w;
}

static int set_num(const char *v, unsigned *ret)
{
	char *end;
	unsigned long x = strtoul(v, &end, 10);

	if (!*v || *end || x > 1000000000ul)
		return -EINVAL;
	*ret = (unsigned)x;
	return 0;
}

static int set_sign(const char *v, struct hoard_sync_request *q)
{
	uint8_t seed[HOARD_SIGN_SEED_SIZE];
	int r = hoard_sign_hex32(v, seed);

	if (r == 0)
		r = hoard_sign_from_seed(seed, &q->sign);
	memset(seed, 0, sizeof(seed));
	q->has_sign = r == 0;
	return r;
}

static int add_trust(const char *v, struct hoard_sync_request *q)
{
	struct hoard_pubkey *x;

	if (q->n_trust >= HOARD_TRUST_MAX)
		return -EINVAL;
	x = reallocarray(q->trust, q->n_trust + 1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	q->trust = x;
	return hoard_sign_hex32(v, x[q->n_trust++].b) == 0 ? 0 : -EINVAL;
}

int hoard_sync_request_decode(const char *line, struct hoard_sync_request *q)
{
	const char *p = line;
	char *w;
	int r = 0;

	memset(q, 0, sizeof(*q));
	hoard_s3_config_defaults(&q->s3);
	w = get_word(&p);
	if (!w)
		return -ENOMEM;
	snprintf(q->op, sizeof(q->op), "%s", w);
	free(w);
	q->url = get_word(&p);
	q->volume = get_word(&p);
	q->ref = get_word(&p);
	if (!q->url || !q->volume || !q->ref)
		return -ENOMEM;
	if (!*q->url || !*q->volume || !*q->ref)
		return -EINVAL;
	while (r == 0 && *p && *p != '\n') {
		char *v;

		w = get_word(&p);
		if (!w)
			return -ENOMEM;
		v = strchr(w, '=');
		if (!v) {
			free(w);
			return -EINVAL;
		}
		*v++ = '\0';
#define STR(k, field)                                                          \
	else if (!strcmp(w, k))                                                \
	{                                                                      \
		free(q->s3.field);                                             \
		q->s3.field = strdup(v);                                       \
		if (!q->s3.field)                                              \
			r = -ENOMEM;                                           \
	}
		if (!strcmp(w, "jobs"))
			r = set_num(v, &q->jobs);
		else if (!strcmp(w, "lazy"))
			r = set_num(v, &q->lazy);
		else if (!strcmp(w, "allow_rollback"))
			r = set_num(v, &q->allow_rollback);
		else if (!strcmp(w, "sign"))
			r = set_sign(v, q);
		else if (!strcmp(w, "trust"))
			r = add_trust(v, q);
		STR("ak", access_key_id)
		STR("sk", secret_access_key)
		STR("st", session_token)
		STR("region", region)
		STR("endpoint", endpoint)
		STR("ca", ca_bundle)
		else if (!strcmp(w, "attempts"))
			r = set_num(v, &q->s3.max_attempts);
		else if (!strcmp(w, "connect_ms"))
			r = set_num(v, &q->s3.connect_timeout_ms);
		else if (!strcmp(w, "backoff_base"))
			r = set_num(v, &q->s3.backoff_base_ms);
		else if (!strcmp(w, "backoff_max"))
			r = set_num(v, &q->s3.backoff_max_ms);
		else r = -EINVAL;
#undef STR
		memset(w, 0, strlen(w) + 1 + strlen(v));
		free(w);
	}
	if (r == 0 && (!q->s3.region || q->s3.max_attempts == 0))
		r = -EINVAL;
	return r;
}

void hoard_sync_request_clear(struct hoard_sync_request *q)
{
	if (!q)
		return;
	hoard_s3_config_clear(&q->s3);
	hoard_sign_key_wipe(&q->sign);
	free(q->trust);
	free(q->url);
	free(q->volume);
	free(q->ref);
	memset(q, 0, sizeof(*q));
}

/* ---- reading a result back ------------------------------------------------------ */

int hoard_sync_result_from_json(const char *json, struct hoard_sync_result *x)
{
	json_t *o = hoard_json_parse_object(json);
	const char *op, *m;
	double secs = 0;
	int r = -EBADMSG;

	memset(x, 0, sizeof(*x));
	if (!o)
		return -EBADMSG;
	op = json_string_value(json_object_get(o, "op"));
	if (!op || (strcmp(op, "push") && strcmp(op, "pull")))
		goto out_put;
	x->pull = !strcmp(op, "pull");
	m = json_string_value(json_object_get(o, "manifest"));
	if (m)
		snprintf(x->manifest, sizeof(x->manifest), "%s", m);
	for (int t = 0; t < 2; t++) {
		const struct result_field *f = t ? pull_fields : push_fields;
		size_t n = t ? sizeof(pull_fields) / sizeof(pull_fields[0])
			     : sizeof(push_fields) / sizeof(push_fields[0]);

		for (size_t i = 0; i < n; i++) {
			char *p = (char *)x + f[i].off;
			json_t *v = json_object_get(o, f[i].name);
			int e = 0;

			if (f[i].kind == RK_BOOL)
				e = hoard_json_get_bool(o, f[i].name, true,
							(bool *)p);
			else if (f[i].kind == RK_U64)
				e = hoard_json_get_u64(o, f[i].name, true,
						       (uint64_t *)p);
			else if (json_is_string(v))
				snprintf(p, sizeof(x->key_id), "%s",
					 json_string_value(v));
			else if (v && !json_is_null(v))
				e = -EBADMSG;
			if (e < 0 && e != -ENOENT)
				goto out_put;
		}
	}
	r = hoard_json_get_real(o, "seconds", true, &secs);
	/* out of range (or NaN) would be undefined in the cast */
	if (r == 0 && secs > 0 && secs < 1e9)
		x->elapsed_ns = (uint64_t)(secs * 1e9);
	if (r == -ENOENT)
		r = 0;
out_put:
	json_decref(o);
	return r;
}
