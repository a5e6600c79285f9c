/*  =========================================================================
    edge_publish - a client's AgentRequestPublish call

    The client sends one AgentRequest and reads the agent's AgentResponse
    messages.  The edge forwards the request bytes unchanged in PUBLISH,
    with the client's deadline as a duration, x-wait-for-agent-ms and a
    credit of `window` messages.  When the client left `id` empty, the edge
    appends field 1 with 128 random bits in hex to the bytes: protobuf's
    last-wins rule makes it the id without re-encoding the message.

    REPLY messages queue (at most `window`, the credit granted) and are
    written one at a time; the queue is the call's send queue, so while a
    backlog lasts the CQ thread starts each next write itself (the send
    chain, edge_internal.h).  Written messages are given back as credit in
    batches, as HTTP/2 does with WINDOW_UPDATE: one CREDIT once half the
    window has been written (so the responder always has the other half
    to go on with), and none for what is written after FINISH came.  A
    slow client still slows the agent down.  The batch is at most half the
    window, and the window at most the router's max_credit, so the router
    never runs out of credit while the edge sits on a batch.  FINISH ends
    the call with the router's status once the queue is written.  A client
    that goes away (RECV_CLOSE_ON_SERVER cancelled) becomes CANCEL.  A
    response message with a non-zero status_code and no payload only
    carries the status, which FINISH brings too: it is not written to the
    client (it counts as written for credit).
    =========================================================================
*/
#include "edge_internal.h"

#include <inttypes.h>
#include <string.h>

typedef struct
{
    gw_call_t base;          //  common header, first
    char *request_id;        //  owned
    char *agent_id;          //  owned
    bool router_knows;       //  PUBLISH sent and no FINISH yet
    bool finish_pending;     //  FINISH came; write the queue, then end
    uint32_t unacked;        //  messages written, not yet given back as
                             //  credit
    grpc_status_code status; //  from FINISH
    char *message;           //  from FINISH; owned
    gw_call_t *flush_next;   //  next in edge->publish_flush
    bool flush_listed;       //  in edge->publish_flush
} gw_publish_t;

static void
s_log_failure (gw_publish_t *self, int status, const char *message)
{
    char request[128], agent[128], text[256];
    tlog (
        TLOG_INFO, "request failed", "request=%s agent=%s status=%d message=%s",
        tlog_quote (self->request_id ? self->request_id : "", request,
                    sizeof request),
        tlog_quote (self->agent_id ? self->agent_id : "", agent, sizeof agent),
        status, tlog_quote (message ? message : "", text, sizeof text));
}

//  `count` more response messages are done with (written, or dropped as a
//  status-only message): give credit back once half the window is done.
static void
s_send_credit (gw_publish_t *self, uint32_t count)
{
    self->unacked += count;
    uint32_t window = self->base.edge->cfg->window;
    uint32_t batch = window > 1 ? window / 2 : 1;
    if (self->unacked < batch)
        return;
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__CREDIT;
    env.handle = self->base.handle;
    env.request_id = self->request_id;
    env.credit = self->unacked;
    self->unacked = 0;
    gw_router_send (self->base.edge, &env, NULL);
}

//  Drop what is queued.  Only while the owner holds the send path.
static void
s_drop_queue (gw_publish_t *self)
{
    zframe_t *frame;
    while ((frame = gw_sendq_pop (self->base.sendq)))
        zframe_destroy (&frame);
}

//  Write what is queued; end the call once FINISH came and all is written.
//  Once FINISH came, the last message goes out with the status in one
//  batch (one write to the client instead of two).
static void
s_pump (gw_publish_t *self)
{
    gw_call_t *call = &self->base;
    if (call->closed || call->finish_started)
        return;
    zframe_t *frame;
    while (!call->send_busy && (frame = gw_sendq_pop (call->sendq))) {
        if (self->finish_pending && gw_sendq_size (call->sendq) == 0) {
            grpc_byte_buffer *last = gw_byte_buffer_from_frame (&frame);
            gw_call_finish (call, self->status, self->message, &last);
            return;
        }
        int rc = gw_call_send (call, &frame);
        if (rc) {
            gw_call_abort (call, GRPC_STATUS_INTERNAL, "write failed");
            return;
        }
    }
    if (!call->send_busy && self->finish_pending)
        gw_call_finish (call, self->status, self->message, NULL);
}

static void
s_reject (gw_publish_t *self, grpc_status_code code, const char *why)
{
    s_log_failure (self, code, why);
    gw_call_finish (&self->base, code, why, NULL);
}

//  Refuse bad input from the client, with a log line naming the call, the
//  client and the ids as protobuf-c read them.
static void
s_refuse_input (gw_publish_t *self, const char *why)
{
    char request[128], agent[128], text[256], peer[128];
    tlog (
        TLOG_INFO, "request refused",
        "request=%s agent=%s handle=%" PRIu64 " peer=%s status=%d "
        "reason=%s",
        tlog_quote (self->request_id ? self->request_id : "", request,
                    sizeof request),
        tlog_quote (self->agent_id ? self->agent_id : "", agent, sizeof agent),
        self->base.handle, gw_call_peer (&self->base, peer, sizeof peer),
        GRPC_STATUS_INVALID_ARGUMENT, tlog_quote (why, text, sizeof text));
    gw_call_finish (&self->base, GRPC_STATUS_INVALID_ARGUMENT, why, NULL);
}

//  Parse x-wait-for-agent-ms (absent = 0).  Returns 0, or -1 when it is
//  not a whole number of ms.
static int
s_wait_ms (gw_call_t *call, uint32_t *wait_ms)
{
    *wait_ms = 0;
    const char *text;
    size_t len;
    if (!gw_call_metadata_find (call, "x-wait-for-agent-ms", &text, &len))
        return 0;
    return edge_parse_wait_ms (text, len, wait_ms);
}

//  The client's deadline as a duration in ms; 0 = none.
static uint32_t
s_timeout_ms (gw_call_t *call)
{
    gpr_timespec deadline = call->deadline;
    if (gpr_time_cmp (deadline, gpr_inf_future (deadline.clock_type)) == 0)
        return 0;
    gpr_timespec left =
        gpr_time_sub (gpr_convert_clock_type (deadline, GPR_CLOCK_MONOTONIC),
                      gpr_now (GPR_CLOCK_MONOTONIC));
    int64_t ms = (int64_t) left.tv_sec * 1000 + left.tv_nsec / 1000000;
    if (ms < 1)
        ms = 1;
    if (ms > UINT32_MAX)
        ms = UINT32_MAX;
    return (uint32_t) ms;
}

static void
s_arrived (gw_call_t *call)
{
    gw_publish_t *self = (gw_publish_t *) call;
    edge_t *edge = call->edge;
    //  Room for the window and one more, which the overrun check in
    //  edge_publish_router allows.
    call->sendq = gw_sendq_new (edge->cfg->window + 1);
    uint32_t window = edge->cfg->window;
    call->progress_every = window > 1 ? window / 2 : 1;

    zframe_t *frame = gw_call_take_message (call);
    Tether__V1__AgentRequest *req = NULL;
    char why[256];
    char *scope = NULL;
    grpc_status_code code = gw_auth_client (call, &scope, why, sizeof why);
    if (code != GRPC_STATUS_OK) {
        s_reject (self, code, why);
        goto cleanup;
    }
    //  The bytes go to the agent unchanged: every string must be valid
    //  UTF-8 without NUL, or the agent's library drops its stream, and an
    //  id "dev-1\0x" would be routed as "dev-1".
    char invalid[160] = "";
    if (!frame)
        snprintf (invalid, sizeof invalid,
                  "an AgentRequest message is expected");
    else
        edge_parse_message (EDGE_MSG_AGENT_REQUEST, zframe_data (frame),
                            zframe_size (frame), invalid, sizeof invalid);
    //  The two ids are read off the bytes; protobuf-c unpacks only what
    //  that walk does not vouch for (and refused input, for the log).
    edge_request_fields_t fields;
    bool read = false;
    if (frame && !*invalid
        && edge_parse_request_fields (zframe_data (frame), zframe_size (frame),
                                      &fields)
               == 0) {
        self->agent_id = gw_strndup (fields.agent_id, fields.agent_id_len);
        self->request_id = gw_strndup (fields.id, fields.id_len);
        read = true;
    } else if (frame) {
        req = tether__v1__agent_request__unpack (NULL, zframe_size (frame),
                                                 zframe_data (frame));
        if (req) {
            self->agent_id = gw_strdup (req->agent_id);
            self->request_id = gw_strdup (req->id);
            read = true;
        }
    }
    uint32_t wait_ms = 0;
    if (!read || *invalid) {
        s_refuse_input (self, *invalid ? invalid
                                       : "an AgentRequest message is "
                                         "expected");
        goto cleanup;
    }
    if (!*self->agent_id) {
        s_reject (self, GRPC_STATUS_INVALID_ARGUMENT, "agent_id is empty");
        goto cleanup;
    }
    if (scope && !token_scope_allows (scope, self->agent_id)) {
        snprintf (why, sizeof why,
                  "agent '%.100s' is outside this client's scope",
                  self->agent_id);
        s_reject (self, GRPC_STATUS_PERMISSION_DENIED, why);
        goto cleanup;
    }
    if (s_wait_ms (call, &wait_ms)) {
        s_refuse_input (self,
                        "x-wait-for-agent-ms must be a whole number of ms");
        goto cleanup;
    }
    if (!gw_router_alive (edge)) {
        s_reject (self, GRPC_STATUS_UNAVAILABLE, "router unreachable");
        goto cleanup;
    }
    if (!*self->request_id) {
        //  Append field 1 (tag 0x0a, length 32): last one wins.
        char id[33];
        gw_request_id (edge, id);
        free (self->request_id);
        self->request_id = gw_strdup (id);
        size_t size = zframe_size (frame);
        zframe_t *longer = zframe_new (NULL, size + 2 + 32);
        assert (longer);
        byte *data = zframe_data (longer);
        memcpy (data, zframe_data (frame), size);
        data[size] = 0x0a;
        data[size + 1] = 32;
        memcpy (data + size + 2, id, 32);
        zframe_destroy (&frame);
        frame = longer;
    }
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__PUBLISH;
    env.handle = call->handle;
    env.request_id = self->request_id;
    env.agent_id = self->agent_id;
    env.timeout_ms = s_timeout_ms (call);
    env.wait_ms = wait_ms;
    env.credit = edge->cfg->window;
    gw_router_send (edge, &env, &frame);
    self->router_knows = true;
cleanup:
    free (scope);
    if (req)
        tether__v1__agent_request__free_unpacked (req, NULL);
    zframe_destroy (&frame);
}

static void
s_completed (gw_call_t *call, gw_op_kind_t op, bool ok)
{
    gw_publish_t *self = (gw_publish_t *) call;
    switch (op) {
        case GW_OP_SEND:
            gw_call_send_done (call);
            //  Messages written: this one, or what a send chain wrote.
            if (call->written && self->router_knows)
                s_send_credit (self, call->written);
            if (ok)
                s_pump (self);
            else
                s_drop_queue (self);
            break;
        case GW_OP_PROGRESS:
            if (call->written && self->router_knows)
                s_send_credit (self, call->written);
            break;
        case GW_OP_CLOSE:
            //  While a send is in flight the queue belongs to the send
            //  path; the failed send (or the call's end) empties it.
            if (!call->send_busy)
                s_drop_queue (self);
            if (call->cancelled && self->router_knows) {
                Wire__Envelope env = WIRE__ENVELOPE__INIT;
                env.command = WIRE__COMMAND__CANCEL;
                env.handle = call->handle;
                env.request_id = self->request_id;
                gw_router_send (call->edge, &env, NULL);
                char request[128], agent[128];
                tlog (TLOG_DEBUG, "request cancelled by client",
                      "request=%s agent=%s",
                      tlog_quote (self->request_id, request, sizeof request),
                      tlog_quote (self->agent_id, agent, sizeof agent));
            }
            self->router_knows = false;
            break;
        default:
            break;
    }
}

static void
s_fail (gw_call_t *call, const char *reason, bool forget)
{
    gw_publish_t *self = (gw_publish_t *) call;
    if (forget)
        self->router_knows = false;
    if (call->closed || call->finish_started)
        return;
    s_log_failure (self, GRPC_STATUS_UNAVAILABLE, reason);
    gw_call_abort (call, GRPC_STATUS_UNAVAILABLE, reason);
}

static void
s_cleanup (gw_call_t *call)
{
    gw_publish_t *self = (gw_publish_t *) call;
    free (self->request_id);
    free (self->agent_id);
    free (self->message);
}

const gw_class_t edge_publish_class = {"publish", sizeof (gw_publish_t),
                                       s_arrived, s_completed,
                                       s_fail,    s_cleanup};

//  True when an AgentResponse carries only a status (no payload): FINISH
//  brings that status, so the message need not be written.
static bool
s_status_only (zframe_t *frame)
{
    edge_response_fields_t fields;
    if (edge_parse_response_fields (zframe_data (frame), zframe_size (frame),
                                    &fields)
        == 0)
        return fields.status_code != 0 && fields.payload_len == 0;
    Tether__V1__AgentResponse *resp = tether__v1__agent_response__unpack (
        NULL, zframe_size (frame), zframe_data (frame));
    if (!resp)
        return false;
    bool status_only = resp->status_code != 0 && resp->payload.len == 0;
    tether__v1__agent_response__free_unpacked (resp, NULL);
    return status_only;
}

void
edge_publish_router (edge_t *edge, Wire__Envelope *env, zframe_t **payload_p)
{
    gw_call_t *call = gw_edge_lookup (edge, env->handle, GW_PUBLISH);
    gw_publish_t *self = (gw_publish_t *) call;
    if (!self)
        return;
    switch (env->command) {
        case WIRE__COMMAND__REPLY:
            if (!*payload_p || call->closed || call->finish_started
                || self->finish_pending || !call->sendq)
                break;
            if (s_status_only (*payload_p)) {
                if (self->router_knows)
                    s_send_credit (self, 1);
                break;
            }
            //  A snapshot: the CQ thread may be taking messages out, which
            //  only makes the real backlog smaller.
            if (gw_sendq_size (call->sendq) >= edge->cfg->window
                || gw_sendq_push (call->sendq, payload_p)) {
                //  The router sent beyond the credit we gave: dropping
                //  the message would show the client a gap and then OK,
                //  so the call ends INTERNAL (the close becomes CANCEL).
                char request[128];
                tlog (TLOG_WARN, "response window overrun",
                      "handle=%" PRIu64 " request=%s window=%" PRIu32,
                      call->handle,
                      tlog_quote (self->request_id ? self->request_id : "",
                                  request, sizeof request),
                      edge->cfg->window);
                gw_call_abort (call, GRPC_STATUS_INTERNAL,
                               "response window overrun");
                break;
            }
            //  Written once the router messages at hand are handled
            //  (edge_publish_flush): a FINISH among them then goes out
            //  with this message.
            if (!self->flush_listed) {
                self->flush_listed = true;
                self->flush_next = edge->publish_flush;
                edge->publish_flush = call;
            }
            break;
        case WIRE__COMMAND__FINISH: {
            if (!self->router_knows || self->finish_pending)
                break;
            self->router_knows = false;
            self->finish_pending = true;
            self->status = env->status >= 0 && env->status <= 16
                               ? (grpc_status_code) env->status
                               : GRPC_STATUS_UNKNOWN;
            self->message = gw_strdup (env->message);
            if (self->status != GRPC_STATUS_OK)
                s_log_failure (self, self->status, self->message);
            s_pump (self);
            break;
        }
        default:
            break;
    }
}

void
edge_publish_flush (edge_t *edge)
{
    while (edge->publish_flush) {
        gw_publish_t *self = (gw_publish_t *) edge->publish_flush;
        edge->publish_flush = self->flush_next;
        self->flush_next = NULL;
        self->flush_listed = false;
        s_pump (self);
    }
}
