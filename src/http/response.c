#include "http/response.h"

#include <stdio.h>
#include <string.h>

#include "core/common.h"
#include "core/metrics.h"
#include "core/worker.h"

#define TS_SERVER_HEADER "Server: tsunagi/" TS_VERSION "\r\n"

const char *ts_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

static inline char *ts_put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define TS_PUT_LIT(p, lit) ts_put((p), (lit), sizeof(lit) - 1)

static char *ts_put_uint(char *p, size_t v)
{
    char tmp[24];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

int ts_http_wants_body(const ts_http_ctx_t *ctx)
{
    return ctx->req == NULL || ctx->req->method != HTTP_HEAD;
}

void ts_http_respond(ts_http_ctx_t *ctx, int status, const char *content_type,
                     const char *extra_headers, const void *body, size_t len)
{
    int no_body = status < 200 || status == 204 || status == 304;

    ts_http_respond_head(ctx, status, content_type, extra_headers, len);
    if (!no_body && len > 0 && ts_http_wants_body(ctx))
        ts_conn_write(&ctx->hc->conn, body, len);
}

void ts_http_respond_head(ts_http_ctx_t *ctx, int status, const char *content_type,
                          const char *extra_headers, size_t len)
{
    ts_conn_t *c = &ctx->hc->conn;
    ts_worker_t *w = c->worker;
    const char *reason = ts_http_reason(status);
    int no_body = status < 200 || status == 204 || status == 304;
    char head[512];
    char *p = head;

    p = TS_PUT_LIT(p, "HTTP/1.1 ");
    p = ts_put_uint(p, (size_t)status);
    *p++ = ' ';
    p = ts_put(p, reason, strlen(reason));
    p = TS_PUT_LIT(p, "\r\n" TS_SERVER_HEADER "Date: ");
    p = ts_put(p, w->http_date, strlen(w->http_date));
    p = TS_PUT_LIT(p, "\r\n");
    if (content_type != NULL && !no_body) {
        p = TS_PUT_LIT(p, "Content-Type: ");
        p = ts_put(p, content_type, TS_MIN(strlen(content_type), 128));
        p = TS_PUT_LIT(p, "\r\n");
    }
    if (!no_body) {
        p = TS_PUT_LIT(p, "Content-Length: ");
        p = ts_put_uint(p, len);
        p = TS_PUT_LIT(p, "\r\n");
    }
    if (!ctx->keep_alive)
        p = TS_PUT_LIT(p, "Connection: close\r\n");
    else if (ctx->req != NULL && ctx->req->minor_version == 0)
        p = TS_PUT_LIT(p, "Connection: keep-alive\r\n");
    ts_conn_write(c, head, (size_t)(p - head));
    if (extra_headers != NULL)
        ts_conn_write(c, extra_headers, strlen(extra_headers));
    ts_conn_write(c, "\r\n", 2);
    ctx->status = status;
    ctx->bytes = no_body ? 0 : len;
    ts_metrics_http_status(&w->metrics, status);
}

void ts_http_respond_error(ts_http_ctx_t *ctx, int status, const char *message)
{
    char body[256];
    size_t n = 0;

    /* message is always one of our own static strings: no JSON escaping needed,
     * but keep it to printable ASCII without quotes anyway. */
    n = (size_t)snprintf(body, sizeof(body), "{\"error\":\"");
    for (const char *m = message; *m && n < sizeof(body) - 32; m++)
        body[n++] = (*m == '"' || *m == '\\' || (unsigned char)*m < 0x20) ? '?' : *m;
    n += (size_t)snprintf(body + n, sizeof(body) - n, "\",\"status\":%d}\n", status);
    ts_http_respond(ctx, status, "application/json", NULL, body, n);
}

void ts_http_respond_405(ts_http_ctx_t *ctx, const char *allow)
{
    static const char body[] = "{\"error\":\"method not allowed\",\"status\":405}\n";
    char headers[128];

    snprintf(headers, sizeof(headers), "Allow: %s\r\n", allow);
    ts_http_respond(ctx, 405, "application/json", headers, body, sizeof(body) - 1);
}
