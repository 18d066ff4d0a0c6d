#include "core/metrics.h"

const char *ts_proto_kind_name(int kind)
{
    switch (kind) {
    case TS_PROTO_HTTP: return "http";
    case TS_PROTO_WS: return "websocket";
    case TS_PROTO_TURN: return "turn-tcp";
    default: return "other";
    }
}

const char *ts_sig_kind_name(int kind)
{
    switch (kind) {
    case TS_SIG_AYAME: return "ayame";
    case TS_SIG_PEERJS: return "peerjs";
    default: return "other";
    }
}
