/*
 * dtls.h — TURN over DTLS (RFC 8656 3.1, RFC 7350) on the UDP side of the
 * --turns port: per client 5-tuple a DTLS 1.2 session whose records are
 * STUN or ChannelData messages for the worker's engine, as a
 * TURN_TRANSPORT_DTLS client. docs/turn.md says how sessions are keyed,
 * made (stateless cookies first), capped and timed out.
 */
#ifndef TS_TURN_DTLS_H
#define TS_TURN_DTLS_H

#include <stddef.h>
#include <stdint.h>

#include "core/worker.h"
#include "turn/turn.h"

#define TS_DTLS_HANDSHAKE_MS  10000 /* a handshake not done by then is dropped */
#define TS_DTLS_IDLE_MS       60000 /* a session without allocation or traffic this long goes */
#define TS_DTLS_MAX_HANDSHAKE 256   /* handshakes in progress, per worker */
#define TS_DTLS_MAX_SESSIONS  16384 /* sessions, per worker (and --max-connections overall) */
#define TS_DTLS_MTU           1200  /* the largest datagram a handshake flight is cut into */

/* Before the workers start. Sessions are made from the DTLS context of
 * tls/certs.h (ts_certs_load with TS_CERTS_DTLS), which SIGHUP replaces. */
void ts_turn_dtls_init(void);
/* After every worker is freed. */
void ts_turn_dtls_shutdown(void);

/* The --turns UDP socket fd of worker w is readable. */
void ts_turn_dtls_on_udp(ts_worker_t *w, int fd);
/* What the engine sends to a TURN_TRANSPORT_DTLS client: one record. */
void ts_turn_dtls_send(ts_worker_t *w, const turn_client_t *client, const uint8_t *data,
                       size_t len);

/* Counters of one worker (/metrics). */
typedef struct {
    uint64_t sessions;          /* open now, handshakes included */
    uint64_t handshakes;        /* in progress now */
    uint64_t sessions_total;    /* handshakes completed */
    uint64_t handshakes_failed; /* broken, refused or timed out */
    uint64_t hello_verify;      /* HelloVerifyRequests sent (no session made) */
    uint64_t dropped;           /* datagrams that were not DTLS or not for a session */
} ts_dtls_stats_t;

/* A copy of worker w's counters (zeros before its first datagram); any thread. */
void ts_turn_dtls_worker_stats(ts_worker_t *w, ts_dtls_stats_t *out);
/* The /metrics lines of the DTLS counters summed over workers, NUL-terminated
 * in out: the length, or 0 when cap is too small. */
size_t ts_turn_dtls_metrics(ts_worker_t *workers, int nworkers, char *out, size_t cap);

#endif
