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

#include "../common/utf8_ref.h"

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
