/*
 * peerjs.h — internals of the PeerJS server protocol, shared by its three
 * files:
 *
 *   peerjs_msg.c   JSON in, actions out: a client's messages checked and
 *                  rewritten, the server's own messages built, the upgrade
 *                  query read. No sockets: the fuzzer drives it through a
 *                  fake ts_peerjs_io_t.
 *   peerjs_home.c  the registry. Every id has a home worker (a keyed hash
 *                  of the id modulo the workers) that owns its entry: the
 *                  connection and token registered under it, and the queue
 *                  of messages waiting for it to connect.
 *   peerjs.c       the client's side: the WebSocket endpoint, the bus
 *                  handler that delivers to a connection, the HTTP routes.
 *
 * docs/peerjs.md tells the design and the races it settles.
 */
#ifndef TS_SIGNALING_PEERJS_H
#define TS_SIGNALING_PEERJS_H

#include <stddef.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/worker.h"
#include "signaling/signaling.h"

#define TS_PEERJS_MAX_ID      256         /* bytes of an id, a token or a key */
#define TS_PEERJS_MAX_MESSAGE (64 * 1024) /* bytes of one client message */

/* The message types of the protocol, in the order of ts_peerjs_type_names. */
enum ts_peerjs_type {
    TS_PEERJS_OPEN = 0,
    TS_PEERJS_ID_TAKEN,
    TS_PEERJS_ERROR,
    TS_PEERJS_HEARTBEAT,
    TS_PEERJS_OFFER,
    TS_PEERJS_ANSWER,
    TS_PEERJS_CANDIDATE,
    TS_PEERJS_LEAVE,
    TS_PEERJS_EXPIRE,
    TS_PEERJS_TYPE_COUNT,
};

/* "OPEN", "ID-TAKEN", ... */
const char *ts_peerjs_type_name(int type);

/* PeerServer's texts, which clients show to people. */
#define TS_PEERJS_E_INVALID_KEY   "Invalid key provided"
#define TS_PEERJS_E_WS_PARAMETERS "No id, token, or key supplied to websocket server"
#define TS_PEERJS_E_LIMIT         "Server has reached its concurrent user limit"
#define TS_PEERJS_E_ID_TAKEN      "ID is taken"

/* ------------------------------------------------------------- bus -- */

/* To an id's home worker (ts_bus_send_worker), or to a connection (ts_bus_send). */
#define TS_PEERJS_MSG_HOME   (TS_PEERJS_MSG_BASE + 0)
#define TS_PEERJS_MSG_CLIENT (TS_PEERJS_MSG_BASE + 1)

enum ts_peerjs_op {
    /* to the home worker */
    TS_PEERJS_OP_REGISTER = 1, /* id, aux = token, conn */
    TS_PEERJS_OP_UNREGISTER,   /* id, conn */
    TS_PEERJS_OP_RELAY,        /* id = dst, aux = src, body = the text to deliver */
    TS_PEERJS_OP_REQUEUE,      /* a DELIVER that found conn gone: as RELAY */
    /* to a connection */
    TS_PEERJS_OP_OPEN,    /* registered: send OPEN, then act on what waited */
    TS_PEERJS_OP_REFUSE,  /* body = ID-TAKEN or ERROR text: send it and close */
    TS_PEERJS_OP_DELIVER, /* as RELAY: send body */
    TS_PEERJS_OP_KICK,    /* the same id and token connected again: close */
};

/* The head of every PeerJS bus message; id, aux and body follow it. */
typedef struct {
    uint64_t conn;     /* REGISTER, UNREGISTER: the client; REQUEUE: the gone one */
    uint32_t body_len; /* bytes of body */
    uint16_t id_len;   /* bytes of id */
    uint16_t aux_len;  /* bytes of aux */
    uint8_t op;        /* enum ts_peerjs_op */
    uint8_t type;      /* RELAY, REQUEUE, DELIVER: enum ts_peerjs_type of body */
} ts_peerjs_hdr_t;

/* A view of a received message; the strings point into it, unterminated. */
typedef struct {
    ts_peerjs_hdr_t h;
    const char *id, *aux, *body;
} ts_peerjs_view_t;

ts_bus_msg_t *ts_peerjs_msg_new(uint32_t bus_type, uint64_t dst, const ts_peerjs_hdr_t *h,
                                const char *id, const char *aux, const char *body);
/* TS_OK, or TS_ERR_PROTO when the lengths do not add up. */
int ts_peerjs_msg_view(const ts_bus_msg_t *m, ts_peerjs_view_t *v);

/* The worker that owns id's registry entry. */
int ts_peerjs_home(const char *id, size_t len, int nworkers);
uint64_t ts_peerjs_hash(const char *id, size_t len);

/* ------------------------------------------------- client messages -- */

/* What acting on a client's message may do; the fuzzer supplies a fake. */
typedef struct {
    /* Send a text message to the client. */
    void (*send)(void *ctx, const char *text, size_t len);
    /* Close the client's connection with a WebSocket close code. */
    void (*close)(void *ctx, unsigned code, const char *reason);
    /* Hand a message, already rewritten, to the home worker of dst.
     * TS_OK, or an error when the bus is full. */
    int (*relay)(void *ctx, int type, const char *dst, size_t dst_len, const char *text,
                 size_t len);
    /* A debug log line about the client. */
    void (*log)(void *ctx, const char *what);
} ts_peerjs_io_t;

/*
 * Act on one message from the client registered as self: HEARTBEAT is
 * accepted, OFFER, ANSWER, CANDIDATE, LEAVE and EXPIRE are relayed with src
 * set to self. TS_OK, or an error when the client broke the protocol (it
 * was told with an ERROR, and closed when the message was not JSON).
 */
int ts_peerjs_on_message(const ts_peerjs_io_t *io, void *ctx, const char *self, size_t self_len,
                         const uint8_t *data, size_t len);

/* A server message: {"type":...,"src":...,"dst":...}; src, dst may be NULL.
 * Returns a malloc'd string, its length in *len. */
char *ts_peerjs_text(int type, const char *src, size_t src_len, const char *dst, size_t dst_len,
                     size_t *len);
/* {"type":<ERROR or ID-TAKEN>,"payload":{"msg":msg}}, malloc'd. */
char *ts_peerjs_error_text(int type, const char *msg, size_t *len);

/* The upgrade query: key, id and token, percent-decoded. */
typedef struct {
    char key[TS_PEERJS_MAX_ID + 1];
    char id[TS_PEERJS_MAX_ID + 1];
    char token[TS_PEERJS_MAX_ID + 1];
    size_t key_len, id_len, token_len;
} ts_peerjs_params_t;

/* TS_OK; TS_ERR_PROTO when one is missing, empty, too long, or not text. */
int ts_peerjs_parse_query(const char *q, size_t len, ts_peerjs_params_t *p);

/* ------------------------------------------------------------ home -- */

/* Per-worker registry shard (peerjs_home.c), in the worker's locals. */
typedef struct ts_peerjs_shard_s ts_peerjs_shard_t;

void ts_peerjs_home_init(ts_worker_t *w);
/* The bus handler for TS_PEERJS_MSG_HOME. */
void ts_peerjs_home_on_message(ts_worker_t *w, ts_bus_msg_t *msg);
/* The connection id registered for id when w is id's home (owner thread),
 * 0 otherwise or when id has no connection. */
uint64_t ts_peerjs_home_conn(ts_worker_t *w, const char *id, size_t len);
/* Registered ids of every worker as a JSON array (malloc'd); any thread. */
char *ts_peerjs_home_list(ts_server_t *s, size_t *len);

#endif
