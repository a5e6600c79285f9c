/*  =========================================================================
    cli_monitor - `tether monitor`: watch the router's monitor events
    =========================================================================
*/
#ifndef CLI_MONITOR_H_INCLUDED
#define CLI_MONITOR_H_INCLUDED

//  The `tether monitor` subcommand; argv starts at "monitor".  Returns the
//  exit code: 0 after SIGINT/SIGTERM or --count events, 1 when it cannot
//  connect, 2 on a usage error.
int cli_monitor_main (int argc, char **argv);

#endif
