# SPDX-License-Identifier: MIT
"""The size budget (hoardfs --max-size, hoard config max-size, hoard pin).

Real mounts and a real store: files of random (incompressible) bytes are
written through FUSE past the budget, and the daemon's eviction thread must
bring the store's stored_bytes (as `hoard stats` reports them) back under
it within a bounded time, removing the least recently used files (ENOENT
afterwards) and never an open or a pinned one.
"""
import errno
import hashlib
import os
import subprocess
import time

import pytest

from conftest import HOARD, HOARDFS, fsck_clean, run, requires_hoard

pytestmark = requires_hoard

MIB = 1 << 20
BUDGET = 8 * MIB
LOW = BUDGET * 90 // 100
FILE = 512 * 1024
WAIT_S = 30       # the thread checks every second after a write


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def wait_under(store, budget=BUDGET, timeout=WAIT_S):
    """Poll stats until stored_bytes <= budget; returns (stats, seconds)."""
    t0 = time.monotonic()
    while True:
        s = store.stats()
        if s["stored_bytes"] <= budget:
            return s, time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError(
                f"stored_bytes {s['stored_bytes']} still over {budget} "
                f"after {timeout} s")
        time.sleep(0.1)


def gone(path):
    try:
        os.stat(path)
    except FileNotFoundError:
        return True
    return False


def fill(mnt, n, prefix="f", size=FILE):
    """n files of random bytes, oldest first; returns {name: sha256}."""
    out = {}
    for i in range(n):
        data = os.urandom(size)
        name = f"{prefix}{i:03d}"
        write(mnt / name, data)
        out[name] = hashlib.sha256(data).hexdigest()
    return out


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_three_times_the_budget(store):
    mnt = store.mount("v", extra=["--max-size", "8M"])["v"]
    # exempt: a pinned file, a pinned tree, an open file -- all oldest
    write(mnt / "pinned.bin", os.urandom(FILE))
    (mnt / "keep" / "sub").mkdir(parents=True)
    write(mnt / "keep" / "a", os.urandom(FILE))
    write(mnt / "keep" / "sub" / "b", os.urandom(FILE))
    run([HOARD, "pin", mnt / "pinned.bin", mnt / "keep"])
    write(mnt / "keep" / "sub" / "later", os.urandom(FILE))  # pinned by keep
    open_data = os.urandom(FILE)
    write(mnt / "open.bin", open_data)
    # two old names sharing content: the first removal frees nothing
    dup = os.urandom(FILE)
    write(mnt / "dup1", dup)
    write(mnt / "dup2", dup)
    exempt = 5 * FILE

    held = open(mnt / "open.bin", "rb")
    try:
        t0 = time.monotonic()
        sums = fill(mnt, 3 * BUDGET // FILE)          # 48 files, 24 MiB
        t_write = time.monotonic() - t0
        s, t_under = wait_under(store)
        names = sorted(sums)
        assert s["max_size"] == BUDGET
        assert s["evicted_files"] >= 30
        assert s["pinned_bytes"] >= 4 * FILE
        assert s["stored_bytes"] <= BUDGET
        # the newest files stay, byte-identical; the oldest are gone
        keep_n = (LOW - exempt) // (FILE + 64) - 1
        for n in names[-keep_n:]:
            assert sha(mnt / n) == sums[n], n
        for n in names[:20]:
            assert gone(mnt / n), n
            with pytest.raises(OSError) as e:
                open(mnt / n, "rb")
            assert e.value.errno == errno.ENOENT
        assert gone(mnt / "dup1") and gone(mnt / "dup2")
        assert n not in os.listdir(mnt)
        # exempt files survive
        held.seek(0)
        assert held.read() == open_data
        assert (mnt / "open.bin").exists()
        for p in ("pinned.bin", "keep/a", "keep/sub/b", "keep/sub/later"):
            assert (mnt / p).stat().st_size == FILE, p
    finally:
        held.close()
    print(f"\nwrote {3 * BUDGET // MIB} MiB in {t_write:.2f} s; under the "
          f"budget {t_under:.2f} s later")
    log = store.log()
    assert "evict: removed" in log
    store.umount()
    # the removals went through unlink: refcounts, links, orphans are right
    fsck_clean(store)


def test_use_counts_as_recent(store):
    """Opening and reading an old file makes it recent: with a budget set
    later (hoard config on the running daemon), it outlives newer files."""
    mnt = store.mount("v")["v"]
    sums = fill(mnt, 16)                               # 8 MiB, no budget
    assert store.stats()["max_size"] == 0
    with open(mnt / "f000", "rb") as f:               # a use through FUSE
        f.read()
    out = run([HOARD, "config", "--store", store.path, "max-size", "6M"])
    assert "6291456" in out.stdout
    s, _ = wait_under(store, 6 * MIB)
    assert s["max_size"] == 6 * MIB
    assert sha(mnt / "f000") == sums["f000"]
    assert gone(mnt / "f001") and gone(mnt / "f002")
    assert (mnt / "f015").exists()


def test_use_survives_restart(store):
    """A use is stored when the file's atime and mtime do not stand for it
    (a file just written needs no row: its mtime is its last use, to
    within the granule): after a restart, a file with old times that was
    used before the stop outlives files written after it."""
    mnt = store.mount("v")["v"]
    sums = fill(mnt, 16)                               # 8 MiB, no budget
    t = time.time() - 30 * 86400
    os.utime(mnt / "f000", (t, t))                     # a month old
    with open(mnt / "f000", "rb") as f:                # a use through FUSE
        f.read()
    store.umount()                                     # uses stored
    mnt = store.mount("v")["v"]
    run([HOARD, "config", "--store", store.path, "max-size", "6M"])
    wait_under(store, 6 * MIB)
    assert sha(mnt / "f000") == sums["f000"]
    assert gone(mnt / "f001") and gone(mnt / "f002")
    assert (mnt / "f015").exists()


def test_store_setting_survives_restart(store):
    run([HOARD, "config", "--store", store.path, "max-size", "8M"])
    out = run([HOARD, "config", "--store", store.path, "max-size"]).stdout
    assert out.strip() == f"max-size {BUDGET}"
    assert store.stats()["max_size"] == BUDGET             # offline too
    mnt = store.mount("v")["v"]
    fill(mnt, 3 * BUDGET // FILE)
    wait_under(store)
    store.umount()

    mnt = store.mount("v")["v"]
    s = store.stats()
    assert s["max_size"] == BUDGET and s["stored_bytes"] <= BUDGET
    # pins persist too
    (mnt / "keep").mkdir()
    write(mnt / "keep" / "x", os.urandom(FILE))
    run([HOARD, "pin", mnt / "keep"])
    store.umount()
    mnt = store.mount("v")["v"]
    assert os.getxattr(mnt / "keep", "user.hoard.pin") == b"1"
    sums = fill(mnt, 3 * BUDGET // FILE, prefix="g")
    wait_under(store)
    assert (mnt / "keep" / "x").exists()
    assert sha(mnt / "g047") == sums["g047"]
    assert gone(mnt / "g000")
    # unpinned, the tree is the oldest: the next removals take it
    run([HOARD, "unpin", mnt / "keep"])
    run([HOARD, "unpin", mnt / "keep"])                   # idempotent
    with pytest.raises(OSError):
        os.getxattr(mnt / "keep", "user.hoard.pin")
    fill(mnt, 8, prefix="h")
    wait_under(store)
    assert gone(mnt / "keep" / "x")
    store.umount()

    # --max-size overrides the setting
    store.mount("v", extra=["--max-size", "4M"])
    assert store.stats()["max_size"] == 4 * MIB
    wait_under(store, 4 * MIB)
    out = run([HOARD, "config", "--store", store.path, "max-size", "6M"])
    assert "--max-size" in out.stdout          # stored, not in force
    assert store.stats()["max_size"] == 4 * MIB
    store.umount()
    out = run([HOARD, "config", "--store", store.path, "max-size", "none"])
    assert out.stdout.strip() == "max-size none"


@pytest.mark.parametrize("value", ["banana", "0", "-5M", "12Q", ""])
def test_bad_values(store, tmp_path, value):
    run([HOARD, "config", "--store", store.path, "max-size", "8M"])
    mp = tmp_path / "mp"
    mp.mkdir()
    p = run([HOARDFS, "--store", store.path, "--max-size", value, f"v={mp}"],
            check=False)
    assert p.returncode == 2
    assert len(p.stderr.strip().splitlines()) == 1
    assert "--max-size" in p.stderr
    p = run([HOARD, "config", "--store", store.path, "max-size", value],
            check=False)
    assert p.returncode == 2
    assert len(p.stderr.strip().splitlines()) == 1
    assert "max-size" in p.stderr
    out = run([HOARD, "config", "--store", store.path, "max-size"]).stdout
    assert out.strip() == f"max-size {BUDGET}"       # unchanged


def test_cli_errors(store, tmp_path):
    p = run([HOARD, "config", "--store", store.path, "min-size", "1M"],
            check=False)
    assert p.returncode == 2 and "unknown setting" in p.stderr
    p = run([HOARD, "pin"], check=False)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1
    f = tmp_path / "plain"
    f.write_text("x")
    p = run([HOARD, "pin", f], check=False)           # not a hoard mount
    assert p.returncode == 1 and "not on a mounted hoard volume" in p.stderr
    with pytest.raises(OSError):
        os.getxattr(f, "user.hoard.pin")
    p = run([HOARD, "pin", tmp_path / "missing"], check=False)
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1
    for cmd in (["config", "--help"], ["pin", "--help"]):
        p = run([HOARD, *cmd])
        assert "Usage:" in p.stdout


def test_readers_during_eviction(store):
    """Readers opening files while the thread removes them get the whole,
    right content or ENOENT: never EIO, a short read or wrong bytes."""
    import threading

    mnt = store.mount("v", extra=["--max-size", "4M"])["v"]
    sums = {}
    lock = threading.Lock()
    stop = threading.Event()
    problems, reads, misses = [], [0], [0]

    def reader():
        while not stop.is_set():
            with lock:
                items = list(sums.items())
            for name, want in items[-24:]:
                try:
                    with open(mnt / name, "rb") as f:
                        got = hashlib.sha256(f.read()).hexdigest()
                except FileNotFoundError:
                    misses[0] += 1
                    continue
                except OSError as e:
                    problems.append(f"{name}: {e}")
                    continue
                reads[0] += 1
                if got != want:
                    problems.append(f"{name}: wrong bytes")

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for i in range(40):
            data = os.urandom(256 * 1024)
            write(mnt / f"r{i:03d}", data)
            with lock:
                sums[f"r{i:03d}"] = hashlib.sha256(data).hexdigest()
            time.sleep(0.02)
        wait_under(store, 4 * MIB)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not problems, problems[:5]
    assert reads[0] > 40 and misses[0] > 0   # it did race the removals
    print(f"\n{reads[0]} reads, {misses[0]} ENOENT")
    assert store.stats()["evicted_files"] >= 20
    store.umount()
    fsck_clean(store)


def test_pip_after_eviction(store, tmp_path_factory, tmp_path):
    """Real pip: files the budget removed from its cache are a cache miss
    (downloaded again), never a failure; the install is the same."""
    from helpers_pip import (PackageIndex, assert_same_tree, debian_wheels,
                             make_venv, pip_env)
    from test_pip import downloads

    py = make_venv(tmp_path_factory.mktemp("venv") / "venv")
    idx = PackageIndex(debian_wheels()).start()   # wheels only: no builds

    def install(cache, target):
        p = subprocess.run(
            [py, "-m", "pip", "install", "--cache-dir", cache, "--index-url",
             idx.url, "--trusted-host", "127.0.0.1", "--target", target,
             "--no-compile", "--progress-bar", "off", "pip", "setuptools",
             "wheel"],
            capture_output=True, text=True, timeout=120,
            env=pip_env(PIP_CACHE_DIR=str(cache)))
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]

    try:
        mnt = store.mount("v")["v"]
        cache = mnt / "pipcache"
        install(cache, tmp_path / "t1")
        before = {p for p in cache.rglob("*") if p.is_file()}
        half = store.stats()["stored_bytes"] // 2
        run([HOARD, "config", "--store", store.path, "max-size", str(half)])
        s, _ = wait_under(store, half)
        assert s["evicted_files"] > 0
        after = {p for p in cache.rglob("*") if p.is_file()}
        assert after < before
        # no budget while pip runs: the second install sees a fixed cache
        run([HOARD, "config", "--store", store.path, "max-size", "none"])
        mark = idx.mark()
        install(cache, tmp_path / "t2")
        assert downloads(idx.requests_since(mark)), "nothing downloaded again"
        assert_same_tree(tmp_path / "t1", tmp_path / "t2")
    finally:
        idx.stop()
