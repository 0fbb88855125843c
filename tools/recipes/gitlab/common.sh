# SPDX-License-Identifier: MIT
# Sourced by pre-build.sh and post-build.sh: the job's ID and trust from
# the variables GitLab Runner sets (CI_JOB_ID, CI_COMMIT_REF_PROTECTED,
# CI_PIPELINE_SOURCE).
HOARD_JOB_SH="$(dirname "$(readlink -f "$0")")/../hoard-job.sh"
HOARD_JOB_ID="gl-${CI_JOB_ID:?CI_JOB_ID is not set}"
# Trust.  With the shell executor every variable here can be set by the
# job's own .gitlab-ci.yml (CI_COMMIT_REF_PROTECTED too), and the job runs
# as the runner's user, so nothing the job can read or set may decide it.
# A host whose runner serves only trusted jobs (register it as a
# *protected* runner: GitLab then gives it only jobs of protected branches
# and tags) says so with a file the job cannot make: the fixed path below,
# owned by root and writable by nobody else.  Without it no job is folded
# back.  Merge request pipelines are never trusted.
HOARD_GITLAB_TRUSTED_RUNNER=/etc/hoard/gitlab-trusted-runner
HOARD_TRUSTED=0
if [ -f "$HOARD_GITLAB_TRUSTED_RUNNER" ] && [ ! -L "$HOARD_GITLAB_TRUSTED_RUNNER" ] &&
	[ "$(stat -c %u:%A "$HOARD_GITLAB_TRUSTED_RUNNER")" = "0:-rw-r--r--" ] &&
	[ "${CI_COMMIT_REF_PROTECTED:-false}" = true ] &&
	[ "${CI_PIPELINE_SOURCE:-}" != merge_request_event ] &&
	[ "${CI_PIPELINE_SOURCE:-}" != external_pull_request_event ]; then
	HOARD_TRUSTED=1
fi
export HOARD_JOB_ID HOARD_TRUSTED
