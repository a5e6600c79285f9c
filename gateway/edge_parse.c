/*  =========================================================================
    edge_parse - what the edge checks in the bytes clients and agents send

    Message checks walk the wire format once with common/pb_strings (no
    unpacking).  pb_strings names the innermost field, so for the one map
    of SubscriberInfo (labels) and AgentRequest (headers) "key" and "value"
    are reported with the map's name.
    =========================================================================
*/
#include "edge_parse.h"

#include <stdio.h>
#include <string.h>

#include "pb_strings.h"
#include "tether.pb-c.h"

static const ProtobufCMessageDescriptor *
s_descriptor (edge_msg_t type)
{
    switch (type) {
        case EDGE_MSG_SUBSCRIBER_INFO:
            return &tether__v1__subscriber_info__descriptor;
        case EDGE_MSG_AGENT_REQUEST:
            return &tether__v1__agent_request__descriptor;
        case EDGE_MSG_AGENT_RESPONSE:
            return &tether__v1__agent_response__descriptor;
        case EDGE_MSG_LIST_REQUEST:
            return &tether__v1__list_agents_request__descriptor;
        default:
            return NULL;
    }
}

const char *
edge_parse_msg_name (edge_msg_t type)
{
    switch (type) {
        case EDGE_MSG_SUBSCRIBER_INFO:
            return "SubscriberInfo";
        case EDGE_MSG_AGENT_REQUEST:
            return "AgentRequest";
        case EDGE_MSG_AGENT_RESPONSE:
            return "AgentResponse";
        case EDGE_MSG_LIST_REQUEST:
            return "ListAgentsRequest";
        default:
            return "message";
    }
}

int
edge_parse_message (edge_msg_t type,
                    const uint8_t *data,
                    size_t size,
                    char *why,
                    size_t why_size)
{
    const ProtobufCMessageDescriptor *desc = s_descriptor (type);
    const char *name = edge_parse_msg_name (type);
    const char *field = NULL;
    if (desc && pb_strings_check (desc, data, size, &field) == 0)
        return 0;
    if (why_size == 0)
        return -1;
    if (!desc || !field || strcmp (field, "message") == 0) {
        //  "an AgentRequest", "a SubscriberInfo".
        snprintf (why, why_size, "%s %s message is expected",
                  *name == 'A' ? "an" : "a", name);
        return -1;
    }
    const char *map = NULL;
    if (strcmp (field, "key") == 0 || strcmp (field, "value") == 0) {
        if (type == EDGE_MSG_SUBSCRIBER_INFO)
            map = "labels";
        else if (type == EDGE_MSG_AGENT_REQUEST)
            map = "headers";
    }
    snprintf (why, why_size, "%s.%s%s%s is not valid UTF-8 or holds a NUL byte",
              name, map ? map : "", map ? " " : "", field);
    return -1;
}

int
edge_parse_wait_ms (const char *value, size_t len, uint32_t *ms)
{
    *ms = 0;
    if (!value || len == 0)
        return -1;
    uint64_t total = 0;
    for (size_t i = 0; i < len; i++) {
        if (value[i] < '0' || value[i] > '9')
            return -1;
        if (total <= UINT32_MAX)
            total = total * 10 + (uint64_t) (value[i] - '0');
    }
    *ms = total > UINT32_MAX ? UINT32_MAX : (uint32_t) total;
    return 0;
}

int
edge_parse_request_id (
    const char *value, size_t len, size_t max_len, char *why, size_t why_size)
{
    const char *problem = NULL;
    if (!value || len == 0)
        problem = "x-request-id is empty";
    else if (len > max_len)
        problem = "x-request-id is too long";
    else if (!pb_utf8_valid ((const uint8_t *) value, len))
        problem = "x-request-id is not valid UTF-8 or holds a NUL byte";
    if (!problem)
        return 0;
    if (why_size)
        snprintf (why, why_size, "%s", problem);
    return -1;
}

const char *
edge_parse_escape (const void *data, size_t len, char *buf, size_t size)
{
    const unsigned char *in = (const unsigned char *) data;
    if (size == 0)
        return buf;
    bool plain = len > 0;
    for (size_t i = 0; i < len && plain; i++)
        if (in[i] <= ' ' || in[i] >= 0x7f || in[i] == '"' || in[i] == '='
            || in[i] == '\\')
            plain = false;
    size_t n = 0;
    if (!plain && n + 1 < size)
        buf[n++] = '"';
    for (size_t i = 0; i < len; i++) {
        char piece[5];
        size_t width;
        if (in[i] == '"' || in[i] == '\\') {
            piece[0] = '\\';
            piece[1] = (char) in[i];
            width = 2;
        } else if (in[i] < ' ' || in[i] >= 0x7f) {
            snprintf (piece, sizeof piece, "\\x%02x", in[i]);
            width = 4;
        } else {
            piece[0] = (char) in[i];
            width = 1;
        }
        //  Keep room for the closing quote and the NUL.
        if (n + width + 2 > size)
            break;
        memcpy (buf + n, piece, width);
        n += width;
    }
    if (!plain && n + 1 < size)
        buf[n++] = '"';
    buf[n] = 0;
    return buf;
}

//  ---- reading a few fields without unpacking ------------------------------
//  Conservative by design: any byte sequence these walks are not sure
//  protobuf-c reads the same way is answered -1, and the caller unpacks.

typedef struct
{
    uint32_t number;      //  field number
    int wire;             //  wire type: 0 varint, 2 length-delimited
    uint64_t value;       //  varint value
    const uint8_t *bytes; //  length-delimited content
    size_t len;           //  its length
} s_field_t;

//  Read one varint of at most `max` bytes at *pos.  Returns 0 or -1.
static int
s_read_varint (const uint8_t *data,
               size_t size,
               size_t *pos,
               unsigned max,
               uint64_t *value)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < max && *pos < size; i++) {
        uint8_t b = data[(*pos)++];
        v |= (uint64_t) (b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *value = v;
            return 0;
        }
    }
    return -1;
}

//  Read the next field at *pos: only varint and length-delimited fields
//  with a tag of at most 5 bytes (as protobuf-c reads tags).  Returns 0, or -1 for anything else.
static int
s_next_field (const uint8_t *data, size_t size, size_t *pos, s_field_t *f)
{
    uint64_t tag;
    if (s_read_varint (data, size, pos, 5, &tag) || (tag >> 3) == 0
        || (tag >> 3) > 0x1fffffff)
        return -1;
    f->number = (uint32_t) (tag >> 3);
    f->wire = (int) (tag & 7);
    if (f->wire == 0)
        return s_read_varint (data, size, pos, 10, &f->value);
    if (f->wire != 2)
        return -1;
    //  protobuf-c reads a length from at most 5 bytes, up to INT_MAX.
    uint64_t len;
    if (s_read_varint (data, size, pos, 5, &len) || len > 0x7fffffff
        || len > size - *pos)
        return -1;
    f->bytes = data + *pos;
    f->len = (size_t) len;
    *pos += (size_t) len;
    return 0;
}

//  A map<string, string> entry: only fields 1 and 2, both
//  length-delimited.  Returns 0 or -1.
static int
s_map_entry (const uint8_t *data, size_t size)
{
    size_t pos = 0;
    s_field_t f;
    while (pos < size) {
        if (s_next_field (data, size, &pos, &f) || f.wire != 2
            || (f.number != 1 && f.number != 2))
            return -1;
    }
    return 0;
}

int
edge_parse_request_fields (const uint8_t *data,
                           size_t size,
                           edge_request_fields_t *fields)
{
    memset (fields, 0, sizeof *fields);
    if (!data && size)
        return -1;
    size_t pos = 0;
    s_field_t f;
    while (pos < size) {
        if (s_next_field (data, size, &pos, &f))
            return -1;
        switch (f.number) {
            case 1: //  id
            case 2: //  agent_id
            case 3: //  call
            case 4: //  payload
                if (f.wire != 2)
                    return -1;
                if (f.number == 1) {
                    fields->id = f.bytes;
                    fields->id_len = f.len;
                } else if (f.number == 2) {
                    fields->agent_id = f.bytes;
                    fields->agent_id_len = f.len;
                }
                break;
            case 5: //  headers
                if (f.wire != 2 || s_map_entry (f.bytes, f.len))
                    return -1;
                break;
            case 6: //  cancel
                if (f.wire != 0)
                    return -1;
                break;
            default:
                return -1;
        }
    }
    return 0;
}

int
edge_parse_response_fields (const uint8_t *data,
                            size_t size,
                            edge_response_fields_t *fields)
{
    memset (fields, 0, sizeof *fields);
    if (!data && size)
        return -1;
    size_t pos = 0;
    s_field_t f;
    while (pos < size) {
        if (s_next_field (data, size, &pos, &f))
            return -1;
        switch (f.number) {
            case 1: //  request_id
            case 2: //  payload
            case 4: //  status_message
                if (f.wire != 2)
                    return -1;
                if (f.number == 1) {
                    fields->request_id = f.bytes;
                    fields->request_id_len = f.len;
                } else if (f.number == 2)
                    fields->payload_len = f.len;
                else {
                    fields->status_message = f.bytes;
                    fields->status_message_len = f.len;
                }
                break;
            case 3: //  status_code: int32, the low 32 bits of the varint
                if (f.wire != 0)
                    return -1;
                fields->status_code = (int32_t) (uint32_t) f.value;
                break;
            default:
                return -1;
        }
    }
    return 0;
}
