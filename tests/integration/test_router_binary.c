/*  =========================================================================
    test_router_binary - tether-router, black-box

    Runs the real binary (path given at build time) with its output on
    pipes: --help lists every setting, bad settings exit 2 naming the
    setting, the shipped config file states exactly the defaults, and a
    running router answers an edge and exits 0 on SIGTERM or SIGINT.  The
    child's environment is ours minus every TETHER_* variable, so the
    developer's shell cannot change the outcome.  Every wait has a deadline.
    =========================================================================
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>

#include "router_config.h"
#include "wire_envelope.h"

#ifndef TETHER_ROUTER_BIN
#error "TETHER_ROUTER_BIN must name the tether-router binary"
#endif
#ifndef TETHER_SOURCE_DIR
#error "TETHER_SOURCE_DIR must name the source tree"
#endif

extern char **environ;

#define S_DEADLINE_MS 10000

typedef struct
{
    pid_t pid;  //  the child
    int out_fd; //  read end of its stdout, -1 at EOF
    int err_fd; //  read end of its stderr, -1 at EOF
    char *out;  //  what it wrote to stdout (heap)
    size_t out_size;
    char *err; //  what it wrote to stderr (heap)
    size_t err_size;
} child_t;

//  Start tether-router with `args` (NULL-terminated, without argv[0]) and
//  `extra_env` ("NAME=value" strings, NULL-terminated, may be NULL).
static void
s_child_start (child_t *child, const char **args, const char **extra_env)
{
    memset (child, 0, sizeof *child);
    const char *argv[32] = {TETHER_ROUTER_BIN};
    size_t argc = 1;
    for (size_t i = 0; args && args[i]; i++) {
        assert_true (argc < 31);
        argv[argc++] = args[i];
    }
    argv[argc] = NULL;

    const char *envp[512];
    size_t envc = 0;
    for (char **env = environ; *env && envc < 400; env++)
        if (strncmp (*env, "TETHER_", 7) != 0)
            envp[envc++] = *env;
    for (size_t i = 0; extra_env && extra_env[i]; i++)
        envp[envc++] = extra_env[i];
    envp[envc] = NULL;

    int out_pipe[2], err_pipe[2];
    assert_int_equal (pipe2 (out_pipe, O_CLOEXEC), 0);
    assert_int_equal (pipe2 (err_pipe, O_CLOEXEC), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    posix_spawn_file_actions_adddup2 (&actions, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2 (&actions, err_pipe[1], 2);
    //  The test blocks no signals, but be explicit: the child starts with
    //  SIGINT and SIGTERM at their defaults and unblocked.
    posix_spawnattr_t attr;
    posix_spawnattr_init (&attr);
    sigset_t none;
    sigemptyset (&none);
    posix_spawnattr_setsigmask (&attr, &none);
    posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETSIGMASK);
    int rc = posix_spawn (&child->pid, TETHER_ROUTER_BIN, &actions, &attr,
                          (char **) argv, (char **) envp);
    posix_spawnattr_destroy (&attr);
    posix_spawn_file_actions_destroy (&actions);
    assert_int_equal (rc, 0);
    close (out_pipe[1]);
    close (err_pipe[1]);
    child->out_fd = out_pipe[0];
    child->err_fd = err_pipe[0];
    child->out = (char *) zmalloc (1);
    child->err = (char *) zmalloc (1);
}

static void
s_append (int *fd, char **text, size_t *size)
{
    char buf[4096];
    ssize_t n = read (*fd, buf, sizeof buf);
    if (n <= 0) {
        close (*fd);
        *fd = -1;
        return;
    }
    *text = (char *) realloc (*text, *size + (size_t) n + 1);
    assert_non_null (*text);
    memcpy (*text + *size, buf, (size_t) n);
    *size += (size_t) n;
    (*text)[*size] = 0;
}

//  Read the child's output until `needle` shows on stderr (when not NULL)
//  or both pipes are closed.  Returns true when the condition was met
//  before the deadline.
static bool
s_child_read (child_t *child, const char *needle)
{
    int64_t deadline = zclock_mono () + S_DEADLINE_MS;
    while (child->out_fd >= 0 || child->err_fd >= 0) {
        if (needle && strstr (child->err, needle))
            return true;
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            return false;
        struct pollfd fds[2] = {{child->out_fd, POLLIN, 0},
                                {child->err_fd, POLLIN, 0}};
        int rc = poll (fds, 2, (int) left);
        if (rc < 0 && errno == EINTR)
            continue;
        assert_true (rc >= 0);
        if (child->out_fd >= 0 && fds[0].revents)
            s_append (&child->out_fd, &child->out, &child->out_size);
        if (child->err_fd >= 0 && fds[1].revents)
            s_append (&child->err_fd, &child->err, &child->err_size);
    }
    return needle ? strstr (child->err, needle) != NULL : true;
}

//  Wait for the child to end (its pipes closed first) and return its exit
//  code, or -1 when a signal ended it.  Kills it when it overstays.
static int
s_child_wait (child_t *child)
{
    if (!s_child_read (child, NULL))
        kill (child->pid, SIGKILL);
    int status = 0;
    assert_int_equal (waitpid (child->pid, &status, 0), child->pid);
    if (child->out_fd >= 0)
        close (child->out_fd);
    if (child->err_fd >= 0)
        close (child->err_fd);
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static void
s_child_free (child_t *child)
{
    free (child->out);
    free (child->err);
    child->out = child->err = NULL;
}

//  Run to completion; returns the exit code.  Caller frees with
//  s_child_free.
static int
s_run (child_t *child, const char **args, const char **extra_env)
{
    s_child_start (child, args, extra_env);
    return s_child_wait (child);
}

//  ---------------------------------------------------------------------

static void
test_help_lists_every_flag (void **state)
{
    child_t child;
    const char *args[] = {"--help", NULL};
    assert_int_equal (s_run (&child, args, NULL), 0);

    router_config_t cfg;
    router_config_defaults (&cfg);
    tconfig_option_t options[64];
    size_t count = router_config_options (&cfg, options, 64);
    assert_true (count > 20);
    for (size_t i = 0; i < count; i++) {
        if (!options[i].flag)
            continue;
        char word[64];
        snprintf (word, sizeof word, " %s ", options[i].flag);
        if (!strstr (child.out, word))
            fail_msg ("--help does not list %s", options[i].flag);
        if (options[i].env && !strstr (child.out, options[i].env))
            fail_msg ("--help does not name %s", options[i].env);
    }
    assert_non_null (strstr (child.out, "--config"));
    router_config_clear (&cfg);
    s_child_free (&child);
}

//  Each bad input exits 2 and the message names the culprit.
static void
test_bad_settings (void **state)
{
    char *file = zsys_sprintf ("%s/test_router_binary-%d.cfg", P_tmpdir,
                               (int) getpid ());
    FILE *out = fopen (file, "w");
    assert_non_null (out);
    fprintf (out, "router\n    idle_timeout = \"soon\"\n");
    fclose (out);
    char *file_arg = zsys_sprintf ("--config=%s", file);

    struct
    {
        const char *args[4];
        const char *env[2];
        const char *expect;
    } cases[] = {
        {{"--idle-timeout", "abc", NULL}, {NULL}, "--idle-timeout"},
        {{"--max-agents", "0", NULL}, {NULL}, "--max-agents"},
        {{"--max-message-size", "lots", NULL}, {NULL}, "--max-message-size"},
        {{"--first-response-timeout=-1s", NULL},
         {NULL},
         "--first-response-timeout"},
        {{"--no-such-flag", NULL}, {NULL}, "--no-such-flag"},
        {{"--bind", NULL}, {NULL}, "--bind"},
        {{"--log-level", "loud", NULL}, {NULL}, "--log-level"},
        {{NULL},
         {"TETHER_EDGE_LIVENESS=forever", NULL},
         "TETHER_EDGE_LIVENESS"},
        {{file_arg, NULL}, {NULL}, file},
        {{"--config", "/nonexistent/router.cfg", NULL},
         {NULL},
         "/nonexistent/router.cfg"},
        {{"--heartbeat", "2s", NULL}, {NULL}, "--heartbeat"},
        {{"--edge-liveness", "1s", NULL},
         {"TETHER_HEARTBEAT=600ms", NULL},
         "--edge-liveness"},
        {{"--edge-hwm", "3000000000", NULL}, {NULL}, "--edge-hwm"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        child_t child;
        int code = s_run (&child, cases[i].args, cases[i].env);
        if (code != 2 || !strstr (child.err, cases[i].expect))
            fail_msg ("case %zu: exit %d, stderr '%s', expected '%s'", i, code,
                      child.err, cases[i].expect);
        s_child_free (&child);
    }
    remove (file);
    free (file_arg);
    free (file);
}

//  config/router.cfg documents the defaults: loading it changes nothing.
static void
test_config_file_states_defaults (void **state)
{
    child_t plain, with_file;
    const char *args[] = {"--help", NULL};
    assert_int_equal (s_run (&plain, args, NULL), 0);
    const char *file_args[] = {
        "--config", TETHER_SOURCE_DIR "/config/router.cfg", "--help", NULL};
    assert_int_equal (s_run (&with_file, file_args, NULL), 0);
    assert_string_equal (with_file.out, plain.out);
    s_child_free (&plain);
    s_child_free (&with_file);
}

//  Start the router, talk to it as an edge, stop it with `signal_number`.
static void
s_run_and_stop (const char **args, const char **env, int signal_number)
{
    child_t child;
    s_child_start (&child, args, env);
    if (!s_child_read (&child, "router_port=")) {
        kill (child.pid, SIGKILL);
        s_child_wait (&child);
        fail_msg ("no 'router listening' line; stderr: %s", child.err);
    }
    int port = atoi (strstr (child.err, "router_port=") + 12);
    assert_true (port > 0);

    zsock_t *edge = zsock_new (ZMQ_DEALER);
    zsock_set_rcvtimeo (edge, S_DEADLINE_MS);
    assert_int_equal (zsock_connect (edge, "tcp://127.0.0.1:%d", port), 0);
    Wire__Envelope env_hello = WIRE__ENVELOPE__INIT;
    env_hello.command = WIRE__COMMAND__PING;
    env_hello.edge_id = "edge-bin:1";
    env_hello.incarnation = 1;
    zframe_t *frame = wire_envelope_encode (&env_hello);
    assert_int_equal (zframe_send (&frame, edge, 0), 0);
    zframe_t *answer = zframe_recv (edge);
    assert_non_null (answer);
    Wire__Envelope *pong = NULL;
    assert_int_equal (wire_envelope_decode (answer, &pong), 0);
    assert_int_equal (pong->command, WIRE__COMMAND__PONG);
    assert_false (pong->known);
    wire_envelope_free (&pong);
    zframe_destroy (&answer);
    zsock_destroy (&edge);

    assert_int_equal (kill (child.pid, signal_number), 0);
    int code = s_child_wait (&child);
    if (code != 0)
        fail_msg ("exit %d after signal %d; stderr: %s", code, signal_number,
                  child.err);
    s_child_free (&child);
}

static void
test_sigterm_exits_zero (void **state)
{
    //  No config file, endpoints from the environment.
    const char *env[] = {"TETHER_ROUTER_BIND=tcp://127.0.0.1:*",
                         "TETHER_MONITOR_BIND=tcp://127.0.0.1:*", NULL};
    s_run_and_stop (NULL, env, SIGTERM);
}

static void
test_sigint_exits_zero (void **state)
{
    const char *args[] = {"--bind", "tcp://127.0.0.1:*", "--monitor",
                          "",       "--log-level=debug", NULL};
    s_run_and_stop (args, NULL, SIGINT);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_help_lists_every_flag),
        cmocka_unit_test (test_bad_settings),
        cmocka_unit_test (test_config_file_states_defaults),
        cmocka_unit_test (test_sigterm_exits_zero),
        cmocka_unit_test (test_sigint_exits_zero),
    };
    int failed = cmocka_run_group_tests (tests, NULL, NULL);
    zsys_shutdown ();
    return failed;
}
