# SPDX-License-Identifier: MIT
"""Creates answered from memory (fs/core/pend.c): with --close=defer a
CREATE of a regular file writes nothing to the store on its request; its
entry, record and the parent's times land with the committer's next batch.
A pending entry must look exactly like a landed one to every operation,
and fsync of the file or of its directory must make it durable.

HOARD_TEST_COMMIT_GATHER_MS=300 makes the committer gather 300 ms instead
of 2: each step below runs while its create (and its close) still waits in
memory, so an operation that forgot to land the pending creates first, or
a reader that does not look at them, fails here."""
import errno
import os
import subprocess
import threading
import time

import pytest

from conftest import fsck_clean, requires_hoard

pytestmark = requires_hoard

GATHER = ("HOARD_TEST_COMMIT_GATHER_MS", "300")


def new(path, data=b""):
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    try:
        if data:
            os.write(fd, data)
    finally:
        os.close(fd)


def test_pending_creates_look_landed(store, monkeypatch):
    """Each step creates a file and at once (well within the gather) does
    one operation on it or its directory: readdir lists it, another
    process stats it, a second O_EXCL create is EEXIST, rename, link,
    unlink, chmod and xattrs act on it, rmdir of its directory is
    ENOTEMPTY, a mkdir beside it keeps both.  After an unmount and a
    remount all of it is there; fsck clean."""
    monkeypatch.setenv(*GATHER)
    m = store.mount("test", extra=("--close=defer",))["test"]
    d = m / "d"
    d.mkdir()
    new(m / "first")  # a new block of inode numbers: written at once
    new(d / "listed", b"one")
    assert "listed" in os.listdir(d)
    new(d / "seen", b"two!")
    out = subprocess.run(["stat", "-c", "%s %h", d / "seen"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["4", "1"]
    new(d / "twice")
    with pytest.raises(FileExistsError):
        new(d / "twice")
    # the kernel forgets the new dentry and inode: its LOOKUP must find
    # the pending entry, with the record the create made
    new(d / "dropped", b"123")
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("2")
    assert os.stat(d / "dropped").st_size == 3
    with pytest.raises(FileExistsError):
        new(d / "dropped")
    new(d / "old", b"renamed")
    os.rename(d / "old", d / "new")
    assert sorted(n for n in os.listdir(d) if n in ("old", "new")) == ["new"]
    new(d / "a", b"linked")
    os.link(d / "a", d / "b")
    assert os.stat(d / "a").st_nlink == 2
    assert os.stat(d / "a").st_ino == os.stat(d / "b").st_ino
    new(d / "gone", b"x")
    os.unlink(d / "gone")
    assert "gone" not in os.listdir(d)
    new(d / "mode")
    os.chmod(d / "mode", 0o600)
    new(d / "attr")
    os.setxattr(d / "attr", "user.k", b"v")
    (d / "sub").mkdir()
    new(d / "sub" / "f")
    with pytest.raises(OSError) as e:
        os.rmdir(d / "sub")
    assert e.value.errno == errno.ENOTEMPTY
    new(d / "beside")
    (d / "dir2").mkdir()
    # a lookup of a name not created, between creates of other names
    assert not (d / "nothing").exists()
    new(d / "nothing", b"now")
    assert (d / "nothing").read_bytes() == b"now"
    store.umount()
    m = store.mount("test")["test"]
    d = m / "d"
    assert sorted(os.listdir(d)) == sorted(
        ["listed", "seen", "twice", "dropped", "new", "a", "b", "mode", "attr", "sub",
         "beside", "dir2", "nothing"])
    assert (d / "listed").read_bytes() == b"one"
    assert (d / "new").read_bytes() == b"renamed"
    assert (d / "b").read_bytes() == b"linked"
    assert os.stat(d / "a").st_nlink == 2
    assert os.stat(d / "mode").st_mode & 0o777 == 0o600
    assert os.getxattr(d / "attr", "user.k") == b"v"
    assert os.listdir(d / "sub") == ["f"]
    store.umount()
    fsck_clean(store)


def test_creates_in_many_threads_with_lookups_and_listings(store,
                                                            monkeypatch):
    """Four threads create files in one directory while two others list it
    and stat names (the pending table read by LOOKUP, readdir landing it,
    the committer landing the rest): every file is there, with its bytes,
    after a remount; fsck clean."""
    monkeypatch.setenv("HOARD_TEST_COMMIT_GATHER_MS", "20")
    m = store.mount("test", extra=("--close=defer",))["test"]
    errs, stop = [], threading.Event()

    def creator(t):
        try:
            for i in range(150):
                new(m / f"t{t}-{i}", b"%d-%d" % (t, i))
                assert (m / f"t{t}-{i}").stat().st_size > 0
        except Exception as e:  # noqa: BLE001 (reported below)
            errs.append(e)

    def watcher():
        try:
            while not stop.is_set():
                names = os.listdir(m)
                for n in names[-5:]:
                    os.stat(m / n)
        except Exception as e:  # noqa: BLE001
            errs.append(e)

    ws = [threading.Thread(target=watcher) for _ in range(2)]
    cs = [threading.Thread(target=creator, args=(t,)) for t in range(4)]
    for t in ws + cs:
        t.start()
    for t in cs:
        t.join()
    stop.set()
    for t in ws:
        t.join()
    assert not errs, errs
    assert len(os.listdir(m)) == 600
    store.umount()
    m = store.mount("test")["test"]
    for t in range(4):
        for i in range(150):
            assert (m / f"t{t}-{i}").read_bytes() == b"%d-%d" % (t, i)
    store.umount()
    fsck_clean(store)


def test_kill9_after_fsync_of_a_new_file_or_its_directory(store,
                                                          monkeypatch):
    """kill -9 while the creates still wait in memory: a file fsynced
    through its descriptor is there with its bytes; an empty file whose
    directory was fsynced is there, empty; fsck clean."""
    monkeypatch.setenv(*GATHER)
    m = store.mount("test", extra=("--close=defer",))["test"]
    (m / "d").mkdir()
    fd = os.open(m / "d" / "synced", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"kept")
    os.fsync(fd)
    store.kill9()
    os.close(fd)
    m = store.mount("test", extra=("--close=defer",))["test"]
    assert (m / "d" / "synced").read_bytes() == b"kept"
    new(m / "d" / "empty")
    dfd = os.open(m / "d", os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(dfd)
    os.close(dfd)
    store.kill9()
    m = store.mount("test")["test"]
    assert (m / "d" / "empty").read_bytes() == b""
    assert (m / "d" / "synced").read_bytes() == b"kept"
    store.umount()
    fsck_clean(store)


def test_failing_landing_is_reported(store, tmp_path, monkeypatch):
    """The batch that lands pending creates fails (HOARD_TEST_CREATE_FAIL:
    EIO while a file exists): the daemon logs it, `hoard stats` counts the
    closed file's create once, the next create returns the error at once
    (a store known to be failing), and an fsync of the file returns it;
    the entry stays visible and lands once the store works again: fsck
    clean, the file there after a remount."""
    switch = tmp_path / "fail"
    monkeypatch.setenv("HOARD_TEST_CREATE_FAIL", str(switch))
    m = store.mount("test", extra=("--close=defer",))["test"]
    new(m / "first")  # a new block of inode numbers: written at once
    before = store.stats()["commit_errors"]
    switch.touch()
    new(m / "lost")
    want = "new entries could not be written (Input/output error)"
    deadline = time.time() + 30
    while want not in store.log() and time.time() < deadline:
        time.sleep(0.05)
    assert want in store.log()
    time.sleep(0.3)  # the close's RELEASE made
    with pytest.raises(OSError) as e:
        new(m / "next")
    assert e.value.errno == errno.EIO
    assert os.stat(m / "lost").st_size == 0
    fd = os.open(m / "lost", os.O_WRONLY)
    with pytest.raises(OSError) as e:
        os.fsync(fd)
    assert e.value.errno == errno.EIO
    os.close(fd)
    assert store.stats()["commit_errors"] == before + 1
    switch.unlink()
    fd = os.open(m / "lost", os.O_WRONLY)
    os.fsync(fd)
    os.close(fd)
    new(m / "next", b"fine")
    assert store.stats()["commit_errors"] == before + 1
    store.umount()
    m = store.mount("test")["test"]
    assert sorted(os.listdir(m)) == ["first", "lost", "next"]
    assert (m / "next").read_bytes() == b"fine"
    store.umount()
    fsck_clean(store)
