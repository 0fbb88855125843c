#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Interleaved A/B of the daemon's CPU (and wall time) per created file
(issue 14 item 2; cre4's script, kept here by cre7).

usage: create_cpu_ab.py ROUNDS N NAME=BUILDDIR[:extra,args] ... (name null*:
the null fs, tests/hoard-nullfs)

Each round runs `hoard-bench mkfiles DIR N 8192` once per side, the order
rotated.  After each mkfiles it waits (untimed) until the side's daemon is
idle (its CPU stops growing), so a deferred commit queue does not bleed
into the next side's round; the CPU of that tail counts for the side.
Daemon CPU is utime + stime of the daemon from /proc/PID/stat (every
thread), per thread by name too.

mkfiles writes the same bytes every time, so on one daemon every round
after the first is all dedup hits.  FRESH=1 starts every side's daemon on
a new store for every round instead (no warm-up): every file is new
content.  Environment: ABW (work dir, default /tmp/create-cpu-ab), WARM
(warm-up files per daemon, default 500)."""
import os, sys, subprocess, time, statistics, shutil, glob, collections
from pathlib import Path
rounds, n = int(sys.argv[1]), int(sys.argv[2])
sides = []
for a in sys.argv[3:]:
    name, rest = a.split("=", 1)
    b, _, extra = rest.partition(":")
    sides.append((name, Path(b), [x for x in extra.split(",") if x]))
W = Path(os.environ.get("ABW", "/tmp/create-cpu-ab")); shutil.rmtree(W, ignore_errors=True); W.mkdir(parents=True)
TCK = os.sysconf("SC_CLK_TCK")
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TCK
def threads(pid):
    d = {}
    for t in glob.glob(f"/proc/{pid}/task/*"):
        try:
            comm = open(t + "/comm").read().strip()
            f = open(t + "/stat").read().rsplit(")", 1)[1].split()
            d[t.rsplit("/", 1)[1]] = (comm, (int(f[11]) + int(f[12])) / TCK)
        except OSError: pass
    return d
def mounted(mp):
    return any(l.split()[1] == str(mp) for l in open("/proc/mounts"))
def idle(pid):
    last = cpu(pid)
    for _ in range(50):
        time.sleep(0.05)
        c = cpu(pid)
        if c == last: return
        last = c
fresh = os.environ.get("FRESH") == "1"
starts = collections.Counter()
def start(name, b, extra):
    starts[name] += 1
    tag = f"{name}-{starts[name]}"
    mp = W / ("mnt-" + tag); mp.mkdir()
    log = open(W / (name + ".log"), "ab")
    if name.startswith("null"):
        args = [str(b / "tests/hoard-nullfs"), *extra, str(mp)]
    else:
        st = W / ("store-" + tag)
        subprocess.run([str(b / "hoard"), "init", "--store", str(st)], check=True, stdout=subprocess.DEVNULL)
        args = [str(b / "hoardfs"), "-f", "--store", str(st), *extra, f"bench={mp}"]
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    for _ in range(300):
        if mounted(mp): break
        time.sleep(0.1)
    return p, mp
def stop(p, mp):
    subprocess.run(["fusermount3", "-u", str(mp)])
    p.wait()
    if not fresh: return
    shutil.rmtree(mp, ignore_errors=True)
    shutil.rmtree(str(mp).replace("mnt-", "store-"), ignore_errors=True)
res = {s[0]: [] for s in sides}; wall = {s[0]: [] for s in sides}
thr = {s[0]: collections.Counter() for s in sides}
bench = str(sides[0][1] / "tests/hoard-bench")
warm = 0 if fresh else int(os.environ.get("WARM", "500"))
procs = {}
if not fresh:
    for name, b, extra in sides:
        procs[name] = start(name, b, extra)
    for name, (p, base) in procs.items():
        d = base / "warm"; d.mkdir()
        subprocess.run([bench, "mkfiles", str(d), str(warm), "8192"], check=True, stdout=subprocess.DEVNULL)
        idle(p.pid)
import json
try:
    for i in range(rounds):
        order = sides[i % len(sides):] + sides[:i % len(sides)]
        for name, b, extra in order:
            if fresh:
                procs[name] = start(name, b, extra)
                idle(procs[name][0].pid)
            p, base = procs[name]
            d = base / f"c{i}"; d.mkdir()
            c0 = cpu(p.pid); t0s = threads(p.pid)
            out = subprocess.run([bench, "mkfiles", str(d), str(n), "8192"], check=True, capture_output=True, text=True).stdout
            wall[name].append(json.loads(out)["seconds"])
            idle(p.pid)
            c1 = cpu(p.pid); t1s = threads(p.pid)
            res[name].append((c1 - c0) * 1e6 / n)
            for tid, (comm, t) in t1s.items():
                thr[name][comm] += t - t0s.get(tid, (comm, 0))[1]
            if fresh:
                stop(p, base)
                del procs[name]
        print(i, {k: (round(v[-1], 1), round(wall[k][-1], 3)) for k, v in res.items()}, flush=True)
finally:
    for name, (p, mp) in procs.items():
        stop(p, mp)
for k in res:
    print(f"{k}: cpu us/file median {statistics.median(res[k]):.1f}  wall median {statistics.median(wall[k]):.3f}s "
          f"min {min(wall[k]):.3f}  threads(us/file) {({c: round(v*1e6/(n*rounds),1) for c, v in thr[k].most_common(6)})}")
names = [s[0] for s in sides]
a = names[0]
for bname in names[1:]:
    r = [y / x for x, y in zip(res[a], res[bname])]
    w = [y / x for x, y in zip(wall[a], wall[bname])]
    print(f"{bname}/{a} paired: cpu {statistics.median(r):.3f} wall {statistics.median(w):.3f}")
nulls = [x for x in names if x.startswith("null")]
if nulls:
    nl = nulls[0]
    for k in names:
        if k == nl: continue
        w = [y / x for x, y in zip(wall[nl], wall[k])]
        print(f"{k}/{nl} wall paired median {statistics.median(w):.3f}  (ratio of medians {statistics.median(wall[k])/statistics.median(wall[nl]):.3f})")
