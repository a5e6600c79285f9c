/*  =========================================================================
    edge_config - tether-edge's settings: its own plus the embedded router's

    The option table is built on demand because its targets point into the
    caller's edge_config_t.  The router core's `--max-agents` (agents in
    all) is left out of the edge's table: on an edge, `--max-agents` is the
    number of agent streams this edge holds, and the embedded router, which
    only ever serves this edge, gets the same value.  `--max-message-size`
    and `--heartbeat` are the core's options, and the edge uses them too:
    the gRPC message limit and the PING period.

    Invariant: every string of an edge_config_t is a heap copy owned by the
    struct, or NULL.
    =========================================================================
*/
#include "edge_config.h"

#include <czmq.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include "tlog.h"

#define S_MAX_OPTIONS 80
//  Upper bounds.  Every number ends up in an int somewhere (gRPC channel
//  arguments, ZeroMQ socket options), so none may exceed INT_MAX.
#define S_COUNT_MAX ((uint32_t) INT_MAX)
#define S_DAY_MS    (24u * 3600u * 1000u)

static char *
s_dup (const char *text)
{
    char *copy = strdup (text);
    assert (copy);
    return copy;
}

void
edge_config_defaults (edge_config_t *cfg)
{
    assert (cfg);
    memset (cfg, 0, sizeof *cfg);
    router_config_defaults (&cfg->embedded);
    cfg->listen = s_dup ("0.0.0.0:50051");
    cfg->router_endpoint = s_dup ("");
    cfg->monitor = s_dup ("tcp://127.0.0.1:7101");
    cfg->name = s_dup ("");
    cfg->log_level = s_dup ("info");
    cfg->max_agents = 10000;
    cfg->queue_depth = 256;
    cfg->queue_bytes = 16u * 1024u * 1024u;
    cfg->window = 16;
    cfg->router_liveness_ms = 3000;
    cfg->shutdown_grace_ms = 5000;
    cfg->dealer_sndhwm = 100000;
    cfg->dealer_rcvhwm = 100000;
    cfg->dealer_linger_ms = 500;
    cfg->posted_per_kind = 4;
    cfg->max_calls = 100000;
    cfg->max_streams_per_connection = 10000;
    cfg->stream_window = 64 * 1024;
    cfg->bdp_probe = false;
    cfg->keepalive_time_ms = 30000;
    cfg->keepalive_timeout_ms = 10000;
    cfg->min_ping_interval_ms = 10000;
    cfg->max_ping_strikes = 2;
    cfg->channelz = false;
    cfg->hpack_table_size = 4096;
    cfg->trim_after_calls = 1000;
    cfg->tls_cert = s_dup ("");
    cfg->tls_key = s_dup ("");
    cfg->tls_client_ca = s_dup ("");
    cfg->agent_token_key_file = s_dup ("");
    cfg->client_token_key_file = s_dup ("");
    cfg->router_public_key = s_dup ("");
    cfg->curve_cert_file = s_dup ("");
}

void
edge_config_clear (edge_config_t *cfg)
{
    assert (cfg);
    free (cfg->listen);
    free (cfg->router_endpoint);
    free (cfg->monitor);
    free (cfg->name);
    free (cfg->log_level);
    cfg->listen = NULL;
    cfg->router_endpoint = NULL;
    cfg->monitor = NULL;
    cfg->name = NULL;
    cfg->log_level = NULL;
    char **security[] = {&cfg->tls_cert,
                         &cfg->tls_key,
                         &cfg->tls_client_ca,
                         &cfg->agent_token_key_file,
                         &cfg->client_token_key_file,
                         &cfg->router_public_key,
                         &cfg->curve_cert_file};
    for (size_t i = 0; i < sizeof security / sizeof security[0]; i++) {
        free (*security[i]);
        *security[i] = NULL;
    }
    router_config_clear (&cfg->embedded);
}

//  Fill `options` with the edge's table.  Returns the count.
static size_t
s_options (edge_config_t *cfg, tconfig_option_t *options, size_t max)
{
    const tconfig_option_t own[] = {
        {"edge/listen", "TETHER_LISTEN", "--listen", TCONFIG_STRING,
         &cfg->listen, 0, 0, "gRPC listen address HOST:PORT (port 0 = any)"},
        {"edge/router", "TETHER_ROUTER", "--router", TCONFIG_STRING,
         &cfg->router_endpoint, 0, 0,
         "router endpoint, e.g. tcp://host:7100; empty = embedded router"},
        {"edge/monitor", "TETHER_MONITOR", "--monitor", TCONFIG_STRING,
         &cfg->monitor, 0, 0,
         "embedded router's monitor PUB endpoint; empty = none"},
        {"edge/name", "TETHER_NAME", "--name", TCONFIG_STRING, &cfg->name, 0, 0,
         "edge id shown in ListAgents; empty = the listen address"},
        {"edge/log_level", "TETHER_LOG_LEVEL", "--log-level", TCONFIG_STRING,
         &cfg->log_level, 0, 0, "debug, info, warn, error or off"},
        {"edge/max_agents", "TETHER_EDGE_MAX_AGENTS", "--max-agents",
         TCONFIG_UINT, &cfg->max_agents, 1, S_COUNT_MAX,
         "agent streams this edge holds at once"},
        {"edge/queue_depth", "TETHER_QUEUE_DEPTH", "--queue-depth",
         TCONFIG_UINT, &cfg->queue_depth, 1, 1000000,
         "requests queued per agent stream before RESOURCE_EXHAUSTED"},
        {"edge/queue_bytes", "TETHER_QUEUE_BYTES", "--queue-bytes",
         TCONFIG_SIZE, &cfg->queue_bytes, 1024, 1024u * 1024u * 1024u,
         "request bytes queued per agent stream before RESOURCE_EXHAUSTED"},
        {"edge/window", "TETHER_WINDOW", "--window", TCONFIG_UINT, &cfg->window,
         1, 65536, "response messages in flight per client call (credit)"},
        {"edge/router_liveness", "TETHER_ROUTER_LIVENESS", "--router-liveness",
         TCONFIG_DURATION, &cfg->router_liveness_ms, 100, 3600u * 1000u,
         "no answer from the router this long: fail in-flight client calls"},
        {"edge/shutdown_grace", "TETHER_SHUTDOWN_GRACE", "--shutdown-grace",
         TCONFIG_DURATION, &cfg->shutdown_grace_ms, 0, 600u * 1000u,
         "longest wait for calls to end when shutting down"},
        {"edge/dealer_sndhwm", "TETHER_DEALER_SNDHWM", "--dealer-sndhwm",
         TCONFIG_UINT, &cfg->dealer_sndhwm, 1, S_COUNT_MAX,
         "messages queued to an external router before sends fail"},
        {"edge/dealer_rcvhwm", "TETHER_DEALER_RCVHWM", "--dealer-rcvhwm",
         TCONFIG_UINT, &cfg->dealer_rcvhwm, 1, S_COUNT_MAX,
         "messages queued from an external router before it must wait"},
        {"edge/dealer_linger", "TETHER_DEALER_LINGER", "--dealer-linger",
         TCONFIG_DURATION, &cfg->dealer_linger_ms, 0, 60u * 1000u,
         "at exit, how long unsent messages to the router (BYE) may wait"},
        {"edge/posted_per_kind", "TETHER_POSTED_PER_KIND", "--posted-per-kind",
         TCONFIG_UINT, &cfg->posted_per_kind, 1, 1024,
         "calls of each method kept requested from gRPC (accept backlog)"},
        {"edge/max_calls", "TETHER_MAX_CALLS", "--max-calls", TCONFIG_UINT,
         &cfg->max_calls, 1, S_COUNT_MAX,
         "calls of every kind held at once; more get RESOURCE_EXHAUSTED"},
        {"edge/max_streams_per_connection", "TETHER_MAX_STREAMS_PER_CONNECTION",
         "--max-streams-per-connection", TCONFIG_UINT,
         &cfg->max_streams_per_connection, 1, S_COUNT_MAX,
         "HTTP/2 streams open at once on one connection (clients wait)"},
        {"edge/stream_window", "TETHER_STREAM_WINDOW", "--stream-window",
         TCONFIG_SIZE, &cfg->stream_window, 1024, 256u * 1024u * 1024u,
         "HTTP/2 bytes a peer may send ahead per stream (receive buffer)"},
        {"edge/bdp_probe", "TETHER_BDP_PROBE", "--bdp-probe", TCONFIG_BOOL,
         &cfg->bdp_probe, 0, 0,
         "let gRPC grow HTTP/2 windows by BDP probing (unbounds buffers)"},
        {"edge/keepalive_time", "TETHER_KEEPALIVE_TIME", "--keepalive-time",
         TCONFIG_DURATION, &cfg->keepalive_time_ms, 1000, S_DAY_MS,
         "ping each connection after this long without traffic"},
        {"edge/keepalive_timeout", "TETHER_KEEPALIVE_TIMEOUT",
         "--keepalive-timeout", TCONFIG_DURATION, &cfg->keepalive_timeout_ms,
         100, S_DAY_MS,
         "close a connection whose ping is not answered this long"},
        {"edge/min_ping_interval", "TETHER_MIN_PING_INTERVAL",
         "--min-ping-interval", TCONFIG_DURATION, &cfg->min_ping_interval_ms, 0,
         S_DAY_MS, "shortest interval between client keepalive pings accepted"},
        {"edge/max_ping_strikes", "TETHER_MAX_PING_STRIKES",
         "--max-ping-strikes", TCONFIG_UINT, &cfg->max_ping_strikes, 0, 1000000,
         "too-early client pings tolerated before GOAWAY; 0 = no limit"},
        {"edge/channelz", "TETHER_CHANNELZ", "--channelz", TCONFIG_BOOL,
         &cfg->channelz, 0, 0,
         "keep gRPC channelz records (about 500 B per connection)"},
        {"edge/hpack_table_size", "TETHER_HPACK_TABLE_SIZE",
         "--hpack-table-size", TCONFIG_SIZE, &cfg->hpack_table_size, 0,
         64u * 1024u,
         "HPACK decoder table per connection; 0 saves ~400 B per agent"},
        {"edge/trim_after_calls", "TETHER_TRIM_AFTER_CALLS",
         "--trim-after-calls", TCONFIG_UINT, &cfg->trim_after_calls, 0,
         S_COUNT_MAX,
         "calls ended since the peak before free heap goes back to the OS; "
         "0 = never"},
        {"edge/tls_cert", "TETHER_TLS_CERT", "--tls-cert", TCONFIG_STRING,
         &cfg->tls_cert, 0, 0,
         "server certificate chain (PEM file); with --tls-key: TLS on"},
        {"edge/tls_key", "TETHER_TLS_KEY", "--tls-key", TCONFIG_STRING,
         &cfg->tls_key, 0, 0, "server private key (PEM file)"},
        {"edge/tls_client_ca", "TETHER_TLS_CLIENT_CA", "--tls-client-ca",
         TCONFIG_STRING, &cfg->tls_client_ca, 0, 0,
         "CA (PEM file) for agent certificates: mutual TLS, agent id = the "
         "certificate's CN or a SAN"},
        {"edge/tls_require_client_cert", "TETHER_TLS_REQUIRE_CLIENT_CERT",
         "--tls-require-client-cert", TCONFIG_BOOL,
         &cfg->tls_require_client_cert, 0, 0,
         "refuse TLS handshakes without a client certificate (clients too)"},
        {"edge/agent_token_key_file", "TETHER_AGENT_TOKEN_KEY_FILE",
         "--agent-token-key-file", TCONFIG_STRING, &cfg->agent_token_key_file,
         0, 0, "HMAC key file: agents must present a signed agent token"},
        {"edge/client_token_key_file", "TETHER_CLIENT_TOKEN_KEY_FILE",
         "--client-token-key-file", TCONFIG_STRING, &cfg->client_token_key_file,
         0, 0, "HMAC key file: clients must present a scoped client token"},
        {"edge/router_public_key", "TETHER_ROUTER_PUBLIC_KEY",
         "--router-public-key", TCONFIG_STRING, &cfg->router_public_key, 0, 0,
         "router's CURVE public key (Z85 text or its public cert file)"},
        {"edge/curve_cert_file", "TETHER_CURVE_CERT_FILE", "--curve-cert-file",
         TCONFIG_STRING, &cfg->curve_cert_file, 0, 0,
         "this edge's CURVE certificate (secret zcert file)"},
    };
    size_t n = 0;
    for (size_t i = 0; i < sizeof own / sizeof own[0] && n < max; i++)
        options[n++] = own[i];
    tconfig_option_t core[S_MAX_OPTIONS];
    size_t count =
        router_config_core_options (&cfg->embedded, core, S_MAX_OPTIONS);
    for (size_t i = 0; i < count && n < max; i++)
        if (!core[i].flag || strcmp (core[i].flag, "--max-agents") != 0)
            options[n++] = core[i];
    return n;
}

//  True when `endpoint` looks like a ZeroMQ endpoint we can use.
static bool
s_endpoint_ok (const char *endpoint)
{
    return strncmp (endpoint, "tcp://", 6) == 0
           || strncmp (endpoint, "ipc://", 6) == 0
           || strncmp (endpoint, "inproc://", 9) == 0;
}

int
edge_config_load (edge_config_t *cfg,
                  int argc,
                  char **argv,
                  bool *help,
                  char *err,
                  size_t err_size)
{
    assert (cfg);
    tconfig_option_t options[S_MAX_OPTIONS];
    size_t count = s_options (cfg, options, S_MAX_OPTIONS);
    if (tconfig_load (options, count, argc, argv, "TETHER_EDGE_CONFIG", help,
                      err, err_size))
        return -1;
    if (help && *help)
        return 0;
    tlog_level_t level;
    if (tlog_level_parse (cfg->log_level, &level)) {
        snprintf (err, err_size,
                  "--log-level: '%s' is not one of debug, info, warn, "
                  "error, off",
                  cfg->log_level);
        return -1;
    }
    const char *colon = strrchr (cfg->listen, ':');
    char *end = NULL;
    long port = colon ? strtol (colon + 1, &end, 10) : -1;
    if (!colon || colon == cfg->listen || !end || *end || end == colon + 1
        || port < 0 || port > 65535) {
        snprintf (err, err_size,
                  "--listen: '%s' is not HOST:PORT (e.g. 0.0.0.0:50051)",
                  cfg->listen);
        return -1;
    }
    if (*cfg->router_endpoint && !s_endpoint_ok (cfg->router_endpoint)) {
        snprintf (err, err_size,
                  "--router: '%s' is not a ZeroMQ endpoint (e.g. "
                  "tcp://host:7100)",
                  cfg->router_endpoint);
        return -1;
    }
    if (*cfg->monitor && !s_endpoint_ok (cfg->monitor)) {
        snprintf (err, err_size,
                  "--monitor: '%s' is not a ZeroMQ endpoint (e.g. "
                  "tcp://127.0.0.1:7101), or empty",
                  cfg->monitor);
        return -1;
    }
    //  The edge PINGs every --heartbeat and declares the router lost after
    //  --router-liveness of silence: two PINGs must fit in that window.
    if ((uint64_t) cfg->embedded.core.heartbeat_ms * 2
        > cfg->router_liveness_ms) {
        snprintf (err, err_size,
                  "--heartbeat (router/heartbeat, %" PRIu32 "ms) must be at "
                  "most half of --router-liveness (edge/router_liveness, "
                  "%" PRIu32 "ms)",
                  cfg->embedded.core.heartbeat_ms, cfg->router_liveness_ms);
        return -1;
    }
    //  The embedded router's own settings must agree with each other; an
    //  external router checks its own.
    if (!*cfg->router_endpoint
        && router_config_check (&cfg->embedded, err, err_size))
        return -1;
    if (cfg->window > cfg->embedded.core.max_credit
        && cfg->embedded.core.max_credit) {
        snprintf (err, err_size, "--window %u is above --max-credit %u",
                  cfg->window, cfg->embedded.core.max_credit);
        return -1;
    }
    if (!*cfg->tls_cert != !*cfg->tls_key) {
        snprintf (err, err_size, "--tls-cert and --tls-key go together");
        return -1;
    }
    if ((*cfg->tls_client_ca || cfg->tls_require_client_cert)
        && !*cfg->tls_cert) {
        snprintf (err, err_size,
                  "--tls-client-ca and --tls-require-client-cert need TLS "
                  "(--tls-cert and --tls-key)");
        return -1;
    }
    if (cfg->tls_require_client_cert && !*cfg->tls_client_ca) {
        snprintf (err, err_size,
                  "--tls-require-client-cert needs --tls-client-ca");
        return -1;
    }
    if (!*cfg->router_public_key != !*cfg->curve_cert_file) {
        snprintf (err, err_size,
                  "--router-public-key and --curve-cert-file go together");
        return -1;
    }
    if (*cfg->router_public_key && !*cfg->router_endpoint) {
        snprintf (err, err_size,
                  "--router-public-key needs an external --router (the "
                  "embedded router talks inproc, where CURVE is not used)");
        return -1;
    }
    //  The embedded router serves this edge alone.
    cfg->embedded.core.max_agents = cfg->max_agents;
    return 0;
}

void
edge_config_print_help (edge_config_t *cfg, FILE *out)
{
    assert (cfg);
    fprintf (out,
             "usage: tether-edge [--listen HOST:PORT] [--router ENDPOINT] "
             "[--monitor ENDPOINT]\n"
             "                   [--config FILE] [--name NAME] [options]\n"
             "\n"
             "Serves tether.v1.AgentGateway over gRPC.  Without --router it "
             "runs the router\n"
             "in this process; with --router it joins an external "
             "tether-router.\n\n");
    tconfig_option_t options[S_MAX_OPTIONS];
    size_t count = s_options (cfg, options, S_MAX_OPTIONS);
    tconfig_print_help (out, options, count);
}
