#!/bin/sh
# SPDX-License-Identifier: MIT
#
# GitHub Actions self-hosted runner: ACTIONS_RUNNER_HOOK_JOB_COMPLETED
# (see job-started.sh).  Trusted jobs (a push to one of
# $HOARD_TRUSTED_REFS, never a pull request) fold their writes back and
# push signed; every other job's writes are dropped.
set -eu
. "$(dirname "$(readlink -f "$0")")/common.sh"
exec "$HOARD_JOB_SH" finish
