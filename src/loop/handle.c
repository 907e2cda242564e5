/* SPDX-License-Identifier: MIT */
/* The handle table: slots with generations, recycled through a LIFO free list (taking and
 * freeing a slot, the loop's hot path, are inline in handle.h). */
#include <stdlib.h>

#include "loop/handle.h"

#define GEN_LIMIT FUT_SLOT_GEN_LIMIT
#define INDEX_LIMIT (1U << 31)
#define TAG_MASK (1ULL << 63 | (uint64_t)(FUT_LOOP_ID_LIMIT - 1) << FUT_LOOP_ID_SHIFT)

void fut__slots_init(struct fut_slot_table *t, uint64_t tag, uint32_t loop_id)
{
    *t = (struct fut_slot_table){
        .free_head = FUT_SLOT_NONE,
        .tag = tag | (uint64_t)loop_id << FUT_LOOP_ID_SHIFT,
    };
}

void fut__slots_destroy(struct fut_slot_table *t)
{
    for (uint32_t i = 0; i < t->n_chunks; i++)
        free(t->chunks[i]);
    free(t->chunks);
    *t = (struct fut_slot_table){ .free_head = FUT_SLOT_NONE, .tag = t->tag };
}

int fut__slots_grow(struct fut_slot_table *t)
{
    /* indexes stay below 2^31: the ready queue uses the top bit as the table's tag */
    if ((uint64_t)(t->n_chunks + 1) * FUT_SLOT_CHUNK >= INDEX_LIMIT)
        return FUT_ENOMEM;
    if (t->n_chunks == t->chunks_cap) {
        uint32_t cap = t->chunks_cap ? t->chunks_cap * 2 : 16;
        struct fut_slot **chunks = realloc(t->chunks, cap * sizeof *chunks);
        if (!chunks)
            return FUT_ENOMEM;
        t->chunks = chunks;
        t->chunks_cap = cap;
    }
    if (!(t->chunks[t->n_chunks] = malloc(FUT_SLOT_CHUNK * sizeof(struct fut_slot))))
        return FUT_ENOMEM;
    t->n_chunks++;
    return 0;
}

int fut__slots_find(const struct fut_slot_table *t, fut_handle h, uint32_t *index)
{
    if ((h & (1ULL << 63)) != (t->tag & (1ULL << 63)))
        return FUT_EINVAL;
    if ((h & TAG_MASK) != t->tag)  /* loop id 0 was never issued */
        return h & (TAG_MASK & ~(1ULL << 63)) ? FUT_ENOENT : FUT_EINVAL;
    uint32_t i = (uint32_t)h;
    uint32_t gen = (uint32_t)(h >> 32) & (GEN_LIMIT - 1);
    if (gen == 0 || i >= t->used || gen > fut__slot(t, i)->gen)
        return FUT_EINVAL;
    const struct fut_slot *s = fut__slot(t, i);
    if (gen < s->gen || (s->state != FUT_SLOT_READY && s->state != FUT_SLOT_TIMER))
        return FUT_ENOENT;
    *index = i;
    return 0;
}
