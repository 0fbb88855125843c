#!/bin/sh
# SPDX-License-Identifier: MIT
#
# GitLab Runner: jobs in docker containers, each on its own copy-on-write
# clone of the host's hoard volumes.  GitLab's docker executor runs
# pre_build_script and post_build_script inside the job's container, which
# cannot (and must not) reach the hoard daemon, and it has no host-side
# step per job; so this is a custom executor that drives docker itself,
# as the docker executor would (the job's `image:`, its script through
# `docker exec`).  In config.toml:
#
#   [[runners]]
#     executor = "custom"
#     builds_dir = "/builds"
#     cache_dir = "/cache/gitlab"
#     environment = []                    # nothing hoard reads comes from here
#     [runners.custom]
#       config_exec = "/opt/hoard/recipes/gitlab/docker/config.sh"
#       prepare_exec = "/opt/hoard/recipes/gitlab/docker/prepare.sh"
#       run_exec = "/opt/hoard/recipes/gitlab/docker/run.sh"
#       cleanup_exec = "/opt/hoard/recipes/gitlab/docker/cleanup.sh"
#
# and, in the gitlab-runner service's own environment (systemd
# Environment= or EnvironmentFile=, not config.toml's `environment`, which
# jobs can override): HOARD_STORE, HOARD_VOLUMES (default pip),
# HOARD_JOB_DIR, HOARD_REPO, HOARD_TRUST, HOARD_SIGN_KEY as for
# hoard-job.sh; HOARD_GITLAB_IMAGE (the image when a job names none);
# HOARD_DOCKER_OPTS (extra `docker run` options, e.g. --user 1000:1000);
# HOARD_TRUST_TOKEN_FILE (see cleanup.sh: which jobs are trusted).
#
# prepare: hoard-job.sh start (pull, a clone per volume, mounted on the
# host), then a container of the job's image with the clones bind-mounted
# at /cache/pip (PIP_CACHE_DIR) and /cache/huggingface (HF_HOME), other
# volumes at /cache/VOLUME; it waits on stdin for the stages.
set -eu
. "$(dirname "$(readlink -f "$0")")/common.sh"
image=${CUSTOM_ENV_CI_JOB_IMAGE:-${HOARD_GITLAB_IMAGE:-}}
if [ -z "$image" ]; then
	echo "hoard: the job names no image and HOARD_GITLAB_IMAGE is not set" >&2
	exit "${SYSTEM_FAILURE_EXIT_CODE:-1}"
fi
fail() {
	echo "hoard: prepare of job $HOARD_JOB_ID failed: $*" >&2
	"$DOCKER" rm -f "$CONTAINER" >/dev/null 2>&1 || true
	HOARD_TRUSTED=0 "$HOARD_JOB_SH" finish >/dev/null 2>&1 || true
	exit "${SYSTEM_FAILURE_EXIT_CODE:-1}"
}
paths=$(HOARD_TRUSTED=0 "$HOARD_JOB_SH" start) || fail "hoard job start"
set -- --detach --interactive --name "$CONTAINER" \
	--label "com.hoard.job=$HOARD_JOB_ID"
while read -r v p; do
	[ -n "$v" ] || continue
	set -- "$@" -v "$p:/cache/$v"
	case $v in
	pip) set -- "$@" -e PIP_CACHE_DIR=/cache/pip ;;
	huggingface) set -- "$@" -e HF_HOME=/cache/huggingface ;;
	esac
done <<EOT
$paths
EOT
# shellcheck disable=SC2086 # HOARD_DOCKER_OPTS: words on purpose
"$DOCKER" run "$@" ${HOARD_DOCKER_OPTS:-} "$image" /bin/sh >/dev/null ||
	fail "docker run $image"
