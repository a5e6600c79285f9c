/*  =========================================================================
    tether_log - logfmt lines for the library, or the caller's log function

    A tether_log_t is a small value (level, function, argument) embedded in
    the agent; it is set before the agent runs and only read afterwards, so
    it needs no lock.
    =========================================================================
*/
#ifndef TETHER_LOG_H_INCLUDED
#define TETHER_LOG_H_INCLUDED

#include "tether.h"
#include "tlog.h"

typedef struct
{
    tether_log_level_t level; //  Lowest level passed on
    tether_log_fn *fn;        //  NULL: logfmt on stderr
    void *arg;                //  Passed to fn
    const char *svc;          //  Service name on each line (static)
} tether_log_t;

//  Emit one line: ts, level, svc, msg="msg", then the key=value pairs
//  formatted from `fields` (may be NULL).
void tether_log (const tether_log_t *log,
                 tether_log_level_t level,
                 const char *msg,
                 const char *fields,
                 ...) __attribute__ ((format (printf, 4, 5)));

//  Values that may hold spaces or quotes go through tlog_quote.

#endif
