/*
 * conn.h — a TCP connection owned by one worker: its socket, its input and
 * output buffers, one timer, and the protocol that reads its bytes.
 *
 * The connection drives I/O; protocols (http, ws, ...) only see bytes in
 * conn->in and append bytes to conn->out. Reads are level-triggered, one read
 * per readiness event. Output produced while handling one read is written
 * with one write at the end (pipelined responses leave in one packet). A
 * connection is never freed inside its own callback: ts_conn_close() marks
 * it and the free happens at the loop's deferred point.
 */
#ifndef TS_CONN_H
#define TS_CONN_H

#include <stdint.h>

#include "core/buf.h"
#include "core/loop.h"
#include "core/net.h"

struct ssl_st;
struct ssl_ctx_st;
typedef struct ts_conn_s ts_conn_t;
typedef struct ts_worker_s ts_worker_t;

/* What a protocol does with a connection. */
typedef struct {
    const char *name;
    int kind;         /* enum ts_proto_kind, for metrics */
    size_t conn_size; /* bytes to allocate: a struct embedding ts_conn_t first */
    /* The connection was accepted. Return TS_OK, or an error to close it. */
    int (*on_open)(ts_conn_t *c);
    /* New bytes are in c->in. Return TS_OK, or an error to close at once. */
    int (*on_read)(ts_conn_t *c);
    /* The peer closed its side (read returned 0); NULL: close. */
    void (*on_eof)(ts_conn_t *c);
    /* c->out was fully written (only when c->flags has TS_CONN_NOTIFY_DRAIN). */
    void (*on_drain)(ts_conn_t *c);
    /* The connection's timer fired. */
    void (*on_timeout)(ts_conn_t *c);
    /* Drain started (SIGTERM): finish what is in flight, then close. */
    void (*on_shutdown)(ts_conn_t *c);
    /* About to be freed: release protocol state. */
    void (*on_close)(ts_conn_t *c);
} ts_conn_ops_t;

#define TS_CONN_CLOSING      0x01 /* close requested; freed at the deferred point */
#define TS_CONN_CLOSE_AFTER  0x02 /* close once out is written */
#define TS_CONN_LINGER       0x04 /* write side shut; discarding input until EOF */
#define TS_CONN_READ_PAUSED  0x08 /* not reading: output backlog over the cap */
#define TS_CONN_NOTIFY_DRAIN 0x10 /* call ops->on_drain when out empties */
#define TS_CONN_EOF          0x20 /* the peer closed its side */
#define TS_CONN_IN_READ      0x40 /* inside on_read: output is flushed after it */
#define TS_CONN_TLS_WANT_W   0x80 /* TLS: a read or handshake waits for writability */
#define TS_CONN_READ_AGAIN   0x100 /* TLS: decrypted bytes still pending: read again */
#define TS_CONN_PER_IP       0x200 /* counted for --max-connections-per-ip; released on free */

/* Output backlog past which a connection stops reading its input. */
#define TS_CONN_OUT_HIGH (256 * 1024)

struct ts_conn_s {
    ts_io_t io;
    uint32_t flags;
    uint64_t id; /* worker in the top bits; see bus.h */
    ts_worker_t *worker;
    const ts_conn_ops_t *ops;
    void *proto; /* protocol state; owned by the protocol (on_close frees) */
    ts_buf_t in;
    ts_buf_t out;
    ts_timer_t timer;
    ts_defer_t defer;
    ts_peer_t peer;
    struct ssl_st *tls;       /* owned; NULL for plain TCP */
    uint32_t discarded;       /* bytes thrown away while lingering */
    const char *close_reason; /* static string for the log line */
};

/* Queue bytes for the peer (written at the end of the current read, or now
 * when called outside one). */
void ts_conn_write(ts_conn_t *c, const void *data, size_t len);
/* Try to write everything queued; arms write interest when the socket is full. */
void ts_conn_flush(ts_conn_t *c);
/* Close now (pending output is dropped). reason is a static string. */
void ts_conn_close(ts_conn_t *c, const char *reason);
/* Close gracefully: finish writing, shut the write side, drain input briefly. */
void ts_conn_close_after_write(ts_conn_t *c, const char *reason);
/* (Re)arm the connection's timer; ops->on_timeout runs when it fires. */
void ts_conn_set_timeout(ts_conn_t *c, uint64_t ms);
/* Stop or resume reading (backpressure). */
void ts_conn_pause_read(ts_conn_t *c);
void ts_conn_resume_read(ts_conn_t *c);
/* Switch protocol (e.g. HTTP -> WebSocket upgrade); the old one's on_close is
 * not called: it hands its state over or frees it itself. */
void ts_conn_set_ops(ts_conn_t *c, const ts_conn_ops_t *ops, void *proto);

/* Called by the worker: adopt an accepted socket. */
ts_conn_t *ts_conn_new(ts_worker_t *w, int fd, const struct sockaddr *peer,
                       const ts_conn_ops_t *ops, struct ssl_ctx_st *tls_ctx);

#endif
