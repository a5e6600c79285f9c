/*  =========================================================================
    edge_parse - what the edge checks in the bytes clients and agents send

    The edge forwards the public messages (SubscriberInfo, AgentRequest,
    AgentResponse, ListAgentsRequest) as they arrived, and reads a few
    metadata values (x-request-id, x-wait-for-agent-ms).  Before it trusts
    or forwards any of them it checks them here: every string field of a
    message must be valid UTF-8 without a NUL byte (protobuf-c would read
    "dev-1\0x" as "dev-1"; a conforming peer would refuse the message and
    drop the stream carrying it), and each metadata value must have the
    form its reader expects.

    Pure functions on (pointer, length): no gRPC, no allocation, no I/O,
    so a fuzz target (fuzz/fuzz_edge_parse.c) reaches all of them.
    THREAD SAFETY: any thread.
    =========================================================================
*/
#ifndef TETHER_EDGE_PARSE_H
#define TETHER_EDGE_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  The public messages the edge receives.
typedef enum
{
    EDGE_MSG_SUBSCRIBER_INFO = 0, //  AgentRequestSubscribe
    EDGE_MSG_AGENT_REQUEST,       //  AgentRequestPublish
    EDGE_MSG_AGENT_RESPONSE,      //  AgentResponsePublish, each message
    EDGE_MSG_LIST_REQUEST,        //  ListAgents
    EDGE_MSG_COUNT
} edge_msg_t;

//  Returns the message type's name ("AgentRequest", ...), or "message"
//  for an unknown type.  Static storage.
const char *edge_parse_msg_name (edge_msg_t type);

//  Check an encoded message of `type`: well-formed wire format, and every
//  string field (those of map entries included) valid UTF-8 without NUL.
//  Returns 0, or -1 with a sentence naming the offending field written to
//  `why` (always NUL-terminated when size > 0).
int edge_parse_message (edge_msg_t type,
                        const uint8_t *data,
                        size_t size,
                        char *why,
                        size_t why_size);

//  Parse an x-wait-for-agent-ms value: one or more ASCII digits and
//  nothing else (no sign, space or NUL).  A value above UINT32_MAX reads
//  as UINT32_MAX (the router caps it anyway).  Returns 0 and sets *ms, or
//  -1 (and *ms = 0).
int edge_parse_wait_ms (const char *value, size_t len, uint32_t *ms);

//  Check an x-request-id value: 1 to `max_len` bytes of valid UTF-8
//  without NUL (the router checks the characters it allows).  Returns 0,
//  or -1 with the reason in `why`.
int edge_parse_request_id (
    const char *value, size_t len, size_t max_len, char *why, size_t why_size);

//  The fields of an encoded AgentRequest the edge reads when it accepts a
//  client's call.  Pointers into the encoded bytes, not NUL-terminated.
typedef struct
{
    const uint8_t *id; //  field 1; the last occurrence, as in protobuf
    size_t id_len;
    const uint8_t *agent_id; //  field 2
    size_t agent_id_len;
} edge_request_fields_t;

//  Read `fields` from an AgentRequest that edge_parse_message accepted,
//  without unpacking it.  Returns 0, or -1 when the bytes hold something
//  this walk does not vouch for (a field outside proto/tether.proto, a
//  known field of another wire type, ...): then unpack them with
//  protobuf-c, which decides.  When it returns 0, protobuf-c would accept
//  the bytes and read the same values.
int edge_parse_request_fields (const uint8_t *data,
                               size_t size,
                               edge_request_fields_t *fields);

//  The fields of an encoded AgentResponse the edge reads.
typedef struct
{
    const uint8_t *request_id; //  field 1
    size_t request_id_len;
    size_t payload_len;            //  field 2's length
    int32_t status_code;           //  field 3
    const uint8_t *status_message; //  field 4
    size_t status_message_len;
} edge_response_fields_t;

//  As edge_parse_request_fields, for an AgentResponse.
int edge_parse_response_fields (const uint8_t *data,
                                size_t size,
                                edge_response_fields_t *fields);

//  Write `len` bytes of `data` into `buf` as a logfmt value: as is when
//  plain printable ASCII, else double-quoted with \xNN for control and
//  non-ASCII bytes; cut to fit `size` (at least 1).  Returns `buf`.
const char *
edge_parse_escape (const void *data, size_t len, char *buf, size_t size);

#endif
