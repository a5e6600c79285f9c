/*  =========================================================================
    tether_status - gRPC status names and the command line's exit codes

    The names come from common/tstatus (one table for the tree); the exit
    code mapping (0 for OK, 10 + code otherwise) lives here so that the
    library, the command line and the documentation agree.
    =========================================================================
*/
#include "tether.h"
#include "tstatus.h"

#define S_STATUS_COUNT TSTATUS_COUNT

const char *
tether_status_name (int code)
{
    const char *name = tstatus_name (code);
    return name ? name : "UNKNOWN_STATUS";
}

int
tether_status_from_name (const char *name)
{
    return tstatus_from_name (name);
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
