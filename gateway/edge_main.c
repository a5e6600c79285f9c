/*  =========================================================================
    tether-edge - the gRPC edge of Tether

    Parses the settings (defaults, config file, environment, flags; a bad
    value exits 2 with the reason), blocks SIGINT and SIGTERM in every
    thread before gRPC or ZeroMQ start one (the edge reads them from a
    signalfd), runs the edge until a signal, and shuts gRPC down.
    =========================================================================
*/
#include <czmq.h>
#include <grpc/grpc.h>
#include <pthread.h>
#include <signal.h>

#include "edge.h"
#include "edge_config.h"
#include "tlog.h"

int
main (int argc, char **argv)
{
    edge_config_t cfg;
    edge_config_defaults (&cfg);
    bool help = false;
    char err[512] = "";
    if (edge_config_load (&cfg, argc, argv, &help, err, sizeof err)) {
        fprintf (stderr, "tether-edge: %s\n", err);
        edge_config_clear (&cfg);
        return 2;
    }
    if (help) {
        edge_config_print_help (&cfg, stdout);
        edge_config_clear (&cfg);
        return 0;
    }
    tlog_level_t level = TLOG_INFO;
    tlog_level_parse (cfg.log_level, &level);
    tlog_setup (level, "tether-edge");

    sigset_t mask;
    sigemptyset (&mask);
    sigaddset (&mask, SIGINT);
    sigaddset (&mask, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &mask, NULL);
    zsys_handler_set (NULL);

    grpc_init ();
    int rc = 1;
    edge_t *edge = edge_new (&cfg);
    if (edge) {
        rc = edge_run (edge);
        edge_destroy (&edge);
    }
    grpc_shutdown ();
    edge_config_clear (&cfg);
    return rc;
}
