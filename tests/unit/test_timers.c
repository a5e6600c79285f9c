/*  =========================================================================
    test_timers - the deadline heap: order, ties, removal, re-arming
    =========================================================================
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include "timers.h"

static int
s_setup (void **state)
{
    *state = timers_new ();
    return 0;
}

static int
s_teardown (void **state)
{
    timers_t *timers = (timers_t *) *state;
    timers_destroy (&timers);
    assert_null (timers);
    return 0;
}

static void
test_order_and_ties (void **state)
{
    timers_t *timers = (timers_t *) *state;
    timers_node_t nodes[6];
    int64_t due[6] = {50, 10, 30, 10, 20, 10};
    for (int i = 0; i < 6; i++) {
        timers_node_init (&nodes[i], i, NULL);
        timers_arm (timers, &nodes[i], due[i]);
    }
    assert_int_equal (timers_size (timers), 6);
    assert_ptr_equal (timers_peek (timers), &nodes[1]);
    assert_null (timers_pop_due (timers, 9));
    //  Equal deadlines fire in arming order: 1, 3, 5
    int expected[6] = {1, 3, 5, 4, 2, 0};
    for (int i = 0; i < 6; i++) {
        timers_node_t *node = timers_pop_due (timers, 100);
        assert_non_null (node);
        assert_int_equal (node->kind, expected[i]);
        assert_false (timers_armed (node));
    }
    assert_null (timers_pop_due (timers, 1000));
    assert_null (timers_peek (timers));
}

static void
test_disarm_and_rearm (void **state)
{
    timers_t *timers = (timers_t *) *state;
    timers_node_t a, b, c;
    timers_node_init (&a, 1, NULL);
    timers_node_init (&b, 2, NULL);
    timers_node_init (&c, 3, NULL);
    timers_disarm (timers, &a); //  not armed: no-op
    timers_arm (timers, &a, 10);
    timers_arm (timers, &b, 20);
    timers_arm (timers, &c, 30);
    timers_disarm (timers, &a);
    assert_false (timers_armed (&a));
    assert_int_equal (timers_size (timers), 2);
    assert_ptr_equal (timers_peek (timers), &b);
    timers_arm (timers, &c, 5); //  re-arm earlier
    assert_ptr_equal (timers_peek (timers), &c);
    timers_arm (timers, &c, 50); //  re-arm later
    assert_ptr_equal (timers_peek (timers), &b);
    assert_int_equal (timers_size (timers), 2);
    assert_ptr_equal (timers_pop_due (timers, 100), &b);
    assert_ptr_equal (timers_pop_due (timers, 100), &c);
    assert_int_equal (timers_size (timers), 0);
}

//  Random arms, re-arms and disarms checked against a brute-force scan.
static void
test_random_against_scan (void **state)
{
    timers_t *timers = (timers_t *) *state;
    enum
    {
        N = 300
    };
    timers_node_t nodes[N];
    for (int i = 0; i < N; i++)
        timers_node_init (&nodes[i], i, NULL);
    unsigned int seed = 12345;
    for (int round = 0; round < 20000; round++) {
        int i = rand_r (&seed) % N;
        int op = rand_r (&seed) % 4;
        if (op < 2)
            timers_arm (timers, &nodes[i], rand_r (&seed) % 1000);
        else if (op == 2)
            timers_disarm (timers, &nodes[i]);
        else {
            //  Pop one and check it is the minimum by (due, seq)
            timers_node_t *top = timers_peek (timers);
            timers_node_t *best = NULL;
            size_t armed = 0;
            for (int j = 0; j < N; j++) {
                if (!timers_armed (&nodes[j]))
                    continue;
                armed++;
                if (!best || nodes[j].due_ms < best->due_ms
                    || (nodes[j].due_ms == best->due_ms
                        && nodes[j].seq < best->seq))
                    best = &nodes[j];
            }
            assert_int_equal (armed, timers_size (timers));
            assert_ptr_equal (top, best);
            if (top)
                assert_ptr_equal (timers_pop_due (timers, top->due_ms), top);
        }
    }
    while (timers_pop_due (timers, INT64_MAX))
        ;
    for (int i = 0; i < N; i++)
        assert_false (timers_armed (&nodes[i]));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_order_and_ties, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_disarm_and_rearm, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_random_against_scan, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
