/*  =========================================================================
    edge_router - the embedded router, run on the edge's owner thread

    With no external router configured, the edge runs router_core itself,
    on its owner thread, instead of behind a router actor thread and an
    inproc DEALER/ROUTER pair.  The core is pure (core_handle, core_tick,
    core_outbox_pop), so this is another shell around the same state
    machine, not another router: every message still goes through the wire
    encoding and core_handle, and the core cannot tell this edge from one
    connected over TCP.  What it saves is two thread wake-ups per router
    message (owner -> router thread -> owner), which on a small machine
    cost more than the routing itself.

    Messages from the core to the edge are not handled at once: they wait
    in `inbox` until the owner's loop takes them (edge_router_recv), so a
    call handler that sends to the router is never re-entered by the
    answer.  Monitor events go to an XPUB, as in router_actor: written
    with DONTWAIT only, and not built at all while no monitor subscribes.

    THREAD SAFETY: the owner thread only.
    =========================================================================
*/
#include "edge_internal.h"
#include "router_shell.h"

#include <inttypes.h>
#include <string.h>

struct _edge_router_t
{
    core_t *core;               //  the state machine; owned
    zframe_t *edge_id;          //  the routing id the core knows us by
    zmsg_t **inbox;             //  ring of [envelope][payload?] for us;
                                //  owned, with the messages in it
    size_t inbox_size;          //  slots (a power of two)
    size_t inbox_head;          //  oldest message's slot
    size_t inbox_count;         //  messages in the ring
    zsock_t *monitor;           //  XPUB for events, or NULL; owned
    size_t subscriptions;       //  topics subscribed on the XPUB
    uint64_t event_send_failed; //  events the XPUB refused
};

//  Bind `sock` to each of the comma-separated `endpoints`.  Returns 0, or
//  -1 with the reason in `err`.
static int
s_bind_all (zsock_t *sock, const char *endpoints, char *err, size_t size)
{
    char *list = strdup (endpoints);
    assert (list);
    int rc = 0, count = 0;
    char *save = NULL;
    for (char *endpoint = strtok_r (list, ", \t", &save); endpoint && rc == 0;
         endpoint = strtok_r (NULL, ", \t", &save)) {
        if (zsock_bind (sock, "%s", endpoint) == -1) {
            snprintf (err, size, "cannot bind %s: %s", endpoint,
                      zmq_strerror (zmq_errno ()));
            rc = -1;
        } else
            count++;
    }
    if (rc == 0 && count == 0) {
        snprintf (err, size, "no endpoint in '%s'", endpoints);
        rc = -1;
    }
    free (list);
    return rc;
}

edge_router_t *
edge_router_new (const router_config_t *cfg,
                 const char *monitor,
                 const void *edge_id,
                 size_t edge_id_size,
                 char *err,
                 size_t err_size)
{
    edge_router_t *self = (edge_router_t *) calloc (1, sizeof *self);
    assert (self);
    zuuid_t *uuid = zuuid_new ();
    assert (uuid);
    uint64_t incarnation;
    memcpy (&incarnation, zuuid_data (uuid), sizeof incarnation);
    zuuid_destroy (&uuid);
    self->core = core_new (&cfg->core, incarnation ? incarnation : 1,
                           (uint64_t) zclock_time () * 1000);
    assert (self->core);
    router_shell_key_core (self->core);
    //  The core does not even format lines the log would drop.
    int level = TLOG_DEBUG;
    while (level < TLOG_OFF && !tlog_enabled ((tlog_level_t) level))
        level++;
    core_set_log_level (self->core, level);
    core_set_events (self->core, false);
    self->edge_id = zframe_new (edge_id, edge_id_size);
    self->inbox_size = 64;
    self->inbox = (zmsg_t **) calloc (self->inbox_size, sizeof (zmsg_t *));
    assert (self->edge_id && self->inbox);
    if (monitor && *monitor) {
        self->monitor = zsock_new (ZMQ_XPUB);
        assert (self->monitor);
        zsock_set_sndhwm (self->monitor, (int) cfg->monitor_hwm);
        zsock_set_linger (self->monitor, 0);
        if (s_bind_all (self->monitor, monitor, err, err_size)) {
            edge_router_destroy (&self);
            return NULL;
        }
    }
    return self;
}

void
edge_router_destroy (edge_router_t **self_p)
{
    assert (self_p);
    edge_router_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->monitor);
    zmsg_t *msg;
    while ((msg = edge_router_recv (self)))
        zmsg_destroy (&msg);
    free (self->inbox);
    zframe_destroy (&self->edge_id);
    core_destroy (&self->core);
    free (self);
    *self_p = NULL;
}

//  Append a message to the inbox ring, growing it when full.
static void
s_inbox_push (edge_router_t *self, zmsg_t *msg)
{
    if (self->inbox_count == self->inbox_size) {
        size_t size = self->inbox_size * 2;
        zmsg_t **ring = (zmsg_t **) calloc (size, sizeof (zmsg_t *));
        assert (ring);
        for (size_t i = 0; i < self->inbox_count; i++)
            ring[i] =
                self->inbox[(self->inbox_head + i) & (self->inbox_size - 1)];
        free (self->inbox);
        self->inbox = ring;
        self->inbox_size = size;
        self->inbox_head = 0;
    }
    self->inbox[(self->inbox_head + self->inbox_count)
                & (self->inbox_size - 1)] = msg;
    self->inbox_count++;
}

//  Take what the core produced: messages for us into the inbox, events to
//  the XPUB, log lines to the log.
static void
s_flush (edge_router_t *self)
{
    core_output_t out;
    while (core_outbox_take (self->core, &out)) {
        if (out.kind == CORE_OUT_EDGE) {
            //  [envelope][payload?]: the routing id can only be ours.  The
            //  envelope is copied, as the core reuses its bytes; the
            //  payload frame moves.
            zmsg_t *msg = zmsg_new ();
            assert (msg);
            zmsg_addmem (msg, out.envelope, out.envelope_size);
            if (out.payload)
                zmsg_append (msg, &out.payload);
            s_inbox_push (self, msg);
            continue;
        }
        zmsg_t *msg = out.msg;
        if (out.kind == CORE_OUT_EVENT && self->monitor) {
            if (router_shell_send_nowait (msg, self->monitor) == -1)
                self->event_send_failed++;
        } else if (out.kind == CORE_OUT_LOG)
            router_shell_log (msg);
        zmsg_destroy (&msg);
    }
}

void
edge_router_send (edge_router_t *self, zmsg_t **msg_p, int64_t now)
{
    core_handle (self->core, self->edge_id, msg_p, now);
    s_flush (self);
}

void
edge_router_tick (edge_router_t *self, int64_t now)
{
    int64_t due = core_next_due (self->core);
    if (due >= 0 && due <= now) {
        core_tick (self->core, now);
        s_flush (self);
    }
}

long
edge_router_timeout (edge_router_t *self, int64_t now)
{
    if (self->inbox_count > 0)
        return 0;
    int64_t due = core_next_due (self->core);
    if (due < 0)
        return -1;
    return due > now ? (long) (due - now) : 0;
}

zmsg_t *
edge_router_recv (edge_router_t *self)
{
    if (self->inbox_count == 0)
        return NULL;
    zmsg_t *msg = self->inbox[self->inbox_head];
    self->inbox[self->inbox_head] = NULL;
    self->inbox_head = (self->inbox_head + 1) & (self->inbox_size - 1);
    self->inbox_count--;
    return msg;
}

void *
edge_router_monitor (edge_router_t *self)
{
    return self->monitor ? zsock_resolve (self->monitor) : NULL;
}

void
edge_router_monitor_ready (edge_router_t *self)
{
    if (!self->monitor)
        return;
    self->subscriptions =
        router_shell_subscriptions (self->monitor, self->subscriptions);
    core_set_events (self->core, self->subscriptions > 0);
}
