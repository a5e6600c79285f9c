/*  =========================================================================
    slot_set - a hash set of pointers, for the router's hot tables

    Open addressing with linear probing over one array of pointers: an
    entry costs the set one slot and no allocation, and its key stays in
    the entry (the set asks `hash` for an entry's hash; the entries keep
    it or compute it).  Removal shifts the rest of the probe run back, so
    no slot is ever marked deleted and lookups never scan tombstones.  At
    most three quarters full; halves when at most an eighth full above
    64 slots.

    The struct is a value embedded in its owner; its fields are read-only
    outside slot_set.c.  Not thread safe.
    =========================================================================
*/
#ifndef TETHER_SLOT_SET_H
#define TETHER_SLOT_SET_H

#include <stdbool.h>
#include <stddef.h>

//  The hash of `entry`; the same for an entry as long as it is in a set.
typedef size_t (slot_set_hash_fn) (const void *entry);

//  Whether `entry` is the one `key` names.
typedef bool (slot_set_match_fn) (const void *entry, const void *key);

typedef struct
{
    void **slots;           //  capacity slots, NULL = free
    size_t capacity;        //  0 or a power of two
    size_t size;            //  entries held
    size_t min_capacity;    //  first allocation, a power of two
    bool release_empty;     //  free the slots when the last entry goes
    slot_set_hash_fn *hash; //  an entry's hash
} slot_set_t;

//  Start an empty set (allocates nothing).  `min_capacity` is rounded up
//  to a power of two (at least 8); `release_empty` gives the slots back as
//  the set empties (for the many small sets of a fleet), else they are
//  kept for the next entry (for one busy set).
void slot_set_init (slot_set_t *self,
                    slot_set_hash_fn *hash,
                    size_t min_capacity,
                    bool release_empty);

//  Free the slots (not the entries); the set is empty and usable again.
void slot_set_clear (slot_set_t *self);

//  Add `entry`, which is not in the set.  Borrowed: the set never frees
//  an entry.
void slot_set_insert (slot_set_t *self, void *entry);

//  Remove `entry`, which is in the set.
void slot_set_remove (slot_set_t *self, void *entry);

//  The entry whose hash is `hash` and for which `match` (entry, key) is
//  true, or NULL.  Borrowed.
void *slot_set_find (const slot_set_t *self,
                     size_t hash,
                     slot_set_match_fn *match,
                     const void *key);

#endif
