/*
 * msg.c — the STUN message codec (RFC 8489 and the TURN attributes of
 * RFC 8656, RFC 6062, RFC 6156). The contract is in msg.h.
 *
 * The parser makes one pass over the attributes and stores slices of the
 * caller's buffer: nothing is copied and nothing is allocated. It judges
 * only the framing (header, TLV lengths, the place and size of the integrity
 * attributes, FINGERPRINT); attribute values are judged by the accessor the
 * caller uses, so a Binding request costs the header checks and one loop.
 *
 * The builder writes straight into the caller's buffer and keeps the header's
 * length field current after every attribute, which is exactly what
 * MESSAGE-INTEGRITY needs: its HMAC covers the header with the length
 * already counting the integrity attribute itself.
 */
#include "stun/msg.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <zlib.h>

#include "core/common.h"

/* The largest length field: 16 bits, and a multiple of 4. */
#define STUN_MAX_BODY 0xfffcu

#define MI_LEN          20
#define MI256_MIN_LEN   16
#define MI256_MAX_LEN   32
#define ATTR_HDR        4
#define COOKIE_PORT_XOR ((uint16_t)(STUN_MAGIC_COOKIE >> 16))

static inline uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline size_t pad4(size_t n)
{
    return (n + 3) & ~(size_t)3;
}

static void stun_fatal(const char *what)
{
    fprintf(stderr, "tsunagi: stun: %s failed (OpenSSL)\n", what);
    abort();
}

/* ------------------------------------------------------------ demultiplexing -- */

int stun_is_message(const uint8_t *buf, size_t len)
{
    return len >= STUN_HEADER_LEN && buf[0] < 0x40 && (buf[3] & 3) == 0 &&
           get32(buf + 4) == STUN_MAGIC_COOKIE;
}

/*
 * Over a stream a frame is only returned once all of it is buffered, so the
 * caller can hand buf[0..n) to the parser as it is. A STUN header is taken
 * without the magic cookie too: RFC 3489 clients have none, and the parser
 * decides what such a message may be.
 */
long stun_stream_frame_len(const uint8_t *buf, size_t len)
{
    size_t need;

    if (len == 0)
        return 0;
    if (buf[0] >= 0x80)
        return -1;
    if (len < 4)
        return 0;
    if (buf[0] >= 0x40) {
        /* ChannelData: padded to 4 over streams (RFC 8656 12.5). */
        need = ATTR_HDR + pad4(get16(buf + 2));
    } else {
        if (buf[3] & 3)
            return -1;
        need = STUN_HEADER_LEN + (size_t)get16(buf + 2);
    }
    return len >= need ? (long)need : 0;
}

/* ------------------------------------------------------------------- parsing -- */

#define BIT(t) ((uint64_t)1 << (t))

/* The comprehension-required attributes (all below 0x40) the codec knows. */
static const uint64_t known_required =
    BIT(STUN_A_MAPPED_ADDRESS) | BIT(STUN_A_USERNAME) | BIT(STUN_A_MESSAGE_INTEGRITY) |
    BIT(STUN_A_ERROR_CODE) | BIT(STUN_A_UNKNOWN_ATTRIBUTES) | BIT(STUN_A_CHANNEL_NUMBER) |
    BIT(STUN_A_LIFETIME) | BIT(STUN_A_XOR_PEER_ADDRESS) | BIT(STUN_A_DATA) | BIT(STUN_A_REALM) |
    BIT(STUN_A_NONCE) | BIT(STUN_A_XOR_RELAYED_ADDRESS) | BIT(STUN_A_REQUESTED_ADDRESS_FAMILY) |
    BIT(STUN_A_EVEN_PORT) | BIT(STUN_A_REQUESTED_TRANSPORT) | BIT(STUN_A_DONT_FRAGMENT) |
    BIT(STUN_A_MESSAGE_INTEGRITY_SHA256) | BIT(STUN_A_PASSWORD_ALGORITHM) | BIT(STUN_A_USERHASH) |
    BIT(STUN_A_XOR_MAPPED_ADDRESS) | BIT(STUN_A_RESERVATION_TOKEN) | BIT(STUN_A_PRIORITY) |
    BIT(STUN_A_USE_CANDIDATE) | BIT(STUN_A_CONNECTION_ID);

static inline int unknown_required(uint16_t type)
{
    return type < 0x8000 && (type >= 64 || !(known_required & BIT(type)));
}

static void note_unknown(stun_msg_t *m, uint16_t type)
{
    for (unsigned i = 0; i < m->nunknown; i++) {
        if (m->unknown[i] == type)
            return;
    }
    /* Past the cap the 420 lists the first ones; the request fails anyway. */
    if (m->nunknown < STUN_MAX_UNKNOWN)
        m->unknown[m->nunknown++] = type;
}

static inline int store(stun_msg_t *m, uint16_t type, uint16_t len, const uint8_t *value)
{
    stun_attr_t *a;

    if (m->nattrs == STUN_MAX_ATTRS)
        return -1;
    a = &m->attrs[m->nattrs];
    a->type = type;
    a->len = len;
    a->value = value;
    return m->nattrs++;
}

/* What may follow: everything, only MESSAGE-INTEGRITY-SHA256 and FINGERPRINT,
 * only FINGERPRINT (RFC 8489 14.5, 14.6). Ignored attributes are skipped,
 * not stored. */
enum { SEEN_NONE, SEEN_MI, SEEN_MI256 };

int stun_msg_parse(const uint8_t *buf, size_t len, stun_msg_t *m)
{
    unsigned seen = SEEN_NONE;
    size_t off, next;
    uint16_t type, alen;
    int idx;

    if (len < STUN_HEADER_LEN || (buf[0] & 0xc0) || (len & 3) ||
        get16(buf + 2) != len - STUN_HEADER_LEN)
        return TS_ERR_PROTO;
    type = get16(buf);
    m->buf = buf;
    m->len = len;
    m->type = type;
    m->method = (uint16_t)((type & 0x000f) | ((type >> 1) & 0x0070) | ((type >> 2) & 0x0f80));
    m->cls = type & 0x0110;
    m->rfc3489 = get32(buf + 4) != STUN_MAGIC_COOKIE;
    if (m->rfc3489 && type != (STUN_BINDING | STUN_REQUEST))
        return TS_ERR_PROTO;
    memcpy(m->tid, buf + 8, sizeof(m->tid));
    m->nattrs = 0;
    m->integrity = -1;
    m->integrity_sha256 = -1;
    m->fingerprint = -1;
    m->nunknown = 0;

    /* len - off is a multiple of 4 and at least 4 in the loop, so an
     * attribute header always fits, and a value that fits fits padded. */
    for (off = STUN_HEADER_LEN; off < len; off = next) {
        type = get16(buf + off);
        alen = get16(buf + off + 2);
        if (alen > len - off - ATTR_HDR)
            return TS_ERR_PROTO;
        next = off + ATTR_HDR + pad4(alen);

        if (type == STUN_A_FINGERPRINT) {
            if (alen != 4 || next != len)
                return TS_ERR_PROTO;
            if (((uint32_t)crc32(0, buf, (uInt)off) ^ STUN_FINGERPRINT_XOR) !=
                get32(buf + off + ATTR_HDR))
                return TS_ERR_PROTO;
            if ((idx = store(m, type, alen, buf + off + ATTR_HDR)) < 0)
                return TS_ERR_PROTO;
            m->fingerprint = (int16_t)idx;
            continue;
        }
        if (seen == SEEN_MI256 || (seen == SEEN_MI && type != STUN_A_MESSAGE_INTEGRITY_SHA256))
            continue;
        if ((idx = store(m, type, alen, buf + off + ATTR_HDR)) < 0)
            return TS_ERR_PROTO;
        if (type == STUN_A_MESSAGE_INTEGRITY) {
            if (alen != MI_LEN)
                return TS_ERR_PROTO;
            m->integrity = (int16_t)idx;
            seen = SEEN_MI;
        } else if (type == STUN_A_MESSAGE_INTEGRITY_SHA256) {
            if (alen < MI256_MIN_LEN || alen > MI256_MAX_LEN || (alen & 3))
                return TS_ERR_PROTO;
            m->integrity_sha256 = (int16_t)idx;
            seen = SEEN_MI256;
        } else if (unknown_required(type)) {
            note_unknown(m, type);
        }
    }
    return TS_OK;
}

const stun_attr_t *stun_msg_find(const stun_msg_t *m, uint16_t type)
{
    for (unsigned i = 0; i < m->nattrs; i++) {
        if (m->attrs[i].type == type)
            return &m->attrs[i];
    }
    return NULL;
}

/* ------------------------------------------------------ attribute values -- */

/* The XOR mask of an address: the cookie, then (IPv6) the transaction id. */
static void addr_mask(uint8_t mask[16], const uint8_t tid[12])
{
    put32(mask, STUN_MAGIC_COOKIE);
    memcpy(mask + 4, tid, 12);
}

int stun_attr_addr(const stun_msg_t *m, const stun_attr_t *a, int xored,
                   struct sockaddr_storage *sa, socklen_t *salen)
{
    const uint8_t *v = a->value;
    uint8_t mask[16];
    uint16_t port;

    if (a->len < 4)
        return TS_ERR_PROTO;
    port = get16(v + 2);
    if (xored)
        port ^= COOKIE_PORT_XOR;
    if (v[1] == 1 && a->len == 8) {
        struct sockaddr_in *sin = (struct sockaddr_in *)sa;
        uint32_t ip = get32(v + 4);

        if (xored)
            ip ^= STUN_MAGIC_COOKIE;
        memset(sin, 0, sizeof(*sin));
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        sin->sin_addr.s_addr = htonl(ip);
        *salen = sizeof(*sin);
        return TS_OK;
    }
    if (v[1] == 2 && a->len == 20) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)sa;

        memset(sin6, 0, sizeof(*sin6));
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        memcpy(sin6->sin6_addr.s6_addr, v + 4, 16);
        if (xored) {
            addr_mask(mask, m->tid);
            for (int i = 0; i < 16; i++)
                sin6->sin6_addr.s6_addr[i] ^= mask[i];
        }
        *salen = sizeof(*sin6);
        return TS_OK;
    }
    return TS_ERR_PROTO;
}

int stun_attr_u32(const stun_attr_t *a, uint32_t *v)
{
    if (a->len != 4)
        return TS_ERR_PROTO;
    *v = get32(a->value);
    return TS_OK;
}

int stun_attr_error(const stun_attr_t *a, int *code, const char **reason, size_t *reason_len)
{
    unsigned cls, number;

    if (a->len < 4)
        return TS_ERR_PROTO;
    cls = a->value[2] & 7;
    number = a->value[3];
    if (cls < 3 || cls > 6 || number > 99)
        return TS_ERR_PROTO;
    *code = (int)(cls * 100 + number);
    *reason = (const char *)a->value + 4;
    *reason_len = a->len - 4u;
    return TS_OK;
}

/* ----------------------------------------------------------------- integrity -- */

/*
 * HMAC contexts are kept per thread and re-keyed per message: fetching the
 * HMAC implementation, as the one-shot HMAC() does on every call, costs more
 * than the hashing of a STUN message. The per-thread state is freed when the
 * thread exits.
 */
enum { MAC_SHA1, MAC_SHA256, MAC_KINDS };

typedef struct {
    EVP_MAC_CTX *ctx[MAC_KINDS];
} mac_cache_t;

static EVP_MAC *hmac_alg;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;
static pthread_key_t hmac_key;
static _Thread_local mac_cache_t *mac_cache;

static void mac_cache_free(void *p)
{
    mac_cache_t *c = p;

    for (int k = 0; k < MAC_KINDS; k++)
        EVP_MAC_CTX_free(c->ctx[k]);
    free(c);
    mac_cache = NULL;
}

static void hmac_setup(void)
{
    hmac_alg = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    if (hmac_alg == NULL || pthread_key_create(&hmac_key, mac_cache_free) != 0)
        stun_fatal("HMAC set-up");
}

static EVP_MAC_CTX *mac_ctx(int kind)
{
    static const char *const digests[MAC_KINDS] = {"SHA1", "SHA256"};
    mac_cache_t *c = mac_cache;

    if (ts_likely(c != NULL))
        return c->ctx[kind];
    pthread_once(&hmac_once, hmac_setup);
    c = ts_calloc(1, sizeof(*c));
    for (int k = 0; k < MAC_KINDS; k++) {
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)digests[k], 0),
            OSSL_PARAM_construct_end(),
        };
        c->ctx[k] = EVP_MAC_CTX_new(hmac_alg);
        if (c->ctx[k] == NULL || !EVP_MAC_CTX_set_params(c->ctx[k], params))
            stun_fatal("HMAC context");
    }
    if (pthread_setspecific(hmac_key, c) != 0)
        stun_fatal("HMAC context");
    mac_cache = c;
    return c->ctx[kind];
}

/*
 * The HMAC of buf[0..off) whose header length field reads length_field
 * instead (RFC 8489 14.5: the length counts up to the end of the integrity
 * attribute, whatever follows it). out must hold the full HMAC.
 */
static int msg_hmac(int kind, const uint8_t *key, size_t keylen, const uint8_t *buf, size_t off,
                    size_t length_field, uint8_t *out, size_t outcap)
{
    static const uint8_t no_key[1];
    EVP_MAC_CTX *ctx = mac_ctx(kind);
    uint8_t hdr[STUN_HEADER_LEN];
    size_t n;

    memcpy(hdr, buf, STUN_HEADER_LEN);
    put16(hdr + 2, (uint16_t)length_field);
    /* A NULL key would mean "keep the previous key" to OpenSSL. */
    if (!EVP_MAC_init(ctx, key != NULL ? key : no_key, keylen, NULL) ||
        !EVP_MAC_update(ctx, hdr, STUN_HEADER_LEN) ||
        !EVP_MAC_update(ctx, buf + STUN_HEADER_LEN, off - STUN_HEADER_LEN) ||
        !EVP_MAC_final(ctx, out, &n, outcap))
        return TS_ERR;
    return TS_OK;
}

static int check_mac(const stun_msg_t *m, int index, int kind, const uint8_t *key, size_t keylen)
{
    const stun_attr_t *a;
    uint8_t mac[EVP_MAX_MD_SIZE];
    size_t off;

    if (index < 0)
        return 0;
    a = &m->attrs[index];
    off = (size_t)(a->value - m->buf) - ATTR_HDR;
    if (msg_hmac(kind, key, keylen, m->buf, off, off + ATTR_HDR + a->len - STUN_HEADER_LEN, mac,
                 sizeof(mac)) != TS_OK)
        return 0;
    /* MESSAGE-INTEGRITY-SHA256 may carry a truncated HMAC: compare its length. */
    return CRYPTO_memcmp(mac, a->value, a->len) == 0;
}

int stun_check_integrity(const stun_msg_t *m, const uint8_t *key, size_t keylen)
{
    return check_mac(m, m->integrity, MAC_SHA1, key, keylen);
}

int stun_check_integrity_sha256(const stun_msg_t *m, const uint8_t *key, size_t keylen)
{
    return check_mac(m, m->integrity_sha256, MAC_SHA256, key, keylen);
}

/* md of "a:b" or "a:b:c" (c != NULL). */
static void digest_joined(const EVP_MD *md, const char *a, size_t alen, const char *b, size_t blen,
                          const char *c, size_t clen, uint8_t *out)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned n;

    if (ctx == NULL || !EVP_DigestInit_ex(ctx, md, NULL) || !EVP_DigestUpdate(ctx, a, alen) ||
        !EVP_DigestUpdate(ctx, ":", 1) || !EVP_DigestUpdate(ctx, b, blen) ||
        (c != NULL && (!EVP_DigestUpdate(ctx, ":", 1) || !EVP_DigestUpdate(ctx, c, clen))) ||
        !EVP_DigestFinal_ex(ctx, out, &n))
        stun_fatal("digest"); /* never a guessable key instead */
    EVP_MD_CTX_free(ctx);
}

void stun_long_term_key_md5(const char *user, size_t ulen, const char *realm, size_t rlen,
                            const char *pass, size_t plen, uint8_t out[16])
{
    digest_joined(EVP_md5(), user, ulen, realm, rlen, pass != NULL ? pass : "", plen, out);
}

void stun_long_term_key_sha256(const char *user, size_t ulen, const char *realm, size_t rlen,
                               const char *pass, size_t plen, uint8_t out[32])
{
    digest_joined(EVP_sha256(), user, ulen, realm, rlen, pass != NULL ? pass : "", plen, out);
}

void stun_userhash(const char *user, size_t ulen, const char *realm, size_t rlen, uint8_t out[32])
{
    digest_joined(EVP_sha256(), user, ulen, realm, rlen, NULL, 0, out);
}

/* ------------------------------------------------------------------ building -- */

void stun_build_init(stun_builder_t *b, uint8_t *buf, size_t cap, uint16_t type,
                     const uint8_t tid[12])
{
    b->buf = buf;
    b->cap = cap;
    b->len = 0;
    b->overflow = 0;
    if (cap < STUN_HEADER_LEN) {
        b->overflow = 1;
        return;
    }
    put16(buf, type);
    put16(buf + 2, 0);
    put32(buf + 4, STUN_MAGIC_COOKIE);
    memcpy(buf + 8, tid, 12);
    b->len = STUN_HEADER_LEN;
}

void stun_build_reply(stun_builder_t *b, uint8_t *buf, size_t cap, uint16_t type,
                      const stun_msg_t *req)
{
    stun_build_init(b, buf, cap, type, req->tid);
    if (!b->overflow && req->rfc3489)
        memcpy(buf + 4, req->buf + 4, 4);
}

/*
 * Room for an attribute of len value bytes, header written and padding
 * zeroed, the message length updated; NULL (and the overflow flag) when it
 * does not fit the buffer or the 16-bit length field.
 */
static uint8_t *attr_reserve(stun_builder_t *b, uint16_t type, size_t len)
{
    size_t total;
    uint8_t *p;

    if (b->overflow)
        return NULL;
    total = ATTR_HDR + pad4(len);
    if (len > 0xffff || total > b->cap - b->len ||
        b->len - STUN_HEADER_LEN + total > STUN_MAX_BODY) {
        b->overflow = 1;
        return NULL;
    }
    p = b->buf + b->len;
    put16(p, type);
    put16(p + 2, (uint16_t)len);
    if (len & 3) /* the value is copied over all but the padding */
        memset(p + total - 4, 0, 4);
    b->len += total;
    put16(b->buf + 2, (uint16_t)(b->len - STUN_HEADER_LEN));
    return p + ATTR_HDR;
}

void stun_add_attr(stun_builder_t *b, uint16_t type, const void *value, size_t len)
{
    uint8_t *v = attr_reserve(b, type, len);

    if (v != NULL && len > 0)
        memcpy(v, value, len);
}

void stun_add_u32(stun_builder_t *b, uint16_t type, uint32_t v)
{
    uint8_t *p = attr_reserve(b, type, 4);

    if (p != NULL)
        put32(p, v);
}

/* An IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4 peer)
 * is written as the IPv4 address it is: the peer knows no other. */
void stun_add_addr(stun_builder_t *b, uint16_t type, const struct sockaddr *sa, int xored)
{
    const uint8_t *ip;
    uint8_t v[20], mask[16];
    uint16_t port;
    size_t n;

    if (b->overflow)
        return;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

        ip = (const uint8_t *)&sin->sin_addr;
        n = 4;
        port = ntohs(sin->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

        ip = sin6->sin6_addr.s6_addr;
        n = 16;
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            ip += 12;
            n = 4;
        }
        port = ntohs(sin6->sin6_port);
    } else {
        b->overflow = 1;
        return;
    }
    v[0] = 0;
    v[1] = n == 4 ? 1 : 2;
    put16(v + 2, xored ? port ^ COOKIE_PORT_XOR : port);
    memcpy(v + 4, ip, n);
    if (xored) {
        addr_mask(mask, b->buf + 8);
        for (size_t i = 0; i < n; i++)
            v[4 + i] ^= mask[i];
    }
    stun_add_attr(b, type, v, 4 + n);
}

void stun_add_error(stun_builder_t *b, int code, const char *reason)
{
    size_t rlen;
    uint8_t *v;

    if (code < 300 || code > 699) {
        b->overflow = 1; /* not an error code: the message is unusable */
        return;
    }
    if (reason == NULL)
        reason = stun_error_reason(code);
    rlen = strlen(reason);
    v = attr_reserve(b, STUN_A_ERROR_CODE, 4 + rlen);
    if (v == NULL)
        return;
    v[0] = 0;
    v[1] = 0;
    v[2] = (uint8_t)(code / 100);
    v[3] = (uint8_t)(code % 100);
    memcpy(v + 4, reason, rlen);
}

void stun_add_unknown(stun_builder_t *b, const uint16_t *types, size_t n)
{
    uint8_t *v;

    if (n > 0xffff / 2) {
        b->overflow = 1;
        return;
    }
    v = attr_reserve(b, STUN_A_UNKNOWN_ATTRIBUTES, 2 * n);
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        put16(v + 2 * i, types[i]);
}

static void add_mac(stun_builder_t *b, uint16_t type, int kind, size_t maclen, const uint8_t *key,
                    size_t keylen)
{
    uint8_t mac[EVP_MAX_MD_SIZE];
    size_t off = b->len;
    uint8_t *v = attr_reserve(b, type, maclen);

    if (v == NULL)
        return;
    /* The length field already counts this attribute, as the HMAC wants. */
    if (msg_hmac(kind, key, keylen, b->buf, off, b->len - STUN_HEADER_LEN, mac, sizeof(mac)) !=
        TS_OK) {
        b->overflow = 1;
        return;
    }
    memcpy(v, mac, maclen);
}

void stun_add_integrity(stun_builder_t *b, const uint8_t *key, size_t keylen)
{
    add_mac(b, STUN_A_MESSAGE_INTEGRITY, MAC_SHA1, MI_LEN, key, keylen);
}

void stun_add_integrity_sha256(stun_builder_t *b, const uint8_t *key, size_t keylen)
{
    add_mac(b, STUN_A_MESSAGE_INTEGRITY_SHA256, MAC_SHA256, MI256_MAX_LEN, key, keylen);
}

void stun_add_fingerprint(stun_builder_t *b)
{
    size_t off = b->len;
    uint8_t *v = attr_reserve(b, STUN_A_FINGERPRINT, 4);

    if (v != NULL)
        put32(v, (uint32_t)crc32(0, b->buf, (uInt)off) ^ STUN_FINGERPRINT_XOR);
}

size_t stun_build_finish(stun_builder_t *b)
{
    return b->overflow ? 0 : b->len;
}

/* ------------------------------------------------------------ reason phrases -- */

const char *stun_error_reason(int code)
{
    switch (code) {
    case 300:
        return "Try Alternate";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 420:
        return "Unknown Attribute";
    case 437:
        return "Allocation Mismatch";
    case 438:
        return "Stale Nonce";
    case 440:
        return "Address Family not Supported";
    case 441:
        return "Wrong Credentials";
    case 442:
        return "Unsupported Transport Protocol";
    case 443:
        return "Peer Address Family Mismatch";
    case 446:
        return "Connection Already Exists";
    case 447:
        return "Connection Timeout or Failure";
    case 486:
        return "Allocation Quota Reached";
    case 487:
        return "Role Conflict";
    case 500:
        return "Server Error";
    case 508:
        return "Insufficient Capacity";
    default:
        return "";
    }
}
