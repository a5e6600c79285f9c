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

    usage: bench_limit_server [--listen HOST:PORT]   (default 127.0.0.1:0)
    Logs `msg="limit server listening" listen=HOST:PORT` on stderr; runs
    until SIGINT or SIGTERM.
    =========================================================================
*/
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/time.h>

#include <assert.h>
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
    TAG_NEW = 1, //  a requested call arrived
    TAG_SEND,    //  a send batch completed
    TAG_CLOSE,   //  RECV_CLOSE_ON_SERVER completed
    TAG_SHUTDOWN //  the server shut down
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

int
main (int argc, char **argv)
{
    const char *listen = "127.0.0.1:0";
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "--listen") == 0 && i + 1 < argc)
            listen = argv[++i];
        else {
            fprintf (stderr,
                     "usage: bench_limit_server [--listen HOST:PORT]\n");
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
    for (int i = 0; i < S_POSTED; i++)
        s_request_one (&self);

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
        if (ev.type == GRPC_OP_COMPLETE)
            s_on_event (&self, (tag_t *) ev.tag, ev.success != 0);
    }
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
