/*
 * idmap.h — an open-addressing hash map from 64-bit ids to pointers, so a
 * worker can find the connection a bus message is addressed to. Linear
 * probing with backward-shift deletion (no tombstones). Key 0 is reserved.
 */
#ifndef TS_IDMAP_H
#define TS_IDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t key;
    void *value;
} ts_idmap_slot_t;

typedef struct {
    ts_idmap_slot_t *slots; /* owned */
    size_t cap;             /* power of two */
    size_t count;
} ts_idmap_t;

void ts_idmap_init(ts_idmap_t *m);
void ts_idmap_free(ts_idmap_t *m);
/* Insert or replace. key must not be 0. */
void ts_idmap_put(ts_idmap_t *m, uint64_t key, void *value);
void *ts_idmap_get(const ts_idmap_t *m, uint64_t key);
/* Remove; returns the value that was there or NULL. */
void *ts_idmap_del(ts_idmap_t *m, uint64_t key);

#endif
