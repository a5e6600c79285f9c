/*  =========================================================================
    timers - a binary min-heap of deadlines, ordered by (due_ms, seq)

    Invariants: heap[i] has slot == i + 1; every parent is not later than
    its children in (due_ms, seq) order; a node not in the heap has slot 0.
    =========================================================================
*/
#include "timers.h"

#include <assert.h>
#include <stdlib.h>

struct _timers_t
{
    timers_node_t **heap; //  the nodes, as a binary heap
    size_t size;          //  nodes in the heap
    size_t capacity;      //  room in `heap`
    uint64_t seq;         //  arming counter
};

timers_t *
timers_new (void)
{
    timers_t *self = (timers_t *) calloc (1, sizeof (timers_t));
    assert (self);
    return self;
}

void
timers_destroy (timers_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        timers_t *self = *self_p;
        for (size_t i = 0; i < self->size; i++)
            self->heap[i]->slot = 0;
        free (self->heap);
        free (self);
        *self_p = NULL;
    }
}

void
timers_node_init (timers_node_t *node, int kind, void *owner)
{
    assert (node);
    node->due_ms = 0;
    node->seq = 0;
    node->slot = 0;
    node->kind = kind;
    node->owner = owner;
}

//  True when a fires before b.
static bool
s_before (const timers_node_t *a, const timers_node_t *b)
{
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static void
s_place (timers_t *self, size_t index, timers_node_t *node)
{
    self->heap[index] = node;
    node->slot = index + 1;
}

static void
s_sift_up (timers_t *self, size_t index)
{
    timers_node_t *node = self->heap[index];
    while (index > 0) {
        size_t parent = (index - 1) / 2;
        if (!s_before (node, self->heap[parent]))
            break;
        s_place (self, index, self->heap[parent]);
        index = parent;
    }
    s_place (self, index, node);
}

static void
s_sift_down (timers_t *self, size_t index)
{
    timers_node_t *node = self->heap[index];
    while (true) {
        size_t child = 2 * index + 1;
        if (child >= self->size)
            break;
        if (child + 1 < self->size
            && s_before (self->heap[child + 1], self->heap[child]))
            child++;
        if (!s_before (self->heap[child], node))
            break;
        s_place (self, index, self->heap[child]);
        index = child;
    }
    s_place (self, index, node);
}

void
timers_arm (timers_t *self, timers_node_t *node, int64_t due_ms)
{
    assert (self);
    assert (node);
    node->due_ms = due_ms;
    node->seq = ++self->seq;
    if (node->slot) {
        //  Re-arm: the key changed, move the node either way
        size_t index = node->slot - 1;
        assert (index < self->size && self->heap[index] == node);
        s_sift_up (self, index);
        s_sift_down (self, node->slot - 1);
        return;
    }
    if (self->size == self->capacity) {
        self->capacity = self->capacity ? self->capacity * 2 : 64;
        self->heap = (timers_node_t **) realloc (
            self->heap, self->capacity * sizeof (timers_node_t *));
        assert (self->heap);
    }
    self->size++;
    s_place (self, self->size - 1, node);
    s_sift_up (self, self->size - 1);
}

void
timers_disarm (timers_t *self, timers_node_t *node)
{
    assert (self);
    assert (node);
    if (!node->slot)
        return;
    size_t index = node->slot - 1;
    assert (index < self->size && self->heap[index] == node);
    node->slot = 0;
    self->size--;
    if (index == self->size)
        return; //  it was the last one
    s_place (self, index, self->heap[self->size]);
    s_sift_up (self, index);
    s_sift_down (self, self->heap[index]->slot - 1);
}

bool
timers_armed (const timers_node_t *node)
{
    assert (node);
    return node->slot != 0;
}

timers_node_t *
timers_peek (timers_t *self)
{
    assert (self);
    return self->size ? self->heap[0] : NULL;
}

timers_node_t *
timers_pop_due (timers_t *self, int64_t now_ms)
{
    assert (self);
    if (!self->size || self->heap[0]->due_ms > now_ms)
        return NULL;
    timers_node_t *node = self->heap[0];
    timers_disarm (self, node);
    return node;
}

size_t
timers_size (timers_t *self)
{
    assert (self);
    return self->size;
}
