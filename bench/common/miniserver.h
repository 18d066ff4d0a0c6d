/*
 * miniserver — the skeleton of the benchmarks' "kernel floor" WebSocket
 * servers (bench/ws/minimal_echo.c, bench/signaling/minimal_relay.c): one
 * thread, level-triggered epoll, accept, read the upgrade request and answer
 * it with 101 and Sec-WebSocket-Accept, then hand every read's complete
 * frames to the program (ms_ops_t.frames), which writes what it makes with
 * one ms_write. No limits beyond a 1 MiB frame, no timers: what is left is
 * the kernel's TCP work plus one pass over the bytes. Header-only (static
 * functions, one translation unit): the hot path compiles as if it were the
 * program's own. Include it first, after #define _GNU_SOURCE (accept4,
 * strcasestr); ms__ names are its own internals.
 *
 * One read per readiness, into one shared buffer behind the bytes an earlier
 * read left incomplete; one write per batch. What a short write leaves is
 * kept and written on EPOLLOUT.
 *
 *   PROGRAM [-a 127.0.0.1] [-p PORT]
 *
 * With -p 0 (the default) the kernel picks the port. Prints
 * "listening on ADDR:PORT" on stdout once it accepts connections.
 */
#ifndef MINISERVER_H
#define MINISERVER_H

#include <arpa/inet.h>
#include <err.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proc.h"
#include "wsbench.h"

#define MS_BUF_MAX (1u << 20) /* largest frame, and the shared read/write buffers */

typedef struct {
    int fd;
    int ws;      /* 0: reading the HTTP upgrade request; 1: WebSocket */
    int closing; /* close once the pending output is written */
    long slot;   /* the program's own number for it; -1 until it sets one */
    uint8_t *in; /* an incomplete frame (or request) kept between reads, owned */
    size_t in_len;
    uint8_t *out; /* output a short write left behind, owned */
    size_t out_len;
} ms_conn_t;

typedef struct {
    const char *name; /* the program, for messages */
    /* 1: a connection with output pending is not read until it is written
     * (an echo stops its client); 0: it is, and more output queues up. */
    int stall_reads;
    /* The upgrade request's head (NUL-terminated) is in, not yet answered;
     * -1 refuses it. NULL: every request is taken. */
    int (*request)(ms_conn_t *c, const char *req);
    /* The 101 is written; -1 closes the connection. NULL: nothing to do. */
    int (*upgraded)(ms_conn_t *c);
    /* Frames in buf[0..len): handle every complete one, ms_keep the rest;
     * -1 closes the connection. */
    int (*frames)(ms_conn_t *c, uint8_t *buf, size_t len);
    /* c is about to be freed. NULL: nothing to do. */
    void (*closed)(ms_conn_t *c);
} ms_ops_t;

/*
 * The client frame at p[0..end): 1 when it is whole (*op, *hl the head's
 * length without the mask key, *plen the payload's), 0 when more bytes are
 * needed, -1 when it is not masked or larger than the buffers. Inline: it
 * runs for every frame.
 */
static inline int ms_frame(const uint8_t *p, const uint8_t *end, int *op, size_t *hl, size_t *plen)
{
    int l7;

    if (end - p < 2) {
        return 0;
    }
    l7 = p[1] & 0x7f;
    *op = p[0] & 0x0f;
    *hl = 2;
    *plen = (size_t)l7;
    if (!(p[1] & 0x80)) {
        return -1; /* client frames must be masked */
    }
    if (l7 == 126) {
        if (end - p < 4) {
            return 0;
        }
        *plen = (size_t)p[2] << 8 | p[3];
        *hl = 4;
    } else if (l7 == 127) {
        if (end - p < 10) {
            return 0;
        }
        *plen = 0;
        for (int i = 2; i < 10; i++) {
            *plen = *plen << 8 | p[i];
        }
        *hl = 10;
        if (*plen > MS_BUF_MAX - 14) {
            return -1;
        }
    }
    return (size_t)(end - p) >= *hl + 4 + *plen;
}

#define MS_REQ_MAX 4096 /* the largest upgrade request */

/* Output scratch of MS_BUF_MAX bytes for ms_ops->frames. */
static uint8_t *ms_wbuf;

static const ms_ops_t *ms_ops;
static int ms_ep;
static uint8_t *ms_rbuf;

static void ms__set_events(ms_conn_t *c, uint32_t ev)
{
    struct epoll_event e = {.events = ev, .data.ptr = c};

    epoll_ctl(ms_ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void ms__close(ms_conn_t *c)
{
    epoll_ctl(ms_ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (ms_ops->closed != NULL) {
        ms_ops->closed(c);
    }
    free(c->in);
    free(c->out);
    free(c);
}

/* Write buf to c, after what it already waits to write. 0 ok, -1 broken
 * (or closing and all written). */
static int ms_write(ms_conn_t *c, const uint8_t *buf, size_t len)
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
            return c->closing ? -1 : 0;
        }
    }
    if ((o = realloc(c->out, c->out_len + len - (size_t)n)) == NULL) {
        return -1;
    }
    memcpy(o + c->out_len, buf + n, len - (size_t)n);
    if (c->out_len == 0) {
        ms__set_events(c, ms_ops->stall_reads ? EPOLLOUT : EPOLLIN | EPOLLOUT | EPOLLRDHUP);
    }
    c->out = o;
    c->out_len += len - (size_t)n;
    return 0;
}

/* Keep p[0..len) for the next read. 0 ok, -1 out of memory. */
static int ms_keep(ms_conn_t *c, const uint8_t *p, size_t len)
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

/* The upgrade request so far in buf[0..len) (buf has room for a NUL). */
static int ms__request(ms_conn_t *c, uint8_t *buf, size_t len)
{
    char *end, *k, accept[29], resp[256];
    size_t klen, head;
    int n;

    buf[len] = '\0';
    if ((end = strstr((char *)buf, "\r\n\r\n")) == NULL) {
        return len >= MS_REQ_MAX ? -1 : ms_keep(c, buf, len);
    }
    head = (size_t)(end - (char *)buf) + 4;
    *end = '\0';
    if ((k = strcasestr((char *)buf, "\r\nsec-websocket-key:")) == NULL ||
        (ms_ops->request != NULL && ms_ops->request(c, (char *)buf) < 0)) {
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
    if (write(c->fd, resp, (size_t)n) != n ||
        (ms_ops->upgraded != NULL && ms_ops->upgraded(c) != 0)) {
        return -1;
    }
    c->ws = 1;
    return ms_keep(c, buf + head, len - head);
}

static int ms__readable(ms_conn_t *c)
{
    size_t have = c->in_len;
    ssize_t n;

    if (have > 0) {
        memcpy(ms_rbuf, c->in, have);
    }
    n = read(c->fd, ms_rbuf + have, MS_BUF_MAX - have);
    if (n <= 0) {
        return n < 0 && errno == EAGAIN ? 0 : -1;
    }
    if (!c->ws) {
        if (have + (size_t)n > MS_REQ_MAX || ms__request(c, ms_rbuf, have + (size_t)n) != 0) {
            return -1;
        }
        if (c->ws && c->in_len > 0) {
            memcpy(ms_rbuf, c->in, c->in_len);
            return ms_ops->frames(c, ms_rbuf, c->in_len);
        }
        return 0;
    }
    return ms_ops->frames(c, ms_rbuf, have + (size_t)n);
}

static int ms__writable(ms_conn_t *c)
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
        ms__set_events(c, EPOLLIN | EPOLLRDHUP);
    }
    return 0;
}

static void ms__accept(int lfd)
{
    struct epoll_event e;
    int fd, one = 1;
    ms_conn_t *c;

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
        epoll_ctl(ms_ep, EPOLL_CTL_ADD, fd, &e);
    }
}

static void ms__event(ms_conn_t *c, uint32_t events)
{
    int pending = c->out_len > 0, rc = 0;

    if (pending && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        rc = ms__writable(c);
    }
    if (rc == 0 && !(pending && ms_ops->stall_reads) &&
        (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))) {
        rc = ms__readable(c);
    }
    if (rc != 0) {
        ms__close(c);
    }
}

/* The listening socket on addr:port (0: the kernel picks), in the loop. */
static int ms__listen(const char *addr, int port)
{
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int lfd, one = 1;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ms_ep = epoll_create1(EPOLL_CLOEXEC);
    if (ms_rbuf == NULL || ms_wbuf == NULL || lfd < 0 || ms_ep < 0 ||
        inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        warn("setup");
        return -1;
    }
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 4096) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
        warn("bind/listen");
        return -1;
    }
    epoll_ctl(ms_ep, EPOLL_CTL_ADD, lfd, &e);
    printf("listening on %s:%d\n", addr, ntohs(sa.sin_port));
    fflush(stdout);
    return lfd;
}

/* Parse -a/-p, listen, serve forever; returns only on a start-up error. */
static int ms_main(int argc, char **argv, const ms_ops_t *program)
{
    struct epoll_event evs[512];
    const char *addr = "127.0.0.1";
    int port = 0, o, lfd, n, i;

    ms_ops = program;
    while ((o = getopt(argc, argv, "a:p:")) != -1) {
        if (o == 'a') {
            addr = optarg;
        } else if (o == 'p') {
            port = atoi(optarg);
        } else {
            fprintf(stderr, "usage: %s [-a ADDR] [-p PORT]\n", ms_ops->name);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    proc_raise_nofile(); /* one socket per client */
    ms_rbuf = malloc(MS_BUF_MAX + 1);
    ms_wbuf = malloc(MS_BUF_MAX);
    if ((lfd = ms__listen(addr, port)) < 0) {
        return 1;
    }
    for (;;) {
        n = epoll_wait(ms_ep, evs, 512, -1);
        if (n < 0 && errno != EINTR) {
            warn("epoll_wait");
            return 1;
        }
        for (i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                ms__accept(lfd);
            } else {
                ms__event(evs[i].data.ptr, evs[i].events);
            }
        }
    }
}

#endif
