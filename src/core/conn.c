#include "core/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/bus.h"
#include "core/common.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/worker.h"
#include "tls/tls.h"

/* After a graceful close: how long and how much input to discard. */
#define TS_LINGER_MS    2000
#define TS_LINGER_BYTES (1024 * 1024)
/* How long a closing connection may take to accept our last bytes. */
#define TS_CLOSE_WRITE_MS 5000

static void ts_conn_free(ts_conn_t *c);

static void ts_conn_update_interest(ts_conn_t *c)
{
    uint32_t ev = 0;

    if (c->flags & TS_CONN_CLOSING)
        return;
    if (!(c->flags & (TS_CONN_READ_PAUSED | TS_CONN_EOF)))
        ev |= TS_IO_READ;
    if (c->out.len > 0 || (c->flags & TS_CONN_TLS_WANT_W))
        ev |= TS_IO_WRITE;
    if (ts_io_start(&c->worker->loop, &c->io, ev) != TS_OK)
        ts_conn_close(c, "epoll_ctl failed");
}

static void ts_conn_start_linger(ts_conn_t *c)
{
    /*
     * Closing a socket with unread input makes the kernel send RST, which can
     * destroy the response still in flight (the client sees "connection
     * reset" instead of our 413). So shut the write side and read until the
     * peer closes, for a bounded time and volume, as nginx does.
     */
    if (c->tls != NULL)
        ts_tls_shutdown(c->tls);
    if (shutdown(c->io.fd, SHUT_WR) < 0) {
        ts_conn_close(c, c->close_reason);
        return;
    }
    c->flags |= TS_CONN_LINGER;
    c->flags &= ~TS_CONN_READ_PAUSED;
    ts_buf_release(&c->in, &c->worker->pool);
    ts_conn_set_timeout(c, TS_LINGER_MS);
    ts_conn_update_interest(c);
}

void ts_conn_flush(ts_conn_t *c)
{
    ts_worker_t *w = c->worker;

    if (c->flags & TS_CONN_CLOSING)
        return;
    while (c->out.len > 0) {
        ssize_t n;
        if (c->tls != NULL) {
            int want_write = 0;
            const char *why = NULL;
            if (!ts_tls_handshake_done(c->tls))
                break; /* the handshake runs from the read side */
            n = ts_tls_write(c->tls, ts_buf_head(&c->out), c->out.len, &want_write, &why);
            if (n == TS_ERR_AGAIN)
                break;
            if (n < 0) {
                ts_conn_close(c, why ? why : "TLS write failed");
                return;
            }
        } else {
            n = send(c->io.fd, ts_buf_head(&c->out), c->out.len, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            if (n <= 0) {
                ts_conn_close(c, "write failed");
                return;
            }
        }
        ts_metric_add(w->metrics.bytes_out, (uint64_t)n);
        ts_buf_consume(&c->out, &w->pool, (size_t)n);
    }
    if (c->out.len == 0) {
        if ((c->flags & TS_CONN_CLOSE_AFTER) && !(c->flags & TS_CONN_LINGER)) {
            ts_conn_start_linger(c);
            return;
        }
        if ((c->flags & TS_CONN_NOTIFY_DRAIN) && c->ops->on_drain != NULL) {
            c->ops->on_drain(c);
            if (c->flags & TS_CONN_CLOSING)
                return;
        }
    }
    ts_conn_update_interest(c);
}

void ts_conn_write(ts_conn_t *c, const void *data, size_t len)
{
    if (c->flags & (TS_CONN_CLOSING | TS_CONN_LINGER))
        return;
    ts_buf_append(&c->out, &c->worker->pool, data, len);
    /* Inside a read the caller flushes once at the end; elsewhere, flush at
     * the end of this loop turn so a burst leaves in one write. */
    if (!(c->flags & TS_CONN_IN_READ))
        ts_defer(&c->worker->loop, &c->defer);
}

static void ts_conn_linger_read(ts_conn_t *c)
{
    char discard[4096];
    ssize_t n = recv(c->io.fd, discard, sizeof(discard), 0);

    if (n > 0) {
        ts_metric_add(c->worker->metrics.bytes_in, (uint64_t)n);
        c->discarded += (uint32_t)n;
        if (c->discarded >= TS_LINGER_BYTES)
            ts_conn_close(c, c->close_reason);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    ts_conn_close(c, c->close_reason ? c->close_reason : "closed");
}

/*
 * Read what the socket (or the TLS session) has: bytes, 0 at end of stream,
 * TS_ERR_AGAIN, or another error with *why set.
 */
static ssize_t ts_conn_recv(ts_conn_t *c, const char **why)
{
    ts_worker_t *w = c->worker;
    ssize_t n, total = 0;

    if (c->tls == NULL) {
        ts_buf_reserve(&c->in, &w->pool, 4096);
        n = recv(c->io.fd, ts_buf_tail(&c->in), ts_buf_room(&c->in), 0);
        if (n > 0) {
            c->in.len += (uint32_t)n;
            return n;
        }
        if (n == 0)
            return 0;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return TS_ERR_AGAIN;
        *why = errno == ECONNRESET ? "reset by peer" : "read failed";
        return TS_ERR_IO;
    }

    c->flags &= ~(TS_CONN_TLS_WANT_W | TS_CONN_READ_AGAIN);
    if (!ts_tls_handshake_done(c->tls)) {
        int want_write = 0;
        int rc = ts_tls_handshake(c->tls, &want_write, why);
        if (rc == TS_ERR_AGAIN) {
            if (want_write)
                c->flags |= TS_CONN_TLS_WANT_W;
            return TS_ERR_AGAIN;
        }
        if (rc != 1)
            return rc == TS_ERR_CLOSED ? 0 : rc;
        /* Anything queued while the handshake ran can go now. */
        if (c->out.len > 0)
            ts_defer(&w->loop, &c->defer);
    }
    /* A TLS record can hold more than the room we offer: take up to 8
     * reads' worth now and come back for the rest at the end of the turn. */
    for (int i = 0; i < 8; i++) {
        int want_write = 0;
        ts_buf_reserve(&c->in, &w->pool, 4096);
        n = ts_tls_read(c->tls, ts_buf_tail(&c->in), ts_buf_room(&c->in), &want_write, why);
        if (n > 0) {
            c->in.len += (uint32_t)n;
            total += n;
            continue;
        }
        if (n == TS_ERR_AGAIN) {
            if (want_write)
                c->flags |= TS_CONN_TLS_WANT_W;
            return total > 0 ? total : TS_ERR_AGAIN;
        }
        if (total > 0)
            return total; /* report the end on the next read */
        return n == TS_ERR_CLOSED ? 0 : n;
    }
    if (ts_tls_pending(c->tls) > 0) {
        c->flags |= TS_CONN_READ_AGAIN;
        ts_defer(&w->loop, &c->defer);
    }
    return total;
}

static void ts_conn_read(ts_conn_t *c)
{
    ts_worker_t *w = c->worker;
    const char *why = NULL;
    ssize_t n;
    int rc;

    if (c->flags & TS_CONN_LINGER) {
        ts_conn_linger_read(c);
        return;
    }
    n = ts_conn_recv(c, &why);
    if (n > 0) {
        ts_metric_add(w->metrics.bytes_in, (uint64_t)n);
        if (c->flags & TS_CONN_CLOSE_AFTER) {
            ts_buf_release(&c->in, &w->pool);
            return;
        }
        c->flags |= TS_CONN_IN_READ;
        rc = c->ops->on_read(c);
        c->flags &= ~TS_CONN_IN_READ;
        if (rc != TS_OK) {
            ts_conn_close(c, c->close_reason ? c->close_reason : ts_strerror(rc));
            return;
        }
        if (c->in.len == 0)
            ts_buf_release(&c->in, &w->pool);
        ts_conn_flush(c);
        return;
    }
    if (n < 0) {
        if (c->in.len == 0)
            ts_buf_release(&c->in, &w->pool);
        if (n == TS_ERR_AGAIN) {
            if (c->flags & TS_CONN_TLS_WANT_W)
                ts_conn_update_interest(c);
            return;
        }
        ts_conn_close(c, why ? why : "read failed");
        return;
    }
    /* n == 0: the peer closed its write side. */
    if (c->in.len == 0)
        ts_buf_release(&c->in, &w->pool);
    c->flags |= TS_CONN_EOF;
    if (c->ops->on_eof != NULL) {
        c->flags |= TS_CONN_IN_READ;
        c->ops->on_eof(c);
        c->flags &= ~TS_CONN_IN_READ;
        if (!(c->flags & TS_CONN_CLOSING))
            ts_conn_flush(c);
    } else {
        ts_conn_close(c, "peer closed");
    }
}

static void ts_conn_on_io(ts_loop_t *loop, ts_io_t *io, uint32_t events)
{
    ts_conn_t *c = ts_container_of(io, ts_conn_t, io);

    if (events & EPOLLOUT) {
        if (c->flags & TS_CONN_TLS_WANT_W) {
            /* The TLS read side (or handshake) was waiting to write. */
            c->flags &= ~TS_CONN_TLS_WANT_W;
            ts_conn_read(c);
            if (c->flags & TS_CONN_CLOSING)
                return;
        }
        ts_conn_flush(c);
        if (c->flags & TS_CONN_CLOSING)
            return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        if (!(c->flags & TS_CONN_READ_PAUSED) || (events & (EPOLLHUP | EPOLLERR)))
            ts_conn_read(c);
    }
}

static void ts_conn_on_timer(ts_loop_t *loop, ts_timer_t *t)
{
    ts_conn_t *c = ts_container_of(t, ts_conn_t, timer);

    if (c->flags & (TS_CONN_LINGER | TS_CONN_CLOSE_AFTER)) {
        /* Lingering ended, or a peer that does not read kept us from
         * writing our last words: give up on it. */
        ts_conn_close(c, c->close_reason ? c->close_reason : "close timeout");
        return;
    }
    if (c->ops->on_timeout != NULL) {
        c->ops->on_timeout(c);
        if (!(c->flags & TS_CONN_CLOSING))
            ts_conn_flush(c);
    } else {
        ts_conn_close(c, "timeout");
    }
}

static void ts_conn_on_deferred(ts_loop_t *loop, ts_defer_t *d)
{
    ts_conn_t *c = ts_container_of(d, ts_conn_t, defer);

    if (c->flags & TS_CONN_CLOSING) {
        ts_conn_free(c);
        return;
    }
    if ((c->flags & TS_CONN_READ_AGAIN) && !(c->flags & TS_CONN_READ_PAUSED)) {
        c->flags &= ~TS_CONN_READ_AGAIN;
        ts_conn_read(c);
        if (c->flags & TS_CONN_CLOSING)
            return;
    }
    ts_conn_flush(c);
}

void ts_conn_close(ts_conn_t *c, const char *reason)
{
    if (c->flags & TS_CONN_CLOSING)
        return;
    c->flags |= TS_CONN_CLOSING;
    if (reason != NULL)
        c->close_reason = reason;
    ts_io_stop(&c->worker->loop, &c->io);
    ts_timer_stop(&c->worker->loop, &c->timer);
    ts_defer(&c->worker->loop, &c->defer);
}

void ts_conn_close_after_write(ts_conn_t *c, const char *reason)
{
    if (c->flags & (TS_CONN_CLOSING | TS_CONN_CLOSE_AFTER))
        return;
    c->flags |= TS_CONN_CLOSE_AFTER;
    if (reason != NULL)
        c->close_reason = reason;
    /* Input is not released here: a protocol may still be reading it
     * (this can run inside on_read); reading stops on the flag and the
     * buffer goes when lingering starts. */
    ts_conn_set_timeout(c, TS_CLOSE_WRITE_MS);
    if (!(c->flags & TS_CONN_IN_READ))
        ts_defer(&c->worker->loop, &c->defer);
}

void ts_conn_set_timeout(ts_conn_t *c, uint64_t ms)
{
    if (c->flags & TS_CONN_CLOSING)
        return;
    ts_timer_start(&c->worker->loop, &c->timer, ms);
}

void ts_conn_pause_read(ts_conn_t *c)
{
    if (c->flags & TS_CONN_READ_PAUSED)
        return;
    c->flags |= TS_CONN_READ_PAUSED;
    ts_conn_update_interest(c);
}

void ts_conn_resume_read(ts_conn_t *c)
{
    if (!(c->flags & TS_CONN_READ_PAUSED))
        return;
    c->flags &= ~TS_CONN_READ_PAUSED;
    ts_conn_update_interest(c);
}

void ts_conn_set_ops(ts_conn_t *c, const ts_conn_ops_t *ops, void *proto)
{
    if (ops->kind != c->ops->kind) {
        ts_worker__conn_removed(c->worker, c, c->ops->kind);
        c->ops = ops;
        ts_worker__conn_added(c->worker, c, ops->kind);
    }
    c->ops = ops;
    c->proto = proto;
}

ts_conn_t *ts_conn_new(ts_worker_t *w, int fd, const struct sockaddr *peer,
                       const ts_conn_ops_t *ops, struct ssl_ctx_st *tls_ctx)
{
    ts_conn_t *c = ts_calloc(1, ops->conn_size);

    c->io.fd = fd;
    c->io.cb = ts_conn_on_io;
    c->worker = w;
    c->ops = ops;
    ts_peer_from_sockaddr(&c->peer, peer);
    ts_timer_init(&c->timer, ts_conn_on_timer);
    ts_defer_init(&c->defer, ts_conn_on_deferred);
    c->id = ts_worker__conn_added(w, c, ops->kind);
    if (ts_log_enabled(TS_LOG_DEBUG)) {
        char addr[TS_ADDRSTRLEN];
        ts_log_debug("conn=" TS_ID_FMT " peer=%s %s open", TS_ID_ARG(c->id),
                     ts_peer_str(&c->peer, addr, sizeof(addr)), ops->name);
    }
    if (tls_ctx != NULL && (c->tls = ts_tls_new(tls_ctx, fd)) == NULL) {
        ts_conn_close(c, "TLS session setup failed");
        return c;
    }
    if (ts_io_start(&w->loop, &c->io, TS_IO_READ) != TS_OK) {
        ts_log_error("epoll_ctl add: %s", strerror(errno));
        ts_conn_close(c, "epoll_ctl failed");
        return c;
    }
    if (ops->on_open != NULL && ops->on_open(c) != TS_OK)
        ts_conn_close(c, c->close_reason ? c->close_reason : "refused");
    return c;
}

static void ts_conn_free(ts_conn_t *c)
{
    ts_worker_t *w = c->worker;
    char peer[TS_ADDRSTRLEN];

    if (ts_log_enabled(TS_LOG_DEBUG))
        ts_log_debug("conn=" TS_ID_FMT " peer=%s %s closed: %s", TS_ID_ARG(c->id),
                     ts_peer_str(&c->peer, peer, sizeof(peer)), c->ops->name,
                     c->close_reason ? c->close_reason : "done");
    if (c->ops->on_close != NULL)
        c->ops->on_close(c);
    ts_io_stop(&w->loop, &c->io);
    ts_timer_stop(&w->loop, &c->timer);
    if (c->tls != NULL) {
        if (!(c->flags & TS_CONN_LINGER))
            ts_tls_shutdown(c->tls);
        ts_tls_free(c->tls);
    }
    close(c->io.fd);
    ts_buf_release(&c->in, &w->pool);
    ts_buf_release(&c->out, &w->pool);
    ts_worker__conn_removed(w, c, c->ops->kind);
    free(c);
}
