/*  =========================================================================
    tether-router - the router process

    Reads the settings (defaults, then the config file named by --config or
    TETHER_ROUTER_CONFIG, then TETHER_* environment variables, then flags),
    starts the router actor and waits for SIGINT or SIGTERM.  SIGINT and
    SIGTERM are blocked in every thread before any is created and taken
    with sigwait, so no handler ever runs and no poll is interrupted.

    Exit codes: 0 after a signal, 1 when the router could not bind, 2 on a
    bad setting or argument.
    =========================================================================
*/
#include <czmq.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "router_actor.h"
#include "router_config.h"
#include "tlog.h"

#define S_MAX_OPTIONS 64

static void
s_usage (FILE *out, const tconfig_option_t *options, size_t count)
{
    fprintf (out,
             "usage: tether-router [--config FILE] [--flag VALUE ...]\n"
             "\n"
             "The Tether router: the one process that owns all agent and\n"
             "request state; every tether-edge connects to it.  Settings\n"
             "come from, lowest precedence first: defaults, the config file\n"
             "(--config FILE or env TETHER_ROUTER_CONFIG), environment\n"
             "variables, flags.  Durations: 500ms, 10s, 2m, 1h; sizes: 512,\n"
             "64KiB, 4MiB.\n"
             "\n"
             "settings:\n");
    tconfig_print_help (out, options, count);
}

int
main (int argc, char **argv)
{
    //  Before any thread exists, so every thread inherits the mask.
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &signals, NULL);
    zsys_handler_set (NULL);

    router_config_t cfg;
    router_config_defaults (&cfg);
    tconfig_option_t options[S_MAX_OPTIONS];
    size_t count = router_config_options (&cfg, options, S_MAX_OPTIONS);

    bool help = false;
    char error[512] = "";
    int rc = 0;
    if (tconfig_load (options, count, argc, argv, "TETHER_ROUTER_CONFIG", &help,
                      error, sizeof error)) {
        fprintf (stderr, "tether-router: %s\n", error);
        rc = 2;
        goto cleanup;
    }
    if (help) {
        s_usage (stdout, options, count);
        goto cleanup;
    }
    if (router_config_check (&cfg, error, sizeof error)) {
        fprintf (stderr, "tether-router: %s\n", error);
        rc = 2;
        goto cleanup;
    }
    tlog_level_t level;
    if (tlog_level_parse (cfg.log_level, &level)) {
        fprintf (stderr,
                 "tether-router: --log-level: '%s' is not one of debug, "
                 "info, warn, error, off\n",
                 cfg.log_level ? cfg.log_level : "");
        rc = 2;
        goto cleanup;
    }
    tlog_setup (level, "tether-router");

    zactor_t *router = router_actor_start (&cfg);
    if (!router) {
        rc = 1;
        goto cleanup;
    }
    int router_port = 0;
    int monitor_port = 0;
    zstr_send (router, "PORT");
    zsock_recv (router, "ii", &router_port, &monitor_port);
    char bind_q[256];
    char monitor_q[256];
    tlog (TLOG_INFO, "router listening",
          "bind=%s monitor=%s router_port=%d monitor_port=%d pid=%d",
          tlog_quote (cfg.bind, bind_q, sizeof bind_q),
          tlog_quote (cfg.monitor, monitor_q, sizeof monitor_q), router_port,
          monitor_port, (int) getpid ());

    int signal_number = 0;
    if (sigwait (&signals, &signal_number) != 0)
        signal_number = SIGTERM;
    tlog (TLOG_INFO, "router stopping", "signal=%s",
          signal_number == SIGTERM ? "TERM" : "INT");
    zactor_destroy (&router);

cleanup:
    router_config_clear (&cfg);
    return rc;
}
