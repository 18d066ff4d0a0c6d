/*
 * test_tls_dtls.c — the stateless DTLS cookies: one vector computed
 * elsewhere (Python's hmac over the documented layout), the epoch window,
 * and every part of the 5-tuple and the secret changing the cookie; and the
 * context refusing a missing certificate with a reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "tls/dtls.h"

static void set_v4(struct sockaddr_storage *ss, socklen_t *len, const char *ip, uint16_t port)
{
    struct sockaddr_in *in = (struct sockaddr_in *)ss;

    memset(ss, 0, sizeof(*ss));
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
    *len = sizeof(*in);
}

static void set_v6(struct sockaddr_storage *ss, socklen_t *len, const char *ip, uint16_t port)
{
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
    *len = sizeof(*in6);
}

static void tuple_v4(ts_dtls_tuple_t *t)
{
    set_v4(&t->peer, &t->peer_len, "192.0.2.1", 3478);
    set_v4(&t->local, &t->local_len, "198.51.100.2", 5349);
}

static uint8_t secret[TS_DTLS_SECRET_LEN];

static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < TS_DTLS_SECRET_LEN; i++)
        secret[i] = (uint8_t)i;
    return 0;
}

static void test_cookie_vector(void **state)
{
    /* HMAC-SHA256(secret 00..1f, epoch as 8 bytes big-endian, then per
     * address: family, IP as ::ffff:a.b.c.d, port), first 20 bytes. */
    static const uint8_t mac[20] = {0x63, 0x7e, 0x1a, 0x6c, 0x44, 0x34, 0xb6, 0x95, 0xe0, 0x06,
                                    0x32, 0x9f, 0x55, 0x30, 0x7b, 0xe1, 0x78, 0x35, 0xc8, 0x5f};
    ts_dtls_tuple_t t;
    uint8_t c[TS_DTLS_COOKIE_LEN];

    (void)state;
    tuple_v4(&t);
    ts_dtls_cookie_make(secret, 5, &t, c);
    assert_int_equal(c[0], 5);
    assert_memory_equal(c + 1, mac, sizeof(mac));
}

static void test_cookie_epochs(void **state)
{
    ts_dtls_tuple_t t;
    uint8_t c[TS_DTLS_COOKIE_LEN];

    (void)state;
    tuple_v4(&t);
    ts_dtls_cookie_make(secret, 1000, &t, c);
    assert_true(ts_dtls_cookie_check(secret, 1000, &t, c, sizeof(c)));
    assert_true(ts_dtls_cookie_check(secret, 1001, &t, c, sizeof(c))); /* the one before */
    assert_false(ts_dtls_cookie_check(secret, 1002, &t, c, sizeof(c)));
    assert_false(ts_dtls_cookie_check(secret, 999, &t, c, sizeof(c))); /* from the future */
    assert_false(ts_dtls_cookie_check(secret, 1000 + 256, &t, c, sizeof(c)));
    /* The epoch byte wraps: 255 -> 256 is still "the one before". */
    ts_dtls_cookie_make(secret, 255, &t, c);
    assert_true(ts_dtls_cookie_check(secret, 256, &t, c, sizeof(c)));
    /* Epoch 0 has no "before" to underflow into. */
    ts_dtls_cookie_make(secret, 0, &t, c);
    assert_true(ts_dtls_cookie_check(secret, 0, &t, c, sizeof(c)));
}

static void test_cookie_bound_to_tuple(void **state)
{
    ts_dtls_tuple_t t, o;
    uint8_t c[TS_DTLS_COOKIE_LEN], other_secret[TS_DTLS_SECRET_LEN];

    (void)state;
    tuple_v4(&t);
    ts_dtls_cookie_make(secret, 7, &t, c);

    o = t; /* another source port */
    set_v4(&o.peer, &o.peer_len, "192.0.2.1", 3479);
    assert_false(ts_dtls_cookie_check(secret, 7, &o, c, sizeof(c)));
    o = t; /* another source address */
    set_v4(&o.peer, &o.peer_len, "192.0.2.2", 3478);
    assert_false(ts_dtls_cookie_check(secret, 7, &o, c, sizeof(c)));
    o = t; /* reached another server address */
    set_v4(&o.local, &o.local_len, "198.51.100.3", 5349);
    assert_false(ts_dtls_cookie_check(secret, 7, &o, c, sizeof(c)));
    o = t; /* the same IP from an IPv6 socket (mapped): another family, another cookie */
    set_v6(&o.peer, &o.peer_len, "::ffff:192.0.2.1", 3478);
    assert_false(ts_dtls_cookie_check(secret, 7, &o, c, sizeof(c)));

    memcpy(other_secret, secret, sizeof(secret));
    other_secret[31] ^= 1;
    assert_false(ts_dtls_cookie_check(other_secret, 7, &t, c, sizeof(c)));

    for (size_t i = 1; i < sizeof(c); i++) {
        c[i] ^= 0x80;
        assert_false(ts_dtls_cookie_check(secret, 7, &t, c, sizeof(c)));
        c[i] ^= 0x80;
    }
    assert_true(ts_dtls_cookie_check(secret, 7, &t, c, sizeof(c)));
    assert_false(ts_dtls_cookie_check(secret, 7, &t, c, sizeof(c) - 1));
    assert_false(ts_dtls_cookie_check(secret, 7, &t, c, 0));
}

static void test_cookie_v6(void **state)
{
    ts_dtls_tuple_t t, o;
    uint8_t c[TS_DTLS_COOKIE_LEN];

    (void)state;
    set_v6(&t.peer, &t.peer_len, "2001:db8::1", 40000);
    set_v6(&t.local, &t.local_len, "2001:db8::2", 5349);
    ts_dtls_cookie_make(secret, 9, &t, c);
    assert_true(ts_dtls_cookie_check(secret, 9, &t, c, sizeof(c)));
    o = t;
    set_v6(&o.peer, &o.peer_len, "2001:db8::1:1", 40000);
    assert_false(ts_dtls_cookie_check(secret, 9, &o, c, sizeof(c)));
}

static void test_ctx_missing_cert(void **state)
{
    char err[256] = "";

    (void)state;
    assert_null(ts_dtls_ctx_new("/nonexistent/cert.pem", "/nonexistent/key.pem", err, sizeof(err)));
    assert_non_null(strstr(err, "--cert /nonexistent/cert.pem"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cookie_vector),         cmocka_unit_test(test_cookie_epochs),
        cmocka_unit_test(test_cookie_bound_to_tuple), cmocka_unit_test(test_cookie_v6),
        cmocka_unit_test(test_ctx_missing_cert),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
