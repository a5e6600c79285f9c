/*  =========================================================================
    slot_set - a hash set of pointers, for the router's hot tables

    Invariant: every entry sits in the probe run that starts at its home
    slot (hash & (capacity - 1)), with no free slot between its home and
    it.  Removal keeps it by moving back each later entry of the run whose
    home is not between the hole and that entry.
    =========================================================================
*/
#include "slot_set.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>

static size_t
s_home (const slot_set_t *self, const void *entry)
{
    return self->hash (entry) & (self->capacity - 1);
}

static void
s_place (slot_set_t *self, void *entry)
{
    size_t mask = self->capacity - 1;
    size_t i = s_home (self, entry);
    while (self->slots[i])
        i = (i + 1) & mask;
    self->slots[i] = entry;
}

static void
s_resize (slot_set_t *self, size_t capacity)
{
    void **old = self->slots;
    size_t old_capacity = self->capacity;
    self->slots = (void **) calloc (capacity, sizeof (void *));
    assert (self->slots);
    self->capacity = capacity;
    for (size_t i = 0; i < old_capacity; i++)
        if (old[i])
            s_place (self, old[i]);
    free (old);
}

void
slot_set_init (slot_set_t *self,
               slot_set_hash_fn *hash,
               size_t min_capacity,
               bool release_empty)
{
    assert (self);
    assert (hash);
    size_t capacity = 8;
    while (capacity < min_capacity)
        capacity *= 2;
    self->slots = NULL;
    self->capacity = 0;
    self->size = 0;
    self->min_capacity = capacity;
    self->release_empty = release_empty;
    self->hash = hash;
}

void
slot_set_clear (slot_set_t *self)
{
    assert (self);
    free (self->slots);
    self->slots = NULL;
    self->capacity = 0;
    self->size = 0;
}

void
slot_set_insert (slot_set_t *self, void *entry)
{
    assert (self);
    assert (entry);
    if ((self->size + 1) * 4 > self->capacity * 3)
        s_resize (self,
                  self->capacity ? self->capacity * 2 : self->min_capacity);
    s_place (self, entry);
    self->size++;
}

void
slot_set_remove (slot_set_t *self, void *entry)
{
    assert (self);
    assert (self->size);
    size_t mask = self->capacity - 1;
    size_t hole = s_home (self, entry);
    while (self->slots[hole] != entry) {
        assert (self->slots[hole]);
        hole = (hole + 1) & mask;
    }
    size_t i = hole;
    while (true) {
        i = (i + 1) & mask;
        void *next = self->slots[i];
        if (!next)
            break;
        //  `next` stays unless its home is in (hole, i], cyclically
        size_t home = s_home (self, next);
        bool stays =
            hole <= i ? (hole < home && home <= i) : (hole < home || home <= i);
        if (!stays) {
            self->slots[hole] = next;
            hole = i;
        }
    }
    self->slots[hole] = NULL;
    self->size--;
    if (self->size == 0 && self->release_empty)
        slot_set_clear (self);
    else if (self->capacity > 64 && self->size * 8 < self->capacity)
        s_resize (self, self->capacity / 2);
}

void *
slot_set_find (const slot_set_t *self,
               size_t hash,
               slot_set_match_fn *match,
               const void *key)
{
    assert (self);
    if (!self->size)
        return NULL;
    size_t mask = self->capacity - 1;
    for (size_t i = hash & mask; self->slots[i]; i = (i + 1) & mask)
        if (match (self->slots[i], key))
            return self->slots[i];
    return NULL;
}
