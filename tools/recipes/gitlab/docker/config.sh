#!/bin/sh
# SPDX-License-Identifier: MIT
# GitLab Runner custom executor, config stage (see prepare.sh).
#
# The name of the job's clones and container is made here, not taken from
# the job: CUSTOM_ENV_CI_JOB_ID is a job variable, and a job's own
# .gitlab-ci.yml can set it to another running job's number (whose clone
# its cleanup would then discard).  job_env passes the name to the later
# stages as HOARD_GITLAB_JOB, which only the runner sets: the job's own
# variables reach the stages only as CUSTOM_ENV_*.
set -eu
case "${CUSTOM_ENV_CI_JOB_ID:-}" in
'' | *[!0-9]*) id=0 ;; # prepare refuses it (common.sh)
*) id=$CUSTOM_ENV_CI_JOB_ID ;;
esac
nonce=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
cat <<JSON
{"builds_dir": "/builds", "cache_dir": "/cache/gitlab", "builds_dir_is_shared": false,
 "job_env": {"HOARD_GITLAB_JOB": "gl-$id-$nonce"},
 "driver": {"name": "hoard: docker with per-job copy-on-write clones", "version": "2"}}
JSON
