#!/usr/bin/env bash
#   bench_smoke.sh EDGE_BIN TETHER_BIN PYTHON - keep the benchmark harness
#   from rotting: start a real tether-edge on a free port, run a short
#   `tether bench` (closed loop, then --idle) against it, and check that it
#   completes with zero errors and sane JSON.  Run by CTest (label
#   bench-smoke); takes a few seconds.
set -euo pipefail
edge_bin=$1
tether_bin=$2
python=$3

work=$(mktemp -d "${TMPDIR:-/tmp}/tether-bench-smoke.XXXXXX")
edge_pid=""
drain_pid=""
finish () {
    [ -n "$edge_pid" ] && kill "$edge_pid" 2>/dev/null || true
    [ -n "$edge_pid" ] && wait "$edge_pid" 2>/dev/null || true
    [ -n "$drain_pid" ] && wait "$drain_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap finish EXIT

#   The edge's stderr goes through a FIFO: read it until the listening
#   line names the port, then keep draining it in the background.
mkfifo "$work/edge.fifo"
"$edge_bin" --listen 127.0.0.1:0 --monitor "" --log-level info \
    2>"$work/edge.fifo" &
edge_pid=$!
exec 3<"$work/edge.fifo"
port=""
while IFS= read -r -t 10 line <&3; do
    echo "$line" >>"$work/edge.log"
    if [[ $line =~ msg=\"edge\ listening\"\ listen=[0-9.]+:([0-9]+) ]]; then
        port=${BASH_REMATCH[1]}
        break
    fi
done
if [ -z "$port" ]; then
    echo "bench_smoke: the edge did not report its port" >&2
    cat "$work/edge.log" >&2
    exit 1
fi
cat <&3 >>"$work/edge.log" &
drain_pid=$!
exec 3<&-

"$tether_bin" bench --edge "127.0.0.1:$port" --agents 4 --clients 4 \
    --chunks 3 --chunk-bytes 64 --duration 1s --warmup 200ms \
    --pids "$edge_pid" --json >"$work/load.json"
"$tether_bin" bench --edge "127.0.0.1:$port" --agents 8 --idle --no-hold \
    --pids "$edge_pid" --json >"$work/idle.json"

"$python" - "$work/load.json" "$work/idle.json" <<'EOF'
import json, sys
load = json.load(open(sys.argv[1]))
idle = json.load(open(sys.argv[2]))
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
print("bench_smoke: ok: %.0f req/s, p99 %d us" % (load["rps"], lat["p99"]))
EOF
