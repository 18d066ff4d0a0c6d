/*
 * common.h — the project-wide vocabulary: error codes, allocation that
 * aborts on exhaustion, and a few small helpers.
 */
#ifndef TS_COMMON_H
#define TS_COMMON_H

#include <stddef.h>
#include <stdint.h>

/*
 * Every function that can fail returns int: TS_OK, or one of these. A peer's
 * protocol error is TS_ERR_PROTO (it gets the protocol's answer), never a
 * server error.
 */
#define TS_OK         0
#define TS_ERR        (-1) /* generic failure, logged where found */
#define TS_ERR_AGAIN  (-2) /* need more input / would block */
#define TS_ERR_PROTO  (-3) /* the peer broke the protocol */
#define TS_ERR_LIMIT  (-4) /* a configured limit was hit */
#define TS_ERR_CLOSED (-5) /* the peer went away */
#define TS_ERR_IO     (-6) /* a system call failed (errno is set) */
#define TS_ERR_CONFIG (-7) /* bad configuration */

#define TS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define TS_MIN(a, b)     ((a) < (b) ? (a) : (b))
#define TS_MAX(a, b)     ((a) > (b) ? (a) : (b))
#define TS_UNUSED(x)     ((void)(x))

#define ts_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#if defined(__GNUC__)
#define ts_likely(x)   __builtin_expect(!!(x), 1)
#define ts_unlikely(x) __builtin_expect(!!(x), 0)
#else
#define ts_likely(x)   (x)
#define ts_unlikely(x) (x)
#endif

/*
 * Out of memory aborts with a message (the Redis and h2o policy): callers
 * never check these for NULL.
 */
void *ts_malloc(size_t n);
void *ts_calloc(size_t count, size_t n);
void *ts_realloc(void *p, size_t n);
char *ts_strdup(const char *s);
char *ts_strndup(const char *s, size_t n);

/* Monotonic clock in milliseconds. */
uint64_t ts_now_ms(void);

/* The error code's name, for log lines. */
const char *ts_strerror(int err);

#endif
