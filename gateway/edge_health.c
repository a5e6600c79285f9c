/*  =========================================================================
    edge_health - grpc.health.v1.Health/Check, and unknown methods

    The health messages are tiny, so they are coded by hand:
    HealthCheckRequest { string service = 1; } and
    HealthCheckResponse { ServingStatus status = 1; } with SERVING = 1 and
    NOT_SERVING = 2.  The edge is SERVING while it hears from its router,
    for the empty service name and "tether.v1.AgentGateway"; other names
    get NOT_FOUND, as the health protocol asks.

    Any method the server does not register arrives as a generic call and
    ends UNIMPLEMENTED at once (without a posted generic request such
    calls would hang until their deadline).
    =========================================================================
*/
#include "edge_internal.h"

#include <string.h>

#define S_SERVICE "tether.v1.AgentGateway"

typedef struct
{
    gw_call_t base; //  common header, first
} gw_small_t;

//  Read a varint at *pos.  Returns 0, or -1 when truncated or too long.
static int
s_varint (const byte *data, size_t size, size_t *pos, uint64_t *value)
{
    *value = 0;
    for (int shift = 0; shift < 64 && *pos < size; shift += 7) {
        byte b = data[(*pos)++];
        *value |= (uint64_t) (b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

//  Find field 1 (length-delimited) of a HealthCheckRequest.  Returns 0 and
//  sets *service/*len (pointing into `data`; empty when absent), or -1
//  when the bytes are not a valid message.
static int
s_service (const byte *data, size_t size, const byte **service, size_t *len)
{
    *service = data;
    *len = 0;
    size_t pos = 0;
    while (pos < size) {
        uint64_t key, value;
        if (s_varint (data, size, &pos, &key))
            return -1;
        switch (key & 7) {
            case 0:
                if (s_varint (data, size, &pos, &value))
                    return -1;
                break;
            case 1:
                if (size - pos < 8)
                    return -1;
                pos += 8;
                break;
            case 2:
                if (s_varint (data, size, &pos, &value) || value > size - pos)
                    return -1;
                if (key >> 3 == 1) {
                    *service = data + pos;
                    *len = (size_t) value;
                }
                pos += (size_t) value;
                break;
            case 5:
                if (size - pos < 4)
                    return -1;
                pos += 4;
                break;
            default:
                return -1;
        }
    }
    return 0;
}

static void
s_health_arrived (gw_call_t *call)
{
    zframe_t *frame = gw_call_take_message (call);
    const byte *service;
    size_t len;
    if (!frame
        || s_service (zframe_data (frame), zframe_size (frame), &service,
                      &len)) {
        zframe_destroy (&frame);
        gw_call_finish (call, GRPC_STATUS_INVALID_ARGUMENT,
                        "a HealthCheckRequest message is expected", NULL);
        return;
    }
    bool known =
        len == 0
        || (len == strlen (S_SERVICE) && memcmp (service, S_SERVICE, len) == 0);
    zframe_destroy (&frame);
    if (!known) {
        gw_call_finish (call, GRPC_STATUS_NOT_FOUND, "unknown service", NULL);
        return;
    }
    byte answer[2] = {0x08, gw_router_alive (call->edge) ? 1 : 2};
    grpc_slice slice =
        grpc_slice_from_copied_buffer ((const char *) answer, sizeof answer);
    grpc_byte_buffer *message = grpc_raw_byte_buffer_create (&slice, 1);
    grpc_slice_unref (slice);
    gw_call_finish (call, GRPC_STATUS_OK, NULL, &message);
}

static void
s_unknown_arrived (gw_call_t *call)
{
    char text[300];
    snprintf (text, sizeof text, "unknown method %.*s",
              (int) GRPC_SLICE_LENGTH (call->details.method),
              (const char *) GRPC_SLICE_START_PTR (call->details.method));
    gw_call_finish (call, GRPC_STATUS_UNIMPLEMENTED, text, NULL);
}

static void
s_completed (gw_call_t *call, gw_op_kind_t op, bool ok)
{}

static void
s_fail (gw_call_t *call, const char *reason, bool forget)
{
    gw_call_abort (call, GRPC_STATUS_UNAVAILABLE, reason);
}

static void
s_cleanup (gw_call_t *call)
{}

const gw_class_t edge_health_class = {"health",         sizeof (gw_small_t),
                                      s_health_arrived, s_completed,
                                      s_fail,           s_cleanup};

const gw_class_t edge_unknown_class = {
    "unknown", sizeof (gw_small_t), s_unknown_arrived, s_completed, s_fail,
    s_cleanup};
