/*  =========================================================================
    cli_json - the little JSON the command line writes

    Strings are escaped per RFC 8259; bytes that are not valid UTF-8 make
    cli_json_is_text false, and such payloads are written in base64.
    =========================================================================
*/
#ifndef CLI_JSON_H_INCLUDED
#define CLI_JSON_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

//  True when the bytes are valid UTF-8 without NUL bytes.
bool cli_json_is_text (const uint8_t *data, size_t size);

//  Write `size` bytes as a quoted JSON string (escaping quotes, backslash
//  and control characters).  The bytes should be valid UTF-8.
void cli_json_string (FILE *out, const uint8_t *data, size_t size);

//  Write `size` bytes as a quoted base64 string (RFC 4648, with padding).
void cli_json_base64 (FILE *out, const uint8_t *data, size_t size);

#endif
