/*
 * peerjs_msg.c — the PeerJS protocol as data: a client's message checked
 * and rewritten for its destination, the server's own messages, the query
 * of the upgrade request, and the bus messages between workers. Nothing
 * here touches a socket; what a message makes happen goes through the
 * ts_peerjs_io_t the caller passes (the real connection, or the fuzzer).
 */
#include "signaling/json_scan.h"
#include "signaling/peerjs.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "core/common.h"
#include "ws/frame.h"
#include "ws/utf8.h"

static const char *const ts_peerjs_type_names[TS_PEERJS_TYPE_COUNT] = {
    "OPEN", "ID-TAKEN", "ERROR", "HEARTBEAT", "OFFER", "ANSWER", "CANDIDATE", "LEAVE", "EXPIRE",
};

const char *ts_peerjs_type_name(int type)
{
    if (type < 0 || type >= TS_PEERJS_TYPE_COUNT)
        return "?";
    return ts_peerjs_type_names[type];
}

/* ------------------------------------------------------------- bus -- */

ts_bus_msg_t *ts_peerjs_msg_new(uint32_t bus_type, uint64_t dst, const ts_peerjs_hdr_t *h,
                                const char *id, const char *aux, const char *body)
{
    uint32_t len = (uint32_t)sizeof(*h) + h->id_len + h->aux_len + h->body_len;
    ts_bus_msg_t *m = ts_bus_msg_new(bus_type, dst, 0, NULL, len);
    char *p = m->data;

    memcpy(p, h, sizeof(*h));
    p += sizeof(*h);
    if (h->id_len > 0)
        memcpy(p, id, h->id_len);
    p += h->id_len;
    if (h->aux_len > 0)
        memcpy(p, aux, h->aux_len);
    p += h->aux_len;
    if (h->body_len > 0)
        memcpy(p, body, h->body_len);
    return m;
}

int ts_peerjs_msg_view(const ts_bus_msg_t *m, ts_peerjs_view_t *v)
{
    if (m->len < sizeof(v->h))
        return TS_ERR_PROTO;
    memcpy(&v->h, m->data, sizeof(v->h));
    if ((uint64_t)sizeof(v->h) + v->h.id_len + v->h.aux_len + v->h.body_len != m->len)
        return TS_ERR_PROTO;
    v->id = m->data + sizeof(v->h);
    v->aux = v->id + v->h.id_len;
    v->body = v->aux + v->h.aux_len;
    return TS_OK;
}

/*
 * Ids are chosen by clients, so the hash that picks an id's home worker and
 * its bucket there is keyed with a secret drawn at start-up: nobody can
 * pile ids into one chain without knowing it.
 */
static uint64_t ts_peerjs_seed;
static pthread_once_t ts_peerjs_seed_once = PTHREAD_ONCE_INIT;

static void ts_peerjs_seed_init(void)
{
    if (RAND_bytes((unsigned char *)&ts_peerjs_seed, sizeof(ts_peerjs_seed)) != 1)
        ts_peerjs_seed = ts_now_ms() * 0x9e3779b97f4a7c15ULL;
}

uint64_t ts_peerjs_hash(const char *id, size_t len)
{
    uint64_t h;

    pthread_once(&ts_peerjs_seed_once, ts_peerjs_seed_init);
    h = 0xcbf29ce484222325ULL ^ ts_peerjs_seed;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)id[i];
        h *= 0x100000001b3ULL;
    }
    /* splitmix64's finaliser spreads every input bit over the output. */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

int ts_peerjs_home(const char *id, size_t len, int nworkers)
{
    if (nworkers <= 1)
        return 0;
    return (int)((ts_peerjs_hash(id, len) >> 32) % (uint64_t)nworkers);
}

/* ----------------------------------------------------- server texts -- */

static char *ts_peerjs_dump(json_t *obj, size_t *len)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);

    json_decref(obj);
    if (s == NULL)
        abort(); /* only out of memory: every string in obj is valid UTF-8 */
    *len = strlen(s);
    return s;
}

char *ts_peerjs_text(int type, const char *src, size_t src_len, const char *dst, size_t dst_len,
                     size_t *len)
{
    json_t *obj = json_object();

    json_object_set_new(obj, "type", json_string(ts_peerjs_type_name(type)));
    if (src != NULL)
        json_object_set_new(obj, "src", json_stringn(src, src_len));
    if (dst != NULL)
        json_object_set_new(obj, "dst", json_stringn(dst, dst_len));
    return ts_peerjs_dump(obj, len);
}

char *ts_peerjs_error_text(int type, const char *msg, size_t *len)
{
    json_t *obj = json_object();

    json_object_set_new(obj, "type", json_string(ts_peerjs_type_name(type)));
    json_object_set_new(obj, "payload", json_pack("{s:s}", "msg", msg));
    return ts_peerjs_dump(obj, len);
}

/* ------------------------------------------------- client messages -- */

/* A client message as the scanner sliced it (json_scan.h): nothing is
 * copied or rebuilt but the envelope of a relayed message. */
typedef struct {
    const ts_peerjs_io_t *io;
    void *ctx;
    const char *self;
    size_t self_len;
    int type;
    const ts_json_member_t *members;
    size_t nmembers;
} ts_peerjs_in_t;

#define TS_PEERJS_MAX_MEMBERS 32

/* Tell the client what was wrong; a message that is not even a JSON object
 * with a type ends the connection (1008), anything else only gets the ERROR. */
static int ts_peerjs_reject(const ts_peerjs_in_t *in, const char *msg, int fatal)
{
    size_t len;
    char *text = ts_peerjs_error_text(TS_PEERJS_ERROR, msg, &len);

    in->io->log(in->ctx, msg);
    in->io->send(in->ctx, text, len);
    free(text);
    if (fatal)
        in->io->close(in->ctx, WS_CLOSE_POLICY, msg);
    return TS_ERR_PROTO;
}

/* PeerServer's alive check counts HEARTBEATs; any valid message counts
 * here, and the caller notes the time. */
static int ts_peerjs_on_heartbeat(ts_peerjs_in_t *in)
{
    TS_UNUSED(in);
    return TS_OK;
}

static void ts_peerjs_put(char *out, size_t *o, const char *s, size_t n)
{
    memcpy(out + *o, s, n);
    *o += n;
}

/*
 * OFFER, ANSWER, CANDIDATE, LEAVE, EXPIRE: {type, src, dst, payload} with
 * src replaced by the sender's own id (a forged src never leaves) and any
 * other member dropped, as PeerServer does. The payload (the SDP, the
 * candidate) is copied as the bytes the client sent: the scan proved it is
 * valid JSON.
 */
static int ts_peerjs_on_relay(ts_peerjs_in_t *in)
{
    const ts_json_member_t *dst = ts_json_find(in->members, in->nmembers, "dst");
    const ts_json_member_t *payload = ts_json_find(in->members, in->nmembers, "payload");
    const char *type = ts_peerjs_type_name(in->type);
    char id[TS_PEERJS_MAX_ID + 1];
    size_t id_len, cap, o = 0, q;
    char *text;
    int rc;

    if (dst == NULL || ts_json_string(dst, id, sizeof(id), &id_len) != TS_OK || id_len == 0)
        return ts_peerjs_reject(in, "Message has no valid dst", 0);
    cap = 64 + strlen(type) + 6 * in->self_len + dst->val_len + (payload ? payload->val_len : 0);
    text = ts_malloc(cap);
    ts_peerjs_put(text, &o, "{\"type\":\"", 9);
    ts_peerjs_put(text, &o, type, strlen(type));
    ts_peerjs_put(text, &o, "\",\"src\":", 8);
    q = ts_json_quote(text + o, cap - o, in->self, in->self_len);
    o += q;
    ts_peerjs_put(text, &o, ",\"dst\":", 7);
    ts_peerjs_put(text, &o, dst->val, dst->val_len);
    if (payload != NULL) {
        ts_peerjs_put(text, &o, ",\"payload\":", 11);
        ts_peerjs_put(text, &o, payload->val, payload->val_len);
    }
    ts_peerjs_put(text, &o, "}", 1);
    rc = in->io->relay(in->ctx, in->type, id, id_len, text, o);
    free(text);
    if (rc != TS_OK) {
        in->io->log(in->ctx, "bus full: closing the sender");
        in->io->close(in->ctx, WS_CLOSE_POLICY, "server busy");
    }
    return rc;
}

static const struct {
    int type;
    int (*handler)(ts_peerjs_in_t *in);
} ts_peerjs_handlers[] = {
    {TS_PEERJS_HEARTBEAT, ts_peerjs_on_heartbeat}, {TS_PEERJS_OFFER, ts_peerjs_on_relay},
    {TS_PEERJS_ANSWER, ts_peerjs_on_relay},        {TS_PEERJS_CANDIDATE, ts_peerjs_on_relay},
    {TS_PEERJS_LEAVE, ts_peerjs_on_relay},         {TS_PEERJS_EXPIRE, ts_peerjs_on_relay},
};

int ts_peerjs_on_message(const ts_peerjs_io_t *io, void *ctx, const char *self, size_t self_len,
                         const uint8_t *data, size_t len)
{
    ts_json_member_t members[TS_PEERJS_MAX_MEMBERS];
    ts_peerjs_in_t in = {io, ctx, self, self_len, -1, members, 0};
    const ts_json_member_t *type;
    char name[16];
    size_t name_len;
    int rc;

    if (len > TS_PEERJS_MAX_MESSAGE) {
        io->log(ctx, "message too big");
        io->close(ctx, WS_CLOSE_TOO_BIG, "message too big");
        return TS_ERR_LIMIT;
    }
    rc = ts_json_scan((const char *)data, len, members, TS_ARRAY_SIZE(members), &in.nmembers);
    if (rc == TS_ERR_LIMIT)
        return ts_peerjs_reject(&in, "Invalid message: nested too deep or too many members", 1);
    if (rc != TS_OK)
        return ts_peerjs_reject(&in, "Invalid message: not a JSON object", 1);
    type = ts_json_find(members, in.nmembers, "type");
    if (type == NULL || type->kind != TS_JSON_STRING)
        return ts_peerjs_reject(&in, "Invalid message: no type", 1);
    if (ts_json_string(type, name, sizeof(name), &name_len) == TS_OK) {
        for (size_t i = 0; i < TS_ARRAY_SIZE(ts_peerjs_handlers); i++) {
            if (strcmp(name, ts_peerjs_type_names[ts_peerjs_handlers[i].type]) == 0) {
                in.type = ts_peerjs_handlers[i].type;
                return ts_peerjs_handlers[i].handler(&in);
            }
        }
    }
    return ts_peerjs_reject(&in, "Unknown message type", 0);
}

/* ----------------------------------------------------------- query -- */

static int ts_peerjs_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode as URLSearchParams does ('+' is a space; a bad escape stays as
 * it is), and keep only printable UTF-8: ids end up in JSON and log lines. */
static int ts_peerjs_decode(const char *s, size_t n, char *out, size_t *out_len)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (o == TS_PEERJS_MAX_ID)
            return TS_ERR_PROTO;
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && i + 2 < n && ts_peerjs_hex(s[i + 1]) >= 0 &&
                   ts_peerjs_hex(s[i + 2]) >= 0) {
            c = (char)(ts_peerjs_hex(s[i + 1]) << 4 | ts_peerjs_hex(s[i + 2]));
            i += 2;
        }
        if ((uint8_t)c < 0x20 || c == 0x7f)
            return TS_ERR_PROTO;
        out[o++] = c;
    }
    out[o] = '\0';
    *out_len = o;
    if (o == 0 || !ws_utf8_valid((const uint8_t *)out, o))
        return TS_ERR_PROTO;
    return TS_OK;
}

int ts_peerjs_parse_query(const char *q, size_t len, ts_peerjs_params_t *p)
{
    const char *seen[3] = {NULL, NULL, NULL};
    size_t seen_len[3] = {0, 0, 0};
    static const char *const names[3] = {"key", "id", "token"};
    size_t i = 0;

    while (i < len) {
        const char *pair = q + i, *amp = memchr(pair, '&', len - i);
        size_t plen = amp != NULL ? (size_t)(amp - pair) : len - i;
        const char *eq = memchr(pair, '=', plen);
        size_t nlen = eq != NULL ? (size_t)(eq - pair) : plen;

        /* The last of repeated names wins, as in Object.fromEntries(). */
        for (int k = 0; k < 3; k++) {
            if (nlen == strlen(names[k]) && memcmp(pair, names[k], nlen) == 0) {
                seen[k] = eq != NULL ? eq + 1 : pair + plen;
                seen_len[k] = eq != NULL ? plen - nlen - 1 : 0;
            }
        }
        i += plen + 1;
    }
    if (seen[0] == NULL || seen[1] == NULL || seen[2] == NULL)
        return TS_ERR_PROTO;
    if (ts_peerjs_decode(seen[0], seen_len[0], p->key, &p->key_len) != TS_OK ||
        ts_peerjs_decode(seen[1], seen_len[1], p->id, &p->id_len) != TS_OK ||
        ts_peerjs_decode(seen[2], seen_len[2], p->token, &p->token_len) != TS_OK)
        return TS_ERR_PROTO;
    return TS_OK;
}
