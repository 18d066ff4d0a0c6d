/*
 * turnbench.h — pieces shared by bench/turn/stunflood.c and bench/turn/turnfleet.c:
 * a STUN message builder and reader (RFC 8489 / 5389: XOR addresses,
 * MESSAGE-INTEGRITY with HMAC-SHA1 through OpenSSL's EVP_MAC, FINGERPRINT
 * with zlib's CRC-32), clocks, the server's CPU time and RSS from /proc, a
 * latency histogram, and sendmmsg/recvmmsg batch entries. Header-only (static functions): each tool builds with
 * one `cc -O2 file.c -lcrypto -lz`.
 */
#ifndef TURNBENCH_H
#define TURNBENCH_H

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <zlib.h>

#define STUN_MAGIC 0x2112A442u
#define STUN_HDR   20

/* Message types (method | class). */
#define STUN_BINDING_REQ     0x0001
#define STUN_BINDING_OK      0x0101
#define STUN_ALLOCATE_REQ    0x0003
#define STUN_ALLOCATE_OK     0x0103
#define STUN_ALLOCATE_ERR    0x0113
#define STUN_REFRESH_REQ     0x0004
#define STUN_REFRESH_OK      0x0104
#define STUN_REFRESH_ERR     0x0114
#define STUN_PERMISSION_REQ  0x0008
#define STUN_PERMISSION_OK   0x0108
#define STUN_PERMISSION_ERR  0x0118
#define STUN_CHANNELBIND_REQ 0x0009
#define STUN_CHANNELBIND_OK  0x0109
#define STUN_CHANNELBIND_ERR 0x0119

/* Attributes. */
#define STUN_A_USERNAME        0x0006
#define STUN_A_INTEGRITY       0x0008
#define STUN_A_ERROR_CODE      0x0009
#define STUN_A_CHANNEL_NUMBER  0x000C
#define STUN_A_LIFETIME        0x000D
#define STUN_A_XOR_PEER        0x0012
#define STUN_A_REALM           0x0014
#define STUN_A_NONCE           0x0015
#define STUN_A_XOR_RELAYED     0x0016
#define STUN_A_REQ_TRANSPORT   0x0019
#define STUN_A_XOR_MAPPED      0x0020
#define STUN_A_FINGERPRINT     0x8028
#define STUN_FINGERPRINT_XOR   0x5354554Eu

static inline void tb_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void tb_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint16_t tb_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t tb_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t tb_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- building a message ---------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t len;
} tb_msg_t;

static inline void tb_begin(tb_msg_t *m, uint8_t *buf, uint16_t type, const uint8_t tid[12])
{
    m->p = buf;
    tb_put16(buf, type);
    tb_put16(buf + 2, 0);
    tb_put32(buf + 4, STUN_MAGIC);
    memcpy(buf + 8, tid, 12);
    m->len = STUN_HDR;
}

static inline void tb_attr(tb_msg_t *m, uint16_t type, const void *v, size_t len)
{
    uint8_t *a = m->p + m->len;

    tb_put16(a, type);
    tb_put16(a + 2, (uint16_t)len);
    if (len)
        memcpy(a + 4, v, len);
    while (len % 4)
        a[4 + len++] = 0;
    m->len += 4 + len;
    tb_put16(m->p + 2, (uint16_t)(m->len - STUN_HDR));
}

static inline void tb_attr32(tb_msg_t *m, uint16_t type, uint32_t v)
{
    uint8_t b[4];

    tb_put32(b, v);
    tb_attr(m, type, b, 4);
}

/* An XOR-…-ADDRESS of an IPv4 address (RFC 8489 14.2). */
static inline void tb_attr_xaddr(tb_msg_t *m, uint16_t type, const struct sockaddr_in *sa)
{
    uint8_t b[8];

    b[0] = 0;
    b[1] = 0x01;
    tb_put16(b + 2, (uint16_t)(ntohs(sa->sin_port) ^ (STUN_MAGIC >> 16)));
    tb_put32(b + 4, ntohl(sa->sin_addr.s_addr) ^ STUN_MAGIC);
    tb_attr(m, type, b, 8);
}

/* HMAC-SHA1 through one EVP_MAC context kept for the process. */
typedef struct {
    EVP_MAC *mac;
    EVP_MAC_CTX *ctx;
} tb_hmac_t;

static inline int tb_hmac_init(tb_hmac_t *h)
{
    OSSL_PARAM params[2];
    char digest[] = "SHA1";

    h->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (h->mac == NULL)
        return -1;
    h->ctx = EVP_MAC_CTX_new(h->mac);
    if (h->ctx == NULL)
        return -1;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(h->ctx, params) == 1 ? 0 : -1;
}

static inline int tb_hmac_sha1(tb_hmac_t *h, const uint8_t *key, size_t keylen, const uint8_t *data,
                        size_t len, uint8_t out[20])
{
    size_t outl = 0;

    if (EVP_MAC_init(h->ctx, key, keylen, NULL) != 1 || EVP_MAC_update(h->ctx, data, len) != 1 ||
        EVP_MAC_final(h->ctx, out, &outl, 20) != 1 || outl != 20)
        return -1;
    return 0;
}

/* The long-term credential key: MD5(username ":" realm ":" password). */
static inline int tb_lt_key(const char *user, const char *realm, size_t realmlen, const char *pass,
                     uint8_t key[16])
{
    char buf[1024];
    unsigned int outl = 0;
    int n = snprintf(buf, sizeof(buf), "%s:%.*s:%s", user, (int)realmlen, realm, pass);

    if (n < 0 || (size_t)n >= sizeof(buf))
        return -1;
    if (EVP_Digest(buf, (size_t)n, key, &outl, EVP_md5(), NULL) != 1 || outl != 16)
        return -1;
    return 0;
}

/* MESSAGE-INTEGRITY over everything before it, with the length field already
 * counting the attribute (RFC 8489 14.5). */
static inline int tb_integrity(tb_msg_t *m, tb_hmac_t *h, const uint8_t key[16])
{
    uint8_t mac[20];

    tb_put16(m->p + 2, (uint16_t)(m->len - STUN_HDR + 24));
    if (tb_hmac_sha1(h, key, 16, m->p, m->len, mac) != 0)
        return -1;
    tb_attr(m, STUN_A_INTEGRITY, mac, 20);
    return 0;
}

static inline void tb_fingerprint(tb_msg_t *m)
{
    uint32_t crc;

    tb_put16(m->p + 2, (uint16_t)(m->len - STUN_HDR + 8));
    crc = (uint32_t)crc32(0L, m->p, (uInt)m->len) ^ STUN_FINGERPRINT_XOR;
    tb_attr32(m, STUN_A_FINGERPRINT, crc);
}

/* ---- reading a message ----------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t len; /* header + attributes */
    uint16_t type;
} tb_view_t;

/* 0 when data holds one well-formed STUN message. */
static inline int tb_parse(tb_view_t *v, const uint8_t *data, size_t n)
{
    size_t alen;

    if (n < STUN_HDR || (data[0] & 0xC0) != 0 || tb_get32(data + 4) != STUN_MAGIC)
        return -1;
    alen = tb_get16(data + 2);
    if (alen % 4 || STUN_HDR + alen > n)
        return -1;
    v->p = data;
    v->len = STUN_HDR + alen;
    v->type = tb_get16(data);
    return 0;
}

/* The value of the first attribute of type, or NULL. Sets *len. */
static inline const uint8_t *tb_find(const tb_view_t *v, uint16_t type, size_t *len)
{
    size_t off = STUN_HDR;

    while (off + 4 <= v->len) {
        uint16_t t = tb_get16(v->p + off), l = tb_get16(v->p + off + 2);

        if (off + 4 + l > v->len)
            return NULL;
        if (t == type) {
            *len = l;
            return v->p + off + 4;
        }
        off += 4 + ((l + 3u) & ~3u);
    }
    return NULL;
}

/* An XOR-…-ADDRESS (IPv4) into sa; -1 when absent or not IPv4. */
static inline int tb_get_xaddr(const tb_view_t *v, uint16_t type, struct sockaddr_in *sa)
{
    size_t len = 0;
    const uint8_t *a = tb_find(v, type, &len);

    if (a == NULL || len != 8 || a[1] != 0x01)
        return -1;
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)(tb_get16(a + 2) ^ (STUN_MAGIC >> 16)));
    sa->sin_addr.s_addr = htonl(tb_get32(a + 4) ^ STUN_MAGIC);
    return 0;
}

/* The ERROR-CODE's number (e.g. 401), 0 when absent. */
static inline int tb_error_code(const tb_view_t *v)
{
    size_t len = 0;
    const uint8_t *a = tb_find(v, STUN_A_ERROR_CODE, &len);

    if (a == NULL || len < 4)
        return 0;
    return (a[2] & 7) * 100 + a[3];
}

/* 1 when MESSAGE-INTEGRITY is present and right for key, 0 otherwise. */
static inline int tb_check_integrity(const tb_view_t *v, tb_hmac_t *h, const uint8_t key[16])
{
    size_t len = 0;
    const uint8_t *a = tb_find(v, STUN_A_INTEGRITY, &len);
    uint8_t copy[2048], mac[20];
    size_t upto;

    if (a == NULL || len != 20)
        return 0;
    upto = (size_t)(a - 4 - v->p);
    if (upto > sizeof(copy))
        return 0;
    memcpy(copy, v->p, upto);
    tb_put16(copy + 2, (uint16_t)(upto - STUN_HDR + 24));
    if (tb_hmac_sha1(h, key, 16, copy, upto, mac) != 0)
        return 0;
    return memcmp(mac, a, 20) == 0;
}

/* 1 when FINGERPRINT is absent or right, 0 when wrong. */
static inline int tb_check_fingerprint(const tb_view_t *v)
{
    size_t len = 0;
    const uint8_t *a = tb_find(v, STUN_A_FINGERPRINT, &len);
    uint8_t copy[2048];
    size_t upto;

    if (a == NULL)
        return 1;
    upto = (size_t)(a - 4 - v->p);
    if (len != 4 || upto > sizeof(copy))
        return 0;
    memcpy(copy, v->p, upto);
    tb_put16(copy + 2, (uint16_t)(upto - STUN_HDR + 8));
    return ((uint32_t)crc32(0L, copy, (uInt)upto) ^ STUN_FINGERPRINT_XOR) == tb_get32(a);
}

/* ---- the server process ------------------------------------------------------ */

/* CPU time of every thread of pid, in ns (schedstat: on-CPU time, user and
 * system together); falls back to utime+stime of /proc/PID/stat (clock
 * ticks). -1 when pid is gone. */
static inline int64_t tb_proc_cpu_ns(int pid)
{
    char path[64];
    DIR *d;
    struct dirent *e;
    int64_t sum = 0;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    d = opendir(path);
    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            char p2[300];
            FILE *f;
            unsigned long long ns;

            if (e->d_name[0] == '.')
                continue;
            snprintf(p2, sizeof(p2), "/proc/%d/task/%s/schedstat", pid, e->d_name);
            f = fopen(p2, "r");
            if (f == NULL)
                continue;
            if (fscanf(f, "%llu", &ns) == 1) {
                sum += (int64_t)ns;
                n++;
            }
            fclose(f);
        }
        closedir(d);
    }
    if (n > 0)
        return sum;
    {
        char buf[1024], *p;
        FILE *f;
        unsigned long long ut = 0, st = 0;
        size_t got;

        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        f = fopen(path, "r");
        if (f == NULL)
            return -1;
        got = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[got] = 0;
        p = strrchr(buf, ')');
        if (p == NULL ||
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
            return -1;
        return (int64_t)(ut + st) * (1000000000 / 100);
    }
}

/* VmRSS of pid in KiB; -1 when gone. */
static inline long tb_proc_rss_kib(int pid)
{
    char path[64], line[256];
    FILE *f;
    long kib = -1;

    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

/* ---- latency histogram: 1 µs buckets, 64 sub-buckets per power of two ---- */

#define TB_HIST_SUB 64
#define TB_HIST_N   (40 * TB_HIST_SUB)

typedef struct {
    uint64_t count[TB_HIST_N];
    uint64_t total;
    double sum_us;
    uint64_t max_ns;
} tb_hist_t;

static inline int tb_hist_index(uint64_t ns)
{
    uint64_t us = ns / 1000;
    int e = 0;

    if (us < TB_HIST_SUB)
        return (int)us;
    while ((us >> e) >= 2 * TB_HIST_SUB)
        e++;
    /* us in [64 * 2^e, 128 * 2^e): bucket (e + 1) * 64 + (us >> e) - 64 */
    {
        int i = (e + 1) * TB_HIST_SUB + (int)((us >> e) - TB_HIST_SUB);
        return i < TB_HIST_N ? i : TB_HIST_N - 1;
    }
}

/* Upper edge of bucket i, in µs. */
static inline double tb_hist_upper_us(int i)
{
    int e;

    if (i < TB_HIST_SUB)
        return i + 1;
    e = i / TB_HIST_SUB - 1;
    return (double)((uint64_t)(i % TB_HIST_SUB + TB_HIST_SUB + 1) << e);
}

static inline void tb_hist_add(tb_hist_t *h, uint64_t ns)
{
    h->count[tb_hist_index(ns)]++;
    h->total++;
    h->sum_us += ns / 1000.0;
    if (ns > h->max_ns)
        h->max_ns = ns;
}

/* The q-quantile (0..1) in µs, the upper edge of its bucket; 0 when empty. */
static inline double tb_hist_quantile_us(const tb_hist_t *h, double q)
{
    uint64_t want, seen = 0;
    int i;

    if (h->total == 0)
        return 0;
    want = (uint64_t)(q * (double)h->total);
    if (want >= h->total)
        want = h->total - 1;
    for (i = 0; i < TB_HIST_N; i++) {
        seen += h->count[i];
        if (seen > want)
            return tb_hist_upper_us(i);
    }
    return h->max_ns / 1000.0;
}

/* Entry m of a sendmmsg/recvmmsg batch: one buffer, no address. */
static inline void tb_mmsg_set(struct mmsghdr *m, struct iovec *iov, void *base, size_t len)
{
    iov->iov_base = base;
    iov->iov_len = len;
    memset(&m->msg_hdr, 0, sizeof(m->msg_hdr));
    m->msg_hdr.msg_iov = iov;
    m->msg_hdr.msg_iovlen = 1;
}

/* "127.0.0.1:3478" into sa. */
static inline int tb_parse_addr(const char *s, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    size_t hl;

    if (colon == NULL)
        return -1;
    hl = (size_t)(colon - s);
    if (hl == 0 || hl >= sizeof(host))
        return -1;
    memcpy(host, s, hl);
    host[hl] = 0;
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)atoi(colon + 1));
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

#endif
