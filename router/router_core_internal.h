/*  =========================================================================
    router_core_internal - what router_core.c shares with wire_commands.c

    The wire command table (wire_commands.c) names a handler per command;
    the handlers live in router_core.c, next to the state they change.
    Nothing outside router/ includes this header.
    =========================================================================
*/
#ifndef TETHER_ROUTER_CORE_INTERNAL_H
#define TETHER_ROUTER_CORE_INTERNAL_H

#include "router_core.h"
#include "wire_envelope.h"

typedef struct _core_edge_t core_edge_t;

//  One decoded message, as the dispatcher hands it to a handler.  The
//  dispatcher has checked the envelope's version, the command and the
//  frame count; the handler checks the fields it uses.
typedef struct
{
    zframe_t *routing_id; //  the sender's routing id, borrowed
    core_edge_t *edge;    //  the sender, NULL when it sent no HELLO
    Wire__Envelope *env;  //  frame 1, borrowed
    zframe_t *payload;    //  frame 2 or NULL; owned by the input, a
                          //  handler may take it (and NULL this)
    int64_t now_ms;       //  the time of the message
} core_input_t;

typedef void (core_handler_fn) (core_t *self, core_input_t *in);

//  Command handlers, one per edge -> router command (router_core.c).
void core_on_hello (core_t *self, core_input_t *in);
void core_on_ping (core_t *self, core_input_t *in);
void core_on_subscribe (core_t *self, core_input_t *in);
void core_on_unsubscribe (core_t *self, core_input_t *in);
void core_on_publish (core_t *self, core_input_t *in);
void core_on_cancel (core_t *self, core_input_t *in);
void core_on_bind (core_t *self, core_input_t *in);
void core_on_response (core_t *self, core_input_t *in);
void core_on_end (core_t *self, core_input_t *in);
void core_on_credit (core_t *self, core_input_t *in);
void core_on_list (core_t *self, core_input_t *in);
void core_on_bye (core_t *self, core_input_t *in);

#endif
