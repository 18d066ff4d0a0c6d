#include "core/worker.h"
#include "signaling/signaling.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"
#include "core/iplimit.h"
#include "core/log.h"
#include "core/net.h"
#include "core/server.h"
#include "tls/certs.h"

#define TS_ACCEPT_BATCH      64
#define TS_ACCEPT_BACKOFF_MS 100
#define TS_INBOX_CAP         (1u << 20)
#define TS_POOL_MAX_FREE     1024 /* 16 MiB of idle chunks per worker at most */

static _Thread_local ts_worker_t *ts_worker_self;

ts_worker_t *ts_worker_current(void)
{
    return ts_worker_self;
}

/* ------------------------------------------------------------ accept -- */

#define TS_BUSY_BODY "{\"error\":\"too many connections\",\"status\":503}\n"

static void ts_listener_refuse(int fd)
{
    char resp[256];
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 503 Service Unavailable\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n"
                     "Connection: close\r\n"
                     "Retry-After: 1\r\n"
                     "\r\n" TS_BUSY_BODY,
                     sizeof(TS_BUSY_BODY) - 1);
    if (send(fd, resp, (size_t)n, MSG_NOSIGNAL) < 0) {
        /* the peer is gone already; nothing more to say */
    }
}

static void ts_listener_on_backoff(ts_loop_t *loop, ts_timer_t *t)
{
    ts_listener_t *l = ts_container_of(t, ts_listener_t, backoff);

    if (!l->worker->draining)
        ts_io_start(loop, &l->io, TS_IO_READ);
}

/*
 * May the connection just accepted on fd stay? Past --max-connections (all
 * workers) or --max-connections-per-ip (its client address, all workers) it
 * is refused: plain HTTP gets a canned 503 first, other protocols (TLS, TURN
 * over TCP) have no answer that a client could read before a handshake, so
 * they are only closed. Returns 1 when admitted, and sets *per_ip when the
 * connection was counted for its address (released when it is freed).
 *
 * Every accepted connection is counted, limit or not (a lock for a moment on
 * accept and on close, next to two system calls), so that a limit set by a
 * reload applies to the connections already open too.
 */
static int ts_listener_admit(ts_listener_t *l, int fd, const struct sockaddr_storage *ss,
                             int *per_ip)
{
    ts_worker_t *w = l->worker;
    const ts_config_t *cfg = ts_server_config(w->server);
    const char *limit = NULL;
    unsigned max = 0;
    ts_peer_t peer;

    *per_ip = 0;
    ts_peer_from_sockaddr(&peer, (const struct sockaddr *)ss);
    if (cfg->max_connections != 0 &&
        __atomic_load_n(&w->server->conns_open, __ATOMIC_RELAXED) >= cfg->max_connections) {
        ts_metric_add(w->metrics.conn_refused, 1);
        limit = "--max-connections";
        max = cfg->max_connections;
    } else {
        max = cfg->max_connections_per_ip != 0 ? cfg->max_connections_per_ip : UINT_MAX;
        if (ts_iplimit_acquire(w->server->per_ip, &peer, max) == TS_OK) {
            *per_ip = 1;
            return 1;
        }
        ts_metric_add(w->metrics.conn_refused_per_ip, 1);
        limit = "--max-connections-per-ip";
    }
    if (ts_log_enabled(TS_LOG_DEBUG)) {
        char addr[TS_ADDRSTRLEN];
        ts_log_debug("peer=%s refused: %s %u reached", ts_peer_str(&peer, addr, sizeof(addr)),
                     limit, max);
    }
    if (l->kind == TS_PROTO_HTTP && l->tls_ctx == NULL)
        ts_listener_refuse(fd);
    return 0;
}

/* A SIGHUP loaded a new certificate: new connections get it; those made
 * from the old context keep it (each SSL holds its own reference). */
static void ts_listener_refresh_tls(ts_listener_t *l)
{
    unsigned gen = ts_certs_generation();
    ts_tls_ctx_t *fresh;

    if (l->tls_ctx == NULL || l->tls_gen == gen || (fresh = ts_certs_tls()) == NULL)
        return;
    ts_tls_ctx_free(l->tls_ctx);
    l->tls_ctx = fresh;
    l->tls_gen = gen;
}

static void ts_listener_on_accept(ts_loop_t *loop, ts_io_t *io, uint32_t events)
{
    ts_listener_t *l = ts_container_of(io, ts_listener_t, io);
    ts_worker_t *w = l->worker;

    for (int i = 0; i < TS_ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        ts_conn_t *c;
        int per_ip;
        int fd = accept4(io->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            ts_metric_add(w->metrics.accept_errors, 1);
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: pause accepting instead of spinning on
                 * a listener that stays readable. */
                ts_log_warn("accept: %s; pausing accept for %d ms", strerror(errno),
                            TS_ACCEPT_BACKOFF_MS);
                ts_io_stop(loop, io);
                ts_timer_start(loop, &l->backoff, TS_ACCEPT_BACKOFF_MS);
                return;
            }
            ts_log_error("accept: %s", strerror(errno));
            return;
        }
        if (!ts_listener_admit(l, fd, &ss, &per_ip)) {
            close(fd);
            continue;
        }
        ts_net_tune_accepted(fd);
        if (l->tls_ctx != NULL && l->tls_gen != ts_certs_generation())
            ts_listener_refresh_tls(l);
        /* The free is deferred even when the connection fails at once, so
         * the mark is always seen by ts_worker__conn_removed(). */
        c = ts_conn_new(w, fd, (struct sockaddr *)&ss, l->ops, l->tls_ctx);
        if (per_ip)
            c->flags |= TS_CONN_PER_IP;
    }
}

void ts_worker_add_listener(ts_worker_t *w, int fd, const ts_conn_ops_t *ops,
                            struct ssl_ctx_st *tls_ctx)
{
    ts_listener_t *l;

    w->listeners = ts_realloc(w->listeners, (w->nlisteners + 1) * sizeof(*w->listeners));
    l = &w->listeners[w->nlisteners++];
    memset(l, 0, sizeof(*l));
    l->io.fd = fd;
    l->io.cb = ts_listener_on_accept;
    l->worker = w;
    l->ops = ops;
    l->kind = ops->kind;
    l->tls_ctx = ts_tls_ctx_ref(tls_ctx);
    l->tls_gen = ts_certs_generation();
    ts_timer_init(&l->backoff, ts_listener_on_backoff);
}

static void ts_listener_on_dgram(ts_loop_t *loop, ts_io_t *io, uint32_t events)
{
    ts_listener_t *l = ts_container_of(io, ts_listener_t, io);

    l->dgram(l->worker, io->fd);
}

void ts_worker_add_dgram(ts_worker_t *w, int fd, ts_dgram_cb cb)
{
    ts_listener_t *l;

    w->listeners = ts_realloc(w->listeners, (w->nlisteners + 1) * sizeof(*w->listeners));
    l = &w->listeners[w->nlisteners++];
    memset(l, 0, sizeof(*l));
    l->io.fd = fd;
    l->io.cb = ts_listener_on_dgram;
    l->worker = w;
    l->dgram = cb;
    l->kind = -1;
    ts_timer_init(&l->backoff, ts_listener_on_backoff);
}

/*
 * Stream listeners close when a drain begins: new connections are refused
 * by the kernel from then on. Datagram sockets (dgram_too = 0) stay: the
 * TURN clients of the allocations being drained still send through them,
 * and even after this worker's loop has ended they stay open (unread) until
 * the process exits, because closing one member of an SO_REUSEPORT group makes
 * the kernel hash every client 5-tuple anew, sending the packets of other
 * workers' allocations to the wrong worker.
 */
static void ts_worker_close_listeners(ts_worker_t *w, int dgram_too)
{
    for (size_t i = 0; i < w->nlisteners; i++) {
        ts_listener_t *l = &w->listeners[i];
        if (l->ops == NULL && !dgram_too)
            continue;
        ts_timer_stop(&w->loop, &l->backoff);
        if (l->io.fd >= 0) {
            ts_io_stop(&w->loop, &l->io);
            close(l->io.fd);
            l->io.fd = -1;
        }
    }
}

/* ------------------------------------------------------- connections -- */

/*
 * A draining worker is done when nothing is left that it waits for. It
 * keeps serving its UDP sockets until every worker is done (the last one
 * stops them all), so that a newcomer's STUN Binding gets the same answer
 * whichever worker the kernel hands it to, and Allocate the same 508.
 */
static void ts_worker_drained(ts_worker_t *w)
{
    if (w->draining == 1 && w->nconns == 0 && w->nheld == 0) {
        w->draining = 2;
        ts_server__worker_drained(w->server);
    }
}

void ts_worker_hold(ts_worker_t *w)
{
    w->nheld++;
}

void ts_worker_release(ts_worker_t *w)
{
    if (w->nheld > 0)
        w->nheld--;
    ts_worker_drained(w);
}

uint64_t ts_worker__conn_added(ts_worker_t *w, ts_conn_t *c, int kind)
{
    if (c->id == 0) {
        c->id = ((uint64_t)w->index << TS_ID_WORKER_SHIFT) | ++w->next_seq;
        ts_idmap_put(&w->conns, c->id, c);
        w->nconns++;
        __atomic_add_fetch(&w->server->conns_open, 1, __ATOMIC_RELAXED);
    }
    ts_metric_add(w->metrics.conn_open[kind], 1);
    ts_metric_add(w->metrics.conn_total[kind], 1);
    return c->id;
}

void ts_worker__conn_removed(ts_worker_t *w, ts_conn_t *c, int kind)
{
    ts_metric_sub(w->metrics.conn_open[kind], 1);
    if (c->flags & TS_CONN_CLOSING) {
        if (c->flags & TS_CONN_PER_IP) {
            c->flags &= ~TS_CONN_PER_IP;
            ts_iplimit_release(w->server->per_ip, &c->peer);
        }
        ts_idmap_del(&w->conns, c->id);
        w->nconns--;
        __atomic_sub_fetch(&w->server->conns_open, 1, __ATOMIC_RELAXED);
        ts_worker_drained(w);
    }
}

static void ts_worker_close_all(ts_worker_t *w, const char *reason)
{
    for (size_t i = 0; i < w->conns.cap; i++) {
        if (w->conns.slots[i].key != 0)
            ts_conn_close(w->conns.slots[i].value, reason);
    }
}

/* ------------------------------------------------------------- drain -- */

static void ts_worker_on_drain_deadline(ts_loop_t *loop, ts_timer_t *t)
{
    ts_worker_t *w = ts_container_of(t, ts_worker_t, drain_deadline);

    if (w->nconns > 0 || w->nheld > 0)
        ts_log_info("drain timeout: closing %zu connections, %zu TURN relays", w->nconns, w->nheld);
    ts_worker_close_all(w, "shutting down");
    ts_loop_stop(loop);
}

static void ts_worker_drain(ts_worker_t *w)
{
    const ts_config_t *cfg = ts_server_config(w->server);

    if (w->draining)
        return;
    w->draining = 1;
    ts_worker_close_listeners(w, 0);
    for (size_t i = 0; i < w->conns.cap; i++) {
        ts_conn_t *c = w->conns.slots[i].value;
        if (w->conns.slots[i].key == 0 || (c->flags & TS_CONN_CLOSING))
            continue;
        if (c->ops->on_shutdown != NULL)
            c->ops->on_shutdown(c);
        else
            ts_conn_close(c, "shutting down");
    }
    ts_timer_start(&w->loop, &w->drain_deadline, (uint64_t)cfg->drain_timeout * 1000);
    ts_worker_drained(w); /* nothing to wait for, maybe */
}

/* --------------------------------------------------------------- bus -- */

static void ts_worker_on_message_cb(void *ctx, ts_bus_msg_t *msg)
{
    ts_worker_t *w = ctx;

    switch (msg->type) {
    case TS_MSG_DRAIN:
        ts_worker_drain(w);
        return;
    case TS_MSG_STOP:
        ts_worker_close_all(w, "stopped");
        ts_loop_stop(&w->loop);
        return;
    case TS_MSG_RELOAD:
        for (size_t i = 0; i < w->nlisteners; i++)
            ts_listener_refresh_tls(&w->listeners[i]);
        return;
    default:
        if (msg->type >= TS_MSG_USER && msg->type < TS_MSG_USER + TS_ARRAY_SIZE(w->handlers) &&
            w->handlers[msg->type - TS_MSG_USER] != NULL) {
            w->handlers[msg->type - TS_MSG_USER](w, msg);
            return;
        }
        ts_log_warn("bus: message of unknown type %u dropped", msg->type);
    }
}

void ts_worker_on_message(ts_worker_t *w, uint32_t type, ts_msg_handler_t handler)
{
    if (type >= TS_MSG_USER && type < TS_MSG_USER + TS_ARRAY_SIZE(w->handlers))
        w->handlers[type - TS_MSG_USER] = handler;
}

/* -------------------------------------------------------------- tick -- */

static void ts_worker_update_date(ts_worker_t *w, struct timespec *now)
{
    struct tm tm;

    gmtime_r(&now->tv_sec, &tm);
    strftime(w->http_date, sizeof(w->http_date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void ts_worker_on_tick(ts_loop_t *loop, ts_timer_t *t)
{
    ts_worker_t *w = ts_container_of(t, ts_worker_t, tick);
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    ts_worker_update_date(w, &now);
    /* Fire again just after the next second begins. */
    ts_timer_start(loop, t, 1000 - (uint64_t)(now.tv_nsec / 1000000) + 1);
}

/* ---------------------------------------------------------- lifecycle -- */

int ts_worker_init(ts_worker_t *w, ts_server_t *server, int index)
{
    struct timespec now;

    memset(w, 0, sizeof(*w));
    w->index = index;
    w->server = server;
    if (ts_loop_init(&w->loop) != TS_OK)
        return TS_ERR_IO;
    w->loop.data = w;
    ts_pool_init(&w->pool, TS_POOL_MAX_FREE);
    ts_idmap_init(&w->conns);
    if (ts_inbox_init(&w->inbox, &w->loop, TS_INBOX_CAP, ts_worker_on_message_cb, w) != TS_OK) {
        ts_loop_free(&w->loop);
        ts_idmap_free(&w->conns);
        return TS_ERR_IO;
    }
    ts_timer_init(&w->tick, ts_worker_on_tick);
    ts_timer_init(&w->drain_deadline, ts_worker_on_drain_deadline);
    ts_ayame_worker_init(w);
    ts_peerjs_worker_init(w);
    clock_gettime(CLOCK_REALTIME, &now);
    ts_worker_update_date(w, &now);
    return TS_OK;
}

static void *ts_worker_main(void *arg)
{
    ts_worker_t *w = arg;

    ts_worker_self = w;
    ts_inbox_own(&w->inbox);
    ts_log_set_worker(w->index);
    ts_loop_update_time(&w->loop);
    for (size_t i = 0; i < w->nlisteners; i++) {
        if (ts_io_start(&w->loop, &w->listeners[i].io, TS_IO_READ) != TS_OK)
            ts_log_error("listener: epoll_ctl: %s", strerror(errno));
    }
    ts_timer_start(&w->loop, &w->tick, 1000);
    ts_loop_run(&w->loop);
    /* Whatever goes from here on (connections, relays) tells no one. */
    if (w->draining)
        w->draining = 2;

    /* Whatever is still open goes now; then run the deferred frees. */
    ts_worker_close_listeners(w, 0);
    ts_worker_close_all(w, "stopped");
    ts_loop_run_deferred(&w->loop);
    ts_timer_stop(&w->loop, &w->tick);
    ts_timer_stop(&w->loop, &w->drain_deadline);
    __atomic_sub_fetch(&w->server->running_workers, 1, __ATOMIC_RELEASE);
    return NULL;
}

int ts_worker_start(ts_worker_t *w)
{
    int rc = pthread_create(&w->thread, NULL, ts_worker_main, w);

    if (rc != 0) {
        errno = rc;
        return TS_ERR_IO;
    }
    w->thread_started = 1;
    return TS_OK;
}

void *ts_worker_local(ts_worker_t *w, int slot, void *(*create)(void), void (*destroy)(void *))
{
    void *ptr = __atomic_load_n(&w->locals[slot].ptr, __ATOMIC_ACQUIRE);

    if (ptr == NULL) {
        ptr = create();
        w->locals[slot].destroy = destroy;
        /* Other threads (/metrics) may look: publish a whole object. */
        __atomic_store_n(&w->locals[slot].ptr, ptr, __ATOMIC_RELEASE);
    }
    return ptr;
}

void ts_worker_free(ts_worker_t *w)
{
    for (size_t i = 0; i < TS_ARRAY_SIZE(w->locals); i++) {
        if (w->locals[i].ptr != NULL)
            w->locals[i].destroy(w->locals[i].ptr);
        w->locals[i].ptr = NULL;
    }
    ts_worker_close_listeners(w, 1);
    for (size_t i = 0; i < w->nlisteners; i++)
        ts_tls_ctx_free(w->listeners[i].tls_ctx);
    free(w->listeners);
    w->listeners = NULL;
    ts_inbox_close(&w->inbox);
    ts_idmap_free(&w->conns);
    ts_loop_free(&w->loop);
    ts_pool_free(&w->pool);
}
