/*
 * minimal_echo — the least a WebSocket echo server can do, as the benchmark's
 * "kernel limit" reference: one thread, epoll (level-triggered), accept, answer
 * the upgrade with 101 and Sec-WebSocket-Accept, then for each read: unmask every
 * complete frame into one output buffer (same opcode and FIN, unmasked header)
 * and write all of it with a single write. Ping → Pong, Close → Close back.
 * No UTF-8 check, no limits beyond a 1 MiB frame, no timers: what is left is
 * the kernel's TCP work plus one pass over the bytes. The server skeleton is
 * bench/common/miniserver.h (shared with bench/signaling/minimal_relay.c);
 * the echo is what is here.
 *
 *   minimal_echo [-a 127.0.0.1] [-p PORT]
 *
 * With -p 0 (the default) the kernel picks the port. Prints
 * "listening on 127.0.0.1:PORT" on stdout once it accepts connections.
 */
#define _GNU_SOURCE /* accept4, strcasestr */
#include "../common/miniserver.h"

/* Echo every complete frame in buf[0..len) with one write; keep the rest. */
static int on_frames(ms_conn_t *c, uint8_t *buf, size_t len)
{
    uint8_t *p = buf, *end = buf + len, *w = ms_wbuf;
    size_t hl, plen;
    int op, r;

    while ((r = ms_frame(p, end, &op, &hl, &plen)) > 0) {
        if (op == 10) { /* Pong: nothing to do */
            p += hl + 4 + plen;
            continue;
        }
        /* Same FIN and opcode (Ping becomes Pong), unmasked. */
        *w++ = (uint8_t)((p[0] & 0x80) | (op == 9 ? 10 : op));
        if (plen < 126) {
            *w++ = (uint8_t)plen;
        } else if (plen < 65536) {
            *w++ = 126, *w++ = (uint8_t)(plen >> 8), *w++ = (uint8_t)plen;
        } else {
            *w++ = 127;
            for (int i = 7; i >= 0; i--) {
                *w++ = (uint8_t)((uint64_t)plen >> (8 * i));
            }
        }
        wsb_mask(w, p + hl + 4, plen, p + hl, 0);
        w += plen;
        p += hl + 4 + plen;
        if (op == 8) {
            c->closing = 1;
            break;
        }
    }
    if (r < 0 || ms_keep(c, p, (size_t)(end - p)) != 0) {
        return -1;
    }
    if (w > ms_wbuf) {
        return ms_write(c, ms_wbuf, (size_t)(w - ms_wbuf));
    }
    return c->closing ? -1 : 0;
}

static const ms_ops_t echo_ops = {
    .name = "minimal_echo",
    .stall_reads = 1, /* the client waits for its echoes: stop reading it until they are out */
    .frames = on_frames,
};

int main(int argc, char **argv)
{
    return ms_main(argc, argv, &echo_ops);
}
