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

#define CFG_LINE_MAX   4096
#define CFG_FILE_MAX   (1024 * 1024)
#define CFG_SECRET_LEN 32

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

    {"echo", NULL, "enable the /echo WebSocket endpoint", NULL, "off",
     TS_OPT_FLAG, TS_OPT_SIGNALING, 0, F(echo), 0, 0, 0},
    {"signaling-key", "K", "key signaling clients must present", NULL, "none",
     TS_OPT_STRING, TS_OPT_SIGNALING, TS_OPT_RELOAD, F(signaling_key), 0, 0, 0},

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
    {"keepalive-timeout", "SECONDS", "close an idle HTTP connection after this", "60", NULL,
     TS_OPT_UINT, TS_OPT_LIMITS, TS_OPT_RELOAD, F(keepalive_timeout), 0, 1, 3600},
    {"request-timeout", "SECONDS", "time allowed to receive a request head", "10", NULL,
     TS_OPT_UINT, TS_OPT_LIMITS, TS_OPT_RELOAD, F(request_timeout), 0, 1, 600},
    {"drain-timeout", "SECONDS", "on shutdown, let connections finish for", "5", NULL,
     TS_OPT_UINT, TS_OPT_LIMITS, 0, F(drain_timeout), 0, 0, 600},

    {"log-level", "L", "error, warn, info or debug", "info", NULL,
     TS_OPT_LOG_LEVEL, TS_OPT_LOGGING, TS_OPT_RELOAD, F(log_level), 0, 0, 0},
};

static const char *const group_names[] = {
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

/* Where a value came from; a later source overrides an earlier one. */
enum { SRC_DEFAULT, SRC_FILE, SRC_CMDLINE };

typedef struct {
    ts_config_t *cfg;
    FILE *err; /* NULL: say nothing */
    int src;
    unsigned nerr;
    unsigned char list_src[NOPT]; /* source of each repeatable option's list */
    unsigned char bad[NOPT];      /* a value was refused: skip checks that use it */
} cfg_parse_t;

#define FIELD(cfg, o, type)  ((type *)(void *)((char *)(cfg) + (o)->offset))
#define CFIELD(cfg, o, type) ((const type *)(const void *)((const char *)(cfg) + (o)->offset))
#define COUNT(cfg, o)        ((size_t *)(void *)((char *)(cfg) + (o)->count_offset))

static int cfg_error(cfg_parse_t *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int cfg_error(cfg_parse_t *st, const char *fmt, ...)
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

static char *cfg_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *cfg_sprintf(const char *fmt, ...)
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

static size_t option_index(const char *name)
{
    const ts_config_option_t *o = option_find(name, strlen(name));
    return (size_t)(o - options);
}

const ts_config_option_t *ts_config_options(size_t *count)
{
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
        return cfg_error(st, "%s: '%s' is not ADDR:PORT (%s)", where, v, why);
    *ep = parsed;
    return TS_OK;
}

static int parse_string_opt(cfg_parse_t *st, const ts_config_option_t *o, const char *v,
                            const char *where)
{
    char **p = FIELD(st->cfg, o, char *);

    if (o->max != 0 && strlen(v) > o->max)
        return cfg_error(st, "%s: longer than %u bytes", where, o->max);
    free(*p);
    *p = ts_strdup(v);
    return TS_OK;
}

static int parse_uint_opt(cfg_parse_t *st, const ts_config_option_t *o, const char *v,
                          const char *where)
{
    unsigned long long n;

    if (ts_decimal_parse(v, &n) != TS_OK)
        return cfg_error(st, "%s: '%s' is not a number", where, v);
    if (n < o->min || n > o->max)
        return cfg_error(st, "%s: %s is not in %u..%u", where, v, o->min, o->max);
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
    return cfg_error(st, "%s: '%s' is not true or false", where, v);
}

static int parse_log_level_opt(cfg_parse_t *st, const ts_config_option_t *o, const char *v,
                               const char *where)
{
    int level = ts_log_level_parse(v);

    if (level < 0)
        return cfg_error(st, "%s: '%s' is not error, warn, info or debug", where, v);
    *FIELD(st->cfg, o, int) = level;
    return TS_OK;
}

static int parse_ip_opt(cfg_parse_t *st, const ts_config_option_t *o, const char *v,
                        const char *where)
{
    uint8_t addr[16];
    int family;

    if (ts_ip_parse(v, strlen(v), &family, addr) != TS_OK)
        return cfg_error(st, "%s: '%s' is not an IP address", where, v);
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
        return cfg_error(st, "%s needs NAME:PASS (no ':' found)", where);
    nlen = (size_t)(colon - v);
    if (nlen == 0)
        return cfg_error(st, "%s: the name before ':' is empty", where);
    if (colon[1] == '\0')
        return cfg_error(st, "%s: the password of '%.*s' is empty", where, (int)nlen, v);
    for (size_t i = 0; i < *n; i++) {
        if (strlen((*users)[i].name) == nlen && memcmp((*users)[i].name, v, nlen) == 0)
            return cfg_error(st, "%s: user '%.*s' is given twice", where, (int)nlen, v);
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
        return cfg_error(st, "%s: '%s' is not an address range (%s)", where, v, why);
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
        return cfg_error(st, "%s: '%s' is not an origin (%s)", where, v, why);
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

static void option_free(ts_config_t *cfg, const ts_config_option_t *o)
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
        rc = cfg_error(st, "%s needs a value", where);
    else if (v != NULL && *v == '\0')
        rc = cfg_error(st, "%s needs a value", where);
    else {
        /* A repeatable option's list from a higher source replaces the lower one's. */
        if (option_is_list(o) && st->list_src[idx] < st->src) {
            option_free(st->cfg, o);
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
        cfg_error(st, "%s:%u: unknown option '%s'", file, lineno, key);
        return;
    }
    if (o->flags & TS_OPT_CMDLINE) {
        cfg_error(st, "%s:%u: '%s' works only on the command line", file, lineno, key);
        return;
    }
    if (why != NULL) {
        cfg_error(st, "%s:%u: %s: %s", file, lineno, key, why);
        return;
    }
    where = cfg_sprintf("%s:%u: %s", file, lineno, key);
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
            cfg_error(st, "%s:%u: line longer than %d bytes", file, lineno, CFG_LINE_MAX);
            continue;
        }
        if (memchr(start, '\0', n) != NULL) {
            cfg_error(st, "%s:%u: NUL byte in line", file, lineno);
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
        cfg_error(st, "--config %s: %s", path, strerror(errno));
        return;
    }
    if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        cfg_error(st, "--config %s: %s", path, strerror(EISDIR));
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
            cfg_error(st, "--config %s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > CFG_FILE_MAX)
        cfg_error(st, "--config %s: larger than %d bytes", path, CFG_FILE_MAX);
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
                cfg_error(st, "unknown option %s", t.arg);
            else
                cfg_error(st, "unexpected argument '%s'", t.arg);
            continue;
        }
        if (t.o == NULL) {
            cfg_error(st, "unknown option --%.*s", (int)t.namelen, t.arg + 2);
            continue;
        }
        snprintf(where, sizeof(where), "--%s", t.o->name);
        if (t.o->kind == TS_OPT_ACTION) {
            if (t.value != NULL)
                cfg_error(st, "%s takes no value", where);
        } else if (t.missing) {
            cfg_error(st, "%s needs a value", where);
        } else if (t.o->flags & TS_OPT_CMDLINE) {
            if (t.value == NULL || *t.value == '\0')
                cfg_error(st, "%s needs a value", where);
        } else {
            option_set(st, t.o, t.value, where);
        }
    }
}

/* ---- computed defaults and checks across options ------------------------ */

static int is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static void web_root_set(cfg_parse_t *st, const char *path)
{
    char *real = realpath(path, NULL);

    if (real == NULL) {
        cfg_error(st, "--web-root %s: %s", path, strerror(errno));
        return;
    }
    if (!is_dir(real)) {
        cfg_error(st, "--web-root %s: %s", path, strerror(ENOTDIR));
        free(real);
        return;
    }
    free(st->cfg->web_root);
    st->cfg->web_root = real;
}

/* <exe dir>/../web (the build tree), <exe dir>/../share/tsunagi/web (installed), ./web. */
static void web_root_default(cfg_parse_t *st)
{
    char exe[PATH_MAX];
    char *cand;
    char *slash;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

    if (n > 0) {
        exe[n] = '\0';
        slash = strrchr(exe, '/');
        if (slash != NULL)
            *slash = '\0';
        static const char *const rel[] = {"/../web", "/../share/tsunagi/web"};
        for (size_t i = 0; i < TS_ARRAY_SIZE(rel); i++) {
            cand = cfg_sprintf("%s%s", exe, rel[i]);
            if (is_dir(cand)) {
                web_root_set(st, cand);
                free(cand);
                return;
            }
            free(cand);
        }
    }
    if (is_dir("web")) {
        web_root_set(st, "web");
        return;
    }
    cfg_error(st, "no web folder found (looked next to the binary and in ./web); "
                  "give --web-root DIR");
}

static void check_readable_file(cfg_parse_t *st, const char *opt, const char *path)
{
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        cfg_error(st, "--%s %s: %s", opt, path, strerror(errno));
        return;
    }
    if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode))
        cfg_error(st, "--%s %s: %s", opt, path, strerror(EISDIR));
    close(fd);
}

static void secret_default(cfg_parse_t *st, const ts_config_t *old)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[CFG_SECRET_LEN];
    ts_config_t *cfg = st->cfg;

    if (cfg->static_auth_secret != NULL || st->bad[option_index("static-auth-secret")])
        return;
    /* Credentials handed out before a reload must stay valid after it. */
    if (old != NULL && old->static_auth_secret_generated && old->static_auth_secret != NULL) {
        cfg->static_auth_secret = ts_strdup(old->static_auth_secret);
        cfg->static_auth_secret_generated = 1;
        return;
    }
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        cfg_error(st, "could not generate --static-auth-secret (OpenSSL RAND_bytes failed)");
        return;
    }
    cfg->static_auth_secret = ts_malloc(2 * sizeof(raw) + 1);
    for (size_t i = 0; i < sizeof(raw); i++) {
        cfg->static_auth_secret[2 * i] = hex[raw[i] >> 4];
        cfg->static_auth_secret[2 * i + 1] = hex[raw[i] & 15];
    }
    cfg->static_auth_secret[2 * sizeof(raw)] = '\0';
    cfg->static_auth_secret_generated = 1;
}

static void defaults_compute(cfg_parse_t *st, const ts_config_t *old)
{
    ts_config_t *cfg = st->cfg;
    char host[256];

    if (cfg->threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->threads = n < 1 ? 1 : n > 256 ? 256 : (int)n;
    }
    if (cfg->realm == NULL && !st->bad[option_index("realm")]) {
        if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
            snprintf(host, sizeof(host), "tsunagi");
        host[sizeof(host) - 1] = '\0';
        if (strlen(host) > 127)
            host[127] = '\0';
        cfg->realm = ts_strdup(host);
    }
    if (cfg->web_root != NULL)
        web_root_set(st, cfg->web_root);
    else if (!st->bad[option_index("web-root")])
        web_root_default(st);
    secret_default(st, old);
}

static int endpoint_port(const ts_endpoint_t *ep)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&ep->sa;
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ep->sa;
    return ntohs(ep->sa.ss_family == AF_INET ? sin->sin_port : sin6->sin6_port);
}

static int endpoint_wildcard(const ts_endpoint_t *ep)
{
    static const uint8_t zero[16];
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&ep->sa;
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ep->sa;

    if (ep->sa.ss_family == AF_INET)
        return sin->sin_addr.s_addr == 0;
    return memcmp(&sin6->sin6_addr, zero, 16) == 0;
}

/*
 * Every listener takes a TCP port. With SO_REUSEPORT a second bind to the
 * same port succeeds, and the kernel would then spread HTTP clients over the
 * TURN sockets: refuse it here, where the mistake is still a config line.
 */
static void check_listener_ports(cfg_parse_t *st)
{
    static const char *const names[] = {"http", "https", "turn", "turns"};
    const ts_endpoint_t *ep[TS_ARRAY_SIZE(names)];

    for (size_t i = 0; i < TS_ARRAY_SIZE(names); i++)
        ep[i] = CFIELD(st->cfg, &options[option_index(names[i])], ts_endpoint_t);
    for (size_t i = 0; i < TS_ARRAY_SIZE(names); i++) {
        for (size_t j = i + 1; j < TS_ARRAY_SIZE(names); j++) {
            const ts_endpoint_t *a = ep[i], *b = ep[j];
            if (!a->set || !b->set || a->sa.ss_family != b->sa.ss_family)
                continue;
            if (endpoint_port(a) == 0 || endpoint_port(a) != endpoint_port(b))
                continue;
            if (endpoint_wildcard(a) || endpoint_wildcard(b) || memcmp(&a->sa, &b->sa, a->len) == 0)
                cfg_error(st, "--%s and --%s both use port %d", names[i], names[j],
                          endpoint_port(a));
        }
    }
}

static void checks_across(cfg_parse_t *st)
{
    ts_config_t *cfg = st->cfg;
    int cert_bad = st->bad[option_index("cert")], pkey_bad = st->bad[option_index("pkey")];
    static const char *const tls[] = {"https", "turns"};

    if (cfg->cert != NULL)
        check_readable_file(st, "cert", cfg->cert);
    if (cfg->pkey != NULL)
        check_readable_file(st, "pkey", cfg->pkey);
    for (size_t i = 0; i < TS_ARRAY_SIZE(tls); i++) {
        const ts_endpoint_t *ep = CFIELD(cfg, &options[option_index(tls[i])], ts_endpoint_t);
        if (ep->set && ((cfg->cert == NULL && !cert_bad) || (cfg->pkey == NULL && !pkey_bad)))
            cfg_error(st, "--%s needs --cert and --pkey", tls[i]);
    }
    if (!st->bad[option_index("min-port")] && !st->bad[option_index("max-port")] &&
        cfg->min_port > cfg->max_port)
        cfg_error(st, "--min-port %u is above --max-port %u", cfg->min_port, cfg->max_port);
    check_listener_ports(st);
}

/* ---- load, reload, free, usage ------------------------------------------ */

static void version_print(FILE *out)
{
    fprintf(out, "tsunagi %s (%s)\n", TS_VERSION, TS_GIT_COMMIT);
}

/* defaults < file < command line; old: the running configuration on reload. */
static int config_build(ts_config_t *cfg, int argc, char **argv, FILE *out, FILE *err,
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
    defaults_compute(&st, old);
    checks_across(&st);
    if (st.nerr != 0) {
        ts_config_free(cfg);
        return TS_ERR_CONFIG;
    }
    return TS_CONFIG_RUN;
}

int ts_config_load(ts_config_t *cfg, int argc, char **argv, FILE *out, FILE *err)
{
    return config_build(cfg, argc, argv, out, err, NULL);
}

/*
 * Compared as configured, not as in use: once open, a listener given port 0
 * holds the port the kernel chose (the server writes it back into sa).
 */
static int endpoint_equal(const ts_endpoint_t *x, const ts_endpoint_t *y)
{
    ts_endpoint_t px, py;

    if (!x->set || !y->set)
        return x->set == y->set;
    if (ts_endpoint_parse(x->text, &px, NULL) != TS_OK ||
        ts_endpoint_parse(y->text, &py, NULL) != TS_OK)
        return 0;
    return px.len == py.len && memcmp(&px.sa, &py.sa, px.len) == 0;
}

static int option_equal(const ts_config_t *a, const ts_config_t *b, const ts_config_option_t *o)
{
    switch (o->kind) {
    case TS_OPT_ENDPOINT:
        return endpoint_equal(CFIELD(a, o, ts_endpoint_t), CFIELD(b, o, ts_endpoint_t));
    case TS_OPT_STRING:
    case TS_OPT_PATH:
    case TS_OPT_IP: {
        const char *x = *CFIELD(a, o, char *), *y = *CFIELD(b, o, char *);
        return x == y || (x != NULL && y != NULL && strcmp(x, y) == 0);
    }
    case TS_OPT_UINT:
    case TS_OPT_FLAG:
    case TS_OPT_LOG_LEVEL:
        return *CFIELD(a, o, unsigned) == *CFIELD(b, o, unsigned);
    default:
        return 1;
    }
}

static void option_copy(ts_config_t *dst, const ts_config_t *src, const ts_config_option_t *o)
{
    switch (o->kind) {
    case TS_OPT_ENDPOINT:
        *FIELD(dst, o, ts_endpoint_t) = *CFIELD(src, o, ts_endpoint_t);
        break;
    case TS_OPT_STRING:
    case TS_OPT_PATH:
    case TS_OPT_IP: {
        const char *s = *CFIELD(src, o, char *);
        option_free(dst, o);
        *FIELD(dst, o, char *) = s != NULL ? ts_strdup(s) : NULL;
        break;
    }
    case TS_OPT_UINT:
    case TS_OPT_FLAG:
    case TS_OPT_LOG_LEVEL:
        *FIELD(dst, o, unsigned) = *CFIELD(src, o, unsigned);
        break;
    default:
        break;
    }
}

static const char *option_format(const ts_config_t *cfg, const ts_config_option_t *o, char *buf,
                                 size_t n)
{
    switch (o->kind) {
    case TS_OPT_ENDPOINT: {
        const ts_endpoint_t *ep = CFIELD(cfg, o, ts_endpoint_t);
        return ep->set ? ep->text : "off";
    }
    case TS_OPT_STRING:
    case TS_OPT_PATH:
    case TS_OPT_IP: {
        const char *s = *CFIELD(cfg, o, char *);
        return s != NULL ? s : "none";
    }
    case TS_OPT_FLAG:
        return *CFIELD(cfg, o, int) ? "true" : "false";
    case TS_OPT_LOG_LEVEL:
        return ts_log_level_name(*CFIELD(cfg, o, int));
    default:
        snprintf(buf, n, "%u", *CFIELD(cfg, o, unsigned));
        return buf;
    }
}

int ts_config_reload(const ts_config_t *old, ts_config_t *fresh, int argc, char **argv, FILE *err)
{
    char buf[32];

    if (config_build(fresh, argc, argv, NULL, err, old) != TS_CONFIG_RUN) {
        ts_config_free(fresh);
        return TS_ERR_CONFIG;
    }
    for (size_t i = 0; i < NOPT; i++) {
        const ts_config_option_t *o = &options[i];
        if (o->flags & (TS_OPT_RELOAD | TS_OPT_CMDLINE))
            continue;
        if (!option_equal(old, fresh, o) && err != NULL)
            fprintf(err, "tsunagi: --%s cannot change at run time; keeping %s\n", o->name,
                    option_format(old, o, buf, sizeof(buf)));
        /* Even an equal value: the running one may hold what the kernel chose (port 0). */
        option_copy(fresh, old, o);
    }
    return TS_OK;
}

void ts_config_free(ts_config_t *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < NOPT; i++)
        option_free(cfg, &options[i]);
    memset(cfg, 0, sizeof(*cfg));
}

void ts_config_usage(FILE *out)
{
    char lhs[64];

    fputs("Usage: tsunagi [OPTION]...\n"
          "A self-hosted WebRTC server: HTTP and WebSocket signaling, STUN and TURN.\n"
          "Every option also works in the --config file as a 'name = value' line.\n",
          out);
    for (size_t g = 0; g < TS_ARRAY_SIZE(group_names); g++) {
        fprintf(out, "\n%s:\n", group_names[g]);
        for (size_t i = 0; i < NOPT; i++) {
            const ts_config_option_t *o = &options[i];
            const char *def = o->def != NULL ? o->def : o->def_text;
            if ((size_t)o->group != g)
                continue;
            snprintf(lhs, sizeof(lhs), "--%s%s%s", o->name, o->arg != NULL ? " " : "",
                     o->arg != NULL ? o->arg : "");
            fprintf(out, "  %-28s %s%s", lhs, (o->flags & TS_OPT_RELOAD) ? "* " : "", o->help);
            if (def != NULL)
                fprintf(out, " [default: %s]", def);
            fputc('\n', out);
        }
    }
    fputs("\nRANGE is IP, IP1-IP2 or IP/prefix (IPv4 or IPv6). ADDR:PORT takes [IPv6]:PORT;\n"
          ":PORT or PORT alone listen on 0.0.0.0. ORIGIN is scheme://host[:port] (http or\n"
          "https, no path) or null. A flag takes =false to turn it off: --ws-deflate=false.\n"
          "A repeatable option given on the command line replaces the file's list.\n"
          "* SIGHUP re-reads the --config file and applies a new value of these options;\n"
          "the others keep their value until a restart.\n",
          out);
}
