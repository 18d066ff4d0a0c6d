/*
 * test_http_parser.c — the HTTP/1.1 request parser and chunked decoder on
 * byte arrays: every limit at and one past its edge, every refusal with its
 * status, and the same answer for every way the bytes can be split.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "http/parser.h"

#define MAX_BODY (1024 * 1024)
#define S(lit)   lit, sizeof(lit) - 1

static http_request_t req;

/* Parse a whole buffer in one call. */
static int parse(const char *s, size_t len, size_t max_body)
{
    http_parse_state_t st = {0};
    memset(&req, 0xa5, sizeof(req)); /* no field may keep a stale value */
    return http_parse_request(&st, s, len, max_body, &req);
}

#define PARSE(lit) parse(lit, sizeof(lit) - 1, MAX_BODY)

static void assert_str(http_str_t s, const char *want)
{
    size_t n = strlen(want);
    if (s.len != n || (n > 0 && memcmp(s.base, want, n) != 0))
        fail_msg("got \"%.*s\" (%zu), want \"%s\"", (int)s.len, s.base ? s.base : "", s.len, want);
}

/* The request must be refused with rc and status, and say why. */
static void expect_refused(const char *s, size_t len, size_t max_body, int rc, int status)
{
    int got = parse(s, len, max_body);
    if (got != rc || req.status != status)
        fail_msg("\"%.*s\": rc %d status %d, want rc %d status %d", (int)len, s, got, req.status,
                 rc, status);
    assert_non_null(req.error);
    assert_true(strlen(req.error) > 0);
}

#define REFUSED(lit, rc, status) expect_refused(lit, sizeof(lit) - 1, MAX_BODY, rc, status)
#define BAD(lit)                 REFUSED(lit, TS_ERR_PROTO, 400)

/* ------------------------------------------------------------------------ */
/* Split equivalence helpers                                                  */
/* ------------------------------------------------------------------------ */

/*
 * Feed data in growing prefixes: first `first` bytes, then `step` more each
 * call, each time in a fresh heap copy of exactly the prefix, as a caller
 * that grows its buffer would. ASan then catches any read past the prefix
 * and any slice kept from an earlier call. *bufp is the last copy.
 */
static int parse_pieces(const char *data, size_t len, size_t max_body, size_t first, size_t step,
                        http_request_t *out, char **bufp)
{
    http_parse_state_t st = {0};
    size_t have = 0;
    char *buf = NULL;
    int rc = TS_ERR_AGAIN;

    while (have < len) {
        have = TS_MIN(len, have == 0 ? first : have + step);
        free(buf);
        buf = malloc(have);
        assert_non_null(buf);
        memcpy(buf, data, have);
        rc = http_parse_request(&st, buf, have, max_body, out);
        if (rc != TS_ERR_AGAIN)
            break;
    }
    *bufp = buf;
    return rc;
}

/* A slice as an offset into its buffer; static strings ("/") by address. */
static uintptr_t slice_at(http_str_t s, const char *buf, size_t len)
{
    uintptr_t p = (uintptr_t)s.base, b = (uintptr_t)buf;
    return p >= b && p <= b + len ? p - b : p;
}

static void assert_slice_same(http_str_t a, const char *abuf, http_str_t b, const char *bbuf,
                              size_t len)
{
    assert_int_equal(a.len, b.len);
    if (a.len > 0)
        assert_int_equal(slice_at(a, abuf, len), slice_at(b, bbuf, len));
}

static void assert_same_result(int rc1, const http_request_t *a, const char *abuf, int rc2,
                               const http_request_t *b, const char *bbuf, size_t len)
{
    assert_int_equal(rc1, rc2);
    if (rc1 == TS_ERR_PROTO || rc1 == TS_ERR_LIMIT) {
        assert_int_equal(a->status, b->status);
        assert_string_equal(a->error, b->error);
        return;
    }
    if (rc1 != TS_OK)
        return;
    assert_int_equal(a->method, b->method);
    assert_int_equal(a->minor_version, b->minor_version);
    assert_int_equal(a->nheaders, b->nheaders);
    assert_int_equal(a->content_length, b->content_length);
    assert_int_equal(a->flags, b->flags);
    assert_int_equal(a->head_len, b->head_len);
    assert_slice_same(a->method_name, abuf, b->method_name, bbuf, len);
    assert_slice_same(a->target, abuf, b->target, bbuf, len);
    assert_slice_same(a->path, abuf, b->path, bbuf, len);
    assert_slice_same(a->query, abuf, b->query, bbuf, len);
    assert_slice_same(a->host, abuf, b->host, bbuf, len);
    for (size_t i = 0; i < a->nheaders; i++) {
        assert_slice_same(a->headers[i].name, abuf, b->headers[i].name, bbuf, len);
        assert_slice_same(a->headers[i].value, abuf, b->headers[i].value, bbuf, len);
    }
}

/* Every two-piece split, byte by byte, and 3-byte steps all agree with one call. */
static void check_splits(const char *data, size_t len, int want_rc)
{
    static http_request_t whole, part;
    char *wbuf, *pbuf;
    int rc = parse_pieces(data, len, MAX_BODY, len, len, &whole, &wbuf);

    if (rc != want_rc)
        fail_msg("\"%.*s\": rc %d, want %d (%s)", (int)len, data, rc, want_rc,
                 rc == TS_OK ? "ok" : whole.error);
    for (size_t k = 1; k <= len + 2; k++) {
        /* k <= len: split at k; then byte by byte; then steps of 3 */
        size_t first = k <= len ? k : k == len + 1 ? 1 : 3;
        size_t step = k <= len ? len : first;
        int rc2 = parse_pieces(data, len, MAX_BODY, first, step, &part, &pbuf);
        assert_same_result(rc, &whole, wbuf, rc2, &part, pbuf, len);
        free(pbuf);
    }
    free(wbuf);
}

#define SPLITS(lit, rc) check_splits(lit, sizeof(lit) - 1, rc)

/* ------------------------------------------------------------------------ */
/* Valid requests                                                             */
/* ------------------------------------------------------------------------ */

static void test_simple_get(void **state)
{
    static const char r[] = "GET /healthz?full=1&x HTTP/1.1\r\nHost: example.com\r\n"
                            "User-Agent: wrk\r\nAccept: */*\r\n\r\nNEXT";
    assert_int_equal(parse(r, sizeof(r) - 1, MAX_BODY), TS_OK);
    assert_int_equal(req.method, HTTP_GET);
    assert_str(req.method_name, "GET");
    assert_str(req.target, "/healthz?full=1&x");
    assert_str(req.path, "/healthz");
    assert_str(req.query, "full=1&x");
    assert_int_equal(req.minor_version, 1);
    assert_int_equal(req.nheaders, 3);
    assert_str(req.headers[0].name, "Host");
    assert_str(req.headers[0].value, "example.com");
    assert_str(req.headers[2].name, "Accept");
    assert_str(req.headers[2].value, "*/*");
    assert_str(req.host, "example.com");
    assert_int_equal(req.content_length, -1);
    assert_int_equal(req.flags, HTTP_F_KEEP_ALIVE);
    assert_int_equal(req.head_len, sizeof(r) - 1 - 4);
    assert_null(req.error);
    assert_int_equal(req.status, 0);
}

static void test_no_query(void **state)
{
    assert_int_equal(PARSE("GET /a/b HTTP/1.1\r\nHost: h\r\n\r\n"), TS_OK);
    assert_str(req.path, "/a/b");
    assert_int_equal(req.query.len, 0);
    assert_int_equal(PARSE("GET /a? HTTP/1.1\r\nHost: h\r\n\r\n"), TS_OK);
    assert_str(req.path, "/a");
    assert_int_equal(req.query.len, 0);
}

static void test_methods(void **state)
{
    static const struct {
        const char *req;
        int method;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_GET},
        {"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_HEAD},
        {"POST / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_POST},
        {"PUT / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_PUT},
        {"DELETE / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_DELETE},
        {"OPTIONS / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_OPTIONS},
        {"PATCH / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_PATCH},
        {"CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_CONNECT},
        {"TRACE / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_TRACE},
        {"get / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_OTHER}, /* methods are case-sensitive */
        {"BREW / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_OTHER},
        {"M-SEARCH / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_OTHER},
        {"GETS / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_OTHER},
    };
    for (size_t i = 0; i < TS_ARRAY_SIZE(cases); i++) {
        assert_int_equal(parse(cases[i].req, strlen(cases[i].req), MAX_BODY), TS_OK);
        assert_int_equal(req.method, cases[i].method);
        assert_ptr_equal(req.method_name.base, cases[i].req);
        assert_int_equal(req.method_name.len, strcspn(cases[i].req, " "));
    }
}

static void test_versions(void **state)
{
    assert_int_equal(PARSE("GET / HTTP/1.0\r\n\r\n"), TS_OK);
    assert_int_equal(req.minor_version, 0);
    assert_int_equal(req.flags, 0); /* 1.0 is not kept alive by default */
    assert_int_equal(req.host.len, 0);
    REFUSED("GET / HTTP/2.0\r\nHost: h\r\n\r\n", TS_ERR_PROTO, 505);
    REFUSED("GET / HTTP/0.9\r\nHost: h\r\n\r\n", TS_ERR_PROTO, 505);
    /* A higher minor version is HTTP/1.1 (RFC 9110 2.5). */
    assert_int_equal(PARSE("GET / HTTP/1.2\r\nHost: h\r\n\r\n"), TS_OK);
    assert_int_equal(req.minor_version, 1);
    REFUSED("GET / HTTP/3.0\r\n", TS_ERR_PROTO, 505); /* refused before the head ends */
    BAD("GET / HTTP/1.10\r\nHost: h\r\n\r\n");
    BAD("GET / HTTP/1\r\nHost: h\r\n\r\n");
    BAD("GET / http/1.1\r\nHost: h\r\n\r\n");
    BAD("GET / HTTP/1.1 \r\nHost: h\r\n\r\n");
    BAD("GET / HTTP/a.b\r\nHost: h\r\n\r\n");
    BAD("GET /\r\nHost: h\r\n\r\n");
    BAD("GET / \r\nHost: h\r\n\r\n");
}

static void test_target_forms(void **state)
{
    assert_int_equal(PARSE("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), TS_OK);
    assert_str(req.path, "*");
    assert_int_equal(req.query.len, 0);

    assert_int_equal(PARSE("GET http://example.com:8080/a/b?x=1 HTTP/1.1\r\nHost: other\r\n\r\n"),
                     TS_OK);
    assert_str(req.target, "http://example.com:8080/a/b?x=1");
    assert_str(req.path, "/a/b");
    assert_str(req.query, "x=1");
    assert_str(req.host, "example.com:8080"); /* RFC 9112 3.2.2: the target's authority wins */

    assert_int_equal(PARSE("GET HTTPS://[::1]:8443?q HTTP/1.1\r\nHost: h\r\n\r\n"), TS_OK);
    assert_str(req.path, "/");
    assert_str(req.query, "q");
    assert_str(req.host, "[::1]:8443");

    assert_int_equal(PARSE("GET http://h HTTP/1.1\r\nHost: h\r\n\r\n"), TS_OK);
    assert_str(req.path, "/");

    assert_int_equal(PARSE("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
                     TS_OK);
    assert_int_equal(req.method, HTTP_CONNECT);
    assert_str(req.path, "example.com:443");

    BAD("GET * HTTP/1.1\r\nHost: h\r\n\r\n");
    BAD("OPTIONS ** HTTP/1.1\r\nHost: h\r\n\r\n");
    BAD("CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n");
    BAD("CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n");
    BAD("CONNECT example.com: HTTP/1.1\r\nHost: h\r\n\r\n");
    BAD("CONNECT http://example.com:80/ HTTP/1.1\r\nHost: h\r\n\r\n");
    BAD("GET example.com:80 HTTP/1.1\r\nHost: h\r\n\r\n");
    BAD("GET foo HTTP/1.1\r\nHost: h\r\n\r\n");
    BAD("GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n");
    BAD("GET http://user@h/ HTTP/1.1\r\nHost: h\r\n\r\n");
    BAD("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n");
    BAD("GET http://:80/x HTTP/1.1\r\nHost: h\r\n\r\n");
    BAD("GET http://h:123456/ HTTP/1.1\r\nHost: h\r\n\r\n");
    BAD("GET http://[]/ HTTP/1.1\r\nHost: h\r\n\r\n");
}

static void test_target_bytes(void **state)
{
    assert_int_equal(PARSE("GET /%7e~!$&'()*+,;=:@[]{}|^`\\\"<> HTTP/1.1\r\nHost: h\r\n\r\n"),
                     TS_OK);
    BAD("GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n");
    BAD("GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n");
    BAD("GET /\x80 HTTP/1.1\r\nHost: h\r\n\r\n"); /* non-ASCII must be percent-encoded */
    BAD("GET /\xff HTTP/1.1\r\nHost: h\r\n\r\n");
    BAD("GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n");
    BAD("GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n");
    BAD("GET  / HTTP/1.1\r\nHost: h\r\n\r\n");
    BAD("GET /  HTTP/1.1\r\nHost: h\r\n\r\n");
}

static void test_bad_request_line(void **state)
{
    BAD("G(T / HTTP/1.1\r\nHost: h\r\n\r\n");
    BAD(" GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    BAD("GET\r\nHost: h\r\n\r\n");
    BAD("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n");
    BAD("GET / HTTP/1.1\rHost: h\r\n\r\n");
    assert_string_equal(req.error, "bare CR");
    BAD("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"); /* a TLS hello, refused at once */
    assert_string_equal(req.error, "bad method");
    BAD("\x00GET / HTTP/1.1\r\n");
}

static void test_line_ends(void **state)
{
    static const char lf[] = "GET / HTTP/1.1\nHost: h\nX: y \n\n";
    assert_int_equal(parse(lf, sizeof(lf) - 1, MAX_BODY), TS_OK);
    assert_int_equal(req.head_len, sizeof(lf) - 1);
    assert_str(req.headers[1].value, "y");
    assert_int_equal(PARSE("GET / HTTP/1.1\r\nHost: h\n\r\n"), TS_OK);
    assert_int_equal(req.head_len, 26);
    BAD("GET / HTTP/1.1\r\nHost: h\r\r\n\r\n");
    assert_string_equal(req.error, "bare CR");
    BAD("GET / HTTP/1.1\r\nHost: h\r\n\r\r\n");
    BAD("GET / HTTP/1.1\r\nHost: h\r\n\rX\r\n\r\n");
}

static void test_leading_empty_lines(void **state)
{
    assert_int_equal(PARSE("\r\n\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"), TS_OK);
    assert_str(req.path, "/");
    assert_int_equal(req.head_len,
                     7 + 16 + 9 + 2); /* the empty lines count, so the caller skips them */
    BAD("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_string_equal(req.error, "too many empty lines before the request");
}

static void test_headers(void **state)
{
    static const char r[] = "GET / HTTP/1.1\r\nHost:h\r\nX-Empty:\r\nX-Blank: \t \r\n"
                            "X-Ows: \t a  b \t\r\nX-Obs: caf\xc3\xa9\x80\xff\r\n"
                            "x-tchar!#$%&'*+-.^_`|~09: v:w\r\n\r\n";
    assert_int_equal(parse(r, sizeof(r) - 1, MAX_BODY), TS_OK);
    assert_int_equal(req.nheaders, 6);
    assert_str(req.headers[0].value, "h");
    assert_str(req.headers[1].name, "X-Empty");
    assert_int_equal(req.headers[1].value.len, 0);
    assert_int_equal(req.headers[2].value.len, 0);
    assert_str(req.headers[3].value, "a  b");
    assert_str(req.headers[4].value, "caf\xc3\xa9\x80\xff");
    assert_str(req.headers[5].name, "x-tchar!#$%&'*+-.^_`|~09");
    assert_str(req.headers[5].value, "v:w");
}

static void test_bad_headers(void **state)
{
    BAD("GET / HTTP/1.1\r\nHost : h\r\n\r\n");
    assert_string_equal(req.error, "whitespace before colon");
    BAD("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n");
    BAD("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n  folded\r\n\r\n");
    assert_string_equal(req.error, "obs-fold or whitespace before a header");
    BAD("GET / HTTP/1.1\r\n Host: h\r\n\r\n");
    BAD("GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n");
    assert_string_equal(req.error, "empty header name");
    BAD("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n");
    BAD("GET / HTTP/1.1\r\nHost: h\r\nX(y): v\r\n\r\n");
    BAD("GET / HTTP/1.1\r\nHost: h\r\nX: a\x00"
        "b\r\n\r\n");
    BAD("GET / HTTP/1.1\r\nHost: h\r\nX: a\x01"
        "b\r\n\r\n");
    BAD("GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f"
        "b\r\n\r\n");
    BAD("GET / HTTP/1.1\r\nHost: h\r\nX: a\x1b"
        "b\r\n\r\n");
    BAD("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n");
    assert_string_equal(req.error, "bare CR");
    BAD("GET / HTTP/1.1\r\nHost: h\r\nX\x80: v\r\n\r\n");
}

/* Bytes are checked eight at a time in long runs: a bad byte anywhere is still found. */
static void test_bad_byte_every_position(void **state)
{
    static const unsigned char bad_value[] = {0x00, 0x01, 0x0b, 0x1f, 0x7f, '\r'};
    static const unsigned char good_value[] = {'\t', ' ', 0x21, 0x7e, 0x80, 0xff};
    static const unsigned char bad_target[] = {0x00, '\t', 0x7f, 0x80, 0xff, '#'};
    static const unsigned char good_target[] = {0x21, 0x7e, '%', '"'};
    char r[128];
    size_t n, at;

    for (size_t k = 0; k < 24; k++) {
        n = (size_t)sprintf(r, "GET / HTTP/1.1\r\nHost: h\r\nX: v%sz\r\n\r\n",
                            "aaaaaaaaaaaaaaaaaaaaaaaa");
        at = 29 + k; /* "GET / HTTP/1.1\r\nHost: h\r\nX: v" is 29 bytes */
        for (size_t b = 0; b < sizeof(bad_value); b++) {
            r[at] = (char)bad_value[b];
            expect_refused(r, n, MAX_BODY, TS_ERR_PROTO, 400);
        }
        for (size_t b = 0; b < sizeof(good_value); b++) {
            r[at] = (char)good_value[b];
            assert_int_equal(parse(r, n, MAX_BODY), TS_OK);
            assert_int_equal(req.headers[1].value.len, 26);
        }

        n = (size_t)sprintf(r, "GET /%s HTTP/1.1\r\nHost: h\r\n\r\n", "aaaaaaaaaaaaaaaaaaaaaaaa");
        at = 5 + k;
        for (size_t b = 0; b < sizeof(bad_target); b++) {
            r[at] = (char)bad_target[b];
            expect_refused(r, n, MAX_BODY, TS_ERR_PROTO, 400);
        }
        for (size_t b = 0; b < sizeof(good_target); b++) {
            r[at] = (char)good_target[b];
            assert_int_equal(parse(r, n, MAX_BODY), TS_OK);
            assert_int_equal(req.target.len, 25);
        }
    }
}

/* A bad line is refused when it ends, before the head is complete. */
static void test_early_refusal(void **state)
{
    assert_int_equal(PARSE("GET / HTTP/1.1\r\nHost: h\r\n"), TS_ERR_AGAIN);
    assert_int_equal(PARSE("GET / HTTP/1.1\r\nHost: h\r\nX: ok\r\nBad Header: x"), TS_ERR_AGAIN);
    REFUSED("GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n", TS_ERR_PROTO, 400);
    REFUSED("GET / HTTP/1.1\r\nHost: h\r\n folded\r\n", TS_ERR_PROTO, 400);
    REFUSED("GET  / HTTP/1.1\r\n", TS_ERR_PROTO, 400);
    REFUSED("GET / HTTP/1.1\r\nX: \x00\n", TS_ERR_PROTO, 400);
    REFUSED("G@T", TS_ERR_PROTO, 400); /* a bad method needs no line end */
    assert_int_equal(PARSE("GET"), TS_ERR_AGAIN);
    assert_int_equal(PARSE("GET /\x80"), TS_ERR_AGAIN); /* the target waits for its line end */
    assert_int_equal(PARSE("\r"), TS_ERR_AGAIN);
    assert_int_equal(PARSE(""), TS_ERR_AGAIN);
}

/* ------------------------------------------------------------------------ */
/* Limits                                                                     */
/* ------------------------------------------------------------------------ */

static char big[3 * HTTP_MAX_HEAD];

/* A complete head of exactly total bytes: one padding header fills it. */
static size_t make_head(size_t total)
{
    static const char pre[] = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
    size_t pad = total - (sizeof(pre) - 1) - 4;
    memcpy(big, pre, sizeof(pre) - 1);
    memset(big + sizeof(pre) - 1, 'a', pad);
    memcpy(big + sizeof(pre) - 1 + pad, "\r\n\r\n", 4);
    return total;
}

static void test_head_limit(void **state)
{
    size_t n = make_head(HTTP_MAX_HEAD);
    assert_int_equal(parse(big, n, MAX_BODY), TS_OK);
    assert_int_equal(req.head_len, HTTP_MAX_HEAD);
    assert_int_equal(req.headers[1].value.len, HTTP_MAX_HEAD - 32);
    memcpy(big + n, "BODYBODY", 8); /* bytes after the head do not count */
    assert_int_equal(parse(big, n + 8, MAX_BODY), TS_OK);
    assert_int_equal(req.head_len, HTTP_MAX_HEAD);

    n = make_head(HTTP_MAX_HEAD + 1);
    expect_refused(big, n, MAX_BODY, TS_ERR_LIMIT, 431);

    /* the same edge when the blank line is a bare LF */
    n = make_head(HTTP_MAX_HEAD);
    memcpy(big + n - 4, "a\r\n\n", 4);
    assert_int_equal(parse(big, n, MAX_BODY), TS_OK);
    assert_int_equal(req.head_len, HTTP_MAX_HEAD);
    n = make_head(HTTP_MAX_HEAD + 1);
    memcpy(big + n - 4, "a\r\n\n", 4);
    expect_refused(big, n, MAX_BODY, TS_ERR_LIMIT, 431);
}

/* An unfinished head is refused as soon as it passes the limit. */
static void test_head_limit_incomplete(void **state)
{
    http_parse_state_t st = {0};
    size_t n = make_head(HTTP_MAX_HEAD + 2);

    /* all lines complete but no blank line yet */
    assert_int_equal(parse(big, HTTP_MAX_HEAD, MAX_BODY), TS_ERR_AGAIN);
    expect_refused(big, HTTP_MAX_HEAD + 1, MAX_BODY, TS_ERR_LIMIT, 431);
    expect_refused(big, n, MAX_BODY, TS_ERR_LIMIT, 431);

    /* one long request line, fed in two calls */
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', sizeof(big) - 5);
    assert_int_equal(http_parse_request(&st, big, 100, MAX_BODY, &req), TS_ERR_AGAIN);
    assert_int_equal(http_parse_request(&st, big, HTTP_MAX_HEAD, MAX_BODY, &req), TS_ERR_AGAIN);
    assert_int_equal(http_parse_request(&st, big, HTTP_MAX_HEAD + 1, MAX_BODY, &req), TS_ERR_LIMIT);
    assert_int_equal(req.status, 431);
    expect_refused(big, sizeof(big), MAX_BODY, TS_ERR_LIMIT, 431);
}

/* The request line plus n headers ("Host" and n-1 others). */
static size_t make_headers(size_t n, int blank)
{
    size_t len = 0;
    len += (size_t)sprintf(big + len, "GET / HTTP/1.1\r\nHost: h\r\n");
    for (size_t i = 1; i < n; i++)
        len += (size_t)sprintf(big + len, "X%zu: %zu\r\n", i, i);
    if (blank)
        len += (size_t)sprintf(big + len, "\r\n");
    return len;
}

static void test_header_count_limit(void **state)
{
    size_t n = make_headers(HTTP_MAX_HEADERS, 1);
    assert_int_equal(parse(big, n, MAX_BODY), TS_OK);
    assert_int_equal(req.nheaders, HTTP_MAX_HEADERS);
    assert_str(req.headers[HTTP_MAX_HEADERS - 1].name, "X99");
    assert_str(req.headers[HTTP_MAX_HEADERS - 1].value, "99");

    n = make_headers(HTTP_MAX_HEADERS + 1, 1);
    expect_refused(big, n, MAX_BODY, TS_ERR_LIMIT, 431);
    n = make_headers(HTTP_MAX_HEADERS + 1, 0); /* refused before the blank line */
    expect_refused(big, n, MAX_BODY, TS_ERR_LIMIT, 431);
    n = make_headers(HTTP_MAX_HEADERS, 0);
    assert_int_equal(parse(big, n, MAX_BODY), TS_ERR_AGAIN);
}

static void test_body_limit(void **state)
{
    static const char at[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n";
    static const char over[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1001\r\n\r\n";
    assert_int_equal(parse(at, sizeof(at) - 1, 1000), TS_OK);
    assert_int_equal(req.content_length, 1000);
    expect_refused(over, sizeof(over) - 1, 1000, TS_ERR_LIMIT, 413);
    assert_string_equal(req.error, "body too large");
    assert_int_equal(parse(over, sizeof(over) - 1, 1001), TS_OK);
    assert_int_equal(parse(S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"), 0), TS_OK);
    assert_int_equal(req.content_length, 0);
}

/* ------------------------------------------------------------------------ */
/* Framing                                                                    */
/* ------------------------------------------------------------------------ */

static void test_content_length(void **state)
{
    assert_int_equal(PARSE("POST / HTTP/1.1\r\nHost: h\r\ncontent-LENGTH:  00042 \r\n\r\n"), TS_OK);
    assert_int_equal(req.content_length, 42);
    assert_int_equal(req.flags & HTTP_F_CHUNKED, 0);
    assert_int_equal(parse(S("POST / HTTP/1.1\r\nHost: h\r\n"
                             "Content-Length: 9223372036854775807\r\n\r\n"),
                           SIZE_MAX),
                     TS_OK);
    assert_int_equal(req.content_length, INT64_MAX);

    BAD("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
    assert_string_equal(req.error, "duplicate Content-Length");
    BAD("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n");
    assert_string_equal(req.error, "bad Content-Length");
    BAD("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n");
    BAD("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n");
    BAD("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5a\r\n\r\n");
    BAD("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\n");
    BAD("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 5\r\n\r\n");
    BAD("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n");
    BAD("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775808\r\n\r\n");
    BAD("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n");
}

static void test_transfer_encoding(void **state)
{
    assert_int_equal(PARSE("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"),
                     TS_OK);
    assert_int_equal(req.flags, HTTP_F_CHUNKED | HTTP_F_KEEP_ALIVE);
    assert_int_equal(req.content_length, -1);
    assert_int_equal(PARSE("POST / HTTP/1.1\r\nHost: h\r\ntransfer-encoding: \tChUnKeD \r\n\r\n"),
                     TS_OK);
    assert_true(req.flags & HTTP_F_CHUNKED);

    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", TS_ERR_PROTO, 501);
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", TS_ERR_PROTO,
            501);
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            TS_ERR_PROTO, 400);
    /* chunked not last: the length cannot be known (RFC 9112 6.3 item 4) */
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            TS_ERR_PROTO, 400);
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
            "Transfer-Encoding: gzip\r\n\r\n",
            TS_ERR_PROTO, 400);
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", TS_ERR_PROTO, 501);
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", TS_ERR_PROTO,
            501);
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,chunked\r\n\r\n", TS_ERR_PROTO, 501);
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
            "Transfer-Encoding: chunked\r\n\r\n",
            TS_ERR_PROTO, 400);
    BAD("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n");
    BAD("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_string_equal(req.error, "Content-Length with Transfer-Encoding");
    BAD("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n");
    BAD("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n");
    BAD("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_string_equal(req.error, "Transfer-Encoding in HTTP/1.0");
    BAD("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n");
}

static void test_host(void **state)
{
    BAD("GET / HTTP/1.1\r\n\r\n");
    assert_string_equal(req.error, "missing Host");
    BAD("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n");
    assert_string_equal(req.error, "duplicate Host");
    BAD("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n");
    BAD("GET / HTTP/1.1\r\nHost: a b\r\n\r\n");
    BAD("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n");
    BAD("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n");
    BAD("GET / HTTP/1.1\r\nHost: a:b\r\n\r\n");
    BAD("GET / HTTP/1.1\r\nHost: :80\r\n\r\n");
    BAD("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n");
    assert_int_equal(PARSE("GET / HTTP/1.1\r\nHost:\r\n\r\n"), TS_OK); /* RFC 9112 3.2 */
    assert_int_equal(req.host.len, 0);
    assert_int_equal(PARSE("GET / HTTP/1.1\r\nHOST: [::1]:8080\r\n\r\n"), TS_OK);
    assert_str(req.host, "[::1]:8080");
    assert_int_equal(PARSE("GET / HTTP/1.1\r\nHost: my_host.example-1.com:65535\r\n\r\n"), TS_OK);
    assert_str(req.host, "my_host.example-1.com:65535");
    assert_int_equal(PARSE("GET / HTTP/1.0\r\n\r\n"), TS_OK);
    assert_int_equal(req.host.len, 0);
}

static void test_connection(void **state)
{
    static const struct {
        const char *req;
        unsigned flags;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_F_KEEP_ALIVE},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, CLOSE\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive\r\nConnection: close\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n", HTTP_F_KEEP_ALIVE},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n\r\n",
         HTTP_F_KEEP_ALIVE | HTTP_F_UPGRADE},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive ,\t upgrade \r\n\r\n",
         HTTP_F_KEEP_ALIVE | HTTP_F_UPGRADE},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade, close\r\n\r\n", HTTP_F_UPGRADE},
        {"GET / HTTP/1.0\r\n\r\n", 0},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", HTTP_F_KEEP_ALIVE},
        {"GET / HTTP/1.0\r\nConnection: KEEP-ALIVE\r\n\r\n", HTTP_F_KEEP_ALIVE},
        {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", 0},
        {"GET / HTTP/1.0\r\nConnection: keepalive\r\n\r\n", 0},
        {"GET / HTTP/1.0\r\nX-Connection: keep-alive\r\n\r\n", 0},
    };
    for (size_t i = 0; i < TS_ARRAY_SIZE(cases); i++) {
        if (parse(cases[i].req, strlen(cases[i].req), MAX_BODY) != TS_OK)
            fail_msg("case %zu refused: %s", i, req.error);
        if (req.flags != cases[i].flags)
            fail_msg("case %zu: flags %#x, want %#x", i, req.flags, cases[i].flags);
    }
}

static void test_expect(void **state)
{
    assert_int_equal(PARSE("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
                           "Expect: 100-Continue\r\n\r\n"),
                     TS_OK);
    assert_int_equal(req.flags, HTTP_F_KEEP_ALIVE | HTTP_F_EXPECT_CONTINUE);
    assert_int_equal(PARSE("PUT / HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"),
                     TS_OK);
    assert_int_equal(req.flags, 0); /* RFC 9110 10.1.1: ignored in HTTP/1.0 */
    REFUSED("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", TS_ERR_PROTO, 417);
    REFUSED("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue, x\r\n\r\n", TS_ERR_PROTO, 417);
    REFUSED("PUT / HTTP/1.1\r\nHost: h\r\nExpect:\r\n\r\n", TS_ERR_PROTO, 417);
}

/* ------------------------------------------------------------------------ */
/* Splits and pipelining                                                      */
/* ------------------------------------------------------------------------ */

static void test_split_equivalence(void **state)
{
    SPLITS("GET /healthz HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: wrk\r\n\r\n", TS_OK);
    SPLITS("\r\n\nPOST /api/x?y=1 HTTP/1.1\nHost: h\nContent-Length: 5\n\nhello", TS_OK);
    SPLITS("GET http://a.example/p?q HTTP/1.1\r\nHost: b\r\nConnection: upgrade\r\n"
           "Upgrade: websocket\r\nX-Obs: \xe3\x81\x82\r\n\r\nGET / HTTP/1.1\r\n",
           TS_OK);
    SPLITS("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue"
           "\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
           TS_OK);
    SPLITS("OPTIONS * HTTP/1.0\r\nConnection: keep-alive\r\nX:\r\n\r\n", TS_OK);
    SPLITS("GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n", TS_ERR_PROTO);
    SPLITS("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", TS_ERR_PROTO);
    SPLITS("GET / HTTP/1.1\rHost: h\r\n\r\n", TS_ERR_PROTO);
    SPLITS("GET\r\n", TS_ERR_PROTO);
    SPLITS("G@T / HTTP/1.1\r\n\r\n", TS_ERR_PROTO);
    SPLITS("GET / HTTP/2.0\r\nHost: h\r\n\r\n", TS_ERR_PROTO);
    SPLITS("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
           TS_ERR_PROTO);
    SPLITS("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", TS_ERR_PROTO);
    SPLITS("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999\r\n\r\n", TS_ERR_LIMIT);
    SPLITS("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n", TS_ERR_PROTO);
    SPLITS("GET / HTTP/1.1\r\nHost: h\r\n", TS_ERR_AGAIN);
}

/* Long inputs: around the head limit and the header count limit. */
static void test_split_equivalence_limits(void **state)
{
    static char copy[sizeof(big)];
    size_t n;

    n = make_head(HTTP_MAX_HEAD);
    memcpy(copy, big, n);
    check_splits(copy, n, TS_OK);
    n = make_head(HTTP_MAX_HEAD + 1);
    memcpy(copy, big, n);
    check_splits(copy, n, TS_ERR_LIMIT);
    n = make_headers(HTTP_MAX_HEADERS + 1, 1);
    memcpy(copy, big, n);
    check_splits(copy, n, TS_ERR_LIMIT);
}

static void test_pipelined(void **state)
{
    static const char r[] = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                            "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
                            "\r\n" /* a stray CRLF after a body, which RFC 9112 2.2 tolerates */
                            "GET /c HTTP/1.0\r\n\r\n"
                            "GET /d HTTP/1.1\r\n";
    const char *p = r, *end = r + sizeof(r) - 1;
    static const char *paths[] = {"/a", "/b", "/c"};

    for (size_t i = 0; i < TS_ARRAY_SIZE(paths); i++) {
        assert_int_equal(parse(p, (size_t)(end - p), MAX_BODY), TS_OK);
        assert_str(req.path, paths[i]);
        assert_true(req.head_len <= (size_t)(end - p));
        p += req.head_len + (req.content_length > 0 ? (size_t)req.content_length : 0);
    }
    assert_int_equal(parse(p, (size_t)(end - p), MAX_BODY), TS_ERR_AGAIN);
    assert_int_equal(p - r, sizeof(r) - 1 - 17);
}

/* Calling again after TS_OK, with the same state and buffer, gives the same request. */
static void test_repeat_after_ok(void **state)
{
    static const char r[] = "GET /x HTTP/1.1\r\nHost: h\r\nA: 1\r\n\r\n";
    http_parse_state_t st = {0};
    assert_int_equal(http_parse_request(&st, r, 20, MAX_BODY, &req), TS_ERR_AGAIN);
    assert_int_equal(http_parse_request(&st, r, sizeof(r) - 1, MAX_BODY, &req), TS_OK);
    assert_int_equal(http_parse_request(&st, r, sizeof(r) - 1, MAX_BODY, &req), TS_OK);
    assert_int_equal(req.nheaders, 2);
    assert_str(req.headers[1].value, "1");
    assert_int_equal(req.head_len, sizeof(r) - 1);
}

/* ------------------------------------------------------------------------ */
/* Header helpers                                                             */
/* ------------------------------------------------------------------------ */

static void test_find_header(void **state)
{
    assert_int_equal(PARSE("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nX-AB: 3\r\n\r\n"),
                     TS_OK);
    const http_header_t *h = http_find_header(&req, "x-A");
    assert_ptr_equal(h, &req.headers[1]);
    assert_str(h->value, "1");
    assert_ptr_equal(http_find_header(&req, "X-AB"), &req.headers[3]);
    assert_ptr_equal(http_find_header(&req, "HOST"), &req.headers[0]);
    assert_null(http_find_header(&req, "X"));
    assert_null(http_find_header(&req, "X-ABC"));
    assert_null(http_find_header(&req, ""));
}

static http_str_t str(const char *s)
{
    return (http_str_t){s, strlen(s)};
}

static void test_has_token(void **state)
{
    assert_true(http_header_has_token(str("close"), "close"));
    assert_true(http_header_has_token(str("a, b ,\tC"), "c"));
    assert_true(http_header_has_token(str("a, b ,\tC"), "B"));
    assert_true(http_header_has_token(str(",,x,"), "x"));
    assert_true(http_header_has_token(str("Upgrade"), "upgrade"));
    assert_false(http_header_has_token(str("a,bc"), "b"));
    assert_false(http_header_has_token(str("keep-alive"), "keep"));
    assert_false(http_header_has_token(str("closed"), "close"));
    assert_false(http_header_has_token(str(""), "close"));
    assert_false(http_header_has_token((http_str_t){NULL, 0}, "close"));
    assert_false(http_header_has_token(str("a b"), "a"));
}

/* ------------------------------------------------------------------------ */
/* Chunked bodies                                                             */
/* ------------------------------------------------------------------------ */

typedef struct {
    int rc;
    size_t used; /* input bytes consumed in all */
    size_t len;  /* decoded bytes */
    char out[20000];
} decoded_t;

/*
 * Decode in place in a heap copy, giving the decoder `first` bytes, then
 * `step` more per call, as a connection reading into one buffer would.
 */
static void decode_pieces(const char *in, size_t len, size_t max_body, size_t first, size_t step,
                          decoded_t *d)
{
    http_chunked_t c = {0};
    char *buf = malloc(len ? len : 1);
    size_t in_off = 0, out_off = 0, cut = TS_MIN(first, len), consumed, produced;

    assert_non_null(buf);
    memcpy(buf, in, len);
    d->rc = TS_ERR_AGAIN;
    while (in_off < len) {
        d->rc = http_chunked_decode(&c, buf + in_off, cut - in_off, buf + out_off, max_body,
                                    &consumed, &produced);
        assert_true(consumed <= cut - in_off);
        assert_true(produced <= consumed);
        in_off += consumed;
        out_off += produced;
        if (d->rc != TS_ERR_AGAIN)
            break;
        assert_int_equal(in_off, cut); /* TS_ERR_AGAIN consumes everything */
        cut = TS_MIN(len, cut + step);
    }
    assert_int_equal(c.total, out_off);
    d->used = in_off;
    d->len = out_off;
    assert_true(out_off <= sizeof(d->out));
    memcpy(d->out, buf, out_off);
    free(buf);
}

static decoded_t dec, dec2;

static int decode(const char *in, size_t len, size_t max_body)
{
    decode_pieces(in, len, max_body, len, len, &dec);
    return dec.rc;
}

#define DECODE(lit) decode(lit, sizeof(lit) - 1, MAX_BODY)

/* Every split, byte by byte, and out-of-place decoding all agree with one call. */
static void check_chunked_splits(const char *in, size_t len, size_t max_body)
{
    http_chunked_t c = {0};
    static char out[20000];
    size_t consumed, produced;
    int rc;

    decode_pieces(in, len, max_body, len, len, &dec);
    for (size_t k = 1; k <= len + 1; k++) {
        decode_pieces(in, len, max_body, k <= len ? k : 1, k <= len ? len : 1, &dec2);
        assert_int_equal(dec2.rc, dec.rc);
        if (dec.rc == TS_OK || dec.rc == TS_ERR_AGAIN) {
            assert_int_equal(dec2.used, dec.used);
            assert_int_equal(dec2.len, dec.len);
            assert_memory_equal(dec2.out, dec.out, dec.len);
        }
    }
    rc = http_chunked_decode(&c, in, len, out, max_body, &consumed, &produced);
    assert_int_equal(rc, dec.rc);
    if (rc == TS_OK) {
        assert_int_equal(produced, dec.len);
        assert_memory_equal(out, dec.out, produced);
    }
}

#define CHUNKED_SPLITS(lit) check_chunked_splits(lit, sizeof(lit) - 1, MAX_BODY)

static void test_chunked_basic(void **state)
{
    static const char in[] = "5\r\nhello\r\nA\r\n, world!!!\r\n0\r\n\r\nGET / HTTP/1.1";
    assert_int_equal(decode(in, sizeof(in) - 1, MAX_BODY), TS_OK);
    assert_int_equal(dec.len, 15);
    assert_memory_equal(dec.out, "hello, world!!!", 15);
    assert_int_equal(dec.used, sizeof(in) - 1 - 14); /* the next request is left alone */

    assert_int_equal(DECODE("0\r\n\r\n"), TS_OK);
    assert_int_equal(dec.len, 0);
    assert_int_equal(dec.used, 5);
    assert_int_equal(DECODE("000\r\n\r\n"), TS_OK);
    assert_int_equal(DECODE("1f\r\n0123456789abcdef0123456789abcde\r\n0\r\n\r\n"), TS_OK);
    assert_int_equal(dec.len, 31);
    assert_int_equal(DECODE("5\nhello\r\n0\n\n"), TS_OK); /* bare LF ends a size line */
    assert_int_equal(dec.len, 5);
    assert_int_equal(DECODE("5\r\nhel"), TS_ERR_AGAIN);
    assert_int_equal(dec.len, 3);
    assert_int_equal(dec.used, 6);
    assert_int_equal(DECODE(""), TS_ERR_AGAIN);
}

static void test_chunked_extensions_trailers(void **state)
{
    assert_int_equal(DECODE("5;a=b;c=\"x y\\\"z\" ; d\t;e = f\r\nhello\r\n0;last\r\n\r\n"), TS_OK);
    assert_int_equal(dec.len, 5);
    assert_int_equal(DECODE("5 ;a\r\nhello\r\n0\r\nX-Sum: 1\r\nY:\r\nZ: a b\xff\n\r\n"), TS_OK);
    assert_int_equal(dec.used, 40);

    assert_int_equal(DECODE("5 \r\nhello\r\n0\r\n\r\n"), TS_ERR_PROTO);
    assert_int_equal(DECODE("5;\r\nhello\r\n0\r\n\r\n"), TS_ERR_PROTO);
    assert_int_equal(DECODE("5;a=\r\nhello\r\n0\r\n\r\n"), TS_ERR_PROTO);
    assert_int_equal(DECODE("5;a=\"x\nhello\r\n0\r\n\r\n"), TS_ERR_PROTO); /* LF inside quotes */
    assert_int_equal(DECODE("5;a=\"x\"y\r\nhello\r\n0\r\n\r\n"), TS_ERR_PROTO);
    assert_int_equal(DECODE("5;a b\r\nhello\r\n0\r\n\r\n"), TS_ERR_PROTO);
    assert_int_equal(DECODE("5;a=b \r\nhello\r\n0\r\n\r\n"), TS_ERR_PROTO);
    assert_int_equal(DECODE("5;a\x01\r\nhello\r\n0\r\n\r\n"), TS_ERR_PROTO);
    assert_int_equal(DECODE("0\r\nNo colon\r\n\r\n"), TS_ERR_PROTO);
    assert_int_equal(DECODE("0\r\n: v\r\n\r\n"), TS_ERR_PROTO);
    assert_int_equal(DECODE("0\r\n folded\r\n\r\n"), TS_ERR_PROTO);
    assert_int_equal(DECODE("0\r\nX: a\rb\r\n\r\n"), TS_ERR_PROTO);
    assert_int_equal(DECODE("0\r\nX: a\x00\r\n\r\n"), TS_ERR_PROTO);
    assert_int_equal(DECODE("0\r\n\rX"), TS_ERR_PROTO);
}

static void test_chunked_errors(void **state)
{
    assert_int_equal(DECODE("x\r\n"), TS_ERR_PROTO);
    assert_int_equal(DECODE("\r\n"), TS_ERR_PROTO);
    assert_int_equal(DECODE(";a\r\n"), TS_ERR_PROTO);
    assert_int_equal(DECODE("-5\r\n"), TS_ERR_PROTO);
    assert_int_equal(DECODE("+5\r\n"), TS_ERR_PROTO);
    assert_int_equal(DECODE("0x5\r\n"), TS_ERR_PROTO);
    assert_int_equal(DECODE("5\rX"), TS_ERR_PROTO);
    assert_int_equal(DECODE("5\r\nhelloX\r\n"), TS_ERR_PROTO);
    assert_int_equal(dec.len, 5);
    assert_int_equal(DECODE("5\r\nhello\n0\r\n\r\n"), TS_ERR_PROTO); /* CRLF exactly after data */
    assert_int_equal(DECODE("5\r\nhello\r0\r\n\r\n"), TS_ERR_PROTO);
    assert_int_equal(DECODE("5\r\nhello\r\n\r\n"), TS_ERR_PROTO);
    assert_int_equal(DECODE("3\r\nhello\r\n"), TS_ERR_PROTO);
    /* 15 hex digits is the most; 16 is refused even when they are zeros */
    assert_int_equal(decode(S("000000000000001\r\nx\r\n0\r\n\r\n"), SIZE_MAX), TS_OK);
    assert_int_equal(decode(S("0000000000000001\r\nx\r\n0\r\n\r\n"), SIZE_MAX), TS_ERR_PROTO);
    assert_int_equal(decode(S("fffffffffffffff\r\n"), SIZE_MAX), TS_ERR_AGAIN);
    assert_int_equal(decode(S("ffffffffffffffff\r\n"), SIZE_MAX), TS_ERR_PROTO);
}

static void test_chunked_line_limits(void **state)
{
    static char in[HTTP_MAX_TRAILER + 64];
    size_t n;

    /* a size line of exactly HTTP_MAX_CHUNK_LINE bytes with its CRLF, then one more */
    n = (size_t)sprintf(in, "1;x=");
    memset(in + n, 'a', HTTP_MAX_CHUNK_LINE - n - 2);
    n = HTTP_MAX_CHUNK_LINE - 2;
    n += (size_t)sprintf(in + n, "\r\nZ\r\n0\r\n\r\n");
    assert_int_equal(decode(in, n, MAX_BODY), TS_OK);
    assert_int_equal(dec.len, 1);
    assert_int_equal(dec.out[0], 'Z');
    memmove(in + 5, in + 4, n - 4);
    in[4] = 'a';
    assert_int_equal(decode(in, n + 1, MAX_BODY), TS_ERR_PROTO);

    /* a trailer section of exactly HTTP_MAX_TRAILER bytes, then one more */
    n = (size_t)sprintf(in, "0\r\nX: ");
    memset(in + n, 'v', HTTP_MAX_TRAILER + 3 - n - 4);
    n = HTTP_MAX_TRAILER + 3 - 4;
    n += (size_t)sprintf(in + n, "\r\n\r\n");
    assert_int_equal(n, 3 + HTTP_MAX_TRAILER);
    assert_int_equal(decode(in, n, MAX_BODY), TS_OK);
    assert_int_equal(dec.used, n);
    memmove(in + 7, in + 6, n - 6);
    in[6] = 'v';
    assert_int_equal(decode(in, n + 1, MAX_BODY), TS_ERR_PROTO);
}

static void test_chunked_body_limit(void **state)
{
    static const char in[] = "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n";
    assert_int_equal(decode(in, sizeof(in) - 1, 7), TS_OK);
    assert_int_equal(dec.len, 7);
    assert_int_equal(decode(in, sizeof(in) - 1, 6), TS_ERR_LIMIT);
    assert_int_equal(dec.len, 3); /* refused at the size line, before the data */
    assert_int_equal(decode(S("8\r\n"), 7), TS_ERR_LIMIT);
    assert_int_equal(decode(S("7\r\n"), 7), TS_ERR_AGAIN);
    assert_int_equal(decode(S("fffffffffffffff\r\n"), MAX_BODY), TS_ERR_LIMIT);
}

static void test_chunked_splits(void **state)
{
    CHUNKED_SPLITS("5\r\nhello\r\nA\r\n, world!!!\r\n0\r\n\r\nGET / HTTP/1.1");
    CHUNKED_SPLITS("5;a=b;c=\"x\\\"y\"\r\nhello\r\n1\r\n!\r\n0;z\r\nT: 1\r\nU:  2 \r\n\r\nX");
    CHUNKED_SPLITS("5\nhello\r\n0\n\n");
    CHUNKED_SPLITS("5\r\nhelloX\r\n");
    CHUNKED_SPLITS("5;a=\"x\ny\"\r\nhello\r\n0\r\n\r\n");
    CHUNKED_SPLITS("0\r\nX: 1\r\nbad\r\n\r\n");
    CHUNKED_SPLITS("5\r\nhello\r\n0\r\n");
    check_chunked_splits(S("3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"), 6);
}

static void test_chunked_separate_output(void **state)
{
    static const char in[] = "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    char out[8] = {0};
    http_chunked_t c = {0};
    size_t consumed, produced;

    assert_int_equal(http_chunked_decode(&c, in, 10, out, MAX_BODY, &consumed, &produced),
                     TS_ERR_AGAIN);
    assert_int_equal(consumed, 10);
    assert_int_equal(produced, 3);
    assert_int_equal(
        http_chunked_decode(&c, in + 10, sizeof(in) - 11, out + 3, MAX_BODY, &consumed, &produced),
        TS_OK);
    assert_int_equal(consumed, sizeof(in) - 11);
    assert_int_equal(produced, 2);
    assert_string_equal(out, "abcde");
    assert_int_equal(c.total, 5);
    /* once done it stays done and takes nothing more */
    assert_int_equal(http_chunked_decode(&c, "xx", 2, out, MAX_BODY, &consumed, &produced), TS_OK);
    assert_int_equal(consumed, 0);
    assert_int_equal(produced, 0);
}

/* ------------------------------------------------------------------------ */
/* URL decoding                                                               */
/* ------------------------------------------------------------------------ */

static void test_url_decode(void **state)
{
    char out[32];
    assert_int_equal(http_url_decode(S("%2e%2E/a+b%20c"), out, sizeof(out)), 8);
    assert_memory_equal(out, "../a+b c", 8);
    assert_int_equal(http_url_decode(S("/plain"), out, sizeof(out)), 6);
    assert_memory_equal(out, "/plain", 6);
    assert_int_equal(http_url_decode(S("%ff%C3%a9"), out, sizeof(out)), 3);
    assert_memory_equal(out, "\xff\xc3\xa9", 3);
    assert_int_equal(http_url_decode("", 0, out, 0), 0);
    assert_int_equal(http_url_decode(S("%00"), out, sizeof(out)), -1);
    assert_int_equal(http_url_decode("a\0b", 3, out, sizeof(out)), -1);
    assert_int_equal(http_url_decode(S("%zz"), out, sizeof(out)), -1);
    assert_int_equal(http_url_decode(S("%4g"), out, sizeof(out)), -1);
    assert_int_equal(http_url_decode(S("%4"), out, sizeof(out)), -1);
    assert_int_equal(http_url_decode(S("a%"), out, sizeof(out)), -1);
    assert_int_equal(http_url_decode(S("abc"), out, 3), 3);
    assert_int_equal(http_url_decode(S("abc"), out, 2), -1);
    assert_int_equal(http_url_decode(S("%41%42"), out, 2), 2);
    assert_memory_equal(out, "AB", 2);
    assert_int_equal(http_url_decode(S("%41%42"), out, 1), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_no_query),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_target_forms),
        cmocka_unit_test(test_target_bytes),
        cmocka_unit_test(test_bad_request_line),
        cmocka_unit_test(test_line_ends),
        cmocka_unit_test(test_leading_empty_lines),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_bad_byte_every_position),
        cmocka_unit_test(test_early_refusal),
        cmocka_unit_test(test_head_limit),
        cmocka_unit_test(test_head_limit_incomplete),
        cmocka_unit_test(test_header_count_limit),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_transfer_encoding),
        cmocka_unit_test(test_host),
        cmocka_unit_test(test_connection),
        cmocka_unit_test(test_expect),
        cmocka_unit_test(test_split_equivalence),
        cmocka_unit_test(test_split_equivalence_limits),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_repeat_after_ok),
        cmocka_unit_test(test_find_header),
        cmocka_unit_test(test_has_token),
        cmocka_unit_test(test_chunked_basic),
        cmocka_unit_test(test_chunked_extensions_trailers),
        cmocka_unit_test(test_chunked_errors),
        cmocka_unit_test(test_chunked_line_limits),
        cmocka_unit_test(test_chunked_body_limit),
        cmocka_unit_test(test_chunked_splits),
        cmocka_unit_test(test_chunked_separate_output),
        cmocka_unit_test(test_url_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
