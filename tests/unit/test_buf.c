/* Buffers and the pool; the id map. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/common.h"
#include "core/idmap.h"

static void test_pool_reuses_chunks(void **state)
{
    ts_pool_t pool;
    void *a, *b;

    ts_pool_init(&pool, 1);
    a = ts_pool_get(&pool);
    ts_pool_put(&pool, a);
    b = ts_pool_get(&pool);
    assert_ptr_equal(a, b); /* same chunk back from the free list */
    assert_int_equal(pool.allocated, 1);
    ts_pool_put(&pool, b);
    assert_int_equal(pool.nfree, 1);
    assert_int_equal(pool.allocated, 0);
    ts_pool_free(&pool);
}

static void test_buf_pooled_until_it_grows(void **state)
{
    ts_pool_t pool;
    ts_buf_t b = TS_BUF_INIT;
    char big[40000];

    ts_pool_init(&pool, 8);
    ts_buf_append(&b, &pool, "hello", 5);
    assert_int_equal(b.cap, TS_POOL_CHUNK);
    assert_int_equal(pool.allocated, 1);
    ts_buf_consume(&b, &pool, 2);
    assert_memory_equal(ts_buf_head(&b), "llo", 3);
    /* Growing past one chunk moves to the heap and returns the chunk. */
    memset(big, 'x', sizeof(big));
    ts_buf_append(&b, &pool, big, sizeof(big));
    assert_true(b.cap >= 3 + sizeof(big));
    assert_int_equal(pool.allocated, 0);
    assert_memory_equal(ts_buf_head(&b), "llo", 3);
    assert_int_equal(b.len, 3 + sizeof(big));
    /* Emptying releases the memory: an idle buffer holds nothing. */
    ts_buf_consume(&b, &pool, b.len);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    ts_pool_free(&pool);
}

static void test_buf_compacts_before_growing(void **state)
{
    ts_pool_t pool;
    ts_buf_t b = TS_BUF_INIT;
    char data[TS_POOL_CHUNK];

    ts_pool_init(&pool, 8);
    memset(data, 'a', sizeof(data));
    ts_buf_append(&b, &pool, data, TS_POOL_CHUNK - 10);
    ts_buf_consume(&b, &pool, TS_POOL_CHUNK - 20); /* 10 bytes left at the end */
    ts_buf_append(&b, &pool, "0123456789abcdef", 16);
    assert_int_equal(b.cap, TS_POOL_CHUNK); /* compacted, not grown */
    assert_int_equal(b.off, 0);
    assert_memory_equal(ts_buf_head(&b) + 10, "0123456789abcdef", 16);
    ts_buf_release(&b, &pool);
    ts_pool_free(&pool);
}

static void test_idmap_put_get_del(void **state)
{
    ts_idmap_t m;
    enum { N = 50000 };

    ts_idmap_init(&m);
    for (uintptr_t i = 1; i <= N; i++)
        ts_idmap_put(&m, (uint64_t)i | (2ull << 48), (void *)i);
    assert_int_equal(m.count, N);
    for (uintptr_t i = 1; i <= N; i++)
        assert_ptr_equal(ts_idmap_get(&m, (uint64_t)i | (2ull << 48)), (void *)i);
    /* Delete every other key; the rest must still be found (backward shift). */
    for (uintptr_t i = 1; i <= N; i += 2)
        assert_ptr_equal(ts_idmap_del(&m, (uint64_t)i | (2ull << 48)), (void *)i);
    assert_int_equal(m.count, N / 2);
    for (uintptr_t i = 1; i <= N; i++) {
        void *v = ts_idmap_get(&m, (uint64_t)i | (2ull << 48));
        if (i % 2)
            assert_null(v);
        else
            assert_ptr_equal(v, (void *)i);
    }
    assert_null(ts_idmap_get(&m, 0));
    assert_null(ts_idmap_del(&m, 12345678));
    ts_idmap_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_reuses_chunks),
        cmocka_unit_test(test_buf_pooled_until_it_grows),
        cmocka_unit_test(test_buf_compacts_before_growing),
        cmocka_unit_test(test_idmap_put_get_del),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
