/*
 * fuzz_turn_handler.c — the STUN/TURN engine (turn/turn.h) on arbitrary
 * traffic, with a fake clock and fake sockets, a static user (alice), and
 * loopback peers allowed.
 *
 * The input is a list of records, [op][length: 2 bytes][payload]:
 *
 *   op & 7 = 0  a packet from client (op >> 3) & 3: UDP IPv4, UDP IPv6,
 *               TCP connection 1, TCP connection 2. When op & 0x80 and the
 *               payload parses as a request, it is first re-signed as alice
 *               would sign it — USERNAME (USERHASH when op & 0x40), REALM,
 *               a fresh NONCE, MESSAGE-INTEGRITY (SHA-256 key and
 *               MESSAGE-INTEGRITY-SHA256 when op & 0x20) — so that the fuzzer
 *               gets past authentication to allocations, permissions and
 *               channels.
 *        1     a datagram from a peer: payload[0] picks the relay, payload[1]
 *               the peer address, the rest is the data
 *        2     the clock moves by the 16-bit payload x 100 ms, then a tick
 *        3     client (op >> 3) & 3 closes its connection
 *        4     a tick
 *        5     the next relay_open fails (payload[0] odd: -2, else -1)
 *        6     SIGHUP: payload[0] picks --max-bps, quotas, loopback peers
 *        7     as 0, re-signed but wrong: a stale nonce when the payload's
 *               length is odd, otherwise the wrong password
 *
 * Checked beyond crashes, leaks and sanitizer reports:
 *   - every packet to a client is a STUN message our parser accepts, or
 *     ChannelData whose length field fits (and padded to 4 over TCP);
 *   - an answer to a request carries its transaction id;
 *   - an answer to a request that was not signed, sent over UDP, is no
 *     larger than the request, or than the documented minimum of its kind;
 *   - relays: only open ones are used, and all are closed at the end.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/config.h"
#include "stun/msg.h"
#include "turn/engine.h"
#include "turn/turn.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define REALM   "example.org"
#define NRELAYS 64

typedef struct {
    uint64_t now;
    int relays[NRELAYS]; /* family when open, 0 when not */
    uint16_t next_port;
    int fail_next; /* 0, -1 or -2 */
    /* the client packet being handled */
    int in_request;
    int unsigned_udp;
    size_t req_len;
    int req_fp;
    int req_3489;
    uint8_t id[16];       /* the cookie's place and the transaction id */
    uint64_t next_handle; /* TCP relays: the last handle given out */
} fuzz_env_t;

static uint64_t f_now(void *ctx)
{
    return ((fuzz_env_t *)ctx)->now;
}

static size_t attr_size(size_t n)
{
    return 4 + ((n + 3) & ~(size_t)3);
}

/* The largest answer a request of req_len may get before authentication. */
static size_t unauth_bound(const fuzz_env_t *e, const stun_msg_t *m)
{
    size_t fp = e->req_fp ? 8 : 0, min;
    const stun_attr_t *a = stun_msg_find(m, STUN_A_ERROR_CODE);
    const char *reason;
    size_t rlen;
    int code = 0;

    if (m->cls == STUN_SUCCESS) {
        min = STUN_HEADER_LEN + 24 + fp; /* XOR-MAPPED-ADDRESS of IPv6 */
    } else {
        CHECK(a != NULL && stun_attr_error(a, &code, &reason, &rlen) == TS_OK);
        if (code == 401 || code == 438)
            min = STUN_HEADER_LEN + 8 + attr_size(strlen(REALM)) + attr_size(TURN_NONCE_LEN) + fp;
        else if (code == 420)
            min = STUN_HEADER_LEN + 8 + 8 + fp;
        else
            min = STUN_HEADER_LEN + 8 + fp;
    }
    return TS_MAX(e->req_len, min);
}

static void f_send(void *ctx, const turn_client_t *client, const uint8_t *data, size_t len)
{
    fuzz_env_t *e = ctx;
    int stream = client->transport == TURN_TRANSPORT_TCP || client->transport == TURN_TRANSPORT_TLS;
    stun_msg_t m;

    CHECK(len >= 4);
    if (data[0] >= 0x40 && data[0] <= 0x7f) {
        size_t dlen = (size_t)data[2] << 8 | data[3];
        CHECK(!e->in_request);
        CHECK(4 + dlen <= len && len - (4 + dlen) < 4);
        CHECK(stream ? len % 4 == 0 : len == 4 + dlen);
        return;
    }
    if (e->in_request && e->req_3489) {
        /* Our parser takes no classic answers: a Binding success (with
         * MAPPED-ADDRESS) or error (420), the 128-bit id back. */
        CHECK(len >= STUN_HEADER_LEN + 8 && len <= TS_MAX(e->req_len, 44));
        CHECK(data[0] == 0x01 && (data[1] == 0x01 || data[1] == 0x11));
        CHECK(((size_t)data[2] << 8 | data[3]) == len - STUN_HEADER_LEN);
        CHECK(memcmp(data + 4, e->id, 16) == 0);
        return;
    }
    CHECK(stun_msg_parse(data, len, &m) == TS_OK);
    if (!e->in_request) {
        CHECK(m.cls == STUN_INDICATION && m.method == STUN_DATA);
        CHECK(stun_msg_find(&m, STUN_A_XOR_PEER_ADDRESS) != NULL);
        CHECK(stun_msg_find(&m, STUN_A_DATA) != NULL);
        return;
    }
    CHECK(m.cls == STUN_SUCCESS || m.cls == STUN_ERROR);
    CHECK(memcmp(m.tid, e->id + 4, 12) == 0);
    if (e->unsigned_udp)
        CHECK(len <= unauth_bound(e, &m));
}

static turn_relay_t f_open(void *ctx, int family, uint16_t port, unsigned flags,
                           struct sockaddr_storage *bound, socklen_t *bound_len)
{
    fuzz_env_t *e = ctx;
    int id, rc = e->fail_next;

    CHECK(family == AF_INET || family == AF_INET6);
    e->fail_next = 0;
    if (rc != 0)
        return rc;
    for (id = 0; id < NRELAYS && e->relays[id] != 0; id++) {
    }
    if (id == NRELAYS)
        return -1;
    if (port == 0) {
        port = e->next_port;
        if ((flags & TURN_RELAY_EVEN_PORT) && (port & 1))
            port++;
        e->next_port = (uint16_t)(port + 2);
        if (e->next_port < 49152)
            e->next_port = 49152;
    }
    e->relays[id] = family;
    memset(bound, 0, sizeof(*bound));
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)bound;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        in->sin_addr.s_addr = htonl(0xc0000201);
        *bound_len = sizeof(*in);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)bound;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        in6->sin6_addr.s6_addr[0] = 0x20;
        in6->sin6_addr.s6_addr[1] = 0x01;
        in6->sin6_addr.s6_addr[15] = 1;
        *bound_len = sizeof(*in6);
    }
    return id;
}

static void f_close(void *ctx, turn_relay_t relay)
{
    fuzz_env_t *e = ctx;

    CHECK(relay >= 0 && relay < NRELAYS && e->relays[relay] != 0);
    e->relays[relay] = 0;
}

static void f_relay_send(void *ctx, turn_relay_t relay, const struct sockaddr *peer,
                         socklen_t peer_len, const uint8_t *data, size_t len, int df)
{
    fuzz_env_t *e = ctx;

    CHECK(relay >= 0 && relay < NRELAYS && e->relays[relay] == peer->sa_family);
    CHECK(peer_len > 0 && (len == 0 || data != NULL));
    (void)df;
}

static int f_tcp_connect(void *ctx, turn_relay_t relay, const struct sockaddr *peer,
                         socklen_t peer_len, uint64_t *handle)
{
    fuzz_env_t *e = ctx;

    CHECK(relay >= 0 && relay < NRELAYS && e->relays[relay] == peer->sa_family && peer_len > 0);
    if (e->fail_next != 0) {
        e->fail_next = 0;
        return -1;
    }
    *handle = ++e->next_handle;
    return 0;
}

static void f_tcp_close(void *ctx, uint64_t handle)
{
    fuzz_env_t *e = ctx;

    CHECK(handle != 0 && handle <= e->next_handle + 0x10000);
}

static void f_tcp_splice(void *ctx, uint64_t data, uint64_t peer)
{
    CHECK(data != 0 && peer != 0 && data != peer);
    (void)ctx;
}

/* The glue's reports on TCP relays, chosen by the fuzzer's bytes. */
static void tcp_event(fuzz_env_t *e, turn_server_t *s, const uint8_t *p, size_t n)
{
    uint64_t handle = n >= 2 ? (e->next_handle > 0 ? p[1] % e->next_handle + 1 : 1) : 1;

    if (n < 2)
        return;
    switch (p[0] & 3) {
    case 0:
        turn_server_on_tcp_connected(s, handle, p[0] & 4);
        break;
    case 1: {
        struct sockaddr_in in;
        memset(&in, 0, sizeof(in));
        in.sin_family = AF_INET;
        in.sin_port = htons(40000);
        in.sin_addr.s_addr = htonl(0x7f000001u + (p[1] & 3));
        turn_server_on_tcp_accept(s, p[1] % NRELAYS, (struct sockaddr *)&in,
                                  0x10000 + ++e->next_handle);
        break;
    }
    default:
        turn_server_on_tcp_closed(s, handle);
        break;
    }
}

static void make_addr(struct sockaddr_storage *ss, socklen_t *len, const char *ip, uint16_t port)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        inet_pton(AF_INET6, ip, &in6->sin6_addr);
        *len = sizeof(*in6);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        inet_pton(AF_INET, ip, &in->sin_addr);
        *len = sizeof(*in);
    }
}

static turn_client_t make_client(unsigned i)
{
    static const char *ips[4] = {"198.51.100.7", "2001:db8::7", "198.51.100.8", "198.51.100.9"};
    turn_client_t c;

    memset(&c, 0, sizeof(c));
    c.transport = i < 2 ? TURN_TRANSPORT_UDP : TURN_TRANSPORT_TCP;
    make_addr(&c.peer, &c.peer_len, ips[i], (uint16_t)(40000 + i));
    make_addr(&c.local, &c.local_len, i == 1 ? "2001:db8::1" : "192.0.2.1", 3478);
    c.conn_id = i < 2 ? 0 : i;
    c.sock = i < 2 ? 3 : -1;
    return c;
}

/* The request in, re-signed by alice: its length, or 0 when it is none. */
static size_t resign(turn_server_t *s, const uint8_t *in, size_t n, uint8_t *out, size_t cap,
                     unsigned op, uint64_t now, const char *pass)
{
    static const uint8_t algs[8] = {0, 1, 0, 0, 0, 2, 0, 0};
    int sha = (op & 0x20) != 0, userhash = (op & 0x40) != 0;
    char nonce[TURN_NONCE_LEN + 1];
    uint8_t key[32], h[32];
    stun_builder_t b;
    stun_msg_t m;

    if (stun_msg_parse(in, n, &m) != TS_OK || m.cls != STUN_REQUEST || m.rfc3489)
        return 0;
    stun_build_init(&b, out, cap, m.type, m.tid);
    for (unsigned i = 0; i < m.nattrs; i++) {
        switch (m.attrs[i].type) {
        case STUN_A_USERNAME:
        case STUN_A_USERHASH:
        case STUN_A_REALM:
        case STUN_A_NONCE:
        case STUN_A_MESSAGE_INTEGRITY:
        case STUN_A_MESSAGE_INTEGRITY_SHA256:
        case STUN_A_FINGERPRINT:
        case STUN_A_PASSWORD_ALGORITHM:
        case STUN_A_PASSWORD_ALGORITHMS:
            continue;
        default:
            stun_add_attr(&b, m.attrs[i].type, m.attrs[i].value, m.attrs[i].len);
        }
    }
    if (userhash) {
        stun_userhash("alice", 5, REALM, strlen(REALM), h);
        stun_add_attr(&b, STUN_A_USERHASH, h, 32);
    } else {
        stun_add_attr(&b, STUN_A_USERNAME, "alice", 5);
    }
    stun_add_attr(&b, STUN_A_REALM, REALM, strlen(REALM));
    turn_nonce_make(turn__shared_auth(s->shared), now, nonce, sizeof(nonce));
    stun_add_attr(&b, STUN_A_NONCE, nonce, strlen(nonce));
    if (sha) {
        stun_add_u32(&b, STUN_A_PASSWORD_ALGORITHM, (uint32_t)STUN_PWALG_SHA256 << 16);
        stun_add_attr(&b, STUN_A_PASSWORD_ALGORITHMS, algs, sizeof(algs));
        stun_long_term_key_sha256("alice", 5, REALM, strlen(REALM), pass, strlen(pass), key);
        stun_add_integrity_sha256(&b, key, 32);
    } else {
        stun_long_term_key_md5("alice", 5, REALM, strlen(REALM), pass, strlen(pass), key);
        stun_add_integrity(&b, key, 16);
    }
    if (op & 0x18)
        stun_add_fingerprint(&b);
    return stun_build_finish(&b);
}

static void client_packet(fuzz_env_t *e, turn_server_t *s, unsigned op, const uint8_t *p, size_t n)
{
    static uint8_t signed_buf[4096];
    turn_client_t c = make_client((op >> 3) & 3);
    int wrong = (op & 7) == 7;
    uint64_t when = wrong && (n & 1) && e->now > 700000 ? e->now - 700000 : e->now;
    const char *pass = wrong && !(n & 1) ? "hatter" : "wonderland";
    stun_msg_t m;
    size_t len;

    if ((op & 0x80 || wrong) &&
        (len = resign(s, p, n, signed_buf, sizeof(signed_buf), op, when, pass)) > 0) {
        p = signed_buf;
        n = len;
        op |= 0x80;
    } else {
        op &= 0x7f;
    }
    e->in_request = 0;
    if (stun_msg_parse(p, n, &m) == TS_OK && m.cls == STUN_REQUEST) {
        e->in_request = 1;
        e->unsigned_udp = !(op & 0x80) && c.transport == TURN_TRANSPORT_UDP;
        e->req_len = n;
        e->req_fp = m.fingerprint >= 0;
        e->req_3489 = m.rfc3489;
        memcpy(e->id, p + 4, 16);
    }
    turn_server_on_client(s, &c, p, n);
    e->in_request = 0;
}

static void peer_packet(fuzz_env_t *e, turn_server_t *s, const uint8_t *p, size_t n)
{
    static const char *peers[] = {"203.0.113.5", "203.0.113.6", "127.0.0.1", "2001:db8::5",
                                  "10.0.0.1"};
    static const uint16_t ports[] = {6000, 6001, 7000, 1, 40000};
    struct sockaddr_storage ss;
    socklen_t sl;
    int relay;

    if (n < 2)
        return;
    relay = p[0] % NRELAYS;
    make_addr(&ss, &sl, peers[p[1] % TS_ARRAY_SIZE(peers)],
              ports[(p[1] / TS_ARRAY_SIZE(peers)) % TS_ARRAY_SIZE(ports)]);
    /* The glue only reads relays it opened, with peers of their family. */
    if (e->relays[relay] == 0)
        return;
    if (e->relays[relay] != ss.ss_family)
        return;
    turn_server_on_relay(s, relay, (struct sockaddr *)&ss, sl, p + 2, n - 2);
}

static void reconfigure(turn_server_t *s, ts_config_t *cfg, uint8_t v)
{
    static const unsigned bps[4] = {0, 1000, 64000, 1};

    cfg->max_bps = bps[v & 3];
    cfg->user_quota = (v >> 2) & 3;
    cfg->total_quota = (v >> 4) & 3;
    cfg->allow_loopback_peers = !(v & 0x40);
    turn_server_set_config(s, cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ts_user_t users[1] = {{"alice", "wonderland"}};
    ts_config_t cfg;
    turn_io_t io;
    fuzz_env_t e;
    turn_server_t *s;
    size_t off = 0;

    memset(&cfg, 0, sizeof(cfg));
    cfg.realm = REALM;
    cfg.users = users;
    cfg.nusers = 1;
    cfg.static_auth_secret = "s3cret";
    cfg.min_port = 49152;
    cfg.max_port = 65535;
    cfg.allow_loopback_peers = 1;
    memset(&e, 0, sizeof(e));
    e.now = 1000000;
    e.next_port = 50000;
    memset(&io, 0, sizeof(io));
    io.ctx = &e;
    io.now_ms = f_now;
    io.send_client = f_send;
    io.relay_open = f_open;
    io.relay_close = f_close;
    io.relay_send = f_relay_send;
    io.tcp_connect = f_tcp_connect;
    io.tcp_close = f_tcp_close;
    io.tcp_splice = f_tcp_splice;
    s = turn_server_new(&cfg, &io);

    while (off + 3 <= size) {
        unsigned op = data[off];
        size_t n = (size_t)data[off + 1] << 8 | data[off + 2];
        const uint8_t *p = data + off + 3;

        if (n > size - off - 3)
            n = size - off - 3;
        off += 3 + n;
        switch (op & 7) {
        case 0:
        case 7:
            client_packet(&e, s, op, p, n);
            break;
        case 1:
            peer_packet(&e, s, p, n);
            break;
        case 2:
            e.now += (n >= 2 ? (uint64_t)(p[0] << 8 | p[1]) : 1) * 100;
            turn_server_tick(s);
            break;
        case 3: {
            turn_client_t c = make_client((op >> 3) & 3);
            if (c.transport != TURN_TRANSPORT_UDP)
                turn_server_on_client_closed(s, &c);
            break;
        }
        case 4:
            if (n >= 2)
                tcp_event(&e, s, p, n);
            turn_server_tick(s);
            break;
        case 5:
            e.fail_next = n > 0 && (p[0] & 1) ? -2 : -1;
            break;
        case 6:
            reconfigure(s, &cfg, n > 0 ? p[0] : 0);
            break;
        default:
            break;
        }
        CHECK(turn_server_stats(s)->allocations <= turn_server_stats(s)->allocations_total);
        {
            int t = turn_server_next_timeout(s);
            CHECK(t >= -1);
        }
    }
    turn_server_free(s);
    for (int i = 0; i < NRELAYS; i++)
        CHECK(e.relays[i] == 0);
    return 0;
}
