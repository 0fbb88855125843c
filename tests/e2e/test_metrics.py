# SPDX-License-Identifier: MIT
"""`hoard stats --format prometheus`: the text exposition format (0.0.4)
checked line by line (names, labels, one TYPE per family), its values
against `hoard stats --json` online and offline, and the EIO counter
against an injected fault (a corrupt chunk read through the mount)."""
import errno
import json
import math
import os
import time
import re

import pytest

from conftest import CORRUPT, HOARD, requires_hoard, run

pytestmark = requires_hoard

MIB = 1 << 20
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}

# family (after hoard_) -> the --json key it reports
TOP = {
    "store_files": "files", "store_dirs": "dirs", "store_symlinks": "symlinks",
    "store_others": "others", "store_logical_bytes": "logical_bytes",
    "store_unique_bytes": "unique_bytes", "store_stored_bytes": "stored_bytes",
    "store_chunks": "chunks", "store_dedup_ratio": "dedup_ratio",
    "store_db_bytes": "db_bytes",
    "chunk_cache_hits_total": "cache_hits",
    "chunk_cache_misses_total": "cache_misses",
    "read_errors_total": "read_errors",
    "commit_errors_total": "commit_errors",
    "not_local_chunks": "chunks_not_local", "not_local_bytes": "not_local_bytes",
    "fetched_chunks_total": "fetched_chunks",
    "fetched_bytes_total": "fetched_bytes", "fetch_gets_total": "fetch_gets",
    "fetch_get_bytes_total": "fetch_get_bytes",
    "fetch_failures_total": "fetch_failures",
    "fetch_retries_total": "fetch_retries",
    "budget_max_bytes": "max_size", "budget_pinned_bytes": "pinned_bytes",
    "evicted_files_total": "evicted_files",
    "evicted_bytes_total": "evicted_bytes",
    "plain_bytes": "plain_bytes", "plain_files": "plain_files",
    "plain_hits_total": "plain_hits", "plain_made_total": "plain_made",
    "plain_dropped_total": "plain_dropped",
    "plain_failed_total": "plain_failed",
    "lookup_scans_total": "lookup_scans",
    "lookup_window_hits_total": "lookup_window_hits",
    "lookup_prefetch_bytes_total": "lookup_prefetch_bytes",
}
# --json members that are not figures (strings): no family
NOT_FIGURES = {"passthrough"}
VOLUME_FIGS = ("files", "dirs", "symlinks", "others", "logical_bytes",
               "unique_bytes", "stored_bytes", "chunks", "dedup_ratio")


def unescape(v):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


def parse_prometheus(text):
    """{family: (type, {labels-tuple: value})}, asserting the format rules."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    fams, helps, order, seen = {}, set(), [], set()
    current = None
    for line in text.splitlines():
        assert line.strip(), "no blank lines in hoard's output"
        if line.startswith("#"):
            parts = line.split(" ", 3)
            assert parts[0] == "#" and parts[1] in ("HELP", "TYPE"), line
            name = parts[2]
            assert NAME.match(name) and name.startswith("hoard_"), line
            if parts[1] == "HELP":
                assert name not in helps, f"two HELP lines for {name}"
                assert len(parts) == 4 and parts[3].strip(), line
                helps.add(name)
            else:
                assert name not in fams, f"two TYPE lines for {name}"
                assert parts[3] in TYPES, line
                fams[name] = (parts[3], {})
                order.append(name)
                current = name
            continue
        m = re.match(r"([^{ ]+)(\{(.*)\})? (\S+)\Z", line)
        assert m, f"bad sample line: {line!r}"
        name, labels_text, value = m.group(1), m.group(3), m.group(4)
        assert NAME.match(name), line
        # a family's samples follow its TYPE line, together
        assert name == current, f"{name} outside its family block ({current})"
        labels = ()
        if labels_text:
            pairs = LABEL.findall(labels_text)
            rebuilt = ",".join(f'{k}="{v}"' for k, v in pairs)
            assert rebuilt == labels_text, f"bad labels: {labels_text!r}"
            labels = tuple((k, unescape(v)) for k, v in pairs)
            assert len({k for k, _ in labels}) == len(labels), line
        v = float(value)
        assert math.isfinite(v) and v >= 0, line
        if fams[name][0] == "counter":
            assert name.endswith("_total"), f"counter {name} without _total"
        assert (name, labels) not in seen, f"duplicate sample {line}"
        seen.add((name, labels))
        fams[name][1][labels] = v
    assert helps == set(fams), "every family has HELP and TYPE"
    return fams


def stats(store, *fmt):
    return run([HOARD, "stats", "--store", store.path, *fmt]).stdout


def check_against_json(fams, js):
    """Every figure of --json is in the exposition with the same value, and
    every family reports a figure of --json."""
    want_top = {k for k, v in js.items() if k != "volumes" and k not in NOT_FIGURES}
    got_top = set()
    for fam, (typ, samples) in fams.items():
        short = fam[len("hoard_"):]
        if short in TOP:
            key = TOP[short]
            assert key in js, f"{fam} reports {key}, which --json lacks"
            assert samples.keys() == {()}, fam
            if isinstance(js[key], float):
                assert samples[()] == pytest.approx(js[key], abs=1e-3), fam
            else:
                assert samples[()] == js[key], fam
            got_top.add(key)
        elif short.startswith("volume_"):
            fig = short[len("volume_"):]
            assert fig in VOLUME_FIGS, fam
            assert {dict(l)["volume"] for l in samples} == set(js["volumes"]), fam
            for labels, v in samples.items():
                assert [k for k, _ in labels] == ["volume"], fam
                want = js["volumes"][dict(labels)["volume"]][fig]
                assert v == pytest.approx(want, abs=1e-3), (fam, labels)
        elif short == "budget_used_ratio":
            want = js["stored_bytes"] / js["max_size"] if js["max_size"] else 0
            assert samples[()] == pytest.approx(want, abs=1e-3)
        else:
            raise AssertionError(f"unexpected family {fam}")
    assert got_top == want_top, f"--json figures missing: {want_top - got_top}"
    for fig in VOLUME_FIGS:
        assert f"hoard_volume_{fig}" in fams


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def test_prometheus_matches_json_online_and_offline(store):
    m = store.mount("test", "other")
    write(m["test"] / "a", os.urandom(3 * MIB))
    write(m["test"] / "b", b"hoard " * 100000)
    os.symlink("a", m["test"] / "l")
    write(m["other"] / "c", os.urandom(70000))
    run([HOARD, "config", "--store", store.path, "max-size", "1G"])
    with open(m["test"] / "a", "rb") as f:
        f.read()
    # that read-only open queued a plain copy of "a" (3 MiB): wait for it,
    # or its figures change between the two stats calls compared below
    deadline = time.time() + 120
    while json.loads(stats(store, "--json")).get("plain_files") != 1:
        assert time.time() < deadline, "the plain copy of 'a' never landed"
        time.sleep(0.05)

    js = json.loads(stats(store, "--json"))
    text = stats(store, "--format", "prometheus")
    assert json.loads(stats(store, "--format", "json")) == js
    fams = parse_prometheus(text)
    check_against_json(fams, js)
    # the daemon's counters are there, and the volume label is per volume
    for f in ("hoard_read_errors_total", "hoard_chunk_cache_hits_total",
              "hoard_evicted_files_total", "hoard_budget_used_ratio",
              "hoard_lookup_window_hits_total"):
        assert f in fams, f
    assert fams["hoard_read_errors_total"][1][()] == 0
    assert fams["hoard_budget_max_bytes"][1][()] == 1 << 30
    assert fams["hoard_volume_files"][1] == {(("volume", "test"),): 2,
                                             (("volume", "other"),): 1}
    assert stats(store) == stats(store, "--format", "text")

    store.umount()
    js = json.loads(stats(store, "--json"))
    fams = parse_prometheus(stats(store, "--format", "prometheus"))
    check_against_json(fams, js)
    # offline there is no daemon to count reads, cache lookups or fetches
    assert "hoard_read_errors_total" not in fams and "read_errors" not in js
    assert "hoard_chunk_cache_hits_total" not in fams
    assert "hoard_lookup_scans_total" not in fams and "lookup_scans" not in js


def test_eio_counter_rises_on_a_corrupt_chunk(store, mnt):
    bad = os.urandom(3 * MIB)
    write(mnt / "bad", bad)
    write(mnt / "good", os.urandom(MIB))
    store.umount()
    run([CORRUPT, "--store", store.path, "--volume", "test", "--path", "/bad"])
    mnt = store.mount("test")["test"]
    before = json.loads(stats(store, "--json"))
    assert before["read_errors"] == 0
    with open(mnt / "good", "rb") as f:
        f.read()
    assert json.loads(stats(store, "--json"))["read_errors"] == 0
    for _ in range(2):
        with pytest.raises(OSError) as x:
            with open(mnt / "bad", "rb") as f:
                f.read()
        assert x.value.errno == errno.EIO
    js = json.loads(stats(store, "--json"))
    fams = parse_prometheus(stats(store, "--format", "prometheus"))
    assert js["read_errors"] >= 2
    assert fams["hoard_read_errors_total"][1][()] == js["read_errors"]
    # the table shows the figures of the same daemon
    assert "VOLUME" in stats(store, "--format", "text")


@pytest.mark.parametrize("args,msg", [
    (["--format", "yaml"], "--format must be json, text or prometheus"),
    (["--format"], "needs a value"),
    (["--json", "--format", "prometheus"], "disagree"),
])
def test_format_usage_errors(store, args, msg):
    p = run([HOARD, "stats", "--store", store.path, *args], check=False)
    assert p.returncode == 2 and msg in p.stderr, p.stderr
    assert p.stdout == ""
