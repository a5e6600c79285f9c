/*  =========================================================================
    tstatus - gRPC status code names, one table for the whole tree

    The 17 codes of the gRPC status space (0 OK .. 16 UNAUTHENTICATED) and
    their canonical names, as the gRPC specification spells them.  Pure:
    needs nothing but libc, so libtether compiles it in with hidden symbols
    (as it does tlog).
    =========================================================================
*/
#ifndef TETHER_TSTATUS_H
#define TETHER_TSTATUS_H

//  Number of codes: valid codes are 0 .. TSTATUS_COUNT - 1.
#define TSTATUS_COUNT 17

//  The name of `code` ("OK", "NOT_FOUND", ...), or NULL when the code is
//  out of range.  Static string.
const char *tstatus_name (int code);

//  The code named `name` (any letter case), or -1 when `name` is NULL or
//  names no code.
int tstatus_from_name (const char *name);

#endif
