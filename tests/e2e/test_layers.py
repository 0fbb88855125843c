# SPDX-License-Identifier: MIT
"""tests/check_layers.py: passes on the tree, and fails on each kind of break.

tests/run.sh runs the check itself before pytest (a break fails the run at
once); these tests show that it can fail: each copies fs/, include/ and
tools/ to a scratch tree, breaks the rule one way and expects exit 1 with a
line naming the break.
"""
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

CHECK = REPO / "tests" / "check_layers.py"


def run(root=None):
    args = [sys.executable, str(CHECK)] + (["--root", str(root)] if root else [])
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


@pytest.fixture
def tree(tmp_path):
    for d in ("fs", "include", "tools"):
        shutil.copytree(REPO / d, tmp_path / d)
    return tmp_path


def add_include(path, line):
    text = path.read_text()
    i = text.index("#include")
    path.write_text(text[:i] + line + "\n" + text[i:])


def test_tree_is_clean():
    p = run()
    assert p.returncode == 0, p.stderr
    assert "include rule holds" in p.stdout


def test_copy_is_clean(tree):
    p = run(tree)
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("file,line,expect", [
    ("fs/store/store.c", '#include "hoard/fs.h"', "above"),              # store -> core
    ("fs/base/util.c", '#include "hoard/store.h"', "above"),            # util -> store
    ("fs/policy/gc.c", '#include "../core/fs-internal.h"', "private header"),     # not the core
    ("fs/core/meta.c", "#include <zstd.h>", "only module codec"),      # outside lib
    ("fs/core/meta.c", "#include <lz4.h>", "no module owns"),          # unknown lib
])
def test_break_is_caught(tree, file, line, expect):
    add_include(tree / file, line)
    p = run(tree)
    assert p.returncode == 1, p.stdout + p.stderr
    assert file in p.stderr and expect in p.stderr, p.stderr


def test_cycle_is_caught(tree):
    # two services including each other: same layer, so only the cycle
    # check can see it
    add_include(tree / "fs/policy/gc.c", '#include "hoard/evict.h"')
    p = run(tree)
    assert p.returncode == 1
    assert "include cycle" in p.stderr and "evict" in p.stderr, p.stderr


def test_fixed_exception_must_be_removed(tree):
    # a known exception that does not happen (as when the work that
    # removes it lands): a copy of the check that lists one more
    check = tree / "check_layers.py"
    text = CHECK.read_text()
    assert "EXCEPTIONS = {\n" in text
    check.write_text(text.replace(
        "EXCEPTIONS = {\n",
        'EXCEPTIONS = {\n    ("fs/remote/remote.c", "include/hoard/fs.h"):'
        ' "a fixed one",\n', 1))
    p = subprocess.run([sys.executable, str(check), "--root", str(tree)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert "no longer happens" in p.stderr, p.stderr


def test_file_outside_the_table(tree):
    (tree / "fs/newmod.c").write_text('#include "hoard/util.h"\n')
    p = run(tree)
    assert p.returncode == 1
    assert "fs/newmod.c: not in any module" in p.stderr, p.stderr
