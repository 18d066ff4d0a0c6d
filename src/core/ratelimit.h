/*
 * ratelimit.h — token buckets for message rates: one per signaling
 * connection (--signaling-rate) and a per-worker table of them keyed by
 * client address (--turn-request-rate).
 *
 * A bucket is eight bytes and has no timer: it is refilled from the loop
 * clock when a message asks for a token. The rate and the burst are passed
 * on every take rather than stored, so a SIGHUP that changes them applies
 * to the next message of every client, and a bucket fuller than a new,
 * smaller burst is cut down to it.
 *
 * The table is a fixed-size set-associative cache: an address hashes (with
 * a per-process random seed, so addresses cannot be chosen to collide) to
 * one set of TS_RATELIMIT_WAYS slots. A new address takes a slot whose
 * bucket has refilled completely — such an entry is worth no more than no
 * entry — or else the least recently used slot of its set. Memory is fixed
 * at creation: a client spraying source addresses only evicts entries, and
 * an evicted client comes back with a full bucket, so the table errs on the
 * side of letting traffic through. Single-threaded: one table per worker.
 */
#ifndef TS_RATELIMIT_H
#define TS_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Tokens are counted in thousandths, in 32 bits: the burst is capped here. */
#define TS_RATELIMIT_MAX 1000000

typedef struct {
    uint32_t milli; /* tokens × 1000 */
    uint32_t stamp; /* ms of the last take, modulo 2^32 (a 49-day window) */
} ts_ratelimit_bucket_t;

/* A full bucket of burst tokens at now. */
void ts_ratelimit_init(ts_ratelimit_bucket_t *b, unsigned burst, uint64_t now);
/* Take one token: 1 taken, 0 empty (the message is over the limit). rate
 * tokens per second come back, up to burst; rate 0 means unlimited. */
int ts_ratelimit_take(ts_ratelimit_bucket_t *b, unsigned rate, unsigned burst, uint64_t now);

/* Buckets per client address: an IPv4 address (IPv4-mapped IPv6 counts as
 * the IPv4 address) or an IPv6 /64, as --max-connections-per-ip counts. */
typedef struct ts_ratelimit_table_s ts_ratelimit_table_t;

#define TS_RATELIMIT_WAYS 4

/* A table of at least entries slots (rounded up to a power of two). */
ts_ratelimit_table_t *ts_ratelimit_table_new(size_t entries);
void ts_ratelimit_table_free(ts_ratelimit_table_t *t);
/* ts_ratelimit_take() on the bucket of sa's client address. An address of
 * another family than AF_INET / AF_INET6 is never limited. */
int ts_ratelimit_table_take(ts_ratelimit_table_t *t, const struct sockaddr *sa, unsigned rate,
                            unsigned burst, uint64_t now);
/* Slots in use, and slots in all. */
size_t ts_ratelimit_table_used(const ts_ratelimit_table_t *t);
size_t ts_ratelimit_table_size(const ts_ratelimit_table_t *t);

#endif
