/*
 * signaling.h — the two signaling protocols on the HTTP server: Ayame at
 * /signaling (ayame.c, rooms of two) and the PeerJS server protocol under
 * /peerjs (peerjs.c). Clients of one room or of one PeerJS key may live on
 * different workers: everything between them goes over the bus, addressed
 * by connection id.
 *
 * Bus message types (ts_worker_on_message): Ayame uses TS_MSG_USER + 2..5,
 * PeerJS TS_MSG_USER + 6..9.
 */
#ifndef TS_SIGNALING_H
#define TS_SIGNALING_H

#include "core/worker.h"
#include "http/server.h"

#define TS_AYAME_MSG_BASE  (TS_MSG_USER + 2)
#define TS_PEERJS_MSG_BASE (TS_MSG_USER + 6)

/* Called once per worker before its loop runs: registers bus handlers. */
void ts_ayame_worker_init(ts_worker_t *w);
void ts_peerjs_worker_init(ts_worker_t *w);

/* Routes: /signaling, and /peerjs with everything under it. */
void ts_http_ayame(ts_http_ctx_t *ctx);
void ts_http_peerjs(ts_http_ctx_t *ctx);

#endif
