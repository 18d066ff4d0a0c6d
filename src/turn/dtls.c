/*
 * dtls.c — TURN over DTLS on a worker's loop.
 *
 * The --turns port has a UDP socket group (SO_REUSEPORT, one socket per
 * worker, like --turn's); the kernel keeps a client's 5-tuple on one
 * worker, so each worker keeps its own sessions, keyed by (socket, client
 * address), in a hash table. Every session is an OpenSSL SSL whose BIO is
 * this file's: a read returns the datagram being handled, a write is one
 * sendto() on the worker's socket to the session's client. Sessions share
 * the listening socket rather than each having a connect()ed socket: no
 * descriptor per client, and no race between a new connected socket and the
 * SO_REUSEPORT group for the client's next datagrams.
 *
 * Nothing is kept for a client before it proves its address: a datagram
 * from an unknown address goes to the worker's listener SSL, whose
 * DTLSv1_listen() answers a ClientHello without a valid cookie with a
 * HelloVerifyRequest (tls/dtls.c makes and checks the cookies) and keeps
 * nothing. A ClientHello with a valid cookie turns the listener into the
 * client's session, and a fresh listener takes its place.
 *
 * One timer per session drives DTLS retransmissions (DTLSv1_get_timeout /
 * DTLSv1_handle_timeout), the handshake deadline and the idle check. A
 * closed session leaves the table at once and is freed, and its allocation
 * with it, at the end of the loop turn.
 */
#include "turn/dtls.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/common.h"
#include "core/log.h"
#include "core/net.h"
#include "core/server.h"
#include "tls/certs.h"
#include "tls/dtls.h"
#include "turn/net.h"

#define TS_DTLS_BATCH 16
#define TS_DTLS_DGRAM 4096 /* a larger datagram is truncated, and dropped */
#define TS_DTLS_READS 4    /* batches per readiness event */

typedef struct ts_dtls_s ts_dtls_t;

/* Where a BIO's records go and where its datagrams come from: a session's
 * client, or the client the listener is answering. Its tuple is the SSL's
 * app data, read by the cookie callbacks. */
typedef struct {
    ts_dtls_t *d;
    int fd; /* the worker's socket */
    ts_dtls_tuple_t tuple;
} ts_dtls_ep_t;

/* The table's key: the worker's socket and the client's address. */
typedef struct {
    uint8_t ip[16];
    uint32_t scope;
    int32_t fd;
    uint16_t port; /* network order */
    uint16_t family;
} ts_dtls_key_t;

/* A client's session; owned by the worker's table until it closes, then by
 * the loop's deferred list until freed. */
typedef struct ts_dtls_sess_s {
    ts_dtls_ep_t ep;
    struct ts_dtls_sess_s *hnext;
    ts_dtls_key_t key;
    SSL *ssl;         /* owned */
    uint64_t id;      /* the engine's conn_id for this client; never 0 */
    uint64_t started; /* ms */
    uint64_t last_rx; /* ms: the last datagram, or the last idle check that kept it */
    ts_timer_t timer;
    ts_defer_t free;
    uint8_t established;
    uint8_t closing;
} ts_dtls_sess_t;

struct ts_dtls_s {
    ts_worker_t *w;
    ts_dtls_ctx_t *ctx; /* one reference owned: what new sessions are made from */
    unsigned ctx_gen;   /* its certificate generation (tls/certs.h) */
    SSL *listener;      /* owned: the stateless cookie exchange */
    ts_dtls_ep_t lep;
    BIO_ADDR *listen_peer;  /* owned: DTLSv1_listen's out parameter */
    ts_dtls_sess_t **table; /* owned array of chains */
    size_t nbuckets, nsess, nhandshakes;
    uint64_t seq;
    uint64_t seed; /* hash seed */
    /* The datagram being handled, and whose BIO may read it. */
    const uint8_t *in;
    size_t in_len;
    const ts_dtls_ep_t *in_ep;
    ts_dtls_stats_t stats;
    struct {
        int fd;
        socklen_t len;
        struct sockaddr_storage sa;
    } local[8];
    unsigned nlocal;
    struct mmsghdr msgs[TS_DTLS_BATCH];
    struct iovec iov[TS_DTLS_BATCH];
    struct sockaddr_storage addrs[TS_DTLS_BATCH];
    uint8_t bufs[TS_DTLS_BATCH][TS_DTLS_DGRAM];
    uint8_t plain[16384 + 256]; /* one record's plaintext */
};

static BIO_METHOD *ts_dtls_bio_method;

/* ----------------------------------------------------------------- BIO -- */

static int ts_dtls_bio_write(BIO *b, const char *data, int len)
{
    ts_dtls_ep_t *ep = BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    if (ep == NULL || len <= 0)
        return len;
    n = sendto(ep->fd, data, (size_t)len, MSG_DONTWAIT, (struct sockaddr *)&ep->tuple.peer,
               ep->tuple.peer_len);
    /* A full socket buffer drops the datagram, as UDP may: DTLS retransmits
     * handshake flights, and TURN's own data may be lost. */
    if (n < 0)
        ts_log_debug("dtls: sendto: %s", strerror(errno));
    else
        ts_metric_add(ep->d->w->metrics.bytes_out, (uint64_t)n);
    if (ep == &ep->d->lep)
        ts_metric_add(ep->d->stats.hello_verify, 1);
    return len;
}

static int ts_dtls_bio_read(BIO *b, char *buf, int size)
{
    ts_dtls_ep_t *ep = BIO_get_data(b);
    ts_dtls_t *d = ep != NULL ? ep->d : NULL;
    size_t n;

    BIO_clear_retry_flags(b);
    if (d == NULL || d->in == NULL || d->in_ep != ep || size <= 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    n = TS_MIN(d->in_len, (size_t)size);
    memcpy(buf, d->in, n);
    d->in = NULL; /* one datagram, read once */
    return (int)n;
}

static long ts_dtls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    ts_dtls_ep_t *ep = BIO_get_data(b);

    TS_UNUSED(num);
    TS_UNUSED(ptr);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD: /* IP and UDP headers */
        return ep != NULL && ep->tuple.peer.ss_family == AF_INET6 ? 48 : 28;
    default:
        return 0;
    }
}

static int ts_dtls_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void ts_dtls_bio_method_make(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tsunagi-dtls");

    if (m == NULL || !BIO_meth_set_write(m, ts_dtls_bio_write) ||
        !BIO_meth_set_read(m, ts_dtls_bio_read) || !BIO_meth_set_ctrl(m, ts_dtls_bio_ctrl) ||
        !BIO_meth_set_create(m, ts_dtls_bio_create)) {
        ts_log_error("dtls: cannot make a BIO method");
        abort();
    }
    ts_dtls_bio_method = m;
}

/* An SSL for ep with a BIO of this file's, from the worker's context. */
static SSL *ts_dtls_ssl_new(ts_dtls_ep_t *ep)
{
    SSL *ssl = SSL_new(ep->d->ctx);
    BIO *bio = BIO_new(ts_dtls_bio_method);

    if (ssl == NULL || bio == NULL) {
        ts_log_error("dtls: out of memory for an SSL");
        abort();
    }
    BIO_set_data(bio, ep);
    SSL_set_bio(ssl, bio, bio);
    SSL_set_app_data(ssl, &ep->tuple);
    SSL_set_mtu(ssl, TS_DTLS_MTU);
    SSL_set_accept_state(ssl);
    return ssl;
}

/* --------------------------------------------------------------- table -- */

/* A client's address in a form that compares with memcmp: the sockaddr the
 * engine rebuilds from its tuple differs in bytes that do not matter
 * (sin_zero, sin6_flowinfo) from the one recvmmsg filled. */
static void ts_dtls_key_of(ts_dtls_key_t *k, int fd, const struct sockaddr_storage *ss)
{
    memset(k, 0, sizeof(*k));
    k->fd = fd;
    k->family = ss->ss_family;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        memcpy(k->ip, &in->sin_addr, 4);
        k->port = in->sin_port;
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        memcpy(k->ip, &in6->sin6_addr, 16);
        k->scope = in6->sin6_scope_id;
        k->port = in6->sin6_port;
    }
}

static size_t ts_dtls_hash(const ts_dtls_t *d, const ts_dtls_key_t *k)
{
    const uint8_t *p = (const uint8_t *)k;
    uint64_t h = d->seed;

    for (size_t i = 0; i < sizeof(*k); i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return (size_t)(h ^ (h >> 29)) & (d->nbuckets - 1);
}

static ts_dtls_sess_t *ts_dtls_find(const ts_dtls_t *d, int fd, const struct sockaddr_storage *peer)
{
    ts_dtls_key_t k;
    ts_dtls_sess_t *s;

    ts_dtls_key_of(&k, fd, peer);
    s = d->table[ts_dtls_hash(d, &k)];
    while (s != NULL && memcmp(&s->key, &k, sizeof(k)) != 0)
        s = s->hnext;
    return s;
}

static void ts_dtls_link(ts_dtls_t *d, ts_dtls_sess_t *s)
{
    size_t b = ts_dtls_hash(d, &s->key);

    s->hnext = d->table[b];
    d->table[b] = s;
}

static void ts_dtls_unlink(ts_dtls_t *d, ts_dtls_sess_t *s)
{
    ts_dtls_sess_t **pp = &d->table[ts_dtls_hash(d, &s->key)];

    while (*pp != NULL && *pp != s)
        pp = &(*pp)->hnext;
    if (*pp != NULL)
        *pp = s->hnext;
}

/* Double the buckets once the table holds as many sessions. */
static void ts_dtls_grow(ts_dtls_t *d)
{
    ts_dtls_sess_t **old = d->table;
    size_t n = d->nbuckets;

    d->nbuckets = n * 2;
    d->table = ts_calloc(d->nbuckets, sizeof(*d->table));
    for (size_t i = 0; i < n; i++) {
        for (ts_dtls_sess_t *s = old[i], *next; s != NULL; s = next) {
            next = s->hnext;
            ts_dtls_link(d, s);
        }
    }
    free(old);
}

/* ------------------------------------------------------------ sessions -- */

static void ts_dtls_client(const ts_dtls_sess_t *s, turn_client_t *c)
{
    memset(c, 0, sizeof(*c));
    c->transport = TURN_TRANSPORT_DTLS;
    c->peer = s->ep.tuple.peer;
    c->peer_len = s->ep.tuple.peer_len;
    c->local = s->ep.tuple.local;
    c->local_len = s->ep.tuple.local_len;
    c->conn_id = s->id;
    c->sock = s->ep.fd;
}

static const char *ts_dtls_peer(const ts_dtls_sess_t *s, char *buf, size_t size)
{
    return ts_sockaddr_str((const struct sockaddr *)&s->ep.tuple.peer, buf, size);
}

/* The reason OpenSSL gave for the last failure (and its queue emptied). */
static const char *ts_dtls_ssl_reason(SSL *ssl, int rc)
{
    int e = SSL_get_error(ssl, rc);
    const char *why = NULL;

    if (e == SSL_ERROR_ZERO_RETURN)
        why = "close_notify";
    else if (e == SSL_ERROR_SSL)
        why = ERR_reason_error_string(ERR_peek_error());
    ERR_clear_error();
    return why != NULL ? why : "DTLS error";
}

static void ts_dtls_on_free(ts_loop_t *loop, ts_defer_t *df)
{
    ts_dtls_sess_t *s = ts_container_of(df, ts_dtls_sess_t, free);
    turn_server_t *engine = ts_turn_engine(s->ep.d->w);

    TS_UNUSED(loop);
    if (s->established && engine != NULL) {
        turn_client_t client;
        ts_dtls_client(s, &client);
        turn_server_on_client_closed(engine, &client); /* its allocation goes with it */
    }
    SSL_free(s->ssl);
    free(s);
}

/*
 * Take s out of the table and free it at the end of the loop turn (it may
 * be closed from inside the engine's send_client, which must not call back
 * into the engine). notify: say close_notify first (a session we end; not
 * after a fatal error or the client's own close_notify).
 */
static void ts_dtls_close(ts_dtls_sess_t *s, const char *reason, int notify)
{
    ts_dtls_t *d = s->ep.d;
    char peer[TS_ADDRSTRLEN];

    if (s->closing)
        return;
    s->closing = 1;
    ts_log_debug("dtls: peer=%s session %s: %s", ts_dtls_peer(s, peer, sizeof(peer)),
                 s->established ? "closed" : "handshake failed", reason);
    if (notify && s->established) {
        SSL_shutdown(s->ssl);
        ERR_clear_error();
    }
    ts_dtls_unlink(d, s);
    d->nsess--;
    ts_metric_sub(d->stats.sessions, 1);
    if (!s->established) {
        d->nhandshakes--;
        ts_metric_sub(d->stats.handshakes, 1);
        ts_metric_add(d->stats.handshakes_failed, 1);
    }
    __atomic_sub_fetch(&d->w->server->conns_open, 1, __ATOMIC_RELAXED);
    ts_timer_stop(&d->w->loop, &s->timer);
    ts_defer(&d->w->loop, &s->free);
}

/* The next thing s waits for: a retransmission, the handshake deadline, or
 * the idle check. */
static void ts_dtls_arm(ts_dtls_sess_t *s)
{
    ts_loop_t *loop = &s->ep.d->w->loop;
    uint64_t now = ts_loop_now(loop), due;
    struct timeval tv;

    due = s->established ? s->last_rx + TS_DTLS_IDLE_MS : s->started + TS_DTLS_HANDSHAKE_MS;
    if (DTLSv1_get_timeout(s->ssl, &tv) == 1)
        due = TS_MIN(due, now + (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000);
    ts_timer_start(loop, &s->timer, due > now ? due - now : 1);
}

static void ts_dtls_on_timer(ts_loop_t *loop, ts_timer_t *t)
{
    ts_dtls_sess_t *s = ts_container_of(t, ts_dtls_sess_t, timer);
    uint64_t now = ts_loop_now(loop);

    if (!s->established && now >= s->started + TS_DTLS_HANDSHAKE_MS) {
        ts_dtls_close(s, "handshake timed out", 0);
        return;
    }
    if (s->established && now >= s->last_rx + TS_DTLS_IDLE_MS) {
        turn_server_t *engine = ts_turn_engine(s->ep.d->w);
        turn_client_t client;

        ts_dtls_client(s, &client);
        if (engine == NULL || !turn_server_has_allocation(engine, &client)) {
            ts_dtls_close(s, "idle, no allocation", 1);
            return;
        }
        s->last_rx = now; /* the allocation keeps it: look again later */
    }
    /* Retransmit the last flight if its timer ran out. */
    if (DTLSv1_handle_timeout(s->ssl) < 0) {
        ts_dtls_close(s, ts_dtls_ssl_reason(s->ssl, -1), 0);
        return;
    }
    ts_dtls_arm(s);
}

static ts_dtls_sess_t *ts_dtls_sess_new(ts_dtls_t *d, SSL *ssl)
{
    ts_dtls_sess_t *s = ts_calloc(1, sizeof(*s));
    uint64_t now = ts_loop_now(&d->w->loop);

    s->ep = d->lep;
    ts_dtls_key_of(&s->key, s->ep.fd, &s->ep.tuple.peer);
    s->ssl = ssl;
    BIO_set_data(SSL_get_rbio(ssl), &s->ep);
    SSL_set_app_data(ssl, &s->ep.tuple);
    /* The worker in the top 16 bits, like connection ids; bit 47 keeps
     * these apart from them. */
    s->id = (uint64_t)d->w->index << 48 | 1ull << 47 | ++d->seq;
    s->started = s->last_rx = now;
    ts_timer_init(&s->timer, ts_dtls_on_timer);
    ts_defer_init(&s->free, ts_dtls_on_free);
    if (d->nsess >= d->nbuckets)
        ts_dtls_grow(d);
    ts_dtls_link(d, s);
    d->nsess++;
    d->nhandshakes++;
    ts_metric_add(d->stats.sessions, 1);
    ts_metric_add(d->stats.handshakes, 1);
    __atomic_add_fetch(&d->w->server->conns_open, 1, __ATOMIC_RELAXED);
    return s;
}

/* ------------------------------------------------------------- records -- */

/* Hand every record the last datagram held to the engine. */
static void ts_dtls_read_records(ts_dtls_sess_t *s)
{
    ts_dtls_t *d = s->ep.d;
    turn_server_t *engine = ts_turn_engine(d->w);
    turn_client_t client;
    size_t n;

    ts_dtls_client(s, &client);
    while (!s->closing) {
        ERR_clear_error();
        if (SSL_read_ex(s->ssl, d->plain, sizeof(d->plain), &n) != 1) {
            int e = SSL_get_error(s->ssl, 0);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                ERR_clear_error();
                return;
            }
            ts_dtls_close(s, ts_dtls_ssl_reason(s->ssl, 0), 0);
            return;
        }
        turn_server_on_client(engine, &client, d->plain, n);
    }
}

/* A datagram for session s. */
static void ts_dtls_feed(ts_dtls_sess_t *s, const uint8_t *data, size_t len)
{
    ts_dtls_t *d = s->ep.d;
    char peer[TS_ADDRSTRLEN];
    int rc;

    d->in = data;
    d->in_len = len;
    d->in_ep = &s->ep;
    s->last_rx = ts_loop_now(&d->w->loop);
    if (!s->established) {
        ERR_clear_error();
        if ((rc = SSL_do_handshake(s->ssl)) != 1) {
            int e = SSL_get_error(s->ssl, rc);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                ERR_clear_error();
                ts_dtls_arm(s);
            } else {
                ts_dtls_close(s, ts_dtls_ssl_reason(s->ssl, rc), 0);
            }
            d->in = NULL;
            return;
        }
        s->established = 1;
        d->nhandshakes--;
        ts_metric_sub(d->stats.handshakes, 1);
        ts_metric_add(d->stats.sessions_total, 1);
        ts_log_debug("dtls: peer=%s session established (%s, %s)",
                     ts_dtls_peer(s, peer, sizeof(peer)), SSL_get_version(s->ssl),
                     SSL_get_cipher_name(s->ssl));
        ts_dtls_arm(s);
    }
    /* An established session's timer stays where it is: it looks at
     * last_rx when it fires, so a datagram costs no timer update. */
    ts_dtls_read_records(s);
    d->in = NULL;
}

/* A datagram from an address with no session: only a ClientHello means
 * anything, and only one with a valid cookie makes a session. */
static void ts_dtls_hello(ts_dtls_t *d, const uint8_t *data, size_t len)
{
    const ts_config_t *cfg = ts_server_config(d->w->server);
    char peer[TS_ADDRSTRLEN];
    ts_dtls_sess_t *s;
    int rc;

    /* A DTLS handshake record (22, version 254.x) holding a ClientHello (1). */
    /* Shutting down: no new sessions, as a closed TCP listener takes none. */
    if (d->w->draining) {
        ts_metric_add(d->stats.dropped, 1);
        return;
    }
    if (len < 13 + 12 || data[0] != 22 || data[1] != 0xfe || data[13] != 1) {
        ts_metric_add(d->stats.dropped, 1);
        ts_log_debug("dtls: peer=%s: %zu bytes that are not a ClientHello dropped",
                     ts_sockaddr_str((struct sockaddr *)&d->lep.tuple.peer, peer, sizeof(peer)),
                     len);
        return;
    }
    d->in = data;
    d->in_len = len;
    d->in_ep = &d->lep;
    ERR_clear_error();
    rc = DTLSv1_listen(d->listener, d->listen_peer);
    d->in = NULL;
    if (rc <= 0) { /* answered with a HelloVerifyRequest, or not a usable hello */
        if (rc < 0)
            ts_metric_add(d->stats.dropped, 1);
        ERR_clear_error();
        return;
    }
    if (d->nhandshakes >= TS_DTLS_MAX_HANDSHAKE || d->nsess >= TS_DTLS_MAX_SESSIONS ||
        (cfg->max_connections != 0 &&
         __atomic_load_n(&d->w->server->conns_open, __ATOMIC_RELAXED) >= cfg->max_connections)) {
        ts_metric_add(d->stats.handshakes_failed, 1);
        ts_log_debug("dtls: peer=%s refused: session limit reached",
                     ts_sockaddr_str((struct sockaddr *)&d->lep.tuple.peer, peer, sizeof(peer)));
        return; /* the listener is cleared by its next DTLSv1_listen */
    }
    s = ts_dtls_sess_new(d, d->listener);
    d->listener = ts_dtls_ssl_new(&d->lep);
    /* The ClientHello DTLSv1_listen kept goes on from here. */
    ts_dtls_feed(s, NULL, 0);
}

/* ------------------------------------------------------------- workers -- */

static void *ts_dtls_state_new(void)
{
    ts_dtls_t *d = ts_calloc(1, sizeof(*d));

    d->w = ts_worker_current();
    d->lep.d = d;
    d->lep.fd = -1;
    d->nbuckets = 256;
    d->seed = 0xcbf29ce484222325ull ^ (ts_now_ms() * 0x9E3779B97F4A7C15ull);
    d->table = ts_calloc(d->nbuckets, sizeof(*d->table));
    d->ctx_gen = ts_certs_generation();
    d->ctx = ts_certs_dtls();
    d->listener = ts_dtls_ssl_new(&d->lep);
    if ((d->listen_peer = BIO_ADDR_new()) == NULL) {
        ts_log_error("dtls: out of memory");
        abort();
    }
    for (int i = 0; i < TS_DTLS_BATCH; i++) {
        d->iov[i].iov_base = d->bufs[i];
        d->iov[i].iov_len = TS_DTLS_DGRAM;
    }
    return d;
}

/* With the worker, after its loop ended: the engine may be gone already, so
 * sessions are freed without telling it (it freed their allocations). */
static void ts_dtls_state_free(void *ptr)
{
    ts_dtls_t *d = ptr;

    for (size_t i = 0; i < d->nbuckets; i++) {
        for (ts_dtls_sess_t *s = d->table[i], *next; s != NULL; s = next) {
            next = s->hnext;
            ts_timer_stop(&d->w->loop, &s->timer);
            __atomic_sub_fetch(&d->w->server->conns_open, 1, __ATOMIC_RELAXED);
            SSL_free(s->ssl);
            free(s);
        }
    }
    free(d->table);
    SSL_free(d->listener);
    ts_dtls_ctx_free(d->ctx);
    BIO_ADDR_free(d->listen_peer);
    free(d);
}

static ts_dtls_t *ts_dtls_state(ts_worker_t *w)
{
    return ts_worker_local(w, TS_LOCAL_DTLS, ts_dtls_state_new, ts_dtls_state_free);
}

/* The socket's own address, asked of the kernel once per socket. */
static void ts_dtls_local(ts_dtls_t *d, int fd, ts_dtls_tuple_t *t)
{
    unsigned i;

    for (i = 0; i < d->nlocal && d->local[i].fd != fd; i++) {
    }
    if (i == TS_ARRAY_SIZE(d->local)) {
        t->local_len = sizeof(t->local);
        getsockname(fd, (struct sockaddr *)&t->local, &t->local_len);
        return;
    }
    if (i == d->nlocal) {
        d->local[i].fd = fd;
        d->local[i].len = sizeof(d->local[i].sa);
        getsockname(fd, (struct sockaddr *)&d->local[i].sa, &d->local[i].len);
        d->nlocal++;
    }
    t->local = d->local[i].sa;
    t->local_len = d->local[i].len;
}

static int ts_dtls_recv_batch(ts_dtls_t *d, int fd)
{
    int n;

    for (int i = 0; i < TS_DTLS_BATCH; i++) {
        memset(&d->msgs[i].msg_hdr, 0, sizeof(d->msgs[i].msg_hdr));
        d->msgs[i].msg_hdr.msg_name = &d->addrs[i];
        d->msgs[i].msg_hdr.msg_namelen = sizeof(d->addrs[i]);
        d->msgs[i].msg_hdr.msg_iov = &d->iov[i];
        d->msgs[i].msg_hdr.msg_iovlen = 1;
    }
    do {
        n = recvmmsg(fd, d->msgs, TS_DTLS_BATCH, MSG_DONTWAIT, NULL);
    } while (n < 0 && errno == EINTR);
    return n;
}

/* A SIGHUP loaded a new certificate: new sessions are made from it (the
 * listener SSL keeps nothing between datagrams, so it is simply replaced);
 * sessions made before keep the context they hold a reference to. */
static void ts_dtls_refresh(ts_dtls_t *d)
{
    unsigned gen = ts_certs_generation();
    ts_dtls_ctx_t *fresh;

    if (d->ctx_gen == gen)
        return;
    d->ctx_gen = gen;
    if ((fresh = ts_certs_dtls()) == NULL)
        return;
    ts_dtls_ctx_free(d->ctx);
    d->ctx = fresh;
    SSL_free(d->listener);
    d->listener = ts_dtls_ssl_new(&d->lep);
}

void ts_turn_dtls_on_udp(ts_worker_t *w, int fd)
{
    ts_dtls_t *d = ts_dtls_state(w);

    ts_dtls_refresh(d);
    d->lep.fd = fd;
    ts_dtls_local(d, fd, &d->lep.tuple);
    for (int round = 0; round < TS_DTLS_READS; round++) {
        int n = ts_dtls_recv_batch(d, fd);
        if (n <= 0)
            break;
        for (int i = 0; i < n; i++) {
            struct msghdr *h = &d->msgs[i].msg_hdr;
            ts_dtls_sess_t *s;

            ts_metric_add(w->metrics.bytes_in, d->msgs[i].msg_len);
            if (h->msg_flags & MSG_TRUNC) {
                ts_metric_add(d->stats.dropped, 1);
                continue;
            }
            s = ts_dtls_find(d, fd, &d->addrs[i]);
            if (s != NULL) {
                ts_dtls_feed(s, d->bufs[i], d->msgs[i].msg_len);
                continue;
            }
            memcpy(&d->lep.tuple.peer, &d->addrs[i], h->msg_namelen);
            d->lep.tuple.peer_len = h->msg_namelen;
            ts_dtls_hello(d, d->bufs[i], d->msgs[i].msg_len);
        }
        if (n < TS_DTLS_BATCH)
            break;
    }
}

void ts_turn_dtls_send(ts_worker_t *w, const turn_client_t *client, const uint8_t *data, size_t len)
{
    ts_dtls_t *d = __atomic_load_n(&w->locals[TS_LOCAL_DTLS].ptr, __ATOMIC_RELAXED);
    ts_dtls_sess_t *s;
    size_t n;

    if (d == NULL)
        return;
    s = ts_dtls_find(d, client->sock, &client->peer);
    if (s == NULL || s->id != client->conn_id || !s->established || s->closing)
        return; /* a session that went: the datagram is lost, as over UDP */
    ERR_clear_error();
    if (SSL_write_ex(s->ssl, data, len, &n) != 1)
        ts_dtls_close(s, ts_dtls_ssl_reason(s->ssl, 0), 0);
}

/* -------------------------------------------------------------- process -- */

void ts_turn_dtls_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, ts_dtls_bio_method_make);
}

void ts_turn_dtls_shutdown(void)
{
    BIO_meth_free(ts_dtls_bio_method);
    ts_dtls_bio_method = NULL;
}

void ts_turn_dtls_worker_stats(ts_worker_t *w, ts_dtls_stats_t *out)
{
    /* As ts_turn_worker_stats: the state is published with a release store
     * and every counter is read one word at a time. */
    ts_dtls_t *d = __atomic_load_n(&w->locals[TS_LOCAL_DTLS].ptr, __ATOMIC_ACQUIRE);

    memset(out, 0, sizeof(*out));
    if (d == NULL)
        return;
    out->sessions = ts_metric_get(d->stats.sessions);
    out->handshakes = ts_metric_get(d->stats.handshakes);
    out->sessions_total = ts_metric_get(d->stats.sessions_total);
    out->handshakes_failed = ts_metric_get(d->stats.handshakes_failed);
    out->hello_verify = ts_metric_get(d->stats.hello_verify);
    out->dropped = ts_metric_get(d->stats.dropped);
}

size_t ts_turn_dtls_metrics(ts_worker_t *workers, int nworkers, char *out, size_t cap)
{
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } m[] = {
        {"tsunagi_dtls_sessions", "gauge", "TURN DTLS sessions open now, handshakes included.",
         offsetof(ts_dtls_stats_t, sessions)},
        {"tsunagi_dtls_handshakes", "gauge", "TURN DTLS handshakes in progress.",
         offsetof(ts_dtls_stats_t, handshakes)},
        {"tsunagi_dtls_sessions_total", "counter", "TURN DTLS handshakes completed.",
         offsetof(ts_dtls_stats_t, sessions_total)},
        {"tsunagi_dtls_handshakes_failed_total", "counter",
         "TURN DTLS handshakes that failed, timed out or were refused over a limit.",
         offsetof(ts_dtls_stats_t, handshakes_failed)},
        {"tsunagi_dtls_hello_verify_total", "counter",
         "HelloVerifyRequests sent (cookie exchanges; no state kept).",
         offsetof(ts_dtls_stats_t, hello_verify)},
        {"tsunagi_dtls_dropped_total", "counter",
         "Datagrams on the DTLS port dropped: not DTLS, or not a ClientHello from a new address.",
         offsetof(ts_dtls_stats_t, dropped)},
    };
    uint64_t sum[TS_ARRAY_SIZE(m)] = {0};
    size_t len = 0;

    for (int i = 0; i < nworkers; i++) {
        ts_dtls_stats_t st;
        ts_turn_dtls_worker_stats(&workers[i], &st);
        for (size_t k = 0; k < TS_ARRAY_SIZE(m); k++)
            sum[k] += *(const uint64_t *)((const char *)&st + m[k].off);
    }
    for (size_t k = 0; k < TS_ARRAY_SIZE(m); k++) {
        int n = snprintf(out + len, cap - len, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", m[k].name,
                         m[k].help, m[k].name, m[k].type, m[k].name, (unsigned long long)sum[k]);
        if (n < 0 || (size_t)n >= cap - len)
            return 0;
        len += (size_t)n;
    }
    return len;
}
