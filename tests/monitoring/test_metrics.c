/*  =========================================================================
    test_metrics - the exporter's pure parts: event_json and metrics

    No sockets, no clock: events are fed as strings with made-up times,
    and the rendered exposition text is searched for exact sample lines.
    =========================================================================
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_json.h"
#include "metrics.h"

//  ---------------------------------------------------------------------
//  Helpers

static event_json_t *
s_parse (const char *text)
{
    return event_json_parse (text, strlen (text));
}

static int
s_feed (metrics_t *metrics, const char *topic, const char *body, int64_t now)
{
    return metrics_on_event (metrics, topic, body, strlen (body), now,
                             1700000000000 + now);
}

//  Feed an event with only a seq.
static int
s_seq (metrics_t *metrics, const char *topic, uint64_t seq)
{
    char body[64];
    snprintf (body, sizeof body, "{\"seq\":%llu,\"mono_ms\":1}",
              (unsigned long long) seq);
    return s_feed (metrics, topic, body, 0);
}

//  Assert that the rendered text holds the line `line` exactly.
static void
s_assert_line (metrics_t *metrics, int64_t now, const char *line)
{
    size_t size = 0;
    char *text = metrics_render (metrics, now, &size);
    assert_non_null (text);
    assert_int_equal (strlen (text), size);
    char *wanted = (char *) malloc (strlen (line) + 3);
    assert_non_null (wanted);
    sprintf (wanted, "\n%s\n", line);
    if (!strstr (text, wanted)) {
        fprintf (stderr, "%s", text);
        free (wanted);
        free (text);
        fail_msg ("no line '%s' in the exposition", line);
    }
    free (wanted);
    free (text);
}

//  ---------------------------------------------------------------------
//  event_json

static void
test_json_event (void **state)
{
    event_json_t *json = s_parse (
        " {\"seq\":42,\"mono_ms\":123456789,\"agent_id\":\"dev-\\\"1\\\"\","
        "\"labels\":{\"site\":\"caf\\u00e9\",\"emoji\":\"\\ud83d\\ude00\"},"
        "\"rejected\":true,\"neg\":-5,\"frac\":1.5e3,\"none\":null,"
        "\"list\":[1,\"two\",{}],\"big\":18446744073709551615} ");
    assert_non_null (json);
    assert_int_equal (event_json_type (json), EVENT_JSON_OBJECT);
    uint64_t value = 0;
    assert_true (event_json_get_uint (json, "seq", &value));
    assert_int_equal (value, 42);
    assert_true (event_json_get_uint (json, "big", &value));
    assert_true (value == UINT64_MAX);
    assert_false (event_json_get_uint (json, "neg", &value));
    double number = 0;
    assert_true (event_json_get_number (json, "neg", &number));
    assert_true (number == -5);
    assert_true (event_json_get_number (json, "frac", &number));
    assert_true (number == 1500);
    assert_false (event_json_get_uint (json, "frac", &value));
    assert_string_equal (event_json_get_string (json, "agent_id", NULL),
                         "dev-\"1\"");
    assert_string_equal (event_json_get_string (json, "missing", "x"), "x");
    assert_true (event_json_get_bool (json, "rejected", false));
    assert_false (event_json_get_bool (json, "seq", false));

    event_json_t *labels = event_json_get (json, "labels");
    assert_int_equal (event_json_size (labels), 2);
    assert_string_equal (event_json_key_at (labels, 0), "site");
    assert_string_equal (event_json_string (event_json_at (labels, 0)),
                         "caf\xc3\xa9");
    assert_string_equal (event_json_get_string (labels, "emoji", NULL),
                         "\xf0\x9f\x98\x80");
    event_json_t *list = event_json_get (json, "list");
    assert_int_equal (event_json_type (list), EVENT_JSON_ARRAY);
    assert_int_equal (event_json_size (list), 3);
    assert_null (event_json_key_at (list, 0));
    assert_int_equal (event_json_type (event_json_get (json, "none")),
                      EVENT_JSON_NULL);
    event_json_destroy (&json);
    assert_null (json);
    event_json_destroy (&json);
}

static void
test_json_malformed (void **state)
{
    const char *bad[] = {"",
                         " ",
                         "{",
                         "}",
                         "{\"a\":}",
                         "{\"a\" 1}",
                         "{\"a\":1,}",
                         "{a:1}",
                         "{\"a\":1} x",
                         "[1,2",
                         "\"open",
                         "\"bad \\q escape\"",
                         "\"ctl \x01\"",
                         "\"\\ud800\"",
                         "\"\\udc00\"",
                         "\"\\u12\"",
                         "01",
                         "-",
                         "1.",
                         "1e",
                         "tru",
                         "nul",
                         "{\"a\":1}{}",
                         "+1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        event_json_t *json = s_parse (bad[i]);
        if (json)
            fail_msg ("accepted malformed '%s'", bad[i]);
    }
    //  Too deep: refused without running out of stack.
    char deep[4096];
    size_t n = 0;
    for (int i = 0; i < 2000; i++)
        deep[n++] = '[';
    deep[n] = 0;
    assert_null (event_json_parse (deep, n));
    n = 0;
    for (int i = 0; i < EVENT_JSON_MAX_DEPTH; i++)
        deep[n++] = '[';
    for (int i = 0; i < EVENT_JSON_MAX_DEPTH; i++)
        deep[n++] = ']';
    event_json_t *ok = event_json_parse (deep, n);
    assert_non_null (ok);
    event_json_destroy (&ok);
    //  Not NUL-terminated: only `size` bytes are read.
    const char text[] = {'{', '}', '}'};
    ok = event_json_parse (text, 2);
    assert_non_null (ok);
    event_json_destroy (&ok);
    assert_null (event_json_parse (NULL, 0));
}

//  ---------------------------------------------------------------------
//  metrics: sequence numbers

static void
test_seq_contiguous (void **state)
{
    metrics_t *metrics = metrics_new (5000);
    assert_int_equal (s_seq (metrics, "stats", 7), METRICS_EVENT_FIRST);
    for (uint64_t seq = 8; seq < 100; seq++)
        assert_int_equal (s_seq (metrics, "agent.up", seq), 0);
    assert_int_equal (metrics_events_missed (metrics), 0);
    assert_int_equal (metrics_router_restarts (metrics), 0);
    assert_int_equal (metrics_events_received (metrics), 93);
    assert_int_equal (metrics_last_seq (metrics), 99);
    s_assert_line (metrics, 0, "tether_events_total{topic=\"agent.up\"} 92");
    s_assert_line (metrics, 0, "tether_events_total{topic=\"stats\"} 1");
    metrics_destroy (&metrics);
    assert_null (metrics);
}

static void
test_seq_gaps_and_restarts (void **state)
{
    metrics_t *metrics = metrics_new (5000);
    s_seq (metrics, "stats", 1);
    assert_int_equal (s_seq (metrics, "stats", 5), METRICS_EVENT_GAP);
    assert_int_equal (metrics_events_missed (metrics), 3);
    //  Back to 1: a new router incarnation, nothing missed.
    assert_int_equal (s_seq (metrics, "stats", 1), METRICS_EVENT_RESTART);
    assert_int_equal (metrics_events_missed (metrics), 3);
    assert_int_equal (metrics_router_restarts (metrics), 1);
    s_seq (metrics, "stats", 2);
    s_seq (metrics, "stats", 3);
    //  Back to 2: restarted, and its event 1 never arrived.
    assert_int_equal (s_seq (metrics, "stats", 2),
                      METRICS_EVENT_RESTART | METRICS_EVENT_GAP);
    assert_int_equal (metrics_events_missed (metrics), 4);
    assert_int_equal (metrics_router_restarts (metrics), 2);
    s_assert_line (metrics, 0, "tether_events_missed_total 4");
    s_assert_line (metrics, 0, "tether_router_restarts_total 2");

    //  Unreadable events change nothing but their own counter.
    assert_int_equal (s_feed (metrics, "stats", "{\"mono_ms\":1}", 0),
                      METRICS_EVENT_MALFORMED);
    assert_int_equal (s_feed (metrics, "stats", "not json", 0),
                      METRICS_EVENT_MALFORMED);
    assert_int_equal (s_feed (metrics, "stats", "{\"seq\":0}", 0),
                      METRICS_EVENT_MALFORMED);
    assert_int_equal (s_feed (metrics, "stats", "[1]", 0),
                      METRICS_EVENT_MALFORMED);
    assert_int_equal (metrics_on_event (metrics, NULL, "{\"seq\":3}", 9, 0, 0),
                      METRICS_EVENT_MALFORMED);
    assert_int_equal (metrics_on_event (metrics, "stats", NULL, 0, 0, 0),
                      METRICS_EVENT_MALFORMED);
    assert_int_equal (metrics_last_seq (metrics), 2);
    s_assert_line (metrics, 0, "tether_events_malformed_total 6");
    //  An unknown topic is counted as "other".
    assert_int_equal (s_seq (metrics, "weird\"topic", 3), 0);
    s_assert_line (metrics, 0, "tether_events_total{topic=\"other\"} 1");
    metrics_destroy (&metrics);
}

//  stats and edge.up carry router_incarnation: a change is a restart even
//  when seq grew, and is not counted twice when seq went back too.
static void
test_restart_by_incarnation (void **state)
{
    metrics_t *metrics = metrics_new (5000);
    assert_string_equal (metrics_router_incarnation (metrics), "");
    assert_int_equal (
        s_feed (metrics, "stats",
                "{\"seq\":1,\"router_incarnation\":\"00000000000000aa\","
                "\"malformed\":2}",
                0),
        METRICS_EVENT_FIRST);
    assert_string_equal (metrics_router_incarnation (metrics),
                         "00000000000000aa");
    assert_int_equal (s_seq (metrics, "agent.up", 2), 0);
    assert_int_equal (
        s_feed (metrics, "stats",
                "{\"seq\":3,\"router_incarnation\":\"00000000000000aa\","
                "\"malformed\":3}",
                0),
        0);
    s_assert_line (metrics, 0, "tether_malformed_frames_total 3");

    //  Seq grew, but the incarnation changed: the router restarted and
    //  its counters start over (its whole malformed count is added).
    assert_int_equal (
        s_feed (metrics, "stats",
                "{\"seq\":10,\"router_incarnation\":\"ffffffffffffffbb\","
                "\"malformed\":1}",
                0),
        METRICS_EVENT_RESTART | METRICS_EVENT_GAP);
    assert_int_equal (metrics_router_restarts (metrics), 1);
    assert_int_equal (metrics_events_missed (metrics), 6);
    assert_string_equal (metrics_router_incarnation (metrics),
                         "ffffffffffffffbb");
    s_assert_line (metrics, 0, "tether_malformed_frames_total 4");

    //  Seq went back and the incarnation changed: one restart.
    assert_int_equal (
        s_feed (metrics, "edge.up",
                "{\"seq\":1,\"router_incarnation\":\"00000000000000cc\"}", 0),
        METRICS_EVENT_RESTART);
    assert_int_equal (metrics_router_restarts (metrics), 2);
    assert_int_equal (
        s_feed (metrics, "stats",
                "{\"seq\":2,\"router_incarnation\":\"00000000000000cc\"}", 0),
        0);

    //  Seq went back on an event without the field: the incarnation is
    //  unknown until the next stats, which is then no second restart.
    assert_int_equal (s_seq (metrics, "agent.up", 1), METRICS_EVENT_RESTART);
    assert_string_equal (metrics_router_incarnation (metrics), "");
    assert_int_equal (
        s_feed (metrics, "stats",
                "{\"seq\":2,\"router_incarnation\":\"00000000000000dd\"}", 0),
        0);
    assert_int_equal (metrics_router_restarts (metrics), 3);

    //  Values that are not a short string are ignored.
    assert_int_equal (
        s_feed (metrics, "stats", "{\"seq\":3,\"router_incarnation\":5}", 0),
        0);
    assert_int_equal (s_feed (metrics, "stats",
                              "{\"seq\":4,\"router_incarnation\":"
                              "\"0123456789abcdef0123456789abcdef0\"}",
                              0),
                      0);
    assert_int_equal (
        s_feed (metrics, "stats", "{\"seq\":5,\"router_incarnation\":\"\"}", 0),
        0);
    assert_string_equal (metrics_router_incarnation (metrics),
                         "00000000000000dd");
    assert_int_equal (metrics_router_restarts (metrics), 3);
    s_assert_line (metrics, 0, "tether_router_restarts_total 3");
    metrics_destroy (&metrics);
}

static void
test_router_up (void **state)
{
    metrics_t *metrics = metrics_new (3000);
    s_assert_line (metrics, 0, "tether_router_up 0");
    s_assert_line (metrics, 0, "tether_exporter_up 1");
    s_assert_line (metrics, 0,
                   "tether_router_last_event_timestamp_seconds 0.000");
    s_feed (metrics, "stats", "{\"seq\":1}", 10000);
    assert_true (metrics_router_up (metrics, 13000));
    assert_false (metrics_router_up (metrics, 13001));
    s_assert_line (metrics, 12000, "tether_router_up 1");
    s_assert_line (metrics, 14000, "tether_router_up 0");
    s_assert_line (metrics, 0,
                   "tether_router_last_event_timestamp_seconds "
                   "1700000010.000");
    metrics_destroy (&metrics);
}

//  ---------------------------------------------------------------------
//  metrics: requests and stats

static void
test_requests (void **state)
{
    metrics_t *metrics = metrics_new (5000);
    s_feed (metrics, "request.start",
            "{\"seq\":1,\"request_id\":\"r1\",\"bytes\":10}", 0);
    s_feed (metrics, "request.end",
            "{\"seq\":2,\"status\":0,\"code\":\"OK\",\"duration_ms\":3,"
            "\"bytes_to_agent\":10,\"bytes_to_client\":200}",
            0);
    s_feed (metrics, "request.end",
            "{\"seq\":3,\"status\":5,\"code\":\"NOT_FOUND\",\"duration_ms\":0,"
            "\"bytes_to_agent\":0,\"bytes_to_client\":0,\"rejected\":true}",
            0);
    s_feed (metrics, "request.end",
            "{\"seq\":4,\"status\":4,\"duration_ms\":70000,"
            "\"bytes_to_agent\":5}",
            0);
    //  Only the code; an out-of-range status counts as UNKNOWN.
    s_feed (metrics, "request.end",
            "{\"seq\":5,\"code\":\"UNAVAILABLE\",\"duration_ms\":150}", 0);
    s_feed (metrics, "request.end", "{\"seq\":6,\"status\":99}", 0);
    s_feed (metrics, "agent.superseded", "{\"seq\":7}", 0);
    s_feed (metrics, "edge.down", "{\"seq\":8}", 0);

    s_assert_line (metrics, 0, "tether_requests_started_total 1");
    s_assert_line (metrics, 0, "tether_requests_total{status=\"OK\"} 1");
    s_assert_line (metrics, 0, "tether_requests_total{status=\"NOT_FOUND\"} 1");
    s_assert_line (metrics, 0,
                   "tether_requests_total{status=\"DEADLINE_EXCEEDED\"} 1");
    s_assert_line (metrics, 0,
                   "tether_requests_total{status=\"UNAVAILABLE\"} 1");
    s_assert_line (metrics, 0, "tether_requests_total{status=\"UNKNOWN\"} 1");
    s_assert_line (metrics, 0,
                   "tether_requests_total{status=\"UNAUTHENTICATED\"} 0");
    //  Durations 0, 0, 3, 150 and 70000 ms.
    s_assert_line (metrics, 0,
                   "tether_request_duration_seconds_bucket{le=\"0.001\"} 2");
    s_assert_line (metrics, 0,
                   "tether_request_duration_seconds_bucket{le=\"0.0025\"} 2");
    s_assert_line (metrics, 0,
                   "tether_request_duration_seconds_bucket{le=\"0.005\"} 3");
    s_assert_line (metrics, 0,
                   "tether_request_duration_seconds_bucket{le=\"0.1\"} 3");
    s_assert_line (metrics, 0,
                   "tether_request_duration_seconds_bucket{le=\"0.25\"} 4");
    s_assert_line (metrics, 0,
                   "tether_request_duration_seconds_bucket{le=\"60\"} 4");
    s_assert_line (metrics, 0,
                   "tether_request_duration_seconds_bucket{le=\"+Inf\"} 5");
    s_assert_line (metrics, 0, "tether_request_duration_seconds_count 5");
    s_assert_line (metrics, 0, "tether_request_duration_seconds_sum 70.153");
    s_assert_line (metrics, 0,
                   "tether_request_bytes_total{direction=\"to_agent\"} 15");
    s_assert_line (metrics, 0,
                   "tether_request_bytes_total{direction=\"to_client\"} 200");
    s_assert_line (metrics, 0, "tether_agents_superseded_total 1");
    s_assert_line (metrics, 0, "tether_edges_lost_total 1");
    metrics_destroy (&metrics);
}

static void
test_stats (void **state)
{
    metrics_t *metrics = metrics_new (5000);
    s_feed (metrics, "stats",
            "{\"seq\":1,\"agents\":3,\"requests\":2,\"waiting\":1,"
            "\"edges\":2,\"agents_per_edge\":{\"zeta:1\":1,"
            "\"al\\\"pha\\\\x\":2},\"malformed\":4}",
            0);
    s_assert_line (metrics, 0, "tether_agents_connected 3");
    s_assert_line (metrics, 0, "tether_requests_in_flight 2");
    s_assert_line (metrics, 0, "tether_requests_waiting 1");
    s_assert_line (metrics, 0, "tether_edges_up 2");
    s_assert_line (metrics, 0,
                   "tether_agents_by_edge{edge=\"al\\\"pha\\\\x\"} 2\n"
                   "tether_agents_by_edge{edge=\"zeta:1\"} 1");
    s_assert_line (metrics, 0, "tether_malformed_frames_total 4");

    //  The router's counter grows: only the growth is added.  Edges that
    //  are gone disappear.
    s_feed (metrics, "stats",
            "{\"seq\":2,\"agents\":0,\"requests\":0,\"waiting\":0,"
            "\"edges\":1,\"agents_per_edge\":{\"zeta:1\":0},"
            "\"malformed\":6}",
            0);
    s_assert_line (metrics, 0, "tether_malformed_frames_total 6");
    s_assert_line (metrics, 0, "tether_agents_by_edge{edge=\"zeta:1\"} 0");
    size_t size;
    char *text = metrics_render (metrics, 0, &size);
    assert_null (strstr (text, "pha"));
    free (text);

    //  A restarted router counts from 0 again: its whole count is added.
    s_feed (metrics, "stats", "{\"seq\":1,\"malformed\":1}", 0);
    s_assert_line (metrics, 0, "tether_malformed_frames_total 7");
    s_feed (metrics, "stats", "{\"seq\":2,\"malformed\":1}", 0);
    s_assert_line (metrics, 0, "tether_malformed_frames_total 7");
    metrics_destroy (&metrics);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_json_event),
        cmocka_unit_test (test_json_malformed),
        cmocka_unit_test (test_seq_contiguous),
        cmocka_unit_test (test_seq_gaps_and_restarts),
        cmocka_unit_test (test_restart_by_incarnation),
        cmocka_unit_test (test_router_up),
        cmocka_unit_test (test_requests),
        cmocka_unit_test (test_stats),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
