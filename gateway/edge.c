/*  =========================================================================
    edge - tether-edge: the gRPC server and its bridge to the router

    Two threads.  The CQ thread does nothing but grpc_completion_queue_next
    and forward each (tag, ok) over an inproc PAIR (HWM 0: a blocked CQ
    thread would stop all gRPC I/O; the bounds are in the calls' own
    queues).  The owner thread (edge_run) polls that PAIR, the DEALER to
    an external router (or, with the embedded router, which runs on this
    thread (edge_router.c), its monitor socket) and a signalfd; it owns
    every call struct and starts every batch (but see the send chain
    below).  So no call state is shared and nothing is locked.  Each event
    crosses the PAIR as one fixed-size struct {tag, ok} (a plain zmq_send:
    no picture formatting on the CQ thread, whose only job is to keep
    gRPC's completions flowing).

    With the embedded router there is no CQ thread at all ("direct"): the
    owner has no socket to wait on but the monitor's subscriptions and
    the signalfd, so it waits in grpc_completion_queue_next itself, at most
    S_DIRECT_WAIT_MS at a time (or until its next timer), and looks at the
    signalfd and the monitor without waiting after a batch of events, at
    most every S_DIRECT_LOOK_MS (a poll(2) per batch would cost a system
    call per wake-up).
    A gRPC event then costs no thread hop at all, as in a plain
    single-threaded gRPC server; a signal is seen within S_DIRECT_WAIT_MS.

    The send chain (edge_internal.h): a call with a send queue lets the CQ
    thread start its next queued SEND_MESSAGE as soon as the previous one
    completes, so a stream with a backlog is not paced by two thread
    wake-ups per message.  The CQ thread reports what a chain wrote every
    `progress_every` messages (a PROGRESS event) and when it hands the
    send path back (the SEND completion), so the owner can grant credit.

    Calls are named on the wire by a handle from a counter; `calls` maps
    handle -> call.  A requested call that has not arrived yet is not in
    the table (it has no handle); `posted` counts those.

    Router liveness: PING every heartbeat; any message from the router
    counts as hearing from it.  Silence for the liveness window fails the
    in-flight client calls (publish, respond, list) with UNAVAILABLE and
    keeps agent streams.  A PONG with known=false or a new router
    incarnation means the router lost our state: fail the client calls too
    and send HELLO with every agent stream.  So does a send to the router
    that fails (the DEALER at its --dealer-sndhwm): the router would never
    see that END, UNSUBSCRIBE or CREDIT, so its view of us is wrong; the
    reset waits until the router is heard from.

    Shutdown (the order GRPC-CORE-NOTES.md found clean): say BYE to the
    router (it forgets our agents and requests at once; we send nothing
    after it), stop accepting (grpc_server_shutdown_and_notify), end every call (agents UNAVAILABLE
    "edge shutting down"), grpc_server_cancel_all_calls, keep handling
    events until the shutdown tag has come and every call is freed, then
    destroy the server, shut the queue down and drain it to
    GRPC_QUEUE_SHUTDOWN, destroy it.
    =========================================================================
*/
#include "edge_internal.h"

#include "absl_quiet.h"
#include <errno.h>
#include <inttypes.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <grpc/grpc_security.h>
#include "router_actor.h"
#include <grpc/support/alloc.h>

//  Events handled per wake-up before looking at the other sockets.
#define S_BATCH 512
//  Direct mode: longest wait in the completion queue, ms.
#define S_DIRECT_WAIT_MS 50
//  Direct mode: shortest interval between looks at signals and the monitor.
#define S_DIRECT_LOOK_MS 10

//  What the CQ thread forwards for each event.
typedef struct
{
    void *tag;          //  the op, or &edge->shutdown_op
    int ok;             //  the event's success
    int queue_shutdown; //  1 = the last event: the queue is shut
    uint32_t written;   //  SEND, PROGRESS: messages written (see the send
                        //  chain)
} s_event_t;

static const gw_class_t *
s_class (gw_kind_t kind)
{
    switch (kind) {
        case GW_SUBSCRIBE:
            return &edge_subscribe_class;
        case GW_PUBLISH:
            return &edge_publish_class;
        case GW_RESPOND:
            return &edge_respond_class;
        case GW_LIST:
            return &edge_list_class;
        case GW_HEALTH:
            return &edge_health_class;
        default:
            return &edge_unknown_class;
    }
}

//  ---- calls ------------------------------------------------------------

gw_call_t *
gw_call_of (gw_op_t *op)
{
    gw_op_t *first = op - op->kind;
    return (gw_call_t *) ((char *) first - offsetof (gw_call_t, ops));
}

gw_call_t *
gw_call_alloc (edge_t *edge, gw_kind_t kind, size_t size)
{
    assert (size >= sizeof (gw_call_t));
    gw_call_t *self = (gw_call_t *) calloc (1, size);
    assert (self);
    self->kind = kind;
    self->edge = edge;
    for (int i = 0; i < GW_OP_COUNT; i++)
        self->ops[i].kind = (gw_op_kind_t) i;
    self->deadline = gpr_inf_future (GPR_CLOCK_REALTIME);
    grpc_metadata_array_init (&self->md);
    grpc_call_details_init (&self->details);
    return self;
}

int
gw_call_start (gw_call_t *self, gw_op_kind_t which, grpc_op *ops, size_t count)
{
    assert (self->call);
    self->pending_ops++;
    grpc_call_error rc =
        grpc_call_start_batch (self->call, ops, count, &self->ops[which], NULL);
    if (rc != GRPC_CALL_OK) {
        self->pending_ops--;
        tlog (TLOG_WARN, "batch refused",
              "call=%s handle=%" PRIu64 " op=%d error=\"%s\"",
              s_class (self->kind)->name, self->handle, (int) which,
              grpc_call_error_to_string (rc));
        return -1;
    }
    return 0;
}

int
gw_call_post_close (gw_call_t *self)
{
    grpc_op op;
    memset (&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &self->cancelled;
    int rc = gw_call_start (self, GW_OP_CLOSE, &op, 1);
    if (rc)
        self->closed = true; //  nothing will tell us more
    return rc;
}

int
gw_call_finish (gw_call_t *self,
                grpc_status_code status,
                const char *message,
                grpc_byte_buffer **message_p)
{
    if (self->finish_started) {
        if (message_p && *message_p) {
            grpc_byte_buffer_destroy (*message_p);
            *message_p = NULL;
        }
        return 0;
    }
    self->finish_started = true;
    grpc_op ops[3];
    memset (ops, 0, sizeof ops);
    size_t n = 0;
    if (!self->md_sent) {
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        n++;
        self->md_sent = true;
    }
    if (message_p && *message_p) {
        self->last_buf = *message_p;
        *message_p = NULL;
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = self->last_buf;
        n++;
    }
    grpc_slice details = grpc_slice_from_copied_string (message ? message : "");
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = status;
    ops[n].data.send_status_from_server.status_details =
        message && *message ? &details : NULL;
    n++;
    int rc = gw_call_start (self, GW_OP_FINISH, ops, n);
    grpc_slice_unref (details);
    if (rc) {
        grpc_call_cancel_with_status (self->call, status,
                                      message ? message : "", NULL);
        return -1;
    }
    return 0;
}

void
gw_call_abort (gw_call_t *self, grpc_status_code status, const char *message)
{
    if (!self->call || self->finish_started)
        return;
    self->finish_started = true;
    grpc_call_cancel_with_status (self->call, status, message, NULL);
}

static void
s_frame_release (void *frame)
{
    zframe_t *self = (zframe_t *) frame;
    zframe_destroy (&self);
}

grpc_byte_buffer *
gw_byte_buffer_from_frame (zframe_t **frame_p)
{
    zframe_t *frame = *frame_p;
    *frame_p = NULL;
    grpc_slice slice;
    if (zframe_size (frame) == 0) {
        slice = grpc_empty_slice ();
        zframe_destroy (&frame);
    } else
        slice = grpc_slice_new_with_user_data (
            zframe_data (frame), zframe_size (frame), s_frame_release, frame);
    grpc_byte_buffer *buffer = grpc_raw_byte_buffer_create (&slice, 1);
    grpc_slice_unref (slice);
    return buffer;
}

gw_sendq_t *
gw_sendq_new (uint32_t capacity)
{
    uint32_t size = 2;
    while (size < capacity && size < (1u << 31))
        size <<= 1;
    //  One allocation: the slots follow the struct.
    gw_sendq_t *self = (gw_sendq_t *) calloc (
        1, sizeof (gw_sendq_t) + (size_t) size * sizeof (zframe_t *));
    assert (self);
    self->slots = (zframe_t **) (self + 1);
    self->mask = size - 1;
    atomic_init (&self->head, 0);
    atomic_init (&self->tail, 0);
    return self;
}

void
gw_sendq_destroy (gw_sendq_t **self_p)
{
    assert (self_p);
    gw_sendq_t *self = *self_p;
    if (!self)
        return;
    zframe_t *frame;
    while ((frame = gw_sendq_pop (self)))
        zframe_destroy (&frame);
    free (self);
    *self_p = NULL;
}

int
gw_sendq_push (gw_sendq_t *self, zframe_t **frame_p)
{
    uint32_t tail = atomic_load_explicit (&self->tail, memory_order_relaxed);
    uint32_t head = atomic_load_explicit (&self->head, memory_order_acquire);
    if (tail - head > self->mask)
        return -1;
    self->slots[tail & self->mask] = *frame_p;
    *frame_p = NULL;
    //  Publishes the slot to the consumer.
    atomic_store_explicit (&self->tail, tail + 1, memory_order_release);
    return 0;
}

zframe_t *
gw_sendq_pop (gw_sendq_t *self)
{
    uint32_t head = atomic_load_explicit (&self->head, memory_order_acquire);
    uint32_t tail = atomic_load_explicit (&self->tail, memory_order_acquire);
    if (head == tail)
        return NULL;
    zframe_t *frame = self->slots[head & self->mask];
    self->slots[head & self->mask] = NULL;
    //  Gives the slot back to the producer.
    atomic_store_explicit (&self->head, head + 1, memory_order_release);
    return frame;
}

size_t
gw_sendq_size (gw_sendq_t *self)
{
    uint32_t head = atomic_load_explicit (&self->head, memory_order_acquire);
    uint32_t tail = atomic_load_explicit (&self->tail, memory_order_acquire);
    return (size_t) (tail - head);
}

int
gw_call_send (gw_call_t *self, zframe_t **frame_p)
{
    assert (!self->send_busy);
    self->send_buf = gw_byte_buffer_from_frame (frame_p);
    grpc_op ops[2];
    memset (ops, 0, sizeof ops);
    size_t n = 0;
    bool sent_md = false;
    if (!self->md_sent) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        sent_md = true;
    }
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = self->send_buf;
    n++;
    if (gw_call_start (self, GW_OP_SEND, ops, n)) {
        grpc_byte_buffer_destroy (self->send_buf);
        self->send_buf = NULL;
        return -1;
    }
    if (sent_md)
        self->md_sent = true;
    self->send_busy = true;
    return 0;
}

void
gw_call_send_done (gw_call_t *self)
{
    self->send_busy = false;
    if (self->send_buf) {
        grpc_byte_buffer_destroy (self->send_buf);
        self->send_buf = NULL;
    }
}

char *
gw_call_metadata (gw_call_t *self, const char *key)
{
    const char *value;
    size_t len;
    if (!gw_call_metadata_find (self, key, &value, &len))
        return NULL;
    return gw_strndup ((const uint8_t *) value, len);
}

bool
gw_call_metadata_find (gw_call_t *self,
                       const char *key,
                       const char **value,
                       size_t *len)
{
    size_t key_len = strlen (key);
    for (size_t i = 0; i < self->md.count; i++) {
        grpc_metadata *m = &self->md.metadata[i];
        if (GRPC_SLICE_LENGTH (m->key) == key_len
            && memcmp (GRPC_SLICE_START_PTR (m->key), key, key_len) == 0) {
            *value = (const char *) GRPC_SLICE_START_PTR (m->value);
            *len = GRPC_SLICE_LENGTH (m->value);
            return true;
        }
    }
    *value = NULL;
    *len = 0;
    return false;
}

const char *
gw_call_peer (gw_call_t *self, char *buf, size_t size)
{
    char *peer = self->call ? grpc_call_get_peer (self->call) : NULL;
    edge_parse_escape (peer ? peer : "", peer ? strlen (peer) : 0, buf, size);
    gpr_free (peer);
    return buf;
}

zframe_t *
gw_call_take_message (gw_call_t *self)
{
    if (!self->recv_buf)
        return NULL;
    //  One copy, straight from gRPC's slices into the frame.
    grpc_byte_buffer_reader reader;
    zframe_t *frame = NULL;
    if (grpc_byte_buffer_reader_init (&reader, self->recv_buf)) {
        //  buffer_out: the bytes as read (decompressed, when they were).
        frame = zframe_new (NULL, grpc_byte_buffer_length (reader.buffer_out));
        assert (frame);
        byte *out = zframe_data (frame);
        size_t room = zframe_size (frame);
        grpc_slice *slice;
        while (grpc_byte_buffer_reader_peek (&reader, &slice)) {
            size_t len = GRPC_SLICE_LENGTH (*slice);
            if (len > room)
                len = room;
            memcpy (out, GRPC_SLICE_START_PTR (*slice), len);
            out += len;
            room -= len;
        }
        grpc_byte_buffer_reader_destroy (&reader);
    }
    grpc_byte_buffer_destroy (self->recv_buf);
    self->recv_buf = NULL;
    return frame;
}

void
gw_call_maybe_free (gw_call_t **self_p)
{
    assert (self_p);
    gw_call_t *self = *self_p;
    if (!self || !self->done || self->linger || self->pending_ops > 0)
        return;
    edge_t *edge = self->edge;
    if (self->handle)
        zhashx_delete (edge->calls, &self->handle);
    s_class (self->kind)->cleanup (self);
    if (self->recv_buf)
        grpc_byte_buffer_destroy (self->recv_buf);
    if (self->send_buf)
        grpc_byte_buffer_destroy (self->send_buf);
    if (self->last_buf)
        grpc_byte_buffer_destroy (self->last_buf);
    gw_sendq_destroy (&self->sendq);
    grpc_metadata_array_destroy (&self->md);
    grpc_call_details_destroy (&self->details);
    if (self->call)
        grpc_call_unref (self->call);
    free (self);
    *self_p = NULL;
}

gw_call_t *
gw_edge_lookup (edge_t *edge, uint64_t handle, gw_kind_t kind)
{
    gw_call_t *call = (gw_call_t *) zhashx_lookup (edge->calls, &handle);
    if (call && call->kind != kind)
        return NULL;
    return call;
}

bool
gw_router_alive (edge_t *edge)
{
    return edge->rs.alive;
}

//  Fill `buf` with `size` random bytes from the kernel.
static void
s_random_bytes (void *buf, size_t size)
{
    uint8_t *out = (uint8_t *) buf;
    size_t got = 0;
    while (got < size) {
        ssize_t n = getrandom (out + got, size - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        got += (size_t) n;
    }
    //  Request ids must be unguessable: without the kernel's CSPRNG the
    //  edge stops rather than fall back to a predictable generator.
    if (got < size) {
        tlog (TLOG_ERROR, "getrandom failed", "error=\"%s\"", strerror (errno));
        abort ();
    }
}

//  16 bytes as 32 hex characters and a NUL into `buf`.
static void
s_hex16 (const uint8_t *bytes, char *buf)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        buf[2 * i] = digits[bytes[i] >> 4];
        buf[2 * i + 1] = digits[bytes[i] & 15];
    }
    buf[32] = 0;
}

void
gw_random_hex (char *buf)
{
    uint8_t bytes[16];
    s_random_bytes (bytes, sizeof bytes);
    s_hex16 (bytes, buf);
}

void
gw_request_id (edge_t *edge, char *buf)
{
    if (edge->entropy_left < 16) {
        s_random_bytes (edge->entropy, sizeof edge->entropy);
        edge->entropy_left = sizeof edge->entropy;
    }
    uint8_t *bytes = edge->entropy + sizeof edge->entropy - edge->entropy_left;
    s_hex16 (bytes, buf);
    memset (bytes, 0, 16);
    edge->entropy_left -= 16;
}

char *
gw_strdup (const char *text)
{
    char *copy = strdup (text ? text : "");
    assert (copy);
    return copy;
}

char *
gw_strndup (const uint8_t *data, size_t len)
{
    char *copy = (char *) malloc (len + 1);
    assert (copy);
    if (len)
        memcpy (copy, data, len);
    copy[len] = 0;
    return copy;
}

//  ---- the router -------------------------------------------------------

void
gw_router_send (edge_t *edge, Wire__Envelope *env, zframe_t **payload_p)
{
    if ((!edge->dealer && !edge->local) || edge->said_bye) {
        if (payload_p)
            zframe_destroy (payload_p);
        return;
    }
    zframe_t *frame = wire_envelope_encode (env);
    zmsg_t *msg = zmsg_new ();
    assert (msg);
    zmsg_append (msg, &frame);
    if (payload_p && *payload_p)
        zmsg_append (msg, payload_p);
    if (edge->local) {
        edge_router_send (edge->local, &msg, zclock_mono ());
        return;
    }
    if (zmsg_send (&msg, edge->dealer) == -1) {
        //  The DEALER is full (or broken): the router will never see this
        //  END, UNSUBSCRIBE or CREDIT, so its view of us is wrong.  Treat
        //  it as a router restart: s_timers fails the client calls and
        //  sends HELLO (deferred: our caller may be iterating calls).
        edge->send_failed++;
        if (!edge->rs.resync || edge->send_failed % 1000 == 1) {
            char request[160], agent[160];
            tlog (TLOG_WARN, "router send failed",
                  "command=%s handle=%" PRIu64 " session=%" PRIu64
                  " request=%s agent=%s errno=%d failed=%" PRIu64,
                  wire_command_name (env->command), env->handle, env->session,
                  tlog_quote (env->request_id ? env->request_id : "", request,
                              sizeof request),
                  tlog_quote (env->agent_id ? env->agent_id : "", agent,
                              sizeof agent),
                  zmq_errno (), edge->send_failed);
        }
        edge->rs.resync = true;
        zmsg_destroy (&msg);
    }
}

static void
s_send_hello (edge_t *self)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__HELLO;
    env.edge_id = self->edge_id;
    env.incarnation = self->incarnation;
    size_t count = 0;
    Wire__AgentEntry **entries = edge_subscribe_entries (self, &count);
    env.n_agents = count;
    env.agents = entries;
    gw_router_send (self, &env, NULL);
    self->hello_sent_at = zclock_mono ();
    free (entries);
    tlog (TLOG_DEBUG, "hello sent", "agents=%zu", count);
}

//  Tell the router we are leaving, so it forgets our agents and requests
//  now rather than a liveness window later.  Nothing is sent after it: the
//  router would take anything more for a new edge.
static void
s_send_bye (edge_t *self)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__BYE;
    env.edge_id = self->edge_id;
    env.incarnation = self->incarnation;
    gw_router_send (self, &env, NULL);
    self->said_bye = true;
}

static void
s_send_ping (edge_t *self)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__PING;
    env.edge_id = self->edge_id;
    env.incarnation = self->incarnation;
    gw_router_send (self, &env, NULL);
}

//  Fail every client call (publish, respond, list) with UNAVAILABLE.
static void
s_fail_client_calls (edge_t *self, const char *reason, bool forget)
{
    gw_call_t *call = (gw_call_t *) zhashx_first (self->calls);
    while (call) {
        if (call->kind == GW_PUBLISH || call->kind == GW_RESPOND
            || call->kind == GW_LIST)
            s_class (call->kind)->fail (call, reason, forget);
        call = (gw_call_t *) zhashx_next (self->calls);
    }
}

//  The router lost our state: fail client calls, re-send HELLO.
static void
s_router_reset (edge_t *self, const char *why)
{
    tlog (TLOG_WARN, "router restarted", "reason=%s agents=%zu", why,
          self->agents);
    s_fail_client_calls (self, "router restarted", true);
    edge_subscribe_router_reset (self);
    s_send_hello (self);
}

static void
s_router_heard (edge_t *self, int64_t now)
{
    self->rs.last_heard = now;
    if (!self->rs.alive) {
        self->rs.alive = true;
        tlog (TLOG_INFO, "router back", "router=%s", self->router_endpoint);
    }
}

static void
s_handle_router_msg (edge_t *self, zmsg_t **msg_p, int64_t now)
{
    zmsg_t *msg = *msg_p;
    zframe_t *head = zmsg_pop (msg);
    zframe_t *payload = zmsg_pop (msg);
    bool extra = zmsg_size (msg) > 0;
    zmsg_destroy (msg_p);
    //  Borrowed from the parser until its next decode: router messages are
    //  handled one at a time, never from inside a handler.
    Wire__Envelope *env = NULL;
    if (extra || !head
        || wire_envelope_parser_decode (self->parser, zframe_data (head),
                                        zframe_size (head), &env)) {
        self->malformed++;
        if (self->malformed % 1000 == 1)
            tlog (TLOG_WARN, "malformed router message", "dropped=%" PRIu64,
                  self->malformed);
        goto cleanup;
    }
    s_router_heard (self, now);
    switch (env->command) {
        case WIRE__COMMAND__WELCOME:
            if (self->rs.incarnation != env->incarnation)
                tlog (TLOG_INFO, "router joined",
                      "router=%s incarnation=%" PRIx64, self->router_endpoint,
                      env->incarnation);
            self->rs.incarnation = env->incarnation;
            break;
        case WIRE__COMMAND__PONG:
            if (self->said_bye)
                break;
            if (!env->known) {
                //  PINGs queued while the router was away all come back
                //  unknown: one HELLO per liveness window is enough.
                if (now - self->hello_sent_at
                    >= (int64_t) self->cfg->router_liveness_ms)
                    s_router_reset (self, "unknown-edge");
            } else if (self->rs.incarnation
                       && self->rs.incarnation != env->incarnation)
                s_router_reset (self, "new-incarnation");
            self->rs.incarnation = env->incarnation;
            break;
        case WIRE__COMMAND__SUBSCRIBED:
        case WIRE__COMMAND__KICK:
        case WIRE__COMMAND__DELIVER:
        case WIRE__COMMAND__ABORT:
            edge_subscribe_router (self, env, &payload);
            break;
        case WIRE__COMMAND__BOUND:
        case WIRE__COMMAND__GRANT:
            edge_respond_router (self, env, &payload);
            break;
        case WIRE__COMMAND__REPLY:
            edge_publish_router (self, env, &payload);
            break;
        case WIRE__COMMAND__AGENTS:
            edge_list_router (self, env, &payload);
            break;
        case WIRE__COMMAND__FINISH: {
            gw_call_t *call =
                (gw_call_t *) zhashx_lookup (self->calls, &env->handle);
            if (!call)
                break;
            if (call->kind == GW_PUBLISH)
                edge_publish_router (self, env, &payload);
            else if (call->kind == GW_RESPOND)
                edge_respond_router (self, env, &payload);
            else if (call->kind == GW_LIST)
                edge_list_router (self, env, &payload);
            break;
        }
        default:
            self->malformed++;
            tlog (TLOG_DEBUG, "unexpected router command", "command=%s",
                  wire_command_name (env->command));
            break;
    }
cleanup:
    zframe_destroy (&head);
    zframe_destroy (&payload);
}

//  ---- gRPC events ------------------------------------------------------

static void
s_post (edge_t *self, gw_kind_t kind)
{
    gw_call_t *call = gw_call_alloc (self, kind, s_class (kind)->size);
    grpc_call_error rc;
    if (kind == GW_UNKNOWN)
        rc = grpc_server_request_call (self->server, &call->call,
                                       &call->details, &call->md, self->cq,
                                       self->cq, &call->ops[GW_OP_NEW]);
    else
        rc = grpc_server_request_registered_call (
            self->server, self->methods[kind], &call->call, &call->deadline,
            &call->md, kind == GW_RESPOND ? NULL : &call->recv_buf, self->cq,
            self->cq, &call->ops[GW_OP_NEW]);
    if (rc != GRPC_CALL_OK) {
        tlog (TLOG_ERROR, "request call failed", "call=%s error=\"%s\"",
              s_class (kind)->name, grpc_call_error_to_string (rc));
        call->done = true;
        gw_call_maybe_free (&call);
        return;
    }
    call->pending_ops = 1;
    self->posted++;
}

static void
s_handle_event (edge_t *self, void *tag, int ok, uint32_t written)
{
    if (tag == &self->shutdown_op) {
        self->server_shutdown = true;
        return;
    }
    gw_call_t *call = gw_call_of ((gw_op_t *) tag);
    gw_op_kind_t op = ((gw_op_t *) tag)->kind;
    if (op == GW_OP_PROGRESS) {
        //  A report, not a completion: the chain's send is still pending.
        call->written = written;
        s_class (call->kind)->completed (call, op, true);
        call->written = 0;
        return;
    }
    call->pending_ops--;
    if (op == GW_OP_SEND)
        call->written = written;
    if (op == GW_OP_NEW) {
        self->posted--;
        if (!ok || !call->call) {
            call->done = true;
            gw_call_maybe_free (&call);
            return;
        }
        if (!self->stopping)
            s_post (self, call->kind);
        call->handle = ++self->next_handle;
        zhashx_insert (self->calls, &call->handle, call);
        if (zhashx_size (self->calls) > self->cfg->max_calls
            && !self->stopping) {
            tlog (TLOG_INFO, "call refused",
                  "kind=%s handle=%" PRIu64 " calls=%zu status=%d "
                  "reason=\"edge call limit reached\"",
                  s_class (call->kind)->name, call->handle,
                  zhashx_size (self->calls) - 1,
                  GRPC_STATUS_RESOURCE_EXHAUSTED);
            gw_call_abort (call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                           "edge call limit reached");
            call->done = true;
        } else if (self->stopping || gw_call_post_close (call)) {
            gw_call_abort (call, GRPC_STATUS_UNAVAILABLE, "edge shutting down");
            call->done = true;
        } else
            s_class (call->kind)->arrived (call);
    } else {
        if (op == GW_OP_CLOSE)
            call->closed = true;
        s_class (call->kind)->completed (call, op, ok != 0);
        if (op == GW_OP_CLOSE)
            call->done = true;
        call->written = 0;
    }
    gw_call_maybe_free (&call);
}

static void
s_drain_pump (edge_t *self)
{
    void *sock = zsock_resolve (self->pump_rx);
    for (int i = 0; i < S_BATCH; i++) {
        s_event_t ev;
        int rc = zmq_recv (sock, &ev, sizeof ev, ZMQ_DONTWAIT);
        if (rc != (int) sizeof ev)
            break;
        if (ev.queue_shutdown) {
            self->pump_running = false;
            continue;
        }
        s_handle_event (self, ev.tag, ev.ok, ev.written);
    }
}

//  Handle what the embedded router has for us, including what those
//  messages make it answer, up to a batch.
static void
s_drain_local (edge_t *self, int64_t now)
{
    edge_router_tick (self->local, now);
    for (int i = 0; i < S_BATCH; i++) {
        zmsg_t *msg = edge_router_recv (self->local);
        if (!msg)
            break;
        s_handle_router_msg (self, &msg, now);
    }
    edge_publish_flush (self);
}

//  Direct mode: handle completion-queue events on this thread, waiting at
//  most `timeout_ms` for the first, up to a batch.
static void
s_drain_cq (edge_t *self, long timeout_ms)
{
    gpr_timespec deadline =
        timeout_ms > 0
            ? gpr_time_add (gpr_now (GPR_CLOCK_MONOTONIC),
                            gpr_time_from_millis (timeout_ms, GPR_TIMESPAN))
            : gpr_time_0 (GPR_CLOCK_MONOTONIC);
    for (int i = 0; i < S_BATCH && !self->cq_done; i++) {
        grpc_event ev = grpc_completion_queue_next (self->cq, deadline, NULL);
        if (ev.type == GRPC_QUEUE_TIMEOUT)
            break;
        if (ev.type == GRPC_QUEUE_SHUTDOWN) {
            self->cq_done = true;
            break;
        }
        uint32_t written = 0;
        if (ev.tag != &self->shutdown_op
            && ((gw_op_t *) ev.tag)->kind == GW_OP_SEND)
            written = ev.success ? 1 : 0;
        s_handle_event (self, ev.tag, ev.success, written);
        deadline = gpr_time_0 (GPR_CLOCK_MONOTONIC);
    }
}

static void
s_drain_dealer (edge_t *self, int64_t now)
{
    for (int i = 0; i < S_BATCH; i++) {
        if (!(zsock_events (self->dealer) & ZMQ_POLLIN))
            break;
        zmsg_t *msg = zmsg_recv (self->dealer);
        if (!msg)
            break;
        s_handle_router_msg (self, &msg, now);
    }
    edge_publish_flush (self);
}

//  CQ thread: forward one event to the owner.
static void
s_forward (void *sock, s_event_t *out)
{
    while (zmq_send (sock, out, sizeof *out, 0) == -1 && errno == EINTR)
        ;
}

//  CQ thread, holding the call's send path: the send in flight completed
//  with `ok`.  Starts the next queued message and returns 1 (the send path
//  stays here); or returns 0 (the queue is empty) or -1 (the next send
//  could not start: the call is cancelled), and the completion is to be
//  forwarded, which hands the send path back to the owner.
static int
s_chain_next (void *sock, gw_call_t *call, bool ok)
{
    if (!ok)
        return -1;
    call->chain_written++;
    zframe_t *frame = gw_sendq_pop (call->sendq);
    if (!frame)
        return 0;
    grpc_byte_buffer_destroy (call->send_buf);
    call->send_buf = gw_byte_buffer_from_frame (&frame);
    grpc_op op;
    memset (&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = call->send_buf;
    if (grpc_call_start_batch (call->call, &op, 1, &call->ops[GW_OP_SEND], NULL)
        != GRPC_CALL_OK) {
        grpc_byte_buffer_destroy (call->send_buf);
        call->send_buf = NULL;
        grpc_call_cancel_with_status (call->call, GRPC_STATUS_INTERNAL,
                                      "write failed", NULL);
        return -1;
    }
    if (call->progress_every && call->chain_written >= call->progress_every) {
        s_event_t report = {&call->ops[GW_OP_PROGRESS], 1, 0,
                            call->chain_written};
        call->chain_written = 0;
        s_forward (sock, &report);
    }
    return 1;
}

static void *
s_pump (void *args)
{
    edge_t *self = (edge_t *) args;
    void *sock = zsock_resolve (self->pump_tx);
    while (true) {
        grpc_event ev = grpc_completion_queue_next (
            self->cq, gpr_inf_future (GPR_CLOCK_REALTIME), NULL);
        s_event_t out = {ev.tag, ev.success, ev.type == GRPC_QUEUE_SHUTDOWN, 0};
        if (ev.type == GRPC_QUEUE_TIMEOUT)
            continue;
        if (ev.type == GRPC_OP_COMPLETE && ev.tag != &self->shutdown_op
            && ((gw_op_t *) ev.tag)->kind == GW_OP_SEND) {
            gw_call_t *call = gw_call_of ((gw_op_t *) ev.tag);
            if (call->sendq) {
                int rc = s_chain_next (sock, call, ev.success != 0);
                if (rc == 1)
                    continue;
                if (rc == -1)
                    out.ok = 0;
                out.written = call->chain_written;
                call->chain_written = 0;
            } else
                out.written = ev.success ? 1 : 0;
        }
        s_forward (sock, &out);
        if (out.queue_shutdown)
            break;
    }
    return NULL;
}

//  ---- construction -----------------------------------------------------

static size_t
s_hash (const void *key)
{
    uint64_t h = *(const uint64_t *) key;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (size_t) h;
}

static int
s_compare (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y ? 1 : 0;
}

static uint64_t
s_random_u64 (void)
{
    uint64_t value = 0;
    while (!value)
        s_random_bytes (&value, sizeof value);
    return value;
}

static int
s_start_server (edge_t *self)
{
    const edge_config_t *cfg = self->cfg;
    //  Public messages are at most --max-message-size; what the edge sends
    //  to an agent may hold the request id it appended (router_core.h).
    int max_size = (int) cfg->embedded.core.max_payload_bytes;
    int max_send =
        (int) (cfg->embedded.core.max_payload_bytes + CORE_PAYLOAD_MARGIN);
    struct
    {
        const char *key;
        int value;
    } settings[] = {
        {GRPC_ARG_ALLOW_REUSEPORT, 0},
        {GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, max_size},
        {GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, max_send},
        //  Memory: a stream's receive buffer is bounded by its HTTP/2
        //  window, which BDP probing grows to many MiB whatever the edge
        //  reads; with probing off the window stays at the lookahead (plus
        //  the message being read), so credit bounds memory again.
        {GRPC_ARG_HTTP2_BDP_PROBE, cfg->bdp_probe ? 1 : 0},
        {GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, (int) cfg->stream_window},
        //  Keepalive: ping idle connections so that a dead path (NAT
        //  timeout) is noticed, and accept agents' own pings.
        {GRPC_ARG_KEEPALIVE_TIME_MS, (int) cfg->keepalive_time_ms},
        {GRPC_ARG_KEEPALIVE_TIMEOUT_MS, (int) cfg->keepalive_timeout_ms},
        {GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1},
        {GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0},
        {GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
         (int) cfg->min_ping_interval_ms},
        {GRPC_ARG_HTTP2_MAX_PING_STRIKES, (int) cfg->max_ping_strikes},
        //  Calls: a client waits for a stream beyond this (HTTP/2
        //  SETTINGS); the edge-wide --max-calls refuses.
        {GRPC_ARG_MAX_CONCURRENT_STREAMS,
         (int) cfg->max_streams_per_connection},
        //  Memory per connection (docs/configuration.md, "Memory per
        //  agent"): channelz keeps a socket node per connection; HPACK's
        //  decoder table holds the peer's headers; TCP keeps zerocopy send
        //  records even with zerocopy off (it is: 0 records, ~1.4 KB less);
        //  and the edge never compresses what it sends.
        {GRPC_ARG_ENABLE_CHANNELZ, cfg->channelz ? 1 : 0},
        {GRPC_ARG_HTTP2_HPACK_TABLE_SIZE_DECODER, (int) cfg->hpack_table_size},
        {GRPC_ARG_TCP_TX_ZEROCOPY_MAX_SIMULT_SENDS, 0},
        {GRPC_ARG_ENABLE_PER_MESSAGE_COMPRESSION, 0},
    };
    enum
    {
        S_SETTINGS = sizeof settings / sizeof settings[0]
    };
    grpc_arg args[S_SETTINGS];
    memset (args, 0, sizeof args);
    for (size_t i = 0; i < S_SETTINGS; i++) {
        args[i].type = GRPC_ARG_INTEGER;
        args[i].key = (char *) settings[i].key;
        args[i].value.integer = settings[i].value;
    }
    grpc_channel_args channel_args = {S_SETTINGS, args};
    self->server = grpc_server_create (&channel_args, NULL);
    grpc_server_register_completion_queue (self->server, self->cq, NULL);

    const struct
    {
        gw_kind_t kind;
        const char *method;
        grpc_server_register_method_payload_handling payload;
    } methods[] = {
        {GW_SUBSCRIBE, "/tether.v1.AgentGateway/AgentRequestSubscribe",
         GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER},
        {GW_PUBLISH, "/tether.v1.AgentGateway/AgentRequestPublish",
         GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER},
        {GW_RESPOND, "/tether.v1.AgentGateway/AgentResponsePublish",
         GRPC_SRM_PAYLOAD_NONE},
        {GW_LIST, "/tether.v1.AgentGateway/ListAgents",
         GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER},
        {GW_HEALTH, "/grpc.health.v1.Health/Check",
         GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER},
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        self->methods[methods[i].kind] = grpc_server_register_method (
            self->server, methods[i].method, NULL, methods[i].payload, 0);
        assert (self->methods[methods[i].kind]);
    }
    grpc_server_credentials *creds = edge_auth_server_credentials (self);
    if (creds) {
        self->port =
            grpc_server_add_http2_port (self->server, cfg->listen, creds);
        grpc_server_credentials_release (creds);
    }
    if (self->port == 0) {
        tlog (TLOG_ERROR, "cannot listen",
              "listen=%s reason=\"address in "
              "use or not valid\"",
              cfg->listen);
        grpc_server_destroy (self->server); //  never started
        self->server = NULL;
        return -1;
    }
    grpc_server_start (self->server);
    const char *colon = strrchr (cfg->listen, ':');
    snprintf (self->listen, sizeof self->listen, "%.*s:%d",
              (int) (colon - cfg->listen), cfg->listen, self->port);
    for (int kind = GW_SUBSCRIBE; kind < GW_KIND_COUNT; kind++)
        for (uint32_t i = 0; i < cfg->posted_per_kind; i++)
            s_post (self, (gw_kind_t) kind);
    return 0;
}

static int
s_start_router (edge_t *self)
{
    const edge_config_t *cfg = self->cfg;
    if (*cfg->router_endpoint) {
        snprintf (self->router_endpoint, sizeof self->router_endpoint, "%s",
                  cfg->router_endpoint);
        return 0;
    }
    //  Embedded: the router core runs on this thread (edge_router.c).
    snprintf (self->router_endpoint, sizeof self->router_endpoint, "embedded");
    uint8_t routing_id[16];
    uint64_t a = s_random_u64 (), b = s_random_u64 ();
    memcpy (routing_id, &a, 8);
    memcpy (routing_id + 8, &b, 8);
    routing_id[0] |= 0x80;
    char why[300] = "";
    self->local = edge_router_new (&cfg->embedded, cfg->monitor, routing_id,
                                   sizeof routing_id, why, sizeof why);
    if (!self->local) {
        char quoted[320];
        tlog (TLOG_ERROR, "router cannot start", "reason=%s",
              tlog_quote (why, quoted, sizeof quoted));
        tlog (TLOG_ERROR, "cannot start the embedded router",
              "monitor=%s hint=\"is the monitor port in use? pass "
              "--monitor '' or another endpoint\"",
              cfg->monitor);
        return -1;
    }
    return 0;
}

//  Connect the DEALER to an external router.  Returns 0 or -1.
static int
s_connect_dealer (edge_t *self)
{
    self->dealer = zsock_new (ZMQ_DEALER);
    assert (self->dealer);
    uint8_t routing_id[16];
    uint64_t a = s_random_u64 (), b = s_random_u64 ();
    memcpy (routing_id, &a, 8);
    memcpy (routing_id + 8, &b, 8);
    routing_id[0] |= 0x80; //  ids starting with 0 are reserved
    zmq_setsockopt (zsock_resolve (self->dealer), ZMQ_ROUTING_ID, routing_id,
                    sizeof routing_id);
    zsock_set_sndhwm (self->dealer, (int) self->cfg->dealer_sndhwm);
    zsock_set_rcvhwm (self->dealer, (int) self->cfg->dealer_rcvhwm);
    zsock_set_sndtimeo (self->dealer, 0);
    zsock_set_linger (self->dealer, (int) self->cfg->dealer_linger_ms);
    if (edge_auth_curve (self, self->dealer))
        return -1;
    if (zsock_connect (self->dealer, "%s", self->router_endpoint)) {
        tlog (TLOG_ERROR, "cannot connect to the router", "router=%s",
              self->router_endpoint);
        return -1;
    }
    return 0;
}

static int
s_connect_router (edge_t *self)
{
    if (!self->local && s_connect_dealer (self))
        return -1;
    return 0;
}

//  The edge's name on the wire: --name, else the listen address, with the
//  host name in place of a wildcard address (two hosts both listening on
//  0.0.0.0:50051 must not look like one edge to the router).
static void
s_set_edge_id (edge_t *self)
{
    const edge_config_t *cfg = self->cfg;
    if (*cfg->name) {
        snprintf (self->edge_id, sizeof self->edge_id, "%s", cfg->name);
        return;
    }
    const char *colon = strrchr (self->listen, ':');
    size_t host_len = (size_t) (colon - self->listen);
    bool wildcard =
        host_len == 0
        || (host_len == 7 && memcmp (self->listen, "0.0.0.0", 7) == 0)
        || (host_len == 4 && memcmp (self->listen, "[::]", 4) == 0)
        || (host_len == 2 && memcmp (self->listen, "::", 2) == 0);
    char host[256] = "";
    if (wildcard && gethostname (host, sizeof host - 1) == 0 && *host)
        snprintf (self->edge_id, sizeof self->edge_id, "%s%s", host, colon);
    else
        snprintf (self->edge_id, sizeof self->edge_id, "%s", self->listen);
}

edge_t *
edge_new (const edge_config_t *cfg)
{
    assert (cfg);
    edge_t *self = (edge_t *) calloc (1, sizeof (edge_t));
    assert (self);
    absl_quiet ();
    self->cfg = cfg;
    self->sigfd = -1;
    self->incarnation = s_random_u64 ();
    self->shutdown_op.kind = GW_OP_COUNT;
    self->calls = zhashx_new ();
    assert (self->calls);
    self->parser = wire_envelope_parser_new ();
    assert (self->parser);
    zhashx_set_key_hasher (self->calls, s_hash);
    zhashx_set_key_comparator (self->calls, s_compare);
    zhashx_set_key_duplicator (self->calls, NULL);
    zhashx_set_key_destructor (self->calls, NULL);

    sigset_t mask;
    sigemptyset (&mask);
    sigaddset (&mask, SIGINT);
    sigaddset (&mask, SIGTERM);
    self->sigfd = signalfd (-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    assert (self->sigfd >= 0);

    //  The PAIR between the CQ thread and us: unbounded (HWM 0).
    char pump_endpoint[64];
    char id[33];
    gw_random_hex (id);
    snprintf (pump_endpoint, sizeof pump_endpoint,
              "inproc://tether-edge-pump-%s", id);
    self->pump_rx = zsock_new (ZMQ_PAIR);
    self->pump_tx = zsock_new (ZMQ_PAIR);
    assert (self->pump_rx && self->pump_tx);
    zsock_set_rcvhwm (self->pump_rx, 0);
    zsock_set_sndhwm (self->pump_rx, 0);
    zsock_set_rcvhwm (self->pump_tx, 0);
    zsock_set_sndhwm (self->pump_tx, 0);
    int rc = zsock_bind (self->pump_rx, "%s", pump_endpoint);
    assert (rc == 0);
    rc = zsock_connect (self->pump_tx, "%s", pump_endpoint);
    assert (rc == 0);

    self->cq = grpc_completion_queue_create_for_next (NULL);
    self->direct = !*cfg->router_endpoint;
    if (!self->direct) {
        rc = pthread_create (&self->pump, NULL, s_pump, self);
        assert (rc == 0);
        self->pump_running = true;
    }
    if (edge_auth_setup (self) || s_start_server (self) || s_start_router (self)
        || s_connect_router (self)) {
        edge_destroy (&self);
        return NULL;
    }

    s_set_edge_id (self);
    int64_t now = zclock_mono ();
    self->rs.alive = true; //  until the liveness window says not
    self->rs.last_heard = now;
    self->next_ping = now + cfg->embedded.core.heartbeat_ms;
    s_send_hello (self);

    tlog (TLOG_INFO, "edge listening",
          "listen=%s router=%s monitor=%s edge=%s max_message_size=%" PRIu32,
          self->listen, self->local ? "embedded" : self->router_endpoint,
          self->local && *cfg->monitor ? cfg->monitor : "none", self->edge_id,
          cfg->embedded.core.max_payload_bytes);
    edge_auth_announce (self);
    if (self->local) {
        //  A reachable address for the hint: loopback for a wildcard.
        char target[300];
        const char *colon = strrchr (self->listen, ':');
        if (strncmp (self->listen, "0.0.0.0:", 8) == 0
            || strncmp (self->listen, "[::]:", 5) == 0)
            snprintf (target, sizeof target, "127.0.0.1%s", colon);
        else
            snprintf (target, sizeof target, "%s", self->listen);
        tlog (TLOG_INFO, "try it",
              "agent=\"tether agent --id dev-1 --edge %s\" "
              "call=\"tether call dev-1 echo --data hello --edge %s\"",
              target, target);
    }
    return self;
}

int
edge_port (edge_t *self)
{
    assert (self);
    return self->port;
}

//  ---- the loop ---------------------------------------------------------

static void
s_begin_stop (edge_t *self, const char *why)
{
    tlog (TLOG_INFO, "edge shutting down", "reason=%s calls=%zu agents=%zu",
          why, zhashx_size (self->calls), self->agents);
    self->stopping = true;
    s_send_bye (self);
    grpc_server_shutdown_and_notify (self->server, self->cq,
                                     &self->shutdown_op);
    edge_subscribe_router_reset (self); //  no more lingering
    gw_call_t *call = (gw_call_t *) zhashx_first (self->calls);
    while (call) {
        s_class (call->kind)->fail (call, "edge shutting down", false);
        call = (gw_call_t *) zhashx_next (self->calls);
    }
    grpc_server_cancel_all_calls (self->server);
}

//  Give the heap's free pages back to the OS after a burst of calls has
//  ended (--trim-after-calls fewer than at the peak): glibc keeps them
//  otherwise, and RSS is what an operator pays for.  The trim waits one
//  heartbeat, so that one trim covers the whole burst, and runs once more
//  five heartbeats later, as a client may close its connections well
//  after their calls.  The cost: malloc_trim walks every
//  malloc arena under its lock (gRPC's threads wait meanwhile; about 90 ms
//  after 10,000 agents left), and the pages fault in again when calls
//  come back.
static void
s_trim_memory (edge_t *self, int64_t now)
{
    uint32_t after = self->cfg->trim_after_calls;
    size_t calls = zhashx_size (self->calls);
    if (!after)
        return;
    if (calls > self->trim_peak)
        self->trim_peak = calls;
    int64_t heartbeat = self->cfg->embedded.core.heartbeat_ms;
    if (!self->trim_due && self->trim_peak - calls >= after) {
        self->trim_due = now + heartbeat;
        self->trim_rounds = 2;
    }
    if (!self->trim_due || now < self->trim_due)
        return;
#ifdef __GLIBC__
    int64_t start = zclock_usecs ();
    malloc_trim (0);
    tlog (TLOG_DEBUG, "memory trimmed", "calls=%zu peak=%zu trim_us=%" PRId64,
          calls, self->trim_peak, zclock_usecs () - start);
#endif
    self->trim_peak = calls;
    //  Once more a little later: connections may close after their calls.
    self->trim_due = --self->trim_rounds ? now + 5 * heartbeat : 0;
}

//  Run timers due at `now`; returns ms until the next one.
static long
s_timers (edge_t *self, int64_t now)
{
    const edge_config_t *cfg = self->cfg;
    s_trim_memory (self, now);
    //  A message the router never got (gw_router_send): once it is
    //  reachable, start again as after its restart; at most once per
    //  heartbeat, as that HELLO may not get through either.
    if (self->rs.resync && self->rs.alive && !self->said_bye
        && now - self->hello_sent_at
               >= (int64_t) cfg->embedded.core.heartbeat_ms) {
        self->rs.resync = false;
        s_router_reset (self, "send-failed");
    }
    if (now >= self->next_ping) {
        s_send_ping (self);
        self->next_ping = now + cfg->embedded.core.heartbeat_ms;
    }
    int64_t lost_at = self->rs.last_heard + cfg->router_liveness_ms;
    if (self->rs.alive && now >= lost_at) {
        self->rs.alive = false;
        tlog (TLOG_WARN, "router lost", "router=%s silent_ms=%" PRId64,
              self->router_endpoint, now - self->rs.last_heard);
        s_fail_client_calls (self, "router unreachable", false);
    }
    int64_t next = self->next_ping;
    if (self->rs.alive && lost_at < next)
        next = lost_at;
    return next > now ? (long) (next - now) : 0;
}

int
edge_run (edge_t *self)
{
    assert (self);
    zmq_pollitem_t items[3];
    memset (items, 0, sizeof items);
    items[0].socket = zsock_resolve (self->pump_rx);
    items[0].events = ZMQ_POLLIN;
    //  The DEALER to an external router, or the embedded router's monitor
    //  (for its subscriptions), or nothing (fd -1 is never ready).
    if (self->dealer)
        items[1].socket = zsock_resolve (self->dealer);
    else if (self->local && edge_router_monitor (self->local))
        items[1].socket = edge_router_monitor (self->local);
    else
        items[1].fd = -1;
    items[1].events = ZMQ_POLLIN;
    items[2].fd = self->sigfd;
    items[2].events = ZMQ_POLLIN;
    int64_t stop_deadline = 0;
    while (true) {
        int64_t now = zclock_mono ();
        if (self->stopping) {
            if (self->server_shutdown && self->posted == 0
                && zhashx_size (self->calls) == 0)
                break;
            if (now >= stop_deadline) {
                tlog (TLOG_WARN, "calls still open at shutdown",
                      "calls=%zu posted=%zu", zhashx_size (self->calls),
                      self->posted);
                break;
            }
        }
        long timeout = s_timers (self, now);
        if (self->local) {
            long due = edge_router_timeout (self->local, now);
            if (due >= 0 && due < timeout)
                timeout = due;
        }
        if (self->stopping && stop_deadline - now < timeout)
            timeout = (long) (stop_deadline - now);
        int rc;
        if (self->direct) {
            //  Wait on gRPC; then the monitor and signals, without waiting.
            if (timeout < 0 || timeout > S_DIRECT_WAIT_MS)
                timeout = S_DIRECT_WAIT_MS;
            s_drain_cq (self, timeout);
            items[0].revents = 0;
            items[1].revents = 0;
            items[2].revents = 0;
            rc = 0;
            int64_t looked = zclock_mono ();
            if (looked >= self->next_look) {
                self->next_look = looked + S_DIRECT_LOOK_MS;
                rc = zmq_poll (items + 1, 2, 0);
            }
        } else
            rc = zmq_poll (items, 3, timeout);
        if (rc == -1) {
            if (errno == EINTR)
                continue;
            tlog (TLOG_ERROR, "poll failed", "error=\"%s\"",
                  zmq_strerror (errno));
            break;
        }
        now = zclock_mono ();
        if (self->local && (items[1].revents & ZMQ_POLLIN))
            edge_router_monitor_ready (self->local);
        if (items[0].revents & ZMQ_POLLIN)
            s_drain_pump (self);
        if (self->dealer && (items[1].revents & ZMQ_POLLIN))
            s_drain_dealer (self, now);
        if (self->local)
            s_drain_local (self, now);
        if (items[2].revents & ZMQ_POLLIN) {
            struct signalfd_siginfo info;
            while (read (self->sigfd, &info, sizeof info) == sizeof info) {
                if (!self->stopping) {
                    s_begin_stop (self, info.ssi_signo == SIGINT ? "SIGINT"
                                                                 : "SIGTERM");
                    stop_deadline =
                        zclock_mono () + self->cfg->shutdown_grace_ms;
                }
            }
        }
    }
    return 0;
}

void
edge_destroy (edge_t **self_p)
{
    assert (self_p);
    edge_t *self = *self_p;
    if (!self)
        return;
    if (self->server) {
        if (!self->stopping) {
            self->stopping = true;
            grpc_server_shutdown_and_notify (self->server, self->cq,
                                             &self->shutdown_op);
            grpc_server_cancel_all_calls (self->server);
        }
        //  Wait for the shutdown tag, handling what comes meanwhile.
        {
            zpoller_t *poller = zpoller_new (self->pump_rx, NULL);
            int64_t until = zclock_mono () + 10000;
            while (!self->server_shutdown && zclock_mono () < until) {
                if (self->direct)
                    s_drain_cq (self, 100);
                else if (zpoller_wait (poller, 100))
                    s_drain_pump (self);
            }
            zpoller_destroy (&poller);
        }
        grpc_server_destroy (self->server);
        self->server = NULL;
    }
    if (self->cq) {
        grpc_completion_queue_shutdown (self->cq);
        if (self->pump_running) {
            //  Drain to GRPC_QUEUE_SHUTDOWN: the CQ thread's last event.
            zpoller_t *poller = zpoller_new (self->pump_rx, NULL);
            while (self->pump_running) {
                if (zpoller_wait (poller, 1000))
                    s_drain_pump (self);
            }
            zpoller_destroy (&poller);
            pthread_join (self->pump, NULL);
        }
        //  Direct: drain to GRPC_QUEUE_SHUTDOWN here.
        while (self->direct && !self->cq_done)
            s_drain_cq (self, 1000);
        grpc_completion_queue_destroy (self->cq);
        self->cq = NULL;
    }
    //  Calls still in the table (grace period ran out) are freed by force.
    gw_call_t *call = (gw_call_t *) zhashx_first (self->calls);
    zlistx_t *left = zlistx_new ();
    while (call) {
        zlistx_add_end (left, call);
        call = (gw_call_t *) zhashx_next (self->calls);
    }
    call = (gw_call_t *) zlistx_first (left);
    while (call) {
        call->done = true;
        call->linger = false;
        call->pending_ops = 0;
        gw_call_maybe_free (&call);
        call = (gw_call_t *) zlistx_next (left);
    }
    zlistx_destroy (&left);
    zsock_destroy (&self->dealer);
    edge_router_destroy (&self->local);
    zsock_destroy (&self->pump_tx);
    zsock_destroy (&self->pump_rx);
    zhashx_destroy (&self->calls);
    wire_envelope_parser_destroy (&self->parser);
    edge_auth_teardown (self);
    if (self->sigfd >= 0)
        close (self->sigfd);
    free (self);
    *self_p = NULL;
}
