/*
 * fuzz_peerjs.c — the PeerJS message handler on arbitrary bytes, with a
 * fake transport in place of the WebSocket and the bus, and the upgrade
 * query parser. The first byte picks which. Checked:
 *   - a message is either accepted (TS_OK: nothing sent to the client,
 *     nothing closed) or refused; a refusal sends one ERROR (valid JSON,
 *     {"type":"ERROR","payload":{"msg":...}}) or closes with 1008/1009;
 *     nothing is ever closed twice;
 *   - every relayed text is a JSON object whose type is the relayed type,
 *     whose src is the sender's own id whatever the input said, whose dst
 *     is the dst handed to the bus, with no other members than type, src,
 *     dst and payload; it survives the bus encoding unchanged;
 *   - a parsed query gives three non-empty, NUL-terminated, printable UTF-8
 *     values of at most TS_PEERJS_MAX_ID bytes.
 * A message that is not valid UTF-8 is skipped: the WebSocket layer never
 * delivers one (it closes with 1007), and json_scan relies on that.
 */
#include "core/common.h"
#include "signaling/json_scan.h"
#include "signaling/peerjs.h"
#include "ws/frame.h"
#include "ws/utf8.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static const char SELF[] = "self-id";

typedef struct {
    int sends, closes, relays;
    unsigned code;
} fake_t;

static void fake_send(void *ctx, const char *text, size_t len)
{
    fake_t *f = ctx;
    json_t *j = json_loadb(text, len, 0, NULL);

    CHECK(json_is_object(j));
    CHECK(strcmp(json_string_value(json_object_get(j, "type")), "ERROR") == 0);
    CHECK(json_is_string(json_object_get(json_object_get(j, "payload"), "msg")));
    json_decref(j);
    f->sends++;
}

static void fake_close(void *ctx, unsigned code, const char *reason)
{
    fake_t *f = ctx;

    CHECK(reason != NULL);
    CHECK(code == WS_CLOSE_POLICY || code == WS_CLOSE_TOO_BIG);
    CHECK(f->closes == 0);
    f->closes++;
    f->code = code;
}

/* The relayed text when jansson cannot read it: the payload travels as the
 * client sent it, and JSON allows what jansson refuses (numbers it cannot
 * hold, \u0000 in a name; see fuzz_json_scan.c). Check the top level with
 * json_scan instead: type, src, dst and payload, nothing else. */
static void check_relay_scan(const json_error_t *err, int type, const char *dst, size_t dst_len,
                             const char *text, size_t len)
{
    ts_json_member_t m[8];
    size_t n, l;
    char s[TS_PEERJS_MAX_ID + 1];
    const ts_json_member_t *v;

    CHECK(strstr(err->text, "too big") != NULL || strstr(err->text, "overflow") != NULL ||
          strstr(err->text, "NUL") != NULL);
    CHECK(ts_json_scan(text, len, m, 8, &n) == TS_OK);
    for (size_t i = 0; i < n; i++)
        CHECK(!m[i].key_escaped && ((m[i].key_len == 4 && memcmp(m[i].key, "type", 4) == 0) ||
                                    (m[i].key_len == 3 && memcmp(m[i].key, "src", 3) == 0) ||
                                    (m[i].key_len == 3 && memcmp(m[i].key, "dst", 3) == 0) ||
                                    (m[i].key_len == 7 && memcmp(m[i].key, "payload", 7) == 0)));
    CHECK((v = ts_json_find(m, n, "type")) != NULL && ts_json_string(v, s, sizeof(s), &l) == TS_OK);
    CHECK(strcmp(s, ts_peerjs_type_name(type)) == 0);
    CHECK((v = ts_json_find(m, n, "src")) != NULL && ts_json_string(v, s, sizeof(s), &l) == TS_OK);
    CHECK(strcmp(s, SELF) == 0);
    CHECK((v = ts_json_find(m, n, "dst")) != NULL && ts_json_string(v, s, sizeof(s), &l) == TS_OK);
    CHECK(l == dst_len && memcmp(s, dst, dst_len) == 0);
}

static int fake_relay(void *ctx, int type, const char *dst, size_t dst_len, const char *text,
                      size_t len)
{
    fake_t *f = ctx;
    json_error_t err;
    json_t *j = json_loadb(text, len, JSON_ALLOW_NUL, &err);
    const char *key;
    json_t *v;
    ts_peerjs_hdr_t h = {.body_len = (uint32_t)len,
                         .id_len = (uint16_t)dst_len,
                         .aux_len = sizeof(SELF) - 1,
                         .op = TS_PEERJS_OP_RELAY,
                         .type = (uint8_t)type};
    ts_bus_msg_t *m;
    ts_peerjs_view_t view;

    CHECK(type >= TS_PEERJS_OFFER && type <= TS_PEERJS_EXPIRE);
    CHECK(dst_len > 0 && dst_len <= TS_PEERJS_MAX_ID);
    if (j == NULL) {
        check_relay_scan(&err, type, dst, dst_len, text, len);
    } else {
        CHECK(json_is_object(j));
        CHECK(strcmp(json_string_value(json_object_get(j, "type")), ts_peerjs_type_name(type)) ==
              0);
        CHECK(strcmp(json_string_value(json_object_get(j, "src")), SELF) == 0);
        v = json_object_get(j, "dst");
        CHECK(json_string_length(v) == dst_len && memcmp(json_string_value(v), dst, dst_len) == 0);
        json_object_foreach(j, key, v)
        {
            CHECK(strcmp(key, "type") == 0 || strcmp(key, "src") == 0 || strcmp(key, "dst") == 0 ||
                  strcmp(key, "payload") == 0);
        }
        json_decref(j);
    }

    m = ts_peerjs_msg_new(1, 0, &h, dst, SELF, text);
    CHECK(ts_peerjs_msg_view(m, &view) == TS_OK);
    CHECK(view.h.body_len == len && memcmp(view.body, text, len) == 0);
    CHECK(view.h.id_len == dst_len && memcmp(view.id, dst, dst_len) == 0);
    CHECK(ts_peerjs_home(dst, dst_len, 4) >= 0 && ts_peerjs_home(dst, dst_len, 4) < 4);
    ts_bus_msg_free(m);
    f->relays++;
    return TS_OK;
}

static void fake_log(void *ctx, const char *what)
{
    CHECK(ctx != NULL && what != NULL);
}

static const ts_peerjs_io_t fake_io = {fake_send, fake_close, fake_relay, fake_log};

static void check_value(const char *s, size_t len)
{
    CHECK(len > 0 && len <= TS_PEERJS_MAX_ID && strlen(s) == len);
    CHECK(ws_utf8_valid((const uint8_t *)s, len));
    for (size_t i = 0; i < len; i++)
        CHECK((uint8_t)s[i] >= 0x20 && s[i] != 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fake_t f = {0, 0, 0, 0};
    ts_peerjs_params_t p;
    int rc;

    if (size == 0)
        return 0;
    if (data[0] & 1) {
        if (ts_peerjs_parse_query((const char *)data + 1, size - 1, &p) == TS_OK) {
            check_value(p.key, p.key_len);
            check_value(p.id, p.id_len);
            check_value(p.token, p.token_len);
        }
        return 0;
    }
    /* ws.c closes with 1007 before a text message that is not UTF-8 gets
     * here, and the JSON reader relies on that (json_scan.h). */
    if (!ws_utf8_valid(data + 1, size - 1))
        return 0;
    rc = ts_peerjs_on_message(&fake_io, &f, SELF, sizeof(SELF) - 1, data + 1, size - 1);
    if (rc == TS_OK) {
        CHECK(f.sends == 0 && f.closes == 0);
    } else {
        CHECK(f.relays == 0 || f.closes == 1); /* relayed, then the bus was full: n/a here */
        CHECK(f.sends == 1 || f.closes == 1);
        CHECK(f.sends <= 1);
    }
    return 0;
}
