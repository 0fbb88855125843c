# SPDX-License-Identifier: MIT
"""Fixtures for hoard's end-to-end tests.

Everything here is real: a real store directory with RocksDB in a temporary
directory, the real `hoardfs` daemon mounting real FUSE filesystems, tmpfs as
the oracle for POSIX behaviour.  Needs root (FUSE mounts with allow_other,
tmpfs mounts).

Binaries come from $HOARD_BUILD (default: <repo>/build).  Set
HOARD_E2E_SHORT=1 for the short pass run under ASan/UBSan.
"""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("HOARD_BUILD", REPO / "build")).resolve()
HOARD = BUILD / "hoard"
HOARDFS = BUILD / "hoardfs"
CORRUPT = BUILD / "tests" / "hoard-test-corrupt"
SHORT = os.environ.get("HOARD_E2E_SHORT") == "1"

# Lines in the daemon's log that fail a test even when the test itself passed.
SUSPICIOUS = ("AddressSanitizer", "runtime error:", "LeakSanitizer",
              "Assertion", "segfault")


def run(args, check=True, **kw):
    """Run a command, capture text output, raise with its stderr on failure."""
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} exited {p.returncode}: {p.stderr.strip()}")
    return p


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is not alive for our purposes, unless other threads of it
    # are still exiting (after kill -9, the thread-group leader can be a
    # zombie while a thread finishes disk I/O: the process still holds its
    # files, the store's lock among them)
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().split(")")[-1].split()[0] != "Z":
                return True
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except FileNotFoundError:
        return False


class Store:
    """A hoard store directory plus the daemon that may be serving it."""

    def __init__(self, path):
        self.path = Path(path)
        self.mounts = {}   # volume -> mountpoint (Path)

    def init(self, *extra):
        return run([HOARD, "init", "--store", self.path, *extra])

    # -- daemon -----------------------------------------------------------
    def mount(self, *names, root=None, extra=(), **volumes):
        """Mount volumes: mount("a", "b") puts them under root (default
        <store>/../mnt-<name>); mount(a="/some/dir") picks the mountpoint.
        Returns {name: Path}.  The daemon daemonizes once every mount is up."""
        root = Path(root) if root else self.path.parent
        for n in names:
            volumes[n] = root / f"mnt-{n}"
        args = [HOARDFS, "--store", self.path, *extra]
        for n, mp in volumes.items():
            Path(mp).mkdir(parents=True, exist_ok=True)
            args.append(f"{n}={mp}")
        run(args, timeout=60)
        for n, mp in volumes.items():
            assert is_mounted(mp), f"{mp} not mounted after hoardfs returned"
            self.mounts[n] = Path(mp)
        return {n: Path(mp) for n, mp in volumes.items()}

    def daemon_pid(self):
        try:
            pid = int((self.path / "lock").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    def no_daemon_left(self, timeout=30):
        """True once no daemon holds the store: a daemon that failed to
        start exits on its own, but its threads may still be ending when
        the command returns (pid_alive counts such a process as alive)."""
        deadline = time.time() + timeout
        while self.daemon_pid() is not None:
            if time.time() > deadline:
                return False
            time.sleep(0.05)
        return True

    def wait_daemon_exit(self, pid, timeout=30):
        deadline = time.time() + timeout
        while pid_alive(pid):
            if time.time() > deadline:
                raise AssertionError(f"hoardfs pid {pid} still running")
            time.sleep(0.05)

    def umount(self):
        """Clean unmount of every mount; waits for the daemon to exit."""
        pid = self.daemon_pid()
        for mp in self.mounts.values():
            if is_mounted(mp):
                run(["fusermount3", "-u", mp])
        self.mounts = {}
        if pid:
            self.wait_daemon_exit(pid)

    def kill9(self):
        """kill -9 the daemon, then detach its dead mounts."""
        pid = self.daemon_pid()
        assert pid, "no daemon to kill"
        os.kill(pid, signal.SIGKILL)
        self.wait_daemon_exit(pid)
        for mp in self.mounts.values():
            run(["fusermount3", "-u", "-z", mp], check=False)
        self.mounts = {}

    def stats(self):
        return json.loads(run([HOARD, "stats", "--store", self.path, "--json"]).stdout)

    def log(self):
        p = self.path / "hoardfs.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def check_log(self):
        bad = [l for l in self.log().splitlines() if any(s in l for s in SUSPICIOUS)]
        assert not bad, "suspicious daemon output:\n" + "\n".join(bad)


@pytest.fixture
def store(tmp_path):
    """A fresh, initialized store; unmounted (and its log checked) at the end."""
    s = Store(tmp_path / "store")
    s.init()
    yield s
    try:
        if s.mounts:
            s.umount()
    finally:
        for mp in list(s.mounts.values()):
            run(["fusermount3", "-u", "-z", mp], check=False)
    s.check_log()


@pytest.fixture
def mnt(store):
    """One mounted volume named "test"; yields its mountpoint (Path)."""
    return store.mount("test")["test"]


@pytest.fixture
def tmpfs(tmp_path):
    """A real tmpfs, the oracle for POSIX behaviour."""
    d = tmp_path / "tmpfs"
    d.mkdir()
    run(["mount", "-t", "tmpfs", "-o", "size=2g", "tmpfs", d])
    yield d
    run(["umount", "-l", d], check=False)


# -- the filesystem under test ---------------------------------------------
#
# The POSIX and fsx tests run every scenario on the filesystem under test and
# on a tmpfs oracle and compare.  HOARD_E2E_FUT picks the filesystem under
# test, so the test logic itself can be checked without hoardfs:
#   hoard (default)  a hoardfs mount (the `mnt` fixture)
#   tmpfs            a second tmpfs
#   cmd:TEMPLATE     any FUSE filesystem: TEMPLATE is a command with {src} (an
#                    empty tmpfs) and {mnt} (the mountpoint), e.g.
#                    "cmd:passthrough_ll -o source={src} {mnt}"
# Tests that need hoard itself (stores, CLI, durability) skip unless hoard.
FUT = os.environ.get("HOARD_E2E_FUT", "hoard")
def fsck_clean(store):
    """`hoard fsck` of store (not mounted) finds nothing: exit 0."""
    out = run([HOARD, "fsck", "--store", store.path], check=False)
    assert out.returncode == 0, out.stdout + out.stderr


requires_hoard = pytest.mark.skipif(
    FUT != "hoard", reason=f"HOARD_E2E_FUT={FUT}: needs the hoardfs daemon")


def wait_mounted(path, timeout=30):
    deadline = time.time() + timeout
    while not is_mounted(path):
        if time.time() > deadline:
            raise AssertionError(f"{path} not mounted after {timeout}s")
        time.sleep(0.02)


@pytest.fixture
def fut(request, tmp_path):
    """The root directory of the filesystem under test (see HOARD_E2E_FUT)."""
    if FUT == "hoard":
        yield request.getfixturevalue("mnt")
        return
    if FUT == "tmpfs":
        d = tmp_path / "fut"
        d.mkdir()
        run(["mount", "-t", "tmpfs", "-o", "size=2g", "tmpfs", d])
        yield d
        run(["umount", "-l", d], check=False)
        return
    assert FUT.startswith("cmd:"), f"bad HOARD_E2E_FUT={FUT!r}"
    src, d = tmp_path / "fut-src", tmp_path / "fut"
    src.mkdir()
    d.mkdir()
    run(["mount", "-t", "tmpfs", "-o", "size=2g", "tmpfs", src])
    try:
        run(FUT[4:].format(src=src, mnt=d).split(), timeout=60)
        wait_mounted(d)
        yield d
    finally:
        run(["fusermount3", "-u", "-z", d], check=False)
        run(["umount", "-l", src], check=False)
