# SPDX-License-Identifier: MIT
"""`hoard` and `hoardfs` on bad input, and the daemon's life cycle.

Bad input must give a non-zero exit (2 for usage errors, 1 for runtime
errors), exactly one line on stderr, and leave the store as it was."""
import errno
import hashlib
import os
import signal
import subprocess
import time

import pytest

from conftest import HOARD, HOARDFS, Store, is_mounted, pid_alive, requires_hoard, run, \
    wait_mounted

pytestmark = requires_hoard


def listing(path):
    """Every file under path with type, size and mtime: byte-level sameness
    for a store that nobody opened."""
    path = str(path)
    if not os.path.exists(path):
        return None
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            s = os.lstat(p)
            out[os.path.relpath(p, path)] = (oct(s.st_mode), s.st_size, s.st_mtime_ns)
    return out


def fails(args, code, *words):
    """Run a command that must fail with `code` (or one of a tuple of
    codes), one line on stderr that
    contains every one of `words` (case-insensitive), nothing on stdout."""
    p = run(args, check=False, timeout=60)
    lines = p.stderr.splitlines()
    codes = code if isinstance(code, tuple) else (code,)
    assert p.returncode in codes, f"{args}: exit {p.returncode}, want {code}; stderr: {p.stderr!r}"
    assert len(lines) == 1, f"{args}: want one line on stderr, got {lines!r}"
    for w in words:
        assert w.lower() in lines[0].lower(), f"{args}: {lines[0]!r} does not mention {w!r}"
    assert p.stdout == "", f"{args}: stdout {p.stdout!r}"
    return lines[0]


@pytest.fixture
def mp(tmp_path):
    d = tmp_path / "mp"
    d.mkdir()
    return d


def vol(name, mountpoint):
    return f"{name}={mountpoint}"


# -- hoardfs: stores it must refuse ----------------------------------------

def test_missing_store(tmp_path, mp):
    missing = tmp_path / "nope"
    fails([HOARDFS, "--store", missing, vol("x", mp)], 1, str(missing))
    assert not missing.exists()
    assert not is_mounted(mp)


def test_foreign_dir(tmp_path, mp):
    d = tmp_path / "foreign"
    d.mkdir()
    (d / "file").write_text("not hoard\n")
    before = listing(d)
    fails([HOARDFS, "--store", d, vol("x", mp)], 1, "not a hoard store")
    assert listing(d) == before
    assert not is_mounted(mp)


def test_newer_format(store, mp):
    (store.path / "HOARD").write_text("hoard-store 99\n")
    before = listing(store.path)
    fails([HOARDFS, "--store", store.path, vol("x", mp)], 1, "99")
    assert listing(store.path) == before
    assert not is_mounted(mp)
    fails([HOARD, "stats", "--store", store.path], 1, "99")
    assert listing(store.path) == before


def test_store_in_use(store, mnt, tmp_path):
    (mnt / "f").write_bytes(b"data")
    stats, lock = store.stats(), (store.path / "lock").read_text()
    other = tmp_path / "other"
    other.mkdir()
    fails([HOARDFS, "--store", store.path, vol("y", other)], 1, "in use")
    assert not is_mounted(other)
    # the first daemon still owns and serves the store
    assert (store.path / "lock").read_text() == lock
    assert store.daemon_pid() == int(lock.split()[0])
    assert (mnt / "f").read_bytes() == b"data"
    no_cache = lambda s: {k: v for k, v in s.items() if not k.startswith("cache_")}
    assert no_cache(store.stats()) == no_cache(stats)    # the read counts in the cache


# -- hoardfs: mountpoints and volume arguments -------------------------------

def test_missing_mountpoint(store, tmp_path):
    before = listing(store.path)
    fails([HOARDFS, "--store", store.path, vol("x", tmp_path / "nope")], 1, "nope")
    assert not (tmp_path / "nope").exists()
    assert listing(store.path) == before


def test_mountpoint_already_mounted(store, mp):
    run(["mount", "-t", "tmpfs", "tmpfs", mp])
    try:
        (mp / "marker").write_text("tmpfs")
        before = listing(store.path)
        fails([HOARDFS, "--store", store.path, vol("x", mp)], 1, str(mp))
        assert (mp / "marker").read_text() == "tmpfs"   # nothing stacked on top
        assert listing(store.path) == before
    finally:
        run(["umount", "-l", mp], check=False)
    assert not is_mounted(mp)


@pytest.mark.parametrize("arg", ["pip", "=x", "bad/name=MP", ".hidden=MP", "x" * 65 + "=MP",
                                 "sp ace=MP", "x="])
def test_malformed_volume_argument(store, mp, arg):
    """A usage error: exit 2."""
    before = listing(store.path)
    fails([HOARDFS, "--store", store.path, arg.replace("MP", str(mp))], 2)
    assert listing(store.path) == before
    assert not is_mounted(mp)


def test_relative_mountpoint_is_fine(store, tmp_path):
    (tmp_path / "rel").mkdir()
    run([HOARDFS, "--store", store.path, "rel=rel"], cwd=tmp_path, timeout=60)
    store.mounts["rel"] = tmp_path / "rel"
    assert is_mounted(tmp_path / "rel")
    (tmp_path / "rel" / "f").write_text("ok")
    store.umount()
    assert not is_mounted(tmp_path / "rel")


def test_same_volume_twice(store, tmp_path, mp):
    mp2 = tmp_path / "mp2"
    mp2.mkdir()
    before = listing(store.path)
    fails([HOARDFS, "--store", store.path, vol("x", mp), vol("x", mp2)], 2, "x")
    fails([HOARDFS, "--store", store.path, vol("x", mp), vol("y", mp)], 2, str(mp))
    assert listing(store.path) == before
    assert not is_mounted(mp) and not is_mounted(mp2)


def test_no_volume(store):
    """No volume: a service that mounts on request (hoard mount) and stays
    without mounts until SIGTERM (as --persist)."""
    run([HOARDFS, "--store", store.path], timeout=60)
    pid = store.daemon_pid()
    assert pid
    run([HOARD, "stats", "--store", store.path])
    time.sleep(0.3)
    assert pid_alive(pid)
    os.kill(pid, signal.SIGTERM)
    store.wait_daemon_exit(pid)


def test_bad_fuse_option(store, mp):
    fails([HOARDFS, "--store", store.path, "-o", "no_such_option", vol("x", mp)], (1, 2))
    assert not is_mounted(mp)
    assert store.no_daemon_left()


def test_read_only_mount(store, mp):
    m = store.mount(x=mp)["x"]
    (m / "f").write_text("written")
    store.umount()
    m = store.mount(x=mp, extra=("-o", "ro"))["x"]
    assert (m / "f").read_text() == "written"
    for fn, args in ((open, (m / "g", "w")), (os.mkdir, (m / "d",)), (os.unlink, (m / "f",)),
                     (os.chmod, (m / "f", 0o600)), (os.setxattr, (m / "f", "user.x", b"1"))):
        with pytest.raises(OSError) as x:
            fn(*args)
        assert x.value.errno == errno.EROFS, fn
    assert store.stats()["files"] == 1


# -- hoard -------------------------------------------------------------------

def test_init_existing_store(store):
    stats = store.stats()
    before = listing(store.path)     # stats opened the db; from here on, nobody
    fails([HOARD, "init", "--store", store.path], 1, str(store.path))
    assert listing(store.path) == before
    assert store.stats() == stats


def test_init_foreign_dir(tmp_path):
    d = tmp_path / "foreign"
    d.mkdir()
    (d / "precious").write_text("keep me\n")
    before = listing(d)
    fails([HOARD, "init", "--store", d], 1, str(d))
    assert listing(d) == before


@pytest.mark.parametrize("level", ["99", "20", "-1", "abc", ""])
def test_init_bad_level(tmp_path, level):
    d = tmp_path / "new"
    fails([HOARD, "init", "--store", d, "--level", level], 2)
    assert not d.exists()


def test_init_levels_ok(tmp_path):
    for level in ("0", "19"):
        d = tmp_path / f"s{level}"
        p = run([HOARD, "init", "--store", d, "--level", level])
        assert p.stderr == ""
        assert (d / "HOARD").read_text() == "hoard-store 1\n"


def test_stats_missing_store(tmp_path):
    d = tmp_path / "nope"
    fails([HOARD, "stats", "--store", d], 1, str(d))
    fails([HOARD, "stats", "--store", d, "--json"], 1, str(d))
    assert not d.exists()


def test_help():
    for args in ([HOARD, "--help"], [HOARD, "-h"], [HOARDFS, "--help"], [HOARDFS, "-h"]):
        p = run(args)
        assert p.returncode == 0
        assert "usage" in p.stdout.lower() and len(p.stdout.splitlines()) > 3, args
        assert p.stderr == "", args


@pytest.mark.parametrize("args", [["--bogus"], ["-Z"], ["stats", "--bogus"],
                                  ["init", "--bogus"], ["frobnicate"]],
                         ids=lambda a: " ".join(a))
def test_hoard_usage_errors(tmp_path, args):
    fails([HOARD, "--store", tmp_path / "s", *args], 2)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("args", [["--bogus"], ["-Z"], ["--store"],
                                  ["--read-ahead", "lots"], ["--read-ahead", "2G"]],
                         ids=lambda a: " ".join(a))
def test_hoardfs_usage_errors(store, mp, args):
    before = listing(store.path)
    fails([HOARDFS, *args, vol("x", mp)] if args != ["--store"] else [HOARDFS, "--store"], 2)
    assert listing(store.path) == before
    assert not is_mounted(mp)


# -- the daemon's life ---------------------------------------------------------

def test_daemonizes_once_mounts_are_usable(store, tmp_path):
    mps = {n: tmp_path / f"m{n}" for n in "ab"}
    for d in mps.values():
        d.mkdir()
    p = subprocess.run([str(HOARDFS), "--store", str(store.path)]
                       + [vol(n, d) for n, d in mps.items()], capture_output=True, text=True,
                       timeout=60)
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
    # usable the moment hoardfs returned: no waiting here
    for n, d in mps.items():
        assert is_mounted(d)
        (d / "f").write_text(n)
        assert (d / "f").read_text() == n
    store.mounts.update(mps)
    pid = store.daemon_pid()
    assert pid and pid_alive(pid)
    # one volume unmounted: the daemon keeps serving the other
    run(["fusermount3", "-u", mps["a"]])
    del store.mounts["a"]
    time.sleep(0.3)
    assert pid_alive(pid)
    assert (mps["b"] / "f").read_text() == "b"
    # the last one unmounted: the daemon exits and lets go of the store
    run(["fusermount3", "-u", mps["b"]])
    store.mounts = {}
    store.wait_daemon_exit(pid)
    assert not (store.path / "control.sock").exists()
    assert store.stats()["files"] == 2
    store.check_log()


def test_foreground(store, mp):
    proc = subprocess.Popen([str(HOARDFS), "--store", str(store.path), "-f", vol("x", mp)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_mounted(mp)
        assert proc.poll() is None
        assert store.daemon_pid() == proc.pid     # no fork in the foreground
        (mp / "f").write_text("foreground")
        run(["fusermount3", "-u", mp])
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            run(["fusermount3", "-u", "-z", mp], check=False)
    assert proc.returncode == 0, err
    assert not any(s in err for s in ("AddressSanitizer", "runtime error:", "Assertion")), err
    assert not is_mounted(mp)
    assert store.stats()["files"] == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_signal_unmounts_and_exits(store, tmp_path, sig):
    m = store.mount("a", "b")
    (m["a"] / "f").write_text("x")
    pid = store.daemon_pid()
    os.kill(pid, sig)
    store.wait_daemon_exit(pid)
    for d in m.values():
        assert not is_mounted(d)
    store.mounts = {}
    assert store.stats()["files"] == 1
    store.check_log()
    # and the store opens again
    assert (store.mount("a")["a"] / "f").read_text() == "x"


def test_second_store_independent(store, tmp_path, mnt):
    """Two stores, two daemons: each has its own lock."""
    other = Store(tmp_path / "store2")
    other.init()
    try:
        m2 = other.mount("test", root=tmp_path / "second")["test"]
        (m2 / "f").write_text("2")
        (mnt / "f").write_text("1")
        assert other.daemon_pid() != store.daemon_pid()
        assert (other.stats()["files"], store.stats()["files"]) == (1, 1)
    finally:
        other.umount()
    other.check_log()


@pytest.mark.parametrize("bad", ["missing", "busy"])
def test_one_bad_mountpoint_mounts_nothing(store, tmp_path, bad):
    good, other = tmp_path / "good", tmp_path / "other"
    good.mkdir()
    if bad == "busy":
        other.mkdir()
        run(["mount", "-t", "tmpfs", "tmpfs", other])
    try:
        fails([HOARDFS, "--store", store.path, vol("a", good), vol("b", other)], 1, str(other))
        assert not is_mounted(good)
        assert store.no_daemon_left()
    finally:
        if bad == "busy":
            run(["umount", "-l", other], check=False)
    # and the store is free for the next daemon
    assert is_mounted(store.mount(a=good)["a"])


def test_restart_after_kill9(store, mnt):
    """A stale lock file and control socket do not keep the store down."""
    # fsync: a close does not wait for its commit (README "Writes and
    # durability"), and sync(2) does not reach a FUSE daemon
    fd = os.open(mnt / "f", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"x" * 1000)
    os.fsync(fd)
    os.close(fd)
    store.kill9()
    s = store.stats()          # offline, despite the stale control.sock
    assert (s["files"], s["logical_bytes"]) == (1, 1000)
    m = store.mount("test")["test"]
    assert (m / "f").read_bytes() == b"x" * 1000
    online = {k: v for k, v in store.stats().items()    # the daemon's figures
              if not k.startswith(("cache_", "plain_", "passthrough", "lookup_"))
              and k not in ("read_errors", "commit_errors")}
    assert online == s | {"db_bytes": online["db_bytes"]}


def test_relative_store_path(tmp_path):
    """--store given relative to the working directory keeps working after
    hoardfs has daemonized (RocksDB opens new files by the path it was given:
    a new WAL once ~64 MiB have been written)."""
    run([HOARD, "init", "--store", "store"], cwd=tmp_path)
    (tmp_path / "mnt").mkdir()
    run([HOARDFS, "--store", "store", "test=mnt"], cwd=tmp_path, timeout=60)
    store = Store(tmp_path / "store")
    store.mounts["test"] = tmp_path / "mnt"
    try:
        h = hashlib.sha256()
        with open(tmp_path / "mnt" / "big", "wb") as f:
            for _ in range(100):
                b = os.urandom(1 << 20)
                h.update(b)
                f.write(b)
            f.flush()
            os.fsync(f.fileno())
        (tmp_path / "mnt" / "after").write_text("still working")
        s = run([HOARD, "stats", "--store", "store", "--json"], cwd=tmp_path).stdout
        assert '"files":2' in s.replace(" ", "")
    finally:
        store.umount()
    store.check_log()
    m = store.mount("test")["test"]
    assert (m / "after").read_text() == "still working"
    with open(m / "big", "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == h.hexdigest()
    store.umount()


def bdi_read_ahead_kb(path):
    st = os.stat(path)
    bdi = f"/sys/class/bdi/{os.major(st.st_dev)}:{os.minor(st.st_dev)}/read_ahead_kb"
    with open(bdi) as f:
        return int(f.read())


@pytest.mark.parametrize("opt,kb", [(None, 8192), ("0", None), ("1M", 1024)],
                         ids=["default", "0-leaves-it", "1M"])
def test_read_ahead(store, tmp_path, opt, kb):
    """The mount's read-ahead window is raised once INIT is done (as root),
    to 8 MiB by default; 0 leaves the kernel's FUSE default."""
    extra = ("--read-ahead", opt) if opt is not None else ()
    mnt = store.mount("ra", extra=extra)["ra"]
    got = bdi_read_ahead_kb(mnt)
    if kb is None:
        assert got <= 1024, got   # FUSE's own default (128 KiB here)
    else:
        assert got == kb
