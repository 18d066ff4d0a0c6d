#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

#include "core/common.h"

void ts_pool_init(ts_pool_t *pool, size_t max_free)
{
    pool->free = NULL;
    pool->nfree = 0;
    pool->max_free = max_free;
    pool->allocated = 0;
}

void ts_pool_free(ts_pool_t *pool)
{
    while (pool->free != NULL) {
        void *next = *(void **)pool->free;
        free(pool->free);
        pool->free = next;
    }
    pool->nfree = 0;
}

void *ts_pool_get(ts_pool_t *pool)
{
    void *chunk = pool->free;

    pool->allocated++;
    if (chunk != NULL) {
        pool->free = *(void **)chunk;
        pool->nfree--;
        return chunk;
    }
    return ts_malloc(TS_POOL_CHUNK);
}

void ts_pool_put(ts_pool_t *pool, void *chunk)
{
    pool->allocated--;
    if (pool->nfree >= pool->max_free) {
        free(chunk);
        return;
    }
    *(void **)chunk = pool->free;
    pool->free = chunk;
    pool->nfree++;
}

void ts_buf_release(ts_buf_t *b, ts_pool_t *pool)
{
    if (b->data != NULL) {
        if (b->cap == TS_POOL_CHUNK)
            ts_pool_put(pool, b->data);
        else
            free(b->data);
    }
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}

void ts_buf_reserve(ts_buf_t *b, ts_pool_t *pool, size_t n)
{
    size_t need, cap;
    char *data;

    if (ts_buf_room(b) >= n)
        return;
    if (b->data == NULL && n <= TS_POOL_CHUNK) {
        b->data = ts_pool_get(pool);
        b->cap = TS_POOL_CHUNK;
        b->off = b->len = 0;
        return;
    }
    need = (size_t)b->len + n;
    if (need <= b->cap) {
        /* Enough room once the consumed head is reclaimed. */
        memmove(b->data, b->data + b->off, b->len);
        b->off = 0;
        return;
    }
    cap = b->cap ? b->cap : TS_POOL_CHUNK;
    while (cap < need)
        cap *= 2;
    data = ts_malloc(cap);
    if (b->len)
        memcpy(data, b->data + b->off, b->len);
    {
        uint32_t len = b->len;
        ts_buf_release(b, pool);
        b->len = len;
    }
    b->data = data;
    b->cap = (uint32_t)cap;
    b->off = 0;
}

void ts_buf_append(ts_buf_t *b, ts_pool_t *pool, const void *p, size_t n)
{
    if (n == 0)
        return;
    ts_buf_reserve(b, pool, n);
    memcpy(ts_buf_tail(b), p, n);
    b->len += (uint32_t)n;
}

void ts_buf_consume(ts_buf_t *b, ts_pool_t *pool, size_t n)
{
    if (n >= b->len) {
        ts_buf_release(b, pool);
        return;
    }
    b->off += (uint32_t)n;
    b->len -= (uint32_t)n;
}
