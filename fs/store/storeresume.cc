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
 * RocksDB's own info log (db/LOG) aborts the process (an assertion in
 * WritableFileWriter, with Debian's assertions on) at the first line
 * after a write of it failed, e.g. on a full disk; hoard_rdb_info_log
 * gives a writable open a logger that drops the lines it cannot write.
 *
 * The C API's handles are one-member structs around the C++ object
 * (rocksdb/c.cc: `struct rocksdb_t { DB* rep; }`, `struct
 * rocksdb_options_t { Options rep; }`); the same definitions are given
 * here to reach them.
 */
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <rocksdb/db.h>
#include <rocksdb/env.h>
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

/* RocksDB's info log as its PosixLogger writes it (one line per call,
 * time and thread first), but a failed write drops the line: nothing
 * asserts, and the next line is tried again.  RocksDB's background
 * threads log while the opening thread made the logger and may close
 * it; they meet only through RocksDB's own (uninstrumented) locks, so
 * the descriptor is an atomic, and Close() only stops the logging: the
 * descriptor is closed when the last owner drops the logger, when no
 * thread can be writing to it (a number closed earlier could be reused
 * by another file while a late line is written).
 *
 * log_sync makes that hand-off visible to ThreadSanitizer: the logger is
 * made on one thread and used on RocksDB's background threads, which get
 * it through RocksDB's own atomics (uninstrumented in Debian's library),
 * so TSan saw the construction, the open of the file and the destruction
 * race with every line.  The constructor's release, each line's acquire
 * and release, and the destructor's acquire order them as RocksDB
 * really does; they cost one atomic operation each. */
std::atomic<unsigned> log_sync{0};

class QuietLogger : public rocksdb::Logger
{
      public:
	QuietLogger(int fd, rocksdb::InfoLogLevel level)
	    : rocksdb::Logger(level), fd_(fd)
	{
		log_sync.fetch_add(1, std::memory_order_release);
	}
	~QuietLogger() override
	{
		(void)log_sync.load(std::memory_order_acquire);
		int fd = fd_.exchange(-1);

		if (fd >= 0)
			close(fd);
	}

	using rocksdb::Logger::Logv;
	void Logv(const char *format, va_list ap) override
	{
		(void)log_sync.load(std::memory_order_acquire);
		line(format, ap);
		log_sync.fetch_add(0, std::memory_order_release);
	}

	/* RocksDB asks before each line (rocksdb::Log): the same acquire
	 * first, as the level was set by the constructor */
	rocksdb::InfoLogLevel GetInfoLogLevel() const override
	{
		(void)log_sync.load(std::memory_order_acquire);
		return rocksdb::Logger::GetInfoLogLevel();
	}

      protected:
	rocksdb::Status CloseImpl() override
	{
		stopped_.store(true);
		return rocksdb::Status::OK();
	}

      private:
	void line(const char *format, va_list ap)
	{
		char buf[8192];
		struct timeval tv;
		struct tm tm;
		va_list copy;
		size_t len;
		int n, m, fd = stopped_.load() ? -1 : fd_.load();

		if (fd < 0)
			return;
		gettimeofday(&tv, nullptr);
		localtime_r(&tv.tv_sec, &tm);
		n = snprintf(buf, sizeof(buf),
			     "%04d/%02d/%02d-%02d:%02d:%02d.%06ld %llx ",
			     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			     tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv.tv_usec,
			     (unsigned long long)pthread_self());
		if (n < 0)
			return;
		va_copy(copy, ap);
		m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, format,
			      copy);
		va_end(copy);
		if (m < 0)
			return;
		len = (size_t)n + (size_t)m;
		if (len > sizeof(buf) - 2)
			len = sizeof(buf) - 2; /* a long line is cut */
		if (len == 0 || buf[len - 1] != '\n')
			buf[len++] = '\n';
		for (size_t off = 0; off < len;) {
			ssize_t w = write(fd, buf + off, len - off);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return; /* ENOSPC and the like: dropped */
			off += (size_t)w;
		}
	}

	std::atomic<int> fd_;
	std::atomic<bool> stopped_{false};
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

extern "C" void hoard_rdb_info_log(rocksdb_options_t *o, const char *dbdir)
{
	std::string log = std::string(dbdir) + "/LOG";
	struct timeval tv;
	int fd, flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC;

	/* as RocksDB's own: the last open's log becomes LOG.old.MICROS (the
	 * database deletes all but keep_log_file_num of them) */
	mkdir(dbdir, 0755);
	gettimeofday(&tv, nullptr);
	std::string old = log + ".old." +
			  std::to_string((unsigned long long)tv.tv_sec *
						 1000000ull +
					 (unsigned long long)tv.tv_usec);
	if (rename(log.c_str(), old.c_str()) == 0 || errno == ENOENT)
		flags |= O_TRUNC;
	fd = open(log.c_str(), flags, 0644);
	o->rep.info_log = std::make_shared<QuietLogger>(fd,
							o->rep.info_log_level);
}
