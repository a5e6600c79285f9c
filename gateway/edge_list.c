/*  =========================================================================
    edge_list - the ListAgents call

    The request's prefix and limit go to the router in LIST; the AGENTS
    payload is the ListAgentsResponse, written to the client unchanged.

    A client whose token has a scope sees only agents in that scope.  When
    the request's prefix lies inside one scope prefix, nothing needs
    filtering; when exactly one scope prefix lies inside the request's
    prefix, LIST asks for that narrower prefix.  Otherwise LIST asks for up
    to the router's maximum and the edge filters the answer, then applies
    the client's limit (the one place the edge re-encodes a message; the
    list is small and rare).
    =========================================================================
*/
#include "edge_internal.h"

#include <inttypes.h>
#include <string.h>

typedef struct
{
    gw_call_t base;    //  common header, first
    bool router_knows; //  LIST sent, no answer yet
    char *filter;      //  scope to filter the answer with; owned, NULL =
                       //  pass the answer through
    uint32_t limit;    //  the client's limit, when filtering
} gw_list_t;

//  Decide what LIST asks for under `scope`.  Sets *prefix_p (borrowed from
//  `scope` or `prefix`; copied into `buf`) and returns true when the answer
//  must still be filtered.
static bool
s_plan (const char *scope, const char *prefix, char *buf, size_t size)
{
    snprintf (buf, size, "%s", prefix);
    if (token_scope_allows (scope, prefix) && *prefix)
        return false; //  everything under `prefix` is in scope
    if (strcmp (scope, "*") == 0 || strstr (scope, ",*,")
        || strncmp (scope, "*,", 2) == 0
        || (strlen (scope) >= 2
            && strcmp (scope + strlen (scope) - 2, ",*") == 0))
        return false;
    size_t plen = strlen (prefix);
    const char *match = NULL;
    size_t match_len = 0;
    int matches = 0;
    const char *start = scope;
    while (true) {
        const char *comma = strchr (start, ',');
        size_t len = comma ? (size_t) (comma - start) : strlen (start);
        if (len > 0 && len >= plen && strncmp (start, prefix, plen) == 0) {
            matches++;
            match = start;
            match_len = len;
        }
        if (!comma)
            break;
        start = comma + 1;
    }
    if (matches == 1 && match_len < size) {
        memcpy (buf, match, match_len);
        buf[match_len] = 0;
        return false;
    }
    return true;
}

//  Keep the agents of the answer in `scope`, at most `limit` (0 = all).
//  Takes *frame_p and returns the filtered answer (caller owns it).
static zframe_t *
s_filter (zframe_t **frame_p, const char *scope, uint32_t limit)
{
    zframe_t *frame = *frame_p;
    *frame_p = NULL;
    Tether__V1__ListAgentsResponse *resp =
        tether__v1__list_agents_response__unpack (NULL, zframe_size (frame),
                                                  zframe_data (frame));
    zframe_destroy (&frame);
    Tether__V1__ListAgentsResponse out = TETHER__V1__LIST_AGENTS_RESPONSE__INIT;
    Tether__V1__AgentInfo **kept = NULL;
    if (resp && resp->n_agents) {
        kept = (Tether__V1__AgentInfo **) calloc (
            resp->n_agents, sizeof (Tether__V1__AgentInfo *));
        assert (kept);
        for (size_t i = 0; i < resp->n_agents; i++) {
            if (limit && out.n_agents >= limit)
                break;
            if (token_scope_allows (scope, resp->agents[i]->agent_id))
                kept[out.n_agents++] = resp->agents[i];
        }
        out.agents = kept;
    }
    size_t size = tether__v1__list_agents_response__get_packed_size (&out);
    frame = zframe_new (NULL, size);
    assert (frame);
    tether__v1__list_agents_response__pack (&out, zframe_data (frame));
    free (kept);
    if (resp)
        tether__v1__list_agents_response__free_unpacked (resp, NULL);
    return frame;
}

static void
s_arrived (gw_call_t *call)
{
    gw_list_t *self = (gw_list_t *) call;
    zframe_t *frame = gw_call_take_message (call);
    Tether__V1__ListAgentsRequest *req = NULL;
    char why[256];
    char *scope = NULL;
    grpc_status_code code = gw_auth_client (call, &scope, why, sizeof why);
    if (code != GRPC_STATUS_OK) {
        zframe_destroy (&frame);
        gw_call_finish (call, code, why, NULL);
        return;
    }
    char invalid[160] = "";
    if (frame
        && edge_parse_message (EDGE_MSG_LIST_REQUEST, zframe_data (frame),
                               zframe_size (frame), invalid, sizeof invalid)
               == 0)
        req = tether__v1__list_agents_request__unpack (
            NULL, zframe_size (frame), zframe_data (frame));
    zframe_destroy (&frame);
    if (*invalid) {
        char text[256], peer[128];
        tlog (TLOG_INFO, "list refused",
              "handle=%" PRIu64 " peer=%s status=%d reason=%s", call->handle,
              gw_call_peer (call, peer, sizeof peer),
              GRPC_STATUS_INVALID_ARGUMENT,
              tlog_quote (invalid, text, sizeof text));
        free (scope);
        gw_call_finish (call, GRPC_STATUS_INVALID_ARGUMENT, invalid, NULL);
        return;
    }
    if (!req) {
        free (scope);
        gw_call_finish (call, GRPC_STATUS_INVALID_ARGUMENT,
                        "a ListAgentsRequest message is expected", NULL);
        return;
    }
    char prefix[512];
    snprintf (prefix, sizeof prefix, "%s", req->prefix);
    uint32_t limit = req->limit;
    if (scope && s_plan (scope, req->prefix, prefix, sizeof prefix)) {
        self->filter = scope;
        self->limit = req->limit;
        limit = 0;
        scope = NULL;
    }
    free (scope);
    if (!gw_router_alive (call->edge))
        gw_call_finish (call, GRPC_STATUS_UNAVAILABLE, "router unreachable",
                        NULL);
    else {
        Wire__Envelope env = WIRE__ENVELOPE__INIT;
        env.command = WIRE__COMMAND__LIST;
        env.handle = call->handle;
        env.prefix = prefix;
        env.limit = limit;
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
{
    free (((gw_list_t *) call)->filter);
}

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
        if (self->filter)
            *payload_p = s_filter (payload_p, self->filter, self->limit);
        grpc_byte_buffer *message = gw_byte_buffer_from_frame (payload_p);
        gw_call_finish (call, GRPC_STATUS_OK, NULL, &message);
    } else if (env->command == WIRE__COMMAND__FINISH)
        gw_call_finish (call,
                        env->status > 0 && env->status <= 16
                            ? (grpc_status_code) env->status
                            : GRPC_STATUS_UNKNOWN,
                        env->message, NULL);
}
