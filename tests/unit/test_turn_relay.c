/*
 * test_turn_relay.c — permissions, channels and the data path of the TURN
 * engine, with the fake clock and sockets of test_turn_fake.h:
 * CreatePermission (peer filter 403, family 443, all-or-none), ChannelBind
 * (number range, rebinding rules, cool-down), Send and Data indications,
 * ChannelData both ways and its padding over streams, lifetimes of
 * permissions (300 s) and channels (600 s), --max-bps, SIGHUP's peer filter.
 */
#include "test_turn_fake.h"

#define PEER  "203.0.113.5"
#define PEER2 "203.0.113.6"

static void fill_peers(msg_t *q, void *arg)
{
    for (const char **p = arg; *p != NULL; p++)
        msg_peer(q, *p, 1);
}

static int permit(const turn_client_t *c, const char *ip)
{
    const char *peers[] = {ip, NULL};
    stun_msg_t m;

    return request(c, STUN_CREATE_PERMISSION, fill_peers, peers, &m);
}

typedef struct {
    uint16_t number;
    const char *ip;
    uint16_t port;
} bind_t;

static void fill_bind(msg_t *q, void *arg)
{
    const bind_t *b = arg;

    if (b->number != 0)
        msg_u32(q, STUN_A_CHANNEL_NUMBER, (uint32_t)b->number << 16);
    if (b->ip != NULL)
        msg_peer(q, b->ip, b->port);
}

static int bind_channel(const turn_client_t *c, uint16_t number, const char *ip, uint16_t port)
{
    bind_t b = {number, ip, port};
    stun_msg_t m;

    return request(c, STUN_CHANNEL_BIND, fill_bind, &b, &m);
}

/* A datagram from a peer to a relay. */
static void from_peer(turn_relay_t relay, const char *ip, uint16_t port, const void *data,
                      size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl;

    make_addr(&ss, &sl, ip, port);
    turn_server_on_relay(E->s, relay, (struct sockaddr *)&ss, sl, data, len);
}

static void send_indication(const turn_client_t *c, const char *ip, uint16_t port, const char *data,
                            int df)
{
    msg_t q;

    msg_start(&q, STUN_SEND, STUN_INDICATION);
    msg_peer(&q, ip, port);
    if (data != NULL)
        msg_str(&q, STUN_A_DATA, data);
    if (df)
        stun_add_attr(&q.b, STUN_A_DONT_FRAGMENT, NULL, 0);
    send_msg(c, &q);
}

static void channel_data(const turn_client_t *c, uint16_t number, const char *data, size_t pad)
{
    uint8_t buf[256];
    size_t n = strlen(data);

    buf[0] = (uint8_t)(number >> 8);
    buf[1] = (uint8_t)number;
    buf[2] = (uint8_t)(n >> 8);
    buf[3] = (uint8_t)n;
    memcpy(buf + 4, data, n);
    memset(buf + 4 + n, 0, pad);
    turn_server_on_client(E->s, c, buf, 4 + n + pad);
}

/* The last answer is a Data indication from ip:port carrying data. */
static void expect_data_indication(const turn_client_t *c, const char *ip, uint16_t port,
                                   const char *data)
{
    struct sockaddr_storage want, got;
    socklen_t len;
    const stun_attr_t *d;
    stun_msg_t m;

    last_msg(&m);
    assert_true(same_addr(&last_sent()->client.peer, &c->peer));
    assert_int_equal(m.method, STUN_DATA);
    assert_int_equal(m.cls, STUN_INDICATION);
    make_addr(&want, &len, ip, port);
    assert_int_equal(stun_attr_addr(&m, stun_msg_find(&m, STUN_A_XOR_PEER_ADDRESS), 1, &got, &len),
                     TS_OK);
    assert_true(same_addr(&got, &want));
    d = stun_msg_find(&m, STUN_A_DATA);
    assert_non_null(d);
    assert_int_equal(d->len, strlen(data));
    assert_memory_equal(d->value, data, d->len);
}

static void expect_relayed(turn_relay_t relay, const char *ip, uint16_t port, const char *data)
{
    struct sockaddr_storage want;
    socklen_t len;
    const relayed_t *r;

    assert_true(E->nrel > 0);
    r = &E->rel[E->nrel - 1];
    make_addr(&want, &len, ip, port);
    assert_int_equal(r->relay, relay);
    assert_true(same_addr(&r->peer, &want));
    assert_int_equal(r->len, strlen(data));
    assert_memory_equal(r->data, data, r->len);
}

/* --------------------------------------------------- CreatePermission -- */

static void test_permission_and_data_indication(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    turn_relay_t relay = allocate(&c);
    stun_msg_t m;

    forget();
    from_peer(relay, PEER, 6000, "early", 5);
    assert_int_equal(E->nsent, 0);
    assert_int_equal(turn_server_stats(E->s)->dropped, 1);

    assert_int_equal(permit(&c, PEER), 0);
    last_msg(&m);
    assert_true(m.integrity >= 0);
    assert_null(stun_msg_find(&m, STUN_A_LIFETIME));
    forget();
    /* The permission is for the IP: any port of it. */
    from_peer(relay, PEER, 6000, "hello", 5);
    assert_int_equal(E->nsent, 1);
    expect_data_indication(&c, PEER, 6000, "hello");
    from_peer(relay, PEER, 9, "x", 1);
    expect_data_indication(&c, PEER, 9, "x");
    from_peer(relay, PEER2, 6000, "no", 2);
    assert_int_equal(E->nsent, 2);
    assert_int_equal(turn_server_stats(E->s)->relayed_packets, 2);
    assert_int_equal(turn_server_stats(E->s)->relayed_bytes, 6);
    /* A relay handle the engine does not know. */
    from_peer(relay + 1, PEER, 6000, "stray", 5);
    assert_int_equal(E->nsent, 2);
}

static void test_send_indication(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000), stranger = udp("198.51.100.8", 40000);
    turn_relay_t relay = allocate(&c);
    msg_t q;

    assert_int_equal(permit(&c, PEER), 0);
    forget();
    send_indication(&c, PEER, 7000, "ping", 1);
    assert_int_equal(E->nrel, 1);
    expect_relayed(relay, PEER, 7000, "ping");
    assert_int_equal(E->rel[0].df, 1);
    send_indication(&c, PEER, 7001, "pong", 0);
    expect_relayed(relay, PEER, 7001, "pong");
    assert_int_equal(E->rel[1].df, 0);
    assert_int_equal(E->nsent, 0); /* indications are never answered */

    send_indication(&c, PEER2, 7000, "nope", 0);      /* no permission */
    send_indication(&c, PEER, 7000, NULL, 0);         /* no DATA */
    send_indication(&c, "2001:db8::5", 7000, "6", 0); /* no IPv6 relay */
    send_indication(&stranger, PEER, 7000, "who", 0); /* no allocation */
    msg_start(&q, STUN_SEND, STUN_INDICATION);        /* no XOR-PEER-ADDRESS */
    msg_str(&q, STUN_A_DATA, "d");
    send_msg(&c, &q);
    assert_int_equal(E->nrel, 2);
    assert_int_equal(E->nsent, 0);
    assert_int_equal(turn_server_stats(E->s)->dropped, 5);
}

static void test_create_permission_errors(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    turn_relay_t relay = allocate(&c);
    const char *two[] = {PEER, "10.1.2.3", NULL};
    const char *many[] = {PEER, PEER2, "2001:db8::1", NULL};
    stun_msg_t m;

    assert_int_equal(permit(&c, "127.0.0.1"), 0); /* allow_loopback_peers */
    E->cfg.allow_loopback_peers = 0;
    assert_int_equal(permit(&c, "127.0.0.2"), 403);
    assert_int_equal(permit(&c, "10.0.0.1"), 403);
    assert_int_equal(permit(&c, "169.254.169.254"), 403);
    /* Written by the client as the IPv4 address it is, then denied as such. */
    assert_int_equal(permit(&c, "::ffff:127.0.0.1"), 403);
    assert_int_equal(permit(&c, "2001:db8::5"), 443);
    assert_int_equal(request(&c, STUN_CREATE_PERMISSION, NULL, NULL, &m), 400);
    /* All or none: one denied peer, nothing installed. */
    assert_int_equal(request(&c, STUN_CREATE_PERMISSION, fill_peers, two, &m), 403);
    assert_int_equal(request(&c, STUN_CREATE_PERMISSION, fill_peers, many, &m), 443);
    forget();
    from_peer(relay, PEER, 6000, "x", 1);
    from_peer(relay, PEER2, 6000, "x", 1);
    assert_int_equal(E->nsent, 0);
    /* Several at once. */
    many[2] = NULL;
    assert_int_equal(request(&c, STUN_CREATE_PERMISSION, fill_peers, many, &m), 0);
    forget();
    from_peer(relay, PEER, 6000, "x", 1);
    from_peer(relay, PEER2, 6000, "x", 1);
    assert_int_equal(E->nsent, 2);
}

static void test_create_permission_ipv6(void **state)
{
    static const char *v6[] = {"2001:db8:99::1", NULL};
    turn_client_t c = udp("2001:db8:1::7", 40000);
    struct sockaddr_storage got;
    socklen_t len;
    char nonce[64];
    stun_msg_t m;
    msg_t q;

    assert_int_equal(request(&c, STUN_CREATE_PERMISSION, NULL, NULL, &m), 437);
    fetch_nonce(&c, nonce, sizeof(nonce));
    msg_start(&q, STUN_ALLOCATE, STUN_REQUEST);
    msg_transport(&q, 17);
    msg_u32(&q, STUN_A_REQUESTED_ADDRESS_FAMILY, 2u << 24);
    msg_sign(&q, "alice", "wonderland", nonce);
    send_msg(&c, &q);
    assert_int_equal(last_code(), 0);
    assert_int_equal(permit(&c, PEER), 443);
    assert_int_equal(request(&c, STUN_CREATE_PERMISSION, fill_peers, (void *)v6, &m), 0);
    forget();
    from_peer(E->last_relay, "2001:db8:99::1", 5555, "six", 3);
    expect_data_indication(&c, "2001:db8:99::1", 5555, "six");
    last_msg(&m);
    assert_int_equal(stun_attr_addr(&m, stun_msg_find(&m, STUN_A_XOR_PEER_ADDRESS), 1, &got, &len),
                     TS_OK);
    assert_int_equal(got.ss_family, AF_INET6);
}

static void test_permission_lifetime(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    turn_relay_t relay = allocate(&c);

    assert_int_equal(permit(&c, PEER), 0);
    advance(200 * 1000);
    assert_int_equal(permit(&c, PEER), 0); /* refreshed: now until 500 s */
    advance(299 * 1000);
    forget();
    from_peer(relay, PEER, 6000, "still", 5);
    assert_int_equal(E->nsent, 1);
    advance(1000);
    forget();
    from_peer(relay, PEER, 6000, "gone", 4);
    send_indication(&c, PEER, 6000, "gone", 0);
    assert_int_equal(E->nsent, 0);
    assert_int_equal(E->nrel, 0);
}

/* ---------------------------------------------------------- channels -- */

static void test_channel_bind_and_data(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    turn_relay_t relay = allocate(&c);
    const sent_t *s;

    assert_int_equal(bind_channel(&c, 0x4000, PEER, 6000), 0);
    forget();
    channel_data(&c, 0x4000, "abc", 0);
    expect_relayed(relay, PEER, 6000, "abc");
    /* Over UDP padding after the data is allowed, and ignored. */
    channel_data(&c, 0x4000, "abc", 1);
    expect_relayed(relay, PEER, 6000, "abc");
    assert_int_equal(E->nrel, 2);
    /* An unbound channel. */
    channel_data(&c, 0x4001, "abc", 0);
    assert_int_equal(E->nrel, 2);

    from_peer(relay, PEER, 6000, "xyz", 3);
    s = last_sent();
    assert_int_equal(s->len, 7); /* UDP: not padded */
    assert_memory_equal(s->data, "\x40\x00\x00\x03xyz", 7);
    /* Another port of the same IP: permitted, but not the channel's peer. */
    from_peer(relay, PEER, 6001, "dat", 3);
    expect_data_indication(&c, PEER, 6001, "dat");
    /* ChannelBind installed the permission: Send works too. */
    send_indication(&c, PEER, 9, "s", 0);
    expect_relayed(relay, PEER, 9, "s");
}

/* --turn-request-rate limits requests, never the media of an allocation. */
static void test_request_rate_spares_media(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    turn_relay_t relay;
    msg_t q;

    E->cfg.turn_request_rate = 1;
    E->cfg.turn_request_burst = 6;
    /* Two requests each (a 401 first): the budget is spent. */
    relay = allocate(&c);
    assert_int_equal(permit(&c, PEER), 0);
    assert_int_equal(bind_channel(&c, 0x4000, PEER, 6000), 0);
    forget();
    msg_start(&q, STUN_BINDING, STUN_REQUEST);
    send_msg(&c, &q);
    assert_int_equal(E->nsent, 0);
    assert_int_equal(turn_server_stats(E->s)->rate_limited, 1);
    for (int i = 0; i < 100; i++) {
        channel_data(&c, 0x4000, "abc", 0);
        send_indication(&c, PEER, 7000, "def", 0);
        from_peer(relay, PEER, 6000, "xyz", 3);
    }
    assert_int_equal(E->nrel, 200);
    assert_int_equal(E->nsent, 100);
    expect_relayed(relay, PEER, 7000, "def");
    assert_int_equal(turn_server_stats(E->s)->rate_limited, 1);
}

static void test_channel_bind_errors(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    bind_t no_number = {0, PEER, 6000}, no_peer = {0x4005, NULL, 0};
    stun_msg_t m;

    allocate(&c);
    assert_int_equal(bind_channel(&c, 0x3fff, PEER, 6000), 400);
    assert_int_equal(bind_channel(&c, 0x8000, PEER, 6000), 400);
    assert_int_equal(bind_channel(&c, 0xffff, PEER, 6000), 400);
    assert_int_equal(request(&c, STUN_CHANNEL_BIND, fill_bind, &no_number, &m), 400);
    assert_int_equal(request(&c, STUN_CHANNEL_BIND, fill_bind, &no_peer, &m), 400);
    assert_int_equal(bind_channel(&c, 0x4000, PEER, 6000), 0);
    assert_int_equal(bind_channel(&c, 0x4000, PEER, 6000), 0);    /* a refresh */
    assert_int_equal(bind_channel(&c, 0x4000, PEER2, 6000), 400); /* number taken */
    assert_int_equal(bind_channel(&c, 0x4000, PEER, 6001), 400);  /* ... by another port */
    assert_int_equal(bind_channel(&c, 0x4001, PEER, 6000), 400);  /* peer taken */
    assert_int_equal(bind_channel(&c, 0x7fff, PEER2, 6000), 0);   /* RFC 5766's range */
    E->cfg.allow_loopback_peers = 0;
    assert_int_equal(bind_channel(&c, 0x4002, "127.0.0.1", 6000), 403);
    assert_int_equal(bind_channel(&c, 0x4002, "192.168.1.1", 6000), 403);
    assert_int_equal(bind_channel(&c, 0x4002, "2001:db8::9", 6000), 443);
    /* No allocation. */
    c = udp("198.51.100.7", 40001);
    assert_int_equal(bind_channel(&c, 0x4000, PEER, 6000), 437);
}

static void fill_lifetime_only(msg_t *q, void *arg)
{
    msg_u32(q, STUN_A_LIFETIME, (uint32_t)(uintptr_t)arg);
}

static void test_channel_lifetime_and_cooldown(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    turn_relay_t relay = allocate(&c);
    stun_msg_t m;

    assert_int_equal(request(&c, STUN_REFRESH, fill_lifetime_only, (void *)3600, &m), 0);
    assert_int_equal(bind_channel(&c, 0x4000, PEER, 6000), 0); /* T: until T+600 */
    advance(290 * 1000);
    assert_int_equal(permit(&c, PEER), 0); /* until T+590 */
    advance(290 * 1000);
    assert_int_equal(permit(&c, PEER), 0); /* until T+880 */
    advance(19 * 1000);
    forget();
    channel_data(&c, 0x4000, "on", 0);
    assert_int_equal(E->nrel, 1);
    advance(1000); /* T+600: the channel is gone, the permission is not */
    forget();
    channel_data(&c, 0x4000, "off", 0);
    assert_int_equal(E->nrel, 0);
    from_peer(relay, PEER, 6000, "ind", 3);
    expect_data_indication(&c, PEER, 6000, "ind");
    /* Cooling down: neither the number nor the peer moves for 5 minutes. */
    assert_int_equal(bind_channel(&c, 0x4000, PEER2, 6000), 400);
    assert_int_equal(bind_channel(&c, 0x4001, PEER, 6000), 400);
    advance(299 * 1000);
    assert_int_equal(bind_channel(&c, 0x4000, PEER2, 6000), 400);
    advance(1000); /* T+900 */
    assert_int_equal(bind_channel(&c, 0x4000, PEER2, 6000), 0);
    assert_int_equal(bind_channel(&c, 0x4001, PEER, 6000), 0);
}

static void test_channel_rebind_same_peer_in_cooldown(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    stun_msg_t m;

    allocate(&c);
    assert_int_equal(request(&c, STUN_REFRESH, fill_lifetime_only, (void *)3600, &m), 0);
    assert_int_equal(bind_channel(&c, 0x4000, PEER, 6000), 0);
    advance(700 * 1000);
    forget();
    channel_data(&c, 0x4000, "off", 0);
    assert_int_equal(E->nrel, 0);
    assert_int_equal(bind_channel(&c, 0x4000, PEER, 6000), 0);
    forget();
    channel_data(&c, 0x4000, "on", 0);
    assert_int_equal(E->nrel, 1);
}

static void test_stream_padding(void **state)
{
    turn_client_t c = client_of(TURN_TRANSPORT_TCP, "198.51.100.7", 40000, 5);
    turn_relay_t relay = allocate(&c);
    const sent_t *s;

    assert_int_equal(bind_channel(&c, 0x4000, PEER, 6000), 0);
    forget();
    from_peer(relay, PEER, 6000, "hello", 5);
    s = last_sent();
    assert_int_equal(s->client.transport, TURN_TRANSPORT_TCP);
    assert_int_equal(s->client.conn_id, 5);
    assert_int_equal(s->len, 12);
    assert_memory_equal(s->data, "\x40\x00\x00\x05hello\0\0\0", 12);
    /* A Data indication is a STUN message: 4-aligned anyway. */
    from_peer(relay, PEER, 6001, "hello", 5);
    assert_int_equal(last_sent()->len % 4, 0);
    expect_data_indication(&c, PEER, 6001, "hello");
    /* From the client, a padded frame. */
    channel_data(&c, 0x4000, "hello", 3);
    expect_relayed(relay, PEER, 6000, "hello");
}

/* --------------------------------------------------------------- limits -- */

static void test_max_bps(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    turn_relay_t relay;
    uint8_t big[1500];
    char out[1501];

    E->cfg.max_bps = 4000;
    relay = allocate(&c);
    assert_int_equal(permit(&c, PEER), 0);
    memset(big, 'b', sizeof(big));
    memset(out, 'o', 1500);
    out[1500] = '\0';
    forget();
    from_peer(relay, PEER, 6000, big, sizeof(big));
    from_peer(relay, PEER, 6000, big, sizeof(big));
    from_peer(relay, PEER, 6000, big, sizeof(big)); /* 4500 > 4000: dropped */
    assert_int_equal(E->nsent, 2);
    /* The other direction has its own bucket. */
    send_indication(&c, PEER, 6000, out, 0);
    assert_int_equal(E->nrel, 1);
    /* 400 ms refill 1600 bytes: 2600, one packet. */
    advance(400);
    from_peer(relay, PEER, 6000, big, sizeof(big));
    assert_int_equal(E->nsent, 3);
    from_peer(relay, PEER, 6000, big, sizeof(big));
    assert_int_equal(E->nsent, 3);
    /* Small steps add up: 25 x 20 ms = 500 ms, 2000 bytes: 3100. */
    for (int i = 0; i < 25; i++)
        advance(20);
    from_peer(relay, PEER, 6000, big, sizeof(big));
    assert_int_equal(E->nsent, 4);
    /* Off again (SIGHUP): everything passes. */
    E->cfg.max_bps = 0;
    for (int i = 0; i < 5; i++)
        from_peer(relay, PEER, 6000, big, sizeof(big));
    assert_int_equal(E->nsent, 9);
}

static void test_reload_refilters_peers(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    turn_relay_t relay = allocate(&c);
    ts_config_t fresh = E->cfg;

    assert_int_equal(permit(&c, "127.0.0.1"), 0);
    assert_int_equal(bind_channel(&c, 0x4000, "127.0.0.1", 6000), 0);
    assert_int_equal(permit(&c, PEER), 0);
    fresh.allow_loopback_peers = 0;
    turn_server_set_config(E->s, &fresh);
    forget();
    from_peer(relay, "127.0.0.1", 6000, "x", 1);
    channel_data(&c, 0x4000, "x", 0);
    assert_int_equal(E->nsent, 0);
    assert_int_equal(E->nrel, 0);
    from_peer(relay, PEER, 6000, "x", 1);
    assert_int_equal(E->nsent, 1);
    turn_server_set_config(E->s, &E->cfg);
}

/* Expiry frees an allocation full of permissions and channels (ASan
 * watches for leaks), and the caps answer 508. */
static void test_caps_and_expiry(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    char ip[32];
    int rc = 0;
    unsigned i;

    allocate(&c);
    for (i = 0; i < 200 && rc == 0; i++) {
        snprintf(ip, sizeof(ip), "203.0.%u.%u", 113 + i / 250, 1 + i % 250);
        rc = permit(&c, ip);
        forget();
    }
    assert_int_equal(rc, 508);
    assert_int_equal(i, 129); /* 128 permissions, the 129th refused */
    for (i = 0, rc = 0; i < 200 && rc == 0; i++) {
        snprintf(ip, sizeof(ip), "203.0.%u.%u", 113 + i / 250, 1 + i % 250);
        rc = bind_channel(&c, (uint16_t)(0x4000 + i), ip, 7000);
        forget();
    }
    assert_int_equal(rc, 508);
    assert_int_equal(i, 129);
    advance(600 * 1000);
    assert_int_equal(turn_server_stats(E->s)->allocations, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_permission_and_data_indication),
        T(test_send_indication),
        T(test_create_permission_errors),
        T(test_create_permission_ipv6),
        T(test_permission_lifetime),
        T(test_channel_bind_and_data),
        T(test_request_rate_spares_media),
        T(test_channel_bind_errors),
        T(test_channel_lifetime_and_cooldown),
        T(test_channel_rebind_same_peer_in_cooldown),
        T(test_stream_padding),
        T(test_max_bps),
        T(test_reload_refilters_peers),
        T(test_caps_and_expiry),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
