/*  =========================================================================
    cli - the subcommands of the `tether` command line

    Each subcommand is a main function of its own, given argv starting at
    the subcommand's name; it returns the process exit code (0 ok, 1 local
    failure, 2 usage error, 10 + gRPC status for a call that ended with that
    status: see tether_status_exit_code).
    =========================================================================
*/
#ifndef CLI_H_INCLUDED
#define CLI_H_INCLUDED

#include "tether.h"

#define CLI_EXIT_FAILURE 1
#define CLI_EXIT_USAGE   2

int cli_call_main (int argc, char **argv);
int cli_agents_main (int argc, char **argv);
int cli_health_main (int argc, char **argv);
int cli_agent_main (int argc, char **argv);
int cli_token_main (int argc, char **argv);
int cli_keygen_main (int argc, char **argv);

//  The edge address to use when --edge is not given: $TETHER_EDGE, else
//  127.0.0.1:50051.  Borrowed, static or environment string.
const char *cli_default_edge (void);

#endif
