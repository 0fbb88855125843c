# SPDX-License-Identifier: MIT
"""The C unit tests, run through pytest so one summary closes the suite.

Each binary of tests/meson.build's unit_tests (built in $HOARD_BUILD/tests)
is one test.  When $HOARD_ASAN_BUILD names an
ASan/UBSan build directory, its unit tests run too, and so does a short e2e
pass (HOARD_E2E_SHORT=1) of the POSIX, fsx and durability tests against its
daemon, in a pytest subprocess.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BUILD, REPO

REQUIRED_UNIT_TESTS = ["test_chunker", "test_codec", "test_hash", "test_store"]


def unit_tests():
    """The unit_tests list of tests/meson.build, so new ones are run too."""
    m = re.search(r"^unit_tests\s*=\s*\[([^\]]*)\]",
                  (REPO / "tests" / "meson.build").read_text(), re.M)
    names = re.findall(r"'([^']+)'", m.group(1)) if m else []
    return names + [n for n in REQUIRED_UNIT_TESTS if n not in names]


UNIT_TESTS = unit_tests()
ASAN_E2E_FILES = ["tests/e2e/test_posix.py", "tests/e2e/test_fsx.py",
                  "tests/e2e/test_durability.py", "tests/e2e/test_stream.py"]
UNIT_TIMEOUT = 600
ASAN_E2E_TIMEOUT = 3600

_asan = os.environ.get("HOARD_ASAN_BUILD")
ASAN_BUILD = Path(_asan).resolve() if _asan else None
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
}
needs_asan = pytest.mark.skipif(ASAN_BUILD is None, reason="HOARD_ASAN_BUILD not set")


def tail(text, n=8000):
    return text if len(text) <= n else "...\n" + text[-n:]


def unit_binary(build, name):
    """tests/meson.build puts them in <build>/tests/."""
    for p in (build / "tests" / name, build / name):
        if p.is_file() and os.access(p, os.X_OK):
            return p
    raise AssertionError(f"{name} not built in {build}/tests")


def run_unit(binary, env):
    p = subprocess.run([str(binary)], capture_output=True, text=True, errors="replace",
                       env=env, cwd=binary.parent, timeout=UNIT_TIMEOUT)
    rc = p.returncode   # (not p.returncode: pytest would print p's repr too)
    assert rc == 0, (f"{binary} exited {rc}\n--- stdout\n{tail(p.stdout)}"
                     f"\n--- stderr\n{tail(p.stderr)}")


@pytest.mark.parametrize("name", UNIT_TESTS)
def test_unit(name, tmp_path):
    run_unit(unit_binary(BUILD, name), dict(os.environ, TMPDIR=str(tmp_path)))


@needs_asan
@pytest.mark.parametrize("name", UNIT_TESTS)
def test_unit_asan(name, tmp_path):
    run_unit(unit_binary(ASAN_BUILD, name),
             dict(os.environ, TMPDIR=str(tmp_path), **SANITIZER_ENV))


@needs_asan
def test_e2e_short_asan(tmp_path):
    files = [f for f in ASAN_E2E_FILES if (REPO / f).is_file()]
    if not files:
        pytest.skip(f"none of {ASAN_E2E_FILES} exist")
    for exe in ("hoardfs", "hoard"):
        assert (ASAN_BUILD / exe).is_file(), f"{ASAN_BUILD / exe} not built"
    env = dict(os.environ, HOARD_BUILD=str(ASAN_BUILD), HOARD_E2E_SHORT="1", **SANITIZER_ENV)
    env.pop("HOARD_ASAN_BUILD")   # no recursion
    # its own basetemp: a nested session must not clean up ours
    args = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
            f"--basetemp={tmp_path / 'asan-e2e'}", *files]
    p = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True,
                       errors="replace", timeout=ASAN_E2E_TIMEOUT)
    rc = p.returncode
    assert rc == 0, (f"ASan e2e pass exited {rc} ({' '.join(files)})\n"
                     f"--- stdout\n{tail(p.stdout, 20000)}\n--- stderr\n{tail(p.stderr)}")
