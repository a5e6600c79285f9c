/*  =========================================================================
    event_json - read the JSON body of a router monitor event

    The router's events are small JSON objects: numbers, strings, booleans
    and one level of nested objects (labels, requests_by_status,
    agents_per_edge).  This is a strict reader for exactly that, enough for
    the exporter and `tether monitor`: a tree of nodes, looked up by key.
    Arrays are parsed too, so that a future field of that shape is skipped
    rather than rejected.  Bytes off a socket never reach an assert: bad
    input makes event_json_parse return NULL.  Nesting deeper than
    EVENT_JSON_MAX_DEPTH is refused, so a hostile body cannot exhaust the
    stack.
    =========================================================================
*/
#ifndef TETHER_EVENT_JSON_H
#define TETHER_EVENT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVENT_JSON_MAX_DEPTH 16

typedef enum
{
    EVENT_JSON_NULL = 1,
    EVENT_JSON_BOOL,
    EVENT_JSON_NUMBER,
    EVENT_JSON_STRING,
    EVENT_JSON_OBJECT,
    EVENT_JSON_ARRAY
} event_json_type_t;

typedef struct _event_json_t event_json_t;

//  Parse `size` bytes of `text` (need not be NUL-terminated).  Returns the
//  root node (caller owns it; free with event_json_destroy), or NULL when
//  the text is not one well-formed JSON value.
event_json_t *event_json_parse (const char *text, size_t size);

//  Destroy a tree returned by event_json_parse and null the pointer.
//  Does nothing when *self_p is NULL.
void event_json_destroy (event_json_t **self_p);

//  Returns the node's type.
event_json_type_t event_json_type (event_json_t *self);

//  Returns the member `key` of an object node, or NULL when `self` is NULL,
//  not an object, or has no such member.  Borrowed, valid as long as the
//  tree.
event_json_t *event_json_get (event_json_t *self, const char *key);

//  Number of members of an object or elements of an array; 0 otherwise.
size_t event_json_size (event_json_t *self);

//  The index-th member's key (objects only, else NULL) and value (objects
//  and arrays).  Borrowed, valid as long as the tree.
const char *event_json_key_at (event_json_t *self, size_t index);
event_json_t *event_json_at (event_json_t *self, size_t index);

//  Returns the string of a string node (unescaped, NUL-terminated; a \u0000
//  escape ends it early), or NULL for any other node or NULL.  Borrowed.
const char *event_json_string (event_json_t *self);

//  Returns the string member `key`, or `fallback` when absent or not a
//  string.  Borrowed.
const char *event_json_get_string (event_json_t *self,
                                   const char *key,
                                   const char *fallback);

//  Sets *value to the number member `key` (a non-negative integer for
//  _uint, any number for _number) and returns true; returns false and
//  leaves *value alone when it is absent or of another kind.
bool event_json_get_uint (event_json_t *self, const char *key, uint64_t *value);
bool event_json_get_number (event_json_t *self, const char *key, double *value);

//  Same for a node itself rather than a member.
bool event_json_uint (event_json_t *self, uint64_t *value);
bool event_json_number (event_json_t *self, double *value);
bool event_json_bool (event_json_t *self, bool *value);

//  Returns the boolean member `key`, or `fallback`.
bool event_json_get_bool (event_json_t *self, const char *key, bool fallback);

#endif
