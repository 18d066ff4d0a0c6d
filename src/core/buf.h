/*
 * buf.h — byte buffers backed by a per-worker pool of fixed-size chunks.
 *
 * An idle connection holds no buffer at all: it takes a chunk from its
 * worker's pool when bytes arrive or must wait to be sent, and gives it back
 * as soon as the buffer is empty. That is what keeps an idle keep-alive
 * connection to a few hundred bytes. A buffer that must grow past one chunk
 * (a 64 KiB request body, a large static file) moves to the heap and is freed,
 * not pooled, when emptied.
 */
#ifndef TS_BUF_H
#define TS_BUF_H

#include <stddef.h>
#include <stdint.h>

#define TS_POOL_CHUNK (16 * 1024)

/* A free list of TS_POOL_CHUNK-byte chunks; one per worker, not thread-safe. */
typedef struct {
    void *free;       /* singly linked through the first word of each chunk */
    size_t nfree;     /* chunks on the free list */
    size_t max_free;  /* chunks kept beyond this are returned to malloc */
    size_t allocated; /* chunks handed out and not yet returned */
} ts_pool_t;

void ts_pool_init(ts_pool_t *pool, size_t max_free);
void ts_pool_free(ts_pool_t *pool);
void *ts_pool_get(ts_pool_t *pool);
void ts_pool_put(ts_pool_t *pool, void *chunk);

/* Bytes live in data[off .. off+len). Owner: the embedding struct. */
typedef struct {
    char *data;
    uint32_t off;
    uint32_t len;
    uint32_t cap;
} ts_buf_t;

#define TS_BUF_INIT {NULL, 0, 0, 0}

static inline char *ts_buf_head(const ts_buf_t *b)
{
    return b->data + b->off;
}

static inline char *ts_buf_tail(const ts_buf_t *b)
{
    return b->data + b->off + b->len;
}

static inline size_t ts_buf_room(const ts_buf_t *b)
{
    return (size_t)b->cap - b->off - b->len;
}

/* Make room for at least n more bytes at the tail. */
void ts_buf_reserve(ts_buf_t *b, ts_pool_t *pool, size_t n);
void ts_buf_append(ts_buf_t *b, ts_pool_t *pool, const void *p, size_t n);
/* Drop n bytes from the head; an emptied buffer goes back to the pool. */
void ts_buf_consume(ts_buf_t *b, ts_pool_t *pool, size_t n);
void ts_buf_release(ts_buf_t *b, ts_pool_t *pool);

#endif
