#!/bin/sh
# SPDX-License-Identifier: MIT
# GitLab Runner post_build_script (see pre-build.sh).
set -eu
. "$(dirname "$(readlink -f "$0")")/common.sh"
exec "$HOARD_JOB_SH" finish
