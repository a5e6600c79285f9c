/*  =========================================================================
    test_router_core - the router's state machine, driven message by message

    Every test feeds envelopes to core_handle with a fake clock and checks
    what comes out of the outbox: which edge, which command, which handle,
    which status.  No sockets, no sleeps.  Each test ends by checking that
    the tables are as expected (usually empty) and the core is destroyed
    with ASan watching for leaks.
    =========================================================================
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router_config.h"
#include "router_core.h"
#include "wire_envelope.h"
#include "tether.pb-c.h"

#define MAX_LIVE 16

//  gRPC codes used here
enum
{
    OK = 0,
    CANCELLED = 1,
    UNKNOWN = 2,
    INVALID_ARGUMENT = 3,
    DEADLINE_EXCEEDED = 4,
    NOT_FOUND = 5,
    ALREADY_EXISTS = 6,
    PERMISSION_DENIED = 7,
    RESOURCE_EXHAUSTED = 8,
    FAILED_PRECONDITION = 9,
    ABORTED = 10,
    UNAVAILABLE = 14
};

#define ANY -1

typedef struct
{
    char *to;            //  routing id (test routing ids are text)
    Wire__Envelope *env; //  decoded frame 1
    zframe_t *payload;   //  frame 2 or NULL
} out_t;

typedef struct
{
    char *topic;
    char *json;
} event_t;

typedef struct
{
    core_t *core;
    core_config_t cfg;
    int64_t now;
    zlistx_t *out;        //  out_t, edge messages not yet checked
    zlistx_t *events;     //  event_t, every event so far
    uint64_t last_seq;    //  last event seq seen
    size_t logs;          //  log lines seen
    size_t pongs;         //  PONGs seen (dropped from `out`)
    char *live[MAX_LIVE]; //  routing ids kept alive by s_advance
    size_t n_live;
} fx_t;


//  ---------------------------------------------------------------------
//  Fixture and outbox

static void
s_out_destroy (out_t **out_p)
{
    out_t *out = *out_p;
    if (out) {
        free (out->to);
        wire_envelope_free (&out->env);
        zframe_destroy (&out->payload);
        free (out);
        *out_p = NULL;
    }
}

//  Move the core's outbox into the fixture, checking its shape.
static void
s_drain (fx_t *fx)
{
    core_out_t kind;
    zmsg_t *msg;
    while ((msg = core_outbox_pop (fx->core, &kind))) {
        if (kind == CORE_OUT_EDGE) {
            assert_true (zmsg_size (msg) == 2 || zmsg_size (msg) == 3);
            out_t *out = (out_t *) calloc (1, sizeof (out_t));
            zframe_t *rid = zmsg_pop (msg);
            out->to = zframe_strdup (rid);
            zframe_destroy (&rid);
            zframe_t *head = zmsg_pop (msg);
            assert_int_equal (wire_envelope_decode (head, &out->env), 0);
            zframe_destroy (&head);
            out->payload = zmsg_pop (msg);
            assert_true (out->env->command >= WIRE__COMMAND__WELCOME);
            if (out->env->command == WIRE__COMMAND__PONG) {
                fx->pongs++;
                s_out_destroy (&out);
            } else
                zlistx_add_end (fx->out, out);
        } else if (kind == CORE_OUT_EVENT) {
            assert_int_equal (zmsg_size (msg), 2);
            event_t *event = (event_t *) calloc (1, sizeof (event_t));
            event->topic = zmsg_popstr (msg);
            event->json = zmsg_popstr (msg);
            uint64_t seq = 0;
            assert_int_equal (sscanf (event->json, "{\"seq\":%" SCNu64, &seq),
                              1);
            assert_int_equal (seq, fx->last_seq + 1);
            fx->last_seq = seq;
            assert_non_null (strstr (event->json, "\"mono_ms\":"));
            assert_int_equal (event->json[strlen (event->json) - 1], '}');
            zlistx_add_end (fx->events, event);
        } else {
            assert_int_equal (kind, CORE_OUT_LOG);
            assert_int_equal (zmsg_size (msg), 3);
            char *level = zmsg_popstr (msg);
            assert_true (strlen (level) == 1 && level[0] >= '0'
                         && level[0] <= '3');
            free (level);
            fx->logs++;
        }
        zmsg_destroy (&msg);
    }
}

static void
s_event_destroy (void **item)
{
    event_t *event = (event_t *) *item;
    free (event->topic);
    free (event->json);
    free (event);
    *item = NULL;
}

static void
s_out_destructor (void **item)
{
    s_out_destroy ((out_t **) item);
}

//  A fixture whose router has incarnation `incarnation`.
static fx_t *
s_fx_new_incarnation (const core_config_t *cfg, uint64_t incarnation)
{
    fx_t *fx = (fx_t *) calloc (1, sizeof (fx_t));
    if (cfg)
        fx->cfg = *cfg;
    else {
        core_config_defaults (&fx->cfg);
        fx->cfg.stats_interval_ms = 0;
    }
    fx->core = core_new (&fx->cfg, incarnation, 1000);
    assert_non_null (fx->core);
    //  A key as a shell sets one (router_shell_key_core), fixed so runs
    //  repeat: every test then hashes ids as in production.
    byte key[16];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (byte) (incarnation * 31 + i * 97 + 1);
    assert_int_equal (core_set_hash_key (fx->core, key), 0);
    core_set_log_level (fx->core, 0);
    fx->now = 1000;
    fx->out = zlistx_new ();
    zlistx_set_destructor (fx->out, s_out_destructor);
    fx->events = zlistx_new ();
    zlistx_set_destructor (fx->events, s_event_destroy);
    return fx;
}

static fx_t *
s_fx_new (const core_config_t *cfg)
{
    return s_fx_new_incarnation (cfg, 777);
}

static void
s_fx_destroy (fx_t **fx_p)
{
    fx_t *fx = *fx_p;
    core_destroy (&fx->core);
    assert_null (fx->core);
    zlistx_destroy (&fx->out);
    zlistx_destroy (&fx->events);
    for (size_t i = 0; i < fx->n_live; i++)
        free (fx->live[i]);
    free (fx);
    *fx_p = NULL;
}

static int
s_setup (void **state)
{
    *state = s_fx_new (NULL);
    return 0;
}

static int
s_teardown (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_fx_destroy (&fx);
    return 0;
}

//  Pop the next edge message and check it.  status/handle ANY: not checked.
static out_t *
s_pop (fx_t *fx,
       const char *to,
       int command,
       int64_t handle,
       int status,
       const char *file,
       int line)
{
    out_t *out = (out_t *) zlistx_detach (fx->out, NULL);
    if (!out) {
        print_error ("%s:%d: expected %s to %s, outbox empty\n", file, line,
                     wire_command_name (command), to);
        _fail (file, line);
    }
    if (strcmp (out->to, to) || (int) out->env->command != command
        || (handle != ANY && (int64_t) out->env->handle != handle)
        || (status != ANY && out->env->status != status)) {
        print_error ("%s:%d: expected %s to %s handle %" PRId64 " status %d,"
                     " got %s to %s handle %" PRIu64 " status %d (%s)\n",
                     file, line, wire_command_name (command), to, handle,
                     status, wire_command_name (out->env->command), out->to,
                     out->env->handle, out->env->status, out->env->message);
        _fail (file, line);
    }
    return out;
}

#define POP(fx, to, cmd, handle, status)                                       \
    s_pop (fx, to, WIRE__COMMAND__##cmd, handle, status, __FILE__, __LINE__)

#define EXPECT(fx, to, cmd, handle, status)                                    \
    do {                                                                       \
        out_t *out__ = POP (fx, to, cmd, handle, status);                      \
        s_out_destroy (&out__);                                                \
    } while (0)

static void
s_expect_none (fx_t *fx, const char *file, int line)
{
    out_t *out = (out_t *) zlistx_first (fx->out);
    if (out) {
        print_error ("%s:%d: expected nothing, got %s to %s handle %" PRIu64
                     " status %d request %s\n",
                     file, line, wire_command_name (out->env->command), out->to,
                     out->env->handle, out->env->status, out->env->request_id);
        _fail (file, line);
    }
}

#define EXPECT_NONE(fx) s_expect_none (fx, __FILE__, __LINE__)

static size_t
s_events (fx_t *fx, const char *topic, const char *containing)
{
    size_t count = 0;
    event_t *event = (event_t *) zlistx_first (fx->events);
    while (event) {
        if (streq (event->topic, topic)
            && (!containing || strstr (event->json, containing)))
            count++;
        event = (event_t *) zlistx_next (fx->events);
    }
    return count;
}

static void
s_assert_empty (fx_t *fx)
{
    assert_int_equal (core_request_count (fx->core), 0);
    assert_int_equal (core_waiting_count (fx->core), 0);
    assert_int_equal (core_timer_count (fx->core), 0);
}


//  ---------------------------------------------------------------------
//  Input helpers

static void
s_in_raw (fx_t *fx, const char *from, zmsg_t *msg)
{
    zframe_t *rid = zframe_new (from, strlen (from));
    core_handle (fx->core, rid, &msg, fx->now);
    assert_null (msg);
    zframe_destroy (&rid);
    s_drain (fx);
}

static void
s_in (fx_t *fx, const char *from, Wire__Envelope *env, const char *payload)
{
    zmsg_t *msg = zmsg_new ();
    zframe_t *frame = wire_envelope_encode (env);
    zmsg_append (msg, &frame);
    if (payload)
        zmsg_addstr (msg, payload);
    s_in_raw (fx, from, msg);
}

static void
s_keep_alive (fx_t *fx, const char *from)
{
    for (size_t i = 0; i < fx->n_live; i++)
        if (streq (fx->live[i], from))
            return;
    assert_true (fx->n_live < MAX_LIVE);
    fx->live[fx->n_live++] = strdup (from);
}

static void
s_forget (fx_t *fx, const char *from)
{
    for (size_t i = 0; i < fx->n_live; i++)
        if (streq (fx->live[i], from)) {
            free (fx->live[i]);
            fx->live[i] = fx->live[--fx->n_live];
            return;
        }
}

static void
s_ping (fx_t *fx, const char *from)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__PING;
    env.edge_id = (char *) from;
    s_in (fx, from, &env, NULL);
}

//  Advance the clock by `ms`, in steps of at most 500 ms, pinging every
//  live edge and ticking at each step.
static void
s_advance (fx_t *fx, int64_t ms)
{
    while (ms > 0) {
        int64_t step = ms < 500 ? ms : 500;
        fx->now += step;
        ms -= step;
        for (size_t i = 0; i < fx->n_live; i++)
            s_ping (fx, fx->live[i]);
        core_tick (fx->core, fx->now);
        s_drain (fx);
    }
}

//  HELLO from routing id `from` named `name` with no agents; expects
//  WELCOME.  The edge is kept alive by s_advance.
static void
s_hello (fx_t *fx, const char *from, const char *name)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__HELLO;
    env.edge_id = (char *) name;
    env.incarnation = 42;
    s_in (fx, from, &env, NULL);
    EXPECT (fx, from, WELCOME, 0, ANY);
    s_keep_alive (fx, from);
}

static void
s_subscribe_send (fx_t *fx,
                  const char *from,
                  uint64_t handle,
                  const char *agent_id)
{
    Wire__AgentEntry entry = WIRE__AGENT_ENTRY__INIT;
    entry.handle = handle;
    entry.agent_id = (char *) agent_id;
    entry.connected_at_unix_ms = 1700000000000;
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__SUBSCRIBE;
    env.agent = &entry;
    s_in (fx, from, &env, NULL);
}

//  Subscribe and expect SUBSCRIBED; returns the session.
static uint64_t
s_subscribe (fx_t *fx, const char *from, uint64_t handle, const char *agent)
{
    s_subscribe_send (fx, from, handle, agent);
    out_t *out = POP (fx, from, SUBSCRIBED, handle, ANY);
    assert_string_equal (out->env->agent_id, agent);
    uint64_t session = out->env->session;
    assert_true (session > 0);
    s_out_destroy (&out);
    return session;
}

static void
s_unsubscribe (fx_t *fx, const char *from, uint64_t handle, uint64_t session)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__UNSUBSCRIBE;
    env.handle = handle;
    env.session = session;
    s_in (fx, from, &env, NULL);
}

static void
s_publish_full (fx_t *fx,
                const char *from,
                uint64_t handle,
                const char *rid,
                const char *agent,
                uint32_t timeout_ms,
                uint32_t wait_ms,
                uint32_t credit,
                const char *payload)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__PUBLISH;
    env.handle = handle;
    env.request_id = (char *) rid;
    env.agent_id = (char *) agent;
    env.timeout_ms = timeout_ms;
    env.wait_ms = wait_ms;
    env.credit = credit;
    s_in (fx, from, &env, payload ? payload : "request-bytes");
}

static void
s_publish (fx_t *fx,
           const char *from,
           uint64_t handle,
           const char *rid,
           const char *agent)
{
    s_publish_full (fx, from, handle, rid, agent, 0, 0, 8, NULL);
}

//  Command with handle and request id only: CANCEL, BIND.
static void
s_simple (
    fx_t *fx, const char *from, int command, uint64_t handle, const char *rid)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = command;
    env.handle = handle;
    env.request_id = (char *) rid;
    s_in (fx, from, &env, NULL);
}

static void
s_response (fx_t *fx,
            const char *from,
            uint64_t handle,
            const char *rid,
            const char *payload)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__RESPONSE;
    env.handle = handle;
    env.request_id = (char *) rid;
    s_in (fx, from, &env, payload);
}

static void
s_end (fx_t *fx,
       const char *from,
       uint64_t handle,
       const char *rid,
       int status,
       const char *message)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__END;
    env.handle = handle;
    env.request_id = (char *) rid;
    env.status = status;
    env.message = (char *) message;
    s_in (fx, from, &env, NULL);
}

static void
s_credit (fx_t *fx,
          const char *from,
          uint64_t handle,
          const char *rid,
          uint32_t credit)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__CREDIT;
    env.handle = handle;
    env.request_id = (char *) rid;
    env.credit = credit;
    s_in (fx, from, &env, NULL);
}

//  Standard cast: client edge C, agent edge A (agent dev-1, stream 1),
//  responder edge R.
static uint64_t
s_cast (fx_t *fx)
{
    s_hello (fx, "C", "client-edge");
    s_hello (fx, "A", "agent-edge");
    s_hello (fx, "R", "responder-edge");
    return s_subscribe (fx, "A", 1, "dev-1");
}

//  Publish r1 from C handle 10 to dev-1 and bind it from R handle 20.
static void
s_publish_and_bind (fx_t *fx, uint32_t credit, uint32_t timeout_ms)
{
    s_publish_full (fx, "C", 10, "r1", "dev-1", timeout_ms, 0, credit, NULL);
    out_t *out = POP (fx, "A", DELIVER, 1, ANY);
    assert_string_equal (out->env->request_id, "r1");
    assert_non_null (out->payload);
    assert_true (zframe_streq (out->payload, "request-bytes"));
    s_out_destroy (&out);
    s_simple (fx, "R", WIRE__COMMAND__BIND, 20, "r1");
    out = POP (fx, "R", BOUND, 20, ANY);
    assert_int_equal (out->env->credit, credit);
    s_out_destroy (&out);
}


//  ---------------------------------------------------------------------
//  Happy path, sessions, supersession

static void
test_happy_path (void **state)
{
    fx_t *fx = (fx_t *) *state;
    uint64_t session = s_cast (fx);
    assert_true (session >= 1000);
    assert_int_equal (core_agent_count (fx->core), 1);
    assert_int_equal (core_edge_count (fx->core), 3);
    s_publish_and_bind (fx, 4, 0);
    assert_int_equal (core_request_count (fx->core), 1);
    s_response (fx, "R", 20, "r1", "answer-1");
    out_t *out = POP (fx, "C", REPLY, 10, ANY);
    assert_true (zframe_streq (out->payload, "answer-1"));
    s_out_destroy (&out);
    s_response (fx, "R", 20, "r1", "answer-2");
    EXPECT (fx, "C", REPLY, 10, ANY);
    s_end (fx, "R", 20, "r1", OK, "");
    EXPECT (fx, "C", FINISH, 10, OK);
    EXPECT_NONE (fx); //  no ABORT, no FINISH to responder
    s_assert_empty (fx);
    assert_int_equal (core_stats (fx->core)->requests_by_status[OK], 1);
    assert_int_equal (core_stats (fx->core)->responses_routed, 2);
    assert_int_equal (s_events (fx, "request.start", "\"request_id\":\"r1\""),
                      1);
    assert_int_equal (s_events (fx, "request.end", "\"code\":\"OK\""), 1);
    assert_int_equal (s_events (fx, "request.end", "\"bytes_to_client\":16"),
                      1);
    assert_int_equal (
        s_events (fx, "request.end", "\"client_edge\":\"client-edge\""), 1);
    assert_int_equal (s_events (fx, "agent.up", "\"agent_id\":\"dev-1\""), 1);
    assert_int_equal (s_events (fx, "edge.up", NULL), 3);
    //  The agent stays connected; its stream ends
    s_unsubscribe (fx, "A", 1, session);
    assert_int_equal (core_agent_count (fx->core), 0);
    assert_int_equal (s_events (fx, "agent.down", NULL), 1);
}

//  The id hash's key may change only while the core holds nothing hashed
//  by the old one.
static void
test_hash_key_only_when_empty (void **state)
{
    fx_t *fx = (fx_t *) *state;
    byte key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    assert_int_equal (core_set_hash_key (fx->core, key), 0);
    uint64_t session = s_cast (fx);
    assert_int_equal (core_set_hash_key (fx->core, key), -1);
    s_publish_and_bind (fx, 4, 0);
    s_end (fx, "R", 20, "r1", OK, "");
    EXPECT (fx, "C", FINISH, 10, OK);
    assert_int_equal (core_set_hash_key (fx->core, key), -1);
    s_unsubscribe (fx, "A", 1, session);
    s_assert_empty (fx);
    assert_int_equal (core_set_hash_key (fx->core, key), 0);
}

static void
test_reconnect_race_subscribe_first (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_hello (fx, "A", "a");
    s_hello (fx, "B", "b");
    s_hello (fx, "C", "c");
    uint64_t old_session = s_subscribe (fx, "A", 1, "dev-1");
    //  The device reconnects through B before A notices the old stream died
    s_subscribe_send (fx, "B", 7, "dev-1");
    EXPECT (fx, "A", KICK, 1, ABORTED);
    out_t *out = POP (fx, "B", SUBSCRIBED, 7, ANY);
    uint64_t new_session = out->env->session;
    s_out_destroy (&out);
    assert_true (new_session > old_session);
    //  Then A's disconnect of the old stream arrives: ignored
    s_unsubscribe (fx, "A", 1, old_session);
    EXPECT_NONE (fx);
    assert_int_equal (core_agent_count (fx->core), 1);
    s_publish (fx, "C", 10, "r1", "dev-1");
    out = POP (fx, "B", DELIVER, 7, ANY);
    assert_int_equal (out->env->session, new_session);
    s_out_destroy (&out);
    assert_int_equal (s_events (fx, "agent.superseded", NULL), 1);
    assert_int_equal (core_stats (fx->core)->agents_superseded, 1);
}

static void
test_reconnect_race_unsubscribe_first (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_hello (fx, "A", "a");
    s_hello (fx, "B", "b");
    s_hello (fx, "C", "c");
    uint64_t old_session = s_subscribe (fx, "A", 1, "dev-1");
    s_unsubscribe (fx, "A", 1, old_session);
    assert_int_equal (core_agent_count (fx->core), 0);
    uint64_t new_session = s_subscribe (fx, "B", 7, "dev-1");
    assert_true (new_session > old_session);
    EXPECT_NONE (fx); //  nothing to kick
    //  A duplicate late disconnect of the old session is still ignored
    s_unsubscribe (fx, "A", 1, old_session);
    assert_int_equal (core_agent_count (fx->core), 1);
    s_publish (fx, "C", 10, "r1", "dev-1");
    EXPECT (fx, "B", DELIVER, 7, ANY);
    //  On the same edge too: a new stream, then the old one's disconnect
    s_subscribe_send (fx, "B", 8, "dev-1");
    EXPECT (fx, "B", KICK, 7, ABORTED);
    out_t *out = POP (fx, "B", SUBSCRIBED, 8, ANY);
    assert_true (out->env->session > new_session);
    s_out_destroy (&out);
    s_unsubscribe (fx, "B", 7, new_session);
    assert_int_equal (core_agent_count (fx->core), 1);
    s_simple (fx, "C", WIRE__COMMAND__CANCEL, 10, "r1");
    EXPECT (fx, "B", ABORT, 8, ANY); //  the request moved to stream 8
    s_assert_empty (fx);
}

static void
test_supersession_moves_requests (void **state)
{
    fx_t *fx = (fx_t *) *state;
    uint64_t old_session = s_cast (fx);
    s_hello (fx, "B", "b");
    s_publish (fx, "C", 10, "r1", "dev-1");
    EXPECT (fx, "A", DELIVER, 1, ANY);
    s_publish (fx, "C", 11, "r2", "dev-1");
    EXPECT (fx, "A", DELIVER, 1, ANY);
    //  Superseded from B: the old stream is kicked, requests stay
    s_subscribe_send (fx, "B", 5, "dev-1");
    out_t *out = POP (fx, "A", KICK, 1, ABORTED);
    assert_int_equal (out->env->session, old_session);
    assert_string_equal (out->env->message, "superseded");
    s_out_destroy (&out);
    out = POP (fx, "B", SUBSCRIBED, 5, ANY);
    uint64_t new_session = out->env->session;
    s_out_destroy (&out);
    assert_int_equal (core_request_count (fx->core), 2);
    //  The old stream's late UNSUBSCRIBE fails nothing
    s_unsubscribe (fx, "A", 1, old_session);
    EXPECT_NONE (fx);
    assert_int_equal (core_request_count (fx->core), 2);
    //  The device (now on B) answers r1 ...
    s_simple (fx, "R", WIRE__COMMAND__BIND, 20, "r1");
    EXPECT (fx, "R", BOUND, 20, ANY);
    s_end (fx, "R", 20, "r1", OK, "");
    EXPECT (fx, "C", FINISH, 10, OK);
    //  ... and r2's cancel notice goes to the newer stream
    s_simple (fx, "C", WIRE__COMMAND__CANCEL, 11, "r2");
    out = POP (fx, "B", ABORT, 5, ANY);
    assert_int_equal (out->env->session, new_session);
    assert_string_equal (out->env->request_id, "r2");
    s_out_destroy (&out);
    EXPECT_NONE (fx);
    s_assert_empty (fx);
}


//  ---------------------------------------------------------------------
//  Every way a request ends

//  Requests the superseded stream's edge never wrote to the device come
//  back as END from that stream: they go down the newer stream again.
static void
test_superseded_before_delivery (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_cast (fx);
    s_hello (fx, "B", "b");
    s_publish (fx, "C", 10, "r1", "dev-1");
    EXPECT (fx, "A", DELIVER, 1, ANY);
    s_publish (fx, "C", 11, "r2", "dev-1");
    EXPECT (fx, "A", DELIVER, 1, ANY);
    s_publish (fx, "C", 12, "r3", "dev-1");
    EXPECT (fx, "A", DELIVER, 1, ANY);
    s_subscribe_send (fx, "B", 5, "dev-1");
    EXPECT (fx, "A", KICK, 1, ABORTED);
    out_t *out = POP (fx, "B", SUBSCRIBED, 5, ANY);
    uint64_t new_session = out->env->session;
    s_out_destroy (&out);
    //  r2 was bound before the END arrives: the END is not accepted
    s_simple (fx, "R", WIRE__COMMAND__BIND, 21, "r2");
    EXPECT (fx, "R", BOUND, 21, ANY);
    //  The old edge gives back r1 and r2
    s_end (fx, "A", 1, "r1", UNAVAILABLE, "superseded before delivery");
    out = POP (fx, "B", DELIVER, 5, ANY);
    assert_string_equal (out->env->request_id, "r1");
    assert_int_equal (out->env->session, new_session);
    assert_non_null (out->payload);
    assert_true (zframe_streq (out->payload, "request-bytes"));
    s_out_destroy (&out);
    uint64_t unexpected = core_stats (fx->core)->unexpected;
    s_end (fx, "A", 1, "r2", UNAVAILABLE, "superseded before delivery");
    EXPECT_NONE (fx);
    //  A second END from the old stream for r1 is stale now
    s_end (fx, "A", 1, "r1", UNAVAILABLE, "superseded before delivery");
    EXPECT_NONE (fx);
    assert_int_equal (core_stats (fx->core)->unexpected, unexpected + 2);
    assert_int_equal (core_request_count (fx->core), 3);
    //  The device answers r1 through its new stream
    s_simple (fx, "R", WIRE__COMMAND__BIND, 20, "r1");
    EXPECT (fx, "R", BOUND, 20, ANY);
    s_response (fx, "R", 20, "r1", "answer");
    EXPECT (fx, "C", REPLY, 10, ANY);
    s_end (fx, "R", 20, "r1", OK, "");
    EXPECT (fx, "C", FINISH, 10, OK);
    //  The new stream's queue is full for r3: that END ends it
    s_end (fx, "A", 1, "r3", UNAVAILABLE, "superseded before delivery");
    EXPECT (fx, "B", DELIVER, 5, ANY);
    s_end (fx, "B", 5, "r3", RESOURCE_EXHAUSTED, "agent queue full");
    EXPECT (fx, "C", FINISH, 12, RESOURCE_EXHAUSTED);
    EXPECT_NONE (fx);
    s_end (fx, "R", 21, "r2", OK, "");
    EXPECT (fx, "C", FINISH, 11, OK);
    EXPECT_NONE (fx);
    s_assert_empty (fx);
    //  On the same edge: stream 5 superseded by stream 6
    s_publish (fx, "C", 13, "r4", "dev-1");
    EXPECT (fx, "B", DELIVER, 5, ANY);
    s_subscribe_send (fx, "B", 6, "dev-1");
    EXPECT (fx, "B", KICK, 5, ABORTED);
    EXPECT (fx, "B", SUBSCRIBED, 6, ANY);
    s_end (fx, "B", 5, "r4", UNAVAILABLE, "superseded before delivery");
    EXPECT (fx, "B", DELIVER, 6, ANY);
    //  ... and the stream ends with no newer one: r4 fails at once
    s_unsubscribe (fx, "B", 6, 0);
    EXPECT (fx, "C", FINISH, 13, UNAVAILABLE);
    s_end (fx, "B", 6, "r4", UNAVAILABLE, "superseded before delivery");
    EXPECT_NONE (fx);
    s_assert_empty (fx);
}

static void
test_end_agent_error (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_cast (fx);
    s_publish_and_bind (fx, 4, 0);
    s_end (fx, "R", 20, "r1", 13, "it broke");
    out_t *out = POP (fx, "C", FINISH, 10, 13);
    assert_string_equal (out->env->message, "it broke");
    s_out_destroy (&out);
    EXPECT_NONE (fx);
    s_assert_empty (fx);
    //  An out-of-range status becomes UNKNOWN; once bound, only the
    //  responder may end the request, not the agent's stream
    s_publish_and_bind (fx, 4, 0);
    uint64_t unexpected = core_stats (fx->core)->unexpected;
    s_end (fx, "A", 1, "r1", RESOURCE_EXHAUSTED, "queue full");
    EXPECT_NONE (fx);
    assert_int_equal (core_stats (fx->core)->unexpected, unexpected + 1);
    s_end (fx, "R", 20, "r1", 99, "");
    EXPECT (fx, "C", FINISH, 10, UNKNOWN);
    EXPECT_NONE (fx);
    //  The agent's stream may end a request too (its queue was full)
    s_publish (fx, "C", 12, "r3", "dev-1");
    EXPECT (fx, "A", DELIVER, 1, ANY);
    s_end (fx, "A", 1, "r3", RESOURCE_EXHAUSTED, "queue full");
    EXPECT (fx, "C", FINISH, 12, RESOURCE_EXHAUSTED);
    EXPECT_NONE (fx);
    s_assert_empty (fx);
}

static void
test_end_client_cancel (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_cast (fx);
    s_publish_and_bind (fx, 4, 0);
    s_response (fx, "R", 20, "r1", "x");
    EXPECT (fx, "C", REPLY, 10, ANY);
    //  Only the client call may cancel
    s_simple (fx, "R", WIRE__COMMAND__CANCEL, 10, "r1");
    EXPECT_NONE (fx);
    s_simple (fx, "C", WIRE__COMMAND__CANCEL, 10, "r1");
    EXPECT (fx, "A", ABORT, 1, ANY);
    EXPECT (fx, "R", FINISH, 20, CANCELLED);
    EXPECT_NONE (fx); //  not the client itself
    s_assert_empty (fx);
    //  Late messages for it are harmless
    s_response (fx, "R", 20, "r1", "late");
    EXPECT (fx, "R", FINISH, 20, NOT_FOUND);
    s_end (fx, "R", 20, "r1", OK, "");
    s_simple (fx, "C", WIRE__COMMAND__CANCEL, 10, "r1");
    s_credit (fx, "C", 10, "r1", 1);
    EXPECT_NONE (fx);
    assert_int_equal (core_stats (fx->core)->requests_by_status[CANCELLED], 1);
}

static void
test_end_first_response_timeout (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_cast (fx);
    s_publish_and_bind (fx, 4, 0);
    assert_int_equal (core_next_due (fx->core) <= fx->now + 10000, true);
    s_advance (fx, 9999);
    EXPECT_NONE (fx);
    s_advance (fx, 1);
    EXPECT (fx, "C", FINISH, 10, DEADLINE_EXCEEDED);
    EXPECT (fx, "A", ABORT, 1, ANY);
    EXPECT (fx, "R", FINISH, 20, DEADLINE_EXCEEDED);
    EXPECT_NONE (fx);
    s_assert_empty (fx);
}

static void
test_end_idle_timeout (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_cast (fx);
    s_publish_and_bind (fx, 4, 0);
    s_advance (fx, 5000);
    s_response (fx, "R", 20, "r1", "x");
    EXPECT (fx, "C", REPLY, 10, ANY);
    s_advance (fx, 29000); //  past first_response: no matter
    s_response (fx, "R", 20, "r1", "y");
    EXPECT (fx, "C", REPLY, 10, ANY);
    s_advance (fx, 29999);
    EXPECT_NONE (fx);
    s_advance (fx, 1);
    EXPECT (fx, "C", FINISH, 10, DEADLINE_EXCEEDED);
    EXPECT (fx, "A", ABORT, 1, ANY);
    EXPECT (fx, "R", FINISH, 20, DEADLINE_EXCEEDED);
    EXPECT_NONE (fx);
    s_assert_empty (fx);
}

static void
test_end_client_deadline (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_cast (fx);
    s_publish_and_bind (fx, 4, 1500);
    s_response (fx, "R", 20, "r1", "x");
    EXPECT (fx, "C", REPLY, 10, ANY);
    s_advance (fx, 1499);
    EXPECT_NONE (fx);
    s_advance (fx, 1);
    EXPECT (fx, "C", FINISH, 10, DEADLINE_EXCEEDED);
    EXPECT (fx, "A", ABORT, 1, ANY);
    EXPECT (fx, "R", FINISH, 20, DEADLINE_EXCEEDED);
    EXPECT_NONE (fx);
    s_assert_empty (fx);
}

static void
test_end_max_timeout_cap (void **state)
{
    core_config_t cfg;
    core_config_defaults (&cfg);
    cfg.stats_interval_ms = 0;
    cfg.max_timeout_ms = 2000;
    fx_t *fx = s_fx_new (&cfg);
    s_cast (fx);
    s_publish_full (fx, "C", 10, "r1", "dev-1", 0, 0, 1, NULL);
    EXPECT (fx, "A", DELIVER, 1, ANY);
    s_advance (fx, 2000);
    EXPECT (fx, "C", FINISH, 10, DEADLINE_EXCEEDED);
    EXPECT (fx, "A", ABORT, 1, ANY);
    s_assert_empty (fx);
    s_fx_destroy (&fx);
}

static void
test_end_wait_expiry (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_hello (fx, "C", "c");
    s_publish_full (fx, "C", 10, "r1", "dev-9", 0, 2000, 1, NULL);
    EXPECT_NONE (fx);
    assert_int_equal (core_waiting_count (fx->core), 1);
    assert_int_equal (core_request_count (fx->core), 1);
    s_advance (fx, 1999);
    EXPECT_NONE (fx);
    s_advance (fx, 1);
    EXPECT (fx, "C", FINISH, 10, NOT_FOUND);
    EXPECT_NONE (fx);
    s_assert_empty (fx);
    //  No wait: NOT_FOUND at once
    s_publish (fx, "C", 11, "r2", "dev-9");
    EXPECT (fx, "C", FINISH, 11, NOT_FOUND);
    //  The wait is capped by max_wait_ms
    s_publish_full (fx, "C", 12, "r3", "dev-9", 0, 600000, 1, NULL);
    s_advance (fx, 60000);
    EXPECT (fx, "C", FINISH, 12, NOT_FOUND);
    s_assert_empty (fx);
    //  Client cancels while parked: nobody else to tell
    s_publish_full (fx, "C", 13, "r4", "dev-9", 0, 5000, 1, NULL);
    s_simple (fx, "C", WIRE__COMMAND__CANCEL, 13, "r4");
    EXPECT_NONE (fx);
    s_assert_empty (fx);
}

static void
test_wait_for_agent_delivered (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_hello (fx, "C", "c");
    s_hello (fx, "A", "a");
    s_publish_full (fx, "C", 10, "r1", "dev-1", 0, 5000, 1, "one");
    s_publish_full (fx, "C", 11, "r2", "dev-1", 0, 5000, 1, "two");
    s_publish_full (fx, "C", 12, "r3", "dev-2", 0, 5000, 1, "three");
    assert_int_equal (core_waiting_count (fx->core), 3);
    s_advance (fx, 1000);
    s_subscribe_send (fx, "A", 1, "dev-1");
    EXPECT (fx, "A", SUBSCRIBED, 1, ANY);
    out_t *out = POP (fx, "A", DELIVER, 1, ANY);
    assert_string_equal (out->env->request_id, "r1");
    assert_true (zframe_streq (out->payload, "one"));
    s_out_destroy (&out);
    out = POP (fx, "A", DELIVER, 1, ANY);
    assert_string_equal (out->env->request_id, "r2");
    s_out_destroy (&out);
    EXPECT_NONE (fx);
    assert_int_equal (core_waiting_count (fx->core), 1);
    //  Delivered: the wait no longer applies, the first response does
    s_advance (fx, 5000);
    EXPECT (fx, "C", FINISH, 12, NOT_FOUND);
    EXPECT_NONE (fx);
    s_end (fx, "A", 1, "r1", OK, "");
    EXPECT (fx, "C", FINISH, 10, OK);
    s_advance (fx, 5000);
    EXPECT (fx, "C", FINISH, 11, DEADLINE_EXCEEDED);
    EXPECT (fx, "A", ABORT, 1, ANY);
    s_assert_empty (fx);
}

static void
test_agent_disconnect (void **state)
{
    fx_t *fx = (fx_t *) *state;
    uint64_t session = s_cast (fx);
    //  r1 streaming, r2 bound, r3 delivered only
    s_publish_and_bind (fx, 4, 0);
    s_response (fx, "R", 20, "r1", "x");
    EXPECT (fx, "C", REPLY, 10, ANY);
    s_publish (fx, "C", 11, "r2", "dev-1");
    EXPECT (fx, "A", DELIVER, 1, ANY);
    s_simple (fx, "R", WIRE__COMMAND__BIND, 21, "r2");
    EXPECT (fx, "R", BOUND, 21, ANY);
    s_publish (fx, "C", 12, "r3", "dev-1");
    EXPECT (fx, "A", DELIVER, 1, ANY);
    //  The agent's stream ends: r3 fails now, r1 and r2 go on
    s_unsubscribe (fx, "A", 1, session);
    EXPECT (fx, "C", FINISH, 12, UNAVAILABLE);
    EXPECT_NONE (fx);
    assert_int_equal (core_request_count (fx->core), 2);
    s_response (fx, "R", 20, "r1", "y");
    EXPECT (fx, "C", REPLY, 10, ANY);
    s_end (fx, "R", 20, "r1", OK, "");
    EXPECT (fx, "C", FINISH, 10, OK);
    //  Cancelling r2 tells the responder, but no agent is left to ABORT
    s_simple (fx, "C", WIRE__COMMAND__CANCEL, 11, "r2");
    EXPECT (fx, "R", FINISH, 21, CANCELLED);
    EXPECT_NONE (fx);
    s_assert_empty (fx);
    assert_int_equal (core_agent_count (fx->core), 0);
}

static void
test_client_edge_dead (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_cast (fx);
    s_publish_and_bind (fx, 4, 0);
    s_publish (fx, "C", 11, "r2", "dev-1");
    EXPECT (fx, "A", DELIVER, 1, ANY);
    s_publish_full (fx, "C", 12, "r3", "dev-7", 0, 5000, 1, NULL);
    //  C goes silent: dead after the liveness window
    s_forget (fx, "C");
    s_advance (fx, 2500);
    EXPECT_NONE (fx);
    s_advance (fx, 500);
    EXPECT (fx, "A", ABORT, 1, ANY);
    EXPECT (fx, "R", FINISH, 20, CANCELLED);
    EXPECT (fx, "A", ABORT, 1, ANY);
    EXPECT_NONE (fx);
    s_assert_empty (fx);
    assert_int_equal (core_edge_count (fx->core), 2);
    assert_int_equal (core_stats (fx->core)->edges_lost, 1);
    assert_int_equal (s_events (fx, "edge.down", "client-edge"), 1);
    assert_int_equal (core_stats (fx->core)->requests_by_status[CANCELLED], 3);
    //  The dead edge is unknown now: PUBLISH gets UNAVAILABLE and a PONG
    size_t pongs = fx->pongs;
    s_publish (fx, "C", 13, "r4", "dev-1");
    EXPECT (fx, "C", FINISH, 13, UNAVAILABLE);
    assert_int_equal (fx->pongs, pongs + 1);
    assert_int_equal (core_stats (fx->core)->unknown_edge, 1);
}

static void
test_responder_edge_dead (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_cast (fx);
    s_publish_and_bind (fx, 4, 0);
    zframe_t *rid = zframe_new ("R", 1);
    core_edge_unreachable (fx->core, rid, fx->now);
    zframe_destroy (&rid);
    s_drain (fx);
    s_forget (fx, "R");
    EXPECT (fx, "C", FINISH, 10, UNAVAILABLE);
    EXPECT (fx, "A", ABORT, 1, ANY);
    EXPECT_NONE (fx);
    s_assert_empty (fx);
    assert_int_equal (core_edge_count (fx->core), 2);
}

static void
test_agent_edge_dead (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_cast (fx);
    s_publish_and_bind (fx, 4, 0);          //  r1 bound from R: goes on
    s_publish (fx, "C", 11, "r2", "dev-1"); //  r2 delivered: fails
    EXPECT (fx, "A", DELIVER, 1, ANY);
    //  A restarts: once A has been silent for over two heartbeats, a new
    //  incarnation (routing id A2) replaces it at once
    s_forget (fx, "A");
    s_advance (fx, 2500);
    EXPECT_NONE (fx);
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__HELLO;
    env.edge_id = "agent-edge";
    env.incarnation = 43;
    s_in (fx, "A2", &env, NULL);
    s_keep_alive (fx, "A2");
    EXPECT (fx, "C", FINISH, 11, UNAVAILABLE);
    EXPECT (fx, "A2", WELCOME, ANY, ANY);
    EXPECT_NONE (fx);
    assert_int_equal (core_agent_count (fx->core), 0);
    assert_int_equal (s_events (fx, "agent.down", "edge lost"), 1);
    s_end (fx, "R", 20, "r1", OK, "");
    EXPECT (fx, "C", FINISH, 10, OK);
    EXPECT_NONE (fx);
    s_assert_empty (fx);
    assert_int_equal (core_edge_count (fx->core), 3);
}

static Tether__V1__ListAgentsResponse *
s_list (fx_t *fx, const char *prefix, uint32_t limit);

static void
s_bye (fx_t *fx, const char *from)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__BYE;
    env.edge_id = (char *) from;
    env.incarnation = 42;
    s_in (fx, from, &env, NULL);
}

static void
s_hello_inc (fx_t *fx, const char *from, const char *name, uint64_t incarnation)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__HELLO;
    env.edge_id = (char *) name;
    env.incarnation = incarnation;
    s_in (fx, from, &env, NULL);
}

//  Two live edges with the same name do not replace each other: the
//  second is known as name#2; a reconnect of the same incarnation, or a
//  new incarnation after the old one went silent, takes the name over.
static void
test_edge_name_conflict (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_hello (fx, "C", "client-edge");
    s_hello_inc (fx, "A", "edge", 1);
    EXPECT (fx, "A", WELCOME, ANY, ANY);
    s_keep_alive (fx, "A");
    s_subscribe (fx, "A", 1, "dev-1");
    s_hello_inc (fx, "B", "edge", 2);
    EXPECT (fx, "B", WELCOME, ANY, ANY);
    s_keep_alive (fx, "B");
    s_subscribe (fx, "B", 1, "dev-2");
    assert_int_equal (core_stats (fx->core)->edge_name_conflicts, 1);
    assert_int_equal (core_edge_count (fx->core), 3);
    assert_int_equal (s_events (fx, "edge.up", "\"edge\":\"edge#2\""), 1);
    //  Both keep talking, HELLO again: nothing flaps
    for (int i = 0; i < 3; i++) {
        s_hello_inc (fx, "A", "edge", 1);
        EXPECT (fx, "A", WELCOME, ANY, ANY);
        s_hello_inc (fx, "B", "edge", 2);
        EXPECT (fx, "B", WELCOME, ANY, ANY);
        s_advance (fx, 1000);
    }
    EXPECT_NONE (fx);
    assert_int_equal (core_edge_count (fx->core), 3);
    assert_int_equal (core_agent_count (fx->core), 0); //  HELLOs listed none
    assert_int_equal (core_stats (fx->core)->edge_name_conflicts, 1);
    assert_int_equal (core_stats (fx->core)->edges_lost, 0);
    Tether__V1__ListAgentsResponse *list;
    s_subscribe (fx, "B", 1, "dev-2");
    list = s_list (fx, "", 0);
    assert_int_equal (list->n_agents, 1);
    assert_string_equal (list->agents[0]->edge, "edge#2");
    tether__v1__list_agents_response__free_unpacked (list, NULL);
    //  A third one is edge#3
    s_hello_inc (fx, "D", "edge", 3);
    EXPECT (fx, "D", WELCOME, ANY, ANY);
    assert_int_equal (s_events (fx, "edge.up", "\"edge\":\"edge#3\""), 1);
    s_bye (fx, "D");
    //  A's incarnation reconnects under a new routing id: A goes at once
    s_forget (fx, "A");
    s_hello_inc (fx, "A2", "edge", 1);
    EXPECT (fx, "A2", WELCOME, ANY, ANY);
    s_keep_alive (fx, "A2");
    assert_int_equal (core_stats (fx->core)->edges_lost, 2);
    assert_int_equal (core_edge_count (fx->core), 3);
    //  B (edge#2) restarts: it asks for "edge", held by a live A2
    s_forget (fx, "B");
    s_advance (fx, 2500);
    s_hello_inc (fx, "B2", "edge", 4);
    EXPECT (fx, "B2", WELCOME, ANY, ANY);
    s_keep_alive (fx, "B2");
    assert_int_equal (core_stats (fx->core)->edge_name_conflicts, 3);
    //  A2 dies; a new incarnation after its silence takes the name
    s_forget (fx, "A2");
    s_advance (fx, 2500);
    s_hello_inc (fx, "A3", "edge", 5);
    EXPECT (fx, "A3", WELCOME, ANY, ANY);
    s_keep_alive (fx, "A3");
    assert_int_equal (core_stats (fx->core)->edge_name_conflicts, 3);
    assert_int_equal (s_events (fx, "edge.down",
                                "\"reason\":\"replaced by a new "
                                "incarnation\""),
                      1);
    s_advance (fx, 3000);
    EXPECT_NONE (fx);
}

//  BYE: the edge is forgotten at once, as a dead edge is after the
//  liveness window, without the wait.
static void
test_edge_bye (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_cast (fx);
    s_publish_and_bind (fx, 4, 0);          //  r1 bound from R: goes on
    s_publish (fx, "C", 11, "r2", "dev-1"); //  r2 delivered: fails
    EXPECT (fx, "A", DELIVER, 1, ANY);
    //  The agents' edge leaves: dev-1 is gone now, not 3 s later
    s_bye (fx, "A");
    s_forget (fx, "A");
    EXPECT (fx, "C", FINISH, 11, UNAVAILABLE);
    EXPECT_NONE (fx);
    assert_int_equal (core_agent_count (fx->core), 0);
    assert_int_equal (core_edge_count (fx->core), 2);
    assert_int_equal (s_events (fx, "edge.down", "said goodbye"), 1);
    assert_int_equal (s_events (fx, "agent.down", "edge lost"), 1);
    //  ListAgents no longer shows it
    Tether__V1__ListAgentsResponse *list = s_list (fx, "", 0);
    assert_int_equal (list->n_agents, 0);
    tether__v1__list_agents_response__free_unpacked (list, NULL);
    //  The client's edge leaves: its requests end CANCELLED
    s_bye (fx, "C");
    s_forget (fx, "C");
    EXPECT (fx, "R", FINISH, 20, CANCELLED);
    EXPECT_NONE (fx);
    assert_int_equal (core_edge_count (fx->core), 1);
    //  A second BYE, or one from an edge never seen: ignored, no PONG
    size_t pongs = fx->pongs;
    s_bye (fx, "C");
    s_bye (fx, "X");
    EXPECT_NONE (fx);
    assert_int_equal (fx->pongs, pongs);
    assert_int_equal (core_stats (fx->core)->malformed, 0);
    //  The responder's edge leaves too: nothing is left
    s_bye (fx, "R");
    s_forget (fx, "R");
    EXPECT_NONE (fx);
    s_assert_empty (fx);
    assert_int_equal (core_edge_count (fx->core), 0);
    assert_int_equal (core_stats (fx->core)->edges_lost, 3);
}


//  ---------------------------------------------------------------------
//  Credit

static void
test_credit (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_cast (fx);
    s_publish_and_bind (fx, 2, 0);
    s_response (fx, "R", 20, "r1", "a");
    EXPECT (fx, "C", REPLY, 10, ANY);
    s_response (fx, "R", 20, "r1", "b");
    EXPECT (fx, "C", REPLY, 10, ANY);
    //  Zero credit: the idle timer is paused, the client is the slow one
    assert_int_equal (core_timer_count (fx->core), 0);
    s_advance (fx, 100000);
    EXPECT_NONE (fx);
    assert_int_equal (core_request_count (fx->core), 1);
    //  The client writes one: GRANT 1 to the responder, idle runs again
    s_credit (fx, "C", 10, "r1", 1);
    out_t *out = POP (fx, "R", GRANT, 20, ANY);
    assert_int_equal (out->env->credit, 1);
    s_out_destroy (&out);
    assert_int_equal (core_timer_count (fx->core), 1);
    s_response (fx, "R", 20, "r1", "c");
    EXPECT (fx, "C", REPLY, 10, ANY);
    //  Beyond the credit: the request ends RESOURCE_EXHAUSTED
    s_response (fx, "R", 20, "r1", "d");
    EXPECT (fx, "C", FINISH, 10, RESOURCE_EXHAUSTED);
    EXPECT (fx, "A", ABORT, 1, ANY);
    EXPECT (fx, "R", FINISH, 20, RESOURCE_EXHAUSTED);
    EXPECT_NONE (fx);
    s_assert_empty (fx);
}

static void
test_credit_before_bind_and_cap (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_cast (fx);
    //  Credit over the cap is clamped at PUBLISH
    s_publish_full (fx, "C", 10, "r1", "dev-1", 0, 0, 5000, NULL);
    EXPECT (fx, "A", DELIVER, 1, ANY);
    s_simple (fx, "R", WIRE__COMMAND__BIND, 20, "r1");
    out_t *out = POP (fx, "R", BOUND, 20, ANY);
    assert_int_equal (out->env->credit, 1024);
    s_out_destroy (&out);
    s_credit (fx, "C", 10, "r1", 5); //  full window: nothing
    EXPECT_NONE (fx);
    s_end (fx, "R", 20, "r1", OK, "");
    EXPECT (fx, "C", FINISH, 10, OK);
    //  Credit before the bind is carried by BOUND; no GRANT yet
    s_publish_full (fx, "C", 11, "r2", "dev-1", 0, 0, 1, NULL);
    EXPECT (fx, "A", DELIVER, 1, ANY);
    s_credit (fx, "C", 11, "r2", 3);
    EXPECT_NONE (fx);
    s_simple (fx, "R", WIRE__COMMAND__BIND, 21, "r2");
    out = POP (fx, "R", BOUND, 21, ANY);
    assert_int_equal (out->env->credit, 4);
    s_out_destroy (&out);
    s_simple (fx, "C", WIRE__COMMAND__CANCEL, 11, "r2");
    EXPECT (fx, "A", ABORT, 1, ANY);
    EXPECT (fx, "R", FINISH, 21, CANCELLED);
    s_assert_empty (fx);
}


//  ---------------------------------------------------------------------
//  Refusals and limits

static void
test_bind_refusals (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_cast (fx);
    s_simple (fx, "R", WIRE__COMMAND__BIND, 20, "nope");
    EXPECT (fx, "R", FINISH, 20, NOT_FOUND);
    s_publish_and_bind (fx, 1, 0);
    s_simple (fx, "R", WIRE__COMMAND__BIND, 21, "r1");
    EXPECT (fx, "R", FINISH, 21, ALREADY_EXISTS);
    //  The second responder cannot answer or end it
    s_response (fx, "R", 21, "r1", "x");
    s_end (fx, "R", 21, "r1", OK, "");
    EXPECT_NONE (fx);
    assert_int_equal (core_request_count (fx->core), 1);
    //  A parked request cannot be bound
    s_publish_full (fx, "C", 11, "r2", "dev-5", 0, 1000, 1, NULL);
    s_simple (fx, "R", WIRE__COMMAND__BIND, 22, "r2");
    EXPECT (fx, "R", FINISH, 22, FAILED_PRECONDITION);
    s_simple (fx, "C", WIRE__COMMAND__CANCEL, 10, "r1");
    EXPECT (fx, "A", ABORT, 1, ANY);
    EXPECT (fx, "R", FINISH, 20, CANCELLED);
    s_simple (fx, "C", WIRE__COMMAND__CANCEL, 11, "r2");
    EXPECT_NONE (fx);
    s_assert_empty (fx);
}

//  An authenticated responder (BIND with agent_id) may bind only requests
//  addressed to one of its names; a refusal leaves the request alone.
static void
test_bind_identity (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_cast (fx);
    s_publish_full (fx, "C", 10, "r1", "dev-1", 0, 0, 4, NULL);
    EXPECT (fx, "A", DELIVER, 1, ANY);
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__BIND;
    env.handle = 20;
    env.request_id = "r1";
    env.agent_id = "dev-2";
    s_in (fx, "R", &env, NULL);
    EXPECT (fx, "R", FINISH, 20, PERMISSION_DENIED);
    //  A prefix of the addressed id is not the id
    env.handle = 21;
    env.agent_id = "dev-";
    s_in (fx, "R", &env, NULL);
    EXPECT (fx, "R", FINISH, 21, PERMISSION_DENIED);
    env.handle = 22;
    env.agent_id = "dev-10,x";
    s_in (fx, "R", &env, NULL);
    EXPECT (fx, "R", FINISH, 22, PERMISSION_DENIED);
    EXPECT_NONE (fx);
    assert_int_equal (core_request_count (fx->core), 1);
    //  One of several names matches: bound
    env.handle = 23;
    env.agent_id = "other,dev-1";
    s_in (fx, "R", &env, NULL);
    out_t *out = POP (fx, "R", BOUND, 23, ANY);
    s_out_destroy (&out);
    s_response (fx, "R", 23, "r1", "answer");
    EXPECT (fx, "C", REPLY, 10, ANY);
    s_end (fx, "R", 23, "r1", OK, "");
    EXPECT (fx, "C", FINISH, 10, OK);
    EXPECT_NONE (fx);
    s_assert_empty (fx);
}

static void
test_publish_refusals (void **state)
{
    core_config_t cfg;
    core_config_defaults (&cfg);
    cfg.stats_interval_ms = 0;
    cfg.max_in_flight_per_agent = 2;
    cfg.max_payload_bytes = 16;
    cfg.max_requests = 3;
    fx_t *fx = s_fx_new (&cfg);
    s_cast (fx);
    s_publish (fx, "C", 10, "r1", "dev-1");
    EXPECT (fx, "A", DELIVER, 1, ANY);
    //  Duplicate id: refused, the original untouched
    s_publish (fx, "C", 11, "r1", "dev-1");
    EXPECT (fx, "C", FINISH, 11, ALREADY_EXISTS);
    EXPECT_NONE (fx);
    assert_int_equal (core_request_count (fx->core), 1);
    s_publish (fx, "C", 12, "r2", "dev-1");
    EXPECT (fx, "A", DELIVER, 1, ANY);
    //  In-flight limit of the agent
    s_publish (fx, "C", 13, "r3", "dev-1");
    EXPECT (fx, "C", FINISH, 13, RESOURCE_EXHAUSTED);
    //  Bad ids and sizes
    s_publish (fx, "C", 14, "r4", "dev 1");
    EXPECT (fx, "C", FINISH, 14, INVALID_ARGUMENT);
    s_publish (fx, "C", 15, "r4", "");
    EXPECT (fx, "C", FINISH, 15, INVALID_ARGUMENT);
    s_publish (fx, "C", 16, "", "dev-1");
    EXPECT (fx, "C", FINISH, 16, INVALID_ARGUMENT);
    s_publish (fx, "C", 17, "has space", "dev-1");
    EXPECT (fx, "C", FINISH, 17, INVALID_ARGUMENT);
    char long_id[200];
    memset (long_id, 'x', 199);
    long_id[199] = 0;
    s_publish (fx, "C", 18, "r4", long_id);
    EXPECT (fx, "C", FINISH, 18, INVALID_ARGUMENT);
    s_publish (fx, "C", 19, long_id, "dev-1");
    EXPECT (fx, "C", FINISH, 19, INVALID_ARGUMENT);
    //  A request may exceed the limit by CORE_PAYLOAD_MARGIN (the id an
    //  edge appends), not more.
    char big[16 + CORE_PAYLOAD_MARGIN + 2];
    memset (big, 'p', sizeof big - 1);
    big[sizeof big - 1] = 0;
    s_publish_full (fx, "C", 20, "r4", "dev-2", 0, 0, 1, big);
    EXPECT (fx, "C", FINISH, 20, RESOURCE_EXHAUSTED);
    //  Table full (3 in flight at most)
    s_publish_full (fx, "C", 21, "r5", "dev-2", 0, 1000, 1, NULL);
    s_publish_full (fx, "C", 22, "r6", "dev-2", 0, 1000, 1, NULL);
    EXPECT (fx, "C", FINISH, 22, RESOURCE_EXHAUSTED);
    EXPECT_NONE (fx);
    assert_int_equal (core_request_count (fx->core), 3);
    assert_int_equal (s_events (fx, "request.end", "\"rejected\":true"), 10);
    //  Valid characters all pass
    s_subscribe (fx, "A", 2, "Az09._:@/+=-");
    //  A response message too large ends the request
    s_simple (fx, "R", WIRE__COMMAND__BIND, 30, "r1");
    EXPECT (fx, "R", BOUND, 30, ANY);
    s_response (fx, "R", 30, "r1", "0123456789abcdefg");
    EXPECT (fx, "C", FINISH, 10, RESOURCE_EXHAUSTED);
    EXPECT (fx, "A", ABORT, 1, ANY);
    EXPECT (fx, "R", FINISH, 30, RESOURCE_EXHAUSTED);
    s_fx_destroy (&fx);
}

static void
test_subscribe_refusals (void **state)
{
    core_config_t cfg;
    core_config_defaults (&cfg);
    cfg.stats_interval_ms = 0;
    cfg.max_agents = 2;
    cfg.max_labels = 1;
    cfg.max_label_len = 4;
    fx_t *fx = s_fx_new (&cfg);
    s_hello (fx, "A", "a");
    s_subscribe (fx, "A", 1, "dev-1");
    s_subscribe (fx, "A", 2, "dev-2");
    s_subscribe_send (fx, "A", 3, "dev-3");
    EXPECT (fx, "A", KICK, 3, RESOURCE_EXHAUSTED);
    //  Superseding is not a new agent: allowed at the limit
    s_subscribe_send (fx, "A", 4, "dev-2");
    EXPECT (fx, "A", KICK, 2, ABORTED);
    EXPECT (fx, "A", SUBSCRIBED, 4, ANY);
    s_subscribe_send (fx, "A", 5, "bad id!");
    EXPECT (fx, "A", KICK, 5, INVALID_ARGUMENT);
    s_subscribe_send (fx, "A", 6, "");
    EXPECT (fx, "A", KICK, 6, INVALID_ARGUMENT);
    //  Labels: too many, too long
    Wire__AgentEntry__LabelsEntry l1 = WIRE__AGENT_ENTRY__LABELS_ENTRY__INIT;
    Wire__AgentEntry__LabelsEntry l2 = WIRE__AGENT_ENTRY__LABELS_ENTRY__INIT;
    l1.key = "k";
    l1.value = "v";
    l2.key = "k2";
    l2.value = "toolong";
    Wire__AgentEntry__LabelsEntry *labels[2] = {&l1, &l2};
    Wire__AgentEntry entry = WIRE__AGENT_ENTRY__INIT;
    entry.handle = 7;
    entry.agent_id = "dev-1";
    entry.n_labels = 2;
    entry.labels = labels;
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__SUBSCRIBE;
    env.agent = &entry;
    s_in (fx, "A", &env, NULL);
    EXPECT (fx, "A", KICK, 7, INVALID_ARGUMENT);
    entry.n_labels = 1;
    labels[0] = &l2;
    s_in (fx, "A", &env, NULL);
    EXPECT (fx, "A", KICK, 7, INVALID_ARGUMENT);
    EXPECT_NONE (fx);
    assert_int_equal (core_agent_count (fx->core), 2);
    s_fx_destroy (&fx);
}


//  ---------------------------------------------------------------------
//  HELLO re-sync, liveness, LIST

static void
test_hello_resync (void **state)
{
    fx_t *fx = (fx_t *) *state;
    //  A fresh router (session base 1000) hears from edges that held
    //  agents under the previous router with sessions up to 5000
    Wire__AgentEntry e1 = WIRE__AGENT_ENTRY__INIT;
    e1.handle = 1;
    e1.agent_id = "dev-1";
    e1.session = 5000;
    Wire__AgentEntry e2 = WIRE__AGENT_ENTRY__INIT;
    e2.handle = 2;
    e2.agent_id = "dev-2";
    e2.session = 3000;
    Wire__AgentEntry e3 = WIRE__AGENT_ENTRY__INIT;
    e3.handle = 3;
    e3.agent_id = "dev-3"; //  not yet known: session 0
    Wire__AgentEntry *entries[3] = {&e3, &e1, &e2};
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__HELLO;
    env.edge_id = "a";
    env.incarnation = 9;
    env.n_agents = 3;
    env.agents = entries;
    s_in (fx, "A", &env, NULL);
    s_keep_alive (fx, "A");
    EXPECT (fx, "A", WELCOME, ANY, ANY);
    out_t *out = POP (fx, "A", SUBSCRIBED, 3, ANY);
    assert_true (out->env->session > 5000);
    uint64_t s3 = out->env->session;
    s_out_destroy (&out);
    out = POP (fx, "A", SUBSCRIBED, 1, ANY);
    assert_int_equal (out->env->session, 5000);
    s_out_destroy (&out);
    out = POP (fx, "A", SUBSCRIBED, 2, ANY);
    assert_int_equal (out->env->session, 3000);
    s_out_destroy (&out);
    assert_int_equal (core_agent_count (fx->core), 3);
    //  A new subscription gets a session above every one reported
    s_hello (fx, "C", "c");
    uint64_t s4 = s_subscribe (fx, "C", 1, "dev-4");
    assert_true (s4 > s3);
    //  Agents are routable
    s_publish (fx, "C", 10, "r1", "dev-1");
    out = POP (fx, "A", DELIVER, 1, ANY);
    assert_int_equal (out->env->session, 5000);
    s_out_destroy (&out);
    //  Another edge claims dev-2 with an older session: it loses
    Wire__AgentEntry e5 = WIRE__AGENT_ENTRY__INIT;
    e5.handle = 8;
    e5.agent_id = "dev-2";
    e5.session = 2000;
    Wire__AgentEntry *entries_b[1] = {&e5};
    env.edge_id = "b";
    env.n_agents = 1;
    env.agents = entries_b;
    s_in (fx, "B", &env, NULL);
    s_keep_alive (fx, "B");
    EXPECT (fx, "B", WELCOME, ANY, ANY);
    EXPECT (fx, "B", KICK, 8, ABORTED);
    //  ... and with a newer one: it wins, the holder is kicked
    e5.session = 4000;
    s_in (fx, "B", &env, NULL);
    EXPECT (fx, "B", WELCOME, ANY, ANY);
    EXPECT (fx, "A", KICK, 2, ABORTED);
    out = POP (fx, "B", SUBSCRIBED, 8, ANY);
    assert_int_equal (out->env->session, 4000);
    s_out_destroy (&out);
    //  A's HELLO again, now without dev-3: dev-3 goes; dev-1 stays
    Wire__AgentEntry *entries_a[1] = {&e1};
    env.edge_id = "a";
    env.n_agents = 1;
    env.agents = entries_a;
    s_in (fx, "A", &env, NULL);
    EXPECT (fx, "A", WELCOME, ANY, ANY);
    out = POP (fx, "A", SUBSCRIBED, 1, ANY);
    assert_int_equal (out->env->session, 5000);
    s_out_destroy (&out);
    EXPECT_NONE (fx);
    assert_int_equal (core_agent_count (fx->core), 3);   //  1, 2, 4
    assert_int_equal (core_request_count (fx->core), 1); //  r1 kept
    s_simple (fx, "C", WIRE__COMMAND__CANCEL, 10, "r1");
    EXPECT (fx, "A", ABORT, 1, ANY);
    s_assert_empty (fx);
}

static void
s_subscribe_session (fx_t *fx,
                     const char *from,
                     uint64_t handle,
                     const char *agent_id,
                     uint64_t session)
{
    Wire__AgentEntry entry = WIRE__AGENT_ENTRY__INIT;
    entry.handle = handle;
    entry.agent_id = (char *) agent_id;
    entry.session = session;
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__SUBSCRIBE;
    env.agent = &entry;
    s_in (fx, from, &env, NULL);
}

//  An edge re-syncs with a HELLO that lists no agents, then one SUBSCRIBE
//  per agent carrying its session: sessions are kept as in a HELLO.
static void
test_resync_by_subscribe (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_hello (fx, "A", "a");
    s_subscribe_session (fx, "A", 1, "dev-1", 5000);
    out_t *out = POP (fx, "A", SUBSCRIBED, 1, ANY);
    assert_int_equal (out->env->session, 5000);
    s_out_destroy (&out);
    s_subscribe_session (fx, "A", 2, "dev-2", 3000);
    out = POP (fx, "A", SUBSCRIBED, 2, ANY);
    assert_int_equal (out->env->session, 3000);
    s_out_destroy (&out);
    //  New sessions are above every one reported
    uint64_t s3 = s_subscribe (fx, "A", 3, "dev-3");
    assert_true (s3 > 5000);
    //  Another edge re-syncing dev-2 with an older session loses ...
    s_hello (fx, "B", "b");
    s_subscribe_session (fx, "B", 8, "dev-2", 2000);
    EXPECT (fx, "B", KICK, 8, ABORTED);
    //  ... with a newer one it wins
    s_subscribe_session (fx, "B", 9, "dev-2", 4000);
    EXPECT (fx, "A", KICK, 2, ABORTED);
    out = POP (fx, "B", SUBSCRIBED, 9, ANY);
    assert_int_equal (out->env->session, 4000);
    s_out_destroy (&out);
    EXPECT_NONE (fx);
    assert_int_equal (core_agent_count (fx->core), 3);
}

//  A session above 2^63 - 1 could wrap the session counter: refused.
static void
test_session_out_of_range (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_hello (fx, "A", "a");
    s_subscribe_session (fx, "A", 1, "dev-1", UINT64_MAX);
    out_t *out = POP (fx, "A", KICK, 1, INVALID_ARGUMENT);
    assert_string_equal (out->env->message, "session out of range");
    s_out_destroy (&out);
    Wire__AgentEntry e1 = WIRE__AGENT_ENTRY__INIT;
    e1.handle = 2;
    e1.agent_id = "dev-2";
    e1.session = UINT64_MAX;
    Wire__AgentEntry e2 = WIRE__AGENT_ENTRY__INIT;
    e2.handle = 3;
    e2.agent_id = "dev-3";
    e2.session = (uint64_t) INT64_MAX;
    Wire__AgentEntry *entries[2] = {&e1, &e2};
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__HELLO;
    env.edge_id = "b";
    env.n_agents = 2;
    env.agents = entries;
    s_in (fx, "B", &env, NULL);
    s_keep_alive (fx, "B");
    EXPECT (fx, "B", WELCOME, ANY, ANY);
    EXPECT (fx, "B", KICK, 2, INVALID_ARGUMENT);
    out = POP (fx, "B", SUBSCRIBED, 3, ANY);
    assert_true (out->env->session == (uint64_t) INT64_MAX);
    s_out_destroy (&out);
    s_subscribe_session (fx, "B", 4, "dev-4", (uint64_t) INT64_MAX + 1);
    EXPECT (fx, "B", KICK, 4, INVALID_ARGUMENT);
    assert_int_equal (core_stats (fx->core)->sessions_refused, 3);
    assert_int_equal (core_agent_count (fx->core), 1);
    //  The counter goes on above the largest kept session
    uint64_t next = s_subscribe (fx, "B", 5, "dev-5");
    assert_true (next == (uint64_t) INT64_MAX + 1);
}

static void
test_liveness_and_ping (void **state)
{
    fx_t *fx = (fx_t *) *state;
    //  PING from an unknown edge: PONG known=false
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__PING;
    zmsg_t *msg = zmsg_new ();
    zframe_t *frame = wire_envelope_encode (&env);
    zmsg_append (msg, &frame);
    zframe_t *rid = zframe_new ("X", 1);
    core_handle (fx->core, rid, &msg, fx->now);
    core_out_t kind;
    msg = core_outbox_pop (fx->core, &kind);
    assert_int_equal (kind, CORE_OUT_EDGE);
    zframe_t *to = zmsg_pop (msg);
    assert_true (zframe_eq (to, rid));
    zframe_destroy (&to);
    frame = zmsg_pop (msg);
    Wire__Envelope *pong = NULL;
    assert_int_equal (wire_envelope_decode (frame, &pong), 0);
    assert_int_equal (pong->command, WIRE__COMMAND__PONG);
    assert_false (pong->known);
    assert_int_equal (pong->incarnation, 777);
    wire_envelope_free (&pong);
    zframe_destroy (&frame);
    zmsg_destroy (&msg);
    zframe_destroy (&rid);
    s_drain (fx);
    //  A known edge stays alive while it pings, dies when silent
    s_cast (fx);
    s_advance (fx, 10000);
    assert_int_equal (core_edge_count (fx->core), 3);
    assert_int_equal (core_agent_count (fx->core), 1);
    s_forget (fx, "A");
    int64_t due = core_next_due (fx->core);
    assert_true (due > fx->now && due <= fx->now + 3000);
    s_advance (fx, 3000);
    assert_int_equal (core_edge_count (fx->core), 2);
    assert_int_equal (core_agent_count (fx->core), 0);
    assert_int_equal (s_events (fx, "edge.down", "\"reason\":\"silent\""), 1);
    s_forget (fx, "C");
    s_forget (fx, "R");
    s_advance (fx, 3000);
    assert_int_equal (core_edge_count (fx->core), 0);
    assert_int_equal (core_next_due (fx->core), -1);
}

static Tether__V1__ListAgentsResponse *
s_list (fx_t *fx, const char *prefix, uint32_t limit)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__LIST;
    env.handle = 99;
    env.prefix = (char *) prefix;
    env.limit = limit;
    s_in (fx, "C", &env, NULL);
    out_t *out = POP (fx, "C", AGENTS, 99, ANY);
    assert_non_null (out->payload);
    Tether__V1__ListAgentsResponse *list =
        tether__v1__list_agents_response__unpack (
            NULL, zframe_size (out->payload), zframe_data (out->payload));
    assert_non_null (list);
    s_out_destroy (&out);
    return list;
}

static void
test_list (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_hello (fx, "C", "client \"edge\"");
    s_hello (fx, "A", "edge-a");
    s_subscribe (fx, "A", 3, "web-2");
    uint64_t s1 = s_subscribe (fx, "A", 1, "db-1");
    s_subscribe (fx, "A", 2, "web-1");
    Wire__AgentEntry__LabelsEntry label = WIRE__AGENT_ENTRY__LABELS_ENTRY__INIT;
    label.key = "zone";
    label.value = "eu\n\"west\"\xff";
    Wire__AgentEntry__LabelsEntry *labels[1] = {&label};
    Wire__AgentEntry entry = WIRE__AGENT_ENTRY__INIT;
    entry.handle = 4;
    entry.agent_id = "web-0";
    entry.connected_at_unix_ms = 123;
    entry.n_labels = 1;
    entry.labels = labels;
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__SUBSCRIBE;
    env.agent = &entry;
    s_in (fx, "A", &env, NULL);
    EXPECT (fx, "A", SUBSCRIBED, 4, ANY);
    //  JSON strings are escaped
    assert_int_equal (
        s_events (fx, "agent.up", "\"zone\":\"eu\\u000a\\\"west\\\"\\ufffd\""),
        1);
    assert_int_equal (s_events (fx, "edge.up", "client \\\"edge\\\""), 1);
    s_publish (fx, "C", 10, "r1", "db-1");
    EXPECT (fx, "A", DELIVER, 1, ANY);

    Tether__V1__ListAgentsResponse *list = s_list (fx, "", 0);
    assert_int_equal (list->n_agents, 4);
    assert_string_equal (list->agents[0]->agent_id, "db-1");
    assert_string_equal (list->agents[1]->agent_id, "web-0");
    assert_string_equal (list->agents[2]->agent_id, "web-1");
    assert_string_equal (list->agents[3]->agent_id, "web-2");
    assert_string_equal (list->agents[0]->edge, "edge-a");
    assert_int_equal (list->agents[0]->session, s1);
    assert_int_equal (list->agents[0]->in_flight, 1);
    assert_int_equal (list->agents[1]->connected_at_unix_ms, 123);
    assert_int_equal (list->agents[1]->n_labels, 1);
    assert_string_equal (list->agents[1]->labels[0]->key, "zone");
    tether__v1__list_agents_response__free_unpacked (list, NULL);
    list = s_list (fx, "web-", 2);
    assert_int_equal (list->n_agents, 2);
    assert_string_equal (list->agents[0]->agent_id, "web-0");
    assert_string_equal (list->agents[1]->agent_id, "web-1");
    tether__v1__list_agents_response__free_unpacked (list, NULL);
    list = s_list (fx, "zzz", 0);
    assert_int_equal (list->n_agents, 0);
    tether__v1__list_agents_response__free_unpacked (list, NULL);
    s_simple (fx, "C", WIRE__COMMAND__CANCEL, 10, "r1");
    EXPECT (fx, "A", ABORT, 1, ANY);
}

//  A ListAgents answer never exceeds max_message_size; a LIST from an
//  unknown edge ends the call.
static void
test_list_size_bound (void **state)
{
    (void) state;
    core_config_t cfg;
    core_config_defaults (&cfg);
    cfg.stats_interval_ms = 0;
    cfg.max_payload_bytes = 1024;
    fx_t *fx = s_fx_new (&cfg);
    s_hello (fx, "C", "c");
    char id[32];
    for (int i = 0; i < 200; i++) {
        snprintf (id, sizeof id, "dev-%03d", i);
        s_subscribe (fx, "C", (uint64_t) i + 1, id);
    }
    Tether__V1__ListAgentsResponse *list = s_list (fx, "", 0);
    assert_true (list->n_agents > 0 && list->n_agents < 200);
    size_t size = tether__v1__list_agents_response__get_packed_size (list);
    assert_true (size <= 1024);
    //  Nearly full: one more agent would not have fitted
    assert_true (size + 30 > 1024);
    assert_string_equal (list->agents[0]->agent_id, "dev-000");
    tether__v1__list_agents_response__free_unpacked (list, NULL);
    //  A narrower prefix pages through the rest
    list = s_list (fx, "dev-19", 0);
    assert_int_equal (list->n_agents, 10);
    assert_string_equal (list->agents[9]->agent_id, "dev-199");
    tether__v1__list_agents_response__free_unpacked (list, NULL);
    //  Unknown edge: PONG known=false and FINISH UNAVAILABLE, no AGENTS
    size_t pongs = fx->pongs;
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__LIST;
    env.handle = 77;
    s_in (fx, "X", &env, NULL);
    assert_int_equal (fx->pongs, pongs + 1);
    EXPECT (fx, "X", FINISH, 77, UNAVAILABLE);
    EXPECT_NONE (fx);
    s_fx_destroy (&fx);
}

//  ---------------------------------------------------------------------
//  ListAgents paging and the agent tables

//  One LIST with a page token.  Returns the answer (caller owns it), or
//  NULL when the router ended the call with FINISH: then `*status` is
//  its status.
static Tether__V1__ListAgentsResponse *
s_list_page (fx_t *fx,
             const char *prefix,
             uint32_t limit,
             const char *token,
             int *status)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__LIST;
    env.handle = 99;
    env.prefix = (char *) prefix;
    env.limit = limit;
    env.page_token = (char *) token;
    s_in (fx, "C", &env, NULL);
    out_t *out = (out_t *) zlistx_first (fx->out);
    assert_non_null (out);
    if (out->env->command == WIRE__COMMAND__FINISH) {
        out = POP (fx, "C", FINISH, 99, ANY);
        *status = out->env->status;
        s_out_destroy (&out);
        return NULL;
    }
    out = POP (fx, "C", AGENTS, 99, ANY);
    assert_true (zframe_size (out->payload) <= fx->cfg.max_payload_bytes);
    Tether__V1__ListAgentsResponse *list =
        tether__v1__list_agents_response__unpack (
            NULL, zframe_size (out->payload), zframe_data (out->payload));
    assert_non_null (list);
    s_out_destroy (&out);
    *status = OK;
    return list;
}

//  Lists every page for `prefix` with `limit`; checks that ids rise
//  strictly across pages, that each page but the last is cut and names
//  its last id as the token, and that the pages hold exactly `expected`
//  (sorted ids, NULL-terminated).  Returns the number of pages.
static size_t
s_list_all (fx_t *fx, const char *prefix, uint32_t limit, const char **expected)
{
    char token[160] = "";
    size_t seen = 0;
    size_t pages = 0;
    while (true) {
        int status;
        Tether__V1__ListAgentsResponse *list =
            s_list_page (fx, prefix, limit, token, &status);
        assert_non_null (list);
        pages++;
        if (limit)
            assert_true (list->n_agents <= limit);
        for (size_t i = 0; i < list->n_agents; i++) {
            assert_non_null (expected[seen]);
            assert_string_equal (list->agents[i]->agent_id, expected[seen]);
            seen++;
        }
        bool more = list->next_page_token && *list->next_page_token;
        if (more) {
            assert_true (list->n_agents > 0);
            assert_string_equal (list->next_page_token,
                                 list->agents[list->n_agents - 1]->agent_id);
            snprintf (token, sizeof token, "%s", list->next_page_token);
        }
        tether__v1__list_agents_response__free_unpacked (list, NULL);
        if (!more)
            break;
        assert_true (pages < 10000);
    }
    assert_null (expected[seen]);
    return pages;
}

static int
s_strcmp_p (const void *a, const void *b)
{
    return strcmp (*(const char *const *) a, *(const char *const *) b);
}

//  Pages cover every agent once, in id order, whether a page is cut by
//  `limit` or by max_message_size; a prefix pages the same way; a token
//  need not be an agent; a bad token ends the call INVALID_ARGUMENT.
static void
test_list_pages (void **state)
{
    (void) state;
    core_config_t cfg;
    core_config_defaults (&cfg);
    cfg.stats_interval_ms = 0;
    cfg.max_payload_bytes = 1024;
    fx_t *fx = s_fx_new (&cfg);
    s_hello (fx, "C", "c");
    const char *ids[256];
    char names[256][16];
    size_t n = 0;
    //  Subscribed out of order; "dev-1" sorts before "dev-100"
    for (int i = 199; i >= 0; i--) {
        snprintf (names[n], sizeof names[n], "dev-%03d", (i * 7) % 200);
        ids[n] = names[n];
        n++;
    }
    snprintf (names[n], sizeof names[n], "dev-1");
    ids[n] = names[n];
    n++;
    snprintf (names[n], sizeof names[n], "alpha");
    ids[n] = names[n];
    n++;
    for (size_t i = 0; i < n; i++)
        s_subscribe (fx, "C", (uint64_t) i + 1, ids[i]);
    qsort (ids, n, sizeof ids[0], s_strcmp_p);
    ids[n] = NULL;

    //  Cut by size (about 45 agents a page), by limit, by both
    assert_true (s_list_all (fx, "", 0, ids) >= 5);
    assert_int_equal (s_list_all (fx, "", 7, ids), (n + 6) / 7);
    assert_int_equal (s_list_all (fx, "", 1, ids), n);
    assert_int_equal (s_list_all (fx, "", (uint32_t) n, ids) > 1, true);
    //  A limit that ends exactly at the last agent: no token
    s_fx_destroy (&fx);
    cfg.max_payload_bytes = 64 * 1024;
    fx = s_fx_new (&cfg);
    s_hello (fx, "C", "c");
    for (size_t i = 0; i < n; i++)
        s_subscribe (fx, "C", (uint64_t) i + 1, ids[i]);
    assert_int_equal (s_list_all (fx, "", (uint32_t) n, ids), 1);
    assert_int_equal (s_list_all (fx, "", (uint32_t) n - 1, ids), 2);

    //  Prefix and paging: "dev-1" and dev-100..dev-199
    const char *dev1[102];
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp (ids[i], "dev-1", 5) == 0)
            dev1[m++] = ids[i];
    dev1[m] = NULL;
    assert_int_equal (m, 101);
    assert_int_equal (s_list_all (fx, "dev-1", 10, dev1), 11);

    //  Tokens between, below and after the ids
    int status;
    Tether__V1__ListAgentsResponse *list =
        s_list_page (fx, "", 2, "dev-0505", &status);
    assert_int_equal (list->n_agents, 2);
    assert_string_equal (list->agents[0]->agent_id, "dev-051");
    assert_string_equal (list->agents[1]->agent_id, "dev-052");
    assert_string_equal (list->next_page_token, "dev-052");
    tether__v1__list_agents_response__free_unpacked (list, NULL);
    list = s_list_page (fx, "dev-1", 1, "alpha", &status);
    assert_int_equal (list->n_agents, 1);
    assert_string_equal (list->agents[0]->agent_id, "dev-1");
    tether__v1__list_agents_response__free_unpacked (list, NULL);
    list = s_list_page (fx, "dev-1", 0, "dev-199", &status);
    assert_int_equal (list->n_agents, 0);
    assert_string_equal (list->next_page_token, "");
    tether__v1__list_agents_response__free_unpacked (list, NULL);
    list = s_list_page (fx, "", 0, "zzz", &status);
    assert_int_equal (list->n_agents, 0);
    assert_string_equal (list->next_page_token, "");
    tether__v1__list_agents_response__free_unpacked (list, NULL);

    //  A token that is not an agent id
    assert_null (s_list_page (fx, "", 0, "dev 1", &status));
    assert_int_equal (status, INVALID_ARGUMENT);
    char long_token[200];
    memset (long_token, 'a', sizeof long_token - 1);
    long_token[sizeof long_token - 1] = 0;
    assert_null (s_list_page (fx, "", 0, long_token, &status));
    assert_int_equal (status, INVALID_ARGUMENT);
    EXPECT_NONE (fx);
    s_fx_destroy (&fx);

    //  An agent whose entry alone exceeds max_message_size cannot be
    //  listed: the call ends RESOURCE_EXHAUSTED rather than skip it
    cfg.max_payload_bytes = 20;
    fx = s_fx_new (&cfg);
    s_hello (fx, "C", "c");
    s_subscribe (fx, "C", 1, "a-rather-long-agent-id");
    assert_null (s_list_page (fx, "", 0, "", &status));
    assert_int_equal (status, RESOURCE_EXHAUSTED);
    s_fx_destroy (&fx);
}

//  Agents joining and leaving between pages: an agent present through
//  the whole listing is listed exactly once; ids keep rising, whatever
//  happened to the agent named by the token.
static void
test_list_pages_churn (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_hello (fx, "C", "c");
    uint64_t sessions[20];
    char id[32];
    for (int i = 0; i < 20; i++) {
        snprintf (id, sizeof id, "dev-%03d", i);
        sessions[i] = s_subscribe (fx, "C", (uint64_t) i + 1, id);
    }
    int status;
    Tether__V1__ListAgentsResponse *list = s_list_page (fx, "", 5, "", &status);
    assert_int_equal (list->n_agents, 5);
    assert_string_equal (list->next_page_token, "dev-004");
    tether__v1__list_agents_response__free_unpacked (list, NULL);
    //  The token's agent and a later one leave; one joins before the
    //  token (not seen), one after it (seen)
    s_unsubscribe (fx, "C", 5, sessions[4]);
    s_unsubscribe (fx, "C", 11, sessions[10]);
    s_subscribe (fx, "C", 100, "dev-0035");
    s_subscribe (fx, "C", 101, "dev-0155");
    const char *rest[] = {"dev-005", "dev-006",  "dev-007", "dev-008",
                          "dev-011", "dev-012",  "dev-013", "dev-014",
                          "dev-015", "dev-0155", "dev-016", "dev-017",
                          "dev-018", "dev-019"};
    size_t next = 0;
    char token[32] = "dev-004";
    while (*token) {
        list = s_list_page (fx, "", 4, token, &status);
        for (size_t i = 0; i < list->n_agents; i++)
            assert_string_equal (list->agents[i]->agent_id, rest[next++]);
        snprintf (token, sizeof token, "%s", list->next_page_token);
        tether__v1__list_agents_response__free_unpacked (list, NULL);
        //  After the first page the agent following its token (dev-008)
        //  goes; after the second, the token's own agent (dev-014) goes
        //  and one joins behind the walk
        if (next == 4)
            s_unsubscribe (fx, "C", 10, sessions[9]);
        if (next == 8) {
            s_unsubscribe (fx, "C", 15, sessions[14]);
            s_subscribe (fx, "C", 102, "dev-0005");
        }
    }
    assert_int_equal (next, sizeof rest / sizeof rest[0]);
    assert_int_equal (core_agent_count (fx->core), 19);
    EXPECT_NONE (fx);
}

//  Random subscribes, supersessions, unsubscribes, HELLO re-syncs and
//  lost edges against a model of who is connected where; after every
//  step the router agrees on the count, and often a full paged listing
//  (random prefix and limit, small messages) must equal the model.
#define T_IDS   60
#define T_EDGES 3

typedef struct
{
    int edge;         //  -1: not connected
    uint64_t handle;  //  its stream
    uint64_t session; //  from SUBSCRIBED
} t_agent_t;

static void
s_t_id (int i, char *id, size_t size)
{
    //  Ids of different lengths sharing prefixes: "n7", "n71", "o5"...
    snprintf (id, size, "%c%d", 'm' + i % 3, i);
}

static void
s_t_check_list (fx_t *fx, t_agent_t *model, unsigned int *rng)
{
    static const char *prefixes[] = {"", "m", "n1", "o2", "p"};
    const char *prefix = prefixes[rand_r (rng) % 5];
    uint32_t limit = (uint32_t) (rand_r (rng) % 4 == 0 ? 0 : rand_r (rng) % 9);
    char names[T_IDS][8];
    const char *expected[T_IDS + 1];
    size_t n = 0;
    for (int i = 0; i < T_IDS; i++) {
        s_t_id (i, names[i], sizeof names[i]);
        if (model[i].edge >= 0
            && strncmp (names[i], prefix, strlen (prefix)) == 0)
            expected[n++] = names[i];
    }
    qsort (expected, n, sizeof expected[0], s_strcmp_p);
    expected[n] = NULL;
    s_list_all (fx, prefix, limit, expected);
}

static void
test_random_agent_tables (void **state)
{
    (void) state;
    core_config_t cfg;
    core_config_defaults (&cfg);
    cfg.stats_interval_ms = 0;
    cfg.edge_liveness_ms = 0;
    cfg.max_payload_bytes = 200;
    fx_t *fx = s_fx_new (&cfg);
    s_hello (fx, "C", "client");
    const char *rids[T_EDGES] = {"E0", "E1", "E2"};
    for (int e = 0; e < T_EDGES; e++)
        s_hello (fx, rids[e], rids[e]);
    t_agent_t model[T_IDS];
    for (int i = 0; i < T_IDS; i++)
        model[i].edge = -1;
    unsigned int rng = 7;
    uint64_t next_handle = 1;
    char id[8];
    for (int step = 0; step < 4000; step++) {
        unsigned int op = (unsigned int) rand_r (&rng) % 100;
        int i = rand_r (&rng) % T_IDS;
        s_t_id (i, id, sizeof id);
        if (op < 55) {
            //  Subscribe (a supersession when connected)
            int e = rand_r (&rng) % T_EDGES;
            uint64_t handle = next_handle++;
            s_subscribe_send (fx, rids[e], handle, id);
            if (model[i].edge >= 0)
                EXPECT (fx, rids[model[i].edge], KICK, model[i].handle,
                        ABORTED);
            out_t *out = POP (fx, rids[e], SUBSCRIBED, handle, ANY);
            model[i] = (t_agent_t){e, handle, out->env->session};
            s_out_destroy (&out);
        } else if (op < 85) {
            if (model[i].edge >= 0)
                s_unsubscribe (fx, rids[model[i].edge], model[i].handle,
                               model[i].session);
            model[i].edge = -1;
        } else if (op < 95) {
            //  HELLO re-sync listing about half of the edge's agents
            int e = rand_r (&rng) % T_EDGES;
            Wire__AgentEntry entries[T_IDS];
            Wire__AgentEntry *ptrs[T_IDS];
            char ids[T_IDS][8];
            size_t n = 0;
            for (int j = 0; j < T_IDS; j++) {
                if (model[j].edge != e)
                    continue;
                if (rand_r (&rng) % 2) {
                    model[j].edge = -1;
                    continue;
                }
                wire__agent_entry__init (&entries[n]);
                s_t_id (j, ids[n], sizeof ids[n]);
                entries[n].agent_id = ids[n];
                entries[n].handle = model[j].handle;
                entries[n].session = model[j].session;
                ptrs[n] = &entries[n];
                n++;
            }
            Wire__Envelope env = WIRE__ENVELOPE__INIT;
            env.command = WIRE__COMMAND__HELLO;
            env.edge_id = (char *) rids[e];
            env.incarnation = 42;
            env.n_agents = n;
            env.agents = ptrs;
            s_in (fx, rids[e], &env, NULL);
            EXPECT (fx, rids[e], WELCOME, 0, ANY);
            for (size_t j = 0; j < n; j++)
                EXPECT (fx, rids[e], SUBSCRIBED, entries[j].handle, ANY);
        } else {
            //  The edge goes (BYE) and comes back empty
            int e = rand_r (&rng) % T_EDGES;
            Wire__Envelope env = WIRE__ENVELOPE__INIT;
            env.command = WIRE__COMMAND__BYE;
            s_in (fx, rids[e], &env, NULL);
            for (int j = 0; j < T_IDS; j++)
                if (model[j].edge == e)
                    model[j].edge = -1;
            s_hello (fx, rids[e], rids[e]);
        }
        EXPECT_NONE (fx);
        size_t connected = 0;
        for (int j = 0; j < T_IDS; j++)
            connected += model[j].edge >= 0;
        assert_int_equal (core_agent_count (fx->core), connected);
        if (step % 10 == 0)
            s_t_check_list (fx, model, &rng);
    }
    //  Every edge goes: nothing is left
    for (int e = 0; e < T_EDGES; e++) {
        Wire__Envelope env = WIRE__ENVELOPE__INIT;
        env.command = WIRE__COMMAND__BYE;
        s_in (fx, rids[e], &env, NULL);
    }
    assert_int_equal (core_agent_count (fx->core), 0);
    s_fx_destroy (&fx);
}

//  Settings checked against each other: heartbeat at most half the edge
//  liveness window.
static void
test_config_check (void **state)
{
    (void) state;
    router_config_t cfg;
    router_config_defaults (&cfg);
    char err[256] = "";
    assert_int_equal (router_config_check (&cfg, err, sizeof err), 0);
    cfg.core.heartbeat_ms = 1500;
    cfg.core.edge_liveness_ms = 3000;
    assert_int_equal (router_config_check (&cfg, err, sizeof err), 0);
    cfg.core.heartbeat_ms = 1501;
    assert_int_equal (router_config_check (&cfg, err, sizeof err), -1);
    assert_non_null (strstr (err, "--heartbeat"));
    assert_non_null (strstr (err, "--edge-liveness"));
    cfg.core.heartbeat_ms = 5000;
    assert_int_equal (router_config_check (&cfg, NULL, 0), -1);
    cfg.core.heartbeat_ms = UINT32_MAX;
    cfg.core.edge_liveness_ms = UINT32_MAX;
    assert_int_equal (router_config_check (&cfg, err, sizeof err), -1);
    //  Counts handed to int APIs are bounded by INT_MAX
    tconfig_option_t options[64];
    size_t count = router_config_options (&cfg, options, 64);
    assert_true (count > 0 && count < 64);
    for (size_t i = 0; i < count; i++)
        if (options[i].type == TCONFIG_UINT)
            assert_true (options[i].max > 0
                         && options[i].max <= (uint32_t) INT32_MAX);
    router_config_clear (&cfg);
}

//  A request refused at PUBLISH and one that finished publish request.end
//  through the same code: same leading fields, "rejected" only on the
//  first.
static void
test_rejected_event (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_hello (fx, "C", "c");
    s_publish (fx, "C", 10, "r1", "nobody");
    EXPECT (fx, "C", FINISH, 10, NOT_FOUND);
    assert_int_equal (s_events (fx, "request.end",
                                "\"request_id\":\"r1\",\"agent_id\":\"nobody\","
                                "\"status\":5,\"code\":\"NOT_FOUND\","
                                "\"message\":\"agent not connected\","
                                "\"duration_ms\":0,\"bytes_to_agent\":0,"
                                "\"bytes_to_client\":0,\"client_edge\":\"c\","
                                "\"rejected\":true}"),
                      1);
    assert_int_equal (core_stats (fx->core)->requests_by_status[NOT_FOUND], 1);
    s_publish_full (fx, "C", 11, "r2", "nobody", 0, 100, 1, NULL);
    s_advance (fx, 100);
    EXPECT (fx, "C", FINISH, 11, NOT_FOUND);
    assert_int_equal (s_events (fx, "request.end",
                                "\"request_id\":\"r2\",\"agent_id\":\"nobody\","
                                "\"status\":5,\"code\":\"NOT_FOUND\","
                                "\"message\":\"agent not connected\","
                                "\"duration_ms\":100,"),
                      1);
    assert_int_equal (s_events (fx, "request.end", "rejected"), 1);
    assert_int_equal (core_stats (fx->core)->requests_finished, 2);
    s_assert_empty (fx);
}

static void
test_stats_event (void **state)
{
    core_config_t cfg;
    core_config_defaults (&cfg);
    fx_t *fx = s_fx_new (&cfg);
    s_cast (fx);
    s_publish (fx, "C", 10, "r1", "dev-1");
    EXPECT (fx, "A", DELIVER, 1, ANY);
    s_advance (fx, 1000);
    assert_int_equal (s_events (fx, "stats", NULL), 1);
    assert_int_equal (s_events (fx, "stats", "\"requests\":1,"), 1);
    assert_int_equal (s_events (fx, "stats", "\"agent-edge\":1"), 1);
    s_advance (fx, 2000);
    assert_int_equal (s_events (fx, "stats", NULL), 3);
    assert_true (core_next_due (fx->core) <= fx->now + 1000);
    assert_int_equal (
        s_events (fx, "stats", "\"router_incarnation\":\"0000000000000309\""),
        3);
    s_fx_destroy (&fx);
}

//  The router's incarnation is a string in edge.up and stats (64 random
//  bits do not fit a JSON reader's double), and stats carry the requests
//  finished per second over the interval since the previous stats.
static void
test_stats_incarnation_and_rate (void **state)
{
    core_config_t cfg;
    core_config_defaults (&cfg);
    cfg.stats_interval_ms = 1000;
    fx_t *fx = s_fx_new_incarnation (&cfg, 0xfedcba9876543210ULL);
    s_hello (fx, "C", "client-edge"); //  t=1000: the first input
    assert_int_equal (
        s_events (fx, "edge.up", "\"router_incarnation\":\"fedcba9876543210\""),
        1);
    //  Three requests refused (no such agent) in the first interval
    for (int i = 0; i < 3; i++) {
        char rid[16];
        snprintf (rid, sizeof rid, "r%d", i);
        s_publish (fx, "C", 10 + i, rid, "nobody");
        EXPECT (fx, "C", FINISH, 10 + i, NOT_FOUND);
    }
    s_advance (fx, 1000); //  stats at t=2000
    assert_int_equal (s_events (fx, "stats", NULL), 1);
    assert_int_equal (s_events (fx, "stats", "\"requests_per_s\":3.000,"), 1);
    assert_int_equal (
        s_events (fx, "stats", "\"router_incarnation\":\"fedcba9876543210\""),
        1);
    //  One more, then a stats event that comes 500 ms late (t=3500)
    s_publish (fx, "C", 20, "r9", "nobody");
    EXPECT (fx, "C", FINISH, 20, NOT_FOUND);
    fx->now += 1500;
    core_tick (fx->core, fx->now);
    s_drain (fx);
    assert_int_equal (s_events (fx, "stats", NULL), 2);
    assert_int_equal (s_events (fx, "stats", "\"requests_per_s\":0.667,"), 1);
    s_advance (fx, 1000); //  nothing finished
    assert_int_equal (s_events (fx, "stats", NULL), 3);
    assert_int_equal (s_events (fx, "stats", "\"requests_per_s\":0.000,"), 1);
    s_fx_destroy (&fx);
}


//  ---------------------------------------------------------------------
//  Malformed input

static void
test_malformed (void **state)
{
    fx_t *fx = (fx_t *) *state;
    s_cast (fx);
    uint64_t before = core_stats (fx->core)->malformed;
    //  Empty message
    s_in_raw (fx, "A", zmsg_new ());
    //  Random bytes
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, "\xff\xff\xff\xff\x0f garbage", 13);
    s_in_raw (fx, "A", msg);
    //  Truncated envelope
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__PUBLISH;
    env.request_id = "r-trunc";
    env.agent_id = "dev-1";
    zframe_t *frame = wire_envelope_encode (&env);
    msg = zmsg_new ();
    zmsg_addmem (msg, zframe_data (frame), zframe_size (frame) - 3);
    zmsg_addstr (msg, "payload");
    zframe_destroy (&frame);
    s_in_raw (fx, "A", msg);
    //  Unknown version
    Wire__Envelope ping = WIRE__ENVELOPE__INIT;
    ping.command = WIRE__COMMAND__PING;
    ping.version = 2;
    size_t size = wire__envelope__get_packed_size (&ping);
    uint8_t buffer[64];
    wire__envelope__pack (&ping, buffer);
    msg = zmsg_new ();
    zmsg_addmem (msg, buffer, size);
    s_in_raw (fx, "A", msg);
    //  Unknown command, router -> edge command
    env.command = 77;
    s_in (fx, "A", &env, NULL);
    env.command = WIRE__COMMAND__DELIVER;
    s_in (fx, "A", &env, "x");
    //  Wrong frame counts
    env.command = WIRE__COMMAND__PUBLISH;
    s_in (fx, "A", &env, NULL);
    env.command = WIRE__COMMAND__CANCEL;
    s_in (fx, "A", &env, "extra");
    msg = zmsg_new ();
    frame = wire_envelope_encode (&env);
    zmsg_append (msg, &frame);
    zmsg_addstr (msg, "a");
    zmsg_addstr (msg, "b");
    s_in_raw (fx, "A", msg);
    //  No routing id
    msg = zmsg_new ();
    zmsg_addstr (msg, "x");
    core_handle (fx->core, NULL, &msg, fx->now);
    s_drain (fx);
    assert_int_equal (core_stats (fx->core)->malformed - before, 10);
    EXPECT_NONE (fx);

    //  Thousands of random byte messages, one or two frames
    unsigned int seed = 4242;
    for (int i = 0; i < 5000; i++) {
        msg = zmsg_new ();
        int frames = 1 + rand_r (&seed) % 3;
        for (int f = 0; f < frames; f++) {
            uint8_t bytes[48];
            size_t len = rand_r (&seed) % sizeof bytes;
            for (size_t b = 0; b < len; b++)
                bytes[b] = (uint8_t) rand_r (&seed);
            //  Half of them start like a real envelope
            if (f == 0 && len >= 4 && (i & 1)) {
                bytes[0] = 0x08;
                bytes[1] = 0x01;
                bytes[2] = 0x10;
                bytes[3] = (uint8_t) (1 + rand_r (&seed) % 11);
            }
            zmsg_addmem (msg, bytes, len);
        }
        s_in_raw (fx, (i & 2) ? "A" : "Z", msg);
        zlistx_purge (fx->out);
    }
    assert_true (core_stats (fx->core)->malformed > 2000);
    //  Malformed lines are rate-limited
    assert_true (fx->logs < 200);

    //  Still serving
    s_publish (fx, "C", 10, "r-ok", "dev-1");
    EXPECT (fx, "A", DELIVER, 1, ANY);
    s_end (fx, "A", 1, "r-ok", OK, "");
    EXPECT (fx, "C", FINISH, 10, OK);
}


//  ---------------------------------------------------------------------
//  Random interleavings

#define R_EDGES  3 //  edge slots (names)
#define R_AGENTS 5
#define R_RIDS   40
#define R_MAX    4096 //  handles and incarnations

typedef enum
{
    H_NONE = 0,
    H_STREAM,
    H_CLIENT,
    H_RESPONDER
} hkind_t;

typedef struct
{
    hkind_t kind;
    int inc;          //  edge incarnation holding it
    int agent;        //  H_STREAM: agent index
    uint64_t session; //  H_STREAM: from SUBSCRIBED
    bool ended;       //  stream kicked/unsubscribed, call done
    int rid;          //  H_CLIENT, H_RESPONDER: request index
    int finishes;     //  FINISH messages received
    bool cancelled;   //  H_CLIENT: sent CANCEL
    int uncredited;   //  H_CLIENT: REPLYs not yet credited
    uint32_t credit;  //  H_RESPONDER: may send this many
    bool bound;       //  H_RESPONDER: got BOUND
} rhandle_t;

typedef struct
{
    fx_t *fx;
    unsigned int seed; //  printed on failure
    unsigned int rng;
    rhandle_t h[R_MAX];
    uint64_t next_handle;
    char inc_rid[R_MAX][8]; //  routing id per incarnation
    int inc_slot[R_MAX];
    int n_inc;
    int live[R_EDGES];      //  live incarnation per slot, -1 none
    bool delivered[R_RIDS]; //  some agent got DELIVER for it
} rmodel_t;

#define RCHECK(m, cond)                                                        \
    do {                                                                       \
        if (!(cond)) {                                                         \
            print_error ("random test seed %u: %s failed at %s:%d\n",          \
                         (m)->seed, #cond, __FILE__, __LINE__);                \
            fail ();                                                           \
        }                                                                      \
    } while (0)

static unsigned int
s_rand (rmodel_t *m, unsigned int n)
{
    return rand_r (&m->rng) % n;
}

static int
s_inc_of (rmodel_t *m, const char *rid)
{
    for (int i = 0; i < m->n_inc; i++)
        if (streq (m->inc_rid[i], rid))
            return i;
    return -1;
}

//  Apply every edge message to the model, checking what may arrive.
static void
s_r_absorb (rmodel_t *m)
{
    out_t *out;
    while ((out = (out_t *) zlistx_detach (m->fx->out, NULL))) {
        int inc = s_inc_of (m, out->to);
        RCHECK (m, inc >= 0);
        Wire__Envelope *env = out->env;
        uint64_t handle = env->handle;
        rhandle_t *h = handle < R_MAX ? &m->h[handle] : NULL;
        switch (env->command) {
            case WIRE__COMMAND__WELCOME:
                break;
            case WIRE__COMMAND__SUBSCRIBED:
                RCHECK (m, h && h->kind == H_STREAM && h->inc == inc);
                h->session = env->session;
                break;
            case WIRE__COMMAND__KICK:
                RCHECK (m, h && h->kind == H_STREAM && h->inc == inc);
                RCHECK (m, env->status == ABORTED);
                h->ended = true;
                //  The edge ends the stream and reports it, late
                if (m->live[m->inc_slot[inc]] == inc && s_rand (m, 2) == 0) {
                    s_out_destroy (&out);
                    s_unsubscribe (m->fx, m->inc_rid[inc], handle, h->session);
                    continue;
                }
                break;
            case WIRE__COMMAND__DELIVER: {
                RCHECK (m, h && h->kind == H_STREAM && h->inc == inc);
                RCHECK (m, !h->ended);
                int rid = atoi (env->request_id + 1);
                RCHECK (m, rid >= 0 && rid < R_RIDS);
                m->delivered[rid] = true;
                break;
            }
            case WIRE__COMMAND__ABORT:
                RCHECK (m, h && h->kind == H_STREAM && h->inc == inc);
                RCHECK (m, !h->ended);
                break;
            case WIRE__COMMAND__BOUND:
                RCHECK (m, h && h->kind == H_RESPONDER && h->inc == inc);
                RCHECK (m, !h->ended && !h->bound);
                h->bound = true;
                h->credit = env->credit;
                break;
            case WIRE__COMMAND__GRANT:
                RCHECK (m, h && h->kind == H_RESPONDER && h->inc == inc);
                RCHECK (m, !h->ended && h->bound);
                h->credit += env->credit;
                break;
            case WIRE__COMMAND__REPLY:
                RCHECK (m, h && h->kind == H_CLIENT && h->inc == inc);
                RCHECK (m, !h->ended && !h->cancelled);
                h->uncredited++;
                break;
            case WIRE__COMMAND__FINISH:
                RCHECK (m, h && h->inc == inc);
                RCHECK (m, h->kind == H_CLIENT || h->kind == H_RESPONDER);
                RCHECK (m, !h->ended);
                if (h->kind == H_CLIENT)
                    RCHECK (m, !h->cancelled);
                h->finishes++;
                h->ended = true;
                break;
            default:
                RCHECK (m, false);
        }
        s_out_destroy (&out);
    }
}

static uint64_t
s_r_handle (rmodel_t *m, hkind_t kind, int inc)
{
    uint64_t handle = m->next_handle++;
    RCHECK (m, handle < R_MAX);
    memset (&m->h[handle], 0, sizeof (rhandle_t));
    m->h[handle].kind = kind;
    m->h[handle].inc = inc;
    return handle;
}

//  Pick a random handle of `kind` on a live edge that is not ended.
static uint64_t
s_r_pick (rmodel_t *m, hkind_t kind)
{
    for (int tries = 0; tries < 30; tries++) {
        if (m->next_handle <= 1)
            return 0;
        uint64_t handle = 1 + s_rand (m, (unsigned) m->next_handle - 1);
        rhandle_t *h = &m->h[handle];
        if (h->kind == kind && !h->ended
            && m->live[m->inc_slot[h->inc]] == h->inc)
            return handle;
    }
    return 0;
}

static void
s_r_hello (rmodel_t *m, int slot)
{
    RCHECK (m, m->n_inc < R_MAX);
    int inc = m->n_inc++;
    snprintf (m->inc_rid[inc], sizeof m->inc_rid[inc], "I%d", inc);
    m->inc_slot[inc] = slot;
    if (m->live[slot] >= 0)
        s_forget (m->fx, m->inc_rid[m->live[slot]]);
    m->live[slot] = inc;
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__HELLO;
    char name[16];
    snprintf (name, sizeof name, "edge-%d", slot);
    env.edge_id = name;
    env.incarnation = (uint64_t) inc;
    s_in (m->fx, m->inc_rid[inc], &env, NULL);
    s_keep_alive (m->fx, m->inc_rid[inc]);
}

static int
s_r_live_inc (rmodel_t *m)
{
    int slot = (int) s_rand (m, R_EDGES);
    if (m->live[slot] < 0)
        s_r_hello (m, slot);
    return m->live[slot];
}

static void
s_r_step (rmodel_t *m)
{
    fx_t *fx = m->fx;
    char rid[16], agent[16];
    unsigned int op = s_rand (m, 1000);
    if (op < 80) { //  subscribe
        int inc = s_r_live_inc (m);
        uint64_t handle = s_r_handle (m, H_STREAM, inc);
        m->h[handle].agent = (int) s_rand (m, R_AGENTS);
        snprintf (agent, sizeof agent, "dev-%d", m->h[handle].agent);
        s_subscribe_send (fx, m->inc_rid[inc], handle, agent);
    } else if (op < 110) { //  unsubscribe
        uint64_t handle = s_r_pick (m, H_STREAM);
        if (handle) {
            m->h[handle].ended = true;
            s_unsubscribe (fx, m->inc_rid[m->h[handle].inc], handle,
                           m->h[handle].session);
        }
    } else if (op < 310) { //  publish
        int inc = s_r_live_inc (m);
        uint64_t handle = s_r_handle (m, H_CLIENT, inc);
        int r = (int) s_rand (m, R_RIDS);
        m->h[handle].rid = r;
        snprintf (rid, sizeof rid, "r%d", r);
        snprintf (agent, sizeof agent, "dev-%u", s_rand (m, R_AGENTS + 1));
        uint32_t timeout = s_rand (m, 3) ? 0 : 100 + s_rand (m, 8000);
        uint32_t wait = s_rand (m, 3) ? 0 : s_rand (m, 6000);
        s_publish_full (fx, m->inc_rid[inc], handle, rid, agent, timeout, wait,
                        1 + s_rand (m, 3), NULL);
    } else if (op < 450) { //  bind a delivered request
        int r = (int) s_rand (m, R_RIDS);
        for (int i = 0; i < R_RIDS && !m->delivered[r]; i++)
            r = (r + 1) % R_RIDS;
        if (m->delivered[r]) {
            m->delivered[r] = false;
            int inc = s_r_live_inc (m);
            uint64_t handle = s_r_handle (m, H_RESPONDER, inc);
            m->h[handle].rid = r;
            snprintf (rid, sizeof rid, "r%d", r);
            s_simple (fx, m->inc_rid[inc], WIRE__COMMAND__BIND, handle, rid);
        }
    } else if (op < 650) { //  response within credit
        uint64_t handle = s_r_pick (m, H_RESPONDER);
        rhandle_t *h = &m->h[handle];
        //  Now and then one beyond the credit
        if (handle && h->bound && (h->credit || s_rand (m, 20) == 0)) {
            if (h->credit)
                h->credit--;
            snprintf (rid, sizeof rid, "r%d", h->rid);
            s_response (fx, m->inc_rid[h->inc], handle, rid, "resp");
        }
    } else if (op < 730) { //  client credits replies
        uint64_t handle = s_r_pick (m, H_CLIENT);
        rhandle_t *h = &m->h[handle];
        if (handle && h->uncredited) {
            snprintf (rid, sizeof rid, "r%d", h->rid);
            s_credit (fx, m->inc_rid[h->inc], handle, rid,
                      (uint32_t) h->uncredited);
            h->uncredited = 0;
        }
    } else if (op < 790) { //  responder ends
        uint64_t handle = s_r_pick (m, H_RESPONDER);
        rhandle_t *h = &m->h[handle];
        if (handle && h->bound) {
            h->ended = true;
            snprintf (rid, sizeof rid, "r%d", h->rid);
            s_end (fx, m->inc_rid[h->inc], handle, rid,
                   s_rand (m, 2) ? OK : (int) s_rand (m, 17), "");
        }
    } else if (op < 820) { //  client cancels
        uint64_t handle = s_r_pick (m, H_CLIENT);
        rhandle_t *h = &m->h[handle];
        if (handle) {
            h->cancelled = true;
            h->ended = true;
            snprintf (rid, sizeof rid, "r%d", h->rid);
            s_simple (fx, m->inc_rid[h->inc], WIRE__COMMAND__CANCEL, handle,
                      rid);
        }
    } else if (op < 835) { //  an edge dies or restarts
        int slot = (int) s_rand (m, R_EDGES);
        int inc = m->live[slot];
        if (inc >= 0) {
            unsigned int how = s_rand (m, 3);
            m->live[slot] = -1;
            s_forget (fx, m->inc_rid[inc]);
            if (how == 0) {
                zframe_t *routing_id =
                    zframe_new (m->inc_rid[inc], strlen (m->inc_rid[inc]));
                core_edge_unreachable (fx->core, routing_id, fx->now);
                zframe_destroy (&routing_id);
                s_drain (fx);
            } else if (how == 1)
                s_r_hello (m, slot); //  replaced by a new one
            //  how == 2: just silent, the liveness window finds it
        }
    } else if (op < 845) { //  LIST now and then
        int inc = s_r_live_inc (m);
        Wire__Envelope env = WIRE__ENVELOPE__INIT;
        env.command = WIRE__COMMAND__LIST;
        env.prefix = "dev-";
        s_in (fx, m->inc_rid[inc], &env, NULL);
        out_t *out = (out_t *) zlistx_last (fx->out);
        RCHECK (m, out && out->env->command == WIRE__COMMAND__AGENTS);
        out = (out_t *) zlistx_detach_cur (fx->out);
        s_out_destroy (&out);
    } else //  time passes
        s_advance (fx, s_rand (m, 8) ? s_rand (m, 200) : s_rand (m, 4000));
    s_r_absorb (m);
}

static void
s_random_run (unsigned int seed, int steps)
{
    core_config_t cfg;
    core_config_defaults (&cfg);
    cfg.first_response_ms = 2000;
    cfg.idle_ms = 3000;
    cfg.max_wait_ms = 5000;
    cfg.max_in_flight_per_agent = 6;
    cfg.max_credit = 4;
    cfg.stats_interval_ms = seed % 2 ? 700 : 0;
    rmodel_t *m = (rmodel_t *) calloc (1, sizeof (rmodel_t));
    m->fx = s_fx_new (&cfg);
    m->seed = seed;
    m->rng = seed;
    m->next_handle = 1;
    for (int slot = 0; slot < R_EDGES; slot++)
        m->live[slot] = -1;
    for (int i = 0; i < steps; i++)
        s_r_step (m);

    //  Wind down: keep live edges alive and clients crediting until every
    //  request has ended by itself
    for (int round = 0; round < 200 && core_request_count (m->fx->core);
         round++) {
        for (uint64_t handle = 1; handle < m->next_handle; handle++) {
            rhandle_t *h = &m->h[handle];
            if (h->kind == H_CLIENT && !h->ended && h->uncredited
                && m->live[m->inc_slot[h->inc]] == h->inc) {
                char rid[16];
                snprintf (rid, sizeof rid, "r%d", h->rid);
                s_credit (m->fx, m->inc_rid[h->inc], handle, rid,
                          (uint32_t) h->uncredited);
                h->uncredited = 0;
            }
        }
        s_advance (m->fx, 1000);
        s_r_absorb (m);
    }
    RCHECK (m, core_request_count (m->fx->core) == 0);
    RCHECK (m, core_waiting_count (m->fx->core) == 0);
    RCHECK (m, core_timer_count (m->fx->core) == 0);
    //  Every client call on an edge that stayed alive got exactly one
    //  FINISH, unless it cancelled (then none); none got two
    for (uint64_t handle = 1; handle < m->next_handle; handle++) {
        rhandle_t *h = &m->h[handle];
        if (h->kind != H_CLIENT)
            continue;
        RCHECK (m, h->finishes <= 1);
        if (h->cancelled)
            RCHECK (m, h->finishes == 0);
        else if (m->live[m->inc_slot[h->inc]] == h->inc)
            RCHECK (m, h->finishes == 1);
    }
    //  Kill every edge: all tables empty
    for (int slot = 0; slot < R_EDGES; slot++)
        if (m->live[slot] >= 0) {
            s_forget (m->fx, m->inc_rid[m->live[slot]]);
            m->live[slot] = -1;
        }
    s_advance (m->fx, 4000);
    s_r_absorb (m);
    RCHECK (m, core_edge_count (m->fx->core) == 0);
    RCHECK (m, core_agent_count (m->fx->core) == 0);
    RCHECK (m, core_request_count (m->fx->core) == 0);
    RCHECK (m, core_waiting_count (m->fx->core) == 0);
    RCHECK (m, core_timer_count (m->fx->core) == 0);
    const core_stats_t *stats = core_stats (m->fx->core);
    RCHECK (m, stats->requests_started == stats->requests_finished);
    RCHECK (m, stats->malformed == 0);
    uint64_t by_status = 0;
    for (int i = 0; i < 17; i++)
        by_status += stats->requests_by_status[i];
    RCHECK (m, by_status == stats->requests_finished);
    if (getenv ("TETHER_TEST_VERBOSE"))
        printf ("seed %u: started %" PRIu64 " ok %" PRIu64 " cancelled %" PRIu64
                " deadline %" PRIu64 " not_found %" PRIu64 " exists %" PRIu64
                " exhausted %" PRIu64 " unavailable %" PRIu64
                " responses %" PRIu64 " superseded %" PRIu64
                " edges_lost %" PRIu64 " unexpected %" PRIu64 "\n",
                seed, stats->requests_started, stats->requests_by_status[OK],
                stats->requests_by_status[CANCELLED],
                stats->requests_by_status[DEADLINE_EXCEEDED],
                stats->requests_by_status[NOT_FOUND],
                stats->requests_by_status[ALREADY_EXISTS],
                stats->requests_by_status[RESOURCE_EXHAUSTED],
                stats->requests_by_status[UNAVAILABLE], stats->responses_routed,
                stats->agents_superseded, stats->edges_lost, stats->unexpected);
    s_fx_destroy (&m->fx);
    free (m);
}

static void
test_random_interleavings (void **state)
{
    unsigned int base = 1;
    const char *env_seed = getenv ("TETHER_TEST_SEED");
    if (env_seed)
        base = (unsigned int) strtoul (env_seed, NULL, 10);
    int runs = env_seed ? 1 : 100;
    for (int i = 0; i < runs; i++)
        s_random_run (base + (unsigned int) i, 1000);
}


int
main (void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown (name, s_setup, s_teardown)
        T (test_happy_path),
        T (test_reconnect_race_subscribe_first),
        T (test_reconnect_race_unsubscribe_first),
        T (test_supersession_moves_requests),
        T (test_superseded_before_delivery),
        T (test_end_agent_error),
        T (test_end_client_cancel),
        T (test_end_first_response_timeout),
        T (test_end_idle_timeout),
        T (test_end_client_deadline),
        T (test_end_max_timeout_cap),
        T (test_end_wait_expiry),
        T (test_wait_for_agent_delivered),
        T (test_agent_disconnect),
        T (test_client_edge_dead),
        T (test_responder_edge_dead),
        T (test_agent_edge_dead),
        T (test_edge_bye),
        T (test_edge_name_conflict),
        T (test_credit),
        T (test_credit_before_bind_and_cap),
        T (test_bind_refusals),
        T (test_bind_identity),
        T (test_publish_refusals),
        T (test_subscribe_refusals),
        T (test_hello_resync),
        T (test_resync_by_subscribe),
        T (test_session_out_of_range),
        T (test_liveness_and_ping),
        T (test_list),
        T (test_list_size_bound),
        T (test_list_pages),
        T (test_list_pages_churn),
        T (test_random_agent_tables),
        T (test_hash_key_only_when_empty),
        T (test_stats_event),
        T (test_stats_incarnation_and_rate),
        T (test_malformed),
        T (test_config_check),
        T (test_rejected_event),
        T (test_random_interleavings),
#undef T
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
