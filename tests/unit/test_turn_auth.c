/*
 * test_turn_auth.c — TURN credentials and the peer filter: nonces on a fake
 * clock (valid, stale, foreign, tampered, truncated), static users, TURN
 * REST API passwords against values computed elsewhere, coturn's username
 * forms and the expiry boundary, and the peer filter on the first and last
 * address of every default range, in every form that embeds an IPv4
 * address, with the overrides.
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
#include <openssl/evp.h>
#include <sys/un.h>

#include "core/common.h"
#include "core/config.h"
#include "turn/auth.h"

/* ---- nonces ---------------------------------------------------------------- */

#define T0 1000000u /* the fake clock, in ms */

static void test_nonce_init(void **state)
{
    static const uint8_t zero[32];
    turn_auth_t a, b;

    turn_auth_init(&a);
    turn_auth_init(&b);
    assert_int_equal(a.nonce_ttl_ms, 600000);
    assert_memory_not_equal(a.key, zero, sizeof(a.key));
    assert_memory_not_equal(a.key, b.key, sizeof(a.key));
}

static void test_nonce_valid_and_stale(void **state)
{
    turn_auth_t a;
    char n[TURN_NONCE_LEN + 1], again[TURN_NONCE_LEN + 1];

    turn_auth_init(&a);
    turn_nonce_make(&a, T0, n, sizeof(n));
    assert_int_equal(strlen(n), TURN_NONCE_LEN);
    /* qdtext (RFC 8489 NONCE): printable, neither '"' nor '\'. */
    for (size_t i = 0; i < TURN_NONCE_LEN; i++) {
        assert_true(n[i] > 0x20 && n[i] < 0x7f);
        assert_true(n[i] != '"' && n[i] != '\\');
    }
    assert_int_equal(turn_nonce_check(&a, T0, n, TURN_NONCE_LEN), 1);
    assert_int_equal(turn_nonce_check(&a, T0 + 1, n, TURN_NONCE_LEN), 1);
    assert_int_equal(turn_nonce_check(&a, T0 + 600000, n, TURN_NONCE_LEN), 1);
    assert_int_equal(turn_nonce_check(&a, T0 + 600001, n, TURN_NONCE_LEN), 0);
    assert_int_equal(turn_nonce_check(&a, UINT64_MAX, n, TURN_NONCE_LEN), 0);
    /* From the future (the clock stepped back): stale, so the client gets a fresh one. */
    assert_int_equal(turn_nonce_check(&a, T0 - 1, n, TURN_NONCE_LEN), 0);

    /* The TTL is read at check time. */
    a.nonce_ttl_ms = 5000;
    assert_int_equal(turn_nonce_check(&a, T0 + 5000, n, TURN_NONCE_LEN), 1);
    assert_int_equal(turn_nonce_check(&a, T0 + 5001, n, TURN_NONCE_LEN), 0);
    /* --stale-nonce: the caller's lifetime; 0 is unlimited (coturn's 0). */
    assert_int_equal(turn_nonce_check2(&a, T0 + 2000, 2000, n, TURN_NONCE_LEN), 1);
    assert_int_equal(turn_nonce_check2(&a, T0 + 2001, 2000, n, TURN_NONCE_LEN), 0);
    assert_int_equal(turn_nonce_check2(&a, T0 + 86400000ull * 365, 0, n, TURN_NONCE_LEN), 1);
    assert_int_equal(turn_nonce_check2(&a, T0 - 1, 0, n, TURN_NONCE_LEN), 0);
    n[TURN_NONCE_LEN - 1] ^= 1;
    assert_int_equal(turn_nonce_check2(&a, T0, 0, n, TURN_NONCE_LEN), -1);
    n[TURN_NONCE_LEN - 1] ^= 1;

    /* Two nonces of the same millisecond differ (RFC 8489 9.2.4: no two
     * requests get the same nonce), and both are valid. */
    turn_nonce_make(&a, T0, again, sizeof(again));
    assert_string_not_equal(again, n);
    assert_int_equal(turn_nonce_check(&a, T0, again, TURN_NONCE_LEN), 1);
    turn_nonce_make(&a, T0 + 1, again, sizeof(again));
    assert_string_not_equal(again, n);
    assert_int_equal(turn_nonce_check(&a, T0 + 1, again, TURN_NONCE_LEN), 1);

    /* The ends of the clock. */
    turn_nonce_make(&a, 0, n, sizeof(n));
    assert_int_equal(turn_nonce_check(&a, 0, n, TURN_NONCE_LEN), 1);
    /* 48 bits of milliseconds: 8,900 years of a monotonic clock. */
    turn_nonce_make(&a, (1ull << 48) - 1, n, sizeof(n));
    assert_int_equal(turn_nonce_check(&a, (1ull << 48) - 1, n, TURN_NONCE_LEN), 1);
}

static void test_nonce_foreign(void **state)
{
    turn_auth_t a, b;
    char n[TURN_NONCE_LEN + 1];

    turn_auth_init(&a);
    turn_auth_init(&b);
    turn_nonce_make(&b, T0, n, sizeof(n));
    assert_int_equal(turn_nonce_check(&b, T0, n, TURN_NONCE_LEN), 1);
    assert_int_equal(turn_nonce_check(&a, T0, n, TURN_NONCE_LEN), -1);
    assert_int_equal(turn_nonce_check(&a, T0, "AAAAAAAAAAAAAAAAAAAAAAAA", 24), -1);
    /* Another server's nonce, of another length. */
    assert_int_equal(turn_nonce_check(&a, T0, "f4e3a2b1c0d9e8f7", 16), -1);
    assert_int_equal(turn_nonce_check(&a, T0, "", 0), -1);
}

static void test_nonce_tampered(void **state)
{
    static const char bad_chars[] = "\"\\ =-_.\t";
    turn_auth_t a;
    char n[TURN_NONCE_LEN + 1], t[TURN_NONCE_LEN + 1];
    uint8_t raw[20];

    turn_auth_init(&a);
    turn_nonce_make(&a, T0, n, sizeof(n));

    /* Any other character anywhere. */
    for (size_t i = 0; i < TURN_NONCE_LEN; i++) {
        memcpy(t, n, sizeof(t));
        t[i] = t[i] == 'A' ? 'B' : 'A';
        if (turn_nonce_check(&a, T0, t, TURN_NONCE_LEN) != -1)
            fail_msg("a nonce changed at %zu passed", i);
        for (size_t j = 0; bad_chars[j] != '\0'; j++) {
            t[i] = bad_chars[j];
            if (turn_nonce_check(&a, T0, t, TURN_NONCE_LEN) != -1)
                fail_msg("a nonce with '%c' at %zu passed", bad_chars[j], i);
        }
    }

    /* A later issue time under the old tag: the layout is the cookie, then
     * 6 bytes of time, 2 of salt, and the tag. */
    assert_memory_equal(n, "obMatJos2wAAA", 13);
    assert_int_equal(EVP_DecodeBlock(raw, (const unsigned char *)n + 13, TURN_NONCE_PLAIN_LEN), 18);
    assert_int_equal(raw[3] << 16 | raw[4] << 8 | raw[5], T0);
    raw[3] += 1;
    memcpy(t, n, 13);
    assert_int_equal(EVP_EncodeBlock((unsigned char *)t + 13, raw, 18), TURN_NONCE_PLAIN_LEN);
    assert_int_equal(turn_nonce_check(&a, T0 + 65536, t, TURN_NONCE_LEN), -1);
    /* The plain form (no cookie) checks the same way. */
    assert_int_equal(turn_nonce_check(&a, T0, n + 13, TURN_NONCE_PLAIN_LEN), 1);
    assert_int_equal(turn_nonce_check(&a, T0, t + 13, TURN_NONCE_PLAIN_LEN), -1);
}

static void test_nonce_truncated(void **state)
{
    turn_auth_t a;
    char n[TURN_NONCE_LEN + 2], small[TURN_NONCE_LEN];

    turn_auth_init(&a);
    turn_nonce_make(&a, T0, n, TURN_NONCE_LEN + 1);
    for (size_t len = 0; len < TURN_NONCE_LEN; len++)
        assert_int_equal(turn_nonce_check(&a, T0, n, len), -1);
    /* One character more (a client appending to it). */
    n[TURN_NONCE_LEN] = 'A';
    n[TURN_NONCE_LEN + 1] = '\0';
    assert_int_equal(turn_nonce_check(&a, T0, n, TURN_NONCE_LEN + 1), -1);
    assert_int_equal(turn_nonce_check(&a, T0, n + 1, TURN_NONCE_LEN), -1);

    /* A buffer too small gets an empty string, never a cut nonce. */
    memset(small, 'x', sizeof(small));
    turn_nonce_make(&a, T0, small, sizeof(small));
    assert_string_equal(small, "");
}

/* ---- passwords --------------------------------------------------------------- */

/*
 * Expected REST API passwords, computed with Python, independently of
 * OpenSSL's C API:
 *   base64.b64encode(hmac.new(secret, username, hashlib.sha1).digest())
 */
static const struct {
    const char *secret;
    const char *user;
    size_t ulen; /* 0: strlen */
    const char *pass;
} rest_vectors[] = {
    {"north", "1700000000:alice", 0, "Cd/49soE35ICqcJF/bCTn8Z4OyE="},
    {"north", "1700000000", 0, "CWyHi3zCeWqXBir9thl4m+iZPRY="},
    /* coturn's other order, when the part before the first ':' is not all digits */
    {"north", "alice:1700000000", 0, "fEiXa12G7lWCrwAwGzZRSDXRJfQ="},
    {"north", ":1700000000", 0, "2fcHO/LSqLhnrYeIseTaufjCqOw="},
    {"north", "1700000000:", 0, "HBb3SNzsYSI5M7gogrnEDYl0gWE="},
    {"north", "1700000000:a:b", 0, "hwIRGLA16PBzhCZVjQUDIjf+6Ig="},
    /* an expiry too large for any integer type is simply far away */
    {"north", "99999999999999999999999:x", 0, "BBRnOeP9IHiKM627nfdvAWpWli0="},
    /* the HMAC covers every byte of USERNAME, a NUL too */
    {"north", "1700000000:alice\0x", 18, "v1cgcWg3J5KXhZiXiKiELNdVhDQ="},
    {"s3cret", "1700086400:bob", 0, "hh5nfI3KpobvjZcuf5nGuIxPzLM="},
};

static ts_config_t auth_cfg(const char *text)
{
    ts_config_t cfg;

    memset(&cfg, 0, sizeof(cfg));
    assert_int_equal(ts_config_parse_text(&cfg, text, strlen(text), "test", NULL), TS_OK);
    return cfg;
}

static int password(const ts_config_t *cfg, const char *user, int64_t now, char *pass)
{
    return turn_password(cfg, user, strlen(user), now, pass, TURN_PASS_MAX);
}

static void test_rest_vectors(void **state)
{
    char pass[TURN_PASS_MAX];

    for (size_t i = 0; i < TS_ARRAY_SIZE(rest_vectors); i++) {
        ts_config_t cfg = auth_cfg("user = alice:wonderland\n");
        const char *u = rest_vectors[i].user;
        size_t ulen = rest_vectors[i].ulen != 0 ? rest_vectors[i].ulen : strlen(u);

        cfg.static_auth_secret = ts_strdup(rest_vectors[i].secret);
        if (turn_password(&cfg, u, ulen, 1699999999, pass, sizeof(pass)) != 1)
            fail_msg("'%s' was refused", u);
        assert_string_equal(pass, rest_vectors[i].pass);
        assert_int_equal(strlen(pass), TURN_REST_PASS_LEN);
        ts_config_free(&cfg);
    }
}

static void test_rest_expiry(void **state)
{
    ts_config_t cfg = auth_cfg("static-auth-secret = north\n");
    char pass[TURN_PASS_MAX];

    /* coturn's rule: valid while EXPIRY is not before now. */
    assert_int_equal(password(&cfg, "1700000000:alice", 1699999999, pass), 1);
    assert_int_equal(password(&cfg, "1700000000:alice", 1700000000, pass), 1);
    assert_string_equal(pass, "Cd/49soE35ICqcJF/bCTn8Z4OyE=");
    memset(pass, 'x', sizeof(pass));
    assert_int_equal(password(&cfg, "1700000000:alice", 1700000001, pass), 0);
    assert_string_equal(pass, "");
    assert_int_equal(password(&cfg, "alice:1700000000", 1700000001, pass), 0);
    assert_int_equal(password(&cfg, "1700000000", 1700000001, pass), 0);
    assert_int_equal(password(&cfg, "0:alice", 1700000000, pass), 0);
    assert_int_equal(password(&cfg, "0", 1700000000, pass), 0);
    ts_config_free(&cfg);
}

static void test_rest_not_rest(void **state)
{
    static const char *const refused[] = {
        "alice",           "alice:bob", "bob:1700000000x",
        "1700000000x",     "12a:",      " 1700000000",
        "+1700000000",     "-1:alice",  "bob:",
        "bob::1700000000", "",          ":",
    };
    ts_config_t cfg = auth_cfg("static-auth-secret = north\n");
    char pass[TURN_PASS_MAX];

    for (size_t i = 0; i < TS_ARRAY_SIZE(refused); i++) {
        if (password(&cfg, refused[i], 1600000000, pass) != 0)
            fail_msg("'%s' was accepted", refused[i]);
        assert_string_equal(pass, "");
    }
    /* No secret, no REST API. */
    free(cfg.static_auth_secret);
    cfg.static_auth_secret = NULL;
    assert_int_equal(password(&cfg, "1700000000:alice", 1600000000, pass), 0);
    cfg.static_auth_secret = ts_strdup("");
    assert_int_equal(password(&cfg, "1700000000:alice", 1600000000, pass), 0);
    ts_config_free(&cfg);
}

static void test_static_users(void **state)
{
    char text[1024], xs[TURN_PASS_MAX + 1];
    ts_config_t cfg;
    char pass[TURN_PASS_MAX];

    /* "long" has the longest password that fits TURN_PASS_MAX, "longer" one byte more. */
    memset(xs, 'x', sizeof(xs));
    snprintf(text, sizeof(text),
             "user = alice:wonderland\n"
             "user = 1700000000:static pass\n"
             "user = long:%.*s\n"
             "user = longer:%.*s\n"
             "static-auth-secret = north\n",
             TURN_PASS_MAX - 1, xs, TURN_PASS_MAX, xs);
    cfg = auth_cfg(text);

    assert_int_equal(password(&cfg, "alice", 0, pass), 1);
    assert_string_equal(pass, "wonderland");
    /* Exact match only: the length is USERNAME's, not up to a NUL. */
    assert_int_equal(turn_password(&cfg, "alicex", 5, 0, pass, sizeof(pass)), 1);
    assert_string_equal(pass, "wonderland");
    assert_int_equal(turn_password(&cfg, "alice", 4, 0, pass, sizeof(pass)), 0);
    assert_int_equal(turn_password(&cfg, "alice\0", 6, 0, pass, sizeof(pass)), 0);
    assert_int_equal(password(&cfg, "Alice", 0, pass), 0);
    assert_int_equal(password(&cfg, "alice ", 0, pass), 0);
    assert_int_equal(password(&cfg, "bob", 0, pass), 0);
    assert_string_equal(pass, "");

    /* A static user wins over the REST form of the same name, expired or not. (A
     * static name holds no ':', so "EXPIRY" is the one REST form it can take.) */
    assert_int_equal(password(&cfg, "1700000000", 1600000000, pass), 1);
    assert_string_equal(pass, "static pass");
    assert_int_equal(password(&cfg, "1700000000", 1800000000, pass), 1);
    assert_string_equal(pass, "static pass");
    /* A REST username that no static user has still works next to them. */
    assert_int_equal(password(&cfg, "1700000000:alice", 1600000000, pass), 1);
    assert_string_equal(pass, "Cd/49soE35ICqcJF/bCTn8Z4OyE=");

    /* A password must fit the buffer whole. */
    assert_int_equal(password(&cfg, "long", 0, pass), 1);
    assert_int_equal(strlen(pass), TURN_PASS_MAX - 1);
    assert_int_equal(password(&cfg, "longer", 0, pass), 0);
    assert_string_equal(pass, "");
    assert_int_equal(turn_password(&cfg, "alice", 5, 0, pass, 10), 0);
    assert_int_equal(turn_password(&cfg, "alice", 5, 0, pass, 11), 1);
    assert_int_equal(turn_password(&cfg, "1700000000:alice", 16, 0, pass, TURN_REST_PASS_LEN), 0);
    assert_int_equal(turn_password(&cfg, "1700000000:alice", 16, 0, pass, TURN_REST_PASS_LEN + 1),
                     1);
    ts_config_free(&cfg);
}

static void test_rest_credential(void **state)
{
    ts_config_t cfg = auth_cfg("static-auth-secret = s3cret\n");
    char user[64], pass[TURN_PASS_MAX], check[TURN_PASS_MAX];

    turn_rest_credential("s3cret", "bob", 1700000000, 86400, user, sizeof(user), pass,
                         sizeof(pass));
    assert_string_equal(user, "1700086400:bob");
    assert_string_equal(pass, "hh5nfI3KpobvjZcuf5nGuIxPzLM=");
    /* What it hands out authenticates until the expiry, and not after. */
    assert_int_equal(password(&cfg, user, 1700000000, check), 1);
    assert_string_equal(check, pass);
    assert_int_equal(password(&cfg, user, 1700086400, check), 1);
    assert_int_equal(password(&cfg, user, 1700086401, check), 0);

    /* No name: the username is the expiry alone (Python, as above). */
    turn_rest_credential("s3cret", NULL, 1700000000, 86400, user, sizeof(user), pass, sizeof(pass));
    assert_string_equal(user, "1700086400");
    assert_string_equal(pass, "sg7MKhKhZEHaCulkWEgYfwirZE4=");
    turn_rest_credential("s3cret", "", 1700000000, 86400, user, sizeof(user), pass, sizeof(pass));
    assert_string_equal(user, "1700086400");

    /* Buffers too small: nothing rather than a username its password does not match. */
    turn_rest_credential("s3cret", "bob", 1700000000, 86400, user, 14, pass, sizeof(pass));
    assert_string_equal(user, "");
    assert_string_equal(pass, "");
    turn_rest_credential("s3cret", "bob", 1700000000, 86400, user, 15, pass, sizeof(pass));
    assert_string_equal(user, "1700086400:bob");
    turn_rest_credential("s3cret", "bob", 1700000000, 86400, user, sizeof(user), pass,
                         TURN_REST_PASS_LEN);
    assert_string_equal(user, "");
    assert_string_equal(pass, "");
    turn_rest_credential(NULL, "bob", 1700000000, 86400, user, sizeof(user), pass, sizeof(pass));
    assert_string_equal(user, "");
    assert_string_equal(pass, "");
    ts_config_free(&cfg);
}

static void test_quota_name(void **state)
{
    static const struct {
        const char *user, *name;
    } cases[] = {
        {"1700000000:alice", "alice"},
        {"alice:1700000000", "alice"},
        {"1700000000:a:b", "a:b"},
        {"1700000000", "1700000000"},
        {"alice", "alice"},
        {"alice:bob", "alice:bob"},
        {"1700000000:", ""},
        {"", ""},
    };
    const char *name;
    size_t nlen;

    for (size_t i = 0; i < TS_ARRAY_SIZE(cases); i++) {
        turn_quota_name(cases[i].user, strlen(cases[i].user), &name, &nlen);
        if (nlen != strlen(cases[i].name) || memcmp(name, cases[i].name, nlen) != 0)
            fail_msg("'%s': got '%.*s', want '%s'", cases[i].user, (int)nlen, name, cases[i].name);
    }
}

/* ---- the peer filter --------------------------------------------------------- */

static struct sockaddr_storage ss;

static const struct sockaddr *sa_v4(const uint8_t a[4])
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

    memset(&ss, 0, sizeof(ss));
    sin->sin_family = AF_INET;
    sin->sin_port = htons(5000);
    memcpy(&sin->sin_addr, a, 4);
    return (const struct sockaddr *)&ss;
}

static const struct sockaddr *sa_v6(const uint8_t a[16])
{
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

    memset(&ss, 0, sizeof(ss));
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(5000);
    memcpy(&sin6->sin6_addr, a, 16);
    return (const struct sockaddr *)&ss;
}

static int allowed(const ts_config_t *cfg, const char *text)
{
    uint8_t a[16];

    if (inet_pton(AF_INET, text, a) == 1)
        return turn_peer_allowed(cfg, sa_v4(a));
    if (inet_pton(AF_INET6, text, a) == 1)
        return turn_peer_allowed(cfg, sa_v6(a));
    fail_msg("bad address in the test: %s", text);
    return -1;
}

#define ALLOWED(cfg, text)                                                                         \
    do {                                                                                           \
        if (allowed((cfg), (text)) != 1)                                                           \
            fail_msg("%s was denied", (text));                                                     \
    } while (0)
#define DENIED(cfg, text)                                                                          \
    do {                                                                                           \
        if (allowed((cfg), (text)) != 0)                                                           \
            fail_msg("%s was allowed", (text));                                                    \
    } while (0)

/* The forms an IPv4 address takes inside IPv6. */
enum { FORM_V4, FORM_MAPPED, FORM_COMPAT, FORM_NAT64, FORM_6TO4, NFORMS };
static const char *const form_names[] = {"IPv4", "IPv4-mapped", "IPv4-compatible", "NAT64", "6to4"};

static int allowed_as(const ts_config_t *cfg, const char *v4text, int form)
{
    uint8_t v4[4], a[16] = {0};

    assert_int_equal(inet_pton(AF_INET, v4text, v4), 1);
    switch (form) {
    case FORM_V4:
        return turn_peer_allowed(cfg, sa_v4(v4));
    case FORM_MAPPED: /* ::ffff:a.b.c.d */
        a[10] = a[11] = 0xff;
        memcpy(a + 12, v4, 4);
        break;
    case FORM_COMPAT: /* ::a.b.c.d */
        memcpy(a + 12, v4, 4);
        break;
    case FORM_NAT64: /* 64:ff9b::a.b.c.d */
        a[1] = 0x64;
        a[2] = 0xff;
        a[3] = 0x9b;
        memcpy(a + 12, v4, 4);
        break;
    default: /* 2002:aabb:ccdd:: and a host part */
        a[0] = 0x20;
        a[1] = 0x02;
        memcpy(a + 2, v4, 4);
        a[15] = 1;
        break;
    }
    return turn_peer_allowed(cfg, sa_v6(a));
}

static void expect_as(const ts_config_t *cfg, const char *v4text, int form, int want)
{
    int got = allowed_as(cfg, v4text, form);

    if (got != want)
        fail_msg("%s as %s: %s, want %s", v4text, form_names[form], got ? "allowed" : "denied",
                 want ? "allowed" : "denied");
}

/* Each default IPv4 range: first, last, and the allowed addresses next to it. */
static const struct {
    const char *range, *first, *last, *below, *above; /* below/above: NULL when denied too */
} v4_ranges[] = {
    {"0.0.0.0/8", "0.0.0.0", "0.255.255.255", NULL, "1.0.0.0"},
    {"10.0.0.0/8", "10.0.0.0", "10.255.255.255", "9.255.255.255", "11.0.0.0"},
    {"100.64.0.0/10", "100.64.0.0", "100.127.255.255", "100.63.255.255", "100.128.0.0"},
    {"127.0.0.0/8", "127.0.0.0", "127.255.255.255", "126.255.255.255", "128.0.0.0"},
    {"169.254.0.0/16", "169.254.0.0", "169.254.255.255", "169.253.255.255", "169.255.0.0"},
    {"172.16.0.0/12", "172.16.0.0", "172.31.255.255", "172.15.255.255", "172.32.0.0"},
    {"192.168.0.0/16", "192.168.0.0", "192.168.255.255", "192.167.255.255", "192.169.0.0"},
    {"224.0.0.0/4", "224.0.0.0", "239.255.255.255", "223.255.255.255", NULL},
    {"240.0.0.0/4", "240.0.0.0", "255.255.255.254", "223.255.255.255", NULL},
    {"255.255.255.255", "255.255.255.255", "255.255.255.255", "223.255.255.255", NULL},
};

static void test_peer_default_v4(void **state)
{
    ts_config_t cfg = auth_cfg("");

    for (size_t i = 0; i < TS_ARRAY_SIZE(v4_ranges); i++) {
        for (int f = 0; f < NFORMS; f++) {
            expect_as(&cfg, v4_ranges[i].first, f, 0);
            expect_as(&cfg, v4_ranges[i].last, f, 0);
            if (v4_ranges[i].below != NULL)
                expect_as(&cfg, v4_ranges[i].below, f, 1);
            if (v4_ranges[i].above != NULL)
                expect_as(&cfg, v4_ranges[i].above, f, 1);
        }
    }
    for (int f = 0; f < NFORMS; f++) {
        expect_as(&cfg, "8.8.8.8", f, 1);
        expect_as(&cfg, "203.0.113.9", f, 1);
    }
    /* The same, written out, so the byte positions do not rest on the helper alone. */
    DENIED(&cfg, "::ffff:192.168.1.1");
    DENIED(&cfg, "::ffff:c0a8:101");
    DENIED(&cfg, "::10.0.0.1");
    DENIED(&cfg, "64:ff9b::10.0.0.1");
    DENIED(&cfg, "64:ff9b::a9fe:a9fe"); /* 169.254.169.254, the cloud metadata service */
    DENIED(&cfg, "2002:c0a8:101::1");
    DENIED(&cfg, "2002:7f00:1:abcd:ef::1");
    DENIED(&cfg, "2002:e000:1::"); /* 224.0.1.0 */
    ALLOWED(&cfg, "::ffff:8.8.8.8");
    ALLOWED(&cfg, "64:ff9b::808:808");
    ALLOWED(&cfg, "2002:808:808::1");
    /* Near the embedding prefixes, but not in them: plain IPv6. */
    ALLOWED(&cfg, "::fffe:a00:1");
    ALLOWED(&cfg, "64:ff9c::a00:1");
    ALLOWED(&cfg, "2003:a00:1::");
    ALLOWED(&cfg, "2001:4860:4860::8888");
    ts_config_free(&cfg);
}

static const struct {
    const char *range, *first, *last, *out1, *out2; /* out2 may be NULL */
} v6_ranges[] = {
    {"::/128", "::", "::", "::1:0:0:0", "2001:db8::"},
    {"::1/128", "::1", "::1", "::1.0.0.0", "::1:0:0:1"},
    {"fc00::/7", "fc00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
     "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe00::"},
    {"fe80::/10", "fe80::", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
     "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fec0::"},
    {"ff00::/8", "ff00::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
     "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
};

static void test_peer_default_v6(void **state)
{
    ts_config_t cfg = auth_cfg("");

    for (size_t i = 0; i < TS_ARRAY_SIZE(v6_ranges); i++) {
        DENIED(&cfg, v6_ranges[i].first);
        DENIED(&cfg, v6_ranges[i].last);
        ALLOWED(&cfg, v6_ranges[i].out1);
        if (v6_ranges[i].out2 != NULL)
            ALLOWED(&cfg, v6_ranges[i].out2);
    }
    DENIED(&cfg, "ff02::1");
    DENIED(&cfg, "fe80::1");
    DENIED(&cfg, "fd00:ec2::254");
    /* ::2 is not ::1: it is IPv4-compatible 0.0.0.2, in 0.0.0.0/8. */
    DENIED(&cfg, "::2");

    /* Neither an IP address nor one of the two families. */
    {
        struct sockaddr_un un;
        memset(&un, 0, sizeof(un));
        un.sun_family = AF_UNIX;
        assert_int_equal(turn_peer_allowed(&cfg, (const struct sockaddr *)&un), 0);
    }
    ts_config_free(&cfg);
}

static void test_peer_loopback_flag(void **state)
{
    ts_config_t cfg = auth_cfg("allow-loopback-peers = true\n");

    for (int f = 0; f < NFORMS; f++) {
        expect_as(&cfg, "127.0.0.0", f, 1);
        expect_as(&cfg, "127.0.0.1", f, 1);
        expect_as(&cfg, "127.255.255.255", f, 1);
        /* Nothing else opens. */
        expect_as(&cfg, "0.0.0.0", f, 0);
        expect_as(&cfg, "10.0.0.1", f, 0);
        expect_as(&cfg, "224.0.0.1", f, 0);
    }
    ALLOWED(&cfg, "::1");
    ALLOWED(&cfg, "::ffff:127.0.0.1");
    DENIED(&cfg, "::");
    DENIED(&cfg, "fe80::1");
    ts_config_free(&cfg);

    /* An explicit denial still covers loopback: the flag only lifts the default. */
    cfg = auth_cfg("allow-loopback-peers = true\ndenied-peer-ip = 127.0.0.2\n"
                   "denied-peer-ip = ::1\n");
    ALLOWED(&cfg, "127.0.0.1");
    DENIED(&cfg, "127.0.0.2");
    DENIED(&cfg, "::ffff:127.0.0.2");
    DENIED(&cfg, "::1");
    ts_config_free(&cfg);
}

static void test_peer_denied_adds(void **state)
{
    ts_config_t cfg = auth_cfg("denied-peer-ip = 203.0.113.0/24\n"
                               "denied-peer-ip = 198.51.100.10-198.51.100.20\n"
                               "denied-peer-ip = 2001:db8::/32\n");

    for (int f = 0; f < NFORMS; f++) {
        expect_as(&cfg, "203.0.113.0", f, 0);
        expect_as(&cfg, "203.0.113.255", f, 0);
        expect_as(&cfg, "203.0.112.255", f, 1);
        expect_as(&cfg, "203.0.114.0", f, 1);
        expect_as(&cfg, "198.51.100.10", f, 0);
        expect_as(&cfg, "198.51.100.20", f, 0);
        expect_as(&cfg, "198.51.100.9", f, 1);
        expect_as(&cfg, "198.51.100.21", f, 1);
        /* The defaults stay. */
        expect_as(&cfg, "10.0.0.1", f, 0);
    }
    DENIED(&cfg, "2001:db8::");
    DENIED(&cfg, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff");
    ALLOWED(&cfg, "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff");
    ALLOWED(&cfg, "2001:db9::");
    ts_config_free(&cfg);

    /* An IPv6 range judges IPv6 addresses: ::ffff:8.8.8.8, not 8.8.8.8. */
    cfg = auth_cfg("denied-peer-ip = ::ffff:8.8.8.0/120\n");
    DENIED(&cfg, "::ffff:8.8.8.8");
    ALLOWED(&cfg, "8.8.8.8");
    ts_config_free(&cfg);
}

static void test_peer_allowed_wins(void **state)
{
    ts_config_t cfg = auth_cfg("allowed-peer-ip = 10.1.0.0/16\n"
                               "denied-peer-ip = 203.0.113.0/24\n"
                               "allowed-peer-ip = 203.0.113.7\n"
                               "allowed-peer-ip = fd00::/8\n"
                               "allowed-peer-ip = ff02::1\n"
                               "allowed-peer-ip = ::1\n");

    for (int f = 0; f < NFORMS; f++) {
        /* Over a default denial. */
        expect_as(&cfg, "10.1.0.0", f, 1);
        expect_as(&cfg, "10.1.255.255", f, 1);
        expect_as(&cfg, "10.0.255.255", f, 0);
        expect_as(&cfg, "10.2.0.0", f, 0);
        /* Over a --denied-peer-ip. */
        expect_as(&cfg, "203.0.113.7", f, 1);
        expect_as(&cfg, "203.0.113.6", f, 0);
        expect_as(&cfg, "203.0.113.8", f, 0);
    }
    ALLOWED(&cfg, "fd00::");
    ALLOWED(&cfg, "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
    DENIED(&cfg, "fc00::1");
    ALLOWED(&cfg, "fe00::1");
    ALLOWED(&cfg, "ff02::1");
    DENIED(&cfg, "ff02::2");
    /* ::1 allowed as an IPv6 address does not open 127.0.0.1. */
    ALLOWED(&cfg, "::1");
    DENIED(&cfg, "127.0.0.1");
    ts_config_free(&cfg);

    /* An IPv4 range covers the IPv4 address inside an IPv6 one, and nothing else of IPv6. */
    cfg = auth_cfg("allowed-peer-ip = 0.0.0.0/0\n");
    for (int f = 0; f < NFORMS; f++) {
        expect_as(&cfg, "10.0.0.1", f, 1);
        expect_as(&cfg, "255.255.255.255", f, 1);
    }
    DENIED(&cfg, "fc00::1");
    DENIED(&cfg, "::");
    ts_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nonce_init),       cmocka_unit_test(test_nonce_valid_and_stale),
        cmocka_unit_test(test_nonce_foreign),    cmocka_unit_test(test_nonce_tampered),
        cmocka_unit_test(test_nonce_truncated),  cmocka_unit_test(test_rest_vectors),
        cmocka_unit_test(test_rest_expiry),      cmocka_unit_test(test_rest_not_rest),
        cmocka_unit_test(test_static_users),     cmocka_unit_test(test_rest_credential),
        cmocka_unit_test(test_quota_name),       cmocka_unit_test(test_peer_default_v4),
        cmocka_unit_test(test_peer_default_v6),  cmocka_unit_test(test_peer_loopback_flag),
        cmocka_unit_test(test_peer_denied_adds), cmocka_unit_test(test_peer_allowed_wins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
