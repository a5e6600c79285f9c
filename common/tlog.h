/*  =========================================================================
    tlog - logfmt log lines on stderr

    One line per event worth a human's eye:
        ts=2026-11-25T03:20:00.123Z level=info svc=tether-router msg="agent up" agent=dev-1 edge=e1
    The level and the service name are process-wide settings made once at
    start (like zsys's log identity); everything else is an argument.
    Callers put request, agent and edge ids on every line that concerns
    them.  Values that may hold spaces or quotes go through tlog_quote.
    =========================================================================
*/
#ifndef TETHER_TLOG_H
#define TETHER_TLOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum
{
    TLOG_DEBUG = 0,
    TLOG_INFO = 1,
    TLOG_WARN = 2,
    TLOG_ERROR = 3,
    TLOG_OFF = 4
} tlog_level_t;

//  Set the process-wide threshold and service name.  Call from main before
//  starting threads.  `ident` is copied.
void tlog_setup (tlog_level_t level, const char *ident);

//  Parse "debug", "info", "warn", "error" or "off".  Returns 0 and sets
//  *level, or -1 for any other string.
int tlog_level_parse (const char *name, tlog_level_t *level);

//  True when lines of `level` are printed.
bool tlog_enabled (tlog_level_t level);

//  Print one line: ts, level, svc, msg="`msg`", then the key=value pairs
//  formatted from `fields` (may be NULL).  Thread-safe (one write per line).
void tlog (tlog_level_t level, const char *msg, const char *fields, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Format one line into `line` (`size` >= 2 bytes): with `with_ts` the
//  time first, then level, svc=`svc`, msg="`msg`" and the key=value pairs
//  formatted from `fields` (may be NULL) with `args`; truncated to fit,
//  NUL-terminated, no newline.  Returns its length, at most size - 2, so
//  that a newline still fits.  Reads no process-wide setting: libtether
//  uses it with its own level and service name.
size_t tlog_vformat (char *line,
                     size_t size,
                     bool with_ts,
                     tlog_level_t level,
                     const char *svc,
                     const char *msg,
                     const char *fields,
                     va_list args) __attribute__ ((format (printf, 7, 0)));

//  Write `value` into `buf` as a logfmt value: unchanged when it is a plain
//  token, else double-quoted with \" and \\ escaped and control bytes as
//  \xNN; truncated to fit.  Returns `buf`.
const char *tlog_quote (const char *value, char *buf, size_t size);

#endif
