#!/usr/bin/env bash
#   test.sh - build and run every test, then the sanitizer pass.
#
#   1. build/ (RelWithDebInfo, -Werror): every CTest test.
#   2. build-asan/ (ASan + UBSan, leaks included): every test but the
#      end-to-end ones (label e2e); set ASAN_CTEST_ARGS to change the
#      selection.  Then the gateway's end-to-end suites (tests/e2e) again
#      against the sanitized tether-edge and tether-router, whose exit
#      codes they check, so a leak or a UB report at exit fails them
#      (SKIP_ASAN_E2E=1 skips this part).
#   Ends with one line: "tether: N passed, M failed".
#   Environment: BUILD_DIR, ASAN_DIR, JOBS, TEST_TIMEOUT, SKIP_ASAN=1,
#   SKIP_ASAN_E2E=1, ASAN_CTEST_ARGS.
set -uo pipefail
cd "$(dirname "$0")/.."

build_dir=${BUILD_DIR:-build}
asan_dir=${ASAN_DIR:-build-asan}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
timeout=${TEST_TIMEOUT:-300}
read -r -a asan_args <<< "${ASAN_CTEST_ARGS:--LE e2e}"

passed=0
failed=0
status=0
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

#   run_ctest NAME DIR [CTEST-ARGS...]: run ctest, add its counts.
run_ctest () {
    local name=$1 dir=$2
    shift 2
    local log="$logs/$name.log"
    echo "== tether: ctest in $dir $*"
    ctest --test-dir "$dir" --output-on-failure -j "$jobs" \
          --timeout "$timeout" "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    #   "100% tests passed, 0 tests failed out of 12"
    local line total bad
    line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" \
           | tail -n 1)
    if [ -n "$line" ]; then
        bad=$(sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/' <<< "$line")
        total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<< "$line")
        passed=$((passed + total - bad))
        failed=$((failed + bad))
    elif [ "$rc" -ne 0 ]; then
        failed=$((failed + 1))
    fi
    if [ "$rc" -ne 0 ]; then
        status=1
    fi
}

if ! bash scripts/build.sh "$build_dir" -DTETHER_WERROR=ON; then
    echo "tether: build failed in $build_dir"
    echo "tether: 0 passed, 1 failed"
    exit 1
fi
run_ctest main "$build_dir" --no-tests=error

if [ "${SKIP_ASAN:-0}" != 1 ]; then
    if bash scripts/build.sh "$asan_dir" -DTETHER_WERROR=ON -DTETHER_ASAN=ON \
           -DTETHER_UBSAN=ON -DCMAKE_BUILD_TYPE=Debug; then
        export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
        export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
        run_ctest asan "$asan_dir" --no-tests=ignore "${asan_args[@]}"
        if [ "${SKIP_ASAN_E2E:-0}" != 1 ]; then
            run_ctest asan-e2e "$asan_dir" --no-tests=ignore \
                -R '^(e2e_(gateway|cluster|lifecycle|edge_smoke)|security_)'
        fi
    else
        echo "tether: sanitizer build failed in $asan_dir"
        failed=$((failed + 1))
        status=1
    fi
fi

#   A short libFuzzer run (clang only; fuzz/run.sh says "skipped" without
#   it).  SKIP_FUZZ=1 skips it, FUZZ_SECONDS sets the time per target.
if [ "${SKIP_FUZZ:-0}" != 1 ] && [ -x fuzz/run.sh ]; then
    if bash fuzz/run.sh; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        status=1
    fi
fi

echo "tether: $passed passed, $failed failed"
exit $status
