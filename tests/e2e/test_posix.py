# SPDX-License-Identifier: MIT
"""POSIX semantics of a hoard mount, compared with tmpfs.

Every scenario is written once, as a function of a root directory that
returns a record of what it observed (return values, errno names, the stat
fields that must agree: type, mode, nlink, size, and times where they were set
explicitly).  It runs on tmpfs and on the filesystem under test (`fut`, a
hoard mount unless HOARD_E2E_FUT says otherwise) and the two records must be
equal.  Some observations also carry the value POSIX/Linux prescribes (`want`);
those are checked on the tmpfs record, so a scenario cannot pass by observing
nothing.
"""
import ctypes
import errno
import fcntl
import hashlib
import mmap
import os
import select
import socket
import stat
import time

import pytest

from conftest import FUT, SHORT

libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
GIB = 1 << 30
MIB = 1 << 20
KIB = 1 << 10
_NONE = object()


# -- helpers ---------------------------------------------------------------

def ename(n):
    """errno's name; EOPNOTSUPP and ENOTSUP are one number on Linux."""
    return "EOPNOTSUPP" if n == errno.EOPNOTSUPP else errno.errorcode.get(n, n)


def e(fn, *a, **kw):
    """Call fn; its result, or the errno name of the OSError it raised."""
    try:
        return fn(*a, **kw)
    except OSError as x:
        return ename(x.errno)


def _check(ret, *paths):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), *[str(p) for p in paths[:1]])


def renameat2(old, new, flags):
    _check(libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD,
                          os.fsencode(new), ctypes.c_uint(flags)), old)


class timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def utimensat(path, atime, mtime, follow=True):
    """atime/mtime: nanoseconds since the epoch, or UTIME_NOW / UTIME_OMIT
    passed as the strings "now" / "omit"."""
    def ts(t):
        if t == "now":
            return timespec(0, UTIME_NOW)
        if t == "omit":
            return timespec(0, UTIME_OMIT)
        return timespec(t // 10**9, t % 10**9)
    times = (timespec * 2)(ts(atime), ts(mtime))
    _check(libc.utimensat(AT_FDCWD, os.fsencode(path), times,
                          0 if follow else AT_SYMLINK_NOFOLLOW), path)


class dirent(ctypes.Structure):
    _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
                ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
                ("d_name", ctypes.c_char * 256)]


libc.opendir.restype = ctypes.c_void_p
libc.opendir.argtypes = [ctypes.c_char_p]
libc.readdir.restype = ctypes.POINTER(dirent)
libc.readdir.argtypes = [ctypes.c_void_p]
libc.telldir.restype = ctypes.c_long
libc.telldir.argtypes = [ctypes.c_void_p]
libc.seekdir.restype = None
libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
libc.rewinddir.restype = None
libc.rewinddir.argtypes = [ctypes.c_void_p]
libc.closedir.argtypes = [ctypes.c_void_p]


class Dir:
    """libc's DIR stream: readdir with . and .., d_type, telldir/seekdir."""

    def __init__(self, path):
        self.d = libc.opendir(os.fsencode(path))
        if not self.d:
            _check(-1, path)

    def read(self, n=None):
        """Up to n (default: all remaining) entries as (name, d_type)."""
        out = []
        while n is None or len(out) < n:
            ctypes.set_errno(0)
            ent = libc.readdir(self.d)
            if not ent:
                _check(0 if ctypes.get_errno() == 0 else -1, "readdir")
                break
            out.append((ent.contents.d_name, ent.contents.d_type))
        return out

    def tell(self):
        return libc.telldir(self.d)

    def seek(self, pos):
        libc.seekdir(self.d, pos)

    def rewind(self):
        libc.rewinddir(self.d)

    def close(self):
        libc.closedir(self.d)


TYPES = {stat.S_IFREG: "reg", stat.S_IFDIR: "dir", stat.S_IFLNK: "lnk",
         stat.S_IFIFO: "fifo", stat.S_IFSOCK: "sock", stat.S_IFCHR: "chr",
         stat.S_IFBLK: "blk"}


def st(path, follow=True, times=False):
    """The stat fields that must agree with tmpfs, or an errno name."""
    try:
        s = os.stat(path, follow_symlinks=follow)
    except OSError as x:
        return ename(x.errno)
    return fst(s, times)


def fst(s, times=False):
    if isinstance(s, int):
        s = os.fstat(s)
    r = {"type": TYPES[stat.S_IFMT(s.st_mode)], "mode": oct(stat.S_IMODE(s.st_mode)),
         "nlink": s.st_nlink, "size": s.st_size, "uid": s.st_uid, "gid": s.st_gid}
    if r["type"] in ("chr", "blk"):
        r["rdev"] = (os.major(s.st_rdev), os.minor(s.st_rdev))
    if r["type"] == "dir":
        del r["size"]   # a directory's size is the filesystem's business
    if times:
        r["atime"], r["mtime"] = s.st_atime_ns, s.st_mtime_ns
    return r


def write_file(path, data, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        assert os.write(fd, data) == len(data)
    finally:
        os.close(fd)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def digest(b):
    return hashlib.sha256(b).hexdigest()[:16] + f"/{len(b)}"


def pread_all(fd, n, off):
    out = b""
    while len(out) < n:
        b = os.pread(fd, n - len(out), off + len(out))
        if not b:
            break
        out += b
    return out


def pattern(n, seed):
    """n deterministic, incompressible, position-dependent bytes."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b"%d:%d" % (seed, i)).digest()
        i += 1
    return bytes(out[:n])


class Child:
    """fn() run in a forked child; its repr() (or the exception) comes back."""

    def __init__(self, fn):
        r, w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            try:
                os.close(r)
                out = repr(fn())
            except OSError as x:
                out = repr(ename(x.errno))
            except BaseException as x:  # noqa: BLE001 - reported to the parent
                out = f"EXC {type(x).__name__}: {x}"
            os.write(w, out.encode())
            os._exit(0)
        os.close(w)
        self.r = r
        self.out = None

    def result(self, timeout=10):
        """The child's result, or None if it has not finished in time."""
        if self.out is None:
            ready, _, _ = select.select([self.r], [], [], timeout)
            if not ready:
                return None
            chunks = []
            while True:
                b = os.read(self.r, 65536)
                if not b:
                    break
                chunks.append(b)
            os.close(self.r)
            os.waitpid(self.pid, 0)
            self.out = b"".join(chunks).decode()
        return self.out

    def kill(self):
        if self.out is None:
            try:
                os.kill(self.pid, 9)
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            os.close(self.r)
            self.out = "killed"


class Rec(dict):
    """A scenario's observations.  rec(key, value, want=...) records value;
    `want` is what POSIX/Linux prescribes, checked on the oracle."""

    def __init__(self):
        super().__init__()
        self.want = {}

    def __call__(self, key, value, want=_NONE):
        assert key not in self, f"duplicate key {key}"
        self[key] = value
        if want is not _NONE:
            self.want[key] = want
        return value


def run_scenario(fn, root):
    old = os.umask(0o022)
    try:
        d = root / fn.__name__
        d.mkdir()
        rec = Rec()
        try:
            fn(d, rec)
        except Exception as x:  # noqa: BLE001 - becomes part of the record
            # recorded, so the report shows what differed before it
            rec["!exception"] = f"{type(x).__name__}: {x}".replace(str(root), "ROOT")
        return rec
    finally:
        os.umask(old)


# -- scenarios -------------------------------------------------------------

def sc_create_open(d, rec):
    f = d / "f"
    fd = os.open(f, os.O_CREAT | os.O_WRONLY, 0o777)
    rec("create.fstat", fst(fd), {"type": "reg", "mode": "0o755", "nlink": 1,
                                  "size": 0, "uid": 0, "gid": 0})
    rec("read.wronly", e(os.read, fd, 10), "EBADF")
    os.write(fd, b"hello")
    os.close(fd)
    rec("excl", e(os.open, f, os.O_CREAT | os.O_EXCL | os.O_WRONLY), "EEXIST")
    rec("missing", e(os.open, d / "nope", os.O_RDONLY), "ENOENT")
    rec("missing.parent", e(os.open, d / "no" / "f", os.O_CREAT | os.O_WRONLY), "ENOENT")
    rec("dir.wronly", e(os.open, d, os.O_WRONLY), "EISDIR")
    rec("file.o_directory", e(os.open, f, os.O_RDONLY | os.O_DIRECTORY), "ENOTDIR")
    rec("through.file", e(os.stat, d / "f" / "x"), "ENOTDIR")
    rec("create.through.file", e(os.open, d / "f" / "x", os.O_CREAT | os.O_WRONLY), "ENOTDIR")
    fd = os.open(f, os.O_RDONLY)
    rec("write.rdonly", e(os.write, fd, b"x"), "EBADF")
    rec("read", os.read(fd, 100), b"hello")
    os.close(fd)
    fd = os.open(f, os.O_RDWR | os.O_TRUNC)
    rec("trunc.fstat", fst(fd)["size"], 0)
    os.close(fd)
    fd = os.open(d / "g", os.O_CREAT | os.O_RDWR, 0o640)
    rec("create.0640", fst(fd)["mode"], "0o640")
    os.close(fd)
    rec("creat.existing.keeps.mode", e(lambda: os.close(os.open(d / "g", os.O_CREAT | os.O_WRONLY, 0o777))))
    rec("g", st(d / "g"))
    rec("list", sorted(os.listdir(d)), ["f", "g"])


def sc_read_write(d, rec):
    f = d / "f"
    fd = os.open(f, os.O_CREAT | os.O_RDWR, 0o644)
    rec("write0", os.write(fd, b""), 0)
    rec("write", os.write(fd, b"0123456789"), 10)
    rec("pos", os.lseek(fd, 0, os.SEEK_CUR), 10)
    rec("pwrite.mid", os.pwrite(fd, b"abc", 4), 3)
    rec("pos.after.pwrite", os.lseek(fd, 0, os.SEEK_CUR), 10)
    rec("read.at.eof", os.read(fd, 10), b"")
    rec("pread", os.pread(fd, 100, 0), b"0123abc789")
    rec("pread.past.eof", os.pread(fd, 10, 100), b"")
    rec("pread.across.eof", os.pread(fd, 10, 8), b"89")
    # a write a little past EOF leaves a hole of zeros
    os.pwrite(fd, b"XY", 20)
    rec("small.hole", os.pread(fd, 100, 0), b"0123abc789" + bytes(10) + b"XY")
    # a large write spanning several chunks, then overwrites inside it
    big = pattern(3 * MIB + 12345, 1)
    os.pwrite(fd, big, 4096)
    os.pwrite(fd, b"Q" * 70000, 1 * MIB + 1)
    os.pwrite(fd, b"R", 2 * MIB)
    expect = bytearray(os.pread(fd, 4096, 0)) + bytearray(big)
    expect[1 * MIB + 1:1 * MIB + 1 + 70000] = b"Q" * 70000
    expect[2 * MIB] = ord("R")
    rec("big", digest(pread_all(fd, 5 * MIB, 0)), digest(bytes(expect)))
    # far beyond EOF: the hole reads as zeros
    far = GIB + 5
    rec("pwrite.far", os.pwrite(fd, b"END", far), 3)
    rec("far.size", fst(fd)["size"], far + 3)
    rec("hole.start", os.pread(fd, 16, len(expect)), bytes(16))
    rec("hole.mid", os.pread(fd, 100000, GIB // 2) == bytes(100000), True)
    rec("hole.end", os.pread(fd, 13, far - 10), bytes(10) + b"END")
    rec("lseek.end", os.lseek(fd, 0, os.SEEK_END), far + 3)
    rec("write.at.end", os.write(fd, b"!"), 1)
    os.close(fd)
    # everything again through a fresh open after close
    fd = os.open(f, os.O_RDONLY)
    rec("reopen.fstat", fst(fd))
    rec("reopen.big", digest(pread_all(fd, len(expect), 0)), digest(bytes(expect)))
    rec("reopen.end", os.pread(fd, 100, far - 2), b"\0\0END!")
    os.close(fd)
    # offsets past 4 GiB are not truncated to 32 bits
    fd = os.open(d / "g", os.O_CREAT | os.O_RDWR, 0o644)
    os.pwrite(fd, b"low", 7)
    os.pwrite(fd, b"high", 5 * GIB + 7)
    rec("5g", (fst(fd)["size"], os.pread(fd, 10, 5 * GIB + 5), os.pread(fd, 5, 5)),
        (5 * GIB + 11, b"\0\0high", b"\0\0low"))
    os.close(fd)


def sc_append(d, rec):
    f = d / "f"
    write_file(f, b"0123")
    a = os.open(f, os.O_WRONLY | os.O_APPEND)
    rec("append", os.write(a, b"abc"), 3)
    rec("pos", os.lseek(a, 0, os.SEEK_CUR), 7)
    b = os.open(f, os.O_WRONLY)
    os.pwrite(b, b"Z", 10)           # another descriptor extends the file
    os.write(a, b"def")               # appends at the new end
    rec("content", read_file(f), b"0123abc\0\0\0Zdef")
    os.lseek(a, 0, os.SEEK_SET)
    os.write(a, b"g")                 # O_APPEND ignores the position
    os.pwrite(a, b"h", 0)             # Linux: pwrite on O_APPEND appends too
    rec("content2", read_file(f), b"0123abc\0\0\0Zdefgh")
    os.close(a)
    os.close(b)
    fd = os.open(d / "new", os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
    os.write(fd, b"x" * 100000)
    os.write(fd, b"y")
    os.close(fd)
    rec("new", st(d / "new"))
    rec("new.tail", read_file(d / "new")[-3:], b"xxy")


def sc_truncate(d, rec):
    f = d / "f"
    data = pattern(600 * KIB, 2)
    write_file(f, data)
    os.truncate(f, 700 * KIB)
    rec("grow", st(f)["size"], 700 * KIB)
    rec("grow.data", read_file(f) == data + bytes(100 * KIB), True)
    os.truncate(f, 100 * KIB + 3)
    rec("shrink", read_file(f) == data[:100 * KIB + 3], True)
    os.truncate(f, 300 * KIB)   # the old bytes must not come back
    rec("shrink.grow", read_file(f) == data[:100 * KIB + 3] + bytes(200 * KIB - 3), True)
    fd = os.open(f, os.O_RDWR)
    os.ftruncate(fd, 5)
    rec("ftruncate.shrink", os.pread(fd, 100, 0), data[:5])
    os.ftruncate(fd, 3 * GIB)
    rec("ftruncate.grow.size", fst(fd)["size"], 3 * GIB)
    rec("ftruncate.grow.tail", os.pread(fd, 10, 3 * GIB - 10), bytes(10))
    rec("ftruncate.grow.head", os.pread(fd, 10, 0), data[:5] + bytes(5))
    os.ftruncate(fd, 0)
    rec("zero", fst(fd)["size"], 0)
    rec("zero.read", os.pread(fd, 10, 0), b"")
    os.write(fd, b"abc")     # position stays where it was: 0
    rec("after.zero", read_file(f), b"abc")
    rec("negative", e(os.ftruncate, fd, -1), "EINVAL")
    os.close(fd)
    fd = os.open(f, os.O_RDONLY)
    rec("ftruncate.rdonly", e(os.ftruncate, fd, 0), "EINVAL")
    os.close(fd)
    rec("truncate.dir", e(os.truncate, d, 0), "EISDIR")
    rec("truncate.missing", e(os.truncate, d / "nope", 0), "ENOENT")
    # truncate by path while a descriptor reads
    write_file(f, data)
    fd = os.open(f, os.O_RDONLY)
    os.truncate(f, 1000)
    rec("truncated.under.fd", len(os.pread(fd, 2000, 0)), 1000)
    rec("truncated.under.fd.past", os.pread(fd, 10, 5000), b"")
    os.close(fd)
    rec("st", st(f))


def sc_unlink_open(d, rec):
    f = d / "f"
    write_file(f, b"hello")
    fd = os.open(f, os.O_RDWR)
    rec("unlink", e(os.unlink, f), None)
    rec("gone.stat", st(f), "ENOENT")
    rec("gone.list", os.listdir(d), [])
    rec("fstat", fst(fd), {"type": "reg", "mode": "0o644", "nlink": 0, "size": 5,
                           "uid": 0, "gid": 0})
    rec("read", os.pread(fd, 100, 0), b"hello")
    os.pwrite(fd, pattern(300 * KIB, 3), 5)
    os.fsync(fd)
    rec("read.after.write", digest(pread_all(fd, MIB, 0)),
        digest(b"hello" + pattern(300 * KIB, 3)))
    os.ftruncate(fd, 2)
    rec("read.after.truncate", os.pread(fd, 100, 0), b"he")
    os.fchmod(fd, 0o600)
    os.fchown(fd, 1234, 4321)
    os.utime(fd, ns=(1_000_000_000_000_000_001, 1_000_000_000_000_000_002))
    rec("fsetattr", fst(fd, times=True),
        {"type": "reg", "mode": "0o600", "nlink": 0, "size": 2, "uid": 1234, "gid": 4321,
         "atime": 1_000_000_000_000_000_001, "mtime": 1_000_000_000_000_000_002})
    # a new file under the same name is a different file
    write_file(f, b"new")
    rec("new", read_file(f), b"new")
    rec("old.still", os.pread(fd, 100, 0), b"he")
    os.close(fd)
    rec("new.after.close", read_file(f), b"new")
    rec("unlink.missing", e(os.unlink, d / "nope"), "ENOENT")
    # unlink of a file open by several descriptors
    write_file(d / "g", b"g")
    fds = [os.open(d / "g", os.O_RDONLY) for _ in range(3)]
    os.unlink(d / "g")
    for x in fds[:2]:
        os.close(x)
    rec("last.fd", os.pread(fds[2], 10, 0), b"g")
    os.close(fds[2])
    rec("list", sorted(os.listdir(d)), ["f"])


def sc_rename_replace(d, rec):
    a, b = d / "a", d / "b"
    write_file(a, b"AAAA")
    write_file(b, b"BB")
    ino_a = os.stat(a).st_ino
    fd_b = os.open(b, os.O_RDONLY)
    rec("rename", e(os.rename, a, b), None)
    rec("target.is.source.inode", os.stat(b).st_ino == ino_a, True)
    rec("target", read_file(b), b"AAAA")
    rec("source.gone", st(a), "ENOENT")
    rec("old.target.fd", os.pread(fd_b, 10, 0), b"BB")
    rec("old.target.nlink", fst(fd_b)["nlink"], 0)
    os.close(fd_b)
    rec("list", sorted(os.listdir(d)), ["b"])
    rec("rename.missing", e(os.rename, d / "nope", d / "x"), "ENOENT")
    rec("rename.into.missing", e(os.rename, b, d / "no" / "x"), "ENOENT")
    rec("rename.self", e(os.rename, b, b), None)
    # two links to one inode: rename(one, other) does nothing
    os.link(b, d / "c")
    rec("rename.hardlink", e(os.rename, b, d / "c"), None)
    rec("hardlink.both", sorted(os.listdir(d)), ["b", "c"])
    rec("hardlink.nlink", st(b)["nlink"], 2)
    # atomic: a concurrent reader never misses the target or sees a mix
    t = d / "t"
    write_file(t, b"v%05d" % 0)
    width = len(b"v00000")

    def reader():
        missing = torn = reads = 0
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with open(t, "rb") as fh:
                    got = fh.read()
            except FileNotFoundError:
                missing += 1
                continue
            reads += 1
            if got == b"DONE00":
                break
            if len(got) != width or not got.startswith(b"v"):
                torn += 1
        return (missing, torn, reads > 0)

    child = Child(reader)
    for i in range(1, 300):
        write_file(d / "tmp", b"v%05d" % i)
        os.rename(d / "tmp", t)
    write_file(d / "tmp", b"DONE00")
    os.rename(d / "tmp", t)
    rec("atomic", child.result(60), repr((0, 0, True)))


def sc_renameat2(d, rec):
    a, b = d / "a", d / "b"
    write_file(a, b"A")
    write_file(b, b"BB")
    ia, ib = os.stat(a).st_ino, os.stat(b).st_ino
    rec("noreplace.exists", e(renameat2, a, b, RENAME_NOREPLACE), "EEXIST")
    rec("noreplace.untouched", (read_file(a), read_file(b)), (b"A", b"BB"))
    rec("noreplace.new", e(renameat2, a, d / "c", RENAME_NOREPLACE), None)
    rec("noreplace.moved", (st(a), read_file(d / "c")), ("ENOENT", b"A"))
    c = d / "c"
    rec("exchange", e(renameat2, c, b, RENAME_EXCHANGE), None)
    rec("exchanged", (read_file(c), read_file(b)), (b"BB", b"A"))
    rec("exchanged.inodes", (os.stat(c).st_ino == ib, os.stat(b).st_ino == ia), (True, True))
    rec("exchange.missing", e(renameat2, c, d / "nope", RENAME_EXCHANGE), "ENOENT")
    rec("both.flags", e(renameat2, c, b, RENAME_EXCHANGE | RENAME_NOREPLACE), "EINVAL")
    # exchange a directory in p with a file in q: nlinks of p and q move
    p, q = d / "p", d / "q"
    os.mkdir(p)
    os.mkdir(q)
    os.mkdir(p / "sub")
    write_file(p / "sub" / "inner", b"in")
    write_file(q / "file", b"qf")
    rec("before", (st(p)["nlink"], st(q)["nlink"]), (3, 2))
    rec("exchange.dir.file", e(renameat2, p / "sub", q / "file", RENAME_EXCHANGE), None)
    rec("after", (st(p)["nlink"], st(q)["nlink"]), (2, 3))
    rec("after.types", (st(p / "sub")["type"], st(q / "file")["type"]), ("reg", "dir"))
    rec("after.content", (read_file(p / "sub"), read_file(q / "file" / "inner")),
        (b"qf", b"in"))
    rec("dotdot", os.stat(q / "file" / "..").st_ino == os.stat(q).st_ino, True)
    rec("list", sorted(os.listdir(d)), ["b", "c", "p", "q"])


def sc_rename_dirs(d, rec):
    for n in ("x", "y", "e", "m"):
        os.mkdir(d / n)
    write_file(d / "y" / "f", b"f")
    write_file(d / "file", b"file")
    rec("nlink0", st(d)["nlink"], 6)
    rec("dir.over.nonempty", e(os.rename, d / "x", d / "y"), "ENOTEMPTY")
    rec("dir.over.file", e(os.rename, d / "x", d / "file"), "ENOTDIR")
    rec("file.over.dir", e(os.rename, d / "file", d / "x"), "EISDIR")
    rec("dir.into.itself", e(os.rename, d / "y", d / "y" / "sub"), "EINVAL")
    rec("dir.over.empty", e(os.rename, d / "x", d / "e"), None)
    rec("nlink1", st(d)["nlink"], 5)
    rec("list1", sorted(os.listdir(d)), ["e", "file", "m", "y"])
    # move a directory into another one
    rec("move", e(os.rename, d / "y", d / "m" / "y"), None)
    rec("nlinks", (st(d)["nlink"], st(d / "m")["nlink"]), (4, 3))
    rec("dotdot", os.stat(d / "m" / "y" / "..").st_ino == os.stat(d / "m").st_ino, True)
    rec("moved.content", read_file(d / "m" / "y" / "f"), b"f")
    rec("rename.dot", e(os.rename, os.path.join(d, "m", "."), d / "z"), "EBUSY")
    rec("list2", sorted(os.listdir(d)), ["e", "file", "m"])


def sc_mkdir_rmdir(d, rec):
    os.mkdir(d / "a")
    write_file(d / "f", b"")
    os.symlink("a", d / "l")
    os.symlink("nowhere", d / "dangling")
    rec("a", st(d / "a"), {"type": "dir", "mode": "0o755", "nlink": 2, "uid": 0, "gid": 0})
    for n in ("a", "f", "l", "dangling"):
        rec(f"mkdir.over.{n}", e(os.mkdir, d / n), "EEXIST")
    rec("mkdir.missing.parent", e(os.mkdir, d / "no" / "x"), "ENOENT")
    rec("mkdir.through.file", e(os.mkdir, d / "f" / "x"), "ENOTDIR")
    os.mkdir(d / "a" / "sub")
    rec("rmdir.nonempty", e(os.rmdir, d / "a"), "ENOTEMPTY")
    os.mkdir(d / "h")
    write_file(d / "h" / ".hidden", b"")
    rec("rmdir.hidden", e(os.rmdir, d / "h"), "ENOTEMPTY")
    rec("rmdir.file", e(os.rmdir, d / "f"), "ENOTDIR")
    rec("rmdir.symlink", e(os.rmdir, d / "l"), "ENOTDIR")
    rec("rmdir.missing", e(os.rmdir, d / "nope"), "ENOENT")
    rec("rmdir.dot", e(os.rmdir, os.path.join(d, "a", "sub", ".")), "EINVAL")
    rec("unlink.dir", e(os.unlink, d / "a"), "EISDIR")
    rec("rmdir.sub", e(os.rmdir, d / "a" / "sub"), None)
    rec("a.after", st(d / "a")["nlink"], 2)
    rec("rmdir", e(os.rmdir, d / "a"), None)
    os.mkdir(d / "modes", 0o777)
    os.mkdir(d / "sticky")
    os.chmod(d / "sticky", 0o1777)
    os.mkdir(d / "private", 0o700)
    rec("modes", [st(d / n)["mode"] for n in ("modes", "sticky", "private")],
        ["0o755", "0o1777", "0o700"])
    # an emptied directory opened by a descriptor can be removed
    os.mkdir(d / "busy")
    fd = os.open(d / "busy", os.O_RDONLY | os.O_DIRECTORY)
    rec("rmdir.open", e(os.rmdir, d / "busy"), None)
    rec("create.in.removed", e(os.open, "x", os.O_CREAT | os.O_WRONLY, dir_fd=fd), "ENOENT")
    os.close(fd)
    rec("list", sorted(os.listdir(d)),
        ["dangling", "f", "h", "l", "modes", "private", "sticky"])
    rec("nlink", st(d)["nlink"], 6)


def sc_symlinks(d, rec):
    os.mkdir(d / "dir")
    write_file(d / "dir" / "target", b"content")
    os.symlink("dir/target", d / "rel")
    os.symlink("../dir/target", d / "dir" / "up")   # relative to its own dir
    absolute = str(d / "dir" / "target")
    os.symlink(absolute, d / "abs")
    os.symlink("dir", d / "dirlink")
    os.symlink("nowhere", d / "dangling")
    os.symlink("loop2", d / "loop1")
    os.symlink("loop1", d / "loop2")
    rec("readlink.rel", os.readlink(d / "rel"), "dir/target")
    rec("readlink.abs", os.readlink(d / "abs") == absolute, True)
    rec("lstat.rel", st(d / "rel", follow=False),
        {"type": "lnk", "mode": "0o777", "nlink": 1, "size": 10, "uid": 0, "gid": 0})
    rec("lstat.abs.size", os.lstat(d / "abs").st_size == len(os.fsencode(absolute)), True)
    rec("stat.rel", st(d / "rel"))
    for n in ("rel", "abs", "dir/up", "dirlink/target"):
        rec(f"read.{n}", read_file(d / n), b"content")
    rec("same.inode", os.stat(d / "abs").st_ino == os.stat(d / "dir" / "target").st_ino, True)
    rec("dangling.open", e(os.open, d / "dangling", os.O_RDONLY), "ENOENT")
    rec("dangling.lstat", st(d / "dangling", follow=False)["size"], 7)
    rec("loop", e(os.stat, d / "loop1"), "ELOOP")
    rec("nofollow", e(os.open, d / "rel", os.O_RDONLY | os.O_NOFOLLOW), "ELOOP")
    rec("readlink.file", e(os.readlink, d / "dir" / "target"), "EINVAL")
    rec("readlink.missing", e(os.readlink, d / "nope"), "ENOENT")
    rec("symlink.exists", e(os.symlink, "x", d / "rel"), "EEXIST")
    # creating through a dangling symlink creates its target
    fd = os.open(d / "dangling", os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, b"via link")
    os.close(fd)
    rec("created.target", read_file(d / "nowhere"), b"via link")
    rec("excl.through.link", e(os.open, d / "rel", os.O_CREAT | os.O_EXCL | os.O_WRONLY), "EEXIST")
    long = "x" * 4095
    rec("long", e(os.symlink, long, d / "long"), None)
    rec("long.readlink", os.readlink(d / "long") == long, True)
    rec("long.lstat", os.lstat(d / "long").st_size, 4095)
    rec("toolong", e(os.symlink, "x" * 4096, d / "toolong"), "ENAMETOOLONG")
    # chmod follows, unlink does not
    os.chmod(d / "rel", 0o600)
    rec("chmod.follows", (st(d / "dir" / "target")["mode"], st(d / "rel", follow=False)["mode"]),
        ("0o600", "0o777"))
    os.unlink(d / "dirlink")
    rec("unlink.link", (st(d / "dirlink", follow=False), st(d / "dir")["type"]), ("ENOENT", "dir"))
    rec("list", sorted(os.listdir(d)),
        ["abs", "dangling", "dir", "long", "loop1", "loop2", "nowhere", "rel"])


def sc_hardlinks(d, rec):
    f = d / "f"
    write_file(f, b"one")
    rec("link", e(os.link, f, d / "g"), None)
    rec("nlink2", (st(f)["nlink"], st(d / "g")["nlink"]), (2, 2))
    os.mkdir(d / "sub")
    os.link(d / "g", d / "sub" / "h")
    rec("nlink3", st(f)["nlink"], 3)
    write_file(d / "sub" / "h", b"written via h")
    rec("shared", read_file(f), b"written via h")
    rec("same.inode", os.stat(f).st_ino == os.stat(d / "sub" / "h").st_ino, True)
    os.unlink(f)
    rec("after.unlink", (st(d / "g")["nlink"], read_file(d / "g")), (2, b"written via h"))
    fd = os.open(d / "g", os.O_RDONLY)
    os.unlink(d / "g")
    rec("fstat.nlink", fst(fd)["nlink"], 1)
    os.close(fd)
    rec("last", st(d / "sub" / "h")["nlink"], 1)
    rec("link.dir", e(os.link, d / "sub", d / "sublink"), "EPERM")
    rec("link.exists", e(os.link, d / "sub" / "h", d / "sub" / "h"), "EEXIST")
    rec("link.missing", e(os.link, d / "nope", d / "x"), "ENOENT")
    rec("link.into.missing", e(os.link, d / "sub" / "h", d / "no" / "x"), "ENOENT")
    os.symlink("sub/h", d / "sym")
    rec("link.symlink", e(os.link, d / "sym", d / "sym2", follow_symlinks=False), None)
    rec("symlink.nlink", (st(d / "sym", follow=False)["nlink"], st(d / "sub" / "h")["nlink"]),
        (2, 1))
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)   # linkat(AT_SYMLINK_FOLLOW)
    rec("link.follow", e(os.link, "sym", "hard2", src_dir_fd=dfd, dst_dir_fd=dfd,
                         follow_symlinks=True), None)
    os.close(dfd)
    rec("follow.nlink", st(d / "sub" / "h")["nlink"], 2)
    rec("list", sorted(os.listdir(d)), ["hard2", "sub", "sym", "sym2"])


def sc_dir_nlink(d, rec):
    rec("empty", st(d)["nlink"], 2)
    for i in range(5):
        os.mkdir(d / f"s{i}")
    for i in range(7):
        write_file(d / f"f{i}", b"")
    os.symlink("s0", d / "link")
    rec("five", st(d)["nlink"], 7)
    os.mkdir(d / "s0" / "deep")
    rec("deep", (st(d)["nlink"], st(d / "s0")["nlink"]), (7, 3))
    os.rmdir(d / "s1")
    rec("rmdir", st(d)["nlink"], 6)
    os.rename(d / "s2", d / "s0" / "s2")
    rec("moved", (st(d)["nlink"], st(d / "s0")["nlink"]), (5, 4))
    os.rename(d / "s3", d / "s4")    # over an empty dir: one fewer
    rec("replaced", st(d)["nlink"], 4)


# security.capability as setcap writes it: VFS_CAP_REVISION_2 with the
# effective flag, CAP_NET_RAW permitted (the kernel checks the format)
CAP_XATTR = bytes.fromhex("01000002" "00200000" "00000000" "00000000" "00000000")


def as_nobody(op, fd):
    """op(fd) in a child that dropped root (uid/gid 65534, no groups, so
    no CAP_FSETID): the fd was opened by root, so no path is checked."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            op(fd)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def caps(f):
    return e(os.getxattr, f, "security.capability") == CAP_XATTR


def sc_kill_privs(d, rec):
    """What the kernel (or, with FUSE_HANDLE_KILLPRIV_V2, the daemon) must
    clear when a file is written or truncated by a caller without
    CAP_FSETID: set-user-id and set-group-id; and the file capability,
    which any write removes, even root's."""
    f = d / "f"
    write_file(f, b"data")
    for name, op in (("write", lambda fd: os.write(fd, b"x")),
                     ("ftruncate", lambda fd: os.ftruncate(fd, 2))):
        os.chmod(f, 0o6777)
        fd = os.open(f, os.O_WRONLY)
        rec(f"nobody.{name}.exit", as_nobody(op, fd), 0)
        os.close(fd)
        rec(f"nobody.{name}.mode", st(f)["mode"], "0o777")
        # sgid without group-execute: cleared too when the writer is not
        # in the file's group, as Linux does now (setattr_should_drop_sgid)
        os.chmod(f, 0o2757)
        fd = os.open(f, os.O_WRONLY)
        rec(f"nobody.{name}.sgid.noexec.exit", as_nobody(op, fd), 0)
        os.close(fd)
        rec(f"nobody.{name}.sgid.noexec.mode", st(f)["mode"])
    os.chmod(f, 0o777)
    rec("cap.set", e(os.setxattr, f, "security.capability", CAP_XATTR), None)
    rec("cap.there", caps(f), True)
    fd = os.open(f, os.O_WRONLY)
    rec("nobody.cap.exit", as_nobody(lambda fd: os.write(fd, b"y"), fd), 0)
    os.close(fd)
    rec("nobody.write.kills.cap", caps(f), False)
    os.setxattr(f, "security.capability", CAP_XATTR)
    with open(f, "ab") as fh:
        fh.write(b"root")
    rec("root.write.kills.cap", caps(f), False)
    rec("size", st(f)["size"], 2 + 4)  # "y" went over offset 0


def sc_chmod_chown(d, rec):
    f = d / "f"
    write_file(f, b"data")
    for m in (0o600, 0o4755, 0o2755, 0o1644, 0o7777, 0o000):
        os.chmod(f, m)
        rec(f"chmod.{m:o}", st(f)["mode"], oct(m))
    os.chmod(f, 0o644)
    rec("chown.uid", (e(os.chown, f, 1234, -1), st(f)["uid"], st(f)["gid"]), (None, 1234, 0))
    rec("chown.gid", (e(os.chown, f, -1, 4321), st(f)["uid"], st(f)["gid"]), (None, 1234, 4321))
    rec("chown.none", (e(os.chown, f, -1, -1), st(f)["uid"], st(f)["gid"]), (None, 1234, 4321))
    # chown of a set-user-id executable clears the bit, even for root
    os.chmod(f, 0o4755)
    os.chown(f, 0, 0)
    rec("chown.clears.suid", st(f)["mode"], "0o755")
    os.chmod(f, 0o2755)
    os.chown(f, 1234, 1234)
    rec("chown.clears.sgid", st(f)["mode"], "0o755")
    # root keeps set-user-id on write (CAP_FSETID)
    os.chmod(f, 0o4755)
    with open(f, "ab") as fh:
        fh.write(b"more")
    rec("write.keeps.suid", st(f)["mode"], "0o4755")
    fd = os.open(f, os.O_RDWR)
    os.fchmod(fd, 0o640)
    os.fchown(fd, 99, 98)
    rec("fchmod.fchown", fst(fd))
    os.close(fd)
    os.mkdir(d / "dir")
    os.chown(d / "dir", 1234, 1234)
    os.chmod(d / "dir", 0o3775)
    rec("dir", st(d / "dir"))
    os.symlink("f", d / "sym")
    os.chown(d / "sym", 555, 556, follow_symlinks=False)
    rec("lchown", (st(d / "sym", follow=False)["uid"], st(d / "sym", follow=False)["gid"],
                   st(f)["uid"]), (555, 556, 99))
    rec("chmod.missing", e(os.chmod, d / "nope", 0o644), "ENOENT")
    rec("chown.missing", e(os.chown, d / "nope", 1, 1), "ENOENT")
    rec("final", st(f))


def sc_setgid_dir(d, rec):
    os.chown(d, 0, 4321)
    os.chmod(d, 0o2775)
    write_file(d / "f", b"")
    os.mkdir(d / "sub")
    rec("file", st(d / "f"), {"type": "reg", "mode": "0o644", "nlink": 1, "size": 0,
                              "uid": 0, "gid": 4321})
    rec("subdir", st(d / "sub"), {"type": "dir", "mode": "0o2755", "nlink": 2,
                                  "uid": 0, "gid": 4321})


def sc_times(d, rec):
    f = d / "f"
    write_file(f, b"x")
    t1, t2 = 1_000_000_000_123_456_789, 2_000_000_000_987_654_321
    utimensat(f, t1, t2)
    rec("exact", st(f, times=True), {"type": "reg", "mode": "0o644", "nlink": 1, "size": 1,
                                     "uid": 0, "gid": 0, "atime": t1, "mtime": t2})
    utimensat(f, "omit", 1_500_000_000_000_000_001)
    rec("omit.atime", st(f, times=True))
    utimensat(f, 1_600_000_000_000_000_002, "omit")
    rec("omit.mtime", st(f, times=True))
    lo = time.time_ns() - 50_000_000
    utimensat(f, "omit", "now")
    hi = time.time_ns() + 50_000_000
    s = os.stat(f)
    rec("now.mtime", (lo <= s.st_mtime_ns <= hi, s.st_atime_ns),
        (True, 1_600_000_000_000_000_002))
    lo = time.time_ns() - 50_000_000
    os.utime(f)
    hi = time.time_ns() + 50_000_000
    s = os.stat(f)
    rec("utime.none", (lo <= s.st_atime_ns <= hi, lo <= s.st_mtime_ns <= hi), (True, True))
    os.utime(f, ns=(-31_536_000 * 10**9 + 999_999_999, (1 << 33) * 10**9 + 7))
    rec("negative.and.far", st(f, times=True))
    os.utime(f, (1234567890.5, 1234567891.25))
    rec("float", st(f, times=True))
    # a write moves mtime forward from an old explicit value
    os.utime(f, ns=(t1, t1))
    lo = time.time_ns() - 50_000_000
    with open(f, "ab") as fh:
        fh.write(b"y")
    hi = time.time_ns() + 50_000_000
    rec("write.mtime", lo <= os.stat(f).st_mtime_ns <= hi, True)
    os.utime(f, ns=(t1, t1))
    os.truncate(f, 100)
    rec("truncate.mtime", os.stat(f).st_mtime_ns > t1, True)
    # directories and symlinks (not followed)
    os.mkdir(d / "dir")
    utimensat(d / "dir", t2, t1)
    rec("dir", st(d / "dir", times=True))
    os.utime(d, ns=(t1, t1))
    write_file(d / "g", b"")
    rec("dir.mtime.on.create", os.stat(d).st_mtime_ns > t1, True)
    os.utime(d, ns=(t1, t1))
    os.unlink(d / "g")
    rec("dir.mtime.on.unlink", os.stat(d).st_mtime_ns > t1, True)
    os.symlink("f", d / "sym")
    os.utime(f, ns=(t1, t2))
    utimensat(d / "sym", 42, 43, follow=False)
    rec("symlink", st(d / "sym", follow=False, times=True))
    rec("symlink.target", st(f, times=True))
    fd = os.open(f, os.O_RDONLY)
    os.utime(fd, ns=(t2, t2))
    rec("futimens", fst(fd, times=True))
    os.close(fd)
    rec("missing", e(os.utime, d / "nope", ns=(1, 1)), "ENOENT")


def sc_statfs(d, rec):
    s = os.statvfs(d)
    rec("bsize", s.f_bsize > 0, True)
    rec("frsize", s.f_frsize > 0, True)
    rec("namemax", s.f_namemax, 255)
    rec("free.le.blocks", s.f_bavail <= s.f_bfree <= s.f_blocks, True)
    rec("ffree.le.files", s.f_ffree <= s.f_files, True)
    fd = os.open(d, os.O_RDONLY)
    rec("fstatvfs", os.fstatvfs(fd).f_namemax, 255)
    os.close(fd)


def sc_xattrs(d, rec):
    f = d / "f"
    write_file(f, b"")
    rec("empty.list", os.listxattr(f), [])
    rec("set", e(os.setxattr, f, "user.a", b"1"), None)
    rec("get", os.getxattr(f, "user.a"), b"1")
    rec("create.exists", e(os.setxattr, f, "user.a", b"2", os.XATTR_CREATE), "EEXIST")
    rec("replace.missing", e(os.setxattr, f, "user.b", b"2", os.XATTR_REPLACE), "ENODATA")
    rec("replace", e(os.setxattr, f, "user.a", b"22", os.XATTR_REPLACE), None)
    rec("get.replaced", os.getxattr(f, "user.a"), b"22")
    rec("create", e(os.setxattr, f, "user.b", b"", os.XATTR_CREATE), None)
    rec("get.empty", os.getxattr(f, "user.b"), b"")
    rec("get.missing", e(os.getxattr, f, "user.zz"), "ENODATA")
    rec("remove.missing", e(os.removexattr, f, "user.zz"), "ENODATA")
    binary = bytes(range(256)) * 3
    os.setxattr(f, "user.bin", binary)
    rec("binary", os.getxattr(f, "user.bin") == binary, True)
    big = pattern(65536, 4)
    rec("max.value", e(os.setxattr, f, "user.big", big), None)
    rec("max.value.get", os.getxattr(f, "user.big") == big, True)
    rec("too.big", e(os.setxattr, f, "user.huge", big + b"x"), "E2BIG")
    long = "user." + "n" * 250
    rec("long.name", e(os.setxattr, f, long, b"v"), None)
    rec("too.long.name", e(os.setxattr, f, long + "n", b"v"), "ERANGE")
    rec("list", sorted(os.listxattr(f)), sorted(["user.a", "user.b", "user.bin", "user.big", long]))
    rec("remove", e(os.removexattr, f, "user.b"), None)
    rec("list.after.remove", sorted(os.listxattr(f)), sorted(["user.a", "user.bin", "user.big", long]))
    for i in range(50):
        os.setxattr(f, f"user.many{i:02d}", b"%d" % i)
    rec("many", sorted(os.listxattr(f))[:3], ["user.a", "user.big", "user.bin"])
    rec("many.count", len(os.listxattr(f)), 54)
    # they belong to the inode: follow rename and hard links
    os.rename(f, d / "g")
    os.link(d / "g", d / "h")
    rec("via.link", os.getxattr(d / "h", "user.many07"), b"7")
    fd = os.open(d / "h", os.O_RDONLY)
    os.setxattr(fd, "user.fd", b"fd")
    rec("fgetxattr", os.getxattr(d / "g", "user.fd"), b"fd")
    os.close(fd)
    # directories take user.* attributes; symlinks and fifos do not
    os.setxattr(d, "user.dir", b"d")
    rec("dir", os.getxattr(d, "user.dir"), b"d")
    os.symlink("g", d / "sym")
    rec("symlink.nofollow", e(os.setxattr, d / "sym", "user.x", b"1", follow_symlinks=False),
        "EPERM")
    rec("symlink.follow", e(os.setxattr, d / "sym", "user.x", b"1"), None)
    rec("symlink.follow.get", os.getxattr(d / "g", "user.x"), b"1")
    os.mkfifo(d / "fifo")
    rec("fifo", e(os.setxattr, d / "fifo", "user.x", b"1"), "EPERM")
    rec("bad.namespace", e(os.setxattr, d / "g", "nonsense.x", b"1"), "EOPNOTSUPP")
    rec("missing.file", e(os.getxattr, d / "nope", "user.a"), "ENOENT")
    # an unlinked file's attributes stay with the descriptor
    fd = os.open(d / "h", os.O_RDONLY)
    os.unlink(d / "h")
    os.unlink(d / "g")
    rec("unlinked", os.getxattr(fd, "user.a"), b"22")
    os.close(fd)


def sc_fsync(d, rec):
    f = d / "f"
    fd = os.open(f, os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, pattern(200 * KIB, 5))
    rec("fsync", e(os.fsync, fd), None)
    os.pwrite(fd, b"x", 10)
    rec("fdatasync", e(os.fdatasync, fd), None)
    rec("fsync.again", e(os.fsync, fd), None)
    os.close(fd)
    fd = os.open(f, os.O_RDONLY)
    rec("fsync.rdonly", e(os.fsync, fd), None)
    os.close(fd)
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    rec("fsync.dir", e(os.fsync, fd), None)
    rec("fdatasync.dir", e(os.fdatasync, fd), None)
    os.close(fd)
    for flag in (os.O_SYNC, os.O_DSYNC):
        fd = os.open(d / "sync", os.O_CREAT | os.O_WRONLY | flag, 0o644)
        rec(f"write.{flag:#o}", os.write(fd, b"synchronous"), 11)
        os.close(fd)
    os.sync()
    rec("content", digest(read_file(f)),
        digest(pattern(10, 5) + b"x" + pattern(200 * KIB, 5)[11:]))


def sc_flock(d, rec):
    f = d / "f"
    write_file(f, b"")
    fd = os.open(f, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)

    def try_ex():
        x = os.open(f, os.O_RDWR)
        fcntl.flock(x, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return "locked"

    def try_sh():
        x = os.open(f, os.O_RDONLY)
        fcntl.flock(x, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return "locked"

    rec("ex.vs.ex", Child(try_ex).result(), repr("EAGAIN"))   # EWOULDBLOCK == EAGAIN
    rec("ex.vs.sh", Child(try_sh).result(), repr("EAGAIN"))
    fcntl.flock(fd, fcntl.LOCK_SH)
    rec("sh.vs.sh", Child(try_sh).result(), repr("locked"))
    rec("sh.vs.ex", Child(try_ex).result(), repr("EAGAIN"))

    def blocking():
        x = os.open(f, os.O_RDWR)
        fcntl.flock(x, fcntl.LOCK_EX)
        return "got it"

    child = Child(blocking)
    rec("blocked", child.result(0.5), None)
    fcntl.flock(fd, fcntl.LOCK_UN)
    rec("released", child.result(10), repr("got it"))
    child.kill()
    # closing the last descriptor drops the lock
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.close(fd)
    rec("after.close", Child(try_ex).result(), repr("locked"))


def sc_posix_locks(d, rec):
    f = d / "f"
    write_file(f, bytes(1000))
    fd = os.open(f, os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX)

    def try_lock(start=0, length=0, kind=fcntl.LOCK_EX):
        def go():
            x = os.open(f, os.O_RDWR)
            fcntl.lockf(x, kind | fcntl.LOCK_NB, length, start)
            return "locked"
        return Child(go).result()

    rec("whole.vs.whole", try_lock(), repr("EAGAIN"))
    rec("whole.vs.shared", try_lock(kind=fcntl.LOCK_SH), repr("EAGAIN"))

    def blocking():
        x = os.open(f, os.O_RDWR)
        fcntl.lockf(x, fcntl.LOCK_EX)
        return "got it"

    child = Child(blocking)
    rec("blocked", child.result(0.5), None)
    fcntl.lockf(fd, fcntl.LOCK_UN)
    rec("released", child.result(10), repr("got it"))
    child.kill()
    # byte ranges: [0, 100) held by us
    fcntl.lockf(fd, fcntl.LOCK_EX, 100, 0)
    rec("range.disjoint", try_lock(100, 100), repr("locked"))
    rec("range.overlap", try_lock(50, 10), repr("EAGAIN"))
    rec("range.to.eof", try_lock(99, 0), repr("EAGAIN"))
    fcntl.lockf(fd, fcntl.LOCK_SH, 100, 0)          # downgrade
    rec("range.shared", try_lock(0, 100, fcntl.LOCK_SH), repr("locked"))
    rec("range.shared.ex", try_lock(0, 100), repr("EAGAIN"))
    # closing any descriptor of the file drops the process's POSIX locks
    other = os.open(f, os.O_RDONLY)
    os.close(other)
    rec("dropped.on.close", try_lock(), repr("locked"))
    os.close(fd)


def sc_mmap_read(d, rec):
    f = d / "f"
    data = pattern(MIB + 123, 6)
    write_file(f, data)
    fd = os.open(f, os.O_RDWR)
    with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as m:
        rec("whole", m[:] == data, True)
        rec("len", len(m), MIB + 123)
        rec("tail", m[-5:], data[-5:])
        os.pwrite(fd, b"NEW", 4096 * 3 + 1)   # visible through the mapping
        rec("coherent", m[4096 * 3:4096 * 3 + 5], data[4096 * 3:4096 * 3 + 1] + b"NEW" +
            data[4096 * 3 + 4:4096 * 3 + 5])
    with mmap.mmap(fd, 8192, access=mmap.ACCESS_READ, offset=65536) as m:
        rec("offset", m[:] == data[65536:65536 + 8192], True)
    os.close(fd)
    write_file(d / "small", b"tiny")
    with open(d / "small", "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
        rec("small", m[:], b"tiny")


def sc_mmap_write(d, rec):
    f = d / "f"
    write_file(f, pattern(3 * 4096 + 100, 7))
    fd = os.open(f, os.O_RDWR)
    with mmap.mmap(fd, 0, access=mmap.ACCESS_WRITE) as m:
        m[0:5] = b"HELLO"
        m[4096 * 2 + 7:4096 * 2 + 10] = b"MID"
        m[-3:] = b"END"
        m.flush()
    os.fsync(fd)
    rec("pread", digest(pread_all(fd, 1 << 16, 0)))
    rec("pread.head", os.pread(fd, 5, 0), b"HELLO")
    os.close(fd)
    rec("reopen", digest(read_file(f)))
    rec("st", st(f))


def sc_odirect(d, rec):
    f = d / "f"
    buf = mmap.mmap(-1, 3 * 4096)       # page-aligned, as O_DIRECT wants
    buf[:] = pattern(3 * 4096, 8)
    fd = os.open(f, os.O_CREAT | os.O_RDWR | os.O_DIRECT, 0o644)
    rec("write", os.write(fd, buf), 3 * 4096)
    rec("pwritev", os.pwritev(fd, [buf], 64 * 1024), 3 * 4096)
    out = mmap.mmap(-1, 4096)
    rec("preadv", (os.preadv(fd, [out], 4096), out[:] == buf[4096:8192]), (4096, True))
    # cached and direct I/O on one file see each other
    cached = os.open(f, os.O_RDWR)
    os.pwrite(cached, b"cached", 8192)
    os.preadv(fd, [out], 8192)
    rec("direct.sees.cached", out[:6], b"cached")
    buf[:6] = b"direct"
    os.pwritev(fd, [buf], 0)
    rec("cached.sees.direct", os.pread(cached, 6, 0), b"direct")
    os.close(cached)
    os.close(fd)
    rec("st", st(f))
    rec("content", digest(read_file(f)))


def sc_copy(d, rec):
    import shutil
    src = d / "src"
    data = pattern(MIB + 77, 9)
    write_file(src, data)
    os.setxattr(src, "user.tag", b"copied")
    os.utime(src, ns=(1_000_000_000_000_000_001, 1_100_000_000_000_000_002))
    a, b = os.open(src, os.O_RDONLY), os.open(d / "cfr", os.O_CREAT | os.O_WRONLY, 0o644)
    n = 0
    while n < len(data):
        k = os.copy_file_range(a, b, len(data) - n)
        if k == 0:
            break
        n += k
    os.close(b)
    rec("copy_file_range", read_file(d / "cfr") == data, True)
    b = os.open(d / "sendfile", os.O_CREAT | os.O_WRONLY, 0o644)
    off = 0
    while off < len(data):
        k = os.sendfile(b, a, off, len(data) - off)
        if k == 0:
            break
        off += k
    os.close(b)
    os.close(a)
    rec("sendfile", read_file(d / "sendfile") == data, True)
    shutil.copyfile(src, d / "copyfile")
    rec("copyfile", read_file(d / "copyfile") == data, True)
    shutil.copy2(src, d / "copy2")
    rec("copy2", (read_file(d / "copy2") == data, st(d / "copy2")))
    # (atime is copied from the source, which tmpfs updated on read)
    rec("copy2.mtime", os.stat(d / "copy2").st_mtime_ns, 1_100_000_000_000_000_002)
    rec("copy2.xattr", os.getxattr(d / "copy2", "user.tag"), b"copied")
    # posix_fallocate (glibc writes zeros where fallocate is unsupported)
    fd = os.open(d / "alloc", os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, b"keep")
    rec("fallocate", e(os.posix_fallocate, fd, 0, 300 * KIB), None)
    rec("fallocate.st", (fst(fd)["size"], os.pread(fd, 6, 0)), (300 * KIB, b"keep\0\0"))
    os.close(fd)
    rec("list", sorted(os.listdir(d)),
        ["alloc", "cfr", "copy2", "copyfile", "sendfile", "src"])


def sc_permissions(d, rec):
    """An unprivileged process: the kernel checks modes (default_permissions)
    against the owners the filesystem reports, and what it creates is its."""
    write_file(d / "private", b"secret", 0o600)
    write_file(d / "public", b"public", 0o644)
    os.mkdir(d / "rootdir")
    os.mkdir(d / "sticky")
    os.chmod(d / "sticky", 0o1777)
    os.mkdir(d / "open")
    os.chmod(d / "open", 0o777)
    write_file(d / "sticky" / "roots", b"")
    os.chmod(d / "sticky" / "roots", 0o666)

    def as_user():
        os.chdir(d)     # before dropping privileges: the parents are 0700
        os.setgroups([])
        os.setgid(4321)
        os.setuid(1234)
        r = {}

        def t(key, fn, *a, **kw):
            r[key] = e(fn, *a, **kw)
        t("read.private", lambda: read_file("private"))
        t("read.public", lambda: read_file("public"))
        t("write.public", os.open, "public", os.O_WRONLY)
        t("create.rootdir", os.open, "rootdir/x", os.O_CREAT | os.O_WRONLY, 0o644)
        t("mkdir.rootdir", os.mkdir, "rootdir/x")
        t("chmod.public", os.chmod, "public", 0o777)
        t("chown.public", os.chown, "public", 1234, 4321)
        t("utime.public", os.utime, "public")
        t("truncate.public", os.truncate, "public", 0)
        t("setxattr.public", os.setxattr, "public", "user.x", b"1")
        t("unlink.public", os.unlink, "public")
        t("create.sticky", lambda: write_file("sticky/mine", b"mine"))
        t("unlink.sticky.roots", os.unlink, "sticky/roots")
        t("write.sticky.roots", lambda: write_file("sticky/roots", b"w"))
        t("rename.sticky.roots", os.rename, "sticky/roots", "sticky/x")
        t("mkdir.open", os.mkdir, "open/sub", 0o700)
        t("create.open", lambda: write_file("open/file", b"by 1234", 0o640))
        t("chmod.own", os.chmod, "open/file", 0o600)
        t("utime.own", os.utime, "open/file", ns=(5, 6))
        t("setxattr.own", os.setxattr, "open/file", "user.mine", b"1")
        t("chown.own.to.other", os.chown, "open/file", 99, -1)
        t("chown.own.to.group", os.chown, "open/file", -1, 0)
        t("unlink.sticky.mine", os.unlink, "sticky/mine")
        return r

    got = Child(as_user).result(30)
    rec("as.user", got)
    rec("created", (st(d / "open" / "file", times=True), st(d / "open" / "sub")))
    rec("created.xattr", e(os.getxattr, d / "open" / "file", "user.mine"), b"1")
    rec("roots", read_file(d / "sticky" / "roots"), b"w")
    rec("list", sorted(os.listdir(d / "sticky")), ["roots"])


def sc_special_files(d, rec):
    os.mkfifo(d / "fifo", 0o640)
    rec("fifo", st(d / "fifo"), {"type": "fifo", "mode": "0o640", "nlink": 1, "size": 0,
                                 "uid": 0, "gid": 0})
    r = os.open(d / "fifo", os.O_RDONLY | os.O_NONBLOCK)
    w = os.open(d / "fifo", os.O_WRONLY | os.O_NONBLOCK)
    os.write(w, b"through the pipe")
    rec("fifo.works", os.read(r, 100), b"through the pipe")
    os.close(w)
    os.close(r)
    cwd = os.getcwd()
    os.chdir(d)      # sun_path is short; bind relative to the directory
    try:
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind("sock")
        srv.listen(1)
        cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        cli.connect("sock")
        conn, _ = srv.accept()
        cli.sendall(b"ping")
        rec("sock.works", conn.recv(10), b"ping")
        for s in (conn, cli, srv):
            s.close()
        with socket.socket(socket.AF_UNIX) as again:
            rec("sock.rebind.in.use", e(again.bind, "sock"), "EADDRINUSE")
    finally:
        os.chdir(cwd)
    rec("sock", {k: v for k, v in st(d / "sock").items() if k != "mode"},
        {"type": "sock", "nlink": 1, "size": 0, "uid": 0, "gid": 0})
    rec("sock.mode", st(d / "sock")["mode"])
    rec("chr", e(os.mknod, d / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3)), None)
    rec("chr.st", st(d / "null"), {"type": "chr", "mode": "0o600", "nlink": 1, "size": 0,
                                   "uid": 0, "gid": 0, "rdev": (1, 3)})
    os.mknod(d / "blk", stat.S_IFBLK | 0o640, os.makedev(259, 65537))
    rec("blk.st", st(d / "blk"))
    os.mknod(d / "reg", stat.S_IFREG | 0o600)
    rec("reg.st", st(d / "reg"))
    rec("mknod.exists", e(os.mknod, d / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3)), "EEXIST")
    os.link(d / "fifo", d / "fifo2")
    rec("fifo.link", st(d / "fifo2")["nlink"], 2)
    os.rename(d / "null", d / "null2")
    rec("chr.renamed", st(d / "null2")["rdev"], (1, 3))
    rec("list", sorted(os.listdir(d)), ["blk", "fifo", "fifo2", "null2", "reg", "sock"])


def sc_names(d, rec):
    n255 = "a" * 255
    rec("create.255", e(write_file, d / n255, b"x"), None)
    rec("stat.255", st(d / n255)["size"], 1)
    rec("listed.255", n255 in os.listdir(d), True)
    rec("rename.255", e(os.rename, d / n255, d / ("b" * 255)), None)
    n256 = "c" * 256
    rec("create.256", e(os.open, d / n256, os.O_CREAT | os.O_WRONLY), "ENAMETOOLONG")
    rec("stat.256", e(os.stat, d / n256), "ENAMETOOLONG")
    rec("mkdir.256", e(os.mkdir, d / n256), "ENAMETOOLONG")
    rec("symlink.256", e(os.symlink, "x", d / n256), "ENAMETOOLONG")
    rec("link.256", e(os.link, d / ("b" * 255), d / n256), "ENAMETOOLONG")
    rec("rename.256", e(os.rename, d / ("b" * 255), d / n256), "ENAMETOOLONG")
    rec("mknod.256", e(os.mkfifo, d / n256), "ENAMETOOLONG")
    rec("mkdir.255", e(os.mkdir, d / ("d" * 255)), None)
    utf = "\u00e9" * 127 + "x"           # 255 bytes of UTF-8
    rec("utf8.255", e(write_file, d / utf, b"u"), None)
    rec("utf8.256", e(write_file, d / ("\u00e9" * 128), b"u"), "ENAMETOOLONG")
    raw = os.fsencode(d) + b"/\xff\xfe raw\n\x01"
    rec("raw.bytes", e(write_file, raw, b"r"), None)
    for name in ("with space", "-dash", ".hidden", "..dots", "tab\there", "\u6587\u4ef6"):
        write_file(d / name, name.encode())
    rec("names", sorted(os.listdir(os.fsencode(d))))
    rec("raw.read", read_file(raw), b"r")
    rec("dot.names", (st(os.path.join(d, "."))["type"], st(os.path.join(d, ".."))["type"]),
        ("dir", "dir"))


def sc_readdir(d, rec):
    os.mkdir(d / "sub")
    write_file(d / "file", b"")
    os.symlink("file", d / "link")
    os.mkfifo(d / "fifo")
    h = Dir(d)
    ents = h.read()
    h.close()
    rec("entries", sorted(ents), sorted([(b".", 4), (b"..", 4), (b"sub", 4), (b"file", 8),
                                         (b"link", 10), (b"fifo", 1)]))
    with os.scandir(d) as it:
        rec("scandir", sorted((x.name, x.is_dir(follow_symlinks=False),
                               x.is_file(follow_symlinks=False), x.is_symlink()) for x in it))
    for i in range(3000):
        write_file(d / f"entry-with-a-long-name-{i:06d}", b"")
    names = set(os.listdir(d))
    rec("count", len(names), 3004)
    rec("repeat", all(set(os.listdir(d)) == names for _ in range(3)), True)
    # telldir/seekdir: returning to a position replays the same entries
    h = Dir(d)
    first = h.read(1000)
    pos = h.tell()
    rest = h.read()
    h.seek(pos)
    again = h.read()
    h.rewind()
    whole = h.read()
    h.close()
    rec("seekdir", (again == rest, len(first) + len(rest), sorted(whole) == sorted(first + rest)),
        (True, 3006, True))
    mid = Dir(d)
    mid.read(1500)
    p2 = mid.tell()
    tail = mid.read()
    mid.seek(p2)
    rec("seekdir.mid", mid.read() == tail, True)
    mid.close()
    # entries neither added nor removed during the walk appear exactly once
    h = Dir(d)
    seen = [n for n, _ in h.read(1000)]
    removed = set(seen[100:400]) | {f"entry-with-a-long-name-{i:06d}".encode()
                                    for i in range(0, 3000, 3)}
    removed -= {b".", b".."}
    for n in removed:
        if n.startswith(b"entry"):
            os.unlink(os.path.join(os.fsencode(d), n))
    for i in range(500):
        write_file(d / f"added-{i:04d}", b"")
    seen += [n for n, _ in h.read()]
    h.close()
    untouched = {os.fsencode(n) for n in names} | {b".", b".."}
    untouched -= {n for n in removed if n.startswith(b"entry")}
    counts = {}
    for n in seen:
        counts[n] = counts.get(n, 0) + 1
    rec("untouched.once", sorted(n for n in untouched if counts.get(n) != 1), [])
    rec("no.duplicates", sorted(n for n, c in counts.items() if c > 1), [])


SCENARIOS = [v for k, v in sorted(globals().items()) if k.startswith("sc_")]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__[3:])
def test_posix(scenario, fut, tmpfs):
    oracle = run_scenario(scenario, tmpfs)
    wrong = {k: {"tmpfs": oracle[k], "want": w} for k, w in oracle.want.items() if oracle[k] != w}
    assert not wrong, f"the oracle disagrees with the test's expectations: {wrong}"
    got = run_scenario(scenario, fut)
    diff = {k: {"tmpfs": oracle.get(k, "<missing>"), "fut": got.get(k, "<missing>")}
            for k in list(oracle) + [k for k in got if k not in oracle]
            if oracle.get(k, _NONE) != got.get(k, _NONE)}
    assert not diff, "differs from tmpfs:\n" + "\n".join(f"  {k}: {v}" for k, v in diff.items())


def test_readdir_100k(fut):
    """100,000 entries in one directory: os.listdir returns exactly them."""
    if SHORT:
        pytest.skip("HOARD_E2E_SHORT=1")
    d = fut / "big"
    d.mkdir()
    n = 100_000
    names = {f"f{i:06d}-{'x' * (i % 40)}" for i in range(n)}
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in names:
            os.mknod(name, stat.S_IFREG | 0o644, dir_fd=dfd)
    finally:
        os.close(dfd)
    listed = os.listdir(d)
    assert len(listed) == n
    assert set(listed) == names
    assert os.stat(d).st_nlink == 2
    with os.scandir(d) as it:
        assert sum(1 for x in it if x.is_file(follow_symlinks=False)) == n


@pytest.mark.skipif(FUT != "hoard", reason="O_TMPFILE is hoard-specific (tmpfs supports it)")
def test_o_tmpfile_unsupported(fut):
    with pytest.raises(OSError) as x:
        os.open(fut, os.O_TMPFILE | os.O_RDWR, 0o600)
    assert ename(x.value.errno) == "EOPNOTSUPP"
    assert os.listdir(fut) == []
