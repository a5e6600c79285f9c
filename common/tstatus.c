/*  =========================================================================
    tstatus - gRPC status code names
    =========================================================================
*/
#include "tstatus.h"

#include <stddef.h>
#include <strings.h>

static const char *s_name[TSTATUS_COUNT] = {"OK",
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

const char *
tstatus_name (int code)
{
    return code >= 0 && code < TSTATUS_COUNT ? s_name[code] : NULL;
}

int
tstatus_from_name (const char *name)
{
    for (int code = 0; name && code < TSTATUS_COUNT; code++)
        if (strcasecmp (name, s_name[code]) == 0)
            return code;
    return -1;
}
