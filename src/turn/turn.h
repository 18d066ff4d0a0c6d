/*
 * turn.h — the STUN/TURN server engine (RFC 8489 Binding, RFC 8656 TURN,
 * RFC 6156 IPv6) of one worker, kept free of sockets: the worker's network
 * glue (turn/net.c) feeds it client packets and relay packets, and it answers
 * through the callbacks of turn_io_t. Tests drive it with a fake clock and
 * fake sockets; the fuzzer feeds it arbitrary client bytes.
 *
 * An allocation belongs to the worker that received its Allocate; with
 * SO_REUSEPORT the kernel keeps a client's 5-tuple on one worker, so every
 * later packet of that client reaches the same engine.
 */
#ifndef TS_TURN_H
#define TS_TURN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/config.h"
#include "turn/auth.h"

#define TURN_TRANSPORT_UDP  0
#define TURN_TRANSPORT_TCP  1
#define TURN_TRANSPORT_TLS  2
#define TURN_TRANSPORT_DTLS 3

/* Where a client packet came from: its 5-tuple. */
typedef struct {
    int transport;                /* TURN_TRANSPORT_* */
    struct sockaddr_storage peer; /* the client's address */
    socklen_t peer_len;
    struct sockaddr_storage local; /* the server address it reached */
    socklen_t local_len;
    uint64_t conn_id; /* stream transports: the connection (ts_conn_t id); 0 for UDP */
    int sock;         /* UDP: the worker socket it arrived on (replies leave from it) */
} turn_client_t;

/* A relay socket, opened by the glue on the engine's request. */
typedef int turn_relay_t; /* >= 0; -1: none */

#define TURN_RELAY_EVEN_PORT    0x1 /* the port must be even */
#define TURN_RELAY_RESERVE_NEXT 0x2 /* ... and port + 1 must be reserved too */
#define TURN_RELAY_TCP          0x4 /* RFC 6062: a listening TCP socket, not a UDP one */

/* What the engine asks of its environment. */
typedef struct {
    void *ctx;
    uint64_t (*now_ms)(void *ctx);
    /* Send bytes to a client on the transport and 5-tuple it uses. */
    void (*send_client)(void *ctx, const turn_client_t *client, const uint8_t *data, size_t len);
    /*
     * Open a UDP relay socket of family (AF_INET / AF_INET6) on the relay
     * address, a port in [--min-port, --max-port]: exactly port when port is
     * not 0 (a reservation), with flags TURN_RELAY_*. Fills *bound. Returns
     * the relay handle, or -1 (no port free: 508).
     */
    turn_relay_t (*relay_open)(void *ctx, int family, uint16_t port, unsigned flags,
                               struct sockaddr_storage *bound, socklen_t *bound_len);
    void (*relay_close)(void *ctx, turn_relay_t relay);
    /* Send a datagram from the relay socket to peer. */
    void (*relay_send)(void *ctx, turn_relay_t relay, const struct sockaddr *peer,
                       socklen_t peer_len, const uint8_t *data, size_t len, int dont_fragment);
    /* Optional: the wall clock in Unix seconds, for the expiry of TURN REST
     * API usernames. NULL: time(). */
    int64_t (*now_unix)(void *ctx);
    /*
     * TCP relays (RFC 6062); NULL tcp_connect: not offered (442). TCP
     * connections are named by the glue's handles (never 0). tcp_connect
     * starts a connection from the relay's address to peer: 0 with *handle
     * set (the outcome comes through turn_server_on_tcp_connected), or -1.
     * tcp_close closes a peer or data connection; tcp_splice makes the
     * client's data connection and the peer connection carry raw bytes both
     * ways from now on. tcp_move (optional) hands a stream client whose
     * ConnectionBind names a CONNECTION-ID of the engine tagged tag (another
     * worker) over to it, which reads the message again: 0, or -1 (400).
     */
    int (*tcp_connect)(void *ctx, turn_relay_t relay, const struct sockaddr *peer,
                       socklen_t peer_len, uint64_t *handle);
    void (*tcp_close)(void *ctx, uint64_t handle);
    void (*tcp_splice)(void *ctx, uint64_t data, uint64_t peer);
    int (*tcp_move)(void *ctx, const turn_client_t *client, unsigned tag);
    /*
     * Optional (NULL: the reserved port is only checked free): EVEN-PORT
     * with the R bit reserves port + 1 for 30 s. port_hold binds that port
     * of family and keeps it bound, unread, so that nothing else takes it
     * meanwhile: a handle >= 0, or -1 (taken). port_release lets go of it,
     * right before the Allocate that names the token binds the port, or
     * when the reservation expires. A handle is good in every engine that
     * shares the state (another worker may use the token), so port_release
     * may get any of their ctx, or NULL (turn_shared_free).
     */
    int (*port_hold)(void *ctx, int family, uint16_t port);
    void (*port_release)(void *ctx, int handle);
    /*
     * The engine never calls these re-entrantly and they must not call back
     * into the engine (free at a safe point, as STYLE.md says). relay_open
     * may also return -2 for "this family cannot be relayed here" (answered
     * 440 rather than 508).
     */
} turn_io_t;

typedef struct turn_server_s turn_server_t;

/* cfg is read on every request (it changes on SIGHUP); io is copied. */
turn_server_t *turn_server_new(const ts_config_t *cfg, const turn_io_t *io);
void turn_server_free(turn_server_t *s);
void turn_server_set_config(turn_server_t *s, const ts_config_t *cfg);
/* The process is shutting down: Allocates are refused with 508 from now on,
 * while the allocations made before keep working until they go (docs/turn.md). */
void turn_server_set_draining(turn_server_t *s);

/*
 * What the engines of all workers share: the --user-quota and --total-quota
 * counts, and the key of the stateless nonces (so that a nonce one worker
 * issued is good on another, e.g. when a client moves from UDP to TCP).
 * Without it each engine has its own: quotas then count per worker. The
 * counts are taken under a mutex, only when an allocation is made or freed.
 */
typedef struct turn_shared_s turn_shared_t;
turn_shared_t *turn_shared_new(void);
/* After every engine that uses it is freed. */
void turn_shared_free(turn_shared_t *sh);
/* Right after turn_server_new, before the first packet (ignored once the
 * engine holds an allocation). */
void turn_server_set_shared(turn_server_t *s, turn_shared_t *sh);

/* A datagram, or one framed message of a stream, from a client: a STUN
 * message or ChannelData. Malformed input is dropped without an answer, and
 * so is a request past --turn-request-rate for its source address. */
void turn_server_on_client(turn_server_t *s, const turn_client_t *client, const uint8_t *data,
                           size_t len);
/* A datagram that arrived on a relay socket from peer. */
void turn_server_on_relay(turn_server_t *s, turn_relay_t relay, const struct sockaddr *peer,
                          socklen_t peer_len, const uint8_t *data, size_t len);
/* A stream client's connection closed: its allocation goes with it. */
void turn_server_on_client_closed(turn_server_t *s, const turn_client_t *client);
/* Does the client's 5-tuple hold an allocation? (A DTLS session lives as
 * long as its allocation, idle or not.) */
int turn_server_has_allocation(const turn_server_t *s, const turn_client_t *client);
/* The high byte of this engine's CONNECTION-IDs (the worker's index), so
 * that a ConnectionBind reaching another worker finds its way. */
void turn_server_set_tag(turn_server_t *s, unsigned tag);
/* TCP relays: the connect of handle went through (ok) or failed. */
void turn_server_on_tcp_connected(turn_server_t *s, uint64_t handle, int ok);
/* A peer connected to the TCP relay: its CONNECTION-ID, or 0 when refused
 * (no permission, no room): the glue closes it. */
uint32_t turn_server_on_tcp_accept(turn_server_t *s, turn_relay_t relay,
                                   const struct sockaddr *peer, uint64_t handle);
/* A peer connection or a spliced data connection closed: so does the other. */
void turn_server_on_tcp_closed(turn_server_t *s, uint64_t handle);
/* Expire allocations, permissions, channels, transactions. Call at least
 * every turn_server_next_timeout() ms. */
void turn_server_tick(turn_server_t *s);
/* Milliseconds until the next expiry (0: due now); -1 when nothing is pending. */
int turn_server_next_timeout(const turn_server_t *s);

/* Counters for /metrics (this worker). */
typedef struct {
    uint64_t allocations; /* open now */
    uint64_t allocations_total;
    uint64_t binding_requests;
    uint64_t requests;        /* all STUN requests */
    uint64_t auth_failures;   /* 401 answered to a request that carried credentials */
    uint64_t relayed_packets; /* peer <-> client, both ways */
    uint64_t relayed_bytes;
    uint64_t dropped;      /* malformed, unauthenticated or filtered packets */
    uint64_t rate_limited; /* requests dropped over --turn-request-rate */
} turn_stats_t;
const turn_stats_t *turn_server_stats(const turn_server_t *s);

#endif
