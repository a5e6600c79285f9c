/*  =========================================================================
    pb_strings - check every string field of an encoded protobuf message

    The walk reads (tag, value) pairs: varints and fixed-size values are
    skipped; a length-delimited value is checked when its field is a
    string, walked recursively when it is a message (map entries are
    messages), and skipped otherwise (bytes, packed numbers, unknown
    fields).  Groups (wire types 3 and 4) are not proto3 and count as
    malformed.
    =========================================================================
*/
#include "pb_strings.h"

#define PB_MAX_DEPTH 16

bool
pb_utf8_valid (const uint8_t *s, size_t size)
{
    size_t i = 0;
    while (i < size) {
        uint8_t c = s[i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t extra;
        uint32_t code;
        if (c >= 0xc2 && c <= 0xdf) {
            extra = 1;
            code = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            extra = 2;
            code = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            extra = 3;
            code = c & 0x07;
        } else
            return false; //  continuation byte, overlong lead, > F4
        if (size - i <= extra)
            return false;
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            code = (code << 6) | (s[i + k] & 0x3f);
        }
        if ((extra == 2 && code < 0x800) || (extra == 3 && code < 0x10000)
            || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
            return false; //  overlong, out of range, surrogate
        i += extra + 1;
    }
    return true;
}

//  Read a varint at *pos; returns 0, or -1 when truncated or over 10 bytes.
static int
s_varint (const uint8_t *data, size_t size, size_t *pos, uint64_t *value)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (*pos >= size)
            return -1;
        uint8_t b = data[(*pos)++];
        v |= (uint64_t) (b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *value = v;
            return 0;
        }
    }
    return -1;
}

static int
s_walk (const ProtobufCMessageDescriptor *desc,
        const uint8_t *data,
        size_t size,
        int depth,
        const char **field)
{
    if (depth > PB_MAX_DEPTH) {
        *field = "message";
        return -1;
    }
    size_t pos = 0;
    while (pos < size) {
        uint64_t tag, length;
        if (s_varint (data, size, &pos, &tag) || (tag >> 3) == 0) {
            *field = "message";
            return -1;
        }
        switch (tag & 7) {
            case 0:
                if (s_varint (data, size, &pos, &length)) {
                    *field = "message";
                    return -1;
                }
                break;
            case 1:
            case 5: {
                size_t width = (tag & 7) == 1 ? 8 : 4;
                if (size - pos < width) {
                    *field = "message";
                    return -1;
                }
                pos += width;
                break;
            }
            case 2: {
                if (s_varint (data, size, &pos, &length)
                    || length > size - pos) {
                    *field = "message";
                    return -1;
                }
                const ProtobufCFieldDescriptor *fd =
                    desc ? protobuf_c_message_descriptor_get_field (
                        desc, (unsigned) (tag >> 3))
                         : NULL;
                if (fd && fd->type == PROTOBUF_C_TYPE_STRING
                    && !pb_utf8_valid (data + pos, (size_t) length)) {
                    *field = fd->name;
                    return -1;
                }
                if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE
                    && s_walk (
                        (const ProtobufCMessageDescriptor *) fd->descriptor,
                        data + pos, (size_t) length, depth + 1, field))
                    return -1;
                pos += (size_t) length;
                break;
            }
            default:
                *field = "message";
                return -1;
        }
    }
    return 0;
}

int
pb_strings_check (const ProtobufCMessageDescriptor *desc,
                  const uint8_t *data,
                  size_t size,
                  const char **field)
{
    const char *ignored;
    if (!field)
        field = &ignored;
    *field = NULL;
    if (!data && size)
        return -1;
    return s_walk (desc, data, size, 0, field);
}
