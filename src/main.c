/*
 * main.c — start-up: configuration, listeners, workers, and the signal loop.
 *
 * The main thread owns signals: every worker blocks them, and main waits in
 * sigtimedwait(). SIGTERM / SIGINT drain (stop accepting, let in-flight work
 * finish for up to --drain-timeout seconds, exit 0); a second one exits at
 * once. SIGHUP re-reads the configuration file and applies what can change
 * at run time, and reads the TLS certificate and key again.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/common.h"
#include "core/config.h"
#include "core/log.h"
#include "core/server.h"
#include "http/server.h"
#include "tls/certs.h"
#include "tls/tls.h"
#include "turn/dtls.h"
#include "turn/net.h"

static void ts_raise_nofile(const ts_config_t *cfg)
{
    struct rlimit rl;
    unsigned long long reserve = 64 + 8 * (unsigned long long)cfg->threads;

    /* Every connection is a descriptor: take all the kernel allows. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            ts_log_warn("cannot raise the open file limit: %s", strerror(errno));
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    ts_log_info("open file limit: %llu", (unsigned long long)rl.rlim_cur);
    /* Listeners, epoll, eventfds and TURN relay sockets need descriptors
     * too; past the limit accept() fails with EMFILE and pauses, so say so
     * now rather than let --max-connections promise what cannot be had. */
    if (cfg->max_connections != 0 && cfg->max_connections + reserve > rl.rlim_cur)
        ts_log_warn("open file limit %llu is too low for --max-connections %u: accepting "
                    "will pause at about %llu connections (raise LimitNOFILE / ulimit -n)",
                    (unsigned long long)rl.rlim_cur, cfg->max_connections,
                    rl.rlim_cur > reserve ? (unsigned long long)rl.rlim_cur - reserve : 0ULL);
}

/* The certificate of --https and --turns (TLS, and DTLS for --turns):
 * TS_OK, or TS_ERR_CONFIG after saying why. */
static int ts_load_certs(const ts_config_t *cfg)
{
    unsigned kinds = (cfg->https.set || cfg->turns.set ? TS_CERTS_TLS : 0) |
                     (cfg->turns.set ? TS_CERTS_DTLS : 0);
    char err[512];

    if (kinds == 0)
        return TS_OK;
    if (ts_certs_load(cfg->cert, cfg->pkey, kinds, err, sizeof(err)) != TS_OK) {
        fprintf(stderr, "tsunagi: %s\n", err);
        return TS_ERR_CONFIG;
    }
    if (cfg->turns.set)
        ts_turn_dtls_init();
    return TS_OK;
}

/* The listeners cfg asks for, into specs (6 at most); TLS ones start with
 * tls_ctx (and take a new one when SIGHUP loads a new certificate). */
static size_t ts_listener_specs(ts_config_t *cfg, ts_tls_ctx_t *tls_ctx, ts_listener_spec_t *specs)
{
    size_t n = 0;

    if (cfg->http.set)
        specs[n++] = (ts_listener_spec_t){
            .name = "http", .endpoint = &cfg->http, .type = SOCK_STREAM, .ops = &ts_http_ops};
    if (cfg->https.set)
        specs[n++] = (ts_listener_spec_t){.name = "https",
                                          .endpoint = &cfg->https,
                                          .type = SOCK_STREAM,
                                          .ops = &ts_http_ops,
                                          .tls_ctx = tls_ctx};
    if (cfg->turn.set) {
        /* STUN/TURN on one port over UDP and TCP (the UDP group goes first,
         * so a port 0 picks the same port for both). */
        specs[n++] = (ts_listener_spec_t){
            .name = "turn", .endpoint = &cfg->turn, .type = SOCK_DGRAM, .dgram = ts_turn_on_udp};
        specs[n++] = (ts_listener_spec_t){.name = "turn",
                                          .endpoint = &cfg->turn,
                                          .type = SOCK_STREAM,
                                          .ops = &ts_turn_stream_ops};
    }
    if (cfg->turns.set) {
        /* DTLS on the UDP side of the same port, which goes first (as --turn's). */
        specs[n++] = (ts_listener_spec_t){.name = "turns",
                                          .endpoint = &cfg->turns,
                                          .type = SOCK_DGRAM,
                                          .dgram = ts_turn_dtls_on_udp};
        specs[n++] = (ts_listener_spec_t){.name = "turns",
                                          .endpoint = &cfg->turns,
                                          .type = SOCK_STREAM,
                                          .ops = &ts_turn_stream_ops,
                                          .tls_ctx = tls_ctx};
    }
    return n;
}

/* The certificate files are read again (renewed in place, typically): new
 * TLS and DTLS sessions get the new one, those open keep theirs. */
static void ts_reload_certs(const ts_config_t *cfg)
{
    unsigned kinds = ts_certs_kinds();
    char err[512];

    if (kinds == 0)
        return;
    if (ts_certs_load(cfg->cert, cfg->pkey, kinds, err, sizeof(err)) != TS_OK)
        ts_log_error("%s; the certificate in force stays", err);
    else
        ts_log_info("certificate reloaded from %s", cfg->cert);
}

static void ts_reload(ts_server_t *server, int argc, char **argv)
{
    ts_config_t *fresh = ts_calloc(1, sizeof(*fresh));

    ts_log_info("SIGHUP: reloading configuration");
    if (ts_config_reload(server->config, fresh, argc, argv, stderr) != TS_OK) {
        ts_log_error("reload failed; the running configuration stays in force");
        free(fresh);
        return;
    }
    /* Before the workers hear of the reload, so that they pick up both. */
    ts_reload_certs(fresh);
    ts_server_reload(server, fresh);
    ts_log_info("configuration reloaded (log level %s)", ts_log_level_name(fresh->log_level));
}

/* Wait for signals until every worker has exited. */
static int ts_signal_loop(ts_server_t *server, const sigset_t *set, int argc, char **argv)
{
    int draining = 0;

    while (!ts_server_done(server)) {
        struct timespec tick = {0, 100 * 1000 * 1000};
        int sig = sigtimedwait(set, NULL, &tick);

        if (sig < 0)
            continue; /* timeout or EINTR: check the workers again */
        if (sig == SIGHUP) {
            ts_reload(server, argc, argv);
        } else if (sig == SIGTERM || sig == SIGINT) {
            if (draining) {
                ts_log_warn("second %s: exiting now", sig == SIGTERM ? "SIGTERM" : "SIGINT");
                return 1;
            }
            draining = 1;
            ts_log_info("%s: draining (at most %u s)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                        ts_server_config(server)->drain_timeout);
            ts_server_drain(server);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    ts_config_t *cfg = ts_calloc(1, sizeof(*cfg));
    ts_server_t server;
    sigset_t set;
    int rc;

    rc = ts_config_load(cfg, argc, argv, stdout, stderr);
    if (rc != TS_CONFIG_RUN) {
        if (rc == TS_CONFIG_EXIT)
            ts_config_free(cfg);
        free(cfg);
        return rc == TS_CONFIG_EXIT ? 0 : 2;
    }
    ts_log_set_level(cfg->log_level);

    /* Block the signals main waits for before any thread exists, so every
     * worker inherits the mask. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    ts_raise_nofile(cfg);

    ts_listener_spec_t specs[6];
    size_t nspecs;
    ts_tls_ctx_t *tls_ctx;

    if (ts_load_certs(cfg) != TS_OK) {
        ts_config_free(cfg);
        free(cfg);
        return 1;
    }
    tls_ctx = ts_certs_tls();
    nspecs = ts_listener_specs(cfg, tls_ctx, specs);
    rc = ts_server_init(&server, cfg, specs, nspecs);
    ts_tls_ctx_free(tls_ctx); /* each listener holds its own reference */
    if (rc != TS_OK) {
        ts_turn_dtls_shutdown();
        ts_certs_free();
        ts_config_free(cfg);
        free(cfg);
        return 1;
    }
    ts_log_info("tsunagi %s (%s) started: %d workers, web root %s", TS_VERSION, TS_GIT_COMMIT,
                cfg->threads, cfg->web_root);
    if (cfg->static_auth_secret_generated)
        ts_log_info("no --static-auth-secret given: generated one for this run");
    if (ts_server_start(&server) != TS_OK) {
        ts_server_join(&server);
        ts_server_free(&server);
        ts_config_free(cfg);
        free(cfg);
        return 1;
    }

    if (ts_signal_loop(&server, &set, argc, argv) != 0)
        _exit(0);

    ts_server_join(&server);
    ts_log_info("stopped");
    cfg = server.config;
    ts_server_free(&server);
    ts_turn_shutdown();
    ts_turn_dtls_shutdown();
    ts_certs_free();
    ts_config_free(cfg);
    free(cfg);
    return 0;
}
