/*
 * wsbench.h — the RFC 6455 arithmetic every WebSocket benchmark program needs
 * (bench/common/wsclient.c, bench/common/miniserver.c and the programs on top
 * of them): SHA-1 and base64 for Sec-WebSocket-Accept (RFC 6455 §4.2.2), a
 * fast PRNG for masks and keys, and the in-place XOR mask. Header-only
 * (static inline) so no program needs a library.
 */
#ifndef WSBENCH_H
#define WSBENCH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define WSB_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static inline uint32_t wsb_rol(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static inline void wsb_sha1(const uint8_t *data, size_t len, uint8_t out[20])
{
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    uint8_t block[64];
    uint64_t bits = (uint64_t)len * 8;
    size_t off = 0, i;
    int done = 0, pad_started = 0;

    while (!done) {
        size_t take = len - off < 64 ? len - off : 64;
        uint32_t w[80], a, b, c, d, e, f, k, t;

        memset(block, 0, sizeof(block));
        memcpy(block, data + off, take);
        off += take;
        if (take < 64) {
            if (!pad_started) {
                block[take] = 0x80;
                pad_started = 1;
            }
            if (take < 56) {
                for (i = 0; i < 8; i++) {
                    block[63 - i] = (uint8_t)(bits >> (8 * i));
                }
                done = 1;
            }
        }
        for (i = 0; i < 16; i++) {
            w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 |
                   (uint32_t)block[4 * i + 2] << 8 | block[4 * i + 3];
        }
        for (i = 16; i < 80; i++) {
            w[i] = wsb_rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        }
        a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (i = 0; i < 80; i++) {
            if (i < 20) {
                f = (b & c) | (~b & d), k = 0x5A827999;
            } else if (i < 40) {
                f = b ^ c ^ d, k = 0x6ED9EBA1;
            } else if (i < 60) {
                f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
            } else {
                f = b ^ c ^ d, k = 0xCA62C1D6;
            }
            t = wsb_rol(a, 5) + f + e + k + w[i];
            e = d, d = c, c = wsb_rol(b, 30), b = a, a = t;
        }
        h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
    }
    for (i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

/* Standard base64 with padding; out needs 4 * ((len + 2) / 3) + 1 bytes. */
static inline size_t wsb_base64(const uint8_t *in, size_t len, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o = 0;

    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18], out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63], out[o++] = tab[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = tab[v >> 18], out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key (key_len bytes, no NUL needed);
 * out needs 29 bytes. */
static inline void wsb_accept(const char *key, size_t key_len, char out[29])
{
    uint8_t buf[128], digest[20];

    if (key_len > sizeof(buf) - sizeof(WSB_GUID)) {
        key_len = sizeof(buf) - sizeof(WSB_GUID);
    }
    memcpy(buf, key, key_len);
    memcpy(buf + key_len, WSB_GUID, sizeof(WSB_GUID) - 1);
    wsb_sha1(buf, key_len + sizeof(WSB_GUID) - 1, digest);
    wsb_base64(digest, 20, out);
}

/* xorshift64*: fast, good enough for masks in a load generator (RFC 6455
 * asks browsers for unpredictable masks to defeat proxy cache poisoning; a
 * benchmark client on loopback only needs them to differ frame to frame). */
static inline uint64_t wsb_rand(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* dst[i] = src[i] ^ mask[(i + phase) % 4]; dst may equal src. */
static inline void wsb_mask(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t mask[4],
                            size_t phase)
{
    uint8_t m[4];
    uint32_t m32;
    uint64_t m64, v;
    size_t i = 0;

    for (int j = 0; j < 4; j++) {
        m[j] = mask[(j + phase) & 3];
    }
    memcpy(&m32, m, 4);
    m64 = (uint64_t)m32 << 32 | m32;
    for (; i + 8 <= len; i += 8) {
        memcpy(&v, src + i, 8);
        v ^= m64;
        memcpy(dst + i, &v, 8);
    }
    for (; i < len; i++) {
        dst[i] = src[i] ^ m[i & 3];
    }
}

static inline uint64_t wsb_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
