/*  =========================================================================
    event_json - read the JSON body of a router monitor event

    A recursive-descent reader over a bounded buffer (RFC 8259).  Each node
    owns its string, its children and their keys; event_json_destroy frees
    the tree bottom-up.  Invariants: the reader never reads past `end`;
    recursion stops at EVENT_JSON_MAX_DEPTH; every failure path frees what
    it built and returns NULL.
    =========================================================================
*/
#include "event_json.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct _event_json_t
{
    event_json_type_t type; //  what this node is
    bool boolean;           //  BOOL: its value
    double number;          //  NUMBER: its value
    bool is_uint;           //  NUMBER: a non-negative integer that fits
    uint64_t uint;          //  NUMBER: exact value when is_uint
    char *string;           //  STRING: unescaped, NUL-terminated
    char **keys;            //  OBJECT: member keys, in order
    event_json_t **items;   //  OBJECT, ARRAY: children, in order
    size_t count;           //  OBJECT, ARRAY: children used
    size_t room;            //  OBJECT, ARRAY: children allocated
};

typedef struct
{
    const char *pos; //  next byte to read
    const char *end; //  one past the last byte
} reader_t;

static event_json_t *s_value (reader_t *r, int depth);

static event_json_t *
s_node_new (event_json_type_t type)
{
    event_json_t *node = (event_json_t *) calloc (1, sizeof (event_json_t));
    assert (node);
    node->type = type;
    return node;
}

static void
s_skip_space (reader_t *r)
{
    while (r->pos < r->end
           && (*r->pos == ' ' || *r->pos == '\t' || *r->pos == '\n'
               || *r->pos == '\r'))
        r->pos++;
}

static bool
s_literal (reader_t *r, const char *word)
{
    size_t len = strlen (word);
    if ((size_t) (r->end - r->pos) < len || memcmp (r->pos, word, len))
        return false;
    r->pos += len;
    return true;
}

static int
s_hex4 (reader_t *r, unsigned int *cp)
{
    if (r->end - r->pos < 4)
        return -1;
    unsigned int value = 0;
    for (int i = 0; i < 4; i++) {
        char c = r->pos[i];
        value <<= 4;
        if (c >= '0' && c <= '9')
            value |= (unsigned int) (c - '0');
        else if (c >= 'a' && c <= 'f')
            value |= (unsigned int) (c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            value |= (unsigned int) (c - 'A' + 10);
        else
            return -1;
    }
    r->pos += 4;
    *cp = value;
    return 0;
}

static size_t
s_utf8_put (char *out, unsigned int cp)
{
    if (cp < 0x80) {
        out[0] = (char) cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char) (0xC0 | (cp >> 6));
        out[1] = (char) (0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char) (0xE0 | (cp >> 12));
        out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char) (0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char) (0xF0 | (cp >> 18));
    out[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char) (0x80 | (cp & 0x3F));
    return 4;
}

//  Read a string; r->pos is at the opening quote.  Returns a heap copy,
//  unescaped (caller owns it), or NULL when malformed.
static char *
s_string (reader_t *r)
{
    r->pos++;
    //  Unescaped text is never longer than the escaped text.
    const char *close = r->pos;
    while (close < r->end && *close != '"') {
        if (*close == '\\')
            close++;
        close++;
    }
    if (close >= r->end)
        return NULL;
    char *out = (char *) malloc ((size_t) (close - r->pos) + 1);
    assert (out);
    size_t len = 0;
    while (r->pos < close) {
        unsigned char c = (unsigned char) *r->pos;
        if (c < 0x20)
            goto malformed;
        if (c != '\\') {
            out[len++] = (char) c;
            r->pos++;
            continue;
        }
        r->pos++;
        char e = *r->pos++;
        switch (e) {
            case '"':
                out[len++] = '"';
                break;
            case '\\':
                out[len++] = '\\';
                break;
            case '/':
                out[len++] = '/';
                break;
            case 'b':
                out[len++] = '\b';
                break;
            case 'f':
                out[len++] = '\f';
                break;
            case 'n':
                out[len++] = '\n';
                break;
            case 'r':
                out[len++] = '\r';
                break;
            case 't':
                out[len++] = '\t';
                break;
            case 'u': {
                unsigned int cp;
                if (s_hex4 (r, &cp))
                    goto malformed;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    unsigned int low;
                    if (close - r->pos < 6 || r->pos[0] != '\\'
                        || r->pos[1] != 'u')
                        goto malformed;
                    r->pos += 2;
                    if (s_hex4 (r, &low) || low < 0xDC00 || low > 0xDFFF)
                        goto malformed;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF)
                    goto malformed;
                //  Six escaped bytes always hold the 1..4 bytes written.
                len += s_utf8_put (out + len, cp);
                break;
            }
            default:
                goto malformed;
        }
        if (r->pos > close)
            goto malformed;
    }
    out[len] = 0;
    r->pos = close + 1;
    return out;

malformed:
    free (out);
    return NULL;
}

static event_json_t *
s_number (reader_t *r)
{
    const char *start = r->pos;
    if (r->pos < r->end && *r->pos == '-')
        r->pos++;
    const char *digits = r->pos;
    while (r->pos < r->end && *r->pos >= '0' && *r->pos <= '9')
        r->pos++;
    if (r->pos == digits || (*digits == '0' && r->pos - digits > 1))
        return NULL;
    bool integer = true;
    if (r->pos < r->end && *r->pos == '.') {
        integer = false;
        r->pos++;
        const char *frac = r->pos;
        while (r->pos < r->end && *r->pos >= '0' && *r->pos <= '9')
            r->pos++;
        if (r->pos == frac)
            return NULL;
    }
    if (r->pos < r->end && (*r->pos == 'e' || *r->pos == 'E')) {
        integer = false;
        r->pos++;
        if (r->pos < r->end && (*r->pos == '+' || *r->pos == '-'))
            r->pos++;
        const char *exp = r->pos;
        while (r->pos < r->end && *r->pos >= '0' && *r->pos <= '9')
            r->pos++;
        if (r->pos == exp)
            return NULL;
    }
    char buf[64];
    size_t len = (size_t) (r->pos - start);
    if (len >= sizeof buf)
        return NULL;
    memcpy (buf, start, len);
    buf[len] = 0;
    event_json_t *node = s_node_new (EVENT_JSON_NUMBER);
    node->number = strtod (buf, NULL);
    if (integer && *start != '-') {
        //  Exact when it fits in 64 bits (20 digits at most).
        uint64_t value = 0;
        bool fits = len <= 20;
        for (size_t i = 0; fits && i < len; i++) {
            uint64_t digit = (uint64_t) (buf[i] - '0');
            if (value > (UINT64_MAX - digit) / 10)
                fits = false;
            else
                value = value * 10 + digit;
        }
        node->is_uint = fits;
        node->uint = fits ? value : 0;
    }
    return node;
}

static void
s_append (event_json_t *node, char *key, event_json_t *child)
{
    if (node->count == node->room) {
        node->room = node->room ? node->room * 2 : 8;
        node->items = (event_json_t **) realloc (
            node->items, node->room * sizeof (event_json_t *));
        assert (node->items);
        if (node->type == EVENT_JSON_OBJECT) {
            node->keys =
                (char **) realloc (node->keys, node->room * sizeof (char *));
            assert (node->keys);
        }
    }
    if (node->type == EVENT_JSON_OBJECT)
        node->keys[node->count] = key;
    node->items[node->count++] = child;
}

//  Object or array; r->pos is at the opening bracket.
static event_json_t *
s_container (reader_t *r, int depth, bool object)
{
    event_json_t *node =
        s_node_new (object ? EVENT_JSON_OBJECT : EVENT_JSON_ARRAY);
    char close = object ? '}' : ']';
    r->pos++;
    s_skip_space (r);
    if (r->pos < r->end && *r->pos == close) {
        r->pos++;
        return node;
    }
    while (true) {
        char *key = NULL;
        if (object) {
            s_skip_space (r);
            if (r->pos >= r->end || *r->pos != '"')
                goto malformed;
            key = s_string (r);
            if (!key)
                goto malformed;
            s_skip_space (r);
            if (r->pos >= r->end || *r->pos != ':') {
                free (key);
                goto malformed;
            }
            r->pos++;
        }
        event_json_t *child = s_value (r, depth + 1);
        if (!child) {
            free (key);
            goto malformed;
        }
        s_append (node, key, child);
        s_skip_space (r);
        if (r->pos >= r->end)
            goto malformed;
        if (*r->pos == ',') {
            r->pos++;
            continue;
        }
        if (*r->pos == close) {
            r->pos++;
            return node;
        }
        goto malformed;
    }

malformed:
    event_json_destroy (&node);
    return NULL;
}

static event_json_t *
s_value (reader_t *r, int depth)
{
    if (depth > EVENT_JSON_MAX_DEPTH)
        return NULL;
    s_skip_space (r);
    if (r->pos >= r->end)
        return NULL;
    char c = *r->pos;
    if (c == '{' || c == '[')
        return s_container (r, depth, c == '{');
    if (c == '"') {
        char *string = s_string (r);
        if (!string)
            return NULL;
        event_json_t *node = s_node_new (EVENT_JSON_STRING);
        node->string = string;
        return node;
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return s_number (r);
    bool truth = s_literal (r, "true");
    if (truth || s_literal (r, "false")) {
        event_json_t *node = s_node_new (EVENT_JSON_BOOL);
        node->boolean = truth;
        return node;
    }
    if (s_literal (r, "null"))
        return s_node_new (EVENT_JSON_NULL);
    return NULL;
}


//  ---------------------------------------------------------------------
//  Public API

event_json_t *
event_json_parse (const char *text, size_t size)
{
    if (!text)
        return NULL;
    reader_t reader = {text, text + size};
    event_json_t *root = s_value (&reader, 0);
    if (!root)
        return NULL;
    s_skip_space (&reader);
    if (reader.pos != reader.end)
        event_json_destroy (&root);
    return root;
}

void
event_json_destroy (event_json_t **self_p)
{
    assert (self_p);
    event_json_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        if (self->keys)
            free (self->keys[i]);
        event_json_destroy (&self->items[i]);
    }
    free (self->keys);
    free (self->items);
    free (self->string);
    free (self);
    *self_p = NULL;
}

event_json_type_t
event_json_type (event_json_t *self)
{
    assert (self);
    return self->type;
}

event_json_t *
event_json_get (event_json_t *self, const char *key)
{
    if (!self || self->type != EVENT_JSON_OBJECT || !key)
        return NULL;
    //  Last one wins, as most readers do with duplicate keys.
    for (size_t i = self->count; i-- > 0;)
        if (strcmp (self->keys[i], key) == 0)
            return self->items[i];
    return NULL;
}

size_t
event_json_size (event_json_t *self)
{
    if (!self
        || (self->type != EVENT_JSON_OBJECT && self->type != EVENT_JSON_ARRAY))
        return 0;
    return self->count;
}

const char *
event_json_key_at (event_json_t *self, size_t index)
{
    if (!self || self->type != EVENT_JSON_OBJECT || index >= self->count)
        return NULL;
    return self->keys[index];
}

event_json_t *
event_json_at (event_json_t *self, size_t index)
{
    if (index >= event_json_size (self))
        return NULL;
    return self->items[index];
}

const char *
event_json_string (event_json_t *self)
{
    if (!self || self->type != EVENT_JSON_STRING)
        return NULL;
    return self->string;
}

const char *
event_json_get_string (event_json_t *self,
                       const char *key,
                       const char *fallback)
{
    const char *value = event_json_string (event_json_get (self, key));
    return value ? value : fallback;
}

bool
event_json_uint (event_json_t *self, uint64_t *value)
{
    if (!self || self->type != EVENT_JSON_NUMBER || !self->is_uint)
        return false;
    *value = self->uint;
    return true;
}

bool
event_json_number (event_json_t *self, double *value)
{
    if (!self || self->type != EVENT_JSON_NUMBER || !isfinite (self->number))
        return false;
    *value = self->number;
    return true;
}

bool
event_json_bool (event_json_t *self, bool *value)
{
    if (!self || self->type != EVENT_JSON_BOOL)
        return false;
    *value = self->boolean;
    return true;
}

bool
event_json_get_uint (event_json_t *self, const char *key, uint64_t *value)
{
    return event_json_uint (event_json_get (self, key), value);
}

bool
event_json_get_number (event_json_t *self, const char *key, double *value)
{
    return event_json_number (event_json_get (self, key), value);
}

bool
event_json_get_bool (event_json_t *self, const char *key, bool fallback)
{
    bool value = fallback;
    event_json_bool (event_json_get (self, key), &value);
    return value;
}
