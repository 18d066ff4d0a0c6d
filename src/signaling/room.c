/*
 * room.c — the Ayame rooms whose home is this worker: roomId -> up to two
 * members, each a connection id.
 *
 * Only the home worker touches its table, so nothing here locks. A room
 * exists while it has a member; when one member leaves the room goes with
 * it and the other member is told (bye), as OpenAyame does. Rooms are
 * bounded by connections: a member is a live connection (or one whose
 * LEAVE is on its way), so the table cannot grow past --max-connections.
 */
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/log.h"
#include "signaling/ayame.h"

struct ts_ayame_room_s {
    ts_ayame_room_t *next; /* bucket chain */
    uint64_t hash;
    uint64_t members[2]; /* connection ids; 0: free */
    size_t len;
    char id[]; /* the roomId, len bytes and a NUL */
};

#define TS_AYAME_ROOMS_MIN 64

static uint64_t ts_ayame_hash(const char *s, size_t len)
{
    /* FNV-1a: the hash also picks the home worker, so it is stable. */
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

int ts_ayame_home(const char *room, size_t len, int nworkers)
{
    if (nworkers <= 1)
        return 0;
    return (int)(ts_ayame_hash(room, len) % (uint64_t)nworkers);
}

void ts_ayame_rooms_init(ts_ayame_rooms_t *r)
{
    r->nbuckets = TS_AYAME_ROOMS_MIN;
    r->buckets = ts_calloc(r->nbuckets, sizeof(*r->buckets));
    r->count = 0;
}

void ts_ayame_rooms_free(ts_ayame_rooms_t *r)
{
    for (size_t i = 0; i < r->nbuckets; i++) {
        ts_ayame_room_t *room = r->buckets[i];
        while (room != NULL) {
            ts_ayame_room_t *next = room->next;
            free(room);
            room = next;
        }
    }
    free(r->buckets);
    r->buckets = NULL;
    r->nbuckets = r->count = 0;
}

static ts_ayame_room_t **ts_ayame_rooms_slot(const ts_ayame_rooms_t *r, const char *id, size_t len,
                                             uint64_t h)
{
    ts_ayame_room_t **p = &r->buckets[h & (r->nbuckets - 1)];

    for (; *p != NULL; p = &(*p)->next) {
        if ((*p)->hash == h && (*p)->len == len && memcmp((*p)->id, id, len) == 0)
            break;
    }
    return p;
}

static void ts_ayame_rooms_resize(ts_ayame_rooms_t *r, size_t nbuckets)
{
    ts_ayame_room_t **b = ts_calloc(nbuckets, sizeof(*b));

    for (size_t i = 0; i < r->nbuckets; i++) {
        ts_ayame_room_t *room = r->buckets[i];
        while (room != NULL) {
            ts_ayame_room_t *next = room->next;
            size_t j = room->hash & (nbuckets - 1);
            room->next = b[j];
            b[j] = room;
            room = next;
        }
    }
    free(r->buckets);
    r->buckets = b;
    r->nbuckets = nbuckets;
}

static void ts_ayame_notify(ts_ayame_post_fn post, void *ctx, uint64_t dst, uint64_t src, int kind,
                            uint64_t peer)
{
    ts_ayame_notify_t n;

    memset(&n, 0, sizeof(n));
    n.kind = (uint8_t)kind;
    n.peer = peer;
    if (post(ctx, TS_AYAME_MSG_NOTIFY, dst, src, &n, sizeof(n)) != TS_OK)
        ts_log_warn("ayame: bus full: notify to conn=" TS_ID_FMT " dropped", TS_ID_ARG(dst));
}

void ts_ayame_rooms_join(ts_ayame_rooms_t *r, uint64_t src, const char *id, size_t len,
                         ts_ayame_post_fn post, void *ctx)
{
    uint64_t h = ts_ayame_hash(id, len);
    ts_ayame_room_t **p = ts_ayame_rooms_slot(r, id, len, h);
    ts_ayame_room_t *room = *p;

    if (room == NULL) {
        room = ts_calloc(1, sizeof(*room) + len + 1);
        room->hash = h;
        room->len = len;
        memcpy(room->id, id, len);
        room->members[0] = src;
        *p = room;
        if (++r->count > r->nbuckets)
            ts_ayame_rooms_resize(r, r->nbuckets * 2);
        ts_ayame_notify(post, ctx, src, 0, TS_AYAME_N_ACCEPT, 0);
        return;
    }
    if (room->members[0] == src || room->members[1] == src)
        return; /* a second JOIN from one connection: ayame_msg.c never sends it */
    if (room->members[0] != 0 && room->members[1] != 0) {
        ts_ayame_notify(post, ctx, src, 0, TS_AYAME_N_FULL, 0);
        return;
    }
    {
        int free_slot = room->members[0] == 0 ? 0 : 1;
        uint64_t other = room->members[1 - free_slot];
        room->members[free_slot] = src;
        /* The member waiting hears of the joiner before the joiner hears
         * accept, so it knows where to send before any offer reaches it. */
        ts_ayame_notify(post, ctx, other, src, TS_AYAME_N_PEER, src);
        ts_ayame_notify(post, ctx, src, 0, TS_AYAME_N_ACCEPT, other);
    }
}

void ts_ayame_rooms_leave(ts_ayame_rooms_t *r, uint64_t src, const char *id, size_t len,
                          ts_ayame_post_fn post, void *ctx)
{
    uint64_t h = ts_ayame_hash(id, len);
    ts_ayame_room_t **p = ts_ayame_rooms_slot(r, id, len, h);
    ts_ayame_room_t *room = *p;
    uint64_t other;

    /* A LEAVE may come after the room went (the other member left first):
     * the connection id decides, and ids are never reused. */
    if (room == NULL || (room->members[0] != src && room->members[1] != src))
        return;
    other = room->members[0] == src ? room->members[1] : room->members[0];
    *p = room->next;
    free(room);
    r->count--;
    if (r->nbuckets > TS_AYAME_ROOMS_MIN && r->count < r->nbuckets / 8)
        ts_ayame_rooms_resize(r, r->nbuckets / 2);
    if (other != 0)
        ts_ayame_notify(post, ctx, other, src, TS_AYAME_N_BYE, src);
}

int ts_ayame_rooms_members(const ts_ayame_rooms_t *r, const char *id, size_t len)
{
    ts_ayame_room_t *room = *ts_ayame_rooms_slot(r, id, len, ts_ayame_hash(id, len));

    if (room == NULL)
        return 0;
    return (room->members[0] != 0) + (room->members[1] != 0);
}
