/*
 * router.h — the route table: a path (exact, or a prefix ending in '/')
 * maps to a handler. Anything no route claims is a static file from web/.
 */
#ifndef TS_HTTP_ROUTER_H
#define TS_HTTP_ROUTER_H

#include "http/server.h"

typedef struct {
    const char *path;
    int prefix; /* match path as a prefix */
    ts_http_handler_t handler;
} ts_http_route_t;

void ts_http_route(ts_http_ctx_t *ctx);

/* Handlers (api.c, static.c). */
void ts_http_healthz(ts_http_ctx_t *ctx);
void ts_http_metrics(ts_http_ctx_t *ctx);
void ts_http_ice_servers(ts_http_ctx_t *ctx);
void ts_http_static(ts_http_ctx_t *ctx);

#endif
