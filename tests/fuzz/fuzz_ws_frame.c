/*
 * fuzz_ws_frame.c — the frame header parser and the masker on arbitrary
 * bytes. The first byte picks require_mask, the size limit and how the
 * payload is cut for unmasking. Checked, beyond the absence of crashes:
 *   - a parsed header obeys every rule of frame.h (lengths, opcodes, control
 *     frames, mask, limit) and is exactly as long as its fields say;
 *   - the parser never changes its mind: every shorter prefix says AGAIN or
 *     already gives the same answer;
 *   - write -> parse gives back the same fields, and the written header is
 *     the input's own bytes when the input used the minimal length encoding;
 *   - errors carry the right close code;
 *   - piecewise unmasking at any offset equals a byte-wise reference.
 */
#include "core/common.h"
#include "ws/frame.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static int opcode_known(unsigned op)
{
    return op <= 2 || (op >= 8 && op <= 10);
}

static void check_ok(const uint8_t *d, size_t n, int require_mask, uint64_t max,
                     const ws_frame_t *f)
{
    unsigned len7 = d[1] & 0x7f;
    size_t ext = len7 < 126 ? 0 : len7 == 126 ? 2 : 8;
    uint8_t hdr[WS_MAX_HEADER];
    ws_frame_t g;
    size_t w;

    CHECK(f->header_len >= 2 && f->header_len <= WS_MAX_HEADER && f->header_len <= n);
    CHECK(f->header_len == 2 + ext + (f->masked ? 4 : 0));
    CHECK(f->fin == d[0] >> 7 && f->rsv == ((d[0] >> 4) & 7) && f->opcode == (d[0] & 0xf));
    CHECK(f->masked == d[1] >> 7);
    CHECK(opcode_known(f->opcode));
    CHECK(f->payload_len <= max && f->payload_len >> 63 == 0);
    if (f->opcode >= 8)
        CHECK(f->fin && f->payload_len <= WS_MAX_CONTROL_PAYLOAD);
    if (require_mask)
        CHECK(f->masked);
    if (f->masked)
        CHECK(memcmp(f->mask, d + f->header_len - 4, 4) == 0);

    /* Write -> parse round trip. */
    w = ws_frame_header_write(hdr, f->fin, f->rsv, f->opcode, f->payload_len,
                              f->masked ? f->mask : NULL);
    CHECK(w <= f->header_len);
    CHECK(ws_frame_parse(hdr, w, require_mask, max, &g) == TS_OK);
    CHECK(g.header_len == w && g.fin == f->fin && g.rsv == f->rsv && g.opcode == f->opcode &&
          g.masked == f->masked && g.payload_len == f->payload_len &&
          memcmp(g.mask, f->mask, 4) == 0);
    if (w == f->header_len)
        CHECK(memcmp(hdr, d, w) == 0);
}

static void check_mask(const uint8_t *d, size_t n, uint8_t ctl)
{
    uint8_t a[512], b[512];
    uint8_t key[4] = {0x5a, 0x00, 0xff, 0x81};
    uint64_t base = (uint64_t)ctl * 0x0101010101010101ull;
    size_t cut;

    n = TS_MIN(n, sizeof(a));
    if (n >= 4)
        memcpy(key, d, 4);
    memcpy(a, d, n);
    memcpy(b, d, n);
    cut = n ? ctl % (n + 1) : 0;
    ws_mask_apply(a, cut, key, base);
    ws_mask_apply(a + cut, n - cut, key, base + cut);
    for (size_t i = 0; i < n; i++)
        b[i] ^= key[(base + i) % 4];
    CHECK(memcmp(a, b, n) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ws_frame_t f, p;
    uint8_t ctl;
    int require_mask, rc;
    uint64_t max;

    if (size < 1)
        return 0;
    ctl = data[0];
    data++;
    size--;
    require_mask = ctl & 1;
    /* Limits around every length-encoding edge, or none. */
    switch ((ctl >> 1) & 7) {
    case 0:
        max = UINT64_MAX;
        break;
    case 1:
        max = 0;
        break;
    case 2:
        max = 125;
        break;
    case 3:
        max = 126;
        break;
    case 4:
        max = 65535;
        break;
    case 5:
        max = 65536;
        break;
    case 6:
        max = (uint64_t)1 << (ctl >> 4 << 2);
        break;
    default:
        max = 16u << 20;
        break;
    }

    rc = ws_frame_parse(data, size, require_mask, max, &f);
    switch (rc) {
    case TS_OK:
        check_ok(data, size, require_mask, max, &f);
        break;
    case TS_ERR_AGAIN:
        CHECK(size < WS_MAX_HEADER);
        break;
    case TS_ERR_PROTO:
        CHECK(f.close_code == WS_CLOSE_PROTOCOL_ERROR && f.error != NULL);
        break;
    case TS_ERR_LIMIT:
        CHECK(f.close_code == WS_CLOSE_TOO_BIG && f.error != NULL && f.payload_len > max);
        break;
    default:
        abort();
    }

    /* Prefixes: AGAIN until the answer is known, then the same answer. */
    for (size_t k = 0; k < size && k < WS_MAX_HEADER; k++) {
        int prc = ws_frame_parse(data, k, require_mask, max, &p);
        if (prc == TS_ERR_AGAIN)
            continue;
        CHECK(prc == rc);
        if (rc == TS_OK)
            CHECK(p.header_len == f.header_len && p.payload_len == f.payload_len);
        else
            CHECK(p.close_code == f.close_code);
    }

    check_mask(rc == TS_OK ? data + f.header_len : data, rc == TS_OK ? size - f.header_len : size,
               ctl);
    return 0;
}
