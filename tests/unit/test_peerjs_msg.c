/*
 * test_peerjs_msg.c — the PeerJS protocol as data (peerjs_msg.c), through a
 * recording fake transport: what a client message is relayed as (src
 * rewritten, extra members dropped), what each kind of bad input is
 * answered with, the server's own texts byte for byte, the upgrade query
 * (escapes, repeats, limits), the bus encoding and the home of an id.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "signaling/peerjs.h"
#include "ws/frame.h"

typedef struct {
    char sent[4][256];
    int nsent;
    unsigned close_code;
    int nclose;
    char relayed[4][512];
    char relay_dst[4][64];
    int relay_type[4];
    int nrelay;
} rec_t;

static void rec_send(void *ctx, const char *text, size_t len)
{
    rec_t *r = ctx;
    assert_true(r->nsent < 4 && len < 256);
    memcpy(r->sent[r->nsent], text, len);
    r->sent[r->nsent++][len] = '\0';
}

static void rec_close(void *ctx, unsigned code, const char *reason)
{
    rec_t *r = ctx;
    (void)reason;
    r->close_code = code;
    r->nclose++;
}

static int rec_relay(void *ctx, int type, const char *dst, size_t dst_len, const char *text,
                     size_t len)
{
    rec_t *r = ctx;
    assert_true(r->nrelay < 4 && len < 512 && dst_len < 64);
    memcpy(r->relayed[r->nrelay], text, len);
    r->relayed[r->nrelay][len] = '\0';
    memcpy(r->relay_dst[r->nrelay], dst, dst_len);
    r->relay_dst[r->nrelay][dst_len] = '\0';
    r->relay_type[r->nrelay++] = type;
    return TS_OK;
}

static void rec_log(void *ctx, const char *what)
{
    (void)ctx;
    (void)what;
}

static const ts_peerjs_io_t rec_io = {rec_send, rec_close, rec_relay, rec_log};

static int feed(rec_t *r, const char *msg)
{
    memset(r, 0, sizeof(*r));
    return ts_peerjs_on_message(&rec_io, r, "me", 2, (const uint8_t *)msg, strlen(msg));
}

static void test_relay_rewrites(void **state)
{
    rec_t r;
    (void)state;

    assert_int_equal(feed(&r, "{\"payload\":{\"a\":[1,\"x\"]},\"dst\":\"you\",\"extra\":true,"
                              "\"src\":\"forged\",\"type\":\"OFFER\"}"),
                     TS_OK);
    assert_int_equal(r.nrelay, 1);
    assert_int_equal(r.nsent + r.nclose, 0);
    assert_int_equal(r.relay_type[0], TS_PEERJS_OFFER);
    assert_string_equal(r.relay_dst[0], "you");
    assert_string_equal(r.relayed[0],
                        "{\"type\":\"OFFER\",\"src\":\"me\",\"dst\":\"you\",\"payload\":{\"a\":[1,"
                        "\"x\"]}}");
    assert_int_equal(feed(&r, "{\"type\":\"LEAVE\",\"dst\":\"you\"}"), TS_OK);
    assert_string_equal(r.relayed[0], "{\"type\":\"LEAVE\",\"src\":\"me\",\"dst\":\"you\"}");
    assert_int_equal(feed(&r, "{\"type\":\"HEARTBEAT\"}"), TS_OK);
    assert_int_equal(r.nrelay + r.nsent + r.nclose, 0);
}

static void test_bad_input(void **state)
{
    static const struct {
        const char *msg;
        unsigned close; /* 0: the socket stays open */
    } cases[] = {
        {"", WS_CLOSE_POLICY},
        {"nope", WS_CLOSE_POLICY},
        {"[]", WS_CLOSE_POLICY},
        {"{\"type\":1}", WS_CLOSE_POLICY},
        {"{\"dst\":\"x\"}", WS_CLOSE_POLICY},
        {"{\"type\":\"OFFER\",\"dst\":\"x\"", WS_CLOSE_POLICY},
        {"{\"type\":\"DANCE\",\"dst\":\"x\"}", 0},
        {"{\"type\":\"OPEN\"}", 0},
        {"{\"type\":\"OFFER\"}", 0},
        {"{\"type\":\"OFFER\",\"dst\":\"\"}", 0},
        {"{\"type\":\"OFFER\",\"dst\":7}", 0},
    };
    rec_t r;
    (void)state;

    for (size_t i = 0; i < TS_ARRAY_SIZE(cases); i++) {
        assert_int_not_equal(feed(&r, cases[i].msg), TS_OK);
        assert_int_equal(r.nrelay, 0);
        assert_int_equal(r.nsent, 1);
        assert_non_null(strstr(r.sent[0], "{\"type\":\"ERROR\",\"payload\":{\"msg\":"));
        assert_int_equal(r.nclose, cases[i].close ? 1 : 0);
        if (cases[i].close)
            assert_int_equal(r.close_code, cases[i].close);
    }
}

static void test_too_big(void **state)
{
    size_t n = TS_PEERJS_MAX_MESSAGE + 1;
    uint8_t *big = malloc(n);
    rec_t r;
    (void)state;

    memset(big, ' ', n);
    memset(&r, 0, sizeof(r));
    assert_int_equal(ts_peerjs_on_message(&rec_io, &r, "me", 2, big, n), TS_ERR_LIMIT);
    assert_int_equal(r.close_code, WS_CLOSE_TOO_BIG);
    assert_int_equal(r.nsent + r.nrelay, 0);
    free(big);
}

static void test_server_texts(void **state)
{
    size_t len;
    char *t;
    (void)state;

    t = ts_peerjs_text(TS_PEERJS_EXPIRE, "gone", 4, "me", 2, &len);
    assert_string_equal(t, "{\"type\":\"EXPIRE\",\"src\":\"gone\",\"dst\":\"me\"}");
    assert_int_equal(len, strlen(t));
    free(t);
    t = ts_peerjs_error_text(TS_PEERJS_ID_TAKEN, TS_PEERJS_E_ID_TAKEN, &len);
    assert_string_equal(t, "{\"type\":\"ID-TAKEN\",\"payload\":{\"msg\":\"ID is taken\"}}");
    free(t);
}

static void test_query(void **state)
{
    ts_peerjs_params_t p;
    char q[1024];
    (void)state;

    strcpy(q, "key=peerjs&id=9a3f-x&token=abc123&version=1.5.5");
    assert_int_equal(ts_peerjs_parse_query(q, strlen(q), &p), TS_OK);
    assert_string_equal(p.key, "peerjs");
    assert_string_equal(p.id, "9a3f-x");
    assert_string_equal(p.token, "abc123");
    assert_int_equal(p.id_len, 6);

    strcpy(q, "id=a&id=b%20c+d%zz&token=%C3%A9&key=k");
    assert_int_equal(ts_peerjs_parse_query(q, strlen(q), &p), TS_OK);
    assert_string_equal(p.id, "b c d%zz");
    assert_string_equal(p.token, "\xc3\xa9");

    static const char *const bad[] = {
        "key=k&id=i",           "key=k&token=t",          "id=i&token=t",
        "key=k&id=&token=t",    "key=k&id&token=t",       "key=k&id=%00&token=t",
        "key=k&id=%ff&token=t", "key=k&id=a%0ab&token=t",
    };
    for (size_t i = 0; i < TS_ARRAY_SIZE(bad); i++)
        assert_int_equal(ts_peerjs_parse_query(bad[i], strlen(bad[i]), &p), TS_ERR_PROTO);

    /* 256 bytes is the most an id may have. */
    snprintf(q, sizeof(q), "key=k&token=t&id=%0256d", 0);
    assert_int_equal(ts_peerjs_parse_query(q, strlen(q), &p), TS_OK);
    assert_int_equal(p.id_len, 256);
    snprintf(q, sizeof(q), "key=k&token=t&id=%0257d", 0);
    assert_int_equal(ts_peerjs_parse_query(q, strlen(q), &p), TS_ERR_PROTO);
}

static void test_bus_encoding_and_home(void **state)
{
    ts_peerjs_hdr_t h = {.conn = 42,
                         .body_len = 3,
                         .id_len = 2,
                         .aux_len = 1,
                         .op = TS_PEERJS_OP_RELAY,
                         .type = TS_PEERJS_OFFER};
    ts_bus_msg_t *m = ts_peerjs_msg_new(TS_PEERJS_MSG_HOME, 0, &h, "id", "a", "txt");
    ts_peerjs_view_t v;
    int seen[4] = {0, 0, 0, 0};
    char id[16];
    (void)state;

    assert_int_equal(ts_peerjs_msg_view(m, &v), TS_OK);
    assert_int_equal(v.h.conn, 42);
    assert_memory_equal(v.id, "id", 2);
    assert_memory_equal(v.aux, "a", 1);
    assert_memory_equal(v.body, "txt", 3);
    m->len--;
    assert_int_equal(ts_peerjs_msg_view(m, &v), TS_ERR_PROTO);
    ts_bus_msg_free(m);

    /* The same id always has the same home, and ids spread over workers. */
    for (int i = 0; i < 200; i++) {
        int n = snprintf(id, sizeof(id), "peer-%d", i);
        int home = ts_peerjs_home(id, (size_t)n, 4);
        assert_true(home >= 0 && home < 4);
        assert_int_equal(home, ts_peerjs_home(id, (size_t)n, 4));
        seen[home]++;
    }
    for (int i = 0; i < 4; i++)
        assert_true(seen[i] > 20);
    assert_int_equal(ts_peerjs_home("x", 1, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relay_rewrites), cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_too_big),        cmocka_unit_test(test_server_texts),
        cmocka_unit_test(test_query),          cmocka_unit_test(test_bus_encoding_and_home),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
