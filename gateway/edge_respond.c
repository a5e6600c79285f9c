/*  =========================================================================
    edge_respond - an agent's AgentResponsePublish call

    The agent streams AgentResponse messages for one request and half-
    closes.  The request is named by x-request-id metadata or, failing
    that, by the first message's request_id (read before binding).  The
    edge sends BIND; BOUND carries the credit, GRANT adds to it, and the
    edge reads one message at a time only while credit remains, so a slow
    client slows the agent through HTTP/2 flow control.  Each message goes
    to the router unchanged as RESPONSE.  A message with a non-zero
    status_code ends the request: END with that status, and the agent's
    call ends OK.

    A NULL read means half-close *or* cancel, which gRPC does not tell
    apart at that point.  So the edge first ends the agent's call (Empty,
    OK); when that batch succeeds and RECV_CLOSE_ON_SERVER reports no
    cancel, the agent half-closed cleanly: END OK.  Otherwise the response
    call broke: END UNAVAILABLE.  FINISH from the router (client gone,
    deadline, unknown request) ends the agent's call with its status.
    =========================================================================
*/
#include "edge_internal.h"
#include "tether_ids.h"

#include <inttypes.h>
#include <string.h>

typedef enum
{
    RESP_FIRST = 1, //  reading the first message for its id
    RESP_BINDING,   //  BIND sent
    RESP_BOUND,     //  relaying
    RESP_ENDING     //  the agent's call is being ended
} resp_state_t;

typedef struct
{
    gw_call_t base;     //  common header, first
    resp_state_t state; //  see above
    char *request_id;   //  owned
    char *identity;     //  the agent ids the caller proved, comma-
                        //  separated (sent in BIND); NULL = auth off
    zframe_t *first;    //  first message, kept until BOUND; owned
    uint32_t credit;    //  messages we may still read
    bool recv_busy;     //  a RECV_MESSAGE is in flight
    bool router_knows;  //  BIND sent; no END sent, no FINISH came
    bool eof;           //  a NULL read: ending OK to learn why
    bool finish_done;   //  the ending batch completed
    bool finish_ok;     //  ... successfully
} gw_respond_t;

static grpc_byte_buffer *
s_empty_message (void)
{
    grpc_slice slice = grpc_empty_slice ();
    return grpc_raw_byte_buffer_create (&slice, 1);
}

//  End the agent's call with `status`; Empty goes with an OK.
static void
s_end_call (gw_respond_t *self, grpc_status_code status, const char *message)
{
    self->state = RESP_ENDING;
    grpc_byte_buffer *empty =
        status == GRPC_STATUS_OK ? s_empty_message () : NULL;
    gw_call_finish (&self->base, status, message, &empty);
}

static void
s_send_end (gw_respond_t *self, int status, const char *message)
{
    if (!self->router_knows)
        return;
    self->router_knows = false;
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__END;
    env.handle = self->base.handle;
    env.request_id = self->request_id;
    env.status = status;
    env.message = (char *) (message ? message : "");
    gw_router_send (self->base.edge, &env, NULL);
    if (status != 0) {
        char request[128], text[256];
        tlog (TLOG_INFO, "response ended", "request=%s status=%d message=%s",
              tlog_quote (self->request_id, request, sizeof request), status,
              tlog_quote (message ? message : "", text, sizeof text));
    }
}

//  Refuse bad input from the agent: log it, tell the router (when it
//  knows the call) and end the agent's call INVALID_ARGUMENT.  The client
//  sees INTERNAL: its agent answered with something unusable.
static void
s_refuse_input (gw_respond_t *self, const char *why)
{
    char request[128], text[256], peer[128];
    tlog (TLOG_INFO, "response refused",
          "request=%s handle=%" PRIu64 " peer=%s status=%d reason=%s",
          tlog_quote (self->request_id ? self->request_id : "", request,
                      sizeof request),
          self->base.handle, gw_call_peer (&self->base, peer, sizeof peer),
          GRPC_STATUS_INVALID_ARGUMENT, tlog_quote (why, text, sizeof text));
    if (self->router_knows) {
        char message[200];
        snprintf (message, sizeof message, "agent sent an invalid response: %s",
                  why);
        s_send_end (self, GRPC_STATUS_INTERNAL, message);
    }
    s_end_call (self, GRPC_STATUS_INVALID_ARGUMENT, why);
}

static void
s_recv (gw_respond_t *self)
{
    grpc_op op;
    memset (&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &self->base.recv_buf;
    if (gw_call_start (&self->base, GW_OP_RECV, &op, 1) == 0)
        self->recv_busy = true;
    else
        gw_call_abort (&self->base, GRPC_STATUS_INTERNAL, "read failed");
}

static void
s_bind (gw_respond_t *self)
{
    self->state = RESP_BINDING;
    self->router_knows = true;
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__BIND;
    env.handle = self->base.handle;
    env.request_id = self->request_id;
    if (self->identity)
        env.agent_id = self->identity;
    gw_router_send (self->base.edge, &env, NULL);
}

//  Relay one message; a non-zero status_code ends the request.
static void
s_forward (gw_respond_t *self, zframe_t **frame_p)
{
    //  The status is read off the bytes (checked by edge_parse_message:
    //  no NUL in the strings); protobuf-c unpacks what the walk does not
    //  vouch for.
    int status = 0;
    char *message = NULL;
    edge_response_fields_t fields;
    if (edge_parse_response_fields (zframe_data (*frame_p),
                                    zframe_size (*frame_p), &fields)
        == 0) {
        status = fields.status_code;
        if (status != 0)
            message =
                gw_strndup (fields.status_message, fields.status_message_len);
    } else {
        Tether__V1__AgentResponse *resp = tether__v1__agent_response__unpack (
            NULL, zframe_size (*frame_p), zframe_data (*frame_p));
        status = resp ? resp->status_code : 0;
        if (status != 0)
            message = gw_strdup (resp->status_message);
        if (resp)
            tether__v1__agent_response__free_unpacked (resp, NULL);
    }

    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__RESPONSE;
    env.handle = self->base.handle;
    env.request_id = self->request_id;
    gw_router_send (self->base.edge, &env, frame_p);
    zframe_destroy (frame_p);
    if (self->credit > 0)
        self->credit--;
    if (status != 0) {
        s_send_end (self, status, message);
        s_end_call (self, GRPC_STATUS_OK, NULL);
    }
    free (message);
}

//  Read or relay as far as the credit allows.
static void
s_advance (gw_respond_t *self)
{
    gw_call_t *call = &self->base;
    if (self->state != RESP_BOUND || self->recv_busy || call->closed
        || call->finish_started)
        return;
    if (self->first) {
        if (self->credit == 0)
            return;
        s_forward (self, &self->first);
        if (self->state != RESP_BOUND)
            return;
    }
    if (self->credit > 0)
        s_recv (self);
}

//  Decide END after a NULL read, once the ending batch and the close are
//  both known.
static void
s_maybe_end_eof (gw_respond_t *self)
{
    gw_call_t *call = &self->base;
    if (!self->eof || !self->finish_done || !call->closed)
        return;
    if (self->finish_ok && !call->cancelled)
        s_send_end (self, 0, "");
    else
        s_send_end (self, GRPC_STATUS_UNAVAILABLE,
                    "agent's response call broke");
}

//  The request id of the call, from x-request-id or the first message's
//  request_id, checked by the same rules either way: keep it and BIND, or
//  refuse the call (INVALID_ARGUMENT) naming `source`.  Takes `first` (the
//  first message, or NULL).
static void
s_bind_id (gw_respond_t *self,
           const char *id,
           size_t len,
           const char *source,
           zframe_t **first_p)
{
    uint32_t max_len = self->base.edge->cfg->embedded.core.max_request_id_len;
    //  The router's rule, which implies valid UTF-8 and no NUL
    if (!tether_request_id_valid (id, len, max_len)) {
        char why[256], quoted[96];
        if (len > max_len)
            snprintf (why, sizeof why, "%s is longer than %" PRIu32 " bytes",
                      source, max_len);
        else
            snprintf (why, sizeof why, "%s %s may hold only %s", source,
                      edge_parse_escape (id, len, quoted, sizeof quoted),
                      TETHER_REQUEST_ID_CHARS);
        if (first_p)
            zframe_destroy (first_p);
        s_refuse_input (self, why);
        return;
    }
    self->request_id = gw_strndup ((const uint8_t *) id, len);
    if (first_p) {
        self->first = *first_p;
        *first_p = NULL;
    }
    s_bind (self);
}

static void
s_arrived (gw_call_t *call)
{
    gw_respond_t *self = (gw_respond_t *) call;
    char why[256];
    grpc_status_code code =
        gw_auth_agent (call, &self->identity, why, sizeof why);
    if (code != GRPC_STATUS_OK) {
        s_end_call (self, code, why);
        return;
    }
    if (!gw_router_alive (call->edge)) {
        s_end_call (self, GRPC_STATUS_UNAVAILABLE, "router unreachable");
        return;
    }
    const char *value;
    size_t len;
    if (gw_call_metadata_find (call, "x-request-id", &value, &len) && len > 0)
        s_bind_id (self, value, len, "x-request-id", NULL);
    else {
        self->state = RESP_FIRST;
        s_recv (self);
    }
}

//  The first message is invalid, but names its request by a request_id
//  that is itself fine: claim the request (BIND) so that the refusal's
//  END INTERNAL reaches the client now rather than at its first-response
//  deadline.  A request_id that is the field at fault is not trusted
//  (protobuf-c would read "r-1\0x" as another request's "r-1").
static void
s_bind_to_refuse (gw_respond_t *self, zframe_t *frame, const char *invalid)
{
    if (strstr (invalid, "request_id"))
        return;
    Tether__V1__AgentResponse *resp = tether__v1__agent_response__unpack (
        NULL, zframe_size (frame), zframe_data (frame));
    char why[160];
    if (resp && *resp->request_id
        && edge_parse_request_id (
               resp->request_id, strlen (resp->request_id),
               self->base.edge->cfg->embedded.core.max_request_id_len, why,
               sizeof why)
               == 0) {
        self->request_id = gw_strdup (resp->request_id);
        s_bind (self);
    }
    if (resp)
        tether__v1__agent_response__free_unpacked (resp, NULL);
}

static void
s_received (gw_respond_t *self)
{
    gw_call_t *call = &self->base;
    zframe_t *frame = gw_call_take_message (call);
    if (call->closed || call->finish_started) {
        zframe_destroy (&frame);
        return;
    }
    //  The bytes go to the client unchanged: the request id and the status
    //  message must be valid UTF-8 without NUL.
    char invalid[160];
    if (frame
        && edge_parse_message (EDGE_MSG_AGENT_RESPONSE, zframe_data (frame),
                               zframe_size (frame), invalid, sizeof invalid)) {
        if (self->state == RESP_FIRST)
            s_bind_to_refuse (self, frame, invalid);
        zframe_destroy (&frame);
        s_refuse_input (self, invalid);
        return;
    }
    edge_response_fields_t fields;
    if (self->state == RESP_FIRST && frame
        && edge_parse_response_fields (zframe_data (frame), zframe_size (frame),
                                       &fields)
               == 0
        && fields.request_id_len > 0) {
        s_bind_id (self, (const char *) fields.request_id,
                   fields.request_id_len, "request_id", &frame);
        return;
    }
    if (self->state == RESP_FIRST) {
        Tether__V1__AgentResponse *resp = NULL;
        if (frame)
            resp = tether__v1__agent_response__unpack (
                NULL, zframe_size (frame), zframe_data (frame));
        if (!resp || !*resp->request_id) {
            s_end_call (self, GRPC_STATUS_INVALID_ARGUMENT,
                        !frame  ? "no x-request-id metadata and no message"
                        : !resp ? "an AgentResponse message is expected"
                                : "request id missing: set x-request-id "
                                  "metadata or request_id on the first "
                                  "message");
            if (resp)
                tether__v1__agent_response__free_unpacked (resp, NULL);
            zframe_destroy (&frame);
            return;
        }
        s_bind_id (self, resp->request_id, strlen (resp->request_id),
                   "request_id", &frame);
        tether__v1__agent_response__free_unpacked (resp, NULL);
        return;
    }
    if (self->state != RESP_BOUND) {
        zframe_destroy (&frame);
        return;
    }
    if (!frame) {
        //  Half-close or cancel: end OK and see whether that succeeds.
        self->eof = true;
        s_end_call (self, GRPC_STATUS_OK, NULL);
        return;
    }
    s_forward (self, &frame);
    s_advance (self);
}

static void
s_completed (gw_call_t *call, gw_op_kind_t op, bool ok)
{
    gw_respond_t *self = (gw_respond_t *) call;
    switch (op) {
        case GW_OP_RECV:
            self->recv_busy = false;
            s_received (self);
            break;
        case GW_OP_FINISH:
            self->finish_done = true;
            self->finish_ok = ok;
            s_maybe_end_eof (self);
            break;
        case GW_OP_CLOSE:
            if (self->eof)
                s_maybe_end_eof (self);
            else
                s_send_end (self, GRPC_STATUS_UNAVAILABLE,
                            "agent's response call broke");
            break;
        default:
            break;
    }
}

static void
s_fail (gw_call_t *call, const char *reason, bool forget)
{
    gw_respond_t *self = (gw_respond_t *) call;
    if (forget)
        self->router_knows = false;
    if (call->closed || call->finish_started)
        return;
    self->state = RESP_ENDING;
    gw_call_abort (call, GRPC_STATUS_UNAVAILABLE, reason);
}

static void
s_cleanup (gw_call_t *call)
{
    gw_respond_t *self = (gw_respond_t *) call;
    free (self->request_id);
    free (self->identity);
    zframe_destroy (&self->first);
}

const gw_class_t edge_respond_class = {"respond", sizeof (gw_respond_t),
                                       s_arrived, s_completed,
                                       s_fail,    s_cleanup};

void
edge_respond_router (edge_t *edge, Wire__Envelope *env, zframe_t **payload_p)
{
    gw_call_t *call = gw_edge_lookup (edge, env->handle, GW_RESPOND);
    gw_respond_t *self = (gw_respond_t *) call;
    if (!self)
        return;
    switch (env->command) {
        case WIRE__COMMAND__BOUND:
            if (self->state != RESP_BINDING)
                break;
            self->state = RESP_BOUND;
            self->credit += env->credit;
            s_advance (self);
            break;
        case WIRE__COMMAND__GRANT:
            self->credit += env->credit;
            s_advance (self);
            break;
        case WIRE__COMMAND__FINISH: {
            if (!self->router_knows)
                break;
            self->router_knows = false;
            grpc_status_code code = env->status >= 0 && env->status <= 16
                                        ? (grpc_status_code) env->status
                                        : GRPC_STATUS_UNKNOWN;
            if (code != GRPC_STATUS_OK) {
                char request[128], text[256];
                tlog (TLOG_INFO, "response refused",
                      "request=%s status=%d message=%s",
                      tlog_quote (self->request_id, request, sizeof request),
                      (int) code, tlog_quote (env->message, text, sizeof text));
            }
            s_end_call (self, code, env->message);
            break;
        }
        default:
            break;
    }
}
