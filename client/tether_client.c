/*  =========================================================================
    tether_client - call agents through an edge, list them, check health

    Each call owns a completion queue, so calls are independent and a call
    is driven by whoever iterates it: tether_call_next starts one receive
    and waits for it.  The request is sent, and the client half-closed,
    when the call is created; the final status is collected once the
    response stream ends.
    =========================================================================
*/
#include "tether_internal.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _tether_client_t
{
    tether_conn_t *conn;   //  Channel to the edge
    uint32_t wait_ms;      //  x-wait-for-agent-ms, 0 = not sent
    char *address;         //  host:port, to reopen the channel
    uint32_t max_receive;  //  Largest response message, bytes
    tether_security_t sec; //  TLS and token settings
};

struct _tether_call_t
{
    grpc_call *call;           //  The AgentRequestPublish call
    grpc_completion_queue *cq; //  Its own queue
    tether_tag_t send_tag;     //  Metadata, request, half-close
    tether_tag_t recv_tag;     //  One response message
    tether_tag_t status_tag;   //  Initial metadata and final status
    grpc_byte_buffer *send_buffer;
    grpc_byte_buffer *recv_buffer;
    grpc_metadata_array initial_md;
    grpc_metadata_array trailing_md;
    grpc_status_code status;
    grpc_slice details;
    char *status_message;                //  Copy of details once finished
    Tether__V1__AgentResponse *response; //  Current message, owned
    bool finished;                       //  Final status known
    char wait_value[16]; //  Metadata value, must outlive the batch
};

//  Wait until `tag` completed, recording others on the way.  Calls carry
//  their own deadlines, so the wait has none.
static bool
s_wait (grpc_completion_queue *cq, tether_tag_t *tag)
{
    return tether_tag_wait (cq, tag, gpr_inf_future (GPR_CLOCK_REALTIME), NULL);
}

static char *
s_slice_dup (grpc_slice slice)
{
    size_t len = GRPC_SLICE_LENGTH (slice);
    char *copy = (char *) malloc (len + 1);
    assert (copy);
    memcpy (copy, GRPC_SLICE_START_PTR (slice), len);
    copy[len] = 0;
    return copy;
}

tether_client_t *
tether_client_new (const char *address)
{
    if (!address || !*address)
        return NULL;
    tether_client_t *self = (tether_client_t *) calloc (1, sizeof *self);
    assert (self);
    self->address = strdup (address);
    assert (self->address);
    self->max_receive = TETHER_MAX_RECEIVE_DEFAULT;
    self->conn = tether_conn_new (address, 0, self->max_receive, NULL);
    return self;
}

//  Reopen the channel with the current security settings.
static void
s_client_reopen (tether_client_t *self)
{
    tether_conn_unref (&self->conn);
    self->conn =
        tether_conn_new (self->address, 0, self->max_receive, &self->sec);
}

int
tether_client_set_max_receive (tether_client_t *self, uint32_t bytes)
{
    assert (self);
    if (bytes == 0 || bytes > TETHER_MAX_RECEIVE_LIMIT)
        return -1;
    self->max_receive = bytes;
    s_client_reopen (self);
    return 0;
}

int
tether_client_set_tls (tether_client_t *self,
                       const char *ca_file,
                       const char *cert_file,
                       const char *key_file)
{
    assert (self);
    if (tether_security_set_tls (&self->sec, ca_file, cert_file, key_file))
        return -1;
    s_client_reopen (self);
    return 0;
}

void
tether_client_set_token (tether_client_t *self, const char *token)
{
    assert (self);
    tether_security_set_token (&self->sec, token);
    s_client_reopen (self);
}

void
tether_client_destroy (tether_client_t **self_p)
{
    assert (self_p);
    tether_client_t *self = *self_p;
    if (!self)
        return;
    tether_conn_unref (&self->conn);
    tether_security_clear (&self->sec);
    free (self->address);
    free (self);
    *self_p = NULL;
}

void
tether_client_set_wait_for_agent (tether_client_t *self, uint32_t ms)
{
    assert (self);
    self->wait_ms = ms;
}

tether_call_t *
tether_client_call (tether_client_t *self,
                    const char *agent_id,
                    const char *call_name,
                    const void *payload,
                    size_t size,
                    const char *const *headers,
                    uint32_t timeout_ms)
{
    assert (self);
    assert (payload || size == 0);
    if (!agent_id || !*agent_id || !call_name || !*call_name)
        return NULL;
    tether_call_t *call = (tether_call_t *) calloc (1, sizeof *call);
    assert (call);
    grpc_metadata_array_init (&call->initial_md);
    grpc_metadata_array_init (&call->trailing_md);
    call->details = grpc_empty_slice ();
    call->status = GRPC_STATUS_UNKNOWN;

    //  AgentRequest{agent_id, call, payload, headers}
    Tether__V1__AgentRequest request = TETHER__V1__AGENT_REQUEST__INIT;
    request.agent_id = (char *) agent_id;
    request.call = (char *) call_name;
    request.payload.data = (uint8_t *) payload;
    request.payload.len = size;
    size_t pairs = 0;
    while (headers && headers[pairs * 2] && headers[pairs * 2 + 1])
        pairs++;
    Tether__V1__AgentRequest__HeadersEntry entries[pairs + 1];
    Tether__V1__AgentRequest__HeadersEntry *entry_ps[pairs + 1];
    for (size_t i = 0; i < pairs; i++) {
        Tether__V1__AgentRequest__HeadersEntry init =
            TETHER__V1__AGENT_REQUEST__HEADERS_ENTRY__INIT;
        entries[i] = init;
        entries[i].key = (char *) headers[i * 2];
        entries[i].value = (char *) headers[i * 2 + 1];
        entry_ps[i] = &entries[i];
    }
    request.n_headers = pairs;
    request.headers = entry_ps;
    call->send_buffer = tether_buffer_pack (&request.base);

    call->cq = grpc_completion_queue_create_for_next (NULL);
    call->call = tether_conn_call (self->conn, call->cq, TETHER_METHOD_PUBLISH,
                                   tether_deadline (timeout_ms));

    grpc_metadata md[2];
    memset (md, 0, sizeof md);
    size_t n_md = 0;
    grpc_op ops[4];
    memset (ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (self->wait_ms) {
        snprintf (call->wait_value, sizeof call->wait_value, "%u",
                  self->wait_ms);
        md[n_md].key = grpc_slice_from_static_string ("x-wait-for-agent-ms");
        md[n_md].value = grpc_slice_from_static_string (call->wait_value);
        n_md++;
    }
    n_md += tether_conn_authorize (self->conn, &md[n_md]);
    ops[0].data.send_initial_metadata.count = n_md;
    ops[0].data.send_initial_metadata.metadata = n_md ? md : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = call->send_buffer;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    call->send_tag.pending = true;
    if (grpc_call_start_batch (call->call, ops, 3, &call->send_tag, NULL)
        != GRPC_CALL_OK)
        call->send_tag.pending = false;

    memset (ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[0].data.recv_initial_metadata.recv_initial_metadata = &call->initial_md;
    ops[1].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[1].data.recv_status_on_client.trailing_metadata = &call->trailing_md;
    ops[1].data.recv_status_on_client.status = &call->status;
    ops[1].data.recv_status_on_client.status_details = &call->details;
    call->status_tag.pending = true;
    if (grpc_call_start_batch (call->call, ops, 2, &call->status_tag, NULL)
        != GRPC_CALL_OK) {
        call->status_tag.pending = false;
        call->status = GRPC_STATUS_INTERNAL;
    }
    return call;
}

//  The stream ended: collect the final status.
static void
s_call_finish (tether_call_t *self)
{
    s_wait (self->cq, &self->status_tag);
    s_wait (self->cq, &self->send_tag);
    self->finished = true;
    if (!self->status_message)
        self->status_message = s_slice_dup (self->details);
}

bool
tether_call_next (tether_call_t *self, const uint8_t **data_p, size_t *size_p)
{
    assert (self);
    if (self->response) {
        tether__v1__agent_response__free_unpacked (self->response, NULL);
        self->response = NULL;
    }
    while (!self->finished) {
        grpc_op op;
        memset (&op, 0, sizeof op);
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &self->recv_buffer;
        self->recv_tag.pending = true;
        if (grpc_call_start_batch (self->call, &op, 1, &self->recv_tag, NULL)
            != GRPC_CALL_OK) {
            self->recv_tag.pending = false;
            break;
        }
        if (!s_wait (self->cq, &self->recv_tag) || !self->recv_buffer)
            break;
        size_t size;
        uint8_t *data = tether_buffer_read (self->recv_buffer, &size);
        grpc_byte_buffer_destroy (self->recv_buffer);
        self->recv_buffer = NULL;
        self->response = tether__v1__agent_response__unpack (NULL, size, data);
        free (data);
        if (!self->response) {
            grpc_call_cancel_with_status (self->call, GRPC_STATUS_INTERNAL,
                                          "malformed AgentResponse", NULL);
            self->status_message = strdup ("malformed AgentResponse");
            break;
        }
        //  A status-only message carries nothing to print.
        if (self->response->status_code != 0
            && self->response->payload.len == 0) {
            tether__v1__agent_response__free_unpacked (self->response, NULL);
            self->response = NULL;
            continue;
        }
        if (data_p)
            *data_p = self->response->payload.data;
        if (size_p)
            *size_p = self->response->payload.len;
        return true;
    }
    if (!self->finished)
        s_call_finish (self);
    return false;
}

int
tether_call_status (tether_call_t *self)
{
    assert (self);
    return self->finished ? (int) self->status : TETHER_UNKNOWN;
}

const char *
tether_call_status_message (tether_call_t *self)
{
    assert (self);
    return self->status_message ? self->status_message : "";
}

void
tether_call_cancel (tether_call_t *self)
{
    assert (self);
    grpc_call_cancel (self->call, NULL);
}

void
tether_call_destroy (tether_call_t **self_p)
{
    assert (self_p);
    tether_call_t *self = *self_p;
    if (!self)
        return;
    if (!self->finished)
        grpc_call_cancel (self->call, NULL);
    s_wait (self->cq, &self->recv_tag);
    s_wait (self->cq, &self->status_tag);
    s_wait (self->cq, &self->send_tag);
    grpc_call_unref (self->call);
    tether_cq_destroy (&self->cq);
    if (self->recv_buffer)
        grpc_byte_buffer_destroy (self->recv_buffer);
    grpc_byte_buffer_destroy (self->send_buffer);
    if (self->response)
        tether__v1__agent_response__free_unpacked (self->response, NULL);
    grpc_metadata_array_destroy (&self->initial_md);
    grpc_metadata_array_destroy (&self->trailing_md);
    grpc_slice_unref (self->details);
    free (self->status_message);
    free (self);
    *self_p = NULL;
}

//  One unary call: returns the status; on OK *reply_p gets the reply bytes
//  (caller owns them, free).
static int
s_unary (tether_client_t *self,
         const char *method_name,
         grpc_byte_buffer *request,
         uint32_t timeout_ms,
         uint8_t **reply_p,
         size_t *reply_size_p)
{
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next (NULL);
    grpc_call *call = tether_conn_call (self->conn, cq, method_name,
                                        tether_deadline (timeout_ms));
    grpc_metadata_array initial_md, trailing_md;
    grpc_metadata_array_init (&initial_md);
    grpc_metadata_array_init (&trailing_md);
    grpc_byte_buffer *reply = NULL;
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice ();
    grpc_op ops[6];
    memset (ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    grpc_metadata md;
    ops[0].data.send_initial_metadata.count =
        tether_conn_authorize (self->conn, &md);
    ops[0].data.send_initial_metadata.metadata = &md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = request;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &reply;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    tether_tag_t tag = {true, false};
    if (grpc_call_start_batch (call, ops, 6, &tag, NULL) != GRPC_CALL_OK) {
        tag.pending = false;
        status = GRPC_STATUS_INTERNAL;
    }
    s_wait (cq, &tag);
    *reply_p = NULL;
    *reply_size_p = 0;
    if (status == GRPC_STATUS_OK) {
        if (reply)
            *reply_p = tether_buffer_read (reply, reply_size_p);
        else
            status = GRPC_STATUS_INTERNAL;
    }
    if (reply)
        grpc_byte_buffer_destroy (reply);
    grpc_slice_unref (details);
    grpc_metadata_array_destroy (&initial_md);
    grpc_metadata_array_destroy (&trailing_md);
    grpc_call_unref (call);
    tether_cq_destroy (&cq);
    return (int) status;
}

//  One ListAgents call into `list`.  Returns the gRPC status (INTERNAL
//  when the answer does not parse or does not follow the previous page).
static int
s_list_page (tether_client_t *self,
             const char *prefix,
             uint32_t limit,
             const char *page_token,
             uint32_t timeout_ms,
             tether_agents_t *list)
{
    Tether__V1__ListAgentsRequest request =
        TETHER__V1__LIST_AGENTS_REQUEST__INIT;
    request.prefix = (char *) (prefix ? prefix : "");
    request.limit = limit;
    request.page_token = (char *) (page_token ? page_token : "");
    grpc_byte_buffer *buffer = tether_buffer_pack (&request.base);
    uint8_t *reply;
    size_t size;
    int status =
        s_unary (self, TETHER_METHOD_LIST, buffer, timeout_ms, &reply, &size);
    grpc_byte_buffer_destroy (buffer);
    if (status == TETHER_OK && tether_agents_add_page (list, reply, size))
        status = TETHER_INTERNAL;
    free (reply);
    return status;
}

tether_agents_t *
tether_client_list_agents_page (tether_client_t *self,
                                const char *prefix,
                                uint32_t limit,
                                const char *page_token,
                                uint32_t timeout_ms,
                                int *status_p)
{
    assert (self);
    tether_agents_t *agents = tether_agents_new ();
    int status =
        s_list_page (self, prefix, limit, page_token, timeout_ms, agents);
    if (status != TETHER_OK)
        tether_agents_destroy (&agents);
    if (status_p)
        *status_p = status;
    return agents;
}

tether_agents_t *
tether_client_list_agents (tether_client_t *self,
                           const char *prefix,
                           uint32_t limit,
                           uint32_t timeout_ms,
                           int *status_p)
{
    return tether_client_list_agents_page (self, prefix, limit, NULL,
                                           timeout_ms, status_p);
}

tether_agents_t *
tether_client_list_all_agents (tether_client_t *self,
                               const char *prefix,
                               uint32_t page_size,
                               uint32_t timeout_ms,
                               int *status_p)
{
    assert (self);
    tether_agents_t *agents = tether_agents_new ();
    int64_t deadline = tether_now_ms () + timeout_ms;
    char *token = NULL;
    int status = TETHER_OK;
    while (true) {
        uint32_t left = 0;
        if (timeout_ms) {
            int64_t ms = deadline - tether_now_ms ();
            if (ms <= 0) {
                status = TETHER_DEADLINE_EXCEEDED;
                break;
            }
            left = (uint32_t) ms;
        }
        status = s_list_page (self, prefix, page_size, token, left, agents);
        if (status != TETHER_OK)
            break;
        const char *next = tether_agents_next_page_token (agents);
        if (!*next)
            break;
        //  Pages follow each other in id order (checked as they are
        //  added), so a token that does not move forward is a gateway
        //  going round in circles.
        if (token && strcmp (next, token) <= 0) {
            status = TETHER_INTERNAL;
            break;
        }
        free (token);
        token = strdup (next);
        assert (token);
    }
    free (token);
    if (status != TETHER_OK)
        tether_agents_destroy (&agents);
    if (status_p)
        *status_p = status;
    return agents;
}

int
tether_client_health (tether_client_t *self, uint32_t timeout_ms, int *status_p)
{
    assert (self);
    //  HealthCheckRequest{service: ""} is the empty message.
    grpc_byte_buffer *buffer = tether_buffer_new ("", 0);
    uint8_t *reply;
    size_t size;
    int status =
        s_unary (self, TETHER_METHOD_HEALTH, buffer, timeout_ms, &reply, &size);
    grpc_byte_buffer_destroy (buffer);
    if (status_p)
        *status_p = status;
    int serving = -1;
    if (status == TETHER_OK) {
        //  HealthCheckResponse{status = 1}: field 1, varint, value 1
        //  (SERVING).  Read field 1 wherever it is; other fields are
        //  skipped only when they are varints, which is all there is.
        serving = 0;
        size_t at = 0;
        while (at + 1 < size) {
            uint8_t key = reply[at++];
            uint64_t value = 0;
            int shift = 0;
            while (at < size && shift < 64) {
                uint8_t byte = reply[at++];
                value |= (uint64_t) (byte & 0x7f) << shift;
                shift += 7;
                if (!(byte & 0x80))
                    break;
            }
            if ((key & 7) != 0)
                break;
            if (key >> 3 == 1)
                serving = value == 1;
        }
    }
    free (reply);
    return serving;
}
