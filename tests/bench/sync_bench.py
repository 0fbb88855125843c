#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Push/pull figures against the test S3 server on loopback (not a test).

    HOARD_BUILD=build /usr/bin/python3 tests/bench/sync_bench.py [--mib 256]

Prints one JSON object:
  puts_per_gib_new    PUT requests per GiB of new (stored) data pushed
  push_mib_s, pull_mib_s       logical MiB/s of hoard push / pull
  aws_up_mib_s, aws_down_mib_s `aws s3 cp --recursive` of the same files
  warm_90_bytes       bytes a second store downloads to warm a volume
                      90% of which it already has, and what that is of the
                      volume's stored size
The corpus is half random, half compressible text, in files of 1-8 MiB.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "e2e"))
from conftest import HOARD, Store, run  # noqa: E402
from s3server import S3Server  # noqa: E402

AWS = "/usr/bin/aws"


def corpus(root, mib, seed=5):
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    total, i = 0, 0
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
             for _ in range(5000)]
    while total < mib << 20:
        n = rng.randint(1, 8) << 20
        if i % 2:
            data = rng.randbytes(n)
        else:
            out, size = [], 0
            while size < n:
                line = b" ".join(rng.choice(words) for _ in range(12)) + b"\n"
                out.append(line)
                size += len(line)
            data = b"".join(out)[:n]
        (root / f"f{i:04d}.bin").write_bytes(data)
        total += n
        i += 1
    return total


def hoard(srv, *args):
    p = subprocess.run([str(HOARD), *map(str, args), "--json"], env=srv.env(),
                       capture_output=True, text=True, check=True)
    return json.loads(p.stdout)


def aws(srv, *args):
    subprocess.run([AWS, "--endpoint-url", srv.endpoint, *map(str, args)], env=srv.env(),
                   capture_output=True, check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hoard-sync-bench."))
    srv = S3Server(work / "s3").start()
    out = {}
    try:
        src = work / "src"
        logical = corpus(src, a.mib)
        mib = logical / (1 << 20)
        out["logical_bytes"] = logical
        st = Store(work / "a")
        st.init()
        mp = st.mount("vol")["vol"]
        run(["cp", "-a", f"{src}/.", str(mp)])
        st.umount()
        url = f"s3://{srv.bucket}/bench"

        srv.reset()
        t = time.monotonic()
        r = hoard(srv, "push", url, "--store", st.path, "--volume", "vol")
        dt = time.monotonic() - t
        puts = srv.stats()["by_method"].get("PUT", 0)
        out["push"] = r
        out["push_seconds"] = round(dt, 2)
        out["push_mib_s"] = round(mib / dt, 1)
        out["puts"] = puts
        out["puts_per_gib_new"] = round(puts / (r["bytes_new"] / (1 << 30)), 1)

        t = time.monotonic()
        aws(srv, "s3", "cp", "--recursive", "--quiet", src, f"s3://{srv.bucket}/awscopy/")
        dt = time.monotonic() - t
        out["aws_up_seconds"] = round(dt, 2)
        out["aws_up_mib_s"] = round(mib / dt, 1)

        b = Store(work / "b")
        run([HOARD, "init", "--from", url, "--store", b.path], env=srv.env())
        t = time.monotonic()
        r = hoard(srv, "pull", url, "--store", b.path, "--volume", "vol")
        dt = time.monotonic() - t
        out["pull"] = r
        out["pull_seconds"] = round(dt, 2)
        out["pull_mib_s"] = round(mib / dt, 1)

        dst = work / "down"
        t = time.monotonic()
        aws(srv, "s3", "cp", "--recursive", "--quiet", f"s3://{srv.bucket}/awscopy/", dst)
        dt = time.monotonic() - t
        out["aws_down_seconds"] = round(dt, 2)
        out["aws_down_mib_s"] = round(mib / dt, 1)
        shutil.rmtree(dst)

        # 90% shared: store a changes a tenth of its bytes (every tenth
        # file rewritten), pushes ref v2; store b, which has v1, pulls it.
        mp = st.mount("vol")["vol"]
        rng = random.Random(9)
        files = sorted(mp.iterdir())
        changed = 0
        for f in files[::10]:
            n = f.stat().st_size
            f.write_bytes(rng.randbytes(n))
            changed += n
        st.umount()
        r2 = hoard(srv, "push", url, "--store", st.path, "--volume", "vol", "--ref", "v2")
        srv.reset()
        w = hoard(srv, "pull", url, "--store", b.path, "--volume", "vol", "--ref", "v2")
        s = srv.stats()
        out["warm_90"] = {
            "changed_bytes": changed,
            "push_bytes_new": r2["bytes_new"],
            "pull_bytes_fetched": w["bytes_fetched"],
            "pull_bytes_down": w["bytes_down"],
            "pull_requests": w["requests"],
            "server_requests": s["requests"],
            "fraction_of_volume": round(w["bytes_down"] / out["pull"]["bytes_down"], 3),
        }
    finally:
        for s in ("a", "b"):
            subprocess.run(["fusermount3", "-u", "-z", str(work / f"mnt-vol")],
                           capture_output=True)
        srv.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
