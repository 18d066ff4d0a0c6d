/*
 * wsclient.c — see wsclient.h.
 */
#define _GNU_SOURCE /* strcasestr */
#include "wsclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define HS_MAX 2048 /* the largest 101 response head */

wsc_t wsc = {.rng = 0x9E3779B97F4A7C15ull};

static uint8_t *rbuf;
/* The local port range, and the next port to try in it. */
static int port_lo = 32768, port_hi = 60999, port_next;

void wsc_init(const char *host, int port, const wsc_ops_t *ops)
{
    FILE *f;

    wsc.host = host;
    wsc.port = port;
    wsc.ops = ops;
    memset(&wsc.sa, 0, sizeof(wsc.sa));
    wsc.sa.sin_family = AF_INET;
    wsc.sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &wsc.sa.sin_addr) != 1) {
        errx(1, "bad address %s", host);
    }
    signal(SIGPIPE, SIG_IGN);
    wsc.rng ^= wsb_now_ns() ^ (uint64_t)getpid() << 32;
    if ((f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) != NULL) {
        if (fscanf(f, "%d %d", &port_lo, &port_hi) != 2 || port_lo < 1024 || port_hi <= port_lo ||
            port_hi > 65535) {
            port_lo = 32768, port_hi = 60999;
        }
        fclose(f);
    }
    port_next = port_lo + (int)(wsb_rand(&wsc.rng) % (uint64_t)(port_hi - port_lo + 1));
    rbuf = malloc(WSC_RBUF);
    wsc.ep = epoll_create1(EPOLL_CLOEXEC);
    if (rbuf == NULL || wsc.ep < 0) {
        errx(1, "out of memory or epoll");
    }
}

/* ---- output ----------------------------------------------------------------- */

static void want_out(wsc_conn_t *c, int on)
{
    struct epoll_event ev;

    ev.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0);
    ev.data.ptr = c;
    epoll_ctl(wsc.ep, EPOLL_CTL_MOD, c->fd, &ev);
}

void wsc_send(wsc_conn_t *c, const uint8_t *buf, size_t len)
{
    ssize_t n = 0;

    if (c->out_len == 0) {
        n = write(c->fd, buf, len);
        if (n < 0) {
            if (errno != EAGAIN) {
                errx(1, "write to %s: %s", wsc.ops->name(c), strerror(errno));
            }
            n = 0;
        }
        if ((size_t)n == len) {
            return;
        }
    }
    if (wsc.out_max > 0 && c->out_len + len - (size_t)n > wsc.out_max) {
        errx(1, "%s: the server does not read (%zu bytes waiting)", wsc.ops->name(c), c->out_len);
    }
    if (c->out_len + len - (size_t)n > c->out_cap) {
        c->out_cap = (c->out_len + len - (size_t)n) * 2;
        if ((c->out = realloc(c->out, c->out_cap)) == NULL) {
            errx(1, "out of memory");
        }
    }
    memcpy(c->out + c->out_len, buf + n, len - (size_t)n);
    if (c->out_len == 0) {
        want_out(c, 1);
    }
    c->out_len += len - (size_t)n;
}

static void flush_out(wsc_conn_t *c)
{
    ssize_t n = write(c->fd, c->out, c->out_len);

    if (n < 0) {
        if (errno == EAGAIN) {
            return;
        }
        errx(1, "write to %s: %s", wsc.ops->name(c), strerror(errno));
    }
    memmove(c->out, c->out + n, c->out_len - (size_t)n);
    c->out_len -= (size_t)n;
    if (c->out_len == 0) {
        want_out(c, 0);
    }
}

uint8_t *wsc_put_frame(uint8_t *p, int op, const void *payload, size_t len)
{
    uint8_t mask[4];

    p = wsc_put_head(p, op, len, mask);
    wsb_mask(p, payload, len, mask, 0);
    return p + len;
}

void wsc_on_control(wsc_conn_t *c)
{
    if (c->op == 8) {
        int code = c->ctl_got >= 2 ? c->ctl[0] << 8 | c->ctl[1] : 0;

        errx(1, "%s: the server sent Close (code %d%s%.*s)", wsc.ops->name(c), code,
             c->ctl_got > 2 ? ": " : "", (int)(c->ctl_got > 2 ? c->ctl_got - 2 : 0),
             (const char *)c->ctl + 2);
    }
    if (c->op == 9) {
        uint8_t pong[6 + 125];
        uint8_t *e = wsc_put_frame(pong, 10, c->ctl, c->ctl_got);

        wsc_send(c, pong, (size_t)(e - pong));
    }
    c->ctl_got = 0;
}

/* ---- connection set-up -------------------------------------------------------- */

/* Bind a local port of our own, walking the ephemeral range: with tens of
 * thousands of connections to one address, letting connect() pick costs a
 * search of the range per connect (__inet_hash_connect), seconds in all. */
static void bind_local(int fd)
{
    struct sockaddr_in la;
    int tries, span = port_hi - port_lo + 1;

    memset(&la, 0, sizeof(la));
    la.sin_family = AF_INET;
    la.sin_addr = wsc.sa.sin_addr;
    for (tries = 0; tries < span; tries++) {
        la.sin_port = htons((uint16_t)port_next);
        port_next = port_next >= port_hi ? port_lo : port_next + 1;
        if (bind(fd, (struct sockaddr *)&la, sizeof(la)) == 0) {
            return;
        }
        if (errno != EADDRINUSE) {
            break;
        }
    }
    errx(1, "no free local port to bind: %s", strerror(errno));
}

void wsc_connect(wsc_conn_t *c)
{
    struct epoll_event ev;
    struct linger lg = {1, 0}; /* close with RST: no TIME_WAIT left behind */
    int one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        errx(1, "socket: %s", strerror(errno));
    }
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    bind_local(c->fd);
    if (connect(c->fd, (const struct sockaddr *)&wsc.sa, sizeof(wsc.sa)) != 0 &&
        errno != EINPROGRESS) {
        errx(1, "connect: %s", strerror(errno));
    }
    c->state = WSC_CONNECTING;
    c->hdr_need = 2;
    ev.events = EPOLLOUT;
    ev.data.ptr = c;
    if (epoll_ctl(wsc.ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        errx(1, "epoll_ctl: %s", strerror(errno));
    }
}

static void send_upgrade(wsc_conn_t *c)
{
    char req[768], key[25], target[256], origin[96] = "";
    uint8_t raw[16];
    uint64_t a = wsb_rand(&wsc.rng), b = wsb_rand(&wsc.rng);
    int len;

    memcpy(raw, &a, 8);
    memcpy(raw + 8, &b, 8);
    wsb_base64(raw, 16, key);
    wsb_accept(key, 24, c->accept);
    wsc.ops->target(c, target, sizeof(target));
    if (wsc.origin) {
        snprintf(origin, sizeof(origin), "Origin: http://%s:%d\r\n", wsc.host, wsc.port);
    }
    len = snprintf(req, sizeof(req),
                   "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n%s\r\n",
                   target, wsc.host, wsc.port, key, origin);
    if (write(c->fd, req, (size_t)len) != len) {
        errx(1, "write of the upgrade request: %s", strerror(errno));
    }
}

/* The 101's Sec-WebSocket-Accept (head NUL-terminated at its end) must be
 * c->accept, and no extension may be answered (none was offered). */
static void check_101(const wsc_conn_t *c, const char *head)
{
    const char *h, *v;
    size_t vlen;

    if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
        errx(1, "%s: not a 101 response: %.400s", wsc.ops->name(c), head);
    }
    if ((h = strcasestr(head, "\r\nsec-websocket-accept:")) == NULL) {
        errx(1, "101 without Sec-WebSocket-Accept");
    }
    v = h + 23;
    while (*v == ' ' || *v == '\t') {
        v++;
    }
    vlen = strcspn(v, "\r\n");
    while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t')) {
        vlen--;
    }
    if (vlen != 28 || memcmp(v, c->accept, 28) != 0) {
        errx(1, "wrong Sec-WebSocket-Accept '%.*s', expected '%s'", (int)vlen, v, c->accept);
    }
    if (strcasestr(head, "\r\nsec-websocket-extensions:") != NULL) {
        errx(1, "the server answered with an extension none was offered");
    }
}

/* The 101 so far; once it is whole and right, c is open. */
static void on_handshake(wsc_conn_t *c, uint64_t now)
{
    char *end;
    size_t head;
    ssize_t n;

    if (c->hs == NULL && (c->hs = malloc(HS_MAX)) == NULL) {
        errx(1, "out of memory");
    }
    n = read(c->fd, c->hs + c->hs_got, HS_MAX - 1 - c->hs_got);
    if (n <= 0) {
        if (n < 0 && errno == EAGAIN) {
            return;
        }
        errx(1, "%s: closed during the handshake (%s)", wsc.ops->name(c),
             n == 0 ? "EOF" : strerror(errno));
    }
    c->hs_got += (size_t)n;
    c->hs[c->hs_got] = '\0';
    if ((end = strstr(c->hs, "\r\n\r\n")) == NULL) {
        if (c->hs_got >= HS_MAX - 1) {
            errx(1, "handshake response too long");
        }
        return;
    }
    head = (size_t)(end - c->hs) + 4;
    *end = '\0';
    check_101(c, c->hs);
    c->state = WSC_OPEN;
    want_out(c, 0);
    wsc.ops->opened(c, now);
    if (c->hs_got > head) { /* frames right behind the 101 (PeerJS: OPEN) */
        wsc.ops->data(c, (uint8_t *)c->hs + head, c->hs_got - head, now);
    }
    free(c->hs);
    c->hs = NULL;
}

long wsc_on_event(wsc_conn_t *c, uint32_t events, uint64_t now)
{
    socklen_t elen = sizeof(int);
    int err = 0;
    ssize_t n;

    switch (c->state) {
    case WSC_CONNECTING:
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen);
        if (err != 0) {
            errx(1, "connect: %s", strerror(err));
        }
        send_upgrade(c);
        c->state = WSC_HANDSHAKE;
        want_out(c, 0);
        return 0;
    case WSC_HANDSHAKE:
        on_handshake(c, now);
        return 0;
    case WSC_CLOSED:
        return 0;
    }
    if (events & EPOLLOUT) {
        flush_out(c);
    }
    if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        return 0;
    }
    n = read(c->fd, rbuf, WSC_RBUF);
    if (n <= 0) {
        if (n < 0 && errno == EAGAIN) {
            return 0;
        }
        if (n == 0) {
            errno = 0;
        }
        return -1;
    }
    return wsc.ops->data(c, rbuf, (size_t)n, now);
}
