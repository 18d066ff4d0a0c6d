/*
 * minimal_echo — the least a WebSocket echo server can do, as the benchmark's
 * "kernel limit" reference: one thread, epoll (level-triggered), accept, answer
 * the upgrade with 101 and Sec-WebSocket-Accept, then for each read: unmask every
 * complete frame into one output buffer (same opcode and FIN, unmasked header)
 * and write all of it with a single write. Ping → Pong, Close → Close back.
 * No UTF-8 check, no limits beyond a 1 MiB frame, no timers: what is left is
 * the kernel's TCP work plus one pass over the bytes.
 *
 *   minimal_echo [-a 127.0.0.1] [-p PORT]
 *
 * With -p 0 (the default) the kernel picks the port. Prints
 * "listening on 127.0.0.1:PORT" on stdout once it accepts connections.
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

#include "wsbench.h"

#define BUF_MAX (1u << 20) /* largest frame, and the shared read/write buffers */
#define REQ_MAX 4096

typedef struct {
    int fd;
    int ws;      /* 0: reading the HTTP upgrade request; 1: WebSocket */
    int closing; /* close after the pending output is written */
    uint8_t *in; /* an incomplete frame (or request) kept between reads */
    size_t in_len;
    uint8_t *out; /* output a short write left behind */
    size_t out_len;
} conn_t;

static int ep;
static uint8_t *rbuf, *wbuf;

static void set_events(conn_t *c, uint32_t ev)
{
    struct epoll_event e = {.events = ev, .data.ptr = c};

    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void conn_close(conn_t *c)
{
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
}

/* Write len bytes of wbuf; keep what the socket does not take. 0 ok, -1 closed. */
static int conn_write(conn_t *c, const uint8_t *buf, size_t len)
{
    ssize_t n = write(c->fd, buf, len);

    if (n < 0) {
        if (errno != EAGAIN) {
            return -1;
        }
        n = 0;
    }
    if ((size_t)n < len) {
        c->out = malloc(len - (size_t)n);
        if (c->out == NULL) {
            return -1;
        }
        memcpy(c->out, buf + n, len - (size_t)n);
        c->out_len = len - (size_t)n;
        set_events(c, EPOLLOUT); /* stop reading until the peer takes it */
        return 0;
    }
    return c->closing ? -1 : 0;
}

/* Keep p[0..len) for the next read. */
static int keep(conn_t *c, const uint8_t *p, size_t len)
{
    if (len == 0) {
        c->in_len = 0;
        return 0;
    }
    uint8_t *n = realloc(c->in, len);
    if (n == NULL) {
        return -1;
    }
    memmove(n, p, len);
    c->in = n;
    c->in_len = len;
    return 0;
}

static int on_request(conn_t *c, uint8_t *buf, size_t len)
{
    char *end, *k, accept[29], resp[256];
    size_t klen, head;
    int n;

    buf[len] = '\0';
    end = strstr((char *)buf, "\r\n\r\n");
    if (end == NULL) {
        return len >= REQ_MAX ? -1 : keep(c, buf, len);
    }
    head = (size_t)(end - (char *)buf) + 4;
    *end = '\0';
    k = strcasestr((char *)buf, "\r\nsec-websocket-key:");
    if (k == NULL) {
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
    if (write(c->fd, resp, (size_t)n) != n) {
        return -1;
    }
    c->ws = 1;
    return keep(c, buf + head, len - head);
}

/* Echo every complete frame in buf[0..len) with one write; keep the rest. */
static int on_frames(conn_t *c, uint8_t *buf, size_t len)
{
    uint8_t *p = buf, *end = buf + len, *w = wbuf;

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
        if (op == 10) { /* Pong: nothing to do */
            p += hl + 4 + plen;
            continue;
        }
        /* Same FIN and opcode (Ping becomes Pong), unmasked. */
        *w++ = (uint8_t)((p[0] & 0x80) | (op == 9 ? 10 : op));
        if (plen < 126) {
            *w++ = (uint8_t)plen;
        } else if (plen < 65536) {
            *w++ = 126, *w++ = (uint8_t)(plen >> 8), *w++ = (uint8_t)plen;
        } else {
            *w++ = 127;
            for (int i = 7; i >= 0; i--) {
                *w++ = (uint8_t)((uint64_t)plen >> (8 * i));
            }
        }
        wsb_mask(w, p + hl + 4, plen, p + hl, 0);
        w += plen;
        p += hl + 4 + plen;
        if (op == 8) {
            c->closing = 1;
            break;
        }
    }
    if (keep(c, p, (size_t)(end - p)) != 0) {
        return -1;
    }
    if (w > wbuf) {
        return conn_write(c, wbuf, (size_t)(w - wbuf));
    }
    return c->closing ? -1 : 0;
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
        if (have + (size_t)n > REQ_MAX) {
            return -1;
        }
        if (on_request(c, rbuf, have + (size_t)n) != 0) {
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
        if (c->closing) {
            return -1;
        }
        set_events(c, EPOLLIN | EPOLLRDHUP);
    }
    return 0;
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
        switch (o) {
        case 'a':
            addr = optarg;
            break;
        case 'p':
            port = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: minimal_echo [-a ADDR] [-p PORT]\n");
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
        perror("minimal_echo: setup");
        return 1;
    }
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 4096) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
        perror("minimal_echo: bind/listen");
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
            perror("minimal_echo: epoll_wait");
            return 1;
        }
        for (i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            int rc = 0;

            if (c == NULL) {
                int fd;

                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    c = calloc(1, sizeof(*c));
                    if (c == NULL) {
                        close(fd);
                        continue;
                    }
                    c->fd = fd;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    e.events = EPOLLIN | EPOLLRDHUP;
                    e.data.ptr = c;
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
                }
                continue;
            }
            if (c->out_len > 0) {
                if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
                    rc = on_writable(c);
                }
            } else if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) {
                rc = on_readable(c);
            }
            if (rc != 0) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                conn_close(c);
            }
        }
    }
}
