#include "turn/ice.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/common.h"
#include "core/net.h"
#include "turn/auth.h"

/* A host name or address as a URL host: [v6] in brackets, and only
 * characters that cannot break the JSON or the URL. */
static int ts_ice_host(const char *host, size_t len, char *out, size_t cap)
{
    int v6 = memchr(host, ':', len) != NULL;

    if (len == 0 || len + 3 > cap)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = host[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '-' || ch == ':' || ch == '[' || ch == ']'))
            return 0;
    }
    if (v6 && host[0] != '[')
        snprintf(out, cap, "[%.*s]", (int)len, host);
    else
        snprintf(out, cap, "%.*s", (int)len, host);
    return 1;
}

static unsigned ts_ice_port(const struct sockaddr_storage *ss)
{
    if (ss == NULL)
        return 0;
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

size_t ts_ice_servers_json(const ts_server_t *s, const char *host, size_t host_len,
                           const char *name, char *out, size_t cap)
{
    const ts_config_t *cfg = ts_server_config(s);
    const struct sockaddr_storage *turn = ts_server_bound(s, "turn", SOCK_DGRAM);
    const struct sockaddr_storage *turns = ts_server_bound(s, "turns", SOCK_STREAM);
    char h[300], user[300], pass[64];
    unsigned port = ts_ice_port(turn);
    int n;

    if (turn == NULL) {
        n = snprintf(out, cap, "[]");
        return n > 0 && (size_t)n < cap ? (size_t)n : 0;
    }
    if (cfg->external_ip != NULL) {
        ts_ice_host(cfg->external_ip, strlen(cfg->external_ip), h, sizeof(h));
    } else if (host == NULL || !ts_ice_host(host, host_len, h, sizeof(h))) {
        char a[TS_ADDRSTRLEN];
        ts_peer_t p;
        ts_peer_from_sockaddr(&p, (const struct sockaddr *)turn);
        ts_peer_str(&p, a, sizeof(a));
        *strrchr(a, ':') = '\0'; /* drop the port */
        snprintf(h, sizeof(h), "%s", a);
    }
    turn_rest_credential(cfg->static_auth_secret, name, (int64_t)time(NULL), cfg->credential_ttl,
                         user, sizeof(user), pass, sizeof(pass));
    n = snprintf(out, cap,
                 "[{\"urls\":[\"stun:%s:%u\"]},"
                 "{\"urls\":[\"turn:%s:%u?transport=udp\",\"turn:%s:%u?transport=tcp\"],"
                 "\"username\":\"%s\",\"credential\":\"%s\"}",
                 h, port, h, port, h, port, user, pass);
    if (n > 0 && (size_t)n < cap && turns != NULL)
        n += snprintf(out + n, cap - (size_t)n,
                      ",{\"urls\":[\"turns:%s:%u?transport=tcp\"],"
                      "\"username\":\"%s\",\"credential\":\"%s\"}",
                      h, ts_ice_port(turns), user, pass);
    if (n > 0 && (size_t)n < cap)
        n += snprintf(out + n, cap - (size_t)n, "]");
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}
