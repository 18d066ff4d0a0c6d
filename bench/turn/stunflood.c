/*
 * stunflood.c — a STUN Binding load generator.
 *
 *   stunflood -s 127.0.0.1:3478 [-n sockets] [-w window] [-b batch] [-d secs] [-W warmup]
 *             [-P server_pid] [-f]
 *
 * Several UDP sockets, each connected to the server, send RFC 5389 Binding
 * requests (FINGERPRINT included, a fresh transaction id each) in batches
 * with sendmmsg and read the answers in batches with recvmmsg, keeping at
 * most `window` requests outstanding per socket (a socket that hears
 * nothing for 20 ms forgets its outstanding requests: they count as lost).
 * Every answer is checked: a Binding success with the socket's transaction
 * id prefix and an XOR-MAPPED-ADDRESS equal to the socket's own address
 * (with -f, its FINGERPRINT too); anything else counts as bad.
 *
 * After `warmup` seconds it counts for `secs` seconds and prints one line of
 * key=value: requests/s, answers/s, loss, bad answers, and with -P the
 * server's CPU time over the same window (all its threads) and answers per
 * server CPU-second.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/opts.h"
#include "../common/proc.h"
#include "turnbench.h"

#define MAX_SOCKS 64
#define MAX_BATCH 64
#define REQ_LEN   28 /* header + FINGERPRINT */
#define STALL_NS  20000000ull

typedef struct {
    int fd;
    struct sockaddr_in local;
    uint64_t seq;
    int outstanding;
    uint64_t last_rx;
    uint8_t tx[MAX_BATCH][REQ_LEN];
    uint8_t rx[MAX_BATCH][256];
} sock_t;

static sock_t socks[MAX_SOCKS];

static void usage(void)
{
    fprintf(stderr, "usage: stunflood -s IP:PORT [-n sockets] [-w window] [-b batch] "
                    "[-d secs] [-W warmup_secs] [-P server_pid] [-f]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct sockaddr_in server;
    int nsocks = 8, window = 32, batch = 32, pid = 0, check_fp = 0, i;
    double secs = 5, warmup = 1;
    const char *server_arg = NULL;
    const opt_t table[] = {
        {'s', OPT_STR, &server_arg}, {'n', OPT_INT, &nsocks},    {'w', OPT_INT, &window},
        {'b', OPT_INT, &batch},      {'d', OPT_DOUBLE, &secs},   {'W', OPT_DOUBLE, &warmup},
        {'P', OPT_INT, &pid},        {'f', OPT_FLAG, &check_fp}, {0, OPT_FLAG, NULL}};

    if (opts_parse(argc, argv, 1, table) < 0 || server_arg == NULL ||
        tb_parse_addr(server_arg, &server) != 0 || nsocks < 1 || nsocks > MAX_SOCKS || batch < 1 ||
        batch > MAX_BATCH || window < 1 || secs <= 0)
        usage();

    for (i = 0; i < nsocks; i++) {
        sock_t *s = &socks[i];
        socklen_t sl = sizeof(s->local);
        int buf = 1 << 20;

        s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&server, sizeof(server)) != 0 ||
            getsockname(s->fd, (struct sockaddr *)&s->local, &sl) != 0) {
            perror("stunflood: socket");
            return 1;
        }
        setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
        setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    }

    uint64_t t0 = tb_now_ns();
    uint64_t t_start = t0 + (uint64_t)(warmup * 1e9);
    uint64_t t_end = t_start + (uint64_t)(secs * 1e9);
    uint64_t sent = 0, answered = 0, bad = 0, lost = 0, sent_all = 0, answered_all = 0;
    int64_t cpu0 = -1, cpu1 = -1;
    double self0 = 0, self1 = 0;
    int measuring = 0;
    struct mmsghdr msgs[MAX_BATCH];
    struct iovec iovs[MAX_BATCH];
    struct pollfd pfd[MAX_SOCKS];

    for (;;) {
        uint64_t now = tb_now_ns();
        int progress = 0;

        if (!measuring && now >= t_start) {
            measuring = 1;
            cpu0 = pid ? tb_proc_cpu_ns(pid) : -1;
            self0 = proc_self_cpu_s();
            t_start = now;
        }
        if (measuring && now >= t_end) {
            cpu1 = pid ? tb_proc_cpu_ns(pid) : -1;
            self1 = proc_self_cpu_s();
            t_end = now;
            break;
        }
        for (i = 0; i < nsocks; i++) {
            sock_t *s = &socks[i];
            int n, j, k;

            /* answers */
            for (j = 0; j < batch; j++) {
                tb_mmsg_set(&msgs[j], &iovs[j], s->rx[j], sizeof(s->rx[j]));
            }
            n = recvmmsg(s->fd, msgs, (unsigned)batch, MSG_DONTWAIT, NULL);
            if (n > 0) {
                progress = 1;
                s->last_rx = now;
                for (j = 0; j < n; j++) {
                    tb_view_t v;
                    struct sockaddr_in got;

                    if (tb_parse(&v, s->rx[j], msgs[j].msg_len) != 0 ||
                        v.type != STUN_BINDING_OK || tb_get32(v.p + 8) != (uint32_t)i ||
                        tb_get_xaddr(&v, STUN_A_XOR_MAPPED, &got) != 0 ||
                        got.sin_port != s->local.sin_port ||
                        got.sin_addr.s_addr != s->local.sin_addr.s_addr ||
                        (check_fp && !tb_check_fingerprint(&v))) {
                        bad++;
                        continue;
                    }
                    answered_all++;
                    if (measuring)
                        answered++;
                }
                s->outstanding -= n;
                if (s->outstanding < 0)
                    s->outstanding = 0;
            } else if (s->outstanding > 0 && now - s->last_rx > STALL_NS) {
                lost += (uint64_t)s->outstanding;
                s->outstanding = 0;
            }

            /* requests, up to the window */
            k = window - s->outstanding;
            if (k > batch)
                k = batch;
            if (k <= 0)
                continue;
            for (j = 0; j < k; j++) {
                tb_msg_t m;
                uint8_t tid[12];

                tb_put32(tid, (uint32_t)i);
                memcpy(tid + 4, &s->seq, 8);
                s->seq++;
                tb_begin(&m, s->tx[j], STUN_BINDING_REQ, tid);
                tb_fingerprint(&m);
                tb_mmsg_set(&msgs[j], &iovs[j], s->tx[j], m.len);
            }
            n = sendmmsg(s->fd, msgs, (unsigned)k, MSG_DONTWAIT);
            if (n > 0) {
                progress = 1;
                if (s->outstanding == 0)
                    s->last_rx = now; /* the stall clock starts with the first one out */
                s->outstanding += n;
                sent_all += (uint64_t)n;
                if (measuring)
                    sent += (uint64_t)n;
            }
        }
        if (!progress) {
            for (i = 0; i < nsocks; i++) {
                pfd[i].fd = socks[i].fd;
                pfd[i].events = POLLIN;
            }
            poll(pfd, (nfds_t)nsocks, 1);
        }
    }

    double dur = (t_end - t_start) / 1e9;
    double scpu = (cpu0 >= 0 && cpu1 >= 0) ? (cpu1 - cpu0) / 1e9 : -1;
    printf("requests_per_s=%.0f answers_per_s=%.0f loss_pct=%.3f bad=%llu lost_all=%llu "
           "sent_all=%llu answered_all=%llu secs=%.3f client_cpu_pct=%.1f",
           sent / dur, answered / dur, sent ? 100.0 * (double)(sent > answered ? sent - answered : 0) / sent : 0,
           (unsigned long long)bad, (unsigned long long)lost, (unsigned long long)sent_all,
           (unsigned long long)answered_all, dur, 100 * (self1 - self0) / dur);
    if (scpu > 0)
        printf(" server_cpu_s=%.3f server_cpu_pct=%.1f answers_per_cpu_s=%.0f", scpu,
               100 * scpu / dur, answered / scpu);
    printf("\n");
    return answered_all > 0 && bad == 0 ? 0 : 1;
}
