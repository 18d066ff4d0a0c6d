/*
 * sigload — a signaling load generator: N WebSocket clients in pairs, each
 * pair exchanging offer/answer/candidate messages through the server under
 * test (one thread, epoll, masked client frames, RFC 6455 client side).
 *
 *   sigload relay -P PROTO -p PORT [-c CLIENTS] [-k INFLIGHT] [-d S] [-w S] [opts] [PID...]
 *   sigload rate  -P PROTO -p PORT [-c CLIENTS] [-R MSGS_PER_S] [-d S] [-w S] [opts] [PID...]
 *   sigload hold  -P PROTO -p PORT -c CLIENTS [-S SETTLE_MS] [-d ACTIVE_S] [opts] PID...
 *
 * PROTO is the client protocol:
 *   peerjs  the PeerJS server protocol: connect to PATH?key=KEY&id=ID&token=TOKEN
 *           (-u PATH, default /peerjs: PeerServer mounted at "/"; tsunagi's is
 *           /peerjs/peerjs), wait for {"type":"OPEN"}, send {type, payload, dst},
 *           receive {type, src, dst, payload} with src the partner's id (checked),
 *           send {"type":"HEARTBEAT"} every -H seconds (5, as the peerjs client).
 *   ayame   the Ayame protocol: connect to PATH (-u, default /signaling), send
 *           register with roomId = the pair's room, wait for accept, answer every
 *           ping with pong; offer/answer/candidate are relayed unchanged.
 *   raw     as peerjs, but the server only forwards the bytes (no src added):
 *           the minimal relay, bench/signaling/minimal_relay.c.
 * Clients 2i and 2i+1 are a pair; ids are RUN-INDEX with RUN a random hex
 * prefix of this run (so a server still cleaning up an earlier run never sees
 * an id twice).
 *
 * relay: once every client is registered, each pair keeps INFLIGHT messages
 *   in flight: the first client sends INFLIGHT, and whoever receives one sends
 *   the next back. Each side sends offer, answer, then four candidates, in a
 *   loop (one negotiation's mix: two 1-3 KB SDPs, four ~300 B candidates).
 *   Messages a read completes are answered together in one write.
 * rate: each pair sends R messages a second (the two sides taking turns),
 *   the sends of all pairs spread evenly over the second; no replies.
 * hold: register CLIENTS, hold them idle SETTLE_MS, read the server's VmRSS
 *   (idle); then relay with one message in flight per pair for ACTIVE_S and read
 *   VmRSS again while that runs (active). Per client = (RSS - RSS before) / held.
 *
 * Every relayed message carries its send time and sequence number (sigmsg.h);
 * the receiver checks the sequence (order and loss), the type, the sender's id
 * (peerjs), and the length of what arrived against what a compact-JSON relay
 * produces (a difference is counted, not fatal: servers may re-serialise).
 * Latency = receive time - send time, in a log-linear histogram (~3 %). The first
 * WARMUP seconds are not counted; the server's utime+stime over the window
 * comes from /proc/PID/stat; with -C CPU, that core's busy share from /proc/stat.
 * One line of key=value on stdout; any protocol error, rejection, close or
 * timeout exits 1 with a message on stderr. Sockets close with RST (SO_LINGER 0).
 * The WebSocket client side (connect, upgrade, frames) is bench/common/wsclient.c,
 * shared with bench/ws/loadgen.c.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "../common/histo.h"
#include "../common/opts.h"
#include "../common/proc.h"
#include "../common/wsclient.h"
#include "sigmsg.h"

#define MSG_MAX   (256u * 1024) /* a reassembled message, or output kept for later */
#define ID_MAX    24
#define SHOW(len) (int)((len) > 300 ? 300 : (len)) /* how much of a message an error quotes */

/* After the 101: waiting for OPEN / accept, then registered. */
enum { ST_REGISTER = WSC_OPEN, ST_READY = WSC_STATES };
enum { M_RELAY, M_RATE, M_HOLD };

typedef struct {
    wsc_conn_t wc; /* first: wsclient's pointers are ours */
    char id[ID_MAX];
    uint8_t id_len;
    uint8_t msg_op;      /* opcode of the message arriving in pieces; 0: none */
    uint32_t tx_n, rx_n; /* stamped messages sent / received */
    uint64_t window_msgs;
    uint8_t *msg; /* a message arriving in pieces */
    size_t msg_len, msg_cap;
} cl_t;

static struct {
    const char *addr, *path, *key;
    int port, proto, mode, cpu, npids;
    long clients, inflight, window, timeout_s, settle_ms;
    double duration, warmup, rate, heartbeat;
    size_t offer_sdp, answer_sdp;
    char **pids;
} opt = {.addr = "127.0.0.1",
         .key = "peerjs",
         .proto = SM_PEERJS,
         .mode = M_RELAY,
         .cpu = -1,
         .clients = 1000,
         .inflight = 1,
         .window = 200,
         .timeout_s = 120,
         .settle_ms = 1000,
         .duration = 5.0,
         .warmup = 1.0,
         .rate = 1.0,
         .heartbeat = 5.0,
         .offer_sdp = 2300,
         .answer_sdp = 1500};

static cl_t *cls;
static sm_tmpl_t tmpl[SM_TYPES];
static char run_id[8];
static uint8_t *wbuf;
static size_t wbuf_cap;
static int measuring, traffic, stopping;
static histo_t hist;
static uint64_t window_msgs, len_mismatch, other_msgs;
static long registered;

/* ---- output ----------------------------------------------------------------- */

/* Append a masked text frame holding a[0..al) b[0..bl) to p; the payload is
 * masked in place. Returns the new end. */
static uint8_t *put_text2(uint8_t *p, const void *a, size_t al, const void *b, size_t bl)
{
    size_t len = al + bl;
    uint8_t mask[4];

    p = wsc_put_head(p, 1, len, mask);
    memcpy(p, a, al);
    memcpy(p + al, b, bl);
    wsb_mask(p, p, len, mask, 0);
    return p + len;
}

static void send_text(cl_t *c, const char *text)
{
    uint8_t buf[512];
    uint8_t *e = wsc_put_frame(buf, 1, text, strlen(text));

    wsc_send(&c->wc, buf, (size_t)(e - buf));
}

static cl_t *partner(const cl_t *c)
{
    return &cls[c->wc.idx ^ 1];
}

/* Append the next stamped message from c to its partner at p. */
static uint8_t *put_message(cl_t *c, uint8_t *p, uint64_t now)
{
    const sm_tmpl_t *t = &tmpl[sm_cycle[c->tx_n % SM_CYCLE]];
    const cl_t *d = partner(c);
    char tail[ID_MAX + 4];
    size_t tl = 0;

    if (opt.proto != SM_AYAME) {
        memcpy(tail, d->id, d->id_len);
        memcpy(tail + d->id_len, "\"}", 2);
        tl = d->id_len + 2u;
    }
    /* Stamp the template in place, then frame it (the copy masks it). */
    sm_put_stamp(t->text + t->stamp_off, now, c->tx_n);
    p = put_text2(p, t->text, t->len, tail, tl);
    c->tx_n++;
    return p;
}

static void send_messages(cl_t *c, long count, uint64_t now)
{
    uint8_t *p = wbuf;

    while (count-- > 0) {
        if ((size_t)(p - wbuf) + 8192 > wbuf_cap) {
            wsc_send(&c->wc, wbuf, (size_t)(p - wbuf));
            p = wbuf;
        }
        p = put_message(c, p, now);
    }
    if (p > wbuf) {
        wsc_send(&c->wc, wbuf, (size_t)(p - wbuf));
    }
}

/* ---- input ------------------------------------------------------------------ */

static int has(const uint8_t *p, size_t len, const char *needle)
{
    return memmem(p, len, needle, strlen(needle)) != NULL;
}

/* What a compact-JSON relay delivers for type t from partner d to c. */
static size_t expected_len(const cl_t *c, const cl_t *d, const sm_tmpl_t *t)
{
    if (opt.proto == SM_PEERJS) {
        /* {"type":"T","src":"S","dst":"D","payload":P} */
        return 9 + strlen(t->type_upper) + 9 + d->id_len + 9 + c->id_len + 12 + t->payload_len + 1;
    }
    return t->len + (opt.proto == SM_RAW ? c->id_len + 2u : 0);
}

/* A stamped message: check it, time it; returns 1 (one message relayed). */
static int on_relayed(cl_t *c, const uint8_t *p, size_t len, const uint8_t *m, uint64_t now)
{
    const cl_t *d = partner(c);
    const sm_tmpl_t *t = &tmpl[sm_cycle[c->rx_n % SM_CYCLE]];
    uint64_t ts = 0;
    uint32_t seq;
    char src[ID_MAX + 12];

    if ((size_t)(p + len - m) < strlen(SM_MARKER) + 1 + SM_STAMP_LEN ||
        sm_get_stamp((const char *)m + strlen(SM_MARKER) + 1, &ts, &seq) != 0) {
        errx(1, "client %s: a malformed stamp in %.*s", c->id, SHOW(len), (const char *)p);
    }
    if (seq != c->rx_n) {
        errx(1, "client %s: message %u from %s arrived when %u was next (lost or reordered)", c->id,
             seq, d->id, c->rx_n);
    }
    if (!has(p, len, t->type_needle)) {
        errx(1, "client %s: message %u is not %s: %.*s", c->id, seq, t->type_needle, SHOW(len),
             (const char *)p);
    }
    if (opt.proto == SM_PEERJS) {
        snprintf(src, sizeof(src), "\"src\":\"%s\"", d->id);
        if (!has(p, len, src)) {
            errx(1, "client %s: message %u without %s: %.*s", c->id, seq, src, SHOW(len),
                 (const char *)p);
        }
    }
    if (len != expected_len(c, d, t)) {
        len_mismatch++;
    }
    c->rx_n++;
    if (measuring) {
        uint64_t lat = now > ts ? now - ts : 0;

        histo_add(&hist, lat);
        window_msgs++;
        c->window_msgs++;
    }
    return 1;
}

static void on_registered(cl_t *c)
{
    c->wc.state = ST_READY;
    registered++;
}

/* One complete text message; returns how many relayed messages it was (0/1). */
static int on_message(cl_t *c, const uint8_t *p, size_t len, uint64_t now)
{
    const uint8_t *m = memmem(p, len, SM_MARKER, strlen(SM_MARKER));

    if (m != NULL && c->wc.state == ST_READY) {
        return on_relayed(c, p, len, m, now);
    }
    if (opt.proto == SM_AYAME) {
        if (has(p, len, "\"type\":\"ping\"")) {
            send_text(c, "{\"type\":\"pong\"}");
        } else if (c->wc.state == ST_REGISTER && has(p, len, "\"type\":\"accept\"")) {
            on_registered(c);
        } else if (has(p, len, "\"type\":\"reject\"") || has(p, len, "\"type\":\"bye\"") ||
                   has(p, len, "\"type\":\"error\"")) {
            errx(1, "client %s: %.*s", c->id, SHOW(len), (const char *)p);
        } else {
            other_msgs++;
        }
        return 0;
    }
    if (c->wc.state == ST_REGISTER && has(p, len, "\"type\":\"OPEN\"")) {
        on_registered(c);
    } else if (has(p, len, "\"type\":\"HEARTBEAT\"")) {
        other_msgs++; /* the minimal relay forwards the partner's */
    } else {
        /* ID-TAKEN, ERROR, EXPIRE, LEAVE: the run is broken. */
        errx(1, "client %s: %.*s", c->id, SHOW(len), (const char *)p);
    }
    return 0;
}

static void msg_append(cl_t *c, const uint8_t *p, size_t n)
{
    if (c->msg_len + n > MSG_MAX) {
        errx(1, "client %s: a message over %u bytes", c->id, MSG_MAX);
    }
    if (c->msg_len + n > c->msg_cap) {
        c->msg_cap = c->msg_len + n + 4096;
        if ((c->msg = realloc(c->msg, c->msg_cap)) == NULL) {
            errx(1, "out of memory");
        }
    }
    memcpy(c->msg + c->msg_len, p, n);
    c->msg_len += n;
}

/* A data frame's head is in: it starts a message or continues one. */
static inline void frame_begin(wsc_conn_t *wc)
{
    cl_t *c = (cl_t *)wc;

    if (wc->frame_left > MSG_MAX) {
        errx(1, "client %s: a bad frame (opcode %d, %llu bytes)", c->id, wc->op,
             (unsigned long long)wc->frame_left);
    }
    if (wc->op == 1 || wc->op == 2) {
        c->msg_op = wc->op;
    } else if (wc->op == 0 && c->msg_op == 0) {
        errx(1, "client %s: continuation without a message", c->id);
    }
}

static inline long frame_payload(wsc_conn_t *wc, const uint8_t *p, size_t len, uint64_t now)
{
    cl_t *c = (cl_t *)wc;

    if (wc->fin && c->msg_len == 0 && len == wc->frame_left) {
        /* The common case: a whole message in this read, used in place. */
        return on_message(c, p, len, now);
    }
    msg_append(c, p, len);
    return 0;
}

static inline long frame_end(wsc_conn_t *wc, uint64_t now)
{
    cl_t *c = (cl_t *)wc;
    long done = 0;

    if (!wc->fin) {
        return 0;
    }
    if (c->msg_len > 0) {
        done = on_message(c, c->msg, c->msg_len, now);
        c->msg_len = 0;
    }
    c->msg_op = 0;
    return done;
}

static const wsc_frame_ops_t cl_frames = {frame_begin, frame_payload, frame_end};

/* Parse the server's frames in p[0..len); returns the relayed messages completed. */
static long on_data(wsc_conn_t *wc, const uint8_t *p, size_t len, uint64_t now)
{
    return wsc_frames(wc, p, len, now, &cl_frames);
}

/* ---- connection set-up -------------------------------------------------------- */

static const char *cl_name(const wsc_conn_t *wc)
{
    static char name[ID_MAX + 8];

    snprintf(name, sizeof(name), "client %s", ((const cl_t *)wc)->id);
    return name;
}

static void cl_target(const wsc_conn_t *wc, char *buf, size_t size)
{
    const cl_t *c = (const cl_t *)wc;

    if (opt.proto == SM_AYAME) {
        snprintf(buf, size, "%s", opt.path);
    } else {
        /* The query the peerjs client builds (version last). */
        snprintf(buf, size, "%s?key=%s&id=%s&token=t%s&version=1.5.5", opt.path, opt.key, c->id,
                 c->id);
    }
}

/* The 101 is in: the client waits for OPEN / accept. */
static void cl_opened(wsc_conn_t *wc, uint64_t now)
{
    cl_t *c = (cl_t *)wc;
    char msg[256];

    (void)now;
    wc->state = ST_REGISTER;
    if (opt.proto == SM_AYAME) {
        snprintf(msg, sizeof(msg),
                 "{\"type\":\"register\",\"roomId\":\"%s-room%u\",\"clientId\":\"%s\","
                 "\"ayameClient\":\"sigload\",\"libwebrtc\":\"none\",\"environment\":\"bench\"}",
                 run_id, wc->idx / 2, c->id);
        send_text(c, msg);
    }
}

static const wsc_ops_t cl_ops = {cl_target, cl_opened, on_data, cl_name};

static void on_event(cl_t *c, uint32_t events, uint64_t now)
{
    long done = wsc_on_event(&c->wc, events, now);

    if (done < 0) {
        errx(1, "client %s: the server %s the connection (%ld of %ld registered)", c->id,
             errno == 0 ? "closed" : "reset", registered, opt.clients);
    }
    if (done > 0 && traffic && opt.mode != M_RATE && !stopping) {
        send_messages(c, done, now); /* each answered with the next */
    }
}

/* ---- schedules: heartbeats and paced sends ------------------------------------- */

/* A cursor that visits items 0..n-1 once per period, spread evenly: item i
 * of lap k is due at t0 + k * period + i * period / n. */
typedef struct {
    uint64_t t0, period;
    long n, i, lap;
} pace_t;

static uint64_t pace_due(const pace_t *p)
{
    return p->t0 + (uint64_t)p->lap * p->period +
           (uint64_t)((double)p->i * (double)p->period / (double)p->n);
}

static void pace_next(pace_t *p)
{
    if (++p->i == p->n) {
        p->i = 0;
        p->lap++;
    }
}

static pace_t hb, rate;

static void heartbeats(uint64_t now)
{
    /* Bounded: at most one lap per call, however late the loop is. */
    for (long k = 0; k < hb.n && pace_due(&hb) <= now; k++, pace_next(&hb)) {
        cl_t *c = &cls[hb.i];

        if (c->wc.state == ST_READY) {
            send_text(c, "{\"type\":\"HEARTBEAT\"}");
        }
    }
}

static void paced_sends(uint64_t now)
{
    for (long k = 0; k < rate.n && pace_due(&rate) <= now; k++, pace_next(&rate)) {
        /* The pair's two sides take turns, lap by lap. */
        cl_t *c = &cls[2 * rate.i + (rate.lap & 1)];

        send_messages(c, 1, now);
    }
}

static uint64_t next_timer(uint64_t until)
{
    if (opt.proto != SM_AYAME && opt.heartbeat > 0 && pace_due(&hb) < until) {
        until = pace_due(&hb);
    }
    if (traffic && opt.mode == M_RATE && pace_due(&rate) < until) {
        until = pace_due(&rate);
    }
    return until;
}

/* Run the loop until `until` (ns): events, heartbeats, paced sends. */
static void run_until(uint64_t until)
{
    struct epoll_event evs[1024];
    uint64_t now = wsb_now_ns();

    while (now < until) {
        uint64_t next = next_timer(until);
        long ms = next > now ? (long)((next - now + 999999) / 1000000) : 0;
        int nev = epoll_wait(wsc.ep, evs, 1024, (int)(ms > 100 ? 100 : ms));

        now = wsb_now_ns();
        for (int k = 0; k < nev; k++) {
            on_event(evs[k].data.ptr, evs[k].events, now);
        }
        if (opt.proto != SM_AYAME && opt.heartbeat > 0) {
            heartbeats(now);
        }
        if (traffic && opt.mode == M_RATE) {
            paced_sends(now);
        }
    }
}

/* ---- main --------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(
        stderr,
        "usage: sigload relay|rate|hold -P peerjs|ayame|raw -p PORT [-a ADDR] [-u PATH]\n"
        "         [-K KEY] [-c CLIENTS] [-k INFLIGHT] [-R MSGS_PER_S_PER_PAIR] [-d SECONDS]\n"
        "         [-w WARMUP_S] [-S SETTLE_MS] [-H HEARTBEAT_S] [-W CONNECTING]\n"
        "         [-t TIMEOUT_S] [-O OFFER_SDP_BYTES] [-A ANSWER_SDP_BYTES] [-C CPU] [PID...]\n");
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    const char *proto = "peerjs";
    const opt_t table[] = {{'P', OPT_STR, &proto},           {'a', OPT_STR, &opt.addr},
                           {'p', OPT_INT, &opt.port},        {'u', OPT_STR, &opt.path},
                           {'K', OPT_STR, &opt.key},         {'c', OPT_LONG, &opt.clients},
                           {'k', OPT_LONG, &opt.inflight},   {'R', OPT_DOUBLE, &opt.rate},
                           {'d', OPT_DOUBLE, &opt.duration}, {'w', OPT_DOUBLE, &opt.warmup},
                           {'S', OPT_LONG, &opt.settle_ms},  {'H', OPT_DOUBLE, &opt.heartbeat},
                           {'W', OPT_LONG, &opt.window},     {'t', OPT_LONG, &opt.timeout_s},
                           {'O', OPT_SIZE, &opt.offer_sdp},  {'A', OPT_SIZE, &opt.answer_sdp},
                           {'C', OPT_INT, &opt.cpu},         {0, OPT_FLAG, NULL}};
    static const char *const modes[] = {
        [M_RELAY] = "relay", [M_RATE] = "rate", [M_HOLD] = "hold", NULL};
    int first;

    if ((opt.mode = opts_mode(argc, argv, modes)) < 0 ||
        (first = opts_parse(argc, argv, 2, table)) < 0) {
        usage();
    }
    opt.npids = argc - first;
    opt.pids = argv + first;
    opt.proto = strcmp(proto, "ayame") == 0    ? SM_AYAME
                : strcmp(proto, "raw") == 0    ? SM_RAW
                : strcmp(proto, "peerjs") == 0 ? SM_PEERJS
                                               : -1;
    if (opt.path == NULL) {
        opt.path = opt.proto == SM_AYAME ? "/signaling" : "/peerjs";
    }
    if (opt.proto < 0 || opt.port <= 0 || opt.clients < 2 || opt.clients % 2 != 0 ||
        opt.inflight <= 0 || opt.window <= 0 || opt.duration <= 0 || opt.rate <= 0 ||
        opt.offer_sdp > 60000 || opt.answer_sdp > 60000 || (opt.mode == M_HOLD && opt.npids == 0)) {
        usage();
    }
}

static void setup(void)
{
    long i;

    proc_need_nofile(opt.clients + 16, " (ulimit -Hn): split the clients over several processes");
    wsc_init(opt.addr, opt.port, &cl_ops);
    wsc.origin = 1;
    wsc.out_max = MSG_MAX;
    snprintf(run_id, sizeof(run_id), "%06llx", (unsigned long long)(wsb_rand(&wsc.rng) >> 40));
    sm_build(tmpl, opt.proto, opt.offer_sdp, opt.answer_sdp);
    cls = calloc((size_t)opt.clients, sizeof(*cls));
    wbuf_cap = (size_t)opt.inflight * (tmpl[SM_OFFER].len + 64) + 65536;
    wbuf = malloc(wbuf_cap);
    if (cls == NULL || wbuf == NULL) {
        errx(1, "out of memory");
    }
    for (i = 0; i < opt.clients; i++) {
        cls[i].wc.idx = (uint32_t)i;
        cls[i].id_len = (uint8_t)snprintf(cls[i].id, ID_MAX, "%s-%ld", run_id, i);
    }
}

/* Connect and register every client, at most opt.window in progress at once. */
static double connect_all(void)
{
    struct epoll_event evs[1024];
    uint64_t t0 = wsb_now_ns(), deadline = t0 + (uint64_t)opt.timeout_s * 1000000000ull, now;
    long started = 0;

    hb = (pace_t){t0 + (uint64_t)(opt.heartbeat * 1e9), (uint64_t)(opt.heartbeat * 1e9),
                  opt.clients, 0, 0};
    while (registered < opt.clients) {
        while (started < opt.clients && started - registered < opt.window) {
            wsc_connect(&cls[started].wc);
            started++;
        }
        if ((now = wsb_now_ns()) > deadline) {
            long st[ST_READY + 1] = {0};

            for (long i = 0; i < started; i++) {
                st[cls[i].wc.state]++;
            }
            errx(1,
                 "only %ld of %ld clients registered within %ld s (%ld connecting, %ld waiting "
                 "for the 101, %ld for OPEN/accept)",
                 registered, opt.clients, opt.timeout_s, st[WSC_CONNECTING], st[WSC_HANDSHAKE],
                 st[ST_REGISTER]);
        }
        int nev = epoll_wait(wsc.ep, evs, 1024, 50);

        now = wsb_now_ns();
        for (int k = 0; k < nev; k++) {
            on_event(evs[k].data.ptr, evs[k].events, now);
        }
        if (opt.proto != SM_AYAME && opt.heartbeat > 0) {
            heartbeats(now);
        }
    }
    return (double)(wsb_now_ns() - t0) / 1e9;
}

static void start_traffic(uint64_t now)
{
    traffic = 1;
    if (opt.mode == M_RATE) {
        rate = (pace_t){now, (uint64_t)(1e9 / opt.rate), opt.clients / 2, 0, 0};
        return;
    }
    for (long i = 0; i < opt.clients; i += 2) {
        send_messages(&cls[i], opt.mode == M_HOLD ? 1 : opt.inflight, now);
    }
}

static const char *proto_name(void)
{
    return opt.proto == SM_AYAME ? "ayame" : opt.proto == SM_RAW ? "raw" : "peerjs";
}

static void report_hold(long before, long idle, long active, double connect_s)
{
    long held = 0;

    for (long i = 0; i < opt.clients; i++) {
        held += cls[i].wc.state == ST_READY;
    }
    printf("mode=hold proto=%s clients=%ld held=%ld connect_s=%.2f before_kib=%ld idle_kib=%ld "
           "active_kib=%ld idle_per_client_bytes=%.1f active_per_client_bytes=%.1f "
           "active_msgs=%llu errors=0\n",
           proto_name(), opt.clients, held, connect_s, before, idle, active,
           (double)(idle - before) * 1024.0 / (double)held,
           (double)(active - before) * 1024.0 / (double)held, (unsigned long long)window_msgs);
}

/* hold: the clients held idle, then relaying one message per pair. */
static void run_hold(long before, double connect_s)
{
    long idle, active;

    run_until(wsb_now_ns() + (uint64_t)opt.settle_ms * 1000000ull);
    idle = proc_rss_kib(opt.npids, opt.pids);
    measuring = 1;
    start_traffic(wsb_now_ns());
    run_until(wsb_now_ns() + (uint64_t)(opt.duration * 1e9));
    active = proc_rss_kib(opt.npids, opt.pids);
    report_hold(before, idle, active, connect_s);
}

/* relay and rate: warm-up, then the measured window. */
static int run_window(double connect_s)
{
    uint64_t now = wsb_now_ns();
    proc_mark_t a, b;
    proc_window_t w;
    long rss;

    start_traffic(now);
    run_until(now + (uint64_t)(opt.warmup * 1e9));
    proc_mark(&a, opt.npids, opt.pids, opt.cpu);
    measuring = 1;
    run_until(a.t_ns + (uint64_t)(opt.duration * 1e9));
    measuring = 0;
    proc_mark(&b, opt.npids, opt.pids, opt.cpu);
    rss = opt.npids ? proc_rss_kib(opt.npids, opt.pids) : 0;
    stopping = 1;
    w = proc_window(&a, &b);
    printf("mode=%s proto=%s clients=%ld inflight=%ld rate=%g window_s=%.3f msgs=%llu "
           "msgs_per_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f server_cpu_s=%.2f "
           "server_busy_pct=%.1f msgs_per_cpu_s=%.0f client_busy_pct=%.1f cpu_busy_pct=%.1f "
           "cpu_softirq_pct=%.1f rss_kib=%ld connect_s=%.2f len_mismatch=%llu other=%llu "
           "errors=0\n",
           opt.mode == M_RATE ? "rate" : "relay", proto_name(), opt.clients, opt.inflight, opt.rate,
           w.win_s, (unsigned long long)window_msgs, (double)window_msgs / w.win_s,
           histo_pct(&hist, 0.50) / 1e3, histo_pct(&hist, 0.99) / 1e3,
           histo_pct(&hist, 0.999) / 1e3, (double)hist.max / 1e3, w.server_cpu_s, w.server_busy_pct,
           w.server_cpu_s > 0 ? (double)window_msgs / w.server_cpu_s : 0.0, w.client_busy_pct,
           w.core_busy_pct, w.core_softirq_pct, rss, connect_s, (unsigned long long)len_mismatch,
           (unsigned long long)other_msgs);
    fflush(stdout);
    return window_msgs > 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    long before = 0;
    double connect_s;

    parse_args(argc, argv);
    setup();
    if (opt.mode == M_HOLD) {
        before = proc_rss_kib(opt.npids, opt.pids);
    }
    connect_s = connect_all();
    if (opt.mode == M_HOLD) {
        run_hold(before, connect_s);
        return 0;
    }
    return run_window(connect_s);
}
