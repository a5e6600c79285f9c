#!/usr/bin/env bash
#   build.sh DIR [CMAKE-ARGS...] - configure (when needed) and build Tether
#   in DIR.  A lock file in DIR serialises two builds of the same
#   directory, so two `make test` runs in one tree do not trample each
#   other's objects.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${1:?usage: build.sh DIR [CMAKE-ARGS...]}
shift
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

mkdir -p "$dir"
exec 9>"$dir/.tether-build.lock"
flock 9
cmake -S . -B "$dir" "$@"
cmake --build "$dir" -j "$jobs"
