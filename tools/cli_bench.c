/*  =========================================================================
    cli_bench - `tether bench`, a load generator for a Tether gateway

    Everything runs on one thread around one gRPC completion queue: agents'
    subscription streams, their response calls, clients' publish calls and
    ListAgents.  No thread per agent, no libtether convenience layer: each
    call is a small struct whose ops are the completion tags, so the tool
    costs a few microseconds of CPU per request and stays out of the way of
    the gateway it measures on the same machine.

    A run goes through phases:
        CONNECT   agents subscribe, at most --connect-window at a time
                  (an agent counts as connected when the edge's initial
                  metadata arrives);
        LIST      ListAgents on the client edge, following next_page_token
                  from page to page, until every agent shows;
        WARMUP    clients run, nothing is recorded;
        MEASURE   completions are recorded; CPU and RSS of --pids and of
                  this process are sampled at both ends of the window;
        DRAIN     no new requests; in-flight ones finish (not recorded);
        CLOSE     subscriptions are cancelled, every call is collected.
    --idle stops after LIST: it reports the RSS the gateway processes grew
    by per agent and how long listing every agent takes (all pages, and
    the slowest page), then holds the agents until SIGINT/SIGTERM (unless
    --no-hold).

    Connections: one per agent by default, as devices have.  Each takes a
    descriptor here and one in the edge, so when the descriptor limit
    (raised to the hard limit first) cannot hold one per agent, agents
    share the most connections the limit allows and the report says how
    many there were.

    Closed loop (--clients C): C requests always in flight, latency from
    each request's send.  Open loop (--rate R): requests start at fixed
    intervals whatever the gateway does, latency from the scheduled start,
    so a stalled gateway shows as latency instead of a lower send rate.
    The open loop's sends are timed by a second thread, the pacer (see
    s_pacer: the completion queue's timeouts are too coarse); everything
    else stays on the main thread.

    Messages are encoded and decoded by hand (a few protobuf fields), and
    every agent reuses one pre-encoded request and one shared response
    slice, so the hot path allocates only gRPC's own objects.

    The request carries headers `chunks` and `chunk-bytes` so a server that
    answers by itself (bench_limit_server) returns the same shape.
    =========================================================================
*/
#include "cli_bench.h"
#include "cli_parse.h"
#include "tstatus.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_PIDS     8
#define S_LIST_SAMPLES 5
#define S_HIST_SUB     64 //  sub-buckets per power of two (~1.5 % error)
#define S_HIST_SIZE    (S_HIST_SUB * 42)

#define S_CONTAINER_OF(ptr, type, member)                                      \
    ((type *) ((char *) (ptr) -offsetof (type, member)))

//  -------------------------------------------------------------------------
//  Settings

typedef struct
{
    char *edge;                  //  clients' edge; owned
    char *agent_edge;            //  agents' edge(s), comma-separated; owned
    uint32_t agents;             //  N
    uint32_t agent_channels;     //  0 = one connection per agent
    uint32_t clients;            //  closed-loop requests in flight
    uint32_t client_channels;    //  connections the clients share
    double rate;                 //  open loop: requests/s; 0 = closed loop
    uint32_t max_in_flight;      //  open loop: cap on requests in flight
    uint32_t chunks;             //  response messages per request
    uint32_t chunk_bytes;        //  payload bytes per response message
    uint32_t payload_bytes;      //  request payload bytes
    uint32_t duration_ms;        //  measured window
    uint32_t warmup_ms;          //  unrecorded run before it
    uint32_t timeout_ms;         //  each request's deadline
    uint32_t connect_timeout_ms; //  agents connected and listed by then
    uint32_t connect_window;     //  subscriptions being set up at once
    uint32_t list_page_size;     //  ListAgents limit per page; 0 = the
                                 //  gateway's maximum
    int pids[S_MAX_PIDS];        //  gateway processes to watch
    size_t n_pids;               //
    bool idle;                   //  --idle
    bool hold;                   //  idle: wait for a signal after reporting
    bool json;                   //  --json
} options_t;

//  -------------------------------------------------------------------------
//  Latency histogram: microseconds, log-linear buckets.

typedef struct
{
    uint64_t counts[S_HIST_SIZE];
    uint64_t total;
    uint64_t max;
} hist_t;

static size_t
s_hist_index (uint64_t value)
{
    if (value < 2 * S_HIST_SUB)
        return (size_t) value;
    int msb = 63 - __builtin_clzll (value);
    int shift = msb - 6; //  value >> shift lands in [64, 127]
    size_t index = (size_t) shift * S_HIST_SUB + (size_t) (value >> shift);
    return index < S_HIST_SIZE ? index : S_HIST_SIZE - 1;
}

//  The middle of the values a bucket holds.
static uint64_t
s_hist_value (size_t index)
{
    if (index < 2 * S_HIST_SUB)
        return index;
    size_t shift = index / S_HIST_SUB - 1;
    uint64_t mantissa = index - shift * S_HIST_SUB;
    return (mantissa << shift) + ((1ull << shift) >> 1);
}

static void
s_hist_add (hist_t *self, uint64_t value)
{
    self->counts[s_hist_index (value)]++;
    self->total++;
    if (value > self->max)
        self->max = value;
}

static uint64_t
s_hist_percentile (hist_t *self, double percent)
{
    if (self->total == 0)
        return 0;
    uint64_t rank = (uint64_t) ceil (percent / 100.0 * (double) self->total);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < S_HIST_SIZE; i++) {
        seen += self->counts[i];
        if (seen >= rank) {
            uint64_t value = s_hist_value (i);
            return value < self->max ? value : self->max;
        }
    }
    return self->max;
}

//  -------------------------------------------------------------------------
//  Protobuf by hand: the few fields the bench writes and reads.

static size_t
s_pb_varint (uint8_t *out, uint64_t value)
{
    size_t n = 0;
    while (value >= 0x80) {
        out[n++] = (uint8_t) (value | 0x80);
        value >>= 7;
    }
    out[n++] = (uint8_t) value;
    return n;
}

//  Append a length-delimited field; `out` must have room.
static size_t
s_pb_bytes (uint8_t *out, uint32_t field, const void *data, size_t size)
{
    size_t n = s_pb_varint (out, (uint64_t) field << 3 | 2);
    n += s_pb_varint (out + n, size);
    if (size)
        memcpy (out + n, data, size);
    return n + size;
}

static size_t
s_pb_map_entry (uint8_t *out,
                uint32_t field,
                const char *key,
                const char *value)
{
    uint8_t entry[128];
    size_t size = s_pb_bytes (entry, 1, key, strlen (key));
    size += s_pb_bytes (entry + size, 2, value, strlen (value));
    return s_pb_bytes (out, field, entry, size);
}

//  Read a varint at *at; returns -1 past `end`.
static int
s_pb_read_varint (const uint8_t **at, const uint8_t *end, uint64_t *value)
{
    uint64_t result = 0;
    for (int shift = 0; shift < 64 && *at < end; shift += 7) {
        uint8_t byte = *(*at)++;
        result |= (uint64_t) (byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *value = result;
            return 0;
        }
    }
    return -1;
}

//  Walk the top-level fields of a message.  For field `want` (length-
//  delimited) stores the last occurrence in *data/*size and counts them in
//  *count; *flag gets the value of varint field `flag_field`.  Returns 0,
//  or -1 for malformed bytes.
static int
s_pb_scan (const uint8_t *at,
           size_t len,
           uint32_t want,
           const uint8_t **data,
           size_t *size,
           size_t *count,
           uint32_t flag_field,
           uint64_t *flag)
{
    const uint8_t *end = at + len;
    while (at < end) {
        uint64_t key, value;
        if (s_pb_read_varint (&at, end, &key))
            return -1;
        uint32_t field = (uint32_t) (key >> 3);
        switch (key & 7) {
            case 0:
                if (s_pb_read_varint (&at, end, &value))
                    return -1;
                if (field == flag_field && flag)
                    *flag = value;
                break;
            case 1:
                if (end - at < 8)
                    return -1;
                at += 8;
                break;
            case 5:
                if (end - at < 4)
                    return -1;
                at += 4;
                break;
            case 2:
                if (s_pb_read_varint (&at, end, &value)
                    || value > (uint64_t) (end - at))
                    return -1;
                if (field == want) {
                    if (data)
                        *data = at;
                    if (size)
                        *size = (size_t) value;
                    if (count)
                        (*count)++;
                }
                at += value;
                break;
            default:
                return -1;
        }
    }
    return 0;
}

//  -------------------------------------------------------------------------
//  Calls.  Each op embedded in a call struct is a completion tag.

typedef enum
{
    OP_SUB_START = 1,
    OP_SUB_RECV,
    OP_SUB_STATUS,
    OP_RESP_SEND,
    OP_RESP_RECV,
    OP_PUB_START,
    OP_PUB_RECV,
    OP_PUB_STATUS,
    OP_LIST
} op_kind_t;

typedef struct
{
    op_kind_t kind;
} op_t;

typedef struct
{
    grpc_channel *channel; //  owned
    void *h_subscribe;     //  registered methods
    void *h_publish;
    void *h_respond;
    void *h_list;
} chan_t;

typedef struct _bench_t bench_t;

typedef struct
{
    bench_t *bench;
    uint32_t index;
    chan_t *chan;    //  borrowed from bench->agent_chans
    char id[48];     //  agent id
    grpc_call *call; //  the subscription
    op_t op_start, op_recv, op_status;
    int pending;    //  ops in flight
    bool connected; //  initial metadata came
    grpc_metadata_array initial_md, trailing_md;
    grpc_byte_buffer *recv_buf;
    grpc_status_code status;
    grpc_slice details;
    grpc_slice request_slice; //  pre-encoded AgentRequest to this agent
    bool has_request_slice;
} agent_t;

typedef struct
{
    agent_t *agent; //  whose request this answers
    grpc_call *call;
    op_t op_send, op_recv;
    int pending;
    uint32_t chunks_left; //  response messages still to send
    bool recv_with_send;  //  recv ops ride in the first send batch
    grpc_metadata md[1];  //  x-request-id
    grpc_byte_buffer *send_buf;
    grpc_metadata_array initial_md, trailing_md;
    grpc_byte_buffer *recv_buf;
    grpc_status_code status;
    grpc_slice details;
} resp_t;

typedef struct
{
    bench_t *bench;
    grpc_call *call;
    op_t op_start, op_recv, op_status;
    int pending;
    int64_t t_start; //  scheduled (open loop) or actual start, ns
    uint32_t got;    //  response messages received
    uint64_t bytes;  //  response bytes received
    bool eof;        //  NULL read
    grpc_byte_buffer *send_buf;
    grpc_metadata_array initial_md, trailing_md;
    grpc_byte_buffer *recv_buf;
    grpc_status_code status;
    grpc_slice details;
} pub_t;

typedef struct
{
    grpc_call *call;
    op_t op;
    int64_t t_start;
    grpc_op ops[6];
    grpc_byte_buffer *send_buf;
    grpc_metadata_array initial_md, trailing_md;
    grpc_byte_buffer *recv_buf;
    grpc_status_code status;
    grpc_slice details;
} list_t;

typedef enum
{
    PH_CONNECT = 1,
    PH_LIST,
    PH_WARMUP,
    PH_MEASURE,
    PH_DRAIN,
    PH_HOLD,
    PH_CLOSE,
    PH_DONE
} phase_t;

typedef struct
{
    uint64_t cpu_ticks; //  utime + stime
    uint64_t rss_kib;   //  VmRSS
    uint64_t hwm_kib;   //  VmHWM
} proc_sample_t;

struct _bench_t
{
    options_t *opt;
    grpc_completion_queue *cq;
    chan_t *agent_chans; //  n_agent_chans
    size_t n_agent_chans;
    chan_t *client_chans; //  n_client_chans
    size_t n_client_chans;
    agent_t *agents;           //  opt->agents
    char prefix[32];           //  agent id prefix: "b<pid>-"
    grpc_slice response_slice; //  pre-encoded AgentResponse, shared
    grpc_slice respond_key;    //  "x-request-id"
    phase_t phase;
    int64_t phase_end; //  ns; 0 = none
    int64_t connect_deadline;
    int signal_fd;
    bool interrupted;
    bool failed; //  run could not complete
    char failure[256];

    //  agents
    uint32_t agents_started, agents_connected, agents_lost;
    uint32_t live_calls;   //  subscriptions + responders not collected
    uint64_t agent_errors; //  response calls that did not end OK
    //  listing: a walk is ListAgents page after page
    list_t *list;                   //  in flight, or NULL
    int64_t next_list_at;           //  ns: when the next walk starts
    size_t listed;                  //  agents the last complete walk showed
    char *walk_token;               //  page token of the call in flight; owned
    int64_t walk_start;             //  ns
    size_t walk_agents;             //  agents on the walk's pages so far
    size_t walk_pages;              //  pages so far
    double walk_page_max;           //  ms, the walk's slowest page
    double list_ms[S_LIST_SAMPLES]; //  complete walks of every agent
    double list_page_max[S_LIST_SAMPLES]; //  their slowest page, ms
    size_t list_pages[S_LIST_SAMPLES];    //  their pages
    size_t list_samples;
    bool walk_counted; //  a walk saw every agent: later walks are samples
    uint64_t fd_limit; //  RLIMIT_NOFILE after raising it
    double connect_s;  //  seconds until every agent was connected
    int64_t run_start; //  ns
    //  clients
    uint32_t next_agent; //  round robin
    uint32_t next_client_chan;
    atomic_uint in_flight; //  publish calls not collected
    int64_t next_send;     //  open loop: first scheduled start, ns
    int64_t interval_ns;   //  open loop
    atomic_bool pacing;    //  open loop: the pacer thread should run
    pthread_t pacer;       //  open loop: starts requests on schedule
    bool pacer_running;    //  pacer was started and not joined yet
    //  measured window
    int64_t window_start, window_end;
    hist_t hist;
    uint64_t ok, bytes;
    uint64_t errors[17];      //  by gRPC status
    uint64_t short_responses; //  OK with fewer messages than asked
    struct rusage ru_start, ru_end;
    proc_sample_t proc_start[S_MAX_PIDS], proc_end[S_MAX_PIDS];
    bool proc_ok[S_MAX_PIDS];
};

static int64_t
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static gpr_timespec
s_deadline_ms (uint32_t ms)
{
    return gpr_time_add (gpr_now (GPR_CLOCK_MONOTONIC),
                         gpr_time_from_millis (ms, GPR_TIMESPAN));
}

static gpr_timespec
s_deadline_at (int64_t at_ns)
{
    int64_t wait = at_ns - s_now_ns ();
    if (wait < 0)
        wait = 0;
    return gpr_time_add (gpr_now (GPR_CLOCK_MONOTONIC),
                         gpr_time_from_nanos (wait, GPR_TIMESPAN));
}

static const char *
s_status_name (int code)
{
    const char *name = tstatus_name (code);
    return name ? name : "UNKNOWN";
}
static void
s_fail (bench_t *self, const char *why)
{
    if (!self->failed) {
        self->failed = true;
        snprintf (self->failure, sizeof self->failure, "%s", why);
    }
}

//  -------------------------------------------------------------------------
//  /proc sampling

static int
s_proc_sample (int pid, proc_sample_t *sample)
{
    char path[64], buf[2048];
    memset (sample, 0, sizeof *sample);
    snprintf (path, sizeof path, "/proc/%d/stat", pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    size_t len = fread (buf, 1, sizeof buf - 1, file);
    fclose (file);
    buf[len] = 0;
    //  Fields after the command name, which may hold spaces: state is 3,
    //  utime 14, stime 15.
    char *at = strrchr (buf, ')');
    if (!at)
        return -1;
    unsigned long long utime = 0, stime = 0;
    if (sscanf (at + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                &utime, &stime)
        != 2)
        return -1;
    sample->cpu_ticks = utime + stime;

    snprintf (path, sizeof path, "/proc/%d/status", pid);
    file = fopen (path, "r");
    if (!file)
        return -1;
    char line[256];
    while (fgets (line, sizeof line, file)) {
        unsigned long long kib;
        if (sscanf (line, "VmRSS: %llu kB", &kib) == 1)
            sample->rss_kib = kib;
        else if (sscanf (line, "VmHWM: %llu kB", &kib) == 1)
            sample->hwm_kib = kib;
    }
    fclose (file);
    return 0;
}

static void
s_sample_all (bench_t *self, proc_sample_t *samples, struct rusage *ru)
{
    for (size_t i = 0; i < self->opt->n_pids; i++)
        if (s_proc_sample (self->opt->pids[i], &samples[i]))
            self->proc_ok[i] = false;
    getrusage (RUSAGE_SELF, ru);
}

//  -------------------------------------------------------------------------
//  Channels

static void
s_chan_init (chan_t *chan, const char *target)
{
    grpc_arg args[3];
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *) GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
    args[0].value.integer = 1; //  each channel its own TCP connection
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *) GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[1].value.integer = 256 * 1024 * 1024;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = (char *) GRPC_ARG_ENABLE_RETRIES;
    args[2].value.integer = 0;
    grpc_channel_args channel_args = {3, args};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create ();
    chan->channel = grpc_channel_create (target, creds, &channel_args);
    grpc_channel_credentials_release (creds);
    assert (chan->channel);
    chan->h_subscribe = grpc_channel_register_call (
        chan->channel, "/tether.v1.AgentGateway/AgentRequestSubscribe", NULL,
        NULL);
    chan->h_publish = grpc_channel_register_call (
        chan->channel, "/tether.v1.AgentGateway/AgentRequestPublish", NULL,
        NULL);
    chan->h_respond = grpc_channel_register_call (
        chan->channel, "/tether.v1.AgentGateway/AgentResponsePublish", NULL,
        NULL);
    chan->h_list = grpc_channel_register_call (
        chan->channel, "/tether.v1.AgentGateway/ListAgents", NULL, NULL);
}

static grpc_byte_buffer *
s_buffer (grpc_slice slice)
{
    //  The byte buffer takes its own reference to the slice.
    return grpc_raw_byte_buffer_create (&slice, 1);
}

static grpc_byte_buffer *
s_buffer_copy (const void *data, size_t size)
{
    grpc_slice slice =
        grpc_slice_from_copied_buffer ((const char *) data, size);
    grpc_byte_buffer *buffer = grpc_raw_byte_buffer_create (&slice, 1);
    grpc_slice_unref (slice);
    return buffer;
}

//  -------------------------------------------------------------------------
//  Agents

static void
s_agent_start (agent_t *self)
{
    bench_t *bench = self->bench;
    self->call = grpc_channel_create_registered_call (
        self->chan->channel, NULL, GRPC_PROPAGATE_DEFAULTS, bench->cq,
        self->chan->h_subscribe, gpr_inf_future (GPR_CLOCK_REALTIME), NULL);
    assert (self->call);
    bench->live_calls++;
    bench->agents_started++;

    uint8_t info[96];
    size_t size = s_pb_bytes (info, 1, self->id, strlen (self->id));
    grpc_byte_buffer *message = s_buffer_copy (info, size);

    grpc_op ops[4];
    memset (ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = message;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &self->initial_md;
    grpc_call_error rc =
        grpc_call_start_batch (self->call, ops, 4, &self->op_start, NULL);
    assert (rc == GRPC_CALL_OK);
    self->pending++;
    //  The batch holds its own reference to the message until it is sent.
    grpc_byte_buffer_destroy (message);

    memset (ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &self->trailing_md;
    ops[0].data.recv_status_on_client.status = &self->status;
    ops[0].data.recv_status_on_client.status_details = &self->details;
    rc = grpc_call_start_batch (self->call, ops, 1, &self->op_status, NULL);
    assert (rc == GRPC_CALL_OK);
    self->pending++;
}

static void
s_agent_recv (agent_t *self)
{
    grpc_op op;
    memset (&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &self->recv_buf;
    grpc_call_error rc =
        grpc_call_start_batch (self->call, &op, 1, &self->op_recv, NULL);
    assert (rc == GRPC_CALL_OK);
    self->pending++;
}

static void
s_agent_collect (agent_t *self)
{
    if (self->pending > 0 || !self->call)
        return;
    grpc_call_unref (self->call);
    self->call = NULL;
    self->bench->live_calls--;
}

static void s_resp_start (agent_t *agent, const uint8_t *id, size_t id_size);

static void
s_agent_on_recv (agent_t *self, bool ok)
{
    bench_t *bench = self->bench;
    self->pending--;
    if (!ok || !self->recv_buf) {
        s_agent_collect (self);
        return;
    }
    grpc_byte_buffer_reader reader;
    grpc_slice slice = grpc_empty_slice ();
    if (grpc_byte_buffer_reader_init (&reader, self->recv_buf)) {
        slice = grpc_byte_buffer_reader_readall (&reader);
        grpc_byte_buffer_reader_destroy (&reader);
    }
    grpc_byte_buffer_destroy (self->recv_buf);
    self->recv_buf = NULL;
    const uint8_t *id = NULL;
    size_t id_size = 0;
    uint64_t cancel = 0;
    if (s_pb_scan (GRPC_SLICE_START_PTR (slice), GRPC_SLICE_LENGTH (slice), 1,
                   &id, &id_size, NULL, 6, &cancel)
            == 0
        && id && !cancel && bench->phase < PH_CLOSE)
        s_resp_start (self, id, id_size);
    grpc_slice_unref (slice);
    s_agent_recv (self);
}

static void
s_agent_on_event (agent_t *self, op_t *op, bool ok)
{
    bench_t *bench = self->bench;
    switch (op->kind) {
        case OP_SUB_START:
            self->pending--;
            if (ok) {
                self->connected = true;
                bench->agents_connected++;
                s_agent_recv (self);
            } else
                s_agent_collect (self);
            break;
        case OP_SUB_RECV:
            s_agent_on_recv (self, ok);
            break;
        case OP_SUB_STATUS:
            self->pending--;
            if (bench->phase < PH_CLOSE) {
                bench->agents_lost++;
                if (bench->phase <= PH_LIST) {
                    char why[200];
                    char *details = grpc_slice_to_c_string (self->details);
                    snprintf (why, sizeof why,
                              "agent %s: subscription ended %s \"%s\"",
                              self->id, s_status_name (self->status), details);
                    gpr_free (details);
                    s_fail (bench, why);
                }
            }
            s_agent_collect (self);
            break;
        default:
            assert (false);
    }
}

//  -------------------------------------------------------------------------
//  An agent's response call: x-request-id, `chunks` messages, half-close.

static void
s_resp_collect (resp_t *self)
{
    if (self->pending > 0)
        return;
    bench_t *bench = self->agent->bench;
    if (self->status != GRPC_STATUS_OK)
        bench->agent_errors++;
    grpc_slice_unref (self->md[0].value);
    grpc_metadata_array_destroy (&self->initial_md);
    grpc_metadata_array_destroy (&self->trailing_md);
    grpc_slice_unref (self->details);
    if (self->recv_buf)
        grpc_byte_buffer_destroy (self->recv_buf);
    grpc_call_unref (self->call);
    bench->live_calls--;
    free (self);
}

//  Fill the receive-side ops; returns how many.
static size_t
s_resp_recv_ops (resp_t *self, grpc_op *ops)
{
    ops[0].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[0].data.recv_initial_metadata.recv_initial_metadata = &self->initial_md;
    ops[1].op = GRPC_OP_RECV_MESSAGE;
    ops[1].data.recv_message.recv_message = &self->recv_buf;
    ops[2].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[2].data.recv_status_on_client.trailing_metadata = &self->trailing_md;
    ops[2].data.recv_status_on_client.status = &self->status;
    ops[2].data.recv_status_on_client.status_details = &self->details;
    return 3;
}

//  Send the next message (with initial metadata the first time, with the
//  half-close the last time).
static void
s_resp_send (resp_t *self, bool first)
{
    bench_t *bench = self->agent->bench;
    grpc_op ops[6];
    memset (ops, 0, sizeof ops);
    size_t n = 0;
    if (first) {
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[n].data.send_initial_metadata.count = 1;
        ops[n++].data.send_initial_metadata.metadata = self->md;
    }
    self->send_buf = s_buffer (bench->response_slice);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = self->send_buf;
    self->chunks_left--;
    if (self->chunks_left == 0)
        ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    if (first && self->recv_with_send)
        n += s_resp_recv_ops (self, ops + n);
    grpc_call_error rc =
        grpc_call_start_batch (self->call, ops, n, &self->op_send, NULL);
    assert (rc == GRPC_CALL_OK);
    self->pending++;
}

static void
s_resp_start (agent_t *agent, const uint8_t *id, size_t id_size)
{
    bench_t *bench = agent->bench;
    resp_t *self = (resp_t *) calloc (1, sizeof *self);
    assert (self);
    self->agent = agent;
    self->op_send.kind = OP_RESP_SEND;
    self->op_recv.kind = OP_RESP_RECV;
    self->chunks_left = bench->opt->chunks;
    self->recv_with_send = bench->opt->chunks == 1;
    self->md[0].key = bench->respond_key;
    self->md[0].value =
        grpc_slice_from_copied_buffer ((const char *) id, id_size);
    self->details = grpc_empty_slice ();
    grpc_metadata_array_init (&self->initial_md);
    grpc_metadata_array_init (&self->trailing_md);
    self->status = GRPC_STATUS_UNKNOWN;
    self->call = grpc_channel_create_registered_call (
        agent->chan->channel, NULL, GRPC_PROPAGATE_DEFAULTS, bench->cq,
        agent->chan->h_respond, s_deadline_ms (bench->opt->timeout_ms), NULL);
    assert (self->call);
    bench->live_calls++;
    if (!self->recv_with_send) {
        grpc_op ops[3];
        memset (ops, 0, sizeof ops);
        size_t n = s_resp_recv_ops (self, ops);
        grpc_call_error rc =
            grpc_call_start_batch (self->call, ops, n, &self->op_recv, NULL);
        assert (rc == GRPC_CALL_OK);
        self->pending++;
    }
    s_resp_send (self, true);
}

static void
s_resp_on_event (resp_t *self, op_t *op, bool ok)
{
    self->pending--;
    if (op->kind == OP_RESP_SEND) {
        grpc_byte_buffer_destroy (self->send_buf);
        self->send_buf = NULL;
        if (ok && self->chunks_left > 0)
            s_resp_send (self, false);
        else if (!ok && self->chunks_left > 0)
            grpc_call_cancel (self->call, NULL);
    }
    s_resp_collect (self);
}

//  -------------------------------------------------------------------------
//  Clients' publish calls

static grpc_slice
s_request_slice (bench_t *self, agent_t *agent, const char *agent_id)
{
    options_t *opt = self->opt;
    char chunks[16], chunk_bytes[16];
    snprintf (chunks, sizeof chunks, "%u", opt->chunks);
    snprintf (chunk_bytes, sizeof chunk_bytes, "%u", opt->chunk_bytes);
    size_t max = opt->payload_bytes + 512;
    uint8_t *buf = (uint8_t *) malloc (max);
    uint8_t *payload = (uint8_t *) malloc (opt->payload_bytes + 1);
    assert (buf && payload);
    memset (payload, 'p', opt->payload_bytes);
    size_t n = s_pb_bytes (buf, 2, agent_id, strlen (agent_id));
    n += s_pb_bytes (buf + n, 3, "echo", 4);
    n += s_pb_bytes (buf + n, 4, payload, opt->payload_bytes);
    n += s_pb_map_entry (buf + n, 5, "chunks", chunks);
    n += s_pb_map_entry (buf + n, 5, "chunk-bytes", chunk_bytes);
    grpc_slice slice = grpc_slice_from_copied_buffer ((const char *) buf, n);
    free (payload);
    free (buf);
    return slice;
}

static void s_pub_collect (pub_t *self);

static void
s_pub_start (bench_t *self, int64_t t_start)
{
    options_t *opt = self->opt;
    grpc_slice request;
    agent_t *agent = NULL;
    if (opt->agents > 0) {
        agent = &self->agents[self->next_agent++ % opt->agents];
        if (!agent->has_request_slice) {
            agent->request_slice = s_request_slice (self, agent, agent->id);
            agent->has_request_slice = true;
        }
        request = agent->request_slice;
    } else {
        //  No agents: a server that answers by itself (bench_limit_server).
        if (!self->agents) {
            self->agents = (agent_t *) calloc (1, sizeof (agent_t));
            assert (self->agents);
            self->agents[0].details = grpc_empty_slice ();
            self->agents[0].request_slice =
                s_request_slice (self, NULL, "bench-none");
            self->agents[0].has_request_slice = true;
        }
        request = self->agents[0].request_slice;
    }

    pub_t *pub = (pub_t *) calloc (1, sizeof *pub);
    assert (pub);
    pub->bench = self;
    pub->op_start.kind = OP_PUB_START;
    pub->op_recv.kind = OP_PUB_RECV;
    pub->op_status.kind = OP_PUB_STATUS;
    pub->t_start = t_start;
    pub->details = grpc_empty_slice ();
    pub->status = GRPC_STATUS_UNKNOWN;
    grpc_metadata_array_init (&pub->initial_md);
    grpc_metadata_array_init (&pub->trailing_md);
    chan_t *chan =
        &self->client_chans[self->next_client_chan++ % self->n_client_chans];
    pub->call = grpc_channel_create_registered_call (
        chan->channel, NULL, GRPC_PROPAGATE_DEFAULTS, self->cq, chan->h_publish,
        s_deadline_ms (opt->timeout_ms), NULL);
    assert (pub->call);
    atomic_fetch_add (&self->in_flight, 1);

    //  The pacer thread may start these batches while the main thread
    //  handles the completions: so both are counted before either starts,
    //  the status batch goes first, and nothing here touches `pub` after
    //  the last start (the main thread starts later receives only after
    //  the first batch completed, so one thread at a time starts batches
    //  on this call).
    pub->pending = 2;
    grpc_op ops[5];
    memset (ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &pub->trailing_md;
    ops[0].data.recv_status_on_client.status = &pub->status;
    ops[0].data.recv_status_on_client.status_details = &pub->details;
    grpc_call_error rc =
        grpc_call_start_batch (pub->call, ops, 1, &pub->op_status, NULL);
    assert (rc == GRPC_CALL_OK);

    pub->send_buf = s_buffer (request);
    memset (ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = pub->send_buf;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &pub->initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &pub->recv_buf;
    rc = grpc_call_start_batch (pub->call, ops, 5, &pub->op_start, NULL);
    assert (rc == GRPC_CALL_OK);
}

static void
s_pub_on_event (pub_t *self, op_t *op, bool ok)
{
    bench_t *bench = self->bench;
    self->pending--;
    if (op->kind == OP_PUB_START) {
        grpc_byte_buffer_destroy (self->send_buf);
        self->send_buf = NULL;
    }
    if (op->kind == OP_PUB_START || op->kind == OP_PUB_RECV) {
        if (ok && self->recv_buf) {
            self->got++;
            self->bytes += grpc_byte_buffer_length (self->recv_buf);
            grpc_byte_buffer_destroy (self->recv_buf);
            self->recv_buf = NULL;
            //  Read until the asked-for count; the status follows.
            if (self->got < bench->opt->chunks) {
                grpc_op recv;
                memset (&recv, 0, sizeof recv);
                recv.op = GRPC_OP_RECV_MESSAGE;
                recv.data.recv_message.recv_message = &self->recv_buf;
                grpc_call_error rc = grpc_call_start_batch (
                    self->call, &recv, 1, &self->op_recv, NULL);
                assert (rc == GRPC_CALL_OK);
                self->pending++;
            }
        } else
            self->eof = true;
    }
    s_pub_collect (self);
}

static void
s_pub_collect (pub_t *self)
{
    if (self->pending > 0)
        return;
    bench_t *bench = self->bench;
    int64_t now = s_now_ns ();
    if (bench->phase == PH_MEASURE && now <= bench->window_end) {
        if (self->status == GRPC_STATUS_OK && self->got >= bench->opt->chunks) {
            bench->ok++;
            bench->bytes += self->bytes;
            s_hist_add (&bench->hist, (uint64_t) (now - self->t_start) / 1000);
        } else if (self->status == GRPC_STATUS_OK)
            bench->short_responses++;
        else
            bench->errors[self->status >= 0 && self->status <= 16
                              ? self->status
                              : GRPC_STATUS_UNKNOWN]++;
    }
    grpc_metadata_array_destroy (&self->initial_md);
    grpc_metadata_array_destroy (&self->trailing_md);
    grpc_slice_unref (self->details);
    if (self->recv_buf)
        grpc_byte_buffer_destroy (self->recv_buf);
    grpc_call_unref (self->call);
    free (self);
    atomic_fetch_sub (&bench->in_flight, 1);
    //  Closed loop: the client sends its next request at once.
    if (bench->opt->rate <= 0
        && (bench->phase == PH_WARMUP || bench->phase == PH_MEASURE))
        s_pub_start (bench, s_now_ns ());
}

//  -------------------------------------------------------------------------
//  ListAgents

static void
s_list_start (bench_t *self)
{
    assert (!self->list);
    list_t *list = (list_t *) calloc (1, sizeof *list);
    assert (list);
    list->op.kind = OP_LIST;
    list->t_start = s_now_ns ();
    list->details = grpc_empty_slice ();
    grpc_metadata_array_init (&list->initial_md);
    grpc_metadata_array_init (&list->trailing_md);
    chan_t *chan = &self->client_chans[0];
    list->call = grpc_channel_create_registered_call (
        chan->channel, NULL, GRPC_PROPAGATE_DEFAULTS, self->cq, chan->h_list,
        s_deadline_ms (self->opt->timeout_ms), NULL);
    assert (list->call);
    if (!self->walk_token) {
        self->walk_start = list->t_start;
        self->walk_agents = 0;
        self->walk_pages = 0;
        self->walk_page_max = 0;
    }
    //  ListAgentsRequest { prefix = 1; limit = 2; page_token = 3 }
    const char *token = self->walk_token ? self->walk_token : "";
    size_t token_len = strlen (token);
    uint8_t *req = (uint8_t *) malloc (sizeof self->prefix + token_len + 32);
    assert (req);
    size_t n = s_pb_bytes (req, 1, self->prefix, strlen (self->prefix));
    if (self->opt->list_page_size) {
        n += s_pb_varint (req + n, 2 << 3);
        n += s_pb_varint (req + n, self->opt->list_page_size);
    }
    if (token_len)
        n += s_pb_bytes (req + n, 3, token, token_len);
    list->send_buf = s_buffer_copy (req, n);
    free (req);
    grpc_op *ops = list->ops;
    memset (list->ops, 0, sizeof list->ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = list->send_buf;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &list->initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &list->recv_buf;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &list->trailing_md;
    ops[5].data.recv_status_on_client.status = &list->status;
    ops[5].data.recv_status_on_client.status_details = &list->details;
    grpc_call_error rc =
        grpc_call_start_batch (list->call, ops, 6, &list->op, NULL);
    assert (rc == GRPC_CALL_OK);
    self->live_calls++;
    self->list = list;
}

//  One page arrived.  Returns 1 when the walk goes on (the next page was
//  asked for), 0 when it is complete (self->listed updated), -1 when the
//  call failed (the walk is abandoned).
static int
s_list_on_event (bench_t *self, bool ok)
{
    list_t *list = self->list;
    self->list = NULL;
    int64_t now = s_now_ns ();
    double ms = (double) (now - list->t_start) / 1e6;
    long count = -1;
    char *next = NULL;
    if (ok && list->status == GRPC_STATUS_OK && list->recv_buf) {
        grpc_byte_buffer_reader reader;
        if (grpc_byte_buffer_reader_init (&reader, list->recv_buf)) {
            grpc_slice slice = grpc_byte_buffer_reader_readall (&reader);
            grpc_byte_buffer_reader_destroy (&reader);
            //  ListAgentsResponse { repeated agents = 1;
            //  next_page_token = 2 }
            const uint8_t *at = GRPC_SLICE_START_PTR (slice);
            size_t len = GRPC_SLICE_LENGTH (slice);
            const uint8_t *token = NULL;
            size_t n = 0, token_size = 0;
            if (s_pb_scan (at, len, 1, NULL, NULL, &n, 0, NULL) == 0
                && s_pb_scan (at, len, 2, &token, &token_size, NULL, 0, NULL)
                       == 0) {
                count = (long) n;
                if (token && token_size) {
                    next = strndup ((const char *) token, token_size);
                    assert (next);
                }
            }
            grpc_slice_unref (slice);
        }
    }
    grpc_byte_buffer_destroy (list->send_buf);
    if (list->recv_buf)
        grpc_byte_buffer_destroy (list->recv_buf);
    grpc_metadata_array_destroy (&list->initial_md);
    grpc_metadata_array_destroy (&list->trailing_md);
    grpc_slice_unref (list->details);
    grpc_call_unref (list->call);
    free (list);
    self->live_calls--;

    //  A token that does not move forward would walk forever.
    if (next && self->walk_token && strcmp (next, self->walk_token) <= 0)
        count = -1;
    free (self->walk_token);
    self->walk_token = NULL;
    if (count < 0) {
        free (next);
        return -1;
    }
    self->walk_agents += (size_t) count;
    self->walk_pages++;
    if (ms > self->walk_page_max)
        self->walk_page_max = ms;
    if (next) {
        self->walk_token = next;
        return 1;
    }
    self->listed = self->walk_agents;
    double total = (double) (now - self->walk_start) / 1e6;
    if (self->phase == PH_LIST && self->listed >= self->opt->agents
        && self->list_samples < S_LIST_SAMPLES) {
        //  Walks count once every agent was seen by an earlier one.
        if (self->walk_counted) {
            self->list_ms[self->list_samples] = total;
            self->list_page_max[self->list_samples] = self->walk_page_max;
            self->list_pages[self->list_samples] = self->walk_pages;
            self->list_samples++;
        }
        self->walk_counted = true;
    }
    return 0;
}

//  -------------------------------------------------------------------------
//  Open loop.  gRPC's completion-queue deadlines have millisecond
//  granularity, so a send timed by grpc_completion_queue_next would start
//  up to 1 ms late, and latency measured from the scheduled time would
//  include that.  A pacer thread sleeps to each scheduled time with
//  clock_nanosleep and starts the call itself (grpc_call_start_batch may
//  be called from any thread; each publish call's batches are all started
//  by the pacer, its completions handled by the main thread).  While the
//  pacer runs it alone touches the round-robin counters and the agents'
//  request slices; in_flight is shared, hence atomic.

static void *
s_pacer (void *args)
{
    bench_t *self = (bench_t *) args;
    int64_t next = self->next_send;
    while (atomic_load (&self->pacing)) {
        int64_t now = s_now_ns ();
        if (next > now
            || atomic_load (&self->in_flight) >= self->opt->max_in_flight) {
            //  Wake at the scheduled time, or within 50 ms to see a stop;
            //  at the in-flight cap, look again in 100 us (the schedule
            //  does not move, so waiting shows as latency).
            int64_t until = next > now ? next : now + 100000;
            if (until > now + 50000000)
                until = now + 50000000;
            struct timespec ts = {(time_t) (until / 1000000000),
                                  (long) (until % 1000000000)};
            clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
            continue;
        }
        s_pub_start (self, next);
        next += self->interval_ns;
    }
    return NULL;
}

static void
s_stop_pacer (bench_t *self)
{
    if (self->pacer_running) {
        atomic_store (&self->pacing, false);
        pthread_join (self->pacer, NULL);
        self->pacer_running = false;
    }
}

//  -------------------------------------------------------------------------
//  Phases

static void
s_enter (bench_t *self, phase_t phase)
{
    options_t *opt = self->opt;
    int64_t now = s_now_ns ();
    self->phase = phase;
    self->phase_end = 0;
    switch (phase) {
        case PH_WARMUP:
            self->phase_end = now + (int64_t) opt->warmup_ms * 1000000;
            if (opt->rate > 0) {
                self->interval_ns = (int64_t) (1e9 / opt->rate);
                if (self->interval_ns < 1)
                    self->interval_ns = 1;
                self->next_send = now;
                atomic_store (&self->pacing, true);
                int rc = pthread_create (&self->pacer, NULL, s_pacer, self);
                assert (rc == 0);
                self->pacer_running = true;
            } else
                for (uint32_t i = 0; i < opt->clients; i++)
                    s_pub_start (self, now);
            break;
        case PH_MEASURE:
            self->window_start = now;
            self->window_end = now + (int64_t) opt->duration_ms * 1000000;
            self->phase_end = self->window_end;
            s_sample_all (self, self->proc_start, &self->ru_start);
            break;
        case PH_DRAIN:
            s_stop_pacer (self);
            self->window_end = now;
            s_sample_all (self, self->proc_end, &self->ru_end);
            self->phase_end = now + (int64_t) opt->timeout_ms * 1000000;
            break;
        case PH_CLOSE:
            s_stop_pacer (self);
            for (uint32_t i = 0; i < opt->agents; i++)
                if (self->agents[i].call)
                    grpc_call_cancel (self->agents[i].call, NULL);
            //  Whatever is still in flight gets cancelled too.
            break;
        default:
            break;
    }
}

static void s_report_idle (bench_t *self);

static void
s_check_signal (bench_t *self)
{
    struct signalfd_siginfo info;
    if (self->signal_fd >= 0
        && read (self->signal_fd, &info, sizeof info) == (ssize_t) sizeof info)
        self->interrupted = true;
}

//  Move the run along: called after every event and every timeout.
static void
s_advance (bench_t *self)
{
    options_t *opt = self->opt;
    int64_t now = s_now_ns ();
    if (self->interrupted && self->phase < PH_CLOSE) {
        if (self->phase != PH_HOLD)
            s_fail (self, "interrupted");
        s_enter (self, PH_CLOSE);
    }
    if (self->failed && self->phase < PH_CLOSE)
        s_enter (self, PH_CLOSE);

    switch (self->phase) {
        case PH_CONNECT:
            while (self->agents_started < opt->agents
                   && self->agents_started - self->agents_connected
                          < opt->connect_window)
                s_agent_start (&self->agents[self->agents_started]);
            if (self->agents_connected == opt->agents) {
                self->connect_s = (double) (now - self->run_start) / 1e9;
                self->phase = PH_LIST;
                self->next_list_at = now;
            } else if (now > self->connect_deadline)
                s_fail (self, "agents did not connect in time");
            break;
        case PH_LIST:
            if (self->listed >= opt->agents
                && (!opt->idle || self->list_samples >= S_LIST_SAMPLES)) {
                if (opt->idle) {
                    s_sample_all (self, self->proc_end, &self->ru_end);
                    s_report_idle (self);
                    if (opt->hold)
                        self->phase = PH_HOLD;
                    else
                        s_enter (self, PH_CLOSE);
                    return;
                }
                s_enter (self, PH_WARMUP);
            } else if (!self->list && now >= self->next_list_at)
                s_list_start (self);
            else if (now > self->connect_deadline)
                s_fail (self, "agents not all listed in time");
            break;
        case PH_WARMUP:
        case PH_MEASURE:
            if (now >= self->phase_end)
                s_enter (self,
                         self->phase == PH_WARMUP ? PH_MEASURE : PH_DRAIN);
            break;
        case PH_DRAIN:
            if (atomic_load (&self->in_flight) == 0 || now >= self->phase_end)
                s_enter (self, PH_CLOSE);
            break;
        case PH_CLOSE:
            if (self->live_calls == 0 && atomic_load (&self->in_flight) == 0)
                self->phase = PH_DONE;
            break;
        default:
            break;
    }
}

//  When to wake up if no event comes.
static int64_t
s_next_wake (bench_t *self)
{
    int64_t now = s_now_ns ();
    int64_t wake = now + 100 * 1000000; //  signals are checked this often
    if (self->phase_end && self->phase_end < wake)
        wake = self->phase_end;
    if (self->phase == PH_LIST && !self->list && self->next_list_at < wake)
        wake = self->next_list_at;
    return wake;
}

static void
s_dispatch (bench_t *self, op_t *op, bool ok)
{
    switch (op->kind) {
        case OP_SUB_START:
            s_agent_on_event (S_CONTAINER_OF (op, agent_t, op_start), op, ok);
            break;
        case OP_SUB_RECV:
            s_agent_on_event (S_CONTAINER_OF (op, agent_t, op_recv), op, ok);
            break;
        case OP_SUB_STATUS:
            s_agent_on_event (S_CONTAINER_OF (op, agent_t, op_status), op, ok);
            break;
        case OP_RESP_SEND:
            s_resp_on_event (S_CONTAINER_OF (op, resp_t, op_send), op, ok);
            break;
        case OP_RESP_RECV:
            s_resp_on_event (S_CONTAINER_OF (op, resp_t, op_recv), op, ok);
            break;
        case OP_PUB_START:
            s_pub_on_event (S_CONTAINER_OF (op, pub_t, op_start), op, ok);
            break;
        case OP_PUB_RECV:
            s_pub_on_event (S_CONTAINER_OF (op, pub_t, op_recv), op, ok);
            break;
        case OP_PUB_STATUS:
            s_pub_on_event (S_CONTAINER_OF (op, pub_t, op_status), op, ok);
            break;
        case OP_LIST: {
            int walk = s_list_on_event (self, ok);
            //  Next page at once; a new walk at once, or soon while agents
            //  are still missing.
            self->next_list_at =
                s_now_ns ()
                + (walk == 1 || self->listed >= self->opt->agents
                       ? 0
                       : 20 * 1000000);
            break;
        }
    }
}

static void
s_run (bench_t *self)
{
    self->run_start = s_now_ns ();
    self->connect_deadline =
        self->run_start + (int64_t) self->opt->connect_timeout_ms * 1000000;
    if (self->opt->agents == 0)
        s_enter (self, PH_WARMUP);
    else
        self->phase = PH_CONNECT;
    s_advance (self);
    while (self->phase != PH_DONE) {
        grpc_event ev = grpc_completion_queue_next (
            self->cq, s_deadline_at (s_next_wake (self)), NULL);
        if (ev.type == GRPC_OP_COMPLETE)
            s_dispatch (self, (op_t *) ev.tag, ev.success != 0);
        else
            s_check_signal (self);
        s_advance (self);
    }
}

//  -------------------------------------------------------------------------
//  Report

static double
s_cpu_us (const struct rusage *a, const struct rusage *b)
{
    double start = (double) a->ru_utime.tv_sec * 1e6 + a->ru_utime.tv_usec
                   + (double) a->ru_stime.tv_sec * 1e6 + a->ru_stime.tv_usec;
    double end = (double) b->ru_utime.tv_sec * 1e6 + b->ru_utime.tv_usec
                 + (double) b->ru_stime.tv_sec * 1e6 + b->ru_stime.tv_usec;
    return end - start;
}

static void
s_report_load (bench_t *self)
{
    options_t *opt = self->opt;
    double seconds = (double) (self->window_end - self->window_start) / 1e9;
    if (seconds <= 0)
        seconds = 1e-9;
    uint64_t errors = self->short_responses;
    for (int i = 1; i <= 16; i++)
        errors += self->errors[i];
    uint64_t done = self->ok + errors;
    double per = done ? (double) done : 1;
    double rps = (double) self->ok / seconds;
    double mbps = (double) self->bytes / seconds / 1e6;
    double own_us = s_cpu_us (&self->ru_start, &self->ru_end) / per;
    double tick_us = 1e6 / (double) sysconf (_SC_CLK_TCK);
    double gw_total = 0;
    double gw_us[S_MAX_PIDS];
    for (size_t i = 0; i < opt->n_pids; i++) {
        gw_us[i] = (double) (self->proc_end[i].cpu_ticks
                             - self->proc_start[i].cpu_ticks)
                   * tick_us / per;
        gw_total += gw_us[i];
    }
    uint64_t p50 = s_hist_percentile (&self->hist, 50);
    uint64_t p90 = s_hist_percentile (&self->hist, 90);
    uint64_t p99 = s_hist_percentile (&self->hist, 99);
    uint64_t p999 = s_hist_percentile (&self->hist, 99.9);
    if (opt->json) {
        printf ("{\"mode\":\"%s\",\"agents\":%u,\"clients\":%u,\"rate\":%.0f,"
                "\"chunks\":%u,\"chunk_bytes\":%u,\"payload_bytes\":%u,"
                "\"seconds\":%.3f,\"requests\":%" PRIu64 ",\"rps\":%.1f,"
                "\"mb_per_s\":%.2f,\"latency_us\":{\"p50\":%" PRIu64
                ",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64
                ",\"max\":%" PRIu64 "},\"errors_total\":%" PRIu64
                ",\"errors\":{",
                opt->rate > 0 ? "open" : "closed", opt->agents, opt->clients,
                opt->rate, opt->chunks, opt->chunk_bytes, opt->payload_bytes,
                seconds, self->ok, rps, mbps, p50, p90, p99, p999,
                self->hist.max, errors);
        const char *sep = "";
        for (int i = 1; i <= 16; i++)
            if (self->errors[i]) {
                printf ("%s\"%s\":%" PRIu64, sep, s_status_name (i),
                        self->errors[i]);
                sep = ",";
            }
        if (self->short_responses)
            printf ("%s\"SHORT_RESPONSE\":%" PRIu64, sep,
                    self->short_responses);
        printf ("},\"agent_errors\":%" PRIu64 ",\"agents_lost\":%u,"
                "\"bench_cpu_us_per_req\":%.2f,\"gateway_cpu_us_per_req\":%.2f,"
                "\"gateway\":[",
                self->agent_errors, self->agents_lost, own_us, gw_total);
        for (size_t i = 0; i < opt->n_pids; i++)
            printf ("%s{\"pid\":%d,\"cpu_us_per_req\":%.2f,"
                    "\"peak_rss_kib\":%" PRIu64 "}",
                    i ? "," : "", opt->pids[i], gw_us[i],
                    self->proc_end[i].hwm_kib);
        printf ("]}\n");
    } else {
        printf ("%.0f req/s  %.2f MB/s  latency us p50 %" PRIu64 " p90 %" PRIu64
                " p99 %" PRIu64 " p99.9 %" PRIu64 " max %" PRIu64
                "  errors %" PRIu64,
                rps, mbps, p50, p90, p99, p999, self->hist.max, errors);
        for (int i = 1; i <= 16; i++)
            if (self->errors[i])
                printf (" %s=%" PRIu64, s_status_name (i), self->errors[i]);
        if (self->short_responses)
            printf (" SHORT_RESPONSE=%" PRIu64, self->short_responses);
        printf ("  bench cpu %.1f us/req", own_us);
        if (opt->n_pids) {
            printf ("  gateway cpu %.1f us/req (", gw_total);
            for (size_t i = 0; i < opt->n_pids; i++)
                printf ("%spid %d %.1f us, peak rss %" PRIu64 " KiB",
                        i ? "; " : "", opt->pids[i], gw_us[i],
                        self->proc_end[i].hwm_kib);
            printf (")");
        }
        printf ("\n");
    }
    fflush (stdout);
}

static void
s_report_idle (bench_t *self)
{
    options_t *opt = self->opt;
    //  The median walk, by total time, with its own pages and slowest
    //  page.
    size_t order[S_LIST_SAMPLES];
    for (size_t i = 0; i < self->list_samples; i++) {
        size_t j = i;
        while (j > 0 && self->list_ms[order[j - 1]] > self->list_ms[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    double list_ms = 0, page_max_ms = 0;
    size_t pages = 0;
    if (self->list_samples) {
        size_t median = order[self->list_samples / 2];
        list_ms = self->list_ms[median];
        page_max_ms = self->list_page_max[median];
        pages = self->list_pages[median];
    }
    double page_ms = pages ? list_ms / (double) pages : 0;
    double n = opt->agents ? (double) opt->agents : 1;
    bool shared = self->n_agent_chans < opt->agents;
    if (opt->json) {
        printf ("{\"mode\":\"idle\",\"agents\":%u,\"agent_channels\":%zu,"
                "\"agents_per_channel\":%.1f,\"fd_limit\":%" PRIu64
                ",\"listed\":%zu,\"list_ms\":%.2f,\"list_pages\":%zu,"
                "\"list_page_ms\":%.2f,\"list_page_max_ms\":%.2f,"
                "\"list_page_size\":%u,\"connect_s\":%.2f,\"gateway\":[",
                opt->agents, self->n_agent_chans,
                n / (double) (self->n_agent_chans ? self->n_agent_chans : 1),
                self->fd_limit, self->listed, list_ms, pages, page_ms,
                page_max_ms, opt->list_page_size, self->connect_s);
        for (size_t i = 0; i < opt->n_pids; i++) {
            double delta = ((double) self->proc_end[i].rss_kib
                            - (double) self->proc_start[i].rss_kib)
                           * 1024.0;
            printf ("%s{\"pid\":%d,\"rss_before_kib\":%" PRIu64
                    ",\"rss_after_kib\":%" PRIu64
                    ",\"rss_per_agent_bytes\":%.0f}",
                    i ? "," : "", opt->pids[i], self->proc_start[i].rss_kib,
                    self->proc_end[i].rss_kib, delta / n);
        }
        printf ("]}\n");
    } else {
        printf ("%u agents on %zu connections%s, connected in %.1f s; "
                "ListAgents of all %.2f ms in %zu page(s) (%.2f ms a page, "
                "slowest %.2f ms)",
                opt->agents, self->n_agent_chans, shared ? " (shared)" : "",
                self->connect_s, list_ms, pages, page_ms, page_max_ms);
        for (size_t i = 0; i < opt->n_pids; i++) {
            double delta = ((double) self->proc_end[i].rss_kib
                            - (double) self->proc_start[i].rss_kib)
                           * 1024.0;
            printf ("  pid %d rss %" PRIu64 " -> %" PRIu64 " KiB, %.0f B/agent",
                    opt->pids[i], self->proc_start[i].rss_kib,
                    self->proc_end[i].rss_kib, delta / n);
        }
        printf ("\n");
    }
    if (opt->hold)
        fprintf (stderr,
                 "tether bench: holding %u agents until SIGINT or "
                 "SIGTERM\n",
                 opt->agents);
    fflush (stdout);
}

//  -------------------------------------------------------------------------
//  Options

static void
s_usage (FILE *out)
{
    fprintf (
        out,
        "usage: tether bench [--edge host:port] [--agent-edge "
        "host:port[,...]]\n"
        "                    [--agents N] [--agent-channels K] [--clients C]\n"
        "                    [--client-channels K] [--rate R]\n"
        "                    [--chunks N] [--chunk-bytes B] [--payload-bytes "
        "B]\n"
        "                    [--duration 10s] [--warmup 2s] [--timeout 10s]\n"
        "                    [--pids PID,PID] [--json]\n"
        "       tether bench --idle --agents N [--no-hold]\n"
        "                    [--list-page-size N] ...\n"
        "\n"
        "Runs N agents (each on its own connection unless --agent-channels)\n"
        "and C closed-loop clients, or an open loop of R requests/s, against\n"
        "an edge; reports requests/s, latency percentiles (open loop: from\n"
        "each request's scheduled start), errors by status, its own CPU per\n"
        "request, and for each --pids process its CPU per request and peak\n"
        "RSS.  --agents 0 sends to a server that answers by itself\n"
        "(bench_limit_server).  --idle connects the agents, waits until\n"
        "ListAgents shows them all, reports the RSS growth per agent of\n"
        "each --pids process and the time to list every agent (following\n"
        "next_page_token; --list-page-size agents a page, 0 = as many as\n"
        "fit), then holds the agents until SIGINT/SIGTERM (--no-hold:\n"
        "exits at once).  The descriptor limit is raised to the hard\n"
        "limit; when it cannot give each agent a connection, agents share\n"
        "the most connections it allows (said on stderr and in the\n"
        "report).\n"
        "--agent-edge may list several addresses (one port over several\n"
        "loopback addresses spreads the source ports); agents take them in\n"
        "turn.  Defaults: --agents 100 --clients 32 --chunks 1\n"
        "--chunk-bytes 100 --payload-bytes 100 --duration 10s --warmup 2s\n"
        "--client-channels 1 --max-in-flight 10000 --connect-window 256\n"
        "--connect-timeout 120s.  Exit: 0 ok, 1 failed or errors, 2 usage.\n");
}

static int
s_parse_uint (const char *name, const char *text, uint32_t *value)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull (text, &end, 10);
    if (errno || end == text || *end || v > UINT32_MAX || *text == '-') {
        fprintf (stderr, "tether bench: %s: '%s' is not a whole number\n", name,
                 text);
        return -1;
    }
    *value = (uint32_t) v;
    return 0;
}

static int
s_parse_ms (const char *name, const char *text, uint32_t *value)
{
    if (cli_parse_duration (text, value)) {
        fprintf (stderr, "tether bench: %s: '%s' is not a duration\n", name,
                 text);
        return -1;
    }
    return 0;
}

static int
s_parse_pids (const char *text, options_t *opt)
{
    char *copy = strdup (text);
    assert (copy);
    int rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r (copy, ",", &save); tok;
         tok = strtok_r (NULL, ",", &save)) {
        uint32_t pid;
        if (opt->n_pids == S_MAX_PIDS || s_parse_uint ("--pids", tok, &pid)
            || pid == 0) {
            rc = -1;
            break;
        }
        opt->pids[opt->n_pids++] = (int) pid;
    }
    free (copy);
    return rc;
}

static int
s_parse_options (int argc, char **argv, options_t *opt)
{
    enum
    {
        O_EDGE = 256,
        O_AGENT_EDGE,
        O_AGENTS,
        O_AGENT_CHANNELS,
        O_CLIENTS,
        O_CLIENT_CHANNELS,
        O_RATE,
        O_MAX_IN_FLIGHT,
        O_CHUNKS,
        O_CHUNK_BYTES,
        O_PAYLOAD_BYTES,
        O_DURATION,
        O_WARMUP,
        O_TIMEOUT,
        O_CONNECT_TIMEOUT,
        O_CONNECT_WINDOW,
        O_LIST_PAGE_SIZE,
        O_PIDS,
        O_IDLE,
        O_NO_HOLD,
        O_JSON,
        O_HELP
    };
    static const struct option longs[] = {
        {"edge", required_argument, NULL, O_EDGE},
        {"agent-edge", required_argument, NULL, O_AGENT_EDGE},
        {"agents", required_argument, NULL, O_AGENTS},
        {"agent-channels", required_argument, NULL, O_AGENT_CHANNELS},
        {"clients", required_argument, NULL, O_CLIENTS},
        {"client-channels", required_argument, NULL, O_CLIENT_CHANNELS},
        {"rate", required_argument, NULL, O_RATE},
        {"max-in-flight", required_argument, NULL, O_MAX_IN_FLIGHT},
        {"chunks", required_argument, NULL, O_CHUNKS},
        {"chunk-bytes", required_argument, NULL, O_CHUNK_BYTES},
        {"payload-bytes", required_argument, NULL, O_PAYLOAD_BYTES},
        {"duration", required_argument, NULL, O_DURATION},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"connect-timeout", required_argument, NULL, O_CONNECT_TIMEOUT},
        {"connect-window", required_argument, NULL, O_CONNECT_WINDOW},
        {"list-page-size", required_argument, NULL, O_LIST_PAGE_SIZE},
        {"pids", required_argument, NULL, O_PIDS},
        {"idle", no_argument, NULL, O_IDLE},
        {"no-hold", no_argument, NULL, O_NO_HOLD},
        {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0}};
    bool no_hold = false;
    int c;
    optind = 1;
    while ((c = getopt_long (argc, argv, "h", longs, NULL)) != -1) {
        int rc = 0;
        switch (c) {
            case O_EDGE:
                free (opt->edge);
                opt->edge = strdup (optarg);
                break;
            case O_AGENT_EDGE:
                free (opt->agent_edge);
                opt->agent_edge = strdup (optarg);
                break;
            case O_AGENTS:
                rc = s_parse_uint ("--agents", optarg, &opt->agents);
                break;
            case O_AGENT_CHANNELS:
                rc = s_parse_uint ("--agent-channels", optarg,
                                   &opt->agent_channels);
                break;
            case O_CLIENTS:
                rc = s_parse_uint ("--clients", optarg, &opt->clients);
                break;
            case O_CLIENT_CHANNELS:
                rc = s_parse_uint ("--client-channels", optarg,
                                   &opt->client_channels);
                break;
            case O_RATE: {
                char *end;
                opt->rate = strtod (optarg, &end);
                if (end == optarg || *end || !(opt->rate > 0)) {
                    fprintf (stderr,
                             "tether bench: --rate: '%s' is not a "
                             "positive number\n",
                             optarg);
                    rc = -1;
                }
                break;
            }
            case O_MAX_IN_FLIGHT:
                rc = s_parse_uint ("--max-in-flight", optarg,
                                   &opt->max_in_flight);
                break;
            case O_CHUNKS:
                rc = s_parse_uint ("--chunks", optarg, &opt->chunks);
                break;
            case O_CHUNK_BYTES:
                rc = s_parse_uint ("--chunk-bytes", optarg, &opt->chunk_bytes);
                break;
            case O_PAYLOAD_BYTES:
                rc = s_parse_uint ("--payload-bytes", optarg,
                                   &opt->payload_bytes);
                break;
            case O_DURATION:
                rc = s_parse_ms ("--duration", optarg, &opt->duration_ms);
                break;
            case O_WARMUP:
                rc = s_parse_ms ("--warmup", optarg, &opt->warmup_ms);
                break;
            case O_TIMEOUT:
                rc = s_parse_ms ("--timeout", optarg, &opt->timeout_ms);
                break;
            case O_CONNECT_TIMEOUT:
                rc = s_parse_ms ("--connect-timeout", optarg,
                                 &opt->connect_timeout_ms);
                break;
            case O_CONNECT_WINDOW:
                rc = s_parse_uint ("--connect-window", optarg,
                                   &opt->connect_window);
                break;
            case O_LIST_PAGE_SIZE:
                rc = s_parse_uint ("--list-page-size", optarg,
                                   &opt->list_page_size);
                break;
            case O_PIDS:
                rc = s_parse_pids (optarg, opt);
                if (rc)
                    fprintf (stderr,
                             "tether bench: --pids: at most %d "
                             "process ids, comma-separated\n",
                             S_MAX_PIDS);
                break;
            case O_IDLE:
                opt->idle = true;
                break;
            case O_NO_HOLD:
                no_hold = true;
                break;
            case O_JSON:
                opt->json = true;
                break;
            case 'h':
            case O_HELP:
                s_usage (stdout);
                return 1;
            default:
                s_usage (stderr);
                return -1;
        }
        if (rc)
            return -1;
    }
    if (optind < argc) {
        fprintf (stderr, "tether bench: unexpected argument '%s'\n",
                 argv[optind]);
        return -1;
    }
    opt->hold = opt->idle && !no_hold;
    if (!opt->agent_edge)
        opt->agent_edge = strdup (opt->edge);
    if (opt->chunks == 0 || opt->client_channels == 0
        || opt->connect_window == 0 || opt->timeout_ms == 0
        || opt->max_in_flight == 0) {
        fprintf (stderr, "tether bench: --chunks, --client-channels, "
                         "--connect-window, --timeout and --max-in-flight "
                         "must be positive\n");
        return -1;
    }
    if (opt->idle && opt->agents == 0) {
        fprintf (stderr, "tether bench: --idle needs --agents N > 0\n");
        return -1;
    }
    if (!opt->idle && opt->rate <= 0 && opt->clients == 0) {
        fprintf (stderr, "tether bench: --clients or --rate must be > 0\n");
        return -1;
    }
    if (opt->duration_ms == 0 && !opt->idle) {
        fprintf (stderr, "tether bench: --duration must be positive\n");
        return -1;
    }
    return 0;
}

//  -------------------------------------------------------------------------

//  Raise the soft descriptor limit to the hard one.  Returns the limit
//  now in force.
static uint64_t
s_raise_fd_limit (void)
{
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit))
        return 1024;
    if (limit.rlim_cur < limit.rlim_max) {
        struct rlimit raised = limit;
        raised.rlim_cur = limit.rlim_max;
        if (setrlimit (RLIMIT_NOFILE, &raised) == 0)
            limit = raised;
    }
    return limit.rlim_cur == RLIM_INFINITY ? UINT64_MAX
                                           : (uint64_t) limit.rlim_cur;
}

//  Descriptors kept for everything but agent connections: client
//  connections, gRPC's own (epoll, wakeup fds, timers), stdio, /proc.
#define S_FD_RESERVE 256

//  How many connections the agents get: one each, or --agent-channels,
//  but never more than `fd_limit` allows.  Says so when it shares.
static size_t
s_agent_connections (const options_t *opt, uint64_t fd_limit)
{
    size_t wanted = opt->agent_channels && opt->agent_channels < opt->agents
                        ? opt->agent_channels
                        : opt->agents;
    uint64_t room = fd_limit > S_FD_RESERVE + (uint64_t) opt->client_channels
                        ? fd_limit - S_FD_RESERVE - opt->client_channels
                        : 1;
    if (wanted > room) {
        fprintf (stderr,
                 "tether bench: the descriptor limit (%" PRIu64
                 ") cannot hold %zu agent connections: %u agents share "
                 "%" PRIu64 " connections (%.1f each)\n",
                 fd_limit, wanted, opt->agents, room,
                 (double) opt->agents / (double) room);
        wanted = (size_t) room;
    }
    return wanted;
}

static bench_t *
s_bench_new (options_t *opt, uint64_t fd_limit)
{
    bench_t *self = (bench_t *) calloc (1, sizeof *self);
    assert (self);
    self->opt = opt;
    self->signal_fd = -1;
    self->fd_limit = fd_limit;
    for (size_t i = 0; i < opt->n_pids; i++)
        self->proc_ok[i] = true;
    snprintf (self->prefix, sizeof self->prefix, "b%d-", (int) getpid ());
    self->cq = grpc_completion_queue_create_for_next (NULL);

    //  Agents' channels: one per agent, or K shared, over the addresses.
    char *edges = strdup (opt->agent_edge);
    assert (edges);
    char *targets[256];
    size_t n_targets = 0;
    char *save = NULL;
    for (char *tok = strtok_r (edges, ",", &save); tok && n_targets < 256;
         tok = strtok_r (NULL, ",", &save))
        targets[n_targets++] = tok;
    if (n_targets == 0)
        targets[n_targets++] = opt->edge;
    if (opt->agents > 0) {
        self->n_agent_chans = s_agent_connections (opt, fd_limit);
        self->agent_chans =
            (chan_t *) calloc (self->n_agent_chans, sizeof (chan_t));
        assert (self->agent_chans);
        for (size_t i = 0; i < self->n_agent_chans; i++)
            s_chan_init (&self->agent_chans[i], targets[i % n_targets]);
        self->agents = (agent_t *) calloc (opt->agents, sizeof (agent_t));
        assert (self->agents);
        for (uint32_t i = 0; i < opt->agents; i++) {
            agent_t *agent = &self->agents[i];
            agent->bench = self;
            agent->index = i;
            agent->chan = &self->agent_chans[i % self->n_agent_chans];
            snprintf (agent->id, sizeof agent->id, "%s%u", self->prefix, i);
            agent->op_start.kind = OP_SUB_START;
            agent->op_recv.kind = OP_SUB_RECV;
            agent->op_status.kind = OP_SUB_STATUS;
            agent->details = grpc_empty_slice ();
            grpc_metadata_array_init (&agent->initial_md);
            grpc_metadata_array_init (&agent->trailing_md);
        }
    }
    free (edges);
    self->n_client_chans = opt->client_channels;
    self->client_chans =
        (chan_t *) calloc (self->n_client_chans, sizeof (chan_t));
    assert (self->client_chans);
    for (size_t i = 0; i < self->n_client_chans; i++)
        s_chan_init (&self->client_chans[i], opt->edge);

    //  AgentResponse { payload = chunk_bytes }, shared by every send.
    size_t max = (size_t) opt->chunk_bytes + 16;
    uint8_t *buf = (uint8_t *) malloc (max);
    uint8_t *payload = (uint8_t *) malloc ((size_t) opt->chunk_bytes + 1);
    assert (buf && payload);
    memset (payload, 'r', opt->chunk_bytes);
    size_t n = s_pb_bytes (buf, 2, payload, opt->chunk_bytes);
    self->response_slice =
        grpc_slice_from_copied_buffer ((const char *) buf, n);
    free (payload);
    free (buf);
    self->respond_key = grpc_slice_from_static_string ("x-request-id");
    return self;
}

static void
s_bench_destroy (bench_t **self_p)
{
    bench_t *self = *self_p;
    if (!self)
        return;
    *self_p = NULL;
    size_t n_agents =
        self->opt->agents ? self->opt->agents : (self->agents ? 1 : 0);
    for (size_t i = 0; i < n_agents; i++) {
        agent_t *agent = &self->agents[i];
        if (agent->call)
            grpc_call_unref (agent->call);
        if (agent->recv_buf)
            grpc_byte_buffer_destroy (agent->recv_buf);
        grpc_metadata_array_destroy (&agent->initial_md);
        grpc_metadata_array_destroy (&agent->trailing_md);
        grpc_slice_unref (agent->details);
        if (agent->has_request_slice)
            grpc_slice_unref (agent->request_slice);
    }
    free (self->agents);
    for (size_t i = 0; i < self->n_agent_chans; i++)
        grpc_channel_destroy (self->agent_chans[i].channel);
    free (self->agent_chans);
    for (size_t i = 0; i < self->n_client_chans; i++)
        grpc_channel_destroy (self->client_chans[i].channel);
    free (self->client_chans);
    grpc_slice_unref (self->response_slice);
    grpc_completion_queue_shutdown (self->cq);
    while (grpc_completion_queue_next (
               self->cq, gpr_inf_future (GPR_CLOCK_REALTIME), NULL)
               .type
           != GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy (self->cq);
    if (self->signal_fd >= 0)
        close (self->signal_fd);
    free (self->walk_token);
    free (self);
}

int
cli_bench_main (int argc, char **argv)
{
    const char *edge = getenv ("TETHER_EDGE");
    options_t opt = {
        .edge = strdup (edge && *edge ? edge : "127.0.0.1:50051"),
        .agents = 100,
        .clients = 32,
        .client_channels = 1,
        .max_in_flight = 10000,
        .chunks = 1,
        .chunk_bytes = 100,
        .payload_bytes = 100,
        .duration_ms = 10000,
        .warmup_ms = 2000,
        .timeout_ms = 10000,
        .connect_timeout_ms = 120000,
        .connect_window = 256,
    };
    int parsed = s_parse_options (argc, argv, &opt);
    if (parsed) {
        free (opt.edge);
        free (opt.agent_edge);
        return parsed > 0 ? 0 : 2;
    }
    if (opt.rate > 0)
        opt.clients = 0;

    //  Signals are read from a signalfd; block them before gRPC starts
    //  its threads so that none of them takes the signal.
    sigset_t mask;
    sigemptyset (&mask);
    sigaddset (&mask, SIGINT);
    sigaddset (&mask, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &mask, NULL);
    uint64_t fd_limit = s_raise_fd_limit ();

    grpc_init ();
    bench_t *bench = s_bench_new (&opt, fd_limit);
    bench->signal_fd = signalfd (-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (opt.idle)
        s_sample_all (bench, bench->proc_start, &bench->ru_start);
    s_run (bench);

    int rc = 0;
    if (bench->failed) {
        fprintf (
            stderr, "tether bench: %s (agents connected %u/%u, listed %zu)\n",
            bench->failure, bench->agents_connected, opt.agents, bench->listed);
        rc = 1;
    } else if (!opt.idle) {
        s_report_load (bench);
        uint64_t errors = bench->short_responses;
        for (int i = 1; i <= 16; i++)
            errors += bench->errors[i];
        if (errors || bench->ok == 0)
            rc = 1;
    }
    for (size_t i = 0; i < opt.n_pids; i++)
        if (!bench->proc_ok[i])
            fprintf (stderr, "tether bench: could not read /proc/%d\n",
                     opt.pids[i]);
    s_bench_destroy (&bench);
    grpc_shutdown ();
    free (opt.edge);
    free (opt.agent_edge);
    return rc;
}
