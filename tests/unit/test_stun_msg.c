/*
 * test_stun_msg.c — the STUN message codec on byte arrays: the four RFC 5769
 * vectors (read from tests/unit/data/rfc5769/) decoded, checked, corrupted
 * bit by bit and re-encoded; every attribute kind through the builder and
 * back; each malformation the parser must refuse; RFC 3489 messages;
 * MESSAGE-INTEGRITY-SHA256 with truncation; long-term keys and USERHASH
 * against values computed elsewhere; the builder's zero padding and
 * overflow; stream framing of STUN and ChannelData at every split.
 *
 * Values marked "Python" were computed independently with Python's hashlib,
 * hmac and zlib, not with this codec.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>

#include <pthread.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <zlib.h>

#include "core/common.h"
#include "stun/msg.h"

#define MAXMSG 2048

static const char short_term_pw[] = "VOkJxbRl1RmTxUk/WvJxBt";
/* U+30DE U+30C8 U+30EA U+30C3 U+30AF U+30B9, as the RFC 5769 2.4 vector carries it. */
static const char matrix_user[] = "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf"
                                  "\xe3\x82\xb9";
static const char matrix_realm[] = "example.org";
static const char matrix_nonce[] = "f//499k954d6OL34oL9FSTvy64sA";
static const char matrix_pass[] = "TheMatrIX";

static const uint8_t tid0[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};

/* ------------------------------------------------------------------ helpers -- */

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void wr16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)rd16(p) << 16 | rd16(p + 2);
}

static void wr32(uint8_t *p, uint32_t v)
{
    wr16(p, v >> 16);
    wr16(p + 2, v & 0xffff);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;

    for (; *s; s++) {
        int v = hexval(*s);
        if (v < 0)
            continue;
        if (hi < 0) {
            hi = v;
        } else {
            assert_true(n < cap);
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    assert_int_equal(hi, -1);
    return n;
}

/* A vector file: hex bytes, '#' starts a comment. */
static size_t load_vector(const char *name, uint8_t *out, size_t cap)
{
    const char *dir = getenv("TS_SOURCE_DIR");
    char path[PATH_MAX], line[512];
    size_t n = 0;
    FILE *f;

    if (dir != NULL)
        snprintf(path, sizeof(path), "%s/tests/unit/data/rfc5769/%s", dir, name);
    else /* __FILE__ is tests/unit/test_stun_msg.c under the source root */
        snprintf(path, sizeof(path), "%.*stests/unit/data/rfc5769/%s",
                 (int)(strlen(__FILE__) - strlen("tests/unit/test_stun_msg.c")), __FILE__, name);
    f = fopen(path, "r");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    while (fgets(line, sizeof(line), f) != NULL) {
        char *hash = strchr(line, '#');
        if (hash != NULL)
            *hash = '\0';
        n += unhex(line, out + n, cap - n);
    }
    fclose(f);
    return n;
}

static void parse_ok(const uint8_t *b, size_t n, stun_msg_t *m)
{
    memset(m, 0xa5, sizeof(*m)); /* no field may keep a stale value */
    int rc = stun_msg_parse(b, n, m);
    if (rc != TS_OK)
        fail_msg("parse: %d", rc);
}

static void parse_fails(const uint8_t *b, size_t n, const char *why)
{
    stun_msg_t m;

    if (stun_msg_parse(b, n, &m) != TS_ERR_PROTO)
        fail_msg("accepted: %s", why);
}

static const stun_attr_t *find_ok(const stun_msg_t *m, uint16_t type)
{
    const stun_attr_t *a = stun_msg_find(m, type);
    if (a == NULL)
        fail_msg("attribute 0x%04x missing", type);
    return a;
}

static void expect_attr(const stun_msg_t *m, uint16_t type, const void *v, size_t n)
{
    const stun_attr_t *a = find_ok(m, type);

    assert_int_equal(a->len, n);
    if (n > 0)
        assert_memory_equal(a->value, v, n);
}

/* Recompute a FINGERPRINT in place with zlib, the reference CRC-32. */
static void fix_fingerprint(uint8_t *b, size_t n)
{
    wr32(b + n - 4, (uint32_t)crc32(0, b, (uInt)(n - 8)) ^ 0x5354554eu);
}

/* Make the FINGERPRINT attribute at off right for the bytes before it. */
static void fix_fingerprint_at(uint8_t *b, size_t off)
{
    assert_int_equal(rd16(b + off), STUN_A_FINGERPRINT);
    wr32(b + off + 4, (uint32_t)crc32(0, b, (uInt)off) ^ 0x5354554eu);
}

static void sa_v4(struct sockaddr_storage *ss, const char *ip, unsigned port)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;

    memset(ss, 0, sizeof(*ss));
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
}

static void sa_v6(struct sockaddr_storage *ss, const char *ip, unsigned port)
{
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
}

static void expect_same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    assert_int_equal(a->ss_family, b->ss_family);
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        assert_int_equal(x->sin_port, y->sin_port);
        assert_memory_equal(&x->sin_addr, &y->sin_addr, 4);
    } else {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        assert_int_equal(x->sin6_port, y->sin6_port);
        assert_memory_equal(&x->sin6_addr, &y->sin6_addr, 16);
    }
}

static void expect_addr(const stun_msg_t *m, uint16_t type, int xored,
                        const struct sockaddr_storage *want)
{
    struct sockaddr_storage got;
    socklen_t len = 0;

    memset(&got, 0x5a, sizeof(got));
    assert_int_equal(stun_attr_addr(m, find_ok(m, type), xored, &got, &len), TS_OK);
    assert_int_equal(len, want->ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                                     : sizeof(struct sockaddr_in6));
    expect_same_addr(&got, want);
}

/* ------------------------------------------------------------- RFC 5769 -- */

typedef struct {
    const char *file;
    int has_fingerprint;
    int long_term; /* key MD5(user:realm:pass) instead of the short-term password */
} vector_t;

static const vector_t vectors[] = {
    {"sample_request.hex", 1, 0},
    {"sample_ipv4_response.hex", 1, 0},
    {"sample_ipv6_response.hex", 1, 0},
    {"sample_request_long_term.hex", 0, 1},
};

/* Python: hashlib.md5("マトリックス:example.org:TheMatrIX".encode()).hexdigest() */
static const char matrix_md5_hex[] = "e8ca7ad59d5eb0518e312911d2dab2a9";
/* Python: hashlib.sha256("マトリックス:example.org:TheMatrIX".encode()).hexdigest() */
static const char matrix_sha256_hex[] =
    "dd295a613b9058c3c23d6dc7165bda072304d989c9d0af3a8c7e184b4f9bb4a1";
/* Python: hashlib.sha256("マトリックス:example.org".encode()); also RFC 8489 B.1's USERHASH. */
static const char matrix_userhash_hex[] =
    "4a3cf38fef6992bda952c6780417da0f24819415569e60b205c46e41407f1704";

static size_t vector_key(const vector_t *v, uint8_t key[64])
{
    if (v->long_term)
        return unhex(matrix_md5_hex, key, 64);
    memcpy(key, short_term_pw, strlen(short_term_pw));
    return strlen(short_term_pw);
}

static void test_rfc5769_sample_request(void **state)
{
    static const uint8_t tid[12] = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
                                    0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};
    static const uint8_t tie[8] = {0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36};
    static const uint16_t order[] = {STUN_A_SOFTWARE,          STUN_A_PRIORITY,
                                     STUN_A_ICE_CONTROLLED,    STUN_A_USERNAME,
                                     STUN_A_MESSAGE_INTEGRITY, STUN_A_FINGERPRINT};
    uint8_t b[MAXMSG];
    size_t n = load_vector("sample_request.hex", b, sizeof(b));
    stun_msg_t m;
    uint32_t prio;

    assert_int_equal(n, 108);
    assert_true(stun_is_message(b, n));
    parse_ok(b, n, &m);
    assert_ptr_equal(m.buf, b);
    assert_int_equal(m.len, 108);
    assert_int_equal(m.type, 0x0001);
    assert_int_equal(m.method, STUN_BINDING);
    assert_int_equal(m.cls, STUN_REQUEST);
    assert_int_equal(m.rfc3489, 0);
    assert_memory_equal(m.tid, tid, 12);
    assert_int_equal(m.nattrs, 6);
    for (unsigned i = 0; i < 6; i++)
        assert_int_equal(m.attrs[i].type, order[i]);
    assert_int_equal(m.integrity, 4);
    assert_int_equal(m.integrity_sha256, -1);
    assert_int_equal(m.fingerprint, 5);
    assert_int_equal(m.nunknown, 0);
    expect_attr(&m, STUN_A_SOFTWARE, "STUN test client", 16);
    expect_attr(&m, STUN_A_USERNAME, "evtj:h6vY", 9);
    expect_attr(&m, STUN_A_ICE_CONTROLLED, tie, 8);
    assert_int_equal(stun_attr_u32(find_ok(&m, STUN_A_PRIORITY), &prio), TS_OK);
    assert_int_equal(prio, 0x6e0001ff);

    assert_int_equal(stun_check_integrity(&m, (const uint8_t *)short_term_pw, 22), 1);
    assert_int_equal(stun_check_integrity(&m, (const uint8_t *)"VOkJxbRl1RmTxUk/WvJxBu", 22), 0);
    assert_int_equal(stun_check_integrity(&m, (const uint8_t *)short_term_pw, 21), 0);
    assert_int_equal(stun_check_integrity_sha256(&m, (const uint8_t *)short_term_pw, 22), 0);
}

static void test_rfc5769_ipv4_response(void **state)
{
    uint8_t b[MAXMSG];
    size_t n = load_vector("sample_ipv4_response.hex", b, sizeof(b));
    struct sockaddr_storage want;
    stun_msg_t m;

    assert_int_equal(n, 80);
    parse_ok(b, n, &m);
    assert_int_equal(m.method, STUN_BINDING);
    assert_int_equal(m.cls, STUN_SUCCESS);
    assert_int_equal(m.nattrs, 4);
    assert_int_equal(m.integrity, 2);
    assert_int_equal(m.fingerprint, 3);
    expect_attr(&m, STUN_A_SOFTWARE, "test vector", 11);
    sa_v4(&want, "192.0.2.1", 32853);
    expect_addr(&m, STUN_A_XOR_MAPPED_ADDRESS, 1, &want);
    assert_int_equal(stun_check_integrity(&m, (const uint8_t *)short_term_pw, 22), 1);
    assert_int_equal(stun_check_integrity(&m, (const uint8_t *)"x", 1), 0);
}

static void test_rfc5769_ipv6_response(void **state)
{
    uint8_t b[MAXMSG];
    size_t n = load_vector("sample_ipv6_response.hex", b, sizeof(b));
    struct sockaddr_storage want;
    stun_msg_t m;

    assert_int_equal(n, 92);
    parse_ok(b, n, &m);
    assert_int_equal(m.method, STUN_BINDING);
    assert_int_equal(m.cls, STUN_SUCCESS);
    assert_int_equal(m.nattrs, 4);
    expect_attr(&m, STUN_A_SOFTWARE, "test vector", 11);
    sa_v6(&want, "2001:db8:1234:5678:11:2233:4455:6677", 32853);
    expect_addr(&m, STUN_A_XOR_MAPPED_ADDRESS, 1, &want);
    assert_int_equal(stun_check_integrity(&m, (const uint8_t *)short_term_pw, 22), 1);
}

static void test_rfc5769_long_term(void **state)
{
    static const uint8_t tid[12] = {0x78, 0xad, 0x34, 0x33, 0xc6, 0xad,
                                    0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e};
    uint8_t b[MAXMSG], key[16], want[16];
    size_t n = load_vector("sample_request_long_term.hex", b, sizeof(b));
    stun_msg_t m;

    assert_int_equal(n, 116);
    parse_ok(b, n, &m);
    assert_int_equal(m.method, STUN_BINDING);
    assert_int_equal(m.cls, STUN_REQUEST);
    assert_memory_equal(m.tid, tid, 12);
    assert_int_equal(m.nattrs, 4);
    assert_int_equal(m.integrity, 3);
    assert_int_equal(m.fingerprint, -1);
    expect_attr(&m, STUN_A_USERNAME, matrix_user, 18);
    expect_attr(&m, STUN_A_NONCE, matrix_nonce, 28);
    expect_attr(&m, STUN_A_REALM, matrix_realm, 11);

    stun_long_term_key_md5(matrix_user, 18, matrix_realm, 11, matrix_pass, 9, key);
    unhex(matrix_md5_hex, want, sizeof(want));
    assert_memory_equal(key, want, 16);
    assert_int_equal(stun_check_integrity(&m, key, 16), 1);
    key[15] ^= 1;
    assert_int_equal(stun_check_integrity(&m, key, 16), 0);
    /* The password itself is not the key. */
    assert_int_equal(stun_check_integrity(&m, (const uint8_t *)matrix_pass, 9), 0);
}

/*
 * Every single-bit change must be caught: by FINGERPRINT when the vector has
 * one, and with the FINGERPRINT recomputed (an attacker can), by
 * MESSAGE-INTEGRITY for every bit it covers — or by the parser refusing the
 * changed framing.
 */
static void test_rfc5769_bit_flips(void **state)
{
    for (size_t v = 0; v < TS_ARRAY_SIZE(vectors); v++) {
        uint8_t orig[MAXMSG], b[MAXMSG], key[64];
        size_t n = load_vector(vectors[v].file, orig, sizeof(orig));
        size_t keylen = vector_key(&vectors[v], key);
        size_t mi_end = vectors[v].has_fingerprint ? n - 8 : n;
        stun_msg_t m;

        parse_ok(orig, n, &m);
        assert_int_equal(stun_check_integrity(&m, key, keylen), 1);
        for (size_t bit = 0; bit < n * 8; bit++) {
            memcpy(b, orig, n);
            b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            /* A flip can pass FINGERPRINT only by turning it into
             * something else (its type, or a length that swallows it):
             * and where MI covers the flip, MI is gone or wrong too. */
            if (vectors[v].has_fingerprint && stun_msg_parse(b, n, &m) == TS_OK &&
                (m.fingerprint >= 0 || (bit / 8 < mi_end && stun_check_integrity(&m, key, keylen))))
                fail_msg("%s: bit %zu passed FINGERPRINT", vectors[v].file, bit);
            if (bit / 8 >= mi_end)
                continue;
            if (vectors[v].has_fingerprint)
                fix_fingerprint(b, n);
            if (stun_msg_parse(b, n, &m) == TS_OK && stun_check_integrity(&m, key, keylen))
                fail_msg("%s: bit %zu passed MESSAGE-INTEGRITY", vectors[v].file, bit);
        }
    }
}

/*
 * Re-encode a vector with the builder from its decoded attributes. pad is
 * written over the padding bytes before the integrity attribute is added
 * (0: leave the builder's zeros), so that a sender padding with spaces, as
 * the RFC's did for 2.1-2.3, can be reproduced byte for byte.
 */
static size_t reencode(const stun_msg_t *m, const uint8_t *key, size_t keylen, int pad,
                       uint8_t *out, size_t cap)
{
    stun_builder_t b;
    struct sockaddr_storage ss;
    socklen_t sl;
    uint32_t u;

    stun_build_init(&b, out, cap, m->type, m->tid);
    for (int i = 0; i < m->integrity; i++) {
        const stun_attr_t *a = &m->attrs[i];
        size_t at = b.len;

        switch (a->type) {
        case STUN_A_XOR_MAPPED_ADDRESS:
            assert_int_equal(stun_attr_addr(m, a, 1, &ss, &sl), TS_OK);
            stun_add_addr(&b, a->type, (struct sockaddr *)&ss, 1);
            break;
        case STUN_A_PRIORITY:
            assert_int_equal(stun_attr_u32(a, &u), TS_OK);
            stun_add_u32(&b, a->type, u);
            break;
        default:
            stun_add_attr(&b, a->type, a->value, a->len);
        }
        for (size_t j = at + 4 + a->len; pad && j < b.len; j++)
            out[j] = (uint8_t)pad;
    }
    stun_add_integrity(&b, key, keylen);
    if (m->fingerprint >= 0)
        stun_add_fingerprint(&b);
    return stun_build_finish(&b);
}

static void test_rfc5769_reencode(void **state)
{
    for (size_t v = 0; v < TS_ARRAY_SIZE(vectors); v++) {
        uint8_t vec[MAXMSG], out[MAXMSG], key[64];
        size_t n = load_vector(vectors[v].file, vec, sizeof(vec));
        size_t keylen = vector_key(&vectors[v], key);
        size_t mi_off, got;
        stun_msg_t m, r;
        int pad = 0;

        parse_ok(vec, n, &m);
        mi_off = (size_t)(m.attrs[m.integrity].value - vec) - 4;
        for (int i = 0; i < m.integrity; i++) {
            const stun_attr_t *a = &m.attrs[i];
            for (size_t j = a->len; j % 4; j++)
                pad = a->value[j];
        }
        assert_int_equal(pad, vectors[v].long_term ? 0 : 0x20); /* what the RFC's senders used */

        /*
         * 1. With the builder's zero padding: every byte before
         * MESSAGE-INTEGRITY equals the vector's, except padding bytes, which
         * are zero here (the vector's are 0x20 in 2.1-2.3). Integrity and
         * fingerprint then differ from the vector's, since they cover the
         * padding, and must verify on their own.
         */
        memset(out, 0xee, sizeof(out));
        got = reencode(&m, key, keylen, 0, out, sizeof(out));
        assert_int_equal(got, n);
        parse_ok(out, got, &r);
        assert_int_equal(r.nattrs, m.nattrs);
        for (size_t j = 0; j < mi_off; j++) {
            int is_pad = 0;
            for (int i = 0; i < m.integrity; i++) {
                size_t vo = (size_t)(m.attrs[i].value - vec);
                if (j >= vo + m.attrs[i].len && j < vo + ((m.attrs[i].len + 3u) & ~3u))
                    is_pad = 1;
            }
            if (is_pad)
                assert_int_equal(out[j], 0);
            else if (out[j] != vec[j])
                fail_msg("%s: byte %zu is %02x, vector %02x", vectors[v].file, j, out[j], vec[j]);
        }
        assert_int_equal(stun_check_integrity(&r, key, keylen), 1);
        if (pad == 0) /* 2.4: the vector itself pads with zeros */
            assert_memory_equal(out, vec, n);

        /* 2. With the vector's padding byte written over the padding: the
         * whole message, MESSAGE-INTEGRITY and FINGERPRINT included. */
        if (pad != 0) {
            got = reencode(&m, key, keylen, pad, out, sizeof(out));
            assert_int_equal(got, n);
            assert_memory_equal(out, vec, n);
        }
    }
}

/* --------------------------------------------------- attribute round trip -- */

static void test_every_attribute_round_trip(void **state)
{
    static const uint8_t token[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    static const uint8_t tie[8] = {0xff, 0, 0xee, 0x11, 0xdd, 0x22, 0xcc, 0x33};
    static const uint8_t data[7] = {'p', 'a', 'y', 'l', 'o', 'a', 'd'};
    static const uint8_t even[1] = {0x80};
    static const uint8_t algs[8] = {0, 1, 0, 0, 0, 2, 0, 0};
    static const uint8_t alg[4] = {0, 2, 0, 0};
    static const uint8_t icmp[8] = {0, 0, 3, 1, 0, 0, 0, 0};
    static const uint8_t fam[4] = {2, 0, 0, 0};
    static const uint16_t unk[3] = {0x0002, 0x7f01, 0x0026};
    struct sockaddr_storage v4, v6, peer, relayed, alt, origin, other;
    uint8_t buf[MAXMSG], userhash[32], key[16];
    const char *reason;
    size_t n, rlen;
    stun_builder_t b;
    stun_msg_t m;
    uint32_t u;
    int code;

    sa_v4(&v4, "203.0.113.7", 3478);
    sa_v6(&v6, "2001:db8::1:2:3", 65535);
    sa_v4(&peer, "198.51.100.1", 1);
    sa_v6(&relayed, "2001:db8:ffff::fe", 49152);
    sa_v4(&alt, "192.0.2.200", 5349);
    sa_v6(&origin, "::1", 3478);
    sa_v4(&other, "0.0.0.0", 0);
    stun_userhash(matrix_user, 18, matrix_realm, 11, userhash);
    stun_long_term_key_md5(matrix_user, 18, matrix_realm, 11, matrix_pass, 9, key);

    stun_build_init(&b, buf, sizeof(buf), STUN_ALLOCATE | STUN_ERROR, tid0);
    stun_add_addr(&b, STUN_A_MAPPED_ADDRESS, (struct sockaddr *)&v4, 0);
    stun_add_addr(&b, STUN_A_XOR_MAPPED_ADDRESS, (struct sockaddr *)&v6, 1);
    stun_add_addr(&b, STUN_A_XOR_PEER_ADDRESS, (struct sockaddr *)&peer, 1);
    stun_add_addr(&b, STUN_A_XOR_RELAYED_ADDRESS, (struct sockaddr *)&relayed, 1);
    stun_add_addr(&b, STUN_A_ALTERNATE_SERVER, (struct sockaddr *)&alt, 0);
    stun_add_addr(&b, STUN_A_RESPONSE_ORIGIN, (struct sockaddr *)&origin, 0);
    stun_add_addr(&b, STUN_A_OTHER_ADDRESS, (struct sockaddr *)&other, 0);
    stun_add_attr(&b, STUN_A_USERNAME, matrix_user, 18);
    stun_add_attr(&b, STUN_A_REALM, matrix_realm, 11);
    stun_add_attr(&b, STUN_A_NONCE, matrix_nonce, 28);
    stun_add_attr(&b, STUN_A_SOFTWARE, "tsunagi", 7);
    stun_add_attr(&b, STUN_A_ALTERNATE_DOMAIN, "turn.example.org", 16);
    stun_add_error(&b, 438, NULL);
    stun_add_unknown(&b, unk, 3);
    stun_add_u32(&b, STUN_A_CHANNEL_NUMBER, 0x40000000);
    stun_add_u32(&b, STUN_A_LIFETIME, 600);
    stun_add_attr(&b, STUN_A_DATA, data, sizeof(data));
    stun_add_attr(&b, STUN_A_REQUESTED_ADDRESS_FAMILY, fam, 4);
    stun_add_attr(&b, STUN_A_ADDITIONAL_ADDRESS_FAMILY, fam, 4);
    stun_add_attr(&b, STUN_A_EVEN_PORT, even, 1);
    stun_add_u32(&b, STUN_A_REQUESTED_TRANSPORT, 17u << 24);
    stun_add_attr(&b, STUN_A_DONT_FRAGMENT, NULL, 0);
    stun_add_attr(&b, STUN_A_RESERVATION_TOKEN, token, 8);
    stun_add_u32(&b, STUN_A_PRIORITY, 0x6e0001ff);
    stun_add_attr(&b, STUN_A_USE_CANDIDATE, NULL, 0);
    stun_add_attr(&b, STUN_A_ICE_CONTROLLED, tie, 8);
    stun_add_attr(&b, STUN_A_ICE_CONTROLLING, tie, 8);
    stun_add_u32(&b, STUN_A_CONNECTION_ID, 0xdeadbeef);
    stun_add_attr(&b, STUN_A_PASSWORD_ALGORITHMS, algs, 8);
    stun_add_attr(&b, STUN_A_PASSWORD_ALGORITHM, alg, 4);
    stun_add_attr(&b, STUN_A_USERHASH, userhash, 32);
    stun_add_attr(&b, STUN_A_ICMP, icmp, 8);
    stun_add_attr(&b, STUN_A_ADDRESS_ERROR_CODE, "\0\0\x04\x40", 4);
    stun_add_integrity(&b, key, 16);
    stun_add_integrity_sha256(&b, key, 16);
    stun_add_fingerprint(&b);
    n = stun_build_finish(&b);
    assert_true(n > 0);
    assert_int_equal(n % 4, 0);

    parse_ok(buf, n, &m);
    assert_int_equal(m.method, STUN_ALLOCATE);
    assert_int_equal(m.cls, STUN_ERROR);
    assert_int_equal(m.nattrs, 36);
    assert_int_equal(m.nunknown, 0);
    assert_int_equal(m.integrity, 33);
    assert_int_equal(m.integrity_sha256, 34);
    assert_int_equal(m.fingerprint, 35);
    expect_addr(&m, STUN_A_MAPPED_ADDRESS, 0, &v4);
    expect_addr(&m, STUN_A_XOR_MAPPED_ADDRESS, 1, &v6);
    expect_addr(&m, STUN_A_XOR_PEER_ADDRESS, 1, &peer);
    expect_addr(&m, STUN_A_XOR_RELAYED_ADDRESS, 1, &relayed);
    expect_addr(&m, STUN_A_ALTERNATE_SERVER, 0, &alt);
    expect_addr(&m, STUN_A_RESPONSE_ORIGIN, 0, &origin);
    expect_addr(&m, STUN_A_OTHER_ADDRESS, 0, &other);
    expect_attr(&m, STUN_A_USERNAME, matrix_user, 18);
    expect_attr(&m, STUN_A_REALM, matrix_realm, 11);
    expect_attr(&m, STUN_A_NONCE, matrix_nonce, 28);
    expect_attr(&m, STUN_A_SOFTWARE, "tsunagi", 7);
    expect_attr(&m, STUN_A_ALTERNATE_DOMAIN, "turn.example.org", 16);
    assert_int_equal(stun_attr_error(find_ok(&m, STUN_A_ERROR_CODE), &code, &reason, &rlen), TS_OK);
    assert_int_equal(code, 438);
    assert_int_equal(rlen, strlen("Stale Nonce"));
    assert_memory_equal(reason, "Stale Nonce", rlen);
    expect_attr(&m, STUN_A_UNKNOWN_ATTRIBUTES, "\x00\x02\x7f\x01\x00\x26", 6);
    assert_int_equal(stun_attr_u32(find_ok(&m, STUN_A_CHANNEL_NUMBER), &u), TS_OK);
    assert_int_equal(u, 0x40000000);
    assert_int_equal(stun_attr_u32(find_ok(&m, STUN_A_LIFETIME), &u), TS_OK);
    assert_int_equal(u, 600);
    expect_attr(&m, STUN_A_DATA, data, sizeof(data));
    expect_attr(&m, STUN_A_REQUESTED_ADDRESS_FAMILY, fam, 4);
    expect_attr(&m, STUN_A_ADDITIONAL_ADDRESS_FAMILY, fam, 4);
    expect_attr(&m, STUN_A_EVEN_PORT, even, 1);
    assert_int_equal(stun_attr_u32(find_ok(&m, STUN_A_REQUESTED_TRANSPORT), &u), TS_OK);
    assert_int_equal(u >> 24, 17);
    expect_attr(&m, STUN_A_DONT_FRAGMENT, NULL, 0);
    expect_attr(&m, STUN_A_RESERVATION_TOKEN, token, 8);
    assert_int_equal(stun_attr_u32(find_ok(&m, STUN_A_PRIORITY), &u), TS_OK);
    assert_int_equal(u, 0x6e0001ff);
    expect_attr(&m, STUN_A_USE_CANDIDATE, NULL, 0);
    expect_attr(&m, STUN_A_ICE_CONTROLLED, tie, 8);
    expect_attr(&m, STUN_A_ICE_CONTROLLING, tie, 8);
    assert_int_equal(stun_attr_u32(find_ok(&m, STUN_A_CONNECTION_ID), &u), TS_OK);
    assert_int_equal(u, 0xdeadbeef);
    expect_attr(&m, STUN_A_PASSWORD_ALGORITHMS, algs, 8);
    expect_attr(&m, STUN_A_PASSWORD_ALGORITHM, alg, 4);
    expect_attr(&m, STUN_A_USERHASH, userhash, 32);
    expect_attr(&m, STUN_A_ICMP, icmp, 8);
    expect_attr(&m, STUN_A_ADDRESS_ERROR_CODE, "\0\0\x04\x40", 4);
    assert_int_equal(find_ok(&m, STUN_A_MESSAGE_INTEGRITY)->len, 20);
    assert_int_equal(find_ok(&m, STUN_A_MESSAGE_INTEGRITY_SHA256)->len, 32);
    assert_int_equal(find_ok(&m, STUN_A_FINGERPRINT)->len, 4);
    assert_int_equal(stun_check_integrity(&m, key, 16), 1);
    assert_int_equal(stun_check_integrity_sha256(&m, key, 16), 1);
    assert_null(stun_msg_find(&m, STUN_A_CHANGE_REQUEST));

    /* Every value slice lies inside the message, 4-aligned. */
    for (unsigned i = 0; i < m.nattrs; i++) {
        size_t off = (size_t)(m.attrs[i].value - buf);
        assert_true(off >= 24 && off + m.attrs[i].len <= n);
        assert_int_equal(off % 4, 0);
    }
}

/* The method and class bits are interleaved in the type (RFC 8489 5). */
static void test_method_and_class_bits(void **state)
{
    static const uint16_t classes[] = {STUN_REQUEST, STUN_INDICATION, STUN_SUCCESS, STUN_ERROR};
    uint8_t b[20];
    stun_msg_t m;

    for (unsigned method = 0; method < 0x1000; method++) {
        for (unsigned c = 0; c < 4; c++) {
            unsigned type =
                (method & 0xf) | (method & 0x70) << 1 | (method & 0xf80) << 2 | classes[c];
            stun_builder_t bl;
            stun_build_init(&bl, b, sizeof(b), (uint16_t)type, tid0);
            assert_int_equal(stun_build_finish(&bl), 20);
            parse_ok(b, 20, &m);
            assert_int_equal(m.type, type);
            assert_int_equal(m.method, method);
            assert_int_equal(m.cls, classes[c]);
        }
    }
}

static void test_find_first_and_missing(void **state)
{
    uint8_t buf[256];
    stun_builder_t b;
    stun_msg_t m;

    stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, tid0);
    stun_add_attr(&b, STUN_A_SOFTWARE, "one", 3);
    stun_add_attr(&b, STUN_A_SOFTWARE, "two", 3);
    parse_ok(buf, stun_build_finish(&b), &m);
    assert_int_equal(m.nattrs, 2);
    expect_attr(&m, STUN_A_SOFTWARE, "one", 3);
    assert_null(stun_msg_find(&m, STUN_A_USERNAME));
    assert_null(stun_msg_find(&m, STUN_A_MESSAGE_INTEGRITY));
    assert_int_equal(stun_check_integrity(&m, (const uint8_t *)"k", 1), 0);
    assert_int_equal(stun_check_integrity_sha256(&m, (const uint8_t *)"k", 1), 0);
}

/* ------------------------------------------------------------- malformed -- */

/* A message from raw attribute bytes: header + body, length field set. */
static size_t raw_msg(uint8_t *out, uint16_t type, const uint8_t *body, size_t blen)
{
    wr16(out, type);
    wr16(out + 2, (unsigned)blen);
    wr32(out + 4, STUN_MAGIC_COOKIE);
    memcpy(out + 8, tid0, 12);
    if (blen > 0)
        memcpy(out + 20, body, blen);
    return 20 + blen;
}

static void test_malformed_header(void **state)
{
    uint8_t b[64], good[64];
    size_t n;
    stun_builder_t bl;
    stun_msg_t m;

    stun_build_init(&bl, good, sizeof(good), STUN_BINDING, tid0);
    stun_add_attr(&bl, STUN_A_SOFTWARE, "abcd", 4);
    n = stun_build_finish(&bl);
    parse_ok(good, n, &m);

    /* Truncated: every shorter buffer. */
    for (size_t i = 0; i < n; i++)
        parse_fails(good, i, "truncated");
    /* A buffer longer than the message says. */
    memcpy(b, good, n);
    memset(b + n, 0, 8);
    parse_fails(b, n + 4, "trailing bytes");
    /* The top two bits of the type. */
    memcpy(b, good, n);
    b[0] |= 0x40;
    parse_fails(b, n, "top bit 0x40");
    b[0] = (uint8_t)((b[0] & 0x3f) | 0x80);
    parse_fails(b, n, "top bit 0x80");
    /* Length field: not a multiple of 4, too long, too short. */
    for (unsigned l = 0; l < 16; l++) {
        memcpy(b, good, n);
        wr16(b + 2, l);
        if (l != n - 20)
            parse_fails(b, n, "length mismatch");
    }
    memcpy(b, good, n);
    wr16(b + 2, 0xffff);
    parse_fails(b, n, "length 0xffff");
    /* A bare header is a message. */
    stun_build_init(&bl, good, sizeof(good), STUN_BINDING, tid0);
    parse_ok(good, stun_build_finish(&bl), &m);
    assert_int_equal(m.nattrs, 0);
}

static void test_malformed_attributes(void **state)
{
    uint8_t b[MAXMSG], body[MAXMSG];
    size_t n;
    stun_msg_t m;

    /* The attribute overruns the message. */
    wr16(body, STUN_A_SOFTWARE);
    wr16(body + 2, 8);
    memcpy(body + 4, "abcd", 4);
    n = raw_msg(b, 0x0001, body, 8);
    parse_fails(b, n, "value overruns");
    wr16(body + 2, 5); /* 5 bytes + 3 padding do not fit in 4 */
    n = raw_msg(b, 0x0001, body, 8);
    parse_fails(b, n, "padding overruns");
    wr16(body + 2, 0xffff);
    n = raw_msg(b, 0x0001, body, 8);
    parse_fails(b, n, "length 0xffff");
    /* The last attribute not padded: the message length is no multiple of 4. */
    wr16(body + 2, 3);
    memcpy(body + 4, "abc", 3);
    n = raw_msg(b, 0x0001, body, 7);
    parse_fails(b, n, "unpadded last attribute");
    /* Padded, it is fine, whatever the padding byte is. */
    body[7] = 'X';
    n = raw_msg(b, 0x0001, body, 8);
    parse_ok(b, n, &m);
    expect_attr(&m, STUN_A_SOFTWARE, "abc", 3);
    /* A header fragment after the last attribute cannot happen (length % 4),
     * but an attribute header with nothing after it and length > 0 can. */
    wr16(body + 8, STUN_A_USERNAME);
    wr16(body + 10, 1);
    n = raw_msg(b, 0x0001, body, 12);
    parse_fails(b, n, "header without value");
    wr16(body + 10, 0);
    n = raw_msg(b, 0x0001, body, 12);
    parse_ok(b, n, &m);
    assert_int_equal(m.nattrs, 2);
}

static size_t build_with(uint8_t *buf, size_t cap, void (*extra)(stun_builder_t *))
{
    stun_builder_t b;

    stun_build_init(&b, buf, cap, STUN_BINDING, tid0);
    stun_add_attr(&b, STUN_A_SOFTWARE, "client", 6);
    extra(&b);
    return stun_build_finish(&b);
}

static void extra_fp_then_attr(stun_builder_t *b)
{
    stun_add_fingerprint(b);
    stun_add_attr(b, STUN_A_SOFTWARE, "late", 4);
}

static void extra_fp(stun_builder_t *b)
{
    stun_add_fingerprint(b);
}

static void extra_mi_fp(stun_builder_t *b)
{
    stun_add_integrity(b, (const uint8_t *)"pw", 2);
    stun_add_fingerprint(b);
}

static void test_fingerprint_rules(void **state)
{
    uint8_t b[MAXMSG];
    size_t n;
    stun_msg_t m;

    n = build_with(b, sizeof(b), extra_fp);
    parse_ok(b, n, &m);
    assert_int_equal(m.fingerprint, 1);
    /* Python: zlib.crc32 of the 32 bytes before it ^ 0x5354554e. */
    {
        uint32_t want = (uint32_t)crc32(0, b, (uInt)(n - 8)) ^ 0x5354554eu;
        assert_int_equal(rd32(b + n - 4), want);
    }
    for (int i = 1; i <= 4; i++) {
        uint8_t c[MAXMSG];
        memcpy(c, b, n);
        c[n - i] ^= 0x01;
        parse_fails(c, n, "wrong fingerprint");
    }
    /* FINGERPRINT not last. */
    /* FINGERPRINT not last, though right for the bytes before it. */
    n = build_with(b, sizeof(b), extra_fp_then_attr);
    fix_fingerprint_at(b, n - 16);
    parse_fails(b, n, "fingerprint not last");
    wr16(b + n - 8, STUN_A_FINGERPRINT); /* two FINGERPRINTs */
    wr16(b + n - 6, 4);
    fix_fingerprint_at(b, n - 16);
    parse_fails(b, n, "two fingerprints");
    /* FINGERPRINT of the wrong size (8 bytes), even with a good CRC first. */
    {
        uint8_t body[64];
        wr16(body, STUN_A_FINGERPRINT);
        wr16(body + 2, 8);
        memset(body + 4, 0, 8);
        n = raw_msg(b, 0x0001, body, 12);
        wr32(b + 24, (uint32_t)crc32(0, b, 20) ^ 0x5354554eu);
        parse_fails(b, n, "8-byte fingerprint");
        wr16(b + 22, 4);
        wr16(b + 2, 8);
        wr32(b + 24, (uint32_t)crc32(0, b, 20) ^ 0x5354554eu);
        parse_ok(b, 28, &m);
        wr16(b + 22, 0);
        wr16(b + 2, 4);
        parse_fails(b, 24, "empty fingerprint");
    }
    /* MI and FINGERPRINT together. */
    n = build_with(b, sizeof(b), extra_mi_fp);
    parse_ok(b, n, &m);
    assert_int_equal(m.integrity, 1);
    assert_int_equal(m.fingerprint, 2);
    assert_int_equal(stun_check_integrity(&m, (const uint8_t *)"pw", 2), 1);
}

static void test_integrity_sizes(void **state)
{
    uint8_t body[128], b[256];
    stun_msg_t m;
    size_t n;

    for (unsigned len = 0; len <= 40; len++) {
        memset(body, 0x11, sizeof(body));
        wr16(body, STUN_A_MESSAGE_INTEGRITY);
        wr16(body + 2, len);
        n = raw_msg(b, 0x0001, body, 4 + ((len + 3) & ~3u));
        if (len == 20) {
            parse_ok(b, n, &m);
            assert_int_equal(m.integrity, 0);
        } else {
            parse_fails(b, n, "MESSAGE-INTEGRITY size");
        }
        wr16(body, STUN_A_MESSAGE_INTEGRITY_SHA256);
        n = raw_msg(b, 0x0001, body, 4 + ((len + 3) & ~3u));
        if (len >= 16 && len <= 32 && len % 4 == 0) {
            parse_ok(b, n, &m);
            assert_int_equal(m.integrity_sha256, 0);
            assert_int_equal(m.attrs[0].len, len);
        } else {
            parse_fails(b, n, "MESSAGE-INTEGRITY-SHA256 size");
        }
    }
}

/* RFC 8489 14.5, 14.6: what follows the integrity attributes. */
static void test_attributes_after_integrity(void **state)
{
    static const uint8_t key[] = "secret";
    uint8_t buf[MAXMSG];
    stun_builder_t b;
    stun_msg_t m;
    size_t n;

    /* After MI: MI-SHA256 counts, anything else is ignored, even unknown
     * comprehension-required attributes and a second MI. FINGERPRINT is
     * still checked. */
    stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, tid0);
    stun_add_attr(&b, STUN_A_USERNAME, "u", 1);
    stun_add_integrity(&b, key, 6);
    stun_add_attr(&b, STUN_A_SOFTWARE, "ignored", 7);
    stun_add_attr(&b, 0x0002, "x", 1);
    stun_add_attr(&b, STUN_A_MESSAGE_INTEGRITY, "short", 5);
    stun_add_integrity_sha256(&b, key, 6);
    stun_add_attr(&b, STUN_A_USERNAME, "v", 1);
    stun_add_attr(&b, STUN_A_MESSAGE_INTEGRITY_SHA256, "bad", 3);
    stun_add_fingerprint(&b);
    n = stun_build_finish(&b);
    parse_ok(buf, n, &m);
    assert_int_equal(m.nattrs, 4);
    assert_int_equal(m.integrity, 1);
    assert_int_equal(m.integrity_sha256, 2);
    assert_int_equal(m.fingerprint, 3);
    assert_int_equal(m.nunknown, 0);
    assert_null(stun_msg_find(&m, STUN_A_SOFTWARE));
    assert_null(stun_msg_find(&m, 0x0002));
    expect_attr(&m, STUN_A_USERNAME, "u", 1);
    assert_int_equal(stun_check_integrity(&m, key, 6), 1);
    /* MI-SHA256 covers the ignored attributes between it and MI. */
    assert_int_equal(stun_check_integrity_sha256(&m, key, 6), 1);

    /* After MI-SHA256 even MI is ignored. */
    stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, tid0);
    stun_add_integrity_sha256(&b, key, 6);
    stun_add_integrity(&b, key, 6);
    n = stun_build_finish(&b);
    parse_ok(buf, n, &m);
    assert_int_equal(m.nattrs, 1);
    assert_int_equal(m.integrity, -1);
    assert_int_equal(m.integrity_sha256, 0);
    assert_null(stun_msg_find(&m, STUN_A_MESSAGE_INTEGRITY));
    assert_int_equal(stun_check_integrity(&m, key, 6), 0);
    assert_int_equal(stun_check_integrity_sha256(&m, key, 6), 1);

    /* Ignored attributes are still framed: one overrunning fails. */
    stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, tid0);
    stun_add_integrity(&b, key, 6);
    stun_add_attr(&b, STUN_A_SOFTWARE, "abcd", 4);
    n = stun_build_finish(&b);
    wr16(buf + n - 6, 9);
    parse_fails(buf, n, "ignored attribute overruns");
    /* And a FINGERPRINT after ignored ones must still be last and right. */
    stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, tid0);
    stun_add_integrity(&b, key, 6);
    stun_add_fingerprint(&b);
    stun_add_attr(&b, STUN_A_SOFTWARE, "abcd", 4);
    n = stun_build_finish(&b);
    fix_fingerprint_at(buf, n - 16);
    parse_fails(buf, n, "fingerprint not last after MI");
}

static void test_too_many_attributes(void **state)
{
    uint8_t buf[MAXMSG];
    stun_builder_t b;
    stun_msg_t m;
    size_t n;

    for (unsigned count = STUN_MAX_ATTRS - 1; count <= STUN_MAX_ATTRS + 1; count++) {
        stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, tid0);
        for (unsigned i = 0; i < count; i++)
            stun_add_u32(&b, STUN_A_PRIORITY, i);
        n = stun_build_finish(&b);
        if (count <= STUN_MAX_ATTRS) {
            parse_ok(buf, n, &m);
            assert_int_equal(m.nattrs, count);
        } else {
            parse_fails(buf, n, "too many attributes");
        }
        /* FINGERPRINT takes a slot too. */
        stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, tid0);
        for (unsigned i = 0; i + 1 < count; i++)
            stun_add_u32(&b, STUN_A_PRIORITY, i);
        stun_add_fingerprint(&b);
        n = stun_build_finish(&b);
        if (count <= STUN_MAX_ATTRS) {
            parse_ok(buf, n, &m);
            assert_int_equal(m.fingerprint, count - 1);
        } else {
            parse_fails(buf, n, "too many attributes with fingerprint");
        }
    }
    /* Ignored attributes take none. */
    stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, tid0);
    stun_add_integrity(&b, (const uint8_t *)"k", 1);
    for (unsigned i = 0; i < 100; i++)
        stun_add_u32(&b, STUN_A_PRIORITY, i);
    parse_ok(buf, stun_build_finish(&b), &m);
    assert_int_equal(m.nattrs, 1);
}

static void test_unknown_attributes(void **state)
{
    static const uint16_t required[] = {0x0002, 0x0003, 0x0004, 0x0005, 0x0007,
                                        0x000b, 0x0026, 0x0040, 0x1234, 0x7fff};
    static const uint16_t known[] = {0x0001, 0x0006, 0x0009, 0x000a, 0x000c, 0x000d, 0x0012, 0x0013,
                                     0x0014, 0x0015, 0x0016, 0x0017, 0x0018, 0x0019, 0x001a, 0x001d,
                                     0x001e, 0x0020, 0x0022, 0x0024, 0x0025, 0x002a};
    static const uint16_t optional[] = {0x8000, 0x8001, 0x8022, 0x8029, 0x802a,
                                        0x802b, 0x802c, 0x8fff, 0xc001, 0xffff};
    uint8_t buf[MAXMSG];
    stun_builder_t b;
    stun_msg_t m;

    stun_build_init(&b, buf, sizeof(buf), STUN_ALLOCATE, tid0);
    for (size_t i = 0; i < TS_ARRAY_SIZE(known); i++)
        stun_add_attr(&b, known[i], "", 0);
    for (size_t i = 0; i < TS_ARRAY_SIZE(required); i++)
        stun_add_attr(&b, required[i], "req", 3);
    stun_add_attr(&b, 0x0002, "again", 5); /* listed once */
    parse_ok(buf, stun_build_finish(&b), &m);
    assert_int_equal(m.nunknown, TS_ARRAY_SIZE(required));
    for (size_t i = 0; i < TS_ARRAY_SIZE(required); i++)
        assert_int_equal(m.unknown[i], required[i]);
    /* Still parsed and findable: the caller answers 420 with them. */
    expect_attr(&m, 0x1234, "req", 3);

    /* Comprehension-optional ones are never listed. */
    stun_build_init(&b, buf, sizeof(buf), STUN_ALLOCATE, tid0);
    for (size_t i = 0; i < TS_ARRAY_SIZE(optional); i++)
        stun_add_attr(&b, optional[i], "opt", 3);
    parse_ok(buf, stun_build_finish(&b), &m);
    assert_int_equal(m.nattrs, TS_ARRAY_SIZE(optional));
    assert_int_equal(m.nunknown, 0);
    expect_attr(&m, 0xc001, "opt", 3);

    /* More than STUN_MAX_UNKNOWN: the first ones are kept. */
    stun_build_init(&b, buf, sizeof(buf), STUN_ALLOCATE, tid0);
    for (unsigned i = 0; i < STUN_MAX_UNKNOWN + 5; i++)
        stun_add_attr(&b, (uint16_t)(0x0100 + i), NULL, 0);
    parse_ok(buf, stun_build_finish(&b), &m);
    assert_int_equal(m.nunknown, STUN_MAX_UNKNOWN);
    for (unsigned i = 0; i < STUN_MAX_UNKNOWN; i++)
        assert_int_equal(m.unknown[i], 0x0100 + i);
}

/* --------------------------------------------------------------- RFC 3489 -- */

static void test_rfc3489(void **state)
{
    static const uint8_t id16[16] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    uint8_t req[64], out[128];
    struct sockaddr_storage ss;
    stun_builder_t b;
    stun_msg_t m, r;
    size_t n;

    /* A classic Binding request: 128-bit transaction id, no cookie. */
    wr16(req, 0x0001);
    wr16(req + 2, 0);
    memcpy(req + 4, id16, 16);
    assert_false(stun_is_message(req, 20));
    parse_ok(req, 20, &m);
    assert_int_equal(m.rfc3489, 1);
    assert_int_equal(m.method, STUN_BINDING);
    assert_int_equal(m.cls, STUN_REQUEST);
    assert_memory_equal(m.tid, id16 + 4, 12);

    /* With RESPONSE-ADDRESS (unknown to RFC 5389: listed for 420 like any). */
    wr16(req + 2, 12);
    wr16(req + 20, 0x0002);
    wr16(req + 22, 8);
    memset(req + 24, 0, 8);
    parse_ok(req, 32, &m);
    assert_int_equal(m.rfc3489, 1);
    assert_int_equal(m.nunknown, 1);
    assert_int_equal(m.unknown[0], 0x0002);

    /* Anything else without the cookie is not STUN we speak. */
    for (unsigned type = 0; type < 0x4000; type++) {
        if (type == 0x0001)
            continue;
        wr16(req, type);
        wr16(req + 2, 0);
        parse_fails(req, 20, "RFC 3489 message other than a Binding request");
    }

    /* The answer echoes all 16 bytes, and MAPPED-ADDRESS is what it reads. */
    wr16(req, 0x0001);
    parse_ok(req, 20, &m);
    sa_v4(&ss, "192.0.2.33", 40000);
    stun_build_reply(&b, out, sizeof(out), STUN_BINDING | STUN_SUCCESS, &m);
    stun_add_addr(&b, STUN_A_MAPPED_ADDRESS, (struct sockaddr *)&ss, 0);
    n = stun_build_finish(&b);
    assert_int_equal(n, 32);
    assert_memory_equal(out + 4, id16, 16);
    parse_fails(out, n, "RFC 3489 response"); /* we never accept one */
    assert_memory_equal(out + 20, "\x00\x01\x00\x08\x00\x01\x9c\x40\xc0\x00\x02\x21", 12);

    /* A modern request gets the cookie back. */
    stun_build_init(&b, req, sizeof(req), STUN_BINDING, tid0);
    parse_ok(req, stun_build_finish(&b), &m);
    stun_build_reply(&b, out, sizeof(out), STUN_BINDING | STUN_SUCCESS, &m);
    stun_add_addr(&b, STUN_A_XOR_MAPPED_ADDRESS, (struct sockaddr *)&ss, 1);
    n = stun_build_finish(&b);
    parse_ok(out, n, &r);
    assert_int_equal(r.rfc3489, 0);
    assert_memory_equal(r.tid, tid0, 12);
    expect_addr(&r, STUN_A_XOR_MAPPED_ADDRESS, 1, &ss);
}

/* -------------------------------------------------------------- integrity -- */

static void test_integrity_sha256_python(void **state)
{
    /* Python: hmac.new(k, msg, sha256) over USERNAME, REALM, NONCE of the
     * RFC 5769 2.4 user with tid 00..0b, k = the SHA-256 long-term key. */
    static const char want_mac[] =
        "225679d8ae9b0cfb384d4bbc6d138573a8d68d99ebb4de63c6657e78a992267f";
    uint8_t buf[MAXMSG], key[32], mac[32];
    stun_builder_t b;
    stun_msg_t m;
    size_t n;

    stun_long_term_key_sha256(matrix_user, 18, matrix_realm, 11, matrix_pass, 9, key);
    stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, tid0);
    stun_add_attr(&b, STUN_A_USERNAME, matrix_user, 18);
    stun_add_attr(&b, STUN_A_REALM, matrix_realm, 11);
    stun_add_attr(&b, STUN_A_NONCE, matrix_nonce, 28);
    stun_add_integrity_sha256(&b, key, 32);
    stun_add_fingerprint(&b);
    n = stun_build_finish(&b);
    assert_int_equal(n, 136);
    parse_ok(buf, n, &m);
    unhex(want_mac, mac, sizeof(mac));
    expect_attr(&m, STUN_A_MESSAGE_INTEGRITY_SHA256, mac, 32);
    /* Python: zlib.crc32(msg) ^ 0x5354554e = 0x4f806c16 */
    expect_attr(&m, STUN_A_FINGERPRINT, "\x4f\x80\x6c\x16", 4);
    assert_int_equal(stun_check_integrity_sha256(&m, key, 32), 1);
    key[0] ^= 0x80;
    assert_int_equal(stun_check_integrity_sha256(&m, key, 32), 0);
}

/*
 * A truncated MESSAGE-INTEGRITY-SHA256 of 16..28 bytes: the expected value
 * is computed here with OpenSSL's one-shot HMAC() over the message with its
 * length field cut after the attribute, not with the codec's code path.
 */
static void test_integrity_sha256_truncated(void **state)
{
    static const uint8_t key[] = "a short-term password";
    for (unsigned tl = 16; tl <= 32; tl += 4) {
        uint8_t buf[MAXMSG], copy[MAXMSG], mac[32];
        unsigned maclen = 0;
        stun_builder_t b;
        stun_msg_t m;
        size_t off, n;

        stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, tid0);
        stun_add_attr(&b, STUN_A_USERNAME, "alice:bob", 9);
        stun_add_u32(&b, STUN_A_PRIORITY, 12345);
        off = b.len;
        memcpy(copy, buf, off);
        wr16(copy + 2, (unsigned)(off - 20 + 4 + tl));
        assert_non_null(HMAC(EVP_sha256(), key, sizeof(key) - 1, copy, off, mac, &maclen));
        assert_int_equal(maclen, 32);
        stun_add_attr(&b, STUN_A_MESSAGE_INTEGRITY_SHA256, mac, tl);
        stun_add_fingerprint(&b);
        n = stun_build_finish(&b);
        parse_ok(buf, n, &m);
        assert_int_equal(m.attrs[m.integrity_sha256].len, tl);
        assert_int_equal(stun_check_integrity_sha256(&m, key, sizeof(key) - 1), 1);
        /* Any bit of the truncated value matters. */
        for (unsigned i = 0; i < tl * 8; i++) {
            uint8_t c[MAXMSG];
            stun_msg_t cm;
            memcpy(c, buf, n);
            c[off + 4 + i / 8] ^= (uint8_t)(1u << (i % 8));
            fix_fingerprint(c, n);
            parse_ok(c, n, &cm);
            assert_int_equal(stun_check_integrity_sha256(&cm, key, sizeof(key) - 1), 0);
        }
    }
}

static void test_integrity_empty_key(void **state)
{
    /* Python: hmac.new(b"", msg, sha1) for a Binding request with SOFTWARE
     * "x" and tid 00..0b, length field counting the MI. */
    static const char want[] = "861420056ee484cf7cf54b4dd2859a4806da41f6";
    uint8_t buf[256], mac[20];
    stun_builder_t b;
    stun_msg_t m;

    stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, tid0);
    stun_add_attr(&b, STUN_A_SOFTWARE, "x", 1);
    stun_add_integrity(&b, NULL, 0);
    parse_ok(buf, stun_build_finish(&b), &m);
    unhex(want, mac, sizeof(mac));
    expect_attr(&m, STUN_A_MESSAGE_INTEGRITY, mac, 20);
    assert_int_equal(stun_check_integrity(&m, NULL, 0), 1);
    assert_int_equal(stun_check_integrity(&m, (const uint8_t *)"", 0), 1);
    /* A non-empty key after an empty one is not mistaken for it, and back. */
    assert_int_equal(stun_check_integrity(&m, (const uint8_t *)"k", 1), 0);
    assert_int_equal(stun_check_integrity(&m, NULL, 0), 1);
}

/* A short-term key longer than the hash block is hashed first (RFC 2104). */
static void test_integrity_long_key(void **state)
{
    uint8_t key[200], buf[256], mac[20];
    unsigned maclen;
    stun_builder_t b;
    stun_msg_t m;
    size_t n;

    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)i;
    stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, tid0);
    stun_add_integrity(&b, key, sizeof(key));
    n = stun_build_finish(&b);
    assert_non_null(HMAC(EVP_sha1(), key, sizeof(key), buf, 20, mac, &maclen));
    parse_ok(buf, n, &m);
    expect_attr(&m, STUN_A_MESSAGE_INTEGRITY, mac, 20);
    assert_int_equal(stun_check_integrity(&m, key, sizeof(key)), 1);
}

static void test_long_term_keys(void **state)
{
    uint8_t got[32], want[32];

    stun_long_term_key_md5(matrix_user, 18, matrix_realm, 11, matrix_pass, 9, got);
    unhex(matrix_md5_hex, want, 16);
    assert_memory_equal(got, want, 16);
    stun_long_term_key_sha256(matrix_user, 18, matrix_realm, 11, matrix_pass, 9, got);
    unhex(matrix_sha256_hex, want, 32);
    assert_memory_equal(got, want, 32);
    stun_userhash(matrix_user, 18, matrix_realm, 11, got);
    unhex(matrix_userhash_hex, want, 32);
    assert_memory_equal(got, want, 32);
    /* Python: hashlib.md5(b"user:realm:").hexdigest() — an empty password. */
    stun_long_term_key_md5("user", 4, "realm", 5, "", 0, got);
    unhex("6765432ea161d2339747fc87c08dac8f", want, 16);
    assert_memory_equal(got, want, 16);
    /* Lengths are honoured: no reading to a NUL. */
    stun_long_term_key_md5("user-and-more", 4, "realm!", 5, "pw", 0, got);
    assert_memory_equal(got, want, 16);
}

/*
 * The HMAC contexts are per thread: threads checking at once all get the
 * right answers, and a thread's contexts go with it (LeakSanitizer would
 * report them at exit otherwise).
 */
typedef struct {
    const uint8_t *msg;
    size_t len;
    int good;
} mt_job_t;

static void *mt_check(void *arg)
{
    mt_job_t *j = arg;
    stun_msg_t m;

    j->good = 0;
    for (int i = 0; i < 200; i++) {
        if (stun_msg_parse(j->msg, j->len, &m) != TS_OK)
            return NULL;
        j->good += stun_check_integrity(&m, (const uint8_t *)short_term_pw, 22);
        j->good -= stun_check_integrity(&m, (const uint8_t *)"wrong", 5);
    }
    return NULL;
}

static void test_integrity_threads(void **state)
{
    uint8_t b[MAXMSG];
    size_t n = load_vector("sample_request.hex", b, sizeof(b));
    pthread_t t[4];
    mt_job_t jobs[4];

    for (int i = 0; i < 4; i++) {
        jobs[i] = (mt_job_t){b, n, -1};
        assert_int_equal(pthread_create(&t[i], NULL, mt_check, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(jobs[i].good, 200);
    }
}

/* -------------------------------------------------------------- builder -- */

/* CVE-2020-4067: coturn sent uninitialised padding. Every pad byte is zero,
 * whatever the buffer held before. */
static void test_builder_padding_zero(void **state)
{
    static const uint8_t value[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint16_t types[4] = {0xffff, 0xffff, 0xffff, 0xffff};
    char reason[9] = "abcdefgh";

    for (size_t len = 0; len <= 8; len++) {
        uint8_t buf[128];
        size_t padded = (len + 3) & ~(size_t)3;
        stun_builder_t b;
        stun_msg_t m;
        size_t n;

        memset(buf, 0xa5, sizeof(buf));
        stun_build_init(&b, buf, sizeof(buf), STUN_BINDING | STUN_SUCCESS, tid0);
        stun_add_attr(&b, STUN_A_DATA, value, len);
        n = stun_build_finish(&b);
        assert_int_equal(n, 24 + padded);
        assert_int_equal(rd16(buf + 2), 4 + padded);
        assert_int_equal(rd16(buf + 22), len);
        assert_memory_equal(buf + 24, value, len);
        for (size_t i = 24 + len; i < n; i++)
            if (buf[i] != 0)
                fail_msg("length %zu: padding byte %zu is %02x", len, i - 24 - len, buf[i]);
        parse_ok(buf, n, &m);
        expect_attr(&m, STUN_A_DATA, value, len);

        /* ERROR-CODE reasons and UNKNOWN-ATTRIBUTES lists pad too. */
        memset(buf, 0xa5, sizeof(buf));
        reason[len] = '\0';
        stun_build_init(&b, buf, sizeof(buf), STUN_BINDING | STUN_ERROR, tid0);
        stun_add_error(&b, 400, reason);
        n = stun_build_finish(&b);
        assert_int_equal(n, 24 + 4 + padded);
        for (size_t i = 28 + len; i < n; i++)
            assert_int_equal(buf[i], 0);
        reason[len] = "abcdefgh"[len];

        memset(buf, 0xa5, sizeof(buf));
        stun_build_init(&b, buf, sizeof(buf), STUN_BINDING | STUN_ERROR, tid0);
        stun_add_unknown(&b, types, len / 2);
        n = stun_build_finish(&b);
        for (size_t i = 24 + (len / 2) * 2; i < n; i++)
            assert_int_equal(buf[i], 0);
    }
}

static size_t build_reference(uint8_t *buf, size_t cap)
{
    struct sockaddr_storage ss;
    stun_builder_t b;

    sa_v6(&ss, "2001:db8::42", 1234);
    stun_build_init(&b, buf, cap, STUN_ALLOCATE | STUN_SUCCESS, tid0);
    stun_add_addr(&b, STUN_A_XOR_RELAYED_ADDRESS, (struct sockaddr *)&ss, 1);
    stun_add_u32(&b, STUN_A_LIFETIME, 600);
    stun_add_attr(&b, STUN_A_SOFTWARE, "tsunagi", 7);
    stun_add_error(&b, 401, NULL);
    stun_add_integrity(&b, (const uint8_t *)"key", 3);
    stun_add_integrity_sha256(&b, (const uint8_t *)"key", 3);
    stun_add_fingerprint(&b);
    return stun_build_finish(&b);
}

static void test_builder_overflow(void **state)
{
    uint8_t ref[MAXMSG];
    size_t full = build_reference(ref, sizeof(ref));

    assert_true(full > 100);
    for (size_t cap = 0; cap <= full + 4; cap++) {
        uint8_t guard[MAXMSG];
        size_t got;

        memset(guard, 0xee, sizeof(guard));
        got = build_reference(guard, cap);
        for (size_t i = cap; i < sizeof(guard); i++)
            if (guard[i] != 0xee)
                fail_msg("cap %zu: byte %zu written", cap, i);
        if (cap < full) {
            assert_int_equal(got, 0);
        } else {
            assert_int_equal(got, full);
            assert_memory_equal(guard, ref, full);
        }
    }
}

static void test_builder_length_limit(void **state)
{
    static uint8_t big[70000], data[65536];
    stun_builder_t b;
    stun_msg_t m;

    /* The largest message: a length field of 0xfffc. */
    stun_build_init(&b, big, sizeof(big), STUN_SEND | STUN_INDICATION, tid0);
    stun_add_attr(&b, STUN_A_DATA, data, 0xfffc - 4);
    assert_int_equal(stun_build_finish(&b), 20 + 0xfffc);
    parse_ok(big, 20 + 0xfffc, &m);
    assert_int_equal(m.attrs[0].len, 0xfffc - 4);
    assert_int_equal(stun_stream_frame_len(big, 20 + 0xfffc), 20 + 0xfffc);
    stun_add_attr(&b, STUN_A_DONT_FRAGMENT, NULL, 0);
    assert_int_equal(b.overflow, 1);
    assert_int_equal(stun_build_finish(&b), 0);
    /* A value over 0xffff, whatever the room. */
    stun_build_init(&b, big, sizeof(big), STUN_SEND | STUN_INDICATION, tid0);
    stun_add_attr(&b, STUN_A_DATA, data, 0x10000);
    assert_int_equal(stun_build_finish(&b), 0);
    /* Once overflowed, nothing more is written. */
    stun_build_init(&b, big, 24, STUN_BINDING, tid0);
    stun_add_attr(&b, STUN_A_SOFTWARE, "toolong", 7);
    assert_int_equal(b.overflow, 1);
    stun_add_attr(&b, STUN_A_DONT_FRAGMENT, NULL, 0);
    stun_add_fingerprint(&b);
    assert_int_equal(b.len, 20);
    assert_int_equal(stun_build_finish(&b), 0);
    /* No room for a header at all. */
    stun_build_init(&b, big, 19, STUN_BINDING, tid0);
    assert_int_equal(stun_build_finish(&b), 0);
}

static void test_builder_misuse_is_overflow(void **state)
{
    uint8_t buf[128];
    struct sockaddr sa;
    stun_builder_t b;

    memset(&sa, 0, sizeof(sa));
    sa.sa_family = AF_UNIX;
    stun_build_init(&b, buf, sizeof(buf), STUN_BINDING | STUN_SUCCESS, tid0);
    stun_add_addr(&b, STUN_A_XOR_MAPPED_ADDRESS, &sa, 1);
    assert_int_equal(stun_build_finish(&b), 0);
    stun_build_init(&b, buf, sizeof(buf), STUN_BINDING | STUN_ERROR, tid0);
    stun_add_error(&b, 200, NULL);
    assert_int_equal(stun_build_finish(&b), 0);
    stun_build_init(&b, buf, sizeof(buf), STUN_BINDING | STUN_ERROR, tid0);
    stun_add_error(&b, 700, "x");
    assert_int_equal(stun_build_finish(&b), 0);
}

/* ------------------------------------------------------- addresses, errors -- */

static void test_addr_mapped_v4_in_v6(void **state)
{
    struct sockaddr_storage mapped, plain;
    uint8_t buf[128];
    stun_builder_t b;
    stun_msg_t m;

    sa_v6(&mapped, "::ffff:198.51.100.9", 50000);
    sa_v4(&plain, "198.51.100.9", 50000);
    stun_build_init(&b, buf, sizeof(buf), STUN_BINDING | STUN_SUCCESS, tid0);
    stun_add_addr(&b, STUN_A_XOR_MAPPED_ADDRESS, (struct sockaddr *)&mapped, 1);
    stun_add_addr(&b, STUN_A_MAPPED_ADDRESS, (struct sockaddr *)&mapped, 0);
    parse_ok(buf, stun_build_finish(&b), &m);
    assert_int_equal(m.attrs[0].len, 8);
    expect_addr(&m, STUN_A_XOR_MAPPED_ADDRESS, 1, &plain);
    expect_addr(&m, STUN_A_MAPPED_ADDRESS, 0, &plain);
}

static void test_addr_errors(void **state)
{
    static const struct {
        uint8_t family;
        uint16_t len;
    } bad[] = {{0, 8}, {3, 8}, {1, 20}, {2, 8}, {1, 4}, {1, 12}, {2, 16}, {2, 24}, {1, 0}, {1, 3}};
    uint8_t body[64], b[128];
    struct sockaddr_storage ss;
    socklen_t sl;
    stun_msg_t m;

    for (size_t i = 0; i < TS_ARRAY_SIZE(bad); i++) {
        memset(body, 0, sizeof(body));
        wr16(body, STUN_A_XOR_MAPPED_ADDRESS);
        wr16(body + 2, bad[i].len);
        body[5] = bad[i].family;
        parse_ok(b, raw_msg(b, 0x0101, body, 4 + ((bad[i].len + 3u) & ~3u)), &m);
        assert_int_equal(stun_attr_addr(&m, &m.attrs[0], 1, &ss, &sl), TS_ERR_PROTO);
        assert_int_equal(stun_attr_addr(&m, &m.attrs[0], 0, &ss, &sl), TS_ERR_PROTO);
    }
}

static void test_u32_errors(void **state)
{
    stun_attr_t a = {STUN_A_LIFETIME, 3, (const uint8_t *)"\0\0\1\0"};
    uint32_t v = 7;

    assert_int_equal(stun_attr_u32(&a, &v), TS_ERR_PROTO);
    a.len = 8;
    assert_int_equal(stun_attr_u32(&a, &v), TS_ERR_PROTO);
    a.len = 4;
    assert_int_equal(stun_attr_u32(&a, &v), TS_OK);
    assert_int_equal(v, 256);
}

static void test_error_codes(void **state)
{
    static const struct {
        int code;
        const char *reason;
    } table[] = {
        {300, "Try Alternate"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {420, "Unknown Attribute"},
        {437, "Allocation Mismatch"},
        {438, "Stale Nonce"},
        {440, "Address Family not Supported"},
        {441, "Wrong Credentials"},
        {442, "Unsupported Transport Protocol"},
        {443, "Peer Address Family Mismatch"},
        {446, "Connection Already Exists"},
        {447, "Connection Timeout or Failure"},
        {486, "Allocation Quota Reached"},
        {487, "Role Conflict"},
        {500, "Server Error"},
        {508, "Insufficient Capacity"},
    };
    uint8_t buf[256];
    const char *reason;
    size_t rlen;
    int code;
    stun_builder_t b;
    stun_msg_t m;

    for (size_t i = 0; i < TS_ARRAY_SIZE(table); i++) {
        assert_string_equal(stun_error_reason(table[i].code), table[i].reason);
        stun_build_init(&b, buf, sizeof(buf), STUN_ALLOCATE | STUN_ERROR, tid0);
        stun_add_error(&b, table[i].code, NULL);
        parse_ok(buf, stun_build_finish(&b), &m);
        assert_int_equal(m.attrs[0].value[2], table[i].code / 100);
        assert_int_equal(m.attrs[0].value[3], table[i].code % 100);
        assert_int_equal(stun_attr_error(&m.attrs[0], &code, &reason, &rlen), TS_OK);
        assert_int_equal(code, table[i].code);
        assert_int_equal(rlen, strlen(table[i].reason));
        assert_memory_equal(reason, table[i].reason, rlen);
    }
    assert_string_equal(stun_error_reason(499), "");
    assert_string_equal(stun_error_reason(-1), "");

    /* A caller's reason, and every code of the range. */
    for (int c = 300; c <= 699; c++) {
        stun_build_init(&b, buf, sizeof(buf), STUN_ALLOCATE | STUN_ERROR, tid0);
        stun_add_error(&b, c, "why");
        parse_ok(buf, stun_build_finish(&b), &m);
        assert_int_equal(stun_attr_error(&m.attrs[0], &code, &reason, &rlen), TS_OK);
        assert_int_equal(code, c);
        assert_int_equal(rlen, 3);
        assert_memory_equal(reason, "why", 3);
    }

    /* Malformed ERROR-CODE values. */
    {
        stun_attr_t a = {STUN_A_ERROR_CODE, 4, (const uint8_t *)"\0\0\x04\x01"};
        assert_int_equal(stun_attr_error(&a, &code, &reason, &rlen), TS_OK);
        assert_int_equal(code, 401);
        assert_int_equal(rlen, 0);
        a.len = 3;
        assert_int_equal(stun_attr_error(&a, &code, &reason, &rlen), TS_ERR_PROTO);
        a.len = 4;
        a.value = (const uint8_t *)"\0\0\x02\x00"; /* class 2 */
        assert_int_equal(stun_attr_error(&a, &code, &reason, &rlen), TS_ERR_PROTO);
        a.value = (const uint8_t *)"\0\0\x07\x00"; /* class 7 */
        assert_int_equal(stun_attr_error(&a, &code, &reason, &rlen), TS_ERR_PROTO);
        a.value = (const uint8_t *)"\0\0\x04\x64"; /* number 100 */
        assert_int_equal(stun_attr_error(&a, &code, &reason, &rlen), TS_ERR_PROTO);
        a.value = (const uint8_t *)"\xff\xff\xfc\x14"; /* reserved bits set: class 4, 20 */
        assert_int_equal(stun_attr_error(&a, &code, &reason, &rlen), TS_OK);
        assert_int_equal(code, 420);
    }
}

/* ------------------------------------------------------------ demultiplex -- */

static void test_is_message(void **state)
{
    uint8_t b[MAXMSG];
    size_t n = load_vector("sample_request.hex", b, sizeof(b));

    assert_true(stun_is_message(b, n));
    assert_true(stun_is_message(b, 20)); /* the header is enough */
    for (size_t i = 0; i < 20; i++)
        assert_false(stun_is_message(b, i));
    for (unsigned first = 0x40; first < 0x100; first += 0x10) {
        b[0] = (uint8_t)first;
        assert_false(stun_is_message(b, n));
    }
    b[0] = 0;
    b[3] = 0x59;
    assert_false(stun_is_message(b, n));
    b[3] = 0x58;
    b[4] = 0x20;
    assert_false(stun_is_message(b, n));
}

/* ----------------------------------------------------------- stream framing -- */

typedef struct {
    uint8_t bytes[4096];
    size_t len;
    size_t ends[16]; /* end offset of each frame */
    size_t nframes;
} stream_t;

static void stream_add(stream_t *s, const uint8_t *p, size_t n)
{
    memcpy(s->bytes + s->len, p, n);
    s->len += n;
    s->ends[s->nframes++] = s->len;
}

static void make_stream(stream_t *s)
{
    uint8_t buf[512];
    struct sockaddr_storage peer;
    stun_builder_t b;
    size_t n;

    memset(s, 0, sizeof(*s));
    sa_v4(&peer, "198.51.100.1", 5000);
    /* A Binding request with FINGERPRINT. */
    stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, tid0);
    stun_add_fingerprint(&b);
    stream_add(s, buf, stun_build_finish(&b));
    /* ChannelData of 5 bytes, padded to 8 over a stream. */
    stream_add(s, (const uint8_t *)"\x40\x00\x00\x05hello\0\0\0", 12);
    /* ChannelData of 0 and of 4 bytes: no padding. */
    stream_add(s, (const uint8_t *)"\x4f\xff\x00\x00", 4);
    stream_add(s, (const uint8_t *)"\x40\x01\x00\x04ping", 8);
    /* An RFC 3489 Binding request (no cookie). */
    stream_add(s,
               (const uint8_t *)"\x00\x01\x00\x00"
                                "abcdefghijklmnop",
               20);
    /* A Send indication with DATA. */
    stun_build_init(&b, buf, sizeof(buf), STUN_SEND | STUN_INDICATION, tid0);
    stun_add_addr(&b, STUN_A_XOR_PEER_ADDRESS, (struct sockaddr *)&peer, 1);
    stun_add_attr(&b, STUN_A_DATA, "0123456789", 10);
    n = stun_build_finish(&b);
    stream_add(s, buf, n);
    /* A reserved channel number still frames (the TURN engine drops it). */
    stream_add(s, (const uint8_t *)"\x7f\xff\x00\x01x\0\0\0", 8);
}

/* A reader that takes every whole frame out of what it has buffered. */
static void drain(const stream_t *s, size_t *have_start, size_t have_end, size_t *nframes)
{
    for (;;) {
        long n = stun_stream_frame_len(s->bytes + *have_start, have_end - *have_start);
        assert_true(n >= 0);
        if (n == 0)
            return;
        assert_true(*nframes < s->nframes);
        assert_int_equal(*have_start + (size_t)n, s->ends[*nframes]);
        (*nframes)++;
        *have_start += (size_t)n;
    }
}

static void test_stream_framing_every_split(void **state)
{
    stream_t s;

    make_stream(&s);
    /* Two reads, split at every byte. */
    for (size_t split = 0; split <= s.len; split++) {
        size_t start = 0, nframes = 0;
        drain(&s, &start, split, &nframes);
        drain(&s, &start, s.len, &nframes);
        assert_int_equal(nframes, s.nframes);
        assert_int_equal(start, s.len);
    }
    /* Byte by byte. */
    {
        size_t start = 0, nframes = 0;
        for (size_t have = 0; have <= s.len; have++)
            drain(&s, &start, have, &nframes);
        assert_int_equal(nframes, s.nframes);
    }
    /* Each STUN frame parses as the framing cut it. */
    {
        size_t start = 0;
        for (size_t i = 0; i < s.nframes; i++) {
            stun_msg_t m;
            if (s.bytes[start] < 0x40)
                parse_ok(s.bytes + start, s.ends[i] - start, &m);
            start = s.ends[i];
        }
    }
}

static void test_stream_framing_refusals(void **state)
{
    uint8_t b[64] = {0};

    assert_int_equal(stun_stream_frame_len(b, 0), 0);
    for (unsigned first = 0x80; first <= 0xff; first++) {
        b[0] = (uint8_t)first;
        assert_int_equal(stun_stream_frame_len(b, 1), -1);
        assert_int_equal(stun_stream_frame_len(b, 20), -1);
    }
    /* STUN with a length that is no multiple of 4: known at 4 bytes. */
    memcpy(b, "\x00\x01\x00\x05", 4);
    assert_int_equal(stun_stream_frame_len(b, 3), 0);
    assert_int_equal(stun_stream_frame_len(b, 4), -1);
    /* ChannelData of any length frames, padded. */
    for (unsigned l = 0; l < 9; l++) {
        memset(b, 0, sizeof(b));
        wr16(b, 0x4000);
        wr16(b + 2, l);
        long want = (long)(4 + ((l + 3) & ~3u));
        for (size_t have = 0; have < (size_t)want; have++)
            assert_int_equal(stun_stream_frame_len(b, have), 0);
        assert_int_equal(stun_stream_frame_len(b, (size_t)want), want);
        assert_int_equal(stun_stream_frame_len(b, sizeof(b)), want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc5769_sample_request),
        cmocka_unit_test(test_rfc5769_ipv4_response),
        cmocka_unit_test(test_rfc5769_ipv6_response),
        cmocka_unit_test(test_rfc5769_long_term),
        cmocka_unit_test(test_rfc5769_bit_flips),
        cmocka_unit_test(test_rfc5769_reencode),
        cmocka_unit_test(test_every_attribute_round_trip),
        cmocka_unit_test(test_method_and_class_bits),
        cmocka_unit_test(test_find_first_and_missing),
        cmocka_unit_test(test_malformed_header),
        cmocka_unit_test(test_malformed_attributes),
        cmocka_unit_test(test_fingerprint_rules),
        cmocka_unit_test(test_integrity_sizes),
        cmocka_unit_test(test_attributes_after_integrity),
        cmocka_unit_test(test_too_many_attributes),
        cmocka_unit_test(test_unknown_attributes),
        cmocka_unit_test(test_rfc3489),
        cmocka_unit_test(test_integrity_sha256_python),
        cmocka_unit_test(test_integrity_sha256_truncated),
        cmocka_unit_test(test_integrity_empty_key),
        cmocka_unit_test(test_integrity_long_key),
        cmocka_unit_test(test_integrity_threads),
        cmocka_unit_test(test_long_term_keys),
        cmocka_unit_test(test_builder_padding_zero),
        cmocka_unit_test(test_builder_overflow),
        cmocka_unit_test(test_builder_length_limit),
        cmocka_unit_test(test_builder_misuse_is_overflow),
        cmocka_unit_test(test_addr_mapped_v4_in_v6),
        cmocka_unit_test(test_addr_errors),
        cmocka_unit_test(test_u32_errors),
        cmocka_unit_test(test_error_codes),
        cmocka_unit_test(test_is_message),
        cmocka_unit_test(test_stream_framing_every_split),
        cmocka_unit_test(test_stream_framing_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
