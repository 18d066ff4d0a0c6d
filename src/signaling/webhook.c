/*
 * webhook.c — libcurl's multi interface on a worker's loop.
 *
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when
 * to call it back (CURLMOPT_TIMERFUNCTION); the loop watches them, and on
 * readiness or timeout we call curl_multi_socket_action() and collect what
 * finished. Nothing here blocks and nothing is shared between workers.
 *
 * Sockets curl stops using are freed at the loop's deferred point, not in
 * curl's callback: the loop's current batch of events may still hold them.
 */
#include "signaling/webhook.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/log.h"
#include "core/worker.h"

#define TS_WEBHOOK_MAX_BODY (64 * 1024)

typedef struct ts_webhooks_s ts_webhooks_t;

typedef struct ts_webhook_sock_s ts_webhook_sock_t;
struct ts_webhook_sock_s {
    ts_io_t io;
    ts_webhooks_t *hooks;
    ts_webhook_sock_t *next; /* in hooks->socks, or in hooks->dead */
};

struct ts_webhook_s {
    ts_webhook_t *next, *prev; /* in hooks->reqs */
    ts_webhooks_t *hooks;
    CURL *easy;
    struct curl_slist *headers; /* owned */
    char *body;                 /* owned: curl does not copy POSTFIELDS */
    char *resp;                 /* owned: the answer so far */
    size_t resp_len;
    ts_webhook_cb cb;
    void *arg;
};

/* Per worker (ts_worker_local slot TS_LOCAL_WEBHOOK). */
struct ts_webhooks_s {
    CURLM *multi;
    ts_loop_t *loop;
    ts_timer_t timer;
    ts_defer_t reap; /* frees hooks->dead */
    ts_webhook_t *reqs;
    ts_webhook_sock_t *socks;
    ts_webhook_sock_t *dead;
    int destroying;
};

void ts_webhook_global_init(void)
{
    static int done;

    if (!done && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        ts_log_error("webhooks: curl_global_init failed");
    done = 1;
}

/* ---------------------------------------------------------- requests -- */

static void ts_webhook_free(ts_webhook_t *h)
{
    ts_webhooks_t *hooks = h->hooks;

    if (h->prev != NULL)
        h->prev->next = h->next;
    else
        hooks->reqs = h->next;
    if (h->next != NULL)
        h->next->prev = h->prev;
    curl_multi_remove_handle(hooks->multi, h->easy);
    curl_easy_cleanup(h->easy);
    curl_slist_free_all(h->headers);
    free(h->body);
    free(h->resp);
    free(h);
}

static void ts_webhook_collect(ts_webhooks_t *hooks)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(hooks->multi, &left)) != NULL) {
        ts_webhook_t *h = NULL;
        long status = 0;
        char *url = NULL;

        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&h);
        curl_easy_getinfo(m->easy_handle, CURLINFO_EFFECTIVE_URL, &url);
        if (m->data.result == CURLE_OK)
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        else
            ts_log_warn("webhook %s: %s", url ? url : "?", curl_easy_strerror(m->data.result));
        if (h->cb != NULL)
            h->cb(h->arg, status, h->resp != NULL ? h->resp : "", h->resp_len);
        ts_webhook_free(h);
    }
}

static size_t ts_webhook_on_data(char *p, size_t size, size_t n, void *arg)
{
    ts_webhook_t *h = arg;
    size_t len = size * n;

    if (h->resp_len + len > TS_WEBHOOK_MAX_BODY)
        return 0; /* too long: the transfer fails */
    h->resp = ts_realloc(h->resp, h->resp_len + len + 1);
    memcpy(h->resp + h->resp_len, p, len);
    h->resp_len += len;
    h->resp[h->resp_len] = '\0';
    return len;
}

/* -------------------------------------------------- the loop's side -- */

static void ts_webhook_on_io(ts_loop_t *loop, ts_io_t *io, uint32_t events)
{
    ts_webhook_sock_t *s = ts_container_of(io, ts_webhook_sock_t, io);
    ts_webhooks_t *hooks = s->hooks;
    int mask = 0, running;

    if (events & EPOLLIN)
        mask |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        mask |= CURL_CSELECT_OUT;
    if (events & (EPOLLERR | EPOLLHUP))
        mask |= CURL_CSELECT_ERR;
    curl_multi_socket_action(hooks->multi, io->fd, mask, &running);
    ts_webhook_collect(hooks);
}

static void ts_webhook_on_timer(ts_loop_t *loop, ts_timer_t *t)
{
    ts_webhooks_t *hooks = ts_container_of(t, ts_webhooks_t, timer);
    int running;

    curl_multi_socket_action(hooks->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    ts_webhook_collect(hooks);
}

static void ts_webhook_on_reap(ts_loop_t *loop, ts_defer_t *d)
{
    ts_webhooks_t *hooks = ts_container_of(d, ts_webhooks_t, reap);

    while (hooks->dead != NULL) {
        ts_webhook_sock_t *s = hooks->dead;
        hooks->dead = s->next;
        free(s);
    }
}

static void ts_webhook_sock_drop(ts_webhooks_t *hooks, ts_webhook_sock_t *s)
{
    ts_webhook_sock_t **p = &hooks->socks;

    while (*p != NULL && *p != s)
        p = &(*p)->next;
    if (*p != NULL)
        *p = s->next;
    ts_io_stop(hooks->loop, &s->io);
    if (hooks->destroying) {
        free(s);
        return;
    }
    s->next = hooks->dead;
    hooks->dead = s;
    ts_defer(hooks->loop, &hooks->reap);
}

static int ts_webhook_on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *sockp)
{
    ts_webhooks_t *hooks = userp;
    ts_webhook_sock_t *s = sockp;
    uint32_t events = 0;

    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            curl_multi_assign(hooks->multi, fd, NULL);
            ts_webhook_sock_drop(hooks, s);
        }
        return 0;
    }
    if (s == NULL) {
        s = ts_calloc(1, sizeof(*s));
        s->io.fd = fd;
        s->io.cb = ts_webhook_on_io;
        s->hooks = hooks;
        s->next = hooks->socks;
        hooks->socks = s;
        curl_multi_assign(hooks->multi, fd, s);
    }
    if (what & CURL_POLL_IN)
        events |= TS_IO_READ;
    if (what & CURL_POLL_OUT)
        events |= TS_IO_WRITE;
    if (ts_io_start(hooks->loop, &s->io, events) != TS_OK)
        ts_log_warn("webhooks: epoll_ctl on fd %d failed", (int)fd);
    return 0;
}

static int ts_webhook_on_timeout(CURLM *multi, long ms, void *userp)
{
    ts_webhooks_t *hooks = userp;

    if (ms < 0)
        ts_timer_stop(hooks->loop, &hooks->timer);
    else
        ts_timer_start(hooks->loop, &hooks->timer, (uint64_t)ms);
    return 0;
}

/* ------------------------------------------------------------ worker -- */

static void *ts_webhooks_new(void)
{
    ts_worker_t *w = ts_worker_current();
    ts_webhooks_t *hooks = ts_calloc(1, sizeof(*hooks));

    hooks->loop = &w->loop;
    hooks->multi = curl_multi_init();
    if (hooks->multi == NULL) {
        ts_log_error("webhooks: curl_multi_init failed");
        abort();
    }
    ts_timer_init(&hooks->timer, ts_webhook_on_timer);
    ts_defer_init(&hooks->reap, ts_webhook_on_reap);
    curl_multi_setopt(hooks->multi, CURLMOPT_SOCKETFUNCTION, ts_webhook_on_socket);
    curl_multi_setopt(hooks->multi, CURLMOPT_SOCKETDATA, hooks);
    curl_multi_setopt(hooks->multi, CURLMOPT_TIMERFUNCTION, ts_webhook_on_timeout);
    curl_multi_setopt(hooks->multi, CURLMOPT_TIMERDATA, hooks);
    return hooks;
}

/* With the worker: requests still in flight are dropped unanswered. */
static void ts_webhooks_destroy(void *ptr)
{
    ts_webhooks_t *hooks = ptr;

    hooks->destroying = 1;
    while (hooks->reqs != NULL)
        ts_webhook_free(hooks->reqs);
    curl_multi_cleanup(hooks->multi);
    while (hooks->socks != NULL)
        ts_webhook_sock_drop(hooks, hooks->socks);
    ts_webhook_on_reap(hooks->loop, &hooks->reap);
    ts_timer_stop(hooks->loop, &hooks->timer);
    free(hooks);
}

ts_webhook_t *ts_webhook_post(const char *url, const char *body, size_t len, unsigned timeout_s,
                              ts_webhook_cb cb, void *arg)
{
    ts_worker_t *w = ts_worker_current();
    ts_webhooks_t *hooks;
    ts_webhook_t *h;

    if (w == NULL)
        return NULL;
    hooks = ts_worker_local(w, TS_LOCAL_WEBHOOK, ts_webhooks_new, ts_webhooks_destroy);
    h = ts_calloc(1, sizeof(*h));
    h->hooks = hooks;
    h->cb = cb;
    h->arg = arg;
    h->body = ts_malloc(len + 1);
    memcpy(h->body, body, len);
    h->body[len] = '\0';
    h->easy = curl_easy_init();
    if (h->easy == NULL) {
        free(h->body);
        free(h);
        return NULL;
    }
    h->headers = curl_slist_append(NULL, "Content-Type: application/json");
    h->headers = curl_slist_append(h->headers, "Expect:");
    curl_easy_setopt(h->easy, CURLOPT_URL, url);
    curl_easy_setopt(h->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->headers);
    curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, h->body);
    curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(h->easy, CURLOPT_USERAGENT, "tsunagi/" TS_VERSION);
    curl_easy_setopt(h->easy, CURLOPT_TIMEOUT_MS, (long)timeout_s * 1000);
    curl_easy_setopt(h->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h->easy, CURLOPT_WRITEFUNCTION, ts_webhook_on_data);
    curl_easy_setopt(h->easy, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(h->easy, CURLOPT_PRIVATE, h);
    h->next = hooks->reqs;
    if (hooks->reqs != NULL)
        hooks->reqs->prev = h;
    hooks->reqs = h;
    if (curl_multi_add_handle(hooks->multi, h->easy) != CURLM_OK) {
        h->cb = NULL;
        ts_webhook_free(h);
        return NULL;
    }
    return h;
}

void ts_webhook_cancel(ts_webhook_t *h)
{
    if (h != NULL)
        ts_webhook_free(h);
}
