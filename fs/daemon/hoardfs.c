/* SPDX-License-Identifier: MIT */
/*
 * hoardfs: the FUSE daemon.  A thin front end over the filesystem core
 * (fs.h): it maps each mount's FUSE_ROOT_ID to its volume's root inode,
 * turns requests into hoard_fs_* calls and -errno into replies (the
 * operations are in hoardfsops.c), runs one multi-threaded session loop
 * per mount, and serves the control socket (its requests are in
 * hoardfsctl.c).  Here: logging, the options, start-up, the mounts and
 * their session threads, signals.  Threads: main sets D up before any
 * other thread starts; then the mount table is under D.notify_mu
 * (hoardfs-internal.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <fuse_lowlevel.h>
#include <systemd/sd-daemon.h>

#include "hoard/ctl.h"
#include "hoard/evict.h"
#include "hoard/lazy.h"
#include "hoard/fs.h"
#include "hoard/plain.h"
#include "hoard/store.h"
#include "hoard/util.h"

#include "hoardfs-internal.h"

#define DEFAULT_STORE	   "/var/lib/hoard"
#define DEFAULT_PLAIN_SIZE (8ull << 30)
#define DEFAULT_PLAIN_MIN  (1ull << 20)

struct hoardfs_daemon D = {.report_fd = -1,
			   .close_defer = true,
			   .notify_mu = PTHREAD_MUTEX_INITIALIZER,
			   .mounts_cv = PTHREAD_COND_INITIALIZER};

/* ---- logging and start-up reports -------------------------------------- */

static void log_sink(int level, const char *msg)
{
	static const char *const names[] = {"emerg", "alert",	"crit",
					    "error", "warning", "notice",
					    "info",  "debug"};
	FILE *f = D.logf ? D.logf : stderr;
	struct timespec ts;
	struct tm tm;
	char when[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(f, "%s hoardfs[%d] %s: %s\n", when, (int)getpid(),
		names[level & 7], msg);
	fflush(f);
}

static void fuse_log_sink(enum fuse_log_level level, const char *fmt,
			  va_list ap)
{
	hoard_logv((int)level, fmt, ap);
}

/* Report a start-up failure: one line for the user, then exit 1. */
static void die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (D.report_fd >= 0) {
		dprintf(D.report_fd, "ERR %s\n", msg);
		if (D.logf)
			hoard_log(LOG_ERR, "%s", msg);
	} else {
		fprintf(stderr, "hoardfs: %s\n", msg);
	}
	for (int i = 0; i < D.n_mounts; i++) {
		if (D.mounts[i].se)
			fuse_session_unmount(D.mounts[i].se);
	}
	exit(1);
}

/* ---- mounts ------------------------------------------------------------- */

bool is_mountpoint(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[8192], mp[PATH_MAX];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1)
			found = strcmp(mp, path) == 0;
	}
	fclose(f);
	return found;
}

/* A usage error: one line, exit 2. */
static void usage_die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
static void usage_die(const char *fmt, ...)
{
	va_list ap;

	fputs("hoardfs: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (try 'hoardfs --help')\n", stderr);
	exit(2);
}

static void parse_volume_arg(const char *arg, struct mount *m)
{
	const char *eq = strchr(arg, '=');
	char real[PATH_MAX];
	struct stat sb;

	if (!eq || eq == arg || !eq[1])
		usage_die("malformed volume argument '%s': expected "
			  "NAME=MOUNTPOINT",
			  arg);
	m->name = strndup(arg, (size_t)(eq - arg));
	if (!hoard_fs_volume_name_ok(m->name))
		usage_die("invalid volume name '%s': use 1-64 of "
			  "[A-Za-z0-9._-], not starting with '.'",
			  m->name);
	for (int i = 0; i < D.n_mounts; i++) {
		if (!strcmp(D.mounts[i].name, m->name))
			usage_die("volume '%s' is given twice", m->name);
	}
	if (!realpath(eq + 1, real))
		die("mountpoint %s: %s", eq + 1, strerror(errno));
	if (stat(real, &sb) < 0 || !S_ISDIR(sb.st_mode))
		die("mountpoint %s is not a directory", eq + 1);
	if (is_mountpoint(real))
		die("mountpoint %s is busy: something is already mounted "
		    "there",
		    real);
	m->mountpoint = strdup(real);
	for (int i = 0; i < D.n_mounts; i++) {
		if (!strcmp(D.mounts[i].mountpoint, m->mountpoint))
			usage_die("mountpoint %s is given twice", real);
	}
}

/* Open m's volume (made if missing) and mount it; 0, or -errno with one
 * line in err. */
int mount_setup(struct mount *m, char *err, size_t errlen)
{
	char opts[1024];
	char *argv[8];
	int argc = 0;
	struct fuse_args args;
	int r;

	r = hoard_fs_volume(D.fs, m->name, true, &m->root);
	if (r < 0)
		return hoard_errf(err, errlen, r, "cannot open volume '%s': %s",
				  m->name, strerror(-r));
	m->fs = D.fs;
	snprintf(opts, sizeof(opts),
		 "allow_other,default_permissions,fsname=hoard:%s,"
		 "subtype=hoard%s%s",
		 m->name, D.extra_opts ? "," : "",
		 D.extra_opts ? D.extra_opts : "");
	argv[argc++] = "hoardfs";
	argv[argc++] = "-o";
	argv[argc++] = opts;
	if (D.debug)
		argv[argc++] = "-d";
	args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	m->se = fuse_session_new(&args, &ops, sizeof(ops), m);
	fuse_opt_free_args(&args);
	if (!m->se)
		return hoard_errf(err, errlen, -EINVAL,
				  "cannot create a FUSE session for %s (bad "
				  "-o option?)",
				  m->mountpoint);
	if (fuse_session_mount(m->se, m->mountpoint) != 0) {
		fuse_session_destroy(m->se);
		m->se = NULL;
		return hoard_errf(err, errlen, -EIO,
				  "cannot mount volume '%s' at %s", m->name,
				  m->mountpoint);
	}
	hoard_fs_ref(D.fs, m->root); /* the kernel never forgets the root */
	return 0;
}

static void mount_one(struct mount *m)
{
	char err[1024];

	if (mount_setup(m, err, sizeof(err)) < 0)
		die("%s", err);
	m->used = true;
}

static void *mount_thread(void *arg)
{
	struct mount *m = arg;
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	int r;

	fuse_loop_cfg_set_clone_fd(cfg, 0);
	fuse_loop_cfg_set_max_threads(cfg, 16);
	fuse_loop_cfg_set_idle_threads(cfg, 4);
	r = fuse_session_loop_mt(m->se, cfg);
	fuse_loop_cfg_destroy(cfg);
	hoard_log(LOG_INFO, "volume '%s' unmounted from %s (%d)", m->name,
		  m->mountpoint, r);
	pthread_mutex_lock(&D.notify_mu);
	m->ended = true;
	pthread_mutex_unlock(&D.notify_mu);
	fuse_session_unmount(m->se);
	fuse_session_destroy(m->se);
	/* the mount's lookups are void now: the root's is ours to drop */
	hoard_fs_forget(D.fs, m->root, 1);
	/* an unmount drops the RELEASEs still queued in the kernel: commit
	 * what their closes left */
	hoard_fs_commit_dirty(D.fs, true);
	pthread_mutex_lock(&D.notify_mu);
	m->se = NULL;
	free(m->name);
	free(m->mountpoint);
	m->name = m->mountpoint = NULL;
	m->used = false;
	m->zombie = true;
	D.live--;
	pthread_cond_broadcast(&D.mounts_cv);
	pthread_mutex_unlock(&D.notify_mu);
	return NULL;
}

/* Join the thread of a slot whose session ended (D.notify_mu held: the
 * thread needs it no more). */
void reap_locked(struct mount *m)
{
	if (m->zombie) {
		pthread_join(m->thread, NULL);
		m->zombie = false;
	}
}

/* Start m's session thread (m->se mounted). */
int mount_start(struct mount *m)
{
	int r = pthread_create(&m->thread, NULL, mount_thread, m);

	if (r != 0)
		return -r;
	pthread_mutex_lock(&D.notify_mu);
	D.live++;
	m->ended = false;
	pthread_mutex_unlock(&D.notify_mu);
	return 0;
}

/* SIGTERM/SIGINT: unmount everything; the loops then end. */
static void *signal_thread(void *arg)
{
	sigset_t *set = arg;
	int sig;

	for (;;) {
		if (sigwait(set, &sig) != 0)
			continue;
		char *mps[MAX_MOUNTS];
		int n = 0;

		hoard_log(LOG_INFO, "signal %d: unmounting", sig);
		sd_notify(0, "STOPPING=1");
		pthread_mutex_lock(&D.notify_mu);
		D.stopping = true;
		for (int i = 0; i < MAX_MOUNTS; i++) {
			struct mount *m = &D.mounts[i];

			if (m->used && !m->ended && m->mountpoint)
				mps[n++] = strdup(m->mountpoint);
		}
		pthread_cond_broadcast(&D.mounts_cv);
		pthread_mutex_unlock(&D.notify_mu);
		for (int i = 0; i < n; i++) {
			if (mps[i] && umount2(mps[i], 0) < 0)
				umount2(mps[i], MNT_DETACH);
			free(mps[i]);
		}
	}
	return NULL;
}

/* A pull changed a name (or a directory, name NULL) in a volume: drop what
 * the kernel caches of it in every mount of that volume. */
void pull_changed(void *ud, uint64_t parent, const char *name)
{
	const char *volume = ud;

	pthread_mutex_lock(&D.notify_mu);
	for (int i = 0; i < MAX_MOUNTS; i++) {
		struct mount *m = &D.mounts[i];
		fuse_ino_t node = parent == m->root ? FUSE_ROOT_ID : parent;

		if (!m->used || m->ended || !m->se || strcmp(m->name, volume))
			continue;
		if (name)
			fuse_lowlevel_notify_inval_entry(m->se, node, name,
							 strlen(name));
		fuse_lowlevel_notify_inval_inode(m->se, node, 0, 0);
	}
	pthread_mutex_unlock(&D.notify_mu);
}

/* The budget removed a file: the kernel forgets the name (and, with
 * notify_delete, the inode's link, so it sends the forget that lets the
 * daemon free the data).  Called by the eviction thread, no lock held. */
static void evicted_notify(void *ud, uint64_t volume_root, uint64_t parent,
			   uint64_t ino, const char *name)
{
	pthread_mutex_lock(&D.notify_mu);
	for (int i = 0; i < MAX_MOUNTS; i++) {
		struct mount *m = &D.mounts[i];
		fuse_ino_t node = parent == m->root ? FUSE_ROOT_ID : parent;

		if (!m->used || m->root != volume_root || !m->se || m->ended)
			continue;
		if (fuse_lowlevel_notify_delete(m->se, node, ino, name,
						strlen(name)) < 0)
			fuse_lowlevel_notify_inval_entry(m->se, node, name,
							 strlen(name));
	}
	pthread_mutex_unlock(&D.notify_mu);
}

/*
 * Wait until the daemon should stop: no mount is left and either a
 * signal came, or the daemon does not persist (--persist, or started
 * with no volume) and no control request is being served.
 */
static void wait_for_end(void)
{
	pthread_mutex_lock(&D.notify_mu);
	while (D.live > 0 || (!D.stopping && (D.persist || D.ctl_busy)))
		pthread_cond_wait(&D.mounts_cv, &D.notify_mu);
	D.stopping = true; /* no mount request from now on */
	for (int i = 0; i < MAX_MOUNTS; i++)
		reap_locked(&D.mounts[i]);
	pthread_mutex_unlock(&D.notify_mu);
}

/* ---- main --------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: hoardfs [OPTIONS] [NAME=MOUNTPOINT ...]\n"
		"\n"
		"Serve volumes of a hoard store as FUSE filesystems.  Each "
		"volume is an\n"
		"ordinary POSIX directory tree whose file contents are split "
		"into\n"
		"content-defined chunks, deduplicated across all volumes of "
		"the store,\n"
		"compressed with zstd and kept in RocksDB.  A volume is "
		"created on first\n"
		"use.  hoardfs returns once every mount is ready and keeps "
		"serving in the\n"
		"background; it exits when the last of its mounts is "
		"unmounted\n"
		"(fusermount3 -u MOUNTPOINT, or umount) or on SIGTERM/SIGINT.\n"
		"'hoard mount NAME PATH' asks it for more mounts (they count "
		"too); it\n"
		"never exits while it serves a control request.  With "
		"--persist, or\n"
		"with no volume given, it stays without mounts until "
		"SIGTERM/SIGINT.\n"
		"It tells systemd when it is ready (sd_notify, Type=notify).\n"
		"\n"
		"Options:\n"
		"  -s, --store DIR       store directory (default: "
		"$HOARD_STORE or %s);\n"
		"                        create it first with: hoard init "
		"--store DIR\n"
		"  -f, --foreground      stay in the foreground and log to "
		"stderr\n"
		"  -d, --debug           log every FUSE request (implies "
		"--foreground)\n"
		"  -o OPTS               extra FUSE mount options "
		"(comma-separated);\n"
		"                        allow_other and default_permissions "
		"are always on\n"
		"      --cache-size SIZE decompressed-chunk cache (default "
		"64M)\n"
		"      --read-ahead SIZE the kernel's read-ahead on each mount "
		"(default 8M,\n"
		"                        as for a local disk; 0 leaves FUSE's "
		"128K; needs root)\n"
		"      --max-size SIZE   size budget: when the store's stored "
		"bytes pass SIZE\n"
		"                        (K, M, G, T suffixes), least recently "
		"used files\n"
		"                        are removed down to 90%% of it "
		"(open and pinned\n"
		"                        files never); overrides the store "
		"setting made\n"
		"                        with 'hoard config max-size'\n"
		"      --remote URL      fetch chunks that are not local (made "
		"by 'hoard pull\n"
		"                        --lazy') from s3://BUCKET/PREFIX "
		"instead of the\n"
		"                        store's remote setting; credentials "
		"from the\n"
		"                        daemon's AWS environment\n"
		"      --passthrough=auto|off\n"
		"                        auto (default): read-only opens of "
		"files that have\n"
		"                        a verified plain copy use FUSE "
		"passthrough when the\n"
		"                        kernel grants it; off: every read "
		"goes through the\n"
		"                        daemon and no copies are made\n"
		"      --close=defer|wait\n"
		"                        defer (default): close(2) returns at "
		"once and the\n"
		"                        commit lands within milliseconds on "
		"a committer\n"
		"                        thread, with a new file's entry (a "
		"rename commits\n"
		"                        first); wait: close returns once the "
		"file's commit\n"
		"                        landed, a create once its entry did "
		"(README,\n"
		"                        \"Writes and durability\")\n"
		"      --plain-size SIZE budget of the plain-file tier "
		"(default 8G): copies\n"
		"                        of files being read, kept in "
		"STORE/plain\n"
		"      --plain-min SIZE  files smaller than this get no copy "
		"(default 1M)\n"
		"      --persist         keep serving when the last mount is "
		"gone (a\n"
		"                        service for 'hoard mount' and 'hoard "
		"job')\n"
		"      --log-level LEVEL error, warning, info (default) or "
		"debug\n"
		"  -h, --help            show this help\n"
		"  -V, --version         show the version\n"
		"\n"
		"Examples:\n"
		"  hoardfs --store /var/lib/hoard pip=/root/.cache/pip \\\n"
		"          huggingface=/root/.cache/huggingface\n"
		"  fusermount3 -u /root/.cache/pip\n"
		"\n"
		"The daemon logs to STORE/hoardfs.log when in the background.  "
		"`hoard\n"
		"stats --store DIR` talks to it through STORE/control.sock.\n"
		"\n"
		"Exit status: 0 when every mount was served and unmounted "
		"cleanly; 1 on a\n"
		"start-up failure (bad store, busy mountpoint; one line on "
		"stderr); 2 on\n"
		"a usage error.\n",
		DEFAULT_STORE);
}

static int parse_level(const char *s)
{
	static const char *const names[] = {"error", "warning", "info",
					    "debug"};
	static const int levels[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};

	for (int i = 0; i < 4; i++) {
		if (!strcmp(s, names[i]))
			return levels[i];
	}
	return -1;
}

static void parse_args(int argc, char **argv)
{
	static const struct option lopts[] = {
		{"store", required_argument, NULL, 's'},
		{"foreground", no_argument, NULL, 'f'},
		{"debug", no_argument, NULL, 'd'},
		{"cache-size", required_argument, NULL, 'C'},
		{"max-size", required_argument, NULL, 'M'},
		{"read-ahead", required_argument, NULL, 'A'},
		{"log-level", required_argument, NULL, 'L'},
		{"remote", required_argument, NULL, 'R'},
		{"passthrough", required_argument, NULL, 'P'},
		{"close", required_argument, NULL, 'c'},
		{"plain-size", required_argument, NULL, 'S'},
		{"plain-min", required_argument, NULL, 'm'},
		{"persist", no_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0}};
	int c, level;

	D.store_dir = getenv("HOARD_STORE") ? getenv("HOARD_STORE")
					    : DEFAULT_STORE;
	D.read_ahead = 8u << 20;
	D.plain_size = DEFAULT_PLAIN_SIZE;
	D.plain_min = DEFAULT_PLAIN_MIN;
	opterr = 0; /* one line of our own instead of getopt's */
	while ((c = getopt_long(argc, argv, ":s:fdo:hV", lopts, NULL)) != -1) {
		switch (c) {
		case 's':
			D.store_dir = optarg;
			break;
		case 'f':
			D.foreground = true;
			break;
		case 'd':
			D.debug = D.foreground = true;
			hoard_log_set_level(LOG_DEBUG);
			break;
		case 'o':
			D.extra_opts = optarg;
			break;
		case 'C':
			if (hoard_parse_size(optarg, &D.cache_bytes) < 0)
				usage_die("bad --cache-size '%s': expected a "
					  "size such as 256M",
					  optarg);
			break;
		case 'A':
			if (hoard_parse_size(optarg, &D.read_ahead) < 0 ||
			    D.read_ahead > (1ull << 30))
				usage_die("bad --read-ahead '%s': expected a "
					  "size from 0 to 1G such as 8M",
					  optarg);
			break;
		case 'M':
			if (hoard_parse_size(optarg, &D.max_size) < 0)
				usage_die("bad --max-size '%s': expected a "
					  "size such as 500M or 20G",
					  optarg);
			if (!D.max_size)
				usage_die("bad --max-size '%s': the budget "
					  "must be more than 0",
					  optarg);
			break;
		case 'R': {
			char err[512], *b = NULL, *p = NULL;

			if (hoard_s3_url_split(optarg, &b, &p, err,
					       sizeof(err)) < 0)
				usage_die("bad --remote: %s", err);
			free(b);
			free(p);
			D.remote = optarg;
			break;
		}
		case 'P':
			if (!strcmp(optarg, "off"))
				D.passthrough_off = true;
			else if (strcmp(optarg, "auto"))
				usage_die("bad --passthrough '%s': expected "
					  "auto or off",
					  optarg);
			break;
		case 'c':
			if (!strcmp(optarg, "wait"))
				D.close_defer = false;
			else if (strcmp(optarg, "defer"))
				usage_die("bad --close '%s': expected wait or "
					  "defer",
					  optarg);
			break;
		case 'S':
			if (hoard_parse_size(optarg, &D.plain_size) < 0)
				usage_die("bad --plain-size '%s': expected a "
					  "size such as 8G (0: no copies)",
					  optarg);
			break;
		case 'm':
			if (hoard_parse_size(optarg, &D.plain_min) < 0)
				usage_die("bad --plain-min '%s': expected a "
					  "size such as 1M",
					  optarg);
			break;
		case 'p':
			D.persist = true;
			break;
		case 'L':
			level = parse_level(optarg);
			if (level < 0)
				usage_die("bad --log-level '%s': expected "
					  "error, warning, info or debug",
					  optarg);
			hoard_log_set_level(level);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("hoardfs %s (FUSE %d)\n", HOARD_VERSION,
			       fuse_version());
			exit(0);
		case ':':
			usage_die("option '%s' needs a value",
				  argv[optind - 1]);
		default:
			usage_die("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind == argc) /* a service: volumes come by "mount" request */
		D.persist = true;
	if (argc - optind > MAX_MOUNTS)
		usage_die("at most %d volumes", MAX_MOUNTS);
	for (int i = optind; i < argc; i++) {
		parse_volume_arg(argv[i], &D.mounts[D.n_mounts]);
		D.n_mounts++;
	}
	/* The daemon runs in "/": RocksDB opens new files (WAL, SSTs) by the
	 * path it was given, so a relative store path must become absolute.
	 * A path that does not resolve is left for the store's own error. */
	char *abs = realpath(D.store_dir, NULL);
	if (abs)
		D.store_dir = abs; /* lives as long as the process */
}

/* Fork; the parent waits for the child's report and exits with it. */
static void daemonize(void)
{
	char buf[1100];
	int p[2];
	ssize_t n, got = 0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid > 0) {
		close(p[1]);
		while ((n = read(p[0], buf + got,
				 sizeof(buf) - 1 - (size_t)got)) > 0)
			got += n;
		buf[got > 0 ? got : 0] = 0;
		if (!strncmp(buf, "OK", 2))
			exit(0);
		if (!strncmp(buf, "ERR ", 4)) {
			fprintf(stderr, "hoardfs: %s", buf + 4);
			exit(1);
		}
		fprintf(stderr,
			"hoardfs: the daemon died while starting (see "
			"%s/hoardfs.log)\n",
			D.store_dir);
		exit(1);
	}
	close(p[0]);
	D.report_fd = p[1];
	/* A process group of our own, but not setsid(): a new session gets its
	 * own scheduler autogroup, and cross-group wake-ups made every FUSE
	 * round trip ~5x slower (measured: 0.2 ms vs 1.2 ms per file create).
	 * SIGHUP is ignored instead, so a closing terminal cannot reach us. */
	setpgid(0, 0);
}

static void open_log(void)
{
	char path[PATH_MAX];

	if (D.foreground)
		return;
	snprintf(path, sizeof(path), "%s/hoardfs.log", D.store_dir);
	D.logf = fopen(path, "ae");
}

/*
 * FUSE mounts get the kernel's default read-ahead (128 KiB), which keeps
 * one or two reads in flight: a cold sequential read then waits on each
 * chunk in turn.  A local disk here has 8 MiB.  The window is the mount's
 * backing device setting, and the kernel lowers it to what the INIT reply
 * said, so it is raised once INIT is done: statfs() on the mount waits for
 * that (requests queue until the connection is initialized).
 */
void raise_read_ahead(const struct mount *m)
{
	struct statfs sfs;
	struct stat st;
	char path[64];
	FILE *f;

	if (!D.read_ahead || statfs(m->mountpoint, &sfs) < 0 ||
	    stat(m->mountpoint, &st) < 0)
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb",
		 major(st.st_dev), minor(st.st_dev));
	f = fopen(path, "w");
	if (f) {
		bool ok = fprintf(f, "%llu\n",
				  (unsigned long long)(D.read_ahead >> 10)) > 0;

		if (fclose(f) == 0 && ok)
			return;
	}
	hoard_log(LOG_INFO, "%s: read-ahead left as it is (%s: %s)",
		  m->mountpoint, path, strerror(errno));
}

static void report_ready(void)
{
	int fd;

	hoard_log(LOG_INFO, "serving %d volume(s) from %s%s", D.n_mounts,
		  D.store_dir, D.persist ? " (persisting)" : "");
	/* systemd's Type=notify (no-op without $NOTIFY_SOCKET) */
	sd_notifyf(0,
		   "READY=1\nSTATUS=serving %d volume(s) from %s\nMAINPID=%lu",
		   D.n_mounts, D.store_dir, (unsigned long)getpid());
	if (D.report_fd < 0)
		return;
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		/* stderr goes to the log: sanitizer reports, libfuse's perror */
		dup2(D.logf ? fileno(D.logf) : fd, 2);
		if (fd > 2)
			close(fd);
	}
	if (chdir("/") < 0)
		hoard_log(LOG_WARNING, "chdir /: %s", strerror(errno));
	dprintf(D.report_fd, "OK\n");
	close(D.report_fd);
	D.report_fd = -1;
}

/*
 * A daemon that is shutting down (its mounts gone, committing and closing
 * the store) still holds the lock but no longer has its control socket:
 * wait for it rather than fail a remount that follows an unmount.
 */
static void wait_for_exiting_daemon(void)
{
	char sock[PATH_MAX];
	struct stat sb;

	snprintf(sock, sizeof(sock), "%s/control.sock", D.store_dir);
	for (int i = 0; i < 300 && hoard_store_lock_owner(D.store_dir); i++) {
		if (stat(sock, &sb) == 0)
			return; /* a live daemon: the open will say so */
		usleep(100 * 1000);
	}
}

/* Lazy fetch (lazy.h): --remote, else the store's setting, with the
 * daemon's AWS configuration, else fallback (a pull request's). */
int start_lazy(const char *url, const struct hoard_s3_config *fallback)
{
	struct hoard_s3_config cfg;
	char err[512] = "";
	int r;

	if (D.lz || !url)
		return 0;
	r = hoard_s3_config_load(&cfg, err, sizeof(err));
	if (r < 0 && !fallback) {
		hoard_log(LOG_WARNING,
			  "no lazy fetch from %s (chunks that are not local "
			  "read as EIO): %s",
			  url, *err ? err : strerror(-r));
		return r;
	}
	r = hoard_lazy_open(D.fs, url, r < 0 ? fallback : &cfg, &D.lz);
	if (r < 0)
		hoard_log(LOG_WARNING, "no lazy fetch from %s: %s", url,
			  strerror(-r));
	else
		hoard_log(LOG_INFO,
			  "chunks that are not local are fetched "
			  "from %s",
			  url);
	if (cfg.region)
		hoard_s3_config_clear(&cfg);
	return r;
}

/* The plain-file tier (plain.h), when passthrough may be used. */
static void start_plain(void)
{
	struct hoard_plain_opts po = {.max_bytes = D.plain_size,
				      .min_file = D.plain_min};
	int r;

	if (D.passthrough_off || !HAVE_PASSTHROUGH || !D.plain_size) {
		hoard_plain_clear(D.fs); /* an earlier daemon's copies */
		return;
	}
	r = hoard_plain_new(D.fs, &po, &D.plain);
	if (r < 0)
		hoard_log(LOG_WARNING,
			  "no plain-file tier (%s): reads go through the "
			  "daemon",
			  strerror(-r));
	else
		hoard_log(LOG_INFO,
			  "plain-file tier: %llu bytes for copies of files "
			  "from %llu bytes",
			  (unsigned long long)D.plain_size,
			  (unsigned long long)D.plain_min);
}

/* The size budget: --max-size, else the store's setting (evict.h). */
static void start_budget(void)
{
	struct hoard_evict_opts eo = {.evicted = evicted_notify};
	uint64_t setting;
	int r = hoard_budget_get(D.st, &setting);

	if (r < 0)
		die("cannot read the size budget of store %s: %s", D.store_dir,
		    strerror(-r));
	eo.max_bytes = D.max_size ? D.max_size : setting;
	r = hoard_evict_new(D.fs, &eo, &D.ev);
	if (r == 0)
		r = hoard_evict_start(D.ev);
	if (r < 0)
		die("cannot start the eviction thread: %s", strerror(-r));
	if (eo.max_bytes)
		hoard_log(LOG_INFO, "size budget %llu bytes (%s)",
			  (unsigned long long)eo.max_bytes,
			  D.max_size ? "--max-size" : "store setting");
	hoard_evict_poke(D.ev); /* the store may be over already */
}

int main(int argc, char **argv)
{
	struct hoard_fs_opts fo = {0};
	struct hoard_ctl_server *ctl = NULL;
	char err[512], sock[PATH_MAX];
	pthread_t sigthr;
	sigset_t set;
	int r;

	/*
	 * glibc gives each thread that contends on malloc an arena of its own,
	 * up to 8 per core; with 16 FUSE threads and RocksDB's, chunk-sized
	 * buffers freed in one arena are not reused by the next thread, and
	 * the daemon's peak RSS in an ingest was 287 MB against 178 MB with 2
	 * arenas (1 GiB file + /usr/share/doc copied in, then read back).
	 * Unless the user set MALLOC_ARENA_MAX, use 2 arenas.
	 */
	if (!getenv("MALLOC_ARENA_MAX"))
		mallopt(M_ARENA_MAX, 2);
	hoard_log_set_sink(log_sink);
	fuse_set_log_func(fuse_log_sink);
	parse_args(argc, argv);
	if (!D.foreground)
		daemonize();
	/* Block the signals before any thread exists (RocksDB starts some):
	 * only signal_thread takes them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	wait_for_exiting_daemon();
	r = hoard_store_open(D.store_dir, &D.st, err, sizeof(err));
	if (r < 0)
		die("%s", err);
	open_log();
	if (hoard_store_wal_damage(D.st))
		hoard_log(LOG_ERR,
			  "store %s: WAL damage: an open skipped damaged "
			  "write-ahead log records; `hoard fsck` lists the "
			  "files affected, `hoard fsck --repair` removes them: "
			  "%s",
			  D.store_dir, hoard_store_wal_damage(D.st));
	fo.cache_bytes = D.cache_bytes;
	r = hoard_fs_new(D.st, &fo, &D.fs);
	if (r < 0)
		die("cannot start the filesystem of store %s: %s", D.store_dir,
		    strerror(-r));
	{
		char *url = D.remote ? strdup(D.remote)
				     : hoard_lazy_setting(D.st);

		start_lazy(url, NULL);
		free(url);
	}
	start_budget();
	start_plain();
	if (committer_start() != 0)
		die("cannot start a thread");
	/* with the deferred close, a create's entry lands with the
	 * committer's next batch too (fs/core/pend.c) */
	hoard_fs_defer_creates(D.fs, D.close_defer);
	for (int i = 0; i < D.n_mounts; i++)
		mount_one(&D.mounts[i]);
	snprintf(sock, sizeof(sock), "%s/control.sock", D.store_dir);
	r = hoard_ctl_server_start(sock, ctl_handler, NULL, &ctl);
	if (r < 0)
		die("cannot listen on %s: %s", sock, strerror(-r));
	for (int i = 0; i < D.n_mounts; i++) {
		if (mount_start(&D.mounts[i]) < 0)
			die("cannot start a thread");
	}
	pthread_create(&sigthr, NULL, signal_thread, &set);
	pthread_detach(sigthr);
	for (int i = 0; i < D.n_mounts; i++)
		raise_read_ahead(&D.mounts[i]);
	report_ready();
	wait_for_end();
	sd_notify(0, "STOPPING=1");
	hoard_ctl_server_stop(ctl);
	committer_stop();
	hoard_evict_free(D.ev);
	hoard_lazy_free(D.lz);
	hoard_plain_free(D.plain);
	hoard_fs_free(D.fs);
	hoard_store_close(D.st);
	hoard_log(LOG_INFO, "all volumes unmounted; store closed");
	return 0;
}
