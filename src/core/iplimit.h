/*
 * iplimit.h — open connections per client address, counted across every
 * worker, for --max-connections-per-ip.
 *
 * A client address is an IPv4 address (an IPv4-mapped IPv6 address counts
 * as the IPv4 address it carries) or an IPv6 /64: one IPv6 subscriber is
 * usually handed a whole /64, so counting single IPv6 addresses would let
 * one client open 2^64 times the limit.
 *
 * The table is touched only on accept and on close, never per message. It is
 * striped: an address hashes (with a per-process random seed, so a client
 * cannot pick addresses that pile into one stripe or chain) to one of a
 * fixed number of stripes, each a small open-addressing table behind its own
 * mutex, so workers accepting at once rarely wait for each other. An address
 * whose count drops to zero leaves the table: memory follows the number of
 * distinct addresses connected now.
 */
#ifndef TS_IPLIMIT_H
#define TS_IPLIMIT_H

#include <stdint.h>

#include "core/net.h"

typedef struct ts_iplimit_s ts_iplimit_t;

ts_iplimit_t *ts_iplimit_new(void);
void ts_iplimit_free(ts_iplimit_t *t);

/* Count one more connection from p, unless max are open already:
 * TS_OK (counted) or TS_ERR_LIMIT (not counted). */
int ts_iplimit_acquire(ts_iplimit_t *t, const ts_peer_t *p, unsigned max);
/* Forget one connection from p counted by ts_iplimit_acquire(). */
void ts_iplimit_release(ts_iplimit_t *t, const ts_peer_t *p);
/* Connections counted for p's client address now. */
unsigned ts_iplimit_count(ts_iplimit_t *t, const ts_peer_t *p);
/* Distinct client addresses with a connection open now. */
size_t ts_iplimit_addresses(ts_iplimit_t *t);

#endif
