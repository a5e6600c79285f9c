/*  =========================================================================
    test_status - gRPC status names and exit codes
    =========================================================================
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tether.h"

static void
test_names (void **state)
{
    assert_string_equal (tether_status_name (0), "OK");
    assert_string_equal (tether_status_name (4), "DEADLINE_EXCEEDED");
    assert_string_equal (tether_status_name (16), "UNAUTHENTICATED");
    assert_string_equal (tether_status_name (17), "UNKNOWN_STATUS");
    assert_string_equal (tether_status_name (-1), "UNKNOWN_STATUS");
    assert_int_equal (tether_status_from_name ("not_found"), 5);
    assert_int_equal (tether_status_from_name ("UNAVAILABLE"), 14);
    assert_int_equal (tether_status_from_name ("nope"), -1);
    assert_int_equal (tether_status_from_name (NULL), -1);
}

static void
test_exit_codes (void **state)
{
    assert_int_equal (tether_status_exit_code (TETHER_OK), 0);
    assert_int_equal (tether_status_exit_code (TETHER_CANCELLED), 11);
    assert_int_equal (tether_status_exit_code (TETHER_DEADLINE_EXCEEDED), 14);
    assert_int_equal (tether_status_exit_code (TETHER_NOT_FOUND), 15);
    assert_int_equal (tether_status_exit_code (TETHER_UNAVAILABLE), 24);
    assert_int_equal (tether_status_exit_code (TETHER_UNAUTHENTICATED), 26);
    //  Out of range: reported as UNKNOWN.
    assert_int_equal (tether_status_exit_code (99), 12);
    assert_int_equal (tether_status_exit_code (-3), 12);
    //  Round trip, and codes the mapping never produces.
    for (int code = 0; code <= 16; code++)
        assert_int_equal (
            tether_status_from_exit_code (tether_status_exit_code (code)),
            code);
    assert_int_equal (tether_status_from_exit_code (1), -1);
    assert_int_equal (tether_status_from_exit_code (2), -1);
    assert_int_equal (tether_status_from_exit_code (10), -1);
    assert_int_equal (tether_status_from_exit_code (27), -1);
    assert_int_equal (tether_status_from_exit_code (127), -1);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_names),
        cmocka_unit_test (test_exit_codes),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
