/*  =========================================================================
    cli_parse - small pure parsers for the tether command line
    =========================================================================
*/
#include "cli_parse.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int
cli_parse_duration (const char *text, uint32_t *ms_p)
{
    if (!text || !*text || *text == '-' || *text == '+')
        return -1;
    char *end;
    double value = strtod (text, &end);
    if (end == text || !isfinite (value) || value < 0)
        return -1;
    double scale;
    if (*end == 0 || strcmp (end, "s") == 0)
        scale = 1000;
    else if (strcmp (end, "ms") == 0)
        scale = 1;
    else if (strcmp (end, "m") == 0)
        scale = 60000;
    else if (strcmp (end, "h") == 0)
        scale = 3600000;
    else
        return -1;
    double ms = value * scale;
    if (ms > (double) UINT32_MAX)
        return -1;
    *ms_p = (uint32_t) llround (ms);
    return 0;
}

int
cli_parse_pair (const char *text,
                char *key,
                size_t key_size,
                char *value,
                size_t value_size)
{
    if (!text)
        return -1;
    const char *equals = strchr (text, '=');
    if (!equals || equals == text)
        return -1;
    size_t key_len = (size_t) (equals - text);
    size_t value_len = strlen (equals + 1);
    if (key_len >= key_size || value_len >= value_size)
        return -1;
    memcpy (key, text, key_len);
    key[key_len] = 0;
    memcpy (value, equals + 1, value_len + 1);
    return 0;
}

bool
cli_parse_handler_name (const char *name)
{
    if (!name || !*name)
        return false;
    if (strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
        return false;
    size_t len = 0;
    for (const char *c = name; *c; c++, len++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')
                  || (*c >= '0' && *c <= '9') || *c == '.' || *c == '_'
                  || *c == '-';
        if (!ok)
            return false;
    }
    return len <= 255;
}
