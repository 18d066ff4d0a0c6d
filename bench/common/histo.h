/*
 * histo.h — the latency histogram of the WebSocket load generators
 * (bench/ws/loadgen.c, bench/signaling/sigload.c): exact below 64 ns, then
 * log-linear with 32 buckets an octave (1/32 of an octave, about 3 %); a
 * percentile is reported as the middle of its bucket. Recording is an index
 * computation and an increment, cheap enough for every message.
 * Header-only (static inline).
 */
#ifndef HISTO_H
#define HISTO_H

#include <stdint.h>

#define HISTO_N 2048 /* 64 + 58 octaves x 32: every uint64_t has a bucket */

typedef struct {
    uint64_t n[HISTO_N];
    uint64_t max; /* the largest value recorded, exact */
} histo_t;

static inline int histo_idx(uint64_t v)
{
    int mag;

    if (v < 64) {
        return (int)v;
    }
    mag = 63 - __builtin_clzll(v);
    return 64 + (mag - 6) * 32 + (int)((v >> (mag - 5)) & 31);
}

/* The middle of bucket i. */
static inline double histo_val(int i)
{
    int mag;
    uint64_t lo, w;

    if (i < 64) {
        return i;
    }
    mag = (i - 64) / 32 + 6;
    w = 1ull << (mag - 5);
    lo = (1ull << mag) + (uint64_t)((i - 64) % 32) * w;
    return (double)lo + (double)w / 2;
}

static inline void histo_add(histo_t *h, uint64_t v)
{
    h->n[histo_idx(v)]++;
    if (v > h->max) {
        h->max = v;
    }
}

/* The p-quantile (0..1); 0 when nothing was recorded. */
static inline double histo_pct(const histo_t *h, double p)
{
    uint64_t total = 0, seen = 0, want;
    int i;

    for (i = 0; i < HISTO_N; i++) {
        total += h->n[i];
    }
    if (total == 0) {
        return 0;
    }
    want = (uint64_t)(p * (double)total);
    if (want >= total) {
        want = total - 1;
    }
    for (i = 0; i < HISTO_N; i++) {
        seen += h->n[i];
        if (seen > want) {
            return histo_val(i);
        }
    }
    return 0;
}

#endif
