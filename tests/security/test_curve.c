/*  =========================================================================
    test_curve - CURVE on the router's ROUTER socket

    A router actor with --curve-secret-key-file and --curve-allow-dir on
    tcp://127.0.0.1:*.  A DEALER holding an allowed key gets an answer to
    its PING; a DEALER without CURVE, and one with a key the router does
    not allow, get nothing back (the handshake never completes, so the
    router never even sees their messages).  Bounded waits only.
    =========================================================================
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <czmq.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "router_actor.h"
#include "wire_envelope.h"

typedef struct
{
    char dir[64];    //  temporary directory
    char allow[128]; //  allowed edge certificates
    zcert_t *router_cert;
    zcert_t *edge_cert;     //  allowed
    zcert_t *stranger_cert; //  not allowed
    zactor_t *router;
    int port;
} fx_t;

static int
s_setup (void **state)
{
    fx_t *fx = (fx_t *) zmalloc (sizeof (fx_t));
    snprintf (fx->dir, sizeof fx->dir, "/tmp/tether-curve-XXXXXX");
    assert_non_null (mkdtemp (fx->dir));
    snprintf (fx->allow, sizeof fx->allow, "%s/allow", fx->dir);
    assert_int_equal (zsys_dir_create ("%s", fx->allow), 0);
    fx->router_cert = zcert_new ();
    fx->edge_cert = zcert_new ();
    fx->stranger_cert = zcert_new ();
    char path[256];
    snprintf (path, sizeof path, "%s/router.cert", fx->dir);
    assert_int_equal (zcert_save (fx->router_cert, path), 0);
    char edge_path[256];
    snprintf (edge_path, sizeof edge_path, "%s/edge.cert", fx->allow);
    assert_int_equal (zcert_save_public (fx->edge_cert, edge_path), 0);

    router_config_t cfg;
    router_config_defaults (&cfg);
    free (cfg.bind);
    free (cfg.monitor);
    free (cfg.log_level);
    free (cfg.curve_secret_key_file);
    free (cfg.curve_allow_dir);
    cfg.bind = strdup ("tcp://127.0.0.1:*");
    cfg.monitor = strdup ("");
    cfg.log_level = strdup ("warn");
    cfg.curve_secret_key_file = zsys_sprintf ("%s_secret", path);
    cfg.curve_allow_dir = strdup (fx->allow);
    fx->router = router_actor_start (&cfg);
    router_config_clear (&cfg);
    assert_non_null (fx->router);
    int monitor_port = 0;
    zstr_send (fx->router, "PORT");
    zsock_recv (fx->router, "ii", &fx->port, &monitor_port);
    assert_true (fx->port > 0);
    *state = fx;
    return 0;
}

static int
s_teardown (void **state)
{
    fx_t *fx = (fx_t *) *state;
    zactor_destroy (&fx->router);
    zcert_destroy (&fx->router_cert);
    zcert_destroy (&fx->edge_cert);
    zcert_destroy (&fx->stranger_cert);
    char command[200];
    snprintf (command, sizeof command, "rm -rf '%s'", fx->dir);
    assert_int_equal (system (command), 0);
    free (fx);
    return 0;
}

//  A DEALER to the router: with `cert` (may be NULL: no CURVE).
static zsock_t *
s_dealer (fx_t *fx, zcert_t *cert)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert_non_null (dealer);
    zsock_set_linger (dealer, 0);
    if (cert) {
        zcert_apply (cert, dealer);
        zsock_set_curve_serverkey (dealer, zcert_public_txt (fx->router_cert));
    }
    assert_int_equal (zsock_connect (dealer, "tcp://127.0.0.1:%d", fx->port),
                      0);
    return dealer;
}

static void
s_ping (zsock_t *dealer)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__PING;
    env.edge_id = "curve-test";
    env.incarnation = 1;
    zframe_t *frame = wire_envelope_encode (&env);
    zsock_set_sndtimeo (dealer, 0);
    //  Queued until the handshake completes (or forever if it never does).
    zframe_send (&frame, dealer, ZFRAME_DONTWAIT);
    zframe_destroy (&frame);
}

//  Returns the command of the first answer within `ms`, or -1.
static int
s_answer (zsock_t *dealer, int ms)
{
    zpoller_t *poller = zpoller_new (dealer, NULL);
    int command = -1;
    if (zpoller_wait (poller, ms) == dealer) {
        zmsg_t *msg = zmsg_recv (dealer);
        zframe_t *head = zmsg_first (msg);
        Wire__Envelope *env = NULL;
        if (head && wire_envelope_decode (head, &env) == 0)
            command = env->command;
        wire_envelope_free (&env);
        zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    return command;
}

static void
test_allowed_key_is_answered (void **state)
{
    fx_t *fx = (fx_t *) *state;
    zsock_t *dealer = s_dealer (fx, fx->edge_cert);
    s_ping (dealer);
    assert_int_equal (s_answer (dealer, 10000), WIRE__COMMAND__PONG);
    zsock_destroy (&dealer);
}

static void
test_unauthenticated_dealers_get_nothing (void **state)
{
    fx_t *fx = (fx_t *) *state;
    zsock_t *plain = s_dealer (fx, NULL);
    zsock_t *stranger = s_dealer (fx, fx->stranger_cert);
    zsock_t *good = s_dealer (fx, fx->edge_cert);
    s_ping (plain);
    s_ping (stranger);
    s_ping (good);
    //  The allowed one is answered: the router is up and reading.
    assert_int_equal (s_answer (good, 10000), WIRE__COMMAND__PONG);
    //  The others never get anything.
    assert_int_equal (s_answer (plain, 1000), -1);
    assert_int_equal (s_answer (stranger, 500), -1);
    //  The router saw no malformed message either: nothing got through.
    uint64_t agents, requests, edges, malformed;
    zstr_send (fx->router, "STATS");
    zsock_recv (fx->router, "8888", &agents, &requests, &edges, &malformed);
    assert_int_equal (malformed, 0);
    zsock_destroy (&plain);
    zsock_destroy (&stranger);
    zsock_destroy (&good);
}

static void
test_bad_settings_refused (void **state)
{
    router_config_t cfg;
    router_config_defaults (&cfg);
    free (cfg.bind);
    free (cfg.monitor);
    free (cfg.curve_secret_key_file);
    cfg.bind = strdup ("tcp://127.0.0.1:*");
    cfg.monitor = strdup ("");
    cfg.curve_secret_key_file = strdup ("/nonexistent/router.cert_secret");
    //  No allow dir
    assert_null (router_actor_start (&cfg));
    free (cfg.curve_allow_dir);
    cfg.curve_allow_dir = strdup ("/tmp");
    //  No such certificate
    assert_null (router_actor_start (&cfg));
    router_config_clear (&cfg);
}

int
main (void)
{
    if (!zsys_has_curve ()) {
        fprintf (stderr, "test_curve: libzmq without CURVE, skipped\n");
        return 0;
    }
    zsys_init ();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_allowed_key_is_answered, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (
            test_unauthenticated_dealers_get_nothing, s_setup, s_teardown),
        cmocka_unit_test (test_bad_settings_refused),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    zsys_shutdown ();
    return rc;
}
