/*  =========================================================================
    tether_addrs - the edge addresses an agent rotates through

    Invariants: count >= 1; 0 <= current < count.
    =========================================================================
*/
#include "tether_addrs.h"

#include <assert.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

struct _tether_addrs_t
{
    char **addrs;   //  Owned copies
    size_t count;   //  Entries in addrs
    size_t current; //  Index of the address to try now
};

tether_addrs_t *
tether_addrs_new (const char *list)
{
    if (!list)
        return NULL;
    tether_addrs_t *self = (tether_addrs_t *) calloc (1, sizeof *self);
    assert (self);
    const char *p = list;
    while (*p) {
        const char *end = strchr (p, ',');
        if (!end)
            end = p + strlen (p);
        const char *a = p, *b = end;
        while (a < b && isspace ((unsigned char) *a))
            a++;
        while (b > a && isspace ((unsigned char) b[-1]))
            b--;
        if (b > a) {
            self->addrs = (char **) realloc (
                self->addrs, (self->count + 1) * sizeof (char *));
            assert (self->addrs);
            self->addrs[self->count] = strndup (a, (size_t) (b - a));
            assert (self->addrs[self->count]);
            self->count++;
        }
        p = *end ? end + 1 : end;
    }
    if (self->count == 0) {
        tether_addrs_destroy (&self);
        return NULL;
    }
    return self;
}

void
tether_addrs_destroy (tether_addrs_t **self_p)
{
    assert (self_p);
    tether_addrs_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        free (self->addrs[i]);
    free (self->addrs);
    free (self);
    *self_p = NULL;
}

size_t
tether_addrs_size (tether_addrs_t *self)
{
    assert (self);
    return self->count;
}

const char *
tether_addrs_at (tether_addrs_t *self, size_t index)
{
    assert (self);
    return index < self->count ? self->addrs[index] : NULL;
}

const char *
tether_addrs_current (tether_addrs_t *self)
{
    assert (self);
    return self->addrs[self->current];
}

const char *
tether_addrs_advance (tether_addrs_t *self)
{
    assert (self);
    self->current = (self->current + 1) % self->count;
    return self->addrs[self->current];
}

int
tether_addrs_wrapped (tether_addrs_t *self)
{
    assert (self);
    return self->current == 0;
}
