/*
 * loop.h — one event loop per worker thread: epoll for readiness, a binary
 * min-heap for millisecond timers, and a list of deferred callbacks run at a
 * safe point after every batch of events (where connections are freed, never
 * inside their own callbacks).
 *
 * Nothing here is thread-safe: a loop and everything registered on it belong
 * to one thread. Other threads reach it through the bus (core/bus.h).
 */
#ifndef TS_LOOP_H
#define TS_LOOP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

typedef struct ts_loop_s ts_loop_t;
typedef struct ts_io_s ts_io_t;
typedef struct ts_timer_s ts_timer_t;
typedef struct ts_defer_s ts_defer_t;

#define TS_IO_READ  EPOLLIN
#define TS_IO_WRITE EPOLLOUT

typedef void (*ts_io_cb)(ts_loop_t *loop, ts_io_t *io, uint32_t events);
typedef void (*ts_timer_cb)(ts_loop_t *loop, ts_timer_t *timer);
typedef void (*ts_defer_cb)(ts_loop_t *loop, ts_defer_t *d);

/* A file descriptor watched by the loop. Owned by whoever embeds it. */
struct ts_io_s {
    int fd;
    uint32_t events; /* registered interest; 0 when not registered */
    ts_io_cb cb;
};

/* A one-shot timer; re-arm it from its callback for periodic work. */
struct ts_timer_s {
    uint64_t deadline; /* loop time in ms */
    uint32_t slot;     /* index in the heap + 1; 0 when not armed */
    ts_timer_cb cb;
};

/* A callback queued to run after the current batch of events. */
struct ts_defer_s {
    ts_defer_t *next;
    ts_defer_cb cb;
    int queued;
};

struct ts_loop_s {
    int epfd;
    int stop;
    uint64_t now; /* cached monotonic ms, updated once per iteration */
    ts_timer_t **heap;
    uint32_t nheap;
    uint32_t heap_cap;
    ts_defer_t *defer_head;
    ts_defer_t **defer_tail;
    void *data; /* the owner (the worker) */
};

int ts_loop_init(ts_loop_t *loop);
void ts_loop_free(ts_loop_t *loop);

/* Run until ts_loop_stop(). */
int ts_loop_run(ts_loop_t *loop);
/* One iteration: wait at most timeout_ms (-1: until the next timer). */
int ts_loop_run_once(ts_loop_t *loop, int timeout_ms);
void ts_loop_stop(ts_loop_t *loop);
void ts_loop_update_time(ts_loop_t *loop);

static inline uint64_t ts_loop_now(const ts_loop_t *loop)
{
    return loop->now;
}

/* Register, change, or remove interest. events: TS_IO_READ | TS_IO_WRITE. */
int ts_io_start(ts_loop_t *loop, ts_io_t *io, uint32_t events);
int ts_io_stop(ts_loop_t *loop, ts_io_t *io);

static inline void ts_timer_init(ts_timer_t *t, ts_timer_cb cb)
{
    t->deadline = 0;
    t->slot = 0;
    t->cb = cb;
}

/* Arm (or re-arm) t to fire timeout_ms from the loop's current time. */
void ts_timer_start(ts_loop_t *loop, ts_timer_t *t, uint64_t timeout_ms);
void ts_timer_stop(ts_loop_t *loop, ts_timer_t *t);

static inline int ts_timer_active(const ts_timer_t *t)
{
    return t->slot != 0;
}

/* Milliseconds until the next timer fires; -1 when none is armed. */
int ts_loop_next_timeout(const ts_loop_t *loop);
/* Fire every expired timer (exposed for tests). Returns how many fired. */
unsigned ts_loop_run_timers(ts_loop_t *loop);

static inline void ts_defer_init(ts_defer_t *d, ts_defer_cb cb)
{
    d->next = NULL;
    d->cb = cb;
    d->queued = 0;
}

/* Queue d to run after the current batch; queuing twice is a no-op. */
void ts_defer(ts_loop_t *loop, ts_defer_t *d);
/* Run everything deferred so far (and whatever those defer in turn). */
void ts_loop_run_deferred(ts_loop_t *loop);

#endif
