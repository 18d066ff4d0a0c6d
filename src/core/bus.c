#include "core/bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/common.h"
#include "core/log.h"

ts_bus_msg_t *ts_bus_msg_new(uint32_t type, uint64_t dst, uint64_t src, const void *data,
                             uint32_t len)
{
    ts_bus_msg_t *msg = ts_malloc(sizeof(*msg) + len);

    msg->next = NULL;
    msg->type = type;
    msg->len = len;
    msg->dst = dst;
    msg->src = src;
    if (len) {
        if (data)
            memcpy(msg->data, data, len);
        else
            memset(msg->data, 0, len);
    }
    return msg;
}

void ts_bus_msg_free(ts_bus_msg_t *msg)
{
    free(msg);
}

/* The inbox the calling thread drains, if any: posts to it stay local. */
static _Thread_local ts_inbox_t *ts_inbox_mine;

static void ts_inbox_run_local(ts_loop_t *loop, ts_defer_t *d)
{
    ts_inbox_t *in = ts_container_of(d, ts_inbox_t, local_defer);
    ts_bus_msg_t *msg = in->local_head;

    TS_UNUSED(loop);
    /* Messages posted while these run are queued afresh and run in a later
     * pass of the deferred list, after these: the order of posts holds. */
    in->local_head = NULL;
    in->local_tail = &in->local_head;
    while (msg != NULL) {
        ts_bus_msg_t *next = msg->next;
        in->local_pending--;
        in->received++;
        in->cb(in->ctx, msg);
        ts_bus_msg_free(msg);
        msg = next;
    }
}

void ts_inbox_own(ts_inbox_t *in)
{
    ts_inbox_mine = in;
}

static void ts_inbox_on_event(ts_loop_t *loop, ts_io_t *io, uint32_t events)
{
    ts_inbox_t *in = ts_container_of(io, ts_inbox_t, io);
    uint64_t v;

    /* Reset the counter before taking the queue, so no wake-up is lost. */
    if (read(io->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        ts_log_error("bus: eventfd read: %s", strerror(errno));
    ts_inbox_drain(in);
}

int ts_inbox_init(ts_inbox_t *in, ts_loop_t *loop, uint32_t cap, ts_inbox_cb cb, void *ctx)
{
    memset(in, 0, sizeof(*in));
    in->cap = cap;
    in->loop = loop;
    in->cb = cb;
    in->ctx = ctx;
    in->io.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (in->io.fd < 0)
        return TS_ERR_IO;
    in->io.cb = ts_inbox_on_event;
    in->local_tail = &in->local_head;
    ts_defer_init(&in->local_defer, ts_inbox_run_local);
    if (loop != NULL && ts_io_start(loop, &in->io, TS_IO_READ) != TS_OK) {
        close(in->io.fd);
        in->io.fd = -1;
        return TS_ERR_IO;
    }
    return TS_OK;
}

void ts_inbox_close(ts_inbox_t *in)
{
    ts_bus_msg_t *msg = __atomic_exchange_n(&in->head, NULL, __ATOMIC_ACQUIRE);

    while (in->local_head != NULL) {
        ts_bus_msg_t *next = in->local_head->next;
        ts_bus_msg_free(in->local_head);
        in->local_head = next;
    }
    in->local_tail = &in->local_head;
    in->local_pending = 0;

    while (msg != NULL) {
        ts_bus_msg_t *next = msg->next;
        ts_bus_msg_free(msg);
        msg = next;
    }
    if (in->io.fd >= 0) {
        if (in->loop != NULL)
            ts_io_stop(in->loop, &in->io);
        close(in->io.fd);
        in->io.fd = -1;
    }
}

int ts_inbox_post(ts_inbox_t *in, ts_bus_msg_t *msg)
{
    ts_bus_msg_t *head;
    uint32_t pending;

    if (in == ts_inbox_mine && in->loop != NULL) {
        if (in->local_pending >= in->cap) {
            ts_bus_msg_free(msg);
            return TS_ERR_LIMIT;
        }
        msg->next = NULL;
        *in->local_tail = msg;
        in->local_tail = &msg->next;
        in->local_pending++;
        ts_defer(in->loop, &in->local_defer);
        return TS_OK;
    }
    pending = __atomic_add_fetch(&in->pending, 1, __ATOMIC_RELAXED);

    if (pending > in->cap) {
        __atomic_sub_fetch(&in->pending, 1, __ATOMIC_RELAXED);
        ts_bus_msg_free(msg);
        return TS_ERR_LIMIT;
    }
    head = __atomic_load_n(&in->head, __ATOMIC_RELAXED);
    do {
        msg->next = head;
    } while (!__atomic_compare_exchange_n(&in->head, &head, msg, 1, __ATOMIC_RELEASE,
                                          __ATOMIC_RELAXED));
    if (head == NULL) {
        uint64_t one = 1;
        /* Fails only when the counter would overflow: it is already set. */
        if (write(in->io.fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
            ts_log_error("bus: eventfd write: %s", strerror(errno));
    }
    return TS_OK;
}

unsigned ts_inbox_drain(ts_inbox_t *in)
{
    ts_bus_msg_t *msg = __atomic_exchange_n(&in->head, NULL, __ATOMIC_ACQUIRE);
    ts_bus_msg_t *fifo = NULL;
    unsigned n = 0;

    /* The stack holds the newest first; reverse it into arrival order. */
    while (msg != NULL) {
        ts_bus_msg_t *next = msg->next;
        msg->next = fifo;
        fifo = msg;
        msg = next;
        n++;
    }
    __atomic_sub_fetch(&in->pending, n, __ATOMIC_RELAXED);
    while (fifo != NULL) {
        ts_bus_msg_t *next = fifo->next;
        in->cb(in->ctx, fifo);
        ts_bus_msg_free(fifo);
        fifo = next;
    }
    in->received += n;
    return n;
}

int ts_bus_send_worker(ts_bus_t *bus, int w, ts_bus_msg_t *msg)
{
    if (w < 0 || w >= bus->n) {
        ts_bus_msg_free(msg);
        return TS_ERR;
    }
    return ts_inbox_post(bus->inboxes[w], msg);
}

int ts_bus_send(ts_bus_t *bus, uint64_t id, ts_bus_msg_t *msg)
{
    return ts_bus_send_worker(bus, ts_id_worker(id), msg);
}
