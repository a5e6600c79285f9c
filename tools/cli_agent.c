/*  =========================================================================
    cli_agent - `tether agent`: a ready-made agent

    Answers the built-in calls
        echo    the payload back, as one message
        ping    "pong"
        info    {"agent_id", "hostname", "sysname", "release", "machine",
                 "uptime_s"} as JSON
    and, with --handlers DIR, runs DIR/CALL for any call whose name is a
    valid handler name and names an executable there (cli_exec).  Handlers
    win over built-ins of the same name.  Anything else is UNIMPLEMENTED.

    SIGINT and SIGTERM are blocked in every thread before the library
    starts any; a thread of ours waits for them with sigwait and stops the
    agent, which cancels running handlers.
    =========================================================================
*/
#include "cli.h"
#include "cli_security.h"
#include "cli_exec.h"
#include "cli_json.h"
#include "cli_parse.h"
#include "tlog.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

typedef struct
{
    tether_agent_t *agent; //  The agent
    cli_exec_t *exec;      //  Handler runner, or NULL
    sigset_t signals;      //  SIGINT, SIGTERM
} s_self_t;

static void
s_info (tether_agent_t *agent, tether_request_t **request_p)
{
    char hostname[256] = "";
    gethostname (hostname, sizeof hostname - 1);
    struct utsname uts;
    memset (&uts, 0, sizeof uts);
    uname (&uts);
    struct sysinfo si;
    memset (&si, 0, sizeof si);
    sysinfo (&si);
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    const char *keys[] = {"agent_id", "hostname", "sysname", "release",
                          "machine"};
    const char *values[] = {tether_agent_id (agent), hostname, uts.sysname,
                            uts.release, uts.machine};
    fputc ('{', out);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        fprintf (out, "\"%s\":", keys[i]);
        cli_json_string (out, (const uint8_t *) values[i], strlen (values[i]));
        fputc (',', out);
    }
    fprintf (out, "\"uptime_s\":%ld}\n", si.uptime);
    fclose (out);
    tether_request_send (*request_p, text, size);
    free (text);
    tether_request_end (request_p, TETHER_OK, NULL);
}

static void
s_handle (tether_agent_t *agent, tether_request_t *request, void *arg)
{
    s_self_t *self = (s_self_t *) arg;
    const char *call = tether_request_call (request);
    if (self->exec && cli_exec_has (self->exec, call)) {
        cli_exec_start (self->exec, tether_agent_id (agent), &request);
        return;
    }
    if (strcmp (call, "echo") == 0) {
        size_t size;
        const uint8_t *payload = tether_request_payload (request, &size);
        tether_request_send (request, payload, size);
        tether_request_end (&request, TETHER_OK, NULL);
    } else if (strcmp (call, "ping") == 0) {
        tether_request_send (request, "pong", 4);
        tether_request_end (&request, TETHER_OK, NULL);
    } else if (strcmp (call, "info") == 0)
        s_info (agent, &request);
    else {
        char message[320], quoted[300];
        snprintf (message, sizeof message, "no handler for call %s",
                  tlog_quote (call, quoted, sizeof quoted));
        tether_request_end (&request, TETHER_UNIMPLEMENTED, message);
    }
}

static void *
s_signal_thread (void *arg)
{
    s_self_t *self = (s_self_t *) arg;
    int signal_number = 0;
    sigwait (&self->signals, &signal_number);
    tlog (TLOG_INFO, "stopping", "signal=%d", signal_number);
    tether_agent_stop (self->agent);
    return NULL;
}

static void
s_agent_usage (FILE *out)
{
    fprintf (
        out,
        "usage: tether agent --id ID [--label k=v]... [--handlers DIR]\n"
        "                    [--edge host:port[,host:port...]]\n"
        "                    [--backoff-initial 500ms] [--backoff-max 30s]\n"
        "                    [--superseded-delay 10s] [--handler-timeout 0]\n"
        "                    [--max-handlers %d] [--rotate-delay 1s]\n"
        "                    [--keepalive 30s]\n"
        "                    [--log-level info]\n"
        "\n"
        "Keeps a subscription open to an edge (the next address on each\n"
        "failure, reconnecting with capped exponential backoff and full\n"
        "jitter) and answers calls:\n"
        "  echo   the payload back      ping   \"pong\"\n"
        "  info   hostname, uname and uptime as JSON\n"
        "  X      DIR/X from --handlers, when X matches [A-Za-z0-9._-]+:\n"
        "         payload on stdin, stdout streamed back; exit 0 -> OK,\n"
        "         exit 11..26 -> gRPC status (exit - 10), else UNKNOWN;\n"
        "         SIGTERM then SIGKILL on cancel or --handler-timeout;\n"
        "         at most --max-handlers at once, more are answered\n"
        "         RESOURCE_EXHAUSTED\n"
        "After a stable stream ends UNAVAILABLE (edge shutting down) it\n"
        "moves to the next address after a random 0..--rotate-delay.\n"
        "Anything else is answered UNIMPLEMENTED.  SIGINT/SIGTERM stop "
        "it.\n" CLI_SECURITY_USAGE,
        CLI_EXEC_MAX_HANDLERS_DEFAULT);
}

int
cli_agent_main (int argc, char **argv)
{
    static const struct option options[] = {
        {"id", required_argument, NULL, 'i'},
        {"label", required_argument, NULL, 'l'},
        {"handlers", required_argument, NULL, 'H'},
        {"edge", required_argument, NULL, 'e'},
        {"backoff-initial", required_argument, NULL, 'b'},
        {"backoff-max", required_argument, NULL, 'B'},
        {"superseded-delay", required_argument, NULL, 's'},
        {"handler-timeout", required_argument, NULL, 't'},
        {"keepalive", required_argument, NULL, 'k'},
        {"max-handlers", required_argument, NULL, 'm'},
        {"rotate-delay", required_argument, NULL, 'r'},
        {"log-level", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},
        CLI_SECURITY_OPTIONS,
        {NULL, 0, NULL, 0}};
    const char *id = NULL, *handlers = NULL, *edge = cli_default_edge ();
    uint32_t backoff_initial = 500, backoff_max = 30000, superseded = 10000;
    uint32_t handler_timeout = 0, keepalive = 30000;
    uint32_t rotate_delay = TETHER_ROTATE_DELAY_DEFAULT_MS;
    unsigned long max_handlers = CLI_EXEC_MAX_HANDLERS_DEFAULT;
    tlog_level_t level = TLOG_INFO;
    const char *labels[128];
    size_t label_count = 0;
    cli_security_t security;
    cli_security_init (&security);
    int opt;
    optind = 1;
    while ((opt = getopt_long (argc, argv, "i:l:H:e:b:B:s:t:k:m:r:L:h", options,
                               NULL))
           != -1) {
        uint32_t *duration = NULL;
        switch (opt) {
            case 'i':
                id = optarg;
                break;
            case 'l': {
                char key[256], value[1024];
                if (label_count == 128
                    || cli_parse_pair (optarg, key, sizeof key, value,
                                       sizeof value)
                           == -1) {
                    fprintf (stderr, "tether agent: bad --label '%s'\n",
                             optarg);
                    return CLI_EXIT_USAGE;
                }
                labels[label_count++] = optarg;
                break;
            }
            case 'H':
                handlers = optarg;
                break;
            case 'e':
                edge = optarg;
                break;
            case 'b':
                duration = &backoff_initial;
                break;
            case 'B':
                duration = &backoff_max;
                break;
            case 's':
                duration = &superseded;
                break;
            case 't':
                duration = &handler_timeout;
                break;
            case 'k':
                duration = &keepalive;
                break;
            case 'r':
                duration = &rotate_delay;
                break;
            case 'm': {
                char *end = NULL;
                errno = 0;
                max_handlers = strtoul (optarg, &end, 10);
                if (errno || end == optarg || *end || *optarg == '-'
                    || max_handlers == 0 || max_handlers > 100000) {
                    fprintf (stderr,
                             "tether agent: bad --max-handlers '%s' "
                             "(1..100000)\n",
                             optarg);
                    return CLI_EXIT_USAGE;
                }
                break;
            }
            case 'L':
                if (tlog_level_parse (optarg, &level) == -1) {
                    fprintf (stderr, "tether agent: bad --log-level '%s'\n",
                             optarg);
                    return CLI_EXIT_USAGE;
                }
                break;
            case 'h':
                s_agent_usage (stdout);
                return 0;
            default:
                if (cli_security_option (&security, opt, optarg))
                    break;
                s_agent_usage (stderr);
                return CLI_EXIT_USAGE;
        }
        if (duration && cli_parse_duration (optarg, duration) == -1) {
            fprintf (stderr, "tether agent: bad duration '%s'\n", optarg);
            return CLI_EXIT_USAGE;
        }
    }
    if (!id || optind != argc) {
        s_agent_usage (stderr);
        return CLI_EXIT_USAGE;
    }
    tlog_setup (level, "tether-agent");

    s_self_t self;
    memset (&self, 0, sizeof self);
    //  Before any thread exists, so every thread inherits the mask.
    sigemptyset (&self.signals);
    sigaddset (&self.signals, SIGINT);
    sigaddset (&self.signals, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &self.signals, NULL);
    signal (SIGPIPE, SIG_IGN);

    self.agent = tether_agent_new (edge, id);
    if (!self.agent) {
        fprintf (stderr, "tether agent: bad --id or --edge\n");
        return CLI_EXIT_USAGE;
    }
    if (cli_security_agent (&security, self.agent, "tether agent")) {
        tether_agent_destroy (&self.agent);
        return CLI_EXIT_USAGE;
    }
    if (tether_agent_set_backoff (self.agent, backoff_initial, backoff_max, 2.0,
                                  TETHER_JITTER_FULL)
        == -1) {
        fprintf (stderr,
                 "tether agent: bad backoff (need 0 < initial <= max)\n");
        tether_agent_destroy (&self.agent);
        return CLI_EXIT_USAGE;
    }
    tether_agent_set_superseded_delay (self.agent, superseded);
    tether_agent_set_keepalive (self.agent, keepalive);
    tether_agent_set_rotate_delay (self.agent, rotate_delay);
    tether_agent_set_log (self.agent, (tether_log_level_t) level, NULL, NULL);
    for (size_t i = 0; i < label_count; i++) {
        char key[256], value[1024];
        cli_parse_pair (labels[i], key, sizeof key, value, sizeof value);
        tether_agent_set_label (self.agent, key, value);
    }
    if (handlers)
        self.exec = cli_exec_new (handlers, handler_timeout, 2000,
                                  (size_t) max_handlers);
    tether_agent_set_handler (self.agent, s_handle, &self);

    pthread_t signal_thread;
    pthread_create (&signal_thread, NULL, s_signal_thread, &self);
    tether_agent_run (self.agent);
    pthread_join (signal_thread, NULL);
    cli_exec_destroy (&self.exec);
    tether_agent_destroy (&self.agent);
    return 0;
}
