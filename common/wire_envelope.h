/*  =========================================================================
    wire_envelope - encode and decode the edge <-> router envelope

    Frame 1 of every edge <-> router message is a wire.Envelope packed with
    protobuf-c (proto/wire.proto).  These helpers put the protocol version
    in on the way out and check it on the way in, so no handler ever sees an
    envelope of another version.  Bytes off a socket never reach an assert:
    every failure is a return code.
    =========================================================================
*/
#ifndef TETHER_WIRE_ENVELOPE_H
#define TETHER_WIRE_ENVELOPE_H

#include <czmq.h>
#include "wire.pb-c.h"

#define WIRE_VERSION 1

//  Largest envelope frame accepted, in bytes.  An envelope carries ids and,
//  in HELLO, one entry per agent stream of an edge; 64 MiB is far beyond any
//  sane edge and still a bound.
#define WIRE_ENVELOPE_MAX (64u * 1024 * 1024)

//  Pack `env` into a new frame, setting env->version to WIRE_VERSION.
//  Returns the frame; caller owns it.
zframe_t *wire_envelope_encode (Wire__Envelope *env);

//  Unpack `frame`.  Returns 0 and sets *env_p (caller owns it; free with
//  wire_envelope_free) when the frame is a well-formed envelope of
//  WIRE_VERSION; returns -2 and sets *env_p to NULL when it is malformed,
//  oversized or of another version.
int wire_envelope_decode (zframe_t *frame, Wire__Envelope **env_p);

//  Free an envelope returned by wire_envelope_decode and null the pointer.
//  Does nothing when *env_p is NULL.
void wire_envelope_free (Wire__Envelope **env_p);

//  Returns the command's name, "HELLO", "DELIVER", ... or "UNKNOWN" for a
//  value outside the enum.  Borrowed, static storage.
const char *wire_command_name (int command);

#endif
