#!/usr/bin/env bash
# npm ci of one folder's pinned packages (package.json + package-lock.json) into its own node_modules (git-ignored):
# no global install. Then touch STAMP. Under CI=true a failed install fails the build; elsewhere it warns with
# what will not work (the tests that need the packages then fail, never skip).
#   scripts/npm-ci.sh DIR STAMP "what fails without it"
set -u
dir=$1 stamp=$2 without=$3
if command -v npm >/dev/null && (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
	mkdir -p "$(dirname "$stamp")" && touch "$stamp"
elif [ "${CI:-}" = "true" ]; then
	echo "npm ci in $dir failed (node v20 + npm needed)" >&2
	exit 1
else
	echo "warning: npm ci in $dir failed: $without" >&2
fi
