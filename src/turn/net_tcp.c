/*
 * net_tcp.c — TCP relays (RFC 6062) on a worker's loop.
 *
 * The relay is a listening TCP socket (net.c opens it with the UDP ones).
 * Peer connections, accepted on it or connected from its address, and the
 * clients' data connections are ts_conn_t with the "turn-pipe" protocol:
 * until ConnectionBind splices two of them a peer's bytes are held (up to
 * TS_TURN_PIPE_HOLD, then it is not read); after it, whatever one reads is
 * queued on the other, and one stops reading while the other has
 * TS_TURN_PIPE_HIGH unsent, until that is written (on_drain). The engine
 * hears of a pipe only when it connects, is accepted or closes.
 *
 * A data connection is a new TCP connection, which SO_REUSEPORT may give to
 * any worker. One whose ConnectionBind names another worker's CONNECTION-ID
 * is handed over: a dup of its socket and its unread bytes go on the bus,
 * and that worker reads the ConnectionBind again.
 */
#include "turn/glue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/common.h"
#include "core/log.h"
#include "core/server.h"

#define TS_TURN_PIPE_HIGH (256 * 1024) /* stop reading a side while the other has this unsent */
#define TS_TURN_PIPE_HOLD (64 * 1024)  /* bytes a peer may send before its ConnectionBind */

/* A turn-pipe connection's state (c->proto, owned: on_close frees). */
typedef struct {
    uint64_t other; /* the connection it is spliced to; 0: not yet */
    int connecting; /* an outgoing peer connection, not through yet */
} ts_turn_pipe_t;

/* A data connection handed to another worker (TS_TURN_MSG_MOVE's data). */
typedef struct {
    int fd;
    socklen_t peer_len;
    struct sockaddr_storage peer;
    uint8_t bytes[]; /* its unread input, from the ConnectionBind on */
} ts_turn_move_t;

static ts_conn_t *ts_turn_conn(ts_worker_t *w, uint64_t id)
{
    ts_conn_t *c = id != 0 ? ts_idmap_get(&w->conns, id) : NULL;

    return c != NULL && !(c->flags & TS_CONN_CLOSING) ? c : NULL;
}

/* Bytes from c to the connection it is spliced to; held until then. */
static int ts_turn_pipe_on_read(ts_conn_t *c)
{
    ts_turn_pipe_t *p = c->proto;
    ts_conn_t *o;

    if (p->other == 0) {
        if (c->in.len >= TS_TURN_PIPE_HOLD)
            ts_conn_pause_read(c);
        return TS_OK;
    }
    if ((o = ts_turn_conn(c->worker, p->other)) == NULL) {
        c->close_reason = "other side closed";
        return TS_ERR_PROTO;
    }
    ts_conn_write(o, ts_buf_head(&c->in), c->in.len);
    ts_buf_consume(&c->in, &c->worker->pool, c->in.len);
    if (o->out.len >= TS_TURN_PIPE_HIGH)
        ts_conn_pause_read(c);
    return TS_OK;
}

/* c's output is written: an outgoing connection is through, or the side
 * that was paused for c may read again. */
static void ts_turn_pipe_on_drain(ts_conn_t *c)
{
    ts_turn_pipe_t *p = c->proto;
    ts_turn_glue_t *g = ts_turn__glue(c->worker);
    ts_conn_t *o;
    int err = 0;
    socklen_t len = sizeof(err);

    if (p->connecting) {
        if (getsockopt(c->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
            ts_conn_close(c, "connect failed");
            return;
        }
        p->connecting = 0;
        turn_server_on_tcp_connected(g->engine, c->id, 1);
        return;
    }
    if ((o = ts_turn_conn(c->worker, p->other)) != NULL)
        ts_conn_resume_read(o);
}

/* The remote closed its side: what is queued for it still goes out (its
 * read side may be open), then the other connection follows (on_close). */
static void ts_turn_pipe_on_eof(ts_conn_t *c)
{
    ts_conn_close_after_write(c, "closed by the remote");
}

/* Shutting down: a peer or data connection belongs to an allocation, whose
 * relay the drain waits for; it goes with it (or at the drain deadline). */
static void ts_turn_pipe_on_shutdown(ts_conn_t *c)
{
    TS_UNUSED(c);
}

static void ts_turn_pipe_on_close(ts_conn_t *c)
{
    ts_turn_glue_t *g = ts_turn__glue(c->worker);

    turn_server_on_tcp_closed(g->engine, c->id);
    free(c->proto);
    c->proto = NULL;
}

static const ts_conn_ops_t ts_turn_pipe_ops = {
    .name = "turn-pipe",
    .kind = TS_PROTO_TURN,
    .conn_size = sizeof(ts_conn_t),
    .on_read = ts_turn_pipe_on_read,
    .on_eof = ts_turn_pipe_on_eof,
    .on_drain = ts_turn_pipe_on_drain,
    .on_shutdown = ts_turn_pipe_on_shutdown,
    .on_close = ts_turn_pipe_on_close,
};

static ts_conn_t *ts_turn_pipe_new(ts_worker_t *w, int fd, const struct sockaddr *peer)
{
    ts_conn_t *c = ts_conn_new(w, fd, peer, &ts_turn_pipe_ops, NULL);

    c->proto = ts_calloc(1, sizeof(ts_turn_pipe_t));
    c->flags |= TS_CONN_NOTIFY_DRAIN;
    return c;
}

void ts_turn__on_tcp_acceptable(ts_turn_relay_sock_t *r)
{
    ts_turn_glue_t *g = r->g;
    turn_relay_t id = r->id;

    for (int i = 0; i < 16; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(r->io.fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        ts_conn_t *c;

        if (fd < 0)
            return;
        c = ts_turn_pipe_new(g->w, fd, (struct sockaddr *)&ss);
        if (!(c->flags & TS_CONN_CLOSING) &&
            turn_server_on_tcp_accept(g->engine, id, (struct sockaddr *)&ss, c->id) == 0)
            ts_conn_close(c, "no permission for this peer");
        if ((size_t)id >= g->nrelays || g->relays[id] != r)
            return;
    }
}

int ts_turn__tcp_connect(void *ctx, turn_relay_t relay, const struct sockaddr *peer,
                         socklen_t peer_len, uint64_t *handle)
{
    ts_turn_glue_t *g = ctx;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    ts_turn_relay_sock_t *r;
    ts_conn_t *c;
    int fd;

    if (relay < 0 || (size_t)relay >= g->nrelays || (r = g->relays[relay]) == NULL || !r->tcp ||
        getsockname(r->io.fd, (struct sockaddr *)&ss, &len) < 0 ||
        (fd = ts_turn__bind(ss.ss_family, SOCK_STREAM, &ss, len)) < 0)
        return -1;
    if (connect(fd, peer, peer_len) < 0 && errno != EINPROGRESS) {
        ts_log_debug("turn: TCP relay connect: %s", strerror(errno));
        close(fd);
        return -1;
    }
    c = ts_turn_pipe_new(g->w, fd, peer);
    ((ts_turn_pipe_t *)c->proto)->connecting = 1;
    if (!(c->flags & TS_CONN_CLOSING) &&
        ts_io_start(&g->w->loop, &c->io, TS_IO_READ | TS_IO_WRITE) != TS_OK)
        ts_conn_close(c, "epoll_ctl failed");
    *handle = c->id;
    return 0;
}

void ts_turn__tcp_close(void *ctx, uint64_t handle)
{
    ts_turn_glue_t *g = ctx;
    ts_conn_t *c = ts_turn_conn(g->w, handle);

    if (c != NULL)
        ts_conn_close_after_write(c, "TCP relay closed");
}

void ts_turn__tcp_splice(void *ctx, uint64_t data, uint64_t peer)
{
    ts_turn_glue_t *g = ctx;
    ts_conn_t *d = ts_turn_conn(g->w, data), *p = ts_turn_conn(g->w, peer);
    ts_turn_pipe_t *dp;

    if (d == NULL || p == NULL || p->ops != &ts_turn_pipe_ops) {
        if (d != NULL)
            ts_conn_close(d, "peer connection gone");
        if (p != NULL)
            ts_conn_close(p, "data connection gone");
        return;
    }
    dp = ts_calloc(1, sizeof(*dp));
    dp->other = peer;
    ts_conn_set_ops(d, &ts_turn_pipe_ops, dp);
    d->flags |= TS_CONN_NOTIFY_DRAIN;
    ts_timer_stop(&g->w->loop, &d->timer); /* a relayed connection may idle */
    ((ts_turn_pipe_t *)p->proto)->other = data;
    /* What the peer sent before the bind. */
    if (ts_turn_pipe_on_read(p) != TS_OK)
        ts_conn_close(p, p->close_reason);
    else if (d->out.len < TS_TURN_PIPE_HIGH)
        ts_conn_resume_read(p);
}

/* Hand a plain TCP data connection to worker tag: its socket and the bytes
 * not read yet, the ConnectionBind first. */
int ts_turn__tcp_move(void *ctx, const turn_client_t *client, unsigned tag)
{
    ts_turn_glue_t *g = ctx;
    ts_server_t *srv = g->w->server;
    ts_conn_t *c = ts_turn_conn(g->w, client->conn_id);
    ts_bus_msg_t *msg;
    ts_turn_move_t *mv;
    int fd;

    if (c == NULL || c->tls != NULL || c->ops != &ts_turn_stream_ops || (int)tag >= srv->nworkers ||
        (int)tag == g->w->index)
        return -1;
    msg = ts_bus_msg_new(TS_TURN_MSG_MOVE, 0, c->id, NULL, (uint32_t)(sizeof(*mv) + c->in.len));
    mv = (ts_turn_move_t *)msg->data;
    memcpy(mv->bytes, ts_buf_head(&c->in), c->in.len);
    ts_peer_to_sockaddr(&c->peer, &mv->peer, &mv->peer_len);
    if ((fd = mv->fd = dup(c->io.fd)) < 0) {
        ts_bus_msg_free(msg);
        return -1;
    }
    if (ts_bus_send_worker(&srv->bus, (int)tag, msg) != TS_OK) {
        close(fd); /* the bus freed the message */
        return -1;
    }
    ts_conn_close(c, "moved to its allocation's worker");
    return 0;
}

void ts_turn__on_move(ts_worker_t *w, ts_bus_msg_t *msg)
{
    ts_turn_move_t *mv = (ts_turn_move_t *)msg->data;
    size_t n = msg->len - sizeof(*mv);
    ts_conn_t *c = ts_conn_new(w, mv->fd, (struct sockaddr *)&mv->peer, &ts_turn_stream_ops, NULL);

    if (c->flags & TS_CONN_CLOSING)
        return;
    ts_buf_append(&c->in, &w->pool, mv->bytes, n);
    if (ts_turn__stream_on_read(c) != TS_OK)
        ts_conn_close(c, c->close_reason);
}
