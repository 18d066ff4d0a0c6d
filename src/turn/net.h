/*
 * net.h — the network glue of STUN/TURN: the worker's UDP sockets (read with
 * recvmmsg, answered with sendmmsg), TCP and TLS connections carrying framed
 * STUN and ChannelData, and the relay sockets, all on the worker's loop,
 * feeding the engine of turn.h.
 */
#ifndef TS_TURN_NET_H
#define TS_TURN_NET_H

#include "core/conn.h"
#include "core/worker.h"
#include "turn/turn.h"

/* STUN/TURN over TCP and TLS (--turn, --turns). */
extern const ts_conn_ops_t ts_turn_stream_ops;

/* The --turn UDP socket of a worker is readable. */
void ts_turn_on_udp(ts_worker_t *w, int fd);

/* Free what the workers' engines shared; after every worker is freed. */
void ts_turn_shutdown(void);

/* A copy of worker w's TURN counters (zeros before its first packet); any thread. */
int ts_turn_worker_stats(ts_worker_t *w, turn_stats_t *out);

/* This worker's engine, created on first use (NULL on a thread without a worker). */
turn_server_t *ts_turn_engine(ts_worker_t *w);

#endif
