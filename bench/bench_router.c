/*  =========================================================================
    bench_router - routed requests per second through the router

    Simulated edges (plain DEALERs speaking proto/wire.proto) drive a router
    over TCP loopback: the router actor in this process (its own thread),
    or an external tether-router with --connect.  Each agent edge holds one
    agent; each client edge keeps `window` requests in flight, spread over
    the agents round robin.  One request is the full exchange a real edge
    pair makes:
        client PUBLISH -> agent DELIVER -> agent BIND, RESPONSE, END
        -> client BOUND?/REPLY -> client CREDIT 1 -> client FINISH
    The driver is one thread polling every edge socket, so on a two-core
    machine the figure is the router thread and the driver sharing the
    CPUs.  The driver must cost less than the router, or it measures
    itself: it reads frames into reused zmq_msg_t, decodes envelopes with
    one reused parser, packs them on the stack and sends the payload from
    one constant buffer without copying it.  Prints one line: requests/s
    and messages/s (every message the edges sent or received).

    usage: bench_router [--requests N] [--window W] [--agents A]
                        [--clients C] [--payload BYTES] [--connect ENDPOINT]
    =========================================================================
*/
#include <czmq.h>
#include <inttypes.h>
#include <string.h>

#include "router_actor.h"
#include "tlog.h"
#include "wire_envelope.h"

typedef struct
{
    zsock_t *sock;        //  DEALER
    bool agent;           //  agent edge, else client edge
    uint64_t next_handle; //  handles of calls on this edge
    int in_flight;        //  client: requests not finished yet
    uint64_t sent;        //  client: requests published
} sim_edge_t;

typedef struct
{
    long requests;       //  total requests to route
    int window;          //  in flight per client edge
    int agents;          //  agent edges, one agent each
    int clients;         //  client edges
    size_t payload;      //  bytes of each request and response
    const char *connect; //  external router, or NULL
} options_t;

typedef struct
{
    uint64_t messages;              //  sent plus received by the edges
    uint64_t finished;              //  FINISH OK seen by clients
    uint64_t failed;                //  FINISH with another status
    uint64_t published;             //  PUBLISH sent
    wire_envelope_parser_t *parser; //  decodes what the edges receive
    zmq_msg_t head;                 //  frame 1 of the message read
    zmq_msg_t rest;                 //  its other frames, dropped
} counters_t;

//  Send `env` and, when `payload` is not NULL, `size` bytes of it.  The
//  payload is sent without a copy: it must outlive the sockets.
static void
s_send (sim_edge_t *edge,
        Wire__Envelope *env,
        const void *payload,
        size_t size,
        counters_t *counters)
{
    byte packed[1024];
    void *sock = zsock_resolve (edge->sock);
    size_t packed_size = wire_envelope_pack_into (env, packed, sizeof packed);
    assert (packed_size <= sizeof packed);
    int rc = zmq_send (sock, packed, packed_size, payload ? ZMQ_SNDMORE : 0);
    if (rc != -1 && payload) {
        zmq_msg_t body;
        zmq_msg_init_data (&body, (void *) payload, size, NULL, NULL);
        rc = zmq_msg_send (&body, sock, 0);
        if (rc == -1)
            zmq_msg_close (&body);
    }
    if (rc == -1) {
        fprintf (stderr, "bench_router: cannot send: %s\n",
                 zmq_strerror (zmq_errno ()));
        exit (1);
    }
    counters->messages++;
}

//  Receive one message (`flags` 0 or ZMQ_DONTWAIT); returns its envelope
//  (borrowed from the parser, valid until the next receive) or NULL.
static Wire__Envelope *
s_recv (sim_edge_t *edge, int flags, counters_t *counters)
{
    void *sock = zsock_resolve (edge->sock);
    if (zmq_msg_recv (&counters->head, sock, flags) == -1)
        return NULL;
    bool more = zmq_msg_more (&counters->head);
    while (more) {
        if (zmq_msg_recv (&counters->rest, sock, 0) == -1)
            return NULL;
        more = zmq_msg_more (&counters->rest);
    }
    counters->messages++;
    Wire__Envelope *env = NULL;
    if (wire_envelope_parser_decode (counters->parser,
                                     zmq_msg_data (&counters->head),
                                     zmq_msg_size (&counters->head), &env))
        env = NULL;
    return env;
}

static Wire__Envelope *
s_expect (sim_edge_t *edge, Wire__Command command, counters_t *counters)
{
    while (true) {
        Wire__Envelope *env = s_recv (edge, 0, counters);
        if (!env) {
            fprintf (stderr, "bench_router: no %s from the router\n",
                     wire_command_name (command));
            exit (1);
        }
        if (env->command == command)
            return env;
    }
}

static void
s_publish (sim_edge_t *client,
           int client_index,
           const options_t *opt,
           const uint8_t *payload,
           counters_t *counters)
{
    char request_id[48];
    char agent_id[32];
    snprintf (request_id, sizeof request_id, "c%d-%" PRIu64, client_index,
              client->sent);
    snprintf (agent_id, sizeof agent_id, "bench-%" PRIu64,
              (client->sent + (uint64_t) client_index)
                  % (uint64_t) opt->agents);
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__PUBLISH;
    env.handle = ++client->next_handle;
    env.request_id = request_id;
    env.agent_id = agent_id;
    env.credit = 8;
    s_send (client, &env, payload, opt->payload, counters);
    client->sent++;
    client->in_flight++;
    counters->published++;
}

static void
s_on_agent_message (sim_edge_t *edge,
                    Wire__Envelope *in,
                    const uint8_t *payload,
                    size_t size,
                    counters_t *counters)
{
    if (in->command != WIRE__COMMAND__DELIVER)
        return; //  BOUND, FINISH of the respond call, GRANT
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.handle = ++edge->next_handle;
    env.request_id = in->request_id;
    env.command = WIRE__COMMAND__BIND;
    s_send (edge, &env, NULL, 0, counters);
    env.command = WIRE__COMMAND__RESPONSE;
    s_send (edge, &env, payload, size, counters);
    env.command = WIRE__COMMAND__END;
    s_send (edge, &env, NULL, 0, counters);
}

static void
s_on_client_message (sim_edge_t *edge, Wire__Envelope *in, counters_t *counters)
{
    if (in->command == WIRE__COMMAND__REPLY) {
        //  The edge wrote the response to its client: one more credit.
        Wire__Envelope env = WIRE__ENVELOPE__INIT;
        env.command = WIRE__COMMAND__CREDIT;
        env.handle = in->handle;
        env.request_id = in->request_id;
        env.credit = 1;
        s_send (edge, &env, NULL, 0, counters);
    } else if (in->command == WIRE__COMMAND__FINISH) {
        edge->in_flight--;
        if (in->status == 0)
            counters->finished++;
        else
            counters->failed++;
    }
}

static int
s_parse (int argc, char **argv, options_t *opt)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (streq (arg, "--connect") && value)
            opt->connect = value;
        else if (streq (arg, "--requests") && value)
            opt->requests = atol (value);
        else if (streq (arg, "--window") && value)
            opt->window = atoi (value);
        else if (streq (arg, "--agents") && value)
            opt->agents = atoi (value);
        else if (streq (arg, "--clients") && value)
            opt->clients = atoi (value);
        else if (streq (arg, "--payload") && value)
            opt->payload = (size_t) atol (value);
        else {
            fprintf (stderr, "usage: bench_router [--requests N] [--window W] "
                             "[--agents A] [--clients C] [--payload BYTES] "
                             "[--connect ENDPOINT]\n");
            return -1;
        }
        i++;
    }
    if (opt->requests < 1 || opt->window < 1 || opt->agents < 1
        || opt->clients < 1) {
        fprintf (stderr, "bench_router: counts must be positive\n");
        return -1;
    }
    return 0;
}

int
main (int argc, char **argv)
{
    options_t opt = {200000, 256, 4, 4, 100, NULL};
    if (s_parse (argc, argv, &opt))
        return 2;
    tlog_setup (TLOG_WARN, "bench_router");

    router_config_t cfg;
    router_config_defaults (&cfg);
    zactor_t *router = NULL;
    char *endpoint = NULL;
    if (opt.connect)
        endpoint = strdup (opt.connect);
    else {
        free (cfg.bind);
        cfg.bind = strdup ("tcp://127.0.0.1:*");
        //  A PUB with no subscriber, as in a deployment nobody watches.
        free (cfg.monitor);
        cfg.monitor = strdup ("tcp://127.0.0.1:*");
        router = router_actor_start (&cfg);
        if (!router)
            return 1;
        int router_port = 0, monitor_port = 0;
        zstr_send (router, "PORT");
        zsock_recv (router, "ii", &router_port, &monitor_port);
        endpoint = zsys_sprintf ("tcp://127.0.0.1:%d", router_port);
    }

    counters_t counters = {.parser = wire_envelope_parser_new ()};
    zmq_msg_init (&counters.head);
    zmq_msg_init (&counters.rest);
    int edges = opt.agents + opt.clients;
    sim_edge_t *edge =
        (sim_edge_t *) zmalloc (sizeof (sim_edge_t) * (size_t) edges);
    zpoller_t *poller = zpoller_new (NULL);
    for (int i = 0; i < edges; i++) {
        edge[i].agent = i < opt.agents;
        edge[i].sock = zsock_new (ZMQ_DEALER);
        zsock_set_sndhwm (edge[i].sock, 0);
        zsock_set_rcvhwm (edge[i].sock, 0);
        zsock_set_linger (edge[i].sock, 0);
        zsock_set_rcvtimeo (edge[i].sock, 10000);
        zsock_connect (edge[i].sock, "%s", endpoint);
        zpoller_add (poller, edge[i].sock);

        char edge_id[32];
        snprintf (edge_id, sizeof edge_id, "bench-edge-%d", i);
        Wire__Envelope hello = WIRE__ENVELOPE__INIT;
        hello.command = WIRE__COMMAND__HELLO;
        hello.edge_id = edge_id;
        hello.incarnation = (uint64_t) zclock_time () * 100 + (uint64_t) i;
        s_send (&edge[i], &hello, NULL, 0, &counters);
        s_expect (&edge[i], WIRE__COMMAND__WELCOME, &counters);
        if (edge[i].agent) {
            char agent_id[32];
            snprintf (agent_id, sizeof agent_id, "bench-%d", i);
            Wire__AgentEntry agent = WIRE__AGENT_ENTRY__INIT;
            agent.handle = ++edge[i].next_handle;
            agent.agent_id = agent_id;
            Wire__Envelope subscribe = WIRE__ENVELOPE__INIT;
            subscribe.command = WIRE__COMMAND__SUBSCRIBE;
            subscribe.agent = &agent;
            s_send (&edge[i], &subscribe, NULL, 0, &counters);
            s_expect (&edge[i], WIRE__COMMAND__SUBSCRIBED, &counters);
        }
    }

    uint8_t *payload = (uint8_t *) zmalloc (opt.payload ? opt.payload : 1);
    for (size_t i = 0; i < opt.payload; i++)
        payload[i] = (uint8_t) i;
    counters.messages = 0;
    int64_t start = zclock_usecs ();
    uint64_t total = (uint64_t) opt.requests;
    uint64_t done = 0;
    int idle_polls = 0;
    while (done < total) {
        for (int i = opt.agents; i < edges; i++)
            while (edge[i].in_flight < opt.window && counters.published < total)
                s_publish (&edge[i], i - opt.agents, &opt, payload, &counters);
        //  Drain every edge; poll (a system call) only when none had
        //  anything to read.
        bool idle = true;
        for (int i = 0; i < edges; i++) {
            Wire__Envelope *env;
            while ((env = s_recv (&edge[i], ZMQ_DONTWAIT, &counters))) {
                idle = false;
                if (edge[i].agent)
                    s_on_agent_message (&edge[i], env, payload, opt.payload,
                                        &counters);
                else
                    s_on_client_message (&edge[i], env, &counters);
            }
        }
        done = counters.finished + counters.failed;
        if (!idle || done >= total)
            continue;
        if (zpoller_wait (poller, 2000))
            idle_polls = 0;
        else if (++idle_polls == 5) {
            fprintf (stderr,
                     "bench_router: stalled at %" PRIu64 "/%" PRIu64 "\n", done,
                     total);
            break;
        }
    }
    double seconds = (double) (zclock_usecs () - start) / 1e6;

    char command[512] = "";
    for (int i = 0; i < argc; i++) {
        strncat (command, i ? " " : "", sizeof command - strlen (command) - 1);
        strncat (command, argv[i], sizeof command - strlen (command) - 1);
    }
    printf ("bench_router: %" PRIu64 " requests in %.2f s: %.0f requests/s, "
            "%.0f messages/s (failed %" PRIu64 "; agents=%d clients=%d "
            "window=%d payload=%zu; router %s; command: %s)\n",
            counters.finished, seconds, (double) counters.finished / seconds,
            (double) counters.messages / seconds, counters.failed, opt.agents,
            opt.clients, opt.window, opt.payload,
            opt.connect ? opt.connect : "in-process over tcp loopback",
            command);

    zmq_msg_close (&counters.rest);
    zmq_msg_close (&counters.head);
    wire_envelope_parser_destroy (&counters.parser);
    zpoller_destroy (&poller);
    for (int i = 0; i < edges; i++)
        zsock_destroy (&edge[i].sock);
    free (edge);
    free (payload);
    zactor_destroy (&router);
    free (endpoint);
    router_config_clear (&cfg);
    return counters.failed || done < total ? 1 : 0;
}
