#!/bin/sh
# SPDX-License-Identifier: MIT
#
# GitLab Runner custom executor, cleanup stage (always run; see
# prepare.sh): removes the container, then hoard-job.sh finish: a trusted
# job's new files are folded back into the shared volumes (and pushed
# signed with HOARD_REPO and HOARD_SIGN_KEY), any other job's are dropped.
#
# Trusted: the job carries HOARD_TRUST_TOKEN equal to the contents of the
# host's HOARD_TRUST_TOKEN_FILE, and is not a merge request pipeline.  Make
# HOARD_TRUST_TOKEN a *protected*, masked CI/CD variable: GitLab gives it
# only to pipelines of protected branches and tags, and a job cannot guess
# it.  (CI_COMMIT_REF_PROTECTED alone is not enough: a job's own
# .gitlab-ci.yml can set it.)  No token file on the host: no job is
# trusted.
set -eu
. "$(dirname "$(readlink -f "$0")")/common.sh"
"$DOCKER" rm -f "$CONTAINER" >/dev/null 2>&1 || true
store=${HOARD_STORE:-/var/lib/hoard}
if [ ! -e "$store/jobs/$HOARD_JOB_ID.json" ]; then
	exit 0 # prepare failed before the clones (and undid itself)
fi
HOARD_TRUSTED=0
case "${CUSTOM_ENV_CI_PIPELINE_SOURCE:-}" in
merge_request_event | external_pull_request_event) ;;
*)
	if [ -n "${HOARD_TRUST_TOKEN_FILE:-}" ] && [ -s "$HOARD_TRUST_TOKEN_FILE" ] &&
		[ -n "${CUSTOM_ENV_HOARD_TRUST_TOKEN:-}" ] &&
		[ "$CUSTOM_ENV_HOARD_TRUST_TOKEN" = "$(cat "$HOARD_TRUST_TOKEN_FILE")" ]; then
		HOARD_TRUSTED=1
	fi
	;;
esac
export HOARD_TRUSTED
exec "$HOARD_JOB_SH" finish
