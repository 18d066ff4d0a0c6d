/*
 * api.c — the server's own endpoints: /healthz and /metrics.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/common.h"
#include "core/metrics.h"
#include "core/server.h"
#include "core/worker.h"
#include "http/response.h"
#include "http/router.h"
#include "turn/ice.h"
#include "turn/dtls.h"
#include "turn/net.h"

#include <openssl/rand.h>

static int ts_http_get_or_head(ts_http_ctx_t *ctx)
{
    if (ctx->req->method == HTTP_GET || ctx->req->method == HTTP_HEAD)
        return 1;
    ts_http_respond_405(ctx, "GET, HEAD");
    return 0;
}

void ts_http_healthz(ts_http_ctx_t *ctx)
{
    if (!ts_http_get_or_head(ctx))
        return;
    ts_http_respond(ctx, 200, "text/plain", "Cache-Control: no-store\r\n", "ok\n", 3);
}

/* A growing text buffer for the metrics page. */
typedef struct {
    char *p;
    size_t len, cap;
} ts_text_t;

static void ts_text_printf(ts_text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ts_text_printf(ts_text_t *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        t->cap = t->cap * 2 + (size_t)(n > 0 ? n : 0);
        t->p = ts_realloc(t->p, t->cap);
    }
}

void ts_http_metrics(ts_http_ctx_t *ctx)
{
    ts_server_t *s = ctx->hc->conn.worker->server;
    ts_text_t t = {ts_malloc(8192), 0, 8192};
    uint64_t v;

    if (!ts_http_get_or_head(ctx)) {
        free(t.p);
        return;
    }

#define TS_SUM(field)                                                                              \
    do {                                                                                           \
        v = 0;                                                                                     \
        for (int i = 0; i < s->nworkers; i++)                                                      \
            v += ts_metric_get(s->workers[i].metrics.field);                                       \
    } while (0)

    ts_text_printf(&t, "# HELP tsunagi_build_info Version and commit of this binary.\n"
                       "# TYPE tsunagi_build_info gauge\n"
                       "tsunagi_build_info{version=\"%s\",commit=\"%s\"} 1\n",
                   TS_VERSION, TS_GIT_COMMIT);
    ts_text_printf(&t, "# HELP tsunagi_workers Worker threads.\n"
                       "# TYPE tsunagi_workers gauge\n"
                       "tsunagi_workers %d\n",
                   s->nworkers);
    ts_text_printf(&t, "# HELP tsunagi_start_time_seconds Start time, seconds since the epoch.\n"
                       "# TYPE tsunagi_start_time_seconds gauge\n"
                       "tsunagi_start_time_seconds %lld\n",
                   (long long)s->start_time);

    ts_text_printf(&t, "# HELP tsunagi_connections_open Connections open now, by protocol.\n"
                       "# TYPE tsunagi_connections_open gauge\n");
    for (int k = 0; k < TS_PROTO_COUNT; k++) {
        TS_SUM(conn_open[k]);
        ts_text_printf(&t, "tsunagi_connections_open{protocol=\"%s\"} %llu\n",
                       ts_proto_kind_name(k), (unsigned long long)v);
    }
    ts_text_printf(&t, "# HELP tsunagi_connections_total Connections opened, by protocol.\n"
                       "# TYPE tsunagi_connections_total counter\n");
    for (int k = 0; k < TS_PROTO_COUNT; k++) {
        TS_SUM(conn_total[k]);
        ts_text_printf(&t, "tsunagi_connections_total{protocol=\"%s\"} %llu\n",
                       ts_proto_kind_name(k), (unsigned long long)v);
    }
    ts_text_printf(&t, "# HELP tsunagi_http_requests_total HTTP responses sent, by status.\n"
                       "# TYPE tsunagi_http_requests_total counter\n");
    for (int code = TS_METRICS_STATUS_MIN; code <= TS_METRICS_STATUS_MAX; code++) {
        TS_SUM(http_status[code - TS_METRICS_STATUS_MIN]);
        if (v != 0)
            ts_text_printf(&t, "tsunagi_http_requests_total{status=\"%d\"} %llu\n", code,
                           (unsigned long long)v);
    }
    TS_SUM(bytes_in);
    ts_text_printf(&t, "# HELP tsunagi_received_bytes_total Bytes read from TCP connections.\n"
                       "# TYPE tsunagi_received_bytes_total counter\n"
                       "tsunagi_received_bytes_total %llu\n",
                   (unsigned long long)v);
    TS_SUM(bytes_out);
    ts_text_printf(&t, "# HELP tsunagi_sent_bytes_total Bytes written to TCP connections.\n"
                       "# TYPE tsunagi_sent_bytes_total counter\n"
                       "tsunagi_sent_bytes_total %llu\n",
                   (unsigned long long)v);
    TS_SUM(accept_errors);
    ts_text_printf(&t, "# HELP tsunagi_accept_errors_total Failed accept() calls.\n"
                       "# TYPE tsunagi_accept_errors_total counter\n"
                       "tsunagi_accept_errors_total %llu\n",
                   (unsigned long long)v);
    TS_SUM(conn_refused);
    ts_text_printf(&t, "# HELP tsunagi_connections_refused_total Connections refused over "
                       "--max-connections.\n"
                       "# TYPE tsunagi_connections_refused_total counter\n"
                       "tsunagi_connections_refused_total %llu\n",
                   (unsigned long long)v);
    TS_SUM(conn_refused_per_ip);
    ts_text_printf(&t, "# HELP tsunagi_connections_refused_per_ip_total Connections refused over "
                       "--max-connections-per-ip.\n"
                       "# TYPE tsunagi_connections_refused_per_ip_total counter\n"
                       "tsunagi_connections_refused_per_ip_total %llu\n",
                   (unsigned long long)v);
    ts_text_printf(&t, "# HELP tsunagi_signaling_rate_limited_total Signaling clients closed "
                       "over --signaling-rate, by protocol.\n"
                       "# TYPE tsunagi_signaling_rate_limited_total counter\n");
    for (int k = 0; k < TS_SIG_COUNT; k++) {
        TS_SUM(sig_rate_limited[k]);
        ts_text_printf(&t, "tsunagi_signaling_rate_limited_total{protocol=\"%s\"} %llu\n",
                       ts_sig_kind_name(k), (unsigned long long)v);
    }
#undef TS_SUM

    {
        static const struct {
            const char *name, *type, *help;
            size_t off;
        } turn_metrics[] = {
            {"tsunagi_turn_allocations", "gauge", "TURN allocations open now.",
             offsetof(turn_stats_t, allocations)},
            {"tsunagi_turn_allocations_total", "counter", "TURN allocations made.",
             offsetof(turn_stats_t, allocations_total)},
            {"tsunagi_stun_binding_requests_total", "counter", "STUN Binding requests answered.",
             offsetof(turn_stats_t, binding_requests)},
            {"tsunagi_stun_requests_total", "counter", "STUN and TURN requests of every method.",
             offsetof(turn_stats_t, requests)},
            {"tsunagi_turn_auth_failures_total", "counter",
             "Requests whose credentials were wrong (401 with credentials).",
             offsetof(turn_stats_t, auth_failures)},
            {"tsunagi_turn_relayed_packets_total", "counter",
             "Packets relayed between clients and peers, both ways.",
             offsetof(turn_stats_t, relayed_packets)},
            {"tsunagi_turn_relayed_bytes_total", "counter", "Bytes relayed, both ways.",
             offsetof(turn_stats_t, relayed_bytes)},
            {"tsunagi_turn_dropped_total", "counter",
             "Packets dropped: malformed, unauthenticated or to a denied peer.",
             offsetof(turn_stats_t, dropped)},
            {"tsunagi_turn_requests_rate_limited_total", "counter",
             "STUN/TURN requests dropped unanswered over --turn-request-rate.",
             offsetof(turn_stats_t, rate_limited)},
        };
        turn_stats_t per[256];
        int nw = TS_MIN(s->nworkers, 256);

        for (int i = 0; i < nw; i++)
            ts_turn_worker_stats(&s->workers[i], &per[i]);
        for (size_t m = 0; m < TS_ARRAY_SIZE(turn_metrics); m++) {
            v = 0;
            for (int i = 0; i < nw; i++)
                v += *(const uint64_t *)((const char *)&per[i] + turn_metrics[m].off);
            ts_text_printf(&t, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", turn_metrics[m].name,
                           turn_metrics[m].help, turn_metrics[m].name, turn_metrics[m].type,
                           turn_metrics[m].name, (unsigned long long)v);
        }
    }
    {
        char dtls[2048];
        size_t n = ts_turn_dtls_metrics(s->workers, s->nworkers, dtls, sizeof(dtls));
        ts_text_printf(&t, "%.*s", (int)n, dtls);
    }

    ts_http_respond(ctx, 200, "text/plain; version=0.0.4; charset=utf-8",
                    "Cache-Control: no-store\r\n", t.p, t.len);
    free(t.p);
}

/* /api/ice-servers: tsunagi's STUN/TURN with fresh REST credentials. */
void ts_http_ice_servers(ts_http_ctx_t *ctx)
{
    ts_server_t *s = ctx->hc->conn.worker->server;
    const http_request_t *req = ctx->req;
    const char *host = req->host.base;
    size_t hlen = req->host.len;
    char list[2048], name[20], body[2200];
    unsigned char rnd[6];
    size_t n;
    int len;

    if (!ts_http_get_or_head(ctx))
        return;
    /* The host the browser used, without its port. */
    if (host != NULL && hlen > 0) {
        const char *end = host[0] == '[' ? memchr(host, ']', hlen) : memchr(host, ':', hlen);
        if (end != NULL)
            hlen = (size_t)(end - host) + (host[0] == '[');
    }
    /* A name of its own for each credential, so --user-quota counts per client. */
    RAND_bytes(rnd, sizeof(rnd));
    snprintf(name, sizeof(name), "web-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3],
             rnd[4], rnd[5]);
    n = ts_ice_servers_json(s, host, hlen, name, list, sizeof(list));
    if (n == 0) {
        ts_http_respond_error(ctx, 500, "ice servers do not fit");
        return;
    }
    len = snprintf(body, sizeof(body), "{\"iceServers\":%s,\"ttl\":%u}\n", list,
                   ts_server_config(s)->credential_ttl);
    ts_http_respond(ctx, 200, "application/json", "Cache-Control: no-store\r\n", body,
                    (size_t)len);
}
