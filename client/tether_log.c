/*  =========================================================================
    tether_log - logfmt lines for the library

    Each line is formatted in a local buffer and written with one write(2),
    so lines from several threads never interleave.
    =========================================================================
*/
#include "tether_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *s_level_name[] = {"debug", "info", "warn", "error", "off"};

const char *
tether_log_quote (const char *value, char *buf, size_t size)
{
    if (size == 0)
        return buf;
    if (!value)
        value = "";
    bool plain = *value != 0;
    for (const char *c = value; *c && plain; c++)
        if (*c <= ' ' || *c == '"' || *c == '=' || *c == '\\'
            || (unsigned char) *c >= 0x7f)
            plain = false;
    if (plain) {
        snprintf (buf, size, "%s", value);
        return buf;
    }
    size_t n = 0;
    buf[n++] = '"';
    for (const unsigned char *c = (const unsigned char *) value;
         *c && n + 6 < size; c++) {
        if (*c == '"' || *c == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char) *c;
        } else if (*c < ' ' || *c == 0x7f)
            n += (size_t) snprintf (buf + n, size - n, "\\x%02x", *c);
        else
            buf[n++] = (char) *c;
    }
    buf[n++] = '"';
    buf[n] = 0;
    return buf;
}

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
    size_t n = 0;
    if (!log->fn) {
        struct timespec ts;
        clock_gettime (CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r (&ts.tv_sec, &tm);
        n += strftime (line, sizeof line, "ts=%Y-%m-%dT%H:%M:%S", &tm);
        n += (size_t) snprintf (line + n, sizeof line - n, ".%03ldZ ",
                                ts.tv_nsec / 1000000);
    }
    char quoted[256];
    n += (size_t) snprintf (line + n, sizeof line - n, "level=%s svc=%s msg=%s",
                            s_level_name[level], log->svc ? log->svc : "tether",
                            tether_log_quote (msg, quoted, sizeof quoted));
    if (fields && n < sizeof line - 1) {
        line[n++] = ' ';
        va_list args;
        va_start (args, fields);
        int rc = vsnprintf (line + n, sizeof line - n, fields, args);
        va_end (args);
        if (rc > 0)
            n += (size_t) rc;
    }
    if (n > sizeof line - 2)
        n = sizeof line - 2;
    if (log->fn) {
        line[n] = 0;
        log->fn (level, line, log->arg);
        return;
    }
    line[n++] = '\n';
    ssize_t rc = write (STDERR_FILENO, line, n);
    (void) rc;
}
