# SPDX-License-Identifier: MIT
# Sourced by the job's shell (pre_build_script): starts the job's clones
# (pre-build.sh) and exports the cache variables.  HOARD_RECIPES: where
# the recipes are (default /opt/hoard/recipes).
__hoard_env=$(mktemp)
HOARD_ENV_FILE=$__hoard_env "${HOARD_RECIPES:-/opt/hoard/recipes}/gitlab/pre-build.sh" >/dev/null &&
	while IFS= read -r __l; do export "$__l"; done <"$__hoard_env"
rm -f "$__hoard_env"
unset __hoard_env __l
