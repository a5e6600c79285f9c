/*  =========================================================================
    edge_config - tether-edge's settings: its own plus the embedded router's

    One struct holds every setting of an edge.  The edge's own settings
    (listen address, router endpoint, queue depth, window ...) live in the
    `edge/` section of the config file; the limits and timings of the
    router that the edge runs in-process when no external router is given
    come from router_config_core_options, so `--first-response-timeout`
    means the same thing on tether-edge and tether-router.  Precedence,
    lowest first: defaults, config file (--config or TETHER_EDGE_CONFIG),
    environment, flags (common/tconfig.h).
    =========================================================================
*/
#ifndef TETHER_EDGE_CONFIG_H
#define TETHER_EDGE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "router_config.h"

typedef struct
{
    char *listen;                //  gRPC listen address, HOST:PORT
    char *router_endpoint;       //  external router endpoint; empty =
                                 //  run the router in this process
    char *monitor;               //  embedded router's PUB; empty = none
    char *name;                  //  edge id; empty = the listen address
    char *log_level;             //  debug, info, warn, error, off
    uint32_t max_agents;         //  agent streams held by this edge
    uint32_t queue_depth;        //  requests queued per agent stream
    uint32_t queue_bytes;        //  bytes queued per agent stream
    uint32_t window;             //  response messages in flight per call
    uint32_t router_liveness_ms; //  no PONG this long: router lost
    uint32_t shutdown_grace_ms;  //  longest wait for calls to end at exit
    uint32_t dealer_sndhwm;      //  DEALER to an external router: send HWM
    uint32_t dealer_rcvhwm;      //  and receive HWM, messages
    uint32_t dealer_linger_ms;   //  its linger at exit
    uint32_t posted_per_kind;    //  requested calls kept posted per method
    uint32_t max_calls;          //  calls (streams included) held at once
    uint32_t max_streams_per_connection; //  HTTP/2 concurrent streams
    //  HTTP/2 (docs/configuration.md, "Edge").
    uint32_t stream_window;        //  bytes a peer may send ahead on one
                                   //  stream beyond what the edge reads
    bool bdp_probe;                //  let gRPC grow windows by BDP probing
    uint32_t keepalive_time_ms;    //  ping a connection idle this long
    uint32_t keepalive_timeout_ms; //  no ping ack this long: drop it
    uint32_t min_ping_interval_ms; //  clients may ping this often
    uint32_t max_ping_strikes;     //  pings too early before GOAWAY; 0 = any
    //  Memory per connection (docs/configuration.md, "Memory per agent").
    bool channelz;             //  keep gRPC's channelz node per connection
    uint32_t hpack_table_size; //  HPACK decoder table per connection, bytes
    uint32_t trim_after_calls; //  calls ended since the peak before the
                               //  edge returns free heap to the OS; 0 = never
    //  Security (docs/security.md); every string empty = off.
    char *tls_cert;               //  server certificate chain, PEM file
    char *tls_key;                //  server private key, PEM file
    char *tls_client_ca;          //  CA bundle that signs agent certificates
    bool tls_require_client_cert; //  refuse handshakes without one
    char *agent_token_key_file;   //  HMAC key checking agent tokens
    char *client_token_key_file;  //  HMAC key checking client tokens
    char *router_public_key;      //  router's CURVE public key (Z85, or a
                                  //  zcert public file)
    char *curve_cert_file;        //  this edge's CURVE secret zcert file
    router_config_t embedded;     //  embedded router; core.max_payload_bytes
                                  //  and core.heartbeat_ms are the edge's too
} edge_config_t;

//  Fill `cfg` with the defaults.  Strings are heap copies; free them with
//  edge_config_clear.
void edge_config_defaults (edge_config_t *cfg);

//  Free the strings of `cfg` (not `cfg` itself).
void edge_config_clear (edge_config_t *cfg);

//  Apply the config file, environment and flags, then check the values
//  together.  Returns 0 on success (*help set when --help was given), or -1
//  with a one-line reason in `err`.
int edge_config_load (edge_config_t *cfg,
                      int argc,
                      char **argv,
                      bool *help,
                      char *err,
                      size_t err_size);

//  Print the usage and every setting with its current value to `out`.
void edge_config_print_help (edge_config_t *cfg, FILE *out);

#endif
