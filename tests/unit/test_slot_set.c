/*  =========================================================================
    test_slot_set - the router's hash set of pointers against a model

    Entries are small structs with a value; the hash is chosen badly on
    purpose (few distinct homes), so probe runs are long, wrap around the
    end of the slot array, and removal must shift entries back across the
    wrap.  Every step is checked against a plain array.
    =========================================================================
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "slot_set.h"

#define S_ENTRIES 600

typedef struct
{
    unsigned value;  //  the key
    bool in;         //  in the set (the model)
    unsigned spread; //  distinct hashes of the run
} entry_t;

static size_t
s_hash (const void *entry)
{
    //  Homes near the top of the array too, so runs wrap.
    const entry_t *e = (const entry_t *) entry;
    return (size_t) -1 - e->value % e->spread;
}

static bool
s_match (const void *entry, const void *key)
{
    return ((const entry_t *) entry)->value == *(const unsigned *) key;
}

static void
s_check (slot_set_t *set, entry_t *entries)
{
    size_t held = 0;
    for (unsigned i = 0; i < S_ENTRIES; i++) {
        size_t hash = s_hash (&entries[i]);
        void *found = slot_set_find (set, hash, s_match, &entries[i].value);
        assert_ptr_equal (found, entries[i].in ? &entries[i] : NULL);
        held += entries[i].in;
    }
    assert_int_equal (set->size, held);
    assert_true (set->size * 4 <= set->capacity * 3);
}

static void
s_run (unsigned spread, bool release_empty, unsigned seed)
{
    entry_t entries[S_ENTRIES];
    for (unsigned i = 0; i < S_ENTRIES; i++)
        entries[i] = (entry_t){i * 13 + 1, false, spread};
    slot_set_t set;
    slot_set_init (&set, s_hash, 8, release_empty);
    srand (seed);
    for (int step = 0; step < 6000; step++) {
        //  Grow for a while, then shrink, so both resizes happen.
        bool grow = (step / 1500) % 2 == 0;
        unsigned i = (unsigned) rand () % S_ENTRIES;
        if (!entries[i].in && (grow || rand () % 4 == 0)) {
            slot_set_insert (&set, &entries[i]);
            entries[i].in = true;
        } else if (entries[i].in && (!grow || rand () % 4 == 0)) {
            slot_set_remove (&set, &entries[i]);
            entries[i].in = false;
        }
        if (step % 97 == 0)
            s_check (&set, entries);
    }
    s_check (&set, entries);
    for (unsigned i = 0; i < S_ENTRIES; i++)
        if (entries[i].in) {
            slot_set_remove (&set, &entries[i]);
            entries[i].in = false;
        }
    s_check (&set, entries);
    assert_int_equal (set.size, 0);
    if (release_empty)
        assert_null (set.slots);
    slot_set_clear (&set);
    assert_null (set.slots);
}

static void
test_colliding_hashes (void **state)
{
    s_run (7, false, 1);
    s_run (1, true, 2);
}

static void
test_spread_hashes (void **state)
{
    s_run (100003, true, 3);
    s_run (100003, false, 4);
}

static void
test_empty_set_allocates_nothing (void **state)
{
    slot_set_t set;
    slot_set_init (&set, s_hash, 100, true);
    unsigned key = 5;
    assert_null (slot_set_find (&set, 0, s_match, &key));
    assert_null (set.slots);
    assert_int_equal (set.min_capacity, 128);
    entry_t entry = {5, true, 1};
    slot_set_insert (&set, &entry);
    assert_int_equal (set.capacity, 128);
    slot_set_remove (&set, &entry);
    assert_null (set.slots);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_colliding_hashes),
        cmocka_unit_test (test_spread_hashes),
        cmocka_unit_test (test_empty_set_allocates_nothing),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
