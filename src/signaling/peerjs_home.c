/*
 * peerjs_home.c — the PeerJS registry, sharded by home worker.
 *
 * An id's home worker owns its entry: the connection registered under it
 * (any worker's), the token that registered it, and the messages waiting
 * for it to connect. Only the home worker reads or writes an entry, so the
 * relay path takes no lock: a client's worker posts RELAY to the home of
 * dst, which posts DELIVER to dst's connection, or queues the message until
 * dst registers or --peerjs-expire-timeout passes (then the sender gets
 * EXPIRE, as from PeerServer). The one lock per shard guards membership for
 * readers on other threads (GET /peerjs/KEY/peers); the owner takes it only
 * when an id registers, unregisters or appears, never to relay.
 */
#include "signaling/peerjs.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/common.h"
#include "core/log.h"
#include "core/server.h"

#define TS_PEERJS_QUEUE_PER_ID 256                /* messages waiting for one id */
#define TS_PEERJS_QUEUE_BYTES  (8u * 1024 * 1024) /* waiting on one worker, all ids */
#define TS_PEERJS_BUCKETS_MIN  64

/* A message waiting for its destination to connect. */
typedef struct ts_peerjs_q_s ts_peerjs_q_t;
struct ts_peerjs_q_s {
    ts_peerjs_q_t *next;
    uint32_t len;     /* bytes of text */
    uint16_t src_len; /* bytes of the sender's id */
    uint8_t type;     /* enum ts_peerjs_type */
    char data[];      /* the sender's id, then the text */
};

typedef struct ts_peerjs_entry_s ts_peerjs_entry_t;
struct ts_peerjs_entry_s {
    ts_peerjs_entry_t *next; /* bucket chain */
    ts_peerjs_shard_t *shard;
    ts_timer_t expire; /* armed while messages wait */
    uint64_t hash;
    uint64_t conn; /* the registered connection; 0: none */
    char *token;   /* owned; NULL while not registered */
    size_t token_len;
    ts_peerjs_q_t *qhead; /* owned list, oldest first */
    ts_peerjs_q_t **qtail;
    unsigned nq;
    size_t id_len;
    char id[];
};

struct ts_peerjs_shard_s {
    ts_worker_t *w;
    pthread_mutex_t lock;        /* buckets and entry->conn, for readers on other threads */
    ts_peerjs_entry_t **buckets; /* owned array; entries owned */
    size_t nbuckets;             /* power of two */
    size_t count;
    size_t queued_bytes;
    unsigned registered; /* worker 0's shard only: clients of all workers; atomic */
};

static ts_peerjs_shard_t *ts_peerjs_shard(ts_worker_t *w)
{
    return __atomic_load_n(&w->locals[TS_LOCAL_PEERJS].ptr, __ATOMIC_ACQUIRE);
}

static size_t ts_peerjs_q_cost(const ts_peerjs_q_t *q)
{
    return sizeof(*q) + q->src_len + q->len;
}

/* ----------------------------------------------------------- table -- */

static ts_peerjs_entry_t *ts_peerjs_find(ts_peerjs_shard_t *sh, const char *id, size_t len,
                                         uint64_t hash)
{
    ts_peerjs_entry_t *e = sh->buckets[hash & (sh->nbuckets - 1)];

    for (; e != NULL; e = e->next)
        if (e->hash == hash && e->id_len == len && memcmp(e->id, id, len) == 0)
            return e;
    return NULL;
}

static void ts_peerjs_grow(ts_peerjs_shard_t *sh)
{
    size_t n = sh->nbuckets * 2;
    ts_peerjs_entry_t **b = ts_calloc(n, sizeof(*b));

    for (size_t i = 0; i < sh->nbuckets; i++) {
        ts_peerjs_entry_t *e = sh->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    free(sh->buckets);
    sh->buckets = b;
    sh->nbuckets = n;
}

static void ts_peerjs_on_expire(ts_loop_t *loop, ts_timer_t *t);

static ts_peerjs_entry_t *ts_peerjs_add(ts_peerjs_shard_t *sh, const char *id, size_t len,
                                        uint64_t hash)
{
    ts_peerjs_entry_t *e = ts_calloc(1, sizeof(*e) + len + 1);

    e->shard = sh;
    e->hash = hash;
    e->id_len = len;
    memcpy(e->id, id, len);
    e->qtail = &e->qhead;
    ts_timer_init(&e->expire, ts_peerjs_on_expire);
    pthread_mutex_lock(&sh->lock);
    if (sh->count >= sh->nbuckets)
        ts_peerjs_grow(sh);
    e->next = sh->buckets[hash & (sh->nbuckets - 1)];
    sh->buckets[hash & (sh->nbuckets - 1)] = e;
    sh->count++;
    pthread_mutex_unlock(&sh->lock);
    return e;
}

static void ts_peerjs_queue_clear(ts_peerjs_entry_t *e)
{
    ts_peerjs_q_t *q, *next;

    for (q = e->qhead; q != NULL; q = next) {
        next = q->next;
        e->shard->queued_bytes -= ts_peerjs_q_cost(q);
        free(q);
    }
    e->qhead = NULL;
    e->qtail = &e->qhead;
    e->nq = 0;
    ts_timer_stop(&e->shard->w->loop, &e->expire);
}

/* An entry with neither a connection nor waiting messages goes. */
static void ts_peerjs_maybe_remove(ts_peerjs_entry_t *e)
{
    ts_peerjs_shard_t *sh = e->shard;
    ts_peerjs_entry_t **pp;

    if (e->conn != 0 || e->nq > 0)
        return;
    pthread_mutex_lock(&sh->lock);
    for (pp = &sh->buckets[e->hash & (sh->nbuckets - 1)]; *pp != e; pp = &(*pp)->next)
        ;
    *pp = e->next;
    sh->count--;
    pthread_mutex_unlock(&sh->lock);
    ts_timer_stop(&sh->w->loop, &e->expire);
    free(e->token);
    free(e);
}

/* ---------------------------------------------------------- output -- */

static void ts_peerjs_post(ts_worker_t *w, uint32_t bus_type, int worker, uint64_t conn,
                           const ts_peerjs_hdr_t *h, const char *id, const char *aux,
                           const char *body)
{
    ts_bus_msg_t *m = ts_peerjs_msg_new(bus_type, conn, h, id, aux, body);
    int rc = bus_type == TS_PEERJS_MSG_CLIENT ? ts_bus_send(&w->server->bus, conn, m)
                                              : ts_bus_send_worker(&w->server->bus, worker, m);

    if (rc != TS_OK)
        ts_log_debug("peerjs: bus full, %s message dropped",
                     bus_type == TS_PEERJS_MSG_CLIENT ? "client" : "home");
}

static void ts_peerjs_deliver(ts_peerjs_entry_t *e, int type, const char *src, size_t src_len,
                              const char *text, size_t len)
{
    ts_peerjs_hdr_t h = {.conn = e->conn,
                         .body_len = (uint32_t)len,
                         .id_len = (uint16_t)e->id_len,
                         .aux_len = (uint16_t)src_len,
                         .op = TS_PEERJS_OP_DELIVER,
                         .type = (uint8_t)type};

    ts_peerjs_post(e->shard->w, TS_PEERJS_MSG_CLIENT, 0, e->conn, &h, e->id, src, text);
}

/* {type: EXPIRE, src: dst, dst: src} to the sender of a message that
 * could not wait for dst any longer, through the sender's home. */
static void ts_peerjs_send_expire(ts_worker_t *w, const char *dst, size_t dst_len, const char *src,
                                  size_t src_len)
{
    size_t len;
    char *text = ts_peerjs_text(TS_PEERJS_EXPIRE, dst, dst_len, src, src_len, &len);
    ts_peerjs_hdr_t h = {.body_len = (uint32_t)len,
                         .id_len = (uint16_t)src_len,
                         .aux_len = (uint16_t)dst_len,
                         .op = TS_PEERJS_OP_RELAY,
                         .type = TS_PEERJS_EXPIRE};

    ts_peerjs_post(w, TS_PEERJS_MSG_HOME, ts_peerjs_home(src, src_len, w->server->nworkers), 0, &h,
                   src, dst, text);
    free(text);
}

static void ts_peerjs_reply(ts_worker_t *w, uint64_t conn, int op, const char *body, size_t len)
{
    ts_peerjs_hdr_t h = {.conn = conn, .body_len = (uint32_t)len, .op = (uint8_t)op};

    ts_peerjs_post(w, TS_PEERJS_MSG_CLIENT, 0, conn, &h, NULL, NULL, body);
}

static void ts_peerjs_refuse(ts_worker_t *w, uint64_t conn, int type, const char *msg)
{
    size_t len;
    char *text = ts_peerjs_error_text(type, msg, &len);

    ts_peerjs_reply(w, conn, TS_PEERJS_OP_REFUSE, text, len);
    free(text);
}

/* ----------------------------------------------------------- queue -- */

/* PeerServer expires a destination's whole queue at once and tells each
 * sender once; so does this, when its oldest message is due. */
static void ts_peerjs_on_expire(ts_loop_t *loop, ts_timer_t *t)
{
    ts_peerjs_entry_t *e = ts_container_of(t, ts_peerjs_entry_t, expire);
    ts_worker_t *w = e->shard->w;

    TS_UNUSED(loop);
    for (ts_peerjs_q_t *q = e->qhead; q != NULL; q = q->next) {
        int told = 0;
        for (ts_peerjs_q_t *p = e->qhead; p != q && !told; p = p->next)
            told = p->src_len == q->src_len && memcmp(p->data, q->data, q->src_len) == 0;
        if (!told)
            ts_peerjs_send_expire(w, e->id, e->id_len, q->data, q->src_len);
    }
    ts_log_debug("peerjs: %u message(s) for an absent peer expired", e->nq);
    ts_peerjs_queue_clear(e);
    ts_peerjs_maybe_remove(e);
}

static void ts_peerjs_enqueue(ts_peerjs_entry_t *e, const ts_peerjs_view_t *v)
{
    ts_peerjs_shard_t *sh = e->shard;
    const ts_config_t *cfg = ts_server_config(sh->w->server);
    ts_peerjs_q_t *q;

    if (e->nq >= TS_PEERJS_QUEUE_PER_ID ||
        sh->queued_bytes + sizeof(*q) + v->h.aux_len + v->h.body_len > TS_PEERJS_QUEUE_BYTES) {
        /* Memory stays bounded: the sender hears at once that dst is out of reach. */
        ts_log_debug("peerjs: queue full, message for an absent peer refused");
        ts_peerjs_send_expire(sh->w, e->id, e->id_len, v->aux, v->h.aux_len);
        return;
    }
    q = ts_malloc(sizeof(*q) + v->h.aux_len + v->h.body_len);
    q->next = NULL;
    q->len = v->h.body_len;
    q->src_len = v->h.aux_len;
    q->type = v->h.type;
    memcpy(q->data, v->aux, v->h.aux_len);
    memcpy(q->data + v->h.aux_len, v->body, v->h.body_len);
    *e->qtail = q;
    e->qtail = &q->next;
    e->nq++;
    sh->queued_bytes += ts_peerjs_q_cost(q);
    if (!ts_timer_active(&e->expire))
        ts_timer_start(&sh->w->loop, &e->expire, (uint64_t)cfg->peerjs_expire_timeout * 1000);
}

static void ts_peerjs_flush(ts_peerjs_entry_t *e)
{
    for (ts_peerjs_q_t *q = e->qhead; q != NULL; q = q->next)
        ts_peerjs_deliver(e, q->type, q->data, q->src_len, q->data + q->src_len, q->len);
    ts_peerjs_queue_clear(e);
}

/* ------------------------------------------------------------- ops -- */

static void ts_peerjs_set_conn(ts_peerjs_entry_t *e, uint64_t conn)
{
    pthread_mutex_lock(&e->shard->lock);
    e->conn = conn;
    pthread_mutex_unlock(&e->shard->lock);
}

static void ts_peerjs_on_register(ts_worker_t *w, ts_peerjs_shard_t *sh, const ts_peerjs_view_t *v,
                                  uint64_t hash)
{
    ts_peerjs_entry_t *e = ts_peerjs_find(sh, v->id, v->h.id_len, hash);
    ts_peerjs_shard_t *root = ts_peerjs_shard(&w->server->workers[0]);
    unsigned limit = ts_server_config(w->server)->peerjs_concurrent_limit;
    uint64_t old;

    if (e != NULL && e->conn != 0) {
        if (e->token_len != v->h.aux_len || memcmp(e->token, v->aux, v->h.aux_len) != 0) {
            ts_peerjs_refuse(w, v->h.conn, TS_PEERJS_ID_TAKEN, TS_PEERJS_E_ID_TAKEN);
            return;
        }
        /* The same id and token again: the new socket takes over. */
        old = e->conn;
        ts_peerjs_set_conn(e, v->h.conn);
        ts_peerjs_reply(w, old, TS_PEERJS_OP_KICK, NULL, 0);
    } else {
        if (__atomic_fetch_add(&root->registered, 1, __ATOMIC_ACQ_REL) >= limit) {
            __atomic_fetch_sub(&root->registered, 1, __ATOMIC_ACQ_REL);
            ts_peerjs_refuse(w, v->h.conn, TS_PEERJS_ERROR, TS_PEERJS_E_LIMIT);
            return;
        }
        if (e == NULL)
            e = ts_peerjs_add(sh, v->id, v->h.id_len, hash);
        free(e->token);
        e->token = ts_strndup(v->aux, v->h.aux_len);
        e->token_len = v->h.aux_len;
        ts_peerjs_set_conn(e, v->h.conn);
    }
    ts_peerjs_reply(w, e->conn, TS_PEERJS_OP_OPEN, NULL, 0);
    ts_peerjs_flush(e);
}

static void ts_peerjs_on_unregister(ts_worker_t *w, ts_peerjs_shard_t *sh,
                                    const ts_peerjs_view_t *v, uint64_t hash)
{
    ts_peerjs_entry_t *e = ts_peerjs_find(sh, v->id, v->h.id_len, hash);

    /* A connection that was taken over, or refused, owns nothing here. */
    if (e == NULL || e->conn != v->h.conn)
        return;
    __atomic_fetch_sub(&ts_peerjs_shard(&w->server->workers[0])->registered, 1, __ATOMIC_ACQ_REL);
    ts_peerjs_set_conn(e, 0);
    free(e->token);
    e->token = NULL;
    e->token_len = 0;
    ts_peerjs_maybe_remove(e);
}

/* RELAY, and REQUEUE: a DELIVER whose connection was gone when it arrived
 * (dst left while the message was on its way). Unless dst has connected
 * again since, it waits like any message for an absent peer. */
static void ts_peerjs_on_relay(ts_worker_t *w, ts_peerjs_shard_t *sh, const ts_peerjs_view_t *v,
                               uint64_t hash)
{
    ts_peerjs_entry_t *e = ts_peerjs_find(sh, v->id, v->h.id_len, hash);

    TS_UNUSED(w);
    if (e != NULL && e->conn != 0 && (v->h.op == TS_PEERJS_OP_RELAY || e->conn != v->h.conn)) {
        ts_peerjs_deliver(e, v->h.type, v->aux, v->h.aux_len, v->body, v->h.body_len);
        return;
    }
    /* As PeerServer: LEAVE and EXPIRE for an absent peer are dropped. */
    if (v->h.type == TS_PEERJS_LEAVE || v->h.type == TS_PEERJS_EXPIRE)
        return;
    if (e == NULL)
        e = ts_peerjs_add(sh, v->id, v->h.id_len, hash);
    ts_peerjs_enqueue(e, v);
    ts_peerjs_maybe_remove(e);
}

uint64_t ts_peerjs_home_conn(ts_worker_t *w, const char *id, size_t len)
{
    ts_peerjs_shard_t *sh = ts_peerjs_shard(w);
    ts_peerjs_entry_t *e;

    /* The owner changes its shard under the lock for other threads' sake;
     * its own reads need none. */
    if (sh == NULL || ts_peerjs_home(id, len, w->server->nworkers) != w->index)
        return 0;
    e = ts_peerjs_find(sh, id, len, ts_peerjs_hash(id, len));
    return e != NULL ? e->conn : 0;
}

void ts_peerjs_home_on_message(ts_worker_t *w, ts_bus_msg_t *msg)
{
    ts_peerjs_shard_t *sh = ts_peerjs_shard(w);
    ts_peerjs_view_t v;
    uint64_t hash;

    if (ts_peerjs_msg_view(msg, &v) != TS_OK || v.h.id_len == 0)
        return;
    hash = ts_peerjs_hash(v.id, v.h.id_len);
    switch (v.h.op) {
    case TS_PEERJS_OP_REGISTER:
        ts_peerjs_on_register(w, sh, &v, hash);
        break;
    case TS_PEERJS_OP_UNREGISTER:
        ts_peerjs_on_unregister(w, sh, &v, hash);
        break;
    case TS_PEERJS_OP_RELAY:
    case TS_PEERJS_OP_REQUEUE:
        ts_peerjs_on_relay(w, sh, &v, hash);
        break;
    }
}

/* ------------------------------------------------------- lifecycle -- */

static void ts_peerjs_shard_free(void *ptr)
{
    ts_peerjs_shard_t *sh = ptr;

    for (size_t i = 0; i < sh->nbuckets; i++) {
        ts_peerjs_entry_t *e = sh->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            ts_peerjs_queue_clear(e);
            free(e->token);
            free(e);
        }
    }
    free(sh->buckets);
    pthread_mutex_destroy(&sh->lock);
    free(sh);
}

void ts_peerjs_home_init(ts_worker_t *w)
{
    ts_peerjs_shard_t *sh = ts_calloc(1, sizeof(*sh));

    sh->w = w;
    pthread_mutex_init(&sh->lock, NULL);
    sh->nbuckets = TS_PEERJS_BUCKETS_MIN;
    sh->buckets = ts_calloc(sh->nbuckets, sizeof(*sh->buckets));
    /* Set before the threads start: other workers read it (limit, /peers). */
    w->locals[TS_LOCAL_PEERJS].destroy = ts_peerjs_shard_free;
    __atomic_store_n(&w->locals[TS_LOCAL_PEERJS].ptr, sh, __ATOMIC_RELEASE);
    ts_worker_on_message(w, TS_PEERJS_MSG_HOME, ts_peerjs_home_on_message);
}

char *ts_peerjs_home_list(ts_server_t *s, size_t *len)
{
    json_t *list = json_array();
    char *text;

    for (int i = 0; i < s->nworkers; i++) {
        ts_peerjs_shard_t *sh = ts_peerjs_shard(&s->workers[i]);
        if (sh == NULL)
            continue;
        pthread_mutex_lock(&sh->lock);
        for (size_t b = 0; b < sh->nbuckets; b++)
            for (ts_peerjs_entry_t *e = sh->buckets[b]; e != NULL; e = e->next)
                if (e->conn != 0)
                    json_array_append_new(list, json_stringn(e->id, e->id_len));
        pthread_mutex_unlock(&sh->lock);
    }
    text = json_dumps(list, JSON_COMPACT);
    json_decref(list);
    if (text == NULL)
        abort();
    *len = strlen(text);
    return text;
}
