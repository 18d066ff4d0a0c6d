/*
 * worker.h — a worker thread: one loop, its buffer pool, its inbox, its
 * listening sockets (one per listener, SO_REUSEPORT) and every connection it
 * accepted. Nothing in a worker takes a lock on the hot path.
 */
#ifndef TS_WORKER_H
#define TS_WORKER_H

#include <pthread.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/bus.h"
#include "core/conn.h"
#include "core/idmap.h"
#include "core/loop.h"
#include "core/metrics.h"

typedef struct ts_server_s ts_server_t;

/* Control messages on the bus (types below 100 belong to the core). */
enum ts_msg_type {
    TS_MSG_DRAIN = 1,  /* stop accepting, finish in-flight work, exit */
    TS_MSG_STOP = 2,   /* exit now */
    TS_MSG_RELOAD = 3, /* the configuration pointer (and maybe the certificate) changed */
    TS_MSG_USER = 100, /* first type for protocols: see ts_worker_on_message() */
};

/* A datagram socket is readable: the protocol reads it (recvmmsg). */
typedef void (*ts_dgram_cb)(ts_worker_t *w, int fd);

typedef struct {
    ts_io_t io;
    ts_worker_t *worker;
    const ts_conn_ops_t *ops; /* stream listeners */
    ts_dgram_cb dgram;        /* datagram sockets */
    int kind; /* enum ts_proto_kind */
    struct ssl_ctx_st *tls_ctx; /* one reference owned; NULL: plain TCP */
    unsigned tls_gen;           /* the certificate generation of tls_ctx (tls/certs.h) */
    ts_timer_t backoff; /* accept paused after EMFILE/ENFILE */
} ts_listener_t;

typedef void (*ts_msg_handler_t)(ts_worker_t *w, ts_bus_msg_t *msg);

struct ts_worker_s {
    int index;
    pthread_t thread;
    int thread_started;
    ts_server_t *server;
    ts_loop_t loop;
    ts_pool_t pool;
    ts_inbox_t inbox;
    ts_idmap_t conns; /* id -> ts_conn_t*, every open connection */
    uint64_t next_seq;
    size_t nconns;
    ts_listener_t *listeners; /* owned array */
    size_t nlisteners;
    ts_metrics_t metrics;
    ts_timer_t tick;  /* once a second: the Date header, drain checks */
    ts_timer_t drain_deadline;
    int draining;       /* 1: since TS_MSG_DRAIN; 2: and nothing left (ts_worker_hold) */
    size_t nheld;       /* not connections, yet a drain waits for them: TURN relay sockets */
    char http_date[32]; /* "Sun, 22 Nov 2026 00:45:04 GMT" */
    ts_msg_handler_t handlers[16]; /* protocol messages: type - TS_MSG_USER */
    struct {
        void *ptr;
        void (*destroy)(void *ptr);
    } locals[8]; /* per-worker state of protocols; see ts_worker_local() */
};

/* Per-worker state a protocol keeps (e.g. a shared compressor), created on
 * first use and destroyed with the worker. */
enum { TS_LOCAL_WS_DEFLATE = 0, TS_LOCAL_TURN = 1, TS_LOCAL_DTLS = 2, TS_LOCAL_PEERJS = 3,
       TS_LOCAL_WEBHOOK = 4, TS_LOCAL_AYAME = 5 };
void *ts_worker_local(ts_worker_t *w, int slot, void *(*create)(void), void (*destroy)(void *));

/* Set up a worker on the calling thread's stack of objects (no thread yet). */
int ts_worker_init(ts_worker_t *w, ts_server_t *server, int index);
void ts_worker_free(ts_worker_t *w);
/* Take ownership of a listening socket. */
void ts_worker_add_listener(ts_worker_t *w, int fd, const ts_conn_ops_t *ops,
                            struct ssl_ctx_st *tls_ctx);
/* Take ownership of a bound datagram socket read by cb. */
void ts_worker_add_dgram(ts_worker_t *w, int fd, ts_dgram_cb cb);
int ts_worker_start(ts_worker_t *w);

/*
 * Something that is not a connection keeps the worker busy (a TURN relay
 * socket: its allocation relays media with no connection of its own): a
 * drain waits for every hold to be released, up to --drain-timeout.
 */
void ts_worker_hold(ts_worker_t *w);
void ts_worker_release(ts_worker_t *w);

/* Internal to the core: connections register and unregister themselves. */
uint64_t ts_worker__conn_added(ts_worker_t *w, ts_conn_t *c, int kind);
void ts_worker__conn_removed(ts_worker_t *w, ts_conn_t *c, int kind);

/* Handle bus messages of type (>= TS_MSG_USER) on this worker. */
void ts_worker_on_message(ts_worker_t *w, uint32_t type, ts_msg_handler_t handler);

/* The worker of the calling thread (NULL on other threads). */
ts_worker_t *ts_worker_current(void);

#endif
