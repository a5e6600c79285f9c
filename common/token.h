/*  =========================================================================
    token - HMAC-SHA256 signed bearer tokens for agents and clients

    A token names who may do what until when, signed with a key shared by
    whoever mints tokens (`tether token`) and the edges that check them:

        tt1.<claims>.<mac>

    where <claims> is base64url (no padding) of "KIND|EXPIRY|SUBJECT":
    KIND is "agent" or "client", EXPIRY the unix time in seconds after
    which the token is refused, SUBJECT the agent id (agent tokens) or a
    comma-separated list of agent id prefixes (client tokens: the scope;
    "*" means every agent, an empty list none).  <mac> is base64url of
    HMAC-SHA256(key, "tt1.<claims>"), compared in constant time.  The kind
    is inside the signed part, and agent and client tokens are meant to use
    different keys, so neither kind passes for the other.

    Pure functions over libcrypto; no state, thread-safe.
    =========================================================================
*/
#ifndef TETHER_TOKEN_H
#define TETHER_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOKEN_KEY_MIN 16   //  shortest key accepted, bytes
#define TOKEN_KEY_MAX 1024 //  longest key file read, bytes
#define TOKEN_MAX     8192 //  longest token accepted, characters

typedef enum
{
    TOKEN_AGENT = 1,
    TOKEN_CLIENT = 2
} token_kind_t;

typedef enum
{
    TOKEN_OK = 0,
    TOKEN_ERR_MALFORMED, //  not a token of this format
    TOKEN_ERR_SIGNATURE, //  the MAC does not match the key
    TOKEN_ERR_KIND,      //  an agent token where a client one is
                         //  expected, or the reverse
    TOKEN_ERR_EXPIRED    //  past its expiry
} token_result_t;

//  A verification key: bytes, owned by the struct.
typedef struct
{
    uint8_t bytes[TOKEN_KEY_MAX];
    size_t size;
} token_key_t;

//  Read a key file: its bytes with trailing whitespace removed (so both a
//  raw file and `openssl rand -hex 32 > FILE` work).  Returns 0, or -1
//  with a reason in `err` when the file cannot be read or holds fewer than
//  TOKEN_KEY_MIN bytes.
int
token_key_load (token_key_t *key, const char *path, char *err, size_t err_size);

//  Mint a token.  `subject` is the agent id or the scope list; it must
//  not contain '|'.  Returns the token (caller owns it, free), or NULL
//  when `subject` is NULL or holds '|'.
char *token_mint (const token_key_t *key,
                  token_kind_t kind,
                  const char *subject,
                  int64_t expiry_unix);

//  Check `token` against `key`, expecting `kind`, at time `now_unix`.
//  Returns TOKEN_OK and sets *subject_p (caller owns it, free) to the
//  subject, or an error (then *subject_p is NULL).  The MAC is checked
//  before anything inside the claims is believed.
token_result_t token_verify (const token_key_t *key,
                             const char *token,
                             token_kind_t kind,
                             int64_t now_unix,
                             char **subject_p);

//  Returns a short English phrase for `result`.  Static string.
const char *token_strerror (token_result_t result);

//  True when the client scope `scope` (comma-separated prefixes, as in a
//  client token) allows calling agent `agent_id`.
bool token_scope_allows (const char *scope, const char *agent_id);

//  Parse a duration for --ttl: "90s", "30m", "24h", "7d", bare = seconds.
//  Returns 0 and sets *seconds, or -1.
int token_parse_ttl (const char *text, int64_t *seconds);

#endif
