/*  =========================================================================
    test_router_actor - the router actor over real sockets

    Each test starts a router actor on tcp://127.0.0.1:* (the ports come
    from the actor's PORT command) and plays one or more edges with plain
    DEALER sockets speaking the wire protocol (proto/wire.proto).  Nothing
    waits on a clock: every wait is a receive with a deadline, and a missed
    deadline fails the test at the line that expected the message.
    =========================================================================
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <inttypes.h>
#include <string.h>

#include "router_actor.h"
#include "tlog.h"
#include "sim_edge.h"
#include "wire_envelope.h"

//  How long any single expected message may take, ms.
#define S_DEADLINE_MS SIM_DEADLINE_MS

typedef struct
{
    router_config_t cfg; //  settings of the actor under test
    zactor_t *router;    //  the actor
    int router_port;     //  its ROUTER's port
    int monitor_port;    //  its PUB's port
    uint64_t rng;        //  xorshift state for this test
} fixture_t;

//  ---------------------------------------------------------------------
//  Helpers

static void
s_router_stats (fixture_t *fx,
                uint64_t *agents,
                uint64_t *requests,
                uint64_t *edges,
                uint64_t *malformed)
{
    assert_int_equal (zstr_send (fx->router, "STATS"), 0);
    assert_int_equal (
        zsock_recv (fx->router, "8888", agents, requests, edges, malformed), 0);
}

//  The agent side of one request, all at once: BIND, one RESPONSE, END OK.
static void
s_answer (zsock_t *agent,
          uint64_t handle,
          const char *request_id,
          const void *payload,
          size_t size)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.handle = handle;
    env.request_id = (char *) request_id;
    env.command = WIRE__COMMAND__BIND;
    sim_send (agent, &env, NULL, 0);
    env.command = WIRE__COMMAND__RESPONSE;
    sim_send (agent, &env, payload, size);
    env.command = WIRE__COMMAND__END;
    env.status = 0;
    sim_send (agent, &env, NULL, 0);
}

static void
s_ping (zsock_t *edge, const char *edge_id, uint64_t incarnation)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__PING;
    env.edge_id = (char *) edge_id;
    env.incarnation = incarnation;
    sim_send (edge, &env, NULL, 0);
}

//  Subscribe `sub` to everything and make sure the PUB has seen the
//  subscription: keep causing agent.up events (with throwaway agents on
//  `edge`) until one arrives.  Drains what it received.
static void
s_monitor_join (zsock_t *sub, zsock_t *edge)
{
    zsock_set_subscribe (sub, "");
    zpoller_t *poller = zpoller_new (sub, NULL);
    bool joined = false;
    for (int attempt = 0; attempt < 100 && !joined; attempt++) {
        char agent_id[32];
        snprintf (agent_id, sizeof agent_id, "probe-%d", attempt);
        sim_subscribe (edge, agent_id, 900000 + (uint64_t) attempt);
        joined = zpoller_wait (poller, 100) == sub;
    }
    assert_true (joined);
    //  Drain whatever is already queued.
    while (zpoller_wait (poller, 0) == sub) {
        zmsg_t *msg = zmsg_recv (sub);
        zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
}

//  ---------------------------------------------------------------------
//  Fixture

static int
s_setup (void **state)
{
    fixture_t *fx = (fixture_t *) zmalloc (sizeof (fixture_t));
    router_config_defaults (&fx->cfg);
    free (fx->cfg.bind);
    //  Port 0: the kernel picks a random free port.  (CZMQ's ":*" scans
    //  upwards from 49152, so a copy of this test running at once could
    //  take the port test_router_restart frees and binds again.)
    fx->cfg.bind = strdup ("tcp://127.0.0.1:0");
    free (fx->cfg.monitor);
    fx->cfg.monitor = strdup ("tcp://127.0.0.1:0");
    fx->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t) zclock_usecs ();
    fx->router =
        sim_router_start (&fx->cfg, &fx->router_port, &fx->monitor_port);
    *state = fx;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    zactor_destroy (&fx->router);
    router_config_clear (&fx->cfg);
    free (fx);
    return 0;
}

//  ---------------------------------------------------------------------
//  (a) The happy path, edge to edge, with the monitor watching.

static void
test_happy_path (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    zsock_t *agent_edge = sim_edge_new (&fx->rng, fx->router_port);
    zsock_t *client_edge = sim_edge_new (&fx->rng, fx->router_port);
    zsock_t *sub = zsock_new (ZMQ_SUB);
    assert_int_equal (
        zsock_connect (sub, "tcp://127.0.0.1:%d", fx->monitor_port), 0);

    uint64_t incarnation = sim_hello (agent_edge, "edge-a:1", 11, NULL, 0);
    assert_true (incarnation != 0);
    s_monitor_join (sub, agent_edge);

    s_ping (agent_edge, "edge-a:1", 11);
    Wire__Envelope *pong = SIM_EXPECT (agent_edge, PONG, NULL);
    assert_true (pong->known);
    assert_int_equal (pong->incarnation, incarnation);
    wire_envelope_free (&pong);

    uint64_t session = sim_subscribe (agent_edge, "dev-1", 1);
    assert_int_equal (sim_hello (client_edge, "edge-b:1", 22, NULL, 0),
                      incarnation);

    //  Payload bytes are opaque to the router: zeros and high bytes too.
    uint8_t request[1000];
    for (size_t i = 0; i < sizeof request; i++)
        request[i] = (uint8_t) (i * 7);
    sim_publish (client_edge, 7, "req-1", "dev-1", request, sizeof request);

    zframe_t *payload = NULL;
    Wire__Envelope *deliver = SIM_EXPECT (agent_edge, DELIVER, &payload);
    assert_int_equal (deliver->handle, 1);
    assert_int_equal (deliver->session, session);
    assert_string_equal (deliver->request_id, "req-1");
    assert_non_null (payload);
    assert_int_equal (zframe_size (payload), sizeof request);
    assert_memory_equal (zframe_data (payload), request, sizeof request);
    wire_envelope_free (&deliver);
    zframe_destroy (&payload);

    uint8_t response[300];
    for (size_t i = 0; i < sizeof response; i++)
        response[i] = (uint8_t) (255 - i);
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__BIND;
    env.handle = 2;
    env.request_id = "req-1";
    sim_send (agent_edge, &env, NULL, 0);
    Wire__Envelope *bound = SIM_EXPECT (agent_edge, BOUND, NULL);
    assert_int_equal (bound->handle, 2);
    assert_true (bound->credit > 0);
    wire_envelope_free (&bound);

    env.command = WIRE__COMMAND__RESPONSE;
    sim_send (agent_edge, &env, response, sizeof response);
    Wire__Envelope *reply = SIM_EXPECT (client_edge, REPLY, &payload);
    assert_int_equal (reply->handle, 7);
    assert_string_equal (reply->request_id, "req-1");
    assert_non_null (payload);
    assert_int_equal (zframe_size (payload), sizeof response);
    assert_memory_equal (zframe_data (payload), response, sizeof response);
    wire_envelope_free (&reply);
    zframe_destroy (&payload);

    env.command = WIRE__COMMAND__END;
    env.status = 0;
    sim_send (agent_edge, &env, NULL, 0);
    Wire__Envelope *finish = SIM_EXPECT (client_edge, FINISH, NULL);
    assert_int_equal (finish->handle, 7);
    assert_int_equal (finish->status, 0);
    wire_envelope_free (&finish);

    //  The monitor saw it all, in order, without a gap.
    bool seen_up = false, seen_start = false, seen_end = false;
    int64_t last_seq = -1;
    zsock_set_rcvtimeo (sub, S_DEADLINE_MS);
    while (!seen_end) {
        char *topic = NULL, *json = NULL;
        if (zstr_recvx (sub, &topic, &json, NULL) < 2) {
            zstr_free (&topic);
            zstr_free (&json);
            fail_msg ("monitor: no request.end");
        }
        int64_t seq = sim_event_seq (json);
        assert_true (seq >= 0);
        if (last_seq >= 0)
            assert_int_equal (seq, last_seq + 1);
        last_seq = seq;
        if (streq (topic, "agent.up") && strstr (json, "dev-1"))
            seen_up = true;
        if (streq (topic, "request.start"))
            seen_start = true;
        if (streq (topic, "request.end")) {
            assert_true (seen_start);
            seen_end = true;
        }
        zstr_free (&topic);
        zstr_free (&json);
    }
    assert_true (seen_up);

    uint64_t agents, requests, edges, malformed;
    s_router_stats (fx, &agents, &requests, &edges, &malformed);
    assert_int_equal (requests, 0);
    assert_true (agents >= 1);
    assert_int_equal (edges, 2);
    assert_int_equal (malformed, 0);

    sim_sub_close (&sub, 200);
    zsock_destroy (&client_edge);
    zsock_destroy (&agent_edge);
}

//  ---------------------------------------------------------------------
//  (b) Garbage on the socket is counted and dropped; routing goes on.

//  Drain whatever the router sent back, so that its queue to us never
//  fills (a full edge is a dead edge, which is not what this tests).
static void
s_drain (zsock_t *sock)
{
    while (zsock_events (sock) & ZMQ_POLLIN) {
        zmsg_t *msg = zmsg_recv (sock);
        zmsg_destroy (&msg);
    }
}

static void
s_send_garbage (fixture_t *fx, zsock_t *sock, int kind)
{
    zmsg_t *msg = zmsg_new ();
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.handle = sim_rand (&fx->rng) % 50;
    env.request_id = "r-garbage";
    env.session = sim_rand (&fx->rng) % 5;
    uint8_t bytes[256];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t) sim_rand (&fx->rng);
    switch (kind) {
        case 0: { //  1..4 frames of random bytes
            int frames = 1 + (int) (sim_rand (&fx->rng) % 4);
            for (int i = 0; i < frames; i++)
                zmsg_addmem (msg, bytes, sim_rand (&fx->rng) % sizeof bytes);
            break;
        }
        case 1: //  empty frames
            zmsg_addmem (msg, NULL, 0);
            if (sim_rand (&fx->rng) % 2)
                zmsg_addmem (msg, NULL, 0);
            break;
        case 2: { //  a well-formed envelope of version 2
            env.command = WIRE__COMMAND__PING;
            env.version = 2;
            size_t size = wire__envelope__get_packed_size (&env);
            zframe_t *frame = zframe_new (NULL, size);
            wire__envelope__pack (&env, zframe_data (frame));
            zmsg_append (msg, &frame);
            break;
        }
        case 3: { //  unknown, reserved or router->edge command
            static const int commands[] = {0,  12, 31, 32, 33,
                                           36, 39, 40, 99, -1};
            env.command = (Wire__Command) commands[sim_rand (&fx->rng) % 10];
            zframe_t *frame = wire_envelope_encode (&env);
            zmsg_append (msg, &frame);
            break;
        }
        case 4: { //  a known command with too many frames
            env.command = (Wire__Command) (1 + sim_rand (&fx->rng) % 11);
            zframe_t *frame = wire_envelope_encode (&env);
            zmsg_append (msg, &frame);
            int extra = 2 + (int) (sim_rand (&fx->rng) % 3);
            for (int i = 0; i < extra; i++)
                zmsg_addmem (msg, bytes, 8);
            break;
        }
        case 5: { //  payload commands without their payload
            env.command = sim_rand (&fx->rng) % 2 ? WIRE__COMMAND__PUBLISH
                                                  : WIRE__COMMAND__RESPONSE;
            env.agent_id = "nobody";
            zframe_t *frame = wire_envelope_encode (&env);
            zmsg_append (msg, &frame);
            break;
        }
        case 6: { //  well-formed, out of place: unknown ids
            static const Wire__Command commands[] = {
                WIRE__COMMAND__BIND, WIRE__COMMAND__END, WIRE__COMMAND__CANCEL,
                WIRE__COMMAND__CREDIT, WIRE__COMMAND__UNSUBSCRIBE};
            env.command = commands[sim_rand (&fx->rng) % 5];
            env.credit = (uint32_t) sim_rand (&fx->rng);
            env.status = (int32_t) (sim_rand (&fx->rng) % 40) - 5;
            zframe_t *frame = wire_envelope_encode (&env);
            zmsg_append (msg, &frame);
            break;
        }
        case 7: { //  bad agent ids and labels
            Wire__AgentEntry agent = WIRE__AGENT_ENTRY__INIT;
            char long_id[5000];
            memset (long_id, 'x', sizeof long_id - 1);
            long_id[sizeof long_id - 1] = 0;
            static char *ids[] = {"", "bad id", "tab\tid", "../etc", NULL};
            int pick = (int) (sim_rand (&fx->rng) % 5);
            agent.agent_id = ids[pick] ? ids[pick] : long_id;
            agent.handle = 5000 + sim_rand (&fx->rng) % 100;
            env.command = WIRE__COMMAND__SUBSCRIBE;
            if (sim_rand (&fx->rng) % 4)
                env.agent = &agent;
            zframe_t *frame = wire_envelope_encode (&env);
            zmsg_append (msg, &frame);
            break;
        }
        default: { //  a truncated envelope
            env.command = WIRE__COMMAND__PUBLISH;
            env.agent_id = "dev-g";
            zframe_t *frame = wire_envelope_encode (&env);
            size_t size = zframe_size (frame);
            zmsg_addmem (msg, zframe_data (frame),
                         size > 1 ? 1 + sim_rand (&fx->rng) % (size - 1) : 0);
            zframe_destroy (&frame);
            zmsg_addmem (msg, bytes, 16);
            break;
        }
    }
    assert_int_equal (zmsg_send (&msg, sock), 0);
}

static void
test_garbage (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    fx->rng = 0x12345678abcdefull; //  reproducible
    zsock_t *edge = sim_edge_new (&fx->rng, fx->router_port);
    zsock_t *stranger = sim_edge_new (&fx->rng, fx->router_port);
    sim_hello (edge, "edge-g:1", 33, NULL, 0);
    sim_subscribe (edge, "dev-g", 1);

    for (int i = 0; i < 5000; i++) {
        //  From a known edge and from one that never said HELLO.
        s_send_garbage (fx, i % 3 ? edge : stranger,
                        (int) (sim_rand (&fx->rng) % 9));
        if (i % 64 == 0) {
            s_drain (edge);
            s_drain (stranger);
        }
    }
    //  A frame far over the payload limit.
    size_t huge_size = 8 * 1024 * 1024;
    uint8_t *huge = (uint8_t *) zmalloc (huge_size);
    sim_publish (edge, 99, "req-huge", "dev-g", huge, huge_size);
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, huge, huge_size);
    assert_int_equal (zmsg_send (&msg, edge), 0);
    free (huge);

    //  Still routing: PING from the known edge, and a full request.
    s_ping (edge, "edge-g:1", 33);
    Wire__Envelope *pong = SIM_EXPECT (edge, PONG, NULL);
    wire_envelope_free (&pong);

    zsock_t *client = sim_edge_new (&fx->rng, fx->router_port);
    sim_hello (client, "edge-c:1", 44, NULL, 0);
    zsock_t *agent = sim_edge_new (&fx->rng, fx->router_port);
    sim_hello (agent, "edge-h:1", 55, NULL, 0);
    sim_subscribe (agent, "dev-h", 1);
    sim_publish (client, 1, "req-after", "dev-h", "ping", 4);
    Wire__Envelope *deliver = SIM_EXPECT (agent, DELIVER, NULL);
    wire_envelope_free (&deliver);
    s_answer (agent, 2, "req-after", "pong", 4);
    zframe_t *payload = NULL;
    Wire__Envelope *reply = SIM_EXPECT (client, REPLY, &payload);
    assert_memory_equal (zframe_data (payload), "pong", 4);
    zframe_destroy (&payload);
    wire_envelope_free (&reply);
    Wire__Envelope *finish = SIM_EXPECT (client, FINISH, NULL);
    assert_int_equal (finish->status, 0);
    wire_envelope_free (&finish);

    uint64_t agents, requests, edges, malformed;
    s_router_stats (fx, &agents, &requests, &edges, &malformed);
    assert_true (malformed > 0);

    zsock_destroy (&agent);
    zsock_destroy (&client);
    zsock_destroy (&stranger);
    zsock_destroy (&edge);
}

//  A frame larger than any message may be is refused by the socket itself
//  (ZMQ_MAXMSGSIZE): the sender is cut off, the router carries on.
static void
test_oversize_frame (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    zsock_t *rogue = sim_edge_new (&fx->rng, fx->router_port);
    size_t size = WIRE_ENVELOPE_MAX + 1024 * 1024;
    zmsg_t *msg = zmsg_new ();
    zframe_t *frame = zframe_new (NULL, size);
    memset (zframe_data (frame), 'z', size);
    zmsg_append (msg, &frame);
    assert_int_equal (zmsg_send (&msg, rogue), 0);

    zsock_t *edge = sim_edge_new (&fx->rng, fx->router_port);
    sim_hello (edge, "edge-o:1", 1, NULL, 0);
    s_ping (edge, "edge-o:1", 1);
    Wire__Envelope *pong = SIM_EXPECT (edge, PONG, NULL);
    assert_true (pong->known);
    wire_envelope_free (&pong);
    zsock_destroy (&edge);
    zsock_destroy (&rogue);
}

//  ---------------------------------------------------------------------
//  (c) The router restarts: the edge notices, re-sends HELLO with its
//  agents, and routing resumes.

static void
test_router_restart (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    //  The port must still be free when the router binds it again.  Take
    //  one above the kernel's ephemeral range (32768-60999 by default), so
    //  that no outgoing connection, ours or another process's, can be
    //  given it as its source port in between.
    zactor_destroy (&fx->router);
    free (fx->cfg.bind);
    fx->cfg.bind = strdup ("tcp://127.0.0.1:![61000-65535]");
    fx->router =
        sim_router_start (&fx->cfg, &fx->router_port, &fx->monitor_port);

    zsock_t *edge = sim_edge_new (&fx->rng, fx->router_port);
    uint64_t old_incarnation = sim_hello (edge, "edge-r:1", 66, NULL, 0);
    uint64_t session = sim_subscribe (edge, "dev-r", 1);

    //  Same port, new process state.
    int port = fx->router_port;
    zactor_destroy (&fx->router);
    free (fx->cfg.bind);
    fx->cfg.bind = zsys_sprintf ("tcp://127.0.0.1:%d", port);
    fx->router =
        sim_router_start (&fx->cfg, &fx->router_port, &fx->monitor_port);
    assert_int_equal (fx->router_port, port);

    //  Heartbeat until the new router answers; the DEALER reconnects by
    //  itself.  Each PING waits at most 200 ms for its PONG.
    bool rejoin = false;
    uint64_t new_incarnation = 0;
    for (int attempt = 0; attempt < 100 && !rejoin; attempt++) {
        s_ping (edge, "edge-r:1", 66);
        zsock_set_rcvtimeo (edge, 200);
        zmsg_t *msg = zmsg_recv (edge);
        if (!msg)
            continue;
        Wire__Envelope *env = NULL;
        if (wire_envelope_decode (zmsg_first (msg), &env) == 0
            && env->command == WIRE__COMMAND__PONG
            && (!env->known || env->incarnation != old_incarnation)) {
            rejoin = true;
            new_incarnation = env->incarnation;
            assert_false (env->known);
        }
        wire_envelope_free (&env);
        zmsg_destroy (&msg);
    }
    assert_true (rejoin);
    assert_true (new_incarnation != old_incarnation);

    //  Re-send HELLO with every agent stream held.
    Wire__AgentEntry agent = WIRE__AGENT_ENTRY__INIT;
    agent.handle = 1;
    agent.agent_id = "dev-r";
    agent.session = session;
    Wire__AgentEntry *agents[] = {&agent};
    assert_int_equal (sim_hello (edge, "edge-r:1", 66, agents, 1),
                      new_incarnation);
    Wire__Envelope *subscribed = SIM_EXPECT (edge, SUBSCRIBED, NULL);
    assert_int_equal (subscribed->handle, 1);
    wire_envelope_free (&subscribed);

    zsock_t *client = sim_edge_new (&fx->rng, fx->router_port);
    sim_hello (client, "edge-s:1", 77, NULL, 0);
    sim_publish (client, 3, "req-r", "dev-r", "again", 5);
    zframe_t *payload = NULL;
    Wire__Envelope *deliver = SIM_EXPECT (edge, DELIVER, &payload);
    assert_int_equal (deliver->handle, 1);
    assert_memory_equal (zframe_data (payload), "again", 5);
    zframe_destroy (&payload);
    wire_envelope_free (&deliver);

    zsock_destroy (&client);
    zsock_destroy (&edge);
}

//  ---------------------------------------------------------------------
//  (d) A monitor that never reads does not slow routing down.

static void
test_stalled_monitor (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    zsock_t *agent = sim_edge_new (&fx->rng, fx->router_port);
    zsock_t *client = sim_edge_new (&fx->rng, fx->router_port);
    zsock_t *sub = zsock_new (ZMQ_SUB);
    zsock_set_rcvhwm (sub, 100);
    assert_int_equal (
        zsock_connect (sub, "tcp://127.0.0.1:%d", fx->monitor_port), 0);
    sim_hello (agent, "edge-m:1", 1, NULL, 0);
    sim_hello (client, "edge-n:1", 2, NULL, 0);
    s_monitor_join (sub, agent); //  from here on `sub` is never read
    sim_subscribe (agent, "dev-m", 1);

    //  Two events per request: 25,000 requests, 64 in flight.
    const int total = 25000;
    const int window = 64;
    int sent = 0, finished = 0, iterations = 0;
    zpoller_t *poller = zpoller_new (agent, client, NULL);
    while (finished < total) {
        assert_true (++iterations < 50 * total);
        while (sent < total && sent - finished < window) {
            char request_id[32];
            snprintf (request_id, sizeof request_id, "m-%d", sent);
            sim_publish (client, 1 + (uint64_t) sent, request_id, "dev-m", "q",
                         1);
            sent++;
        }
        void *which = zpoller_wait (poller, S_DEADLINE_MS);
        assert_non_null (which);
        zmsg_t *msg = zmsg_recv (which);
        assert_non_null (msg);
        Wire__Envelope *env = NULL;
        assert_int_equal (wire_envelope_decode (zmsg_first (msg), &env), 0);
        if (env->command == WIRE__COMMAND__DELIVER)
            s_answer (agent, env->handle + 1000000, env->request_id, "a", 1);
        else if (env->command == WIRE__COMMAND__FINISH) {
            assert_int_equal (env->status, 0);
            finished++;
        }
        wire_envelope_free (&env);
        zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);

    uint64_t agents, requests, edges, malformed;
    s_router_stats (fx, &agents, &requests, &edges, &malformed);
    assert_int_equal (requests, 0);
    sim_sub_close (&sub, 200);
    zsock_destroy (&client);
    zsock_destroy (&agent);
}

//  ---------------------------------------------------------------------
//  Binding failure: router_actor_start returns NULL, nothing leaks.

static void
test_bind_failure (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    router_config_t cfg;
    router_config_copy (&cfg, &fx->cfg);
    free (cfg.bind);
    cfg.bind = zsys_sprintf ("tcp://127.0.0.1:%d", fx->router_port);
    zactor_t *second = router_actor_start (&cfg);
    assert_null (second);
    free (cfg.bind);
    cfg.bind = strdup ("nonsense://here");
    assert_null (router_actor_start (&cfg));
    router_config_clear (&cfg);
}

//  Several endpoints, one of them inproc, as the embedded router uses.
static void
test_inproc_endpoint (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    router_config_t cfg;
    router_config_copy (&cfg, &fx->cfg);
    free (cfg.bind);
    cfg.bind = strdup ("inproc://test-router-a, tcp://127.0.0.1:0");
    free (cfg.monitor);
    cfg.monitor = strdup ("");
    zactor_t *router = router_actor_start (&cfg);
    assert_non_null (router);
    int router_port = -1, monitor_port = -1;
    zstr_send (router, "PORT");
    zsock_recv (router, "ii", &router_port, &monitor_port);
    assert_true (router_port > 0);
    assert_int_equal (monitor_port, 0);

    zsock_t *edge = zsock_new (ZMQ_DEALER);
    assert_int_equal (zsock_connect (edge, "inproc://test-router-a"), 0);
    sim_hello (edge, "edge-i:1", 1, NULL, 0);
    s_ping (edge, "edge-i:1", 1);
    Wire__Envelope *pong = SIM_EXPECT (edge, PONG, NULL);
    assert_true (pong->known);
    wire_envelope_free (&pong);
    zsock_destroy (&edge);
    zactor_destroy (&router);
    router_config_clear (&cfg);
}

int
main (void)
{
    tlog_setup (TLOG_ERROR, "test_router_actor");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_happy_path, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_garbage, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_oversize_frame, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_router_restart, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_stalled_monitor, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_bind_failure, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_inproc_endpoint, s_setup,
                                         s_teardown),
    };
    int failed = cmocka_run_group_tests (tests, NULL, NULL);
    zsys_shutdown ();
    return failed;
}
