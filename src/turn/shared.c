/*
 * shared.c — what the TURN engines of all workers share: the nonce key, the
 * allocation counts behind --total-quota and --user-quota, and EVEN-PORT
 * reservations (the Allocate that uses a token comes from another 5-tuple,
 * which the kernel may give to another worker: coturn's turnutils_uclient
 * does exactly that for its RTCP relay).
 *
 * All of it sits behind one mutex, taken when an allocation is made or
 * freed and when a reservation is made or used — a few times per call —
 * never on the data path, so the workers do not contend in practice. A
 * user's entry lives while that user holds an allocation; the allocation
 * keeps a pointer to it, so freeing needs no lookup.
 */
#include "turn/engine.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "core/common.h"

struct turn_quota_user_s {
    turn_quota_user_t *next;
    uint64_t hash;
    unsigned allocs;
    size_t len;
    char name[]; /* the quota name (turn_quota_name), not NUL-terminated */
};

struct turn_shared_s {
    pthread_mutex_t lock;
    turn_auth_t auth;
    unsigned total;
    turn_quota_user_t **buckets; /* owned */
    size_t nbuckets;
    size_t nusers;
    turn_resv_t *resv_head, *resv_tail; /* owned; in expiry order (one lifetime) */
    unsigned nresv;
};

turn_shared_t *turn_shared_new(void)
{
    turn_shared_t *sh = ts_calloc(1, sizeof(*sh));

    pthread_mutex_init(&sh->lock, NULL);
    turn_auth_init(&sh->auth);
    sh->nbuckets = 64;
    sh->buckets = ts_calloc(sh->nbuckets, sizeof(*sh->buckets));
    return sh;
}

static void resv_release(turn_resv_t *v, void *ctx);

void turn_shared_free(turn_shared_t *sh)
{
    if (sh == NULL)
        return;
    for (size_t i = 0; i < sh->nbuckets; i++) {
        turn_quota_user_t *u = sh->buckets[i], *next;
        for (; u != NULL; u = next) {
            next = u->next;
            free(u);
        }
    }
    free(sh->buckets);
    while (sh->resv_head != NULL) {
        turn_resv_t *v = sh->resv_head;
        sh->resv_head = v->next;
        resv_release(v, NULL);
        free(v);
    }
    pthread_mutex_destroy(&sh->lock);
    free(sh);
}

const turn_auth_t *turn__shared_auth(const turn_shared_t *sh)
{
    return &sh->auth;
}

static uint64_t name_hash(const char *name, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a: names come from authenticated users */

    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)name[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static void grow(turn_shared_t *sh)
{
    size_t n = sh->nbuckets * 2;
    turn_quota_user_t **b = ts_calloc(n, sizeof(*b));

    for (size_t i = 0; i < sh->nbuckets; i++) {
        turn_quota_user_t *u = sh->buckets[i], *next;
        for (; u != NULL; u = next) {
            next = u->next;
            u->next = b[u->hash & (n - 1)];
            b[u->hash & (n - 1)] = u;
        }
    }
    free(sh->buckets);
    sh->buckets = b;
    sh->nbuckets = n;
}

/* Count one more allocation for name: 0, or the STUN error that refuses it. */
int turn__quota_take(turn_shared_t *sh, const ts_config_t *cfg, const char *name, size_t len,
                     turn_quota_user_t **out)
{
    uint64_t h = name_hash(name, len);
    turn_quota_user_t *u;
    int rc = 0;

    pthread_mutex_lock(&sh->lock);
    for (u = sh->buckets[h & (sh->nbuckets - 1)]; u != NULL; u = u->next) {
        if (u->hash == h && u->len == len && memcmp(u->name, name, len) == 0)
            break;
    }
    if (cfg->user_quota > 0 && u != NULL && u->allocs >= cfg->user_quota) {
        rc = 486;
    } else if (cfg->total_quota > 0 && sh->total >= cfg->total_quota) {
        rc = 508;
    } else {
        if (u == NULL) {
            if (sh->nusers >= sh->nbuckets)
                grow(sh);
            u = ts_calloc(1, sizeof(*u) + len);
            u->hash = h;
            u->len = len;
            memcpy(u->name, name, len);
            u->next = sh->buckets[h & (sh->nbuckets - 1)];
            sh->buckets[h & (sh->nbuckets - 1)] = u;
            sh->nusers++;
        }
        u->allocs++;
        sh->total++;
        *out = u;
    }
    pthread_mutex_unlock(&sh->lock);
    return rc;
}

void turn__quota_give(turn_shared_t *sh, turn_quota_user_t *u)
{
    pthread_mutex_lock(&sh->lock);
    sh->total--;
    if (--u->allocs == 0) {
        turn_quota_user_t **pp = &sh->buckets[u->hash & (sh->nbuckets - 1)];
        while (*pp != u)
            pp = &(*pp)->next;
        *pp = u->next;
        sh->nusers--;
        free(u);
    }
    pthread_mutex_unlock(&sh->lock);
}

/* --------------------------------------------------------- reservations -- */

static void resv_release(turn_resv_t *v, void *ctx)
{
    if (v->held >= 0 && v->release != NULL)
        v->release(ctx, v->held);
    v->held = -1;
}

static void resv_unlink(turn_shared_t *sh, turn_resv_t *v, turn_resv_t *prev)
{
    if (prev != NULL)
        prev->next = v->next;
    else
        sh->resv_head = v->next;
    if (sh->resv_tail == v)
        sh->resv_tail = prev;
    sh->nresv--;
}

/* Keep port for TURN_RESERVATION_S, held open by the glue's handle held
 * (-1: not held): 0 and the token, or 508 when full (held is released). */
int turn__resv_add(turn_shared_t *sh, int family, uint16_t port, const turn_io_t *io, int held,
                   uint64_t now, uint8_t token[8])
{
    turn_resv_t *v;

    pthread_mutex_lock(&sh->lock);
    if (sh->nresv >= TURN_MAX_RESERVATIONS) {
        pthread_mutex_unlock(&sh->lock);
        if (held >= 0 && io->port_release != NULL)
            io->port_release(io->ctx, held);
        return 508;
    }
    v = ts_calloc(1, sizeof(*v));
    v->held = held;
    v->release = io->port_release;
    if (RAND_bytes(v->token, sizeof(v->token)) != 1) {
        fprintf(stderr, "tsunagi: no randomness from OpenSSL\n");
        abort();
    }
    v->family = family;
    v->port = port;
    v->expires = now + TURN_RESERVATION_S * 1000ull;
    if (sh->resv_tail != NULL)
        sh->resv_tail->next = v;
    else
        sh->resv_head = v;
    sh->resv_tail = v;
    sh->nresv++;
    memcpy(token, v->token, sizeof(v->token));
    pthread_mutex_unlock(&sh->lock);
    return 0;
}

/* Take the reservation of token (used once): 0, or -1 when unknown or past.
 * *held is its port's handle (-1: none), which the caller now owns. */
int turn__resv_take(turn_shared_t *sh, const uint8_t token[8], uint64_t now, int *family,
                    uint16_t *port, int *held)
{
    turn_resv_t *v, *prev = NULL;
    int rc = -1;

    *held = -1;
    pthread_mutex_lock(&sh->lock);
    for (v = sh->resv_head; v != NULL; prev = v, v = v->next) {
        if (CRYPTO_memcmp(v->token, token, sizeof(v->token)) == 0)
            break;
    }
    if (v != NULL) {
        if (v->expires > now) {
            *family = v->family;
            *port = v->port;
            rc = 0;
        }
        *held = v->held;
        resv_unlink(sh, v, prev);
        free(v);
    }
    pthread_mutex_unlock(&sh->lock);
    return rc;
}

/* ctx: the calling engine's glue, for the release of held ports. */
void turn__resv_expire(turn_shared_t *sh, uint64_t now, void *ctx)
{
    pthread_mutex_lock(&sh->lock);
    while (sh->resv_head != NULL && sh->resv_head->expires <= now) {
        turn_resv_t *v = sh->resv_head;
        resv_unlink(sh, v, NULL);
        resv_release(v, ctx);
        free(v);
    }
    pthread_mutex_unlock(&sh->lock);
}
