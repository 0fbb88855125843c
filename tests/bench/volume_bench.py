# SPDX-License-Identifier: MIT
"""The volume figures of tests/bench/run (issue 12): clones and CI jobs.

Imported by bench.py (`tests/bench/run --only volumes`, and at the end of a
full run).  On a store holding one volume of VOLUME_FILES files and
VOLUME_BYTES bytes (distinct random bytes, so every file has its own
chunks), served by hoardfs, each against a baseline on the local disk in
the same run:

  clone time         `hoard volume clone` (through the daemon, end to end)
                     vs `cp -a` of the same tree on the local disk + sync
  clone bytes        bytes the daemon wrote for the clone vs the bytes
                     `cp -a` writes (the tree's size): on a daemon started
                     just before it, /proc/PID/io write_bytes from before
                     the request to the daemon's exit right after it
                     (wait4 rusage), so its WAL and the flush of its
                     records at the stop, after a sync (see CLONE_BYTES);
                     the request alone and the store directory's growth
                     are in the detail
  job start          `hoard job start` (clone + mount) vs cp -a + sync
  job finish --keep  unmount, merge the job's new files (100 files,
                     JOB_NEW_BYTES) back, remove the clone; vs cp -a of
                     the tree (what copying a private copy back costs)
  job finish --discard  unmount + remove the clone, vs rm -rf of the cp -a
                     copy + sync
  8 concurrent jobs  8 `hoard job start` at once, then 8 finishes at once:
                     the starts' wall time vs 8 x one start measured
                     before; every command must succeed and `hoard fsck`
                     afterwards must be clean (in the figure's name)
Medians of `runs` rounds, the hoard and baseline measurements interleaved.
"""

# CLONE_BYTES.  RocksDB keeps recent writes in memtables, flushed to SST and
# blob files when all of them together pass the store's write-buffer cap
# (32 MiB, fs/store/store.c).  On a daemon that has served the earlier
# rounds, the memtables hold their work (the job's new files' frames, the
# removals' tombstones), and when the clone's records take them past the
# cap, RocksDB flushes that earlier work during the clone: 13-15 MB more
# in 2 of 3 rounds (git 5327aec), in 1 of 3 at 8a98d15, 0 of 3 at
# fc92244: chance, where the cap is crossed.  So the clone is measured on
# a daemon started for it (the stop before flushes what the memtables
# hold; the measurement starts once the new daemon has written nothing
# for a second), and its records' own flush, at the stop right after it,
# is counted with it: what the clone writes, and only that.  write_bytes
# from before the request to the exit is not less cancelled_write_bytes
# (not readable after the exit): it can only count more.
import concurrent.futures
import json
import os
import random
import shutil
import statistics
import subprocess
import time
from pathlib import Path

MB = 1_000_000
MiB = 1 << 20

SIZES = {
    "quick": dict(files=1000, bytes=64 * MiB, new_bytes=4 * MiB, runs=2),
    "full": dict(files=10_000, bytes=1 << 30, new_bytes=100 * MiB, runs=3),
}


def make_tree(dest, files, total, seed):
    """files files of total/files distinct random bytes, 100 per directory."""
    rng = random.Random(seed)
    size = total // files
    for i in range(files):
        d = dest / f"d{i // 100:03}"
        if i % 100 == 0:
            d.mkdir(parents=True)
        (d / f"f{i % 100:03}.bin").write_bytes(rng.randbytes(size))
    return files * size


def proc_io(pid):
    v = {}
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            k, n = line.split(":")
            v[k] = int(n)
    return v


def io_written(pid):
    v = proc_io(pid)
    return v["write_bytes"] - v["cancelled_write_bytes"]


def quiet(pid, still=1.0, limit=60.0):
    """sync, then wait until the daemon has written nothing for still
    seconds (a daemon just started may compact what the stop before it
    flushed), at most limit seconds."""
    end = time.monotonic() + limit
    os.sync()
    w = proc_io(pid)["write_bytes"]
    while time.monotonic() < end:
        time.sleep(still)
        os.sync()
        w, prev = proc_io(pid)["write_bytes"], w
        if w == prev:
            return


def dir_bytes(path):
    """du -sb of path.  RocksDB deletes files (compactions, old logs) while
    the daemon runs, and du exits 1 when one vanishes between its readdir
    and its stat; its total (of the files still there) is still right."""
    p = subprocess.run(["du", "-sb", str(path)], capture_output=True,
                       text=True)
    if not p.stdout.strip():
        raise RuntimeError(f"du -sb {path}: {p.stderr.strip()}")
    return int(p.stdout.split()[0])


class VolumeBench:
    def __init__(self, bench, log):
        self.b = bench
        self.log = log
        self.sz = SIZES[bench.size]
        self.work = bench.work / "volumes"
        self.work.mkdir()
        self.d = None

    def hoard(self, *args, check=True):
        return self.b.run_cmd([self.b.hoard, *args, "--store", self.store],
                              check=check)

    def hoard_json(self, *args):
        return json.loads(self.hoard(*args, "--json").stdout)

    def timed_hoard(self, *args):
        t0 = time.monotonic()
        out = self.hoard(*args)
        return time.monotonic() - t0, out

    def cp_baseline(self, k):
        dst = self.work / f"cp-{k}"
        os.sync()
        t0 = time.monotonic()
        self.b.run_cmd(["cp", "-a", self.src, dst])
        os.sync()
        t_cp = time.monotonic() - t0
        t0 = time.monotonic()
        self.b.run_cmd(["rm", "-rf", dst])
        os.sync()
        return t_cp, time.monotonic() - t0

    def run(self):
        sz, log = self.sz, self.log
        self.src = self.work / "src"
        nbytes = make_tree(self.src, sz["files"], sz["bytes"], 20261206)
        os.sync()
        log(f"volumes: source tree {sz['files']:,} files, {nbytes / MB:.0f} MB")
        self.store = self.work / "store"
        self.b.run_cmd([self.b.hoard, "init", "--store", self.store])
        mnt = self.work / "mnt-shared"
        self.start_daemon(mnt)
        self.b.run_cmd(["cp", "-a", f"{self.src}/.", mnt])
        os.sync()
        jobs = self.work / "jobs"
        det = dict(files=sz["files"], bytes=nbytes, clone=[], cp=[], rm=[],
                   start=[], keep=[], discard=[], clone_bytes=[],
                   clone_request_bytes=[], store_growth=[])
        try:
            for k in range(sz["runs"]):
                t_cp, t_rm = self.cp_baseline(k)
                det["cp"].append(t_cp)
                det["rm"].append(t_rm)
                # clone, and the bytes the daemon wrote for it (CLONE_BYTES)
                self.stop_daemon()
                self.start_daemon(mnt)
                pid = self.d.proc.pid
                quiet(pid)
                w0, s0 = proc_io(pid)["write_bytes"], dir_bytes(self.store)
                r0 = io_written(pid)
                t, out = self.timed_hoard("volume", "clone", "shared",
                                          f"c{k}", "--json")
                os.sync()
                det["clone_request_bytes"].append(io_written(pid) - r0)
                det["clone_bytes"].append(self.stop_daemon()["write_bytes"]
                                          - w0)
                det["store_growth"].append(dir_bytes(self.store) - s0)
                self.start_daemon(mnt)
                det["clone"].append(t)
                det.setdefault("clone_json", []).append(json.loads(out.stdout))
                self.hoard("volume", "rm", f"c{k}")
                # a job: start, write new files, finish --keep
                t, out = self.timed_hoard("job", "start", f"k{k}", "--from",
                                          "shared", "--dir", jobs)
                det["start"].append(t)
                path = Path(out.stdout.split()[0])
                rng = random.Random(k)
                for i in range(100):
                    (path / f"new-{k}-{i}.bin").write_bytes(
                        rng.randbytes(sz["new_bytes"] // 100))
                t, _ = self.timed_hoard("job", "finish", f"k{k}", "--keep")
                det["keep"].append(t)
                # a job discarded
                self.hoard("job", "start", f"x{k}", "--from", "shared",
                           "--dir", jobs)
                t, _ = self.timed_hoard("job", "finish", f"x{k}",
                                        "--discard")
                det["discard"].append(t)
                cj = det["clone_json"][-1]
                log(f"volumes round {k}: clone {det['clone'][-1]:.3f} s "
                    f"({cj.get('seconds', 0):.3f} s in the daemon, "
                    f"{cj.get('locked_seconds', 0):.3f} s of it holding the "
                    f"metadata lock, the longest hold "
                    f"{cj.get('locked_max_seconds', 0):.3f} s), "
                    f"cp -a {t_cp:.2f} s, job start {det['start'][-1]:.3f} s,"
                    f" finish --keep {det['keep'][-1]:.2f} s, --discard "
                    f"{det['discard'][-1]:.2f} s")
            self.concurrent(jobs, det)
        finally:
            if self.d:
                self.stop_daemon()
        p = self.b.run_cmd([self.b.hoard, "fsck", "--json", "--store",
                            self.store], check=False)
        det["fsck_exit"] = p.returncode
        det["fsck_clean"] = p.returncode == 0
        self.b.detail["volumes"] = det
        self.rows(det)

    def start_daemon(self, mnt):
        self.d = self.b.daemon(self.store, {"shared": mnt},
                               self.work / "hoardfs.log")

    def stop_daemon(self):
        """Stop the daemon (unmounting it); its wait4 figures."""
        d, self.d = self.d, None
        return d.stop()

    def concurrent(self, jobs, det):
        def start(k):
            return self.b.run_cmd([self.b.hoard, "job", "start", f"p{k}",
                                   "--from", "shared", "--dir", jobs,
                                   "--store", self.store], check=False)

        def finish(k):
            return self.b.run_cmd([self.b.hoard, "job", "finish", f"p{k}",
                                   "--discard", "--store", self.store],
                                  check=False)
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            t0 = time.monotonic()
            starts = list(ex.map(start, range(8)))
            det["eight_start"] = time.monotonic() - t0
            t0 = time.monotonic()
            finishes = list(ex.map(finish, range(8)))
            det["eight_finish"] = time.monotonic() - t0
        errs = [p.stderr.strip() for p in starts + finishes if p.returncode]
        det["eight_errors"] = errs
        self.log(f"8 concurrent jobs: starts {det['eight_start']:.2f} s, "
                   f"finishes {det['eight_finish']:.2f} s, "
                   f"{len(errs)} errors")

    def rows(self, det):
        med = statistics.median
        row = self.b.row
        n, b = det["files"], det["bytes"]
        what = (f"{n:,}-file, {b / (1 << 30):.0f} GiB volume" if b >= 1 << 30
                else f"{n:,}-file, {b / MiB:.0f} MiB volume")
        row(f"volume clone, {what} (vs cp -a + sync)", "s", med(det["clone"]),
            med(det["cp"]), 0.1, "lower")
        row(f"volume clone, bytes the daemon wrote, {what} (vs the bytes "
            "cp -a writes)", "MB", med(det["clone_bytes"]) / MB,
            det["bytes"] / MB, 0.01, "lower")
        row(f"job start (clone + mount), {what} (vs cp -a + sync)", "s",
            med(det["start"]), med(det["cp"]), 0.1, "lower")
        row(f"job finish --keep (unmount, merge 100 new files back, rm), "
            f"{what} (vs cp -a + sync)", "s", med(det["keep"]),
            med(det["cp"]), 0.5, "lower")
        row(f"job finish --discard (unmount, rm), {what} (vs rm -rf of a "
            "cp -a copy + sync)", "s", med(det["discard"]), med(det["rm"]),
            1.0, "lower")
        ok = not det["eight_errors"] and det["fsck_clean"]
        row(f"8 concurrent job starts, {what}: "
            f"{len(det['eight_errors'])} errors, fsck "
            f"{'clean' if det['fsck_clean'] else 'NOT clean'} "
            "(vs 8 x one job start)", "s", det["eight_start"],
            8 * med(det["start"]), 1.0 if ok else 0.0, "lower")
