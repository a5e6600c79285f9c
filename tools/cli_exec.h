/*  =========================================================================
    cli_exec - answer a request by running a handler executable

    `tether agent --handlers DIR` answers call NAME by running DIR/NAME with
    no shell and no arguments (fork + execve), in a process group of its
    own.  The payload goes to its stdin; its stdout is streamed back, one
    response message per read; its stderr is the agent's.  The environment
    adds TETHER_AGENT_ID, TETHER_REQUEST_ID, TETHER_CALL and one
    TETHER_HEADER_<KEY> per request header (KEY upper-cased, characters
    other than [A-Z0-9_] as '_').

    Exit status -> gRPC status: 0 -> OK; 11..26 -> that number minus 10
    (the same mapping as `tether call`'s exit codes, so a handler can
    answer NOT_FOUND with exit 15); anything else, or death by a signal ->
    UNKNOWN.  On cancel (the client gave up or its deadline passed), when
    the client stops reading, or when the local timeout passes, the process
    group gets SIGTERM, then SIGKILL after a grace period.

    Each request runs on a detached thread; cli_exec_t counts them so the
    agent can wait for all to finish before it exits.  At most
    `max_running` run at once: a request beyond that is answered
    RESOURCE_EXHAUSTED "too many handlers running".  When the system
    refuses a thread, an eventfd, a pipe or a process, the request ends
    INTERNAL with a message saying which, and the agent carries on.
    =========================================================================
*/
#ifndef CLI_EXEC_H_INCLUDED
#define CLI_EXEC_H_INCLUDED

#include "tether.h"

//  Default limit on handlers running at once (`--max-handlers`).
#define CLI_EXEC_MAX_HANDLERS_DEFAULT 64

typedef struct _cli_exec_t cli_exec_t;

//  Create a runner for handlers in directory `dir`.  `timeout_ms` bounds
//  each run (0 = no local bound); `grace_ms` is the wait between SIGTERM
//  and SIGKILL; `max_running` limits handlers running at once.  Returns
//  NULL when max_running is 0.  Caller owns it.
cli_exec_t *cli_exec_new (const char *dir,
                          uint32_t timeout_ms,
                          uint32_t grace_ms,
                          size_t max_running);

//  Wait for running handlers to finish, then destroy.
void cli_exec_destroy (cli_exec_t **self_p);

//  Returns true when DIR/name is a valid handler name naming an executable
//  regular file.
bool cli_exec_has (cli_exec_t *self, const char *name);

//  Run DIR/<call> for the request on a new thread.  Takes ownership of the
//  request and sets *request_p to NULL; the thread ends it, or, when the
//  limit is reached or the thread cannot start, this call does.
void cli_exec_start (cli_exec_t *self,
                     const char *agent_id,
                     tether_request_t **request_p);

//  Number of handler threads running.  THREAD SAFETY: any thread.
size_t cli_exec_running (cli_exec_t *self);

#endif
