#include "core/idmap.h"

#include <stdlib.h>

#include "core/common.h"

static inline size_t ts_idmap_hash(uint64_t key, size_t mask)
{
    /* Ids are sequential; a multiplicative mix spreads them over the table. */
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key & mask;
}

void ts_idmap_init(ts_idmap_t *m)
{
    m->cap = 16;
    m->count = 0;
    m->slots = ts_calloc(m->cap, sizeof(*m->slots));
}

void ts_idmap_free(ts_idmap_t *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}

static void ts_idmap_grow(ts_idmap_t *m)
{
    ts_idmap_slot_t *old = m->slots;
    size_t oldcap = m->cap;

    m->cap *= 2;
    m->slots = ts_calloc(m->cap, sizeof(*m->slots));
    m->count = 0;
    for (size_t i = 0; i < oldcap; i++) {
        if (old[i].key != 0)
            ts_idmap_put(m, old[i].key, old[i].value);
    }
    free(old);
}

void ts_idmap_put(ts_idmap_t *m, uint64_t key, void *value)
{
    size_t mask, i;

    if ((m->count + 1) * 4 > m->cap * 3)
        ts_idmap_grow(m);
    mask = m->cap - 1;
    for (i = ts_idmap_hash(key, mask);; i = (i + 1) & mask) {
        if (m->slots[i].key == key) {
            m->slots[i].value = value;
            return;
        }
        if (m->slots[i].key == 0) {
            m->slots[i].key = key;
            m->slots[i].value = value;
            m->count++;
            return;
        }
    }
}

void *ts_idmap_get(const ts_idmap_t *m, uint64_t key)
{
    size_t mask = m->cap - 1;

    if (key == 0)
        return NULL;
    for (size_t i = ts_idmap_hash(key, mask);; i = (i + 1) & mask) {
        if (m->slots[i].key == key)
            return m->slots[i].value;
        if (m->slots[i].key == 0)
            return NULL;
    }
}

void *ts_idmap_del(ts_idmap_t *m, uint64_t key)
{
    size_t mask = m->cap - 1;
    size_t i, j;
    void *value;

    if (key == 0)
        return NULL;
    for (i = ts_idmap_hash(key, mask);; i = (i + 1) & mask) {
        if (m->slots[i].key == key)
            break;
        if (m->slots[i].key == 0)
            return NULL;
    }
    value = m->slots[i].value;
    /* Backward-shift: pull later entries of the probe run into the hole. */
    for (j = (i + 1) & mask; m->slots[j].key != 0; j = (j + 1) & mask) {
        size_t home = ts_idmap_hash(m->slots[j].key, mask);
        /* Move j into i when home is not cyclically within (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].key = 0;
    m->slots[i].value = NULL;
    m->count--;
    return value;
}
