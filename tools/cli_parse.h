/*  =========================================================================
    cli_parse - small pure parsers for the tether command line

    Durations ("5s", "250ms", "2m", "1h", a bare number is seconds),
    "key=value" pairs, and handler names (what a call may be called to run
    DIR/NAME).  No I/O, so they are unit-tested directly.
    =========================================================================
*/
#ifndef CLI_PARSE_H_INCLUDED
#define CLI_PARSE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Parse a duration into milliseconds.  Accepts a decimal number (may have
//  a fraction) followed by "ms", "s", "m", "h" or nothing (seconds).
//  Returns 0, or -1 for anything else, negative values, or more than
//  UINT32_MAX ms.
int cli_parse_duration (const char *text, uint32_t *ms_p);

//  Split "key=value" at the first '='.  Writes NUL-terminated copies into
//  key (key_size bytes) and value (value_size bytes).  Returns 0, or -1
//  when there is no '=', the key is empty, or a part does not fit.
int cli_parse_pair (const char *text,
                    char *key,
                    size_t key_size,
                    char *value,
                    size_t value_size);

//  True when `name` may name a handler file: 1..255 characters from
//  [A-Za-z0-9._-], and not "." or "..".  No slash, so no path traversal.
bool cli_parse_handler_name (const char *name);

#endif
