#!/bin/sh
# SPDX-License-Identifier: MIT
#
# GitLab Runner, shell executor: in config.toml
#   [[runners]]
#     executor = "shell"
#     pre_build_script = ". /opt/hoard/recipes/gitlab/env.sh"
#     post_build_script = "/opt/hoard/recipes/gitlab/post-build.sh"
#     environment = ["HOARD_REPO=s3://ci-cache/hoard",
#                    "HOARD_SIGN_KEY=/etc/hoard/push.key",
#                    "HOARD_TRUST=/etc/hoard/push.key.pub"]
# env.sh runs this script and exports PIP_CACHE_DIR (HF_HOME) into the
# job's shell.  Jobs are trusted (folded back, pushed signed) only on a
# host with /etc/hoard/gitlab-trusted-runner, a protected runner serving
# only trusted jobs (common.sh says why; its jobs can read the key).
# (With the docker executor these scripts run inside the job's container:
# use the host-side hoard-job.sh from a custom executor's prepare and
# cleanup stages instead; see README, CI runners.)
set -eu
. "$(dirname "$(readlink -f "$0")")/common.sh"
exec "$HOARD_JOB_SH" start
