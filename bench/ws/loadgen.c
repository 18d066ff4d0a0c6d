/*
 * loadgen — a WebSocket echo load generator (RFC 6455 client side, one thread, epoll).
 *
 *   loadgen echo -p PORT [-a 127.0.0.1] [-u /echo] [-c CONNS] [-s SIZE] [-k INFLIGHT] [-C CPU]
 *               [-d SECONDS] [-w WARMUP_S] [-W CONNECTING] [-t TIMEOUT_S] [-T] [PID...]
 *   loadgen idle -p PORT [-a ...] [-u ...] -c CONNS [-S SETTLE_MS] [-W ...] [-t ...] PID...
 *
 * Both modes open CONNS connections (at most CONNECTING handshakes in progress at
 * a time, so no listen backlog overflows), each with a fresh random
 * Sec-WebSocket-Key, and check the "HTTP/1.1 101" status line and the
 * Sec-WebSocket-Accept value. No extension is offered (no permessage-deflate).
 *
 * echo: once every connection is open, each keeps INFLIGHT binary messages of
 * SIZE bytes in flight (-T: text). Every frame is masked with a fresh random
 * mask. When a read completes messages, as many new ones are written back on
 * that connection in one write (a client that batches the way the servers may).
 * A message's payload starts with its per-connection sequence number and
 * connection index, the rest is a fixed random pattern; every echoed byte is
 * compared (echoes may come back in any number of frames). Latency is from
 * the write that carried a message to the read that completed its echo, kept in
 * a log-linear histogram (1/32 of an octave, about 3 %). The first WARMUP_S
 * seconds are not counted; then a window of SECONDS seconds is measured, and
 * the server's CPU time over exactly that window is read from /proc/PID/stat
 * (utime + stime of every PID given, all threads); with -C CPU, that core's
 * busy and softirq shares from /proc/stat over the same window (what else ran
 * there). One line of key=value:
 *
 *   mode=echo conns=100 size=64 inflight=1 window_s=5.000 msgs=... msgs_per_s=...
 *   p50_us=... p99_us=... p999_us=... max_us=... server_cpu_s=... server_busy_pct=...
 *   msgs_per_cpu_s=... client_busy_pct=... min_conn_msgs=... cpu_busy_pct=...
 *   cpu_softirq_pct=... errors=0
 *
 * idle: read the servers' summed VmRSS, open CONNS connections, hold them all
 * idle for SETTLE_MS, read it again (kernel socket memory is not in RSS):
 *
 *   mode=idle n=19000 before_kib=... after_kib=... delta_kib=... per_conn_bytes=... closed=0
 *
 * Any protocol error, verification failure, refused or closed connection
 * exits 1 with a message on stderr. Connections end with an RST (SO_LINGER 0)
 * so repeated runs leave no TIME_WAIT sockets behind, and bind their local
 * port themselves, walking the ephemeral range (see bind_local).
 *
 * One process, so CONNS + 16 file descriptors (the server needs as many): at
 * 20,000 open files per process, 19,000 connections fit on each side.
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wsbench.h"

#define HS_MAX   2048
#define RBUF_MAX (1u << 20)
#define HIST_N   2048

enum { ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSED };

typedef struct {
    int fd;
    int state;
    uint32_t idx;
    char *hs; /* handshake response so far (ST_HANDSHAKE only) */
    size_t hs_got;
    char accept[29];
    uint64_t tx_seq, rx_seq; /* next to send, next to complete */
    uint64_t *ts;            /* send time of seq, at ts[seq % inflight] */
    uint64_t window_msgs;
    uint8_t *out; /* bytes a short write left behind */
    size_t out_len, out_cap;
    /* receive state machine */
    uint8_t hdr[14];
    int hdr_got, hdr_need;
    int in_frame, in_msg, opcode, fin, ctl_op;
    uint64_t frame_left, msg_off;
    uint8_t ctl[125];
    size_t ctl_got;
} conn_t;

static struct {
    const char *addr, *path;
    int port, text, idle;
    long conns, size, inflight, window, timeout_s, settle_ms;
    double duration, warmup;
    int npids;
    char **pids;
    int cpu; /* -C: the server's CPU, for /proc/stat; -1: none */
} opt = {"127.0.0.1", "/echo", 0, 0, 0, 100, 64, 1, 200, 60, 1000, 5.0, 1.0, 0, NULL, -1};

static conn_t *conns;
static int ep;
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint8_t *pattern; /* the payload bytes after the 8-byte sequence */
static uint8_t *rbuf, *wbuf;
static size_t wbuf_cap;
static int measuring, stopping;
static uint64_t hist[HIST_N], window_msgs, lat_max;
static long opened, closed_idle;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "loadgen: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static int hist_idx(uint64_t v)
{
    int mag;

    if (v < 64) {
        return (int)v;
    }
    mag = 63 - __builtin_clzll(v);
    return 64 + (mag - 6) * 32 + (int)((v >> (mag - 5)) & 31);
}

/* The middle of a bucket, in ns. */
static double hist_val(int i)
{
    int mag;
    uint64_t lo, w;

    if (i < 64) {
        return i;
    }
    mag = (i - 64) / 32 + 6;
    w = 1ull << (mag - 5);
    lo = (1ull << mag) + (uint64_t)((i - 64) % 32) * w;
    return (double)lo + (double)w / 2;
}

static double hist_pct(double p)
{
    uint64_t total = 0, seen = 0, want;
    int i;

    for (i = 0; i < HIST_N; i++) {
        total += hist[i];
    }
    if (total == 0) {
        return 0;
    }
    want = (uint64_t)(p * (double)total);
    if (want >= total) {
        want = total - 1;
    }
    for (i = 0; i < HIST_N; i++) {
        seen += hist[i];
        if (seen > want) {
            return hist_val(i);
        }
    }
    return 0;
}

static long cpu_ticks(void)
{
    char path[64], buf[1024], *p;
    long sum = 0, ut, st;
    int i, fd;
    ssize_t n;

    for (i = 0; i < opt.npids; i++) {
        snprintf(path, sizeof(path), "/proc/%s/stat", opt.pids[i]);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            die("cannot read %s: %s", path, strerror(errno));
        }
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0) {
            die("cannot read %s: %s", path, strerror(errno));
        }
        buf[n] = '\0';
        p = strrchr(buf, ')');
        /* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt
         * cmajflt utime stime */
        if (p == NULL ||
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st) != 2) {
            die("cannot parse %s", path);
        }
        sum += ut + st;
    }
    return sum;
}

/* Ticks of CPU opt.cpu from /proc/stat: [0] busy (everything but idle and
 * iowait), [1] softirq, [2] total. */
static void cpu_stat(long long out[3])
{
    char line[512], name[16];
    long long v[10];
    FILE *f = fopen("/proc/stat", "r");

    out[0] = out[1] = out[2] = 0;
    if (f == NULL || opt.cpu < 0) {
        if (f != NULL) {
            fclose(f);
        }
        return;
    }
    snprintf(name, sizeof(name), "cpu%d ", opt.cpu);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, name, strlen(name)) != 0) {
            continue;
        }
        memset(v, 0, sizeof(v));
        sscanf(line + strlen(name), "%lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2],
               &v[3], &v[4], &v[5], &v[6], &v[7]);
        /* user nice system idle iowait irq softirq steal */
        out[0] = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
        out[1] = v[6];
        out[2] = out[0] + v[3] + v[4];
        break;
    }
    fclose(f);
}

static long rss_kib(void)
{
    char path[64], line[256];
    long sum = 0, v;
    FILE *f;
    int i;

    for (i = 0; i < opt.npids; i++) {
        snprintf(path, sizeof(path), "/proc/%s/status", opt.pids[i]);
        f = fopen(path, "r");
        if (f == NULL) {
            die("cannot read %s: %s", path, strerror(errno));
        }
        while (fgets(line, sizeof(line), f) != NULL) {
            if (sscanf(line, "VmRSS: %ld kB", &v) == 1) {
                sum += v;
            }
        }
        fclose(f);
    }
    return sum;
}

static double self_cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void raise_nofile(long need)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if ((long)rl.rlim_cur < need) {
        fprintf(stderr, "loadgen: need %ld file descriptors, the limit is %ld\n", need,
                (long)rl.rlim_cur);
        exit(1);
    }
}

static void want_out(conn_t *c, int on)
{
    struct epoll_event ev;

    ev.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0);
    ev.data.ptr = c;
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Write buf, keeping what the socket does not take in c->out. */
static void send_bytes(conn_t *c, const uint8_t *buf, size_t len)
{
    ssize_t n = 0;

    if (c->out_len == 0) {
        n = write(c->fd, buf, len);
        if (n < 0) {
            if (errno != EAGAIN) {
                die("write on connection %u: %s", c->idx, strerror(errno));
            }
            n = 0;
        }
        if ((size_t)n == len) {
            return;
        }
    }
    if (c->out_len + len - (size_t)n > c->out_cap) {
        c->out_cap = (c->out_len + len - (size_t)n) * 2;
        c->out = realloc(c->out, c->out_cap);
        if (c->out == NULL) {
            die("out of memory");
        }
    }
    memcpy(c->out + c->out_len, buf + n, len - (size_t)n);
    if (c->out_len == 0) {
        want_out(c, 1);
    }
    c->out_len += len - (size_t)n;
}

static void flush_out(conn_t *c)
{
    ssize_t n = write(c->fd, c->out, c->out_len);

    if (n < 0) {
        if (errno == EAGAIN) {
            return;
        }
        die("write on connection %u: %s", c->idx, strerror(errno));
    }
    memmove(c->out, c->out + n, c->out_len - (size_t)n);
    c->out_len -= (size_t)n;
    if (c->out_len == 0) {
        want_out(c, 0);
    }
}

/* The first 8 payload bytes of message seq on connection idx. */
static void seq_bytes(const conn_t *c, uint64_t seq, uint8_t out[8])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t v = seq | (uint64_t)c->idx << 40;
    int i;

    if (opt.text) {
        for (i = 0; i < 8; i++) {
            out[i] = (uint8_t)hex[(v >> (4 * i)) & 15];
        }
    } else {
        memcpy(out, &v, 8);
    }
}

/* Append one masked frame carrying message tx_seq to p; returns the new end. */
static uint8_t *put_frame(conn_t *c, uint8_t *p, int opcode, const uint8_t *payload, size_t len,
                          int is_data)
{
    uint64_t r = wsb_rand(&rng);
    uint8_t mask[4], sb[8];
    size_t head = len < 8 ? len : 8;

    memcpy(mask, &r, 4);
    *p++ = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        *p++ = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        *p++ = 0x80 | 126;
        *p++ = (uint8_t)(len >> 8);
        *p++ = (uint8_t)len;
    } else {
        *p++ = 0x80 | 127;
        for (int i = 7; i >= 0; i--) {
            *p++ = (uint8_t)((uint64_t)len >> (8 * i));
        }
    }
    memcpy(p, mask, 4);
    p += 4;
    wsb_mask(p, payload, len, mask, 0);
    if (is_data) {
        seq_bytes(c, c->tx_seq, sb);
        for (size_t i = 0; i < head; i++) {
            p[i] = sb[i] ^ mask[i & 3];
        }
    }
    return p + len;
}

static void send_messages(conn_t *c, long count, uint64_t now)
{
    uint8_t *p = wbuf;

    while (count-- > 0) {
        if ((size_t)(p - wbuf) + (size_t)opt.size + 14 > wbuf_cap) {
            send_bytes(c, wbuf, (size_t)(p - wbuf));
            p = wbuf;
        }
        p = put_frame(c, p, opt.text ? 1 : 2, pattern, (size_t)opt.size, 1);
        c->ts[c->tx_seq % (uint64_t)opt.inflight] = now;
        c->tx_seq++;
    }
    if (p > wbuf) {
        send_bytes(c, wbuf, (size_t)(p - wbuf));
    }
}

/* Compare echoed bytes [off, off+len) of message rx_seq with what was sent. */
static void verify(conn_t *c, const uint8_t *p, uint64_t off, size_t len)
{
    uint8_t sb[8];
    size_t i = 0;

    if (off + len > (uint64_t)opt.size) {
        die("connection %u: echoed message longer than sent", c->idx);
    }
    if (off < 8) {
        seq_bytes(c, c->rx_seq, sb);
        for (; i < len && off + i < 8 && off + i < (uint64_t)opt.size; i++) {
            if (p[i] != sb[off + i]) {
                die("connection %u: echo out of order or corrupted (sequence bytes)", c->idx);
            }
        }
    }
    if (i < len && memcmp(p + i, pattern + off + i, len - i) != 0) {
        die("connection %u: echoed payload differs from the one sent", c->idx);
    }
}

/* Parse echoed frames in p[0..len); returns how many messages completed. */
static long on_data(conn_t *c, const uint8_t *p, size_t len, uint64_t now)
{
    const uint8_t *end = p + len;
    long done = 0;

    while (p < end) {
        if (!c->in_frame) {
            while (p < end && c->hdr_got < c->hdr_need) {
                c->hdr[c->hdr_got++] = *p++;
                if (c->hdr_got == 2) {
                    int l7 = c->hdr[1] & 0x7f;

                    if (c->hdr[1] & 0x80) {
                        die("connection %u: the server masked a frame", c->idx);
                    }
                    c->hdr_need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0);
                }
            }
            if (c->hdr_got < c->hdr_need) {
                break;
            }
            {
                int l7 = c->hdr[1] & 0x7f, op = c->hdr[0] & 0x0f;
                uint64_t flen = (uint64_t)l7;

                if (c->hdr[0] & 0x70) {
                    die("connection %u: RSV bits set (no extension was offered)", c->idx);
                }
                if (l7 == 126) {
                    flen = (uint64_t)c->hdr[2] << 8 | c->hdr[3];
                } else if (l7 == 127) {
                    flen = 0;
                    for (int i = 2; i < 10; i++) {
                        flen = flen << 8 | c->hdr[i];
                    }
                }
                c->fin = c->hdr[0] >> 7;
                c->hdr_got = 0;
                c->hdr_need = 2;
                c->in_frame = 1;
                c->frame_left = flen;
                if (op >= 8) {
                    if (flen > 125 || !c->fin) {
                        die("connection %u: bad control frame", c->idx);
                    }
                    c->ctl_op = op;
                    c->ctl_got = 0;
                } else {
                    c->ctl_op = 0;
                    if (op != 0) {
                        if (c->in_msg) {
                            die("connection %u: new message inside a fragmented one", c->idx);
                        }
                        if (op != (opt.text ? 1 : 2)) {
                            die("connection %u: echo has the wrong opcode", c->idx);
                        }
                        c->in_msg = 1;
                        c->msg_off = 0;
                        if (c->rx_seq >= c->tx_seq) {
                            die("connection %u: an echo nobody asked for", c->idx);
                        }
                    } else if (!c->in_msg) {
                        die("connection %u: continuation without a message", c->idx);
                    }
                }
            }
        }
        {
            size_t take =
                (size_t)(end - p) < c->frame_left ? (size_t)(end - p) : (size_t)c->frame_left;

            if (c->ctl_op) {
                memcpy(c->ctl + c->ctl_got, p, take);
                c->ctl_got += take;
            } else {
                verify(c, p, c->msg_off, take);
                c->msg_off += take;
            }
            p += take;
            c->frame_left -= take;
        }
        if (c->frame_left > 0) {
            break;
        }
        c->in_frame = 0;
        if (c->ctl_op == 8) {
            int code = c->ctl_got >= 2 ? c->ctl[0] << 8 | c->ctl[1] : 0;
            die("connection %u: the server sent Close (code %d)", c->idx, code);
        } else if (c->ctl_op == 9) {
            uint8_t pong[6 + 125];
            uint8_t *e = put_frame(c, pong, 10, c->ctl, c->ctl_got, 0);
            send_bytes(c, pong, (size_t)(e - pong));
        } else if (c->ctl_op == 0 && c->fin) {
            uint64_t sent;

            if (c->msg_off != (uint64_t)opt.size) {
                die("connection %u: echoed message shorter than sent", c->idx);
            }
            sent = c->ts[c->rx_seq % (uint64_t)opt.inflight];
            c->rx_seq++;
            c->in_msg = 0;
            done++;
            if (measuring) {
                uint64_t lat = now - sent;

                hist[hist_idx(lat)]++;
                if (lat > lat_max) {
                    lat_max = lat;
                }
                window_msgs++;
                c->window_msgs++;
            }
        }
    }
    return done;
}

/* The local port range, and the next port to try in it. */
static int port_lo = 32768, port_hi = 60999, port_next;

/* Bind to a local port of our own choosing, walking the ephemeral range: with
 * tens of thousands of connections to one address, letting connect() pick
 * costs a search of the range per connect (__inet_hash_connect), seconds in all. */
static void bind_local(int fd, const struct sockaddr_in *dst)
{
    struct sockaddr_in la;
    int tries, span = port_hi - port_lo + 1;

    memset(&la, 0, sizeof(la));
    la.sin_family = AF_INET;
    la.sin_addr = dst->sin_addr;
    for (tries = 0; tries < span; tries++) {
        int port = port_next;

        port_next = port_next >= port_hi ? port_lo : port_next + 1;
        la.sin_port = htons((uint16_t)port);
        if (bind(fd, (struct sockaddr *)&la, sizeof(la)) == 0) {
            return;
        }
        if (errno != EADDRINUSE) {
            break;
        }
    }
    die("no free local port to bind: %s", strerror(errno));
}

static void start_connect(conn_t *c, const struct sockaddr_in *sa)
{
    struct epoll_event ev;
    struct linger lg = {1, 0};
    int one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        die("socket: %s", strerror(errno));
    }
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    bind_local(c->fd, sa);
    if (connect(c->fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0 && errno != EINPROGRESS) {
        die("connect: %s", strerror(errno));
    }
    c->state = ST_CONNECTING;
    c->hdr_need = 2;
    ev.events = EPOLLOUT;
    ev.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        die("epoll_ctl: %s", strerror(errno));
    }
}

static void send_upgrade(conn_t *c)
{
    char req[512], key[25];
    uint8_t raw[16];
    uint64_t a = wsb_rand(&rng), b = wsb_rand(&rng);
    int len;

    memcpy(raw, &a, 8);
    memcpy(raw + 8, &b, 8);
    wsb_base64(raw, 16, key);
    wsb_accept(key, 24, c->accept);
    len = snprintf(req, sizeof(req),
                   "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n",
                   opt.path, opt.addr, opt.port, key);
    if (write(c->fd, req, (size_t)len) != len) {
        die("write of the upgrade request: %s", strerror(errno));
    }
}

/* 1: the handshake just completed; 0: not yet. */
static int on_handshake(conn_t *c, uint64_t now)
{
    char *end, *h, *v;
    size_t head, vlen;
    ssize_t n;

    if (c->hs == NULL && (c->hs = malloc(HS_MAX)) == NULL) {
        die("out of memory");
    }
    n = read(c->fd, c->hs + c->hs_got, HS_MAX - 1 - c->hs_got);
    if (n <= 0) {
        if (n < 0 && errno == EAGAIN) {
            return 0;
        }
        die("connection %u closed during the handshake", c->idx);
    }
    c->hs_got += (size_t)n;
    c->hs[c->hs_got] = '\0';
    end = strstr(c->hs, "\r\n\r\n");
    if (end == NULL) {
        if (c->hs_got >= HS_MAX - 1) {
            die("handshake response too long");
        }
        return 0;
    }
    head = (size_t)(end - c->hs) + 4;
    *end = '\0';
    if (strncmp(c->hs, "HTTP/1.1 101", 12) != 0) {
        fprintf(stderr, "loadgen: not a 101 response:\n%.400s\n", c->hs);
        exit(1);
    }
    h = strcasestr(c->hs, "\r\nsec-websocket-accept:");
    if (h == NULL) {
        die("101 without Sec-WebSocket-Accept");
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
        fprintf(stderr, "loadgen: wrong Sec-WebSocket-Accept '%.*s', expected '%s'\n", (int)vlen, v,
                c->accept);
        exit(1);
    }
    if (strcasestr(c->hs, "\r\nsec-websocket-extensions:") != NULL) {
        die("the server answered with an extension none was offered");
    }
    c->state = ST_OPEN;
    if (c->hs_got > head) {
        /* Frames right behind the 101 (none expected before we send). */
        on_data(c, (uint8_t *)c->hs + head, c->hs_got - head, now);
    }
    free(c->hs);
    c->hs = NULL;
    want_out(c, 0);
    return 1;
}

static void on_event(conn_t *c, uint32_t events, uint64_t now)
{
    socklen_t elen = sizeof(int);
    int err = 0;
    ssize_t n;
    long done;

    switch (c->state) {
    case ST_CONNECTING:
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen);
        if (err != 0) {
            die("connect: %s", strerror(err));
        }
        send_upgrade(c);
        c->state = ST_HANDSHAKE;
        want_out(c, 0);
        return;
    case ST_HANDSHAKE:
        if (on_handshake(c, now)) {
            opened++;
        }
        return;
    case ST_CLOSED:
        return;
    }
    if (events & EPOLLOUT) {
        flush_out(c);
    }
    if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        return;
    }
    n = read(c->fd, rbuf, RBUF_MAX);
    if (n <= 0) {
        if (n < 0 && errno == EAGAIN) {
            return;
        }
        if (opt.idle) {
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            c->state = ST_CLOSED;
            closed_idle++;
            return;
        }
        die("connection %u: the server %s it", c->idx, n == 0 ? "closed" : strerror(errno));
    }
    done = on_data(c, rbuf, (size_t)n, now);
    if (done > 0 && !stopping) {
        send_messages(c, done, now);
    }
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen echo -p PORT [-a ADDR] [-u PATH] [-c CONNS] [-s SIZE] [-k INFLIGHT]\n"
            "                    [-d SECONDS] [-w WARMUP_S] [-W CONNECTING] [-t TIMEOUT_S] [-T] "
            "[PID...]\n"
            "       loadgen idle -p PORT [-a ADDR] [-u PATH] -c CONNS [-S SETTLE_MS] "
            "[-W CONNECTING] [-t TIMEOUT_S] PID...\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct epoll_event evs[1024];
    struct sockaddr_in sa;
    long started = 0, i, before = 0, after, c0 = 0, c1 = 0, min_msgs;
    uint64_t now, deadline, t_warm, t_start = 0, t_end = 0;
    double cpu0 = 0, cpu1 = 0, win;
    long long st0[3], st1[3];
    int o, nev, k;

    if (argc < 2) {
        usage();
    }
    if (strcmp(argv[1], "idle") == 0) {
        opt.idle = 1;
    } else if (strcmp(argv[1], "echo") != 0) {
        usage();
    }
    optind = 2;
    while ((o = getopt(argc, argv, "a:p:u:c:s:k:d:w:W:t:S:TC:")) != -1) {
        switch (o) {
        case 'a':
            opt.addr = optarg;
            break;
        case 'p':
            opt.port = atoi(optarg);
            break;
        case 'u':
            opt.path = optarg;
            break;
        case 'c':
            opt.conns = atol(optarg);
            break;
        case 's':
            opt.size = atol(optarg);
            break;
        case 'k':
            opt.inflight = atol(optarg);
            break;
        case 'd':
            opt.duration = atof(optarg);
            break;
        case 'w':
            opt.warmup = atof(optarg);
            break;
        case 'W':
            opt.window = atol(optarg);
            break;
        case 't':
            opt.timeout_s = atol(optarg);
            break;
        case 'S':
            opt.settle_ms = atol(optarg);
            break;
        case 'T':
            opt.text = 1;
            break;
        case 'C':
            opt.cpu = atoi(optarg);
            break;
        default:
            usage();
        }
    }
    opt.npids = argc - optind;
    opt.pids = argv + optind;
    if (opt.port <= 0 || opt.conns <= 0 || opt.size < 0 || opt.inflight <= 0 || opt.window <= 0 ||
        opt.duration <= 0 || (opt.idle && opt.npids == 0)) {
        usage();
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)opt.port);
    if (inet_pton(AF_INET, opt.addr, &sa.sin_addr) != 1) {
        die("bad address %s", opt.addr);
    }
    raise_nofile(opt.conns + 16);
    signal(SIGPIPE, SIG_IGN);
    rng ^= wsb_now_ns() ^ (uint64_t)getpid() << 32;
    {
        FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");

        if (f != NULL) {
            if (fscanf(f, "%d %d", &port_lo, &port_hi) != 2 || port_lo < 1024 ||
                port_hi <= port_lo || port_hi > 65535) {
                port_lo = 32768, port_hi = 60999;
            }
            fclose(f);
        }
        port_next = port_lo + (int)(wsb_rand(&rng) % (uint64_t)(port_hi - port_lo + 1));
    }

    conns = calloc((size_t)opt.conns, sizeof(*conns));
    pattern = malloc((size_t)opt.size + 8);
    wbuf_cap = (size_t)(opt.size + 14) * (size_t)opt.inflight + 256;
    if (wbuf_cap < 65536) {
        wbuf_cap = 65536;
    }
    wbuf = malloc(wbuf_cap);
    rbuf = malloc(RBUF_MAX);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (conns == NULL || pattern == NULL || wbuf == NULL || rbuf == NULL || ep < 0) {
        die("out of memory or epoll");
    }
    for (i = 0; i < opt.size + 8; i++) {
        uint64_t r = wsb_rand(&rng);
        /* text: printable ASCII, so the payload is valid UTF-8 */
        pattern[i] = opt.text ? (uint8_t)('a' + r % 26) : (uint8_t)(r >> 56);
    }

    if (opt.idle) {
        before = rss_kib();
    }
    deadline = wsb_now_ns() + (uint64_t)opt.timeout_s * 1000000000ull;

    /* Connect and hand-shake, at most opt.window at a time. */
    while (opened < opt.conns) {
        while (started < opt.conns && started - opened < opt.window) {
            conns[started].idx = (uint32_t)started;
            start_connect(&conns[started], &sa);
            started++;
        }
        if (wsb_now_ns() > deadline) {
            long st[4] = {0, 0, 0, 0};

            for (i = 0; i < started; i++) {
                st[conns[i].state]++;
            }
            fprintf(stderr,
                    "loadgen: only %ld of %ld connections open within %ld s (%ld connecting, "
                    "%ld waiting for the 101)\n",
                    opened, opt.conns, opt.timeout_s, st[ST_CONNECTING], st[ST_HANDSHAKE]);
            return 1;
        }
        nev = epoll_wait(ep, evs, 1024, 100);
        now = wsb_now_ns();
        for (k = 0; k < nev; k++) {
            on_event(evs[k].data.ptr, evs[k].events, now);
        }
    }

    if (opt.idle) {
        uint64_t hold_end = wsb_now_ns() + (uint64_t)opt.settle_ms * 1000000ull;

        while ((now = wsb_now_ns()) < hold_end) {
            nev = epoll_wait(ep, evs, 1024, 50);
            for (k = 0; k < nev; k++) {
                on_event(evs[k].data.ptr, evs[k].events, now);
            }
        }
        after = rss_kib();
        printf("mode=idle n=%ld before_kib=%ld after_kib=%ld delta_kib=%ld per_conn_bytes=%.1f "
               "closed=%ld\n",
               opt.conns, before, after, after - before,
               (double)(after - before) * 1024.0 / (double)opt.conns, closed_idle);
        fflush(stdout);
        if (closed_idle > 0) {
            fprintf(stderr, "loadgen: the server closed %ld idle connections while held\n",
                    closed_idle);
        }
        return closed_idle > 0 ? 1 : 0;
    }

    /* Load: every connection gets its messages in flight, then warm-up, window. */
    for (i = 0; i < opt.conns; i++) {
        conns[i].ts = calloc((size_t)opt.inflight, sizeof(uint64_t));
        if (conns[i].ts == NULL) {
            die("out of memory");
        }
    }
    now = wsb_now_ns();
    for (i = 0; i < opt.conns; i++) {
        send_messages(&conns[i], opt.inflight, now);
    }
    t_warm = now + (uint64_t)(opt.warmup * 1e9);
    for (;;) {
        uint64_t next = measuring ? t_end : t_warm;
        long ms = now >= next ? 0 : (long)((next - now) / 1000000) + 1;

        nev = epoll_wait(ep, evs, 1024, (int)(ms > 100 ? 100 : ms));
        now = wsb_now_ns();
        for (k = 0; k < nev; k++) {
            on_event(evs[k].data.ptr, evs[k].events, now);
        }
        if (!measuring && now >= t_warm) {
            c0 = opt.npids ? cpu_ticks() : 0;
            cpu_stat(st0);
            cpu0 = self_cpu_s();
            t_start = wsb_now_ns();
            t_end = t_start + (uint64_t)(opt.duration * 1e9);
            measuring = 1;
        } else if (measuring && now >= t_end) {
            c1 = opt.npids ? cpu_ticks() : 0;
            cpu_stat(st1);
            cpu1 = self_cpu_s();
            now = wsb_now_ns();
            break;
        }
    }
    measuring = 0;
    stopping = 1;
    win = (double)(now - t_start) / 1e9;
    min_msgs = -1;
    for (i = 0; i < opt.conns; i++) {
        if (min_msgs < 0 || (long)conns[i].window_msgs < min_msgs) {
            min_msgs = (long)conns[i].window_msgs;
        }
    }
    {
        double hz = (double)sysconf(_SC_CLK_TCK);
        double scpu = (double)(c1 - c0) / hz;

        printf(
            "mode=echo conns=%ld size=%ld inflight=%ld window_s=%.3f msgs=%llu msgs_per_s=%.0f "
            "p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f server_cpu_s=%.2f "
            "server_busy_pct=%.1f msgs_per_cpu_s=%.0f client_busy_pct=%.1f min_conn_msgs=%ld "
            "cpu_busy_pct=%.1f cpu_softirq_pct=%.1f errors=0\n",
            opt.conns, opt.size, opt.inflight, win, (unsigned long long)window_msgs,
            (double)window_msgs / win, hist_pct(0.50) / 1e3, hist_pct(0.99) / 1e3,
            hist_pct(0.999) / 1e3, (double)lat_max / 1e3, scpu, 100.0 * scpu / win,
            scpu > 0 ? (double)window_msgs / scpu : 0.0, 100.0 * (cpu1 - cpu0) / win, min_msgs,
            st1[2] > st0[2] ? 100.0 * (double)(st1[0] - st0[0]) / (double)(st1[2] - st0[2]) : 0.0,
            st1[2] > st0[2] ? 100.0 * (double)(st1[1] - st0[1]) / (double)(st1[2] - st0[2]) : 0.0);
    }
    fflush(stdout);
    for (i = 0; i < opt.conns; i++) {
        close(conns[i].fd);
    }
    return window_msgs > 0 ? 0 : 1;
}
