/*
 * sigmsg.h — the signaling messages the load generator sends: realistic offer
 * and answer SDPs (a Chrome-like audio + video session, sizes set on the
 * command line) and host/srflx ICE candidates, wrapped the way the official
 * clients wrap them (PeerJS 1.5: {type, payload, dst}; Ayame web SDK: the
 * RTCSessionDescription or {type:"candidate", ice}).
 *
 * Every message carries a stamp, 16 hex digits of CLOCK_MONOTONIC send time
 * and 8 of a per-direction sequence number, after the marker "x-sl" and one
 * separator: inside the SDP as an unknown session attribute
 * ("a=x-sl:<stamp>", ignored by every SDP parser) and at the end of a
 * candidate as an extension attribute pair (" x-sl <stamp>", RFC 8839
 * grammar). So the stamp survives any server that relays the payload, whether
 * it forwards the text as it is (Ayame) or re-serialises the JSON (PeerJS).
 * Header-only (static functions): sigload.c is built with one `cc` call.
 */
#ifndef SIGMSG_H
#define SIGMSG_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SM_STAMP_LEN 24
#define SM_MARKER    "x-sl"
#define SM_TYPES     3 /* offer, answer, candidate */
#define SM_CYCLE     6 /* offer, answer, then four candidates: one negotiation */

enum { SM_OFFER, SM_ANSWER, SM_CANDIDATE };
enum { SM_PEERJS, SM_AYAME, SM_RAW };

/* What each side sends next, by its own count of messages sent. */
static const int sm_cycle[SM_CYCLE] = {SM_OFFER,     SM_ANSWER,    SM_CANDIDATE,
                                       SM_CANDIDATE, SM_CANDIDATE, SM_CANDIDATE};

/* One message type: the text up to the end of the stamp's place and after it.
 * PeerJS texts end with `"dst":"` (the sender appends the id and `"}`). */
typedef struct {
    char *text; /* owned; the stamp is at text + stamp_off, zeros until sent */
    size_t len, stamp_off;
    size_t payload_len;   /* PeerJS: the length of the payload object */
    char type_upper[16];  /* as a PeerJS server relays it: OFFER */
    char type_needle[32]; /* a string every relayed copy contains: "type":"OFFER" */
} sm_tmpl_t;

/* JSON-escaped SDP lines ("\r\n" as the four characters \ r \ n), in the
 * order Chrome writes them; an offer or answer takes them in order until the
 * wanted size, then pads with one a=x-pad line. */
static const char *const sm_sdp_lines[] = {
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
    "s=-",
    "t=0 0",
    "a=x-sl:%s",
    "a=group:BUNDLE 0 1",
    "a=extmap-allow-mixed",
    "a=msid-semantic: WMS 5Yq8lQzWbJ3cN0xkT2gR",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
    "c=IN IP4 0.0.0.0",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=ice-ufrag:EsAw",
    "a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1",
    "a=ice-options:trickle",
    "a=fingerprint:sha-256 D1:2C:BE:AD:C4:F6:64:5C:25:16:11:9C:AF:E7:0F:73:79:36:4E:9C:1E:15:54:"
    "39:0C:06:8B:ED:96:86:00:39",
    "a=setup:actpass",
    "a=mid:0",
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=sendrecv",
    "a=msid:5Yq8lQzWbJ3cN0xkT2gR 0f7c0b4e-6f0e-4a47-b7bd-3c1e5b6f2a01",
    "a=rtcp-mux",
    "a=rtpmap:111 opus/48000/2",
    "a=rtcp-fb:111 transport-cc",
    "a=fmtp:111 minptime=10;useinbandfec=1",
    "a=rtpmap:63 red/48000/2",
    "a=fmtp:63 111/111",
    "a=rtpmap:9 G722/8000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:13 CN/8000",
    "a=rtpmap:110 telephone-event/48000",
    "a=rtpmap:126 telephone-event/8000",
    "a=ssrc:3735928559 cname:Yq8lQ5Yq8lQ5Yq8l",
    "a=ssrc:3735928559 msid:5Yq8lQzWbJ3cN0xkT2gR 0f7c0b4e-6f0e-4a47-b7bd-3c1e5b6f2a01",
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 100 101 45 46",
    "c=IN IP4 0.0.0.0",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=ice-ufrag:EsAw",
    "a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1",
    "a=ice-options:trickle",
    "a=fingerprint:sha-256 D1:2C:BE:AD:C4:F6:64:5C:25:16:11:9C:AF:E7:0F:73:79:36:4E:9C:1E:15:54:"
    "39:0C:06:8B:ED:96:86:00:39",
    "a=setup:actpass",
    "a=mid:1",
    "a=extmap:14 urn:ietf:params:rtp-hdrext:toffset",
    "a=extmap:13 urn:3gpp:video-orientation",
    "a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
    "a=sendrecv",
    "a=msid:5Yq8lQzWbJ3cN0xkT2gR 7d2e4c1a-93b8-4f5e-a0c6-2b9d8e7f6a15",
    "a=rtcp-mux",
    "a=rtcp-rsize",
    "a=rtpmap:96 VP8/90000",
    "a=rtcp-fb:96 goog-remb",
    "a=rtcp-fb:96 transport-cc",
    "a=rtcp-fb:96 ccm fir",
    "a=rtcp-fb:96 nack",
    "a=rtcp-fb:96 nack pli",
    "a=rtpmap:97 rtx/90000",
    "a=fmtp:97 apt=96",
    "a=rtpmap:98 VP9/90000",
    "a=rtcp-fb:98 goog-remb",
    "a=rtcp-fb:98 transport-cc",
    "a=rtcp-fb:98 nack pli",
    "a=fmtp:98 profile-id=0",
    "a=rtpmap:99 rtx/90000",
    "a=fmtp:99 apt=98",
    "a=rtpmap:100 H264/90000",
    "a=fmtp:100 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
    "a=rtpmap:101 rtx/90000",
    "a=fmtp:101 apt=100",
    "a=rtpmap:45 AV1/90000",
    "a=rtcp-fb:45 transport-cc",
    "a=rtpmap:46 rtx/90000",
    "a=fmtp:46 apt=45",
    "a=ssrc-group:FID 2864153917 1302157249",
    "a=ssrc:2864153917 cname:Yq8lQ5Yq8lQ5Yq8l",
    "a=ssrc:1302157249 cname:Yq8lQ5Yq8lQ5Yq8l",
};

static void sm_die(const char *what)
{
    fprintf(stderr, "sigload: %s\n", what);
    exit(1);
}

/* A JSON-escaped SDP of about `want` characters (at least the lines up to the
 * stamp); the stamp's place is filled with zeros. Returns a malloc'd string. */
static char *sm_sdp(size_t want)
{
    size_t cap = want + 512, len = 0, i, n = sizeof(sm_sdp_lines) / sizeof(sm_sdp_lines[0]);
    char *s = malloc(cap), zeros[SM_STAMP_LEN + 1];

    if (s == NULL) {
        sm_die("out of memory");
    }
    memset(zeros, '0', SM_STAMP_LEN);
    zeros[SM_STAMP_LEN] = '\0';
    len = (size_t)snprintf(s, cap, "v=0\\r\\n");
    for (i = 0; i < n; i++) {
        char line[256];
        int l = snprintf(line, sizeof(line), sm_sdp_lines[i], zeros);

        if (i > 3 && len + (size_t)l + 4 > want) {
            break;
        }
        len += (size_t)snprintf(s + len, cap - len, "%s\\r\\n", line);
    }
    if (len + 16 < want) { /* pad to the size asked for */
        size_t pad = want - len - 14;

        len += (size_t)snprintf(s + len, cap - len, "a=x-pad:");
        memset(s + len, 'p', pad);
        len += pad;
        len += (size_t)snprintf(s + len, cap - len, "\\r\\n");
    }
    s[len] = '\0';
    return s;
}

/* Fill t from the JSON text `text` (the stamp place: 24 zeros after "x-sl?"). */
static void sm_finish(sm_tmpl_t *t, char *text, const char *upper, int proto)
{
    char *m = strstr(text, SM_MARKER);

    if (m == NULL) {
        sm_die("template without stamp");
    }
    t->text = text;
    t->len = strlen(text);
    t->stamp_off = (size_t)(m - text) + strlen(SM_MARKER) + 1;
    snprintf(t->type_upper, sizeof(t->type_upper), "%s", upper);
    if (proto == SM_AYAME) {
        char lower[16];

        for (size_t i = 0; i <= strlen(upper); i++) {
            lower[i] = (char)(upper[i] | (upper[i] ? 0x20 : 0));
        }
        snprintf(t->type_needle, sizeof(t->type_needle), "\"type\":\"%s\"", lower);
    } else {
        snprintf(t->type_needle, sizeof(t->type_needle), "\"type\":\"%s\"", upper);
    }
}

/* Build the three templates for proto; sizes are the SDP lengths of the offer
 * and the answer (the JSON around them adds about 100 bytes). */
static void sm_build(sm_tmpl_t t[SM_TYPES], int proto, size_t offer_sdp, size_t answer_sdp)
{
    static const char *const cand =
        "candidate:1467250027 1 udp 2122260223 192.168.1.20 46154 typ host generation 0 "
        "ufrag EsAw network-id 1 network-cost 10 " SM_MARKER " 000000000000000000000000";
    static const char *const cid = "mc_5n0xq8jb2tk4w1z7";
    const char *kinds[2] = {"offer", "answer"};
    const char *uppers[2] = {"OFFER", "ANSWER"};
    size_t sizes[2] = {offer_sdp, answer_sdp};
    char *text, *payload;
    size_t cap;
    int i;

    for (i = 0; i < 2; i++) {
        char *sdp = sm_sdp(sizes[i]);

        cap = strlen(sdp) + 256;
        text = malloc(cap);
        payload = malloc(cap);
        if (text == NULL || payload == NULL) {
            sm_die("out of memory");
        }
        if (proto == SM_AYAME) {
            snprintf(text, cap, "{\"type\":\"%s\",\"sdp\":\"%s\"}", kinds[i], sdp);
        } else {
            snprintf(payload, cap,
                     "{\"sdp\":{\"type\":\"%s\",\"sdp\":\"%s\"},\"type\":\"media\","
                     "\"connectionId\":\"%s\"}",
                     kinds[i], sdp, cid);
            snprintf(text, cap, "{\"type\":\"%s\",\"payload\":%s,\"dst\":\"", uppers[i], payload);
            t[i].payload_len = strlen(payload);
        }
        free(payload);
        free(sdp);
        sm_finish(&t[i], text, uppers[i], proto);
    }
    cap = 512;
    text = malloc(cap);
    payload = malloc(cap);
    if (text == NULL || payload == NULL) {
        sm_die("out of memory");
    }
    if (proto == SM_AYAME) {
        snprintf(text, cap,
                 "{\"type\":\"candidate\",\"ice\":{\"candidate\":\"%s\",\"sdpMid\":\"0\","
                 "\"sdpMLineIndex\":0,\"usernameFragment\":\"EsAw\"}}",
                 cand);
    } else {
        snprintf(payload, cap,
                 "{\"candidate\":{\"candidate\":\"%s\",\"sdpMLineIndex\":0,\"sdpMid\":\"0\","
                 "\"usernameFragment\":\"EsAw\"},\"type\":\"media\",\"connectionId\":\"%s\"}",
                 cand, cid);
        snprintf(text, cap, "{\"type\":\"CANDIDATE\",\"payload\":%s,\"dst\":\"", payload);
        t[SM_CANDIDATE].payload_len = strlen(payload);
    }
    free(payload);
    sm_finish(&t[SM_CANDIDATE], text, "CANDIDATE", proto);
}

static const char sm_hex[] = "0123456789abcdef";

static void sm_put_stamp(char *p, uint64_t ts, uint32_t seq)
{
    for (int i = 15; i >= 0; i--, ts >>= 4) {
        p[i] = sm_hex[ts & 15];
    }
    for (int i = 23; i >= 16; i--, seq >>= 4) {
        p[i] = sm_hex[seq & 15];
    }
}

/* 0 and the stamp's fields, or -1 when p holds no well-formed stamp. */
static int sm_get_stamp(const char *p, uint64_t *ts, uint32_t *seq)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < SM_STAMP_LEN; i++) {
        int c = p[i], d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

        if (d < 0) {
            return -1;
        }
        v = v << 4 | (uint64_t)d;
        if (i == 15) {
            *ts = v;
            v = 0;
        }
    }
    *seq = (uint32_t)v;
    return 0;
}

#endif
