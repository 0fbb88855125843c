# SPDX-License-Identifier: MIT
"""Streaming writes (fs/core/file.c): a file written only by appends is chunked
as the writes arrive, without a staging file; reads while it is written,
writes elsewhere, truncates and fsync mid-way all see the right bytes."""
import hashlib
import os

import pytest

from conftest import requires_hoard

pytestmark = requires_hoard

MIB = 1 << 20


def pattern(n, seed):
    out, i = bytearray(), 0
    while len(out) < n:
        out += hashlib.sha256(b"%d:%d" % (seed, i)).digest() * 64
        i += 1
    return bytes(out[:n])


def staging_files(store):
    d = store.path / "staging"
    return os.listdir(d) if d.exists() else []


def read_all(path):
    with open(path, "rb") as f:
        return f.read()


def test_append_streams_without_staging_file(store, mnt):
    data = os.urandom(20 * MIB)
    fd = os.open(mnt / "f", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        for off in range(0, len(data), MIB):
            os.write(fd, data[off:off + MIB])
            # reads while it is written: cut chunks and the uncut tail
            for at in (0, off // 2, max(0, off + MIB - 70000)):
                n = min(100000, off + MIB - at)
                assert os.pread(fd, n, at) == data[at:at + n], (off, at)
        assert staging_files(store) == [], "a sequential writer got a staging file"
        assert os.pread(fd, 10, len(data) - 5) == data[-5:]
    finally:
        os.close(fd)
    assert read_all(mnt / "f") == data
    s = store.stats()
    assert s["logical_bytes"] == len(data)
    assert len(data) <= s["stored_bytes"] < 1.01 * len(data)


@pytest.mark.parametrize("how", ["pwrite", "truncate", "fallocate", "fsync"])
def test_stream_then_random_access(store, mnt, tmp_path, how):
    """Something other than an append turns the stream into a staging file;
    the same operations on the local disk give the same bytes."""
    first, more = pattern(5 * MIB + 123, 1), pattern(3 * MIB + 7, 2)
    results = []
    for base in (mnt, tmp_path):
        fd = os.open(base / "f", os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
        try:
            os.write(fd, first)
            if how == "pwrite":
                os.pwrite(fd, b"X" * 300000, 1000)
            elif how == "truncate":
                os.ftruncate(fd, 3 * MIB + 5)
                os.lseek(fd, 0, os.SEEK_END)
            elif how == "fallocate":
                os.posix_fallocate(fd, 0, 7 * MIB)
            else:
                os.fsync(fd)
            os.write(fd, more)
            results.append((os.pread(fd, 12 * MIB, 0), os.fstat(fd).st_size))
        finally:
            os.close(fd)
        results.append((read_all(base / "f"), os.path.getsize(base / "f")))
    assert results[0] == results[2] and results[1] == results[3]


def test_stream_rewrite_holes_and_dedup(store, mnt):
    """O_TRUNC rewrite of a streamed file; zero runs stay holes; the old
    content's chunks are freed by the commit."""
    old = os.urandom(12 * MIB)
    with open(mnt / "f", "wb") as f:
        for off in range(0, len(old), MIB):
            f.write(old[off:off + MIB])
    new = os.urandom(4 * MIB) + bytes(4 * MIB) + os.urandom(4 * MIB)
    with open(mnt / "f", "wb") as f:
        for off in range(0, len(new), 128 * 1024):
            f.write(new[off:off + 128 * 1024])
    assert read_all(mnt / "f") == new
    s = store.stats()
    assert s["logical_bytes"] == len(new)
    # the zero run is not stored (up to the chunks that straddle its ends)
    assert s["stored_bytes"] < 9 * MIB
    # a second copy, streamed too, shares every chunk
    with open(mnt / "g", "wb") as f:
        f.write(new)
    s2 = store.stats()
    assert s2["stored_bytes"] == s["stored_bytes"]
    assert read_all(mnt / "g") == new


def test_stream_unlinked_while_open(store, mnt):
    fd = os.open(mnt / "f", os.O_CREAT | os.O_RDWR, 0o644)
    data = os.urandom(6 * MIB)
    os.write(fd, data)
    os.unlink(mnt / "f")
    os.write(fd, data)
    assert os.pread(fd, 100, 6 * MIB - 50) == data[-50:] + data[:50]
    os.close(fd)
    s = store.stats()
    assert (s["files"], s["stored_bytes"]) == (0, 0)


def test_parallel_streams_share_chunks(store, mnt):
    """Several files streamed at once (fs/core/ingest.c hashes and stores
    their chunks on worker threads): each reads back exactly, and the
    chunks they share, within a file and across files, are stored once.
    One writer unlinks its file half-way: its queued chunks are dropped."""
    import threading

    shared = os.urandom(8 * MIB)
    own = [os.urandom(8 * MIB) for _ in range(4)]
    datas = [shared + own[i] + shared for i in range(4)]
    errors = []

    def writer(i):
        try:
            p = mnt / f"f{i}"
            fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                for off in range(0, len(datas[i]), MIB):
                    os.write(fd, datas[i][off:off + MIB])
                    if i == 3 and off == 12 * MIB:
                        os.unlink(p)
                    if off % (5 * MIB) == 0:
                        at = max(0, off - 300000)
                        assert os.pread(fd, 400000, at) == \
                            datas[i][at:at + 400000]
            finally:
                os.close(fd)
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append((i, e))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i in range(3):
        assert read_all(mnt / f"f{i}") == datas[i], i
    assert not (mnt / "f3").exists()
    s = store.stats()
    assert s["logical_bytes"] == 3 * 24 * MIB
    unique = len(shared) + 3 * 8 * MIB
    # the chunks that straddle the copies' ends are the only ones added
    assert unique <= s["stored_bytes"] < unique + 4 * MIB


def test_blksize_asks_for_large_writes(store, mnt):
    """st_blksize is 1 MiB (max_write): cp and other tools that size their
    buffers by it write a MiB per FUSE request, not 128 KiB.  A copy by
    cp streams and reads back exactly."""
    import subprocess

    (mnt / "d").mkdir()
    for p in (mnt, mnt / "d"):
        assert os.stat(p).st_blksize == MIB
    src = store.path.parent / "src.bin"
    data = pattern(3 * MIB + 4321, 7)
    src.write_bytes(data)
    subprocess.run(["cp", str(src), str(mnt / "d" / "f")], check=True)
    assert os.stat(mnt / "d" / "f").st_blksize == MIB
    assert read_all(mnt / "d" / "f") == data
    assert staging_files(store) == []
