/*
 * tcp.c — TCP relays (RFC 6062). A client on a TCP or TLS control
 * connection allocates with REQUESTED-TRANSPORT 6; its relay is a listening
 * TCP socket. A peer connection comes about two ways: the client's Connect
 * (the glue connects from the relay's address; the answer waits for the
 * outcome), or a peer connecting to the relay (a ConnectionAttempt
 * indication tells the client). Either way the client then opens a data
 * connection and sends ConnectionBind with the CONNECTION-ID on it; after
 * the answer the glue splices the two and the engine only hears of them
 * again when one closes.
 *
 * The engine keeps one list of every peer connection of the worker: it is
 * walked only when a connection opens, binds, closes or expires, never per
 * byte, and each allocation holds at most TURN_MAX_TCP.
 */
#include "turn/engine.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/log.h"

#define SOFTWARE "tsunagi/" TS_VERSION

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int is_stream(int transport)
{
    return transport == TURN_TRANSPORT_TCP || transport == TURN_TRANSPORT_TLS;
}

/* --------------------------------------------------------------- table -- */

static turn_tcp_t *tcp_by_id(const turn_server_t *s, uint32_t id)
{
    turn_tcp_t *t = s->tcp_head;

    while (t != NULL && t->id != id)
        t = t->next;
    return t;
}

static turn_tcp_t *tcp_by_handle(const turn_server_t *s, uint64_t handle)
{
    turn_tcp_t *t = s->tcp_head;

    while (t != NULL && t->peer_conn != handle && t->data_conn != handle)
        t = t->next;
    return t;
}

static turn_tcp_t *tcp_by_peer(const turn_server_t *s, const turn_alloc_t *a,
                               const turn_addr_t *peer)
{
    turn_tcp_t *t = s->tcp_head;

    while (t != NULL && (t->alloc != a || memcmp(&t->peer, peer, sizeof(*peer)) != 0))
        t = t->next;
    return t;
}

/* A CONNECTION-ID no live connection has: the tag, then 24 bits never 0. */
static uint32_t tcp_new_id(turn_server_t *s)
{
    uint32_t id;

    do {
        s->tcp_seq = (s->tcp_seq + 1) & 0xffffff;
        if (s->tcp_seq == 0)
            s->tcp_seq = 1;
        id = (uint32_t)s->tag << 24 | s->tcp_seq;
    } while (tcp_by_id(s, id) != NULL);
    return id;
}

static turn_tcp_t *tcp_new(turn_server_t *s, turn_alloc_t *a, uint64_t handle,
                           const turn_addr_t *peer, int state, uint64_t deadline)
{
    turn_tcp_t *t = ts_calloc(1, sizeof(*t));

    t->alloc = a;
    t->peer_conn = handle;
    t->peer = *peer;
    t->id = tcp_new_id(s);
    t->state = (uint8_t)state;
    t->deadline = deadline;
    t->next = s->tcp_head;
    if (s->tcp_head != NULL)
        s->tcp_head->prev = t;
    s->tcp_head = t;
    a->ntcp++;
    return t;
}

/* Forget t, closing its connections but skip (one the glue closed itself). */
static void tcp_free(turn_server_t *s, turn_tcp_t *t, uint64_t skip)
{
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        s->tcp_head = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    t->alloc->ntcp--;
    if (t->peer_conn != 0 && t->peer_conn != skip)
        s->io.tcp_close(s->io.ctx, t->peer_conn);
    if (t->data_conn != 0 && t->data_conn != skip)
        s->io.tcp_close(s->io.ctx, t->data_conn);
    free(t);
}

void turn__tcp_alloc_gone(turn_server_t *s, turn_alloc_t *a)
{
    turn_tcp_t *t = s->tcp_head, *next;

    for (; t != NULL && a->ntcp > 0; t = next) {
        next = t->next;
        if (t->alloc == a)
            tcp_free(s, t, 0);
    }
}

/* ------------------------------------------------------------- answers -- */

/* The answer to a Connect, once its connection is through or not. */
static void connect_answer(turn_server_t *s, const turn_tcp_t *t, int code)
{
    uint8_t buf[256];
    stun_builder_t b;
    turn_client_t client;
    size_t len;

    stun_build_init(&b, buf, sizeof(buf), STUN_CONNECT | (code ? STUN_ERROR : STUN_SUCCESS),
                    t->tid);
    if (code != 0)
        stun_add_error(&b, code, NULL);
    else
        stun_add_u32(&b, STUN_A_CONNECTION_ID, t->id);
    stun_add_attr(&b, STUN_A_SOFTWARE, SOFTWARE, sizeof(SOFTWARE) - 1);
    if (t->mi_sha256)
        stun_add_integrity_sha256(&b, t->key, t->keylen);
    else
        stun_add_integrity(&b, t->key, t->keylen);
    stun_add_fingerprint(&b);
    if ((len = stun_build_finish(&b)) == 0)
        return;
    memset(&client, 0, sizeof(client));
    turn__tuple_to_client(&t->alloc->tuple, &client);
    s->io.send_client(s->io.ctx, &client, buf, len);
}

static void connection_attempt(turn_server_t *s, const turn_tcp_t *t, const struct sockaddr *peer)
{
    uint64_t r1 = turn__random(s), r2 = turn__random(s);
    uint8_t buf[128], tid[12];
    stun_builder_t b;
    turn_client_t client;
    size_t len;

    memcpy(tid, &r1, 8);
    memcpy(tid + 8, &r2, 4);
    stun_build_init(&b, buf, sizeof(buf), STUN_CONNECTION_ATTEMPT | STUN_INDICATION, tid);
    stun_add_addr(&b, STUN_A_XOR_PEER_ADDRESS, peer, 1);
    stun_add_u32(&b, STUN_A_CONNECTION_ID, t->id);
    if ((len = stun_build_finish(&b)) == 0)
        return;
    memset(&client, 0, sizeof(client));
    turn__tuple_to_client(&t->alloc->tuple, &client);
    s->io.send_client(s->io.ctx, &client, buf, len);
}

/* ------------------------------------------------------------- methods -- */

int turn__on_connect(turn_req_t *r, stun_builder_t *b)
{
    const stun_attr_t *xpa = stun_msg_find(r->m, STUN_A_XOR_PEER_ADDRESS);
    turn_server_t *s = r->s;
    turn_alloc_t *a = r->alloc;
    struct sockaddr_storage ss;
    socklen_t len;
    turn_addr_t peer;
    uint64_t handle = 0;
    turn_tcp_t *t;
    int rc;

    TS_UNUSED(b);
    if (!a->tcp || xpa == NULL)
        return 400;
    if ((rc = turn__peer_check(r, xpa, &peer)) != 0)
        return rc;
    if (peer.port == 0)
        return 400;
    if (turn__perm_find(a, peer.ip, r->now) == NULL)
        return 403;
    if (tcp_by_peer(s, a, &peer) != NULL)
        return 446;
    if (a->ntcp >= TURN_MAX_TCP)
        return 508;
    turn__addr_to_sa(&peer, &ss, &len);
    if (s->io.tcp_connect(s->io.ctx, a->relay[turn__family_slot(peer.family)],
                          (struct sockaddr *)&ss, len, &handle) != 0 ||
        handle == 0)
        return 447;
    t = tcp_new(s, a, handle, &peer, TURN_TCP_CONNECTING, r->now + TURN_TCP_CONNECT_S * 1000ull);
    memcpy(t->tid, r->m->tid, sizeof(t->tid));
    memcpy(t->key, r->key, r->keylen);
    t->keylen = (uint8_t)r->keylen;
    t->mi_sha256 = (uint8_t)r->mi_sha256;
    return TURN_ANSWERED;
}

/*
 * ConnectionBind, on a fresh data connection: the answer goes out, then
 * on_request splices (r->bind). A CONNECTION-ID of another worker's engine
 * goes there with its connection when the glue can move it.
 */
int turn__on_connection_bind(turn_req_t *r, stun_builder_t *b)
{
    const stun_attr_t *cid = stun_msg_find(r->m, STUN_A_CONNECTION_ID);
    turn_server_t *s = r->s;
    turn_tcp_t *t;
    uint32_t id;

    TS_UNUSED(b);
    if (cid == NULL || cid->len != 4 || !is_stream(r->client->transport) || r->alloc != NULL)
        return 400;
    id = get32(cid->value);
    if (id >> 24 != s->tag) {
        if (s->io.tcp_move != NULL && s->io.tcp_move(s->io.ctx, r->client, id >> 24) == 0)
            return TURN_ANSWERED;
        return 400;
    }
    if ((t = tcp_by_id(s, id)) == NULL || t->state != TURN_TCP_PENDING)
        return 400;
    if (memcmp(t->alloc->userid, r->userid, sizeof(r->userid)) != 0)
        return 441;
    t->state = TURN_TCP_BOUND;
    t->data_conn = r->client->conn_id;
    t->deadline = 0;
    r->bind = t;
    return 0;
}

/* ------------------------------------------------------ glue's reports -- */

void turn_server_set_tag(turn_server_t *s, unsigned tag)
{
    s->tag = (uint8_t)tag;
}

void turn_server_on_tcp_connected(turn_server_t *s, uint64_t handle, int ok)
{
    turn_tcp_t *t = tcp_by_handle(s, handle);

    if (t == NULL || t->state != TURN_TCP_CONNECTING) {
        if (ok)
            s->io.tcp_close(s->io.ctx, handle); /* its allocation went meanwhile */
        return;
    }
    if (!ok) {
        connect_answer(s, t, 447);
        tcp_free(s, t, handle);
        return;
    }
    t->state = TURN_TCP_PENDING;
    t->deadline = s->io.now_ms(s->io.ctx) + TURN_TCP_BIND_S * 1000ull;
    connect_answer(s, t, 0);
}

uint32_t turn_server_on_tcp_accept(turn_server_t *s, turn_relay_t relay,
                                   const struct sockaddr *peer, uint64_t handle)
{
    turn_alloc_t *a = turn__alloc_by_relay(s, relay);
    uint64_t now = s->io.now_ms(s->io.ctx);
    turn_addr_t from;
    turn_tcp_t *t;

    if (a == NULL || !a->tcp || handle == 0 || turn__addr_from_sa(&from, peer) != TS_OK ||
        turn__perm_find(a, from.ip, now) == NULL || a->ntcp >= TURN_MAX_TCP) {
        turn__drop(s);
        return 0;
    }
    t = tcp_new(s, a, handle, &from, TURN_TCP_PENDING, now + TURN_TCP_BIND_S * 1000ull);
    connection_attempt(s, t, peer);
    return t->id;
}

void turn_server_on_tcp_closed(turn_server_t *s, uint64_t handle)
{
    turn_tcp_t *t = tcp_by_handle(s, handle);

    if (t == NULL)
        return;
    if (t->state == TURN_TCP_CONNECTING)
        connect_answer(s, t, 447);
    tcp_free(s, t, handle);
}

/* -------------------------------------------------------------- timers -- */

void turn__tcp_expire(turn_server_t *s, uint64_t now)
{
    turn_tcp_t *t = s->tcp_head, *next;

    for (; t != NULL; t = next) {
        next = t->next;
        if (t->deadline == 0 || t->deadline > now)
            continue;
        if (t->state == TURN_TCP_CONNECTING)
            connect_answer(s, t, 447);
        else
            ts_log_debug("turn: CONNECTION-ID %#x not bound in %d s: closed", t->id,
                         TURN_TCP_BIND_S);
        tcp_free(s, t, 0);
    }
}

uint64_t turn__tcp_next(const turn_server_t *s)
{
    uint64_t next = UINT64_MAX;

    for (const turn_tcp_t *t = s->tcp_head; t != NULL; t = t->next) {
        if (t->deadline != 0)
            next = TS_MIN(next, t->deadline);
    }
    return next;
}
