/*
 * utf8_ref.h — a reference UTF-8 checker written from RFC 3629's code point
 * ranges, shared by the unit test and the fuzz target of src/ws/utf8.c so
 * both judge the validator against the same independent rule.
 */
#ifndef TS_TESTS_UTF8_REF_H
#define TS_TESTS_UTF8_REF_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

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

#endif
