/*
 * test_ws_handshake.c — the opening handshake on real request bytes run
 * through the HTTP parser: the RFC 6455 example key, every refusal with its
 * status, strict keys, the Origin allow-list, extension negotiation and the
 * exact 101 response.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "core/common.h"
#include "http/parser.h"
#include "ws/handshake.h"

#define RFC_KEY    "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static char text[HTTP_MAX_HEAD];
static http_request_t req;
static ws_handshake_t hs;

/* Parse a request head given as its header lines (CRLF added). */
static void request(const char *first, const char *headers)
{
    http_parse_state_t st = {0};
    int n = snprintf(text, sizeof(text), "%s\r\nHost: example.com\r\n%s\r\n", first, headers);

    assert_true(n > 0 && (size_t)n < sizeof(text));
    if (http_parse_request(&st, text, (size_t)n, 0, &req) != TS_OK)
        fail_msg("the test request does not parse: %s", req.error);
}

#define STD_HEADERS                                                                                \
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " RFC_KEY                     \
    "\r\nSec-WebSocket-Version: 13\r\n"

static int check(const ws_handshake_opts_t *opts)
{
    memset(&hs, 0xa5, sizeof(hs));
    return ws_handshake_check(&req, opts, &hs);
}

static void expect_ok(const char *headers, const ws_handshake_opts_t *opts)
{
    request("GET /chat HTTP/1.1", headers);
    if (check(opts) != TS_OK)
        fail_msg("refused with %d (%s):\n%s", hs.status, hs.error, headers);
    assert_int_equal(strlen(hs.accept), 28);
}

static void expect_refused(const char *first, const char *headers, const ws_handshake_opts_t *opts,
                           int status)
{
    request(first, headers);
    if (check(opts) != TS_ERR_PROTO || hs.status != status)
        fail_msg("status %d, want %d:\n%s", hs.status, status, headers);
    assert_non_null(hs.error);
    assert_true(strlen(hs.error) > 0);
}

#define REFUSED(headers, status) expect_refused("GET /chat HTTP/1.1", headers, NULL, status)

/* ------------------------------------------------------------------------ */

static void test_accept_key_rfc(void **state)
{
    char out[29];

    ws_accept_key(RFC_KEY, strlen(RFC_KEY), out);
    assert_string_equal(out, RFC_ACCEPT);
}

static void test_rfc_request(void **state)
{
    static const char want[] = "HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                               "\r\n";
    char out[512];

    /* RFC 6455 section 1.3's request. */
    expect_ok("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " RFC_KEY "\r\n"
              "Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
              "Sec-WebSocket-Version: 13\r\n",
              NULL);
    assert_string_equal(hs.accept, RFC_ACCEPT);
    assert_int_equal(hs.deflate, 0);
    assert_string_equal(hs.extensions, "");
    assert_int_equal(hs.protocols.len, strlen("chat, superchat"));
    assert_memory_equal(hs.protocols.base, "chat, superchat", hs.protocols.len);

    assert_int_equal(ws_handshake_response(&hs, NULL, out, sizeof(out)), strlen(want));
    assert_memory_equal(out, want, strlen(want));
}

static void test_response_with_everything(void **state)
{
    static const ws_pmd_policy_t pmd = {.enabled = 1, .client_max_window_bits = 15};
    static const ws_handshake_opts_t opts = {NULL, 0, &pmd};
    static const char want[] = "HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                               "Sec-WebSocket-Extensions: permessage-deflate; "
                               "server_no_context_takeover; client_max_window_bits=15\r\n"
                               "Sec-WebSocket-Protocol: chat\r\n"
                               "\r\n";
    char out[512];
    size_t n = strlen(want);

    expect_ok(STD_HEADERS "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
                          "Sec-WebSocket-Protocol: chat, superchat\r\n",
              &opts);
    assert_int_equal(hs.deflate, 1);
    assert_int_equal(hs.pmd.server_no_context_takeover, 1);
    assert_int_equal(hs.pmd.client_max_window_bits, 15);
    assert_int_equal(ws_handshake_response(&hs, "chat", out, sizeof(out)), n);
    assert_memory_equal(out, want, n);
    /* Too little room: 0, for every size short of the whole. */
    for (size_t cap = 0; cap < n; cap++)
        assert_int_equal(ws_handshake_response(&hs, "chat", out, cap), 0);
    assert_int_equal(ws_handshake_response(&hs, "chat", out, n), n);
    /* An empty subprotocol means none. */
    {
        size_t m = ws_handshake_response(&hs, "", out, sizeof(out));
        assert_int_equal(m, n - strlen("Sec-WebSocket-Protocol: chat\r\n"));
        assert_null(memmem(out, m, "Sec-WebSocket-Protocol", 22));
    }
}

static void test_request_line(void **state)
{
    expect_refused("POST /chat HTTP/1.1", STD_HEADERS, NULL, 400);
    expect_refused("HEAD /chat HTTP/1.1", STD_HEADERS, NULL, 400);
    expect_refused("GET /chat HTTP/1.0", STD_HEADERS, NULL, 400);
}

static void test_upgrade_connection(void **state)
{
    REFUSED("Connection: Upgrade\r\nSec-WebSocket-Key: " RFC_KEY
            "\r\nSec-WebSocket-Version: 13\r\n",
            400);
    REFUSED("Upgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " RFC_KEY
            "\r\nSec-WebSocket-Version: 13\r\n",
            400);
    REFUSED("Upgrade: websocket\r\nSec-WebSocket-Key: " RFC_KEY "\r\nSec-WebSocket-Version: 13\r\n",
            400);
    REFUSED("Upgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Key: " RFC_KEY
            "\r\nSec-WebSocket-Version: 13\r\n",
            400);
    /* Tokens inside lists, any case, any header instance. */
    expect_ok("Upgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: " RFC_KEY
              "\r\nSec-WebSocket-Version: 13\r\n",
              NULL);
    expect_ok("Upgrade: foo/1, websocket\r\nConnection: keep-alive\r\nConnection: upgrade\r\n"
              "Sec-WebSocket-Key: " RFC_KEY "\r\nSec-WebSocket-Version: 13\r\n",
              NULL);

    request("GET / HTTP/1.1", "Upgrade: websocket\r\n");
    assert_int_equal(ws_handshake_is_upgrade(&req), 1);
    request("GET / HTTP/1.1", "Upgrade: h2c, WEBSOCKET\r\n");
    assert_int_equal(ws_handshake_is_upgrade(&req), 1);
    request("GET / HTTP/1.1", "Upgrade: h2c\r\n");
    assert_int_equal(ws_handshake_is_upgrade(&req), 0);
    request("GET / HTTP/1.1", "Connection: upgrade\r\n");
    assert_int_equal(ws_handshake_is_upgrade(&req), 0);
}

static void test_version(void **state)
{
    static const char base[] = "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Key: " RFC_KEY "\r\n";
    static const struct {
        const char *v;
        int status;
    } cases[] = {
        {"Sec-WebSocket-Version: 8\r\n", 426},
        {"Sec-WebSocket-Version: 12\r\n", 426},
        {"Sec-WebSocket-Version: 14\r\n", 426},
        {"Sec-WebSocket-Version: 013\r\n", 426},
        {"Sec-WebSocket-Version: 13, 8\r\n", 426},
        {"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 8\r\n", 426},
        {"Sec-WebSocket-Version:\r\n", 426},
        {"", 400},
    };
    char headers[512];

    for (size_t i = 0; i < TS_ARRAY_SIZE(cases); i++) {
        snprintf(headers, sizeof(headers), "%s%s", base, cases[i].v);
        REFUSED(headers, cases[i].status);
    }
    /* Surrounding whitespace is not part of the value. */
    snprintf(headers, sizeof(headers), "%sSec-WebSocket-Version:   13  \r\n", base);
    expect_ok(headers, NULL);
}

/* Independent check of a key: decode with libcrypto, re-encode, compare. */
static int key_is_b64_16(const char *k)
{
    unsigned char raw[64], again[64];
    size_t n = strlen(k);

    if (n != 24)
        return 0;
    if (EVP_DecodeBlock(raw, (const unsigned char *)k, 24) != 18)
        return 0;
    EVP_EncodeBlock(again, raw, 16);
    return memcmp(again, k, 24) == 0;
}

static void test_keys(void **state)
{
    static const char *good[] = {
        RFC_KEY,
        "AAAAAAAAAAAAAAAAAAAAAA==",
        "/////////////////////w==",
        "x3JJHMbDL1EzLkh9GBhXDw==",
        "+/+/+/+/+/+/+/+/+/+/+w==",
    };
    static const char *bad[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ",    /* no padding */
        "dGhlIHNhbXBsZSBub25jZQ=",   /* short padding */
        "dGhlIHNhbXBsZSBub25jZQ===", /* too long */
        "dGhlIHNhbXBsZSBub25jZR==",  /* bits set in the padding */
        "dGhlIHNhbXBsZSBub25jZf==",
        "dGhlIHNhbXBsZSBub25j=Q==", /* '=' inside */
        "dGhlIHNhbXBsZSBub25jZ-==", /* base64url alphabet */
        "dGhlIHNhbXBsZSBub25jZ_==",
        "dGhlIHNhbXBs ZSBub25jZQ==",    /* space inside */
        "dGhlIHNhbXBsZSBub25jZQ==dGhl", /* 28 bytes */
        "dGhlIHNhbXBsZSBub25jZSE=",     /* 17 bytes */
        "dGhlIHNhbXBsZSBub25j",         /* 15 bytes */
        "dGhlIHNhbXBsZSBub25jZQ==\x01",
        "ZGhsSUhOaGJYQnNaU0JpYjI1alpRPT0=", /* base64 of the base64 */
    };
    char headers[512];

    for (size_t i = 0; i < TS_ARRAY_SIZE(good); i++) {
        assert_true(key_is_b64_16(good[i]));
        snprintf(headers, sizeof(headers),
                 "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n",
                 good[i]);
        expect_ok(headers, NULL);
    }
    for (size_t i = 0; i < TS_ARRAY_SIZE(bad); i++) {
        http_parse_state_t st = {0};
        int n = snprintf(text, sizeof(text),
                         "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: "
                         "Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                         bad[i]);
        assert_false(key_is_b64_16(bad[i]));
        if (http_parse_request(&st, text, (size_t)n, 0, &req) != TS_OK)
            continue; /* the HTTP parser already refuses it */
        if (check(NULL) != TS_ERR_PROTO || hs.status != 400)
            fail_msg("key \"%s\" accepted", bad[i]);
    }
    /* Missing, or twice (even the same). */
    REFUSED("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n", 400);
    REFUSED(STD_HEADERS "Sec-WebSocket-Key: " RFC_KEY "\r\n", 400);
}

static void test_accept_key_known(void **state)
{
    /* Values computed independently (Python: base64(sha1(key + GUID))). */
    char out[29];

    ws_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", 24, out);
    assert_string_equal(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
    ws_accept_key("AQIDBAUGBwgJCgsMDQ4PEA==", 24, out);
    assert_string_equal(out, "C/0nmHhBztSRGR1CwL6Tf4ZjwpY=");
}

static void test_origin(void **state)
{
    static const char *const allowed[] = {"https://example.com", "http://localhost:8080"};
    static const ws_handshake_opts_t opts = {allowed, 2, NULL};
    static const ws_handshake_opts_t open_list = {allowed, 0, NULL};

    expect_ok(STD_HEADERS "Origin: https://example.com\r\n", &opts);
    expect_ok(STD_HEADERS "Origin: HTTPS://Example.COM\r\n", &opts);
    expect_ok(STD_HEADERS "Origin: http://localhost:8080\r\n", &opts);
    /* No Origin: a non-browser client, allowed. */
    expect_ok(STD_HEADERS, &opts);
    expect_refused("GET / HTTP/1.1", STD_HEADERS "Origin: https://evil.example\r\n", &opts, 403);
    expect_refused("GET / HTTP/1.1", STD_HEADERS "Origin: https://example.com:443\r\n", &opts, 403);
    expect_refused("GET / HTTP/1.1", STD_HEADERS "Origin: https://example.com/\r\n", &opts, 403);
    expect_refused("GET / HTTP/1.1", STD_HEADERS "Origin: http://example.com\r\n", &opts, 403);
    expect_refused("GET / HTTP/1.1", STD_HEADERS "Origin: https://example.co\r\n", &opts, 403);
    expect_refused("GET / HTTP/1.1", STD_HEADERS "Origin: https://example.comm\r\n", &opts, 403);
    expect_refused("GET / HTTP/1.1", STD_HEADERS "Origin: http://localhost\r\n", &opts, 403);
    expect_refused("GET / HTTP/1.1", STD_HEADERS "Origin: null\r\n", &opts, 403);
    expect_refused("GET / HTTP/1.1", STD_HEADERS "Origin:\r\n", &opts, 403);
    /* A second Origin cannot sneak past the list. */
    expect_refused("GET / HTTP/1.1",
                   STD_HEADERS "Origin: https://example.com\r\nOrigin: https://evil.example\r\n",
                   &opts, 403);
    /* An empty list allows everything. */
    expect_ok(STD_HEADERS "Origin: https://evil.example\r\n", &open_list);
    expect_ok(STD_HEADERS "Origin: https://evil.example\r\n", NULL);
}

static void test_extensions(void **state)
{
    static const ws_pmd_policy_t pmd = {.enabled = 1, .client_max_window_bits = 12};
    static const ws_pmd_policy_t off = {.enabled = 0, .client_max_window_bits = 12};
    static const ws_handshake_opts_t opts = {NULL, 0, &pmd};
    static const ws_handshake_opts_t opts_off = {NULL, 0, &off};
    static const ws_handshake_opts_t opts_none = {NULL, 0, NULL};

    /* Chrome and Firefox. */
    expect_ok(STD_HEADERS
              "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
              &opts);
    assert_int_equal(hs.deflate, 1);
    assert_string_equal(
        hs.extensions, "permessage-deflate; server_no_context_takeover; client_max_window_bits=12");
    assert_int_equal(hs.pmd.client_max_window_bits, 12);
    expect_ok(STD_HEADERS "Sec-WebSocket-Extensions: permessage-deflate\r\n", &opts);
    assert_int_equal(hs.deflate, 1);
    assert_string_equal(hs.extensions, "permessage-deflate; server_no_context_takeover");

    /* No extension header, nothing acceptable, or extensions off. */
    expect_ok(STD_HEADERS, &opts);
    assert_int_equal(hs.deflate, 0);
    assert_string_equal(hs.extensions, "");
    expect_ok(STD_HEADERS "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n", &opts);
    assert_int_equal(hs.deflate, 0);
    assert_string_equal(hs.extensions, "");
    expect_ok(STD_HEADERS "Sec-WebSocket-Extensions: permessage-deflate\r\n", &opts_off);
    assert_int_equal(hs.deflate, 0);
    expect_ok(STD_HEADERS "Sec-WebSocket-Extensions: permessage-deflate\r\n", &opts_none);
    assert_int_equal(hs.deflate, 0);
    assert_string_equal(hs.extensions, "");

    /* Several headers are one list, in order. */
    expect_ok(STD_HEADERS "Sec-WebSocket-Extensions: foo; bar=1\r\n"
                          "Sec-WebSocket-Extensions: permessage-deflate; bad_param\r\n"
                          "Sec-WebSocket-Extensions: permessage-deflate; "
                          "client_no_context_takeover\r\n",
              &opts);
    assert_int_equal(hs.deflate, 1);
    assert_int_equal(hs.pmd.client_no_context_takeover, 1);

    /* A malformed header is a bad request, wherever it is. */
    expect_refused("GET / HTTP/1.1",
                   STD_HEADERS "Sec-WebSocket-Extensions: permessage-deflate;\r\n", &opts, 400);
    expect_refused("GET / HTTP/1.1",
                   STD_HEADERS "Sec-WebSocket-Extensions: permessage-deflate\r\n"
                               "Sec-WebSocket-Extensions: ;;\r\n",
                   &opts, 400);
}

static void test_protocols(void **state)
{
    expect_ok(STD_HEADERS, NULL);
    assert_int_equal(hs.protocols.len, 0);
    expect_ok(STD_HEADERS "Sec-WebSocket-Protocol: ayame\r\n", NULL);
    assert_int_equal(hs.protocols.len, 5);
    assert_memory_equal(hs.protocols.base, "ayame", 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_key_rfc),
        cmocka_unit_test(test_rfc_request),
        cmocka_unit_test(test_response_with_everything),
        cmocka_unit_test(test_request_line),
        cmocka_unit_test(test_upgrade_connection),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_accept_key_known),
        cmocka_unit_test(test_origin),
        cmocka_unit_test(test_extensions),
        cmocka_unit_test(test_protocols),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
