/*  =========================================================================
    cli_bench - `tether bench`, a load generator for a Tether gateway

    Runs N agents and C clients against tether-edge processes from one
    thread and one gRPC completion queue, and reports requests/s, latency
    percentiles, errors by status, and the CPU and memory the gateway
    processes (--pids) spent.  docs/benchmarks.md explains the numbers.
    =========================================================================
*/
#ifndef CLI_BENCH_H_INCLUDED
#define CLI_BENCH_H_INCLUDED

//  The `tether bench` subcommand; argv starts at "bench".  Returns the
//  exit code: 0 when the run completed without errors, 1 when it failed or
//  requests ended with a non-OK status, 2 on a usage error.
int cli_bench_main (int argc, char **argv);

#endif
