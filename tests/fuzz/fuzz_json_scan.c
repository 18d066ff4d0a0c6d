/*
 * fuzz_json_scan.c — the signaling hot path's JSON reader against jansson,
 * an independent implementation, on the same bytes. Checked:
 *   - valid UTF-8 input: the scan accepts exactly what jansson parses as an
 *     object, except where the two differ by design (the scan's depth and
 *     member limits; numbers jansson cannot hold, which RFC 8259 allows);
 *   - every top-level member jansson sees is found by name, with the same
 *     kind, and a string member decodes to jansson's string;
 *   - quoting a decoded string and scanning it back gives the same string.
 */
#include "core/common.h"
#include "signaling/json_scan.h"
#include "ws/utf8.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define MAX_MEMBERS 32

static int kind_of(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return TS_JSON_OBJECT;
    case JSON_ARRAY: return TS_JSON_ARRAY;
    case JSON_STRING: return TS_JSON_STRING;
    case JSON_INTEGER:
    case JSON_REAL: return TS_JSON_NUMBER;
    case JSON_TRUE: return TS_JSON_TRUE;
    case JSON_FALSE: return TS_JSON_FALSE;
    default: return TS_JSON_NULL;
    }
}

static void check_roundtrip(const char *s, size_t len)
{
    static char quoted[6 * 4096 + 16], back[4096 + 1];
    char text[sizeof(quoted) + 16];
    ts_json_member_t m[1];
    size_t q, n, blen;

    if (len > 4096)
        return;
    q = ts_json_quote(quoted, sizeof(quoted), s, len);
    CHECK(q > 0);
    memcpy(text, "{\"k\":", 5);
    memcpy(text + 5, quoted, q);
    text[5 + q] = '}';
    CHECK(ts_json_scan(text, q + 6, m, 1, &n) == TS_OK && n == 1);
    CHECK(ts_json_string(&m[0], back, sizeof(back), &blen) == TS_OK);
    CHECK(blen == len && memcmp(back, s, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ts_json_member_t m[MAX_MEMBERS];
    size_t n;
    json_error_t err;
    json_t *root;
    const char *key;
    json_t *value;
    int rc = ts_json_scan((const char *)data, size, m, MAX_MEMBERS, &n);

    if (!ws_utf8_valid(data, size))
        return 0; /* the WebSocket layer never hands the reader such text */
    if (memchr(data, '\0', size) != NULL)
        return 0; /* jansson reads a raw NUL after a number as the end; JSON refuses it */
    root = json_loadb((const char *)data, size, JSON_ALLOW_NUL, &err);
    if (rc == TS_ERR_LIMIT) {
        json_decref(root);
        return 0;
    }
    if (root == NULL) {
        /* jansson refuses numbers it cannot represent and \u0000 in a
         * name; JSON has neither limit. */
        if (rc == TS_OK)
            CHECK(strstr(err.text, "too big") != NULL || strstr(err.text, "overflow") != NULL ||
                  strstr(err.text, "NUL") != NULL);
        return 0;
    }
    CHECK((rc == TS_OK) == json_is_object(root));
    if (rc == TS_OK) {
        json_object_foreach (root, key, value) {
            const ts_json_member_t *v;
            if (strlen(key) >= 255)
                continue; /* ts_json_find decodes names of up to 255 bytes */
            v = ts_json_find(m, n, key);
            CHECK(v != NULL);
            CHECK(v->kind == kind_of(value));
            if (json_is_string(value)) {
                static char out[65536];
                size_t len;
                const char *want = json_string_value(value);
                size_t wlen = json_string_length(value);
                int drc = ts_json_string(v, out, sizeof(out), &len);
                if (memchr(want, '\0', wlen) != NULL) {
                    CHECK(drc == TS_ERR_PROTO);
                } else if (wlen < sizeof(out)) {
                    CHECK(drc == TS_OK && len == wlen && memcmp(out, want, wlen) == 0);
                    check_roundtrip(out, len);
                }
            }
        }
    }
    json_decref(root);
    return 0;
}
