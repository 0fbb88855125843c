#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Move fs/ into one folder per layer (issue 13 item 4), with git mv.

Run at the top of a clean hoard checkout:  tools/dev/relayout.py [--dry-run]

What it does, in this order (nothing is written before every check passed):
  1. checks: a git checkout, a clean work tree, fs/ still flat, and every
     file directly in fs/ known to FOLDERS below.  An unknown file stops the
     run with a list of them: add each to FOLDERS (or delete the name from
     the tree) and run again; nothing is guessed.
  2. git mv fs/X -> fs/<folder>/X for every file.
  3. #include "X-internal.h" of a private header that now lives in another
     folder becomes #include "../<folder>/X-internal.h" (the reach across a
     folder stays visible, and tests/check_layers.py resolves it).
  4. meson.build: the core_sources = files(...) list becomes
     `core_sources = []` + subdir('fs'); fs/meson.build subdir()s each folder
     in layer order and each fs/<folder>/meson.build lists its own files
     (`core_sources += files(...)`; the daemon's `hoardfs_sources`).  Any
     other 'fs/X' path in a meson.build is rewritten to its new place.
  5. every path fs/X in tracked text files (README.md, docs/, tests/,
     tools/, include/, fs/, .ci/, meson files) becomes fs/<folder>/X, in
     code and comments alike; check_layers.py's private-header glob follows.
  6. writes fs/README.md and fs/<folder>/README.md (job, may include), and
     in README.md's "How it works" the tree line for fs/ and the layer table.
It stages everything (git add) and commits nothing: review with
`git status` / `git diff --cached`, build, test, then commit.

A second run finds fs/meson.build and stops: "already laid out" (exit 0
when no file is left directly in fs/, else 1 with the list of stray files).

Exit: 0 done (or already done), 1 refused (reason printed), 2 usage.
"""
import re
import subprocess
import textwrap
import sys
from pathlib import Path

# Folders, lowest layer first.  Each folder may include the public headers
# (include/hoard/) of the folders listed in its "uses", and private headers
# (X-internal.h) of its own folder only.  policy and remote are siblings:
# neither includes the other.
FOLDERS = [
    ("base", {
        "title": "leaf helpers every layer uses",
        "job": "leaf helpers every layer uses: logging, byte order, sizes, "
               "digests, JSON conventions",
        "uses": [],
        "files": ["util.c", "digest.c", "json.c"],
    }),
    ("store", {
        "title": "bytes to chunks, chunks to disk",
        "job": "bytes to chunks and chunks to disk: keyed XXH3 chunk ids, "
               "content-defined chunking, zstd frames, the store directory, "
               "RocksDB column families, batches and the WAL",
        "uses": ["base"],
        "files": ["hash.c", "chunker.c", "codec.c", "store.c", "storewal.c",
                  "storeresume.cc", "store-internal.h"],
    }),
    ("core", {
        "title": "the filesystem on top of the store",
        "job": "the filesystem on top of the store: inode numbers, chunk "
               "records and the chunk cache, inodes and names, directories, "
               "xattrs and volumes, the data path (commit), user.hoard.info, "
               "the plain-file tier; one lock discipline (fs-internal.h)",
        "uses": ["base", "store"],
        "files": ["idmap.c", "chunks.c", "meta.c", "dir.c", "file.c",
                  "extents.c", "staging.c", "info.c", "plain.c", "volume.c",
                  "fs-internal.h"],
    }),
    ("policy", {
        "title": "statistics, gc, eviction, fsck",
        "job": "what runs over a store and decides: statistics, compaction "
               "(gc), the size budget (eviction, pins), fsck (check, repair, "
               "report)",
        "uses": ["base", "store", "core"],
        "files": ["stats.c", "gc.c", "evict.c", "fsck.c", "fsckrepair.c",
                  "fsckscan.c", "fsckreport.c", "fsckplain.c",
                  "fsck-internal.h"],
    }),
    ("remote", {
        "title": "the S3 client, remote formats, push/pull, lazy fetch",
        "job": "S3 repositories: the S3 client (SigV4, config, XML answers), "
               "the remote object formats, signed refs, push/pull/ls/gc of a "
               "bucket and lazy fetch of chunks from it",
        "uses": ["base", "store", "core"],
        "files": ["s3.c", "s3conf.c", "s3ops.c", "s3sig.c", "s3xml.c",
                  "s3-internal.h", "remote.c", "sign.c", "sync.c",
                  "syncpull.c", "syncreq.c", "syncremote.c", "syncgc.c",
                  "syncls.c", "lazy.c", "sync-internal.h"],
    }),
    ("daemon", {
        "title": "the FUSE daemon and its control socket",
        "job": "the FUSE daemon hoardfs, and the control socket protocol it "
               "answers (ctl.c and volumectl.c are in the library: the CLI "
               "speaks the same protocol)",
        "uses": ["base", "store", "core", "policy", "remote"],
        "files": ["ctl.c", "volumectl.c", "hoardfs.c"],
    }),
]
# Files of fs/ that are not in libhoard (built by an executable() instead).
EXECUTABLES = {"hoardfs.c": "hoardfs_sources"}

# Exact rewrites, applied after the path rewrite (so they name new paths):
# text that names a private header by its bare name where the including
# file is known (tests that inject a break), and check_layers' glob.
SPECIAL = [
    ("tests/e2e/test_layers.py",
     """("fs/policy/gc.c", '#include "fs-internal.h"'""",
     """("fs/policy/gc.c", '#include "../core/fs-internal.h"'"""),
    ("tests/check_layers.py", '"fs/*-internal.h"', '"fs/*/*-internal.h"'),
]

# Outside libraries, by the header a file includes: the folder READMEs and
# the README's table name the ones the folder's files really include.
LIBS = [("rocksdb/", "RocksDB"), ("zstd", "libzstd"), ("xxhash.h", "libxxhash"),
        ("curl/", "libcurl"), ("openssl/", "libcrypto"), ("expat", "expat"),
        ("libxml/", "libxml2"), ("jansson.h", "jansson"), ("fuse", "libfuse3"),
        ("systemd/", "libsystemd")]

TEXT_SUFFIXES = {".c", ".cc", ".h", ".md", ".py", ".sh", ".build", ".txt",
                 ".in", ".supp", ".yml", ".yaml", ".toml", ""}


def die(msg, code=1):
    print(f"relayout: {msg}", file=sys.stderr)
    sys.exit(code)


def git(*args, check=True):
    p = subprocess.run(["git", *args], capture_output=True, text=True)
    if check and p.returncode != 0:
        die(f"git {' '.join(args)} failed: {p.stderr.strip()}")
    return p.stdout


def folder_of():
    where = {}
    for folder, spec in FOLDERS:
        for f in spec["files"]:
            if f in where:
                die(f"FOLDERS lists {f} twice ({where[f]}, {folder})")
            where[f] = folder
    return where


def flat_files():
    return sorted(p.name for p in Path("fs").iterdir() if p.is_file())


def check(where):
    if not Path(".git").exists() or not Path("fs").is_dir() \
            or not Path("meson.build").is_file():
        die("run me at the top of a hoard checkout (no .git, fs/ or meson.build here)", 2)
    if Path("fs/meson.build").exists():
        stray = [f for f in flat_files() if f not in ("meson.build", "README.md")]
        if stray:
            die("fs/ is already laid out, but these files sit directly in "
                "fs/: " + " ".join(stray) + "; git mv each into its folder "
                "and add it to that folder's meson.build")
        print("relayout: fs/ is already laid out; nothing to do")
        sys.exit(0)
    if git("status", "--porcelain", "--untracked-files=no").strip():
        die("the work tree has uncommitted changes; commit or stash them first")
    flat = flat_files()
    unknown = [f for f in flat if f not in where]
    if unknown:
        die("these files of fs/ are in no folder of the map; add each to "
            "FOLDERS in tools/dev/relayout.py (its layer's folder), then run "
            "again:\n  " + "\n  ".join("fs/" + f for f in unknown))
    untracked = [f for f in flat
                 if not git("ls-files", "--", "fs/" + f).strip()]
    if untracked:
        die("untracked files in fs/ (git mv cannot move them): " +
            " ".join(untracked))
    text = Path("meson.build").read_text()
    m = re.search(r"^core_sources\s*=\s*files\((.*?)\)\s*$", text, re.M | re.S)
    if not m:
        die("meson.build has no `core_sources = files(...)` list to rewrite")
    listed = re.findall(r"'([^']*)'", m.group(1))
    bad = [s for s in listed if not s.startswith("fs/") or "/" in s[3:]]
    if bad:
        die("core_sources lists files outside fs/: " + " ".join(bad))
    missing = [s for s in listed if s[3:] not in flat]
    if missing:
        die("core_sources lists files that do not exist: " + " ".join(missing))
    sources = [s[3:] for s in listed]
    built = set(sources) | set(EXECUTABLES)
    orphans = [f for f in flat if re.search(r"\.(c|cc)$", f) and f not in built]
    if orphans:
        die("C files of fs/ that meson.build does not build: " + " ".join(orphans))
    return flat, sources, m


def rewrite_includes(path, here, where):
    text = path.read_text()

    def fix(m):
        name = m.group(2)
        there = where.get(name)
        if there is None or there == here:
            return m.group(0)
        return f'{m.group(1)}"../{there}/{name}"'

    new = re.sub(r'^(\s*#\s*include\s*)"([A-Za-z0-9_]+-internal\.h)"', fix,
                 text, flags=re.M)
    if new != text:
        path.write_text(new)


def meson_lists(flat, sources, where):
    """fs/meson.build and fs/<folder>/meson.build."""
    present = [(f, spec) for f, spec in FOLDERS
               if any(x in flat for x in spec["files"])]
    top = ["# The core library's sources, one folder per layer, lowest first:",
           "# each folder's meson.build adds its own files to core_sources",
           "# (see fs/README.md for what each folder may include)."]
    top += [f"subdir('{f}')" for f, _ in present]
    Path("fs/meson.build").write_text("\n".join(top) + "\n")
    for folder, spec in present:
        lib = [f for f in spec["files"] if f in sources]
        out = [f"# fs/{folder}: {spec['title']} (fs/{folder}/README.md)."]
        if lib:
            out.append("core_sources += files(")
            out += [f"  '{f}'," for f in lib]
            out.append(")")
        for f in spec["files"]:
            if f in flat and f in EXECUTABLES:
                out.append(f"{EXECUTABLES[f]} = files('{f}')")
        Path(f"fs/{folder}/meson.build").write_text("\n".join(out) + "\n")


def rewrite_top_meson(m, where):
    text = Path("meson.build").read_text()
    text = (text[:m.start()] +
            "# The core library's sources: fs/meson.build and one meson.build\n"
            "# per folder of fs/ (a new file is listed next to it).\n"
            "core_sources = []\nsubdir('fs')" + text[m.end():])
    for f, var in EXECUTABLES.items():
        text = re.sub(rf"'fs/{re.escape(f)}'", var, text)
    Path("meson.build").write_text(text)


def path_regex(where):
    names = sorted(where, key=len, reverse=True)
    alt = "|".join(re.escape(n) for n in names)
    return re.compile(rf"(?<![\w-])fs/({alt})(?![\w-])")


def rewrite_paths(where, moved):
    rx = path_regex({f: where[f] for f in moved})
    changed = []
    for rel in git("ls-files").splitlines():
        p = Path(rel)
        if not p.is_file() or p.suffix not in TEXT_SUFFIXES:
            continue
        if rel.startswith("tests/fuzz/corpus/") or rel == "tools/dev/relayout.py":
            continue
        try:
            text = p.read_text()
        except UnicodeDecodeError:
            continue
        new = rx.sub(lambda m: f"fs/{where[m.group(1)]}/{m.group(1)}", text)
        if new != text:
            p.write_text(new)
            changed.append(rel)
    for rel, old, new in SPECIAL:
        p = Path(rel)
        if p.is_file():
            text = p.read_text()
            if old in text:
                p.write_text(text.replace(old, new))
                changed.append(rel)
    return changed


def libs_of(folder, spec, flat):
    found = []
    for f in spec["files"]:
        p = Path("fs", folder, f)
        if f not in flat or not p.is_file():
            continue
        for h in re.findall(r"^\s*#\s*include\s*<([^>]+)>", p.read_text(), re.M):
            for prefix, lib in LIBS:
                if h.startswith(prefix) and lib not in found:
                    found.append(lib)
    return ", ".join(found)


def wrap(text):
    return textwrap.fill(text, width=76, break_on_hyphens=False)


def readmes(flat):
    head = ("Lowest first.  A folder uses only the folders listed before it "
            "(their public headers, include/hoard/); policy and remote are "
            "siblings and do not include each other.  A private header "
            "(X-internal.h) is included only in its own folder; the known "
            "exceptions are in tests/check_layers.py, which checks the rule "
            "per module.  Each folder's meson.build lists its files: add a "
            "new file there.")
    lines = ["# fs/: the core library and the daemon, one folder per layer",
             "", wrap(head), ""]
    for folder, spec in FOLDERS:
        files = [f for f in spec["files"] if f in flat]
        if not files:
            continue
        uses = ", ".join(spec["uses"]) or "nothing of hoard"
        lines.append(wrap(f"- `{folder}/`: {spec['title']}.  Uses: {uses}."))
        may = ("only its own headers" if not spec["uses"] else
               "the public headers of " +
               ", ".join(f"fs/{u}" for u in spec["uses"]) +
               ", and its own")
        body = [f"# fs/{folder}: {spec['title']}", "",
                wrap(f"Job: {spec['job']}."), "",
                wrap(f"May include: {may} (public ones in include/hoard/, "
                     "private X-internal.h here).  Nothing from a folder "
                     "that is not listed: see ../README.md."), ""]
        libs = libs_of(folder, spec, flat)
        if libs:
            body += [wrap(f"Outside libraries, included only here: {libs}."), ""]
        body += [wrap("Files: " + ", ".join(f"`{f}`" for f in files) + "."), ""]
        reach = sorted(
            f"{f} includes ../{m.group(1)}"
            for f in files if Path("fs", folder, f).is_file()
            for m in re.finditer(r'#\s*include\s*"\.\./([a-z]+/[A-Za-z0-9_]+-internal\.h)"',
                                 Path("fs", folder, f).read_text()))
        if reach:
            body += [wrap("Known breaks of the rule (issue 15 item 1, the "
                          "core API, removes them): " + "; ".join(reach) +
                          "."), ""]
        Path(f"fs/{folder}/README.md").write_text("\n".join(body))
    lines.append("")
    Path("fs/README.md").write_text("\n".join(lines))


def layer_table(flat):
    rows = ["| folder | job | files | outside libraries its files include |",
            "|---|---|---|---|"]
    for folder, spec in FOLDERS:
        files = [f for f in spec["files"] if f in flat]
        if files:
            rows.append(f"| `fs/{folder}/` | {spec['job']} | " +
                        ", ".join(f"`{f}`" for f in files) +
                        f" | {libs_of(folder, spec, flat)} |")
    rows.append("| `tools/` | the CLI, `hoard` | `hoard.c`, `cli.c`, "
                "`*_cmds.c` | |")
    return rows


def rewrite_readme(flat):
    p = Path("README.md")
    if not p.is_file():
        return "README.md missing"
    text = p.read_text()
    notes = []
    tree = ["fs/              the library and the daemon, one folder per layer, "
            "lowest first (fs/README.md):"]
    for folder, spec in FOLDERS:
        if any(f in flat for f in spec["files"]):
            tree.append(f"  {folder + '/':<14} {spec['title']}")
    new, n = re.subn(r"^fs/ +.*$", lambda _: "\n".join(tree), text,
                     count=1, flags=re.M)
    if n == 0:
        notes.append("README.md: no tree line for fs/ found; not changed")
    m = re.search(r"^Layers, lowest first(?:.*\n)*?\n((?:\|.*\n)+)", new,
                  re.M)
    if m:
        # The paragraph above the table stays (it is still true of the
        # folders); the table becomes one row per folder.
        new = (new[:m.start(1)] + "\n".join(layer_table(flat)) + "\n" +
               new[m.end(1):])
    else:
        notes.append("README.md: no 'Layers, lowest first' table found; not changed")
    p.write_text(new)
    return notes


def main():
    args = sys.argv[1:]
    dry = "--dry-run" in args
    if any(a not in ("--dry-run",) for a in args):
        die("usage: tools/dev/relayout.py [--dry-run]", 2)
    where = folder_of()
    flat, sources, m = check(where)
    moved = [f for f in flat if f in where]
    if dry:
        for f in moved:
            print(f"fs/{f} -> fs/{where[f]}/{f}")
        return 0
    for folder, _ in FOLDERS:
        if any(where[f] == folder for f in moved):
            Path("fs", folder).mkdir(exist_ok=True)
    for f in moved:
        git("mv", f"fs/{f}", f"fs/{where[f]}/{f}")
    for f in moved:
        rewrite_includes(Path("fs", where[f], f), where[f], where)
    meson_lists(flat, sources, where)
    rewrite_top_meson(m, where)
    changed = rewrite_paths(where, moved)
    readmes(flat)
    notes = rewrite_readme(flat)
    git("add", "-A", "fs", "meson.build", "README.md")
    git("add", "-u")
    print(f"relayout: moved {len(moved)} files into "
          f"{len({where[f] for f in moved})} folders; rewrote paths in "
          f"{len(set(changed))} files; staged, not committed")
    for n in notes:
        print(f"relayout: warning: {n}")
    print("relayout: next: meson setup build --wipe (or a new build dir), "
          "ninja, tests/check_layers.py, tests/run.sh, then git commit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
