/*  =========================================================================
    router_config - the router's settings: endpoints plus core limits

    Each setting is described once, in one of two tables below: the core's
    limits and timings (shared with tether-edge, which embeds a router when
    no external one is configured) and the router process's own settings
    (endpoints, queue sizes, log level).  The tables are built on demand
    because their targets point into the caller's router_config_t.

    Invariant: every string of a router_config_t is a heap copy owned by
    the struct, or NULL; router_config_clear frees exactly those.
    =========================================================================
*/
#include "router_config.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#define S_SECOND 1000u
#define S_HOUR   (3600u * S_SECOND)
#define S_DAY    (24u * S_HOUR)
#define S_MIB    (1024u * 1024u)
//  Upper bound of every count: the shells pass some of them to APIs that
//  take an int (ZeroMQ high-water marks), so none may exceed INT_MAX.
#define S_COUNT_MAX ((uint32_t) INT_MAX)

//  Fixed part of one option: everything but the target, which is filled
//  in per call because it points into the caller's struct.
typedef struct
{
    const char *path;    //  ZPL path in the config file
    const char *env;     //  environment variable
    const char *flag;    //  command-line flag
    tconfig_type_t type; //  value syntax
    size_t offset;       //  of the target in router_config_t
    uint32_t min;        //  inclusive lower bound
    uint32_t max;        //  inclusive upper bound, 0 = none
    const char *help;    //  one line for --help
} s_option_t;

#define S_CORE(field) offsetof (router_config_t, core.field)
#define S_SELF(field) offsetof (router_config_t, field)

static const s_option_t s_core_options[] = {
    {"router/first_response_timeout", "TETHER_FIRST_RESPONSE_TIMEOUT",
     "--first-response-timeout", TCONFIG_DURATION, S_CORE (first_response_ms),
     1, S_DAY, "time from delivery to the agent's first response message"},
    {"router/idle_timeout", "TETHER_IDLE_TIMEOUT", "--idle-timeout",
     TCONFIG_DURATION, S_CORE (idle_ms), 1, S_DAY,
     "longest silence between response messages while the agent has credit"},
    {"router/max_wait_for_agent", "TETHER_MAX_WAIT_FOR_AGENT",
     "--max-wait-for-agent", TCONFIG_DURATION, S_CORE (max_wait_ms), 0, S_DAY,
     "cap on x-wait-for-agent-ms (0 = requests never wait for an agent)"},
    {"router/max_timeout", "TETHER_MAX_TIMEOUT", "--max-timeout",
     TCONFIG_DURATION, S_CORE (max_timeout_ms), 0, 24u * S_DAY,
     "cap on a client's own deadline (0 = no cap)"},
    {"router/edge_liveness", "TETHER_EDGE_LIVENESS", "--edge-liveness",
     TCONFIG_DURATION, S_CORE (edge_liveness_ms), 100, S_HOUR,
     "silence after which an edge is dead and its agents removed"},
    {"router/heartbeat", "TETHER_HEARTBEAT", "--heartbeat", TCONFIG_DURATION,
     S_CORE (heartbeat_ms), 10, S_HOUR,
     "heartbeat period expected of edges; liveness check cadence"},
    {"router/stats_interval", "TETHER_STATS_INTERVAL", "--stats-interval",
     TCONFIG_DURATION, S_CORE (stats_interval_ms), 100, S_DAY,
     "period of the `stats` monitor event"},
    {"router/max_agent_id_length", "TETHER_MAX_AGENT_ID_LENGTH",
     "--max-agent-id-length", TCONFIG_UINT, S_CORE (max_agent_id_len), 1, 65535,
     "longest agent id, bytes"},
    {"router/max_request_id_length", "TETHER_MAX_REQUEST_ID_LENGTH",
     "--max-request-id-length", TCONFIG_UINT, S_CORE (max_request_id_len), 1,
     65535, "longest request id, bytes"},
    {"router/max_labels", "TETHER_MAX_LABELS", "--max-labels", TCONFIG_UINT,
     S_CORE (max_labels), 0, 65535, "labels per agent"},
    {"router/max_label_length", "TETHER_MAX_LABEL_LENGTH", "--max-label-length",
     TCONFIG_UINT, S_CORE (max_label_len), 1, 65535,
     "longest label key or value, bytes"},
    {"router/max_agents", "TETHER_MAX_AGENTS", "--max-agents", TCONFIG_UINT,
     S_CORE (max_agents), 1, S_COUNT_MAX,
     "agents connected at once, all edges"},
    {"router/max_requests", "TETHER_MAX_REQUESTS", "--max-requests",
     TCONFIG_UINT, S_CORE (max_requests), 1, S_COUNT_MAX,
     "requests in flight at once, all agents"},
    {"router/max_in_flight_per_agent", "TETHER_MAX_IN_FLIGHT_PER_AGENT",
     "--max-in-flight-per-agent", TCONFIG_UINT,
     S_CORE (max_in_flight_per_agent), 1, S_COUNT_MAX,
     "requests in flight per agent"},
    {"router/max_edges", "TETHER_MAX_EDGES", "--max-edges", TCONFIG_UINT,
     S_CORE (max_edges), 1, S_COUNT_MAX, "edges known at once"},
    {"router/max_message_size", "TETHER_MAX_MESSAGE_SIZE", "--max-message-size",
     TCONFIG_SIZE, S_CORE (max_payload_bytes), 1, 1024u * S_MIB,
     "largest AgentRequest or AgentResponse message, bytes"},
    {"router/max_credit", "TETHER_MAX_CREDIT", "--max-credit", TCONFIG_UINT,
     S_CORE (max_credit), 1, S_COUNT_MAX,
     "response messages a client's edge may have outstanding per request"},
    {"router/max_list", "TETHER_MAX_LIST", "--max-list", TCONFIG_UINT,
     S_CORE (max_list), 1, S_COUNT_MAX, "agents in one ListAgents answer"},
};

static const s_option_t s_self_options[] = {
    {"router/bind", "TETHER_ROUTER_BIND", "--bind", TCONFIG_STRING,
     S_SELF (bind), 0, 0,
     "ROUTER endpoint(s) edges connect to, comma-separated"},
    {"router/monitor", "TETHER_MONITOR_BIND", "--monitor", TCONFIG_STRING,
     S_SELF (monitor), 0, 0,
     "PUB endpoint(s) for monitor events, comma-separated; empty = none"},
    {"router/monitor_hwm", "TETHER_MONITOR_HWM", "--monitor-hwm", TCONFIG_UINT,
     S_SELF (monitor_hwm), 1, S_COUNT_MAX,
     "events queued per monitor subscriber before they are dropped"},
    {"router/edge_hwm", "TETHER_EDGE_HWM", "--edge-hwm", TCONFIG_UINT,
     S_SELF (edge_hwm), 1, S_COUNT_MAX,
     "messages queued per edge; an edge that falls this far behind is dead"},
    {"router/batch", "TETHER_ROUTER_BATCH", "--batch", TCONFIG_UINT,
     S_SELF (batch), 1, 1000000,
     "messages handled per wake-up before timers run"},
    {"router/log_level", "TETHER_LOG_LEVEL", "--log-level", TCONFIG_STRING,
     S_SELF (log_level), 0, 0, "debug, info, warn, error or off"},
    {"router/curve_secret_key_file", "TETHER_CURVE_SECRET_KEY_FILE",
     "--curve-secret-key-file", TCONFIG_STRING, S_SELF (curve_secret_key_file),
     0, 0,
     "router's CURVE certificate (secret zcert file): edges must "
     "encrypt and authenticate"},
    {"router/curve_allow_dir", "TETHER_CURVE_ALLOW_DIR", "--curve-allow-dir",
     TCONFIG_STRING, S_SELF (curve_allow_dir), 0, 0,
     "directory of the public zcert files of the edges allowed in"},
};

static size_t
s_fill (router_config_t *cfg,
        const s_option_t *table,
        size_t table_size,
        tconfig_option_t *options,
        size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < table_size && n < max; i++, n++) {
        options[n].path = table[i].path;
        options[n].env = table[i].env;
        options[n].flag = table[i].flag;
        options[n].type = table[i].type;
        options[n].target = (char *) cfg + table[i].offset;
        options[n].min = table[i].min;
        options[n].max = table[i].max;
        options[n].help = table[i].help;
    }
    return n;
}

void
router_config_defaults (router_config_t *cfg)
{
    assert (cfg);
    memset (cfg, 0, sizeof *cfg);
    core_config_defaults (&cfg->core);
    cfg->bind = strdup ("tcp://*:7100");
    cfg->monitor = strdup ("tcp://*:7101");
    cfg->log_level = strdup ("info");
    cfg->curve_secret_key_file = strdup ("");
    cfg->curve_allow_dir = strdup ("");
    assert (cfg->bind && cfg->monitor && cfg->log_level);
    assert (cfg->curve_secret_key_file && cfg->curve_allow_dir);
    cfg->monitor_hwm = 10000;
    cfg->edge_hwm = 100000;
    cfg->batch = 256;
}

void
router_config_clear (router_config_t *cfg)
{
    assert (cfg);
    free (cfg->bind);
    free (cfg->monitor);
    free (cfg->log_level);
    cfg->bind = NULL;
    cfg->monitor = NULL;
    cfg->log_level = NULL;
    free (cfg->curve_secret_key_file);
    free (cfg->curve_allow_dir);
    cfg->curve_secret_key_file = NULL;
    cfg->curve_allow_dir = NULL;
}

static char *
s_strdup_or_null (const char *text)
{
    if (!text)
        return NULL;
    char *copy = strdup (text);
    assert (copy);
    return copy;
}

void
router_config_copy (router_config_t *dst, const router_config_t *src)
{
    assert (dst);
    assert (src);
    *dst = *src;
    dst->bind = s_strdup_or_null (src->bind);
    dst->monitor = s_strdup_or_null (src->monitor);
    dst->log_level = s_strdup_or_null (src->log_level);
    dst->curve_secret_key_file = s_strdup_or_null (src->curve_secret_key_file);
    dst->curve_allow_dir = s_strdup_or_null (src->curve_allow_dir);
}

int
router_config_check (const router_config_t *cfg, char *err, size_t size)
{
    assert (cfg);
    assert (err || size == 0);
    const core_config_t *core = &cfg->core;
    if ((uint64_t) core->heartbeat_ms * 2 > core->edge_liveness_ms) {
        if (size)
            snprintf (err, size,
                      "--heartbeat (router/heartbeat, %" PRIu32
                      "ms) must be at most half of --edge-liveness "
                      "(router/edge_liveness, %" PRIu32 "ms)",
                      core->heartbeat_ms, core->edge_liveness_ms);
        return -1;
    }
    return 0;
}

size_t
router_config_core_options (router_config_t *cfg,
                            tconfig_option_t *options,
                            size_t max)
{
    assert (cfg);
    assert (options || max == 0);
    return s_fill (cfg, s_core_options,
                   sizeof s_core_options / sizeof s_core_options[0], options,
                   max);
}

size_t
router_config_options (router_config_t *cfg,
                       tconfig_option_t *options,
                       size_t max)
{
    assert (cfg);
    assert (options || max == 0);
    size_t n =
        s_fill (cfg, s_self_options,
                sizeof s_self_options / sizeof s_self_options[0], options, max);
    return n + router_config_core_options (cfg, options + n, max - n);
}
