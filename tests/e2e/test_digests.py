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
