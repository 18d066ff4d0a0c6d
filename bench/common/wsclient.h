/*
 * wsclient — the client side of RFC 6455 that the WebSocket load generators
 * share (bench/ws/loadgen.c, bench/signaling/sigload.c): one thread, one
 * epoll instance, many non-blocking connections. wsclient connects (binding
 * its own local port), sends the upgrade with a fresh random
 * Sec-WebSocket-Key, checks the 101 and its Sec-WebSocket-Accept, writes
 * masked frames, keeps what a short write left behind, reads the head of
 * every frame the server sends, and answers Ping and Close. What the
 * payloads mean is the program's own (wsc_ops_t.data).
 *
 * The hot path is one read per readiness into one shared buffer, handed to
 * the program whole, and one write per batch of frames the program builds.
 * Any protocol error, refused connection or failed write ends the run
 * (errx): a load generator must not measure a broken exchange.
 *
 * A program embeds wsc_conn_t as the first member of its own connection
 * struct, so the pointers wsclient hands back (and epoll's data.ptr) are its.
 */
#ifndef WSCLIENT_H
#define WSCLIENT_H

#include <err.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wsbench.h"

#define WSC_RBUF (1u << 20) /* the largest read */

/* Connection states; a program may number states of its own for an open
 * connection from WSC_OPEN on (every state but these three reads frames). */
enum { WSC_CONNECTING, WSC_HANDSHAKE, WSC_OPEN, WSC_CLOSED, WSC_STATES };

typedef struct {
    int fd, state;
    uint32_t idx; /* the program's number for it */
    char *hs;     /* the 101 so far (WSC_HANDSHAKE only), owned */
    size_t hs_got;
    char accept[29]; /* the Sec-WebSocket-Accept to expect */
    uint8_t *out;    /* bytes a short write left behind, owned */
    size_t out_len, out_cap;
    uint8_t hdr[14]; /* the head of the server's next frame, so far */
    uint8_t hdr_got, hdr_need, in_frame, fin, op, ctl_got;
    uint8_t ctl[125];    /* a control frame's payload */
    uint64_t frame_left; /* payload bytes of the current frame still to come */
} wsc_conn_t;

typedef struct {
    /* The request target of c's upgrade (path and query) into buf. */
    void (*target)(const wsc_conn_t *c, char *buf, size_t size);
    /* The 101 is checked: c is open (state WSC_OPEN). */
    void (*opened)(wsc_conn_t *c, uint64_t now);
    /* Bytes the server sent on open connection c; returns how many of the
     * program's messages they completed. */
    long (*data)(wsc_conn_t *c, const uint8_t *p, size_t len, uint64_t now);
    /* c in error messages: "connection 12", "client 1a2b3c-12". */
    const char *(*name)(const wsc_conn_t *c);
} wsc_ops_t;

/* The run's settings and shared state; wsc_init fills it. */
typedef struct {
    const char *host; /* the server address, as given (Host:, Origin:) */
    int port;
    struct sockaddr_in sa;
    int origin;     /* 1: send Origin: http://HOST:PORT, as browsers do */
    size_t out_max; /* unsent bytes a connection may hold; 0: no limit */
    int ep;         /* the epoll instance of every connection */
    uint64_t rng;   /* xorshift64* state: keys, masks, local ports */
    const wsc_ops_t *ops;
} wsc_t;

extern wsc_t wsc;

/* Parse HOST, seed the PRNG, learn the local port range, ignore SIGPIPE,
 * make the epoll instance and the read buffer. */
void wsc_init(const char *host, int port, const wsc_ops_t *ops);
/* Start connecting c (c->idx set by the caller); state WSC_CONNECTING. */
void wsc_connect(wsc_conn_t *c);
/* Drive c on an epoll event: the upgrade, the 101, then one read handed to
 * ops->data. Returns what ops->data returned (0 for the set-up steps and when
 * nothing was read), or -1 when the server closed the connection (errno 0)
 * or reset it (errno set). */
long wsc_on_event(wsc_conn_t *c, uint32_t events, uint64_t now);
/* Write buf, keeping what the socket does not take for EPOLLOUT. */
void wsc_send(wsc_conn_t *c, const uint8_t *buf, size_t len);
/* Write a whole masked final frame at p; returns its end. */
uint8_t *wsc_put_frame(uint8_t *p, int op, const void *payload, size_t len);
/* The control frame in c->ctl is complete: Close ends the run, Ping is
 * answered with Pong, Pong is ignored. */
void wsc_on_control(wsc_conn_t *c);

/*
 * Take the head of the server's next frame from *p (moving it, at most to
 * end); 1 when the head is whole and the frame set up (c->op, c->fin,
 * c->frame_left; c->in_frame 1), 0 when the bytes ended inside it. Inline:
 * it runs for every frame.
 */
static inline int wsc_frame_head(wsc_conn_t *c, const uint8_t **p, const uint8_t *end)
{
    int l7;
    uint64_t flen;

    while (*p < end && c->hdr_got < c->hdr_need) {
        c->hdr[c->hdr_got++] = *(*p)++;
        if (c->hdr_got == 2) {
            l7 = c->hdr[1] & 0x7f;
            if (c->hdr[1] & 0x80) {
                errx(1, "%s: the server masked a frame", wsc.ops->name(c));
            }
            c->hdr_need = (uint8_t)(2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0));
        }
    }
    if (c->hdr_got < c->hdr_need) {
        return 0;
    }
    if (c->hdr[0] & 0x70) {
        errx(1, "%s: RSV bits set (no extension was offered)", wsc.ops->name(c));
    }
    l7 = c->hdr[1] & 0x7f;
    flen = (uint64_t)l7;
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
    if (c->op >= 8 && (flen > 125 || !c->fin)) {
        errx(1, "%s: a bad control frame (opcode %d, %llu bytes)", wsc.ops->name(c), c->op,
             (unsigned long long)flen);
    }
    return 1;
}

/* Write the head of a masked final frame of len payload bytes at p, with a
 * fresh mask (copied to mask); returns where the payload goes. Inline: it
 * runs for every message sent. */
static inline uint8_t *wsc_put_head(uint8_t *p, int op, size_t len, uint8_t mask[4])
{
    uint64_t r = wsb_rand(&wsc.rng);

    memcpy(mask, &r, 4);
    *p++ = (uint8_t)(0x80 | op);
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
    return p + 4;
}

/* What a program does with the frames of its messages (wsc_frames). */
typedef struct {
    /* The head of a data frame is in (c->op, c->fin, c->frame_left). */
    void (*begin)(wsc_conn_t *c);
    /* Payload bytes p[0..len) of it, the first of c->frame_left still to
     * come; returns the messages they completed. */
    long (*payload)(wsc_conn_t *c, const uint8_t *p, size_t len, uint64_t now);
    /* The data frame is complete (c->fin: and its message); returns the
     * messages that completed. */
    long (*end)(wsc_conn_t *c, uint64_t now);
} wsc_frame_ops_t;

/*
 * Walk the server's frames in p[0..len) (a frame may span reads): control
 * frames are gathered and handled here (wsc_on_control), data frames go to
 * f. Returns the messages completed. Inline, with f a static const table
 * of (inline) functions: the compiler then calls them directly, or inlines
 * them, per frame.
 */
static inline long wsc_frames(wsc_conn_t *c, const uint8_t *p, size_t len, uint64_t now,
                              const wsc_frame_ops_t *f)
{
    const uint8_t *end = p + len;
    long done = 0;
    size_t take;

    while (p < end) {
        if (!c->in_frame) {
            if (!wsc_frame_head(c, &p, end)) {
                break;
            }
            if (c->op < 8) {
                f->begin(c);
            }
        }
        take = (size_t)(end - p) < c->frame_left ? (size_t)(end - p) : (size_t)c->frame_left;
        if (c->op >= 8) {
            memcpy(c->ctl + c->ctl_got, p, take);
            c->ctl_got = (uint8_t)(c->ctl_got + take);
        } else {
            done += f->payload(c, p, take, now);
        }
        p += take;
        c->frame_left -= take;
        if (c->frame_left > 0) {
            break;
        }
        c->in_frame = 0;
        if (c->op >= 8) {
            wsc_on_control(c);
        } else {
            done += f->end(c, now);
        }
    }
    return done;
}

#endif
