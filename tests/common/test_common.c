/*  =========================================================================
    test_common - the shared helpers: settings, envelope, logfmt quoting
    =========================================================================
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "pb_strings.h"
#include "tconfig.h"
#include "tether.pb-c.h"
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
    const char *zpl =
        "t\n    name = fromfile\n    timeout = 2s\n    limit = 3\n";
    assert_int_equal (write (fd, zpl, strlen (zpl)), (ssize_t) strlen (zpl));
    close (fd);
    setenv ("TETHER_TEST_TIMEOUT", "3s", 1);
    char *argv[] = {"prog",   "--config", path, "--name=fromflag",
                    "--flag", NULL};
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
    assert_int_equal (tconfig_load (options, count, 3, bad_range, NULL, NULL,
                                    err, sizeof err),
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
    assert_int_equal (tconfig_load (options, count, 2, asks_help, NULL, &help,
                                    err, sizeof err),
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
    zframe_data (frame)[1] = 2; //  field 1 varint: version 1 -> 2
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
        } else
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

static void
test_utf8 (void **state)
{
    struct
    {
        const char *bytes;
        bool valid;
    } cases[] = {
        {"plain ascii", true},
        {"caf\xc3\xa9", true},       //  e acute
        {"\xe2\x82\xac", true},      //  euro sign
        {"\xf0\x9f\x98\x80", true},  //  emoji
        {"\xc3", false},             //  truncated
        {"\xc0\xaf", false},         //  overlong '/'
        {"\xe0\x80\xaf", false},     //  overlong '/'
        {"\xed\xa0\x80", false},     //  surrogate
        {"\xf4\x90\x80\x80", false}, //  above U+10FFFF
        {"\x80", false},             //  lone continuation
        {"\xff", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal (pb_utf8_valid ((const uint8_t *) cases[i].bytes,
                                         strlen (cases[i].bytes)),
                          cases[i].valid);
    const uint8_t nul[] = {'a', 0, 'b'};
    assert_false (pb_utf8_valid (nul, sizeof nul));
}

//  Pack an AgentRequest for `agent_id`, with one header when
//  `header_value` is not NULL, into `out`; returns its size.
static size_t
s_pack_request (const char *agent_id, const char *header_value, uint8_t *out)
{
    Tether__V1__AgentRequest req = TETHER__V1__AGENT_REQUEST__INIT;
    req.id = "r-1";
    req.agent_id = (char *) agent_id;
    req.call = "echo";
    Tether__V1__AgentRequest__HeadersEntry entry =
        TETHER__V1__AGENT_REQUEST__HEADERS_ENTRY__INIT;
    Tether__V1__AgentRequest__HeadersEntry *entries[] = {&entry};
    if (header_value) {
        entry.key = "k";
        entry.value = (char *) header_value;
        req.n_headers = 1;
        req.headers = entries;
    }
    uint8_t payload[] = {0xff, 0x00, 0xfe}; //  bytes: anything goes
    req.payload.data = payload;
    req.payload.len = sizeof payload;
    return tether__v1__agent_request__pack (&req, out);
}

static void
test_strings_check (void **state)
{
    const ProtobufCMessageDescriptor *desc =
        &tether__v1__agent_request__descriptor;
    uint8_t buf[256];
    const char *field = NULL;
    size_t size = s_pack_request ("dev-1", "v", buf);
    assert_int_equal (pb_strings_check (desc, buf, size, &field), 0);
    assert_null (field);

    size = s_pack_request ("dev-\xc3", NULL, buf);
    assert_int_equal (pb_strings_check (desc, buf, size, &field), -1);
    assert_string_equal (field, "agent_id");

    //  Invalid UTF-8 inside a map entry's value.
    size = s_pack_request ("dev-1", "\xed\xa0\x80", buf);
    assert_int_equal (pb_strings_check (desc, buf, size, &field), -1);
    assert_string_equal (field, "value");

    //  An embedded NUL, written by hand: protobuf-c cannot pack one.
    const uint8_t nul_id[] = {0x12, 0x03, 'k', 0x00, 'x'};
    assert_int_equal (pb_strings_check (desc, nul_id, sizeof nul_id, &field),
                      -1);
    assert_string_equal (field, "agent_id");

    //  Malformed: truncated length, group wire type, field number 0.
    const uint8_t truncated[] = {0x12, 0x09, 'a'};
    assert_int_equal (
        pb_strings_check (desc, truncated, sizeof truncated, &field), -1);
    assert_string_equal (field, "message");
    const uint8_t group[] = {0x13};
    assert_int_equal (pb_strings_check (desc, group, sizeof group, &field), -1);
    const uint8_t zero[] = {0x02, 0x00};
    assert_int_equal (pb_strings_check (desc, zero, sizeof zero, &field), -1);
    //  Unknown fields are skipped, whatever their bytes.
    const uint8_t unknown[] = {0x7a, 0x02, 0xff, 0x00, 0x08, 0x01};
    assert_int_equal (pb_strings_check (desc, unknown, sizeof unknown, &field),
                      0);
    assert_int_equal (pb_strings_check (desc, NULL, 0, &field), 0);
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
        cmocka_unit_test (test_utf8),
        cmocka_unit_test (test_strings_check),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
