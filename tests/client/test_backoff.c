/*  =========================================================================
    test_backoff - the reconnect delay schedule, with a seeded generator
    =========================================================================
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tether_backoff.h"

static void
test_rejects_bad_arguments (void **state)
{
    assert_null (tether_backoff_new (0, 1000, 2.0, TETHER_JITTER_FULL, 1));
    assert_null (tether_backoff_new (500, 100, 2.0, TETHER_JITTER_FULL, 1));
    assert_null (tether_backoff_new (500, 1000, 0.5, TETHER_JITTER_FULL, 1));
    assert_null (tether_backoff_new (500, 1000, 2.0, (tether_jitter_t) 9, 1));
}

static void
test_base_grows_and_caps (void **state)
{
    tether_backoff_t *backoff =
        tether_backoff_new (100, 5000, 2.0, TETHER_JITTER_NONE, 1);
    assert_non_null (backoff);
    uint32_t expected[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000};
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        assert_int_equal (tether_backoff_next (backoff), expected[i]);
    assert_int_equal (tether_backoff_failures (backoff), 8);
    //  Huge exponents stay capped, no overflow.
    assert_int_equal (tether_backoff_base (backoff, 100000), 5000);
    tether_backoff_reset (backoff);
    assert_int_equal (tether_backoff_failures (backoff), 0);
    assert_int_equal (tether_backoff_next (backoff), 100);
    tether_backoff_destroy (&backoff);
    assert_null (backoff);
}

static void
test_full_jitter_bounds (void **state)
{
    tether_backoff_t *backoff =
        tether_backoff_new (100, 3000, 1.5, TETHER_JITTER_FULL, 42);
    uint64_t sum = 0;
    for (uint32_t n = 1; n <= 2000; n++) {
        uint32_t base = tether_backoff_base (backoff, n);
        uint32_t delay = tether_backoff_next (backoff);
        assert_true (delay <= base);
        assert_true (delay <= 3000);
        if (n > 20)
            sum += delay;
    }
    //  Uniform in [0, 3000]: the mean of 1980 draws is near 1500.
    uint64_t mean = sum / 1980;
    assert_in_range (mean, 1300, 1700);
    tether_backoff_destroy (&backoff);
}

static void
test_equal_jitter_bounds (void **state)
{
    tether_backoff_t *backoff =
        tether_backoff_new (200, 10000, 2.0, TETHER_JITTER_EQUAL, 7);
    for (uint32_t n = 1; n <= 500; n++) {
        uint32_t base = tether_backoff_base (backoff, n);
        uint32_t delay = tether_backoff_next (backoff);
        assert_in_range (delay, base / 2, base);
    }
    tether_backoff_destroy (&backoff);
}

static void
test_same_seed_same_schedule (void **state)
{
    tether_backoff_t *a =
        tether_backoff_new (100, 30000, 2.0, TETHER_JITTER_FULL, 99);
    tether_backoff_t *b =
        tether_backoff_new (100, 30000, 2.0, TETHER_JITTER_FULL, 99);
    tether_backoff_t *c =
        tether_backoff_new (100, 30000, 2.0, TETHER_JITTER_FULL, 100);
    int differ = 0;
    for (int i = 0; i < 50; i++) {
        uint32_t da = tether_backoff_next (a);
        assert_int_equal (da, tether_backoff_next (b));
        differ += da != tether_backoff_next (c);
    }
    assert_true (differ > 0);
    tether_backoff_destroy (&a);
    tether_backoff_destroy (&b);
    tether_backoff_destroy (&c);
}

static void
test_floor_for_superseded (void **state)
{
    tether_backoff_t *backoff =
        tether_backoff_new (100, 1000, 2.0, TETHER_JITTER_FULL, 5);
    for (int i = 0; i < 200; i++) {
        uint32_t delay = tether_backoff_next_at_least (backoff, 8000);
        //  Never below half the floor, never above it (the floor is larger
        //  than the cap here).
        assert_in_range (delay, 4000, 8000);
    }
    assert_int_equal (tether_backoff_failures (backoff), 200);
    tether_backoff_destroy (&backoff);

    backoff = tether_backoff_new (100, 60000, 2.0, TETHER_JITTER_NONE, 5);
    assert_int_equal (tether_backoff_next_at_least (backoff, 500), 500);
    assert_int_equal (tether_backoff_next_at_least (backoff, 500), 500);
    assert_int_equal (tether_backoff_next_at_least (backoff, 500), 500);
    assert_int_equal (tether_backoff_next_at_least (backoff, 500), 800);
    tether_backoff_destroy (&backoff);
}

//  The rotate delay after an edge shutdown: uniform in [0, bound], without
//  counting a failure.
static void
test_random_for_rotation (void **state)
{
    tether_backoff_t *backoff =
        tether_backoff_new (100, 3000, 2.0, TETHER_JITTER_FULL, 7);
    assert_int_equal (tether_backoff_random (backoff, 0), 0);
    uint64_t low = UINT64_MAX, high = 0, sum = 0;
    for (int i = 0; i < 2000; i++) {
        uint64_t delay = tether_backoff_random (backoff, 1000);
        assert_true (delay <= 1000);
        low = delay < low ? delay : low;
        high = delay > high ? delay : high;
        sum += delay;
    }
    assert_true (low < 50);
    assert_true (high > 950);
    assert_in_range (sum / 2000, 400, 600);
    assert_int_equal (tether_backoff_failures (backoff), 0);
    tether_backoff_destroy (&backoff);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_rejects_bad_arguments),
        cmocka_unit_test (test_base_grows_and_caps),
        cmocka_unit_test (test_full_jitter_bounds),
        cmocka_unit_test (test_equal_jitter_bounds),
        cmocka_unit_test (test_same_seed_same_schedule),
        cmocka_unit_test (test_floor_for_superseded),
        cmocka_unit_test (test_random_for_rotation),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
