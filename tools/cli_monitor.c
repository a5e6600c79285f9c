/*  =========================================================================
    cli_monitor - `tether monitor`: watch the router's monitor events

    Subscribes to the router's PUB socket and shows what happens:
      default   a one-screen summary refreshed every second (agents,
                requests/s, in flight, p50/p99 latency of recent requests,
                requests by status, agents per edge); redrawn in place on a
                terminal, one plain block per second when piped;
      --events  one line per event;
      --json    each event's JSON body on one line, with its topic added
                as "topic", for jq.
    --count N ends after N events.  SIGINT and SIGTERM are blocked before
    ZeroMQ starts its threads and read from a signalfd in the same poll as
    the SUB socket, so an interrupt always ends cleanly.
    =========================================================================
*/
#include "cli.h"
#include "cli_monitor.h"

#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "event_json.h"
#include "metrics.h"
#include "tlog.h"

//  Request durations kept for the latency percentiles.
#define S_RECENT     4096
#define S_STATUSES   17 //  gRPC codes 0..16 (tether_status_name)
#define S_REFRESH_MS 1000

typedef enum
{
    MODE_SUMMARY = 1,
    MODE_EVENTS,
    MODE_JSON
} monitor_mode_t;

typedef struct
{
    const char *endpoint;           //  router PUB endpoint(s)
    monitor_mode_t mode;            //  what to print
    bool tty;                       //  stdout is a terminal: redraw in place
    uint64_t count;                 //  stop after this many events, 0 = never
    uint64_t seen;                  //  events received
    metrics_t *seqs;                //  seq bookkeeping (gaps, restarts)
    event_json_t *stats;            //  last stats body, NULL before any
    double rate;                    //  requests finished per second, -1 unknown
    uint64_t by_status[S_STATUSES]; //  request.end seen, per status
    uint64_t ended;                 //  request.end seen
    uint32_t recent[S_RECENT];      //  durations (ms) of recent requests
    size_t recent_count;            //  entries used in recent
    size_t recent_next;             //  next slot to write
} monitor_t;


//  ---------------------------------------------------------------------
//  Output

static void
s_usage (FILE *out)
{
    fprintf (out,
             "usage: tether monitor [--router ENDPOINT] [--topic T]... "
             "[--events | --json] [--count N]\n"
             "\n"
             "Watch a Tether router's monitor events (docs/monitoring.md).\n"
             "\n"
             "  -r, --router ENDPOINT  router monitor (PUB) endpoint; default\n"
             "                         $TETHER_MONITOR, else "
             "tcp://127.0.0.1:7101\n"
             "  -t, --topic T          only events whose topic starts with T\n"
             "                         (repeatable: agent., request.end, "
             "stats...)\n"
             "  -e, --events           one line per event\n"
             "  -j, --json             one JSON object per event, with "
             "\"topic\"\n"
             "  -n, --count N          exit after N events\n"
             "Default: a summary refreshed every second.\n");
}

//  Print a JSON value compactly as logfmt-ish text: strings quoted only
//  when needed, objects as {k=v,...}.
static void
s_print_value (FILE *out, event_json_t *value)
{
    char buf[512];
    switch (event_json_type (value)) {
        case EVENT_JSON_STRING:
            fputs (tlog_quote (event_json_string (value), buf, sizeof buf),
                   out);
            break;
        case EVENT_JSON_NUMBER: {
            uint64_t u;
            double d = 0;
            if (event_json_uint (value, &u))
                fprintf (out, "%" PRIu64, u);
            else if (event_json_number (value, &d))
                fprintf (out, "%g", d);
            break;
        }
        case EVENT_JSON_BOOL: {
            bool truth = false;
            event_json_bool (value, &truth);
            fputs (truth ? "true" : "false", out);
            break;
        }
        case EVENT_JSON_NULL:
            fputs ("null", out);
            break;
        case EVENT_JSON_OBJECT:
        case EVENT_JSON_ARRAY: {
            bool object = event_json_type (value) == EVENT_JSON_OBJECT;
            fputc (object ? '{' : '[', out);
            for (size_t i = 0; i < event_json_size (value); i++) {
                if (i)
                    fputc (',', out);
                if (object)
                    fprintf (out, "%s=",
                             tlog_quote (event_json_key_at (value, i), buf,
                                         sizeof buf));
                s_print_value (out, event_json_at (value, i));
            }
            fputc (object ? '}' : ']', out);
            break;
        }
    }
}

static void
s_print_event_line (const char *topic, event_json_t *json)
{
    char buf[256];
    printf ("%s", tlog_quote (topic, buf, sizeof buf));
    for (size_t i = 0; i < event_json_size (json); i++) {
        const char *key = event_json_key_at (json, i);
        if (streq (key, "mono_ms"))
            continue;
        printf (" %s=", tlog_quote (key, buf, sizeof buf));
        s_print_value (stdout, event_json_at (json, i));
    }
    putchar ('\n');
}

//  The body as one line, with "topic" first.
static void
s_print_json_line (const char *topic, const char *body, size_t size)
{
    size_t start = 0;
    while (start < size && body[start] != '{')
        start++;
    if (start == size)
        return; //  not an object: event_json refused it
    fputs ("{\"topic\":\"", stdout);
    for (const char *s = topic; *s; s++) {
        if (*s == '"' || *s == '\\')
            putchar ('\\');
        if ((unsigned char) *s >= 0x20)
            putchar (*s);
    }
    putchar ('"');
    size_t rest = start + 1;
    while (rest < size && strchr (" \t\r\n", body[rest]))
        rest++;
    if (rest < size && body[rest] != '}')
        putchar (',');
    for (size_t i = rest; i < size; i++)
        putchar (body[i] == '\n' || body[i] == '\r' ? ' ' : body[i]);
    putchar ('\n');
}

static int
s_compare_u32 (const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
    return x < y ? -1 : x > y;
}

static void
s_print_summary (monitor_t *self)
{
    if (self->tty)
        fputs ("\033[H\033[2J", stdout);
    char when[32];
    time_t now = time (NULL);
    struct tm tm;
    strftime (when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime_r (&now, &tm));
    bool up = metrics_router_up (self->seqs, zclock_mono ());
    printf ("tether monitor  %s  %s  router %s (seq %" PRIu64 ")\n",
            self->endpoint, when,
            metrics_events_received (self->seqs) == 0 ? "not heard yet"
            : up                                      ? "up"
                                                      : "SILENT",
            metrics_last_seq (self->seqs));
    if (!self->stats)
        printf ("waiting for the router's stats event...\n");
    else {
        uint64_t agents = 0, requests = 0, waiting = 0, edges = 0;
        event_json_get_uint (self->stats, "agents", &agents);
        event_json_get_uint (self->stats, "requests", &requests);
        event_json_get_uint (self->stats, "waiting", &waiting);
        event_json_get_uint (self->stats, "edges", &edges);
        printf ("agents %" PRIu64 "   in flight %" PRIu64 "   waiting %" PRIu64
                "   edges %" PRIu64 "   req/s ",
                agents, requests, waiting, edges);
        if (self->rate < 0)
            printf ("-\n");
        else
            printf ("%.1f\n", self->rate);
    }
    if (self->recent_count) {
        uint32_t sorted[S_RECENT];
        memcpy (sorted, self->recent, self->recent_count * sizeof (uint32_t));
        qsort (sorted, self->recent_count, sizeof (uint32_t), s_compare_u32);
        size_t p50 = (self->recent_count - 1) * 50 / 100;
        size_t p99 = (self->recent_count - 1) * 99 / 100;
        printf ("latency p50 %" PRIu32 " ms   p99 %" PRIu32
                " ms   (last %zu requests)\n",
                sorted[p50], sorted[p99], self->recent_count);
    } else
        printf ("latency -   (no request ended yet)\n");
    printf ("requests ended %" PRIu64, self->ended);
    for (int i = 0; i < S_STATUSES; i++)
        if (self->by_status[i])
            printf ("   %s %" PRIu64, tether_status_name (i),
                    self->by_status[i]);
    printf ("\nevents %" PRIu64 "   missed %" PRIu64
            "   router restarts %" PRIu64 "\n",
            metrics_events_received (self->seqs),
            metrics_events_missed (self->seqs),
            metrics_router_restarts (self->seqs));
    event_json_t *per_edge = event_json_get (self->stats, "agents_per_edge");
    if (event_json_size (per_edge)) {
        printf ("%-40s %8s\n", "EDGE", "AGENTS");
        for (size_t i = 0; i < event_json_size (per_edge); i++) {
            uint64_t n = 0;
            event_json_uint (event_json_at (per_edge, i), &n);
            printf ("%-40s %8" PRIu64 "\n", event_json_key_at (per_edge, i), n);
        }
    }
    if (!self->tty)
        putchar ('\n');
    fflush (stdout);
}


//  ---------------------------------------------------------------------
//  Events

static void
s_on_stats (monitor_t *self, event_json_t **json_p)
{
    event_json_t *json = *json_p;
    //  The router's own rate over its last stats interval.
    if (!event_json_get_number (json, "requests_per_s", &self->rate)
        || self->rate < 0)
        self->rate = -1;
    event_json_destroy (&self->stats);
    self->stats = json;
    *json_p = NULL;
}

static void
s_on_event (monitor_t *self, zmsg_t *msg)
{
    char *topic = zmsg_popstr (msg);
    zframe_t *body = zmsg_pop (msg);
    if (!topic || !body)
        goto done;
    const char *data = (const char *) zframe_data (body);
    size_t size = zframe_size (body);
    int notice = metrics_on_event (self->seqs, topic, data, size,
                                   zclock_mono (), zclock_time ());
    if (notice & METRICS_EVENT_MALFORMED)
        goto done;
    self->seen++;
    if (self->mode == MODE_JSON) {
        s_print_json_line (topic, data, size);
        fflush (stdout);
        goto done;
    }
    event_json_t *json = event_json_parse (data, size);
    if (self->mode == MODE_EVENTS) {
        s_print_event_line (topic, json);
        fflush (stdout);
    } else if (streq (topic, "stats"))
        s_on_stats (self, &json);
    else if (streq (topic, "request.end")) {
        uint64_t status = 2, duration = 0;
        event_json_get_uint (json, "status", &status);
        event_json_get_uint (json, "duration_ms", &duration);
        self->by_status[status < S_STATUSES ? status : 2]++;
        self->ended++;
        self->recent[self->recent_next] =
            (uint32_t) (duration > UINT32_MAX ? UINT32_MAX : duration);
        self->recent_next = (self->recent_next + 1) % S_RECENT;
        if (self->recent_count < S_RECENT)
            self->recent_count++;
    }
    event_json_destroy (&json);

done:
    zstr_free (&topic);
    zframe_destroy (&body);
}


//  ---------------------------------------------------------------------
//  Main

int
cli_monitor_main (int argc, char **argv)
{
    static const struct option options[] = {
        {"router", required_argument, NULL, 'r'},
        {"topic", required_argument, NULL, 't'},
        {"events", no_argument, NULL, 'e'},
        {"json", no_argument, NULL, 'j'},
        {"count", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    monitor_t self;
    memset (&self, 0, sizeof self);
    self.mode = MODE_SUMMARY;
    self.rate = -1;
    const char *env = getenv ("TETHER_MONITOR");
    self.endpoint = env && *env ? env : "tcp://127.0.0.1:7101";
    zlist_t *topics = zlist_new ();
    assert (topics);
    int opt;
    optind = 1;
    while ((opt = getopt_long (argc, argv, "r:t:ejn:h", options, NULL)) != -1) {
        switch (opt) {
            case 'r':
                self.endpoint = optarg;
                break;
            case 't':
                zlist_append (topics, optarg);
                break;
            case 'e':
                self.mode = MODE_EVENTS;
                break;
            case 'j':
                self.mode = MODE_JSON;
                break;
            case 'n': {
                char *end = NULL;
                unsigned long long n = strtoull (optarg, &end, 10);
                if (!*optarg || *end || optarg[0] == '-' || n == 0) {
                    fprintf (stderr,
                             "tether monitor: --count: '%s' is not "
                             "a positive number\n",
                             optarg);
                    zlist_destroy (&topics);
                    return CLI_EXIT_USAGE;
                }
                self.count = n;
                break;
            }
            case 'h':
                s_usage (stdout);
                zlist_destroy (&topics);
                return 0;
            default:
                s_usage (stderr);
                zlist_destroy (&topics);
                return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "tether monitor: unexpected argument '%s'\n",
                 argv[optind]);
        zlist_destroy (&topics);
        return CLI_EXIT_USAGE;
    }
    self.tty = isatty (STDOUT_FILENO);

    //  Before ZeroMQ's threads exist, so only the signalfd sees them.
    sigset_t signals, old_mask;
    sigemptyset (&signals);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &signals, &old_mask);
    zsys_handler_set (NULL);
    int signal_fd = signalfd (-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
    assert (signal_fd >= 0);

    int rc = 0;
    self.seqs = metrics_new (5000);
    zsock_t *sub = zsock_new (ZMQ_SUB);
    assert (sub);
    zsock_set_rcvhwm (sub, 100000);
    zsock_set_linger (sub, 0);
    zsock_set_rcvtimeo (sub, 0);
    if (zlist_size (topics) == 0)
        zsock_set_subscribe (sub, "");
    for (char *topic = (char *) zlist_first (topics); topic;
         topic = (char *) zlist_next (topics))
        zsock_set_subscribe (sub, topic);
    if (zsock_attach (sub, self.endpoint, false)) {
        fprintf (stderr, "tether monitor: cannot connect to '%s'\n",
                 self.endpoint);
        rc = CLI_EXIT_FAILURE;
        goto cleanup;
    }

    int64_t next_draw = zclock_mono ();
    bool done = false;
    while (!done) {
        int64_t now = zclock_mono ();
        if (self.mode == MODE_SUMMARY && now >= next_draw) {
            s_print_summary (&self);
            next_draw = now + S_REFRESH_MS;
        }
        long timeout =
            self.mode == MODE_SUMMARY ? (long) (next_draw - now) : -1;
        zmq_pollitem_t items[] = {{zsock_resolve (sub), 0, ZMQ_POLLIN, 0},
                                  {NULL, signal_fd, ZMQ_POLLIN, 0}};
        if (zmq_poll (items, 2, timeout) == -1) {
            if (errno == EINTR)
                continue;
            rc = CLI_EXIT_FAILURE;
            break;
        }
        if (items[1].revents & ZMQ_POLLIN)
            done = true;
        for (int i = 0; !done && i < 1000; i++) {
            zmsg_t *msg = zmsg_recv (sub);
            if (!msg)
                break;
            s_on_event (&self, msg);
            zmsg_destroy (&msg);
            if (self.count && self.seen >= self.count)
                done = true;
        }
    }
    if (self.mode == MODE_SUMMARY)
        s_print_summary (&self);

cleanup:
    zsock_destroy (&sub);
    event_json_destroy (&self.stats);
    metrics_destroy (&self.seqs);
    zlist_destroy (&topics);
    close (signal_fd);
    pthread_sigmask (SIG_SETMASK, &old_mask, NULL);
    return rc;
}
