/*
 * utf8.c — incremental UTF-8 validation as a small DFA. The contract is in
 * utf8.h.
 *
 * Each byte falls into one of twelve classes according to what it can be in
 * RFC 3629's grammar; the state says what the next byte must be. The second
 * byte of a sequence carries every restriction beyond "80-BF" (no overlong
 * forms, no surrogates, nothing past U+10FFFF), so four dedicated states
 * check it and all other continuation bytes share three plain "n more" states.
 * A byte that no valid string could have at its position moves to REJECT at
 * once: the validator fails fast, at the exact byte, as Autobahn 6.x expects.
 */
#include "ws/utf8.h"

#include <string.h>

/* Byte classes. */
enum {
    C_ASCII,  /* 00-7F */
    C_CONT_L, /* 80-8F */
    C_CONT_M, /* 90-9F */
    C_CONT_H, /* A0-BF */
    C_NEVER,  /* C0-C1 (overlong 2-byte leads), F5-FF (past U+10FFFF) */
    C_LEAD2,  /* C2-DF */
    C_E0,     /* E0: second byte A0-BF, or it would be overlong */
    C_LEAD3,  /* E1-EC, EE-EF */
    C_ED,     /* ED: second byte 80-9F, or it would be a surrogate */
    C_F0,     /* F0: second byte 90-BF, or it would be overlong */
    C_LEAD4,  /* F1-F3 */
    C_F4,     /* F4: second byte 80-8F, or it would pass U+10FFFF */
    NCLASSES
};

/* States; ACCEPT and REJECT are the public values. */
enum {
    S_ACCEPT = WS_UTF8_ACCEPT,
    S_REJECT = WS_UTF8_REJECT,
    S_TAIL1, /* one more continuation byte */
    S_TAIL2, /* two more */
    S_TAIL3, /* three more */
    S_E0,    /* after E0 */
    S_ED,    /* after ED */
    S_F0,    /* after F0 */
    S_F4,    /* after F4 */
    NSTATES
};

#define R S_REJECT

static const uint8_t byte_class[256] = {
    /* 00-7F */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 80-8F */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 90-9F */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    /* A0-BF */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    /* C0-DF */
    4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
    /* E0-EF */
    6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 7,
    /* F0-FF */
    9, 10, 10, 10, 11, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4};

/* next_state[state][class]; columns in the order of the classes above. */
// clang-format off
static const uint8_t next_state[NSTATES][NCLASSES] = {
    /*            00-7F     80-8F     90-9F     A0-BF     never C2-DF    E0    E1-EF    ED    F0    F1-F3    F4 */
    [S_ACCEPT] = {S_ACCEPT, R,        R,        R,        R,    S_TAIL1, S_E0, S_TAIL2, S_ED, S_F0, S_TAIL3, S_F4},
    [S_REJECT] = {R,        R,        R,        R,        R,    R,       R,    R,       R,    R,    R,       R},
    [S_TAIL1]  = {R,        S_ACCEPT, S_ACCEPT, S_ACCEPT, R,    R,       R,    R,       R,    R,    R,       R},
    [S_TAIL2]  = {R,        S_TAIL1,  S_TAIL1,  S_TAIL1,  R,    R,       R,    R,       R,    R,    R,       R},
    [S_TAIL3]  = {R,        S_TAIL2,  S_TAIL2,  S_TAIL2,  R,    R,       R,    R,       R,    R,    R,       R},
    [S_E0]     = {R,        R,        R,        S_TAIL1,  R,    R,       R,    R,       R,    R,    R,       R},
    [S_ED]     = {R,        S_TAIL1,  S_TAIL1,  R,        R,    R,       R,    R,       R,    R,    R,       R},
    [S_F0]     = {R,        R,        S_TAIL2,  S_TAIL2,  R,    R,       R,    R,       R,    R,    R,       R},
    [S_F4]     = {R,        S_TAIL2,  R,        R,        R,    R,       R,    R,       R,    R,    R,       R},
};
// clang-format on

#undef R

#define HIGH_BITS 0x8080808080808080ull

/* Index of the first byte of p[i..n) that is not ASCII, or n. */
static size_t skip_ascii(const uint8_t *p, size_t i, size_t n)
{
    uint64_t a, b;

    for (; i + 16 <= n; i += 16) {
        memcpy(&a, p + i, 8);
        memcpy(&b, p + i + 8, 8);
        if ((a | b) & HIGH_BITS)
            break;
    }
    for (; i + 8 <= n; i += 8) {
        memcpy(&a, p + i, 8);
        if (a & HIGH_BITS)
            break;
    }
    while (i < n && p[i] < 0x80)
        i++;
    return i;
}

uint32_t ws_utf8_feed(uint32_t *state, const uint8_t *p, size_t n)
{
    uint32_t s = *state;
    size_t i = 0;

    if (s >= NSTATES)
        s = S_REJECT; /* a corrupted state never turns into success */
    while (i < n && s != S_REJECT) {
        if (s == S_ACCEPT) {
            i = skip_ascii(p, i, n);
            if (i == n)
                break;
        }
        s = next_state[s][byte_class[p[i++]]];
    }
    *state = s;
    return s;
}

int ws_utf8_valid(const uint8_t *p, size_t n)
{
    uint32_t s = WS_UTF8_ACCEPT;

    return ws_utf8_feed(&s, p, n) == WS_UTF8_ACCEPT;
}
