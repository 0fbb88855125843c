# SPDX-License-Identifier: MIT
"""The store behind the mount: deduplication within and across volumes,
`hoard stats`, and a corrupt chunk reading as EIO for its file only."""
import errno
import hashlib
import os
import re
import subprocess
import time

import pytest

from conftest import CORRUPT, Store, requires_hoard, run

pytestmark = requires_hoard

MIB = 1 << 20
FIELDS = ("files", "logical_bytes", "unique_bytes", "stored_bytes", "chunks")


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(MIB):
            h.update(b)
    return h.hexdigest()


def test_dedup(store, mnt):
    size = 32 * MIB
    data = os.urandom(size)
    shifted = data[:1000] + os.urandom(100) + data[1000:]
    write(mnt / "a", data)
    os.mkdir(mnt / "d")
    write(mnt / "d" / "b", data)
    write(mnt / "c", shifted)
    s = store.stats()
    print(s)
    assert s["files"] == 3
    assert s["logical_bytes"] == 3 * size + 100
    # random bytes do not compress: stored once, not three times, not less
    assert size <= s["unique_bytes"] < 1.15 * size
    assert size <= s["stored_bytes"] < 1.15 * size
    # min 16 KiB, max 256 KiB chunks (docs/FORMAT.md section 4)
    assert size // (256 * 1024) <= s["chunks"] <= size // (16 * 1024) + 2
    v = s["volumes"]["test"]
    assert set(s["volumes"]) == {"test"}
    assert {k: v[k] for k in FIELDS} == {k: s[k] for k in FIELDS}
    # and the bytes are right
    assert sha(mnt / "a") == sha(mnt / "d" / "b") == hashlib.sha256(data).hexdigest()
    assert sha(mnt / "c") == hashlib.sha256(shifted).hexdigest()
    # deleting two copies keeps the chunks the third still uses
    os.unlink(mnt / "a")
    os.unlink(mnt / "d" / "b")
    s2 = store.stats()
    assert (s2["files"], s2["logical_bytes"]) == (1, size + 100)
    assert size <= s2["unique_bytes"] < 1.15 * size
    os.unlink(mnt / "c")
    # the inode goes at the kernel's FORGET, which unlink(2) does not wait
    # for (the plain tier's copying makes that wait visible under load)
    deadline = time.time() + 30
    while True:
        s3 = store.stats()
        if {k: s3[k] for k in FIELDS} == dict.fromkeys(FIELDS, 0) or time.time() > deadline:
            break
        time.sleep(0.1)
    assert {k: s3[k] for k in FIELDS} == dict.fromkeys(FIELDS, 0)


def test_cross_volume_dedup(store):
    m = store.mount("a", "b")
    size = 8 * MIB
    data = os.urandom(size)
    write(m["a"] / "model.bin", data)
    write(m["b"] / "same.bin", data)
    s = store.stats()
    print(s)
    assert (s["files"], s["logical_bytes"]) == (2, 2 * size)
    assert size <= s["unique_bytes"] < 1.15 * size
    assert size <= s["stored_bytes"] < 1.15 * size
    assert set(s["volumes"]) == {"a", "b"}
    for name in ("a", "b"):
        v = s["volumes"][name]
        assert (v["files"], v["logical_bytes"]) == (1, size)
        # a chunk shared by two volumes counts in each
        assert (v["unique_bytes"], v["stored_bytes"], v["chunks"]) == \
            (s["unique_bytes"], s["stored_bytes"], s["chunks"])
    assert sha(m["b"] / "same.bin") == hashlib.sha256(data).hexdigest()
    # volumes are separate trees
    assert (os.listdir(m["a"]), os.listdir(m["b"])) == (["model.bin"], ["same.bin"])
    store.umount()
    assert os.listdir(store.mount("b")["b"]) == ["same.bin"]
    s = store.stats()
    assert set(s["volumes"]) == {"a", "b"}      # a volume outlives its mount


@pytest.mark.parametrize("level", [0, 1, 19])
def test_compression_levels(tmp_path, level):
    """Level 0 stores frames raw; otherwise a chunk is compressed unless
    zstd saves less than a tenth (docs/FORMAT.md section 3)."""
    store = Store(tmp_path / "store")
    store.init("--level", str(level))
    m = store.mount("test")["test"]
    try:
        text = b"".join(b"line %d of a very compressible file\n" % i for i in range(200000))
        write(m / "text", text)
        s = store.stats()
        if level == 0:     # one tag byte per frame
            assert s["stored_bytes"] == s["unique_bytes"] + s["chunks"], s
        else:
            assert s["stored_bytes"] < s["unique_bytes"] // 5, s
        write(m / "random", os.urandom(4 * MIB))
        s2 = store.stats()
        grown = [s2[k] - s[k] for k in ("unique_bytes", "stored_bytes", "chunks")]
        assert grown[0] == 4 * MIB and grown[1] == grown[0] + grown[2], (s, s2)   # raw
        assert (m / "text").read_bytes() == text
    finally:
        store.umount()
    store.check_log()


def test_corrupt_chunk_is_eio_for_that_file_only(store, mnt):
    bad, good = os.urandom(3 * MIB), os.urandom(3 * MIB)
    os.mkdir(mnt / "sub")
    write(mnt / "sub" / "bad", bad)
    write(mnt / "good", good)
    store.umount()
    p = run([CORRUPT, "--store", store.path, "--volume", "test", "--path", "/sub/bad"])
    ids = re.findall(r"\b[0-9a-f]{32}\b", p.stdout)
    mnt = store.mount("test")["test"]
    for _ in range(2):      # and not some cached wrong bytes the second time
        with pytest.raises(OSError) as x:
            with open(mnt / "sub" / "bad", "rb") as f:
                f.read()
        assert x.value.errno == errno.EIO
    # the file's metadata and the other file are fine
    assert os.stat(mnt / "sub" / "bad").st_size == len(bad)
    with open(mnt / "good", "rb") as f:
        assert f.read() == good
    # past the first chunk (at most 256 KiB) the bad file still reads
    with open(mnt / "sub" / "bad", "rb") as f:
        f.seek(2 * MIB)
        assert f.read() == bad[2 * MIB:]
    log = store.log()
    logged = set(re.findall(r"\b[0-9a-f]{32}\b", log))
    assert logged, "the daemon log names no chunk id:\n" + log[-2000:]
    if ids:  # the tool told us which chunk it damaged
        assert ids[0] in logged, f"log does not name chunk {ids[0]}:\n{log[-2000:]}"


def test_writing_the_same_bytes_repairs_a_damaged_chunk(store, mnt):
    """The dedup confirm of a chunk whose stored (raw) frame was damaged
    finds the difference, tells damage from a collision by its id, and
    rewrites the frame with the good bytes: the damaged file reads again."""
    data = os.urandom(3 * MIB)      # random: stored raw
    write(mnt / "a", data)
    store.umount()
    run([CORRUPT, "--store", store.path, "--volume", "test", "--path", "/a"])
    mnt = store.mount("test")["test"]
    with pytest.raises(OSError) as x:
        (mnt / "a").read_bytes()
    assert x.value.errno == errno.EIO
    write(mnt / "b", data)
    assert (mnt / "b").read_bytes() == data
    assert (mnt / "a").read_bytes() == data
    log = store.log()
    assert "rewritten (repaired)" in log, log[-2000:]
    assert "collision" not in log, log[-2000:]


def test_corrupt_chunk_is_eio_for_every_concurrent_reader(store, mnt):
    """Reads are answered by reference into the chunk cache, and readers
    that miss on a chunk another reader is loading wait for that load: when
    the load finds the chunk corrupt, every reader still gets EIO (none
    hangs, none gets bytes), again on a later try, and a good file read at
    the same time through the same cache is right."""
    import threading
    bad, good = os.urandom(3 * MIB), os.urandom(3 * MIB)
    write(mnt / "bad", bad)
    write(mnt / "good", good)
    store.umount()
    run([CORRUPT, "--store", store.path, "--volume", "test", "--path", "/bad"])
    mnt = store.mount("test")["test"]
    results = []

    def reader(path, off):
        try:
            with open(path, "rb", buffering=0) as f:
                f.seek(off)
                results.append((path.name, off, f.read(64 * 1024)))
        except OSError as e:
            results.append((path.name, off, e.errno))

    for attempt in range(2):
        results.clear()
        ts = [threading.Thread(target=reader, args=(mnt / n, o))
              for o in (0, 4096, 16384, 0, 8192) for n in ("bad", "good")]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        assert not any(t.is_alive() for t in ts), "a reader hangs"
        for name, off, got in results:
            if name == "bad":
                assert got == errno.EIO, (attempt, off, got)
            else:
                assert got == good[off:off + 64 * 1024], (attempt, off)


def test_reads_by_reference_survive_eviction(store, mnt):
    """Replies point into the chunk cache; with a cache smaller than what
    concurrent readers use, entries are evicted while replies still point
    into them (each is pinned until its reply is sent).  Every read gets
    the right bytes: random data (chunks stored raw, kept as RocksDB's
    pinned values), compressible data (decoded), and a sparse file (holes
    answered with zeros)."""
    import random
    import threading
    files = {"raw": os.urandom(6 * MIB),
             "text": b"".join(b"row %d of a compressible file\n" % i
                              for i in range(200000)),
             "sparse": None}
    for name, data in files.items():
        if data is not None:
            write(mnt / name, data)
    with open(mnt / "sparse", "wb") as f:
        for off in (0, 3 * MIB, 7 * MIB):
            f.seek(off)
            f.write(os.urandom(100000))
    files["sparse"] = (mnt / "sparse").read_bytes()
    store.umount()
    mnt = store.mount("test", extra=["--cache-size", "256K"])["test"]
    subprocess.run(["sh", "-c", "echo 3 > /proc/sys/vm/drop_caches"],
                   check=True)
    errors = []

    def reader(seed):
        rng = random.Random(seed)
        try:
            for _ in range(40):
                name = rng.choice(sorted(files))
                data = files[name]
                off = rng.randrange(len(data))
                n = rng.choice((4096, 65536, 300000, 1 << 20))
                fd = os.open(mnt / name, os.O_RDONLY)
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    got = os.pread(fd, n, off)
                finally:
                    os.close(fd)
                if got != data[off:off + n]:
                    errors.append((name, off, n))
        except OSError as e:
            errors.append(e)

    ts = [threading.Thread(target=reader, args=(i,)) for i in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(300)
    assert not any(t.is_alive() for t in ts), "a reader hangs"
    assert not errors, errors[:5]
    for name, data in files.items():
        assert (mnt / name).read_bytes() == data, name
    assert store.stats()["cache_misses"] > 0


def test_stats_online_and_offline_agree(store, mnt):
    sizes = [0, 1, 70000, 1 * MIB + 7, 3 * MIB]
    for i, n in enumerate(sizes):
        write(mnt / f"f{i}", os.urandom(n))
    os.makedirs(mnt / "d1" / "d2")
    for i in range(3):
        os.symlink(f"f{i}", mnt / "d1" / f"l{i}")
    write(mnt / "d1" / "d2" / "compressible", b"hoard " * 200000)
    online = store.stats()
    assert (store.path / "control.sock").exists()
    store.umount()
    assert not (store.path / "control.sock").exists()
    offline = store.stats()
    print(online, offline, sep="\n")
    assert online["files"] == len(sizes) + 1
    assert online["logical_bytes"] == sum(sizes) + 6 * 200000
    assert online["dirs"] == 3          # the volume root, d1, d2
    assert online["symlinks"] == 3
    # zstd squeezes the repetitive file, so stored < unique
    assert online["stored_bytes"] < online["unique_bytes"] < online["logical_bytes"]

    def comparable(s):      # the database's size on disk may change on close;
        # the daemon adds its cache's, its plain-file tier's and its
        # LOOKUP windows' figures, and its read_errors and commit_errors
        # (counters of the daemon)
        s = {k: v for k, v in s.items()
             if k not in ("db_bytes", "read_errors", "commit_errors")
             and not k.startswith(("cache_", "plain_", "passthrough",
                                   "lookup_"))}
        s["volumes"] = {n: {k: x for k, x in v.items() if k != "db_bytes"}
                        for n, v in s["volumes"].items()}
        return s
    assert comparable(online) == comparable(offline)
