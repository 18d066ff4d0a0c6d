/*
 * ws.c — a WebSocket connection after the upgrade.
 *
 * Frames are read from the connection's input buffer as they arrive. Data
 * frames stream: their payload is unmasked, checked (UTF-8 for text, at the
 * first bad byte) and inflated piece by piece into the message buffer, so a
 * 16 MiB message is never held twice and a bad byte fails the connection as
 * soon as it is read. A message that arrives whole in one frame is delivered
 * straight from the input buffer without a copy. Control frames (at most 139
 * bytes) are handled once they are complete, wherever they fall between
 * fragments.
 */
#include "ws/ws.h"

#include <stdlib.h>
#include <string.h>

#include "core/bus.h"
#include "core/common.h"
#include "core/log.h"
#include "core/server.h"
#include "core/worker.h"
#include "http/response.h"
#include "ws/handshake.h"
#include "ws/utf8.h"

enum { TS_WS_S_HEADER = 0, TS_WS_S_PAYLOAD, TS_WS_S_CLOSED };

#define TS_WS_F_CLOSE_SENT 0x01 /* our Close is queued */
#define TS_WS_F_CLOSE_RECV 0x02 /* the peer's Close arrived */
#define TS_WS_F_PING_SENT  0x04 /* a keepalive Ping waits for any answer */
#define TS_WS_F_FAILING    0x08 /* in ts_ws_fail: the endpoint's on_fail runs once */

#define TS_WS_MAX_FRAGMENTS  1024 /* per message, unless the endpoint says otherwise */
#define TS_WS_CLOSE_WAIT_MS  5000 /* for the peer's Close after ours */
#define TS_WS_ECHO_MIN_LIMIT (16u * 1024 * 1024)
#define TS_WS_MIN_COMPRESS   32

static const ts_config_t *ts_ws_config(const ts_ws_t *ws)
{
    return ts_server_config(ws->conn->worker->server);
}

static void ts_ws_log(const ts_ws_t *ws, const char *what, unsigned code)
{
    char peer[TS_ADDRSTRLEN];

    if (ts_log_enabled(TS_LOG_DEBUG))
        ts_log_debug("conn=" TS_ID_FMT " peer=%s websocket %s: %s (%u)", TS_ID_ARG(ws->conn->id),
                     ts_peer_str(&ws->conn->peer, peer, sizeof(peer)), ws->endpoint->path, what,
                     code);
}

/* ------------------------------------------------------------ output -- */

static void ts_ws_write_frame(ts_ws_t *ws, int opcode, int rsv, const void *data, size_t len)
{
    uint8_t head[WS_MAX_HEADER];
    size_t hl = ws_frame_header_write(head, 1, rsv, opcode, len, NULL);

    ts_conn_write(ws->conn, head, hl);
    if (len > 0)
        ts_conn_write(ws->conn, data, len);
}

static void ts_ws_send_close(ts_ws_t *ws, unsigned code, const char *reason)
{
    uint8_t payload[WS_MAX_CONTROL_PAYLOAD];
    size_t n = 0;

    if (ws->flags & TS_WS_F_CLOSE_SENT)
        return;
    ws->flags |= TS_WS_F_CLOSE_SENT;
    if (code != 0 && code != WS_CLOSE_NO_STATUS) {
        payload[0] = (uint8_t)(code >> 8);
        payload[1] = (uint8_t)code;
        n = 2;
        if (reason != NULL) {
            size_t r = TS_MIN(strlen(reason), sizeof(payload) - 2);
            memcpy(payload + 2, reason, r);
            n += r;
        }
    }
    ts_ws_write_frame(ws, WS_OP_CLOSE, 0, payload, n);
}

/* Fail the connection (RFC 6455 7.1.7): our Close with code, then TCP. */
static void ts_ws_fail(ts_ws_t *ws, unsigned code, const char *why)
{
    ts_ws_log(ws, why, code);
    if (ws->endpoint->on_fail != NULL && !(ws->flags & (TS_WS_F_CLOSE_SENT | TS_WS_F_FAILING))) {
        ws->flags |= TS_WS_F_FAILING;
        ws->endpoint->on_fail(ws, code, why);
    }
    ts_ws_send_close(ws, code, why);
    if (ws->close_code == 0)
        ws->close_code = (uint16_t)code;
    ws->state = TS_WS_S_CLOSED;
    ts_conn_close_after_write(ws->conn, why);
}

int ts_ws_send(ts_ws_t *ws, int opcode, const void *data, size_t len)
{
    ts_conn_t *c = ws->conn;
    const ts_config_t *cfg;

    if (ws->state == TS_WS_S_CLOSED || (ws->flags & TS_WS_F_CLOSE_SENT) ||
        (c->flags & (TS_CONN_CLOSING | TS_CONN_CLOSE_AFTER)))
        return TS_ERR_CLOSED;
    cfg = ts_ws_config(ws);
    if (c->out.len > cfg->ws_send_queue) {
        /* What we sent before has not left yet: the peer does not read. */
        ts_ws_fail(ws, WS_CLOSE_POLICY, "send queue full");
        return TS_ERR_LIMIT;
    }
    if (ws->pmd != NULL && len >= TS_WS_MIN_COMPRESS) {
        ts_worker_t *w = c->worker;
        ts_buf_t z = TS_BUF_INIT;
        ws_pmd_shared_t *shared = ts_worker_local(w, TS_LOCAL_WS_DEFLATE,
                                                  (void *(*)(void))ws_pmd_shared_new,
                                                  (void (*)(void *))ws_pmd_shared_free);
        if (ws_pmd_deflate(ws->pmd, shared, data, len, &z, &w->pool) == TS_OK) {
            ts_ws_write_frame(ws, opcode, WS_RSV1, ts_buf_head(&z), z.len);
            ts_buf_release(&z, &w->pool);
            return TS_OK;
        }
        ts_buf_release(&z, &w->pool);
    }
    ts_ws_write_frame(ws, opcode, 0, data, len);
    return TS_OK;
}

void ts_ws_close(ts_ws_t *ws, unsigned code, const char *reason)
{
    if (ws->flags & TS_WS_F_CLOSE_SENT)
        return;
    ts_ws_send_close(ws, code, reason);
    ws->close_code = (uint16_t)code;
    /* Wait for the peer's Close, but not for ever. */
    ts_conn_set_timeout(ws->conn, TS_WS_CLOSE_WAIT_MS);
}

/* ------------------------------------------------------------- input -- */

static void ts_ws_message_reset(ts_ws_t *ws)
{
    ts_buf_release(&ws->msg, &ws->conn->worker->pool);
    ws->msg_op = 0;
    ws->msg_compressed = 0;
    ws->fragments = 0;
    ws->utf8 = WS_UTF8_ACCEPT;
}

static void ts_ws_deliver(ts_ws_t *ws, int opcode, const uint8_t *data, size_t len)
{
    if (ws->flags & TS_WS_F_CLOSE_SENT)
        return; /* closing: data is ignored (RFC 6455 5.5.1) */
    ws->endpoint->on_message(ws, opcode, data, len);
}

static void ts_ws_on_close_frame(ts_ws_t *ws, const uint8_t *p, size_t len)
{
    unsigned code = WS_CLOSE_NO_STATUS;

    if (len == 1) {
        ts_ws_fail(ws, WS_CLOSE_PROTOCOL_ERROR, "close frame with a 1-byte payload");
        return;
    }
    if (len >= 2) {
        code = (unsigned)p[0] << 8 | p[1];
        if (!ws_close_code_valid(code)) {
            ts_ws_fail(ws, WS_CLOSE_PROTOCOL_ERROR, "invalid close code");
            return;
        }
        if (!ws_utf8_valid(p + 2, len - 2)) {
            ts_ws_fail(ws, WS_CLOSE_INVALID_DATA, "close reason is not UTF-8");
            return;
        }
    }
    ws->flags |= TS_WS_F_CLOSE_RECV;
    if (ws->close_code == 0)
        ws->close_code = (uint16_t)code;
    /* Echo the code (RFC 6455 5.5.1), then the server closes TCP first. */
    ts_ws_send_close(ws, code, NULL);
    ws->state = TS_WS_S_CLOSED;
    ts_ws_log(ws, "close", code);
    ts_conn_close_after_write(ws->conn, "close handshake");
}

static void ts_ws_on_control(ts_ws_t *ws, int opcode, const uint8_t *p, size_t len)
{
    switch (opcode) {
    case WS_OP_PING:
        /* Answered at once, even between the fragments of a message. */
        if (!(ws->flags & TS_WS_F_CLOSE_SENT))
            ts_ws_write_frame(ws, WS_OP_PONG, 0, p, len);
        break;
    case WS_OP_PONG:
        /* Solicited or not, a Pong only proves the peer is alive. */
        break;
    case WS_OP_CLOSE:
        ts_ws_on_close_frame(ws, p, len);
        break;
    }
}

/* Feed a piece of the current data frame's payload (already unmasked). */
static int ts_ws_on_payload(ts_ws_t *ws, const uint8_t *p, size_t n, int ends_frame)
{
    ts_worker_t *w = ws->conn->worker;
    int fin = ends_frame && ws->frame_fin;
    size_t before = ws->msg.len;

    if (ws->msg_compressed) {
        int rc = ws_pmd_inflate(ws->pmd, p, n, fin, &ws->msg, &w->pool, ws->max_message);
        if (rc == TS_ERR_LIMIT) {
            ts_ws_fail(ws, WS_CLOSE_TOO_BIG, "message too big (inflated)");
            return TS_ERR;
        }
        if (rc != TS_OK) {
            ts_ws_fail(ws, WS_CLOSE_INVALID_DATA, "bad deflate data");
            return TS_ERR;
        }
    } else if (n > 0) {
        ts_buf_append(&ws->msg, &w->pool, p, n);
    }
    if (ws->msg_op == WS_OP_TEXT && ws->msg.len > before &&
        ws_utf8_feed(&ws->utf8, (const uint8_t *)ts_buf_head(&ws->msg) + before,
                     ws->msg.len - before) == WS_UTF8_REJECT) {
        ts_ws_fail(ws, WS_CLOSE_INVALID_DATA, "invalid UTF-8 in a text message");
        return TS_ERR;
    }
    if (fin) {
        if (ws->msg_op == WS_OP_TEXT && ws->utf8 != WS_UTF8_ACCEPT) {
            ts_ws_fail(ws, WS_CLOSE_INVALID_DATA, "text message ends inside a UTF-8 sequence");
            return TS_ERR;
        }
        ts_ws_deliver(ws, ws->msg_op, (const uint8_t *)ts_buf_head(&ws->msg), ws->msg.len);
        ts_ws_message_reset(ws);
    }
    return TS_OK;
}

/*
 * Start a frame: check what the header says against the message state.
 * Returns TS_OK, TS_ERR_AGAIN (a control frame not yet complete) or TS_ERR
 * (the connection was failed).
 */
static int ts_ws_on_header(ts_ws_t *ws, uint8_t *buf, size_t len, size_t *used)
{
    ws_frame_t f;
    int allowed_rsv, rc;
    /* Incompressible data grows a little when deflated: a compressed frame
     * may exceed the limit slightly; its inflated size is what is bounded. */
    uint64_t limit = ws->pmd != NULL ? ws->max_message + ws->max_message / 64 + 1024
                                     : ws->max_message;

    rc = ws_frame_parse(buf, len, 1, limit, &f);
    if (rc == TS_ERR_AGAIN)
        return TS_ERR_AGAIN;
    if (rc != TS_OK) {
        ts_ws_fail(ws, f.close_code ? f.close_code : WS_CLOSE_PROTOCOL_ERROR,
                   f.error ? f.error : "bad frame");
        return TS_ERR;
    }
    allowed_rsv = (ws->pmd != NULL && (f.opcode == WS_OP_TEXT || f.opcode == WS_OP_BINARY))
                      ? WS_RSV1
                      : 0;
    if (f.rsv & ~allowed_rsv) {
        ts_ws_fail(ws, WS_CLOSE_PROTOCOL_ERROR, "reserved bits set");
        return TS_ERR;
    }

    if (f.opcode >= 0x8) {
        /* Control frames are small: handle them whole, in place. */
        if (len < f.header_len + f.payload_len)
            return TS_ERR_AGAIN;
        ws_mask_apply(buf + f.header_len, (size_t)f.payload_len, f.mask, 0);
        *used = f.header_len + (size_t)f.payload_len;
        ts_ws_on_control(ws, f.opcode, buf + f.header_len, (size_t)f.payload_len);
        return TS_OK;
    }

    if (f.opcode == WS_OP_CONT) {
        if (ws->msg_op == 0) {
            ts_ws_fail(ws, WS_CLOSE_PROTOCOL_ERROR, "continuation without a message");
            return TS_ERR;
        }
    } else {
        if (ws->msg_op != 0) {
            ts_ws_fail(ws, WS_CLOSE_PROTOCOL_ERROR, "new message inside a fragmented one");
            return TS_ERR;
        }
        ws->msg_op = f.opcode;
        ws->msg_compressed = (f.rsv & WS_RSV1) != 0;
        ws->utf8 = WS_UTF8_ACCEPT;
    }
    if (++ws->fragments > ws->max_fragments) {
        ts_ws_fail(ws, WS_CLOSE_TOO_BIG, "too many fragments");
        return TS_ERR;
    }
    if (!ws->msg_compressed && ws->msg.len + f.payload_len > ws->max_message) {
        ts_ws_fail(ws, WS_CLOSE_TOO_BIG, "message too big");
        return TS_ERR;
    }

    /* The common case: a whole message in one frame, already buffered.
     * Deliver it from the input buffer without copying. */
    if (f.fin && ws->fragments == 1 && !ws->msg_compressed &&
        len >= f.header_len + f.payload_len) {
        uint8_t *p = buf + f.header_len;
        size_t n = (size_t)f.payload_len;
        ws_mask_apply(p, n, f.mask, 0);
        *used = f.header_len + n;
        if (ws->msg_op == WS_OP_TEXT && !ws_utf8_valid(p, n)) {
            ts_ws_fail(ws, WS_CLOSE_INVALID_DATA, "invalid UTF-8 in a text message");
            return TS_ERR;
        }
        ts_ws_deliver(ws, ws->msg_op, p, n);
        ws->msg_op = 0;
        ws->fragments = 0;
        return TS_OK;
    }

    ws->frame_len = f.payload_len;
    ws->frame_off = 0;
    ws->frame_fin = f.fin;
    memcpy(ws->mask, f.mask, 4);
    ws->state = TS_WS_S_PAYLOAD;
    *used = f.header_len;
    if (f.payload_len == 0) {
        ws->state = TS_WS_S_HEADER;
        return ts_ws_on_payload(ws, NULL, 0, 1) == TS_OK ? TS_OK : TS_ERR;
    }
    return TS_OK;
}

static int ts_ws_on_read(ts_conn_t *c)
{
    ts_ws_t *ws = c->proto;
    ts_pool_t *pool = &c->worker->pool;

    ws->last_rx = ts_loop_now(&c->worker->loop);
    ws->flags &= ~TS_WS_F_PING_SENT;
    while (c->in.len > 0 && ws->state != TS_WS_S_CLOSED &&
           !(c->flags & (TS_CONN_CLOSING | TS_CONN_CLOSE_AFTER))) {
        uint8_t *buf = (uint8_t *)ts_buf_head(&c->in);
        size_t len = c->in.len, used = 0;

        if (ws->state == TS_WS_S_HEADER) {
            int rc = ts_ws_on_header(ws, buf, len, &used);
            if (rc == TS_ERR_AGAIN)
                break;
            if (rc != TS_OK)
                break;
            ts_buf_consume(&c->in, pool, used);
            continue;
        }

        /* TS_WS_S_PAYLOAD: as much of the frame as has arrived. */
        used = (size_t)TS_MIN((uint64_t)len, ws->frame_len - ws->frame_off);
        ws_mask_apply(buf, used, ws->mask, ws->frame_off);
        ws->frame_off += used;
        if (ws->frame_off == ws->frame_len)
            ws->state = TS_WS_S_HEADER;
        if (ts_ws_on_payload(ws, buf, used, ws->frame_off == ws->frame_len) != TS_OK)
            break;
        ts_buf_consume(&c->in, pool, used);
    }
    if (ws->state == TS_WS_S_CLOSED)
        ts_buf_release(&c->in, pool);
    return TS_OK;
}

static void ts_ws_on_eof(ts_conn_t *c)
{
    ts_ws_t *ws = c->proto;

    if (ws->close_code == 0)
        ws->close_code = WS_CLOSE_ABNORMAL;
    ts_conn_close(c, (ws->flags & TS_WS_F_CLOSE_SENT) ? "closed" : "peer closed without Close");
}

static void ts_ws_on_timeout(ts_conn_t *c)
{
    ts_ws_t *ws = c->proto;
    const ts_config_t *cfg = ts_ws_config(ws);
    uint64_t idle = (uint64_t)cfg->ws_idle_timeout * 1000;
    uint64_t now = ts_loop_now(&c->worker->loop);

    if (ws->flags & TS_WS_F_CLOSE_SENT) {
        ts_ws_log(ws, "no Close from the peer in time", ws->close_code);
        ts_conn_close(c, "close handshake timeout");
        return;
    }
    /* The timer is lazy: reading does not re-arm it, it checks here. */
    if (now - ws->last_rx < idle) {
        ts_conn_set_timeout(c, idle - (now - ws->last_rx));
        return;
    }
    if (ws->flags & TS_WS_F_PING_SENT) {
        ts_ws_log(ws, "no answer to keepalive ping", WS_CLOSE_GOING_AWAY);
        ws->close_code = WS_CLOSE_ABNORMAL;
        ts_conn_close(c, "keepalive timeout");
        return;
    }
    ws->flags |= TS_WS_F_PING_SENT;
    ts_ws_write_frame(ws, WS_OP_PING, 0, "ka", 2);
    ts_conn_set_timeout(c, idle);
}

static void ts_ws_on_shutdown(ts_conn_t *c)
{
    ts_ws_t *ws = c->proto;

    if (ws->endpoint->on_shutdown != NULL && ws->state != TS_WS_S_CLOSED &&
        !(ws->flags & TS_WS_F_CLOSE_SENT))
        ws->endpoint->on_shutdown(ws);
    ts_ws_close(ws, WS_CLOSE_GOING_AWAY, "server shutting down");
}

static void ts_ws_on_close(ts_conn_t *c)
{
    ts_ws_t *ws = c->proto;

    if (ws == NULL)
        return;
    if (ws->endpoint->on_close != NULL)
        ws->endpoint->on_close(ws, ws->close_code ? ws->close_code : WS_CLOSE_ABNORMAL);
    ts_buf_release(&ws->msg, &c->worker->pool);
    if (ws->pmd != NULL)
        ws_pmd_free(ws->pmd);
    free(ws);
    c->proto = NULL;
}

const ts_conn_ops_t ts_ws_ops = {
    .name = "websocket",
    .kind = TS_PROTO_WS,
    .conn_size = 0, /* only reached by upgrading an HTTP connection */
    .on_open = NULL,
    .on_read = ts_ws_on_read,
    .on_eof = ts_ws_on_eof,
    .on_drain = NULL,
    .on_timeout = ts_ws_on_timeout,
    .on_shutdown = ts_ws_on_shutdown,
    .on_close = ts_ws_on_close,
};

/* ----------------------------------------------------------- upgrade -- */

static void ts_ws_attach(ts_http_conn_t *hc, void *arg)
{
    ts_conn_t *c = &hc->conn;
    ts_ws_t *ws = arg;
    const ts_config_t *cfg = ts_ws_config(ws);

    ts_conn_set_ops(c, &ts_ws_ops, ws);
    ws->last_rx = ts_loop_now(&c->worker->loop);
    ts_conn_set_timeout(c, (uint64_t)cfg->ws_idle_timeout * 1000);
    /* Frames sent right behind the upgrade request are already here. */
    if (c->in.len > 0)
        ts_ws_on_read(c);
}

void ts_ws_upgrade(ts_http_ctx_t *ctx, const ts_ws_endpoint_t *ep)
{
    ts_conn_t *c = &ctx->hc->conn;
    const ts_config_t *cfg = ts_server_config(c->worker->server);
    ws_pmd_policy_t policy = {
        .enabled = cfg->ws_deflate,
        .server_context_takeover = 0,
        .client_max_window_bits = 12, /* 4 KiB window: docs/websocket.md */
        .min_compress = TS_WS_MIN_COMPRESS,
    };
    ws_handshake_opts_t opts = {
        .allowed_origins = (const char *const *)cfg->allowed_origins,
        .nallowed_origins = cfg->nallowed_origins,
        .pmd = &policy,
    };
    ws_handshake_t hs;
    const char *proto = NULL;
    char resp[512];
    size_t n;
    ts_ws_t *ws;

    if (ws_handshake_check(ctx->req, &opts, &hs) != TS_OK) {
        ctx->keep_alive = 0;
        if (hs.status == 426)
            ts_http_respond(ctx, 426, "application/json",
                            "Sec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n",
                            "{\"error\":\"unsupported WebSocket version\",\"status\":426}\n", 54);
        else
            ts_http_respond_error(ctx, hs.status ? hs.status : 400,
                                  hs.error ? hs.error : "bad WebSocket handshake");
        return;
    }
    if (ep->select_protocol != NULL)
        proto = ep->select_protocol(ctx->req, hs.protocols);
    n = ws_handshake_response(&hs, proto, resp, sizeof(resp));
    if (n == 0) {
        ctx->keep_alive = 0;
        ts_http_respond_error(ctx, 500, "handshake response too large");
        return;
    }

    ws = ts_calloc(1, sizeof(*ws));
    ws->conn = c;
    ws->endpoint = ep;
    ws->max_message = TS_MAX(ep->max_message, (size_t)cfg->ws_max_message);
    ws->max_fragments = ep->max_fragments ? ep->max_fragments : TS_WS_MAX_FRAGMENTS;
    ws->utf8 = WS_UTF8_ACCEPT;
    if (hs.deflate)
        ws->pmd = ws_pmd_new(&hs.pmd);
    if (ep->on_open != NULL && ep->on_open(ws, ctx->req) != TS_OK) {
        if (ws->pmd != NULL)
            ws_pmd_free(ws->pmd);
        free(ws);
        ctx->keep_alive = 0;
        ts_http_respond_error(ctx, 403, "refused");
        return;
    }
    ts_conn_write(c, resp, n);
    ts_metrics_http_status(&c->worker->metrics, 101);
    ctx->status = 101;
    ctx->upgrade = ts_ws_attach;
    ctx->upgrade_arg = ws;
}

/* -------------------------------------------------------------- echo -- */

static void ts_ws_echo_message(ts_ws_t *ws, int opcode, const uint8_t *data, size_t len)
{
    ts_ws_send(ws, opcode, data, len);
}

const ts_ws_endpoint_t ts_ws_echo_endpoint = {
    .path = "/echo",
    .max_message = TS_WS_ECHO_MIN_LIMIT, /* the whole conformance suite fits: */
    .max_fragments = 262144,             /* Autobahn 9.3.1 sends 65,536 */
    .select_protocol = NULL,
    .on_open = NULL,
    .on_message = ts_ws_echo_message,
    .on_close = NULL,
};
