/*  =========================================================================
    tether_backoff - the reconnect delay schedule

    Invariants: failures counts tether_backoff_next calls since the last
    reset; a delay is never larger than the cap.  The base is computed in
    double and clamped before it is converted, so large exponents cannot
    overflow.
    =========================================================================
*/
#include "tether_backoff.h"

#include <assert.h>
#include <stdlib.h>

struct _tether_backoff_t
{
    uint32_t initial_ms;    //  First delay
    uint32_t max_ms;        //  Cap on every delay
    double multiplier;      //  Growth per failure
    tether_jitter_t jitter; //  How delays are spread
    uint64_t rng;           //  xorshift64* state, never 0
    uint32_t failures;      //  Consecutive failures since reset
};

tether_backoff_t *
tether_backoff_new (uint32_t initial_ms,
                    uint32_t max_ms,
                    double multiplier,
                    tether_jitter_t jitter,
                    uint64_t seed)
{
    if (initial_ms == 0 || max_ms < initial_ms || !(multiplier >= 1.0))
        return NULL;
    if (jitter != TETHER_JITTER_NONE && jitter != TETHER_JITTER_FULL
        && jitter != TETHER_JITTER_EQUAL)
        return NULL;
    tether_backoff_t *self = (tether_backoff_t *) calloc (1, sizeof *self);
    assert (self);
    self->initial_ms = initial_ms;
    self->max_ms = max_ms;
    self->multiplier = multiplier;
    self->jitter = jitter;
    self->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
    return self;
}

void
tether_backoff_destroy (tether_backoff_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

static uint64_t
s_random (tether_backoff_t *self)
{
    uint64_t x = self->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    self->rng = x;
    return x * 0x2545f4914f6cdd1dULL;
}

uint64_t
tether_backoff_random (tether_backoff_t *self, uint64_t bound)
{
    assert (self);
    if (bound == UINT64_MAX)
        return s_random (self);
    //  Modulo bias is irrelevant at these magnitudes.
    return s_random (self) % (bound + 1);
}

uint32_t
tether_backoff_base (tether_backoff_t *self, uint32_t n)
{
    assert (self);
    double base = self->initial_ms;
    for (uint32_t i = 1; i < n && base < self->max_ms; i++)
        base *= self->multiplier;
    if (base > self->max_ms)
        base = self->max_ms;
    return (uint32_t) base;
}

static uint32_t
s_jitter (tether_backoff_t *self, uint32_t base)
{
    switch (self->jitter) {
        case TETHER_JITTER_FULL:
            return (uint32_t) tether_backoff_random (self, base);
        case TETHER_JITTER_EQUAL:
            return base / 2
                   + (uint32_t) tether_backoff_random (self, base - base / 2);
        default:
            return base;
    }
}

uint32_t
tether_backoff_next (tether_backoff_t *self)
{
    assert (self);
    if (self->failures < UINT32_MAX)
        self->failures++;
    return s_jitter (self, tether_backoff_base (self, self->failures));
}

uint32_t
tether_backoff_next_at_least (tether_backoff_t *self, uint32_t floor_ms)
{
    assert (self);
    if (self->failures < UINT32_MAX)
        self->failures++;
    uint32_t base = tether_backoff_base (self, self->failures);
    if (base < floor_ms)
        base = floor_ms;
    //  Never below half the floor, whatever the jitter: that is the point
    //  of a floor.
    if (self->jitter == TETHER_JITTER_NONE)
        return base;
    return base / 2 + (uint32_t) tether_backoff_random (self, base - base / 2);
}

void
tether_backoff_reset (tether_backoff_t *self)
{
    assert (self);
    self->failures = 0;
}

uint32_t
tether_backoff_failures (tether_backoff_t *self)
{
    assert (self);
    return self->failures;
}
