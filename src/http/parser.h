/*
 * parser.h — the HTTP/1.1 request parser (RFC 9112) and the chunked body
 * decoder. Pure codecs: bytes in, structs out, no I/O, no allocation.
 *
 * The request head is parsed incrementally: http_parse_request() is called
 * with everything buffered so far each time more bytes arrive. It validates
 * each complete line once (state carries where it stopped), so a bad request
 * line is refused as soon as its line ends, and a byte-at-a-time sender costs
 * linear time. Once the blank line arrives it fills the request struct with
 * slices pointing into the caller's buffer. Any split of the same bytes gives
 * the same result.
 */
#ifndef TS_HTTP_PARSER_H
#define TS_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEAD        8192 /* request line + headers, bytes */
#define HTTP_MAX_HEADERS     100
#define HTTP_MAX_EMPTY_LINES 4    /* empty lines ignored before a request line (RFC 9112 2.2) */
#define HTTP_MAX_CHUNK_LINE  4096 /* a chunk-size line with its extensions and CRLF, bytes */
#define HTTP_MAX_TRAILER     8192 /* the trailer section of a chunked body, bytes */

typedef struct {
    const char *base;
    size_t len;
} http_str_t;

typedef struct {
    http_str_t name;  /* as sent; compare case-insensitively */
    http_str_t value; /* leading and trailing whitespace removed */
} http_header_t;

enum http_method {
    HTTP_OTHER = 0,
    HTTP_GET,
    HTTP_HEAD,
    HTTP_POST,
    HTTP_PUT,
    HTTP_DELETE,
    HTTP_OPTIONS,
    HTTP_PATCH,
    HTTP_CONNECT,
    HTTP_TRACE,
};

/* What a request asks of the connection, read from its headers. */
#define HTTP_F_KEEP_ALIVE      0x01 /* HTTP/1.1 without "close", or 1.0 with "keep-alive" */
#define HTTP_F_CHUNKED         0x02 /* Transfer-Encoding: chunked */
#define HTTP_F_UPGRADE         0x04 /* Connection has the "upgrade" token */
#define HTTP_F_EXPECT_CONTINUE 0x08 /* Expect: 100-continue */

typedef struct {
    int method; /* enum http_method */
    http_str_t method_name;
    http_str_t target; /* request-target as sent */
    http_str_t path;   /* target up to '?' */
    http_str_t query;  /* after '?', without it; len 0 when none */
    int minor_version; /* HTTP/1.<minor>: 0 or 1 */
    http_header_t headers[HTTP_MAX_HEADERS];
    size_t nheaders;
    int64_t content_length; /* -1 when absent */
    unsigned flags;         /* HTTP_F_* */
    http_str_t host;        /* Host value (absolute-form: the target's authority); len 0 if none */
    size_t head_len;        /* bytes of request line + headers + blank line */
    int status;             /* on TS_ERR_PROTO / TS_ERR_LIMIT: the HTTP status to answer */
    const char *error;      /* on error: a short reason for the log line (static string) */
} http_request_t;

/* Where the incremental parse stopped; zero it before the first call of each request. */
typedef struct {
    uint32_t pos;   /* bytes of complete, validated lines */
    uint16_t lines; /* complete lines seen (request line + headers) */
    uint16_t flags; /* internal */
    uint32_t scan;  /* internal: bytes already searched for the next line end */
} http_parse_state_t;

/*
 * Parse the request head in buf[0..len).
 *   TS_OK         complete; req is filled, req->head_len bytes are the head.
 *   TS_ERR_AGAIN  incomplete, no error so far: call again with more bytes.
 *   TS_ERR_PROTO  malformed: answer req->status (400, 501, 505, 417) and close.
 *   TS_ERR_LIMIT  a limit was hit: answer req->status (431, 413) and close.
 * Body framing is checked here (duplicate or conflicting Content-Length,
 * Content-Length with Transfer-Encoding, codings other than chunked, a body
 * over max_body) so a request is never mis-framed.
 *
 * Details a caller may meet:
 *   - A bad line is refused as soon as its line end arrives; a bad byte in
 *     the first 32 of a request line's method as soon as it arrives (a TLS
 *     hello on the plain port is refused at once). A head that passes
 *     HTTP_MAX_HEAD bytes is refused (431) without waiting for its end.
 *   - Up to HTTP_MAX_EMPTY_LINES empty lines before the request line are
 *     skipped (RFC 9112 2.2); head_len counts them, so buf + head_len is
 *     still where the body or the next request starts.
 *   - request-target bytes must be 0x21-0x7e, '#' excluded: non-ASCII must be
 *     percent-encoded, or the request is refused (400).
 *   - absolute-form ("http://host/p?q"): path and query come from the
 *     target, host is its authority (RFC 9112 3.2.2); an empty path is the
 *     static string "/", the one slice that does not point into buf.
 *     authority-form is accepted for CONNECT only and its path is the target.
 *   - Connection "close" wins over "keep-alive"; Expect: 100-continue is
 *     ignored in HTTP/1.0 (RFC 9110 10.1.1) but other expectations get 417.
 *   - After TS_OK, calling again with the same state and bytes gives the
 *     same request. Zero the state before the next request.
 */
int http_parse_request(http_parse_state_t *st, const char *buf, size_t len, size_t max_body,
                       http_request_t *req);

/* The first header named name (case-insensitive), or NULL. */
const http_header_t *http_find_header(const http_request_t *req, const char *name);

/* Does the comma-separated list in value hold token (case-insensitive)? */
int http_header_has_token(http_str_t value, const char *token);

/* Decoder of a chunked request body (RFC 9112 section 7.1). Zero it to start. */
typedef struct {
    uint64_t chunk_left; /* bytes of chunk data still to come */
    uint64_t total;      /* decoded body bytes so far */
    uint32_t line_len;   /* bytes of the current size line, or of the trailer section, so far */
    uint8_t state;       /* internal */
    uint8_t digits;      /* hex digits of the current size */
} http_chunked_t;

/*
 * Decode src[0..len): decoded bytes are written to dst (which may be src: the
 * output never overtakes the input), *consumed and *produced say how much of
 * each was used.
 *   TS_OK         the last chunk and trailers are done (bytes after *consumed
 *                 belong to the next request)
 *   TS_ERR_AGAIN  more input needed (everything given was consumed)
 *   TS_ERR_PROTO  malformed (400)
 *   TS_ERR_LIMIT  the body grew past max_body (413)
 * A chunk-size has at most 15 hex digits; extensions are checked against the
 * grammar and ignored; trailer fields are checked and skipped. Size and
 * trailer lines may end in a bare LF, chunk data must be followed by CRLF.
 */
int http_chunked_decode(http_chunked_t *c, const char *src, size_t len, char *dst, size_t max_body,
                        size_t *consumed, size_t *produced);

/* "%2e%2E" and friends: decode a URL path into out (cap bytes). Returns the
 * decoded length, or -1 on a bad escape, a NUL byte, or lack of room. '+' is
 * left alone (it means space only in forms); out is not NUL-terminated. */
long http_url_decode(const char *s, size_t len, char *out, size_t cap);

#endif
