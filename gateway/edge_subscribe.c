/*  =========================================================================
    edge_subscribe - an agent's AgentRequestSubscribe stream

    The agent sends SubscriberInfo and keeps the stream open; requests for
    it come down as AgentRequest messages.  On arrival the edge validates
    the agent id, sends the initial metadata at once (the agent sees the
    stream is up) and SUBSCRIBE to the router.  SUBSCRIBED gives the
    session; KICK ends the stream with the router's status (superseded:
    ABORTED).  DELIVER and ABORT go into a per-stream queue bounded by
    count (queue_depth) and bytes (queue_bytes), written one message at a
    time (gRPC allows one send in flight); a full queue answers the router
    with END RESOURCE_EXHAUSTED so that request fails at once.  When the
    stream ends (agent gone, cancelled, kicked, edge shutting down) the
    edge sends UNSUBSCRIBE with the session, so the router removes the
    agent only if that session is still the current one.

    A stream that ends before SUBSCRIBED came lingers (done, no ops) until
    the router answers, so its UNSUBSCRIBE can carry the session; a KICK or
    a router reset frees it.
    =========================================================================
*/
#include "edge_internal.h"
#include "tether_ids.h"

#include <inttypes.h>
#include <string.h>

typedef enum
{
    SUB_PENDING = 1, //  SUBSCRIBE sent, no session yet
    SUB_LIVE,        //  the router gave a session
    SUB_ENDED        //  the stream ended (or was refused)
} sub_state_t;

typedef struct
{
    gw_call_t base;                   //  common header, first
    sub_state_t state;                //  see above
    Tether__V1__SubscriberInfo *info; //  unpacked; owned
    Wire__AgentEntry entry; //  our HELLO/SUBSCRIBE entry; strings point
                            //  into `info`
    Wire__AgentEntry__LabelsEntry *labels;      //  n_labels items; owned
    Wire__AgentEntry__LabelsEntry **label_ptrs; //  into `labels`; owned
    zlistx_t *queue;     //  zframe_t * AgentRequest bytes; owned
    bool counted;        //  counted in edge->agents
    bool kicked;         //  the router ended it: no UNSUBSCRIBE
    size_t queued_bytes; //  bytes of the frames in `queue`
} gw_subscribe_t;

static const char *
s_quote (const char *value, char *buf, size_t size)
{
    return tlog_quote (value, buf, size);
}

//  The request id of an encoded AgentRequest (field 1; the last one wins,
//  as the edge may have appended it) into `buf`, walking the top-level
//  fields without copying the payload.  Returns false when there is none,
//  it does not fit or the bytes are malformed.
static bool
s_peek_request_id (zframe_t *frame, char *buf, size_t size)
{
    const uint8_t *p = zframe_data (frame);
    const uint8_t *end = p + zframe_size (frame);
    bool found = false;
    while (p < end) {
        uint64_t key = 0;
        for (int shift = 0;; shift += 7) {
            if (p >= end || shift > 63)
                return false;
            key |= (uint64_t) (*p & 0x7f) << shift;
            if (!(*p++ & 0x80))
                break;
        }
        uint64_t len = 0;
        switch (key & 7) {
            case 0:
                while (p < end && (*p & 0x80))
                    p++;
                if (p++ >= end)
                    return false;
                break;
            case 1:
            case 5:
                len = (key & 7) == 1 ? 8 : 4;
                if ((uint64_t) (end - p) < len)
                    return false;
                p += len;
                break;
            case 2:
                for (int shift = 0;; shift += 7) {
                    if (p >= end || shift > 63)
                        return false;
                    len |= (uint64_t) (*p & 0x7f) << shift;
                    if (!(*p++ & 0x80))
                        break;
                }
                if ((uint64_t) (end - p) < len)
                    return false;
                if ((key >> 3) == 1) {
                    if (len >= size)
                        return false;
                    memcpy (buf, p, len);
                    buf[len] = 0;
                    found = len > 0;
                }
                p += len;
                break;
            default:
                return false;
        }
    }
    return found;
}

//  Write queued requests, one SEND_MESSAGE at a time.  A send that cannot
//  start breaks the stream: that request goes back to the router as END
//  UNAVAILABLE (not lost), and the stream ends; closing it returns the
//  rest.
static void
s_pump (gw_subscribe_t *self)
{
    gw_call_t *call = &self->base;
    while (!call->send_busy && !call->closed && !call->finish_started
           && zlistx_size (self->queue) > 0) {
        zframe_t *frame = (zframe_t *) zlistx_detach (self->queue, NULL);
        self->queued_bytes -= zframe_size (frame);
        char rid[300];
        bool named = s_peek_request_id (frame, rid, sizeof rid);
        if (gw_call_send (call, &frame) == 0)
            continue;
        char agent[128], text[320];
        tlog (TLOG_WARN, "agent stream write failed",
              "agent=%s handle=%" PRIu64 " request=%s",
              s_quote (self->info->agent_id, agent, sizeof agent), call->handle,
              s_quote (named ? rid : "", text, sizeof text));
        if (named) {
            Wire__Envelope env = WIRE__ENVELOPE__INIT;
            env.command = WIRE__COMMAND__END;
            env.handle = call->handle;
            env.request_id = rid;
            env.status = GRPC_STATUS_UNAVAILABLE;
            env.message = (char *) "agent stream write failed";
            gw_router_send (call->edge, &env, NULL);
        }
        gw_call_abort (call, GRPC_STATUS_UNAVAILABLE, "write failed");
        break;
    }
}

//  The stream is going (superseded or ended) with requests the edge never
//  wrote: hand each back to the router as END UNAVAILABLE "superseded
//  before delivery" on this (old) stream's handle, so the router delivers
//  it again to the agent's current stream, or fails it when there is none.
//  Cancel notices are dropped.  Empties the queue.
static void
s_return_unwritten (gw_subscribe_t *self)
{
    gw_call_t *call = &self->base;
    zframe_t *frame = (zframe_t *) zlistx_first (self->queue);
    while (frame) {
        Tether__V1__AgentRequest *req = tether__v1__agent_request__unpack (
            NULL, zframe_size (frame), zframe_data (frame));
        if (req && !req->cancel && req->id && *req->id) {
            char agent[128], text[256];
            tlog (TLOG_DEBUG, "request returned",
                  "request=%s agent=%s handle=%" PRIu64 " session=%" PRIu64,
                  s_quote (req->id, text, sizeof text),
                  s_quote (self->info->agent_id, agent, sizeof agent),
                  call->handle, self->entry.session);
            Wire__Envelope env = WIRE__ENVELOPE__INIT;
            env.command = WIRE__COMMAND__END;
            env.handle = call->handle;
            env.session = self->entry.session;
            env.request_id = req->id;
            env.agent_id = self->info->agent_id;
            env.status = GRPC_STATUS_UNAVAILABLE;
            env.message = (char *) "superseded before delivery";
            gw_router_send (call->edge, &env, NULL);
        }
        if (req)
            tether__v1__agent_request__free_unpacked (req, NULL);
        frame = (zframe_t *) zlistx_next (self->queue);
    }
    zlistx_purge (self->queue);
    self->queued_bytes = 0;
}

static void
s_refuse (gw_subscribe_t *self, grpc_status_code code, const char *why)
{
    char agent[128], reason[300], peer[128];
    self->state = SUB_ENDED;
    tlog (TLOG_INFO, "agent refused",
          "agent=%s handle=%" PRIu64 " peer=%s status=%d reason=%s",
          s_quote (self->info ? self->info->agent_id : "", agent, sizeof agent),
          self->base.handle, gw_call_peer (&self->base, peer, sizeof peer),
          (int) code, s_quote (why, reason, sizeof reason));
    gw_call_finish (&self->base, code, why, NULL);
}

static void
s_arrived (gw_call_t *call)
{
    gw_subscribe_t *self = (gw_subscribe_t *) call;
    edge_t *edge = call->edge;
    const edge_config_t *cfg = edge->cfg;
    self->queue = zlistx_new ();
    assert (self->queue);
    zlistx_set_destructor (self->queue,
                           (zlistx_destructor_fn *) zframe_destroy);

    char why[256];
    char *identity = NULL;
    grpc_status_code code = gw_auth_agent (call, &identity, why, sizeof why);
    //  The metadata was wanted for that alone: free its array (about
    //  700 B; the strings stay with the call) for a stream that may last
    //  months.
    grpc_metadata_array_destroy (&call->md);
    grpc_metadata_array_init (&call->md);
    zframe_t *frame = gw_call_take_message (call);
    //  Strings are checked before anything trusts them: protobuf-c reads
    //  "dev-1\0x" as "dev-1", and a label that is not UTF-8 would break
    //  every conforming client's ListAgents.
    char invalid[160] = "";
    if (!frame)
        snprintf (invalid, sizeof invalid,
                  "a SubscriberInfo message is expected");
    else
        edge_parse_message (EDGE_MSG_SUBSCRIBER_INFO, zframe_data (frame),
                            zframe_size (frame), invalid, sizeof invalid);
    if (frame)
        self->info = tether__v1__subscriber_info__unpack (
            NULL, zframe_size (frame), zframe_data (frame));
    zframe_destroy (&frame);
    if (code != GRPC_STATUS_OK) {
        s_refuse (self, code, why);
        return;
    }
    if (*invalid) {
        s_refuse (self, GRPC_STATUS_INVALID_ARGUMENT, invalid);
        return;
    }
    if (identity && self->info
        && !gw_identity_includes (identity, self->info->agent_id)) {
        snprintf (why, sizeof why,
                  "authenticated as '%.100s', may not subscribe as '%.100s'",
                  identity, self->info->agent_id);
        free (identity);
        s_refuse (self, GRPC_STATUS_PERMISSION_DENIED, why);
        return;
    }
    free (identity);
    if (!self->info) {
        s_refuse (self, GRPC_STATUS_INVALID_ARGUMENT,
                  "a SubscriberInfo message is expected");
        return;
    }
    if (!*self->info->agent_id) {
        s_refuse (self, GRPC_STATUS_INVALID_ARGUMENT, "agent_id is empty");
        return;
    }
    if (strlen (self->info->agent_id) > cfg->embedded.core.max_agent_id_len) {
        snprintf (why, sizeof why, "agent_id is longer than %" PRIu32 " bytes",
                  cfg->embedded.core.max_agent_id_len);
        s_refuse (self, GRPC_STATUS_INVALID_ARGUMENT, why);
        return;
    }
    //  The router's rule (common/tether_ids.h), checked before the initial
    //  metadata tells the agent it is up.
    if (!tether_agent_id_valid (self->info->agent_id,
                                strlen (self->info->agent_id),
                                cfg->embedded.core.max_agent_id_len)) {
        s_refuse (self, GRPC_STATUS_INVALID_ARGUMENT,
                  "agent_id may hold only " TETHER_AGENT_ID_CHARS);
        return;
    }
    if (edge->agents >= cfg->max_agents) {
        snprintf (why, sizeof why,
                  "this edge holds its maximum of %" PRIu32 " agents",
                  cfg->max_agents);
        s_refuse (self, GRPC_STATUS_RESOURCE_EXHAUSTED, why);
        return;
    }
    //  The wire entry borrows the strings of `info`.
    Wire__AgentEntry init = WIRE__AGENT_ENTRY__INIT;
    self->entry = init;
    self->entry.handle = call->handle;
    self->entry.agent_id = self->info->agent_id;
    self->entry.connected_at_unix_ms = zclock_time ();
    size_t n = self->info->n_labels;
    if (n) {
        self->labels = (Wire__AgentEntry__LabelsEntry *) calloc (
            n, sizeof (Wire__AgentEntry__LabelsEntry));
        self->label_ptrs = (Wire__AgentEntry__LabelsEntry **) calloc (
            n, sizeof (Wire__AgentEntry__LabelsEntry *));
        assert (self->labels && self->label_ptrs);
        for (size_t i = 0; i < n; i++) {
            Wire__AgentEntry__LabelsEntry item =
                WIRE__AGENT_ENTRY__LABELS_ENTRY__INIT;
            item.key = self->info->labels[i]->key;
            item.value = self->info->labels[i]->value;
            self->labels[i] = item;
            self->label_ptrs[i] = &self->labels[i];
        }
        self->entry.n_labels = n;
        self->entry.labels = self->label_ptrs;
    }
    //  Initial metadata now, so the agent sees the stream is up.
    grpc_op op;
    memset (&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_INITIAL_METADATA;
    if (gw_call_start (call, GW_OP_SEND, &op, 1)) {
        self->state = SUB_ENDED;
        gw_call_abort (call, GRPC_STATUS_INTERNAL, "cannot start stream");
        return;
    }
    call->md_sent = true;
    call->send_busy = true;
    self->state = SUB_PENDING;
    self->counted = true;
    edge->agents++;

    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__SUBSCRIBE;
    env.handle = call->handle;
    env.agent = &self->entry;
    gw_router_send (edge, &env, NULL);
    char agent[128];
    tlog (TLOG_INFO, "agent up", "agent=%s handle=%" PRIu64 " labels=%zu",
          s_quote (self->info->agent_id, agent, sizeof agent), call->handle, n);
}

static void
s_closed (gw_subscribe_t *self)
{
    gw_call_t *call = &self->base;
    edge_t *edge = call->edge;
    bool was_live = self->state == SUB_PENDING || self->state == SUB_LIVE;
    self->state = SUB_ENDED;
    if (self->counted) {
        self->counted = false;
        edge->agents--;
    }
    if (!was_live || self->kicked) {
        s_return_unwritten (self);
        return;
    }
    char agent[128];
    tlog (TLOG_INFO, "agent down",
          "agent=%s handle=%" PRIu64 " session=%" PRIu64 " cancelled=%d",
          s_quote (self->info->agent_id, agent, sizeof agent), call->handle,
          self->entry.session, call->cancelled);
    if (self->entry.session) {
        Wire__Envelope env = WIRE__ENVELOPE__INIT;
        env.command = WIRE__COMMAND__UNSUBSCRIBE;
        env.handle = call->handle;
        env.session = self->entry.session;
        env.agent_id = self->info->agent_id;
        gw_router_send (edge, &env, NULL);
    } else if (!edge->stopping)
        //  Until SUBSCRIBED tells the session, whatever the router's
        //  liveness: a SUBSCRIBE still queued reaches a router that was
        //  only slow, and its SUBSCRIBED must be answered.  A router reset
        //  frees it; a SUBSCRIBED that comes after is answered as unknown.
        call->linger = true;
    //  After UNSUBSCRIBE: with no newer stream the router has failed them
    //  already; with one, it delivers them there.
    s_return_unwritten (self);
}

static void
s_completed (gw_call_t *call, gw_op_kind_t op, bool ok)
{
    gw_subscribe_t *self = (gw_subscribe_t *) call;
    switch (op) {
        case GW_OP_SEND:
            gw_call_send_done (call);
            if (ok)
                s_pump (self);
            break;
        case GW_OP_CLOSE:
            s_closed (self);
            break;
        default:
            break;
    }
}

static void
s_fail (gw_call_t *call, const char *reason, bool forget)
{
    gw_subscribe_t *self = (gw_subscribe_t *) call;
    if (self->state == SUB_ENDED)
        return;
    gw_call_abort (call, GRPC_STATUS_UNAVAILABLE, reason);
}

static void
s_cleanup (gw_call_t *call)
{
    gw_subscribe_t *self = (gw_subscribe_t *) call;
    if (self->counted)
        call->edge->agents--;
    zlistx_destroy (&self->queue);
    free (self->label_ptrs);
    free (self->labels);
    if (self->info)
        tether__v1__subscriber_info__free_unpacked (self->info, NULL);
}

const gw_class_t edge_subscribe_class = {"subscribe", sizeof (gw_subscribe_t),
                                         s_arrived,   s_completed,
                                         s_fail,      s_cleanup};

//  True when `session` from the router names this stream (0 on either side
//  means "not known", which matches).
static bool
s_session_matches (gw_subscribe_t *self, uint64_t session)
{
    return !session || !self->entry.session || session == self->entry.session;
}

static void
s_end_request (edge_t *edge,
               Wire__Envelope *in,
               grpc_status_code code,
               const char *message)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__END;
    env.handle = in->handle;
    env.request_id = in->request_id;
    env.status = code;
    env.message = (char *) message;
    gw_router_send (edge, &env, NULL);
}

//  The router names a stream this edge no longer holds (it ended and was
//  freed before the router learnt of it, e.g. while the router was
//  paused): tell the router to forget it, and refuse a delivery, so no
//  ghost agent stays registered under a dead handle.
static void
s_unknown_stream (edge_t *edge, Wire__Envelope *in)
{
    char agent[128], text[256];
    tlog (TLOG_INFO, "unknown agent stream",
          "command=%s handle=%" PRIu64 " session=%" PRIu64
          " agent=%s request=%s",
          wire_command_name (in->command), in->handle, in->session,
          s_quote (in->agent_id ? in->agent_id : "", agent, sizeof agent),
          s_quote (in->request_id ? in->request_id : "", text, sizeof text));
    //  UNSUBSCRIBE first: the router then no longer takes this handle for
    //  the agent's current stream, so the END cannot come back as another
    //  delivery to it.
    Wire__Envelope out = WIRE__ENVELOPE__INIT;
    out.command = WIRE__COMMAND__UNSUBSCRIBE;
    out.handle = in->handle;
    out.session = in->session;
    out.agent_id = in->agent_id;
    gw_router_send (edge, &out, NULL);
    if (in->command == WIRE__COMMAND__DELIVER && in->request_id
        && *in->request_id)
        s_end_request (edge, in, GRPC_STATUS_UNAVAILABLE, "agent stream gone");
}

void
edge_subscribe_router (edge_t *edge, Wire__Envelope *env, zframe_t **payload_p)
{
    gw_call_t *call = gw_edge_lookup (edge, env->handle, GW_SUBSCRIBE);
    gw_subscribe_t *self = (gw_subscribe_t *) call;
    char agent[128], text[256];
    if (!self && env->command != WIRE__COMMAND__KICK) {
        s_unknown_stream (edge, env);
        return;
    }
    switch (env->command) {
        case WIRE__COMMAND__SUBSCRIBED:
            if (!self)
                break;
            self->entry.session = env->session;
            if (call->linger) {
                //  The stream ended before we knew its session.
                Wire__Envelope out = WIRE__ENVELOPE__INIT;
                out.command = WIRE__COMMAND__UNSUBSCRIBE;
                out.handle = call->handle;
                out.session = env->session;
                out.agent_id = self->info->agent_id;
                gw_router_send (edge, &out, NULL);
                call->linger = false;
                gw_call_maybe_free (&call);
                break;
            }
            if (self->state == SUB_PENDING)
                self->state = SUB_LIVE;
            tlog (TLOG_DEBUG, "agent subscribed",
                  "agent=%s handle=%" PRIu64 " session=%" PRIu64,
                  s_quote (self->info->agent_id, agent, sizeof agent),
                  call->handle, env->session);
            break;
        case WIRE__COMMAND__KICK: {
            if (!self || !s_session_matches (self, env->session))
                break;
            self->kicked = true;
            if (call->linger) {
                call->linger = false;
                gw_call_maybe_free (&call);
                break;
            }
            if (self->state == SUB_ENDED)
                break;
            grpc_status_code code = env->status > 0 && env->status <= 16
                                        ? (grpc_status_code) env->status
                                        : GRPC_STATUS_ABORTED;
            tlog (TLOG_INFO,
                  code == GRPC_STATUS_ABORTED ? "agent superseded"
                                              : "agent kicked",
                  "agent=%s handle=%" PRIu64 " session=%" PRIu64
                  " status=%d message=%s",
                  s_quote (self->info->agent_id, agent, sizeof agent),
                  call->handle, self->entry.session, (int) code,
                  s_quote (env->message, text, sizeof text));
            s_return_unwritten (self);
            gw_call_abort (call, code, env->message);
            break;
        }
        case WIRE__COMMAND__DELIVER:
            if (!self || self->state == SUB_ENDED || call->closed
                || !s_session_matches (self, env->session) || !*payload_p)
                break; //  UNSUBSCRIBE is on its way to the router
            //  Full by count, or by bytes (an empty queue takes any
            //  request, so every message within max_message_size fits).
            if (zlistx_size (self->queue) >= edge->cfg->queue_depth
                || (zlistx_size (self->queue) > 0
                    && self->queued_bytes + zframe_size (*payload_p)
                           > edge->cfg->queue_bytes)) {
                tlog (TLOG_INFO, "request refused",
                      "request=%s agent=%s status=%d reason=\"agent queue "
                      "full\"",
                      s_quote (env->request_id, text, sizeof text),
                      s_quote (self->info->agent_id, agent, sizeof agent),
                      GRPC_STATUS_RESOURCE_EXHAUSTED);
                s_end_request (edge, env, GRPC_STATUS_RESOURCE_EXHAUSTED,
                               "agent queue full");
                break;
            }
            self->queued_bytes += zframe_size (*payload_p);
            zlistx_add_end (self->queue, *payload_p);
            *payload_p = NULL;
            s_pump (self);
            break;
        case WIRE__COMMAND__ABORT: {
            if (!self || self->state == SUB_ENDED || call->closed
                || !s_session_matches (self, env->session))
                break;
            //  Cancel notices may exceed the queue depth by as much again.
            if (zlistx_size (self->queue) >= 2 * edge->cfg->queue_depth)
                break;
            Tether__V1__AgentRequest req = TETHER__V1__AGENT_REQUEST__INIT;
            req.id = env->request_id;
            req.agent_id = self->info->agent_id;
            req.cancel = 1;
            size_t size = tether__v1__agent_request__get_packed_size (&req);
            zframe_t *frame = zframe_new (NULL, size);
            assert (frame);
            tether__v1__agent_request__pack (&req, zframe_data (frame));
            self->queued_bytes += zframe_size (frame);
            zlistx_add_end (self->queue, frame);
            s_pump (self);
            break;
        }
        default:
            break;
    }
}

Wire__AgentEntry **
edge_subscribe_entries (edge_t *edge, size_t *count)
{
    size_t max = zhashx_size (edge->calls);
    Wire__AgentEntry **entries = (Wire__AgentEntry **) calloc (
        max ? max : 1, sizeof (Wire__AgentEntry *));
    assert (entries);
    size_t n = 0;
    gw_call_t *call = (gw_call_t *) zhashx_first (edge->calls);
    while (call) {
        gw_subscribe_t *self = (gw_subscribe_t *) call;
        if (call->kind == GW_SUBSCRIBE
            && (self->state == SUB_PENDING || self->state == SUB_LIVE))
            entries[n++] = &self->entry;
        call = (gw_call_t *) zhashx_next (edge->calls);
    }
    *count = n;
    return entries;
}

void
edge_subscribe_router_reset (edge_t *edge)
{
    zlistx_t *lingering = zlistx_new ();
    assert (lingering);
    gw_call_t *call = (gw_call_t *) zhashx_first (edge->calls);
    while (call) {
        if (call->kind == GW_SUBSCRIBE && call->linger)
            zlistx_add_end (lingering, call);
        call = (gw_call_t *) zhashx_next (edge->calls);
    }
    call = (gw_call_t *) zlistx_first (lingering);
    while (call) {
        call->linger = false;
        gw_call_maybe_free (&call);
        call = (gw_call_t *) zlistx_next (lingering);
    }
    zlistx_destroy (&lingering);
}
