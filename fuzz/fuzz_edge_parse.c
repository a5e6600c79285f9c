/*  =========================================================================
    fuzz_edge_parse - libFuzzer target: the edge's input checks

    Byte 0 picks a check of gateway/edge_parse, the rest is its input:
    0-3  edge_parse_message on SubscriberInfo, AgentRequest, AgentResponse
         or ListAgentsRequest bytes;
    4    edge_parse_wait_ms on an x-wait-for-agent-ms value;
    5    edge_parse_request_id on an x-request-id value (byte 1 is the
         length limit);
    6    edge_parse_escape of the bytes into a buffer whose size is byte 1.
    What the edge relies on is checked:
    - a message that passes and unpacks packs again to bytes that pass
      (no string was shortened by a NUL, none is invalid UTF-8); one that
      fails says why in a non-empty sentence;
    - x-wait-for-agent-ms is accepted exactly when it is all digits, with
      the value saturating at UINT32_MAX;
    - an accepted x-request-id is within the limit, NUL-free UTF-8;
    - an escaped value fits its buffer and holds only printable ASCII.
    =========================================================================
*/
#include "edge_parse.h"
#include "pb_strings.h"
#include "tether.pb-c.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_CHECK(cond)                                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf (stderr, "fuzz_edge_parse: %s:%d: %s\n", __FILE__,         \
                     __LINE__, #cond);                                         \
            abort ();                                                          \
        }                                                                      \
    } while (0)

static const ProtobufCMessageDescriptor *s_descriptors[EDGE_MSG_COUNT] = {
    &tether__v1__subscriber_info__descriptor,
    &tether__v1__agent_request__descriptor,
    &tether__v1__agent_response__descriptor,
    &tether__v1__list_agents_request__descriptor,
};

static void
s_message (edge_msg_t type, const uint8_t *data, size_t size)
{
    char why[160];
    memset (why, 'x', sizeof why);
    if (edge_parse_message (type, data, size, why, sizeof why) != 0) {
        S_CHECK (memchr (why, 0, sizeof why) != NULL);
        S_CHECK (strlen (why) > 0);
        S_CHECK (strstr (why, edge_parse_msg_name (type)) != NULL);
        return;
    }
    const ProtobufCMessageDescriptor *desc = s_descriptors[type];
    ProtobufCMessage *msg = protobuf_c_message_unpack (desc, NULL, size, data);
    if (!msg)
        return; //  wire types protobuf-c refuses: the edge too
    size_t packed_size = protobuf_c_message_get_packed_size (msg);
    uint8_t *packed = (uint8_t *) malloc (packed_size ? packed_size : 1);
    S_CHECK (packed);
    S_CHECK (protobuf_c_message_pack (msg, packed) == packed_size);
    S_CHECK (edge_parse_message (type, packed, packed_size, why, sizeof why)
             == 0);
    free (packed);
    protobuf_c_message_free_unpacked (msg, NULL);
}

static void
s_wait_ms (const uint8_t *data, size_t size)
{
    uint32_t ms = 12345;
    int rc = edge_parse_wait_ms ((const char *) data, size, &ms);
    bool digits = size > 0;
    uint64_t expect = 0;
    for (size_t i = 0; i < size; i++) {
        if (data[i] < '0' || data[i] > '9') {
            digits = false;
            break;
        }
        if (expect <= UINT32_MAX)
            expect = expect * 10 + (data[i] - '0');
    }
    S_CHECK ((rc == 0) == digits);
    if (rc == 0)
        S_CHECK (ms == (expect > UINT32_MAX ? UINT32_MAX : expect));
    else
        S_CHECK (ms == 0);
}

static void
s_request_id (const uint8_t *data, size_t size)
{
    if (size == 0)
        return;
    size_t max_len = data[0];
    char why[100] = "";
    int rc = edge_parse_request_id ((const char *) data + 1, size - 1, max_len,
                                    why, sizeof why);
    if (rc == 0) {
        S_CHECK (size - 1 >= 1 && size - 1 <= max_len);
        S_CHECK (memchr (data + 1, 0, size - 1) == NULL);
        S_CHECK (pb_utf8_valid (data + 1, size - 1));
    } else
        S_CHECK (strlen (why) > 0);
}

static void
s_escape (const uint8_t *data, size_t size)
{
    if (size == 0)
        return;
    size_t buf_size = (size_t) data[0] + 1;
    char *buf = (char *) malloc (buf_size + 1);
    S_CHECK (buf);
    buf[buf_size] = '#'; //  a guard byte past the buffer
    const char *out = edge_parse_escape (data + 1, size - 1, buf, buf_size);
    S_CHECK (out == buf);
    S_CHECK (buf[buf_size] == '#');
    size_t len = strlen (buf);
    S_CHECK (len < buf_size);
    for (size_t i = 0; i < len; i++)
        S_CHECK ((unsigned char) buf[i] >= ' '
                 && (unsigned char) buf[i] < 0x7f);
    free (buf);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    switch (data[0] % 7) {
        case 0:
        case 1:
        case 2:
        case 3:
            s_message ((edge_msg_t) (data[0] % 7), data + 1, size - 1);
            break;
        case 4:
            s_wait_ms (data + 1, size - 1);
            break;
        case 5:
            s_request_id (data + 1, size - 1);
            break;
        default:
            s_escape (data + 1, size - 1);
            break;
    }
    return 0;
}
