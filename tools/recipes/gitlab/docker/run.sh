#!/bin/sh
# SPDX-License-Identifier: MIT
# GitLab Runner custom executor, run stage: run.sh SCRIPT STAGE runs the
# script the runner generated for STAGE in the job's container (see
# prepare.sh).  A failing script is a build failure.
set -eu
. "$(dirname "$(readlink -f "$0")")/common.sh"
script=${1:?usage: run.sh SCRIPT STAGE}
"$DOCKER" exec -i "$CONTAINER" "${HOARD_GITLAB_SHELL:-/bin/sh}" <"$script" ||
	exit "${BUILD_FAILURE_EXIT_CODE:-1}"
