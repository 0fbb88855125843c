# SPDX-License-Identifier: MIT
"""Helpers for the cache-workload tests (test_pip.py, test_hf.py).

- `under_test`: the directory the workload writes to.  Normally the mounted
  hoard volume (conftest's `mnt`); with HOARD_E2E_PLAIN=1 a plain directory
  in tmp_path instead, so the tests' own logic can be checked without the
  daemon.  Tests that need the store (stats, remount) skip in plain mode.
- `PackageIndex`: a PEP 503 "simple" index on 127.0.0.1 with PyPI's cache
  headers that logs every request.
- `build_dists`: builds the tiny packages in data/pkgs (two wheels and an
  sdist) offline with Debian's pip/setuptools/wheel.
- `make_venv` / `pip_env`: a venv of /usr/bin/python3 whose pip runs with
  no user configuration.
"""
import hashlib
import html
import os
import re
import shutil
import subprocess
import sys
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PKG_SOURCES = HERE / "data" / "pkgs"
SYSTEM_PYTHON = "/usr/bin/python3"
DEBIAN_WHEELS = Path("/usr/share/python-wheels")
PLAIN = os.environ.get("HOARD_E2E_PLAIN") == "1"


class UnderTest:
    """Where a workload writes: `path`, and the Store behind it (None in
    plain mode)."""

    def __init__(self, path, store=None, volume=None):
        self.path = Path(path)
        self.store = store
        self.volume = volume

    @property
    def plain(self):
        return self.store is None

    def remount(self):
        """Unmount and mount the volume again (cold kernel caches, data
        read back from the store).  A no-op in plain mode."""
        if self.store is None:
            return
        self.store.umount()
        self.path = self.store.mount(self.volume)[self.volume]

    def check_on_mount(self, paths):
        """Every path lives on the mounted filesystem, not on the directory
        underneath it."""
        dev = os.stat(self.path).st_dev
        if self.store is not None:
            from conftest import is_mounted
            assert is_mounted(self.path), f"{self.path} is not a mountpoint"
            assert dev != os.stat(self.path.parent).st_dev
        for p in paths:
            assert os.lstat(p).st_dev == dev, f"{p} is not on {self.path}"


@pytest.fixture
def under_test(request, tmp_path):
    if PLAIN:
        d = tmp_path / "plain-mnt"
        d.mkdir()
        return UnderTest(d)
    store = request.getfixturevalue("store")
    mnt = request.getfixturevalue("mnt")
    return UnderTest(mnt, store, "test")


def stats_figs(stats, volume=None):
    """The figures dict of `hoard stats --json`, for the whole store or for
    one volume; fails with the JSON when its shape is not the expected one."""
    try:
        if volume is None:   # the store's figures are at the top level
            figs = stats.get("total", stats)
            figs["unique_bytes"], figs["logical_bytes"], figs["files"]
            return figs
        vols = stats["volumes"]
        if isinstance(vols, dict):
            return vols[volume]
        for v in vols:
            if v["name"] == volume:
                return v
        raise KeyError(volume)
    except (KeyError, TypeError) as e:
        raise AssertionError(f"unexpected stats JSON ({e!r}): {stats}") from None


# -- the package index --------------------------------------------------------

def normalize(name):
    """PEP 503 name normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project_of(filename):
    if filename.endswith(".whl"):
        return normalize(filename.split("-")[0])
    for ext in (".tar.gz", ".zip"):
        if filename.endswith(ext):
            return normalize(filename[: -len(ext)].rsplit("-", 1)[0])
    raise ValueError(f"not a distribution: {filename}")


class PackageIndex:
    """A PEP 503 index serving `files` (wheels and sdists) on 127.0.0.1.

    Files live under /packages/<h0:2>/<h2:4>/<h4:>/<name> like on
    files.pythonhosted.org, with `Cache-Control: max-age=365000000,
    immutable, public` and an ETag; index pages under /simple/ have
    `max-age=600` and an ETag, and answer If-None-Match with 304.  Every
    request is appended to `log` as (method, path, status)."""

    FILE_CACHE = "max-age=365000000, immutable, public"
    PAGE_CACHE = "max-age=600, public"

    def __init__(self, files):
        self.files = {}      # url path -> (Path, sha256)
        self.projects = {}   # normalized name -> [(filename, url path, sha256)]
        for f in map(Path, files):
            digest = hashlib.sha256(f.read_bytes()).hexdigest()
            url = f"/packages/{digest[:2]}/{digest[2:4]}/{digest[4:]}/{f.name}"
            self.files[url] = (f, digest)
            self.projects.setdefault(project_of(f.name), []).append((f.name, url, digest))
        self.log = []
        self._lock = threading.Lock()
        self._server = None
        self._thread = None

    # pages --------------------------------------------------------------
    def _page(self, title, links):
        body = ['<!DOCTYPE html>', '<html>', '<head>',
                '<meta name="pypi:repository-version" content="1.0">',
                f'<title>{html.escape(title)}</title>', '</head>', '<body>',
                f'<h1>{html.escape(title)}</h1>']
        body += [f'<a href="{html.escape(h)}">{html.escape(t)}</a><br/>' for h, t in links]
        body += ['</body>', '</html>', '']
        return "\n".join(body).encode()

    def page_for(self, path):
        if path == "/simple/":
            return self._page("Simple index",
                              [(f"/simple/{p}/", p) for p in sorted(self.projects)])
        m = re.fullmatch(r"/simple/([^/]+)/", path)
        if m and m.group(1) in self.projects:
            proj = m.group(1)
            return self._page(f"Links for {proj}",
                              [(f"{url}#sha256={d}", name)
                               for name, url, d in sorted(self.projects[proj])])
        return None

    # server ---------------------------------------------------------------
    def start(self):
        index = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "hoard-test-index/1"

            def log_message(self, *args):
                pass

            def _reply(self, status, headers=(), body=b"", send_body=True):
                with index._lock:
                    index.log.append((self.command, self.path, status))
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                if status != 304:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if send_body and status != 304:
                    self.wfile.write(body)

            def _serve(self, send_body):
                path = self.path.split("?", 1)[0]
                if path == "/simple":
                    path = "/simple/"
                if path in index.files:
                    f, digest = index.files[path]
                    etag = f'"{digest}"'
                    headers = [("Cache-Control", index.FILE_CACHE), ("ETag", etag),
                               ("Last-Modified", formatdate(f.stat().st_mtime, usegmt=True)),
                               ("Accept-Ranges", "bytes")]
                    if self.headers.get("If-None-Match") == etag:
                        return self._reply(304, headers)
                    headers.append(("Content-Type", "application/octet-stream"))
                    return self._reply(200, headers, f.read_bytes(), send_body)
                page = index.page_for(path)
                if page is not None:
                    etag = '"' + hashlib.sha256(page).hexdigest()[:32] + '"'
                    headers = [("Cache-Control", index.PAGE_CACHE), ("ETag", etag),
                               ("Vary", "Accept-Encoding, Accept")]
                    if self.headers.get("If-None-Match") == etag:
                        return self._reply(304, headers)
                    headers.append(("Content-Type", "text/html; charset=utf-8"))
                    return self._reply(200, headers, page, send_body)
                return self._reply(404, [("Content-Type", "text/plain")], b"not found\n", send_body)

            def do_GET(self):
                self._serve(True)

            def do_HEAD(self):
                self._serve(False)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/simple/"

    def mark(self):
        with self._lock:
            return len(self.log)

    def requests_since(self, mark):
        with self._lock:
            return list(self.log[mark:])

    def file_url(self, filename):
        for url, (f, _) in self.files.items():
            if f.name == filename:
                return url
        raise KeyError(filename)


# -- building the test packages and the venv --------------------------------

def pip_env(**extra):
    """The environment for a pip subprocess: none of the caller's PIP_*
    settings (PIP_FIND_LINKS would let pip bypass the index), no config
    files."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    for k in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONUSERBASE"):
        env.pop(k, None)
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_NO_INPUT="1", PIP_NO_COLOR="1")
    env.update(extra)
    return env


def check_run(args, timeout=300, **kw):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                       env=kw.pop("env", pip_env()), timeout=timeout, **kw)
    if p.returncode != 0:
        raise AssertionError(f"{args} exited {p.returncode}\n--- stdout\n{p.stdout[-6000:]}"
                             f"\n--- stderr\n{p.stderr[-6000:]}")
    return p


def build_dists(workdir):
    """Build data/pkgs into workdir/dist offline: wheels of alpha and beta,
    an sdist of gamma.  Sources are copied first so the build leaves nothing
    in the repository.  Returns the list of files built."""
    workdir = Path(workdir)
    src = workdir / "src"
    dist = workdir / "dist"
    shutil.copytree(PKG_SOURCES, src)
    dist.mkdir()
    check_run([SYSTEM_PYTHON, "-m", "pip", "wheel", "--no-index", "--no-deps", "--no-cache-dir",
               "--no-build-isolation", "--find-links", DEBIAN_WHEELS, "-w", dist,
               src / "hoardtest-alpha", src / "hoardtest-beta"])
    check_run([SYSTEM_PYTHON, "-c",
               "import sys; from setuptools import build_meta as b; "
               "print(b.build_sdist(sys.argv[1]))", dist], cwd=src / "hoardtest-gamma")
    built = sorted(dist.iterdir())
    names = [f.name for f in built]
    assert any(n.startswith("hoardtest_alpha-1.2.0-") and n.endswith(".whl") for n in names), names
    assert any(n.startswith("hoardtest_beta-0.9.1-") and n.endswith(".whl") for n in names), names
    assert "hoardtest-gamma-2.0.3.tar.gz" in names, names
    return built


def debian_wheels():
    wheels = sorted(DEBIAN_WHEELS.glob("*.whl"))
    projects = {project_of(w.name) for w in wheels}
    missing = {"pip", "setuptools", "wheel"} - projects
    assert not missing, f"{DEBIAN_WHEELS} lacks {missing} (python3-*-whl packages)"
    return wheels


def make_venv(path):
    """A venv of Debian's python with its bundled pip; returns its python."""
    check_run([SYSTEM_PYTHON, "-m", "venv", path])
    py = Path(path) / "bin" / "python"
    check_run([py, "-m", "pip", "--version"])
    return py


def tree_snapshot(root):
    """{relative path: ("f", bytes) | ("l", target) | ("d", None)} of a tree."""
    root = Path(root)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("l", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("d", None)
            else:
                out[rel] = ("f", p.read_bytes())
    return out


def assert_same_tree(a, b):
    ta, tb = tree_snapshot(a), tree_snapshot(b)
    only_a = sorted(set(ta) - set(tb))
    only_b = sorted(set(tb) - set(ta))
    assert not only_a and not only_b, f"only in {a}: {only_a[:20]}; only in {b}: {only_b[:20]}"
    differ = sorted(k for k in ta if ta[k] != tb[k])
    assert not differ, f"differ between {a} and {b}: {differ[:20]}"
    return ta


def all_files(root):
    return sorted(p for p in Path(root).rglob("*") if p.is_file() and not p.is_symlink())


if __name__ == "__main__":  # manual check: serve the test index
    import tempfile
    import time
    d = tempfile.mkdtemp()
    idx = PackageIndex(build_dists(d) + debian_wheels()).start()
    print(idx.url, file=sys.stderr)
    time.sleep(3600)
