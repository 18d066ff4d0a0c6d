/*
 * ayame.h — the Ayame protocol, split so that its logic runs without
 * sockets:
 *
 *   ayame_msg.c  one client: JSON in, actions out, through a small table of
 *                functions (ts_ayame_io_t) that ayame.c backs with the
 *                WebSocket, the bus and the webhooks, and that the fuzzer and
 *                the unit tests back with fakes;
 *   room.c       the room table a room's home worker keeps (rooms of two);
 *   ayame.c      the /signaling endpoint, bus handlers and the ping timer.
 *
 * A room lives on its home worker (hash of the roomId modulo the workers).
 * A register posts JOIN there; the home worker answers the joiner with
 * NOTIFY (accepted, with the other member's connection id, or full) and
 * tells the member already waiting who joined. From then on offer, answer
 * and candidate go straight from the sender's worker to the peer's
 * connection (RELAY). A leaving client posts LEAVE; the home worker deletes
 * the room and sends the other member NOTIFY bye. See docs/ayame.md.
 */
#ifndef TS_SIGNALING_AYAME_H
#define TS_SIGNALING_AYAME_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/ratelimit.h"
#include "signaling/signaling.h"

/* Bus message types. */
enum {
    TS_AYAME_MSG_JOIN = TS_AYAME_MSG_BASE, /* to the home worker; data: the roomId */
    TS_AYAME_MSG_NOTIFY,                   /* to a connection; data: ts_ayame_notify_t */
    TS_AYAME_MSG_RELAY,                    /* to a connection; data: the text, unchanged */
    TS_AYAME_MSG_LEAVE,                    /* to the home worker; data: the roomId */
};

/* What the home worker tells a connection. */
enum {
    TS_AYAME_N_ACCEPT = 1, /* your join succeeded; peer: the member already there, or 0 */
    TS_AYAME_N_FULL,       /* the room has two members already */
    TS_AYAME_N_PEER,       /* peer joined the room you wait in */
    TS_AYAME_N_BYE,        /* the other member left; the room is gone */
};

typedef struct {
    uint64_t peer;
    uint8_t kind; /* TS_AYAME_N_* */
} ts_ayame_notify_t;

enum ts_ayame_state {
    TS_AYAME_NEW = 0, /* no register yet */
    TS_AYAME_AUTHN,   /* register received; the authn webhook is running */
    TS_AYAME_JOINING, /* JOIN posted to the home worker */
    TS_AYAME_JOINED,  /* accepted */
    TS_AYAME_DONE,    /* rejected, failed, left: closing; only pongs count */
};

#define TS_AYAME_MAX_ID 255 /* bytes of a roomId or clientId */

typedef struct ts_ayame_client_s ts_ayame_client_t;

/* What the protocol logic does to the world. */
typedef struct {
    /* A text message to this client. */
    void (*send)(ts_ayame_client_t *cl, const char *text, size_t len);
    /* Close this client's WebSocket with code, after what was sent. */
    void (*close)(ts_ayame_client_t *cl, unsigned code, const char *reason);
    /* Post on the bus: to worker (>= 0), or to connection dst (worker -1).
     * TS_OK or TS_ERR_LIMIT. */
    int (*post)(ts_ayame_client_t *cl, int worker, uint32_t type, uint64_t dst, const void *data,
                size_t len);
    /* Start the authn webhook with this JSON body; the answer comes back
     * through ts_ayame_on_authn(). TS_OK, or an error (the client is
     * rejected). */
    int (*authn)(ts_ayame_client_t *cl, const char *body, size_t len);
    /* tsunagi's own iceServers (a JSON array) for this client; 0: none fit. */
    size_t (*ice_servers)(ts_ayame_client_t *cl, char *out, size_t cap);
    /* The configuration in force now. */
    const ts_config_t *(*config)(ts_ayame_client_t *cl);
    /* Loop time in ms. */
    uint64_t (*now)(ts_ayame_client_t *cl);
} ts_ayame_io_t;

struct ts_ayame_client_s {
    const ts_ayame_io_t *io; /* not owned */
    uint64_t id;             /* the connection's id (bus address) */
    uint64_t peer;           /* the other member's connection id; 0: none (yet) */
    uint64_t last_pong;      /* loop time of the last pong (or of the connect) */
    int nworkers;
    uint8_t state;          /* enum ts_ayame_state */
    uint8_t accepted;       /* an accept was sent: the disconnect webhook is due */
    uint8_t rate_limited;   /* closed over --signaling-rate (ayame.c counts it) */
    char connection_id[27]; /* a ULID, as Ayame's connectionId */
    char *room_id;          /* owned; NULL before register */
    char *client_id;        /* owned; NULL before register */
    char *ice;              /* owned: iceServers JSON from the webhook; NULL: ours */
    char *authz;            /* owned: authzMetadata JSON from the webhook; NULL: none */

    ts_ratelimit_bucket_t rate; /* --signaling-rate, refilled by io->now */
};

/* ayame_msg.c */
void ts_ayame_client_init(ts_ayame_client_t *cl, const ts_ayame_io_t *io, uint64_t id,
                          int nworkers);
void ts_ayame_client_free(ts_ayame_client_t *cl);
/* A text message from the client. */
void ts_ayame_on_message(ts_ayame_client_t *cl, const char *data, size_t len);
/* Bad input: {"type":"error","reason":why}, leave the room, close with code. */
void ts_ayame_fail(ts_ayame_client_t *cl, unsigned code, const char *why);
/* The same without the close (the WebSocket layer is closing already). */
void ts_ayame_say_error(ts_ayame_client_t *cl, const char *why);
/* The authn webhook answered: HTTP status (0: no answer in time, or the
 * request failed) and body. */
void ts_ayame_on_authn(ts_ayame_client_t *cl, long status, const char *body, size_t len);
/* Bus messages addressed to this client. */
void ts_ayame_on_notify(ts_ayame_client_t *cl, uint64_t src, const void *data, size_t len);
void ts_ayame_on_relay(ts_ayame_client_t *cl, uint64_t src, const char *text, size_t len);
/* The connection is going away: leave the room. */
void ts_ayame_leave(ts_ayame_client_t *cl);
/* The disconnect webhook's body (malloc'd JSON), or NULL when none is due. */
char *ts_ayame_disconnect_body(const ts_ayame_client_t *cl);
/* The home worker of a room. */
int ts_ayame_home(const char *room, size_t len, int nworkers);

/* room.c: the rooms whose home is this worker. */
typedef struct ts_ayame_room_s ts_ayame_room_t;
typedef struct {
    ts_ayame_room_t **buckets; /* owned, with every room in them */
    size_t nbuckets;           /* power of two */
    size_t count;
} ts_ayame_rooms_t;

/* Post a notify (or anything) to connection dst; TS_OK or an error. */
typedef int (*ts_ayame_post_fn)(void *ctx, uint32_t type, uint64_t dst, uint64_t src,
                                const void *data, size_t len);

void ts_ayame_rooms_init(ts_ayame_rooms_t *r);
void ts_ayame_rooms_free(ts_ayame_rooms_t *r);
/* JOIN from connection src for room (len bytes); answers through post. */
void ts_ayame_rooms_join(ts_ayame_rooms_t *r, uint64_t src, const char *room, size_t len,
                         ts_ayame_post_fn post, void *ctx);
/* LEAVE from connection src; the other member gets bye through post. */
void ts_ayame_rooms_leave(ts_ayame_rooms_t *r, uint64_t src, const char *room, size_t len,
                          ts_ayame_post_fn post, void *ctx);
/* Members of room now (0, 1 or 2). */
int ts_ayame_rooms_members(const ts_ayame_rooms_t *r, const char *room, size_t len);

#endif
