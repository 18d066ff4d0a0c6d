#include "core/iplimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/common.h"

/* Enough stripes that two workers accepting at once rarely share a lock. */
#define TS_IPLIMIT_STRIPES 64
#define TS_IPLIMIT_MIN_CAP 16

typedef struct {
    uint64_t key[2]; /* the client address, see ts_iplimit_key() */
    uint32_t count;  /* 0: the slot is empty */
} ts_iplimit_slot_t;

/* One lock and one linear-probing table; a cache line of its own so stripes
 * locked by different workers do not bounce one line between cores. */
typedef struct {
    pthread_mutex_t lock;
    ts_iplimit_slot_t *slots; /* owned; cap slots, cap a power of two */
    size_t cap;
    size_t used;
} __attribute__((aligned(64))) ts_iplimit_stripe_t;

struct ts_iplimit_s {
    ts_iplimit_stripe_t stripes[TS_IPLIMIT_STRIPES];
    uint64_t seed[2]; /* random per process: addresses cannot be chosen to collide */
};

ts_iplimit_t *ts_iplimit_new(void)
{
    ts_iplimit_t *t = aligned_alloc(64, sizeof(*t));

    if (t == NULL)
        abort();
    memset(t, 0, sizeof(*t));
    if (getrandom(t->seed, sizeof(t->seed), 0) != (ssize_t)sizeof(t->seed))
        t->seed[0] = (uint64_t)(uintptr_t)t ^ ts_now_ms(); /* still unknown to a client */
    for (int i = 0; i < TS_IPLIMIT_STRIPES; i++)
        pthread_mutex_init(&t->stripes[i].lock, NULL);
    return t;
}

void ts_iplimit_free(ts_iplimit_t *t)
{
    if (t == NULL)
        return;
    for (int i = 0; i < TS_IPLIMIT_STRIPES; i++) {
        pthread_mutex_destroy(&t->stripes[i].lock);
        free(t->stripes[i].slots);
    }
    free(t);
}

/* IPv4 (plain or mapped into IPv6) as ::ffff:a.b.c.d; IPv6 as its /64. */
static void ts_iplimit_key(const ts_peer_t *p, uint64_t key[2])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    uint8_t a[16];

    memset(a, 0, sizeof(a));
    if (p->family == AF_INET) {
        memcpy(a, mapped, sizeof(mapped));
        memcpy(a + 12, p->addr, 4);
    } else if (memcmp(p->addr, mapped, sizeof(mapped)) == 0) {
        memcpy(a, p->addr, 16);
    } else {
        memcpy(a, p->addr, 8);
    }
    memcpy(key, a, sizeof(a));
}

static uint64_t ts_iplimit_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t ts_iplimit_hash(const ts_iplimit_t *t, const uint64_t key[2])
{
    return ts_iplimit_mix(ts_iplimit_mix(key[0] ^ t->seed[0]) ^ key[1] ^ t->seed[1]);
}

/* The slot holding key, or the empty slot where it would go. */
static ts_iplimit_slot_t *ts_iplimit_probe(ts_iplimit_stripe_t *s, const uint64_t key[2],
                                           uint64_t hash)
{
    size_t mask = s->cap - 1;

    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        ts_iplimit_slot_t *slot = &s->slots[i];
        if (slot->count == 0 || (slot->key[0] == key[0] && slot->key[1] == key[1]))
            return slot;
    }
}

static void ts_iplimit_grow(ts_iplimit_t *t, ts_iplimit_stripe_t *s)
{
    ts_iplimit_slot_t *old = s->slots;
    size_t oldcap = s->cap;

    s->cap = oldcap == 0 ? TS_IPLIMIT_MIN_CAP : oldcap * 2;
    s->slots = ts_calloc(s->cap, sizeof(*s->slots));
    for (size_t i = 0; i < oldcap; i++) {
        if (old[i].count != 0)
            *ts_iplimit_probe(s, old[i].key, ts_iplimit_hash(t, old[i].key) >> 8) = old[i];
    }
    free(old);
}

/* Empty slot i and move later members of its run back, so that every key
 * stays reachable from its home slot without tombstones. */
static void ts_iplimit_remove(ts_iplimit_t *t, ts_iplimit_stripe_t *s, size_t i)
{
    size_t mask = s->cap - 1;
    size_t j = i;

    for (;;) {
        s->slots[i].count = 0;
        for (;;) {
            size_t home;
            j = (j + 1) & mask;
            if (s->slots[j].count == 0)
                return;
            home = (size_t)(ts_iplimit_hash(t, s->slots[j].key) >> 8) & mask;
            /* Stay when home lies cyclically in (i, j]: the gap is not on its path. */
            if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
                continue;
            break;
        }
        s->slots[i] = s->slots[j];
        i = j;
    }
}

/* The low bits pick the stripe, the rest the slot inside it. */
static ts_iplimit_stripe_t *ts_iplimit_stripe(ts_iplimit_t *t, const ts_peer_t *p, uint64_t key[2],
                                              uint64_t *hash)
{
    ts_iplimit_key(p, key);
    *hash = ts_iplimit_hash(t, key);
    return &t->stripes[*hash % TS_IPLIMIT_STRIPES];
}

int ts_iplimit_acquire(ts_iplimit_t *t, const ts_peer_t *p, unsigned max)
{
    uint64_t key[2], hash;
    ts_iplimit_stripe_t *s = ts_iplimit_stripe(t, p, key, &hash);
    ts_iplimit_slot_t *slot;
    int rc = TS_OK;

    pthread_mutex_lock(&s->lock);
    if ((s->used + 1) * 4 > s->cap * 3)
        ts_iplimit_grow(t, s);
    slot = ts_iplimit_probe(s, key, hash >> 8);
    if (slot->count == 0) {
        slot->key[0] = key[0];
        slot->key[1] = key[1];
        slot->count = 1;
        s->used++;
    } else if (slot->count < max) {
        slot->count++;
    } else {
        rc = TS_ERR_LIMIT;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void ts_iplimit_release(ts_iplimit_t *t, const ts_peer_t *p)
{
    uint64_t key[2], hash;
    ts_iplimit_stripe_t *s = ts_iplimit_stripe(t, p, key, &hash);
    ts_iplimit_slot_t *slot;

    pthread_mutex_lock(&s->lock);
    if (s->cap != 0) {
        slot = ts_iplimit_probe(s, key, hash >> 8);
        if (slot->count > 1) {
            slot->count--;
        } else if (slot->count == 1) {
            ts_iplimit_remove(t, s, (size_t)(slot - s->slots));
            s->used--;
        }
    }
    pthread_mutex_unlock(&s->lock);
}

unsigned ts_iplimit_count(ts_iplimit_t *t, const ts_peer_t *p)
{
    uint64_t key[2], hash;
    ts_iplimit_stripe_t *s = ts_iplimit_stripe(t, p, key, &hash);
    unsigned n = 0;

    pthread_mutex_lock(&s->lock);
    if (s->cap != 0)
        n = ts_iplimit_probe(s, key, hash >> 8)->count;
    pthread_mutex_unlock(&s->lock);
    return n;
}

size_t ts_iplimit_addresses(ts_iplimit_t *t)
{
    size_t n = 0;

    for (int i = 0; i < TS_IPLIMIT_STRIPES; i++) {
        pthread_mutex_lock(&t->stripes[i].lock);
        n += t->stripes[i].used;
        pthread_mutex_unlock(&t->stripes[i].lock);
    }
    return n;
}
