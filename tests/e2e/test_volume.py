# SPDX-License-Identifier: MIT
"""Volumes as whole things: clone (metadata only), ls, rm, merge; mounts on
request through the daemon's control socket and the daemon's exit rule;
per-job clones (hoard job start / finish) as CI runners use them.

Everything is real: a store, the hoardfs daemon, FUSE mounts, fsck."""
import hashlib
import json
import os
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import HOARD, HOARDFS, Store, is_mounted, pid_alive, requires_hoard, run

pytestmark = requires_hoard


def hoard(store, *args, check=True, timeout=120):
    return run([HOARD, *args, "--store", store.path], check=check, timeout=timeout)


def hj(store, *args, **kw):
    return json.loads(hoard(store, *args, "--json", **kw).stdout)


def fails(store, code, args, *words):
    p = hoard(store, *args, check=False)
    assert p.returncode == code, f"{args}: exit {p.returncode}: {p.stderr!r}"
    lines = p.stderr.splitlines()
    assert len(lines) == 1, lines
    for w in words:
        assert w.lower() in lines[0].lower(), (w, lines[0])
    return lines[0]


def tree(root):
    """{path: (type, mode, uid, gid, size, mtime_ns, target, sha256, nlink,
    xattrs)}; directories without size and mtime."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            s = p.lstat()
            reg = stat.S_ISREG(s.st_mode)
            x = {}
            if not stat.S_ISLNK(s.st_mode):
                x = {a: os.getxattr(p, a) for a in os.listxattr(p)}
            out[str(p.relative_to(root))] = (
                stat.S_IFMT(s.st_mode), stat.S_IMODE(s.st_mode), s.st_uid, s.st_gid,
                s.st_size if reg else 0,
                s.st_mtime_ns if not stat.S_ISDIR(s.st_mode) else 0,
                os.readlink(p) if stat.S_ISLNK(s.st_mode) else None,
                hashlib.sha256(p.read_bytes()).hexdigest() if reg else None,
                s.st_nlink if reg else 0, tuple(sorted(x.items())))
    return out


def fill(root, seed=1):
    rnd = __import__("random").Random(seed)
    (root / "d1" / "d2").mkdir(parents=True)
    (root / "big.bin").write_bytes(rnd.randbytes(3 << 20))
    (root / "d1" / "text").write_bytes(b"".join(b"line %d\n" % i for i in range(50000)))
    for i in range(50):
        (root / "d1" / "d2" / f"f{i}").write_bytes(rnd.randbytes(rnd.randrange(1, 70000)))
    os.link(root / "d1" / "text", root / "hard")
    os.symlink("d1/text", root / "link")
    os.mkfifo(root / "d1" / "fifo", 0o620)
    os.chmod(root / "big.bin", 0o751)
    os.chown(root / "d1" / "text", 1234, 5678)
    os.setxattr(root / "d1" / "d2" / "f3", "user.tag", b"v1")
    os.utime(root / "d1" / "text", ns=(1_600_000_000_123_456_789,) * 2)


def fsck_clean(store):
    p = hoard(store, "fsck", "--json", check=False)
    assert p.returncode == 0, p.stdout + p.stderr


def stop(store, pid):
    """SIGTERM a daemon (--persist ones do not exit on their own)."""
    if pid and pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        store.wait_daemon_exit(pid)
    store.mounts = {}


@pytest.fixture
def service(store, tmp_path):
    """hoardfs --persist with no volume (a service, as the systemd unit
    runs it); yields the store; SIGTERM at the end."""
    run([HOARDFS, "--store", store.path, "--persist"], timeout=60)
    assert store.daemon_pid()
    yield store
    for p in list(tmp_path.glob("**/jobs/*/*")) + list(store.mounts.values()):
        if is_mounted(p):
            run(["fusermount3", "-u", "-z", p], check=False)
    stop(store, store.daemon_pid())


# ---- clone, ls, rm ------------------------------------------------------------

def test_clone_offline_shares_every_chunk(store, tmp_path):
    mp = store.mount("pip")["pip"]
    fill(mp)
    want = tree(mp)
    store.umount()
    before = store.stats()
    res = hj(store, "volume", "clone", "pip", "copy")
    assert res["files"] == 52 and res["chunks"] > 50
    after = store.stats()
    # metadata only: no chunk is new, the stored bytes are the same
    assert after["chunks"] == before["chunks"]
    assert after["stored_bytes"] == before["stored_bytes"]
    ls = hj(store, "volume", "ls")["volumes"]
    assert sorted(v["name"] for v in ls) == ["copy", "pip"]
    assert all(v["mountpoint"] is None for v in ls)
    fsck_clean(store)
    m = store.mount("pip", "copy")
    assert tree(m["copy"]) == want
    assert tree(m["pip"]) == want
    # new inode numbers; the clone is independent of its source
    assert os.stat(m["copy"] / "big.bin").st_ino != os.stat(m["pip"] / "big.bin").st_ino
    (m["copy"] / "d1" / "text").write_bytes(b"changed in the clone\n")
    os.unlink(m["copy"] / "big.bin")
    assert tree(m["pip"]) == want
    assert (m["copy"] / "hard").read_bytes() == b"changed in the clone\n"
    store.umount()
    fsck_clean(store)


def test_clone_of_mounted_volume_while_written(store):
    """The clone is the source as of one instant: each file as its last
    commit (close) left it, never torn: a file renamed into place after
    its close is whole; the writer never fails."""
    mp = store.mount("pip")["pip"]
    fill(mp)
    stop_flag = threading.Event()
    errors = []

    def writer():
        i = 0
        while not stop_flag.is_set():
            data = bytes([i % 251]) * (20000 + i * 37 % 50000)
            try:
                (mp / f"w{i}").write_bytes(data)
                os.rename(mp / f"w{i}", mp / f"r{i}")
            except OSError as e:
                errors.append(e)
            i += 1
    t = threading.Thread(target=writer)
    t.start()
    try:
        time.sleep(0.3)
        clones = []
        for k in range(3):
            hoard(store, "volume", "clone", "pip", f"c{k}")
            clones.append(f"c{k}")
            time.sleep(0.1)
    finally:
        stop_flag.set()
        t.join()
    assert not errors
    m = {}
    for c in clones:   # mounted by the running daemon, on request
        m[c] = store.path.parent / f"mnt-{c}"
        m[c].mkdir()
        hoard(store, "mount", c, m[c])
        store.mounts[c] = m[c]
    for c in clones:
        names = [n for n in os.listdir(m[c]) if n[0] in "wr" and n[1:].isdigit()]
        assert names, "the clone saw none of the writer's files"
        for n in names:
            i = int(n[1:])
            want = bytes([i % 251]) * (20000 + i * 37 % 50000)
            got = (m[c] / n).read_bytes()
            # renamed after its close: whole.  Still being written: its
            # last commit (empty when just made), as push's snapshot has it
            assert got == want or (n[0] == "w" and got == b""), (n, len(got))
        assert any(n[0] == "r" for n in names)
    store.umount()
    fsck_clean(store)


def many_files(root, dirs, per_dir, size, seed=7):
    """dirs x per_dir files of size distinct bytes each (a chunk each)."""
    rnd = __import__("random").Random(seed)
    for d in range(dirs):
        (root / f"d{d:03}").mkdir()
        for f in range(per_dir):
            (root / f"d{d:03}" / f"f{f:04}").write_bytes(rnd.randbytes(size))


def wait_log(store, text, timeout=60):
    deadline = time.time() + timeout
    while text not in store.log():
        assert time.time() < deadline, f"no {text!r} in the daemon's log"
        time.sleep(0.02)


def test_clone_does_not_stall_other_mounts(store):
    """A clone of a mounted volume walks a RocksDB snapshot without the
    metadata lock: another mount's requests (create, write, stat, unlink:
    each needs the daemon) keep completing while the clone runs, in the
    middle half of each clone's time in the daemon.  Not a speed target:
    only that some complete.  The clones are identical and fsck is clean."""
    m = store.mount("big", "other")
    many_files(m["big"], 40, 100, 2048)
    want = tree(m["big"])
    done, stop_flag, errors = [], threading.Event(), []

    def other():
        i = 0
        while not stop_flag.is_set():
            p = m["other"] / f"o{i}"
            try:
                with open(p, "wb") as f:
                    f.write(b"x" * 100)
                os.stat(p)
                os.unlink(p)
            except OSError as e:
                errors.append(e)
            done.append(time.monotonic())
            i += 1
    t = threading.Thread(target=other)
    t.start()
    clones = []
    try:
        time.sleep(0.2)
        for k in range(3):
            t1 = time.monotonic()
            res = hj(store, "volume", "clone", "big", f"c{k}")
            t1 = time.monotonic()
            clones.append((res, t1))
            time.sleep(0.1)
    finally:
        stop_flag.set()
        t.join()
    assert not errors
    during = 0
    for res, t1 in clones:
        assert res["files"] == 4000 and res["tries"] == 1
        # the daemon's clone ended at most the reply's way before t1
        lo, hi = t1 - res["seconds"] * 0.75, t1 - res["seconds"] * 0.25
        n = sum(1 for x in done if lo <= x <= hi)
        print(f"clone: {res['seconds']:.3f} s, {res['locked_seconds']:.3f} s "
              f"under the lock (longest hold {res['locked_max_seconds']:.3f}"
              f" s), {n} requests of the other mount completed in its "
              f"middle half")
        during += n
        assert res["locked_max_seconds"] < res["seconds"]
    assert during > 0, "the other mount made no progress during any clone"
    for k in range(3):
        mp = store.path.parent / f"mnt-c{k}"
        mp.mkdir()
        hoard(store, "mount", f"c{k}", mp)
        store.mounts[f"c{k}"] = mp
        assert tree(mp) == want
    store.umount()
    fsck_clean(store)


def fsck_interrupted(store, repair=False):
    """fsck of a store a crash left with a clone or removal under way
    (FORMAT.md 2.1 `clone.`, `rm.`): no problem, the inodes counted as
    interrupted, not unreachable; --repair finishes it.  The report."""
    p = hoard(store, "fsck", "--json", *(["--repair"] if repair else []),
              check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    rep = json.loads(p.stdout)
    assert rep["clean"] and rep["found"]["unreachable_inodes"] == 0, rep
    assert rep["interrupted"]["operations"] == 1, rep
    assert rep["interrupted"]["inodes"] > 0, rep
    assert rep["repaired"] == repair, rep
    text = hoard(store, "fsck", check=False).stdout
    if repair:
        assert "a crash interrupted" not in text, text
        rep2 = json.loads(hoard(store, "fsck", "--json").stdout)
        assert rep2["clean"] and rep2["interrupted"]["operations"] == 0, rep2
    else:
        assert "a crash interrupted" in text and "next start" in text, text
    return rep


@pytest.mark.parametrize("at,repair", [("walk", False), ("raise", False),
                                       ("walk", True), ("raise", True)])
def test_clone_killed_mid_way_leaves_nothing(store, monkeypatch, at, repair):
    """kill -9 of the daemon after a clone wrote its records and before it
    published them (held there by the test hook: after the walk, or after
    the first of its batches of raised refcounts, 8 chunks a batch): fsck
    before the restart reports the clone as interrupted, no problem (and
    with --repair removes it as the restart would); the restart removes
    them and takes back the references raised (logged), no half volume is
    listed, the store is as before and fsck (which checks every refcount)
    is clean; the same clone then works."""
    monkeypatch.setenv("HOARD_TEST_CLONE_PAUSE_MS", "20000")
    monkeypatch.setenv("HOARD_TEST_CLONE_PAUSE_AT", at)
    monkeypatch.setenv("HOARD_TEST_CLONE_RAISE_BATCH", "8")
    mp = store.mount("src")["src"]
    fill(mp)
    many_files(mp, 5, 100, 3000)
    want = tree(mp)
    store.umount()
    before = store.stats()
    store.mount("src")
    clone = subprocess.Popen([HOARD, "volume", "clone", "src", "half",
                              "--store", store.path],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_log(store, "pausing")
    store.kill9()
    _out, err = clone.communicate(timeout=60)
    assert clone.returncode == 1, err
    wait_log(store, f"({at})")
    monkeypatch.delenv("HOARD_TEST_CLONE_PAUSE_MS")
    fsck_interrupted(store)   # a check writes nothing
    if repair:
        fsck_interrupted(store, repair=True)
    m = store.mount("src")
    assert ("removed the unfinished clone to volume 'half'" in store.log()) != repair
    assert [v["name"] for v in hj(store, "volume", "ls")["volumes"]] == ["src"]
    assert tree(m["src"]) == want
    store.umount()
    fsck_clean(store)
    drop = ("db_bytes",)
    assert ({k: v for k, v in store.stats().items() if k not in drop}
            == {k: v for k, v in before.items() if k not in drop})
    hoard(store, "volume", "clone", "src", "half")
    m = store.mount("half")
    assert tree(m["half"]) == want
    store.umount()
    fsck_clean(store)


@pytest.mark.parametrize("at", ["walk", "raise"])
def test_clone_tries_again_when_a_chunk_is_freed(store, monkeypatch, at):
    """A chunk of the snapshot freed before the clone publishes (a file
    deleted in the mounted source meanwhile, before the clone raised any
    refcount, or after its first batch of 8): the clone is undone (the
    references raised taken back) and made again from a new snapshot,
    which no longer has the file; the store is as a clone of that state."""
    monkeypatch.setenv("HOARD_TEST_CLONE_PAUSE_MS", "1500")
    monkeypatch.setenv("HOARD_TEST_CLONE_PAUSE_AT", at)
    monkeypatch.setenv("HOARD_TEST_CLONE_RAISE_BATCH", "8")
    mp = store.mount("src")["src"]
    fill(mp)
    clone = subprocess.Popen([HOARD, "volume", "clone", "src", "c", "--json",
                              "--store", store.path],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    wait_log(store, "pausing")
    os.unlink(mp / "big.bin")    # its 3 MiB of random bytes: its own chunks
    want = tree(mp)
    out, err = clone.communicate(timeout=120)
    assert clone.returncode == 0, err
    res = json.loads(out)
    assert res["tries"] == 2 and res["files"] == 51
    m = {"c": store.path.parent / "mnt-c"}
    m["c"].mkdir()
    hoard(store, "mount", "c", m["c"])
    store.mounts["c"] = m["c"]
    assert tree(m["c"]) == want
    store.umount()
    fsck_clean(store)


def test_rm_refused_while_mounted_frees_chunks(store):
    mp = store.mount("pip")["pip"]
    fill(mp)
    store.umount()
    empty = store.stats()
    hoard(store, "volume", "clone", "pip", "job")
    m = store.mount("job")["job"]
    (m / "only-here").write_bytes(os.urandom(2 << 20))
    fails(store, 1, ["volume", "rm", "job"], "mounted")
    grown = store.stats()
    assert grown["stored_bytes"] > empty["stored_bytes"] + (2 << 20) - 4096
    store.umount()
    assert "job" in [v["name"] for v in hj(store, "volume", "ls")["volumes"]]
    res = hj(store, "volume", "rm", "job")
    assert res["chunks_freed"] >= 8   # 2 MiB of its own chunks
    after = store.stats()
    assert after["stored_bytes"] == empty["stored_bytes"]
    assert after["chunks"] == empty["chunks"]
    assert [v["name"] for v in hj(store, "volume", "ls")["volumes"]] == ["pip"]
    fsck_clean(store)
    # removing the last user of every chunk leaves an empty store
    hoard(store, "volume", "rm", "pip")
    s = store.stats()
    assert s["chunks"] == 0 and s["stored_bytes"] == 0
    fsck_clean(store)


def test_bad_input_leaves_store_unchanged(store):
    mp = store.mount("pip")["pip"]
    fill(mp)
    store.umount()
    hoard(store, "volume", "clone", "pip", "b")
    before = hj(store, "volume", "ls")
    st = store.stats()
    fails(store, 1, ["volume", "clone", "pip", "b"], "exists")
    fails(store, 1, ["volume", "clone", "nope", "x"], "no volume", "nope")
    fails(store, 2, ["volume", "clone", "pip", ".bad"], ".bad")
    fails(store, 2, ["volume", "clone", "pip"], "argument")
    fails(store, 1, ["volume", "rm", "nope"], "nope")
    fails(store, 2, ["volume", "frob"], "frob")
    fails(store, 1, ["volume", "merge", "b", "nope"], "nope")
    fails(store, 1, ["mount", "pip", "/nonexistent-dir"], "daemon")
    fails(store, 2, ["job", "start", "bad/id"], "job id")
    fails(store, 1, ["job", "finish", "nojob"], "no job")
    fails(store, 2, ["job", "finish", "x", "--push", "s3://b/p"], "--keep")
    fails(store, 2, ["job", "finish", "x", "--keep", "--discard"], "not both")
    assert hj(store, "volume", "ls") == before
    drop = ("db_bytes",)   # RocksDB's files move with every open
    assert ({k: v for k, v in store.stats().items() if k not in drop}
            == {k: v for k, v in st.items() if k not in drop})


# ---- mounts on request, the exit rule ---------------------------------------

def test_mount_on_request_and_exit_rule(store, tmp_path):
    """A daemon started with volumes exits when its last mount, of either
    kind, goes; requested mounts keep it."""
    m = store.mount("pip")["pip"]
    pid = store.daemon_pid()
    (m / "a").write_text("in pip")
    extra = tmp_path / "extra"
    extra.mkdir()
    out = hoard(store, "mount", "other", extra).stdout
    assert out.strip() == str(extra) and is_mounted(extra)
    (extra / "b").write_text("in other")
    fails(store, 1, ["mount", "other", tmp_path], "mounted already")
    fails(store, 1, ["mount", "pip", tmp_path], "mounted already")
    ls = {v["name"]: v["mountpoint"] for v in hj(store, "volume", "ls")["volumes"]}
    assert ls == {"pip": str(m), "other": str(extra)}
    run(["fusermount3", "-u", m])
    time.sleep(0.5)
    assert pid_alive(pid), "the daemon left while a requested mount remained"
    assert (extra / "b").read_text() == "in other"
    # the same volume again, elsewhere: slots are reused
    again = tmp_path / "again"
    again.mkdir()
    hoard(store, "mount", "pip", again)
    assert (again / "a").read_text() == "in pip"
    hoard(store, "umount", "pip")
    assert not is_mounted(again)
    run(["fusermount3", "-u", extra])
    store.wait_daemon_exit(pid)
    store.mounts = {}
    fsck_clean(store)


def test_persist_service(service, tmp_path):
    store = service
    pid = store.daemon_pid()
    d = tmp_path / "v"
    d.mkdir()
    for k in range(3):   # mount, write, unmount: the daemon stays
        hoard(store, "mount", "pip", d)
        (d / f"f{k}").write_bytes(b"x" * 1000 * (k + 1))
        hoard(store, "umount", "pip")
        assert not is_mounted(d)
        assert pid_alive(pid)
    fails(store, 1, ["umount", "pip"], "not mounted")
    assert hj(store, "volume", "ls")["volumes"][0]["mountpoint"] is None
    os.kill(pid, signal.SIGTERM)
    store.wait_daemon_exit(pid)
    fsck_clean(store)
    m = store.mount("pip")["pip"]
    assert sorted(os.listdir(m)) == ["f0", "f1", "f2"]


# ---- jobs ------------------------------------------------------------------------

def job_start(store, jid, *args):
    return hj(store, "job", "start", jid, "--dir", store.path.parent / "jobs", *args)


def test_job_discard_and_keep(service, tmp_path):
    store = service
    shared = tmp_path / "shared"
    shared.mkdir()
    hoard(store, "mount", "pip", shared)
    (shared / "wheel.whl").write_bytes(b"original wheel")
    (shared / "old").write_bytes(b"old content")
    (shared / "kept-newer").write_bytes(b"shared copy")
    want = tree(shared)

    # an untrusted job: whatever it writes is dropped
    j = job_start(store, "untrusted-1")
    path = Path(j["volumes"][0]["path"])
    assert is_mounted(path) and tree(path) == want
    (path / "wheel.whl").write_bytes(b"POISONED wheel")
    (path / "new").write_bytes(b"new")
    out = hoard(store, "job", "finish", "untrusted-1", "--discard").stdout
    assert out == ""
    assert not is_mounted(path) and not path.exists()
    assert tree(shared) == want
    assert "job.untrusted-1.pip" not in [v["name"] for v in hj(store, "volume", "ls")["volumes"]]

    # a trusted job: new and changed files are folded back
    j = job_start(store, "trusted-1")
    path = Path(j["volumes"][0]["path"])
    (path / "new-wheel.whl").write_bytes(b"new wheel")
    (path / "old").write_bytes(b"changed by the job")
    os.unlink(path / "wheel.whl")   # pull never deletes: nor does a merge
    (path / "kept-newer").write_bytes(b"job copy")
    time.sleep(0.05)
    (shared / "kept-newer").write_bytes(b"shared copy, newer")
    res = hj(store, "job", "finish", "trusted-1", "--keep")
    merge = res["volumes"][0]["merge"]
    assert merge["added"] == 1 and merge["replaced"] == 1 and merge["kept_newer"] == 1
    assert (shared / "new-wheel.whl").read_bytes() == b"new wheel"
    assert (shared / "old").read_bytes() == b"changed by the job"
    assert (shared / "wheel.whl").read_bytes() == b"original wheel"
    assert (shared / "kept-newer").read_bytes() == b"shared copy, newer"
    assert [v["name"] for v in hj(store, "volume", "ls")["volumes"]] == ["pip"]
    assert not list((store.path / "jobs").glob("*.json"))
    hoard(store, "umount", "pip")
    pid = store.daemon_pid()
    stop(store, pid)
    fsck_clean(store)


def test_job_two_volumes_and_failed_start_undone(service, tmp_path):
    store = service
    d = tmp_path / "hf"
    d.mkdir()
    hoard(store, "mount", "huggingface", d)
    (d / "hub").mkdir()
    hoard(store, "umount", "huggingface")
    hoard(store, "mount", "pip", d)   # made empty
    hoard(store, "umount", "pip")
    j = job_start(store, "two", "--from", "pip", "--from", "huggingface")
    paths = [Path(v["path"]) for v in j["volumes"]]
    assert [p.name for p in paths] == ["pip", "huggingface"]
    assert all(is_mounted(p) for p in paths)
    assert os.listdir(paths[1]) == ["hub"]
    fails(store, 1, ["job", "start", "two", "--dir", tmp_path / "jobs"], "exists")
    hoard(store, "job", "finish", "two")
    assert not any(p.exists() for p in paths)
    # a start whose second volume does not exist undoes the first clone
    fails(store, 1, ["job", "start", "bad", "--from", "pip", "--from", "nope",
                     "--dir", tmp_path / "jobs"], "nope")
    names = [v["name"] for v in hj(store, "volume", "ls")["volumes"]]
    assert names == ["huggingface", "pip"]
    assert not (tmp_path / "jobs" / "bad").exists()
    fails(store, 1, ["job", "finish", "bad"], "no job")


def test_eight_concurrent_jobs(service, tmp_path):
    """8 jobs at once on one host: clones, writes, finishes (half kept),
    no error, fsck clean; the kept jobs' files are all in the shared
    volume."""
    store = service
    shared = tmp_path / "shared"
    shared.mkdir()
    hoard(store, "mount", "pip", shared)
    fill(shared)
    errors = []

    def job(k):
        try:
            j = job_start(store, f"j{k}")
            p = Path(j["volumes"][0]["path"])
            assert (p / "d1" / "text").read_bytes().startswith(b"line 0\n")
            (p / f"from-job-{k}").write_bytes(os.urandom(100_000))
            (p / "d1" / "d2" / f"f{k}").write_bytes(b"job %d" % k)
            args = ["--keep"] if k % 2 == 0 else ["--discard"]
            hoard(store, "job", "finish", f"j{k}", *args)
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append((k, e))
    threads = [threading.Thread(target=job, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for k in range(8):
        assert (shared / f"from-job-{k}").exists() == (k % 2 == 0)
        got = (shared / "d1" / "d2" / f"f{k}").read_bytes()
        assert (got == b"job %d" % k) == (k % 2 == 0)
    assert [v["name"] for v in hj(store, "volume", "ls")["volumes"]] == ["pip"]
    hoard(store, "umount", "pip")
    stop(store, store.daemon_pid())
    fsck_clean(store)


def test_job_keep_into_a_missing_volume_keeps_the_job(service, tmp_path):
    """A --keep whose shared volume went away fails, and loses nothing: the
    job and its clone stay for another finish."""
    store = service
    hoard(store, "volume", "create", "pip")
    j = job_start(store, "k1")
    path = Path(j["volumes"][0]["path"])
    (path / "work").write_bytes(b"the job's work")
    hoard(store, "volume", "rm", "pip")
    fails(store, 1, ["job", "finish", "k1", "--keep"], "pip", "finish again")
    names = [v["name"] for v in hj(store, "volume", "ls")["volumes"]]
    assert names == ["job.k1.pip"]
    hoard(store, "volume", "create", "pip")
    hoard(store, "job", "finish", "k1", "--keep")
    d = tmp_path / "check"
    d.mkdir()
    hoard(store, "mount", "pip", d)
    assert (d / "work").read_bytes() == b"the job's work"
    hoard(store, "umount", "pip")
