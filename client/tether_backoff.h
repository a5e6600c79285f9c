/*  =========================================================================
    tether_backoff - the reconnect delay schedule (pure: no clock, no I/O)

    The n-th consecutive failure (n = 1, 2, ...) has a base delay of
    min(max_ms, initial_ms * multiplier^(n-1)); jitter then spreads it so
    that a fleet of agents cut off together does not reconnect together:
    NONE keeps the base, FULL picks uniformly in [0, base], EQUAL picks
    base/2 + uniformly [0, base/2].  The random generator is a seeded
    xorshift64*, so a test replays a schedule exactly.
    =========================================================================
*/
#ifndef TETHER_BACKOFF_H_INCLUDED
#define TETHER_BACKOFF_H_INCLUDED

#include "tether.h"

typedef struct _tether_backoff_t tether_backoff_t;

//  Create a schedule.  Returns NULL when initial_ms is 0, max_ms <
//  initial_ms or multiplier < 1.  Caller owns it.
tether_backoff_t *tether_backoff_new (uint32_t initial_ms,
                                      uint32_t max_ms,
                                      double multiplier,
                                      tether_jitter_t jitter,
                                      uint64_t seed);

void tether_backoff_destroy (tether_backoff_t **self_p);

//  Count one more failure and return the delay to wait before the next
//  attempt, in milliseconds (never more than max_ms).
uint32_t tether_backoff_next (tether_backoff_t *self);

//  Like tether_backoff_next, but never less than `floor_ms` before jitter
//  (the base is max(base, floor_ms), still capped by max(max_ms, floor_ms)).
uint32_t tether_backoff_next_at_least (tether_backoff_t *self,
                                       uint32_t floor_ms);

//  The base delay (before jitter) of failure number `n` (1-based).
uint32_t tether_backoff_base (tether_backoff_t *self, uint32_t n);

//  Forget the failures: the next delay is the initial one again.
void tether_backoff_reset (tether_backoff_t *self);

//  Consecutive failures counted since the last reset.
uint32_t tether_backoff_failures (tether_backoff_t *self);

//  Uniform random number in [0, bound] from the schedule's generator.
uint64_t tether_backoff_random (tether_backoff_t *self, uint64_t bound);

#endif
