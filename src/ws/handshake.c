/*
 * handshake.c — the server side of the WebSocket opening handshake (RFC
 * 6455 section 4.2). The contract is in handshake.h.
 *
 * Refusals, in the order they are checked:
 *   400  not GET, not HTTP/1.1, no "websocket" in Upgrade, no "upgrade" in
 *        Connection, Sec-WebSocket-Version missing, Sec-WebSocket-Key missing,
 *        repeated or not the base64 of 16 bytes, a malformed
 *        Sec-WebSocket-Extensions header
 *   426  Sec-WebSocket-Version present but not 13; the answer must carry
 *        "Sec-WebSocket-Version: 13" (RFC 6455 4.4) so the client can retry
 *   403  an Origin that is not on the allow-list
 * A missing version is a malformed request rather than an unsupported
 * version, hence 400 for it. A request without Origin passes the allow-list:
 * the list protects against pages in browsers, which always send Origin; a
 * non-browser client does not, and could send any Origin it liked anyway.
 */
#include "ws/handshake.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/common.h"
#include "core/log.h"

#define WS_GUID    "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_KEY_LEN 24 /* base64 of 16 bytes */

static int refuse(ws_handshake_t *hs, int status, const char *why)
{
    hs->status = status;
    hs->error = why;
    return TS_ERR_PROTO;
}

static int str_ieq_n(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x |= 0x20;
        if (y >= 'A' && y <= 'Z')
            y |= 0x20;
        if (x != y)
            return 0;
    }
    return 1;
}

static int header_is(const http_header_t *h, const char *name)
{
    return str_ieq_n(h->name.base, h->name.len, name, strlen(name));
}

/* Does any header called name hold token in its comma list? */
static int any_header_has_token(const http_request_t *req, const char *name, const char *token)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        if (header_is(&req->headers[i], name) &&
            http_header_has_token(req->headers[i].value, token))
            return 1;
    }
    return 0;
}

/* The only header called name; NULL when there is none, *dup set when there
 * are more. */
static const http_header_t *single_header(const http_request_t *req, const char *name, int *dup)
{
    const http_header_t *found = NULL;

    *dup = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        if (!header_is(&req->headers[i], name))
            continue;
        if (found != NULL)
            *dup = 1;
        else
            found = &req->headers[i];
    }
    return found;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/*
 * Is s exactly the base64 (RFC 4648 section 4) of 16 bytes? That is 22
 * alphabet characters and "==", and the last character carries only the
 * top 2 bits of the 16th byte, so its low 4 bits must be zero (section 3.5):
 * otherwise two different keys would decode alike.
 */
static int key_valid(const char *s, size_t len)
{
    int v = 0;

    if (len != WS_KEY_LEN || s[22] != '=' || s[23] != '=')
        return 0;
    for (size_t i = 0; i < 22; i++) {
        v = b64_value((unsigned char)s[i]);
        if (v < 0)
            return 0;
    }
    return (v & 0x0f) == 0;
}

static int origin_allowed(const ws_handshake_opts_t *opts, http_str_t origin)
{
    for (size_t i = 0; i < opts->nallowed_origins; i++) {
        const char *a = opts->allowed_origins[i];
        if (str_ieq_n(origin.base, origin.len, a, strlen(a)))
            return 1;
    }
    return 0;
}

/* Every Origin header must be allowed, so a second one cannot smuggle a
 * page past the list. */
static int check_origin(const http_request_t *req, const ws_handshake_opts_t *opts)
{
    if (opts == NULL || opts->allowed_origins == NULL || opts->nallowed_origins == 0)
        return TS_OK;
    for (size_t i = 0; i < req->nheaders; i++) {
        if (header_is(&req->headers[i], "origin") && !origin_allowed(opts, req->headers[i].value))
            return TS_ERR_PROTO;
    }
    return TS_OK;
}

/*
 * permessage-deflate: every Sec-WebSocket-Extensions header, joined with
 * ", " as HTTP list semantics say (they fit: the head is at most
 * HTTP_MAX_HEAD bytes).
 */
static int negotiate_extensions(const http_request_t *req, const ws_pmd_policy_t *policy,
                                ws_handshake_t *hs)
{
    char joined[HTTP_MAX_HEAD + 2 * HTTP_MAX_HEADERS];
    const char *value = NULL;
    size_t len = 0, n = 0;
    int rc;

    if (policy == NULL || !policy->enabled)
        return TS_OK;
    for (size_t i = 0; i < req->nheaders; i++) {
        const http_header_t *h = &req->headers[i];

        if (!header_is(h, "sec-websocket-extensions"))
            continue;
        if (n++ == 0) {
            value = h->value.base;
            len = h->value.len;
            continue;
        }
        if (n == 2) {
            memcpy(joined, value, len);
            value = joined;
        }
        if (len + 2 + h->value.len > sizeof(joined))
            return TS_ERR_PROTO;
        memcpy(joined + len, ", ", 2);
        memcpy(joined + len + 2, h->value.base, h->value.len);
        len += 2 + h->value.len;
    }
    if (n == 0)
        return TS_OK;
    rc = ws_pmd_negotiate(value, len, policy, &hs->pmd, hs->extensions, sizeof(hs->extensions));
    if (rc == TS_OK)
        hs->deflate = 1;
    else
        hs->extensions[0] = '\0';
    return rc == TS_ERR_PROTO ? TS_ERR_PROTO : TS_OK;
}

int ws_handshake_is_upgrade(const http_request_t *req)
{
    return any_header_has_token(req, "upgrade", "websocket");
}

int ws_handshake_check(const http_request_t *req, const ws_handshake_opts_t *opts,
                       ws_handshake_t *hs)
{
    const http_header_t *h;
    int dup;

    memset(hs, 0, sizeof(*hs));
    if (req->method != HTTP_GET)
        return refuse(hs, 400, "WebSocket upgrade must be GET");
    if (req->minor_version < 1)
        return refuse(hs, 400, "WebSocket upgrade needs HTTP/1.1");
    if (!ws_handshake_is_upgrade(req))
        return refuse(hs, 400, "no \"websocket\" in Upgrade");
    if (!any_header_has_token(req, "connection", "upgrade"))
        return refuse(hs, 400, "no \"upgrade\" in Connection");

    h = single_header(req, "sec-websocket-version", &dup);
    if (h == NULL)
        return refuse(hs, 400, "no Sec-WebSocket-Version");
    if (dup || h->value.len != 2 || memcmp(h->value.base, "13", 2) != 0)
        return refuse(hs, 426, "Sec-WebSocket-Version is not 13");

    h = single_header(req, "sec-websocket-key", &dup);
    if (h == NULL)
        return refuse(hs, 400, "no Sec-WebSocket-Key");
    if (dup)
        return refuse(hs, 400, "more than one Sec-WebSocket-Key");
    if (!key_valid(h->value.base, h->value.len))
        return refuse(hs, 400, "Sec-WebSocket-Key is not base64 of 16 bytes");
    ws_accept_key(h->value.base, h->value.len, hs->accept);

    if (check_origin(req, opts) != TS_OK)
        return refuse(hs, 403, "Origin not allowed");

    h = http_find_header(req, "sec-websocket-protocol");
    if (h != NULL)
        hs->protocols = h->value;

    if (negotiate_extensions(req, opts ? opts->pmd : NULL, hs) != TS_OK)
        return refuse(hs, 400, "malformed Sec-WebSocket-Extensions");
    return TS_OK;
}

void ws_accept_key(const char *key, size_t len, char out[29])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (ctx == NULL || !EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) ||
        !EVP_DigestUpdate(ctx, key, len) || !EVP_DigestUpdate(ctx, WS_GUID, sizeof(WS_GUID) - 1) ||
        !EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 20) {
        /* Only an out-of-memory or a libcrypto without SHA-1 gets here:
         * abort, as on any allocation failure (common.h). */
        ts_log_error("SHA-1 unavailable from libcrypto");
        abort();
    }
    EVP_MD_CTX_free(ctx);
    EVP_EncodeBlock((unsigned char *)out, md, 20);
}

/* Append a NUL-free string; 0 when it does not fit. */
static int put(char *out, size_t cap, size_t *n, const char *s, size_t len)
{
    if (cap - *n < len)
        return 0;
    memcpy(out + *n, s, len);
    *n += len;
    return 1;
}

#define PUT_LIT(lit) put(out, cap, &n, lit, sizeof(lit) - 1)
#define PUT_STR(s)   put(out, cap, &n, s, strlen(s))

size_t ws_handshake_response(const ws_handshake_t *hs, const char *subprotocol, char *out,
                             size_t cap)
{
    size_t n = 0;
    int ok;

    ok = PUT_LIT("HTTP/1.1 101 Switching Protocols\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: ") &&
         PUT_STR(hs->accept) && PUT_LIT("\r\n");
    if (ok && hs->deflate && hs->extensions[0] != '\0')
        ok = PUT_LIT("Sec-WebSocket-Extensions: ") && PUT_STR(hs->extensions) && PUT_LIT("\r\n");
    if (ok && subprotocol != NULL && subprotocol[0] != '\0')
        ok = PUT_LIT("Sec-WebSocket-Protocol: ") && PUT_STR(subprotocol) && PUT_LIT("\r\n");
    ok = ok && PUT_LIT("\r\n");
    return ok ? n : 0;
}
