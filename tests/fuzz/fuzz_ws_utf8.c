/*
 * fuzz_ws_utf8.c — the incremental UTF-8 validator against an independent
 * reference written from RFC 3629's code-point ranges (not from a byte
 * table). The first two bytes choose two split points. Checked:
 *   - the one-shot verdict (valid, invalid, in the middle) is the
 *     reference's;
 *   - feeding in three pieces gives the same state as one call;
 *   - fed byte by byte, REJECT comes exactly at the first byte after which
 *     no valid text is possible (fail fast), and stays;
 *   - ws_utf8_valid agrees.
 */
#include "core/common.h"
#include "ws/utf8.h"

#include <stdint.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* Can a code point in [lo, hi] be legal in a sequence whose smallest legal
 * value is min? (No overlongs, no surrogates, nothing past U+10FFFF.) */
static int ref_range_ok(uint32_t lo, uint32_t hi, uint32_t min)
{
    if (hi < min || lo > 0x10ffff)
        return 0;
    lo = TS_MAX(lo, min);
    hi = TS_MIN(hi, 0x10ffff);
    return lo < 0xd800 || hi > 0xdfff;
}

/* Index of the first byte after which no valid text is possible, or n;
 * *complete: p[0..n) ends on a code point boundary. */
static size_t ref_check(const uint8_t *p, size_t n, int *complete)
{
    size_t i = 0;

    *complete = 1;
    while (i < n) {
        uint8_t c = p[i];
        size_t need, k;
        uint32_t cp, min;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc0 && c < 0xe0) {
            need = 2, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c < 0xf0) {
            need = 3, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c < 0xf8) {
            need = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return i;
        }
        for (k = 1;; k++) {
            unsigned rest = 6 * (unsigned)(need - k);
            if (!ref_range_ok(cp << rest, (cp << rest) | ((1u << rest) - 1), min))
                return i + k - 1;
            if (k == need)
                break;
            if (i + k == n) {
                *complete = 0;
                return n;
            }
            if ((p[i + k] & 0xc0) != 0x80)
                return i + k;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        i += need;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t one = WS_UTF8_ACCEPT, s = WS_UTF8_ACCEPT;
    size_t a, b, bad;
    int complete;

    if (size < 2)
        return 0;
    a = data[0];
    b = data[1];
    data += 2;
    size -= 2;
    a = size ? a % (size + 1) : 0;
    b = size ? b % (size + 1) : 0;
    if (a > b) {
        size_t t = a;
        a = b;
        b = t;
    }

    bad = ref_check(data, size, &complete);
    ws_utf8_feed(&one, data, size);
    if (bad < size)
        CHECK(one == WS_UTF8_REJECT);
    else if (complete)
        CHECK(one == WS_UTF8_ACCEPT);
    else
        CHECK(one != WS_UTF8_ACCEPT && one != WS_UTF8_REJECT);
    CHECK(ws_utf8_valid(data, size) == (one == WS_UTF8_ACCEPT));

    ws_utf8_feed(&s, data, a);
    ws_utf8_feed(&s, data + a, b - a);
    ws_utf8_feed(&s, data + b, size - b);
    CHECK(s == one);

    s = WS_UTF8_ACCEPT;
    for (size_t i = 0; i < size; i++) {
        uint32_t r = ws_utf8_feed(&s, data + i, 1);
        CHECK((r == WS_UTF8_REJECT) == (i >= bad));
    }
    CHECK(s == one);
    return 0;
}
