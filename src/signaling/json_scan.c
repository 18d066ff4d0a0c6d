/*
 * json_scan.c — validate a JSON object and slice its top-level members
 * (json_scan.h). A recursive-descent reader over a bounded depth; every
 * function takes the cursor and returns TS_OK or an error, so the grammar
 * of RFC 8259 section 2–7 reads off the code.
 */
#include "signaling/json_scan.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/common.h"

typedef struct {
    const char *p;
    const char *end;
} ts_json_cur_t;

static void ts_json_ws(ts_json_cur_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int ts_json_hex(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Four hex digits at p (p + 4 <= end checked by the caller). -1: not hex. */
static long ts_json_u4(const char *p)
{
    long v = 0;

    for (int i = 0; i < 4; i++) {
        int h = ts_json_hex(p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* A \uXXXX escape at p (after the backslash and the u), with the second
 * half of a surrogate pair when the first is high. Returns the code point
 * and advances *p past the escape(s); -1: invalid (a lone surrogate too,
 * which cannot become UTF-8). */
static long ts_json_unicode(const char **p, const char *end)
{
    long cp, lo;

    if (end - *p < 4 || (cp = ts_json_u4(*p)) < 0)
        return -1;
    *p += 4;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return -1;
    if (cp < 0xD800 || cp > 0xDBFF)
        return cp;
    if (end - *p < 6 || (*p)[0] != '\\' || (*p)[1] != 'u' || (lo = ts_json_u4(*p + 2)) < 0 ||
        lo < 0xDC00 || lo > 0xDFFF)
        return -1;
    *p += 6;
    return 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
}

/*
 * How many bytes from p (before end) may stand in a string as they are:
 * neither a quote, a backslash nor a control character. SDP is most of a
 * signaling message and has few of them (an escaped CRLF per line), so the
 * reader jumps to the next one 16 bytes at a time with SSE2 (every x86-64
 * has it) or 8 with a word-at-a-time test elsewhere, instead of looking at
 * each byte. Bytes >= 0x80 are plain: ws.c has checked the UTF-8.
 */
static size_t ts_json_plain_run(const char *p, const char *end)
{
    const char *q = p;

#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i ctl = _mm_set1_epi8(0x1F);

    while (end - q >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                 _mm_cmpeq_epi8(_mm_min_epu8(v, ctl), v));
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        if (mask != 0)
            return (size_t)(q - p) + (size_t)__builtin_ctz(mask);
        q += 16;
    }
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* Hacker's Delight 6-1: a byte's high bit is set where it is zero (or
     * below 0x20); a borrow only ever marks bytes above a true one, so the
     * lowest mark is exact. */
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;

    while (end - q >= 8) {
        uint64_t x, a, b, m;
        memcpy(&x, q, 8);
        a = x ^ (ones * '"');
        b = x ^ (ones * '\\');
        m = (((a - ones) & ~a) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x)) & highs;
        if (m != 0)
            return (size_t)(q - p) + (size_t)(__builtin_ctzll(m) / 8);
        q += 8;
    }
#endif
    while (q < end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
        q++;
    return (size_t)(q - p);
}

static int ts_json_simple_escape(unsigned char ch)
{
    switch (ch) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
        return 1;
    default:
        return 0;
    }
}

/* A string; c->p is on the opening quote. */
static int ts_json_string_skip(ts_json_cur_t *c, int *escaped)
{
    const char *p = c->p + 1;

    *escaped = 0;
    while (p < c->end) {
        unsigned char ch;
        p += ts_json_plain_run(p, c->end);
        if (p == c->end)
            break;
        ch = (unsigned char)*p;
        if (ch == '"') {
            c->p = p + 1;
            return TS_OK;
        }
        if (ch < 0x20)
            return TS_ERR_PROTO;
        *escaped = 1;
        if (++p == c->end)
            return TS_ERR_PROTO;
        ch = (unsigned char)*p++;
        if (ch == 'u') {
            if (ts_json_unicode(&p, c->end) < 0)
                return TS_ERR_PROTO;
        } else if (!ts_json_simple_escape(ch)) {
            return TS_ERR_PROTO;
        }
    }
    return TS_ERR_PROTO;
}

static int ts_json_digits(ts_json_cur_t *c)
{
    const char *start = c->p;

    while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
        c->p++;
    return c->p > start ? TS_OK : TS_ERR_PROTO;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int ts_json_number(ts_json_cur_t *c)
{
    if (c->p < c->end && *c->p == '-')
        c->p++;
    if (c->p < c->end && *c->p == '0')
        c->p++;
    else if (ts_json_digits(c) != TS_OK)
        return TS_ERR_PROTO;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (ts_json_digits(c) != TS_OK)
            return TS_ERR_PROTO;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (ts_json_digits(c) != TS_OK)
            return TS_ERR_PROTO;
    }
    return TS_OK;
}

static int ts_json_literal(ts_json_cur_t *c, const char *word)
{
    size_t n = strlen(word);

    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return TS_ERR_PROTO;
    c->p += n;
    return TS_OK;
}

static int ts_json_value(ts_json_cur_t *c, int depth, uint8_t *kind);

/* An object or an array; c->p is on its opening bracket. When top is set
 * (the top-level object), its members are stored in m. */
static int ts_json_container(ts_json_cur_t *c, int depth, ts_json_member_t *m, size_t max,
                             size_t *n)
{
    char close = *c->p == '{' ? '}' : ']';
    int rc;

    if (depth >= TS_JSON_MAX_DEPTH)
        return TS_ERR_LIMIT;
    c->p++;
    ts_json_ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return TS_OK;
    }
    for (;;) {
        ts_json_member_t mb = {0};
        if (close == '}') {
            int escaped;
            if (c->p == c->end || *c->p != '"')
                return TS_ERR_PROTO;
            mb.key = c->p + 1;
            if ((rc = ts_json_string_skip(c, &escaped)) != TS_OK)
                return rc;
            mb.key_len = (size_t)(c->p - 1 - mb.key);
            mb.key_escaped = (uint8_t)escaped;
            ts_json_ws(c);
            if (c->p == c->end || *c->p != ':')
                return TS_ERR_PROTO;
            c->p++;
            ts_json_ws(c);
        }
        mb.val = c->p;
        if ((rc = ts_json_value(c, depth + 1, &mb.kind)) != TS_OK)
            return rc;
        mb.val_len = (size_t)(c->p - mb.val);
        if (m != NULL) {
            if (*n == max)
                return TS_ERR_LIMIT;
            m[(*n)++] = mb;
        }
        ts_json_ws(c);
        if (c->p == c->end)
            return TS_ERR_PROTO;
        if (*c->p == close) {
            c->p++;
            return TS_OK;
        }
        if (*c->p != ',')
            return TS_ERR_PROTO;
        c->p++;
        ts_json_ws(c);
    }
}

static int ts_json_value(ts_json_cur_t *c, int depth, uint8_t *kind)
{
    int escaped;

    if (c->p == c->end)
        return TS_ERR_PROTO;
    switch (*c->p) {
    case '"':
        *kind = TS_JSON_STRING;
        return ts_json_string_skip(c, &escaped);
    case '{':
        *kind = TS_JSON_OBJECT;
        return ts_json_container(c, depth, NULL, 0, NULL);
    case '[':
        *kind = TS_JSON_ARRAY;
        return ts_json_container(c, depth, NULL, 0, NULL);
    case 't':
        *kind = TS_JSON_TRUE;
        return ts_json_literal(c, "true");
    case 'f':
        *kind = TS_JSON_FALSE;
        return ts_json_literal(c, "false");
    case 'n':
        *kind = TS_JSON_NULL;
        return ts_json_literal(c, "null");
    default:
        *kind = TS_JSON_NUMBER;
        return ts_json_number(c);
    }
}

int ts_json_scan(const char *s, size_t len, ts_json_member_t *m, size_t max, size_t *n)
{
    ts_json_cur_t c = {s, s + len};
    int rc;

    *n = 0;
    ts_json_ws(&c);
    if (c.p == c.end || *c.p != '{')
        return TS_ERR_PROTO;
    if ((rc = ts_json_container(&c, 0, m, max, n)) != TS_OK)
        return rc;
    ts_json_ws(&c);
    return c.p == c.end ? TS_OK : TS_ERR_PROTO;
}

/* ------------------------------------------------------------ strings -- */

static size_t ts_json_utf8(char *out, long cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decode raw string contents (validated by the scan) into out. */
static int ts_json_decode(const char *p, const char *end, char *out, size_t cap, size_t *len)
{
    size_t o = 0;

    while (p < end) {
        char buf[4];
        size_t k = 1;
        if (*p != '\\') {
            buf[0] = *p++;
        } else {
            char e = p[1];
            p += 2;
            switch (e) {
            case 'b': buf[0] = '\b'; break;
            case 'f': buf[0] = '\f'; break;
            case 'n': buf[0] = '\n'; break;
            case 'r': buf[0] = '\r'; break;
            case 't': buf[0] = '\t'; break;
            case 'u': {
                long cp = ts_json_unicode(&p, end);
                if (cp <= 0)
                    return TS_ERR_PROTO; /* \u0000 would cut a C string short */
                k = ts_json_utf8(buf, cp);
                break;
            }
            default: buf[0] = e; break; /* " \ / */
            }
        }
        if (o + k >= cap)
            return TS_ERR_LIMIT;
        memcpy(out + o, buf, k);
        o += k;
    }
    out[o] = '\0';
    *len = o;
    return TS_OK;
}

int ts_json_string(const ts_json_member_t *v, char *out, size_t cap, size_t *len)
{
    if (v->kind != TS_JSON_STRING)
        return TS_ERR_PROTO;
    if (cap == 0)
        return TS_ERR_LIMIT;
    return ts_json_decode(v->val + 1, v->val + v->val_len - 1, out, cap, len);
}

const ts_json_member_t *ts_json_find(const ts_json_member_t *m, size_t n, const char *key)
{
    size_t klen = strlen(key);

    for (size_t i = n; i-- > 0;) {
        char name[256];
        size_t len;
        if (!m[i].key_escaped) {
            if (m[i].key_len == klen && memcmp(m[i].key, key, klen) == 0)
                return &m[i];
            continue;
        }
        if (ts_json_decode(m[i].key, m[i].key + m[i].key_len, name, sizeof(name), &len) ==
                TS_OK &&
            len == klen && memcmp(name, key, klen) == 0)
            return &m[i];
    }
    return NULL;
}

size_t ts_json_quote(char *out, size_t cap, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    if (cap < 2)
        return 0;
    out[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[6];
        size_t k = 1;
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            k = 2;
        } else if (ch < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 0xF];
            k = 6;
        } else {
            esc[0] = (char)ch;
        }
        if (o + k + 1 > cap)
            return 0;
        memcpy(out + o, esc, k);
        o += k;
    }
    out[o++] = '"';
    return o;
}
