#include "core/server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"
#include "core/iplimit.h"
#include "core/log.h"
#include "core/net.h"


int ts_server_init(ts_server_t *s, ts_config_t *cfg, const ts_listener_spec_t *specs,
                   size_t nspecs)
{
    int fds[TS_MAX_LISTENERS][256];
    size_t opened = 0;
    int n = cfg->threads, retries = 0;

    memset(s, 0, sizeof(*s));
    s->config = cfg;
    s->start_time = (int64_t)time(NULL);
    if (nspecs > TS_MAX_LISTENERS || n < 1 || n > 256)
        return TS_ERR_CONFIG;

    /* Listeners first: a busy port refuses start-up before any thread runs. */
    for (opened = 0; opened < nspecs; opened++) {
        const ts_listener_spec_t *sp = &specs[opened];
        struct sockaddr_storage sa = sp->endpoint->sa; /* the config stays as given */
        size_t first = opened;

        /* One endpoint on two transports (TURN over UDP and TCP) shares the
         * port the kernel picked for the first. */
        for (size_t j = 0; j < opened; j++) {
            if (specs[j].endpoint == sp->endpoint) {
                sa = s->bound[j].sa;
                first = TS_MIN(first, j);
            }
        }

        if (ts_net_listen_group(&sa, sp->endpoint->len, sp->type, n, fds[opened]) != TS_OK) {
            if (errno == EADDRINUSE && first < opened && ts_sockaddr_port(&sp->endpoint->sa) == 0 &&
                ++retries < 32) {
                /* The port picked for the first transport is taken on this
                 * one: give it back and let the kernel pick again for all. */
                for (size_t l = first; l < opened; l++)
                    for (int i = 0; i < n; i++)
                        close(fds[l][i]);
                opened = first - 1; /* the loop's ++ brings it back to first */
                continue;
            }
            fprintf(stderr, "tsunagi: --%s %s: %s\n", sp->name, sp->endpoint->text,
                    strerror(errno));
            goto fail;
        }
        s->bound[opened].name = sp->name;
        s->bound[opened].type = sp->type;
        s->bound[opened].sa = sa;
        s->nbound = opened + 1;
    }
    for (size_t l = 0; l < nspecs; l++) {
        char addr[TS_ADDRSTRLEN];
        ts_log_info("listening on %s%s://%s (%d workers)", s->bound[l].name,
                    s->bound[l].type == SOCK_DGRAM ? "+udp" : "",
                    ts_sockaddr_str((struct sockaddr *)&s->bound[l].sa, addr, sizeof(addr)), n);
    }

    s->nworkers = n;
    s->workers = ts_calloc((size_t)n, sizeof(*s->workers));
    s->bus.n = n;
    s->bus.inboxes = ts_calloc((size_t)n, sizeof(*s->bus.inboxes));
    for (int i = 0; i < n; i++) {
        if (ts_worker_init(&s->workers[i], s, i) != TS_OK) {
            fprintf(stderr, "tsunagi: cannot set up worker %d: %s\n", i, strerror(errno));
            for (int j = 0; j < i; j++)
                ts_worker_free(&s->workers[j]);
            free(s->workers);
            free(s->bus.inboxes);
            s->workers = NULL;
            goto fail;
        }
        s->bus.inboxes[i] = &s->workers[i].inbox;
        for (size_t l = 0; l < nspecs; l++)
            if (specs[l].type == SOCK_DGRAM)
                ts_worker_add_dgram(&s->workers[i], fds[l][i], specs[l].dgram);
            else
                ts_worker_add_listener(&s->workers[i], fds[l][i], specs[l].ops, specs[l].tls_ctx);
    }
    s->per_ip = ts_iplimit_new();
    return TS_OK;

fail:
    for (size_t l = 0; l < opened; l++)
        for (int i = 0; i < n; i++)
            close(fds[l][i]);
    return TS_ERR_IO;
}

int ts_server_start(ts_server_t *s)
{
    for (int i = 0; i < s->nworkers; i++) {
        __atomic_add_fetch(&s->running_workers, 1, __ATOMIC_RELEASE);
        if (ts_worker_start(&s->workers[i]) != TS_OK) {
            __atomic_sub_fetch(&s->running_workers, 1, __ATOMIC_RELEASE);
            ts_log_error("cannot start worker %d: %s", i, strerror(errno));
            ts_server_stop(s);
            return TS_ERR_IO;
        }
    }
    return TS_OK;
}

static void ts_server_broadcast(ts_server_t *s, uint32_t type)
{
    for (int i = 0; i < s->nworkers; i++)
        ts_bus_send_worker(&s->bus, i, ts_bus_msg_new(type, 0, 0, NULL, 0));
}

void ts_server_drain(ts_server_t *s)
{
    __atomic_store_n(&s->draining_workers, s->nworkers, __ATOMIC_RELEASE);
    ts_server_broadcast(s, TS_MSG_DRAIN);
}

void ts_server__worker_drained(ts_server_t *s)
{
    /* The last one done stops them all (through their inboxes). */
    if (__atomic_sub_fetch(&s->draining_workers, 1, __ATOMIC_ACQ_REL) == 0)
        ts_server_stop(s);
}

void ts_server_stop(ts_server_t *s)
{
    ts_server_broadcast(s, TS_MSG_STOP);
}

void ts_server_reload(ts_server_t *s, ts_config_t *fresh)
{
    ts_config_t *old = s->config;

    /* Workers may hold the old pointer for the rest of their current event;
     * it is retired, not freed, until exit. */
    s->retired = ts_realloc(s->retired, (s->nretired + 1) * sizeof(*s->retired));
    s->retired[s->nretired++] = old;
    __atomic_store_n(&s->config, fresh, __ATOMIC_RELEASE);
    ts_log_set_level(fresh->log_level);
    ts_server_broadcast(s, TS_MSG_RELOAD);
}

int ts_server_done(const ts_server_t *s)
{
    return __atomic_load_n(&s->running_workers, __ATOMIC_ACQUIRE) == 0;
}

void ts_server_join(ts_server_t *s)
{
    for (int i = 0; i < s->nworkers; i++) {
        if (s->workers[i].thread_started)
            pthread_join(s->workers[i].thread, NULL);
        s->workers[i].thread_started = 0;
    }
}

void ts_server_free(ts_server_t *s)
{
    for (int i = 0; i < s->nworkers; i++)
        ts_worker_free(&s->workers[i]);
    free(s->workers);
    free(s->bus.inboxes);
    for (size_t i = 0; i < s->nretired; i++) {
        ts_config_free(s->retired[i]);
        free(s->retired[i]);
    }
    free(s->retired);
    ts_iplimit_free(s->per_ip);
    s->workers = NULL;
    s->retired = NULL;
    s->per_ip = NULL;
}

const struct sockaddr_storage *ts_server_bound(const ts_server_t *s, const char *name, int type)
{
    for (size_t i = 0; i < s->nbound; i++) {
        if (s->bound[i].type == type && strcmp(s->bound[i].name, name) == 0)
            return &s->bound[i].sa;
    }
    return NULL;
}
