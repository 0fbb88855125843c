# SPDX-License-Identifier: MIT
"""Store format 3 (docs/FORMAT.md 1, 2.2): a directory entry of a file with
one link carries a copy of the file's inode record, so that a LOOKUP is one
RocksDB read; the record names that entry (its home) and every write of the
record rewrites the copy.

Checked on real mounts against a tmpfs: the namespace and attribute
operations that move, drop or rewrite the copy (hard links 1 -> 2 -> 1,
rename over, across directories, RENAME_EXCHANGE, chmod, truncate, utimes,
writes), read back after a remount (a fresh daemon: every LOOKUP reads the
store), and the store stays fsck-clean.  A format-2 store (made from a real
one by hoard-test-corrupt --mode format2: entries without copies, records
version 1, the format setting 2, as an older build wrote them) reads back
identically after the upgrade at open and is fsck-clean.  fsck finds an
injected stale copy and an entry that lost its copy, and repairs both.  A
volume clone and a pull of a tree with hard links stay fsck-clean and read
back identically."""
import json
import os
import stat

import pytest

from conftest import CORRUPT, HOARD, requires_hoard, run
from fsx import renameat2
from s3server import s3  # noqa: F401  (a fixture)
from test_sync import fill_tree, hj as sync_hj, hoard as sync_hoard, stores, tree  # noqa: F401

pytestmark = requires_hoard

RENAME_EXCHANGE = 2


def fsck(store, *extra):
    p = run([HOARD, "fsck", "--store", store.path, "--json", *extra], check=False)
    assert p.returncode in (0, 1), p.stderr
    return p.returncode, json.loads(p.stdout)


def assert_clean(store):
    rc, rep = fsck(store)
    assert rc == 0 and rep["clean"], rep


def copies(store):
    """Strip the copies (and make the store format 2): how many entries
    carried one.  The store then reads as an older build left it."""
    p = run([CORRUPT, "--store", store.path, "--mode", "format2"])
    return int(p.stdout.strip())


def attrs(root):
    """{path: (type, mode, nlink, size, mtime_ns, uid, gid, target, bytes)}."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            p = os.path.join(dirpath, name)
            s = os.lstat(p)
            reg = stat.S_ISREG(s.st_mode)
            out[os.path.relpath(p, root)] = (
                stat.S_IFMT(s.st_mode), stat.S_IMODE(s.st_mode),
                s.st_nlink if not stat.S_ISDIR(s.st_mode) else 0,
                s.st_size if not stat.S_ISDIR(s.st_mode) else 0,
                s.st_mtime_ns if not stat.S_ISDIR(s.st_mode) else 0,
                s.st_uid, s.st_gid,
                os.readlink(p) if stat.S_ISLNK(s.st_mode) else None,
                open(p, "rb").read() if reg else None)
    return out


def write(p, data, mode="wb"):
    with open(p, mode) as f:
        f.write(data)


def history(root):
    """Every operation that creates, moves, drops or rewrites a copy."""
    r = str(root)
    os.makedirs(f"{r}/d/e")
    for i in range(6):
        write(f"{r}/d/f{i}", b"x" * (100 * i))
    write(f"{r}/top", b"top")
    os.symlink("d/f1", f"{r}/sym")
    os.mkfifo(f"{r}/d/fifo")
    # hard links: 1 -> 2 (no copy) -> 1 (the entry left has it), renamed
    os.link(f"{r}/d/f0", f"{r}/d/e/f0-link")
    os.chmod(f"{r}/d/f0", 0o600)            # a setattr with two links
    os.link(f"{r}/d/f1", f"{r}/d/f1-link")
    os.unlink(f"{r}/d/f1")
    os.chmod(f"{r}/d/f1-link", 0o640)       # one link again, its copy
    os.rename(f"{r}/d/f1-link", f"{r}/d/e/f1-moved")
    write(f"{r}/d/e/f1-moved", b"grown", "ab")
    # rename over a one-link file, across directories, and back
    os.rename(f"{r}/d/f2", f"{r}/d/f3")
    os.rename(f"{r}/d/f3", f"{r}/d/e/f3")
    os.rename(f"{r}/d/e/f3", f"{r}/f3")
    # rename over a hard-linked file (the target keeps one link elsewhere)
    os.link(f"{r}/d/f4", f"{r}/d/e/f4-link")
    os.rename(f"{r}/top", f"{r}/d/f4")
    # exchange: two files, a file and a directory, across directories
    renameat2(f"{r}/d/f5", f"{r}/f3", RENAME_EXCHANGE)
    renameat2(f"{r}/d/f5", f"{r}/d/e", RENAME_EXCHANGE)
    os.chmod(f"{r}/d/e", 0o604)             # the file, under the dir's name
    renameat2(f"{r}/d/e", f"{r}/d/f5", RENAME_EXCHANGE)
    renameat2(f"{r}/sym", f"{r}/d/f4", RENAME_EXCHANGE)
    # setattr: chmod, truncate (both ways), utimes; writes that change the size
    os.chmod(f"{r}/f3", 0o751)
    os.truncate(f"{r}/sym", 2)              # top, after the exchange
    os.truncate(f"{r}/f3", 10000)
    os.utime(f"{r}/d/e/f0-link", ns=(1_500_000_000_000_000_001, 1_600_000_000_000_000_002))
    os.utime(f"{r}/sym", ns=(1_500_000_000_000_000_001, 1_600_000_000_000_000_003),
             follow_symlinks=False)
    with open(f"{r}/d/new", "wb") as f:     # stat while written, then after
        f.write(b"a" * 70000)
        f.flush()
        os.fsync(f.fileno())
        f.write(b"b" * 5)
    os.utime(f"{r}/d/new", ns=(1_500_000_000_000_000_001, 1_600_000_000_000_000_004))
    os.setxattr(f"{r}/f3", "user.k", b"v")  # a ctime-only change
    # an unlink of a copied file, and of one link of two
    os.unlink(f"{r}/d/f5")
    os.unlink(f"{r}/d/e/f4-link")
    # 1 -> 2 -> 1 links, not renamed: the entry left gets the copy
    write(f"{r}/d/g", b"g")
    os.link(f"{r}/d/g", f"{r}/d/g2")
    os.unlink(f"{r}/d/g2")
    os.chmod(f"{r}/d/g", 0o604)
    # 1 -> 3 -> 1: the two left after the first unlink are not known
    write(f"{r}/d/h", b"h")
    os.link(f"{r}/d/h", f"{r}/d/h2")
    os.link(f"{r}/d/h", f"{r}/d/e/h3")
    os.unlink(f"{r}/d/h2")
    os.unlink(f"{r}/d/h")
    os.chmod(f"{r}/d/e/h3", 0o606)


def comparable(a):
    """Leave out the mtimes the operations set from the clock."""
    keep = {"d/e/f0-link", "d/f0", "sym", "d/new"}
    return {p: v if p in keep else v[:4] + (0,) + v[5:] for p, v in a.items()}


def like_tmpfs(ops, mnt, tmpfs):
    """ops(root) on the mount and on tmpfs leave the same attributes (but
    for the mtimes set from the clock); returns tmpfs's, comparable."""
    ops(mnt)
    ops(tmpfs)
    want = comparable(attrs(tmpfs))
    assert comparable(attrs(mnt)) == want
    return want


def remounted(store, mnt, stop):
    """The daemon stopped (stop: store.umount or store.kill9), the store is
    fsck-clean and, mounted again, shows the attributes the mount had:
    returns the new mountpoint."""
    before = attrs(mnt)
    stop()
    assert_clean(store)
    m = store.mount("test")["test"]
    assert attrs(m) == before
    return m


def test_metadata_matches_tmpfs_after_remount(store, mnt, tmpfs):
    want = like_tmpfs(history, mnt, tmpfs)
    m = remounted(store, mnt, store.umount)
    assert comparable(attrs(m)) == want
    store.umount()
    assert_clean(store)
    # every file with one link carries a copy but d/e/h3 (its link count
    # went 1 -> 3 -> 2 -> 1 without a rename: its one entry is not known)
    ones = [p for p, v in want.items() if v[0] != stat.S_IFDIR and v[2] == 1]
    assert "d/g" in ones and "d/e/h3" in ones
    assert copies(store) == len(ones) - 1, ones


def test_upgrade_of_a_format2_store(store, mnt):
    fill_tree(mnt)
    os.link(mnt / "d1" / "text.txt", mnt / "text-link")
    os.setxattr(mnt / "random.bin", "user.x", b"y")
    want = tree(mnt)
    store.umount()
    n = copies(store)
    assert n >= 6, n                       # the store is format 2 now
    assert_clean(store)
    assert copies(store) == 0              # no copy is left
    m = store.mount("test")["test"]        # the upgrade, at open
    assert tree(m) == want
    assert os.getxattr(m / "random.bin", "user.x") == b"y"
    store.umount()
    log = store.log()
    assert "upgraded to format 3" in log and f"{n} given a copy" in log, log
    assert_clean(store)
    assert copies(store) == n              # every one-link file again
    # and a second open upgrades again, then not: the log says it once more
    m = store.mount("test")["test"]
    assert tree(m) == want
    store.umount()
    assert store.log().count("upgraded to format 3") == 2
    m = store.mount("test")["test"]
    store.umount()
    assert store.log().count("upgraded to format 3") == 2


@pytest.mark.parametrize("mode", ["stale-copy", "uncopied"])
def test_fsck_finds_a_stale_copy(store, mnt, mode):
    write(mnt / "f", b"12345")
    write(mnt / "g", b"other")
    store.umount()
    assert_clean(store)
    run([CORRUPT, "--store", store.path, "--volume", "test", "--path", "/f",
         "--mode", mode])
    rc, rep = fsck(store)
    assert rc == 1 and rep["found"]["stale_copies"] == 1, rep
    p = run([HOARD, "fsck", "--store", store.path], check=False)
    assert p.returncode == 1 and "stale copies of records" in p.stdout
    rc, rep = fsck(store, "--repair")
    assert rc == 0 and rep["repaired"], rep
    assert_clean(store)
    m = store.mount("test")["test"]
    assert os.stat(m / "f").st_size == 5 and (m / "f").read_bytes() == b"12345"
    os.chmod(m / "f", 0o600)               # a file without a home stays right
    store.umount()
    assert_clean(store)
    m = store.mount("test")["test"]
    assert stat.S_IMODE(os.stat(m / "f").st_mode) == 0o600


def test_clone_with_hard_links(store, mnt):
    fill_tree(mnt)
    want = tree(mnt)
    store.umount()
    res = json.loads(run([HOARD, "volume", "clone", "test", "copy", "--store",
                          store.path, "--json"]).stdout)
    assert res["files"] >= 6
    assert_clean(store)
    m = store.mount("test", "copy")
    assert tree(m["copy"]) == want
    # the clone's one-link files carry copies of the clone's records
    os.chmod(m["copy"] / "random.bin", 0o700)
    os.truncate(m["copy"] / "d1" / "text.txt", 3)
    os.link(m["copy"] / "empty", m["copy"] / "empty2")
    os.unlink(m["copy"] / "hard")
    store.umount()
    assert_clean(store)
    m = store.mount("test", "copy")
    assert tree(m["test"]) == want
    got = tree(m["copy"])
    assert got["random.bin"][1] == 0o700 and got["d1/text.txt"][4] == 3
    assert got["empty"][8] == 2 and got["d1/d2/small"][8] == 1
    store.umount()


def test_pull_with_hard_links(s3, stores, request):  # noqa: F811
    url = f"s3://{s3.bucket}/{request.node.name}"
    a = stores("a")
    a.init()
    mp = a.mount("vol")["vol"]
    fill_tree(mp)
    want = tree(mp)
    a.umount()
    sync_hj(s3, "push", url, "--store", a.path, "--volume", "vol")
    b = stores("b")
    sync_hoard(s3, "init", "--from", url, "--store", b.path)
    sync_hj(s3, "pull", url, "--store", b.path, "--volume", "vol")
    assert_clean(b)
    mp = b.mount("vol")["vol"]
    assert tree(mp) == want
    b.umount()
    assert_clean(b)


def test_readdirplus_copies_are_not_stale(store, mnt):
    """READDIRPLUS answers from the copies its snapshot of the directory
    read, but only while no inode record changed since: a file changed
    (and forgotten by the kernel) between two READDIRPLUS requests of one
    listing must show its new attributes."""
    d = mnt / "many"
    d.mkdir()
    names = [f"f{i:05d}" for i in range(3000)]
    for n in names:
        (d / n).write_bytes(b"")
    store.umount()
    m = store.mount("test")["test"] / "many"
    seen = {}
    with os.scandir(m) as it:
        for e in it:
            seen[e.name] = e.stat(follow_symlinks=False).st_mode
            if len(seen) == 5:
                break
        assert names[-1] not in seen
        os.chmod(m / names[-1], 0o600)
        os.truncate(m / names[-2], 7)
        forget_all()                        # the kernel forgets both inodes
        for e in it:
            seen[e.name] = e.stat(follow_symlinks=False)
    assert stat.S_IMODE(seen[names[-1]].st_mode) == 0o600
    assert seen[names[-2]].st_size == 7
    assert os.lstat(m / names[-2]).st_size == 7
    st = [seen[n] for n in names[5:-2]]
    assert all(s.st_nlink == 1 and s.st_size == 0 for s in st)


def forget_all():
    """The kernel forgets its dentries and inodes: the next lstat of any
    name is a LOOKUP."""
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("2\n")


def read_ahead_counts(store):
    """(scans, LOOKUPs answered) of the entries read ahead, from the debug
    log line of each daemon run so far."""
    scans = answered = 0
    for line in store.log().splitlines():
        if "entries read ahead:" in line:
            w = line.split("entries read ahead:")[1].split()
            scans += int(w[0])
            answered += int(w[2])
    return scans, answered


def lstat_key(p):
    try:
        s = os.lstat(p)
    except FileNotFoundError:
        return None
    return (stat.S_IFMT(s.st_mode), stat.S_IMODE(s.st_mode), s.st_nlink,
            s.st_size if not stat.S_ISDIR(s.st_mode) else 0,
            s.st_mtime_ns if not stat.S_ISDIR(s.st_mode) else 0)


def test_lookup_walk_sees_every_change(store, mnt, tmpfs):
    """A LOOKUP walk of a directory's names is answered from a window of
    its entries read ahead (fs/core/dentpf.c).  Every change of an entry or
    of a copy made while such windows exist (chmod, truncate, a write,
    unlink, create, rename within and across directories, rename over, a
    hard link, utimes, mkdir, symlink) shows in the LOOKUPs that follow,
    present or absent, as on a tmpfs; the walk's windows are used; creating
    files (negative LOOKUPs) starts no read ahead."""
    names = [f"f{i:05d}" for i in range(600)]
    for root in (mnt, tmpfs):
        for d in "abc":
            (root / d).mkdir()
            for n in names:
                (root / d / n).write_bytes(b"x" * (len(n) + ord(d)))
                os.utime(root / d / n, ns=(10**18, 10**18))
    store.umount()
    m = store.mount("test", extra=("--log-level", "debug"))["test"]
    forget_all()
    # the first half of each directory, in turn (as hoard-bench statfiles)
    for n in names[:300]:
        for d in "abc":
            assert lstat_key(m / d / n) == lstat_key(tmpfs / d / n), (d, n)
    # the running daemon's counts in `hoard stats`: windows read, LOOKUPs
    # answered, and the tables holding the entries read ahead
    st = store.stats()
    assert st["lookup_scans"] > 0 and st["lookup_window_hits"] >= 800, st
    assert st["lookup_prefetch_bytes"] > 0, st
    prom = run([HOARD, "stats", "--store", store.path, "--format",
                "prometheus"]).stdout
    assert f"hoard_lookup_window_hits_total {st['lookup_window_hits']}" in prom
    t = 10**18 + 5 * 10**9

    def ops(root):
        a, b = root / "a", root / "b"
        yield "chmod", ["a/f00300"], lambda: os.chmod(a / "f00300", 0o600)
        yield "truncate", ["a/f00301"], lambda: os.truncate(a / "f00301", 3)
        yield "write", ["a/f00302"], lambda: (
            write(a / "f00302", b"more", "ab"),
            os.utime(a / "f00302", ns=(t, t)))
        yield "unlink", ["a/f00303", "a/f00304"], lambda: os.unlink(a / "f00303")
        yield "create", ["a/f00305x", "a/f00306"], lambda: (
            write(a / "f00305x", b"new"), os.utime(a / "f00305x", ns=(t, t)))
        yield "rename", ["a/f00307", "a/f00307r"], lambda: os.rename(
            a / "f00307", a / "f00307r")
        yield "rename over", ["a/f00308", "a/f00309"], lambda: os.rename(
            a / "f00308", a / "f00309")
        yield "link", ["a/f00310", "a/f00310l", "a/f00311"], lambda: os.link(
            a / "f00310", a / "f00310l")
        yield "utimes", ["a/f00312"], lambda: os.utime(a / "f00312", ns=(t, t))
        yield "mkdir", ["a/f00313d"], lambda: (a / "f00313d").mkdir()
        yield "symlink", ["a/f00314s"], lambda: os.symlink("f00300", a / "f00314s")
        yield "across", ["b/f00315", "a/f00315b"], lambda: os.rename(
            b / "f00315", a / "f00315b")
        yield "unlink link", ["a/f00310", "a/f00310l"], lambda: os.unlink(
            a / "f00310l")

    for (what, paths, op), (_, _, op_t) in zip(ops(m), ops(tmpfs)):
        # a name the window holds as absent, then present
        if what == "create":
            assert lstat_key(m / "a" / "f00305x") is None
        op()
        op_t()
        forget_all()
        for p in paths:
            got, want = lstat_key(m / p), lstat_key(tmpfs / p)
            if what == "mkdir" and got and want:
                got, want = got[:2], want[:2]
            if what in ("truncate", "symlink"):     # mtime: the clock's
                got, want = got[:4], want[:4]
            assert got == want, (what, p)
    # every name, and every name the changes made
    forget_all()
    for n in names:
        for d in "abc":
            for x in ("", "r", "x", "l", "b", "s", "d"):
                got = lstat_key(m / d / (n + x))
                want = lstat_key(tmpfs / d / (n + x))
                if got and want and stat.S_ISDIR(got[0]):
                    got, want = got[:2], want[:2]
                if got and want and ((d, n) == ("a", "f00301") or x == "s"):
                    got, want = got[:4], want[:4]
                assert got == want, (d, n + x)
    store.umount()
    scans, answered = read_ahead_counts(store)
    # most of the first walk's 900 LOOKUPs (the second, its names mixed
    # with names that do not exist, starts none)
    assert scans > 0 and answered >= 800, (scans, answered)
    assert_clean(store)
    # creating files: every LOOKUP is of a name that does not exist yet
    m = store.mount("test", extra=("--log-level", "debug"))["test"]
    (m / "new").mkdir()
    for n in names:
        (m / "new" / n).write_bytes(b"")
    store.umount()
    assert read_ahead_counts(store)[0] == scans


def test_lookup_walk_names_that_extend_others(store, mnt):
    """A walk answered from windows (dentpf.c guesses the entry after the
    last one answered) tells a name from a longer one that starts with it:
    where only g00010x exists, g00010 is absent, whatever came before."""
    names = [f"g{i:05d}" + ("x" if i % 10 == 0 else "") for i in range(600)]
    (mnt / "d").mkdir()
    for i, n in enumerate(names):
        (mnt / "d" / n).write_bytes(b"y" * (i % 97))
    store.umount()
    m = store.mount("test", extra=("--log-level", "debug"))["test"]
    forget_all()
    for walk in range(2):
        for i in range(600):
            n = f"g{i:05d}"
            if i % 10 == 0:
                assert lstat_key(m / "d" / n) is None, n
                assert os.lstat(m / "d" / (n + "x")).st_size == i % 97, n
            else:
                assert os.lstat(m / "d" / n).st_size == i % 97, n
        forget_all()
    store.umount()
    scans, answered = read_ahead_counts(store)
    assert scans > 0 and answered >= 500, (scans, answered)


def test_lookup_walks_during_changes(store, mnt):
    """LOOKUP walks (entries read ahead) of two directories by two threads
    while a third changes modes, sizes and names in them: afterwards every
    LOOKUP shows the last change (a window read before a change is never
    used after it)."""
    import threading
    names = [f"f{i:05d}" for i in range(1500)]
    want = {}
    for d in "ab":
        (mnt / d).mkdir()
        for i, n in enumerate(names):
            (mnt / d / n).write_bytes(b"x" * (i % 50))
            want[d, n] = (0o644, i % 50)
    store.umount()
    m = store.mount("test", extra=("--log-level", "debug"))["test"]
    stop = threading.Event()
    errors = []

    def walk():
        try:
            while not stop.is_set():
                for n in names:
                    for d in "ab":
                        try:
                            os.lstat(m / d / n)
                        except FileNotFoundError:
                            pass            # renamed away for a moment
                forget_all()
        except Exception as e:          # noqa: BLE001
            errors.append(e)

    readers = [threading.Thread(target=walk) for _ in range(2)]
    for t in readers:
        t.start()
    for k in range(400):
        i = (k * 7919) % len(names)
        d, n = "ab"[k % 2], names[i]
        p = m / d / n
        if k % 3 == 0:
            mode = 0o600 if want[d, n][0] == 0o644 else 0o644
            os.chmod(p, mode)
            want[d, n] = (mode, want[d, n][1])
        elif k % 3 == 1:
            os.truncate(p, k % 61)
            want[d, n] = (want[d, n][0], k % 61)
        else:
            os.rename(p, m / d / (n + ".t"))
            os.rename(m / d / (n + ".t"), p)
    stop.set()
    for t in readers:
        t.join()
    assert not errors, errors
    forget_all()
    for n in names:
        for d in "ab":
            s = os.lstat(m / d / n)
            assert (stat.S_IMODE(s.st_mode), s.st_size) == want[d, n], (d, n)
    store.umount()
    assert read_ahead_counts(store)[1] > 0
    assert_clean(store)


def two_to_one(root):
    """Every way a file's link count goes 2 -> 1 (FORMAT 2.2): the entry
    left becomes its home and carries its copy, from the same batch."""
    r = str(root)
    os.makedirs(f"{r}/s/t")
    for n in "abcdefgy":
        write(f"{r}/{n}", n.encode() * 10)
    os.link(f"{r}/a", f"{r}/a2")             # same directory, first name goes
    os.unlink(f"{r}/a")
    os.link(f"{r}/b", f"{r}/s/b2")           # across directories, second goes
    os.unlink(f"{r}/s/b2")
    os.link(f"{r}/c", f"{r}/s/c2")           # a link moved, then the other goes
    os.rename(f"{r}/s/c2", f"{r}/s/t/c3")
    os.unlink(f"{r}/c")
    os.link(f"{r}/d", f"{r}/s/d2")           # a rename over one of two links
    os.rename(f"{r}/y", f"{r}/s/d2")
    os.link(f"{r}/e", f"{r}/s/e2")           # an exchange moves a link
    write(f"{r}/s/x", b"x")
    renameat2(f"{r}/s/e2", f"{r}/s/x", RENAME_EXCHANGE)
    os.unlink(f"{r}/e")                      # s/x is its name left
    os.link(f"{r}/f", f"{r}/s/f2")           # a rename of the other link over
    os.rename(f"{r}/s/f2", f"{r}/g")         # another file: f keeps 2 links
    os.unlink(f"{r}/f")                      # then 1: its name left is g
    os.chmod(f"{r}/g", 0o640)                # the copy follows the record
    os.truncate(f"{r}/s/t/c3", 3)


def one_link_files(root):
    return sorted(os.path.relpath(os.path.join(d, n), root)
                  for d, _, files in os.walk(root) for n in files
                  if os.lstat(os.path.join(d, n)).st_nlink == 1)


def test_two_links_to_one_gives_the_copy(store, mnt, tmpfs):
    """An unlink, or a rename over one of two links, makes the entry left
    its file's home with the copy: no file with one link is left without
    one (before the fix, each of these kept a 9-byte entry until renamed,
    and its LOOKUPs read the record too)."""
    like_tmpfs(two_to_one, mnt, tmpfs)
    ones = one_link_files(mnt)
    assert {"a2", "b", "s/t/c3", "d", "s/x", "g"} <= set(ones), ones
    remounted(store, mnt, store.umount)
    store.umount()
    assert copies(store) == len(ones), ones


def test_two_links_to_one_killed(store, mnt):
    """kill -9 right after the unlinks (nothing synced): the unlink and the
    copy in the entry left are one batch, so the store is fsck-clean with
    every one-link file copied, and reads back right."""
    two_to_one(mnt)
    ones = one_link_files(mnt)
    remounted(store, mnt, store.kill9)
    store.umount()
    assert_clean(store)
    assert copies(store) == len(ones), ones


def test_link_drops_the_copy(store, mnt):
    """1 -> 2 links: neither entry carries a copy (and a setattr with two
    links leaves none); 2 -> 3 and back to 2 forget the entries, which
    fsck accepts."""
    write(mnt / "a", b"a")
    write(mnt / "b", b"b")
    write(mnt / "keep", b"k")
    os.link(mnt / "a", mnt / "a2")
    os.chmod(mnt / "a2", 0o600)
    os.link(mnt / "b", mnt / "b2")
    os.link(mnt / "b", mnt / "b3")
    os.unlink(mnt / "b3")
    store.umount()
    assert_clean(store)
    assert copies(store) == 1               # keep's alone


def test_fsck_finds_a_lost_link(store, mnt):
    """A record naming its two entries, one of which is gone: fsck counts
    it (and the link count) and --repair forgets the entries."""
    write(mnt / "a", b"a")
    os.link(mnt / "a", mnt / "a2")
    store.umount()
    assert_clean(store)
    run([CORRUPT, "--store", store.path, "--volume", "test", "--path", "/a2",
         "--mode", "entry"])
    rc, rep = fsck(store)
    assert rc == 1 and rep["found"]["stale_copies"] == 1, rep
    rc, rep = fsck(store, "--repair")
    assert rc == 0 and rep["repaired"], rep
    assert_clean(store)
    m = store.mount("test")["test"]
    assert os.stat(m / "a").st_nlink == 1 and (m / "a").read_bytes() == b"a"
    os.chmod(m / "a", 0o600)
    store.umount()
    assert_clean(store)
