/*  =========================================================================
    tether-exporter - Prometheus metrics from the router's monitor events

    Subscribes to the router's PUB socket (--monitor) and serves the text
    exposition format on GET /metrics (--listen), with libmicrohttpd.

    One thread, no locks: libmicrohttpd runs in its "external select" mode
    and the main loop waits, in one zmq_poll, on the SUB socket, a signalfd
    for SIGINT/SIGTERM and the HTTP sockets libmicrohttpd names with
    MHD_get_fdset (zmq_poll accepts plain file descriptors), then lets
    libmicrohttpd do its work with MHD_run.  A scrape therefore sees the
    metrics between two events, never half an update.  The signals are
    blocked before any thread (ZeroMQ's I/O threads included) exists, so
    they reach only the signalfd.

    Exit codes: 0 after SIGINT/SIGTERM, 1 when it could not listen or
    connect, 2 on a bad setting or argument.
    =========================================================================
*/
#include <czmq.h>
#include <microhttpd.h>

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metrics.h"
#include "tconfig.h"
#include "tlog.h"

//  Events handled per wake-up at most, so a flood cannot starve scrapes.
#define S_BATCH 1000
//  Default receive high-water mark of the SUB socket, events.
#define S_SUB_HWM_DEFAULT 100000
//  Upper bound of the setting (ZMQ takes an int).
#define S_SUB_HWM_MAX 100000000
//  Longest poll, ms: the router's liveness is judged at least this often.
#define S_TICK_MS 1000
//  Gap warnings are printed at most this often, ms.
#define S_GAP_LOG_MS   10000
#define S_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct
{
    char *monitor;     //  router PUB endpoint(s)
    char *listen;      //  HOST:PORT for HTTP
    char *log_level;   //  debug, info, warn, error, off
    uint32_t stale_ms; //  router counts as down after this
    uint32_t sub_hwm;  //  events queued before the SUB drops more
} settings_t;

typedef struct
{
    settings_t settings;     //  what we were told
    metrics_t *metrics;      //  the state every scrape renders
    zsock_t *sub;            //  SUB to the router's PUB
    struct MHD_Daemon *http; //  the /metrics server
    int signal_fd;           //  SIGINT, SIGTERM
    zmq_pollitem_t *items;   //  poll set, rebuilt each iteration
    size_t items_room;       //  entries allocated in items
    bool terminated;         //  a signal came
    bool router_up;          //  as last logged
    uint64_t missed_logged;  //  missed count at the last gap line
    int64_t gap_logged_ms;   //  when the last gap line was printed
    uint64_t scrapes;        //  /metrics answered
} self_t;


//  ---------------------------------------------------------------------
//  Settings

static size_t
s_options (settings_t *settings, tconfig_option_t *options)
{
    const tconfig_option_t table[] = {
        {"exporter/monitor", "TETHER_MONITOR", "--monitor", TCONFIG_STRING,
         &settings->monitor, 0, 0,
         "router monitor (PUB) endpoint to subscribe to"},
        {"exporter/listen", "TETHER_EXPORTER_LISTEN", "--listen",
         TCONFIG_STRING, &settings->listen, 0, 0,
         "HOST:PORT to serve /metrics on (port 0: any free port)"},
        {"exporter/stale_after", "TETHER_EXPORTER_STALE_AFTER", "--stale-after",
         TCONFIG_DURATION, &settings->stale_ms, 1, 0,
         "tether_router_up is 0 when no event came for this long"},
        {"exporter/sub_hwm", "TETHER_EXPORTER_SUB_HWM", "--sub-hwm",
         TCONFIG_UINT, &settings->sub_hwm, 1, S_SUB_HWM_MAX,
         "events queued unread before more are dropped (counted as missed)"},
        {"exporter/log_level", "TETHER_LOG_LEVEL", "--log-level",
         TCONFIG_STRING, &settings->log_level, 0, 0,
         "debug, info, warn, error or off"}};
    size_t count = sizeof table / sizeof table[0];
    memcpy (options, table, sizeof table);
    return count;
}

static void
s_usage (FILE *out, const tconfig_option_t *options, size_t count)
{
    fprintf (out, "usage: tether-exporter [--monitor ENDPOINT] [--listen "
                  "HOST:PORT] [--config FILE]\n"
                  "\n"
                  "Subscribes to a Tether router's monitor events and serves\n"
                  "them as Prometheus metrics on GET /metrics.  Settings come\n"
                  "from, lowest precedence first: defaults, the config file\n"
                  "(--config FILE or env TETHER_EXPORTER_CONFIG), environment\n"
                  "variables, flags.\n"
                  "\n"
                  "settings:\n");
    tconfig_print_help (out, options, count);
}

//  Resolve "HOST:PORT" ("[V6]:PORT", ":PORT" = every address) into
//  `addr`.  Returns 0, or -1 with a reason in `err`.
static int
s_resolve_listen (const char *listen,
                  struct sockaddr_storage *addr,
                  socklen_t *addr_len,
                  char *err,
                  size_t err_size)
{
    const char *colon = listen ? strrchr (listen, ':') : NULL;
    if (!colon || colon[1] == 0) {
        snprintf (err, err_size, "--listen: '%s' is not HOST:PORT",
                  listen ? listen : "");
        return -1;
    }
    char host[256];
    size_t host_len = (size_t) (colon - listen);
    if (host_len >= 2 && listen[0] == '[' && colon[-1] == ']') {
        listen++;
        host_len -= 2;
    }
    if (host_len >= sizeof host) {
        snprintf (err, err_size, "--listen: host too long");
        return -1;
    }
    memcpy (host, listen, host_len);
    host[host_len] = 0;

    struct addrinfo hints;
    memset (&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    struct addrinfo *found = NULL;
    int rc = getaddrinfo (host_len ? host : NULL, colon + 1, &hints, &found);
    if (rc != 0 || !found) {
        snprintf (err, err_size, "--listen: cannot resolve '%s': %s", listen,
                  gai_strerror (rc));
        return -1;
    }
    memcpy (addr, found->ai_addr, found->ai_addrlen);
    *addr_len = found->ai_addrlen;
    freeaddrinfo (found);
    return 0;
}


//  ---------------------------------------------------------------------
//  HTTP

static void
s_http_log (void *cls, const char *format, va_list args)
{
    char text[512];
    vsnprintf (text, sizeof text, format, args);
    size_t len = strlen (text);
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = 0;
    char quoted[600];
    tlog (TLOG_WARN, "http", "detail=%s",
          tlog_quote (text, quoted, sizeof quoted));
}

static enum MHD_Result
s_http_text (struct MHD_Connection *connection,
             unsigned int status,
             const char *text)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (
        strlen (text), (void *) text, MHD_RESPMEM_PERSISTENT);
    if (!response)
        return MHD_NO;
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE,
                             "text/plain; charset=utf-8");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header (response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return rc;
}

static enum MHD_Result
s_http_request (void *cls,
                struct MHD_Connection *connection,
                const char *url,
                const char *method,
                const char *version,
                const char *upload_data,
                size_t *upload_data_size,
                void **con_cls)
{
    self_t *self = (self_t *) cls;
    if (strcmp (method, MHD_HTTP_METHOD_GET) != 0
        && strcmp (method, MHD_HTTP_METHOD_HEAD) != 0)
        return s_http_text (connection, MHD_HTTP_METHOD_NOT_ALLOWED,
                            "only GET and HEAD\n");
    if (strcmp (url, "/metrics") == 0) {
        size_t size = 0;
        char *text = metrics_render (self->metrics, zclock_mono (), &size);
        struct MHD_Response *response =
            MHD_create_response_from_buffer (size, text, MHD_RESPMEM_MUST_FREE);
        if (!response) {
            free (text);
            return MHD_NO;
        }
        MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE,
                                 S_CONTENT_TYPE);
        enum MHD_Result rc =
            MHD_queue_response (connection, MHD_HTTP_OK, response);
        MHD_destroy_response (response);
        self->scrapes++;
        return rc;
    }
    if (strcmp (url, "/") == 0)
        return s_http_text (connection, MHD_HTTP_OK,
                            "tether-exporter: metrics at /metrics\n");
    return s_http_text (connection, MHD_HTTP_NOT_FOUND, "not found\n");
}


//  ---------------------------------------------------------------------
//  Events

static void
s_handle_event (self_t *self, zmsg_t *msg)
{
    char *topic = zmsg_popstr (msg);
    zframe_t *body = zmsg_pop (msg);
    int64_t now = zclock_mono ();
    int notice = metrics_on_event (
        self->metrics, topic, body ? zframe_data (body) : NULL,
        body ? zframe_size (body) : 0, now, zclock_time ());
    if (notice & METRICS_EVENT_MALFORMED) {
        if (tlog_enabled (TLOG_DEBUG)) {
            char qtopic[160];
            tlog (TLOG_DEBUG, "unreadable event dropped", "topic=%s",
                  tlog_quote (topic ? topic : "", qtopic, sizeof qtopic));
        }
    } else {
        uint64_t seq = metrics_last_seq (self->metrics);
        char qinc[80];
        tlog_quote (metrics_router_incarnation (self->metrics), qinc,
                    sizeof qinc);
        if (notice & METRICS_EVENT_FIRST)
            tlog (TLOG_INFO, "router seen", "seq=%" PRIu64 " incarnation=%s",
                  seq, qinc);
        if (notice & METRICS_EVENT_RESTART)
            tlog (TLOG_INFO, "router restarted",
                  "seq=%" PRIu64 " incarnation=%s restarts=%" PRIu64, seq, qinc,
                  metrics_router_restarts (self->metrics));
        if (!self->router_up && !(notice & METRICS_EVENT_FIRST))
            tlog (TLOG_INFO, "router heard again", "seq=%" PRIu64, seq);
        self->router_up = true;
        if (tlog_enabled (TLOG_DEBUG)) {
            char qtopic[160];
            tlog (TLOG_DEBUG, "event", "topic=%s seq=%" PRIu64,
                  tlog_quote (topic, qtopic, sizeof qtopic), seq);
        }
    }
    //  Missed events: one line per S_GAP_LOG_MS at most, with the count.
    uint64_t missed = metrics_events_missed (self->metrics);
    if (missed > self->missed_logged
        && (self->gap_logged_ms == 0
            || now - self->gap_logged_ms >= S_GAP_LOG_MS)) {
        tlog (TLOG_WARN, "monitor events missed",
              "missed=%" PRIu64 " total=%" PRIu64, missed - self->missed_logged,
              missed);
        self->missed_logged = missed;
        self->gap_logged_ms = now;
    }
    zstr_free (&topic);
    zframe_destroy (&body);
}

static void
s_drain_events (self_t *self)
{
    for (int i = 0; i < S_BATCH; i++) {
        zmsg_t *msg = zmsg_recv (self->sub);
        if (!msg)
            break; //  EAGAIN: nothing more (rcvtimeo is 0)
        s_handle_event (self, msg);
        zmsg_destroy (&msg);
    }
}

static void
s_check_router (self_t *self, int64_t now)
{
    if (!self->router_up || metrics_events_received (self->metrics) == 0)
        return;
    if (!metrics_router_up (self->metrics, now)) {
        self->router_up = false;
        tlog (TLOG_WARN, "router silent", "stale_after_ms=%" PRIu32,
              self->settings.stale_ms);
    }
}


//  ---------------------------------------------------------------------
//  Main loop

//  Fill the poll set: SUB, signalfd, then every HTTP descriptor.  Returns
//  the number of items, and the poll timeout in *timeout_ms.
static int
s_poll_set (self_t *self, long *timeout_ms)
{
    fd_set readers, writers, errors;
    FD_ZERO (&readers);
    FD_ZERO (&writers);
    FD_ZERO (&errors);
    MHD_socket max_fd = 0;
    MHD_get_fdset (self->http, &readers, &writers, &errors, &max_fd);
    size_t need = 2 + (size_t) max_fd + 1;
    if (need > self->items_room) {
        self->items = (zmq_pollitem_t *) realloc (
            self->items, need * sizeof (zmq_pollitem_t));
        assert (self->items);
        self->items_room = need;
    }
    int count = 0;
    self->items[count++] =
        (zmq_pollitem_t){zsock_resolve (self->sub), 0, ZMQ_POLLIN, 0};
    self->items[count++] =
        (zmq_pollitem_t){NULL, self->signal_fd, ZMQ_POLLIN, 0};
    for (int fd = 0; fd <= max_fd; fd++) {
        short events = 0;
        if (FD_ISSET (fd, &readers))
            events |= ZMQ_POLLIN;
        if (FD_ISSET (fd, &writers))
            events |= ZMQ_POLLOUT;
        if (FD_ISSET (fd, &errors))
            events |= ZMQ_POLLERR;
        if (events)
            self->items[count++] = (zmq_pollitem_t){NULL, fd, events, 0};
    }
    *timeout_ms = S_TICK_MS;
    MHD_UNSIGNED_LONG_LONG http_timeout;
    if (MHD_get_timeout (self->http, &http_timeout) == MHD_YES
        && http_timeout < (MHD_UNSIGNED_LONG_LONG) *timeout_ms)
        *timeout_ms = (long) http_timeout;
    return count;
}

static void
s_run (self_t *self)
{
    while (!self->terminated) {
        long timeout_ms;
        int count = s_poll_set (self, &timeout_ms);
        int rc = zmq_poll (self->items, count, timeout_ms);
        if (rc == -1 && errno != EINTR) {
            tlog (TLOG_ERROR, "poll failed", "error=\"%s\"",
                  zmq_strerror (errno));
            break;
        }
        if (rc > 0 && (self->items[1].revents & ZMQ_POLLIN)) {
            struct signalfd_siginfo info;
            if (read (self->signal_fd, &info, sizeof info)
                == (ssize_t) sizeof info) {
                tlog (TLOG_INFO, "exporter stopping", "signal=%s",
                      info.ssi_signo == SIGTERM ? "TERM" : "INT");
                self->terminated = true;
            }
        }
        if (rc > 0 && (self->items[0].revents & ZMQ_POLLIN))
            s_drain_events (self);
        MHD_run (self->http);
        s_check_router (self, zclock_mono ());
    }
}

int
main (int argc, char **argv)
{
    //  Before any thread exists, so every thread inherits the mask.
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &signals, NULL);
    signal (SIGPIPE, SIG_IGN);
    zsys_handler_set (NULL);

    self_t self_data;
    memset (&self_data, 0, sizeof self_data);
    self_t *self = &self_data;
    self->signal_fd = -1;
    self->settings.monitor = strdup ("tcp://127.0.0.1:7101");
    self->settings.listen = strdup ("0.0.0.0:9464");
    self->settings.log_level = strdup ("info");
    self->settings.stale_ms = 5000;
    self->settings.sub_hwm = S_SUB_HWM_DEFAULT;
    assert (self->settings.monitor && self->settings.listen
            && self->settings.log_level);
    tconfig_option_t options[8];
    size_t count = s_options (&self->settings, options);

    int rc = 0;
    bool help = false;
    char error[512] = "";
    if (tconfig_load (options, count, argc, argv, "TETHER_EXPORTER_CONFIG",
                      &help, error, sizeof error)) {
        fprintf (stderr, "tether-exporter: %s\n", error);
        rc = 2;
        goto cleanup;
    }
    if (help) {
        s_usage (stdout, options, count);
        goto cleanup;
    }
    tlog_level_t level;
    if (tlog_level_parse (self->settings.log_level, &level)) {
        fprintf (stderr,
                 "tether-exporter: --log-level: '%s' is not one of "
                 "debug, info, warn, error, off\n",
                 self->settings.log_level);
        rc = 2;
        goto cleanup;
    }
    tlog_setup (level, "tether-exporter");
    struct sockaddr_storage addr;
    socklen_t addr_len = 0;
    if (s_resolve_listen (self->settings.listen, &addr, &addr_len, error,
                          sizeof error)) {
        fprintf (stderr, "tether-exporter: %s\n", error);
        rc = 2;
        goto cleanup;
    }
    if (!*self->settings.monitor) {
        fprintf (stderr, "tether-exporter: --monitor is empty\n");
        rc = 2;
        goto cleanup;
    }

    self->signal_fd = signalfd (-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
    assert (self->signal_fd >= 0);
    self->metrics = metrics_new (self->settings.stale_ms);

    self->sub = zsock_new (ZMQ_SUB);
    assert (self->sub);
    zsock_set_rcvhwm (self->sub, (int) self->settings.sub_hwm);
    zsock_set_linger (self->sub, 0);
    zsock_set_rcvtimeo (self->sub, 0);
    zsock_set_subscribe (self->sub, "");
    if (zsock_attach (self->sub, self->settings.monitor, false)) {
        char qmon[300];
        tlog (TLOG_ERROR, "cannot connect to the monitor endpoint",
              "monitor=%s",
              tlog_quote (self->settings.monitor, qmon, sizeof qmon));
        rc = 1;
        goto cleanup;
    }

    unsigned int flags = MHD_USE_ERROR_LOG;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    self->http = MHD_start_daemon (
        flags, 0, NULL, NULL, s_http_request, self, MHD_OPTION_EXTERNAL_LOGGER,
        s_http_log, (void *) self, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *) &addr, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int) 64, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 10,
        MHD_OPTION_END);
    if (!self->http) {
        char qlisten[300];
        tlog (TLOG_ERROR, "cannot listen", "listen=%s",
              tlog_quote (self->settings.listen, qlisten, sizeof qlisten));
        rc = 1;
        goto cleanup;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info (self->http, MHD_DAEMON_INFO_BIND_PORT);
    char qlisten[300], qmon[300];
    tlog (TLOG_INFO, "exporter listening",
          "listen=%s port=%u monitor=%s pid=%d",
          tlog_quote (self->settings.listen, qlisten, sizeof qlisten),
          info ? (unsigned int) info->port : 0u,
          tlog_quote (self->settings.monitor, qmon, sizeof qmon),
          (int) getpid ());

    s_run (self);

cleanup:
    if (self->http)
        MHD_stop_daemon (self->http);
    zsock_destroy (&self->sub);
    metrics_destroy (&self->metrics);
    if (self->signal_fd >= 0)
        close (self->signal_fd);
    free (self->items);
    tconfig_free_strings (options, count);
    return rc;
}
