#!/bin/sh
# SPDX-License-Identifier: MIT
# GitLab Runner custom executor, config stage (see prepare.sh).
cat <<JSON
{"builds_dir": "/builds", "cache_dir": "/cache/gitlab", "builds_dir_is_shared": false,
 "driver": {"name": "hoard: docker with per-job copy-on-write clones", "version": "1"}}
JSON
