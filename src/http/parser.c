/*
 * parser.c — the HTTP/1.1 request head parser and the chunked body decoder
 * (RFC 9112). The contract is in parser.h.
 *
 * The head is taken line by line: memchr finds the next LF, then one
 * table-driven loop validates the line and records its slices in req. Lines
 * validated by an earlier call are recorded again when the blank line
 * arrives, because the caller may have moved its buffer in between; a request
 * that arrives in one piece is therefore read once, plus a walk over its
 * header slices for the framing headers.
 *
 * Strictness is deliberate: this parser faces the open internet, and every
 * leniency is a place where it and a proxy in front of it could disagree about
 * where a request ends (request smuggling).
 */
#include "http/parser.h"

#include "core/common.h"

#include <string.h>

/* ------------------------------------------------------------------------ */
/* Character classes                                                          */
/* ------------------------------------------------------------------------ */

#define C_TCHAR  0x01 /* token character (RFC 9110 5.6.2) */
#define C_TARGET 0x02 /* request-target byte: 0x21-0x7e except '#' */
#define C_VALUE  0x04 /* field value byte: VCHAR, SP, HTAB, obs-text */
#define C_HOST   0x08 /* reg-name byte: unreserved, sub-delims, '%' */
#define C_HEX    0x10
#define C_QDTEXT 0x20 /* quoted-string text (RFC 9110 5.6.4) */
#define C_WS     0x40 /* SP, HTAB */

static const uint8_t cls[256] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x64, 0x2f, 0x06, 0x25, 0x2f, 0x2f, 0x2f, 0x2f, 0x2e, 0x2e, 0x2f, 0x2f, 0x2e, 0x2f, 0x2f, 0x26,
    0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x26, 0x2e, 0x26, 0x2e, 0x26, 0x26,
    0x26, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f,
    0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x26, 0x06, 0x26, 0x27, 0x2f,
    0x27, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f,
    0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x26, 0x27, 0x26, 0x2f, 0x00,
    0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
    0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
    0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
    0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
    0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
    0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
    0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
    0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
};

#define is(c, k) (cls[(uint8_t)(c)] & (k))

static int hexval(unsigned c)
{
    if (c - '0' < 10)
        return (int)(c - '0');
    c |= 0x20;
    return c - 'a' < 6 ? (int)(c - 'a' + 10) : -1;
}

static unsigned lower(char ch)
{
    unsigned c = (uint8_t)ch;
    return c - 'A' < 26 ? c + ('a' - 'A') : c;
}

/* Does a[0..n) equal b[0..n) ignoring ASCII case? */
static int ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower(a[i]) != lower(b[i]))
            return 0;
    return 1;
}

/*
 * Eight bytes at a time for the long runs (request-targets, header values):
 * the classic "has a byte less than n" and "has a zero byte" tricks, exact
 * for "is there any". A word that fails goes byte by byte through the table.
 */
#define ONES         0x0101010101010101ull
#define HIGHS        0x8080808080808080ull
#define any_lt(x, n) (((x)-ONES * (n)) & ~(x)&HIGHS)
#define any_eq(x, c) any_lt((x) ^ (ONES * (c)), 1)
#define any_ge7f(x)  (((x) | ((x) + ONES)) & HIGHS)

static uint64_t load8(const char *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

/* End of the run of field value bytes (VCHAR, SP, HTAB, obs-text) from p[i]. */
static size_t span_value(const char *p, size_t i, size_t n)
{
    while (i < n) {
        if (n - i >= 8) {
            uint64_t x = load8(p + i);
            if (!(any_lt(x, 0x20) | any_eq(x, 0x7f))) {
                i += 8;
                continue;
            }
        }
        if (!is(p[i], C_VALUE))
            break;
        i++;
    }
    return i;
}

/* End of the run of request-target bytes (0x21-0x7e but '#') from p[i]. */
static size_t span_target(const char *p, size_t i, size_t n)
{
    while (i < n) {
        if (n - i >= 8) {
            uint64_t x = load8(p + i);
            if (!(any_lt(x, 0x21) | any_ge7f(x) | any_eq(x, '#'))) {
                i += 8;
                continue;
            }
        }
        if (!is(p[i], C_TARGET))
            break;
        i++;
    }
    return i;
}

#define str_ieq(s, lit) ((s).len == sizeof(lit) - 1 && ieq((s).base, (lit), sizeof(lit) - 1))

static int fail(http_request_t *req, int rc, int status, const char *why)
{
    req->status = status;
    req->error = why;
    return rc;
}

#define bad(req, why) fail((req), TS_ERR_PROTO, 400, (why))

/* The reason for a byte that broke a line: a CR inside a line is named as such. */
static int bad_byte(http_request_t *req, char c, const char *why)
{
    return bad(req, c == '\r' ? "bare CR" : why);
}

/* ------------------------------------------------------------------------ */
/* Request line                                                               */
/* ------------------------------------------------------------------------ */

static int method_of(const char *m, size_t n)
{
    switch (n) {
    case 3:
        if (memcmp(m, "GET", 3) == 0)
            return HTTP_GET;
        if (memcmp(m, "PUT", 3) == 0)
            return HTTP_PUT;
        break;
    case 4:
        if (memcmp(m, "HEAD", 4) == 0)
            return HTTP_HEAD;
        if (memcmp(m, "POST", 4) == 0)
            return HTTP_POST;
        break;
    case 5:
        if (memcmp(m, "PATCH", 5) == 0)
            return HTTP_PATCH;
        if (memcmp(m, "TRACE", 5) == 0)
            return HTTP_TRACE;
        break;
    case 6:
        if (memcmp(m, "DELETE", 6) == 0)
            return HTTP_DELETE;
        break;
    case 7:
        if (memcmp(m, "OPTIONS", 7) == 0)
            return HTTP_OPTIONS;
        if (memcmp(m, "CONNECT", 7) == 0)
            return HTTP_CONNECT;
        break;
    }
    return HTTP_OTHER;
}

#define HOST_NEED_NAME 0x1 /* the host part may not be empty */
#define HOST_NEED_PORT 0x2 /* ":port" is required (CONNECT) */

/* uri-host [ ":" port ] (RFC 9110 7.2); IP-literals hold hex, ':' and '.' only. */
static int host_valid(const char *p, size_t n, unsigned need)
{
    size_t i = 0, port;

    if (n > 0 && p[0] == '[') {
        for (i = 1; i < n && p[i] != ']'; i++)
            if (!is(p[i], C_HEX) && p[i] != ':' && p[i] != '.')
                return 0;
        if (i == n || i == 1)
            return 0;
        i++;
    } else {
        while (i < n && is(p[i], C_HOST))
            i++;
        if (i == 0 && (need & HOST_NEED_NAME))
            return 0;
    }
    if (i == n)
        return !(need & HOST_NEED_PORT);
    if (p[i] != ':')
        return 0;
    port = ++i;
    while (i < n && (unsigned)(p[i] - '0') < 10)
        i++;
    return i == n && n - port <= 5 && (n > port || !(need & HOST_NEED_PORT));
}

/* The length of an "http://" or "https://" prefix, 0 when there is none. */
static size_t scheme_len(const char *t, size_t n)
{
    if (n >= 7 && ieq(t, "http://", 7))
        return 7;
    if (n >= 8 && ieq(t, "https://", 8))
        return 8;
    return 0;
}

/*
 * Sort out the request-target's form (RFC 9112 3.2) and set path and query.
 * In absolute-form the authority becomes req->host (RFC 9112 3.2.2 says it
 * overrides the Host header), and an empty path is the static "/".
 */
static int parse_target(http_request_t *req)
{
    const char *t = req->target.base, *path = t, *q;
    size_t n = req->target.len, plen = n, s, a;

    req->host = (http_str_t){NULL, 0};
    if (t[0] == '/') {
        if (req->method == HTTP_CONNECT)
            return bad(req, "CONNECT without authority-form");
    } else if (n == 1 && t[0] == '*') {
        if (req->method != HTTP_OPTIONS)
            return bad(req, "asterisk-form outside OPTIONS");
    } else if (req->method == HTTP_CONNECT) {
        if (!host_valid(t, n, HOST_NEED_NAME | HOST_NEED_PORT))
            return bad(req, "bad CONNECT authority");
    } else {
        s = scheme_len(t, n);
        if (s == 0)
            return bad(req, "bad request-target");
        for (a = s; a < n && t[a] != '/' && t[a] != '?'; a++)
            ;
        if (!host_valid(t + s, a - s, HOST_NEED_NAME))
            return bad(req, "bad authority in request-target");
        req->host = (http_str_t){t + s, a - s};
        path = t + a;
        plen = n - a;
    }
    q = plen ? memchr(path, '?', plen) : NULL;
    req->path = (http_str_t){path, q ? (size_t)(q - path) : plen};
    req->query = q ? (http_str_t){q + 1, plen - req->path.len - 1} : (http_str_t){path + plen, 0};
    if (req->path.len == 0)
        req->path = (http_str_t){"/", 1};
    return TS_OK;
}

/* "HTTP/1.x"; another well-formed major version is 505. */
static int parse_version(const char *v, size_t n, http_request_t *req)
{
    if (n == 8 && memcmp(v, "HTTP/1.", 7) == 0 && (unsigned)(v[7] - '0') < 10) {
        /* A higher minor version is answered as HTTP/1.1 (RFC 9110 2.5). */
        req->minor_version = v[7] == '0' ? 0 : 1;
        return TS_OK;
    }
    if (n == 8 && memcmp(v, "HTTP/", 5) == 0 && (unsigned)(v[5] - '0') < 10 && v[6] == '.' &&
        (unsigned)(v[7] - '0') < 10)
        return fail(req, TS_ERR_PROTO, 505, "unsupported HTTP version");
    for (size_t i = 0; i < n; i++)
        if (v[i] == '\r')
            return bad(req, "bare CR");
    return bad(req, "bad HTTP version");
}

/* method SP request-target SP HTTP-version; p[0..n) without the line end. */
static int parse_request_line(const char *p, size_t n, http_request_t *req)
{
    size_t i = 0, t;
    int rc;

    while (i < n && is(p[i], C_TCHAR))
        i++;
    if (i == 0 || i == n || p[i] != ' ')
        return bad_byte(req, p[i < n ? i : 0], "bad method");
    req->method_name = (http_str_t){p, i};
    req->method = method_of(p, i);
    t = ++i;
    i = span_target(p, i, n);
    if (i == t || i == n || p[i] != ' ')
        return bad_byte(req, p[i < n ? i : 0], "bad request-target");
    req->target = (http_str_t){p + t, i - t};
    rc = parse_version(p + i + 1, n - i - 1, req);
    if (rc != TS_OK)
        return rc;
    return parse_target(req);
}

/* ------------------------------------------------------------------------ */
/* Header lines                                                               */
/* ------------------------------------------------------------------------ */

/* field-name ":" OWS field-value OWS; p[0..n) without the line end. */
static int parse_header_line(const char *p, size_t n, http_header_t *h, http_request_t *req)
{
    size_t i = 0, vs, ve;

    while (i < n && is(p[i], C_TCHAR))
        i++;
    if (i == n || p[i] != ':' || i == 0) {
        if (i == 0 && is(p[0], C_WS))
            return bad(req, "obs-fold or whitespace before a header");
        if (i == 0 && p[0] == ':')
            return bad(req, "empty header name");
        if (i == n)
            return bad(req, "header without colon");
        if (is(p[i], C_WS))
            return bad(req, "whitespace before colon");
        return bad_byte(req, p[i], "bad header name");
    }
    h->name = (http_str_t){p, i};
    for (vs = i + 1; vs < n && is(p[vs], C_WS); vs++)
        ;
    ve = span_value(p, vs, n);
    if (ve < n)
        return bad_byte(req, p[ve], "bad byte in header value");
    while (ve > vs && is(p[ve - 1], C_WS))
        ve--;
    h->value = (http_str_t){p + vs, ve - vs};
    return TS_OK;
}

/* Line number idx of the head (0: the request line); p[0..n), n > 0. */
static int parse_line(const char *p, size_t n, size_t idx, http_request_t *req)
{
    if (idx == 0)
        return parse_request_line(p, n, req);
    if (idx > HTTP_MAX_HEADERS)
        return fail(req, TS_ERR_LIMIT, 431, "too many header fields");
    return parse_header_line(p, n, &req->headers[idx - 1], req);
}

/* Length of the line from pos to the LF at lf, without its CRLF or LF. */
static size_t line_len(const char *buf, size_t pos, const char *lf)
{
    size_t n = (size_t)(lf - (buf + pos));
    return n > 0 && lf[-1] == '\r' ? n - 1 : n;
}

/* Record again the lines in buf[0..end) that an earlier call validated. */
static int replay_lines(const char *buf, size_t end, http_request_t *req)
{
    size_t pos = 0, idx = 0, n;
    const char *lf;
    int rc;

    while (pos < end) {
        lf = memchr(buf + pos, '\n', end - pos);
        if (lf == NULL)
            return bad(req, "buffer changed under the parser");
        n = line_len(buf, pos, lf);
        if (n > 0) {
            rc = parse_line(buf + pos, n, idx++, req);
            if (rc != TS_OK)
                return rc;
        }
        pos = (size_t)(lf - buf) + 1;
    }
    return TS_OK;
}

/* ------------------------------------------------------------------------ */
/* Framing and connection headers                                             */
/* ------------------------------------------------------------------------ */

typedef struct {
    const http_str_t *host, *cl, *te;
    unsigned nte;
    unsigned te_last_chunked;  /* the last coding seen so far is chunked */
    unsigned te_chunked_early; /* chunked came before another coding */
    unsigned conn;   /* CONN_* */
    unsigned expect; /* 1: 100-continue, 2: something else */
    const char *dup; /* reason when a header that must be single is repeated */
} framing_t;

#define CONN_CLOSE      0x1
#define CONN_KEEP_ALIVE 0x2
#define CONN_UPGRADE    0x4

/* Follow the list of transfer codings (across repeated headers) to learn
 * whether chunked is applied anywhere but last (RFC 9112 6.3, item 4). */
static void scan_codings(http_str_t v, framing_t *f)
{
    size_t i = 0;

    while (i <= v.len) {
        size_t start, end;
        while (i < v.len && (v.base[i] == ' ' || v.base[i] == '\t' || v.base[i] == ','))
            i++;
        if (i >= v.len)
            break;
        start = i;
        while (i < v.len && v.base[i] != ',')
            i++;
        end = i;
        while (end > start && (v.base[end - 1] == ' ' || v.base[end - 1] == '\t'))
            end--;
        if (f->te_last_chunked)
            f->te_chunked_early = 1;
        f->te_last_chunked = end - start == 7 && ieq(v.base + start, "chunked", 7);
    }
}

static void scan_headers(const http_request_t *req, framing_t *f)
{
    for (size_t i = 0; i < req->nheaders && f->dup == NULL; i++) {
        const http_header_t *h = &req->headers[i];
        switch (h->name.len) {
        case 4:
            if (str_ieq(h->name, "host")) {
                f->dup = f->host ? "duplicate Host" : NULL;
                f->host = &h->value;
            }
            break;
        case 6:
            if (str_ieq(h->name, "expect"))
                f->expect |= str_ieq(h->value, "100-continue") ? 1 : 2;
            break;
        case 10:
            if (str_ieq(h->name, "connection")) {
                f->conn |= http_header_has_token(h->value, "close") ? CONN_CLOSE : 0;
                f->conn |= http_header_has_token(h->value, "keep-alive") ? CONN_KEEP_ALIVE : 0;
                f->conn |= http_header_has_token(h->value, "upgrade") ? CONN_UPGRADE : 0;
            }
            break;
        case 14:
            if (str_ieq(h->name, "content-length")) {
                f->dup = f->cl ? "duplicate Content-Length" : NULL;
                f->cl = &h->value;
            }
            break;
        case 17:
            if (str_ieq(h->name, "transfer-encoding")) {
                f->nte++;
                f->te = &h->value;
                scan_codings(h->value, f);
            }
            break;
        }
    }
}

/* 1*DIGIT, no list, no sign, no overflow; -1 otherwise. */
static int64_t parse_content_length(http_str_t v)
{
    int64_t n = 0;

    if (v.len == 0)
        return -1;
    for (size_t i = 0; i < v.len; i++) {
        unsigned d = (unsigned)(v.base[i] - '0');
        if (d > 9 || n > (INT64_MAX - d) / 10)
            return -1;
        n = n * 10 + d;
    }
    return n;
}

/*
 * Body framing (RFC 9112 6): the checks that keep a request from being read
 * differently here and in a proxy in front. The order fixes which error a
 * request with several faults gets: 400s, then 501, then 417, then 413.
 */
static int check_framing(http_request_t *req, size_t max_body)
{
    framing_t f = {0};
    int v11 = req->minor_version == 1;

    scan_headers(req, &f);
    if (f.dup)
        return bad(req, f.dup);
    req->content_length = -1;
    if (f.cl && (req->content_length = parse_content_length(*f.cl)) < 0)
        return bad(req, "bad Content-Length");
    if (f.te && !v11)
        return bad(req, "Transfer-Encoding in HTTP/1.0");
    if (f.te && f.cl)
        return bad(req, "Content-Length with Transfer-Encoding");
    if (f.te && f.te->len == 0 && f.nte == 1)
        return bad(req, "empty Transfer-Encoding");
    if (v11 && f.host == NULL)
        return bad(req, "missing Host");
    if (f.host && f.host->len > 0 && !host_valid(f.host->base, f.host->len, HOST_NEED_NAME))
        return bad(req, "bad Host");
    if (f.te_chunked_early)
        return bad(req, "chunked is not the final transfer coding");
    if (f.te && (f.nte > 1 || !str_ieq(*f.te, "chunked")))
        return fail(req, TS_ERR_PROTO, 501, "unsupported transfer coding");
    if (f.expect & 2)
        return fail(req, TS_ERR_PROTO, 417, "unsupported expectation");
    if (req->content_length > 0 && (uint64_t)req->content_length > max_body)
        return fail(req, TS_ERR_LIMIT, 413, "body too large");

    if (req->host.base == NULL) /* not absolute-form */
        req->host = f.host ? *f.host : (http_str_t){NULL, 0};
    req->flags = f.te ? HTTP_F_CHUNKED : 0;
    if (v11 ? !(f.conn & CONN_CLOSE) : (f.conn & (CONN_KEEP_ALIVE | CONN_CLOSE)) == CONN_KEEP_ALIVE)
        req->flags |= HTTP_F_KEEP_ALIVE;
    if (f.conn & CONN_UPGRADE)
        req->flags |= HTTP_F_UPGRADE;
    if ((f.expect & 1) && v11) /* RFC 9110 10.1.1: ignored in HTTP/1.0 */
        req->flags |= HTTP_F_EXPECT_CONTINUE;
    req->status = 0;
    req->error = NULL;
    return TS_OK;
}

/* ------------------------------------------------------------------------ */
/* The head                                                                   */
/* ------------------------------------------------------------------------ */

#define METHOD_PEEK 32 /* bytes of an unfinished request line looked at early */

/*
 * An unfinished request line can already be refused for its method, so a
 * TLS hello or another protocol sent to this port is turned away at once
 * rather than after 8 KiB or a timeout. It refuses only what the full line
 * check would refuse for the same reason whatever follows; a CR leaves the
 * matter open, since it may start the line end.
 */
static int check_method_prefix(const char *p, size_t n, http_request_t *req)
{
    size_t i = 0;

    n = TS_MIN(n, (size_t)METHOD_PEEK);
    while (i < n && is(p[i], C_TCHAR))
        i++;
    if (i == n || p[i] == '\r' || (p[i] == ' ' && i > 0))
        return TS_OK;
    return bad(req, "bad method");
}

static int finish_head(const char *buf, size_t start, size_t lines, size_t end, size_t max_body,
                       http_request_t *req)
{
    int rc;

    if (start > 0 && (rc = replay_lines(buf, start, req)) != TS_OK)
        return rc;
    req->nheaders = lines - 1;
    req->head_len = end;
    return check_framing(req, max_body);
}

/*
 * The head limit needs no check per line: LFs are looked for only in the
 * first HTTP_MAX_HEAD bytes, so a line that ends further is never found, and
 * a buffer longer than that without a blank line found is over the limit.
 */
int http_parse_request(http_parse_state_t *st, const char *buf, size_t len, size_t max_body,
                       http_request_t *req)
{
    size_t start = st->pos, pos = st->pos, lines = st->lines, end, n;
    size_t lim = TS_MIN(len, (size_t)HTTP_MAX_HEAD), scan = TS_MAX((size_t)st->scan, pos);
    unsigned empty = st->flags;
    const char *lf;
    int rc;

    while (scan < lim && (lf = memchr(buf + scan, '\n', lim - scan)) != NULL) {
        end = (size_t)(lf - buf) + 1;
        n = line_len(buf, pos, lf);
        if (n > 0) {
            rc = parse_line(buf + pos, n, lines++, req);
            if (rc != TS_OK)
                return rc;
        } else if (lines > 0) {
            st->pos = st->scan = (uint32_t)pos;
            st->lines = (uint16_t)lines;
            st->flags = (uint16_t)empty;
            return finish_head(buf, start, lines, end, max_body, req);
        } else if (++empty > HTTP_MAX_EMPTY_LINES) {
            return bad(req, "too many empty lines before the request");
        }
        pos = scan = end;
    }
    if (lines == 0 && lim > pos && (rc = check_method_prefix(buf + pos, lim - pos, req)) != TS_OK)
        return rc;
    if (len > HTTP_MAX_HEAD)
        return fail(req, TS_ERR_LIMIT, 431, "request head too large");
    st->pos = (uint32_t)pos;
    st->lines = (uint16_t)lines;
    st->flags = (uint16_t)empty;
    st->scan = (uint32_t)len;
    return TS_ERR_AGAIN;
}

const http_header_t *http_find_header(const http_request_t *req, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < req->nheaders; i++) {
        const http_header_t *h = &req->headers[i];
        if (h->name.len == n && ieq(h->name.base, name, n))
            return h;
    }
    return NULL;
}

int http_header_has_token(http_str_t value, const char *token)
{
    size_t tlen = strlen(token);
    const char *p, *end, *comma, *s, *e;

    if (value.len == 0)
        return 0;
    for (p = value.base, end = p + value.len; p <= end; p = comma + 1) {
        comma = memchr(p, ',', (size_t)(end - p));
        e = comma ? comma : end;
        for (s = p; s < e && is(*s, C_WS); s++)
            ;
        while (e > s && is(e[-1], C_WS))
            e--;
        if ((size_t)(e - s) == tlen && ieq(s, token, tlen))
            return 1;
        if (comma == NULL)
            break;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Chunked body                                                               */
/* ------------------------------------------------------------------------ */

/*
 * chunk      = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 * chunk-ext  = *( BWS ";" BWS ext-name [ BWS "=" BWS ( token / quoted-string ) ] )
 * last-chunk = 1*"0" [ chunk-ext ] CRLF, then trailer fields, then CRLF
 *
 * A byte-at-a-time state machine for everything but chunk data, which is
 * moved in bulk. Extensions are parsed to the grammar, not skipped to the
 * next LF, so an LF inside a quoted string cannot end the line here while a
 * proxy in front reads on.
 */
enum {
    CH_SIZE = 0,   /* hex digits */
    CH_SIZE_WS,    /* BWS after the size: ';' must follow */
    CH_EXT_NAME0,  /* after ';' */
    CH_EXT_NAME,   /* in ext-name */
    CH_EXT_EQ,     /* BWS after ext-name: '=' or ';' */
    CH_EXT_VAL0,   /* after '=' */
    CH_EXT_VAL,    /* in a token value */
    CH_EXT_QUOTED, /* in a quoted-string value */
    CH_EXT_QP,     /* after a backslash in a quoted string */
    CH_EXT_CLOSED, /* after the closing quote */
    CH_EXT_WS,     /* BWS after a value: ';' must follow */
    CH_SIZE_LF,    /* CR seen, LF must follow */
    CH_DATA,       /* chunk_left bytes of data to come */
    CH_DATA_CR,    /* the CRLF after data */
    CH_DATA_LF,
    CH_TR_START, /* at the start of a trailer line, or of the final empty line */
    CH_TR_NAME,
    CH_TR_VALUE,
    CH_TR_LF,     /* CR at the end of a trailer line */
    CH_TR_END_LF, /* CR of the final empty line */
    CH_DONE,
    CH_EOL = 0xfe, /* pseudo-state: the size line has ended */
    CH_BAD = 0xff, /* pseudo-state: malformed */
};

/* Where a size line goes after an element ends on byte c. */
static unsigned ext_after(unsigned c, unsigned ws_state)
{
    if (c == ';')
        return CH_EXT_NAME0;
    if (c == '\r')
        return CH_SIZE_LF;
    if (c == '\n')
        return CH_EOL;
    return is(c, C_WS) ? ws_state : CH_BAD;
}

static unsigned size_line_next(unsigned state, unsigned c, unsigned digits)
{
    switch (state) {
    case CH_SIZE:
        return digits == 0 ? CH_BAD : ext_after(c, CH_SIZE_WS);
    case CH_SIZE_WS:
    case CH_EXT_WS:
        return is(c, C_WS) ? state : c == ';' ? CH_EXT_NAME0 : CH_BAD;
    case CH_EXT_NAME0:
        return is(c, C_WS) ? state : is(c, C_TCHAR) ? CH_EXT_NAME : CH_BAD;
    case CH_EXT_NAME:
        return is(c, C_TCHAR) ? state : c == '=' ? CH_EXT_VAL0 : ext_after(c, CH_EXT_EQ);
    case CH_EXT_EQ:
        return is(c, C_WS) ? state : c == '=' ? CH_EXT_VAL0 : c == ';' ? CH_EXT_NAME0 : CH_BAD;
    case CH_EXT_VAL0:
        return is(c, C_WS)      ? state
               : c == '"'       ? CH_EXT_QUOTED
               : is(c, C_TCHAR) ? CH_EXT_VAL
                                : CH_BAD;
    case CH_EXT_VAL:
        return is(c, C_TCHAR) ? state : ext_after(c, CH_EXT_WS);
    case CH_EXT_QUOTED:
        return c == '"' ? CH_EXT_CLOSED : c == '\\' ? CH_EXT_QP : is(c, C_QDTEXT) ? state : CH_BAD;
    case CH_EXT_QP:
        return is(c, C_VALUE) ? CH_EXT_QUOTED : CH_BAD;
    case CH_EXT_CLOSED:
        return ext_after(c, CH_EXT_WS);
    case CH_SIZE_LF:
        return c == '\n' ? CH_EOL : CH_BAD;
    }
    return CH_BAD;
}

static unsigned trailer_next(unsigned state, unsigned c)
{
    switch (state) {
    case CH_TR_START:
        return c == '\r'        ? CH_TR_END_LF
               : c == '\n'      ? CH_DONE
               : is(c, C_TCHAR) ? CH_TR_NAME
                                : CH_BAD;
    case CH_TR_NAME:
        return is(c, C_TCHAR) ? state : c == ':' ? CH_TR_VALUE : CH_BAD;
    case CH_TR_VALUE:
        return is(c, C_VALUE) ? state : c == '\r' ? CH_TR_LF : c == '\n' ? CH_TR_START : CH_BAD;
    case CH_TR_LF:
        return c == '\n' ? CH_TR_START : CH_BAD;
    case CH_TR_END_LF:
        return c == '\n' ? CH_DONE : CH_BAD;
    }
    return CH_BAD;
}

static int size_line_end(http_chunked_t *c, size_t max_body)
{
    c->line_len = 0;
    c->digits = 0;
    if (c->chunk_left == 0) {
        c->state = CH_TR_START;
        return TS_ERR_AGAIN;
    }
    if (c->chunk_left > max_body - c->total)
        return TS_ERR_LIMIT;
    c->state = CH_DATA;
    return TS_ERR_AGAIN;
}

/* One byte outside chunk data: TS_ERR_AGAIN to go on, TS_OK at the end. */
static int chunk_byte(http_chunked_t *c, unsigned ch, size_t max_body)
{
    unsigned next;
    int h;

    if (c->state < CH_DATA) {
        if (++c->line_len > HTTP_MAX_CHUNK_LINE)
            return TS_ERR_PROTO;
        if (c->state == CH_SIZE && (h = hexval(ch)) >= 0) {
            if (c->digits == 15)
                return TS_ERR_PROTO;
            c->chunk_left = c->chunk_left << 4 | (uint64_t)h;
            c->digits++;
            return TS_ERR_AGAIN;
        }
        next = size_line_next(c->state, ch, c->digits);
        if (next == CH_EOL)
            return size_line_end(c, max_body);
    } else if (c->state == CH_DATA_CR || c->state == CH_DATA_LF) {
        next = c->state == CH_DATA_CR ? (ch == '\r' ? CH_DATA_LF : CH_BAD)
                                      : (ch == '\n' ? CH_SIZE : CH_BAD);
    } else {
        if (++c->line_len > HTTP_MAX_TRAILER)
            return TS_ERR_PROTO;
        next = trailer_next(c->state, ch);
    }
    if (next == CH_BAD)
        return TS_ERR_PROTO;
    c->state = (uint8_t)next;
    return next == CH_DONE ? TS_OK : TS_ERR_AGAIN;
}

int http_chunked_decode(http_chunked_t *c, const char *src, size_t len, char *dst, size_t max_body,
                        size_t *consumed, size_t *produced)
{
    size_t i = 0, o = 0, n;
    int rc = c->state == CH_DONE ? TS_OK : TS_ERR_AGAIN;

    while (i < len && rc == TS_ERR_AGAIN) {
        if (c->state == CH_DATA) {
            n = (size_t)TS_MIN(c->chunk_left, (uint64_t)(len - i));
            if (dst + o != src + i)
                memmove(dst + o, src + i, n);
            i += n;
            o += n;
            c->total += n;
            c->chunk_left -= n;
            if (c->chunk_left == 0)
                c->state = CH_DATA_CR;
        } else {
            rc = chunk_byte(c, (uint8_t)src[i++], max_body);
        }
    }
    *consumed = i;
    *produced = o;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* URL decoding                                                               */
/* ------------------------------------------------------------------------ */

long http_url_decode(const char *s, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    int hi, lo;
    char c;

    for (size_t i = 0; i < len; i++) {
        c = s[i];
        if (c == '%') {
            if (len - i < 3 || (hi = hexval((uint8_t)s[i + 1])) < 0 ||
                (lo = hexval((uint8_t)s[i + 2])) < 0)
                return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (c == '\0' || o == cap)
            return -1;
        out[o++] = c;
    }
    return (long)o;
}
