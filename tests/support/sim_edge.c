/*  =========================================================================
    sim_edge - a simulated edge for tests over real sockets
    =========================================================================
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sim_edge.h"

#include <string.h>

zactor_t *
sim_router_start (router_config_t *cfg, int *router_port, int *monitor_port)
{
    zactor_t *router = router_actor_start (cfg);
    assert_non_null (router);
    assert_int_equal (zstr_send (router, "PORT"), 0);
    assert_int_equal (zsock_recv (router, "ii", router_port, monitor_port), 0);
    assert_true (*router_port > 0);
    assert_true (*monitor_port > 0);
    return router;
}

uint64_t
sim_rand (uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

zsock_t *
sim_edge_new (uint64_t *rng, int port)
{
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    assert_non_null (sock);
    uint8_t id[16];
    for (size_t i = 0; i < sizeof id; i++)
        id[i] = (uint8_t) sim_rand (rng);
    id[0] = 'e'; //  ids starting with 0 are libzmq's
    assert_int_equal (
        zmq_setsockopt (zsock_resolve (sock), ZMQ_ROUTING_ID, id, sizeof id),
        0);
    zsock_set_linger (sock, 0);
    zsock_set_sndhwm (sock, 0);
    zsock_set_rcvhwm (sock, 0);
    assert_int_equal (zsock_connect (sock, "tcp://127.0.0.1:%d", port), 0);
    return sock;
}

void
sim_send (zsock_t *sock, Wire__Envelope *env, const void *payload, size_t size)
{
    zmsg_t *msg = zmsg_new ();
    zframe_t *frame = wire_envelope_encode (env);
    zmsg_append (msg, &frame);
    if (payload)
        zmsg_addmem (msg, payload, size);
    assert_int_equal (zmsg_send (&msg, sock), 0);
}

Wire__Envelope *
sim_expect (zsock_t *sock,
            int command,
            zframe_t **payload_p,
            const char *file,
            int line)
{
    int64_t deadline = zclock_mono () + SIM_DEADLINE_MS;
    int skipped = 0;
    while (true) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            break;
        zsock_set_rcvtimeo (sock, (int) left);
        zmsg_t *msg = zmsg_recv (sock);
        if (!msg)
            break;
        Wire__Envelope *env = NULL;
        zframe_t *first = zmsg_pop (msg);
        int rc = wire_envelope_decode (first, &env);
        zframe_destroy (&first);
        if (rc == 0 && (int) env->command == command) {
            if (payload_p)
                *payload_p = zmsg_pop (msg);
            zmsg_destroy (&msg);
            return env;
        }
        skipped++;
        wire_envelope_free (&env);
        zmsg_destroy (&msg);
    }
    fail_msg ("%s:%d: no %s within %d ms (%d other messages)", file, line,
              wire_command_name (command), SIM_DEADLINE_MS, skipped);
    return NULL;
}

uint64_t
sim_hello (zsock_t *edge,
           const char *edge_id,
           uint64_t incarnation,
           Wire__AgentEntry **agents,
           size_t n_agents)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__HELLO;
    env.edge_id = (char *) edge_id;
    env.incarnation = incarnation;
    env.agents = agents;
    env.n_agents = n_agents;
    sim_send (edge, &env, NULL, 0);
    Wire__Envelope *welcome = SIM_EXPECT (edge, WELCOME, NULL);
    uint64_t router_incarnation = welcome->incarnation;
    wire_envelope_free (&welcome);
    return router_incarnation;
}

uint64_t
sim_subscribe (zsock_t *edge, const char *agent_id, uint64_t handle)
{
    Wire__AgentEntry agent = WIRE__AGENT_ENTRY__INIT;
    agent.handle = handle;
    agent.agent_id = (char *) agent_id;
    agent.connected_at_unix_ms = zclock_time ();
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__SUBSCRIBE;
    env.agent = &agent;
    sim_send (edge, &env, NULL, 0);
    Wire__Envelope *subscribed = SIM_EXPECT (edge, SUBSCRIBED, NULL);
    assert_int_equal (subscribed->handle, handle);
    assert_string_equal (subscribed->agent_id, agent_id);
    uint64_t session = subscribed->session;
    assert_true (session > 0);
    wire_envelope_free (&subscribed);
    return session;
}

void
sim_publish (zsock_t *client,
             uint64_t handle,
             const char *request_id,
             const char *agent_id,
             const void *payload,
             size_t size)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__PUBLISH;
    env.handle = handle;
    env.request_id = (char *) request_id;
    env.agent_id = (char *) agent_id;
    env.credit = 16;
    sim_send (client, &env, payload, size);
}

void
sim_command (zsock_t *edge,
             int command,
             uint64_t handle,
             const char *request_id,
             int status,
             const void *payload,
             size_t size)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = (Wire__Command) command;
    env.handle = handle;
    env.request_id = (char *) request_id;
    env.status = status;
    if (status)
        env.message = "agent failed";
    sim_send (edge, &env, payload, size);
}

int64_t
sim_event_seq (const char *json)
{
    const char *seq = strstr (json, "\"seq\":");
    if (!seq)
        return -1;
    return (int64_t) strtoll (seq + 6, NULL, 10);
}

void
sim_sub_close (zsock_t **sub_p, int quiet_ms)
{
    if (!*sub_p)
        return;
    //  Stop the flow first, so that the monitor goes quiet; a bounded
    //  wait all the same, as the publisher may take a while to hear it.
    zsock_set_unsubscribe (*sub_p, "");
    zpoller_t *poller = zpoller_new (*sub_p, NULL);
    assert_non_null (poller);
    int64_t give_up = zclock_mono () + 10000;
    while (zclock_mono () < give_up
           && zpoller_wait (poller, quiet_ms) == *sub_p) {
        zmsg_t *msg = zmsg_recv (*sub_p);
        zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    zsock_destroy (sub_p);
}
