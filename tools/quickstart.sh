#!/bin/bash
# hoard quick start: install what is missing, build, install, create the
# default store and mount the pip and huggingface volumes.  Run as root on
# Debian 12.  Safe to run again: it skips what is already done.
#
#   HOARD_STORE     store directory          (default /var/lib/hoard)
#   HOARD_PIP_DIR   pip volume mountpoint    (default /root/.cache/pip)
#   HOARD_HF_DIR    huggingface mountpoint   (default /root/.cache/huggingface)
#   HOARD_PREFIX    install prefix           (default /usr/local)
set -euo pipefail
cd "$(dirname "$0")/.."

STORE=${HOARD_STORE:-/var/lib/hoard}
PIP_DIR=${HOARD_PIP_DIR:-/root/.cache/pip}
HF_DIR=${HOARD_HF_DIR:-/root/.cache/huggingface}
PREFIX=${HOARD_PREFIX:-/usr/local}
PKGS="build-essential meson ninja-build pkg-config libfuse3-dev fuse3
      librocksdb-dev libzstd-dev libxxhash-dev libcurl4-openssl-dev
      libjansson-dev libsystemd-dev"

if [ "$(id -u)" != 0 ]; then
	echo "quickstart: run as root (it installs packages and mounts)" >&2
	exit 1
fi
missing=$(for p in $PKGS; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
done)
if [ -n "$missing" ]; then
	echo "quickstart: installing $(echo $missing)"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
[ -e /dev/fuse ] || modprobe fuse || { echo "quickstart: no /dev/fuse" >&2; exit 1; }

if [ ! -f build-release/build.ninja ]; then
	meson setup build-release --buildtype=release --prefix="$PREFIX" >/dev/null
fi
ninja -C build-release >/dev/null
ninja -C build-release install >/dev/null
echo "quickstart: installed hoard and hoardfs in $PREFIX/bin"

if [ ! -f "$STORE/HOARD" ]; then
	"$PREFIX/bin/hoard" init --store "$STORE"
fi

mounted() { grep -q " $(realpath -m "$1") fuse.hoard " /proc/mounts; }
args=()
for v in "pip=$PIP_DIR" "huggingface=$HF_DIR"; do
	dir=${v#*=}
	mkdir -p "$dir"
	if mounted "$dir"; then
		echo "quickstart: $dir is already a hoard mount"
		continue
	fi
	if [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
		echo "quickstart: note: $dir is not empty; its old content is hidden while the volume is mounted"
	fi
	args+=("$v")
done
if [ ${#args[@]} -gt 0 ]; then
	"$PREFIX/bin/hoardfs" --store "$STORE" "${args[@]}"
fi
cat <<MSG
quickstart: ready.
  pip volume:          $PIP_DIR   (pip uses it as its cache as is)
  huggingface volume:  $HF_DIR   (HF_HOME default; or HF_HUB_CACHE=$HF_DIR/hub)
  figures:             hoard stats --store $STORE
  unmount:             fusermount3 -u $PIP_DIR; fusermount3 -u $HF_DIR
MSG
