/*
 * response.h — writing responses: status line and the common headers (Date,
 * Server, Content-Length, Connection) built with memcpy, not printf, since
 * /healthz under wrk is a hot path.
 */
#ifndef TS_HTTP_RESPONSE_H
#define TS_HTTP_RESPONSE_H

#include <stddef.h>

#include "http/server.h"

/* The reason phrase of status ("Not Found"), or "Unknown". */
const char *ts_http_reason(int status);

/*
 * Send a complete response. extra_headers is NULL or whole header lines, each
 * ending in CRLF. For HEAD requests and 1xx/204/304 no body is sent.
 */
void ts_http_respond(ts_http_ctx_t *ctx, int status, const char *content_type,
                     const char *extra_headers, const void *body, size_t len);

/* Only the head, announcing len body bytes the caller then writes itself
 * (unless the request is HEAD: check ts_http_wants_body()). */
void ts_http_respond_head(ts_http_ctx_t *ctx, int status, const char *content_type,
                          const char *extra_headers, size_t len);
int ts_http_wants_body(const ts_http_ctx_t *ctx);

/* 405 with "Allow: <allow>" and a JSON body. */
void ts_http_respond_405(ts_http_ctx_t *ctx, const char *allow);

/* {"error":"<message>","status":<status>} with the right status. */
void ts_http_respond_error(ts_http_ctx_t *ctx, int status, const char *message);

#endif
