#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Interleaved A/B of the ingest figure (issue 14 item 3), as root:

    tests/bench/ingest_ab.py [--rounds N] [--cpus 0] [--cpus all]
        [--work DIR] [--quick] [--phases] [--bound BUILD]
        NAME=BUILD[:VAR=VALUE@VAR=VALUE...] ... [null=BUILD]

Each round copies the bench corpora (`cp -a` of the pip corpus and the
model cache, as bench.py's ingest rows do) into a fresh store served by
each BUILD's hoardfs in turn, the order flipped every round, first with
the daemon pinned to CPU 0 (`--cpus 0`, taskset, `cp` not) and then on
all CPUs (`--cpus all`) unless --cpus says otherwise.  VAR=VALUE pairs
go into that daemon's environment (the same build can run twice with
different settings).  A NAME starting with "null" runs BUILD's
tests/hoard-nullfs --discard instead (the FUSE floor).

Per run and as medians per (name, cpus): the daemon's CPU seconds, user
and system (wait4 rusage of all its threads: comparable under load,
wall-clock is not), voluntary context switches, minor faults, and the
wall time from the first `cp` to the unmount.  --phases adds the pip and
model copies' own wall and daemon CPU.  --bound BUILD runs that build's
`hoard-bench bound` (the one-core bound, pinned to CPU 0) once per
round.  Every hoard run's stored bytes must be the same (exit 1 if not).

The corpora are made once in WORK/src (bench.py's generators, same
seeds: the same bytes as `tests/bench/run`'s) and kept: a later call
with the same --work reuses them.  Default --work: /var/tmp/hoard-ingest-ab.
"""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the corpus generators, mounts, CPU time)


def corpora(work, quick):
    src = work / "src"
    done = src / ".complete"
    if not done.exists():
        shutil.rmtree(src, ignore_errors=True)
        sz = bench.SIZES["quick" if quick else "full"]
        bench.make_pip_corpus(src / "pip", sz["wheel_budget"],
                              random.Random(bench.SEED))
        bench.make_model_corpus(src / "hf", sz, random.Random(bench.SEED + 1))
        bench.sync_fs()
        done.touch()
    files = bench.tree_files(src / "pip") + bench.tree_files(src / "hf")
    return src, files, sum(os.path.getsize(f) for f in files)


def parse_build(spec):
    name, _, rest = spec.partition("=")
    build, _, envs = rest.partition(":")
    env = {}
    for kv in filter(None, envs.split("@")):
        k, _, v = kv.partition("=")
        env[k] = v
    if not name or not build:
        raise SystemExit(f"ingest_ab: bad build {spec!r} (NAME=BUILD[:VAR=VALUE@...])")
    return name, Path(build).resolve(), env


def once(work, src, name, build, env, cpus, phases):
    w = work / "run"
    shutil.rmtree(w, ignore_errors=True)
    w.mkdir(parents=True)
    logf = w / "daemon.log"
    null = name.startswith("null")
    if null:
        mnt = w / "null"
        mnt.mkdir()
        targets = [mnt / "pip", mnt / "huggingface"]
        mps = [mnt]
        args = [str(build / "tests" / "hoard-nullfs"), "--discard", str(mnt)]
    else:
        store = w / "store"
        subprocess.run([build / "hoard", "init", "--store", store], check=True,
                       capture_output=True)
        targets = [w / "pip", w / "hf"]
        for t in targets:
            t.mkdir()
        mps = targets
        args = [str(build / "hoardfs"), "-f", "--store", str(store),
                f"pip={targets[0]}", f"huggingface={targets[1]}"]
    if cpus != "all":
        args = ["taskset", "-c", cpus] + args
    with open(logf, "wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL,
                                env={**os.environ, **env})
    try:
        bench.wait_mounted(proc, name, mps, logf, 30)
    except bench.BenchError as e:
        raise SystemExit(f"ingest_ab: {e}: {Path(logf).read_text()[-2000:]}")
    res = {}
    t0 = time.monotonic()
    for part, dst in zip(("pip", "hf"), targets):
        c0, p0 = bench.proc_cpu_s(proc.pid), time.monotonic()
        subprocess.run(["cp", "-a", f"{src / part}/.", dst], check=True)
        if phases:
            res[f"{part}_wall"] = time.monotonic() - p0
            res[f"{part}_cpu"] = bench.proc_cpu_s(proc.pid) - c0
    for m in mps:
        subprocess.run(["fusermount3", "-u", m], check=True)
    _, status, ru = os.wait4(proc.pid, 0)
    res.update(wall=time.monotonic() - t0, cpu=ru.ru_utime + ru.ru_stime,
               usr=ru.ru_utime, sys=ru.ru_stime, vcs=ru.ru_nvcsw,
               minflt=ru.ru_minflt, load=os.getloadavg()[0])
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"ingest_ab: {name} exited {status}: "
                         f"{logf.read_text()[-2000:]}")
    if not null:
        st = json.loads(subprocess.run(
            [build / "hoard", "stats", "--json", "--store", store],
            check=True, capture_output=True).stdout)
        res["stored"] = st["stored_bytes"]
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("builds", nargs="+", help="NAME=BUILD[:VAR=VALUE@...]")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--cpus", action="append", help="0 (taskset) or all")
    ap.add_argument("--work", default="/var/tmp/hoard-ingest-ab")
    ap.add_argument("--quick", action="store_true", help="small corpora")
    ap.add_argument("--phases", action="store_true")
    ap.add_argument("--bound", help="a build with tests/hoard-bench")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("ingest_ab: must run as root (FUSE mounts)")
    work = Path(a.work).resolve()
    builds = [parse_build(s) for s in a.builds]
    src, files, total = corpora(work, a.quick)
    mb = total / bench.MB
    print(f"corpora: {mb:.1f} MB in {len(files)} files ({src})", flush=True)
    res = {}
    for r in range(a.rounds):
        if a.bound:
            out = subprocess.run(["taskset", "-c", "0", Path(a.bound) / "tests" /
                                  "hoard-bench", "bound", *map(str, files)],
                                 check=True, capture_output=True).stdout
            b = json.loads(out)
            res.setdefault(("bound", "0"), []).append(
                dict(wall=b["seconds"], cpu=b["seconds"]))
            print(f"r{r} bound: {b['seconds']:.2f} s "
                  f"({b['bytes'] / bench.MB / b['seconds']:.0f} MB/s)", flush=True)
        for cpus in a.cpus or ["0", "all"]:
            for name, build, env in (builds if r % 2 == 0 else builds[::-1]):
                x = once(work, src, name, build, env, cpus, a.phases)
                res.setdefault((name, cpus), []).append(x)
                ph = "".join(f" {p} {x[p + '_wall']:.2f}/{x[p + '_cpu']:.2f}"
                             for p in ("pip", "hf") if p + "_wall" in x)
                print(f"r{r} {name:8s} cpus={cpus:3s} cpu={x['cpu']:.2f} "
                      f"(u{x['usr']:.2f} s{x['sys']:.2f}) vcs={x['vcs']} "
                      f"minflt={x['minflt']} wall={x['wall']:.2f} "
                      f"MB/s={mb / x['wall']:.0f}{ph} "
                      f"load={x['load']:.1f}", flush=True)
    print("medians (range):")
    for (name, cpus), xs in sorted(res.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        def med(k):
            return statistics.median(x[k] for x in xs)
        extra = "".join(f" {k}={med(k):.0f}" if k in ("vcs", "minflt")
                        else f" {k}={med(k):.2f}" for k in
                        ("usr", "sys", "vcs", "minflt", "pip_wall", "pip_cpu",
                         "hf_wall", "hf_cpu") if k in xs[0])
        print(f"{name:8s} cpus={cpus:3s} cpu={med('cpu'):.2f} "
              f"[{min(x['cpu'] for x in xs):.2f}-{max(x['cpu'] for x in xs):.2f}]"
              f" wall={med('wall'):.2f} MB/s={mb / med('wall'):.0f}{extra}")
    stored = {}
    for (name, _), xs in res.items():
        for x in xs:
            if "stored" in x:
                stored.setdefault(x["stored"], set()).add(name)
    print("stored bytes: " + ", ".join(f"{b:,} ({' '.join(sorted(n))})"
                                       for b, n in sorted(stored.items())))
    shutil.rmtree(work / "run", ignore_errors=True)
    return 1 if len(stored) > 1 else 0


if __name__ == "__main__":
    sys.exit(main())
