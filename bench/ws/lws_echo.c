/*
 * lws_echo — a WebSocket echo server on libwebsockets (Debian's libwebsockets-dev),
 * written the way the library's documentation asks, as the benchmark's peer:
 *
 *   - one protocol, the default for connections that name none; every message
 *     is gathered from its receive callbacks (lws hands a message over in pieces
 *     of at most rx_buffer_size bytes, and a fragmented message in several frames:
 *     lws_is_first_fragment / lws_is_final_fragment) into one buffer with
 *     LWS_PRE bytes of headroom, queued, and sent back from the
 *     LWS_CALLBACK_SERVER_WRITEABLE callback, one lws_write per callback, as
 *     LWS_WRITE_BINARY or LWS_WRITE_TEXT like the message received;
 *   - when 64 messages wait, reception pauses (lws_rx_flow_control) until the
 *     queue is half empty, so a client that does not read cannot grow memory.
 *
 *   lws_echo -p PORT [-a 127.0.0.1] [-r RX_BUFFER_SIZE]
 *
 * RX_BUFFER_SIZE 0 (the default) is lws's own default (4096). tx_packet_size is
 * set to 256 KiB so that one lws_write of a large message is one send(), not
 * chunks of rx_buffer_size. Prints "listening on ADDR:PORT" on stdout once the
 * context is up. Log: errors and warnings only.
 */
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QUEUE_MAX 64

struct msg {
    struct msg *next;
    size_t len, cap;
    int binary;
    unsigned char buf[]; /* LWS_PRE bytes of headroom, then the payload */
};

struct pss {
    struct msg *head, *tail; /* complete messages waiting to be written */
    struct msg *cur;         /* the message being received */
    int queued;
    int paused;
};

static volatile sig_atomic_t interrupted;
static struct lws_context *context;

static void msgs_free(struct msg *m)
{
    while (m != NULL) {
        struct msg *next = m->next;

        free(m);
        m = next;
    }
}

static int on_receive(struct lws *wsi, struct pss *pss, const void *in, size_t len)
{
    struct msg *m = pss->cur;

    if (lws_is_first_fragment(wsi) || m == NULL) {
        if (m == NULL) {
            size_t cap = len > 256 ? len : 256;

            m = malloc(sizeof(*m) + LWS_PRE + cap);
            if (m == NULL) {
                return -1;
            }
            m->cap = cap;
        }
        m->next = NULL;
        m->len = 0;
        m->binary = lws_frame_is_binary(wsi);
        pss->cur = m;
    }
    if (m->len + len > m->cap) {
        size_t cap = m->cap * 2;
        size_t rest = lws_remaining_packet_payload(wsi);

        if (cap < m->len + len + rest) {
            cap = m->len + len + rest;
        }
        m = realloc(m, sizeof(*m) + LWS_PRE + cap);
        if (m == NULL) {
            return -1;
        }
        m->cap = cap;
        pss->cur = m;
    }
    memcpy(m->buf + LWS_PRE + m->len, in, len);
    m->len += len;
    if (!lws_is_final_fragment(wsi)) {
        return 0;
    }
    /* A whole message: queue it and ask for a writable callback. */
    pss->cur = NULL;
    if (pss->tail != NULL) {
        pss->tail->next = m;
    } else {
        pss->head = m;
    }
    pss->tail = m;
    pss->queued++;
    if (pss->queued >= QUEUE_MAX && !pss->paused) {
        lws_rx_flow_control(wsi, 0);
        pss->paused = 1;
    }
    lws_callback_on_writable(wsi);
    return 0;
}

static int on_writeable(struct lws *wsi, struct pss *pss)
{
    struct msg *m = pss->head;
    int n;

    if (m == NULL) {
        return 0;
    }
    n = lws_write(wsi, m->buf + LWS_PRE, m->len, m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
    if (n < (int)m->len) {
        return -1; /* the peer went away; lws closes the connection */
    }
    pss->head = m->next;
    if (pss->head == NULL) {
        pss->tail = NULL;
    }
    pss->queued--;
    /* Keep the buffer for the next message instead of a free + malloc. */
    if (pss->cur == NULL) {
        pss->cur = m;
        m->next = NULL;
        m->len = 0;
    } else {
        free(m);
    }
    if (pss->paused && pss->queued <= QUEUE_MAX / 2) {
        lws_rx_flow_control(wsi, 1);
        pss->paused = 0;
    }
    if (pss->head != NULL) {
        lws_callback_on_writable(wsi);
    }
    return 0;
}

static int callback_echo(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    struct pss *pss = user;

    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        memset(pss, 0, sizeof(*pss));
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return on_receive(wsi, pss, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return on_writeable(wsi, pss);
    case LWS_CALLBACK_CLOSED:
        msgs_free(pss->head);
        msgs_free(pss->cur);
        memset(pss, 0, sizeof(*pss));
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static struct lws_protocols protocols[] = {
    {"echo", callback_echo, sizeof(struct pss), 0, 0, NULL, 256 * 1024},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
    if (context != NULL) {
        lws_cancel_service(context);
    }
}

int main(int argc, char **argv)
{
    struct lws_context_creation_info info;
    const char *addr = "127.0.0.1";
    int port = 0, o;

    while ((o = getopt(argc, argv, "a:p:r:")) != -1) {
        switch (o) {
        case 'a':
            addr = optarg;
            break;
        case 'p':
            port = atoi(optarg);
            break;
        case 'r':
            protocols[0].rx_buffer_size = (size_t)atol(optarg);
            break;
        default:
            fprintf(stderr, "usage: lws_echo -p PORT [-a ADDR] [-r RX_BUFFER_SIZE]\n");
            return 2;
        }
    }
    if (port <= 0) {
        fprintf(stderr, "usage: lws_echo -p PORT [-a ADDR] [-r RX_BUFFER_SIZE]\n");
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);

    memset(&info, 0, sizeof(info));
    info.port = port;
    info.iface = addr;
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    info.uid = -1;
    info.gid = -1;
    context = lws_create_context(&info);
    if (context == NULL) {
        fprintf(stderr, "lws_echo: lws_create_context failed\n");
        return 1;
    }
    printf("listening on %s:%d\n", addr, port);
    fflush(stdout);
    while (!interrupted) {
        if (lws_service(context, 0) < 0) {
            break;
        }
    }
    lws_context_destroy(context);
    return 0;
}
