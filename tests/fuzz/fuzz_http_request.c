/*
 * fuzz_http_request.c — libFuzzer target for the HTTP/1.1 request parser and
 * the chunked body decoder. It checks properties, not only survival:
 *
 *   - parsing the whole input in one call and feeding it in random pieces
 *     (in fresh exact-size copies, or growing in place) give the same result;
 *   - a request that parses has every slice inside its head, a head that ends
 *     in a blank line, and fields that agree with its header lines;
 *   - every refusal carries a status that fits its return code, and a reason;
 *   - the chunked decoder gives the same result on any split, in place or
 *     not, and decodes any valid encoding of any payload back to the payload.
 *
 * Input: byte 0 picks max_body and the split mode, bytes 1-2 seed the splits,
 * the rest is the request (and, after its head, a chunked body).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/common.h"
#include "http/parser.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "property failed at line %d: %s\n", __LINE__, #cond);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static uint32_t rnd(uint32_t *s)
{
    uint32_t x = *s ? *s : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static char *dup_bytes(const char *p, size_t n)
{
    char *d = malloc(n ? n : 1);
    if (d == NULL)
        abort();
    if (n)
        memcpy(d, p, n);
    return d;
}

static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int ieq_lit(http_str_t s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.len != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.base[i];
        if (c >= 'A' && c <= 'Z')
            c += 32;
        if (c != (unsigned char)lit[i])
            return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------------ */
/* The head                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * Feed buf in pieces. Mode 0: up to 32 random cuts, each call in a fresh
 * exact-size copy (the caller moved its buffer; ASan sees any read past the
 * prefix or any slice kept from before). Mode 1: 1-4 bytes more per call in
 * one buffer, the way a connection reads. *out is the final buffer.
 */
static int parse_split(const char *buf, size_t len, size_t max_body, int mode, uint32_t seed,
                       http_request_t *req, char **out)
{
    http_parse_state_t st = {0};
    size_t have = 0;
    char *cur = NULL;
    int rc = TS_ERR_AGAIN, calls = 0;

    while (have < len) {
        if (mode == 0)
            have = ++calls >= 32 ? len : have + 1 + rnd(&seed) % (len / 8 + 1);
        else
            have += 1 + rnd(&seed) % 4;
        have = TS_MIN(have, len);
        if (mode == 0) {
            free(cur);
            cur = dup_bytes(buf, have);
        }
        rc = http_parse_request(&st, mode == 0 ? cur : buf, have, max_body, req);
        if (rc != TS_ERR_AGAIN)
            break;
    }
    *out = cur; /* NULL in mode 1: the slices point into buf */
    return rc;
}

/* Offset of a slice in its buffer, or its address when it is not inside (the static "/"). */
static uintptr_t at(http_str_t s, const char *buf, size_t len)
{
    uintptr_t p = (uintptr_t)s.base, b = (uintptr_t)buf;
    return p >= b && p <= b + len ? p - b : p;
}

#define SAME_SLICE(f)                                                                              \
    CHECK(a->f.len == b->f.len && (a->f.len == 0 || at(a->f, abuf, len) == at(b->f, bbuf, len)))

static void check_same(int rc, const http_request_t *a, const char *abuf, int rc2,
                       const http_request_t *b, const char *bbuf, size_t len)
{
    CHECK(rc == rc2);
    if (rc == TS_ERR_PROTO || rc == TS_ERR_LIMIT) {
        CHECK(a->status == b->status);
        CHECK(strcmp(a->error, b->error) == 0);
    }
    if (rc != TS_OK)
        return;
    CHECK(a->method == b->method && a->minor_version == b->minor_version);
    CHECK(a->nheaders == b->nheaders && a->head_len == b->head_len);
    CHECK(a->content_length == b->content_length && a->flags == b->flags);
    SAME_SLICE(method_name);
    SAME_SLICE(target);
    SAME_SLICE(path);
    SAME_SLICE(query);
    SAME_SLICE(host);
    for (size_t i = 0; i < a->nheaders; i++) {
        SAME_SLICE(headers[i].name);
        SAME_SLICE(headers[i].value);
    }
}

static void check_inside(http_str_t s, const char *buf, size_t head_len)
{
    CHECK(s.len == 0 || (s.base >= buf && s.base + s.len <= buf + head_len));
}

static void check_refusal(int rc, const http_request_t *r, const char *buf, size_t len)
{
    size_t lines = 0;

    CHECK(r->error != NULL && r->error[0] != '\0');
    if (rc == TS_ERR_PROTO)
        CHECK(r->status == 400 || r->status == 501 || r->status == 505 || r->status == 417);
    if (rc == TS_ERR_LIMIT)
        CHECK(r->status == 431 || r->status == 413);
    if (r->status == 431) {
        /* a head past the limit, or more header lines than allowed */
        for (size_t i = 0; i < TS_MIN(len, (size_t)HTTP_MAX_HEAD); i++)
            lines += buf[i] == '\n';
        CHECK(len > HTTP_MAX_HEAD || lines > HTTP_MAX_HEADERS);
    }
}

static int method_of(http_str_t m)
{
    static const char *names[] = {"",       "GET",     "HEAD",  "POST",    "PUT",
                                  "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"};
    for (int i = 1; i < (int)TS_ARRAY_SIZE(names); i++)
        if (m.len == strlen(names[i]) && memcmp(m.base, names[i], m.len) == 0)
            return i;
    return HTTP_OTHER;
}

static void check_headers(const http_request_t *r, size_t max_body)
{
    size_t nhost = 0, ncl = 0, nte = 0;
    int close = 0, keep = 0;

    for (size_t i = 0; i < r->nheaders; i++) {
        const http_header_t *h = &r->headers[i];
        CHECK(h->name.len > 0);
        for (size_t j = 0; j < h->name.len; j++)
            CHECK(is_tchar((unsigned char)h->name.base[j]));
        for (size_t j = 0; j < h->value.len; j++) {
            unsigned char c = (unsigned char)h->value.base[j];
            CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
        if (h->value.len > 0) {
            CHECK(h->value.base[0] != ' ' && h->value.base[0] != '\t');
            CHECK(h->value.base[h->value.len - 1] != ' ' &&
                  h->value.base[h->value.len - 1] != '\t');
        }
        nhost += ieq_lit(h->name, "host");
        ncl += ieq_lit(h->name, "content-length");
        nte += ieq_lit(h->name, "transfer-encoding");
        if (ieq_lit(h->name, "connection")) {
            close |= http_header_has_token(h->value, "close");
            keep |= http_header_has_token(h->value, "keep-alive");
        }
    }
    CHECK(nhost <= 1 && ncl <= 1 && (ncl == 0 || nte == 0));
    CHECK(r->minor_version == 0 || nhost == 1);
    CHECK((r->content_length >= 0) == (ncl == 1));
    CHECK(r->content_length < 0 || (uint64_t)r->content_length <= max_body);
    CHECK(!(r->flags & HTTP_F_CHUNKED) == (nte == 0));
    CHECK(nte <= 1 && (nte == 0 || r->minor_version == 1));
    if (r->minor_version == 1)
        CHECK(!!(r->flags & HTTP_F_KEEP_ALIVE) == !close);
    else
        CHECK(!!(r->flags & HTTP_F_KEEP_ALIVE) == (keep && !close));
}

static void check_request(const http_request_t *r, const char *buf, size_t len, size_t max_body)
{
    size_t hl = r->head_len;

    CHECK(hl <= len && hl <= HTTP_MAX_HEAD && hl >= 4 && r->nheaders <= HTTP_MAX_HEADERS);
    CHECK(buf[hl - 1] == '\n');
    CHECK(buf[hl - 2] == '\n' || (buf[hl - 2] == '\r' && buf[hl - 3] == '\n'));
    CHECK(r->minor_version == 0 || r->minor_version == 1);
    CHECK((r->flags & ~0x0fu) == 0 && r->status == 0 && r->error == NULL);
    CHECK(r->method_name.len > 0 && r->target.len > 0);
    CHECK(r->method == method_of(r->method_name));
    check_inside(r->method_name, buf, hl);
    check_inside(r->target, buf, hl);
    check_inside(r->query, buf, hl);
    check_inside(r->host, buf, hl);
    CHECK(r->path.len > 0);
    if (at(r->path, buf, len) >= len) /* outside buf: only the static "/" of absolute-form */
        CHECK(r->path.len == 1 && r->path.base[0] == '/' && r->host.len > 0);
    else
        CHECK(r->path.base >= r->target.base &&
              r->path.base + r->path.len <= r->target.base + r->target.len);
    for (size_t i = 0; i < r->target.len; i++) {
        unsigned char c = (unsigned char)r->target.base[i];
        CHECK(c > 0x20 && c < 0x7f && c != '#');
    }
    for (size_t i = 0; i < r->method_name.len; i++)
        CHECK(is_tchar((unsigned char)r->method_name.base[i]));
    for (size_t i = 0; i < r->nheaders; i++) {
        const http_header_t *h = &r->headers[i];
        char name[HTTP_MAX_HEAD + 1];
        check_inside(h->name, buf, hl);
        check_inside(h->value, buf, hl);
        memcpy(name, h->name.base, h->name.len);
        name[h->name.len] = '\0';
        const http_header_t *f = http_find_header(r, name);
        CHECK(f != NULL && f <= h);
        CHECK(f->name.len == h->name.len && strncasecmp(f->name.base, name, h->name.len) == 0);
    }
    check_headers(r, max_body);
    {
        const http_header_t *f = http_find_header(r, "X-Fuzz-Absent");
        size_t i = 0;
        while (i < r->nheaders && !ieq_lit(r->headers[i].name, "x-fuzz-absent"))
            i++;
        CHECK(f == (i < r->nheaders ? &r->headers[i] : NULL));
    }
}

/* A path decodes to its length less two per escape, or is refused. */
static void check_url_decode(http_str_t path)
{
    char out[HTTP_MAX_HEAD];
    size_t pct = 0;
    long n = http_url_decode(path.base, path.len, out, sizeof(out));

    for (size_t i = 0; i < path.len; i++)
        pct += path.base[i] == '%';
    if (pct == 0)
        CHECK(n == (long)path.len && memcmp(out, path.base, path.len) == 0);
    else
        CHECK(n == -1 || n == (long)(path.len - 2 * pct));
    if (n > 0)
        CHECK(http_url_decode(path.base, path.len, out, (size_t)n - 1) == -1);
}

/* ------------------------------------------------------------------------ */
/* Chunked bodies                                                             */
/* ------------------------------------------------------------------------ */

typedef struct {
    int rc;
    size_t consumed, produced;
} chunk_result_t;

/* Decode in place in buf, in random pieces. */
static chunk_result_t decode_split(char *buf, size_t len, size_t max_body, uint32_t seed)
{
    http_chunked_t c = {0};
    chunk_result_t r = {TS_ERR_AGAIN, 0, 0};
    size_t cut = 0, used, made;

    while (r.consumed < len) {
        cut += 1 + rnd(&seed) % (len / 4 + 2);
        cut = TS_MIN(cut, len);
        r.rc = http_chunked_decode(&c, buf + r.consumed, cut - r.consumed, buf + r.produced,
                                   max_body, &used, &made);
        CHECK(used <= cut - r.consumed && made <= used);
        r.consumed += used;
        r.produced += made;
        if (r.rc != TS_ERR_AGAIN)
            break;
        CHECK(r.consumed == cut);
    }
    CHECK(c.total == r.produced);
    return r;
}

static void fuzz_chunked(const char *body, size_t len, size_t max_body, uint32_t seed)
{
    http_chunked_t c = {0};
    char *out = malloc(len ? len : 1), *copy = dup_bytes(body, len);
    chunk_result_t whole, split;

    if (out == NULL)
        abort();
    whole.rc = http_chunked_decode(&c, body, len, out, max_body, &whole.consumed, &whole.produced);
    CHECK(whole.consumed <= len && whole.produced <= whole.consumed);
    CHECK(c.total == whole.produced && c.total <= max_body);
    CHECK(whole.rc == TS_OK || whole.rc == TS_ERR_AGAIN || whole.rc == TS_ERR_PROTO ||
          whole.rc == TS_ERR_LIMIT);
    if (whole.rc == TS_ERR_AGAIN)
        CHECK(whole.consumed == len);
    if (whole.rc == TS_OK)
        CHECK(body[whole.consumed - 1] == '\n');

    split = decode_split(copy, len, max_body, seed);
    CHECK(split.rc == whole.rc && split.consumed == whole.consumed);
    CHECK(split.produced == whole.produced);
    CHECK(memcmp(copy, out, whole.produced) == 0);
    free(out);
    free(copy);
}

/* Any valid chunked encoding of a payload decodes back to it, on any split. */
static void fuzz_chunked_roundtrip(const char *payload, size_t len, uint32_t seed)
{
    static const char *exts[] = {"", ";a", ";a=b", " ; name = \"q \\\" d\"", ";x=1;y"};
    static const char *trailers[] = {"", "T: 1\r\n", "X-Sum: abc\r\nY:\r\n", "Z:\tv\xff\n"};
    size_t cap = len * 40 + 128, n = 0, off = 0;
    char *enc = malloc(cap);
    chunk_result_t r;

    if (enc == NULL)
        abort();
    while (off < len) {
        size_t k = 1 + rnd(&seed) % 64;
        k = TS_MIN(k, len - off);
        n +=
            (size_t)snprintf(enc + n, cap - n, "%zx%s%s", k, exts[rnd(&seed) % TS_ARRAY_SIZE(exts)],
                             rnd(&seed) & 1 ? "\r\n" : "\n");
        memcpy(enc + n, payload + off, k);
        n += k;
        enc[n++] = '\r';
        enc[n++] = '\n';
        off += k;
    }
    n += (size_t)snprintf(enc + n, cap - n, "0%s\r\n%s\r\n", exts[rnd(&seed) % TS_ARRAY_SIZE(exts)],
                          trailers[rnd(&seed) % TS_ARRAY_SIZE(trailers)]);
    r = decode_split(enc, n, SIZE_MAX, seed);
    CHECK(r.rc == TS_OK && r.consumed == n && r.produced == len);
    CHECK(memcmp(enc, payload, len) == 0);
    free(enc);
}

/* ------------------------------------------------------------------------ */
/* Entry                                                                      */
/* ------------------------------------------------------------------------ */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t bodies[] = {0, 16, 1 << 20, SIZE_MAX};
    static http_request_t whole, part;
    http_parse_state_t st = {0};
    size_t max_body, len, off;
    uint32_t seed;
    char *buf, *pbuf;
    int rc, rc2, mode;

    if (size < 3)
        return 0;
    max_body = bodies[data[0] & 3];
    mode = (data[0] >> 2) & 1;
    seed = (uint32_t)data[1] << 8 | data[2] | (uint32_t)data[0] << 16;
    len = size - 3;
    buf = dup_bytes((const char *)data + 3, len);

    rc = http_parse_request(&st, buf, len, max_body, &whole);
    CHECK(rc == TS_OK || rc == TS_ERR_AGAIN || rc == TS_ERR_PROTO || rc == TS_ERR_LIMIT);
    if (rc == TS_OK) {
        check_request(&whole, buf, len, max_body);
        check_url_decode(whole.path);
        /* calling again changes nothing; the head alone gives the same; one byte less waits */
        CHECK(http_parse_request(&st, buf, len, max_body, &part) == TS_OK);
        check_same(rc, &whole, buf, TS_OK, &part, buf, len);
        memset(&st, 0, sizeof(st));
        CHECK(http_parse_request(&st, buf, whole.head_len, max_body, &part) == TS_OK);
        check_same(rc, &whole, buf, TS_OK, &part, buf, len);
        memset(&st, 0, sizeof(st));
        CHECK(http_parse_request(&st, buf, whole.head_len - 1, max_body, &part) == TS_ERR_AGAIN);
    } else if (rc == TS_ERR_AGAIN) {
        CHECK(len <= HTTP_MAX_HEAD);
    } else {
        check_refusal(rc, &whole, buf, len);
    }

    rc2 = parse_split(buf, len, max_body, mode, seed, &part, &pbuf);
    check_same(rc, &whole, buf, rc2, &part, pbuf ? pbuf : buf, len);
    free(pbuf);

    off = rc == TS_OK ? whole.head_len : 0;
    fuzz_chunked(buf + off, len - off, max_body, seed);
    if (len - off <= 4096)
        fuzz_chunked_roundtrip(buf + off, len - off, seed);
    free(buf);
    return 0;
}
