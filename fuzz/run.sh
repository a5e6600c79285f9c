#!/usr/bin/env bash
#   run.sh - build the libFuzzer targets with clang and fuzz each briefly.
#
#   Configures BUILD (default build-fuzz/) with clang, -DTETHER_FUZZ=ON and
#   ASan + UBSan, builds the fuzz targets only, then runs each for SECONDS
#   (default 20) against a scratch copy of its checked-in corpus
#   (fuzz/corpus/<target>/), so the tree is left as it was.  Crashes are
#   written to BUILD/fuzz/artifacts/.  Exits 0 when no target crashed,
#   1 when one did, and 0 with a "skipped" line when clang or its libFuzzer
#   runtime is missing.
#
#   Environment: FUZZ_SECONDS (20), FUZZ_BUILD_DIR (build-fuzz), FUZZ_CC
#   (clang, else clang-14), FUZZ_TARGETS (all), FUZZ_JOBS (nproc).
#   docs/fuzzing.md tells how to run longer and keep what is found.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-20}
build=${FUZZ_BUILD_DIR:-build-fuzz}
targets=${FUZZ_TARGETS:-"wire_envelope router_core public_messages edge_parse"}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}

cc=${FUZZ_CC:-}
if [ -z "$cc" ]; then
    for c in clang clang-14; do
        if command -v "$c" >/dev/null 2>&1; then
            cc=$c
            break
        fi
    done
fi
if [ -z "$cc" ]; then
    echo "fuzz: skipped: clang is not installed (apt-get install clang-14" \
         "libclang-rt-14-dev)"
    exit 0
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n)\n{ return 0; }\n' \
    > "$probe/probe.c"
if ! "$cc" -fsanitize=fuzzer "$probe/probe.c" -o "$probe/probe" \
        >/dev/null 2>&1; then
    echo "fuzz: skipped: $cc cannot link -fsanitize=fuzzer (install" \
         "libclang-rt-14-dev)"
    exit 0
fi

echo "== fuzz: configuring $build with $cc"
if ! CC=$cc cmake -S . -B "$build" -DTETHER_FUZZ=ON -DTETHER_ASAN=ON \
        -DTETHER_UBSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null; then
    echo "fuzz: configure failed"
    exit 1
fi
build_targets=()
for t in $targets; do
    build_targets+=(--target "fuzz_$t")
done
if ! cmake --build "$build" -j "$jobs" "${build_targets[@]}"; then
    echo "fuzz: build failed"
    exit 1
fi

artifacts="$build/fuzz/artifacts"
mkdir -p "$artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in $targets; do
    work="$probe/corpus-$t"
    mkdir -p "$work"
    cp fuzz/corpus/"$t"/* "$work"/ 2>/dev/null
    echo "== fuzz: $t for ${seconds}s"
    if "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 \
            -rss_limit_mb=2048 -print_final_stats=1 \
            -artifact_prefix="$artifacts/$t-" "$work" \
            > "$probe/$t.log" 2>&1; then
        grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+.*DONE)' \
            "$probe/$t.log" | sed 's/^/   /'
        echo "fuzz: $t: ok"
    else
        tail -n 60 "$probe/$t.log"
        echo "fuzz: $t: FAILED (reproducer in $artifacts/)"
        status=1
    fi
done
exit $status
