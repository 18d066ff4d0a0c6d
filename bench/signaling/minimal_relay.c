/*
 * minimal_relay — the least a signaling relay can do, as the benchmark's
 * "kernel floor" reference: one thread, epoll (level-triggered), accept,
 * answer the WebSocket upgrade, send {"type":"OPEN"} (so PeerJS-shaped clients
 * start), then forward every frame a client sends, unmasked and otherwise
 * unchanged, to its partner. No JSON, no ids in the messages, no limits beyond
 * a 1 MiB frame, no timers: what is left is the kernel's loopback TCP work
 * (one read and one write per relayed message, or per batch) plus one pass
 * over the bytes.
 *
 * Partners: the upgrade's query carries id=PREFIX-N (bench/signaling/sigload.c
 * names clients so); N and N^1 are partners. Bytes for a partner that is not
 * connected are dropped.
 *
 *   minimal_relay [-a 127.0.0.1] [-p PORT]
 *
 * With -p 0 (the default) the kernel picks the port. Prints
 * "listening on ADDR:PORT" on stdout once it accepts connections.
 */
#define _GNU_SOURCE /* accept4, strcasestr */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../ws/wsbench.h"

#define BUF_MAX  (1u << 20)
#define REQ_MAX  4096
#define SLOTS    (1u << 17) /* client numbers modulo this; more than one run holds */
#define OPEN_MSG "{\"type\":\"OPEN\"}"

typedef struct {
    int fd;
    int ws;      /* 0: reading the HTTP upgrade request; 1: WebSocket */
    long slot;   /* index in slots[], -1 before the upgrade */
    uint8_t *in; /* an incomplete frame (or request) kept between reads */
    size_t in_len;
    uint8_t *out; /* output a short write left behind */
    size_t out_len;
} conn_t;

static int ep;
static uint8_t *rbuf, *wbuf;
static conn_t *slots[SLOTS];

static void set_events(conn_t *c, uint32_t ev)
{
    struct epoll_event e = {.events = ev, .data.ptr = c};

    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void conn_close(conn_t *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->slot >= 0 && slots[c->slot] == c) {
        slots[c->slot] = NULL;
    }
    free(c->in);
    free(c->out);
    free(c);
}

/* Write to c, appending to what it already waits to write. 0 ok, -1 broken. */
static int conn_write(conn_t *c, const uint8_t *buf, size_t len)
{
    ssize_t n = 0;
    uint8_t *o;

    if (c->out_len == 0) {
        n = write(c->fd, buf, len);
        if (n < 0) {
            if (errno != EAGAIN) {
                return -1;
            }
            n = 0;
        }
        if ((size_t)n == len) {
            return 0;
        }
    }
    if ((o = realloc(c->out, c->out_len + len - (size_t)n)) == NULL) {
        return -1;
    }
    memcpy(o + c->out_len, buf + n, len - (size_t)n);
    if (c->out_len == 0) {
        set_events(c, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
    }
    c->out = o;
    c->out_len += len - (size_t)n;
    return 0;
}

static int keep(conn_t *c, const uint8_t *p, size_t len)
{
    uint8_t *n;

    if (len == 0) {
        c->in_len = 0;
        return 0;
    }
    if ((n = realloc(c->in, len)) == NULL) {
        return -1;
    }
    memmove(n, p, len);
    c->in = n;
    c->in_len = len;
    return 0;
}

/* The slot of "id=PREFIX-N" in the request line, or -1. */
static long id_slot(const char *req)
{
    const char *id = strstr(req, "id="), *e, *dash;

    if (id == NULL || (e = strpbrk(id, "& ")) == NULL) {
        return -1;
    }
    for (dash = e; dash > id && dash[-1] != '-'; dash--) {
    }
    if (dash == id) {
        return -1;
    }
    return strtol(dash, NULL, 10) % SLOTS;
}

static int on_request(conn_t *c, uint8_t *buf, size_t len)
{
    char *end, *k, accept[29], resp[256];
    uint8_t open_frame[2 + sizeof(OPEN_MSG)];
    size_t klen, head;
    int n;

    buf[len] = '\0';
    if ((end = strstr((char *)buf, "\r\n\r\n")) == NULL) {
        return len >= REQ_MAX ? -1 : keep(c, buf, len);
    }
    head = (size_t)(end - (char *)buf) + 4;
    *end = '\0';
    if ((k = strcasestr((char *)buf, "\r\nsec-websocket-key:")) == NULL ||
        (c->slot = id_slot((char *)buf)) < 0) {
        return -1;
    }
    k += 20;
    while (*k == ' ' || *k == '\t') {
        k++;
    }
    klen = strcspn(k, " \t\r\n");
    wsb_accept(k, klen, accept);
    n = snprintf(resp, sizeof(resp),
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                 accept);
    open_frame[0] = 0x81;
    open_frame[1] = (uint8_t)(sizeof(OPEN_MSG) - 1);
    memcpy(open_frame + 2, OPEN_MSG, sizeof(OPEN_MSG) - 1);
    if (write(c->fd, resp, (size_t)n) != n ||
        write(c->fd, open_frame, sizeof(open_frame) - 1) != (ssize_t)sizeof(open_frame) - 1) {
        return -1;
    }
    slots[c->slot] = c; /* an earlier run's client with this number is forgotten */
    c->ws = 1;
    return keep(c, buf + head, len - head);
}

/* Forward every complete frame in buf[0..len) to the partner with one write. */
static int on_frames(conn_t *c, uint8_t *buf, size_t len)
{
    uint8_t *p = buf, *end = buf + len, *w = wbuf;
    conn_t *peer = slots[c->slot ^ 1];

    while (end - p >= 2) {
        int op = p[0] & 0x0f, l7 = p[1] & 0x7f;
        size_t hl = 2, plen = (size_t)l7;

        if (!(p[1] & 0x80)) {
            return -1; /* client frames must be masked */
        }
        if (l7 == 126) {
            if (end - p < 4) {
                break;
            }
            plen = (size_t)p[2] << 8 | p[3];
            hl = 4;
        } else if (l7 == 127) {
            if (end - p < 10) {
                break;
            }
            plen = 0;
            for (int i = 2; i < 10; i++) {
                plen = plen << 8 | p[i];
            }
            hl = 10;
            if (plen > BUF_MAX - 14) {
                return -1;
            }
        }
        if ((size_t)(end - p) < hl + 4 + plen) {
            break;
        }
        if (op == 8) {
            return -1;
        }
        if (op >= 9) { /* Ping, Pong: not forwarded */
            p += hl + 4 + plen;
            continue;
        }
        memcpy(w, p, hl);
        w[1] &= 0x7f;
        wsb_mask(w + hl, p + hl + 4, plen, p + hl, 0);
        w += hl + plen;
        p += hl + 4 + plen;
    }
    if (keep(c, p, (size_t)(end - p)) != 0) {
        return -1;
    }
    if (w > wbuf && peer != NULL) {
        /* A broken partner is closed by its own next event, not here: it may
         * still be in this round's event list. */
        (void)conn_write(peer, wbuf, (size_t)(w - wbuf));
    }
    return 0;
}

static int on_readable(conn_t *c)
{
    size_t have = c->in_len;
    ssize_t n;

    if (have > 0) {
        memcpy(rbuf, c->in, have);
    }
    n = read(c->fd, rbuf + have, BUF_MAX - have);
    if (n <= 0) {
        return n < 0 && errno == EAGAIN ? 0 : -1;
    }
    if (!c->ws) {
        if (have + (size_t)n > REQ_MAX || on_request(c, rbuf, have + (size_t)n) != 0) {
            return -1;
        }
        if (c->ws && c->in_len > 0) {
            memcpy(rbuf, c->in, c->in_len);
            return on_frames(c, rbuf, c->in_len);
        }
        return 0;
    }
    return on_frames(c, rbuf, have + (size_t)n);
}

static int on_writable(conn_t *c)
{
    ssize_t n = write(c->fd, c->out, c->out_len);

    if (n < 0) {
        return errno == EAGAIN ? 0 : -1;
    }
    memmove(c->out, c->out + n, c->out_len - (size_t)n);
    c->out_len -= (size_t)n;
    if (c->out_len == 0) {
        free(c->out);
        c->out = NULL;
        set_events(c, EPOLLIN | EPOLLRDHUP);
    }
    return 0;
}

static void on_accept(int lfd)
{
    struct epoll_event e;
    int fd, one = 1;
    conn_t *c;

    while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        if ((c = calloc(1, sizeof(*c))) == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->slot = -1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        e.events = EPOLLIN | EPOLLRDHUP;
        e.data.ptr = c;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
    }
}

int main(int argc, char **argv)
{
    struct epoll_event evs[512], e;
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    struct rlimit rl;
    const char *addr = "127.0.0.1";
    int port = 0, o, lfd, one = 1, n, i;

    while ((o = getopt(argc, argv, "a:p:")) != -1) {
        if (o == 'a') {
            addr = optarg;
        } else if (o == 'p') {
            port = atoi(optarg);
        } else {
            fprintf(stderr, "usage: minimal_relay [-a ADDR] [-p PORT]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    rbuf = malloc(BUF_MAX + 1);
    wbuf = malloc(BUF_MAX);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (rbuf == NULL || wbuf == NULL || lfd < 0 || ep < 0 ||
        inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        perror("minimal_relay: setup");
        return 1;
    }
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 4096) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
        perror("minimal_relay: bind/listen");
        return 1;
    }
    e.events = EPOLLIN;
    e.data.ptr = NULL;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e);
    printf("listening on %s:%d\n", addr, ntohs(sa.sin_port));
    fflush(stdout);
    for (;;) {
        n = epoll_wait(ep, evs, 512, -1);
        if (n < 0 && errno != EINTR) {
            perror("minimal_relay: epoll_wait");
            return 1;
        }
        for (i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            int rc = 0;

            if (c == NULL) {
                on_accept(lfd);
                continue;
            }
            if ((evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && c->out_len > 0) {
                rc = on_writable(c);
            }
            if (rc == 0 && (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))) {
                rc = on_readable(c);
            }
            if (rc != 0) {
                conn_close(c);
            }
        }
    }
}
