/*
 * fuzz_ayame.c — the Ayame protocol logic (signaling/ayame_msg.c and the
 * room table, signaling/room.c) on arbitrary traffic from four clients,
 * with a fake transport: sends are checked and dropped, closes are noted,
 * and the bus is an in-memory queue the input decides when to deliver,
 * across three fake workers (each with its own room table).
 *
 * The input is a list of records, [op][length: 2 bytes][payload]; client
 * c = (op >> 3) & 3:
 *
 *   op & 7 = 0  client c sends payload as a text message (not valid UTF-8:
 *               the WebSocket layer fails client c, as ws.c would)
 *        1     client c's connection closes (a new connection takes its place)
 *        2     the authn webhook of client c answers: payload[0] odd: 200,
 *               else 500 when payload[0] is 2, else 0 (timeout); the rest is
 *               the body
 *        3     deliver everything on the bus
 *        4     the configuration: payload[0] bit 0 sets --signaling-key k,
 *               bit 1 the authn webhook, bit 2 makes starting it fail
 *        5     the WebSocket layer fails client c (too big)
 *        6     deliver one message from the bus
 *        7     client c sends a register for room payload[0] & 3 (a short
 *               cut to the interesting states), the key when payload[1] odd
 *
 * Checked beyond crashes, leaks and sanitizer reports:
 *   - everything sent to a client is a JSON object with a string type;
 *   - nothing is sent to a client after its close, whatever reaches it;
 *   - bus posts go to the room's home worker;
 *   - when every connection has closed and the bus is drained, every room
 *     table is empty (nothing leaks a member).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/config.h"
#include "core/log.h"
#include "signaling/ayame.h"
#include "signaling/json_scan.h"
#include "ws/utf8.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define NCLIENTS 4
#define NWORKERS 3
#define BUS_CAP  64

typedef struct {
    ts_ayame_client_t cl; /* first */
    int open;             /* the connection exists */
    int closed;           /* close was asked: nothing more may be sent */
    int authn;            /* a webhook is "running" */
} fake_t;

typedef struct {
    int worker; /* -1: to connection dst */
    uint32_t type;
    uint64_t dst, src;
    size_t len;
    char *data;
} bus_msg_t;

static fake_t clients[NCLIENTS];
static ts_ayame_rooms_t rooms[NWORKERS];
static bus_msg_t bus[BUS_CAP];
static size_t bus_head, bus_len;
static int bus_lost; /* a post failed: a LEAVE may be lost, rooms may keep members */
static uint64_t next_id;
static ts_config_t config;
static int authn_fails;

static void fake_send(ts_ayame_client_t *cl, const char *text, size_t len)
{
    fake_t *f = (fake_t *)cl;
    json_error_t err;
    json_t *j = json_loadb(text, len, JSON_ALLOW_NUL, &err);

    CHECK(f->open && !f->closed);
    if (j == NULL) {
        /* A relayed message travels as the client sent it, and JSON allows
         * what jansson refuses (numbers it cannot hold, \u0000 in a name;
         * see fuzz_json_scan.c): check it with json_scan instead. */
        ts_json_member_t m[64]; /* ayame_msg.c relays at most 32 */
        size_t n;
        const ts_json_member_t *t;
        CHECK(strstr(err.text, "too big") != NULL || strstr(err.text, "overflow") != NULL ||
              strstr(err.text, "NUL") != NULL);
        CHECK(ts_json_scan(text, len, m, 64, &n) == TS_OK);
        CHECK((t = ts_json_find(m, n, "type")) != NULL && t->kind == TS_JSON_STRING);
        return;
    }
    CHECK(json_is_object(j) && json_is_string(json_object_get(j, "type")));
    json_decref(j);
}

static void fake_close(ts_ayame_client_t *cl, unsigned code, const char *reason)
{
    CHECK(code >= 1000 && code < 5000 && reason != NULL);
    ((fake_t *)cl)->closed = 1;
}

static int bus_push(int worker, uint32_t type, uint64_t dst, uint64_t src, const void *data,
                    size_t len)
{
    bus_msg_t *m;

    if (bus_len == BUS_CAP) {
        bus_lost = 1;
        return TS_ERR_LIMIT;
    }
    m = &bus[(bus_head + bus_len++) % BUS_CAP];
    m->worker = worker;
    m->type = type;
    m->dst = dst;
    m->src = src;
    m->len = len;
    m->data = ts_malloc(len + 1);
    memcpy(m->data, data, len);
    m->data[len] = '\0';
    return TS_OK;
}

static int fake_post(ts_ayame_client_t *cl, int worker, uint32_t type, uint64_t dst,
                     const void *data, size_t len)
{
    CHECK(worker < NWORKERS);
    return bus_push(worker, type, dst, cl->id, data, len);
}

static int room_post(void *ctx, uint32_t type, uint64_t dst, uint64_t src, const void *data,
                     size_t len)
{
    return bus_push(-1, type, dst, src, data, len);
}

static int fake_authn(ts_ayame_client_t *cl, const char *body, size_t len)
{
    json_t *j = json_loadb(body, len, 0, NULL);

    CHECK(json_is_string(json_object_get(j, "roomId")));
    CHECK(json_is_string(json_object_get(j, "clientId")));
    json_decref(j);
    if (authn_fails)
        return TS_ERR;
    ((fake_t *)cl)->authn = 1;
    return TS_OK;
}

static size_t fake_ice(ts_ayame_client_t *cl, char *out, size_t cap)
{
    return (size_t)snprintf(out, cap, "[{\"urls\":[\"stun:127.0.0.1:3478\"]}]");
}

static const ts_config_t *fake_config(ts_ayame_client_t *cl)
{
    return &config;
}

static uint64_t fake_now(ts_ayame_client_t *cl)
{
    return 0;
}

static const ts_ayame_io_t fake_io = {
    .send = fake_send,
    .close = fake_close,
    .post = fake_post,
    .authn = fake_authn,
    .ice_servers = fake_ice,
    .config = fake_config,
    .now = fake_now,
};

static fake_t *find(uint64_t id)
{
    for (int i = 0; i < NCLIENTS; i++) {
        if (clients[i].open && clients[i].cl.id == id)
            return &clients[i];
    }
    return NULL;
}

static void deliver_one(void)
{
    bus_msg_t m = bus[bus_head];
    fake_t *f;

    bus_head = (bus_head + 1) % BUS_CAP;
    bus_len--;
    if (m.type == TS_AYAME_MSG_JOIN || m.type == TS_AYAME_MSG_LEAVE) {
        CHECK(m.worker >= 0);
        CHECK(m.worker == ts_ayame_home(m.data, m.len, NWORKERS));
        if (m.type == TS_AYAME_MSG_JOIN)
            ts_ayame_rooms_join(&rooms[m.worker], m.src, m.data, m.len, room_post, NULL);
        else
            ts_ayame_rooms_leave(&rooms[m.worker], m.src, m.data, m.len, room_post, NULL);
    } else if ((f = find(m.dst)) != NULL) {
        if (m.type == TS_AYAME_MSG_NOTIFY) {
            ts_ayame_on_notify(&f->cl, m.src, m.data, m.len);
        } else {
            CHECK(m.type == TS_AYAME_MSG_RELAY);
            ts_ayame_on_relay(&f->cl, m.src, m.data, m.len);
        }
    }
    free(m.data);
}

static void drain(void)
{
    /* Bounded: every delivery can post at most two more. */
    for (int i = 0; i < 10000 && bus_len > 0; i++)
        deliver_one();
}

static void open_client(int c)
{
    fake_t *f = &clients[c];

    memset(f, 0, sizeof(*f));
    ts_ayame_client_init(&f->cl, &fake_io, ((uint64_t)(c % NWORKERS) << 48) | ++next_id, NWORKERS);
    f->open = 1;
}

static void close_client(int c)
{
    fake_t *f = &clients[c];

    ts_ayame_leave(&f->cl);
    ts_ayame_client_free(&f->cl);
    f->open = 0;
}

static void register_short(fake_t *f, const uint8_t *p, size_t n)
{
    char msg[128];
    int len = snprintf(msg, sizeof(msg), "{\"type\":\"register\",\"roomId\":\"r%d\"%s}",
                       n > 0 ? p[0] & 3 : 0, n > 1 && (p[1] & 1) ? ",\"key\":\"k\"" : "");

    ts_ayame_on_message(&f->cl, msg, (size_t)len);
}

static void run_op(int op, const uint8_t *p, size_t n)
{
    fake_t *f = &clients[(op >> 3) & 3];

    /* Messages still reach a closing client here (ws.c would drop them):
     * the logic must stay silent. Only the WebSocket failure cannot come. */
    if (f->closed && (op & 7) == 5)
        return;
    switch (op & 7) {
    case 0:
        /* ws.c delivers only valid UTF-8 text (json_scan relies on it): it
         * fails the client with 1007 instead, as op 5 does. */
        if (!ws_utf8_valid(p, n)) {
            if (!f->closed)
                ts_ayame_say_error(&f->cl, "invalid UTF-8 in a text message");
            f->closed = 1;
            break;
        }
        ts_ayame_on_message(&f->cl, (const char *)p, n);
        break;
    case 1:
        close_client((op >> 3) & 3);
        open_client((op >> 3) & 3);
        break;
    case 2:
        if (f->authn) {
            long status = n == 0 ? 0 : (p[0] & 1) ? 200 : p[0] == 2 ? 500 : 0;
            f->authn = 0;
            ts_ayame_on_authn(&f->cl, status, n > 0 ? (const char *)p + 1 : "", n ? n - 1 : 0);
        }
        break;
    case 3:
        drain();
        break;
    case 4:
        config.signaling_key = (n > 0 && (p[0] & 1)) ? "k" : NULL;
        config.authn_webhook_url = (n > 0 && (p[0] & 2)) ? "http://127.0.0.1:9/" : NULL;
        authn_fails = n > 0 && (p[0] & 4);
        break;
    case 5:
        ts_ayame_say_error(&f->cl, "message too big");
        f->closed = 1;
        break;
    case 6:
        if (bus_len > 0)
            deliver_one();
        break;
    case 7:
        register_short(f, p, n);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;

    ts_log_set_level(TS_LOG_ERROR); /* a full fake bus is expected, not news */
    memset(&config, 0, sizeof(config));
    authn_fails = 0;
    bus_lost = 0;
    for (int i = 0; i < NWORKERS; i++)
        ts_ayame_rooms_init(&rooms[i]);
    for (int c = 0; c < NCLIENTS; c++)
        open_client(c);

    while (off + 3 <= size) {
        int op = data[off];
        size_t n = (size_t)data[off + 1] << 8 | data[off + 2];
        off += 3;
        if (n > size - off)
            n = size - off;
        run_op(op, data + off, n);
        off += n;
    }

    for (int c = 0; c < NCLIENTS; c++)
        close_client(c);
    drain();
    CHECK(bus_len == 0);
    for (int i = 0; i < NWORKERS; i++) {
        CHECK(bus_lost || rooms[i].count == 0);
        ts_ayame_rooms_free(&rooms[i]);
    }
    return 0;
}
