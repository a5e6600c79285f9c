/*  =========================================================================
    metrics - Prometheus counters and gauges folded from router events

    Pure: no sockets, no clock reads.  The exporter hands every monitor
    event it receives ([topic][json]) to metrics_on_event with the time,
    and renders the text exposition format (version 0.0.4) on each scrape
    with metrics_render.  Counters are the exporter's own, so they only
    grow, across router restarts too; gauges mirror the router's latest
    `stats` event.  docs/monitoring.md lists every metric and its source.

    Sequence numbers: every event carries "seq", contiguous from 1 per
    router incarnation.  A jump forward of more than one counts the
    skipped events as missed (tether_events_missed_total).  A seq that does
    not grow means the router restarted: it counts a restart, and the
    events of the new incarnation before this one (seq - 1) as missed.
    `stats` and `edge.up` also carry "router_incarnation": one that
    differs from the last seen counts a restart too, even when seq grew
    (the old incarnation's last events and the new one's first were lost
    together, which by seq alone looks like a plain gap).
    =========================================================================
*/
#ifndef TETHER_METRICS_H
#define TETHER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _metrics_t metrics_t;

//  What metrics_on_event noticed, as bits, for the caller's log lines.
#define METRICS_EVENT_FIRST     1 //  the first event seen at all
#define METRICS_EVENT_GAP       2 //  events were missed before this one
#define METRICS_EVENT_RESTART   4 //  the router restarted (seq reset)
#define METRICS_EVENT_MALFORMED 8 //  not a readable event: ignored

//  Create an empty set of metrics.  The router counts as up while its
//  last event is at most `stale_ms` old.  Never returns NULL.
metrics_t *metrics_new (uint32_t stale_ms);

//  Destroy the metrics and null the pointer.  Does nothing when *self_p
//  is NULL.
void metrics_destroy (metrics_t **self_p);

//  Account one event.  `topic` (NUL-terminated) and `body` (`size`
//  bytes of JSON) are borrowed.  `now_mono_ms` is a monotonic clock,
//  `now_unix_ms` the wall clock.  Returns a combination of the
//  METRICS_EVENT_* bits (0: an ordinary event).
int metrics_on_event (metrics_t *self,
                      const char *topic,
                      const void *body,
                      size_t size,
                      int64_t now_mono_ms,
                      int64_t now_unix_ms);

//  Render the exposition text.  Returns a NUL-terminated heap buffer
//  (caller owns it; free it with free) and sets *size to its length
//  without the NUL.
char *metrics_render (metrics_t *self, int64_t now_mono_ms, size_t *size);

//  Counters, for log lines and tests.
uint64_t metrics_events_missed (metrics_t *self);
uint64_t metrics_router_restarts (metrics_t *self);
uint64_t metrics_events_received (metrics_t *self);
//  True when an event came at most stale_ms before `now_mono_ms`.
bool metrics_router_up (metrics_t *self, int64_t now_mono_ms);

//  The router's incarnation as its last stats or edge.up event gave it,
//  or "" when not known (none yet, or the router restarted since).
//  Borrowed, valid until the next metrics_on_event.
const char *metrics_router_incarnation (metrics_t *self);

//  The seq of the last event, 0 before any.
uint64_t metrics_last_seq (metrics_t *self);

#endif
