/*  =========================================================================
    edge_list - the ListAgents call

    The request's prefix, limit and page_token go to the router in LIST;
    the AGENTS payload is the ListAgentsResponse, written to the client
    unchanged, next_page_token included.  A page_token is the id of the
    last agent of the previous page, so a bad one (too long, characters
    an agent id may not hold) is refused with INVALID_ARGUMENT here.

    A client whose token has a scope sees only agents in that scope.  When
    the request's prefix lies inside one scope prefix, nothing needs
    filtering; when exactly one scope prefix lies inside the request's
    prefix, LIST asks for that narrower prefix.  Otherwise LIST asks for up
    to the router's maximum and the edge filters the answer, then applies
    the client's limit (the one place the edge re-encodes a message; the
    list is small and rare).

    Paging under a filter: the router's page is cut by size, the client's
    by its limit after filtering.  The next_page_token the client gets is
    the last agent it was shown, set when more may follow (the client's
    limit cut the page, or the router has more).  A router page with no
    agent in scope is never answered empty with a token (that token would
    name an agent outside the scope): LIST goes again from the router's
    next_page_token until an agent in scope turns up or the router has no
    more.
    =========================================================================
*/
#include "edge_internal.h"
#include "tether_ids.h"

#include <inttypes.h>
#include <string.h>

typedef struct
{
    gw_call_t base;    //  common header, first
    bool router_knows; //  LIST sent, no answer yet
    char *filter;      //  scope to filter the answer with; owned, NULL =
                       //  pass the answer through
    uint32_t limit;    //  the client's limit, when filtering
    char *prefix;      //  what LIST asks for, when filtering; owned
    char *after;       //  the page_token LIST went with, when filtering;
                       //  owned, NULL = from the start
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

//  Keep the agents of the answer in `scope`, at most `limit` (0 = all),
//  and set next_page_token to the last agent kept when more may follow.
//  Takes *frame_p.  Returns the filtered answer (caller owns it), or NULL
//  when no agent was kept while the router has more: then *resume_p gets
//  the router's next_page_token to ask again from (caller owns it).
static zframe_t *
s_filter (zframe_t **frame_p,
          const char *scope,
          uint32_t limit,
          char **resume_p)
{
    zframe_t *frame = *frame_p;
    *frame_p = NULL;
    *resume_p = NULL;
    Tether__V1__ListAgentsResponse *resp =
        tether__v1__list_agents_response__unpack (NULL, zframe_size (frame),
                                                  zframe_data (frame));
    zframe_destroy (&frame);
    Tether__V1__ListAgentsResponse out = TETHER__V1__LIST_AGENTS_RESPONSE__INIT;
    Tether__V1__AgentInfo **kept = NULL;
    bool more = resp && resp->next_page_token && *resp->next_page_token;
    if (resp && resp->n_agents) {
        kept = (Tether__V1__AgentInfo **) calloc (
            resp->n_agents, sizeof (Tether__V1__AgentInfo *));
        assert (kept);
        for (size_t i = 0; i < resp->n_agents; i++) {
            if (!token_scope_allows (scope, resp->agents[i]->agent_id))
                continue;
            if (limit && out.n_agents >= limit) {
                more = true; //  the client's limit cut the page
                break;
            }
            kept[out.n_agents++] = resp->agents[i];
        }
        out.agents = kept;
    }
    if (more && out.n_agents == 0) {
        *resume_p = gw_strdup (resp->next_page_token);
        free (kept);
        tether__v1__list_agents_response__free_unpacked (resp, NULL);
        return NULL;
    }
    if (more)
        out.next_page_token = out.agents[out.n_agents - 1]->agent_id;
    size_t size = tether__v1__list_agents_response__get_packed_size (&out);
    frame = zframe_new (NULL, size);
    assert (frame);
    tether__v1__list_agents_response__pack (&out, zframe_data (frame));
    free (kept);
    if (resp)
        tether__v1__list_agents_response__free_unpacked (resp, NULL);
    return frame;
}

//  Ask the router for agents under `prefix` after `page_token`.
static void
s_send_list (gw_list_t *self,
             const char *prefix,
             uint32_t limit,
             const char *page_token)
{
    gw_call_t *call = &self->base;
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__LIST;
    env.handle = call->handle;
    env.prefix = (char *) prefix;
    env.limit = limit;
    env.page_token = (char *) page_token;
    gw_router_send (call->edge, &env, NULL);
    self->router_knows = true;
    if (self->filter) {
        free (self->after);
        self->after = page_token && *page_token ? gw_strdup (page_token) : NULL;
    }
}

//  Log and refuse the call with INVALID_ARGUMENT and `why`.
static void
s_refuse (gw_call_t *call, const char *why)
{
    char text[256], peer[128];
    tlog (TLOG_INFO, "list refused",
          "handle=%" PRIu64 " peer=%s status=%d reason=%s", call->handle,
          gw_call_peer (call, peer, sizeof peer), GRPC_STATUS_INVALID_ARGUMENT,
          tlog_quote (why, text, sizeof text));
    gw_call_finish (call, GRPC_STATUS_INVALID_ARGUMENT, why, NULL);
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
    //  A page token is an agent id: the last one of the previous page.
    uint32_t max_id = call->edge->cfg->embedded.core.max_agent_id_len;
    if (req && *req->page_token
        && !tether_agent_id_valid (req->page_token, strlen (req->page_token),
                                   max_id))
        snprintf (invalid, sizeof invalid,
                  "page_token is not a next_page_token (at most %" PRIu32
                  " bytes of " TETHER_AGENT_ID_CHARS ")",
                  max_id);
    if (*invalid) {
        if (req)
            tether__v1__list_agents_request__free_unpacked (req, NULL);
        free (scope);
        s_refuse (call, invalid);
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
        self->prefix = gw_strdup (prefix);
        limit = 0;
        scope = NULL;
    }
    free (scope);
    if (!gw_router_alive (call->edge))
        gw_call_finish (call, GRPC_STATUS_UNAVAILABLE, "router unreachable",
                        NULL);
    else
        s_send_list (self, prefix, limit, req->page_token);
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
    free (((gw_list_t *) call)->prefix);
    free (((gw_list_t *) call)->after);
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
        if (self->filter) {
            char *resume = NULL;
            *payload_p =
                s_filter (payload_p, self->filter, self->limit, &resume);
            if (!*payload_p) {
                //  Nothing in scope on this page: go on from its end, as
                //  long as the router's pages move forward.
                if (self->after && strcmp (resume, self->after) <= 0)
                    gw_call_finish (call, GRPC_STATUS_INTERNAL,
                                    "the router's pages do not advance", NULL);
                else if (gw_router_alive (call->edge))
                    s_send_list (self, self->prefix, 0, resume);
                else
                    gw_call_finish (call, GRPC_STATUS_UNAVAILABLE,
                                    "router unreachable", NULL);
                free (resume);
                return;
            }
        }
        grpc_byte_buffer *message = gw_byte_buffer_from_frame (payload_p);
        gw_call_finish (call, GRPC_STATUS_OK, NULL, &message);
    } else if (env->command == WIRE__COMMAND__FINISH)
        gw_call_finish (call,
                        env->status > 0 && env->status <= 16
                            ? (grpc_status_code) env->status
                            : GRPC_STATUS_UNKNOWN,
                        env->message, NULL);
}
