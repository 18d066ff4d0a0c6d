#include "core/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void ts_oom(size_t n)
{
    fprintf(stderr, "tsunagi: out of memory allocating %zu bytes\n", n);
    abort();
}

void *ts_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (ts_unlikely(p == NULL))
        ts_oom(n);
    return p;
}

void *ts_calloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (ts_unlikely(p == NULL))
        ts_oom(count * n);
    return p;
}

void *ts_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (ts_unlikely(q == NULL))
        ts_oom(n);
    return q;
}

char *ts_strdup(const char *s)
{
    return ts_strndup(s, strlen(s));
}

char *ts_strndup(const char *s, size_t n)
{
    char *d = ts_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

uint64_t ts_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *ts_strerror(int err)
{
    switch (err) {
    case TS_OK: return "ok";
    case TS_ERR: return "error";
    case TS_ERR_AGAIN: return "again";
    case TS_ERR_PROTO: return "protocol error";
    case TS_ERR_LIMIT: return "limit reached";
    case TS_ERR_CLOSED: return "closed";
    case TS_ERR_IO: return "i/o error";
    case TS_ERR_CONFIG: return "configuration error";
    default: return "unknown error";
    }
}
