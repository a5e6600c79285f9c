/*  =========================================================================
    router_config - the router's settings: endpoints plus core limits

    One struct holds every setting of a router, and one table names each of
    them for the config file, the environment and the command line
    (common/tconfig.h).  tether-router uses the whole table; tether-edge,
    which runs the same router in-process when no external router is
    configured, reuses the core part so that `--first-response-timeout`
    means the same thing on both.
    =========================================================================
*/
#ifndef TETHER_ROUTER_CONFIG_H
#define TETHER_ROUTER_CONFIG_H

#include "router_core.h"
#include "tconfig.h"

typedef struct
{
    core_config_t core;          //  limits and timings of the state machine
    char *bind;                  //  ROUTER endpoint(s), comma-separated
    char *monitor;               //  PUB endpoint; empty = no monitoring
    uint32_t monitor_hwm;        //  PUB send high-water mark, messages
    uint32_t edge_hwm;           //  ROUTER high-water marks, messages per
                                 //  edge; a full edge is a dead edge
    uint32_t batch;              //  messages handled per wake-up at most
    char *log_level;             //  debug, info, warn, error
    char *curve_secret_key_file; //  the router's CURVE certificate
                                 //  (secret zcert file); empty = no CURVE
    char *curve_allow_dir;       //  directory of the edges' public zcert
                                 //  files allowed to connect
} router_config_t;

//  Fill `cfg` with defaults: bind tcp://*:7100, monitor tcp://*:7101,
//  monitor_hwm 10000, edge_hwm 100000, batch 256, log_level info, no
//  CURVE, and core_config_defaults.  Strings are heap copies; free them with
//  router_config_clear.
void router_config_defaults (router_config_t *cfg);

//  Free the strings of `cfg` (not `cfg` itself).
void router_config_clear (router_config_t *cfg);

//  Copy `src` into `dst` (deep: strings duplicated).
void router_config_copy (router_config_t *dst, const router_config_t *src);

//  Check the settings against each other (each one's own range is checked
//  by tconfig_load): the heartbeat must be at most half the edge liveness
//  window, or edges would be declared dead between two heartbeats.
//  Returns 0 when they are consistent, else -1 with a message for the
//  operator in `err` (room for `size` bytes).  tether-router and
//  tether-edge (for its in-process router) call it after loading.
int router_config_check (const router_config_t *cfg, char *err, size_t size);

//  Write the options for the core limits and timings of `cfg` into
//  `options` (room for `max`).  Returns how many were written.  The
//  options point into `cfg`.
size_t router_config_core_options (router_config_t *cfg,
                                   tconfig_option_t *options,
                                   size_t max);

//  Same, for every router setting (endpoints, log level and core).
size_t router_config_options (router_config_t *cfg,
                              tconfig_option_t *options,
                              size_t max);

#endif
