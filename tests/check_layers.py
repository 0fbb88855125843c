#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The include rule per layer (README "How it works"), checked.

Every C file and header of the core, the daemon and the CLI (fs/, include/,
tools/) belongs to one module, and every module to one layer.  A file may
include:
  - a public header (include/hoard/X.h) of a module of its own layer or a
    lower one;
  - a private header (fs/X-internal.h, tools/X.h) only from its own module;
  - an outside library's header only in the one module that wraps that
    library (OUTSIDE below); the C library and POSIX headers anywhere.
And the module graph the includes make must have no cycle.

Known breaks of the rule in today's tree are listed in EXCEPTIONS, each
with the issue item whose work removes it: the check fails on any break
that is not listed, and also on a listed one that no longer happens (so
the list shrinks as the work lands).

To move a file (e.g. into per-layer folders): change its path in MODULES
(paths are relative to the repository).  To add a module: add it to
MODULES under its layer.  Tests (tests/) are outside the rule: a unit test
or fuzz target may use its module's private header.

Usage: tests/check_layers.py [--list] [--root DIR]
(exit 0: clean, 1: violations, 2: usage; --root checks another tree)
"""
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Layers, lowest first.  A module is a name -> the files that make it.
LAYERS = [
    ("1 util", {
        "util": ["fs/base/util.c", "include/hoard/util.h"],
        # digest.h is implemented over libcrypto in fs/remote/s3sig.c (module s3)
        "digest": ["include/hoard/digest.h"],
        # jansson conventions (dump, integer and string helpers)
        "json": ["fs/base/json.c", "include/hoard/json.h"],
        # the one in-memory hash table
        "htab": ["fs/base/htab.c", "include/hoard/htab.h"],
    }),
    ("2 hash, chunker, codec", {
        "hash": ["fs/store/hash.c", "include/hoard/hash.h"],
        "chunker": ["fs/store/chunker.c", "include/hoard/chunker.h"],
        "codec": ["fs/store/codec.c", "include/hoard/codec.h"],
        # the store's record codecs (docs/FORMAT.md 2): bytes <-> structs
        "records": ["fs/store/records.c", "include/hoard/records.h"],
    }),
    ("3 remote formats, S3 client", {
        "remote": ["fs/remote/remote.c", "include/hoard/remote.h"],
        "s3": ["fs/remote/s3.c", "fs/remote/s3conf.c", "fs/remote/s3ops.c", "fs/remote/s3sig.c",
               "fs/remote/s3xml.c", "fs/remote/s3-internal.h", "include/hoard/s3.h"],
        "sign": ["fs/remote/sign.c", "include/hoard/sign.h"],
    }),
    ("4 store", {
        "store": ["fs/store/store.c", "fs/store/storewal.c", "fs/store/storecrc.c", "fs/store/storepf.c",
                  "fs/store/store-internal.h",
                  "include/hoard/store.h"],
    }),
    ("5 filesystem core", {
        "core": ["fs/core/idmap.c", "fs/core/chunks.c", "fs/core/meta.c", "fs/core/dir.c",
                 "fs/core/file.c", "fs/core/read.c", "fs/core/commit.c", "fs/core/ingest.c", "fs/core/extents.c", "fs/core/staging.c",
                 "fs/core/info.c", "fs/core/plain.c", "fs/core/volume.c", "fs/core/volrm.c",
                 "fs/core/core.c", "fs/core/dentpf.c", "fs/core/pend.c",
                 "fs/core/fs-internal.h", "include/hoard/fs.h",
                 "include/hoard/core.h",
                 "include/hoard/idmap.h",
                 "include/hoard/plain.h", "include/hoard/volume.h"],
    }),
    ("6 services", {
        "stats": ["fs/policy/stats.c", "include/hoard/stats.h"],
        "ctl": ["fs/daemon/ctl.c", "include/hoard/ctl.h"],
        "gc": ["fs/policy/gc.c", "include/hoard/gc.h"],
        "fsck": ["fs/policy/fsck.c", "fs/policy/fsckrepair.c", "fs/policy/fsckscan.c",
                 "fs/policy/fsckreport.c",
                 "fs/policy/fsckplain.c", "fs/policy/fsckdigest.c",
                 "fs/policy/fsckpending.c",
                 "fs/policy/fsck-internal.h",
                 "include/hoard/fsck.h"],
        "volumectl": ["fs/daemon/volumectl.c", "include/hoard/volumectl.h"],
        "evict": ["fs/policy/evict.c", "include/hoard/evict.h"],
        "sync": ["fs/remote/sync.c", "fs/remote/syncpull.c", "fs/remote/syncgc.c", "fs/remote/syncls.c",
                 "fs/remote/syncremote.c", "fs/remote/syncreq.c", "fs/remote/synctrust.c",
                 "fs/remote/sync-internal.h",
                 "fs/remote/pack.c", "fs/remote/pack-internal.h",
                 "include/hoard/sync.h",
                 # lazy fetch reads the bucket through sync's repository
                 # handle and chunk index (sync-internal.h): one module
                 "fs/remote/lazy.c", "include/hoard/lazy.h"],
        # the store's trust setting (above the store and sign)
        "trust": ["fs/remote/trust.c", "include/hoard/trust.h"],
    }),
    ("7 front ends", {
        "hoardfs": ["fs/daemon/hoardfs.c", "fs/daemon/hoardfsops.c", "fs/daemon/hoardfsctl.c",
                    "fs/daemon/hoardfs-internal.h"],
        "cli": ["tools/*.c", "tools/*.h"],
    }),
]

# Private headers: included only by files of their own module.
PRIVATE = ["fs/*/*-internal.h", "tools/*.h"]

# Outside libraries: header (or directory prefix) -> the one module that
# may include it (a tuple: the modules that may).  Any other <header> must be the C library's or POSIX's
# (SYSTEM below); an unknown one fails the check, so a new library gets an
# owner here on purpose.
OUTSIDE = {
    "rocksdb/": "store",
    # storecrc.c finds RocksDB's own CRC32C (dlsym RTLD_NEXT)
    "dlfcn.h": "store",
    "zstd.h": "codec",
    "zstd_errors.h": "codec",
    "xxhash.h": "hash",
    "curl/": "s3",
    # libcrypto: digests for SigV4 (s3sig.c) and Ed25519 ref signatures
    "openssl/": ("s3", "sign"),
    "expat.h": "s3",
    "fuse_lowlevel.h": "hoardfs",
    "fuse.h": "hoardfs",
    "systemd/": "hoardfs",
    # JSON: the team's rule is jansson wherever JSON is read or written
    # (no wrapper module), so it has several owners; keep the list short.
    "jansson.h": ("json", "core", "volumectl", "hoardfs", "cli"),
}

SYSTEM = re.compile(
    r"^(assert|ctype|dirent|endian|errno|fcntl|fnmatch|ftw|getopt|glob|grp|"
    r"inttypes|libgen|limits|locale|malloc|math|netdb|poll|pthread|pwd|"
    r"sched|search|semaphore|setjmp|signal|stdarg|stdatomic|stdbool|stddef|"
    r"stdint|stdio|stdlib|stdnoreturn|string|strings|syslog|termios|time|"
    r"threads|unistd|utime|wchar|wordexp)\.h$"
    r"|^(sys|netinet|arpa|linux|asm)/[a-z_/]+\.h$")

# Today's known breaks: (file, included header) -> the issue item whose work
# removes it.  Written out, not hidden: the check fails when one of them no
# longer happens, so delete the line then.
EXCEPTIONS = {
}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def module_table():
    """file path -> (module, layer index), with globs expanded."""
    table = {}
    for li, (_, mods) in enumerate(LAYERS):
        for mod, pats in mods.items():
            for pat in pats:
                paths = sorted(REPO.glob(pat)) if "*" in pat else [REPO / pat]
                for p in paths:
                    rel = p.relative_to(REPO).as_posix()
                    if rel in table:
                        raise SystemExit(f"check_layers: {rel} is in two modules")
                    table[rel] = (mod, li)
    return table


def is_private(rel):
    return any(Path(rel).match(p) for p in PRIVATE)


def resolve(src, quoted):
    """The repository path a quoted include names, or None."""
    for base in (REPO / src).parent, REPO / "include":
        p = (base / quoted).resolve()
        if p.is_file():
            try:
                return p.relative_to(REPO).as_posix()
            except ValueError:
                return None
    return None


def check():
    table = module_table()
    errors, seen_exc = [], set()
    edges = {}  # module -> {module: (file, header)}
    files = sorted(f for d in ("fs", "include", "tools")
                   for f in (REPO / d).rglob("*.[ch]"))
    for f in files:
        rel = f.relative_to(REPO).as_posix()
        if rel not in table:
            errors.append(f"{rel}: not in any module of the layer table "
                          f"(add it to LAYERS in tests/check_layers.py)")
            continue
        mod, li = table[rel]
        for kind, name in INCLUDE.findall(f.read_text(errors="replace")):
            if kind == "<":
                owner = next((m for h, m in OUTSIDE.items()
                              if name == h or (h.endswith("/") and name.startswith(h))),
                             None)
                if owner is None:
                    if not SYSTEM.match(name):
                        errors.append(f"{rel}: includes <{name}>, an outside "
                                      f"header no module owns (add it to "
                                      f"OUTSIDE with its one module)")
                elif mod not in (owner if isinstance(owner, tuple) else (owner,)):
                    errors.append(f"{rel}: includes <{name}>, which only "
                                  f"module {owner} may include")
                continue
            target = resolve(rel, name)
            if target is None:
                errors.append(f'{rel}: includes "{name}", which is no file '
                              f"of the repository")
                continue
            if target not in table:
                continue  # reported as not in any module
            tmod, tli = table[target]
            why = None
            if tmod != mod and is_private(target):
                why = f"the private header of module {tmod}"
            elif tli > li:
                why = (f"a header of layer '{LAYERS[tli][0]}' above "
                       f"'{LAYERS[li][0]}'")
            if tmod != mod:
                edges.setdefault(mod, {}).setdefault(tmod, (rel, target))
            if why is None:
                continue
            if (rel, target) in EXCEPTIONS:
                seen_exc.add((rel, target))
                continue
            errors.append(f'{rel}: includes "{name}", {why}')
    for (rel, target), item in EXCEPTIONS.items():
        if (rel, target) not in seen_exc:
            errors.append(f"known exception {rel} -> {target} ({item}) no "
                          f"longer happens: delete it from EXCEPTIONS")
    errors += cycles(edges)
    return errors, seen_exc


def cycles(edges):
    """One message per include cycle between modules (depth-first)."""
    out, state, stack = [], {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(edges.get(m, {})):
            if state.get(n) == 1:
                loop = stack[stack.index(n):] + [n]
                how = ", ".join(f"{a} ({edges[a][b][0]} includes "
                                f"{edges[a][b][1]})"
                                for a, b in zip(loop, loop[1:]))
                out.append("include cycle: " + " -> ".join(loop) + ": " + how)
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)
    return out


def main():
    global REPO
    args, listing = sys.argv[1:], False
    while args:
        a = args.pop(0)
        if a == "--list":
            listing = True
        elif a == "--root" and args:
            REPO = Path(args.pop(0)).resolve()
        else:
            print("usage: tests/check_layers.py [--list] [--root DIR]",
                  file=sys.stderr)
            return 2
    errors, seen = check()
    if listing:
        for name, mods in LAYERS:
            print(f"{name}: {', '.join(mods)}")
        for (rel, target) in sorted(seen):
            print(f"known exception: {rel} -> {target} "
                  f"({EXCEPTIONS[(rel, target)]})")
    for e in errors:
        print(f"check_layers: {e}", file=sys.stderr)
    if errors:
        print(f"check_layers: {len(errors)} violation(s) of the include "
              f"rule (README, How it works)", file=sys.stderr)
        return 1
    print(f"check_layers: include rule holds ({len(seen)} known "
          f"exceptions, listed with --list)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
