#!/bin/sh
#   tether-entrypoint - the container's entry point: runs its arguments.
#
#   One image serves every role; the command picks it (tether-edge,
#   tether-router, tether-exporter, tether agent ...).  For tether-edge
#   with no name set, the edge takes the container's hostname as its name:
#   every replica of a scaled service gets the same environment, and two
#   edges with one name would replace each other at the router (the
#   default name, the listen address, is the same in every replica).
set -eu

if [ "$#" -eq 0 ]; then
    set -- tether-edge
fi
if [ "$1" = "tether-edge" ] && [ -z "${TETHER_NAME:-}" ]; then
    TETHER_NAME="${HOSTNAME:-$(cat /proc/sys/kernel/hostname)}"
    export TETHER_NAME
fi
exec "$@"
