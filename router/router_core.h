/*  =========================================================================
    router_core - the router's state machine: agents, requests, edges

    Pure: no sockets, no clock reads, no I/O.  The shell (router_actor.c)
    reads a message off its ROUTER socket and calls core_handle with the
    edge's routing id, the message and the time; it calls core_tick when the
    earliest deadline (core_next_due) has come.  Everything the core wants
    done is appended to its outbox, which the shell drains with
    core_outbox_pop (or, without a zmsg_t per edge message,
    core_outbox_take) after every call, in order:
      CORE_OUT_EDGE   [routing id][envelope][payload?]  send on the ROUTER
      CORE_OUT_EVENT  [topic][json]                     publish on the PUB
      CORE_OUT_LOG    [level digit][msg][fields]        pass to tlog
    The wire protocol is proto/wire.proto; docs/protocol.md tells what each
    command does.  All agent, request and edge state is owned here and
    changes only through this file's functions.
    =========================================================================
*/
#ifndef TETHER_ROUTER_CORE_H
#define TETHER_ROUTER_CORE_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

//  Every limit and timing of the router.  core_config_defaults fills in the
//  defaults; router_config.c maps each field to a named setting.
typedef struct
{
    uint32_t first_response_ms;       //  delivery -> first response message
    uint32_t idle_ms;                 //  between response messages (while
                                      //  the responder has credit)
    uint32_t max_wait_ms;             //  cap on x-wait-for-agent-ms
    uint32_t max_timeout_ms;          //  cap on a client's deadline; 0 = none
    uint32_t edge_liveness_ms;        //  silence after which an edge is dead
    uint32_t heartbeat_ms;            //  PONG cadence hint, liveness check
    uint32_t stats_interval_ms;       //  `stats` event period
    uint32_t max_agent_id_len;        //  bytes
    uint32_t max_request_id_len;      //  bytes
    uint32_t max_labels;              //  labels per agent
    uint32_t max_label_len;           //  bytes per label key or value
    uint32_t max_agents;              //  agents connected in all
    uint32_t max_requests;            //  requests in flight in all
    uint32_t max_in_flight_per_agent; //  requests in flight per agent
    uint32_t max_edges;               //  edges known at once
    uint32_t max_payload_bytes;       //  largest public message (frame 2 of
                                      //  PUBLISH may be CORE_PAYLOAD_MARGIN
                                      //  more: the id an edge appends)
    uint32_t max_credit;              //  window a client edge may grant
    uint32_t max_list;                //  agents in one ListAgents answer
} core_config_t;

//  Room over max_payload_bytes for the request id an edge appends to an
//  AgentRequest that came without one (tag, length, 32 hex digits).
#define CORE_PAYLOAD_MARGIN 64

typedef struct _core_t core_t;

typedef enum
{
    CORE_OUT_EDGE = 1,
    CORE_OUT_EVENT = 2,
    CORE_OUT_LOG = 3
} core_out_t;

//  Counters, for stats events, tests and benchmarks.
typedef struct
{
    uint64_t messages_in;  //  messages handed to core_handle
    uint64_t malformed;    //  dropped: bad frames, version, command
    uint64_t unexpected;   //  dropped: well-formed but out of place
    uint64_t unknown_edge; //  messages from an edge without HELLO
    uint64_t requests_started;
    uint64_t requests_finished;
    uint64_t requests_by_status[17]; //  indexed by gRPC status code
    uint64_t responses_routed;       //  RESPONSE -> REPLY
    uint64_t bytes_to_agents;        //  request payload bytes delivered
    uint64_t bytes_to_clients;       //  response payload bytes routed
    uint64_t agents_superseded;
    uint64_t edges_lost;          //  edges declared dead
    uint64_t edge_name_conflicts; //  HELLOs naming a live edge's name
    uint64_t sessions_refused;    //  agent entries with a session too
                                  //  large to keep (above 2^63 - 1)
    uint64_t events_published;    //  monitor events emitted
} core_stats_t;

//  Fill `cfg` with the defaults (docs/configuration.md lists them).
void core_config_defaults (core_config_t *cfg);

//  Create a router core.  `incarnation` is this router process's id (a
//  random number; edges re-send HELLO when it changes).  `session_base` is
//  the first session epoch to hand out, so that sessions keep growing
//  across router restarts (the shell passes the wall clock in
//  microseconds).  The config is copied.  Returns NULL only when `cfg` is
//  NULL.
core_t *core_new (const core_config_t *cfg,
                  uint64_t incarnation,
                  uint64_t session_base);

//  Destroy the core, every table and anything left in the outbox; null the
//  pointer.  Does nothing when *self_p is NULL.
void core_destroy (core_t **self_p);

//  Key the hash of agent and request ids with the 16 bytes at `key`
//  (borrowed).  Ids come from clients and agents: a shell passes random
//  bytes, so that nobody can choose ids that all collide.  Until then the
//  key is all zeros.  Returns 0, or -1 (key unchanged)
//  when the core already holds agents or requests.
int core_set_hash_key (core_t *self, const byte *key);

//  Log lines below `level` (a tlog_level_t: 0 debug .. 3 error) are not
//  produced at all.  The default is 1 (info).
void core_set_log_level (core_t *self, int level);

//  Monitor events (CORE_OUT_EVENT) are built only while `wanted`; the
//  default is true.  The shell turns them off while no monitor subscribes,
//  so a deployment nobody watches does not pay for formatting them.  Their
//  sequence number counts every event, built or not.
void core_set_events (core_t *self, bool wanted);

//  Handle one message from the edge whose routing id is `routing_id`
//  (borrowed).  Takes ownership of *msg_p (the frames after the routing id)
//  and nulls the caller's pointer.  Never fails: malformed input is
//  counted, logged through the outbox and dropped.
void core_handle (core_t *self,
                  zframe_t *routing_id,
                  zmsg_t **msg_p,
                  int64_t now_ms);

//  The same as core_handle, for a shell that reads a message frame by
//  frame: `envelope` is frame 1's bytes (borrowed; NULL when `frames` is
//  0), `frames` the number of frames after the routing id, and *payload_p
//  frame 2 or NULL (taken: the caller's pointer is nulled).  Frames after
//  the second are counted in `frames` only.
void core_handle_frames (core_t *self,
                         zframe_t *routing_id,
                         const void *envelope,
                         size_t envelope_size,
                         size_t frames,
                         zframe_t **payload_p,
                         int64_t now_ms);

//  Run every deadline due at or before `now_ms` (request timeouts, waits,
//  edge liveness, periodic stats).
void core_tick (core_t *self, int64_t now_ms);

//  Returns the time (ms, same clock as now_ms) of the earliest deadline, or
//  -1 when there is none.
int64_t core_next_due (core_t *self);

//  The shell could not deliver a message to `routing_id` (EHOSTUNREACH or
//  EAGAIN with ROUTER_MANDATORY): the edge is treated as dead at once.
void core_edge_unreachable (core_t *self, zframe_t *routing_id, int64_t now_ms);

//  Pop the oldest outbox entry.  Returns it and sets *kind, or NULL when
//  the outbox is empty.  Caller owns the message.
zmsg_t *core_outbox_pop (core_t *self, core_out_t *kind);

//  One outbox entry, as core_outbox_take gives it: an edge message as its
//  bytes, so that a shell can write it to a socket with no zmsg_t.
typedef struct
{
    core_out_t kind;        //  what to do with it
    const byte *routing_id; //  CORE_OUT_EDGE: the destination's id
    size_t routing_id_size; //  its bytes
    const byte *envelope;   //  CORE_OUT_EDGE: frame 1, packed
    size_t envelope_size;   //  its bytes
    zframe_t *payload;      //  CORE_OUT_EDGE: frame 2, or NULL
    zmsg_t *msg;            //  CORE_OUT_EVENT, CORE_OUT_LOG: the
                            //  message, as core_outbox_pop gives it
} core_output_t;

//  Take the oldest outbox entry into *out.  Returns false when the outbox
//  is empty.  The caller owns out->payload and out->msg; routing_id and
//  envelope are borrowed, valid until the core next handles an input, a
//  tick or an unreachable edge (taking more entries leaves them valid).
//  Entries come out in the same order as from core_outbox_pop, and the
//  two may be mixed.
bool core_outbox_take (core_t *self, core_output_t *out);

//  Returns the counters; borrowed, valid until core_destroy.
const core_stats_t *core_stats (core_t *self);

//  Table sizes, for tests and stats.
size_t core_agent_count (core_t *self);
size_t core_request_count (core_t *self);
size_t core_edge_count (core_t *self);
//  Requests parked waiting for their agent to subscribe.
size_t core_waiting_count (core_t *self);
//  Entries in the timer heap (tests assert it empties with the tables).
size_t core_timer_count (core_t *self);

#endif
