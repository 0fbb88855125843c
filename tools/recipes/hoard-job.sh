#!/bin/sh
# SPDX-License-Identifier: MIT
#
# hoard-job.sh start|finish: a CI job's cache life cycle on a runner host,
# for the runners' job hooks (github/, gitlab/ call it).  Needs a running
# hoardfs (tools/recipes/hoardfs.service: hoardfs -f --persist).
#
#   start:  pull each volume from $HOARD_REPO (if set; a failed pull only
#           warns: the job runs with what the host has), then
#           `hoard job start`: a copy-on-write clone per volume, mounted;
#           prints "VOLUME PATH" lines, links $HOARD_LINK_DIR/VOLUME to
#           the path (a stable source for container bind mounts) and
#           appends PIP_CACHE_DIR / HF_HOME to $HOARD_ENV_FILE.
#   finish: trusted jobs ($HOARD_TRUSTED=1) fold their new files back
#           (`hoard job finish --keep`) and, with $HOARD_REPO and
#           $HOARD_SIGN_KEY, push the volumes signed; any other job's
#           writes are dropped (--discard).  A job that holds no key can
#           never make the fleet take its bytes.
#
# Environment:
#   HOARD_JOB_ID      the job's ID (required; 1-40 of A-Z a-z 0-9 . _ -)
#   HOARD_STORE       store directory (default /var/lib/hoard)
#   HOARD_VOLUMES     volumes to clone (default "pip")
#   HOARD_JOB_DIR     where clones are mounted (default /run/hoard/jobs)
#   HOARD_LINK_DIR    optional: stable symlinks VOLUME -> the job's mount
#   HOARD_ENV_FILE    optional: a file to append cache variables to
#   HOARD_REPO        optional: s3://BUCKET/PREFIX of the fleet
#   HOARD_TRUST       optional: public key file(s) a pull must trust
#                     (passed as --trust; space-separated)
#   HOARD_TRUSTED     1 for a trusted job (protected branch), else 0
#   HOARD_SIGN_KEY    optional: secret key file for the signed push
#   HOARD             the hoard binary (default: hoard on $PATH)
#   AWS_*             S3 settings for pull and push
set -eu

HOARD=${HOARD:-hoard}
export HOARD_STORE="${HOARD_STORE:-/var/lib/hoard}"
VOLUMES=${HOARD_VOLUMES:-pip}
JOB_DIR=${HOARD_JOB_DIR:-/run/hoard/jobs}
ID=${HOARD_JOB_ID:?HOARD_JOB_ID is not set}

log() { echo "hoard-job: $*" >&2; }

start() {
	for v in $VOLUMES; do
		"$HOARD" volume create "$v" >/dev/null
		if [ -n "${HOARD_REPO:-}" ]; then
			trust=""
			for k in ${HOARD_TRUST:-}; do trust="$trust --trust $k"; done
			# shellcheck disable=SC2086 # trust: words on purpose
			if ! "$HOARD" pull "$HOARD_REPO" --volume "$v" $trust >/dev/null; then
				log "warning: pull of $v from $HOARD_REPO failed; the job runs with this host's cache"
			fi
		fi
	done
	from=""
	for v in $VOLUMES; do from="$from --from $v"; done
	# shellcheck disable=SC2086
	paths=$("$HOARD" job start "$ID" --dir "$JOB_DIR" $from)
	set -- $paths
	for v in $VOLUMES; do
		p=$1
		shift
		echo "$v $p"
		if [ -n "${HOARD_LINK_DIR:-}" ]; then
			mkdir -p "$HOARD_LINK_DIR"
			ln -sfn "$p" "$HOARD_LINK_DIR/$v"
		fi
		if [ -n "${HOARD_ENV_FILE:-}" ]; then
			case $v in
			pip) echo "PIP_CACHE_DIR=$p" >>"$HOARD_ENV_FILE" ;;
			huggingface) echo "HF_HOME=$p" >>"$HOARD_ENV_FILE" ;;
			esac
		fi
	done
}

finish() {
	if [ "${HOARD_TRUSTED:-0}" = 1 ]; then
		if [ -n "${HOARD_REPO:-}" ] && [ -n "${HOARD_SIGN_KEY:-}" ]; then
			"$HOARD" job finish "$ID" --keep --push "$HOARD_REPO" --sign "$HOARD_SIGN_KEY"
		else
			[ -z "${HOARD_REPO:-}" ] || log "no HOARD_SIGN_KEY: kept on this host, not pushed"
			"$HOARD" job finish "$ID" --keep
		fi
	else
		"$HOARD" job finish "$ID" --discard
	fi
	if [ -n "${HOARD_LINK_DIR:-}" ]; then
		for v in $VOLUMES; do rm -f "$HOARD_LINK_DIR/$v"; done
	fi
}

case "${1:-}" in
start) start ;;
finish) finish ;;
*)
	echo "usage: hoard-job.sh start|finish (see the comment at its top)" >&2
	exit 2
	;;
esac
