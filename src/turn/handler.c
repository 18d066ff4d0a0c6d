/*
 * handler.c — one function per TURN method (RFC 8656 7-11, RFC 6156), called
 * by the pipeline of server.c once the request has authenticated. Each
 * checks its attributes in the order the RFC gives, changes the allocation
 * only when nothing can fail any more, and either fills the success answer
 * or returns the error code.
 *
 * EVEN-PORT reservations live in the state the workers share (shared.c).
 */
#include "turn/engine.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/log.h"

#define PROTO_UDP 17
#define PROTO_TCP 6

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint16_t sa_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* REQUESTED-ADDRESS-FAMILY and its kin: 0, 400 (malformed) or 440 (unknown). */
static int family_of(const stun_attr_t *a, int *family)
{
    if (a->len != 4)
        return 400;
    if (a->value[0] == 0x01)
        *family = AF_INET;
    else if (a->value[0] == 0x02)
        *family = AF_INET6;
    else
        return 440;
    return 0;
}

/* RFC 8656 7.2 and 7.3: min(requested, maximum), but never below the default. */
static uint32_t lifetime_clamp(uint32_t want)
{
    if (want > TURN_MAX_LIFETIME_S)
        want = TURN_MAX_LIFETIME_S;
    return want > TURN_DEFAULT_LIFETIME_S ? want : TURN_DEFAULT_LIFETIME_S;
}

/* LIFETIME: 0 with the requested value (the default when absent), or 400. */
static int requested_lifetime(const stun_msg_t *m, uint32_t *want)
{
    const stun_attr_t *a = stun_msg_find(m, STUN_A_LIFETIME);

    *want = TURN_DEFAULT_LIFETIME_S;
    if (a != NULL && stun_attr_u32(a, want) != TS_OK)
        return 400;
    return 0;
}

/* ------------------------------------------------------------- Allocate -- */

typedef struct {
    int family;           /* of the first relayed address */
    int dual;             /* ADDITIONAL-ADDRESS-FAMILY: an IPv6 one too */
    unsigned flags;       /* TURN_RELAY_* */
    const uint8_t *token; /* RESERVATION-TOKEN (in the request) */
    uint32_t lifetime;    /* seconds */
    int tcp;              /* RFC 6062 */
} alloc_req_t;

/* The attributes of an Allocate, checked in RFC 8656 7.2's order. */
static int allocate_parse(turn_req_t *r, alloc_req_t *q)
{
    const stun_msg_t *m = r->m;
    const stun_attr_t *transport = stun_msg_find(m, STUN_A_REQUESTED_TRANSPORT);
    const stun_attr_t *even = stun_msg_find(m, STUN_A_EVEN_PORT);
    const stun_attr_t *token = stun_msg_find(m, STUN_A_RESERVATION_TOKEN);
    const stun_attr_t *family = stun_msg_find(m, STUN_A_REQUESTED_ADDRESS_FAMILY);
    const stun_attr_t *additional = stun_msg_find(m, STUN_A_ADDITIONAL_ADDRESS_FAMILY);
    uint32_t want;
    int rc;

    memset(q, 0, sizeof(*q));
    q->family = AF_INET;
    if (transport == NULL || transport->len != 4)
        return 400;
    if (transport->value[0] == PROTO_TCP && r->s->io.tcp_connect != NULL) {
        /* RFC 6062 5.1: over TCP or TLS only, and none of what is about UDP. */
        if ((r->client->transport != TURN_TRANSPORT_TCP &&
             r->client->transport != TURN_TRANSPORT_TLS) ||
            even != NULL || token != NULL || additional != NULL ||
            stun_msg_find(m, STUN_A_DONT_FRAGMENT) != NULL)
            return 400;
        q->tcp = 1;
        q->flags = TURN_RELAY_TCP;
    } else if (transport->value[0] != PROTO_UDP) {
        return 442;
    }
    if ((even != NULL && even->len < 1) || (family != NULL && additional != NULL))
        return 400;
    if (token != NULL && (token->len != 8 || even != NULL || family != NULL || additional != NULL))
        return 400;
    if (family != NULL && (rc = family_of(family, &q->family)) != 0)
        return rc;
    if (additional != NULL) {
        if (additional->len != 4 || additional->value[0] != 0x02)
            return 400;
        q->dual = 1;
    }
    if (requested_lifetime(m, &want) != 0)
        return 400;
    q->lifetime = lifetime_clamp(want);
    if (even != NULL)
        q->flags |= TURN_RELAY_EVEN_PORT | ((even->value[0] & 0x80) ? TURN_RELAY_RESERVE_NEXT : 0);
    if (token != NULL)
        q->token = token->value;
    return 0;
}

/* Open a relay socket: 0, 440 (the family is not relayed here) or 508. */
static int relay_open(turn_server_t *s, int family, uint16_t port, unsigned flags,
                      struct sockaddr_storage *bound, turn_relay_t *out)
{
    socklen_t len = sizeof(*bound);
    turn_relay_t relay;

    memset(bound, 0, sizeof(*bound));
    relay = s->io.relay_open(s->io.ctx, family, port, flags, bound, &len);
    if (relay == -2)
        return 440;
    if (relay < 0)
        return 508;
    if (relay >= TURN_MAX_RELAY_HANDLE || bound->ss_family != family) {
        ts_log_error("turn: relay_open gave handle %d, family %d: refused", relay,
                     bound->ss_family);
        s->io.relay_close(s->io.ctx, relay);
        return 508;
    }
    *out = relay;
    return 0;
}

static void add_address_error(stun_builder_t *b, int code)
{
    const char *reason = stun_error_reason(code);
    uint8_t v[4 + 64];
    size_t n = strlen(reason);

    v[0] = 0x02; /* IPv6: the only additional family */
    v[1] = 0;
    v[2] = (uint8_t)(code / 100);
    v[3] = (uint8_t)(code % 100);
    memcpy(v + 4, reason, n);
    stun_add_attr(b, STUN_A_ADDRESS_ERROR_CODE, v, 4 + n);
}

/* Open the relay(s) of q: 0, or the error (nothing left open then). */
static int allocate_relays(turn_req_t *r, alloc_req_t *q, struct sockaddr_storage bound[2],
                           turn_relay_t relay[2], int *second, uint8_t token[8])
{
    turn_server_t *s = r->s;
    uint16_t port = 0, next;
    int rc, held = -1;

    if (q->token != NULL) {
        rc = turn__resv_take(s->shared, q->token, r->now, &q->family, &port, &held);
        /* Let go of the held port just before binding it for good. */
        if (held >= 0 && s->io.port_release != NULL)
            s->io.port_release(s->io.ctx, held);
        if (rc != 0)
            return 508;
    }
    if ((rc = relay_open(s, q->family, port, q->flags, &bound[0], &relay[0])) != 0)
        return rc;
    if (q->dual)
        *second = relay_open(s, AF_INET6, 0, q->flags & TURN_RELAY_EVEN_PORT, &bound[1], &relay[1]);
    if (!(q->flags & TURN_RELAY_RESERVE_NEXT))
        return 0;
    next = (uint16_t)(sa_port(&bound[0]) + 1);
    held = s->io.port_hold != NULL ? s->io.port_hold(s->io.ctx, q->family, next) : -1;
    if ((s->io.port_hold != NULL && held < 0) ||
        turn__resv_add(s->shared, q->family, next, &s->io, held, r->now, token) != 0) {
        for (int i = 0; i < 2; i++) {
            if (relay[i] >= 0)
                s->io.relay_close(s->io.ctx, relay[i]);
        }
        return 508;
    }
    return 0;
}

int turn__on_allocate(turn_req_t *r, stun_builder_t *b)
{
    turn_server_t *s = r->s;
    struct sockaddr_storage bound[2];
    turn_relay_t relay[2] = {-1, -1};
    turn_quota_user_t *quota;
    uint8_t token[8];
    const char *qname;
    size_t qlen;
    alloc_req_t q;
    turn_alloc_t *a;
    int rc, second = 0;

    if (r->alloc != NULL)
        return 437; /* a retransmission was answered from memory before this */
    /* Shutting down: the client should take its next server (docs/turn.md). */
    if (s->draining)
        return 508;
    if ((rc = allocate_parse(r, &q)) != 0)
        return rc;
    turn_quota_name(r->user, r->ulen, &qname, &qlen);
    if ((rc = turn__quota_take(s->shared, s->cfg, qname, qlen, &quota)) != 0)
        return rc;
    if ((rc = allocate_relays(r, &q, bound, relay, &second, token)) != 0) {
        turn__quota_give(s->shared, quota);
        return rc;
    }

    a = turn__alloc_new(s, &r->tuple, r->now + q.lifetime * 1000ull);
    a->quota = quota;
    a->tcp = (uint8_t)q.tcp;
    memcpy(a->userid, r->userid, sizeof(a->userid));
    for (int i = 0; i < 2; i++) {
        a->bucket[i].tokens = s->cfg->max_bps;
        a->bucket[i].stamp = (uint32_t)r->now;
        if (relay[i] >= 0)
            turn__alloc_set_relay(s, a, turn__family_slot(bound[i].ss_family), relay[i]);
    }
    r->alloc = a;
    ts_log_debug("turn: allocation %u for %.*s (%zu on this worker)", (unsigned)relay[0],
                 (int)TS_MIN(r->ulen, 64), r->user, s->nallocs);

    stun_add_addr(b, STUN_A_XOR_RELAYED_ADDRESS, (struct sockaddr *)&bound[0], 1);
    if (q.dual && second == 0)
        stun_add_addr(b, STUN_A_XOR_RELAYED_ADDRESS, (struct sockaddr *)&bound[1], 1);
    else if (q.dual)
        add_address_error(b, 440);
    stun_add_u32(b, STUN_A_LIFETIME, q.lifetime);
    if (q.flags & TURN_RELAY_RESERVE_NEXT)
        stun_add_attr(b, STUN_A_RESERVATION_TOKEN, token, sizeof(token));
    stun_add_addr(b, STUN_A_XOR_MAPPED_ADDRESS, (const struct sockaddr *)&r->client->peer, 1);
    return 0;
}

/* -------------------------------------------------------------- Refresh -- */

int turn__on_refresh(turn_req_t *r, stun_builder_t *b)
{
    turn_alloc_t *a = r->alloc;
    const stun_attr_t *fa = stun_msg_find(r->m, STUN_A_REQUESTED_ADDRESS_FAMILY);
    uint32_t want, lifetime;
    int family, rc;

    if (fa != NULL) {
        if ((rc = family_of(fa, &family)) == 400)
            return 400;
        if (rc != 0 || a->relay[turn__family_slot(family)] < 0)
            return 443;
    }
    if (requested_lifetime(r->m, &want) != 0)
        return 400;
    if (want == 0) {
        turn__alloc_free(r->s, a);
        r->alloc = NULL;
        stun_add_u32(b, STUN_A_LIFETIME, 0);
        return 0;
    }
    lifetime = lifetime_clamp(want);
    a->expires = r->now + lifetime * 1000ull;
    turn__alloc_schedule(r->s, a, r->now);
    stun_add_u32(b, STUN_A_LIFETIME, lifetime);
    return 0;
}

/* ----------------------------------------- CreatePermission, ChannelBind -- */

int turn__peer_check(turn_req_t *r, const stun_attr_t *attr, turn_addr_t *peer)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int slot;

    if (stun_attr_addr(r->m, attr, 1, &ss, &len) != TS_OK)
        return 400;
    turn__addr_from_sa(peer, (struct sockaddr *)&ss);
    slot = turn__family_slot(ss.ss_family);
    if (slot < 0 || r->alloc->relay[slot] < 0)
        return 443;
    if (!turn_peer_allowed(r->s->cfg, (struct sockaddr *)&ss))
        return 403;
    return 0;
}

int turn__on_create_permission(turn_req_t *r, stun_builder_t *b)
{
    const stun_msg_t *m = r->m;
    turn_alloc_t *a = r->alloc;
    turn_addr_t peers[STUN_MAX_ATTRS];
    unsigned n = 0, fresh = 0;
    int rc;

    TS_UNUSED(b);
    for (unsigned i = 0; i < m->nattrs; i++) {
        if (m->attrs[i].type != STUN_A_XOR_PEER_ADDRESS)
            continue;
        if ((rc = turn__peer_check(r, &m->attrs[i], &peers[n])) != 0)
            return rc;
        n++;
    }
    if (n == 0)
        return 400;
    /* All or none (RFC 8656 9.2): count the room first. */
    for (unsigned i = 0; i < n; i++) {
        int first = turn__perm_find(a, peers[i].ip, 0) == NULL; /* 0: any state */
        for (unsigned j = 0; j < i && first; j++)
            first = memcmp(peers[j].ip, peers[i].ip, 16) != 0;
        fresh += (unsigned)first;
    }
    if (a->nperms + fresh > TURN_MAX_PERMISSIONS)
        return 508;
    for (unsigned i = 0; i < n; i++)
        turn__perm_set(a, peers[i].ip, r->now + TURN_PERMISSION_S * 1000ull);
    turn__alloc_schedule(r->s, a, r->now);
    return 0;
}

int turn__on_channel_bind(turn_req_t *r, stun_builder_t *b)
{
    const stun_attr_t *number = stun_msg_find(r->m, STUN_A_CHANNEL_NUMBER);
    const stun_attr_t *xpa = stun_msg_find(r->m, STUN_A_XOR_PEER_ADDRESS);
    turn_alloc_t *a = r->alloc;
    turn_chan_t *by_number, *by_peer;
    turn_addr_t peer;
    uint16_t channel;
    int rc;

    TS_UNUSED(b);
    if (number == NULL || number->len != 4 || xpa == NULL || a->tcp)
        return 400;
    /* RFC 8656 says 0x4000-0x4FFF; RFC 5766 clients use up to 0x7FFF. */
    channel = get16(number->value);
    if (channel < TURN_CHANNEL_MIN || channel > TURN_CHANNEL_MAX)
        return 400;
    if ((rc = turn__peer_check(r, xpa, &peer)) != 0)
        return rc;
    /* Bound, or cooling down after expiry: either way it keeps its peer. */
    by_number = turn__chan_by_number(a, channel);
    by_peer = turn__chan_by_peer(a, &peer);
    if (by_number != by_peer)
        return 400;
    if (!turn__perm_room(a, peer.ip))
        return 508;
    if (by_number == NULL && (by_number = turn__chan_add(a, channel, &peer)) == NULL)
        return 508;
    by_number->expires = r->now + TURN_CHANNEL_S * 1000ull;
    turn__perm_set(a, peer.ip, r->now + TURN_PERMISSION_S * 1000ull);
    turn__alloc_schedule(r->s, a, r->now);
    return 0;
}
