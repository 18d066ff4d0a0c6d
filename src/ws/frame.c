/*
 * frame.c — the RFC 6455 frame header codec and payload masking. The
 * contract is in frame.h.
 *
 * The parser judges each field as soon as the byte that holds it has
 * arrived: a reserved opcode is refused on the first byte, a bad control
 * frame or a missing mask on the second, an oversized length as soon as the
 * length field is complete — before the masking key, and long before any
 * payload is buffered.
 */
#include "ws/frame.h"

#include <string.h>

#include "core/common.h"

static int frame_error(ws_frame_t *f, int rc, uint16_t code, const char *why)
{
    f->close_code = code;
    f->error = why;
    return rc;
}

/* Opcodes 3-7 are reserved for further data frames, B-F for control frames. */
static int opcode_known(unsigned op)
{
    return op <= WS_OP_BINARY || (op >= WS_OP_CLOSE && op <= WS_OP_PONG);
}

int ws_frame_parse(const uint8_t *buf, size_t len, int require_mask, uint64_t max_payload,
                   ws_frame_t *f)
{
    size_t need;
    unsigned len7;
    uint64_t plen;

    memset(f, 0, sizeof(*f));
    if (len < 1)
        return TS_ERR_AGAIN;
    f->fin = buf[0] >> 7;
    f->rsv = (buf[0] >> 4) & 0x7;
    f->opcode = buf[0] & 0xf;
    if (!opcode_known(f->opcode))
        return frame_error(f, TS_ERR_PROTO, WS_CLOSE_PROTOCOL_ERROR, "reserved opcode");
    if (f->opcode >= WS_OP_CLOSE && !f->fin)
        return frame_error(f, TS_ERR_PROTO, WS_CLOSE_PROTOCOL_ERROR, "fragmented control frame");
    if (len < 2)
        return TS_ERR_AGAIN;

    f->masked = buf[1] >> 7;
    len7 = buf[1] & 0x7f;
    if (f->opcode >= WS_OP_CLOSE && len7 > WS_MAX_CONTROL_PAYLOAD)
        return frame_error(f, TS_ERR_PROTO, WS_CLOSE_PROTOCOL_ERROR,
                           "control frame over 125 bytes");
    if (require_mask && !f->masked)
        return frame_error(f, TS_ERR_PROTO, WS_CLOSE_PROTOCOL_ERROR, "unmasked client frame");

    /*
     * A length that could have been encoded in fewer bytes is accepted: RFC
     * 6455 asks senders for the minimal encoding but gives receivers nothing
     * to gain by refusing it, and browsers and Autobahn never send one.
     */
    need = 2;
    if (len7 < 126) {
        plen = len7;
    } else if (len7 == 126) {
        need = 4;
        if (len < need)
            return TS_ERR_AGAIN;
        plen = (uint64_t)buf[2] << 8 | buf[3];
    } else {
        need = 10;
        if (len < need)
            return TS_ERR_AGAIN;
        plen = 0;
        for (int i = 2; i < 10; i++)
            plen = plen << 8 | buf[i];
        if (plen >> 63)
            return frame_error(f, TS_ERR_PROTO, WS_CLOSE_PROTOCOL_ERROR,
                               "64-bit length with the top bit set");
    }
    f->payload_len = plen;
    if (plen > max_payload)
        return frame_error(f, TS_ERR_LIMIT, WS_CLOSE_TOO_BIG, "frame over the size limit");

    if (f->masked) {
        if (len < need + 4)
            return TS_ERR_AGAIN;
        memcpy(f->mask, buf + need, 4);
        need += 4;
    }
    f->header_len = (uint8_t)need;
    return TS_OK;
}

/*
 * The payload byte at position i is XORed with mask[i % 4]. The key written
 * out three times lets an 8-byte load at (offset % 4) pick up the key
 * rotated to start at offset; that 64-bit word serves every 8-byte step,
 * aligned or not. memcpy keeps unaligned loads legal and the compiler turns
 * the 32-byte loop into vector code.
 */
void ws_mask_apply(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset)
{
    uint8_t keys[12];
    const uint8_t *key;
    uint64_t k, w0, w1, w2, w3;
    size_t i = 0;

    memcpy(keys, mask, 4);
    memcpy(keys + 4, mask, 4);
    memcpy(keys + 8, mask, 4);
    key = keys + (offset & 3);
    memcpy(&k, key, 8);

    for (; i + 32 <= len; i += 32) {
        memcpy(&w0, data + i, 8);
        memcpy(&w1, data + i + 8, 8);
        memcpy(&w2, data + i + 16, 8);
        memcpy(&w3, data + i + 24, 8);
        w0 ^= k;
        w1 ^= k;
        w2 ^= k;
        w3 ^= k;
        memcpy(data + i, &w0, 8);
        memcpy(data + i + 8, &w1, 8);
        memcpy(data + i + 16, &w2, 8);
        memcpy(data + i + 24, &w3, 8);
    }
    for (; i + 8 <= len; i += 8) {
        memcpy(&w0, data + i, 8);
        w0 ^= k;
        memcpy(data + i, &w0, 8);
    }
    /* i is a multiple of 8, so the key still starts at key[0]. */
    for (size_t j = 0; i < len; i++, j++)
        data[i] ^= key[j];
}

size_t ws_frame_header_write(uint8_t *out, int fin, int rsv, int opcode, uint64_t payload_len,
                             const uint8_t *mask)
{
    size_t n;
    uint8_t mbit = mask ? 0x80 : 0;

    out[0] = (uint8_t)((fin ? 0x80 : 0) | (rsv & 0x7) << 4 | (opcode & 0xf));
    if (payload_len < 126) {
        out[1] = mbit | (uint8_t)payload_len;
        n = 2;
    } else if (payload_len <= 0xffff) {
        out[1] = mbit | 126;
        out[2] = (uint8_t)(payload_len >> 8);
        out[3] = (uint8_t)payload_len;
        n = 4;
    } else {
        out[1] = mbit | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
        n = 10;
    }
    if (mask) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

/*
 * RFC 6455 7.4: 1000-1003 and 1007-1011 are defined; 1004 is reserved and
 * 1005, 1006 and 1015 must never appear on the wire. 1012 (service restart),
 * 1013 (try again later) and 1014 (bad gateway) were registered with IANA
 * after the RFC and are sent by browsers and proxies, so they are accepted.
 * 3000-3999 are for libraries and frameworks, 4000-4999 for applications.
 */
int ws_close_code_valid(unsigned code)
{
    if (code >= 1000 && code <= 1003)
        return 1;
    if (code >= 1007 && code <= 1014)
        return 1;
    return code >= 3000 && code <= 4999;
}
