/* SPDX-License-Identifier: MIT */
/*
 * volumectl: the "volume ..." requests of the control socket
 * (docs/FORMAT.md section 6), parsed and run on an open filesystem.
 * Layer 6 (uses volume.h and sync.h).  The daemon answers them with this
 * on its socket; `hoard volume` runs the same function on a store it
 * opened itself when no daemon serves the store, so both give the same
 * answers.
 *
 *   volume ls               {"volumes":[{"name","root","mountpoint"}]}
 *   volume create NAME      {"volume","root","created"}: made empty if
 *                           missing (as a first mount makes it)
 *   volume clone SRC DST    hoard_volume_result_json of the clone
 *   volume rm NAME          ... of the removal (a mounted volume: -EBUSY)
 *   volume merge SRC DST    hoard_sync_result_json of the merge (sync.h)
 *
 * Thread contract: as volume.h and hoard_sync_merge: ls, create, clone
 * and rm may run at once from several threads (the daemon makes sure no
 * volume being removed is mounted); a merge runs alone.  The mountpoint
 * hook's answer is used before the hook is called again by the thread.
 */
#ifndef HOARD_VOLUMECTL_H
#define HOARD_VOLUMECTL_H

#include <stdint.h>

#include "hoard/fs.h"

struct hoard_volume_hooks {
	/* Where volume name is mounted (a string the caller keeps), or
	 * NULL.  May be NULL: nothing is mounted. */
	const char *(*mountpoint)(void *ud, const char *name);
	void *ud;
	/* A merge changed a name in volume (ud is the volume's name), as
	 * hoard_sync_opts.changed.  May be NULL. */
	void (*changed)(void *volume, uint64_t parent, const char *name);
};

/*
 * Run one request (the whole line, "volume ..."): 0 and a malloc()ed
 * JSON payload ('\n'-terminated) in *ret_out, or -errno and a malloc()ed
 * one-line message in *ret_out (-EINVAL for a malformed request).
 */
int hoard_volume_request(struct hoard_fs *fs, const char *req,
			 const struct hoard_volume_hooks *h, char **ret_out);

#endif
