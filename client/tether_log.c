/*  =========================================================================
    tether_log - logfmt lines for the library

    The line itself is made by tlog_vformat (common/tlog.c, compiled into
    the library with hidden symbols), so the library's lines read exactly
    like the gateway's.  What differs is where they go: each agent has its
    own level and may have a log function; without one, each line is
    written with one write(2), so lines from several threads never
    interleave.
    =========================================================================
*/
#include "tether_log.h"

#include <stdarg.h>
#include <unistd.h>

_Static_assert((int) TETHER_LOG_DEBUG == (int) TLOG_DEBUG
                   && (int) TETHER_LOG_INFO == (int) TLOG_INFO
                   && (int) TETHER_LOG_WARN == (int) TLOG_WARN
                   && (int) TETHER_LOG_ERROR == (int) TLOG_ERROR
                   && (int) TETHER_LOG_OFF == (int) TLOG_OFF,
               "tether_log_level_t and tlog_level_t must agree");

void
tether_log (const tether_log_t *log,
            tether_log_level_t level,
            const char *msg,
            const char *fields,
            ...)
{
    if (level < log->level || level >= TETHER_LOG_OFF)
        return;
    char line[1024];
    va_list args;
    va_start (args, fields);
    //  A log function gets the line without the time: it has its own.
    size_t n = tlog_vformat (line, sizeof line, !log->fn, (tlog_level_t) level,
                             log->svc ? log->svc : "tether", msg, fields, args);
    va_end (args);
    if (log->fn) {
        log->fn (level, line, log->arg);
        return;
    }
    line[n++] = '\n';
    ssize_t rc = write (STDERR_FILENO, line, n);
    (void) rc;
}
