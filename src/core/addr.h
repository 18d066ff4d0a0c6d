/*
 * addr.h — the address forms a person writes in the configuration: a
 * listening endpoint (ADDR:PORT), an address range (peer filters) and a Web
 * origin (allowed WebSocket Origins).
 *
 * Pure parsers: text in, a struct out, no I/O and no name resolution, so
 * they are unit-tested and fuzzed on strings. Each returns TS_OK or
 * TS_ERR_CONFIG; when why is not NULL, a failure sets *why to a short
 * static phrase for the error line ("port above 65535").
 */
#ifndef TS_ADDR_H
#define TS_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A listening address such as 0.0.0.0:8080 or [::]:8080. */
typedef struct {
    int set; /* 0: the listener is off */
    struct sockaddr_storage sa;
    socklen_t len;
    char text[64]; /* as given, for messages */
} ts_endpoint_t;

/* An inclusive address range; a single IP has lo == hi. */
typedef struct {
    int family;     /* AF_INET or AF_INET6 */
    uint8_t lo[16]; /* network byte order; 4 bytes used for AF_INET */
    uint8_t hi[16];
    char *text; /* owned, as given */
} ts_ip_range_t;

/*
 * Parse "ADDR:PORT", "[v6]:PORT" or ":PORT"/"PORT" (all interfaces). ADDR is
 * numeric; port 0 lets the kernel pick. ep->set is 0 on failure.
 */
int ts_endpoint_parse(const char *s, ts_endpoint_t *ep, const char **why);

/*
 * Parse "IP", "IP1-IP2" or "IP/prefix" into r (r->text is then allocated:
 * the caller frees it). r->text is NULL on failure.
 */
int ts_ip_range_parse(const char *s, ts_ip_range_t *r, const char **why);

/*
 * Parse the n bytes at s as one numeric IPv4 or IPv6 address (no brackets,
 * no port) into out (16 bytes, zero-padded) and *family. TS_OK or
 * TS_ERR_CONFIG.
 */
int ts_ip_parse(const char *s, size_t n, int *family, uint8_t out[16]);

/*
 * Parse "scheme://host[:port]" (scheme http or https; host a name, an IPv4
 * address or a bracketed IPv6 address; no path, not even a trailing "/") or
 * the literal "null". *origin gets an allocated copy (the caller frees it)
 * serialized as a browser sends it in the Origin header (RFC 6454 §6.1):
 * lowercase, the scheme's default port left out, an IPv6 address in its
 * canonical text form. The Origin header can then be compared to it as text.
 */
int ts_origin_parse(const char *s, char **origin, const char **why);

/*
 * Decimal digits only: no sign, no space, not empty. The value saturates far
 * above any limit, so an overlong number reads as "too large", not as a
 * wrapped small one. TS_OK or TS_ERR_CONFIG.
 */
int ts_decimal_parse(const char *s, unsigned long long *out);

#endif
