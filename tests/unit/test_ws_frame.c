/*
 * test_ws_frame.c — the RFC 6455 frame codec on byte arrays: the section 5.7
 * examples, every refusal with its close code (and at the earliest byte that
 * shows it), header write/parse round trips, masking at every offset and
 * alignment against a byte-wise reference, and the close-code table.
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
#include "ws/frame.h"

#define NO_LIMIT UINT64_MAX

static ws_frame_t f;

static int parse(const uint8_t *b, size_t n, int require_mask, uint64_t max)
{
    memset(&f, 0xa5, sizeof(f)); /* no field may keep a stale value */
    return ws_frame_parse(b, n, require_mask, max, &f);
}

/* Every proper prefix of a complete header must ask for more. */
static void expect_prefixes_again(const uint8_t *b, size_t header_len, int require_mask)
{
    for (size_t i = 0; i < header_len; i++) {
        if (parse(b, i, require_mask, NO_LIMIT) != TS_ERR_AGAIN)
            fail_msg("prefix of %zu bytes: not TS_ERR_AGAIN", i);
    }
}

static void expect_error(const uint8_t *b, size_t n, int require_mask, uint64_t max, int rc,
                         unsigned code)
{
    int got = parse(b, n, require_mask, max);
    if (got != rc || f.close_code != code)
        fail_msg("rc %d close %u, want rc %d close %u", got, f.close_code, rc, code);
    assert_non_null(f.error);
    assert_true(strlen(f.error) > 0);
}

/* ------------------------------------------------------------------------ */
/* RFC 6455 section 5.7                                                       */
/* ------------------------------------------------------------------------ */

static void test_rfc_unmasked_text(void **state)
{
    static const uint8_t b[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};

    assert_int_equal(parse(b, sizeof(b), 0, NO_LIMIT), TS_OK);
    assert_int_equal(f.fin, 1);
    assert_int_equal(f.rsv, 0);
    assert_int_equal(f.opcode, WS_OP_TEXT);
    assert_int_equal(f.masked, 0);
    assert_int_equal(f.header_len, 2);
    assert_int_equal(f.payload_len, 5);
    assert_memory_equal(b + f.header_len, "Hello", 5);
    expect_prefixes_again(b, 2, 0);
    /* A server must refuse it from a client. */
    expect_error(b, sizeof(b), 1, NO_LIMIT, TS_ERR_PROTO, WS_CLOSE_PROTOCOL_ERROR);
}

static void test_rfc_masked_text(void **state)
{
    static const uint8_t b[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t payload[5];

    assert_int_equal(parse(b, sizeof(b), 1, NO_LIMIT), TS_OK);
    assert_int_equal(f.fin, 1);
    assert_int_equal(f.opcode, WS_OP_TEXT);
    assert_int_equal(f.masked, 1);
    assert_memory_equal(f.mask, key, 4);
    assert_int_equal(f.header_len, 6);
    assert_int_equal(f.payload_len, 5);
    memcpy(payload, b + 6, 5);
    ws_mask_apply(payload, 5, f.mask, 0);
    assert_memory_equal(payload, "Hello", 5);
    expect_prefixes_again(b, 6, 1);

    /* Unmasked as it arrives: 2 bytes, then 3. */
    memcpy(payload, b + 6, 5);
    ws_mask_apply(payload, 2, key, 0);
    ws_mask_apply(payload + 2, 3, key, 2);
    assert_memory_equal(payload, "Hello", 5);
}

static void test_rfc_fragmented(void **state)
{
    static const uint8_t first[] = {0x01, 0x03, 0x48, 0x65, 0x6c};
    static const uint8_t last[] = {0x80, 0x02, 0x6c, 0x6f};

    assert_int_equal(parse(first, sizeof(first), 0, NO_LIMIT), TS_OK);
    assert_int_equal(f.fin, 0);
    assert_int_equal(f.opcode, WS_OP_TEXT);
    assert_int_equal(f.payload_len, 3);
    assert_int_equal(parse(last, sizeof(last), 0, NO_LIMIT), TS_OK);
    assert_int_equal(f.fin, 1);
    assert_int_equal(f.opcode, WS_OP_CONT);
    assert_int_equal(f.payload_len, 2);
}

static void test_rfc_ping_pong(void **state)
{
    static const uint8_t ping[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    static const uint8_t pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                   0x7f, 0x9f, 0x4d, 0x51, 0x58};
    uint8_t payload[5];

    assert_int_equal(parse(ping, sizeof(ping), 0, NO_LIMIT), TS_OK);
    assert_int_equal(f.opcode, WS_OP_PING);
    assert_int_equal(f.payload_len, 5);
    assert_int_equal(parse(pong, sizeof(pong), 1, NO_LIMIT), TS_OK);
    assert_int_equal(f.opcode, WS_OP_PONG);
    memcpy(payload, pong + 6, 5);
    ws_mask_apply(payload, 5, f.mask, 0);
    assert_memory_equal(payload, "Hello", 5);
}

static void test_rfc_extended_lengths(void **state)
{
    static const uint8_t b256[] = {0x82, 0x7e, 0x01, 0x00};
    static const uint8_t b64k[] = {0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00};
    uint8_t out[WS_MAX_HEADER];

    assert_int_equal(parse(b256, sizeof(b256), 0, NO_LIMIT), TS_OK);
    assert_int_equal(f.opcode, WS_OP_BINARY);
    assert_int_equal(f.header_len, 4);
    assert_int_equal(f.payload_len, 256);
    expect_prefixes_again(b256, 4, 0);
    assert_int_equal(parse(b64k, sizeof(b64k), 0, NO_LIMIT), TS_OK);
    assert_int_equal(f.header_len, 10);
    assert_int_equal(f.payload_len, 65536);
    expect_prefixes_again(b64k, 10, 0);

    /* The writer produces exactly the RFC's bytes. */
    assert_int_equal(ws_frame_header_write(out, 1, 0, WS_OP_BINARY, 256, NULL), 4);
    assert_memory_equal(out, b256, 4);
    assert_int_equal(ws_frame_header_write(out, 1, 0, WS_OP_BINARY, 65536, NULL), 10);
    assert_memory_equal(out, b64k, 10);
}

static void test_rfc_write_examples(void **state)
{
    static const uint8_t text[] = {0x81, 0x05};
    static const uint8_t masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d};
    static const uint8_t first[] = {0x01, 0x03};
    static const uint8_t last[] = {0x80, 0x02};
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t out[WS_MAX_HEADER];

    assert_int_equal(ws_frame_header_write(out, 1, 0, WS_OP_TEXT, 5, NULL), 2);
    assert_memory_equal(out, text, 2);
    assert_int_equal(ws_frame_header_write(out, 1, 0, WS_OP_TEXT, 5, key), 6);
    assert_memory_equal(out, masked, 6);
    assert_int_equal(ws_frame_header_write(out, 0, 0, WS_OP_TEXT, 3, NULL), 2);
    assert_memory_equal(out, first, 2);
    assert_int_equal(ws_frame_header_write(out, 1, 0, WS_OP_CONT, 2, NULL), 2);
    assert_memory_equal(out, last, 2);
}

/* ------------------------------------------------------------------------ */
/* Refusals                                                                   */
/* ------------------------------------------------------------------------ */

static void test_reserved_opcodes(void **state)
{
    for (unsigned op = 0; op < 16; op++) {
        uint8_t b[6] = {(uint8_t)(0x80 | op), 0x80, 1, 2, 3, 4};
        int reserved = (op >= 3 && op <= 7) || op >= 0xb;

        if (reserved) {
            /* Refused on the first byte alone. */
            expect_error(b, 1, 1, NO_LIMIT, TS_ERR_PROTO, WS_CLOSE_PROTOCOL_ERROR);
            expect_error(b, sizeof(b), 1, NO_LIMIT, TS_ERR_PROTO, WS_CLOSE_PROTOCOL_ERROR);
        } else {
            assert_int_equal(parse(b, sizeof(b), 1, NO_LIMIT), TS_OK);
            assert_int_equal(f.opcode, op);
        }
    }
}

static void test_control_frames(void **state)
{
    static const uint8_t ops[] = {WS_OP_CLOSE, WS_OP_PING, WS_OP_PONG};

    for (size_t i = 0; i < TS_ARRAY_SIZE(ops); i++) {
        uint8_t fin0[2] = {ops[i], 0x80};
        uint8_t len125[6] = {(uint8_t)(0x80 | ops[i]), 0x80 | 125, 1, 2, 3, 4};
        uint8_t len126[8] = {(uint8_t)(0x80 | ops[i]), 0x80 | 126, 0, 126, 1, 2, 3, 4};
        uint8_t len127[14] = {(uint8_t)(0x80 | ops[i]), 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 1};

        /* FIN clear: refused on the first byte. */
        expect_error(fin0, 1, 1, NO_LIMIT, TS_ERR_PROTO, WS_CLOSE_PROTOCOL_ERROR);
        assert_int_equal(parse(len125, sizeof(len125), 1, NO_LIMIT), TS_OK);
        assert_int_equal(f.payload_len, 125);
        /* Over 125 bytes: refused on the second byte, even as 126 in 16 bits. */
        expect_error(len126, 2, 1, NO_LIMIT, TS_ERR_PROTO, WS_CLOSE_PROTOCOL_ERROR);
        expect_error(len126, sizeof(len126), 1, NO_LIMIT, TS_ERR_PROTO, WS_CLOSE_PROTOCOL_ERROR);
        expect_error(len127, 2, 1, NO_LIMIT, TS_ERR_PROTO, WS_CLOSE_PROTOCOL_ERROR);
    }
    /* Data frames may be fragmented. */
    {
        uint8_t b[6] = {WS_OP_BINARY, 0x80, 1, 2, 3, 4};
        assert_int_equal(parse(b, sizeof(b), 1, NO_LIMIT), TS_OK);
        assert_int_equal(f.fin, 0);
    }
}

static void test_require_mask(void **state)
{
    uint8_t unmasked[2] = {0x82, 0x00};
    uint8_t masked[6] = {0x82, 0x80, 9, 8, 7, 6};

    expect_error(unmasked, 2, 1, NO_LIMIT, TS_ERR_PROTO, WS_CLOSE_PROTOCOL_ERROR);
    assert_int_equal(parse(unmasked, 2, 0, NO_LIMIT), TS_OK);
    assert_int_equal(f.masked, 0);
    assert_int_equal(f.header_len, 2);
    /* A masked frame is accepted either way (a client reads server frames
     * unmasked, but this codec does not judge the other direction). */
    assert_int_equal(parse(masked, 6, 0, NO_LIMIT), TS_OK);
    assert_int_equal(f.masked, 1);
    assert_int_equal(parse(masked, 6, 1, NO_LIMIT), TS_OK);
    assert_int_equal(f.header_len, 6);
}

static void test_length_top_bit(void **state)
{
    uint8_t b[14] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};

    /* Refused as soon as the 8 length bytes are in, before the key. */
    assert_int_equal(parse(b, 9, 1, NO_LIMIT), TS_ERR_AGAIN);
    expect_error(b, 10, 1, NO_LIMIT, TS_ERR_PROTO, WS_CLOSE_PROTOCOL_ERROR);
    /* The largest legal 64-bit length. */
    b[2] = 0x7f;
    memset(b + 3, 0xff, 7);
    assert_int_equal(parse(b, sizeof(b), 1, NO_LIMIT), TS_OK);
    assert_int_equal(f.payload_len, INT64_MAX);
}

static void test_max_payload(void **state)
{
    uint8_t b7[6] = {0x82, 0x80 | 100, 1, 2, 3, 4};
    uint8_t b16[8] = {0x82, 0x80 | 126, 0x10, 0x00, 1, 2, 3, 4};                 /* 4096 */
    uint8_t b64[14] = {0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0x10, 0, 1, 1, 2, 3, 4}; /* 1 MiB + 1 */

    assert_int_equal(parse(b7, sizeof(b7), 1, 100), TS_OK);
    expect_error(b7, 2, 1, 99, TS_ERR_LIMIT, WS_CLOSE_TOO_BIG);
    assert_int_equal(f.payload_len, 100);

    assert_int_equal(parse(b16, sizeof(b16), 1, 4096), TS_OK);
    /* Judged from the length field alone, before the masking key. */
    expect_error(b16, 4, 1, 4095, TS_ERR_LIMIT, WS_CLOSE_TOO_BIG);
    assert_int_equal(parse(b16, 3, 1, 4095), TS_ERR_AGAIN);

    assert_int_equal(parse(b64, sizeof(b64), 1, 1024 * 1024 + 1), TS_OK);
    expect_error(b64, 10, 1, 1024 * 1024, TS_ERR_LIMIT, WS_CLOSE_TOO_BIG);
    /* Zero limit: only empty frames. */
    expect_error(b7, 2, 1, 0, TS_ERR_LIMIT, WS_CLOSE_TOO_BIG);
    b7[1] = 0x80;
    assert_int_equal(parse(b7, sizeof(b7), 1, 0), TS_OK);
}

static void test_rsv_reported(void **state)
{
    for (unsigned rsv = 0; rsv < 8; rsv++) {
        uint8_t b[2] = {(uint8_t)(0x80 | rsv << 4 | WS_OP_TEXT), 0x00};
        assert_int_equal(parse(b, 2, 0, NO_LIMIT), TS_OK);
        assert_int_equal(f.rsv, rsv);
    }
    {
        uint8_t b[2] = {0xc1, 0x00}; /* RSV1: permessage-deflate's bit */
        assert_int_equal(parse(b, 2, 0, NO_LIMIT), TS_OK);
        assert_int_equal(f.rsv, WS_RSV1);
    }
}

static void test_non_minimal_length_accepted(void **state)
{
    uint8_t b16[4] = {0x82, 126, 0x00, 0x05};
    uint8_t b64[10] = {0x82, 127, 0, 0, 0, 0, 0, 0, 0x01, 0x00};

    assert_int_equal(parse(b16, sizeof(b16), 0, NO_LIMIT), TS_OK);
    assert_int_equal(f.payload_len, 5);
    assert_int_equal(f.header_len, 4);
    assert_int_equal(parse(b64, sizeof(b64), 0, NO_LIMIT), TS_OK);
    assert_int_equal(f.payload_len, 256);
    assert_int_equal(f.header_len, 10);
}

/* ------------------------------------------------------------------------ */
/* Round trips                                                                */
/* ------------------------------------------------------------------------ */

static void test_write_parse_round_trip(void **state)
{
    static const uint64_t lens[] = {
        0, 1, 125, 126, 127, 65535, 65536, 0xffffffffu, 0x100000000ull, INT64_MAX};
    static const int ops[] = {WS_OP_CONT,  WS_OP_TEXT, WS_OP_BINARY,
                              WS_OP_CLOSE, WS_OP_PING, WS_OP_PONG};
    static const uint8_t key[4] = {0xde, 0xad, 0xbe, 0xef};
    uint8_t out[WS_MAX_HEADER + 1];

    for (size_t l = 0; l < TS_ARRAY_SIZE(lens); l++) {
        for (size_t o = 0; o < TS_ARRAY_SIZE(ops); o++) {
            for (int m = 0; m < 2; m++) {
                for (int rsv = 0; rsv < 8; rsv++) {
                    int fin = ops[o] >= WS_OP_CLOSE ? 1 : rsv & 1;
                    size_t n =
                        ws_frame_header_write(out, fin, rsv, ops[o], lens[l], m ? key : NULL);
                    size_t want = (lens[l] < 126 ? 2 : lens[l] <= 0xffff ? 4 : 10) + 4 * m;
                    int rc;

                    assert_int_equal(n, want);
                    rc = parse(out, n, m, NO_LIMIT);
                    if (ops[o] >= WS_OP_CLOSE && lens[l] > 125) {
                        assert_int_equal(rc, TS_ERR_PROTO);
                        continue;
                    }
                    assert_int_equal(rc, TS_OK);
                    assert_int_equal(f.header_len, n);
                    assert_int_equal(f.fin, fin);
                    assert_int_equal(f.rsv, rsv);
                    assert_int_equal(f.opcode, ops[o]);
                    assert_int_equal(f.masked, m);
                    assert_true(f.payload_len == lens[l]);
                    if (m)
                        assert_memory_equal(f.mask, key, 4);
                    /* Extra bytes after the header belong to the payload. */
                    out[n] = 0x5a;
                    assert_int_equal(parse(out, n + 1, m, NO_LIMIT), TS_OK);
                    assert_int_equal(f.header_len, n);
                }
            }
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Masking                                                                    */
/* ------------------------------------------------------------------------ */

static void mask_ref(uint8_t *d, size_t len, const uint8_t m[4], uint64_t off)
{
    for (size_t i = 0; i < len; i++)
        d[i] ^= m[(off + i) % 4];
}

static void test_mask_every_offset_and_length(void **state)
{
    static const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
    static const uint64_t offsets[] = {
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 0xffffffffull, 0x100000001ull, UINT64_MAX - 2};
    uint8_t storage[64 + 16 + 8], want[64 + 16 + 8];

    for (size_t align = 0; align < 8; align++) {
        for (size_t o = 0; o < TS_ARRAY_SIZE(offsets); o++) {
            for (size_t len = 0; len <= 64; len++) {
                for (size_t i = 0; i < sizeof(storage); i++)
                    storage[i] = want[i] = (uint8_t)(i * 7 + len + align);
                ws_mask_apply(storage + align, len, key, offsets[o]);
                mask_ref(want + align, len, key, offsets[o]);
                /* Right bytes changed, and none outside the range. */
                if (memcmp(storage, want, sizeof(storage)) != 0)
                    fail_msg("align %zu offset %llu len %zu", align, (unsigned long long)offsets[o],
                             len);
            }
        }
    }
}

static void test_mask_piecewise(void **state)
{
    static const uint8_t key[4] = {0xa1, 0xb2, 0xc3, 0xd4};
    uint8_t orig[300], a[300], b[300];

    for (size_t i = 0; i < sizeof(orig); i++)
        orig[i] = (uint8_t)(i ^ 0x5c);
    memcpy(a, orig, sizeof(a));
    ws_mask_apply(a, sizeof(a), key, 0);
    /* Any split gives the same bytes as one call. */
    for (size_t s1 = 0; s1 <= sizeof(orig); s1 += 7) {
        for (size_t s2 = s1; s2 <= sizeof(orig); s2 += 13) {
            memcpy(b, orig, sizeof(b));
            ws_mask_apply(b, s1, key, 0);
            ws_mask_apply(b + s1, s2 - s1, key, s1);
            ws_mask_apply(b + s2, sizeof(b) - s2, key, s2);
            assert_memory_equal(a, b, sizeof(a));
        }
    }
    /* Masking twice restores the data. */
    ws_mask_apply(a, sizeof(a), key, 0);
    assert_memory_equal(a, orig, sizeof(a));
}

static void test_mask_large(void **state)
{
    static const uint8_t key[4] = {0x01, 0x80, 0xff, 0x7e};
    size_t n = 1024 * 1024 + 3;
    uint8_t *a = malloc(n + 1), *b = malloc(n + 1);

    for (size_t i = 0; i < n + 1; i++)
        a[i] = b[i] = (uint8_t)(i * 31);
    ws_mask_apply(a + 1, n, key, 3);
    mask_ref(b + 1, n, key, 3);
    assert_memory_equal(a, b, n + 1);
    free(a);
    free(b);
}

/* ------------------------------------------------------------------------ */
/* Close codes                                                                */
/* ------------------------------------------------------------------------ */

static void test_close_codes(void **state)
{
    static const unsigned valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                                     1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
    static const unsigned invalid[] = {0,    1,    999,  1004, 1005, 1006,  1015, 1016,
                                       1100, 2000, 2999, 5000, 5001, 65535, 70000};

    for (size_t i = 0; i < TS_ARRAY_SIZE(valid); i++)
        if (!ws_close_code_valid(valid[i]))
            fail_msg("%u should be valid", valid[i]);
    for (size_t i = 0; i < TS_ARRAY_SIZE(invalid); i++)
        if (ws_close_code_valid(invalid[i]))
            fail_msg("%u should be invalid", invalid[i]);
    /* And the whole range against the rule. */
    for (unsigned c = 0; c < 70000; c++) {
        int want = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
        if (ws_close_code_valid(c) != want)
            fail_msg("close code %u", c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_unmasked_text),
        cmocka_unit_test(test_rfc_masked_text),
        cmocka_unit_test(test_rfc_fragmented),
        cmocka_unit_test(test_rfc_ping_pong),
        cmocka_unit_test(test_rfc_extended_lengths),
        cmocka_unit_test(test_rfc_write_examples),
        cmocka_unit_test(test_reserved_opcodes),
        cmocka_unit_test(test_control_frames),
        cmocka_unit_test(test_require_mask),
        cmocka_unit_test(test_length_top_bit),
        cmocka_unit_test(test_max_payload),
        cmocka_unit_test(test_rsv_reported),
        cmocka_unit_test(test_non_minimal_length_accepted),
        cmocka_unit_test(test_write_parse_round_trip),
        cmocka_unit_test(test_mask_every_offset_and_length),
        cmocka_unit_test(test_mask_piecewise),
        cmocka_unit_test(test_mask_large),
        cmocka_unit_test(test_close_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
