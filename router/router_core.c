/*  =========================================================================
    router_core - the router's state machine: agents, requests, edges

    Pure: no sockets, no clock reads, no I/O.  Every input is an argument
    (a message and its time, or the time alone) and every output goes to
    the outbox.  docs/protocol.md is the contract; this file implements it.

    Tables and their indexes (changed together, in the same function):
      agents    agent_id -> agent_t            (owns the agent; a slot_set
                                                of pointers, see "Agent
                                                indexes")
      agent_tree the same agents in id order   (ListAgents pages)
      edge      ->agents list, ->by_handle     (the agent's current stream;
                                                list links in agent_t)
      requests  request_id -> request_t        (owns the request; a
                                                slot_set of pointers)
      agent     ->requests list                (delivered, in flight)
      waiting   agent_id -> list of request_t  (parked for an agent; an
                                                emptied list is deleted)
      edge      ->client_reqs, ->resp_reqs     (the request's client call
                                                and response call; list
                                                links in request_t)
      edges     routing id bytes -> edge_t (a slot_set, the edge keeping
                its routing id and its hash), names: edge_id -> edge_t
    Every list entry is a zlistx handle kept in the entity (edge->agents:
    links in agent_t), so removal is O(1).

    The hot path allocates only what a message brings (its payload frame)
    or what must outlive it (a request): an input's envelope is decoded by
    one reused parser (common/wire_envelope.c), and the outbox keeps an
    edge message as bytes, its routing id and its envelope packed in
    place, plus its payload frame.

    Invariants:
    - A request leaves through s_request_finish and nowhere else.  That
      function tells each involved edge at most once, never the party that
      ended the request, never a dead edge; emits `request.end`; unlinks
      the request from every index and timer; and moves it to a graveyard
      that is freed once the current input is fully handled.
    - Request state changes only in s_req_set_state.
    - Sessions only grow: next_session is above every session handed out
      or reported by an edge in HELLO.
    - An agent record follows its id across supersession: the newer stream
      takes it over, so requests delivered to the older stream now belong
      to the newer one.
    - Dead edges are unlinked at once and freed after the current input.
    =========================================================================
*/
#include "router_core.h"
#include "tstatus.h"
#include "router_core_internal.h"
#include "slot_set.h"
#include "timers.h"
#include "tlog.h"
#include "tether.pb-c.h"
#include "wire_commands.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  gRPC status codes
enum
{
    ST_OK = 0,
    ST_CANCELLED = 1,
    ST_UNKNOWN = 2,
    ST_INVALID_ARGUMENT = 3,
    ST_DEADLINE_EXCEEDED = 4,
    ST_NOT_FOUND = 5,
    ST_ALREADY_EXISTS = 6,
    ST_PERMISSION_DENIED = 7,
    ST_RESOURCE_EXHAUSTED = 8,
    ST_FAILED_PRECONDITION = 9,
    ST_ABORTED = 10,
    ST_UNAVAILABLE = 14,
    ST_MAX = TSTATUS_COUNT - 1
};

typedef enum
{
    REQ_WAITING = 1, //  parked until its agent subscribes
    REQ_DELIVERED,   //  sent down the agent's stream
    REQ_BOUND,       //  a response call claimed it
    REQ_STREAMING,   //  the first response message went through
    REQ_FINISHED     //  ended; in the graveyard
} req_state_t;

static const char *s_req_state_name[] = {"NONE",  "WAITING",   "DELIVERED",
                                         "BOUND", "STREAMING", "FINISHED"};

typedef enum
{
    TIMER_ACTIVITY = 1, //  request: first response, then idle
    TIMER_DEADLINE,     //  request: the client's deadline
    TIMER_WAIT,         //  request: wait for the agent
    TIMER_EDGE,         //  edge liveness
    TIMER_STATS         //  the periodic stats event
} timer_kind_t;

//  Who ended a request; that party is not told.
typedef enum
{
    BY_ROUTER = 0,  //  a deadline, an edge lost, a limit
    BY_CLIENT,      //  CANCEL from the client call
    BY_RESPONDER,   //  END from the bound response call
    BY_AGENT_STREAM //  END from the agent's stream
} end_cause_t;

//  Largest session an edge may report.  Sessions start at the wall clock
//  in microseconds (about 2^51), so this leaves the counter room to grow
//  for ever while a reported session can never make it wrap.
#define SESSION_MAX ((uint64_t) INT64_MAX)


#define LOG_MALFORMED_FIRST 10   //  malformed inputs logged each...
#define LOG_MALFORMED_EVERY 1000 //  ...then one in this many

typedef struct _agent_t agent_t;
typedef struct _request_t request_t;

//  A list of requests linked through the requests themselves (one pair
//  of links per list a request can be in), oldest first: adding and
//  removing allocate nothing.
typedef struct
{
    request_t *prev; //  older request in the list
    request_t *next; //  newer request in the list
} req_link_t;

typedef struct
{
    request_t *first; //  oldest
    request_t *last;  //  newest
    size_t size;      //  requests in the list
} req_list_t;

struct _core_edge_t
{
    char *key;              //  routing id in hex, for logs
    zframe_t *routing_id;   //  prefix of every message to it; its
                            //  bytes are the key in core->edges
    uint32_t id_hash;       //  s_routing_hash of those bytes
    char *name;             //  its edge_id, or edge_id#N when another
                            //  live edge held that name (see
                            //  s_edge_claim_name)
    char *asked;            //  the edge_id it said in HELLO
    uint64_t incarnation;   //  its incarnation
    int64_t up_ms;          //  when it said HELLO
    int64_t last_heard;     //  when it last sent anything
    uint64_t serial;        //  never reused: names it in requests
    bool dead;              //  lost; in the graveyard
    agent_t *agents;        //  agent_t whose current stream is here,
                            //  oldest first (linked through agent_t)
    agent_t *agents_last;   //  the newest of them
    slot_set_t by_handle;   //  stream handle -> agent_t
    req_list_t client_reqs; //  request_t whose client call is here
    req_list_t resp_reqs;   //  request_t whose response call is here
    timers_node_t liveness; //  fires when it may have gone silent
};
typedef core_edge_t edge_t;

//  One allocation per agent, its id inline; an idle agent owns at most
//  one more block (its labels).  Every index the agent is in is either a
//  slot array (core->agents, edge->by_handle) or links inside the agent
//  (the id tree, edge->agents).
struct _agent_t
{
    agent_t *left;        //  id tree: the subtree of smaller ids
    agent_t *right;       //  id tree: the subtree of larger ids
    agent_t *edge_prev;   //  edge->agents: older agent on the edge
    agent_t *edge_next;   //  edge->agents: newer agent on the edge
    edge_t *edge;         //  current stream's edge
    uint64_t handle;      //  current stream's handle on that edge
    uint64_t session;     //  current session
    int64_t connected_at; //  unix ms, as the edge saw it
    zlistx_t *requests;   //  request_t delivered and in flight; NULL
                          //  until the first delivery
    char *labels;         //  n_labels key, value string pairs, each
                          //  NUL-terminated, in one block; NULL if none
    uint32_t n_labels;    //  labels
    uint32_t hash;        //  s_id_hash (id)
    uint8_t height;       //  id tree: height of this subtree
    char id[];            //  agent id, NUL-terminated
};

//  One allocation per request, its two ids inline.
struct _request_t
{
    char *id;                 //  request id (in text); the key in
                              //  core->requests, not copied there
    char *agent_id;           //  addressed agent (in text)
    req_state_t state;        //  see req_state_t
    agent_t *agent;           //  the agent it was delivered to, until
                              //  that agent disconnects
    void *agent_item;         //  handle in agent->requests
    uint64_t session;         //  session it was delivered to
    char *agent_edge;         //  name of the agent's edge, last known:
                              //  agent_edge_buf, or a heap copy when
                              //  it does not fit there
    char agent_edge_buf[48];  //  the usual, short, name
    uint32_t hash;            //  s_id_hash (id), its key in
                              //  core->requests
    edge_t *client_edge;      //  the client call's edge
    uint64_t client_handle;   //  the client call's handle
    req_link_t client_link;   //  links in client_edge->client_reqs
    edge_t *resp_edge;        //  the response call's edge, once bound
    uint64_t resp_handle;     //  the response call's handle
    req_link_t resp_link;     //  links in resp_edge->resp_reqs
    zlistx_t *wait_list;      //  the waiting bucket it is parked in
    void *wait_item;          //  handle in wait_list
    zframe_t *payload;        //  the AgentRequest, kept until a
                              //  response call binds it (so it can be
                              //  delivered again, see core_on_end)
    uint64_t stream_edge;     //  serial of the edge of the stream it was
                              //  last sent down
    uint64_t stream_handle;   //  that stream's handle
    uint32_t credit;          //  response messages the responder may send
    timers_node_t activity;   //  first response / idle
    timers_node_t deadline;   //  client's deadline
    timers_node_t wait;       //  end of the wait for the agent
    int64_t start_ms;         //  PUBLISH time
    uint64_t bytes_to_agent;  //  request payload bytes
    uint64_t bytes_to_client; //  response payload bytes
    uint64_t responses;       //  response messages relayed
    request_t *next_dead;     //  graveyard link (core->dead_requests)
    char text[];              //  id and agent_id, NUL-terminated
};

//  One outbox entry.  An edge message is kept as bytes (its routing id,
//  then its packed envelope, in core->out_bytes) and the payload frame:
//  no zmsg_t, no frame and no allocation for a message without payload.
typedef struct
{
    core_out_t kind;   //  what the shell does with it
    size_t offset;     //  CORE_OUT_EDGE: routing id at out_bytes + offset
    uint32_t id_size;  //  CORE_OUT_EDGE: routing id bytes
    uint32_t env_size; //  CORE_OUT_EDGE: envelope bytes, after the id
    zframe_t *payload; //  CORE_OUT_EDGE: frame 2, or NULL; owned
    zmsg_t *msg;       //  CORE_OUT_EVENT, CORE_OUT_LOG: owned
} outbox_entry_t;

//  The buffer monitor events are written into (see "JSON" below).
typedef struct
{
    char *data;   //  the event so far, not NUL-terminated
    size_t size;  //  bytes written
    size_t cap;   //  bytes allocated
    bool discard; //  nobody wants this event: drop writes
} json_buf_t;

struct _core_t
{
    core_config_t cfg;            //  limits and timings
    uint64_t incarnation;         //  this router's
    uint64_t next_session;        //  next session to hand out
    uint64_t next_edge_serial;    //  next edge_t serial
    int log_level;                //  lowest level logged
    core_stats_t stats;           //  counters
    int64_t now;                  //  time of the current input
    bool started;                 //  the first input has been seen
    uint64_t event_seq;           //  last monitor event's seq
    bool events_wanted;           //  build monitor events (core_set_events)
    json_buf_t json;              //  the event being written, reused
    FILE *json_file;              //  unbuffered stream appending to json
    char incarnation_text[17];    //  incarnation as 16 hex digits, for events
    int64_t stats_last_ms;        //  previous stats event (or the start)
    uint64_t stats_last_finished; //  requests_finished at that time
    uint64_t hash_key[2];         //  s_id_hash's key (core_set_hash_key)
    slot_set_t agents;            //  agent_id -> agent_t (owns them)
    agent_t *agent_tree;          //  the same agents by id (AVL tree)
    slot_set_t requests;          //  request_id -> request_t (owns them)
    zhashx_t *waiting;            //  agent_id -> zlistx_t of request_t
    size_t waiting_count;         //  requests parked
    slot_set_t edges;             //  routing id bytes -> edge_t (owns)
    zhashx_t *edge_names;         //  edge_id -> edge_t
    timers_t *timers;             //  request deadlines
    timers_t *cron;               //  edge liveness and stats
    timers_node_t stats_timer;    //  the periodic stats
    outbox_entry_t *outbox;       //  entries [outbox_head, outbox_tail),
                                  //  oldest first
    size_t outbox_head;           //  oldest entry not taken yet
    size_t outbox_tail;           //  next free entry
    size_t outbox_cap;            //  entries allocated
    byte *out_bytes;              //  routing ids and envelopes of the
                                  //  edge entries; reset when emptied
    size_t out_size;              //  bytes used
    size_t out_cap;               //  bytes allocated
    request_t *dead_requests;     //  to free after this input, linked
                                  //  through next_dead
    zlistx_t *dead_edges;         //  edge_t to free after this input
    //  Decodes every input's envelope
    wire_envelope_parser_t *parser;
};


//  ---------------------------------------------------------------------
//  Outbox: edge messages, events, logs

//  Byte buffers above this size are given back once the outbox empties.
#define OUT_BYTES_KEEP (256u * 1024)

//  A new entry at the end of the outbox, zeroed but for its kind.  Taken
//  entries' bytes stay readable until this is called: the shell reads
//  them between two calls into the core.
static outbox_entry_t *
s_outbox_add (core_t *self, core_out_t kind)
{
    if (self->outbox_head == self->outbox_tail) {
        //  Empty: start again at the front
        self->outbox_head = self->outbox_tail = 0;
        self->out_size = 0;
        if (self->out_cap > OUT_BYTES_KEEP) {
            free (self->out_bytes);
            self->out_bytes = NULL;
            self->out_cap = 0;
        }
    }
    if (self->outbox_tail == self->outbox_cap) {
        if (self->outbox_head > 0) {
            memmove (self->outbox, self->outbox + self->outbox_head,
                     (self->outbox_tail - self->outbox_head)
                         * sizeof (outbox_entry_t));
            self->outbox_tail -= self->outbox_head;
            self->outbox_head = 0;
        } else {
            size_t cap = self->outbox_cap ? self->outbox_cap * 2 : 16;
            self->outbox = (outbox_entry_t *) realloc (
                self->outbox, cap * sizeof (outbox_entry_t));
            assert (self->outbox);
            self->outbox_cap = cap;
        }
    }
    outbox_entry_t *entry = &self->outbox[self->outbox_tail++];
    memset (entry, 0, sizeof *entry);
    entry->kind = kind;
    return entry;
}

//  Returns room for `size` more bytes at self->out_bytes + self->out_size.
static byte *
s_out_reserve (core_t *self, size_t size)
{
    if (self->out_size + size > self->out_cap) {
        size_t cap = self->out_cap ? self->out_cap : 4096;
        while (cap < self->out_size + size)
            cap *= 2;
        self->out_bytes = (byte *) realloc (self->out_bytes, cap);
        assert (self->out_bytes);
        self->out_cap = cap;
    }
    return self->out_bytes + self->out_size;
}

static void
s_outbox_push (core_t *self, core_out_t kind, zmsg_t *msg)
{
    s_outbox_add (self, kind)->msg = msg;
}

static void
s_log (core_t *self, int level, const char *text, const char *fields, ...)
    __attribute__ ((format (printf, 4, 5)));

//  Append a log line: [level digit][text][logfmt fields].
static void
s_log (core_t *self, int level, const char *text, const char *fields, ...)
{
    if (level < self->log_level)
        return;
    char *formatted = NULL;
    va_list args;
    va_start (args, fields);
    int rc = vasprintf (&formatted, fields, args);
    va_end (args);
    assert (rc >= 0);
    char digit[2] = {(char) ('0' + level), 0};
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, digit);
    zmsg_addstr (msg, text);
    zmsg_addstr (msg, formatted);
    free (formatted);
    s_outbox_push (self, CORE_OUT_LOG, msg);
}

//  A logfmt-safe copy of `value` in `buf`.
static const char *
s_q (const char *value, char *buf, size_t size)
{
    return tlog_quote (value ? value : "", buf, size);
}

//  Send `env` (borrowed; its version is set) and the payload (taken, may
//  be NULL) to `routing_id` (borrowed).
static void
s_send_to (core_t *self,
           zframe_t *routing_id,
           Wire__Envelope *env,
           zframe_t **payload_p)
{
    size_t id_size = zframe_size (routing_id);
    outbox_entry_t *entry = s_outbox_add (self, CORE_OUT_EDGE);
    //  Pack in one pass into the room there is; again if it was short
    byte *bytes = s_out_reserve (self, id_size + 256);
    size_t room = self->out_cap - self->out_size - id_size;
    size_t env_size = wire_envelope_pack_into (env, bytes + id_size, room);
    if (env_size > room) {
        bytes = s_out_reserve (self, id_size + env_size);
        size_t packed =
            wire_envelope_pack_into (env, bytes + id_size, env_size);
        assert (packed == env_size);
    }
    memcpy (bytes, zframe_data (routing_id), id_size);
    entry->offset = self->out_size;
    entry->id_size = (uint32_t) id_size;
    entry->env_size = (uint32_t) env_size;
    self->out_size += id_size + env_size;
    if (payload_p) {
        entry->payload = *payload_p;
        *payload_p = NULL;
    }
}

//  Send to `edge`, unless it is dead: then the payload is dropped.
static void
s_send (core_t *self, edge_t *edge, Wire__Envelope *env, zframe_t **payload_p)
{
    if (!edge || edge->dead) {
        if (payload_p)
            zframe_destroy (payload_p);
        return;
    }
    s_send_to (self, edge->routing_id, env, payload_p);
}

static void
s_send_finish (core_t *self,
               edge_t *edge,
               uint64_t handle,
               const char *request_id,
               int status,
               const char *message)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__FINISH;
    env.handle = handle;
    env.request_id = (char *) request_id;
    env.status = status;
    env.message = (char *) (message ? message : "");
    s_send (self, edge, &env, NULL);
}

static void
s_send_kick (core_t *self,
             edge_t *edge,
             uint64_t handle,
             uint64_t session,
             int status,
             const char *message)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__KICK;
    env.handle = handle;
    env.session = session;
    env.status = status;
    env.message = (char *) message;
    s_send (self, edge, &env, NULL);
}


//  ---------------------------------------------------------------------
//  JSON for monitor events
//
//  Events are written into one growable buffer the core keeps
//  (core->json) with direct appends: no stdio and no allocation once the
//  buffer has grown to the largest event.  json_t.file is an unbuffered
//  stream (fopencookie) that appends to the same buffer, for a writer
//  that wants printf formatting; being unbuffered, its bytes and the
//  direct appends stay in order.  While no monitor wants events
//  (core_set_events), every writer does nothing and nothing is published;
//  the sequence number still counts every event, so it keeps meaning
//  "events the router produced".

typedef struct
{
    FILE *file;      //  appends to buf; borrowed from the core
    json_buf_t *buf; //  the core's event buffer, borrowed
} json_t;

static void
s_jb_reserve (json_buf_t *buf, size_t more)
{
    if (buf->size + more <= buf->cap)
        return;
    size_t cap = buf->cap ? buf->cap : 512;
    while (cap < buf->size + more)
        cap *= 2;
    buf->data = (char *) realloc (buf->data, cap);
    assert (buf->data);
    buf->cap = cap;
}

static void
s_jb_put (json_buf_t *buf, const void *data, size_t len)
{
    s_jb_reserve (buf, len);
    memcpy (buf->data + buf->size, data, len);
    buf->size += len;
}

static void
s_jb_putc (json_buf_t *buf, char c)
{
    s_jb_reserve (buf, 1);
    buf->data[buf->size++] = c;
}

static void
s_jb_puts (json_buf_t *buf, const char *text)
{
    s_jb_put (buf, text, strlen (text));
}

static void
s_jb_uint (json_buf_t *buf, uint64_t value)
{
    char digits[20];
    size_t n = 0;
    do {
        digits[n++] = (char) ('0' + value % 10);
        value /= 10;
    } while (value);
    s_jb_reserve (buf, n);
    while (n)
        buf->data[buf->size++] = digits[--n];
}

static void
s_jb_int (json_buf_t *buf, int64_t value)
{
    if (value < 0) {
        s_jb_putc (buf, '-');
        s_jb_uint (buf, (uint64_t) 0 - (uint64_t) value);
    } else
        s_jb_uint (buf, (uint64_t) value);
}

//  `"key":`, the key being one of our literals (nothing to escape).
static void
s_jb_key (json_buf_t *buf, const char *key)
{
    size_t len = strlen (key);
    s_jb_reserve (buf, len + 4);
    buf->data[buf->size++] = ',';
    buf->data[buf->size++] = '"';
    memcpy (buf->data + buf->size, key, len);
    buf->size += len;
    buf->data[buf->size++] = '"';
    buf->data[buf->size++] = ':';
}

//  Write `value` as a JSON string: quotes, backslashes and control bytes
//  escaped; bytes that are not valid UTF-8 become U+FFFD.
static void
s_jb_escape (json_buf_t *buf, const char *value)
{
    const char *hex = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *) (value ? value : "");
    s_jb_putc (buf, '"');
    while (*s) {
        //  The longest run that needs no escaping goes in one copy
        const unsigned char *run = s;
        while (*s >= 0x20 && *s < 0x80 && *s != '"' && *s != '\\')
            s++;
        if (s > run)
            s_jb_put (buf, run, (size_t) (s - run));
        unsigned char c = *s;
        if (!c)
            break;
        if (c == '"' || c == '\\') {
            char pair[2] = {'\\', (char) c};
            s_jb_put (buf, pair, 2);
            s++;
        } else if (c < 0x20) {
            char code[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            s_jb_put (buf, code, 6);
            s++;
        } else {
            //  Length of a valid UTF-8 sequence starting here, or 0
            size_t len = 0;
            unsigned int cp = 0;
            if (c >= 0xC2 && c <= 0xDF)
                len = 2, cp = c & 0x1F;
            else if (c >= 0xE0 && c <= 0xEF)
                len = 3, cp = c & 0x0F;
            else if (c >= 0xF0 && c <= 0xF4)
                len = 4, cp = c & 0x07;
            for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xC0) != 0x80) {
                    len = 0;
                    break;
                }
                cp = (cp << 6) | (s[i] & 0x3F);
            }
            if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)))
                || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
                len = 0;
            if (len) {
                s_jb_put (buf, s, len);
                s += len;
            } else {
                s_jb_puts (buf, "\\ufffd");
                s++;
            }
        }
    }
    s_jb_putc (buf, '"');
}

//  The cookie stream's write function: append to the buffer.
static ssize_t
s_jb_cookie_write (void *cookie, const char *data, size_t size)
{
    json_buf_t *buf = (json_buf_t *) cookie;
    if (!buf->discard)
        s_jb_put (buf, data, size);
    return (ssize_t) size;
}

//  `value` as a JSON string on `file` (a json_t's file).
static void
s_json_escape (FILE *file, const char *value)
{
    json_buf_t text = {NULL, 0, 0, false};
    s_jb_escape (&text, value);
    fwrite (text.data, 1, text.size, file);
    free (text.data);
}

static void
s_json_begin (core_t *self, json_t *json)
{
    json->buf = &self->json;
    json->file = self->json_file;
    json->buf->size = 0;
    json->buf->discard = !self->events_wanted;
    ++self->event_seq;
    if (json->buf->discard)
        return;
    s_jb_puts (json->buf, "{\"seq\":");
    s_jb_uint (json->buf, self->event_seq);
    s_jb_key (json->buf, "mono_ms");
    s_jb_int (json->buf, self->now);
}

static void
s_json_str (json_t *json, const char *key, const char *value)
{
    if (json->buf->discard)
        return;
    s_jb_key (json->buf, key);
    s_jb_escape (json->buf, value);
}

static void
s_json_int (json_t *json, const char *key, int64_t value)
{
    if (json->buf->discard)
        return;
    s_jb_key (json->buf, key);
    s_jb_int (json->buf, value);
}

static void
s_json_uint (json_t *json, const char *key, uint64_t value)
{
    if (json->buf->discard)
        return;
    s_jb_key (json->buf, key);
    s_jb_uint (json->buf, value);
}

//  A rate with three decimals: JSON has no NaN or infinity, so an empty
//  interval gives 0.
static void
s_json_rate (json_t *json, const char *key, uint64_t count, int64_t ms)
{
    if (json->buf->discard)
        return;
    double rate = ms > 0 ? (double) count * 1000.0 / (double) ms : 0.0;
    char text[64];
    int len = snprintf (text, sizeof text, "%.3f", rate);
    s_jb_key (json->buf, key);
    s_jb_put (json->buf, text, len > 0 ? (size_t) len : 0);
}

static void
s_json_bool (json_t *json, const char *key, bool value)
{
    if (json->buf->discard)
        return;
    s_jb_key (json->buf, key);
    s_jb_puts (json->buf, value ? "true" : "false");
}

//  Close the object and publish it under `topic`.
static void
s_json_emit (core_t *self, json_t *json, const char *topic)
{
    if (json->buf->discard)
        return;
    s_jb_putc (json->buf, '}');
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, topic);
    zmsg_addmem (msg, json->buf->data, json->buf->size);
    json->buf->size = 0;
    self->stats.events_published++;
    s_outbox_push (self, CORE_OUT_EVENT, msg);
}

static void
s_json_labels (json_t *json, agent_t *agent)
{
    if (json->buf->discard)
        return;
    s_jb_puts (json->buf, ",\"labels\":{");
    const char *label = agent->labels;
    for (size_t i = 0; i < agent->n_labels; i++) {
        if (i)
            s_jb_putc (json->buf, ',');
        s_jb_escape (json->buf, label);
        label += strlen (label) + 1;
        s_jb_putc (json->buf, ':');
        s_jb_escape (json->buf, label);
        label += strlen (label) + 1;
    }
    s_jb_putc (json->buf, '}');
}


//  ---------------------------------------------------------------------
//  Validation

static bool
s_agent_id_valid (core_t *self, const char *id)
{
    size_t len = id ? strlen (id) : 0;
    if (len == 0 || len > self->cfg.max_agent_id_len)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || strchr ("._:@/+=-", c)))
            return false;
    }
    return true;
}

static bool
s_request_id_valid (core_t *self, const char *id)
{
    size_t len = id ? strlen (id) : 0;
    if (len == 0 || len > self->cfg.max_request_id_len)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) id[i] <= 0x20 || (unsigned char) id[i] >= 0x7F)
            return false;
    return true;
}


//  ---------------------------------------------------------------------
//  Agent indexes
//
//  An idle agent costs the router one allocation (agent_t, its id
//  inline), a labels block when it has labels, and a slot in each of two
//  slot sets (core->agents by id, its edge's by_handle by stream handle;
//  slot_set.h), pointer arrays at most three quarters full.  The id tree
//  (an AVL tree linked through agent_t) keeps the agents in id order, so
//  a ListAgents page starts at its token in O(log N) and costs only what
//  it sends.  An agent's requests list is created at its first delivery.

//  SipHash-1-3 of `id`, keyed with self->hash_key (core_set_hash_key):
//  ids are chosen by clients and agents, and with an unkeyed hash a
//  client could pick thousands of request ids that land in one run of
//  slots, turning every lookup into a scan of them.  One function for
//  agent ids and request ids.
#define S_ROTL(x, b) (uint64_t) (((x) << (b)) | ((x) >> (64 - (b))))
#define S_SIPROUND                                                             \
    do {                                                                       \
        v0 += v1;                                                              \
        v1 = S_ROTL (v1, 13);                                                  \
        v1 ^= v0;                                                              \
        v0 = S_ROTL (v0, 32);                                                  \
        v2 += v3;                                                              \
        v3 = S_ROTL (v3, 16);                                                  \
        v3 ^= v2;                                                              \
        v0 += v3;                                                              \
        v3 = S_ROTL (v3, 21);                                                  \
        v3 ^= v0;                                                              \
        v2 += v1;                                                              \
        v1 = S_ROTL (v1, 17);                                                  \
        v1 ^= v2;                                                              \
        v2 = S_ROTL (v2, 32);                                                  \
    } while (0)

static uint32_t
s_id_hash (core_t *self, const char *id)
{
    size_t len = strlen (id);
    const unsigned char *in = (const unsigned char *) id;
    uint64_t k0 = self->hash_key[0], k1 = self->hash_key[1];
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
    uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
    uint64_t v3 = 0x7465646279746573ULL ^ k1;
    size_t whole = len - len % 8;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = 0;
        for (int b = 7; b >= 0; b--)
            m = (m << 8) | in[i + (size_t) b];
        v3 ^= m;
        S_SIPROUND;
        v0 ^= m;
    }
    uint64_t last = (uint64_t) len << 56;
    for (size_t b = 0; b < len % 8; b++)
        last |= (uint64_t) in[whole + b] << (8 * b);
    v3 ^= last;
    S_SIPROUND;
    v0 ^= last;
    v2 ^= 0xff;
    S_SIPROUND;
    S_SIPROUND;
    S_SIPROUND;
    uint64_t hash = v0 ^ v1 ^ v2 ^ v3;
    return (uint32_t) (hash ^ (hash >> 32));
}
#undef S_SIPROUND
#undef S_ROTL

//  Handles are an edge's incarnation id plus a counter: mix the bits.
static size_t
s_handle_hash (uint64_t handle)
{
    handle ^= handle >> 33;
    handle *= 0xff51afd7ed558ccdULL;
    handle ^= handle >> 33;
    return (size_t) handle;
}

//  The slot sets' views of an agent (see slot_set.h).
static size_t
s_agent_id_hash (const void *entry)
{
    return ((const agent_t *) entry)->hash;
}

static size_t
s_agent_handle_hash (const void *entry)
{
    return s_handle_hash (((const agent_t *) entry)->handle);
}

//  A key for s_agent_id_match and s_request_match: an id and its
//  s_id_hash.
typedef struct
{
    const char *id;
    uint32_t hash;
} id_key_t;

static bool
s_agent_id_match (const void *entry, const void *key)
{
    const agent_t *agent = (const agent_t *) entry;
    const id_key_t *want = (const id_key_t *) key;
    return agent->hash == want->hash && streq (agent->id, want->id);
}

static bool
s_agent_handle_match (const void *entry, const void *key)
{
    return ((const agent_t *) entry)->handle == *(const uint64_t *) key;
}

//  The key of `id` in core->agents or core->requests: hashed once, for
//  the lookup and for the entry made after it.
static id_key_t
s_id_key (core_t *self, const char *id)
{
    return (id_key_t){id, s_id_hash (self, id)};
}

//  The agent whose id is key->id, or NULL.
static agent_t *
s_agent_find (core_t *self, const id_key_t *key)
{
    return (agent_t *) slot_set_find (&self->agents, key->hash,
                                      s_agent_id_match, key);
}

//  The agent whose current stream on `edge` is `handle`, or NULL.
static agent_t *
s_agent_find_handle (edge_t *edge, uint64_t handle)
{
    return (agent_t *) slot_set_find (&edge->by_handle, s_handle_hash (handle),
                                      s_agent_handle_match, &handle);
}

static int
s_tree_height (agent_t *node)
{
    return node ? node->height : 0;
}

static void
s_tree_fix_height (agent_t *node)
{
    int left = s_tree_height (node->left);
    int right = s_tree_height (node->right);
    node->height = (uint8_t) (1 + (left > right ? left : right));
}

static agent_t *
s_tree_rotate_right (agent_t *node)
{
    agent_t *top = node->left;
    node->left = top->right;
    top->right = node;
    s_tree_fix_height (node);
    s_tree_fix_height (top);
    return top;
}

static agent_t *
s_tree_rotate_left (agent_t *node)
{
    agent_t *top = node->right;
    node->right = top->left;
    top->left = node;
    s_tree_fix_height (node);
    s_tree_fix_height (top);
    return top;
}

//  Restores the AVL balance at `node`; returns the subtree's new root.
static agent_t *
s_tree_balance (agent_t *node)
{
    s_tree_fix_height (node);
    int skew = s_tree_height (node->left) - s_tree_height (node->right);
    if (skew > 1) {
        if (s_tree_height (node->left->left)
            < s_tree_height (node->left->right))
            node->left = s_tree_rotate_left (node->left);
        return s_tree_rotate_right (node);
    }
    if (skew < -1) {
        if (s_tree_height (node->right->right)
            < s_tree_height (node->right->left))
            node->right = s_tree_rotate_right (node->right);
        return s_tree_rotate_left (node);
    }
    return node;
}

//  Adds `agent` (its id not in the tree); returns the new root.
static agent_t *
s_tree_insert (agent_t *root, agent_t *agent)
{
    if (!root) {
        agent->left = agent->right = NULL;
        agent->height = 1;
        return agent;
    }
    if (strcmp (agent->id, root->id) < 0)
        root->left = s_tree_insert (root->left, agent);
    else
        root->right = s_tree_insert (root->right, agent);
    return s_tree_balance (root);
}

static agent_t *
s_tree_detach_min (agent_t *root, agent_t **min_p)
{
    if (!root->left) {
        *min_p = root;
        return root->right;
    }
    root->left = s_tree_detach_min (root->left, min_p);
    return s_tree_balance (root);
}

//  Removes `agent`, which is in the tree; returns the new root.
static agent_t *
s_tree_remove (agent_t *root, agent_t *agent)
{
    assert (root);
    int cmp = strcmp (agent->id, root->id);
    if (cmp < 0)
        root->left = s_tree_remove (root->left, agent);
    else if (cmp > 0)
        root->right = s_tree_remove (root->right, agent);
    else {
        assert (root == agent);
        if (!root->right)
            return root->left;
        agent_t *min;
        agent_t *right = s_tree_detach_min (root->right, &min);
        min->left = root->left;
        min->right = right;
        root = min;
    }
    return s_tree_balance (root);
}

//  Walks the tree in id order from a starting id.  An AVL tree of 2^32
//  agents is less than 48 high.
typedef struct
{
    agent_t *path[64]; //  nodes still to visit, the next on top
    size_t depth;      //  nodes on path
} tree_walk_t;

//  Starts `walk` at the first agent whose id is above `from` (`strict`) or
//  at least `from`.
static void
s_tree_walk_from (tree_walk_t *walk,
                  agent_t *root,
                  const char *from,
                  bool strict)
{
    walk->depth = 0;
    while (root) {
        int cmp = strcmp (root->id, from);
        if (cmp > 0 || (cmp == 0 && !strict)) {
            assert (walk->depth < 64);
            walk->path[walk->depth++] = root;
            root = root->left;
        } else
            root = root->right;
    }
}

static agent_t *
s_tree_walk_next (tree_walk_t *walk)
{
    if (!walk->depth)
        return NULL;
    agent_t *node = walk->path[--walk->depth];
    for (agent_t *below = node->right; below; below = below->left) {
        assert (walk->depth < 64);
        walk->path[walk->depth++] = below;
    }
    return node;
}

//  Requests delivered to `agent` and still in flight.
static size_t
s_agent_in_flight (agent_t *agent)
{
    return agent->requests ? zlistx_size (agent->requests) : 0;
}

//  `agent`'s requests list, created at its first use.
static zlistx_t *
s_agent_requests (agent_t *agent)
{
    if (!agent->requests) {
        agent->requests = zlistx_new ();
        assert (agent->requests);
    }
    return agent->requests;
}


//  ---------------------------------------------------------------------
//  Requests

static void
s_request_event_start (core_t *self, request_t *req)
{
    json_t json;
    s_json_begin (self, &json);
    s_json_str (&json, "request_id", req->id);
    s_json_str (&json, "agent_id", req->agent_id);
    s_json_str (&json, "client_edge", req->client_edge->name);
    s_json_uint (&json, "bytes", req->bytes_to_agent);
    s_json_emit (self, &json, "request.start");
}

//  The one place a request changes state.
static void
s_req_set_state (core_t *self, request_t *req, req_state_t state)
{
    if (self->log_level <= TLOG_DEBUG) {
        char qid[160];
        s_log (self, TLOG_DEBUG, "request state",
               "request=%s agent=%s "
               "from=%s to=%s",
               s_q (req->id, qid, sizeof qid), req->agent_id,
               s_req_state_name[req->state], s_req_state_name[state]);
    }
    req->state = state;
}

static void
s_set_agent_edge_name (request_t *req, const char *name)
{
    if (req->agent_edge == name)
        return;
    if (req->agent_edge != req->agent_edge_buf)
        free (req->agent_edge);
    size_t size = strlen (name) + 1;
    if (size <= sizeof req->agent_edge_buf) {
        memcpy (req->agent_edge_buf, name, size);
        req->agent_edge = req->agent_edge_buf;
    } else {
        req->agent_edge = strdup (name);
        assert (req->agent_edge);
    }
}

static void
s_request_destroy (request_t **req_p)
{
    request_t *req = *req_p;
    if (req) {
        zframe_destroy (&req->payload);
        if (req->agent_edge != req->agent_edge_buf)
            free (req->agent_edge);
        free (req);
        *req_p = NULL;
    }
}


//  ---------------------------------------------------------------------
//  The request table


static size_t
s_request_hash (const void *entry)
{
    return ((const request_t *) entry)->hash;
}

static bool
s_request_match (const void *entry, const void *key)
{
    const request_t *req = (const request_t *) entry;
    const id_key_t *want = (const id_key_t *) key;
    return req->hash == want->hash && streq (req->id, want->id);
}

//  The request whose id is key->id, or NULL.
static request_t *
s_request_find (core_t *self, const id_key_t *key)
{
    return (request_t *) slot_set_find (&self->requests, key->hash,
                                        s_request_match, key);
}

//  Count a request's end and publish `request.end`, for every request
//  that ends: finished by s_request_finish, or `rejected` by PUBLISH
//  before it existed (then only its ids, client edge and start time are
//  set, and the event says "rejected" instead of the fields that need a
//  delivery).  `status` is within 0..ST_MAX.
static void
s_request_account_end (core_t *self,
                       request_t *req,
                       int status,
                       const char *message,
                       bool rejected)
{
    self->stats.requests_finished++;
    self->stats.requests_by_status[status]++;
    json_t json;
    s_json_begin (self, &json);
    s_json_str (&json, "request_id", req->id);
    s_json_str (&json, "agent_id", req->agent_id);
    s_json_int (&json, "status", status);
    s_json_str (&json, "code", tstatus_name (status));
    s_json_str (&json, "message", message);
    s_json_int (&json, "duration_ms", self->now - req->start_ms);
    s_json_uint (&json, "bytes_to_agent", req->bytes_to_agent);
    s_json_uint (&json, "bytes_to_client", req->bytes_to_client);
    if (rejected) {
        s_json_str (&json, "client_edge", req->client_edge->name);
        s_json_bool (&json, "rejected", true);
    } else {
        s_json_uint (&json, "responses", req->responses);
        s_json_uint (&json, "session", req->session);
        s_json_str (&json, "client_edge", req->client_edge->name);
        s_json_str (&json, "agent_edge",
                    req->agent_edge ? req->agent_edge : "");
        s_json_str (&json, "responder_edge",
                    req->resp_edge ? req->resp_edge->name : "");
        s_json_str (&json, "state", s_req_state_name[req->state]);
    }
    s_json_emit (self, &json, "request.end");
}

//  The links of `req` at `offset` (offsetof the req_link_t in request_t).
static req_link_t *
s_req_link (request_t *req, size_t offset)
{
    return (req_link_t *) ((char *) req + offset);
}

//  Add `req` at the end of `list`, through its links at `offset`.
static void
s_req_list_append (req_list_t *list, request_t *req, size_t offset)
{
    req_link_t *link = s_req_link (req, offset);
    link->prev = list->last;
    link->next = NULL;
    if (list->last)
        s_req_link (list->last, offset)->next = req;
    else
        list->first = req;
    list->last = req;
    list->size++;
}

//  Take `req`, which is in `list`, out of it.
static void
s_req_list_remove (req_list_t *list, request_t *req, size_t offset)
{
    req_link_t *link = s_req_link (req, offset);
    if (link->prev)
        s_req_link (link->prev, offset)->next = link->next;
    else
        list->first = link->next;
    if (link->next)
        s_req_link (link->next, offset)->prev = link->prev;
    else
        list->last = link->prev;
    link->prev = link->next = NULL;
    assert (list->size > 0);
    list->size--;
}

//  End `req` with `status`: tell the parties still there that did not end
//  it, publish request.end, unlink it everywhere and bury it.
static void
s_request_finish (core_t *self,
                  request_t *req,
                  int status,
                  const char *message,
                  end_cause_t cause)
{
    assert (req->state != REQ_FINISHED);
    if (status < 0 || status > ST_MAX)
        status = ST_UNKNOWN;
    message = message ? message : "";

    //  Tell each party once
    if (cause != BY_CLIENT)
        s_send_finish (self, req->client_edge, req->client_handle, req->id,
                       status, message);
    if (req->agent && cause != BY_RESPONDER && cause != BY_AGENT_STREAM) {
        Wire__Envelope env = WIRE__ENVELOPE__INIT;
        env.command = WIRE__COMMAND__ABORT;
        env.handle = req->agent->handle;
        env.session = req->agent->session;
        env.request_id = req->id;
        s_send (self, req->agent->edge, &env, NULL);
    }
    if (req->resp_edge && cause != BY_RESPONDER)
        s_send_finish (self, req->resp_edge, req->resp_handle, req->id, status,
                       message);

    //  Account
    int64_t duration = self->now - req->start_ms;
    s_request_account_end (self, req, status, message, false);
    if (self->log_level <= TLOG_DEBUG) {
        char qid[160], qmsg[160];
        s_log (self, TLOG_DEBUG, "request end",
               "request=%s agent=%s "
               "status=%s duration_ms=%" PRId64 " message=%s",
               s_q (req->id, qid, sizeof qid), req->agent_id,
               tstatus_name (status), duration,
               s_q (message, qmsg, sizeof qmsg));
    }

    //  Unlink from every index and timer
    slot_set_remove (&self->requests, req);
    if (req->agent) {
        zlistx_delete (req->agent->requests, req->agent_item);
        req->agent = NULL;
        req->agent_item = NULL;
    }
    if (req->wait_list) {
        zlistx_delete (req->wait_list, req->wait_item);
        self->waiting_count--;
        if (zlistx_size (req->wait_list) == 0)
            zhashx_delete (self->waiting, req->agent_id);
        req->wait_list = NULL;
        req->wait_item = NULL;
    }
    s_req_list_remove (&req->client_edge->client_reqs, req,
                       offsetof (request_t, client_link));
    if (req->resp_edge)
        s_req_list_remove (&req->resp_edge->resp_reqs, req,
                           offsetof (request_t, resp_link));
    timers_disarm (self->timers, &req->activity);
    timers_disarm (self->timers, &req->deadline);
    timers_disarm (self->timers, &req->wait);
    zframe_destroy (&req->payload);
    s_req_set_state (self, req, REQ_FINISHED);
    req->next_dead = self->dead_requests;
    self->dead_requests = req;
}

//  Send DELIVER for `req` (already in `agent`'s list) down the agent's
//  current stream.  The request keeps its payload: a copy goes out.
static void
s_request_send (core_t *self, request_t *req, agent_t *agent)
{
    req->session = agent->session;
    req->stream_edge = agent->edge->serial;
    req->stream_handle = agent->handle;
    s_set_agent_edge_name (req, agent->edge->name);
    self->stats.bytes_to_agents += zframe_size (req->payload);

    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__DELIVER;
    env.handle = agent->handle;
    env.session = agent->session;
    env.request_id = req->id;
    env.agent_id = agent->id;
    zframe_t *copy = zframe_dup (req->payload);
    assert (copy);
    s_send (self, agent->edge, &env, &copy);
    if (self->cfg.first_response_ms)
        timers_arm (self->timers, &req->activity,
                    self->now + self->cfg.first_response_ms);
}

//  Send `req` down `agent`'s current stream.
static void
s_request_deliver (core_t *self, request_t *req, agent_t *agent)
{
    req->agent = agent;
    req->agent_item = zlistx_add_end (s_agent_requests (agent), req);
    req->bytes_to_agent = zframe_size (req->payload);
    s_request_send (self, req, agent);
    s_req_set_state (self, req, REQ_DELIVERED);
}

//  Deliver the requests parked for `agent`'s id.
static void
s_agent_deliver_waiting (core_t *self, agent_t *agent)
{
    zlistx_t *bucket = (zlistx_t *) zhashx_lookup (self->waiting, agent->id);
    if (!bucket)
        return;
    request_t *req;
    while ((req = (request_t *) zlistx_first (bucket))) {
        timers_disarm (self->timers, &req->wait);
        zlistx_delete (bucket, req->wait_item);
        req->wait_list = NULL;
        req->wait_item = NULL;
        self->waiting_count--;
        if (s_agent_in_flight (agent) >= self->cfg.max_in_flight_per_agent)
            s_request_finish (self, req, ST_RESOURCE_EXHAUSTED,
                              "agent in-flight limit reached", BY_ROUTER);
        else
            s_request_deliver (self, req, agent);
    }
    zhashx_delete (self->waiting, agent->id);
}


//  ---------------------------------------------------------------------
//  Agents

//  Replaces `agent`'s labels with the entry's, packed in one block.
static void
s_agent_set_labels (agent_t *agent, Wire__AgentEntry *entry)
{
    free (agent->labels);
    agent->labels = NULL;
    agent->n_labels = (uint32_t) entry->n_labels;
    if (!entry->n_labels)
        return;
    size_t size = 0;
    for (size_t i = 0; i < entry->n_labels; i++) {
        const char *key = entry->labels[i]->key;
        const char *value = entry->labels[i]->value;
        size += strlen (key ? key : "") + strlen (value ? value : "") + 2;
    }
    agent->labels = (char *) malloc (size);
    assert (agent->labels);
    char *at = agent->labels;
    for (size_t i = 0; i < entry->n_labels; i++) {
        const char *key = entry->labels[i]->key;
        const char *value = entry->labels[i]->value;
        at = stpcpy (at, key ? key : "") + 1;
        at = stpcpy (at, value ? value : "") + 1;
    }
}

//  A new agent record for key->id, in no table yet.
static agent_t *
s_agent_new (const id_key_t *key)
{
    const char *id = key->id;
    size_t len = strlen (id);
    agent_t *agent = (agent_t *) calloc (1, offsetof (agent_t, id) + len + 1);
    assert (agent);
    memcpy (agent->id, id, len + 1);
    agent->hash = key->hash;
    return agent;
}

//  Free an agent that is in no table any more.
static void
s_agent_destroy (agent_t **agent_p)
{
    agent_t *agent = *agent_p;
    if (agent) {
        free (agent->labels);
        zlistx_destroy (&agent->requests);
        free (agent);
        *agent_p = NULL;
    }
}

static void
s_agent_attach (agent_t *agent, edge_t *edge, uint64_t handle)
{
    agent->edge = edge;
    agent->handle = handle;
    agent->edge_prev = edge->agents_last;
    agent->edge_next = NULL;
    if (edge->agents_last)
        edge->agents_last->edge_next = agent;
    else
        edge->agents = agent;
    edge->agents_last = agent;
    slot_set_insert (&edge->by_handle, agent);
}

static void
s_agent_detach (agent_t *agent)
{
    edge_t *edge = agent->edge;
    slot_set_remove (&edge->by_handle, agent);
    if (agent->edge_prev)
        agent->edge_prev->edge_next = agent->edge_next;
    else
        edge->agents = agent->edge_next;
    if (agent->edge_next)
        agent->edge_next->edge_prev = agent->edge_prev;
    else
        edge->agents_last = agent->edge_prev;
    agent->edge = NULL;
    agent->edge_prev = NULL;
    agent->edge_next = NULL;
}

//  The agent's current stream is gone: requests still waiting for their
//  first response end UNAVAILABLE, bound or streaming ones go on without
//  an agent; the agent leaves every table.
static void
s_agent_remove (core_t *self, agent_t *agent, const char *reason)
{
    json_t json;
    s_json_begin (self, &json);
    s_json_str (&json, "agent_id", agent->id);
    s_json_uint (&json, "session", agent->session);
    s_json_str (&json, "edge", agent->edge->name);
    s_json_str (&json, "reason", reason);
    s_json_emit (self, &json, "agent.down");
    char qedge[160];
    s_log (self, TLOG_INFO, "agent down",
           "agent=%s session=%" PRIu64 " edge=%s reason=\"%s\"", agent->id,
           agent->session, s_q (agent->edge->name, qedge, sizeof qedge),
           reason);

    request_t *req;
    while (agent->requests
           && (req = (request_t *) zlistx_first (agent->requests))) {
        zlistx_delete (agent->requests, req->agent_item);
        req->agent = NULL;
        req->agent_item = NULL;
        if (req->state == REQ_DELIVERED)
            s_request_finish (self, req, ST_UNAVAILABLE, "agent disconnected",
                              BY_ROUTER);
    }
    s_agent_detach (agent);
    slot_set_remove (&self->agents, agent);
    self->agent_tree = s_tree_remove (self->agent_tree, agent);
    s_agent_destroy (&agent);
}

//  Accept one agent stream on `edge`, from SUBSCRIBE or a HELLO entry.
//  A non-zero entry session (a re-sync) is kept unless the agent is
//  known with a session at least as new.  Answers SUBSCRIBED or KICK.
static void
s_subscribe (core_t *self, edge_t *edge, Wire__AgentEntry *entry)
{
    const char *id = entry->agent_id ? entry->agent_id : "";
    uint64_t handle = entry->handle;
    char qid[300], qedge[160];
    s_q (id, qid, sizeof qid);
    s_q (edge->name, qedge, sizeof qedge);

    //  Validate
    const char *refusal = NULL;
    int refusal_status = ST_INVALID_ARGUMENT;
    if (!s_agent_id_valid (self, id))
        refusal = "invalid agent id";
    else if (entry->session > SESSION_MAX) {
        //  Keeping it could wrap next_session to 0
        refusal = "session out of range";
        self->stats.sessions_refused++;
    } else if (entry->n_labels > self->cfg.max_labels)
        refusal = "too many labels";
    else {
        for (size_t i = 0; i < entry->n_labels; i++) {
            const char *key = entry->labels[i]->key;
            const char *value = entry->labels[i]->value;
            if ((key && strlen (key) > self->cfg.max_label_len)
                || (value && strlen (value) > self->cfg.max_label_len)) {
                refusal = "label too long";
                break;
            }
        }
    }
    agent_t *same = s_agent_find_handle (edge, handle);
    if (same && !refusal && streq (same->id, id)) {
        //  The stream we know already: confirm it
        Wire__Envelope env = WIRE__ENVELOPE__INIT;
        env.command = WIRE__COMMAND__SUBSCRIBED;
        env.handle = handle;
        env.session = same->session;
        env.agent_id = same->id;
        s_send (self, edge, &env, NULL);
        return;
    }
    if (same) //  A handle reused for another id
        s_agent_remove (self, same, "stream handle reused");

    id_key_t key = s_id_key (self, id);
    agent_t *agent = s_agent_find (self, &key);
    if (!refusal && !agent && self->agents.size >= self->cfg.max_agents) {
        refusal = "agent limit reached";
        refusal_status = ST_RESOURCE_EXHAUSTED;
    }
    if (refusal) {
        s_log (self, TLOG_WARN, "agent refused",
               "agent=%s edge=%s "
               "reason=\"%s\"",
               qid, qedge, refusal);
        s_send_kick (self, edge, handle, entry->session, refusal_status,
                     refusal);
        return;
    }

    uint64_t session;
    if (entry->session) {
        if (agent && agent->session >= entry->session) {
            //  A newer session holds the id: this stream is the older one
            self->stats.agents_superseded++;
            json_t json;
            s_json_begin (self, &json);
            s_json_str (&json, "agent_id", id);
            s_json_uint (&json, "old_session", entry->session);
            s_json_uint (&json, "new_session", agent->session);
            s_json_str (&json, "old_edge", edge->name);
            s_json_str (&json, "new_edge", agent->edge->name);
            s_json_emit (self, &json, "agent.superseded");
            s_log (self, TLOG_INFO, "agent superseded",
                   "agent=%s "
                   "session=%" PRIu64 " edge=%s by_session=%" PRIu64,
                   id, entry->session, qedge, agent->session);
            s_send_kick (self, edge, handle, entry->session, ST_ABORTED,
                         "superseded");
            return;
        }
        session = entry->session;
    } else
        session = self->next_session++;
    if (session >= self->next_session)
        self->next_session = session + 1;

    if (agent) {
        //  Supersede: the older stream ends, the agent record and its
        //  requests move to the newer one
        self->stats.agents_superseded++;
        json_t json;
        s_json_begin (self, &json);
        s_json_str (&json, "agent_id", id);
        s_json_uint (&json, "old_session", agent->session);
        s_json_uint (&json, "new_session", session);
        s_json_str (&json, "old_edge", agent->edge->name);
        s_json_str (&json, "new_edge", edge->name);
        s_json_emit (self, &json, "agent.superseded");
        s_log (self, TLOG_INFO, "agent superseded",
               "agent=%s "
               "session=%" PRIu64 " by_session=%" PRIu64 " edge=%s",
               id, agent->session, session, qedge);
        s_send_kick (self, agent->edge, agent->handle, agent->session,
                     ST_ABORTED, "superseded");
        s_agent_detach (agent);
        s_agent_attach (agent, edge, handle);
        agent->session = session;
        agent->connected_at = entry->connected_at_unix_ms;
        s_agent_set_labels (agent, entry);
        request_t *req = agent->requests
                             ? (request_t *) zlistx_first (agent->requests)
                             : NULL;
        while (req) {
            s_set_agent_edge_name (req, edge->name);
            req = (request_t *) zlistx_next (agent->requests);
        }
    } else {
        agent = s_agent_new (&key);
        agent->session = session;
        agent->connected_at = entry->connected_at_unix_ms;
        s_agent_set_labels (agent, entry);
        slot_set_insert (&self->agents, agent);
        self->agent_tree = s_tree_insert (self->agent_tree, agent);
        s_agent_attach (agent, edge, handle);
        json_t json;
        s_json_begin (self, &json);
        s_json_str (&json, "agent_id", id);
        s_json_uint (&json, "session", session);
        s_json_str (&json, "edge", edge->name);
        s_json_int (&json, "connected_at_unix_ms", agent->connected_at);
        s_json_labels (&json, agent);
        s_json_emit (self, &json, "agent.up");
        s_log (self, TLOG_INFO, "agent up",
               "agent=%s session=%" PRIu64 " edge=%s", id, session, qedge);
    }
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__SUBSCRIBED;
    env.handle = handle;
    env.session = session;
    env.agent_id = agent->id;
    s_send (self, edge, &env, NULL);
    s_agent_deliver_waiting (self, agent);
}


//  ---------------------------------------------------------------------
//  Edges

//  core->edges is keyed by the bytes of each edge's routing id, so a
//  lookup needs neither a copy nor a hex string.  Every message looks its
//  sender up, so the hash is a cheap unkeyed one: routing ids are the
//  edges' own (no client picks them) and their number is capped by
//  max_edges.
static uint32_t
s_routing_hash (const byte *data, size_t size)
{
    uint32_t hash = 2166136261u; //  FNV-1a
    for (size_t i = 0; i < size; i++) {
        hash ^= data[i];
        hash *= 16777619u;
    }
    return hash;
}

typedef struct
{
    const byte *data; //  routing id bytes
    size_t size;      //  their count
    uint32_t hash;    //  s_routing_hash of them
} routing_key_t;

static size_t
s_edge_hash (const void *entry)
{
    return ((const edge_t *) entry)->id_hash;
}

static bool
s_edge_match (const void *entry, const void *key)
{
    const edge_t *edge = (const edge_t *) entry;
    const routing_key_t *want = (const routing_key_t *) key;
    return edge->id_hash == want->hash
           && zframe_size (edge->routing_id) == want->size
           && memcmp (zframe_data (edge->routing_id), want->data, want->size)
                  == 0;
}

static int
s_handle_compare (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a;
    uint64_t y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

//  The edge whose routing id is `routing_id`, or NULL.
static edge_t *
s_edge_lookup (core_t *self, zframe_t *routing_id)
{
    routing_key_t key = {zframe_data (routing_id), zframe_size (routing_id), 0};
    key.hash = s_routing_hash (key.data, key.size);
    return (edge_t *) slot_set_find (&self->edges, key.hash, s_edge_match,
                                     &key);
}

//  The edge is dead: its client calls' requests end CANCELLED, its
//  response calls' requests UNAVAILABLE, its agents go; it is buried.
//  `clean` = it said BYE (logged as news, not as a fault).
static void
s_edge_lost (core_t *self, edge_t *edge, const char *reason, bool clean)
{
    if (edge->dead)
        return;
    edge->dead = true;
    self->stats.edges_lost++;
    size_t agents = edge->by_handle.size;
    size_t requests = edge->client_reqs.size + edge->resp_reqs.size;
    char qedge[160];
    s_log (self, clean ? TLOG_INFO : TLOG_WARN,
           clean ? "edge left" : "edge lost",
           "edge=%s incarnation=%" PRIu64 " reason=\"%s\" agents=%zu",
           s_q (edge->name, qedge, sizeof qedge), edge->incarnation, reason,
           agents);

    request_t *req;
    while ((req = edge->client_reqs.first))
        s_request_finish (self, req, ST_CANCELLED, "client's edge lost",
                          BY_ROUTER);
    while ((req = edge->resp_reqs.first))
        s_request_finish (self, req, ST_UNAVAILABLE, "responder's edge lost",
                          BY_ROUTER);
    while (edge->agents)
        s_agent_remove (self, edge->agents, "edge lost");

    timers_disarm (self->cron, &edge->liveness);
    if (zhashx_lookup (self->edge_names, edge->name) == edge)
        zhashx_delete (self->edge_names, edge->name);
    slot_set_remove (&self->edges, edge);

    json_t json;
    s_json_begin (self, &json);
    s_json_str (&json, "edge", edge->name);
    s_json_uint (&json, "incarnation", edge->incarnation);
    s_json_str (&json, "reason", reason);
    s_json_uint (&json, "agents", agents);
    s_json_uint (&json, "requests", requests);
    s_json_emit (self, &json, "edge.down");
    zlistx_add_end (self->dead_edges, edge);
}

static void
s_edge_destroy (edge_t **edge_p)
{
    edge_t *edge = *edge_p;
    if (edge) {
        slot_set_clear (&edge->by_handle);
        zframe_destroy (&edge->routing_id);
        free (edge->name);
        free (edge->asked);
        free (edge->key);
        free (edge);
        *edge_p = NULL;
    }
}

//  Free what this input ended.
static void
s_reap (core_t *self)
{
    request_t *req;
    while ((req = self->dead_requests)) {
        self->dead_requests = req->next_dead;
        s_request_destroy (&req);
    }
    edge_t *edge;
    while ((edge = (edge_t *) zlistx_detach (self->dead_edges, NULL)))
        s_edge_destroy (&edge);
}

//  Note the time; the first input starts the periodic work.
static void
s_clock (core_t *self, int64_t now_ms)
{
    self->now = now_ms;
    if (!self->started) {
        self->started = true;
        self->stats_last_ms = now_ms;
        if (self->cfg.stats_interval_ms)
            timers_arm (self->cron, &self->stats_timer,
                        now_ms + self->cfg.stats_interval_ms);
    }
}


//  The name an edge (`edge`, NULL when it is new) saying HELLO with
//  edge_id `asked` is known by.  Another routing id holding that name is
//  the same edge reconnected (same incarnation) or an older incarnation
//  that died (silent for over two heartbeats): it is lost and the name
//  taken over.  A holder still talking is another live edge with the same
//  name, a configuration error: the newcomer is accepted as `asked#N`
//  (the smallest free N from 2) and an ERROR logged, so that neither edge
//  replaces the other back and forth.  Returns a heap string (caller
//  owns).
static char *
s_edge_claim_name (core_t *self,
                   edge_t *edge,
                   const char *asked,
                   uint64_t incarnation)
{
    edge_t *holder = (edge_t *) zhashx_lookup (self->edge_names, asked);
    char *name = NULL;
    if (!holder || holder == edge) {
        name = strdup (asked);
        assert (name);
        return name;
    }
    int64_t silent = self->now - holder->last_heard;
    if (holder->incarnation == incarnation
        || silent > 2 * (int64_t) self->cfg.heartbeat_ms) {
        s_edge_lost (self, holder,
                     holder->incarnation == incarnation
                         ? "reconnected with a new routing id"
                         : "replaced by a new incarnation",
                     false);
        name = strdup (asked);
        assert (name);
        return name;
    }
    for (unsigned int n = 2;; n++) {
        free (name);
        int rc = asprintf (&name, "%s#%u", asked, n);
        assert (rc > 0);
        if (!zhashx_lookup (self->edge_names, name))
            break;
    }
    self->stats.edge_name_conflicts++;
    char qasked[160], qname[170];
    s_log (self, TLOG_ERROR, "edge name already used by a live edge",
           "edge=%s incarnation=%" PRIx64 " routing_id=%s "
           "other_incarnation=%" PRIx64 " other_routing_id=%s "
           "other_silent_ms=%" PRId64 " registered_as=%s",
           s_q (asked, qasked, sizeof qasked), incarnation,
           edge ? edge->key : "new", holder->incarnation, holder->key, silent,
           s_q (name, qname, sizeof qname));
    return name;
}


//  ---------------------------------------------------------------------
//  Handlers (wire_commands.c dispatches to them)

void
core_on_hello (core_t *self, core_input_t *in)
{
    Wire__Envelope *env = in->env;
    char *key = zframe_strhex (in->routing_id);
    const char *asked = env->edge_id && *env->edge_id ? env->edge_id : key;
    edge_t *edge = in->edge;

    //  The name it is known by; NULL: a known edge keeps its own
    char *claimed = NULL;
    if (!edge || !streq (edge->asked, asked))
        claimed = s_edge_claim_name (self, edge, asked, env->incarnation);
    const char *name = claimed ? claimed : edge->name;

    if (!edge) {
        if (self->edges.size >= self->cfg.max_edges) {
            char qedge[160];
            s_log (self, TLOG_WARN, "edge refused",
                   "edge=%s "
                   "reason=\"edge limit reached\"",
                   s_q (name, qedge, sizeof qedge));
            free (claimed);
            free (key);
            return;
        }
        edge = (edge_t *) calloc (1, sizeof (edge_t));
        assert (edge);
        edge->key = strdup (key);
        edge->routing_id = zframe_dup (in->routing_id);
        edge->name = claimed;
        claimed = NULL;
        name = edge->name;
        edge->asked = strdup (asked);
        assert (edge->key && edge->asked);
        edge->incarnation = env->incarnation;
        edge->up_ms = in->now_ms;
        edge->last_heard = in->now_ms;
        edge->serial = ++self->next_edge_serial;
        slot_set_init (&edge->by_handle, s_agent_handle_hash, 8, true);
        timers_node_init (&edge->liveness, TIMER_EDGE, edge);
        edge->id_hash = s_routing_hash (zframe_data (edge->routing_id),
                                        zframe_size (edge->routing_id));
        slot_set_insert (&self->edges, edge);
        zhashx_update (self->edge_names, name, edge);
        if (self->cfg.edge_liveness_ms)
            timers_arm (self->cron, &edge->liveness,
                        in->now_ms + self->cfg.edge_liveness_ms);
        json_t json;
        s_json_begin (self, &json);
        s_json_str (&json, "edge", name);
        s_json_uint (&json, "incarnation", env->incarnation);
        s_json_uint (&json, "agents", env->n_agents);
        s_json_str (&json, "router_incarnation", self->incarnation_text);
        s_json_emit (self, &json, "edge.up");
        char qedge[160];
        s_log (self, TLOG_INFO, "edge up",
               "edge=%s incarnation=%" PRIu64 " agents=%zu",
               s_q (name, qedge, sizeof qedge), env->incarnation,
               env->n_agents);
        in->edge = edge;
    } else {
        //  The same edge again: its agent set is replaced by the list
        if (claimed) {
            if (zhashx_lookup (self->edge_names, edge->name) == edge)
                zhashx_delete (self->edge_names, edge->name);
            free (edge->name);
            edge->name = claimed;
            claimed = NULL;
            free (edge->asked);
            edge->asked = strdup (asked);
            assert (edge->asked);
            zhashx_update (self->edge_names, edge->name, edge);
        }
        edge->incarnation = env->incarnation;
        uint64_t *listed =
            (uint64_t *) malloc ((env->n_agents + 1) * sizeof (uint64_t));
        assert (listed);
        for (size_t i = 0; i < env->n_agents; i++)
            listed[i] = env->agents[i]->handle;
        qsort (listed, env->n_agents, sizeof (uint64_t), s_handle_compare);
        agent_t *agent = edge->agents;
        while (agent) {
            //  Removing an agent unlinks it alone from edge->agents
            agent_t *next = agent->edge_next;
            if (!bsearch (&agent->handle, listed, env->n_agents,
                          sizeof (uint64_t), s_handle_compare))
                s_agent_remove (self, agent, "not in the edge's HELLO");
            agent = next;
        }
        free (listed);
    }
    free (claimed);
    free (key);

    Wire__Envelope welcome = WIRE__ENVELOPE__INIT;
    welcome.command = WIRE__COMMAND__WELCOME;
    welcome.incarnation = self->incarnation;
    s_send (self, edge, &welcome, NULL);

    //  No session handed out from here on may be at or below a reported one
    //  (sessions above SESSION_MAX are refused by s_subscribe)
    for (size_t i = 0; i < env->n_agents; i++)
        if (env->agents[i]->session >= self->next_session
            && env->agents[i]->session <= SESSION_MAX)
            self->next_session = env->agents[i]->session + 1;
    for (size_t i = 0; i < env->n_agents; i++)
        s_subscribe (self, edge, env->agents[i]);
}

//  BYE: the edge is shutting down cleanly.  Forget it now, as if it had
//  died, rather than a liveness window later.  From an unknown edge (it
//  was already forgotten) it is ignored: no PONG, which would ask it to
//  say HELLO again.
void
core_on_bye (core_t *self, core_input_t *in)
{
    if (in->edge)
        s_edge_lost (self, in->edge, "said goodbye", true);
}

void
core_on_ping (core_t *self, core_input_t *in)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__PONG;
    env.incarnation = self->incarnation;
    env.known = in->edge != NULL;
    if (!in->edge)
        self->stats.unknown_edge++;
    s_send_to (self, in->routing_id, &env, NULL);
}

void
core_on_subscribe (core_t *self, core_input_t *in)
{
    if (!in->env->agent) {
        self->stats.unexpected++;
        s_log (self, TLOG_WARN, "SUBSCRIBE without an agent", "edge=%s",
               in->edge->key);
        return;
    }
    //  A non-zero session is a stream the edge held under an earlier
    //  router (or before an earlier HELLO): kept like a HELLO entry's, so
    //  an edge may re-sync with a short HELLO and then SUBSCRIBEs
    s_subscribe (self, in->edge, in->env->agent);
}

void
core_on_unsubscribe (core_t *self, core_input_t *in)
{
    agent_t *agent = s_agent_find_handle (in->edge, in->env->handle);
    if (agent && (in->env->session == 0 || in->env->session == agent->session))
        s_agent_remove (self, agent, "unsubscribed");
    else if (self->log_level <= TLOG_DEBUG)
        s_log (self, TLOG_DEBUG, "stale UNSUBSCRIBE ignored",
               "handle=%" PRIu64 " session=%" PRIu64, in->env->handle,
               in->env->session);
}

void
core_on_publish (core_t *self, core_input_t *in)
{
    Wire__Envelope *env = in->env;
    const char *rid = env->request_id ? env->request_id : "";
    const char *aid = env->agent_id ? env->agent_id : "";
    uint32_t wait_ms = env->wait_ms < self->cfg.max_wait_ms
                           ? env->wait_ms
                           : self->cfg.max_wait_ms;
    agent_t *agent = NULL;
    int status = ST_OK;
    const char *why = NULL;
    id_key_t rkey = s_id_key (self, rid);
    if (!s_request_id_valid (self, rid))
        status = ST_INVALID_ARGUMENT, why = "invalid request id";
    else if (!s_agent_id_valid (self, aid))
        status = ST_INVALID_ARGUMENT, why = "invalid agent id";
    else if (zframe_size (in->payload)
             > (size_t) self->cfg.max_payload_bytes + CORE_PAYLOAD_MARGIN)
        status = ST_RESOURCE_EXHAUSTED, why = "request too large";
    else if (s_request_find (self, &rkey))
        status = ST_ALREADY_EXISTS, why = "request id already in flight";
    else if (self->requests.size >= self->cfg.max_requests)
        status = ST_RESOURCE_EXHAUSTED, why = "router request table full";
    else {
        id_key_t akey = s_id_key (self, aid);
        agent = s_agent_find (self, &akey);
        if (agent
            && s_agent_in_flight (agent) >= self->cfg.max_in_flight_per_agent)
            status = ST_RESOURCE_EXHAUSTED,
            why = "agent in-flight limit reached";
        else if (!agent && wait_ms == 0)
            status = ST_NOT_FOUND, why = "agent not connected";
    }
    self->stats.requests_started++;
    if (status != ST_OK) {
        //  Refused before it existed: only the client hears of it
        s_send_finish (self, in->edge, env->handle, rid, status, why);
        request_t refused = {.id = (char *) rid,
                             .agent_id = (char *) aid,
                             .client_edge = in->edge,
                             .start_ms = self->now};
        s_request_account_end (self, &refused, status, why, true);
        return;
    }

    size_t rid_size = strlen (rid) + 1;
    size_t aid_size = strlen (aid) + 1;
    request_t *req =
        (request_t *) calloc (1, sizeof (request_t) + rid_size + aid_size);
    assert (req);
    req->id = req->text;
    memcpy (req->id, rid, rid_size);
    req->agent_id = req->text + rid_size;
    memcpy (req->agent_id, aid, aid_size);
    req->client_edge = in->edge;
    req->client_handle = env->handle;
    s_req_list_append (&in->edge->client_reqs, req,
                       offsetof (request_t, client_link));
    req->payload = in->payload;
    in->payload = NULL;
    req->credit = env->credit ? env->credit : 1;
    if (self->cfg.max_credit && req->credit > self->cfg.max_credit)
        req->credit = self->cfg.max_credit;
    req->start_ms = in->now_ms;
    timers_node_init (&req->activity, TIMER_ACTIVITY, req);
    timers_node_init (&req->deadline, TIMER_DEADLINE, req);
    timers_node_init (&req->wait, TIMER_WAIT, req);
    req->hash = rkey.hash;
    slot_set_insert (&self->requests, req);

    uint32_t timeout = env->timeout_ms;
    if (self->cfg.max_timeout_ms
        && (timeout == 0 || timeout > self->cfg.max_timeout_ms))
        timeout = self->cfg.max_timeout_ms;
    if (timeout)
        timers_arm (self->timers, &req->deadline, in->now_ms + timeout);

    req->bytes_to_agent = zframe_size (req->payload);
    s_request_event_start (self, req);
    if (agent)
        s_request_deliver (self, req, agent);
    else {
        zlistx_t *bucket = (zlistx_t *) zhashx_lookup (self->waiting, aid);
        if (!bucket) {
            bucket = zlistx_new ();
            zhashx_insert (self->waiting, aid, bucket);
        }
        req->wait_list = bucket;
        req->wait_item = zlistx_add_end (bucket, req);
        self->waiting_count++;
        s_req_set_state (self, req, REQ_WAITING);
        timers_arm (self->timers, &req->wait, in->now_ms + wait_ms);
    }
}

//  The request named by the input, or NULL.
static request_t *
s_request_of (core_t *self, core_input_t *in)
{
    id_key_t key =
        s_id_key (self, in->env->request_id ? in->env->request_id : "");
    return s_request_find (self, &key);
}

static bool
s_is_client (request_t *req, core_input_t *in)
{
    return req->client_edge == in->edge
           && req->client_handle == in->env->handle;
}

static bool
s_is_responder (request_t *req, core_input_t *in)
{
    return req->resp_edge == in->edge && req->resp_handle == in->env->handle;
}

//  A well-formed message that names a request it has no business with.
static void
s_unexpected (core_t *self, core_input_t *in, request_t *req)
{
    self->stats.unexpected++;
    if (self->log_level <= TLOG_DEBUG) {
        char qid[160];
        s_log (self, TLOG_DEBUG, "unexpected message dropped",
               "command=%s request=%s state=%s handle=%" PRIu64,
               wire_command_name (in->env->command),
               s_q (in->env->request_id, qid, sizeof qid),
               req ? s_req_state_name[req->state] : "none", in->env->handle);
    }
}

void
core_on_cancel (core_t *self, core_input_t *in)
{
    request_t *req = s_request_of (self, in);
    if (req && s_is_client (req, in))
        s_request_finish (self, req, ST_CANCELLED, "cancelled by the client",
                          BY_CLIENT);
    else if (req)
        s_unexpected (self, in, req);
    //  Else it ended already: the client's CANCEL crossed our FINISH
}

//  True when `agent_id` is one of the comma-separated names of
//  `identity` (a BIND's agent_id: the responder's authenticated ids).
static bool
s_identity_includes (const char *identity, const char *agent_id)
{
    size_t len = strlen (agent_id);
    const char *start = identity;
    while (true) {
        const char *comma = strchr (start, ',');
        size_t size = comma ? (size_t) (comma - start) : strlen (start);
        if (size == len && memcmp (start, agent_id, len) == 0)
            return true;
        if (!comma)
            return false;
        start = comma + 1;
    }
}

void
core_on_bind (core_t *self, core_input_t *in)
{
    request_t *req = s_request_of (self, in);
    const char *rid = in->env->request_id ? in->env->request_id : "";
    if (!req) {
        s_send_finish (self, in->edge, in->env->handle, rid, ST_NOT_FOUND,
                       "no such request");
        return;
    }
    //  An authenticated responder answers only its own agent's requests.
    const char *who = in->env->agent_id ? in->env->agent_id : "";
    if (*who && !s_identity_includes (who, req->agent_id)) {
        s_send_finish (self, in->edge, in->env->handle, rid,
                       ST_PERMISSION_DENIED,
                       "the request is addressed to another agent");
        return;
    }
    if (req->resp_edge) {
        s_send_finish (self, in->edge, in->env->handle, rid, ST_ALREADY_EXISTS,
                       "request already has a responder");
        return;
    }
    if (req->state != REQ_DELIVERED) {
        s_send_finish (self, in->edge, in->env->handle, rid,
                       ST_FAILED_PRECONDITION, "request not delivered");
        return;
    }
    req->resp_edge = in->edge;
    req->resp_handle = in->env->handle;
    s_req_list_append (&in->edge->resp_reqs, req,
                       offsetof (request_t, resp_link));
    zframe_destroy (&req->payload); //  never delivered again
    s_req_set_state (self, req, REQ_BOUND);
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__BOUND;
    env.handle = req->resp_handle;
    env.request_id = req->id;
    env.credit = req->credit;
    s_send (self, req->resp_edge, &env, NULL);
}

void
core_on_response (core_t *self, core_input_t *in)
{
    request_t *req = s_request_of (self, in);
    if (!req) {
        const char *rid = in->env->request_id ? in->env->request_id : "";
        s_send_finish (self, in->edge, in->env->handle, rid, ST_NOT_FOUND,
                       "no such request");
        return;
    }
    if (!s_is_responder (req, in)) {
        s_unexpected (self, in, req);
        return;
    }
    if (req->credit == 0) {
        s_request_finish (self, req, ST_RESOURCE_EXHAUSTED,
                          "response beyond the client's credit", BY_ROUTER);
        return;
    }
    size_t size = zframe_size (in->payload);
    if (size > self->cfg.max_payload_bytes) {
        s_request_finish (self, req, ST_RESOURCE_EXHAUSTED,
                          "response message too large", BY_ROUTER);
        return;
    }
    req->credit--;
    req->responses++;
    req->bytes_to_client += size;
    self->stats.bytes_to_clients += size;
    self->stats.responses_routed++;
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__REPLY;
    env.handle = req->client_handle;
    env.request_id = req->id;
    s_send (self, req->client_edge, &env, &in->payload);
    if (req->state != REQ_STREAMING)
        s_req_set_state (self, req, REQ_STREAMING);
    //  Idle time counts only while the responder may send
    if (req->credit && self->cfg.idle_ms)
        timers_arm (self->timers, &req->activity,
                    in->now_ms + self->cfg.idle_ms);
    else
        timers_disarm (self->timers, &req->activity);
}

void
core_on_end (core_t *self, core_input_t *in)
{
    request_t *req = s_request_of (self, in);
    if (!req) {
        s_unexpected (self, in, NULL);
        return;
    }
    end_cause_t cause;
    if (s_is_responder (req, in))
        cause = BY_RESPONDER;
    else if (req->state == REQ_DELIVERED && req->stream_edge == in->edge->serial
             && req->stream_handle == in->env->handle) {
        //  The stream it was sent down did not take it: its queue was full
        //  (the current stream), or it was superseded or ended before
        //  writing it.  A newer stream gets it again, since the device
        //  may still answer.
        agent_t *agent = req->agent;
        if (agent && agent->edge && req->payload
            && !(agent->edge == in->edge && agent->handle == in->env->handle)) {
            if (self->log_level <= TLOG_DEBUG) {
                char qid[160];
                s_log (self, TLOG_DEBUG, "request delivered again",
                       "request=%s agent=%s session=%" PRIu64,
                       s_q (req->id, qid, sizeof qid), agent->id,
                       agent->session);
            }
            s_request_send (self, req, agent);
            return;
        }
        cause = BY_AGENT_STREAM;
    } else {
        s_unexpected (self, in, req);
        return;
    }
    s_request_finish (self, req, in->env->status, in->env->message, cause);
}

void
core_on_credit (core_t *self, core_input_t *in)
{
    request_t *req = s_request_of (self, in);
    if (!req || !s_is_client (req, in)) {
        if (req)
            s_unexpected (self, in, req);
        return;
    }
    uint32_t added = in->env->credit;
    uint32_t room = self->cfg.max_credit ? self->cfg.max_credit - req->credit
                                         : UINT32_MAX - req->credit;
    if (self->cfg.max_credit && req->credit > self->cfg.max_credit)
        room = 0;
    if (added > room)
        added = room;
    if (added == 0)
        return;
    bool was_empty = req->credit == 0;
    req->credit += added;
    if (req->resp_edge) {
        Wire__Envelope env = WIRE__ENVELOPE__INIT;
        env.command = WIRE__COMMAND__GRANT;
        env.handle = req->resp_handle;
        env.request_id = req->id;
        env.credit = added;
        s_send (self, req->resp_edge, &env, NULL);
    }
    if (was_empty && req->state == REQ_STREAMING && self->cfg.idle_ms)
        timers_arm (self->timers, &req->activity,
                    in->now_ms + self->cfg.idle_ms);
}

//  The next agent of a ListAgents walk, or NULL once past the agents
//  whose id starts with the prefix (they are consecutive in id order).
static agent_t *
s_list_next (tree_walk_t *walk, const char *prefix, size_t prefix_len)
{
    agent_t *agent = s_tree_walk_next (walk);
    if (agent && strncmp (agent->id, prefix, prefix_len) != 0)
        return NULL;
    return agent;
}

//  One page of the agents whose id starts with `prefix`, in id order,
//  from the first id above the page token (the last id of the previous
//  page).  Walking the id tree from the token costs O(log N) plus the
//  agents sent, so listing a fleet page by page costs about one pass.
void
core_on_list (core_t *self, core_input_t *in)
{
    const char *prefix = in->env->prefix ? in->env->prefix : "";
    const char *token = in->env->page_token ? in->env->page_token : "";
    size_t prefix_len = strlen (prefix);
    size_t limit = in->env->limit;
    if (limit == 0 || limit > self->cfg.max_list)
        limit = self->cfg.max_list;
    if (*token && !s_agent_id_valid (self, token)) {
        s_send_finish (self, in->edge, in->env->handle, "", ST_INVALID_ARGUMENT,
                       "invalid page token");
        return;
    }

    tree_walk_t walk;
    if (strcmp (token, prefix) >= 0)
        s_tree_walk_from (&walk, self->agent_tree, token, true);
    else
        s_tree_walk_from (&walk, self->agent_tree, prefix, false);

    //  Each AgentInfo is packed as it is chosen (field 1: a tag byte, a
    //  length, the message), and next_page_token (field 2) goes last.
    //  The answer stays within max_payload_bytes, counting the token
    //  whenever more agents follow the one being added.
    json_buf_t out = {NULL, 0, 0, false};
    Tether__V1__AgentInfo__LabelsEntry *labels = NULL;
    Tether__V1__AgentInfo__LabelsEntry **label_ptrs = NULL;
    size_t labels_cap = 0;
    size_t sent = 0;
    agent_t *last = NULL;
    agent_t *agent = s_list_next (&walk, prefix, prefix_len);
    while (agent && sent < limit) {
        agent_t *after = s_list_next (&walk, prefix, prefix_len);
        if (agent->n_labels > labels_cap) {
            labels_cap = agent->n_labels;
            free (labels);
            free (label_ptrs);
            labels = (Tether__V1__AgentInfo__LabelsEntry *) calloc (
                labels_cap, sizeof (Tether__V1__AgentInfo__LabelsEntry));
            label_ptrs = (Tether__V1__AgentInfo__LabelsEntry **) calloc (
                labels_cap, sizeof (Tether__V1__AgentInfo__LabelsEntry *));
            assert (labels && label_ptrs);
        }
        Tether__V1__AgentInfo info = TETHER__V1__AGENT_INFO__INIT;
        info.agent_id = agent->id;
        info.edge = agent->edge->name;
        info.connected_at_unix_ms = agent->connected_at;
        info.in_flight = (uint32_t) s_agent_in_flight (agent);
        info.session = agent->session;
        info.n_labels = agent->n_labels;
        info.labels = label_ptrs;
        const char *label = agent->labels;
        for (size_t j = 0; j < agent->n_labels; j++) {
            tether__v1__agent_info__labels_entry__init (&labels[j]);
            labels[j].key = (char *) label;
            label += strlen (label) + 1;
            labels[j].value = (char *) label;
            label += strlen (label) + 1;
            label_ptrs[j] = &labels[j];
        }
        size_t one = tether__v1__agent_info__get_packed_size (&info);
        size_t framed = 1 + wire_varint_size (one) + one;
        size_t token_size = 0;
        if (after) {
            size_t id_len = strlen (agent->id);
            token_size = 1 + wire_varint_size (id_len) + id_len;
        }
        if (out.size + framed + token_size > self->cfg.max_payload_bytes)
            break;
        s_jb_reserve (&out, framed);
        uint8_t *at = (uint8_t *) out.data + out.size;
        *at++ = 0x0A; //  field 1, length-delimited
        at = wire_varint_write (at, one);
        at += tether__v1__agent_info__pack (&info, at);
        out.size = (size_t) (at - (uint8_t *) out.data);
        sent++;
        last = agent;
        agent = after;
    }
    free (label_ptrs);
    free (labels);

    //  `agent` is now the first matching agent not sent, if any
    if (agent && !last) {
        char qid[300];
        s_log (self, TLOG_WARN, "agent too large to list",
               "agent=%s max_message_size=%" PRIu32,
               s_q (agent->id, qid, sizeof qid), self->cfg.max_payload_bytes);
        s_send_finish (self, in->edge, in->env->handle, "",
                       ST_RESOURCE_EXHAUSTED,
                       "an agent's entry exceeds max_message_size");
        free (out.data);
        return;
    }
    if (agent) {
        Tether__V1__ListAgentsResponse tail =
            TETHER__V1__LIST_AGENTS_RESPONSE__INIT;
        tail.next_page_token = last->id;
        size_t size = tether__v1__list_agents_response__get_packed_size (&tail);
        s_jb_reserve (&out, size);
        out.size += tether__v1__list_agents_response__pack (
            &tail, (uint8_t *) out.data + out.size);
    }
    assert (out.size <= self->cfg.max_payload_bytes);
    zframe_t *payload = zframe_new (out.data, out.size);
    assert (payload);
    free (out.data);

    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__AGENTS;
    env.handle = in->env->handle;
    s_send_to (self, in->routing_id, &env, &payload);
}

//  A command that needs a known edge came from an unknown routing id: tell
//  it to say HELLO, and end calls that would otherwise hang.
static void
s_on_unknown_edge (core_t *self, core_input_t *in)
{
    self->stats.unknown_edge++;
    Wire__Envelope pong = WIRE__ENVELOPE__INIT;
    pong.command = WIRE__COMMAND__PONG;
    pong.incarnation = self->incarnation;
    pong.known = false;
    s_send_to (self, in->routing_id, &pong, NULL);
    int command = in->env->command;
    if (command == WIRE__COMMAND__PUBLISH || command == WIRE__COMMAND__BIND
        || command == WIRE__COMMAND__RESPONSE
        || command == WIRE__COMMAND__LIST) {
        Wire__Envelope env = WIRE__ENVELOPE__INIT;
        env.command = WIRE__COMMAND__FINISH;
        env.handle = in->env->handle;
        env.request_id = in->env->request_id;
        env.status = ST_UNAVAILABLE;
        env.message = "edge not known to the router";
        s_send_to (self, in->routing_id, &env, NULL);
    }
    if (self->log_level <= TLOG_DEBUG)
        s_log (self, TLOG_DEBUG, "message from an unknown edge", "command=%s",
               wire_command_name (command));
}

static void
s_malformed (core_t *self,
             zframe_t *routing_id,
             size_t frames,
             const char *reason)
{
    self->stats.malformed++;
    uint64_t count = self->stats.malformed;
    if (count <= LOG_MALFORMED_FIRST || count % LOG_MALFORMED_EVERY == 0) {
        char *rid = routing_id ? zframe_strhex (routing_id) : NULL;
        if (rid && strlen (rid) > 32)
            rid[32] = 0;
        s_log (self, TLOG_WARN, "malformed message dropped",
               "reason=\"%s\" routing_id=%s frames=%zu count=%" PRIu64, reason,
               rid ? rid : "none", frames, count);
        free (rid);
    }
}


//  ---------------------------------------------------------------------
//  Timers and periodic work

static void
s_emit_stats (core_t *self)
{
    json_t json;
    s_json_begin (self, &json);
    s_json_str (&json, "router_incarnation", self->incarnation_text);
    s_json_uint (&json, "agents", self->agents.size);
    s_json_uint (&json, "requests", self->requests.size);
    s_json_uint (&json, "waiting", self->waiting_count);
    s_json_uint (&json, "edges", self->edges.size);
    s_json_uint (&json, "requests_started", self->stats.requests_started);
    s_json_uint (&json, "requests_finished", self->stats.requests_finished);
    //  Over the interval since the previous stats event (or the first
    //  input, for the first one); the counter never goes back.
    s_json_rate (&json, "requests_per_s",
                 self->stats.requests_finished - self->stats_last_finished,
                 self->now - self->stats_last_ms);
    self->stats_last_finished = self->stats.requests_finished;
    self->stats_last_ms = self->now;
    fputs (",\"requests_by_status\":{", json.file);
    for (int i = 0; i <= ST_MAX; i++)
        fprintf (json.file, "%s\"%s\":%" PRIu64, i ? "," : "", tstatus_name (i),
                 self->stats.requests_by_status[i]);
    fputc ('}', json.file);
    fputs (",\"agents_per_edge\":{", json.file);
    bool first = true;
    for (size_t i = 0; i < self->edges.capacity; i++) {
        edge_t *edge = (edge_t *) self->edges.slots[i];
        if (!edge)
            continue;
        if (!first)
            fputc (',', json.file);
        first = false;
        s_json_escape (json.file, edge->name);
        fprintf (json.file, ":%zu", edge->by_handle.size);
    }
    fputc ('}', json.file);
    s_json_uint (&json, "messages_in", self->stats.messages_in);
    s_json_uint (&json, "malformed", self->stats.malformed);
    s_json_uint (&json, "unexpected", self->stats.unexpected);
    s_json_uint (&json, "unknown_edge", self->stats.unknown_edge);
    s_json_uint (&json, "responses_routed", self->stats.responses_routed);
    s_json_uint (&json, "bytes_to_agents", self->stats.bytes_to_agents);
    s_json_uint (&json, "bytes_to_clients", self->stats.bytes_to_clients);
    s_json_uint (&json, "agents_superseded", self->stats.agents_superseded);
    s_json_uint (&json, "edges_lost", self->stats.edges_lost);
    s_json_uint (&json, "timers", timers_size (self->timers));
    s_json_emit (self, &json, "stats");
}

static void
s_fire (core_t *self, timers_node_t *node)
{
    switch (node->kind) {
        case TIMER_ACTIVITY: {
            request_t *req = (request_t *) node->owner;
            s_request_finish (self, req, ST_DEADLINE_EXCEEDED,
                              req->state == REQ_STREAMING
                                  ? "no response message in time"
                                  : "no first response in time",
                              BY_ROUTER);
            break;
        }
        case TIMER_DEADLINE:
            s_request_finish (self, (request_t *) node->owner,
                              ST_DEADLINE_EXCEEDED, "deadline exceeded",
                              BY_ROUTER);
            break;
        case TIMER_WAIT:
            s_request_finish (self, (request_t *) node->owner, ST_NOT_FOUND,
                              "agent not connected", BY_ROUTER);
            break;
        case TIMER_EDGE: {
            edge_t *edge = (edge_t *) node->owner;
            int64_t due = edge->last_heard + self->cfg.edge_liveness_ms;
            if (due <= self->now)
                s_edge_lost (self, edge, "silent", false);
            else
                timers_arm (self->cron, &edge->liveness, due);
            break;
        }
        case TIMER_STATS: {
            s_emit_stats (self);
            int64_t due = node->due_ms + self->cfg.stats_interval_ms;
            if (due <= self->now)
                due = self->now + self->cfg.stats_interval_ms;
            timers_arm (self->cron, &self->stats_timer, due);
            break;
        }
        default:
            assert (false);
    }
}


//  ---------------------------------------------------------------------
//  Public API

void
core_config_defaults (core_config_t *cfg)
{
    assert (cfg);
    memset (cfg, 0, sizeof *cfg);
    cfg->first_response_ms = 10000;           //  10 s to the first response
    cfg->idle_ms = 30000;                     //  30 s between response messages
    cfg->max_wait_ms = 60000;                 //  wait for an agent at most 60 s
    cfg->max_timeout_ms = 0;                  //  clients' deadlines not capped
    cfg->edge_liveness_ms = 3000;             //  an edge silent 3 s is dead
    cfg->heartbeat_ms = 1000;                 //  edges PING every second
    cfg->stats_interval_ms = 1000;            //  a `stats` event every second
    cfg->max_agent_id_len = 128;              //  bytes of an agent id
    cfg->max_request_id_len = 128;            //  bytes of a request id
    cfg->max_labels = 32;                     //  labels per agent
    cfg->max_label_len = 256;                 //  bytes of a label key or value
    cfg->max_agents = 1000000;                //  agents connected at once
    cfg->max_requests = 1000000;              //  requests in flight at once
    cfg->max_in_flight_per_agent = 1024;      //  requests per agent
    cfg->max_edges = 1024;                    //  edges known at once
    cfg->max_payload_bytes = 4 * 1024 * 1024; //  one public message
    cfg->max_credit = 1024;                   //  response window per request
    cfg->max_list = 100000; //  agents in one ListAgents answer
}

core_t *
core_new (const core_config_t *cfg, uint64_t incarnation, uint64_t session_base)
{
    if (!cfg)
        return NULL;
    core_t *self = (core_t *) calloc (1, sizeof (core_t));
    assert (self);
    self->cfg = *cfg;
    self->incarnation = incarnation;
    slot_set_init (&self->agents, s_agent_id_hash, 8, false);
    slot_set_init (&self->requests, s_request_hash, 64, false);
    //  A string in events: JSON readers keep integers exactly only up
    //  to 2^53, and an incarnation is 64 random bits.
    snprintf (self->incarnation_text, sizeof self->incarnation_text,
              "%016" PRIx64, incarnation);
    self->next_session = session_base ? session_base : 1;
    self->log_level = TLOG_INFO;
    self->events_wanted = true;
    cookie_io_functions_t json_io = {.write = s_jb_cookie_write};
    self->json_file = fopencookie (&self->json, "w", json_io);
    assert (self->json_file);
    setvbuf (self->json_file, NULL, _IONBF, 0);
    self->waiting = zhashx_new ();
    zhashx_set_destructor (self->waiting,
                           (zhashx_destructor_fn *) zlistx_destroy);
    slot_set_init (&self->edges, s_edge_hash, 8, false);
    self->edge_names = zhashx_new ();
    self->timers = timers_new ();
    self->cron = timers_new ();
    timers_node_init (&self->stats_timer, TIMER_STATS, self);
    self->parser = wire_envelope_parser_new ();

    self->dead_edges = zlistx_new ();
    return self;
}

int
core_set_hash_key (core_t *self, const byte *key)
{
    assert (self);
    assert (key);
    if (self->agents.size || self->requests.size)
        return -1;
    memcpy (self->hash_key, key, sizeof self->hash_key);
    return 0;
}

void
core_destroy (core_t **self_p)
{
    assert (self_p);
    if (!*self_p)
        return;
    core_t *self = *self_p;
    s_reap (self);
    //  Nothing is told to anyone: the tables just go.  The heaps first,
    //  since destroying them touches the nodes their owners hold.
    timers_destroy (&self->cron);
    timers_destroy (&self->timers);
    for (size_t i = 0; i < self->requests.capacity; i++) {
        request_t *req = (request_t *) self->requests.slots[i];
        s_request_destroy (&req);
    }
    slot_set_clear (&self->requests);
    for (size_t i = 0; i < self->agents.capacity; i++) {
        agent_t *agent = (agent_t *) self->agents.slots[i];
        s_agent_destroy (&agent);
    }
    slot_set_clear (&self->agents);
    for (size_t i = 0; i < self->edges.capacity; i++) {
        edge_t *edge = (edge_t *) self->edges.slots[i];
        s_edge_destroy (&edge);
    }
    slot_set_clear (&self->edges);
    for (size_t i = self->outbox_head; i < self->outbox_tail; i++) {
        zframe_destroy (&self->outbox[i].payload);
        zmsg_destroy (&self->outbox[i].msg);
    }
    free (self->outbox);
    free (self->out_bytes);
    wire_envelope_parser_destroy (&self->parser);
    zlistx_destroy (&self->dead_edges);
    zhashx_destroy (&self->edge_names);
    zhashx_destroy (&self->waiting);
    fclose (self->json_file);
    free (self->json.data);
    free (self);
    *self_p = NULL;
}

void
core_set_log_level (core_t *self, int level)
{
    assert (self);
    self->log_level = level;
}

void
core_set_events (core_t *self, bool wanted)
{
    assert (self);
    self->events_wanted = wanted;
}

void
core_handle (core_t *self, zframe_t *routing_id, zmsg_t **msg_p, int64_t now_ms)
{
    assert (self);
    assert (msg_p);
    zmsg_t *msg = *msg_p;
    *msg_p = NULL;
    size_t frames = msg ? zmsg_size (msg) : 0;
    zframe_t *head = frames ? zmsg_pop (msg) : NULL;
    zframe_t *payload = frames > 1 ? zmsg_pop (msg) : NULL;
    core_handle_frames (self, routing_id, head ? zframe_data (head) : NULL,
                        head ? zframe_size (head) : 0, frames, &payload,
                        now_ms);
    zframe_destroy (&head);
    zmsg_destroy (&msg);
}

void
core_handle_frames (core_t *self,
                    zframe_t *routing_id,
                    const void *envelope,
                    size_t envelope_size,
                    size_t frames,
                    zframe_t **payload_p,
                    int64_t now_ms)
{
    assert (self);
    zframe_t *payload = NULL;
    if (payload_p) {
        payload = *payload_p;
        *payload_p = NULL;
    }
    s_clock (self, now_ms);
    self->stats.messages_in++;

    core_input_t in = {.routing_id = routing_id, .now_ms = now_ms};
    const wire_command_t *command = NULL;
    if (!routing_id || zframe_size (routing_id) == 0) {
        s_malformed (self, routing_id, frames, "no routing id");
        goto cleanup;
    }
    if (frames == 0) {
        s_malformed (self, routing_id, frames, "empty message");
        goto cleanup;
    }
    //  The envelope is the parser's, valid until the next input
    if (wire_envelope_parser_decode (self->parser, envelope, envelope_size,
                                     &in.env)
        != 0) {
        s_malformed (self, routing_id, frames, "bad envelope or version");
        goto cleanup;
    }
    command = wire_commands_lookup (in.env->command);
    if (!command) {
        s_malformed (self, routing_id, frames, "unknown command");
        goto cleanup;
    }
    if (frames < command->min_frames || frames > command->max_frames) {
        s_malformed (self, routing_id, frames, "wrong frame count");
        goto cleanup;
    }
    if (frames > 1) {
        in.payload = payload;
        payload = NULL;
    }
    in.edge = s_edge_lookup (self, routing_id);
    if (in.edge)
        in.edge->last_heard = now_ms;
    if (command->needs_edge && !in.edge)
        s_on_unknown_edge (self, &in);
    else
        command->handler (self, &in);

cleanup:
    zframe_destroy (&payload);
    zframe_destroy (&in.payload);
    s_reap (self);
}

void
core_tick (core_t *self, int64_t now_ms)
{
    assert (self);
    s_clock (self, now_ms);
    while (true) {
        //  The earlier of the two heads, when it is due
        timers_node_t *a = timers_peek (self->timers);
        timers_node_t *b = timers_peek (self->cron);
        timers_t *from = NULL;
        if (a && a->due_ms <= now_ms)
            from = self->timers;
        if (b && b->due_ms <= now_ms && (!from || b->due_ms < a->due_ms))
            from = self->cron;
        if (!from)
            break;
        s_fire (self, timers_pop_due (from, now_ms));
    }
    s_reap (self);
}

int64_t
core_next_due (core_t *self)
{
    assert (self);
    timers_node_t *a = timers_peek (self->timers);
    timers_node_t *b = timers_peek (self->cron);
    if (a && b)
        return a->due_ms < b->due_ms ? a->due_ms : b->due_ms;
    return a ? a->due_ms : b ? b->due_ms : -1;
}

void
core_edge_unreachable (core_t *self, zframe_t *routing_id, int64_t now_ms)
{
    assert (self);
    s_clock (self, now_ms);
    edge_t *edge = routing_id ? s_edge_lookup (self, routing_id) : NULL;
    if (edge)
        s_edge_lost (self, edge, "unreachable", false);
    s_reap (self);
}

bool
core_outbox_take (core_t *self, core_output_t *out)
{
    assert (self);
    assert (out);
    if (self->outbox_head == self->outbox_tail)
        return false;
    outbox_entry_t *entry = &self->outbox[self->outbox_head++];
    memset (out, 0, sizeof *out);
    out->kind = entry->kind;
    if (entry->kind == CORE_OUT_EDGE) {
        out->routing_id = self->out_bytes + entry->offset;
        out->routing_id_size = entry->id_size;
        out->envelope = out->routing_id + entry->id_size;
        out->envelope_size = entry->env_size;
        out->payload = entry->payload;
    } else
        out->msg = entry->msg;
    return true;
}

zmsg_t *
core_outbox_pop (core_t *self, core_out_t *kind)
{
    assert (self);
    core_output_t out;
    if (!core_outbox_take (self, &out))
        return NULL;
    if (kind)
        *kind = out.kind;
    if (out.kind != CORE_OUT_EDGE)
        return out.msg;
    zmsg_t *msg = zmsg_new ();
    assert (msg);
    zmsg_addmem (msg, out.routing_id, out.routing_id_size);
    zmsg_addmem (msg, out.envelope, out.envelope_size);
    if (out.payload)
        zmsg_append (msg, &out.payload);
    return msg;
}

const core_stats_t *
core_stats (core_t *self)
{
    assert (self);
    return &self->stats;
}

size_t
core_agent_count (core_t *self)
{
    assert (self);
    return self->agents.size;
}

size_t
core_request_count (core_t *self)
{
    assert (self);
    return self->requests.size;
}

size_t
core_edge_count (core_t *self)
{
    assert (self);
    return self->edges.size;
}

size_t
core_waiting_count (core_t *self)
{
    assert (self);
    return self->waiting_count;
}

size_t
core_timer_count (core_t *self)
{
    assert (self);
    return timers_size (self->timers);
}
