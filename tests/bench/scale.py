#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""How hoard's costs grow with the store (docs/SCALING.md), as root:

    tests/bench/scale.py BUILD_DIR [GIB]

Fills a fresh store 1 GiB at a time (1 MiB files of random bytes: every
byte a unique chunk byte, the worst case for metadata) up to GIB (default
3), and after each GiB prints one JSON line: chunks, RocksDB table bytes
(all metadata) and blob bytes, the ingest time of that GiB, the mean cold
open + 64 KiB read at a random place of 200 random files (daemon remounted,
page cache dropped), and the daemon's RSS after the remount.
"""
import glob
import json
import os
import random
import subprocess
import sys
import time

B = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
GIB = int(sys.argv[2]) if len(sys.argv) > 2 else 3
S = "/var/tmp/scale-store"
M = "/var/tmp/scale-mnt"
def sh(*a): return subprocess.run(a, check=True, capture_output=True, text=True).stdout
subprocess.run(["fusermount3","-u",M], capture_output=True)
subprocess.run(["rm","-rf",S,M]); os.makedirs(M)
sh(f"{B}/hoard","init","--store",S)
sh(f"{B}/hoardfs","--store",S,f"v={M}")
pid=int(sh("pgrep","-f",f"store {S}").split()[0])
def sizes():
    sst=sum(os.path.getsize(p) for p in glob.glob(S+"/**/*.sst", recursive=True))
    blob=sum(os.path.getsize(p) for p in glob.glob(S+"/**/*.blob", recursive=True))
    return sst, blob
rng=random.Random(5)
total=0
for step in range(GIB):
    t=time.time()
    for i in range(1024):   # 1 GiB per step in 1 MiB files
        d=f"{M}/d{step}_{i//100}"; os.makedirs(d, exist_ok=True)
        with open(f"{d}/f{i}","wb") as f: f.write(os.urandom(1<<20))
    ingest=time.time()-t
    total+=1
    st=json.loads(sh(f"{B}/hoard","stats","--store",S,"--json"))
    subprocess.run(["fusermount3","-u",M]); time.sleep(1)
    sst,blob=sizes()
    sh(f"{B}/hoardfs","--store",S,f"v={M}")
    pid=int(sh("pgrep","-f",f"store {S}").split()[0])
    open("/proc/sys/vm/drop_caches","w").write("3")
    files=[(s,i) for s in range(step+1) for i in range(1024)]
    sample=rng.sample(files, 200)
    t=time.time()
    for s,i in sample:
        with open(f"{M}/d{s}_{i//100}/f{i}","rb") as f:
            f.seek(rng.randrange(0,(1<<20)-65536)); f.read(65536)
    lookup=(time.time()-t)/200
    rss=[l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0].split()[1]
    print(json.dumps(dict(gib=total, chunks=st["chunks"], unique=st["unique_bytes"], sst_bytes=sst,
        blob_bytes=blob, sst_per_chunk=round(sst/st["chunks"],1), ingest_s=round(ingest,1),
        cold_open_read_64k_ms=round(lookup*1000,2), rss_kb_after_remount=int(rss))), flush=True)
subprocess.run(["fusermount3","-u",M])
subprocess.run(["rm","-rf",S,M])
