/*  =========================================================================
    edge_internal - what the edge's files share: the edge, the call header

    Every gRPC call the edge terminates is one struct per call type
    (edge_subscribe.c, edge_publish.c, edge_respond.c, edge_list.c,
    edge_health.c), each starting with the common header gw_call_t.
    Completion-queue tags are the addresses of the gw_op_t entries embedded
    in that header; the owner thread recovers the call with gw_call_of
    (container_of).  Every accepted call has RECV_CLOSE_ON_SERVER posted
    alone first (edge.c); its completion sets `done`.

    Invariants:
    - Only the owner thread reads or writes a call, and only it starts
      batches (the CQ thread forwards (tag, ok) and does nothing else),
      with one exception, the send chain: a call with a `sendq` hands its
      send path to the CQ thread while a send is in flight.  When that
      send completes, the CQ thread starts the next queued message itself
      instead of waking the owner; only when the queue is empty (or a send
      failed) does it forward the completion, which hands the send path
      back.  So exactly one thread starts sends on a call at any moment:
      the owner while send_busy is false, the CQ thread while it is true.
      The CQ thread touches only sendq's consumer side, send_buf,
      chain_written and the gRPC call then; the owner keeps every other
      field.  With the embedded router there is no CQ thread ("direct",
      edge.c): the owner drains the completion queue itself, and the
      send chain never runs.
    - pending_ops counts batches started and not yet completed; it is
      incremented before grpc_call_start_batch and decremented at once when
      the start fails (no completion will come).
    - A call is freed only when `done` is set and pending_ops is 0, by
      gw_call_maybe_free, and only from the event loop, never from inside
      a handler that still uses it (handlers call it last).
    - At most one SEND_MESSAGE per call is in flight (send_busy).
    =========================================================================
*/
#ifndef TETHER_EDGE_INTERNAL_H
#define TETHER_EDGE_INTERNAL_H

#include <grpc/grpc.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <czmq.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "edge.h"
#include "edge_config.h"
#include "edge_parse.h"
#include "tlog.h"
#include "token.h"
#include "wire_envelope.h"
#include "tether.pb-c.h"

typedef enum
{
    GW_SUBSCRIBE = 1,
    GW_PUBLISH,
    GW_RESPOND,
    GW_LIST,
    GW_HEALTH,
    GW_UNKNOWN, //  any unregistered method: UNIMPLEMENTED
    GW_KIND_COUNT
} gw_kind_t;

typedef enum
{
    GW_OP_NEW = 0,  //  the requested call arrived
    GW_OP_RECV,     //  RECV_MESSAGE
    GW_OP_SEND,     //  SEND_MESSAGE (maybe with initial metadata)
    GW_OP_CLOSE,    //  RECV_CLOSE_ON_SERVER, alone
    GW_OP_FINISH,   //  SEND_STATUS_FROM_SERVER (and what goes
                    //  with it)
    GW_OP_PROGRESS, //  not a gRPC op: the CQ thread's report of
                    //  messages a send chain wrote (`written`)
    GW_OP_COUNT
} gw_op_kind_t;

typedef struct
{
    gw_op_kind_t kind; //  index in gw_call_t.ops
} gw_op_t;

typedef struct _gw_call_t gw_call_t;

//  A bounded single-producer, single-consumer queue of frames.  The owner
//  thread is the only producer; the consumer is whichever thread holds
//  the call's send path (see the send chain above).
typedef struct
{
    zframe_t **slots;      //  mask + 1 entries, after the struct
    uint32_t mask;         //  capacity - 1 (a power of two - 1)
    _Atomic uint32_t head; //  next to pop; written by the consumer
    _Atomic uint32_t tail; //  next to push; written by the producer
} gw_sendq_t;

//  The common header of every call struct.
struct _gw_call_t
{
    gw_kind_t kind;             //  which struct this is
    edge_t *edge;               //  the owning edge
    grpc_call *call;            //  owned reference; NULL until arrival
    uint64_t handle;            //  names the call on the wire; 0 = not yet
    int pending_ops;            //  batches started and not completed
    bool done;                  //  nothing more to do; free when drained
    bool linger;                //  done, but kept until the router answers
    bool md_sent;               //  initial metadata sent (or in flight)
    bool send_busy;             //  a SEND_MESSAGE is in flight
    bool closed;                //  RECV_CLOSE_ON_SERVER completed
    bool finish_started;        //  a status batch was started
    int cancelled;              //  RECV_CLOSE_ON_SERVER's out-parameter
    gpr_timespec deadline;      //  the client's deadline (registered)
    grpc_call_details details;  //  method and host (unregistered calls)
    grpc_metadata_array md;     //  the client's initial metadata
    grpc_byte_buffer *recv_buf; //  initial payload, or RECV_MESSAGE result
    grpc_byte_buffer *send_buf; //  the message of the SEND batch in flight
    grpc_byte_buffer *last_buf; //  the message of the FINISH batch
    gw_op_t ops[GW_OP_COUNT];   //  completion tags, one per op kind
    gw_sendq_t *sendq;          //  messages to write; set = the CQ thread
                                //  may chain sends (owned, freed with the
                                //  call)
    uint32_t progress_every;    //  the CQ thread reports a chain's writes
                                //  every this many (0 = at its end only)
    uint32_t chain_written;     //  CQ thread only: writes not reported
    uint32_t written;           //  owner: messages written, as reported
                                //  by the SEND or PROGRESS event being
                                //  handled
};

//  The embedded router on the owner thread (edge_router.c).
typedef struct _edge_router_t edge_router_t;

//  What the owner thread knows about the router.
typedef struct
{
    uint64_t incarnation; //  the router's, from WELCOME/PONG; 0 = none
    bool alive;           //  heard from within the liveness window
    int64_t last_heard;   //  zclock_mono of the last router message
    bool resync;          //  a send to it failed: HELLO again
} gw_router_state_t;

struct _edge_t
{
    const edge_config_t *cfg;     //  borrowed
    grpc_server *server;          //  owned
    grpc_completion_queue *cq;    //  owned; drained by the CQ thread
    void *methods[GW_KIND_COUNT]; //  registered method handles
    int port;                     //  bound gRPC port
    char listen[300];             //  the listen address with the real port
    char edge_id[300];            //  name on the wire
    uint64_t incarnation;         //  this process's, random
    uint64_t next_handle;         //  handle counter
    zhashx_t *calls;              //  handle -> gw_call_t *, accepted calls
    size_t posted;                //  requested calls not arrived yet
    size_t agents;                //  agent streams open
    zsock_t *dealer;              //  to the router
    edge_router_t *local;         //  embedded router on this thread, or
                                  //  NULL with an external router
    char router_endpoint[256];    //  where the DEALER connects
    zsock_t *pump_rx;             //  owner's end of the CQ-thread PAIR
    zsock_t *pump_tx;             //  the CQ thread's end
    pthread_t pump;               //  the CQ thread
    bool pump_running;            //  the CQ thread was started
    bool direct;                  //  no CQ thread: the owner drains the
                                  //  completion queue itself (embedded
                                  //  router; edge.c)
    bool cq_done;                 //  direct: GRPC_QUEUE_SHUTDOWN was seen
    size_t trim_peak;             //  most calls held since the last trim
    int64_t trim_due;             //  zclock_mono of the next trim; 0 = none
    int trim_rounds;              //  trims left for this burst
    int64_t next_look;            //  direct: zclock_mono of the next look
                                  //  at signals and the monitor
    int sigfd;                    //  signalfd for SIGINT/SIGTERM
    gw_router_state_t rs;         //  router liveness
    int64_t next_ping;            //  zclock_mono of the next PING
    int64_t hello_sent_at;        //  zclock_mono of the last HELLO
    bool stopping;                //  shutting down
    bool said_bye;                //  BYE sent: nothing more to the router
    bool server_shutdown;         //  the server's shutdown tag completed
    gw_op_t shutdown_op;          //  tag for grpc_server_shutdown_and_notify
    uint64_t malformed;           //  router messages dropped as malformed
    uint64_t send_failed;         //  DEALER sends that failed
    bool tls;                     //  the listener speaks TLS
    bool agent_auth;              //  agents must authenticate (client
                                  //  certificates or agent tokens)
    bool client_auth;             //  clients must present a client token
    token_key_t *agent_key;       //  agent token key; owned, NULL = off
    token_key_t *client_key;      //  client token key; owned, NULL = off
    gw_call_t *publish_flush;     //  publish calls with REPLYs to write
                                  //  once the router messages at hand are
                                  //  handled (edge_publish_flush)

    //  Decodes router messages; owned.
    wire_envelope_parser_t *parser;
    //  Kernel randomness not used yet for request ids (gw_request_id):
    //  the last entropy_left bytes.
    uint8_t entropy[512];
    size_t entropy_left;
};

//  ---- edge.c: shared plumbing -------------------------------------------

//  Returns the call owning `op` (container_of).
gw_call_t *gw_call_of (gw_op_t *op);

//  Allocate a call struct of `size` bytes for `kind` (header zeroed and
//  initialised).  Caller owns it.
gw_call_t *gw_call_alloc (edge_t *edge, gw_kind_t kind, size_t size);

//  Start `ops` on the call with tag `which`; counts the pending op.
//  Returns 0, or -1 when grpc_call_start_batch refused (then nothing is
//  pending and the caller should end the call).
int
gw_call_start (gw_call_t *self, gw_op_kind_t which, grpc_op *ops, size_t count);

//  Post RECV_CLOSE_ON_SERVER alone.  Returns 0 or -1.
int gw_call_post_close (gw_call_t *self);

//  Start the final batch: initial metadata when not sent yet, then
//  `message` (taken, may be NULL), then the status.  At most once per call.
//  Returns 0, or -1 (the call was then cancelled with the status).
int gw_call_finish (gw_call_t *self,
                    grpc_status_code status,
                    const char *message,
                    grpc_byte_buffer **message_p);

//  End the call at once with `status` (grpc_call_cancel_with_status): what
//  is queued is dropped.  Safe to call more than once.
void
gw_call_abort (gw_call_t *self, grpc_status_code status, const char *message);

//  A send queue holding at least `capacity` frames.  Caller owns it.
gw_sendq_t *gw_sendq_new (uint32_t capacity);

//  Destroy the queue and the frames left in it; null the pointer.
void gw_sendq_destroy (gw_sendq_t **self_p);

//  Append a frame.  Takes ownership of *frame_p and nulls it, or returns
//  -1 when the queue is full (the caller keeps the frame).  THREAD
//  SAFETY: the owner thread only.
int gw_sendq_push (gw_sendq_t *self, zframe_t **frame_p);

//  Remove the oldest frame.  Returns it (caller owns it) or NULL when
//  empty.  THREAD SAFETY: the thread holding the call's send path.
zframe_t *gw_sendq_pop (gw_sendq_t *self);

//  Frames queued (a snapshot).
size_t gw_sendq_size (gw_sendq_t *self);

//  Start one SEND_MESSAGE of the frame's bytes, with the initial metadata
//  when not sent yet.  Takes ownership of *frame_p and nulls it (the bytes
//  are not copied: gRPC releases the frame when done with them).  Returns
//  0, or -1.  REQUIRES: !send_busy.
int gw_call_send (gw_call_t *self, zframe_t **frame_p);

//  A GW_OP_SEND completed: the call may start its next send, and the
//  message's buffer is released.  The one place a send ends.
void gw_call_send_done (gw_call_t *self);

//  A byte buffer over the frame's bytes, without copying them.  Takes
//  ownership of *frame_p and nulls it.  Returns the buffer; caller owns it.
grpc_byte_buffer *gw_byte_buffer_from_frame (zframe_t **frame_p);

//  Copy the call's metadata value for `key` into a new string, or NULL when
//  absent.  Caller owns the result.
char *gw_call_metadata (gw_call_t *self, const char *key);

//  Find the call's metadata value for `key`.  Returns true and sets
//  *value and *len (borrowed: the bytes belong to the call; not
//  NUL-terminated), or false when absent.
bool gw_call_metadata_find (gw_call_t *self,
                            const char *key,
                            const char **value,
                            size_t *len);

//  The client's address (grpc_call_get_peer) as a logfmt value in `buf`.
//  Returns `buf`.
const char *gw_call_peer (gw_call_t *self, char *buf, size_t size);

//  Take the received message as a frame (NULL when none).  Caller owns it.
zframe_t *gw_call_take_message (gw_call_t *self);

//  Free the call when it is done and no op is pending: removes it from the
//  edge's table and unrefs the gRPC call.  Nulls *self_p when freed.
void gw_call_maybe_free (gw_call_t **self_p);

//  Send one message to the router: `env` (borrowed, packed here) and
//  `payload_p` (taken, may point to NULL).  Counts failures.
void gw_router_send (edge_t *edge, Wire__Envelope *env, zframe_t **payload_p);

//  Look up an accepted call by handle and kind.  Returns it (borrowed) or
//  NULL when unknown or of another kind.
gw_call_t *gw_edge_lookup (edge_t *edge, uint64_t handle, gw_kind_t kind);

//  True when the router is reachable (heard within the liveness window).
bool gw_router_alive (edge_t *edge);

//  128 random bits as 32 hex characters into `buf` (at least 33 bytes).
void gw_random_hex (char *buf);

//  The same for a request id, from the kernel's CSPRNG as well, but read
//  for many ids at once (edge->entropy): one getrandom(2) per 32 ids.
void gw_request_id (edge_t *edge, char *buf);

//  A copy of `text` (NULL = ""); caller owns it.
char *gw_strdup (const char *text);

//  A C string of the `len` bytes at `data` (NULL when `len` is 0), which
//  were checked to hold no NUL; caller owns it.
char *gw_strndup (const uint8_t *data, size_t len);

//  ---- edge_router.c: the embedded router on the owner thread ----------

//  A router core for this edge alone, known to it by `edge_id` (copied),
//  with `cfg` (borrowed) and a monitor XPUB bound to `monitor` (empty =
//  none).  Returns it (caller owns it), or NULL with the reason in `err`
//  when the monitor cannot bind.
edge_router_t *edge_router_new (const router_config_t *cfg,
                                const char *monitor,
                                const void *edge_id,
                                size_t edge_id_size,
                                char *err,
                                size_t err_size);

//  Destroy the router and what it holds; null the pointer.
void edge_router_destroy (edge_router_t **self_p);

//  Hand the router one message from this edge: [envelope][payload?].
//  Takes ownership of *msg_p and nulls it.  The answers wait for
//  edge_router_recv.
void edge_router_send (edge_router_t *self, zmsg_t **msg_p, int64_t now);

//  Run the router's deadlines due at `now`.
void edge_router_tick (edge_router_t *self, int64_t now);

//  Returns ms until the router needs edge_router_tick or has messages
//  waiting (0), or -1 when it needs nothing.
long edge_router_timeout (edge_router_t *self, int64_t now);

//  The next message from the router to this edge, [envelope][payload?],
//  or NULL.  Caller owns it.
zmsg_t *edge_router_recv (edge_router_t *self);

//  The monitor XPUB's libzmq handle to poll, or NULL.
void *edge_router_monitor (edge_router_t *self);

//  The monitor XPUB is readable: take the (un)subscriptions.
void edge_router_monitor_ready (edge_router_t *self);

//  ---- edge_auth.c: who is calling --------------------------------------

//  Load the token keys and decide which checks are on.  Returns 0, or -1
//  after logging why.
int edge_auth_setup (edge_t *self);

//  Wipe and free the keys.
void edge_auth_teardown (edge_t *self);

//  The listener's credentials: TLS (with client certificates requested
//  when a client CA is set) or plaintext.  Returns them (caller owns them)
//  or NULL after logging why.
grpc_server_credentials *edge_auth_server_credentials (edge_t *self);

//  Log the security settings in force, and warn about plaintext on a
//  non-loopback address.  After the server is bound.
void edge_auth_announce (edge_t *self);

//  Apply CURVE to the DEALER when --router-public-key is set.  Returns 0,
//  or -1 after logging why.
int edge_auth_curve (edge_t *self, zsock_t *dealer);

//  Authenticate an agent call.  Returns GRPC_STATUS_OK and sets
//  *identity_p (caller owns it; NULL when agent authentication is off) to
//  the agent ids the caller proved, comma-separated; or
//  GRPC_STATUS_UNAUTHENTICATED with the reason in `why`.
grpc_status_code
gw_auth_agent (gw_call_t *call, char **identity_p, char *why, size_t size);

//  True when `agent_id` is one of the names of `identity`.
bool gw_identity_includes (const char *identity, const char *agent_id);

//  Authenticate a client call.  Returns GRPC_STATUS_OK and sets *scope_p
//  (caller owns it; NULL when client authentication is off: no limit) to
//  the token's scope; or GRPC_STATUS_UNAUTHENTICATED with the reason in
//  `why`.
grpc_status_code
gw_auth_client (gw_call_t *call, char **scope_p, char *why, size_t size);

//  ---- per call type ----------------------------------------------------
//  Each call type is a class: its struct size and what it does on arrival,
//  on each op completion, when the edge fails it, and when it is freed.

typedef struct
{
    const char *name; //  for logs
    size_t size;      //  of the call struct
    //  The call arrived (accepted, in the table, handle set).
    void (*arrived) (gw_call_t *call);
    //  An op other than NEW completed.
    void (*completed) (gw_call_t *call, gw_op_kind_t op, bool ok);
    //  The edge ends the call: shutdown or router lost.  `forget` = the
    //  router no longer knows the call (no CANCEL/END/UNSUBSCRIBE needed).
    void (*fail) (gw_call_t *call, const char *reason, bool forget);
    //  Free what the call type owns (not the header).
    void (*cleanup) (gw_call_t *call);
} gw_class_t;

extern const gw_class_t edge_subscribe_class;
extern const gw_class_t edge_publish_class;
extern const gw_class_t edge_respond_class;
extern const gw_class_t edge_list_class;
extern const gw_class_t edge_health_class;
extern const gw_class_t edge_unknown_class;

//  Router messages, by the call type they address.  Each takes the
//  envelope (borrowed) and the payload (taken; may point to NULL).
void
edge_subscribe_router (edge_t *edge, Wire__Envelope *env, zframe_t **payload_p);
void
edge_publish_router (edge_t *edge, Wire__Envelope *env, zframe_t **payload_p);
//  Start the writes that REPLYs queued (edge->publish_flush).  Call after
//  each run of router messages, before any call can be freed.
void edge_publish_flush (edge_t *edge);
void
edge_respond_router (edge_t *edge, Wire__Envelope *env, zframe_t **payload_p);
void edge_list_router (edge_t *edge, Wire__Envelope *env, zframe_t **payload_p);

//  Returns a new array (caller owns the array, the entries are borrowed
//  until the next event) of the HELLO entries of every agent stream held,
//  and sets *count.
Wire__AgentEntry **edge_subscribe_entries (edge_t *edge, size_t *count);

//  The router forgot this edge (new incarnation or known=false): free the
//  streams that lingered only to learn their session.
void edge_subscribe_router_reset (edge_t *edge);

#endif
