/*
 * main.c — start-up: configuration, listeners, workers, and the signal loop.
 *
 * The main thread owns signals: every worker blocks them, and main waits in
 * sigtimedwait(). SIGTERM / SIGINT drain (stop accepting, let in-flight work
 * finish for up to --drain-timeout seconds, exit 0); a second one exits at
 * once. SIGHUP re-reads the configuration file and applies what can change
 * at run time.
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

static void ts_reload(ts_server_t *server, int argc, char **argv)
{
    ts_config_t *fresh = ts_calloc(1, sizeof(*fresh));

    ts_log_info("SIGHUP: reloading configuration");
    if (ts_config_reload(server->config, fresh, argc, argv, stderr) != TS_OK) {
        ts_log_error("reload failed; the running configuration stays in force");
        free(fresh);
        return;
    }
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
    size_t nspecs = 0;
    ts_tls_ctx_t *tls_ctx = NULL;

    if (cfg->http.set)
        specs[nspecs++] = (ts_listener_spec_t){
            .name = "http", .endpoint = &cfg->http, .type = SOCK_STREAM, .ops = &ts_http_ops};
    if (cfg->https.set) {
        char err[512];
        tls_ctx = ts_tls_ctx_new(cfg->cert, cfg->pkey, err, sizeof(err));
        if (tls_ctx == NULL) {
            fprintf(stderr, "tsunagi: %s\n", err);
            ts_config_free(cfg);
            free(cfg);
            return 1;
        }
        specs[nspecs++] = (ts_listener_spec_t){.name = "https",
                                               .endpoint = &cfg->https,
                                               .type = SOCK_STREAM,
                                               .ops = &ts_http_ops,
                                               .tls_ctx = tls_ctx};
    }
    if (cfg->turn.set) {
        /* STUN/TURN on one port over UDP and TCP (the UDP group goes first,
         * so a port 0 picks the same port for both). */
        specs[nspecs++] = (ts_listener_spec_t){
            .name = "turn", .endpoint = &cfg->turn, .type = SOCK_DGRAM, .dgram = ts_turn_on_udp};
        specs[nspecs++] = (ts_listener_spec_t){
            .name = "turn", .endpoint = &cfg->turn, .type = SOCK_STREAM, .ops = &ts_turn_stream_ops};
    }
    if (cfg->turns.set) {
        char err[512];
        if (tls_ctx == NULL) {
            tls_ctx = ts_tls_ctx_new(cfg->cert, cfg->pkey, err, sizeof(err));
            if (tls_ctx == NULL) {
                fprintf(stderr, "tsunagi: %s\n", err);
                ts_config_free(cfg);
                free(cfg);
                return 1;
            }
        }
        if (ts_turn_dtls_init(cfg->cert, cfg->pkey, err, sizeof(err)) != TS_OK) {
            fprintf(stderr, "tsunagi: %s\n", err);
            ts_tls_ctx_free(tls_ctx);
            ts_config_free(cfg);
            free(cfg);
            return 1;
        }
        /* DTLS on the UDP side of the same port, which goes first (as --turn's). */
        specs[nspecs++] = (ts_listener_spec_t){.name = "turns",
                                               .endpoint = &cfg->turns,
                                               .type = SOCK_DGRAM,
                                               .dgram = ts_turn_dtls_on_udp};
        specs[nspecs++] = (ts_listener_spec_t){.name = "turns",
                                               .endpoint = &cfg->turns,
                                               .type = SOCK_STREAM,
                                               .ops = &ts_turn_stream_ops,
                                               .tls_ctx = tls_ctx};
    }
    if (ts_server_init(&server, cfg, specs, nspecs) != TS_OK) {
        ts_turn_dtls_shutdown();
        ts_tls_ctx_free(tls_ctx);
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
    ts_tls_ctx_free(tls_ctx);
    ts_config_free(cfg);
    free(cfg);
    return 0;
}
