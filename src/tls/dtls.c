#include "tls/dtls.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "core/common.h"
#include "core/log.h"

/* ------------------------------------------------------------- cookies -- */

/* libcrypto without HMAC-SHA256 or randomness cannot serve DTLS at all. */
static void ts_dtls_die(const char *why)
{
    ts_log_error("DTLS: %s", why);
    abort();
}

/* family, IP (IPv4 as ::ffff:a.b.c.d) and port: 19 bytes per address. */
static size_t ts_dtls_addr_bytes(const struct sockaddr_storage *ss, uint8_t *out)
{
    memset(out, 0, 19);
    out[0] = (uint8_t)ss->ss_family;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        out[11] = out[12] = 0xff;
        memcpy(out + 13, &in->sin_addr, 4);
        memcpy(out + 17, &in->sin_port, 2);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        memcpy(out + 1, &in6->sin6_addr, 16);
        memcpy(out + 17, &in6->sin6_port, 2);
    }
    return 19;
}

void ts_dtls_cookie_make(const uint8_t secret[TS_DTLS_SECRET_LEN], uint64_t epoch,
                         const ts_dtls_tuple_t *tuple, uint8_t out[TS_DTLS_COOKIE_LEN])
{
    uint8_t msg[8 + 19 + 19], md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    size_t n = 0;

    for (int i = 7; i >= 0; i--)
        msg[n++] = (uint8_t)(epoch >> (i * 8));
    n += ts_dtls_addr_bytes(&tuple->peer, msg + n);
    n += ts_dtls_addr_bytes(&tuple->local, msg + n);
    if (HMAC(EVP_sha256(), secret, TS_DTLS_SECRET_LEN, msg, n, md, &mdlen) == NULL)
        ts_dtls_die("HMAC-SHA256 unavailable from libcrypto");
    /* The low byte of the epoch tells the checker which epoch to try. */
    out[0] = (uint8_t)epoch;
    memcpy(out + 1, md, TS_DTLS_COOKIE_LEN - 1);
}

int ts_dtls_cookie_check(const uint8_t secret[TS_DTLS_SECRET_LEN], uint64_t epoch,
                         const ts_dtls_tuple_t *tuple, const uint8_t *cookie, size_t len)
{
    uint8_t want[TS_DTLS_COOKIE_LEN];

    if (len != TS_DTLS_COOKIE_LEN)
        return 0;
    if (cookie[0] != (uint8_t)epoch) {
        if (epoch == 0 || cookie[0] != (uint8_t)(epoch - 1))
            return 0;
        epoch--;
    }
    ts_dtls_cookie_make(secret, epoch, tuple, want);
    return CRYPTO_memcmp(want, cookie, TS_DTLS_COOKIE_LEN) == 0;
}

/* One secret per process: a cookie one worker made is good on another. */
static uint8_t ts_dtls_secret[TS_DTLS_SECRET_LEN];
static pthread_once_t ts_dtls_secret_once = PTHREAD_ONCE_INIT;

static void ts_dtls_secret_make(void)
{
    if (RAND_bytes(ts_dtls_secret, sizeof(ts_dtls_secret)) != 1)
        ts_dtls_die("RAND_bytes failed: no DTLS cookie secret");
}

static uint64_t ts_dtls_epoch(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec / TS_DTLS_EPOCH_S;
}

static int ts_dtls_cookie_generate_cb(SSL *ssl, unsigned char *cookie, unsigned int *len)
{
    const ts_dtls_tuple_t *tuple = SSL_get_app_data(ssl);

    if (tuple == NULL)
        return 0;
    ts_dtls_cookie_make(ts_dtls_secret, ts_dtls_epoch(), tuple, cookie);
    *len = TS_DTLS_COOKIE_LEN;
    return 1;
}

static int ts_dtls_cookie_verify_cb(SSL *ssl, const unsigned char *cookie, unsigned int len)
{
    const ts_dtls_tuple_t *tuple = SSL_get_app_data(ssl);

    return tuple != NULL &&
           ts_dtls_cookie_check(ts_dtls_secret, ts_dtls_epoch(), tuple, cookie, len);
}

/* ------------------------------------------------------------- context -- */

static void ts_dtls_error(char *err, size_t errlen, const char *what, const char *file)
{
    unsigned long e = ERR_get_error();
    char buf[256];

    ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(err, errlen, "%s %s: %s", what, file, e ? buf : "failed");
    ERR_clear_error();
}

ts_dtls_ctx_t *ts_dtls_ctx_new(const char *cert, const char *pkey, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(DTLS_server_method());

    pthread_once(&ts_dtls_secret_once, ts_dtls_secret_make);
    if (ctx == NULL) {
        ts_dtls_error(err, errlen, "DTLS", "context");
        return NULL;
    }
    /* DTLS 1.0 is TLS 1.1's age; OpenSSL 3.0 has no DTLS 1.3. */
    SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION);
    /* No MTU discovery: the glue's BIO is not a socket (sessions share the
     * worker's socket); records are sized for SSL_set_mtu instead. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION | SSL_OP_NO_QUERY_MTU |
                                 SSL_OP_COOKIE_EXCHANGE);
    /* Resumption through tickets only: the server keeps no session cache. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_cookie_generate_cb(ctx, ts_dtls_cookie_generate_cb);
    SSL_CTX_set_cookie_verify_cb(ctx, ts_dtls_cookie_verify_cb);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        ts_dtls_error(err, errlen, "--cert", cert);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, pkey, SSL_FILETYPE_PEM) != 1) {
        ts_dtls_error(err, errlen, "--pkey", pkey);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ts_dtls_error(err, errlen, "--pkey does not match --cert", pkey);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

void ts_dtls_ctx_free(ts_dtls_ctx_t *ctx)
{
    SSL_CTX_free(ctx);
}
