/*
 * minimal_relay — the least a signaling relay can do, as the benchmark's
 * "kernel floor" reference: one thread, epoll (level-triggered), accept,
 * answer the WebSocket upgrade, send {"type":"OPEN"} (so PeerJS-shaped clients
 * start), then forward every frame a client sends, unmasked and otherwise
 * unchanged, to its partner. No JSON, no ids in the messages, no limits beyond
 * a 1 MiB frame, no timers: what is left is the kernel's loopback TCP work
 * (one read and one write per relayed message, or per batch) plus one pass
 * over the bytes. The server skeleton is bench/common/miniserver.h (shared
 * with bench/ws/minimal_echo.c); the pairing and forwarding are what is here.
 *
 * Partners: the upgrade's query carries id=PREFIX-N (bench/signaling/sigload.c
 * names clients so); N and N^1 are partners. Bytes for a partner that is not
 * connected are dropped.
 *
 *   minimal_relay [-a 127.0.0.1] [-p PORT]
 *
 * With -p 0 (the default) the kernel picks the port. Prints
 * "listening on ADDR:PORT" on stdout once it accepts connections.
 */
#define _GNU_SOURCE /* accept4, strcasestr */
#include "../common/miniserver.h"

#define SLOTS    (1u << 17) /* client numbers modulo this; more than one run holds */
#define OPEN_MSG "{\"type\":\"OPEN\"}"

static ms_conn_t *slots[SLOTS];

/* The slot of "id=PREFIX-N" in the request line, or -1. */
static long id_slot(const char *req)
{
    const char *id = strstr(req, "id="), *e, *dash;

    if (id == NULL || (e = strpbrk(id, "& ")) == NULL) {
        return -1;
    }
    for (dash = e; dash > id && dash[-1] != '-'; dash--) {
    }
    if (dash == id) {
        return -1;
    }
    return strtol(dash, NULL, 10) % SLOTS;
}

static int on_request(ms_conn_t *c, const char *req)
{
    return (c->slot = id_slot(req)) < 0 ? -1 : 0;
}

/* The 101 is out: OPEN, and the client takes its slot. */
static int on_upgraded(ms_conn_t *c)
{
    uint8_t open_frame[2 + sizeof(OPEN_MSG)];

    open_frame[0] = 0x81;
    open_frame[1] = (uint8_t)(sizeof(OPEN_MSG) - 1);
    memcpy(open_frame + 2, OPEN_MSG, sizeof(OPEN_MSG) - 1);
    if (write(c->fd, open_frame, sizeof(open_frame) - 1) != (ssize_t)sizeof(open_frame) - 1) {
        return -1;
    }
    slots[c->slot] = c; /* an earlier run's client with this number is forgotten */
    return 0;
}

static void on_closed(ms_conn_t *c)
{
    if (c->slot >= 0 && slots[c->slot] == c) {
        slots[c->slot] = NULL;
    }
}

/* Forward every complete frame in buf[0..len) to the partner with one write. */
static int on_frames(ms_conn_t *c, uint8_t *buf, size_t len)
{
    uint8_t *p = buf, *end = buf + len, *w = ms_wbuf;
    ms_conn_t *peer = slots[c->slot ^ 1];
    size_t hl, plen;
    int op, r;

    while ((r = ms_frame(p, end, &op, &hl, &plen)) > 0) {
        if (op == 8) {
            return -1;
        }
        if (op >= 9) { /* Ping, Pong: not forwarded */
            p += hl + 4 + plen;
            continue;
        }
        memcpy(w, p, hl);
        w[1] &= 0x7f;
        wsb_mask(w + hl, p + hl + 4, plen, p + hl, 0);
        w += hl + plen;
        p += hl + 4 + plen;
    }
    if (r < 0 || ms_keep(c, p, (size_t)(end - p)) != 0) {
        return -1;
    }
    if (w > ms_wbuf && peer != NULL) {
        /* A broken partner is closed by its own next event, not here: it may
         * still be in this round's event list. */
        (void)ms_write(peer, ms_wbuf, (size_t)(w - ms_wbuf));
    }
    return 0;
}

static const ms_ops_t relay_ops = {
    .name = "minimal_relay",
    .stall_reads = 0, /* a client's partner is another socket: keep reading */
    .request = on_request,
    .upgraded = on_upgraded,
    .frames = on_frames,
    .closed = on_closed,
};

int main(int argc, char **argv)
{
    return ms_main(argc, argv, &relay_ops);
}
