# SPDX-License-Identifier: MIT
"""Jobs in real containers on per-job clones (hoard job start/finish,
tools/recipes/docker-run.sh): Debian's docker.io engine, started here as
root with its own data and exec roots (no systemd, no registry: the image
is a `docker import` of a busybox-static root filesystem), two jobs at
once, pip-cache-like and huggingface_hub-layout writes through bind
mounts, a non-root container user.  Skips, saying why, where no engine
can start."""
import hashlib
import os
import shutil
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from conftest import HOARD, HOARDFS, REPO, is_mounted, pid_alive, requires_hoard, run

pytestmark = requires_hoard

IMAGE = "hoard-test-busybox:1"
APPLETS = ("sh cat echo mkdir mv ln ls id sha256sum stat dd touch readlink test rm "
           "head tr printf").split()


def docker_bin():
    for d in ("/usr/bin/docker", shutil.which("docker")):
        if d and os.access(d, os.X_OK):
            return d
    return None


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """A running dockerd of our own: yields the env for the docker CLI."""
    dockerd, docker = shutil.which("dockerd"), docker_bin()
    if not dockerd or not docker:
        pytest.skip("no docker engine: dockerd or docker is missing (package docker.io)")
    if not os.path.exists("/bin/busybox"):
        pytest.skip("no /bin/busybox for the test image (package busybox-static)")
    d = tmp_path_factory.mktemp("docker")
    sock = d / "docker.sock"
    log = open(d / "dockerd.log", "w")
    proc = subprocess.Popen(
        [dockerd, "--iptables=false", "--ip6tables=false", "--bridge=none",
         "--data-root", d / "data", "--exec-root", d / "exec", "--pidfile", d / "pid",
         "--host", f"unix://{sock}", "--storage-driver", "vfs"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    env = dict(os.environ, DOCKER_HOST=f"unix://{sock}")
    deadline = time.time() + 60
    while True:
        if subprocess.run([docker, "info"], env=env, capture_output=True).returncode == 0:
            break
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            proc.wait()
            tail = (d / "dockerd.log").read_text()[-600:]
            pytest.skip(f"dockerd could not start here: {tail}")
        time.sleep(0.3)
    try:
        root = d / "rootfs"
        (root / "bin").mkdir(parents=True)
        for sub in ("tmp", "etc", "root"):
            (root / sub).mkdir()
        os.chmod(root / "tmp", 0o1777)
        shutil.copy("/bin/busybox", root / "bin" / "busybox")
        for a in APPLETS:
            os.symlink("busybox", root / "bin" / a)
        (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                             "ci:x:1000:1000:ci:/tmp:/bin/sh\n")
        with tarfile.open(d / "rootfs.tar", "w") as t:
            t.add(root, arcname=".")
        run([docker, "import", d / "rootfs.tar", IMAGE], env=env, timeout=120)
        yield docker, env
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def host(store, tmp_path):
    """A runner host: hoardfs --persist with the shared pip and huggingface
    volumes mounted; the job user (1000) owns their roots."""
    pip, hf = tmp_path / "pip", tmp_path / "hf"
    pip.mkdir()
    hf.mkdir()
    run([HOARDFS, "--store", store.path, "--persist", f"pip={pip}", f"huggingface={hf}"],
        timeout=60)
    pid = store.daemon_pid()
    os.chown(pip, 1000, 1000)
    os.chown(hf, 1000, 1000)
    yield store, pip, hf
    for p in list(tmp_path.glob("jobs/*/*")) + [pip, hf]:
        if is_mounted(p):
            run(["fusermount3", "-u", "-z", p], check=False)
    os.kill(pid, signal.SIGTERM)
    store.wait_daemon_exit(pid)
    assert run([HOARD, "fsck", "--store", store.path], check=False).returncode == 0


# pip's cache as pip 23 lays it out: HTTP responses under http-v2 (written to
# a temporary name, then renamed), built wheels under wheels/
PIP_JOB = r"""
set -e
c=/root/.cache/pip
test "$(cat $c/wheels/ab/cd/shared-1.0-py3-none-any.whl)" = "shared wheel"
mkdir -p $c/http-v2/1/2/3 $c/wheels/ef/01
i=0
while [ $i -lt 20 ]; do
  dd if=/dev/urandom of=$c/http-v2/1/2/3/.tmp$i bs=4096 count=$((i + 1)) 2>/dev/null
  mv $c/http-v2/1/2/3/.tmp$i $c/http-v2/1/2/3/resp$i
  i=$((i + 1))
done
echo "built by job $JOB" > $c/wheels/ef/01/.whl.tmp
mv $c/wheels/ef/01/.whl.tmp $c/wheels/ef/01/pkg-1.0-py3-none-any.whl
sha256sum $c/http-v2/1/2/3/resp* > $c/sums
id -u > $c/uid-$JOB
"""

# huggingface_hub's cache: blobs named by hash written as .incomplete and
# renamed, relative symlinks from snapshots/, refs/main, .locks/
HF_JOB = r"""
set -e
h=$HF_HOME/hub/models--org--tiny
mkdir -p $h/blobs $h/snapshots/rev1 $h/refs $HF_HOME/hub/.locks/models--org--tiny
dd if=/dev/urandom of=$h/blobs/x.incomplete bs=65536 count=16 2>/dev/null
sum=$(sha256sum $h/blobs/x.incomplete | head -c 64)
mv $h/blobs/x.incomplete $h/blobs/$sum
ln -s ../../blobs/$sum $h/snapshots/rev1/model.safetensors
printf rev1 > $h/refs/main
touch $HF_HOME/hub/.locks/models--org--tiny/$sum.lock
test "$(sha256sum $h/snapshots/rev1/model.safetensors | head -c 64)" = "$sum"
echo $sum > $HF_HOME/sum-$JOB
"""


def test_two_container_jobs_on_clones(engine, host, tmp_path):
    docker, env = engine
    store, pip, hf = host
    (pip / "wheels" / "ab" / "cd").mkdir(parents=True)
    (pip / "wheels" / "ab" / "cd" / "shared-1.0-py3-none-any.whl").write_text("shared wheel")
    for d, _, files in os.walk(pip):   # the job user's cache
        for n in [d] + [os.path.join(d, f) for f in files]:
            os.chown(n, 1000, 1000)
    jobs = {}
    for jid in ("root-job", "user-job"):
        out = run([HOARD, "job", "start", jid, "--from", "pip", "--from", "huggingface",
                   "--dir", tmp_path / "jobs", "--store", store.path]).stdout.split()
        jobs[jid] = [Path(p) for p in out]
    procs = {}
    for jid, user in (("root-job", "0:0"), ("user-job", "1000:1000")):
        p_pip, p_hf = jobs[jid]
        procs[jid] = subprocess.Popen(
            [docker, "run", "--rm", "--network", "none", "--user", user,
             "-e", f"JOB={jid}", "-e", "HF_HOME=/root/.cache/huggingface",
             "-v", f"{p_pip}:/root/.cache/pip", "-v", f"{p_hf}:/root/.cache/huggingface",
             IMAGE, "sh", "-c", PIP_JOB + HF_JOB],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for jid, p in procs.items():   # both ran at once
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, f"{jid}: {err}"
    for jid, (p_pip, p_hf) in jobs.items():
        uid = 0 if jid == "root-job" else 1000
        assert (p_pip / f"uid-{jid}").read_text().strip() == str(uid)
        whl = p_pip / "wheels" / "ef" / "01" / "pkg-1.0-py3-none-any.whl"
        assert whl.read_text() == f"built by job {jid}\n" and whl.stat().st_uid == uid
        for line in (p_pip / "sums").read_text().splitlines():
            digest, path = line.split()
            name = Path(path).name
            data = (p_pip / "http-v2" / "1" / "2" / "3" / name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest
        s = (p_hf / f"sum-{jid}").read_text().strip()
        model = p_hf / "hub" / "models--org--tiny" / "snapshots" / "rev1" / "model.safetensors"
        assert os.readlink(model) == f"../../blobs/{s}"
        assert hashlib.sha256(model.read_bytes()).hexdigest() == s
        # neither job saw the other's files
        other = "user-job" if jid == "root-job" else "root-job"
        assert not (p_pip / f"uid-{other}").exists()
    sums = {j: (jobs[j][1] / f"sum-{j}").read_text().strip() for j in jobs}
    run([HOARD, "job", "finish", "root-job", "--keep", "--store", store.path])
    run([HOARD, "job", "finish", "user-job", "--discard", "--store", store.path])
    assert not any(is_mounted(p) for ps in jobs.values() for p in ps)
    assert (pip / "uid-root-job").exists() and not (pip / "uid-user-job").exists()
    assert (pip / "wheels" / "ef" / "01" / "pkg-1.0-py3-none-any.whl").read_text() \
        == "built by job root-job\n"
    blob = hf / "hub" / "models--org--tiny" / "blobs" / sums["root-job"]
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == sums["root-job"]
    assert not (hf / "hub" / "models--org--tiny" / "blobs" / sums["user-job"]).exists()


def test_docker_run_recipe(engine, host, tmp_path):
    """tools/recipes/docker-run.sh as documented: a clone per job, dropped
    unless HOARD_KEEP=1."""
    docker, env = engine
    store, pip, hf = host
    script = REPO / "tools" / "recipes" / "docker-run.sh"
    renv = dict(env, HOARD=str(HOARD), HOARD_STORE=str(store.path), DOCKER=docker,
                HOARD_DOCKER_OPTS="--network none")
    cmd = "echo from-container > /root/.cache/pip/made-by-$0 && ls /root/.cache"
    p = subprocess.run([script, "dr1", IMAGE, "sh", "-c", cmd, "dr1"], env=renv,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["huggingface", "pip"]
    assert not (pip / "made-by-dr1").exists()
    renv["HOARD_KEEP"] = "1"
    p = subprocess.run([script, "dr2", IMAGE, "sh", "-c", cmd, "dr2"], env=renv,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert (pip / "made-by-dr2").read_text() == "from-container\n"
    # a failing job: its status comes back, its writes are dropped
    p = subprocess.run([script, "dr3", IMAGE, "sh", "-c", "touch /root/.cache/pip/x; exit 7"],
                       env=renv, capture_output=True, text=True, timeout=120)
    assert p.returncode == 7
    assert not (pip / "x").exists()
