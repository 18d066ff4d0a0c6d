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
 * port themselves, walking the ephemeral range (bench/common/wsclient.c: the
 * client side of RFC 6455 this shares with bench/signaling/sigload.c).
 *
 * One process, so CONNS + 16 file descriptors (the server needs as many): at
 * 20,000 open files per process, 19,000 connections fit on each side.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "../common/histo.h"
#include "../common/opts.h"
#include "../common/proc.h"
#include "../common/wsclient.h"

typedef struct {
    wsc_conn_t wc;           /* first: wsclient's pointers are ours */
    uint64_t tx_seq, rx_seq; /* next to send, next to complete */
    uint64_t *ts;            /* send time of seq, at ts[seq % inflight] */
    uint64_t window_msgs;
    int in_msg;       /* inside an echoed message (it may come in several frames) */
    uint64_t msg_off; /* bytes of it so far */
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
static uint8_t *pattern; /* the payload bytes after the 8-byte sequence */
static uint8_t *wbuf;
static size_t wbuf_cap;
static int measuring, stopping;
static histo_t hist;
static uint64_t window_msgs;
static long opened, closed_idle;

/* ---- the messages --------------------------------------------------------------- */

/* The first 8 payload bytes of message seq on connection idx. */
static void seq_bytes(const conn_t *c, uint64_t seq, uint8_t out[8])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t v = seq | (uint64_t)c->wc.idx << 40;
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
static uint8_t *put_message(conn_t *c, uint8_t *p)
{
    uint8_t mask[4], sb[8];
    size_t len = (size_t)opt.size, head = len < 8 ? len : 8;

    p = wsc_put_head(p, opt.text ? 1 : 2, len, mask);
    wsb_mask(p, pattern, len, mask, 0);
    seq_bytes(c, c->tx_seq, sb);
    for (size_t i = 0; i < head; i++) {
        p[i] = sb[i] ^ mask[i & 3];
    }
    return p + len;
}

static void send_messages(conn_t *c, long count, uint64_t now)
{
    uint8_t *p = wbuf;

    while (count-- > 0) {
        if ((size_t)(p - wbuf) + (size_t)opt.size + 14 > wbuf_cap) {
            wsc_send(&c->wc, wbuf, (size_t)(p - wbuf));
            p = wbuf;
        }
        p = put_message(c, p);
        c->ts[c->tx_seq % (uint64_t)opt.inflight] = now;
        c->tx_seq++;
    }
    if (p > wbuf) {
        wsc_send(&c->wc, wbuf, (size_t)(p - wbuf));
    }
}

/* ---- the echoes ----------------------------------------------------------------- */

static const char *conn_name(const wsc_conn_t *wc)
{
    static char name[32];

    snprintf(name, sizeof(name), "connection %u", wc->idx);
    return name;
}

/* Compare echoed bytes [off, off+len) of message rx_seq with what was sent. */
static inline void verify(conn_t *c, const uint8_t *p, uint64_t off, size_t len)
{
    uint8_t sb[8];
    size_t i = 0;

    if (off + len > (uint64_t)opt.size) {
        errx(1, "connection %u: echoed message longer than sent", c->wc.idx);
    }
    if (off < 8) {
        seq_bytes(c, c->rx_seq, sb);
        for (; i < len && off + i < 8 && off + i < (uint64_t)opt.size; i++) {
            if (p[i] != sb[off + i]) {
                errx(1, "connection %u: echo out of order or corrupted (sequence bytes)",
                     c->wc.idx);
            }
        }
    }
    if (i < len && memcmp(p + i, pattern + off + i, len - i) != 0) {
        errx(1, "connection %u: echoed payload differs from the one sent", c->wc.idx);
    }
}

/* A data frame's head is in: it must start an echo or continue one. */
static inline void echo_begin(wsc_conn_t *wc)
{
    conn_t *c = (conn_t *)wc;

    if (wc->op == 0) {
        if (!c->in_msg) {
            errx(1, "connection %u: continuation without a message", wc->idx);
        }
        return;
    }
    if (c->in_msg) {
        errx(1, "connection %u: new message inside a fragmented one", wc->idx);
    }
    if (wc->op != (opt.text ? 1 : 2)) {
        errx(1, "connection %u: echo has the wrong opcode", wc->idx);
    }
    c->in_msg = 1;
    c->msg_off = 0;
    if (c->rx_seq >= c->tx_seq) {
        errx(1, "connection %u: an echo nobody asked for", wc->idx);
    }
}

static inline long echo_payload(wsc_conn_t *wc, const uint8_t *p, size_t len, uint64_t now)
{
    conn_t *c = (conn_t *)wc;

    (void)now;
    verify(c, p, c->msg_off, len);
    c->msg_off += len;
    return 0;
}

/* A frame of an echo is in; the last one completes it: time it. */
static inline long echo_end(wsc_conn_t *wc, uint64_t now)
{
    conn_t *c = (conn_t *)wc;
    uint64_t sent;

    if (!wc->fin) {
        return 0;
    }
    if (c->msg_off != (uint64_t)opt.size) {
        errx(1, "connection %u: echoed message shorter than sent", wc->idx);
    }
    sent = c->ts[c->rx_seq % (uint64_t)opt.inflight];
    c->rx_seq++;
    c->in_msg = 0;
    if (measuring) {
        histo_add(&hist, now - sent);
        window_msgs++;
        c->window_msgs++;
    }
    return 1;
}

static const wsc_frame_ops_t echo_frames = {echo_begin, echo_payload, echo_end};

/* Parse echoed frames in p[0..len); returns how many messages completed. */
static long on_data(wsc_conn_t *wc, const uint8_t *p, size_t len, uint64_t now)
{
    return wsc_frames(wc, p, len, now, &echo_frames);
}

static void conn_target(const wsc_conn_t *wc, char *buf, size_t size)
{
    (void)wc;
    snprintf(buf, size, "%s", opt.path);
}

static void conn_opened(wsc_conn_t *wc, uint64_t now)
{
    (void)wc, (void)now;
    opened++;
}

static const wsc_ops_t conn_ops = {conn_target, conn_opened, on_data, conn_name};

static void on_event(conn_t *c, uint32_t events, uint64_t now)
{
    long done = wsc_on_event(&c->wc, events, now);

    if (done < 0) {
        if (opt.idle) {
            epoll_ctl(wsc.ep, EPOLL_CTL_DEL, c->wc.fd, NULL);
            c->wc.state = WSC_CLOSED;
            closed_idle++;
            return;
        }
        errx(1, "connection %u: the server %s it", c->wc.idx,
             errno == 0 ? "closed" : strerror(errno));
    }
    if (done > 0 && !stopping) {
        send_messages(c, done, now);
    }
}

/* Wait at most ms for events and handle them; returns the time after the wait. */
static uint64_t poll_once(int ms)
{
    struct epoll_event evs[1024];
    int nev = epoll_wait(wsc.ep, evs, 1024, ms);
    uint64_t now = wsb_now_ns();

    for (int k = 0; k < nev; k++) {
        on_event(evs[k].data.ptr, evs[k].events, now);
    }
    return now;
}

/* ---- main ----------------------------------------------------------------------- */

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

static void parse_args(int argc, char **argv)
{
    const opt_t table[] = {{'a', OPT_STR, &opt.addr},        {'p', OPT_INT, &opt.port},
                           {'u', OPT_STR, &opt.path},        {'c', OPT_LONG, &opt.conns},
                           {'s', OPT_LONG, &opt.size},       {'k', OPT_LONG, &opt.inflight},
                           {'d', OPT_DOUBLE, &opt.duration}, {'w', OPT_DOUBLE, &opt.warmup},
                           {'W', OPT_LONG, &opt.window},     {'t', OPT_LONG, &opt.timeout_s},
                           {'S', OPT_LONG, &opt.settle_ms},  {'T', OPT_FLAG, &opt.text},
                           {'C', OPT_INT, &opt.cpu},         {0, OPT_FLAG, NULL}};
    static const char *const modes[] = {"echo", "idle", NULL};
    int mode = opts_mode(argc, argv, modes), first;

    if (mode < 0 || (first = opts_parse(argc, argv, 2, table)) < 0) {
        usage();
    }
    opt.idle = mode == 1;
    opt.npids = argc - first;
    opt.pids = argv + first;
    if (opt.port <= 0 || opt.conns <= 0 || opt.size < 0 || opt.inflight <= 0 || opt.window <= 0 ||
        opt.duration <= 0 || (opt.idle && opt.npids == 0)) {
        usage();
    }
}

static void setup(void)
{
    long i;

    proc_need_nofile(opt.conns + 16, "");
    wsc_init(opt.addr, opt.port, &conn_ops);
    conns = calloc((size_t)opt.conns, sizeof(*conns));
    pattern = malloc((size_t)opt.size + 8);
    wbuf_cap = (size_t)(opt.size + 14) * (size_t)opt.inflight + 256;
    if (wbuf_cap < 65536) {
        wbuf_cap = 65536;
    }
    wbuf = malloc(wbuf_cap);
    if (conns == NULL || pattern == NULL || wbuf == NULL) {
        errx(1, "out of memory");
    }
    for (i = 0; i < opt.size + 8; i++) {
        uint64_t r = wsb_rand(&wsc.rng);
        /* text: printable ASCII, so the payload is valid UTF-8 */
        pattern[i] = opt.text ? (uint8_t)('a' + r % 26) : (uint8_t)(r >> 56);
    }
}

/* Connect and hand-shake, at most opt.window at a time; 0 when all are open. */
static int connect_all(void)
{
    uint64_t deadline = wsb_now_ns() + (uint64_t)opt.timeout_s * 1000000000ull;
    long started = 0, i;

    while (opened < opt.conns) {
        while (started < opt.conns && started - opened < opt.window) {
            conns[started].wc.idx = (uint32_t)started;
            wsc_connect(&conns[started].wc);
            started++;
        }
        if (wsb_now_ns() > deadline) {
            long st[WSC_STATES] = {0};

            for (i = 0; i < started; i++) {
                st[conns[i].wc.state]++;
            }
            fprintf(stderr,
                    "loadgen: only %ld of %ld connections open within %ld s (%ld connecting, "
                    "%ld waiting for the 101)\n",
                    opened, opt.conns, opt.timeout_s, st[WSC_CONNECTING], st[WSC_HANDSHAKE]);
            return 1;
        }
        poll_once(100);
    }
    return 0;
}

/* idle: every connection open; hold them, read the servers' RSS again. */
static int run_idle(long before)
{
    uint64_t hold_end = wsb_now_ns() + (uint64_t)opt.settle_ms * 1000000ull;
    long after;

    while (wsb_now_ns() < hold_end) {
        poll_once(50);
    }
    after = proc_rss_kib(opt.npids, opt.pids);
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

static void report_echo(const proc_mark_t *a, const proc_mark_t *b)
{
    proc_window_t w = proc_window(a, b);
    long i, min_msgs = -1;

    for (i = 0; i < opt.conns; i++) {
        if (min_msgs < 0 || (long)conns[i].window_msgs < min_msgs) {
            min_msgs = (long)conns[i].window_msgs;
        }
    }
    printf("mode=echo conns=%ld size=%ld inflight=%ld window_s=%.3f msgs=%llu msgs_per_s=%.0f "
           "p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f server_cpu_s=%.2f "
           "server_busy_pct=%.1f msgs_per_cpu_s=%.0f client_busy_pct=%.1f min_conn_msgs=%ld "
           "cpu_busy_pct=%.1f cpu_softirq_pct=%.1f errors=0\n",
           opt.conns, opt.size, opt.inflight, w.win_s, (unsigned long long)window_msgs,
           (double)window_msgs / w.win_s, histo_pct(&hist, 0.50) / 1e3,
           histo_pct(&hist, 0.99) / 1e3, histo_pct(&hist, 0.999) / 1e3, (double)hist.max / 1e3,
           w.server_cpu_s, w.server_busy_pct,
           w.server_cpu_s > 0 ? (double)window_msgs / w.server_cpu_s : 0.0, w.client_busy_pct,
           min_msgs, w.core_busy_pct, w.core_softirq_pct);
    fflush(stdout);
}

/* echo: every connection gets its messages in flight, then warm-up, window. */
static int run_echo(void)
{
    proc_mark_t a = {0}, b = {0};
    uint64_t now, t_warm, t_end = 0;
    long i;

    for (i = 0; i < opt.conns; i++) {
        if ((conns[i].ts = calloc((size_t)opt.inflight, sizeof(uint64_t))) == NULL) {
            errx(1, "out of memory");
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

        now = poll_once((int)(ms > 100 ? 100 : ms));
        if (!measuring && now >= t_warm) {
            proc_mark(&a, opt.npids, opt.pids, opt.cpu);
            t_end = a.t_ns + (uint64_t)(opt.duration * 1e9);
            measuring = 1;
        } else if (measuring && now >= t_end) {
            proc_mark(&b, opt.npids, opt.pids, opt.cpu);
            break;
        }
    }
    measuring = 0;
    stopping = 1;
    report_echo(&a, &b);
    for (i = 0; i < opt.conns; i++) {
        close(conns[i].wc.fd);
    }
    return window_msgs > 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    long before = 0;

    parse_args(argc, argv);
    setup();
    if (opt.idle) {
        before = proc_rss_kib(opt.npids, opt.pids);
    }
    if (connect_all() != 0) {
        return 1;
    }
    return opt.idle ? run_idle(before) : run_echo();
}
