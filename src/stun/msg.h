/*
 * msg.h — the STUN message codec (RFC 8489, compatible with RFC 5389 and
 * RFC 3489 clients), with the attributes TURN adds (RFC 8656, RFC 6062,
 * RFC 6156). One module for the server and the tests: parse into a struct
 * that points into the caller's buffer, build into a caller's buffer.
 * Pure: no I/O, no allocation.
 */
#ifndef TS_STUN_MSG_H
#define TS_STUN_MSG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define STUN_HEADER_LEN   20
#define STUN_MAGIC_COOKIE 0x2112A442u
#define STUN_MAX_ATTRS    40
#define STUN_MAX_UNKNOWN  16

/* Classes (RFC 8489 5): the C1/C0 bits of the message type. */
#define STUN_REQUEST    0x0000
#define STUN_INDICATION 0x0010
#define STUN_SUCCESS    0x0100
#define STUN_ERROR      0x0110

/* Methods. */
#define STUN_BINDING            0x001
#define STUN_ALLOCATE           0x003
#define STUN_REFRESH            0x004
#define STUN_SEND               0x006
#define STUN_DATA               0x007
#define STUN_CREATE_PERMISSION  0x008
#define STUN_CHANNEL_BIND       0x009
#define STUN_CONNECT            0x00a
#define STUN_CONNECTION_BIND    0x00b
#define STUN_CONNECTION_ATTEMPT 0x00c

/* Attributes: comprehension-required (< 0x8000) ... */
#define STUN_A_MAPPED_ADDRESS           0x0001
#define STUN_A_CHANGE_REQUEST           0x0003 /* RFC 5780; answered as unknown */
#define STUN_A_USERNAME                 0x0006
#define STUN_A_MESSAGE_INTEGRITY        0x0008
#define STUN_A_ERROR_CODE               0x0009
#define STUN_A_UNKNOWN_ATTRIBUTES       0x000A
#define STUN_A_CHANNEL_NUMBER           0x000C
#define STUN_A_LIFETIME                 0x000D
#define STUN_A_XOR_PEER_ADDRESS         0x0012
#define STUN_A_DATA                     0x0013
#define STUN_A_REALM                    0x0014
#define STUN_A_NONCE                    0x0015
#define STUN_A_XOR_RELAYED_ADDRESS      0x0016
#define STUN_A_REQUESTED_ADDRESS_FAMILY 0x0017
#define STUN_A_EVEN_PORT                0x0018
#define STUN_A_REQUESTED_TRANSPORT      0x0019
#define STUN_A_DONT_FRAGMENT            0x001A
#define STUN_A_MESSAGE_INTEGRITY_SHA256 0x001C
#define STUN_A_PASSWORD_ALGORITHM       0x001D
#define STUN_A_USERHASH                 0x001E
#define STUN_A_XOR_MAPPED_ADDRESS       0x0020
#define STUN_A_RESERVATION_TOKEN        0x0022
#define STUN_A_PRIORITY                 0x0024 /* ICE */
#define STUN_A_USE_CANDIDATE            0x0025 /* ICE */
#define STUN_A_CONNECTION_ID            0x002A /* RFC 6062 */
/* ... and comprehension-optional (>= 0x8000). */
#define STUN_A_ADDITIONAL_ADDRESS_FAMILY 0x8000
#define STUN_A_ADDRESS_ERROR_CODE        0x8001
#define STUN_A_PASSWORD_ALGORITHMS       0x8002
#define STUN_A_ALTERNATE_DOMAIN          0x8003
#define STUN_A_ICMP                      0x8004
#define STUN_A_SOFTWARE                  0x8022
#define STUN_A_ALTERNATE_SERVER          0x8023
#define STUN_A_FINGERPRINT               0x8028
#define STUN_A_ICE_CONTROLLED            0x8029
#define STUN_A_ICE_CONTROLLING           0x802A
#define STUN_A_RESPONSE_ORIGIN           0x802B
#define STUN_A_OTHER_ADDRESS             0x802C

#define STUN_FINGERPRINT_XOR 0x5354554eu

/* PASSWORD-ALGORITHM values (RFC 8489 18.5). */
#define STUN_PWALG_MD5    0x0001
#define STUN_PWALG_SHA256 0x0002

typedef struct {
    uint16_t type;
    uint16_t len;         /* value length without padding */
    const uint8_t *value; /* points into the message */
} stun_attr_t;

typedef struct {
    const uint8_t *buf; /* the whole message (not owned) */
    size_t len;         /* 20 + the length field */
    uint16_t type;      /* method | class */
    uint16_t method;    /* STUN_BINDING, ... */
    uint16_t cls;       /* STUN_REQUEST, ... */
    uint8_t tid[12];
    int rfc3489; /* no magic cookie: a classic STUN client */
    uint16_t nattrs;
    stun_attr_t attrs[STUN_MAX_ATTRS];
    /* Index in attrs of MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and
     * FINGERPRINT; -1 when absent. Attributes after MESSAGE-INTEGRITY(-SHA256)
     * other than the allowed ones are ignored as RFC 8489 14.5 says. */
    int16_t integrity;
    int16_t integrity_sha256;
    int16_t fingerprint;
    /* Comprehension-required attributes the codec does not know (for 420). */
    uint16_t nunknown;
    uint16_t unknown[STUN_MAX_UNKNOWN];
} stun_msg_t;

/* Quick demultiplexing test: could buf be a STUN message (top two bits 0,
 * length a multiple of 4, magic cookie)? ChannelData starts with 0x40-0x7F. */
int stun_is_message(const uint8_t *buf, size_t len);

/* The length of the STUN message or ChannelData frame at the start of a
 * stream (TCP/TLS) buffer: 0 when more bytes are needed, -1 when the bytes
 * are neither (close the connection). ChannelData is padded to 4 over streams. */
long stun_stream_frame_len(const uint8_t *buf, size_t len);

/*
 * Parse one message occupying exactly buf[0..len). TS_OK, or TS_ERR_PROTO
 * for anything malformed (the server drops it silently): bad header, length
 * not matching, an attribute overrunning, FINGERPRINT not last or wrong
 * (checked here), more than STUN_MAX_ATTRS attributes.
 */
int stun_msg_parse(const uint8_t *buf, size_t len, stun_msg_t *m);

/* The first attribute of type, or NULL (only attributes that count: see
 * the integrity rule above). */
const stun_attr_t *stun_msg_find(const stun_msg_t *m, uint16_t type);

/* Decode an (XOR-)address attribute into sa. TS_OK or TS_ERR_PROTO. */
int stun_attr_addr(const stun_msg_t *m, const stun_attr_t *a, int xored,
                   struct sockaddr_storage *sa, socklen_t *salen);
/* A 32-bit attribute (LIFETIME, REQUESTED-TRANSPORT's protocol byte...). */
int stun_attr_u32(const stun_attr_t *a, uint32_t *v);
/* ERROR-CODE: the code (300..699) and the reason slice. */
int stun_attr_error(const stun_attr_t *a, int *code, const char **reason, size_t *reason_len);

/*
 * MESSAGE-INTEGRITY (HMAC-SHA1) and MESSAGE-INTEGRITY-SHA256 (HMAC-SHA256,
 * possibly truncated to 16..32 bytes) over the message as RFC 8489 14.5/14.6
 * describe (length field adjusted). key: the long-term key (MD5 or SHA-256
 * of "user:realm:pass") or the short-term password. 1 if valid, 0 if not.
 */
int stun_check_integrity(const stun_msg_t *m, const uint8_t *key, size_t keylen);
int stun_check_integrity_sha256(const stun_msg_t *m, const uint8_t *key, size_t keylen);

/* Long-term credential keys (RFC 8489 9.2.2). out: 16 bytes (MD5) or 32 (SHA-256). */
void stun_long_term_key_md5(const char *user, size_t ulen, const char *realm, size_t rlen,
                            const char *pass, size_t plen, uint8_t out[16]);
void stun_long_term_key_sha256(const char *user, size_t ulen, const char *realm, size_t rlen,
                               const char *pass, size_t plen, uint8_t out[32]);
/* USERHASH = SHA-256("user:realm") (RFC 8489 14.4). */
void stun_userhash(const char *user, size_t ulen, const char *realm, size_t rlen, uint8_t out[32]);

/* ------------------------------------------------------------- building -- */

typedef struct {
    uint8_t *buf; /* not owned */
    size_t cap;
    size_t len;
    int overflow; /* an add did not fit: the message is unusable */
} stun_builder_t;

/* Start a message of type (method | class) with transaction id tid. */
void stun_build_init(stun_builder_t *b, uint8_t *buf, size_t cap, uint16_t type,
                     const uint8_t tid[12]);
/* Start the answer of type to req: req's transaction id, and for an RFC 3489
 * request (no magic cookie) its whole 128-bit id, the 4 bytes in the cookie's
 * place included, since a classic client matches its answer on all 16. */
void stun_build_reply(stun_builder_t *b, uint8_t *buf, size_t cap, uint16_t type,
                      const stun_msg_t *req);
/* Append an attribute; padding bytes are always zero (coturn CVE-2020-4067). */
void stun_add_attr(stun_builder_t *b, uint16_t type, const void *value, size_t len);
void stun_add_u32(stun_builder_t *b, uint16_t type, uint32_t v);
/* (XOR-)MAPPED-ADDRESS style attribute for sa. */
void stun_add_addr(stun_builder_t *b, uint16_t type, const struct sockaddr *sa, int xored);
/* ERROR-CODE with code and reason (the standard reason when NULL). */
void stun_add_error(stun_builder_t *b, int code, const char *reason);
void stun_add_unknown(stun_builder_t *b, const uint16_t *types, size_t n);
/* Integrity and fingerprint go last, in this order, each at most once. */
void stun_add_integrity(stun_builder_t *b, const uint8_t *key, size_t keylen);
void stun_add_integrity_sha256(stun_builder_t *b, const uint8_t *key, size_t keylen);
void stun_add_fingerprint(stun_builder_t *b);
/* The finished length, or 0 on overflow. */
size_t stun_build_finish(stun_builder_t *b);

/* The standard reason phrase of an error code ("Unauthorized"). */
const char *stun_error_reason(int code);

#endif
