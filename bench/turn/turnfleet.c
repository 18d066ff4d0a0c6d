/*
 * turnfleet.c — a fleet of TURN clients (RFC 8656 over UDP, long-term
 * credentials) and the UDP peer they talk to through their relays.
 *
 *   turnfleet -s IP:PORT -u USER -p PASS -m MODE [options]
 *
 * Every client has its own UDP socket (its own 5-tuple) and walks:
 *   Allocate without credentials -> 401 (REALM, NONCE)
 *   Allocate with USERNAME, REALM, NONCE, MESSAGE-INTEGRITY (HMAC-SHA1, key
 *     MD5(user:realm:pass)) and FINGERPRINT -> success, XOR-RELAYED-ADDRESS
 *   CreatePermission and ChannelBind (0x4000) to the peer -> READY
 * A 438 (stale nonce) takes the new nonce and asks again; a request not
 * answered is sent again with the same transaction id after 0.5 s, then
 * 1, 2, 4 s (8 s more without an answer fails the client). Success
 * answers' MESSAGE-INTEGRITY is checked (not in alloc mode, where the
 * client's own CPU is the limit).
 *
 * Modes:
 *   relay  -n clients; each streams ChannelData of -l payload bytes through
 *          its relay to the peer, which echoes every datagram back to the
 *          relay address it came from. Closed loop: -k packets in flight per
 *          client (the default). Fixed rate: -R packets/s per client, the
 *          clients' sending spread evenly over the period. The payload
 *          carries the client, a sequence number and the send time, so the
 *          round trip client -> server -> peer -> server -> client is timed.
 *          After -W seconds of warm-up it counts for -d seconds, then waits
 *          300 ms for late packets. Relayed packets/s counts what the server
 *          forwarded both ways (arrivals at the peer + arrivals at the
 *          clients); loss is the share of packets sent in the window that
 *          did not come back.
 *   alloc  -n sockets, each cycling Allocate (401) / Allocate / Refresh
 *          (LIFETIME 0) as fast as answers come; allocations/s over -d
 *          seconds after -W. Every cycle uses a new socket (a new 5-tuple,
 *          as a new client would); with -F 0 a socket's 5-tuple is used
 *          again once its allocation is gone (coturn answers that 437).
 *   idle   -n allocations (each with a permission and a channel to the
 *          peer) held at once: the server's VmRSS (-P) before and -S ms
 *          after they are all ready gives bytes per allocation.
 * Every mode deletes its allocations (Refresh LIFETIME 0) before it exits.
 *
 * Output: one line of key=value. With -P PID, the server's CPU time (all
 * threads) over the measured window, and work per server CPU-second.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/opts.h"
#include "../common/proc.h"
#include "turnbench.h"

enum {
    C_IDLE,
    C_ALLOC0, /* Allocate, no credentials: expecting 401 */
    C_ALLOC1, /* Allocate with credentials */
    C_PERM,
    C_BIND,
    C_READY,
    C_REFRESH0, /* Refresh LIFETIME 0: deleting the allocation */
    C_DONE,
    C_FAILED
};

enum { MODE_RELAY, MODE_ALLOC, MODE_IDLE };

#define CHANNEL     0x4000
#define RTO_NS      500000000ull /* doubled for each retransmission */
#define MAX_TRIES   5
#define STALL_NS    200000000ull
#define DRAIN_NS    300000000ull
#define MAX_BATCH   32
#define PKT_MAX     1400
#define DATA_MAGIC  0x7475726Eu /* "turn" */
#define NONCE_MAX   128

typedef struct {
    int fd;
    uint8_t state;
    uint8_t tries;
    uint8_t allocated; /* the server holds an allocation for this 5-tuple */
    uint8_t tid[12];
    uint16_t noncelen;
    uint8_t nonce[NONCE_MAX];
    uint64_t deadline; /* retransmission time of the request in flight; 0: none */
    struct sockaddr_in local, relay;
    /* data path */
    uint64_t seq;
    uint32_t inflight;
    uint64_t next_send;
    uint64_t last_rx;
} client_t;

/* ---- options and shared state --------------------------------------------- */

static struct sockaddr_in server, peer;
static const char *user = "bench", *pass = "secret";
static int mode = MODE_RELAY, nclients = 50, inflight_k = 4, payload = 160, pid = 0;
static int fresh_sockets = 1, setup_par = 64, settle_ms = 1000, verify = -1;
static double rate = 0, secs = 5, warmup = 1, setup_timeout = 60;

static client_t *cl;
static int ep, peer_fd;
static tb_hmac_t hmac;
static uint8_t key[16];
static char realm[128];
static size_t realmlen;
static int have_key;
static uint64_t tid_counter;
static int in_setup;        /* clients between C_ALLOC0 and C_READY */
static int stopping;        /* alloc mode: no new cycles */
static int fail_codes[700]; /* error codes that failed a client */
static uint64_t n_failed, n_retrans, n_stale, n_bad_integrity;

/* counters of the measured window */
static uint64_t t_start, t_end;
static int measuring;
static uint64_t allocs_win, allocs_all, req_win, cycles_all;
static uint64_t tx_win, rx_win, rx_arr_win, peer_arr_win, tx_all, rx_all, stall_lost, skipped;
static uint64_t bad_data;
static tb_hist_t hist;

static uint8_t scratch[MAX_BATCH][PKT_MAX + 64];

static void die(const char *what)
{
    fprintf(stderr, "turnfleet: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: turnfleet -s IP:PORT [-u USER] [-p PASS] -m relay|alloc|idle [-n clients]\n"
            "       [-k inflight | -R pkts_per_s_per_client] [-l payload] [-d secs] [-W warmup]\n"
            "       [-P server_pid] [-S settle_ms] [-c setup_parallel] [-F 0|1] [-V 0|1] [-T secs] [-A 0|1]\n");
    exit(2);
}

/* ---- requests ------------------------------------------------------------ */

static void new_tid(client_t *c)
{
    uint64_t n = ++tid_counter;
    uint32_t idx = (uint32_t)(c - cl);

    tb_put32(c->tid, idx);
    memcpy(c->tid + 4, &n, 8);
}

static void add_auth(tb_msg_t *m, client_t *c)
{
    tb_attr(m, STUN_A_USERNAME, user, strlen(user));
    tb_attr(m, STUN_A_REALM, realm, realmlen);
    tb_attr(m, STUN_A_NONCE, c->nonce, c->noncelen);
    if (tb_integrity(m, &hmac, key) != 0) {
        fprintf(stderr, "turnfleet: HMAC failed\n");
        exit(1);
    }
}

/* Build and send the request of c's state: with a new transaction id, or
 * as a retransmission (the same id, hence the same bytes). */
static void send_request_as(client_t *c, uint64_t now, int again)
{
    uint8_t buf[512];
    tb_msg_t m;

    if (!again)
        new_tid(c);
    switch (c->state) {
    case C_ALLOC0:
        tb_begin(&m, buf, STUN_ALLOCATE_REQ, c->tid);
        tb_attr32(&m, STUN_A_REQ_TRANSPORT, 17u << 24);
        break;
    case C_ALLOC1:
        tb_begin(&m, buf, STUN_ALLOCATE_REQ, c->tid);
        tb_attr32(&m, STUN_A_REQ_TRANSPORT, 17u << 24);
        add_auth(&m, c);
        break;
    case C_PERM:
        tb_begin(&m, buf, STUN_PERMISSION_REQ, c->tid);
        tb_attr_xaddr(&m, STUN_A_XOR_PEER, &peer);
        add_auth(&m, c);
        break;
    case C_BIND:
        tb_begin(&m, buf, STUN_CHANNELBIND_REQ, c->tid);
        tb_attr32(&m, STUN_A_CHANNEL_NUMBER, (uint32_t)CHANNEL << 16);
        tb_attr_xaddr(&m, STUN_A_XOR_PEER, &peer);
        add_auth(&m, c);
        break;
    case C_REFRESH0:
        tb_begin(&m, buf, STUN_REFRESH_REQ, c->tid);
        tb_attr32(&m, STUN_A_LIFETIME, 0);
        add_auth(&m, c);
        break;
    default:
        return;
    }
    tb_fingerprint(&m);
    if (send(c->fd, buf, m.len, 0) < 0 && errno != EAGAIN && errno != ENOBUFS &&
        errno != ECONNREFUSED)
        die("send");
    c->deadline = now + (RTO_NS << (again ? c->tries : 0));
    if (measuring)
        req_win++;
}

static void send_request(client_t *c, uint64_t now)
{
    send_request_as(c, now, 0);
}

/*
 * Each new socket binds a new loopback address 127.X.Y.Z (X from 1), from a
 * counter that starts at a random place: a server that keeps a deleted
 * allocation's 5-tuple for a while (coturn answers 437 to a new Allocate
 * from it) never sees a 5-tuple again in one run, nor likely from the run
 * before. -A 0: 127.0.0.1 and a kernel-chosen port.
 */
static int spread_ips = 1;
static uint32_t ip_counter;

static void bind_source(int fd)
{
    struct sockaddr_in a;
    uint32_t v, x, y, z;

    if (!spread_ips)
        return;
    do {
        v = ip_counter++ % (200u * 65536u);
        x = 1 + v / 65536u;
        y = (v / 256u) % 256u;
        z = v % 256u;
    } while (z == 0 || z == 255);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(127u << 24 | x << 16 | y << 8 | z);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        die("bind 127.x.y.z");
}

static void open_socket(client_t *c)
{
    socklen_t sl = sizeof(c->local);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(c - cl)};

    c->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0)
        die("socket");
    bind_source(c->fd);
    if (connect(c->fd, (struct sockaddr *)&server, sizeof(server)) != 0)
        die("connect");
    if (getsockname(c->fd, (struct sockaddr *)&c->local, &sl) != 0)
        die("getsockname");
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        die("epoll_ctl");
}

static void close_socket(client_t *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

static void start_client(client_t *c, uint64_t now)
{
    if (c->fd < 0)
        open_socket(c);
    c->state = C_ALLOC0;
    c->tries = 0;
    c->allocated = 0;
    in_setup++;
    send_request(c, now);
}

static void fail_client(client_t *c, int code)
{
    if (c->state >= C_ALLOC0 && c->state < C_READY)
        in_setup--;
    c->state = C_FAILED;
    c->deadline = 0;
    n_failed++;
    if (code > 0 && code < 700)
        fail_codes[code]++;
}

static void set_state(client_t *c, int st, uint64_t now)
{
    int was_setup = c->state >= C_ALLOC0 && c->state < C_READY;
    int is_setup = st >= C_ALLOC0 && st < C_READY;

    in_setup += is_setup - was_setup;
    c->state = (uint8_t)st;
    c->tries = 0;
    c->deadline = 0;
    if (st != C_READY && st != C_DONE && st != C_FAILED && st != C_IDLE)
        send_request(c, now);
}

static int take_nonce(client_t *c, const tb_view_t *v)
{
    size_t len = 0, rl = 0;
    const uint8_t *n = tb_find(v, STUN_A_NONCE, &len);
    const uint8_t *r = tb_find(v, STUN_A_REALM, &rl);

    if (n == NULL || len > NONCE_MAX)
        return -1;
    memcpy(c->nonce, n, len);
    c->noncelen = (uint16_t)len;
    if (r != NULL && (!have_key || rl != realmlen || memcmp(r, realm, rl) != 0)) {
        if (rl >= sizeof(realm))
            return -1;
        memcpy(realm, r, rl);
        realmlen = rl;
        if (tb_lt_key(user, realm, realmlen, pass, key) != 0)
            return -1;
        have_key = 1;
    }
    return have_key ? 0 : -1;
}

/* After the allocation is gone (Refresh 0 answered, or never made). */
static void cycle_done(client_t *c, uint64_t now)
{
    c->allocated = 0;
    if (mode == MODE_ALLOC && !stopping) {
        cycles_all++;
        if (fresh_sockets) {
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            close_socket(c);
        }
        c->state = C_IDLE;
        start_client(c, now);
        return;
    }
    set_state(c, C_DONE, now);
}

static void on_stun(client_t *c, const uint8_t *data, size_t len, uint64_t now)
{
    tb_view_t v;
    int code;

    if (tb_parse(&v, data, len) != 0 || memcmp(v.p + 8, c->tid, 12) != 0)
        return; /* not the answer to the request in flight (a late duplicate) */
    if ((v.type & 0x0110) == 0x0110) { /* error response */
        code = tb_error_code(&v);
        if (c->state == C_ALLOC0 && code == 401) {
            if (take_nonce(c, &v) != 0) {
                fail_client(c, 401);
                return;
            }
            set_state(c, C_ALLOC1, now);
            return;
        }
        if (code == 438 && c->tries < MAX_TRIES) { /* stale nonce: the answer carries a new one */
            n_stale++;
            if (take_nonce(c, &v) != 0) {
                fail_client(c, 438);
                return;
            }
            c->tries++;
            send_request(c, now);
            return;
        }
        if (c->state == C_REFRESH0 && code == 437) { /* already gone */
            cycle_done(c, now);
            return;
        }
        if (c->state == C_ALLOC0 && stopping) {
            set_state(c, C_DONE, now);
            return;
        }
        fail_client(c, code);
        return;
    }
    if ((v.type & 0x0110) != 0x0100)
        return;
    if (verify && c->state != C_ALLOC0 && !tb_check_integrity(&v, &hmac, key)) {
        n_bad_integrity++;
        fail_client(c, 0);
        return;
    }
    switch (c->state) {
    case C_ALLOC0: /* no credentials asked: go on as if allocated */
    case C_ALLOC1:
        if ((v.type & 0x3EEF) != STUN_ALLOCATE_REQ ||
            tb_get_xaddr(&v, STUN_A_XOR_RELAYED, &c->relay) != 0) {
            fail_client(c, 0);
            return;
        }
        c->allocated = 1;
        allocs_all++;
        if (measuring)
            allocs_win++;
        if (mode == MODE_ALLOC)
            set_state(c, C_REFRESH0, now);
        else
            set_state(c, C_PERM, now);
        break;
    case C_PERM:
        set_state(c, C_BIND, now);
        break;
    case C_BIND:
        set_state(c, C_READY, now);
        break;
    case C_REFRESH0:
        cycle_done(c, now);
        break;
    default:
        break;
    }
}

/* Retransmit requests whose answer is late. */
static void check_timeouts(uint64_t now)
{
    int i;

    for (i = 0; i < nclients; i++) {
        client_t *c = &cl[i];

        if (c->deadline == 0 || c->deadline > now)
            continue;
        if (c->tries + 1 >= MAX_TRIES) {
            if (c->state == C_REFRESH0) {
                set_state(c, C_DONE, now); /* it will expire on its own */
                continue;
            }
            fail_client(c, 0);
            continue;
        }
        c->tries++;
        n_retrans++;
        send_request_as(c, now, 1);
    }
}

/* ---- the data path ----------------------------------------------------------- */

/* Fill scratch[j] with one ChannelData packet of c; returns its length. */
static size_t build_data(client_t *c, int j, uint64_t now)
{
    uint8_t *p = scratch[j];
    uint32_t idx = (uint32_t)(c - cl);

    tb_put16(p, CHANNEL);
    tb_put16(p + 2, (uint16_t)payload);
    memcpy(p + 4, &idx, 4);
    tb_put32(p + 8, DATA_MAGIC);
    memcpy(p + 12, &c->seq, 8);
    memcpy(p + 20, &now, 8);
    c->seq++;
    tx_all++;
    if (now >= t_start && now < t_end)
        tx_win++;
    return 4 + (size_t)payload;
}

static void send_data(client_t *c, int n, uint64_t now)
{
    struct mmsghdr msgs[MAX_BATCH];
    struct iovec iov[MAX_BATCH];
    int j, sent;

    if (n > MAX_BATCH)
        n = MAX_BATCH;
    for (j = 0; j < n; j++) {
        tb_mmsg_set(&msgs[j], &iov[j], scratch[j], build_data(c, j, now));
    }
    sent = sendmmsg(c->fd, msgs, (unsigned)n, MSG_DONTWAIT);
    if (sent < 0)
        sent = 0;
    c->inflight += (uint32_t)sent;
    if (sent < n) { /* not sent after all */
        tx_all -= (uint64_t)(n - sent);
        if (now >= t_start && now < t_end)
            tx_win -= (uint64_t)(n - sent);
        c->seq -= (uint64_t)(n - sent);
    }
}

static void on_data(client_t *c, const uint8_t *p, size_t len, uint64_t now)
{
    uint32_t idx, magic;
    uint64_t ts;

    if (len < 28 || tb_get16(p) != CHANNEL || tb_get16(p + 2) + 4u > len) {
        bad_data++;
        return;
    }
    memcpy(&idx, p + 4, 4);
    magic = tb_get32(p + 8);
    memcpy(&ts, p + 20, 8);
    if (idx != (uint32_t)(c - cl) || magic != DATA_MAGIC || ts > now) {
        bad_data++;
        return;
    }
    rx_all++;
    if (c->inflight > 0)
        c->inflight--;
    c->last_rx = now;
    if (now >= t_start && now < t_end)
        rx_arr_win++;
    if (ts >= t_start && ts < t_end) {
        rx_win++;
        tb_hist_add(&hist, now - ts);
    }
}

/* Client socket readable: answers and relayed data. */
static void on_client(client_t *c, uint64_t now, int sending)
{
    struct mmsghdr msgs[MAX_BATCH];
    struct iovec iov[MAX_BATCH];
    static uint8_t rx[MAX_BATCH][PKT_MAX + 64];
    int n, j, data = 0;

    for (j = 0; j < MAX_BATCH; j++) {
        tb_mmsg_set(&msgs[j], &iov[j], rx[j], sizeof(rx[j]));
    }
    n = recvmmsg(c->fd, msgs, MAX_BATCH, MSG_DONTWAIT, NULL);
    for (j = 0; j < n; j++) {
        const uint8_t *p = rx[j];
        size_t len = msgs[j].msg_len;

        if (len >= 4 && p[0] >= 0x40 && p[0] <= 0x7F) {
            on_data(c, p, len, now);
            data++;
        } else {
            on_stun(c, p, len, now);
        }
    }
    /* Closed loop: one new packet for each that came back. */
    if (data > 0 && sending && rate <= 0 && c->state == C_READY)
        send_data(c, data, now);
}

/* The peer: echo every datagram to where it came from. */
static void on_peer(uint64_t now)
{
    struct mmsghdr msgs[MAX_BATCH];
    struct iovec iov[MAX_BATCH];
    struct sockaddr_in from[MAX_BATCH];
    static uint8_t buf[MAX_BATCH][PKT_MAX + 64];
    int n, j, round;

    for (round = 0; round < 8; round++) {
        for (j = 0; j < MAX_BATCH; j++) {
            tb_mmsg_set(&msgs[j], &iov[j], buf[j], sizeof(buf[j]));
            msgs[j].msg_hdr.msg_name = &from[j];
            msgs[j].msg_hdr.msg_namelen = sizeof(from[j]);
        }
        n = recvmmsg(peer_fd, msgs, MAX_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return;
        if (now >= t_start && now < t_end)
            peer_arr_win += (uint64_t)n;
        for (j = 0; j < n; j++)
            iov[j].iov_len = msgs[j].msg_len;
        sendmmsg(peer_fd, msgs, (unsigned)n, MSG_DONTWAIT);
        if (n < MAX_BATCH)
            return;
    }
}

/* ---- the loop ------------------------------------------------------------------ */

static uint64_t last_check;

/* One turn of the loop: wait at most timeout_ns, handle what came. */
static void poll_once(uint64_t timeout_ns, int sending)
{
    struct epoll_event evs[256];
    struct timespec ts = {(time_t)(timeout_ns / 1000000000u), (long)(timeout_ns % 1000000000u)};
    int n, i;
    uint64_t now;

    n = epoll_pwait2(ep, evs, 256, &ts, NULL);
    now = tb_now_ns();
    for (i = 0; i < n; i++) {
        uint32_t id = evs[i].data.u32;

        if (id == (uint32_t)nclients)
            on_peer(now);
        else if (cl[id].fd >= 0)
            on_client(&cl[id], now, sending);
    }
    if (now - last_check > 20000000ull) {
        last_check = now;
        check_timeouts(now);
    }
}

/* Take clients through set-up, at most setup_par at once, until every one
 * is READY or FAILED. */
static void setup_all(void)
{
    uint64_t t0 = tb_now_ns(), deadline = t0 + (uint64_t)(setup_timeout * 1e9);
    int next = 0, i;

    for (;;) {
        uint64_t now = tb_now_ns();
        int pending = 0;

        while (next < nclients && in_setup < setup_par)
            start_client(&cl[next++], now);
        for (i = 0; i < next; i++)
            if (cl[i].state != C_READY && cl[i].state != C_FAILED)
                pending++;
        if (next == nclients && pending == 0)
            break;
        if (now > deadline) {
            fprintf(stderr, "turnfleet: set-up not done after %.0f s (%d pending)\n",
                    setup_timeout, pending);
            for (i = 0; i < nclients; i++)
                if (cl[i].state != C_READY && cl[i].state != C_FAILED)
                    fail_client(&cl[i], 0);
            break;
        }
        poll_once(5000000, 0);
    }
}

/* Delete every allocation (Refresh LIFETIME 0), at most setup_par at once
 * (a burst would overflow the server's socket buffer), waiting at most 5 s. */
static void teardown(void)
{
    uint64_t deadline = tb_now_ns() + 5000000000ull;
    int i, next = 0, pending;

    stopping = 1;
    for (;;) {
        uint64_t now = tb_now_ns();

        pending = 0;
        for (i = 0; i < nclients; i++)
            if (cl[i].state != C_DONE && cl[i].state != C_FAILED && cl[i].state != C_IDLE &&
                cl[i].state != C_READY)
                pending++;
        for (; next < nclients && pending < setup_par; next++) {
            client_t *c = &cl[next];

            if (c->state == C_READY || (c->state == C_FAILED && c->allocated) ||
                c->state == C_PERM || c->state == C_BIND) {
                set_state(c, C_REFRESH0, now);
                pending++;
            }
        }
        if ((pending == 0 && next == nclients) || now > deadline)
            break;
        poll_once(5000000, 0);
    }
}

static int count_state(int st)
{
    int i, n = 0;

    for (i = 0; i < nclients; i++)
        n += cl[i].state == st;
    return n;
}

static void print_failures(void)
{
    int i;

    printf(" failed=%llu retransmits=%llu stale_nonce=%llu bad_integrity=%llu",
           (unsigned long long)n_failed, (unsigned long long)n_retrans,
           (unsigned long long)n_stale, (unsigned long long)n_bad_integrity);
    for (i = 0; i < 700; i++)
        if (fail_codes[i])
            printf(" failed_%d=%d", i, fail_codes[i]);
}

/* The measured window: warm-up, then secs; work() is one turn of the mode. */
static void run_window(void (*work)(uint64_t now), int64_t *cpu0, int64_t *cpu1, double *self)
{
    uint64_t now = tb_now_ns();
    double s0 = 0;

    t_start = now + (uint64_t)(warmup * 1e9);
    t_end = t_start + (uint64_t)(secs * 1e9);
    measuring = 0;
    for (;;) {
        now = tb_now_ns();
        if (!measuring && now >= t_start) {
            measuring = 1;
            *cpu0 = pid ? tb_proc_cpu_ns(pid) : -1;
            s0 = proc_self_cpu_s();
        }
        if (now >= t_end) {
            *cpu1 = pid ? tb_proc_cpu_ns(pid) : -1;
            *self = proc_self_cpu_s() - s0;
            measuring = 0;
            break;
        }
        work(now);
    }
}

/* relay mode, one turn */
static uint32_t rr;
static uint64_t period_ns, last_stall_check;

static void relay_turn(uint64_t now)
{
    int i;

    if (rate > 0) {
        /* Clients are in next_send order (same period, staggered start): send
         * for every one that is due, round robin. */
        int budget = nclients * 4;

        while (budget-- > 0) {
            client_t *c = &cl[rr];

            if (c->state != C_READY) {
                rr = (rr + 1) % (uint32_t)nclients;
                continue;
            }
            if (c->next_send > now)
                break;
            if (now - c->next_send > 100000000ull) { /* more than 100 ms behind: skip */
                uint64_t behind = (now - c->next_send) / period_ns;
                skipped += behind;
                c->next_send += behind * period_ns;
            }
            send_data(c, 1, now);
            c->next_send += period_ns;
            rr = (rr + 1) % (uint32_t)nclients;
        }
        {
            client_t *c = &cl[rr];
            int64_t wait = c->state == C_READY ? (int64_t)(c->next_send - now) : 0;
            poll_once(wait <= 0 ? 0 : wait > 1000000 ? 1000000 : (uint64_t)wait, 1);
        }
    } else {
        poll_once(1000000, 1);
    }
    /* Closed loop: a client whose packets were all lost would wait forever. */
    if (rate <= 0 && now - last_stall_check > 50000000ull) {
        now = tb_now_ns(); /* last_rx may be later than the turn's start */
        last_stall_check = now;
        for (i = 0; i < nclients; i++) {
            client_t *c = &cl[i];

            if (c->state == C_READY && c->inflight > 0 && now - c->last_rx > STALL_NS) {
                stall_lost += c->inflight;
                c->inflight = 0;
                c->last_rx = now;
                send_data(c, inflight_k, now);
            }
        }
    }
}

static void alloc_turn(uint64_t now)
{
    (void)now;
    poll_once(1000000, 0);
}

int main(int argc, char **argv)
{
    const char *server_arg = NULL, *mode_arg = "relay";
    const opt_t table[] = {{'s', OPT_STR, &server_arg},
                           {'u', OPT_STR, &user},
                           {'p', OPT_STR, &pass},
                           {'m', OPT_STR, &mode_arg},
                           {'n', OPT_INT, &nclients},
                           {'k', OPT_INT, &inflight_k},
                           {'R', OPT_DOUBLE, &rate},
                           {'l', OPT_INT, &payload},
                           {'d', OPT_DOUBLE, &secs},
                           {'W', OPT_DOUBLE, &warmup},
                           {'P', OPT_INT, &pid},
                           {'S', OPT_INT, &settle_ms},
                           {'c', OPT_INT, &setup_par},
                           {'F', OPT_INT, &fresh_sockets},
                           {'A', OPT_INT, &spread_ips},
                           {'V', OPT_INT, &verify},
                           {'T', OPT_DOUBLE, &setup_timeout},
                           {0, OPT_FLAG, NULL}};
    int i;
    int64_t cpu0 = -1, cpu1 = -1;
    double self = 0, dur, scpu;

    if (opts_parse(argc, argv, 1, table) < 0 || server_arg == NULL ||
        tb_parse_addr(server_arg, &server) != 0)
        usage();
    if (strcmp(mode_arg, "relay") == 0)
        mode = MODE_RELAY;
    else if (strcmp(mode_arg, "alloc") == 0)
        mode = MODE_ALLOC;
    else if (strcmp(mode_arg, "idle") == 0)
        mode = MODE_IDLE;
    else
        usage();
    if (nclients < 1 || payload < 24 || payload > PKT_MAX || inflight_k < 1 ||
        inflight_k > MAX_BATCH || setup_par < 1 || secs <= 0)
        usage();
    if (verify < 0)
        verify = mode != MODE_ALLOC;
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0); /* wake within 1 us of the next send */
    proc_raise_nofile(); /* one socket per client */
    {
        uint64_t seed = tb_now_ns() ^ ((uint64_t)getpid() << 32);

        ip_counter = (uint32_t)(seed * 0x9E3779B97F4A7C15ull >> 40);
    }
    if (tb_hmac_init(&hmac) != 0) {
        fprintf(stderr, "turnfleet: cannot set up HMAC-SHA1\n");
        return 1;
    }
    ep = epoll_create1(0);
    if (ep < 0)
        die("epoll_create1");
    cl = calloc((size_t)nclients, sizeof(*cl));
    if (cl == NULL)
        die("calloc");
    for (i = 0; i < nclients; i++)
        cl[i].fd = -1;

    /* The peer. */
    {
        socklen_t sl = sizeof(peer);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)nclients};
        int buf = 4 << 20;

        peer_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        memset(&peer, 0, sizeof(peer));
        peer.sin_family = AF_INET;
        peer.sin_addr.s_addr = server.sin_addr.s_addr;
        if (peer_fd < 0 || bind(peer_fd, (struct sockaddr *)&peer, sizeof(peer)) != 0 ||
            getsockname(peer_fd, (struct sockaddr *)&peer, &sl) != 0)
            die("peer socket");
        setsockopt(peer_fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
        setsockopt(peer_fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
        if (epoll_ctl(ep, EPOLL_CTL_ADD, peer_fd, &ev) != 0)
            die("epoll_ctl");
    }

    if (mode == MODE_ALLOC) {
        uint64_t now = tb_now_ns();

        for (i = 0; i < nclients; i++)
            start_client(&cl[i], now);
        run_window(alloc_turn, &cpu0, &cpu1, &self);
        teardown();
        dur = (t_end - t_start) / 1e9;
        scpu = cpu0 >= 0 && cpu1 >= 0 ? (cpu1 - cpu0) / 1e9 : -1;
        printf("mode=alloc sockets=%d fresh_sockets=%d allocations_per_s=%.0f requests_per_s=%.0f "
               "allocations_all=%llu cycles_all=%llu secs=%.3f client_cpu_pct=%.1f",
               nclients, fresh_sockets, allocs_win / dur, req_win / dur,
               (unsigned long long)allocs_all, (unsigned long long)cycles_all, dur,
               100 * self / dur);
        if (scpu > 0)
            printf(" server_cpu_s=%.3f server_cpu_pct=%.1f allocations_per_cpu_s=%.0f", scpu,
                   100 * scpu / dur, allocs_win / scpu);
        print_failures();
        printf("\n");
        return allocs_win > 0 && n_failed == 0 ? 0 : 1;
    }

    if (mode == MODE_IDLE) {
        long before = -1, after = -1;
        uint64_t t0;
        double setup_s;
        int ready;

        if (pid)
            before = tb_proc_rss_kib(pid);
        t0 = tb_now_ns();
        setup_all();
        setup_s = (tb_now_ns() - t0) / 1e9;
        ready = count_state(C_READY);
        {
            uint64_t until = tb_now_ns() + (uint64_t)settle_ms * 1000000ull;

            while (tb_now_ns() < until)
                poll_once(10000000, 0);
        }
        if (pid)
            after = tb_proc_rss_kib(pid);
        teardown();
        printf("mode=idle allocations=%d ready=%d setup_s=%.3f", nclients, ready, setup_s);
        if (pid && before >= 0 && after >= 0 && ready > 0)
            printf(" rss_before_kib=%ld rss_after_kib=%ld bytes_per_alloc=%.0f", before, after,
                   (after - before) * 1024.0 / ready);
        print_failures();
        printf("\n");
        return ready == nclients ? 0 : 1;
    }

    /* relay */
    setup_all();
    {
        int ready = count_state(C_READY);
        uint64_t now = tb_now_ns();

        if (ready == 0) {
            printf("mode=relay clients=%d ready=0", nclients);
            print_failures();
            printf("\n");
            return 1;
        }
        t_start = t_end = UINT64_MAX; /* nothing counts before run_window sets them */
        if (rate > 0) {
            period_ns = (uint64_t)(1e9 / rate);
            for (i = 0; i < nclients; i++) {
                cl[i].next_send = now + period_ns * (uint64_t)i / (uint64_t)nclients;
                cl[i].last_rx = now;
            }
        } else {
            for (i = 0; i < nclients; i++) {
                if (cl[i].state != C_READY)
                    continue;
                cl[i].last_rx = now;
                send_data(&cl[i], inflight_k, now);
            }
        }
        run_window(relay_turn, &cpu0, &cpu1, &self);
        /* Late packets of the window. */
        {
            uint64_t until = tb_now_ns() + DRAIN_NS;

            while (tb_now_ns() < until)
                poll_once(5000000, 0);
        }
        teardown();
        dur = (t_end - t_start) / 1e9;
        scpu = cpu0 >= 0 && cpu1 >= 0 ? (cpu1 - cpu0) / 1e9 : -1;
        printf("mode=relay clients=%d ready=%d inflight=%d rate_per_client=%.0f payload=%d "
               "relayed_pps=%.0f roundtrips_per_s=%.0f sent_per_s=%.0f loss_pct=%.4f "
               "rtt_p50_us=%.1f rtt_p99_us=%.1f rtt_p999_us=%.1f rtt_max_us=%.1f rtt_mean_us=%.1f "
               "tx_win=%llu rx_win=%llu stall_lost=%llu skipped=%llu bad_data=%llu secs=%.3f "
               "client_cpu_pct=%.1f",
               nclients, ready, rate > 0 ? 0 : inflight_k, rate, payload,
               (peer_arr_win + rx_arr_win) / dur, rx_arr_win / dur, tx_win / dur,
               tx_win ? 100.0 * (double)(tx_win > rx_win ? tx_win - rx_win : 0) / tx_win : 0,
               tb_hist_quantile_us(&hist, 0.50), tb_hist_quantile_us(&hist, 0.99),
               tb_hist_quantile_us(&hist, 0.999), hist.max_ns / 1000.0,
               hist.total ? hist.sum_us / hist.total : 0, (unsigned long long)tx_win,
               (unsigned long long)rx_win, (unsigned long long)stall_lost,
               (unsigned long long)skipped, (unsigned long long)bad_data, dur, 100 * self / dur);
        if (scpu > 0)
            printf(" server_cpu_s=%.3f server_cpu_pct=%.1f relayed_per_cpu_s=%.0f", scpu,
                   100 * scpu / dur, (peer_arr_win + rx_arr_win) / scpu);
        (void)now;
        print_failures();
        printf("\n");
        return ready == nclients && rx_win > 0 ? 0 : 1;
    }
}
