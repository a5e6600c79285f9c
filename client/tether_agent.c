/*  =========================================================================
    tether_agent - keeps a device reachable through a Tether edge

    tether_agent_run loops over subscription attempts.  Each attempt opens a
    fresh channel to the current edge address, starts
    AgentRequestSubscribe(SubscriberInfo), and reads AgentRequest messages
    until the stream ends; then it decides how long to wait and where to go
    next:

    - stopped: return;
    - ABORTED "superseded": another subscription with our id took over.
      Log it and wait at least the superseded delay (with jitter), on the
      same address: two devices sharing an id alternate slowly instead of
      fighting;
    - UNAVAILABLE on a stream that was up and stable (the edge is shutting
      down, or the connection broke): move to the next address, after a
      random 0..rotate delay (tether_agent_set_rotate_delay) so agents cut
      off together by an edge shutdown do not all arrive at once;
    - anything else: count a failure, wait the backoff delay, move to the
      next address.
    A stream is stable once it carried a request or lived for the stable
    time (tether_agent_set_stable_time); only a stable stream resets the failure count, so an edge
    that accepts and drops us at once cannot cause a tight loop.

    Only the run thread touches the request table and the backoff; `mutex`
    guards what tether_agent_stop touches from other threads (the stopped
    flag and the current call), and `cond` wakes a backoff wait.
    =========================================================================
*/
#include "tether_internal.h"
#include "tether_addrs.h"
#include "tether_backoff.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

//  Completion tags of the subscription call.
typedef enum
{
    S_TAG_SEND = 1,     //  Metadata, SubscriberInfo, half-close
    S_TAG_METADATA = 2, //  Server's initial metadata
    S_TAG_MESSAGE = 3,  //  One AgentRequest
    S_TAG_STATUS = 4    //  Final status
} s_tag_t;

struct _tether_agent_t
{
    char *id;              //  Agent id
    tether_addrs_t *addrs; //  Edge addresses, rotated on failure
    char **label_keys;     //  Labels, parallel arrays
    char **label_values;
    size_t label_count;
    tether_handler_fn *handler; //  Request handler, or NULL
    void *handler_arg;
    uint32_t backoff_initial_ms;
    uint32_t backoff_max_ms;
    double backoff_multiplier;
    tether_jitter_t backoff_jitter;
    uint32_t superseded_ms; //  Floor of the wait after superseded
    uint32_t keepalive_ms;  //  HTTP/2 ping after this much silence
    uint32_t stable_ms;     //  A stream this old counts as stable
    uint32_t rotate_ms;     //  Max random wait before the next edge
    uint32_t max_receive;   //  Largest request message, bytes
    uint32_t end_wait_ms;   //  Bound on tether_request_end's wait
    uint64_t seed;          //  Jitter seed
    tether_log_t log;       //  Where lines go
    tether_security_t sec;  //  TLS and token settings

    pthread_mutex_t mutex; //  Guards the fields below
    pthread_cond_t cond;   //  Signalled on stop
    bool stopped;          //  tether_agent_stop was called
    bool running;          //  tether_agent_run entered
    grpc_call *call;       //  Current subscription, or NULL

    atomic_uint_fast64_t attempts; //  Subscription attempts so far
    tether_request_t **requests;   //  Live requests (table references)
    size_t request_count;
    size_t request_max;
};

tether_agent_t *
tether_agent_new (const char *edges, const char *agent_id)
{
    if (!agent_id || !*agent_id)
        return NULL;
    tether_addrs_t *addrs = tether_addrs_new (edges);
    if (!addrs)
        return NULL;
    tether_agent_t *self = (tether_agent_t *) calloc (1, sizeof *self);
    assert (self);
    self->id = strdup (agent_id);
    assert (self->id);
    self->addrs = addrs;
    self->backoff_initial_ms = 500;
    self->backoff_max_ms = 30000;
    self->backoff_multiplier = 2.0;
    self->backoff_jitter = TETHER_JITTER_FULL;
    self->superseded_ms = 10000;
    self->keepalive_ms = 30000;
    self->stable_ms = TETHER_STABLE_DEFAULT_MS;
    self->rotate_ms = TETHER_ROTATE_DELAY_DEFAULT_MS;
    self->max_receive = TETHER_MAX_RECEIVE_DEFAULT;
    self->end_wait_ms = TETHER_END_WAIT_DEFAULT_MS;
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    self->seed = ((uint64_t) ts.tv_nsec << 20) ^ (uint64_t) ts.tv_sec
                 ^ ((uint64_t) getpid () << 40);
    self->log.level = TETHER_LOG_INFO;
    self->log.svc = "tether-agent";
    pthread_mutex_init (&self->mutex, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->cond, &attr);
    pthread_condattr_destroy (&attr);
    atomic_init (&self->attempts, 0);
    grpc_init ();
    return self;
}

void
tether_agent_destroy (tether_agent_t **self_p)
{
    assert (self_p);
    tether_agent_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->request_count; i++)
        tether_request_release (&self->requests[i]);
    free (self->requests);
    for (size_t i = 0; i < self->label_count; i++) {
        free (self->label_keys[i]);
        free (self->label_values[i]);
    }
    free (self->label_keys);
    free (self->label_values);
    tether_addrs_destroy (&self->addrs);
    tether_security_clear (&self->sec);
    pthread_cond_destroy (&self->cond);
    pthread_mutex_destroy (&self->mutex);
    free (self->id);
    free (self);
    grpc_shutdown ();
    *self_p = NULL;
}

void
tether_agent_set_label (tether_agent_t *self,
                        const char *key,
                        const char *value)
{
    assert (self && key && value);
    for (size_t i = 0; i < self->label_count; i++)
        if (strcmp (self->label_keys[i], key) == 0) {
            free (self->label_values[i]);
            self->label_values[i] = strdup (value);
            assert (self->label_values[i]);
            return;
        }
    size_t n = self->label_count + 1;
    self->label_keys =
        (char **) realloc (self->label_keys, n * sizeof (char *));
    self->label_values =
        (char **) realloc (self->label_values, n * sizeof (char *));
    assert (self->label_keys && self->label_values);
    self->label_keys[n - 1] = strdup (key);
    self->label_values[n - 1] = strdup (value);
    assert (self->label_keys[n - 1] && self->label_values[n - 1]);
    self->label_count = n;
}

void
tether_agent_set_handler (tether_agent_t *self,
                          tether_handler_fn *handler,
                          void *arg)
{
    assert (self);
    self->handler = handler;
    self->handler_arg = arg;
}

int
tether_agent_set_backoff (tether_agent_t *self,
                          uint32_t initial_ms,
                          uint32_t max_ms,
                          double multiplier,
                          tether_jitter_t jitter)
{
    assert (self);
    tether_backoff_t *check =
        tether_backoff_new (initial_ms, max_ms, multiplier, jitter, 1);
    if (!check)
        return -1;
    tether_backoff_destroy (&check);
    self->backoff_initial_ms = initial_ms;
    self->backoff_max_ms = max_ms;
    self->backoff_multiplier = multiplier;
    self->backoff_jitter = jitter;
    return 0;
}

void
tether_agent_set_superseded_delay (tether_agent_t *self, uint32_t ms)
{
    assert (self);
    self->superseded_ms = ms;
}

void
tether_agent_set_keepalive (tether_agent_t *self, uint32_t ms)
{
    assert (self);
    self->keepalive_ms = ms;
}

void
tether_agent_set_stable_time (tether_agent_t *self, uint32_t ms)
{
    assert (self);
    self->stable_ms = ms;
}

void
tether_agent_set_rotate_delay (tether_agent_t *self, uint32_t ms)
{
    assert (self);
    self->rotate_ms = ms;
}

int
tether_agent_set_max_receive (tether_agent_t *self, uint32_t bytes)
{
    assert (self);
    if (bytes == 0 || bytes > TETHER_MAX_RECEIVE_LIMIT)
        return -1;
    self->max_receive = bytes;
    return 0;
}

void
tether_agent_set_end_wait (tether_agent_t *self, uint32_t ms)
{
    assert (self);
    self->end_wait_ms = ms;
}

int
tether_agent_set_tls (tether_agent_t *self,
                      const char *ca_file,
                      const char *cert_file,
                      const char *key_file)
{
    assert (self);
    return tether_security_set_tls (&self->sec, ca_file, cert_file, key_file);
}

void
tether_agent_set_token (tether_agent_t *self, const char *token)
{
    assert (self);
    tether_security_set_token (&self->sec, token);
}

void
tether_agent_set_seed (tether_agent_t *self, uint64_t seed)
{
    assert (self);
    self->seed = seed;
}

void
tether_agent_set_log (tether_agent_t *self,
                      tether_log_level_t level,
                      tether_log_fn *fn,
                      void *arg)
{
    assert (self);
    self->log.level = level;
    self->log.fn = fn;
    self->log.arg = arg;
}

const char *
tether_agent_id (tether_agent_t *self)
{
    assert (self);
    return self->id;
}

uint64_t
tether_agent_attempts (tether_agent_t *self)
{
    assert (self);
    return atomic_load (&self->attempts);
}

void
tether_agent_stop (tether_agent_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    self->stopped = true;
    if (self->call)
        grpc_call_cancel (self->call, NULL);
    pthread_cond_broadcast (&self->cond);
    pthread_mutex_unlock (&self->mutex);
}

static bool
s_stopped (tether_agent_t *self)
{
    pthread_mutex_lock (&self->mutex);
    bool stopped = self->stopped;
    pthread_mutex_unlock (&self->mutex);
    return stopped;
}

//  Wait `ms` or until stopped.
static void
s_sleep (tether_agent_t *self, uint32_t ms)
{
    struct timespec until;
    clock_gettime (CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long) (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock (&self->mutex);
    while (!self->stopped
           && pthread_cond_timedwait (&self->cond, &self->mutex, &until) == 0)
        ;
    pthread_mutex_unlock (&self->mutex);
}

//  Drop table entries whose handler has finished with them.
static void
s_prune (tether_agent_t *self)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->request_count; i++) {
        if (tether_request_ended (self->requests[i]))
            tether_request_release (&self->requests[i]);
        else
            self->requests[kept++] = self->requests[i];
    }
    self->request_count = kept;
}

static void
s_handle_message (tether_agent_t *self,
                  tether_conn_t *conn,
                  grpc_byte_buffer *buffer)
{
    size_t size;
    uint8_t *data = tether_buffer_read (buffer, &size);
    Tether__V1__AgentRequest *message =
        tether__v1__agent_request__unpack (NULL, size, data);
    free (data);
    char quoted[3][128];
    if (!message) {
        tether_log (&self->log, TETHER_LOG_WARN, "malformed request dropped",
                    "agent=%s size=%zu",
                    tlog_quote (self->id, quoted[0], sizeof quoted[0]), size);
        return;
    }
    s_prune (self);
    if (message->cancel) {
        tether_log (&self->log, TETHER_LOG_INFO, "request cancelled",
                    "agent=%s request=%s",
                    tlog_quote (self->id, quoted[0], sizeof quoted[0]),
                    tlog_quote (message->id, quoted[1], sizeof quoted[1]));
        for (size_t i = 0; i < self->request_count; i++)
            if (strcmp (tether_request_id (self->requests[i]), message->id)
                == 0)
                tether_request_cancel (self->requests[i], false);
        tether__v1__agent_request__free_unpacked (message, NULL);
        return;
    }
    tether_log (&self->log, TETHER_LOG_DEBUG, "request",
                "agent=%s request=%s call=%s size=%zu",
                tlog_quote (self->id, quoted[0], sizeof quoted[0]),
                tlog_quote (message->id, quoted[1], sizeof quoted[1]),
                tlog_quote (message->call, quoted[2], sizeof quoted[2]),
                message->payload.len);
    tether_request_t *request =
        tether_request_new (&message, conn, self->end_wait_ms);
    if (self->request_count == self->request_max) {
        self->request_max = self->request_max ? self->request_max * 2 : 16;
        self->requests = (tether_request_t **) realloc (
            self->requests, self->request_max * sizeof (tether_request_t *));
        assert (self->requests);
    }
    self->requests[self->request_count++] = request;
    if (self->handler)
        self->handler (self, request, self->handler_arg);
    else
        tether_request_end (&request, TETHER_UNIMPLEMENTED, "no handler");
}

//  Start one batch on the subscription; returns true when it started.
static bool
s_start (grpc_call *call, grpc_op *ops, size_t nops, s_tag_t tag)
{
    return grpc_call_start_batch (call, ops, nops, (void *) (intptr_t) tag,
                                  NULL)
           == GRPC_CALL_OK;
}

typedef struct
{
    grpc_status_code status; //  Final status
    char details[256];       //  Its message
    bool established;        //  Saw metadata or a message
    bool stable;             //  Carried a request or lived long
} s_outcome_t;

//  One subscription attempt, from connect to the end of the stream.
static void
s_attempt (tether_agent_t *self, tether_conn_t *conn, s_outcome_t *outcome)
{
    memset (outcome, 0, sizeof *outcome);
    outcome->status = GRPC_STATUS_UNKNOWN;
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next (NULL);
    grpc_call *call = tether_conn_call (conn, cq, TETHER_METHOD_SUBSCRIBE,
                                        gpr_inf_future (GPR_CLOCK_REALTIME));
    pthread_mutex_lock (&self->mutex);
    self->call = call;
    if (self->stopped)
        grpc_call_cancel (call, NULL);
    pthread_mutex_unlock (&self->mutex);
    int64_t started = tether_now_ms ();

    //  SubscriberInfo{agent_id, labels}
    Tether__V1__SubscriberInfo info = TETHER__V1__SUBSCRIBER_INFO__INIT;
    info.agent_id = self->id;
    Tether__V1__SubscriberInfo__LabelsEntry entries[self->label_count + 1];
    Tether__V1__SubscriberInfo__LabelsEntry *entry_ps[self->label_count + 1];
    for (size_t i = 0; i < self->label_count; i++) {
        Tether__V1__SubscriberInfo__LabelsEntry init =
            TETHER__V1__SUBSCRIBER_INFO__LABELS_ENTRY__INIT;
        entries[i] = init;
        entries[i].key = self->label_keys[i];
        entries[i].value = self->label_values[i];
        entry_ps[i] = &entries[i];
    }
    info.n_labels = self->label_count;
    info.labels = entry_ps;
    grpc_byte_buffer *send_buffer = tether_buffer_pack (&info.base);

    grpc_metadata_array initial_md, trailing_md;
    grpc_metadata_array_init (&initial_md);
    grpc_metadata_array_init (&trailing_md);
    grpc_byte_buffer *recv_buffer = NULL;
    grpc_slice details = grpc_empty_slice ();
    int pending = 0;
    bool reading = false;

    grpc_op ops[3];
    memset (ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    grpc_metadata md;
    ops[0].data.send_initial_metadata.count = tether_conn_authorize (conn, &md);
    ops[0].data.send_initial_metadata.metadata = &md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send_buffer;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    pending += s_start (call, ops, 3, S_TAG_SEND);

    memset (ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[0].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
    pending += s_start (call, ops, 1, S_TAG_METADATA);

    memset (ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &trailing_md;
    ops[0].data.recv_status_on_client.status = &outcome->status;
    ops[0].data.recv_status_on_client.status_details = &details;
    bool status_pending = s_start (call, ops, 1, S_TAG_STATUS);
    pending += status_pending;

    memset (ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_MESSAGE;
    ops[0].data.recv_message.recv_message = &recv_buffer;
    reading = s_start (call, ops, 1, S_TAG_MESSAGE);
    pending += reading;

    char quoted[2][128];
    while (pending > 0) {
        grpc_event event = grpc_completion_queue_next (
            cq, gpr_inf_future (GPR_CLOCK_REALTIME), NULL);
        if (event.type != GRPC_OP_COMPLETE)
            break;
        pending--;
        switch ((s_tag_t) (intptr_t) event.tag) {
            case S_TAG_METADATA:
                if (event.success && status_pending) {
                    outcome->established = true;
                    tether_log (&self->log, TETHER_LOG_INFO, "subscribed",
                                "agent=%s edge=%s",
                                tlog_quote (self->id, quoted[0], 128),
                                tlog_quote (tether_conn_address (conn),
                                            quoted[1], 128));
                }
                break;
            case S_TAG_MESSAGE:
                reading = false;
                if (event.success && recv_buffer) {
                    outcome->established = true;
                    outcome->stable = true;
                    s_handle_message (self, conn, recv_buffer);
                    grpc_byte_buffer_destroy (recv_buffer);
                    recv_buffer = NULL;
                    reading = s_start (call, ops, 1, S_TAG_MESSAGE);
                    pending += reading;
                }
                break;
            case S_TAG_STATUS:
                status_pending = false;
                break;
            default:
                break;
        }
    }
    pthread_mutex_lock (&self->mutex);
    self->call = NULL;
    pthread_mutex_unlock (&self->mutex);
    if (tether_now_ms () - started >= (int64_t) self->stable_ms
        && outcome->established)
        outcome->stable = true;
    size_t len = GRPC_SLICE_LENGTH (details);
    if (len >= sizeof outcome->details)
        len = sizeof outcome->details - 1;
    memcpy (outcome->details, GRPC_SLICE_START_PTR (details), len);
    outcome->details[len] = 0;

    grpc_slice_unref (details);
    grpc_metadata_array_destroy (&initial_md);
    grpc_metadata_array_destroy (&trailing_md);
    grpc_byte_buffer_destroy (send_buffer);
    grpc_call_unref (call);
    tether_cq_destroy (&cq);
}

int
tether_agent_run (tether_agent_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    bool twice = self->running;
    self->running = true;
    pthread_mutex_unlock (&self->mutex);
    if (twice)
        return -1;

    tether_backoff_t *backoff = tether_backoff_new (
        self->backoff_initial_ms, self->backoff_max_ms,
        self->backoff_multiplier, self->backoff_jitter, self->seed);
    assert (backoff);
    char quoted[3][128];
    tlog_quote (self->id, quoted[0], sizeof quoted[0]);
    while (!s_stopped (self)) {
        const char *address = tether_addrs_current (self->addrs);
        uint64_t attempt = atomic_fetch_add (&self->attempts, 1) + 1;
        tether_log (&self->log, TETHER_LOG_INFO, "connecting",
                    "agent=%s edge=%s attempt=%" PRIu64, quoted[0],
                    tlog_quote (address, quoted[1], sizeof quoted[1]), attempt);
        tether_conn_t *conn = tether_conn_new (address, self->keepalive_ms,
                                               self->max_receive, &self->sec);
        s_outcome_t outcome;
        s_attempt (self, conn, &outcome);
        tether_conn_unref (&conn);
        if (s_stopped (self))
            break;
        if (outcome.stable)
            tether_backoff_reset (backoff);

        uint32_t delay_ms;
        const char *what;
        tether_log_level_t level = TETHER_LOG_WARN;
        if (outcome.status == GRPC_STATUS_ABORTED
            && strstr (outcome.details, "superseded")) {
            delay_ms =
                tether_backoff_next_at_least (backoff, self->superseded_ms);
            what = "superseded by another subscription with this id";
        } else if (outcome.status == GRPC_STATUS_UNAVAILABLE
                   && outcome.stable) {
            delay_ms =
                (uint32_t) tether_backoff_random (backoff, self->rotate_ms);
            what = "edge went away, trying the next edge";
            tether_addrs_advance (self->addrs);
        } else {
            delay_ms = tether_backoff_next (backoff);
            what = "subscription ended";
            tether_addrs_advance (self->addrs);
            if (outcome.status == GRPC_STATUS_INVALID_ARGUMENT
                || outcome.status == GRPC_STATUS_RESOURCE_EXHAUSTED)
                level = TETHER_LOG_ERROR;
        }
        tether_log (&self->log, level, what,
                    "agent=%s edge=%s status=%s detail=%s retry_ms=%u "
                    "failures=%u",
                    quoted[0],
                    tlog_quote (address, quoted[1], sizeof quoted[1]),
                    tether_status_name ((int) outcome.status),
                    tlog_quote (outcome.details, quoted[2], sizeof quoted[2]),
                    delay_ms, tether_backoff_failures (backoff));
        if (delay_ms > 0)
            s_sleep (self, delay_ms);
    }
    tether_backoff_destroy (&backoff);

    //  Stopping: cancel what is still running.
    for (size_t i = 0; i < self->request_count; i++)
        if (!tether_request_ended (self->requests[i]))
            tether_request_cancel (self->requests[i], true);
    s_prune (self);
    tether_log (&self->log, TETHER_LOG_INFO, "stopped", "agent=%s", quoted[0]);
    return 0;
}
