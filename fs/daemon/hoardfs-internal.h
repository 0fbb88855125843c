/* SPDX-License-Identifier: MIT */
/*
 * hoardfs-internal.h: what the daemon's files share (hoardfs.c: mounts,
 * start-up; hoardfsops.c: the FUSE operations and the committer;
 * hoardfsctl.c: the control socket's requests).  Private to hoardfs.
 *
 * Threads: the mount table and the flags marked so are protected by
 * D.notify_mu; the control requests are served by several threads at
 * once (ctl.h; hoardfsctl.c says which requests may overlap), which take
 * mount slots after start-up under D.notify_mu.
 */
#ifndef HOARDFS_INTERNAL_H
#define HOARDFS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <fuse_lowlevel.h>

#include "hoard/s3.h"

#define MAX_MOUNTS 32

/* FUSE passthrough needs libfuse >= 3.16 (fuse_passthrough_open) */
#if FUSE_VERSION >= FUSE_MAKE_VERSION(3, 16)
#define HAVE_PASSTHROUGH 1
#else
#define HAVE_PASSTHROUGH 0
#endif

struct fuse_session;

/*
 * A slot of the mount table.  Slots are taken by the command line's
 * volumes at start-up and by "mount" requests (control socket) later;
 * a mount's thread frees its slot when its session ends, so slots are
 * reused.  Only the main thread (start-up) and the control threads take
 * slots; every thread that walks the table holds D.notify_mu.
 */
struct mount {
	char *name;	  /* protected by D.notify_mu while used */
	char *mountpoint; /* absolute; the same */
	uint64_t root;
	struct fuse_session *se;
	bool used;	/* protected by D.notify_mu: the slot is taken */
	bool ended;	/* protected by D.notify_mu: no more notifications */
	bool requested; /* made by a "mount" request */
	bool starting;	/* protected by D.notify_mu: a "mount" request is
			 * setting it up (ended is still true) */
	unsigned gen;	/* protected by D.notify_mu: which "mount" request
			 * took the slot (0: the command line) */
	pthread_t thread;
	bool zombie; /* protected by D.notify_mu: its thread ended, not yet
		      * joined (by the next user of the slot, or at exit) */
	struct hoard_fs *fs;
	/* set at INIT, protected by D.notify_mu: */
	bool pt;	    /* the kernel granted passthrough */
	const char *pt_why; /* why passthrough is on or off */
};

/* The daemon's state: set up by main before the threads start, then
 * shared as each field's comment says. */
struct hoardfs_daemon {
	const char *store_dir;
	bool foreground, debug;
	const char *extra_opts;
	uint64_t cache_bytes;
	uint64_t max_size;   /* --max-size; 0: the store's setting */
	uint64_t read_ahead; /* --read-ahead bytes; 0: the kernel's */
	struct hoard_evict *ev;
	bool passthrough_off;		/* --passthrough=off */
	bool close_defer;		/* --close=defer (default) */
	uint64_t plain_size, plain_min; /* --plain-size, --plain-min */
	struct hoard_plain *plain;	/* NULL: no tier */
	const char *remote;	   /* --remote; NULL: the store's setting */
	struct hoard_lazy *lz;	   /* NULL: no remote, nothing to fetch */
	pthread_mutex_t notify_mu; /* sessions' fds vs. their unmount, and
				    * the mount table */
	pthread_cond_t mounts_cv;  /* with notify_mu: a mount ended, or a
				    * control request did */
	struct mount mounts[MAX_MOUNTS];
	int n_mounts;  /* the command line's, slots 0 .. n_mounts-1 */
	int live;      /* protected by notify_mu: mounts whose thread runs */
	bool persist;  /* --persist, or no volume given: stay without mounts */
	bool stopping; /* protected by notify_mu: no new mounts */
	int ctl_busy;  /* protected by notify_mu: requests being served */
	struct hoard_fs *fs;
	struct hoard_store *st;
	FILE *logf;
	int report_fd;	      /* pipe to the waiting parent, -1 once reported */
	uint64_t read_errors; /* reads answered EIO; atomic (__atomic_*) */
};

extern struct hoardfs_daemon D;

/* hoardfsops.c: the FUSE operations, and the committer thread (started
 * by main, stopped after the sessions end). */
extern const struct fuse_lowlevel_ops ops;
int committer_start(void);
void committer_stop(void);
/* Before a figure or snapshot that must include every closed file:
 * with --close=defer, commit files whose close did not wait. */
void commit_closed_files(bool streams);
/* Until the releases queued or under way now are made (their handles
 * closed in the daemon too). */
void commit_wait_idle(void);

/* hoardfs.c */
bool is_mountpoint(const char *path);
/* Open m's volume (made if missing) and mount it; 0, or -errno with one
 * line in err. */
int mount_setup(struct mount *m, char *err, size_t errlen);
/* Start m's session thread (m->se mounted). */
int mount_start(struct mount *m);
/* Join the thread of a slot whose session ended (D.notify_mu held). */
void reap_locked(struct mount *m);
/* Raise the read-ahead window of m's mount to --read-ahead. */
void raise_read_ahead(const struct mount *m);
/* A pull changed a name (or a directory, name NULL) in volume ud. */
void pull_changed(void *ud, uint64_t parent, const char *name);
/* Lazy fetch from url (once): 0 or -errno, logged. */
int start_lazy(const char *url, const struct hoard_s3_config *fallback);

/* hoardfsctl.c: every control request (ctl.h's handler). */
int ctl_handler(void *ud, const char *req, char **ret_out);

#endif
