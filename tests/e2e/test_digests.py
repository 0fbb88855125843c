# SPDX-License-Identifier: MIT
"""The chunk digest rows a trusted lazy pull keeps (docs/FORMAT.md 2.1,
`sha256.` + chunk id) go with their chunks: freeing a chunk (its last
file deleted, its volume removed) deletes its row, and fsck counts the
rows (`checked.digests`) and finds none left without a chunk.  (fsck's
count and repair of orphan rows: tests/unit/test_fsck.c.)

Real parts: the S3 server fixture, real stores, the daemon, FUSE."""
from s3server import s3  # noqa: F401  (a fixture)
from test_sync import hj, hoard, stores  # noqa: F401  (stores: a fixture)
from test_trust import signed, trusted_store  # noqa: F401  (signed: a fixture)


def fsck_digests(s3, st):
    p = hoard(s3, "fsck", "--json", "--store", st.path, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    import json
    rep = json.loads(p.stdout)
    assert rep["found"]["orphan_digests"] == 0
    return rep["checked"]["digests"]


def test_digests_go_with_their_chunks(s3, stores, signed):
    n = signed
    D = trusted_store(s3, stores, n, "D")
    mp = D.mount("vol")["vol"]
    # through the daemon: it fetches with the request's credentials
    r = hj(s3, "pull", n.url, "--store", D.path, "--volume", "vol", "--lazy")
    assert r["signed_by"]
    assert (mp / "small.bin").read_bytes() == n.small   # checked against its row
    D.umount()
    all_rows = fsck_digests(s3, D)
    assert all_rows >= 3, all_rows   # small.bin's chunk, big.bin's chunks
    mp = D.mount("vol")["vol"]
    (mp / "big.bin").unlink()
    D.umount()
    assert fsck_digests(s3, D) == 1   # small.bin's
    hoard(s3, "volume", "rm", "vol", "--store", D.path)
    assert fsck_digests(s3, D) == 0


def test_signed_push_hashes_only_new_chunks(s3, stores, tmp_path, request):
    """A signed push keeps the SHA-256 it computes as the store's rows
    (FORMAT.md 2.1) and reuses them: a second push of an unchanged volume
    hashes nothing, one with a new file hashes only its new chunks, and
    the manifest's digests are still right (a trusted full pull checks
    every fetched chunk against them).  A wrong row (damaged store) is
    signed as is and caught by the reader: a trusted pull refuses the
    chunk, never wrong bytes."""
    import json
    import random
    from conftest import CORRUPT, run
    from test_trust import refused
    url = f"s3://{s3.bucket}/{request.node.name}"
    key = tmp_path / "t.key"
    hoard(s3, "key", "generate", key)
    S = stores("S")
    S.init()
    mp = S.mount("vol")["vol"]
    (mp / "a.bin").write_bytes(random.Random(1).randbytes(3_000_000))
    (mp / "b.bin").write_bytes(random.Random(2).randbytes(40_000))
    S.umount()   # what was written is committed
    r = hj(s3, "push", url, "--store", S.path, "--volume", "vol", "--sign", key)
    assert r["chunks"] >= 3 and r["chunks_hashed"] == r["chunks"], r
    first = r["manifest"]
    assert fsck_digests(s3, S) == r["chunks"]
    # unchanged: nothing read again, the same manifest
    r = hj(s3, "push", url, "--store", S.path, "--volume", "vol", "--sign", key)
    assert r["chunks_hashed"] == 0 and r["manifest"] == first, r
    # a new file: only its chunks
    mp = S.mount("vol")["vol"]
    (mp / "c.bin").write_bytes(random.Random(3).randbytes(1_000_000))
    S.umount()
    r = hj(s3, "push", url, "--store", S.path, "--volume", "vol", "--sign", key)
    assert 0 < r["chunks_hashed"] == r["chunks_new"] < r["chunks"], r
    assert fsck_digests(s3, S) == r["chunks"]
    # a trusted full pull checks every chunk against the reused digests
    D = stores("D")
    hoard(s3, "init", "--from", url, "--store", D.path)
    hoard(s3, "config", "--store", D.path, "trust", f"{key}.pub")
    r2 = hj(s3, "pull", url, "--store", D.path, "--volume", "vol")
    assert r2["signed_by"] and r2["chunks_fetched"] == r["chunks"], r2
    mp = D.mount("vol")["vol"]
    assert (mp / "a.bin").read_bytes() == random.Random(1).randbytes(3_000_000)
    assert (mp / "c.bin").read_bytes() == random.Random(3).randbytes(1_000_000)
    D.umount()
    assert fsck_digests(s3, D) == r["chunks"]
    # the puller's own digests were checked: a push from D reuses them all
    r3 = hj(s3, "push", url, "--store", D.path, "--volume", "vol", "--sign", key,
            "--ref", "fromD")
    assert r3["chunks_hashed"] == 0 and r3["chunks"] == r["chunks"], r3

    # a damaged row in S: signed as it is (the push does not read the
    # chunk again) ...
    run([CORRUPT, "--store", S.path, "--volume", "vol", "--path", "/b.bin",
         "--mode", "digest"])
    mp = S.mount("vol")["vol"]
    (mp / "d.bin").write_bytes(b"d" * 1000)
    S.umount()
    r = hj(s3, "push", url, "--store", S.path, "--volume", "vol", "--sign", key)
    assert r["chunks_hashed"] == 1, r
    # ... and a trusted reader refuses that chunk: nothing pulled
    E = stores("E")
    hoard(s3, "init", "--from", url, "--store", E.path)
    hoard(s3, "config", "--store", E.path, "trust", f"{key}.pub")
    p = hoard(s3, "pull", url, "--store", E.path, "--volume", "vol", check=False)
    refused(p, "has its id but not the SHA-256")
    ls = json.loads(hoard(s3, "volume", "ls", "--json", "--store", E.path).stdout)
    assert ls["volumes"] == [], ls
