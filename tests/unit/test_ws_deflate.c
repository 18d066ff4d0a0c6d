/*
 * test_ws_deflate.c — permessage-deflate: negotiation of real browser offers
 * and of every parameter rule of RFC 7692 sections 5 and 7, the section
 * 7.2.3 examples byte for byte, round trips, context takeover on both sides,
 * window sizes that are really honoured, the inflater's lifetime, corrupt
 * and truncated data, and zip bombs stopped at the limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "core/buf.h"
#include "core/common.h"
#include "ws/deflate.h"

#define S(lit) lit, sizeof(lit) - 1

static ts_pool_t pool;

static int setup(void **state)
{
    ts_pool_init(&pool, 4);
    return 0;
}

static int teardown(void **state)
{
    /* Every buffer a test took must be back. */
    assert_int_equal(pool.allocated, 0);
    ts_pool_free(&pool);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Negotiation                                                                */
/* ------------------------------------------------------------------------ */

static const ws_pmd_policy_t policy_default = {
    .enabled = 1, .server_context_takeover = 0, .client_max_window_bits = 12, .min_compress = 64};

static ws_pmd_params_t prm;
static char resp[160];

static int nego(const char *offer, const ws_pmd_policy_t *policy)
{
    memset(&prm, 0xa5, sizeof(prm));
    memset(resp, 'x', sizeof(resp));
    return ws_pmd_negotiate(offer, strlen(offer), policy, &prm, resp, sizeof(resp));
}

static void expect_accept(const char *offer, const ws_pmd_policy_t *policy, const char *want)
{
    int rc = nego(offer, policy);
    if (rc != TS_OK || strcmp(resp, want) != 0)
        fail_msg("\"%s\": rc %d resp \"%s\", want \"%s\"", offer, rc, rc == TS_OK ? resp : "",
                 want);
}

static void expect_params(unsigned snct, unsigned cnct, unsigned smwb, unsigned cmwb)
{
    assert_int_equal(prm.server_no_context_takeover, snct);
    assert_int_equal(prm.client_no_context_takeover, cnct);
    assert_int_equal(prm.server_max_window_bits, smwb);
    assert_int_equal(prm.client_max_window_bits, cmwb);
}

static void expect_rc(const char *offer, int want)
{
    int rc = nego(offer, &policy_default);
    if (rc != want)
        fail_msg("\"%s\": rc %d, want %d", offer, rc, want);
    if (rc != TS_OK)
        assert_string_equal(resp, "");
}

static void test_nego_browsers(void **state)
{
    /* Chrome, Edge. */
    expect_accept("permessage-deflate; client_max_window_bits", &policy_default,
                  "permessage-deflate; server_no_context_takeover; client_max_window_bits=12");
    expect_params(1, 0, 15, 12);
    /* Firefox. */
    expect_accept("permessage-deflate", &policy_default,
                  "permessage-deflate; server_no_context_takeover");
    expect_params(1, 0, 15, 15);
    /* A client that limits both windows, as memory-conscious libraries do. */
    expect_accept("permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
                  &policy_default,
                  "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; "
                  "client_max_window_bits=12");
    expect_params(1, 0, 12, 12);
}

static void test_nego_policy(void **state)
{
    ws_pmd_policy_t p = policy_default;

    p.enabled = 0;
    assert_int_equal(nego("permessage-deflate", &p), TS_ERR_AGAIN);
    assert_int_equal(ws_pmd_negotiate(S("permessage-deflate"), NULL, &prm, resp, sizeof(resp)),
                     TS_ERR_AGAIN);

    /* Takeover allowed: no server_no_context_takeover unless asked. */
    p = policy_default;
    p.server_context_takeover = 1;
    expect_accept("permessage-deflate", &p, "permessage-deflate");
    expect_params(0, 0, 15, 15);
    expect_accept("permessage-deflate; server_no_context_takeover", &p,
                  "permessage-deflate; server_no_context_takeover");
    expect_params(1, 0, 15, 15);

    /* The client window cap: min(cap, offer); 15 when the cap is unset. */
    p = policy_default;
    expect_accept("permessage-deflate; client_max_window_bits=10", &p,
                  "permessage-deflate; server_no_context_takeover; client_max_window_bits=10");
    expect_params(1, 0, 15, 10);
    expect_accept("permessage-deflate; client_max_window_bits=14", &p,
                  "permessage-deflate; server_no_context_takeover; client_max_window_bits=12");
    expect_params(1, 0, 15, 12);
    p.client_max_window_bits = 0;
    expect_accept("permessage-deflate; client_max_window_bits", &p,
                  "permessage-deflate; server_no_context_takeover; client_max_window_bits=15");
    expect_params(1, 0, 15, 15);
    p.client_max_window_bits = 8;
    expect_accept("permessage-deflate; client_max_window_bits", &p,
                  "permessage-deflate; server_no_context_takeover; client_max_window_bits=8");
    expect_params(1, 0, 15, 8);

    /* Asking every client to drop its context, offered or not. */
    p = policy_default;
    p.client_no_context_takeover = 1;
    expect_accept("permessage-deflate; client_max_window_bits", &p,
                  "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                  "client_max_window_bits=12");
    expect_params(1, 1, 15, 12);
    expect_accept("permessage-deflate", &p,
                  "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    expect_params(1, 1, 15, 15);
}

static void test_nego_params(void **state)
{
    expect_accept("permessage-deflate; client_no_context_takeover", &policy_default,
                  "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    expect_params(1, 1, 15, 15);
    expect_accept("permessage-deflate; server_no_context_takeover", &policy_default,
                  "permessage-deflate; server_no_context_takeover");
    expect_params(1, 0, 15, 15);
    expect_accept("permessage-deflate; server_max_window_bits=9", &policy_default,
                  "permessage-deflate; server_no_context_takeover; server_max_window_bits=9");
    expect_params(1, 0, 9, 15);
    expect_accept("permessage-deflate; server_max_window_bits=15", &policy_default,
                  "permessage-deflate; server_no_context_takeover; server_max_window_bits=15");
    expect_accept("permessage-deflate;client_no_context_takeover;server_no_context_takeover;"
                  "server_max_window_bits=10;client_max_window_bits=11",
                  &policy_default,
                  "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                  "server_max_window_bits=10; client_max_window_bits=11");
    expect_params(1, 1, 10, 11);
    /* Quoted values, escapes, whitespace, case. */
    expect_accept("permessage-deflate; client_max_window_bits=\"10\"", &policy_default,
                  "permessage-deflate; server_no_context_takeover; client_max_window_bits=10");
    expect_accept("permessage-deflate; client_max_window_bits=\"1\\0\"", &policy_default,
                  "permessage-deflate; server_no_context_takeover; client_max_window_bits=10");
    expect_accept(" permessage-deflate \t;\tclient_max_window_bits = 9 ", &policy_default,
                  "permessage-deflate; server_no_context_takeover; client_max_window_bits=9");
    expect_accept("PerMessage-Deflate; Client_Max_Window_Bits", &policy_default,
                  "permessage-deflate; server_no_context_takeover; client_max_window_bits=12");
}

static void test_nego_declined(void **state)
{
    /* Each of these offers is declined on its own... */
    static const char *bad[] = {
        "permessage-deflate; foo",
        "permessage-deflate; foo=1",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=true",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=08",
        "permessage-deflate; server_max_window_bits=015",
        "permessage-deflate; server_max_window_bits=abc",
        "permessage-deflate; server_max_window_bits=100000000000000000009",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=\"\\31\\36\"",
        /* zlib's raw deflate has no 256-byte window: never promised. */
        "permessage-deflate; server_max_window_bits=8",
        "x-webkit-deflate-frame",
        "permessage-deflate-x",
    };
    char buf[256];

    for (size_t i = 0; i < TS_ARRAY_SIZE(bad); i++) {
        expect_rc(bad[i], TS_ERR_AGAIN);
        /* ...and the next acceptable one is taken instead. */
        snprintf(buf, sizeof(buf), "%s, permessage-deflate; client_no_context_takeover", bad[i]);
        expect_accept(buf, &policy_default,
                      "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
        expect_params(1, 1, 15, 15);
    }
    /* Parameters of other extensions are not judged. */
    expect_accept("foo; server_max_window_bits=99; bar, permessage-deflate", &policy_default,
                  "permessage-deflate; server_no_context_takeover");
    /* The first acceptable offer wins. */
    expect_accept("permessage-deflate; client_max_window_bits=9, permessage-deflate",
                  &policy_default,
                  "permessage-deflate; server_no_context_takeover; client_max_window_bits=9");
    expect_rc("", TS_ERR_AGAIN);
    expect_rc(" , ,", TS_ERR_AGAIN);
    expect_accept(", , permessage-deflate ,,", &policy_default,
                  "permessage-deflate; server_no_context_takeover");
}

static void test_nego_malformed(void **state)
{
    static const char *bad[] = {
        ";",
        "permessage-deflate;",
        "permessage-deflate; ",
        "permessage-deflate; ;client_no_context_takeover",
        "permessage-deflate; =1",
        "permessage-deflate; client_max_window_bits=",
        "permessage-deflate; client_max_window_bits=\"10",
        "permessage-deflate; client_max_window_bits=\"\"",
        "permessage-deflate; client_max_window_bits=\"1 0\"",
        "permessage-deflate; client_max_window_bits=\"10\\",
        "permessage-deflate; client_max_window_bits=1 0",
        "permessage-deflate client_max_window_bits",
        "permessage-deflate; a=b=c",
        "@",
        "permessage-deflate/1",
        "perm\x01ssage-deflate",
        "\"permessage-deflate\"",
        /* Garbage after an acceptable offer still makes the header bad. */
        "permessage-deflate, permessage-deflate;",
        "permessage-deflate, ;",
    };

    for (size_t i = 0; i < TS_ARRAY_SIZE(bad); i++)
        expect_rc(bad[i], TS_ERR_PROTO);
}

static void test_nego_resp_room(void **state)
{
    static const char offer[] = "permessage-deflate; client_no_context_takeover; "
                                "server_max_window_bits=10; client_max_window_bits=11";
    char small[200];
    size_t full;

    assert_int_equal(nego(offer, &policy_default), TS_OK);
    full = strlen(resp);
    for (size_t cap = 0; cap <= full; cap++)
        assert_int_equal(ws_pmd_negotiate(offer, strlen(offer), &policy_default, &prm, small, cap),
                         TS_ERR);
    assert_int_equal(ws_pmd_negotiate(offer, strlen(offer), &policy_default, &prm, small, full + 1),
                     TS_OK);
    assert_string_equal(small, resp);
}

/* ------------------------------------------------------------------------ */
/* Helpers for the codec                                                      */
/* ------------------------------------------------------------------------ */

static ws_pmd_params_t params(int snct, int cnct, int smwb, int cmwb)
{
    ws_pmd_params_t p = {(uint8_t)snct, (uint8_t)cnct, (uint8_t)smwb, (uint8_t)cmwb};
    return p;
}

static void assert_buf(const ts_buf_t *b, const void *want, size_t n)
{
    if (b->len != n || (n > 0 && memcmp(ts_buf_head(b), want, n) != 0)) {
        char got[256] = "";
        for (size_t i = 0; i < b->len && i < 60; i++)
            snprintf(got + strlen(got), sizeof(got) - strlen(got), "%02x ",
                     (uint8_t)ts_buf_head(b)[i]);
        fail_msg("got %u bytes (%s), want %zu", b->len, got, n);
    }
}

static int inflate_all(ws_pmd_t *p, const void *in, size_t n, ts_buf_t *out, size_t max)
{
    return ws_pmd_inflate(p, in, n, 1, out, &pool, max);
}

static uint8_t *random_bytes(size_t n, unsigned seed, int compressible)
{
    uint8_t *b = malloc(n ? n : 1);
    uint32_t x = seed * 2654435761u + 1;

    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        b[i] = compressible ? (uint8_t)("abcdefgh {}\":,"[(x >> 16) % 14]) : (uint8_t)(x >> 16);
    }
    return b;
}

/* Deflate with zlib directly, as a client would: raw, sync flush, tail
 * removed. Like Python's websockets, an empty message after another one
 * comes out empty (zlib writes nothing for a repeated flush). */
static size_t client_deflate(z_stream *z, const void *in, size_t n, uint8_t *out, size_t cap)
{
    int rc;

    z->next_in = (Bytef *)(uintptr_t)in;
    z->avail_in = (uInt)n;
    z->next_out = out;
    z->avail_out = (uInt)cap;
    rc = deflate(z, Z_SYNC_FLUSH);
    if (rc == Z_BUF_ERROR && n == 0 && z->avail_out == cap)
        return 0;
    assert_int_equal(rc, Z_OK);
    assert_int_equal(z->avail_in, 0);
    assert_true(z->avail_out > 0);
    n = cap - z->avail_out;
    assert_memory_equal(out + n - 4, "\x00\x00\xff\xff", 4);
    return n - 4;
}

/* ------------------------------------------------------------------------ */
/* RFC 7692 section 7.2.3                                                     */
/* ------------------------------------------------------------------------ */

static const uint8_t hello_deflated[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};

static void test_rfc_hello(void **state)
{
    ws_pmd_params_t pp = params(1, 0, 15, 15);
    ws_pmd_shared_t *sh = ws_pmd_shared_new();
    ws_pmd_t *p = ws_pmd_new(&pp);
    ts_buf_t out = TS_BUF_INIT;

    /* 7.2.3.1: compressing "Hello". */
    assert_int_equal(ws_pmd_deflate(p, sh, (const uint8_t *)"Hello", 5, &out, &pool), TS_OK);
    assert_buf(&out, hello_deflated, sizeof(hello_deflated));
    ts_buf_release(&out, &pool);
    /* Without context takeover the next message compresses alike. */
    assert_int_equal(ws_pmd_deflate(p, sh, (const uint8_t *)"Hello", 5, &out, &pool), TS_OK);
    assert_buf(&out, hello_deflated, sizeof(hello_deflated));
    ts_buf_release(&out, &pool);

    /* Decompressing it, whole and as the RFC's two fragments. */
    assert_int_equal(inflate_all(p, hello_deflated, sizeof(hello_deflated), &out, 1024), TS_OK);
    assert_buf(&out, "Hello", 5);
    ts_buf_release(&out, &pool);
    assert_int_equal(ws_pmd_inflate(p, hello_deflated, 3, 0, &out, &pool, 1024), TS_OK);
    assert_int_equal(ws_pmd_inflate(p, hello_deflated + 3, 4, 1, &out, &pool, 1024), TS_OK);
    assert_buf(&out, "Hello", 5);
    ts_buf_release(&out, &pool);
    /* Every split point. */
    for (size_t i = 0; i <= sizeof(hello_deflated); i++) {
        assert_int_equal(ws_pmd_inflate(p, hello_deflated, i, 0, &out, &pool, 1024), TS_OK);
        assert_int_equal(
            ws_pmd_inflate(p, hello_deflated + i, sizeof(hello_deflated) - i, 1, &out, &pool, 1024),
            TS_OK);
        assert_buf(&out, "Hello", 5);
        ts_buf_release(&out, &pool);
    }
    ws_pmd_free(p);
    ws_pmd_shared_free(sh);
}

static void test_rfc_context_takeover(void **state)
{
    /* 7.2.3.2: the second "Hello" refers back to the first. */
    static const uint8_t second[] = {0xf2, 0x00, 0x11, 0x00, 0x00};
    ws_pmd_params_t pp = params(0, 0, 15, 15);
    ws_pmd_shared_t *sh = ws_pmd_shared_new();
    ws_pmd_t *p = ws_pmd_new(&pp);
    ts_buf_t out = TS_BUF_INIT;

    assert_int_equal(ws_pmd_deflate(p, sh, (const uint8_t *)"Hello", 5, &out, &pool), TS_OK);
    assert_buf(&out, hello_deflated, sizeof(hello_deflated));
    ts_buf_release(&out, &pool);
    assert_int_equal(ws_pmd_deflate(p, sh, (const uint8_t *)"Hello", 5, &out, &pool), TS_OK);
    assert_buf(&out, second, sizeof(second));
    ts_buf_release(&out, &pool);

    /* The inflater keeps its window between messages. */
    assert_int_equal(inflate_all(p, hello_deflated, sizeof(hello_deflated), &out, 100), TS_OK);
    assert_buf(&out, "Hello", 5);
    ts_buf_release(&out, &pool);
    assert_int_equal(inflate_all(p, second, sizeof(second), &out, 100), TS_OK);
    assert_buf(&out, "Hello", 5);
    ts_buf_release(&out, &pool);
    ws_pmd_free(p);

    /* Without it, the back-reference has nothing to refer to. */
    pp = params(1, 1, 15, 15);
    p = ws_pmd_new(&pp);
    assert_int_equal(inflate_all(p, hello_deflated, sizeof(hello_deflated), &out, 100), TS_OK);
    ts_buf_release(&out, &pool);
    assert_int_equal(inflate_all(p, second, sizeof(second), &out, 100), TS_ERR_PROTO);
    ts_buf_release(&out, &pool);
    ws_pmd_free(p);
    ws_pmd_shared_free(sh);
}

static void test_rfc_other_encodings(void **state)
{
    /* 7.2.3.3 a stored block, 7.2.3.4 BFINAL set, 7.2.3.5 two blocks. */
    static const uint8_t stored[] = {0x00, 0x05, 0x00, 0xfa, 0xff, 0x48,
                                     0x65, 0x6c, 0x6c, 0x6f, 0x00};
    static const uint8_t bfinal[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00};
    static const uint8_t two[] = {0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff,
                                  0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00};
    /* BFINAL without the padding byte the RFC adds: tolerated. */
    static const uint8_t bfinal_bare[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    /* ...and even cut so that its end-of-block code ends in the tail. */
    static const uint8_t bfinal_cut[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07};
    static const struct {
        const uint8_t *b;
        size_t n;
    } cases[] = {{stored, sizeof(stored)},
                 {bfinal, sizeof(bfinal)},
                 {two, sizeof(two)},
                 {bfinal_bare, sizeof(bfinal_bare)},
                 {bfinal_cut, sizeof(bfinal_cut)}};
    ts_buf_t out = TS_BUF_INIT;

    for (int takeover = 0; takeover < 2; takeover++) {
        ws_pmd_params_t pp = params(1, !takeover, 15, 15);
        ws_pmd_t *p = ws_pmd_new(&pp);

        for (size_t i = 0; i < TS_ARRAY_SIZE(cases); i++) {
            for (size_t split = 0; split <= cases[i].n; split++) {
                assert_int_equal(ws_pmd_inflate(p, cases[i].b, split, 0, &out, &pool, 5), TS_OK);
                assert_int_equal(
                    ws_pmd_inflate(p, cases[i].b + split, cases[i].n - split, 1, &out, &pool, 5),
                    TS_OK);
                assert_buf(&out, "Hello", 5);
                ts_buf_release(&out, &pool);
                /* The stream is still good for a normal message. */
                assert_int_equal(inflate_all(p, hello_deflated, sizeof(hello_deflated), &out, 5),
                                 TS_OK);
                assert_buf(&out, "Hello", 5);
                ts_buf_release(&out, &pool);
            }
        }
        ws_pmd_free(p);
    }
}

static void test_rfc_empty(void **state)
{
    /* 7.2.3.6: an empty message compresses to the single byte 0x00. */
    static const uint8_t zero = 0x00;
    ws_pmd_params_t pp = params(1, 0, 15, 15);
    ws_pmd_shared_t *sh = ws_pmd_shared_new();
    ws_pmd_t *p = ws_pmd_new(&pp);
    ts_buf_t out = TS_BUF_INIT;

    assert_int_equal(ws_pmd_deflate(p, sh, (const uint8_t *)"", 0, &out, &pool), TS_OK);
    assert_buf(&out, &zero, 1);
    ts_buf_release(&out, &pool);
    assert_int_equal(inflate_all(p, &zero, 1, &out, 0), TS_OK);
    assert_int_equal(out.len, 0);
    /* An empty payload with RSV1 is an empty message too. */
    assert_int_equal(inflate_all(p, "", 0, &out, 0), TS_OK);
    assert_int_equal(out.len, 0);
    /* Empty fragments in the middle of a message change nothing. */
    assert_int_equal(ws_pmd_inflate(p, hello_deflated, 4, 0, &out, &pool, 5), TS_OK);
    assert_int_equal(ws_pmd_inflate(p, &zero, 0, 0, &out, &pool, 5), TS_OK);
    assert_int_equal(ws_pmd_inflate(p, hello_deflated + 4, 3, 0, &out, &pool, 5), TS_OK);
    assert_int_equal(ws_pmd_inflate(p, &zero, 0, 1, &out, &pool, 5), TS_OK);
    assert_buf(&out, "Hello", 5);
    ts_buf_release(&out, &pool);
    /* ...and the context is still in step afterwards. */
    assert_int_equal(inflate_all(p, hello_deflated, sizeof(hello_deflated), &out, 5), TS_OK);
    assert_buf(&out, "Hello", 5);
    ts_buf_release(&out, &pool);
    ws_pmd_free(p);
    ws_pmd_shared_free(sh);
}

/* ------------------------------------------------------------------------ */
/* Round trips and context                                                    */
/* ------------------------------------------------------------------------ */

static void round_trip(ws_pmd_t *tx, ws_pmd_shared_t *sh, ws_pmd_t *rx, const uint8_t *msg,
                       size_t n)
{
    ts_buf_t z = TS_BUF_INIT, out = TS_BUF_INIT;

    assert_int_equal(ws_pmd_deflate(tx, sh, msg, n, &z, &pool), TS_OK);
    assert_true(z.len >= 1);
    /* Fed in three uneven pieces, as frames would bring it. */
    {
        size_t a = z.len / 3, b = z.len / 2;
        const uint8_t *zb = (const uint8_t *)ts_buf_head(&z);
        assert_int_equal(ws_pmd_inflate(rx, zb, a, 0, &out, &pool, n), TS_OK);
        assert_int_equal(ws_pmd_inflate(rx, zb + a, b - a, 0, &out, &pool, n), TS_OK);
        assert_int_equal(ws_pmd_inflate(rx, zb + b, z.len - b, 1, &out, &pool, n), TS_OK);
    }
    assert_buf(&out, msg, n);
    ts_buf_release(&z, &pool);
    ts_buf_release(&out, &pool);
}

static void test_round_trips(void **state)
{
    static const size_t sizes[] = {0, 1, 2, 100, 4095, 16384, 16385, 100000, 1 << 20};
    ws_pmd_shared_t *sh = ws_pmd_shared_new();

    /* Sender's server_no_context_takeover, receiver's
     * client_no_context_takeover: the receiver may keep a context the sender
     * does not use, never the reverse. */
    static const int modes[3][2] = {{0, 0}, {1, 0}, {1, 1}};

    for (size_t mode = 0; mode < 3; mode++) {
        ws_pmd_params_t ptx = params(modes[mode][0], 0, 15, 15);
        ws_pmd_params_t prx = params(1, modes[mode][1], 15, 15);
        ws_pmd_t *tx = ws_pmd_new(&ptx), *rx = ws_pmd_new(&prx);

        for (size_t i = 0; i < TS_ARRAY_SIZE(sizes); i++) {
            for (int c = 0; c < 2; c++) {
                uint8_t *m = random_bytes(sizes[i], (unsigned)(i + 1), c);
                round_trip(tx, sh, rx, m, sizes[i]);
                /* The same message again: with context it refers back. */
                round_trip(tx, sh, rx, m, sizes[i]);
                free(m);
            }
        }
        ws_pmd_free(tx);
        ws_pmd_free(rx);
    }
    ws_pmd_shared_free(sh);
}

static void test_shared_deflater_across_connections(void **state)
{
    /* Interleaved connections with different windows share one worker
     * deflater per window size, and never see each other's data. */
    ws_pmd_params_t p15 = params(1, 0, 15, 15), p10 = params(1, 0, 10, 15);
    ws_pmd_shared_t *sh = ws_pmd_shared_new();
    ws_pmd_t *a = ws_pmd_new(&p15), *b = ws_pmd_new(&p10), *c = ws_pmd_new(&p15);
    ts_buf_t out = TS_BUF_INIT;

    for (int i = 0; i < 3; i++) {
        ws_pmd_t *conns[3] = {a, b, c};
        for (int j = 0; j < 3; j++) {
            assert_int_equal(ws_pmd_deflate(conns[j], sh, (const uint8_t *)"Hello", 5, &out, &pool),
                             TS_OK);
            assert_buf(&out, hello_deflated, sizeof(hello_deflated));
            ts_buf_release(&out, &pool);
        }
    }
    /* No per-connection compressor state: only the struct itself. */
    assert_int_equal(ws_pmd_memory(a), ws_pmd_memory(c));
    assert_true(ws_pmd_memory(a) < 256);
    ws_pmd_free(a);
    ws_pmd_free(b);
    ws_pmd_free(c);
    ws_pmd_shared_free(sh);
}

/* Data whose repeats are 1000 bytes apart: a 512-byte window cannot see
 * them, a 32 KiB one can. */
static uint8_t *far_repeats(size_t n)
{
    uint8_t *b = random_bytes(n, 99, 0);
    for (size_t i = 1000; i < n; i++)
        b[i] = (i % 1000) < 900 ? b[i - 1000] : b[i];
    return b;
}

static void test_server_window_honoured(void **state)
{
    size_t n = 20000;
    uint8_t *msg = far_repeats(n);
    ws_pmd_shared_t *sh = ws_pmd_shared_new();
    ts_buf_t out = TS_BUF_INIT;
    uint8_t *plain = malloc(n + 16);

    for (int bits = 9; bits <= 15; bits++) {
        ws_pmd_params_t pp = params(1, 0, bits, 15);
        ws_pmd_t *p = ws_pmd_new(&pp);
        z_stream zi = {0};
        uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};

        assert_int_equal(ws_pmd_deflate(p, sh, msg, n, &out, &pool), TS_OK);
        /* A client with exactly the negotiated window decodes it. */
        assert_int_equal(inflateInit2(&zi, -bits), Z_OK);
        zi.next_in = (Bytef *)ts_buf_head(&out);
        zi.avail_in = out.len;
        zi.next_out = plain;
        zi.avail_out = (uInt)n + 16;
        assert_int_equal(inflate(&zi, Z_SYNC_FLUSH), Z_OK);
        zi.next_in = tail;
        zi.avail_in = 4;
        assert_true(inflate(&zi, Z_SYNC_FLUSH) == Z_OK || zi.avail_in == 0);
        assert_int_equal(zi.total_out, n);
        assert_memory_equal(plain, msg, n);
        inflateEnd(&zi);
        /* The window matters: 9 bits cannot reach the repeats. */
        if (bits == 9)
            assert_true(out.len > n * 9 / 10);
        if (bits == 15)
            assert_true(out.len < n / 2);
        ts_buf_release(&out, &pool);
        ws_pmd_free(p);
    }
    free(plain);
    free(msg);
    ws_pmd_shared_free(sh);
}

static void test_client_window_8(void **state)
{
    /* A client told client_max_window_bits=8 that deflates with zlib gets
     * a 512-byte window (zlib has no raw 256-byte one): still decoded. */
    size_t n = 5000;
    uint8_t *msg = random_bytes(n, 5, 1);
    uint8_t *z = malloc(2 * n + 64);
    z_stream zd = {0};
    ws_pmd_params_t pp = params(1, 0, 15, 8);
    ws_pmd_t *p = ws_pmd_new(&pp);
    ts_buf_t out = TS_BUF_INIT;
    size_t zn;

    for (size_t i = 300; i < n; i++)
        msg[i] = (i % 400 < 300) ? msg[i - 300] : msg[i];
    assert_int_equal(deflateInit2(&zd, 9, Z_DEFLATED, -9, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zn = client_deflate(&zd, msg, n, z, 2 * n + 64);
    deflateEnd(&zd);
    assert_int_equal(inflate_all(p, z, zn, &out, n), TS_OK);
    assert_buf(&out, msg, n);
    ts_buf_release(&out, &pool);
    ws_pmd_free(p);
    free(z);
    free(msg);
}

static void test_client_context_takeover(void **state)
{
    /* A browser keeps its context: five messages, each referring back. */
    static const char *msgs[] = {"{\"type\":\"candidate\",\"candidate\":\"a\"}",
                                 "{\"type\":\"candidate\",\"candidate\":\"b\"}",
                                 "{\"type\":\"candidate\",\"candidate\":\"c\"}", "",
                                 "{\"type\":\"candidate\",\"candidate\":\"d\"}"};
    z_stream zd = {0};
    ws_pmd_params_t pp = params(1, 0, 15, 12);
    ws_pmd_t *p = ws_pmd_new(&pp);
    ts_buf_t out = TS_BUF_INIT;
    uint8_t z[256];

    assert_int_equal(deflateInit2(&zd, 6, Z_DEFLATED, -12, 8, Z_DEFAULT_STRATEGY), Z_OK);
    for (size_t i = 0; i < TS_ARRAY_SIZE(msgs); i++) {
        size_t n = strlen(msgs[i]), zn = client_deflate(&zd, msgs[i], n, z, sizeof(z));
        if (i > 1 && n > 0)
            assert_true(zn < n / 2); /* really refers back */
        assert_int_equal(inflate_all(p, z, zn, &out, 1000), TS_OK);
        assert_buf(&out, msgs[i], n);
        ts_buf_release(&out, &pool);
    }
    deflateEnd(&zd);
    ws_pmd_free(p);
}

/* ------------------------------------------------------------------------ */
/* Lifetime and memory                                                        */
/* ------------------------------------------------------------------------ */

static void test_inflater_lifetime(void **state)
{
    ws_pmd_params_t no_ctx = params(1, 1, 15, 15), ctx = params(1, 0, 15, 10);
    ws_pmd_t *p = ws_pmd_new(&no_ctx);
    ts_buf_t out = TS_BUF_INIT;
    size_t idle = ws_pmd_memory(p);

    /* client_no_context_takeover: the inflater lives during a message only,
     * and an empty fragment does not make one. */
    assert_true(idle < 256);
    assert_int_equal(ws_pmd_inflate(p, hello_deflated, 0, 0, &out, &pool, 10), TS_OK);
    assert_int_equal(ws_pmd_memory(p), idle);
    assert_int_equal(ws_pmd_inflate(p, hello_deflated, 3, 0, &out, &pool, 10), TS_OK);
    assert_true(ws_pmd_memory(p) >= idle + (1u << 15) + 7 * 1024);
    assert_int_equal(ws_pmd_inflate(p, hello_deflated + 3, 4, 1, &out, &pool, 10), TS_OK);
    assert_int_equal(ws_pmd_memory(p), idle);
    ts_buf_release(&out, &pool);
    ws_pmd_free(p);

    /* Context takeover: it stays, sized by the negotiated window. */
    p = ws_pmd_new(&ctx);
    assert_int_equal(ws_pmd_memory(p), idle);
    assert_int_equal(inflate_all(p, hello_deflated, sizeof(hello_deflated), &out, 10), TS_OK);
    assert_true(ws_pmd_memory(p) >= idle + (1u << 10) + 7 * 1024);
    assert_true(ws_pmd_memory(p) < idle + (1u << 11) + 8 * 1024);
    ts_buf_release(&out, &pool);
    /* An error frees it too. */
    assert_int_equal(inflate_all(p, "\xff\xff", 2, &out, 10), TS_ERR_PROTO);
    assert_int_equal(ws_pmd_memory(p), idle);
    ts_buf_release(&out, &pool);
    ws_pmd_free(p);

    /* Server context takeover: a per-connection deflater, counted. */
    {
        ws_pmd_params_t sctx = params(0, 0, 15, 15);
        ws_pmd_shared_t *sh = ws_pmd_shared_new();
        p = ws_pmd_new(&sctx);
        assert_int_equal(ws_pmd_deflate(p, sh, (const uint8_t *)"Hello", 5, &out, &pool), TS_OK);
        assert_true(ws_pmd_memory(p) >= idle + (1u << 17));
        ts_buf_release(&out, &pool);
        ws_pmd_free(p);
        ws_pmd_shared_free(sh);
    }
    ws_pmd_free(NULL);
    ws_pmd_shared_free(NULL);
}

/* ------------------------------------------------------------------------ */
/* Corrupt data and limits                                                    */
/* ------------------------------------------------------------------------ */

static void test_corrupt(void **state)
{
    static const struct {
        const char *b;
        size_t n;
    } cases[] = {
        {"\xff", 1},                 /* block type 3 */
        {"\x07", 1},                 /* BTYPE 11 */
        {"\x00\x05\x00\x05\x00", 5}, /* stored lengths do not match */
        {"\x62\x00\x02\x00", 4},     /* distance beyond the start (fixed block) */
        {"\xf2\x48\xcd", 3},         /* cut inside a block */
        {"\xf2\x48\xcd\xc9\xc9\x07", 6},
    };
    ts_buf_t out = TS_BUF_INIT;

    for (size_t i = 0; i < TS_ARRAY_SIZE(cases); i++) {
        ws_pmd_params_t pp = params(1, 1, 15, 15);
        ws_pmd_t *p = ws_pmd_new(&pp);
        int rc = inflate_all(p, cases[i].b, cases[i].n, &out, 1000);
        if (rc != TS_ERR_PROTO)
            fail_msg("case %zu: rc %d", i, rc);
        ts_buf_release(&out, &pool);
        ws_pmd_free(p);
    }
}

static void test_truncated_messages(void **state)
{
    /* Every prefix of a real compressed message is refused (with the tail
     * appended it still stops inside a block); the whole is not. */
    size_t n = 3000;
    uint8_t *msg = random_bytes(n, 7, 1);
    ws_pmd_params_t pp = params(1, 1, 15, 15);
    ws_pmd_shared_t *sh = ws_pmd_shared_new();
    ws_pmd_t *p = ws_pmd_new(&pp);
    ts_buf_t z = TS_BUF_INIT, out = TS_BUF_INIT;

    assert_int_equal(ws_pmd_deflate(p, sh, msg, n, &z, &pool), TS_OK);
    for (size_t cut = 1; cut < z.len; cut++) {
        int rc = inflate_all(p, ts_buf_head(&z), cut, &out, n);
        /* Corrupt, or garbage past the limit: never a message. */
        if (rc != TS_ERR_PROTO && rc != TS_ERR_LIMIT)
            fail_msg("prefix of %zu of %u bytes: rc %d", cut, z.len, rc);
        ts_buf_release(&out, &pool);
    }
    assert_int_equal(inflate_all(p, ts_buf_head(&z), z.len, &out, n), TS_OK);
    assert_buf(&out, msg, n);
    ts_buf_release(&out, &pool);
    ts_buf_release(&z, &pool);
    ws_pmd_free(p);
    ws_pmd_shared_free(sh);
    free(msg);
}

/* n zero bytes, deflated as hard as zlib can (an attacker's choice). */
static void make_bomb(size_t n, ts_buf_t *z)
{
    uint8_t *zeros = calloc(1, n);
    size_t cap = n / 64 + 1024;
    z_stream zd = {0};

    assert_int_equal(deflateInit2(&zd, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), Z_OK);
    ts_buf_reserve(z, &pool, cap);
    z->len = (uint32_t)client_deflate(&zd, zeros, n, (uint8_t *)ts_buf_tail(z), cap);
    deflateEnd(&zd);
    free(zeros);
}

static void test_zip_bomb(void **state)
{
    size_t big = 64u << 20, max = 1u << 20;
    ts_buf_t z = TS_BUF_INIT, out = TS_BUF_INIT;
    ws_pmd_params_t pp = params(1, 0, 15, 15);
    ws_pmd_t *p;

    make_bomb(big, &z);
    assert_true(z.len < big / 1000); /* 64 MiB of zeros in about 64 KiB */
    p = ws_pmd_new(&pp);
    assert_int_equal(inflate_all(p, ts_buf_head(&z), z.len, &out, max), TS_ERR_LIMIT);
    /* Output stopped at the limit, and the buffer never grew far past it. */
    assert_true(out.len <= max);
    assert_true(out.cap <= 2 * max);
    ts_buf_release(&out, &pool);

    /* Fed in small frames, it stops as soon as the limit is passed. */
    {
        size_t fed = 0, step = 97;
        int rc = TS_OK;
        while (rc == TS_OK && fed < z.len) {
            size_t n = TS_MIN(step, z.len - fed);
            rc = ws_pmd_inflate(p, (const uint8_t *)ts_buf_head(&z) + fed, n, fed + n == z.len,
                                &out, &pool, max);
            fed += n;
        }
        assert_int_equal(rc, TS_ERR_LIMIT);
        assert_true(fed < z.len / 32); /* 1 MiB of the 64 needs ~1/64 of the input */
        assert_true(out.len <= max);
    }
    ts_buf_release(&out, &pool);
    ts_buf_release(&z, &pool);
    ws_pmd_free(p);
}

static void test_limit_edges(void **state)
{
    size_t n = 100000;
    ts_buf_t z = TS_BUF_INIT, out = TS_BUF_INIT;
    ws_pmd_params_t pp = params(1, 0, 15, 15);
    ws_pmd_t *p = ws_pmd_new(&pp);

    make_bomb(n, &z);
    /* Exactly max is fine, one byte less is not; every message starts its
     * own count. */
    for (int round = 0; round < 3; round++) {
        assert_int_equal(inflate_all(p, ts_buf_head(&z), z.len, &out, n), TS_OK);
        assert_int_equal(out.len, n);
        ts_buf_release(&out, &pool);
    }
    assert_int_equal(inflate_all(p, ts_buf_head(&z), z.len, &out, n - 1), TS_ERR_LIMIT);
    assert_true(out.len <= n - 1);
    ts_buf_release(&out, &pool);
    /* The count covers the whole message, not each piece. */
    ws_pmd_free(p);
    p = ws_pmd_new(&pp);
    {
        size_t half = z.len / 2;
        assert_int_equal(
            ws_pmd_inflate(p, (const uint8_t *)ts_buf_head(&z), half, 0, &out, &pool, n - 1),
            TS_OK);
        assert_int_equal(ws_pmd_inflate(p, (const uint8_t *)ts_buf_head(&z) + half, z.len - half, 1,
                                        &out, &pool, n - 1),
                         TS_ERR_LIMIT);
    }
    ts_buf_release(&out, &pool);
    /* Output appends to what the buffer already holds. */
    ws_pmd_free(p);
    p = ws_pmd_new(&pp);
    ts_buf_append(&out, &pool, "prefix", 6);
    assert_int_equal(inflate_all(p, hello_deflated, sizeof(hello_deflated), &out, 5), TS_OK);
    assert_buf(&out, "prefixHello", 11);
    ts_buf_release(&out, &pool);
    /* A zero limit allows only empty messages. */
    assert_int_equal(inflate_all(p, "\x00", 1, &out, 0), TS_OK);
    assert_int_equal(inflate_all(p, hello_deflated, sizeof(hello_deflated), &out, 0), TS_ERR_LIMIT);
    assert_int_equal(out.len, 0);
    ts_buf_release(&out, &pool);
    ts_buf_release(&z, &pool);
    ws_pmd_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nego_browsers),
        cmocka_unit_test(test_nego_policy),
        cmocka_unit_test(test_nego_params),
        cmocka_unit_test(test_nego_declined),
        cmocka_unit_test(test_nego_malformed),
        cmocka_unit_test(test_nego_resp_room),
        cmocka_unit_test(test_rfc_hello),
        cmocka_unit_test(test_rfc_context_takeover),
        cmocka_unit_test(test_rfc_other_encodings),
        cmocka_unit_test(test_rfc_empty),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_shared_deflater_across_connections),
        cmocka_unit_test(test_server_window_honoured),
        cmocka_unit_test(test_client_window_8),
        cmocka_unit_test(test_client_context_takeover),
        cmocka_unit_test(test_inflater_lifetime),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_truncated_messages),
        cmocka_unit_test(test_zip_bomb),
        cmocka_unit_test(test_limit_edges),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
