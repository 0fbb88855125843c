# SPDX-License-Identifier: MIT
"""The fuzz targets of tests/fuzz (one per decoder of untrusted bytes).

- test_replay: every build's fuzz_<name>_replay runs the seed corpora (made
  by fuzz_seeds from the encoders, plus tests/fuzz/corpus/<name>: hand-
  written seeds and one file per crash ever found) once; in
  $HOARD_ASAN_BUILD too, under ASan/UBSan.
- test_libfuzzer: when $HOARD_FUZZ_BUILD names a build made with clang and
  -Dfuzz=true (tests/run.sh makes build-fuzz when clang's libFuzzer is
  installed), each target fuzzes for $HOARD_FUZZ_SECONDS (default 3)
  starting from those seeds; the corpus it grows is kept in
  $HOARD_FUZZ_BUILD/corpus/<name>.  `tests/run.sh --fuzz-long[=SECONDS]`
  runs only this, for longer.

A crash leaves its input in the test's tmp directory (the failure names
it): fix the decoder, then add the input to tests/fuzz/corpus/<name>/ as
regress-<what> so every build replays it from then on.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import BUILD, REPO
from test_unit import ASAN_BUILD, SANITIZER_ENV, needs_asan, tail

CORPUS = REPO / "tests" / "fuzz" / "corpus"
FUZZ_SECONDS = int(os.environ.get("HOARD_FUZZ_SECONDS", "3"))
_fb = os.environ.get("HOARD_FUZZ_BUILD")
FUZZ_BUILD = Path(_fb).resolve() if _fb else None


def fuzz_targets():
    """The fuzz_targets list of tests/meson.build."""
    m = re.search(r"^fuzz_targets\s*=\s*\[([^\]]*)\]",
                  (REPO / "tests" / "meson.build").read_text(), re.M)
    assert m, "tests/meson.build has no fuzz_targets list"
    return re.findall(r"'([^']+)'", m.group(1))


TARGETS = fuzz_targets()


def binary(build, name):
    p = build / "tests" / name
    assert p.is_file() and os.access(p, os.X_OK), f"{name} not built in {build}/tests"
    return p


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    out = tmp_path_factory.mktemp("fuzz-seeds")
    p = subprocess.run([str(binary(BUILD, "fuzz_seeds")), str(out)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return out


def seed_dirs(seeds, name):
    dirs = [d for d in (seeds / name, CORPUS / name) if d.is_dir()]
    assert dirs, f"no seeds for fuzz target {name}"
    return dirs


def replay(build, name, dirs, tmp_path, env=None):
    p = subprocess.run([str(binary(build, f"fuzz_{name}_replay"))] + [str(d) for d in dirs],
                       capture_output=True, text=True, errors="replace", timeout=600,
                       env=dict(os.environ, TMPDIR=str(tmp_path), **(env or {})))
    rc = p.returncode
    assert rc == 0, (f"fuzz_{name}_replay exited {rc}\n--- stdout\n{tail(p.stdout)}"
                     f"\n--- stderr\n{tail(p.stderr)}")
    m = re.search(r"replay: (\d+) inputs", p.stdout)
    assert m and int(m.group(1)) > 0, p.stdout


def test_corpus_dirs_are_targets():
    """A corpus directory of no target would silently never run."""
    extra = {d.name for d in CORPUS.iterdir() if d.is_dir()} - set(TARGETS)
    assert not extra, f"tests/fuzz/corpus/ has directories of no target: {extra}"


@pytest.mark.parametrize("name", TARGETS)
def test_replay(name, seeds, tmp_path):
    replay(BUILD, name, seed_dirs(seeds, name), tmp_path)


@needs_asan
@pytest.mark.parametrize("name", TARGETS)
def test_replay_asan(name, seeds, tmp_path):
    replay(ASAN_BUILD, name, seed_dirs(seeds, name), tmp_path, SANITIZER_ENV)


def test_replay_driver(tmp_path):
    """The driver counts what it ran and fails on a path it cannot read.
    (That a target's abort fails the replay is what the regress-* seeds
    show: each aborted before its fix.)"""
    bad = tmp_path / "not-a-ref"
    bad.write_bytes(b"hoard-ref 1\nmanifest zz\n")
    replay(BUILD, "ref", [bad], tmp_path)
    p = subprocess.run([str(binary(BUILD, "fuzz_ref_replay")), str(tmp_path / "missing")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "missing" in p.stderr, p.stderr


needs_fuzz = pytest.mark.skipif(FUZZ_BUILD is None,
                                reason="HOARD_FUZZ_BUILD not set (no clang libFuzzer build)")


@needs_fuzz
@pytest.mark.parametrize("name", TARGETS)
def test_libfuzzer(name, seeds, tmp_path):
    exe = binary(FUZZ_BUILD, f"fuzz_{name}")
    corpus = FUZZ_BUILD / "corpus" / name
    corpus.mkdir(parents=True, exist_ok=True)
    for d in seed_dirs(seeds, name):
        for f in d.iterdir():
            if f.is_file():
                shutil.copyfile(f, corpus / f"seed-{d.parent.name}-{f.name}")
    art = tmp_path / "artifacts"
    art.mkdir()
    args = [str(exe), f"-max_total_time={FUZZ_SECONDS}", "-timeout=60",
            "-rss_limit_mb=4096", "-print_final_stats=1",
            f"-artifact_prefix={art}/", str(corpus)]
    p = subprocess.run(args, capture_output=True, text=True, errors="replace",
                       timeout=FUZZ_SECONDS + 600,
                       env=dict(os.environ, TMPDIR=str(tmp_path), **SANITIZER_ENV))
    found = sorted(str(f) for f in art.iterdir())
    rc = p.returncode
    assert rc == 0 and not found, (
        f"fuzz_{name} exited {rc}; inputs kept: {found}\n"
        f"fix the decoder, then add the input to tests/fuzz/corpus/{name}/ "
        f"as regress-<what>\n--- stderr\n{tail(p.stderr, 12000)}")
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", p.stderr)
    assert runs and int(runs.group(1)) > 0, tail(p.stderr)
