/*
 * webhook.h — HTTP POSTs of JSON that never block a worker: libcurl's multi
 * interface driven by the worker's own loop (its sockets on the epoll, its
 * timeout on a loop timer), one multi handle per worker, created on first
 * use. The Ayame authn and disconnect webhooks use it.
 */
#ifndef TS_SIGNALING_WEBHOOK_H
#define TS_SIGNALING_WEBHOOK_H

#include <stddef.h>

typedef struct ts_webhook_s ts_webhook_t;

/* The answer: HTTP status (0: no answer in time, or the request failed)
 * and the body (at most 64 KiB; a longer one counts as failed). Runs on the
 * worker's loop; the body is valid during the call only. */
typedef void (*ts_webhook_cb)(void *arg, long status, const char *body, size_t len);

/*
 * POST body (JSON) to url from the calling worker, with a time limit of
 * timeout_s seconds. cb may be NULL (fire and forget). Returns a handle for
 * ts_webhook_cancel(), valid until cb has run; NULL when the request could
 * not even start (cb is then not called).
 */
ts_webhook_t *ts_webhook_post(const char *url, const char *body, size_t len, unsigned timeout_s,
                              ts_webhook_cb cb, void *arg);

/* Drop a request in flight: its cb never runs. Worker thread only. */
void ts_webhook_cancel(ts_webhook_t *h);

/* Once, before any worker thread starts. */
void ts_webhook_global_init(void);

#endif
