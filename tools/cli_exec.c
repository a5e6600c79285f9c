/*  =========================================================================
    cli_exec - answer a request by running a handler executable

    One thread per run.  The thread owns the request, the child and its
    pipes.  Cancellation reaches it through an eventfd written by the
    request's cancel function (which must not block: a write to an eventfd
    does not), and the child's exit through a pidfd, so the thread only ever
    waits in poll(2) with a bounded timeout.
    =========================================================================
*/
#include "cli_exec.h"
#include "cli_parse.h"
#include "tlog.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct _cli_exec_t
{
    char *dir;             //  Handler directory
    uint32_t timeout_ms;   //  Local bound per run, 0 = none
    uint32_t grace_ms;     //  SIGTERM -> SIGKILL
    size_t max_running;    //  Limit on running, > 0
    pthread_mutex_t mutex; //  Guards running
    pthread_cond_t cond;   //  Signalled when running drops
    size_t running;        //  Threads alive
};

typedef struct
{
    cli_exec_t *exec;          //  Parent runner (outlives the job)
    tether_request_t *request; //  Owned
    char *path;                //  DIR/call
    char **env;                //  Environment for execve, owned
    int wake_fd;               //  eventfd, written on cancel
} s_job_t;

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

cli_exec_t *
cli_exec_new (const char *dir,
              uint32_t timeout_ms,
              uint32_t grace_ms,
              size_t max_running)
{
    assert (dir);
    if (max_running == 0)
        return NULL;
    cli_exec_t *self = (cli_exec_t *) calloc (1, sizeof *self);
    assert (self);
    self->dir = strdup (dir);
    assert (self->dir);
    self->timeout_ms = timeout_ms;
    self->grace_ms = grace_ms;
    self->max_running = max_running;
    pthread_mutex_init (&self->mutex, NULL);
    pthread_cond_init (&self->cond, NULL);
    return self;
}

void
cli_exec_destroy (cli_exec_t **self_p)
{
    assert (self_p);
    cli_exec_t *self = *self_p;
    if (!self)
        return;
    pthread_mutex_lock (&self->mutex);
    while (self->running > 0)
        pthread_cond_wait (&self->cond, &self->mutex);
    pthread_mutex_unlock (&self->mutex);
    pthread_cond_destroy (&self->cond);
    pthread_mutex_destroy (&self->mutex);
    free (self->dir);
    free (self);
    *self_p = NULL;
}

size_t
cli_exec_running (cli_exec_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    size_t running = self->running;
    pthread_mutex_unlock (&self->mutex);
    return running;
}

static char *
s_path (cli_exec_t *self, const char *name)
{
    size_t size = strlen (self->dir) + strlen (name) + 2;
    char *path = (char *) malloc (size);
    assert (path);
    snprintf (path, size, "%s/%s", self->dir, name);
    return path;
}

bool
cli_exec_has (cli_exec_t *self, const char *name)
{
    assert (self);
    if (!cli_parse_handler_name (name))
        return false;
    char *path = s_path (self, name);
    struct stat st;
    bool has = stat (path, &st) == 0 && S_ISREG (st.st_mode)
               && access (path, X_OK) == 0;
    free (path);
    return has;
}

static char *
s_env_entry (const char *prefix, const char *key, const char *value)
{
    size_t size = strlen (prefix) + strlen (key) + strlen (value) + 2;
    char *entry = (char *) malloc (size);
    assert (entry);
    size_t n = (size_t) snprintf (entry, size, "%s", prefix);
    for (const char *c = key; *c; c++) {
        char up = *c >= 'a' && *c <= 'z' ? (char) (*c - 32) : *c;
        bool ok = (up >= 'A' && up <= 'Z') || (up >= '0' && up <= '9');
        entry[n++] = ok ? up : '_';
    }
    snprintf (entry + n, size - n, "=%s", value);
    return entry;
}

//  The child's environment: ours, minus TETHER_* names we set, plus the
//  request's.  Built before fork (no allocation after fork).
static char **
s_env_new (const char *agent_id, tether_request_t *request)
{
    size_t base = 0;
    while (environ[base])
        base++;
    size_t headers = tether_request_header_count (request);
    char **env = (char **) calloc (base + headers + 4, sizeof (char *));
    assert (env);
    size_t n = 0;
    for (size_t i = 0; i < base; i++)
        if (strncmp (environ[i], "TETHER_", 7) != 0) {
            env[n] = strdup (environ[i]);
            assert (env[n]);
            n++;
        }
    env[n++] = s_env_entry ("TETHER_AGENT_ID", "", agent_id);
    env[n++] =
        s_env_entry ("TETHER_REQUEST_ID", "", tether_request_id (request));
    env[n++] = s_env_entry ("TETHER_CALL", "", tether_request_call (request));
    for (size_t i = 0; i < headers; i++) {
        const char *key, *value;
        tether_request_header_at (request, i, &key, &value);
        env[n++] = s_env_entry ("TETHER_HEADER_", key, value);
    }
    env[n] = NULL;
    return env;
}

static void
s_job_destroy (s_job_t **job_p)
{
    s_job_t *job = *job_p;
    for (char **e = job->env; *e; e++)
        free (*e);
    free (job->env);
    free (job->path);
    if (job->wake_fd >= 0)
        close (job->wake_fd);
    free (job);
    *job_p = NULL;
}

static void
s_on_cancel (tether_request_t *request, void *arg)
{
    s_job_t *job = (s_job_t *) arg;
    uint64_t one = 1;
    ssize_t rc = write (job->wake_fd, &one, sizeof one);
    (void) rc;
}

static pid_t
s_spawn (s_job_t *job, int *stdin_p, int *stdout_p)
{
    int in[2], out[2];
    if (pipe2 (in, O_CLOEXEC) == -1)
        return -1;
    if (pipe2 (out, O_CLOEXEC) == -1) {
        close (in[0]);
        close (in[1]);
        return -1;
    }
    char *argv[] = {job->path, NULL};
    pid_t pid = fork ();
    if (pid == 0) {
        //  Child: only async-signal-safe calls from here to execve.
        setpgid (0, 0);
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        signal (SIGPIPE, SIG_DFL);
        dup2 (in[0], STDIN_FILENO);
        dup2 (out[1], STDOUT_FILENO);
        execve (job->path, argv, job->env);
        _exit (127);
    }
    close (in[0]);
    close (out[1]);
    if (pid < 0) {
        close (in[1]);
        close (out[0]);
        return -1;
    }
    //  Also from the parent, so a kill cannot race the child's setpgid.
    setpgid (pid, pid);
    fcntl (in[1], F_SETFL, O_NONBLOCK);
    *stdin_p = in[1];
    *stdout_p = out[0];
    return pid;
}

//  Wait for the child to exit, up to `timeout_ms` (-1 = forever) or until
//  the wake fd fires (when `wake` is true).  Returns 1 when it exited
//  (status in *status_p), 0 on timeout, 2 on wake.
static int
s_wait_child (pid_t pid, int pidfd, int wake_fd, int timeout_ms, int *status_p)
{
    int64_t until = timeout_ms < 0 ? -1 : s_now_ms () + timeout_ms;
    while (true) {
        if (waitpid (pid, status_p, WNOHANG) == pid)
            return 1;
        int wait_ms = -1;
        if (until >= 0) {
            wait_ms = (int) (until - s_now_ms ());
            if (wait_ms <= 0)
                return 0;
        }
        struct pollfd items[2];
        nfds_t count = 0;
        if (pidfd >= 0)
            items[count++] = (struct pollfd){pidfd, POLLIN, 0};
        if (wake_fd >= 0)
            items[count++] = (struct pollfd){wake_fd, POLLIN, 0};
        //  Without a pidfd, look again every 20 ms.
        if (pidfd < 0 && (wait_ms < 0 || wait_ms > 20))
            wait_ms = 20;
        int rc = poll (items, count, wait_ms);
        if (rc > 0 && wake_fd >= 0 && (items[count - 1].revents & POLLIN))
            return 2;
    }
}

static void
s_kill (cli_exec_t *self, pid_t pid, int pidfd, int *status_p)
{
    kill (-pid, SIGTERM);
    if (s_wait_child (pid, pidfd, -1, (int) self->grace_ms, status_p) == 1) {
        kill (-pid, SIGKILL); //  Anything left in the group
        return;
    }
    kill (-pid, SIGKILL);
    waitpid (pid, status_p, 0);
}

//  One handler thread fewer; wakes cli_exec_destroy.
static void
s_running_drop (cli_exec_t *self)
{
    pthread_mutex_lock (&self->mutex);
    self->running--;
    pthread_cond_broadcast (&self->cond);
    pthread_mutex_unlock (&self->mutex);
}

static void *
s_job_run (void *arg)
{
    s_job_t *job = (s_job_t *) arg;
    cli_exec_t *self = job->exec;
    tether_request_t *request = job->request;
    //  Here rather than before the thread starts: a cancel that came
    //  earlier runs s_on_cancel now, and a thread that failed to start
    //  leaves no callback behind.
    tether_request_set_cancel_fn (request, s_on_cancel, job);
    char quoted[2][128];
    tlog_quote (tether_request_id (request), quoted[0], sizeof quoted[0]);
    tlog_quote (tether_request_call (request), quoted[1], sizeof quoted[1]);

    int in_fd = -1, out_fd = -1;
    pid_t pid = s_spawn (job, &in_fd, &out_fd);
    if (pid < 0) {
        tlog (TLOG_ERROR, "cannot start handler", "request=%s call=%s err=%d",
              quoted[0], quoted[1], errno);
        tether_request_end (&request, TETHER_INTERNAL, "cannot start handler");
        goto cleanup;
    }
    int pidfd = (int) syscall (SYS_pidfd_open, pid, 0);
    tlog (TLOG_INFO, "handler started", "request=%s call=%s pid=%d", quoted[0],
          quoted[1], (int) pid);

    size_t payload_size;
    const uint8_t *payload = tether_request_payload (request, &payload_size);
    size_t written = 0;
    if (payload_size == 0) {
        close (in_fd);
        in_fd = -1;
    }
    int64_t until = self->timeout_ms ? s_now_ms () + self->timeout_ms : -1;
    const char *stop_reason = NULL; //  Why we kill, NULL = we don't
    uint8_t buffer[65536];
    while (out_fd >= 0 && !stop_reason) {
        struct pollfd items[3] = {{out_fd, POLLIN, 0},
                                  {job->wake_fd, POLLIN, 0},
                                  {in_fd, POLLOUT, 0}};
        int wait_ms = -1;
        if (until >= 0) {
            wait_ms = (int) (until - s_now_ms ());
            if (wait_ms <= 0) {
                stop_reason = "timeout";
                break;
            }
        }
        if (poll (items, in_fd >= 0 ? 3 : 2, wait_ms) < 0 && errno != EINTR)
            break;
        if (items[1].revents & POLLIN) {
            stop_reason = "cancelled";
            break;
        }
        if (in_fd >= 0 && (items[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t rc =
                write (in_fd, payload + written, payload_size - written);
            if (rc > 0)
                written += (size_t) rc;
            if ((rc < 0 && errno != EAGAIN && errno != EINTR)
                || written == payload_size) {
                close (in_fd);
                in_fd = -1;
            }
        }
        if (items[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t rc = read (out_fd, buffer, sizeof buffer);
            if (rc > 0) {
                if (tether_request_send (request, buffer, (size_t) rc) == -1)
                    stop_reason = "response call ended";
            } else if (rc == 0 || (errno != EAGAIN && errno != EINTR)) {
                close (out_fd);
                out_fd = -1;
            }
        }
    }
    int status = 0;
    if (!stop_reason) {
        int wait_ms = until < 0 ? -1 : (int) (until - s_now_ms ());
        if (wait_ms < 0 && until >= 0)
            wait_ms = 0;
        int rc = s_wait_child (pid, pidfd, job->wake_fd, wait_ms, &status);
        if (rc == 0)
            stop_reason = "timeout";
        else if (rc == 2)
            stop_reason = "cancelled";
    }
    if (stop_reason) {
        tlog (TLOG_INFO, "killing handler",
              "request=%s call=%s pid=%d reason=%s", quoted[0], quoted[1],
              (int) pid, tlog_quote (stop_reason, quoted[1], sizeof quoted[1]));
        s_kill (self, pid, pidfd, &status);
    }
    if (pidfd >= 0)
        close (pidfd);
    if (in_fd >= 0)
        close (in_fd);
    if (out_fd >= 0)
        close (out_fd);

    if (stop_reason && strcmp (stop_reason, "timeout") == 0)
        tether_request_end (&request, TETHER_DEADLINE_EXCEEDED,
                            "handler timed out");
    else if (stop_reason)
        tether_request_destroy (&request);
    else if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
        tether_request_end (&request, TETHER_OK, NULL);
    else {
        char message[64];
        int code = TETHER_UNKNOWN;
        if (WIFEXITED (status)) {
            int mapped = tether_status_from_exit_code (WEXITSTATUS (status));
            if (mapped > 0)
                code = mapped;
            snprintf (message, sizeof message, "handler exited with %d",
                      WEXITSTATUS (status));
        } else
            snprintf (message, sizeof message, "handler killed by signal %d",
                      WTERMSIG (status));
        tether_request_end (&request, code, message);
    }
    tlog (TLOG_INFO, "handler done", "request=%s pid=%d status=%d", quoted[0],
          (int) pid, status);

cleanup:
    s_job_destroy (&job);
    s_running_drop (self);
    return NULL;
}

//  Ends a request that could not get a handler, logging why.
static void
s_refuse (tether_request_t **request_p, int code, const char *message, int err)
{
    char quoted[2][128];
    tlog (TLOG_WARN, message, "request=%s call=%s err=%d",
          tlog_quote (tether_request_id (*request_p), quoted[0],
                      sizeof quoted[0]),
          tlog_quote (tether_request_call (*request_p), quoted[1],
                      sizeof quoted[1]),
          err);
    tether_request_end (request_p, code, message);
}

void
cli_exec_start (cli_exec_t *self,
                const char *agent_id,
                tether_request_t **request_p)
{
    assert (self && request_p && *request_p);
    pthread_mutex_lock (&self->mutex);
    bool full = self->running >= self->max_running;
    if (!full)
        self->running++;
    pthread_mutex_unlock (&self->mutex);
    if (full) {
        s_refuse (request_p, TETHER_RESOURCE_EXHAUSTED,
                  "too many handlers running", 0);
        return;
    }
    int wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd < 0) {
        s_refuse (request_p, TETHER_INTERNAL,
                  "cannot start handler: no eventfd", errno);
        s_running_drop (self);
        return;
    }
    s_job_t *job = (s_job_t *) calloc (1, sizeof *job);
    assert (job);
    job->exec = self;
    job->request = *request_p;
    *request_p = NULL;
    job->path = s_path (self, tether_request_call (job->request));
    job->env = s_env_new (agent_id, job->request);
    job->wake_fd = wake_fd;

    pthread_attr_t attr;
    pthread_attr_init (&attr);
    pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    int rc = pthread_create (&thread, &attr, s_job_run, job);
    pthread_attr_destroy (&attr);
    if (rc != 0) {
        tether_request_t *request = job->request;
        job->request = NULL;
        s_job_destroy (&job);
        s_refuse (&request, TETHER_INTERNAL, "cannot start handler: no thread",
                  rc);
        s_running_drop (self);
    }
}
