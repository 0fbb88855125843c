# SPDX-License-Identifier: MIT
"""FUSE passthrough over the plain-file tier (docs/FORMAT.md section 7).

Real mounts of a hoardfs built with libfuse >= 3.16 on a kernel that grants
passthrough (Linux >= 6.9, CONFIG_FUSE_PASSTHROUGH); the tests skip, saying
why, when the mount's log says passthrough is off.  Whatever the path, the
bytes must be the ones a local disk (tmpfs here) shows: while a copy is
made, while passthrough readers are open and another process writes,
truncates, renames over or unlinks the file, and after a kill -9.
"""
import errno
import fcntl
import json
import mmap
import os
import re
import struct
import threading
import time

import pytest

from conftest import CORRUPT, HOARD, SHORT, run, requires_hoard
from fsx import Fsx

pytestmark = requires_hoard

MIB = 1 << 20
PT_ARGS = ("--plain-min", "64K")


def info(path):
    return json.loads(os.getxattr(path, "user.hoard.info"))


def mount_pt(store, *extra):
    """Mount volume "test" with passthrough asked for; skip when the mount
    does not get it (the reason is in the daemon's log)."""
    mnt = store.mount("test", extra=(*PT_ARGS, *extra))["test"]
    m = re.findall(r"volume 'test' at \S+: passthrough (.*)", store.log())
    assert m, "the daemon did not log the mount's path:\n" + store.log()
    if m[-1] != "on":
        pytest.skip(f"no FUSE passthrough here: {m[-1]}")
    return mnt


def wait_plain(path, want=True, timeout=120):
    deadline = time.time() + timeout
    while info(path)["plain"] != want:
        if time.time() > deadline:
            raise AssertionError(f"{path}: plain never became {want}: {info(path)}")
        time.sleep(0.05)


def make_copy(path):
    """Read the file once (a read-only open asks for a copy), then wait
    for the copy."""
    with open(path, "rb") as f:
        f.read(1)
    wait_plain(path)


def wait_lock_free(store, timeout=60):
    """After kill -9 the thread-group leader is a zombie before the other
    threads are gone (a copy's write may hold one a while): wait until the
    store's lock is free."""
    deadline = time.time() + timeout
    with open(store.path / "lock") as f:
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(f, fcntl.LOCK_UN)
                return
            except BlockingIOError:
                assert time.time() < deadline, "the killed daemon holds the lock"
                time.sleep(0.05)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def read_all(fd):
    size = os.fstat(fd).st_size
    return os.pread(fd, size + 1, 0)


def test_copy_then_passthrough(store, tmp_path):
    mnt = mount_pt(store)
    data = os.urandom(3 * MIB + 123)
    write(mnt / "f", data)
    write(mnt / "small", b"x" * 1000)       # below --plain-min: never a copy
    assert not info(mnt / "f")["plain"]
    with open(mnt / "f", "rb") as f:       # served as today, copy starts
        assert f.read() == data
    wait_plain(mnt / "f")
    s = store.stats()
    assert s["passthrough"]["global"] == "on", s
    assert s["passthrough"]["mounts"]["test"] == "on", s
    assert (s["plain_files"], s["plain_bytes"]) == (1, len(data)), s
    hits = s["plain_hits"]
    with open(mnt / "f", "rb") as f:       # passthrough
        assert f.read() == data
        f.seek(MIB + 7)
        assert f.read(4096) == data[MIB + 7:MIB + 7 + 4096]
    assert store.stats()["plain_hits"] == hits + 1
    with open(mnt / "small", "rb") as f:
        assert f.read() == b"x" * 1000
    time.sleep(0.2)
    assert not info(mnt / "small")["plain"]
    # the copy holds exactly the file's bytes
    copies = os.listdir(store.path / "plain")
    assert copies == [str(os.stat(mnt / "f").st_ino)], copies
    assert (store.path / "plain" / copies[0]).read_bytes() == data
    # a clean stop drops the copies; a new daemon makes them again
    store.umount()
    assert os.listdir(store.path / "plain") == []
    mnt = mount_pt(store)
    assert not info(mnt / "f")["plain"]
    make_copy(mnt / "f")
    assert (mnt / "f").read_bytes() == data


def test_writers_with_passthrough_readers(store, tmpfs):
    """Readers hold passthrough opens while another process writes,
    truncates and extends: after each step every reader sees what tmpfs
    shows, and so does a new open and the store after a remount."""
    mnt = mount_pt(store)
    data = bytearray(os.urandom(2 * MIB))
    for d in (mnt, tmpfs):
        write(d / "f", data)
    make_copy(mnt / "f")
    hits = store.stats()["plain_hits"]
    readers = [os.open(mnt / "f", os.O_RDONLY) for _ in range(3)]
    assert store.stats()["plain_hits"] == hits + 3     # all passthrough
    oracle = os.open(tmpfs / "f", os.O_RDWR)
    w = os.open(mnt / "f", os.O_RDWR)
    steps = [
        ("write", 100, os.urandom(5000)),
        ("write", 2 * MIB - 10, os.urandom(70000)),    # extends
        ("truncate", MIB + 3, None),
        ("write", 3 * MIB, b"tail"),                   # leaves a hole
        ("truncate", 10, None),
        ("write", 0, os.urandom(300000)),
    ]
    for op, off, buf in steps:
        for fd in (w, oracle):
            if op == "write":
                os.pwrite(fd, buf, off)
            else:
                os.ftruncate(fd, off)
        want = read_all(oracle)
        for fd in readers + [w]:
            assert read_all(fd) == want, (op, off)
        assert (mnt / "f").read_bytes() == want
        assert os.stat(mnt / "f").st_size == len(want)
    os.fsync(w)
    os.close(w)
    for fd in readers:
        os.close(fd)
    os.close(oracle)
    want = (tmpfs / "f").read_bytes()
    assert (mnt / "f").read_bytes() == want
    # the last RELEASE, which commits, reaches the daemon after close(2)
    # returns (FUSE sends it in the background): wait for it, bounded
    deadline = time.time() + 30
    while info(mnt / "f")["dirty"] and time.time() < deadline:
        time.sleep(0.05)
    assert not info(mnt / "f")["dirty"]
    store.umount()
    mnt = mount_pt(store)
    assert (mnt / "f").read_bytes() == want
    make_copy(mnt / "f")
    assert (mnt / "f").read_bytes() == want


def test_truncate_by_name_with_passthrough_reader(store):
    mnt = mount_pt(store)
    data = os.urandom(MIB)
    write(mnt / "f", data)
    make_copy(mnt / "f")
    fd = os.open(mnt / "f", os.O_RDONLY)
    os.truncate(mnt / "f", 1000)            # no open handle of its own
    assert read_all(fd) == data[:1000]
    os.close(fd)
    assert (mnt / "f").read_bytes() == data[:1000]
    assert not info(mnt / "f")["plain"]


def test_rename_over_and_unlink(store):
    """A passthrough reader keeps the bytes of the file it opened, as on a
    local disk, when the name is replaced or removed."""
    mnt = mount_pt(store)
    old, new = os.urandom(MIB), os.urandom(MIB + 5)
    write(mnt / "f", old)
    make_copy(mnt / "f")
    fd = os.open(mnt / "f", os.O_RDONLY)
    write(mnt / "g", new)
    os.rename(mnt / "g", mnt / "f")
    assert read_all(fd) == old
    assert (mnt / "f").read_bytes() == new
    make_copy(mnt / "f")
    fd2 = os.open(mnt / "f", os.O_RDONLY)
    os.unlink(mnt / "f")
    assert read_all(fd2) == new
    assert read_all(fd) == old
    os.close(fd)
    os.close(fd2)
    deadline = time.time() + 30
    while os.listdir(store.path / "plain"):      # the copies go with the files
        assert time.time() < deadline, os.listdir(store.path / "plain")
        time.sleep(0.05)
    assert store.stats()["plain_files"] == 0


def test_concurrent_readers_and_writer(store, tmpfs):
    """Threads read the file in a loop (new opens: passthrough or not, as
    the rule says) while one writer rewrites whole versions of it; every
    read sees one whole version, never a mix or foreign bytes."""
    mnt = mount_pt(store)
    size, nver = 512 * 1024, 6 if SHORT else 20
    versions = [bytes([i]) * size for i in range(1, nver + 1)]
    write(mnt / "f", versions[0])
    make_copy(mnt / "f")
    stop, bad = threading.Event(), []

    def reader():
        while not stop.is_set():
            with open(mnt / "f", "rb") as f:
                b = f.read()
            if b and (len(set(b)) != 1 or b[0] == 0 or len(b) != size):
                bad.append((len(b), sorted(set(b))[:4]))

    ts = [threading.Thread(target=reader) for _ in range(3)]
    for t in ts:
        t.start()
    try:
        for v in versions[1:]:
            p = mnt / "f.tmp"
            write(p, v)
            os.rename(p, mnt / "f")         # the usual atomic replace
            time.sleep(0.02)
    finally:
        stop.set()
        for t in ts:
            t.join()
    assert not bad, bad[:5]
    assert (mnt / "f").read_bytes() == versions[-1]


def safetensors_like(ntensors=8, elems=64 * 1024):
    header, tensors, off = {}, [], 0
    for i in range(ntensors):
        t = os.urandom(elems * 2)
        header[f"t{i}"] = {"dtype": "F16", "shape": [elems],
                           "data_offsets": [off, off + len(t)]}
        tensors.append(t)
        off += len(t)
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + b"".join(tensors), header


def test_mmap_load(store):
    mnt = mount_pt(store)
    blob, header = safetensors_like()
    write(mnt / "model.safetensors", blob)
    make_copy(mnt / "model.safetensors")
    with open(mnt / "model.safetensors", "rb") as f:
        m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
        n = struct.unpack("<Q", m[:8])[0]
        assert json.loads(m[8:8 + n]) == header
        for name, t in header.items():
            a, b = t["data_offsets"]
            assert m[8 + n + a:8 + n + b] == blob[8 + n + a:8 + n + b], name
        m.close()


def test_kill9_during_copy(store):
    """kill -9 while the copy of a large file is being made: the next
    daemon drops what it finds in STORE/plain, reads are right, a new
    copy is made and is right."""
    mnt = mount_pt(store)
    data = os.urandom((16 if SHORT else 64) * MIB)
    write(mnt / "big", data)
    with open(mnt / "big", "rb") as f:
        f.read(1)                           # the copy starts
    store.kill9()
    wait_lock_free(store)
    mnt = mount_pt(store)
    left = [n for n in os.listdir(store.path / "plain")]
    assert left == [], left                  # nothing of the old run is left
    assert (mnt / "big").read_bytes() == data
    wait_plain(mnt / "big")
    assert (mnt / "big").read_bytes() == data
    assert (store.path / "plain" / str(os.stat(mnt / "big").st_ino)).read_bytes() == data


def test_corrupt_chunk_gives_eio_and_no_copy(store):
    mnt = mount_pt(store)
    write(mnt / "bad", os.urandom(MIB))
    store.umount()
    run([CORRUPT, "--store", store.path, "--volume", "test", "--path", "/bad"])
    mnt = mount_pt(store)
    for _ in range(2):
        with pytest.raises(OSError) as x:
            with open(mnt / "bad", "rb") as f:
                f.read()
        assert x.value.errno == errno.EIO
    deadline = time.time() + 10
    while store.stats()["plain_failed"] == 0 and time.time() < deadline:
        time.sleep(0.05)
    s = store.stats()
    assert s["plain_failed"] >= 1 and s["plain_files"] == 0, s
    assert not info(mnt / "bad")["plain"]
    assert os.listdir(store.path / "plain") == []
    assert "no plain copy: a chunk is corrupt" in store.log()
    # the log line is expected; nothing suspicious besides


def test_passthrough_off(store):
    mnt = store.mount("test", extra=(*PT_ARGS, "--passthrough=off"))["test"]
    assert "passthrough off (--passthrough=off)" in store.log()
    data = os.urandom(MIB)
    write(mnt / "f", data)
    for _ in range(2):
        assert (mnt / "f").read_bytes() == data
    time.sleep(0.3)
    assert not info(mnt / "f")["plain"]
    s = store.stats()
    assert s["passthrough"]["global"] == "off (--passthrough=off)", s
    assert (s["plain_files"], s["plain_hits"]) == (0, 0), s
    assert not (store.path / "plain").exists() or not os.listdir(store.path / "plain")


def test_fsx_with_passthrough(store, tmpfs):
    """The differential checker with passthrough on and every file above
    0 bytes copied: handles of every kind mixed with copies coming and
    going."""
    mnt = store.mount("test", extra=("--plain-min", "0"))["test"]
    m = re.findall(r"volume 'test' at \S+: passthrough (.*)", store.log())
    if m[-1] != "on":
        pytest.skip(f"no FUSE passthrough here: {m[-1]}")
    ops = 1500 if SHORT else 6000
    fsx = Fsx(tmpfs / "fsx", mnt / "fsx", 20261206, ops, max_size=MIB, check_every=100)
    counts = fsx.run()
    assert sum(counts.values()) == ops
    assert store.stats()["plain_hits"] > 0


def test_fsck_checks_plain_copies(store):
    """hoard fsck checks what it finds in STORE/plain (a crashed daemon's
    copies) against the extents: a right copy passes, a copy with a
    flipped byte, a copy of a wrong size and one of no file are bad; a
    temporary file (a copy a crash interrupted) is no problem; --repair
    deletes exactly those and the temporary file."""
    mnt = store.mount("test")["test"]
    a, b = os.urandom(MIB + 17), os.urandom(300000)
    write(mnt / "a", a)
    write(mnt / "b", b)
    with open(mnt / "sparse", "wb") as f:
        f.truncate(2 * MIB)
        f.seek(MIB)
        f.write(b"middle")
    ia, ib, isp = (os.stat(mnt / n).st_ino for n in ("a", "b", "sparse"))
    sparse = (mnt / "sparse").read_bytes()
    store.umount()
    plain = store.path / "plain"
    plain.mkdir(exist_ok=True)
    (plain / str(ia)).write_bytes(a)                       # right
    (plain / str(isp)).write_bytes(sparse)                 # right, holes as zeros
    flipped = bytearray(b)
    flipped[1234] ^= 1
    (plain / str(ib)).write_bytes(bytes(flipped))          # a flipped byte
    (plain / "999999").write_bytes(b"no such inode")       # no file
    (plain / f".tmp.{ia}").write_bytes(a[:100])            # a copy under way
    p = run([HOARD, "fsck", "--store", store.path, "--json"], check=False)
    rep = json.loads(p.stdout)
    assert p.returncode == 1, p.stdout
    assert rep["found"]["bad_plain_copies"] == 2, rep
    assert rep["checked"]["plain_copies"] == 5, rep
    assert sorted(os.listdir(plain)) == sorted([str(ia), str(isp), str(ib), "999999",
                                                f".tmp.{ia}"])   # checking changes nothing
    (plain / str(ib)).write_bytes(b[:-1])                  # a wrong size is bad too
    rep = json.loads(run([HOARD, "fsck", "--store", store.path, "--json"],
                         check=False).stdout)
    assert rep["found"]["bad_plain_copies"] == 2, rep
    p = run([HOARD, "fsck", "--store", store.path, "--repair", "--json"], check=False)
    assert sorted(os.listdir(plain)) == sorted([str(ia), str(isp)]), p.stdout
    p = run([HOARD, "fsck", "--store", store.path, "--json"])
    assert json.loads(p.stdout)["found"]["bad_plain_copies"] == 0
    # and the daemon, which trusts no copy it did not make, drops them
    # (with or without a tier of its own)
    (plain / str(ib)).write_bytes(b)
    mnt = store.mount("test", extra=("--passthrough=off",))["test"]
    assert os.listdir(plain) == []
    store.umount()
    (plain / str(ib)).write_bytes(b)
    mnt = store.mount("test")["test"]
    assert os.listdir(plain) == []
    assert (mnt / "a").read_bytes() == a
