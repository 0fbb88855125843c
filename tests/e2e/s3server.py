# SPDX-License-Identifier: MIT
"""A real S3 server for the tests: tests/s3/signer-proxy.js.

That is s3rver (an S3 implementation on the local file system) behind a front
that verifies every request's SigV4 signature with the AWS SDK for
JavaScript's signer, and the payload digests (x-amz-content-sha256,
Content-MD5), as AWS S3 does; see the header of signer-proxy.js.  The front
also injects faults on request (503 SlowDown, connection resets, stalls,
delays, truncated or corrupted bodies), queued one by one or at random for
a fraction of requests (chaos), for the retry tests.

    from s3server import s3            # the module-scoped fixture
    def test_x(s3):
        subprocess.run([...], env=s3.env())

    with start_s3_server(tmp_path, session_token="t") as srv: ...

The node modules are installed on first use with `npm ci` from
tests/s3/package-lock.json (node >= 18 and npm needed).
"""
import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

S3_DIR = Path(__file__).resolve().parents[1] / "s3"
ACCESS_KEY = "HOARDTESTACCESSKEY01"
# Characters that need care in a secret: '/' and '+'.
SECRET_KEY = "hoard/Test+Secret/Key0123456789abcdefghij"
REGION = "us-east-1"
BUCKETS = ("hoard-test", "hoard-list")
START_TIMEOUT = 30


def ensure_node_modules():
    """`npm ci` in tests/s3 unless its node_modules are complete."""
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.fail("node and npm are needed for the S3 server fixture")
    marker = S3_DIR / "node_modules" / ".package-lock.json"
    lock = S3_DIR / "package-lock.json"
    with open(Path(tempfile.gettempdir()) / "hoard-s3-npm.lock", "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)   # one installer at a time
        if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
            return
        p = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                           cwd=S3_DIR, capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            pytest.fail(f"npm ci in {S3_DIR} failed:\n{p.stdout}\n{p.stderr}")


def clean_env():
    """The environment without any AWS setting or proxy of the caller's."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and k.lower() not in
           ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


class S3Server:
    def __init__(self, workdir, session_token=None):
        self.workdir = Path(workdir)
        self.data = self.workdir / "s3-data"
        self.home = self.workdir / "home"   # an empty HOME: no ~/.aws
        self.log_path = self.workdir / "s3-server.log"
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.session_token = session_token
        self.region = REGION
        self.bucket = BUCKETS[0]
        self.buckets = BUCKETS
        self.proc = None
        self.port = None

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def env(self, **overrides):
        """Environment for a client: the standard AWS variables."""
        env = clean_env()
        env.update(HOME=str(self.home), AWS_ACCESS_KEY_ID=self.access_key,
                   AWS_SECRET_ACCESS_KEY=self.secret_key, AWS_REGION=self.region,
                   AWS_ENDPOINT_URL=self.endpoint,
                   # awscli: no CRC32 trailers, plain signed bodies
                   AWS_REQUEST_CHECKSUM_CALCULATION="when_required",
                   AWS_RESPONSE_CHECKSUM_VALIDATION="when_required")
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        for k, v in overrides.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def _admin(self, method, path, body=None):
        req = urllib.request.Request(self.endpoint + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=10) as r:
            return json.loads(r.read() or b"{}")

    def fault(self, *faults):
        """Queue faults: dicts with type (status, reset, stall, truncate,
        corrupt), count, and optionally method, status, code."""
        return self._admin("POST", "/__hoard_test/faults", list(faults))

    def chaos(self, rate, seed=1, method=None, types=None, ms=None):
        """From now on a fault for each request with probability rate (of
        method, if given): by default 503 SlowDown, 500, reset, truncated
        body and a 5 s delay (ms), drawn from a PRNG seeded with seed.
        rate 0 (or reset()) ends it."""
        body = {"rate": rate, "seed": seed}
        if method:
            body["method"] = method
        if types:
            body["types"] = types
        if ms:
            body["ms"] = ms
        return self._admin("POST", "/__hoard_test/chaos", body)

    def stats(self):
        return self._admin("GET", "/__hoard_test/stats")

    def reset(self):
        """Drop queued faults and zero the counters."""
        return self._admin("DELETE", "/__hoard_test/stats")

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self):
        ensure_node_modules()
        self.data.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        args = ["node", str(S3_DIR / "signer-proxy.js"), "--dir", str(self.data),
                "--access-key", self.access_key, "--secret-key", self.secret_key,
                "--region", self.region, "--port", "0"]
        for b in self.buckets:
            args += ["--bucket", b]
        if self.session_token:
            args += ["--session-token", self.session_token]
        env = clean_env()
        # s3rver 3.7.1 ciphers its continuation tokens with DES.
        env["NODE_OPTIONS"] = "--openssl-legacy-provider"
        self._logf = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._logf,
                                     env=env, cwd=S3_DIR, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise AssertionError(f"S3 server did not start:\n{self.log()}")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                ch = os.read(self.proc.stdout.fileno(), 1)
                if not ch:
                    continue
                line += ch
        assert line.startswith(b"READY "), line
        self.port = int(line.split()[1])
        while True:   # it answers?
            try:
                self.stats()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.05)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        if getattr(self, "_logf", None):
            self._logf.close()
            self._logf = None

    def check_log(self):
        """The server itself must not have failed."""
        text = self.log()
        assert "internal error" not in text, text[-4000:]


@contextlib.contextmanager
def start_s3_server(workdir, **kw):
    srv = S3Server(workdir, **kw).start()
    try:
        yield srv
        srv.check_log()
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A running S3 server with buckets hoard-test and hoard-list."""
    with start_s3_server(tmp_path_factory.mktemp("s3")) as srv:
        yield srv
