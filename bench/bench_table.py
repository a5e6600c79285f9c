"""bench_table - print the table of `make bench` from its work directory.

scripts/bench.sh leaves one JSON line per `tether bench --json` run in
WORK/<scenario>.jsonl and bench_router's output lines in WORK/s6.txt.
Each figure in the table is the median of that figure over the runs.
The output is a Markdown table, so it can go into docs/benchmarks.md as is.

usage: bench_table.py WORK
"""

import json
import os
import re
import statistics
import sys


def load(work, scenario):
    path = os.path.join(work, scenario + ".jsonl")
    runs, failed = [], 0
    if not os.path.exists(path):
        return None, 0
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                failed += 1
                continue
            if doc.get("failed"):
                failed += 1
            else:
                runs.append(doc)
    return runs, failed


def med(runs, *path):
    values = []
    for run in runs:
        value = run
        for key in path:
            if isinstance(value, list):
                value = value[key] if key < len(value) else None
            else:
                value = value.get(key) if value is not None else None
        if isinstance(value, (int, float)):
            values.append(value)
    return statistics.median(values) if values else None


def fmt(value, digits=0, suffix=""):
    if value is None:
        return "-"
    if digits == 0:
        return f"{value:,.0f}{suffix}"
    return f"{value:,.{digits}f}{suffix}"


def verdict(value, target, lower_is_better=True):
    if value is None:
        return "-"
    ok = value <= target if lower_is_better else value >= target
    return "met" if ok else "NOT met"


def errors(runs, failed):
    total = sum(run.get("errors_total", 0) for run in runs)
    text = f"{total:,}"
    if failed:
        text += f" ({failed} run(s) failed)"
    return text


def main():
    work = sys.argv[1]
    rows = []
    header = ("| # | scenario | requests/s | MB/s | latency µs p50 / p99 / "
              "p99.9 | gateway CPU µs/req | bench CPU µs/req | memory | "
              "errors | target | result |")
    rows.append(header)
    rows.append("|" + "---|" * 11)

    def load_row(num, name, scenario, target="", result="", memory=None,
                 cpu_detail=""):
        runs, failed = load(work, scenario)
        if runs is None:
            return None
        lat = "{} / {} / {}".format(fmt(med(runs, "latency_us", "p50")),
                                    fmt(med(runs, "latency_us", "p99")),
                                    fmt(med(runs, "latency_us", "p999")))
        cpu = fmt(med(runs, "gateway_cpu_us_per_req"), 1) + cpu_detail
        mem = memory if memory is not None else (
            fmt(med(runs, "gateway", 0, "peak_rss_kib"), 0, " KiB peak"))
        rows.append(f"| {num} | {name} | {fmt(med(runs, 'rps'))} | "
                    f"{fmt(med(runs, 'mb_per_s'), 1)} | {lat} | {cpu} | "
                    f"{fmt(med(runs, 'bench_cpu_us_per_req'), 1)} | {mem} | "
                    f"{errors(runs, failed)} | {target} | {result} |")
        return runs

    s1, _ = load(work, "s1")
    s1_cpu = med(s1, "gateway_cpu_us_per_req") if s1 else None
    load_row(1, "echo 1×100 B, 100 agents, 32 clients, closed loop", "s1",
             "edge+router ≤ 40 µs/req", verdict(s1_cpu, 40))
    s2, _ = load(work, "s2")
    if s2 is not None:
        p99, p999 = med(s2, "latency_us", "p99"), med(s2, "latency_us", "p999")
        ok = "-" if p99 is None else (
            "met" if p99 <= 1000 and p999 <= 3000 else "NOT met")
        load_row(2, "echo 1×100 B, open loop 1,000 req/s", "s2",
                 "p99 ≤ 1 ms, p99.9 ≤ 3 ms", ok)
    load_row("3a", "stream 10×1000 B, 32 clients", "s3a")
    s3b, _ = load(work, "s3b")
    if s3b is not None:
        load_row("3b", "stream 64×16 KiB, 1 client (one stream)", "s3b",
                 "≥ 200 MB/s", verdict(med(s3b, "mb_per_s"), 200, False))
    s4, _ = load(work, "s4")
    if s4 is not None:
        detail = " (A {} + B {} + router {})".format(
            fmt(med(s4, "gateway", 0, "cpu_us_per_req"), 1),
            fmt(med(s4, "gateway", 1, "cpu_us_per_req"), 1),
            fmt(med(s4, "gateway", 2, "cpu_us_per_req"), 1))
        load_row(4, "cross-edge echo: agents on A, clients on B, "
                 "external router", "s4", cpu_detail=detail)
    for scenario in ("s5", "s5x"):
        runs, failed = load(work, scenario)
        if runs is None:
            continue
        edge_b = med(runs, "gateway", 0, "rss_per_agent_bytes")
        router_b = med(runs, "gateway", 1, "rss_per_agent_bytes")
        agents = med(runs, "agents")
        list_ms = med(runs, "list_ms")
        ok = "-" if edge_b is None or router_b is None else (
            "met" if edge_b <= 8192 and router_b <= 512 else "NOT met")
        target = "edge ≤ 8 KiB, router ≤ 512 B per agent"
        if scenario == "s5x":
            target += "; ListAgents of all < 1 s"
            if ok != "-":
                ok = "met" if ok == "met" and list_ms is not None \
                    and list_ms < 1000 else "NOT met"
        conns = med(runs, "agent_channels")
        how = "one connection each"
        if conns is not None and agents is not None and conns < agents:
            how = (f"sharing {fmt(conns)} connections (descriptor limit "
                   f"{fmt(med(runs, 'fd_limit'))})")
        pages = med(runs, "list_pages")
        rows.append(
            f"| 5 | idle: {fmt(agents)} agents, {how}; "
            f"ListAgents of all {fmt(list_ms, 1)} ms"
            f"{f' in {fmt(pages)} pages' if pages else ''} | - | - | "
            f"- | - | - | edge {fmt(edge_b)} B/agent, router "
            f"{fmt(router_b)} B/agent | {failed} failed | {target} | {ok} |")
    path = os.path.join(work, "s6.txt")
    if os.path.exists(path):
        rps, mps = [], []
        with open(path) as f:
            for line in f:
                m = re.search(r"([\d.]+) requests/s, ([\d.]+) messages/s", line)
                if m:
                    rps.append(float(m.group(1)))
                    mps.append(float(m.group(2)))
        r = statistics.median(rps) if rps else None
        m = statistics.median(mps) if mps else None
        rows.append(f"| 6 | router alone (bench_router, 9 messages per "
                    f"request) | {fmt(r)} | - | - | - | - | - | - | "
                    f"≥ 1M routed msgs/s ({fmt(m)} msgs/s) | "
                    f"{verdict(m, 1e6, False)} |")
    s7, _ = load(work, "s7")
    if s7 is not None:
        s7_cpu = med(s7, "gateway_cpu_us_per_req")
        ratio = (f"Tether/gRPC CPU ratio {s1_cpu / s7_cpu:.1f}×"
                 if s1_cpu and s7_cpu else "")
        load_row(7, "limit: bench_limit_server (gRPC alone), 1×100 B, "
                 "32 clients", "s7", ratio, "")
    load_row("7b", "limit at 1,000 req/s open loop (scenario 2's floor)",
             "s7b")
    s7c, _ = load(work, "s7c")
    if s7c is not None:
        s7c_cpu = med(s7c, "gateway_cpu_us_per_req")
        ratio = (f"Tether/floor CPU ratio {s1_cpu / s7c_cpu:.2f}×"
                 if s1_cpu and s7c_cpu else "")
        load_row("7c", "floor of this API: bench_limit_server --relay (the "
                 "edge's gRPC calls and batches, no routing), scenario 1's "
                 "load", "s7c", ratio, "")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
