/*  =========================================================================
    tether_addrs - the edge addresses an agent rotates through (pure)

    Parsed from "host:port[,host:port...]"; blanks around entries are
    ignored, empty entries skipped.  `current` is where the next attempt
    goes; `advance` moves to the next address, wrapping around, after each
    failure, so an agent whose edge went away tries the others in turn.
    =========================================================================
*/
#ifndef TETHER_ADDRS_H_INCLUDED
#define TETHER_ADDRS_H_INCLUDED

#include <stddef.h>

typedef struct _tether_addrs_t tether_addrs_t;

//  Parse `list`.  Returns NULL when it holds no address.  Caller owns it.
tether_addrs_t *tether_addrs_new (const char *list);

void tether_addrs_destroy (tether_addrs_t **self_p);

//  Number of addresses (at least 1).
size_t tether_addrs_size (tether_addrs_t *self);

//  The index-th address.  Borrowed, valid while the list lives.
const char *tether_addrs_at (tether_addrs_t *self, size_t index);

//  The address to try now.  Borrowed, valid while the list lives.
const char *tether_addrs_current (tether_addrs_t *self);

//  Move to the next address (wrapping) and return it.  Borrowed.
const char *tether_addrs_advance (tether_addrs_t *self);

//  True when the rotation just wrapped back to the first address: every
//  address has been tried once since.
int tether_addrs_wrapped (tether_addrs_t *self);

#endif
