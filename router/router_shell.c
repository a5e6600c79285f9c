/*  =========================================================================
    router_shell - what every shell around router_core does with its outbox
    =========================================================================
*/
#include "router_shell.h"
#include "tlog.h"

#include <errno.h>

int
router_shell_send_nowait (zmsg_t *msg, zsock_t *sock)
{
    zframe_t *frame = zmsg_pop (msg);
    while (frame) {
        zframe_t *next = zmsg_pop (msg);
        int flags = ZFRAME_DONTWAIT | (next ? ZFRAME_MORE : 0);
        if (zframe_send (&frame, sock, flags) == -1) {
            int error = errno;
            zframe_destroy (&frame);
            zframe_destroy (&next);
            errno = error;
            return -1;
        }
        frame = next;
    }
    return 0;
}

void
router_shell_log (zmsg_t *msg)
{
    zframe_t *level_frame = zmsg_first (msg);
    tlog_level_t level = TLOG_INFO;
    if (level_frame && zframe_size (level_frame) >= 1) {
        char digit = (char) zframe_data (level_frame)[0];
        if (digit >= '0' && digit <= '3')
            level = (tlog_level_t) (digit - '0');
    }
    if (!tlog_enabled (level))
        return;
    level_frame = zmsg_pop (msg);
    zframe_destroy (&level_frame);
    char *text = zmsg_popstr (msg);
    char *fields = zmsg_popstr (msg);
    if (fields && *fields)
        tlog (level, text ? text : "", "%s", fields);
    else
        tlog (level, text ? text : "", NULL);
    zstr_free (&text);
    zstr_free (&fields);
}

size_t
router_shell_subscriptions (zsock_t *xpub, size_t count)
{
    void *handle = zsock_resolve (xpub);
    byte head[1];
    int size;
    while ((size = zmq_recv (handle, head, sizeof head, ZMQ_DONTWAIT)) >= 0) {
        if (size >= 1 && head[0] == 1)
            count++;
        else if (size >= 1 && head[0] == 0 && count > 0)
            count--;
    }
    return count;
}

void
router_shell_key_core (core_t *core)
{
    //  16 random bytes, from the source the incarnation comes from
    zuuid_t *uuid = zuuid_new ();
    assert (uuid);
    int rc = core_set_hash_key (core, zuuid_data (uuid));
    assert (rc == 0);
    zuuid_destroy (&uuid);
}
