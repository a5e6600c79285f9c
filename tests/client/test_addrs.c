/*  =========================================================================
    test_addrs - edge address parsing and rotation
    =========================================================================
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tether_addrs.h"

static void
test_parse (void **state)
{
    assert_null (tether_addrs_new (NULL));
    assert_null (tether_addrs_new (""));
    assert_null (tether_addrs_new (" , ,"));
    tether_addrs_t *addrs = tether_addrs_new (" a:1 ,,b:2,c:3 ");
    assert_non_null (addrs);
    assert_int_equal (tether_addrs_size (addrs), 3);
    assert_string_equal (tether_addrs_at (addrs, 0), "a:1");
    assert_string_equal (tether_addrs_at (addrs, 1), "b:2");
    assert_string_equal (tether_addrs_at (addrs, 2), "c:3");
    assert_null (tether_addrs_at (addrs, 3));
    tether_addrs_destroy (&addrs);
    assert_null (addrs);
}

static void
test_rotation (void **state)
{
    tether_addrs_t *addrs = tether_addrs_new ("a:1,b:2,c:3");
    assert_string_equal (tether_addrs_current (addrs), "a:1");
    assert_string_equal (tether_addrs_advance (addrs), "b:2");
    assert_false (tether_addrs_wrapped (addrs));
    assert_string_equal (tether_addrs_current (addrs), "b:2");
    assert_string_equal (tether_addrs_advance (addrs), "c:3");
    assert_string_equal (tether_addrs_advance (addrs), "a:1");
    assert_true (tether_addrs_wrapped (addrs));
    tether_addrs_destroy (&addrs);

    addrs = tether_addrs_new ("only:1");
    assert_string_equal (tether_addrs_advance (addrs), "only:1");
    assert_string_equal (tether_addrs_advance (addrs), "only:1");
    tether_addrs_destroy (&addrs);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_parse),
        cmocka_unit_test (test_rotation),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
