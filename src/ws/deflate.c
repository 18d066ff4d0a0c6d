/*
 * deflate.c — permessage-deflate (RFC 7692): the extension negotiation and
 * the zlib streams behind it. The contract and the memory policy are in
 * deflate.h; docs/websocket.md has the figures.
 */
#include "ws/deflate.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "core/common.h"

/* ------------------------------------------------------------------------ */
/* Tuning                                                                     */
/* ------------------------------------------------------------------------ */

/*
 * Level 1 is zlib's fastest. Signaling messages are small JSON documents
 * (SDP, the largest, is a few KiB): up to 4 KiB, level 6 gives the same size
 * within 4%; on 64 KiB it saves 14% of the output at 4 to 5 times the CPU.
 */
#define PMD_LEVEL 1

/*
 * memLevel sizes the hash table (1 << (memLevel + 7) two-byte heads) and the
 * pending-symbol buffer, 1 << (memLevel + 9) bytes in all.
 *
 * The shared deflater is one per worker, so its memory does not matter and
 * it takes zlib's default, 8. Measured on this machine (zlib 1.2.13, level
 * 1): the deflateReset between messages clears the hash table, 0.7 us
 * at memLevel 8 and 1.3 us at 9, against about 5 us to compress a 200-byte
 * candidate message whatever the memLevel (building the Huffman trees
 * dominates); 9 buys nothing measurable on messages of this size.
 *
 * A per-connection deflater (server context takeover, off by default) is
 * multiplied by the connection count, so it uses 5: 16 KiB instead of
 * 128 KiB next to its 128 KiB window, with the same ratio on 200 B - 64 KiB
 * JSON and SDP to the third digit, and no measurable loss of speed.
 */
#define PMD_MEM_LEVEL_SHARED 8
#define PMD_MEM_LEVEL_CONN   5

/* zlib's raw deflate refuses a 256-byte window (zlib.h, deflateInit2). */
#define PMD_MIN_DEFLATE_BITS 9

/*
 * Sizes of zlib's internal state structs (zlib 1.2.13, x86-64), for the
 * memory estimate: struct inflate_state is about 7 KiB (mostly the decoding
 * tables), struct deflate_state about 6 KiB (the Huffman trees).
 */
#define PMD_INFLATE_STATE (7 * 1024)
#define PMD_DEFLATE_STATE (6 * 1024)

/* Output is produced in steps of this size (fits in a pool chunk). */
#define PMD_OUT_STEP TS_POOL_CHUNK

static const uint8_t pmd_tail[4] = {0x00, 0x00, 0xff, 0xff};

/* ------------------------------------------------------------------------ */
/* Negotiation                                                                */
/* ------------------------------------------------------------------------ */

/*
 * The Sec-WebSocket-Extensions grammar (RFC 6455 section 9.1):
 *   extension-list  = 1#extension
 *   extension       = extension-token *( ";" extension-param )
 *   extension-param = token [ "=" ( token | quoted-string ) ]
 * with optional whitespace around the separators; a quoted value must still
 * be a token once unescaped. Empty list elements are skipped (RFC 9110
 * section 5.6.1).
 */

#define PMD_SEEN_SNCT 0x01
#define PMD_SEEN_CNCT 0x02
#define PMD_SEEN_SMWB 0x04
#define PMD_SEEN_CMWB 0x08

typedef struct {
    const char *p;
    const char *end;
} lex_t;

/* One offer as parsed. */
typedef struct {
    int is_pmd;   /* the extension is permessage-deflate */
    int declined; /* unknown or duplicate parameter, or a bad value */
    unsigned seen;
    int smwb; /* server_max_window_bits value */
    int cmwb; /* client_max_window_bits value; 0 when given without one */
} pmd_offer_t;

static int is_tchar(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return 1;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static void skip_ows(lex_t *lx)
{
    while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t'))
        lx->p++;
}

static int lex_token(lex_t *lx, const char **s, size_t *n)
{
    const char *start = lx->p;

    while (lx->p < lx->end && is_tchar((unsigned char)*lx->p))
        lx->p++;
    *s = start;
    *n = (size_t)(lx->p - start);
    return *n > 0 ? TS_OK : TS_ERR_PROTO;
}

/*
 * A parameter value, token or quoted-string, unescaped into v (cap bytes,
 * NUL-terminated). A value too long for v is truncated and *n tells the real
 * length, so it can never match a short expected value.
 */
static int lex_value(lex_t *lx, char *v, size_t cap, size_t *n)
{
    const char *s;
    size_t len = 0;

    if (lx->p < lx->end && *lx->p == '"') {
        lx->p++;
        for (;;) {
            unsigned char c;

            if (lx->p >= lx->end)
                return TS_ERR_PROTO; /* unterminated */
            c = (unsigned char)*lx->p++;
            if (c == '"')
                break;
            if (c == '\\') {
                if (lx->p >= lx->end)
                    return TS_ERR_PROTO;
                c = (unsigned char)*lx->p++;
            }
            if (!is_tchar(c))
                return TS_ERR_PROTO; /* RFC 6455 9.1: must be a token once unquoted */
            if (len + 1 < cap)
                v[len] = (char)c;
            len++;
        }
        if (len == 0)
            return TS_ERR_PROTO;
    } else {
        if (lex_token(lx, &s, &len) != TS_OK)
            return TS_ERR_PROTO;
        memcpy(v, s, TS_MIN(len, cap - 1));
    }
    v[TS_MIN(len, cap - 1)] = '\0';
    *n = len;
    return TS_OK;
}

static int str_ieq(const char *s, size_t n, const char *lit)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (lit[i] == '\0' || ((unsigned char)s[i] | 0x20) != ((unsigned char)lit[i] | 0x20))
            return 0;
    }
    return lit[i] == '\0';
}

/* "8".."15", decimal without leading zeros (RFC 7692 7.1.2.1); -1 otherwise. */
static int window_bits_value(const char *v, size_t n)
{
    if (n == 1 && v[0] >= '8' && v[0] <= '9')
        return v[0] - '0';
    if (n == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
        return 10 + v[1] - '0';
    return -1;
}

/* Judge one parameter of a permessage-deflate offer. */
static void offer_param(pmd_offer_t *o, const char *name, size_t nlen, int has_value, const char *v,
                        size_t vlen)
{
    unsigned bit;
    int bits = -1;

    if (str_ieq(name, nlen, "server_no_context_takeover"))
        bit = PMD_SEEN_SNCT;
    else if (str_ieq(name, nlen, "client_no_context_takeover"))
        bit = PMD_SEEN_CNCT;
    else if (str_ieq(name, nlen, "server_max_window_bits"))
        bit = PMD_SEEN_SMWB;
    else if (str_ieq(name, nlen, "client_max_window_bits"))
        bit = PMD_SEEN_CMWB;
    else
        bit = 0;
    if (bit == 0 || (o->seen & bit)) {
        o->declined = 1;
        return;
    }
    o->seen |= bit;
    if (has_value)
        bits = window_bits_value(v, vlen);
    switch (bit) {
    case PMD_SEEN_SNCT:
    case PMD_SEEN_CNCT:
        o->declined |= has_value;
        break;
    case PMD_SEEN_SMWB:
        o->declined |= bits < 0;
        o->smwb = bits;
        break;
    case PMD_SEEN_CMWB:
        o->declined |= has_value && bits < 0;
        o->cmwb = has_value ? bits : 0;
        break;
    }
}

/*
 * Parse one list element. Returns TS_OK with *o filled, TS_ERR_AGAIN for an
 * empty element, TS_ERR_PROTO when the text breaks the grammar.
 */
static int parse_offer(lex_t *lx, pmd_offer_t *o)
{
    const char *name;
    size_t nlen;

    memset(o, 0, sizeof(*o));
    skip_ows(lx);
    if (lx->p == lx->end || *lx->p == ',')
        return TS_ERR_AGAIN;
    if (lex_token(lx, &name, &nlen) != TS_OK)
        return TS_ERR_PROTO;
    o->is_pmd = str_ieq(name, nlen, "permessage-deflate");
    skip_ows(lx);
    while (lx->p < lx->end && *lx->p == ';') {
        char v[8];
        size_t vlen = 0;
        int has_value = 0;

        lx->p++;
        skip_ows(lx);
        if (lex_token(lx, &name, &nlen) != TS_OK)
            return TS_ERR_PROTO;
        skip_ows(lx);
        if (lx->p < lx->end && *lx->p == '=') {
            lx->p++;
            skip_ows(lx);
            if (lex_value(lx, v, sizeof(v), &vlen) != TS_OK)
                return TS_ERR_PROTO;
            has_value = 1;
            skip_ows(lx);
        }
        if (o->is_pmd)
            offer_param(o, name, nlen, has_value, v, vlen);
    }
    if (lx->p < lx->end && *lx->p != ',')
        return TS_ERR_PROTO;
    return TS_OK;
}

static uint8_t clamp_bits(unsigned v)
{
    return v >= 8 && v <= 15 ? (uint8_t)v : 15;
}

/* Turn an acceptable offer into parameters and the response value. */
static int offer_accept(const pmd_offer_t *o, const ws_pmd_policy_t *policy, ws_pmd_params_t *out,
                        char *resp, size_t resp_cap)
{
    ws_pmd_params_t prm;
    int n;

    /* The server may always choose not to take over its own context (RFC
     * 7692 7.1.1.1), and that is what makes the shared deflater possible. */
    prm.server_no_context_takeover =
        (o->seen & PMD_SEEN_SNCT) || !policy->server_context_takeover ? 1 : 0;
    prm.client_no_context_takeover =
        (o->seen & PMD_SEEN_CNCT) || policy->client_no_context_takeover ? 1 : 0;
    prm.server_max_window_bits = (o->seen & PMD_SEEN_SMWB) ? (uint8_t)o->smwb : 15;
    prm.client_max_window_bits = 15;
    if (o->seen & PMD_SEEN_CMWB) {
        uint8_t cap = clamp_bits(policy->client_max_window_bits);
        prm.client_max_window_bits = o->cmwb ? TS_MIN(cap, (uint8_t)o->cmwb) : cap;
    }

    n = snprintf(resp, resp_cap, "permessage-deflate%s%s",
                 prm.server_no_context_takeover ? "; server_no_context_takeover" : "",
                 prm.client_no_context_takeover ? "; client_no_context_takeover" : "");
    if (n > 0 && (size_t)n < resp_cap && (o->seen & PMD_SEEN_SMWB))
        n += snprintf(resp + n, resp_cap - (size_t)n, "; server_max_window_bits=%u",
                      prm.server_max_window_bits);
    if (n > 0 && (size_t)n < resp_cap && (o->seen & PMD_SEEN_CMWB))
        n += snprintf(resp + n, resp_cap - (size_t)n, "; client_max_window_bits=%u",
                      prm.client_max_window_bits);
    if (n <= 0 || (size_t)n >= resp_cap)
        return TS_ERR;
    *out = prm;
    return TS_OK;
}

int ws_pmd_negotiate(const char *value, size_t len, const ws_pmd_policy_t *policy,
                     ws_pmd_params_t *out, char *resp, size_t resp_cap)
{
    lex_t lx = {value, value + len};
    pmd_offer_t o, chosen = {0};
    int found = 0, rc;

    if (resp_cap > 0)
        resp[0] = '\0';
    if (policy == NULL || !policy->enabled)
        return TS_ERR_AGAIN;
    /* The whole header is parsed even after an offer is chosen, so whether
     * it is malformed does not depend on the order of the offers. */
    for (;;) {
        rc = parse_offer(&lx, &o);
        if (rc == TS_ERR_PROTO)
            return TS_ERR_PROTO;
        /* A server_max_window_bits of 8 cannot be honoured: raw deflate in
         * zlib has no 256-byte window, so the offer is declined. */
        if (rc == TS_OK && !found && o.is_pmd && !o.declined &&
            !((o.seen & PMD_SEEN_SMWB) && o.smwb < PMD_MIN_DEFLATE_BITS)) {
            chosen = o;
            found = 1;
        }
        if (lx.p == lx.end)
            break;
        lx.p++; /* the ',' */
    }
    if (!found)
        return TS_ERR_AGAIN;
    return offer_accept(&chosen, policy, out, resp, resp_cap);
}

/* ------------------------------------------------------------------------ */
/* zlib streams                                                               */
/* ------------------------------------------------------------------------ */

/* Out of memory aborts (common.h), so zlib never sees Z_MEM_ERROR. */
static voidpf pmd_zalloc(voidpf opaque, uInt items, uInt size)
{
    return ts_malloc((size_t)items * size);
}

static void pmd_zfree(voidpf opaque, voidpf ptr)
{
    free(ptr);
}

static z_stream *deflater_new(int window_bits, int mem_level)
{
    z_stream *z = ts_calloc(1, sizeof(*z));

    z->zalloc = pmd_zalloc;
    z->zfree = pmd_zfree;
    if (deflateInit2(z, PMD_LEVEL, Z_DEFLATED, -window_bits, mem_level, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
        free(z);
        return NULL;
    }
    return z;
}

static void deflater_free(z_stream *z)
{
    if (z != NULL) {
        deflateEnd(z);
        free(z);
    }
}

/* One deflater per window size, made when a connection first needs it:
 * nearly every client leaves server_max_window_bits alone, so in practice a
 * worker holds only the 15-bit one. */
struct ws_pmd_shared_s {
    z_stream *z[16];
};

ws_pmd_shared_t *ws_pmd_shared_new(void)
{
    return ts_calloc(1, sizeof(ws_pmd_shared_t));
}

void ws_pmd_shared_free(ws_pmd_shared_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < TS_ARRAY_SIZE(s->z); i++)
        deflater_free(s->z[i]);
    free(s);
}

/*
 * Per connection. inf: owned; NULL between messages unless the client takes
 * over its context. def: owned; only with server context takeover, made at
 * the first compressed message.
 */
struct ws_pmd_s {
    ws_pmd_params_t params;
    z_stream *inf;
    z_stream *def;
    size_t msg_out;      /* bytes inflated so far for the current message */
    uint8_t in_msg;      /* a compressed message is arriving */
    uint8_t msg_input;   /* it has had a compressed byte */
    uint8_t msg_restart; /* it held a final block (BFINAL) */
};

ws_pmd_t *ws_pmd_new(const ws_pmd_params_t *params)
{
    ws_pmd_t *p = ts_calloc(1, sizeof(*p));

    p->params = *params;
    p->params.client_max_window_bits = clamp_bits(params->client_max_window_bits);
    p->params.server_max_window_bits = clamp_bits(params->server_max_window_bits);
    if (p->params.server_max_window_bits < PMD_MIN_DEFLATE_BITS)
        p->params.server_max_window_bits = PMD_MIN_DEFLATE_BITS;
    return p;
}

static void inflater_free(ws_pmd_t *p)
{
    if (p->inf != NULL) {
        inflateEnd(p->inf);
        free(p->inf);
        p->inf = NULL;
    }
}

void ws_pmd_free(ws_pmd_t *p)
{
    if (p == NULL)
        return;
    inflater_free(p);
    deflater_free(p->def);
    free(p);
}

/*
 * The inflater's window: the negotiated client_max_window_bits, but never
 * below 9. A window larger than the sender's is always correct, and zlib
 * based senders cannot make a 256-byte raw window: asked for 8, some of them
 * quietly use 9. The extra 256 bytes buy interoperability with them.
 */
static int inflate_bits(const ws_pmd_t *p)
{
    return TS_MAX(p->params.client_max_window_bits, 9);
}

/* ------------------------------------------------------------------------ */
/* Inflate                                                                    */
/* ------------------------------------------------------------------------ */

/*
 * Run the inflater over in[0..len) (tail: the 00 00 ff ff we append),
 * appending at most max bytes of message output to out. Z_BLOCK makes inflate stop at each block
 * boundary, which is what lets ws_pmd_inflate() check, at the end of a message, that the data ended
 * at one (zlib reports it in data_type).
 */
static int inflate_run(ws_pmd_t *p, const uint8_t *in, size_t len, int tail, ts_buf_t *out,
                       ts_pool_t *pool, size_t max)
{
    z_stream *z = p->inf;

    z->next_in = (Bytef *)(uintptr_t)in;
    z->avail_in = (uInt)len;
    for (;;) {
        size_t room = max - p->msg_out, avail;
        uint8_t probe;
        int rc;

        if (room == 0) {
            /* At the limit: one more byte of output means too much. */
            z->next_out = &probe;
            z->avail_out = 1;
        } else {
            if (ts_buf_room(out) == 0)
                ts_buf_reserve(out, pool, TS_MIN(room, PMD_OUT_STEP));
            z->next_out = (Bytef *)ts_buf_tail(out);
            z->avail_out = (uInt)TS_MIN(TS_MIN(ts_buf_room(out), room), UINT_MAX);
        }
        avail = z->avail_out;
        rc = inflate(z, Z_BLOCK);
        avail -= z->avail_out;
        if (avail > 0) {
            if (room == 0)
                return TS_ERR_LIMIT;
            out->len += (uint32_t)avail;
            p->msg_out += avail;
        }
        switch (rc) {
        case Z_OK:
            break;
        case Z_STREAM_END:
            /* A block with BFINAL set ends the stream; RFC 7692 7.2.3.4
             * lets senders do that and go on with a new one. */
            inflateReset(z);
            p->msg_restart = 1;
            /* A final block that ends inside the tail we appended leaves
             * nothing of the message: the rest of the tail is ours. */
            if (tail)
                return TS_OK;
            break;
        case Z_BUF_ERROR:
            return TS_OK; /* no progress possible: everything is consumed */
        default:
            return TS_ERR_PROTO;
        }
        /* Done when the input is used up and inflate did not stop for lack
         * of room — or stopped between blocks, where no output is pending
         * (calling again there would step past the boundary and lose it
         * from data_type). */
        if (z->avail_in == 0 && (z->avail_out > 0 || (z->data_type & 128)))
            return TS_OK;
    }
}

int ws_pmd_inflate(ws_pmd_t *p, const uint8_t *in, size_t len, int fin, ts_buf_t *out,
                   ts_pool_t *pool, size_t max)
{
    int rc = TS_OK;

    if (!p->in_msg) {
        p->in_msg = 1;
        p->msg_out = 0;
        p->msg_input = 0;
        p->msg_restart = 0;
    }
    if (len > 0)
        p->msg_input = 1;
    if (fin && !p->msg_input) {
        /* No compressed byte at all: not what RFC 7692 7.2.1 produces (an
         * empty message compresses to 0x00), but plainly an empty message.
         * Feeding the tail alone would leave the inflater in a stored block. */
        p->in_msg = 0;
        return TS_OK;
    }
    if (p->inf == NULL && (len > 0 || fin)) {
        p->inf = ts_calloc(1, sizeof(z_stream));
        p->inf->zalloc = pmd_zalloc;
        p->inf->zfree = pmd_zfree;
        if (inflateInit2(p->inf, -inflate_bits(p)) != Z_OK) {
            free(p->inf);
            p->inf = NULL;
            p->in_msg = 0;
            return TS_ERR;
        }
    }
    /* inflate takes at most UINT_MAX bytes per call. */
    while (rc == TS_OK && len > 0) {
        size_t n = TS_MIN(len, (size_t)UINT_MAX);
        rc = inflate_run(p, in, n, 0, out, pool, max);
        in += n;
        len -= n;
    }
    if (rc == TS_OK && fin) {
        rc = inflate_run(p, pmd_tail, sizeof(pmd_tail), 1, out, pool, max);
        /* The tail completes an empty stored block, so a sender that
         * followed RFC 7692 7.2.1 leaves the inflater between blocks. Data
         * that stops inside a block is corrupt — unless the message held a
         * final block, after which what is left is padding to discard. */
        if (rc == TS_OK && !(p->inf->data_type & 128)) {
            if (p->msg_restart)
                inflateReset(p->inf);
            else
                rc = TS_ERR_PROTO;
        }
    }
    if (rc != TS_OK) {
        /* The stream is unusable; the connection closes. */
        inflater_free(p);
        p->in_msg = 0;
        return rc;
    }
    if (fin) {
        p->in_msg = 0;
        if (p->params.client_no_context_takeover)
            inflater_free(p);
    }
    return TS_OK;
}

/* ------------------------------------------------------------------------ */
/* Deflate                                                                    */
/* ------------------------------------------------------------------------ */

static z_stream *pick_deflater(ws_pmd_t *p, ws_pmd_shared_t *shared)
{
    int bits = p->params.server_max_window_bits;

    if (!p->params.server_no_context_takeover) {
        if (p->def == NULL)
            p->def = deflater_new(bits, PMD_MEM_LEVEL_CONN);
        return p->def;
    }
    if (shared->z[bits] == NULL)
        shared->z[bits] = deflater_new(bits, PMD_MEM_LEVEL_SHARED);
    return shared->z[bits];
}

/*
 * deflate() with Z_SYNC_FLUSH until all of in[0..len) is consumed and
 * flushed, appending to out. Output space grows a step at a time: most
 * messages compress well, so reserving deflateBound() up front would hold
 * (and, for large messages, allocate) far more than is used.
 */
static int deflate_run(z_stream *z, const uint8_t *in, size_t len, ts_buf_t *out, ts_pool_t *pool)
{
    z->next_in = (Bytef *)(uintptr_t)in;
    for (;;) {
        size_t n = TS_MIN(len, (size_t)UINT_MAX);

        z->avail_in = (uInt)n;
        len -= n;
        for (;;) {
            size_t avail;
            int zrc;

            /* Z_SYNC_FLUSH wants more than 6 bytes of room, or it repeats
             * the flush marker (zlib.h). */
            if (ts_buf_room(out) < 64)
                ts_buf_reserve(out, pool, PMD_OUT_STEP);
            z->next_out = (Bytef *)ts_buf_tail(out);
            z->avail_out = (uInt)TS_MIN(ts_buf_room(out), UINT_MAX);
            avail = z->avail_out;
            zrc = deflate(z, Z_SYNC_FLUSH);
            out->len += (uint32_t)(avail - z->avail_out);
            if (zrc != Z_OK && zrc != Z_BUF_ERROR)
                return TS_ERR;
            if (z->avail_in == 0 && z->avail_out > 0)
                break;
        }
        if (len == 0)
            return TS_OK;
    }
}

int ws_pmd_deflate(ws_pmd_t *p, ws_pmd_shared_t *shared, const uint8_t *in, size_t len,
                   ts_buf_t *out, ts_pool_t *pool)
{
    static const uint8_t empty = 0x00;
    uint32_t start = out->len;
    z_stream *z;
    int rc;

    /*
     * An empty message is an empty stored block, 00 00 00 ff ff, without its
     * tail (RFC 7692 7.2.3.6). Written directly: zlib refuses a second sync
     * flush with no new input (Z_BUF_ERROR, nothing written), and after a
     * flush the stream is byte-aligned, so the block is a valid continuation
     * that leaves both windows as they were.
     */
    if (len == 0) {
        ts_buf_append(out, pool, &empty, 1);
        return TS_OK;
    }
    z = pick_deflater(p, shared);
    if (z == NULL)
        return TS_ERR;
    rc = deflate_run(z, in, len, out, pool);
    /* The flush ends with an empty stored block, 00 00 ff ff, which the
     * receiver puts back (RFC 7692 7.2.1). */
    if (rc == TS_OK && (out->len - start < 4 || memcmp(ts_buf_tail(out) - 4, pmd_tail, 4) != 0))
        rc = TS_ERR;
    if (rc == TS_OK)
        out->len -= 4;
    else
        out->len = start;
    if (p->params.server_no_context_takeover || rc != TS_OK)
        deflateReset(z);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Memory                                                                     */
/* ------------------------------------------------------------------------ */

/* zlib's own figures (zconf.h): deflate needs (1 << (windowBits + 2)) +
 * (1 << (memLevel + 9)) bytes, inflate (1 << windowBits), each plus its
 * state struct. */
size_t ws_pmd_memory(const ws_pmd_t *p)
{
    size_t m = sizeof(*p);

    if (p->inf != NULL)
        m += sizeof(z_stream) + PMD_INFLATE_STATE + ((size_t)1 << inflate_bits(p));
    if (p->def != NULL)
        m += sizeof(z_stream) + PMD_DEFLATE_STATE +
             ((size_t)1 << (p->params.server_max_window_bits + 2)) +
             ((size_t)1 << (PMD_MEM_LEVEL_CONN + 9));
    return m;
}
