/*
 * certs.h — the certificate in force: the TLS and DTLS server contexts that
 * new sessions are made from, built from --cert and --pkey at start-up and
 * built again on SIGHUP.
 *
 * An SSL_CTX is reference counted and every SSL holds a reference to the
 * context it was made from, so a replaced context lives on exactly as long
 * as the last session made from it: a reload changes the certificate for
 * new connections and drops none. Each worker keeps its own reference to
 * the current contexts and takes fresh ones when the generation changes;
 * the lock here is taken only on a reload and on that pick-up, never per
 * connection.
 */
#ifndef TS_TLS_CERTS_H
#define TS_TLS_CERTS_H

#include <stddef.h>

#include "tls/dtls.h"
#include "tls/tls.h"

#define TS_CERTS_TLS  0x1 /* a TLS context (--https, TURN over TLS) */
#define TS_CERTS_DTLS 0x2 /* a DTLS context (TURN over DTLS) */

/*
 * Read cert and pkey into fresh contexts of the kinds in `which` and make
 * them the current ones. All or nothing: on any failure the contexts in
 * force stay, and TS_ERR_CONFIG comes back with a one-line reason in err.
 */
int ts_certs_load(const char *cert, const char *pkey, unsigned which, char *err, size_t errlen);
/* A new reference to the current context (NULL: none); release it with
 * ts_tls_ctx_free / ts_dtls_ctx_free. Any thread. */
ts_tls_ctx_t *ts_certs_tls(void);
ts_dtls_ctx_t *ts_certs_dtls(void);
/* Changes with every successful load; cheap enough to read per event. */
unsigned ts_certs_generation(void);
/* The kinds loaded at start-up (0: no TLS at all). */
unsigned ts_certs_kinds(void);
/* Drop the current contexts (at exit, after the workers are freed). */
void ts_certs_free(void);

#endif
