/*  =========================================================================
    edge_list - the ListAgents call

    The request's prefix and limit go to the router in LIST; the AGENTS
    payload is the ListAgentsResponse, written to the client unchanged.
    =========================================================================
*/
#include "edge_internal.h"

#include <string.h>

typedef struct
{
    gw_call_t base;    //  common header, first
    bool router_knows; //  LIST sent, no answer yet
} gw_list_t;

static void
s_arrived (gw_call_t *call)
{
    gw_list_t *self = (gw_list_t *) call;
    zframe_t *frame = gw_call_take_message (call);
    Tether__V1__ListAgentsRequest *req = NULL;
    if (frame)
        req = tether__v1__list_agents_request__unpack (
            NULL, zframe_size (frame), zframe_data (frame));
    zframe_destroy (&frame);
    if (!req) {
        gw_call_finish (call, GRPC_STATUS_INVALID_ARGUMENT,
                        "a ListAgentsRequest message is expected", NULL);
        return;
    }
    if (!gw_router_alive (call->edge))
        gw_call_finish (call, GRPC_STATUS_UNAVAILABLE, "router unreachable",
                        NULL);
    else {
        Wire__Envelope env = WIRE__ENVELOPE__INIT;
        env.command = WIRE__COMMAND__LIST;
        env.handle = call->handle;
        env.prefix = req->prefix;
        env.limit = req->limit;
        gw_router_send (call->edge, &env, NULL);
        self->router_knows = true;
    }
    tether__v1__list_agents_request__free_unpacked (req, NULL);
}

static void
s_completed (gw_call_t *call, gw_op_kind_t op, bool ok)
{
    if (op == GW_OP_CLOSE)
        ((gw_list_t *) call)->router_knows = false;
}

static void
s_fail (gw_call_t *call, const char *reason, bool forget)
{
    ((gw_list_t *) call)->router_knows = false;
    gw_call_abort (call, GRPC_STATUS_UNAVAILABLE, reason);
}

static void
s_cleanup (gw_call_t *call)
{}

const gw_class_t edge_list_class = {
    "list", sizeof (gw_list_t), s_arrived, s_completed, s_fail, s_cleanup};

void
edge_list_router (edge_t *edge, Wire__Envelope *env, zframe_t **payload_p)
{
    gw_call_t *call = gw_edge_lookup (edge, env->handle, GW_LIST);
    gw_list_t *self = (gw_list_t *) call;
    if (!self || !self->router_knows || call->closed)
        return;
    self->router_knows = false;
    if (env->command == WIRE__COMMAND__AGENTS && *payload_p) {
        grpc_byte_buffer *message = gw_byte_buffer_from_frame (payload_p);
        gw_call_finish (call, GRPC_STATUS_OK, NULL, &message);
    } else if (env->command == WIRE__COMMAND__FINISH)
        gw_call_finish (call,
                        env->status > 0 && env->status <= 16
                            ? (grpc_status_code) env->status
                            : GRPC_STATUS_UNKNOWN,
                        env->message, NULL);
}
