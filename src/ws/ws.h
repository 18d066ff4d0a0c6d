/*
 * ws.h — WebSocket connections (RFC 6455) after the upgrade: message
 * assembly, control frames, the close handshake, keepalive pings, limits,
 * permessage-deflate, and the endpoint interface protocols are built on
 * (echo, Ayame and PeerJS signaling).
 */
#ifndef TS_WS_WS_H
#define TS_WS_WS_H

#include <stddef.h>
#include <stdint.h>

#include "core/conn.h"
#include "http/parser.h"
#include "http/server.h"
#include "ws/deflate.h"
#include "ws/frame.h"

typedef struct ts_ws_s ts_ws_t;

/* An endpoint: a path that accepts WebSocket upgrades, and what it does. */
typedef struct {
    const char *path;
    /* Largest message accepted: the larger of this and --ws-max-message. */
    size_t max_message;
    /* Most frames one message may be split into; 0: 1024. */
    uint32_t max_fragments;
    /* Pick a subprotocol from those offered (comma list, len 0 when none).
     * Return NULL for none. NULL hook: no subprotocol. */
    const char *(*select_protocol)(const http_request_t *req, http_str_t offered);
    /* The connection is open (the 101 is queued). Return TS_OK or refuse. */
    int (*on_open)(ts_ws_t *ws, const http_request_t *req);
    /* A complete message: opcode WS_OP_TEXT (valid UTF-8) or WS_OP_BINARY.
     * data is valid only during the call. */
    void (*on_message)(ts_ws_t *ws, int opcode, const uint8_t *data, size_t len);
    /* The connection is going away (code: what was received or sent). */
    void (*on_close)(ts_ws_t *ws, unsigned code);
    /* The connection is being failed (a limit, a protocol error): a last
     * word in the endpoint's own protocol before the Close. NULL: none. */
    void (*on_fail)(ts_ws_t *ws, unsigned code, const char *why);
    /* The server is draining (SIGTERM): say goodbye in the protocol's own
     * words before the Close 1001 that follows. NULL: just the Close. */
    void (*on_shutdown)(ts_ws_t *ws);
} ts_ws_endpoint_t;

/* Per-connection WebSocket state; hangs off conn->proto, owned by ws.c. */
struct ts_ws_s {
    ts_conn_t *conn;
    const ts_ws_endpoint_t *endpoint;
    void *user;       /* the endpoint's own state; the endpoint frees it in on_close */
    ws_pmd_t *pmd;    /* owned; NULL when permessage-deflate is off */
    ts_buf_t msg;     /* the message being assembled (inflated when compressed) */
    uint64_t frame_len; /* payload bytes of the current data frame */
    uint64_t frame_off; /* of which consumed */
    uint64_t last_rx;   /* loop time of the last byte received (keepalive) */
    size_t max_message;
    uint32_t max_fragments;
    uint32_t utf8;      /* UTF-8 state of the text message in progress */
    uint32_t fragments; /* frames of the message in progress */
    uint16_t close_code;
    uint8_t mask[4];
    uint8_t state;      /* TS_WS_S_* (ws.c) */
    uint8_t frame_fin;
    uint8_t msg_op;     /* WS_OP_TEXT / WS_OP_BINARY in progress; 0: none */
    uint8_t msg_compressed;
    uint8_t flags;      /* TS_WS_F_* (ws.c) */
};

/* The WebSocket protocol of a connection after the upgrade. */
extern const ts_conn_ops_t ts_ws_ops;

/*
 * Handle an upgrade request on an endpoint: check the handshake, answer 101
 * (or the handshake's error status), and switch the connection to
 * WebSocket once the HTTP layer is done with this request.
 */
void ts_ws_upgrade(ts_http_ctx_t *ctx, const ts_ws_endpoint_t *endpoint);

/*
 * Send a message (WS_OP_TEXT or WS_OP_BINARY), compressed when negotiated
 * and worthwhile. A connection whose unsent output is already over the send
 * queue cap (--ws-send-queue) is closed with 1008 instead: a consumer that
 * cannot keep up never makes memory grow. TS_OK or TS_ERR_LIMIT.
 */
int ts_ws_send(ts_ws_t *ws, int opcode, const void *data, size_t len);

/* Start the close handshake with code and reason (reason may be NULL). */
void ts_ws_close(ts_ws_t *ws, unsigned code, const char *reason);

/* The /echo endpoint (enabled by --echo). */
extern const ts_ws_endpoint_t ts_ws_echo_endpoint;

#endif
