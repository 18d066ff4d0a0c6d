#include "core/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "core/log.h"

#define TS_LOOP_MAX_EVENTS 256

int ts_loop_init(ts_loop_t *loop)
{
    memset(loop, 0, sizeof(*loop));
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0)
        return TS_ERR_IO;
    loop->defer_tail = &loop->defer_head;
    loop->heap_cap = 64;
    loop->heap = ts_malloc(loop->heap_cap * sizeof(*loop->heap));
    ts_loop_update_time(loop);
    return TS_OK;
}

void ts_loop_free(ts_loop_t *loop)
{
    if (loop->epfd >= 0)
        close(loop->epfd);
    loop->epfd = -1;
    free(loop->heap);
    loop->heap = NULL;
    loop->nheap = 0;
}

void ts_loop_update_time(ts_loop_t *loop)
{
    loop->now = ts_now_ms();
}

void ts_loop_stop(ts_loop_t *loop)
{
    loop->stop = 1;
}

/* ---------------------------------------------------------------- I/O -- */

int ts_io_start(ts_loop_t *loop, ts_io_t *io, uint32_t events)
{
    struct epoll_event ev;
    int op;

    if (io->events == events)
        return TS_OK;
    if (events == 0)
        return ts_io_stop(loop, io);
    ev.events = events;
    ev.data.ptr = io;
    op = io->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(loop->epfd, op, io->fd, &ev) < 0)
        return TS_ERR_IO;
    io->events = events;
    return TS_OK;
}

int ts_io_stop(ts_loop_t *loop, ts_io_t *io)
{
    if (io->events == 0)
        return TS_OK;
    io->events = 0;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL) < 0)
        return TS_ERR_IO;
    return TS_OK;
}

/* ------------------------------------------------------------- timers -- */

/*
 * A binary min-heap of timer pointers keyed by deadline. Each timer keeps its
 * slot so stop and re-arm are O(log n) without searching: with 100,000
 * connections each holding an idle timer, re-arming on every request stays
 * a handful of comparisons.
 */

static inline int ts_timer_before(const ts_timer_t *a, const ts_timer_t *b)
{
    return a->deadline < b->deadline;
}

static inline void ts_heap_set(ts_loop_t *loop, uint32_t i, ts_timer_t *t)
{
    loop->heap[i] = t;
    t->slot = i + 1;
}

static void ts_heap_up(ts_loop_t *loop, uint32_t i)
{
    ts_timer_t *t = loop->heap[i];

    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!ts_timer_before(t, loop->heap[parent]))
            break;
        ts_heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    ts_heap_set(loop, i, t);
}

static void ts_heap_down(ts_loop_t *loop, uint32_t i)
{
    ts_timer_t *t = loop->heap[i];
    uint32_t n = loop->nheap;

    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && ts_timer_before(loop->heap[child + 1], loop->heap[child]))
            child++;
        if (!ts_timer_before(loop->heap[child], t))
            break;
        ts_heap_set(loop, i, loop->heap[child]);
        i = child;
    }
    ts_heap_set(loop, i, t);
}

static void ts_heap_remove(ts_loop_t *loop, ts_timer_t *t)
{
    uint32_t i = t->slot - 1;
    ts_timer_t *last;

    t->slot = 0;
    loop->nheap--;
    if (i == loop->nheap)
        return;
    last = loop->heap[loop->nheap];
    ts_heap_set(loop, i, last);
    if (i > 0 && ts_timer_before(last, loop->heap[(i - 1) / 2]))
        ts_heap_up(loop, i);
    else
        ts_heap_down(loop, i);
}

void ts_timer_start(ts_loop_t *loop, ts_timer_t *t, uint64_t timeout_ms)
{
    uint64_t deadline = loop->now + timeout_ms;

    if (t->slot) {
        uint64_t old = t->deadline;
        t->deadline = deadline;
        if (deadline < old)
            ts_heap_up(loop, t->slot - 1);
        else if (deadline > old)
            ts_heap_down(loop, t->slot - 1);
        return;
    }
    if (loop->nheap == loop->heap_cap) {
        loop->heap_cap *= 2;
        loop->heap = ts_realloc(loop->heap, loop->heap_cap * sizeof(*loop->heap));
    }
    t->deadline = deadline;
    loop->heap[loop->nheap] = t;
    t->slot = loop->nheap + 1;
    loop->nheap++;
    ts_heap_up(loop, loop->nheap - 1);
}

void ts_timer_stop(ts_loop_t *loop, ts_timer_t *t)
{
    if (t->slot)
        ts_heap_remove(loop, t);
}

int ts_loop_next_timeout(const ts_loop_t *loop)
{
    uint64_t d;

    if (loop->nheap == 0)
        return -1;
    d = loop->heap[0]->deadline;
    if (d <= loop->now)
        return 0;
    d -= loop->now;
    return d > 60000 ? 60000 : (int)d;
}

unsigned ts_loop_run_timers(ts_loop_t *loop)
{
    unsigned fired = 0;

    while (loop->nheap > 0) {
        ts_timer_t *t = loop->heap[0];
        if (t->deadline > loop->now)
            break;
        ts_heap_remove(loop, t);
        fired++;
        t->cb(loop, t);
    }
    return fired;
}

/* ------------------------------------------------------------ deferred -- */

void ts_defer(ts_loop_t *loop, ts_defer_t *d)
{
    if (d->queued)
        return;
    d->queued = 1;
    d->next = NULL;
    *loop->defer_tail = d;
    loop->defer_tail = &d->next;
}

void ts_loop_run_deferred(ts_loop_t *loop)
{
    while (loop->defer_head != NULL) {
        ts_defer_t *d = loop->defer_head;
        loop->defer_head = d->next;
        if (loop->defer_head == NULL)
            loop->defer_tail = &loop->defer_head;
        d->queued = 0;
        d->next = NULL;
        d->cb(loop, d);
    }
}

/* ---------------------------------------------------------------- run -- */

int ts_loop_run_once(ts_loop_t *loop, int timeout_ms)
{
    struct epoll_event events[TS_LOOP_MAX_EVENTS];
    int n, next;

    /* Work deferred outside of an event batch (e.g. at start-up) runs first. */
    ts_loop_run_deferred(loop);
    next = ts_loop_next_timeout(loop);
    if (timeout_ms < 0 || (next >= 0 && next < timeout_ms))
        timeout_ms = next;
    n = epoll_wait(loop->epfd, events, TS_LOOP_MAX_EVENTS, timeout_ms);
    ts_loop_update_time(loop);
    if (n < 0) {
        if (errno != EINTR) {
            ts_log_error("epoll_wait: %s", strerror(errno));
            return TS_ERR_IO;
        }
        n = 0;
    }
    for (int i = 0; i < n; i++) {
        ts_io_t *io = events[i].data.ptr;
        /* An earlier callback of this batch may have stopped this one. */
        if (io->events == 0)
            continue;
        io->cb(loop, io, events[i].events);
    }
    ts_loop_run_deferred(loop);
    ts_loop_run_timers(loop);
    ts_loop_run_deferred(loop);
    return TS_OK;
}

int ts_loop_run(ts_loop_t *loop)
{
    loop->stop = 0;
    while (!loop->stop) {
        int rc = ts_loop_run_once(loop, -1);
        if (rc != TS_OK)
            return rc;
    }
    return TS_OK;
}
