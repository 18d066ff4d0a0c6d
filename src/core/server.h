/*
 * server.h — the process: its configuration, its workers, the bus between
 * them, and the lifecycle (start, drain on SIGTERM, reload on SIGHUP).
 */
#ifndef TS_SERVER_H
#define TS_SERVER_H

#include <stdint.h>

#include "core/bus.h"
#include "core/config.h"
#include "core/conn.h"
#include "core/worker.h"

/* A listener the server opens on every worker. */
typedef struct {
    const char *name; /* "http" — for the log line */
    ts_endpoint_t *endpoint;
    int type; /* SOCK_STREAM */
    const ts_conn_ops_t *ops;   /* SOCK_STREAM */
    struct ssl_ctx_st *tls_ctx; /* not owned; NULL: plain TCP */
    ts_dgram_cb dgram;          /* SOCK_DGRAM */
} ts_listener_spec_t;

#define TS_MAX_LISTENERS 8

struct ts_server_s {
    /* The addresses the listeners really bound (port 0 resolved). */
    struct {
        const char *name;
        int type;
        struct sockaddr_storage sa;
    } bound[TS_MAX_LISTENERS];
    size_t nbound;
    ts_config_t *config; /* current; swapped atomically on reload, read with ts_server_config() */
    ts_config_t **retired; /* replaced configurations, freed at exit (workers may still read them) */
    size_t nretired;
    ts_worker_t *workers; /* owned array */
    int nworkers;
    ts_bus_t bus;
    uint64_t conns_open; /* all workers; atomic, for --max-connections */
    struct ts_iplimit_s *per_ip; /* owned; connections per client address, all workers */
    int running_workers; /* atomic */
    int draining_workers; /* atomic: workers with something left to drain */
    int64_t start_time;  /* wall clock, seconds */
};

static inline const ts_config_t *ts_server_config(const ts_server_t *s)
{
    return __atomic_load_n(&s->config, __ATOMIC_ACQUIRE);
}

/* Open the listeners (refusing to start on any failure) and set up workers. */
int ts_server_init(ts_server_t *s, ts_config_t *cfg, const ts_listener_spec_t *specs,
                   size_t nspecs);
int ts_server_start(ts_server_t *s);
/* The address listener name ("http", "turn"...) of type bound, or NULL. */
const struct sockaddr_storage *ts_server_bound(const ts_server_t *s, const char *name, int type);

/* Ask every worker to drain (stop accepting, finish in-flight work). */
void ts_server_drain(ts_server_t *s);
/* A worker has nothing left to drain (called once by each, any thread). */
void ts_server__worker_drained(ts_server_t *s);
/* Ask every worker to stop now. */
void ts_server_stop(ts_server_t *s);
/* Install a new configuration (the old one is retired, not freed). */
void ts_server_reload(ts_server_t *s, ts_config_t *fresh);
/* Have all workers exited? */
int ts_server_done(const ts_server_t *s);
void ts_server_join(ts_server_t *s);
void ts_server_free(ts_server_t *s);

#endif
