/*
 * peerjs.c — the PeerJS server protocol (as the npm `peer` PeerServer
 * speaks it) mounted at /peerjs: the HTTP routes, the WebSocket endpoint
 * /peerjs/peerjs?key=K&id=I&token=T, and the client's side of the bus.
 *
 * A client's connection lives on the worker that accepted it; its id's
 * registry entry lives on the id's home worker (peerjs_home.c). The
 * connection registers there and waits for the answer (OPEN, ID-TAKEN or
 * ERROR) before anything it sends is relayed, so a client can never speak
 * under an id that turns out not to be its own.
 */
#include "signaling/peerjs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "core/common.h"
#include "core/log.h"
#include "core/ratelimit.h"
#include "core/server.h"
#include "http/response.h"
#include "ws/ws.h"

#define TS_PEERJS_STASH_MAX   32           /* messages sent before OPEN, kept */
#define TS_PEERJS_STASH_BYTES (256 * 1024) /* and their bytes */
#define TS_PEERJS_E_RATE      "Rate limit exceeded: too many messages"

enum {
    TS_PEERJS_S_PENDING = 1, /* REGISTER sent; what the client sends waits */
    TS_PEERJS_S_OPEN,        /* registered: messages are relayed */
    TS_PEERJS_S_GONE,        /* refused, taken over or timed out: owns no entry */
};

/* A message the client sent before its registration was answered. */
typedef struct ts_peerjs_stash_s ts_peerjs_stash_t;
struct ts_peerjs_stash_s {
    ts_peerjs_stash_t *next;
    size_t len;
    uint8_t data[];
};

/* Per-connection state, ws->user; freed in on_close. */
typedef struct {
    ts_ws_t *ws;
    ts_timer_t alive; /* --peerjs-alive-timeout, lazy: checks last_seen */
    uint64_t last_seen;
    ts_ratelimit_bucket_t rate; /* --signaling-rate */
    int state;
    ts_peerjs_stash_t *stash; /* owned list, oldest first */
    ts_peerjs_stash_t **stash_tail;
    size_t nstash, stash_bytes;
    ts_peerjs_params_t p;
} ts_peerjs_client_t;

static const ts_ws_endpoint_t ts_peerjs_endpoint;

static ts_worker_t *ts_peerjs_worker(const ts_peerjs_client_t *cl)
{
    return cl->ws->conn->worker;
}

static void ts_peerjs_log(const ts_peerjs_client_t *cl, const char *what)
{
    char peer[TS_ADDRSTRLEN];

    if (ts_log_enabled(TS_LOG_DEBUG))
        ts_log_debug("conn=" TS_ID_FMT " peer=%s peerjs id=%s: %s", TS_ID_ARG(cl->ws->conn->id),
                     ts_peer_str(&cl->ws->conn->peer, peer, sizeof(peer)), cl->p.id, what);
}

/* Post to the home worker of id. */
static int ts_peerjs_to_home(ts_worker_t *w, const ts_peerjs_hdr_t *h, const char *id,
                             const char *aux, const char *body)
{
    ts_bus_msg_t *m = ts_peerjs_msg_new(TS_PEERJS_MSG_HOME, 0, h, id, aux, body);

    return ts_bus_send_worker(&w->server->bus, ts_peerjs_home(id, h->id_len, w->server->nworkers),
                              m);
}

/* ------------------------------------------------------ io for msg.c -- */

static void ts_peerjs_io_send(void *ctx, const char *text, size_t len)
{
    ts_peerjs_client_t *cl = ctx;

    ts_ws_send(cl->ws, WS_OP_TEXT, text, len);
}

static void ts_peerjs_io_close(void *ctx, unsigned code, const char *reason)
{
    ts_peerjs_client_t *cl = ctx;

    ts_ws_close(cl->ws, code, reason);
}

static ts_peerjs_client_t *ts_peerjs_client_find(ts_worker_t *w, uint64_t id);

/*
 * When this worker is dst's home and holds dst's open connection (always,
 * with one worker), deliver at once what the home and the client handler
 * would do through two posts to this worker: no copies, no queue. Only when
 * none of this worker's own posts waits, so no message can overtake an
 * earlier one (all of a pair's traffic then runs on this worker). 0: take
 * the bus, which also handles every other case (absent dst, a full send
 * queue) as before.
 */
static int ts_peerjs_relay_here(ts_worker_t *w, const char *dst, size_t dst_len, const char *text,
                                size_t len)
{
    ts_peerjs_client_t *to;
    uint64_t conn;

    if (!ts_inbox_local_idle(&w->inbox) || (conn = ts_peerjs_home_conn(w, dst, dst_len)) == 0)
        return 0;
    to = ts_peerjs_client_find(w, conn);
    if (to == NULL || to->state != TS_PEERJS_S_OPEN)
        return 0;
    return ts_ws_send(to->ws, WS_OP_TEXT, text, len) == TS_OK;
}

static int ts_peerjs_io_relay(void *ctx, int type, const char *dst, size_t dst_len,
                              const char *text, size_t len)
{
    ts_peerjs_client_t *cl = ctx;
    ts_peerjs_hdr_t h = {.body_len = (uint32_t)len,
                         .id_len = (uint16_t)dst_len,
                         .aux_len = (uint16_t)cl->p.id_len,
                         .op = TS_PEERJS_OP_RELAY,
                         .type = (uint8_t)type};

    if (ts_peerjs_relay_here(ts_peerjs_worker(cl), dst, dst_len, text, len))
        return TS_OK;
    return ts_peerjs_to_home(ts_peerjs_worker(cl), &h, dst, cl->p.id, text);
}

static void ts_peerjs_io_log(void *ctx, const char *what)
{
    ts_peerjs_log(ctx, what);
}

static const ts_peerjs_io_t ts_peerjs_io = {
    .send = ts_peerjs_io_send,
    .close = ts_peerjs_io_close,
    .relay = ts_peerjs_io_relay,
    .log = ts_peerjs_io_log,
};

/* ---------------------------------------------------------- client -- */

static void ts_peerjs_act(ts_peerjs_client_t *cl, const uint8_t *data, size_t len)
{
    if (ts_peerjs_on_message(&ts_peerjs_io, cl, cl->p.id, cl->p.id_len, data, len) == TS_OK)
        cl->last_seen = ts_loop_now(&ts_peerjs_worker(cl)->loop);
}

static void ts_peerjs_stash_clear(ts_peerjs_client_t *cl)
{
    ts_peerjs_stash_t *s, *next;

    for (s = cl->stash; s != NULL; s = next) {
        next = s->next;
        free(s);
    }
    cl->stash = NULL;
    cl->stash_tail = &cl->stash;
    cl->nstash = cl->stash_bytes = 0;
}

static void ts_peerjs_unregister(ts_peerjs_client_t *cl);

/* --signaling-rate: every message counts, HEARTBEATs and those sent before
 * OPEN too. Past it the client gets an ERROR and is closed (1008); what it
 * sends after that is ignored. */
static int ts_peerjs_rate_ok(ts_peerjs_client_t *cl)
{
    ts_worker_t *w = ts_peerjs_worker(cl);
    const ts_config_t *cfg = ts_server_config(w->server);
    char *text;
    size_t len;

    if (ts_ratelimit_take(&cl->rate, cfg->signaling_rate, cfg->signaling_burst,
                          ts_loop_now(&w->loop)))
        return 1;
    ts_peerjs_log(cl, "past --signaling-rate: closed");
    ts_metric_add(w->metrics.sig_rate_limited[TS_SIG_PEERJS], 1);
    text = ts_peerjs_error_text(TS_PEERJS_ERROR, TS_PEERJS_E_RATE, &len);
    ts_ws_send(cl->ws, WS_OP_TEXT, text, len);
    free(text);
    ts_peerjs_unregister(cl);
    ts_ws_close(cl->ws, WS_CLOSE_POLICY, TS_PEERJS_E_RATE);
    return 0;
}

static void ts_peerjs_on_ws_message(ts_ws_t *ws, int opcode, const uint8_t *data, size_t len)
{
    ts_peerjs_client_t *cl = ws->user;
    ts_peerjs_stash_t *s;

    if (opcode != WS_OP_TEXT) {
        ts_peerjs_log(cl, "binary message");
        ts_ws_close(ws, WS_CLOSE_UNSUPPORTED, "binary messages are not supported");
        return;
    }
    if ((cl->state == TS_PEERJS_S_OPEN || cl->state == TS_PEERJS_S_PENDING) &&
        !ts_peerjs_rate_ok(cl))
        return;
    if (cl->state == TS_PEERJS_S_OPEN) {
        ts_peerjs_act(cl, data, len);
        return;
    }
    if (cl->state != TS_PEERJS_S_PENDING)
        return;
    if (cl->nstash >= TS_PEERJS_STASH_MAX || cl->stash_bytes + len > TS_PEERJS_STASH_BYTES) {
        ts_peerjs_log(cl, "too much sent before OPEN");
        ts_ws_close(ws, WS_CLOSE_POLICY, "too much sent before OPEN");
        return;
    }
    s = ts_malloc(sizeof(*s) + len);
    s->next = NULL;
    s->len = len;
    memcpy(s->data, data, len);
    *cl->stash_tail = s;
    cl->stash_tail = &s->next;
    cl->nstash++;
    cl->stash_bytes += len;
}

/* The id stops being this connection's at its home (once: state GONE). */
static void ts_peerjs_unregister(ts_peerjs_client_t *cl)
{
    ts_peerjs_hdr_t h = {
        .conn = cl->ws->conn->id, .id_len = (uint16_t)cl->p.id_len, .op = TS_PEERJS_OP_UNREGISTER};

    if (cl->state == TS_PEERJS_S_PENDING || cl->state == TS_PEERJS_S_OPEN) {
        if (ts_peerjs_to_home(ts_peerjs_worker(cl), &h, cl->p.id, NULL, NULL) != TS_OK)
            ts_log_warn("peerjs: bus full, id %s stays registered until it reconnects", cl->p.id);
    }
    cl->state = TS_PEERJS_S_GONE;
}

/* PeerServer drops a client that has been silent for alive_timeout. */
static void ts_peerjs_on_alive_timer(ts_loop_t *loop, ts_timer_t *t)
{
    ts_peerjs_client_t *cl = ts_container_of(t, ts_peerjs_client_t, alive);
    const ts_config_t *cfg = ts_server_config(ts_peerjs_worker(cl)->server);
    uint64_t limit = (uint64_t)cfg->peerjs_alive_timeout * 1000;
    uint64_t idle = ts_loop_now(loop) - cl->last_seen;

    if (idle < limit) {
        ts_timer_start(loop, t, limit - idle);
        return;
    }
    ts_peerjs_log(cl, "silent past --peerjs-alive-timeout: dropped");
    ts_peerjs_unregister(cl);
    ts_ws_close(cl->ws, WS_CLOSE_NORMAL, "alive timeout");
}

/* Answer later, through the bus: on_open runs before the 101 is queued. */
static int ts_peerjs_refuse_later(ts_peerjs_client_t *cl, const char *msg)
{
    size_t len;
    char *text = ts_peerjs_error_text(TS_PEERJS_ERROR, msg, &len);
    ts_peerjs_hdr_t h = {
        .conn = cl->ws->conn->id, .body_len = (uint32_t)len, .op = TS_PEERJS_OP_REFUSE};
    ts_bus_msg_t *m = ts_peerjs_msg_new(TS_PEERJS_MSG_CLIENT, h.conn, &h, NULL, NULL, text);
    ts_worker_t *w = ts_peerjs_worker(cl);

    free(text);
    ts_peerjs_log(cl, msg);
    cl->state = TS_PEERJS_S_GONE;
    return ts_bus_send(&w->server->bus, h.conn, m);
}

static int ts_peerjs_on_open(ts_ws_t *ws, const http_request_t *req)
{
    ts_peerjs_client_t *cl = ts_calloc(1, sizeof(*cl));
    ts_worker_t *w = ws->conn->worker;
    const ts_config_t *cfg = ts_server_config(w->server);
    ts_peerjs_hdr_t h = {.conn = ws->conn->id, .op = TS_PEERJS_OP_REGISTER};
    int rc;

    cl->ws = ws;
    cl->stash_tail = &cl->stash;
    cl->last_seen = ts_loop_now(&w->loop);
    ts_ratelimit_init(&cl->rate, cfg->signaling_burst, cl->last_seen);
    ts_timer_init(&cl->alive, ts_peerjs_on_alive_timer);
    if (ts_peerjs_parse_query(req->query.base, req->query.len, &cl->p) != TS_OK) {
        cl->p.id[0] = '\0';
        rc = ts_peerjs_refuse_later(cl, TS_PEERJS_E_WS_PARAMETERS);
    } else if (strcmp(cl->p.key, cfg->peerjs_key) != 0) {
        rc = ts_peerjs_refuse_later(cl, TS_PEERJS_E_INVALID_KEY);
    } else {
        h.id_len = (uint16_t)cl->p.id_len;
        h.aux_len = (uint16_t)cl->p.token_len;
        cl->state = TS_PEERJS_S_PENDING;
        rc = ts_peerjs_to_home(w, &h, cl->p.id, cl->p.token, NULL);
    }
    if (rc != TS_OK) {
        free(cl);
        return rc;
    }
    ws->user = cl;
    ts_timer_start(&w->loop, &cl->alive, (uint64_t)cfg->peerjs_alive_timeout * 1000);
    return TS_OK;
}

static void ts_peerjs_on_ws_close(ts_ws_t *ws, unsigned code)
{
    ts_peerjs_client_t *cl = ws->user;

    TS_UNUSED(code);
    if (cl == NULL)
        return;
    ts_timer_stop(&ws->conn->worker->loop, &cl->alive);
    ts_peerjs_unregister(cl);
    ts_peerjs_stash_clear(cl);
    free(cl);
    ws->user = NULL;
}

static const ts_ws_endpoint_t ts_peerjs_endpoint = {
    .path = "/peerjs/peerjs",
    .max_message = TS_PEERJS_MAX_MESSAGE,
    .max_fragments = 0,
    .select_protocol = NULL,
    .on_open = ts_peerjs_on_open,
    .on_message = ts_peerjs_on_ws_message,
    .on_close = ts_peerjs_on_ws_close,
};

/* ------------------------------------------------ client's bus side -- */

/* The PeerJS client on connection id, if it is still open on w. */
static ts_peerjs_client_t *ts_peerjs_client_find(ts_worker_t *w, uint64_t id)
{
    ts_conn_t *c = ts_idmap_get(&w->conns, id);
    ts_ws_t *ws;

    if (c == NULL || c->ops != &ts_ws_ops || (c->flags & TS_CONN_CLOSING))
        return NULL;
    ws = c->proto;
    if (ws == NULL || ws->endpoint != &ts_peerjs_endpoint)
        return NULL;
    return ws->user;
}

static void ts_peerjs_on_registered(ts_peerjs_client_t *cl)
{
    static const char open[] = "{\"type\":\"OPEN\"}";
    ts_peerjs_stash_t *s, *next;

    if (cl->state != TS_PEERJS_S_PENDING)
        return;
    cl->state = TS_PEERJS_S_OPEN;
    ts_peerjs_log(cl, "registered");
    ts_ws_send(cl->ws, WS_OP_TEXT, open, sizeof(open) - 1);
    s = cl->stash;
    cl->stash = NULL;
    for (; s != NULL; s = next) {
        next = s->next;
        if (cl->state == TS_PEERJS_S_OPEN)
            ts_peerjs_act(cl, s->data, s->len);
        free(s);
    }
    ts_peerjs_stash_clear(cl);
}

/* A message for a connection that is gone (or going) goes back to dst's
 * home, which delivers it to dst's newer connection or keeps it waiting. */
static void ts_peerjs_requeue(ts_worker_t *w, uint64_t conn, const ts_peerjs_view_t *v)
{
    ts_peerjs_hdr_t h = v->h;

    if (v->h.type == TS_PEERJS_LEAVE || v->h.type == TS_PEERJS_EXPIRE || v->h.id_len == 0)
        return; /* would be dropped for an absent peer anyway */
    h.op = TS_PEERJS_OP_REQUEUE;
    h.conn = conn;
    if (ts_peerjs_to_home(w, &h, v->id, v->aux, v->body) != TS_OK)
        ts_log_debug("peerjs: bus full, message for a departed peer dropped");
}

static void ts_peerjs_client_on_message(ts_worker_t *w, ts_bus_msg_t *msg)
{
    ts_peerjs_client_t *cl = ts_peerjs_client_find(w, msg->dst);
    ts_peerjs_view_t v;

    if (ts_peerjs_msg_view(msg, &v) != TS_OK)
        return;
    switch (v.h.op) {
    case TS_PEERJS_OP_OPEN:
        if (cl != NULL)
            ts_peerjs_on_registered(cl);
        break;
    case TS_PEERJS_OP_REFUSE:
        if (cl == NULL)
            break;
        ts_peerjs_log(cl, "refused");
        cl->state = TS_PEERJS_S_GONE;
        ts_ws_send(cl->ws, WS_OP_TEXT, v.body, v.h.body_len);
        ts_ws_close(cl->ws, WS_CLOSE_POLICY, NULL);
        break;
    case TS_PEERJS_OP_DELIVER:
        if (cl == NULL || cl->state != TS_PEERJS_S_OPEN ||
            ts_ws_send(cl->ws, WS_OP_TEXT, v.body, v.h.body_len) != TS_OK)
            ts_peerjs_requeue(w, msg->dst, &v);
        break;
    case TS_PEERJS_OP_KICK:
        if (cl == NULL)
            break;
        ts_peerjs_log(cl, "taken over by a new connection with the same token");
        cl->state = TS_PEERJS_S_GONE;
        ts_ws_close(cl->ws, WS_CLOSE_NORMAL, "replaced by a new connection");
        break;
    }
}

void ts_peerjs_worker_init(ts_worker_t *w)
{
    ts_peerjs_home_init(w);
    ts_worker_on_message(w, TS_PEERJS_MSG_CLIENT, ts_peerjs_client_on_message);
}

/* ------------------------------------------------------------ HTTP -- */

/* CORS as PeerServer's `cors({origin: true})`: the Origin is reflected. */
static void ts_peerjs_cors(const ts_http_ctx_t *ctx, char *out, size_t cap, const char *more)
{
    const http_header_t *o = http_find_header(ctx->req, "Origin");
    int n = 0;

    if (o != NULL && o->value.len > 0 && o->value.len < 512)
        n = snprintf(out, cap, "Access-Control-Allow-Origin: %.*s\r\n", (int)o->value.len,
                     o->value.base);
    snprintf(out + n, cap - (size_t)n, "Vary: Origin\r\n%s", more);
}

static void ts_peerjs_preflight(ts_http_ctx_t *ctx)
{
    const http_header_t *rh = http_find_header(ctx->req, "Access-Control-Request-Headers");
    char more[800], head[1400];

    more[0] = '\0';
    if (rh != NULL && rh->value.len < 512)
        snprintf(more, sizeof(more),
                 "Access-Control-Allow-Headers: %.*s\r\nVary: Access-Control-Request-Headers\r\n",
                 (int)rh->value.len, rh->value.base);
    strcat(more, "Access-Control-Allow-Methods: GET,HEAD,PUT,PATCH,POST,DELETE\r\n");
    ts_peerjs_cors(ctx, head, sizeof(head), more);
    ts_http_respond(ctx, 204, NULL, head, NULL, 0);
}

static void ts_peerjs_banner(ts_http_ctx_t *ctx, const char *cors)
{
    static const char banner[] =
        "{\"name\":\"PeerJS Server\",\"description\":\"A server side element to broker "
        "connections between PeerJS clients.\",\"website\":\"https://peerjs.com/\"}";

    ts_http_respond(ctx, 200, "application/json; charset=utf-8", cors, banner, sizeof(banner) - 1);
}

/* A fresh id: a random UUID, as PeerServer's randomUUID(). */
static void ts_peerjs_new_id(ts_http_ctx_t *ctx, const char *cors)
{
    unsigned char r[16];
    char id[37];

    if (RAND_bytes(r, sizeof(r)) != 1) {
        ts_http_respond_error(ctx, 500, "no randomness");
        return;
    }
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(id, sizeof(id), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
    ts_http_respond(ctx, 200, "text/html; charset=utf-8", cors, id, 36);
}

static void ts_peerjs_peers(ts_http_ctx_t *ctx, const char *cors, http_str_t key)
{
    ts_server_t *s = ctx->hc->conn.worker->server;
    const ts_config_t *cfg = ts_server_config(s);
    size_t len;
    char *list;

    /* PeerServer lists for any key; the list of ids is only for this one. */
    if (!cfg->peerjs_allow_discovery || key.len != strlen(cfg->peerjs_key) ||
        memcmp(key.base, cfg->peerjs_key, key.len) != 0) {
        ts_http_respond(ctx, 401, "text/plain; charset=utf-8", cors, "Unauthorized", 12);
        return;
    }
    list = ts_peerjs_home_list(s, &len);
    ts_http_respond(ctx, 200, "application/json; charset=utf-8", cors, list, len);
    free(list);
}

static int ts_peerjs_is(http_str_t s, const char *lit)
{
    size_t n = strlen(lit);

    /* Express routes match with or without one trailing slash. */
    if (s.len > 0 && s.base[s.len - 1] == '/')
        s.len--;
    return s.len == n && memcmp(s.base, lit, n) == 0;
}

void ts_http_peerjs(ts_http_ctx_t *ctx)
{
    http_str_t rest = {ctx->req->path.base + 7, ctx->req->path.len - 7}, key, what;
    const char *slash;
    char cors[700];
    int method = ctx->req->method;

    /* Everything under /peerjs is ours; /peerjsx and the like are nobody's. */
    if (rest.len > 0 && rest.base[0] != '/') {
        ts_http_respond_error(ctx, 404, "not found");
        return;
    }
    /* Clients with path "/peerjs" open /peerjs/peerjs; those with the
     * default path "/" open /peerjs (and ask /peerjs/id: the default key). */
    if ((rest.len <= 1 || ts_peerjs_is(rest, "/peerjs")) && (ctx->req->flags & HTTP_F_UPGRADE)) {
        ts_ws_upgrade(ctx, &ts_peerjs_endpoint);
        return;
    }
    if (method == HTTP_OPTIONS) {
        ts_peerjs_preflight(ctx);
        return;
    }
    ts_peerjs_cors(ctx, cors, sizeof(cors), "");
    if (method != HTTP_GET && method != HTTP_HEAD) {
        ts_http_respond(ctx, 404, "text/plain; charset=utf-8", cors, "Not Found", 9);
        return;
    }
    if (rest.len <= 1) {
        ts_peerjs_banner(ctx, cors);
        return;
    }
    /* /KEY/id and /KEY/peers (PeerServer hands out ids whatever the key),
     * and /id, /peers for clients with the default path and key. */
    slash = memchr(rest.base + 1, '/', rest.len - 1);
    if (slash != NULL && slash < rest.base + rest.len - 1) {
        what.base = slash;
        what.len = rest.len - (size_t)(slash - rest.base);
        key.base = rest.base + 1;
        key.len = (size_t)(slash - key.base);
    } else {
        what = rest;
        key.base = "peerjs";
        key.len = 6;
    }
    if (key.len > 0 && ts_peerjs_is(what, "/id")) {
        ts_peerjs_new_id(ctx, cors);
        return;
    }
    if (key.len > 0 && ts_peerjs_is(what, "/peers")) {
        ts_peerjs_peers(ctx, cors, key);
        return;
    }
    ts_http_respond(ctx, 404, "text/plain; charset=utf-8", cors, "Not Found", 9);
}
