/*  =========================================================================
    tether_conn - reference-counted gRPC channel (plaintext or TLS), security
    settings, and the helpers every call of the library uses (calls,
    authorization metadata, completion tags and queues, buffers)

    Every channel uses a local subchannel pool, so that a fresh channel to
    an address that just failed connects at once instead of inheriting the
    shared subchannel's reconnect backoff: the agent runs its own backoff.
    =========================================================================
*/
#include "tether_internal.h"
#include "tfile.h"

#include <grpc/grpc_security.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>

#include <assert.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct _tether_conn_t
{
    atomic_int refs;       //  References held
    char *address;         //  host:port
    grpc_channel *channel; //  Owned
    char *authorization;   //  "Bearer TOKEN" or NULL; owned
};

static void
s_wipe_free (char *text)
{
    if (text) {
        memset (text, 0, strlen (text));
        free (text);
    }
}

int
tether_security_set_tls (tether_security_t *sec,
                         const char *ca_file,
                         const char *cert_file,
                         const char *key_file)
{
    assert (sec);
    bool has_ca = ca_file && *ca_file;
    bool has_cert = cert_file && *cert_file;
    bool has_key = key_file && *key_file;
    if (has_cert != has_key)
        return -1;
    char *ca = has_ca ? tfile_read (ca_file, TFILE_PEM_MAX) : NULL;
    char *cert = has_cert ? tfile_read (cert_file, TFILE_PEM_MAX) : NULL;
    char *key = has_key ? tfile_read (key_file, TFILE_PEM_MAX) : NULL;
    if ((has_ca && !ca) || (has_cert && !cert) || (has_key && !key)) {
        free (ca);
        free (cert);
        s_wipe_free (key);
        return -1;
    }
    free (sec->ca_pem);
    free (sec->cert_pem);
    s_wipe_free (sec->key_pem);
    sec->ca_pem = ca;
    sec->cert_pem = cert;
    sec->key_pem = key;
    sec->tls = has_ca || has_cert;
    return 0;
}

void
tether_security_set_token (tether_security_t *sec, const char *token)
{
    assert (sec);
    s_wipe_free (sec->authorization);
    sec->authorization = NULL;
    if (token && *token) {
        size_t size = strlen (token) + 8;
        sec->authorization = (char *) malloc (size);
        assert (sec->authorization);
        snprintf (sec->authorization, size, "Bearer %s", token);
    }
}

void
tether_security_clear (tether_security_t *sec)
{
    assert (sec);
    free (sec->ca_pem);
    free (sec->cert_pem);
    s_wipe_free (sec->key_pem);
    s_wipe_free (sec->authorization);
    memset (sec, 0, sizeof *sec);
}

#define S_MAX_ARGS 8

//  Append an integer channel argument to `args` (S_MAX_ARGS long).
static void
s_arg_int (grpc_arg *args, size_t *nargs_p, const char *key, int value)
{
    assert (*nargs_p < S_MAX_ARGS);
    grpc_arg *arg = &args[(*nargs_p)++];
    arg->type = GRPC_ARG_INTEGER;
    arg->key = (char *) key;
    arg->value.integer = value;
}

tether_conn_t *
tether_conn_new (const char *address,
                 uint32_t keepalive_ms,
                 uint32_t max_receive,
                 const tether_security_t *sec)
{
    assert (address);
    grpc_init ();
    tether_conn_t *self = (tether_conn_t *) calloc (1, sizeof *self);
    assert (self);
    atomic_init (&self->refs, 1);
    self->address = strdup (address);
    assert (self->address);
    grpc_arg args[S_MAX_ARGS];
    size_t nargs = 0;
    s_arg_int (args, &nargs, GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    if (max_receive == 0 || max_receive > INT_MAX)
        max_receive = max_receive ? INT_MAX : TETHER_MAX_RECEIVE_DEFAULT;
    s_arg_int (args, &nargs, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
               (int) max_receive);
    s_arg_int (args, &nargs, GRPC_ARG_ENABLE_RETRIES, 0);
    if (keepalive_ms > 0) {
        //  Ping after keepalive_ms of silence, with or without a call
        //  open, with no cap on pings between data frames: an idle
        //  subscription sends no data for hours.  The edge accepts a ping
        //  every 10 s by default (docs/configuration.md).  The minimum
        //  interval between sent pings has no effect in gRPC 1.51 but
        //  limits older cores a device may ship with.
        int ms = keepalive_ms > INT_MAX ? INT_MAX : (int) keepalive_ms;
        s_arg_int (args, &nargs, GRPC_ARG_KEEPALIVE_TIME_MS, ms);
        s_arg_int (args, &nargs, GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                   TETHER_KEEPALIVE_TIMEOUT_MS);
        s_arg_int (args, &nargs, GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
        s_arg_int (args, &nargs, GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
        s_arg_int (args, &nargs,
                   GRPC_ARG_HTTP2_MIN_SENT_PING_INTERVAL_WITHOUT_DATA_MS, ms);
    }
    grpc_channel_args channel_args = {nargs, args};
    grpc_channel_credentials *creds = NULL;
    if (sec && sec->tls) {
        grpc_ssl_pem_key_cert_pair pair = {sec->key_pem, sec->cert_pem};
        creds = grpc_ssl_credentials_create_ex (
            sec->ca_pem, sec->cert_pem ? &pair : NULL, NULL, NULL);
    } else
        creds = grpc_insecure_credentials_create ();
    if (sec && sec->authorization) {
        self->authorization = strdup (sec->authorization);
        assert (self->authorization);
    }
    self->channel = grpc_channel_create (address, creds, &channel_args);
    grpc_channel_credentials_release (creds);
    assert (self->channel);
    return self;
}

tether_conn_t *
tether_conn_ref (tether_conn_t *self)
{
    assert (self);
    atomic_fetch_add (&self->refs, 1);
    return self;
}

void
tether_conn_unref (tether_conn_t **self_p)
{
    assert (self_p);
    tether_conn_t *self = *self_p;
    if (!self)
        return;
    *self_p = NULL;
    if (atomic_fetch_sub (&self->refs, 1) != 1)
        return;
    grpc_channel_destroy (self->channel);
    s_wipe_free (self->authorization);
    free (self->address);
    free (self);
    grpc_shutdown ();
}

grpc_channel *
tether_conn_channel (tether_conn_t *self)
{
    assert (self);
    return self->channel;
}

const char *
tether_conn_address (tether_conn_t *self)
{
    assert (self);
    return self->address;
}

grpc_call *
tether_conn_call (tether_conn_t *self,
                  grpc_completion_queue *cq,
                  const char *method,
                  gpr_timespec deadline)
{
    assert (self && cq && method);
    return grpc_channel_create_call (
        self->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
        grpc_slice_from_static_string (method), NULL, deadline, NULL);
}

size_t
tether_conn_authorize (tether_conn_t *self, grpc_metadata *md)
{
    assert (self && md);
    if (!self->authorization)
        return 0;
    memset (md, 0, sizeof *md);
    md->key = grpc_slice_from_static_string ("authorization");
    md->value = grpc_slice_from_static_string (self->authorization);
    return 1;
}

void
tether_cq_destroy (grpc_completion_queue **cq_p)
{
    assert (cq_p);
    grpc_completion_queue *cq = *cq_p;
    if (!cq)
        return;
    grpc_completion_queue_shutdown (cq);
    while (grpc_completion_queue_next (cq, gpr_inf_future (GPR_CLOCK_REALTIME),
                                       NULL)
               .type
           != GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy (cq);
    *cq_p = NULL;
}

bool
tether_tag_wait (grpc_completion_queue *cq,
                 tether_tag_t *tag,
                 gpr_timespec deadline,
                 grpc_call *call)
{
    assert (cq && tag);
    while (tag->pending) {
        grpc_event event = grpc_completion_queue_next (cq, deadline, NULL);
        if (event.type == GRPC_QUEUE_TIMEOUT && call) {
            grpc_call_cancel (call, NULL);
            deadline = gpr_inf_future (GPR_CLOCK_MONOTONIC);
            continue;
        }
        if (event.type != GRPC_OP_COMPLETE)
            break;
        tether_tag_t *done = (tether_tag_t *) event.tag;
        done->pending = false;
        done->ok = event.success != 0;
    }
    return tag->ok;
}

grpc_byte_buffer *
tether_buffer_new (const void *data, size_t size)
{
    grpc_slice slice =
        grpc_slice_from_copied_buffer ((const char *) data, size);
    grpc_byte_buffer *buffer = grpc_raw_byte_buffer_create (&slice, 1);
    grpc_slice_unref (slice);
    return buffer;
}

grpc_byte_buffer *
tether_buffer_pack (const ProtobufCMessage *message)
{
    size_t size = protobuf_c_message_get_packed_size (message);
    grpc_slice slice = grpc_slice_malloc (size);
    protobuf_c_message_pack (message, GRPC_SLICE_START_PTR (slice));
    grpc_byte_buffer *buffer = grpc_raw_byte_buffer_create (&slice, 1);
    grpc_slice_unref (slice);
    return buffer;
}

uint8_t *
tether_buffer_read (grpc_byte_buffer *buffer, size_t *size_p)
{
    grpc_byte_buffer_reader reader;
    size_t size = grpc_byte_buffer_length (buffer);
    uint8_t *data = (uint8_t *) malloc (size ? size : 1);
    assert (data);
    size_t at = 0;
    if (grpc_byte_buffer_reader_init (&reader, buffer)) {
        grpc_slice slice;
        while (grpc_byte_buffer_reader_next (&reader, &slice)) {
            size_t len = GRPC_SLICE_LENGTH (slice);
            if (at + len <= size)
                memcpy (data + at, GRPC_SLICE_START_PTR (slice), len);
            at += len;
            grpc_slice_unref (slice);
        }
        grpc_byte_buffer_reader_destroy (&reader);
    }
    *size_p = at <= size ? at : size;
    return data;
}

gpr_timespec
tether_deadline (uint32_t ms)
{
    if (ms == 0)
        return gpr_inf_future (GPR_CLOCK_MONOTONIC);
    return gpr_time_add (gpr_now (GPR_CLOCK_MONOTONIC),
                         gpr_time_from_millis (ms, GPR_TIMESPAN));
}

int64_t
tether_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
