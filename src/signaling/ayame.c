/*
 * ayame.c — the Ayame endpoint at /signaling: the WebSocket side of a
 * client, its ping timer, its webhooks, and the bus handlers that carry
 * joins, notifies and relayed messages between workers. The protocol
 * itself is in ayame_msg.c, the rooms in room.c (see ayame.h).
 */
#include "signaling/ayame.h"

#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/log.h"
#include "core/server.h"
#include "http/router.h"
#include "signaling/webhook.h"
#include "turn/ice.h"
#include "ws/ws.h"

/* A client's connection state; ws->user, freed in on_close. */
typedef struct {
    ts_ayame_client_t cl; /* first */
    ts_ws_t *ws;
    ts_timer_t ping;
    ts_webhook_t *authn; /* the authn webhook in flight; NULL: none */
    size_t host_len;
    char host[256]; /* how the client reached us (Host, without the port) */
} ts_ayame_conn_t;

static const ts_ws_endpoint_t ts_ayame_endpoint;

static ts_worker_t *ts_ayame_worker(const ts_ayame_client_t *cl)
{
    return ((const ts_ayame_conn_t *)cl)->ws->conn->worker;
}

/* ------------------------------------------------------ io for logic -- */

static void ts_ayame_io_send(ts_ayame_client_t *cl, const char *text, size_t len)
{
    ts_ws_send(((ts_ayame_conn_t *)cl)->ws, WS_OP_TEXT, text, len);
}

static void ts_ayame_io_close(ts_ayame_client_t *cl, unsigned code, const char *reason)
{
    ts_ws_close(((ts_ayame_conn_t *)cl)->ws, code, reason);
}

static ts_ayame_client_t *ts_ayame_find(ts_worker_t *w, uint64_t id);

static int ts_ayame_io_post(ts_ayame_client_t *cl, int worker, uint32_t type, uint64_t dst,
                            const void *data, size_t len)
{
    ts_worker_t *w = ts_ayame_worker(cl);
    ts_server_t *s = w->server;
    ts_ayame_client_t *peer;
    ts_bus_msg_t *msg;

    /* A relay to a peer on this worker, when none of the worker's own posts
     * waits (so it overtakes nothing): what the bus handler would do after
     * this batch, done now, without a copy. */
    if (worker < 0 && type == TS_AYAME_MSG_RELAY && ts_inbox_local_idle(&w->inbox) &&
        (peer = ts_ayame_find(w, dst)) != NULL) {
        ts_ayame_on_relay(peer, cl->id, data, len);
        return TS_OK;
    }
    msg = ts_bus_msg_new(type, dst, cl->id, data, (uint32_t)len);
    if (worker >= 0)
        return ts_bus_send_worker(&s->bus, worker, msg);
    return ts_bus_send(&s->bus, dst, msg);
}

static void ts_ayame_on_authn_done(void *arg, long status, const char *body, size_t len)
{
    ts_ayame_conn_t *ac = arg;

    ac->authn = NULL;
    ts_ayame_on_authn(&ac->cl, status, body, len);
}

static int ts_ayame_io_authn(ts_ayame_client_t *cl, const char *body, size_t len)
{
    ts_ayame_conn_t *ac = (ts_ayame_conn_t *)cl;
    const ts_config_t *cfg = ts_server_config(ts_ayame_worker(cl)->server);

    ac->authn = ts_webhook_post(cfg->authn_webhook_url, body, len, cfg->webhook_timeout,
                                ts_ayame_on_authn_done, ac);
    return ac->authn != NULL ? TS_OK : TS_ERR;
}

static size_t ts_ayame_io_ice(ts_ayame_client_t *cl, char *out, size_t cap)
{
    ts_ayame_conn_t *ac = (ts_ayame_conn_t *)cl;
    char name[32];

    /* The REST username's suffix: a name of its own per client, safe in JSON. */
    snprintf(name, sizeof(name), "ayame-%.16s", cl->connection_id + 10);
    return ts_ice_servers_json(ts_ayame_worker(cl)->server, ac->host_len ? ac->host : NULL,
                               ac->host_len, name, out, cap);
}

static const ts_config_t *ts_ayame_io_config(ts_ayame_client_t *cl)
{
    return ts_server_config(ts_ayame_worker(cl)->server);
}

static uint64_t ts_ayame_io_now(ts_ayame_client_t *cl)
{
    return ts_loop_now(&ts_ayame_worker(cl)->loop);
}

static const ts_ayame_io_t ts_ayame_io = {
    .send = ts_ayame_io_send,
    .close = ts_ayame_io_close,
    .post = ts_ayame_io_post,
    .authn = ts_ayame_io_authn,
    .ice_servers = ts_ayame_io_ice,
    .config = ts_ayame_io_config,
    .now = ts_ayame_io_now,
};

/* -------------------------------------------------------------- ping -- */

static void ts_ayame_on_ping(ts_loop_t *loop, ts_timer_t *t)
{
    ts_ayame_conn_t *ac = ts_container_of(t, ts_ayame_conn_t, ping);
    const ts_config_t *cfg = ts_ayame_io_config(&ac->cl);
    uint64_t now = ts_loop_now(loop);

    if (now - ac->cl.last_pong >= (uint64_t)cfg->signaling_ping_timeout * 1000) {
        ts_log_debug("conn=" TS_ID_FMT " ayame: no pong for %u s", TS_ID_ARG(ac->cl.id),
                     cfg->signaling_ping_timeout);
        ts_ayame_leave(&ac->cl);
        ts_ws_close(ac->ws, WS_CLOSE_NORMAL, "pong timeout");
        return;
    }
    ts_ws_send(ac->ws, WS_OP_TEXT, "{\"type\":\"ping\"}", 15);
    ts_timer_start(loop, t, (uint64_t)cfg->signaling_ping_interval * 1000);
}

/* --------------------------------------------------------- endpoint -- */

static int ts_ayame_on_open(ts_ws_t *ws, const http_request_t *req)
{
    ts_worker_t *w = ws->conn->worker;
    ts_ayame_conn_t *ac = ts_calloc(1, sizeof(*ac));
    const char *host = req->host.base;
    size_t hlen = req->host.len;

    ac->ws = ws;
    ws->user = ac;
    ts_ayame_client_init(&ac->cl, &ts_ayame_io, ws->conn->id, w->server->nworkers);
    /* The host the browser used, without its port, for the TURN URLs. */
    if (host != NULL && hlen > 0) {
        const char *end = host[0] == '[' ? memchr(host, ']', hlen) : memchr(host, ':', hlen);
        if (end != NULL)
            hlen = (size_t)(end - host) + (host[0] == '[');
        if (hlen < sizeof(ac->host)) {
            memcpy(ac->host, host, hlen);
            ac->host_len = hlen;
        }
    }
    ts_timer_init(&ac->ping, ts_ayame_on_ping);
    ts_timer_start(&w->loop, &ac->ping,
                   (uint64_t)ts_ayame_io_config(&ac->cl)->signaling_ping_interval * 1000);
    return TS_OK;
}

static void ts_ayame_on_ws_message(ts_ws_t *ws, int opcode, const uint8_t *data, size_t len)
{
    ts_ayame_conn_t *ac = ws->user;
    uint8_t limited = ac->cl.rate_limited;

    if (opcode != WS_OP_TEXT) {
        ts_ayame_fail(&ac->cl, WS_CLOSE_POLICY, "binary messages are not part of Ayame");
        return;
    }
    ts_ayame_on_message(&ac->cl, (const char *)data, len);
    /* The logic has no worker to count in (the fuzzer runs it); a client is
     * rate-limited once, and then closing: nothing more reaches it. */
    if (ac->cl.rate_limited && !limited)
        ts_metric_add(ws->conn->worker->metrics.sig_rate_limited[TS_SIG_AYAME], 1);
}

static void ts_ayame_on_fail(ts_ws_t *ws, unsigned code, const char *why)
{
    ts_ayame_conn_t *ac = ws->user;

    if (ac != NULL)
        ts_ayame_say_error(&ac->cl, why);
}

/* SIGTERM: a joined client hears bye (as if its peer had left) before the
 * WebSocket layer's Close 1001, so clients reconnect elsewhere at once. */
static void ts_ayame_on_shutdown(ts_ws_t *ws)
{
    ts_ayame_conn_t *ac = ws->user;
    static const char bye[] = "{\"type\":\"bye\"}";

    if (ac != NULL && ac->cl.state == TS_AYAME_JOINED)
        ts_ws_send(ws, WS_OP_TEXT, bye, sizeof(bye) - 1);
}

static void ts_ayame_on_ws_close(ts_ws_t *ws, unsigned code)
{
    ts_ayame_conn_t *ac = ws->user;
    ts_worker_t *w = ws->conn->worker;
    const ts_config_t *cfg = ts_server_config(w->server);
    char *body;

    if (ac == NULL)
        return;
    ts_timer_stop(&w->loop, &ac->ping);
    ts_webhook_cancel(ac->authn); /* its answer would find nobody */
    ts_ayame_leave(&ac->cl);
    if (cfg->disconnect_webhook_url != NULL && (body = ts_ayame_disconnect_body(&ac->cl))) {
        ts_webhook_post(cfg->disconnect_webhook_url, body, strlen(body), cfg->webhook_timeout, NULL,
                        NULL);
        free(body);
    }
    ts_ayame_client_free(&ac->cl);
    free(ac);
    ws->user = NULL;
}

static const ts_ws_endpoint_t ts_ayame_endpoint = {
    .path = "/signaling",
    .max_message = 0,   /* --ws-max-message */
    .max_fragments = 0, /* the default, 1,024 */
    .select_protocol = NULL,
    .on_open = ts_ayame_on_open,
    .on_message = ts_ayame_on_ws_message,
    .on_close = ts_ayame_on_ws_close,
    .on_fail = ts_ayame_on_fail,
    .on_shutdown = ts_ayame_on_shutdown,
};

void ts_http_ayame(ts_http_ctx_t *ctx)
{
    ts_ws_upgrade(ctx, &ts_ayame_endpoint);
}

/* --------------------------------------------------------------- bus -- */

/* The Ayame client of connection id on this worker, or NULL (gone). */
static ts_ayame_client_t *ts_ayame_find(ts_worker_t *w, uint64_t id)
{
    ts_conn_t *c = ts_idmap_get(&w->conns, id);
    ts_ws_t *ws;

    if (c == NULL || c->ops != &ts_ws_ops || (c->flags & TS_CONN_CLOSING))
        return NULL;
    ws = c->proto;
    if (ws == NULL || ws->endpoint != &ts_ayame_endpoint || ws->user == NULL)
        return NULL;
    return &((ts_ayame_conn_t *)ws->user)->cl;
}

static void ts_ayame_on_bus_notify(ts_worker_t *w, ts_bus_msg_t *msg)
{
    ts_ayame_client_t *cl = ts_ayame_find(w, msg->dst);

    if (cl != NULL)
        ts_ayame_on_notify(cl, msg->src, msg->data, msg->len);
}

static void ts_ayame_on_bus_relay(ts_worker_t *w, ts_bus_msg_t *msg)
{
    ts_ayame_client_t *cl = ts_ayame_find(w, msg->dst);

    if (cl != NULL)
        ts_ayame_on_relay(cl, msg->src, msg->data, msg->len);
}

static void *ts_ayame_rooms_new(void)
{
    ts_ayame_rooms_t *r = ts_calloc(1, sizeof(*r));

    ts_ayame_rooms_init(r);
    return r;
}

static void ts_ayame_rooms_destroy(void *ptr)
{
    ts_ayame_rooms_free(ptr);
    free(ptr);
}

static int ts_ayame_room_post(void *ctx, uint32_t type, uint64_t dst, uint64_t src,
                              const void *data, size_t len)
{
    ts_worker_t *w = ctx;

    return ts_bus_send(&w->server->bus, dst, ts_bus_msg_new(type, dst, src, data, (uint32_t)len));
}

static void ts_ayame_on_bus_room(ts_worker_t *w, ts_bus_msg_t *msg)
{
    ts_ayame_rooms_t *r =
        ts_worker_local(w, TS_LOCAL_AYAME, ts_ayame_rooms_new, ts_ayame_rooms_destroy);

    if (msg->type == TS_AYAME_MSG_JOIN)
        ts_ayame_rooms_join(r, msg->src, msg->data, msg->len, ts_ayame_room_post, w);
    else
        ts_ayame_rooms_leave(r, msg->src, msg->data, msg->len, ts_ayame_room_post, w);
}

void ts_ayame_worker_init(ts_worker_t *w)
{
    ts_webhook_global_init();
    ts_worker_on_message(w, TS_AYAME_MSG_JOIN, ts_ayame_on_bus_room);
    ts_worker_on_message(w, TS_AYAME_MSG_LEAVE, ts_ayame_on_bus_room);
    ts_worker_on_message(w, TS_AYAME_MSG_NOTIFY, ts_ayame_on_bus_notify);
    ts_worker_on_message(w, TS_AYAME_MSG_RELAY, ts_ayame_on_bus_relay);
}
