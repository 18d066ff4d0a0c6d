/*
 * engine.h — the insides of the STUN/TURN engine of turn.h, shared by its
 * files and by nothing else:
 *
 *   server.c   the request pipeline: demultiplexing, 420, authentication,
 *              retransmissions, the method table, answers, timers
 *   handler.c  one small function per TURN method
 *   relay.c    the data path: Send/Data indications, ChannelData, max-bps
 *   alloc.c    allocations, permissions, channels, their tables and expiry
 *   tcp.c      TCP relays (RFC 6062): Connect, ConnectionBind, ConnectionAttempt
 *   shared.c   what the workers share: quotas, the nonce key, reservations
 *
 * Cross-file functions carry the turn__ prefix (libuv's habit).
 */
#ifndef TS_TURN_ENGINE_H
#define TS_TURN_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "core/ratelimit.h"
#include "stun/msg.h"
#include "turn/turn.h"

/* Lifetimes, in seconds (RFC 8656 and the transaction lifetime of RFC 8489). */
#define TURN_DEFAULT_LIFETIME_S 600
#define TURN_MAX_LIFETIME_S     3600
#define TURN_PERMISSION_S       300
#define TURN_CHANNEL_S          600
#define TURN_CHANNEL_COOLDOWN_S 300 /* a channel is not rebound to another peer this long */
#define TURN_RESERVATION_S      30
#define TURN_TXN_S              40
#define TURN_TCP_CONNECT_S      10 /* a Connect not through by then: 447 */
#define TURN_TCP_BIND_S         30 /* a CONNECTION-ID not bound by then: closed (RFC 6062) */

/* Caps. Hitting one answers 508, never grows memory. */
#define TURN_MAX_PERMISSIONS  128  /* per allocation */
#define TURN_MAX_CHANNELS     128  /* per allocation */
#define TURN_MAX_RESERVATIONS 1024 /* outstanding, in a turn_shared_t */
#define TURN_TXN_MAX          8192 /* remembered answers per worker */
#define TURN_TXN_BYTES        256  /* a longer answer is not remembered */
#define TURN_MAX_RELAY_HANDLE (1 << 20)
#define TURN_MAX_TCP          16 /* peer connections per TCP allocation */

/* Source addresses --turn-request-rate remembers, per worker (fixed). */
#define TURN_RATE_ENTRIES 4096

#define TURN_CHANNEL_MIN 0x4000
#define TURN_CHANNEL_MAX 0x7FFF

/* An address in 24 bytes rather than a 128-byte sockaddr_storage. */
typedef struct {
    uint8_t ip[16]; /* IPv4 as ::ffff:a.b.c.d, so one compare serves both */
    uint32_t scope; /* IPv6 scope id */
    uint16_t port;  /* host order */
    uint8_t family; /* AF_INET or AF_INET6: the family of the sockaddr it came from */
    uint8_t pad;    /* zero: addresses compare with memcmp */
} turn_addr_t;

/* A client's 5-tuple (turn_client_t, compact). Built zeroed, so memcmp works. */
typedef struct {
    turn_addr_t peer;
    turn_addr_t local;
    uint64_t conn_id;
    int32_t sock;
    uint8_t transport;
    uint8_t pad[3];
} turn_tuple_t;

typedef struct {
    uint8_t ip[16];   /* the peer's IP; ports do not matter (RFC 8656 9) */
    uint64_t expires; /* ms */
} turn_perm_t;

typedef struct {
    uint8_t ip[16];
    uint16_t port;
    uint16_t number;
    uint8_t family;   /* the peer's, as its XOR-PEER-ADDRESS gave it */
    uint64_t expires; /* ms; bound until then, kept for the cool-down after */
} turn_chan_t;

/* --max-bps: a token bucket, one second deep. */
typedef struct {
    uint32_t tokens; /* bytes */
    uint32_t stamp;  /* ms, modulo 2^32 */
} turn_bucket_t;

#define TURN_TO_PEER   0
#define TURN_TO_CLIENT 1

typedef struct turn_quota_user_s turn_quota_user_t;
typedef struct turn_txn_s turn_txn_t;
typedef struct turn_tcp_s turn_tcp_t;

/* One allocation. Owned by the server's 5-tuple table. */
typedef struct turn_alloc_s {
    struct turn_alloc_s *hnext; /* 5-tuple table chain */
    turn_txn_t *txn;            /* its last remembered answer, or NULL (not owned) */
    turn_quota_user_t *quota;   /* its entry in the shared quota table (a reference) */
    turn_perm_t *perms;         /* owned array */
    turn_chan_t *chans;         /* owned array */
    uint64_t expires;           /* ms */
    uint64_t deadline;          /* the timer heap's key: the earliest expiry inside */
    turn_tuple_t tuple;
    uint8_t userid[16];      /* SHA-256 of the username, truncated: who may use it (441) */
    turn_relay_t relay[2];   /* [0] IPv4, [1] IPv6; -1: none */
    turn_bucket_t bucket[2]; /* TURN_TO_PEER, TURN_TO_CLIENT */
    uint32_t heap_idx;
    uint16_t nperms, cap_perms;
    uint16_t nchans, cap_chans;
    uint8_t tcp;  /* a TCP relay (RFC 6062): its relay handle is a listening socket */
    uint8_t ntcp; /* its peer connections (turn_tcp_t), at most TURN_MAX_TCP */
} turn_alloc_t;

#define TURN_TCP_CONNECTING 0 /* Connect sent to the glue; answered when it is through */
#define TURN_TCP_PENDING    1 /* connected, waiting for its ConnectionBind */
#define TURN_TCP_BOUND      2 /* spliced to a data connection: bytes only, in the glue */

/* A TCP connection to a peer. Owned by the server's list; dies with its
 * allocation. */
struct turn_tcp_s {
    turn_tcp_t *prev, *next;
    turn_alloc_t *alloc; /* not owned */
    uint64_t peer_conn;  /* the glue's handle of the peer connection */
    uint64_t data_conn;  /* ... of the client's data connection; 0 until bound */
    uint64_t deadline;   /* ms: of the connect, or of the ConnectionBind; 0 once bound */
    turn_addr_t peer;
    uint32_t id; /* CONNECTION-ID */
    uint8_t state;
    uint8_t mi_sha256; /* the Connect's integrity attribute and key: it is answered later */
    uint8_t keylen;
    uint8_t tid[12];
    uint8_t key[32];
};

/* A remembered answer, so that a retransmitted request gets the same one. */
struct turn_txn_s {
    turn_txn_t *hnext;       /* hash chain by transaction id */
    turn_txn_t *prev, *next; /* expiry order (all live TURN_TXN_S) */
    turn_alloc_t *alloc;     /* the allocation it is the last answer of; NULL */
    uint64_t expires;
    turn_tuple_t tuple;
    uint8_t tid[12];
    uint16_t len;
    uint8_t data[TURN_TXN_BYTES];
};

/* An EVEN-PORT reservation: port kept for the Allocate that names token. */
typedef struct turn_resv_s {
    struct turn_resv_s *next; /* expiry order (all live TURN_RESERVATION_S) */
    uint64_t expires;
    uint8_t token[8];
    int family;
    uint16_t port;
    int held;                               /* the glue's port_hold handle; -1: none */
    void (*release)(void *ctx, int handle); /* the glue's port_release */
} turn_resv_t;

/* A static user's USERHASH, for the lookup of RFC 8489 9.2.4. */
typedef struct {
    uint8_t hash[32];
    uint32_t user; /* index in cfg->users */
} turn_userhash_t;

struct turn_server_s {
    const ts_config_t *cfg; /* not owned */
    turn_io_t io;
    turn_shared_t *shared; /* quotas and nonce key; owned when own_shared */
    int own_shared;
    turn_stats_t stats;
    uint64_t seed; /* hash seed */
    uint64_t rng;  /* xorshift state: transaction ids of Data indications */

    turn_userhash_t *userhashes; /* owned, sorted by hash */
    size_t nuserhashes;

    turn_alloc_t **buckets; /* owned: the 5-tuple table */
    size_t nbuckets;
    size_t nallocs;
    turn_alloc_t **by_relay; /* owned: indexed by relay handle */
    size_t nby_relay;
    turn_alloc_t **heap; /* owned: min-heap on deadline */
    uint32_t nheap, heap_cap;

    turn_txn_t **txn_buckets; /* owned table of TURN_TXN_BUCKETS */
    turn_txn_t *txn_head, *txn_tail;
    turn_txn_t *txn_free; /* owned free list (singly linked through next) */
    unsigned ntxn;        /* entries allocated, free ones included */

    uint8_t *scratch; /* owned: a relayed packet being framed */

    ts_ratelimit_table_t *req_rate; /* owned: --turn-request-rate per source address */

    turn_tcp_t *tcp_head; /* owned list of every TCP peer connection */
    uint32_t tcp_seq;     /* the low 24 bits of the next CONNECTION-ID */
    uint8_t tag;          /* the high 8 bits of this engine's CONNECTION-IDs */
    uint8_t draining;     /* no new allocations (turn_server_set_draining) */
};

#define TURN_TXN_BUCKETS 1024
#define TURN_SCRATCH     (65536 + 64)

/* A request being answered: everything lives on the stack. */
typedef struct {
    turn_server_t *s;
    const turn_client_t *client;
    const stun_msg_t *m;
    size_t len; /* the request's size */
    uint64_t now;
    turn_tuple_t tuple;
    turn_alloc_t *alloc; /* of the 5-tuple; NULL */
    int had_alloc;       /* the 5-tuple had an allocation when the request came */
    const char *user;    /* the authenticated username (not NUL-terminated) */
    size_t ulen;
    uint8_t userid[16]; /* as turn_alloc_t's */
    uint8_t key[32];
    size_t keylen;
    int mi_sha256;    /* the request used MESSAGE-INTEGRITY-SHA256: so does the answer */
    turn_tcp_t *bind; /* ConnectionBind: spliced once the answer is out */
} turn_req_t;

#define TURN_ANSWERED (-1) /* a handler that answers itself, or later */

/* A method's handler fills a success answer in b and returns 0, or returns
 * the STUN error code to answer with. */
typedef int (*turn_method_fn)(turn_req_t *r, stun_builder_t *b);

int turn__on_allocate(turn_req_t *r, stun_builder_t *b);
int turn__on_refresh(turn_req_t *r, stun_builder_t *b);
int turn__on_create_permission(turn_req_t *r, stun_builder_t *b);
int turn__on_channel_bind(turn_req_t *r, stun_builder_t *b);
int turn__on_connect(turn_req_t *r, stun_builder_t *b);
int turn__on_connection_bind(turn_req_t *r, stun_builder_t *b);
/* An XOR-PEER-ADDRESS the allocation may use: 0, 400, 443 or 403. */
int turn__peer_check(turn_req_t *r, const stun_attr_t *attr, turn_addr_t *peer);

/* tcp.c */
/* Close and forget every peer connection of a. */
void turn__tcp_alloc_gone(turn_server_t *s, turn_alloc_t *a);
void turn__tcp_expire(turn_server_t *s, uint64_t now);
/* The earliest deadline of a connect or a ConnectionBind; UINT64_MAX when none. */
uint64_t turn__tcp_next(const turn_server_t *s);

/* relay.c */
void turn__send_indication(turn_server_t *s, const turn_client_t *client, const stun_msg_t *m);
void turn__channel_data(turn_server_t *s, const turn_client_t *client, const uint8_t *data,
                        size_t len);
int turn__bucket_take(turn_server_t *s, turn_alloc_t *a, int dir, size_t bytes, uint64_t now);

/* server.c */
uint64_t turn__random(turn_server_t *s);
void turn__drop(turn_server_t *s);

/* alloc.c: addresses */
int turn__addr_from_sa(turn_addr_t *a, const struct sockaddr *sa);
void turn__addr_to_sa(const turn_addr_t *a, struct sockaddr_storage *ss, socklen_t *len);
void turn__tuple_from_client(turn_tuple_t *t, const turn_client_t *c);
void turn__tuple_to_client(const turn_tuple_t *t, turn_client_t *c);
int turn__tuple_equal(const turn_tuple_t *a, const turn_tuple_t *b);
uint64_t turn__tuple_hash(const turn_server_t *s, const turn_tuple_t *t);
/* The relay slot (0 or 1) for a family; -1 for another family. */
int turn__family_slot(int family);

/* alloc.c: allocations */
void turn__allocs_init(turn_server_t *s);
void turn__allocs_free(turn_server_t *s);
turn_alloc_t *turn__alloc_find(const turn_server_t *s, const turn_tuple_t *t);
turn_alloc_t *turn__alloc_by_relay(const turn_server_t *s, turn_relay_t relay);
turn_alloc_t *turn__alloc_new(turn_server_t *s, const turn_tuple_t *t, uint64_t expires);
void turn__alloc_set_relay(turn_server_t *s, turn_alloc_t *a, int slot, turn_relay_t relay);
void turn__alloc_free(turn_server_t *s, turn_alloc_t *a);
/* Recompute a's deadline after a change and put it in its place in the heap. */
void turn__alloc_schedule(turn_server_t *s, turn_alloc_t *a, uint64_t now);
/* Free or purge every allocation whose deadline has come. */
void turn__allocs_expire(turn_server_t *s, uint64_t now);
/* The earliest deadline of the heap; UINT64_MAX when empty. */
uint64_t turn__allocs_next(const turn_server_t *s);
/* Drop permissions and channels to peers the filter of cfg now denies. */
void turn__allocs_refilter(turn_server_t *s);

/* alloc.c: permissions and channels */
turn_perm_t *turn__perm_find(turn_alloc_t *a, const uint8_t ip[16], uint64_t now);
/* Install or refresh; -1 when the allocation has no room. */
int turn__perm_set(turn_alloc_t *a, const uint8_t ip[16], uint64_t expires);
/* Would turn__perm_set find room for ip? */
int turn__perm_room(const turn_alloc_t *a, const uint8_t ip[16]);
/* Any state: bound, or cooling down after expiry. */
turn_chan_t *turn__chan_by_number(turn_alloc_t *a, uint16_t number);
turn_chan_t *turn__chan_by_peer(turn_alloc_t *a, const turn_addr_t *peer);
turn_chan_t *turn__chan_add(turn_alloc_t *a, uint16_t number, const turn_addr_t *peer);

/* shared.c */
int turn__quota_take(turn_shared_t *sh, const ts_config_t *cfg, const char *name, size_t len,
                     turn_quota_user_t **out);
void turn__quota_give(turn_shared_t *sh, turn_quota_user_t *u);
const turn_auth_t *turn__shared_auth(const turn_shared_t *sh);
int turn__resv_add(turn_shared_t *sh, int family, uint16_t port, const turn_io_t *io, int held,
                   uint64_t now, uint8_t token[8]);
int turn__resv_take(turn_shared_t *sh, const uint8_t token[8], uint64_t now, int *family,
                    uint16_t *port, int *held);
void turn__resv_expire(turn_shared_t *sh, uint64_t now, void *ctx);

#endif
