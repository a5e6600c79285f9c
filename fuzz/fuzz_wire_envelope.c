/*  =========================================================================
    fuzz_wire_envelope - libFuzzer target: the edge <-> router envelope

    Any byte sequence goes to wire_envelope_decode, as frame 1 of a message
    off a socket would.  It must either fail cleanly (-2, no envelope) or
    give a WIRE_VERSION envelope whose command has a name; the router's
    reusable parser must agree on the verdict and every field, and its
    direct packer must write the bytes protobuf-c writes.  A decoded
    envelope is encoded again; that encoding must decode to the same
    fields and re-encode to the same bytes (encoding is canonical).
    =========================================================================
*/
#include "fuzz_protobuf.h"
#include "wire_envelope.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_CHECK(cond)                                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf (stderr, "fuzz_wire_envelope: %s:%d: %s\n", __FILE__,      \
                     __LINE__, #cond);                                         \
            abort ();                                                          \
        }                                                                      \
    } while (0)

static bool
s_str_eq (const char *a, const char *b)
{
    return strcmp (a ? a : "", b ? b : "") == 0;
}

static void
s_same (Wire__Envelope *a, Wire__Envelope *b)
{
    S_CHECK (a->version == b->version);
    S_CHECK (a->command == b->command);
    S_CHECK (a->handle == b->handle);
    S_CHECK (a->session == b->session);
    S_CHECK (a->status == b->status);
    S_CHECK (a->credit == b->credit);
    S_CHECK (a->timeout_ms == b->timeout_ms);
    S_CHECK (a->wait_ms == b->wait_ms);
    S_CHECK (a->incarnation == b->incarnation);
    S_CHECK (a->known == b->known);
    S_CHECK (a->limit == b->limit);
    S_CHECK (s_str_eq (a->request_id, b->request_id));
    S_CHECK (s_str_eq (a->agent_id, b->agent_id));
    S_CHECK (s_str_eq (a->message, b->message));
    S_CHECK (s_str_eq (a->edge_id, b->edge_id));
    S_CHECK (s_str_eq (a->prefix, b->prefix));
    S_CHECK (a->n_agents == b->n_agents);
    for (size_t i = 0; i < a->n_agents; i++) {
        S_CHECK (a->agents[i]->handle == b->agents[i]->handle);
        S_CHECK (a->agents[i]->session == b->agents[i]->session);
        S_CHECK (s_str_eq (a->agents[i]->agent_id, b->agents[i]->agent_id));
        S_CHECK (a->agents[i]->n_labels == b->agents[i]->n_labels);
    }
    S_CHECK ((a->agent == NULL) == (b->agent == NULL));
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    zframe_t *frame = zframe_new (data, size);
    Wire__Envelope *env = NULL;
    int rc = wire_envelope_decode (frame, &env);

    //  The router's reusable parser must give the same verdict and fields.
    wire_envelope_parser_t *parser = wire_envelope_parser_new ();
    Wire__Envelope *parsed = NULL;
    int parsed_rc = wire_envelope_parser_decode (parser, data, size, &parsed);
    S_CHECK (parsed_rc == rc);
    if (rc == 0)
        s_same (env, parsed);
    else
        S_CHECK (parsed == NULL);
    wire_envelope_parser_destroy (&parser);

    if (rc != 0) {
        S_CHECK (rc == -2);
        S_CHECK (env == NULL);
        zframe_destroy (&frame);
        return 0;
    }
    S_CHECK (env && env->version == WIRE_VERSION);
    S_CHECK (wire_command_name (env->command) != NULL);

    //  protobuf-c keeps unknown fields and packs them back as they came,
    //  even ones no decoder accepts (field number 0): no round trip then.
    if (fuzz_has_unknown_fields (&env->base)) {
        wire_envelope_free (&env);
        zframe_destroy (&frame);
        return 0;
    }
    zframe_t *again = wire_envelope_encode (env);
    //  The router's direct packer writes the same bytes, in one pass when
    //  there is room and in two when there is not.
    size_t packed_size = wire_envelope_packed_size (env);
    S_CHECK (packed_size == zframe_size (again));
    byte *packed = (byte *) malloc (packed_size + 1);
    S_CHECK (packed);
    S_CHECK (wire_envelope_pack_into (env, packed, packed_size) == packed_size);
    S_CHECK (memcmp (packed, zframe_data (again), packed_size) == 0);
    free (packed);
    //  Short of room by one byte: says how much it needs, writes within
    //  what it was given (ASan sees a write past this buffer).
    if (packed_size > 1) {
        byte *short_buf = (byte *) malloc (packed_size - 1);
        S_CHECK (short_buf);
        S_CHECK (wire_envelope_pack_into (env, short_buf, packed_size - 1)
                 == packed_size);
        free (short_buf);
    }
    Wire__Envelope *env2 = NULL;
    S_CHECK (wire_envelope_decode (again, &env2) == 0);
    s_same (env, env2);
    zframe_t *third = wire_envelope_encode (env2);
    S_CHECK (zframe_eq (again, third));

    wire_envelope_free (&env2);
    wire_envelope_free (&env);
    S_CHECK (env == NULL && env2 == NULL);
    zframe_destroy (&third);
    zframe_destroy (&again);
    zframe_destroy (&frame);
    return 0;
}
