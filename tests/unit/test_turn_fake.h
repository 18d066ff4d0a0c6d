/*
 * test_turn_fake.h — what the TURN engine tests share: a fake clock, fake
 * sockets (a turn_io_t that records every answer, every relay it opens and
 * closes, every datagram it relays), a configuration with a static user and
 * a REST secret, and a client side built on the STUN codec — messages are
 * signed with keys computed as a client computes them.
 *
 * Included by test_turn_*.c (each test file is its own program).
 */
#ifndef TEST_TURN_FAKE_H
#define TEST_TURN_FAKE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "core/config.h"
#include "stun/msg.h"
#include "turn/auth.h"
#include "turn/turn.h"

/* Each test file uses its own share of the helpers. */
#pragma GCC diagnostic ignored "-Wunused-function"

#define REALM   "example.org"
#define SECRET  "s3cret"
#define MAXSENT 256
#define MAXDATA 2048
#define NRELAYS 256

typedef struct {
    turn_client_t client;
    size_t len;
    uint8_t data[MAXDATA];
} sent_t;

typedef struct {
    turn_relay_t relay;
    struct sockaddr_storage peer;
    size_t len;
    uint8_t data[MAXDATA];
    int df;
} relayed_t;

typedef struct {
    int open;
    int family;
    uint16_t port;
    unsigned flags;
} fake_relay_t;

typedef struct {
    turn_server_t *s;
    ts_config_t cfg;
    ts_user_t users[2];
    uint64_t now;
    int64_t unix_now;
    sent_t sent[MAXSENT];
    unsigned nsent;
    relayed_t rel[MAXSENT];
    unsigned nrel;
    fake_relay_t relays[NRELAYS];
    unsigned nopened, nclosed;
    uint16_t next_port;
    int fail_family;         /* relay_open fails for this family (0: none) */
    int fail_rc;             /* ... returning this (-1 or -2) */
    uint16_t last_open_port; /* the port argument of the last relay_open */
    turn_relay_t last_relay; /* what the last successful relay_open returned */
    uint32_t tid_counter;
    /* TCP relays */
    uint64_t next_handle; /* the last tcp_connect handle */
    struct sockaddr_storage connect_peer;
    int connect_fail;        /* tcp_connect fails at once */
    uint64_t closed_tcp[32]; /* tcp_close handles, in order */
    unsigned nclosed_tcp;
    uint64_t splice_data, splice_peer;
    /* EVEN-PORT: ports held for reservations (port_hold handle = index) */
    struct {
        int family;
        uint16_t port;
        int held; /* 1 until port_release */
    } holds[16];
    unsigned nholds;
    int hold_fail; /* port_hold finds the port taken */
} env_t;

static env_t *E;

/* ---------------------------------------------------------- the fakes -- */

static uint64_t fake_now(void *ctx)
{
    return ((env_t *)ctx)->now;
}

static int64_t fake_unix(void *ctx)
{
    return ((env_t *)ctx)->unix_now;
}

static void fake_send(void *ctx, const turn_client_t *client, const uint8_t *data, size_t len)
{
    env_t *e = ctx;
    sent_t *s;

    assert_true(e->nsent < MAXSENT);
    assert_true(len <= MAXDATA);
    s = &e->sent[e->nsent++];
    s->client = *client;
    s->len = len;
    memcpy(s->data, data, len);
}

static turn_relay_t fake_open(void *ctx, int family, uint16_t port, unsigned flags,
                              struct sockaddr_storage *bound, socklen_t *bound_len)
{
    env_t *e = ctx;
    int id;

    e->last_open_port = port;
    if (e->fail_family == family)
        return e->fail_rc;
    for (id = 0; id < NRELAYS && e->relays[id].open; id++) {
    }
    assert_true(id < NRELAYS);
    if (port == 0) {
        port = e->next_port;
        if ((flags & TURN_RELAY_EVEN_PORT) && (port & 1))
            port++;
        e->next_port = (uint16_t)(port + ((flags & TURN_RELAY_RESERVE_NEXT) ? 2 : 1));
    }
    e->relays[id].open = 1;
    e->relays[id].family = family;
    e->relays[id].port = port;
    e->relays[id].flags = flags;
    e->nopened++;
    e->last_relay = id;
    memset(bound, 0, sizeof(*bound));
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)bound;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        inet_pton(AF_INET, "192.0.2.1", &in->sin_addr);
        *bound_len = sizeof(*in);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)bound;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        inet_pton(AF_INET6, "2001:db8::1", &in6->sin6_addr);
        *bound_len = sizeof(*in6);
    }
    return id;
}

static void fake_close(void *ctx, turn_relay_t relay)
{
    env_t *e = ctx;

    assert_true(relay >= 0 && relay < NRELAYS);
    assert_true(e->relays[relay].open);
    e->relays[relay].open = 0;
    e->nclosed++;
}

static void fake_relay_send(void *ctx, turn_relay_t relay, const struct sockaddr *peer,
                            socklen_t peer_len, const uint8_t *data, size_t len, int df)
{
    env_t *e = ctx;
    relayed_t *r;

    assert_true(relay >= 0 && relay < NRELAYS && e->relays[relay].open);
    assert_true(e->nrel < MAXSENT && len <= MAXDATA);
    r = &e->rel[e->nrel++];
    r->relay = relay;
    memset(&r->peer, 0, sizeof(r->peer));
    memcpy(&r->peer, peer, peer_len);
    r->len = len;
    memcpy(r->data, data, len);
    r->df = df;
}

static int fake_port_hold(void *ctx, int family, uint16_t port)
{
    env_t *e = ctx;

    assert_true(e->nholds < 16);
    if (e->hold_fail)
        return -1;
    e->holds[e->nholds].family = family;
    e->holds[e->nholds].port = port;
    e->holds[e->nholds].held = 1;
    return (int)e->nholds++;
}

/* ctx may be NULL (turn_shared_free): the fake reaches its state through E. */
static void fake_port_release(void *ctx, int handle)
{
    TS_UNUSED(ctx);
    assert_true(handle >= 0 && (unsigned)handle < E->nholds);
    assert_true(E->holds[handle].held); /* released once */
    E->holds[handle].held = 0;
}

static unsigned held_ports(void)
{
    unsigned n = 0;

    for (unsigned i = 0; i < E->nholds; i++)
        n += (unsigned)E->holds[i].held;
    return n;
}

static int fake_tcp_connect(void *ctx, turn_relay_t relay, const struct sockaddr *peer,
                            socklen_t peer_len, uint64_t *handle)
{
    env_t *e = ctx;

    assert_true(relay >= 0 && relay < NRELAYS && e->relays[relay].open);
    assert_true(e->relays[relay].flags & TURN_RELAY_TCP);
    memset(&e->connect_peer, 0, sizeof(e->connect_peer));
    memcpy(&e->connect_peer, peer, peer_len);
    if (e->connect_fail)
        return -1;
    *handle = ++e->next_handle;
    return 0;
}

static void fake_tcp_close(void *ctx, uint64_t handle)
{
    env_t *e = ctx;

    assert_true(e->nclosed_tcp < 32);
    e->closed_tcp[e->nclosed_tcp++] = handle;
}

static void fake_tcp_splice(void *ctx, uint64_t data, uint64_t peer)
{
    env_t *e = ctx;

    e->splice_data = data;
    e->splice_peer = peer;
}

static int tcp_closed(uint64_t handle)
{
    for (unsigned i = 0; i < E->nclosed_tcp; i++) {
        if (E->closed_tcp[i] == handle)
            return 1;
    }
    return 0;
}

static unsigned open_relays(void)
{
    unsigned n = 0;

    for (int i = 0; i < NRELAYS; i++)
        n += (unsigned)E->relays[i].open;
    return n;
}

static int env_setup(void **state)
{
    turn_io_t io = {0};

    E = calloc(1, sizeof(*E));
    E->users[0].name = "alice";
    E->users[0].pass = "wonderland";
    E->users[1].name = "bob";
    E->users[1].pass = "builder";
    E->cfg.realm = REALM;
    E->cfg.users = E->users;
    E->cfg.nusers = 2;
    E->cfg.static_auth_secret = SECRET;
    E->cfg.min_port = 49152;
    E->cfg.max_port = 65535;
    E->cfg.allow_loopback_peers = 1;
    E->cfg.stale_nonce = 600;
    E->now = 1000000;
    E->unix_now = 1700000000;
    E->next_port = 50000;
    io.ctx = E;
    io.now_ms = fake_now;
    io.now_unix = fake_unix;
    io.send_client = fake_send;
    io.relay_open = fake_open;
    io.relay_close = fake_close;
    io.relay_send = fake_relay_send;
    io.tcp_connect = fake_tcp_connect;
    io.tcp_close = fake_tcp_close;
    io.tcp_splice = fake_tcp_splice;
    io.port_hold = fake_port_hold;
    io.port_release = fake_port_release;
    E->s = turn_server_new(&E->cfg, &io);
    *state = E;
    return 0;
}

static int env_teardown(void **state)
{
    turn_server_free(E->s);
    /* Every relay the engine opened, it closed. */
    assert_int_equal(open_relays(), 0);
    assert_int_equal(E->nopened, E->nclosed);
    /* ... and every port it held for a reservation, it let go of. */
    assert_int_equal(held_ports(), 0);
    free(E);
    E = NULL;
    *state = NULL;
    return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, env_setup, env_teardown)

static void advance(uint64_t ms)
{
    E->now += ms;
    turn_server_tick(E->s);
}

static void forget(void)
{
    E->nsent = 0;
    E->nrel = 0;
}

/* ------------------------------------------------------------ clients -- */

static void make_addr(struct sockaddr_storage *ss, socklen_t *len, const char *ip, uint16_t port)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
        *len = sizeof(*in6);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
        *len = sizeof(*in);
    }
}

static turn_client_t client_of(int transport, const char *ip, uint16_t port, uint64_t conn)
{
    turn_client_t c;

    memset(&c, 0, sizeof(c));
    c.transport = transport;
    make_addr(&c.peer, &c.peer_len, ip, port);
    make_addr(&c.local, &c.local_len, strchr(ip, ':') ? "2001:db8::1" : "192.0.2.1", 3478);
    c.conn_id = conn;
    c.sock = transport == TURN_TRANSPORT_UDP ? 7 : -1;
    return c;
}

static turn_client_t udp(const char *ip, uint16_t port)
{
    return client_of(TURN_TRANSPORT_UDP, ip, port, 0);
}

/* ----------------------------------------------------------- messages -- */

typedef struct {
    uint8_t buf[2048];
    stun_builder_t b;
    uint8_t tid[12];
    size_t len;
} msg_t;

static uint16_t type_of(uint16_t method, uint16_t cls)
{
    return (uint16_t)(method | cls); /* methods below 0x10 */
}

static void msg_start(msg_t *q, uint16_t method, uint16_t cls)
{
    uint32_t n = ++E->tid_counter;

    memset(q->tid, 0x5a, sizeof(q->tid));
    memcpy(q->tid, &n, sizeof(n));
    q->len = 0;
    stun_build_init(&q->b, q->buf, sizeof(q->buf), type_of(method, cls), q->tid);
}

static void msg_u32(msg_t *q, uint16_t type, uint32_t v)
{
    stun_add_u32(&q->b, type, v);
}

static void msg_transport(msg_t *q, uint8_t proto)
{
    msg_u32(q, STUN_A_REQUESTED_TRANSPORT, (uint32_t)proto << 24);
}

static void msg_peer(msg_t *q, const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    socklen_t len;

    make_addr(&ss, &len, ip, port);
    stun_add_addr(&q->b, STUN_A_XOR_PEER_ADDRESS, (struct sockaddr *)&ss, 1);
}

static void msg_str(msg_t *q, uint16_t type, const char *s)
{
    stun_add_attr(&q->b, type, s, strlen(s));
}

static void key_md5(const char *user, const char *pass, uint8_t key[16])
{
    stun_long_term_key_md5(user, strlen(user), REALM, strlen(REALM), pass, strlen(pass), key);
}

static void key_sha256(const char *user, const char *pass, uint8_t key[32])
{
    stun_long_term_key_sha256(user, strlen(user), REALM, strlen(REALM), pass, strlen(pass), key);
}

/* USERNAME, REALM, NONCE and MESSAGE-INTEGRITY, as a client adds them. */
static void msg_sign(msg_t *q, const char *user, const char *pass, const char *nonce)
{
    uint8_t key[16];

    msg_str(q, STUN_A_USERNAME, user);
    msg_str(q, STUN_A_REALM, REALM);
    msg_str(q, STUN_A_NONCE, nonce);
    key_md5(user, pass, key);
    stun_add_integrity(&q->b, key, sizeof(key));
}

static size_t msg_finish(msg_t *q)
{
    q->len = stun_build_finish(&q->b);
    assert_true(q->len > 0);
    return q->len;
}

static void send_msg(const turn_client_t *c, msg_t *q)
{
    if (q->len == 0)
        msg_finish(q);
    turn_server_on_client(E->s, c, q->buf, q->len);
}

/* ---------------------------------------------------------- answers -- */

static const sent_t *last_sent(void)
{
    assert_true(E->nsent > 0);
    return &E->sent[E->nsent - 1];
}

/* The last answer, parsed; it must be a well-formed STUN message. */
static void last_msg(stun_msg_t *m)
{
    const sent_t *s = last_sent();

    assert_int_equal(stun_msg_parse(s->data, s->len, m), TS_OK);
}

/* 0 for a success answer, the code of an error answer. */
static int code_of(const stun_msg_t *m)
{
    const stun_attr_t *a;
    const char *reason;
    size_t rlen;
    int code;

    if (m->cls == STUN_SUCCESS)
        return 0;
    assert_int_equal(m->cls, STUN_ERROR);
    a = stun_msg_find(m, STUN_A_ERROR_CODE);
    assert_non_null(a);
    assert_int_equal(stun_attr_error(a, &code, &reason, &rlen), TS_OK);
    return code;
}

static int last_code(void)
{
    stun_msg_t m;

    last_msg(&m);
    return code_of(&m);
}

static void copy_attr_str(const stun_msg_t *m, uint16_t type, char *out, size_t cap)
{
    const stun_attr_t *a = stun_msg_find(m, type);

    assert_non_null(a);
    assert_true(a->len < cap);
    memcpy(out, a->value, a->len);
    out[a->len] = '\0';
}

static uint32_t attr_u32(const stun_msg_t *m, uint16_t type)
{
    const stun_attr_t *a = stun_msg_find(m, type);
    uint32_t v;

    assert_non_null(a);
    assert_int_equal(stun_attr_u32(a, &v), TS_OK);
    return v;
}

static uint16_t addr_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family || addr_port(a) != addr_port(b))
        return 0;
    if (a->ss_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                      &((const struct sockaddr_in *)b)->sin_addr, 4) == 0;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

/* A fresh nonce: the 401 to an Allocate without credentials. */
static void fetch_nonce(const turn_client_t *c, char *nonce, size_t cap)
{
    msg_t q;
    stun_msg_t m;

    msg_start(&q, STUN_ALLOCATE, STUN_REQUEST);
    msg_transport(&q, 17);
    send_msg(c, &q);
    last_msg(&m);
    assert_int_equal(code_of(&m), 401);
    copy_attr_str(&m, STUN_A_NONCE, nonce, cap);
}

/* An authenticated request as alice: start, fill with add, sign, send.
 * Returns the answer's code (0: success) and leaves it in *m. */
typedef void (*fill_fn)(msg_t *q, void *arg);

static int request_as(const turn_client_t *c, uint16_t method, fill_fn fill, void *arg,
                      const char *user, const char *pass, stun_msg_t *m, msg_t *keep)
{
    char nonce[64];
    msg_t q, *p = keep != NULL ? keep : &q;
    unsigned before;

    fetch_nonce(c, nonce, sizeof(nonce));
    msg_start(p, method, STUN_REQUEST);
    if (fill != NULL)
        fill(p, arg);
    msg_sign(p, user, pass, nonce);
    stun_add_fingerprint(&p->b);
    before = E->nsent;
    send_msg(c, p);
    assert_int_equal(E->nsent, before + 1);
    last_msg(m);
    assert_memory_equal(m->tid, p->tid, 12);
    return code_of(m);
}

static int request(const turn_client_t *c, uint16_t method, fill_fn fill, void *arg, stun_msg_t *m)
{
    return request_as(c, method, fill, arg, "alice", "wonderland", m, NULL);
}

static void fill_udp(msg_t *q, void *arg)
{
    (void)arg;
    msg_transport(q, 17);
}

/* Allocate a UDP relay for c as alice: the relay handle (asserts success). */
static turn_relay_t allocate(const turn_client_t *c)
{
    stun_msg_t m;
    uint8_t key[16];
    unsigned opened = E->nopened;

    assert_int_equal(request(c, STUN_ALLOCATE, fill_udp, NULL, &m), 0);
    key_md5("alice", "wonderland", key);
    assert_int_equal(stun_check_integrity(&m, key, sizeof(key)), 1);
    assert_int_equal(E->nopened, opened + 1);
    return E->last_relay;
}

#endif
