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

//  Bytes of `value` as a protobuf varint (1 to 10).
size_t wire_varint_size (uint64_t value);

//  Writes `value` as a protobuf varint at `p`, which has room for
//  wire_varint_size (value) bytes; returns the byte after it.
byte *wire_varint_write (byte *p, uint64_t value);

//  Sets env->version to WIRE_VERSION and returns the size of `env` packed.
//  Envelopes without agent entries or unknown fields (every router -> edge
//  command) are sized and packed without protobuf-c's generic walk; the
//  bytes are the same as wire__envelope__pack's.
size_t wire_envelope_packed_size (Wire__Envelope *env);

//  Packs `env` (version set as by wire_envelope_packed_size) into the
//  `cap` bytes at `out`.  Returns its packed size.  When that is above
//  `cap`, the bytes at `out` are not the envelope: call again with room
//  for that many.  One pass, so a caller with room to spare need not ask
//  wire_envelope_packed_size first.
size_t wire_envelope_pack_into (Wire__Envelope *env, byte *out, size_t cap);

//  A reusable decoder for a stream of envelopes, for a hot loop: it keeps
//  one envelope and its strings in its own buffers, so decoding allocates
//  nothing once they have grown.  An envelope with agent entries (HELLO,
//  SUBSCRIBE) or any field outside proto/wire.proto's scalars and strings
//  is left to protobuf-c, so every input decodes exactly as with
//  wire_envelope_decode.
typedef struct _wire_envelope_parser_t wire_envelope_parser_t;

//  Create a parser.  Caller owns it.
wire_envelope_parser_t *wire_envelope_parser_new (void);

//  Destroy the parser and the envelope it holds; null the pointer.  Does
//  nothing when *self_p is NULL.
void wire_envelope_parser_destroy (wire_envelope_parser_t **self_p);

//  Decode `size` bytes at `data`.  Returns 0 and sets *env_p to the
//  envelope (borrowed: valid until the parser's next decode or its
//  destruction) when they are a well-formed envelope of WIRE_VERSION;
//  returns -2 and sets *env_p to NULL when they are malformed, oversized
//  or of another version.  Same verdicts and fields as
//  wire_envelope_decode.
int wire_envelope_parser_decode (wire_envelope_parser_t *self,
                                 const void *data,
                                 size_t size,
                                 Wire__Envelope **env_p);

#endif
