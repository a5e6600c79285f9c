/*  =========================================================================
    timers - a binary min-heap of deadlines, ordered by (due_ms, seq)

    The router's deadlines (request timeouts, waits, edge liveness, the
    periodic stats) live in heaps of this kind, so the earliest one is read
    in O(1) and arming, re-arming or disarming one costs O(log n).  `seq`
    is a counter taken at every (re)arm, so timers due at the same
    millisecond fire in the order they were armed.

    Nodes are intrusive: the owner embeds a timers_node_t in its own struct
    (a request, an edge) and the heap holds pointers to them.  The heap
    never allocates or frees a node; an owner must disarm its nodes before
    it frees them.  Each node remembers its slot in the heap, which makes
    removal by node O(log n) with no search.
    =========================================================================
*/
#ifndef TETHER_TIMERS_H
#define TETHER_TIMERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct
{
    int64_t due_ms; //  when it fires (caller's clock, ms)
    uint64_t seq;   //  tie-break: arming order
    size_t slot;    //  index in the heap + 1; 0 = not armed
    int kind;       //  caller's tag: what the timer is for
    void *owner;    //  caller's pointer: whose timer it is
} timers_node_t;

typedef struct _timers_t timers_t;

//  Create an empty heap.  Never returns NULL.
timers_t *timers_new (void);

//  Destroy the heap (not the nodes it points to) and null the pointer.
//  Does nothing when *self_p is NULL.
void timers_destroy (timers_t **self_p);

//  Prepare a node: not armed, with the caller's kind and owner.
void timers_node_init (timers_node_t *node, int kind, void *owner);

//  Arm `node` (borrowed; must stay valid until it fires or is disarmed) to
//  fire at `due_ms`.  Re-arms it when it is already armed.
void timers_arm (timers_t *self, timers_node_t *node, int64_t due_ms);

//  Disarm `node`.  Does nothing when it is not armed.
void timers_disarm (timers_t *self, timers_node_t *node);

//  True when `node` is armed.
bool timers_armed (const timers_node_t *node);

//  Returns the earliest node (borrowed, still armed), or NULL when the heap
//  is empty.
timers_node_t *timers_peek (timers_t *self);

//  When the earliest node is due at or before `now_ms`, disarm and return
//  it (borrowed); else return NULL.
timers_node_t *timers_pop_due (timers_t *self, int64_t now_ms);

//  Returns the number of armed nodes.
size_t timers_size (timers_t *self);

#endif
