/*  =========================================================================
    router_actor - the router as a CZMQ actor: sockets, poll loop, timers

    The thin shell around router_core.  It owns the ROUTER socket that edges
    connect their DEALERs to and the PUB socket for monitoring, reads the
    monotonic clock once per loop iteration, computes the poll timeout from
    core_next_due, and flushes the core's outbox after every call.  Sends
    never block: ROUTER_MANDATORY plus DONTWAIT, and a failed send makes the
    edge dead (core_edge_unreachable).  The PUB is written with DONTWAIT
    only; a slow monitor loses events, never slows routing.

    Start it with zactor_new (router_actor, cfg), where cfg is a
    router_config_t * (borrowed until the actor has signalled; it is
    copied).  This is tether-router's shell; tether-edge's embedded
    router runs the same core on the edge's own thread instead
    (gateway/edge_router.c).

    Pipe commands (zstr):
      "STATUS" -> replies "is": 0 and "" when the actor is bound and
                  routing, -1 and the reason when binding failed
      "PORT"   -> replies with two ints ("ii"): the ROUTER's and the PUB's
                  first bound TCP port, 0 when not bound to TCP
      "STATS"  -> replies "8888" (uint64): agents, requests, edges,
                  malformed
      "$TERM"  -> ends the actor
    zactor_new consumes the actor's first signal and ignores its value, so
    a binding failure is not reported through it.  Instead the actor always
    signals 0 once set up and, when binding failed, keeps serving its pipe
    (STATUS answers -1) until $TERM, so zactor_destroy still works.
    router_actor_start asks STATUS and destroys the actor on -1; use it
    rather than zactor_new directly.  zactor_destroy returns once the
    actor's TCP/IPC listeners are closed, so a new router can bind the same
    port at once.
    =========================================================================
*/
#ifndef TETHER_ROUTER_ACTOR_H
#define TETHER_ROUTER_ACTOR_H

#include <czmq.h>
#include "router_config.h"

//  The actor function for zactor_new; `args` is a router_config_t *.
void router_actor (zsock_t *pipe, void *args);

//  Start a router actor on `cfg` (borrowed).  Returns the actor (caller
//  owns it; zactor_destroy stops it), or NULL when it could not bind its
//  endpoints, after logging why.
zactor_t *router_actor_start (const router_config_t *cfg);

#endif
