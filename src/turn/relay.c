/*
 * relay.c — the data path: what a client sends to peers (Send indications,
 * ChannelData) and what peers send back (ChannelData on a bound channel,
 * otherwise a Data indication). No allocation and no copy on the way out
 * to a peer: the payload is sent from the client's buffer. On the way back
 * the payload is framed once, in the engine's scratch buffer.
 *
 * Anything that does not pass — no allocation, no permission, no channel,
 * over --max-bps — is dropped silently (RFC 8656 10, 11, 12) and counted.
 */
#include "turn/engine.h"

#include <netinet/in.h>
#include <string.h>

#include "core/common.h"

#define BUCKET_MIN_DEPTH 2048 /* so that --max-bps below a packet still passes packets */

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static int is_stream(int transport)
{
    return transport == TURN_TRANSPORT_TCP || transport == TURN_TRANSPORT_TLS;
}

/*
 * --max-bps, per allocation and per direction (as coturn's max-bps): a
 * token bucket refilled at max_bps bytes per second, one second deep (at
 * least BUCKET_MIN_DEPTH). 1 when bytes may pass.
 */
int turn__bucket_take(turn_server_t *s, turn_alloc_t *a, int dir, size_t bytes, uint64_t now)
{
    uint64_t rate = s->cfg->max_bps, depth = TS_MAX(rate, BUCKET_MIN_DEPTH), add;
    turn_bucket_t *k = &a->bucket[dir];
    uint32_t elapsed;

    if (rate == 0)
        return 1;
    elapsed = (uint32_t)now - k->stamp;
    add = (uint64_t)elapsed * rate / 1000;
    if (add > 0) { /* otherwise the fraction keeps accruing */
        k->tokens = (uint32_t)TS_MIN(depth, k->tokens + add);
        k->stamp = (uint32_t)now;
    }
    if (k->tokens > depth) /* --max-bps went down on SIGHUP */
        k->tokens = (uint32_t)depth;
    if (bytes > k->tokens)
        return 0;
    k->tokens -= (uint32_t)bytes;
    return 1;
}

static void relayed(turn_server_t *s, size_t bytes)
{
    s->stats.relayed_packets++;
    s->stats.relayed_bytes += bytes;
}

static turn_alloc_t *client_alloc(turn_server_t *s, const turn_client_t *client)
{
    turn_tuple_t t;

    turn__tuple_from_client(&t, client);
    return turn__alloc_find(s, &t);
}

/* A Send indication: XOR-PEER-ADDRESS and DATA, to a peer with a permission. */
void turn__send_indication(turn_server_t *s, const turn_client_t *client, const stun_msg_t *m)
{
    const stun_attr_t *xpa = stun_msg_find(m, STUN_A_XOR_PEER_ADDRESS);
    const stun_attr_t *data = stun_msg_find(m, STUN_A_DATA);
    turn_alloc_t *a = client_alloc(s, client);
    struct sockaddr_storage ss;
    socklen_t len;
    turn_addr_t peer;
    uint64_t now;
    int slot;

    if (a == NULL || a->tcp || xpa == NULL || data == NULL ||
        stun_attr_addr(m, xpa, 1, &ss, &len) != TS_OK) {
        turn__drop(s);
        return;
    }
    now = s->io.now_ms(s->io.ctx);
    turn__addr_from_sa(&peer, (struct sockaddr *)&ss);
    slot = turn__family_slot(peer.family);
    if (slot < 0 || a->relay[slot] < 0 || peer.port == 0 ||
        turn__perm_find(a, peer.ip, now) == NULL ||
        !turn__bucket_take(s, a, TURN_TO_PEER, data->len, now)) {
        turn__drop(s);
        return;
    }
    s->io.relay_send(s->io.ctx, a->relay[slot], (struct sockaddr *)&ss, len, data->value, data->len,
                     stun_msg_find(m, STUN_A_DONT_FRAGMENT) != NULL);
    relayed(s, data->len);
}

/* ChannelData from a client: to the channel's peer while it is bound. */
void turn__channel_data(turn_server_t *s, const turn_client_t *client, const uint8_t *data,
                        size_t len)
{
    size_t dlen = get16(data + 2);
    turn_alloc_t *a;
    turn_chan_t *c;
    turn_addr_t peer;
    struct sockaddr_storage ss;
    socklen_t sslen;
    uint64_t now;
    int slot;

    /* Over UDP the datagram may hold padding past the data; never less. */
    if (4 + dlen > len || (a = client_alloc(s, client)) == NULL || a->tcp) {
        turn__drop(s);
        return;
    }
    now = s->io.now_ms(s->io.ctx);
    c = turn__chan_by_number(a, get16(data));
    if (c == NULL || c->expires <= now) {
        turn__drop(s);
        return;
    }
    memset(&peer, 0, sizeof(peer));
    memcpy(peer.ip, c->ip, 16);
    peer.port = c->port;
    peer.family = c->family;
    slot = turn__family_slot(peer.family);
    if (slot < 0 || a->relay[slot] < 0 || !turn__bucket_take(s, a, TURN_TO_PEER, dlen, now)) {
        turn__drop(s);
        return;
    }
    turn__addr_to_sa(&peer, &ss, &sslen);
    s->io.relay_send(s->io.ctx, a->relay[slot], (struct sockaddr *)&ss, sslen, data + 4, dlen, 0);
    relayed(s, dlen);
}

/* A peer's datagram on a relay: ChannelData on a bound channel (padded to 4
 * over streams, RFC 8656 12.5), otherwise a Data indication. */
void turn_server_on_relay(turn_server_t *s, turn_relay_t relay, const struct sockaddr *peer,
                          socklen_t peer_len, const uint8_t *data, size_t len)
{
    turn_alloc_t *a = turn__alloc_by_relay(s, relay);
    turn_client_t client;
    turn_addr_t from;
    turn_chan_t *c;
    uint64_t now;
    size_t out;

    TS_UNUSED(peer_len);
    if (a == NULL || a->tcp || turn__addr_from_sa(&from, peer) != TS_OK) {
        turn__drop(s);
        return;
    }
    now = s->io.now_ms(s->io.ctx);
    if (turn__perm_find(a, from.ip, now) == NULL ||
        !turn__bucket_take(s, a, TURN_TO_CLIENT, len, now)) {
        turn__drop(s);
        return;
    }
    c = turn__chan_by_peer(a, &from);
    if (c != NULL && c->expires > now && len <= 0xffff) {
        put16(s->scratch, c->number);
        put16(s->scratch + 2, (uint16_t)len);
        memcpy(s->scratch + 4, data, len);
        out = 4 + len;
        if (is_stream(a->tuple.transport)) {
            while (out & 3)
                s->scratch[out++] = 0;
        }
    } else {
        uint64_t r1 = turn__random(s), r2 = turn__random(s);
        uint8_t tid[12];
        stun_builder_t b;

        memcpy(tid, &r1, 8);
        memcpy(tid + 8, &r2, 4);
        /* Methods below 0x10 need no bit interleaving: Data | indication. */
        stun_build_init(&b, s->scratch, TURN_SCRATCH, STUN_DATA | STUN_INDICATION, tid);
        stun_add_addr(&b, STUN_A_XOR_PEER_ADDRESS, peer, 1);
        stun_add_attr(&b, STUN_A_DATA, data, len);
        if ((out = stun_build_finish(&b)) == 0) {
            turn__drop(s);
            return;
        }
    }
    turn__tuple_to_client(&a->tuple, &client);
    s->io.send_client(s->io.ctx, &client, s->scratch, out);
    relayed(s, len);
}
