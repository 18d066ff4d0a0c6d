/*
 * bus.h — messages between workers, addressed by id, never by pointer.
 *
 * Each worker owns an inbox: a lock-free multi-producer single-consumer
 * queue woken by an eventfd registered on the worker's loop. Any thread may
 * post; only the owning worker drains. Producers push onto an intrusive
 * stack with a CAS; the consumer takes the whole stack with one exchange and
 * reverses it, which restores the order of the pushes. The eventfd is written
 * only when a push finds the inbox empty, so a burst costs one wake-up.
 *
 * Every inbox has a cap: a post past it fails with TS_ERR_LIMIT and the
 * sender closes whoever produced the flood. Later the same interface is
 * backed by Redis pub/sub across machines.
 */
#ifndef TS_BUS_H
#define TS_BUS_H

#include <stdint.h>

#include "core/loop.h"

/* Connection ids carry their worker in the top 16 bits. */
#define TS_ID_WORKER_SHIFT 48
static inline int ts_id_worker(uint64_t id)
{
    return (int)(id >> TS_ID_WORKER_SHIFT);
}

/* Ids in log lines read "worker.sequence": conn=1.42 */
#define TS_ID_FMT "%d.%llu"
#define TS_ID_ARG(id)                                                                              \
    ts_id_worker(id), (unsigned long long)((id) & ((1ULL << TS_ID_WORKER_SHIFT) - 1))

typedef struct ts_bus_msg_s ts_bus_msg_t;
struct ts_bus_msg_s {
    ts_bus_msg_t *next;
    uint32_t type; /* what the message is; the receiver dispatches on it */
    uint32_t len;  /* bytes in data */
    uint64_t dst;  /* connection (or room) id the message is for; 0: the worker */
    uint64_t src;  /* sender's id, when it has one */
    char data[];
};

/* Called on the receiving worker's thread; the inbox frees msg afterwards. */
typedef void (*ts_inbox_cb)(void *ctx, ts_bus_msg_t *msg);

typedef struct {
    ts_bus_msg_t *head; /* stack of pushes; atomic */
    /* Posts from the owner's own thread: a plain FIFO run at the loop's
     * deferred point, with no atomics and no eventfd write and wake-up
     * (two rooms members on one worker are the common case). */
    ts_bus_msg_t *local_head;
    ts_bus_msg_t **local_tail;
    ts_defer_t local_defer;
    uint32_t local_pending;
    uint32_t pending;   /* messages queued; atomic */
    uint32_t cap;
    ts_io_t io; /* the eventfd */
    ts_loop_t *loop;
    ts_inbox_cb cb;
    void *ctx;
    uint64_t received; /* messages delivered (consumer only) */
} ts_inbox_t;

/* A message with len bytes of data copied from data (may be NULL: zeroed). */
ts_bus_msg_t *ts_bus_msg_new(uint32_t type, uint64_t dst, uint64_t src, const void *data,
                             uint32_t len);
void ts_bus_msg_free(ts_bus_msg_t *msg);

int ts_inbox_init(ts_inbox_t *in, ts_loop_t *loop, uint32_t cap, ts_inbox_cb cb, void *ctx);
/* Drain what is left (freeing it) and close the eventfd. Owner thread only. */
void ts_inbox_close(ts_inbox_t *in);

/* Thread-safe. Takes ownership of msg (freed on failure). TS_OK or TS_ERR_LIMIT.
 * A post from the inbox's own thread (see ts_inbox_own) is delivered after
 * the current batch of events, never inside the caller. */
int ts_inbox_post(ts_inbox_t *in, ts_bus_msg_t *msg);

/* The calling thread drains in (its worker thread, once at start). */
void ts_inbox_own(ts_inbox_t *in);

/* Nothing the owner posted to itself waits to run (owner thread only): a
 * message handled at once cannot overtake one of its own posts. */
static inline int ts_inbox_local_idle(const ts_inbox_t *in)
{
    return in->local_pending == 0;
}

/* Deliver everything queued now (owner thread; the eventfd callback calls it). */
unsigned ts_inbox_drain(ts_inbox_t *in);

/* The set of inboxes, one per worker; fixed once the workers start. */
typedef struct {
    ts_inbox_t **inboxes; /* not owned: each worker owns its own inbox */
    int n;
} ts_bus_t;

/* Post to the worker that owns id. */
int ts_bus_send(ts_bus_t *bus, uint64_t id, ts_bus_msg_t *msg);
/* Post to worker w. */
int ts_bus_send_worker(ts_bus_t *bus, int w, ts_bus_msg_t *msg);

#endif
