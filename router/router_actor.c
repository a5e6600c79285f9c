/*  =========================================================================
    router_actor - the router as a CZMQ actor: sockets, poll loop, timers

    The shell around router_core.  One iteration of the loop:
      1. poll the pipe and the ROUTER, with the timeout from core_next_due
         (capped at one second so a stuck clock never parks the loop);
      2. read the monotonic clock once;
      3. answer a pipe command, if any;
      4. drain the ROUTER, up to `batch` messages, handing each to
         core_handle_frames and flushing the outbox after each one;
      5. core_tick, then flush again.
    The hot path allocates next to nothing: a message is read frame by
    frame into zmq_msg_t kept in self (only a payload, which the core may
    keep, becomes a zframe_t), and an edge message leaves as the bytes the
    core packed in its outbox (core_outbox_take), written with zmq_send.
    Flushing never blocks.  Edge messages go out frame by frame with
    ZMQ_DONTWAIT on a ROUTER_MANDATORY socket: EHOSTUNREACH (the edge is
    gone) or EAGAIN (the edge has fallen edge_hwm messages behind) is
    counted and reported to the core, which declares the edge dead.
    Monitor events go to the PUB with ZFRAME_DONTWAIT; a PUB drops for a
    subscriber that is over its high-water mark, and the event's sequence
    number tells that subscriber what it missed.  The PUB is an XPUB, so
    the actor hears (un)subscriptions: while no monitor subscribes, the
    core is told not to build events at all (core_set_events), and a
    deployment nobody watches does not pay for them.

    Invariants: the actor owns every socket, the core and its copy of the
    config; nothing here is shared with another thread except through the
    pipe.  When binding failed, the actor still runs, serving only its pipe
    (STATUS says -1) until $TERM, so zactor_destroy works as usual.
    =========================================================================
*/
#include "router_actor.h"
#include "router_shell.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "tlog.h"
#include "wire_envelope.h"

//  Longest poll wait, ms.  Timers wake the loop earlier.
#define S_MAX_WAIT_MS 1000

typedef struct
{
    zsock_t *pipe;              //  actor pipe, borrowed from zactor
    router_config_t cfg;        //  our own copy of the settings
    core_t *core;               //  the state machine; owned
    zsock_t *router;            //  ROUTER that edges connect to; owned
    void *router_handle;        //  its libzmq socket
    zframe_t *routing_id;       //  the current message's routing id,
                                //  reset for each one; owned
    zmq_msg_t in_id;            //  the message being read: routing id,
    zmq_msg_t in_envelope;      //  envelope,
    zmq_msg_t in_extra;         //  and frames past the payload (dropped)
    zsock_t *monitor;           //  XPUB for events, NULL when disabled
    size_t subscriptions;       //  topics monitors subscribe to (XPUB
                                //  passes each distinct topic up once)
    zpoller_t *poller;          //  pipe, plus router when bound
    bool terminated;            //  $TERM received
    int status;                 //  0 running, -1 could not bind
    char error[256];            //  why status is -1
    int router_port;            //  first TCP port of the ROUTER, or 0
    int monitor_port;           //  first TCP port of the PUB, or 0
    zlist_t *router_bound;      //  endpoints the ROUTER bound, resolved
    zlist_t *monitor_bound;     //  endpoints the PUB bound, resolved
    uint64_t edge_send_failed;  //  EHOSTUNREACH/EAGAIN towards an edge
    uint64_t event_send_failed; //  events the PUB refused
    uint64_t bad_output;        //  outbox entries of an unknown shape
    zactor_t *auth;             //  zauth checking edge keys, or NULL
    zcert_t *cert;              //  the router's CURVE certificate, or NULL
} self_t;

//  Returns a random, non-zero router incarnation.
static uint64_t
s_random_incarnation (void)
{
    zuuid_t *uuid = zuuid_new ();
    assert (uuid);
    uint64_t value;
    memcpy (&value, zuuid_data (uuid), sizeof value);
    zuuid_destroy (&uuid);
    return value ? value : 1;
}

//  Returns the TCP port of the socket's last bound endpoint, or 0 when it
//  is not TCP.
static int
s_last_tcp_port (zsock_t *sock)
{
    char *endpoint = zsock_last_endpoint (sock);
    int port = 0;
    if (endpoint && strncmp (endpoint, "tcp://", 6) == 0) {
        const char *colon = strrchr (endpoint, ':');
        if (colon)
            port = atoi (colon + 1);
    }
    zstr_free (&endpoint);
    return port;
}

//  Bind `sock` to every endpoint of the comma-separated `endpoints`, and
//  record each as resolved by libzmq in `bound`.  Sets *port to the first
//  TCP port bound.  Returns 0, or -1 with a message in self->error.
static int
s_bind_all (self_t *self,
            zsock_t *sock,
            const char *endpoints,
            int *port,
            zlist_t *bound)
{
    char *list = strdup (endpoints);
    assert (list);
    int rc = 0;
    int count = 0;
    char *save = NULL;
    for (char *endpoint = strtok_r (list, ", \t", &save); endpoint && rc == 0;
         endpoint = strtok_r (NULL, ", \t", &save)) {
        if (zsock_bind (sock, "%s", endpoint) == -1) {
            snprintf (self->error, sizeof self->error, "cannot bind %s: %s",
                      endpoint, zmq_strerror (zmq_errno ()));
            rc = -1;
        } else {
            count++;
            if (*port == 0)
                *port = s_last_tcp_port (sock);
            char *resolved = zsock_last_endpoint (sock);
            if (resolved)
                zlist_append (bound, resolved);
            zstr_free (&resolved);
        }
    }
    if (rc == 0 && count == 0) {
        snprintf (self->error, sizeof self->error, "no endpoint in '%s'",
                  endpoints);
        rc = -1;
    }
    free (list);
    return rc;
}

//  True when the 32-byte key is all zeros (a public-only zcert).
static bool
s_key_empty (const byte *key)
{
    for (int i = 0; i < 32; i++)
        if (key[i])
            return false;
    return true;
}

//  CURVE on the ROUTER: load the router's certificate and start zauth
//  with the directory of allowed edge certificates, before binding (a
//  CURVE server without a ZAP handler would let any key in).  Returns 0
//  (also when CURVE is off), or -1 with a message in self->error.
static int
s_self_curve (self_t *self)
{
    const router_config_t *cfg = &self->cfg;
    const char *secret = cfg->curve_secret_key_file;
    const char *allow = cfg->curve_allow_dir;
    if (!secret || !*secret) {
        if (allow && *allow) {
            snprintf (self->error, sizeof self->error,
                      "--curve-allow-dir needs --curve-secret-key-file");
            return -1;
        }
        return 0;
    }
    if (!zsys_has_curve ()) {
        snprintf (self->error, sizeof self->error,
                  "this libzmq has no CURVE support");
        return -1;
    }
    struct stat info;
    if (!allow || !*allow || stat (allow, &info) || !S_ISDIR (info.st_mode)) {
        snprintf (self->error, sizeof self->error,
                  "--curve-allow-dir '%s' is not a directory of edge "
                  "certificates",
                  allow ? allow : "");
        return -1;
    }
    self->cert = zcert_load (secret);
    if (!self->cert || s_key_empty (zcert_secret_key (self->cert))) {
        snprintf (self->error, sizeof self->error,
                  "cannot load a secret CURVE certificate from '%s'", secret);
        zcert_destroy (&self->cert);
        return -1;
    }
    self->auth = zactor_new (zauth, NULL);
    assert (self->auth);
    if (zstr_sendx (self->auth, "CURVE", allow, NULL) == -1
        || zsock_wait (self->auth) == -1) {
        snprintf (self->error, sizeof self->error, "cannot start zauth");
        return -1;
    }
    return 0;
}

static int
s_self_bind (self_t *self)
{
    const router_config_t *cfg = &self->cfg;
    if (s_self_curve (self))
        return -1;
    self->router = zsock_new (ZMQ_ROUTER);
    assert (self->router);
    if (self->cert) {
        zcert_apply (self->cert, self->router);
        zsock_set_curve_server (self->router, 1);
        zsock_set_zap_domain (self->router, "tether");
    }
    zsock_set_router_mandatory (self->router, 1);
    //  An edge that reconnects with the same routing id takes over.
    zsock_set_router_handover (self->router, 1);
    zsock_set_sndhwm (self->router, (int) cfg->edge_hwm);
    zsock_set_rcvhwm (self->router, (int) cfg->edge_hwm);
    zsock_set_rcvtimeo (self->router, 0);
    zsock_set_linger (self->router, 0);
    //  Refuse frames no valid message can hold, before they are buffered.
    uint64_t max_frame = cfg->core.max_payload_bytes > WIRE_ENVELOPE_MAX
                             ? cfg->core.max_payload_bytes
                             : WIRE_ENVELOPE_MAX;
    max_frame += 64 * 1024;
    zsock_set_maxmsgsize (self->router,
                          max_frame > INT_MAX ? INT_MAX : (int) max_frame);
    if (s_bind_all (self, self->router, cfg->bind ? cfg->bind : "",
                    &self->router_port, self->router_bound))
        return -1;

    if (cfg->monitor && *cfg->monitor) {
        self->monitor = zsock_new (ZMQ_XPUB);
        assert (self->monitor);
        zsock_set_sndhwm (self->monitor, (int) cfg->monitor_hwm);
        zsock_set_linger (self->monitor, 0);
        if (s_bind_all (self, self->monitor, cfg->monitor, &self->monitor_port,
                        self->monitor_bound))
            return -1;
    }
    return 0;
}

static self_t *
s_self_new (zsock_t *pipe, const router_config_t *cfg)
{
    self_t *self = (self_t *) zmalloc (sizeof (self_t));
    assert (self);
    self->pipe = pipe;
    self->routing_id = zframe_new_empty ();
    assert (self->routing_id);
    zmq_msg_init (&self->in_id);
    zmq_msg_init (&self->in_envelope);
    zmq_msg_init (&self->in_extra);
    self->router_bound = zlist_new ();
    self->monitor_bound = zlist_new ();
    assert (self->router_bound && self->monitor_bound);
    zlist_autofree (self->router_bound);
    zlist_autofree (self->monitor_bound);
    router_config_copy (&self->cfg, cfg);
    if (self->cfg.batch == 0)
        self->cfg.batch = 1;
    if (self->cfg.edge_hwm == 0)
        self->cfg.edge_hwm = 1;
    uint64_t incarnation = s_random_incarnation ();
    uint64_t session_base = (uint64_t) zclock_time () * 1000;
    self->core = core_new (&self->cfg.core, incarnation, session_base);
    assert (self->core);
    router_shell_key_core (self->core);
    //  The core does not even format lines the log would drop.
    int level = TLOG_DEBUG;
    while (level < TLOG_OFF && !tlog_enabled ((tlog_level_t) level))
        level++;
    core_set_log_level (self->core, level);

    self->poller = zpoller_new (pipe, NULL);
    assert (self->poller);
    //  Only $TERM stops the actor; the owner decides what a signal means.
    zpoller_set_nonstop (self->poller, true);

    //  Events are built once a monitor subscribes.
    core_set_events (self->core, false);
    if (s_self_bind (self) == 0) {
        self->router_handle = zsock_resolve (self->router);
        zpoller_add (self->poller, self->router);
        if (self->monitor)
            zpoller_add (self->poller, self->monitor);
    } else {
        self->status = -1;
        self->router_port = 0;
        self->monitor_port = 0;
        char quoted[300];
        tlog (TLOG_ERROR, "router cannot start", "reason=%s",
              tlog_quote (self->error, quoted, sizeof quoted));
    }
    if (self->status == 0 && self->cert) {
        char key_q[64], dir_q[300];
        tlog (TLOG_INFO, "router requires CURVE", "public_key=%s allow_dir=%s",
              tlog_quote (zcert_public_txt (self->cert), key_q, sizeof key_q),
              tlog_quote (self->cfg.curve_allow_dir, dir_q, sizeof dir_q));
    }
    if (self->status == 0)
        tlog (TLOG_DEBUG, "router started",
              "incarnation=%016" PRIx64 " router_port=%d monitor_port=%d",
              incarnation, self->router_port, self->monitor_port);
    return self;
}

//  Unbind every endpoint of `sock` and wait until libzmq's I/O thread has
//  closed each TCP/IPC listener, so that the ports are free when the
//  actor is gone (zmq_close alone closes them later, in the background,
//  and a router restarted at once on the same port would fail to bind).
//  Waits for the listeners' ZMQ_EVENT_CLOSED, one second at most.
static void
s_release (zsock_t *sock, zlist_t *bound)
{
    if (!sock || zlist_size (bound) == 0)
        return;
    char monitor_endpoint[64];
    snprintf (monitor_endpoint, sizeof monitor_endpoint,
              "inproc://router-actor-release-%p", (void *) sock);
    zsock_t *events = NULL;
    if (zmq_socket_monitor (zsock_resolve (sock), monitor_endpoint,
                            ZMQ_EVENT_CLOSED)
        == 0) {
        events = zsock_new (ZMQ_PAIR);
        assert (events);
        if (zsock_connect (events, "%s", monitor_endpoint))
            zsock_destroy (&events);
    }
    int listeners = 0;
    for (char *endpoint = (char *) zlist_first (bound); endpoint;
         endpoint = (char *) zlist_next (bound)) {
        if (zsock_unbind (sock, "%s", endpoint) == 0
            && strncmp (endpoint, "inproc://", 9) != 0)
            listeners++;
    }
    int64_t deadline = zclock_mono () + 1000;
    while (events && listeners > 0) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            break;
        zsock_set_rcvtimeo (events, (int) left);
        zmsg_t *event = zmsg_recv (events);
        if (!event)
            break;
        listeners--;
        zmsg_destroy (&event);
    }
    if (events) {
        zmq_socket_monitor (zsock_resolve (sock), NULL, 0);
        zsock_destroy (&events);
    }
}

static void
s_self_destroy (self_t **self_p)
{
    assert (self_p);
    self_t *self = *self_p;
    if (!self)
        return;
    if (self->status == 0) {
        const core_stats_t *stats = core_stats (self->core);
        tlog (TLOG_DEBUG, "router stopped",
              "messages_in=%" PRIu64 " malformed=%" PRIu64 " requests=%" PRIu64
              " edge_send_failed=%" PRIu64 " event_send_failed=%" PRIu64,
              stats->messages_in, stats->malformed, stats->requests_finished,
              self->edge_send_failed, self->event_send_failed);
    }
    zpoller_destroy (&self->poller);
    s_release (self->monitor, self->monitor_bound);
    s_release (self->router, self->router_bound);
    zsock_destroy (&self->monitor);
    zsock_destroy (&self->router);
    zlist_destroy (&self->monitor_bound);
    zlist_destroy (&self->router_bound);
    zactor_destroy (&self->auth);
    zcert_destroy (&self->cert);
    core_destroy (&self->core);
    zmq_msg_close (&self->in_extra);
    zmq_msg_close (&self->in_envelope);
    zmq_msg_close (&self->in_id);
    zframe_destroy (&self->routing_id);
    router_config_clear (&self->cfg);
    free (self);
    *self_p = NULL;
}

//  [routing id][envelope][payload?] to an edge.  Takes the payload.
static void
s_flush_edge (self_t *self, core_output_t *out, int64_t now)
{
    void *router = self->router_handle;
    int rc = zmq_send (router, out->routing_id, out->routing_id_size,
                       ZMQ_SNDMORE | ZMQ_DONTWAIT);
    if (rc != -1)
        rc = zmq_send (router, out->envelope, out->envelope_size,
                       ZMQ_DONTWAIT | (out->payload ? ZMQ_SNDMORE : 0));
    if (rc != -1 && out->payload)
        rc = zframe_send (&out->payload, self->router, ZFRAME_DONTWAIT);
    if (rc == -1) {
        int error = errno;
        self->edge_send_failed++;
        //  The core's bytes are valid until we call it: copy the id first
        zframe_reset (self->routing_id, out->routing_id, out->routing_id_size);
        if (tlog_enabled (TLOG_DEBUG)) {
            char *hex = zframe_strhex (self->routing_id);
            tlog (TLOG_DEBUG, "edge unreachable", "routing_id=%s error=%s", hex,
                  error == EAGAIN ? "full" : "unroutable");
            free (hex);
        }
        core_edge_unreachable (self->core, self->routing_id, now);
    }
}

//  Drain the core's outbox, in order.
static void
s_self_flush (self_t *self, int64_t now)
{
    core_output_t out;
    while (core_outbox_take (self->core, &out)) {
        switch (out.kind) {
            case CORE_OUT_EDGE:
                s_flush_edge (self, &out, now);
                break;
            case CORE_OUT_EVENT:
                if (self->monitor
                    && router_shell_send_nowait (out.msg, self->monitor) == -1)
                    self->event_send_failed++;
                break;
            case CORE_OUT_LOG:
                router_shell_log (out.msg);
                break;
            default:
                self->bad_output++;
                break;
        }
        zframe_destroy (&out.payload);
        zmsg_destroy (&out.msg);
    }
}

//  Read the (un)subscriptions the XPUB has passed up, and tell the core
//  whether anyone wants events.  Each is one frame: 1 or 0, then the topic.
static void
s_self_read_subscriptions (self_t *self)
{
    if (!self->monitor)
        return;
    self->subscriptions =
        router_shell_subscriptions (self->monitor, self->subscriptions);
    core_set_events (self->core, self->subscriptions > 0);
}

//  Read the rest of a message whose routing id is in self->in_id:
//  envelope into self->in_envelope, payload into *payload_p, frames past
//  it dropped.  Returns the number of frames after the routing id, or -1
//  when a frame could not be read (the message is then lost, as a whole).
static int
s_self_read_frames (self_t *self, zframe_t **payload_p)
{
    void *router = self->router_handle;
    int frames = 0;
    bool more = zmq_msg_more (&self->in_id);
    if (more) {
        if (zmq_msg_recv (&self->in_envelope, router, 0) == -1)
            return -1;
        frames++;
        more = zmq_msg_more (&self->in_envelope);
    }
    if (more) {
        *payload_p = zframe_recv (self->router);
        if (!*payload_p)
            return -1;
        frames++;
        more = zframe_more (*payload_p);
    }
    while (more) {
        if (zmq_msg_recv (&self->in_extra, router, 0) == -1)
            return -1;
        frames++;
        more = zmq_msg_more (&self->in_extra);
    }
    if (frames > 2) {
        //  Do not hold on to a stray frame until the next one comes
        zmq_msg_close (&self->in_extra);
        zmq_msg_init (&self->in_extra);
    }
    return frames;
}

//  Handle up to `batch` messages waiting on the ROUTER.
static void
s_self_drain (self_t *self, int64_t now)
{
    void *router = self->router_handle;
    for (uint32_t i = 0; i < self->cfg.batch; i++) {
        if (zmq_msg_recv (&self->in_id, router, ZMQ_DONTWAIT) == -1)
            break; //  EAGAIN: nothing more
        zframe_t *payload = NULL;
        int frames = s_self_read_frames (self, &payload);
        if (frames == -1) {
            zframe_destroy (&payload);
            break;
        }
        zframe_reset (self->routing_id, zmq_msg_data (&self->in_id),
                      zmq_msg_size (&self->in_id));
        core_handle_frames (self->core, self->routing_id,
                            frames ? zmq_msg_data (&self->in_envelope) : NULL,
                            frames ? zmq_msg_size (&self->in_envelope) : 0,
                            (size_t) frames, &payload, now);
        zframe_destroy (&payload);
        s_self_flush (self, now);
    }
}

static void
s_self_handle_pipe (self_t *self)
{
    char *command = zstr_recv (self->pipe);
    if (!command) {
        self->terminated = true; //  interrupted or pipe gone
        return;
    }
    if (streq (command, "$TERM"))
        self->terminated = true;
    else if (streq (command, "PORT"))
        zsock_send (self->pipe, "ii", self->router_port, self->monitor_port);
    else if (streq (command, "STATUS"))
        zsock_send (self->pipe, "is", self->status,
                    self->status ? self->error : "");
    else if (streq (command, "STATS")) {
        const core_stats_t *stats = core_stats (self->core);
        zsock_send (self->pipe, "8888",
                    (uint64_t) core_agent_count (self->core),
                    (uint64_t) core_request_count (self->core),
                    (uint64_t) core_edge_count (self->core), stats->malformed);
    } else {
        char quoted[128];
        tlog (TLOG_WARN, "router: unknown pipe command", "command=%s",
              tlog_quote (command, quoted, sizeof quoted));
    }
    zstr_free (&command);
}

//  Returns the poll timeout: ms until the earliest deadline, capped.
static int
s_self_timeout (self_t *self)
{
    if (self->status != 0)
        return -1;
    int64_t due = core_next_due (self->core);
    if (due < 0)
        return S_MAX_WAIT_MS;
    int64_t wait = due - zclock_mono ();
    if (wait < 0)
        return 0;
    return wait > S_MAX_WAIT_MS ? S_MAX_WAIT_MS : (int) wait;
}

void
router_actor (zsock_t *pipe, void *args)
{
    self_t *self = s_self_new (pipe, (const router_config_t *) args);
    //  From here on the caller's config is no longer used.
    zsock_signal (pipe, 0);

    while (!self->terminated) {
        void *which = zpoller_wait (self->poller, s_self_timeout (self));
        if (!which && zpoller_terminated (self->poller)
            && zmq_errno () == ETERM)
            break; //  the context is going away
        int64_t now = zclock_mono ();
        if (which == self->pipe) {
            s_self_handle_pipe (self);
            if (self->terminated)
                break;
        }
        if (self->status != 0)
            continue;
        s_self_read_subscriptions (self);
        s_self_drain (self, now);
        core_tick (self->core, now);
        s_self_flush (self, now);
    }
    s_self_destroy (&self);
}

zactor_t *
router_actor_start (const router_config_t *cfg)
{
    assert (cfg);
    zactor_t *actor = zactor_new (router_actor, (void *) cfg);
    assert (actor);
    int status = -1;
    char *error = NULL;
    if (zstr_send (actor, "STATUS") == -1
        || zsock_recv (actor, "is", &status, &error) == -1)
        status = -1;
    if (status != 0)
        zactor_destroy (&actor); //  the actor has logged why
    zstr_free (&error);
    return actor;
}
