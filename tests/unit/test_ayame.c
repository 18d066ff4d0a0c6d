/* Ayame: the room table (room.c) and the protocol logic (ayame_msg.c) with
 * a fake transport that records what would be sent, closed and posted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "core/config.h"
#include "signaling/ayame.h"

/* ------------------------------------------------------ fake world -- */

#define MAXREC 16

typedef struct {
    uint32_t type;
    int worker;
    uint64_t dst, src;
    char data[512];
    size_t len;
} rec_t;

static rec_t posts[MAXREC];
static int nposts;
static char sent[MAXREC][1024];
static int nsent;
static unsigned closed_code;
static ts_config_t cfg;
static int authn_started;

static void f_send(ts_ayame_client_t *cl, const char *text, size_t len)
{
    assert_true(nsent < MAXREC && len < sizeof(sent[0]));
    memcpy(sent[nsent], text, len);
    sent[nsent++][len] = '\0';
}

static void f_close(ts_ayame_client_t *cl, unsigned code, const char *reason)
{
    closed_code = code;
}

static int record(int worker, uint32_t type, uint64_t dst, uint64_t src, const void *data,
                  size_t len)
{
    rec_t *r = &posts[nposts++];

    assert_true(nposts <= MAXREC && len < sizeof(r->data));
    r->worker = worker;
    r->type = type;
    r->dst = dst;
    r->src = src;
    memcpy(r->data, data, len);
    r->len = len;
    return TS_OK;
}

static int f_post(ts_ayame_client_t *cl, int worker, uint32_t type, uint64_t dst, const void *data,
                  size_t len)
{
    return record(worker, type, dst, cl->id, data, len);
}

static int room_post(void *ctx, uint32_t type, uint64_t dst, uint64_t src, const void *data,
                     size_t len)
{
    return record(-1, type, dst, src, data, len);
}

static int f_authn(ts_ayame_client_t *cl, const char *body, size_t len)
{
    authn_started = 1;
    return TS_OK;
}

static size_t f_ice(ts_ayame_client_t *cl, char *out, size_t cap)
{
    return (size_t)snprintf(out, cap, "[{\"urls\":[\"stun:h:1\"]}]");
}

static const ts_config_t *f_config(ts_ayame_client_t *cl)
{
    return &cfg;
}

static uint64_t f_now(ts_ayame_client_t *cl)
{
    return 42;
}

static const ts_ayame_io_t io = {f_send, f_close, f_post, f_authn, f_ice, f_config, f_now};

static int reset(void **state)
{
    nposts = nsent = 0;
    closed_code = 0;
    authn_started = 0;
    memset(&cfg, 0, sizeof(cfg));
    return 0;
}

static void msg(ts_ayame_client_t *cl, const char *text)
{
    ts_ayame_on_message(cl, text, strlen(text));
}

static ts_ayame_notify_t notify_of(const rec_t *r)
{
    ts_ayame_notify_t n;

    assert_int_equal(r->type, TS_AYAME_MSG_NOTIFY);
    assert_int_equal(r->len, sizeof(n));
    memcpy(&n, r->data, sizeof(n));
    return n;
}

/* ------------------------------------------------------------ rooms -- */

static void test_rooms_join_full_leave(void **state)
{
    ts_ayame_rooms_t r;
    ts_ayame_notify_t n;

    ts_ayame_rooms_init(&r);
    ts_ayame_rooms_join(&r, 11, "room", 4, room_post, NULL);
    assert_int_equal(nposts, 1);
    n = notify_of(&posts[0]);
    assert_int_equal(posts[0].dst, 11);
    assert_int_equal(n.kind, TS_AYAME_N_ACCEPT);
    assert_int_equal(n.peer, 0);

    /* The waiting member hears of the joiner first, then the joiner. */
    ts_ayame_rooms_join(&r, 22, "room", 4, room_post, NULL);
    assert_int_equal(nposts, 3);
    n = notify_of(&posts[1]);
    assert_int_equal(posts[1].dst, 11);
    assert_int_equal(n.kind, TS_AYAME_N_PEER);
    assert_int_equal(n.peer, 22);
    n = notify_of(&posts[2]);
    assert_int_equal(posts[2].dst, 22);
    assert_int_equal(n.kind, TS_AYAME_N_ACCEPT);
    assert_int_equal(n.peer, 11);

    ts_ayame_rooms_join(&r, 33, "room", 4, room_post, NULL);
    n = notify_of(&posts[3]);
    assert_int_equal(posts[3].dst, 33);
    assert_int_equal(n.kind, TS_AYAME_N_FULL);
    assert_int_equal(ts_ayame_rooms_members(&r, "room", 4), 2);

    /* A stranger's leave changes nothing; a member's deletes the room. */
    ts_ayame_rooms_leave(&r, 33, "room", 4, room_post, NULL);
    assert_int_equal(nposts, 4);
    ts_ayame_rooms_leave(&r, 22, "room", 4, room_post, NULL);
    n = notify_of(&posts[4]);
    assert_int_equal(posts[4].dst, 11);
    assert_int_equal(n.kind, TS_AYAME_N_BYE);
    assert_int_equal(r.count, 0);
    ts_ayame_rooms_leave(&r, 11, "room", 4, room_post, NULL);
    assert_int_equal(nposts, 5);
    ts_ayame_rooms_free(&r);
}

static void test_rooms_many_grow_and_shrink(void **state)
{
    ts_ayame_rooms_t r;
    char id[32];

    ts_ayame_rooms_init(&r);
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(id, sizeof(id), "r%d", i);
        nposts = 0;
        ts_ayame_rooms_join(&r, (uint64_t)i + 1, id, (size_t)n, room_post, NULL);
    }
    assert_int_equal(r.count, 5000);
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(id, sizeof(id), "r%d", i);
        assert_int_equal(ts_ayame_rooms_members(&r, id, (size_t)n), 1);
        nposts = 0;
        ts_ayame_rooms_leave(&r, (uint64_t)i + 1, id, (size_t)n, room_post, NULL);
    }
    assert_int_equal(r.count, 0);
    ts_ayame_rooms_free(&r);
}

static void test_home_is_stable_and_in_range(void **state)
{
    for (int n = 1; n <= 8; n++) {
        int h = ts_ayame_home("abc", 3, n);
        assert_true(h >= 0 && h < n);
        assert_int_equal(h, ts_ayame_home("abc", 3, n));
    }
    assert_int_equal(ts_ayame_home("x", 1, 1), 0);
}

/* ------------------------------------------------------------ client -- */

static void test_register_join_accept_relay(void **state)
{
    ts_ayame_client_t cl;
    ts_ayame_notify_t n = {.peer = 7, .kind = TS_AYAME_N_ACCEPT};

    ts_ayame_client_init(&cl, &io, 5, 4);
    assert_int_equal(strlen(cl.connection_id), 26);
    msg(&cl, "{\"type\":\"register\",\"roomId\":\"r1\"}");
    assert_int_equal(cl.state, TS_AYAME_JOINING);
    assert_string_equal(cl.client_id, cl.connection_id); /* the default */
    assert_int_equal(nposts, 1);
    assert_int_equal(posts[0].type, TS_AYAME_MSG_JOIN);
    assert_int_equal(posts[0].worker, ts_ayame_home("r1", 2, 4));
    assert_memory_equal(posts[0].data, "r1", 2);

    ts_ayame_on_notify(&cl, 0, &n, sizeof(n));
    assert_int_equal(cl.state, TS_AYAME_JOINED);
    assert_int_equal(nsent, 1);
    assert_non_null(strstr(sent[0], "\"isExistClient\":true,\"isExistUser\":true"));
    assert_non_null(strstr(sent[0], "\"iceServers\":[{\"urls\":[\"stun:h:1\"]}]"));
    assert_null(strstr(sent[0], "authzMetadata"));

    msg(&cl, "{\"type\": \"offer\", \"sdp\":\"x\"}");
    assert_int_equal(posts[1].type, TS_AYAME_MSG_RELAY);
    assert_int_equal(posts[1].worker, -1);
    assert_int_equal(posts[1].dst, 7);
    assert_memory_equal(posts[1].data, "{\"type\": \"offer\", \"sdp\":\"x\"}", posts[1].len);

    /* Relays from anyone but the peer are late: dropped. */
    ts_ayame_on_relay(&cl, 8, "{\"type\":\"answer\"}", 17);
    assert_int_equal(nsent, 1);
    ts_ayame_on_relay(&cl, 7, "{\"type\":\"answer\"}", 17);
    assert_int_equal(nsent, 2);

    ts_ayame_leave(&cl);
    assert_int_equal(posts[2].type, TS_AYAME_MSG_LEAVE);
    assert_int_equal(cl.state, TS_AYAME_DONE);
    ts_ayame_client_free(&cl);
}

static void test_bad_input_errors_then_closes(void **state)
{
    static const char *const bad[] = {
        "nope",
        "[]",
        "{\"type\":1}",
        "{\"type\":\"x\"}",
        "{\"type\":\"offer\"}",
        "{\"type\":\"register\"}",
        "{\"type\":\"register\",\"roomId\":\"r\",\"key\":1}",
    };

    for (size_t i = 0; i < TS_ARRAY_SIZE(bad); i++) {
        ts_ayame_client_t cl;
        reset(state);
        ts_ayame_client_init(&cl, &io, 5, 1);
        msg(&cl, bad[i]);
        assert_int_equal(nsent, 1);
        assert_non_null(strstr(sent[0], "{\"type\":\"error\",\"reason\":"));
        assert_int_equal(closed_code, 1008);
        assert_int_equal(nposts, 0);
        /* Nothing more happens once failed. */
        msg(&cl, "{\"type\":\"register\",\"roomId\":\"r\"}");
        assert_int_equal(nsent, 1);
        ts_ayame_client_free(&cl);
    }
}

static void test_key_and_webhook(void **state)
{
    ts_ayame_client_t cl;
    static const char allow[] =
        "{\"allowed\":true,\"authzMetadata\":{\"a\":1},\"iceServers\":[{\"urls\":[\"turn:x\"]}]}";

    cfg.signaling_key = "k";
    ts_ayame_client_init(&cl, &io, 5, 1);
    msg(&cl, "{\"type\":\"register\",\"roomId\":\"r\",\"key\":\"z\"}");
    assert_string_equal(sent[0], "{\"type\":\"reject\",\"reason\":\"InvalidSignalingKey\"}");
    assert_int_equal(closed_code, 1000);
    ts_ayame_client_free(&cl);

    reset(state);
    cfg.signaling_key = "k";
    cfg.authn_webhook_url = "http://127.0.0.1:9/";
    ts_ayame_client_init(&cl, &io, 5, 1);
    msg(&cl, "{\"type\":\"register\",\"roomId\":\"r\",\"key\":\"z\",\"signalingKey\":\"k\"}");
    assert_int_equal(authn_started, 1);
    assert_int_equal(cl.state, TS_AYAME_AUTHN);
    ts_ayame_on_authn(&cl, 200, allow, strlen(allow));
    assert_int_equal(cl.state, TS_AYAME_JOINING);
    {
        ts_ayame_notify_t n = {.peer = 0, .kind = TS_AYAME_N_ACCEPT};
        ts_ayame_on_notify(&cl, 0, &n, sizeof(n));
    }
    assert_non_null(strstr(sent[0], "\"iceServers\":[{\"urls\":[\"turn:x\"]}]"));
    assert_non_null(strstr(sent[0], "\"authzMetadata\":{\"a\":1}"));
    assert_non_null(strstr(sent[0], "\"isExistClient\":false"));
    ts_ayame_client_free(&cl);

    /* No allowed, a non-200, a late answer. */
    reset(state);
    cfg.authn_webhook_url = "http://127.0.0.1:9/";
    ts_ayame_client_init(&cl, &io, 5, 1);
    msg(&cl, "{\"type\":\"register\",\"roomId\":\"r\"}");
    ts_ayame_on_authn(&cl, 200, "{\"reason\":\"x\"}", 14);
    assert_string_equal(sent[0], "{\"type\":\"reject\",\"reason\":\"InternalServerError\"}");
    ts_ayame_on_authn(&cl, 200, allow, strlen(allow));
    assert_int_equal(nsent, 1);
    assert_int_equal(nposts, 0);
    ts_ayame_client_free(&cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_rooms_join_full_leave, reset),
        cmocka_unit_test_setup(test_rooms_many_grow_and_shrink, reset),
        cmocka_unit_test_setup(test_home_is_stable_and_in_range, reset),
        cmocka_unit_test_setup(test_register_join_accept_relay, reset),
        cmocka_unit_test_setup(test_bad_input_errors_then_closes, reset),
        cmocka_unit_test_setup(test_key_and_webhook, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
