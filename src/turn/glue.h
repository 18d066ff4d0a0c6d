/*
 * glue.h — what the files of the STUN/TURN network glue share (net.c: UDP,
 * streams, relay sockets, the engine's I/O; net_tcp.c: TCP relays) and
 * nothing else. Cross-file functions carry the ts_turn__ prefix.
 */
#ifndef TS_TURN_GLUE_H
#define TS_TURN_GLUE_H

#include <stdint.h>
#include <sys/socket.h>

#include "core/bus.h"
#include "core/conn.h"
#include "core/worker.h"
#include "turn/net.h"
#include "turn/turn.h"

#define TS_TURN_BATCH    32   /* datagrams per recvmmsg / sendmmsg */
#define TS_TURN_DGRAM    2048 /* larger datagrams are truncated, and dropped */
#define TS_TURN_MSG_MOVE (TS_MSG_USER + 1)

typedef struct ts_turn_glue_s ts_turn_glue_t;

/* A relay socket; owned by the glue's table (freed at a deferred point). */
typedef struct {
    ts_io_t io;
    ts_turn_glue_t *g;
    turn_relay_t id;
    int tcp;         /* a listening TCP socket (RFC 6062) */
    ts_defer_t free; /* freed after the event batch, never inside it */
} ts_turn_relay_sock_t;

/* Answers waiting for the end of the loop turn, for one UDP socket. */
typedef struct {
    int fd;
    unsigned n;
    struct mmsghdr msgs[TS_TURN_BATCH];
    struct iovec iov[TS_TURN_BATCH];
    struct sockaddr_storage addrs[TS_TURN_BATCH];
    uint8_t data[TS_TURN_BATCH][TS_TURN_DGRAM];
    /* what leaves: runs to one address packed for UDP GSO (net.c) */
    struct mmsghdr gso[TS_TURN_BATCH];
    unsigned gso_n[TS_TURN_BATCH]; /* datagrams in each */
    uint8_t cmsg[TS_TURN_BATCH][CMSG_SPACE(sizeof(uint16_t))] __attribute__((aligned(8)));
} ts_turn_outq_t;

struct ts_turn_glue_s {
    ts_worker_t *w;
    turn_server_t *engine;
    const ts_config_t *cfg; /* the configuration the engine was last given */
    ts_timer_t tick;
    ts_defer_t flush;
    ts_turn_relay_sock_t **relays; /* indexed by turn_relay_t; NULL: free */
    size_t nrelays;
    unsigned port_cursor;
    int no_gso;   /* the kernel refused UDP_SEGMENT once: not tried again */
    int draining; /* the engine was told (turn_server_set_draining) */
    /* EVEN-PORT: port + 1, bound by relay_open, until port_hold takes it */
    int next_fd;
    int next_family;
    uint16_t next_port;
    /* Worked out once, not per packet: each UDP listener's own address,
     * and the address relays are advertised at (per family; reset when
     * SIGHUP installs a new configuration). */
    struct {
        int fd;
        socklen_t len;
        struct sockaddr_storage sa;
    } listen_local[8];
    unsigned nlisten_local;
    struct sockaddr_storage advertised[2]; /* [0] IPv4, [1] IPv6 */
    uint8_t advertised_ok[2];
    ts_turn_outq_t out;  /* answers to clients, per listener socket */
    ts_turn_outq_t rout; /* datagrams to peers, per relay socket */
    /* receive batch */
    struct mmsghdr msgs[TS_TURN_BATCH];
    struct iovec iov[TS_TURN_BATCH];
    struct sockaddr_storage addrs[TS_TURN_BATCH];
    uint8_t bufs[TS_TURN_BATCH][TS_TURN_DGRAM];
};

/* net.c */
ts_turn_glue_t *ts_turn__glue(ts_worker_t *w);
/* A non-blocking socket of family and type bound to ss (TCP: reusable). */
int ts_turn__bind(int family, int type, const struct sockaddr_storage *ss, socklen_t len);
int ts_turn__stream_on_read(ts_conn_t *c);

/* net_tcp.c: the engine's TCP I/O (turn_io_t), and what the loop calls */
int ts_turn__tcp_connect(void *ctx, turn_relay_t relay, const struct sockaddr *peer,
                         socklen_t peer_len, uint64_t *handle);
void ts_turn__tcp_close(void *ctx, uint64_t handle);
void ts_turn__tcp_splice(void *ctx, uint64_t data, uint64_t peer);
int ts_turn__tcp_move(void *ctx, const turn_client_t *client, unsigned tag);
void ts_turn__on_move(ts_worker_t *w, ts_bus_msg_t *msg);
/* A TCP relay's listening socket is readable. */
void ts_turn__on_tcp_acceptable(ts_turn_relay_sock_t *r);

#endif
