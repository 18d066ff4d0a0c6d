/*
 * addr.c — parsers for the address forms of the configuration: endpoints,
 * address ranges and Web origins. See addr.h.
 */
#include "core/addr.h"

#include "core/common.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define ORIGIN_HOST_MAX 253 /* the longest DNS name */

static int fail(const char **why, const char *text)
{
    if (why != NULL)
        *why = text;
    return TS_ERR_CONFIG;
}

int ts_decimal_parse(const char *s, unsigned long long *out)
{
    unsigned long long v = 0;

    if (*s == '\0')
        return TS_ERR_CONFIG;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return TS_ERR_CONFIG;
        if (v < 100000000000ULL)
            v = v * 10 + (unsigned)(*s - '0');
    }
    *out = v;
    return TS_OK;
}

int ts_ip_parse(const char *s, size_t n, int *family, uint8_t out[16])
{
    char buf[INET6_ADDRSTRLEN];

    if (n == 0 || n >= sizeof(buf))
        return TS_ERR_CONFIG;
    memcpy(buf, s, n);
    buf[n] = '\0';
    memset(out, 0, 16);
    if (inet_pton(AF_INET, buf, out) == 1) {
        *family = AF_INET;
        return TS_OK;
    }
    if (inet_pton(AF_INET6, buf, out) == 1) {
        *family = AF_INET6;
        return TS_OK;
    }
    return TS_ERR_CONFIG;
}

/* ---- endpoints ------------------------------------------------------------ */

/* NULL on success, else why s is not an endpoint. */
static const char *endpoint_parse(const char *s, ts_endpoint_t *ep)
{
    const char *host, *port, *colon;
    size_t hlen;
    int family = AF_INET;
    uint8_t addr[16] = {0};
    unsigned long long p;

    memset(ep, 0, sizeof(*ep));
    if (strlen(s) >= sizeof(ep->text))
        return "too long";
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL)
            return "missing ']'";
        if (end[1] != ':')
            return "missing :PORT after ']'";
        host = s + 1;
        hlen = (size_t)(end - host);
        port = end + 2;
        family = AF_INET6;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            host = s;
            hlen = 0;
            port = s;
        } else {
            if (memchr(s, ':', (size_t)(colon - s)) != NULL)
                return "an IPv6 address needs brackets: [ADDR]:PORT";
            host = s;
            hlen = (size_t)(colon - s);
            port = colon + 1;
        }
    }
    if (*port == '\0')
        return "missing port";
    if (ts_decimal_parse(port, &p) != TS_OK)
        return "bad port";
    if (p > 65535)
        return "port above 65535";
    if (hlen > 0 || family == AF_INET6) {
        int got;
        if (ts_ip_parse(host, hlen, &got, addr) != TS_OK || got != family)
            return "bad address";
    }
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ep->sa;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)p);
        memcpy(&sin->sin_addr, addr, 4);
        ep->len = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ep->sa;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)p);
        memcpy(&sin6->sin6_addr, addr, 16);
        ep->len = sizeof(*sin6);
    }
    ep->set = 1;
    memcpy(ep->text, s, strlen(s) + 1);
    return NULL;
}

int ts_endpoint_parse(const char *s, ts_endpoint_t *ep, const char **why)
{
    const char *reason = endpoint_parse(s, ep);
    return reason == NULL ? TS_OK : fail(why, reason);
}

/* ---- address ranges ------------------------------------------------------- */

static const char *range_prefix(ts_ip_range_t *r, const char *s)
{
    unsigned long long prefix;
    unsigned bytes = r->family == AF_INET ? 4 : 16;

    if (ts_decimal_parse(s, &prefix) != TS_OK || prefix > bytes * 8)
        return r->family == AF_INET ? "the prefix must be 0..32" : "the prefix must be 0..128";
    for (unsigned i = 0; i < bytes; i++) {
        unsigned keep = prefix >= (i + 1) * 8 ? 8 : prefix > i * 8 ? (unsigned)prefix - i * 8 : 0;
        uint8_t mask = keep != 0 ? (uint8_t)(0xffu << (8 - keep)) : 0;
        r->lo[i] &= mask;
        r->hi[i] = (uint8_t)(r->lo[i] | (uint8_t)~mask);
    }
    return NULL;
}

/* NULL on success, else why s is not a range. */
static const char *range_parse(const char *s, ts_ip_range_t *r)
{
    const char *dash = strchr(s, '-'), *slash = strchr(s, '/');
    const char *why = NULL;
    int family2;

    memset(r, 0, sizeof(*r));
    if (dash != NULL && slash != NULL)
        return "give IP1-IP2 or IP/prefix, not both";
    if (slash != NULL) {
        if (ts_ip_parse(s, (size_t)(slash - s), &r->family, r->lo) != TS_OK)
            return "bad address";
        why = range_prefix(r, slash + 1);
    } else if (dash != NULL) {
        if (ts_ip_parse(s, (size_t)(dash - s), &r->family, r->lo) != TS_OK ||
            ts_ip_parse(dash + 1, strlen(dash + 1), &family2, r->hi) != TS_OK)
            return "bad address";
        if (family2 != r->family)
            why = "both ends must be IPv4 or both IPv6";
        else if (memcmp(r->lo, r->hi, r->family == AF_INET ? 4 : 16) > 0)
            why = "the first address is above the second";
    } else {
        if (ts_ip_parse(s, strlen(s), &r->family, r->lo) != TS_OK)
            return "bad address";
        memcpy(r->hi, r->lo, 16);
    }
    if (why != NULL) {
        memset(r, 0, sizeof(*r));
        return why;
    }
    r->text = ts_strdup(s);
    return NULL;
}

int ts_ip_range_parse(const char *s, ts_ip_range_t *r, const char **why)
{
    const char *reason = range_parse(s, r);
    return reason == NULL ? TS_OK : fail(why, reason);
}

/* ---- origins -------------------------------------------------------------- */

/*
 * An IPv6 address as the URL Standard serializes it, which is what a browser
 * puts in Origin: lowercase hex pieces, the first longest run of two or more
 * zero pieces as "::", and never the dotted IPv4 tail inet_ntop() writes for
 * ::ffff:1.2.3.4. out holds at least 40 bytes.
 */
static void ipv6_serialize(const uint8_t a[16], char *out)
{
    unsigned piece[8];
    int best = -1, bestlen = 1, run = 0;
    char *p = out;

    for (int i = 0; i < 8; i++) {
        piece[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
        run = piece[i] == 0 ? run + 1 : 0;
        if (run > bestlen) {
            best = i - run + 1;
            bestlen = run;
        }
    }
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            p += sprintf(p, "::");
            i += bestlen - 1;
            continue;
        }
        p += sprintf(p, "%s%x", i == 0 || p[-1] == ':' ? "" : ":", piece[i]);
    }
    *p = '\0';
}

/* The host of an origin: a bracketed IPv6 address, serialized, or a name. */
static const char *origin_host(const char *host, size_t hlen, char *out, size_t outlen)
{
    uint8_t addr[16];
    int family;

    if (hlen == 0)
        return "no host";
    if (host[0] == '[') {
        if (host[hlen - 1] != ']' || ts_ip_parse(host + 1, hlen - 2, &family, addr) != TS_OK ||
            family != AF_INET6)
            return "bad IPv6 address";
        out[0] = '[';
        ipv6_serialize(addr, out + 1);
        strcat(out, "]");
        return NULL;
    }
    if (hlen > ORIGIN_HOST_MAX || hlen >= outlen)
        return "host name longer than 253 bytes";
    for (size_t i = 0; i < hlen; i++) {
        unsigned char c = (unsigned char)host[i];
        if (!isalnum(c) && c != '-' && c != '.' && c != '_')
            return "bad host name";
        out[i] = (char)tolower(c);
    }
    out[hlen] = '\0';
    return NULL;
}

/* NULL on success, else why s is not an origin. */
static const char *origin_parse(const char *s, char *out, size_t outlen)
{
    const char *sep = strstr(s, "://"), *host, *colon, *bracket;
    size_t slen = sep != NULL ? (size_t)(sep - s) : 0, hlen;
    char hostbuf[ORIGIN_HOST_MAX + 1];
    unsigned long long port = 0;
    const char *why;
    int https;

    if (sep == NULL)
        return "scheme://host[:port]";
    if (slen == 4 && strncasecmp(s, "http", 4) == 0)
        https = 0;
    else if (slen == 5 && strncasecmp(s, "https", 5) == 0)
        https = 1;
    else
        return "the scheme must be http or https";
    host = sep + 3;
    if (strchr(host, '/') != NULL)
        return "no path, not even a trailing '/'";
    /* The port's colon is the last one, unless it is inside an IPv6 address. */
    colon = strrchr(host, ':');
    bracket = strrchr(host, ']');
    if (colon != NULL && bracket != NULL && colon < bracket)
        colon = NULL;
    hlen = colon != NULL ? (size_t)(colon - host) : strlen(host);
    why = origin_host(host, hlen, hostbuf, sizeof(hostbuf));
    if (why != NULL)
        return why;
    if (colon != NULL) {
        if (ts_decimal_parse(colon + 1, &port) != TS_OK || port == 0)
            return "bad port";
        if (port > 65535)
            return "port above 65535";
    }
    /* A browser leaves the scheme's default port out of Origin: so do we. */
    if (port == (https ? 443 : 80))
        port = 0;
    if (port != 0)
        snprintf(out, outlen, "%s://%s:%llu", https ? "https" : "http", hostbuf, port);
    else
        snprintf(out, outlen, "%s://%s", https ? "https" : "http", hostbuf);
    return NULL;
}

int ts_origin_parse(const char *s, char **origin, const char **why)
{
    char buf[sizeof("https://") + ORIGIN_HOST_MAX + sizeof(":65535")];
    const char *reason;

    *origin = NULL;
    if (strcasecmp(s, "null") == 0) {
        *origin = ts_strdup("null");
        return TS_OK;
    }
    reason = origin_parse(s, buf, sizeof(buf));
    if (reason != NULL)
        return fail(why, reason);
    *origin = ts_strdup(buf);
    return TS_OK;
}
