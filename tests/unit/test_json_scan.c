/* The signaling hot path's JSON reader (src/signaling/json_scan.c): what it
 * accepts and refuses (RFC 8259), the members it slices, string decoding,
 * quoting, and the limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "signaling/json_scan.h"

static int scan(const char *s, ts_json_member_t *m, size_t max, size_t *n)
{
    return ts_json_scan(s, strlen(s), m, max, n);
}

static void test_valid_objects(void **state)
{
    static const char *const ok[] = {
        "{}",
        " \t\r\n{ } \n",
        "{\"a\":1}",
        "{\"a\":-0.5e+10,\"b\":0,\"c\":-0,\"d\":1E3,\"e\":12.25}",
        "{\"a\":[1,[2,[3,{}]],\"x\",true,false,null]}",
        "{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"}",
        "{\"\":\"\"}",
        "{\"a\" : { \"b\" : [ ] } , \"c\" : \"\xc3\xa9\" }",
    };
    ts_json_member_t m[8];
    size_t n;

    (void)state;
    for (size_t i = 0; i < TS_ARRAY_SIZE(ok); i++)
        assert_int_equal(scan(ok[i], m, 8, &n), TS_OK);
}

static void test_invalid_texts(void **state)
{
    static const char *const bad[] = {
        "",
        "   ",
        "[]",
        "\"x\"",
        "1",
        "{",
        "}",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "{,\"a\":1}",
        "{\"a\":1 \"b\":2}",
        "{a:1}",
        "{'a':1}",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":.5}",
        "{\"a\":1e}",
        "{\"a\":+1}",
        "{\"a\":-}",
        "{\"a\":tru}",
        "{\"a\":nul}",
        "{\"a\":True}",
        "{\"a\":[1,]}",
        "{\"a\":[1 2]}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\u12\"}",
        "{\"a\":\"\\u12g4\"}",
        "{\"a\":\"\\ud800\"}",       /* lone high surrogate */
        "{\"a\":\"\\udc00\"}",       /* lone low surrogate */
        "{\"a\":\"\\ud800\\u0041\"}", /* high followed by a non-surrogate */
        "{\"a\":\"tab\there\"}",     /* raw control character */
        "{\"a\":\"open}",
        "{\"a\":1}{}",
        "{\"a\":1} x",
        "{\"a\":NaN}",
        "{\"a\":Infinity}",
    };
    ts_json_member_t m[8];
    size_t n;

    (void)state;
    for (size_t i = 0; i < TS_ARRAY_SIZE(bad); i++) {
        if (scan(bad[i], m, 8, &n) != TS_ERR_PROTO)
            fail_msg("accepted: %s", bad[i]);
    }
    /* A NUL byte in the middle of the text. */
    assert_int_equal(ts_json_scan("{\"a\":1}\0", 8, m, 8, &n), TS_ERR_PROTO);
    assert_int_equal(ts_json_scan("{\"a\":\"\0\"}", 8, m, 8, &n), TS_ERR_PROTO);
}

static void test_members_and_find(void **state)
{
    const char *s = "{\"type\":\"offer\", \"sdp\":\"v=0\\r\\n\",\"n\":[1,{\"x\":2}],"
                    "\"ty\\u0070e\":\"answer\",\"o\":{\"type\":\"inner\"}}";
    ts_json_member_t m[8];
    const ts_json_member_t *v;
    size_t n, len;
    char out[32];

    (void)state;
    assert_int_equal(scan(s, m, 8, &n), TS_OK);
    assert_int_equal(n, 5);
    assert_int_equal(m[2].kind, TS_JSON_ARRAY);
    assert_int_equal(m[2].val_len, strlen("[1,{\"x\":2}]"));
    assert_memory_equal(m[2].val, "[1,{\"x\":2}]", m[2].val_len);
    assert_int_equal(m[4].kind, TS_JSON_OBJECT);
    /* The last "type" wins, found through its escaped name; the nested
     * object's "type" is not a top-level member. */
    v = ts_json_find(m, n, "type");
    assert_non_null(v);
    assert_ptr_equal(v, &m[3]);
    assert_int_equal(ts_json_string(v, out, sizeof(out), &len), TS_OK);
    assert_string_equal(out, "answer");
    v = ts_json_find(m, n, "sdp");
    assert_int_equal(ts_json_string(v, out, sizeof(out), &len), TS_OK);
    assert_int_equal(len, 5);
    assert_string_equal(out, "v=0\r\n");
    assert_null(ts_json_find(m, n, "missing"));
    assert_null(ts_json_find(m, n, "x"));
    assert_int_equal(ts_json_string(&m[2], out, sizeof(out), &len), TS_ERR_PROTO);
}

static void test_string_decoding(void **state)
{
    ts_json_member_t m[2];
    size_t n, len;
    char out[16];

    (void)state;
    assert_int_equal(scan("{\"s\":\"\\u00e9\\u20ac\\ud83d\\ude00\"}", m, 2, &n), TS_OK);
    assert_int_equal(ts_json_string(&m[0], out, sizeof(out), &len), TS_OK);
    assert_int_equal(len, 2 + 3 + 4);
    assert_memory_equal(out, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", len);
    /* Does not fit: 9 bytes and the NUL need 10. */
    assert_int_equal(ts_json_string(&m[0], out, 9, &len), TS_ERR_LIMIT);
    assert_int_equal(ts_json_string(&m[0], out, 10, &len), TS_OK);
    /* \u0000 is valid JSON but would cut a C string short. */
    assert_int_equal(scan("{\"s\":\"a\\u0000b\"}", m, 2, &n), TS_OK);
    assert_int_equal(ts_json_string(&m[0], out, sizeof(out), &len), TS_ERR_PROTO);
}

static void test_quote(void **state)
{
    char out[64];
    size_t n;

    (void)state;
    n = ts_json_quote(out, sizeof(out), "a\"b\\c\n\x01\xc3\xa9", 9);
    assert_int_equal(n, strlen("\"a\\\"b\\\\c\\u000a\\u0001\xc3\xa9\""));
    assert_memory_equal(out, "\"a\\\"b\\\\c\\u000a\\u0001\xc3\xa9\"", n);
    assert_int_equal(ts_json_quote(out, 4, "abc", 3), 0); /* needs 5 */
    assert_int_equal(ts_json_quote(out, 5, "abc", 3), 5);
    assert_int_equal(ts_json_quote(out, 2, "", 0), 2);
}

static void test_limits(void **state)
{
    char deep[2 * TS_JSON_MAX_DEPTH + 16];
    ts_json_member_t m[2];
    size_t n, o = 0;

    (void)state;
    /* TS_JSON_MAX_DEPTH levels of nesting in all are fine, one more is not. */
    deep[o++] = '{';
    memcpy(deep + o, "\"a\":", 4);
    o += 4;
    for (int i = 1; i < TS_JSON_MAX_DEPTH; i++)
        deep[o++] = '[';
    for (int i = 1; i < TS_JSON_MAX_DEPTH; i++)
        deep[o++] = ']';
    deep[o++] = '}';
    assert_int_equal(ts_json_scan(deep, o, m, 2, &n), TS_OK);
    memmove(deep + 6, deep + 5, o - 5);
    deep[5] = '[';
    memmove(deep + 5 + TS_JSON_MAX_DEPTH + 1, deep + 5 + TS_JSON_MAX_DEPTH,
            o + 1 - (5 + TS_JSON_MAX_DEPTH));
    deep[5 + TS_JSON_MAX_DEPTH] = ']';
    assert_int_equal(ts_json_scan(deep, o + 2, m, 2, &n), TS_ERR_LIMIT);
    /* More members than room for them. */
    assert_int_equal(scan("{\"a\":1,\"b\":2}", m, 2, &n), TS_OK);
    assert_int_equal(scan("{\"a\":1,\"b\":2,\"c\":3}", m, 2, &n), TS_ERR_LIMIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_objects),    cmocka_unit_test(test_invalid_texts),
        cmocka_unit_test(test_members_and_find), cmocka_unit_test(test_string_decoding),
        cmocka_unit_test(test_quote),            cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
