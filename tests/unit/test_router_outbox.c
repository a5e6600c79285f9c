/*  =========================================================================
    test_router_outbox - the core's frame-by-frame input and byte outbox

    core_handle_frames takes a message as a shell reads it off a socket
    (envelope bytes, frame count, payload frame), and core_outbox_take
    gives edge messages back as bytes, borrowed until the core's next
    input.  These tests check what a shell relies on: entries come out in
    order, whether taken or popped or both; the bytes of taken entries
    stay put while more are taken, also after the outbox has grown and
    moved its entries; payloads change hands exactly once (ASan checks
    nothing leaks, also when the core is destroyed with a full outbox);
    and frame counts and empty inputs are judged as by core_handle.
    =========================================================================
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "router_core.h"
#include "wire_envelope.h"

#define S_INCARNATION 7

static int
s_setup (void **state)
{
    core_config_t cfg;
    core_config_defaults (&cfg);
    core_t *core = core_new (&cfg, S_INCARNATION, 1000);
    assert_non_null (core);
    core_set_events (core, false);
    *state = core;
    return 0;
}

static int
s_teardown (void **state)
{
    core_t *core = (core_t *) *state;
    core_destroy (&core);
    assert_null (core);
    return 0;
}

//  Hand `env` (and `payload`, taken, when not NULL) to the core as a
//  message of `frames` frames from routing id `rid`.
static void
s_input (core_t *core,
         const char *rid,
         Wire__Envelope *env,
         size_t frames,
         zframe_t **payload_p,
         int64_t now)
{
    zframe_t *routing_id = zframe_new (rid, strlen (rid));
    byte packed[512];
    size_t size = wire_envelope_pack_into (env, packed, sizeof packed);
    assert_true (size <= sizeof packed);
    core_handle_frames (core, routing_id, packed, size, frames, payload_p, now);
    if (payload_p)
        assert_null (*payload_p);
    zframe_destroy (&routing_id);
}

static void
s_ping (core_t *core, int index)
{
    char rid[16];
    snprintf (rid, sizeof rid, "rid-%03d", index);
    Wire__Envelope ping = WIRE__ENVELOPE__INIT;
    ping.command = WIRE__COMMAND__PING;
    s_input (core, rid, &ping, 1, NULL, 100);
}

//  `out` is the PONG to the edge that sent PING `index`.
static void
s_assert_pong (const core_output_t *out, int index)
{
    char rid[16];
    snprintf (rid, sizeof rid, "rid-%03d", index);
    assert_int_equal (out->kind, CORE_OUT_EDGE);
    assert_int_equal (out->routing_id_size, strlen (rid));
    assert_memory_equal (out->routing_id, rid, strlen (rid));
    assert_null (out->payload);
    assert_null (out->msg);
    wire_envelope_parser_t *parser = wire_envelope_parser_new ();
    Wire__Envelope *env = NULL;
    assert_int_equal (wire_envelope_parser_decode (parser, out->envelope,
                                                   out->envelope_size, &env),
                      0);
    assert_int_equal (env->command, WIRE__COMMAND__PONG);
    assert_int_equal (env->incarnation, S_INCARNATION);
    assert_false (env->known);
    wire_envelope_parser_destroy (&parser);
}

static void
test_order_and_borrowed_bytes (void **state)
{
    core_t *core = (core_t *) *state;
    for (int i = 0; i < 100; i++)
        s_ping (core, i);
    //  Taken entries' bytes stay put while more are taken
    core_output_t first, out;
    assert_true (core_outbox_take (core, &first));
    s_assert_pong (&first, 0);
    for (int i = 1; i < 30; i++) {
        assert_true (core_outbox_take (core, &out));
        s_assert_pong (&out, i);
    }
    s_assert_pong (&first, 0);
    //  More input while 70 wait: the outbox moves and grows
    for (int i = 100; i < 200; i++)
        s_ping (core, i);
    //  Taking and popping mix, in one order
    for (int i = 30; i < 200; i++) {
        if (i % 3 == 0) {
            core_out_t kind = 0;
            zmsg_t *msg = core_outbox_pop (core, &kind);
            assert_non_null (msg);
            assert_int_equal (kind, CORE_OUT_EDGE);
            assert_int_equal (zmsg_size (msg), 2);
            zframe_t *rid = zmsg_first (msg);
            zframe_t *head = zmsg_next (msg);
            core_output_t view = {.kind = kind,
                                  .routing_id = zframe_data (rid),
                                  .routing_id_size = zframe_size (rid),
                                  .envelope = zframe_data (head),
                                  .envelope_size = zframe_size (head)};
            s_assert_pong (&view, i);
            zmsg_destroy (&msg);
        } else {
            assert_true (core_outbox_take (core, &out));
            s_assert_pong (&out, i);
        }
    }
    assert_false (core_outbox_take (core, &out));
    assert_null (core_outbox_pop (core, NULL));
    assert_int_equal (core_stats (core)->unknown_edge, 200);
    //  Empty, it starts again; an entry taken last is readable until the
    //  next input
    s_ping (core, 200);
    assert_true (core_outbox_take (core, &out));
    assert_false (core_outbox_take (core, &first));
    s_assert_pong (&out, 200);
}

//  HELLO from `rid` as edge `name`; takes the WELCOME.
static void
s_hello (core_t *core, const char *rid, const char *name)
{
    Wire__Envelope hello = WIRE__ENVELOPE__INIT;
    hello.command = WIRE__COMMAND__HELLO;
    hello.edge_id = (char *) name;
    hello.incarnation = 1;
    s_input (core, rid, &hello, 1, NULL, 100);
    core_output_t out;
    bool welcomed = false;
    while (core_outbox_take (core, &out)) {
        if (out.kind == CORE_OUT_EDGE)
            welcomed = true;
        zmsg_destroy (&out.msg); //  a log line
    }
    assert_true (welcomed);
}

static void
test_payloads_change_hands_once (void **state)
{
    core_t *core = (core_t *) *state;
    s_hello (core, "edge-agents", "agents");
    s_hello (core, "edge-clients", "clients");
    Wire__AgentEntry agent = WIRE__AGENT_ENTRY__INIT;
    agent.handle = 5;
    agent.agent_id = "box-1";
    Wire__Envelope subscribe = WIRE__ENVELOPE__INIT;
    subscribe.command = WIRE__COMMAND__SUBSCRIBE;
    subscribe.agent = &agent;
    s_input (core, "edge-agents", &subscribe, 1, NULL, 100);
    core_output_t out;
    bool subscribed = false;
    while (core_outbox_take (core, &out)) {
        if (out.kind == CORE_OUT_EDGE)
            subscribed = true;
        zmsg_destroy (&out.msg);
    }
    assert_true (subscribed);
    assert_int_equal (core_agent_count (core), 1);

    //  PUBLISH: the DELIVER carries a copy the caller owns
    Wire__Envelope publish = WIRE__ENVELOPE__INIT;
    publish.command = WIRE__COMMAND__PUBLISH;
    publish.handle = 9;
    publish.request_id = "req-1";
    publish.agent_id = "box-1";
    publish.credit = 4;
    zframe_t *payload = zframe_new ("request bytes", 13);
    s_input (core, "edge-clients", &publish, 2, &payload, 101);
    assert_true (core_outbox_take (core, &out));
    assert_int_equal (out.kind, CORE_OUT_EDGE);
    assert_memory_equal (out.routing_id, "edge-agents", 11);
    assert_non_null (out.payload);
    assert_int_equal (zframe_size (out.payload), 13);
    assert_memory_equal (zframe_data (out.payload), "request bytes", 13);
    zframe_destroy (&out.payload);
    assert_false (core_outbox_take (core, &out));

    //  A frame too many: malformed, the payload is the core's to free
    publish.request_id = "req-2";
    payload = zframe_new ("x", 1);
    s_input (core, "edge-clients", &publish, 3, &payload, 102);
    assert_int_equal (core_stats (core)->malformed, 1);
    assert_int_equal (core_request_count (core), 1);
    //  No frames, and an empty envelope: malformed too
    zframe_t *routing_id = zframe_new ("edge-clients", 12);
    core_handle_frames (core, routing_id, NULL, 0, 0, NULL, 103);
    core_handle_frames (core, routing_id, NULL, 0, 1, NULL, 103);
    assert_int_equal (core_stats (core)->malformed, 3);
    zframe_destroy (&routing_id);
    while (core_outbox_take (core, &out))
        zmsg_destroy (&out.msg); //  the warnings

    //  Another request delivered, its DELIVER left in the outbox with its
    //  payload: core_destroy (in teardown) frees both
    publish.request_id = "req-3";
    payload = zframe_new ("left behind", 11);
    s_input (core, "edge-clients", &publish, 2, &payload, 104);
    assert_int_equal (core_request_count (core), 2);
}

//  Drop everything in the outbox.
static void
s_drain (core_t *core)
{
    core_output_t out;
    while (core_outbox_take (core, &out)) {
        zframe_destroy (&out.payload);
        zmsg_destroy (&out.msg);
    }
}

//  The status of the first FINISH in the outbox, or -1; drains it.
static int
s_finish_status (core_t *core)
{
    int status = -1;
    core_output_t out;
    while (core_outbox_take (core, &out)) {
        if (out.kind == CORE_OUT_EDGE && status == -1) {
            wire_envelope_parser_t *parser = wire_envelope_parser_new ();
            Wire__Envelope *env = NULL;
            assert_int_equal (wire_envelope_parser_decode (parser, out.envelope,
                                                           out.envelope_size,
                                                           &env),
                              0);
            if (env->command == WIRE__COMMAND__FINISH)
                status = env->status;
            wire_envelope_parser_destroy (&parser);
        }
        zframe_destroy (&out.payload);
        zmsg_destroy (&out.msg);
    }
    return status;
}

//  Many requests in flight at once, ended in a scrambled order: the
//  request table grows, shrinks and closes the holes it leaves, and finds
//  every request by its id all along.
static void
test_many_requests (void **state)
{
    core_t *core = (core_t *) *state;
    s_hello (core, "edge-agents", "agents");
    s_hello (core, "edge-clients", "clients");
    Wire__AgentEntry agent = WIRE__AGENT_ENTRY__INIT;
    agent.handle = 5;
    agent.agent_id = "box-1";
    Wire__Envelope subscribe = WIRE__ENVELOPE__INIT;
    subscribe.command = WIRE__COMMAND__SUBSCRIBE;
    subscribe.agent = &agent;
    s_input (core, "edge-agents", &subscribe, 1, NULL, 100);
    s_drain (core);

    enum
    {
        N = 1000
    };
    Wire__Envelope publish = WIRE__ENVELOPE__INIT;
    publish.command = WIRE__COMMAND__PUBLISH;
    publish.agent_id = "box-1";
    char id[32];
    publish.request_id = id;
    for (int i = 0; i < N; i++) {
        snprintf (id, sizeof id, "r-%d", i);
        publish.handle = (uint64_t) i + 1;
        zframe_t *payload = zframe_new ("p", 1);
        s_input (core, "edge-clients", &publish, 2, &payload, 101);
        assert_int_equal (s_finish_status (core), -1);
    }
    assert_int_equal (core_request_count (core), N);
    //  An id in flight is refused
    snprintf (id, sizeof id, "r-%d", 417);
    zframe_t *payload = zframe_new ("p", 1);
    s_input (core, "edge-clients", &publish, 2, &payload, 102);
    assert_int_equal (s_finish_status (core), 6); //  ALREADY_EXISTS
    //  Cancel in a scrambled order (7 and N are coprime)
    Wire__Envelope cancel = WIRE__ENVELOPE__INIT;
    cancel.command = WIRE__COMMAND__CANCEL;
    cancel.request_id = id;
    for (int k = 0; k < N; k++) {
        int i = (k * 7) % N;
        snprintf (id, sizeof id, "r-%d", i);
        cancel.handle = (uint64_t) i + 1;
        s_input (core, "edge-clients", &cancel, 1, NULL, 103);
        s_drain (core);
        assert_int_equal (core_request_count (core), (size_t) (N - k - 1));
        //  Every request not cancelled yet is still found: its id is
        //  refused again
        if (k % 97 == 0 && k + 1 < N) {
            int alive = ((k + 1) * 7) % N;
            snprintf (id, sizeof id, "r-%d", alive);
            payload = zframe_new ("p", 1);
            s_input (core, "edge-clients", &publish, 2, &payload, 104);
            assert_int_equal (s_finish_status (core), 6);
        }
    }
    assert_int_equal (core_request_count (core), 0);
    assert_int_equal (core_stats (core)->unexpected, 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_order_and_borrowed_bytes, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_payloads_change_hands_once,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_many_requests, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
