/*
 * config.c — the option table and what reads it: defaults, the config file,
 * the command line, the checks across options, --help, and SIGHUP reload.
 *
 * One row per option says how its value is parsed, where it lives in
 * ts_config_t and whether SIGHUP may change it. The code below names an
 * option only for the few checks that relate two of them, and for the
 * defaults that must be computed (threads, realm, web root, secret).
 */
#include "core/config.h"
#include "core/config_internal.h"

#include "core/addr.h"
#include "core/common.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef TS_VERSION
#define TS_VERSION "0.0.0"
#endif
#ifndef TS_GIT_COMMIT
#define TS_GIT_COMMIT "unknown"
#endif

#define CFG_LINE_MAX 4096
#define CFG_FILE_MAX (1024 * 1024)

#define F(field) offsetof(ts_config_t, field)

/* clang-format off */
static const ts_config_option_t options[] = {
    {"config", "FILE", "read options from FILE; the command line wins", NULL, "none",
     TS_OPT_PATH, TS_OPT_GENERAL, TS_OPT_CMDLINE, F(config_file), 0, 0, 0},
    {"help", NULL, "print this help and exit", NULL, NULL,
     TS_OPT_ACTION, TS_OPT_GENERAL, TS_OPT_CMDLINE, 0, 0, 0, 0},
    {"version", NULL, "print the version and exit", NULL, NULL,
     TS_OPT_ACTION, TS_OPT_GENERAL, TS_OPT_CMDLINE, 0, 0, 0, 0},

    {"http", "ADDR:PORT", "HTTP and WebSocket listener", "0.0.0.0:8080", NULL,
     TS_OPT_ENDPOINT, TS_OPT_LISTENERS, 0, F(http), 0, 0, 0},
    {"https", "ADDR:PORT", "HTTPS and secure WebSocket listener, or off", "off", NULL,
     TS_OPT_ENDPOINT, TS_OPT_LISTENERS, TS_OPT_OFF, F(https), 0, 0, 0},
    {"cert", "FILE", "TLS certificate chain (PEM)", NULL, "none",
     TS_OPT_PATH, TS_OPT_LISTENERS, 0, F(cert), 0, 0, 0},
    {"pkey", "FILE", "TLS private key (PEM)", NULL, "none",
     TS_OPT_PATH, TS_OPT_LISTENERS, 0, F(pkey), 0, 0, 0},
    {"turn", "ADDR:PORT", "STUN/TURN listener, UDP and TCP", "0.0.0.0:3478", NULL,
     TS_OPT_ENDPOINT, TS_OPT_LISTENERS, 0, F(turn), 0, 0, 0},
    {"turns", "ADDR:PORT", "TURN over TLS and DTLS, or off", "off", NULL,
     TS_OPT_ENDPOINT, TS_OPT_LISTENERS, TS_OPT_OFF, F(turns), 0, 0, 0},
    {"web-root", "DIR", "folder served at /", NULL, "web/ by the binary, else ./web",
     TS_OPT_PATH, TS_OPT_LISTENERS, 0, F(web_root), 0, 0, 0},

    {"realm", "R", "TURN realm", NULL, "the host name",
     TS_OPT_STRING, TS_OPT_TURN, 0, F(realm), 0, 0, 127},
    {"user", "NAME:PASS", "static TURN user (repeatable)", NULL, "none",
     TS_OPT_USER, TS_OPT_TURN, TS_OPT_RELOAD, F(users), F(nusers), 0, 0},
    {"static-auth-secret", "S", "TURN REST API shared secret", NULL, "random, made at start-up",
     TS_OPT_STRING, TS_OPT_TURN, TS_OPT_RELOAD, F(static_auth_secret), 0, 0, 0},
    {"external-ip", "IP", "address advertised to clients", NULL, "detected",
     TS_OPT_IP, TS_OPT_TURN, 0, F(external_ip), 0, 0, 0},
    {"relay-ip", "IP", "address relay sockets bind to", NULL, "detected",
     TS_OPT_IP, TS_OPT_TURN, 0, F(relay_ip), 0, 0, 0},
    {"min-port", "N", "lowest relay port", "49152", NULL,
     TS_OPT_UINT, TS_OPT_TURN, 0, F(min_port), 0, 1, 65535},
    {"max-port", "N", "highest relay port", "65535", NULL,
     TS_OPT_UINT, TS_OPT_TURN, 0, F(max_port), 0, 1, 65535},
    {"allow-loopback-peers", NULL, "let TURN relay to loopback peers (tests)", NULL,
     "off", TS_OPT_FLAG, TS_OPT_TURN, 0, F(allow_loopback_peers), 0, 0, 0},
    {"denied-peer-ip", "RANGE", "peer addresses TURN must not relay to", NULL,
     "none", TS_OPT_IP_RANGE, TS_OPT_TURN, TS_OPT_RELOAD, F(denied_peers), F(ndenied_peers), 0, 0},
    {"allowed-peer-ip", "RANGE", "peer addresses allowed despite a denial", NULL,
     "none", TS_OPT_IP_RANGE, TS_OPT_TURN, TS_OPT_RELOAD, F(allowed_peers), F(nallowed_peers), 0, 0},
    {"user-quota", "N", "TURN allocations per user at once, 0: unlimited", "0", NULL,
     TS_OPT_UINT, TS_OPT_TURN, TS_OPT_RELOAD, F(user_quota), 0, 0, UINT_MAX},
    {"total-quota", "N", "TURN allocations in all, 0: unlimited", "0", NULL,
     TS_OPT_UINT, TS_OPT_TURN, TS_OPT_RELOAD, F(total_quota), 0, 0, UINT_MAX},
    {"max-bps", "N", "bytes per second per TURN allocation, 0: unlimited", "0", NULL,
     TS_OPT_UINT, TS_OPT_TURN, TS_OPT_RELOAD, F(max_bps), 0, 0, UINT_MAX},
    {"credential-ttl", "SECONDS", "lifetime of the TURN credentials handed out", "86400",
     NULL, TS_OPT_UINT, TS_OPT_TURN, TS_OPT_RELOAD, F(credential_ttl), 0, 60, 31536000},
    {"stale-nonce", "SECONDS", "lifetime of a TURN nonce (then 438), 0: unlimited", "600", NULL,
     TS_OPT_UINT, TS_OPT_TURN, TS_OPT_RELOAD, F(stale_nonce), 0, 0, 31536000},
    {"turn-request-rate", "N", "STUN/TURN requests per second per client address, 0: unlimited",
     "500", NULL, TS_OPT_UINT, TS_OPT_TURN, TS_OPT_RELOAD, F(turn_request_rate), 0, 0, 1000000},
    {"turn-request-burst", "N", "STUN/TURN requests a client address may send at once", "1000",
     NULL, TS_OPT_UINT, TS_OPT_TURN, TS_OPT_RELOAD, F(turn_request_burst), 0, 1, 1000000},

    {"echo", NULL, "enable the /echo WebSocket endpoint", NULL, "off",
     TS_OPT_FLAG, TS_OPT_SIGNALING, 0, F(echo), 0, 0, 0},
    {"signaling-key", "K", "key signaling clients must present", NULL, "none",
     TS_OPT_STRING, TS_OPT_SIGNALING, TS_OPT_RELOAD, F(signaling_key), 0, 0, 0},
    {"authn-webhook-url", "URL", "ask this URL whether an Ayame client may register", NULL,
     "none", TS_OPT_STRING, TS_OPT_SIGNALING, TS_OPT_RELOAD, F(authn_webhook_url), 0, 0, 2048},
    {"disconnect-webhook-url", "URL", "tell this URL when an Ayame client leaves", NULL,
     "none", TS_OPT_STRING, TS_OPT_SIGNALING, TS_OPT_RELOAD, F(disconnect_webhook_url), 0, 0,
     2048},
    {"webhook-timeout", "SECONDS", "time a webhook has to answer", "5", NULL,
     TS_OPT_UINT, TS_OPT_SIGNALING, TS_OPT_RELOAD, F(webhook_timeout), 0, 1, 60},
    {"signaling-ping-interval", "SECONDS", "Ayame ping every this often", "5", NULL,
     TS_OPT_UINT, TS_OPT_SIGNALING, TS_OPT_RELOAD, F(signaling_ping_interval), 0, 1, 3600},
    {"signaling-ping-timeout", "SECONDS", "close an Ayame client silent this long", "60", NULL,
     TS_OPT_UINT, TS_OPT_SIGNALING, TS_OPT_RELOAD, F(signaling_ping_timeout), 0, 1, 3600},
    {"signaling-rate", "N", "messages per second per signaling client, 0: unlimited", "100", NULL,
     TS_OPT_UINT, TS_OPT_SIGNALING, TS_OPT_RELOAD, F(signaling_rate), 0, 0, 1000000},
    {"signaling-burst", "N", "messages a signaling client may send at once", "1000", NULL,
     TS_OPT_UINT, TS_OPT_SIGNALING, TS_OPT_RELOAD, F(signaling_burst), 0, 1, 1000000},
    {"peerjs-key", "K", "key PeerJS clients use in their URLs", "peerjs", NULL,
     TS_OPT_STRING, TS_OPT_SIGNALING, TS_OPT_RELOAD, F(peerjs_key), 0, 0, 255},
    {"peerjs-allow-discovery", NULL, "list connected PeerJS ids at /peerjs/KEY/peers", NULL,
     "off", TS_OPT_FLAG, TS_OPT_SIGNALING, TS_OPT_RELOAD, F(peerjs_allow_discovery), 0, 0, 0},
    {"peerjs-concurrent-limit", "N", "PeerJS clients at once", "5000", NULL,
     TS_OPT_UINT, TS_OPT_SIGNALING, TS_OPT_RELOAD, F(peerjs_concurrent_limit), 0, 1, 100000000},
    {"peerjs-expire-timeout", "SECONDS", "how long a message waits for its PeerJS peer", "5",
     NULL, TS_OPT_UINT, TS_OPT_SIGNALING, TS_OPT_RELOAD, F(peerjs_expire_timeout), 0, 1, 3600},
    {"peerjs-alive-timeout", "SECONDS", "drop a PeerJS client silent this long", "60", NULL,
     TS_OPT_UINT, TS_OPT_SIGNALING, TS_OPT_RELOAD, F(peerjs_alive_timeout), 0, 1, 3600},

    {"allowed-origin", "ORIGIN", "allowed WebSocket Origin (repeatable)", NULL, "any",
     TS_OPT_ORIGIN, TS_OPT_WEBSOCKET, TS_OPT_RELOAD, F(allowed_origins), F(nallowed_origins), 0, 0},
    {"ws-max-message", "BYTES", "largest message a client may send", "1048576", NULL,
     TS_OPT_UINT, TS_OPT_WEBSOCKET, TS_OPT_RELOAD, F(ws_max_message), 0, 1024, 1073741824},
    {"ws-idle-timeout", "SECONDS", "Ping after this much silence, then close", "60", NULL,
     TS_OPT_UINT, TS_OPT_WEBSOCKET, TS_OPT_RELOAD, F(ws_idle_timeout), 0, 1, 3600},
    {"ws-send-queue", "BYTES", "unsent bytes per client before it is closed", "1048576", NULL,
     TS_OPT_UINT, TS_OPT_WEBSOCKET, TS_OPT_RELOAD, F(ws_send_queue), 0, 65536, 1073741824},
    {"ws-deflate", NULL, "accept permessage-deflate compression", "on", NULL,
     TS_OPT_FLAG, TS_OPT_WEBSOCKET, TS_OPT_RELOAD, F(ws_deflate), 0, 0, 0},

    {"threads", "N", "worker threads", NULL, "number of online CPUs",
     TS_OPT_UINT, TS_OPT_LIMITS, 0, F(threads), 0, 1, 256},
    {"max-connections", "N", "open TCP connections at most, 0: unlimited", "0", NULL,
     TS_OPT_UINT, TS_OPT_LIMITS, TS_OPT_RELOAD, F(max_connections), 0, 0, UINT_MAX},
    {"max-connections-per-ip", "N",
     "open TCP connections per IPv4 address or IPv6 /64, 0: unlimited", "0", NULL,
     TS_OPT_UINT, TS_OPT_LIMITS, TS_OPT_RELOAD, F(max_connections_per_ip), 0, 0, UINT_MAX},
    {"keepalive-timeout", "SECONDS", "close an idle HTTP connection after this", "60", NULL,
     TS_OPT_UINT, TS_OPT_LIMITS, TS_OPT_RELOAD, F(keepalive_timeout), 0, 1, 3600},
    {"request-timeout", "SECONDS", "time allowed to receive a request head", "10", NULL,
     TS_OPT_UINT, TS_OPT_LIMITS, TS_OPT_RELOAD, F(request_timeout), 0, 1, 600},
    {"drain-timeout", "SECONDS", "on shutdown, let connections finish for", "5", NULL,
     TS_OPT_UINT, TS_OPT_LIMITS, 0, F(drain_timeout), 0, 0, 600},

    {"log-level", "L", "error, warn, info or debug", "info", NULL,
     TS_OPT_LOG_LEVEL, TS_OPT_LOGGING, TS_OPT_RELOAD, F(log_level), 0, 0, 0},
};

const char *const ts_config__group_names[TS_OPT_NGROUPS] = {
    [TS_OPT_GENERAL] = "General",
    [TS_OPT_LISTENERS] = "Listeners",
    [TS_OPT_TURN] = "TURN",
    [TS_OPT_SIGNALING] = "Signaling",
    [TS_OPT_WEBSOCKET] = "WebSocket",
    [TS_OPT_LIMITS] = "Limits",
    [TS_OPT_LOGGING] = "Logging",
};
/* clang-format on */

#define NOPT TS_ARRAY_SIZE(options)

_Static_assert(NOPT <= TS_CONFIG_MAX_OPTIONS, "cfg_parse_t holds a byte per option");

#define COUNT(cfg, o) ((size_t *)(void *)((char *)(cfg) + (o)->count_offset))

int ts_config__error(cfg_parse_t *st, const char *fmt, ...)
{
    va_list ap;

    st->nerr++;
    if (st->err == NULL)
        return TS_ERR_CONFIG;
    fputs("tsunagi: ", st->err);
    va_start(ap, fmt);
    vfprintf(st->err, fmt, ap);
    va_end(ap);
    fputc('\n', st->err);
    return TS_ERR_CONFIG;
}

char *ts_config__sprintf(const char *fmt, ...)
{
    va_list ap;
    int n;
    char *s;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    s = ts_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static const ts_config_option_t *option_find(const char *name, size_t len)
{
    for (size_t i = 0; i < NOPT; i++) {
        if (strlen(options[i].name) == len && memcmp(options[i].name, name, len) == 0)
            return &options[i];
    }
    return NULL;
}

size_t ts_config__option_index(const char *name)
{
    const ts_config_option_t *o = option_find(name, strlen(name));
    return (size_t)(o - options);
}

const ts_config_option_t *ts_config_options(size_t *count)
{
    if (count != NULL)
        *count = NOPT;
    return options;
}

/* ---- one parser per kind -------------------------------------------------- */

typedef int (*opt_parse_fn)(cfg_parse_t *st, const ts_config_option_t *o, const char *v,
                            const char *where);

static int parse_endpoint_opt(cfg_parse_t *st, const ts_config_option_t *o, const char *v,
                              const char *where)
{
    ts_endpoint_t *ep = FIELD(st->cfg, o, ts_endpoint_t);
    ts_endpoint_t parsed;
    const char *why;

    if ((o->flags & TS_OPT_OFF) && strcmp(v, "off") == 0) {
        memset(ep, 0, sizeof(*ep));
        memcpy(ep->text, "off", 4);
        return TS_OK;
    }
    if (ts_endpoint_parse(v, &parsed, &why) != TS_OK)
        return ts_config__error(st, "%s: '%s' is not ADDR:PORT (%s)", where, v, why);
    *ep = parsed;
    return TS_OK;
}

static int parse_string_opt(cfg_parse_t *st, const ts_config_option_t *o, const char *v,
                            const char *where)
{
    char **p = FIELD(st->cfg, o, char *);

    if (o->max != 0 && strlen(v) > o->max)
        return ts_config__error(st, "%s: longer than %u bytes", where, o->max);
    free(*p);
    *p = ts_strdup(v);
    return TS_OK;
}

static int parse_uint_opt(cfg_parse_t *st, const ts_config_option_t *o, const char *v,
                          const char *where)
{
    unsigned long long n;

    if (ts_decimal_parse(v, &n) != TS_OK)
        return ts_config__error(st, "%s: '%s' is not a number", where, v);
    if (n < o->min || n > o->max)
        return ts_config__error(st, "%s: %s is not in %u..%u", where, v, o->min, o->max);
    /* int and unsigned fields alike: the same object representation here. */
    *FIELD(st->cfg, o, unsigned) = (unsigned)n;
    return TS_OK;
}

static int parse_flag_opt(cfg_parse_t *st, const ts_config_option_t *o, const char *v,
                          const char *where)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    if (v == NULL) {
        *FIELD(st->cfg, o, int) = 1;
        return TS_OK;
    }
    for (size_t i = 0; i < TS_ARRAY_SIZE(yes); i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *FIELD(st->cfg, o, int) = 1;
            return TS_OK;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *FIELD(st->cfg, o, int) = 0;
            return TS_OK;
        }
    }
    return ts_config__error(st, "%s: '%s' is not true or false", where, v);
}

static int parse_log_level_opt(cfg_parse_t *st, const ts_config_option_t *o, const char *v,
                               const char *where)
{
    int level = ts_log_level_parse(v);

    if (level < 0)
        return ts_config__error(st, "%s: '%s' is not error, warn, info or debug", where, v);
    *FIELD(st->cfg, o, int) = level;
    return TS_OK;
}

static int parse_ip_opt(cfg_parse_t *st, const ts_config_option_t *o, const char *v,
                        const char *where)
{
    uint8_t addr[16];
    int family;

    if (ts_ip_parse(v, strlen(v), &family, addr) != TS_OK)
        return ts_config__error(st, "%s: '%s' is not an IP address", where, v);
    return parse_string_opt(st, o, v, where);
}

/* The password never appears in a message: error streams end up in logs. */
static int parse_user_opt(cfg_parse_t *st, const ts_config_option_t *o, const char *v,
                          const char *where)
{
    ts_user_t **users = FIELD(st->cfg, o, ts_user_t *);
    size_t *n = COUNT(st->cfg, o);
    const char *colon = strchr(v, ':');
    size_t nlen;

    if (colon == NULL)
        return ts_config__error(st, "%s needs NAME:PASS (no ':' found)", where);
    nlen = (size_t)(colon - v);
    if (nlen == 0)
        return ts_config__error(st, "%s: the name before ':' is empty", where);
    if (colon[1] == '\0')
        return ts_config__error(st, "%s: the password of '%.*s' is empty", where, (int)nlen, v);
    for (size_t i = 0; i < *n; i++) {
        if (strlen((*users)[i].name) == nlen && memcmp((*users)[i].name, v, nlen) == 0)
            return ts_config__error(st, "%s: user '%.*s' is given twice", where, (int)nlen, v);
    }
    *users = ts_realloc(*users, (*n + 1) * sizeof(**users));
    (*users)[*n].name = ts_strndup(v, nlen);
    (*users)[*n].pass = ts_strdup(colon + 1);
    (*n)++;
    return TS_OK;
}

static int parse_range_opt(cfg_parse_t *st, const ts_config_option_t *o, const char *v,
                           const char *where)
{
    ts_ip_range_t **ranges = FIELD(st->cfg, o, ts_ip_range_t *);
    size_t *n = COUNT(st->cfg, o);
    ts_ip_range_t r;
    const char *why;

    if (ts_ip_range_parse(v, &r, &why) != TS_OK)
        return ts_config__error(st, "%s: '%s' is not an address range (%s)", where, v, why);
    *ranges = ts_realloc(*ranges, (*n + 1) * sizeof(**ranges));
    (*ranges)[(*n)++] = r;
    return TS_OK;
}

static int parse_origin_opt(cfg_parse_t *st, const ts_config_option_t *o, const char *v,
                            const char *where)
{
    char ***origins = FIELD(st->cfg, o, char **);
    size_t *n = COUNT(st->cfg, o);
    char *origin;
    const char *why;

    if (ts_origin_parse(v, &origin, &why) != TS_OK)
        return ts_config__error(st, "%s: '%s' is not an origin (%s)", where, v, why);
    *origins = ts_realloc(*origins, (*n + 1) * sizeof(**origins));
    (*origins)[(*n)++] = origin;
    return TS_OK;
}

static const opt_parse_fn opt_parsers[] = {
    [TS_OPT_ENDPOINT] = parse_endpoint_opt,
    [TS_OPT_STRING] = parse_string_opt,
    [TS_OPT_PATH] = parse_string_opt,
    [TS_OPT_UINT] = parse_uint_opt,
    [TS_OPT_FLAG] = parse_flag_opt,
    [TS_OPT_LOG_LEVEL] = parse_log_level_opt,
    [TS_OPT_IP] = parse_ip_opt,
    [TS_OPT_USER] = parse_user_opt,
    [TS_OPT_IP_RANGE] = parse_range_opt,
    [TS_OPT_ORIGIN] = parse_origin_opt,
    [TS_OPT_ACTION] = NULL,
};

void ts_config__option_free(ts_config_t *cfg, const ts_config_option_t *o)
{
    switch (o->kind) {
    case TS_OPT_STRING:
    case TS_OPT_PATH:
    case TS_OPT_IP:
        free(*FIELD(cfg, o, char *));
        *FIELD(cfg, o, char *) = NULL;
        break;
    case TS_OPT_USER: {
        ts_user_t *u = *FIELD(cfg, o, ts_user_t *);
        for (size_t i = 0; i < *COUNT(cfg, o); i++) {
            free(u[i].name);
            free(u[i].pass);
        }
        free(u);
        *FIELD(cfg, o, ts_user_t *) = NULL;
        *COUNT(cfg, o) = 0;
        break;
    }
    case TS_OPT_IP_RANGE: {
        ts_ip_range_t *r = *FIELD(cfg, o, ts_ip_range_t *);
        for (size_t i = 0; i < *COUNT(cfg, o); i++)
            free(r[i].text);
        free(r);
        *FIELD(cfg, o, ts_ip_range_t *) = NULL;
        *COUNT(cfg, o) = 0;
        break;
    }
    case TS_OPT_ORIGIN: {
        char **v = *FIELD(cfg, o, char **);
        for (size_t i = 0; i < *COUNT(cfg, o); i++)
            free(v[i]);
        free(v);
        *FIELD(cfg, o, char **) = NULL;
        *COUNT(cfg, o) = 0;
        break;
    }
    default:
        break;
    }
}

static int option_is_list(const ts_config_option_t *o)
{
    return o->kind == TS_OPT_USER || o->kind == TS_OPT_IP_RANGE || o->kind == TS_OPT_ORIGIN;
}

/* Every value goes through here, whichever source it came from. */
static int option_set(cfg_parse_t *st, const ts_config_option_t *o, const char *v,
                      const char *where)
{
    size_t idx = (size_t)(o - options);
    int rc;

    if (v == NULL && o->kind != TS_OPT_FLAG)
        rc = ts_config__error(st, "%s needs a value", where);
    else if (v != NULL && *v == '\0')
        rc = ts_config__error(st, "%s needs a value", where);
    else {
        /* A repeatable option's list from a higher source replaces the lower one's. */
        if (option_is_list(o) && st->list_src[idx] < st->src) {
            ts_config__option_free(st->cfg, o);
            st->list_src[idx] = (unsigned char)st->src;
        }
        rc = opt_parsers[o->kind](st, o, v, where);
    }
    if (rc != TS_OK)
        st->bad[idx] = 1;
    return rc;
}

/* ---- the config file ------------------------------------------------------ */

static char *trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

/* A '#' that starts the text or follows white space begins a comment. */
static void strip_comment(char *s)
{
    for (char *p = s; *p != '\0'; p++) {
        if (*p == '#' && (p == s || isspace((unsigned char)p[-1]))) {
            *p = '\0';
            return;
        }
    }
}

/* Trim, drop a trailing comment, remove one pair of double quotes. */
static char *value_clean(char *v, const char **why)
{
    v = trim(v);
    if (*v == '"') {
        char *close = strchr(v + 1, '"');
        char *rest;
        if (close == NULL) {
            *why = "missing closing quote";
            return NULL;
        }
        rest = close + 1;
        while (isspace((unsigned char)*rest))
            rest++;
        if (*rest != '\0' && *rest != '#') {
            *why = "text after the closing quote";
            return NULL;
        }
        *close = '\0';
        return v + 1;
    }
    strip_comment(v);
    return trim(v);
}

static void parse_line(cfg_parse_t *st, char *line, const char *file, unsigned lineno)
{
    char *key, *value = NULL, *eq, *where;
    const char *why = NULL;
    const ts_config_option_t *o;

    key = trim(line);
    if (*key == '\0' || *key == '#')
        return;
    eq = strchr(key, '=');
    if (eq != NULL) {
        *eq = '\0';
        value = value_clean(eq + 1, &why);
    } else {
        strip_comment(key);
    }
    key = trim(key);
    o = option_find(key, strlen(key));
    if (o == NULL) {
        ts_config__error(st, "%s:%u: unknown option '%s'", file, lineno, key);
        return;
    }
    if (o->flags & TS_OPT_CMDLINE) {
        ts_config__error(st, "%s:%u: '%s' works only on the command line", file, lineno, key);
        return;
    }
    if (why != NULL) {
        ts_config__error(st, "%s:%u: %s: %s", file, lineno, key, why);
        return;
    }
    where = ts_config__sprintf("%s:%u: %s", file, lineno, key);
    option_set(st, o, value, where);
    free(where);
}

static void parse_text(cfg_parse_t *st, const char *text, size_t len, const char *file)
{
    char *line = ts_malloc(CFG_LINE_MAX + 1);
    size_t pos = 0;
    unsigned lineno = 0;

    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    while (pos < len) {
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - start) : len - pos;

        pos += n + (nl != NULL);
        lineno++;
        if (n > 0 && start[n - 1] == '\r')
            n--;
        if (n > CFG_LINE_MAX) {
            ts_config__error(st, "%s:%u: line longer than %d bytes", file, lineno, CFG_LINE_MAX);
            continue;
        }
        if (memchr(start, '\0', n) != NULL) {
            ts_config__error(st, "%s:%u: NUL byte in line", file, lineno);
            continue;
        }
        memcpy(line, start, n);
        line[n] = '\0';
        parse_line(st, line, file, lineno);
    }
    free(line);
}

int ts_config_parse_text(ts_config_t *cfg, const char *text, size_t len, const char *filename,
                         FILE *err)
{
    cfg_parse_t st;

    memset(&st, 0, sizeof(st));
    st.cfg = cfg;
    st.err = err;
    st.src = SRC_FILE;
    parse_text(&st, text, len, filename);
    return st.nerr != 0 ? TS_ERR_CONFIG : TS_OK;
}

static void read_config_file(cfg_parse_t *st, const char *path)
{
    struct stat sb;
    char *buf = NULL;
    size_t len = 0;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        ts_config__error(st, "--config %s: %s", path, strerror(errno));
        return;
    }
    if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        ts_config__error(st, "--config %s: %s", path, strerror(EISDIR));
        close(fd);
        return;
    }
    /* Read to the end rather than trust st_size: pipes and /proc work too. */
    buf = ts_malloc(CFG_FILE_MAX + 1);
    while (len <= CFG_FILE_MAX) {
        n = read(fd, buf + len, CFG_FILE_MAX + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ts_config__error(st, "--config %s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > CFG_FILE_MAX)
        ts_config__error(st, "--config %s: larger than %d bytes", path, CFG_FILE_MAX);
    else
        parse_text(st, buf, len, path);
out:
    free(buf);
    close(fd);
}

/* ---- the command line ----------------------------------------------------- */

typedef struct {
    const char *arg;             /* argv[i] as given */
    const ts_config_option_t *o; /* NULL: unknown or not an option */
    int is_option;               /* starts with "--" */
    size_t namelen;
    const char *value; /* NULL: none */
    int missing;       /* takes a value and none followed */
} argv_tok_t;

/* Read the token at argv[*i], and its value; *i is left on the last one used. */
static void argv_next(int argc, char **argv, int *i, argv_tok_t *t)
{
    const char *name, *eq;

    memset(t, 0, sizeof(*t));
    t->arg = argv[*i];
    if (strncmp(t->arg, "--", 2) != 0 || t->arg[2] == '\0')
        return;
    t->is_option = 1;
    name = t->arg + 2;
    eq = strchr(name, '=');
    t->namelen = eq != NULL ? (size_t)(eq - name) : strlen(name);
    t->o = option_find(name, t->namelen);
    if (eq != NULL) {
        t->value = eq + 1;
    } else if (t->o != NULL && t->o->arg != NULL) {
        /* "--realm --threads 4" is a missing value, not a realm called --threads. */
        if (*i + 1 < argc && strncmp(argv[*i + 1], "--", 2) != 0)
            t->value = argv[++*i];
        else
            t->missing = 1;
    }
}

typedef struct {
    const char *config; /* the last --config, NULL: none */
    int help;
    int version;
} argv_scan_t;

/* First pass: what must be known before the file is read. Says nothing. */
static void argv_scan(int argc, char **argv, argv_scan_t *scan)
{
    argv_tok_t t;

    memset(scan, 0, sizeof(*scan));
    for (int i = 1; i < argc; i++) {
        argv_next(argc, argv, &i, &t);
        if (t.o == NULL)
            continue;
        if (strcmp(t.o->name, "config") == 0 && t.value != NULL && *t.value != '\0')
            scan->config = t.value;
        else if (strcmp(t.o->name, "help") == 0)
            scan->help = 1;
        else if (strcmp(t.o->name, "version") == 0)
            scan->version = 1;
    }
}

static void argv_apply(cfg_parse_t *st, int argc, char **argv)
{
    argv_tok_t t;
    char where[128];

    for (int i = 1; i < argc; i++) {
        argv_next(argc, argv, &i, &t);
        if (!t.is_option) {
            if (t.arg[0] == '-' && t.arg[1] != '\0')
                ts_config__error(st, "unknown option %s", t.arg);
            else
                ts_config__error(st, "unexpected argument '%s'", t.arg);
            continue;
        }
        if (t.o == NULL) {
            ts_config__error(st, "unknown option --%.*s", (int)t.namelen, t.arg + 2);
            continue;
        }
        snprintf(where, sizeof(where), "--%s", t.o->name);
        if (t.o->kind == TS_OPT_ACTION) {
            if (t.value != NULL)
                ts_config__error(st, "%s takes no value", where);
        } else if (t.missing) {
            ts_config__error(st, "%s needs a value", where);
        } else if (t.o->flags & TS_OPT_CMDLINE) {
            if (t.value == NULL || *t.value == '\0')
                ts_config__error(st, "%s needs a value", where);
        } else {
            option_set(st, t.o, t.value, where);
        }
    }
}

/* ---- load, reload, free, usage ------------------------------------------ */

static void version_print(FILE *out)
{
    fprintf(out, "tsunagi %s (%s)\n", TS_VERSION, TS_GIT_COMMIT);
}

/* defaults < file < command line; old: the running configuration on reload. */
int ts_config__build(ts_config_t *cfg, int argc, char **argv, FILE *out, FILE *err,
                     const ts_config_t *old)
{
    cfg_parse_t st;
    argv_scan_t scan;

    memset(cfg, 0, sizeof(*cfg));
    memset(&st, 0, sizeof(st));
    st.cfg = cfg;
    st.err = err;
    st.src = SRC_DEFAULT;
    for (size_t i = 0; i < NOPT; i++) {
        if (options[i].def != NULL)
            option_set(&st, &options[i], options[i].def, "default");
    }
    argv_scan(argc, argv, &scan);
    if (old == NULL && (scan.help || scan.version)) {
        if (out != NULL && scan.help)
            ts_config_usage(out);
        else if (out != NULL)
            version_print(out);
        ts_config_free(cfg);
        return TS_CONFIG_EXIT;
    }
    if (scan.config != NULL) {
        cfg->config_file = ts_strdup(scan.config);
        st.src = SRC_FILE;
        read_config_file(&st, scan.config);
    }
    st.src = SRC_CMDLINE;
    argv_apply(&st, argc, argv);
    ts_config__defaults(&st, old);
    ts_config__checks(&st);
    if (st.nerr != 0) {
        ts_config_free(cfg);
        return TS_ERR_CONFIG;
    }
    return TS_CONFIG_RUN;
}

int ts_config_load(ts_config_t *cfg, int argc, char **argv, FILE *out, FILE *err)
{
    return ts_config__build(cfg, argc, argv, out, err, NULL);
}

void ts_config_free(ts_config_t *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < NOPT; i++)
        ts_config__option_free(cfg, &options[i]);
    memset(cfg, 0, sizeof(*cfg));
}
