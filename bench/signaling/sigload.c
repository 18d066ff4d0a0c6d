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
 */
#define _GNU_SOURCE /* strcasestr, memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../ws/wsbench.h"
#include "sigmsg.h"
#include "sigstat.h"

#define HS_MAX    2048
#define RBUF_MAX  (1u << 20)
#define MSG_MAX   (256u * 1024) /* a reassembled message, or output kept for later */
#define ID_MAX    24
#define SHOW(len) (int)((len) > 300 ? 300 : (len)) /* how much of a message an error quotes */

enum { ST_CONNECTING, ST_HANDSHAKE, ST_REGISTER, ST_READY, ST_CLOSED };
enum { M_RELAY, M_RATE, M_HOLD };

typedef struct {
    int fd, state;
    uint32_t idx;
    char id[ID_MAX];
    uint8_t id_len;
    char *hs; /* handshake response so far (ST_HANDSHAKE only) */
    size_t hs_got;
    char accept[29];
    uint32_t tx_n, rx_n; /* stamped messages sent / received */
    uint64_t window_msgs;
    uint8_t *out; /* bytes a short write left behind */
    size_t out_len, out_cap;
    uint8_t *msg; /* a message arriving in pieces */
    size_t msg_len, msg_cap;
    uint8_t hdr[14];
    uint8_t hdr_got, hdr_need, in_frame, fin, op, msg_op, ctl_got;
    uint8_t ctl[125]; /* a control frame's payload */
    uint64_t frame_left;
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
static int ep;
static char run_id[8];
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint8_t *rbuf, *wbuf;
static size_t wbuf_cap;
static int measuring, traffic, stopping;
static uint64_t hist[SS_HIST_N], window_msgs, lat_max, len_mismatch, other_msgs;
static long registered;

static void sl_die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "sigload: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* ---- output ----------------------------------------------------------------- */

static void want_out(cl_t *c, int on)
{
    struct epoll_event ev;

    ev.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0);
    ev.data.ptr = c;
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void send_bytes(cl_t *c, const uint8_t *buf, size_t len)
{
    ssize_t n = 0;

    if (c->out_len == 0) {
        n = write(c->fd, buf, len);
        if (n < 0) {
            if (errno != EAGAIN) {
                sl_die("write to client %s: %s", c->id, strerror(errno));
            }
            n = 0;
        }
        if ((size_t)n == len) {
            return;
        }
    }
    if (c->out_len + len - (size_t)n > MSG_MAX) {
        sl_die("client %s: the server does not read (%zu bytes waiting)", c->id, c->out_len);
    }
    if (c->out_len + len - (size_t)n > c->out_cap) {
        c->out_cap = (c->out_len + len - (size_t)n) * 2;
        if ((c->out = realloc(c->out, c->out_cap)) == NULL) {
            sl_die("out of memory");
        }
    }
    memcpy(c->out + c->out_len, buf + n, len - (size_t)n);
    if (c->out_len == 0) {
        want_out(c, 1);
    }
    c->out_len += len - (size_t)n;
}

static void flush_out(cl_t *c)
{
    ssize_t n = write(c->fd, c->out, c->out_len);

    if (n < 0) {
        if (errno == EAGAIN) {
            return;
        }
        sl_die("write to client %s: %s", c->id, strerror(errno));
    }
    memmove(c->out, c->out + n, c->out_len - (size_t)n);
    c->out_len -= (size_t)n;
    if (c->out_len == 0) {
        want_out(c, 0);
    }
}

/* Append a masked frame (text unless op says otherwise) holding
 * a[0..al) b[0..bl) to p; the payload is masked in place. Returns the new end. */
static uint8_t *put_frame(uint8_t *p, int op, const void *a, size_t al, const void *b, size_t bl)
{
    uint64_t r = wsb_rand(&rng);
    size_t len = al + bl;
    uint8_t mask[4];

    memcpy(mask, &r, 4);
    *p++ = (uint8_t)(0x80 | op);
    if (len < 126) {
        *p++ = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        *p++ = 0x80 | 126;
        *p++ = (uint8_t)(len >> 8);
        *p++ = (uint8_t)len;
    } else {
        sl_die("message too large");
    }
    memcpy(p, mask, 4);
    p += 4;
    memcpy(p, a, al);
    memcpy(p + al, b, bl);
    wsb_mask(p, p, len, mask, 0);
    return p + len;
}

static void send_text(cl_t *c, const char *text)
{
    uint8_t buf[512];
    uint8_t *e = put_frame(buf, 1, text, strlen(text), NULL, 0);

    send_bytes(c, buf, (size_t)(e - buf));
}

static cl_t *partner(const cl_t *c)
{
    return &cls[c->idx ^ 1];
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
    p = put_frame(p, 1, t->text, t->len, tail, tl);
    c->tx_n++;
    return p;
}

static void send_messages(cl_t *c, long count, uint64_t now)
{
    uint8_t *p = wbuf;

    while (count-- > 0) {
        if ((size_t)(p - wbuf) + 8192 > wbuf_cap) {
            send_bytes(c, wbuf, (size_t)(p - wbuf));
            p = wbuf;
        }
        p = put_message(c, p, now);
    }
    if (p > wbuf) {
        send_bytes(c, wbuf, (size_t)(p - wbuf));
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
        sl_die("client %s: a malformed stamp in %.*s", c->id, SHOW(len), (const char *)p);
    }
    if (seq != c->rx_n) {
        sl_die("client %s: message %u from %s arrived when %u was next (lost or reordered)", c->id,
               seq, d->id, c->rx_n);
    }
    if (!has(p, len, t->type_needle)) {
        sl_die("client %s: message %u is not %s: %.*s", c->id, seq, t->type_needle, SHOW(len),
               (const char *)p);
    }
    if (opt.proto == SM_PEERJS) {
        snprintf(src, sizeof(src), "\"src\":\"%s\"", d->id);
        if (!has(p, len, src)) {
            sl_die("client %s: message %u without %s: %.*s", c->id, seq, src, SHOW(len),
                   (const char *)p);
        }
    }
    if (len != expected_len(c, d, t)) {
        len_mismatch++;
    }
    c->rx_n++;
    if (measuring) {
        uint64_t lat = now > ts ? now - ts : 0;

        hist[ss_hist_idx(lat)]++;
        if (lat > lat_max) {
            lat_max = lat;
        }
        window_msgs++;
        c->window_msgs++;
    }
    return 1;
}

static void on_registered(cl_t *c)
{
    c->state = ST_READY;
    registered++;
}

/* One complete text message; returns how many relayed messages it was (0/1). */
static int on_message(cl_t *c, const uint8_t *p, size_t len, uint64_t now)
{
    const uint8_t *m = memmem(p, len, SM_MARKER, strlen(SM_MARKER));

    if (m != NULL && c->state == ST_READY) {
        return on_relayed(c, p, len, m, now);
    }
    if (opt.proto == SM_AYAME) {
        if (has(p, len, "\"type\":\"ping\"")) {
            send_text(c, "{\"type\":\"pong\"}");
        } else if (c->state == ST_REGISTER && has(p, len, "\"type\":\"accept\"")) {
            on_registered(c);
        } else if (has(p, len, "\"type\":\"reject\"") || has(p, len, "\"type\":\"bye\"") ||
                   has(p, len, "\"type\":\"error\"")) {
            sl_die("client %s: %.*s", c->id, SHOW(len), (const char *)p);
        } else {
            other_msgs++;
        }
        return 0;
    }
    if (c->state == ST_REGISTER && has(p, len, "\"type\":\"OPEN\"")) {
        on_registered(c);
    } else if (has(p, len, "\"type\":\"HEARTBEAT\"")) {
        other_msgs++; /* the minimal relay forwards the partner's */
    } else {
        /* ID-TAKEN, ERROR, EXPIRE, LEAVE: the run is broken. */
        sl_die("client %s: %.*s", c->id, SHOW(len), (const char *)p);
    }
    return 0;
}

static void on_control(cl_t *c, int op, const uint8_t *p, size_t len)
{
    if (op == 8) {
        int code = len >= 2 ? p[0] << 8 | p[1] : 0;

        sl_die("client %s: the server sent Close (code %d%s%.*s)", c->id, code, len > 2 ? ": " : "",
               (int)(len > 2 ? len - 2 : 0), (const char *)p + 2);
    }
    if (op == 9) {
        uint8_t pong[6 + 125];
        uint8_t *e = put_frame(pong, 10, p, len, NULL, 0);

        send_bytes(c, pong, (size_t)(e - pong));
    }
}

static void msg_append(cl_t *c, const uint8_t *p, size_t n)
{
    if (c->msg_len + n > MSG_MAX) {
        sl_die("client %s: a message over %u bytes", c->id, MSG_MAX);
    }
    if (c->msg_len + n > c->msg_cap) {
        c->msg_cap = c->msg_len + n + 4096;
        if ((c->msg = realloc(c->msg, c->msg_cap)) == NULL) {
            sl_die("out of memory");
        }
    }
    memcpy(c->msg + c->msg_len, p, n);
    c->msg_len += n;
}

/* The frame header in c->hdr is complete: set up the frame. */
static void frame_begin(cl_t *c)
{
    int l7 = c->hdr[1] & 0x7f;
    uint64_t flen = (uint64_t)l7;

    if (c->hdr[0] & 0x70) {
        sl_die("client %s: RSV bits set (no extension was offered)", c->id);
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
    c->op = c->hdr[0] & 0x0f;
    c->hdr_got = 0;
    c->hdr_need = 2;
    c->in_frame = 1;
    c->frame_left = flen;
    if (c->op >= 8 ? flen > 125 || !c->fin : flen > MSG_MAX) {
        sl_die("client %s: a bad frame (opcode %d, %llu bytes)", c->id, c->op,
               (unsigned long long)flen);
    }
    if (c->op == 1 || c->op == 2) {
        c->msg_op = c->op;
    } else if (c->op == 0 && c->msg_op == 0) {
        sl_die("client %s: continuation without a message", c->id);
    }
}

/* Parse the server's frames in p[0..len); returns the relayed messages completed. */
static long on_data(cl_t *c, const uint8_t *p, size_t len, uint64_t now)
{
    const uint8_t *end = p + len;
    long done = 0;

    while (p < end) {
        size_t take;

        if (!c->in_frame) {
            while (p < end && c->hdr_got < c->hdr_need) {
                c->hdr[c->hdr_got++] = *p++;
                if (c->hdr_got == 2) {
                    int l7 = c->hdr[1] & 0x7f;

                    if (c->hdr[1] & 0x80) {
                        sl_die("client %s: the server masked a frame", c->id);
                    }
                    c->hdr_need = (uint8_t)(2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0));
                }
            }
            if (c->hdr_got < c->hdr_need) {
                break;
            }
            frame_begin(c);
        }
        take = (size_t)(end - p) < c->frame_left ? (size_t)(end - p) : (size_t)c->frame_left;
        if (c->op < 8 && c->fin && c->msg_len == 0 && take == c->frame_left) {
            /* The common case: a whole message in this read, used in place. */
            done += on_message(c, p, take, now);
        } else if (c->op < 8) {
            msg_append(c, p, take);
        } else {
            memcpy(c->ctl + c->ctl_got, p, take);
            c->ctl_got = (uint8_t)(c->ctl_got + take);
        }
        p += take;
        c->frame_left -= take;
        if (c->frame_left > 0) {
            break;
        }
        c->in_frame = 0;
        if (c->op >= 8) {
            on_control(c, c->op, c->ctl, c->ctl_got);
            c->ctl_got = 0;
        } else if (c->fin) {
            if (c->msg_len > 0) {
                done += on_message(c, c->msg, c->msg_len, now);
                c->msg_len = 0;
            }
            c->msg_op = 0;
        }
    }
    return done;
}

/* ---- connection set-up -------------------------------------------------------- */

static int port_lo = 32768, port_hi = 60999, port_next;

/* Bind a local port of our own, walking the ephemeral range: with tens of
 * thousands of connections to one address, letting connect() pick costs a
 * search of the range per connect. */
static void bind_local(int fd, const struct sockaddr_in *dst)
{
    struct sockaddr_in la;
    int tries, span = port_hi - port_lo + 1;

    memset(&la, 0, sizeof(la));
    la.sin_family = AF_INET;
    la.sin_addr = dst->sin_addr;
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
    sl_die("no free local port to bind: %s", strerror(errno));
}

static void start_connect(cl_t *c, const struct sockaddr_in *sa)
{
    struct epoll_event ev;
    struct linger lg = {1, 0};
    int one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        sl_die("socket: %s", strerror(errno));
    }
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    bind_local(c->fd, sa);
    if (connect(c->fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0 && errno != EINPROGRESS) {
        sl_die("connect: %s", strerror(errno));
    }
    c->state = ST_CONNECTING;
    c->hdr_need = 2;
    ev.events = EPOLLOUT;
    ev.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        sl_die("epoll_ctl: %s", strerror(errno));
    }
}

static void send_upgrade(cl_t *c)
{
    char req[768], key[25], target[256];
    uint8_t raw[16];
    uint64_t a = wsb_rand(&rng), b = wsb_rand(&rng);
    int len;

    memcpy(raw, &a, 8);
    memcpy(raw + 8, &b, 8);
    wsb_base64(raw, 16, key);
    wsb_accept(key, 24, c->accept);
    if (opt.proto == SM_AYAME) {
        snprintf(target, sizeof(target), "%s", opt.path);
    } else {
        /* The query the peerjs client builds (version last). */
        snprintf(target, sizeof(target), "%s?key=%s&id=%s&token=t%s&version=1.5.5", opt.path,
                 opt.key, c->id, c->id);
    }
    len = snprintf(req, sizeof(req),
                   "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\nOrigin: http://%s:%d\r\n\r\n",
                   target, opt.addr, opt.port, key, opt.addr, opt.port);
    if (write(c->fd, req, (size_t)len) != len) {
        sl_die("write of the upgrade request: %s", strerror(errno));
    }
}

static void send_register(cl_t *c)
{
    char msg[256];

    snprintf(msg, sizeof(msg),
             "{\"type\":\"register\",\"roomId\":\"%s-room%u\",\"clientId\":\"%s\","
             "\"ayameClient\":\"sigload\",\"libwebrtc\":\"none\",\"environment\":\"bench\"}",
             run_id, c->idx / 2, c->id);
    send_text(c, msg);
}

/* The 101 so far; on success the client waits for OPEN / accept. */
static void on_handshake(cl_t *c, uint64_t now)
{
    char *end, *h, *v;
    size_t head, vlen;
    ssize_t n;

    if (c->hs == NULL && (c->hs = malloc(HS_MAX)) == NULL) {
        sl_die("out of memory");
    }
    n = read(c->fd, c->hs + c->hs_got, HS_MAX - 1 - c->hs_got);
    if (n <= 0) {
        if (n < 0 && errno == EAGAIN) {
            return;
        }
        sl_die("client %s: closed during the handshake (%s)", c->id,
               n == 0 ? "EOF" : strerror(errno));
    }
    c->hs_got += (size_t)n;
    c->hs[c->hs_got] = '\0';
    if ((end = strstr(c->hs, "\r\n\r\n")) == NULL) {
        if (c->hs_got >= HS_MAX - 1) {
            sl_die("handshake response too long");
        }
        return;
    }
    head = (size_t)(end - c->hs) + 4;
    *end = '\0';
    if (strncmp(c->hs, "HTTP/1.1 101", 12) != 0) {
        sl_die("client %s: not a 101 response: %.300s", c->id, c->hs);
    }
    if ((h = strcasestr(c->hs, "\r\nsec-websocket-accept:")) == NULL) {
        sl_die("101 without Sec-WebSocket-Accept");
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
        sl_die("wrong Sec-WebSocket-Accept '%.*s', expected '%s'", (int)vlen, v, c->accept);
    }
    c->state = ST_REGISTER;
    want_out(c, 0);
    if (opt.proto == SM_AYAME) {
        send_register(c);
    }
    if (c->hs_got > head) { /* OPEN right behind the 101 */
        on_data(c, (uint8_t *)c->hs + head, c->hs_got - head, now);
    }
    free(c->hs);
    c->hs = NULL;
}

static void on_event(cl_t *c, uint32_t events, uint64_t now)
{
    socklen_t elen = sizeof(int);
    int err = 0;
    ssize_t n;
    long done;

    switch (c->state) {
    case ST_CONNECTING:
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen);
        if (err != 0) {
            sl_die("connect: %s", strerror(err));
        }
        send_upgrade(c);
        c->state = ST_HANDSHAKE;
        want_out(c, 0);
        return;
    case ST_HANDSHAKE:
        on_handshake(c, now);
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
        sl_die("client %s: the server %s the connection (%ld of %ld registered)", c->id,
               n == 0 ? "closed" : "reset", registered, opt.clients);
    }
    done = on_data(c, rbuf, (size_t)n, now);
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

        if (c->state == ST_READY) {
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
        int nev = epoll_wait(ep, evs, 1024, (int)(ms > 100 ? 100 : ms));

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
    int o;

    if (argc < 2) {
        usage();
    }
    if (strcmp(argv[1], "relay") == 0) {
        opt.mode = M_RELAY;
    } else if (strcmp(argv[1], "rate") == 0) {
        opt.mode = M_RATE;
    } else if (strcmp(argv[1], "hold") == 0) {
        opt.mode = M_HOLD;
    } else {
        usage();
    }
    optind = 2;
    while ((o = getopt(argc, argv, "P:a:p:u:K:c:k:R:d:w:S:H:W:t:O:A:C:")) != -1) {
        switch (o) {
        case 'P':
            opt.proto = strcmp(optarg, "ayame") == 0    ? SM_AYAME
                        : strcmp(optarg, "raw") == 0    ? SM_RAW
                        : strcmp(optarg, "peerjs") == 0 ? SM_PEERJS
                                                        : -1;
            break;
        case 'a':
            opt.addr = optarg;
            break;
        case 'p':
            opt.port = atoi(optarg);
            break;
        case 'u':
            opt.path = optarg;
            break;
        case 'K':
            opt.key = optarg;
            break;
        case 'c':
            opt.clients = atol(optarg);
            break;
        case 'k':
            opt.inflight = atol(optarg);
            break;
        case 'R':
            opt.rate = atof(optarg);
            break;
        case 'd':
            opt.duration = atof(optarg);
            break;
        case 'w':
            opt.warmup = atof(optarg);
            break;
        case 'S':
            opt.settle_ms = atol(optarg);
            break;
        case 'H':
            opt.heartbeat = atof(optarg);
            break;
        case 'W':
            opt.window = atol(optarg);
            break;
        case 't':
            opt.timeout_s = atol(optarg);
            break;
        case 'O':
            opt.offer_sdp = (size_t)atol(optarg);
            break;
        case 'A':
            opt.answer_sdp = (size_t)atol(optarg);
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
    if (opt.path == NULL) {
        opt.path = opt.proto == SM_AYAME ? "/signaling" : "/peerjs";
    }
    if (opt.proto < 0 || opt.port <= 0 || opt.clients < 2 || opt.clients % 2 != 0 ||
        opt.inflight <= 0 || opt.window <= 0 || opt.duration <= 0 || opt.rate <= 0 ||
        opt.offer_sdp > 60000 || opt.answer_sdp > 60000 || (opt.mode == M_HOLD && opt.npids == 0)) {
        usage();
    }
}

static void setup(struct sockaddr_in *sa)
{
    struct rlimit rl;
    FILE *f;
    long i;

    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)opt.port);
    if (inet_pton(AF_INET, opt.addr, &sa->sin_addr) != 1) {
        sl_die("bad address %s", opt.addr);
    }
    /* One socket per client: the soft limit goes up to the hard one. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if ((long)rl.rlim_cur < opt.clients + 16) {
            sl_die("%ld clients need %ld file descriptors; this process may have %ld (ulimit -Hn); "
                   "split the clients over several processes",
                   opt.clients, opt.clients + 16, (long)rl.rlim_cur);
        }
    }
    signal(SIGPIPE, SIG_IGN);
    rng ^= wsb_now_ns() ^ (uint64_t)getpid() << 32;
    snprintf(run_id, sizeof(run_id), "%06llx", (unsigned long long)(wsb_rand(&rng) >> 40));
    if ((f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) != NULL) {
        if (fscanf(f, "%d %d", &port_lo, &port_hi) != 2 || port_lo < 1024 || port_hi <= port_lo ||
            port_hi > 65535) {
            port_lo = 32768, port_hi = 60999;
        }
        fclose(f);
    }
    port_next = port_lo + (int)(wsb_rand(&rng) % (uint64_t)(port_hi - port_lo + 1));
    sm_build(tmpl, opt.proto, opt.offer_sdp, opt.answer_sdp);
    cls = calloc((size_t)opt.clients, sizeof(*cls));
    wbuf_cap = (size_t)opt.inflight * (tmpl[SM_OFFER].len + 64) + 65536;
    wbuf = malloc(wbuf_cap);
    rbuf = malloc(RBUF_MAX);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (cls == NULL || wbuf == NULL || rbuf == NULL || ep < 0) {
        sl_die("out of memory or epoll");
    }
    for (i = 0; i < opt.clients; i++) {
        cls[i].idx = (uint32_t)i;
        cls[i].id_len = (uint8_t)snprintf(cls[i].id, ID_MAX, "%s-%ld", run_id, i);
    }
}

/* Connect and register every client, at most opt.window in progress at once. */
static double connect_all(const struct sockaddr_in *sa)
{
    struct epoll_event evs[1024];
    uint64_t t0 = wsb_now_ns(), deadline = t0 + (uint64_t)opt.timeout_s * 1000000000ull, now;
    long started = 0;

    hb = (pace_t){t0 + (uint64_t)(opt.heartbeat * 1e9), (uint64_t)(opt.heartbeat * 1e9),
                  opt.clients, 0, 0};
    while (registered < opt.clients) {
        while (started < opt.clients && started - registered < opt.window) {
            start_connect(&cls[started], sa);
            started++;
        }
        if ((now = wsb_now_ns()) > deadline) {
            long st[5] = {0, 0, 0, 0, 0};

            for (long i = 0; i < started; i++) {
                st[cls[i].state]++;
            }
            sl_die("only %ld of %ld clients registered within %ld s (%ld connecting, %ld waiting "
                   "for the 101, %ld for OPEN/accept)",
                   registered, opt.clients, opt.timeout_s, st[ST_CONNECTING], st[ST_HANDSHAKE],
                   st[ST_REGISTER]);
        }
        int nev = epoll_wait(ep, evs, 1024, 50);

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

static void report_hold(long before, long idle, long active, double connect_s)
{
    long held = 0;

    for (long i = 0; i < opt.clients; i++) {
        held += cls[i].state == ST_READY;
    }
    printf("mode=hold proto=%s clients=%ld held=%ld connect_s=%.2f before_kib=%ld idle_kib=%ld "
           "active_kib=%ld idle_per_client_bytes=%.1f active_per_client_bytes=%.1f "
           "active_msgs=%llu errors=0\n",
           opt.proto == SM_AYAME ? "ayame"
           : opt.proto == SM_RAW ? "raw"
                                 : "peerjs",
           opt.clients, held, connect_s, before, idle, active,
           (double)(idle - before) * 1024.0 / (double)held,
           (double)(active - before) * 1024.0 / (double)held, (unsigned long long)window_msgs);
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa;
    long c0 = 0, c1 = 0, before = 0, idle = 0, active, rss = 0;
    long long st0[3], st1[3];
    double cpu0, cpu1, win, connect_s, hz = (double)sysconf(_SC_CLK_TCK), scpu;
    uint64_t now, t_start, t_end;

    parse_args(argc, argv);
    setup(&sa);
    if (opt.mode == M_HOLD) {
        before = ss_rss_kib(opt.npids, opt.pids);
    }
    connect_s = connect_all(&sa);
    if (opt.mode == M_HOLD) {
        run_until(wsb_now_ns() + (uint64_t)opt.settle_ms * 1000000ull);
        idle = ss_rss_kib(opt.npids, opt.pids);
        measuring = 1;
        start_traffic(wsb_now_ns());
        run_until(wsb_now_ns() + (uint64_t)(opt.duration * 1e9));
        active = ss_rss_kib(opt.npids, opt.pids);
        report_hold(before, idle, active, connect_s);
        return 0;
    }
    now = wsb_now_ns();
    start_traffic(now);
    run_until(now + (uint64_t)(opt.warmup * 1e9));
    c0 = opt.npids ? ss_cpu_ticks(opt.npids, opt.pids) : 0;
    ss_cpu_stat(opt.cpu, st0);
    cpu0 = ss_self_cpu_s();
    t_start = wsb_now_ns();
    measuring = 1;
    run_until(t_start + (uint64_t)(opt.duration * 1e9));
    measuring = 0;
    c1 = opt.npids ? ss_cpu_ticks(opt.npids, opt.pids) : 0;
    ss_cpu_stat(opt.cpu, st1);
    cpu1 = ss_self_cpu_s();
    t_end = wsb_now_ns();
    rss = opt.npids ? ss_rss_kib(opt.npids, opt.pids) : 0;
    stopping = 1;
    win = (double)(t_end - t_start) / 1e9;
    scpu = (double)(c1 - c0) / hz;
    printf("mode=%s proto=%s clients=%ld inflight=%ld rate=%g window_s=%.3f msgs=%llu "
           "msgs_per_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f server_cpu_s=%.2f "
           "server_busy_pct=%.1f msgs_per_cpu_s=%.0f client_busy_pct=%.1f cpu_busy_pct=%.1f "
           "cpu_softirq_pct=%.1f rss_kib=%ld connect_s=%.2f len_mismatch=%llu other=%llu "
           "errors=0\n",
           opt.mode == M_RATE ? "rate" : "relay",
           opt.proto == SM_AYAME ? "ayame"
           : opt.proto == SM_RAW ? "raw"
                                 : "peerjs",
           opt.clients, opt.inflight, opt.rate, win, (unsigned long long)window_msgs,
           (double)window_msgs / win, ss_hist_pct(hist, 0.50) / 1e3, ss_hist_pct(hist, 0.99) / 1e3,
           ss_hist_pct(hist, 0.999) / 1e3, (double)lat_max / 1e3, scpu, 100.0 * scpu / win,
           scpu > 0 ? (double)window_msgs / scpu : 0.0, 100.0 * (cpu1 - cpu0) / win,
           st1[2] > st0[2] ? 100.0 * (double)(st1[0] - st0[0]) / (double)(st1[2] - st0[2]) : 0.0,
           st1[2] > st0[2] ? 100.0 * (double)(st1[1] - st0[1]) / (double)(st1[2] - st0[2]) : 0.0,
           rss, connect_s, (unsigned long long)len_mismatch, (unsigned long long)other_msgs);
    fflush(stdout);
    return window_msgs > 0 ? 0 : 1;
}
