/*
 * server.h — HTTP/1.1 connections: framing requests (heads, Content-Length
 * and chunked bodies), keep-alive and pipelining in order, timeouts, and
 * dispatch to the route table.
 */
#ifndef TS_HTTP_SERVER_H
#define TS_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "core/conn.h"
#include "http/parser.h"

#define TS_HTTP_MAX_BODY (64 * 1024)

typedef struct ts_http_conn_s ts_http_conn_t;

struct ts_http_conn_s {
    ts_conn_t conn; /* first: the connection layer allocates this struct */
    http_parse_state_t ps;
    http_chunked_t chunked;
    uint8_t state;       /* TS_HTTP_S_* */
    uint8_t timer_kind;  /* TS_HTTP_T_* */
    uint8_t sent_continue;
    uint8_t closing;     /* answer what is in flight with "Connection: close" */
    uint32_t head_len;   /* while reading a body: bytes of the head */
    uint32_t body_len;   /* Content-Length, or chunked bytes decoded so far */
    uint32_t raw_used;   /* chunked: encoded bytes consumed after the head */
    uint32_t requests;   /* answered on this connection */
};

/* What a route handler gets. */
typedef struct {
    ts_http_conn_t *hc;
    const http_request_t *req;
    const char *body; /* request body (decoded), in the connection's buffer */
    size_t body_len;
    int keep_alive; /* the response keeps the connection open */
    int status;     /* set by the response functions */
    size_t bytes;   /* body bytes sent */
    /* Set by a handler that takes the connection over (WebSocket upgrade):
     * called once the request is consumed; the HTTP layer then steps aside. */
    void (*upgrade)(ts_http_conn_t *hc, void *arg);
    void *upgrade_arg;
} ts_http_ctx_t;

typedef void (*ts_http_handler_t)(ts_http_ctx_t *ctx);

extern const ts_conn_ops_t ts_http_ops;

#endif
