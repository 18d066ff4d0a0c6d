/*
 * frame.h — the RFC 6455 frame codec: parse a frame header from buffered
 * bytes, unmask payload bytes as they arrive, write frame headers. Pure: no
 * I/O, no allocation.
 *
 * The header is parsed once it is complete (2 to 14 bytes). The payload is
 * not part of the parse: the connection streams it, unmasking with
 * ws_mask_apply() at the right offset, so a 16 MiB frame is validated (UTF-8)
 * as its bytes arrive, not after it is whole.
 */
#ifndef TS_WS_FRAME_H
#define TS_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define WS_OP_CONT   0x0
#define WS_OP_TEXT   0x1
#define WS_OP_BINARY 0x2
#define WS_OP_CLOSE  0x8
#define WS_OP_PING   0x9
#define WS_OP_PONG   0xA

#define WS_RSV1 0x4 /* in ws_frame_t.rsv: bit 2 = RSV1, bit 1 = RSV2, bit 0 = RSV3 */
#define WS_RSV2 0x2
#define WS_RSV3 0x1

#define WS_MAX_HEADER 14
#define WS_MAX_CONTROL_PAYLOAD 125

/* Close codes (RFC 6455 section 7.4.1). */
#define WS_CLOSE_NORMAL         1000
#define WS_CLOSE_GOING_AWAY     1001
#define WS_CLOSE_PROTOCOL_ERROR 1002
#define WS_CLOSE_UNSUPPORTED    1003
#define WS_CLOSE_NO_STATUS      1005 /* never sent on the wire */
#define WS_CLOSE_ABNORMAL       1006 /* never sent on the wire */
#define WS_CLOSE_INVALID_DATA   1007
#define WS_CLOSE_POLICY         1008
#define WS_CLOSE_TOO_BIG        1009
#define WS_CLOSE_EXTENSION      1010
#define WS_CLOSE_INTERNAL       1011

typedef struct {
    uint8_t fin;
    uint8_t rsv;    /* the three RSV bits, RSV1 highest (WS_RSV1) */
    uint8_t opcode;
    uint8_t masked;
    uint8_t mask[4];
    uint8_t header_len; /* 2..14 */
    uint64_t payload_len;
    uint16_t close_code; /* on TS_ERR_PROTO / TS_ERR_LIMIT: the code to close with */
    const char *error;   /* on error: a short static reason for the log */
} ws_frame_t;

/*
 * Parse the frame header at buf[0..len).
 *   TS_OK         f is filled; f->header_len bytes were the header.
 *   TS_ERR_AGAIN  the header is not complete yet.
 *   TS_ERR_PROTO  f->close_code = 1002: reserved opcode, control frame with
 *                 FIN clear or a payload over 125 bytes, 64-bit length with
 *                 the top bit set, or (require_mask) an unmasked frame.
 *   TS_ERR_LIMIT  f->close_code = 1009: payload_len > max_payload.
 * RSV bits are reported, not judged: whether RSV1 is allowed depends on the
 * negotiated extensions and on the message state, which the caller knows.
 */
int ws_frame_parse(const uint8_t *buf, size_t len, int require_mask, uint64_t max_payload,
                   ws_frame_t *f);

/* XOR data with the mask, as bytes offset.. of the payload (offset lets the
 * payload be unmasked piecewise as it arrives). In place. */
void ws_mask_apply(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset);

/* Write a frame header into out (WS_MAX_HEADER bytes of room); mask NULL for
 * a server frame. Returns the header length. rsv as in ws_frame_t. */
size_t ws_frame_header_write(uint8_t *out, int fin, int rsv, int opcode, uint64_t payload_len,
                             const uint8_t *mask);

/* Is code valid in a Close frame received from a peer (RFC 6455 7.4)? */
int ws_close_code_valid(unsigned code);

#endif
