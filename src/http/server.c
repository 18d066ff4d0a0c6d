#include "http/server.h"

#include <string.h>

#include "core/bus.h"
#include "core/common.h"
#include "core/log.h"
#include "core/server.h"
#include "core/worker.h"
#include "http/response.h"
#include "http/router.h"

enum { TS_HTTP_S_HEAD = 0, TS_HTTP_S_BODY, TS_HTTP_S_CHUNKED };
enum { TS_HTTP_T_REQUEST = 0, TS_HTTP_T_IDLE };

/* ts_http_process_one(): the connection now speaks another protocol. */
#define TS_HTTP_UPGRADED 1

static const char ts_http_continue[] = "HTTP/1.1 100 Continue\r\n\r\n";

static const ts_config_t *ts_http_config(ts_http_conn_t *hc)
{
    return ts_server_config(hc->conn.worker->server);
}

static void ts_http_arm(ts_http_conn_t *hc, int kind)
{
    const ts_config_t *cfg = ts_http_config(hc);

    hc->timer_kind = (uint8_t)kind;
    ts_conn_set_timeout(&hc->conn, (uint64_t)(kind == TS_HTTP_T_IDLE ? cfg->keepalive_timeout
                                                                     : cfg->request_timeout) *
                                       1000);
}

static void ts_http_log_request(ts_http_conn_t *hc, const ts_http_ctx_t *ctx)
{
    char peer[TS_ADDRSTRLEN];
    const http_request_t *req = ctx->req;

    if (!ts_log_enabled(TS_LOG_DEBUG))
        return;
    ts_log_debug("conn=" TS_ID_FMT " peer=%s \"%.*s %.*s HTTP/1.%d\" %d %zu",
                 TS_ID_ARG(hc->conn.id), ts_peer_str(&hc->conn.peer, peer, sizeof(peer)),
                 (int)TS_MIN(req->method_name.len, 16), req->method_name.base,
                 (int)TS_MIN(req->target.len, 256), req->target.base, req->minor_version,
                 ctx->status, ctx->bytes);
}

/* A request the parser refused: answer with its status and close. */
static void ts_http_fail(ts_http_conn_t *hc, int status, const char *why)
{
    ts_http_ctx_t ctx;
    char peer[TS_ADDRSTRLEN];

    memset(&ctx, 0, sizeof(ctx));
    ctx.hc = hc;
    ts_log_debug("conn=" TS_ID_FMT " peer=%s bad request: %d %s", TS_ID_ARG(hc->conn.id),
                 ts_peer_str(&hc->conn.peer, peer, sizeof(peer)), status, why);
    ts_http_respond_error(&ctx, status, why);
    ts_conn_close_after_write(&hc->conn, why);
}

static void ts_http_dispatch(ts_http_conn_t *hc, const http_request_t *req, const char *body,
                             size_t body_len, ts_http_ctx_t *out)
{
    ts_http_ctx_t ctx;

    memset(&ctx, 0, sizeof(ctx));
    ctx.hc = hc;
    ctx.req = req;
    ctx.body = body;
    ctx.body_len = body_len;
    ctx.keep_alive = (req->flags & HTTP_F_KEEP_ALIVE) && !hc->closing;
    ts_http_route(&ctx);
    hc->requests++;
    ts_http_log_request(hc, &ctx);
    if (!ctx.keep_alive)
        ts_conn_close_after_write(&hc->conn, "connection: close");
    *out = ctx;
}

/*
 * Handle the request at the head of the input buffer if it is complete.
 * TS_OK: one request was answered (or refused); TS_ERR_AGAIN: wait for bytes.
 */
static int ts_http_process_one(ts_http_conn_t *hc)
{
    ts_conn_t *c = &hc->conn;
    const char *buf = ts_buf_head(&c->in);
    size_t len = c->in.len, total;
    http_request_t req;
    ts_http_ctx_t ctx;
    int rc;

    if (hc->state == TS_HTTP_S_HEAD) {
        if (hc->timer_kind == TS_HTTP_T_IDLE)
            ts_http_arm(hc, TS_HTTP_T_REQUEST);
        rc = http_parse_request(&hc->ps, buf, len, TS_HTTP_MAX_BODY, &req);
        if (rc == TS_ERR_AGAIN)
            return TS_ERR_AGAIN;
        if (rc != TS_OK) {
            ts_http_fail(hc, req.status ? req.status : 400, req.error ? req.error : "bad request");
            return TS_OK;
        }
        hc->head_len = (uint32_t)req.head_len;
        if (req.flags & HTTP_F_CHUNKED) {
            hc->state = TS_HTTP_S_CHUNKED;
            memset(&hc->chunked, 0, sizeof(hc->chunked));
            hc->body_len = hc->raw_used = 0;
        } else if (req.content_length > 0) {
            hc->state = TS_HTTP_S_BODY;
            hc->body_len = (uint32_t)req.content_length;
        }
        if (hc->state != TS_HTTP_S_HEAD && (req.flags & HTTP_F_EXPECT_CONTINUE) &&
            !hc->sent_continue && len == req.head_len) {
            hc->sent_continue = 1;
            ts_conn_write(c, ts_http_continue, sizeof(ts_http_continue) - 1);
        }
    }

    if (hc->state == TS_HTTP_S_CHUNKED) {
        size_t consumed = 0, produced = 0;
        char *base = ts_buf_head(&c->in) + hc->head_len;
        rc = http_chunked_decode(&hc->chunked, base + hc->raw_used, len - hc->head_len - hc->raw_used,
                                 base + hc->body_len, TS_HTTP_MAX_BODY, &consumed, &produced);
        hc->raw_used += (uint32_t)consumed;
        hc->body_len += (uint32_t)produced;
        if (hc->raw_used > hc->body_len) {
            /* Close the gap the chunk framing left, so the buffer holds only
             * the head, the decoded body and the bytes not yet decoded. */
            size_t rest = len - hc->head_len - hc->raw_used;
            memmove(base + hc->body_len, base + hc->raw_used, rest);
            c->in.len -= hc->raw_used - hc->body_len;
            len = c->in.len;
            hc->raw_used = hc->body_len;
        }
        if (rc == TS_ERR_AGAIN) {
            ts_http_arm(hc, TS_HTTP_T_REQUEST);
            return TS_ERR_AGAIN;
        }
        if (rc != TS_OK) {
            ts_http_fail(hc, rc == TS_ERR_LIMIT ? 413 : 400,
                         rc == TS_ERR_LIMIT ? "request body too large" : "bad chunked body");
            return TS_OK;
        }
        total = hc->head_len + hc->raw_used;
    } else if (hc->state == TS_HTTP_S_BODY) {
        if (len < (size_t)hc->head_len + hc->body_len) {
            ts_http_arm(hc, TS_HTTP_T_REQUEST);
            return TS_ERR_AGAIN;
        }
        total = hc->head_len + hc->body_len;
    } else {
        total = hc->head_len;
    }

    if (hc->state != TS_HTTP_S_HEAD) {
        /* The head was parsed before the body arrived; parse it again (the
         * same bytes give the same result) so its slices are current. */
        memset(&hc->ps, 0, sizeof(hc->ps));
        rc = http_parse_request(&hc->ps, ts_buf_head(&c->in), hc->head_len, TS_HTTP_MAX_BODY,
                                &req);
        if (rc != TS_OK) {
            ts_http_fail(hc, 500, "request head changed");
            return TS_OK;
        }
    }
    ts_http_dispatch(hc, &req, ts_buf_head(&c->in) + hc->head_len,
                     hc->state == TS_HTTP_S_HEAD ? 0 : hc->body_len, &ctx);
    ts_buf_consume(&c->in, &c->worker->pool, total);
    memset(&hc->ps, 0, sizeof(hc->ps));
    hc->state = TS_HTTP_S_HEAD;
    hc->sent_continue = 0;
    hc->head_len = hc->body_len = hc->raw_used = 0;
    if (ctx.upgrade != NULL) {
        /* Another protocol owns the connection (and the bytes after this
         * request) from here on. */
        ts_timer_stop(&c->worker->loop, &c->timer);
        ctx.upgrade(hc, ctx.upgrade_arg);
        return TS_HTTP_UPGRADED;
    }
    return TS_OK;
}

static int ts_http_on_read(ts_conn_t *c)
{
    ts_http_conn_t *hc = (ts_http_conn_t *)c;

    while (c->in.len > 0 && !(c->flags & (TS_CONN_CLOSING | TS_CONN_CLOSE_AFTER))) {
        if (c->out.len > TS_CONN_OUT_HIGH) {
            /* The client pipelines faster than it reads: stop reading until
             * our answers drain, instead of buffering without bound. */
            c->flags |= TS_CONN_NOTIFY_DRAIN;
            ts_conn_pause_read(c);
            return TS_OK;
        }
        int rc = ts_http_process_one(hc);
        if (rc == TS_HTTP_UPGRADED)
            return TS_OK;
        if (rc == TS_ERR_AGAIN)
            break;
    }
    if (c->in.len == 0 && hc->state == TS_HTTP_S_HEAD &&
        !(c->flags & (TS_CONN_CLOSING | TS_CONN_CLOSE_AFTER))) {
        if (hc->closing)
            ts_conn_close_after_write(c, "shutting down");
        else
            ts_http_arm(hc, TS_HTTP_T_IDLE);
    }
    return TS_OK;
}

static void ts_http_on_drain(ts_conn_t *c)
{
    c->flags &= ~TS_CONN_NOTIFY_DRAIN;
    ts_conn_resume_read(c);
    /* Requests that waited in the buffer while the output drained. */
    if (c->in.len > 0) {
        c->flags |= TS_CONN_IN_READ;
        ts_http_on_read(c);
        c->flags &= ~TS_CONN_IN_READ;
    }
}

static int ts_http_on_open(ts_conn_t *c)
{
    ts_http_conn_t *hc = (ts_http_conn_t *)c;

    c->proto = hc;
    ts_http_arm(hc, TS_HTTP_T_REQUEST);
    return TS_OK;
}

static void ts_http_on_eof(ts_conn_t *c)
{
    /* A half-closed client still gets the answers already queued. */
    if (c->out.len > 0)
        ts_conn_close_after_write(c, "peer closed");
    else
        ts_conn_close(c, "peer closed");
}

static void ts_http_on_timeout(ts_conn_t *c)
{
    ts_http_conn_t *hc = (ts_http_conn_t *)c;

    if (hc->timer_kind == TS_HTTP_T_IDLE) {
        ts_conn_close(c, "keep-alive timeout");
        return;
    }
    if (c->in.len == 0 && hc->state == TS_HTTP_S_HEAD) {
        /* Connected and never sent a byte: nobody is waiting for a 408. */
        ts_conn_close(c, "request timeout (no bytes)");
        return;
    }
    ts_http_fail(hc, 408, "request timeout");
}

static void ts_http_on_shutdown(ts_conn_t *c)
{
    ts_http_conn_t *hc = (ts_http_conn_t *)c;

    hc->closing = 1;
    if (c->in.len == 0 && hc->state == TS_HTTP_S_HEAD) {
        /* No request in progress: idle ones go now, one whose answer is
         * still being written goes right after its last byte. */
        if (c->out.len == 0)
            ts_conn_close(c, "shutting down");
        else
            ts_conn_close_after_write(c, "shutting down");
    }
}

const ts_conn_ops_t ts_http_ops = {
    .name = "http",
    .kind = TS_PROTO_HTTP,
    .conn_size = sizeof(ts_http_conn_t),
    .on_open = ts_http_on_open,
    .on_read = ts_http_on_read,
    .on_eof = ts_http_on_eof,
    .on_drain = ts_http_on_drain,
    .on_timeout = ts_http_on_timeout,
    .on_shutdown = ts_http_on_shutdown,
    .on_close = NULL,
};
