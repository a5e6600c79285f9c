/*  =========================================================================
    test_router_flush - the router actor's outbox flush when an edge
    cannot take more

    The actor writes each edge message straight from the core's outbox
    with ZMQ_DONTWAIT on a ROUTER_MANDATORY socket.  When an edge stops
    reading and its queue is full (edge_hwm), the send fails with EAGAIN:
    the actor must drop that message (its payload frame included), tell
    the core, and the core must treat the edge as lost at once, ending its
    requests.  The edge here is an inproc DEALER with a receive HWM of 1,
    so the queue fills after a known number of messages, and nothing waits
    on a clock: every wait is a receive with a deadline.
    =========================================================================
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sim_edge.h"
#include "tlog.h"

#include <inttypes.h>
#include <string.h>
#include <unistd.h>

typedef struct
{
    router_config_t cfg; //  the router's settings
    zactor_t *router;    //  the actor under test
    char endpoint[96];   //  its inproc endpoint
    uint64_t rng;        //  routing ids
} fixture_t;

static int
s_setup (void **state)
{
    fixture_t *fx = (fixture_t *) calloc (1, sizeof (fixture_t));
    assert_non_null (fx);
    fx->rng = 0x2545F4914F6CDD1DULL ^ (uint64_t) zclock_usecs ();
    if (fx->rng == 0)
        fx->rng = 1;
    snprintf (fx->endpoint, sizeof fx->endpoint,
              "inproc://router-flush-%d-%016" PRIx64, (int) getpid (),
              sim_rand (&fx->rng));
    router_config_defaults (&fx->cfg);
    free (fx->cfg.bind);
    fx->cfg.bind = strdup (fx->endpoint);
    free (fx->cfg.monitor);
    fx->cfg.monitor = strdup ("");
    assert_non_null (fx->cfg.bind);
    assert_non_null (fx->cfg.monitor);
    //  One message queued per edge before the router sees EAGAIN
    fx->cfg.edge_hwm = 1;
    fx->router = router_actor_start (&fx->cfg);
    assert_non_null (fx->router);
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

//  A DEALER on the router's inproc endpoint with a random routing id and
//  a receive HWM of `rcvhwm` (0 = none).
static zsock_t *
s_edge_new (fixture_t *fx, int rcvhwm)
{
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    assert_non_null (sock);
    uint8_t id[16];
    for (size_t i = 0; i < sizeof id; i++)
        id[i] = (uint8_t) sim_rand (&fx->rng);
    id[0] = 'e';
    assert_int_equal (
        zmq_setsockopt (zsock_resolve (sock), ZMQ_ROUTING_ID, id, sizeof id),
        0);
    zsock_set_linger (sock, 0);
    zsock_set_sndhwm (sock, 0);
    zsock_set_rcvhwm (sock, rcvhwm);
    assert_int_equal (zsock_connect (sock, "%s", fx->endpoint), 0);
    return sock;
}

//  A client edge stops reading while its request's response streams:
//  the REPLY that finds its queue full loses the edge, the request ends
//  CANCELLED for the responder, and the edge is forgotten (its next PING
//  is answered as from an unknown edge).
static void
test_full_edge_is_lost (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    zsock_t *client = s_edge_new (fx, 1);
    zsock_t *agents = s_edge_new (fx, 0);
    sim_hello (client, "flush-client", 1, NULL, 0);
    sim_hello (agents, "flush-agents", 2, NULL, 0);
    sim_subscribe (agents, "flush-agent", 10);

    byte payload[200];
    memset (payload, 'q', sizeof payload);
    sim_publish (client, 1, "flush-r1", "flush-agent", payload, sizeof payload);
    zframe_t *delivered = NULL;
    Wire__Envelope *deliver = SIM_EXPECT (agents, DELIVER, &delivered);
    assert_string_equal (deliver->request_id, "flush-r1");
    assert_non_null (delivered);
    assert_int_equal (zframe_size (delivered), sizeof payload);
    assert_memory_equal (zframe_data (delivered), payload, sizeof payload);
    zframe_destroy (&delivered);
    wire_envelope_free (&deliver);

    sim_command (agents, WIRE__COMMAND__BIND, 20, "flush-r1", 0, NULL, 0);
    Wire__Envelope *bound = SIM_EXPECT (agents, BOUND, NULL);
    wire_envelope_free (&bound);
    //  The client reads nothing: two REPLYs fill its queue (the router's
    //  HWM plus its own), a later one fails
    for (int i = 0; i < 5; i++)
        sim_command (agents, WIRE__COMMAND__RESPONSE, 20, "flush-r1", 0,
                     payload, sizeof payload);
    Wire__Envelope *finish = SIM_EXPECT (agents, FINISH, NULL);
    assert_string_equal (finish->request_id, "flush-r1");
    assert_int_equal (finish->status, 1); //  CANCELLED
    assert_string_equal (finish->message, "client's edge lost");
    wire_envelope_free (&finish);

    //  The client reads what fitted, then is a stranger to the router.
    //  Until the router's socket has heard that the client read, its
    //  queue still looks full and PONGs are dropped: ask again.
    Wire__Envelope ping = WIRE__ENVELOPE__INIT;
    ping.command = WIRE__COMMAND__PING;
    ping.edge_id = "flush-client";
    ping.incarnation = 1;
    bool stranger = false;
    for (int tries = 0; tries < 100 && !stranger; tries++) {
        sim_send (client, &ping, NULL, 0);
        zsock_set_rcvtimeo (client, 100);
        zmsg_t *msg;
        while (!stranger && (msg = zmsg_recv (client))) {
            Wire__Envelope *env = NULL;
            assert_int_equal (wire_envelope_decode (zmsg_first (msg), &env), 0);
            if (env->command == WIRE__COMMAND__PONG) {
                assert_false (env->known);
                stranger = true;
            } else
                assert_int_equal (env->command, WIRE__COMMAND__REPLY);
            wire_envelope_free (&env);
            zmsg_destroy (&msg);
        }
    }
    assert_true (stranger);

    //  The router holds nothing of it; the agents' edge is still there
    assert_int_equal (zstr_send (fx->router, "STATS"), 0);
    uint64_t agent_count, requests, edges, malformed;
    assert_int_equal (zsock_recv (fx->router, "8888", &agent_count, &requests,
                                  &edges, &malformed),
                      0);
    assert_int_equal (agent_count, 1);
    assert_int_equal (requests, 0);
    assert_int_equal (edges, 1);
    assert_int_equal (malformed, 0);
    zsock_destroy (&agents);
    zsock_destroy (&client);
}

int
main (void)
{
    tlog_setup (TLOG_ERROR, "test_router_flush");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_full_edge_is_lost, s_setup,
                                         s_teardown),
    };
    int failed = cmocka_run_group_tests (tests, NULL, NULL);
    zsys_shutdown ();
    return failed;
}
