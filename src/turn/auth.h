/*
 * auth.h — TURN credentials and the peer filter.
 *
 * Credentials: the long-term mechanism (RFC 8489 9.2) with REALM and NONCE,
 * for static users (--user) and for the TURN REST API scheme exactly as
 * coturn's use-auth-secret (username "EXPIRY:NAME", password
 * base64(HMAC-SHA1(secret, username)), expired: 401). Nonces are stateless
 * (an HMAC of their issue time under a key made at start-up) so no state is
 * created for a packet that has not authenticated; they expire (438).
 *
 * Peer filter: which peer addresses TURN may relay to (coturn CVE-2020-26262
 * and its kind): private, loopback, link-local, multicast and the like are
 * denied by default, also when hidden inside ::ffff:0:0/96, 64:ff9b::/96 or
 * 2002::/16; --allowed-peer-ip overrides, --denied-peer-ip adds.
 */
#ifndef TS_TURN_AUTH_H
#define TS_TURN_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/config.h"

#define TURN_NONCE_LEN       37 /* characters at most: the cookie and 24 */
#define TURN_NONCE_PLAIN_LEN 24 /* characters without the cookie */

#define TURN_NONCE_TTL_MS  (600u * 1000u) /* turn_auth_init's nonce_ttl_ms */
#define TURN_REST_PASS_LEN 28 /* characters of a REST API password: base64 of 20 bytes */
/* A pass buffer of this size holds every REST API password and every static
 * password shorter than it (a longer one does not authenticate). */
#define TURN_PASS_MAX 256

typedef struct {
    uint8_t key[32];       /* HMAC key for nonces, random per process */
    uint64_t nonce_ttl_ms; /* default 10 minutes */
} turn_auth_t;

/* Draws the key (aborts if OpenSSL has no randomness). Read-only afterwards:
 * one turn_auth_t may serve every worker, so that a nonce issued by one
 * worker is good on another. */
void turn_auth_init(turn_auth_t *a);

/* A fresh nonce (NUL-terminated) for now_ms (monotonic milliseconds below
 * 2^48: the clock turn_nonce_check gets), with the security-feature cookie:
 * TURN_NONCE_LEN characters. Two calls never give the same nonce. */
void turn_nonce_make(const turn_auth_t *a, uint64_t now_ms, char *out, size_t cap);
/* The same with the RFC 8489 9.2 security-feature cookie "obMatJos2" in
 * front when cookie is set (password algorithms and username anonymity:
 * TURN_NONCE_LEN characters), without it otherwise (TURN_NONCE_PLAIN_LEN). */
void turn_nonce_make2(const turn_auth_t *a, uint64_t now_ms, int cookie, char *out, size_t cap);
/* Either form: 1 valid, 0 stale (expired: 438), -1 not ours (401). */
int turn_nonce_check(const turn_auth_t *a, uint64_t now_ms, const char *nonce, size_t len);
/* The same with a lifetime of ttl_ms instead of a->nonce_ttl_ms (0: no limit;
 * --stale-nonce, which SIGHUP may change while the key stays). */
int turn_nonce_check2(const turn_auth_t *a, uint64_t now_ms, uint64_t ttl_ms, const char *nonce,
                      size_t len);

/*
 * The password for username: a static --user, or (with --static-auth-secret)
 * the REST API password when the username is "EXPIRY[:NAME]" with EXPIRY a
 * Unix time not yet past (now_unix). Writes it to pass (NUL-terminated).
 * Returns 1 when found, 0 when the user is unknown or the REST username has
 * expired.
 */
int turn_password(const ts_config_t *cfg, const char *user, size_t ulen, int64_t now_unix,
                  char *pass, size_t cap);

/* The REST API credential for name valid until now_unix + ttl:
 * user = "EXPIRY:NAME", pass = base64(HMAC-SHA1(secret, user)). A NULL or
 * empty name gives user = "EXPIRY". When user does not fit ucap, pass does
 * not fit pcap (TURN_REST_PASS_LEN + 1 is enough) or secret is NULL, both
 * are set to "" rather than to a pair that does not match. */
void turn_rest_credential(const char *secret, const char *name, int64_t now_unix, unsigned ttl,
                          char *user, size_t ucap, char *pass, size_t pcap);

/*
 * The name --user-quota counts allocations under, as coturn counts them: the
 * NAME of a REST API username "EXPIRY:NAME" (or "NAME:EXPIRY"), so that the
 * credentials handed out to one person at different times share one quota;
 * otherwise the whole username. *name points into user.
 */
void turn_quota_name(const char *user, size_t ulen, const char **name, size_t *nlen);

/* May TURN relay to this peer address? 1 when it is in an --allowed-peer-ip
 * range; else 0 when it is on the default deny list (loopback excepted with
 * --allow-loopback-peers) or in a --denied-peer-ip range; else 1. An IPv6
 * address embedding an IPv4 one is judged as both. No allocation, no lock. */
int turn_peer_allowed(const ts_config_t *cfg, const struct sockaddr *peer);

#endif
