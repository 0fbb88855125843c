# SPDX-License-Identifier: MIT
"""The daemon serves control requests at once (fs/daemon/ctl.c: a thread
per connection; hoardfsctl.c: which requests overlap).

A request is not held up by a long one (a clone paused by the test hook),
and requests that race for the same name (two clones to one name, rm
during a clone, mount against rm) give one clear answer each, a store
that matches them, and a clean fsck.  Real daemon, real mounts."""
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import HOARD, HOARDFS, is_mounted, requires_hoard, run
from test_volume import fill, fsck_clean, hj, hoard, many_files, stop, tree, wait_log

pytestmark = requires_hoard


def names(store):
    return sorted(v["name"] for v in hj(store, "volume", "ls")["volumes"])


def start_service(store):
    run([HOARDFS, "--store", store.path, "--persist"], timeout=60)
    assert store.daemon_pid()


def make_src(store, tmp_path, name="src", dirs=4):
    d = tmp_path / f"fill-{name}"
    d.mkdir()
    hoard(store, "mount", name, d)
    fill(d)
    many_files(d, dirs, 50, 1500)
    want = tree(d)
    hoard(store, "umount", name)
    return want


def check_tree(store, tmp_path, name, want):
    d = tmp_path / f"check-{name}"
    d.mkdir(exist_ok=True)
    hoard(store, "mount", name, d)
    try:
        assert tree(d) == want
    finally:
        hoard(store, "umount", name)


def test_requests_served_during_a_paused_clone(store, tmp_path, monkeypatch):
    """A clone held 8 s by the test hook (after its walk) does not hold up
    ls, create, mount, umount and stats sent meanwhile: they all answer
    while the clone is still under way.  (With one request at a time,
    each waited for the clone.)"""
    monkeypatch.setenv("HOARD_TEST_CLONE_PAUSE_MS", "8000")
    start_service(store)
    try:
        want = make_src(store, tmp_path)
        clone = subprocess.Popen([HOARD, "volume", "clone", "src", "c1",
                                  "--store", store.path],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        wait_log(store, "clone: pausing")
        t0 = time.monotonic()
        assert names(store) == ["src"]
        hoard(store, "volume", "create", "other")
        mp = tmp_path / "other"
        mp.mkdir()
        hoard(store, "mount", "other", mp)
        (mp / "x").write_bytes(b"written while a clone runs")
        hoard(store, "umount", "other")
        hoard(store, "stats")
        took = time.monotonic() - t0
        still = clone.poll() is None
        out, err = clone.communicate(timeout=120)
        assert clone.returncode == 0, err
        assert still, (f"the requests took {took:.1f} s and the clone had "
                       "ended: they waited for it")
        assert names(store) == ["c1", "other", "src"]
        check_tree(store, tmp_path, "c1", want)
    finally:
        stop(store, store.daemon_pid())
    fsck_clean(store)


def test_racing_requests_for_one_name(store, tmp_path):
    """Rounds of requests sent at once: 6 clones to distinct names, 2
    clones to one name (one wins, the other is refused: exists / under
    way), a clone of a volume being removed (the clone is whole or
    refused with "no volume"), a mount racing a rm of the same volume
    (never mounted while removed), pings (volume ls).  Every answer is one of those,
    every listed clone holds the source's tree, fsck is clean."""
    start_service(store)
    try:
        want = make_src(store, tmp_path)
        for rnd in range(2):
            hoard(store, "volume", "clone", "src", "victim")
            hoard(store, "volume", "clone", "src", "target")
            res, lock = {}, threading.Lock()
            mp = tmp_path / f"race-{rnd}"
            mp.mkdir()

            def go(key, *args):
                p = hoard(store, *args, check=False)
                with lock:
                    res[key] = p

            jobs = [(f"c{k}", "volume", "clone", "src", f"c{k}") for k in range(6)]
            jobs += [("dup1", "volume", "clone", "src", "dup"),
                     ("dup2", "volume", "clone", "src", "dup"),
                     ("rm-victim", "volume", "rm", "victim"),
                     ("clone-victim", "volume", "clone", "victim", "v2"),
                     ("mount-target", "mount", "target", mp),
                     ("rm-target", "volume", "rm", "target")]
            jobs += [(f"ls{k}", "volume", "ls") for k in range(4)]
            threads = [threading.Thread(target=go, args=j) for j in jobs]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

            def ok(k):
                return res[k].returncode == 0

            def err(k):
                lines = res[k].stderr.strip().splitlines()
                assert res[k].returncode == 1 and len(lines) == 1, (k, res[k].stderr)
                return lines[0]
            for k in range(6):
                assert ok(f"c{k}"), res[f"c{k}"].stderr
            for k in range(4):
                assert ok(f"ls{k}"), res[f"ls{k}"].stderr
            # two clones to one name: exactly one
            assert ok("dup1") != ok("dup2"), (res["dup1"].stderr, res["dup2"].stderr)
            lost = err("dup2" if ok("dup1") else "dup1")
            assert "exists already" in lost or "under way" in lost, lost
            # rm during a clone of it: the rm works; the clone is whole or
            # refused
            assert ok("rm-victim"), res["rm-victim"].stderr
            if not ok("clone-victim"):
                assert "no volume 'victim'" in err("clone-victim")
            # mount against rm: never the volume being removed (a mount
            # after the rm makes a new, empty one)
            mounted = ok("mount-target")
            if mounted:
                assert is_mounted(mp)
                if ok("rm-target"):
                    assert os.listdir(mp) == []
                else:
                    assert "mount" in err("rm-target")
                    assert tree(mp) == want
                hoard(store, "umount", "target")
                hoard(store, "volume", "rm", "target")
            else:
                assert "being removed" in err("mount-target") or \
                    "no volume" in err("mount-target"), err("mount-target")
                assert ok("rm-target")
            got = names(store)
            want_names = ["dup", "src"] + [f"c{k}" for k in range(6)]
            if ok("clone-victim"):
                want_names.append("v2")
            assert got == sorted(want_names), got
            for n in ["dup", "c0", "c5"] + (["v2"] if ok("clone-victim") else []):
                check_tree(store, tmp_path, n, want)
            for n in got:
                if n != "src":
                    hoard(store, "volume", "rm", n)
            assert names(store) == ["src"]
    finally:
        stop(store, store.daemon_pid())
    fsck_clean(store)
