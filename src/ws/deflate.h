/*
 * deflate.h — permessage-deflate (RFC 7692): negotiation, and compression
 * with zlib sized for 100,000 connections.
 *
 * Memory policy (docs/websocket.md has the figures):
 * - Outgoing: the server always answers server_no_context_takeover unless
 *   the policy allows takeover, so one deflater per worker (ws_pmd_shared_t)
 *   compresses every message of every connection, reset between messages.
 *   No per-connection compressor state at all.
 * - Incoming: a per-connection inflater exists only while a compressed
 *   message is arriving when the client does not take over context
 *   (client_no_context_takeover, which the server requests whenever the
 *   client offered it). Browsers keep context, so for them the inflater
 *   persists between messages, with its window capped by
 *   client_max_window_bits when the client offered that parameter.
 * - Inflation is bounded by the message limit: a zip bomb ends with 1009
 *   after at most max bytes of output.
 */
#ifndef TS_WS_DEFLATE_H
#define TS_WS_DEFLATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef struct {
    uint8_t server_no_context_takeover;
    uint8_t client_no_context_takeover;
    uint8_t server_max_window_bits; /* 9..15 (15 when not negotiated) */
    uint8_t client_max_window_bits; /* 8..15 (15 when not negotiated) */
} ws_pmd_params_t;

typedef struct {
    int enabled;               /* accept permessage-deflate offers at all */
    int server_context_takeover; /* allow a per-connection deflater (costs memory) */
    uint8_t client_max_window_bits; /* cap asked of clients that offer the parameter */
    size_t min_compress;       /* messages shorter than this are sent uncompressed */
    /* Answer client_no_context_takeover to every client, not only to those
     * that offer it (RFC 7692 7.1.1.2 lets the server ask): no connection
     * then keeps an inflater between messages (a browser's costs 11-39 KiB,
     * docs/websocket.md), for a worse ratio on what clients send. */
    int client_no_context_takeover;
} ws_pmd_policy_t;

/*
 * Choose the first acceptable permessage-deflate offer in the
 * Sec-WebSocket-Extensions value (all such headers joined with ", ").
 *   TS_OK         accepted: *out is set and resp holds the response value
 *                 ("permessage-deflate; server_no_context_takeover; ...")
 *   TS_ERR_AGAIN  nothing acceptable was offered: no extension
 *   TS_ERR_PROTO  the header does not parse: answer 400
 * An offer with an unknown or duplicate parameter, or a bad value, is
 * declined (the next offer is considered), as RFC 7692 section 5 says.
 */
int ws_pmd_negotiate(const char *value, size_t len, const ws_pmd_policy_t *policy,
                     ws_pmd_params_t *out, char *resp, size_t resp_cap);

/* Per-worker compressor, shared by every connection of the worker. */
typedef struct ws_pmd_shared_s ws_pmd_shared_t;
ws_pmd_shared_t *ws_pmd_shared_new(void);
void ws_pmd_shared_free(ws_pmd_shared_t *s);

/* Per-connection state: the parameters and an inflater that exists only
 * while needed (see above). */
typedef struct ws_pmd_s ws_pmd_t;
ws_pmd_t *ws_pmd_new(const ws_pmd_params_t *params);
void ws_pmd_free(ws_pmd_t *p);

/*
 * Inflate the next piece of a compressed message's payload (unmasked),
 * appending the output to out. fin: this piece ends the message (the
 * 00 00 ff ff tail is supplied here). Total output of the message is kept
 * to max bytes.
 *   TS_OK         fine so far (or, with fin, the message is complete)
 *   TS_ERR_LIMIT  the message inflates past max (close 1009)
 *   TS_ERR_PROTO  corrupt deflate data (close 1007)
 */
int ws_pmd_inflate(ws_pmd_t *p, const uint8_t *in, size_t len, int fin, ts_buf_t *out,
                   ts_pool_t *pool, size_t max);

/* Compress a whole message into out (raw deflate without the final
 * 00 00 ff ff, ready to send with RSV1). TS_OK, or TS_ERR on a zlib failure. */
int ws_pmd_deflate(ws_pmd_t *p, ws_pmd_shared_t *shared, const uint8_t *in, size_t len,
                   ts_buf_t *out, ts_pool_t *pool);

/* Bytes of zlib state this connection holds right now (for metrics and the
 * memory figures). */
size_t ws_pmd_memory(const ws_pmd_t *p);

#endif
