/* ayame.c — placeholder while the Ayame protocol is being written. */
#include "signaling/signaling.h"

#include "http/router.h"

void ts_ayame_worker_init(ts_worker_t *w)
{
    (void)w;
}

void ts_http_ayame(ts_http_ctx_t *ctx)
{
    ts_http_static(ctx);
}
