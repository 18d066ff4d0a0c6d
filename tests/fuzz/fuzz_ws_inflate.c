/*
 * fuzz_ws_inflate.c — permessage-deflate decompression of arbitrary bytes,
 * and compression round trips. The first byte picks the mode, the
 * parameters, the message limit and the fragment size. Checked:
 *   - raw input: the result is OK, LIMIT or PROTO; a message's output never
 *     passes its limit, and the output buffer never grows past twice the
 *     limit (or one pool chunk); after any message — good, corrupt or too
 *     big — the next message inflates correctly ("Hello");
 *   - round trip: what ws_pmd_deflate makes, ws_pmd_inflate gives back
 *     exactly, in any fragmentation, twice in a row (context takeover or
 *     not); with a limit one byte short it ends with LIMIT.
 */
#include "core/buf.h"
#include "core/common.h"
#include "ws/deflate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static const uint8_t hello_deflated[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};

static ts_pool_t pool;
static ws_pmd_shared_t *shared;

/* Inflate a message in fragments of step bytes. */
static int inflate_msg(ws_pmd_t *p, const uint8_t *in, size_t n, size_t step, ts_buf_t *out,
                       size_t max)
{
    size_t fed = 0;
    int rc;

    do {
        size_t k = TS_MIN(step, n - fed);
        rc = ws_pmd_inflate(p, in + fed, k, fed + k == n, out, &pool, max);
        fed += k;
    } while (rc == TS_OK && fed < n);
    return rc;
}

static void raw_mode(const uint8_t *d, size_t n, uint8_t ctl)
{
    static const size_t maxes[] = {0, 1, 5, 100, 4096, 65536, 1 << 20, 16 << 20};
    ws_pmd_params_t prm = {1, (uint8_t)(ctl & 1), 15, (uint8_t)(8 + ((ctl >> 1) & 7))};
    size_t max = maxes[(ctl >> 4) & 7], step = (ctl & 0x80) ? n + 1 : 1 + (n / 7);
    ws_pmd_t *p = ws_pmd_new(&prm);
    ts_buf_t out = TS_BUF_INIT;
    int rc;

    rc = inflate_msg(p, d, n, step ? step : 1, &out, max);
    CHECK(rc == TS_OK || rc == TS_ERR_LIMIT || rc == TS_ERR_PROTO);
    CHECK(out.len <= max);
    CHECK(out.cap <= TS_MAX((size_t)TS_POOL_CHUNK, 2 * max));
    ts_buf_release(&out, &pool);

    /* Whatever happened, the connection's next message is fine. */
    CHECK(inflate_msg(p, hello_deflated, sizeof(hello_deflated), 3, &out, 5) == TS_OK);
    CHECK(out.len == 5 && memcmp(ts_buf_head(&out), "Hello", 5) == 0);
    ts_buf_release(&out, &pool);
    ws_pmd_free(p);
}

static void round_trip_mode(const uint8_t *d, size_t n, uint8_t ctl)
{
    int takeover = ctl & 1;
    ws_pmd_params_t tx_prm = {(uint8_t)!takeover, 0, (uint8_t)(9 + ((ctl >> 1) % 7)), 15};
    ws_pmd_params_t rx_prm = {1, (uint8_t)!takeover, 15, 15};
    ws_pmd_t *tx = ws_pmd_new(&tx_prm), *rx = ws_pmd_new(&rx_prm);
    size_t step = 1 + ((size_t)ctl * 13) % 97;

    for (int round = 0; round < 2; round++) {
        ts_buf_t z = TS_BUF_INIT, out = TS_BUF_INIT;

        CHECK(ws_pmd_deflate(tx, shared, d, n, &z, &pool) == TS_OK);
        CHECK(z.len >= 1);
        CHECK(inflate_msg(rx, (const uint8_t *)ts_buf_head(&z), z.len, step, &out, n) == TS_OK);
        CHECK(out.len == n && (n == 0 || memcmp(ts_buf_head(&out), d, n) == 0));
        ts_buf_release(&out, &pool);
        if (n > 0 && round == 1) {
            /* One byte short: LIMIT, on a fresh receiver (the context the
             * first message left is the same as the sender's). */
            ws_pmd_t *rx2 = ws_pmd_new(&rx_prm);
            ts_buf_t z1 = TS_BUF_INIT;
            ws_pmd_params_t fresh = tx_prm;
            ws_pmd_t *tx2;

            fresh.server_no_context_takeover = 1;
            tx2 = ws_pmd_new(&fresh);
            CHECK(ws_pmd_deflate(tx2, shared, d, n, &z1, &pool) == TS_OK);
            CHECK(inflate_msg(rx2, (const uint8_t *)ts_buf_head(&z1), z1.len, step, &out, n - 1) ==
                  TS_ERR_LIMIT);
            CHECK(out.len <= n - 1);
            ts_buf_release(&out, &pool);
            ts_buf_release(&z1, &pool);
            ws_pmd_free(tx2);
            ws_pmd_free(rx2);
        }
        ts_buf_release(&z, &pool);
    }
    ws_pmd_free(tx);
    ws_pmd_free(rx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode, ctl;

    if (shared == NULL) {
        ts_pool_init(&pool, 8);
        shared = ws_pmd_shared_new();
    }
    if (size < 2)
        return 0;
    mode = data[0];
    ctl = data[1];
    data += 2;
    size -= 2;
    if (mode & 1)
        round_trip_mode(data, size, ctl);
    else
        raw_mode(data, size, ctl);
    CHECK(pool.allocated == 0);
    return 0;
}
