/*  =========================================================================
    router_shell - what every shell around router_core does with its outbox

    Two shells run router_core: the router actor (router_actor.c), behind a
    ROUTER socket, and the edge's embedded router (gateway/edge_router.c),
    on the edge's own thread.  Both publish events on an XPUB that never
    blocks, pass log entries to tlog, and turn events on only while someone
    subscribes, and key the core's id hash with random bytes.  Those steps
    live here, once.
    =========================================================================
*/
#ifndef TETHER_ROUTER_SHELL_H
#define TETHER_ROUTER_SHELL_H

#include <czmq.h>
#include <stddef.h>
#include "router_core.h"

//  Key `core`'s id hash with fresh random bytes (core_set_hash_key).  Call
//  before the core's first input.
void router_shell_key_core (core_t *core);

//  Send every frame of `msg` on `sock` without blocking.  Returns 0, or -1
//  when a frame could not be sent (errno tells why).  Frames sent are
//  destroyed; the caller still owns `msg` and destroys what is left in it.
int router_shell_send_nowait (zmsg_t *msg, zsock_t *sock);

//  Pass a CORE_OUT_LOG entry, [level digit][msg][fields], to tlog.  Borrows
//  `msg` (its frames are consumed when the level is enabled).
void router_shell_log (zmsg_t *msg);

//  Read the (un)subscriptions an XPUB has passed up (one frame each: 1 or
//  0, then the topic) without blocking, starting from `count` current
//  subscriptions.  Returns the new count.
size_t router_shell_subscriptions (zsock_t *xpub, size_t count);

#endif
