/*
 * config_check.c — the configuration's computed defaults (threads, realm,
 * web root, the generated REST secret) and the checks that relate several
 * options, run after defaults, the file and the command line are applied.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/addr.h"
#include "core/common.h"
#include "core/config.h"
#include "core/config_internal.h"
#include "core/log.h"

#define CFG_SECRET_LEN 32 /* bytes of a generated --static-auth-secret */

/* Option row by name. */
static const ts_config_option_t *option_row(const char *name)
{
    return ts_config_options(NULL) + ts_config__option_index(name);
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
        ts_config__error(st, "--web-root %s: %s", path, strerror(errno));
        return;
    }
    if (!is_dir(real)) {
        ts_config__error(st, "--web-root %s: %s", path, strerror(ENOTDIR));
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
            cand = ts_config__sprintf("%s%s", exe, rel[i]);
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
    ts_config__error(st, "no web folder found (looked next to the binary and in ./web); "
                         "give --web-root DIR");
}

static void check_readable_file(cfg_parse_t *st, const char *opt, const char *path)
{
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        ts_config__error(st, "--%s %s: %s", opt, path, strerror(errno));
        return;
    }
    if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode))
        ts_config__error(st, "--%s %s: %s", opt, path, strerror(EISDIR));
    close(fd);
}

static void secret_default(cfg_parse_t *st, const ts_config_t *old)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[CFG_SECRET_LEN];
    ts_config_t *cfg = st->cfg;

    if (cfg->static_auth_secret != NULL || st->bad[ts_config__option_index("static-auth-secret")])
        return;
    /* Credentials handed out before a reload must stay valid after it. */
    if (old != NULL && old->static_auth_secret_generated && old->static_auth_secret != NULL) {
        cfg->static_auth_secret = ts_strdup(old->static_auth_secret);
        cfg->static_auth_secret_generated = 1;
        return;
    }
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        ts_config__error(st, "could not generate --static-auth-secret (OpenSSL RAND_bytes failed)");
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

void ts_config__defaults(cfg_parse_t *st, const ts_config_t *old)
{
    ts_config_t *cfg = st->cfg;
    char host[256];

    if (cfg->threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->threads = n < 1 ? 1 : n > 256 ? 256 : (int)n;
    }
    if (cfg->realm == NULL && !st->bad[ts_config__option_index("realm")]) {
        if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
            snprintf(host, sizeof(host), "tsunagi");
        host[sizeof(host) - 1] = '\0';
        if (strlen(host) > 127)
            host[127] = '\0';
        cfg->realm = ts_strdup(host);
    }
    if (cfg->web_root != NULL)
        web_root_set(st, cfg->web_root);
    else if (!st->bad[ts_config__option_index("web-root")])
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
        ep[i] = CFIELD(st->cfg, option_row(names[i]), ts_endpoint_t);
    for (size_t i = 0; i < TS_ARRAY_SIZE(names); i++) {
        for (size_t j = i + 1; j < TS_ARRAY_SIZE(names); j++) {
            const ts_endpoint_t *a = ep[i], *b = ep[j];
            if (!a->set || !b->set || a->sa.ss_family != b->sa.ss_family)
                continue;
            if (endpoint_port(a) == 0 || endpoint_port(a) != endpoint_port(b))
                continue;
            if (endpoint_wildcard(a) || endpoint_wildcard(b) || memcmp(&a->sa, &b->sa, a->len) == 0)
                ts_config__error(st, "--%s and --%s both use port %d", names[i], names[j],
                                 endpoint_port(a));
        }
    }
}

void ts_config__checks(cfg_parse_t *st)
{
    ts_config_t *cfg = st->cfg;
    int cert_bad = st->bad[ts_config__option_index("cert")],
        pkey_bad = st->bad[ts_config__option_index("pkey")];
    static const char *const tls[] = {"https", "turns"};

    if (cfg->cert != NULL)
        check_readable_file(st, "cert", cfg->cert);
    if (cfg->pkey != NULL)
        check_readable_file(st, "pkey", cfg->pkey);
    for (size_t i = 0; i < TS_ARRAY_SIZE(tls); i++) {
        const ts_endpoint_t *ep = CFIELD(cfg, option_row(tls[i]), ts_endpoint_t);
        if (ep->set && ((cfg->cert == NULL && !cert_bad) || (cfg->pkey == NULL && !pkey_bad)))
            ts_config__error(st, "--%s needs --cert and --pkey", tls[i]);
    }
    if (!st->bad[ts_config__option_index("min-port")] &&
        !st->bad[ts_config__option_index("max-port")] && cfg->min_port > cfg->max_port)
        ts_config__error(st, "--min-port %u is above --max-port %u", cfg->min_port, cfg->max_port);
    check_listener_ports(st);
}
