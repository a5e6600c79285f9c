/*  =========================================================================
    cli_json - the little JSON the command line writes
    =========================================================================
*/
#include "cli_json.h"

bool
cli_json_is_text (const uint8_t *data, size_t size)
{
    size_t i = 0;
    while (i < size) {
        uint8_t c = data[i];
        size_t extra;
        uint32_t min;
        uint32_t code;
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            extra = 1;
            min = 0x80;
            code = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            extra = 2;
            min = 0x800;
            code = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            extra = 3;
            min = 0x10000;
            code = c & 0x07;
        } else
            return false;
        if (i + extra >= size)
            return false;
        for (size_t k = 1; k <= extra; k++) {
            if ((data[i + k] & 0xc0) != 0x80)
                return false;
            code = (code << 6) | (data[i + k] & 0x3f);
        }
        if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
            return false;
        i += extra + 1;
    }
    return true;
}

void
cli_json_string (FILE *out, const uint8_t *data, size_t size)
{
    fputc ('"', out);
    for (size_t i = 0; i < size; i++) {
        uint8_t c = data[i];
        switch (c) {
            case '"':
                fputs ("\\\"", out);
                break;
            case '\\':
                fputs ("\\\\", out);
                break;
            case '\n':
                fputs ("\\n", out);
                break;
            case '\r':
                fputs ("\\r", out);
                break;
            case '\t':
                fputs ("\\t", out);
                break;
            default:
                if (c < 0x20 || c == 0x7f)
                    fprintf (out, "\\u%04x", c);
                else
                    fputc (c, out);
        }
    }
    fputc ('"', out);
}

void
cli_json_base64 (FILE *out, const uint8_t *data, size_t size)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    fputc ('"', out);
    size_t i = 0;
    for (; i + 2 < size; i += 3) {
        uint32_t v = (uint32_t) data[i] << 16 | (uint32_t) data[i + 1] << 8
                     | data[i + 2];
        fputc (alphabet[v >> 18 & 63], out);
        fputc (alphabet[v >> 12 & 63], out);
        fputc (alphabet[v >> 6 & 63], out);
        fputc (alphabet[v & 63], out);
    }
    if (i < size) {
        uint32_t v = (uint32_t) data[i] << 16;
        if (i + 1 < size)
            v |= (uint32_t) data[i + 1] << 8;
        fputc (alphabet[v >> 18 & 63], out);
        fputc (alphabet[v >> 12 & 63], out);
        fputc (i + 1 < size ? alphabet[v >> 6 & 63] : '=', out);
        fputc ('=', out);
    }
    fputc ('"', out);
}
