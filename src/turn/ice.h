/*
 * ice.h — the iceServers a browser should use: tsunagi's own stun: and
 * turn: URLs with fresh TURN REST API credentials. /api/ice-servers serves
 * it, and the signaling hands the same to every client it accepts.
 */
#ifndef TS_TURN_ICE_H
#define TS_TURN_ICE_H

#include <stddef.h>

#include "core/server.h"

/*
 * Write the iceServers JSON array into out ("[{...},...]", NUL-terminated).
 * host: how clients reach this server (the Host the browser used, without
 * port), used unless --external-ip is set; NULL: the TURN listener's
 * address. name: who the credential is for (the REST username's suffix).
 * Returns the length, or 0 when cap is too small.
 */
size_t ts_ice_servers_json(const ts_server_t *s, const char *host, size_t host_len,
                           const char *name, char *out, size_t cap);

#endif
