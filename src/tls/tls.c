#include "tls/tls.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/common.h"

static void ts_tls_error(char *err, size_t errlen, const char *what, const char *file)
{
    unsigned long e = ERR_get_error();
    char buf[256];

    ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(err, errlen, "%s %s: %s", what, file, e ? buf : "failed");
    ERR_clear_error();
}

ts_tls_ctx_t *ts_tls_ctx_new(const char *cert, const char *pkey, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL) {
        ts_tls_error(err, errlen, "TLS", "context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    /* Buffers are moved and partially written by the connection layer. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        ts_tls_error(err, errlen, "--cert", cert);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, pkey, SSL_FILETYPE_PEM) != 1) {
        ts_tls_error(err, errlen, "--pkey", pkey);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ts_tls_error(err, errlen, "--pkey does not match --cert", pkey);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

void ts_tls_ctx_free(ts_tls_ctx_t *ctx)
{
    SSL_CTX_free(ctx);
}

ts_tls_ctx_t *ts_tls_ctx_ref(ts_tls_ctx_t *ctx)
{
    if (ctx != NULL)
        SSL_CTX_up_ref(ctx);
    return ctx;
}

ts_tls_t *ts_tls_new(ts_tls_ctx_t *ctx, int fd)
{
    SSL *ssl = SSL_new(ctx);

    if (ssl == NULL)
        return NULL;
    SSL_set_fd(ssl, fd);
    SSL_set_accept_state(ssl);
    return ssl;
}

void ts_tls_free(ts_tls_t *tls)
{
    SSL_free(tls);
}

/* Map an OpenSSL result to the project's codes. */
static int ts_tls_result(SSL *ssl, int rc, int *want_write, const char **why)
{
    int e = SSL_get_error(ssl, rc);

    *want_write = 0;
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return TS_ERR_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        *want_write = 1;
        return TS_ERR_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        *why = "TLS close_notify";
        return TS_ERR_CLOSED;
    case SSL_ERROR_SYSCALL:
        *why = errno == 0 ? "TLS: peer closed" : "TLS: socket error";
        ERR_clear_error();
        return errno == 0 ? TS_ERR_CLOSED : TS_ERR_IO;
    default: {
        unsigned long err = ERR_peek_error();
        const char *reason = ERR_reason_error_string(err);
        *why = reason != NULL ? reason : "TLS error";
        ERR_clear_error();
        return TS_ERR_PROTO;
    }
    }
}

int ts_tls_handshake(ts_tls_t *tls, int *want_write, const char **why)
{
    int rc;

    ERR_clear_error();
    errno = 0;
    rc = SSL_do_handshake(tls);
    if (rc == 1)
        return 1;
    return ts_tls_result(tls, rc, want_write, why);
}

ssize_t ts_tls_read(ts_tls_t *tls, void *buf, size_t len, int *want_write, const char **why)
{
    size_t n = 0;

    ERR_clear_error();
    errno = 0;
    if (SSL_read_ex(tls, buf, len, &n) == 1)
        return (ssize_t)n;
    return ts_tls_result(tls, 0, want_write, why);
}

ssize_t ts_tls_write(ts_tls_t *tls, const void *buf, size_t len, int *want_write,
                     const char **why)
{
    size_t n = 0;

    ERR_clear_error();
    errno = 0;
    if (SSL_write_ex(tls, buf, len, &n) == 1)
        return (ssize_t)n;
    return ts_tls_result(tls, 0, want_write, why);
}

int ts_tls_pending(ts_tls_t *tls)
{
    return SSL_pending(tls);
}

void ts_tls_shutdown(ts_tls_t *tls)
{
    ERR_clear_error();
    if (SSL_is_init_finished(tls))
        SSL_shutdown(tls);
    ERR_clear_error();
}

int ts_tls_handshake_done(ts_tls_t *tls)
{
    return SSL_is_init_finished(tls);
}
