/*
 * config.h — the whole configuration, parsed once into a struct that is
 * passed down explicitly (never a global read from everywhere).
 *
 * Sources, lowest to highest precedence: built-in defaults, the file named
 * by --config (`key = value` lines), the command line. Every problem is
 * reported as one line on the error stream, and the server refuses to
 * start:   tsunagi: --min-port 60000 is above --max-port 50000
 */
#ifndef TS_CONFIG_H
#define TS_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "core/addr.h"

typedef struct {
    char *name; /* owned */
    char *pass; /* owned */
} ts_user_t;

typedef struct ts_config_s {
    char *config_file; /* owned; NULL when none */

    ts_endpoint_t http;
    ts_endpoint_t https;
    ts_endpoint_t turn;
    ts_endpoint_t turns;
    char *cert;     /* owned */
    char *pkey;     /* owned */
    char *web_root; /* owned; resolved to an absolute path */

    int threads;

    char *realm;      /* owned; default: host name */
    ts_user_t *users; /* owned array */
    size_t nusers;
    char *static_auth_secret; /* owned; generated at start-up when not given */
    int static_auth_secret_generated;
    char *external_ip; /* owned; NULL: detected */
    char *relay_ip;    /* owned; NULL: detected */
    unsigned min_port;
    unsigned max_port;
    int allow_loopback_peers;
    ts_ip_range_t *denied_peers; /* owned array */
    size_t ndenied_peers;
    ts_ip_range_t *allowed_peers; /* owned array */
    size_t nallowed_peers;

    int echo;
    char *signaling_key; /* owned; NULL: none */
    char *authn_webhook_url;      /* owned; NULL: none */
    char *disconnect_webhook_url; /* owned; NULL: none */
    unsigned webhook_timeout;         /* seconds a webhook has to answer */
    unsigned signaling_ping_interval; /* seconds between Ayame pings */
    unsigned signaling_ping_timeout;  /* seconds without a pong before closing */
    char *peerjs_key;                 /* owned */
    int peerjs_allow_discovery;
    unsigned peerjs_concurrent_limit; /* PeerJS clients at once */
    unsigned peerjs_expire_timeout;   /* seconds a message waits for its peer */
    unsigned peerjs_alive_timeout;    /* seconds of silence before a client is dropped */
    int log_level;

    /* limits (seconds unless said otherwise) */
    unsigned max_connections;        /* 0: unlimited */
    unsigned max_connections_per_ip; /* per IPv4 address or IPv6 /64; 0: unlimited */
    unsigned keepalive_timeout;
    unsigned request_timeout;
    unsigned drain_timeout;

    /* WebSocket */
    char **allowed_origins; /* owned array of owned strings; none: every Origin allowed */
    size_t nallowed_origins;
    unsigned ws_max_message;  /* bytes */
    unsigned ws_idle_timeout; /* seconds of silence before a keepalive Ping */
    unsigned ws_send_queue;   /* bytes of unsent output past which a client is closed */
    int ws_deflate;           /* accept permessage-deflate */

    /* TURN limits */
    unsigned user_quota;     /* allocations per user at once; 0: unlimited */
    unsigned total_quota;    /* allocations in all; 0: unlimited */
    unsigned max_bps;        /* bytes per second per allocation; 0: unlimited */
    unsigned credential_ttl; /* seconds the REST credentials handed out stay valid */
    unsigned stale_nonce;    /* seconds a TURN nonce is good for; 0: unlimited */

    /* message rates: token buckets, rate per second (0: unlimited) and burst */
    unsigned signaling_rate; /* messages per signaling client */
    unsigned signaling_burst;
    unsigned turn_request_rate; /* STUN requests per client address (per worker) */
    unsigned turn_request_burst;
} ts_config_t;

/* What ts_config_load() asks the caller to do. */
#define TS_CONFIG_RUN  0 /* start the server */
#define TS_CONFIG_EXIT 1 /* --help or --version was printed: exit 0 */

/*
 * Fill cfg from defaults, the --config file and argv. Prints each problem as
 * one line on err and returns TS_ERR_CONFIG; prints --help / --version on out
 * and returns TS_CONFIG_EXIT; otherwise TS_CONFIG_RUN.
 */
int ts_config_load(ts_config_t *cfg, int argc, char **argv, FILE *out, FILE *err);

/*
 * SIGHUP: re-read the config file (the command line still wins) into fresh.
 * Options that cannot change at run time are reported on err as one line
 * each ("--threads cannot change at run time; keeping 4") and keep their old
 * value in fresh. Returns TS_OK or TS_ERR_CONFIG (fresh is then freed and
 * the old configuration stays in force).
 */
int ts_config_reload(const ts_config_t *old, ts_config_t *fresh, int argc, char **argv, FILE *err);

void ts_config_free(ts_config_t *cfg);

/* Print the usage text (every option with its default). */
void ts_config_usage(FILE *out);

/*
 * Apply the lines of a config file (`name = value`) to cfg, as --config
 * does: each problem is one line on err ("tsunagi: FILE:LINE: ..."; err may
 * be NULL). text need not be NUL-terminated. cfg may be zeroed or already
 * hold values; it must be released with ts_config_free() either way. No
 * defaults are applied and nothing is validated across options. TS_OK or
 * TS_ERR_CONFIG.
 */
int ts_config_parse_text(ts_config_t *cfg, const char *text, size_t len, const char *filename,
                         FILE *err);

/* The option table: one row per option, read by --help, the tests and the docs. */
enum ts_opt_kind {
    TS_OPT_ENDPOINT,  /* ts_endpoint_t; "off" too when TS_OPT_OFF */
    TS_OPT_STRING,    /* char *; max: longest length (0: no limit) */
    TS_OPT_PATH,      /* char *; checked against the file system after all sources */
    TS_OPT_UINT,      /* unsigned (or int), decimal in min..max */
    TS_OPT_FLAG,      /* int 0/1; no argument on the command line, true/false in the file */
    TS_OPT_LOG_LEVEL, /* int, enum ts_log_level */
    TS_OPT_IP,        /* char *; one IPv4 or IPv6 address */
    TS_OPT_USER,      /* ts_user_t array + count; repeatable */
    TS_OPT_IP_RANGE,  /* ts_ip_range_t array + count; repeatable */
    TS_OPT_ORIGIN,    /* char * array + count, Web origins; repeatable */
    TS_OPT_ACTION,    /* --help, --version */
};

enum ts_opt_group {
    TS_OPT_GENERAL,
    TS_OPT_LISTENERS,
    TS_OPT_TURN,
    TS_OPT_SIGNALING,
    TS_OPT_WEBSOCKET,
    TS_OPT_LIMITS,
    TS_OPT_LOGGING,
    TS_OPT_NGROUPS,
};

#define TS_OPT_RELOAD  0x1u /* SIGHUP applies a new value */
#define TS_OPT_OFF     0x2u /* an endpoint that also accepts "off" */
#define TS_OPT_CMDLINE 0x4u /* command line only, not in the config file */

typedef struct {
    const char *name;     /* without the leading "--" */
    const char *arg;      /* argument name for --help; NULL: takes none */
    const char *help;     /* one line */
    const char *def;      /* default, parsed like a given value; NULL: none or computed */
    const char *def_text; /* the default as --help shows it, when def is NULL */
    int kind;             /* enum ts_opt_kind */
    int group;            /* enum ts_opt_group */
    unsigned flags;       /* TS_OPT_RELOAD | TS_OPT_OFF | TS_OPT_CMDLINE */
    size_t offset;        /* of the field in ts_config_t */
    size_t count_offset;  /* of the element count, for the repeatable kinds */
    unsigned min, max;    /* TS_OPT_UINT range; TS_OPT_STRING longest length */
} ts_config_option_t;

/* The table itself; *count gets its length. */
const ts_config_option_t *ts_config_options(size_t *count);

#endif
