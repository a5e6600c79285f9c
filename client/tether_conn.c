/*  =========================================================================
    tether_conn - reference-counted gRPC channel (plaintext or TLS), buffer
    helpers, security settings

    Every channel uses a local subchannel pool, so that a fresh channel to
    an address that just failed connects at once instead of inheriting the
    shared subchannel's reconnect backoff: the agent runs its own backoff.
    =========================================================================
*/
#include "tether_internal.h"

#include <grpc/grpc_security.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>

#include <assert.h>
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

//  Read a whole file (caller owns the text), or NULL.
static char *
s_read_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    char *data = NULL;
    if (fseek (file, 0, SEEK_END) == 0) {
        long end = ftell (file);
        if (end >= 0 && end < 16 * 1024 * 1024
            && fseek (file, 0, SEEK_SET) == 0) {
            data = (char *) malloc ((size_t) end + 1);
            assert (data);
            size_t size = fread (data, 1, (size_t) end, file);
            data[size] = 0;
        }
    }
    fclose (file);
    return data;
}

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
    char *ca = has_ca ? s_read_file (ca_file) : NULL;
    char *cert = has_cert ? s_read_file (cert_file) : NULL;
    char *key = has_key ? s_read_file (key_file) : NULL;
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

const char *
tether_conn_authorization (tether_conn_t *self)
{
    assert (self);
    return self->authorization;
}

tether_conn_t *
tether_conn_new (const char *address,
                 uint32_t keepalive_ms,
                 const tether_security_t *sec)
{
    assert (address);
    grpc_init ();
    tether_conn_t *self = (tether_conn_t *) calloc (1, sizeof *self);
    assert (self);
    atomic_init (&self->refs, 1);
    self->address = strdup (address);
    assert (self->address);
    grpc_arg args[5];
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *) GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
    args[0].value.integer = 1;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *) GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[1].value.integer = 64 * 1024 * 1024;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = (char *) GRPC_ARG_ENABLE_RETRIES;
    args[2].value.integer = 0;
    size_t nargs = 3;
    if (keepalive_ms > 0) {
        args[3].type = GRPC_ARG_INTEGER;
        args[3].key = (char *) GRPC_ARG_KEEPALIVE_TIME_MS;
        args[3].value.integer = (int) keepalive_ms;
        args[4].type = GRPC_ARG_INTEGER;
        args[4].key = (char *) GRPC_ARG_KEEPALIVE_TIMEOUT_MS;
        args[4].value.integer = 20000;
        nargs = 5;
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
