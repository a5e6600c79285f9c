/*  =========================================================================
    edge - tether-edge: the gRPC server and its bridge to the router

    An edge terminates agent and client gRPC calls (tether.v1.AgentGateway,
    grpc.health.v1.Health/Check) and turns each gRPC event into a wire
    message to the router, and each router message into gRPC operations
    (docs/protocol.md).  It runs the router in-process when no external
    router is configured.

    THREAD SAFETY: one thread (the owner) calls edge_new, edge_run and
    edge_destroy.  Block SIGINT and SIGTERM in every thread (pthread_sigmask
    before grpc_init and before the first socket) so that edge_run can read
    them from a signalfd.
    =========================================================================
*/
#ifndef TETHER_EDGE_H
#define TETHER_EDGE_H

#include "edge_config.h"

typedef struct _edge_t edge_t;

//  Bind the gRPC port, connect to (or start) the router and start serving.
//  `cfg` is borrowed and must outlive the edge.  Returns the edge (caller
//  owns it), or NULL after logging why (port busy, router bind failed ...).
//  REQUIRES: grpc_init has been called.
edge_t *edge_new (const edge_config_t *cfg);

//  Serve until SIGINT or SIGTERM, then end every call (agents get
//  UNAVAILABLE "edge shutting down", in-flight client calls UNAVAILABLE)
//  and shut the gRPC server down.  Returns 0.
int edge_run (edge_t *self);

//  Destroy the edge and null the pointer.  Does nothing when *self_p is
//  NULL.  REQUIRES: afterwards the caller may grpc_shutdown.
void edge_destroy (edge_t **self_p);

//  The gRPC port actually bound (useful with port 0).
int edge_port (edge_t *self);

#endif
