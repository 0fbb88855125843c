# SPDX-License-Identifier: MIT
"""hoard push / pull / ls-remote / init --from against a real S3 server.

The server is s3rver behind tests/s3/signer-proxy.js (SigV4 verified, faults
on request): see s3server.py.  What push wrote is checked with an S3 client
that no one here wrote, Debian's awscli; pulled volumes are mounted and
compared byte for byte (sha256) and by metadata with the pushed ones.
Formats: docs/REMOTE.md.
"""
import hashlib
import json
import os
import random
import stat
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import HOARD, HOARDFS, Store, run
from s3server import s3  # noqa: F401  (a fixture)

AWS = "/usr/bin/aws"   # Debian's awscli
EXIT_REMOTE = 3
PACK_HEADER = 24   # REMOTE.md section 3


def hoard(s3, *args, check=True, env=None, timeout=300):
    p = subprocess.run([str(HOARD), *map(str, args)], env=env or s3.env(),
                       capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"hoard {args} exited {p.returncode}: {p.stderr.strip()}")
    return p


def hj(s3, *args, **kw):
    """A hoard command with --json; its JSON."""
    return json.loads(hoard(s3, *args, "--json", **kw).stdout)


def aws(s3, *args, check=True):
    p = subprocess.run([AWS, "--endpoint-url", s3.endpoint, *map(str, args)],
                       env=s3.env(), capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"aws {args} exited {p.returncode}: {p.stderr}")
    return p


def objects(s3, url):
    """{key: size} of everything under url, as awscli lists it."""
    out = aws(s3, "s3", "ls", "--recursive", url.rstrip("/") + "/", check=False).stdout
    res = {}
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4:
            res[parts[3]] = int(parts[2])
    return res


def packs(s3, url):
    return {k: v for k, v in objects(s3, url).items() if k.endswith(".pack")}


@pytest.fixture
def stores(tmp_path):
    """Factory of stores, all unmounted (and their logs checked) at the end."""
    made = []

    def new(name):
        st = Store(tmp_path / name)
        made.append(st)
        return st
    yield new
    for st in made:
        try:
            if st.mounts:
                st.umount()
        finally:
            for mp in list(st.mounts.values()):
                run(["fusermount3", "-u", "-z", mp], check=False)
        st.check_log()


def rnd(n, seed):
    return random.Random(seed).randbytes(n)


def fill_tree(root, seed=1, big=6 << 20):
    """Mixed content: random and compressible files, nested directories,
    symlinks (relative, absolute, dangling), a hard link, modes, an empty
    file, a sparse file."""
    (root / "d1" / "d2" / "d3").mkdir(parents=True)
    (root / "random.bin").write_bytes(rnd(big, seed))
    (root / "d1" / "text.txt").write_bytes(b"".join(b"line %d of a compressible file\n" % i
                                                    for i in range(120000)))
    (root / "d1" / "d2" / "small").write_bytes(b"hello\n")
    (root / "d1" / "d2" / "d3" / "deep.bin").write_bytes(rnd(300_000, seed + 1))
    (root / "empty").write_bytes(b"")
    with open(root / "sparse", "wb") as f:
        f.truncate(8 << 20)
        f.seek(3 << 20)
        f.write(rnd(100_000, seed + 2))
    os.symlink("d1/text.txt", root / "link-rel")
    os.symlink("/etc/passwd", root / "link-abs")
    os.symlink("nowhere/at/all", root / "d1" / "dangling")
    os.link(root / "d1" / "d2" / "small", root / "hard")
    os.mkfifo(root / "d1" / "fifo", 0o620)
    os.chmod(root / "d1" / "d2" / "small", 0o640)
    os.chmod(root / "random.bin", 0o755)
    os.chmod(root / "d1" / "d2", 0o750)
    os.chown(root / "d1" / "text.txt", 1234, 5678)
    os.utime(root / "d1" / "text.txt", ns=(1_600_000_000_123_456_789,) * 2)


def tree(root):
    """{path: (type, mode, uid, gid, size, mtime_ns, target, sha256, nlink)}
    (directory sizes and mtimes left out)."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            s = p.lstat()
            t = stat.S_IFMT(s.st_mode)
            target = os.readlink(p) if stat.S_ISLNK(s.st_mode) else None
            digest = (hashlib.sha256(p.read_bytes()).hexdigest()
                      if stat.S_ISREG(s.st_mode) else None)
            out[rel] = (t, stat.S_IMODE(s.st_mode), s.st_uid, s.st_gid,
                        s.st_size if not stat.S_ISDIR(s.st_mode) else 0,
                        s.st_mtime_ns if not stat.S_ISDIR(s.st_mode) else 0,
                        target, digest, s.st_nlink if stat.S_ISREG(s.st_mode) else 0)
    return out


@pytest.fixture
def pushed(s3, stores, request):
    """Store "a" with volume "vol" filled by fill_tree, pushed (store
    unmounted) to a fresh prefix; returns (store, url, tree, push JSON)."""
    url = f"s3://{s3.bucket}/{request.node.name}"
    a = stores("a")
    a.init()
    mp = a.mount("vol")["vol"]
    fill_tree(mp)
    want = tree(mp)
    a.umount()
    res = hj(s3, "push", url, "--store", a.path, "--volume", "vol")
    return a, url, want, res


# ---- round trip ---------------------------------------------------------------

def test_push_pull_roundtrip(s3, stores, pushed):
    a, url, want, res = pushed
    assert res["op"] == "push" and res["files"] == 6 and res["packs_new"] >= 1
    assert res["ref_updated"] and res["manifest_new"]
    objs = objects(s3, url)
    assert "config" in {k.split("/", 1)[1] for k in objs}
    assert any(k.endswith(f"manifests/{res['manifest']}") for k in objs)
    assert any(k.endswith("refs/vol/main") for k in objs)
    npacks = len(packs(s3, url))
    assert npacks == res["packs_new"]
    assert sum(packs(s3, url).values()) == res["bytes_new"]
    # awscli reads what push wrote: the ref names the manifest, whose
    # SHA-256 is its name
    ref = aws(s3, "s3", "cp", f"{url}/refs/vol/main", "-").stdout
    assert f"manifest {res['manifest']}\n" in ref
    m = subprocess.run([AWS, "--endpoint-url", s3.endpoint, "s3", "cp",
                        f"{url}/manifests/{res['manifest']}", "-"], env=s3.env(),
                       capture_output=True, check=True).stdout
    assert hashlib.sha256(m).hexdigest() == res["manifest"]

    # an empty store keyed like the repository, pulled, mounted
    b = stores("b")
    p = hoard(s3, "init", "--from", url, "--store", b.path)
    assert "keyed like" in p.stdout
    r = hj(s3, "pull", url, "--store", b.path, "--volume", "vol")
    assert r["op"] == "pull" and r["added"] == 11 and r["replaced"] == 0
    assert r["range_gets"] <= r["chunks_fetched"]
    mp = b.mount("vol")["vol"]
    got = tree(mp)
    assert got == want
    b.umount()

    # a second push of unchanged data uploads nothing, not even a ref
    before = objects(s3, url)
    again = hj(s3, "push", url, "--store", a.path, "--volume", "vol")
    assert again["packs_new"] == 0 and again["bytes_new"] == 0
    assert not again["manifest_new"] and not again["ref_updated"]
    assert again["manifest"] == res["manifest"]
    assert objects(s3, url) == before
    # pulling again changes nothing either
    r2 = hj(s3, "pull", url, "--store", b.path, "--volume", "vol")
    assert r2["chunks_fetched"] == 0 and r2["added"] == 0 and r2["identical"] == 11

    # ls-remote
    ls = hj(s3, "ls-remote", url)
    assert [x["ref"] for x in ls["refs"]] == ["vol/main"]
    assert ls["refs"][0]["manifest"] == res["manifest"]
    assert ls["refs"][0]["files"] == 6
    text = hoard(s3, "ls-remote", url).stdout
    assert "vol/main" in text and res["manifest"][:12] in text
    # the text summary of push
    line = hoard(s3, "push", url, "--store", a.path, "--volume", "vol").stdout
    assert line.startswith("pushed 6 files") and "0 B new in 0 packs" in line
    assert line.count("\n") == 1


def test_overlapping_stores_share_packs(s3, stores, pushed):
    """A second store with 90% of the data pushes only what is new, and a
    third pulling both refs downloads only what it lacks."""
    a, url, want, res = pushed
    b = stores("b")
    hoard(s3, "init", "--from", url, "--store", b.path)
    hj(s3, "pull", url, "--store", b.path, "--volume", "vol")
    mp = b.mount("vol")["vol"]
    extra = rnd(700_000, 99)
    (mp / "new.bin").write_bytes(extra)
    b.umount()
    before = packs(s3, url)
    r = hj(s3, "push", url, "--store", b.path, "--volume", "vol", "--ref", "b")
    after = packs(s3, url)
    assert r["packs_new"] == 1 and len(after) == len(before) + 1
    # new bytes: the new file's chunks only (random: stored raw, + tags)
    assert len(extra) <= r["bytes_new"] <= len(extra) + 64
    assert r["bytes_dedup"] >= res["bytes_new"] - 64
    # store a warms up from ref b: fetches exactly the new chunks
    p = hj(s3, "pull", url, "--store", a.path, "--volume", "vol", "--ref", "b")
    assert p["bytes_fetched"] == r["bytes_new"] - PACK_HEADER * r["packs_new"]
    assert p["added"] == 1
    assert sorted(x["ref"] for x in hj(s3, "ls-remote", url)["refs"]) == ["vol/b", "vol/main"]


def test_pull_merge_rule(s3, stores, pushed):
    """Absent added, identical kept, differing replaced only when newer."""
    a, url, want, res = pushed
    b = stores("b")
    hoard(s3, "init", "--from", url, "--store", b.path)
    mp = b.mount("vol")["vol"]
    (mp / "d1").mkdir()
    (mp / "d1" / "text.txt").write_bytes(b"local and newer\n")      # newer: kept
    (mp / "random.bin").write_bytes(b"local and older\n")           # older: replaced
    os.utime(mp / "random.bin", ns=(1_000_000_000,) * 2)
    (mp / "mine").write_bytes(b"only here\n")                       # not in remote: kept
    (mp / "link-rel").mkdir()                                       # dir vs symlink: conflict
    (mp / "d1" / ".hoard-pull.999999999.0").write_bytes(b"left by a killed pull")
    b.umount()
    r = hj(s3, "pull", url, "--store", b.path, "--volume", "vol")
    assert r["kept_newer"] == 1 and r["replaced"] == 1 and r["conflicts"] == 1
    mp = b.mount("vol")["vol"]
    assert (mp / "d1" / "text.txt").read_bytes() == b"local and newer\n"
    assert hashlib.sha256((mp / "random.bin").read_bytes()).hexdigest() == want["random.bin"][7]
    assert (mp / "mine").read_bytes() == b"only here\n"
    assert (mp / "link-rel").is_dir()
    assert not [n for n in os.listdir(mp) if n.startswith(".hoard-pull")]
    assert not [n for n in os.listdir(mp / "d1") if n.startswith(".hoard-pull")]


# ---- through the daemon ------------------------------------------------------------

def test_push_while_mounted_and_written(s3, stores, tmp_path):
    """Push through the daemon while a writer rewrites files: the pushed tree
    is a snapshot in which every file is one whole version."""
    url = f"s3://{s3.bucket}/busy"
    a = stores("a")
    a.init()
    mp = a.mount("vol")["vol"]
    versions = {v: rnd(400_000, 1000 + v) for v in range(40)}
    (mp / "hot").write_bytes(versions[0])
    stop = threading.Event()
    written = []

    def writer():
        v = 1
        while not stop.is_set():
            data = versions[v % 40]
            tmp = mp / "hot.tmp"
            tmp.write_bytes(data)
            os.rename(tmp, mp / "hot")          # atomic replace
            with open(mp / f"f{v}", "wb") as f:  # in place
                f.write(data)
            written.append(v)
            v += 1
    t = threading.Thread(target=writer)
    t.start()
    try:
        time.sleep(0.3)
        results = [hj(s3, "push", url, "--store", a.path, "--volume", "vol") for _ in range(3)]
    finally:
        stop.set()
        t.join()
    assert written and all(r["op"] == "push" for r in results)
    # it went through the daemon (the store is locked by it), and the
    # secret key that travelled on the control socket is in no log
    assert "push of volume vol done" in a.log()
    assert s3.secret_key not in a.log()
    b = stores("b")
    hoard(s3, "init", "--from", url, "--store", b.path)
    hj(s3, "pull", url, "--store", b.path, "--volume", "vol")
    (tmp_path / "bm").mkdir()
    mpb = b.mount("vol", root=tmp_path / "bm")["vol"]
    good = {hashlib.sha256(d).hexdigest() for d in versions.values()}
    names = os.listdir(mpb)
    assert "hot" in names
    for n in names:
        data = (mpb / n).read_bytes()
        # a file is some whole version, or (written in place, not yet
        # committed) empty
        assert hashlib.sha256(data).hexdigest() in good or data == b"", n


def test_pull_into_mounted_store(s3, stores, pushed):
    a, url, want, res = pushed
    b = stores("b")
    hoard(s3, "init", "--from", url, "--store", b.path)
    mp = b.mount("vol")["vol"]
    # the kernel caches a negative entry and an old file
    assert not (mp / "random.bin").exists()
    (mp / "d1").mkdir()
    (mp / "d1" / "d2").mkdir()
    (mp / "d1" / "d2" / "small").write_bytes(b"old\n")
    os.utime(mp / "d1" / "d2" / "small", ns=(1_000_000_000,) * 2)
    assert (mp / "d1" / "d2" / "small").read_bytes() == b"old\n"
    r = hj(s3, "pull", url, "--store", b.path, "--volume", "vol")
    assert r["replaced"] == 1
    assert "pull of volume vol done" in b.log()
    assert (mp / "random.bin").exists()
    assert (mp / "d1" / "d2" / "small").read_bytes() == b"hello\n"
    got = tree(mp)
    for k, v in want.items():
        if k not in ("d1", "d1/d2"):   # made locally, their modes are ours
            assert got[k] == v, k


# ---- refusals and bad input --------------------------------------------------------------

def test_wrong_secret_push_refused(s3, stores, pushed):
    a, url, want, res = pushed
    c = stores("c")
    c.init()                      # its own random secret
    mp = c.mount("vol")["vol"]
    (mp / "x").write_bytes(b"x" * 100_000)
    c.umount()
    before = objects(s3, url)
    p = hoard(s3, "push", url, "--store", c.path, "--volume", "vol", check=False)
    assert p.returncode == EXIT_REMOTE
    assert "secret differs" in p.stderr and "init --from" in p.stderr
    assert p.stderr.count("\n") == 1
    assert objects(s3, url) == before
    p = hoard(s3, "pull", url, "--store", c.path, "--volume", "vol", check=False)
    assert p.returncode == EXIT_REMOTE and "init --from" in p.stderr


def test_missing_ref_bucket_repository(s3, stores, pushed):
    a, url, want, res = pushed
    p = hoard(s3, "pull", url, "--store", a.path, "--volume", "vol", "--ref", "nope",
              check=False)
    assert p.returncode == EXIT_REMOTE and "no ref 'vol/nope'" in p.stderr
    p = hoard(s3, "pull", "s3://no-such-bucket/x", "--store", a.path, "--volume", "vol",
              check=False)
    assert p.returncode == EXIT_REMOTE and "bucket 'no-such-bucket' does not exist" in p.stderr
    p = hoard(s3, "ls-remote", f"s3://{s3.bucket}/nothing-here", check=False)
    assert p.returncode == EXIT_REMOTE and "no hoard repository" in p.stderr
    p = hoard(s3, "init", "--from", f"s3://{s3.bucket}/nothing-here", "--store",
              a.path.parent / "never", check=False)
    assert p.returncode == EXIT_REMOTE and not (a.path.parent / "never").exists()
    p = hoard(s3, "push", "http://x/y", "--store", a.path, "--volume", "vol", check=False)
    assert p.returncode == 2
    p = hoard(s3, "push", url, "--store", a.path, "--volume", "nosuchvol", check=False)
    assert p.returncode == EXIT_REMOTE and "no volume 'nosuchvol'" in p.stderr


# A manifest encoder (docs/REMOTE.md section 5), to craft bad ones.
def m_entry(typ, parent, name, mode, extra=b"", uid=0, gid=0, mtime=(1, 0)):
    return (struct.pack(">BBHIIIIqI", typ, 0, len(name), parent, mode, uid, gid,
                        mtime[0], mtime[1]) + name + extra)


def m_file(size, extents=()):
    return struct.pack(">QI", size, len(extents)) + b"".join(
        struct.pack(">QI", off, ln) + cid for off, ln, cid in extents)


def manifest(entries, version=1):
    return (b"HOARDMAN" + struct.pack(">II", version, 0) + bytes(16)   # nonce
            + struct.pack(">Q", len(entries)) + b"".join(entries))


ROOT = m_entry(1, 0, b"", 0o40755)
CID = bytes(range(16))
BAD_MANIFESTS = {
    "dotdot": ([ROOT, m_entry(2, 0, b"..", 0o100644, m_file(0))], "'.' or '..'"),
    "dot": ([ROOT, m_entry(1, 0, b".", 0o40755)], "'.' or '..'"),
    "empty-name": ([ROOT, m_entry(2, 0, b"", 0o100644, m_file(0))], "an empty name"),
    "slash": ([ROOT, m_entry(2, 0, b"a/b", 0o100644, m_file(0))], "a name with '/'"),
    "absolute": ([ROOT, m_entry(2, 0, b"/etc/passwd", 0o100644, m_file(0))],
                 "a name with '/'"),
    "nul": ([ROOT, m_entry(2, 0, b"a\0b", 0o100644, m_file(0))], "NUL"),
    "through-symlink": ([ROOT, m_entry(3, 0, b"l", 0o120777, struct.pack(">I", 4) + b"/etc"),
                         m_entry(2, 1, b"passwd", 0o100644, m_file(0))],
                        "through the symlink"),
    "duplicate": ([ROOT, m_entry(2, 0, b"a", 0o100644, m_file(0)),
                   m_entry(2, 0, b"a", 0o100644, m_file(0))], "appears twice"),
    "sizes": ([ROOT, m_entry(2, 0, b"f", 0o100644, m_file(100, [(0, 65536, CID)]))],
              "sizes do not add up"),
    "overlap": ([ROOT, m_entry(2, 0, b"f", 0o100644,
                               m_file(200000, [(0, 70000, CID), (60000, 70000, CID)]))],
                "overlap"),
    # version 2 (chunk digests, REMOTE.md 5.4) is known; 3 is not
    "version": ("v3", "manifest version 3 is unknown"),
    "truncated": ("trunc", "truncated"),
    "parent-later": ([ROOT, m_entry(2, 2, b"f", 0o100644, m_file(0)),
                      m_entry(1, 0, b"d", 0o40755)], "does not come before"),
    "ref-sizes": ([ROOT, m_entry(2, 0, b"f", 0o100644, m_file(5))], "do not add up"),
    "hardlink-to-dir": ([ROOT, m_entry(1, 0, b"d", 0o40755),
                         m_entry(4, 0, b"h", 0o100644, struct.pack(">I", 1))],
                        "not an earlier file"),
    # overflows (REMOTE.md 5.3): sizes past off_t, an extent whose end
    # wraps past 2^64, a sum of sizes that wraps to the ref's count
    "size-2^63": ([ROOT, m_entry(2, 0, b"f", 0o100644, m_file(1 << 63))],
                  "over the largest file size"),
    "size-2^64-1": ([ROOT, m_entry(2, 0, b"f", 0o100644, m_file((1 << 64) - 1))],
                    "over the largest file size"),
    "extent-wraps": ([ROOT, m_entry(2, 0, b"f", 0o100644,
                                    m_file(100, [((1 << 64) - 10, 65536, CID)]))],
                     "(overflow)"),
    "sum-wraps": ([ROOT] + [m_entry(2, 0, n, 0o100644, m_file(s))
                            for n, s in ((b"a", (1 << 63) - 1), (b"b", (1 << 63) - 1),
                                         (b"c", 2))],
                  "add up to more than 2^63 - 1", (3, "0")),
    "ref-bytes-2^64": ([ROOT, m_entry(2, 0, b"f", 0o100644, m_file(0))],
                       "'bytes' value is out of range", (1, str(1 << 64))),
    "ref-files-negative": ([ROOT, m_entry(2, 0, b"f", 0o100644, m_file(0))],
                           "the ref is not a hoard ref", ("-1", "0")),
}


@pytest.fixture(scope="module")
def badrepo(s3, tmp_path_factory):
    """A repository (made by a tiny push) and a store keyed like it."""
    d = tmp_path_factory.mktemp("badrepo")
    url = f"s3://{s3.bucket}/bad-manifests"
    a = Store(d / "a")
    a.init()
    mp = a.mount("tiny", root=d)["tiny"]
    (mp / "x").write_bytes(b"x")
    a.umount()
    hj(s3, "push", url, "--store", a.path, "--volume", "tiny")
    yield a, url
    a.check_log()


@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_bad_manifest(s3, badrepo, tmp_path, case):
    a, url = badrepo
    entries, msg, *counts = BAD_MANIFESTS[case]
    files, nbytes = counts[0] if counts else (1, "0")
    if entries == "v3":
        body = manifest([ROOT], version=3)
    elif entries == "trunc":
        body = manifest([ROOT, m_entry(2, 0, b"f", 0o100644, m_file(0))])[:-5]
    else:
        body = manifest(entries)
    name = hashlib.sha256(body).hexdigest()
    up = tmp_path / "up"
    (up / "manifests").mkdir(parents=True)
    (up / "refs" / "bad").mkdir(parents=True)
    (up / "manifests" / name).write_bytes(body)
    ref = up / "refs" / "bad" / "main"
    ref.write_text(f"hoard-ref 1\nmanifest {name}\nfiles {files}\nbytes {nbytes}\ntime 1\n")
    aws(s3, "s3", "cp", "--recursive", up, url)
    # into a mounted store: nothing appears, anywhere
    (tmp_path / "m").mkdir()
    mp = a.mount("bad", root=tmp_path / "m")["bad"]
    try:
        before = tree(tmp_path)
        p = hoard(s3, "pull", url, "--store", a.path, "--volume", "bad", check=False)
        assert p.returncode == EXIT_REMOTE, p.stderr
        assert msg in p.stderr, p.stderr
        assert p.stderr.count("\n") == 1
        assert os.listdir(mp) == []
        assert tree(tmp_path) == before
    finally:
        a.umount()
    # a manifest that is not its name: corrupt
    if case == "dotdot":
        aws(s3, "s3", "cp", ref, f"{url}/manifests/{'0' * 64}")
        ref.write_text(f"hoard-ref 1\nmanifest {'0' * 64}\nfiles 1\nbytes 0\ntime 1\n")
        aws(s3, "s3", "cp", ref, f"{url}/refs/bad/main")
        p = hoard(s3, "pull", url, "--store", a.path, "--volume", "bad", check=False)
        assert p.returncode == EXIT_REMOTE and "is corrupt" in p.stderr


# ---- faults ---------------------------------------------------------------------------------

def test_push_pull_with_faults(s3, stores, tmp_path):
    """503 SlowDown, 500, connection resets, truncated and corrupted bodies
    on the way: push and pull still complete and verify."""
    url = f"s3://{s3.bucket}/faults"
    a = stores("a")
    a.init()
    mp = a.mount("vol")["vol"]
    (mp / "big").write_bytes(rnd(3 << 20, 7))
    (mp / "text").write_bytes(b"abc\n" * 300_000)
    want = tree(mp)
    a.umount()
    env = s3.env(AWS_MAX_ATTEMPTS="8")
    s3.reset()
    s3.fault({"type": "status", "status": 503, "code": "SlowDown", "count": 3, "method": "PUT"},
             {"type": "status", "status": 500, "code": "InternalError", "count": 2},
             {"type": "reset", "count": 2, "method": "PUT"})
    r = hj(s3, "push", url, "--store", a.path, "--volume", "vol", env=env)
    assert r["retries"] >= 5
    b = stores("b")
    hoard(s3, "init", "--from", url, "--store", b.path, env=env)
    s3.fault({"type": "corrupt", "count": 1, "method": "GET"},
             {"type": "truncate", "count": 1, "method": "GET"},
             {"type": "reset", "count": 1, "method": "GET"},
             {"type": "status", "status": 503, "code": "SlowDown", "count": 2})
    p = hj(s3, "pull", url, "--store", b.path, "--volume", "vol", env=env)
    assert p["added"] == 2
    mpb = b.mount("vol")["vol"]
    assert tree(mpb) == want


def test_usage(s3, tmp_path):
    p = hoard(s3, "push", "--store", tmp_path, check=False)
    assert p.returncode == 2 and "s3://" in p.stderr
    p = hoard(s3, "push", "s3://bkt/p", "--store", tmp_path, check=False,
              env={**s3.env(), "HOARD_VOLUME": ""})
    assert p.returncode == 2 and "which volume" in p.stderr
    p = hoard(s3, "pull", "s3://bkt/p", "--volume", "../x", "--store", tmp_path, check=False)
    assert p.returncode == 2 and "not a volume name (1-64 of" in p.stderr
    p = hoard(s3, "pull", "s3://bkt/p", "--volume", "v", "--jobs", "0", "--store", tmp_path,
              check=False)
    assert p.returncode == 2 and "--jobs takes 1 to" in p.stderr
    assert "push s3://BUCKET" in hoard(s3, "help").stdout


# Every URL error names the rule broken (issue 13 item 6, issue 11 item 6).
BAD_URLS = [
    ("s3://bk/x", "the bucket name 'bk' has 2 characters: a bucket name needs 3 to 63"),
    ("s3://" + "b" * 64 + "/x", "has 64 characters: a bucket name needs 3 to 63"),
    ("s3://Bucket/x", "the bucket name 'Bucket' holds 'B': a bucket name is made of "
                      "lower-case letters, digits, '.' and '-'"),
    ("s3://b_c/x", "holds '_'"),
    ("s3://-abc/x", "must begin and end with a letter or digit"),
    ("s3://a..b/x", "two dots in a row"),
    ("s3://ab.-c/x", "a '-' next to a '.'"),
    ("s3://10.0.0.1/x", "is an IP address"),
    ("s3://xn--abc/x", "begins with 'xn--', which S3 reserves"),
    ("s3://abc-s3alias/x", "ends with '-s3alias', which S3 reserves"),
    ("s3://", "the URL names no bucket"),
    ("s3:///x", "the URL names no bucket"),
    ("http://bucket/x", "has the scheme 'http': the URL must begin with s3://"),
    ("bucket/x", "'bucket/x' does not begin with s3://"),
    ("s3://bucket/a/../r1", "has a dot segment '..' in its prefix"),
    ("s3://bucket/a/./r1", "has a dot segment '.' in its prefix"),
    ("s3://bucket/..", "has a dot segment '..' in its prefix"),
    ("s3://bucket/a//r1", "has an empty segment in its prefix 'a//r1'"),
    ("s3://bucket//r1", "has an empty segment in its prefix '/r1'"),
    ("s3://bucket/" + "p" * 1025, "has 1025 bytes: an S3 key has at most 1024"),
]


@pytest.mark.parametrize("url,msg", BAD_URLS, ids=[u[:40] for u, _ in BAD_URLS])
def test_url_errors_name_the_rule(s3, tmp_path, url, msg):
    """push, pull, ls-remote, init --from, gc --remote and hoardfs --remote
    refuse the URL before any request, exit 2, with one line naming the
    rule."""
    s3.reset()
    runs = [("push", url, "--store", tmp_path, "--volume", "v"),
            ("pull", url, "--store", tmp_path, "--volume", "v"),
            ("ls-remote", url),
            ("init", "--from", url, "--store", tmp_path / "new"),
            ("gc", "--remote", url)]
    for args in runs:
        p = hoard(s3, *args, check=False)
        assert p.returncode == 2, (args, p.stderr)
        assert msg in p.stderr and p.stderr.count("\n") == 1, (args, p.stderr)
    assert not (tmp_path / "new").exists()
    p = subprocess.run([str(HOARDFS), "--store", tmp_path, "--remote", url,
                        f"v={tmp_path}"], env=s3.env(), capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2 and msg in p.stderr, p.stderr
    assert s3.stats()["requests"] == 0


BAD_ENDPOINTS = [
    ("ftp://x", "the scheme must be http:// or https://"),
    ("http://127.0.0.1:9/bucket", "no path after the host"),
    ("http://h:0", "the port must be 1 to 65535"),
    ("http://h:99999", "the port must be 1 to 65535"),
    ("http://h:x", "the port must be a number"),
    ("http://u:p@h", "no user or password"),
    ("http://h?x=1", "no query or fragment"),
    ("http://[zz]", "an IPv6 host holds only hex digits"),
]


def test_option_errors_name_the_rule(s3, tmp_path):
    """The endpoint setting and hoardfs's options: one line naming the
    rule broken (issue 13 item 6)."""
    for ep, msg in BAD_ENDPOINTS:
        p = hoard(s3, "ls-remote", f"s3://{s3.bucket}/x", check=False,
                  env=s3.env(AWS_ENDPOINT_URL=ep))
        assert p.returncode != 0 and f"bad endpoint URL '{ep}': {msg}" in p.stderr, \
            (ep, p.stderr)
        assert p.stderr.count("\n") == 1, p.stderr
    for opt, val, msg in (("--log-level", "loud", "expected error, warning, info or debug"),
                          ("--cache-size", "big", "expected a size such as 256M"),
                          ("--max-size", "0", "the budget must be more than 0")):
        p = subprocess.run([str(HOARDFS), "--store", tmp_path, opt, val, f"v={tmp_path}"],
                           env=s3.env(), capture_output=True, text=True, timeout=60)
        assert p.returncode == 2 and msg in p.stderr, (opt, p.stderr)


def test_good_urls_still_work(s3, stores):
    """The forms that stay valid: no prefix, a trailing '/', dots inside a
    segment ("v1.2", "..x")."""
    a = stores("urls")
    a.init()
    mp = a.mount("vol")["vol"]
    (mp / "f").write_bytes(b"hello\n")
    a.umount()
    for url in (f"s3://{s3.bucket}/dots/v1.2/..x/", f"s3://{s3.bucket}/dots/v1.2/..x"):
        hj(s3, "push", url, "--store", a.path, "--volume", "vol")
        ls = hoard(s3, "ls-remote", url).stdout
        assert "vol/main" in ls
    assert any(k.startswith("dots/v1.2/..x/refs/")
               for k in objects(s3, f"s3://{s3.bucket}/dots/"))


def test_killed_push_then_rerun(s3, stores, tmp_path):
    """A pusher killed midway leaves no ref; the rerun uploads only the packs
    that are still missing."""
    url = f"s3://{s3.bucket}/killed"
    a = stores("a")
    a.init()
    mp = a.mount("vol", "tiny")
    (mp["tiny"] / "x").write_bytes(b"x")
    for i in range(3):   # ~3 packs of 32 MiB: random data is stored raw
        (mp["vol"] / f"r{i}").write_bytes(rnd(32 << 20, 40 + i))
    a.umount()
    hj(s3, "push", url, "--store", a.path, "--volume", "tiny")   # the config
    s3.reset()
    s3.fault({"type": "stall", "method": "PUT", "count": 1})
    p = subprocess.Popen([str(HOARD), "push", url, "--store", a.path, "--volume", "vol",
                          "--jobs", "2"], env=s3.env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len([k for k in objects(s3, url) if k.endswith(".idx")]) >= 3:
            break   # tiny's pack + two of vol's; the third is stalled
        time.sleep(0.2)
    p.kill()
    p.wait()
    assert p.returncode == -9
    objs = objects(s3, url)
    assert not any(k.endswith("refs/vol/main") for k in objs)
    done = len([k for k in objs if k.endswith(".idx")]) - 1
    assert done >= 2
    r = hj(s3, "push", url, "--store", a.path, "--volume", "vol")
    assert r["packs_new"] == 3 - done == 1 and r["ref_updated"]
    # and the result is complete
    b = stores("b")
    hoard(s3, "init", "--from", url, "--store", b.path)
    hj(s3, "pull", url, "--store", b.path, "--volume", "vol")
    mpb = b.mount("vol")["vol"]
    for i in range(3):
        assert (mpb / f"r{i}").read_bytes() == rnd(32 << 20, 40 + i)


def test_corrupt_truncated_pack_and_bad_credentials(s3, stores, pushed, tmp_path):
    """A damaged pack stops the pull naming it, with no half file; wrong
    credentials and an unreachable endpoint are one clear line."""
    a, url, want, res = pushed
    name, size = sorted(packs(s3, url).items())[0]
    orig = tmp_path / "orig"
    aws(s3, "s3", "cp", f"s3://{s3.bucket}/{name}", orig)
    data = bytearray(orig.read_bytes())
    b = stores("b")
    hoard(s3, "init", "--from", url, "--store", b.path)
    for what, bad, msg in (("corrupt", data[:1000] + bytes(b ^ 0x5a for b in data[1000:3000])
                            + data[3000:], "is corrupt"),
                           ("truncated", data[:len(data) // 2], "truncated")):
        f = tmp_path / what
        f.write_bytes(bytes(bad))
        aws(s3, "s3", "cp", f, f"s3://{s3.bucket}/{name}")
        p = hoard(s3, "pull", url, "--store", b.path, "--volume", "vol", check=False)
        assert p.returncode == EXIT_REMOTE, p.stderr
        assert msg in p.stderr and name.split("/")[-1][:64].split(".")[0] in p.stderr, p.stderr
        assert p.stderr.count("\n") == 1
        mp = b.mount("vol")["vol"]
        assert os.listdir(mp) == [] or all(not n.startswith(".hoard-pull") for n in os.listdir(mp))
        for n in os.listdir(mp):   # whatever is there is whole
            if (mp / n).is_file() and n in want:
                assert hashlib.sha256((mp / n).read_bytes()).hexdigest() == want[n][7]
        b.umount()
    aws(s3, "s3", "cp", orig, f"s3://{s3.bucket}/{name}")
    hj(s3, "pull", url, "--store", b.path, "--volume", "vol")

    p = hoard(s3, "pull", url, "--store", b.path, "--volume", "vol", check=False,
              env=s3.env(AWS_SECRET_ACCESS_KEY="wrong"))
    assert p.returncode == 1 and "403" in p.stderr and "wrong" not in p.stderr
    assert p.stderr.count("\n") == 1
    t = time.monotonic()
    p = hoard(s3, "push", url, "--store", b.path, "--volume", "vol", check=False,
              env=s3.env(AWS_ENDPOINT_URL="http://127.0.0.1:9"))
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and time.monotonic() - t < 10


def test_gc_remote(s3, stores, tmp_path):
    """Mark and sweep with a grace period: young packs are left alone, a
    dead pack is condemned, then deleted by a later gc; a push that uses a
    condemned pack's chunks again revives it; live refs stay whole."""
    url = f"s3://{s3.bucket}/gc"
    a = stores("a")
    a.init()
    mp = a.mount("keep", "tmp")
    (mp["keep"] / "k").write_bytes(rnd(1 << 20, 70))
    (mp["tmp"] / "t").write_bytes(rnd(1 << 20, 71))
    a.umount()
    hj(s3, "push", url, "--store", a.path, "--volume", "keep")
    t = hj(s3, "push", url, "--store", a.path, "--volume", "tmp")
    assert t["packs_new"] == 1
    g = hj(s3, "gc", "--remote", url, "--store", a.path)     # default grace: 24h
    assert g["refs"] == 2 and g["packs"] == 2 and g["packs_live"] == 2
    assert g["packs_condemned"] == g["packs_deleted"] == 0

    aws(s3, "s3", "rm", f"{url}/refs/tmp/main")
    g = hj(s3, "gc", "--remote", url, "--grace", "0", "--dry-run")
    assert g["packs_condemned"] == 1 and g["dry_run"]
    assert not [k for k in objects(s3, url) if "/gc/condemned/" in k]
    g = hj(s3, "gc", "--remote", url, "--grace", "0")
    assert g["refs"] == 1 and g["packs_condemned"] == 1 and g["packs_deleted"] == 0
    assert g["manifests_deleted"] == 1
    assert len([k for k in objects(s3, url) if "/gc/condemned/" in k]) == 1

    # a push does not rely on the condemned pack: it uploads its chunks
    # again, in a pack of another name (the header's nonce), so a gc that
    # deletes the condemned one cannot take the new one with it
    before = set(packs(s3, url))
    again = hj(s3, "push", url, "--store", a.path, "--volume", "tmp", "--ref", "again")
    assert again["packs_new"] == 1 and len(set(packs(s3, url)) - before) == 1
    g = hj(s3, "gc", "--remote", url, "--grace", "0")
    # readers take a chunk from the first pack in name order: either the
    # old pack is revived and the new one condemned, or the old one goes
    assert ((g["packs_revived"] == 1 and g["packs_condemned"] == 1) or
            g["packs_deleted"] == 1), g
    b0 = stores("b0")
    hoard(s3, "init", "--from", url, "--store", b0.path)
    hj(s3, "pull", url, "--store", b0.path, "--volume", "tmp", "--ref", "again")
    assert (b0.mount("tmp")["tmp"] / "t").read_bytes() == rnd(1 << 20, 71)
    b0.umount()

    aws(s3, "s3", "rm", f"{url}/refs/tmp/again")
    size = sum(packs(s3, url).values())
    deleted = 0
    for _ in range(3):
        g = hj(s3, "gc", "--remote", url, "--grace", "0")
        deleted += g["bytes_deleted"]
        if len(packs(s3, url)) == 1:
            break
    assert len(packs(s3, url)) == 1 and deleted >= (1 << 20)
    assert sum(packs(s3, url).values()) < size
    g = hj(s3, "gc", "--remote", url, "--grace", "0")
    assert g["packs"] == g["packs_live"] == 1 and g["packs_deleted"] == 0
    assert not [k for k in objects(s3, url) if "/gc/condemned/" in k or k.endswith("tmp/main")]

    # what is left is whole
    b = stores("b")
    hoard(s3, "init", "--from", url, "--store", b.path)
    hj(s3, "pull", url, "--store", b.path, "--volume", "keep")
    assert (b.mount("keep")["keep"] / "k").read_bytes() == rnd(1 << 20, 70)

    # a ref gc cannot read stops it before any deletion
    bad = tmp_path / "badref"
    bad.write_text("not a ref\n")
    aws(s3, "s3", "cp", bad, f"{url}/refs/keep/broken")
    before = objects(s3, url)
    p = hoard(s3, "gc", "--remote", url, "--grace", "0", check=False)
    assert p.returncode == EXIT_REMOTE and "nothing was deleted" in p.stderr
    assert objects(s3, url) == before
    p = hoard(s3, "gc", "--remote", url, "--grace", "soon", check=False)
    assert p.returncode == 2


def test_gc_remote_repacks_mostly_dead_packs(s3, stores):
    url = f"s3://{s3.bucket}/repack"
    a = stores("a")
    a.init()
    mp = a.mount("v")["v"]
    for i in range(4):
        (mp / f"f{i}").write_bytes(rnd(1 << 20, 80 + i))
    a.umount()
    first = hj(s3, "push", url, "--store", a.path, "--volume", "v")
    assert first["packs_new"] == 1
    mp = a.mount("v")["v"]
    for i in range(1, 4):
        (mp / f"f{i}").unlink()
    a.umount()
    hj(s3, "push", url, "--store", a.path, "--volume", "v")   # 1/4 of the pack live
    old = packs(s3, url)
    g = hj(s3, "gc", "--remote", url, "--grace", "0")
    assert g["packs_partly_dead"] == 1 and g["packs_repacked"] == 1
    assert (1 << 20) <= g["bytes_repacked"] < (1 << 20) + 4096
    assert len(packs(s3, url)) == 2
    g = hj(s3, "gc", "--remote", url, "--grace", "0")
    assert g["packs_deleted"] == 1 and g["packs_repacked"] == 0
    now = packs(s3, url)
    assert len(now) == 1 and not set(now) & set(old)
    assert sum(now.values()) < sum(old.values()) / 3
    b = stores("b")
    hoard(s3, "init", "--from", url, "--store", b.path)
    r = hj(s3, "pull", url, "--store", b.path, "--volume", "v")
    assert r["added"] == 1
    assert (b.mount("v")["v"] / "f0").read_bytes() == rnd(1 << 20, 80)
    # the first push's manifest is gone too, and gc now has nothing to do
    g = hj(s3, "gc", "--remote", url, "--grace", "0")
    assert g["packs"] == g["packs_live"] == 1 and g["packs_deleted"] == 0


def test_killed_pull_then_rerun(s3, stores):
    """A pull killed midway leaves no half file under a real name; a rerun
    finishes the job."""
    url = f"s3://{s3.bucket}/killed-pull"
    a = stores("a")
    a.init()
    mp = a.mount("v")["v"]
    for i in range(48):
        (mp / f"f{i:02d}").write_bytes(rnd(1 << 20, 200 + i))
    a.umount()
    hj(s3, "push", url, "--store", a.path, "--volume", "v")
    b = stores("b")
    hoard(s3, "init", "--from", url, "--store", b.path)
    # the pull stalls on a ranged GET (a fault queued once it has read the
    # config, ref, manifest, listing and index) and is killed there
    s3.reset()
    p = subprocess.Popen([str(HOARD), "pull", url, "--store", b.path, "--volume", "v",
                          "--jobs", "1"], env=s3.env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while s3.stats()["by_method"].get("GET", 0) < 5 and time.monotonic() < deadline:
        time.sleep(0.005)
    s3.fault({"type": "stall", "method": "GET", "count": 1})
    time.sleep(1)
    p.kill()
    p.wait()
    stalled = s3.stats()["faults_fired"] == 1
    s3.reset()
    mp = b.mount("v")["v"]
    for n in os.listdir(mp):   # whatever is there is whole
        assert not n.startswith(".hoard-pull") or (mp / n).stat().st_size in (0, 1 << 20)
        if n.startswith("f"):
            assert (mp / n).read_bytes() == rnd(1 << 20, 200 + int(n[1:])), n
    b.umount()
    r = hj(s3, "pull", url, "--store", b.path, "--volume", "v")
    assert r["added"] + r["identical"] == 48
    assert not stalled or r["chunks_fetched"] > 0
    mp = b.mount("v")["v"]
    assert sorted(os.listdir(mp)) == [f"f{i:02d}" for i in range(48)]
    for i in range(48):
        assert (mp / f"f{i:02d}").read_bytes() == rnd(1 << 20, 200 + i)
