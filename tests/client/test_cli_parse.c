/*  =========================================================================
    test_cli_parse - durations, key=value pairs, handler names, JSON
    =========================================================================
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cli_json.h"
#include "cli_parse.h"

static void
test_handler_names (void **state)
{
    const char *good[] = {"echo", "a",   "run.sh", "x-y_z.1", "..a",
                          "a..",  "...", "UPPER",  "0"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true (cli_parse_handler_name (good[i]));
    const char *bad[] = {"",    ".",    "..",    "../x", "a/b", "/etc/passwd",
                         "a b", "x;rm", "$(id)", "a\nb", "é",   "a\\b",
                         "~",   "*"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false (cli_parse_handler_name (bad[i]));
    assert_false (cli_parse_handler_name (NULL));
    char longest[257];
    memset (longest, 'a', 256);
    longest[256] = 0;
    assert_false (cli_parse_handler_name (longest));
    longest[255] = 0;
    assert_true (cli_parse_handler_name (longest));
}

static void
test_durations (void **state)
{
    uint32_t ms = 0;
    assert_int_equal (cli_parse_duration ("5s", &ms), 0);
    assert_int_equal (ms, 5000);
    assert_int_equal (cli_parse_duration ("250ms", &ms), 0);
    assert_int_equal (ms, 250);
    assert_int_equal (cli_parse_duration ("2", &ms), 0);
    assert_int_equal (ms, 2000);
    assert_int_equal (cli_parse_duration ("1.5s", &ms), 0);
    assert_int_equal (ms, 1500);
    assert_int_equal (cli_parse_duration ("2m", &ms), 0);
    assert_int_equal (ms, 120000);
    assert_int_equal (cli_parse_duration ("1h", &ms), 0);
    assert_int_equal (ms, 3600000);
    assert_int_equal (cli_parse_duration ("0", &ms), 0);
    assert_int_equal (ms, 0);
    const char *bad[] = {"",      "s",   "-1s", "5x", "5 s",
                         "1e10h", "nan", "inf", "+3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal (cli_parse_duration (bad[i], &ms), -1);
    assert_int_equal (cli_parse_duration (NULL, &ms), -1);
}

static void
test_pairs (void **state)
{
    char key[8], value[8];
    assert_int_equal (
        cli_parse_pair ("k=v", key, sizeof key, value, sizeof value), 0);
    assert_string_equal (key, "k");
    assert_string_equal (value, "v");
    assert_int_equal (cli_parse_pair ("k=a=b", key, 8, value, 8), 0);
    assert_string_equal (value, "a=b");
    assert_int_equal (cli_parse_pair ("k=", key, 8, value, 8), 0);
    assert_string_equal (value, "");
    assert_int_equal (cli_parse_pair ("=v", key, 8, value, 8), -1);
    assert_int_equal (cli_parse_pair ("novalue", key, 8, value, 8), -1);
    assert_int_equal (cli_parse_pair ("longerkey=v", key, 8, value, 8), -1);
    assert_int_equal (cli_parse_pair ("k=longervalue", key, 8, value, 8), -1);
}

static char *
s_capture (void (*fn) (FILE *, const uint8_t *, size_t),
           const char *data,
           size_t size)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream (&text, &len);
    fn (out, (const uint8_t *) data, size);
    fclose (out);
    return text;
}

static void
test_json (void **state)
{
    assert_true (cli_json_is_text ((const uint8_t *) "hello", 5));
    assert_true (cli_json_is_text ((const uint8_t *) "caf\xc3\xa9", 5));
    assert_false (cli_json_is_text ((const uint8_t *) "a\0b", 3));
    assert_false (cli_json_is_text ((const uint8_t *) "\xff", 1));
    assert_false (cli_json_is_text ((const uint8_t *) "\xc3", 1));
    assert_false (cli_json_is_text ((const uint8_t *) "\xc0\x80", 2));
    assert_false (cli_json_is_text ((const uint8_t *) "\xed\xa0\x80", 3));
    char *text = s_capture (cli_json_string, "a\"b\\c\nd\x01", 8);
    assert_string_equal (text, "\"a\\\"b\\\\c\\nd\\u0001\"");
    free (text);
    const char *vectors[][2] = {{"", "\"\""},
                                {"f", "\"Zg==\""},
                                {"fo", "\"Zm8=\""},
                                {"foo", "\"Zm9v\""},
                                {"foob", "\"Zm9vYg==\""},
                                {"fooba", "\"Zm9vYmE=\""},
                                {"foobar", "\"Zm9vYmFy\""}};
    for (size_t i = 0; i < 7; i++) {
        text =
            s_capture (cli_json_base64, vectors[i][0], strlen (vectors[i][0]));
        assert_string_equal (text, vectors[i][1]);
        free (text);
    }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_handler_names),
        cmocka_unit_test (test_durations),
        cmocka_unit_test (test_pairs),
        cmocka_unit_test (test_json),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
