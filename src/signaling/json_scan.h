/*
 * json_scan.h — the signaling hot path's JSON reader: one pass over a
 * message that checks it is valid JSON (RFC 8259) and lists the members of
 * its top-level object as slices of the input, with no allocation.
 *
 * Relaying an offer needs only its "type" (and for PeerJS its "dst"); the
 * rest travels as the bytes the client sent. Building a tree of every SDP
 * line with a general JSON library and printing it again cost most of a
 * relay's user time; rare messages (register) still use jansson.
 *
 * The input is expected to be UTF-8 (the WebSocket layer has checked text
 * messages); bytes >= 0x80 inside strings are passed through unchecked.
 */
#ifndef TS_SIGNALING_JSON_SCAN_H
#define TS_SIGNALING_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>

enum ts_json_kind {
    TS_JSON_STRING = 1,
    TS_JSON_NUMBER,
    TS_JSON_OBJECT,
    TS_JSON_ARRAY,
    TS_JSON_TRUE,
    TS_JSON_FALSE,
    TS_JSON_NULL,
};

/* Nesting deeper than this is refused (TS_ERR_LIMIT): the reader recurses. */
#define TS_JSON_MAX_DEPTH 64

typedef struct {
    const char *key; /* the raw key, between its quotes (escapes not decoded) */
    size_t key_len;
    const char *val; /* the raw value; a string keeps its quotes */
    size_t val_len;
    uint8_t kind;        /* enum ts_json_kind */
    uint8_t key_escaped; /* the key holds a backslash escape */
} ts_json_member_t;

/*
 * Check that s is one JSON object (whitespace around it allowed) and store
 * its members in m, in order (at most max; *n says how many). TS_OK;
 * TS_ERR_PROTO when s is not valid JSON or not an object; TS_ERR_LIMIT when
 * it nests deeper than TS_JSON_MAX_DEPTH or has more than max members.
 */
int ts_json_scan(const char *s, size_t len, ts_json_member_t *m, size_t max, size_t *n);

/* The member named key (compared after decoding escapes); the last one when
 * a name repeats, as JavaScript's JSON.parse and jansson do. NULL: none. */
const ts_json_member_t *ts_json_find(const ts_json_member_t *m, size_t n, const char *key);

/*
 * Decode a string member's value into out as UTF-8 with a NUL after it.
 * TS_OK; TS_ERR_PROTO when the member is not a string or holds \u0000;
 * TS_ERR_LIMIT when it does not fit in cap bytes (NUL included).
 */
int ts_json_string(const ts_json_member_t *v, char *out, size_t cap, size_t *len);

/* Write s as a JSON string (quotes and escapes) into out. Returns the bytes
 * written, or 0 when cap is too small (at most 6 * len + 2 is needed). */
size_t ts_json_quote(char *out, size_t cap, const char *s, size_t len);

#endif
