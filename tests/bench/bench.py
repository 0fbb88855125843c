#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""hoard's benchmark: every figure of issue 5 against its baseline, in one run.

Run it through tests/bench/run (which installs the tools and builds a
release build); as root:

    tests/bench/run [--quick] [--out DIR] [--work DIR] [--build DIR] [--keep]

It makes two deterministic corpora (seeded; the same bytes on every run):

  pip  real wheels (Debian's /usr/share/python-wheels and wheels packed
       here from the Python packages Debian installed), near-duplicate
       "versions" of each (one module changed and re-zipped; then one more
       file appended to the archive), and pip-http-cache-like copies of
       every wheel (a response header in front of the body);
  hf   a model cache: three revisions of a safetensors model of fp16-like
       weights; rev2 changes ~10% of the tensors and has a longer JSON
       header (every tensor shifts), rev3 appends a tensor.  The ideal
       stored size is known exactly: the distinct tensor bytes plus the
       three headers.

and measures, each against its baseline in the same run (the machine is
shared and noisy, so only ratios are meaningful), the figures listed in
README.md ("Benchmarks").  The table goes to stdout, results.json and
results.md to the out dir.  Exit status: 0 when the run completed (whether
or not the targets are met), 1 when a step failed, 2 on a usage error.
"""
import argparse
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MB = 1_000_000
MiB = 1 << 20

SIZES = {
    # quick: the whole run takes about a minute
    "quick": dict(wheel_budget=6 * MiB, hidden=512, vocab=8192, layers=7,
                  inter=1408, readfile=256 * MiB, stat_files=10_000,
                  create_files=2_000, runs=2, ingest_runs=1),
    # full: a ~500 MB model (three revisions: ~1.6 GB) and a 1 GiB file
    "full": dict(wheel_budget=40 * MiB, hidden=1024, vocab=32000, layers=17,
                 inter=2816, readfile=1 << 30, stat_files=100_000,
                 create_files=10_000, runs=3, ingest_runs=2),
}
SEED = 20260501
CACHE_SIZE = 64 * MiB          # hoardfs --cache-size default
RSS_ALLOWANCE = 150 * MB       # issue 5: caches + 150 MB
SMALL_FILE_MAX = 8192          # create benchmark: 1..8192 bytes per file
ZIP_TIME = (2024, 1, 1, 0, 0, 0)
PEP440 = re.compile(r"\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?")


class BenchError(Exception):
    pass


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr,
          flush=True)


def run(args, check=True, env=None, **kw):
    p = subprocess.run([str(a) for a in args], capture_output=True,
                       text=True, env=env, **kw)
    if check and p.returncode != 0:
        raise BenchError(f"{' '.join(map(str, args))} exited "
                         f"{p.returncode}: {p.stderr.strip()[-2000:]}")
    return p


def timed(args, **kw):
    t0 = time.monotonic()
    run(args, **kw)
    return time.monotonic() - t0


def sync_fs():
    os.sync()


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def tree_bytes(path):
    """Sum of the sizes of the regular files under path (or of one file)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for n in files:
            p = os.path.join(root, n)
            if not os.path.islink(p):
                total += os.lstat(p).st_size
    return total


def tree_files(path):
    out = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for n in sorted(files):
            p = os.path.join(root, n)
            if os.path.isfile(p) and not os.path.islink(p):
                out.append(p)
    return out


# -- corpus (a): pip-like ---------------------------------------------------

def _dist_sources():
    """(name, version, metadata dir, [top-level paths]) of the pure and
    binary Python distributions Debian installed, sorted by name."""
    base = Path("/usr/lib/python3/dist-packages")
    out = []
    if not base.is_dir():
        return out
    for meta in sorted(base.iterdir()):
        if not meta.name.endswith((".dist-info", ".egg-info")) or not meta.is_dir():
            continue
        stem = meta.name.rsplit(".", 1)[0]
        if "-" not in stem:
            continue
        name, version = stem.split("-", 1)
        top = meta / "top_level.txt"
        if not top.exists():
            continue
        paths = []
        for line in top.read_text(errors="replace").split():
            for cand in (base / line, base / f"{line}.py"):
                if cand.exists():
                    paths.append(cand)
        if paths:
            out.append((name, version, meta, paths))
    return out


def _zip_write(zf, arcname, data):
    zi = zipfile.ZipInfo(arcname, ZIP_TIME)
    zi.compress_type = zipfile.ZIP_DEFLATED
    zi.external_attr = 0o644 << 16
    zf.writestr(zi, data, compresslevel=6)


def _write_wheel(path, members):
    """members: [(arcname, bytes)] in order; deterministic bytes."""
    with zipfile.ZipFile(path, "w") as zf:
        for arcname, data in members:
            _zip_write(zf, arcname, data)


def _wheel_from_dist(name, version, paths):
    """A wheel's members built from an installed distribution's files."""
    members = []
    for p in paths:
        if p.is_file():
            members.append((p.name, p.read_bytes()))
            continue
        for root, dirs, files in os.walk(p):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for n in sorted(files):
                if n.endswith(".pyc"):
                    continue
                f = Path(root) / n
                if f.is_symlink() or not f.is_file():
                    continue
                rel = f.relative_to(p.parent).as_posix()
                members.append((rel, f.read_bytes()))
    di = f"{name}-{version}.dist-info"
    members.append((f"{di}/METADATA",
                    f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                    f"Summary: packed from Debian's installed files\n".encode()))
    members.append((f"{di}/WHEEL", b"Wheel-Version: 1.0\nGenerator: hoard-bench\n"
                    b"Root-Is-Purelib: true\nTag: py3-none-any\n"))
    members.append((f"{di}/RECORD",
                    "".join(f"{a},,\n" for a, _ in members).encode()))
    return members


def _read_members(path):
    with zipfile.ZipFile(path) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def _next_version(members, rng, new_version):
    """One module changed (a line appended), the version bumped in METADATA
    and in the .dist-info directory's name: what a new release of a package
    looks like."""
    out = list(members)
    code = [i for i, (a, _) in enumerate(out) if a.endswith(".py")]
    if code:
        i = code[rng.randrange(len(code))]
        a, d = out[i]
        out[i] = (a, d + f"\n# release {new_version}: "
                  f"{rng.getrandbits(64):x}\n".encode())
    meta = [a for a, _ in out if a.endswith(".dist-info/METADATA")]
    if not meta:
        return out
    old_di = meta[0].rsplit("/", 1)[0]
    new_di = f"{old_di.rsplit('-', 1)[0]}-{new_version}.dist-info"
    renamed = []
    for a, d in out:
        if a == f"{old_di}/METADATA":
            d = re.sub(rb"(?m)^Version: .*$",
                       f"Version: {new_version}".encode(), d, count=1)
        elif a == f"{old_di}/RECORD":
            d = d.replace(f"{old_di}/".encode(), f"{new_di}/".encode())
        if a.startswith(old_di + "/"):
            a = new_di + a[len(old_di):]
        renamed.append((a, d))
    return renamed


def _http_cache_entry(url, body, rng):
    """pip's (cachecontrol) HTTP cache stores a response as a serialized
    header block followed by the body: the same wheel bytes, shifted."""
    hdr = (f"cc=4,HTTP/1.1 200 OK\r\nurl: {url}\r\n"
           f"content-type: application/octet-stream\r\n"
           f"etag: \"{rng.getrandbits(128):032x}\"\r\n"
           f"cache-control: max-age=365000000, immutable, public\r\n"
           f"content-length: {len(body)}\r\n"
           f"date: Mon, 01 Jan 2024 00:00:{rng.randrange(60):02d} GMT\r\n\r\n")
    return hdr.encode() + body


def make_pip_corpus(dest, budget, rng):
    """Wheels, near-duplicate versions, http-cache copies.  Returns a
    summary dict."""
    wheels = dest / "wheels"
    http = dest / "http"
    wheels.mkdir(parents=True)
    http.mkdir()
    bases = []   # (filename stem parts, members)
    deb = Path("/usr/share/python-wheels")
    for w in sorted(deb.glob("*.whl")) if deb.is_dir() else []:
        bases.append((w.name, _read_members(w), w.read_bytes()))
    size = sum(len(b[2]) for b in bases)
    built = []   # wheels packed here (installable with pip)
    for name, version, _meta, paths in _dist_sources():
        if size >= budget:
            break
        if not PEP440.fullmatch(version):
            continue
        name = re.sub(r"[-_.]+", "_", name)
        members = _wheel_from_dist(name, version, paths)
        raw = sum(len(d) for _, d in members)
        if raw > budget // 3:      # keep many packages, not one huge one
            continue
        fn = f"{name}-{version}-py3-none-any.whl"
        p = wheels / fn
        _write_wheel(p, members)
        bases.append((fn, members, p.read_bytes()))
        built.append(fn)
        size += p.stat().st_size
    if not bases:
        raise BenchError("no wheels found for the pip corpus")
    for fn, members, data in bases:
        name, version, rest = fn.split("-", 2)
        versions = [(fn, data)]
        v1 = _next_version(members, rng, f"{version}.post1")
        f1 = f"{name}-{version}.post1-{rest}"
        _write_wheel(wheels / f1, v1)
        versions.append((f1, (wheels / f1).read_bytes()))
        v2 = _next_version(v1, rng, f"{version}.post2") + [
            (f"{name}-{version}.post2.dist-info/entry_points.txt",
             f"[console_scripts]\n{name}-bench = {name}:main\n".encode())]
        f2 = f"{name}-{version}.post2-{rest}"
        _write_wheel(wheels / f2, v2)
        versions.append((f2, (wheels / f2).read_bytes()))
        if not (wheels / fn).exists():
            (wheels / fn).write_bytes(data)
        for vf, vdata in versions:
            key = f"{rng.getrandbits(224):056x}"
            d = http / key[0] / key[1] / key[2] / key[3]
            d.mkdir(parents=True, exist_ok=True)
            (d / key).write_bytes(_http_cache_entry(
                f"http://127.0.0.1/packages/{vf}", vdata, rng))
    return dict(base_wheels=len(bases), installable=built,
                files=len(tree_files(dest)),
                bytes=tree_bytes(dest))


# -- corpus (b): model cache --------------------------------------------------

# fp16 weights of a trained model: sign random, exponents clustered around
# 2^-6 .. 2^-9, mantissas random.  The high byte of each little-endian fp16
# is s|eeeee|mm; map a uniform byte to that distribution.
def _fp16_high_table():
    exps = [6] * 10 + [7] * 20 + [8] * 46 + [9] * 38 + [10] * 12 + [11] * 2
    assert len(exps) == 128
    return bytes((b & 0x80) | (exps[b & 0x7F] << 2) | (b & 0x3)
                 for b in range(256))


FP16_HIGH = _fp16_high_table()


def fp16_like(rng, n):
    buf = bytearray(rng.randbytes(n))
    buf[1::2] = bytes(buf[1::2]).translate(FP16_HIGH)
    return bytes(buf)


def _model_tensors(sz):
    h, v, inter = sz["hidden"], sz["vocab"], sz["inter"]
    t = [("model.embed_tokens.weight", [v, h])]
    for i in range(sz["layers"]):
        p = f"model.layers.{i}."
        t += [(p + "input_layernorm.weight", [h]),
              (p + "self_attn.q_proj.weight", [h, h]),
              (p + "self_attn.k_proj.weight", [h, h]),
              (p + "self_attn.v_proj.weight", [h, h]),
              (p + "self_attn.o_proj.weight", [h, h]),
              (p + "post_attention_layernorm.weight", [h]),
              (p + "mlp.gate_proj.weight", [inter, h]),
              (p + "mlp.up_proj.weight", [inter, h]),
              (p + "mlp.down_proj.weight", [h, inter])]
    t.append(("model.norm.weight", [h]))
    return t


def _nbytes(shape):
    n = 2
    for d in shape:
        n *= d
    return n


def safetensors_header(tensors, metadata):
    """tensors: [(name, shape, nbytes)] in data order.  Returns the full
    header: 8-byte little-endian length + JSON, padded with spaces to a
    multiple of 8 bytes (as the safetensors library writes it)."""
    hdr = {"__metadata__": metadata}
    off = 0
    for name, shape, nb in tensors:
        hdr[name] = {"dtype": "F16", "shape": shape,
                     "data_offsets": [off, off + nb]}
        off += nb
    js = json.dumps(hdr, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)
    return len(js).to_bytes(8, "little") + js


def write_safetensors(path, tensors, data, metadata):
    hdr = safetensors_header([(n, s, len(data[n])) for n, s in tensors],
                             metadata)
    with open(path, "wb") as f:
        f.write(hdr)
        for n, _s in tensors:
            f.write(data[n])
    return len(hdr)


def make_model_corpus(dest, sz, rng):
    """Three revisions under an HF-hub-like layout.  Returns a summary with
    the exact ideal stored size."""
    tensors = _model_tensors(sz)
    data = {n: fp16_like(rng, _nbytes(s)) for n, s in tensors}
    distinct = sum(len(d) for d in data.values())
    snap = dest / "hub" / "models--hoard--bench" / "snapshots"
    # rev1
    p1 = snap / "rev1"
    p1.mkdir(parents=True)
    h1 = write_safetensors(p1 / "model.safetensors", tensors, data,
                           {"format": "pt"})
    # rev2: ~10% of the tensors retrained, longer header
    k = max(1, round(len(tensors) / 10))
    changed = sorted(rng.sample(range(len(tensors)), k))
    data2 = dict(data)
    for i in changed:
        n, s = tensors[i]
        data2[n] = fp16_like(rng, _nbytes(s))
        distinct += len(data2[n])
    meta2 = {"format": "pt", "revision": "2",
             "notes": "fine-tuned; " + "x" * 200}
    p2 = snap / "rev2"
    p2.mkdir()
    h2 = write_safetensors(p2 / "model.safetensors", tensors, data2, meta2)
    # rev3: rev2 plus one appended tensor
    extra = ("lm_head.adapter.weight", [sz["inter"], sz["hidden"]])
    data3 = dict(data2)
    data3[extra[0]] = fp16_like(rng, _nbytes(extra[1]))
    distinct += len(data3[extra[0]])
    p3 = snap / "rev3"
    p3.mkdir()
    h3 = write_safetensors(p3 / "model.safetensors", tensors + [extra], data3,
                           {**meta2, "revision": "3"})
    for r in ("rev1", "rev2", "rev3"):
        (snap / r / "config.json").write_text(json.dumps(
            {"hidden_size": sz["hidden"], "num_hidden_layers": sz["layers"],
             "vocab_size": sz["vocab"], "revision": r}, indent=2) + "\n")
    configs = sum((snap / r / "config.json").stat().st_size
                  for r in ("rev1", "rev2", "rev3"))
    ideal = distinct + h1 + h2 + h3 + configs
    return dict(tensors=len(tensors), changed_in_rev2=len(changed),
                headers=[h1, h2, h3], distinct_tensor_bytes=distinct,
                ideal_stored_bytes=ideal,
                model_files=[str(snap / r / "model.safetensors")
                             for r in ("rev1", "rev2", "rev3")],
                bytes=tree_bytes(dest))


def make_big_file(path, nbytes, rng):
    with open(path, "wb") as f:
        left = nbytes
        while left:
            n = min(left, 32 * MiB)
            f.write(fp16_like(rng, n))
            left -= n


# -- the plain-file tier (issue 10) ----------------------------------------------

def plain_state(path):
    """True / False: the file's user.hoard.info says whether a verified
    plain copy is present; None: the daemon has no plain tier (the key is
    absent) or the xattr cannot be read."""
    try:
        info = json.loads(os.getxattr(path, "user.hoard.info"))
    except (OSError, ValueError):
        return None
    p = info.get("plain")
    return None if p is None else bool(p)


def wait_plain(paths, timeout):
    """Wait (bounded) until every file in paths has a plain copy.  Returns
    {path: state} (see plain_state) and the seconds waited; never waits
    when the daemon has no tier."""
    t0 = time.monotonic()
    while True:
        st = {str(p): plain_state(p) for p in paths}
        if all(v is not False for v in st.values()) or \
                time.monotonic() - t0 > timeout:
            return st, round(time.monotonic() - t0, 2)
        time.sleep(0.2)


# -- hoard daemon ---------------------------------------------------------------

def wait_mounted(proc, what, mps, logfile, timeout):
    """Wait until every mountpoint in mps is mounted by proc (a Popen)."""
    deadline = time.time() + timeout
    while not all(is_mounted(mp) for mp in mps):
        if proc.poll() is not None:
            raise BenchError(f"{what} exited {proc.returncode} "
                             f"before mounting; see {logfile}")
        if time.time() > deadline:
            raise BenchError(f"{what} did not mount within {timeout} s")
        time.sleep(0.02)


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def proc_cpu_s(pid):
    """CPU seconds process pid has used so far (user + system, all its
    threads; /proc/PID/stat, in clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def per_round(what, sides, a, b):
    """Each round's a over b (lists of seconds in round order), logged with
    their median: the spread a best-of-each-side row comes from."""
    ratios = [round(x / y, 3) for x, y in zip(sides.get(a, []),
                                              sides.get(b, []))]
    if ratios:
        log(f"{what}: {a} / {b} per round {ratios} (median "
            f"{statistics.median(ratios):.3f})")
    return ratios


class Daemon:
    """hoardfs in the foreground as our child, so that its exit status and
    rusage (bytes written by all its threads, up to its very end) come back
    to us with wait4.  /proc/PID/status (VmHWM: the peak RSS) and
    /proc/PID/io are sampled every 10 ms while it runs."""

    def __init__(self, build, store, mounts, logfile, cpus=None, extra=()):
        self.mounts = mounts
        args = [str(build / "hoardfs"), "-f", "--store", str(store), *extra]
        for name, mp in mounts.items():
            Path(mp).mkdir(parents=True, exist_ok=True)
            args.append(f"{name}={mp}")
        if cpus is not None:
            args = ["taskset", "-c", cpus] + args
        self.log = open(logfile, "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        self.samples = {"VmHWM": 0, "write_bytes": 0,
                        "cancelled_write_bytes": 0}
        wait_mounted(self.proc, "hoardfs", list(mounts.values()), logfile, 60)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self):
        pid = self.proc.pid
        while not self._stop.is_set():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            self.samples["VmHWM"] = int(line.split()[1]) * 1024
                with open(f"/proc/{pid}/io") as f:
                    for line in f:
                        k, v = line.split(":")
                        if k in self.samples:
                            self.samples[k] = int(v)
            except (OSError, ValueError):
                pass
            self._stop.wait(0.01)

    def cpu(self):
        """CPU seconds the daemon has used so far (proc_cpu_s)."""
        return proc_cpu_s(self.proc.pid)

    def stop(self):
        """Unmount every volume; returns the daemon's wait4 figures."""
        for mp in self.mounts.values():
            run(["fusermount3", "-u", mp])
        _pid, status, ru = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self._stop.set()
        self._thread.join()
        self.log.close()
        if self.proc.returncode != 0:
            raise BenchError(f"hoardfs exited {self.proc.returncode}")
        # VmHWM is the high-water mark of the daemon's own address space;
        # ru_maxrss is not usable: exec keeps the larger of it and the
        # RSS of the forked copy of this (big) Python process.
        return dict(peak_rss=self.samples["VmHWM"],
                    write_bytes=ru.ru_oublock * 512,
                    cpu_s=round(ru.ru_utime + ru.ru_stime, 3),
                    ctx_switches=dict(voluntary=ru.ru_nvcsw,
                                      involuntary=ru.ru_nivcsw),
                    ru_maxrss=ru.ru_maxrss * 1024,
                    sampled=dict(self.samples))


class NullFs:
    """tests/hoard-nullfs (tests/bench/nullfs.c) mounted at mp: a FUSE
    filesystem that keeps everything in memory and does no storage work,
    mounted and served like hoardfs.  What a workload takes on it is the
    kernel's and libfuse's share: the floor of any FUSE filesystem.
    discard: keep no file data (the ingest floor); cpus: taskset list."""

    def __init__(self, exe, mp, logfile, cpus=None, discard=False):
        self.mp = Path(mp)
        self.mp.mkdir(parents=True, exist_ok=True)
        self.log = open(logfile, "ab")
        args = [str(exe)] + (["--discard"] if discard else []) + [str(self.mp)]
        if cpus is not None:
            args = ["taskset", "-c", cpus] + args
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        wait_mounted(self.proc, "hoard-nullfs", [self.mp], logfile, 30)

    def stop(self):
        """Unmount; returns the null fs's CPU seconds (wait4 rusage)."""
        run(["fusermount3", "-u", self.mp])
        _pid, status, ru = os.wait4(self.proc.pid, 0)
        rc = self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.log.close()
        if rc != 0:
            raise BenchError(f"hoard-nullfs exited {rc}")
        return round(ru.ru_utime + ru.ru_stime, 3)


# -- the benchmark ----------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.size = "quick" if args.quick else "full"
        self.sz = SIZES[self.size]
        self.build = Path(args.build).resolve()
        self.hoard = self.build / "hoard"
        self.tool = self.build / "tests" / "hoard-bench"
        self.nullfs = self.build / "tests" / "hoard-nullfs"
        self.work = Path(args.work).resolve()
        self.rows = []
        self.detail = {}
        # the plain-file tier and passthrough (issue 10), when this
        # hoardfs has them: what was present when, and its disk use
        helptext = run([self.build / "hoardfs", "--help"], check=False).stdout
        self.tier = dict(passthrough_option="--passthrough" in helptext,
                         plain_size_option="--plain-size" in helptext)
        self.detail["tier"] = self.tier

    # rows: kind "higher": ratio = hoard / baseline and must be >= target;
    # "lower": ratio = hoard / baseline and must be <= target ("<" when
    # strict); "reference": no target (target "none", met None), a figure
    # that explains others (the null FUSE fs rows: there the "hoard"
    # column holds what the figure names, e.g. the null fs's time).
    def row(self, figure, unit, hoard, baseline, target, kind, strict=False):
        ratio = hoard / baseline if baseline else float("inf")
        if kind == "reference":
            self.rows.append(dict(figure=figure, unit=unit, hoard=hoard,
                                  baseline=baseline, ratio=ratio,
                                  target="none", met=None))
            log(f"{figure}: {hoard:.4g} {unit}, baseline {baseline:.4g} "
                f"{unit}, ratio {ratio:.3f} (reference, no target)")
            return
        if kind == "higher":
            met = ratio >= target
            tstr = f">= {target:g}x"
        else:
            met = ratio < target if strict else ratio <= target
            tstr = f"{'<' if strict else '<='} {target:g}x"
        self.rows.append(dict(figure=figure, unit=unit, hoard=hoard,
                              baseline=baseline, ratio=ratio, target=tstr,
                              met=bool(met)))
        log(f"{figure}: hoard {hoard:.4g} {unit}, baseline {baseline:.4g} "
            f"{unit}, ratio {ratio:.3f} ({tstr}: {'yes' if met else 'no'})")

    def run_cmd(self, args, check=True):
        return run(args, check=check)

    def daemon(self, store, mounts, logfile):
        return Daemon(self.build, store, mounts, logfile)

    def volume_phase(self):
        """The clone and CI job figures (issue 12): volume_bench.py."""
        from volume_bench import VolumeBench
        VolumeBench(self, log).run()

    def hb(self, *args):
        return json.loads(run([self.tool, *args]).stdout)

    # -- phases ----------------------------------------------------------------
    def make_corpora(self):
        src = self.work / "src"
        self.src_pip = src / "pip"
        self.src_hf = src / "hf"
        t0 = time.monotonic()
        self.pip = make_pip_corpus(self.src_pip, self.sz["wheel_budget"],
                                   random.Random(SEED))
        self.model = make_model_corpus(self.src_hf, self.sz,
                                       random.Random(SEED + 1))
        self.local = self.work / "local"
        self.local.mkdir()
        make_big_file(self.local / "big.bin", self.sz["readfile"],
                      random.Random(SEED + 2))
        sync_fs()
        self.detail["corpora"] = dict(pip=self.pip, model=self.model,
                                      seconds=round(time.monotonic() - t0, 2))
        log(f"corpora: pip {self.pip['bytes'] / MB:.1f} MB in "
            f"{self.pip['files']} files, model cache "
            f"{self.model['bytes'] / MB:.1f} MB (ideal stored "
            f"{self.model['ideal_stored_bytes'] / MB:.1f} MB), "
            f"read file {self.sz['readfile'] / MiB:.0f} MiB")

    def bound(self):
        files = tree_files(self.src_pip) + tree_files(self.src_hf)
        b = self.hb("bound", *files)
        self.detail["bound"] = b
        self.bound_bps = b["bytes"] / b["seconds"]
        log(f"one-core bound: {self.bound_bps / MB:.0f} MB/s over "
            f"{b['bytes'] / MB:.1f} MB ({b['unique_bytes'] / MB:.1f} MB in "
            f"distinct chunks, {b['stored_bytes'] / MB:.1f} MB compressed)")

    def ingest(self, name, cpus=None):
        """Best of ingest_runs fresh stores; the first store is kept (the
        read phase uses it) and gives the stats, write and RSS figures."""
        runs = []
        for i in range(self.sz["ingest_runs"]):
            runs.append(self.ingest_once(f"{name}-{i}", cpus))
            if i:
                shutil.rmtree(runs[-1]["store"])
        res = dict(runs[0])
        res["run_seconds"] = [r["seconds"] for r in runs]
        res["seconds"] = min(res["run_seconds"])
        res["daemon_runs"] = [r["daemon"] for r in runs]
        self.detail[f"ingest_{name}"] = res
        return res

    def ingest_once(self, name, cpus=None):
        store = self.work / f"store-{name}"
        run([self.hoard, "init", "--store", store])
        mounts = {"pip": self.work / f"mnt-{name}-pip",
                  "huggingface": self.work / f"mnt-{name}-hf"}
        sync_fs()
        d = Daemon(self.build, store, mounts, self.work / f"hoardfs-{name}.log",
                   cpus=cpus)
        t0 = time.monotonic()
        run(["cp", "-a", f"{self.src_pip}/.", mounts["pip"]])
        run(["cp", "-a", f"{self.src_hf}/.", mounts["huggingface"]])
        figs = d.stop()
        sync_fs()
        secs = time.monotonic() - t0
        stats = json.loads(run([self.hoard, "stats", "--json", "--store",
                                store]).stdout)
        logical = self.pip["bytes"] + self.model["bytes"]
        res = dict(seconds=secs, bytes=logical, stats=stats, daemon=figs,
                   store=str(store), store_dir_bytes=tree_bytes(store))
        log(f"ingest ({name}): {logical / MB:.1f} MB in {secs:.2f} s "
            f"({logical / secs / MB:.0f} MB/s)")
        return res

    def ingest_floor(self, name, cpus=None):
        """The ingest's FUSE floor: the same cp -a of both corpora into
        tests/hoard-nullfs --discard (mounted as hoardfs is, data thrown
        away), timed up to its unmount; best of ingest_runs."""
        runs = []
        for i in range(self.sz["ingest_runs"]):
            mp = self.work / f"mnt-null-{name}-{i}"
            sync_fs()
            nfs = NullFs(self.nullfs, mp, self.work / f"nullfs-{name}.log",
                         cpus=cpus, discard=True)
            t0 = time.monotonic()
            run(["cp", "-a", f"{self.src_pip}/.", mp / "pip"])
            run(["cp", "-a", f"{self.src_hf}/.", mp / "huggingface"])
            cpu = nfs.stop()
            runs.append(dict(seconds=time.monotonic() - t0, cpu_s=cpu))
        logical = self.pip["bytes"] + self.model["bytes"]
        res = dict(seconds=min(r["seconds"] for r in runs), runs=runs,
                   bytes=logical)
        self.detail[f"ingest_null_{name}"] = res
        log(f"ingest, null FUSE fs ({name}): {logical / MB:.1f} MB in "
            f"{res['seconds']:.2f} s ({logical / res['seconds'] / MB:.0f} "
            f"MB/s)")
        return res

    def baseline_tools(self):
        env = dict(os.environ)
        env.update(RESTIC_PASSWORD="hoard-bench",
                   RESTIC_CACHE_DIR=str(self.work / "restic-cache"),
                   BORG_BASE_DIR=str(self.work / "borg-base"),
                   BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes",
                   BORG_RELOCATED_REPO_ACCESS_IS_OK="yes")

        def restic(repo, src):
            run(["restic", "init", "--repo", repo, "--repository-version",
                 "2"], env=env)
            sync_fs()
            t = timed(["restic", "--repo", repo, "backup", "--quiet", "."],
                      env=env, cwd=src)
            sync_fs()
            return t

        def borg(repo, src):
            run(["borg", "init", "--encryption", "none", repo], env=env)
            sync_fs()
            t = timed(["borg", "create", "--compression", "zstd,1",
                       f"{repo}::bench", "."], env=env, cwd=src)
            sync_fs()
            return t

        def casync(repo, src):
            repo.mkdir()
            sync_fs()
            t = timed(["casync", "make", f"--store={repo}/store",
                       "--chunk-size=16384:65536:262144",
                       "--compression=zstd", f"{repo}/index.caidx", src],
                      env=env)
            sync_fs()
            return t

        # restic: repository format 2 (zstd, its default "auto" level);
        # borg 1.2: zstd level 1, its default chunker (buzhash, ~2 MiB);
        # casync: the same 16/64/256 KiB chunking as hoard, zstd.
        # Each timed step ends with sync, as hoard's ends with unmount +
        # sync; the best of ingest_runs fresh repositories counts.
        res = {}
        for tool, fn in (("restic", restic), ("borg", borg),
                         ("casync", casync)):
            for corpus, src in (("pip", self.src_pip), ("hf", self.src_hf)):
                times = []
                for i in range(self.sz["ingest_runs"]):
                    repo = self.work / f"{tool}-{corpus}"
                    shutil.rmtree(repo, ignore_errors=True)
                    times.append(fn(repo, src))
                res.setdefault(tool, {})[corpus] = dict(
                    seconds=min(times), run_seconds=times,
                    bytes=tree_bytes(repo))
                shutil.rmtree(repo)
        for tool, r in res.items():
            log(f"{tool}: " + ", ".join(
                f"{c} {v['seconds']:.2f} s {v['bytes'] / MB:.1f} MB"
                for c, v in r.items()))
        self.detail["tools"] = res
        return res

    def stload(self, path):
        """tests/bench/stload.py: a safetensors load (header, mmap, every
        tensor copied out), timed inside the process."""
        return json.loads(run(["/usr/bin/python3",
                               REPO / "tests" / "bench" / "stload.py",
                               path]).stdout)

    def tier_sample(self, store, when):
        """plain_bytes / plain_files / plain_hits / passthrough and the
        LOOKUP windows' counts (lookup_*) of `hoard stats --json` (asked of
        the running daemon), kept in the detail; absent keys (no tier, an
        older daemon) are recorded as absent."""
        try:
            st = json.loads(run([self.hoard, "stats", "--json", "--store",
                                 store]).stdout)
        except (BenchError, ValueError) as e:
            st = {"error": str(e)[:200]}
        snap = {k: st.get(k) for k in ("plain_bytes", "plain_files",
                                        "plain_hits", "passthrough",
                                        "lookup_scans", "lookup_window_hits",
                                        "lookup_prefetch_bytes")}
        snap["when"] = when
        self.tier.setdefault("samples", []).append(snap)

    def read_phase(self, store):
        """Reads, mmap, safetensors loads, stat and small-file creation,
        hoard vs local disk.  With --only read, the reads only."""
        sz, runs = self.sz, self.sz["runs"]
        reads_only = self.args.only == "read"
        mounts = {"bench": self.work / "mnt-read-bench",
                  "huggingface": self.work / "mnt-read-hf"}
        logf = self.work / "hoardfs-read.log"
        store_bytes0 = tree_bytes(store)
        d = Daemon(self.build, store, mounts, logf)
        mnt = mounts["bench"]
        t0 = time.monotonic()
        run(["cp", self.local / "big.bin", mnt / "big.bin"])
        log(f"copied the read file into the mount in "
            f"{time.monotonic() - t0:.1f} s")
        # never-read files for the first-read figure: the same bytes
        # (deduplicated: no new chunks), one new file per run, so each run
        # reads a file that has no plain copy and was never opened
        t0 = time.monotonic()
        for i in range(runs):
            run(["cp", self.local / "big.bin", mnt / f"first{i}.bin"])
        log(f"copied {runs} never-read files into the mount in "
            f"{time.monotonic() - t0:.1f} s")
        if not reads_only:
            for base in (self.local, mnt):
                (base / "stat").mkdir()
                self.hb("mkfiles", base / "stat", str(sz["stat_files"]), "0")
        d.stop()
        # the FUSE floor: the same stat and create measurements on a null
        # FUSE fs, mounted for the whole phase (its files live in its
        # memory); "cold" there is the page, dentry and inode caches
        # dropped (the kernel forgets its inodes: every lstat is a LOOKUP)
        nmnt = self.work / "mnt-null"
        nfs = None
        if not reads_only:
            nfs = NullFs(self.nullfs, nmnt, self.work / "nullfs.log")
            (nmnt / "stat").mkdir()
            self.hb("mkfiles", nmnt / "stat", str(sz["stat_files"]), "0")
        rel_model = Path(self.model["model_files"][0]).relative_to(self.src_hf)
        local_model = self.src_hf / rel_model
        hoard_model = mounts["huggingface"] / rel_model
        hoard_big = mnt / "big.bin"
        res = {}
        plain = self.tier.setdefault("plain_state", {})
        wait_s = 30 if self.size == "quick" else 120

        def fresh(extra=()):
            """A fresh daemon (empty chunk cache, RocksDB reopened)."""
            return Daemon(self.build, store, mounts, logf, extra=extra)

        def best(key, side, value):
            res.setdefault(key, {}).setdefault(side, []).append(value)

        def settle(key, paths):
            """After a read that may start plain copies: wait (bounded)
            for them, so they do not run under the next measurement;
            record what was present."""
            st, waited = wait_plain(paths, wait_s)
            plain.setdefault(key, []).append(dict(state=st, waited=waited))
            return st

        # cold: a fresh daemon and the page cache dropped, for every run.
        # The first read of a never-read file (no plain copy: the daemon's
        # own read path, with the copy starting in the background when the
        # daemon has a plain tier) and the old cold rows: the same file
        # each run, so with a tier, later runs may find a copy (recorded
        # in detail.tier.plain_state.seq_cold)
        for i in range(runs):
            drop_caches()
            best("seq_cold", "local",
                 self.hb("seqread", self.local / "big.bin")["seconds"])
            d = fresh()
            drop_caches()
            plain.setdefault("first_read_before", []).append(
                plain_state(mnt / f"first{i}.bin"))
            cpu0 = d.cpu()
            best("first_read", "hoard",
                 self.hb("seqread", mnt / f"first{i}.bin")["seconds"])
            # the daemon's CPU for it: steadier than the time on a busy
            # machine (a background plain copy would add to it)
            self.detail.setdefault("first_read_daemon_cpu_s_per_gib", []).append(
                round((d.cpu() - cpu0) * (1 << 30) / sz["readfile"], 3))
            settle("first_read", [mnt / f"first{i}.bin"])
            drop_caches()
            plain.setdefault("seq_cold", []).append(plain_state(hoard_big))
            best("seq_cold", "hoard", self.hb("seqread", hoard_big)["seconds"])
            settle("seq_cold_after", [hoard_big])
            drop_caches()
            plain.setdefault("mmap_cold", []).append(plain_state(hoard_model))
            best("mmap_cold", "hoard", self.hb("mmap", hoard_model)["seconds"])
            settle("mmap_cold_after", [hoard_model])
            if not reads_only:
                self.stat_cold_walk(res, "hoard", mnt / "stat", d.proc.pid)
            self.tier_sample(store, f"cold run {i}")
            d.stop()
            drop_caches()
            best("mmap_cold", "local", self.hb("mmap", local_model)["seconds"])
            if not reads_only:
                self.stat_cold_walk(res, "local", self.local / "stat")
                self.stat_cold_walk(res, "null", nmnt / "stat", nfs.proc.pid)
        # more cold walks for the stat rows alone, up to 5 of each side as
        # for the create rows: on this host one walk of either side can
        # move 10-20% within minutes, and a best of 3 keeps that luck
        for i in range(runs, max(runs, 5) if not reads_only else 0):
            d = fresh()
            self.stat_cold_walk(res, "hoard", mnt / "stat", d.proc.pid)
            d.stop()
            self.stat_cold_walk(res, "local", self.local / "stat")
            self.stat_cold_walk(res, "null", nmnt / "stat", nfs.proc.pid)
        res["first_read"]["local"] = list(res["seq_cold"]["local"])
        # cold with the plain copy present: both files read once, the
        # copies waited for (bounded; if none comes, still measured, and
        # detail.tier says no copy was present), then each run with the
        # page cache dropped; the safetensors load (tests/bench/stload.py)
        # cold on both sides
        d = fresh()
        self.hb("seqread", hoard_big)
        self.hb("mmap", hoard_model)
        settle("copy_present_setup", [hoard_big, hoard_model])
        for i in range(runs):
            drop_caches()
            plain.setdefault("seq_cold_copy", []).append(
                plain_state(hoard_big))
            best("seq_cold_copy", "hoard",
                 self.hb("seqread", hoard_big)["seconds"])
            drop_caches()
            plain.setdefault("mmap_cold_copy", []).append(
                plain_state(hoard_model))
            best("mmap_cold_copy", "hoard",
                 self.hb("mmap", hoard_model)["seconds"])
            drop_caches()
            best("st_cold", "hoard", self.stload(hoard_model)["seconds"])
            drop_caches()
            best("st_cold", "local", self.stload(local_model)["seconds"])
        res["seq_cold_copy"]["local"] = list(res["seq_cold"]["local"])
        res["mmap_cold_copy"]["local"] = list(res["mmap_cold"]["local"])
        self.tier_sample(store, "cold, copies present")
        # cross-check of the cold sequential read with fio (same pattern:
        # 1 MiB psync reads), recorded in the detail only
        def fio(path):
            out = run(["fio", "--name=seq", f"--filename={path}", "--rw=read",
                       "--bs=1M", "--ioengine=psync", "--readonly",
                       "--invalidate=0", "--output-format=json"]).stdout
            return json.loads(out)["jobs"][0]["read"]["bw_bytes"]

        d.stop()
        cross = {}
        if shutil.which("fio"):
            drop_caches()
            cross["local"] = fio(self.local / "big.bin")
            d = fresh()
            drop_caches()
            cross["hoard"] = fio(hoard_big)
            d.stop()
            self.detail["fio_seq_cold_bytes_per_s"] = cross

        # warm: everything read once (and its plain copy waited for), then
        # measured
        def warm(d_sides, suffix=""):
            for side, big, model, stat in d_sides:
                if big:
                    self.hb("seqread", big)
                    self.hb("mmap", model)
                    self.stload(model)
                    if side == "hoard":
                        settle("warm" + suffix, [big, model])
                if stat and not reads_only:
                    self.hb("statfiles", stat, str(sz["stat_files"]))
                for _ in range(max(runs, 5)):   # short: more runs, best kept
                    if big:
                        best("seq_warm" + suffix, side,
                             self.hb("seqread", big)["seconds"])
                        best("mmap_warm" + suffix, side,
                             self.hb("mmap", model)["seconds"])
                        if not suffix:
                            best("st_warm", side,
                                 self.stload(model)["seconds"])
                    if stat and not reads_only:
                        best("stat_warm", side, self.hb(
                            "statfiles", stat,
                            str(sz["stat_files"]))["seconds"])

        d = fresh()
        warm((("local", self.local / "big.bin", local_model,
               self.local / "stat"),
              ("hoard", hoard_big, hoard_model, mnt / "stat"),
              ("null", None, None, nmnt / "stat")))
        self.tier_sample(store, "warm")
        if not reads_only:
            self.pip_install(mnt, best)
            # create + write + close of small files (not synced, either side)
            self.create_rounds(res, [("local", self.local), ("hoard", mnt),
                                     ("null", nmnt)],
                               {"hoard": d.proc.pid, "null": nfs.proc.pid})
        self.tier_sample(store, "end")
        d.stop()
        if nfs:
            nfs.stop()
        # warm with passthrough off (reference): the daemon's own read
        # path over pages it already served (a daemon without the option
        # has no passthrough: then this is the default daemon again)
        extra = ["--passthrough=off"] if self.tier["passthrough_option"] \
            else []
        d = fresh(extra)
        warm((("local", self.local / "big.bin", local_model, None),
              ("hoard", hoard_big, hoard_model, None)), suffix="_nopt")
        d.stop()
        self.tier["store_bytes"] = dict(before=store_bytes0,
                                        after=tree_bytes(store))
        self.detail["reads"] = res
        return {k: {s: min(v) for s, v in sides.items()}
                for k, sides in res.items()}

    def stat_cold_walk(self, res, side, path, pid=None):
        """One cold walk of the stat files at path (the page cache dropped
        first) into res["stat_cold"][side]; with pid, that daemon's CPU
        for the walk into the detail, steadier than the times on a busy
        machine."""
        drop_caches()
        cpu0 = proc_cpu_s(pid) if pid else 0
        res.setdefault("stat_cold", {}).setdefault(side, []).append(
            self.hb("statfiles", path, str(self.sz["stat_files"]))["seconds"])
        if pid:
            self.detail.setdefault("stat_cold_daemon_cpu_s", {}).setdefault(
                side, []).append(round(proc_cpu_s(pid) - cpu0, 2))

    def stat_phase(self):
        """--only stat: the stat figures alone, cold and warm, on hoard,
        the local disk and the null FUSE fs, the sides taking turns (a
        fresh store of stat_files empty files; no corpora)."""
        sz, runs = self.sz, max(self.sz["runs"], 5)   # as the full run's
        n = str(sz["stat_files"])
        self.local = self.work / "local"
        self.local.mkdir()
        store = self.work / "store-stat"
        run([self.hoard, "init", "--store", store])
        mnt = self.work / "mnt-stat"
        logf = self.work / "hoardfs-stat.log"
        nmnt = self.work / "mnt-null"
        dirs = {"local": self.local / "stat", "hoard": mnt / "stat",
                "null": nmnt / "stat"}
        # the files are made by one daemon and walked by a fresh one, as
        # in the full run (the records in tables, not in memtables)
        d = Daemon(self.build, store, {"bench": mnt}, logf)
        dirs["hoard"].mkdir()
        self.hb("mkfiles", dirs["hoard"], n, "0")
        d.stop()
        d = Daemon(self.build, store, {"bench": mnt}, logf)
        nfs = NullFs(self.nullfs, nmnt, self.work / "nullfs.log")
        res = {}
        try:
            for side in ("local", "null"):
                dirs[side].mkdir()
                self.hb("mkfiles", dirs[side], n, "0")
            sides = list(dirs)
            pids = {"hoard": d.proc.pid, "null": nfs.proc.pid}
            for i in range(runs):
                for side in sides[i % 3:] + sides[:i % 3]:  # rotated
                    self.stat_cold_walk(res, side, dirs[side], pids.get(side))
            self.tier_sample(store, "after the cold walks")
            for side in sides:
                self.hb("statfiles", dirs[side], n)
            for _ in range(max(runs, 5)):
                for side in sides:
                    res.setdefault("stat_warm", {}).setdefault(
                        side, []).append(
                        self.hb("statfiles", dirs[side], n)["seconds"])
        finally:
            nfs.stop()
            d.stop()
        self.detail["reads"] = res
        return {k: {s: min(v) for s, v in sides.items()}
                for k, sides in res.items()}

    def pip_install(self, mnt, best):
        """pip install of the packed wheels (30+ packages) from a local
        index over http, with pip's HTTP cache on the mount vs on the local
        disk.  The cache is filled once on the local disk by pip and copied
        to the mount; in the measured runs pip revalidates only the index
        pages (304) and takes every wheel from its cache.  --no-compile:
        byte-compiling is CPU work that does not touch the cache."""
        sys.path.insert(0, str(REPO / "tests" / "e2e"))
        from helpers_pip import PackageIndex, pip_env
        wheels = self.src_pip / "wheels"
        reqs = []
        for fn in self.pip["installable"]:
            name, version = fn.split("-")[:2]
            reqs.append(f"{name}=={version}")
        idx = PackageIndex(sorted(wheels.glob("*.whl"))).start()
        env = pip_env()
        env.pop("PIP_FIND_LINKS", None)

        def install(cache, target):
            shutil.rmtree(target, ignore_errors=True)
            # the writeback of the previous install's files out of the
            # way, untimed, so no install runs behind another's
            os.sync()
            mark = idx.mark()
            t = timed(["/usr/bin/python3", "-m", "pip", "install", "--no-deps",
                       "--no-compile", "--quiet", "--target", target,
                       "--cache-dir", cache, "--index-url", idx.url,
                       "--trusted-host", "127.0.0.1", *reqs], env=env)
            reqs_seen = idx.requests_since(mark)
            shutil.rmtree(target, ignore_errors=True)
            return t, reqs_seen

        try:
            caches = {"local": self.local / "pipcache", "hoard": mnt / "pipcache"}
            target = self.work / "pip-target"
            install(caches["local"], target)
            run(["cp", "-a", caches["local"], caches["hoard"]])
            # one untimed install on each side first: the first install
            # after the fill ran 15-45% faster than every later one (in
            # each of six full runs both sides' first timed round was that
            # side's best; the cause is not known), and a runner's cache is
            # past its first install after its first job
            for side in ("local", "hoard"):
                install(caches[side], target)
            fetched, times = {}, {}
            # pip's time on this machine drifts and jumps from run to run
            # (2.3-6.6 s for the same local install): more runs, and each
            # round starts with the other side, so neither gets the quiet
            # first slot every time
            for i in range(max(self.sz["runs"], 5)):
                for side in (("local", "hoard") if i % 2 == 0
                             else ("hoard", "local")):
                    t, seen = install(caches[side], target)
                    best("pip_install", side, t)
                    times.setdefault(side, []).append(t)
                    fetched.setdefault(side, []).append(
                        sum(1 for r in seen if r[1].startswith("/packages/")))
        finally:
            idx.stop()
        per_run = per_round("pip install", times, "hoard", "local")
        self.detail["pip_install"] = dict(packages=len(reqs),
                                          wheels_fetched_per_run=fetched,
                                          per_run_hoard_vs_local=per_run)
        self.pip_packages = len(reqs)

    def create_only(self):
        """--only create: the create+write+close figure alone (a new
        store, no corpora): hoard, the null FUSE fs and the local disk,
        the same rounds as in the full run (create_rounds)."""
        self.local = self.work / "local"
        self.local.mkdir()
        store = self.work / "store-create"
        run([self.hoard, "init", "--store", store])
        mnt = self.work / "mnt-create"
        d = Daemon(self.build, store, {"bench": mnt},
                   self.work / "hoardfs-create.log")
        nmnt = self.work / "mnt-null"
        nfs = NullFs(self.nullfs, nmnt, self.work / "nullfs.log")
        res = {}
        try:
            self.create_rounds(res, [("local", self.local), ("hoard", mnt),
                                     ("null", nmnt)],
                               {"hoard": d.proc.pid, "null": nfs.proc.pid})
        finally:
            d.stop()
            nfs.stop()
        self.detail["reads"] = res
        return {k: {s: min(v) for s, v in sides.items()}
                for k, sides in res.items()}

    def create_rounds(self, res, sides, pids):
        """The create figure's rounds into res["create"][side], for the
        full run and --only create alike: at least 5 rounds (the figure is
        short and noisy), the sides' order rotated so that none always
        runs first; the daemons' CPU (all threads) per created file beside
        it, steadier than the wall time on a loaded machine."""
        sz = self.sz
        cpu = {s: [] for s in pids}
        for i in range(max(sz["runs"], 5)):
            for side, base in sides[i % 3:] + sides[:i % 3]:
                dd = base / f"create{i}"
                dd.mkdir()
                c0 = proc_cpu_s(pids[side]) if side in pids else 0
                res.setdefault("create", {}).setdefault(side, []).append(
                    self.hb("mkfiles", dd, str(sz["create_files"]),
                            str(SMALL_FILE_MAX))["seconds"])
                if side in pids:
                    cpu[side].append((proc_cpu_s(pids[side]) - c0) * 1e6
                                     / sz["create_files"])
        self.detail["create_cpu_us_per_file"] = cpu
        self.create_cpu = {s: statistics.median(v) for s, v in cpu.items()}

    def create_rows(self, reads):
        n = self.sz["create_files"]
        self.row(f"create+write+close of {n:,} small files (vs local disk)",
                 "s", reads["create"]["hoard"], reads["create"]["local"], 3.0,
                 "lower")
        self.fuse_floor(reads, ("create",))
        c = getattr(self, "create_cpu", None)
        if c:
            self.row("daemon CPU per created file, hoard (vs null FUSE fs)",
                     "us", c["hoard"], c["null"], None, "reference")

    # -- the whole run ------------------------------------------------------------
    def main(self):
        t_start = time.monotonic()
        if self.args.only in ("create", "volumes"):
            if self.args.only == "create":
                self.create_rows(self.create_only())
            else:
                self.volume_phase()
            self.detail["seconds_total"] = round(time.monotonic() - t_start, 1)
            self.report()
            return
        if self.args.only == "stat":
            reads = self.stat_phase()
            n = self.sz["stat_files"]
            self.row(f"stat of {n:,} files, cold (vs local disk)", "s",
                     reads["stat_cold"]["hoard"],
                     reads["stat_cold"]["local"], 3.0, "lower")
            self.row(f"stat of {n:,} files, warm (vs local disk)", "s",
                     reads["stat_warm"]["hoard"],
                     reads["stat_warm"]["local"], 1.2, "lower")
            self.fuse_floor(reads, ("stat_cold", "stat_warm"))
            self.detail["seconds_total"] = round(time.monotonic() - t_start, 1)
            self.report()
            return
        self.make_corpora()
        if self.args.only == "read":
            ing = self.ingest_once("read")
            reads = self.read_phase(Path(ing["store"]))
            self.read_rows(reads)
            self.detail["seconds_total"] = round(time.monotonic() - t_start, 1)
            self.report()
            return
        self.bound()
        ing = self.ingest("2cores")
        ing1 = self.ingest("1core", cpus="0")
        floor = (self.ingest_floor("2cores"), self.ingest_floor("1core", "0"))
        if self.args.only == "ingest":
            self.ingest_rows(ing, ing1, floor)
            self.detail["seconds_total"] = round(time.monotonic() - t_start, 1)
            self.report()
            return
        tools = self.baseline_tools()
        reads = self.read_phase(Path(ing["store"]))

        self.ingest_rows(ing, ing1, floor)
        for tool in ("restic", "borg", "casync"):
            t = sum(v["seconds"] for v in tools[tool].values())
            self.row(f"ingest wall time (vs {tool})", "s", ing["seconds"], t,
                     1.0, "lower", strict=True)
        vols = ing["stats"].get("volumes", {})
        stored = {"pip": vols["pip"]["stored_bytes"],
                  "hf": vols["huggingface"]["stored_bytes"]}
        self.row("stored bytes, model revisions (vs exact ideal)", "MB",
                 stored["hf"] / MB, self.model["ideal_stored_bytes"] / MB,
                 1.05, "lower")
        for corpus, label in (("pip", "pip corpus"), ("hf", "model corpus")):
            for tool in ("casync", "restic", "borg"):
                self.row(f"stored bytes, {label} (vs {tool})", "MB",
                         stored[corpus] / MB, tools[tool][corpus]["bytes"] / MB,
                         1.0, "lower")
        self.read_rows(reads)
        n = self.sz["stat_files"]
        self.row(f"stat of {n:,} files, cold (vs local disk)", "s",
                 reads["stat_cold"]["hoard"], reads["stat_cold"]["local"], 3.0,
                 "lower")
        self.row(f"stat of {n:,} files, warm (vs local disk)", "s",
                 reads["stat_warm"]["hoard"], reads["stat_warm"]["local"], 1.2,
                 "lower")
        self.row(f"pip install of {self.pip_packages} packages, http cache "
                 "on the mount (vs local disk)", "s",
                 reads["pip_install"]["hoard"], reads["pip_install"]["local"],
                 1.2, "lower")
        n = self.sz["create_files"]
        self.row(f"create+write+close of {n:,} small files (vs local disk)",
                 "s", reads["create"]["hoard"], reads["create"]["local"], 3.0,
                 "lower")
        self.fuse_floor(reads)
        unique = ing["stats"]["unique_bytes"]
        s = ing["daemon"]["sampled"]
        written = ing["daemon"]["write_bytes"] - s["cancelled_write_bytes"]
        self.row("write amplification (daemon disk writes vs unique bytes)",
                 "MB", written / MB, unique / MB, 1.5, "lower")
        self.row("daemon peak RSS during ingest (vs 64 MiB cache + 150 MB)",
                 "MB", ing["daemon"]["peak_rss"] / MB,
                 (CACHE_SIZE + RSS_ALLOWANCE) / MB, 1.0, "lower")
        if not self.args.quick:     # --quick --only volumes runs them
            self.volume_phase()
        self.detail["seconds_total"] = round(time.monotonic() - t_start, 1)
        self.report()

    def ingest_rows(self, ing, ing1, floor):
        """The ingest targets, and the FUSE floor beside them: the same
        copy into the null fs (--discard), against the same bound, and
        hoard against it."""
        logical = ing["bytes"]
        bound = self.bound_bps / MB
        self.row("ingest throughput, daemon on 1 core (vs 1-core bound)",
                 "MB/s", logical / ing1["seconds"] / MB, bound, 0.7, "higher")
        self.row("ingest throughput, 2 cores (vs 1-core bound)", "MB/s",
                 logical / ing["seconds"] / MB, bound, 1.4, "higher")
        notes = {}
        for (what, h), nul in zip((("2 cores", ing), ("daemon on 1 core",
                                                       ing1)), floor):
            nbps = logical / nul["seconds"] / MB
            hbps = logical / h["seconds"] / MB
            self.row(f"ingest throughput, null FUSE fs, {what} "
                     "(vs 1-core bound)", "MB/s", nbps, bound, None,
                     "reference")
            self.row(f"ingest throughput, {what}, hoard (vs null FUSE fs)",
                     "MB/s", hbps, nbps, None, "reference")
            notes[what] = (f"ingest, {what}: the null FUSE fs (data "
                           f"discarded) reaches {nbps / bound:.2f}x the "
                           f"1-core bound ({nbps:.0f} MB/s); hoard "
                           f"{hbps / bound:.2f}x ({hbps / nbps:.2f}x the "
                           "null fs)")
        self.detail.setdefault("fuse_floor", {}).update(
            {f"ingest {k}": dict(note=v) for k, v in notes.items()})

    def read_rows(self, reads):
        """The read figures (issues 5 and 10), best of each side."""
        fsz = self.sz["readfile"]
        rf = f"{fsz / MiB:.0f} MiB" if fsz < (1 << 30) else f"{fsz >> 30} GiB"
        msz = Path(self.model["model_files"][0]).stat().st_size

        def mbps(size, key, side):
            return size / reads[key][side] / MB

        def pair(figure, key, size, target, kind="higher"):
            self.row(figure, "MB/s", mbps(size, key, "hoard"),
                     mbps(size, key, "local"), target, kind)

        pair(f"cold sequential read, {rf} (vs local disk)", "seq_cold", fsz,
             0.8)
        pair(f"warm re-read, {rf} (vs local disk)", "seq_warm", fsz, 0.97)
        pair("safetensors mmap load, cold (vs local disk)", "mmap_cold", msz,
             0.7)
        pair("safetensors mmap load, warm (vs local disk)", "mmap_warm", msz,
             0.95)
        pair(f"first read of a never-read file, {rf}, cold (vs local disk)",
             "first_read", fsz, 0.6)
        pair(f"cold read with the plain copy present, {rf} (vs local disk)",
             "seq_cold_copy", fsz, 0.9)
        pair("safetensors mmap load, cold, plain copy present "
             "(vs local disk)", "mmap_cold_copy", msz, 0.85)
        pair("safetensors load (header + every tensor, numpy), cold "
             "(vs local disk)", "st_cold", msz, 0.85)
        pair("safetensors load (header + every tensor, numpy), warm "
             "(vs local disk)", "st_warm", msz, 0.95)
        pair(f"warm re-read, {rf}, passthrough off (vs local disk)",
             "seq_warm_nopt", fsz, None, "reference")
        pair("safetensors mmap load, warm, passthrough off (vs local disk)",
             "mmap_warm_nopt", msz, None, "reference")
        # the tier's disk: the most plain_bytes seen (hoard stats) against
        # the files the benchmark reads through the mount
        samples = self.tier.get("samples", [])
        peak = max([s["plain_bytes"] or 0 for s in samples] or [0])
        readable = fsz * (1 + self.sz["runs"]) + msz
        self.tier["peak_plain_bytes"] = peak
        self.tier["present"] = any(s["plain_bytes"] is not None
                                   for s in samples)
        notes = []
        for key in ("first_read_before", "seq_cold", "seq_cold_copy",
                    "mmap_cold_copy"):
            states = self.tier.get("plain_state", {}).get(key, [])
            notes.append(f"{key}: " + ", ".join(
                "no tier" if v is None else "copy" if v else "no copy"
                for v in states))
        self.tier["summary"] = (
            "plain tier " + ("present" if self.tier["present"] else
                             "absent (hoard stats has no plain_bytes): no "
                             "plain copy was present in any run") +
            "; plain copy per run: " + "; ".join(notes))
        log(self.tier["summary"])
        self.row("plain tier disk, peak during the run (vs the files read "
                 "through the mount)", "MB", peak / MB, readable / MB, None,
                 "reference")

    # issue 14's targets against the FUSE floor: what hoard may add to a
    # FUSE filesystem that does no storage work (the warm stat has its own
    # target against the local disk)
    FLOOR_TARGETS = {"stat_cold": 1.2, "create": 1.3}

    def fuse_floor(self, reads, keys=("stat_cold", "stat_warm", "create")):
        """The null FUSE fs against the local disk (what FUSE alone costs;
        reference rows) and hoard against the null fs (what hoard adds;
        with FLOOR_TARGETS where one is set), from the same runs as the
        hoard rows, best of each side."""
        ns, nc = self.sz["stat_files"], self.sz["create_files"]
        figs = (("stat_cold", f"stat of {ns:,} files, cold"),
                ("stat_warm", f"stat of {ns:,} files, warm"),
                ("create", f"create+write+close of {nc:,} small files"))
        floor = {}
        for key, what in figs:
            if key not in keys:
                continue
            r = reads[key]
            self.row(f"{what}, null FUSE fs (vs local disk)", "s", r["null"],
                     r["local"], None, "reference")
            t = self.FLOOR_TARGETS.get(key)
            self.row(f"{what}, hoard (vs null FUSE fs)", "s", r["hoard"],
                     r["null"], t, "lower" if t else "reference")
            # each run's hoard time over the null fs's of the same run
            # (the row takes each side's best, which one lucky walk of
            # either side moves; this is the spread the row comes from)
            per_run = per_round(what, self.detail.get("reads", {}).get(
                key, {}), "hoard", "null")
            floor[key] = dict(
                per_run_hoard_vs_null=per_run,
                figure=what, seconds={s: r[s] for s in ("local", "null", "hoard")},
                null_vs_local=r["null"] / r["local"],
                hoard_vs_null=r["hoard"] / r["null"],
                hoard_vs_local=r["hoard"] / r["local"],
                note=f"a FUSE filesystem that does nothing takes "
                f"{r['null'] / r['local']:.2f}x local disk for {what}; "
                f"hoard takes {r['hoard'] / r['null']:.2f}x the null fs "
                f"({r['hoard'] / r['local']:.2f}x local)")
        self.detail.setdefault("fuse_floor", {}).update(floor)

    def report(self):
        out = Path(self.args.out)
        out.mkdir(parents=True, exist_ok=True)
        git = run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                  check=False).stdout.strip()
        if run(["git", "-C", REPO, "status", "--porcelain",
                "--untracked-files=no"], check=False).stdout.strip():
            git += "+dirty"     # the build may hold uncommitted changes
        buildtype = "?"
        try:
            opts = json.loads((self.build / "meson-info" /
                               "intro-buildoptions.json").read_text())
            buildtype = next(o["value"] for o in opts if o["name"] == "buildtype")
        except (OSError, ValueError, StopIteration):
            pass
        meta = dict(size=self.size, date=time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                                       time.gmtime()),
                    git=git, kernel=platform.release(), cpus=os.cpu_count(),
                    build=str(self.build), buildtype=buildtype)
        doc = dict(meta=meta, figures=self.rows, detail=self.detail)
        (out / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
        md = table_markdown(self.rows)
        floor = self.detail.get("fuse_floor", {})
        if floor:
            md += "\nFUSE floor (tests/hoard-nullfs, a FUSE fs that does " \
                "no storage work):\n\n" + "".join(
                    f"- {f['note']}\n" for f in floor.values())
        if self.tier.get("summary"):
            md += f"\nPlain tier: {self.tier['summary']}\n"
        head = (f"# hoard benchmark ({self.size})\n\n"
                f"{meta['date']}, git {meta['git']}, {meta['buildtype']} "
                f"build, {meta['cpus']} cores, "
                f"Linux {meta['kernel']}, {self.detail['seconds_total']} s\n\n")
        (out / "results.md").write_text(head + md)
        print(head + md, end="")
        targets = [r for r in self.rows if r["met"] is not None]
        met = sum(r["met"] for r in targets)
        print(f"\n{met} of {len(targets)} targets met; "
              f"{out / 'results.json'}, {out / 'results.md'}")


def fmt(v):
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def table_markdown(rows):
    lines = ["| figure | hoard | baseline | ratio | target | met |",
             "|---|---:|---:|---:|---|---|"]
    for r in rows:
        met = "-" if r["met"] is None else "yes" if r["met"] else "no"
        lines.append(f"| {r['figure']} | {fmt(r['hoard'])} {r['unit']} | "
                     f"{fmt(r['baseline'])} {r['unit']} | {r['ratio']:.2f}x | "
                     f"{r['target']} | {met} |")
    return "\n".join(lines) + "\n"


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="tests/bench/run",
        description="hoard's benchmark: every figure against its baseline "
        "in the same run (see README.md, Benchmarks).  Needs root.")
    ap.add_argument("--quick", action="store_true",
                    help="small corpora: the whole run takes about a minute")
    ap.add_argument("--out", default="bench-out",
                    help="where results.json and results.md go "
                    "(default: ./bench-out)")
    ap.add_argument("--work", default=None,
                    help="scratch directory on the local disk (default: a new "
                    "directory in /var/tmp, removed at the end)")
    ap.add_argument("--build", default=str(REPO / "build-release"),
                    help="build directory with hoard, hoardfs, "
                    "tests/hoard-bench and tests/hoard-nullfs (default: "
                    "build-release)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the scratch directory")
    ap.add_argument("--only", choices=["read", "ingest", "stat", "volumes",
                                       "create"],
                    default=None,
                    help="run only some figures: 'read' makes the corpora "
                    "and one store (untimed) and measures the read figures "
                    "(sequential, first read, plain copy, mmap, "
                    "safetensors, tier disk), a few minutes full size; "
                    "'ingest' the one-core bound and the two ingest "
                    "throughput rows (daemon CPU per run in the detail); "
                    "'stat' the stat figures alone (cold and warm, hoard, "
                    "local disk, null FUSE fs; no corpora); "
                    "'volumes' the clone and CI job figures on a "
                    "10,000-file, 1 GiB volume (tests/bench/volume_bench.py)"
                    ", a few minutes full size; 'create' measures "
                    "create+write+close of small files on hoard, the null "
                    "FUSE fs and the local disk (a new store, no corpora), "
                    "a minute or two")
    # tests/bench/run checks the arguments before installing and building
    ap.add_argument("--parse-only", action="store_true",
                    help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    if args.parse_only:
        return 0
    if os.geteuid() != 0:
        print("bench: must run as root (FUSE mounts, dropping the page cache)",
              file=sys.stderr)
        return 2
    for exe in ("restic", "borg", "casync", "taskset", "fusermount3"):
        if not shutil.which(exe):
            print(f"bench: {exe} not found (tests/bench/run installs it)",
                  file=sys.stderr)
            return 1
    build = Path(args.build)
    for exe in ("hoard", "hoardfs", "tests/hoard-bench", "tests/hoard-nullfs"):
        if not (build / exe).exists():
            print(f"bench: {build / exe} missing (build it: ninja -C {build})",
                  file=sys.stderr)
            return 1
    made_work = args.work is None
    if made_work:
        args.work = tempfile.mkdtemp(prefix="hoard-bench-", dir="/var/tmp")
    else:
        Path(args.work).mkdir(parents=True, exist_ok=True)
        if any(Path(args.work).iterdir()):
            print(f"bench: --work {args.work} is not empty", file=sys.stderr)
            return 2
    bench = Bench(args)
    try:
        bench.main()
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    finally:
        # never leave a mount behind
        with open("/proc/self/mountinfo") as f:
            mps = [l.split()[4] for l in f]
        for mp in mps:
            if mp.startswith(str(Path(args.work).resolve()) + "/"):
                subprocess.run(["fusermount3", "-u", "-z", mp],
                               capture_output=True)
        if made_work and not args.keep:
            shutil.rmtree(args.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
