/*
 * auth.c — TURN credentials (nonces, static users, the TURN REST API) and
 * the peer filter. See auth.h.
 *
 * Nothing here keeps state per client or allocates: a nonce carries its own
 * issue time under an HMAC, a REST username carries its own expiry under the
 * shared secret, and the peer filter reads the configuration it is given.
 */
#include "turn/auth.h"

#include "core/common.h"
#include "core/log.h"

#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- nonces ----------------------------------------------------------------- */

/*
 * A nonce is, when PASSWORD-ALGORITHMS goes with it, the RFC 8489 9.2
 * security-feature cookie "obMatJos2" with the feature set "wAAA" (bit 0,
 * password algorithms, and bit 1, username anonymity: tsunagi offers
 * PASSWORD-ALGORITHMS and takes USERHASH), then in every case the base64 of
 * 18 bytes: the issue time (6 bytes, big-endian milliseconds), 2
 * random bytes so that two clients asking in the same millisecond get
 * different nonces (RFC 8489 9.2.4), and the first 10 bytes of
 * HMAC-SHA256(key, those 8 bytes). 18 bytes are exactly 24 base64
 * characters, without padding, and the alphabet holds neither '"' nor '\',
 * so the nonce is qdtext as RFC 8489 wants. An 80-bit tag is far beyond what
 * an attacker can guess online, and guessing one would only buy a nonce,
 * which is no secret.
 */
#define NONCE_COOKIE    "obMatJos2wAAA"
#define NONCE_COOKIE_LEN (sizeof(NONCE_COOKIE) - 1)
#define NONCE_TIME_LEN  6
#define NONCE_SALT_LEN  2
#define NONCE_TAG_LEN   10
#define NONCE_SIGNED_LEN (NONCE_TIME_LEN + NONCE_SALT_LEN)
#define NONCE_RAW_LEN   (NONCE_SIGNED_LEN + NONCE_TAG_LEN)
#define NONCE_BODY_LEN  (NONCE_RAW_LEN / 3 * 4)

_Static_assert(NONCE_RAW_LEN % 3 == 0 && NONCE_COOKIE_LEN + NONCE_BODY_LEN == TURN_NONCE_LEN &&
                   NONCE_BODY_LEN == TURN_NONCE_PLAIN_LEN,
               "a nonce is the cookie and the unpadded base64 of its raw bytes");

void turn_auth_init(turn_auth_t *a)
{
    memset(a, 0, sizeof(*a));
    if (RAND_bytes(a->key, sizeof(a->key)) != 1) {
        /* No entropy is as fatal as no memory (common.h). */
        ts_log_error("OpenSSL RAND_bytes failed: cannot make the TURN nonce key");
        abort();
    }
    a->nonce_ttl_ms = TURN_NONCE_TTL_MS;
}

/* Fill raw[0..NONCE_TIME_LEN) with issued; raw must already hold the salt. */
static void nonce_raw(const turn_auth_t *a, uint64_t issued, uint8_t raw[NONCE_RAW_LEN])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;

    for (int i = 0; i < NONCE_TIME_LEN; i++)
        raw[i] = (uint8_t)(issued >> (8 * (NONCE_TIME_LEN - 1 - i)));
    if (HMAC(EVP_sha256(), a->key, (int)sizeof(a->key), raw, NONCE_SIGNED_LEN, md, &mdlen) ==
            NULL ||
        mdlen < NONCE_TAG_LEN) {
        ts_log_error("HMAC-SHA256 unavailable from libcrypto");
        abort();
    }
    memcpy(raw + NONCE_SIGNED_LEN, md, NONCE_TAG_LEN);
}

void turn_nonce_make2(const turn_auth_t *a, uint64_t now_ms, int cookie, char *out, size_t cap)
{
    uint8_t raw[NONCE_RAW_LEN];
    size_t pre = cookie ? NONCE_COOKIE_LEN : 0;

    if (cap <= pre + NONCE_BODY_LEN) {
        if (cap > 0)
            out[0] = '\0';
        return;
    }
    if (RAND_bytes(raw + NONCE_TIME_LEN, NONCE_SALT_LEN) != 1) {
        ts_log_error("OpenSSL RAND_bytes failed");
        abort();
    }
    nonce_raw(a, now_ms, raw);
    memcpy(out, NONCE_COOKIE, pre);
    EVP_EncodeBlock((unsigned char *)out + pre, raw, NONCE_RAW_LEN);
}

void turn_nonce_make(const turn_auth_t *a, uint64_t now_ms, char *out, size_t cap)
{
    turn_nonce_make2(a, now_ms, 1, out, cap);
}

static int is_base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

int turn_nonce_check(const turn_auth_t *a, uint64_t now_ms, const char *nonce, size_t len)
{
    return turn_nonce_check2(a, now_ms, a->nonce_ttl_ms, nonce, len);
}

int turn_nonce_check2(const turn_auth_t *a, uint64_t now_ms, uint64_t ttl_ms, const char *nonce,
                      size_t len)
{
    uint8_t got[NONCE_RAW_LEN + 2], want[NONCE_RAW_LEN];
    const char *body = nonce;
    uint64_t issued = 0;

    if (len == TURN_NONCE_LEN && memcmp(nonce, NONCE_COOKIE, NONCE_COOKIE_LEN) == 0)
        body = nonce + NONCE_COOKIE_LEN;
    else if (len != NONCE_BODY_LEN)
        return -1;
    /* EVP_DecodeBlock would skip white space and take '=': only the alphabet
     * maps one to one onto the raw bytes. */
    for (size_t i = 0; i < NONCE_BODY_LEN; i++) {
        if (!is_base64_char(body[i]))
            return -1;
    }
    if (EVP_DecodeBlock(got, (const unsigned char *)body, NONCE_BODY_LEN) != NONCE_RAW_LEN)
        return -1;
    for (int i = 0; i < NONCE_TIME_LEN; i++)
        issued = issued << 8 | got[i];
    memcpy(want + NONCE_TIME_LEN, got + NONCE_TIME_LEN, NONCE_SALT_LEN);
    nonce_raw(a, issued, want);
    if (CRYPTO_memcmp(got + NONCE_SIGNED_LEN, want + NONCE_SIGNED_LEN, NONCE_TAG_LEN) != 0)
        return -1;
    /* Ours, from the future: the clock stepped back. A fresh nonce mends it. */
    if (issued > now_ms)
        return 0;
    return ttl_ms != 0 && now_ms - issued > ttl_ms ? 0 : 1;
}

/* ---- passwords ------------------------------------------------------------- */

static int all_digits(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
    }
    return 1;
}

/*
 * The parts of a REST API username, split as coturn's use-auth-secret splits
 * them at the first ':': "EXPIRY", "EXPIRY:NAME" when everything before the
 * ':' is digits, else "NAME:EXPIRY". Unlike coturn's atol(), EXPIRY must be
 * digits to its end. 0 when user has none of these forms.
 */
static int rest_split(const char *user, size_t ulen, const char **exp, size_t *elen,
                      const char **name, size_t *nlen)
{
    const char *colon = memchr(user, ':', ulen);

    if (colon == NULL) {
        *exp = user;
        *elen = ulen;
        *name = user + ulen;
        *nlen = 0;
    } else if (all_digits(user, (size_t)(colon - user))) {
        *exp = user;
        *elen = (size_t)(colon - user);
        *name = colon + 1;
        *nlen = ulen - *elen - 1;
    } else {
        *name = user;
        *nlen = (size_t)(colon - user);
        *exp = colon + 1;
        *elen = ulen - *nlen - 1;
    }
    return all_digits(*exp, *elen);
}

/* Saturates far above any Unix time, so an overlong EXPIRY reads as "later". */
static uint64_t expiry_value(const char *s, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++) {
        if (v < 100000000000000ULL)
            v = v * 10 + (uint64_t)(s[i] - '0');
    }
    return v;
}

/* out gets base64(HMAC-SHA1(secret, user)) and a NUL: TURN_REST_PASS_LEN + 1 bytes. */
static void rest_password(const char *secret, const char *user, size_t ulen, char *out)
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;

    if (HMAC(EVP_sha1(), secret, (int)strlen(secret), (const uint8_t *)user, ulen, md, &mdlen) ==
            NULL ||
        mdlen != 20) {
        ts_log_error("HMAC-SHA1 unavailable from libcrypto");
        abort();
    }
    EVP_EncodeBlock((unsigned char *)out, md, 20);
}

static int static_password(const ts_config_t *cfg, const char *user, size_t ulen, char *pass,
                           size_t cap)
{
    for (size_t i = 0; i < cfg->nusers; i++) {
        const ts_user_t *u = &cfg->users[i];
        size_t plen;

        if (strlen(u->name) != ulen || memcmp(u->name, user, ulen) != 0)
            continue;
        plen = strlen(u->pass);
        if (plen >= cap) {
            ts_log_warn("TURN user '%s': the password is longer than %zu bytes: refused", u->name,
                        cap - 1);
            return -1;
        }
        memcpy(pass, u->pass, plen + 1);
        return 1;
    }
    return 0;
}

int turn_password(const ts_config_t *cfg, const char *user, size_t ulen, int64_t now_unix,
                  char *pass, size_t cap)
{
    const char *exp, *name;
    size_t elen, nlen;
    int rc;

    if (cap > 0)
        pass[0] = '\0';
    if (ulen == 0 || cap == 0)
        return 0;
    rc = static_password(cfg, user, ulen, pass, cap);
    if (rc != 0)
        return rc > 0;
    if (cfg->static_auth_secret == NULL || cfg->static_auth_secret[0] == '\0')
        return 0;
    if (!rest_split(user, ulen, &exp, &elen, &name, &nlen))
        return 0;
    /* coturn's test: valid while EXPIRY is not before now. */
    if (now_unix > 0 && expiry_value(exp, elen) < (uint64_t)now_unix)
        return 0;
    if (cap <= TURN_REST_PASS_LEN)
        return 0;
    rest_password(cfg->static_auth_secret, user, ulen, pass);
    return 1;
}

void turn_rest_credential(const char *secret, const char *name, int64_t now_unix, unsigned ttl,
                          char *user, size_t ucap, char *pass, size_t pcap)
{
    long long expiry = (long long)now_unix + (long long)ttl;
    int n;

    if (name != NULL && name[0] != '\0')
        n = snprintf(user, ucap, "%lld:%s", expiry, name);
    else
        n = snprintf(user, ucap, "%lld", expiry);
    /* A cut username would not match its password: hand out nothing. */
    if (n < 0 || (size_t)n >= ucap || pcap <= TURN_REST_PASS_LEN || secret == NULL) {
        if (ucap > 0)
            user[0] = '\0';
        if (pcap > 0)
            pass[0] = '\0';
        return;
    }
    rest_password(secret, user, (size_t)n, pass);
}

void turn_quota_name(const char *user, size_t ulen, const char **name, size_t *nlen)
{
    const char *exp;
    size_t elen;

    if (memchr(user, ':', ulen) == NULL || !rest_split(user, ulen, &exp, &elen, name, nlen)) {
        *name = user;
        *nlen = ulen;
    }
}

/* ---- the peer filter --------------------------------------------------------- */

/*
 * A peer is judged by every address it names: its own, and for an IPv6
 * address that embeds an IPv4 one (IPv4-mapped, IPv4-compatible, NAT64,
 * 6to4) that IPv4 address too, since that is where the packets end up.
 */
typedef struct {
    int has_v4, has_v6;
    uint8_t v4[4];
    uint8_t v6[16];
} peer_addrs_t;

static const uint8_t prefix_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
static const uint8_t prefix_nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
static const uint8_t zeros[16];

static int v6_embedded_v4(const uint8_t a[16], uint8_t v4[4])
{
    const uint8_t *at = NULL;

    if (memcmp(a, prefix_mapped, 12) == 0 || memcmp(a, prefix_nat64, 12) == 0)
        at = a + 12;
    else if (memcmp(a, zeros, 12) == 0 && memcmp(a + 12, zeros, 3) == 0 && a[15] <= 1)
        return 0; /* :: and ::1 are themselves, not IPv4-compatible 0.0.0.0 / 0.0.0.1 */
    else if (memcmp(a, zeros, 12) == 0)
        at = a + 12; /* ::/96, IPv4-compatible (deprecated) */
    else if (a[0] == 0x20 && a[1] == 0x02)
        at = a + 2; /* 2002::/16, 6to4: bits 16..47 */
    else
        return 0;
    memcpy(v4, at, 4);
    return 1;
}

static int peer_addrs(const struct sockaddr *sa, peer_addrs_t *p)
{
    memset(p, 0, sizeof(*p));
    if (sa->sa_family == AF_INET) {
        memcpy(p->v4, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        p->has_v4 = 1;
        return 1;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(p->v6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        p->has_v6 = 1;
        p->has_v4 = v6_embedded_v4(p->v6, p->v4);
        return 1;
    }
    return 0;
}

/* Denied unless allowed; 127.0.0.0/8 is tested on its own for the loopback flag. */
static const struct {
    uint32_t lo, hi;
} default_v4[] = {
    {0x00000000, 0x00ffffff}, /* 0.0.0.0/8, "this network" */
    {0x0a000000, 0x0affffff}, /* 10.0.0.0/8, private */
    {0x64400000, 0x647fffff}, /* 100.64.0.0/10, carrier-grade NAT */
    {0xa9fe0000, 0xa9feffff}, /* 169.254.0.0/16, link-local */
    {0xac100000, 0xac1fffff}, /* 172.16.0.0/12, private */
    {0xc0a80000, 0xc0a8ffff}, /* 192.168.0.0/16, private */
    {0xe0000000, 0xefffffff}, /* 224.0.0.0/4, multicast */
    {0xf0000000, 0xffffffff}, /* 240.0.0.0/4, reserved, with 255.255.255.255, broadcast */
};

static int v4_default_denied(const uint8_t a[4], int allow_loopback)
{
    uint32_t x = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];

    if (a[0] == 127)
        return !allow_loopback;
    for (size_t i = 0; i < TS_ARRAY_SIZE(default_v4); i++) {
        if (x >= default_v4[i].lo && x <= default_v4[i].hi)
            return 1;
    }
    return 0;
}

static int v6_default_denied(const uint8_t a[16], int allow_loopback)
{
    if (a[0] == 0xff) /* ff00::/8, multicast */
        return 1;
    if ((a[0] & 0xfe) == 0xfc) /* fc00::/7, unique local */
        return 1;
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) /* fe80::/10, link-local */
        return 1;
    if (memcmp(a, zeros, 15) == 0) /* ::/128 unspecified, ::1/128 loopback */
        return a[15] == 0 || (a[15] == 1 && !allow_loopback);
    return 0;
}

static int in_range(const uint8_t *a, const ts_ip_range_t *r, size_t n)
{
    return memcmp(a, r->lo, n) >= 0 && memcmp(a, r->hi, n) <= 0;
}

static int ranges_match(const ts_ip_range_t *r, size_t n, const peer_addrs_t *p)
{
    for (size_t i = 0; i < n; i++) {
        if (r[i].family == AF_INET && p->has_v4 && in_range(p->v4, &r[i], 4))
            return 1;
        if (r[i].family == AF_INET6 && p->has_v6 && in_range(p->v6, &r[i], 16))
            return 1;
    }
    return 0;
}

int turn_peer_allowed(const ts_config_t *cfg, const struct sockaddr *peer)
{
    peer_addrs_t p;
    int loop = cfg->allow_loopback_peers;

    if (!peer_addrs(peer, &p))
        return 0;
    if (ranges_match(cfg->allowed_peers, cfg->nallowed_peers, &p))
        return 1;
    if ((p.has_v4 && v4_default_denied(p.v4, loop)) || (p.has_v6 && v6_default_denied(p.v6, loop)))
        return 0;
    return !ranges_match(cfg->denied_peers, cfg->ndenied_peers, &p);
}
