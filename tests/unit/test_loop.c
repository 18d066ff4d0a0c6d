/* Timers (heap order, re-arm, stop, 100,000 armed), deferred callbacks, I/O. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/common.h"
#include "core/loop.h"

typedef struct {
    ts_timer_t t;
    int id;
    int fired;
} tt_t;

static int order[16];
static int norder;

static void on_timer(ts_loop_t *loop, ts_timer_t *t)
{
    tt_t *x = ts_container_of(t, tt_t, t);
    x->fired++;
    if (norder < 16)
        order[norder++] = x->id;
}

static void test_timers_fire_in_deadline_order(void **state)
{
    ts_loop_t loop;
    tt_t t[5];
    uint64_t delays[5] = {50, 10, 40, 20, 30};

    assert_int_equal(ts_loop_init(&loop), TS_OK);
    norder = 0;
    for (int i = 0; i < 5; i++) {
        t[i].id = i;
        t[i].fired = 0;
        ts_timer_init(&t[i].t, on_timer);
        ts_timer_start(&loop, &t[i].t, delays[i]);
    }
    assert_int_equal(ts_loop_next_timeout(&loop), 10);
    loop.now += 100;
    assert_int_equal(ts_loop_run_timers(&loop), 5);
    int expect[5] = {1, 3, 4, 2, 0};
    for (int i = 0; i < 5; i++)
        assert_int_equal(order[i], expect[i]);
    assert_int_equal(ts_loop_next_timeout(&loop), -1);
    ts_loop_free(&loop);
}

static void test_timer_rearm_and_stop(void **state)
{
    ts_loop_t loop;
    tt_t a = {.id = 1}, b = {.id = 2};

    ts_loop_init(&loop);
    norder = 0;
    ts_timer_init(&a.t, on_timer);
    ts_timer_init(&b.t, on_timer);
    ts_timer_start(&loop, &a.t, 10);
    ts_timer_start(&loop, &b.t, 20);
    ts_timer_start(&loop, &a.t, 30); /* re-arm later */
    assert_true(ts_timer_active(&a.t));
    loop.now += 25;
    assert_int_equal(ts_loop_run_timers(&loop), 1);
    assert_int_equal(b.fired, 1);
    assert_int_equal(a.fired, 0);
    ts_timer_stop(&loop, &a.t);
    assert_false(ts_timer_active(&a.t));
    ts_timer_stop(&loop, &a.t); /* stopping twice is harmless */
    loop.now += 100;
    assert_int_equal(ts_loop_run_timers(&loop), 0);
    assert_int_equal(a.fired, 0);
    ts_loop_free(&loop);
}

/* 100,000 armed timers: arming, re-arming and stopping stay cheap and the
 * heap keeps its order through random operations. */
static void test_timers_100k(void **state)
{
    enum { N = 100000 };
    ts_loop_t loop;
    tt_t *t = calloc(N, sizeof(*t));
    uint64_t start, elapsed;
    unsigned seed = 12345, fired;

    ts_loop_init(&loop);
    start = ts_now_ms();
    for (int i = 0; i < N; i++) {
        ts_timer_init(&t[i].t, on_timer);
        t[i].id = i;
        ts_timer_start(&loop, &t[i].t, 1 + rand_r(&seed) % 100000);
    }
    /* Re-arm every timer once (the keep-alive pattern) and stop a tenth. */
    for (int i = 0; i < N; i++)
        ts_timer_start(&loop, &t[i].t, 1 + rand_r(&seed) % 100000);
    for (int i = 0; i < N; i += 10)
        ts_timer_stop(&loop, &t[i].t);
    elapsed = ts_now_ms() - start;
    /* Generous bound that an O(n) timer list would blow on an ASan build. */
    assert_true(elapsed < 2000);

    /* Fire in steps and check no timer fires before its deadline. */
    fired = 0;
    for (uint64_t step = 0; step <= 100000; step += 997) {
        uint64_t base = loop.now;
        loop.now = base + 997;
        fired += ts_loop_run_timers(&loop);
        if (loop.nheap > 0)
            assert_true(loop.heap[0]->deadline > loop.now);
    }
    loop.now += 200000;
    fired += ts_loop_run_timers(&loop);
    assert_int_equal(fired, N - N / 10);
    for (int i = 0; i < N; i++)
        assert_int_equal(t[i].fired, i % 10 == 0 ? 0 : 1);
    free(t);
    ts_loop_free(&loop);
}

typedef struct {
    ts_defer_t d;
    int runs;
    ts_defer_t *chain;
} dd_t;

static void on_defer(ts_loop_t *loop, ts_defer_t *d)
{
    dd_t *x = ts_container_of(d, dd_t, d);
    x->runs++;
    if (x->chain != NULL)
        ts_defer(loop, x->chain);
}

static void test_defer_runs_once_and_chains(void **state)
{
    ts_loop_t loop;
    dd_t a = {0}, b = {0};

    ts_loop_init(&loop);
    ts_defer_init(&a.d, on_defer);
    ts_defer_init(&b.d, on_defer);
    a.chain = &b.d;
    ts_defer(&loop, &a.d);
    ts_defer(&loop, &a.d); /* queued twice: runs once */
    ts_loop_run_deferred(&loop);
    assert_int_equal(a.runs, 1);
    assert_int_equal(b.runs, 1); /* deferred from a deferred callback */
    ts_loop_free(&loop);
}

typedef struct {
    ts_io_t io;
    int reads;
    char got[16];
} pio_t;

static void on_pipe(ts_loop_t *loop, ts_io_t *io, uint32_t events)
{
    pio_t *p = ts_container_of(io, pio_t, io);
    ssize_t n = read(io->fd, p->got, sizeof(p->got));
    assert_true(n > 0);
    p->reads++;
    ts_loop_stop(loop);
}

static void on_stop_timer(ts_loop_t *loop, ts_timer_t *t)
{
    ts_loop_stop(loop);
}

static void test_io_readiness_and_timer_wakeup(void **state)
{
    ts_loop_t loop;
    int fds[2];
    pio_t p = {0};
    ts_timer_t t;
    uint64_t start;

    ts_loop_init(&loop);
    assert_int_equal(pipe(fds), 0);
    p.io.fd = fds[0];
    p.io.cb = on_pipe;
    assert_int_equal(ts_io_start(&loop, &p.io, TS_IO_READ), TS_OK);
    assert_int_equal(write(fds[1], "hello", 5), 5);
    assert_int_equal(ts_loop_run(&loop), TS_OK);
    assert_int_equal(p.reads, 1);
    assert_memory_equal(p.got, "hello", 5);

    /* With nothing to read, a 30 ms timer ends the wait. */
    ts_timer_init(&t, on_stop_timer);
    ts_timer_start(&loop, &t, 30);
    start = ts_now_ms();
    ts_loop_run(&loop);
    assert_true(ts_now_ms() - start >= 29);
    assert_int_equal(p.reads, 1);
    ts_io_stop(&loop, &p.io);
    close(fds[0]);
    close(fds[1]);
    ts_loop_free(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_fire_in_deadline_order),
        cmocka_unit_test(test_timer_rearm_and_stop),
        cmocka_unit_test(test_timers_100k),
        cmocka_unit_test(test_defer_runs_once_and_chains),
        cmocka_unit_test(test_io_readiness_and_timer_wakeup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
