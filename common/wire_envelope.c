/*  =========================================================================
    wire_envelope - encode and decode the edge <-> router envelope

    Invariant: a decoded envelope has version == WIRE_VERSION; anything else
    is reported as malformed (-2) and freed here.
    =========================================================================
*/
#include "wire_envelope.h"

zframe_t *
wire_envelope_encode (Wire__Envelope *env)
{
    assert (env);
    env->version = WIRE_VERSION;
    size_t size = wire__envelope__get_packed_size (env);
    zframe_t *frame = zframe_new (NULL, size);
    assert (frame);
    size_t packed = wire__envelope__pack (env, zframe_data (frame));
    assert (packed == size);
    return frame;
}

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
