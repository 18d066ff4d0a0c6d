/* The bus: MPSC inboxes across threads, order, caps, and real workers. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/bus.h"
#include "core/common.h"
#include "core/config.h"
#include "core/server.h"
#include "core/worker.h"

enum { PRODUCERS = 3, PER_PRODUCER = 20000 };

typedef struct {
    ts_loop_t loop;
    ts_inbox_t inbox;
    uint32_t next[PRODUCERS]; /* next sequence expected from each producer */
    uint32_t total;
    int out_of_order;
} consumer_t;

static void consume(void *ctx, ts_bus_msg_t *msg)
{
    consumer_t *c = ctx;
    uint32_t seq;
    assert_int_equal(msg->len, sizeof(seq));
    memcpy(&seq, msg->data, sizeof(seq));
    if (msg->src >= PRODUCERS || seq != c->next[msg->src])
        c->out_of_order++;
    else
        c->next[msg->src]++;
    if (++c->total == PRODUCERS * PER_PRODUCER)
        ts_loop_stop(&c->loop);
}

typedef struct {
    ts_inbox_t *dst;
    uint64_t id;
    int limited;
} producer_t;

static void *produce(void *arg)
{
    producer_t *p = arg;
    for (uint32_t seq = 0; seq < PER_PRODUCER; seq++) {
        while (ts_inbox_post(p->dst, ts_bus_msg_new(TS_MSG_USER, 0, p->id, &seq, sizeof(seq))) ==
               TS_ERR_LIMIT) {
            /* the consumer is behind: the message was dropped; send it again */
            p->limited++;
            usleep(100);
        }
    }
    return NULL;
}

static void *consumer_main(void *arg)
{
    consumer_t *c = arg;
    ts_loop_run(&c->loop);
    return NULL;
}

/* Three threads post to one inbox whose loop runs on a fourth: every message
 * arrives exactly once and each producer's messages arrive in order, even
 * with a cap small enough to be hit. */
static void test_mpsc_order_across_threads(void **state)
{
    consumer_t c;
    producer_t p[PRODUCERS];
    pthread_t th[PRODUCERS], cth;

    memset(&c, 0, sizeof(c));
    assert_int_equal(ts_loop_init(&c.loop), TS_OK);
    assert_int_equal(ts_inbox_init(&c.inbox, &c.loop, 4096, consume, &c), TS_OK);
    pthread_create(&cth, NULL, consumer_main, &c);
    for (int i = 0; i < PRODUCERS; i++) {
        p[i].dst = &c.inbox;
        p[i].id = (uint64_t)i;
        p[i].limited = 0;
        pthread_create(&th[i], NULL, produce, &p[i]);
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(th[i], NULL);
    pthread_join(cth, NULL);
    assert_int_equal(c.total, PRODUCERS * PER_PRODUCER);
    assert_int_equal(c.out_of_order, 0);
    for (int i = 0; i < PRODUCERS; i++)
        assert_int_equal(c.next[i], PER_PRODUCER);
    ts_inbox_close(&c.inbox);
    ts_loop_free(&c.loop);
}

static int seen;
static void count_cb(void *ctx, ts_bus_msg_t *msg)
{
    seen++;
}

static void test_inbox_cap(void **state)
{
    ts_inbox_t in;

    seen = 0;
    assert_int_equal(ts_inbox_init(&in, NULL, 2, count_cb, NULL), TS_OK);
    assert_int_equal(ts_inbox_post(&in, ts_bus_msg_new(1, 0, 0, NULL, 0)), TS_OK);
    assert_int_equal(ts_inbox_post(&in, ts_bus_msg_new(2, 0, 0, "x", 1)), TS_OK);
    assert_int_equal(ts_inbox_post(&in, ts_bus_msg_new(3, 0, 0, NULL, 0)), TS_ERR_LIMIT);
    assert_int_equal(ts_inbox_drain(&in), 2);
    assert_int_equal(seen, 2);
    /* Room again after draining. */
    assert_int_equal(ts_inbox_post(&in, ts_bus_msg_new(4, 0, 0, NULL, 0)), TS_OK);
    ts_inbox_close(&in); /* frees the queued message: LeakSanitizer checks */
}

/* Two real workers: worker 1 forwards what it gets to a connection id owned
 * by worker 0 (addressed by id, not pointer); worker 0 counts and, at the
 * end, asks both to stop. */
enum { MSG_FWD = TS_MSG_USER, MSG_ARRIVE = TS_MSG_USER + 1 };
static int arrived_on;
static uint32_t arrived;
static uint64_t last_payload;

static void on_fwd(ts_worker_t *w, ts_bus_msg_t *msg)
{
    uint64_t target = msg->dst;
    assert_int_equal(w->index, 1);
    ts_bus_send(&w->server->bus, target, ts_bus_msg_new(MSG_ARRIVE, target, 0, msg->data, msg->len));
}

static void on_arrive(ts_worker_t *w, ts_bus_msg_t *msg)
{
    uint64_t v;
    arrived_on = w->index;
    memcpy(&v, msg->data, sizeof(v));
    assert_true(arrived == 0 || v == last_payload + 1);
    last_payload = v;
    if (++arrived == 1000)
        ts_server_stop(w->server);
}

/* Posts from the inbox's own thread: never delivered inside the post, in
 * order at the deferred point, with no eventfd wake-up; a message posted
 * while one is delivered comes after it; the cap holds; close frees. */
typedef struct {
    ts_inbox_t *in;
    uint32_t seen[8];
    int n;
    int reposted;
} local_t;

static void local_cb(void *ctx, ts_bus_msg_t *msg)
{
    local_t *l = ctx;
    uint32_t v;

    memcpy(&v, msg->data, sizeof(v));
    l->seen[l->n++] = v;
    if (v == 1 && !l->reposted) {
        uint32_t again = 100;
        l->reposted = 1;
        assert_int_equal(ts_inbox_post(l->in, ts_bus_msg_new(TS_MSG_USER, 0, 0, &again, 4)),
                         TS_OK);
        assert_int_equal(l->n, 2); /* not delivered inside the post */
    }
}

static void test_inbox_local_posts(void **state)
{
    ts_loop_t loop;
    ts_inbox_t in;
    local_t l = {.in = &in};
    uint64_t counter;

    (void)state;
    assert_int_equal(ts_loop_init(&loop), TS_OK);
    assert_int_equal(ts_inbox_init(&in, &loop, 4, local_cb, &l), TS_OK);
    ts_inbox_own(&in);
    for (uint32_t v = 0; v < 4; v++)
        assert_int_equal(ts_inbox_post(&in, ts_bus_msg_new(TS_MSG_USER, 0, 0, &v, 4)), TS_OK);
    assert_int_equal(l.n, 0);
    {
        uint32_t v = 5; /* over the cap of 4 */
        assert_int_equal(ts_inbox_post(&in, ts_bus_msg_new(TS_MSG_USER, 0, 0, &v, 4)),
                         TS_ERR_LIMIT);
    }
    /* No eventfd write for local posts. */
    assert_true(read(in.io.fd, &counter, sizeof(counter)) < 0);
    ts_loop_run_deferred(&loop);
    assert_int_equal(l.n, 5);
    assert_int_equal(l.seen[0], 0);
    assert_int_equal(l.seen[1], 1);
    assert_int_equal(l.seen[2], 2);
    assert_int_equal(l.seen[3], 3);
    assert_int_equal(l.seen[4], 100);
    {
        uint32_t v = 7; /* still queued when the inbox closes: freed (ASan checks) */
        assert_int_equal(ts_inbox_post(&in, ts_bus_msg_new(TS_MSG_USER, 0, 0, &v, 4)), TS_OK);
    }
    ts_inbox_own(NULL);
    ts_inbox_close(&in);
    ts_loop_free(&loop);
}

static void test_bus_between_two_workers(void **state)
{
    ts_config_t cfg;
    ts_server_t s;

    memset(&cfg, 0, sizeof(cfg));
    cfg.threads = 2;
    cfg.drain_timeout = 1;
    assert_int_equal(ts_server_init(&s, &cfg, NULL, 0), TS_OK);
    ts_worker_on_message(&s.workers[1], MSG_FWD, on_fwd);
    ts_worker_on_message(&s.workers[0], MSG_ARRIVE, on_arrive);
    assert_int_equal(ts_server_start(&s), TS_OK);
    /* An id on worker 0, as a connection id would be. */
    uint64_t target = ((uint64_t)0 << TS_ID_WORKER_SHIFT) | 77;
    for (uint64_t i = 0; i < 1000; i++)
        assert_int_equal(ts_bus_send_worker(&s.bus, 1, ts_bus_msg_new(MSG_FWD, target, 0, &i, sizeof(i))),
                         TS_OK);
    ts_server_join(&s);
    assert_int_equal(arrived, 1000);
    assert_int_equal(arrived_on, 0);
    assert_int_equal(last_payload, 999);
    ts_server_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mpsc_order_across_threads),
        cmocka_unit_test(test_inbox_cap),
        cmocka_unit_test(test_inbox_local_posts),
        cmocka_unit_test(test_bus_between_two_workers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
