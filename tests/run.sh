#!/bin/bash
# SPDX-License-Identifier: MIT
#
# hoard's whole test suite, as root on Debian 12:
#   1. installs the build and test dependencies (skipped when present),
#   2. builds `build` (debugoptimized, -Werror), `build-asan`
#      (AddressSanitizer + UBSan) and `build-tsan` (ThreadSanitizer: the
#      daemon and the CLI only),
#   3. checks formatting with clang-format (when .clang-format exists) and
#      the include rule per layer (tests/check_layers.py),
#   4. builds the libFuzzer targets in `build-fuzz` (clang, -Dfuzz=true,
#      ASan/UBSan) when clang's libFuzzer is installed,
#   5. runs one pytest session over tests/e2e: the C unit tests of both
#      builds, the fuzz corpora replayed by both builds and a short
#      libFuzzer run of every target (tests/e2e/test_fuzz.py), the
#      end-to-end tests against build/hoardfs, a short e2e pass against
#      the ASan daemon, and the concurrency tests against the TSan daemon
#      (tests/e2e/test_tsan.py).  Extra arguments go to pytest.
#
# Options (before the pytest arguments):
#   --no-tsan              skip build-tsan and the TSan pass (about 2 min to
#                          build and 2 min to run on a shared 2-core
#                          machine)
#   --fuzz-long[=SECONDS]  only fuzz: every libFuzzer target for SECONDS
#                          (default 600) each, growing build-fuzz/corpus/
#
# The last line printed is pytest's summary.
set -euo pipefail

FUZZ_LONG=
TSAN=1
while [ $# -gt 0 ]; do
	case $1 in
	--no-tsan) TSAN= ;;
	--fuzz-long) FUZZ_LONG=600 ;;
	--fuzz-long=*) FUZZ_LONG=${1#--fuzz-long=} ;;
	*) break ;;
	esac
	shift
done

cd "$(dirname "$(readlink -f "$0")")/.."

die() {
	echo "tests/run.sh: $*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (FUSE mounts with allow_other, tmpfs mounts)"

# the list lives in tests/packages.txt (shared with .ci/run)
mapfile -t PACKAGES < <(sed 's/#.*//' tests/packages.txt | tr -s ' \t' '\n' | grep .)

missing=()
for p in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "== installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	apt-get install -y --no-install-recommends "${PACKAGES[@]}" </dev/null
fi

# The S3 test server (tests/s3) runs on Node.js: this machine's own node
# when there is one (npm comes with it), else Debian's (node 18, enough).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "== installing: nodejs npm"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	apt-get install -y --no-install-recommends nodejs npm </dev/null
fi

# FUSE: the module and the device node
if [ ! -c /dev/fuse ]; then
	modprobe fuse 2>/dev/null || true
fi
[ -c /dev/fuse ] || die "/dev/fuse is missing: load the fuse module (modprobe fuse) on the host," \
	"or give the container the device (docker run --device /dev/fuse --cap-add SYS_ADMIN)"
command -v fusermount3 >/dev/null || die "fusermount3 not found (package fuse3)"

setup() { # setup DIR OPTIONS...: configure a build dir, or reconfigure it
	local dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		meson configure "$dir" "$@"
	else
		rm -rf "$dir"
		meson setup "$dir" "$@"
	fi
}

echo "== build"
setup build -Dbuildtype=debugoptimized -Dwerror=true
ninja -C build
echo "== build-asan"
setup build-asan -Dbuildtype=debugoptimized -Dwerror=true \
	-Db_sanitize=address,undefined -Db_lundef=false
ninja -C build-asan

if [ -f .clang-format ]; then
	echo "== clang-format"
	dirs=()
	for d in fs tools include tests/unit tests/fuzz; do [ -d "$d" ] && dirs+=("$d"); done
	find "${dirs[@]}" -name '*.[ch]' -print0 | xargs -0 -r clang-format --dry-run --Werror
fi

TSAN_ENV=()
if [ -n "$TSAN" ] && [ -z "$FUZZ_LONG" ]; then
	echo "== build-tsan"
	setup build-tsan -Dbuildtype=debugoptimized -Dwerror=true \
		-Db_sanitize=thread -Db_lundef=false
	ninja -C build-tsan hoardfs hoard
	TSAN_ENV=(HOARD_TSAN_BUILD="$PWD/build-tsan")
fi

# libFuzzer targets: clang with its runtime (Debian: libclang-rt-14-dev)
FUZZ_ENV=()
if command -v clang >/dev/null &&
	[ -f "$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a)" ]; then
	echo "== build-fuzz"
	# (a build-fuzz made before the C++ file came has g++ as its linker)
	[ ! -f build-fuzz/build.ninja ] || grep -q clang++ build-fuzz/build.ninja || rm -rf build-fuzz
	CC=clang CXX=clang++ setup build-fuzz -Dbuildtype=debugoptimized -Dwerror=true -Dfuzz=true \
		-Db_sanitize=address,undefined -Db_lundef=false
	mapfile -t fuzz_targets < <(sed -n "/^fuzz_targets/,/]/p" tests/meson.build |
		grep -o "'[a-z0-9_]*'" | tr -d "'" | sed 's|^|tests/fuzz_|')
	ninja -C build-fuzz "${fuzz_targets[@]}"
	FUZZ_ENV=(HOARD_FUZZ_BUILD="$PWD/build-fuzz")
elif [ -n "$FUZZ_LONG" ]; then
	die "--fuzz-long needs clang and libclang-rt-14-dev (tests/packages.txt)"
else
	echo "== build-fuzz: skipped (no clang libFuzzer); the corpora still replay"
fi

# the include rule per layer (README, How it works): a break fails the run
echo "== include layers"
/usr/bin/python3 tests/check_layers.py

# pip in the tests must see none of the caller's pip configuration
unset PIP_FIND_LINKS PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE PIP_NO_INDEX

if [ -n "$FUZZ_LONG" ]; then
	echo "== pytest: libFuzzer, ${FUZZ_LONG} s per target"
	exec env HOARD_BUILD="$PWD/build" HOARD_FUZZ_SECONDS="$FUZZ_LONG" "${FUZZ_ENV[@]}" \
		/usr/bin/python3 -m pytest -v -p no:cacheprovider \
		tests/e2e/test_fuzz.py -k test_libfuzzer "$@"
fi

echo "== pytest"
exec env HOARD_BUILD="$PWD/build" HOARD_ASAN_BUILD="$PWD/build-asan" "${FUZZ_ENV[@]}" "${TSAN_ENV[@]}" \
	/usr/bin/python3 -m pytest -v -p no:cacheprovider tests/e2e "$@"
