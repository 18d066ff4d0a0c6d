/*
 * alloc.c — allocations, their permissions and channels, and the three ways
 * to reach them: by 5-tuple (a chained hash table, seeded, so a client
 * cannot pick ports that pile into one chain), by relay handle (an array:
 * the glue's handles are small dense integers) and by deadline (a binary
 * min-heap).
 *
 * Permissions and channels are small arrays inside the allocation, scanned
 * linearly: a WebRTC client has one to a few peers, and the arrays are
 * capped. Their expiry does not get timers of its own: the allocation's
 * deadline is the earliest expiry inside it, and when it comes the
 * allocation is purged and rescheduled. A refresh that pushes an expiry
 * later leaves the deadline early; the purge then finds nothing to do and
 * reschedules, which is cheaper than keeping the heap exact.
 */
#include "turn/engine.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/log.h"

/* ------------------------------------------------------------ addresses -- */

int turn__family_slot(int family)
{
    return family == AF_INET ? 0 : family == AF_INET6 ? 1 : -1;
}

int turn__addr_from_sa(turn_addr_t *a, const struct sockaddr *sa)
{
    memset(a, 0, sizeof(*a));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

        a->ip[10] = 0xff;
        a->ip[11] = 0xff;
        memcpy(a->ip + 12, &in->sin_addr, 4);
        a->port = ntohs(in->sin_port);
        a->family = AF_INET;
        return TS_OK;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

        memcpy(a->ip, in6->sin6_addr.s6_addr, 16);
        a->scope = in6->sin6_scope_id;
        a->port = ntohs(in6->sin6_port);
        a->family = AF_INET6;
        return TS_OK;
    }
    return TS_ERR_PROTO;
}

void turn__addr_to_sa(const turn_addr_t *a, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    if (a->family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;

        in->sin_family = AF_INET;
        in->sin_port = htons(a->port);
        memcpy(&in->sin_addr, a->ip + 12, 4);
        *len = sizeof(*in);
    } else if (a->family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(a->port);
        memcpy(in6->sin6_addr.s6_addr, a->ip, 16);
        in6->sin6_scope_id = a->scope;
        *len = sizeof(*in6);
    } else {
        *len = 0;
    }
}

static int is_stream(int transport)
{
    return transport == TURN_TRANSPORT_TCP || transport == TURN_TRANSPORT_TLS;
}

void turn__tuple_from_client(turn_tuple_t *t, const turn_client_t *c)
{
    memset(t, 0, sizeof(*t));
    if (c->peer_len > 0)
        turn__addr_from_sa(&t->peer, (const struct sockaddr *)&c->peer);
    if (c->local_len > 0)
        turn__addr_from_sa(&t->local, (const struct sockaddr *)&c->local);
    t->conn_id = c->conn_id;
    t->sock = c->sock;
    t->transport = (uint8_t)c->transport;
}

void turn__tuple_to_client(const turn_tuple_t *t, turn_client_t *c)
{
    c->transport = t->transport;
    turn__addr_to_sa(&t->peer, &c->peer, &c->peer_len);
    turn__addr_to_sa(&t->local, &c->local, &c->local_len);
    c->conn_id = t->conn_id;
    c->sock = t->sock;
}

/* A stream's connection is its 5-tuple; a datagram client is its addresses. */
int turn__tuple_equal(const turn_tuple_t *a, const turn_tuple_t *b)
{
    if (a->transport != b->transport || a->conn_id != b->conn_id)
        return 0;
    if (is_stream(a->transport))
        return 1;
    return memcmp(&a->peer, &b->peer, sizeof(a->peer)) == 0 &&
           memcmp(&a->local, &b->local, sizeof(a->local)) == 0;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v;
    h *= 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 31);
}

static uint64_t addr_hash(uint64_t h, const turn_addr_t *a)
{
    uint64_t w[2];

    memcpy(w, a->ip, 16);
    h = mix(h, w[0]);
    h = mix(h, w[1]);
    return mix(h, (uint64_t)a->port << 8 | a->family);
}

uint64_t turn__tuple_hash(const turn_server_t *s, const turn_tuple_t *t)
{
    uint64_t h = mix(s->seed, (uint64_t)t->transport << 56 ^ t->conn_id);

    if (!is_stream(t->transport)) {
        h = addr_hash(h, &t->peer);
        h = addr_hash(h, &t->local);
    }
    return h;
}

/* ----------------------------------------------------------------- heap -- */

static void heap_set(turn_server_t *s, uint32_t i, turn_alloc_t *a)
{
    s->heap[i] = a;
    a->heap_idx = i;
}

static void heap_up(turn_server_t *s, uint32_t i)
{
    turn_alloc_t *a = s->heap[i];

    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (s->heap[parent]->deadline <= a->deadline)
            break;
        heap_set(s, i, s->heap[parent]);
        i = parent;
    }
    heap_set(s, i, a);
}

static void heap_down(turn_server_t *s, uint32_t i)
{
    turn_alloc_t *a = s->heap[i];

    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= s->nheap)
            break;
        if (child + 1 < s->nheap && s->heap[child + 1]->deadline < s->heap[child]->deadline)
            child++;
        if (a->deadline <= s->heap[child]->deadline)
            break;
        heap_set(s, i, s->heap[child]);
        i = child;
    }
    heap_set(s, i, a);
}

static void heap_push(turn_server_t *s, turn_alloc_t *a)
{
    if (s->nheap == s->heap_cap) {
        s->heap_cap = s->heap_cap ? s->heap_cap * 2 : 64;
        s->heap = ts_realloc(s->heap, s->heap_cap * sizeof(*s->heap));
    }
    s->heap[s->nheap] = a;
    a->heap_idx = s->nheap++;
    heap_up(s, a->heap_idx);
}

static void heap_remove(turn_server_t *s, turn_alloc_t *a)
{
    uint32_t i = a->heap_idx;
    turn_alloc_t *last = s->heap[--s->nheap];

    if (last == a)
        return;
    heap_set(s, i, last);
    heap_up(s, i);
    heap_down(s, last->heap_idx);
}

/* ---------------------------------------------------------- allocations -- */

void turn__allocs_init(turn_server_t *s)
{
    s->nbuckets = 64;
    s->buckets = ts_calloc(s->nbuckets, sizeof(*s->buckets));
}

void turn__allocs_free(turn_server_t *s)
{
    while (s->nheap > 0)
        turn__alloc_free(s, s->heap[0]);
    free(s->buckets);
    free(s->by_relay);
    free(s->heap);
    s->buckets = NULL;
    s->by_relay = NULL;
    s->heap = NULL;
}

turn_alloc_t *turn__alloc_find(const turn_server_t *s, const turn_tuple_t *t)
{
    turn_alloc_t *a = s->buckets[turn__tuple_hash(s, t) & (s->nbuckets - 1)];

    while (a != NULL && !turn__tuple_equal(&a->tuple, t))
        a = a->hnext;
    return a;
}

turn_alloc_t *turn__alloc_by_relay(const turn_server_t *s, turn_relay_t relay)
{
    if (relay < 0 || (size_t)relay >= s->nby_relay)
        return NULL;
    return s->by_relay[relay];
}

static void table_grow(turn_server_t *s)
{
    size_t n = s->nbuckets * 2;
    turn_alloc_t **b = ts_calloc(n, sizeof(*b));

    for (size_t i = 0; i < s->nbuckets; i++) {
        turn_alloc_t *a = s->buckets[i], *next;
        for (; a != NULL; a = next) {
            size_t j = turn__tuple_hash(s, &a->tuple) & (n - 1);
            next = a->hnext;
            a->hnext = b[j];
            b[j] = a;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
}

turn_alloc_t *turn__alloc_new(turn_server_t *s, const turn_tuple_t *t, uint64_t expires)
{
    turn_alloc_t *a = ts_calloc(1, sizeof(*a));
    size_t i;

    if (s->nallocs >= s->nbuckets)
        table_grow(s);
    a->tuple = *t;
    a->relay[0] = a->relay[1] = -1;
    a->expires = expires;
    a->deadline = expires;
    i = turn__tuple_hash(s, t) & (s->nbuckets - 1);
    a->hnext = s->buckets[i];
    s->buckets[i] = a;
    s->nallocs++;
    heap_push(s, a);
    s->stats.allocations = s->nallocs;
    s->stats.allocations_total++;
    return a;
}

void turn__alloc_set_relay(turn_server_t *s, turn_alloc_t *a, int slot, turn_relay_t relay)
{
    if ((size_t)relay >= s->nby_relay) {
        size_t n = s->nby_relay ? s->nby_relay : 64;
        while (n <= (size_t)relay)
            n *= 2;
        s->by_relay = ts_realloc(s->by_relay, n * sizeof(*s->by_relay));
        memset(s->by_relay + s->nby_relay, 0, (n - s->nby_relay) * sizeof(*s->by_relay));
        s->nby_relay = n;
    }
    s->by_relay[relay] = a;
    a->relay[slot] = relay;
}

void turn__alloc_free(turn_server_t *s, turn_alloc_t *a)
{
    turn_alloc_t **pp = &s->buckets[turn__tuple_hash(s, &a->tuple) & (s->nbuckets - 1)];

    while (*pp != a)
        pp = &(*pp)->hnext;
    *pp = a->hnext;
    heap_remove(s, a);
    turn__tcp_alloc_gone(s, a);
    for (int i = 0; i < 2; i++) {
        if (a->relay[i] >= 0) {
            s->by_relay[a->relay[i]] = NULL;
            s->io.relay_close(s->io.ctx, a->relay[i]);
        }
    }
    if (a->txn != NULL)
        a->txn->alloc = NULL; /* the answer outlives it: a retransmitted delete */
    if (a->quota != NULL)
        turn__quota_give(s->shared, a->quota);
    free(a->perms);
    free(a->chans);
    free(a);
    s->nallocs--;
    s->stats.allocations = s->nallocs;
}

static uint64_t chan_gone(const turn_chan_t *c)
{
    return c->expires + TURN_CHANNEL_COOLDOWN_S * 1000ull;
}

/* The next moment something inside a changes, after now. */
static uint64_t alloc_deadline(const turn_alloc_t *a, uint64_t now)
{
    uint64_t d = a->expires;

    for (unsigned i = 0; i < a->nperms; i++)
        d = TS_MIN(d, a->perms[i].expires);
    for (unsigned i = 0; i < a->nchans; i++) {
        const turn_chan_t *c = &a->chans[i];
        d = TS_MIN(d, c->expires > now ? c->expires : chan_gone(c));
    }
    return d;
}

static void heap_fix(turn_server_t *s, turn_alloc_t *a)
{
    heap_up(s, a->heap_idx);
    heap_down(s, a->heap_idx);
}

void turn__alloc_schedule(turn_server_t *s, turn_alloc_t *a, uint64_t now)
{
    a->deadline = alloc_deadline(a, now);
    heap_fix(s, a);
}

static void alloc_purge(turn_alloc_t *a, uint64_t now)
{
    unsigned i, n;

    for (i = n = 0; i < a->nperms; i++) {
        if (a->perms[i].expires > now)
            a->perms[n++] = a->perms[i];
    }
    a->nperms = (uint16_t)n;
    for (i = n = 0; i < a->nchans; i++) {
        if (chan_gone(&a->chans[i]) > now)
            a->chans[n++] = a->chans[i];
    }
    a->nchans = (uint16_t)n;
}

void turn__allocs_expire(turn_server_t *s, uint64_t now)
{
    while (s->nheap > 0 && s->heap[0]->deadline <= now) {
        turn_alloc_t *a = s->heap[0];

        if (a->expires <= now) {
            ts_log_debug("turn: allocation expired (%zu left)", s->nallocs - 1);
            turn__alloc_free(s, a);
            continue;
        }
        alloc_purge(a, now);
        a->deadline = alloc_deadline(a, now);
        heap_fix(s, a);
    }
}

uint64_t turn__allocs_next(const turn_server_t *s)
{
    return s->nheap > 0 ? s->heap[0]->deadline : UINT64_MAX;
}

static int ip_allowed(const turn_server_t *s, const uint8_t ip[16])
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    struct sockaddr_storage ss;
    socklen_t len;
    turn_addr_t addr;

    memset(&addr, 0, sizeof(addr));
    memcpy(addr.ip, ip, 16);
    addr.family = memcmp(ip, v4mapped, 12) == 0 ? AF_INET : AF_INET6;
    turn__addr_to_sa(&addr, &ss, &len);
    return turn_peer_allowed(s->cfg, (struct sockaddr *)&ss);
}

void turn__allocs_refilter(turn_server_t *s)
{
    for (size_t b = 0; b < s->nbuckets; b++) {
        for (turn_alloc_t *a = s->buckets[b]; a != NULL; a = a->hnext) {
            unsigned i, n;

            for (i = n = 0; i < a->nperms; i++) {
                if (ip_allowed(s, a->perms[i].ip))
                    a->perms[n++] = a->perms[i];
            }
            a->nperms = (uint16_t)n;
            for (i = n = 0; i < a->nchans; i++) {
                if (ip_allowed(s, a->chans[i].ip))
                    a->chans[n++] = a->chans[i];
            }
            a->nchans = (uint16_t)n;
        }
    }
}

/* ------------------------------------------------ permissions, channels -- */

turn_perm_t *turn__perm_find(turn_alloc_t *a, const uint8_t ip[16], uint64_t now)
{
    for (unsigned i = 0; i < a->nperms; i++) {
        if (memcmp(a->perms[i].ip, ip, 16) == 0)
            return a->perms[i].expires > now ? &a->perms[i] : NULL;
    }
    return NULL;
}

static turn_perm_t *perm_any(turn_alloc_t *a, const uint8_t ip[16])
{
    for (unsigned i = 0; i < a->nperms; i++) {
        if (memcmp(a->perms[i].ip, ip, 16) == 0)
            return &a->perms[i];
    }
    return NULL;
}

int turn__perm_room(const turn_alloc_t *a, const uint8_t ip[16])
{
    return perm_any((turn_alloc_t *)a, ip) != NULL || a->nperms < TURN_MAX_PERMISSIONS;
}

int turn__perm_set(turn_alloc_t *a, const uint8_t ip[16], uint64_t expires)
{
    turn_perm_t *p = perm_any(a, ip);

    if (p == NULL) {
        if (a->nperms >= TURN_MAX_PERMISSIONS)
            return -1;
        if (a->nperms == a->cap_perms) {
            a->cap_perms = a->cap_perms ? (uint16_t)(a->cap_perms * 2) : 2;
            a->perms = ts_realloc(a->perms, a->cap_perms * sizeof(*a->perms));
        }
        p = &a->perms[a->nperms++];
        memcpy(p->ip, ip, 16);
    }
    p->expires = expires;
    return 0;
}

turn_chan_t *turn__chan_by_number(turn_alloc_t *a, uint16_t number)
{
    for (unsigned i = 0; i < a->nchans; i++) {
        if (a->chans[i].number == number)
            return &a->chans[i];
    }
    return NULL;
}

turn_chan_t *turn__chan_by_peer(turn_alloc_t *a, const turn_addr_t *peer)
{
    for (unsigned i = 0; i < a->nchans; i++) {
        if (a->chans[i].port == peer->port && memcmp(a->chans[i].ip, peer->ip, 16) == 0)
            return &a->chans[i];
    }
    return NULL;
}

turn_chan_t *turn__chan_add(turn_alloc_t *a, uint16_t number, const turn_addr_t *peer)
{
    turn_chan_t *c;

    if (a->nchans >= TURN_MAX_CHANNELS)
        return NULL;
    if (a->nchans == a->cap_chans) {
        a->cap_chans = a->cap_chans ? (uint16_t)(a->cap_chans * 2) : 1;
        a->chans = ts_realloc(a->chans, a->cap_chans * sizeof(*a->chans));
    }
    c = &a->chans[a->nchans++];
    memset(c, 0, sizeof(*c));
    memcpy(c->ip, peer->ip, 16);
    c->port = peer->port;
    c->number = number;
    c->family = peer->family;
    return c;
}
