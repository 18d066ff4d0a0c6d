/* Listening groups: SO_REUSEPORT per worker, port 0, exclusivity, UDP, IPv6. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/common.h"
#include "core/net.h"

static socklen_t loopback(struct sockaddr_storage *ss, int family, uint16_t port)
{
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return sizeof(*in);
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    in6->sin6_addr = in6addr_loopback;
    return sizeof(*in6);
}

static uint16_t port_of(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void check_group(int family, int type)
{
    struct sockaddr_storage ss, again;
    socklen_t len = loopback(&ss, family, 0);
    int fds[3], more[1];
    uint16_t port;

    assert_int_equal(ts_net_listen_group(&ss, len, type, 3, fds), TS_OK);
    port = port_of(fds[0]);
    assert_true(port != 0);
    /* Port 0 resolved once: every worker's socket shares the port, and the
     * address given is updated so the caller can log it. */
    assert_int_equal(port_of(fds[1]), port);
    assert_int_equal(port_of(fds[2]), port);
    assert_int_equal(family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                       : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port),
                     port);
    /* A second group on the same port is refused, although it would join
     * the reuseport group if it were not for the exclusive probe. */
    loopback(&again, family, port);
    errno = 0;
    assert_int_equal(ts_net_listen_group(&again, len, type, 1, more), TS_ERR_IO);
    assert_int_equal(errno, EADDRINUSE);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
}

static void test_tcp_ipv4_group(void **state)
{
    check_group(AF_INET, SOCK_STREAM);
}

static void test_udp_ipv4_group(void **state)
{
    check_group(AF_INET, SOCK_DGRAM);
}

static void test_tcp_ipv6_group(void **state)
{
    check_group(AF_INET6, SOCK_STREAM);
}

static void test_udp_ipv6_group(void **state)
{
    check_group(AF_INET6, SOCK_DGRAM);
}

/* Another process's reuseport socket on the port: we must not share it. */
static void test_refuses_foreign_reuseport_socket(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len = loopback(&ss, AF_INET, 0);
    int one = 1, fds[2];
    int other = socket(AF_INET, SOCK_DGRAM, 0);

    assert_true(other >= 0);
    assert_int_equal(setsockopt(other, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
    assert_int_equal(bind(other, (struct sockaddr *)&ss, len), 0);
    loopback(&ss, AF_INET, port_of(other));
    assert_int_equal(ts_net_listen_group(&ss, len, SOCK_DGRAM, 2, fds), TS_ERR_IO);
    assert_int_equal(errno, EADDRINUSE);
    close(other);
}

static void test_peer_format(void **state)
{
    struct sockaddr_storage ss;
    ts_peer_t p;
    char buf[TS_ADDRSTRLEN];

    loopback(&ss, AF_INET, 5555);
    ts_peer_from_sockaddr(&p, (struct sockaddr *)&ss);
    assert_string_equal(ts_peer_str(&p, buf, sizeof(buf)), "127.0.0.1:5555");
    loopback(&ss, AF_INET6, 443);
    ts_peer_from_sockaddr(&p, (struct sockaddr *)&ss);
    assert_string_equal(ts_peer_str(&p, buf, sizeof(buf)), "[::1]:443");
    assert_true(sizeof(ts_peer_t) <= 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_ipv4_group),
        cmocka_unit_test(test_udp_ipv4_group),
        cmocka_unit_test(test_tcp_ipv6_group),
        cmocka_unit_test(test_udp_ipv6_group),
        cmocka_unit_test(test_refuses_foreign_reuseport_socket),
        cmocka_unit_test(test_peer_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
