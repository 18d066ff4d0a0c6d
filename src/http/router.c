#include "http/router.h"

#include <string.h>

#include "core/server.h"
#include "core/worker.h"
#include "http/response.h"
#include "signaling/signaling.h"
#include "ws/ws.h"

/* /echo exists only with --echo (conformance tests and benchmarks). */
static void ts_http_echo(ts_http_ctx_t *ctx)
{
    if (!ts_server_config(ctx->hc->conn.worker->server)->echo) {
        ts_http_static(ctx);
        return;
    }
    ts_ws_upgrade(ctx, &ts_ws_echo_endpoint);
}

static const ts_http_route_t ts_http_routes[] = {
    {"/healthz", 0, ts_http_healthz},
    {"/metrics", 0, ts_http_metrics},
    {"/echo", 0, ts_http_echo},
    {"/api/ice-servers", 0, ts_http_ice_servers},
    {"/signaling", 0, ts_http_ayame},
    {"/peerjs", 1, ts_http_peerjs},
};

static int ts_route_match(const ts_http_route_t *r, http_str_t path)
{
    size_t n = strlen(r->path);

    if (r->prefix)
        return path.len >= n && memcmp(path.base, r->path, n) == 0;
    return path.len == n && memcmp(path.base, r->path, n) == 0;
}

void ts_http_route(ts_http_ctx_t *ctx)
{
    const http_request_t *req = ctx->req;

    if (req->method == HTTP_OTHER) {
        ts_http_respond_error(ctx, 501, "method not implemented");
        return;
    }
    if (req->method == HTTP_OPTIONS && req->target.len == 1 && req->target.base[0] == '*') {
        /* The server as a whole (RFC 9110 9.3.7). */
        ts_http_respond(ctx, 204, NULL, "Allow: GET, HEAD, OPTIONS\r\n", NULL, 0);
        return;
    }
    if (req->method == HTTP_CONNECT || req->path.len == 0 || req->path.base[0] != '/') {
        ts_http_respond_error(ctx, 400, "bad request target");
        return;
    }
    for (size_t i = 0; i < sizeof(ts_http_routes) / sizeof(ts_http_routes[0]); i++) {
        if (ts_route_match(&ts_http_routes[i], req->path)) {
            ts_http_routes[i].handler(ctx);
            return;
        }
    }
    ts_http_static(ctx);
}
