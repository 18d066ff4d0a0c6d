/*
 * idleconn — what one idle HTTP keep-alive connection costs a server in RSS.
 *
 *   idleconn -p PORT [-a 127.0.0.1] [-n 10000] [-w 100] [-s 1000] [-t 60]
 *            [-u /healthz] PID...
 *
 * Reads the summed VmRSS of the server PIDs, opens N connections to
 * ADDR:PORT (at most W connecting or waiting for an answer at a time, so the
 * listen backlog never overflows), sends one GET on each and reads the whole
 * response, then holds them all idle for S ms and reads the RSS again. One
 * line of key=value on stdout:
 *
 *   n=10000 before_kib=3120 after_kib=9480 delta_kib=6360 per_conn_bytes=651.3 closed=0
 *
 * "closed" counts connections the server closed while they were held; any
 * failure (refused, reset, bad status, deadline of T s) exits 1 with a
 * message on stderr. Connections end with an RST (SO_LINGER 0) so repeated
 * runs do not leave tens of thousands of TIME_WAIT sockets behind.
 *
 * A separate process from the shell script because it needs its own N file
 * descriptors; the server needs another N.
 */
#define _GNU_SOURCE /* strcasestr */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/opts.h"
#include "../common/proc.h"

#define RESP_MAX 1024

enum { ST_CONNECTING, ST_READING, ST_IDLE, ST_CLOSED };

typedef struct {
    int fd;
    int state;
    size_t got;
    char resp[RESP_MAX];
} conn_t;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 1: a whole response is in c->resp; 0: not yet; -1: malformed or too big. */
static int resp_complete(conn_t *c)
{
    char *end, *cl;
    size_t head, len = 0;

    c->resp[c->got] = '\0';
    end = strstr(c->resp, "\r\n\r\n");
    if (end == NULL) {
        return c->got >= RESP_MAX - 1 ? -1 : 0;
    }
    head = (size_t)(end - c->resp) + 4;
    cl = strcasestr(c->resp, "\r\ncontent-length:");
    if (cl != NULL && cl < end) {
        len = strtoul(cl + 17, NULL, 10);
    }
    if (c->got > head + len) {
        return -1;
    }
    return c->got == head + len;
}

static int start_connect(int ep, conn_t *c, const struct sockaddr_in *sa)
{
    struct epoll_event ev;
    struct linger lg = {1, 0};
    int one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        fprintf(stderr, "idleconn: socket: %s\n", strerror(errno));
        return -1;
    }
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0 && errno != EINPROGRESS) {
        fprintf(stderr, "idleconn: connect: %s\n", strerror(errno));
        return -1;
    }
    c->state = ST_CONNECTING;
    c->got = 0;
    ev.events = EPOLLOUT;
    ev.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        fprintf(stderr, "idleconn: epoll_ctl: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

/* Drive one connection on an event; returns 1 when it just became idle. */
static int on_event(int ep, conn_t *c, const char *req, size_t reqlen)
{
    struct epoll_event ev;
    socklen_t elen = sizeof(int);
    int err = 0, r;
    ssize_t n;

    if (c->state == ST_CONNECTING) {
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen);
        if (err != 0) {
            fprintf(stderr, "idleconn: connect: %s\n", strerror(err));
            exit(1);
        }
        /* The request is tiny: one write always takes it whole. */
        if (write(c->fd, req, reqlen) != (ssize_t)reqlen) {
            fprintf(stderr, "idleconn: write: %s\n", strerror(errno));
            exit(1);
        }
        c->state = ST_READING;
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.ptr = c;
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        return 0;
    }
    if (c->state == ST_IDLE) {
        /* An idle keep-alive connection should see nothing; data or EOF
         * means the server closed it (keep-alive timeout or limit). */
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        c->state = ST_CLOSED;
        return -1;
    }
    n = read(c->fd, c->resp + c->got, RESP_MAX - 1 - c->got);
    if (n <= 0) {
        fprintf(stderr, "idleconn: server closed or reset a connection before answering (%s)\n",
                n == 0 ? "EOF" : strerror(errno));
        exit(1);
    }
    c->got += (size_t)n;
    r = resp_complete(c);
    if (r < 0) {
        fprintf(stderr, "idleconn: unexpected response: %.200s\n", c->resp);
        exit(1);
    }
    if (r == 0) {
        return 0;
    }
    if (strncmp(c->resp, "HTTP/1.1 200", 12) != 0) {
        fprintf(stderr, "idleconn: not a 200 response: %.200s\n", c->resp);
        exit(1);
    }
    c->state = ST_IDLE;
    return 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: idleconn -p PORT [-a ADDR] [-n N] [-w INFLIGHT] [-s SETTLE_MS] "
                    "[-t TIMEOUT_S] [-u PATH] PID...\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1", *path = "/healthz";
    long n = 10000, window = 100, settle_ms = 1000, timeout_s = 60;
    long started = 0, idle = 0, closed = 0, before, after, i;
    int port = 0, ep, k, nev;
    struct epoll_event evs[256];
    struct sockaddr_in sa;
    char req[256];
    size_t reqlen;
    double deadline, hold_end;
    conn_t *conns;
    const opt_t table[] = {{'a', OPT_STR, &addr},       {'p', OPT_INT, &port},
                           {'n', OPT_LONG, &n},         {'w', OPT_LONG, &window},
                           {'s', OPT_LONG, &settle_ms}, {'t', OPT_LONG, &timeout_s},
                           {'u', OPT_STR, &path},       {0, OPT_FLAG, NULL}};
    int first = opts_parse(argc, argv, 1, table);

    if (first < 0 || port <= 0 || n <= 0 || window <= 0 || first >= argc) {
        usage();
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "idleconn: bad address %s\n", addr);
        return 2;
    }
    reqlen = (size_t)snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n", path,
                              addr, port);
    proc_need_nofile(n + 16, "");
    conns = calloc((size_t)n, sizeof(*conns));
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (conns == NULL || ep < 0) {
        fprintf(stderr, "idleconn: out of memory or epoll: %s\n", strerror(errno));
        return 1;
    }

    before = proc_rss_kib(argc - first, argv + first);
    deadline = now_s() + (double)timeout_s;

    while (idle < n) {
        while (started < n && started - idle < window) {
            if (start_connect(ep, &conns[started], &sa) != 0) {
                return 1;
            }
            started++;
        }
        if (now_s() > deadline) {
            fprintf(stderr, "idleconn: only %ld of %ld connections answered within %ld s\n", idle,
                    n, timeout_s);
            return 1;
        }
        nev = epoll_wait(ep, evs, 256, 100);
        for (k = 0; k < nev; k++) {
            int r = on_event(ep, evs[k].data.ptr, req, reqlen);
            if (r > 0) {
                idle++;
            } else if (r < 0) {
                closed++;
            }
        }
    }

    /* Hold them idle; the server frees per-request state when a connection
     * goes back to waiting, and RSS should show the idle state, not the busy one. */
    hold_end = now_s() + (double)settle_ms / 1000.0;
    while (now_s() < hold_end) {
        nev = epoll_wait(ep, evs, 256, 50);
        for (k = 0; k < nev; k++) {
            if (on_event(ep, evs[k].data.ptr, req, reqlen) < 0) {
                closed++;
            }
        }
    }
    after = proc_rss_kib(argc - first, argv + first);

    printf("n=%ld before_kib=%ld after_kib=%ld delta_kib=%ld per_conn_bytes=%.1f closed=%ld\n", n,
           before, after, after - before, (double)(after - before) * 1024.0 / (double)n, closed);
    fflush(stdout);
    if (closed > 0) {
        fprintf(stderr, "idleconn: the server closed %ld idle connections while they were held\n",
                closed);
    }
    for (i = 0; i < n; i++) {
        close(conns[i].fd);
    }
    free(conns);
    close(ep);
    return closed > 0 ? 1 : 0;
}
