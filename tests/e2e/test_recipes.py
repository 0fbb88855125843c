# SPDX-License-Identifier: MIT
"""The recipes in tools/recipes, run for real: the systemd unit's commands
under a NOTIFY_SOCKET listener (no systemd runs here: readiness, clean stop
and a failed start are checked as systemd would see them), the GitHub
Actions and GitLab Runner job hooks with the variables those runners set,
against a real store, a real daemon and the S3 test server."""
import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BUILD, HOARD, HOARDFS, REPO, is_mounted, pid_alive, requires_hoard, run
from s3server import s3  # noqa: F401  (a fixture)

pytestmark = requires_hoard

RECIPES = REPO / "tools" / "recipes"
UNIT = RECIPES / "hoardfs.service.in"


def unit_commands():
    """{key: value} of the unit's [Service] section, @BINDIR@ -> the build."""
    out = {}
    for line in UNIT.read_text().splitlines():
        m = re.match(r"^(\w+)=(.*)$", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2).replace("@BINDIR@", str(BUILD)))
    return out


def sh_c(cmd):
    """The argument of a `/bin/sh -c '...'` line."""
    m = re.match(r"^/bin/sh -c '(.*)'$", cmd)
    assert m, cmd
    return m.group(1)


class Notify:
    """A NOTIFY_SOCKET listener, as systemd's."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.msgs = []

    def wait_for(self, word, proc, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for m in self.msgs:
                if word in m.split("\n"):
                    return m
            try:
                self.msgs.append(self.sock.recv(4096).decode())
            except socket.timeout:
                if proc.poll() is not None and not any(word in m for m in self.msgs):
                    return None
        return None


def test_systemd_unit_notify_and_clean_stop(tmp_path):
    u = unit_commands()
    assert u["Type"] == ["notify"] and u["Restart"] == ["on-failure"]
    assert u["KillSignal"] == ["SIGTERM"]
    store, mp = tmp_path / "store", tmp_path / "pip"
    mp.mkdir()
    env = dict(os.environ, HOARD_STORE=str(store), HOARDFS_VOLUMES=f"pip={mp}",
               HOARDFS_OPTS="--cache-size 32M")
    # ExecStartPre makes the store once, and leaves it alone the next time
    for _ in range(2):
        run(["/bin/sh", "-c", sh_c(u["ExecStartPre"][0])], env=env)
    assert (store / "HOARD").exists()
    n = Notify(tmp_path / "notify")
    env["NOTIFY_SOCKET"] = n.path
    proc = subprocess.Popen(["/bin/sh", "-c", sh_c(u["ExecStart"][0])], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = n.wait_for("READY=1", proc)
        assert ready, f"no READY=1; exit {proc.poll()}: {proc.stderr.read() if proc.poll() is not None else ''}"
        # ready means: mounted, and the control socket answers
        assert f"MAINPID={proc.pid}" in ready.split("\n"), ready
        assert is_mounted(mp)
        (mp / "f").write_text("hello")
        jobdir = tmp_path / "jobs"
        p = run([HOARD, "job", "start", "j1", "--dir", jobdir, "--store", store]).stdout.strip()
        assert (Path(p) / "f").read_text() == "hello"
        run([HOARD, "job", "finish", "j1", "--store", store])
        # --persist: the daemon outlives its last mount until SIGTERM
        run(["fusermount3", "-u", mp])
        time.sleep(0.3)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert n.wait_for("STOPPING=1", proc), n.msgs
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in [mp] + list(tmp_path.glob("jobs/*/*")):
            if is_mounted(p):
                run(["fusermount3", "-u", "-z", p], check=False)
    assert run([HOARD, "fsck", "--store", store], check=False).returncode == 0


def test_systemd_failed_start_is_a_failure(tmp_path):
    """A start that cannot work exits non-zero without READY=1, so
    Restart=on-failure applies."""
    u = unit_commands()
    n = Notify(tmp_path / "notify")
    env = dict(os.environ, HOARD_STORE=str(tmp_path / "not-a-store"), HOARDFS_VOLUMES="",
               HOARDFS_OPTS="", NOTIFY_SOCKET=n.path)
    proc = subprocess.Popen(["/bin/sh", "-c", sh_c(u["ExecStart"][0])], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.wait(timeout=60) == 1
    assert n.wait_for("READY=1", proc, timeout=1) is None
    assert "not-a-store" in proc.stderr.read()


def test_unit_installed_by_meson(tmp_path):
    dest = tmp_path / "dest"
    run(["meson", "install", "-C", BUILD, "--destdir", dest, "--quiet"], timeout=300)
    units = list(dest.glob("**/lib/systemd/system/hoardfs.service"))
    assert len(units) == 1
    text = units[0].read_text()
    assert "@BINDIR@" not in text and "/bin/hoardfs -f --persist" in text


# ---- runner hooks ------------------------------------------------------------------

@pytest.fixture
def host(store, tmp_path):
    """A runner host: hoardfs --persist serving the shared pip volume."""
    shared = tmp_path / "shared"
    shared.mkdir()
    run([HOARDFS, "--store", store.path, "--persist", f"pip={shared}"], timeout=60)
    pid = store.daemon_pid()
    yield store, shared
    for p in tmp_path.glob("jobs/*/*"):
        run(["fusermount3", "-u", "-z", p], check=False)
    if is_mounted(shared):
        run(["fusermount3", "-u", shared], check=False)
    os.kill(pid, signal.SIGTERM)
    store.wait_daemon_exit(pid)
    assert run([HOARD, "fsck", "--store", store.path], check=False).returncode == 0


def hook_env(s3, store, tmp_path, **kw):
    env = s3.env()
    env.update(HOARD=str(HOARD), HOARD_STORE=str(store.path),
               HOARD_JOB_DIR=str(tmp_path / "jobs"), PATH=os.environ["PATH"])
    env.update({k: str(v) for k, v in kw.items()})
    return env


def hook(script, env):
    p = subprocess.run([str(RECIPES / script)], env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, f"{script} exited {p.returncode}: {p.stderr}"
    return p


def refs(s3, url):
    out = subprocess.run(["/usr/bin/aws", "--endpoint-url", s3.endpoint, "s3", "ls",
                          "--recursive", url + "/refs/"], env=s3.env(),
                         capture_output=True, text=True).stdout
    return [line.split()[-1] for line in out.splitlines()]


def github_env(s3, store, tmp_path, run_id, ref, event, **kw):
    genv = tmp_path / f"github-env-{run_id}"
    genv.write_text("")
    return genv, hook_env(s3, store, tmp_path, GITHUB_RUN_ID=run_id, GITHUB_RUN_ATTEMPT=1,
                          GITHUB_JOB="build", GITHUB_REF=ref, GITHUB_EVENT_NAME=event,
                          GITHUB_ENV=genv, HOARD_LINK_DIR=tmp_path / "runner1", **kw)


def test_github_hooks_trusted_and_untrusted(s3, host, tmp_path):
    store, shared = host
    url = f"s3://{s3.bucket}/gh-hooks"
    (shared / "wheel.whl").write_bytes(b"the real wheel")

    # a pull request: its writes never reach the shared volume
    genv, env = github_env(s3, store, tmp_path, 101, "refs/pull/7/merge", "pull_request",
                           HOARD_REPO=url)
    out = hook("github/job-started.sh", env)
    assert "pull of pip" in out.stderr   # nothing pushed yet: a warning only
    path = Path(genv.read_text().strip().split("=", 1)[1])
    assert genv.read_text().startswith("PIP_CACHE_DIR=") and is_mounted(path)
    assert os.readlink(tmp_path / "runner1" / "pip") == str(path)
    assert (tmp_path / "runner1" / "pip" / "wheel.whl").read_bytes() == b"the real wheel"
    (path / "wheel.whl").write_bytes(b"POISON")
    (path / "evil.whl").write_bytes(b"POISON")
    hook("github/job-completed.sh", env)
    assert not is_mounted(path) and not (tmp_path / "runner1" / "pip").exists()
    assert (shared / "wheel.whl").read_bytes() == b"the real wheel"
    assert not (shared / "evil.whl").exists()

    # a push to main: trusted; with no signing key it is kept, not pushed
    genv, env = github_env(s3, store, tmp_path, 102, "refs/heads/main", "push", HOARD_REPO=url)
    hook("github/job-started.sh", env)
    path = Path(genv.read_text().strip().split("=", 1)[1])
    (path / "new.whl").write_bytes(b"built on main")
    out = hook("github/job-completed.sh", env)
    assert "not pushed" in out.stderr
    assert (shared / "new.whl").read_bytes() == b"built on main"
    assert refs(s3, url) == []
    # a branch that is not in HOARD_TRUSTED_REFS: untrusted
    genv, env = github_env(s3, store, tmp_path, 103, "refs/heads/feature", "push")
    hook("github/job-started.sh", env)
    path = Path(genv.read_text().strip().split("=", 1)[1])
    (path / "feature.whl").write_bytes(b"x")
    hook("github/job-completed.sh", env)
    assert not (shared / "feature.whl").exists()


def signing_available():
    h = run([HOARD, "push", "--help"], check=False).stdout
    k = run([HOARD, "key", "--help"], check=False)
    return "--sign" in h and k.returncode == 0


def test_github_trusted_signed_push(s3, host, tmp_path):
    if not signing_available():
        pytest.skip("signed refs (hoard key generate, hoard push --sign, pull --trust; "
                    "issue 12 item 2) are not in this build: the hooks pass --sign through")
    store, shared = host
    url = f"s3://{s3.bucket}/gh-signed"
    key = tmp_path / "push.key"
    run([HOARD, "key", "generate", key])
    genv, env = github_env(s3, store, tmp_path, 201, "refs/heads/main", "push",
                           HOARD_REPO=url, HOARD_SIGN_KEY=key)
    hook("github/job-started.sh", env)
    path = Path(genv.read_text().strip().split("=", 1)[1])
    (path / "signed.whl").write_bytes(b"trusted bytes")
    hook("github/job-completed.sh", env)
    assert refs(s3, url)
    # another host trusts the key and gets the bytes
    other = tmp_path / "other"
    run([HOARD, "init", "--from", url, "--store", other], env=s3.env())
    run([HOARD, "pull", url, "--volume", "pip", "--trust", f"{key}.pub", "--store", other],
        env=s3.env())


def test_gitlab_hooks(s3, host, tmp_path):
    store, shared = host
    (shared / "pkg.whl").write_bytes(b"real")
    recipes = tmp_path / "opt-recipes"
    os.symlink(RECIPES, recipes)

    def job(job_id, protected, source="push"):
        env = hook_env(s3, store, tmp_path, CI_JOB_ID=job_id,
                       CI_COMMIT_REF_PROTECTED=protected, CI_PIPELINE_SOURCE=source,
                       HOARD_RECIPES=recipes)
        # pre_build_script is sourced by the job's shell: the variable must
        # reach the job's commands
        script = ('. "$HOARD_RECIPES/gitlab/env.sh"; echo "$PIP_CACHE_DIR"; '
                  'echo job > "$PIP_CACHE_DIR/from-$CI_JOB_ID.whl"; '
                  'echo changed > "$PIP_CACHE_DIR/pkg.whl"')
        p = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True,
                           text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        path = Path(p.stdout.strip())
        assert path.name == "pip" and is_mounted(path)
        hook("gitlab/post-build.sh", env)
        assert not is_mounted(path)

    # without the host's root-owned marker no job is trusted, whatever its
    # variables say (a job's yaml can set CI_COMMIT_REF_PROTECTED)
    marker = Path("/etc/hoard/gitlab-trusted-runner")
    assert not marker.exists(), f"{marker} exists on this machine"
    job(1, "true")
    assert sorted(os.listdir(shared)) == ["pkg.whl"]
    marker.parent.mkdir(parents=True, exist_ok=True)
    try:
        # a marker the runner's user could have made (not mode 0644 root)
        marker.write_text("")
        os.chmod(marker, 0o666)
        job(2, "true")
        assert sorted(os.listdir(shared)) == ["pkg.whl"]
        os.chmod(marker, 0o644)
        job(3, "false")
        job(4, "true", "merge_request_event")
        assert sorted(os.listdir(shared)) == ["pkg.whl"]
        assert (shared / "pkg.whl").read_bytes() == b"real"
        job(5, "true")
    finally:
        marker.unlink()
    assert (shared / "from-5.whl").read_text() == "job\n"
    assert (shared / "pkg.whl").read_text() == "changed\n"


# ---- GitLab Runner, docker (a custom executor driving docker) ------------------------

from test_docker import IMAGE, engine  # noqa: E402,F401  (engine: a fixture)

GLD = "gitlab/docker"


def gitlab_stage(stage, env, *args, check=True):
    p = subprocess.run([str(RECIPES / GLD / stage), *map(str, args)], env=env,
                       capture_output=True, text=True, timeout=300)
    if check:
        assert p.returncode == 0, f"{stage} exited {p.returncode}: {p.stderr}"
    return p


def test_gitlab_docker_executor(engine, host, tmp_path):
    """The custom executor's four stages run as GitLab Runner runs them
    (the runner binary itself is not available here): CUSTOM_ENV_* job
    variables, BUILD_FAILURE_EXIT_CODE / SYSTEM_FAILURE_EXIT_CODE, a
    script file per stage.  Real dockerd, real daemon, real clones: two
    jobs at once do not see each other's files; only a job with the
    protected token (not a merge request) folds its files back; a wrong
    token, no token, or a merge request are dropped; a failing script is
    a build failure; a job with no image fails prepare and leaves no clone."""
    docker, denv = engine
    store, shared = host
    (shared / "pkg.whl").write_bytes(b"real")
    token = tmp_path / "trust-token"
    token.write_text("s3cret-protected-value")

    def env_for(job_id, **job):
        env = dict(denv, HOARD=str(HOARD), HOARD_STORE=str(store.path),
                   HOARD_JOB_DIR=str(tmp_path / "jobs"), DOCKER=docker,
                   HOARD_TRUST_TOKEN_FILE=str(token), TMPDIR=str(tmp_path),
                   BUILD_FAILURE_EXIT_CODE="41", SYSTEM_FAILURE_EXIT_CODE="42",
                   CUSTOM_ENV_CI_JOB_ID=str(job_id), CUSTOM_ENV_CI_JOB_IMAGE=IMAGE,
                   CUSTOM_ENV_CI_PIPELINE_SOURCE="push")
        env.update({f"CUSTOM_ENV_{k}": v for k, v in job.items()})
        # the runner runs config.sh first and hands its job_env to the
        # later stages of the same job
        conf = json.loads(gitlab_stage("config.sh", env).stdout)
        env.update(conf["job_env"])
        return env

    def script(name, text):
        p = tmp_path / name
        p.write_text("set -e\n" + text)
        return p

    conf = json.loads(gitlab_stage("config.sh", env_for(1)).stdout)
    assert conf["builds_dir"] and conf["builds_dir_is_shared"] is False
    # without config.sh's name (config_exec not set) no stage runs
    bare = env_for(9)
    del bare["HOARD_GITLAB_JOB"]
    p = gitlab_stage("prepare.sh", bare, check=False)
    assert p.returncode == 42 and "HOARD_GITLAB_JOB" in p.stderr

    envs = {1: env_for(1), 2: env_for(2)}
    for j, env in envs.items():
        gitlab_stage("prepare.sh", env)
    for j, env in envs.items():
        out = gitlab_stage("run.sh", env, script(f"s{j}", f"""
            test "$PIP_CACHE_DIR" = /cache/pip
            test "$(cat $PIP_CACHE_DIR/pkg.whl)" = real
            echo job{j} > $PIP_CACHE_DIR/from-{j}.whl
            echo poison > $PIP_CACHE_DIR/pkg.whl
            ls $PIP_CACHE_DIR
            """), "build_script").stdout
        assert f"from-{j}.whl" in out and f"from-{3 - j}.whl" not in out
    failed = gitlab_stage("run.sh", envs[1], script("bad", "exit 3\n"), "build_script",
                          check=False)
    assert failed.returncode == 41
    # job 1: no token; job 2: the wrong one.  Neither comes back.
    envs[2]["CUSTOM_ENV_HOARD_TRUST_TOKEN"] = "guessed"
    for env in envs.values():
        gitlab_stage("cleanup.sh", env)
    assert sorted(os.listdir(shared)) == ["pkg.whl"]
    assert (shared / "pkg.whl").read_bytes() == b"real"
    assert not list((tmp_path / "jobs").glob("*/*")) or not any(
        is_mounted(p) for p in (tmp_path / "jobs").glob("*/*"))
    ps = run([docker, "ps", "-a", "-q", "--filter", "label=com.hoard.job"], env=denv)
    assert ps.stdout.strip() == ""

    def job(job_id, **vars_):
        env = env_for(job_id, **vars_)
        gitlab_stage("prepare.sh", env)
        gitlab_stage("run.sh", env, script("w", f"echo built > $PIP_CACHE_DIR/j{job_id}.whl\n"),
                     "build_script")
        gitlab_stage("cleanup.sh", env)

    # the right token, but a merge request pipeline: dropped
    job(3, HOARD_TRUST_TOKEN="s3cret-protected-value",
        CI_PIPELINE_SOURCE="merge_request_event")
    # the job's own yaml claims a protected ref: not enough
    job(4, CI_COMMIT_REF_PROTECTED="true")
    assert sorted(os.listdir(shared)) == ["pkg.whl"]
    # a job whose yaml claims a running job's number gets its own clone:
    # its cleanup does not discard the other job's files
    victim, spoof = env_for(7), env_for(7)
    assert victim["HOARD_GITLAB_JOB"] != spoof["HOARD_GITLAB_JOB"]
    gitlab_stage("prepare.sh", victim)
    gitlab_stage("run.sh", victim, script("v", "echo mine > $PIP_CACHE_DIR/v.whl\n"),
                 "build_script")
    gitlab_stage("prepare.sh", spoof)
    out = gitlab_stage("run.sh", spoof, script("s", "ls $PIP_CACHE_DIR\n"),
                       "build_script").stdout
    assert "v.whl" not in out
    gitlab_stage("cleanup.sh", spoof)
    out = gitlab_stage("run.sh", victim, script("v2", "cat $PIP_CACHE_DIR/v.whl\n"),
                       "build_script").stdout
    assert out == "mine\n"
    gitlab_stage("cleanup.sh", victim)
    # the protected token: folded back
    job(5, HOARD_TRUST_TOKEN="s3cret-protected-value")
    assert (shared / "j5.whl").read_text() == "built\n"
    # no image: prepare fails as a system failure and leaves nothing
    env = env_for(6)
    del env["CUSTOM_ENV_CI_JOB_IMAGE"]
    assert gitlab_stage("prepare.sh", env, check=False).returncode == 42
    env["CUSTOM_ENV_CI_JOB_IMAGE"] = "no-such-image:0"
    p = gitlab_stage("prepare.sh", env, check=False)
    assert p.returncode == 42 and "docker run" in p.stderr
    gitlab_stage("cleanup.sh", env)
    assert not (store.path / "jobs" / f"{env['HOARD_GITLAB_JOB']}.json").exists()
    names = [v["name"] for v in json.loads(run(
        [HOARD, "volume", "ls", "--json", "--store", store.path]).stdout)["volumes"]]
    assert names == ["pip"]
