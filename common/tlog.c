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
        }
        else
        if (*c < ' ' || *c == 0x7f)
            n += (size_t) snprintf (buf + n, size - n, "\\x%02x", *c);
        else
            buf[n++] = (char) *c;
    }
    if (n + 1 < size)
        buf[n++] = '"';
    buf[n < size ? n : size - 1] = 0;
    return buf;
}

void
tlog (tlog_level_t level, const char *msg, const char *fields, ...)
{
    if (!tlog_enabled (level))
        return;
    char line[2048];
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r (&ts.tv_sec, &tm);
    char quoted[512];
    int n = snprintf (line, sizeof line,
                      "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s svc=%s "
                      "msg=%s",
                      tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                      tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                      s_level_name[level], s_ident,
                      tlog_quote (msg, quoted, sizeof quoted));
    if (fields && *fields && n > 0 && (size_t) n < sizeof line - 2) {
        line[n++] = ' ';
        va_list args;
        va_start (args, fields);
        int m = vsnprintf (line + n, sizeof line - (size_t) n, fields, args);
        va_end (args);
        if (m > 0)
            n += m;
    }
    if (n < 0)
        return;
    if ((size_t) n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    //  One write per line, so lines from several threads never interleave.
    ssize_t rc = write (STDERR_FILENO, line, (size_t) n);
    (void) rc;
}
