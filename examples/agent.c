/*  An example agent built on libtether.

    Answers "upper" with the payload in capitals and "count" with the
    numbers 1..N, one message each, from a thread of its own (it stops when
    the request is cancelled).  Usage: example-agent ID [host:port[,...]]
*/
#define _POSIX_C_SOURCE 200809L
#include <tether.h>

#include <ctype.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *
s_count (void *arg)
{
    tether_request_t *request = (tether_request_t *) arg;
    size_t size;
    const uint8_t *payload = tether_request_payload (request, &size);
    char text[32];
    snprintf (text, sizeof text, "%.*s", (int) (size < 31 ? size : 31),
              (const char *) payload);
    int n = atoi (text);
    for (int i = 1; i <= n && !tether_request_cancelled (request); i++) {
        snprintf (text, sizeof text, "%d\n", i);
        if (tether_request_send (request, text, strlen (text)) == -1)
            break;
    }
    tether_request_end (&request, TETHER_OK, NULL);
    return NULL;
}

static void
s_handle (tether_agent_t *agent, tether_request_t *request, void *arg)
{
    const char *call = tether_request_call (request);
    if (strcmp (call, "upper") == 0) {
        size_t size;
        const uint8_t *payload = tether_request_payload (request, &size);
        char *text = malloc (size + 1);
        for (size_t i = 0; i < size; i++)
            text[i] = (char) toupper (payload[i]);
        tether_request_send (request, text, size);
        free (text);
        tether_request_end (&request, TETHER_OK, NULL);
    } else if (strcmp (call, "count") == 0) {
        pthread_t thread;
        pthread_create (&thread, NULL, s_count, request);
        pthread_detach (thread);
    } else
        tether_request_end (&request, TETHER_UNIMPLEMENTED, "unknown call");
}

static void *
s_wait_signal (void *arg)
{
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGTERM);
    int signal_number;
    sigwait (&signals, &signal_number);
    tether_agent_stop ((tether_agent_t *) arg);
    return NULL;
}

int
main (int argc, char **argv)
{
    if (argc < 2) {
        fprintf (stderr, "usage: %s ID [host:port[,...]]\n", argv[0]);
        return 2;
    }
    //  Block the signals in every thread; one thread waits for them.
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &signals, NULL);

    tether_agent_t *agent =
        tether_agent_new (argc > 2 ? argv[2] : "127.0.0.1:50051", argv[1]);
    if (!agent)
        return 2;
    tether_agent_set_label (agent, "example", "yes");
    tether_agent_set_handler (agent, s_handle, NULL);
    pthread_t waiter;
    pthread_create (&waiter, NULL, s_wait_signal, agent);
    tether_agent_run (agent);
    pthread_join (waiter, NULL);
    tether_agent_destroy (&agent);
    return 0;
}
