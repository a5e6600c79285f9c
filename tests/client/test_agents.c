/*  =========================================================================
    test_agents - the agent list that ListAgents pages are gathered into

    No network: pages are ListAgentsResponse messages packed here and added
    with tether_agents_add_page, the step tether_client_list_all_agents
    and tether_client_list_agents_page take for each answer.
    =========================================================================
*/
#include "tether_internal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

//  Pack a page of agents named `ids` (NULL-terminated) with `next` as its
//  next_page_token; the first agent gets one label.  Caller owns the
//  bytes (free); *size_p gets their number.
static uint8_t *
s_page (const char *const *ids, const char *next, size_t *size_p)
{
    size_t count = 0;
    while (ids[count])
        count++;
    Tether__V1__AgentInfo *infos =
        (Tether__V1__AgentInfo *) calloc (count + 1, sizeof *infos);
    Tether__V1__AgentInfo **ptrs =
        (Tether__V1__AgentInfo **) calloc (count + 1, sizeof *ptrs);
    assert_non_null (infos);
    assert_non_null (ptrs);
    Tether__V1__AgentInfo__LabelsEntry label =
        TETHER__V1__AGENT_INFO__LABELS_ENTRY__INIT;
    Tether__V1__AgentInfo__LabelsEntry *labels[] = {&label};
    label.key = (char *) "site";
    label.value = (char *) "lab";
    for (size_t i = 0; i < count; i++) {
        tether__v1__agent_info__init (&infos[i]);
        infos[i].agent_id = (char *) ids[i];
        infos[i].edge = (char *) "edge-1";
        infos[i].session = i + 1;
        if (i == 0) {
            infos[i].n_labels = 1;
            infos[i].labels = labels;
        }
        ptrs[i] = &infos[i];
    }
    Tether__V1__ListAgentsResponse page =
        TETHER__V1__LIST_AGENTS_RESPONSE__INIT;
    page.n_agents = count;
    page.agents = ptrs;
    page.next_page_token = (char *) next;
    size_t size = tether__v1__list_agents_response__get_packed_size (&page);
    uint8_t *data = (uint8_t *) malloc (size + 1);
    assert_non_null (data);
    tether__v1__list_agents_response__pack (&page, data);
    free (ptrs);
    free (infos);
    *size_p = size;
    return data;
}

static int
s_add (tether_agents_t *list, const char *const *ids, const char *next)
{
    size_t size;
    uint8_t *data = s_page (ids, next, &size);
    int rc = tether_agents_add_page (list, data, size);
    free (data);
    return rc;
}

static void
test_empty (void **state)
{
    tether_agents_t *list = tether_agents_new ();
    assert_int_equal (tether_agents_size (list), 0);
    assert_string_equal (tether_agents_next_page_token (list), "");
    const char *none[] = {NULL};
    assert_int_equal (s_add (list, none, ""), 0);
    assert_int_equal (tether_agents_size (list), 0);
    assert_string_equal (tether_agents_next_page_token (list), "");
    tether_agents_destroy (&list);
    assert_null (list);
    tether_agents_destroy (&list);
}

static void
test_pages_join_in_order (void **state)
{
    tether_agents_t *list = tether_agents_new ();
    const char *first[] = {"a", "b", NULL};
    const char *second[] = {"c", "d", NULL};
    const char *third[] = {"e", NULL};
    assert_int_equal (s_add (list, first, "b"), 0);
    assert_string_equal (tether_agents_next_page_token (list), "b");
    assert_int_equal (s_add (list, second, "d"), 0);
    assert_string_equal (tether_agents_next_page_token (list), "d");
    assert_int_equal (s_add (list, third, ""), 0);
    assert_string_equal (tether_agents_next_page_token (list), "");
    assert_int_equal (tether_agents_size (list), 5);
    const char *expected[] = {"a", "b", "c", "d", "e"};
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal (tether_agents_id (list, i), expected[i]);
        assert_string_equal (tether_agents_edge (list, i), "edge-1");
    }
    //  Fields stay with their agent across pages.
    assert_int_equal (tether_agents_session (list, 2), 1);
    assert_int_equal (tether_agents_session (list, 3), 2);
    assert_int_equal (tether_agents_label_count (list, 2), 1);
    assert_int_equal (tether_agents_label_count (list, 3), 0);
    const char *key, *value;
    assert_int_equal (tether_agents_label_at (list, 2, 0, &key, &value), 0);
    assert_string_equal (key, "site");
    assert_string_equal (value, "lab");
    assert_int_equal (tether_agents_label_at (list, 2, 1, &key, &value), -1);
    tether_agents_destroy (&list);
}

static void
test_page_that_does_not_follow_is_refused (void **state)
{
    tether_agents_t *list = tether_agents_new ();
    const char *first[] = {"dev-1", "dev-2", NULL};
    assert_int_equal (s_add (list, first, "dev-2"), 0);
    //  The same page again (a gateway that ignored the token), and one
    //  that starts inside the previous one.
    assert_int_equal (s_add (list, first, "dev-2"), -1);
    const char *overlap[] = {"dev-2", "dev-3", NULL};
    assert_int_equal (s_add (list, overlap, ""), -1);
    const char *before[] = {"dev-0", NULL};
    assert_int_equal (s_add (list, before, ""), -1);
    //  Nothing changed.
    assert_int_equal (tether_agents_size (list), 2);
    assert_string_equal (tether_agents_next_page_token (list), "dev-2");
    const char *next[] = {"dev-3", NULL};
    assert_int_equal (s_add (list, next, ""), 0);
    assert_int_equal (tether_agents_size (list), 3);
    tether_agents_destroy (&list);
}

static void
test_garbage_is_refused (void **state)
{
    tether_agents_t *list = tether_agents_new ();
    //  Field 1, length 200, with 2 bytes behind it.
    const uint8_t garbage[] = {0x0a, 0xc8, 0x01, 0x01, 0x02};
    assert_int_equal (tether_agents_add_page (list, garbage, sizeof garbage),
                      -1);
    assert_int_equal (tether_agents_size (list), 0);
    tether_agents_destroy (&list);
}

static void
test_many_pages (void **state)
{
    tether_agents_t *list = tether_agents_new ();
    char names[1000][16];
    for (size_t page = 0; page < 100; page++) {
        const char *ids[11];
        for (size_t i = 0; i < 10; i++) {
            size_t n = page * 10 + i;
            snprintf (names[n], sizeof names[n], "dev-%04zu", n);
            ids[i] = names[n];
        }
        ids[10] = NULL;
        assert_int_equal (s_add (list, ids, page < 99 ? ids[9] : ""), 0);
    }
    assert_int_equal (tether_agents_size (list), 1000);
    for (size_t n = 0; n < 1000; n++)
        assert_string_equal (tether_agents_id (list, n), names[n]);
    assert_string_equal (tether_agents_next_page_token (list), "");
    tether_agents_destroy (&list);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_empty),
        cmocka_unit_test (test_pages_join_in_order),
        cmocka_unit_test (test_page_that_does_not_follow_is_refused),
        cmocka_unit_test (test_garbage_is_refused),
        cmocka_unit_test (test_many_pages),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
