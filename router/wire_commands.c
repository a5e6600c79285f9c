/*  =========================================================================
    wire_commands - the table of edge -> router commands

    Invariant: the table is indexed by nothing but its rows; lookup is a
    scan of twelve entries, cheaper than any hash.
    =========================================================================
*/
#include "wire_commands.h"

static const wire_command_t s_commands[] = {
    {WIRE__COMMAND__HELLO, "HELLO", 1, 1, false, core_on_hello},
    {WIRE__COMMAND__PING, "PING", 1, 1, false, core_on_ping},
    {WIRE__COMMAND__SUBSCRIBE, "SUBSCRIBE", 1, 1, true, core_on_subscribe},
    {WIRE__COMMAND__UNSUBSCRIBE, "UNSUBSCRIBE", 1, 1, true,
     core_on_unsubscribe},
    {WIRE__COMMAND__PUBLISH, "PUBLISH", 2, 2, true, core_on_publish},
    {WIRE__COMMAND__CANCEL, "CANCEL", 1, 1, true, core_on_cancel},
    {WIRE__COMMAND__BIND, "BIND", 1, 1, true, core_on_bind},
    {WIRE__COMMAND__RESPONSE, "RESPONSE", 2, 2, true, core_on_response},
    {WIRE__COMMAND__END, "END", 1, 1, true, core_on_end},
    {WIRE__COMMAND__CREDIT, "CREDIT", 1, 1, true, core_on_credit},
    {WIRE__COMMAND__LIST, "LIST", 1, 1, true, core_on_list},
    {WIRE__COMMAND__BYE, "BYE", 1, 1, false, core_on_bye},
};

const wire_command_t *
wire_commands_lookup (int command)
{
    for (size_t i = 0; i < sizeof (s_commands) / sizeof (s_commands[0]); i++)
        if (s_commands[i].command == command)
            return &s_commands[i];
    return NULL;
}
