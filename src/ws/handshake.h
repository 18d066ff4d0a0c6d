/*
 * handshake.h — the WebSocket opening handshake (RFC 6455 section 4.2) on
 * a parsed HTTP request: validation, Sec-WebSocket-Accept, Origin allow-list,
 * permessage-deflate negotiation, and the 101 response. Pure: no I/O.
 */
#ifndef TS_WS_HANDSHAKE_H
#define TS_WS_HANDSHAKE_H

#include <stddef.h>

#include "http/parser.h"
#include "ws/deflate.h"

typedef struct {
    const char *const *allowed_origins; /* NULL or empty: every Origin allowed */
    size_t nallowed_origins;
    const ws_pmd_policy_t *pmd; /* NULL: no extensions */
} ws_handshake_opts_t;

typedef struct {
    char accept[29];     /* Sec-WebSocket-Accept, NUL-terminated */
    int deflate;         /* permessage-deflate accepted */
    ws_pmd_params_t pmd; /* its parameters */
    char extensions[160]; /* Sec-WebSocket-Extensions response value, "" when none */
    http_str_t protocols; /* Sec-WebSocket-Protocol as offered (comma list); len 0: none */
    int status;          /* on error: 400, 403 or 426 */
    const char *error;   /* on error: short static reason */
} ws_handshake_t;

/*
 * Check an upgrade request: GET, HTTP/1.1, Upgrade has the "websocket" token
 * and Connection the "upgrade" token (case-insensitive, inside comma lists),
 * Sec-WebSocket-Version 13 (otherwise 426), Sec-WebSocket-Key the base64 of
 * exactly 16 bytes (otherwise 400), Origin allowed (otherwise 403).
 * TS_OK or TS_ERR_PROTO with hs->status and hs->error set.
 */
int ws_handshake_check(const http_request_t *req, const ws_handshake_opts_t *opts,
                       ws_handshake_t *hs);

/* Is this request asking for a WebSocket (so a failure deserves a handshake error
 * rather than the plain HTTP route)? Upgrade: websocket present. */
int ws_handshake_is_upgrade(const http_request_t *req);

/* Sec-WebSocket-Accept for key: base64(SHA-1(key + GUID)). out gets 28 chars + NUL. */
void ws_accept_key(const char *key, size_t len, char out[29]);

/*
 * Write the 101 Switching Protocols response into out. subprotocol: the one
 * chosen (NULL for none). Returns the length, or 0 when cap is too small.
 */
size_t ws_handshake_response(const ws_handshake_t *hs, const char *subprotocol, char *out,
                             size_t cap);

#endif
