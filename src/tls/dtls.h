/*
 * dtls.h — OpenSSL glue for DTLS 1.2 on datagram sockets (TURN over DTLS on
 * the --turns port): the server context, and the stateless cookies of the
 * HelloVerifyRequest exchange (RFC 6347 4.2.1).
 *
 * A cookie is an HMAC over the client's 5-tuple and a time epoch under a
 * per-process secret, so checking one needs no memory of having sent it: a
 * ClientHello from a forged address costs the server one HMAC and one small
 * answer to that address, and creates nothing.
 */
#ifndef TS_DTLS_H
#define TS_DTLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct ssl_ctx_st ts_dtls_ctx_t; /* SSL_CTX */

#define TS_DTLS_SECRET_LEN 32
#define TS_DTLS_COOKIE_LEN 21 /* 1 byte of epoch, 20 of HMAC-SHA256 */
#define TS_DTLS_EPOCH_S    64 /* a cookie is good for 64 to 128 s */

/* What the cookie callbacks read from SSL_get_app_data(): the 5-tuple of
 * the datagram being handled. */
typedef struct {
    struct sockaddr_storage peer;
    socklen_t peer_len;
    struct sockaddr_storage local;
    socklen_t local_len;
} ts_dtls_tuple_t;

/* A DTLS 1.2 server context with cert (a PEM chain) and pkey, cookie
 * exchange on. NULL on failure, with a one-line reason in err. */
ts_dtls_ctx_t *ts_dtls_ctx_new(const char *cert, const char *pkey, char *err, size_t errlen);
void ts_dtls_ctx_free(ts_dtls_ctx_t *ctx);

/* The cookie for tuple in epoch (seconds / TS_DTLS_EPOCH_S). */
void ts_dtls_cookie_make(const uint8_t secret[TS_DTLS_SECRET_LEN], uint64_t epoch,
                         const ts_dtls_tuple_t *tuple, uint8_t out[TS_DTLS_COOKIE_LEN]);
/* 1 when cookie is the one made for tuple in epoch or the one before. */
int ts_dtls_cookie_check(const uint8_t secret[TS_DTLS_SECRET_LEN], uint64_t epoch,
                         const ts_dtls_tuple_t *tuple, const uint8_t *cookie, size_t len);

#endif
