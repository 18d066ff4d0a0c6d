/* Connections per client address (--max-connections-per-ip). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <pthread.h>

#include "core/common.h"
#include "core/iplimit.h"
#include "core/net.h"

static ts_peer_t peer(const char *text, uint16_t port)
{
    ts_peer_t p;

    memset(&p, 0, sizeof(p));
    p.port = port;
    if (inet_pton(AF_INET, text, p.addr) == 1) {
        p.family = AF_INET;
    } else {
        assert_int_equal(inet_pton(AF_INET6, text, p.addr), 1);
        p.family = AF_INET6;
    }
    return p;
}

static void test_limit_per_address(void **state)
{
    ts_iplimit_t *t = ts_iplimit_new();
    ts_peer_t a = peer("192.0.2.1", 1000), a2 = peer("192.0.2.1", 2000);
    ts_peer_t b = peer("192.0.2.2", 1000);

    assert_int_equal(ts_iplimit_acquire(t, &a, 2), TS_OK);
    assert_int_equal(ts_iplimit_acquire(t, &a2, 2), TS_OK); /* the port does not matter */
    assert_int_equal(ts_iplimit_acquire(t, &a, 2), TS_ERR_LIMIT);
    assert_int_equal(ts_iplimit_acquire(t, &b, 2), TS_OK); /* another address has its own */
    assert_int_equal(ts_iplimit_count(t, &a), 2);
    assert_int_equal(ts_iplimit_count(t, &b), 1);
    assert_int_equal(ts_iplimit_addresses(t), 2);

    ts_iplimit_release(t, &a);
    assert_int_equal(ts_iplimit_acquire(t, &a, 2), TS_OK); /* a slot came free */
    ts_iplimit_release(t, &a);
    ts_iplimit_release(t, &a2);
    ts_iplimit_release(t, &b);
    assert_int_equal(ts_iplimit_count(t, &a), 0);
    assert_int_equal(ts_iplimit_addresses(t), 0);
    ts_iplimit_release(t, &b); /* one too many: ignored, never negative */
    assert_int_equal(ts_iplimit_count(t, &b), 0);
    ts_iplimit_free(t);
}

static void test_ipv6_counted_per_64(void **state)
{
    ts_iplimit_t *t = ts_iplimit_new();
    ts_peer_t a = peer("2001:db8:1:2::1", 1), a2 = peer("2001:db8:1:2:ffff::9", 1);
    ts_peer_t other = peer("2001:db8:1:3::1", 1);

    assert_int_equal(ts_iplimit_acquire(t, &a, 1), TS_OK);
    assert_int_equal(ts_iplimit_acquire(t, &a2, 1), TS_ERR_LIMIT); /* same /64 */
    assert_int_equal(ts_iplimit_acquire(t, &other, 1), TS_OK);     /* next /64 */
    ts_iplimit_release(t, &a);
    ts_iplimit_release(t, &other);
    assert_int_equal(ts_iplimit_addresses(t), 0);
    ts_iplimit_free(t);
}

static void test_mapped_ipv4_is_ipv4(void **state)
{
    ts_iplimit_t *t = ts_iplimit_new();
    ts_peer_t v4 = peer("198.51.100.7", 1), mapped = peer("::ffff:198.51.100.7", 2);
    ts_peer_t mapped_other = peer("::ffff:198.51.100.8", 2);

    assert_int_equal(ts_iplimit_acquire(t, &v4, 1), TS_OK);
    assert_int_equal(ts_iplimit_acquire(t, &mapped, 1), TS_ERR_LIMIT);
    /* Not lumped together as one /64 (::ffff:0:0/64 holds every IPv4). */
    assert_int_equal(ts_iplimit_acquire(t, &mapped_other, 1), TS_OK);
    ts_iplimit_release(t, &mapped_other);
    ts_iplimit_release(t, &v4);
    ts_iplimit_free(t);
}

/* Many addresses: the tables grow, and removals keep every other address
 * reachable (backward-shift deletion, no tombstones). */
static void test_many_addresses(void **state)
{
    ts_iplimit_t *t = ts_iplimit_new();
    enum { N = 20000 };
    ts_peer_t p = peer("10.0.0.0", 1);

    for (uint32_t i = 0; i < N; i++) {
        uint32_t a = htonl(0x0a000000u + i);
        memcpy(p.addr, &a, 4);
        assert_int_equal(ts_iplimit_acquire(t, &p, 3), TS_OK);
        if (i % 2 == 0)
            assert_int_equal(ts_iplimit_acquire(t, &p, 3), TS_OK);
    }
    assert_int_equal(ts_iplimit_addresses(t), N);
    for (uint32_t i = 0; i < N; i += 3) {
        uint32_t a = htonl(0x0a000000u + i);
        memcpy(p.addr, &a, 4);
        ts_iplimit_release(t, &p);
        if (i % 2 == 0)
            ts_iplimit_release(t, &p);
    }
    for (uint32_t i = 0; i < N; i++) {
        uint32_t a = htonl(0x0a000000u + i);
        unsigned want = i % 3 == 0 ? 0 : i % 2 == 0 ? 2 : 1;
        memcpy(p.addr, &a, 4);
        assert_int_equal(ts_iplimit_count(t, &p), want);
    }
    assert_int_equal(ts_iplimit_addresses(t), N - (N + 2) / 3);
    ts_iplimit_free(t);
}

/* Workers accept and close at once: the count ends where it began and never
 * passes the limit. */
typedef struct {
    ts_iplimit_t *t;
    int refused;
} race_t;

static void *race_worker(void *arg)
{
    race_t *r = arg;
    ts_peer_t p = peer("203.0.113.5", 1);

    for (int i = 0; i < 20000; i++) {
        if (ts_iplimit_acquire(r->t, &p, 4) == TS_OK) {
            assert_true(ts_iplimit_count(r->t, &p) <= 4);
            ts_iplimit_release(r->t, &p);
        } else {
            r->refused++;
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    ts_iplimit_t *t = ts_iplimit_new();
    pthread_t th[6];
    race_t r[6];

    for (int i = 0; i < 6; i++) {
        r[i] = (race_t){t, 0};
        assert_int_equal(pthread_create(&th[i], NULL, race_worker, &r[i]), 0);
    }
    for (int i = 0; i < 6; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(ts_iplimit_addresses(t), 0);
    ts_iplimit_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_per_address),
        cmocka_unit_test(test_ipv6_counted_per_64),
        cmocka_unit_test(test_mapped_ipv4_is_ipv4),
        cmocka_unit_test(test_many_addresses),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
