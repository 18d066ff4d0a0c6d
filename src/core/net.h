/*
 * net.h — sockets: listening groups with SO_REUSEPORT (one socket per
 * worker, the kernel spreads connections and UDP 5-tuples across them),
 * address formatting, and the compact peer address a connection keeps.
 */
#ifndef TS_NET_H
#define TS_NET_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

/* A peer address in 20 bytes instead of sockaddr_storage's 128. */
typedef struct {
    uint8_t family; /* AF_INET or AF_INET6 */
    uint8_t pad;
    uint16_t port; /* host byte order */
    uint8_t addr[16];
} ts_peer_t;

void ts_peer_from_sockaddr(ts_peer_t *p, const struct sockaddr *sa);
void ts_peer_to_sockaddr(const ts_peer_t *p, struct sockaddr_storage *ss, socklen_t *len);

/* "1.2.3.4:5" or "[::1]:5"; buf of at least TS_ADDRSTRLEN. */
#define TS_ADDRSTRLEN 64
const char *ts_peer_str(const ts_peer_t *p, char *buf, size_t size);
const char *ts_sockaddr_str(const struct sockaddr *sa, char *buf, size_t size);

/*
 * Open n sockets of type SOCK_STREAM or SOCK_DGRAM bound to sa with
 * SO_REUSEPORT (listening, for streams). Before that the address is bound
 * once exclusively, so a port already held by another process, even one that
 * also uses SO_REUSEPORT and would otherwise silently share it, is refused
 * with EADDRINUSE. Port 0 picks a free port, the same for all n sockets; the
 * bound address is written back to *sa. On failure nothing stays open and
 * errno tells why.
 */
int ts_net_listen_group(struct sockaddr_storage *sa, socklen_t len, int type, int n, int *fds);

/* The port of an IPv4 or IPv6 address, host order. */
uint16_t ts_sockaddr_port(const struct sockaddr_storage *sa);

/* Larger kernel buffers for a busy UDP socket (listeners, TURN relays). */
#define TS_UDP_BUFFER (4 * 1024 * 1024)
void ts_net_udp_buffers(int fd);

/* Non-blocking, close-on-exec TCP options for an accepted socket. */
void ts_net_tune_accepted(int fd);

#endif
