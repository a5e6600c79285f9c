/*  =========================================================================
    test_token - the bearer token format and its checks (common/token.c)
    =========================================================================
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "token.h"

static void
s_key (token_key_t *key, const char *text)
{
    memset (key, 0, sizeof *key);
    key->size = strlen (text);
    memcpy (key->bytes, text, key->size);
}

static void
test_round_trip (void **state)
{
    token_key_t key;
    s_key (&key, "0123456789abcdef0123456789abcdef");
    char *token = token_mint (&key, TOKEN_AGENT, "site-a/dev-1", 1000);
    assert_non_null (token);
    assert_memory_equal (token, "tt1.", 4);
    char *subject = NULL;
    assert_int_equal (token_verify (&key, token, TOKEN_AGENT, 999, &subject),
                      TOKEN_OK);
    assert_string_equal (subject, "site-a/dev-1");
    free (subject);
    //  Expiry is inclusive, then refused
    assert_int_equal (token_verify (&key, token, TOKEN_AGENT, 1000, &subject),
                      TOKEN_OK);
    free (subject);
    assert_int_equal (token_verify (&key, token, TOKEN_AGENT, 1001, &subject),
                      TOKEN_ERR_EXPIRED);
    assert_null (subject);
    //  Kind is signed
    assert_int_equal (token_verify (&key, token, TOKEN_CLIENT, 1, &subject),
                      TOKEN_ERR_KIND);
    //  Another key
    token_key_t other;
    s_key (&other, "0123456789abcdef0123456789abcdeX");
    assert_int_equal (token_verify (&other, token, TOKEN_AGENT, 1, &subject),
                      TOKEN_ERR_SIGNATURE);
    //  Every single-character change is refused
    size_t len = strlen (token);
    for (size_t i = 0; i < len; i++) {
        char saved = token[i];
        token[i] = saved == 'A' ? 'B' : 'A';
        assert_int_not_equal (
            token_verify (&key, token, TOKEN_AGENT, 1, &subject), TOKEN_OK);
        assert_null (subject);
        token[i] = saved;
    }
    free (token);
}

static void
test_malformed (void **state)
{
    token_key_t key;
    s_key (&key, "0123456789abcdef0123456789abcdef");
    const char *bad[] = {"",        "tt1.",      "tt1..",        "tt2.abc.def",
                         "tt1.abc", "tt1.a.b.c", "tt1.!!!.AAAA", "Bearer x",
                         NULL};
    char *subject = NULL;
    for (int i = 0; bad[i]; i++)
        assert_int_equal (token_verify (&key, bad[i], TOKEN_AGENT, 1, &subject),
                          TOKEN_ERR_MALFORMED);
    assert_int_equal (token_verify (&key, NULL, TOKEN_AGENT, 1, &subject),
                      TOKEN_ERR_MALFORMED);
    assert_null (token_mint (&key, TOKEN_AGENT, "a|b", 1));
    assert_null (token_mint (&key, TOKEN_AGENT, NULL, 1));
}

static void
test_scope (void **state)
{
    assert_true (token_scope_allows ("site-a/,lab-", "site-a/dev-1"));
    assert_true (token_scope_allows ("site-a/,lab-", "lab-7"));
    assert_false (token_scope_allows ("site-a/,lab-", "site-b/dev-1"));
    assert_false (token_scope_allows ("site-a/,lab-", "lab"));
    assert_true (token_scope_allows ("*", "anything"));
    assert_true (token_scope_allows ("x,*", "anything"));
    assert_false (token_scope_allows ("", "anything"));
    assert_false (token_scope_allows (",", "anything"));
    assert_false (token_scope_allows ("a*", "abc"));
}

static void
test_ttl_and_key_file (void **state)
{
    int64_t seconds;
    assert_int_equal (token_parse_ttl ("24h", &seconds), 0);
    assert_int_equal (seconds, 86400);
    assert_int_equal (token_parse_ttl ("90", &seconds), 0);
    assert_int_equal (seconds, 90);
    assert_int_equal (token_parse_ttl ("7d", &seconds), 0);
    assert_int_equal (seconds, 7 * 86400);
    assert_int_equal (token_parse_ttl ("-1", &seconds), -1);
    assert_int_equal (token_parse_ttl ("1y", &seconds), -1);

    char path[] = "/tmp/tether-test-key-XXXXXX";
    int fd = mkstemp (path);
    assert_true (fd >= 0);
    FILE *file = fdopen (fd, "w");
    fputs ("short\n", file);
    fclose (file);
    token_key_t key;
    char err[256];
    assert_int_equal (token_key_load (&key, path, err, sizeof err), -1);
    file = fopen (path, "w");
    fputs ("00112233445566778899aabbccddeeff\n", file);
    fclose (file);
    assert_int_equal (token_key_load (&key, path, err, sizeof err), 0);
    assert_int_equal (key.size, 32);
    unlink (path);
    assert_int_equal (token_key_load (&key, path, err, sizeof err), -1);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_round_trip),
        cmocka_unit_test (test_malformed),
        cmocka_unit_test (test_scope),
        cmocka_unit_test (test_ttl_and_key_file),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
