#!/usr/bin/env bash
#   bench.sh [DIR] - run the benchmarks built in DIR (default build/).
#   Uses the CMake target `bench` when bench/ defines one, else runs every
#   executable found in DIR/bench.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}

if cmake --build "$dir" --target help 2>/dev/null | grep -qE '^\.\.\. bench( |$)'; then
    exec cmake --build "$dir" --target bench
fi
found=0
if [ -d "$dir/bench" ]; then
    while IFS= read -r -d '' exe; do
        found=1
        echo "== $exe"
        "$exe"
    done < <(find "$dir/bench" -maxdepth 1 -type f -perm -u+x -print0 | sort -z)
fi
if [ "$found" -eq 0 ]; then
    echo "tether: no benchmarks built in $dir/bench (bench/ defines none yet)"
fi
