/*  =========================================================================
    pb_strings - check every string field of an encoded protobuf message

    proto3 requires string fields to hold valid UTF-8, and conforming peers
    (grpcio, grpc-go, ...) refuse a message that breaks the rule; protobuf-c
    does not check, and hands strings over as C strings, so an embedded NUL
    silently shortens an id ("keeper\0evil" reads as "keeper").  The edge
    therefore checks a message's raw bytes before it trusts or forwards it:
    one walk over the wire format, guided by the message descriptor, that
    visits every string field, including those of sub-messages and map
    entries.  Pure; no allocation.
    =========================================================================
*/
#ifndef TETHER_PB_STRINGS_H
#define TETHER_PB_STRINGS_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Returns true when `data` is valid UTF-8 with no NUL byte.
bool pb_utf8_valid (const uint8_t *data, size_t size);

//  Returns 0 when every string field of the message of type `desc` encoded
//  in `data` is valid UTF-8 without NUL bytes, -1 otherwise (also for
//  malformed wire format or nesting deeper than 16).  On -1, *field (when
//  not NULL) is set to the name of the offending field, or "message" when
//  the bytes themselves are malformed; borrowed, static storage.
int pb_strings_check (const ProtobufCMessageDescriptor *desc,
                      const uint8_t *data,
                      size_t size,
                      const char **field);

#endif
