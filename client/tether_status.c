/*  =========================================================================
    tether_status - gRPC status names and the command line's exit codes

    One table maps the 17 gRPC codes to their names; the exit code mapping
    (0 for OK, 10 + code otherwise) lives here so that the library, the
    command line and the documentation agree.
    =========================================================================
*/
#include "tether.h"

#include <strings.h>

static const char *s_status_name[] = {"OK",
                                      "CANCELLED",
                                      "UNKNOWN",
                                      "INVALID_ARGUMENT",
                                      "DEADLINE_EXCEEDED",
                                      "NOT_FOUND",
                                      "ALREADY_EXISTS",
                                      "PERMISSION_DENIED",
                                      "RESOURCE_EXHAUSTED",
                                      "FAILED_PRECONDITION",
                                      "ABORTED",
                                      "OUT_OF_RANGE",
                                      "UNIMPLEMENTED",
                                      "INTERNAL",
                                      "UNAVAILABLE",
                                      "DATA_LOSS",
                                      "UNAUTHENTICATED"};

#define S_STATUS_COUNT (int) (sizeof s_status_name / sizeof s_status_name[0])

const char *
tether_status_name (int code)
{
    if (code < 0 || code >= S_STATUS_COUNT)
        return "UNKNOWN_STATUS";
    return s_status_name[code];
}

int
tether_status_from_name (const char *name)
{
    for (int code = 0; name && code < S_STATUS_COUNT; code++)
        if (strcasecmp (name, s_status_name[code]) == 0)
            return code;
    return -1;
}

int
tether_status_exit_code (int code)
{
    if (code == TETHER_OK)
        return 0;
    if (code < 0 || code >= S_STATUS_COUNT)
        code = TETHER_UNKNOWN;
    return TETHER_EXIT_STATUS_BASE + code;
}

int
tether_status_from_exit_code (int exit_code)
{
    if (exit_code == 0)
        return TETHER_OK;
    int code = exit_code - TETHER_EXIT_STATUS_BASE;
    if (code < 1 || code >= S_STATUS_COUNT)
        return -1;
    return code;
}
