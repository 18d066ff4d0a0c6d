/*
 * utf8.h — incremental UTF-8 validation (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). The state carries a partial code
 * point across calls, so a text message is checked as its bytes arrive and
 * fails at the first byte that cannot be part of valid UTF-8 — even mid-frame
 * and across TCP reads.
 */
#ifndef TS_WS_UTF8_H
#define TS_WS_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define WS_UTF8_ACCEPT 0u
#define WS_UTF8_REJECT 1u

/*
 * Feed n bytes. *state starts as WS_UTF8_ACCEPT; returns the new state:
 * WS_UTF8_REJECT as soon as the input cannot be valid UTF-8 (it stays
 * rejected), WS_UTF8_ACCEPT at a code point boundary, anything else in the
 * middle of a code point. ASCII runs are checked several bytes at a time.
 */
uint32_t ws_utf8_feed(uint32_t *state, const uint8_t *p, size_t n);

/* Is the whole of p[0..n) valid UTF-8? */
int ws_utf8_valid(const uint8_t *p, size_t n);

#endif
