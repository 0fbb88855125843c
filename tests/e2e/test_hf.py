# SPDX-License-Identifier: MIT
"""The Hugging Face hub cache on a hoard volume.

huggingface_hub is not installable here, so this module reimplements its
cache protocol as of huggingface_hub 0.31 (file_download.py: hf_hub_download,
try_to_load_from_cache) and drives it with real concurrency:

  <cache>/models--<org>--<name>/
      blobs/<etag>                   file content; etag = sha256 for LFS files,
                                     git blob sha1 for the others; written as
                                     <etag>.incomplete (opened "ab": resumable)
                                     then moved into place
      snapshots/<commit>/<path>      RELATIVE symlink to ../../blobs/<etag>
                                     (one more ../ per directory in <path>)
      refs/<branch or tag>           the commit hash (temp file + os.replace)
      .no_exist/<commit>/<path>      empty: <path> does not exist at <commit>
  <cache>/.locks/models--<org>--<name>/<etag>.lock   filelock.FileLock

A local "hub" directory plays the server.  Workers are separate processes
(this file run as a script) with two threads each.

HOARD_E2E_PLAIN=1 runs the workload on a plain directory (no daemon); the
dedup test then skips.
"""
import hashlib
import json
import mmap
import os
import random
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from filelock import FileLock

from helpers_pip import stats_figs, under_test  # noqa: F401 (fixture)

REPO_ID = "hoard-test/tiny-llm"
LFS_SUFFIXES = (".safetensors", ".onnx", ".bin")
WORKERS = 4
WORKER_TIMEOUT = 120

# -- the hub side --------------------------------------------------------------

DTYPES = {"F32": 4, "F16": 2, "I64": 8, "U8": 1}
# random bytes made into finite normal floats: F32 magnitudes in [2^-7, 2),
# F16 magnitudes in [0.5, 1); the sign and low mantissa bits stay random
F32_EXP = bytes((x & 0x83) | 0x3c for x in range(256))
F16_EXP = bytes((x & 0x83) | 0x38 for x in range(256))
SCALE = [1.0, -2.5, 3.25, 0.125, -1024.0]


def prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def tensor(name, dtype, shape, salt=""):
    n = prod(shape)
    if name == "scale":
        return (name, dtype, shape, struct.pack(f"<{n}f", *SCALE))
    if dtype == "I64":
        return (name, dtype, shape, struct.pack(f"<{n}q", *(i * 7919 - 3 for i in range(n))))
    raw = bytearray(random.Random(f"{name}/{salt}").randbytes(n * DTYPES[dtype]))
    if dtype == "F32":
        raw[3::4] = raw[3::4].translate(F32_EXP)
    elif dtype == "F16":
        raw[1::2] = raw[1::2].translate(F16_EXP)
    return (name, dtype, shape, bytes(raw))


def safetensors_bytes(tensors):
    """The safetensors format: u64 little-endian header length, a JSON header
    (padded with spaces to 8 bytes) of {name: {dtype, shape, data_offsets}},
    then the tensors' bytes back to back in data_offsets order."""
    header, datas, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, dtype, shape, data in sorted(tensors):
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [off, off + len(data)]}
        datas.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(datas)


def model_tensors(rev):
    t = [tensor("attention_mask", "U8", [16, 1024]),
         tensor("embed.weight", "F32", [1024, 1024]),
         tensor("layer0.bias", "F32", [1024], salt=rev),   # differs between revisions
         tensor("layer0.weight", "F32", [512, 1024]),
         tensor("layer1.weight", "F16", [1024, 512]),
         tensor("lm_head.weight", "F16", [1024, 1024]),
         tensor("position_ids", "I64", [1, 2048]),
         tensor("scale", "F32", [len(SCALE)])]
    if rev == "B":
        t.append(tensor("layer2.bias", "F32", [256]))       # shifts what follows
    return t


def tokenizer_json():
    r = random.Random("vocab")
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {}
    while len(vocab) < 30000:
        vocab.setdefault("".join(r.choice(letters) for _ in range(r.randint(2, 10))), len(vocab))
    tok = {"version": "1.0", "model": {"type": "BPE", "vocab": vocab}}
    return json.dumps(tok, indent=2).encode()


def repo_files(rev):
    files = {
        "config.json": json.dumps({"model_type": "hoard-test", "hidden_size": 1024,
                                   "revision": rev}, indent=2).encode(),
        "tokenizer.json": tokenizer_json(),
        "model.safetensors": safetensors_bytes(model_tensors(rev)),
        "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}\n',
        "onnx/fp16/model.onnx": random.Random("onnx").randbytes(700_000),
    }
    if rev == "B":
        files["README.md"] = b"# tiny-llm\n\nA model for hoard's tests.\n"
    return files


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def etag_of(path, data):
    return hashlib.sha256(data).hexdigest() if path.endswith(LFS_SUFFIXES) else git_blob_sha1(data)


COMMITS = {rev: hashlib.sha1(f"commit {rev}".encode()).hexdigest() for rev in ("A", "B")}
REFS = {"v1.0": COMMITS["A"], "main": COMMITS["B"]}


def make_hub(root):
    """Write the hub's repository to root: <commit>/<path> files and
    manifest.json {refs, files: {commit: {path: {etag, size, sha256}}}}."""
    root = Path(root)
    manifest = {"refs": REFS, "files": {}}
    for rev, commit in COMMITS.items():
        entries = manifest["files"][commit] = {}
        for path, data in repo_files(rev).items():
            p = root / commit / path
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            entries[path] = {"etag": etag_of(path, data), "size": len(data),
                             "sha256": hashlib.sha256(data).hexdigest()}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return manifest


class EntryNotFoundError(Exception):
    pass


class Hub:
    """What the hub's HEAD and GET requests would answer."""

    def __init__(self, root):
        self.root = Path(root)
        self.manifest = json.loads((self.root / "manifest.json").read_text())

    def metadata(self, revision, filename):
        commit = self.manifest["refs"].get(revision, revision)
        entry = self.manifest["files"][commit].get(filename)
        if entry is None:
            raise EntryNotFoundError(commit)
        return commit, entry["etag"], entry["size"]

    def get(self, commit, filename, f, resume_size, rng):
        """Stream the file into f from resume_size, in uneven pieces."""
        with open(self.root / commit / filename, "rb") as src:
            src.seek(resume_size)
            while True:
                b = src.read(rng.choice((4096, 65536, 100_000, 1 << 20)))
                if not b:
                    break
                f.write(b)
                if rng.random() < 0.1:
                    time.sleep(0.001)


# -- huggingface_hub's side (file_download.py, faithfully) ----------------------

def repo_folder_name(repo_id, repo_type="model"):
    return "--".join([f"{repo_type}s", *repo_id.split("/")])


_symlinks_supported = {}


def are_symlinks_supported(cache_dir):
    cache_dir = str(Path(cache_dir).expanduser().resolve())
    if cache_dir not in _symlinks_supported:
        _symlinks_supported[cache_dir] = True
        os.makedirs(cache_dir, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_dir) as tmpdir:
            src_path = Path(tmpdir) / "dummy_file_src"
            src_path.touch()
            dst_path = Path(tmpdir) / "dummy_file_dst"
            relative_src = os.path.relpath(src_path, start=os.path.dirname(dst_path))
            try:
                os.symlink(relative_src, dst_path)
            except OSError:
                _symlinks_supported[cache_dir] = False
    return _symlinks_supported[cache_dir]


def create_symlink(src, dst, new_blob=False):
    try:
        os.remove(dst)
    except OSError:
        pass
    abs_src = os.path.abspath(os.path.expanduser(src))
    abs_dst = os.path.abspath(os.path.expanduser(dst))
    relative_src = os.path.relpath(abs_src, os.path.dirname(abs_dst))
    commonpath = os.path.commonpath([abs_src, abs_dst])
    if are_symlinks_supported(commonpath):
        try:
            os.symlink(relative_src, abs_dst)
            return
        except FileExistsError:
            if os.path.islink(abs_dst) and os.path.realpath(abs_dst) == os.path.realpath(abs_src):
                return
            raise
    # huggingface_hub copies when symlinks do not work; that is a failure here
    raise AssertionError(f"symlinks not supported under {commonpath}")


def chmod_and_move(src, dst):
    """Give the blob the cache's default mode (learned from a tmp file next
    to blobs/), then move it into place."""
    tmp_file = dst.parent.parent / f"tmp_{uuid.uuid4()}"
    try:
        tmp_file.touch()
        cache_dir_mode = Path(tmp_file).stat().st_mode
        os.chmod(str(src), stat.S_IMODE(cache_dir_mode))
    finally:
        try:
            tmp_file.unlink()
        except OSError:
            pass
    shutil.move(str(src), str(dst))


def cache_commit_hash_for_revision(storage_folder, revision, commit_hash):
    if revision != commit_hash:
        ref_path = Path(storage_folder) / "refs" / revision
        ref_path.parent.mkdir(parents=True, exist_ok=True)
        if not ref_path.exists() or commit_hash != ref_path.read_text():
            tmp = ref_path.parent / f".{revision}.{uuid.uuid4().hex}.tmp"
            tmp.write_text(commit_hash)
            os.replace(tmp, ref_path)


def download_to_tmp_and_move(hub, incomplete_path, destination_path, commit_hash,
                             filename, expected_size, rng):
    if destination_path.exists():
        return
    with incomplete_path.open("ab") as f:     # resumes a partial download
        resume_size = f.tell()
        hub.get(commit_hash, filename, f, resume_size, rng)
        if expected_size != f.tell():
            raise EnvironmentError(f"Consistency check failed: {filename} is "
                                   f"{f.tell()} bytes, expected {expected_size}")
    chmod_and_move(incomplete_path, destination_path)


def hf_hub_download(hub, cache_dir, repo_id, filename, revision, rng=None):
    """huggingface_hub's _hf_hub_download_to_cache_dir (0.31+, where the
    blob-exists path takes the lock too)."""
    rng = rng or random.Random(0)
    storage_folder = os.path.join(cache_dir, repo_folder_name(repo_id))
    relative_filename = os.path.join(*filename.split("/"))
    try:
        commit_hash, etag, expected_size = hub.metadata(revision, filename)
    except EntryNotFoundError as e:
        commit_hash = e.args[0]
        cache_commit_hash_for_revision(storage_folder, revision, commit_hash)
        no_exist = Path(storage_folder) / ".no_exist" / commit_hash / relative_filename
        no_exist.parent.mkdir(parents=True, exist_ok=True)
        no_exist.touch()
        raise
    blob_path = os.path.join(storage_folder, "blobs", etag)
    pointer_path = os.path.join(storage_folder, "snapshots", commit_hash, relative_filename)
    os.makedirs(os.path.dirname(blob_path), exist_ok=True)
    os.makedirs(os.path.dirname(pointer_path), exist_ok=True)
    cache_commit_hash_for_revision(storage_folder, revision, commit_hash)
    lock_path = os.path.join(cache_dir, ".locks", repo_folder_name(repo_id), f"{etag}.lock")
    Path(lock_path).parent.mkdir(parents=True, exist_ok=True)
    if os.path.exists(pointer_path):
        return pointer_path
    if os.path.exists(blob_path):
        with FileLock(lock_path):
            if not os.path.exists(pointer_path):
                create_symlink(blob_path, pointer_path, new_blob=False)
            return pointer_path
    with FileLock(lock_path):
        download_to_tmp_and_move(hub, Path(blob_path + ".incomplete"), Path(blob_path),
                                 commit_hash, filename, expected_size, rng)
        if not os.path.exists(pointer_path):
            create_symlink(blob_path, pointer_path, new_blob=True)
    return pointer_path


CACHED_NO_EXIST = object()


def try_to_load_from_cache(repo_id, filename, cache_dir, revision="main"):
    """What HF_HUB_OFFLINE=1 / local_files_only=True resolves a file to."""
    repo_cache = os.path.join(cache_dir, repo_folder_name(repo_id))
    if not os.path.isdir(repo_cache):
        return None
    refs_dir = os.path.join(repo_cache, "refs")
    snapshots_dir = os.path.join(repo_cache, "snapshots")
    no_exist_dir = os.path.join(repo_cache, ".no_exist")
    if os.path.isdir(refs_dir):
        revision_file = os.path.join(refs_dir, revision)
        if os.path.isfile(revision_file):
            with open(revision_file) as f:
                revision = f.read()
    if os.path.isfile(os.path.join(no_exist_dir, revision, filename)):
        return CACHED_NO_EXIST
    if not os.path.exists(snapshots_dir):
        return None
    if revision not in os.listdir(snapshots_dir):
        return None
    cached_file = os.path.join(snapshots_dir, revision, filename)
    return cached_file if os.path.isfile(cached_file) else None


# -- workers -----------------------------------------------------------------------

def worker_main(plan_path):
    """Run as `python3 test_hf.py worker <plan.json>`: download the plan's
    (revision, filename) jobs with its number of threads."""
    plan = json.loads(Path(plan_path).read_text())
    hub = Hub(plan["hub"])
    seed = plan["seed"]
    time.sleep(max(0.0, plan["start_at"] - time.time()))   # all start together

    def job(i_job):
        i, (revision, filename) = i_job
        rng = random.Random(f"{seed}/{i}")
        try:
            p = hf_hub_download(hub, plan["cache"], REPO_ID, filename, revision, rng)
        except EntryNotFoundError:
            return None
        # what a library does next: read it (the pointer exists once
        # hf_hub_download has returned it: it is only ever removed and
        # re-made under the blob's lock, by a caller that found it missing)
        with open(p, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    with ThreadPoolExecutor(plan["threads"]) as ex:
        results = list(ex.map(job, enumerate(plan["jobs"])))
    print(json.dumps(results))


def download_all(hub, cache, revisions, threads=1, seed=0):
    jobs = [(rev, f) for rev in revisions
            for f in sorted(hub.manifest["files"][hub.manifest["refs"].get(rev, rev)])]
    lock = threading.Lock()
    out = []

    def job(j):
        p = hf_hub_download(hub, cache, REPO_ID, j[1], j[0], random.Random(f"{seed}/{j}"))
        with lock:
            out.append(p)

    with ThreadPoolExecutor(threads) as ex:
        list(ex.map(job, jobs))
    return out


# -- checks --------------------------------------------------------------------------

def verify_cache(cache, manifest, revisions=("v1.0", "main")):
    """The cache holds exactly what huggingface_hub would have left."""
    folder = Path(cache) / repo_folder_name(REPO_ID)
    commits = {manifest["refs"].get(r, r) for r in revisions}
    want_blobs = {e["etag"] for c in commits for e in manifest["files"][c].values()}
    assert sorted(p.name for p in (folder / "blobs").iterdir()) == sorted(want_blobs)
    assert sorted(p.name for p in (folder / "snapshots").iterdir()) == sorted(commits)
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith("tmp_")]
    assert not leftovers, leftovers
    for r in revisions:
        if r in manifest["refs"]:
            assert (folder / "refs" / r).read_text() == manifest["refs"][r]
    assert not [p for p in (folder / "refs").iterdir() if p.name.endswith(".tmp")]
    for commit in commits:
        snap = folder / "snapshots" / commit
        files = manifest["files"][commit]
        links = sorted(str(p.relative_to(snap)) for p in snap.rglob("*") if not p.is_dir())
        assert links == sorted(files)
        for path, e in files.items():
            pointer = snap / path
            assert pointer.is_symlink(), f"{pointer} is not a symlink"
            depth = len(Path(path).parts) - 1
            assert os.readlink(pointer) == "../" * (2 + depth) + "blobs/" + e["etag"]
            assert os.path.realpath(pointer) == str((folder / "blobs" / e["etag"]).resolve())
            data = pointer.read_bytes()
            assert len(data) == e["size"], path
            assert hashlib.sha256(data).hexdigest() == e["sha256"], f"{path} at {commit}: bad bytes"
            assert etag_of(path, data) == e["etag"]
            assert stat.S_IMODE(os.stat(pointer).st_mode) & 0o444 == 0o444
    return folder


def parse_safetensors(buf):
    (n,) = struct.unpack_from("<Q", buf, 0)
    assert 2 <= n <= 100_000_000 and 8 + n <= len(buf), n
    header = json.loads(bytes(buf[8:8 + n]))
    meta = header.pop("__metadata__", None)
    base, pos, out = 8 + n, 0, {}
    for name, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        a, b = t["data_offsets"]
        assert a == pos, f"{name} starts at {a}, expected {pos}"
        assert b - a == prod(t["shape"]) * DTYPES[t["dtype"]], name
        out[name] = (t["dtype"], t["shape"], buf[base + a:base + b])
        pos = b
    assert base + pos == len(buf), "data does not end at end of file"
    return meta, out


def tensor_errors(name, dtype, shape, view, want):
    """What is wrong with one parsed tensor (a view into the mmap)."""
    _, wdtype, wshape, wdata = want
    if (dtype, shape) != (wdtype, wshape):
        return [f"{name}: {dtype} {shape}, expected {wdtype} {wshape}"]
    n = prod(shape)
    errors = []
    if dtype == "F32":
        with view.cast("f") as vals:
            if name == "scale":
                if vals.tolist() != SCALE:
                    errors.append(f"scale: {vals.tolist()}")
            else:
                mags = list(map(abs, vals))
                if not (2 ** -7 <= min(mags) and max(mags) < 2):
                    errors.append(f"{name}: values out of range")
    elif dtype == "F16":
        mags = list(map(abs, struct.unpack(f"<{n}e", view)))
        if not (0.5 <= min(mags) and max(mags) < 1):
            errors.append(f"{name}: values out of range")
    elif dtype == "I64":
        with view.cast("q") as vals:
            if vals.tolist() != [i * 7919 - 3 for i in range(n)]:
                errors.append(f"{name}: wrong values")
    if view != wdata:
        errors.append(f"{name}: wrong bytes")
    return errors


def check_safetensors_mmap(path, rev):
    """Load a safetensors file the way safetensors does (mmap), touch every
    page, parse it and check every tensor's values."""
    want = {t[0]: t for t in model_tensors(rev)}
    errors = []
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        size = len(mm)
        assert size == os.fstat(f.fileno()).st_size
        touched = sum(mm[i] for i in range(0, size, mmap.PAGESIZE))
        assert touched == sum(f.read()[::mmap.PAGESIZE]), "mmap and read() disagree"
        # no assertion while views into the mmap are alive (a traceback
        # would keep them, and the mmap could not be closed)
        with memoryview(mm) as mv:
            try:
                meta, tensors = parse_safetensors(mv)
            except (AssertionError, ValueError, struct.error) as e:
                meta, tensors = None, {}
                errors.append(f"parse: {e!r}")
            if tensors and sorted(tensors) != sorted(want):
                errors.append(f"tensors {sorted(tensors)}, expected {sorted(want)}")
            if tensors and meta != {"format": "pt"}:
                errors.append(f"metadata {meta}")
            for name, (dtype, shape, view) in tensors.items():
                if name in want:
                    errors += tensor_errors(name, dtype, shape, view, want[name])
                view.release()
            tensors = None
    assert not errors, f"{path}: " + "; ".join(errors)


# -- tests ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    make_hub(root)
    return Hub(root)


def hf_cache(under):
    return under.path / "huggingface" / "hub"


def test_concurrent_downloads(hub, under_test, tmp_path):
    """4 processes x 2 threads download overlapping sets of both revisions
    (sharing most blobs), racing on locks, renames and symlinks."""
    cache = hf_cache(under_test)
    revisions = ["v1.0", "main"]
    files = {r: sorted(hub.manifest["files"][REFS[r]]) for r in revisions}
    procs = []
    start_at = time.time() + 1.0
    for w in range(WORKERS):
        rng = random.Random(w)
        jobs = []
        for r in (revisions if w % 2 == 0 else revisions[::-1]):
            fs = [f for i, f in enumerate(files[r]) if i % WORKERS != w]  # overlapping
            rng.shuffle(fs)
            jobs += [(r, f) for f in fs]
        jobs.insert(rng.randrange(len(jobs)), ("main", "model.fp16.safetensors"))  # a 404
        plan = tmp_path / f"plan-{w}.json"
        plan.write_text(json.dumps({"hub": str(hub.root), "cache": str(cache), "seed": w,
                                    "start_at": start_at, "threads": 2, "jobs": jobs}))
        procs.append((jobs, subprocess.Popen([sys.executable, __file__, "worker", str(plan)],
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                             text=True)))
    for jobs, p in procs:
        try:
            out, err = p.communicate(timeout=WORKER_TIMEOUT)
        except subprocess.TimeoutExpired:
            for _, q in procs:
                q.kill()
            raise
        rc = p.returncode
        assert rc == 0, f"worker exited {rc}:\n{err[-6000:]}"
        if err:
            print(f"worker stderr:\n{err[-3000:]}", file=sys.stderr)
        # what each worker read right after its download was right
        for (r, f), got in zip(jobs, json.loads(out)):
            entry = hub.manifest["files"][REFS[r]].get(f)
            assert got == (entry and entry["sha256"]), (r, f)
    # every file of both revisions was downloaded by some worker
    for r in revisions:
        assert {f for jobs, _ in procs for rr, f in jobs if rr == r} >= set(files[r])
    folder = verify_cache(cache, hub.manifest)
    assert (folder / ".no_exist" / REFS["main"] / "model.fp16.safetensors").is_file()
    assert try_to_load_from_cache(REPO_ID, "model.fp16.safetensors", cache) is CACHED_NO_EXIST
    locks = Path(cache) / ".locks" / repo_folder_name(REPO_ID)
    assert locks.is_dir()
    under_test.check_on_mount([p for p in folder.rglob("*")])


def test_offline_read_after_resume(hub, under_test):
    """An interrupted download (.incomplete left behind) is resumed by
    appending; then the snapshot is read back offline, also after a remount."""
    cache = hf_cache(under_test)
    folder = Path(cache) / repo_folder_name(REPO_ID)
    big = hub.manifest["files"][REFS["main"]]["model.safetensors"]
    partial = (hub.root / REFS["main"] / "model.safetensors").read_bytes()[:1_234_567]
    (folder / "blobs").mkdir(parents=True)
    (folder / "blobs" / (big["etag"] + ".incomplete")).write_bytes(partial)
    download_all(hub, cache, ["main"], threads=2)
    verify_cache(cache, hub.manifest, revisions=("main",))
    assert not (folder / "blobs" / (big["etag"] + ".incomplete")).exists()

    def offline_read():
        # HF_HUB_OFFLINE=1: refs/main -> commit -> snapshots/<commit>/<file>
        for path, e in hub.manifest["files"][REFS["main"]].items():
            p = try_to_load_from_cache(REPO_ID, path, str(cache))
            assert p == str(folder / "snapshots" / REFS["main"] / path), path
            with open(p, "rb") as f:
                assert hashlib.sha256(f.read()).hexdigest() == e["sha256"], path
            assert try_to_load_from_cache(REPO_ID, path, str(cache), revision=REFS["main"]) == p
        assert try_to_load_from_cache(REPO_ID, "config.json", str(cache), revision="v1.0") is None
        assert try_to_load_from_cache(REPO_ID, "nope.bin", str(cache)) is None
        cfg = try_to_load_from_cache(REPO_ID, "config.json", str(cache))
        cfg = json.loads(Path(cfg).read_text())
        assert cfg["revision"] == "B"

    offline_read()
    under_test.remount()
    cache = hf_cache(under_test)
    folder = Path(cache) / repo_folder_name(REPO_ID)
    offline_read()
    verify_cache(cache, hub.manifest, revisions=("main",))


def test_safetensors_mmap(hub, under_test):
    cache = hf_cache(under_test)
    download_all(hub, cache, ["v1.0", "main"], threads=3)
    under_test.remount()   # cold: pages come from the store, not the page cache
    cache = hf_cache(under_test)
    for rev, ref in (("A", "v1.0"), ("B", "main")):
        p = try_to_load_from_cache(REPO_ID, "model.safetensors", str(cache), revision=ref)
        assert p, ref
        check_safetensors_mmap(p, rev)


def wait_stats(store, volume, min_logical, timeout=10):
    """Store figures once the volume's files add up to min_logical bytes
    (files are committed when closed; FUSE's release is asynchronous)."""
    deadline = time.time() + timeout
    while True:
        figs = stats_figs(store.stats(), volume)
        if figs["logical_bytes"] >= min_logical or time.time() > deadline:
            return figs, stats_figs(store.stats())
        time.sleep(0.2)


def test_second_revision_dedups(hub, under_test):
    if under_test.plain:
        pytest.skip("needs the store (HOARD_E2E_PLAIN=1)")
    cache = hf_cache(under_test)
    fa = hub.manifest["files"][REFS["v1.0"]]
    fb = hub.manifest["files"][REFS["main"]]
    size_a = sum(e["size"] for e in fa.values())
    download_all(hub, cache, ["v1.0"])
    vol1, tot1 = wait_stats(under_test.store, under_test.volume, size_a)
    assert vol1["logical_bytes"] >= size_a, vol1
    # revision A's content is random: it does not dedup against itself
    assert tot1["unique_bytes"] >= 0.95 * size_a, (tot1, size_a)

    blobs_a = {e["etag"] for e in fa.values()}
    new_b = sum(e["size"] for e in fb.values() if e["etag"] not in blobs_a)
    st_b = fb["model.safetensors"]["size"]
    assert new_b > st_b      # the new safetensors file is a new blob
    download_all(hub, cache, ["main"])
    vol2, tot2 = wait_stats(under_test.store, under_test.volume, vol1["logical_bytes"] + new_b)
    assert vol2["logical_bytes"] >= vol1["logical_bytes"] + new_b, (vol1, vol2, new_b)
    grown = tot2["unique_bytes"] - tot1["unique_bytes"]
    # B's safetensors shares all tensors but two with A's (shifted by a
    # longer header and an inserted tensor): a content-defined chunker
    # stores a few chunks around each edit, not the file again
    assert grown < 0.25 * st_b, f"revision B added {grown} unique bytes for a {st_b}-byte file"
    assert tot2["unique_bytes"] < 1.3 * tot1["unique_bytes"], (tot1, tot2)
    verify_cache(cache, hub.manifest)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        try:
            worker_main(sys.argv[2])
        except BaseException:
            traceback.print_exc()
            sys.exit(1)
    else:
        sys.exit(f"usage: {sys.argv[0]} worker PLAN.json")
