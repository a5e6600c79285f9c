/*  =========================================================================
    tether_request - one request handed to an agent's handler

    A request is shared by two owners: the agent's table (so a cancel notice
    can find it) and the handler (which answers it).  Each holds a
    reference; the last one frees it.

    The answer travels on a client-streaming AgentResponsePublish call with
    metadata x-request-id, opened by the first send (or by the end).  The
    call has a completion queue of its own, so a handler may send from any
    thread, including inline on the agent's thread, and every send blocks
    until gRPC took the message: flow control reaches the handler.

    Locks: `cb_mutex` guards the cancel function and is held while it runs,
    so ending a request waits for a cancel function in progress and never
    frees what it still uses; `send_mutex` serialises senders and is the
    only lock held while waiting on the completion queue; `mutex` guards
    the small shared fields (call pointer, abort flag, refs).
    =========================================================================
*/
#include "tether_internal.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct _tether_request_t
{
    Tether__V1__AgentRequest *message; //  Owned, immutable
    tether_conn_t *conn;               //  Reference, for the response call
    uint32_t end_wait_ms;              //  Bound on the wait in _end
    atomic_bool cancelled;             //  Gateway cancelled, or agent stopped
    atomic_bool ended;                 //  Handler ended or destroyed it

    pthread_mutex_t cb_mutex; //  Guards and serialises the cancel fn
    tether_cancel_fn *cancel_fn;
    void *cancel_arg;

    pthread_mutex_t mutex; //  Guards refs, call, aborted
    int refs;              //  Agent table + handler
    bool aborted;          //  Response call must not (or no more) run

    pthread_mutex_t send_mutex; //  Serialises everything below
    grpc_call *call;            //  Response call, NULL until opened
    grpc_completion_queue *cq;  //  Its queue
    bool sent_metadata;         //  x-request-id went out
    bool over;                  //  Call can carry no more messages
    tether_tag_t send_tag;      //  Send batch
    tether_tag_t recv_tag;      //  Receive batch (status)
    grpc_metadata_array initial_md;
    grpc_metadata_array trailing_md;
    grpc_byte_buffer *recv_message;
    grpc_status_code status;
    grpc_slice details;
};

tether_request_t *
tether_request_new (Tether__V1__AgentRequest **message_p,
                    tether_conn_t *conn,
                    uint32_t end_wait_ms)
{
    assert (message_p && *message_p);
    tether_request_t *self = (tether_request_t *) calloc (1, sizeof *self);
    assert (self);
    self->message = *message_p;
    *message_p = NULL;
    self->conn = tether_conn_ref (conn);
    self->end_wait_ms = end_wait_ms;
    atomic_init (&self->cancelled, false);
    atomic_init (&self->ended, false);
    pthread_mutex_init (&self->cb_mutex, NULL);
    pthread_mutex_init (&self->mutex, NULL);
    pthread_mutex_init (&self->send_mutex, NULL);
    self->refs = 2;
    grpc_metadata_array_init (&self->initial_md);
    grpc_metadata_array_init (&self->trailing_md);
    self->details = grpc_empty_slice ();
    return self;
}

static void
s_unref (tether_request_t *self)
{
    pthread_mutex_lock (&self->mutex);
    int refs = --self->refs;
    pthread_mutex_unlock (&self->mutex);
    if (refs > 0)
        return;
    if (self->call)
        grpc_call_unref (self->call);
    tether_cq_destroy (&self->cq);
    grpc_metadata_array_destroy (&self->initial_md);
    grpc_metadata_array_destroy (&self->trailing_md);
    if (self->recv_message)
        grpc_byte_buffer_destroy (self->recv_message);
    grpc_slice_unref (self->details);
    tether__v1__agent_request__free_unpacked (self->message, NULL);
    tether_conn_unref (&self->conn);
    pthread_mutex_destroy (&self->cb_mutex);
    pthread_mutex_destroy (&self->mutex);
    pthread_mutex_destroy (&self->send_mutex);
    free (self);
}

//  Wait until `tag`'s batch completed; past `deadline` (the gateway did
//  not answer in time) the call is cancelled.  Requires send_mutex.
//  Returns the batch's success flag.
static bool
s_wait (tether_request_t *self, tether_tag_t *tag, gpr_timespec deadline)
{
    return tether_tag_wait (self->cq, tag, deadline, self->call);
}

//  Open the response call.  Requires send_mutex.  Returns 0 or -1.
static int
s_open (tether_request_t *self)
{
    if (self->call)
        return 0;
    self->cq = grpc_completion_queue_create_for_next (NULL);
    grpc_call *call =
        tether_conn_call (self->conn, self->cq, TETHER_METHOD_RESPOND,
                          gpr_inf_future (GPR_CLOCK_REALTIME));
    pthread_mutex_lock (&self->mutex);
    self->call = call;
    bool aborted = self->aborted;
    pthread_mutex_unlock (&self->mutex);
    if (aborted)
        grpc_call_cancel (call, NULL);

    grpc_op ops[3];
    memset (ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[0].data.recv_initial_metadata.recv_initial_metadata = &self->initial_md;
    ops[1].op = GRPC_OP_RECV_MESSAGE;
    ops[1].data.recv_message.recv_message = &self->recv_message;
    ops[2].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[2].data.recv_status_on_client.trailing_metadata = &self->trailing_md;
    ops[2].data.recv_status_on_client.status = &self->status;
    ops[2].data.recv_status_on_client.status_details = &self->details;
    self->recv_tag.pending = true;
    if (grpc_call_start_batch (call, ops, 3, &self->recv_tag, NULL)
        != GRPC_CALL_OK) {
        self->recv_tag.pending = false;
        self->over = true;
        return -1;
    }
    return 0;
}

//  Start one send batch: metadata first time, optional message, optional
//  half-close; wait for it.  Requires send_mutex and an open call.
static int
s_send (tether_request_t *self, grpc_byte_buffer *message, bool close)
{
    grpc_op ops[3];
    memset (ops, 0, sizeof ops);
    size_t nops = 0;
    grpc_metadata md[2];
    memset (md, 0, sizeof md);
    if (!self->sent_metadata) {
        md[0].key = grpc_slice_from_static_string ("x-request-id");
        md[0].value = grpc_slice_from_static_string (self->message->id);
        size_t n_md = 1 + tether_conn_authorize (self->conn, &md[1]);
        ops[nops].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[nops].data.send_initial_metadata.count = n_md;
        ops[nops].data.send_initial_metadata.metadata = md;
        nops++;
        self->sent_metadata = true;
    }
    if (message) {
        ops[nops].op = GRPC_OP_SEND_MESSAGE;
        ops[nops].data.send_message.send_message = message;
        nops++;
    }
    if (close) {
        ops[nops].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
        nops++;
    }
    self->send_tag.pending = true;
    if (grpc_call_start_batch (self->call, ops, nops, &self->send_tag, NULL)
        != GRPC_CALL_OK) {
        self->send_tag.pending = false;
        self->over = true;
        return -1;
    }
    bool ok =
        s_wait (self, &self->send_tag, gpr_inf_future (GPR_CLOCK_REALTIME));
    if (!ok || close)
        self->over = true;
    return ok ? 0 : -1;
}

const char *
tether_request_id (tether_request_t *self)
{
    assert (self);
    return self->message->id;
}

const char *
tether_request_call (tether_request_t *self)
{
    assert (self);
    return self->message->call;
}

const uint8_t *
tether_request_payload (tether_request_t *self, size_t *size_p)
{
    assert (self);
    if (size_p)
        *size_p = self->message->payload.len;
    return self->message->payload.data;
}

const char *
tether_request_header (tether_request_t *self, const char *key)
{
    assert (self);
    //  The last entry with a key wins, as in protobuf's map merge.
    for (size_t i = self->message->n_headers; key && i > 0; i--)
        if (strcmp (self->message->headers[i - 1]->key, key) == 0)
            return self->message->headers[i - 1]->value;
    return NULL;
}

size_t
tether_request_header_count (tether_request_t *self)
{
    assert (self);
    return self->message->n_headers;
}

int
tether_request_header_at (tether_request_t *self,
                          size_t index,
                          const char **key_p,
                          const char **value_p)
{
    assert (self);
    if (index >= self->message->n_headers)
        return -1;
    if (key_p)
        *key_p = self->message->headers[index]->key;
    if (value_p)
        *value_p = self->message->headers[index]->value;
    return 0;
}

bool
tether_request_cancelled (tether_request_t *self)
{
    assert (self);
    return atomic_load (&self->cancelled);
}

void
tether_request_set_cancel_fn (tether_request_t *self,
                              tether_cancel_fn *fn,
                              void *arg)
{
    assert (self);
    pthread_mutex_lock (&self->cb_mutex);
    self->cancel_fn = fn;
    self->cancel_arg = arg;
    if (fn && atomic_load (&self->cancelled))
        fn (self, arg);
    pthread_mutex_unlock (&self->cb_mutex);
}

void
tether_request_cancel (tether_request_t *self, bool abort)
{
    assert (self);
    if (abort) {
        pthread_mutex_lock (&self->mutex);
        self->aborted = true;
        if (self->call)
            grpc_call_cancel (self->call, NULL);
        pthread_mutex_unlock (&self->mutex);
    }
    if (atomic_exchange (&self->cancelled, true))
        return;
    pthread_mutex_lock (&self->cb_mutex);
    if (self->cancel_fn)
        self->cancel_fn (self, self->cancel_arg);
    pthread_mutex_unlock (&self->cb_mutex);
}

bool
tether_request_ended (tether_request_t *self)
{
    assert (self);
    return atomic_load (&self->ended);
}

void
tether_request_release (tether_request_t **self_p)
{
    assert (self_p);
    if (*self_p)
        s_unref (*self_p);
    *self_p = NULL;
}

int
tether_request_send (tether_request_t *self, const void *data, size_t size)
{
    assert (self);
    assert (data || size == 0);
    int rc = -1;
    pthread_mutex_lock (&self->send_mutex);
    if (!self->over && s_open (self) == 0) {
        Tether__V1__AgentResponse response = TETHER__V1__AGENT_RESPONSE__INIT;
        response.payload.data = (uint8_t *) data;
        response.payload.len = size;
        grpc_byte_buffer *buffer = tether_buffer_pack (&response.base);
        rc = s_send (self, buffer, false);
        grpc_byte_buffer_destroy (buffer);
    }
    pthread_mutex_unlock (&self->send_mutex);
    return rc;
}

//  Forget the cancel function: after this returns, it is not running and
//  never runs again.
static void
s_forget_cancel_fn (tether_request_t *self)
{
    pthread_mutex_lock (&self->cb_mutex);
    self->cancel_fn = NULL;
    self->cancel_arg = NULL;
    pthread_mutex_unlock (&self->cb_mutex);
}

//  The handler is done with the request: cancel a response call that is
//  still open and wait for it, release send_mutex (held by the caller),
//  mark the request ended and drop the handler's reference.
static void
s_finish (tether_request_t *self)
{
    if (self->call && self->recv_tag.pending) {
        grpc_call_cancel (self->call, NULL);
        s_wait (self, &self->recv_tag, gpr_inf_future (GPR_CLOCK_REALTIME));
    }
    self->over = true;
    pthread_mutex_unlock (&self->send_mutex);
    atomic_store (&self->ended, true);
    s_unref (self);
}

int
tether_request_end (tether_request_t **self_p, int status, const char *message)
{
    assert (self_p);
    tether_request_t *self = *self_p;
    if (!self)
        return -1;
    *self_p = NULL;
    s_forget_cancel_fn (self);
    int rc = -1;
    pthread_mutex_lock (&self->send_mutex);
    bool skip = self->over || (atomic_load (&self->cancelled) && !self->call);
    if (!skip && s_open (self) == 0) {
        grpc_byte_buffer *buffer = NULL;
        if (status != TETHER_OK) {
            Tether__V1__AgentResponse response =
                TETHER__V1__AGENT_RESPONSE__INIT;
            response.status_code = status;
            response.status_message = (char *) (message ? message : "");
            buffer = tether_buffer_pack (&response.base);
        }
        if (s_send (self, buffer, true) == 0) {
            //  The gateway answers once the request is finished; bound the
            //  wait in case it never does.
            s_wait (self, &self->recv_tag, tether_deadline (self->end_wait_ms));
            rc = self->status == GRPC_STATUS_OK ? 0 : -1;
        }
        if (buffer)
            grpc_byte_buffer_destroy (buffer);
    }
    s_finish (self);
    return rc;
}

void
tether_request_destroy (tether_request_t **self_p)
{
    assert (self_p);
    tether_request_t *self = *self_p;
    if (!self)
        return;
    *self_p = NULL;
    s_forget_cancel_fn (self);
    pthread_mutex_lock (&self->send_mutex);
    s_finish (self);
}
