# SPDX-License-Identifier: MIT
"""fsx (see fsx.py) against a tmpfs oracle.

HOARD_FSX_OPS sets the number of operations of the main run (default 20,000;
3,000 under HOARD_E2E_SHORT=1), HOARD_FSX_SEED the seed.  On a hoard mount
the main run is cut in four, with an unmount and a remount between the
parts, so later operations work on state that came back from the store.
"""
import hashlib
import os
import stat

import pytest

from conftest import FUT, SHORT
from fsx import Fsx, Mismatch, NamespaceFsx

OPS = int(os.environ.get("HOARD_FSX_OPS", 3000 if SHORT else 20000))
SEED = int(os.environ.get("HOARD_FSX_SEED", 20240601))


def test_fsx(fut, tmpfs, request):
    fsx = Fsx(tmpfs / "fsx", fut / "fsx", SEED, OPS)
    if FUT == "hoard":
        store = request.getfixturevalue("store")
        for part in range(3):
            fsx.steps(OPS // 4)
            fsx.check_all(f"before remount {part}")
            fsx.close_all()
            store.umount()
            assert store.mount("test")["test"] == fut
            fsx.check_all(f"after remount {part}")
    counts = fsx.run()
    # every kind of operation ran
    assert set(counts) == {name for name, _ in Fsx.OPS}, counts
    assert sum(counts.values()) == OPS
    if FUT == "hoard":
        check_store_accounting(store, fut / "fsx")


def check_store_accounting(store, d):
    """hoard stats agrees with the tree, and once the files are gone no chunk
    is left: the random history kept every refcount right."""
    inodes = {}
    for n in os.listdir(d):
        s = os.lstat(d / n)
        inodes[s.st_ino] = s.st_size
    s = store.stats()
    assert (s["files"], s["logical_bytes"]) == (len(inodes), sum(inodes.values())), s
    for n in os.listdir(d):
        os.unlink(d / n)
    s = store.stats()
    assert [s[k] for k in ("files", "logical_bytes", "unique_bytes", "stored_bytes",
                           "chunks")] == [0] * 5, s
    store.umount()
    s = store.stats()
    assert [s[k] for k in ("files", "logical_bytes", "unique_bytes", "stored_bytes",
                           "chunks")] == [0] * 5, s


def test_namespace_fsx(fut, tmpfs, request):
    """Random directory-tree operations (see fsx.NamespaceFsx)."""
    ns = NamespaceFsx(tmpfs / "ns", fut / "ns", SEED + 2, max(OPS // 2, 1000))
    counts = ns.run()
    assert {"mkdir", "rmdir", "create", "link", "symlink", "unlink", "rename",
            "rename-noreplace", "rename-exchange", "chmod", "lstat", "listdir"} == set(counts)
    if FUT == "hoard":
        store = request.getfixturevalue("store")
        store.umount()
        store.mount("test")
        ns.check_all("after remount")
        inodes = {}     # type -> inode numbers (hard links count once)
        for p in ns.tree(1):
            st = os.lstat(fut / "ns" / p)
            inodes.setdefault(stat.S_IFMT(st.st_mode), set()).add(st.st_ino)
        s = store.stats()
        # the volume root is a directory too
        assert (s["dirs"], s["symlinks"], s["files"]) == \
            (len(inodes[stat.S_IFDIR]) + 1, len(inodes.get(stat.S_IFLNK, ())),
             len(inodes.get(stat.S_IFREG, ()))), s


def test_fsx_many_names_small_files(fut, tmpfs):
    """More names and small files: renames and links dominate."""
    fsx = Fsx(tmpfs / "fsx", fut / "fsx", SEED + 1, max(OPS // 4, 500), nnames=12,
              max_size=256 * 1024, max_handles=10)
    fsx.run()


def forked(fn):
    """Run fn() in a child process; returns a handle for joined()."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            out = fn() or "ok"
        except BaseException as x:  # noqa: BLE001 - reported to the parent
            out = f"{type(x).__name__}: {x}"
        os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    return pid, r


def joined(child):
    pid, r = child
    chunks = []
    while b := os.read(r, 65536):
        chunks.append(b)
    os.close(r)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


def test_fsx_parallel(fut, tmpfs):
    """Three fsx runs at once in separate directories: the daemon's threads
    serve them concurrently."""
    n = max(OPS // 6, 500)

    def one(i):
        Fsx(tmpfs / f"p{i}", fut / f"p{i}", SEED + 10 + i, n, max_size=2 << 20).run()
    children = [forked(lambda i=i: one(i)) for i in range(3)]
    results = [joined(c) for c in children]
    assert results == ["ok"] * 3, "\n\n".join(results)



def test_concurrent_writers_one_file(fut):
    """Four processes write interleaved 4 KiB blocks of one file through
    their own descriptors; every block ends up where it was written."""
    path, nproc, nblocks = fut / "shared", 4, 1024
    path.write_bytes(b"")

    def block(i):
        return hashlib.sha256(b"%d" % i).digest() * 128

    def writer(k):
        fd = os.open(path, os.O_WRONLY)
        for i in range(k, nblocks, nproc):
            os.pwrite(fd, block(i), i * 4096)
            if i % 97 == 0:
                os.fsync(fd)
        os.close(fd)

    results = [joined(c) for c in [forked(lambda k=k: writer(k)) for k in range(nproc)]]
    assert results == ["ok"] * nproc
    got = path.read_bytes()
    assert len(got) == nblocks * 4096
    bad = [i for i in range(nblocks) if got[i * 4096:(i + 1) * 4096] != block(i)]
    assert not bad, f"blocks with wrong content: {bad[:20]}"


def test_fsx_detects_a_difference(tmpfs, tmp_path):
    """fsx itself: a file changed behind its back on one side is reported."""
    other = tmp_path / "plain"
    fsx = Fsx(tmpfs / "a", other, 7, 400)
    fsx.steps(300)
    name = next(n for n in fsx.names if os.path.exists(fsx.path(1, n))
                and os.path.getsize(fsx.path(1, n)) > 0)
    with open(fsx.path(1, name), "r+b") as f:
        f.write(b"\xff" if f.read(1) != b"\xff" else b"\x00")
    with pytest.raises(Mismatch, match=r"seed=7 op #"):
        fsx.check_all()


def test_concurrent_metadata_one_dir(fut):
    """Four processes create, rename, link and unlink in one directory at
    once; the directory ends up exactly as the sum of their work."""
    d = fut / "shared"
    d.mkdir()
    nproc, n = 4, 400

    def worker(k):
        for i in range(n):
            a = d / f"p{k}-{i}"
            a.write_bytes(b"%d-%d" % (k, i))
            if i % 3 == 0:
                os.rename(a, d / f"p{k}-{i}-renamed")
            elif i % 3 == 1:
                os.link(a, d / f"p{k}-{i}-link")
                os.unlink(a)
            if i % 5 == 0:
                os.mkdir(d / f"p{k}-{i}-dir")
                if i:
                    os.rmdir(d / f"p{k}-{i - 5}-dir")

    results = [joined(c) for c in [forked(lambda k=k: worker(k)) for k in range(nproc)]]
    assert results == ["ok"] * nproc, results
    want = set()
    for k in range(nproc):
        for i in range(n):
            want.add(f"p{k}-{i}" + ("-renamed" if i % 3 == 0 else "-link" if i % 3 == 1 else ""))
        want.add(f"p{k}-{n - 5}-dir")
    assert set(os.listdir(d)) == want
    assert os.stat(d).st_nlink == 2 + nproc
    for name in want:
        if not name.endswith("-dir"):
            k, i = name.split("-")[:2]
            assert (d / name).read_bytes() == f"{k[1:]}-{i}".encode()
            assert os.stat(d / name).st_nlink == 1


def test_reads_during_commits(fut):
    """One process rewrites a file again and again (each close commits it);
    others read it meanwhile, with O_DIRECT (every read reaches the daemon)
    and through the page cache.  Every byte read is one that was written:
    never zeros from a dropped staging file, never a torn extent map."""
    import mmap
    path, size, versions = fut / "hot", 2 << 20, 40 if SHORT else 150
    path.write_bytes(b"\x01" * size)

    def writer():
        for v in range(2, versions + 1):
            fd = os.open(path, os.O_WRONLY)
            for off in range(0, size, 256 << 10):
                os.pwrite(fd, bytes([v]) * (256 << 10), off)
            if v % 4 == 0:
                os.fsync(fd)
            os.close(fd)

    def reader(direct):
        ok = set(range(1, versions + 1))
        buf = mmap.mmap(-1, 1 << 20)
        reads = 0
        while True:
            fd = os.open(path, os.O_RDONLY | (os.O_DIRECT if direct else 0))
            for off in (0, 1 << 20):
                n = os.preadv(fd, [buf], off)
                if n != 1 << 20:
                    return f"short read {n} at {off}"
                seen = set(buf[:])
                if not seen <= ok:
                    return f"read bytes {sorted(seen - ok)[:5]} at {off} (read {reads})"
                reads += 1
            os.close(fd)
            if buf[-1] == versions:
                return None

    readers = [forked(lambda d=d: reader(d)) for d in (True, False)]
    w = forked(writer)
    results = [joined(c) for c in [w] + readers]
    assert results == ["ok"] * 3, results
    assert path.read_bytes() == bytes([versions]) * size
