/*
 * tls.h — OpenSSL glue for TLS on stream connections (https://, wss://).
 * The handshake and all record I/O are non-blocking and driven by the
 * connection layer (core/conn.c); this file only makes contexts and maps
 * OpenSSL's answers to the project's error codes.
 */
#ifndef TS_TLS_H
#define TS_TLS_H

#include <stddef.h>
#include <sys/types.h>

typedef struct ssl_ctx_st ts_tls_ctx_t; /* SSL_CTX */
typedef struct ssl_st ts_tls_t;         /* SSL */

/* A server context for TLS 1.2 and 1.3 with cert (a PEM chain) and pkey.
 * NULL on failure, with a one-line reason in err. */
ts_tls_ctx_t *ts_tls_ctx_new(const char *cert, const char *pkey, char *err, size_t errlen);
void ts_tls_ctx_free(ts_tls_ctx_t *ctx);
/* Another reference to ctx (SSL_CTX_up_ref), released with ts_tls_ctx_free. */
ts_tls_ctx_t *ts_tls_ctx_ref(ts_tls_ctx_t *ctx);

/* A server-side session on fd. */
ts_tls_t *ts_tls_new(ts_tls_ctx_t *ctx, int fd);
void ts_tls_free(ts_tls_t *tls);

/*
 * Each returns bytes (> 0), or:
 *   TS_ERR_AGAIN   wait for the socket to be readable (*want_write = 0)
 *                  or writable (*want_write = 1)
 *   TS_ERR_CLOSED  the peer closed the TLS session
 *   TS_ERR_IO / TS_ERR_PROTO  failure (the reason is in *why)
 * ts_tls_handshake returns 1 when the handshake is complete.
 */
int ts_tls_handshake(ts_tls_t *tls, int *want_write, const char **why);
ssize_t ts_tls_read(ts_tls_t *tls, void *buf, size_t len, int *want_write, const char **why);
ssize_t ts_tls_write(ts_tls_t *tls, const void *buf, size_t len, int *want_write,
                     const char **why);
/* Decrypted bytes OpenSSL holds that a read would return at once. */
int ts_tls_pending(ts_tls_t *tls);
/* Send close_notify, without waiting for the peer's. */
void ts_tls_shutdown(ts_tls_t *tls);
int ts_tls_handshake_done(ts_tls_t *tls);

#endif
