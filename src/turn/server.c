/*
 * server.c — the STUN/TURN engine of one worker: what comes from a client
 * goes through here. ChannelData goes straight to the data path (relay.c);
 * a STUN message is parsed on the stack, then a request goes through a
 * fixed pipeline:
 *
 *   unknown comprehension-required attributes   -> 420
 *   the method table: unknown method            -> 400
 *   Binding                                     -> answered, no credentials
 *   long-term credentials (RFC 8489 9.2)        -> 400 / 401 / 438
 *   a retransmission of a remembered request    -> the same answer again
 *   an allocation held by another username      -> 441
 *   a method that needs an allocation, none     -> 437
 *   the method's handler (handler.c)            -> success or its error
 *
 * Nothing is stored for a request that has not authenticated (coturn issue
 * 1641): nonces are stateless and the first state — an allocation, a
 * remembered answer — is made after the integrity check.
 *
 * Amplification: over UDP the source of a request can be forged, so an
 * answer to a request that has not authenticated is never larger than the
 * request, except for the bare minimum each kind of answer needs (docs/turn.md
 * gives the numbers). Optional attributes are added, in a fixed order of
 * preference, only while the answer stays within the request's size.
 */
#include "turn/engine.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "core/common.h"
#include "core/log.h"

#define SOFTWARE   "tsunagi/" TS_VERSION
#define ANSWER_CAP 1280 /* the longest answer: a 401 with a 763-byte realm */

/* The message type of method and class (RFC 8489 5: the bits interleave). */
static uint16_t stun_type(uint16_t method, uint16_t cls)
{
    return (uint16_t)((method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) |
                      cls);
}

static size_t attr_size(size_t value_len)
{
    return 4 + ((value_len + 3) & ~(size_t)3);
}

uint64_t turn__random(turn_server_t *s)
{
    uint64_t x = s->rng; /* xorshift64*: transaction ids of indications need no secrecy */

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

void turn__drop(turn_server_t *s)
{
    s->stats.dropped++;
}

static int64_t now_unix(const turn_server_t *s)
{
    return s->io.now_unix != NULL ? s->io.now_unix(s->io.ctx) : (int64_t)time(NULL);
}

static const char *realm_of(const ts_config_t *cfg)
{
    return cfg->realm != NULL ? cfg->realm : "";
}

/* The client's address for a log line. */
static const char *peer_text(const turn_client_t *c, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    if (c->peer.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&c->peer;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        port = ntohs(in->sin_port);
    } else if (c->peer.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&c->peer;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
    }
    snprintf(buf, cap, "%s:%u", ip, port);
    return buf;
}

/* ----------------------------------------------------------- userhashes -- */

static int userhash_cmp(const void *a, const void *b)
{
    return memcmp(((const turn_userhash_t *)a)->hash, ((const turn_userhash_t *)b)->hash, 32);
}

/* USERHASH names a static user by SHA-256(user ":" realm): precomputed,
 * sorted, whenever the configuration changes. */
static void userhashes_build(turn_server_t *s)
{
    const ts_config_t *cfg = s->cfg;
    const char *realm = realm_of(cfg);

    free(s->userhashes);
    s->userhashes = NULL;
    s->nuserhashes = 0;
    if (cfg->nusers == 0)
        return;
    s->userhashes = ts_calloc(cfg->nusers, sizeof(*s->userhashes));
    for (size_t i = 0; i < cfg->nusers; i++) {
        const char *name = cfg->users[i].name;
        stun_userhash(name, strlen(name), realm, strlen(realm), s->userhashes[i].hash);
        s->userhashes[i].user = (uint32_t)i;
    }
    s->nuserhashes = cfg->nusers;
    qsort(s->userhashes, s->nuserhashes, sizeof(*s->userhashes), userhash_cmp);
}

static const char *userhash_lookup(const turn_server_t *s, const uint8_t hash[32])
{
    turn_userhash_t key;
    const turn_userhash_t *u;

    memcpy(key.hash, hash, 32);
    u = bsearch(&key, s->userhashes, s->nuserhashes, sizeof(key), userhash_cmp);
    return u != NULL ? s->cfg->users[u->user].name : NULL;
}

/* ------------------------------------------------------------ lifecycle -- */

static void random_bytes(void *out, size_t n)
{
    if (RAND_bytes(out, (int)n) != 1) {
        fprintf(stderr, "tsunagi: no randomness from OpenSSL\n");
        abort();
    }
}

turn_server_t *turn_server_new(const ts_config_t *cfg, const turn_io_t *io)
{
    turn_server_t *s = ts_calloc(1, sizeof(*s));

    s->cfg = cfg;
    s->io = *io;
    s->shared = turn_shared_new();
    s->own_shared = 1;
    random_bytes(&s->seed, sizeof(s->seed));
    random_bytes(&s->rng, sizeof(s->rng));
    s->rng |= 1;
    turn__allocs_init(s);
    s->txn_buckets = ts_calloc(TURN_TXN_BUCKETS, sizeof(*s->txn_buckets));
    s->scratch = ts_malloc(TURN_SCRATCH);
    s->req_rate = ts_ratelimit_table_new(TURN_RATE_ENTRIES);
    userhashes_build(s);
    return s;
}

void turn_server_free(turn_server_t *s)
{
    turn_txn_t *t, *next;

    if (s == NULL)
        return;
    turn__allocs_free(s);
    for (t = s->txn_head; t != NULL; t = next) {
        next = t->next;
        free(t);
    }
    for (t = s->txn_free; t != NULL; t = next) {
        next = t->next;
        free(t);
    }
    free(s->txn_buckets);
    free(s->userhashes);
    free(s->scratch);
    ts_ratelimit_table_free(s->req_rate);
    if (s->own_shared)
        turn_shared_free(s->shared);
    free(s);
}

void turn_server_set_config(turn_server_t *s, const ts_config_t *cfg)
{
    s->cfg = cfg;
    userhashes_build(s);
    turn__allocs_refilter(s);
}

void turn_server_set_draining(turn_server_t *s)
{
    s->draining = 1;
}

void turn_server_set_shared(turn_server_t *s, turn_shared_t *sh)
{
    if (sh == NULL || sh == s->shared || s->nallocs > 0)
        return;
    if (s->own_shared)
        turn_shared_free(s->shared);
    s->shared = sh;
    s->own_shared = 0;
}

const turn_stats_t *turn_server_stats(const turn_server_t *s)
{
    return &s->stats;
}

/* ------------------------------------------------- remembered answers -- */

#define TXN_FREE_KEEP 256 /* spare entries kept for reuse */

static size_t txn_bucket(const turn_server_t *s, const uint8_t tid[12])
{
    uint64_t a, b = 0;

    memcpy(&a, tid, 8);
    memcpy(&b, tid + 8, 4);
    a = (a ^ s->seed) * 0x9E3779B97F4A7C15ull;
    a ^= b * 0xC2B2AE3D27D4EB4Full;
    return (size_t)(a >> 40) & (TURN_TXN_BUCKETS - 1);
}

static void txn_unlink(turn_server_t *s, turn_txn_t *t)
{
    turn_txn_t **pp = &s->txn_buckets[txn_bucket(s, t->tid)];

    while (*pp != t)
        pp = &(*pp)->hnext;
    *pp = t->hnext;
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        s->txn_head = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    else
        s->txn_tail = t->prev;
    if (t->alloc != NULL)
        t->alloc->txn = NULL;
    t->alloc = NULL;
}

static const turn_txn_t *txn_find(const turn_server_t *s, const turn_tuple_t *tuple,
                                  const uint8_t tid[12], uint64_t now)
{
    const turn_txn_t *t = s->txn_buckets[txn_bucket(s, tid)];

    for (; t != NULL; t = t->hnext) {
        if (memcmp(t->tid, tid, 12) == 0 && t->expires > now && turn__tuple_equal(&t->tuple, tuple))
            return t;
    }
    return NULL;
}

/*
 * Remember the answer to an authenticated request on an allocation: one per
 * allocation (its last), plus those that outlive their allocation for
 * TURN_TXN_S (a deleting Refresh, answered again when retransmitted).
 */
static void txn_store(turn_req_t *r, const uint8_t *data, size_t len)
{
    turn_server_t *s = r->s;
    turn_txn_t *t = r->alloc != NULL ? r->alloc->txn : NULL;
    size_t i;

    if (len > TURN_TXN_BYTES)
        return;
    if (t != NULL) {
        txn_unlink(s, t);
    } else if (s->txn_free != NULL) {
        t = s->txn_free;
        s->txn_free = t->next;
    } else if (s->ntxn < TURN_TXN_MAX) {
        t = ts_malloc(sizeof(*t));
        s->ntxn++;
    } else {
        t = s->txn_head; /* full: the oldest goes early */
        txn_unlink(s, t);
    }
    memcpy(t->tid, r->m->tid, 12);
    t->tuple = r->tuple;
    t->expires = r->now + TURN_TXN_S * 1000ull;
    t->len = (uint16_t)len;
    memcpy(t->data, data, len);
    i = txn_bucket(s, t->tid);
    t->hnext = s->txn_buckets[i];
    s->txn_buckets[i] = t;
    t->next = NULL;
    t->prev = s->txn_tail;
    if (s->txn_tail != NULL)
        s->txn_tail->next = t;
    else
        s->txn_head = t;
    s->txn_tail = t;
    t->alloc = r->alloc;
    if (r->alloc != NULL)
        r->alloc->txn = t;
}

static void txns_expire(turn_server_t *s, uint64_t now)
{
    unsigned spare = 0;

    for (turn_txn_t *t = s->txn_free; t != NULL && spare < TXN_FREE_KEEP; t = t->next)
        spare++;
    while (s->txn_head != NULL && s->txn_head->expires <= now) {
        turn_txn_t *t = s->txn_head;
        txn_unlink(s, t);
        if (spare < TXN_FREE_KEEP) {
            t->next = s->txn_free;
            s->txn_free = t;
            spare++;
        } else {
            free(t);
            s->ntxn--;
        }
    }
}

/* ------------------------------------- answers to unauthenticated requests -- */

/* The size an answer may still grow to. */
typedef struct {
    size_t total;
    size_t bound;
} budget_t;

static int budget_take(budget_t *bg, size_t n)
{
    if (bg->total + n > bg->bound)
        return 0;
    bg->total += n;
    return 1;
}

/*
 * RFC 5780 7.5: a Binding request's RESPONSE-PORT names the port (of the
 * same IP) the answer goes to. tsunagi serves no RFC 5780, so the answer is
 * a 420, but coturn's turnutils_stunclient -f waits for it on that port and
 * would hang; coturn sends it there too. Same IP, same size bound: no
 * reflection to anyone the request's source address did not name.
 */
#define STUN_A_RESPONSE_PORT 0x0027

static void send_answer(turn_req_t *r, stun_builder_t *b)
{
    const stun_attr_t *rp = stun_msg_find(r->m, STUN_A_RESPONSE_PORT);
    size_t len = stun_build_finish(b);
    turn_client_t to;
    uint16_t port;

    if (len == 0) {
        ts_log_warn("turn: answer to method %#x did not fit", r->m->method);
        return;
    }
    if (rp == NULL || rp->len != 4 || r->m->method != STUN_BINDING ||
        r->client->transport != TURN_TRANSPORT_UDP ||
        (port = (uint16_t)(rp->value[0] << 8 | rp->value[1])) == 0) {
        r->s->io.send_client(r->s->io.ctx, r->client, b->buf, len);
        return;
    }
    to = *r->client;
    if (to.peer.ss_family == AF_INET)
        ((struct sockaddr_in *)&to.peer)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)&to.peer)->sin6_port = htons(port);
    r->s->io.send_client(r->s->io.ctx, &to, b->buf, len);
}

static int peer_is_v4(const turn_client_t *c)
{
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&c->peer;

    return c->peer.ss_family == AF_INET ||
           (c->peer.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr));
}

/*
 * Binding: XOR-MAPPED-ADDRESS (MAPPED-ADDRESS for an RFC 3489 client), and
 * FINGERPRINT when the request had one (ICE relies on it); then, while the
 * answer stays within the request's size, SOFTWARE, MAPPED-ADDRESS and
 * FINGERPRINT.
 */
static int on_binding(turn_req_t *r, stun_builder_t *unused)
{
    const stun_msg_t *m = r->m;
    const struct sockaddr *peer = (const struct sockaddr *)&r->client->peer;
    size_t addr = attr_size(peer_is_v4(r->client) ? 8 : 20);
    int classic = m->rfc3489, fp = !classic && m->fingerprint >= 0;
    budget_t bg = {STUN_HEADER_LEN + addr + (fp ? 8 : 0), r->len};
    int sw = budget_take(&bg, attr_size(sizeof(SOFTWARE) - 1));
    int mapped = !classic && budget_take(&bg, addr);
    uint8_t buf[ANSWER_CAP];
    stun_builder_t b;

    TS_UNUSED(unused);
    if (!classic && !fp)
        fp = budget_take(&bg, 8);
    r->s->stats.binding_requests++;
    stun_build_reply(&b, buf, sizeof(buf), stun_type(STUN_BINDING, STUN_SUCCESS), m);
    if (classic) {
        stun_add_addr(&b, STUN_A_MAPPED_ADDRESS, peer, 0);
    } else {
        stun_add_addr(&b, STUN_A_XOR_MAPPED_ADDRESS, peer, 1);
        if (mapped)
            stun_add_addr(&b, STUN_A_MAPPED_ADDRESS, peer, 0);
    }
    if (sw)
        stun_add_attr(&b, STUN_A_SOFTWARE, SOFTWARE, sizeof(SOFTWARE) - 1);
    if (fp)
        stun_add_fingerprint(&b);
    send_answer(r, &b);
    return TURN_ANSWERED;
}

/* PASSWORD-ALGORITHMS as offered: MD5, then SHA-256, neither with parameters. */
static const uint8_t password_algorithms[8] = {0, STUN_PWALG_MD5, 0, 0, 0, STUN_PWALG_SHA256, 0, 0};

/*
 * 401 or 438: ERROR-CODE, REALM and a fresh NONCE at least (and FINGERPRINT
 * when the request had one); then PASSWORD-ALGORITHMS, the reason phrase,
 * SOFTWARE and FINGERPRINT while they fit.
 */
static void answer_challenge(turn_req_t *r, int code)
{
    const char *realm = realm_of(r->s->cfg), *reason = stun_error_reason(code);
    char nonce[TURN_NONCE_LEN + 1];
    size_t rlen = strlen(realm);
    int fp = r->m->fingerprint >= 0, algs, why, sw;
    budget_t bg;
    uint8_t buf[ANSWER_CAP];
    stun_builder_t b;

    /* The plain nonce keeps the smallest 401 small; PASSWORD-ALGORITHMS
     * needs the nonce cookie with its bit set (RFC 8489 9.2.4), so it is
     * offered only where both fit. */
    bg.bound = r->len;
    bg.total = STUN_HEADER_LEN + attr_size(4) + attr_size(rlen) +
               attr_size(TURN_NONCE_PLAIN_LEN) + (fp ? 8 : 0);
    algs = budget_take(&bg, attr_size(TURN_NONCE_LEN) - attr_size(TURN_NONCE_PLAIN_LEN) +
                                attr_size(sizeof(password_algorithms)));
    turn_nonce_make2(turn__shared_auth(r->s->shared), r->now, algs, nonce, sizeof(nonce));
    why = budget_take(&bg, attr_size(4 + strlen(reason)) - attr_size(4));
    sw = budget_take(&bg, attr_size(sizeof(SOFTWARE) - 1));
    if (!fp)
        fp = budget_take(&bg, 8);

    stun_build_reply(&b, buf, sizeof(buf), stun_type(r->m->method, STUN_ERROR), r->m);
    stun_add_error(&b, code, why ? reason : "");
    stun_add_attr(&b, STUN_A_REALM, realm, rlen);
    stun_add_attr(&b, STUN_A_NONCE, nonce, strlen(nonce));
    if (algs)
        stun_add_attr(&b, STUN_A_PASSWORD_ALGORITHMS, password_algorithms,
                      sizeof(password_algorithms));
    if (sw)
        stun_add_attr(&b, STUN_A_SOFTWARE, SOFTWARE, sizeof(SOFTWARE) - 1);
    if (fp)
        stun_add_fingerprint(&b);
    send_answer(r, &b);
}

/*
 * Any other error before authentication (400, 420): ERROR-CODE without its
 * reason phrase, for 420 UNKNOWN-ATTRIBUTES with as many of the unknown types
 * as fit (one at least), FINGERPRINT when the request had one; then the
 * reason phrase, SOFTWARE and FINGERPRINT while they fit.
 */
static void answer_error(turn_req_t *r, int code)
{
    const stun_msg_t *m = r->m;
    const char *reason = stun_error_reason(code);
    int fp = m->fingerprint >= 0, why, sw;
    size_t nunknown = 0;
    budget_t bg = {STUN_HEADER_LEN + attr_size(4) + (fp ? 8 : 0), r->len};
    uint8_t buf[ANSWER_CAP];
    stun_builder_t b;

    if (code == 420) {
        nunknown = 1;
        bg.total += attr_size(2);
        while (nunknown < m->nunknown &&
               bg.total - attr_size(2 * nunknown) + attr_size(2 * nunknown + 2) <= bg.bound) {
            bg.total += attr_size(2 * nunknown + 2) - attr_size(2 * nunknown);
            nunknown++;
        }
    }
    why = budget_take(&bg, attr_size(4 + strlen(reason)) - attr_size(4));
    sw = budget_take(&bg, attr_size(sizeof(SOFTWARE) - 1));
    if (!fp)
        fp = budget_take(&bg, 8);

    stun_build_reply(&b, buf, sizeof(buf), stun_type(m->method, STUN_ERROR), m);
    stun_add_error(&b, code, why ? reason : "");
    if (nunknown > 0)
        stun_add_unknown(&b, m->unknown, nunknown);
    if (sw)
        stun_add_attr(&b, STUN_A_SOFTWARE, SOFTWARE, sizeof(SOFTWARE) - 1);
    if (fp)
        stun_add_fingerprint(&b);
    send_answer(r, &b);
}

/* ---------------------------------------- answers to authenticated ones -- */

/* SOFTWARE, the integrity attribute the request used, FINGERPRINT; then
 * sent, and remembered when it concerns an allocation. */
static void answer_authenticated(turn_req_t *r, stun_builder_t *b)
{
    size_t len;

    stun_add_attr(b, STUN_A_SOFTWARE, SOFTWARE, sizeof(SOFTWARE) - 1);
    if (r->mi_sha256)
        stun_add_integrity_sha256(b, r->key, r->keylen);
    else
        stun_add_integrity(b, r->key, r->keylen);
    stun_add_fingerprint(b);
    len = stun_build_finish(b);
    if (len == 0) {
        ts_log_warn("turn: answer to method %#x did not fit", r->m->method);
        return;
    }
    r->s->io.send_client(r->s->io.ctx, r->client, b->buf, len);
    if (r->had_alloc || r->alloc != NULL)
        txn_store(r, b->buf, len);
}

/* ------------------------------------------------------- authentication -- */

/* PASSWORD-ALGORITHM(S) (RFC 8489 9.2.4): the key's algorithm, or 400. */
static int password_algorithm(const stun_msg_t *m, int *alg)
{
    const stun_attr_t *one = stun_msg_find(m, STUN_A_PASSWORD_ALGORITHM);
    const stun_attr_t *list = stun_msg_find(m, STUN_A_PASSWORD_ALGORITHMS);
    unsigned v;

    *alg = STUN_PWALG_MD5;
    if (one == NULL && list == NULL)
        return 0;
    if (one == NULL || list == NULL || list->len != sizeof(password_algorithms) ||
        memcmp(list->value, password_algorithms, sizeof(password_algorithms)) != 0)
        return 400;
    if (one->len != 4 || one->value[2] != 0 || one->value[3] != 0)
        return 400;
    v = (unsigned)one->value[0] << 8 | one->value[1];
    if (v != STUN_PWALG_MD5 && v != STUN_PWALG_SHA256)
        return 400;
    *alg = (int)v;
    return 0;
}

static void auth_failed(turn_req_t *r, const char *why)
{
    char peer[INET6_ADDRSTRLEN + 8];

    r->s->stats.auth_failures++;
    ts_log_debug("turn: 401 to %s: %s", peer_text(r->client, peer, sizeof(peer)), why);
    answer_challenge(r, 401);
}

/*
 * The long-term credential mechanism. 0 when the request is authenticated
 * (r->user, r->key and r->userid set); otherwise it has been answered.
 */
static int authenticate(turn_req_t *r)
{
    const stun_msg_t *m = r->m;
    const ts_config_t *cfg = r->s->cfg;
    const stun_attr_t *uname, *uhash, *realm, *nonce;
    const char *realm_s = realm_of(cfg);
    char pass[TURN_PASS_MAX];
    uint8_t h[32];
    int alg, ok;

    if (m->integrity < 0 && m->integrity_sha256 < 0) {
        answer_challenge(r, 401);
        return -1;
    }
    uname = stun_msg_find(m, STUN_A_USERNAME);
    uhash = stun_msg_find(m, STUN_A_USERHASH);
    realm = stun_msg_find(m, STUN_A_REALM);
    nonce = stun_msg_find(m, STUN_A_NONCE);
    if ((uname == NULL && uhash == NULL) || realm == NULL || nonce == NULL ||
        password_algorithm(m, &alg) != 0 || (uname == NULL && uhash->len != 32)) {
        answer_error(r, 400);
        return -1;
    }
    if (uname != NULL) {
        r->user = (const char *)uname->value;
        r->ulen = uname->len;
    } else if ((r->user = userhash_lookup(r->s, uhash->value)) != NULL) {
        r->ulen = strlen(r->user);
    } else {
        auth_failed(r, "unknown USERHASH");
        return -1;
    }
    if (!turn_password(cfg, r->user, r->ulen, now_unix(r->s), pass, sizeof(pass))) {
        auth_failed(r, "unknown or expired username");
        return -1;
    }
    if (alg == STUN_PWALG_SHA256) {
        stun_long_term_key_sha256(r->user, r->ulen, realm_s, strlen(realm_s), pass, strlen(pass),
                                  r->key);
        r->keylen = 32;
    } else {
        stun_long_term_key_md5(r->user, r->ulen, realm_s, strlen(realm_s), pass, strlen(pass),
                               r->key);
        r->keylen = 16;
    }
    OPENSSL_cleanse(pass, sizeof(pass));
    r->mi_sha256 = m->integrity_sha256 >= 0;
    ok = r->mi_sha256 ? stun_check_integrity_sha256(m, r->key, r->keylen)
                      : stun_check_integrity(m, r->key, r->keylen);
    if (!ok) {
        auth_failed(r, "wrong MESSAGE-INTEGRITY");
        return -1;
    }
    /* After the integrity check (RFC 8489 order): only a client that holds
     * the key learns that its nonce went stale. */
    switch (turn_nonce_check2(turn__shared_auth(r->s->shared), r->now,
                              r->s->cfg->stale_nonce * 1000ull, (const char *)nonce->value,
                              nonce->len)) {
    case 1:
        break;
    case 0:
        answer_challenge(r, 438);
        return -1;
    default:
        auth_failed(r, "not our NONCE");
        return -1;
    }
    stun_userhash(r->user, r->ulen, "", 0, h);
    memcpy(r->userid, h, sizeof(r->userid));
    return 0;
}

/* ------------------------------------------------------------- pipeline -- */

#define M_AUTH  0x1 /* needs credentials */
#define M_ALLOC 0x2 /* needs the 5-tuple's allocation (437) */

static const struct {
    turn_method_fn fn;
    unsigned flags;
} methods[] = {
    [STUN_BINDING] = {on_binding, 0},
    [STUN_ALLOCATE] = {turn__on_allocate, M_AUTH},
    [STUN_REFRESH] = {turn__on_refresh, M_AUTH | M_ALLOC},
    [STUN_CREATE_PERMISSION] = {turn__on_create_permission, M_AUTH | M_ALLOC},
    [STUN_CHANNEL_BIND] = {turn__on_channel_bind, M_AUTH | M_ALLOC},
    [STUN_CONNECT] = {turn__on_connect, M_AUTH | M_ALLOC},
    [STUN_CONNECTION_BIND] = {turn__on_connection_bind, M_AUTH},
};

static void on_request(turn_server_t *s, const turn_client_t *client, const stun_msg_t *m,
                       size_t len)
{
    turn_req_t r;
    const turn_txn_t *t;
    uint8_t buf[ANSWER_CAP];
    stun_builder_t b;
    int code;

    s->stats.requests++;
    memset(&r, 0, sizeof(r));
    r.s = s;
    r.client = client;
    r.m = m;
    r.len = len;
    r.now = s->io.now_ms(s->io.ctx);
    if (m->nunknown > 0) {
        answer_error(&r, 420);
        return;
    }
    if (m->method >= TS_ARRAY_SIZE(methods) || methods[m->method].fn == NULL) {
        answer_error(&r, 400);
        return;
    }
    if (!(methods[m->method].flags & M_AUTH)) {
        methods[m->method].fn(&r, NULL);
        return;
    }
    if (authenticate(&r) != 0)
        return;

    turn__tuple_from_client(&r.tuple, client);
    r.alloc = turn__alloc_find(s, &r.tuple);
    r.had_alloc = r.alloc != NULL;
    if ((t = txn_find(s, &r.tuple, m->tid, r.now)) != NULL) {
        s->io.send_client(s->io.ctx, client, t->data, t->len);
        return;
    }
    stun_build_reply(&b, buf, sizeof(buf), stun_type(m->method, STUN_SUCCESS), m);
    if (r.alloc != NULL && memcmp(r.alloc->userid, r.userid, sizeof(r.userid)) != 0)
        code = 441;
    else if ((methods[m->method].flags & M_ALLOC) && r.alloc == NULL)
        code = 437;
    else
        code = methods[m->method].fn(&r, &b);
    if (code == TURN_ANSWERED)
        return;
    if (code != 0) {
        stun_build_reply(&b, buf, sizeof(buf), stun_type(m->method, STUN_ERROR), m);
        stun_add_error(&b, code, NULL);
    }
    answer_authenticated(&r, &b);
    if (r.bind != NULL)
        s->io.tcp_splice(s->io.ctx, r.bind->data_conn, r.bind->peer_conn);
}

/*
 * --turn-request-rate, decided on the header alone, before the message is
 * even parsed: a flood costs a hash lookup per packet. The class bits say
 * request (RFC 8489 5; a classic RFC 3489 request has them too). Over the
 * limit the request is dropped without a word: over UDP the source may be
 * forged, and any answer would amplify. Indications and ChannelData (media
 * of allocations made already) never reach this.
 */
static int request_allowed(turn_server_t *s, const turn_client_t *client, const uint8_t *data,
                           size_t len)
{
    const ts_config_t *cfg = s->cfg;

    if (len < STUN_HEADER_LEN || (data[0] & 0xc0) != 0 || (data[0] & 0x01) || (data[1] & 0x10))
        return 1;
    if (ts_ratelimit_table_take(s->req_rate, (const struct sockaddr *)&client->peer,
                                cfg->turn_request_rate, cfg->turn_request_burst,
                                s->io.now_ms(s->io.ctx)))
        return 1;
    s->stats.rate_limited++;
    return 0;
}

void turn_server_on_client(turn_server_t *s, const turn_client_t *client, const uint8_t *data,
                           size_t len)
{
    stun_msg_t m;

    if (len >= 4 && (data[0] & 0xc0) == 0x40) {
        turn__channel_data(s, client, data, len);
        return;
    }
    if (!request_allowed(s, client, data, len))
        return;
    if (stun_msg_parse(data, len, &m) != TS_OK) {
        turn__drop(s);
        return;
    }
    if (m.cls == STUN_REQUEST) {
        on_request(s, client, &m, len);
    } else if (m.cls == STUN_INDICATION && m.method == STUN_SEND) {
        turn__send_indication(s, client, &m);
    } else if (!(m.cls == STUN_INDICATION && m.method == STUN_BINDING)) {
        turn__drop(s); /* answers and other indications from a client mean nothing here */
    }
}

void turn_server_on_client_closed(turn_server_t *s, const turn_client_t *client)
{
    turn_tuple_t t;
    turn_alloc_t *a;

    turn__tuple_from_client(&t, client);
    if ((a = turn__alloc_find(s, &t)) != NULL)
        turn__alloc_free(s, a);
}

int turn_server_has_allocation(const turn_server_t *s, const turn_client_t *client)
{
    turn_tuple_t t;

    turn__tuple_from_client(&t, client);
    return turn__alloc_find(s, &t) != NULL;
}

/* --------------------------------------------------------------- timers -- */

void turn_server_tick(turn_server_t *s)
{
    uint64_t now = s->io.now_ms(s->io.ctx);

    turn__tcp_expire(s, now);
    turn__allocs_expire(s, now);
    turn__resv_expire(s->shared, now, s->io.ctx);
    txns_expire(s, now);
}

int turn_server_next_timeout(const turn_server_t *s)
{
    uint64_t next = TS_MIN(turn__allocs_next(s), turn__tcp_next(s)), now;

    if (s->txn_head != NULL)
        next = TS_MIN(next, s->txn_head->expires);
    if (next == UINT64_MAX)
        return -1;
    now = s->io.now_ms(s->io.ctx);
    if (next <= now)
        return 0;
    return next - now > INT_MAX ? INT_MAX : (int)(next - now);
}
