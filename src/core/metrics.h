/*
 * metrics.h — per-worker counters. Each worker writes only its own block
 * (plain stores through relaxed atomics: no locked instructions on the hot
 * path); /metrics sums the blocks of all workers with relaxed loads.
 */
#ifndef TS_METRICS_H
#define TS_METRICS_H

#include <stdint.h>

enum ts_proto_kind { TS_PROTO_HTTP = 0, TS_PROTO_WS, TS_PROTO_TURN, TS_PROTO_COUNT };

/* The signaling protocols, a label of their counters. */
enum ts_sig_kind { TS_SIG_AYAME = 0, TS_SIG_PEERJS, TS_SIG_COUNT };

#define TS_METRICS_STATUS_MIN 100
#define TS_METRICS_STATUS_MAX 599

typedef struct {
    uint64_t conn_open[TS_PROTO_COUNT];
    uint64_t conn_total[TS_PROTO_COUNT];
    uint64_t http_status[TS_METRICS_STATUS_MAX - TS_METRICS_STATUS_MIN + 1];
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t accept_errors;
    uint64_t conn_refused;                   /* over --max-connections */
    uint64_t conn_refused_per_ip;            /* over --max-connections-per-ip */
    uint64_t sig_rate_limited[TS_SIG_COUNT]; /* clients closed over --signaling-rate */
} ts_metrics_t;

/* Single-writer increments: the owning worker only. */
#define ts_metric_add(field, n)                                                                    \
    __atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) + (n),                 \
                     __ATOMIC_RELAXED)
#define ts_metric_sub(field, n)                                                                    \
    __atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) - (n),                 \
                     __ATOMIC_RELAXED)
#define ts_metric_get(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

static inline void ts_metrics_http_status(ts_metrics_t *m, int status)
{
    if (status >= TS_METRICS_STATUS_MIN && status <= TS_METRICS_STATUS_MAX)
        ts_metric_add(m->http_status[status - TS_METRICS_STATUS_MIN], 1);
}

const char *ts_proto_kind_name(int kind);
const char *ts_sig_kind_name(int kind);

#endif
