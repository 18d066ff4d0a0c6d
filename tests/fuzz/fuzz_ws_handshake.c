/*
 * fuzz_ws_handshake.c — the opening handshake on arbitrary request bytes
 * (through the HTTP parser), and extension negotiation on arbitrary header
 * values. Checked:
 *   - an accepted handshake had exactly one Sec-WebSocket-Key, and it is
 *     the base64 of 16 bytes (decoded and re-encoded by libcrypto), Version
 *     13, the Upgrade and Connection tokens, GET, HTTP/1.1, and an allowed
 *     Origin; its Accept is SHA-1/base64 computed another way; the 101
 *     response is well formed;
 *   - a refused one has status 400, 403 or 426 and a reason;
 *   - negotiation: an accepted response never promises a window of 8 for
 *     the server, and fed back as an offer it is accepted with the very same
 *     parameters.
 */
#include "core/common.h"
#include "http/parser.h"
#include "ws/deflate.h"
#include "ws/handshake.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static int ieq(http_str_t s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && strncasecmp(s.base, lit, n) == 0;
}

static size_t count_headers(const http_request_t *req, const char *name, const http_header_t **h)
{
    size_t n = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        if (ieq(req->headers[i].name, name)) {
            if (n++ == 0)
                *h = &req->headers[i];
        }
    }
    return n;
}

static void check_key(http_str_t key, const char *accept)
{
    unsigned char raw[32], again[32], md[EVP_MAX_MD_SIZE], want[32], buf[128];
    unsigned int mdlen;

    CHECK(key.len == 24);
    CHECK(EVP_DecodeBlock(raw, (const unsigned char *)key.base, 24) == 18);
    EVP_EncodeBlock(again, raw, 16);
    CHECK(memcmp(again, key.base, 24) == 0);

    memcpy(buf, key.base, 24);
    memcpy(buf + 24, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    CHECK(EVP_Digest(buf, 60, md, &mdlen, EVP_sha1(), NULL) == 1 && mdlen == 20);
    EVP_EncodeBlock(want, md, 20);
    CHECK(strcmp((const char *)want, accept) == 0);
}

static void handshake(const uint8_t *data, size_t size, int pick)
{
    static const char *const origins[] = {"https://example.com", "http://localhost:8080"};
    static const ws_pmd_policy_t pmd = {
        .enabled = 1, .client_max_window_bits = 12, .min_compress = 64};
    ws_handshake_opts_t opts = {origins, pick & 1 ? 2 : 0, pick & 2 ? &pmd : NULL};
    http_parse_state_t st = {0};
    http_request_t req;
    ws_handshake_t hs;
    const http_header_t *h = NULL;
    char resp[1024];
    size_t n;

    if (http_parse_request(&st, (const char *)data, size, 1 << 20, &req) != TS_OK)
        return;
    (void)ws_handshake_is_upgrade(&req);
    if (ws_handshake_check(&req, &opts, &hs) != TS_OK) {
        CHECK(hs.status == 400 || hs.status == 403 || hs.status == 426);
        CHECK(hs.error != NULL);
        return;
    }
    CHECK(req.method == HTTP_GET && req.minor_version == 1);
    CHECK(ws_handshake_is_upgrade(&req));
    CHECK(count_headers(&req, "sec-websocket-key", &h) == 1);
    check_key(h->value, hs.accept);
    CHECK(count_headers(&req, "sec-websocket-version", &h) == 1 && ieq(h->value, "13"));
    if (opts.nallowed_origins > 0) {
        for (size_t i = 0; i < req.nheaders; i++) {
            if (ieq(req.headers[i].name, "origin"))
                CHECK(ieq(req.headers[i].value, origins[0]) ||
                      ieq(req.headers[i].value, origins[1]));
        }
    }
    if (hs.deflate) {
        CHECK(opts.pmd != NULL);
        CHECK(strncmp(hs.extensions, "permessage-deflate", 18) == 0);
        CHECK(hs.pmd.server_max_window_bits >= 9 && hs.pmd.server_max_window_bits <= 15);
        CHECK(hs.pmd.client_max_window_bits >= 8 && hs.pmd.client_max_window_bits <= 15);
    } else {
        CHECK(hs.extensions[0] == '\0');
    }
    n = ws_handshake_response(&hs, hs.protocols.len ? "chat" : NULL, resp, sizeof(resp));
    CHECK(n > 0 && n < sizeof(resp));
    CHECK(memcmp(resp, "HTTP/1.1 101 Switching Protocols\r\n", 34) == 0);
    CHECK(memcmp(resp + n - 4, "\r\n\r\n", 4) == 0);
    CHECK(memmem(resp, n, hs.accept, 28) != NULL);
}

static void negotiate(const uint8_t *data, size_t size, int pick)
{
    ws_pmd_policy_t policy = {.enabled = 1,
                              .server_context_takeover = pick & 1,
                              .client_max_window_bits = (uint8_t)(pick >> 1 & 15),
                              .client_no_context_takeover = pick >> 5 & 1};
    ws_pmd_params_t prm, again;
    char resp[160], resp2[160];
    int rc;

    rc = ws_pmd_negotiate((const char *)data, size, &policy, &prm, resp, sizeof(resp));
    CHECK(rc == TS_OK || rc == TS_ERR_AGAIN || rc == TS_ERR_PROTO);
    if (rc != TS_OK)
        return;
    CHECK(strncmp(resp, "permessage-deflate", 18) == 0);
    CHECK(prm.server_max_window_bits >= 9 && prm.server_max_window_bits <= 15);
    CHECK(prm.client_max_window_bits >= 8 && prm.client_max_window_bits <= 15);
    if (!policy.server_context_takeover)
        CHECK(prm.server_no_context_takeover);
    CHECK(ws_pmd_negotiate(resp, strlen(resp), &policy, &again, resp2, sizeof(resp2)) == TS_OK);
    CHECK(memcmp(&prm, &again, sizeof(prm)) == 0);
    CHECK(strcmp(resp, resp2) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    handshake(data + 1, size - 1, data[0]);
    negotiate(data + 1, size - 1, data[0]);
    return 0;
}
