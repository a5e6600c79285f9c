/*  =========================================================================
    tlog - logfmt log lines on stderr

    The threshold and the service name are the only process-wide state in
    Tether: logging must be reachable from every module without threading
    a handle through each call, as with zsys.  They are written once by
    tlog_setup before threads start and only read afterwards.
    =========================================================================
*/
#include "tlog.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static tlog_level_t s_level = TLOG_INFO;
static char s_ident[64] = "tether";

static const char *s_level_name[] = {"debug", "info", "warn", "error", "off"};

void
tlog_setup (tlog_level_t level, const char *ident)
{
    s_level = level;
    if (ident)
        snprintf (s_ident, sizeof s_ident, "%s", ident);
}

int
tlog_level_parse (const char *name, tlog_level_t *level)
{
    for (int i = TLOG_DEBUG; i <= TLOG_OFF; i++)
        if (name && strcmp (name, s_level_name[i]) == 0) {
            *level = (tlog_level_t) i;
            return 0;
        }
    if (name && strcmp (name, "warning") == 0) {
        *level = TLOG_WARN;
        return 0;
    }
    return -1;
}

bool
tlog_enabled (tlog_level_t level)
{
    return level >= s_level && level < TLOG_OFF;
}

const char *
tlog_quote (const char *value, char *buf, size_t size)
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
    if (n + 1 < size)
        buf[n++] = '"';
    buf[n < size ? n : size - 1] = 0;
    return buf;
}

//  How much of `room` bytes a snprintf that returned `rc` filled.
static size_t
s_filled (int rc, size_t room)
{
    if (rc < 0)
        return 0;
    return (size_t) rc < room ? (size_t) rc : room - 1;
}

size_t
tlog_vformat (char *line,
              size_t size,
              bool with_ts,
              tlog_level_t level,
              const char *svc,
              const char *msg,
              const char *fields,
              va_list args)
{
    size_t n = 0;
    if (with_ts) {
        struct timespec ts;
        clock_gettime (CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r (&ts.tv_sec, &tm);
        n += s_filled (
            snprintf (line, size, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ",
                      tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                      tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000),
            size);
    }
    char quoted[512];
    n += s_filled (snprintf (line + n, size - n, "level=%s svc=%s msg=%s",
                             s_level_name[level], svc,
                             tlog_quote (msg, quoted, sizeof quoted)),
                   size - n);
    if (fields && *fields && n < size - 2) {
        line[n++] = ' ';
        n += s_filled (vsnprintf (line + n, size - n, fields, args), size - n);
    }
    if (n > size - 2)
        n = size - 2;
    line[n] = 0;
    return n;
}

void
tlog (tlog_level_t level, const char *msg, const char *fields, ...)
{
    if (!tlog_enabled (level))
        return;
    char line[2048];
    va_list args;
    va_start (args, fields);
    size_t n = tlog_vformat (line, sizeof line, true, level, s_ident, msg,
                             fields, args);
    va_end (args);
    line[n++] = '\n';
    //  One write per line, so lines from several threads never interleave.
    ssize_t rc = write (STDERR_FILENO, line, n);
    (void) rc;
}
