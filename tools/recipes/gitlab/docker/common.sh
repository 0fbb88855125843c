# SPDX-License-Identifier: MIT
# shellcheck shell=sh disable=SC2034 # the stages use these
# Sourced by the custom executor's stages (see prepare.sh).  Only the job's
# ID, pipeline source, image and trust token are taken from the job
# (CUSTOM_ENV_*, which the job's .gitlab-ci.yml can set); every hoard
# setting comes from the runner's own environment (HOARD_*), and the name
# of the job's clones from the config stage (HOARD_GITLAB_JOB, config.sh).
HOARD_JOB_SH="$(dirname "$(readlink -f "$0")")/../../hoard-job.sh"
DOCKER=${DOCKER:-docker}
case "${CUSTOM_ENV_CI_JOB_ID:-}" in
'' | *[!0-9]*)
	echo "hoard: CUSTOM_ENV_CI_JOB_ID is not a job number: run by GitLab Runner's custom executor" >&2
	exit "${SYSTEM_FAILURE_EXIT_CODE:-1}"
	;;
esac
case "${HOARD_GITLAB_JOB:-}" in
"gl-$CUSTOM_ENV_CI_JOB_ID-"????????????????) ;;
*)
	echo "hoard: HOARD_GITLAB_JOB is not set by config.sh for job $CUSTOM_ENV_CI_JOB_ID: is config_exec set?" >&2
	exit "${SYSTEM_FAILURE_EXIT_CODE:-1}"
	;;
esac
HOARD_JOB_ID=$HOARD_GITLAB_JOB
CONTAINER="hoard-$HOARD_JOB_ID"
export HOARD_JOB_ID
