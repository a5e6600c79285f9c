#!/usr/bin/env bash
#   bench_smoke.sh EDGE_BIN TETHER_BIN PYTHON [LIMIT_BIN] - keep the
#   benchmark harness from rotting: start a real tether-edge on a free
#   port, run a short `tether bench` (closed loop, then --idle) against it,
#   and, given LIMIT_BIN, one against `bench_limit_server --relay`
#   (scenario 7c); check that each completes with zero errors and sane
#   JSON.  Run by CTest (label
#   bench-smoke); takes a few seconds.
set -euo pipefail
edge_bin=$1
tether_bin=$2
python=$3
limit_bin=${4:-}

work=$(mktemp -d "${TMPDIR:-/tmp}/tether-bench-smoke.XXXXXX")
pids=()
finish () {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap finish EXIT

#   start NAME REGEX COMMAND...: run COMMAND with its stderr through a
#   FIFO, read it until a line matches REGEX (whose group 1 is the port),
#   then keep draining it in the background.  Sets `pid` and `port`.
start () {
    local name=$1 regex=$2
    shift 2
    mkfifo "$work/$name.fifo"
    "$@" 2>"$work/$name.fifo" &
    pid=$!
    pids+=("$pid")
    exec 3<"$work/$name.fifo"
    port=""
    local line
    while IFS= read -r -t 10 line <&3; do
        echo "$line" >>"$work/$name.log"
        if [[ $line =~ $regex ]]; then
            port=${BASH_REMATCH[1]}
            break
        fi
    done
    if [ -z "$port" ]; then
        echo "bench_smoke: $name did not report its port" >&2
        cat "$work/$name.log" >&2
        exit 1
    fi
    cat <&3 >>"$work/$name.log" &
    pids+=($!)
    exec 3<&-
}

start edge 'msg="edge listening" listen=[0-9.]+:([0-9]+)' \
    "$edge_bin" --listen 127.0.0.1:0 --monitor "" --log-level info
edge_pid=$pid
"$tether_bin" bench --edge "127.0.0.1:$port" --agents 4 --clients 4 \
    --chunks 3 --chunk-bytes 64 --duration 1s --warmup 200ms \
    --pids "$edge_pid" --json >"$work/load.json"
"$tether_bin" bench --edge "127.0.0.1:$port" --agents 8 --idle --no-hold \
    --pids "$edge_pid" --json >"$work/idle.json"
relay=""
if [ -n "$limit_bin" ]; then
    #   Scenario 7c's server: the same calls, answered by the relay.
    start relay 'msg="limit server listening" listen=[0-9.]+:([0-9]+)' \
        "$limit_bin" --listen 127.0.0.1:0 --relay
    "$tether_bin" bench --edge "127.0.0.1:$port" --agents 4 --clients 4 \
        --chunks 3 --chunk-bytes 64 --duration 1s --warmup 200ms \
        --pids "$pid" --json >"$work/relay.json"
    relay="$work/relay.json"
fi

"$python" - "$work/load.json" "$work/idle.json" $relay <<'EOF'
import json, sys
load = json.load(open(sys.argv[1]))
idle = json.load(open(sys.argv[2]))
relay = json.load(open(sys.argv[3])) if len(sys.argv) > 3 else None
def check(cond, what):
    if not cond:
        sys.exit("bench_smoke: " + what + ": " + json.dumps([load, idle]))
check(load["mode"] == "closed", "mode")
check(load["requests"] > 0 and load["rps"] > 0, "no requests completed")
check(load["errors_total"] == 0 and load["errors"] == {}, "errors")
check(load["agent_errors"] == 0 and load["agents_lost"] == 0, "agent errors")
lat = load["latency_us"]
check(0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"],
      "latency percentiles out of order")
check(load["mb_per_s"] > 0, "no bytes")
check(load["bench_cpu_us_per_req"] > 0, "own CPU")
gw = load["gateway"]
check(len(gw) == 1 and gw[0]["peak_rss_kib"] > 0, "gateway sample")
check(gw[0]["cpu_us_per_req"] >= 0, "gateway CPU")
check(idle["mode"] == "idle" and idle["listed"] == 8, "idle listing")
check(idle["gateway"][0]["rss_after_kib"] > 0, "idle RSS")
if relay is not None:
    check(relay["requests"] > 0 and relay["errors_total"] == 0
          and relay["agent_errors"] == 0, "relay (scenario 7c) run")
print("bench_smoke: ok: %.0f req/s, p99 %d us%s" % (
    load["rps"], lat["p99"],
    ", relay %.0f req/s" % relay["rps"] if relay else ""))
EOF
