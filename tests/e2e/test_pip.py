# SPDX-License-Identifier: MIT
"""Real pip with its cache on a hoard volume.

A venv of Debian's python (its own pip 23) installs from a PEP 503 index on
127.0.0.1 (helpers_pip.PackageIndex) with --cache-dir on the mount.  pip
keeps HTTP responses (files and index pages) in <cache>/http and wheels it
built from sdists in <cache>/wheels; both are written with pip's temporary
files + os.replace and read back on the next install.  The index serves
PyPI's cache headers, so a second install must fetch nothing but index
pages, and must install exactly the same bytes.

HOARD_E2E_PLAIN=1 runs the same workload on a plain directory (no daemon).
"""
import subprocess
import zipfile

import pytest

from helpers_pip import (PackageIndex, assert_same_tree, all_files, build_dists,
                         debian_wheels, make_venv, pip_env, stats_figs,
                         under_test)  # noqa: F401 (fixture)

# gamma is an sdist that needs alpha, which needs beta; pip, setuptools and
# wheel are Debian's wheels (the largest files, several chunks each).
REQUIREMENTS = ["pip", "setuptools", "wheel", "hoardtest-gamma"]
PIP_TIMEOUT = 120


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    return build_dists(tmp_path_factory.mktemp("dists")) + debian_wheels()


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory):
    return make_venv(tmp_path_factory.mktemp("venv") / "venv")


@pytest.fixture
def index(dists):
    idx = PackageIndex(dists).start()
    yield idx
    idx.stop()


def pip_args(py, cache, index, target):
    return [str(py), "-m", "pip", "install", "--cache-dir", str(cache),
            "--index-url", index.url, "--trusted-host", "127.0.0.1",
            "--target", str(target), "--no-compile", "--progress-bar", "off",
            *REQUIREMENTS]


def install_env(cache):
    # also for the pip that installs gamma's build requirements (a child pip
    # that does not inherit --cache-dir)
    return pip_env(PIP_CACHE_DIR=str(cache))


def pip_install(py, cache, index, target):
    p = subprocess.run(pip_args(py, cache, index, target), capture_output=True,
                       text=True, env=install_env(cache), timeout=PIP_TIMEOUT)
    assert p.returncode == 0, (f"pip install exited {p.returncode}\n--- stdout\n"
                               f"{p.stdout[-6000:]}\n--- stderr\n{p.stderr[-6000:]}")
    return p


def downloads(requests):
    return sorted(path for _, path, _ in requests if not path.startswith("/simple/"))


def check_installed(py, target):
    """The installed packages import and work (their bytes are right)."""
    p = subprocess.run([str(py), "-c", "import hoardtest_gamma, hoardtest_beta; "
                        "print(hoardtest_gamma.main()); print(len(hoardtest_beta.words()))"],
                       capture_output=True, text=True, timeout=60,
                       env=pip_env(PYTHONPATH=str(target)))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split()
    assert p.stdout.startswith("alpha says hello to gamma ("), p.stdout
    assert lines[-1] == "6000", p.stdout


def check_cache(py, cache, under, index):
    """pip's HTTP cache and wheel cache are filled, on the mount, readable."""
    http = [d for d in (cache / "http", cache / "http-v2") if d.is_dir()]
    assert http, f"no http cache in {cache}: {sorted(p.name for p in cache.iterdir())}"
    http_files = [f for d in http for f in all_files(d)]
    # at least one cached response per distribution file
    assert len(http_files) >= len(index.files), (len(http_files), len(index.files))
    built = [f for f in all_files(cache / "wheels") if f.suffix == ".whl"]
    assert [f.name for f in built] == ["hoardtest_gamma-2.0.3-py3-none-any.whl"], built
    with zipfile.ZipFile(built[0]) as z:
        assert z.testzip() is None
        assert "hoardtest_gamma/__init__.py" in z.namelist()
    under.check_on_mount(http_files + built + [cache])
    p = subprocess.run([str(py), "-m", "pip", "cache", "list", "--cache-dir", str(cache)],
                       capture_output=True, text=True, env=pip_env(), timeout=60)
    assert p.returncode == 0 and "hoardtest_gamma-2.0.3-py3-none-any.whl" in p.stdout, p
    return http_files + built


def first_install(py, under, index, target):
    cache = under.path / "pipcache"
    mark = index.mark()
    pip_install(py, cache, index, target)
    got = downloads(index.requests_since(mark))
    # every distribution was fetched (setuptools and wheel also for the
    # isolated build of gamma, possibly served from the cache by then)
    assert set(got) == set(index.files), f"downloads: {got}"
    check_installed(py, target)
    cached = check_cache(py, cache, under, index)
    if not under.plain:
        figs = stats_figs(under.store.stats(), under.volume)
        size = sum(f.stat().st_size for f in cached)
        assert figs["files"] >= len(cached), figs
        assert figs["logical_bytes"] >= size, (figs, size)
    return cache


def second_install(py, cache, index, target):
    mark = index.mark()
    pip_install(py, cache, index, target)
    reqs = index.requests_since(mark)
    assert not downloads(reqs), f"second install downloaded again: {downloads(reqs)}"
    # pip revalidates index pages: it did talk to the index
    assert any(path.startswith("/simple/hoardtest-gamma/") for _, path, _ in reqs), reqs


def test_second_install_uses_cache(venv_python, under_test, index, tmp_path):
    first = tmp_path / "target-1"
    cache = first_install(venv_python, under_test, index, first)
    # the second target is on the mount too: pip moves files into it
    second = under_test.path / "target-2"
    second_install(venv_python, cache, index, second)
    tree = assert_same_tree(first, second)
    assert "hoardtest_gamma/__init__.py" in tree and "pip/__init__.py" in tree
    check_installed(venv_python, second)


def test_cache_survives_remount(venv_python, under_test, index, tmp_path):
    if under_test.plain:
        pytest.skip("needs the daemon (HOARD_E2E_PLAIN=1)")
    first = tmp_path / "target-1"
    cache = first_install(venv_python, under_test, index, first)
    before = {str(f.relative_to(cache)): f.read_bytes() for f in all_files(cache)}
    under_test.remount()
    cache = under_test.path / "pipcache"
    after = {str(f.relative_to(cache)): f.read_bytes() for f in all_files(cache)}
    assert sorted(after) == sorted(before)
    assert [k for k in before if before[k] != after[k]] == []
    second = tmp_path / "target-2"
    second_install(venv_python, cache, index, second)
    assert_same_tree(first, second)


def test_concurrent_pips_share_cache(venv_python, under_test, index, tmp_path):
    cache = under_test.path / "pipcache"
    targets = [tmp_path / "target-a", tmp_path / "target-b"]
    procs = [subprocess.Popen(pip_args(venv_python, cache, index, t), env=install_env(cache),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for t in targets]
    outs = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=PIP_TIMEOUT)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        outs.append((p.returncode, out))
    for rc, out in outs:
        assert rc == 0, f"concurrent pip exited {rc}:\n{out[-6000:]}"
    assert_same_tree(*targets)
    check_installed(venv_python, targets[0])
    check_cache(venv_python, cache, under_test, index)
    # what the two left in the cache is complete and consistent
    third = tmp_path / "target-c"
    second_install(venv_python, cache, index, third)
    assert_same_tree(targets[0], third)
