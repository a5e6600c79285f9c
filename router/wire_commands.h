/*  =========================================================================
    wire_commands - the table of edge -> router commands

    One row per command the router accepts: its wire id, its name, how many
    frames it must have, whether its sender must have said HELLO first, and
    its handler.  core_handle looks the command up here and checks all of
    that before any handler runs, so a handler never sees a message of the
    wrong shape.  Router -> edge commands are not in the table: an edge
    sending one is malformed input.
    =========================================================================
*/
#ifndef TETHER_WIRE_COMMANDS_H
#define TETHER_WIRE_COMMANDS_H

#include "router_core_internal.h"

typedef struct
{
    int command;              //  Wire__Command value
    const char *name;         //  for logs
    size_t min_frames;        //  frames after the routing id, at least
    size_t max_frames;        //  and at most
    bool needs_edge;          //  only from an edge that said HELLO
    core_handler_fn *handler; //  router_core.c
} wire_command_t;

//  Returns the row for `command` (borrowed, static storage), or NULL when
//  the router does not accept that command.
const wire_command_t *wire_commands_lookup (int command);

#endif
