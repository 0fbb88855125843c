# SPDX-License-Identifier: MIT
"""fsx (see fsx.py) against a tmpfs oracle.

HOARD_FSX_OPS sets the number of operations (default 20,000; 3,000 under
HOARD_E2E_SHORT=1), HOARD_FSX_SEED the seed.  On a hoard mount the final
state is compared once more after an unmount and a remount.
"""
import os

import pytest

from conftest import FUT, SHORT
from fsx import Fsx

OPS = int(os.environ.get("HOARD_FSX_OPS", 3000 if SHORT else 20000))
SEED = int(os.environ.get("HOARD_FSX_SEED", 20240601))


def test_fsx(fut, tmpfs, request):
    fsx = Fsx(tmpfs / "fsx", fut / "fsx", SEED, OPS)
    counts = fsx.run()
    # every kind of operation ran, most of them often
    assert set(counts) == {name for name, _ in Fsx.OPS}, counts
    assert sum(counts.values()) == OPS
    if FUT == "hoard":
        store = request.getfixturevalue("store")
        store.umount()
        store.mount("test")
        fsx.check_all("after remount")


def test_fsx_many_names_small_files(fut, tmpfs):
    """More names and small files: renames and links dominate."""
    fsx = Fsx(tmpfs / "fsx", fut / "fsx", SEED + 1, max(OPS // 4, 500), nnames=12,
              max_size=256 * 1024, max_handles=10)
    fsx.run()
