#!/usr/bin/env bash
#   bench.sh [BUILD_DIR] - run Tether's benchmark scenarios, print one table.
#
#   Each scenario runs on a freshly started gateway, BENCH_RUNS times (3;
#   the table shows the median of each figure).  docs/benchmarks.md says
#   what the scenarios and the numbers mean.
#
#   Environment:
#     BENCH_QUICK=1        1 run of 3 s each, 1,000 idle agents (a check
#                          that the harness works, not a measurement)
#     BENCH_RUNS, BENCH_DURATION (s), BENCH_WARMUP (s)   override the above
#     BENCH_IDLE_AGENTS    agents in the idle scenario (10000)
#     BENCH_100K=1         also run the idle scenario with 100,000 agents
#                          on one edge, and time ListAgents of all of them
#                          (every page).  One connection per agent needs
#                          `ulimit -n` > 100,100 in the bench and the edge;
#                          below that (the hard limit cannot be raised
#                          without privileges) the agents share the most
#                          connections the limit allows, and the table
#                          row says how many.  Past 25,000 connections
#                          they are spread over 127.0.0.1..127.0.0.200
#                          so the source ports last.
#     BENCH_ONLY="1 2 7"   run only these scenarios (1..7)
#     BENCH_KEEP=1         keep the work directory (logs, raw JSON)
set -Eeuo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dir=$(cd "${1:-build}" && pwd)

edge_bin=$dir/gateway/tether-edge
router_bin=$dir/router/tether-router
tether_bin=$dir/tools/tether
limit_bin=$dir/bench/bench_limit_server
router_bench_bin=$dir/bench/bench_router
python=/usr/bin/python3
[ -x "$python" ] || python=python3
for bin in "$edge_bin" "$router_bin" "$tether_bin" "$limit_bin" \
           "$router_bench_bin"; do
    if [ ! -x "$bin" ]; then
        echo "bench: $bin is missing: build first (make build)" >&2
        exit 1
    fi
done

if [ -n "${BENCH_QUICK:-}" ]; then
    runs=${BENCH_RUNS:-1}; duration=${BENCH_DURATION:-3}
    warmup=${BENCH_WARMUP:-1}; idle_agents=${BENCH_IDLE_AGENTS:-1000}
else
    runs=${BENCH_RUNS:-3}; duration=${BENCH_DURATION:-10}
    warmup=${BENCH_WARMUP:-2}; idle_agents=${BENCH_IDLE_AGENTS:-10000}
fi
only=${BENCH_ONLY:-1 2 3 4 5 6 7}

work=$(mktemp -d "${TMPDIR:-/tmp}/tether-bench.XXXXXX")
pids=()
cleanup () {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    pids=()
}
finish () {
    cleanup
    if [ -n "${BENCH_KEEP:-}" ]; then
        echo "bench: logs and raw results in $work"
    else
        rm -rf "$work"
    fi
}
trap finish EXIT
trap 'echo "bench: failed at line $LINENO" >&2' ERR
trap 'echo "bench: interrupted by a signal" >&2; exit 130' INT TERM

#   wait_line FILE REGEX PID: wait (10 s at most) until FILE has a line
#   matching REGEX; fails if PID exits first.
wait_line () {
    local file=$1 regex=$2 pid=$3
    for _ in $(seq 200); do
        if grep -qE "$regex" "$file" 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "bench: process $pid died; its log:" >&2
            cat "$file" >&2
            return 1
        fi
        sleep 0.05
    done
    echo "bench: timed out waiting for '$regex' in $file" >&2
    return 1
}

#   start_router NAME: sets router_pid, router_port
start_router () {
    local log=$work/$1.log
    "$router_bin" --bind 'tcp://127.0.0.1:*' --monitor "" --log-level info \
        2>"$log" &
    router_pid=$!
    pids+=("$router_pid")
    wait_line "$log" 'msg="router listening".* router_port=[0-9]+ ' \
        "$router_pid"
    router_port=$(grep -m1 -oE 'router_port=[0-9]+' "$log" | cut -d= -f2)
}

#   start_edge NAME [FLAGS...]: sets edge_pid, edge_port
start_edge () {
    local log=$work/$1.log
    shift
    "$edge_bin" --listen 127.0.0.1:0 --monitor "" --log-level info \
        --max-agents 200000 "$@" 2>"$log" &
    edge_pid=$!
    pids+=("$edge_pid")
    wait_line "$log" 'msg="edge listening" listen=[0-9.]+:[0-9]+ ' "$edge_pid"
    edge_port=$(grep -m1 -oE 'listen=[0-9.]+:[0-9]+' "$log" | sed 's/.*://')
}

#   start_limit NAME [FLAGS...]: sets limit_pid, limit_port
start_limit () {
    local log=$work/$1.log
    shift
    "$limit_bin" --listen 127.0.0.1:0 "$@" 2>"$log" &
    limit_pid=$!
    pids+=("$limit_pid")
    wait_line "$log" 'msg="limit server listening" listen=[0-9.]+:[0-9]+ ' \
        "$limit_pid"
    limit_port=$(grep -m1 -oE 'listen=[0-9.]+:[0-9]+' "$log" | sed 's/.*://')
}

#   bench SCENARIO [FLAGS...]: one `tether bench --json` run, appended to
#   SCENARIO.jsonl.  A failed run is reported and recorded as such.
bench () {
    local scenario=$1
    shift
    local out
    if out=$("$tether_bin" bench --json "$@" 2>>"$work/$scenario.err"); then
        echo "$out" >>"$work/$scenario.jsonl"
    else
        echo "bench: scenario $scenario: tether bench failed:" \
             "$(tail -n 3 "$work/$scenario.err")" >&2
        [ -n "$out" ] && echo "$out" >>"$work/$scenario.jsonl"
        echo '{"failed":true}' >>"$work/$scenario.jsonl"
    fi
}

load=(--duration "$duration" --warmup "$warmup")
wants () { [[ " $only " == *" $1 "* ]]; }

echo "bench: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
     "load average $(cut -d' ' -f1-3 /proc/loadavg); $runs run(s) of ${duration}s" \
     "after ${warmup}s warm-up"
for run in $(seq "$runs"); do
    echo "bench: run $run/$runs" >&2
    if wants 1; then
        start_edge s1
        bench s1 --edge "127.0.0.1:$edge_port" --agents 100 --clients 32 \
            --chunks 1 --chunk-bytes 100 --payload-bytes 100 "${load[@]}" \
            --pids "$edge_pid"
        cleanup
    fi
    if wants 2; then
        start_edge s2
        bench s2 --edge "127.0.0.1:$edge_port" --agents 100 --rate 1000 \
            --chunks 1 --chunk-bytes 100 --payload-bytes 100 "${load[@]}" \
            --pids "$edge_pid"
        cleanup
    fi
    if wants 3; then
        start_edge s3a
        bench s3a --edge "127.0.0.1:$edge_port" --agents 100 --clients 32 \
            --chunks 10 --chunk-bytes 1000 "${load[@]}" --pids "$edge_pid"
        cleanup
        start_edge s3b
        bench s3b --edge "127.0.0.1:$edge_port" --agents 1 --clients 1 \
            --chunks 64 --chunk-bytes 16384 "${load[@]}" --pids "$edge_pid"
        cleanup
    fi
    if wants 4; then
        start_router s4-router
        rp=$router_pid
        start_edge s4-edge-a --router "tcp://127.0.0.1:$router_port" --name A
        ea_pid=$edge_pid; ea_port=$edge_port
        start_edge s4-edge-b --router "tcp://127.0.0.1:$router_port" --name B
        bench s4 --edge "127.0.0.1:$edge_port" \
            --agent-edge "127.0.0.1:$ea_port" --agents 100 --clients 32 \
            "${load[@]}" --pids "$ea_pid,$edge_pid,$rp"
        cleanup
    fi
    if wants 5; then
        start_router s5-router
        rp=$router_pid
        start_edge s5-edge --router "tcp://127.0.0.1:$router_port"
        bench s5 --edge "127.0.0.1:$edge_port" --idle --no-hold \
            --agents "$idle_agents" --pids "$edge_pid,$rp"
        cleanup
        if [ -n "${BENCH_100K:-}" ]; then
            ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
            agents100k=100000
            fds=$(ulimit -n)
            #   Each connection costs a descriptor in the bench and one in
            #   the edge (which inherits this limit); keep 512 for the
            #   rest (client connection, gRPC's and ZeroMQ's own).
            if [ "$fds" = unlimited ] || [ "$fds" -gt $((agents100k + 512)) ]
            then
                conns=$agents100k
            else
                conns=$((fds - 512))
                echo "bench: BENCH_100K: ulimit -n is $fds (hard limit" \
                     "$(ulimit -Hn)): $agents100k agents share $conns" \
                     "connections instead of one each" >&2
            fi
            start_router s5x-router
            rp=$router_pid
            targets=()
            if [ "$conns" -gt 25000 ]; then
                #   Beyond what one source address's ephemeral ports hold:
                #   listen on every address, connect over 200 of 127/8.
                start_edge s5x-edge --router "tcp://127.0.0.1:$router_port" \
                    --max-calls 200100 --listen 0.0.0.0:0
                spread=$(for i in $(seq 1 200); do
                             printf '127.0.0.%d:%s,' "$i" "$edge_port"; done)
                targets=(--agent-edge "${spread%,}")
            else
                start_edge s5x-edge --router "tcp://127.0.0.1:$router_port" \
                    --max-calls 200100
            fi
            bench s5x --edge "127.0.0.1:$edge_port" --idle --no-hold \
                --agents "$agents100k" --agent-channels "$conns" \
                ${targets[@]+"${targets[@]}"} --connect-timeout 900s \
                --timeout 60s --pids "$edge_pid,$rp"
            cleanup
        fi
    fi
    if wants 6; then
        if ! "$router_bench_bin" >>"$work/s6.txt" 2>>"$work/s6.err"; then
            echo "bench: scenario 6: bench_router failed" >&2
            echo "failed" >>"$work/s6.txt"
        fi
    fi
    if wants 7; then
        start_limit s7
        bench s7 --edge "127.0.0.1:$limit_port" --agents 0 --clients 32 \
            --chunks 1 --chunk-bytes 100 --payload-bytes 100 "${load[@]}" \
            --pids "$limit_pid"
        cleanup
        start_limit s7b
        bench s7b --edge "127.0.0.1:$limit_port" --agents 0 --rate 1000 \
            --chunks 1 --chunk-bytes 100 --payload-bytes 100 "${load[@]}" \
            --pids "$limit_pid"
        cleanup
        #   Scenario 1 against the least a gateway with this API must do:
        #   the same gRPC calls and batches as the edge, nothing else.
        start_limit s7c --relay
        bench s7c --edge "127.0.0.1:$limit_port" --agents 100 --clients 32 \
            --chunks 1 --chunk-bytes 100 --payload-bytes 100 "${load[@]}" \
            --pids "$limit_pid"
        cleanup
    fi
done

"$python" "$root/bench/bench_table.py" "$work"
