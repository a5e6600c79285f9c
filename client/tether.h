/*  =========================================================================
    tether - the agent and client library for Tether

    libtether speaks tether.v1.AgentGateway (proto/tether.proto) to a
    tether-edge over gRPC, plaintext or TLS, optionally with a bearer token
    (docs/security.md).  It has two halves:

    - the agent (tether_agent_t): what a device runs.  It keeps one
      subscription stream open to an edge, reconnects with capped
      exponential backoff and jitter, rotates across several edge addresses,
      and hands each request to your handler as a tether_request_t;
    - the client (tether_client_t): what an operator runs.  It calls an agent
      through an edge and iterates over the response messages
      (tether_call_t), lists connected agents, and checks the edge's health.

    Ownership rules, as everywhere in Tether:
    - `T **x_p` arguments: the callee takes ownership and sets *x_p to NULL;
    - `T *` arguments: borrowed for the duration of the call;
    - a returned pointer is either "caller owns" (destroy it with the
      matching _destroy) or "borrowed, valid until X" - each comment says
      which.
    Strings passed in are copied unless said otherwise.

    Threads: every object is used from one thread at a time, except where a
    comment says THREAD SAFETY.  The library initialises gRPC itself.
    =========================================================================
*/
#ifndef TETHER_H_INCLUDED
#define TETHER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TETHER_VERSION_MAJOR 0
#define TETHER_VERSION_MINOR 1
#define TETHER_VERSION_PATCH 0

//  gRPC status codes, with the numbers gRPC gives them.
typedef enum
{
    TETHER_OK = 0,
    TETHER_CANCELLED = 1,
    TETHER_UNKNOWN = 2,
    TETHER_INVALID_ARGUMENT = 3,
    TETHER_DEADLINE_EXCEEDED = 4,
    TETHER_NOT_FOUND = 5,
    TETHER_ALREADY_EXISTS = 6,
    TETHER_PERMISSION_DENIED = 7,
    TETHER_RESOURCE_EXHAUSTED = 8,
    TETHER_FAILED_PRECONDITION = 9,
    TETHER_ABORTED = 10,
    TETHER_OUT_OF_RANGE = 11,
    TETHER_UNIMPLEMENTED = 12,
    TETHER_INTERNAL = 13,
    TETHER_UNAVAILABLE = 14,
    TETHER_DATA_LOSS = 15,
    TETHER_UNAUTHENTICATED = 16
} tether_status_t;

//  Exit codes of the `tether` command line for a final call status:
//  0 for OK, TETHER_EXIT_STATUS_BASE + code for any other gRPC status
//  (11 CANCELLED ... 26 UNAUTHENTICATED).  1 and 2 are left for local
//  failures and usage errors.
#define TETHER_EXIT_STATUS_BASE 10

//  Returns the upper-case gRPC name of `code` ("DEADLINE_EXCEEDED"), or
//  "UNKNOWN_STATUS" for a number outside 0..16.  Borrowed, static string.
const char *tether_status_name (int code);

//  Returns the status whose name is `name` (case-insensitive), or -1.
int tether_status_from_name (const char *name);

//  Returns the process exit code for a final call status: 0 for OK,
//  TETHER_EXIT_STATUS_BASE + code for 1..16, and TETHER_EXIT_STATUS_BASE +
//  TETHER_UNKNOWN for anything else.
int tether_status_exit_code (int code);

//  Returns the status an exit code stands for (the inverse of
//  tether_status_exit_code), or -1 for codes it never produces.
int tether_status_from_exit_code (int exit_code);

//  -------------------------------------------------------------------------
//  Logging.  The library writes logfmt lines on stderr by default:
//      ts=... level=info svc=tether-agent msg="connecting" edge=h:1 attempt=1
//  A log function replaces that; it is called from library threads with a
//  complete line without the trailing newline (borrowed for the call).

typedef enum
{
    TETHER_LOG_DEBUG = 0,
    TETHER_LOG_INFO = 1,
    TETHER_LOG_WARN = 2,
    TETHER_LOG_ERROR = 3,
    TETHER_LOG_OFF = 4
} tether_log_level_t;

typedef void (tether_log_fn) (tether_log_level_t level,
                              const char *line,
                              void *arg);

//  -------------------------------------------------------------------------
//  The agent

typedef struct _tether_agent_t tether_agent_t;
typedef struct _tether_request_t tether_request_t;

//  Jitter applied to each backoff delay d:
//  NONE waits d; FULL waits uniformly in [0, d]; EQUAL waits d/2 plus
//  uniformly [0, d/2].
typedef enum
{
    TETHER_JITTER_NONE = 0,
    TETHER_JITTER_FULL = 1,
    TETHER_JITTER_EQUAL = 2
} tether_jitter_t;

//  Called once per request, on the thread running tether_agent_run.  The
//  handler takes ownership of `request`: it must eventually end it with
//  tether_request_end (or tether_request_destroy), from this thread or any
//  other, inline or later.  It should return quickly: requests are read
//  one after another, so long work belongs on a thread of its own.
typedef void (tether_handler_fn) (tether_agent_t *agent,
                                  tether_request_t *request,
                                  void *arg);

//  Called when the gateway cancels a request (`cancel: true`: the client
//  gave up or its deadline passed) or the agent stops.  Runs on the agent's
//  thread, or inside tether_request_set_cancel_fn when the request is
//  already cancelled; it must not block and must not end the request.
typedef void (tether_cancel_fn) (tether_request_t *request, void *arg);

//  Create an agent for `agent_id`, reaching the edges in `edges`: one or
//  more "host:port" separated by commas, tried in turn.  Returns NULL when
//  agent_id is empty or edges holds no address.  Caller owns the agent.
tether_agent_t *tether_agent_new (const char *edges, const char *agent_id);

//  Destroy the agent.  Call it only after tether_agent_run has returned.
//  Requests still held by handlers stay valid and may still be ended.
void tether_agent_destroy (tether_agent_t **self_p);

//  Add or replace a label sent with the subscription.  Call before run.
void tether_agent_set_label (tether_agent_t *self,
                             const char *key,
                             const char *value);

//  Set the request handler.  Without one, every request is answered
//  UNIMPLEMENTED.  Call before run.
void tether_agent_set_handler (tether_agent_t *self,
                               tether_handler_fn *handler,
                               void *arg);

//  Set the reconnect backoff: the n-th consecutive failure waits
//  min(max_ms, initial_ms * multiplier^(n-1)), then jitter.  Defaults:
//  500 ms, 30000 ms, 2.0, TETHER_JITTER_FULL.  Returns -1 (and changes
//  nothing) when initial_ms is 0, max_ms < initial_ms or multiplier < 1.
int tether_agent_set_backoff (tether_agent_t *self,
                              uint32_t initial_ms,
                              uint32_t max_ms,
                              double multiplier,
                              tether_jitter_t jitter);

//  After the edge says ABORTED "superseded" (another subscription with the
//  same id took over), wait at least this long, with jitter, before trying
//  again; the failure count keeps growing, so two devices sharing an id
//  settle into slow alternation instead of a fight.  Default 10000 ms.
void tether_agent_set_superseded_delay (tether_agent_t *self, uint32_t ms);

//  Send an HTTP/2 keepalive ping after `ms` of silence on the connection
//  (0 = never), with or without a call open, and drop the connection when
//  a ping goes unanswered for 10 s, so a connection that died without a
//  word (NAT timeout) is noticed and the agent reconnects.  Default
//  30000 ms, below common NAT idle timeouts.  A tether-edge accepts pings
//  every 10 s or more (its --min-ping-interval); plain gRPC servers refuse
//  pings more frequent than every 5 minutes and end the connection
//  ("too_many_pings"), so talk to one of those with 300000 or more.
void tether_agent_set_keepalive (tether_agent_t *self, uint32_t ms);

//  A subscription counts as stable once it carried a request or stayed up
//  this long; only a stable one resets the backoff failure count.
//  Default TETHER_STABLE_DEFAULT_MS.
#define TETHER_STABLE_DEFAULT_MS 10000
void tether_agent_set_stable_time (tether_agent_t *self, uint32_t ms);

//  When a stable subscription ends UNAVAILABLE (its edge is shutting down),
//  the agent moves to the next address after a random wait in [0, ms], so
//  a fleet cut off together spreads its reconnects (0 = at once).  Default
//  TETHER_ROTATE_DELAY_DEFAULT_MS.
#define TETHER_ROTATE_DELAY_DEFAULT_MS 1000
void tether_agent_set_rotate_delay (tether_agent_t *self, uint32_t ms);

//  Largest message accepted from the gateway, in bytes (requests for an
//  agent, responses for a client).  Default TETHER_MAX_RECEIVE_DEFAULT;
//  returns -1 (and changes nothing) when bytes is 0 or above
//  TETHER_MAX_RECEIVE_LIMIT.  Call before run.
#define TETHER_MAX_RECEIVE_DEFAULT (64u * 1024 * 1024)
#define TETHER_MAX_RECEIVE_LIMIT   0x7fffffffu
int tether_agent_set_max_receive (tether_agent_t *self, uint32_t bytes);

//  tether_request_end waits for the gateway to confirm the end of the
//  response call, at most this long.  Default TETHER_END_WAIT_DEFAULT_MS.
//  Applies to requests received after the call.
#define TETHER_END_WAIT_DEFAULT_MS 30000
void tether_agent_set_end_wait (tether_agent_t *self, uint32_t ms);

//  Speak TLS to the edge.  `ca_file`: PEM roots that sign the edge's
//  certificate (NULL = gRPC's default roots); `cert_file` and `key_file`:
//  this agent's client certificate and key for mutual TLS (both or
//  neither).  TLS is on when ca_file or cert_file is given.  Returns 0, or
//  -1 when a file cannot be read (nothing changes).  Call before run.
int tether_agent_set_tls (tether_agent_t *self,
                          const char *ca_file,
                          const char *cert_file,
                          const char *key_file);

//  Send `token` (an agent token from `tether token`) as
//  `authorization: Bearer TOKEN` on every call; NULL or "" sends none.
//  Call before run.
void tether_agent_set_token (tether_agent_t *self, const char *token);

//  Seed the jitter random generator (default: from the clock and the pid).
//  For tests.
void tether_agent_set_seed (tether_agent_t *self, uint64_t seed);

//  Replace the default stderr logger; `fn` NULL restores it.  `level` is
//  the lowest level passed on.
void tether_agent_set_log (tether_agent_t *self,
                           tether_log_level_t level,
                           tether_log_fn *fn,
                           void *arg);

//  Run until tether_agent_stop: subscribe, dispatch requests, reconnect.
//  Returns 0 after a stop, -1 when called twice.  Blocks the calling thread.
int tether_agent_run (tether_agent_t *self);

//  Ask tether_agent_run to return: the stream is cancelled, requests still
//  running are cancelled (their cancel functions run), and run returns.
//  THREAD SAFETY: may be called from any thread, also before run (run then
//  returns at once), and more than once.  Not async-signal-safe: from a
//  signal, use a thread that waits for it (sigwait).
void tether_agent_stop (tether_agent_t *self);

//  Returns the agent id.  Borrowed, valid while the agent lives.
const char *tether_agent_id (tether_agent_t *self);

//  Returns how many times the agent has tried to subscribe.  THREAD SAFETY:
//  any thread.
uint64_t tether_agent_attempts (tether_agent_t *self);

//  -------------------------------------------------------------------------
//  A request handed to the handler.  The accessors below return values
//  borrowed from the request, valid until it is ended or destroyed; they may
//  be called from any thread that owns the request.

//  The request id chosen by the client or the gateway.
const char *tether_request_id (tether_request_t *self);

//  The call name, e.g. "echo".
const char *tether_request_call (tether_request_t *self);

//  The payload bytes; *size_p gets their number (may be 0).
const uint8_t *tether_request_payload (tether_request_t *self, size_t *size_p);

//  The value of header `key`, or NULL.
const char *tether_request_header (tether_request_t *self, const char *key);

//  Number of headers, and the index-th of them (0-based) in *key_p and
//  *value_p.  tether_request_header_at returns -1 when index is out of range.
size_t tether_request_header_count (tether_request_t *self);
int tether_request_header_at (tether_request_t *self,
                              size_t index,
                              const char **key_p,
                              const char **value_p);

//  True once the gateway cancelled the request or the agent stopped.
//  THREAD SAFETY: any thread.
bool tether_request_cancelled (tether_request_t *self);

//  Set the function called on cancel.  If the request is already cancelled
//  it is called at once, on this thread.  THREAD SAFETY: any thread.
void tether_request_set_cancel_fn (tether_request_t *self,
                                   tether_cancel_fn *fn,
                                   void *arg);

//  Send one response message with `size` bytes of `data` (copied).  The
//  first send opens the response call.  Blocks until gRPC took the message
//  (flow control reaches back to you through this).  Returns 0, or -1 when
//  the response call is over (cancelled, the gateway ended it, the edge is
//  gone): stop working and end the request.
//  THREAD SAFETY: any thread; concurrent sends are serialised.
int tether_request_send (tether_request_t *self, const void *data, size_t size);

//  End the request: with `status` TETHER_OK the response call is
//  half-closed (an OK with no message sent still reaches the client); with
//  any other status a last message carries `status` and `message` (may be
//  NULL).  Waits for the gateway's answer (at most the agent's end wait,
//  tether_agent_set_end_wait), then destroys the request and
//  sets *self_p to NULL.  Returns 0 when the gateway accepted the answer,
//  -1 otherwise.  A cancelled request is just destroyed.
int
tether_request_end (tether_request_t **self_p, int status, const char *message);

//  Drop the request without answering (the client will see the gateway's
//  deadline).  Sets *self_p to NULL.
void tether_request_destroy (tether_request_t **self_p);

//  -------------------------------------------------------------------------
//  The client

typedef struct _tether_client_t tether_client_t;
typedef struct _tether_call_t tether_call_t;
typedef struct _tether_agents_t tether_agents_t;

//  Create a client for the edge at `address` ("host:port").  Connection
//  happens lazily.  Returns NULL when address is empty.  Caller owns it.
tether_client_t *tether_client_new (const char *address);

//  Destroy the client.  Calls made from it must be destroyed first.
void tether_client_destroy (tether_client_t **self_p);

//  Speak TLS to the edge: `ca_file` verifies the edge's certificate (NULL =
//  gRPC's default roots); `cert_file`/`key_file` are an optional client
//  certificate (both or neither).  Reopens the channel.  Returns 0, or -1
//  when a file cannot be read (nothing changes).  Call before any call.
int tether_client_set_tls (tether_client_t *self,
                           const char *ca_file,
                           const char *cert_file,
                           const char *key_file);

//  Send `token` (a client token from `tether token --client`) as
//  `authorization: Bearer TOKEN` on every call; NULL or "" sends none.
//  Reopens the channel.  Call before any call.
void tether_client_set_token (tether_client_t *self, const char *token);

//  Ask the gateway to wait up to `ms` for an agent that is not connected
//  yet (metadata x-wait-for-agent-ms) on subsequent calls.  Default 0.
void tether_client_set_wait_for_agent (tether_client_t *self, uint32_t ms);

//  Largest response message accepted, in bytes.  Default
//  TETHER_MAX_RECEIVE_DEFAULT; returns -1 (and changes nothing) when bytes
//  is 0 or above TETHER_MAX_RECEIVE_LIMIT.  Reopens the channel: call
//  before starting calls.
int tether_client_set_max_receive (tether_client_t *self, uint32_t bytes);

//  Call `call` on agent `agent_id` with `size` bytes of `payload` (copied;
//  may be NULL when size is 0).  `headers` is NULL or a NULL-terminated
//  array of alternating keys and values: {"k1", "v1", "k2", "v2", NULL}.
//  `timeout_ms` 0 means no deadline.  The call starts at once; iterate it
//  with tether_call_next.  Returns NULL only when agent_id or call is
//  empty.  Caller owns the call.
tether_call_t *tether_client_call (tether_client_t *self,
                                   const char *agent_id,
                                   const char *call,
                                   const void *payload,
                                   size_t size,
                                   const char *const *headers,
                                   uint32_t timeout_ms);

//  Wait for the next response message.  Returns true with *data_p and
//  *size_p set (borrowed, valid until the next tether_call_next or the
//  call's destruction), or false at the end of the call; then
//  tether_call_status tells how it ended.
bool
tether_call_next (tether_call_t *self, const uint8_t **data_p, size_t *size_p);

//  The final status; valid once tether_call_next returned false.
int tether_call_status (tether_call_t *self);

//  The final status message ("" when none).  Borrowed, valid while the call
//  lives.
const char *tether_call_status_message (tether_call_t *self);

//  Cancel the call; the next tether_call_next returns false with
//  CANCELLED.  THREAD SAFETY: any thread.
void tether_call_cancel (tether_call_t *self);

//  Destroy the call, cancelling it if it is still running.
void tether_call_destroy (tether_call_t **self_p);

//  List connected agents whose id starts with `prefix` (NULL or "" for
//  all), in id order, at most `limit` of them (0 = the gateway's maximum):
//  the first page of the list, as one ListAgents call.  The gateway also
//  stops a page where its message size ends; tether_agents_next_page_token
//  says whether more follow.  Returns the list (caller owns it), or NULL
//  on failure with *status_p set to the gRPC status (status_p may be
//  NULL).
tether_agents_t *tether_client_list_agents (tether_client_t *self,
                                            const char *prefix,
                                            uint32_t limit,
                                            uint32_t timeout_ms,
                                            int *status_p);

//  The same, for the page after `page_token`: NULL or "" for the first
//  page, else the tether_agents_next_page_token of the previous page
//  (with the same prefix).  A token the gateway cannot read ends
//  INVALID_ARGUMENT.
tether_agents_t *tether_client_list_agents_page (tether_client_t *self,
                                                 const char *prefix,
                                                 uint32_t limit,
                                                 const char *page_token,
                                                 uint32_t timeout_ms,
                                                 int *status_p);

//  Every connected agent whose id starts with `prefix`, in id order: asks
//  page after page, `page_size` agents each (0 = the gateway's maximum),
//  until the gateway says there are no more.  `timeout_ms` (0 = none)
//  bounds the whole walk.  Agents that come and go meanwhile may or may
//  not be in it; none is listed twice.  Returns the list (caller owns it),
//  or NULL on failure with *status_p set (INTERNAL when the gateway's
//  pages do not follow one another in id order).
tether_agents_t *tether_client_list_all_agents (tether_client_t *self,
                                                const char *prefix,
                                                uint32_t page_size,
                                                uint32_t timeout_ms,
                                                int *status_p);

//  The token for the page after this list ("" when the gateway has no
//  more): pass it to tether_client_list_agents_page.  Borrowed, valid
//  while the list lives.
const char *tether_agents_next_page_token (tether_agents_t *self);

//  Number of entries in the list.
size_t tether_agents_size (tether_agents_t *self);

//  Fields of the index-th entry (0-based; index must be < size).  Strings
//  are borrowed, valid while the list lives.
const char *tether_agents_id (tether_agents_t *self, size_t index);
const char *tether_agents_edge (tether_agents_t *self, size_t index);
int64_t tether_agents_connected_at_ms (tether_agents_t *self, size_t index);
uint32_t tether_agents_in_flight (tether_agents_t *self, size_t index);
uint64_t tether_agents_session (tether_agents_t *self, size_t index);
size_t tether_agents_label_count (tether_agents_t *self, size_t index);
//  Returns -1 when label is out of range.
int tether_agents_label_at (tether_agents_t *self,
                            size_t index,
                            size_t label,
                            const char **key_p,
                            const char **value_p);

//  Destroy the list.
void tether_agents_destroy (tether_agents_t **self_p);

//  Ask the edge's standard health service (grpc.health.v1.Health/Check,
//  service "") how it is.  Returns 1 for SERVING, 0 for any other serving
//  status, -1 when the call failed (with *status_p set; may be NULL).
int tether_client_health (tether_client_t *self,
                          uint32_t timeout_ms,
                          int *status_p);

#ifdef __cplusplus
}
#endif

#endif
