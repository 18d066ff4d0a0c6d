/*
 * fuzz_stun_msg.c — the STUN message codec on arbitrary bytes. Checked,
 * beyond the absence of crashes and out-of-bounds reads (ASan):
 *   - a parsed message obeys msg.h: every attribute slice lies inside the
 *     buffer, 4-aligned behind its header; the integrity and fingerprint
 *     indexes point at the right attributes and nothing counted follows
 *     them but what RFC 8489 14.5/14.6 allow; the unknown list holds exactly
 *     the unknown comprehension-required types;
 *   - rebuilding the same attributes with the builder (FINGERPRINT
 *     recomputed) and parsing again gives the same attribute list, and the
 *     input's own bytes when it padded with zeros and had nothing ignored;
 *   - rebuilt with MESSAGE-INTEGRITY, -SHA256 and FINGERPRINT under a key,
 *     the message verifies with that key and not with another;
 *   - what the accessors decode (addresses, 32-bit values, ERROR-CODE)
 *     encodes back to the same value;
 *   - stream framing agrees with parse: a parsed message followed by more
 *     bytes frames at its length, shorter prefixes ask for more, and the
 *     framing of any bytes never changes its mind as bytes arrive.
 */
#include "core/common.h"
#include "stun/msg.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define BIG (STUN_HEADER_LEN + 0x10000 + 256)

static uint8_t out[BIG];
static uint8_t stream[2 * BIG];

/* The comprehension-required types the codec knows, written out again. */
static int known_required(uint16_t t)
{
    static const uint16_t known[] = {0x0001, 0x0006, 0x0008, 0x0009, 0x000a, 0x000c,
                                     0x000d, 0x0012, 0x0013, 0x0014, 0x0015, 0x0016,
                                     0x0017, 0x0018, 0x0019, 0x001a, 0x001c, 0x001d,
                                     0x001e, 0x0020, 0x0022, 0x0024, 0x0025, 0x002a};
    for (size_t i = 0; i < TS_ARRAY_SIZE(known); i++) {
        if (known[i] == t)
            return 1;
    }
    return 0;
}

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void check_struct(const uint8_t *d, size_t n, const stun_msg_t *m)
{
    unsigned type = m->type;

    CHECK(m->buf == d && m->len == n);
    CHECK(type == rd16(d) && (type & 0xc000) == 0);
    CHECK(m->cls == (type & 0x0110));
    CHECK(type ==
          ((m->method & 0xfu) | (m->method & 0x70u) << 1 | (m->method & 0xf80u) << 2 | m->cls));
    CHECK(memcmp(m->tid, d + 8, 12) == 0);
    CHECK(m->rfc3489 == (rd16(d + 4) != 0x2112 || rd16(d + 6) != 0xa442));
    if (m->rfc3489)
        CHECK(type == 0x0001);
    CHECK(m->nattrs <= STUN_MAX_ATTRS && m->nunknown <= STUN_MAX_UNKNOWN);

    for (int i = 0; i < m->nattrs; i++) {
        const stun_attr_t *a = &m->attrs[i];
        size_t off = (size_t)(a->value - d);

        CHECK(a->value >= d + 24 && off % 4 == 0 && off + a->len <= n);
        CHECK(rd16(d + off - 4) == a->type && rd16(d + off - 2) == a->len);
        if (i > 0)
            CHECK(a->value > m->attrs[i - 1].value);
        if (a->type == STUN_A_MESSAGE_INTEGRITY)
            CHECK(i == m->integrity);
        if (a->type == STUN_A_MESSAGE_INTEGRITY_SHA256)
            CHECK(i == m->integrity_sha256);
        if (a->type == STUN_A_FINGERPRINT)
            CHECK(i == m->fingerprint);
        /* Only MI-SHA256 and FINGERPRINT count after MI, only FINGERPRINT after MI-SHA256. */
        if (m->integrity >= 0 && i > m->integrity)
            CHECK(a->type == STUN_A_MESSAGE_INTEGRITY_SHA256 || a->type == STUN_A_FINGERPRINT);
        if (m->integrity_sha256 >= 0 && i > m->integrity_sha256)
            CHECK(a->type == STUN_A_FINGERPRINT);
        if (a->type < 0x8000 && !known_required(a->type)) {
            int listed = 0;
            for (int u = 0; u < m->nunknown; u++)
                listed |= m->unknown[u] == a->type;
            CHECK(listed || m->nunknown == STUN_MAX_UNKNOWN);
        }
    }
    if (m->integrity >= 0)
        CHECK(m->integrity < m->nattrs && m->attrs[m->integrity].len == 20);
    if (m->integrity_sha256 >= 0) {
        unsigned l = m->attrs[m->integrity_sha256].len;
        CHECK(m->integrity_sha256 < m->nattrs && l >= 16 && l <= 32 && l % 4 == 0);
    }
    if (m->fingerprint >= 0) {
        const stun_attr_t *fp = &m->attrs[m->fingerprint];
        CHECK(m->fingerprint == m->nattrs - 1 && fp->len == 4 && fp->value + 4 == d + n);
    }
    for (int u = 0; u < m->nunknown; u++) {
        CHECK(m->unknown[u] < 0x8000 && !known_required(m->unknown[u]));
        CHECK(stun_msg_find(m, m->unknown[u]) != NULL);
        for (int v = 0; v < u; v++)
            CHECK(m->unknown[v] != m->unknown[u]);
    }
    if (!m->rfc3489)
        CHECK(stun_is_message(d, n));
}

static void same_attrs(const stun_msg_t *a, const stun_msg_t *b)
{
    CHECK(a->type == b->type && a->rfc3489 == b->rfc3489 && memcmp(a->tid, b->tid, 12) == 0);
    CHECK(a->nattrs == b->nattrs);
    for (int i = 0; i < a->nattrs; i++) {
        CHECK(a->attrs[i].type == b->attrs[i].type && a->attrs[i].len == b->attrs[i].len);
        /* FINGERPRINT is recomputed: it covers padding and ignored attributes. */
        if (i != a->fingerprint)
            CHECK(memcmp(a->attrs[i].value, b->attrs[i].value, a->attrs[i].len) == 0);
    }
    CHECK(a->integrity == b->integrity && a->integrity_sha256 == b->integrity_sha256 &&
          a->fingerprint == b->fingerprint);
    CHECK(a->nunknown == b->nunknown &&
          memcmp(a->unknown, b->unknown, a->nunknown * sizeof(a->unknown[0])) == 0);
}

static void check_rebuild(const uint8_t *d, size_t n, const stun_msg_t *m)
{
    stun_builder_t b;
    stun_msg_t r;
    size_t rn, body = 0;
    int zero_pad = 1;

    memset(out, 0xdb, n); /* the builder must overwrite every byte it counts */
    stun_build_reply(&b, out, sizeof(out), m->type, m);
    for (int i = 0; i < m->nattrs; i++) {
        const stun_attr_t *a = &m->attrs[i];
        if (i == m->fingerprint)
            stun_add_fingerprint(&b);
        else
            stun_add_attr(&b, a->type, a->value, a->len);
        body += 4 + ((a->len + 3u) & ~3u);
        for (unsigned j = a->len; j % 4; j++)
            zero_pad &= a->value[j] == 0;
    }
    rn = stun_build_finish(&b);
    CHECK(rn == 20 + body && rn <= n);
    CHECK(stun_msg_parse(out, rn, &r) == TS_OK);
    same_attrs(m, &r);
    for (int i = 0; i < r.nattrs; i++) {
        for (unsigned j = r.attrs[i].len; j % 4; j++)
            CHECK(r.attrs[i].value[j] == 0);
    }
    if (zero_pad && rn == n)
        CHECK(memcmp(out, d, n) == 0);
}

static void check_integrity_rebuild(const stun_msg_t *m)
{
    uint8_t key[16], other[16];
    const size_t keylen = sizeof(key);
    stun_builder_t b;
    stun_msg_t r;
    size_t rn, body = 24 + 36 + 8;
    int kept = 0;

    /* The key: the message's first bytes (len >= 20). */
    memcpy(key, m->buf, keylen);
    memcpy(other, key, keylen);
    other[keylen - 1] ^= 1;
    stun_build_reply(&b, out, sizeof(out), m->type, m);
    for (int i = 0; i < m->nattrs; i++) {
        if (i == m->integrity || i == m->integrity_sha256 || i == m->fingerprint)
            continue;
        stun_add_attr(&b, m->attrs[i].type, m->attrs[i].value, m->attrs[i].len);
        body += 4 + ((m->attrs[i].len + 3u) & ~3u);
        kept++;
    }
    stun_add_integrity(&b, key, keylen);
    stun_add_integrity_sha256(&b, key, keylen);
    stun_add_fingerprint(&b);
    rn = stun_build_finish(&b);
    CHECK((rn == 0) == (body > 0xfffc)); /* only the 16-bit length can overflow */
    if (rn == 0)
        return;
    if (kept + 3 > STUN_MAX_ATTRS) {
        CHECK(stun_msg_parse(out, rn, &r) == TS_ERR_PROTO);
        return;
    }
    CHECK(stun_msg_parse(out, rn, &r) == TS_OK);
    CHECK(r.nattrs == kept + 3 && r.integrity == kept && r.integrity_sha256 == kept + 1 &&
          r.fingerprint == kept + 2);
    CHECK(stun_check_integrity(&r, key, keylen) == 1);
    CHECK(stun_check_integrity_sha256(&r, key, keylen) == 1);
    CHECK(stun_check_integrity(&r, other, keylen) == 0);
    CHECK(stun_check_integrity_sha256(&r, other, keylen) == 0);
}

static void same_sockaddr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    CHECK(a->ss_family == b->ss_family);
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        CHECK(x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr);
    } else {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        CHECK(x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0);
    }
}

static void check_accessors(const stun_msg_t *m)
{
    uint8_t buf[128];

    for (int i = 0; i < m->nattrs; i++) {
        const stun_attr_t *a = &m->attrs[i];
        struct sockaddr_storage ss, back;
        socklen_t sl, bl;
        const char *reason;
        size_t rlen;
        uint32_t v;
        int code;

        for (int xored = 0; xored <= 1; xored++) {
            stun_builder_t b;
            stun_msg_t r;

            int valid = (a->len == 8 && a->value[1] == 1) || (a->len == 20 && a->value[1] == 2);

            if (stun_attr_addr(m, a, xored, &ss, &sl) != TS_OK) {
                CHECK(!valid);
                continue;
            }
            CHECK(valid);
            CHECK(a->len == (ss.ss_family == AF_INET ? 8 : 20));
            CHECK(sl == (ss.ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                                 : sizeof(struct sockaddr_in6)));
            stun_build_reply(&b, buf, sizeof(buf), m->type, m);
            /* Under a neutral type: MI or FINGERPRINT would have size rules. */
            stun_add_addr(&b, STUN_A_XOR_PEER_ADDRESS, (struct sockaddr *)&ss, xored);
            CHECK(stun_msg_parse(buf, stun_build_finish(&b), &r) == TS_OK);
            CHECK(stun_attr_addr(&r, &r.attrs[0], xored, &back, &bl) == TS_OK);
            if (ss.ss_family == AF_INET6 &&
                IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&ss)->sin6_addr)) {
                CHECK(back.ss_family == AF_INET); /* written as the IPv4 address it is */
                continue;
            }
            same_sockaddr(&ss, &back);
            CHECK(memcmp(r.attrs[0].value + 1, a->value + 1, a->len - 1u) == 0);
        }
        if (stun_attr_u32(a, &v) == TS_OK)
            CHECK(a->len == 4 && v == ((uint32_t)rd16(a->value) << 16 | rd16(a->value + 2)));
        else
            CHECK(a->len != 4);
        if (stun_attr_error(a, &code, &reason, &rlen) != TS_OK) {
            CHECK(a->len < 4 || (a->value[2] & 7) < 3 || (a->value[2] & 7) > 6 || a->value[3] > 99);
        } else {
            CHECK(code == (a->value[2] & 7) * 100 + a->value[3]);
            CHECK(code >= 300 && code <= 699);
            CHECK(reason == (const char *)a->value + 4 && rlen == a->len - 4u);
            if (rlen < 100 && memchr(reason, 0, rlen) == NULL) {
                char copy[100];
                stun_builder_t b;
                stun_msg_t r;
                const char *r2;
                size_t r2len;
                int code2;

                memcpy(copy, reason, rlen);
                copy[rlen] = '\0';
                stun_build_init(&b, buf, sizeof(buf), STUN_BINDING | STUN_ERROR, m->tid);
                stun_add_error(&b, code, copy);
                CHECK(stun_msg_parse(buf, stun_build_finish(&b), &r) == TS_OK);
                CHECK(stun_attr_error(&r.attrs[0], &code2, &r2, &r2len) == TS_OK);
                CHECK(code2 == code && r2len == rlen && memcmp(r2, reason, rlen) == 0);
            }
        }
    }
}

/* Framing of any bytes: a verdict, once given, holds as more bytes come. */
static void check_framing_any(const uint8_t *d, size_t n)
{
    long k = stun_stream_frame_len(d, n);
    static const size_t probes[] = {0, 1, 2, 3, 4, 5, 19, 20, 21};

    CHECK(k >= -1 && k <= (long)n);
    for (size_t i = 0; i < TS_ARRAY_SIZE(probes) && probes[i] < n; i++) {
        long p = stun_stream_frame_len(d, probes[i]);
        if (k == -1)
            CHECK(p == -1 || p == 0);
        else if (k == 0 || (long)probes[i] < k)
            CHECK(p == 0);
        else
            CHECK(p == k);
        if (p == -1)
            CHECK(k == -1);
    }
    if (k > 0) {
        CHECK(stun_stream_frame_len(d, (size_t)k) == k);
        CHECK(stun_stream_frame_len(d, (size_t)k - 1) == 0);
        if (d[0] >= 0x40)
            CHECK(k == (long)(4 + ((rd16(d + 2) + 3u) & ~3u)));
        else
            CHECK(k == 20 + (long)rd16(d + 2));
    }
}

/* A parsed message at the head of a stream frames at exactly its length,
 * and so does the next frame after it. */
static void check_framing_parsed(const uint8_t *d, size_t n)
{
    size_t tail = n < 64 ? n : 64;

    memcpy(stream, d, n);
    memcpy(stream + n, d, n);
    CHECK(stun_stream_frame_len(stream, n) == (long)n);
    CHECK(stun_stream_frame_len(stream, n - 1) == 0);
    CHECK(stun_stream_frame_len(stream, n + tail) == (long)n);
    CHECK(stun_stream_frame_len(stream + n, n) == (long)n);
    /* ChannelData in between, of the message's length mod 8, unpadded. */
    {
        size_t cl = n % 8, framed = 4 + ((cl + 3) & ~(size_t)3);
        stream[n] = 0x40;
        stream[n + 1] = 0x00;
        stream[n + 2] = 0;
        stream[n + 3] = (uint8_t)cl;
        CHECK(stun_stream_frame_len(stream + n, framed) == (long)framed);
        CHECK(stun_stream_frame_len(stream + n, framed - 1) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    stun_msg_t m;

    check_framing_any(data, size);
    if (stun_msg_parse(data, size, &m) != TS_OK)
        return 0;
    check_struct(data, size, &m);
    check_rebuild(data, size, &m);
    check_integrity_rebuild(&m);
    check_accessors(&m);
    check_framing_parsed(data, size);
    return 0;
}
