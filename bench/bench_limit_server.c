/*  =========================================================================
    bench_limit_server - what gRPC alone costs here

    A gRPC C core server that implements only AgentRequestPublish, and
    answers it by itself: the `chunks` and `chunk-bytes` headers of the
    AgentRequest (what `tether bench` sends) say how many AgentResponse
    messages of how many payload bytes to stream back, then status OK.  No
    agents, no router, no second thread of ours: one completion queue
    polled by the main thread.  `tether bench --agents 0` against it gives
    the floor any gRPC gateway on this machine stands on, in requests/s and
    CPU per request, to compare Tether's figures with.

    With --relay it is instead the least a gateway with Tether's API must
    do (see "--relay" below): `tether bench --agents N` against it gives the
    floor of two gRPC calls and a stream message per request.

    usage: bench_limit_server [--listen HOST:PORT] [--relay [--read-first]]
                              (default 127.0.0.1:0)
    Logs `msg="limit server listening" listen=HOST:PORT` on stderr; runs
    until SIGINT or SIGTERM.
    =========================================================================
*/
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/time.h>

#include <assert.h>
#include "absl_quiet.h"
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define S_POSTED     64 //  calls requested ahead
#define S_MAX_CHUNKS 1000000
#define S_MAX_BYTES  (4u << 20)

typedef enum
{
    TAG_NEW = 1,  //  a requested call arrived
    TAG_SEND,     //  a send batch completed
    TAG_CLOSE,    //  RECV_CLOSE_ON_SERVER completed
    TAG_SHUTDOWN, //  the server shut down
    TAG_R_NEW,    //  --relay: a requested call arrived
    TAG_R_SEND,   //  --relay: a send batch completed
    TAG_R_RECV,   //  --relay: a RECV_MESSAGE completed
    TAG_R_CLOSE   //  --relay: RECV_CLOSE_ON_SERVER completed
} tag_kind_t;

typedef struct
{
    tag_kind_t kind;
} tag_t;

typedef struct
{
    tag_t tag_new, tag_send, tag_close;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array request_md;
    grpc_byte_buffer *request;
    grpc_byte_buffer *send_buf;
    uint32_t chunks_left;
    grpc_slice response; //  one encoded AgentResponse, reused
    int pending;
    int cancelled;
    bool sent_status;
} call_t;

typedef struct
{
    grpc_server *server;
    grpc_completion_queue *cq;
    void *method;
    int live; //  calls not freed
    bool shutting_down;
} server_t;

#define S_CONTAINER_OF(ptr, type, member)                                      \
    ((type *) ((char *) (ptr) -offsetof (type, member)))

static size_t
s_varint (uint8_t *out, uint64_t value)
{
    size_t n = 0;
    while (value >= 0x80) {
        out[n++] = (uint8_t) (value | 0x80);
        value >>= 7;
    }
    out[n++] = (uint8_t) value;
    return n;
}

static int
s_read_varint (const uint8_t **at, const uint8_t *end, uint64_t *value)
{
    uint64_t result = 0;
    for (int shift = 0; shift < 64 && *at < end; shift += 7) {
        uint8_t byte = *(*at)++;
        result |= (uint64_t) (byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *value = result;
            return 0;
        }
    }
    return -1;
}

//  Parse a decimal string of `size` bytes; returns `fallback` if not one.
static uint32_t
s_number (const uint8_t *text, size_t size, uint32_t fallback, uint32_t max)
{
    if (size == 0 || size > 10)
        return fallback;
    uint64_t value = 0;
    for (size_t i = 0; i < size; i++) {
        if (text[i] < '0' || text[i] > '9')
            return fallback;
        value = value * 10 + (uint64_t) (text[i] - '0');
    }
    return value > max ? max : (uint32_t) value;
}

//  Read the headers map (field 5) of an AgentRequest for `chunks` and
//  `chunk-bytes`.  Malformed bytes leave the defaults (1 x 100).
static void
s_shape (const uint8_t *at, size_t len, uint32_t *chunks, uint32_t *bytes)
{
    *chunks = 1;
    *bytes = 100;
    const uint8_t *end = at + len;
    while (at < end) {
        uint64_t key, size;
        if (s_read_varint (&at, end, &key))
            return;
        if ((key & 7) == 0) {
            if (s_read_varint (&at, end, &size))
                return;
            continue;
        }
        if ((key & 7) != 2 || s_read_varint (&at, end, &size)
            || size > (uint64_t) (end - at))
            return;
        if ((key >> 3) == 5) {
            const uint8_t *e = at, *e_end = at + size;
            const uint8_t *k = NULL, *v = NULL;
            uint64_t k_size = 0, v_size = 0;
            while (e < e_end) {
                uint64_t ekey, esize;
                if (s_read_varint (&e, e_end, &ekey) || (ekey & 7) != 2
                    || s_read_varint (&e, e_end, &esize)
                    || esize > (uint64_t) (e_end - e))
                    break;
                if ((ekey >> 3) == 1) {
                    k = e;
                    k_size = esize;
                } else if ((ekey >> 3) == 2) {
                    v = e;
                    v_size = esize;
                }
                e += esize;
            }
            if (k && v && k_size == 6 && memcmp (k, "chunks", 6) == 0)
                *chunks = s_number (v, v_size, 1, S_MAX_CHUNKS);
            else if (k && v && k_size == 11
                     && memcmp (k, "chunk-bytes", 11) == 0)
                *bytes = s_number (v, v_size, 100, S_MAX_BYTES);
        }
        at += size;
    }
    if (*chunks == 0)
        *chunks = 1;
}

static void
s_request_one (server_t *self)
{
    call_t *call = (call_t *) calloc (1, sizeof *call);
    assert (call);
    call->tag_new.kind = TAG_NEW;
    call->tag_send.kind = TAG_SEND;
    call->tag_close.kind = TAG_CLOSE;
    grpc_metadata_array_init (&call->request_md);
    grpc_call_error rc = grpc_server_request_registered_call (
        self->server, self->method, &call->call, &call->deadline,
        &call->request_md, &call->request, self->cq, self->cq, &call->tag_new);
    assert (rc == GRPC_CALL_OK);
    self->live++;
}

static void
s_call_free (server_t *self, call_t *call)
{
    if (call->request)
        grpc_byte_buffer_destroy (call->request);
    grpc_metadata_array_destroy (&call->request_md);
    if (call->call)
        grpc_call_unref (call->call);
    grpc_slice_unref (call->response);
    free (call);
    self->live--;
}

//  Send the next chunk; the last one carries the status.
static void
s_send (call_t *call, bool first)
{
    grpc_op ops[3];
    memset (ops, 0, sizeof ops);
    size_t n = 0;
    if (first)
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    call->send_buf = grpc_raw_byte_buffer_create (&call->response, 1);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = call->send_buf;
    if (--call->chunks_left == 0) {
        ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[n].data.send_status_from_server.status = GRPC_STATUS_OK;
        ops[n++].data.send_status_from_server.trailing_metadata_count = 0;
        call->sent_status = true;
    }
    grpc_call_error rc =
        grpc_call_start_batch (call->call, ops, n, &call->tag_send, NULL);
    assert (rc == GRPC_CALL_OK);
    call->pending++;
}

static void
s_on_new (server_t *self, call_t *call, bool ok)
{
    if (!ok) {
        //  Shutting down: the requested call never came.
        call->call = NULL;
        call->response = grpc_empty_slice ();
        s_call_free (self, call);
        return;
    }
    if (!self->shutting_down)
        s_request_one (self);
    grpc_op op;
    memset (&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &call->cancelled;
    grpc_call_error rc =
        grpc_call_start_batch (call->call, &op, 1, &call->tag_close, NULL);
    assert (rc == GRPC_CALL_OK);
    call->pending++;

    uint32_t chunks = 1, bytes = 100;
    if (call->request) {
        grpc_byte_buffer_reader reader;
        if (grpc_byte_buffer_reader_init (&reader, call->request)) {
            grpc_slice slice = grpc_byte_buffer_reader_readall (&reader);
            grpc_byte_buffer_reader_destroy (&reader);
            s_shape (GRPC_SLICE_START_PTR (slice), GRPC_SLICE_LENGTH (slice),
                     &chunks, &bytes);
            grpc_slice_unref (slice);
        }
    }
    //  AgentResponse { payload (field 2) = bytes of 'r' }.
    call->response = grpc_slice_malloc ((size_t) bytes + 16);
    uint8_t *out = GRPC_SLICE_START_PTR (call->response);
    out[0] = 0x12;
    size_t n = 1 + s_varint (out + 1, bytes);
    memset (out + n, 'r', bytes);
    GRPC_SLICE_SET_LENGTH (call->response, n + bytes);
    call->chunks_left = chunks;
    s_send (call, true);
}

static void
s_on_event (server_t *self, tag_t *tag, bool ok)
{
    call_t *call;
    switch (tag->kind) {
        case TAG_NEW:
            s_on_new (self, S_CONTAINER_OF (tag, call_t, tag_new), ok);
            return;
        case TAG_SEND:
            call = S_CONTAINER_OF (tag, call_t, tag_send);
            call->pending--;
            grpc_byte_buffer_destroy (call->send_buf);
            call->send_buf = NULL;
            if (ok && call->chunks_left > 0)
                s_send (call, false);
            else if (!ok && !call->sent_status)
                grpc_call_cancel (call->call, NULL);
            break;
        case TAG_CLOSE:
            call = S_CONTAINER_OF (tag, call_t, tag_close);
            call->pending--;
            break;
        default:
            return;
    }
    if (call->pending == 0)
        s_call_free (self, call);
}

//  ---- --relay: the least a gateway with this API must do -----------------
//  Agents subscribe (AgentRequestSubscribe), ListAgents shows them, a
//  client's AgentRequestPublish goes down its agent's stream (the request
//  id appended when empty, as the edge does), and the agent's
//  AgentResponsePublish call (x-request-id) is relayed back.  The gRPC
//  operations are the edge's, batched as the edge batches them (the last
//  response message goes out with the status); nothing else: no router,
//  no wire envelope, no validation, no timers.  What `tether bench
//  --agents N` measures against it is the floor of this API.  With
//  --read-first, gRPC reads a response call's first message before it
//  announces the call (GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER): one
//  RECV_MESSAGE batch fewer per request, what that would save the edge.

#define S_BUCKETS 4096 //  hash buckets of the agent and request tables
#define S_QUEUE   64   //  messages queued per stream

typedef enum
{
    R_PUBLISH = 1,
    R_SUBSCRIBE,
    R_RESPOND,
    R_LIST
} rkind_t;

typedef struct _rcall_t rcall_t;
struct _rcall_t
{
    rkind_t kind;
    tag_t tag_new, tag_send, tag_recv, tag_close;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *recv_buf; //  initial payload, or RECV_MESSAGE
    grpc_byte_buffer *send_buf; //  in flight
    int pending;
    int cancelled;
    bool closed;      //  RECV_CLOSE_ON_SERVER completed
    bool md_sent;     //  initial metadata sent
    bool send_busy;   //  a send is in flight
    bool finished;    //  the status batch was started
    bool finish_wait; //  publish: the response ended; status after
                      //  the queue
    bool listed;      //  in a table
    char id[160];     //  agent id (subscribe), request id (others)
    rcall_t *hnext;   //  next in its hash bucket
    grpc_byte_buffer *queue[S_QUEUE];
    unsigned qhead, qcount;
};

typedef struct
{
    server_t *server;
    void *methods[R_LIST + 1];
    rcall_t *agents[S_BUCKETS];   //  subscribe calls by agent id
    rcall_t *requests[S_BUCKETS]; //  publish calls by request id
    uint64_t next_id;
    size_t agent_count;
    bool read_first; //  --read-first: gRPC reads a response call's first
                     //  message before the call is announced
} relay_t;

static uint32_t
s_hash (const char *text)
{
    uint32_t h = 2166136261u;
    for (; *text; text++)
        h = (h ^ (uint8_t) *text) * 16777619u;
    return h & (S_BUCKETS - 1);
}

static rcall_t *
s_table_find (rcall_t **table, const char *id)
{
    for (rcall_t *c = table[s_hash (id)]; c; c = c->hnext)
        if (strcmp (c->id, id) == 0)
            return c;
    return NULL;
}

static void
s_table_remove (rcall_t **table, rcall_t *call)
{
    if (!call->listed)
        return;
    rcall_t **at = &table[s_hash (call->id)];
    while (*at && *at != call)
        at = &(*at)->hnext;
    if (*at)
        *at = call->hnext;
    call->listed = false;
}

static void
s_table_add (rcall_t **table, rcall_t *call)
{
    uint32_t b = s_hash (call->id);
    call->hnext = table[b];
    table[b] = call;
    call->listed = true;
}

static void
s_relay_post (relay_t *self, rkind_t kind)
{
    rcall_t *call = (rcall_t *) calloc (1, sizeof *call);
    assert (call);
    call->kind = kind;
    call->tag_new.kind = TAG_R_NEW;
    call->tag_send.kind = TAG_R_SEND;
    call->tag_recv.kind = TAG_R_RECV;
    call->tag_close.kind = TAG_R_CLOSE;
    grpc_metadata_array_init (&call->md);
    grpc_call_error rc = grpc_server_request_registered_call (
        self->server->server, self->methods[kind], &call->call, &call->deadline,
        &call->md,
        kind == R_RESPOND && !self->read_first ? NULL : &call->recv_buf,
        self->server->cq, self->server->cq, &call->tag_new);
    assert (rc == GRPC_CALL_OK);
    self->server->live++;
}

static void
s_relay_free (relay_t *self, rcall_t *call)
{
    s_table_remove (call->kind == R_SUBSCRIBE ? self->agents : self->requests,
                    call);
    while (call->qcount) {
        grpc_byte_buffer_destroy (call->queue[call->qhead]);
        call->qhead = (call->qhead + 1) % S_QUEUE;
        call->qcount--;
    }
    if (call->recv_buf)
        grpc_byte_buffer_destroy (call->recv_buf);
    if (call->send_buf)
        grpc_byte_buffer_destroy (call->send_buf);
    grpc_metadata_array_destroy (&call->md);
    if (call->call)
        grpc_call_unref (call->call);
    free (call);
    self->server->live--;
}

static void
s_relay_start (rcall_t *call, tag_t *tag, grpc_op *ops, size_t n)
{
    grpc_call_error rc = grpc_call_start_batch (call->call, ops, n, tag, NULL);
    assert (rc == GRPC_CALL_OK);
    call->pending++;
}

//  The final batch: initial metadata when not sent, `message` (taken, may
//  be NULL), the status.
static void
s_relay_finish (rcall_t *call,
                grpc_status_code status,
                grpc_byte_buffer *message)
{
    if (call->finished || call->closed) {
        if (message)
            grpc_byte_buffer_destroy (message);
        return;
    }
    call->finished = true;
    grpc_op ops[3];
    memset (ops, 0, sizeof ops);
    size_t n = 0;
    if (!call->md_sent)
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    call->md_sent = true;
    if (message) {
        call->send_buf = message;
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = message;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n++].data.send_status_from_server.status = status;
    s_relay_start (call, &call->tag_send, ops, n);
    call->send_busy = true;
}

static int
s_queue_push (rcall_t *call, grpc_byte_buffer *message)
{
    if (call->qcount == S_QUEUE)
        return -1;
    call->queue[(call->qhead + call->qcount) % S_QUEUE] = message;
    call->qcount++;
    return 0;
}

static grpc_byte_buffer *
s_queue_pop (rcall_t *call)
{
    grpc_byte_buffer *message = call->queue[call->qhead];
    call->qhead = (call->qhead + 1) % S_QUEUE;
    call->qcount--;
    return message;
}

//  Write what is queued, one message at a time.  A publish call keeps its
//  newest message back until the response ends or another follows, so the
//  last one goes out with the status (as the edge does).
static void
s_relay_pump (rcall_t *call)
{
    while (!call->send_busy && !call->finished && !call->closed
           && call->qcount > 0) {
        if (call->kind == R_PUBLISH && call->qcount == 1) {
            if (!call->finish_wait)
                return;
            s_relay_finish (call, GRPC_STATUS_OK, s_queue_pop (call));
            return;
        }
        grpc_op ops[2];
        memset (ops, 0, sizeof ops);
        size_t n = 0;
        if (!call->md_sent)
            ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        call->md_sent = true;
        call->send_buf = s_queue_pop (call);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = call->send_buf;
        s_relay_start (call, &call->tag_send, ops, n);
        call->send_busy = true;
    }
    if (call->kind == R_PUBLISH && call->finish_wait && !call->send_busy
        && call->qcount == 0)
        s_relay_finish (call, GRPC_STATUS_OK, NULL);
}

//  The top-level length-delimited field `number` of an encoded message:
//  the last occurrence, or NULL.
static const uint8_t *
s_pb_string (const uint8_t *at, size_t len, uint32_t number, size_t *size)
{
    const uint8_t *end = at + len, *found = NULL;
    *size = 0;
    while (at < end) {
        uint64_t key, value;
        if (s_read_varint (&at, end, &key))
            break;
        if ((key & 7) == 0) {
            if (s_read_varint (&at, end, &value))
                break;
            continue;
        }
        if ((key & 7) != 2 || s_read_varint (&at, end, &value)
            || value > (uint64_t) (end - at))
            break;
        if ((key >> 3) == number) {
            found = at;
            *size = (size_t) value;
        }
        at += value;
    }
    return found;
}

static grpc_slice
s_take_slice (grpc_byte_buffer **buf_p)
{
    grpc_slice slice = grpc_empty_slice ();
    grpc_byte_buffer_reader reader;
    if (*buf_p && grpc_byte_buffer_reader_init (&reader, *buf_p)) {
        slice = grpc_byte_buffer_reader_readall (&reader);
        grpc_byte_buffer_reader_destroy (&reader);
    }
    if (*buf_p)
        grpc_byte_buffer_destroy (*buf_p);
    *buf_p = NULL;
    return slice;
}

static void
s_copy_id (char *dest, size_t size, const uint8_t *id, size_t len)
{
    if (len >= size)
        len = size - 1;
    memcpy (dest, id, len);
    dest[len] = 0;
}

static void
s_relay_publish (relay_t *self, rcall_t *call)
{
    grpc_slice request = s_take_slice (&call->recv_buf);
    const uint8_t *data = GRPC_SLICE_START_PTR (request);
    size_t len = GRPC_SLICE_LENGTH (request), size;
    const uint8_t *agent_id = s_pb_string (data, len, 2, &size);
    char agent[160];
    s_copy_id (agent, sizeof agent, agent_id, agent_id ? size : 0);
    const uint8_t *id = s_pb_string (data, len, 1, &size);
    if (id && size) {
        s_copy_id (call->id, sizeof call->id, id, size);
    } else {
        //  Append field 1: the last one wins.
        snprintf (call->id, sizeof call->id, "%032" PRIx64, ++self->next_id);
        grpc_slice longer = grpc_slice_malloc (len + 2 + 32);
        uint8_t *out = GRPC_SLICE_START_PTR (longer);
        memcpy (out, data, len);
        out[len] = 0x0a;
        out[len + 1] = 32;
        memcpy (out + len + 2, call->id, 32);
        grpc_slice_unref (request);
        request = longer;
    }
    rcall_t *stream = s_table_find (self->agents, agent);
    if (!stream || s_table_find (self->requests, call->id)) {
        grpc_slice_unref (request);
        s_relay_finish (
            call, stream ? GRPC_STATUS_ALREADY_EXISTS : GRPC_STATUS_NOT_FOUND,
            NULL);
        return;
    }
    grpc_byte_buffer *message = grpc_raw_byte_buffer_create (&request, 1);
    grpc_slice_unref (request);
    if (s_queue_push (stream, message)) {
        grpc_byte_buffer_destroy (message);
        s_relay_finish (call, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL);
        return;
    }
    s_table_add (self->requests, call);
    s_relay_pump (stream);
}

static void
s_relay_subscribe (relay_t *self, rcall_t *call)
{
    grpc_slice info = s_take_slice (&call->recv_buf);
    size_t size;
    const uint8_t *id = s_pb_string (GRPC_SLICE_START_PTR (info),
                                     GRPC_SLICE_LENGTH (info), 1, &size);
    s_copy_id (call->id, sizeof call->id, id, id ? size : 0);
    grpc_slice_unref (info);
    rcall_t *older = s_table_find (self->agents, call->id);
    if (older) {
        s_table_remove (self->agents, older);
        self->agent_count--;
    }
    s_table_add (self->agents, call);
    self->agent_count++;
    grpc_op op;
    memset (&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_INITIAL_METADATA;
    call->md_sent = true;
    s_relay_start (call, &call->tag_send, &op, 1);
    call->send_busy = true;
}

static void
s_relay_recv (rcall_t *call)
{
    grpc_op op;
    memset (&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &call->recv_buf;
    s_relay_start (call, &call->tag_recv, &op, 1);
}

static grpc_byte_buffer *
s_empty_message (void)
{
    grpc_slice slice = grpc_empty_slice ();
    return grpc_raw_byte_buffer_create (&slice, 1);
}

//  A response message arrived (recv_buf), or the response ended (NULL).
static void
s_relay_received (relay_t *self, rcall_t *call, bool ok)
{
    rcall_t *pub = s_table_find (self->requests, call->id);
    if (!ok || !call->recv_buf) {
        //  Half-close: the response ended.
        s_relay_finish (call, GRPC_STATUS_OK, s_empty_message ());
        if (pub) {
            s_table_remove (self->requests, pub);
            pub->finish_wait = true;
            s_relay_pump (pub);
        }
        return;
    }
    if (!pub || s_queue_push (pub, call->recv_buf)) {
        s_relay_finish (call, GRPC_STATUS_NOT_FOUND, NULL);
        return;
    }
    call->recv_buf = NULL;
    s_relay_pump (pub);
    s_relay_recv (call);
}

static void
s_relay_respond (relay_t *self, rcall_t *call)
{
    for (size_t i = 0; i < call->md.count; i++) {
        grpc_metadata *m = &call->md.metadata[i];
        if (grpc_slice_str_cmp (m->key, "x-request-id") == 0)
            s_copy_id (call->id, sizeof call->id,
                       GRPC_SLICE_START_PTR (m->value),
                       GRPC_SLICE_LENGTH (m->value));
    }
    //  --read-first: the first message (or NULL) came with the call.
    if (self->read_first)
        s_relay_received (self, call, true);
    else
        s_relay_recv (call);
}

static void
s_relay_list (relay_t *self, rcall_t *call)
{
    if (call->recv_buf)
        grpc_byte_buffer_destroy (call->recv_buf);
    call->recv_buf = NULL;
    //  ListAgentsResponse { repeated AgentInfo agents = 1 { agent_id = 1 } }
    size_t max = 16 + self->agent_count * 180;
    uint8_t *out = (uint8_t *) malloc (max);
    assert (out);
    size_t n = 0;
    for (size_t b = 0; b < S_BUCKETS; b++)
        for (rcall_t *c = self->agents[b]; c; c = c->hnext) {
            size_t id_len = strlen (c->id);
            if (n + 8 + id_len > max)
                break;
            out[n++] = 0x0a;
            n += s_varint (out + n, 2 + id_len);
            out[n++] = 0x0a;
            out[n++] = (uint8_t) id_len;
            memcpy (out + n, c->id, id_len);
            n += id_len;
        }
    grpc_slice slice = grpc_slice_from_copied_buffer ((const char *) out, n);
    free (out);
    grpc_byte_buffer *message = grpc_raw_byte_buffer_create (&slice, 1);
    grpc_slice_unref (slice);
    s_relay_finish (call, GRPC_STATUS_OK, message);
}

static void
s_relay_event (relay_t *self, tag_t *tag, bool ok)
{
    rcall_t *call;
    switch (tag->kind) {
        case TAG_R_NEW:
            call = S_CONTAINER_OF (tag, rcall_t, tag_new);
            if (!ok) {
                s_relay_free (self, call);
                return;
            }
            if (!self->server->shutting_down)
                s_relay_post (self, call->kind);
            {
                grpc_op op;
                memset (&op, 0, sizeof op);
                op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
                op.data.recv_close_on_server.cancelled = &call->cancelled;
                s_relay_start (call, &call->tag_close, &op, 1);
            }
            if (call->kind == R_PUBLISH)
                s_relay_publish (self, call);
            else if (call->kind == R_SUBSCRIBE)
                s_relay_subscribe (self, call);
            else if (call->kind == R_RESPOND)
                s_relay_respond (self, call);
            else
                s_relay_list (self, call);
            return;
        case TAG_R_SEND:
            call = S_CONTAINER_OF (tag, rcall_t, tag_send);
            call->pending--;
            call->send_busy = false;
            if (call->send_buf)
                grpc_byte_buffer_destroy (call->send_buf);
            call->send_buf = NULL;
            if (ok)
                s_relay_pump (call);
            break;
        case TAG_R_RECV:
            call = S_CONTAINER_OF (tag, rcall_t, tag_recv);
            call->pending--;
            s_relay_received (self, call, ok);
            break;
        case TAG_R_CLOSE:
            call = S_CONTAINER_OF (tag, rcall_t, tag_close);
            call->pending--;
            call->closed = true;
            if (call->kind == R_SUBSCRIBE) {
                if (call->listed)
                    self->agent_count--;
                s_table_remove (self->agents, call);
            } else if (call->kind == R_PUBLISH)
                s_table_remove (self->requests, call);
            break;
        default:
            return;
    }
    if (call->pending == 0 && call->closed)
        s_relay_free (self, call);
}

int
main (int argc, char **argv)
{
    const char *listen = "127.0.0.1:0";
    bool relay_mode = false, read_first = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "--listen") == 0 && i + 1 < argc)
            listen = argv[++i];
        else if (strcmp (argv[i], "--relay") == 0)
            relay_mode = true;
        else if (strcmp (argv[i], "--read-first") == 0)
            read_first = true;
        else {
            fprintf (stderr, "usage: bench_limit_server [--listen HOST:PORT] "
                             "[--relay [--read-first]]\n");
            return strcmp (argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    sigset_t mask;
    sigemptyset (&mask);
    sigaddset (&mask, SIGINT);
    sigaddset (&mask, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &mask, NULL);
    int signal_fd = signalfd (-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    assert (signal_fd >= 0);

    absl_quiet (); //  the floor is measured as the edge runs
    grpc_init ();
    server_t self;
    memset (&self, 0, sizeof self);
    self.cq = grpc_completion_queue_create_for_next (NULL);
    grpc_arg args[2];
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *) GRPC_ARG_ALLOW_REUSEPORT;
    args[0].value.integer = 0;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *) GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[1].value.integer = 64 << 20;
    grpc_channel_args channel_args = {2, args};
    self.server = grpc_server_create (&channel_args, NULL);
    grpc_server_register_completion_queue (self.server, self.cq, NULL);
    relay_t *relay = NULL;
    if (relay_mode) {
        relay = (relay_t *) calloc (1, sizeof *relay);
        assert (relay);
        relay->server = &self;
        relay->read_first = read_first;
        const struct
        {
            rkind_t kind;
            const char *method;
            grpc_server_register_method_payload_handling payload;
        } methods[] = {
            {R_PUBLISH, "/tether.v1.AgentGateway/AgentRequestPublish",
             GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER},
            {R_SUBSCRIBE, "/tether.v1.AgentGateway/AgentRequestSubscribe",
             GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER},
            {R_RESPOND, "/tether.v1.AgentGateway/AgentResponsePublish",
             read_first ? GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER
                        : GRPC_SRM_PAYLOAD_NONE},
            {R_LIST, "/tether.v1.AgentGateway/ListAgents",
             GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER},
        };
        for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
            relay->methods[methods[i].kind] = grpc_server_register_method (
                self.server, methods[i].method, NULL, methods[i].payload, 0);
    } else
        self.method = grpc_server_register_method (
            self.server, "/tether.v1.AgentGateway/AgentRequestPublish", NULL,
            GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create ();
    int port = grpc_server_add_http2_port (self.server, listen, creds);
    grpc_server_credentials_release (creds);
    if (port == 0) {
        fprintf (stderr, "bench_limit_server: cannot listen on %s\n", listen);
        grpc_server_destroy (self.server);
        grpc_completion_queue_destroy (self.cq);
        grpc_shutdown ();
        return 1;
    }
    grpc_server_start (self.server);
    char host[256];
    snprintf (host, sizeof host, "%s", listen);
    char *colon = strrchr (host, ':');
    if (colon)
        *colon = 0;
    fprintf (stderr,
             "level=info svc=bench-limit-server msg=\"limit server "
             "listening\" listen=%s:%d pid=%d\n",
             host, port, (int) getpid ());
    for (int i = 0; i < S_POSTED; i++) {
        if (!relay) {
            s_request_one (&self);
            continue;
        }
        for (int kind = R_PUBLISH; kind <= R_LIST; kind++)
            s_relay_post (relay, (rkind_t) kind);
    }

    tag_t shutdown_tag = {TAG_SHUTDOWN};
    bool server_down = false;
    while (!server_down) {
        grpc_event ev = grpc_completion_queue_next (
            self.cq,
            gpr_time_add (gpr_now (GPR_CLOCK_MONOTONIC),
                          gpr_time_from_millis (200, GPR_TIMESPAN)),
            NULL);
        if (ev.type == GRPC_OP_COMPLETE) {
            if (((tag_t *) ev.tag)->kind == TAG_SHUTDOWN)
                server_down = true;
            else if (relay)
                s_relay_event (relay, (tag_t *) ev.tag, ev.success != 0);
            else
                s_on_event (&self, (tag_t *) ev.tag, ev.success != 0);
        }
        struct signalfd_siginfo info;
        if (!self.shutting_down
            && read (signal_fd, &info, sizeof info) == (ssize_t) sizeof info) {
            self.shutting_down = true;
            grpc_server_shutdown_and_notify (self.server, self.cq,
                                             &shutdown_tag);
            grpc_server_cancel_all_calls (self.server);
        }
    }
    //  Calls still finishing after the shutdown tag are drained below.
    while (self.live > 0) {
        grpc_event ev = grpc_completion_queue_next (
            self.cq, gpr_inf_future (GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_OP_COMPLETE && relay)
            s_relay_event (relay, (tag_t *) ev.tag, ev.success != 0);
        else if (ev.type == GRPC_OP_COMPLETE)
            s_on_event (&self, (tag_t *) ev.tag, ev.success != 0);
    }
    free (relay);
    grpc_server_destroy (self.server);
    grpc_completion_queue_shutdown (self.cq);
    while (grpc_completion_queue_next (
               self.cq, gpr_inf_future (GPR_CLOCK_REALTIME), NULL)
               .type
           != GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy (self.cq);
    grpc_shutdown ();
    close (signal_fd);
    return 0;
}
