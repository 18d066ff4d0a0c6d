#include "tls/certs.h"

#include <pthread.h>

#include <openssl/ssl.h>

#include "core/common.h"

static pthread_mutex_t ts_certs_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *ts_certs_ctx[2]; /* [0] TLS, [1] DTLS; owned (one reference each) */
static unsigned ts_certs_kinds_loaded;
static unsigned ts_certs_gen;

int ts_certs_load(const char *cert, const char *pkey, unsigned which, char *err, size_t errlen)
{
    SSL_CTX *fresh[2] = {NULL, NULL}, *old[2];

    if (which & TS_CERTS_TLS) {
        if ((fresh[0] = ts_tls_ctx_new(cert, pkey, err, errlen)) == NULL)
            return TS_ERR_CONFIG;
    }
    if (which & TS_CERTS_DTLS) {
        if ((fresh[1] = ts_dtls_ctx_new(cert, pkey, err, errlen)) == NULL) {
            ts_tls_ctx_free(fresh[0]);
            return TS_ERR_CONFIG;
        }
    }
    pthread_mutex_lock(&ts_certs_lock);
    for (int i = 0; i < 2; i++) {
        old[i] = ts_certs_ctx[i];
        ts_certs_ctx[i] = fresh[i];
    }
    ts_certs_kinds_loaded = which;
    __atomic_add_fetch(&ts_certs_gen, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&ts_certs_lock);
    /* Only our reference: the sessions and workers still using them keep theirs. */
    SSL_CTX_free(old[0]);
    SSL_CTX_free(old[1]);
    return TS_OK;
}

static SSL_CTX *ts_certs_ref(int i)
{
    SSL_CTX *ctx;

    pthread_mutex_lock(&ts_certs_lock);
    ctx = ts_certs_ctx[i];
    if (ctx != NULL)
        SSL_CTX_up_ref(ctx);
    pthread_mutex_unlock(&ts_certs_lock);
    return ctx;
}

ts_tls_ctx_t *ts_certs_tls(void)
{
    return ts_certs_ref(0);
}

ts_dtls_ctx_t *ts_certs_dtls(void)
{
    return ts_certs_ref(1);
}

unsigned ts_certs_generation(void)
{
    return __atomic_load_n(&ts_certs_gen, __ATOMIC_ACQUIRE);
}

unsigned ts_certs_kinds(void)
{
    unsigned k;

    pthread_mutex_lock(&ts_certs_lock);
    k = ts_certs_kinds_loaded;
    pthread_mutex_unlock(&ts_certs_lock);
    return k;
}

void ts_certs_free(void)
{
    pthread_mutex_lock(&ts_certs_lock);
    for (int i = 0; i < 2; i++) {
        SSL_CTX_free(ts_certs_ctx[i]);
        ts_certs_ctx[i] = NULL;
    }
    ts_certs_kinds_loaded = 0;
    pthread_mutex_unlock(&ts_certs_lock);
}
