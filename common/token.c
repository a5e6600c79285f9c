/*  =========================================================================
    token - HMAC-SHA256 signed bearer tokens for agents and clients

    Encoding and checking only; token.h gives the format.  Verification
    order: split the token, recompute the MAC over the signed part and
    compare it in constant time (CRYPTO_memcmp), and only then decode and
    believe the claims.  Every failure is a return code: a token is input
    from the network and never reaches an assert.
    =========================================================================
*/
#include "token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_PREFIX   "tt1."
#define S_MAC_SIZE 32

static const char s_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

//  base64url without padding.  Returns a new string; caller owns it.
static char *
s_b64_encode (const uint8_t *data, size_t size)
{
    char *out = (char *) malloc ((size + 2) / 3 * 4 + 1);
    assert (out);
    size_t o = 0;
    for (size_t i = 0; i < size; i += 3) {
        uint32_t v = (uint32_t) data[i] << 16;
        if (i + 1 < size)
            v |= (uint32_t) data[i + 1] << 8;
        if (i + 2 < size)
            v |= data[i + 2];
        out[o++] = s_b64[(v >> 18) & 63];
        out[o++] = s_b64[(v >> 12) & 63];
        if (i + 1 < size)
            out[o++] = s_b64[(v >> 6) & 63];
        if (i + 2 < size)
            out[o++] = s_b64[v & 63];
    }
    out[o] = 0;
    return out;
}

static int
s_b64_value (char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

//  Decode `len` characters of base64url.  Returns a new buffer (caller
//  owns it; NUL-terminated for convenience) and sets *size, or NULL when
//  the text is not canonical base64url.
static uint8_t *
s_b64_decode (const char *text, size_t len, size_t *size)
{
    if (len % 4 == 1)
        return NULL;
    uint8_t *out = (uint8_t *) malloc (len * 3 / 4 + 2);
    assert (out);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = s_b64_value (text[i]);
        if (v < 0) {
            free (out);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t) v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t) (acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) { //  non-zero leftover bits: not canonical
        free (out);
        return NULL;
    }
    out[o] = 0;
    *size = o;
    return out;
}

static void
s_mac (const token_key_t *key,
       const char *data,
       size_t size,
       uint8_t mac[S_MAC_SIZE])
{
    unsigned int mac_size = S_MAC_SIZE;
    uint8_t *rc = HMAC (EVP_sha256 (), key->bytes, (int) key->size,
                        (const unsigned char *) data, size, mac, &mac_size);
    assert (rc && mac_size == S_MAC_SIZE);
}

int
token_key_load (token_key_t *key, const char *path, char *err, size_t err_size)
{
    assert (key);
    memset (key, 0, sizeof *key);
    FILE *file = path && *path ? fopen (path, "rb") : NULL;
    if (!file) {
        snprintf (err, err_size, "cannot read key file '%s': %s",
                  path ? path : "", strerror (errno));
        return -1;
    }
    size_t size = fread (key->bytes, 1, sizeof key->bytes, file);
    bool more = fgetc (file) != EOF;
    fclose (file);
    while (size > 0 && isspace (key->bytes[size - 1]))
        size--;
    if (more) {
        snprintf (err, err_size, "key file '%s' is longer than %d bytes", path,
                  TOKEN_KEY_MAX);
        memset (key, 0, sizeof *key);
        return -1;
    }
    if (size < TOKEN_KEY_MIN) {
        snprintf (err, err_size,
                  "key file '%s' holds %zu bytes, fewer than %d (make one "
                  "with: openssl rand -hex 32 > FILE)",
                  path, size, TOKEN_KEY_MIN);
        memset (key, 0, sizeof *key);
        return -1;
    }
    key->size = size;
    return 0;
}

static const char *
s_kind_name (token_kind_t kind)
{
    return kind == TOKEN_AGENT ? "agent" : "client";
}

char *
token_mint (const token_key_t *key,
            token_kind_t kind,
            const char *subject,
            int64_t expiry_unix)
{
    assert (key);
    if (!subject || strchr (subject, '|'))
        return NULL;
    size_t claims_size = strlen (subject) + 48;
    char *claims = (char *) malloc (claims_size);
    assert (claims);
    int n = snprintf (claims, claims_size, "%s|%" PRId64 "|%s",
                      s_kind_name (kind), expiry_unix, subject);
    assert (n > 0 && (size_t) n < claims_size);
    char *body = s_b64_encode ((const uint8_t *) claims, (size_t) n);
    free (claims);

    size_t signed_size = strlen (S_PREFIX) + strlen (body);
    char *token = (char *) malloc (signed_size + 1 + 44 + 1);
    assert (token);
    strcpy (token, S_PREFIX);
    strcat (token, body);
    free (body);
    uint8_t mac[S_MAC_SIZE];
    s_mac (key, token, signed_size, mac);
    char *mac_text = s_b64_encode (mac, sizeof mac);
    strcat (token, ".");
    strcat (token, mac_text);
    free (mac_text);
    return token;
}

token_result_t
token_verify (const token_key_t *key,
              const char *token,
              token_kind_t kind,
              int64_t now_unix,
              char **subject_p)
{
    assert (key && subject_p);
    *subject_p = NULL;
    if (!token)
        return TOKEN_ERR_MALFORMED;
    size_t len = strnlen (token, TOKEN_MAX + 1);
    size_t prefix = strlen (S_PREFIX);
    if (len > TOKEN_MAX || len <= prefix
        || memcmp (token, S_PREFIX, prefix) != 0)
        return TOKEN_ERR_MALFORMED;
    const char *dot = strchr (token + prefix, '.');
    if (!dot || strchr (dot + 1, '.'))
        return TOKEN_ERR_MALFORMED;
    size_t mac_size = 0;
    uint8_t *given = s_b64_decode (dot + 1, strlen (dot + 1), &mac_size);
    if (!given || mac_size != S_MAC_SIZE) {
        free (given);
        return TOKEN_ERR_MALFORMED;
    }
    uint8_t mac[S_MAC_SIZE];
    s_mac (key, token, (size_t) (dot - token), mac);
    int differ = CRYPTO_memcmp (mac, given, S_MAC_SIZE);
    free (given);
    if (differ)
        return TOKEN_ERR_SIGNATURE;

    //  Signed by the key holder: the claims can be believed.
    size_t claims_size = 0;
    char *claims = (char *) s_b64_decode (
        token + prefix, (size_t) (dot - token - prefix), &claims_size);
    if (!claims || memchr (claims, 0, claims_size)) {
        free (claims);
        return TOKEN_ERR_MALFORMED;
    }
    token_result_t result = TOKEN_ERR_MALFORMED;
    char *bar1 = strchr (claims, '|');
    char *bar2 = bar1 ? strchr (bar1 + 1, '|') : NULL;
    if (bar1 && bar2) {
        *bar1 = 0;
        *bar2 = 0;
        char *end = NULL;
        errno = 0;
        long long expiry = strtoll (bar1 + 1, &end, 10);
        if (end == bar1 + 1 || *end || errno)
            result = TOKEN_ERR_MALFORMED;
        else if (strcmp (claims, s_kind_name (kind)) != 0)
            result = TOKEN_ERR_KIND;
        else if (now_unix > expiry)
            result = TOKEN_ERR_EXPIRED;
        else {
            *subject_p = strdup (bar2 + 1);
            assert (*subject_p);
            result = TOKEN_OK;
        }
    }
    free (claims);
    return result;
}

const char *
token_strerror (token_result_t result)
{
    switch (result) {
        case TOKEN_OK:
            return "valid";
        case TOKEN_ERR_MALFORMED:
            return "malformed token";
        case TOKEN_ERR_SIGNATURE:
            return "bad token signature";
        case TOKEN_ERR_KIND:
            return "wrong kind of token";
        case TOKEN_ERR_EXPIRED:
            return "token expired";
        default:
            return "invalid token";
    }
}

bool
token_scope_allows (const char *scope, const char *agent_id)
{
    if (!scope || !agent_id)
        return false;
    const char *start = scope;
    while (true) {
        const char *comma = strchr (start, ',');
        size_t len = comma ? (size_t) (comma - start) : strlen (start);
        if (len == 1 && *start == '*')
            return true;
        if (len > 0 && strncmp (agent_id, start, len) == 0)
            return true;
        if (!comma)
            return false;
        start = comma + 1;
    }
}

int
token_parse_ttl (const char *text, int64_t *seconds)
{
    if (!text || !(*text >= '0' && *text <= '9'))
        return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull (text, &end, 10);
    if (errno || value > (1ull << 40))
        return -1;
    int64_t unit = 1;
    if (*end == 0 || strcmp (end, "s") == 0)
        unit = 1;
    else if (strcmp (end, "m") == 0)
        unit = 60;
    else if (strcmp (end, "h") == 0)
        unit = 3600;
    else if (strcmp (end, "d") == 0)
        unit = 86400;
    else
        return -1;
    *seconds = (int64_t) value * unit;
    return 0;
}
