#include "core/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"

void ts_peer_from_sockaddr(ts_peer_t *p, const struct sockaddr *sa)
{
    memset(p, 0, sizeof(*p));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        p->family = AF_INET;
        p->port = ntohs(in->sin_port);
        memcpy(p->addr, &in->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        p->family = AF_INET6;
        p->port = ntohs(in6->sin6_port);
        memcpy(p->addr, &in6->sin6_addr, 16);
    }
}

void ts_peer_to_sockaddr(const ts_peer_t *p, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    if (p->family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(p->port);
        memcpy(&in->sin_addr, p->addr, 4);
        *len = sizeof(*in);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(p->port);
        memcpy(&in6->sin6_addr, p->addr, 16);
        *len = sizeof(*in6);
    }
}

const char *ts_peer_str(const ts_peer_t *p, char *buf, size_t size)
{
    char a[INET6_ADDRSTRLEN];

    if (p->family == AF_INET) {
        inet_ntop(AF_INET, p->addr, a, sizeof(a));
        snprintf(buf, size, "%s:%u", a, p->port);
    } else if (p->family == AF_INET6) {
        inet_ntop(AF_INET6, p->addr, a, sizeof(a));
        snprintf(buf, size, "[%s]:%u", a, p->port);
    } else {
        snprintf(buf, size, "-");
    }
    return buf;
}

const char *ts_sockaddr_str(const struct sockaddr *sa, char *buf, size_t size)
{
    ts_peer_t p;
    ts_peer_from_sockaddr(&p, sa);
    return ts_peer_str(&p, buf, size);
}

uint16_t ts_sockaddr_port(const struct sockaddr_storage *sa)
{
    if (sa->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
}

static void ts_sockaddr_set_port(struct sockaddr_storage *sa, uint16_t port)
{
    if (sa->ss_family == AF_INET)
        ((struct sockaddr_in *)sa)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)sa)->sin6_port = htons(port);
}

void ts_net_udp_buffers(int fd)
{
    /* A burst of datagrams must not overflow the default ~200 KiB socket
     * buffers before the worker reads them. As root the kernel's cap
     * (net.core.rmem_max) can be passed; otherwise take what it allows. */
    int size = TS_UDP_BUFFER;

    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

static int ts_net_socket(const struct sockaddr_storage *sa, int type, int reuseport)
{
    int one = 1, zero = 0;
    int fd = socket(sa->ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    if (type == SOCK_STREAM)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        goto fail;
    if (type == SOCK_DGRAM)
        ts_net_udp_buffers(fd);
    /* "[::]" means both families, as most operators expect. */
    if (sa->ss_family == AF_INET6 &&
        IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr))
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    return fd;
fail: {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}
}

int ts_net_listen_group(struct sockaddr_storage *sa, socklen_t len, int type, int n, int *fds)
{
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    int probe, i, e;

    /* The exclusive probe: refuses a port anybody holds, reuseport or not. */
    probe = ts_net_socket(sa, type, 0);
    if (probe < 0)
        return TS_ERR_IO;
    if (bind(probe, (const struct sockaddr *)sa, len) < 0 ||
        getsockname(probe, (struct sockaddr *)&bound, &blen) < 0) {
        e = errno;
        close(probe);
        errno = e;
        return TS_ERR_IO;
    }
    close(probe);
    if (ts_sockaddr_port(sa) == 0)
        ts_sockaddr_set_port(sa, ts_sockaddr_port(&bound));

    for (i = 0; i < n; i++) {
        fds[i] = ts_net_socket(sa, type, 1);
        if (fds[i] < 0)
            goto fail;
        if (bind(fds[i], (const struct sockaddr *)sa, len) < 0)
            goto fail_close;
        if (type == SOCK_STREAM && listen(fds[i], 4096) < 0)
            goto fail_close;
    }
    return TS_OK;

fail_close:
    e = errno;
    close(fds[i]);
    errno = e;
fail:
    e = errno;
    while (--i >= 0)
        close(fds[i]);
    errno = e;
    return TS_ERR_IO;
}

void ts_net_tune_accepted(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}
