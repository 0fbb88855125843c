# SPDX-License-Identifier: MIT
# Sourced by job-started.sh and job-completed.sh: the job's ID and trust
# from the variables the runner sets (GITHUB_RUN_ID, GITHUB_RUN_ATTEMPT,
# GITHUB_JOB, GITHUB_REF, GITHUB_EVENT_NAME, GITHUB_ENV).
HOARD_JOB_SH="$(dirname "$(readlink -f "$0")")/../hoard-job.sh"
job=$(printf '%s' "${GITHUB_JOB:-job}" | tr -c 'A-Za-z0-9._-' '-')
HOARD_JOB_ID=$(printf 'gh-%s-%s-%s' "${GITHUB_RUN_ID:?GITHUB_RUN_ID is not set}" \
	"${GITHUB_RUN_ATTEMPT:-1}" "$job" | cut -c1-40)
HOARD_TRUSTED=0
case "${GITHUB_EVENT_NAME:-}" in
pull_request | pull_request_target | pull_request_review* | issue_comment) ;;
*)
	for r in ${HOARD_TRUSTED_REFS:-refs/heads/main}; do
		# shellcheck disable=SC2254 # r is a glob on purpose
		case "${GITHUB_REF:-}" in $r) HOARD_TRUSTED=1 ;; esac
	done
	;;
esac
HOARD_ENV_FILE=${HOARD_ENV_FILE:-${GITHUB_ENV:-}}
export HOARD_JOB_ID HOARD_TRUSTED HOARD_ENV_FILE
