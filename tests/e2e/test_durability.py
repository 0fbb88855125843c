# SPDX-License-Identifier: MIT
"""What survives: a clean unmount and remount keeps everything; a kill -9
keeps what fsync acknowledged, and anything else reads back either missing,
short, or as bytes that were written at those offsets (docs: "nothing
lost")."""
import errno
import hashlib
import mmap
import os
import socket
import stat
import time
from pathlib import Path

import pytest

from conftest import HOARD, fsck_clean, requires_hoard, run

pytestmark = requires_hoard

KIB, MIB = 1 << 10, 1 << 20


def pattern(n, seed):
    """n incompressible bytes, a function of (seed, offset)."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b"%d:%d" % (seed, i)).digest()
        i += 1
    return bytes(out[:n])


def write(path, data, mode=0o644, sync=None):
    """sync: None, os.fsync or os.fdatasync."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view[:MIB]):]
        if sync:
            sync(fd)
    finally:
        os.close(fd)


def read(path):
    with open(path, "rb") as f:
        return f.read()


# -- a tree with every kind of metadata ------------------------------------

T1, T2 = 1_111_111_111_123_456_789, 1_500_000_000_987_654_321


def build_tree(root):
    os.mkdir(root / "d")
    os.makedirs(root / "d" / "deep" / "er" / "est")
    os.mkdir(root / "empty")
    os.mkdir(root / "sticky", 0o755)
    os.chmod(root / "sticky", 0o1777)
    for n, size in (("zero", 0), ("one", 1), ("page", 4096), ("chunky", 300 * KIB),
                    ("big", 5 * MIB + 3)):
        write(root / "d" / n, pattern(size, size))
    write(root / "d" / "deep" / "er" / "est" / "leaf", b"leaf\n")
    write(root / "compressible", b"hoard " * 100000)
    write(root / ("n" * 255), b"long name")
    write(root / "\u00e9t\u00e9 \u6587", b"utf-8 name")
    # sparse: data after a hole, and a hole at the end
    fd = os.open(root / "sparse", os.O_CREAT | os.O_WRONLY, 0o600)
    os.pwrite(fd, b"after the hole", 20 * MIB)
    os.close(fd)
    write(root / "grown", b"head")
    os.truncate(root / "grown", 9 * MIB + 1)
    # modes and owners
    write(root / "suid", b"#!/bin/true\n", 0o755)
    os.chmod(root / "suid", 0o4755)
    write(root / "private", b"secret", 0o600)
    os.chown(root / "private", 1234, 4321)
    os.chmod(root / "d" / "one", 0o400)
    # links
    os.symlink("d/big", root / "rel")
    os.symlink("/nonexistent/absolute/target", root / "abs")
    os.symlink("x" * 1000, root / "longlink")
    os.symlink("d", root / "dirlink")
    os.link(root / "d" / "chunky", root / "hard1")
    os.link(root / "d" / "chunky", root / "d" / "deep" / "hard2")
    os.link(root / "rel", root / "rel-hardlink", follow_symlinks=False)
    # special files
    os.mkfifo(root / "fifo", 0o640)
    os.mknod(root / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    cwd = os.getcwd()
    os.chdir(root)
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.bind("sock")
    finally:
        os.chdir(cwd)
    # extended attributes
    os.setxattr(root / "d" / "big", "user.checksum", b"sha256:...")
    os.setxattr(root / "d" / "big", "user.empty", b"")
    os.setxattr(root / "d", "user.on-a-dir", bytes(range(256)))
    os.setxattr(root / "d" / "chunky", "user.large", pattern(60000, 9))
    # times last, children before parents, in an order that does not
    # depend on readdir's (hard links get the time of the last name set)
    paths = [os.path.join(dp, n) for dp, dns, fns in os.walk(root) for n in dns + fns]
    for p in sorted(paths, key=lambda p: (-p.count("/"), p)):
        n = os.path.basename(p)
        os.utime(p, ns=(T1 + len(n), T2 - len(n)), follow_symlinks=False)
    os.utime(root, ns=(T1, T2))


def snapshot(root):
    """Everything about the tree that must survive, by relative path: type,
    mode, owner, nlink, size, times, rdev, content digest, link target,
    xattrs, and which names are hard links of each other.  All stats are
    taken before any content is read."""
    entries, inodes = {}, {}
    paths = [root]
    for dirpath, dirnames, filenames in os.walk(root):
        paths += [os.path.join(dirpath, n) for n in dirnames + filenames]
    for p in paths:
        s = os.lstat(p)
        rel = os.path.relpath(p, root)
        e = {"mode": oct(s.st_mode), "uid": s.st_uid, "gid": s.st_gid, "nlink": s.st_nlink,
             "atime": s.st_atime_ns, "mtime": s.st_mtime_ns}
        if not stat.S_ISDIR(s.st_mode):
            e["size"] = s.st_size
        if stat.S_ISCHR(s.st_mode):
            e["rdev"] = s.st_rdev
        entries[rel] = e
        inodes.setdefault(s.st_ino, []).append(rel)
    for p in paths:
        rel = os.path.relpath(p, root)
        m = int(entries[rel]["mode"], 8)
        if stat.S_ISREG(m):
            entries[rel]["sha256"] = hashlib.sha256(read(p)).hexdigest()
        if stat.S_ISLNK(m):
            entries[rel]["target"] = os.readlink(p)
        if stat.S_ISREG(m) or stat.S_ISDIR(m):
            entries[rel]["xattrs"] = {n: os.getxattr(p, n) for n in sorted(os.listxattr(p))}
    links = sorted(sorted(v) for v in inodes.values() if len(v) > 1)
    return entries, links


def root_meta(d):
    s = os.stat(d)
    return {"mode": oct(s.st_mode), "uid": s.st_uid, "gid": s.st_gid, "atime": s.st_atime_ns,
            "mtime": s.st_mtime_ns, "xattrs": {n: os.getxattr(d, n) for n in os.listxattr(d)}}


def diff(a, b):
    out = [f"{k}: {a[0].get(k)} != {b[0].get(k)}" for k in sorted(set(a[0]) | set(b[0]))
           if a[0].get(k) != b[0].get(k)]
    if a[1] != b[1]:
        out.append(f"hard links: {a[1]} != {b[1]}")
    return "\n".join(out)


def test_remount_keeps_everything(store, mnt, tmpfs):
    # FUSE never updates atime from the kernel side (S_NOATIME); tmpfs would
    # on every readdir and symlink walk of snapshot()
    run(["mount", "-o", "remount,noatime", tmpfs])
    os.mkdir(tmpfs / "tree")
    os.mkdir(mnt / "tree")
    build_tree(tmpfs / "tree")
    build_tree(mnt / "tree")
    oracle, before = snapshot(tmpfs / "tree"), snapshot(mnt / "tree")
    assert len(before[0]) >= 30 and len(before[1]) == 2
    assert not diff(oracle, before), "differs from tmpfs before remount:\n" + diff(oracle, before)
    # the volume's root keeps its own metadata too (a cache dir owned by a user)
    os.chown(mnt, 1234, 4321)
    os.chmod(mnt, 0o2750)
    os.setxattr(mnt, "user.root", b"r")
    os.utime(mnt, ns=(T1, T2))
    root = root_meta(mnt)
    assert root == {"mode": "0o42750", "uid": 1234, "gid": 4321, "atime": T1, "mtime": T2,
                    "xattrs": {"user.root": b"r"}}
    store.umount()
    mnt = store.mount("test")["test"]
    after = snapshot(mnt / "tree")
    assert not diff(before, after), "changed by unmount/remount:\n" + diff(before, after)
    assert root_meta(mnt) == root
    # and once more, after the remount has been read
    store.umount()
    after2 = snapshot(store.mount("test")["test"] / "tree")
    assert not diff(before, after2), "changed by a second remount:\n" + diff(before, after2)


# -- kill -9 ---------------------------------------------------------------

def check_written(got, old, new):
    """Every byte of `got` is the byte `new` or (if not None) `old` has at
    that offset.  An empty list means consistent; else the bad offsets."""
    bad = []
    if len(got) > max(len(new), len(old or b"")):
        return [f"longer than written: {len(got)}"]
    for off in range(0, len(got), 4096):
        g = got[off:off + 4096]
        if g == new[off:off + len(g)] or (old is not None and g == old[off:off + len(g)]):
            continue
        for i, c in enumerate(g, off):
            ok = (i < len(new) and c == new[i]) or (old is not None and i < len(old) and c == old[i])
            if not ok:
                bad.append(i)
                if len(bad) > 5:
                    return bad
    return bad


# 12 MiB: files from 8 MiB commit their frames without the WAL (a flush of
# chunkdata before the batch, docs/FORMAT.md 2.4)
@pytest.mark.parametrize("sizes", [(0, 1, 100 * KIB, 5 * MIB, 12 * MIB)],
                         ids=["0-1-100K-5M-12M"])
def test_kill9_keeps_fsynced_data(store, mnt, sizes):
    # name -> (state, ...): what the next recovery must show
    #   ("exact", data)            fsync acknowledged
    #   ("written", old, new)      missing, or every byte from new (or old)
    #   ("absent",)                must not come back
    model = {}
    for rnd, size in enumerate(sizes):
        seed = 1000 * (rnd + 1)
        os.makedirs(mnt / f"r{rnd}", exist_ok=True)
        # fsynced: must survive exactly
        for i, sync in enumerate((os.fsync, os.fdatasync, os.fsync)):
            data = pattern(size, seed + i)
            write(mnt / f"r{rnd}" / f"sync{i}", data, sync=sync)
            model[f"r{rnd}/sync{i}"] = ("exact", data)
        if size:    # written through a shared mapping, msync(MS_SYNC)
            data = pattern(size, seed + 5)
            fd = os.open(mnt / f"r{rnd}" / "msync", os.O_CREAT | os.O_RDWR, 0o644)
            os.ftruncate(fd, size)
            with mmap.mmap(fd, size) as m:
                m[:] = data
                m.flush()
            os.close(fd)
            model[f"r{rnd}/msync"] = ("exact", data)
        # not fsynced: closed, or still open at the kill
        for i in range(3):
            data = pattern(size + i, seed + 10 + i)
            write(mnt / f"r{rnd}" / f"nosync{i}", data)
            model[f"r{rnd}/nosync{i}"] = ("written", None, data)
        open_fd = os.open(mnt / f"r{rnd}" / "open", os.O_CREAT | os.O_WRONLY, 0o644)
        data = pattern(2 * size, seed + 20)
        os.write(open_fd, data[:size])
        os.write(open_fd, data[size:])
        model[f"r{rnd}/open"] = ("written", None, data)
        # an fsynced file unlinked while open: purged on restart
        orphan = os.open(mnt / f"r{rnd}" / "orphan", os.O_CREAT | os.O_RDWR, 0o644)
        os.write(orphan, pattern(size, seed + 30))
        os.fsync(orphan)
        os.unlink(mnt / f"r{rnd}" / "orphan")
        model[f"r{rnd}/orphan"] = ("absent",)
        # last round's fsynced files, changed without fsync
        if rnd:
            prev = f"r{rnd - 1}/sync0"
            old = model[prev][1]
            with open(mnt / prev, "ab") as f:
                f.write(pattern(size + 10, seed + 40))
            model[prev] = ("written", old, old + pattern(size + 10, seed + 40))
            prev = f"r{rnd - 1}/sync1"
            old = model[prev][1]
            new = bytearray(old)
            new[len(old) // 3:len(old) // 3 + size // 2] = pattern(size // 2, seed + 50)
            with open(mnt / prev, "r+b") as f:
                f.seek(len(old) // 3)
                f.write(pattern(size // 2, seed + 50))
            model[prev] = ("written", old, bytes(new))
        os.sync()     # no effect on the daemon's own durability; flushes ours
        store.kill9()
        for fd in (open_fd, orphan):
            try:
                os.close(fd)
            except OSError:     # ENOTCONN: the connection died with the daemon
                pass
        leftovers = os.listdir(store.path / "staging") if (store.path / "staging").exists() else []
        mnt = store.mount("test")["test"]
        problems = []
        for name, want in sorted(model.items()):
            try:
                got = read(mnt / name)
            except FileNotFoundError:
                got = None
            if want[0] == "exact":
                if got != want[1]:
                    problems.append(f"{name}: fsynced {len(want[1])} bytes, read back "
                                    + ("nothing" if got is None else f"{len(got)} bytes, different"))
            elif want[0] == "absent":
                if got is not None:
                    problems.append(f"{name}: should be gone, has {len(got)} bytes")
            else:
                old, new = want[1], want[2]
                if old is not None and got is None:
                    problems.append(f"{name}: fsynced file lost by an unsynced change")
                elif old is not None and len(got) < len(old):
                    problems.append(f"{name}: fsynced {len(old)} bytes, now {len(got)}")
                elif got is not None and (bad := check_written(got, old, new)):
                    problems.append(f"{name}: {len(got)} bytes, wrong at {bad}")
            # what we read back is now the durable state
            model[name] = ("exact", got) if got is not None else ("absent",)
        assert not problems, f"round {rnd} (size {size}):\n" + "\n".join(problems)
        # the store agrees with what the mount shows
        files = [os.path.join(dp, n) for dp, _, fs in os.walk(mnt) for n in fs]
        s = store.stats()
        assert (s["files"], s["logical_bytes"]) == \
            (len(files), sum(os.path.getsize(p) for p in files)), s
        # docs/FORMAT.md section 1: staging files are deleted on start
        assert not [n for n in leftovers if n in os.listdir(store.path / "staging")], \
            "staging files survived the restart"
    store.umount()
    store.check_log()


def crash_file(i):
    """The i-th file of the busy writer: its size and bytes."""
    import random
    rng = random.Random(i)
    size = rng.choice([0, 1, 4095, 70000, 300 * KIB, MIB + 5, 3 * MIB, 9 * MIB])
    return rng.randbytes(size)


def test_kill9_during_writes(store, mnt):
    """kill -9 while a writer is busy: acknowledged fsyncs survive, nothing
    else reads back wrong, and the store's accounting is consistent (deleting
    every file afterwards leaves no chunk behind)."""
    d = mnt / "busy"
    d.mkdir()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:    # the writer: reports each file whose fsync returned
        os.close(r)
        try:
            for i in range(100000):
                data = crash_file(i)
                fd = os.open(d / f"f{i}", os.O_CREAT | os.O_WRONLY, 0o644)
                for off in range(0, len(data), 64 * KIB):
                    os.write(fd, data[off:off + 64 * KIB])
                if i % 2 == 0:
                    os.fsync(fd)
                    os.write(w, b"%d\n" % i)
                os.close(fd)
        finally:
            os._exit(0)
    os.close(w)
    import time
    time.sleep(2.0)
    store.kill9()
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    synced = set()
    while b := os.read(r, 65536):
        synced.update(int(x) for x in b.split())
    os.close(r)
    assert len(synced) >= 3, "the writer made too little progress to test anything"
    print(f"{len(synced)} files fsynced before the kill")
    mnt = store.mount("test")["test"]
    d = mnt / "busy"
    names = os.listdir(d)
    problems = []
    for i in sorted(synced):
        if f"f{i}" not in names:
            problems.append(f"f{i}: fsynced, missing")
        elif read(d / f"f{i}") != crash_file(i):
            problems.append(f"f{i}: fsynced, content differs")
    for n in names:
        got, want = read(d / n), crash_file(int(n[1:]))
        if bad := check_written(got, None, want):
            problems.append(f"{n}: {len(got)} bytes, wrong at {bad}")
    assert not problems, "\n".join(problems)
    s = store.stats()
    assert (s["files"], s["logical_bytes"]) == \
        (len(names), sum(os.path.getsize(d / n) for n in names)), s
    for n in names:
        os.unlink(d / n)
    s = store.stats()
    assert [s[k] for k in ("files", "logical_bytes", "unique_bytes", "stored_bytes",
                           "chunks")] == [0] * 5, s


def wal_bytes(store):
    return sum(p.stat().st_size for p in (store.path / "db").glob("*.log"))


def test_bulk_commit_skips_the_wal(store, mnt):
    """A large file's frames are written once (blob files, not the WAL too),
    and a closed file survives kill -9 without fsync: the frames were flushed
    before the batch that refers to them.  Two files with the same new
    content committed at once (one relies on the other's frames) both read
    back."""
    import threading
    data = os.urandom(40 * MIB)
    before = wal_bytes(store)
    write(mnt / "big", data)
    open(mnt / "big", "rb").close()  # its commit has landed (see below)
    grown = wal_bytes(store) - before
    # the first 8 MiB of a file go through the WAL (a small file's way),
    # the other 32 MiB not
    assert grown < 9 * MIB, f"WAL grew {grown} bytes for a 40 MiB file"
    twin = os.urandom(16 * MIB)
    ts = [threading.Thread(target=write, args=(mnt / f"twin{i}", twin))
          for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    # a close no longer waits for its commit (it runs at RELEASE, on the
    # committer thread): an open of each file makes its queued commit land
    # first, so the kill below comes after the three commits, without fsync
    for n in ("big", "twin0", "twin1"):
        open(mnt / n, "rb").close()
    store.kill9()
    mnt = store.mount("test")["test"]
    assert read(mnt / "big") == data
    assert read(mnt / "twin0") == twin and read(mnt / "twin1") == twin
    s = store.stats()
    assert s["files"] == 3
    assert s["unique_bytes"] == 56 * MIB
    store.umount()
    fsck_clean(store)


def test_small_files_written_at_once_survive_kill9(store, mnt):
    """Small files written at once by several threads, half of them
    sharing content (a second stager of the same chunk relies on the
    first one's frame), all fsynced, survive kill -9 byte for byte, their
    chunks are counted once, and fsck finds every frame its record and
    refcount say."""
    import threading
    shared = [pattern(100 + 997 * k, 7000 + k) for k in range(8)]
    want = {}
    for t in range(4):
        for i in range(60):
            if i % 2:
                want[f"t{t}f{i}"] = shared[i % 8]
            else:  # distinct, 1 byte to 16 KiB (one chunk, in memory)
                want[f"t{t}f{i}"] = pattern(1 + (i * 271 + t * 4099) % (16 * KIB),
                                            100 * t + i)
    errs = []

    def writer(t):
        try:
            for i in range(60):
                write(mnt / f"t{t}f{i}", want[f"t{t}f{i}"], sync=os.fsync)
        except OSError as e:
            errs.append(e)

    ts = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errs
    store.kill9()
    mnt = store.mount("test")["test"]
    for n, data in want.items():
        assert read(mnt / n) == data, n
    s = store.stats()
    assert s["files"] == len(want)
    assert s["unique_bytes"] == sum(len(d) for d in
                                    {d: 1 for d in want.values()}), s
    store.umount()
    fsck_clean(store)


def test_kill9_never_hands_out_an_inode_number_twice(store, mnt):
    """Inode numbers are reserved in blocks (next_ino is at least the next
    number, docs/FORMAT.md 2.1): across kill -9s, restarts, a volume
    create and a clone (which reserve numbers of their own) between
    creates, no two files share an st_ino and every file reads back its
    own bytes; fsck is clean."""
    want = {}

    def make(root, vol, tag, n):
        (root / tag).mkdir()
        os.symlink(f"target-{tag}", root / f"{tag}.lnk")
        for i in range(n):
            data = pattern(1 + (i * 977) % 9000, sum(map(ord, vol + tag)) * 100 + i)
            # fsync: a close does not wait for its commit (README
            # "Writes and durability"), so an unsynced file may be empty
            # after the kill -9
            write(root / tag / f"f{i}", data, sync=os.fsync)
            want[(vol, f"{tag}/f{i}")] = data

    def check(mounts):
        seen = {}
        for vol, mp in mounts.items():
            for dirpath, dirs, files in os.walk(mp):
                for name in dirs + files:
                    p = Path(dirpath) / name
                    ino = p.lstat().st_ino
                    assert ino not in seen, (p, seen.get(ino))
                    seen[ino] = p
        for (vol, rel), data in want.items():
            if vol in mounts:
                assert read(mounts[vol] / rel) == data, (vol, rel)
        return len(seen)

    # each writer of next_ino other than a create between creates, then
    # a kill: a value it stored below the creates' block would show as a
    # number handed out again after the restart
    make(mnt, "test", "a", 40)
    run([HOARD, "volume", "clone", "test", "copy", "--store", store.path])
    for rel in [k[1] for k in want if k[0] == "test"]:
        want[("copy", rel)] = want[("test", rel)]
    make(mnt, "test", "b", 40)
    store.kill9()
    m = store.mount("test", "copy")
    make(m["test"], "test", "c", 40)
    make(m["copy"], "copy", "d", 40)
    assert check(m) == 5 * 42
    run([HOARD, "volume", "create", "other", "--store", store.path])
    make(m["test"], "test", "e", 40)
    store.kill9()
    m = store.mount("test", "copy", "other")
    make(m["test"], "test", "g", 40)
    make(m["other"], "other", "h", 40)
    check(m)
    store.umount()
    fsck_clean(store)


def test_failed_small_commits_keep_the_others(store, mnt, monkeypatch):
    """Every third commit's batch fails (HOARD_TEST_COMMIT_FAIL_EVERY=3)
    while four threads write small files, half of them with shared
    content: a failed commit reports EIO to its writer (fsync or close),
    writes nothing, and leaves the chunk to the next stager of the same
    content; every file whose fsync and close succeeded survives kill -9
    exactly; no file ever reads other bytes than its own; fsck is clean."""
    import threading
    store.umount()
    monkeypatch.setenv("HOARD_TEST_COMMIT_FAIL_EVERY", "3")
    mnt = store.mount("test")["test"]
    shared = [pattern(200 + 1499 * k, 9000 + k) for k in range(6)]
    want, ok, failed = {}, set(), set()
    for t in range(4):
        for i in range(45):
            want[f"t{t}f{i}"] = (shared[i % 6] if i % 2 else
                                 pattern(1 + (i * 331 + t * 2053) % (16 * KIB),
                                         500 * t + i))
    lock = threading.Lock()

    def writer(t):
        for i in range(45):
            n = f"t{t}f{i}"
            try:
                write(mnt / n, want[n], sync=os.fsync)
            except OSError as e:
                assert e.errno == errno.EIO, e
                with lock:
                    failed.add(n)
                continue
            with lock:
                ok.add(n)

    ts = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(ok) + len(failed) == len(want)
    assert failed and len(ok) > len(want) // 3, (len(ok), len(failed))
    for n in want:  # now: its bytes (a failed commit's data stays staged)
        got = read(mnt / n)
        assert got == want[n] or (n in failed and got == b""), n
    store.kill9()
    monkeypatch.delenv("HOARD_TEST_COMMIT_FAIL_EVERY")
    mnt = store.mount("test")["test"]
    for n in want:
        if n in ok:
            assert read(mnt / n) == want[n], n
        elif (mnt / n).exists():  # never landed, or whole by a later flush
            assert read(mnt / n) in (b"", want[n]), n
    store.umount()
    fsck_clean(store)


def disk_use(path):
    return sum(p.stat().st_blocks * 512 for p in Path(path).rglob("*")
               if p.is_file())


def test_automatic_blob_gc(store, mnt):
    """Deleted frames stay in blob files until a blob gc; the daemon runs one
    itself once 256 MiB of frames were deleted (and they are a quarter of the
    blob files), without `hoard gc`."""
    for i in range(3):
        write(mnt / f"f{i}", os.urandom(100 * MIB))
    keep = os.urandom(8 * MIB)
    write(mnt / "keep", keep)
    full = disk_use(store.path)
    assert full > 300 * MIB
    for i in range(3):
        os.unlink(mnt / f"f{i}")
    deadline = time.time() + 60
    while "automatic blob gc" not in store.log():
        assert time.time() < deadline, "no automatic blob gc in 60 s"
        time.sleep(0.2)
    after = disk_use(store.path)
    assert after < 100 * MIB, f"disk use {full} -> {after} bytes"
    assert read(mnt / "keep") == keep


# -- closes that do not wait for their commit ---------------------------------

def test_fsync_after_close_keeps_the_close(store, mnt):
    """A close returns before its commit (no FLUSH; the commit runs at the
    RELEASE the kernel sends in the background).  An fsync through a new
    handle of the file, opened after that close, covers what the close
    left: it survives kill -9 exactly, whether the RELEASE had arrived or
    not.  Files written after the last fsync are missing, empty or whole."""
    store.umount()
    mnt = store.mount("test", extra=("--close=defer",))["test"]
    model = {}
    for i in range(40):
        data = pattern(i * 997 + (i % 3) * 300 * KIB, 7000 + i)
        write(mnt / f"f{i}", data)
        fd = os.open(mnt / f"f{i}", os.O_RDONLY if i % 2 else os.O_WRONLY)
        os.fsync(fd)
        os.close(fd)
        model[f"f{i}"] = data
    late = {}
    for i in range(10):
        late[f"late{i}"] = pattern(5000 + i, 9000 + i)
        write(mnt / f"late{i}", late[f"late{i}"])
    store.kill9()
    mnt = store.mount("test")["test"]
    for name, data in model.items():
        assert read(mnt / name) == data, name
    for name, data in late.items():
        if (mnt / name).exists():
            assert read(mnt / name) in (b"", data), name
    store.umount()
    store.check_log()


READER = r"""
import hashlib, os, sys
def pattern(n, seed):
    out = bytearray(); i = 0
    while len(out) < n:
        out += hashlib.sha256(b"%d:%d" % (seed, i)).digest(); i += 1
    return bytes(out[:n])
for line in sys.stdin:
    name, n, seed = line.split()
    n, seed = int(n), int(seed)
    p = os.path.join(sys.argv[1], name)
    if seed % 4 == 0:   # the kernel forgets its inodes: LOOKUP, GETATTR
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("2")
    st = os.stat(p)
    fd = os.open(p, os.O_RDONLY)
    if seed % 2 == 0:   # not from the page cache: READs to the daemon
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    got = b""
    while True:
        b = os.read(fd, 1 << 20)
        if not b:
            break
        got += b
    os.close(fd)
    if st.st_size != n or got != pattern(n, seed):
        print(f"{name}: stat {st.st_size}, read {len(got)}, want {n}",
              flush=True)
    else:
        print("ok", flush=True)
"""


def test_read_after_close_from_another_process(store, mnt):
    """Right after each close(2), another process stats, opens and reads
    the file (with the kernel's inodes or pages dropped for some, so the
    daemon answers): it sees the new size and content even while the
    commit has not run yet (it waits for the RELEASE).  Rewrites of an
    existing file too."""
    import subprocess
    import sys
    store.umount()
    mnt = store.mount("test", extra=("--close=defer",))["test"]
    rd = subprocess.Popen([sys.executable, "-c", READER, str(mnt)],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True)
    try:
        bad = []
        for i in range(300):
            name = f"f{i % 200}"      # the last 100 rewrite a closed file
            n = (i * 7919) % (200 * KIB) + (i % 5) * MIB // 2
            write(mnt / name, pattern(n, i))
            rd.stdin.write(f"{name} {n} {i}\n")
            rd.stdin.flush()
            got = rd.stdout.readline().strip()
            if got != "ok":
                bad.append(got)
        rd.stdin.close()
    finally:
        rd.wait(120)
    assert not bad, bad
    store.umount()
    mnt = store.mount("test")["test"]
    for i in range(100, 300):
        n = (i * 7919) % (200 * KIB) + (i % 5) * MIB // 2
        assert read(mnt / f"f{i % 200}") == pattern(n, i)


def small_files(threads, per, seed):
    """{name: bytes}: small files (0..12 KiB), every third one of six
    shared contents (files of one group commit that share a new chunk)."""
    shared = [pattern(300 + 1733 * k, seed + 50 + k) for k in range(6)]
    want = {}
    for t in range(threads):
        for i in range(per):
            want[f"t{t}f{i}"] = (shared[i % 6] if i % 3 == 0 else
                                 pattern((i * 331 + t * 2053) % (12 * KIB),
                                         seed + 1000 * t + i))
    return want


def write_all(mnt, want, threads):
    """Write want's files from `threads` threads (names t<T>f<I>)."""
    import threading
    errs = []

    def writer(t):
        try:
            for n, data in want.items():
                if n.startswith(f"t{t}f"):
                    write(mnt / n, data)
        except OSError as e:
            errs.append(e)

    ts = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errs, errs


def test_failed_group_commits_keep_their_files(store, monkeypatch):
    """--close=defer: the committer lands the commits of closed small files
    in groups, one batch each.  Every second batch fails
    (HOARD_TEST_COMMIT_FAIL_EVERY=2): every file of a failed group keeps
    its previous content (empty: new), is counted in commit_errors, and
    its next fsync returns EIO once, also when the kernel forgot the inode
    in between (caches dropped); the files of the other groups are
    whole, after a kill -9 too; files sharing content never lose a chunk
    (fsck clean)."""
    monkeypatch.setenv("HOARD_TEST_COMMIT_FAIL_EVERY", "2")
    mnt = store.mount("test", extra=("--close=defer",))["test"]
    want = small_files(4, 150, 0)
    write_all(mnt, want, 4)
    time.sleep(0.5)  # the commits ran; the kernel forgets the inodes:
    with open("/proc/sys/vm/drop_caches", "w") as f:  # errors are kept
        f.write("2")
    ok, failed = set(), set()
    for n in want:  # the open waits for the file's commit
        fd = os.open(mnt / n, os.O_RDONLY)
        try:
            os.fsync(fd)
            ok.add(n)
        except OSError as e:
            assert e.errno == errno.EIO, e
            failed.add(n)
            os.fsync(fd)  # once
        finally:
            os.close(fd)
    assert failed and len(ok) > len(want) // 4, (len(ok), len(failed))
    assert store.stats()["commit_errors"] == len(failed)
    for n in want:
        assert read(mnt / n) == (b"" if n in failed else want[n]), n
    assert "the commit after its close failed" in store.log()
    store.kill9()
    monkeypatch.delenv("HOARD_TEST_COMMIT_FAIL_EVERY")
    mnt = store.mount("test")["test"]
    for n in want:
        assert read(mnt / n) == (b"" if n in failed else want[n]), n
    store.umount()
    fsck_clean(store)


def test_kill9_after_fsync_within_a_group(store):
    """--close=defer: files closed one after another wait for the committer,
    which lands them in groups; every tenth is fsynced through a new handle
    right after its close (its commit may be in a group under way, or
    still queued).  kill -9 right after the last: each fsynced file reads
    back whole, the others missing, empty or whole; fsck clean."""
    mnt = store.mount("test", extra=("--close=defer",))["test"]
    for r in range(3):
        want = small_files(2, 100, 10 * r)
        synced = set()
        for i, (n, data) in enumerate(want.items()):
            write(mnt / f"r{r}{n}", data)
            if i % 10 == 9:
                fd = os.open(mnt / f"r{r}{n}", os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)
                synced.add(n)
        store.kill9()
        mnt = store.mount("test", extra=("--close=defer",))["test"]
        for n, data in want.items():
            p = mnt / f"r{r}{n}"
            if n in synced:
                assert read(p) == data, (r, n)
            elif p.exists():
                assert read(p) in (b"", data), (r, n)
    store.umount()
    fsck_clean(store)


def test_rename_after_close_lands_the_content_first(store):
    """--close=defer: write a temporary file, close it, rename it into
    place (pip's and huggingface_hub's way; also over an older file), and
    kill -9 right after the last rename.  The rename commits the closed
    file first (as ext4's auto_da_alloc does), so every name a rename
    landed on reads back whole: never empty, never the older file; fsck
    clean."""
    mnt = store.mount("test", extra=("--close=defer",))["test"]
    want = small_files(1, 300, 70)
    for n in list(want)[::3]:  # older files, committed
        write(mnt / n, b"old " + n.encode())
    fd = os.open(mnt, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    for i, (n, data) in enumerate(want.items()):
        tmp = mnt / f"{n}.incomplete"
        if i % 10 == 1:  # a large one: a stream
            data = want[n] = pattern(2 * MIB + i, 70 + i)
        write(tmp, data)
        os.rename(tmp, mnt / n)
    store.kill9()
    mnt = store.mount("test")["test"]
    for n, data in want.items():
        assert read(mnt / n) == data, n
    store.umount()
    fsck_clean(store)
