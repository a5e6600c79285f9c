/*  =========================================================================
    sim_edge - a simulated edge for tests over real sockets

    A router actor on tcp://127.0.0.1:0 and plain DEALER sockets speaking
    the wire protocol (proto/wire.proto) as an edge would.  Nothing waits on
    a clock: every wait is a receive with a deadline, and a missed deadline
    fails the cmocka test at the line that expected the message.
    =========================================================================
*/
#ifndef SIM_EDGE_H_INCLUDED
#define SIM_EDGE_H_INCLUDED

#include <czmq.h>
#include <stdint.h>

#include "router_actor.h"
#include "wire_envelope.h"

//  How long any single expected message may take, ms.
#define SIM_DEADLINE_MS 10000

//  Start a router actor with `cfg` and learn its ports.  Returns the actor.
zactor_t *
sim_router_start (router_config_t *cfg, int *router_port, int *monitor_port);

//  Next value of a xorshift generator.
uint64_t sim_rand (uint64_t *state);

//  A DEALER connected to the router on `port`, with a fresh random routing
//  id from `rng`, as each edge incarnation has.  Caller destroys it.
zsock_t *sim_edge_new (uint64_t *rng, int port);

//  Send `env`, plus a payload frame when `payload` is not NULL.
void
sim_send (zsock_t *sock, Wire__Envelope *env, const void *payload, size_t size);

//  Wait for a message of `command` on `sock`, skipping others.  Returns its
//  envelope (caller frees it with wire_envelope_free) and, when `payload_p`
//  is not NULL, its payload frame (caller owns it; NULL when there is
//  none).  Fails the test at `file`:`line` when none comes in time.
Wire__Envelope *sim_expect (zsock_t *sock,
                            int command,
                            zframe_t **payload_p,
                            const char *file,
                            int line);

#define SIM_EXPECT(sock, command, payload_p)                                   \
    sim_expect ((sock), WIRE__COMMAND__##command, (payload_p), __FILE__,       \
                __LINE__)

//  HELLO with `agents`; expects WELCOME.  Returns the router's incarnation.
uint64_t sim_hello (zsock_t *edge,
                    const char *edge_id,
                    uint64_t incarnation,
                    Wire__AgentEntry **agents,
                    size_t n_agents);

//  SUBSCRIBE `agent_id` on stream `handle`; expects SUBSCRIBED for that
//  stream and id.  Returns the session.
uint64_t sim_subscribe (zsock_t *edge, const char *agent_id, uint64_t handle);

//  PUBLISH `payload` to `agent_id` as client call `handle`, credit 16.
void sim_publish (zsock_t *client,
                  uint64_t handle,
                  const char *request_id,
                  const char *agent_id,
                  const void *payload,
                  size_t size);

//  One command with handle, request id, status (a non-zero status carries
//  the message "agent failed") and an optional payload.
void sim_command (zsock_t *edge,
                  int command,
                  uint64_t handle,
                  const char *request_id,
                  int status,
                  const void *payload,
                  size_t size);

//  Returns the "seq" of a monitor event's JSON body, or -1.
int64_t sim_event_seq (const char *json);

//  Unsubscribe the monitor subscriber `sub` from "" (the prefix the tests
//  subscribe to), read and drop what it holds until nothing arrives for
//  `quiet_ms` (10 s at most), then destroy it (nulls *sub_p).  libzmq 4.3.4
//  can abort in an I/O thread (session_base.cpp:260, its issue #3442) when
//  a SUB that holds part of a multipart message is closed while its
//  publisher, here in the same process, goes away too: a test closes its
//  subscribers this way, emptied first.
void sim_sub_close (zsock_t **sub_p, int quiet_ms);

#endif
