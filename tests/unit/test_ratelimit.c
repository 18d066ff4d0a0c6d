/* Token buckets and the per-address table (--signaling-rate, --turn-request-rate),
 * on a fake clock: the times below are plain numbers of milliseconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "core/common.h"
#include "core/ratelimit.h"

#define T0 1000000 /* an arbitrary start: the loop clock is not 0 at start-up */

/* Tokens taken from b at now until it refuses, at most max. */
static unsigned drain(ts_ratelimit_bucket_t *b, unsigned rate, unsigned burst, uint64_t now,
                      unsigned max)
{
    unsigned n = 0;

    while (n < max && ts_ratelimit_take(b, rate, burst, now))
        n++;
    return n;
}

static void test_burst_then_limit(void **state)
{
    ts_ratelimit_bucket_t b;

    ts_ratelimit_init(&b, 20, T0);
    assert_int_equal(drain(&b, 5, 20, T0, 1000), 20);
    assert_int_equal(ts_ratelimit_take(&b, 5, 20, T0), 0);
    /* Refused takes cost nothing: the next token is still 200 ms away. */
    assert_int_equal(ts_ratelimit_take(&b, 5, 20, T0 + 199), 0);
    assert_int_equal(ts_ratelimit_take(&b, 5, 20, T0 + 200), 1);
    assert_int_equal(ts_ratelimit_take(&b, 5, 20, T0 + 200), 0);
}

static void test_refill_rate(void **state)
{
    ts_ratelimit_bucket_t b;
    unsigned got = 0;

    ts_ratelimit_init(&b, 10, T0);
    drain(&b, 3, 10, T0, 100);
    /* 3 a second, asked every millisecond for 10 s: 30, thirds of a token
     * carried over rather than lost. */
    for (uint64_t t = T0 + 1; t <= T0 + 10000; t++)
        got += (unsigned)ts_ratelimit_take(&b, 3, 10, t);
    assert_int_equal(got, 30);
}

static void test_refill_caps_at_burst(void **state)
{
    ts_ratelimit_bucket_t b;

    ts_ratelimit_init(&b, 8, T0);
    drain(&b, 100, 8, T0, 100);
    /* An hour idle buys the burst, not 360,000 tokens. */
    assert_int_equal(drain(&b, 100, 8, T0 + 3600000, 1000), 8);
}

static void test_rate_zero_unlimited(void **state)
{
    ts_ratelimit_bucket_t b;

    ts_ratelimit_init(&b, 1, T0);
    assert_int_equal(drain(&b, 0, 1, T0, 5000), 5000);
}

/* SIGHUP changes rate and burst: the next take uses the new ones. */
static void test_new_limits_apply_at_once(void **state)
{
    ts_ratelimit_bucket_t b;

    ts_ratelimit_init(&b, 100, T0);
    assert_int_equal(drain(&b, 10, 100, T0, 10), 10); /* 90 left */
    assert_int_equal(drain(&b, 10, 5, T0, 1000), 5);  /* cut down to the smaller burst */
    assert_int_equal(drain(&b, 10, 100, T0 + 1000, 1000), 10);
}

static void test_clock_wrap(void **state)
{
    ts_ratelimit_bucket_t b;
    uint64_t t = 0xfffffff0ull; /* the stamp keeps 32 bits */

    ts_ratelimit_init(&b, 2, t);
    assert_int_equal(drain(&b, 1000, 2, t, 10), 2);
    assert_int_equal(drain(&b, 1000, 2, t + 0x20, 10), 2); /* 32 ms later, across 2^32 */
}

/* ------------------------------------------------------------ table -- */

static struct sockaddr_storage addr(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':') == NULL) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
    }
    return ss;
}

/* Requests from ip granted at now, at most max. */
static unsigned table_drain(ts_ratelimit_table_t *t, const char *ip, uint16_t port, unsigned rate,
                            unsigned burst, uint64_t now, unsigned max)
{
    struct sockaddr_storage ss = addr(ip, port);
    unsigned n = 0;

    while (n < max && ts_ratelimit_table_take(t, (struct sockaddr *)&ss, rate, burst, now))
        n++;
    return n;
}

static void test_table_per_address(void **state)
{
    ts_ratelimit_table_t *t = ts_ratelimit_table_new(64);

    assert_int_equal(table_drain(t, "192.0.2.1", 1000, 10, 4, T0, 100), 4);
    /* Another port of the same address shares the bucket ... */
    assert_int_equal(table_drain(t, "192.0.2.1", 2000, 10, 4, T0, 100), 0);
    /* ... as does the same address mapped into IPv6. */
    assert_int_equal(table_drain(t, "::ffff:192.0.2.1", 1000, 10, 4, T0, 100), 0);
    /* Another address has its own. */
    assert_int_equal(table_drain(t, "192.0.2.2", 1000, 10, 4, T0, 100), 4);
    assert_int_equal(ts_ratelimit_table_used(t), 2);
    /* 100 ms later one token came back. */
    assert_int_equal(table_drain(t, "192.0.2.1", 3000, 10, 4, T0 + 100, 100), 1);
    ts_ratelimit_table_free(t);
}

static void test_table_ipv6_per_64(void **state)
{
    ts_ratelimit_table_t *t = ts_ratelimit_table_new(64);

    assert_int_equal(table_drain(t, "2001:db8:1:2::1", 1, 10, 3, T0, 100), 3);
    /* Anywhere else in 2001:db8:1:2::/64 is the same client. */
    assert_int_equal(table_drain(t, "2001:db8:1:2:ffff:1:2:3", 1, 10, 3, T0, 100), 0);
    /* The next /64 is not. */
    assert_int_equal(table_drain(t, "2001:db8:1:3::1", 1, 10, 3, T0, 100), 3);
    /* ::1 and :: share the zero /64, which is a key like any other. */
    assert_int_equal(table_drain(t, "::1", 1, 10, 3, T0, 100), 3);
    assert_int_equal(table_drain(t, "::2", 1, 10, 3, T0, 100), 0);
    assert_int_equal(ts_ratelimit_table_used(t), 3);
    ts_ratelimit_table_free(t);
}

static void test_table_rate_zero(void **state)
{
    ts_ratelimit_table_t *t = ts_ratelimit_table_new(64);

    assert_int_equal(table_drain(t, "192.0.2.1", 1, 0, 1, T0, 3000), 3000);
    assert_int_equal(ts_ratelimit_table_used(t), 0); /* nothing is even stored */
    ts_ratelimit_table_free(t);
}

/* A spray of source addresses never grows the table. */
static void test_table_bounded(void **state)
{
    ts_ratelimit_table_t *t = ts_ratelimit_table_new(1000);
    char ip[64];
    size_t size = ts_ratelimit_table_size(t);

    assert_int_equal(size, 1024);
    for (unsigned i = 0; i < 200000; i++) {
        struct sockaddr_storage ss;
        snprintf(ip, sizeof(ip), "2001:db8:%x:%x::1", i >> 16, i & 0xffff);
        ss = addr(ip, 1);
        assert_true(ts_ratelimit_table_take(t, (struct sockaddr *)&ss, 10, 2, T0 + i / 100));
        assert_true(ts_ratelimit_table_used(t) <= size);
    }
    assert_int_equal(ts_ratelimit_table_used(t), size);
    assert_int_equal(ts_ratelimit_table_size(t), size);
    ts_ratelimit_table_free(t);
}

/* A full table replaces an entry that has refilled (it is worth nothing)
 * before one that still holds a client back. */
static void test_table_evicts_idle_first(void **state)
{
    ts_ratelimit_table_t *t = ts_ratelimit_table_new(TS_RATELIMIT_WAYS); /* one set */
    static const char *const idle[] = {"192.0.2.1", "192.0.2.2", "192.0.2.3"};

    assert_int_equal(ts_ratelimit_table_size(t), TS_RATELIMIT_WAYS);
    for (size_t i = 0; i < TS_ARRAY_SIZE(idle); i++)
        assert_int_equal(table_drain(t, idle[i], 1, 10, 5, T0, 1), 1);
    /* 198.51.100.1 is held back; the others refill meanwhile. */
    assert_int_equal(table_drain(t, "198.51.100.1", 1, 10, 5, T0 + 500, 100), 5);
    assert_int_equal(ts_ratelimit_table_used(t), 4);
    for (unsigned i = 0; i < 50; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "203.0.113.%u", i + 1);
        assert_int_equal(table_drain(t, ip, 1, 10, 5, T0 + 600 + i, 1), 1);
        /* Still remembered, still limited (it has earned one token by now). */
        assert_int_equal(table_drain(t, "198.51.100.1", 1, 10, 5, T0 + 600 + i, 100),
                         i == 0 ? 1 : 0);
    }
    assert_int_equal(ts_ratelimit_table_used(t), 4);
    ts_ratelimit_table_free(t);
}

/* With no refilled entry to replace, the least recently used goes, and
 * comes back with a full bucket: the table errs towards letting through. */
static void test_table_evicts_lru(void **state)
{
    ts_ratelimit_table_t *t = ts_ratelimit_table_new(TS_RATELIMIT_WAYS);
    char ip[32];

    for (unsigned i = 0; i < TS_RATELIMIT_WAYS; i++) {
        snprintf(ip, sizeof(ip), "192.0.2.%u", i + 1);
        assert_int_equal(table_drain(t, ip, 1, 1, 3, T0 + i, 100), 3);
    }
    assert_int_equal(table_drain(t, "198.51.100.1", 1, 1, 3, T0 + 10, 100), 3);
    /* 192.0.2.1, used longest ago, was replaced; 192.0.2.4 was not. */
    assert_int_equal(table_drain(t, "192.0.2.4", 1, 1, 3, T0 + 10, 100), 0);
    assert_int_equal(table_drain(t, "192.0.2.1", 1, 1, 3, T0 + 10, 100), 3);
    ts_ratelimit_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_limit),         cmocka_unit_test(test_refill_rate),
        cmocka_unit_test(test_refill_caps_at_burst),     cmocka_unit_test(test_rate_zero_unlimited),
        cmocka_unit_test(test_new_limits_apply_at_once), cmocka_unit_test(test_clock_wrap),
        cmocka_unit_test(test_table_per_address),        cmocka_unit_test(test_table_ipv6_per_64),
        cmocka_unit_test(test_table_rate_zero),          cmocka_unit_test(test_table_bounded),
        cmocka_unit_test(test_table_evicts_idle_first),  cmocka_unit_test(test_table_evicts_lru),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
