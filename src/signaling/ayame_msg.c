/*
 * ayame_msg.c — one Ayame client: its JSON messages in, actions out through
 * cl->io (ayame.h). No sockets here, so the fuzzer runs it on bytes.
 *
 * Messages are dispatched by type through a table. Relayed messages
 * (offer, answer, candidate) are parsed only to learn their type and then
 * forwarded as the bytes that came in, as OpenAyame does. Where OpenAyame
 * closes the socket without a word on bad input, tsunagi first sends
 * {"type":"error","reason":"..."} saying what was wrong, then closes with
 * 1008; nothing of it reaches the other member.
 */
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/common.h"
#include "core/log.h"
#include "signaling/ayame.h"
#include "signaling/json_scan.h"
#include "ws/frame.h"

#define TS_AYAME_ICE_CAP 4096

/* ------------------------------------------------------------ output -- */

static void ts_ayame_send_json(ts_ayame_client_t *cl, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT);

    if (text != NULL) {
        cl->io->send(cl, text, strlen(text));
        free(text);
    }
    json_decref(obj);
}

void ts_ayame_say_error(ts_ayame_client_t *cl, const char *why)
{
    ts_log_debug("conn=" TS_ID_FMT " ayame: %s", TS_ID_ARG(cl->id), why);
    ts_ayame_send_json(cl, json_pack("{s:s, s:s}", "type", "error", "reason", why));
    ts_ayame_leave(cl);
}

void ts_ayame_fail(ts_ayame_client_t *cl, unsigned code, const char *why)
{
    ts_ayame_say_error(cl, why);
    cl->io->close(cl, code, why);
}

static void ts_ayame_error(ts_ayame_client_t *cl, const char *why)
{
    ts_ayame_fail(cl, WS_CLOSE_POLICY, why);
}

/* --signaling-rate: every message counts, pongs too, before it is parsed.
 * Past the rate the client hears why and is closed (1008). */
static int ts_ayame_rate_ok(ts_ayame_client_t *cl)
{
    const ts_config_t *cfg = cl->io->config(cl);

    if (ts_ratelimit_take(&cl->rate, cfg->signaling_rate, cfg->signaling_burst, cl->io->now(cl)))
        return 1;
    cl->rate_limited = 1;
    ts_ayame_error(cl, "rate limit exceeded");
    return 0;
}

/* reject, then close as OpenAyame does (normal closure). */
static void ts_ayame_reject(ts_ayame_client_t *cl, const char *reason)
{
    ts_log_debug("conn=" TS_ID_FMT " ayame: reject: %s", TS_ID_ARG(cl->id), reason);
    ts_ayame_send_json(cl, json_pack("{s:s, s:s}", "type", "reject", "reason", reason));
    ts_ayame_leave(cl);
    cl->io->close(cl, WS_CLOSE_NORMAL, "rejected");
}

static void ts_ayame_send_accept(ts_ayame_client_t *cl, int exist)
{
    char ours[TS_AYAME_ICE_CAP];
    const char *ice = cl->ice;
    const char *flag = exist ? "true" : "false";
    size_t cap, n;
    char *out;

    if (ice == NULL) {
        ice = ours;
        if (cl->io->ice_servers(cl, ours, sizeof(ours)) == 0)
            snprintf(ours, sizeof(ours), "[]");
    }
    /* ice and authz are JSON already (ours, or re-encoded by jansson). */
    cap = strlen(ice) + (cl->authz ? strlen(cl->authz) : 0) + 200;
    out = ts_malloc(cap);
    n = (size_t)snprintf(out, cap,
                         "{\"type\":\"accept\",\"connectionId\":\"%s\",\"isExistClient\":%s,"
                         "\"isExistUser\":%s,\"iceServers\":%s",
                         cl->connection_id, flag, flag, ice);
    if (cl->authz != NULL)
        n += (size_t)snprintf(out + n, cap - n, ",\"authzMetadata\":%s", cl->authz);
    n += (size_t)snprintf(out + n, cap - n, "}");
    cl->io->send(cl, out, n);
    free(out);
}

/* ------------------------------------------------------------- state -- */

static void ts_ayame_make_ulid(char out[27])
{
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    struct timespec ts;
    uint8_t b[16];
    uint64_t ms;
    int bit = 0;

    clock_gettime(CLOCK_REALTIME, &ts);
    ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(ms >> (40 - 8 * i));
    if (RAND_bytes(b + 6, 10) != 1)
        memset(b + 6, 0, 10);
    /* 128 bits as 26 base-32 digits, the first carrying 3 bits. */
    for (int i = 0; i < 26; i++) {
        int width = i == 0 ? 3 : 5, v = 0;
        for (int k = 0; k < width; k++, bit++)
            v = v << 1 | ((b[bit / 8] >> (7 - bit % 8)) & 1);
        out[i] = b32[v];
    }
    out[26] = '\0';
}

void ts_ayame_client_init(ts_ayame_client_t *cl, const ts_ayame_io_t *io, uint64_t id, int nworkers)
{
    memset(cl, 0, sizeof(*cl));
    cl->io = io;
    cl->id = id;
    cl->nworkers = nworkers;
    cl->last_pong = io->now(cl);
    ts_ratelimit_init(&cl->rate, io->config(cl)->signaling_burst, cl->last_pong);
    ts_ayame_make_ulid(cl->connection_id);
}

void ts_ayame_client_free(ts_ayame_client_t *cl)
{
    free(cl->room_id);
    free(cl->client_id);
    free(cl->ice);
    free(cl->authz);
    cl->room_id = cl->client_id = cl->ice = cl->authz = NULL;
}

static int ts_ayame_post_home(ts_ayame_client_t *cl, uint32_t type)
{
    size_t len = strlen(cl->room_id);

    return cl->io->post(cl, ts_ayame_home(cl->room_id, len, cl->nworkers), type, 0, cl->room_id,
                        len);
}

void ts_ayame_leave(ts_ayame_client_t *cl)
{
    if (cl->state == TS_AYAME_JOINING || cl->state == TS_AYAME_JOINED) {
        if (ts_ayame_post_home(cl, TS_AYAME_MSG_LEAVE) != TS_OK)
            ts_log_warn("ayame: bus full: leave of conn=" TS_ID_FMT " dropped", TS_ID_ARG(cl->id));
    }
    cl->state = TS_AYAME_DONE;
}

static void ts_ayame_join(ts_ayame_client_t *cl)
{
    cl->state = TS_AYAME_JOINING;
    if (ts_ayame_post_home(cl, TS_AYAME_MSG_JOIN) != TS_OK) {
        cl->state = TS_AYAME_DONE;
        ts_ayame_reject(cl, "InternalServerError");
    }
}

/* ---------------------------------------------------------- register -- */

/* A member of the register message that must be a string when present:
 * 1 and *out set, 0 absent, -1 another type (error sent). */
static int ts_ayame_opt_string(ts_ayame_client_t *cl, json_t *msg, const char *name,
                               const char **out)
{
    json_t *v = json_object_get(msg, name);
    char why[96];

    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        snprintf(why, sizeof(why), "register: %s must be a string", name);
        ts_ayame_error(cl, why);
        return -1;
    }
    *out = json_string_value(v);
    return 1;
}

/* The authn webhook's request (OpenAyame's field names). */
static char *ts_ayame_authn_body(ts_ayame_client_t *cl, json_t *msg, const char *key)
{
    static const char *const passed[] = {"ayameClient", "libwebrtc", "environment"};
    json_t *body = json_pack("{s:s, s:s, s:s}", "roomId", cl->room_id, "clientId", cl->client_id,
                             "connectionId", cl->connection_id);
    json_t *meta = json_object_get(msg, "authnMetadata");
    char *text;

    if (key != NULL)
        json_object_set_new(body, "signalingKey", json_string(key));
    if (meta != NULL)
        json_object_set(body, "authnMetadata", meta);
    for (size_t i = 0; i < TS_ARRAY_SIZE(passed); i++) {
        json_t *v = json_object_get(msg, passed[i]);
        if (json_is_string(v))
            json_object_set(body, passed[i], v);
    }
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return text;
}

static int ts_ayame_key_ok(const char *want, const char *got)
{
    size_t n = strlen(want);

    return got != NULL && strlen(got) == n && CRYPTO_memcmp(want, got, n) == 0;
}

static void ts_ayame_on_register(ts_ayame_client_t *cl, json_t *msg, const char *raw, size_t len)
{
    const ts_config_t *cfg = cl->io->config(cl);
    const char *room, *client, *key, *legacy, *unused;
    char *body;
    int rc;

    if (cl->state != TS_AYAME_NEW) {
        ts_ayame_error(cl, "register: already registered");
        return;
    }
    if ((rc = ts_ayame_opt_string(cl, msg, "roomId", &room)) < 0)
        return;
    if (rc == 0 || room[0] == '\0') {
        ts_ayame_error(cl, "register: roomId is missing");
        return;
    }
    if (ts_ayame_opt_string(cl, msg, "clientId", &client) < 0 ||
        ts_ayame_opt_string(cl, msg, "signalingKey", &key) < 0 ||
        ts_ayame_opt_string(cl, msg, "key", &legacy) < 0 ||
        ts_ayame_opt_string(cl, msg, "ayameClient", &unused) < 0 ||
        ts_ayame_opt_string(cl, msg, "libwebrtc", &unused) < 0 ||
        ts_ayame_opt_string(cl, msg, "environment", &unused) < 0)
        return;
    if (strlen(room) > TS_AYAME_MAX_ID || (client != NULL && strlen(client) > TS_AYAME_MAX_ID)) {
        ts_ayame_error(cl, "register: roomId or clientId longer than 255 bytes");
        return;
    }
    if (key == NULL)
        key = legacy; /* signalingKey wins over the older key */
    cl->room_id = ts_strdup(room);
    cl->client_id = ts_strdup(client != NULL && client[0] != '\0' ? client : cl->connection_id);
    ts_log_debug("conn=" TS_ID_FMT " ayame: register room=%s client=%s", TS_ID_ARG(cl->id),
                 cl->room_id, cl->client_id);

    if (cfg->signaling_key != NULL && !ts_ayame_key_ok(cfg->signaling_key, key)) {
        cl->state = TS_AYAME_DONE;
        ts_ayame_reject(cl, "InvalidSignalingKey");
        return;
    }
    if (cfg->authn_webhook_url == NULL) {
        ts_ayame_join(cl);
        return;
    }
    body = ts_ayame_authn_body(cl, msg, key);
    cl->state = TS_AYAME_AUTHN;
    if (body == NULL || cl->io->authn(cl, body, strlen(body)) != TS_OK) {
        cl->state = TS_AYAME_DONE;
        ts_ayame_reject(cl, "InternalServerError");
    }
    free(body);
}

void ts_ayame_on_authn(ts_ayame_client_t *cl, long status, const char *body, size_t len)
{
    json_t *resp, *allowed, *v;

    if (cl->state != TS_AYAME_AUTHN)
        return;
    cl->state = TS_AYAME_DONE;
    if (status != 200) {
        ts_log_debug("conn=" TS_ID_FMT " ayame: authn webhook answered %ld", TS_ID_ARG(cl->id),
                     status);
        ts_ayame_reject(cl, "InternalServerError");
        return;
    }
    resp = json_loadb(body, len, 0, NULL);
    allowed = json_object_get(resp, "allowed");
    if (!json_is_boolean(allowed)) {
        /* OpenAyame dereferences the missing field; a reject is the answer. */
        ts_log_debug("conn=" TS_ID_FMT " ayame: authn webhook reply without allowed",
                     TS_ID_ARG(cl->id));
        json_decref(resp);
        ts_ayame_reject(cl, "InternalServerError");
        return;
    }
    if (!json_is_true(allowed)) {
        v = json_object_get(resp, "reason");
        ts_ayame_reject(cl, json_is_string(v) ? json_string_value(v) : "InternalServerError");
        json_decref(resp);
        return;
    }
    v = json_object_get(resp, "iceServers");
    if (json_is_array(v))
        cl->ice = json_dumps(v, JSON_COMPACT);
    v = json_object_get(resp, "authzMetadata");
    if (v != NULL)
        cl->authz = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(resp);
    ts_ayame_join(cl);
}

/* ------------------------------------------------------------ others -- */

static void ts_ayame_on_pong(ts_ayame_client_t *cl, json_t *msg, const char *raw, size_t len)
{
    cl->last_pong = cl->io->now(cl);
}

static void ts_ayame_on_relayed(ts_ayame_client_t *cl, json_t *msg, const char *raw, size_t len)
{
    if (cl->state == TS_AYAME_DONE)
        return; /* closing: drop */
    if (cl->state != TS_AYAME_JOINED) {
        ts_ayame_error(cl, cl->state == TS_AYAME_NEW ? "register first"
                                                     : "wait for accept before signaling");
        return;
    }
    if (cl->peer == 0)
        return; /* alone in the room: OpenAyame drops it too */
    if (cl->io->post(cl, -1, TS_AYAME_MSG_RELAY, cl->peer, raw, len) != TS_OK)
        ts_ayame_fail(cl, 1013, "server busy, try again") /* Try Again Later */;
}

static void ts_ayame_on_bye(ts_ayame_client_t *cl, json_t *msg, const char *raw, size_t len)
{
    ts_ayame_leave(cl);
    cl->io->close(cl, WS_CLOSE_NORMAL, "bye");
}

/* ayame-web-sdk in standalone mode says "connected" and then closes. */
static void ts_ayame_on_connected(ts_ayame_client_t *cl, json_t *msg, const char *raw, size_t len)
{
}

typedef void (*ts_ayame_handler_t)(ts_ayame_client_t *cl, json_t *msg, const char *raw, size_t len);

/* Only register reads its fields through a jansson tree; the messages of a
 * call in progress (offer, answer, candidate, pong) are checked by the scan
 * alone and relayed as the bytes that came. */
static const struct {
    const char *type;
    ts_ayame_handler_t fn;
    int tree;
} ts_ayame_handlers[] = {
    {"register", ts_ayame_on_register, 1}, {"pong", ts_ayame_on_pong, 0},
    {"offer", ts_ayame_on_relayed, 0},     {"answer", ts_ayame_on_relayed, 0},
    {"candidate", ts_ayame_on_relayed, 0}, {"bye", ts_ayame_on_bye, 0},
    {"connected", ts_ayame_on_connected, 0},
};

#define TS_AYAME_MAX_MEMBERS 32

/* Say what is wrong with a message the scan refused; jansson words it. */
static void ts_ayame_bad_json(ts_ayame_client_t *cl, const char *data, size_t len, int rc)
{
    json_error_t err;
    json_t *msg;
    char why[160];

    if (rc == TS_ERR_LIMIT) {
        ts_ayame_error(cl, "a message nests deeper than 64 levels or has over 32 members");
        return;
    }
    msg = json_loadb(data, len, 0, &err);
    if (msg == NULL) {
        snprintf(why, sizeof(why), "invalid JSON: %.100s", err.text);
        ts_ayame_error(cl, why);
    } else if (!json_is_object(msg)) {
        ts_ayame_error(cl, "a message is a JSON object with a string type");
    } else {
        ts_ayame_error(cl, "invalid JSON");
    }
    json_decref(msg);
}

void ts_ayame_on_message(ts_ayame_client_t *cl, const char *data, size_t len)
{
    ts_json_member_t members[TS_AYAME_MAX_MEMBERS];
    const ts_json_member_t *type;
    size_t n, tlen;
    char t[16], why[160];
    int rc;

    if (cl->state == TS_AYAME_DONE || !ts_ayame_rate_ok(cl))
        return;
    rc = ts_json_scan(data, len, members, TS_ARRAY_SIZE(members), &n);
    if (rc != TS_OK) {
        ts_ayame_bad_json(cl, data, len, rc);
        return;
    }
    type = ts_json_find(members, n, "type");
    if (type == NULL || type->kind != TS_JSON_STRING) {
        ts_ayame_error(cl, "a message is a JSON object with a string type");
        return;
    }
    if (ts_json_string(type, t, sizeof(t), &tlen) != TS_OK)
        tlen = 0, t[0] = '\0'; /* too long to be a type we know */
    for (size_t i = 0; i < TS_ARRAY_SIZE(ts_ayame_handlers); i++) {
        json_t *msg = NULL;
        if (strcmp(t, ts_ayame_handlers[i].type) != 0)
            continue;
        if (ts_ayame_handlers[i].tree && (msg = json_loadb(data, len, 0, NULL)) == NULL) {
            /* Valid JSON that jansson cannot hold (a huge number). */
            ts_ayame_error(cl, "a number in the message is out of range");
            return;
        }
        ts_ayame_handlers[i].fn(cl, msg, data, len);
        json_decref(msg);
        return;
    }
    for (size_t i = 0; i < tlen; i++) {
        if ((unsigned char)t[i] < 0x20 || (unsigned char)t[i] > 0x7e) {
            t[0] = '\0'; /* not echoed: the reason must stay printable */
            break;
        }
    }
    snprintf(why, sizeof(why), "unknown message type \"%s\"", t);
    ts_ayame_error(cl, why);
}

/* --------------------------------------------------------- from bus -- */

void ts_ayame_on_notify(ts_ayame_client_t *cl, uint64_t src, const void *data, size_t len)
{
    ts_ayame_notify_t n;

    if (len != sizeof(n))
        return;
    memcpy(&n, data, sizeof(n));
    switch (n.kind) {
    case TS_AYAME_N_ACCEPT:
        if (cl->state != TS_AYAME_JOINING)
            return;
        cl->state = TS_AYAME_JOINED;
        cl->peer = n.peer;
        cl->accepted = 1;
        ts_ayame_send_accept(cl, n.peer != 0);
        return;
    case TS_AYAME_N_FULL:
        if (cl->state != TS_AYAME_JOINING)
            return;
        cl->state = TS_AYAME_DONE; /* not a member: nothing to leave */
        ts_ayame_reject(cl, "full");
        return;
    case TS_AYAME_N_PEER:
        if (cl->state == TS_AYAME_JOINED)
            cl->peer = n.peer;
        return;
    case TS_AYAME_N_BYE:
        if (cl->state != TS_AYAME_JOINED && cl->state != TS_AYAME_JOINING)
            return;
        /* The room is gone already: nothing to leave. */
        cl->state = TS_AYAME_DONE;
        cl->io->send(cl, "{\"type\":\"bye\"}", 14);
        cl->io->close(cl, WS_CLOSE_NORMAL, "peer left");
        return;
    }
}

void ts_ayame_on_relay(ts_ayame_client_t *cl, uint64_t src, const char *text, size_t len)
{
    /* Only the current peer's messages: anything else is late. */
    if (cl->state == TS_AYAME_JOINED && src != 0 && src == cl->peer)
        cl->io->send(cl, text, len);
}

char *ts_ayame_disconnect_body(const ts_ayame_client_t *cl)
{
    json_t *body;
    char *text;

    if (!cl->accepted)
        return NULL;
    body = json_pack("{s:s, s:s, s:s}", "roomId", cl->room_id, "clientId", cl->client_id,
                     "connectionId", cl->connection_id);
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return text;
}
