/*  =========================================================================
    test_common - the shared helpers: settings, envelope, logfmt quoting
    =========================================================================
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "tconfig.h"
#include "tlog.h"
#include "wire_envelope.h"

static void
test_durations (void **state)
{
    uint32_t ms = 7;
    assert_int_equal (tconfig_parse_duration ("500ms", &ms), 0);
    assert_int_equal (ms, 500);
    assert_int_equal (tconfig_parse_duration ("10s", &ms), 0);
    assert_int_equal (ms, 10000);
    assert_int_equal (tconfig_parse_duration ("2m", &ms), 0);
    assert_int_equal (ms, 120000);
    assert_int_equal (tconfig_parse_duration ("250", &ms), 0);
    assert_int_equal (ms, 250);
    ms = 7;
    assert_int_equal (tconfig_parse_duration ("", &ms), -1);
    assert_int_equal (tconfig_parse_duration ("-1s", &ms), -1);
    assert_int_equal (tconfig_parse_duration ("10 s", &ms), -1);
    assert_int_equal (tconfig_parse_duration ("1d", &ms), -1);
    assert_int_equal (tconfig_parse_duration ("5000000h", &ms), -1);
    assert_int_equal (ms, 7);
}

static void
test_sizes (void **state)
{
    uint32_t bytes = 0;
    assert_int_equal (tconfig_parse_size ("4MiB", &bytes), 0);
    assert_int_equal (bytes, 4 * 1024 * 1024);
    assert_int_equal (tconfig_parse_size ("64KiB", &bytes), 0);
    assert_int_equal (bytes, 65536);
    assert_int_equal (tconfig_parse_size ("512", &bytes), 0);
    assert_int_equal (bytes, 512);
    assert_int_equal (tconfig_parse_size ("4TiB", &bytes), -1);
    assert_int_equal (tconfig_parse_size ("5GiB", &bytes), -1);
    assert_int_equal (tconfig_parse_size ("MiB", &bytes), -1);
}

static void
test_load_precedence (void **state)
{
    char *name = strdup ("default");
    uint32_t timeout = 10000;
    uint32_t limit = 5;
    bool flag = false;
    tconfig_option_t options[] = {
        {"t/name", "TETHER_TEST_NAME", "--name", TCONFIG_STRING, &name, 0, 0,
         "a name"},
        {"t/timeout", "TETHER_TEST_TIMEOUT", "--timeout", TCONFIG_DURATION,
         &timeout, 1, 60000, "a duration"},
        {"t/limit", NULL, "--limit", TCONFIG_UINT, &limit, 1, 10, "a number"},
        {NULL, NULL, "--flag", TCONFIG_BOOL, &flag, 0, 0, "a flag"},
    };
    size_t count = sizeof options / sizeof options[0];
    char err[256] = "";
    bool help = true;

    //  File, then env over it, then flags over both.
    char path[] = "/tmp/tether-test-config-XXXXXX";
    int fd = mkstemp (path);
    assert_true (fd >= 0);
    const char *zpl = "t\n    name = fromfile\n    timeout = 2s\n    limit = 3\n";
    assert_int_equal (write (fd, zpl, strlen (zpl)), (ssize_t) strlen (zpl));
    close (fd);
    setenv ("TETHER_TEST_TIMEOUT", "3s", 1);
    char *argv[] = {"prog", "--config", path, "--name=fromflag", "--flag",
                    NULL};
    assert_int_equal (
        tconfig_load (options, count, 5, argv, NULL, &help, err, sizeof err),
        0);
    assert_false (help);
    assert_string_equal (name, "fromflag");
    assert_int_equal (timeout, 3000);
    assert_int_equal (limit, 3);
    assert_true (flag);

    //  Out of range, unknown flag and missing value are errors that name
    //  the setting.
    char *bad_range[] = {"prog", "--limit", "11", NULL};
    assert_int_equal (
        tconfig_load (options, count, 3, bad_range, NULL, NULL, err, sizeof err),
        -1);
    assert_non_null (strstr (err, "--limit"));
    char *unknown[] = {"prog", "--nope", NULL};
    assert_int_equal (
        tconfig_load (options, count, 2, unknown, NULL, NULL, err, sizeof err),
        -1);
    assert_non_null (strstr (err, "--nope"));
    setenv ("TETHER_TEST_TIMEOUT", "soon", 1);
    char *none[] = {"prog", NULL};
    assert_int_equal (
        tconfig_load (options, count, 1, none, NULL, NULL, err, sizeof err),
        -1);
    assert_non_null (strstr (err, "TETHER_TEST_TIMEOUT"));
    unsetenv ("TETHER_TEST_TIMEOUT");
    char *missing[] = {"prog", "--config", "/nonexistent/tether.cfg", NULL};
    assert_int_equal (
        tconfig_load (options, count, 3, missing, NULL, NULL, err, sizeof err),
        -1);
    char *asks_help[] = {"prog", "--help", NULL};
    assert_int_equal (
        tconfig_load (options, count, 2, asks_help, NULL, &help, err, sizeof err),
        0);
    assert_true (help);
    unlink (path);
    tconfig_free_strings (options, count);
    assert_null (name);
}

static void
test_envelope_round_trip (void **state)
{
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__PUBLISH;
    env.handle = 42;
    env.request_id = "r-1";
    zframe_t *frame = wire_envelope_encode (&env);
    Wire__Envelope *got = NULL;
    assert_int_equal (wire_envelope_decode (frame, &got), 0);
    assert_int_equal (got->version, WIRE_VERSION);
    assert_int_equal (got->command, WIRE__COMMAND__PUBLISH);
    assert_int_equal (got->handle, 42);
    assert_string_equal (got->request_id, "r-1");
    wire_envelope_free (&got);
    assert_null (got);
    zframe_destroy (&frame);
    assert_string_equal (wire_command_name (WIRE__COMMAND__DELIVER), "DELIVER");
    assert_string_equal (wire_command_name (999), "UNKNOWN");
}

static void
test_envelope_rejects_garbage (void **state)
{
    //  Another version.
    Wire__Envelope env = WIRE__ENVELOPE__INIT;
    env.command = WIRE__COMMAND__PING;
    zframe_t *frame = wire_envelope_encode (&env);
    zframe_data (frame)[1] = 2;     //  field 1 varint: version 1 -> 2
    Wire__Envelope *got = (Wire__Envelope *) &env;
    assert_int_equal (wire_envelope_decode (frame, &got), -2);
    assert_null (got);
    zframe_destroy (&frame);

    //  Random bytes, a truncated varint, an empty frame, no frame.
    unsigned int seed = 1;
    for (int i = 0; i < 20000; i++) {
        size_t size = (size_t) (rand_r (&seed) % 64);
        byte data[64];
        for (size_t j = 0; j < size; j++)
            data[j] = (byte) rand_r (&seed);
        frame = zframe_new (data, size);
        if (wire_envelope_decode (frame, &got) == 0) {
            assert_int_equal (got->version, WIRE_VERSION);
            wire_envelope_free (&got);
        }
        else
            assert_null (got);
        zframe_destroy (&frame);
    }
    byte truncated[] = {0x08, 0xff};
    frame = zframe_new (truncated, sizeof truncated);
    assert_int_equal (wire_envelope_decode (frame, &got), -2);
    zframe_destroy (&frame);
    assert_int_equal (wire_envelope_decode (NULL, &got), -2);
}

static void
test_quote (void **state)
{
    char buf[64];
    assert_string_equal (tlog_quote ("dev-1", buf, sizeof buf), "dev-1");
    assert_string_equal (tlog_quote ("a b", buf, sizeof buf), "\"a b\"");
    assert_string_equal (tlog_quote ("say \"hi\"\n", buf, sizeof buf),
                         "\"say \\\"hi\\\"\\x0a\"");
    assert_string_equal (tlog_quote ("", buf, sizeof buf), "\"\"");
    char small[8];
    tlog_quote ("a very long value with spaces", small, sizeof small);
    assert_true (strlen (small) < sizeof small);
    tlog_level_t level;
    assert_int_equal (tlog_level_parse ("warn", &level), 0);
    assert_int_equal (level, TLOG_WARN);
    assert_int_equal (tlog_level_parse ("loud", &level), -1);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_durations),
        cmocka_unit_test (test_sizes),
        cmocka_unit_test (test_load_precedence),
        cmocka_unit_test (test_envelope_round_trip),
        cmocka_unit_test (test_envelope_rejects_garbage),
        cmocka_unit_test (test_quote),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
