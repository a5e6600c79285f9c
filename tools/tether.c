/*  =========================================================================
    tether - the Tether command line

    One binary, one subcommand per job:
        tether call AGENT CALL ...     call an agent, print its answer
        tether agents ...              list connected agents
        tether agent --id ID ...       run an agent on this machine
        tether health ...              ask an edge whether it serves
    `tether SUBCOMMAND --help` explains each one.  docs/cli.md has the
    exit codes.
    =========================================================================
*/
#include "cli.h"
#include "cli_bench.h"
#include "cli_json.h"
#include "cli_monitor.h"
#include "cli_parse.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *
cli_default_edge (void)
{
    const char *edge = getenv ("TETHER_EDGE");
    return edge && *edge ? edge : "127.0.0.1:50051";
}

static void
s_usage (FILE *out)
{
    fprintf (
        out,
        "usage: tether COMMAND [OPTIONS]\n"
        "\n"
        "Commands:\n"
        "  call AGENT CALL   call an agent through an edge, print the answer\n"
        "  agents            list the agents connected to the gateway\n"
        "  agent --id ID     run an agent (built-in calls echo, ping, info;\n"
        "                    executables from --handlers DIR)\n"
        "  health            check an edge's gRPC health service\n"
        "  token             mint an agent or client token (docs/security.md)\n"
        "  keygen            make a CURVE key pair for the edge <-> router "
        "link\n"
        "  bench             load-test a gateway (docs/benchmarks.md)\n"
        "  monitor           watch the router's events (docs/monitoring.md)\n"
        "\n"
        "Run `tether COMMAND --help` for a command's options.  The edge\n"
        "address defaults to $TETHER_EDGE, else 127.0.0.1:50051.\n"
        "Exit codes: 0 ok, 1 local failure, 2 usage, 10 + gRPC status\n"
        "(e.g. 14 DEADLINE_EXCEEDED, 15 NOT_FOUND, 24 UNAVAILABLE).\n");
}

int
main (int argc, char **argv)
{
    if (argc < 2) {
        s_usage (stderr);
        return CLI_EXIT_USAGE;
    }
    const char *command = argv[1];
    if (strcmp (command, "--help") == 0 || strcmp (command, "-h") == 0
        || strcmp (command, "help") == 0) {
        s_usage (stdout);
        return 0;
    }
    if (strcmp (command, "--version") == 0) {
        printf ("tether %d.%d.%d\n", TETHER_VERSION_MAJOR, TETHER_VERSION_MINOR,
                TETHER_VERSION_PATCH);
        return 0;
    }
    if (strcmp (command, "call") == 0)
        return cli_call_main (argc - 1, argv + 1);
    if (strcmp (command, "agents") == 0)
        return cli_agents_main (argc - 1, argv + 1);
    if (strcmp (command, "agent") == 0)
        return cli_agent_main (argc - 1, argv + 1);
    if (strcmp (command, "health") == 0)
        return cli_health_main (argc - 1, argv + 1);
    if (strcmp (command, "bench") == 0)
        return cli_bench_main (argc - 1, argv + 1);
    if (strcmp (command, "monitor") == 0)
        return cli_monitor_main (argc - 1, argv + 1);
    if (strcmp (command, "token") == 0)
        return cli_token_main (argc - 1, argv + 1);
    if (strcmp (command, "keygen") == 0)
        return cli_keygen_main (argc - 1, argv + 1);
    fprintf (stderr, "tether: unknown command '%s'\n", command);
    s_usage (stderr);
    return CLI_EXIT_USAGE;
}
