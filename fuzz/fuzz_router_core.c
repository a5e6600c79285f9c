/*  =========================================================================
    fuzz_router_core - libFuzzer target: the router's state machine

    The input is a small program run against a fresh router core:

      byte 0        prefix flags: which well-formed openings to play first
                    (HELLO from two edges, an agent SUBSCRIBE, a PUBLISH to
                    it), so that the fuzzer starts from deep states
      then ops      op byte % 5:
        0  raw       edge, frame count, then each frame as u16 length +
                     bytes: any byte sequence at all
        1  envelope  edge, then fields drawn from small sets (commands,
                     handles, ids, sessions, credit, deadlines), packed
                     as a well-formed envelope, with an optional payload
        2  time      advance the clock by a u16 of ms and run due timers
        3  lost      core_edge_unreachable for an edge
        4  list      a LIST with a prefix and limit

    After every op the outbox is drained and checked: every message to an
    edge goes to a routing id we used and carries a decodable envelope of
    a router -> edge command; every event and log line has its frames.
    Invariants checked after every op: requests_started - finished equals
    the request table's size; the tables stay within the configured
    limits.  At the end the clock jumps a day ahead: every edge falls
    silent, so every table must be empty and every request finished.

    Builds with clang -fsanitize=fuzzer (fuzz/CMakeLists.txt), or with any
    compiler as a corpus replay (fuzz_replay.c).
    =========================================================================
*/
#include "router_core.h"
#include "wire_envelope.h"

#include <assert.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S_EDGES 3

//  Stay on even when a build type defines NDEBUG: these are the checks.
#define S_CHECK(cond)                                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf (stderr, "fuzz_router_core: %s:%d: %s\n", __FILE__,        \
                     __LINE__, #cond);                                         \
            abort ();                                                          \
        }                                                                      \
    } while (0)

typedef struct
{
    const uint8_t *data; //  the input; borrowed
    size_t size;
    size_t pos; //  next byte to read
} s_input_t;

static uint8_t
s_byte (s_input_t *in)
{
    return in->pos < in->size ? in->data[in->pos++] : 0;
}

static uint16_t
s_u16 (s_input_t *in)
{
    uint16_t lo = s_byte (in);
    return (uint16_t) (lo | (uint16_t) s_byte (in) << 8);
}

static bool
s_more (s_input_t *in)
{
    return in->pos < in->size;
}

typedef struct
{
    core_t *core; //  the core under test; owned
    core_config_t cfg;
    zframe_t *routing[S_EDGES]; //  the edges' routing ids; owned
    int64_t now;                //  the fake clock
} s_fixture_t;

static const char *s_ids[] = {"r0", "r1", "r2", "", "r 3", "r0\x7f"};
static const char *s_agents[] = {"a0", "a1", "a2", "", "bad id", "a0.x"};
static const char *s_edge_names[] = {"e0", "e1", "e2"};

static const char *
s_pick (const char **set, size_t count, uint8_t b)
{
    return set[b % count];
}

#define S_PICK(set, b) s_pick (set, sizeof (set) / sizeof (set[0]), (b))

//  Drain the outbox and check every entry.
static void
s_drain (s_fixture_t *self)
{
    core_out_t kind;
    zmsg_t *msg;
    while ((msg = core_outbox_pop (self->core, &kind))) {
        size_t frames = zmsg_size (msg);
        if (kind == CORE_OUT_EDGE) {
            S_CHECK (frames == 2 || frames == 3);
            zframe_t *rid = zmsg_first (msg);
            bool known = false;
            for (int i = 0; i < S_EDGES; i++)
                if (zframe_eq (rid, self->routing[i]))
                    known = true;
            S_CHECK (known);
            Wire__Envelope *env = NULL;
            S_CHECK (wire_envelope_decode (zmsg_next (msg), &env) == 0);
            S_CHECK (env->command >= WIRE__COMMAND__WELCOME
                     && env->command <= WIRE__COMMAND__AGENTS);
            wire_envelope_free (&env);
        } else if (kind == CORE_OUT_EVENT)
            S_CHECK (frames == 2);
        else {
            S_CHECK (kind == CORE_OUT_LOG);
            S_CHECK (frames >= 2);
        }
        zmsg_destroy (&msg);
    }
}

static void
s_check (s_fixture_t *self)
{
    const core_stats_t *stats = core_stats (self->core);
    S_CHECK (stats->requests_finished <= stats->requests_started);
    S_CHECK (stats->requests_started - stats->requests_finished
             == core_request_count (self->core));
    S_CHECK (core_waiting_count (self->core)
             <= core_request_count (self->core));
    S_CHECK (core_agent_count (self->core) <= self->cfg.max_agents);
    S_CHECK (core_request_count (self->core) <= self->cfg.max_requests);
    S_CHECK (core_edge_count (self->core) <= self->cfg.max_edges);
    int64_t due = core_next_due (self->core);
    S_CHECK (due == -1 || due >= 0);
}

//  Run every timer due by `now`, as the shell does.
static void
s_advance (s_fixture_t *self, int64_t ms)
{
    self->now += ms;
    core_tick (self->core, self->now);
    s_drain (self);
    int64_t due = core_next_due (self->core);
    S_CHECK (due == -1 || due > self->now);
}

static void
s_deliver (s_fixture_t *self, int edge, zmsg_t **msg_p)
{
    core_handle (self->core, self->routing[edge % S_EDGES], msg_p, self->now);
    S_CHECK (*msg_p == NULL);
    s_drain (self);
    s_check (self);
}

//  Send `env` (and a payload of `payload_size` bytes when >= 0).
static void
s_send_env (s_fixture_t *self,
            int edge,
            Wire__Envelope *env,
            int payload_size,
            uint8_t fill)
{
    zmsg_t *msg = zmsg_new ();
    zframe_t *head = wire_envelope_encode (env);
    zmsg_append (msg, &head);
    if (payload_size >= 0) {
        zframe_t *payload = zframe_new (NULL, (size_t) payload_size);
        if (payload_size)
            memset (zframe_data (payload), fill, (size_t) payload_size);
        zmsg_append (msg, &payload);
    }
    s_deliver (self, edge, &msg);
}

static void
s_hello (s_fixture_t *self,
         int edge,
         uint64_t incarnation,
         Wire__AgentEntry **agents,
         size_t n_agents)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__HELLO;
    env.edge_id = (char *) s_edge_names[edge % S_EDGES];
    env.incarnation = incarnation;
    env.agents = agents;
    env.n_agents = n_agents;
    s_send_env (self, edge, &env, -1, 0);
}

static void
s_subscribe (s_fixture_t *self,
             int edge,
             uint64_t handle,
             const char *agent_id,
             uint64_t session)
{
    Wire__AgentEntry entry = WIRE__AGENT_ENTRY__INIT;
    entry.handle = handle;
    entry.agent_id = (char *) agent_id;
    entry.session = session;
    entry.connected_at_unix_ms = 1;
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__SUBSCRIBE;
    env.agent = &entry;
    s_send_env (self, edge, &env, -1, 0);
}

static void
s_prefix (s_fixture_t *self, uint8_t flags)
{
    if (flags & 1) {
        s_hello (self, 0, 1, NULL, 0);
        Wire__AgentEntry entry = WIRE__AGENT_ENTRY__INIT;
        entry.handle = 1;
        entry.agent_id = "a1";
        Wire__AgentEntry *list[] = {&entry};
        s_hello (self, 1, 1, list, 1);
    }
    if (flags & 2)
        s_subscribe (self, 0, 2, "a0", 0);
    if (flags & 4) {
        Wire__Envelope env = WIRE__ENVELOPE__INIT;
        env.command = WIRE__COMMAND__PUBLISH;
        env.handle = 3;
        env.request_id = "r0";
        env.agent_id = "a0";
        env.timeout_ms = 1000;
        env.credit = 2;
        s_send_env (self, 1, &env, 8, 'q');
    }
    if (flags & 8) {
        Wire__Envelope env = WIRE__ENVELOPE__INIT;
        env.command = WIRE__COMMAND__BIND;
        env.handle = 4;
        env.request_id = "r0";
        s_send_env (self, 0, &env, -1, 0);
    }
}

static void
s_op_raw (s_fixture_t *self, s_input_t *in)
{
    int edge = s_byte (in);
    int frames = s_byte (in) % 4;
    zmsg_t *msg = zmsg_new ();
    for (int i = 0; i < frames; i++) {
        size_t len = s_u16 (in) % 1024;
        if (len > in->size - in->pos)
            len = in->size - in->pos;
        zmsg_addmem (msg, in->data + in->pos, len);
        in->pos += len;
    }
    s_deliver (self, edge, &msg);
}

static void
s_op_envelope (s_fixture_t *self, s_input_t *in)
{
    int edge = s_byte (in);
    uint8_t cmd = s_byte (in);
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    //  Mostly edge -> router commands; sometimes anything.
    env.command = cmd < 240 ? (Wire__Command) (cmd % 11 + 1)
                            : (Wire__Command) (cmd - 240 + 30);
    env.handle = s_byte (in) % 8;
    env.request_id = (char *) S_PICK (s_ids, s_byte (in));
    env.agent_id = (char *) S_PICK (s_agents, s_byte (in));
    uint8_t session = s_byte (in) % 16;
    env.session = session ? 999 + session : 0;
    env.status = (int32_t) (s_byte (in) % 20) - 1;
    env.credit = s_byte (in) % 12;
    env.timeout_ms = (uint32_t) s_byte (in) * 8;
    env.wait_ms = (uint32_t) s_byte (in) * 8;
    env.edge_id = (char *) s_edge_names[s_byte (in) % S_EDGES];
    env.incarnation = s_byte (in) % 3;
    env.message = "m";

    Wire__AgentEntry entries[3];
    Wire__AgentEntry *list[3];
    Wire__AgentEntry__LabelsEntry label = WIRE__AGENT_ENTRY__LABELS_ENTRY__INIT;
    Wire__AgentEntry__LabelsEntry *labels[] = {&label};
    label.key = "k";
    label.value = "v";
    size_t n = s_byte (in) % 4;
    for (size_t i = 0; i < n && i < 3; i++) {
        Wire__AgentEntry init = WIRE__AGENT_ENTRY__INIT;
        entries[i] = init;
        entries[i].handle = s_byte (in) % 8;
        entries[i].agent_id = (char *) S_PICK (s_agents, s_byte (in));
        uint8_t s = s_byte (in) % 16;
        entries[i].session = s ? 999 + s : 0;
        if (s_byte (in) & 1) {
            entries[i].labels = labels;
            entries[i].n_labels = 1;
        }
        list[i] = &entries[i];
    }
    if (env.command == WIRE__COMMAND__HELLO) {
        env.agents = list;
        env.n_agents = n > 3 ? 3 : n;
    } else if (n)
        env.agent = list[0];
    uint8_t payload = s_byte (in);
    int size = payload & 0x80 ? -1 : (payload & 0x7F) * 4;
    s_send_env (self, edge, &env, size, payload);
}

static void
s_op_list (s_fixture_t *self, s_input_t *in)
{
    int edge = s_byte (in);
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__LIST;
    env.handle = s_byte (in);
    env.prefix = (char *) S_PICK (s_agents, s_byte (in));
    env.limit = s_byte (in) % 4;
    s_send_env (self, edge, &env, -1, 0);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    s_input_t in = {data, size, 0};
    s_fixture_t self;
    memset (&self, 0, sizeof self);
    core_config_defaults (&self.cfg);
    //  Small limits and short times, so that every limit and deadline is
    //  within the fuzzer's reach.
    self.cfg.first_response_ms = 300;
    self.cfg.idle_ms = 500;
    self.cfg.max_wait_ms = 400;
    self.cfg.max_timeout_ms = 2000;
    self.cfg.edge_liveness_ms = 1500;
    self.cfg.heartbeat_ms = 500;
    self.cfg.stats_interval_ms = 700;
    self.cfg.max_agent_id_len = 8;
    self.cfg.max_request_id_len = 8;
    self.cfg.max_labels = 1;
    self.cfg.max_label_len = 4;
    self.cfg.max_agents = 4;
    self.cfg.max_requests = 6;
    self.cfg.max_in_flight_per_agent = 3;
    self.cfg.max_edges = 2;
    self.cfg.max_payload_bytes = 256;
    self.cfg.max_credit = 4;
    self.cfg.max_list = 3;
    self.core = core_new (&self.cfg, 7, 1000);
    core_set_log_level (self.core, 0);
    self.now = 1000000;
    for (int i = 0; i < S_EDGES; i++) {
        byte id[5] = {0, 'E', (byte) ('0' + i), 0x5a, 0xa5};
        self.routing[i] = zframe_new (id, sizeof id);
    }
    s_prefix (&self, s_byte (&in));
    int ops = 0;
    while (s_more (&in) && ops++ < 256) {
        self.now += s_byte (&in) % 8;
        switch (s_byte (&in) % 5) {
            case 0:
                s_op_raw (&self, &in);
                break;
            case 1:
                s_op_envelope (&self, &in);
                break;
            case 2:
                s_advance (&self, s_u16 (&in) % 2048);
                break;
            case 3:
                core_edge_unreachable (
                    self.core, self.routing[s_byte (&in) % S_EDGES], self.now);
                s_drain (&self);
                s_check (&self);
                break;
            default:
                s_op_list (&self, &in);
                break;
        }
    }
    //  A day later every edge has fallen silent: nothing may be left.
    for (int i = 0; i < 4; i++)
        s_advance (&self, 24 * 3600 * 1000 / 4);
    s_check (&self);
    S_CHECK (core_edge_count (self.core) == 0);
    S_CHECK (core_agent_count (self.core) == 0);
    S_CHECK (core_request_count (self.core) == 0);
    S_CHECK (core_waiting_count (self.core) == 0);

    if (getenv ("TETHER_FUZZ_TRACE")) {
        //  Where did this input lead?  For checking the seed corpus.
        const core_stats_t *st = core_stats (self.core);
        fprintf (stderr,
                 "in=%" PRIu64 " malformed=%" PRIu64 " unexpected=%" PRIu64
                 " unknown_edge=%" PRIu64 " started=%" PRIu64 " ok=%" PRIu64
                 " cancelled=%" PRIu64 " deadline=%" PRIu64
                 " unavailable=%" PRIu64 " routed=%" PRIu64
                 " superseded=%" PRIu64 " edges_lost=%" PRIu64 "\n",
                 st->messages_in, st->malformed, st->unexpected,
                 st->unknown_edge, st->requests_started,
                 st->requests_by_status[0], st->requests_by_status[1],
                 st->requests_by_status[4], st->requests_by_status[14],
                 st->responses_routed, st->agents_superseded, st->edges_lost);
    }
    for (int i = 0; i < S_EDGES; i++)
        zframe_destroy (&self.routing[i]);
    core_destroy (&self.core);
    return 0;
}
