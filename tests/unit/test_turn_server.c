/*
 * test_turn_server.c — the STUN/TURN engine's requests, with a fake clock
 * and fake sockets: Binding (IPv4, IPv6, RFC 3489, the amplification bound),
 * 420, the long-term credential dance (MD5, SHA-256, USERHASH, REST
 * credentials, stale nonces), Allocate with each of its attributes and
 * errors, Refresh, retransmissions, quotas, lifetimes, and garbage that
 * must leave neither an answer nor state. Permissions, channels and the
 * data path are in test_turn_relay.c.
 */
#include "test_turn_fake.h"
#include "turn/engine.h" /* the rate table's size */

/* ---------------------------------------------------------------- Binding -- */

static void test_binding_v4(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    struct sockaddr_storage got;
    socklen_t len;
    stun_msg_t m;
    msg_t q;

    msg_start(&q, STUN_BINDING, STUN_REQUEST);
    send_msg(&c, &q);
    assert_int_equal(E->nsent, 1);
    /* Sent back to the client, on the transport it came on. */
    assert_true(same_addr(&last_sent()->client.peer, &c.peer));
    assert_int_equal(last_sent()->client.sock, c.sock);
    last_msg(&m);
    assert_int_equal(m.method, STUN_BINDING);
    assert_int_equal(m.cls, STUN_SUCCESS);
    assert_memory_equal(m.tid, q.tid, 12);
    assert_int_equal(
        stun_attr_addr(&m, stun_msg_find(&m, STUN_A_XOR_MAPPED_ADDRESS), 1, &got, &len), TS_OK);
    assert_true(same_addr(&got, &c.peer));
    /* A 20-byte request: the bare minimum, 32 bytes, nothing optional. */
    assert_int_equal(last_sent()->len, 32);
    assert_null(stun_msg_find(&m, STUN_A_SOFTWARE));
    assert_int_equal(turn_server_stats(E->s)->binding_requests, 1);
    assert_int_equal(turn_server_stats(E->s)->allocations, 0);
}

static void test_binding_v6(void **state)
{
    turn_client_t c = udp("2001:db8:5::9", 40001);
    struct sockaddr_storage got;
    socklen_t len;
    stun_msg_t m;
    msg_t q;

    msg_start(&q, STUN_BINDING, STUN_REQUEST);
    send_msg(&c, &q);
    last_msg(&m);
    assert_int_equal(
        stun_attr_addr(&m, stun_msg_find(&m, STUN_A_XOR_MAPPED_ADDRESS), 1, &got, &len), TS_OK);
    assert_int_equal(got.ss_family, AF_INET6);
    assert_true(same_addr(&got, &c.peer));
    assert_int_equal(last_sent()->len, 44); /* 20 + 24: exceeds the request by 24 */
}

/* A larger request leaves room: SOFTWARE, MAPPED-ADDRESS, FINGERPRINT. */
static void test_binding_optional_attributes_fit(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    struct sockaddr_storage got;
    socklen_t len;
    stun_msg_t m;
    msg_t q;

    msg_start(&q, STUN_BINDING, STUN_REQUEST);
    msg_str(&q, STUN_A_SOFTWARE, "a client with a rather long software name, 64 bytes or so...");
    send_msg(&c, &q);
    last_msg(&m);
    assert_true(last_sent()->len <= q.len);
    assert_non_null(stun_msg_find(&m, STUN_A_SOFTWARE));
    assert_non_null(stun_msg_find(&m, STUN_A_FINGERPRINT));
    assert_int_equal(stun_attr_addr(&m, stun_msg_find(&m, STUN_A_MAPPED_ADDRESS), 0, &got, &len),
                     TS_OK);
    assert_true(same_addr(&got, &c.peer));
}

/* Just too small for everything: what fits goes in, in order. */
static void test_binding_budget_order(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    stun_msg_t m;
    msg_t q;

    /* 20 + 36 = 56 bytes: minimum 32, + SOFTWARE (4 + 16 = 20) = 52; no
     * room for MAPPED-ADDRESS (12), room for FINGERPRINT (8) = 60 > 56: no. */
    msg_start(&q, STUN_BINDING, STUN_REQUEST);
    stun_add_attr(&q.b, 0x8050, "0123456789abcdef0123456789abcdef", 32);
    send_msg(&c, &q);
    assert_int_equal(q.len, 56);
    last_msg(&m);
    assert_true(last_sent()->len <= 56);
    assert_non_null(stun_msg_find(&m, STUN_A_SOFTWARE));
    assert_null(stun_msg_find(&m, STUN_A_MAPPED_ADDRESS));
    assert_null(stun_msg_find(&m, STUN_A_FINGERPRINT));
}

/* A request with FINGERPRINT gets one back, even past the request's size. */
static void test_binding_fingerprint_mirrored(void **state)
{
    turn_client_t c = udp("2001:db8::77", 40000);
    stun_msg_t m;
    msg_t q;

    msg_start(&q, STUN_BINDING, STUN_REQUEST);
    stun_add_fingerprint(&q.b);
    send_msg(&c, &q);
    assert_int_equal(q.len, 28);
    last_msg(&m);
    assert_true(m.fingerprint >= 0);
    assert_int_equal(last_sent()->len, 20 + 24 + 8); /* the bound's worst case: +24 */
}

static void test_binding_rfc3489(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    uint8_t req[20] = {0x00, 0x01, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef};
    static const uint8_t mapped[16] = {0x00, 0x01, 0x00, 0x08, 0x00, 0x01,
                                       0x9c, 0x40, 198,  51,   100,  7};
    const sent_t *s;

    for (int i = 8; i < 20; i++)
        req[i] = (uint8_t)i;
    turn_server_on_client(E->s, &c, req, sizeof(req));
    assert_int_equal(E->nsent, 1);
    s = last_sent();
    /* Our own parser takes no classic answers: check the bytes. A Binding
     * success, the whole 128-bit id back (the classic client matches on
     * it), and MAPPED-ADDRESS alone: 198.51.100.7:40000, not XORed. */
    assert_int_equal(s->len, 32);
    assert_int_equal(s->data[0] << 8 | s->data[1], 0x0101);
    assert_int_equal(s->data[2] << 8 | s->data[3], 12);
    assert_memory_equal(s->data + 4, req + 4, 16);
    assert_memory_equal(s->data + 20, mapped, 12);
}

static void test_binding_indication_silent(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    msg_t q;

    msg_start(&q, STUN_BINDING, STUN_INDICATION);
    send_msg(&c, &q);
    assert_int_equal(E->nsent, 0);
    assert_int_equal(turn_server_stats(E->s)->dropped, 0);
}

static void test_binding_over_tcp(void **state)
{
    turn_client_t c = client_of(TURN_TRANSPORT_TCP, "198.51.100.7", 40000, 42);
    stun_msg_t m;
    msg_t q;

    msg_start(&q, STUN_BINDING, STUN_REQUEST);
    send_msg(&c, &q);
    last_msg(&m);
    assert_int_equal(code_of(&m), 0);
    assert_int_equal(last_sent()->client.transport, TURN_TRANSPORT_TCP);
    assert_int_equal(last_sent()->client.conn_id, 42);
}

/* ---------------------------------------------------- request rate -- */

/* Binding requests from c answered, of n sent now. */
static unsigned bindings_answered(const turn_client_t *c, unsigned n)
{
    unsigned before = E->nsent;
    msg_t q;

    for (unsigned i = 0; i < n; i++) {
        msg_start(&q, STUN_BINDING, STUN_REQUEST);
        send_msg(c, &q);
    }
    return E->nsent - before;
}

static void test_request_rate_limit(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    turn_client_t other_port = udp("198.51.100.7", 40001);
    turn_client_t tcp = client_of(TURN_TRANSPORT_TCP, "198.51.100.7", 40002, 42);
    turn_client_t other = udp("198.51.100.8", 40000);

    E->cfg.turn_request_rate = 2;
    E->cfg.turn_request_burst = 5;
    /* The burst, then nothing: dropped without an answer, counted. */
    assert_int_equal(bindings_answered(&c, 8), 5);
    assert_int_equal(turn_server_stats(E->s)->rate_limited, 3);
    assert_int_equal(turn_server_stats(E->s)->requests, 5); /* dropped before anything else */
    assert_int_equal(turn_server_stats(E->s)->dropped, 0);
    /* The address is limited, whatever its port or transport. */
    assert_int_equal(bindings_answered(&other_port, 1), 0);
    assert_int_equal(bindings_answered(&tcp, 1), 0);
    /* Another address has its own budget. */
    assert_int_equal(bindings_answered(&other, 5), 5);
    /* 2 a second: one token every 500 ms. */
    advance(499);
    assert_int_equal(bindings_answered(&c, 1), 0);
    advance(1);
    assert_int_equal(bindings_answered(&c, 3), 1);
    advance(10000);
    assert_int_equal(bindings_answered(&c, 10), 5); /* refilled up to the burst only */
    assert_int_equal(turn_server_stats(E->s)->rate_limited, 3 + 2 + 1 + 2 + 5);
    /* SIGHUP to 0: unlimited, at once. */
    E->cfg.turn_request_rate = 0;
    assert_int_equal(bindings_answered(&c, 50), 50);
}

/* Every method counts, authenticated or not; a retransmission too. */
static void test_request_rate_every_method(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    stun_msg_t m;
    msg_t q;

    E->cfg.turn_request_rate = 1;
    E->cfg.turn_request_burst = 3;
    allocate(&c); /* 401, then the Allocate: two requests */
    msg_start(&q, STUN_REFRESH, STUN_REQUEST);
    send_msg(&c, &q); /* 401: the third */
    assert_int_equal(E->nsent, 3);
    send_msg(&c, &q);
    assert_int_equal(E->nsent, 3);
    assert_int_equal(turn_server_stats(E->s)->rate_limited, 1);
    advance(2000); /* a 401 to fetch the nonce, then the Refresh: two */
    assert_int_equal(request(&c, STUN_REFRESH, NULL, NULL, &m), 0);
    assert_int_equal(turn_server_stats(E->s)->rate_limited, 1);
    /* Neither the RFC 3489 form nor a malformed request escapes it. */
    {
        uint8_t classic[20] = {0x00, 0x01, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef};
        uint8_t bad[24] = {0x00, 0x01, 0x00, 0x04, 0x21, 0x12, 0xa4, 0x42};
        unsigned before = E->nsent;
        turn_server_on_client(E->s, &c, classic, sizeof(classic));
        turn_server_on_client(E->s, &c, bad, sizeof(bad));
        assert_int_equal(E->nsent, before);
        assert_int_equal(turn_server_stats(E->s)->rate_limited, 3);
    }
}

static void test_request_rate_ipv6_per_64(void **state)
{
    turn_client_t a = udp("2001:db8:1:2::1", 40000);
    turn_client_t a2 = udp("2001:db8:1:2:ffff:1:2:3", 40000);
    turn_client_t b = udp("2001:db8:1:3::1", 40000);

    E->cfg.turn_request_rate = 1;
    E->cfg.turn_request_burst = 2;
    assert_int_equal(bindings_answered(&a, 2), 2);
    assert_int_equal(bindings_answered(&a2, 1), 0); /* the same /64 */
    assert_int_equal(bindings_answered(&b, 2), 2);  /* the next one */
}

/* A spray of source addresses is answered, one request each, and the table
 * stays at its fixed size. */
static void test_request_rate_spray_bounded(void **state)
{
    char ip[64];

    E->cfg.turn_request_rate = 1;
    E->cfg.turn_request_burst = 1;
    for (unsigned i = 0; i < 3 * TURN_RATE_ENTRIES; i++) {
        turn_client_t c;
        snprintf(ip, sizeof(ip), "2001:db8:%x:%x::1", i >> 16, i & 0xffff);
        c = udp(ip, 40000);
        assert_int_equal(bindings_answered(&c, 1), 1);
        forget();
    }
    assert_int_equal(turn_server_stats(E->s)->rate_limited, 0);
    assert_true(ts_ratelimit_table_used(E->s->req_rate) <= TURN_RATE_ENTRIES);
    assert_int_equal(ts_ratelimit_table_size(E->s->req_rate), TURN_RATE_ENTRIES);
}

/* -------------------------------------------------------- 420 and 400 -- */

static void test_unknown_attribute_420(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    const stun_attr_t *ua;
    stun_msg_t m;
    msg_t q;

    msg_start(&q, STUN_BINDING, STUN_REQUEST);
    msg_u32(&q, STUN_A_CHANGE_REQUEST, 0x6);
    send_msg(&c, &q);
    last_msg(&m);
    assert_int_equal(code_of(&m), 420);
    ua = stun_msg_find(&m, STUN_A_UNKNOWN_ATTRIBUTES);
    assert_non_null(ua);
    assert_int_equal(ua->len, 2);
    assert_int_equal(ua->value[0] << 8 | ua->value[1], STUN_A_CHANGE_REQUEST);
    /* 28-byte request; minimum 420: 20 + 8 + 8 = 36. */
    assert_int_equal(last_sent()->len, 36);
    assert_int_equal(turn_server_stats(E->s)->binding_requests, 0);
}

/* RFC 5780's RESPONSE-PORT (turnutils_stunclient -f): the 420 goes there. */
static void test_420_to_response_port(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    msg_t q;

    msg_start(&q, STUN_BINDING, STUN_REQUEST);
    msg_u32(&q, 0x0027, 40001u << 16);
    msg_u32(&q, STUN_A_CHANGE_REQUEST, 0x6);
    send_msg(&c, &q);
    assert_int_equal(last_code(), 420);
    assert_int_equal(addr_port(&last_sent()->client.peer), 40001);
    assert_int_equal(last_sent()->client.peer.ss_family, AF_INET);
    assert_true(last_sent()->len <= q.len);
    /* Over TCP it means nothing: the answer goes back on the connection. */
    c = client_of(TURN_TRANSPORT_TCP, "198.51.100.7", 40000, 9);
    send_msg(&c, &q);
    assert_int_equal(addr_port(&last_sent()->client.peer), 40000);
}

static void test_unknown_attributes_420_lists_what_fits(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    const stun_attr_t *ua;
    stun_msg_t m;
    msg_t q;

    /* An Allocate: 420 comes before authentication. */
    msg_start(&q, STUN_ALLOCATE, STUN_REQUEST);
    for (uint16_t t = 0x0040; t < 0x0044; t++)
        stun_add_attr(&q.b, t, NULL, 0);
    send_msg(&c, &q);
    assert_int_equal(q.len, 36);
    last_msg(&m);
    assert_int_equal(code_of(&m), 420);
    ua = stun_msg_find(&m, STUN_A_UNKNOWN_ATTRIBUTES);
    assert_non_null(ua);
    /* 20 + 8 + (4 + 4) = 36 holds two of the four. */
    assert_int_equal(ua->len, 4);
    assert_true(last_sent()->len <= q.len);
    assert_int_equal(turn_server_stats(E->s)->allocations, 0);
}

static void test_unknown_method_400(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    msg_t q;

    msg_start(&q, 0x00d, STUN_REQUEST);
    msg_str(&q, STUN_A_SOFTWARE, "padding for the answer..");
    send_msg(&c, &q);
    assert_int_equal(last_code(), 400);
    assert_true(last_sent()->len <= q.len);

    /* Send and Data are indications: as requests they are unknown. */
    msg_start(&q, STUN_SEND, STUN_REQUEST);
    q.len = 0;
    send_msg(&c, &q);
    assert_int_equal(last_code(), 400);
}

/* ------------------------------------------------------------- garbage -- */

static void expect_nothing(const turn_client_t *c, const uint8_t *p, size_t n)
{
    unsigned dropped = (unsigned)turn_server_stats(E->s)->dropped;

    turn_server_on_client(E->s, c, p, n);
    assert_int_equal(E->nsent, 0);
    assert_int_equal(E->nrel, 0);
    assert_int_equal(E->nopened, 0);
    assert_int_equal(turn_server_stats(E->s)->allocations, 0);
    assert_int_equal(turn_server_stats(E->s)->dropped, dropped + 1);
}

static void test_garbage_dropped(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    uint8_t junk[64];
    msg_t q;

    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 37 + 11);
    expect_nothing(&c, junk, sizeof(junk));
    expect_nothing(&c, junk, 0);
    expect_nothing(&c, junk, 3);

    /* A real Allocate, truncated at every length. */
    msg_start(&q, STUN_ALLOCATE, STUN_REQUEST);
    msg_transport(&q, 17);
    msg_str(&q, STUN_A_SOFTWARE, "x");
    stun_add_fingerprint(&q.b);
    msg_finish(&q);
    for (size_t n = 0; n < q.len; n++)
        expect_nothing(&c, q.buf, n);
    /* Its FINGERPRINT broken. */
    q.buf[q.len - 1] ^= 1;
    expect_nothing(&c, q.buf, q.len);
    q.buf[q.len - 1] ^= 1;
    /* Its length field lying. */
    q.buf[3] += 4;
    expect_nothing(&c, q.buf, q.len);
    q.buf[3] -= 4;
    /* An answer class, or an indication other than Send, from a client. */
    msg_start(&q, STUN_ALLOCATE, STUN_SUCCESS);
    msg_finish(&q);
    expect_nothing(&c, q.buf, q.len);
    msg_start(&q, STUN_DATA, STUN_INDICATION);
    msg_finish(&q);
    expect_nothing(&c, q.buf, q.len);
}

static void test_garbage_channel_data_dropped(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    uint8_t cd[8] = {0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4};
    uint8_t high[4] = {0x80, 0x00, 0x00, 0x00};

    expect_nothing(&c, cd, sizeof(cd)); /* no allocation */
    expect_nothing(&c, cd, 6);          /* shorter than its length */
    expect_nothing(&c, high, sizeof(high));
}

/* ---------------------------------------------------------- the dance -- */

static void test_no_credentials_401(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    char nonce[64], realm[64];
    stun_msg_t m;
    msg_t q;

    msg_start(&q, STUN_ALLOCATE, STUN_REQUEST);
    msg_transport(&q, 17);
    send_msg(&c, &q);
    last_msg(&m);
    assert_int_equal(code_of(&m), 401);
    copy_attr_str(&m, STUN_A_REALM, realm, sizeof(realm));
    assert_string_equal(realm, REALM);
    copy_attr_str(&m, STUN_A_NONCE, nonce, sizeof(nonce));
    /* No room for PASSWORD-ALGORITHMS, so the short nonce without the cookie. */
    assert_int_equal(strlen(nonce), TURN_NONCE_PLAIN_LEN);
    assert_int_equal(m.integrity, -1);
    /* 28-byte request; the minimum 401: 20 + 8 + 4 + 12 + 28 = 72. */
    assert_int_equal(last_sent()->len, 72);
    assert_null(stun_msg_find(&m, STUN_A_PASSWORD_ALGORITHMS));
    /* Not an authentication failure: it carried no credentials. No state. */
    assert_int_equal(turn_server_stats(E->s)->auth_failures, 0);
    assert_int_equal(turn_server_stats(E->s)->allocations, 0);
    assert_int_equal(E->nopened, 0);
    assert_int_equal(turn_server_next_timeout(E->s), -1);
}

/* A larger request gets PASSWORD-ALGORITHMS, the reason, SOFTWARE. */
static void test_401_optional_attributes(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    const stun_attr_t *a;
    stun_msg_t m;
    msg_t q;

    msg_start(&q, STUN_ALLOCATE, STUN_REQUEST);
    msg_transport(&q, 17);
    msg_str(&q, STUN_A_SOFTWARE,
            "a fairly long client software description, long enough for all the optional parts, "
            "including the nonce cookie that PASSWORD-ALGORITHMS brings along");
    stun_add_fingerprint(&q.b);
    send_msg(&c, &q);
    last_msg(&m);
    assert_int_equal(code_of(&m), 401);
    assert_true(last_sent()->len <= q.len);
    a = stun_msg_find(&m, STUN_A_PASSWORD_ALGORITHMS);
    assert_non_null(a);
    assert_int_equal(a->len, 8);
    assert_memory_equal(a->value, "\x00\x01\x00\x00\x00\x02\x00\x00", 8);
    /* ... with the nonce cookie saying so (RFC 8489 9.2.4). */
    a = stun_msg_find(&m, STUN_A_NONCE);
    assert_int_equal(a->len, TURN_NONCE_LEN);
    assert_memory_equal(a->value, "obMatJos2wAAA", 13);
    assert_non_null(stun_msg_find(&m, STUN_A_SOFTWARE));
    assert_true(m.fingerprint >= 0);
    a = stun_msg_find(&m, STUN_A_ERROR_CODE);
    assert_memory_equal(a->value + 4, "Unauthorized", 12);
}

static void test_allocate_authenticated(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    struct sockaddr_storage got;
    socklen_t len;
    uint8_t key[16];
    stun_msg_t m;

    assert_int_equal(request(&c, STUN_ALLOCATE, fill_udp, NULL, &m), 0);
    key_md5("alice", "wonderland", key);
    assert_int_equal(stun_check_integrity(&m, key, sizeof(key)), 1);
    assert_true(m.fingerprint >= 0);
    assert_int_equal(
        stun_attr_addr(&m, stun_msg_find(&m, STUN_A_XOR_RELAYED_ADDRESS), 1, &got, &len), TS_OK);
    assert_int_equal(got.ss_family, AF_INET);
    assert_int_equal(addr_port(&got), E->relays[E->last_relay].port);
    assert_int_equal(attr_u32(&m, STUN_A_LIFETIME), 600);
    assert_int_equal(
        stun_attr_addr(&m, stun_msg_find(&m, STUN_A_XOR_MAPPED_ADDRESS), 1, &got, &len), TS_OK);
    assert_true(same_addr(&got, &c.peer));
    assert_null(stun_msg_find(&m, STUN_A_RESERVATION_TOKEN));
    assert_int_equal(turn_server_stats(E->s)->allocations, 1);
    assert_int_equal(turn_server_stats(E->s)->allocations_total, 1);
    assert_int_equal(E->relays[E->last_relay].family, AF_INET);
    assert_int_equal(E->relays[E->last_relay].flags, 0);
    assert_int_equal(turn_server_next_timeout(E->s), 40 * 1000); /* the remembered answer */
}

static void test_wrong_password_401(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    stun_msg_t m;

    assert_int_equal(request_as(&c, STUN_ALLOCATE, fill_udp, NULL, "alice", "hatter", &m, NULL),
                     401);
    assert_non_null(stun_msg_find(&m, STUN_A_NONCE));
    assert_non_null(stun_msg_find(&m, STUN_A_REALM));
    assert_int_equal(m.integrity, -1);
    assert_int_equal(turn_server_stats(E->s)->auth_failures, 1);
    assert_int_equal(E->nopened, 0);
    assert_int_equal(turn_server_next_timeout(E->s), -1); /* nothing stored */

    assert_int_equal(request_as(&c, STUN_ALLOCATE, fill_udp, NULL, "carol", "x", &m, NULL), 401);
    assert_int_equal(turn_server_stats(E->s)->auth_failures, 2);
    assert_int_equal(turn_server_stats(E->s)->allocations, 0);
}

static void test_missing_auth_attributes_400(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    uint8_t key[16];
    char nonce[64];
    msg_t q;

    key_md5("alice", "wonderland", key);
    fetch_nonce(&c, nonce, sizeof(nonce));
    /* No REALM. */
    msg_start(&q, STUN_ALLOCATE, STUN_REQUEST);
    msg_transport(&q, 17);
    msg_str(&q, STUN_A_USERNAME, "alice");
    msg_str(&q, STUN_A_NONCE, nonce);
    stun_add_integrity(&q.b, key, sizeof(key));
    send_msg(&c, &q);
    assert_int_equal(last_code(), 400);
    /* No USERNAME. */
    msg_start(&q, STUN_ALLOCATE, STUN_REQUEST);
    q.len = 0;
    msg_transport(&q, 17);
    msg_str(&q, STUN_A_REALM, REALM);
    msg_str(&q, STUN_A_NONCE, nonce);
    stun_add_integrity(&q.b, key, sizeof(key));
    send_msg(&c, &q);
    assert_int_equal(last_code(), 400);
    assert_int_equal(E->nopened, 0);
}

static void test_stale_nonce_438_then_recovery(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    char nonce[64], fresh[64], realm[64];
    stun_msg_t m;
    msg_t q;

    fetch_nonce(&c, nonce, sizeof(nonce));
    advance(11 * 60 * 1000);
    msg_start(&q, STUN_ALLOCATE, STUN_REQUEST);
    msg_transport(&q, 17);
    msg_sign(&q, "alice", "wonderland", nonce);
    send_msg(&c, &q);
    last_msg(&m);
    assert_int_equal(code_of(&m), 438);
    copy_attr_str(&m, STUN_A_NONCE, fresh, sizeof(fresh));
    copy_attr_str(&m, STUN_A_REALM, realm, sizeof(realm));
    assert_string_not_equal(fresh, nonce);
    assert_string_equal(realm, REALM);
    assert_true(last_sent()->len <= q.len);
    assert_int_equal(E->nopened, 0);

    msg_start(&q, STUN_ALLOCATE, STUN_REQUEST);
    q.len = 0;
    msg_transport(&q, 17);
    msg_sign(&q, "alice", "wonderland", fresh);
    send_msg(&c, &q);
    assert_int_equal(last_code(), 0);
    assert_int_equal(turn_server_stats(E->s)->allocations, 1);
}

/* --stale-nonce sets the lifetime, read per request; 0 is unlimited. */
static void test_stale_nonce_option(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000), d = udp("198.51.100.7", 40001);
    char nonce[64];
    msg_t q;

    E->cfg.stale_nonce = 5;
    fetch_nonce(&c, nonce, sizeof(nonce));
    advance(5001);
    msg_start(&q, STUN_ALLOCATE, STUN_REQUEST);
    msg_transport(&q, 17);
    msg_sign(&q, "alice", "wonderland", nonce);
    send_msg(&c, &q);
    assert_int_equal(last_code(), 438);

    /* Unlimited: the same (signed) nonce still works a day later. */
    E->cfg.stale_nonce = 0;
    advance(86400 * 1000);
    msg_start(&q, STUN_ALLOCATE, STUN_REQUEST);
    msg_transport(&q, 17);
    msg_sign(&q, "alice", "wonderland", nonce);
    send_msg(&d, &q);
    assert_int_equal(last_code(), 0);
}

static void test_forged_nonce_401(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    msg_t q;

    msg_start(&q, STUN_ALLOCATE, STUN_REQUEST);
    msg_transport(&q, 17);
    msg_sign(&q, "alice", "wonderland", "AAAAAAAAAAAAAAAAAAAAAAAA");
    send_msg(&c, &q);
    assert_int_equal(last_code(), 401);
    assert_int_equal(turn_server_stats(E->s)->auth_failures, 1);
}

/* RFC 8489: PASSWORD-ALGORITHM SHA-256, MESSAGE-INTEGRITY-SHA256. */
static void sign_sha256(msg_t *q, const char *user, int userhash, const char *nonce)
{
    static const uint8_t algs[8] = {0, 1, 0, 0, 0, 2, 0, 0};
    uint8_t key[32], h[32];

    if (userhash) {
        stun_userhash(user, strlen(user), REALM, strlen(REALM), h);
        stun_add_attr(&q->b, STUN_A_USERHASH, h, 32);
    } else {
        msg_str(q, STUN_A_USERNAME, user);
    }
    msg_str(q, STUN_A_REALM, REALM);
    msg_str(q, STUN_A_NONCE, nonce);
    msg_u32(q, STUN_A_PASSWORD_ALGORITHM, STUN_PWALG_SHA256 << 16);
    stun_add_attr(&q->b, STUN_A_PASSWORD_ALGORITHMS, algs, sizeof(algs));
    key_sha256(user, "wonderland", key);
    stun_add_integrity_sha256(&q->b, key, sizeof(key));
}

static void test_sha256_and_userhash(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000), d = udp("198.51.100.7", 40001);
    uint8_t key[32];
    char nonce[64];
    stun_msg_t m;
    msg_t q;

    key_sha256("alice", "wonderland", key);
    fetch_nonce(&c, nonce, sizeof(nonce));
    msg_start(&q, STUN_ALLOCATE, STUN_REQUEST);
    msg_transport(&q, 17);
    sign_sha256(&q, "alice", 0, nonce);
    send_msg(&c, &q);
    last_msg(&m);
    assert_int_equal(code_of(&m), 0);
    assert_true(m.integrity_sha256 >= 0);
    assert_int_equal(m.integrity, -1);
    assert_int_equal(stun_check_integrity_sha256(&m, key, sizeof(key)), 1);

    /* USERHASH in place of USERNAME (a static user). */
    msg_start(&q, STUN_ALLOCATE, STUN_REQUEST);
    q.len = 0;
    msg_transport(&q, 17);
    sign_sha256(&q, "alice", 1, nonce);
    send_msg(&d, &q);
    last_msg(&m);
    assert_int_equal(code_of(&m), 0);
    assert_int_equal(stun_check_integrity_sha256(&m, key, sizeof(key)), 1);
    assert_int_equal(turn_server_stats(E->s)->allocations, 2);

    /* A USERHASH of nobody. */
    msg_start(&q, STUN_REFRESH, STUN_REQUEST);
    q.len = 0;
    sign_sha256(&q, "mallory", 1, nonce);
    send_msg(&d, &q);
    assert_int_equal(last_code(), 401);
}

static void test_password_algorithm_mismatch_400(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    static const uint8_t sha_only[4] = {0, 2, 0, 0};
    uint8_t key[32];
    char nonce[64];
    msg_t q;

    fetch_nonce(&c, nonce, sizeof(nonce));
    key_sha256("alice", "wonderland", key);
    /* PASSWORD-ALGORITHM without PASSWORD-ALGORITHMS. */
    msg_start(&q, STUN_ALLOCATE, STUN_REQUEST);
    msg_transport(&q, 17);
    msg_str(&q, STUN_A_USERNAME, "alice");
    msg_str(&q, STUN_A_REALM, REALM);
    msg_str(&q, STUN_A_NONCE, nonce);
    msg_u32(&q, STUN_A_PASSWORD_ALGORITHM, STUN_PWALG_SHA256 << 16);
    stun_add_integrity_sha256(&q.b, key, sizeof(key));
    send_msg(&c, &q);
    assert_int_equal(last_code(), 400);
    /* PASSWORD-ALGORITHMS not the one offered (a bid-down). */
    msg_start(&q, STUN_ALLOCATE, STUN_REQUEST);
    q.len = 0;
    msg_transport(&q, 17);
    msg_str(&q, STUN_A_USERNAME, "alice");
    msg_str(&q, STUN_A_REALM, REALM);
    msg_str(&q, STUN_A_NONCE, nonce);
    msg_u32(&q, STUN_A_PASSWORD_ALGORITHM, STUN_PWALG_SHA256 << 16);
    stun_add_attr(&q.b, STUN_A_PASSWORD_ALGORITHMS, sha_only, sizeof(sha_only));
    stun_add_integrity_sha256(&q.b, key, sizeof(key));
    send_msg(&c, &q);
    assert_int_equal(last_code(), 400);
    assert_int_equal(E->nopened, 0);
}

static void test_rest_credentials(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    char user[128], pass[64];
    stun_msg_t m;

    turn_rest_credential(SECRET, "web-1", E->unix_now, 3600, user, sizeof(user), pass,
                         sizeof(pass));
    assert_int_equal(request_as(&c, STUN_ALLOCATE, fill_udp, NULL, user, pass, &m, NULL), 0);
    /* An hour and a second later the same credential is refused. */
    E->unix_now += 3601;
    assert_int_equal(request_as(&c, STUN_REFRESH, NULL, NULL, user, pass, &m, NULL), 401);
    assert_int_equal(turn_server_stats(E->s)->auth_failures, 1);
    /* Already expired at the first Allocate. */
    turn_rest_credential(SECRET, "web-2", E->unix_now - 100, 10, user, sizeof(user), pass,
                         sizeof(pass));
    c = udp("198.51.100.7", 40001);
    assert_int_equal(request_as(&c, STUN_ALLOCATE, fill_udp, NULL, user, pass, &m, NULL), 401);
    assert_int_equal(turn_server_stats(E->s)->allocations, 1);
}

/* ------------------------------------------------------------- Allocate -- */

static void fill_transport(msg_t *q, void *arg)
{
    msg_transport(q, (uint8_t)(uintptr_t)arg);
}

static void test_allocate_transport_errors(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    stun_msg_t m;

    assert_int_equal(request(&c, STUN_ALLOCATE, NULL, NULL, &m), 400);
    /* TCP relays are for TCP and TLS clients (RFC 6062 5.1). */
    assert_int_equal(request(&c, STUN_ALLOCATE, fill_transport, (void *)6, &m), 400);
    assert_int_equal(request(&c, STUN_ALLOCATE, fill_transport, (void *)132, &m), 442);
    /* Authenticated errors carry MESSAGE-INTEGRITY. */
    assert_true(m.integrity >= 0);
    assert_int_equal(E->nopened, 0);
    assert_int_equal(turn_server_stats(E->s)->allocations, 0);
}

static void test_allocate_mismatch_and_retransmission(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    uint8_t first[MAXDATA];
    size_t first_len;
    stun_msg_t m;
    msg_t q;

    assert_int_equal(request_as(&c, STUN_ALLOCATE, fill_udp, NULL, "alice", "wonderland", &m, &q),
                     0);
    first_len = last_sent()->len;
    memcpy(first, last_sent()->data, first_len);
    /* The same request again: the same answer, byte for byte, no new relay. */
    advance(2000);
    send_msg(&c, &q);
    assert_int_equal(last_sent()->len, first_len);
    assert_memory_equal(last_sent()->data, first, first_len);
    assert_int_equal(E->nopened, 1);
    /* Another Allocate on the same 5-tuple. */
    assert_int_equal(request(&c, STUN_ALLOCATE, fill_udp, NULL, &m), 437);
    assert_int_equal(E->nopened, 1);
}

static void test_allocate_other_user_441(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    stun_msg_t m;

    allocate(&c);
    assert_int_equal(request_as(&c, STUN_REFRESH, NULL, NULL, "bob", "builder", &m, NULL), 441);
    assert_int_equal(request_as(&c, STUN_ALLOCATE, fill_udp, NULL, "bob", "builder", &m, NULL),
                     441);
    assert_int_equal(turn_server_stats(E->s)->allocations, 1);
}

static void fill_family(msg_t *q, void *arg)
{
    msg_transport(q, 17);
    msg_u32(q, STUN_A_REQUESTED_ADDRESS_FAMILY, (uint32_t)(uintptr_t)arg << 24);
}

static void test_allocate_requested_family(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000), d = udp("198.51.100.7", 40001);
    struct sockaddr_storage got;
    socklen_t len;
    stun_msg_t m;

    assert_int_equal(request(&c, STUN_ALLOCATE, fill_family, (void *)2, &m), 0);
    assert_int_equal(
        stun_attr_addr(&m, stun_msg_find(&m, STUN_A_XOR_RELAYED_ADDRESS), 1, &got, &len), TS_OK);
    assert_int_equal(got.ss_family, AF_INET6);
    assert_int_equal(E->relays[E->last_relay].family, AF_INET6);
    assert_int_equal(request(&d, STUN_ALLOCATE, fill_family, (void *)3, &m), 440);
    /* The glue cannot relay IPv6 at all. */
    E->fail_family = AF_INET6;
    E->fail_rc = -2;
    assert_int_equal(request(&d, STUN_ALLOCATE, fill_family, (void *)2, &m), 440);
    E->fail_rc = -1;
    assert_int_equal(request(&d, STUN_ALLOCATE, fill_family, (void *)2, &m), 508);
    assert_int_equal(turn_server_stats(E->s)->allocations, 1);
}

static void fill_dual(msg_t *q, void *arg)
{
    msg_transport(q, 17);
    msg_u32(q, STUN_A_ADDITIONAL_ADDRESS_FAMILY, (uint32_t)(uintptr_t)arg << 24);
}

static void fill_dual_and_family(msg_t *q, void *arg)
{
    fill_dual(q, (void *)2);
    msg_u32(q, STUN_A_REQUESTED_ADDRESS_FAMILY, 1u << 24);
}

static void test_allocate_dual_stack(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000), d = udp("198.51.100.7", 40001);
    struct sockaddr_storage got;
    socklen_t len;
    const stun_attr_t *ae;
    int families = 0;
    stun_msg_t m;

    assert_int_equal(request(&c, STUN_ALLOCATE, fill_dual, (void *)2, &m), 0);
    for (unsigned i = 0; i < m.nattrs; i++) {
        if (m.attrs[i].type != STUN_A_XOR_RELAYED_ADDRESS)
            continue;
        assert_int_equal(stun_attr_addr(&m, &m.attrs[i], 1, &got, &len), TS_OK);
        families |= got.ss_family == AF_INET ? 1 : 2;
    }
    assert_int_equal(families, 3);
    assert_int_equal(open_relays(), 2);

    assert_int_equal(request(&d, STUN_ALLOCATE, fill_dual, (void *)1, &m), 400);
    assert_int_equal(request(&d, STUN_ALLOCATE, fill_dual_and_family, NULL, &m), 400);
    /* IPv6 fails: success for IPv4, ADDRESS-ERROR-CODE 440 for IPv6. */
    E->fail_family = AF_INET6;
    E->fail_rc = -1;
    assert_int_equal(request(&d, STUN_ALLOCATE, fill_dual, (void *)2, &m), 0);
    ae = stun_msg_find(&m, STUN_A_ADDRESS_ERROR_CODE);
    assert_non_null(ae);
    assert_true(ae->len >= 4);
    assert_int_equal(ae->value[0], 0x02);
    assert_int_equal(ae->value[2] * 100 + ae->value[3], 440);
    assert_int_equal(open_relays(), 3);
}

static void fill_even(msg_t *q, void *arg)
{
    uint8_t v = (uint8_t)(uintptr_t)arg;

    msg_transport(q, 17);
    stun_add_attr(&q->b, STUN_A_EVEN_PORT, &v, 1);
}

static void fill_token(msg_t *q, void *arg)
{
    msg_transport(q, 17);
    stun_add_attr(&q->b, STUN_A_RESERVATION_TOKEN, arg, 8);
}

static void fill_token_and_even(msg_t *q, void *arg)
{
    fill_token(q, arg);
    stun_add_attr(&q->b, STUN_A_EVEN_PORT, "\x80", 1);
}

static void fill_token_and_family(msg_t *q, void *arg)
{
    fill_token(q, arg);
    msg_u32(q, STUN_A_REQUESTED_ADDRESS_FAMILY, 1u << 24);
}

static void test_allocate_even_port_reservation(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000), d = udp("198.51.100.7", 40001);
    turn_client_t e = udp("198.51.100.7", 40002);
    uint8_t token[8], bogus[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const stun_attr_t *t;
    uint16_t port;
    stun_msg_t m;

    E->next_port = 50001; /* odd: the fake must move to 50002 */
    assert_int_equal(request(&c, STUN_ALLOCATE, fill_even, (void *)0x80, &m), 0);
    port = E->relays[E->last_relay].port;
    assert_int_equal(port % 2, 0);
    assert_int_equal(E->relays[E->last_relay].flags,
                     TURN_RELAY_EVEN_PORT | TURN_RELAY_RESERVE_NEXT);
    t = stun_msg_find(&m, STUN_A_RESERVATION_TOKEN);
    assert_non_null(t);
    assert_int_equal(t->len, 8);
    memcpy(token, t->value, 8);
    /* port + 1 is held open until the token is used. */
    assert_int_equal(E->nholds, 1);
    assert_int_equal(E->holds[0].port, port + 1);
    assert_int_equal(E->holds[0].family, AF_INET);
    assert_int_equal(held_ports(), 1);

    assert_int_equal(request(&d, STUN_ALLOCATE, fill_token, bogus, &m), 508);
    assert_int_equal(request(&d, STUN_ALLOCATE, fill_token_and_even, token, &m), 400);
    assert_int_equal(request(&d, STUN_ALLOCATE, fill_token_and_family, token, &m), 400);
    assert_int_equal(held_ports(), 1); /* refused Allocates leave it held */
    assert_int_equal(request(&d, STUN_ALLOCATE, fill_token, token, &m), 0);
    assert_int_equal(E->last_open_port, port + 1);
    assert_int_equal(E->relays[E->last_relay].port, port + 1);
    assert_int_equal(held_ports(), 0); /* let go for the relay to bind */
    /* Used once only. */
    assert_int_equal(request(&e, STUN_ALLOCATE, fill_token, token, &m), 508);

    /* EVEN-PORT without R: even, nothing reserved. */
    assert_int_equal(request(&e, STUN_ALLOCATE, fill_even, (void *)0, &m), 0);
    assert_int_equal(E->relays[E->last_relay].flags, TURN_RELAY_EVEN_PORT);
    assert_null(stun_msg_find(&m, STUN_A_RESERVATION_TOKEN));
}

static void test_reservation_expires_after_30s(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000), d = udp("198.51.100.7", 40001);
    uint8_t token[8];
    stun_msg_t m;

    assert_int_equal(request(&c, STUN_ALLOCATE, fill_even, (void *)0x80, &m), 0);
    memcpy(token, stun_msg_find(&m, STUN_A_RESERVATION_TOKEN)->value, 8);
    assert_int_equal(held_ports(), 1);
    advance(30 * 1000);
    assert_int_equal(request(&d, STUN_ALLOCATE, fill_token, token, &m), 508);
    assert_int_equal(open_relays(), 1);
    assert_int_equal(held_ports(), 0);

    /* Unused, the tick closes the held port when the 30 s are over. */
    assert_int_equal(request(&d, STUN_ALLOCATE, fill_even, (void *)0x80, &m), 0);
    assert_int_equal(held_ports(), 1);
    advance(29 * 1000);
    assert_int_equal(held_ports(), 1);
    advance(1000);
    assert_int_equal(held_ports(), 0);
}

/* port + 1 taken between the glue's check and the hold: 508, nothing left open. */
static void test_reservation_port_taken(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    stun_msg_t m;

    E->hold_fail = 1;
    assert_int_equal(request(&c, STUN_ALLOCATE, fill_even, (void *)0x80, &m), 508);
    assert_int_equal(open_relays(), 0);
    assert_int_equal(held_ports(), 0);
}

static void fill_lifetime(msg_t *q, void *arg)
{
    msg_transport(q, 17);
    msg_u32(q, STUN_A_LIFETIME, (uint32_t)(uintptr_t)arg);
}

static void test_allocate_lifetimes(void **state)
{
    static const uint32_t asked[] = {0, 30, 600, 1200, 3600, 7200, 0xffffffffu};
    static const uint32_t given[] = {600, 600, 600, 1200, 3600, 3600, 3600};
    stun_msg_t m;

    for (unsigned i = 0; i < TS_ARRAY_SIZE(asked); i++) {
        turn_client_t c = udp("198.51.100.7", (uint16_t)(41000 + i));
        assert_int_equal(request(&c, STUN_ALLOCATE, fill_lifetime, (void *)(uintptr_t)asked[i], &m),
                         0);
        assert_int_equal(attr_u32(&m, STUN_A_LIFETIME), given[i]);
    }
}

static void test_allocate_relay_failure_508(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    stun_msg_t m;

    E->cfg.user_quota = 1;
    E->fail_family = AF_INET;
    E->fail_rc = -1;
    assert_int_equal(request(&c, STUN_ALLOCATE, fill_udp, NULL, &m), 508);
    assert_int_equal(turn_server_stats(E->s)->allocations, 0);
    /* The quota it took is given back. */
    E->fail_family = 0;
    assert_int_equal(request(&c, STUN_ALLOCATE, fill_udp, NULL, &m), 0);
}

static void test_user_quota_486(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000), d = udp("198.51.100.7", 40001);
    turn_client_t e = udp("198.51.100.8", 40000);
    char user[128], pass[64];
    stun_msg_t m;

    E->cfg.user_quota = 1;
    allocate(&c);
    assert_int_equal(request(&d, STUN_ALLOCATE, fill_udp, NULL, &m), 486);
    assert_true(m.integrity >= 0);
    assert_int_equal(request_as(&d, STUN_ALLOCATE, fill_udp, NULL, "bob", "builder", &m, NULL), 0);
    /* REST credentials count under their NAME: two issues, one quota. */
    turn_rest_credential(SECRET, "carol", E->unix_now, 100, user, sizeof(user), pass, sizeof(pass));
    assert_int_equal(request_as(&e, STUN_ALLOCATE, fill_udp, NULL, user, pass, &m, NULL), 0);
    turn_rest_credential(SECRET, "carol", E->unix_now, 200, user, sizeof(user), pass, sizeof(pass));
    e = udp("198.51.100.8", 40001);
    assert_int_equal(request_as(&e, STUN_ALLOCATE, fill_udp, NULL, user, pass, &m, NULL), 486);
    assert_int_equal(turn_server_stats(E->s)->allocations, 3);
}

static void fill_lifetime_only(msg_t *q, void *arg)
{
    msg_u32(q, STUN_A_LIFETIME, (uint32_t)(uintptr_t)arg);
}

/* Shutting down: no new allocation (508), but what is there goes on. */
static void test_draining_508(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000), d = udp("198.51.100.7", 40001);
    stun_msg_t m;

    allocate(&c);
    turn_server_set_draining(E->s);
    assert_int_equal(request(&d, STUN_ALLOCATE, fill_udp, NULL, &m), 508);
    assert_int_equal(turn_server_stats(E->s)->allocations, 1);
    assert_int_equal(open_relays(), 1);
    assert_int_equal(request(&c, STUN_REFRESH, fill_lifetime_only, (void *)1200, &m), 0);
    assert_int_equal(attr_u32(&m, STUN_A_LIFETIME), 1200);
    assert_int_equal(request(&c, STUN_REFRESH, fill_lifetime_only, (void *)0, &m), 0);
    assert_int_equal(turn_server_stats(E->s)->allocations, 0);
    assert_int_equal(open_relays(), 0);
}

static void test_total_quota_508(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000), d = udp("198.51.100.7", 40001);
    turn_client_t e = udp("198.51.100.7", 40002);
    stun_msg_t m;

    E->cfg.total_quota = 2;
    allocate(&c);
    allocate(&d);
    assert_int_equal(request(&e, STUN_ALLOCATE, fill_udp, NULL, &m), 508);
    assert_int_equal(request(&c, STUN_REFRESH, fill_lifetime_only, (void *)0, &m), 0);
    assert_int_equal(request(&e, STUN_ALLOCATE, fill_udp, NULL, &m), 0);
}

/* Two workers' engines sharing their counts. */
static void test_shared_quota_across_engines(void **state)
{
    turn_shared_t *sh = turn_shared_new();
    turn_io_t io = {0};
    turn_server_t *other;
    turn_server_t *mine = E->s;
    turn_client_t c = udp("198.51.100.7", 40000), d = udp("198.51.100.7", 40001);
    stun_msg_t m;

    io.ctx = E;
    io.now_ms = fake_now;
    io.now_unix = fake_unix;
    io.send_client = fake_send;
    io.relay_open = fake_open;
    io.relay_close = fake_close;
    io.port_hold = fake_port_hold;
    io.port_release = fake_port_release;
    io.relay_send = fake_relay_send;
    other = turn_server_new(&E->cfg, &io);
    turn_server_set_shared(E->s, sh);
    turn_server_set_shared(other, sh);
    E->cfg.user_quota = 1;
    allocate(&c);
    /* A nonce from one engine is good on the other (the key is shared). */
    E->s = other;
    assert_int_equal(request(&d, STUN_ALLOCATE, fill_udp, NULL, &m), 486);
    E->cfg.user_quota = 0;
    E->cfg.total_quota = 1;
    assert_int_equal(request(&d, STUN_ALLOCATE, fill_udp, NULL, &m), 508);
    turn_server_free(other);
    E->s = mine;
    turn_server_free(E->s);
    E->s = turn_server_new(&E->cfg, &io);
    turn_shared_free(sh);
}

static void test_nonce_good_across_shared_engines(void **state)
{
    turn_shared_t *sh = turn_shared_new();
    turn_io_t io = {0};
    turn_server_t *other, *mine = E->s;
    turn_client_t c = udp("198.51.100.7", 40000);
    char nonce[64];
    msg_t q;

    io.ctx = E;
    io.now_ms = fake_now;
    io.send_client = fake_send;
    io.relay_open = fake_open;
    io.relay_close = fake_close;
    io.port_hold = fake_port_hold;
    io.port_release = fake_port_release;
    io.relay_send = fake_relay_send;
    other = turn_server_new(&E->cfg, &io);
    turn_server_set_shared(E->s, sh);
    turn_server_set_shared(other, sh);
    fetch_nonce(&c, nonce, sizeof(nonce));
    msg_start(&q, STUN_ALLOCATE, STUN_REQUEST);
    msg_transport(&q, 17);
    msg_sign(&q, "alice", "wonderland", nonce);
    turn_server_on_client(other, &c, q.buf, msg_finish(&q));
    assert_int_equal(last_code(), 0);
    turn_server_free(other);
    turn_server_free(mine);
    E->s = turn_server_new(&E->cfg, &io);
    turn_shared_free(sh);
}

/* An RTCP reservation used from another 5-tuple that the kernel gave to
 * another worker (coturn's turnutils_uclient does this). */
static void test_reservation_across_shared_engines(void **state)
{
    turn_shared_t *sh = turn_shared_new();
    turn_io_t io = {0};
    turn_server_t *other, *mine = E->s;
    turn_client_t c = udp("198.51.100.7", 40000), d = udp("198.51.100.7", 40001);
    uint8_t token[8];
    uint16_t port;
    stun_msg_t m;

    io.ctx = E;
    io.now_ms = fake_now;
    io.now_unix = fake_unix;
    io.send_client = fake_send;
    io.relay_open = fake_open;
    io.relay_close = fake_close;
    io.port_hold = fake_port_hold;
    io.port_release = fake_port_release;
    io.relay_send = fake_relay_send;
    other = turn_server_new(&E->cfg, &io);
    turn_server_set_shared(E->s, sh);
    turn_server_set_shared(other, sh);
    assert_int_equal(request(&c, STUN_ALLOCATE, fill_even, (void *)0x80, &m), 0);
    port = E->relays[E->last_relay].port;
    memcpy(token, stun_msg_find(&m, STUN_A_RESERVATION_TOKEN)->value, 8);
    E->s = other;
    assert_int_equal(request(&d, STUN_ALLOCATE, fill_token, token, &m), 0);
    assert_int_equal(E->relays[E->last_relay].port, port + 1);
    turn_server_free(other);
    turn_server_free(mine);
    E->s = turn_server_new(&E->cfg, &io);
    turn_shared_free(sh);
}

/* ------------------------------------------------------------- Refresh -- */

static void test_refresh(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000), d = udp("198.51.100.7", 40001);
    stun_msg_t m;

    assert_int_equal(request(&d, STUN_REFRESH, NULL, NULL, &m), 437);
    allocate(&c);
    assert_int_equal(request(&c, STUN_REFRESH, fill_lifetime_only, (void *)1200, &m), 0);
    assert_int_equal(attr_u32(&m, STUN_A_LIFETIME), 1200);
    assert_int_equal(request(&c, STUN_REFRESH, fill_lifetime_only, (void *)99999, &m), 0);
    assert_int_equal(attr_u32(&m, STUN_A_LIFETIME), 3600);
    assert_int_equal(request(&c, STUN_REFRESH, fill_lifetime_only, (void *)5, &m), 0);
    assert_int_equal(attr_u32(&m, STUN_A_LIFETIME), 600);
    assert_int_equal(request(&c, STUN_REFRESH, NULL, NULL, &m), 0);
    assert_int_equal(attr_u32(&m, STUN_A_LIFETIME), 600);
    /* The allocation lives 600 s from the last Refresh. */
    advance(599 * 1000);
    assert_int_equal(turn_server_stats(E->s)->allocations, 1);
    advance(1000);
    assert_int_equal(turn_server_stats(E->s)->allocations, 0);
    assert_int_equal(open_relays(), 0);
}

static void fill_refresh_family(msg_t *q, void *arg)
{
    msg_u32(q, STUN_A_REQUESTED_ADDRESS_FAMILY, (uint32_t)(uintptr_t)arg << 24);
}

static void test_refresh_family_443(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    stun_msg_t m;

    allocate(&c);
    assert_int_equal(request(&c, STUN_REFRESH, fill_refresh_family, (void *)2, &m), 443);
    assert_int_equal(request(&c, STUN_REFRESH, fill_refresh_family, (void *)1, &m), 0);
}

static void test_refresh_delete_idempotent(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);
    uint8_t first[MAXDATA];
    size_t first_len;
    stun_msg_t m;
    msg_t q;

    allocate(&c);
    assert_int_equal(
        request_as(&c, STUN_REFRESH, fill_lifetime_only, (void *)0, "alice", "wonderland", &m, &q),
        0);
    assert_int_equal(attr_u32(&m, STUN_A_LIFETIME), 0);
    assert_int_equal(turn_server_stats(E->s)->allocations, 0);
    assert_int_equal(open_relays(), 0);
    first_len = last_sent()->len;
    memcpy(first, last_sent()->data, first_len);
    /* Retransmitted: success again, not 437. */
    advance(39 * 1000);
    send_msg(&c, &q);
    assert_int_equal(last_sent()->len, first_len);
    assert_memory_equal(last_sent()->data, first, first_len);
    /* Past the transaction lifetime it is just a Refresh without allocation. */
    advance(1000);
    send_msg(&c, &q);
    assert_int_equal(last_code(), 437);
    assert_int_equal(turn_server_next_timeout(E->s), -1); /* nothing left, nothing new */
}

/* ------------------------------------------------------ lifetimes, TCP -- */

static void test_allocation_expiry_and_timeout(void **state)
{
    turn_client_t c = udp("198.51.100.7", 40000);

    assert_int_equal(turn_server_next_timeout(E->s), -1);
    allocate(&c);
    advance(40 * 1000); /* the remembered answer goes */
    assert_int_equal(turn_server_next_timeout(E->s), 560 * 1000);
    advance(559 * 1000);
    assert_int_equal(turn_server_next_timeout(E->s), 1000);
    assert_int_equal(turn_server_stats(E->s)->allocations, 1);
    advance(1000);
    assert_int_equal(turn_server_stats(E->s)->allocations, 0);
    assert_int_equal(open_relays(), 0);
    assert_int_equal(turn_server_next_timeout(E->s), -1);
}

static void test_stream_close_frees(void **state)
{
    turn_client_t c = client_of(TURN_TRANSPORT_TCP, "198.51.100.7", 40000, 17);
    turn_client_t other = client_of(TURN_TRANSPORT_TCP, "198.51.100.7", 40000, 18);
    stun_msg_t m;

    allocate(&c);
    /* Another connection is another 5-tuple. */
    assert_int_equal(request(&other, STUN_REFRESH, NULL, NULL, &m), 437);
    turn_server_on_client_closed(E->s, &other);
    assert_int_equal(turn_server_stats(E->s)->allocations, 1);
    turn_server_on_client_closed(E->s, &c);
    assert_int_equal(turn_server_stats(E->s)->allocations, 0);
    assert_int_equal(open_relays(), 0);
}

static void test_many_allocations(void **state)
{
    stun_msg_t m;

    /* Enough to grow the 5-tuple table and the heap; then expire all. */
    for (unsigned i = 0; i < 100; i++) {
        turn_client_t c = udp("198.51.100.9", (uint16_t)(20000 + i));
        assert_int_equal(
            request(&c, STUN_ALLOCATE, fill_lifetime, (void *)(uintptr_t)(600 + i), &m), 0);
        forget();
    }
    assert_int_equal(turn_server_stats(E->s)->allocations, 100);
    for (unsigned i = 0; i < 100; i++) {
        turn_client_t c = udp("198.51.100.9", (uint16_t)(20000 + i));
        assert_int_equal(request(&c, STUN_REFRESH, NULL, NULL, &m), 0);
        forget();
    }
    advance(600 * 1000);
    assert_int_equal(turn_server_stats(E->s)->allocations, 0);
}

/* --------------------------------------------------- TCP relays (6062) -- */

static void fill_tcp(msg_t *q, void *arg)
{
    (void)arg;
    msg_transport(q, 6);
}

static void fill_tcp_even(msg_t *q, void *arg)
{
    uint8_t even = 0;

    (void)arg;
    msg_transport(q, 6);
    stun_add_attr(&q->b, STUN_A_EVEN_PORT, &even, 1);
}

static void fill_peer(msg_t *q, void *arg)
{
    msg_peer(q, (const char *)arg, 8000);
}

static void fill_cid(msg_t *q, void *arg)
{
    msg_u32(q, STUN_A_CONNECTION_ID, (uint32_t)(uintptr_t)arg);
}

/* A TCP allocation for c, with a permission for 203.0.113.5: its relay. */
static turn_relay_t allocate_tcp(const turn_client_t *c)
{
    stun_msg_t m;

    assert_int_equal(request(c, STUN_ALLOCATE, fill_tcp, NULL, &m), 0);
    assert_true(E->relays[E->last_relay].flags & TURN_RELAY_TCP);
    assert_int_equal(request(c, STUN_CREATE_PERMISSION, fill_peer, "203.0.113.5", &m), 0);
    return E->last_relay;
}

/* A signed Connect to 203.0.113.5:8000 whose answer may come later. */
static void send_connect(const turn_client_t *c, const char *ip)
{
    char nonce[64];
    msg_t q;

    fetch_nonce(c, nonce, sizeof(nonce));
    msg_start(&q, STUN_CONNECT, STUN_REQUEST);
    msg_peer(&q, ip, 8000);
    msg_sign(&q, "alice", "wonderland", nonce);
    stun_add_fingerprint(&q.b);
    forget();
    send_msg(c, &q);
}

static void test_tcp_allocate_rules(void **state)
{
    turn_client_t c = client_of(TURN_TRANSPORT_TCP, "198.51.100.7", 40000, 17);
    turn_client_t u = udp("198.51.100.7", 40000);
    stun_msg_t m;

    assert_int_equal(request(&c, STUN_ALLOCATE, fill_tcp_even, NULL, &m), 400);
    assert_int_equal(E->nopened, 0);
    allocate_tcp(&c);
    /* No channels and no Send on a TCP allocation; no Connect on a UDP one. */
    assert_int_equal(request(&c, STUN_CHANNEL_BIND, NULL, NULL, &m), 400);
    allocate(&u);
    assert_int_equal(request(&u, STUN_CREATE_PERMISSION, fill_peer, "203.0.113.5", &m), 0);
    send_connect(&u, "203.0.113.5");
    assert_int_equal(last_code(), 400);
    assert_int_equal(E->next_handle, 0);
}

static void test_tcp_connect_and_bind(void **state)
{
    turn_client_t c = client_of(TURN_TRANSPORT_TCP, "198.51.100.7", 40000, 17);
    turn_client_t d = client_of(TURN_TRANSPORT_TCP, "198.51.100.7", 40001, 18);
    uint8_t key[16];
    stun_msg_t m;
    uint32_t id;

    allocate_tcp(&c);
    send_connect(&c, "203.0.113.9"); /* no permission */
    assert_int_equal(last_code(), 403);
    send_connect(&c, "203.0.113.5");
    assert_int_equal(E->nsent, 0); /* answered once connected */
    assert_int_equal(E->next_handle, 1);
    assert_int_equal(addr_port(&E->connect_peer), 8000);
    turn_server_on_tcp_connected(E->s, 1, 1);
    assert_int_equal(E->nsent, 1);
    last_msg(&m);
    assert_int_equal(code_of(&m), 0);
    assert_int_equal(m.method, STUN_CONNECT);
    assert_int_equal(last_sent()->client.conn_id, 17);
    key_md5("alice", "wonderland", key);
    assert_int_equal(stun_check_integrity(&m, key, sizeof(key)), 1);
    id = attr_u32(&m, STUN_A_CONNECTION_ID);
    /* A second connection to the same peer. */
    send_connect(&c, "203.0.113.5");
    assert_int_equal(last_code(), 446);
    /* On the control connection: refused. */
    assert_int_equal(request(&c, STUN_CONNECTION_BIND, fill_cid, (void *)(uintptr_t)id, &m), 400);
    /* Another user: 441. */
    assert_int_equal(request_as(&d, STUN_CONNECTION_BIND, fill_cid, (void *)(uintptr_t)id, "bob",
                                "builder", &m, NULL),
                     441);
    assert_int_equal(request(&d, STUN_CONNECTION_BIND, fill_cid, (void *)(uintptr_t)id, &m), 0);
    assert_int_equal(E->splice_data, 18);
    assert_int_equal(E->splice_peer, 1);
    /* Bound: once only, and it never expires. */
    assert_int_equal(request(&d, STUN_CONNECTION_BIND, fill_cid, (void *)(uintptr_t)id, &m), 400);
    advance(60 * 1000);
    assert_int_equal(E->nclosed_tcp, 0);
    /* The peer closes: so does the data connection. */
    turn_server_on_tcp_closed(E->s, 1);
    assert_true(tcp_closed(18));
    assert_false(tcp_closed(1));
}

static void test_tcp_connect_failures_447(void **state)
{
    turn_client_t c = client_of(TURN_TRANSPORT_TCP, "198.51.100.7", 40000, 17);

    allocate_tcp(&c);
    E->connect_fail = 1;
    send_connect(&c, "203.0.113.5");
    assert_int_equal(last_code(), 447);
    E->connect_fail = 0;
    send_connect(&c, "203.0.113.5");
    turn_server_on_tcp_connected(E->s, 1, 0);
    assert_int_equal(last_code(), 447);
    /* No answer in 10 s: 447, and the attempt is closed. */
    send_connect(&c, "203.0.113.5");
    assert_int_equal(E->nsent, 0);
    advance(9000);
    assert_int_equal(E->nsent, 0);
    advance(1000);
    assert_int_equal(last_code(), 447);
    assert_true(tcp_closed(2));
    /* A report after that is for a connection the engine forgot. */
    turn_server_on_tcp_connected(E->s, 2, 1);
    assert_int_equal(E->nsent, 1);
}

static void test_tcp_connection_attempt(void **state)
{
    turn_client_t c = client_of(TURN_TRANSPORT_TCP, "198.51.100.7", 40000, 17);
    turn_client_t d = client_of(TURN_TRANSPORT_TCP, "198.51.100.7", 40001, 18);
    struct sockaddr_storage peer, got;
    socklen_t len;
    turn_relay_t relay;
    stun_msg_t m;
    uint32_t id;

    relay = allocate_tcp(&c);
    make_addr(&peer, &len, "203.0.113.9", 5555);
    forget();
    assert_int_equal(turn_server_on_tcp_accept(E->s, relay, (struct sockaddr *)&peer, 100), 0);
    assert_int_equal(E->nsent, 0);
    make_addr(&peer, &len, "203.0.113.5", 5555);
    id = turn_server_on_tcp_accept(E->s, relay, (struct sockaddr *)&peer, 100);
    assert_int_not_equal(id, 0);
    last_msg(&m);
    assert_int_equal(m.method, STUN_CONNECTION_ATTEMPT);
    assert_int_equal(m.cls, STUN_INDICATION);
    assert_int_equal(last_sent()->client.conn_id, 17);
    assert_int_equal(attr_u32(&m, STUN_A_CONNECTION_ID), id);
    assert_int_equal(stun_attr_addr(&m, stun_msg_find(&m, STUN_A_XOR_PEER_ADDRESS), 1, &got, &len),
                     TS_OK);
    assert_true(same_addr(&got, &peer));
    /* An unknown CONNECTION-ID. */
    assert_int_equal(request(&d, STUN_CONNECTION_BIND, fill_cid, (void *)(uintptr_t)(id + 1), &m),
                     400);
    /* Not bound in 30 s: the peer connection is closed, the id forgotten. */
    advance(29000);
    assert_false(tcp_closed(100));
    advance(1000);
    assert_true(tcp_closed(100));
    assert_int_equal(request(&d, STUN_CONNECTION_BIND, fill_cid, (void *)(uintptr_t)id, &m), 400);
}

static void test_tcp_delete_closes_connections(void **state)
{
    turn_client_t c = client_of(TURN_TRANSPORT_TCP, "198.51.100.7", 40000, 17);
    turn_client_t d = client_of(TURN_TRANSPORT_TCP, "198.51.100.7", 40001, 18);
    struct sockaddr_storage peer;
    socklen_t len;
    turn_relay_t relay;
    stun_msg_t m;
    uint32_t id;

    relay = allocate_tcp(&c);
    make_addr(&peer, &len, "203.0.113.5", 5555);
    id = turn_server_on_tcp_accept(E->s, relay, (struct sockaddr *)&peer, 100);
    assert_int_equal(request(&d, STUN_CONNECTION_BIND, fill_cid, (void *)(uintptr_t)id, &m), 0);
    make_addr(&peer, &len, "203.0.113.5", 5556);
    assert_int_not_equal(turn_server_on_tcp_accept(E->s, relay, (struct sockaddr *)&peer, 101), 0);
    for (uint64_t h = 200; h < 200 + 14; h++)
        assert_int_not_equal(turn_server_on_tcp_accept(E->s, relay, (struct sockaddr *)&peer, h),
                             0);
    /* Sixteen is the cap. */
    assert_int_equal(turn_server_on_tcp_accept(E->s, relay, (struct sockaddr *)&peer, 300), 0);
    turn_server_on_client_closed(E->s, &c);
    assert_int_equal(turn_server_stats(E->s)->allocations, 0);
    assert_true(tcp_closed(100));
    assert_true(tcp_closed(18));
    assert_true(tcp_closed(101));
    assert_int_equal(E->nclosed_tcp, 17);
    /* No ConnectionBind deadline is left (remembered answers are). */
    assert_true(turn_server_next_timeout(E->s) > 30000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_binding_v4),
        T(test_binding_v6),
        T(test_binding_optional_attributes_fit),
        T(test_binding_budget_order),
        T(test_binding_fingerprint_mirrored),
        T(test_binding_rfc3489),
        T(test_binding_indication_silent),
        T(test_binding_over_tcp),
        T(test_request_rate_limit),
        T(test_request_rate_every_method),
        T(test_request_rate_ipv6_per_64),
        T(test_request_rate_spray_bounded),
        T(test_unknown_attribute_420),
        T(test_420_to_response_port),
        T(test_unknown_attributes_420_lists_what_fits),
        T(test_unknown_method_400),
        T(test_garbage_dropped),
        T(test_garbage_channel_data_dropped),
        T(test_no_credentials_401),
        T(test_401_optional_attributes),
        T(test_allocate_authenticated),
        T(test_wrong_password_401),
        T(test_missing_auth_attributes_400),
        T(test_stale_nonce_438_then_recovery),
        T(test_stale_nonce_option),
        T(test_forged_nonce_401),
        T(test_sha256_and_userhash),
        T(test_password_algorithm_mismatch_400),
        T(test_rest_credentials),
        T(test_allocate_transport_errors),
        T(test_allocate_mismatch_and_retransmission),
        T(test_allocate_other_user_441),
        T(test_allocate_requested_family),
        T(test_allocate_dual_stack),
        T(test_allocate_even_port_reservation),
        T(test_reservation_port_taken),
        T(test_reservation_expires_after_30s),
        T(test_allocate_lifetimes),
        T(test_allocate_relay_failure_508),
        T(test_draining_508),
        T(test_user_quota_486),
        T(test_total_quota_508),
        T(test_shared_quota_across_engines),
        T(test_nonce_good_across_shared_engines),
        T(test_reservation_across_shared_engines),
        T(test_refresh),
        T(test_refresh_family_443),
        T(test_refresh_delete_idempotent),
        T(test_allocation_expiry_and_timeout),
        T(test_stream_close_frees),
        T(test_many_allocations),
        T(test_tcp_allocate_rules),
        T(test_tcp_connect_and_bind),
        T(test_tcp_connect_failures_447),
        T(test_tcp_connection_attempt),
        T(test_tcp_delete_closes_connections),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
