#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Interleaved A/B of small-file creation: wall time and daemon CPU per file.

usage: create_ab.py ROUNDS N NAME=BUILDDIR[:arg,arg...] ...
  e.g. create_ab.py 12 5000 null=build-rel base=/tmp/base/build-rel \\
           branch=build-rel wait=build-rel:--close=wait

Each side is one daemon on a fresh store (a NAME starting with "null" is
tests/hoard-nullfs of that build instead), mounted under $ABW (default
/tmp/create-ab).  After a warm-up of $WARM files (500) per side, each round
runs `hoard-bench mkfiles DIR N 8192` once per side, the order rotated.
After each run it waits, untimed, until that side's daemon stops using CPU
(so a deferred commit queue does not bleed into the next side's round; the
CPU of that tail counts for the side).  Daemon CPU is utime+stime of the
whole process from /proc/PID/stat (comparable under load); wall is
mkfiles' own figure (not comparable under load: use the paired ratios).
Prints each round, then medians, the CPU by thread name, and paired
ratios against the first side and against the null fs.

mkfiles writes the same bytes every time, so on one daemon every round
after the first is all dedup hits (as in tests/bench/run's create rows).
FRESH=1 starts every side's daemon on a new store for every round instead
(no warm-up): every file is new content.
"""
import collections
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (proc_cpu_s, wait_mounted)

TCK = os.sysconf("SC_CLK_TCK")
cpu = bench.proc_cpu_s


def threads(pid):
    d = {}
    for t in glob.glob(f"/proc/{pid}/task/*"):
        try:
            comm = open(t + "/comm").read().strip()
            f = open(t + "/stat").read().rsplit(")", 1)[1].split()
            d[t.rsplit("/", 1)[1]] = (comm, (int(f[11]) + int(f[12])) / TCK)
        except OSError:
            pass
    return d


def idle(pid):
    last = cpu(pid)
    for _ in range(50):
        time.sleep(0.05)
        c = cpu(pid)
        if c == last:
            return
        last = c


def start(w, name, build, extra):
    mp = w / ("mnt-" + name)
    mp.mkdir()
    logf = w / (name + ".log")
    log = open(logf, "ab")
    if name.startswith("null"):
        args = [str(build / "tests/hoard-nullfs"), *extra, str(mp)]
    else:
        st = w / ("store-" + name)
        subprocess.run([str(build / "hoard"), "init", "--store", str(st)],
                       check=True, stdout=subprocess.DEVNULL)
        args = [str(build / "hoardfs"), "-f", "--store", str(st), *extra,
                f"bench={mp}"]
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                         stderr=log)
    bench.wait_mounted(p, name, [mp], logf, 30)
    return p, mp


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    rounds, n = int(sys.argv[1]), int(sys.argv[2])
    sides = []
    for a in sys.argv[3:]:
        name, rest = a.split("=", 1)
        b, _, extra = rest.partition(":")
        sides.append((name, Path(b).resolve(),
                      [x for x in extra.split(",") if x]))
    w = Path(os.environ.get("ABW", "/tmp/create-ab"))
    shutil.rmtree(w, ignore_errors=True)
    w.mkdir(parents=True)
    fresh = os.environ.get("FRESH") == "1"

    def stop(name):
        p, mp = procs.pop(name)
        subprocess.run(["fusermount3", "-u", str(mp)])
        p.wait()

    procs = {} if fresh else {name: start(w, name, b, extra)
                              for name, b, extra in sides}
    res = {s[0]: [] for s in sides}
    wall = {s[0]: [] for s in sides}
    thr = {s[0]: collections.Counter() for s in sides}
    bench = str(sides[0][1] / "tests/hoard-bench")
    warm = int(os.environ.get("WARM", "500"))
    try:
        for name, (p, base) in procs.items():
            d = base / "warm"
            d.mkdir()
            subprocess.run([bench, "mkfiles", str(d), str(warm), "8192"],
                           check=True, stdout=subprocess.DEVNULL)
            idle(p.pid)
        for i in range(rounds):
            order = sides[i % len(sides):] + sides[:i % len(sides)]
            for name, b, extra in order:
                if fresh:
                    rw = w / f"r{i}"
                    rw.mkdir(exist_ok=True)
                    procs[name] = start(rw, name, b, extra)
                p, base = procs[name]
                d = base / f"c{i}"
                d.mkdir()
                c0, t0s = cpu(p.pid), threads(p.pid)
                out = subprocess.run(
                    [bench, "mkfiles", str(d), str(n), "8192"], check=True,
                    capture_output=True, text=True).stdout
                wall[name].append(json.loads(out)["seconds"])
                idle(p.pid)
                c1, t1s = cpu(p.pid), threads(p.pid)
                res[name].append((c1 - c0) * 1e6 / n)
                for tid, (comm, t) in t1s.items():
                    thr[name][comm] += t - t0s.get(tid, (comm, 0))[1]
                if fresh:
                    stop(name)
            print(i, {k: (round(v[-1], 1), round(wall[k][-1], 3))
                      for k, v in res.items()}, flush=True)
    finally:
        for name in list(procs):
            stop(name)
    for k in res:
        top = {c: round(v * 1e6 / (n * rounds), 1)
               for c, v in thr[k].most_common(6)}
        print(f"{k}: cpu us/file median {statistics.median(res[k]):.1f}  "
              f"wall median {statistics.median(wall[k]):.3f}s "
              f"min {min(wall[k]):.3f}  threads (us/file) {top}")
    names = [s[0] for s in sides]
    for b in names[1:]:
        r = [y / x for x, y in zip(res[names[0]], res[b])]
        wr = [y / x for x, y in zip(wall[names[0]], wall[b])]
        print(f"{b}/{names[0]} paired medians: cpu {statistics.median(r):.3f}"
              f" wall {statistics.median(wr):.3f}")
    nulls = [x for x in names if x.startswith("null")]
    if nulls:
        nl = nulls[0]
        for k in names:
            if k != nl:
                wr = [y / x for x, y in zip(wall[nl], wall[k])]
                print(f"{k}/{nl} wall: paired median "
                      f"{statistics.median(wr):.3f}, ratio of medians "
                      f"{statistics.median(wall[k]) / statistics.median(wall[nl]):.3f}")


if __name__ == "__main__":
    main()
