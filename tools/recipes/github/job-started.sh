#!/bin/sh
# SPDX-License-Identifier: MIT
#
# GitHub Actions self-hosted runner: ACTIONS_RUNNER_HOOK_JOB_STARTED.
# In the runner's .env file:
#   ACTIONS_RUNNER_HOOK_JOB_STARTED=/opt/hoard/recipes/github/job-started.sh
#   ACTIONS_RUNNER_HOOK_JOB_COMPLETED=/opt/hoard/recipes/github/job-completed.sh
#   HOARD_REPO=s3://ci-cache/hoard        (optional: the fleet's bucket)
#   HOARD_SIGN_KEY=/etc/hoard/push.key    (trusted pushes; keep it 0600)
#   HOARD_TRUST=/etc/hoard/push.key.pub   (pulls take only signed refs)
#   HOARD_LINK_DIR=/run/hoard/runner1     (one per runner on a host)
#   HOARD_TRUSTED_REFS="refs/heads/main refs/tags/*"
# A job container then bind-mounts the per-job clone:
#   container: { image: ..., volumes: [ /run/hoard/runner1/pip:/root/.cache/pip ] }
# and a job on the host gets PIP_CACHE_DIR (HF_HOME) through $GITHUB_ENV.
set -eu
. "$(dirname "$(readlink -f "$0")")/common.sh"
exec "$HOARD_JOB_SH" start
