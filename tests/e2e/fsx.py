# SPDX-License-Identifier: MIT
"""fsx: a randomized file operation checker.

Applies one stream of random operations (write, pwrite anywhere including
far past EOF, read, mmap read, truncate and ftruncate, rename, link, unlink,
open/dup/close, fsync, fstat, whole-file verify) over a few file names to two directory trees, an
oracle (tmpfs) and the filesystem under test, and compares every result:
bytes read, return values, errno names, sizes and link counts.  At the end
(and every `check_every` operations) every name and every open descriptor is
compared in full.  Operations are chosen from the oracle's state only, so a
seed replays exactly.

Usage as a program: fsx.py [--seed N] [--ops N] ORACLE_DIR FUT_DIR
"""
import argparse
import collections
import ctypes
import errno
import mmap
import os
import random
import stat
import sys
import zlib

KIB = 1 << 10
MIB = 1 << 20


class Mismatch(AssertionError):
    pass


def ename(n):
    return "EOPNOTSUPP" if n == errno.EOPNOTSUPP else errno.errorcode.get(n, n)


def first_difference(a, b):
    if not isinstance(a, bytes) or not isinstance(b, bytes):
        return ""
    n = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return (f" (lengths {len(a)} vs {len(b)}, first difference at +{n}: "
            f"{a[n:n + 8].hex()} vs {b[n:n + 8].hex()})")


def short(v):
    if isinstance(v, bytes):
        return f"<{len(v)} bytes {v[:8].hex()}..>" if len(v) > 16 else repr(v)
    return repr(v)


class Handle:
    """One open file description on each side."""

    def __init__(self, hid, name, fds, flags):
        self.hid, self.name, self.fds, self.flags = hid, name, fds, flags

    def __str__(self):
        return f"h{self.hid}({self.name})"


class Fsx:
    def __init__(self, oracle, fut, seed, nops, nnames=6, max_size=3 * MIB,
                 max_handles=6, check_every=500, log=None):
        self.dirs = [os.fspath(oracle), os.fspath(fut)]
        for d in self.dirs:
            os.makedirs(d, exist_ok=True)
        self.seed, self.nops = seed, nops
        self.rng = random.Random(seed)
        self.names = [f"f{i}" for i in range(nnames)]
        self.max_size = max_size
        self.max_handles = max_handles
        self.check_every = check_every
        self.handles = []
        self.next_hid = 0
        self.history = collections.deque(maxlen=20)
        self.index = -1
        self.log = log
        self.counts = collections.Counter()
        self.buf = bytearray(MIB)

    # -- running an operation on both sides --------------------------------
    def path(self, side, name):
        return os.path.join(self.dirs[side], name)

    def both(self, desc, fn, explain=None):
        """fn(side) on the oracle (0) and the filesystem under test (1);
        their results (or errno names) must be equal.  Returns the oracle's.
        explain() may add detail to a mismatch report."""
        self.history.append(f"#{self.index}: {desc}")
        if self.log:
            self.log(f"#{self.index}: {desc}")
        out = []
        for side in (0, 1):
            try:
                out.append(fn(side))
            except OSError as x:
                out.append(ename(x.errno))
        if out[0] != out[1]:
            self.fail(f"{desc}: oracle {short(out[0])}, fs under test {short(out[1])}"
                      + first_difference(out[0], out[1]) + (explain() if explain else ""))
        return out[0]

    def fail(self, what):
        raise Mismatch(
            f"fsx mismatch: seed={self.seed} op #{self.index} of {self.nops}\n  {what}\n"
            f"last operations (replay: Fsx(oracle, fut, seed={self.seed}, nops={self.index + 1}, "
            f"nnames={len(self.names)}, max_size={self.max_size}, "
            f"max_handles={self.max_handles}).run()):\n    "
            + "\n    ".join(self.history))

    # -- choosing parameters -----------------------------------------------
    def size_of(self, h):
        return os.fstat(h.fds[0]).st_size

    def offset(self, size):
        r = self.rng.random()
        if r < 0.35:
            off = self.rng.randint(0, size)
        elif r < 0.65:
            off = max(0, size + self.rng.randint(-4096, 4096))
        elif r < 0.93:
            off = self.rng.randint(0, min(self.max_size, 2 * size + 64 * KIB))
        else:   # far past EOF: leaves a hole
            off = size + self.rng.randint(64 * KIB, MIB)
        return min(off, self.max_size - 1)

    def length(self):
        r = self.rng.random()
        if r < 0.65:
            return self.rng.randint(1, 4096)
        if r < 0.9:
            return self.rng.randint(4097, 64 * KIB)
        return self.rng.randint(64 * KIB, 300 * KIB)

    def data(self, n):
        if self.rng.random() < 0.6:
            return self.rng.randbytes(n)          # incompressible
        unit = self.rng.randbytes(self.rng.randint(1, 64))
        return (unit * (n // len(unit) + 1))[:n]   # compressible

    def new_size(self, size):
        r = self.rng.random()
        if r < 0.45:
            return self.rng.randint(0, size)
        if r < 0.75:
            return min(self.max_size, size + self.rng.randint(1, 512 * KIB))
        if r < 0.85:
            return 0
        # on or next to a multiple of the minimum chunk size
        return max(0, min(self.max_size, self.rng.randint(0, 64) * 16 * KIB
                          + self.rng.randint(-1, 1)))

    def handle(self):
        return self.rng.choice(self.handles) if self.handles else None

    # -- operations ------------------------------------------------------------
    def op_open(self):
        if len(self.handles) >= self.max_handles:
            self.op_close()
        name = self.rng.choice(self.names)
        flags = os.O_RDWR | os.O_CREAT
        r = self.rng.random()
        if r < 0.1:
            flags |= os.O_TRUNC
        elif r < 0.2:
            flags |= os.O_APPEND
        elif r < 0.25:
            flags |= os.O_EXCL
        fds = []

        def go(side):
            fds.append(os.open(self.path(side, name), flags, 0o644))
            return "ok"

        res = self.both(f"open {name} flags={flags:#o} -> h{self.next_hid}", go)
        if res == "ok":
            self.handles.append(Handle(self.next_hid, name, fds, flags))
            self.next_hid += 1
        else:
            for fd in fds:
                os.close(fd)

    def op_dup(self):
        """A second descriptor for one open file description: closing either
        one flushes (FUSE_FLUSH) while the other stays open."""
        h = self.handle()
        if h is None:
            return self.op_open()
        if len(self.handles) >= self.max_handles:
            return self.op_close()
        fds = []
        self.both(f"dup {h} -> h{self.next_hid}", lambda side: fds.append(os.dup(h.fds[side])))
        self.handles.append(Handle(self.next_hid, h.name, fds, h.flags))
        self.next_hid += 1

    def op_close(self):
        h = self.handle()
        if h is None:
            return self.op_open()
        size = self.size_of(h)
        self.compare_whole(f"verify {h} size={size} before close", h.fds, size)
        self.handles.remove(h)
        self.both(f"close {h}", lambda side: os.close(h.fds[side]))

    def op_write(self):
        h = self.handle()
        if h is None:
            return self.op_open()
        size = self.size_of(h)
        off = self.offset(size)
        end = size if h.flags & os.O_APPEND else off    # where the bytes land
        buf = self.data(max(1, min(self.length(), self.max_size - end)))

        def go(side):
            fd = h.fds[side]
            os.lseek(fd, off, os.SEEK_SET)
            n = os.write(fd, buf)
            return n, os.lseek(fd, 0, os.SEEK_CUR)

        self.both(f"write {h} off={off} len={len(buf)}", go)

    def op_pwrite(self):
        h = self.handle()
        if h is None:
            return self.op_open()
        size = self.size_of(h)
        off = self.offset(size)
        end = size if h.flags & os.O_APPEND else off    # where the bytes land
        buf = self.data(max(1, min(self.length(), self.max_size - end)))
        self.both(f"pwrite {h} off={off} len={len(buf)}",
                  lambda side: os.pwrite(h.fds[side], buf, off))

    def op_read(self):
        h = self.handle()
        if h is None:
            return self.op_open()
        size = self.size_of(h)
        off = self.rng.randint(0, size + 100) if self.rng.random() < 0.9 else self.offset(size)
        n = self.length()
        self.both(f"read {h} off={off} len={n}", lambda side: os.pread(h.fds[side], n, off))

    def op_mapread(self):
        h = self.handle()
        if h is None:
            return self.op_open()
        size = self.size_of(h)
        if size == 0:
            return self.op_read()
        off = self.rng.randrange(size)
        n = min(self.length(), size - off)
        base = off - off % mmap.ALLOCATIONGRANULARITY

        def go(side):
            fd = h.fds[side]
            if os.fstat(fd).st_size < off + n:
                return "short file"
            with mmap.mmap(fd, off + n - base, access=mmap.ACCESS_READ, offset=base) as m:
                return m[off - base:off - base + n]

        self.both(f"mapread {h} off={off} len={n}", go)

    def op_truncate(self):
        if self.handles and self.rng.random() < 0.6:
            h = self.handle()
            size = self.new_size(self.size_of(h))
            self.both(f"ftruncate {h} size={size}", lambda side: os.ftruncate(h.fds[side], size))
        else:
            name = self.rng.choice(self.names)
            try:
                old = os.stat(self.path(0, name)).st_size
            except FileNotFoundError:
                old = 0
            size = self.new_size(old)
            self.both(f"truncate {name} size={size}",
                      lambda side: os.truncate(self.path(side, name), size))

    def op_rename(self):
        a, b = self.rng.choice(self.names), self.rng.choice(self.names)
        self.both(f"rename {a} {b}",
                  lambda side: os.rename(self.path(side, a), self.path(side, b)))

    def op_link(self):
        a, b = self.rng.choice(self.names), self.rng.choice(self.names)
        self.both(f"link {a} {b}", lambda side: os.link(self.path(side, a), self.path(side, b)))

    def op_unlink(self):
        a = self.rng.choice(self.names)
        self.both(f"unlink {a}", lambda side: os.unlink(self.path(side, a)))

    def op_fsync(self):
        h = self.handle()
        if h is None:
            return self.op_open()
        sync = os.fsync if self.rng.random() < 0.7 else os.fdatasync
        self.both(f"{sync.__name__} {h}", lambda side: sync(h.fds[side]))

    def op_stat(self):
        if self.handles and self.rng.random() < 0.6:
            h = self.handle()

            def go(side):
                s = os.fstat(h.fds[side])
                return s.st_size, s.st_nlink, oct(s.st_mode)
            self.both(f"fstat {h}", go)
        else:
            name = self.rng.choice(self.names)

            def go(side):
                s = os.lstat(self.path(side, name))
                return s.st_size, s.st_nlink, oct(s.st_mode)
            self.both(f"lstat {name}", go)

    def op_verify(self):
        """The whole content of one open file."""
        h = self.handle()
        if h is None:
            return self.op_open()
        size = self.size_of(h)
        self.compare_whole(f"verify {h} size={size}", h.fds, size)

    OPS = [("write", 16), ("pwrite", 16), ("read", 18), ("mapread", 8), ("truncate", 4),
           ("rename", 2), ("link", 3), ("unlink", 2), ("open", 7), ("dup", 1), ("close", 4),
           ("fsync", 3), ("stat", 10), ("verify", 5)]

    @staticmethod
    def pread_all(fd, size):
        out, off = [], 0
        while off < size:
            b = os.pread(fd, min(MIB, size - off), off)
            if not b:
                break
            out.append(b)
            off += len(b)
        return b"".join(out)

    def summary(self, fd, size):
        """(bytes read, crc32) of the first `size` bytes: whole-file
        comparisons without allocating (fast in a VM with slow page faults)."""
        view = memoryview(self.buf)
        crc, off = 0, 0
        while off < size:
            n = os.preadv(fd, [view[:min(len(self.buf), size - off)]], off)
            if n == 0:
                break
            crc = zlib.crc32(view[:n], crc)
            off += n
        return off, crc

    def compare_whole(self, desc, fds, size):
        def explain():
            a, b = (self.pread_all(fd, size) for fd in fds)
            return first_difference(a, b)
        self.both(desc, lambda side: self.summary(fds[side], size), explain)

    # -- whole-state comparison ---------------------------------------------
    def check_all(self, what="full check"):
        """Every name (existence, type, size, nlink, content) and every open
        descriptor (size, nlink, content), plus the directory listing."""
        self.both(f"{what}: listdir", lambda side: sorted(os.listdir(self.dirs[side])))
        for name in self.names:
            def meta(side):
                s = os.lstat(self.path(side, name))
                return stat.S_IFMT(s.st_mode), oct(s.st_mode), s.st_size, s.st_nlink
            if self.both(f"{what}: lstat {name}", meta) in ("ENOENT",):
                continue

            def content(side):
                with open(self.path(side, name), "rb") as f:
                    return f.read()
            self.both(f"{what}: content of {name}", content)
        for h in self.handles:
            def fmeta(side):
                s = os.fstat(h.fds[side])
                return s.st_size, s.st_nlink
            size = self.both(f"{what}: fstat {h}", fmeta)[0]
            self.both(f"{what}: content of {h}", lambda side: self.pread_all(h.fds[side], size))

    def close_all(self):
        while self.handles:
            h = self.handles.pop()
            self.both(f"close {h}", lambda side: os.close(h.fds[side]))

    def steps(self, n):
        """The next n operations."""
        names, weights = zip(*self.OPS)
        for _ in range(n):
            self.index += 1
            op = self.rng.choices(names, weights)[0]
            self.counts[op] += 1
            getattr(self, "op_" + op)()
            if self.check_every and self.index % self.check_every == self.check_every - 1:
                self.check_all()

    def finish(self):
        self.check_all("final check")
        self.close_all()
        self.check_all("after closing all")
        return self.counts

    def run(self):
        self.steps(self.nops - self.index - 1)
        return self.finish()


_libc = ctypes.CDLL(None, use_errno=True)


def renameat2(old, new, flags):
    if _libc.renameat2(-100, os.fsencode(old), -100, os.fsencode(new), ctypes.c_uint(flags)):
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), old)


class NamespaceFsx:
    """The same idea for the namespace: random mkdir, rmdir, create, link,
    symlink, unlink, rename (plain, RENAME_NOREPLACE, RENAME_EXCHANGE),
    chmod and stat over every path of a small tree (components a, b, c up to
    depth 3), compared with the oracle; at checkpoints the whole tree."""

    def __init__(self, oracle, fut, seed, nops, check_every=250, log=None):
        self.dirs = [os.fspath(oracle), os.fspath(fut)]
        for d in self.dirs:
            os.makedirs(d, exist_ok=True)
        self.seed, self.nops = seed, nops
        self.rng = random.Random(seed)
        comps = ["a", "b", "c"]
        self.paths = list(comps)
        for depth in (2, 3):
            self.paths += [p + "/" + c for p in self.paths if p.count("/") == depth - 2
                           for c in comps]
        self.check_every = check_every
        self.history = collections.deque(maxlen=20)
        self.index = -1
        self.log = log
        self.counts = collections.Counter()

    both = Fsx.both
    fail = Fsx.fail

    def path(self, side, p):
        return os.path.join(self.dirs[side], p)

    @property
    def names(self):
        return self.paths

    def pick(self):
        """Two paths: mostly an existing one and one whose parent is a
        directory (from the oracle), sometimes any."""
        rng = self.rng
        modes = {"": stat.S_IFDIR}
        for p in self.paths:    # parents come first
            parent = p.rpartition("/")[0]
            if modes.get(parent) == stat.S_IFDIR:
                try:
                    modes[p] = stat.S_IFMT(os.lstat(self.dirs[0] + "/" + p).st_mode)
                except FileNotFoundError:
                    modes[p] = None
        exist = [p for p in self.paths if modes.get(p)]
        placeable = [p for p in self.paths if p in modes]
        p = rng.choice(exist) if exist and rng.random() < 0.8 else rng.choice(self.paths)
        q = rng.choice(placeable) if rng.random() < 0.8 else rng.choice(self.paths)
        return p, q

    def op(self):
        rng = self.rng
        p, q = self.pick()
        if rng.random() < 0.5:      # creations want a free name in an existing dir
            p = q if rng.random() < 0.5 else p
        r = rng.random()
        P = self.path
        if r < 0.14:
            return f"mkdir {q}", lambda s: os.mkdir(P(s, q), 0o755)
        if r < 0.22:
            return f"rmdir {p}", lambda s: os.rmdir(P(s, p))
        if r < 0.36:
            data = b"%d" % self.index * rng.randint(0, 3)

            def create(s):
                fd = os.open(P(s, p), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
                os.write(fd, data)
                os.close(fd)
            return f"create {p} len={len(data)}", create   # p: often exists: O_TRUNC
        if r < 0.44:
            return f"link {p} {q}", lambda s: os.link(P(s, p), P(s, q))
        if r < 0.50:
            t = rng.choice(["a", "b/c", "/nonexistent", "c/a/b"])   # resolve inside
            return f"symlink {t} {q}", lambda s: os.symlink(t, P(s, q))
        if r < 0.58:
            return f"unlink {p}", lambda s: os.unlink(P(s, p))
        if r < 0.76:
            return f"rename {p} {q}", lambda s: os.rename(P(s, p), P(s, q))
        if r < 0.80:
            return f"rename-noreplace {p} {q}", lambda s: renameat2(P(s, p), P(s, q), 1)
        if r < 0.86:
            return f"rename-exchange {p} {q}", lambda s: renameat2(P(s, p), P(s, q), 2)
        if r < 0.90:
            m = rng.choice([0o700, 0o755, 0o644, 0o1777])
            return f"chmod {p} {m:o}", lambda s: os.chmod(P(s, p), m)
        if r < 0.96:
            def lst(s):
                st = os.lstat(P(s, p))
                return oct(st.st_mode), st.st_nlink, \
                    None if stat.S_ISDIR(st.st_mode) else st.st_size
            return f"lstat {p}", lst
        return f"listdir {p}", lambda s: sorted(os.listdir(P(s, p)))

    def tree(self, side):
        out = {}
        root = self.dirs[side]
        for dp, dns, fns in os.walk(root):
            for n in sorted(dns + fns):
                full = os.path.join(dp, n)
                st = os.lstat(full)
                e = [oct(st.st_mode), st.st_nlink]
                if stat.S_ISLNK(st.st_mode):
                    e += [os.readlink(full), st.st_size]
                elif stat.S_ISREG(st.st_mode):
                    with open(full, "rb") as f:
                        e += [f.read()]
                out[os.path.relpath(full, root)] = e
        st = os.lstat(root)
        out["."] = [oct(st.st_mode), st.st_nlink]
        return out

    def check_all(self, what="full check"):
        self.both(f"{what}: tree", self.tree)

    def run(self):
        for self.index in range(self.nops):
            desc, fn = self.op()
            self.counts[desc.split()[0]] += 1
            self.both(desc, fn)
            if self.index % self.check_every == self.check_every - 1:
                self.check_all()
        self.index = self.nops
        self.check_all("final check")
        return self.counts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ops", type=int, default=20000)
    ap.add_argument("--verbose", "-v", action="store_true")
    ap.add_argument("oracle")
    ap.add_argument("fut")
    a = ap.parse_args(argv)
    fsx = Fsx(a.oracle, a.fut, a.seed, a.ops, log=print if a.verbose else None)
    try:
        counts = fsx.run()
    except Mismatch as x:
        print(x, file=sys.stderr)
        return 1
    print(f"fsx: {a.ops} operations, no mismatch: {dict(counts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
