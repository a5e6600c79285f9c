/*  =========================================================================
    tether_internal - helpers shared by the library's own files

    Not installed.  tether_conn_t is a reference-counted gRPC channel: the
    agent opens one per subscription attempt, and each request keeps a
    reference so that it can still answer after the agent moved on to
    another edge.  Each conn holds one grpc_init reference.
    =========================================================================
*/
#ifndef TETHER_INTERNAL_H_INCLUDED
#define TETHER_INTERNAL_H_INCLUDED

#include "tether.h"
#include "tether_log.h"
#include "tether.pb-c.h"

#include <grpc/grpc.h>
#include <grpc/byte_buffer.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#define TETHER_METHOD_SUBSCRIBE "/tether.v1.AgentGateway/AgentRequestSubscribe"
#define TETHER_METHOD_PUBLISH   "/tether.v1.AgentGateway/AgentRequestPublish"
#define TETHER_METHOD_RESPOND   "/tether.v1.AgentGateway/AgentResponsePublish"
#define TETHER_METHOD_LIST      "/tether.v1.AgentGateway/ListAgents"
#define TETHER_METHOD_HEALTH    "/grpc.health.v1.Health/Check"

typedef struct _tether_conn_t tether_conn_t;

//  How to reach an edge securely: TLS roots and client certificate (PEM
//  text read from files at set time), and a bearer token.  All empty =
//  plaintext, no token.
typedef struct
{
    bool tls;            //  speak TLS
    char *ca_pem;        //  roots to verify the edge; NULL = gRPC's default
    char *cert_pem;      //  client certificate chain, or NULL
    char *key_pem;       //  its private key, or NULL
    char *authorization; //  "Bearer TOKEN", or NULL
} tether_security_t;

//  Read the files into `sec` (any may be NULL or empty; TLS is on when
//  ca_file or cert_file is given).  Returns 0, or -1 when a file cannot be
//  read or only one of cert and key is given (then `sec` is unchanged).
int tether_security_set_tls (tether_security_t *sec,
                             const char *ca_file,
                             const char *cert_file,
                             const char *key_file);
//  Set or clear (NULL or "") the bearer token.
void tether_security_set_token (tether_security_t *sec, const char *token);
//  Free what `sec` holds (not `sec`).
void tether_security_clear (tether_security_t *sec);

//  How long an agent's keepalive ping may go unanswered before the
//  connection counts as dead.
#define TETHER_KEEPALIVE_TIMEOUT_MS 10000

//  Open a channel to `address`: plaintext, or TLS as `sec` says (may be
//  NULL).  With `keepalive_ms` > 0, HTTP/2 pings go out after that much
//  silence, with or without calls open, and a ping unanswered for
//  TETHER_KEEPALIVE_TIMEOUT_MS closes the connection, so one that died
//  silently (NAT timeout, pulled cable) is noticed.  Messages larger than
//  `max_receive` bytes are refused (0 = TETHER_MAX_RECEIVE_DEFAULT).  Caller owns the one reference.  THREAD SAFETY: ref/unref
//  from any thread.
tether_conn_t *tether_conn_new (const char *address,
                                uint32_t keepalive_ms,
                                uint32_t max_receive,
                                const tether_security_t *sec);
tether_conn_t *tether_conn_ref (tether_conn_t *self);
void tether_conn_unref (tether_conn_t **self_p);
//  The channel.  Borrowed, valid while a reference is held.
grpc_channel *tether_conn_channel (tether_conn_t *self);
//  Start a call to `method` (a static string) on the channel, reporting
//  to `cq`, ending at `deadline`.  Caller owns the call (grpc_call_unref).
grpc_call *tether_conn_call (tether_conn_t *self,
                             grpc_completion_queue *cq,
                             const char *method,
                             gpr_timespec deadline);
//  When the channel carries a token, fill *md with the "authorization"
//  entry (its slices borrowed from the conn: keep a reference until the
//  batch completed) and return 1; else return 0 and leave *md alone.
size_t tether_conn_authorize (tether_conn_t *self, grpc_metadata *md);
//  The address.  Borrowed, valid while a reference is held.
const char *tether_conn_address (tether_conn_t *self);

//  A byte buffer holding a copy of `size` bytes.  Caller owns it.
grpc_byte_buffer *tether_buffer_new (const void *data, size_t size);
//  A byte buffer holding the packed message.  Caller owns it.
grpc_byte_buffer *tether_buffer_pack (const ProtobufCMessage *message);
//  Copy the buffer's bytes into a fresh allocation (caller owns it, free);
//  *size_p gets the length.  Never NULL (an empty buffer gives a 1-byte
//  allocation).
uint8_t *tether_buffer_read (grpc_byte_buffer *buffer, size_t *size_p);
//  Shut the queue down, drain it, destroy it; sets *cq_p to NULL.  Every
//  call on it must have been unreferenced.
void tether_cq_destroy (grpc_completion_queue **cq_p);

//  A completion tag for a call driven by the thread that waits on its
//  queue: the tag is the address of this struct.
typedef struct
{
    bool pending; //  Batch started, completion not seen
    bool ok;      //  Its success flag once seen
} tether_tag_t;

//  Wait on `cq` until `tag`'s batch completed, recording the completions
//  of other tether_tag_t tags on the way.  When `deadline` passes first,
//  `call` (if not NULL) is cancelled, and the wait goes on until the
//  batch completes, which it then does promptly.  Returns the batch's
//  success flag.
bool tether_tag_wait (grpc_completion_queue *cq,
                      tether_tag_t *tag,
                      gpr_timespec deadline,
                      grpc_call *call);

//  Absolute deadline `ms` from now; 0 means none.
gpr_timespec tether_deadline (uint32_t ms);
//  Monotonic milliseconds.
int64_t tether_now_ms (void);

//  An empty agent list.  Caller owns it.
tether_agents_t *tether_agents_new (void);
//  Unpack one ListAgentsResponse (`size` bytes of `data`, copied) and
//  append its agents.  Returns 0, or -1 (the list unchanged) when the
//  bytes do not parse or the page does not start after the last agent
//  already listed.
int tether_agents_add_page (tether_agents_t *self,
                            const uint8_t *data,
                            size_t size);

//  Requests, as the agent sees them.  The new request has two references:
//  one for the agent's table, one for the handler.  Takes ownership of
//  `message`; takes a new reference on `conn`.  tether_request_end waits
//  up to `end_wait_ms` for the gateway to confirm the end.
tether_request_t *tether_request_new (Tether__V1__AgentRequest **message_p,
                                      tether_conn_t *conn,
                                      uint32_t end_wait_ms);
//  Mark cancelled and run the cancel function (once).  With `abort`, also
//  cancel the response call (the agent is stopping).  Agent thread.
void tether_request_cancel (tether_request_t *self, bool abort);
//  True once the handler ended or destroyed the request.
bool tether_request_ended (tether_request_t *self);
//  Drop the agent table's reference; sets *self_p to NULL.
void tether_request_release (tether_request_t **self_p);

#endif
