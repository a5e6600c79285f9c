/*  =========================================================================
    metrics - Prometheus counters and gauges folded from router events

    Sources, per metric family:
      request.end    tether_requests_total{status}, the duration histogram,
                     tether_request_bytes_total{direction}
      request.start  tether_requests_started_total
      agent.superseded, edge.down   their _total counters
      stats          every gauge (agents, in flight, waiting, edges,
                     agents per edge) and tether_malformed_frames_total,
                     which follows the router's own cumulative counter:
                     it adds the growth between two stats events, and the
                     whole value at the first stats event of an
                     incarnation.
      any event      tether_events_total{topic}, seq bookkeeping, the
                     router's last-seen time; stats and edge.up also
                     router_incarnation, for restarts (metrics.h).
    Label values come from the wire, so their number is bounded: status
    is one of the 17 gRPC codes, topic one of the known topics or "other",
    and at most S_MAX_EDGES edges are shown.
    =========================================================================
*/
#include "metrics.h"
#include "event_json.h"
#include "tstatus.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_STATUSES        TSTATUS_COUNT
#define S_MAX_EDGES       1024
#define S_INCARNATION_MAX 32 //  longest router_incarnation kept


//  Known topics; anything else is counted as "other" (the last entry).
static const char *s_topic_name[] = {
    "agent.up",      "agent.down",  "agent.superseded",
    "request.start", "request.end", "edge.up",
    "edge.down",     "stats",       "other"};
#define S_TOPICS (sizeof s_topic_name / sizeof s_topic_name[0])

//  Histogram bucket upper bounds: in ms for comparing, as text for le="".
static const struct
{
    int64_t ms_x10; //  bound in tenths of a millisecond
    const char *le; //  the bound in seconds, as printed
} s_bucket[] = {{10, "0.001"},  {25, "0.0025"}, {50, "0.005"},  {100, "0.01"},
                {250, "0.025"}, {500, "0.05"},  {1000, "0.1"},  {2500, "0.25"},
                {5000, "0.5"},  {10000, "1"},   {25000, "2.5"}, {50000, "5"},
                {100000, "10"}, {300000, "30"}, {600000, "60"}};
#define S_BUCKETS (sizeof s_bucket / sizeof s_bucket[0])

typedef struct
{
    char *name;      //  edge name as the router reports it
    uint64_t agents; //  agents connected through it
} edge_row_t;

struct _metrics_t
{
    uint32_t stale_ms; //  router counts as up this long
    //  Sequence bookkeeping
    bool have_seq;             //  an event has been seen
    uint64_t last_seq;         //  seq of the last event
    uint64_t missed;           //  events skipped by seq gaps
    uint64_t restarts;         //  router restarts seen
    uint64_t received;         //  events accepted
    uint64_t bad_events;       //  messages that were not events
    int64_t last_mono_ms;      //  when the last event came (monotonic)
    int64_t last_unix_ms;      //  when the last event came (wall clock)
    uint64_t events[S_TOPICS]; //  per topic
    //  Requests, from request.start / request.end
    uint64_t started;
    uint64_t by_status[S_STATUSES];
    uint64_t buckets[S_BUCKETS]; //  per bucket, not cumulative
    uint64_t duration_count;
    uint64_t duration_sum_ms;
    uint64_t bytes_to_agent;
    uint64_t bytes_to_client;
    uint64_t superseded;
    uint64_t edges_lost;
    //  From stats
    bool have_stats; //  a stats event in this incarnation
    uint64_t agents;
    uint64_t in_flight;
    uint64_t waiting;
    uint64_t edges;
    edge_row_t *edge_rows; //  sorted by name
    size_t edge_count;
    uint64_t router_malformed; //  router's counter at the last stats
    uint64_t malformed;        //  our monotonic total

    //  router_incarnation of the last stats or edge.up, "" when unknown
    char incarnation[S_INCARNATION_MAX + 1];
};


//  ---------------------------------------------------------------------
//  Helpers

static void
s_edges_clear (metrics_t *self)
{
    for (size_t i = 0; i < self->edge_count; i++)
        free (self->edge_rows[i].name);
    free (self->edge_rows);
    self->edge_rows = NULL;
    self->edge_count = 0;
}

static int
s_edge_compare (const void *a, const void *b)
{
    return strcmp (((const edge_row_t *) a)->name,
                   ((const edge_row_t *) b)->name);
}

static size_t
s_topic_index (const char *topic)
{
    for (size_t i = 0; i + 1 < S_TOPICS; i++)
        if (strcmp (topic, s_topic_name[i]) == 0)
            return i;
    return S_TOPICS - 1;
}

static int
s_status_index (event_json_t *json)
{
    uint64_t status;
    if (event_json_get_uint (json, "status", &status))
        return status < S_STATUSES ? (int) status : 2;
    const char *code = event_json_get_string (json, "code", NULL);
    int from_name = tstatus_from_name (code);
    return from_name >= 0 ? from_name : 2; //  2 = UNKNOWN
}

static void
s_on_request_end (metrics_t *self, event_json_t *json)
{
    self->by_status[s_status_index (json)]++;
    double duration_ms = 0;
    if (!event_json_get_number (json, "duration_ms", &duration_ms)
        || duration_ms < 0)
        duration_ms = 0;
    if (duration_ms > 1e12)
        duration_ms = 1e12;
    int64_t ms_x10 = (int64_t) (duration_ms * 10);
    for (size_t i = 0; i < S_BUCKETS; i++)
        if (ms_x10 <= s_bucket[i].ms_x10) {
            self->buckets[i]++;
            break;
        }
    self->duration_count++;
    self->duration_sum_ms += (uint64_t) duration_ms;
    uint64_t bytes;
    if (event_json_get_uint (json, "bytes_to_agent", &bytes))
        self->bytes_to_agent += bytes;
    if (event_json_get_uint (json, "bytes_to_client", &bytes))
        self->bytes_to_client += bytes;
}

static void
s_on_stats (metrics_t *self, event_json_t *json)
{
    event_json_get_uint (json, "agents", &self->agents);
    event_json_get_uint (json, "requests", &self->in_flight);
    event_json_get_uint (json, "waiting", &self->waiting);
    event_json_get_uint (json, "edges", &self->edges);

    event_json_t *per_edge = event_json_get (json, "agents_per_edge");
    if (per_edge && event_json_type (per_edge) == EVENT_JSON_OBJECT) {
        s_edges_clear (self);
        size_t count = event_json_size (per_edge);
        if (count > S_MAX_EDGES)
            count = S_MAX_EDGES;
        if (count) {
            self->edge_rows =
                (edge_row_t *) calloc (count, sizeof (edge_row_t));
            assert (self->edge_rows);
        }
        for (size_t i = 0; i < count; i++) {
            uint64_t agents = 0;
            if (!event_json_uint (event_json_at (per_edge, i), &agents))
                continue;
            edge_row_t *row = &self->edge_rows[self->edge_count++];
            row->name = strdup (event_json_key_at (per_edge, i));
            assert (row->name);
            row->agents = agents;
        }
        qsort (self->edge_rows, self->edge_count, sizeof (edge_row_t),
               s_edge_compare);
    }

    uint64_t malformed;
    if (event_json_get_uint (json, "malformed", &malformed)) {
        if (self->have_stats && malformed >= self->router_malformed)
            self->malformed += malformed - self->router_malformed;
        else
            self->malformed += malformed;
        self->router_malformed = malformed;
    }
    self->have_stats = true;
}

//  Write `value` as a label value: backslash, quote and newline escaped.
static void
s_label_value (FILE *out, const char *value)
{
    for (const char *s = value; *s; s++) {
        if (*s == '\\')
            fputs ("\\\\", out);
        else if (*s == '"')
            fputs ("\\\"", out);
        else if (*s == '\n')
            fputs ("\\n", out);
        else
            fputc (*s, out);
    }
}

static void
s_family (FILE *out, const char *name, const char *type, const char *help)
{
    fprintf (out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
s_sample (FILE *out, const char *name, uint64_t value)
{
    fprintf (out, "%s %" PRIu64 "\n", name, value);
}


//  ---------------------------------------------------------------------
//  Public API

metrics_t *
metrics_new (uint32_t stale_ms)
{
    metrics_t *self = (metrics_t *) calloc (1, sizeof (metrics_t));
    assert (self);
    self->stale_ms = stale_ms;
    return self;
}

void
metrics_destroy (metrics_t **self_p)
{
    assert (self_p);
    metrics_t *self = *self_p;
    if (!self)
        return;
    s_edges_clear (self);
    free (self);
    *self_p = NULL;
}

int
metrics_on_event (metrics_t *self,
                  const char *topic,
                  const void *body,
                  size_t size,
                  int64_t now_mono_ms,
                  int64_t now_unix_ms)
{
    assert (self);
    event_json_t *json = event_json_parse ((const char *) body, size);
    uint64_t seq = 0;
    if (!topic || !json || event_json_type (json) != EVENT_JSON_OBJECT
        || !event_json_get_uint (json, "seq", &seq) || seq == 0) {
        event_json_destroy (&json);
        self->bad_events++;
        return METRICS_EVENT_MALFORMED;
    }

    //  stats and edge.up name the router's incarnation; a string that
    //  does not fit is ignored like an absent one.
    const char *incarnation =
        event_json_get_string (json, "router_incarnation", NULL);
    if (incarnation
        && (!*incarnation || strlen (incarnation) > S_INCARNATION_MAX))
        incarnation = NULL;
    bool new_incarnation = incarnation && *self->incarnation
                           && strcmp (incarnation, self->incarnation) != 0;

    int notice = 0;
    if (!self->have_seq)
        notice |= METRICS_EVENT_FIRST;
    else if (seq <= self->last_seq) {
        //  Seq started over: a new router incarnation.  What it published
        //  before this event never reached us.
        notice |= METRICS_EVENT_RESTART;
        self->restarts++;
        self->have_stats = false;
        self->incarnation[0] = 0;
        if (seq > 1) {
            self->missed += seq - 1;
            notice |= METRICS_EVENT_GAP;
        }
    } else {
        //  Seq grew.  Another incarnation means the router restarted
        //  while we lost more events than the old one had published; the
        //  gap by seq is then a lower bound of what was missed.
        if (new_incarnation) {
            notice |= METRICS_EVENT_RESTART;
            self->restarts++;
            self->have_stats = false;
        }
        if (seq > self->last_seq + 1) {
            self->missed += seq - self->last_seq - 1;
            notice |= METRICS_EVENT_GAP;
        }
    }
    if (incarnation)
        snprintf (self->incarnation, sizeof self->incarnation, "%s",
                  incarnation);
    self->have_seq = true;
    self->last_seq = seq;
    self->received++;
    self->last_mono_ms = now_mono_ms;
    self->last_unix_ms = now_unix_ms;

    size_t topic_index = s_topic_index (topic);
    self->events[topic_index]++;
    const char *known = s_topic_name[topic_index];
    if (strcmp (known, "request.end") == 0)
        s_on_request_end (self, json);
    else if (strcmp (known, "request.start") == 0)
        self->started++;
    else if (strcmp (known, "agent.superseded") == 0)
        self->superseded++;
    else if (strcmp (known, "edge.down") == 0)
        self->edges_lost++;
    else if (strcmp (known, "stats") == 0)
        s_on_stats (self, json);
    event_json_destroy (&json);
    return notice;
}

char *
metrics_render (metrics_t *self, int64_t now_mono_ms, size_t *size)
{
    assert (self);
    char *data = NULL;
    size_t length = 0;
    FILE *out = open_memstream (&data, &length);
    assert (out);

    s_family (out, "tether_exporter_up", "gauge",
              "Always 1 while the exporter answers scrapes.");
    s_sample (out, "tether_exporter_up", 1);
    bool router_up = metrics_router_up (self, now_mono_ms);
    s_family (out, "tether_router_up", "gauge",
              "1 when the router's last monitor event is recent enough.");
    s_sample (out, "tether_router_up", router_up ? 1 : 0);
    s_family (out, "tether_router_last_event_timestamp_seconds", "gauge",
              "Unix time at which the last monitor event arrived, 0 before "
              "any.");
    fprintf (out,
             "tether_router_last_event_timestamp_seconds %" PRId64 ".%03d\n",
             self->last_unix_ms / 1000, (int) (self->last_unix_ms % 1000));
    s_family (out, "tether_router_restarts_total", "counter",
              "Router restarts seen: event sequence numbers started over.");
    s_sample (out, "tether_router_restarts_total", self->restarts);

    s_family (out, "tether_events_total", "counter",
              "Monitor events received, by topic.");
    for (size_t i = 0; i < S_TOPICS; i++)
        fprintf (out, "tether_events_total{topic=\"%s\"} %" PRIu64 "\n",
                 s_topic_name[i], self->events[i]);
    s_family (out, "tether_events_missed_total", "counter",
              "Monitor events lost on the way (gaps in their sequence "
              "numbers).");
    s_sample (out, "tether_events_missed_total", self->missed);
    s_family (out, "tether_events_malformed_total", "counter",
              "Monitor messages the exporter could not read.");
    s_sample (out, "tether_events_malformed_total", self->bad_events);

    s_family (out, "tether_requests_started_total", "counter",
              "Requests the router started routing (refused ones only end).");
    s_sample (out, "tether_requests_started_total", self->started);
    s_family (out, "tether_requests_total", "counter",
              "Requests finished, by gRPC status.");
    for (int i = 0; i < S_STATUSES; i++)
        fprintf (out, "tether_requests_total{status=\"%s\"} %" PRIu64 "\n",
                 tstatus_name (i), self->by_status[i]);
    s_family (out, "tether_request_duration_seconds", "histogram",
              "Time from a request's arrival at the router to its end.");
    uint64_t cumulative = 0;
    for (size_t i = 0; i < S_BUCKETS; i++) {
        cumulative += self->buckets[i];
        fprintf (out,
                 "tether_request_duration_seconds_bucket{le=\"%s\"} %" PRIu64
                 "\n",
                 s_bucket[i].le, cumulative);
    }
    fprintf (out,
             "tether_request_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64
             "\n",
             self->duration_count);
    fprintf (out, "tether_request_duration_seconds_sum %" PRIu64 ".%03d\n",
             self->duration_sum_ms / 1000,
             (int) (self->duration_sum_ms % 1000));
    s_sample (out, "tether_request_duration_seconds_count",
              self->duration_count);
    s_family (out, "tether_request_bytes_total", "counter",
              "Payload bytes of finished requests, by direction.");
    fprintf (out,
             "tether_request_bytes_total{direction=\"to_agent\"} %" PRIu64 "\n",
             self->bytes_to_agent);
    fprintf (out,
             "tether_request_bytes_total{direction=\"to_client\"} %" PRIu64
             "\n",
             self->bytes_to_client);

    s_family (out, "tether_agents_superseded_total", "counter",
              "Agent streams replaced by a newer stream of the same id.");
    s_sample (out, "tether_agents_superseded_total", self->superseded);
    s_family (out, "tether_edges_lost_total", "counter",
              "Edges the router declared dead.");
    s_sample (out, "tether_edges_lost_total", self->edges_lost);
    s_family (out, "tether_malformed_frames_total", "counter",
              "Malformed messages the router dropped.");
    s_sample (out, "tether_malformed_frames_total", self->malformed);

    s_family (out, "tether_agents_connected", "gauge",
              "Agents connected, as of the router's last stats event.");
    s_sample (out, "tether_agents_connected", self->agents);
    s_family (out, "tether_requests_in_flight", "gauge",
              "Requests in flight, as of the router's last stats event.");
    s_sample (out, "tether_requests_in_flight", self->in_flight);
    s_family (out, "tether_requests_waiting", "gauge",
              "Requests parked waiting for their agent to connect.");
    s_sample (out, "tether_requests_waiting", self->waiting);
    s_family (out, "tether_edges_up", "gauge",
              "Edges connected to the router.");
    s_sample (out, "tether_edges_up", self->edges);
    s_family (out, "tether_agents_by_edge", "gauge",
              "Agents connected through each edge.");
    for (size_t i = 0; i < self->edge_count; i++) {
        fputs ("tether_agents_by_edge{edge=\"", out);
        s_label_value (out, self->edge_rows[i].name);
        fprintf (out, "\"} %" PRIu64 "\n", self->edge_rows[i].agents);
    }

    fclose (out);
    *size = length;
    return data;
}

uint64_t
metrics_events_missed (metrics_t *self)
{
    assert (self);
    return self->missed;
}

uint64_t
metrics_router_restarts (metrics_t *self)
{
    assert (self);
    return self->restarts;
}

uint64_t
metrics_events_received (metrics_t *self)
{
    assert (self);
    return self->received;
}

bool
metrics_router_up (metrics_t *self, int64_t now_mono_ms)
{
    assert (self);
    return self->have_seq
           && now_mono_ms - self->last_mono_ms <= (int64_t) self->stale_ms;
}

const char *
metrics_router_incarnation (metrics_t *self)
{
    assert (self);
    return self->incarnation;
}

uint64_t
metrics_last_seq (metrics_t *self)
{
    assert (self);
    return self->last_seq;
}
