/*  =========================================================================
    test_wire_codec - the fast envelope codec against protobuf-c

    wire_envelope_pack_into must write exactly wire__envelope__pack's
    bytes, and wire_envelope_parser_decode must give exactly
    wire_envelope_decode's verdict and fields, for any input: random
    envelopes, their bytes mutated (flipped, cut, extended, duplicated
    fields, overlong varints, unknown fields, wrong wire types), and
    envelopes with agent entries, which both leave to protobuf-c.  The
    random sequences are seeded, so a failure repeats.
    =========================================================================
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include "wire_envelope.h"

#define S_ROUNDS 20000

//  A small deterministic generator (xorshift64*), so runs repeat.
typedef struct
{
    uint64_t state;
} rng_t;

static uint64_t
s_next (rng_t *rng)
{
    uint64_t x = rng->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng->state = x;
    return x * 2685821657736338717ULL;
}

static uint32_t
s_below (rng_t *rng, uint32_t n)
{
    return (uint32_t) (s_next (rng) % n);
}

//  A value that is zero, small, or any width, so every varint length and
//  the skip-when-zero rule come up.
static uint64_t
s_value (rng_t *rng)
{
    switch (s_below (rng, 5)) {
        case 0:
            return 0;
        case 1:
            return s_below (rng, 200);
        case 2:
            return s_next (rng) >> s_below (rng, 64);
        default:
            return s_next (rng);
    }
}

//  A string of 0..`max` bytes (1..255, no NUL) into `buf`, or NULL.
static char *
s_string (rng_t *rng, char *buf, size_t max)
{
    uint32_t kind = s_below (rng, 6);
    if (kind == 0)
        return NULL;
    size_t len = kind == 1 ? 0 : s_below (rng, (uint32_t) max + 1);
    for (size_t i = 0; i < len; i++)
        buf[i] = (char) (1 + s_below (rng, 255));
    buf[len] = 0;
    return buf;
}

typedef struct
{
    char strings[6][300];
} strings_t;

static void
s_random_envelope (rng_t *rng, Wire__Envelope *env, strings_t *text)
{
    wire__envelope__init (env);
    env->command = (Wire__Command) (int32_t) s_value (rng);
    env->handle = s_value (rng);
    env->request_id = s_string (rng, text->strings[0], 200);
    env->agent_id = s_string (rng, text->strings[1], 40);
    env->session = s_value (rng);
    env->status = (int32_t) s_value (rng);
    env->message = s_string (rng, text->strings[2], 290);
    env->credit = (uint32_t) s_value (rng);
    env->timeout_ms = (uint32_t) s_value (rng);
    env->wait_ms = (uint32_t) s_value (rng);
    env->edge_id = s_string (rng, text->strings[3], 40);
    env->incarnation = s_value (rng);
    env->known = s_below (rng, 2) ? (protobuf_c_boolean) s_below (rng, 9) : 0;
    env->prefix = s_string (rng, text->strings[4], 20);
    env->limit = (uint32_t) s_value (rng);
    env->page_token = s_string (rng, text->strings[5], 20);
}

static void
s_assert_same_string (const char *a, const char *b)
{
    assert_string_equal (a ? a : "", b ? b : "");
}

static void
s_assert_same (const Wire__Envelope *a, const Wire__Envelope *b)
{
    assert_int_equal (a->version, b->version);
    assert_int_equal (a->command, b->command);
    assert_true (a->handle == b->handle);
    s_assert_same_string (a->request_id, b->request_id);
    s_assert_same_string (a->agent_id, b->agent_id);
    assert_true (a->session == b->session);
    assert_int_equal (a->status, b->status);
    s_assert_same_string (a->message, b->message);
    assert_int_equal (a->credit, b->credit);
    assert_int_equal (a->timeout_ms, b->timeout_ms);
    assert_int_equal (a->wait_ms, b->wait_ms);
    s_assert_same_string (a->edge_id, b->edge_id);
    assert_true (a->incarnation == b->incarnation);
    assert_int_equal (!!a->known, !!b->known);
    s_assert_same_string (a->prefix, b->prefix);
    assert_int_equal (a->limit, b->limit);
    s_assert_same_string (a->page_token, b->page_token);
    assert_int_equal (a->n_agents, b->n_agents);
    for (size_t i = 0; i < a->n_agents; i++) {
        assert_true (a->agents[i]->handle == b->agents[i]->handle);
        s_assert_same_string (a->agents[i]->agent_id, b->agents[i]->agent_id);
        assert_int_equal (a->agents[i]->n_labels, b->agents[i]->n_labels);
    }
    assert_int_equal (a->agent == NULL, b->agent == NULL);
    if (a->agent)
        s_assert_same_string (a->agent->agent_id, b->agent->agent_id);
}

//  The parser and wire_envelope_decode agree on `data`.  Returns the
//  verdict.
static int
s_check_decode (wire_envelope_parser_t *parser, const byte *data, size_t size)
{
    zframe_t *frame = zframe_new (data, size);
    assert_non_null (frame);
    Wire__Envelope *slow = NULL;
    int expected = wire_envelope_decode (frame, &slow);
    Wire__Envelope *fast = NULL;
    int got = wire_envelope_parser_decode (parser, data, size, &fast);
    assert_int_equal (got, expected);
    if (got == 0)
        s_assert_same (fast, slow);
    else
        assert_null (fast);
    wire_envelope_free (&slow);
    zframe_destroy (&frame);
    return got;
}

//  Packs `env` both ways and checks the bytes match.  Returns the packed
//  size; the bytes are in `out` (room for 4096).
static size_t
s_check_pack (Wire__Envelope *env, byte *out)
{
    size_t size = wire_envelope_packed_size (env);
    assert_int_equal (env->version, WIRE_VERSION);
    assert_true (size <= 4096);
    assert_int_equal (wire__envelope__get_packed_size (env), size);
    byte expected[4096];
    assert_int_equal (wire__envelope__pack (env, expected), size);
    memset (out, 0xAA, 4096);
    assert_int_equal (wire_envelope_pack_into (env, out, 4096), size);
    assert_memory_equal (out, expected, size);
    //  Short of room by one byte: the size needed, nothing past the room
    if (size > 0) {
        byte short_of[4097];
        memset (short_of, 0xAA, sizeof short_of);
        assert_int_equal (wire_envelope_pack_into (env, short_of, size - 1),
                          size);
        assert_int_equal (short_of[size - 1], 0xAA);
    }
    //  Exactly the room it needs
    byte exact[4096];
    assert_int_equal (wire_envelope_pack_into (env, exact, size), size);
    assert_memory_equal (exact, expected, size);
    return size;
}

static void
test_pack_and_parse_match_protobuf_c (void **state)
{
    (void) state;
    rng_t rng = {0x9E3779B97F4A7C15ULL};
    wire_envelope_parser_t *parser = wire_envelope_parser_new ();
    assert_non_null (parser);
    for (int round = 0; round < S_ROUNDS; round++) {
        Wire__Envelope env;
        strings_t text;
        s_random_envelope (&rng, &env, &text);
        byte packed[4096];
        size_t size = s_check_pack (&env, packed);
        assert_int_equal (s_check_decode (parser, packed, size), 0);
        //  The encoder writes what it was given: the decoded envelope
        //  packs to the same bytes.
        Wire__Envelope *decoded = NULL;
        assert_int_equal (
            wire_envelope_parser_decode (parser, packed, size, &decoded), 0);
        byte again[4096];
        assert_int_equal (
            wire_envelope_pack_into (decoded, again, sizeof again), size);
        assert_memory_equal (again, packed, size);
    }
    wire_envelope_parser_destroy (&parser);
    assert_null (parser);
}

//  Append a varint to buf at *len.
static void
s_append_varint (byte *buf, size_t *len, uint64_t value)
{
    while (value >= 0x80) {
        buf[(*len)++] = (byte) (value | 0x80);
        value >>= 7;
    }
    buf[(*len)++] = (byte) value;
}

//  One mutation of `buf` (`*len` bytes, room for 8192).
static void
s_mutate (rng_t *rng, byte *buf, size_t *len)
{
    switch (s_below (rng, 10)) {
        case 0: //  flip a byte
            if (*len)
                buf[s_below (rng, (uint32_t) *len)] ^=
                    (byte) (1 + s_below (rng, 255));
            break;
        case 1: //  cut
            if (*len)
                *len = s_below (rng, (uint32_t) *len);
            break;
        case 2: //  random bytes at the end
            for (uint32_t n = s_below (rng, 12); n && *len < 8000; n--)
                buf[(*len)++] = (byte) s_next (rng);
            break;
        case 3: //  a field again, any number and wire type
        {
            uint32_t field = 1 + s_below (rng, 22);
            uint32_t wire_type = s_below (rng, 6);
            s_append_varint (buf, len, ((uint64_t) field << 3) | wire_type);
            if (wire_type == 2) {
                uint32_t n = s_below (rng, 10);
                s_append_varint (buf, len, n);
                for (; n; n--)
                    buf[(*len)++] = (byte) s_next (rng);
            } else
                s_append_varint (buf, len, s_value (rng));
            break;
        }
        case 4: //  an overlong varint field (up to 11 bytes)
        {
            uint32_t field = 1 + s_below (rng, 14);
            s_append_varint (buf, len, (uint64_t) field << 3);
            uint32_t n = 1 + s_below (rng, 11);
            for (uint32_t i = 0; i < n; i++)
                buf[(*len)++] =
                    (byte) ((i + 1 < n ? 0x80 : 0) | s_below (rng, 128));
            break;
        }
        case 5: //  a string with an overlong or huge length prefix
        {
            s_append_varint (buf, len, (4 << 3) | 2);
            uint32_t n = 1 + s_below (rng, 6);
            for (uint32_t i = 0; i < n; i++)
                buf[(*len)++] =
                    (byte) ((i + 1 < n ? 0x80 : 0) | s_below (rng, 128));
            buf[(*len)++] = 'x';
            break;
        }
        case 6: //  a version of another value
            s_append_varint (buf, len, 1 << 3);
            s_append_varint (buf, len, s_below (rng, 3));
            break;
        case 7: //  a bool whose only set bit is beyond 64
        {
            s_append_varint (buf, len, 14 << 3);
            for (int i = 0; i < 9; i++)
                buf[(*len)++] = 0x80;
            buf[(*len)++] = (byte) (s_below (rng, 2) ? 0x02 : 0x01);
            break;
        }
        case 8: //  a two-byte tag in its overlong form
            buf[(*len)++] = (byte) (0x80 | (3 << 3));
            buf[(*len)++] = 0x00;
            buf[(*len)++] = 0x05;
            break;
        default: //  an embedded NUL in a string
            s_append_varint (buf, len, (8 << 3) | 2);
            buf[(*len)++] = 3;
            buf[(*len)++] = 'a';
            buf[(*len)++] = 0;
            buf[(*len)++] = 'b';
            break;
    }
}

static void
test_mutated_bytes_decode_as_protobuf_c (void **state)
{
    (void) state;
    rng_t rng = {0xD1B54A32D192ED03ULL};
    wire_envelope_parser_t *parser = wire_envelope_parser_new ();
    int accepted = 0, refused = 0;
    for (int round = 0; round < S_ROUNDS; round++) {
        Wire__Envelope env;
        strings_t text;
        s_random_envelope (&rng, &env, &text);
        byte buf[8192];
        size_t len = s_check_pack (&env, buf);
        for (uint32_t n = 1 + s_below (&rng, 3); n; n--)
            s_mutate (&rng, buf, &len);
        if (s_check_decode (parser, buf, len) == 0)
            accepted++;
        else
            refused++;
    }
    //  Both verdicts came up often enough to mean something
    assert_true (accepted > S_ROUNDS / 10);
    assert_true (refused > S_ROUNDS / 10);
    wire_envelope_parser_destroy (&parser);
}

static void
test_agent_entries_go_through_protobuf_c (void **state)
{
    (void) state;
    wire_envelope_parser_t *parser = wire_envelope_parser_new ();
    Wire__AgentEntry__LabelsEntry label = WIRE__AGENT_ENTRY__LABELS_ENTRY__INIT;
    label.key = "site";
    label.value = "lyon";
    Wire__AgentEntry__LabelsEntry *labels[] = {&label};
    Wire__AgentEntry entries[3];
    Wire__AgentEntry *entry_ptrs[3];
    char ids[3][16];
    for (int i = 0; i < 3; i++) {
        wire__agent_entry__init (&entries[i]);
        snprintf (ids[i], sizeof ids[i], "agent-%d", i);
        entries[i].agent_id = ids[i];
        entries[i].handle = (uint64_t) i + 1;
        entries[i].session = (uint64_t) i * 1000;
        entries[i].n_labels = 1;
        entries[i].labels = labels;
        entry_ptrs[i] = &entries[i];
    }
    Wire__Envelope hello = WIRE__ENVELOPE__INIT;
    hello.command = WIRE__COMMAND__HELLO;
    hello.edge_id = "edge-a";
    hello.incarnation = 42;
    hello.n_agents = 3;
    hello.agents = entry_ptrs;
    byte buf[4096];
    size_t size = s_check_pack (&hello, buf);
    assert_int_equal (s_check_decode (parser, buf, size), 0);

    Wire__Envelope subscribe = WIRE__ENVELOPE__INIT;
    subscribe.command = WIRE__COMMAND__SUBSCRIBE;
    subscribe.agent = &entries[1];
    size = s_check_pack (&subscribe, buf);
    assert_int_equal (s_check_decode (parser, buf, size), 0);
    Wire__Envelope *env = NULL;
    assert_int_equal (wire_envelope_parser_decode (parser, buf, size, &env), 0);
    assert_non_null (env->agent);
    assert_string_equal (env->agent->agent_id, "agent-1");

    //  The next decode replaces it (and frees protobuf-c's copy)
    Wire__Envelope ping = WIRE__ENVELOPE__INIT;
    ping.command = WIRE__COMMAND__PING;
    size = s_check_pack (&ping, buf);
    assert_int_equal (wire_envelope_parser_decode (parser, buf, size, &env), 0);
    assert_int_equal (env->command, WIRE__COMMAND__PING);
    assert_null (env->agent);
    wire_envelope_parser_destroy (&parser);
}

static void
test_edge_cases (void **state)
{
    (void) state;
    wire_envelope_parser_t *parser = wire_envelope_parser_new ();
    Wire__Envelope *env = (Wire__Envelope *) 1;
    //  Nothing at all: version 0
    assert_int_equal (wire_envelope_parser_decode (parser, NULL, 0, &env), -2);
    assert_null (env);
    assert_int_equal (wire_envelope_parser_decode (parser, "", 0, &env), -2);
    //  A large string, then small inputs again: the buffers follow
    size_t big = 200 * 1024;
    char *text = (char *) malloc (big + 1);
    assert_non_null (text);
    memset (text, 'm', big);
    text[big] = 0;
    Wire__Envelope finish = WIRE__ENVELOPE__INIT;
    finish.command = WIRE__COMMAND__FINISH;
    finish.message = text;
    size_t size = wire_envelope_packed_size (&finish);
    byte *buf = (byte *) malloc (size);
    assert_non_null (buf);
    assert_int_equal (wire_envelope_pack_into (&finish, buf, size), size);
    assert_int_equal (wire_envelope_parser_decode (parser, buf, size, &env), 0);
    assert_int_equal (strlen (env->message), big);
    assert_int_equal (s_check_decode (parser, buf, size), 0);
    byte small[4096];
    Wire__Envelope ping = WIRE__ENVELOPE__INIT;
    ping.command = WIRE__COMMAND__PING;
    ping.edge_id = "e";
    size = s_check_pack (&ping, small);
    assert_int_equal (s_check_decode (parser, small, size), 0);
    //  Over the size limit
    assert_int_equal (
        wire_envelope_parser_decode (parser, buf, WIRE_ENVELOPE_MAX + 1, &env),
        -2);
    free (buf);
    free (text);
    //  Unknown fields survive protobuf-c's pack (the fast packer leaves
    //  such envelopes to it)
    byte unknown[4096];
    size_t len = s_check_pack (&ping, unknown);
    s_append_varint (unknown, &len, 25 << 3);
    s_append_varint (unknown, &len, 7);
    Wire__Envelope *slow = NULL;
    zframe_t *frame = zframe_new (unknown, len);
    assert_int_equal (wire_envelope_decode (frame, &slow), 0);
    assert_int_equal (slow->base.n_unknown_fields, 1);
    byte again[4096];
    assert_int_equal (s_check_pack (slow, again), len);
    assert_memory_equal (again, unknown, len);
    wire_envelope_free (&slow);
    zframe_destroy (&frame);
    wire_envelope_parser_destroy (&parser);
    wire_envelope_parser_destroy (&parser); //  NULL: nothing to do
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_pack_and_parse_match_protobuf_c),
        cmocka_unit_test (test_mutated_bytes_decode_as_protobuf_c),
        cmocka_unit_test (test_agent_entries_go_through_protobuf_c),
        cmocka_unit_test (test_edge_cases),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
