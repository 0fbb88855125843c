// SPDX-License-Identifier: MIT
/*
 * store (store-internal.h): the things RocksDB 7.8's C API cannot do (or
 * not without a heap allocation per read), in C++ against RocksDB's public
 * headers.
 *
 * A failed flush or WAL write (ENOSPC) stops the database: every write
 * fails until DB::Resume().  RocksDB's own recovery for a full disk polls
 * every few seconds for as much free space as the largest write buffer
 * (32 MiB here) and, while it waits, refuses a manual Resume() as "busy";
 * on a small filesystem it may never resume.  hoard turns that automatic
 * recovery off (a listener's OnErrorRecoveryBegin) and resumes itself when
 * a write fails (store_try_resume, storewal.c), which works as soon as the
 * memtables fit on the disk again.  The listener also logs every
 * background error, so that none is silent.
 *
 * The C API's handles are one-member structs around the C++ object
 * (rocksdb/c.cc: `struct rocksdb_t { DB* rep; }`, `struct
 * rocksdb_options_t { Options rep; }`); the same definitions are given
 * here to reach them.
 */
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include <rocksdb/db.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>

extern "C" {
#include "hoard/util.h"
}

struct rocksdb_t {
	rocksdb::DB *rep;
};
struct rocksdb_options_t {
	rocksdb::Options rep;
};
/* (more members follow rep in c.cc; only rep is used, by address) */
struct rocksdb_readoptions_t {
	rocksdb::ReadOptions rep;
};
struct rocksdb_column_family_handle_t {
	rocksdb::ColumnFamilyHandle *rep;
};

namespace
{

class ErrorListener : public rocksdb::EventListener
{
      public:
	void OnBackgroundError(rocksdb::BackgroundErrorReason,
			       rocksdb::Status *bg_error) override
	{
		if (bg_error && !bg_error->ok())
			hoard_log(LOG_WARNING,
				  "store: writes stopped by a background "
				  "error: %s",
				  bg_error->ToString().c_str());
	}

	void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason,
				  rocksdb::Status, bool *auto_recovery) override
	{
		if (auto_recovery)
			*auto_recovery = false; /* store_try_resume does it */
	}
};

char *dup_status(const rocksdb::Status &s)
{
	return strdup(s.ToString().c_str());
}

} // namespace

extern "C" void hoard_rdb_listen(rocksdb_options_t *o)
{
	o->rep.listeners.push_back(std::make_shared<ErrorListener>());
}

extern "C" char *hoard_rdb_resume(rocksdb_t *db)
{
	rocksdb::Status s = db->rep->Resume();

	return s.ok() ? nullptr : dup_status(s);
}

/* The point read without the C API's heap-allocated PinnableSlice: the
 * slice lives on this stack, pins the block while the value is copied out
 * and lets it go on return. */
extern "C" int hoard_rdb_get_into(rocksdb_t *db,
				  rocksdb_column_family_handle_t *cf,
				  const rocksdb_readoptions_t *ro,
				  const void *key, size_t klen, void *buf,
				  size_t cap, size_t *ret_len, char **ret_err)
{
	rocksdb::PinnableSlice v;
	rocksdb::Status s = db->rep->Get(
		ro->rep, cf->rep,
		rocksdb::Slice(static_cast<const char *>(key), klen), &v);

	if (s.IsNotFound())
		return -ENOENT;
	if (!s.ok()) {
		*ret_err = dup_status(s);
		return -EIO;
	}
	*ret_len = v.size();
	if (v.size() > cap)
		return -ENOBUFS;
	memcpy(buf, v.data(), v.size());
	return 0;
}
