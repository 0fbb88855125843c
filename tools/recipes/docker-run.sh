#!/bin/sh
# SPDX-License-Identifier: MIT
#
# docker-run.sh ID IMAGE COMMAND...: run one job in a container with a
# per-job clone of the pip and huggingface volumes bind-mounted at the
# image's default cache directories, then drop the clone (HOARD_KEEP=1
# folds the job's new files back into the shared volumes instead).
# Needs a running hoardfs (hoardfs --persist, or the systemd unit).
#
#   HOARD_STORE=/var/lib/hoard HOARD_KEEP=0 \
#     tools/recipes/docker-run.sh build-42 python:3.11 pip install numpy
#
# The core of it, by hand:
#   p=$(hoard job start ID --from pip)
#   docker run --rm -v "$p":/root/.cache/pip IMAGE ...
#   hoard job finish ID --discard
set -eu
HOARD=${HOARD:-hoard}
DOCKER=${DOCKER:-docker}
id=$1 image=$2
shift 2
paths=$("$HOARD" job start "$id" --from pip --from huggingface)
pip=$(echo "$paths" | sed -n 1p)
hf=$(echo "$paths" | sed -n 2p)
rc=0
# shellcheck disable=SC2086 # HOARD_DOCKER_OPTS: words on purpose
"$DOCKER" run --rm ${HOARD_DOCKER_OPTS:-} \
	-v "$pip:/root/.cache/pip" -v "$hf:/root/.cache/huggingface" \
	"$image" "$@" || rc=$?
if [ "${HOARD_KEEP:-0}" = 1 ] && [ $rc = 0 ]; then
	"$HOARD" job finish "$id" --keep >/dev/null
else
	"$HOARD" job finish "$id" --discard >/dev/null
fi
exit $rc
