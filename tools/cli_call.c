/*  =========================================================================
    cli_call - `tether call`, `tether agents` and `tether health`

    The client-side subcommands: each opens a tether_client_t, makes one
    call, prints what came back, and maps the final gRPC status to the exit
    code (0 OK, 10 + status otherwise).
    =========================================================================
*/
#include "cli.h"
#include "cli_security.h"
#include "cli_json.h"
#include "cli_parse.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_MAX_HEADERS 64

//  Read all of `file` into a fresh buffer (caller owns it).
static uint8_t *
s_read_all (FILE *file, size_t *size_p)
{
    size_t size = 0, max = 65536;
    uint8_t *data = (uint8_t *) malloc (max);
    if (!data)
        return NULL;
    size_t got;
    while ((got = fread (data + size, 1, max - size, file)) > 0) {
        size += got;
        if (size == max) {
            max *= 2;
            uint8_t *bigger = (uint8_t *) realloc (data, max);
            if (!bigger) {
                free (data);
                return NULL;
            }
            data = bigger;
        }
    }
    if (ferror (file)) {
        free (data);
        return NULL;
    }
    *size_p = size;
    return data;
}

//  A client for `edge` with the security settings applied, or NULL after
//  saying why on stderr (a usage error).  Caller owns the client.
static tether_client_t *
s_client_open (const char *edge, cli_security_t *security, const char *who)
{
    tether_client_t *client = tether_client_new (edge);
    if (!client) {
        fprintf (stderr, "%s: bad --edge '%s'\n", who, edge);
        return NULL;
    }
    if (cli_security_client (security, client, who))
        tether_client_destroy (&client);
    return client;
}

static void
s_call_usage (FILE *out)
{
    fprintf (
        out,
        "usage: tether call AGENT CALL [--data TEXT | --data-file F | -]\n"
        "                  [--header k=v]... [--timeout 30s] [--edge "
        "host:port]\n"
        "                  [--wait-for-agent 0s] [--json]\n"
        "\n"
        "Calls CALL on agent AGENT and writes the response payloads to\n"
        "stdout as they arrive, raw.  '-' reads the payload from stdin.\n"
        "  --json   one JSON object per message: {\"payload\": text} or\n"
        "           {\"payload_base64\": ...} when not UTF-8 text, then a\n"
        "           last {\"status\": ..., \"code\": ..., \"message\": ...}\n"
        "Durations: 250ms, 5s, 2m, 1h (a bare number is seconds); a\n"
        "timeout of 0 means none.\n"
        "Exit code: 0 when the call ends OK, else 10 + the gRPC status\n"
        "code (15 NOT_FOUND, 14 DEADLINE_EXCEEDED, 22 UNIMPLEMENTED, ...),\n"
        "with the status and message on stderr; 1 local failure, 2 "
        "usage.\n" CLI_SECURITY_USAGE);
}

int
cli_call_main (int argc, char **argv)
{
    static const struct option options[] = {
        {"data", required_argument, NULL, 'd'},
        {"data-file", required_argument, NULL, 'f'},
        {"header", required_argument, NULL, 'H'},
        {"timeout", required_argument, NULL, 't'},
        {"edge", required_argument, NULL, 'e'},
        {"wait-for-agent", required_argument, NULL, 'w'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        CLI_SECURITY_OPTIONS,
        {NULL, 0, NULL, 0}};
    const char *data = NULL, *data_file = NULL;
    const char *edge = cli_default_edge ();
    uint32_t timeout_ms = 30000, wait_ms = 0;
    bool json = false;
    char *headers[S_MAX_HEADERS * 2 + 1];
    size_t header_count = 0;
    int rc = CLI_EXIT_USAGE;
    cli_security_t security;
    cli_security_init (&security);
    int opt;
    optind = 1;
    while ((opt = getopt_long (argc, argv, "d:f:H:t:e:w:jh", options, NULL))
           != -1) {
        switch (opt) {
            case 'd':
                data = optarg;
                break;
            case 'f':
                data_file = optarg;
                break;
            case 'H': {
                char key[256], value[4096];
                if (header_count == S_MAX_HEADERS
                    || cli_parse_pair (optarg, key, sizeof key, value,
                                       sizeof value)
                           == -1) {
                    fprintf (stderr,
                             "tether call: bad --header '%s' "
                             "(want key=value)\n",
                             optarg);
                    goto cleanup;
                }
                headers[header_count * 2] = strdup (key);
                headers[header_count * 2 + 1] = strdup (value);
                header_count++;
                break;
            }
            case 't':
                if (cli_parse_duration (optarg, &timeout_ms) == -1) {
                    fprintf (stderr, "tether call: bad --timeout '%s'\n",
                             optarg);
                    goto cleanup;
                }
                break;
            case 'e':
                edge = optarg;
                break;
            case 'w':
                if (cli_parse_duration (optarg, &wait_ms) == -1) {
                    fprintf (stderr, "tether call: bad --wait-for-agent '%s'\n",
                             optarg);
                    goto cleanup;
                }
                break;
            case 'j':
                json = true;
                break;
            case 'h':
                s_call_usage (stdout);
                rc = 0;
                goto cleanup;
            default:
                if (cli_security_option (&security, opt, optarg))
                    break;
                s_call_usage (stderr);
                goto cleanup;
        }
    }
    headers[header_count * 2] = NULL;
    int positional = argc - optind;
    bool from_stdin = positional == 3 && strcmp (argv[optind + 2], "-") == 0;
    if (positional < 2 || (positional == 3 && !from_stdin) || positional > 3
        || (data ? 1 : 0) + (data_file ? 1 : 0) + (from_stdin ? 1 : 0) > 1) {
        s_call_usage (stderr);
        goto cleanup;
    }
    const char *agent_id = argv[optind];
    const char *call_name = argv[optind + 1];

    uint8_t *payload = NULL;
    size_t size = 0;
    if (data) {
        size = strlen (data);
        payload = (uint8_t *) strdup (data);
    } else if (data_file || from_stdin) {
        FILE *file = from_stdin ? stdin : fopen (data_file, "rb");
        if (file)
            payload = s_read_all (file, &size);
        if (!payload) {
            fprintf (stderr, "tether call: cannot read %s: %s\n",
                     from_stdin ? "stdin" : data_file, strerror (errno));
            if (file && file != stdin)
                fclose (file);
            rc = CLI_EXIT_FAILURE;
            goto cleanup;
        }
        if (file != stdin)
            fclose (file);
    }

    tether_client_t *client = s_client_open (edge, &security, "tether call");
    if (!client) {
        free (payload);
        goto cleanup;
    }
    tether_client_set_wait_for_agent (client, wait_ms);
    tether_call_t *call =
        tether_client_call (client, agent_id, call_name, payload, size,
                            (const char *const *) headers, timeout_ms);
    free (payload);
    if (!call) {
        fprintf (stderr, "tether call: AGENT and CALL must not be empty\n");
        tether_client_destroy (&client);
        goto cleanup;
    }
    const uint8_t *chunk;
    size_t chunk_size;
    while (tether_call_next (call, &chunk, &chunk_size)) {
        if (json) {
            if (cli_json_is_text (chunk, chunk_size)) {
                fputs ("{\"payload\":", stdout);
                cli_json_string (stdout, chunk, chunk_size);
            } else {
                fputs ("{\"payload_base64\":", stdout);
                cli_json_base64 (stdout, chunk, chunk_size);
            }
            printf (",\"size\":%zu}\n", chunk_size);
        } else
            fwrite (chunk, 1, chunk_size, stdout);
        fflush (stdout);
    }
    int status = tether_call_status (call);
    const char *message = tether_call_status_message (call);
    if (json) {
        printf ("{\"status\":\"%s\",\"code\":%d,\"message\":",
                tether_status_name (status), status);
        cli_json_string (stdout, (const uint8_t *) message, strlen (message));
        fputs ("}\n", stdout);
        fflush (stdout);
    }
    if (status != TETHER_OK)
        fprintf (stderr, "tether call: %s: %s\n", tether_status_name (status),
                 message);
    rc = tether_status_exit_code (status);
    tether_call_destroy (&call);
    tether_client_destroy (&client);

cleanup:
    for (size_t i = 0; i < header_count * 2; i++)
        free (headers[i]);
    return rc;
}

static void
s_agents_usage (FILE *out)
{
    fprintf (out,
             "usage: tether agents [--prefix P] [--limit N] [--page-size N]\n"
             "                     [--json] [--edge host:port] [--timeout 5s]\n"
             "\n"
             "Lists the connected agents (id, edge, connected since, requests\n"
             "in flight, session, labels), sorted by id: all of them, page\n"
             "after page, or the first --limit N.  --page-size N asks for N\n"
             "agents per ListAgents call (default 0: as many as fit in one\n"
             "message).  --timeout bounds each call.  --json writes one JSON\n"
             "object per agent.  Exit code as for `tether "
             "call`.\n" CLI_SECURITY_USAGE);
}

//  Print the index-th agent of `agents`: a table row, or a JSON object.
static void
s_agents_print (tether_agents_t *agents, size_t i, bool json)
{
    const char *id = tether_agents_id (agents, i);
    const char *agent_edge = tether_agents_edge (agents, i);
    int64_t since_ms = tether_agents_connected_at_ms (agents, i);
    char since[32];
    time_t seconds = (time_t) (since_ms / 1000);
    struct tm tm;
    gmtime_r (&seconds, &tm);
    strftime (since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (json) {
        fputs ("{\"agent_id\":", stdout);
        cli_json_string (stdout, (const uint8_t *) id, strlen (id));
        fputs (",\"edge\":", stdout);
        cli_json_string (stdout, (const uint8_t *) agent_edge,
                         strlen (agent_edge));
        printf (",\"connected_at_unix_ms\":%lld,\"connected_since\":\"%s\","
                "\"in_flight\":%u,\"session\":%llu,\"labels\":{",
                (long long) since_ms, since,
                tether_agents_in_flight (agents, i),
                (unsigned long long) tether_agents_session (agents, i));
    } else
        printf ("%-24s %-16s %-20s %9u %20llu  ", id, agent_edge, since,
                tether_agents_in_flight (agents, i),
                (unsigned long long) tether_agents_session (agents, i));
    for (size_t l = 0; l < tether_agents_label_count (agents, i); l++) {
        const char *key, *value;
        tether_agents_label_at (agents, i, l, &key, &value);
        if (json) {
            if (l > 0)
                fputc (',', stdout);
            cli_json_string (stdout, (const uint8_t *) key, strlen (key));
            fputc (':', stdout);
            cli_json_string (stdout, (const uint8_t *) value, strlen (value));
        } else
            printf ("%s%s=%s", l ? "," : "", key, value);
    }
    fputs (json ? "}}\n" : "\n", stdout);
}

int
cli_agents_main (int argc, char **argv)
{
    static const struct option options[] = {
        {"prefix", required_argument, NULL, 'p'},
        {"limit", required_argument, NULL, 'l'},
        {"page-size", required_argument, NULL, 's'},
        {"edge", required_argument, NULL, 'e'},
        {"timeout", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        CLI_SECURITY_OPTIONS,
        {NULL, 0, NULL, 0}};
    const char *prefix = "", *edge = cli_default_edge ();
    uint32_t limit = 0, page_size = 0, timeout_ms = 5000;
    bool json = false;
    cli_security_t security;
    cli_security_init (&security);
    int opt;
    optind = 1;
    while ((opt = getopt_long (argc, argv, "p:l:s:e:t:jh", options, NULL))
           != -1) {
        switch (opt) {
            case 'p':
                prefix = optarg;
                break;
            case 'l':
            case 's': {
                char *end;
                unsigned long value = strtoul (optarg, &end, 10);
                if (*optarg == 0 || *end || *optarg == '-'
                    || value > UINT32_MAX) {
                    fprintf (stderr, "tether agents: bad --%s '%s'\n",
                             opt == 'l' ? "limit" : "page-size", optarg);
                    return CLI_EXIT_USAGE;
                }
                if (opt == 'l')
                    limit = (uint32_t) value;
                else
                    page_size = (uint32_t) value;
                break;
            }
            case 'e':
                edge = optarg;
                break;
            case 't':
                if (cli_parse_duration (optarg, &timeout_ms) == -1) {
                    fprintf (stderr, "tether agents: bad --timeout '%s'\n",
                             optarg);
                    return CLI_EXIT_USAGE;
                }
                break;
            case 'j':
                json = true;
                break;
            case 'h':
                s_agents_usage (stdout);
                return 0;
            default:
                if (cli_security_option (&security, opt, optarg))
                    break;
                s_agents_usage (stderr);
                return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        s_agents_usage (stderr);
        return CLI_EXIT_USAGE;
    }
    tether_client_t *client = s_client_open (edge, &security, "tether agents");
    if (!client)
        return CLI_EXIT_USAGE;
    //  Page after page, each printed as it comes, until the gateway has
    //  no more or --limit is reached.
    int rc = 0;
    size_t printed = 0;
    char *token = NULL;
    while (true) {
        uint32_t ask = page_size;
        if (limit && (ask == 0 || ask > limit - printed))
            ask = (uint32_t) (limit - printed);
        int status;
        tether_agents_t *agents = tether_client_list_agents_page (
            client, prefix, ask, token, timeout_ms, &status);
        if (!agents) {
            fprintf (stderr, "tether agents: %s\n",
                     tether_status_name (status));
            rc = tether_status_exit_code (status);
            break;
        }
        if (!json && !token)
            printf ("%-24s %-16s %-20s %9s %20s  %s\n", "ID", "EDGE",
                    "CONNECTED SINCE", "IN FLIGHT", "SESSION", "LABELS");
        size_t size = tether_agents_size (agents);
        if (limit && size > limit - printed)
            size = limit - printed;
        for (size_t i = 0; i < size; i++)
            s_agents_print (agents, i, json);
        printed += size;
        const char *next = tether_agents_next_page_token (agents);
        bool more = *next && !(limit && printed >= limit);
        //  Ids grow from page to page; a token that does not is a gateway
        //  going round in circles.
        if (more && token && strcmp (next, token) <= 0) {
            fprintf (stderr, "tether agents: the gateway's pages do not "
                             "advance\n");
            rc = tether_status_exit_code (TETHER_INTERNAL);
            more = false;
        }
        free (token);
        token = more ? strdup (next) : NULL;
        tether_agents_destroy (&agents);
        if (!token)
            break;
    }
    free (token);
    fflush (stdout);
    tether_client_destroy (&client);
    return rc;
}

static void
s_health_usage (FILE *out)
{
    fprintf (
        out,
        "usage: tether health [--edge host:port] [--timeout 2s]\n"
        "\n"
        "Calls grpc.health.v1.Health/Check on the edge and prints\n"
        "SERVING or NOT_SERVING.  Exit code 0 when SERVING, 1 when the\n"
        "edge answered anything else, 10 + gRPC status when the call\n"
        "failed (24 UNAVAILABLE: nothing listening).\n" CLI_SECURITY_USAGE);
}

int
cli_health_main (int argc, char **argv)
{
    static const struct option options[] = {
        {"edge", required_argument, NULL, 'e'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        CLI_SECURITY_OPTIONS,
        {NULL, 0, NULL, 0}};
    const char *edge = cli_default_edge ();
    uint32_t timeout_ms = 2000;
    cli_security_t security;
    cli_security_init (&security);
    int opt;
    optind = 1;
    while ((opt = getopt_long (argc, argv, "e:t:h", options, NULL)) != -1) {
        switch (opt) {
            case 'e':
                edge = optarg;
                break;
            case 't':
                if (cli_parse_duration (optarg, &timeout_ms) == -1) {
                    fprintf (stderr, "tether health: bad --timeout '%s'\n",
                             optarg);
                    return CLI_EXIT_USAGE;
                }
                break;
            case 'h':
                s_health_usage (stdout);
                return 0;
            default:
                if (cli_security_option (&security, opt, optarg))
                    break;
                s_health_usage (stderr);
                return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        s_health_usage (stderr);
        return CLI_EXIT_USAGE;
    }
    tether_client_t *client = s_client_open (edge, &security, "tether health");
    if (!client)
        return CLI_EXIT_USAGE;
    int status;
    int serving = tether_client_health (client, timeout_ms, &status);
    tether_client_destroy (&client);
    if (serving < 0) {
        fprintf (stderr, "tether health: %s\n", tether_status_name (status));
        return tether_status_exit_code (status);
    }
    puts (serving ? "SERVING" : "NOT_SERVING");
    return serving ? 0 : CLI_EXIT_FAILURE;
}
