# SPDX-License-Identifier: MIT
"""`hoard volume rm` walks a snapshot without the metadata lock and removes
the inodes in batches (fs/core/volrm.c): other mounts keep being served
during a big removal, and a removal killed half way is finished by the
next start (fsck clean, the store as after a whole removal).

Real daemon, real mounts, kill -9."""
import os
import subprocess
import threading
import time

import pytest

from conftest import HOARD, requires_hoard
from test_volume import (fill, fsck_clean, fsck_interrupted, hj, hoard, many_files,
                         tree, wait_log)

pytestmark = requires_hoard


def names(store):
    return [v["name"] for v in hj(store, "volume", "ls")["volumes"]]


def test_rm_does_not_stall_other_mounts(store):
    """A thread on another mount creates, writes, stats and unlinks files
    (each needs the daemon) while an 8,000-file volume is removed: some of
    those requests complete in the middle half of the removal's time in
    the daemon, and no single hold of the lock is the whole removal.  Not
    a speed target.  fsck is clean and the chunks are freed."""
    m = store.mount("big", "other")
    many_files(m["big"], 80, 100, 2048)
    store.umount()
    empty = store.stats()
    hoard(store, "volume", "clone", "big", "big2")
    m = store.mount("big2", "other")
    (m["big2"] / "own").write_bytes(os.urandom(1 << 20))
    store.umount()
    m = store.mount("other")
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
    try:
        time.sleep(0.2)
        res = hj(store, "volume", "rm", "big2")
        t1 = time.monotonic()
        time.sleep(0.1)
    finally:
        stop_flag.set()
        t.join()
    assert not errors
    lo, hi = t1 - res["seconds"] * 0.75, t1 - res["seconds"] * 0.25
    n = sum(1 for x in done if lo <= x <= hi)
    print(f"rm: {res['seconds']:.3f} s, {res['locked_seconds']:.3f} s under "
          f"the lock (longest hold {res['locked_max_seconds']:.3f} s), {n} "
          f"requests of the other mount completed in its middle half")
    assert res["inodes"] == 8082 and res["files"] == 8001, res
    assert res["chunks_freed"] >= 4, res   # its own 1 MiB
    assert res["locked_max_seconds"] < res["seconds"]
    assert n > 0, "the other mount made no progress during the removal"
    assert names(store) == ["big", "other"]
    store.umount()
    fsck_clean(store)
    s = store.stats()
    assert (s["chunks"], s["stored_bytes"]) == (empty["chunks"], empty["stored_bytes"])


@pytest.mark.parametrize("repair", [False, True])
def test_rm_killed_mid_way_is_finished_at_start(store, monkeypatch, repair):
    """kill -9 of the daemon after a removal's first batch (8 inodes a
    batch, held there by the test hook): the volume is no longer listed,
    fsck before the restart reports the removal as interrupted, no
    problem (--repair finishes it as the restart would), the restart
    finishes the removal (logged, unless the repair did), the other volume is
    whole, fsck (which checks every refcount) is clean and the store's
    figures are those of a whole removal; the name can be used again."""
    monkeypatch.setenv("HOARD_TEST_RM_PAUSE_MS", "20000")
    monkeypatch.setenv("HOARD_TEST_RM_BATCH", "8")
    mp = store.mount("src")["src"]
    fill(mp)
    many_files(mp, 3, 30, 3000)
    want = tree(mp)
    store.umount()
    before = store.stats()
    hoard(store, "volume", "clone", "src", "victim")
    m = store.mount("victim")
    (m["victim"] / "d1" / "own").write_bytes(os.urandom(2 << 20))
    store.umount()
    store.mount("src")
    rm = subprocess.Popen([HOARD, "volume", "rm", "victim", "--store", store.path],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_log(store, "rm: pausing")
    assert names(store) == ["src"]
    store.kill9()
    _out, err = rm.communicate(timeout=60)
    assert rm.returncode == 1, err
    monkeypatch.delenv("HOARD_TEST_RM_PAUSE_MS")
    fsck_interrupted(store)
    if repair:
        fsck_interrupted(store, repair=True)
    m = store.mount("src")
    assert ("recovery: finished the removal of volume 'victim'"
            in store.log()) != repair
    assert names(store) == ["src"]
    assert tree(m["src"]) == want
    store.umount()
    fsck_clean(store)
    drop = ("db_bytes",)
    assert ({k: v for k, v in store.stats().items() if k not in drop}
            == {k: v for k, v in before.items() if k not in drop})
    hoard(store, "volume", "clone", "src", "victim")
    m = store.mount("victim")
    assert tree(m["victim"]) == want
    store.umount()
    hoard(store, "volume", "rm", "victim")
    fsck_clean(store)
