#include "core/ratelimit.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/common.h"

/* ---------------------------------------------------------- buckets -- */

/* The level of b at now, in thousandths, without changing b. Elapsed time
 * is taken modulo 2^32 ms: a bucket idle for 49 days may look emptier than
 * it is, never fuller than burst. */
static uint64_t ts_ratelimit_level(const ts_ratelimit_bucket_t *b, unsigned rate, unsigned burst,
                                   uint64_t now)
{
    uint32_t elapsed = (uint32_t)now - b->stamp;
    uint64_t cap = (uint64_t)TS_MIN(TS_MAX(burst, 1u), TS_RATELIMIT_MAX) * 1000;
    /* rate tokens a second are rate thousandths a millisecond: exact. */
    uint64_t level = b->milli + (uint64_t)elapsed * rate;

    return TS_MIN(level, cap);
}

void ts_ratelimit_init(ts_ratelimit_bucket_t *b, unsigned burst, uint64_t now)
{
    b->milli = (uint32_t)TS_MIN(TS_MAX(burst, 1u), TS_RATELIMIT_MAX) * 1000;
    b->stamp = (uint32_t)now;
}

int ts_ratelimit_take(ts_ratelimit_bucket_t *b, unsigned rate, unsigned burst, uint64_t now)
{
    uint64_t level;

    if (rate == 0)
        return 1;
    level = ts_ratelimit_level(b, rate, burst, now);
    b->stamp = (uint32_t)now;
    if (level < 1000) {
        b->milli = (uint32_t)level;
        return 0;
    }
    b->milli = (uint32_t)(level - 1000);
    return 1;
}

/* ------------------------------------------------------------ table -- */

typedef struct {
    uint64_t key[2]; /* the client address, see ts_ratelimit_key() */
    ts_ratelimit_bucket_t b;
    uint32_t used; /* 0: the slot is free */
} ts_ratelimit_slot_t;

struct ts_ratelimit_table_s {
    ts_ratelimit_slot_t *slots; /* owned; nsets * TS_RATELIMIT_WAYS */
    size_t nsets;               /* a power of two */
    size_t used;
    uint64_t seed[2]; /* random per table: addresses cannot be chosen to collide */
};

ts_ratelimit_table_t *ts_ratelimit_table_new(size_t entries)
{
    ts_ratelimit_table_t *t = ts_calloc(1, sizeof(*t));

    t->nsets = 1;
    while (t->nsets * TS_RATELIMIT_WAYS < entries)
        t->nsets *= 2;
    /* calloc: pages of the table nobody hashed to are never touched. */
    t->slots = ts_calloc(t->nsets * TS_RATELIMIT_WAYS, sizeof(*t->slots));
    if (getrandom(t->seed, sizeof(t->seed), 0) != (ssize_t)sizeof(t->seed))
        t->seed[0] = (uint64_t)(uintptr_t)t ^ ts_now_ms(); /* still unknown to a client */
    return t;
}

void ts_ratelimit_table_free(ts_ratelimit_table_t *t)
{
    if (t == NULL)
        return;
    free(t->slots);
    free(t);
}

size_t ts_ratelimit_table_used(const ts_ratelimit_table_t *t)
{
    return t->used;
}

size_t ts_ratelimit_table_size(const ts_ratelimit_table_t *t)
{
    return t->nsets * TS_RATELIMIT_WAYS;
}

/* IPv4 (plain or mapped into IPv6) as ::ffff:a.b.c.d; IPv6 as its /64, the
 * share one subscriber is usually handed. -1 for another family. */
static int ts_ratelimit_key(const struct sockaddr *sa, uint64_t key[2])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    uint8_t a[16];

    memset(a, 0, sizeof(a));
    if (sa->sa_family == AF_INET) {
        memcpy(a, mapped, sizeof(mapped));
        memcpy(a + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const uint8_t *ip = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
        memcpy(a, ip, memcmp(ip, mapped, sizeof(mapped)) == 0 ? 16 : 8);
    } else {
        return -1;
    }
    memcpy(key, a, sizeof(a));
    return 0;
}

static uint64_t ts_ratelimit_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* The slot of key in its set, or the one it replaces: a free slot, else a
 * full bucket (as good as none), else the least recently used. */
static ts_ratelimit_slot_t *ts_ratelimit_find(ts_ratelimit_table_t *t, const uint64_t key[2],
                                              unsigned rate, unsigned burst, uint64_t now)
{
    uint64_t h = ts_ratelimit_mix(ts_ratelimit_mix(key[0] ^ t->seed[0]) ^ key[1] ^ t->seed[1]);
    ts_ratelimit_slot_t *set = &t->slots[(h & (t->nsets - 1)) * TS_RATELIMIT_WAYS];
    ts_ratelimit_slot_t *victim = set;
    uint64_t cap = (uint64_t)TS_MIN(TS_MAX(burst, 1u), TS_RATELIMIT_MAX) * 1000;
    uint64_t best = 0;

    for (int i = 0; i < TS_RATELIMIT_WAYS; i++) {
        ts_ratelimit_slot_t *s = &set[i];
        uint64_t worth; /* of replacing s: free, then full, then the longest idle */
        if (s->used && s->key[0] == key[0] && s->key[1] == key[1])
            return s;
        if (!s->used)
            worth = UINT64_MAX;
        else
            worth = (uint64_t)((uint32_t)now - s->b.stamp) +
                    (ts_ratelimit_level(&s->b, rate, burst, now) >= cap ? 1ull << 32 : 0);
        if (worth > best) {
            victim = s;
            best = worth;
        }
    }
    if (!victim->used) {
        victim->used = 1;
        t->used++;
    }
    victim->key[0] = key[0];
    victim->key[1] = key[1];
    ts_ratelimit_init(&victim->b, burst, now);
    return victim;
}

int ts_ratelimit_table_take(ts_ratelimit_table_t *t, const struct sockaddr *sa, unsigned rate,
                            unsigned burst, uint64_t now)
{
    uint64_t key[2];

    if (rate == 0 || ts_ratelimit_key(sa, key) != 0)
        return 1;
    return ts_ratelimit_take(&ts_ratelimit_find(t, key, rate, burst, now)->b, rate, burst, now);
}
