# SPDX-License-Identifier: MIT
# Sourced by pre-build.sh and post-build.sh: the job's ID and trust from
# the variables GitLab Runner sets (CI_JOB_ID, CI_COMMIT_REF_PROTECTED,
# CI_PIPELINE_SOURCE).
HOARD_JOB_SH="$(dirname "$(readlink -f "$0")")/../hoard-job.sh"
HOARD_JOB_ID="gl-${CI_JOB_ID:?CI_JOB_ID is not set}"
HOARD_TRUSTED=0
if [ "${CI_COMMIT_REF_PROTECTED:-false}" = true ] &&
	[ "${CI_PIPELINE_SOURCE:-}" != merge_request_event ] &&
	[ "${CI_PIPELINE_SOURCE:-}" != external_pull_request_event ]; then
	HOARD_TRUSTED=1
fi
export HOARD_JOB_ID HOARD_TRUSTED
