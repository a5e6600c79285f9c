/*  =========================================================================
    wire_envelope - encode and decode the edge <-> router envelope

    Invariant: a decoded envelope has version == WIRE_VERSION; anything else
    is reported as malformed (-2) and freed here.

    The fast codec.  Most envelopes are a handful of varints and strings,
    and protobuf-c's generic, descriptor-driven code costs far more than
    the bytes: on the router's hot path, packing and unpacking envelopes
    with it cost about as much as all the routing.  So the scalar and
    string fields of proto/wire.proto are packed and parsed here directly,
    and protobuf-c keeps everything else: an envelope with agent entries
    (fields 15 and 16) or unknown fields is packed by protobuf-c, and an
    input the parser does not recognise in full (another field number, a
    wire type that does not match the field, a truncated or overlong
    varint or length) is handed to protobuf-c from its first byte, so
    protobuf-c alone decides every unusual case.  What the parser accepts
    it decodes as protobuf-c does: proto3 fields, the last occurrence wins,
    a 32-bit field keeps the low 32 bits of its varint, a bool is true when
    any bit of its varint is set, a string is copied and NUL-terminated.
    What the packer writes is protobuf-c's encoding: fields in number
    order, zero scalars and empty strings left out, a negative int32 or
    enum as a ten-byte varint.  tests/unit/test_wire_codec.c checks both
    against protobuf-c on random envelopes and mutated bytes.
    =========================================================================
*/
#include "wire_envelope.h"

int
wire_envelope_decode (zframe_t *frame, Wire__Envelope **env_p)
{
    assert (env_p);
    *env_p = NULL;
    if (!frame || zframe_size (frame) > WIRE_ENVELOPE_MAX)
        return -2;
    Wire__Envelope *env =
        wire__envelope__unpack (NULL, zframe_size (frame), zframe_data (frame));
    if (!env)
        return -2;
    if (env->version != WIRE_VERSION) {
        wire__envelope__free_unpacked (env, NULL);
        return -2;
    }
    *env_p = env;
    return 0;
}

void
wire_envelope_free (Wire__Envelope **env_p)
{
    assert (env_p);
    if (*env_p) {
        wire__envelope__free_unpacked (*env_p, NULL);
        *env_p = NULL;
    }
}

const char *
wire_command_name (int command)
{
    const ProtobufCEnumValue *value = protobuf_c_enum_descriptor_get_value (
        &wire__command__descriptor, command);
    return value ? value->name : "UNKNOWN";
}


//  ---------------------------------------------------------------------
//  Packing

//  One field of the fast packer: a varint (str NULL) or a string.
typedef struct
{
    uint64_t tag;    //  field number << 3 | wire type
    uint64_t value;  //  varint value
    const char *str; //  string bytes, or NULL for a varint
    size_t len;      //  string length
} s_item_t;

#define S_ITEMS_MAX 17 //  scalar and string fields of wire.proto

//  True when the fast packer can write `env`.
static bool
s_fast_packable (const Wire__Envelope *env)
{
    return env->n_agents == 0 && env->agent == NULL
           && env->base.n_unknown_fields == 0;
}

static void
s_add_varint (s_item_t *items, size_t *n, uint32_t field, uint64_t value)
{
    //  proto3: a zero scalar is left out
    if (value)
        items[(*n)++] = (s_item_t){(uint64_t) field << 3, value, NULL, 0};
}

static void
s_add_string (s_item_t *items, size_t *n, uint32_t field, const char *value)
{
    //  proto3: NULL and "" are left out
    if (value && *value)
        items[(*n)++] =
            (s_item_t){((uint64_t) field << 3) | 2, 0, value, strlen (value)};
}

//  The fields of `env` protobuf-c would write, in its order (field number;
//  a negative int32 or enum sign-extended to ten bytes).  Returns how many.
static size_t
s_items (const Wire__Envelope *env, s_item_t *items)
{
    size_t n = 0;
    s_add_varint (items, &n, 1, env->version);
    s_add_varint (items, &n, 2, (uint64_t) (int64_t) (int32_t) env->command);
    s_add_varint (items, &n, 3, env->handle);
    s_add_string (items, &n, 4, env->request_id);
    s_add_string (items, &n, 5, env->agent_id);
    s_add_varint (items, &n, 6, env->session);
    s_add_varint (items, &n, 7, (uint64_t) (int64_t) env->status);
    s_add_string (items, &n, 8, env->message);
    s_add_varint (items, &n, 9, env->credit);
    s_add_varint (items, &n, 10, env->timeout_ms);
    s_add_varint (items, &n, 11, env->wait_ms);
    s_add_string (items, &n, 12, env->edge_id);
    s_add_varint (items, &n, 13, env->incarnation);
    s_add_varint (items, &n, 14, env->known ? 1 : 0);
    s_add_string (items, &n, 17, env->prefix);
    s_add_varint (items, &n, 18, env->limit);
    s_add_string (items, &n, 19, env->page_token);
    return n;
}

size_t
wire_varint_size (uint64_t value)
{
    size_t size = 1;
    while (value >= 0x80) {
        value >>= 7;
        size++;
    }
    return size;
}

byte *
wire_varint_write (byte *p, uint64_t value)
{
    while (value >= 0x80) {
        *p++ = (byte) (value | 0x80);
        value >>= 7;
    }
    *p++ = (byte) value;
    return p;
}

//  The packed size of `n` items.
static size_t
s_items_size (const s_item_t *items, size_t n)
{
    size_t size = 0;
    for (size_t i = 0; i < n; i++)
        size += wire_varint_size (items[i].tag)
                + (items[i].str ? wire_varint_size (items[i].len) + items[i].len
                                : wire_varint_size (items[i].value));
    return size;
}

//  Writes `n` items at `out`, which has room for s_items_size of them.
static void
s_items_write (const s_item_t *items, size_t n, byte *out)
{
    byte *p = out;
    for (size_t i = 0; i < n; i++) {
        p = wire_varint_write (p, items[i].tag);
        if (items[i].str) {
            p = wire_varint_write (p, items[i].len);
            memcpy (p, items[i].str, items[i].len);
            p += items[i].len;
        } else
            p = wire_varint_write (p, items[i].value);
    }
}

//  Packs `env` into `out` when its size is at most `cap`; returns its size
//  either way.
static size_t
s_fast_pack (const Wire__Envelope *env, byte *out, size_t cap)
{
    s_item_t items[S_ITEMS_MAX];
    size_t n = s_items (env, items);
    size_t size = s_items_size (items, n);
    if (out && size <= cap)
        s_items_write (items, n, out);
    return size;
}

size_t
wire_envelope_packed_size (Wire__Envelope *env)
{
    assert (env);
    env->version = WIRE_VERSION;
    if (s_fast_packable (env))
        return s_fast_pack (env, NULL, 0);
    return wire__envelope__get_packed_size (env);
}

size_t
wire_envelope_pack_into (Wire__Envelope *env, byte *out, size_t cap)
{
    assert (env);
    assert (out || cap == 0);
    env->version = WIRE_VERSION;
    if (s_fast_packable (env))
        return s_fast_pack (env, out, cap);
    size_t size = wire__envelope__get_packed_size (env);
    if (size <= cap)
        wire__envelope__pack (env, out);
    return size;
}


zframe_t *
wire_envelope_encode (Wire__Envelope *env)
{
    assert (env);
    env->version = WIRE_VERSION;
    if (!s_fast_packable (env)) {
        size_t size = wire__envelope__get_packed_size (env);
        zframe_t *frame = zframe_new (NULL, size);
        assert (frame);
        wire__envelope__pack (env, zframe_data (frame));
        return frame;
    }
    //  One walk over the fields for the size and the bytes
    s_item_t items[S_ITEMS_MAX];
    size_t n = s_items (env, items);
    zframe_t *frame = zframe_new (NULL, s_items_size (items, n));
    assert (frame);
    s_items_write (items, n, zframe_data (frame));
    return frame;
}

//  ---------------------------------------------------------------------
//  Parsing

//  String buffers above this size are given back once a smaller input
//  comes (a HELLO listing a whole fleet must not pin megabytes).
#define S_STRINGS_KEEP (64u * 1024)

struct _wire_envelope_parser_t
{
    Wire__Envelope env;       //  the last envelope the fast path decoded
    char *strings;            //  its string fields, each NUL-terminated
    size_t strings_cap;       //  bytes allocated at strings
    Wire__Envelope *unpacked; //  the last one protobuf-c decoded, or NULL
};

wire_envelope_parser_t *
wire_envelope_parser_new (void)
{
    wire_envelope_parser_t *self =
        (wire_envelope_parser_t *) calloc (1, sizeof *self);
    assert (self);
    wire__envelope__init (&self->env);
    return self;
}

void
wire_envelope_parser_destroy (wire_envelope_parser_t **self_p)
{
    assert (self_p);
    wire_envelope_parser_t *self = *self_p;
    if (self) {
        wire_envelope_free (&self->unpacked);
        free (self->strings);
        free (self);
        *self_p = NULL;
    }
}

//  Room for every string of a `size`-byte input: each string takes at
//  least a tag and a length byte on the wire, one more than its NUL.
static void
s_strings_reserve (wire_envelope_parser_t *self, size_t size)
{
    size_t need = size + 1;
    if (need <= self->strings_cap
        && (self->strings_cap <= S_STRINGS_KEEP || need > S_STRINGS_KEEP))
        return;
    size_t cap = need < 256 ? 256 : need;
    char *strings = (char *) realloc (self->strings, cap);
    assert (strings);
    self->strings = strings;
    self->strings_cap = cap;
}

//  Parse `size` bytes into self->env.  Returns 0, or -1 when the input is
//  not one the fast path decodes in full (then protobuf-c decides).
static int
s_parse_fast (wire_envelope_parser_t *self, const byte *data, size_t size)
{
    Wire__Envelope *env = &self->env;
    wire__envelope__init (env);
    char *strings = self->strings;
    const byte *p = data;
    const byte *end = data + size;
    while (p < end) {
        //  Every field we know has a one- or two-byte tag
        uint32_t tag = *p++;
        if (tag & 0x80) {
            if (p == end || (*p & 0x80))
                return -1;
            tag = (tag & 0x7F) | ((uint32_t) *p++ << 7);
        }
        uint32_t field = tag >> 3;
        uint32_t wire_type = tag & 7;
        if (wire_type == 0) {
            uint64_t value = 0;
            bool any = false;
            for (unsigned int i = 0;; i++) {
                if (p == end || i == 10)
                    return -1;
                byte b = *p++;
                if (b & 0x7F)
                    any = true;
                value |= (uint64_t) (b & 0x7F) << (7 * i);
                if (!(b & 0x80))
                    break;
            }
            switch (field) {
                case 1:
                    env->version = (uint32_t) value;
                    break;
                case 2:
                    env->command = (Wire__Command) (int32_t) (uint32_t) value;
                    break;
                case 3:
                    env->handle = value;
                    break;
                case 6:
                    env->session = value;
                    break;
                case 7:
                    env->status = (int32_t) (uint32_t) value;
                    break;
                case 9:
                    env->credit = (uint32_t) value;
                    break;
                case 10:
                    env->timeout_ms = (uint32_t) value;
                    break;
                case 11:
                    env->wait_ms = (uint32_t) value;
                    break;
                case 13:
                    env->incarnation = value;
                    break;
                case 14:
                    env->known = any;
                    break;
                case 18:
                    env->limit = (uint32_t) value;
                    break;
                default:
                    return -1;
            }
        } else if (wire_type == 2) {
            uint64_t len = 0;
            for (unsigned int i = 0;; i++) {
                if (p == end || i == 5)
                    return -1;
                byte b = *p++;
                len |= (uint64_t) (b & 0x7F) << (7 * i);
                if (!(b & 0x80))
                    break;
            }
            if (len > (uint64_t) (end - p))
                return -1;
            char **member;
            switch (field) {
                case 4:
                    member = &env->request_id;
                    break;
                case 5:
                    member = &env->agent_id;
                    break;
                case 8:
                    member = &env->message;
                    break;
                case 12:
                    member = &env->edge_id;
                    break;
                case 17:
                    member = &env->prefix;
                    break;
                case 19:
                    member = &env->page_token;
                    break;
                default:
                    return -1;
            }
            memcpy (strings, p, (size_t) len);
            strings[len] = 0;
            *member = strings;
            strings += len + 1;
            p += len;
        } else
            return -1;
    }
    return 0;
}

int
wire_envelope_parser_decode (wire_envelope_parser_t *self,
                             const void *data,
                             size_t size,
                             Wire__Envelope **env_p)
{
    assert (self);
    assert (env_p);
    *env_p = NULL;
    wire_envelope_free (&self->unpacked);
    if ((!data && size) || size > WIRE_ENVELOPE_MAX)
        return -2;
    if (size == 0)
        return -2; //  no version field: version 0
    s_strings_reserve (self, size);
    Wire__Envelope *env = &self->env;
    if (s_parse_fast (self, (const byte *) data, size) != 0) {
        self->unpacked =
            wire__envelope__unpack (NULL, size, (const uint8_t *) data);
        if (!self->unpacked)
            return -2;
        env = self->unpacked;
    }
    if (env->version != WIRE_VERSION)
        return -2;
    *env_p = env;
    return 0;
}
