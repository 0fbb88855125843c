// SPDX-License-Identifier: MIT
/*
 * s3conf: where the S3 client's settings come from (the standard AWS
 * environment variables and ~/.aws files, resolved as the AWS CLI does; see
 * hoard_s3_config_load() in s3.h), s3:// URLs and bucket names.
 *
 * The files are INI as botocore reads them: "[section]" headers, "key =
 * value" (or "key: value") lines, keys case-insensitive, values trimmed and
 * taken as they are (no quotes, no inline comments), full-line comments
 * starting with '#' or ';', indented lines continue the previous value (the
 * nested "s3 =" blocks; hoard reads none of them).  The credentials file
 * names a profile "[NAME]", the config file "[profile NAME]" ("[default]"
 * for the default profile).
 */
#include "hoard/s3.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>

#include "hoard/util.h"
#include "s3-internal.h"

#define MAX_CONFIG_FILE (1 << 20)

void hoard_s3_config_defaults(struct hoard_s3_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_attempts = HOARD_S3_DEFAULT_ATTEMPTS;
	cfg->connect_timeout_ms = 10000;
	cfg->low_speed_limit = 1;
	cfg->low_speed_time_s = 30;
	cfg->backoff_base_ms = 100;
	cfg->backoff_max_ms = 20000;
}

static void free_secret(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

void hoard_s3_config_clear(struct hoard_s3_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->access_key_id);
	free_secret(cfg->secret_access_key);
	free_secret(cfg->session_token);
	free(cfg->region);
	free(cfg->endpoint);
	free(cfg->ca_bundle);
	memset(cfg, 0, sizeof(*cfg));
}

/* ---- URLs and names --------------------------------------------------- */

static bool is_ipv4_like(const char *s)
{
	int dots = 0, digits = 0;

	for (; *s; s++) {
		if (*s == '.') {
			if (!digits)
				return false;
			dots++;
			digits = 0;
		} else if (isdigit((unsigned char)*s)) {
			digits++;
		} else {
			return false;
		}
	}
	return dots == 3 && digits;
}

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

#define BUCKET_RULES "(S3's rules: 3 to 63 of a-z 0-9 . -)"

int hoard_s3_bucket_name_check(const char *name, char *errbuf, size_t errlen)
{
	static const char *const bad_prefix[] = {"xn--", "sthree-",
						 "amzn-s3-demo-"};
	static const char *const bad_suffix[] = {"-s3alias", "--ol-s3", ".mrap",
						 "--x-s3", "--table-s3"};
	size_t n, i;

	if (!name || !*name)
		return hoard_errf(errbuf, errlen, -EINVAL,
				  "the URL names no bucket (s3://BUCKET"
				  "[/PREFIX])");
	n = strlen(name);
	if (n < 3 || n > 63)
		return hoard_errf(errbuf, errlen, -EINVAL,
				  "the bucket name '%.80s%s' has %zu "
				  "character%s: a bucket name needs 3 to 63",
				  name, n > 80 ? "..." : "", n,
				  n == 1 ? "" : "s");
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-'))
			return hoard_errf(
				errbuf, errlen, -EINVAL,
				"the bucket name '%s' holds %s%c%s: a bucket "
				"name is made of lower-case letters, digits, "
				"'.' and '-'",
				name, c >= 0x20 && c < 0x7f ? "'" : "the byte ",
				c >= 0x20 && c < 0x7f ? c : '?',
				c >= 0x20 && c < 0x7f ? "'" : "");
	}
	if (!isalnum((unsigned char)name[0]) ||
	    !isalnum((unsigned char)name[n - 1]))
		return hoard_errf(errbuf, errlen, -EINVAL,
				  "the bucket name '%s' must begin and end "
				  "with a letter or digit",
				  name);
	/* Each dot-separated label is a DNS label: no empty ones, none that
	 * starts or ends with a hyphen. */
	if (strstr(name, ".."))
		return hoard_errf(errbuf, errlen, -EINVAL,
				  "the bucket name '%s' has two dots in a "
				  "row: a bucket name has no empty label",
				  name);
	if (strstr(name, ".-") || strstr(name, "-."))
		return hoard_errf(errbuf, errlen, -EINVAL,
				  "the bucket name '%s' has a '-' next to a "
				  "'.': no label of a bucket name begins or "
				  "ends with '-'",
				  name);
	if (is_ipv4_like(name))
		return hoard_errf(errbuf, errlen, -EINVAL,
				  "the bucket name '%s' is an IP address: a "
				  "bucket name must not look like one",
				  name);
	for (i = 0; i < sizeof(bad_prefix) / sizeof(bad_prefix[0]); i++)
		if (starts_with(name, bad_prefix[i]))
			return hoard_errf(errbuf, errlen, -EINVAL,
					  "the bucket name '%s' begins with "
					  "'%s', which S3 reserves",
					  name, bad_prefix[i]);
	for (i = 0; i < sizeof(bad_suffix) / sizeof(bad_suffix[0]); i++)
		if (ends_with(name, bad_suffix[i]))
			return hoard_errf(errbuf, errlen, -EINVAL,
					  "the bucket name '%s' ends with "
					  "'%s', which S3 reserves",
					  name, bad_suffix[i]);
	return 0;
}

bool hoard_s3_bucket_name_valid(const char *name)
{
	return hoard_s3_bucket_name_check(name, NULL, 0) == 0;
}

/*
 * The prefix's segments (between '/'): none empty ("a//b", "/a"; a '/' at
 * the end is allowed: it ends the last segment) and none "." or "..".  A
 * server resolves dot segments (and may merge "//") in an object's path
 * but not in a listing's prefix= parameter, so the same URL would name two
 * places.
 */
static int prefix_check(const char *url, const char *prefix, char *errbuf,
			size_t errlen)
{
	const char *seg = prefix;

	if (strlen(prefix) > HOARD_S3_MAX_KEY)
		return hoard_errf(errbuf, errlen, -EINVAL,
				  "the prefix of '%.60s...' has %zu bytes: an "
				  "S3 key has at most %d",
				  url, strlen(prefix), HOARD_S3_MAX_KEY);
	while (*seg) {
		size_t n = strcspn(seg, "/");

		if (n == 0)
			return hoard_errf(
				errbuf, errlen, -EINVAL,
				"'%s' has an empty segment in its prefix "
				"'%s': a prefix must not begin with '/' nor "
				"hold '//'",
				url, prefix);
		if ((n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return hoard_errf(
				errbuf, errlen, -EINVAL,
				"'%s' has a dot segment '%.*s' in its prefix: "
				"a prefix must not hold '.' or '..' segments "
				"(S3 keys are not paths)",
				url, (int)n, seg);
		seg += n;
		if (*seg == '/')
			seg++;
	}
	return 0;
}

int hoard_s3_url_split(const char *url, char **ret_bucket, char **ret_prefix,
		       char *errbuf, size_t errlen)
{
	const char *b, *slash, *colon;
	char *bucket, *prefix;
	int r;

	if (!url)
		return hoard_errf(errbuf, errlen, -EINVAL, "no s3:// URL");
	if (strncasecmp(url, "s3://", 5) != 0) {
		colon = strstr(url, "://");
		if (colon && colon > url && (size_t)(colon - url) < 16)
			return hoard_errf(errbuf, errlen, -EINVAL,
					  "'%s' has the scheme '%.*s': the "
					  "URL must begin with s3:// "
					  "(s3://BUCKET[/PREFIX])",
					  url, (int)(colon - url), url);
		return hoard_errf(errbuf, errlen, -EINVAL,
				  "'%s' does not begin with s3:// "
				  "(s3://BUCKET[/PREFIX])",
				  url);
	}
	b = url + 5;
	slash = strchr(b, '/');
	bucket = slash ? strndup(b, (size_t)(slash - b)) : strdup(b);
	if (!bucket)
		return -ENOMEM;
	r = hoard_s3_bucket_name_check(bucket, errbuf, errlen);
	if (r == 0)
		r = prefix_check(url, slash ? slash + 1 : "", errbuf, errlen);
	if (r < 0) {
		free(bucket);
		return r;
	}
	prefix = strdup(slash ? slash + 1 : "");
	if (!prefix) {
		free(bucket);
		return -ENOMEM;
	}
	*ret_bucket = bucket;
	*ret_prefix = prefix;
	return 0;
}

int hoard_s3_url_parse(const char *url, char **ret_bucket, char **ret_prefix)
{
	return hoard_s3_url_split(url, ret_bucket, ret_prefix, NULL, 0);
}

/* NULL for a good endpoint URL, else the rule it breaks. */
static const char *endpoint_problem(const char *url)
{
	const char *p, *host_end;
	unsigned long port;
	char *end;

	if (!url)
		return "no URL";
	if (strncasecmp(url, "http://", 7) == 0)
		p = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		p = url + 8;
	else
		return "the scheme must be http:// or https://";
	if (memchr(p, '@', strcspn(p, "/?#")))
		return "no user or password in the URL";

	if (*p == '[') {
		host_end = strchr(p, ']');
		if (!host_end || host_end == p + 1)
			return "an IPv6 host needs its closing ']'";
		for (const char *q = p + 1; q < host_end; q++)
			if (!isxdigit((unsigned char)*q) && *q != ':' &&
			    *q != '.')
				return "an IPv6 host holds only hex digits, "
				       "':' and '.'";
		host_end++;
	} else {
		host_end = p;
		while (isalnum((unsigned char)*host_end) || *host_end == '.' ||
		       *host_end == '-' || *host_end == '_')
			host_end++;
		if (host_end == p)
			return "no host (a name, IPv4 or [IPv6] address)";
	}
	p = host_end;
	if (*p == ':') {
		if (!isdigit((unsigned char)p[1]))
			return "the port must be a number";
		errno = 0;
		port = strtoul(p + 1, &end, 10);
		if (errno || port == 0 || port > 65535)
			return "the port must be 1 to 65535";
		p = end;
	}
	if (*p == '\0' || strcmp(p, "/") == 0)
		return NULL;
	if (*p == '/')
		return "no path after the host (the bucket is not part of "
		       "the endpoint)";
	if (*p == '?' || *p == '#')
		return "no query or fragment";
	return "the host holds a character that is not a letter, digit, "
	       "'.', '-' or '_'";
}

int hoard_s3_endpoint_check(const char *url)
{
	return endpoint_problem(url) ? -EINVAL : 0;
}

/* ---- files ------------------------------------------------------------ */

/* The settings hoard reads from one profile of one file. */
struct profile {
	bool found;
	char *access_key_id;
	char *secret_access_key;
	char *session_token;
	char *region;
	char *endpoint_url;
	char *max_attempts;
	char *ca_bundle;
};

static void profile_clear(struct profile *p)
{
	free(p->access_key_id);
	free_secret(p->secret_access_key);
	free_secret(p->session_token);
	free(p->region);
	free(p->endpoint_url);
	free(p->max_attempts);
	free(p->ca_bundle);
	memset(p, 0, sizeof(*p));
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Does section header text (between the brackets) name our profile? */
static bool section_matches(char *sect, const char *profile, bool config_style)
{
	sect = trim(sect);
	if (!config_style)
		return strcmp(sect, profile) == 0;
	if (strcmp(sect, "default") == 0)
		return strcmp(profile, "default") == 0;
	if (strncmp(sect, "profile", 7) == 0 &&
	    (sect[7] == ' ' || sect[7] == '\t'))
		return strcmp(trim(sect + 8), profile) == 0;
	return false;
}

static int profile_set(struct profile *p, const char *key, const char *value)
{
	static const struct {
		const char *name;
		size_t off;
	} keys[] = {
		{"aws_access_key_id", offsetof(struct profile, access_key_id)},
		{"aws_secret_access_key",
		 offsetof(struct profile, secret_access_key)},
		{"aws_session_token", offsetof(struct profile, session_token)},
		{"region", offsetof(struct profile, region)},
		{"endpoint_url", offsetof(struct profile, endpoint_url)},
		{"max_attempts", offsetof(struct profile, max_attempts)},
		{"ca_bundle", offsetof(struct profile, ca_bundle)},
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char **slot = (char **)((char *)p + keys[i].off);
		char *copy;

		if (strcasecmp(key, keys[i].name) != 0)
			continue;
		copy = strdup(value);
		if (!copy)
			return -ENOMEM;
		free_secret(*slot);
		*slot = copy;
		return 0;
	}
	return 0;
}

/* Parse INI text (modified in place) for one profile's settings. */
static int profile_parse(char *text, const char *profile, bool config_style,
			 struct profile *p)
{
	bool in_ours = false;
	char *line, *next;
	int r;

	for (line = text; line; line = next) {
		char *eq, *s;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (*line == ' ' || *line == '\t')
			continue; /* continuation or nested value */
		s = trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *close = strrchr(s, ']');

			if (!close)
				return -EINVAL;
			*close = '\0';
			in_ours = section_matches(s + 1, profile, config_style);
			if (in_ours)
				p->found = true;
			continue;
		}
		if (!in_ours)
			continue;
		eq = strpbrk(s, "=:");
		if (!eq)
			continue;
		*eq = '\0';
		r = profile_set(p, trim(s), trim(eq + 1));
		if (r < 0)
			return r;
	}
	return 0;
}

/* Read a profile from path; a missing file is an empty one. */
static int profile_read(const char *path, const char *profile,
			bool config_style, struct profile *p)
{
	struct stat st;
	char *text;
	ssize_t n;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out_close;
	}
	if (st.st_size > MAX_CONFIG_FILE) {
		r = -EFBIG;
		goto out_close;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		r = -ENOMEM;
		goto out_close;
	}
	n = hoard_pread_full(fd, text, (size_t)st.st_size, 0);
	if (n < 0) {
		r = (int)n;
		goto out_free_text;
	}
	text[n] = '\0';
	r = profile_parse(text, profile, config_style, p);
out_free_text:
	explicit_bzero(text, (size_t)st.st_size + 1);
	free(text);
out_close:
	close(fd);
	return r;
}

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* AWS_..._FILE if set (with "~/" expanded), else ~/.aws/<name>. */
static char *aws_file(const char *var, const char *name)
{
	const char *v = env(var), *home = env("HOME");
	struct passwd *pw;
	char *path;

	if (!home) {
		pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : "/";
	}
	if (v && strncmp(v, "~/", 2) != 0)
		return strdup(v);
	if (v) {
		if (asprintf(&path, "%s/%s", home, v + 2) < 0)
			return NULL;
	} else if (asprintf(&path, "%s/.aws/%s", home, name) < 0) {
		return NULL;
	}
	return path;
}

static int parse_attempts(const char *s, unsigned *ret)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > 100)
		return -EINVAL;
	*ret = (unsigned)v;
	return 0;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

#define ERR(...)                                                               \
	do {                                                                   \
		if (errbuf && errlen)                                          \
			snprintf(errbuf, errlen, __VA_ARGS__);                 \
	} while (0)

/* Credentials: the environment, else the credentials file, else config. */
static int resolve_credentials(struct hoard_s3_config *cfg,
			       const struct profile *creds,
			       const struct profile *conf, const char *profile,
			       char *errbuf, size_t errlen)
{
	const char *ak = env("AWS_ACCESS_KEY_ID");
	const char *sk = env("AWS_SECRET_ACCESS_KEY");
	const char *tok = env("AWS_SESSION_TOKEN");

	if (!ak != !sk) {
		ERR("%s is set but %s is not",
		    ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
		    ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		return -EINVAL;
	}
	if (!ak) {
		const struct profile *p = NULL;

		if (creds->access_key_id && creds->secret_access_key)
			p = creds;
		else if (conf->access_key_id && conf->secret_access_key)
			p = conf;
		if (!p) {
			ERR("no AWS credentials: set AWS_ACCESS_KEY_ID and "
			    "AWS_SECRET_ACCESS_KEY, or aws_access_key_id and "
			    "aws_secret_access_key for profile '%s' in "
			    "~/.aws/credentials",
			    profile);
			return -ENOKEY;
		}
		ak = p->access_key_id;
		sk = p->secret_access_key;
		tok = p->session_token;
	}
	cfg->access_key_id = strdup(ak);
	cfg->secret_access_key = strdup(sk);
	cfg->session_token = dup_or_null(tok);
	if (!cfg->access_key_id || !cfg->secret_access_key ||
	    (tok && !cfg->session_token))
		return -ENOMEM;
	return 0;
}

static int resolve_rest(struct hoard_s3_config *cfg, const struct profile *conf,
			char *errbuf, size_t errlen)
{
	const char *region, *endpoint, *attempts, *ca;
	size_t n;
	int r;

	region = env("AWS_REGION");
	if (!region)
		region = env("AWS_DEFAULT_REGION");
	if (!region)
		region = conf->region ? conf->region : HOARD_S3_DEFAULT_REGION;
	cfg->region = strdup(region);
	if (!cfg->region)
		return -ENOMEM;

	endpoint = env("AWS_ENDPOINT_URL_S3");
	if (!endpoint)
		endpoint = env("AWS_ENDPOINT_URL");
	if (!endpoint)
		endpoint = conf->endpoint_url;
	if (endpoint) {
		const char *why = endpoint_problem(endpoint);

		if (why) {
			ERR("bad endpoint URL '%s': %s (want "
			    "http[s]://host[:port])",
			    endpoint, why);
			return -EINVAL;
		}
		cfg->endpoint = strdup(endpoint);
		if (!cfg->endpoint)
			return -ENOMEM;
		n = strlen(cfg->endpoint);
		if (cfg->endpoint[n - 1] == '/')
			cfg->endpoint[n - 1] = '\0';
	}

	ca = env("AWS_CA_BUNDLE");
	if (!ca)
		ca = conf->ca_bundle;
	if (ca) {
		cfg->ca_bundle = strdup(ca);
		if (!cfg->ca_bundle)
			return -ENOMEM;
	}

	attempts = env("AWS_MAX_ATTEMPTS");
	if (!attempts)
		attempts = conf->max_attempts;
	if (attempts) {
		r = parse_attempts(attempts, &cfg->max_attempts);
		if (r < 0) {
			ERR("bad max_attempts '%s' (want 1..100)", attempts);
			return r;
		}
	}
	return 0;
}

int hoard_s3_config_load(struct hoard_s3_config *ret_cfg, char *errbuf,
			 size_t errlen)
{
	struct profile creds = {0}, conf = {0};
	struct hoard_s3_config cfg;
	char *creds_path = NULL, *conf_path = NULL;
	const char *profile;
	bool explicit;
	int r;

	hoard_s3_config_defaults(&cfg);
	profile = env("AWS_PROFILE");
	if (!profile)
		profile = env("AWS_DEFAULT_PROFILE");
	explicit = profile != NULL;
	if (!profile)
		profile = "default";

	creds_path = aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
	conf_path = aws_file("AWS_CONFIG_FILE", "config");
	if (!creds_path || !conf_path) {
		r = -ENOMEM;
		goto out_free;
	}
	r = profile_read(creds_path, profile, false, &creds);
	if (r < 0) {
		ERR("cannot read %s: %s", creds_path, strerror(-r));
		goto out_free;
	}
	r = profile_read(conf_path, profile, true, &conf);
	if (r < 0) {
		ERR("cannot read %s: %s", conf_path, strerror(-r));
		goto out_free;
	}
	if (explicit && !creds.found && !conf.found) {
		ERR("the AWS profile '%s' is in neither %s nor %s", profile,
		    creds_path, conf_path);
		r = -ENOENT;
		goto out_free;
	}
	r = resolve_credentials(&cfg, &creds, &conf, profile, errbuf, errlen);
	if (r == 0)
		r = resolve_rest(&cfg, &conf, errbuf, errlen);
	if (r == -ENOMEM)
		ERR("out of memory");
	if (r < 0)
		goto out_free;
	*ret_cfg = cfg;
	memset(&cfg, 0, sizeof(cfg));
out_free:
	hoard_s3_config_clear(&cfg);
	profile_clear(&creds);
	profile_clear(&conf);
	free(creds_path);
	free(conf_path);
	return r;
}
