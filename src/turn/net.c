/*
 * net.c — STUN/TURN sockets on a worker's loop.
 *
 * Client datagrams are read in batches with recvmmsg; the answers the engine
 * produces while a batch is handled are queued and leave with one sendmmsg
 * per socket at the end of the loop turn. Relay sockets (one per allocation
 * and address family) are ordinary non-blocking UDP sockets on the same
 * loop, read in batches too.
 *
 * A TCP relay (RFC 6062) is a listening TCP socket in the same table; its
 * connections are in net_tcp.c.
 */
#include "turn/glue.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <pthread.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/bus.h"
#include "core/common.h"
#include "core/log.h"
#include "core/net.h"
#include "core/server.h"
#include "stun/msg.h"
#include "turn/dtls.h"

#define TS_TURN_READS      4 /* batches per readiness event, then let others run */
#define TS_TURN_PORT_TRIES 128
/* Larger datagrams are not packed for GSO: the kernel refuses a segment
 * that does not fit the route's MTU (IPv6's minimum 1280 less headers). */
#define TS_TURN_GSO_MAX_SEG 1200

/* -------------------------------------------------------------- output -- */

static int ts_turn_same_addr(const struct mmsghdr *a, const struct mmsghdr *b)
{
    return a->msg_hdr.msg_namelen == b->msg_hdr.msg_namelen &&
           memcmp(a->msg_hdr.msg_name, b->msg_hdr.msg_name, a->msg_hdr.msg_namelen) == 0;
}

/*
 * UDP GSO (UDP_SEGMENT): a run of queued datagrams to one address, all of
 * one size but the last (which may be shorter), leaves as one message whose
 * iovecs are the run's; the kernel builds, routes and queues one large
 * packet and cuts it into the datagrams on the wire. Over a relay that is
 * the common case: a client's burst goes to its one peer, and the peer's
 * answers to the one client. Returns how many messages the queue became.
 */
static unsigned ts_turn_gso_pack(ts_turn_glue_t *g, ts_turn_outq_t *q)
{
    unsigned n = 0;

    for (unsigned i = 0; i < q->n;) {
        struct mmsghdr *m = &q->gso[n];
        size_t seg = q->iov[i].iov_len;
        unsigned j = i + 1;

        /* (At most TS_TURN_BATCH segments of TS_TURN_GSO_MAX_SEG bytes:
         * within the kernel's 64 segments and 64 KiB.) An empty datagram
         * is never packed: a segment size of 0 means no GSO, and an empty
         * last segment would vanish. */
        while (!g->no_gso && seg > 0 && seg <= TS_TURN_GSO_MAX_SEG && j < q->n &&
               q->iov[j - 1].iov_len == seg && q->iov[j].iov_len <= seg && q->iov[j].iov_len > 0 &&
               ts_turn_same_addr(&q->msgs[i], &q->msgs[j]))
            j++;
        *m = q->msgs[i];
        if (j - i > 1) {
            struct cmsghdr *cm = (struct cmsghdr *)q->cmsg[n];
            uint16_t gso = (uint16_t)seg;

            m->msg_hdr.msg_iovlen = j - i;
            m->msg_hdr.msg_control = cm;
            m->msg_hdr.msg_controllen = CMSG_SPACE(sizeof(gso));
            cm->cmsg_level = SOL_UDP;
            cm->cmsg_type = UDP_SEGMENT;
            cm->cmsg_len = CMSG_LEN(sizeof(gso));
            memcpy(CMSG_DATA(cm), &gso, sizeof(gso));
        }
        q->gso_n[n++] = j - i;
        i = j;
    }
    return n;
}

/* Send what q holds with sendmmsg (all of it goes to one socket). */
static void ts_turn_flush_q(ts_turn_glue_t *g, ts_turn_outq_t *q)
{
    unsigned sent = 0, n = ts_turn_gso_pack(g, q);

    while (sent < n) {
        int k = sendmmsg(q->fd, q->gso + sent, n - sent, MSG_DONTWAIT);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if ((errno == EIO || errno == EINVAL) && q->gso_n[sent] > 1 && !g->no_gso) {
                /* No GSO on this route or kernel: from now on one by one. */
                ts_log_warn("turn: UDP GSO refused (%s); sending datagrams one by one",
                            strerror(errno));
                g->no_gso = 1;
                n = ts_turn_gso_pack(g, q);
                sent = 0;
                continue;
            }
            /* A full socket buffer drops datagrams, as UDP may. */
            ts_log_debug("turn: sendmmsg: %s (%u messages dropped)", strerror(errno), n - sent);
            break;
        }
        for (int i = 0; i < k; i++)
            ts_metric_add(g->w->metrics.bytes_out, q->gso[sent + (unsigned)i].msg_len);
        sent += (unsigned)k;
    }
    q->n = 0;
}

static void ts_turn_flush_udp(ts_turn_glue_t *g)
{
    ts_turn_flush_q(g, &g->out);
    ts_turn_flush_q(g, &g->rout);
}

static void ts_turn_on_flush(ts_loop_t *loop, ts_defer_t *d)
{
    ts_turn_flush_udp(ts_container_of(d, ts_turn_glue_t, flush));
}

/* Queue a datagram for fd; consecutive ones for the same socket leave in
 * one sendmmsg, at the latest at the end of the loop turn. */
static void ts_turn_enqueue(ts_turn_glue_t *g, ts_turn_outq_t *q, int fd,
                            const struct sockaddr *to, socklen_t tolen, const uint8_t *data,
                            size_t len)
{
    unsigned i;

    if (len > TS_TURN_DGRAM)
        return;
    if (q->n > 0 && (q->fd != fd || q->n == TS_TURN_BATCH))
        ts_turn_flush_q(g, q);
    i = q->n++;
    q->fd = fd;
    memcpy(q->data[i], data, len);
    memcpy(&q->addrs[i], to, tolen);
    q->iov[i].iov_base = q->data[i];
    q->iov[i].iov_len = len;
    memset(&q->msgs[i], 0, sizeof(q->msgs[i]));
    q->msgs[i].msg_hdr.msg_name = &q->addrs[i];
    q->msgs[i].msg_hdr.msg_namelen = tolen;
    q->msgs[i].msg_hdr.msg_iov = &q->iov[i];
    q->msgs[i].msg_hdr.msg_iovlen = 1;
    ts_defer(&g->w->loop, &g->flush);
}

static void ts_turn_send_udp(ts_turn_glue_t *g, int fd, const struct sockaddr *to, socklen_t tolen,
                             const uint8_t *data, size_t len)
{
    ts_turn_enqueue(g, &g->out, fd, to, tolen, data, len);
}

/* ---------------------------------------------------------- engine I/O -- */

static uint64_t ts_turn_now(void *ctx)
{
    ts_turn_glue_t *g = ctx;
    return ts_loop_now(&g->w->loop);
}

static void ts_turn_send_client(void *ctx, const turn_client_t *client, const uint8_t *data,
                                size_t len)
{
    ts_turn_glue_t *g = ctx;
    ts_conn_t *c;

    if (client->transport == TURN_TRANSPORT_UDP) {
        ts_turn_send_udp(g, client->sock, (const struct sockaddr *)&client->peer, client->peer_len,
                         data, len);
        return;
    }
    if (client->transport == TURN_TRANSPORT_DTLS) {
        ts_turn_dtls_send(g->w, client, data, len);
        return;
    }
    c = ts_idmap_get(&g->w->conns, client->conn_id);
    if (c != NULL && c->ops == &ts_turn_stream_ops)
        ts_conn_write(c, data, len);
}

static void ts_turn_on_relay_readable(ts_loop_t *loop, ts_io_t *io, uint32_t events);
static void ts_turn_relay_free(ts_loop_t *loop, ts_defer_t *d);

/* The address peers reach a relay at: --external-ip, else the relay address,
 * else this host's first address of the family that is not loopback. */
static void ts_turn_advertised(const ts_config_t *cfg, int family, struct sockaddr_storage *ss)
{
    struct ifaddrs *ifa, *i;
    const char *ip = cfg->external_ip ? cfg->external_ip : cfg->relay_ip;

    if (ip != NULL) {
        if (family == AF_INET && inet_pton(AF_INET, ip, &((struct sockaddr_in *)ss)->sin_addr) == 1)
            return;
        if (family == AF_INET6 &&
            inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1)
            return;
    }
    if (getifaddrs(&ifa) != 0)
        return;
    for (i = ifa; i != NULL; i = i->ifa_next) {
        if (i->ifa_addr == NULL || i->ifa_addr->sa_family != family ||
            (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
            continue;
        if (family == AF_INET)
            ((struct sockaddr_in *)ss)->sin_addr = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
        else
            ((struct sockaddr_in6 *)ss)->sin6_addr =
                ((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
        break;
    }
    freeifaddrs(ifa);
}

static void ts_turn_relay_addr(const ts_config_t *cfg, int family, uint16_t port,
                               struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    ss->ss_family = (sa_family_t)family;
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_port = htons(port);
        if (cfg->relay_ip != NULL && inet_pton(AF_INET, cfg->relay_ip, &in->sin_addr) != 1)
            in->sin_addr.s_addr = htonl(INADDR_ANY);
        *len = sizeof(*in);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_port = htons(port);
        if (cfg->relay_ip == NULL || inet_pton(AF_INET6, cfg->relay_ip, &in6->sin6_addr) != 1)
            in6->sin6_addr = in6addr_any;
        *len = sizeof(*in6);
    }
}

/*
 * A socket of family and type bound to ss. TCP relays share their address
 * between the listening socket and the connections made from it (RFC 6062
 * 4.3), hence SO_REUSEADDR and SO_REUSEPORT on both.
 */
int ts_turn__bind(int family, int type, const struct sockaddr_storage *ss, socklen_t len)
{
    int one = 1, fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (type == SOCK_STREAM) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    }
    if (bind(fd, (const struct sockaddr *)ss, len) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Bind a relay socket of family on the relay address at port: UDP, or a
 * listening TCP socket when tcp. */
static int ts_turn_bind_relay(const ts_config_t *cfg, int family, uint16_t port, int tcp)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd;

    ts_turn_relay_addr(cfg, family, port, &ss, &len);
    if (tcp) {
        /* The relay's own sockets share the port through SO_REUSEPORT, so
         * another relay's listener would be let in too: first make sure no
         * one holds the port, with a plain bind. */
        int probe = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int busy = probe < 0 || bind(probe, (const struct sockaddr *)&ss, len) < 0;
        if (probe >= 0)
            close(probe);
        if (busy)
            return -1;
    }
    fd = ts_turn__bind(family, tcp ? SOCK_STREAM : SOCK_DGRAM, &ss, len);
    if (fd >= 0 && !tcp)
        ts_net_udp_buffers(fd);
    if (fd >= 0 && tcp && listen(fd, 16) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static turn_relay_t ts_turn_relay_open(void *ctx, int family, uint16_t port, unsigned flags,
                                       struct sockaddr_storage *bound, socklen_t *bound_len)
{
    ts_turn_glue_t *g = ctx;
    const ts_config_t *cfg = g->cfg;
    unsigned lo = cfg->min_port, hi = cfg->max_port, range = hi - lo + 1;
    int fd = -1, tcp = (flags & TURN_RELAY_TCP) != 0;
    ts_turn_relay_sock_t *r;
    size_t id;

    if (port != 0) {
        fd = ts_turn_bind_relay(cfg, family, port, tcp);
    } else {
        unsigned tries = TS_MIN(range, TS_TURN_PORT_TRIES);
        for (unsigned t = 0; t < tries && fd < 0; t++) {
            unsigned p = lo + (g->port_cursor++ % range);
            if ((flags & TURN_RELAY_EVEN_PORT) && (p & 1))
                p = p + 1 <= hi ? p + 1 : lo + (lo & 1);
            fd = ts_turn_bind_relay(cfg, family, (uint16_t)p, tcp);
            if (fd >= 0 && (flags & TURN_RELAY_RESERVE_NEXT)) {
                /* port + 1 must be free for the reservation that follows. */
                int next = p + 1 <= hi ? ts_turn_bind_relay(cfg, family, (uint16_t)(p + 1), 0) : -1;
                if (next < 0) {
                    close(fd);
                    fd = -1;
                } else {
                    /* Kept for port_hold, which the engine calls next. */
                    if (g->next_fd >= 0)
                        close(g->next_fd);
                    g->next_fd = next;
                    g->next_family = family;
                    g->next_port = (uint16_t)(p + 1);
                }
            }
            port = (uint16_t)p;
        }
    }
    if (fd < 0)
        return -1;

    for (id = 0; id < g->nrelays && g->relays[id] != NULL; id++) {
    }
    if (id == g->nrelays) {
        size_t n = g->nrelays ? g->nrelays * 2 : 64;
        g->relays = ts_realloc(g->relays, n * sizeof(*g->relays));
        memset(g->relays + g->nrelays, 0, (n - g->nrelays) * sizeof(*g->relays));
        g->nrelays = n;
    }
    r = ts_calloc(1, sizeof(*r));
    r->io.fd = fd;
    r->io.cb = ts_turn_on_relay_readable;
    r->g = g;
    r->id = (turn_relay_t)id;
    r->tcp = tcp;
    ts_defer_init(&r->free, ts_turn_relay_free);
    g->relays[id] = r;
    if (ts_io_start(&g->w->loop, &r->io, TS_IO_READ) != TS_OK) {
        close(fd);
        free(r);
        g->relays[id] = NULL;
        return -1;
    }
    /* A drain waits for the relay: its allocation carries a call. */
    ts_worker_hold(g->w);

    if (!g->advertised_ok[family == AF_INET6]) {
        struct sockaddr_storage *adv = &g->advertised[family == AF_INET6];
        memset(adv, 0, sizeof(*adv));
        adv->ss_family = (sa_family_t)family;
        ts_turn_advertised(cfg, family, adv);
        g->advertised_ok[family == AF_INET6] = 1;
    }
    *bound = g->advertised[family == AF_INET6];
    if (family == AF_INET) {
        ((struct sockaddr_in *)bound)->sin_port = htons(port);
        *bound_len = sizeof(struct sockaddr_in);
    } else {
        ((struct sockaddr_in6 *)bound)->sin6_port = htons(port);
        *bound_len = sizeof(struct sockaddr_in6);
    }
    return (turn_relay_t)id;
}

/*
 * EVEN-PORT reservations: port + 1 stays bound, to a socket nobody reads
 * (the smallest receive buffer, so a peer sending there costs little),
 * until the token is used or expires. The handle is the descriptor, good in
 * every worker; ctx is not needed (it may be NULL).
 */
static int ts_turn_port_hold(void *ctx, int family, uint16_t port)
{
    ts_turn_glue_t *g = ctx;
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, small = 1;

    if (g->next_fd >= 0 && g->next_family == family && g->next_port == port) {
        fd = g->next_fd; /* relay_open found it free and kept it bound */
        g->next_fd = -1;
    } else {
        ts_turn_relay_addr(g->cfg, family, port, &ss, &len);
        fd = ts_turn__bind(family, SOCK_DGRAM, &ss, len);
    }
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    return fd;
}

static void ts_turn_port_release(void *ctx, int handle)
{
    TS_UNUSED(ctx);
    close(handle);
}

static void ts_turn_relay_close(void *ctx, turn_relay_t relay)
{
    ts_turn_glue_t *g = ctx;
    ts_turn_relay_sock_t *r;

    if (relay < 0 || (size_t)relay >= g->nrelays || (r = g->relays[relay]) == NULL)
        return;
    /* Datagrams queued for this socket go before it closes (its number
     * could be reused by the next socket opened). */
    if (g->rout.n > 0 && g->rout.fd == r->io.fd)
        ts_turn_flush_q(g, &g->rout);
    ts_io_stop(&g->w->loop, &r->io);
    close(r->io.fd);
    r->io.fd = -1;
    g->relays[relay] = NULL;
    /* This batch of events may still hold the socket's readiness: the loop
     * skips a stopped io, but only if its memory is still there. */
    ts_defer(&g->w->loop, &r->free);
    ts_worker_release(g->w);
}

static void ts_turn_relay_free(ts_loop_t *loop, ts_defer_t *d)
{
    free(ts_container_of(d, ts_turn_relay_sock_t, free));
}

static void ts_turn_relay_send(void *ctx, turn_relay_t relay, const struct sockaddr *peer,
                               socklen_t peer_len, const uint8_t *data, size_t len,
                               int dont_fragment)
{
    ts_turn_glue_t *g = ctx;
    ts_turn_relay_sock_t *r;

    if (relay < 0 || (size_t)relay >= g->nrelays || (r = g->relays[relay]) == NULL || r->tcp)
        return;
    if (dont_fragment) {
        int v = IP_PMTUDISC_DO;
        /* What is queued was sent without it. */
        if (g->rout.n > 0 && g->rout.fd == r->io.fd)
            ts_turn_flush_q(g, &g->rout);
        if (peer->sa_family == AF_INET)
            setsockopt(r->io.fd, IPPROTO_IP, IP_MTU_DISCOVER, &v, sizeof(v));
        else
            setsockopt(r->io.fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &v, sizeof(v));
    }
    ts_turn_enqueue(g, &g->rout, r->io.fd, peer, peer_len, data, len);
}

/* ------------------------------------------------------------- engine -- */

static void ts_turn_on_tick(ts_loop_t *loop, ts_timer_t *t)
{
    ts_turn_glue_t *g = ts_container_of(t, ts_turn_glue_t, tick);
    int next;

    turn_server_tick(g->engine);
    next = turn_server_next_timeout(g->engine);
    ts_timer_start(loop, t, next < 0 || next > 1000 ? 1000 : (uint64_t)(next > 0 ? next : 1));
}

static void ts_turn_glue_free(void *ptr)
{
    ts_turn_glue_t *g = ptr;

    ts_timer_stop(&g->w->loop, &g->tick);
    ts_turn_flush_udp(g);
    if (g->next_fd >= 0)
        close(g->next_fd);
    turn_server_free(g->engine);
    for (size_t i = 0; i < g->nrelays; i++) {
        if (g->relays[i] != NULL)
            ts_turn_relay_close(g, (turn_relay_t)i);
    }
    /* The loop has stopped: run the frees (and a pending flush) now. */
    ts_loop_run_deferred(&g->w->loop);
    free(g->relays);
    free(g);
}

/* State every worker's engine shares: quotas, the nonce key, reservations. */
static turn_shared_t *ts_turn_shared_state;
static pthread_once_t ts_turn_shared_once = PTHREAD_ONCE_INIT;

static void ts_turn_shared_make(void)
{
    ts_turn_shared_state = turn_shared_new();
}

static void *ts_turn_glue_new(void)
{
    ts_worker_t *w = ts_worker_current();
    ts_turn_glue_t *g = ts_calloc(1, sizeof(*g));
    turn_io_t io = {
        .ctx = g,
        .now_ms = ts_turn_now,
        .send_client = ts_turn_send_client,
        .relay_open = ts_turn_relay_open,
        .relay_close = ts_turn_relay_close,
        .relay_send = ts_turn_relay_send,
        .tcp_connect = ts_turn__tcp_connect,
        .tcp_close = ts_turn__tcp_close,
        .tcp_splice = ts_turn__tcp_splice,
        .tcp_move = ts_turn__tcp_move,
        .port_hold = ts_turn_port_hold,
        .port_release = ts_turn_port_release,
    };

    g->w = w;
    g->cfg = ts_server_config(w->server);
    g->port_cursor = (unsigned)(ts_now_ms() * 2654435761u) ^ (unsigned)w->index * 7919u;
    g->next_fd = -1;
    g->engine = turn_server_new(g->cfg, &io);
    pthread_once(&ts_turn_shared_once, ts_turn_shared_make);
    turn_server_set_shared(g->engine, ts_turn_shared_state);
    turn_server_set_tag(g->engine, (unsigned)w->index);
    ts_worker_on_message(w, TS_TURN_MSG_MOVE, ts_turn__on_move);
    ts_timer_init(&g->tick, ts_turn_on_tick);
    ts_defer_init(&g->flush, ts_turn_on_flush);
    ts_timer_start(&w->loop, &g->tick, 1000);
    for (int i = 0; i < TS_TURN_BATCH; i++) {
        g->iov[i].iov_base = g->bufs[i];
        g->iov[i].iov_len = TS_TURN_DGRAM;
    }
    return g;
}

ts_turn_glue_t *ts_turn__glue(ts_worker_t *w)
{
    ts_turn_glue_t *g = ts_worker_local(w, TS_LOCAL_TURN, ts_turn_glue_new, ts_turn_glue_free);
    const ts_config_t *cfg = ts_server_config(w->server);

    if (g->cfg != cfg) {
        g->cfg = cfg; /* SIGHUP installed a new configuration */
        g->advertised_ok[0] = g->advertised_ok[1] = 0;
        turn_server_set_config(g->engine, cfg);
    }
    if (w->draining && !g->draining) {
        g->draining = 1;
        turn_server_set_draining(g->engine);
    }
    return g;
}

turn_server_t *ts_turn_engine(ts_worker_t *w)
{
    return w != NULL ? ts_turn__glue(w)->engine : NULL;
}

/* ------------------------------------------------------------ reading -- */

/* Read up to TS_TURN_BATCH datagrams from fd into the glue's batch. */
static int ts_turn_recv_batch(ts_turn_glue_t *g, int fd)
{
    int n;

    for (int i = 0; i < TS_TURN_BATCH; i++) {
        memset(&g->msgs[i].msg_hdr, 0, sizeof(g->msgs[i].msg_hdr));
        g->msgs[i].msg_hdr.msg_name = &g->addrs[i];
        g->msgs[i].msg_hdr.msg_namelen = sizeof(g->addrs[i]);
        g->msgs[i].msg_hdr.msg_iov = &g->iov[i];
        g->msgs[i].msg_hdr.msg_iovlen = 1;
    }
    do {
        n = recvmmsg(fd, g->msgs, TS_TURN_BATCH, MSG_DONTWAIT, NULL);
    } while (n < 0 && errno == EINTR);
    return n;
}

/* The listener's own address, asked of the kernel once per socket. */
static void ts_turn_listen_local(ts_turn_glue_t *g, int fd, turn_client_t *client)
{
    unsigned i;

    for (i = 0; i < g->nlisten_local && g->listen_local[i].fd != fd; i++) {
    }
    if (i == g->nlisten_local) {
        if (i == TS_ARRAY_SIZE(g->listen_local)) {
            client->local_len = sizeof(client->local);
            getsockname(fd, (struct sockaddr *)&client->local, &client->local_len);
            return;
        }
        g->listen_local[i].fd = fd;
        g->listen_local[i].len = sizeof(g->listen_local[i].sa);
        getsockname(fd, (struct sockaddr *)&g->listen_local[i].sa, &g->listen_local[i].len);
        g->nlisten_local++;
    }
    client->local = g->listen_local[i].sa;
    client->local_len = g->listen_local[i].len;
}

void ts_turn_on_udp(ts_worker_t *w, int fd)
{
    ts_turn_glue_t *g = ts_turn__glue(w);
    turn_client_t client;

    memset(&client, 0, sizeof(client));
    client.transport = TURN_TRANSPORT_UDP;
    client.sock = fd;
    ts_turn_listen_local(g, fd, &client);
    for (int round = 0; round < TS_TURN_READS; round++) {
        int n = ts_turn_recv_batch(g, fd);
        if (n <= 0)
            break;
        for (int i = 0; i < n; i++) {
            struct msghdr *h = &g->msgs[i].msg_hdr;
            ts_metric_add(w->metrics.bytes_in, g->msgs[i].msg_len);
            if (h->msg_flags & MSG_TRUNC)
                continue; /* larger than any TURN packet we relay */
            memcpy(&client.peer, &g->addrs[i], h->msg_namelen);
            client.peer_len = h->msg_namelen;
            turn_server_on_client(g->engine, &client, g->bufs[i], g->msgs[i].msg_len);
        }
        if (n < TS_TURN_BATCH)
            break;
    }
}

static void ts_turn_on_relay_readable(ts_loop_t *loop, ts_io_t *io, uint32_t events)
{
    ts_turn_relay_sock_t *r = ts_container_of(io, ts_turn_relay_sock_t, io);
    ts_turn_glue_t *g = r->g;
    turn_relay_t id = r->id;
    int fd = io->fd;

    if (r->tcp) {
        ts_turn__on_tcp_acceptable(r);
        return;
    }
    for (int round = 0; round < TS_TURN_READS; round++) {
        int n = ts_turn_recv_batch(g, fd);
        if (n <= 0)
            break;
        for (int i = 0; i < n; i++) {
            struct msghdr *h = &g->msgs[i].msg_hdr;
            if (h->msg_flags & MSG_TRUNC)
                continue;
            turn_server_on_relay(g->engine, id, (struct sockaddr *)&g->addrs[i], h->msg_namelen,
                                 g->bufs[i], g->msgs[i].msg_len);
            /* The engine may have closed this relay (an expired allocation). */
            if ((size_t)id >= g->nrelays || g->relays[id] != r)
                return;
        }
        if (n < TS_TURN_BATCH)
            break;
    }
}

/* ------------------------------------------------------ TCP and TLS -- */

static void ts_turn_stream_client(ts_conn_t *c, turn_client_t *client)
{
    memset(client, 0, sizeof(*client));
    client->transport = c->tls != NULL ? TURN_TRANSPORT_TLS : TURN_TRANSPORT_TCP;
    ts_peer_to_sockaddr(&c->peer, &client->peer, &client->peer_len);
    client->local_len = sizeof(client->local);
    getsockname(c->io.fd, (struct sockaddr *)&client->local, &client->local_len);
    client->conn_id = c->id;
    client->sock = -1;
}

int ts_turn__stream_on_read(ts_conn_t *c)
{
    ts_turn_glue_t *g = ts_turn__glue(c->worker);
    turn_client_t client;
    int have_client = 0;

    while (c->in.len > 0 && !(c->flags & (TS_CONN_CLOSING | TS_CONN_CLOSE_AFTER))) {
        const uint8_t *p = (const uint8_t *)ts_buf_head(&c->in);
        long n = stun_stream_frame_len(p, c->in.len);
        if (n < 0) {
            c->close_reason = "not STUN or ChannelData";
            return TS_ERR_PROTO;
        }
        if (n == 0 || (size_t)n > c->in.len) {
            if (c->in.len > STUN_HEADER_LEN + 0xffff) { /* the longest STUN message */
                c->close_reason = "frame too large";
                return TS_ERR_PROTO;
            }
            break;
        }
        if (!have_client) {
            ts_turn_stream_client(c, &client);
            have_client = 1;
        }
        turn_server_on_client(g->engine, &client, p, (size_t)n);
        ts_buf_consume(&c->in, &c->worker->pool, (size_t)n);
        if (c->ops != &ts_turn_stream_ops) /* ConnectionBind spliced it: bytes from here */
            return (c->flags & TS_CONN_CLOSING) ? TS_OK : c->ops->on_read(c);
    }
    /* Draining: a client whose allocation went (Refresh with LIFETIME 0)
     * has nothing left to do here once its answer is out. */
    if (c->worker->draining && have_client && !turn_server_has_allocation(g->engine, &client)) {
        ts_conn_close_after_write(c, "shutting down");
        return TS_OK;
    }
    /* With an allocation: longer than the longest lifetime between
     * refreshes. Without one (a Binding, a refused Allocate) the client gets
     * the 30 s of on_open again from its last whole message; part of a
     * header and then silence does not reset it. */
    if (have_client)
        ts_conn_set_timeout(c, turn_server_has_allocation(g->engine, &client) ? 3700 * 1000
                                                                             : 30 * 1000);
    return TS_OK;
}

static int ts_turn_stream_on_open(ts_conn_t *c)
{
    /* A connection that says nothing in 30 s is not a TURN client. */
    ts_conn_set_timeout(c, 30 * 1000);
    return TS_OK;
}

/* Shutting down: a client with an allocation keeps its connection (its
 * call's media runs through it) until the allocation goes or the drain
 * deadline passes; any other client is closed now. */
static void ts_turn_stream_on_shutdown(ts_conn_t *c)
{
    ts_turn_glue_t *g = ts_turn__glue(c->worker);
    turn_client_t client;

    ts_turn_stream_client(c, &client);
    if (!turn_server_has_allocation(g->engine, &client))
        ts_conn_close(c, "shutting down");
}

static void ts_turn_stream_on_close(ts_conn_t *c)
{
    ts_turn_glue_t *g = ts_turn__glue(c->worker);
    turn_client_t client;

    ts_turn_stream_client(c, &client);
    turn_server_on_client_closed(g->engine, &client);
}

const ts_conn_ops_t ts_turn_stream_ops = {
    .name = "turn",
    .kind = TS_PROTO_TURN,
    .conn_size = sizeof(ts_conn_t),
    .on_open = ts_turn_stream_on_open,
    .on_read = ts_turn__stream_on_read,
    .on_eof = NULL,
    .on_drain = NULL,
    .on_timeout = NULL,
    .on_shutdown = ts_turn_stream_on_shutdown,
    .on_close = ts_turn_stream_on_close,
};

void ts_turn_shutdown(void)
{
    /* Every worker's engine is gone by now. */
    if (ts_turn_shared_state != NULL)
        turn_shared_free(ts_turn_shared_state);
    ts_turn_shared_state = NULL;
}

int ts_turn_worker_stats(ts_worker_t *w, turn_stats_t *out)
{
    /* Read from another thread (/metrics): the glue is published with a
     * release store (ts_worker_local) and the counters are read one word at
     * a time, each a value the owner really had. */
    ts_turn_glue_t *g = __atomic_load_n(&w->locals[TS_LOCAL_TURN].ptr, __ATOMIC_ACQUIRE);
    const turn_stats_t *st;

    memset(out, 0, sizeof(*out));
    if (g == NULL)
        return 0;
    st = turn_server_stats(g->engine);
    out->allocations = ts_metric_get(st->allocations);
    out->allocations_total = ts_metric_get(st->allocations_total);
    out->binding_requests = ts_metric_get(st->binding_requests);
    out->requests = ts_metric_get(st->requests);
    out->auth_failures = ts_metric_get(st->auth_failures);
    out->relayed_packets = ts_metric_get(st->relayed_packets);
    out->relayed_bytes = ts_metric_get(st->relayed_bytes);
    out->dropped = ts_metric_get(st->dropped);
    out->rate_limited = ts_metric_get(st->rate_limited);
    return 1;
}
