/*  =========================================================================
    test_monitoring - the router's monitor events and tether-exporter

    Each test starts a router actor on tcp://127.0.0.1:0 (ports from its
    PORT command), with a stats event every 100 ms and edge liveness off,
    and plays edges with plain DEALER sockets speaking the wire protocol.
      events    a scripted scenario; a SUB sees its events in order, every
                field checked, with contiguous seq
      exporter  the same scenario with tether-exporter as a real process:
                its /metrics must come to match the scenario; then the
                router restarts on the same monitor port and the exporter
                counts one restart
      promtool  promtool check metrics accepts the exporter's output
                (skipped, exit 77, when promtool is not installed)
      stall     a subscriber that never reads does not slow routing
      cli       `tether monitor` --json, --events and the piped summary,
                bounded by --count
    No sleeps: every wait is a receive or poll with a deadline, and
    repeated scrapes are paced by the router's own stats events.
    =========================================================================
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "event_json.h"
#include "router_actor.h"
#include "sim_edge.h"
#include "wire_envelope.h"

//  How long any single expected message or condition may take, ms.
#define S_DEADLINE_MS SIM_DEADLINE_MS
#define S_SKIP        77

typedef struct
{
    router_config_t cfg; //  settings of the actor under test
    zactor_t *router;    //  the actor
    int router_port;     //  its ROUTER's port
    int monitor_port;    //  its PUB's port
    zsock_t *sub;        //  the test's own monitor subscriber
    uint64_t last_seq;   //  seq of the last event `sub` received
    uint64_t rng;        //  xorshift state for routing ids
    //  tether-exporter, when started
    pid_t exporter;   //  its pid, 0 when not running
    int exporter_err; //  read end of its stderr, -1 when closed
    int http_port;    //  its /metrics port
    char log[65536];  //  what it printed so far
    size_t log_size;
} fixture_t;

//  What the scripted scenario leaves behind.
typedef struct
{
    size_t request_bytes;  //  request payloads, in all
    size_t response_bytes; //  response payloads, in all
    char incarnation[17];  //  router_incarnation of edge.up
} scenario_t;


//  ---------------------------------------------------------------------
//  Router and wire helpers


//  ---------------------------------------------------------------------
//  Monitor helpers

//  Receive the next event on the fixture's SUB within the deadline,
//  checking that its seq follows the previous one.  With `skip_stats`,
//  stats events are checked and skipped.  Returns the parsed body (caller
//  destroys it) and sets *topic_p (caller frees it with zstr_free).
static event_json_t *
s_next_event (
    fixture_t *fx, bool skip_stats, char **topic_p, const char *file, int line)
{
    int64_t deadline = zclock_mono () + S_DEADLINE_MS;
    while (true) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            fail_msg ("%s:%d: no monitor event within %d ms", file, line,
                      S_DEADLINE_MS);
        zsock_set_rcvtimeo (fx->sub, (int) left);
        zmsg_t *msg = zmsg_recv (fx->sub);
        if (!msg)
            continue;
        assert_int_equal (zmsg_size (msg), 2);
        char *topic = zmsg_popstr (msg);
        zframe_t *body = zmsg_pop (msg);
        zmsg_destroy (&msg);
        event_json_t *json = event_json_parse (
            (const char *) zframe_data (body), zframe_size (body));
        zframe_destroy (&body);
        if (!json)
            fail_msg ("%s:%d: unreadable %s event", file, line, topic);
        uint64_t seq = 0;
        assert_true (event_json_get_uint (json, "seq", &seq));
        assert_true (event_json_get (json, "mono_ms") != NULL);
        if (fx->last_seq && seq != fx->last_seq + 1)
            fail_msg ("%s:%d: %s event seq %" PRIu64 " after %" PRIu64, file,
                      line, topic, seq, fx->last_seq);
        fx->last_seq = seq;
        if (skip_stats && streq (topic, "stats")) {
            zstr_free (&topic);
            event_json_destroy (&json);
            continue;
        }
        *topic_p = topic;
        return json;
    }
}

//  Expect the next event other than stats to be of `topic`.  Returns its
//  body (caller destroys it).
static event_json_t *
s_expect_event (fixture_t *fx, const char *topic, const char *file, int line)
{
    char *got = NULL;
    event_json_t *json = s_next_event (fx, true, &got, file, line);
    if (!streq (got, topic))
        fail_msg ("%s:%d: event %s, expected %s", file, line, got, topic);
    zstr_free (&got);
    return json;
}

#define EXPECT_EVENT(fx, topic)                                                \
    s_expect_event ((fx), (topic), __FILE__, __LINE__)

//  Wait for the next stats event: it paces every retry in these tests.
static void
s_next_stats (fixture_t *fx)
{
    char *topic = NULL;
    do {
        zstr_free (&topic);
        event_json_t *json =
            s_next_event (fx, false, &topic, __FILE__, __LINE__);
        event_json_destroy (&json);
    } while (!streq (topic, "stats"));
    zstr_free (&topic);
}

static void
s_assert_str (event_json_t *json, const char *key, const char *value)
{
    const char *got = event_json_get_string (json, key, NULL);
    if (!got || !streq (got, value))
        fail_msg ("\"%s\" is \"%s\", expected \"%s\"", key,
                  got ? got : "(absent)", value);
}

static void
s_assert_uint (event_json_t *json, const char *key, uint64_t value)
{
    uint64_t got = UINT64_MAX;
    if (!event_json_get_uint (json, key, &got) || got != value)
        fail_msg ("\"%s\" is %" PRIu64 ", expected %" PRIu64, key, got, value);
}

//  Connect the fixture's SUB and wait until it receives: `warm` (an edge
//  that has said HELLO) makes the router emit stats events from then on.
static void
s_monitor_join (fixture_t *fx)
{
    fx->sub = zsock_new (ZMQ_SUB);
    assert_non_null (fx->sub);
    zsock_set_subscribe (fx->sub, "");
    assert_int_equal (
        zsock_connect (fx->sub, "tcp://127.0.0.1:%d", fx->monitor_port), 0);
    fx->last_seq = 0;
    s_next_stats (fx);
}


//  ---------------------------------------------------------------------
//  The scenario

//  Two edges: agents on edge-a:1, clients on edge-b:1.  Checks every
//  event on the fixture's SUB as it goes.
static void
s_scenario (fixture_t *fx, scenario_t *out)
{
    zsock_t *a = sim_edge_new (&fx->rng, fx->router_port);
    zsock_t *b = sim_edge_new (&fx->rng, fx->router_port);
    event_json_t *ev;

    sim_hello (a, "edge-a:1", 101, NULL, 0);
    ev = EXPECT_EVENT (fx, "edge.up");
    s_assert_str (ev, "edge", "edge-a:1");
    s_assert_uint (ev, "incarnation", 101);
    s_assert_uint (ev, "agents", 0);
    //  The router's incarnation: 64 bits as 16 hex digits, in a string.
    const char *incarnation =
        event_json_get_string (ev, "router_incarnation", "");
    assert_int_equal (strlen (incarnation), 16);
    assert_int_equal (strspn (incarnation, "0123456789abcdef"), 16);
    snprintf (out->incarnation, sizeof out->incarnation, "%s", incarnation);
    event_json_destroy (&ev);
    sim_hello (b, "edge-b:1", 202, NULL, 0);
    ev = EXPECT_EVENT (fx, "edge.up");
    s_assert_str (ev, "edge", "edge-b:1");
    event_json_destroy (&ev);

    uint64_t session = sim_subscribe (a, "dev-1", 1);
    ev = EXPECT_EVENT (fx, "agent.up");
    s_assert_str (ev, "agent_id", "dev-1");
    s_assert_uint (ev, "session", session);
    s_assert_str (ev, "edge", "edge-a:1");
    assert_int_equal (event_json_type (event_json_get (ev, "labels")),
                      EVENT_JSON_OBJECT);
    event_json_destroy (&ev);

    //  req-1: delivered, bound, one response, ended OK.
    char request[100], response[40];
    memset (request, 'q', sizeof request);
    memset (response, 'r', sizeof response);
    sim_publish (b, 11, "req-1", "dev-1", request, sizeof request);
    Wire__Envelope *env = SIM_EXPECT (a, DELIVER, NULL);
    wire_envelope_free (&env);
    ev = EXPECT_EVENT (fx, "request.start");
    s_assert_str (ev, "request_id", "req-1");
    s_assert_str (ev, "agent_id", "dev-1");
    s_assert_str (ev, "client_edge", "edge-b:1");
    event_json_destroy (&ev);
    sim_command (a, WIRE__COMMAND__BIND, 2, "req-1", 0, NULL, 0);
    env = SIM_EXPECT (a, BOUND, NULL);
    wire_envelope_free (&env);
    sim_command (a, WIRE__COMMAND__RESPONSE, 2, "req-1", 0, response,
                 sizeof response);
    env = SIM_EXPECT (b, REPLY, NULL);
    wire_envelope_free (&env);
    sim_command (a, WIRE__COMMAND__END, 2, "req-1", 0, NULL, 0);
    env = SIM_EXPECT (b, FINISH, NULL);
    assert_int_equal (env->status, 0);
    wire_envelope_free (&env);
    ev = EXPECT_EVENT (fx, "request.end");
    s_assert_str (ev, "request_id", "req-1");
    s_assert_str (ev, "agent_id", "dev-1");
    s_assert_uint (ev, "status", 0);
    s_assert_str (ev, "code", "OK");
    s_assert_uint (ev, "bytes_to_agent", sizeof request);
    s_assert_uint (ev, "bytes_to_client", sizeof response);
    s_assert_uint (ev, "responses", 1);
    s_assert_uint (ev, "session", session);
    s_assert_str (ev, "client_edge", "edge-b:1");
    s_assert_str (ev, "agent_edge", "edge-a:1");
    s_assert_str (ev, "responder_edge", "edge-a:1");
    uint64_t duration = 0;
    assert_true (event_json_get_uint (ev, "duration_ms", &duration));
    event_json_destroy (&ev);

    //  req-2: no such agent, refused at once (no request.start).
    sim_publish (b, 12, "req-2", "ghost", "x", 1);
    env = SIM_EXPECT (b, FINISH, NULL);
    assert_int_equal (env->status, 5);
    wire_envelope_free (&env);
    ev = EXPECT_EVENT (fx, "request.end");
    s_assert_str (ev, "request_id", "req-2");
    s_assert_str (ev, "code", "NOT_FOUND");
    assert_true (event_json_get_bool (ev, "rejected", false));
    event_json_destroy (&ev);

    //  req-3: the agent answers with an error status.
    sim_publish (b, 13, "req-3", "dev-1", request, 10);
    env = SIM_EXPECT (a, DELIVER, NULL);
    wire_envelope_free (&env);
    ev = EXPECT_EVENT (fx, "request.start");
    s_assert_str (ev, "request_id", "req-3");
    event_json_destroy (&ev);
    sim_command (a, WIRE__COMMAND__BIND, 3, "req-3", 0, NULL, 0);
    env = SIM_EXPECT (a, BOUND, NULL);
    wire_envelope_free (&env);
    sim_command (a, WIRE__COMMAND__END, 3, "req-3", 13, NULL, 0);
    env = SIM_EXPECT (b, FINISH, NULL);
    assert_int_equal (env->status, 13);
    wire_envelope_free (&env);
    ev = EXPECT_EVENT (fx, "request.end");
    s_assert_str (ev, "request_id", "req-3");
    s_assert_str (ev, "code", "INTERNAL");
    s_assert_str (ev, "message", "agent failed");
    s_assert_uint (ev, "bytes_to_client", 0);
    event_json_destroy (&ev);

    //  A second agent, then the first one leaves.
    sim_subscribe (a, "dev-2", 4);
    ev = EXPECT_EVENT (fx, "agent.up");
    s_assert_str (ev, "agent_id", "dev-2");
    event_json_destroy (&ev);
    Wire__Envelope unsubscribe = WIRE__ENVELOPE__INIT;
    unsubscribe.command = WIRE__COMMAND__UNSUBSCRIBE;
    unsubscribe.handle = 1;
    unsubscribe.session = session;
    sim_send (a, &unsubscribe, NULL, 0);
    ev = EXPECT_EVENT (fx, "agent.down");
    s_assert_str (ev, "agent_id", "dev-1");
    s_assert_uint (ev, "session", session);
    s_assert_str (ev, "edge", "edge-a:1");
    event_json_destroy (&ev);

    //  One malformed message: counted by the router, no event.
    zstr_send (b, "not an envelope");

    out->request_bytes = sizeof request + 1 + 10;
    out->response_bytes = sizeof response;
    zsock_destroy (&b);
    zsock_destroy (&a);
}


//  ---------------------------------------------------------------------
//  tether-exporter as a process

//  Read what the exporter printed, waiting at most `timeout_ms`.  Returns
//  false once its stderr is closed.
static bool
s_exporter_read (fixture_t *fx, int timeout_ms)
{
    if (fx->exporter_err < 0)
        return false;
    struct pollfd pfd = {fx->exporter_err, POLLIN, 0};
    if (poll (&pfd, 1, timeout_ms) <= 0)
        return true;
    char buf[4096];
    ssize_t got = read (fx->exporter_err, buf, sizeof buf);
    if (got <= 0) {
        close (fx->exporter_err);
        fx->exporter_err = -1;
        return false;
    }
    size_t room = sizeof fx->log - 1 - fx->log_size;
    size_t keep = (size_t) got < room ? (size_t) got : room;
    memcpy (fx->log + fx->log_size, buf, keep);
    fx->log_size += keep;
    fx->log[fx->log_size] = 0;
    return true;
}

//  Wait until the exporter's log holds `text`.
static void
s_exporter_wait_log (fixture_t *fx, const char *text)
{
    int64_t deadline = zclock_mono () + S_DEADLINE_MS;
    while (!strstr (fx->log, text)) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0 || !s_exporter_read (fx, (int) left))
            fail_msg ("exporter never logged '%s'; it printed:\n%s", text,
                      fx->log);
    }
}

static void
s_exporter_start (fixture_t *fx)
{
    char monitor[64];
    snprintf (monitor, sizeof monitor, "tcp://127.0.0.1:%d", fx->monitor_port);
    int pipe_fds[2];
    assert_int_equal (pipe2 (pipe_fds, O_CLOEXEC), 0);
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        dup2 (pipe_fds[1], STDERR_FILENO);
        dup2 (pipe_fds[1], STDOUT_FILENO);
        char *args[] = {(char *) TETHER_EXPORTER_BIN,
                        (char *) "--monitor",
                        monitor,
                        (char *) "--listen",
                        (char *) "127.0.0.1:0",
                        (char *) "--stale-after",
                        (char *) "5s",
                        NULL};
        execv (args[0], args);
        _exit (127);
    }
    close (pipe_fds[1]);
    fx->exporter = pid;
    fx->exporter_err = pipe_fds[0];
    s_exporter_wait_log (fx, "msg=\"exporter listening\"");
    const char *port = strstr (fx->log, " port=");
    assert_non_null (port);
    fx->http_port = atoi (port + 6);
    assert_true (fx->http_port > 0);
}

//  SIGTERM, then expect a clean exit 0 within the deadline.
static void
s_exporter_stop (fixture_t *fx)
{
    if (!fx->exporter)
        return;
    assert_int_equal (kill (fx->exporter, SIGTERM), 0);
    int64_t deadline = zclock_mono () + S_DEADLINE_MS;
    while (s_exporter_read (fx, 100) && zclock_mono () < deadline)
        ;
    int status = 0;
    pid_t done = waitpid (fx->exporter, &status, WNOHANG);
    while (done == 0 && zclock_mono () < deadline) {
        struct pollfd none;
        poll (&none, 0, 10); //  its stderr closed: it is exiting
        done = waitpid (fx->exporter, &status, WNOHANG);
    }
    if (done == 0) {
        kill (fx->exporter, SIGKILL);
        waitpid (fx->exporter, &status, 0);
        fx->exporter = 0;
        fail_msg ("exporter did not exit on SIGTERM; it printed:\n%s", fx->log);
    }
    fx->exporter = 0;
    if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
        fail_msg ("exporter exit status %d; it printed:\n%s", status, fx->log);
    assert_non_null (strstr (fx->log, "msg=\"exporter stopping\""));
    assert_null (strstr (fx->log, "level=error"));
}

//  GET `path` from the exporter over loopback, HTTP/1.0.  Returns the
//  body (caller frees it) and sets *status.
static char *
s_http_get (fixture_t *fx, const char *path, int *status)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true (fd >= 0);
    struct sockaddr_in addr;
    memset (&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons ((uint16_t) fx->http_port);
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert_int_equal (connect (fd, (struct sockaddr *) &addr, sizeof addr), 0);
    char request[256];
    int len = snprintf (request, sizeof request,
                        "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    assert_int_equal (write (fd, request, (size_t) len), len);
    size_t size = 0, room = 65536;
    char *data = (char *) malloc (room);
    assert_non_null (data);
    int64_t deadline = zclock_mono () + S_DEADLINE_MS;
    while (true) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            fail_msg ("GET %s: no complete answer in time", path);
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll (&pfd, 1, (int) left) <= 0)
            continue;
        if (size + 4096 > room) {
            room *= 2;
            data = (char *) realloc (data, room);
            assert_non_null (data);
        }
        ssize_t got = read (fd, data + size, room - size - 1);
        if (got < 0 && errno == EINTR)
            continue;
        assert_true (got >= 0);
        if (got == 0)
            break;
        size += (size_t) got;
    }
    close (fd);
    data[size] = 0;
    assert_true (sscanf (data, "HTTP/1.%*d %d", status) == 1);
    char *body = strstr (data, "\r\n\r\n");
    assert_non_null (body);
    char *copy = strdup (body + 4);
    assert_non_null (copy);
    free (data);
    return copy;
}

static char *
s_scrape (fixture_t *fx)
{
    int status = 0;
    char *text = s_http_get (fx, "/metrics", &status);
    assert_int_equal (status, 200);
    return text;
}

//  Value of the sample `name` (with its labels, exactly as printed), or -1
//  when there is no such line.
static double
s_sample (const char *text, const char *name)
{
    size_t len = strlen (name);
    const char *line = text;
    while (line && *line) {
        if (strncmp (line, name, len) == 0 && line[len] == ' ')
            return strtod (line + len + 1, NULL);
        line = strchr (line, '\n');
        if (line)
            line++;
    }
    return -1;
}

typedef struct
{
    const char *name; //  sample name with labels
    double value;     //  expected value
} expect_t;

//  Scrape until every sample has its value, pacing retries with the
//  router's stats events; fails with the last scrape past the deadline.
static void
s_wait_metrics (fixture_t *fx, const expect_t *expect, size_t count)
{
    int64_t deadline = zclock_mono () + S_DEADLINE_MS;
    while (true) {
        char *text = s_scrape (fx);
        size_t i;
        for (i = 0; i < count; i++)
            if (s_sample (text, expect[i].name) != expect[i].value)
                break;
        if (i == count) {
            free (text);
            return;
        }
        if (zclock_mono () > deadline) {
            fprintf (stderr, "%s", text);
            double got = s_sample (text, expect[i].name);
            free (text);
            fail_msg ("%s is %g, expected %g", expect[i].name, got,
                      expect[i].value);
        }
        free (text);
        s_next_stats (fx);
    }
}

//  Start the exporter, let the router emit stats (an edge says HELLO), and
//  wait until the exporter and the fixture's SUB both receive events.
//  Returns the warm-up edge (caller destroys it).
static zsock_t *
s_exporter_join (fixture_t *fx)
{
    s_exporter_start (fx);
    zsock_t *warm = sim_edge_new (&fx->rng, fx->router_port);
    sim_hello (warm, "edge-w:1", 1, NULL, 0);
    s_monitor_join (fx);
    const expect_t up[] = {{"tether_router_up", 1}};
    s_wait_metrics (fx, up, 1);
    return warm;
}


//  ---------------------------------------------------------------------
//  Fixture

static int
s_setup (void **state)
{
    fixture_t *fx = (fixture_t *) zmalloc (sizeof (fixture_t));
    router_config_defaults (&fx->cfg);
    free (fx->cfg.bind);
    fx->cfg.bind = strdup ("tcp://127.0.0.1:0");
    free (fx->cfg.monitor);
    fx->cfg.monitor = strdup ("tcp://127.0.0.1:0");
    fx->cfg.core.stats_interval_ms = 100;
    fx->cfg.core.edge_liveness_ms = 0;
    fx->exporter_err = -1;
    fx->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t) zclock_usecs ();
    fx->router =
        sim_router_start (&fx->cfg, &fx->router_port, &fx->monitor_port);
    *state = fx;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    if (fx->exporter) {
        kill (fx->exporter, SIGKILL);
        waitpid (fx->exporter, NULL, 0);
    }
    if (fx->exporter_err >= 0)
        close (fx->exporter_err);
    sim_sub_close (&fx->sub, 200);
    zactor_destroy (&fx->router);
    router_config_clear (&fx->cfg);
    free (fx);
    return 0;
}


//  ---------------------------------------------------------------------
//  (a) The scenario's events, in order, contiguous.

static void
test_events (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    zsock_t *warm = sim_edge_new (&fx->rng, fx->router_port);
    sim_hello (warm, "edge-w:1", 1, NULL, 0);
    s_monitor_join (fx);
    scenario_t scenario;
    s_scenario (fx, &scenario);

    //  The stats events that follow show the end state.
    int64_t deadline = zclock_mono () + S_DEADLINE_MS;
    while (true) {
        char *topic = NULL;
        event_json_t *ev = s_next_event (fx, false, &topic, __FILE__, __LINE__);
        bool stats = streq (topic, "stats");
        zstr_free (&topic);
        if (!stats) {
            event_json_destroy (&ev);
            fail_msg ("an event after the scenario's last");
        }
        uint64_t malformed = 0;
        event_json_get_uint (ev, "malformed", &malformed);
        if (malformed == 1 || zclock_mono () > deadline) {
            s_assert_uint (ev, "malformed", 1);
            s_assert_uint (ev, "agents", 1);
            s_assert_uint (ev, "requests", 0);
            s_assert_uint (ev, "edges", 3);
            s_assert_uint (ev, "requests_started", 3);
            s_assert_uint (ev, "requests_finished", 3);
            event_json_t *by_status = event_json_get (ev, "requests_by_status");
            s_assert_uint (by_status, "OK", 1);
            s_assert_uint (by_status, "NOT_FOUND", 1);
            s_assert_uint (by_status, "INTERNAL", 1);
            event_json_t *per_edge = event_json_get (ev, "agents_per_edge");
            s_assert_uint (per_edge, "edge-a:1", 1);
            s_assert_uint (per_edge, "edge-b:1", 0);
            s_assert_uint (per_edge, "edge-w:1", 0);
            s_assert_uint (ev, "bytes_to_agents", scenario.request_bytes - 1);
            s_assert_uint (ev, "bytes_to_clients", scenario.response_bytes);
            s_assert_str (ev, "router_incarnation", scenario.incarnation);
            double rate = -1;
            assert_true (event_json_get_number (ev, "requests_per_s", &rate));
            assert_true (rate >= 0);
            event_json_destroy (&ev);
            break;
        }
        event_json_destroy (&ev);
    }
    zsock_destroy (&warm);
}

//  ---------------------------------------------------------------------
//  (b) tether-exporter's /metrics after the scenario, then a restart.

static void
test_exporter (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    zsock_t *warm = s_exporter_join (fx);
    //  The warm-up edge's edge.up may have come before the exporter's
    //  subscription: count from here.
    char *text = s_scrape (fx);
    double edges_up = s_sample (text, "tether_events_total{topic=\"edge.up\"}");
    free (text);
    scenario_t scenario;
    s_scenario (fx, &scenario);

    //  The refused req-2 carries no payload count: only 110 bytes went to
    //  the agent.
    const expect_t after[] = {
        {"tether_exporter_up", 1},
        {"tether_router_up", 1},
        {"tether_requests_total{status=\"OK\"}", 1},
        {"tether_requests_total{status=\"NOT_FOUND\"}", 1},
        {"tether_requests_total{status=\"INTERNAL\"}", 1},
        {"tether_requests_total{status=\"UNAVAILABLE\"}", 0},
        {"tether_requests_started_total", 2},
        {"tether_request_duration_seconds_count", 3},
        {"tether_request_duration_seconds_bucket{le=\"+Inf\"}", 3},
        {"tether_request_bytes_total{direction=\"to_agent\"}",
         (double) (scenario.request_bytes - 1)},
        {"tether_request_bytes_total{direction=\"to_client\"}",
         (double) scenario.response_bytes},
        {"tether_events_total{topic=\"edge.up\"}", edges_up + 2},
        {"tether_events_total{topic=\"agent.up\"}", 2},
        {"tether_events_total{topic=\"agent.down\"}", 1},
        {"tether_events_total{topic=\"request.start\"}", 2},
        {"tether_events_total{topic=\"request.end\"}", 3},
        {"tether_events_missed_total", 0},
        {"tether_events_malformed_total", 0},
        {"tether_router_restarts_total", 0},
        {"tether_agents_connected", 1},
        {"tether_requests_in_flight", 0},
        {"tether_edges_up", 3},
        {"tether_agents_by_edge{edge=\"edge-a:1\"}", 1},
        {"tether_agents_by_edge{edge=\"edge-b:1\"}", 0},
        {"tether_malformed_frames_total", 1}};
    s_wait_metrics (fx, after, sizeof after / sizeof after[0]);

    int status = 0;
    char *body = s_http_get (fx, "/nope", &status);
    assert_int_equal (status, 404);
    free (body);

    //  The router restarts on the same monitor port: seq starts over.
    zsock_destroy (&warm);
    zactor_destroy (&fx->router);
    free (fx->cfg.monitor);
    fx->cfg.monitor = zsys_sprintf ("tcp://127.0.0.1:%d", fx->monitor_port);
    fx->cfg.core.stats_interval_ms = 1000;
    fx->router =
        sim_router_start (&fx->cfg, &fx->router_port, &fx->monitor_port);
    warm = sim_edge_new (&fx->rng, fx->router_port);
    sim_hello (warm, "edge-w:1", 2, NULL, 0);
    s_exporter_wait_log (fx, "msg=\"router restarted\"");
    text = s_scrape (fx);
    assert_true (s_sample (text, "tether_router_restarts_total") == 1);
    //  Counters keep their values across the restart.
    assert_true (s_sample (text, "tether_requests_total{status=\"OK\"}") == 1);
    free (text);
    zsock_destroy (&warm);
    s_exporter_stop (fx);
}

//  ---------------------------------------------------------------------
//  (c) promtool check metrics accepts the output.

//  Path of promtool on PATH, or NULL.  Caller frees it.
static char *
s_promtool_path (void)
{
    const char *path = getenv ("PATH");
    char *copy = strdup (path ? path : "/usr/bin:/bin");
    char *found = NULL;
    char *save = NULL;
    for (char *dir = strtok_r (copy, ":", &save); dir && !found;
         dir = strtok_r (NULL, ":", &save)) {
        char *candidate = zsys_sprintf ("%s/promtool", dir);
        if (access (candidate, X_OK) == 0)
            found = candidate;
        else
            zstr_free (&candidate);
    }
    free (copy);
    return found;
}

static void
test_promtool (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    char *promtool = s_promtool_path ();
    if (!promtool) {
        fprintf (stderr, "promtool not found: skipping (Debian package "
                         "prometheus provides it)\n");
        skip ();
    }
    zsock_t *warm = s_exporter_join (fx);
    scenario_t scenario;
    s_scenario (fx, &scenario);
    const expect_t after[] = {{"tether_request_duration_seconds_count", 3},
                              {"tether_agents_by_edge{edge=\"edge-a:1\"}", 1}};
    s_wait_metrics (fx, after, 2);
    char *text = s_scrape (fx);

    char input[] = "/tmp/tether-promtool-XXXXXX";
    int fd = mkstemp (input);
    assert_true (fd >= 0);
    size_t len = strlen (text);
    assert_int_equal (write (fd, text, len), (ssize_t) len);
    assert_int_equal (lseek (fd, 0, SEEK_SET), 0);
    int out[2];
    assert_int_equal (pipe2 (out, O_CLOEXEC), 0);
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        dup2 (fd, STDIN_FILENO);
        dup2 (out[1], STDOUT_FILENO);
        dup2 (out[1], STDERR_FILENO);
        char *args[] = {promtool, (char *) "check", (char *) "metrics", NULL};
        execv (args[0], args);
        _exit (127);
    }
    close (out[1]);
    close (fd);
    unlink (input);
    char report[8192];
    size_t size = 0;
    int64_t deadline = zclock_mono () + 3 * S_DEADLINE_MS;
    while (zclock_mono () < deadline) {
        struct pollfd pfd = {out[0], POLLIN, 0};
        if (poll (&pfd, 1, 1000) <= 0)
            continue;
        ssize_t got = read (out[0], report + size, sizeof report - 1 - size);
        if (got <= 0)
            break;
        size += (size_t) got;
    }
    report[size] = 0;
    close (out[0]);
    int status = 0;
    assert_int_equal (waitpid (pid, &status, 0), pid);
    if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
        fprintf (stderr, "%s", text);
        fail_msg ("promtool check metrics failed (%d):\n%s", status, report);
    }
    free (text);
    free (promtool);
    zsock_destroy (&warm);
    s_exporter_stop (fx);
}

//  ---------------------------------------------------------------------
//  (d) A subscriber that never reads does not slow routing down.

static void
test_stall (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    //  A router with a small monitor queue, and a subscriber with small
    //  buffers that stops reading once it has joined.
    zactor_destroy (&fx->router);
    fx->cfg.monitor_hwm = 100;
    fx->router =
        sim_router_start (&fx->cfg, &fx->router_port, &fx->monitor_port);
    zsock_t *agent = sim_edge_new (&fx->rng, fx->router_port);
    zsock_t *client = sim_edge_new (&fx->rng, fx->router_port);
    sim_hello (agent, "edge-m:1", 1, NULL, 0);
    sim_hello (client, "edge-n:1", 2, NULL, 0);
    fx->sub = zsock_new (ZMQ_SUB);
    assert_non_null (fx->sub);
    zsock_set_rcvhwm (fx->sub, 10);
    zsock_set_rcvbuf (fx->sub, 4096);
    zsock_set_subscribe (fx->sub, "");
    assert_int_equal (
        zsock_connect (fx->sub, "tcp://127.0.0.1:%d", fx->monitor_port), 0);
    s_next_stats (fx);
    sim_subscribe (agent, "dev-m", 1);

    //  Two events per request: 5,000 requests, 64 in flight.
    const int total = 5000;
    const int window = 64;
    int sent = 0, finished = 0, iterations = 0;
    zpoller_t *poller = zpoller_new (agent, client, NULL);
    while (finished < total) {
        assert_true (++iterations < 50 * total);
        while (sent < total && sent - finished < window) {
            char request_id[32];
            snprintf (request_id, sizeof request_id, "s-%d", sent);
            sim_publish (client, 1 + (uint64_t) sent, request_id, "dev-m", "q",
                         1);
            sent++;
        }
        void *which = zpoller_wait (poller, S_DEADLINE_MS);
        assert_non_null (which);
        zmsg_t *msg = zmsg_recv (which);
        assert_non_null (msg);
        Wire__Envelope *env = NULL;
        assert_int_equal (wire_envelope_decode (zmsg_first (msg), &env), 0);
        if (env->command == WIRE__COMMAND__DELIVER) {
            uint64_t handle = 1000000 + sim_rand (&fx->rng) % 1000000;
            sim_command (agent, WIRE__COMMAND__BIND, handle, env->request_id, 0,
                         NULL, 0);
            sim_command (agent, WIRE__COMMAND__RESPONSE, handle,
                         env->request_id, 0, "a", 1);
            sim_command (agent, WIRE__COMMAND__END, handle, env->request_id, 0,
                         NULL, 0);
        } else if (env->command == WIRE__COMMAND__FINISH) {
            assert_int_equal (env->status, 0);
            finished++;
        }
        wire_envelope_free (&env);
        zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    assert_int_equal (zstr_send (fx->router, "STATS"), 0);
    uint64_t agents, requests, edges, malformed;
    assert_int_equal (
        zsock_recv (fx->router, "8888", &agents, &requests, &edges, &malformed),
        0);
    assert_int_equal (requests, 0);

    //  Now read: the subscriber lost events (a gap in seq), routing did
    //  not wait for it.
    uint64_t previous = fx->last_seq, gaps = 0, received = 0;
    int64_t deadline = zclock_mono () + S_DEADLINE_MS;
    zsock_set_rcvtimeo (fx->sub, 1000);
    while (gaps == 0 && zclock_mono () < deadline) {
        char *topic = NULL, *json = NULL;
        if (zstr_recvx (fx->sub, &topic, &json, NULL) < 2) {
            zstr_free (&topic);
            zstr_free (&json);
            break;
        }
        event_json_t *ev = event_json_parse (json, strlen (json));
        uint64_t seq = 0;
        assert_true (event_json_get_uint (ev, "seq", &seq));
        if (seq != previous + 1)
            gaps++;
        previous = seq;
        received++;
        event_json_destroy (&ev);
        zstr_free (&topic);
        zstr_free (&json);
    }
    if (gaps == 0)
        fail_msg ("the stalled subscriber lost nothing (%" PRIu64
                  " events read): the test did not stall it",
                  received);
    zsock_destroy (&client);
    zsock_destroy (&agent);
}


//  ---------------------------------------------------------------------
//  tether monitor, bounded by --count.

#ifdef TETHER_CLI_BIN
//  Run `args` with stdout and stderr into `out` (room `size`); returns its
//  exit status (waitpid's), failing the test past the deadline.
static int
s_run (char **args, char *out, size_t size)
{
    int fds[2];
    assert_int_equal (pipe2 (fds, O_CLOEXEC), 0);
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        dup2 (fds[1], STDOUT_FILENO);
        dup2 (fds[1], STDERR_FILENO);
        execv (args[0], args);
        _exit (127);
    }
    close (fds[1]);
    size_t used = 0;
    int64_t deadline = zclock_mono () + S_DEADLINE_MS;
    while (true) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0) {
            kill (pid, SIGKILL);
            waitpid (pid, NULL, 0);
            close (fds[0]);
            fail_msg ("%s %s did not end in time", args[0], args[1]);
        }
        struct pollfd pfd = {fds[0], POLLIN, 0};
        if (poll (&pfd, 1, (int) left) <= 0)
            continue;
        char buf[4096];
        ssize_t got = read (fds[0], buf, sizeof buf);
        if (got <= 0)
            break;
        size_t keep =
            (size_t) got < size - 1 - used ? (size_t) got : size - 1 - used;
        memcpy (out + used, buf, keep);
        used += keep;
    }
    out[used] = 0;
    close (fds[0]);
    int status = 0;
    assert_int_equal (waitpid (pid, &status, 0), pid);
    return status;
}

static void
test_cli (void **state)
{
    fixture_t *fx = (fixture_t *) *state;
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d",
              fx->monitor_port);
    zsock_t *warm = sim_edge_new (&fx->rng, fx->router_port);
    sim_hello (warm, "edge-w:1", 1, NULL, 0);
    static char out[1 << 16];

    //  --json: one object per line, with its topic, contiguous seq.
    char *json_args[] = {(char *) TETHER_CLI_BIN,
                         (char *) "monitor",
                         (char *) "--router",
                         endpoint,
                         (char *) "--json",
                         (char *) "--count",
                         (char *) "3",
                         NULL};
    int status = s_run (json_args, out, sizeof out);
    if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
        fail_msg ("tether monitor --json: status %d:\n%s", status, out);
    int lines = 0;
    uint64_t previous = 0;
    for (char *line = strtok (out, "\n"); line; line = strtok (NULL, "\n")) {
        event_json_t *ev = event_json_parse (line, strlen (line));
        if (!ev)
            fail_msg ("not JSON: %s", line);
        s_assert_str (ev, "topic", "stats");
        uint64_t seq = 0;
        assert_true (event_json_get_uint (ev, "seq", &seq));
        if (previous)
            assert_int_equal (seq, previous + 1);
        previous = seq;
        s_assert_uint (ev, "edges", 1);
        event_json_destroy (&ev);
        lines++;
    }
    assert_int_equal (lines, 3);

    //  --events with a topic filter: one logfmt-style line per event.
    char *event_args[] = {(char *) TETHER_CLI_BIN,
                          (char *) "monitor",
                          (char *) "--router",
                          endpoint,
                          (char *) "--events",
                          (char *) "--topic",
                          (char *) "stats",
                          (char *) "--count",
                          (char *) "2",
                          NULL};
    status = s_run (event_args, out, sizeof out);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    assert_non_null (strstr (out, "stats seq="));
    assert_non_null (strstr (out, " agents_per_edge={edge-w:1=0}"));
    assert_null (strstr (out, "mono_ms"));

    //  The summary, piped: plain blocks, no escape sequences.
    char *summary_args[] = {(char *) TETHER_CLI_BIN,
                            (char *) "monitor",
                            (char *) "--router",
                            endpoint,
                            (char *) "--count",
                            (char *) "3",
                            NULL};
    status = s_run (summary_args, out, sizeof out);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    if (!strstr (out, "agents 0   in flight 0") || !strstr (out, "edge-w:1")
        || strchr (out, '\033'))
        fail_msg ("unexpected summary:\n%s", out);

    //  Usage errors.
    char *bad_args[] = {(char *) TETHER_CLI_BIN, (char *) "monitor",
                        (char *) "--count", (char *) "none", NULL};
    status = s_run (bad_args, out, sizeof out);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 2);
    zsock_destroy (&warm);
}
#else
static void
test_cli (void **state)
{
    fprintf (stderr, "the tether CLI is not built: skipping\n");
    skip ();
}
#endif


int
main (int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_events, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_exporter, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_promtool, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_stall, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_cli, s_setup, s_teardown),
    };
    if (argc > 1) {
        //  One test by name, for CTest; promtool's absence is a skip.
        if (streq (argv[1], "test_promtool")) {
            char *promtool = s_promtool_path ();
            if (!promtool) {
                printf ("promtool not found: skipping (Debian package "
                        "prometheus provides it)\n");
                return S_SKIP;
            }
            free (promtool);
        }
        cmocka_set_test_filter (argv[1]);
    }
    return cmocka_run_group_tests (tests, NULL, NULL);
}
