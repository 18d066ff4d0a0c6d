/*
 * test_config.c — the configuration module: defaults, every option from the
 * command line and from a file, precedence, every error line, address
 * ranges, endpoints, origins, reload, and --help against the option table.
 *
 * The tests run in a temporary folder holding web/, web2/, cert.pem and
 * key.pem, so relative paths and the ./web default are predictable.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/addr.h"
#include "core/common.h"
#include "core/config.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/ts_config_XXXXXX";
static char olddir[PATH_MAX];

/* ---- helpers ---------------------------------------------------------------- */

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A config file with text in the temporary folder; the caller frees the name. */
static char *conf_file(const char *text)
{
    char *path = ts_malloc(64);
    int fd;

    snprintf(path, 64, "%s/c_XXXXXX", tmpdir);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_text(path, text);
    return path;
}

typedef struct {
    FILE *f;
    char *buf;
    size_t len;
} cap_t;

static void cap_open(cap_t *c)
{
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
    assert_non_null(c->f);
}

static char *cap_close(cap_t *c)
{
    fclose(c->f);
    return c->buf;
}

/* Load from args (NULL-terminated, without argv[0]); out and err may be NULL. */
static int load(ts_config_t *cfg, const char *const *args, char **out, char **err)
{
    char *argv[128];
    int argc = 0, rc;
    cap_t o, e;

    argv[argc++] = "tsunagi";
    for (; *args != NULL; args++) {
        assert_true(argc + 1 < (int)TS_ARRAY_SIZE(argv));
        argv[argc++] = (char *)*args;
    }
    argv[argc] = NULL;
    cap_open(&o);
    cap_open(&e);
    rc = ts_config_load(cfg, argc, argv, o.f, e.f);
    cap_close(&o);
    cap_close(&e);
    if (out != NULL)
        *out = o.buf;
    else
        free(o.buf);
    if (err != NULL)
        *err = e.buf;
    else
        free(e.buf);
    return rc;
}

/* Load and expect success with nothing said on the error stream. */
static void load_ok(ts_config_t *cfg, const char *const *args)
{
    char *err;
    int rc = load(cfg, args, NULL, &err);
    assert_string_equal(err, "");
    assert_int_equal(rc, TS_CONFIG_RUN);
    free(err);
}

static int ep_port(const ts_endpoint_t *ep)
{
    if (ep->sa.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&ep->sa)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)&ep->sa)->sin6_port);
}

static void ep_addr(const ts_endpoint_t *ep, char *buf)
{
    if (ep->sa.ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&ep->sa)->sin_addr, buf, INET6_ADDRSTRLEN);
    else
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&ep->sa)->sin6_addr, buf,
                  INET6_ADDRSTRLEN);
}

static void assert_endpoint(const ts_endpoint_t *ep, int family, const char *addr, int port)
{
    char buf[INET6_ADDRSTRLEN];

    assert_int_equal(ep->set, 1);
    assert_int_equal(ep->sa.ss_family, family);
    assert_int_equal(ep->len,
                     family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
    ep_addr(ep, buf);
    assert_string_equal(buf, addr);
    assert_int_equal(ep_port(ep), port);
}

static int is_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        if (b[i] != 0)
            return 0;
    }
    return 1;
}

static char *web_real(const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    return realpath(path, NULL);
}

/* ---- defaults ----------------------------------------------------------------- */

static void test_defaults(void **state)
{
    static const char *const args[] = {NULL};
    ts_config_t cfg, again;
    char host[256] = {0};
    char *web = web_real("web");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    load_ok(&cfg, args);
    assert_null(cfg.config_file);
    assert_endpoint(&cfg.http, AF_INET, "0.0.0.0", 8080);
    assert_string_equal(cfg.http.text, "0.0.0.0:8080");
    assert_int_equal(cfg.https.set, 0);
    assert_endpoint(&cfg.turn, AF_INET, "0.0.0.0", 3478);
    assert_int_equal(cfg.turns.set, 0);
    assert_null(cfg.cert);
    assert_null(cfg.pkey);
    assert_string_equal(cfg.web_root, web);
    assert_int_equal(cfg.threads, cpus > 256 ? 256 : cpus);
    gethostname(host, sizeof(host) - 1);
    assert_string_equal(cfg.realm, host);
    assert_int_equal(cfg.nusers, 0);
    assert_null(cfg.users);
    assert_int_equal(strlen(cfg.static_auth_secret), 64);
    assert_int_equal(strspn(cfg.static_auth_secret, "0123456789abcdef"), 64);
    assert_int_equal(cfg.static_auth_secret_generated, 1);
    assert_null(cfg.external_ip);
    assert_null(cfg.relay_ip);
    assert_int_equal(cfg.min_port, 49152);
    assert_int_equal(cfg.max_port, 65535);
    assert_int_equal(cfg.allow_loopback_peers, 0);
    assert_int_equal(cfg.ndenied_peers, 0);
    assert_int_equal(cfg.nallowed_peers, 0);
    assert_int_equal(cfg.user_quota, 0);
    assert_int_equal(cfg.total_quota, 0);
    assert_int_equal(cfg.max_bps, 0);
    assert_int_equal(cfg.credential_ttl, 86400);
    assert_int_equal(cfg.stale_nonce, 600);
    assert_int_equal(cfg.turn_request_rate, 500);
    assert_int_equal(cfg.turn_request_burst, 1000);
    assert_int_equal(cfg.echo, 0);
    assert_null(cfg.signaling_key);
    assert_null(cfg.authn_webhook_url);
    assert_null(cfg.disconnect_webhook_url);
    assert_int_equal(cfg.webhook_timeout, 5);
    assert_int_equal(cfg.signaling_ping_interval, 5);
    assert_int_equal(cfg.signaling_ping_timeout, 60);
    assert_int_equal(cfg.signaling_rate, 100);
    assert_int_equal(cfg.signaling_burst, 1000);
    assert_string_equal(cfg.peerjs_key, "peerjs");
    assert_int_equal(cfg.peerjs_allow_discovery, 0);
    assert_int_equal(cfg.peerjs_concurrent_limit, 5000);
    assert_int_equal(cfg.peerjs_expire_timeout, 5);
    assert_int_equal(cfg.peerjs_alive_timeout, 60);
    assert_int_equal(cfg.log_level, TS_LOG_INFO);
    assert_int_equal(cfg.max_connections, 0);
    assert_int_equal(cfg.max_connections_per_ip, 0);
    assert_int_equal(cfg.keepalive_timeout, 60);
    assert_int_equal(cfg.request_timeout, 10);
    assert_int_equal(cfg.drain_timeout, 5);
    assert_null(cfg.allowed_origins);
    assert_int_equal(cfg.nallowed_origins, 0);
    assert_int_equal(cfg.ws_max_message, 1048576);
    assert_int_equal(cfg.ws_idle_timeout, 60);
    assert_int_equal(cfg.ws_send_queue, 1048576);
    assert_int_equal(cfg.ws_deflate, 1);

    /* Each start makes its own secret. */
    load_ok(&again, args);
    assert_string_not_equal(cfg.static_auth_secret, again.static_auth_secret);
    ts_config_free(&again);
    ts_config_free(&cfg);
    assert_true(is_zero(&cfg, sizeof(cfg)));
    free(web);
}

static void test_no_web_folder(void **state)
{
    static const char *const args[] = {NULL};
    ts_config_t cfg;
    char *err;

    assert_int_equal(chdir("/"), 0);
    assert_int_equal(load(&cfg, args, NULL, &err), TS_ERR_CONFIG);
    assert_int_equal(chdir(tmpdir), 0);
    assert_string_equal(err, "tsunagi: no web folder found (looked next to the binary and in "
                             "./web); give --web-root DIR\n");
    assert_true(is_zero(&cfg, sizeof(cfg)));
    free(err);
}

/* ---- every option, from the command line and from a file ---------------------- */

static const struct {
    const char *name;
    const char *value; /* for a flag: NULL turns it on, else the value after '=' */
} every[] = {
    {"http", "127.0.0.1:9000"},
    {"https", "[::1]:9443"},
    {"cert", "cert.pem"},
    {"pkey", "key.pem"},
    {"turn", ":3479"},
    {"turns", "5349"},
    {"web-root", "web2"},
    {"realm", "example.org"},
    {"user", "alice:secret"},
    {"user", "bob:pa:ss"},
    {"static-auth-secret", "s3cret"},
    {"external-ip", "203.0.113.5"},
    {"relay-ip", "2001:db8::1"},
    {"min-port", "50000"},
    {"max-port", "50100"},
    {"allow-loopback-peers", NULL},
    {"denied-peer-ip", "10.0.0.0/8"},
    {"denied-peer-ip", "fc00::/7"},
    {"allowed-peer-ip", "10.1.0.0-10.1.255.255"},
    {"user-quota", "5"},
    {"total-quota", "100"},
    {"max-bps", "125000"},
    {"credential-ttl", "3600"},
    {"stale-nonce", "30"},
    {"turn-request-rate", "20"},
    {"turn-request-burst", "40"},
    {"echo", NULL},
    {"signaling-key", "k3y"},
    {"authn-webhook-url", "http://127.0.0.1:9/authn"},
    {"disconnect-webhook-url", "http://127.0.0.1:9/gone"},
    {"webhook-timeout", "3"},
    {"signaling-ping-interval", "7"},
    {"signaling-ping-timeout", "90"},
    {"signaling-rate", "7"},
    {"signaling-burst", "21"},
    {"peerjs-key", "pk"},
    {"peerjs-allow-discovery", NULL},
    {"peerjs-concurrent-limit", "42"},
    {"peerjs-expire-timeout", "9"},
    {"peerjs-alive-timeout", "33"},
    {"allowed-origin", "HTTPS://Example.COM:8443"},
    {"allowed-origin", "null"},
    {"ws-max-message", "65536"},
    {"ws-idle-timeout", "30"},
    {"ws-send-queue", "131072"},
    {"ws-deflate", "false"}, /* on by default: only turning it off shows it was read */
    {"threads", "3"},
    {"max-connections", "1000"},
    {"max-connections-per-ip", "50"},
    {"keepalive-timeout", "30"},
    {"request-timeout", "5"},
    {"drain-timeout", "0"},
    {"log-level", "debug"},
};

static void check_every(const ts_config_t *cfg)
{
    char *web2 = web_real("web2");

    assert_endpoint(&cfg->http, AF_INET, "127.0.0.1", 9000);
    assert_string_equal(cfg->http.text, "127.0.0.1:9000");
    assert_endpoint(&cfg->https, AF_INET6, "::1", 9443);
    assert_string_equal(cfg->cert, "cert.pem");
    assert_string_equal(cfg->pkey, "key.pem");
    assert_endpoint(&cfg->turn, AF_INET, "0.0.0.0", 3479);
    assert_endpoint(&cfg->turns, AF_INET, "0.0.0.0", 5349);
    assert_string_equal(cfg->web_root, web2);
    assert_string_equal(cfg->realm, "example.org");
    assert_int_equal(cfg->nusers, 2);
    assert_string_equal(cfg->users[0].name, "alice");
    assert_string_equal(cfg->users[0].pass, "secret");
    assert_string_equal(cfg->users[1].name, "bob");
    assert_string_equal(cfg->users[1].pass, "pa:ss");
    assert_string_equal(cfg->static_auth_secret, "s3cret");
    assert_int_equal(cfg->static_auth_secret_generated, 0);
    assert_string_equal(cfg->external_ip, "203.0.113.5");
    assert_string_equal(cfg->relay_ip, "2001:db8::1");
    assert_int_equal(cfg->min_port, 50000);
    assert_int_equal(cfg->max_port, 50100);
    assert_int_equal(cfg->allow_loopback_peers, 1);
    assert_int_equal(cfg->ndenied_peers, 2);
    assert_string_equal(cfg->denied_peers[0].text, "10.0.0.0/8");
    assert_int_equal(cfg->denied_peers[1].family, AF_INET6);
    assert_int_equal(cfg->nallowed_peers, 1);
    assert_string_equal(cfg->allowed_peers[0].text, "10.1.0.0-10.1.255.255");
    assert_int_equal(cfg->user_quota, 5);
    assert_int_equal(cfg->total_quota, 100);
    assert_int_equal(cfg->max_bps, 125000);
    assert_int_equal(cfg->credential_ttl, 3600);
    assert_int_equal(cfg->stale_nonce, 30);
    assert_int_equal(cfg->turn_request_rate, 20);
    assert_int_equal(cfg->turn_request_burst, 40);
    assert_int_equal(cfg->echo, 1);
    assert_string_equal(cfg->signaling_key, "k3y");
    assert_string_equal(cfg->authn_webhook_url, "http://127.0.0.1:9/authn");
    assert_string_equal(cfg->disconnect_webhook_url, "http://127.0.0.1:9/gone");
    assert_int_equal(cfg->webhook_timeout, 3);
    assert_int_equal(cfg->signaling_ping_interval, 7);
    assert_int_equal(cfg->signaling_ping_timeout, 90);
    assert_int_equal(cfg->signaling_rate, 7);
    assert_int_equal(cfg->signaling_burst, 21);
    assert_string_equal(cfg->peerjs_key, "pk");
    assert_int_equal(cfg->peerjs_allow_discovery, 1);
    assert_int_equal(cfg->peerjs_concurrent_limit, 42);
    assert_int_equal(cfg->peerjs_expire_timeout, 9);
    assert_int_equal(cfg->peerjs_alive_timeout, 33);
    assert_int_equal(cfg->nallowed_origins, 2);
    assert_string_equal(cfg->allowed_origins[0], "https://example.com:8443");
    assert_string_equal(cfg->allowed_origins[1], "null");
    assert_int_equal(cfg->ws_max_message, 65536);
    assert_int_equal(cfg->ws_idle_timeout, 30);
    assert_int_equal(cfg->ws_send_queue, 131072);
    assert_int_equal(cfg->ws_deflate, 0);
    assert_int_equal(cfg->threads, 3);
    assert_int_equal(cfg->max_connections, 1000);
    assert_int_equal(cfg->max_connections_per_ip, 50);
    assert_int_equal(cfg->keepalive_timeout, 30);
    assert_int_equal(cfg->request_timeout, 5);
    assert_int_equal(cfg->drain_timeout, 0);
    assert_int_equal(cfg->log_level, TS_LOG_DEBUG);
    free(web2);
}

/* The list above must name every option the file accepts, so it cannot drift. */
static void test_every_covers_table(void **state)
{
    size_t n;
    const ts_config_option_t *opts = ts_config_options(&n);

    assert_true(n > 20);
    for (size_t i = 0; i < n; i++) {
        int found = 0;
        if (opts[i].flags & TS_OPT_CMDLINE)
            continue;
        for (size_t j = 0; j < TS_ARRAY_SIZE(every); j++)
            found |= strcmp(every[j].name, opts[i].name) == 0;
        if (!found)
            fail_msg("option --%s is not in the test's list", opts[i].name);
    }
}

static int is_flag(const char *name)
{
    size_t n;
    const ts_config_option_t *opts = ts_config_options(&n);

    for (size_t i = 0; i < n; i++) {
        if (strcmp(opts[i].name, name) == 0)
            return opts[i].kind == TS_OPT_FLAG;
    }
    fail_msg("no option --%s", name);
    return 0;
}

static void every_from_argv(int with_equals)
{
    const char *args[2 * TS_ARRAY_SIZE(every) + 1];
    char *joined[TS_ARRAY_SIZE(every)];
    char flag[64];
    size_t n = 0;
    ts_config_t cfg;

    for (size_t i = 0; i < TS_ARRAY_SIZE(every); i++) {
        joined[i] = NULL;
        snprintf(flag, sizeof(flag), "--%s", every[i].name);
        /* A flag never takes the next argument: a value needs '='. */
        if (with_equals || (every[i].value != NULL && is_flag(every[i].name))) {
            const char *v = every[i].value != NULL ? every[i].value : "yes";
            size_t len = strlen(flag) + strlen(v) + 2;
            joined[i] = ts_malloc(len);
            snprintf(joined[i], len, "%s=%s", flag, v);
            args[n++] = joined[i];
        } else {
            joined[i] = ts_strdup(flag);
            args[n++] = joined[i];
            if (every[i].value != NULL)
                args[n++] = every[i].value;
        }
    }
    args[n] = NULL;
    load_ok(&cfg, args);
    check_every(&cfg);
    assert_null(cfg.config_file);
    ts_config_free(&cfg);
    for (size_t i = 0; i < TS_ARRAY_SIZE(every); i++)
        free(joined[i]);
}

static void test_every_option_argv(void **state)
{
    every_from_argv(0);
    every_from_argv(1);
}

static void test_every_option_file(void **state)
{
    char text[4096] = "# every option\n\n";
    char *path;
    ts_config_t cfg;

    for (size_t i = 0; i < TS_ARRAY_SIZE(every); i++) {
        size_t len = strlen(text);
        snprintf(text + len, sizeof(text) - len, "%s = %s\n", every[i].name,
                 every[i].value != NULL ? every[i].value : "true");
    }
    path = conf_file(text);
    {
        const char *args[] = {"--config", path, NULL};
        load_ok(&cfg, args);
    }
    check_every(&cfg);
    assert_string_equal(cfg.config_file, path);
    ts_config_free(&cfg);
    unlink(path);
    free(path);
}

static void test_flag_values(void **state)
{
    static const struct {
        const char *v;
        int want;
    } cases[] = {{"true", 1},  {"yes", 1}, {"on", 1},  {"1", 1}, {"TRUE", 1},
                 {"false", 0}, {"no", 0},  {"off", 0}, {"0", 0}, {"Off", 0}};
    char line[64];
    ts_config_t cfg;

    for (size_t i = 0; i < TS_ARRAY_SIZE(cases); i++) {
        char *path;
        snprintf(line, sizeof(line), "echo = %s\n", cases[i].v);
        path = conf_file(line);
        {
            const char *args[] = {"--config", path, NULL};
            load_ok(&cfg, args);
        }
        assert_int_equal(cfg.echo, cases[i].want);
        ts_config_free(&cfg);

        snprintf(line, sizeof(line), "--echo=%s", cases[i].v);
        {
            const char *args[] = {line, NULL};
            load_ok(&cfg, args);
        }
        assert_int_equal(cfg.echo, cases[i].want);
        ts_config_free(&cfg);
        unlink(path);
        free(path);
    }
}

/* A flag that is on by default: the bare name keeps it on, "=false" turns it off. */
static void test_flag_default_on(void **state)
{
    static const struct {
        const char *file; /* NULL: no file */
        const char *args[3];
        int want;
    } cases[] = {
        {NULL, {NULL}, 1},
        {NULL, {"--ws-deflate"}, 1},
        {NULL, {"--ws-deflate=false"}, 0},
        {NULL, {"--ws-deflate=off", "--ws-deflate"}, 1},
        {"ws-deflate = false\n", {NULL}, 0},
        {"ws-deflate = no\n", {"--ws-deflate"}, 1},
        {"ws-deflate\n", {"--ws-deflate=0"}, 0},
    };
    ts_config_t cfg;

    for (size_t i = 0; i < TS_ARRAY_SIZE(cases); i++) {
        const char *args[6] = {NULL};
        char *path = cases[i].file != NULL ? conf_file(cases[i].file) : NULL;
        size_t n = 0;

        if (path != NULL) {
            args[n++] = "--config";
            args[n++] = path;
        }
        for (size_t j = 0; cases[i].args[j] != NULL; j++)
            args[n++] = cases[i].args[j];
        load_ok(&cfg, args);
        if (cfg.ws_deflate != cases[i].want)
            fail_msg("case %zu: ws_deflate is %d", i, cfg.ws_deflate);
        ts_config_free(&cfg);
        if (path != NULL)
            unlink(path);
        free(path);
    }
}

/* The ends of each WebSocket range are accepted (the errors test the values past them). */
static void test_websocket_bounds(void **state)
{
    static const char *const low[] = {
        "--ws-max-message", "1024", "--ws-idle-timeout", "1", "--ws-send-queue", "65536", NULL};
    static const char *const high[] = {
        "--ws-max-message", "1073741824", "--ws-idle-timeout", "3600", "--ws-send-queue",
        "1073741824",       NULL};
    ts_config_t cfg;

    load_ok(&cfg, low);
    assert_int_equal(cfg.ws_max_message, 1024);
    assert_int_equal(cfg.ws_idle_timeout, 1);
    assert_int_equal(cfg.ws_send_queue, 65536);
    ts_config_free(&cfg);
    load_ok(&cfg, high);
    assert_int_equal(cfg.ws_max_message, 1073741824);
    assert_int_equal(cfg.ws_idle_timeout, 3600);
    assert_int_equal(cfg.ws_send_queue, 1073741824);
    ts_config_free(&cfg);
}

/* The ends of the TURN limits are accepted (the errors test the values past them). */
static void test_turn_limit_bounds(void **state)
{
    static const char *const low[] = {
        "--user-quota", "0", "--total-quota", "0", "--max-bps", "0", "--credential-ttl",
        "60",           NULL};
    static const char *const high[] = {"--user-quota",     "4294967295", "--total-quota",
                                       "4294967295",       "--max-bps",  "4294967295",
                                       "--credential-ttl", "31536000",   NULL};
    ts_config_t cfg;

    load_ok(&cfg, low);
    assert_int_equal(cfg.user_quota, 0);
    assert_int_equal(cfg.total_quota, 0);
    assert_int_equal(cfg.max_bps, 0);
    assert_int_equal(cfg.credential_ttl, 60);
    ts_config_free(&cfg);
    load_ok(&cfg, high);
    assert_int_equal(cfg.user_quota, UINT_MAX);
    assert_int_equal(cfg.total_quota, UINT_MAX);
    assert_int_equal(cfg.max_bps, UINT_MAX);
    assert_int_equal(cfg.credential_ttl, 31536000);
    ts_config_free(&cfg);
}

/* ---- precedence --------------------------------------------------------------- */

static void test_precedence(void **state)
{
    char *path = conf_file("threads = 3\n"
                           "realm = filerealm\n"
                           "user = a:1\n"
                           "user = b:2\n"
                           "denied-peer-ip = 10.0.0.0/8\n"
                           "log-level = warn\n"
                           "echo = false\n"
                           "keepalive-timeout = 20\n"
                           "keepalive-timeout = 25\n"
                           "allowed-origin = https://a.example\n"
                           "allowed-origin = https://b.example\n");
    ts_config_t cfg;

    {
        /* The command line wins even where it comes before --config. */
        const char *args[] = {"--threads",        "5",      "--user",   "c:3", "--allowed-origin",
                              "http://c.example", "--echo", "--config", path,  NULL};
        load_ok(&cfg, args);
    }
    assert_int_equal(cfg.threads, 5);
    assert_string_equal(cfg.realm, "filerealm");
    assert_int_equal(cfg.nusers, 1);
    assert_string_equal(cfg.users[0].name, "c");
    assert_int_equal(cfg.ndenied_peers, 1);
    assert_string_equal(cfg.denied_peers[0].text, "10.0.0.0/8");
    assert_int_equal(cfg.log_level, TS_LOG_WARN);
    assert_int_equal(cfg.echo, 1);
    assert_int_equal(cfg.keepalive_timeout, 25); /* the last line wins */
    assert_int_equal(cfg.nallowed_origins, 1);
    assert_string_equal(cfg.allowed_origins[0], "http://c.example");
    ts_config_free(&cfg);

    {
        /* Without a --user on the command line, the file's list stands. */
        const char *args[] = {"--config", path, "--threads=7", "--threads", "8", NULL};
        load_ok(&cfg, args);
    }
    assert_int_equal(cfg.threads, 8);
    assert_int_equal(cfg.nusers, 2);
    assert_string_equal(cfg.users[1].name, "b");
    assert_string_equal(cfg.users[1].pass, "2");
    assert_int_equal(cfg.nallowed_origins, 2);
    assert_string_equal(cfg.allowed_origins[0], "https://a.example");
    assert_string_equal(cfg.allowed_origins[1], "https://b.example");
    ts_config_free(&cfg);
    unlink(path);
    free(path);
}

/* ---- errors ------------------------------------------------------------------- */

static const struct {
    const char *args[10];
    const char *err;
} arg_errors[] = {
    {{"--min-port", "60000", "--max-port", "50000"},
     "tsunagi: --min-port 60000 is above --max-port 50000\n"},
    {{"--threads", "abc"}, "tsunagi: --threads: 'abc' is not a number\n"},
    {{"--threads", "-1"}, "tsunagi: --threads: '-1' is not a number\n"},
    {{"--threads", "0"}, "tsunagi: --threads: 0 is not in 1..256\n"},
    {{"--threads", "257"}, "tsunagi: --threads: 257 is not in 1..256\n"},
    {{"--threads", "99999999999999999999999"},
     "tsunagi: --threads: 99999999999999999999999 is not in 1..256\n"},
    {{"--keepalive-timeout", "3601"}, "tsunagi: --keepalive-timeout: 3601 is not in 1..3600\n"},
    {{"--request-timeout", "0"}, "tsunagi: --request-timeout: 0 is not in 1..600\n"},
    {{"--drain-timeout", "601"}, "tsunagi: --drain-timeout: 601 is not in 0..600\n"},
    {{"--min-port", "0"}, "tsunagi: --min-port: 0 is not in 1..65535\n"},
    {{"--max-port", "65536"}, "tsunagi: --max-port: 65536 is not in 1..65535\n"},
    {{"--foo"}, "tsunagi: unknown option --foo\n"},
    {{"--foo=bar"}, "tsunagi: unknown option --foo\n"},
    {{"-h"}, "tsunagi: unknown option -h\n"},
    {{"stray"}, "tsunagi: unexpected argument 'stray'\n"},
    {{"--https", "0.0.0.0:8443"}, "tsunagi: --https needs --cert and --pkey\n"},
    {{"--turns", "5349", "--cert", "cert.pem"}, "tsunagi: --turns needs --cert and --pkey\n"},
    {{"--cert", "/nonexistent/x"}, "tsunagi: --cert /nonexistent/x: No such file or directory\n"},
    {{"--cert", "/"}, "tsunagi: --cert /: Is a directory\n"},
    {{"--https", "8443", "--pkey", "/nonexistent"},
     "tsunagi: --pkey /nonexistent: No such file or directory\n"
     "tsunagi: --https needs --cert and --pkey\n"},
    {{"--threads"}, "tsunagi: --threads needs a value\n"},
    {{"--realm", "--threads", "2"}, "tsunagi: --realm needs a value\n"},
    {{"--realm", ""}, "tsunagi: --realm needs a value\n"},
    {{"--config"}, "tsunagi: --config needs a value\n"},
    {{"--echo=maybe"}, "tsunagi: --echo: 'maybe' is not true or false\n"},
    {{"--user", "bob"}, "tsunagi: --user needs NAME:PASS (no ':' found)\n"},
    {{"--user", ":pw"}, "tsunagi: --user: the name before ':' is empty\n"},
    {{"--user", "bob:"}, "tsunagi: --user: the password of 'bob' is empty\n"},
    {{"--user", "a:1", "--user", "a:2"}, "tsunagi: --user: user 'a' is given twice\n"},
    {{"--config", "/nonexistent.conf"},
     "tsunagi: --config /nonexistent.conf: No such file or directory\n"},
    {{"--config", "/"}, "tsunagi: --config /: Is a directory\n"},
    {{"--http", "1.2.3.4:99999"},
     "tsunagi: --http: '1.2.3.4:99999' is not ADDR:PORT (port above 65535)\n"},
    {{"--turn", "foo:3478"}, "tsunagi: --turn: 'foo:3478' is not ADDR:PORT (bad address)\n"},
    {{"--http", "off"}, "tsunagi: --http: 'off' is not ADDR:PORT (bad port)\n"},
    {{"--external-ip", "1.2.3"}, "tsunagi: --external-ip: '1.2.3' is not an IP address\n"},
    {{"--relay-ip", "[::1]"}, "tsunagi: --relay-ip: '[::1]' is not an IP address\n"},
    {{"--denied-peer-ip", "10.0.0.0/33"},
     "tsunagi: --denied-peer-ip: '10.0.0.0/33' is not an address range (the prefix must be "
     "0..32)\n"},
    {{"--allowed-peer-ip", "10.0.0.9-10.0.0.1"},
     "tsunagi: --allowed-peer-ip: '10.0.0.9-10.0.0.1' is not an address range (the first "
     "address is above the second)\n"},
    {{"--log-level", "loud"}, "tsunagi: --log-level: 'loud' is not error, warn, info or debug\n"},
    {{"--web-root", "/nonexistent"},
     "tsunagi: --web-root /nonexistent: No such file or directory\n"},
    {{"--web-root", "cert.pem"}, "tsunagi: --web-root cert.pem: Not a directory\n"},
    {{"--http", "8080", "--turn", "8080"}, "tsunagi: --http and --turn both use port 8080\n"},
    {{"--http", "127.0.0.1:3478"}, "tsunagi: --http and --turn both use port 3478\n"},
    {{"--threads", "abc", "--foo", "--min-port", "60000", "--max-port", "50000"},
     "tsunagi: --threads: 'abc' is not a number\n"
     "tsunagi: unknown option --foo\n"
     "tsunagi: --min-port 60000 is above --max-port 50000\n"},
    {{"--min-port", "x", "--max-port", "100"}, "tsunagi: --min-port: 'x' is not a number\n"},
    {{"--allowed-origin", "example.com"},
     "tsunagi: --allowed-origin: 'example.com' is not an origin (scheme://host[:port])\n"},
    {{"--allowed-origin", "https://example.com/"},
     "tsunagi: --allowed-origin: 'https://example.com/' is not an origin (no path, not even a "
     "trailing '/')\n"},
    {{"--allowed-origin", "ws://example.com"},
     "tsunagi: --allowed-origin: 'ws://example.com' is not an origin (the scheme must be http or "
     "https)\n"},
    {{"--allowed-origin", "http://example.com:99999"},
     "tsunagi: --allowed-origin: 'http://example.com:99999' is not an origin (port above "
     "65535)\n"},
    {{"--allowed-origin", "https://a.example", "--allowed-origin", ""},
     "tsunagi: --allowed-origin needs a value\n"},
    {{"--allowed-origin"}, "tsunagi: --allowed-origin needs a value\n"},
    {{"--ws-max-message", "1023"}, "tsunagi: --ws-max-message: 1023 is not in 1024..1073741824\n"},
    {{"--ws-max-message", "1073741825"},
     "tsunagi: --ws-max-message: 1073741825 is not in 1024..1073741824\n"},
    {{"--ws-max-message", "1k"}, "tsunagi: --ws-max-message: '1k' is not a number\n"},
    {{"--ws-idle-timeout", "0"}, "tsunagi: --ws-idle-timeout: 0 is not in 1..3600\n"},
    {{"--ws-idle-timeout", "3601"}, "tsunagi: --ws-idle-timeout: 3601 is not in 1..3600\n"},
    {{"--ws-send-queue", "65535"}, "tsunagi: --ws-send-queue: 65535 is not in 65536..1073741824\n"},
    {{"--ws-send-queue", "1073741825"},
     "tsunagi: --ws-send-queue: 1073741825 is not in 65536..1073741824\n"},
    {{"--ws-deflate=maybe"}, "tsunagi: --ws-deflate: 'maybe' is not true or false\n"},
    {{"--user-quota", "x"}, "tsunagi: --user-quota: 'x' is not a number\n"},
    {{"--user-quota", "-1"}, "tsunagi: --user-quota: '-1' is not a number\n"},
    {{"--total-quota", "4294967296"},
     "tsunagi: --total-quota: 4294967296 is not in 0..4294967295\n"},
    {{"--max-bps", "1M"}, "tsunagi: --max-bps: '1M' is not a number\n"},
    {{"--max-bps", "4294967296"}, "tsunagi: --max-bps: 4294967296 is not in 0..4294967295\n"},
    {{"--signaling-burst", "0"}, "tsunagi: --signaling-burst: 0 is not in 1..1000000\n"},
    {{"--turn-request-rate", "1000001"},
     "tsunagi: --turn-request-rate: 1000001 is not in 0..1000000\n"},
    {{"--credential-ttl", "59"}, "tsunagi: --credential-ttl: 59 is not in 60..31536000\n"},
    {{"--credential-ttl", "31536001"},
     "tsunagi: --credential-ttl: 31536001 is not in 60..31536000\n"},
    {{"--credential-ttl"}, "tsunagi: --credential-ttl needs a value\n"},
    {{"--ws-deflate", "false"}, "tsunagi: unexpected argument 'false'\n"},
};

static void test_argv_errors(void **state)
{
    for (size_t i = 0; i < TS_ARRAY_SIZE(arg_errors); i++) {
        ts_config_t cfg;
        char *err;
        int rc;

        rc = load(&cfg, arg_errors[i].args, NULL, &err);
        if (strcmp(err, arg_errors[i].err) != 0)
            fail_msg("case %zu (%s): got\n%s\nwant\n%s", i, arg_errors[i].args[0], err,
                     arg_errors[i].err);
        assert_int_equal(rc, TS_ERR_CONFIG);
        assert_true(is_zero(&cfg, sizeof(cfg)));
        free(err);
    }
}

static void test_file_errors(void **state)
{
    char text[8192], want[4096];
    char *path, *err;
    ts_config_t cfg;
    size_t len;

    len = (size_t)snprintf(text, sizeof(text),
                           "# comment\n"
                           "\n"
                           "foo = 1\n"
                           "threads = abc\n"
                           "config = other.conf\n"
                           "http\n"
                           "realm = \"unterminated\n"
                           "echo = maybe\n"
                           "user = nocolon\n"
                           "realm = \"a\" b\n"
                           "min-port = 70000\n"
                           "http = \n"
                           "allowed-origin = \"https://example.com/\"\n"
                           "ws-idle-timeout = 0\n"
                           "ws-deflate = maybe\n");
    memset(text + len, 'x', 4097);
    memcpy(text + len + 4097, "\nbogus\n", 8);
    path = conf_file(text);
    {
        const char *args[] = {"--config", path, "--bar", NULL};
        assert_int_equal(load(&cfg, args, NULL, &err), TS_ERR_CONFIG);
    }
    snprintf(want, sizeof(want),
             "tsunagi: %1$s:3: unknown option 'foo'\n"
             "tsunagi: %1$s:4: threads: 'abc' is not a number\n"
             "tsunagi: %1$s:5: 'config' works only on the command line\n"
             "tsunagi: %1$s:6: http needs a value\n"
             "tsunagi: %1$s:7: realm: missing closing quote\n"
             "tsunagi: %1$s:8: echo: 'maybe' is not true or false\n"
             "tsunagi: %1$s:9: user needs NAME:PASS (no ':' found)\n"
             "tsunagi: %1$s:10: realm: text after the closing quote\n"
             "tsunagi: %1$s:11: min-port: 70000 is not in 1..65535\n"
             "tsunagi: %1$s:12: http needs a value\n"
             "tsunagi: %1$s:13: allowed-origin: 'https://example.com/' is not an origin (no "
             "path, not even a trailing '/')\n"
             "tsunagi: %1$s:14: ws-idle-timeout: 0 is not in 1..3600\n"
             "tsunagi: %1$s:15: ws-deflate: 'maybe' is not true or false\n"
             "tsunagi: %1$s:16: line longer than 4096 bytes\n"
             "tsunagi: %1$s:17: unknown option 'bogus'\n"
             "tsunagi: unknown option --bar\n",
             path);
    assert_string_equal(err, want);
    assert_true(is_zero(&cfg, sizeof(cfg)));
    free(err);
    unlink(path);
    free(path);
}

static void test_file_syntax(void **state)
{
    char text[8192];
    char *path;
    ts_config_t cfg;
    size_t len;

    len = (size_t)snprintf(text, sizeof(text),
                           "\xEF\xBB\xBF# a BOM, then a comment\n"
                           "   realm   =   \"my realm # kept\"   # dropped\n"
                           "\t# an indented comment\n"
                           "signaling-key = abc#def\n"
                           "static-auth-secret = s3cr3t # a comment\n"
                           "echo\n"
                           "allow-loopback-peers # a bare flag with a comment\n"
                           "log-level=debug\r\n"
                           "user = a:b c\n"
                           "user=\"q:x y\"\n"
                           "   \n"
                           "external-ip = \"::1\"\n"
                           "relay-ip = 192.0.2.7 #\n"
                           "threads = 2");
    /* A line of exactly 4096 bytes is allowed. */
    memcpy(text + len, "\nsignaling-key = ", 17);
    len += 17;
    memset(text + len, 'k', 4096 - 16);
    text[len + 4096 - 16] = '\0';
    path = conf_file(text);
    {
        const char *args[] = {"--config", path, NULL};
        load_ok(&cfg, args);
    }
    assert_string_equal(cfg.realm, "my realm # kept");
    assert_int_equal(strlen(cfg.signaling_key), 4096 - 16);
    assert_string_equal(cfg.static_auth_secret, "s3cr3t");
    assert_int_equal(cfg.static_auth_secret_generated, 0);
    assert_int_equal(cfg.echo, 1);
    assert_int_equal(cfg.allow_loopback_peers, 1);
    assert_int_equal(cfg.log_level, TS_LOG_DEBUG);
    assert_int_equal(cfg.nusers, 2);
    assert_string_equal(cfg.users[0].pass, "b c");
    assert_string_equal(cfg.users[1].name, "q");
    assert_string_equal(cfg.users[1].pass, "x y");
    assert_string_equal(cfg.external_ip, "::1");
    assert_string_equal(cfg.relay_ip, "192.0.2.7");
    assert_int_equal(cfg.threads, 2);
    ts_config_free(&cfg);
    unlink(path);
    free(path);

    /* "abc#def" kept its '#': check it on its own. */
    path = conf_file("signaling-key = abc#def\n");
    {
        const char *args[] = {"--config", path, NULL};
        load_ok(&cfg, args);
    }
    assert_string_equal(cfg.signaling_key, "abc#def");
    ts_config_free(&cfg);
    unlink(path);
    free(path);
}

static void test_parse_text(void **state)
{
    static const char text[] = "threads = 4\nuser = a:b\nnope = 1\0junk";
    ts_config_t cfg;
    cap_t e;

    memset(&cfg, 0, sizeof(cfg));
    cap_open(&e);
    /* The length stops before the NUL, which would be an error of its own. */
    assert_int_equal(ts_config_parse_text(&cfg, text, strlen(text), "t.conf", e.f), TS_ERR_CONFIG);
    cap_close(&e);
    assert_string_equal(e.buf, "tsunagi: t.conf:3: unknown option 'nope'\n");
    assert_int_equal(cfg.threads, 4);
    assert_int_equal(cfg.nusers, 1);
    free(e.buf);

    cap_open(&e);
    assert_int_equal(ts_config_parse_text(&cfg, text, sizeof(text) - 1, "t.conf", e.f),
                     TS_ERR_CONFIG);
    cap_close(&e);
    assert_string_equal(e.buf, "tsunagi: t.conf:3: NUL byte in line\n");
    free(e.buf);
    ts_config_free(&cfg);

    assert_int_equal(ts_config_parse_text(&cfg, "", 0, "t.conf", NULL), TS_OK);
    assert_true(is_zero(&cfg, sizeof(cfg)));
}

/* ---- address ranges ---------------------------------------------------------- */

static void test_ranges(void **state)
{
    static const struct {
        const char *in;
        int family;
        const char *lo, *hi;
    } good[] = {
        {"192.0.2.1", AF_INET, "192.0.2.1", "192.0.2.1"},
        {"10.0.0.0/8", AF_INET, "10.0.0.0", "10.255.255.255"},
        {"10.1.2.3/8", AF_INET, "10.0.0.0", "10.255.255.255"},
        {"172.16.0.0/12", AF_INET, "172.16.0.0", "172.31.255.255"},
        {"192.168.1.77/30", AF_INET, "192.168.1.76", "192.168.1.79"},
        {"0.0.0.0/0", AF_INET, "0.0.0.0", "255.255.255.255"},
        {"1.2.3.4/32", AF_INET, "1.2.3.4", "1.2.3.4"},
        {"10.0.0.5-10.0.0.9", AF_INET, "10.0.0.5", "10.0.0.9"},
        {"10.0.0.5-10.0.0.5", AF_INET, "10.0.0.5", "10.0.0.5"},
        {"::1", AF_INET6, "::1", "::1"},
        {"fc00::/7", AF_INET6, "fc00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
        {"fe80::1/10", AF_INET6, "fe80::", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
        {"::/0", AF_INET6, "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
        {"2001:db8::/128", AF_INET6, "2001:db8::", "2001:db8::"},
        {"2001:db8::1-2001:db8::ff", AF_INET6, "2001:db8::1", "2001:db8::ff"},
        {"::ffff:1.2.3.4", AF_INET6, "::ffff:1.2.3.4", "::ffff:1.2.3.4"},
    };
    static const char *const bad[] = {
        "",         "1.2.3",       "abc",        "10.0.0.0/33",       "::/129",
        "1.2.3.4/", "1.2.3.4/-1",  "1.2.3.4/ 8", "10.0.0.9-10.0.0.5", "10.0.0.1-::1",
        "1.2.3.4-", "-1.2.3.4",    " 1.2.3.4",   "1.2.3.4 ",          "1.2.3.4/8-1.2.3.5",
        "::2-::1",  "1.2.3.4/8/8", "[::1]",      "1.2.3.4-5.6.7.8-9", "1.2.3.4/08x",
    };
    uint8_t want[16];
    ts_ip_range_t r;
    const char *why;

    for (size_t i = 0; i < TS_ARRAY_SIZE(good); i++) {
        size_t n = good[i].family == AF_INET ? 4 : 16;
        if (ts_ip_range_parse(good[i].in, &r, NULL) != TS_OK)
            fail_msg("'%s' was refused", good[i].in);
        assert_int_equal(r.family, good[i].family);
        assert_int_equal(inet_pton(good[i].family, good[i].lo, want), 1);
        assert_memory_equal(r.lo, want, n);
        assert_int_equal(inet_pton(good[i].family, good[i].hi, want), 1);
        assert_memory_equal(r.hi, want, n);
        assert_string_equal(r.text, good[i].in);
        free(r.text);
    }
    for (size_t i = 0; i < TS_ARRAY_SIZE(bad); i++) {
        if (ts_ip_range_parse(bad[i], &r, NULL) != TS_ERR_CONFIG)
            fail_msg("'%s' was accepted", bad[i]);
        assert_null(r.text);
    }
    /* The reason reaches the error line. */
    assert_int_equal(ts_ip_range_parse("::/129", &r, &why), TS_ERR_CONFIG);
    assert_string_equal(why, "the prefix must be 0..128");
    assert_int_equal(ts_ip_range_parse("10.0.0.1-::1", &r, &why), TS_ERR_CONFIG);
    assert_string_equal(why, "both ends must be IPv4 or both IPv6");
    assert_int_equal(ts_ip_range_parse("1.2.3.4/8-1.2.3.5", &r, &why), TS_ERR_CONFIG);
    assert_string_equal(why, "give IP1-IP2 or IP/prefix, not both");
}

/* ---- endpoints --------------------------------------------------------------- */

static void test_endpoints(void **state)
{
    static const struct {
        const char *in;
        int family;
        const char *addr;
        int port;
    } good[] = {
        {"1.2.3.4:80", AF_INET, "1.2.3.4", 80},
        {"[::1]:80", AF_INET6, "::1", 80},
        {"[::]:8080", AF_INET6, "::", 8080},
        {"0.0.0.0:0", AF_INET, "0.0.0.0", 0},
        {":8080", AF_INET, "0.0.0.0", 8080},
        {"8080", AF_INET, "0.0.0.0", 8080},
        {"127.0.0.1:65535", AF_INET, "127.0.0.1", 65535},
        {"[2001:db8::1]:443", AF_INET6, "2001:db8::1", 443},
        {"[::ffff:1.2.3.4]:1", AF_INET6, "::ffff:1.2.3.4", 1},
    };
    static const char *const bad[] = {
        "",           "1.2.3.4:65536", "1.2.3.4", "1.2.3.4:",     "[::1]",
        "[::1]80",    "::1:80",        "foo:80",  "1.2.3.4:8o",   "[1.2.3.4]:80",
        "1.2.3.4:-1", "[::1:80",       "[]:80",   "localhost:80", "99999",
        ":",          "1.2.3.4:+80",   "off",     "1.2.3.4: 80",  "[::1]:80000000000000000000000",
    };
    ts_endpoint_t ep;
    const char *why;

    for (size_t i = 0; i < TS_ARRAY_SIZE(good); i++) {
        if (ts_endpoint_parse(good[i].in, &ep, NULL) != TS_OK)
            fail_msg("'%s' was refused", good[i].in);
        assert_endpoint(&ep, good[i].family, good[i].addr, good[i].port);
        assert_string_equal(ep.text, good[i].in);
    }
    for (size_t i = 0; i < TS_ARRAY_SIZE(bad); i++) {
        if (ts_endpoint_parse(bad[i], &ep, NULL) != TS_ERR_CONFIG)
            fail_msg("'%s' was accepted", bad[i]);
        assert_int_equal(ep.set, 0);
    }
    assert_int_equal(ts_endpoint_parse("::1:80", &ep, &why), TS_ERR_CONFIG);
    assert_string_equal(why, "an IPv6 address needs brackets: [ADDR]:PORT");
    assert_int_equal(ts_endpoint_parse("[::1]80", &ep, &why), TS_ERR_CONFIG);
    assert_string_equal(why, "missing :PORT after ']'");
    assert_int_equal(ts_endpoint_parse("1.2.3.4:", &ep, &why), TS_ERR_CONFIG);
    assert_string_equal(why, "missing port");
}

/* ---- origins ----------------------------------------------------------------- */

static void test_origins(void **state)
{
    static const struct {
        const char *in, *out; /* out: as a browser serializes it in the Origin header */
    } good[] = {
        {"https://example.com", "https://example.com"},
        {"http://example.com:8080", "http://example.com:8080"},
        {"HTTPS://Example.COM", "https://example.com"},
        {"https://example.com:443", "https://example.com"},
        {"http://example.com:80", "http://example.com"},
        {"http://example.com:443", "http://example.com:443"},
        {"https://example.com:80", "https://example.com:80"},
        {"http://localhost:08080", "http://localhost:8080"},
        {"http://127.0.0.1:3000", "http://127.0.0.1:3000"},
        {"http://[::1]:8080", "http://[::1]:8080"},
        {"http://[0:0::1]", "http://[::1]"},
        {"https://[2001:DB8:0:0:1:0:0:1]", "https://[2001:db8::1:0:0:1]"},
        {"https://[::ffff:1.2.3.4]", "https://[::ffff:102:304]"},
        {"https://[1:0:0:2:0:0:0:3]", "https://[1:0:0:2::3]"},
        {"https://[::]", "https://[::]"},
        {"https://[1::]", "https://[1::]"},
        {"https://[1:2:3:4:5:6:7:0]", "https://[1:2:3:4:5:6:7:0]"},
        {"https://xn--bcher-kva.example", "https://xn--bcher-kva.example"},
        {"http://my_host.internal", "http://my_host.internal"},
        {"null", "null"},
        {"NULL", "null"},
    };
    static const struct {
        const char *in, *why;
    } bad[] = {
        {"example.com", "scheme://host[:port]"},
        {"", "scheme://host[:port]"},
        {"https:/example.com", "scheme://host[:port]"},
        {"ws://example.com", "the scheme must be http or https"},
        {"://example.com", "the scheme must be http or https"},
        {"httpss://example.com", "the scheme must be http or https"},
        {"https://example.com/", "no path, not even a trailing '/'"},
        {"https://example.com/app", "no path, not even a trailing '/'"},
        {"https://", "no host"},
        {"https://:443", "no host"},
        {"https://example.com:", "bad port"},
        {"https://example.com:0", "bad port"},
        {"https://example.com:-1", "bad port"},
        {"https://example.com:8o", "bad port"},
        {"https://example.com:65536", "port above 65535"},
        {"https://user@example.com", "bad host name"},
        {"https://exa mple.com", "bad host name"},
        {"https://example.com?x", "bad host name"},
        {"https://b\xc3\xbc"
         "cher.example",
         "bad host name"},
        {"https://::1", "bad host name"},
        {"https://[::1", "bad IPv6 address"},
        {"https://[1.2.3.4]", "bad IPv6 address"},
        {"https://[::1]x", "bad IPv6 address"},
        {"https://[]", "bad IPv6 address"},
        {"https://[", "bad IPv6 address"},
        {"nul", "scheme://host[:port]"},
    };
    char longest[300];
    char *origin;
    const char *why;

    for (size_t i = 0; i < TS_ARRAY_SIZE(good); i++) {
        if (ts_origin_parse(good[i].in, &origin, NULL) != TS_OK)
            fail_msg("'%s' was refused", good[i].in);
        assert_string_equal(origin, good[i].out);
        free(origin);
    }
    for (size_t i = 0; i < TS_ARRAY_SIZE(bad); i++) {
        why = NULL;
        if (ts_origin_parse(bad[i].in, &origin, &why) != TS_ERR_CONFIG)
            fail_msg("'%s' was accepted", bad[i].in);
        assert_null(origin);
        if (why == NULL || strcmp(why, bad[i].why) != 0)
            fail_msg("'%s': got (%s), want (%s)", bad[i].in, why ? why : "NULL", bad[i].why);
    }

    /* A host name of 253 bytes, the DNS limit, and a port: fits; one more byte does not. */
    snprintf(longest, sizeof(longest), "https://%0253d:65535", 0);
    assert_int_equal(ts_origin_parse(longest, &origin, NULL), TS_OK);
    assert_string_equal(origin, longest);
    free(origin);
    snprintf(longest, sizeof(longest), "https://%0254d", 0);
    assert_int_equal(ts_origin_parse(longest, &origin, &why), TS_ERR_CONFIG);
    assert_string_equal(why, "host name longer than 253 bytes");
}

static void test_off_listeners(void **state)
{
    static const char *const args[] = {"--https", "off", "--turns=off", "--cert", "cert.pem", NULL};
    ts_config_t cfg;

    load_ok(&cfg, args);
    assert_int_equal(cfg.https.set, 0);
    assert_int_equal(cfg.turns.set, 0);
    ts_config_free(&cfg);
}

/* ---- reload ------------------------------------------------------------------ */

static int do_reload(const ts_config_t *old, ts_config_t *fresh, const char *path, char **err)
{
    char *argv[] = {"tsunagi", "--config", (char *)path, "--request-timeout", "9", NULL};
    cap_t e;
    int rc;

    cap_open(&e);
    rc = ts_config_reload(old, fresh, 5, argv, e.f);
    *err = cap_close(&e);
    return rc;
}

static void test_reload(void **state)
{
    char *path = conf_file("threads = 2\n"
                           "log-level = info\n"
                           "http = 127.0.0.1:0\n"
                           "user = a:1\n"
                           "allowed-origin = https://old.example\n");
    ts_config_t old, fresh;
    char *err;

    {
        const char *args[] = {"--config", path, "--request-timeout", "9", NULL};
        load_ok(&old, args);
    }
    assert_int_equal(old.static_auth_secret_generated, 1);
    /* The server writes back the port the kernel chose for "127.0.0.1:0". */
    ((struct sockaddr_in *)&old.http.sa)->sin_port = htons(40000);

    /* Nothing changed (port 0 is still port 0): nothing said, and the generated secret and
     * the listener's real port carry over. */
    assert_int_equal(do_reload(&old, &fresh, path, &err), TS_OK);
    assert_string_equal(err, "");
    assert_endpoint(&fresh.http, AF_INET, "127.0.0.1", 40000);
    assert_string_equal(fresh.static_auth_secret, old.static_auth_secret);
    assert_int_equal(fresh.static_auth_secret_generated, 1);
    /* fresh holds its own copy of every list: freeing one leaves the other whole. */
    assert_int_equal(fresh.nallowed_origins, 1);
    assert_string_equal(fresh.allowed_origins[0], "https://old.example");
    assert_ptr_not_equal(fresh.allowed_origins, old.allowed_origins);
    assert_ptr_not_equal(fresh.allowed_origins[0], old.allowed_origins[0]);
    free(err);
    ts_config_free(&fresh);

    write_text(path, "threads = 3\n"
                     "log-level = debug\n"
                     "http = 127.0.0.1:9999\n"
                     "user = b:2\n"
                     "max-connections = 7\n"
                     "echo = true\n"
                     "denied-peer-ip = 10.0.0.0/8\n"
                     "request-timeout = 30\n"
                     "allowed-origin = https://new.example\n"
                     "allowed-origin = http://localhost:3000\n"
                     "ws-max-message = 2048\n"
                     "ws-idle-timeout = 5\n"
                     "ws-send-queue = 65536\n"
                     "ws-deflate = false\n"
                     "user-quota = 2\n"
                     "total-quota = 50\n"
                     "max-bps = 1000\n"
                     "credential-ttl = 600\n");
    assert_int_equal(do_reload(&old, &fresh, path, &err), TS_OK);
    assert_string_equal(err, "tsunagi: --http cannot change at run time; keeping 127.0.0.1:0\n"
                             "tsunagi: --echo cannot change at run time; keeping false\n"
                             "tsunagi: --threads cannot change at run time; keeping 2\n");
    free(err);
    assert_int_equal(fresh.threads, 2);
    assert_string_equal(fresh.http.text, "127.0.0.1:0");
    assert_endpoint(&fresh.http, AF_INET, "127.0.0.1", 40000);
    assert_int_equal(fresh.echo, 0);
    assert_int_equal(fresh.log_level, TS_LOG_DEBUG);
    assert_int_equal(fresh.nusers, 1);
    assert_string_equal(fresh.users[0].name, "b");
    assert_int_equal(fresh.max_connections, 7);
    assert_int_equal(fresh.ndenied_peers, 1);
    assert_int_equal(fresh.request_timeout, 9); /* the command line still wins */
    assert_string_equal(fresh.static_auth_secret, old.static_auth_secret);
    assert_int_equal(fresh.nallowed_origins, 2);
    assert_string_equal(fresh.allowed_origins[0], "https://new.example");
    assert_string_equal(fresh.allowed_origins[1], "http://localhost:3000");
    assert_int_equal(fresh.ws_max_message, 2048);
    assert_int_equal(fresh.ws_idle_timeout, 5);
    assert_int_equal(fresh.ws_send_queue, 65536);
    assert_int_equal(fresh.ws_deflate, 0);
    assert_int_equal(fresh.user_quota, 2);
    assert_int_equal(fresh.total_quota, 50);
    assert_int_equal(fresh.max_bps, 1000);
    assert_int_equal(fresh.credential_ttl, 600);
    /* The running configuration is untouched. */
    assert_int_equal(old.log_level, TS_LOG_INFO);
    assert_string_equal(old.users[0].name, "a");
    assert_int_equal(old.nallowed_origins, 1);
    assert_string_equal(old.allowed_origins[0], "https://old.example");
    assert_int_equal(old.ws_max_message, 1048576);
    assert_int_equal(old.ws_deflate, 1);
    assert_int_equal(old.user_quota, 0);
    assert_int_equal(old.credential_ttl, 86400);
    ts_config_free(&fresh);

    /* Lines removed: back to the defaults, every Origin allowed again. */
    write_text(path, "threads = 2\nhttp = 127.0.0.1:0\n");
    assert_int_equal(do_reload(&old, &fresh, path, &err), TS_OK);
    assert_string_equal(err, "");
    assert_null(fresh.allowed_origins);
    assert_int_equal(fresh.nallowed_origins, 0);
    assert_int_equal(fresh.ws_deflate, 1);
    assert_int_equal(fresh.user_quota, 0);
    assert_int_equal(fresh.credential_ttl, 86400);
    free(err);
    ts_config_free(&fresh);

    /* A bad origin refuses the whole reload. */
    write_text(path, "threads = 2\nhttp = 127.0.0.1:0\nallowed-origin = example.com\n");
    assert_int_equal(do_reload(&old, &fresh, path, &err), TS_ERR_CONFIG);
    {
        char want[512];
        snprintf(want, sizeof(want),
                 "tsunagi: %s:3: allowed-origin: 'example.com' is not an origin "
                 "(scheme://host[:port])\n",
                 path);
        assert_string_equal(err, want);
    }
    assert_true(is_zero(&fresh, sizeof(fresh)));
    assert_string_equal(old.allowed_origins[0], "https://old.example");
    free(err);

    /* A secret set in the file replaces the generated one. */
    write_text(path, "threads = 2\nhttp = 127.0.0.1:0\nstatic-auth-secret = fixed\n");
    assert_int_equal(do_reload(&old, &fresh, path, &err), TS_OK);
    assert_string_equal(err, "");
    assert_string_equal(fresh.static_auth_secret, "fixed");
    assert_int_equal(fresh.static_auth_secret_generated, 0);
    free(err);
    ts_config_free(&fresh);

    /* More kinds of non-reloadable values, reported with their old value. */
    write_text(path, "threads = 2\nhttp = 127.0.0.1:0\nrealm = new\nrelay-ip = 192.0.2.1\n"
                     "max-port = 60000\nhttps = 8443\ncert = cert.pem\npkey = key.pem\n"
                     "drain-timeout = 1\nweb-root = web2\n");
    assert_int_equal(do_reload(&old, &fresh, path, &err), TS_OK);
    {
        char want[2048];
        snprintf(want, sizeof(want),
                 "tsunagi: --https cannot change at run time; keeping off\n"
                 "tsunagi: --cert cannot change at run time; keeping none\n"
                 "tsunagi: --pkey cannot change at run time; keeping none\n"
                 "tsunagi: --web-root cannot change at run time; keeping %s\n"
                 "tsunagi: --realm cannot change at run time; keeping %s\n"
                 "tsunagi: --relay-ip cannot change at run time; keeping none\n"
                 "tsunagi: --max-port cannot change at run time; keeping 65535\n"
                 "tsunagi: --drain-timeout cannot change at run time; keeping 5\n",
                 old.web_root, old.realm);
        assert_string_equal(err, want);
    }
    free(err);
    assert_int_equal(fresh.https.set, 0);
    assert_null(fresh.cert);
    assert_null(fresh.relay_ip);
    assert_string_equal(fresh.realm, old.realm);
    assert_string_equal(fresh.web_root, old.web_root);
    assert_int_equal(fresh.max_port, 65535);
    assert_int_equal(fresh.drain_timeout, 5);
    ts_config_free(&fresh);

    /* A broken file: refused, fresh left zeroed, the old configuration intact. */
    write_text(path, "threads = x\nlog-level = debug\n");
    assert_int_equal(do_reload(&old, &fresh, path, &err), TS_ERR_CONFIG);
    {
        char want[512];
        snprintf(want, sizeof(want), "tsunagi: %s:1: threads: 'x' is not a number\n", path);
        assert_string_equal(err, want);
    }
    assert_true(is_zero(&fresh, sizeof(fresh)));
    assert_int_equal(old.threads, 2);
    free(err);

    ts_config_free(&old);
    unlink(path);
    free(path);
}

/* ---- help and version ------------------------------------------------------- */

static void test_help(void **state)
{
    static const char *const args[] = {"--threads", "abc", "--help", "--foo", NULL};
    size_t n;
    const ts_config_option_t *opts = ts_config_options(&n);
    ts_config_t cfg;
    char *out, *err, want[256];

    /* --help wins over every other problem on the line: it must always work. */
    assert_int_equal(load(&cfg, args, &out, &err), TS_CONFIG_EXIT);
    assert_string_equal(err, "");
    assert_true(is_zero(&cfg, sizeof(cfg)));
    for (size_t i = 0; i < n; i++) {
        const char *def = opts[i].def != NULL ? opts[i].def : opts[i].def_text;
        const char *line;
        snprintf(want, sizeof(want), "  --%s%s%s ", opts[i].name, opts[i].arg ? " " : "",
                 opts[i].arg ? opts[i].arg : "");
        line = strstr(out, want);
        if (line == NULL)
            fail_msg("--help does not list --%s", opts[i].name);
        if (strstr(line, opts[i].help) == NULL || strstr(line, opts[i].help) > strchr(line, '\n'))
            fail_msg("--help: no meaning on the line of --%s", opts[i].name);
        if (def != NULL) {
            snprintf(want, sizeof(want), "[default: %s]\n", def);
            if (strstr(line, want) == NULL || strstr(line, want) > strchr(line, '\n'))
                fail_msg("--help: no default on the line of --%s", opts[i].name);
        }
        if (opts[i].flags & TS_OPT_RELOAD) {
            snprintf(want, sizeof(want), "* %s", opts[i].help);
            assert_non_null(strstr(line, want));
        }
    }
    assert_non_null(strstr(out, "\nListeners:\n"));
    assert_non_null(strstr(out, "\nTURN:\n"));
    assert_non_null(strstr(out, "\nSignaling:\n"));
    assert_non_null(strstr(out, "\nWebSocket:\n"));
    assert_true(strstr(out, "\nSignaling:\n") < strstr(out, "\nWebSocket:\n"));
    assert_true(strstr(out, "\nWebSocket:\n") < strstr(out, "  --ws-deflate "));
    assert_true(strstr(out, "  --ws-deflate ") < strstr(out, "\nLimits:\n"));
    assert_non_null(strstr(out, "\nLimits:\n"));
    assert_non_null(strstr(out, "\nLogging:\n"));
    free(out);
    free(err);
}

static void test_version(void **state)
{
    static const char *const args[] = {"--version", NULL};
    ts_config_t cfg;
    char *out, *err;

    assert_int_equal(load(&cfg, args, &out, &err), TS_CONFIG_EXIT);
    assert_string_equal(out, "tsunagi " TS_VERSION " (" TS_GIT_COMMIT ")\n");
    assert_string_equal(err, "");
    free(out);
    free(err);
}

/* ---- the example file and the docs follow the table -------------------------- */

static char *read_source(const char *rel)
{
    const char *dir = getenv("TS_SOURCE_DIR");
    char path[PATH_MAX], *text;
    FILE *f;
    long n;

    if (dir != NULL)
        snprintf(path, sizeof(path), "%s/%s", dir, rel);
    else /* __FILE__ is tests/unit/test_config.c under the source root */
        snprintf(path, sizeof(path), "%.*s%s",
                 (int)(strlen(__FILE__) - strlen("tests/unit/test_config.c")), __FILE__, rel);
    f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = ts_malloc((size_t)n + 1);
    assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
    text[n] = '\0';
    fclose(f);
    return text;
}

static void test_example_and_docs(void **state)
{
    size_t n, len = 0;
    const ts_config_option_t *opts = ts_config_options(&n);
    char *example = read_source("tsunagi.conf.example");
    char *docs = read_source("docs/configuration.md");
    char *uncommented = ts_malloc(strlen(example) + 1);
    char want[256];
    ts_config_t cfg;
    cap_t e;

    for (size_t i = 0; i < n; i++) {
        snprintf(want, sizeof(want), "`--%s", opts[i].name);
        if (strstr(docs, want) == NULL)
            fail_msg("docs/configuration.md does not describe --%s", opts[i].name);
        if (opts[i].flags & TS_OPT_CMDLINE)
            continue;
        snprintf(want, sizeof(want), "\n#%s =", opts[i].name);
        if (strstr(example, want) == NULL)
            fail_msg("tsunagi.conf.example does not list %s", opts[i].name);
        if (opts[i].def != NULL) {
            snprintf(want, sizeof(want), "\n#%s = %s\n", opts[i].name, opts[i].def);
            if (strstr(example, want) == NULL)
                fail_msg("tsunagi.conf.example: %s is not shown with its default %s", opts[i].name,
                         opts[i].def);
        }
    }
    /* Every commented "#name = value" line, uncommented, is valid. */
    for (char *line = example; *line != '\0';) {
        char *end = strchr(line, '\n');
        size_t l = end != NULL ? (size_t)(end - line) + 1 : strlen(line);
        char *eq = memchr(line, '=', l);
        if (line[0] == '#' && line[1] != ' ' && line[1] != '#' && eq != NULL && eq[1] == ' ' &&
            eq[2] != '\n') {
            memcpy(uncommented + len, line + 1, l - 1);
            len += l - 1;
        }
        line += l;
    }
    assert_true(len > 200);
    memset(&cfg, 0, sizeof(cfg));
    cap_open(&e);
    assert_int_equal(ts_config_parse_text(&cfg, uncommented, len, "example", e.f), TS_OK);
    cap_close(&e);
    assert_string_equal(e.buf, "");
    assert_int_equal(cfg.nusers, 2);
    assert_int_equal(cfg.ndenied_peers, 2);
    assert_int_equal(cfg.nallowed_origins, 2);
    ts_config_free(&cfg);
    free(e.buf);
    free(uncommented);
    free(example);
    free(docs);
}

/* ---- set-up ------------------------------------------------------------------ */

static int group_setup(void **state)
{
    char path[PATH_MAX];

    if (getcwd(olddir, sizeof(olddir)) == NULL || mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/web", tmpdir);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/web2", tmpdir);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/cert.pem", tmpdir);
    write_text(path, "cert\n");
    snprintf(path, sizeof(path), "%s/key.pem", tmpdir);
    write_text(path, "key\n");
    return chdir(tmpdir);
}

static int group_teardown(void **state)
{
    char cmd[PATH_MAX + 16];

    if (chdir(olddir) != 0)
        return -1;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_no_web_folder),
        cmocka_unit_test(test_every_covers_table),
        cmocka_unit_test(test_every_option_argv),
        cmocka_unit_test(test_every_option_file),
        cmocka_unit_test(test_flag_values),
        cmocka_unit_test(test_flag_default_on),
        cmocka_unit_test(test_websocket_bounds),
        cmocka_unit_test(test_turn_limit_bounds),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_argv_errors),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_file_syntax),
        cmocka_unit_test(test_parse_text),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_origins),
        cmocka_unit_test(test_off_listeners),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_example_and_docs),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
