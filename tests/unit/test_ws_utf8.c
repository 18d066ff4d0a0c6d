/*
 * test_ws_utf8.c — the incremental UTF-8 validator: the Autobahn 6.x
 * sequences with their expected verdicts, the exact byte at which each
 * invalid one is refused (fail fast), the same verdict for every way the
 * bytes can be split, exhaustive short sequences against an independent
 * reference written from RFC 3629's code-point ranges, and the ASCII fast
 * path at every alignment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "ws/utf8.h"

/* ------------------------------------------------------------------------ */
/* Reference                                                                  */
/* ------------------------------------------------------------------------ */

#include "../common/utf8_ref.h"

/* What ws_utf8_feed should answer for the whole of p[0..n). */
static int ref_verdict(const uint8_t *p, size_t n)
{
    int complete;
    if (ref_check(p, n, &complete) < n)
        return 'R';
    return complete ? 'A' : 'M';
}

static int verdict(uint32_t s)
{
    return s == WS_UTF8_ACCEPT ? 'A' : s == WS_UTF8_REJECT ? 'R' : 'M';
}

/* Feed byte by byte: the index at which REJECT first appears, or n. */
static size_t reject_index(const uint8_t *p, size_t n)
{
    uint32_t s = WS_UTF8_ACCEPT;
    for (size_t i = 0; i < n; i++) {
        if (ws_utf8_feed(&s, p + i, 1) == WS_UTF8_REJECT)
            return i;
    }
    return n;
}

static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = 0;
    while (hex[0] && hex[1]) {
        unsigned v;
        sscanf(hex, "%2x", &v);
        out[n++] = (uint8_t)v;
        hex += 2;
    }
    return n;
}

/* ------------------------------------------------------------------------ */
/* Vectors                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct {
    const char *hex;
    int verdict; /* 'A' valid, 'R' invalid, 'M' incomplete at the end */
} vec_t;

/* After the Autobahn TestSuite's case group 6 (UTF-8 handling). */
static const vec_t vectors[] = {
    /* 6.1, 6.2 */
    {"", 'A'},
    {"48656c6c6f2dc2b540c39fc3b6c3a4c3bcc3a0c3a12d5554462d382121", 'A'},
    /* 6.3 κόσμε, then an invalid continuation */
    {"cebae1bdb9cf83cebcceb5", 'A'},
    {"cebae1bdb9cf83cebcceb5eda080656469746564", 'R'},
    /* 6.4 fail fast */
    {"cebae1bdb9cf83cebcceb5f4908080656469746564", 'R'},
    {"cebae1bdb9cf83cebcceb5f4", 'M'},
    /* 6.7 first code point of each length, 6.9 last */
    {"00", 'A'},
    {"c280", 'A'},
    {"e0a080", 'A'},
    {"f0908080", 'A'},
    {"7f", 'A'},
    {"dfbf", 'A'},
    {"efbfbf", 'A'},
    {"f48fbfbf", 'A'},
    /* 6.8, 6.10 five- and six-byte forms, past U+10FFFF */
    {"f888808080", 'R'},
    {"fc8480808080", 'R'},
    {"f7bfbfbf", 'R'},
    {"fbbfbfbfbf", 'R'},
    {"fdbfbfbfbfbf", 'R'},
    /* 6.11 other boundaries */
    {"ed9fbf", 'A'},
    {"ee8080", 'A'},
    {"efbfbd", 'A'},
    {"f4908080", 'R'},
    /* 6.12 unexpected continuation bytes */
    {"80", 'R'},
    {"bf", 'R'},
    {"80bf", 'R'},
    {"80bf80bf80bf", 'R'},
    /* 6.13 lonely start bytes */
    {"c020c120c220", 'R'},
    {"c220", 'R'},
    {"e020", 'R'},
    {"f020", 'R'},
    /* 6.14 last continuation byte missing (at the end: incomplete) */
    {"c2", 'M'},
    {"e0a0", 'M'},
    {"f09080", 'M'},
    {"df", 'M'},
    {"efbf", 'M'},
    {"f48fbf", 'M'},
    {"c0", 'R'},
    {"e080", 'R'},
    {"f08080", 'R'},
    {"f7bfbf", 'R'},
    /* 6.15 concatenated incomplete sequences */
    {"c2e0a0f09080", 'R'},
    /* 6.16 impossible bytes */
    {"fe", 'R'},
    {"ff", 'R'},
    {"fefeffff", 'R'},
    /* 6.17 overlong ASCII, 6.18 maximal overlongs, 6.19 overlong NUL */
    {"c0af", 'R'},
    {"e080af", 'R'},
    {"f08080af", 'R'},
    {"c1bf", 'R'},
    {"e09fbf", 'R'},
    {"f08fbfbf", 'R'},
    {"c080", 'R'},
    {"e08080", 'R'},
    {"f0808080", 'R'},
    /* 6.20 single surrogates, 6.21 paired surrogates */
    {"eda080", 'R'},
    {"edadbf", 'R'},
    {"edae80", 'R'},
    {"edafbf", 'R'},
    {"edb080", 'R'},
    {"edbe80", 'R'},
    {"edbfbf", 'R'},
    {"eda080edb080", 'R'},
    {"edafbfedbfbf", 'R'},
    /* 6.22 noncharacters are valid */
    {"efbfbe", 'A'},
    {"f09fbfbe", 'A'},
    {"f48fbfbe", 'A'},
    {"efb790", 'A'},
    /* 6.23 the replacement character */
    {"efbfbd", 'A'},
    {"61efbfbd62", 'A'},
    /* F4 80-8F is fine, F4 90 is not; F5 never */
    {"f4808080", 'A'},
    {"f490", 'R'},
    {"f5", 'R'},
    /* a lead byte interrupted by ASCII, a long ASCII run then trouble */
    {"c241", 'R'},
    {"41414141414141414141414141414141414141c3", 'M'},
    {"41414141414141414141414141414141414141c3a9", 'A'},
    {"41414141414141414141414141414141414141c3c3", 'R'},
};

static void test_vectors(void **state)
{
    uint8_t b[64];

    for (size_t i = 0; i < TS_ARRAY_SIZE(vectors); i++) {
        size_t n = unhex(vectors[i].hex, b);
        uint32_t s = WS_UTF8_ACCEPT;
        int got = verdict(ws_utf8_feed(&s, b, n));

        if (got != vectors[i].verdict || ref_verdict(b, n) != vectors[i].verdict)
            fail_msg("%s: got %c, reference %c, want %c", vectors[i].hex, got, ref_verdict(b, n),
                     vectors[i].verdict);
        assert_int_equal(ws_utf8_valid(b, n), vectors[i].verdict == 'A');
        assert_int_equal(verdict(s), got);
    }
}

/* Autobahn 6.4.x: the failure must come at the byte that makes the text
 * impossible, not at the end of the frame. */
static void test_fail_fast(void **state)
{
    static const struct {
        const char *hex;
        size_t at;
    } cases[] = {
        {"cebae1bdb9cf83cebcceb5f4908080656469746564", 12}, /* F4 90 */
        {"cebae1bdb9cf83cebcceb5eda080656469746564", 12},   /* ED A0 */
        {"cebae1bdb9cf83cebcceb5c0", 11},                   /* C0 */
        {"cebae1bdb9cf83cebcceb5e08080", 12},               /* E0 80 */
        {"cebae1bdb9cf83cebcceb5f08f", 12},                 /* F0 8F */
        {"cebae1bdb9cf83cebcceb5f5", 11},                   /* F5 */
        {"414280", 2},
        {"c2c2", 1},
        {"e0a0c0", 2},
    };
    uint8_t b[64];

    for (size_t i = 0; i < TS_ARRAY_SIZE(cases); i++) {
        size_t n = unhex(cases[i].hex, b);
        int complete;
        if (reject_index(b, n) != cases[i].at || ref_check(b, n, &complete) != cases[i].at)
            fail_msg("%s: rejected at %zu, reference %zu, want %zu", cases[i].hex,
                     reject_index(b, n), ref_check(b, n, &complete), cases[i].at);
    }
    /* Also across calls: the invalid byte alone in its own feed. */
    {
        uint32_t s = WS_UTF8_ACCEPT;
        size_t n = unhex("cebae1bdb9cf83cebcceb5f4", b);
        assert_int_not_equal(ws_utf8_feed(&s, b, n), WS_UTF8_REJECT);
        assert_int_equal(ws_utf8_feed(&s, (const uint8_t *)"\x90", 1), WS_UTF8_REJECT);
    }
}

static void test_vectors_fail_where_reference_does(void **state)
{
    uint8_t b[64];

    for (size_t i = 0; i < TS_ARRAY_SIZE(vectors); i++) {
        size_t n = unhex(vectors[i].hex, b);
        int complete;
        if (reject_index(b, n) != ref_check(b, n, &complete))
            fail_msg("%s: rejected at %zu, reference %zu", vectors[i].hex, reject_index(b, n),
                     ref_check(b, n, &complete));
    }
}

/* ------------------------------------------------------------------------ */
/* Splits                                                                     */
/* ------------------------------------------------------------------------ */

static void check_all_splits(const uint8_t *b, size_t n)
{
    uint32_t one = WS_UTF8_ACCEPT;
    int want = verdict(ws_utf8_feed(&one, b, n));

    assert_int_equal(want, ref_verdict(b, n));
    for (size_t i = 0; i <= n; i++) {
        for (size_t j = i; j <= n; j++) {
            uint32_t s = WS_UTF8_ACCEPT;
            ws_utf8_feed(&s, b, i);
            ws_utf8_feed(&s, b + i, j - i);
            ws_utf8_feed(&s, b + j, n - j);
            if (verdict(s) != want)
                fail_msg("split %zu/%zu of %zu bytes: %c, want %c", i, j, n, verdict(s), want);
            /* The state mid-way is the verdict on the prefix. */
        }
        {
            uint32_t s = WS_UTF8_ACCEPT;
            if (verdict(ws_utf8_feed(&s, b, i)) != ref_verdict(b, i))
                fail_msg("prefix %zu of %zu bytes", i, n);
        }
    }
}

static void test_split_equivalence(void **state)
{
    uint8_t b[64];

    for (size_t i = 0; i < TS_ARRAY_SIZE(vectors); i++)
        check_all_splits(b, unhex(vectors[i].hex, b));
    /* Longer mixed texts. */
    {
        static const char *texts[] = {
            "Hello, \xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5! \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa"
            "\x9e \xf0\x9f\x98\x80 done",
            "{\"type\":\"offer\",\"sdp\":\"v=0\\r\\no=- 4611731400430051336 2 IN IP4 "
            "127.0.0.1\\r\\ns=-\\r\\n\",\"name\":\"\xc3\xa9\xc3\xa8\"}",
            "abcdefghijklmnopqrstuvwxyz0123456789\xed\xa0\x80tail",
        };
        for (size_t i = 0; i < TS_ARRAY_SIZE(texts); i++)
            check_all_splits((const uint8_t *)texts[i], strlen(texts[i]));
    }
}

/* ------------------------------------------------------------------------ */
/* Exhaustive short sequences                                                 */
/* ------------------------------------------------------------------------ */

/* Every prefix's state must match the reference. */
static void check_seq(const uint8_t *b, size_t n)
{
    uint32_t s = WS_UTF8_ACCEPT;

    for (size_t i = 0; i < n; i++) {
        int got = verdict(ws_utf8_feed(&s, b + i, 1));
        int want = ref_verdict(b, i + 1);
        if (got != want)
            fail_msg("%02x %02x %02x %02x (%zu bytes), prefix %zu: %c, want %c", b[0],
                     n > 1 ? b[1] : 0, n > 2 ? b[2] : 0, n > 3 ? b[3] : 0, n, i + 1, got, want);
    }
    {
        uint32_t one = WS_UTF8_ACCEPT;
        if (ws_utf8_feed(&one, b, n) != s)
            fail_msg("one-shot state differs from byte-wise");
    }
}

static void test_exhaustive_1_2_3(void **state)
{
    uint8_t b[3];

    for (unsigned x = 0; x < 256; x++) {
        b[0] = (uint8_t)x;
        check_seq(b, 1);
        for (unsigned y = 0; y < 256; y++) {
            b[1] = (uint8_t)y;
            check_seq(b, 2);
            if (x < 0xc0) /* a three-byte sequence needs a lead byte */
                continue;
            for (unsigned z = 0; z < 256; z++) {
                b[2] = (uint8_t)z;
                check_seq(b, 3);
            }
        }
    }
}

static void test_exhaustive_4(void **state)
{
    static const uint8_t edge[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff};
    uint8_t b[4];

    for (unsigned x = 0xf0; x < 0x100; x++) {
        b[0] = (uint8_t)x;
        for (unsigned y = 0; y < 256; y++) {
            b[1] = (uint8_t)y;
            for (size_t i = 0; i < sizeof(edge); i++) {
                b[2] = edge[i];
                for (size_t j = 0; j < sizeof(edge); j++) {
                    b[3] = edge[j];
                    check_seq(b, 4);
                }
            }
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Fast path and state                                                        */
/* ------------------------------------------------------------------------ */

static void test_ascii_fast_path(void **state)
{
    uint8_t buf[80 + 8];

    /* A bad byte, a good two-byte character and a cut one at every position
     * and alignment of a long ASCII run. */
    for (size_t align = 0; align < 8; align++) {
        uint8_t *b = buf + align;
        for (size_t pos = 0; pos < 78; pos++) {
            memset(b, 'a', 80);
            b[pos] = 0xff;
            assert_int_equal(ws_utf8_valid(b, 80), 0);
            assert_int_equal(reject_index(b, 80), pos);

            memset(b, 'a', 80);
            b[pos] = 0xc3;
            b[pos + 1] = 0xa9;
            assert_int_equal(ws_utf8_valid(b, 80), 1);

            memset(b, 'a', 80);
            b[pos] = 0xe2;
            b[pos + 1] = 0x82;
            {
                uint32_t s = WS_UTF8_ACCEPT;
                /* Cut after the second byte: in the middle, not rejected. */
                assert_int_equal(verdict(ws_utf8_feed(&s, b, pos + 2)), 'M');
                assert_int_equal(ws_utf8_feed(&s, (const uint8_t *)"\xac", 1), WS_UTF8_ACCEPT);
                assert_int_equal(ws_utf8_feed(&s, b + pos + 2, 80 - pos - 2), WS_UTF8_ACCEPT);
            }
        }
    }
    /* Every ASCII byte, NUL included, is valid. */
    {
        uint8_t all[128];
        for (int i = 0; i < 128; i++)
            all[i] = (uint8_t)i;
        assert_int_equal(ws_utf8_valid(all, sizeof(all)), 1);
    }
}

static void test_reject_is_sticky(void **state)
{
    uint32_t s = WS_UTF8_ACCEPT;

    assert_int_equal(ws_utf8_feed(&s, (const uint8_t *)"\xff", 1), WS_UTF8_REJECT);
    assert_int_equal(ws_utf8_feed(&s, (const uint8_t *)"valid text", 10), WS_UTF8_REJECT);
    assert_int_equal(ws_utf8_feed(&s, (const uint8_t *)"", 0), WS_UTF8_REJECT);
    assert_int_equal(s, WS_UTF8_REJECT);
    /* Nothing fed: the state is unchanged. */
    s = WS_UTF8_ACCEPT;
    assert_int_equal(ws_utf8_feed(&s, NULL, 0), WS_UTF8_ACCEPT);
    ws_utf8_feed(&s, (const uint8_t *)"\xe2", 1);
    {
        uint32_t mid = s;
        assert_int_equal(ws_utf8_feed(&s, NULL, 0), mid);
    }
    /* A state no call ever returns is not mistaken for success. */
    s = 200;
    assert_int_equal(ws_utf8_feed(&s, (const uint8_t *)"a", 1), WS_UTF8_REJECT);
}

static void test_large_texts(void **state)
{
    size_t n = 1 << 20;
    uint8_t *b = malloc(n);

    /* Valid multi-byte text of every length class, repeated. */
    static const char unit[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z";
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)unit[i % (sizeof(unit) - 1)];
    n -= n % (sizeof(unit) - 1);
    assert_int_equal(ws_utf8_valid(b, n), 1);
    b[n - 3] = 0xc0;
    assert_int_equal(ws_utf8_valid(b, n), 0);
    assert_int_equal(reject_index(b, n), n - 3);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_fail_fast),
        cmocka_unit_test(test_vectors_fail_where_reference_does),
        cmocka_unit_test(test_split_equivalence),
        cmocka_unit_test(test_exhaustive_1_2_3),
        cmocka_unit_test(test_exhaustive_4),
        cmocka_unit_test(test_ascii_fast_path),
        cmocka_unit_test(test_reject_is_sticky),
        cmocka_unit_test(test_large_texts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
