/* The handle table: slots with generations, recycled through a LIFO free list. */
#include <stdlib.h>

#include "loop_handle.h"

#define GEN_LIMIT (1U << 31)

void fut__slots_init(struct fut_slot_table *t, uint64_t tag)
{
    *t = (struct fut_slot_table){ .free_head = FUT_SLOT_NONE, .tag = tag };
}

void fut__slots_destroy(struct fut_slot_table *t)
{
    free(t->slots);
    fut__slots_init(t, t->tag);
}

static uint32_t take_slot(struct fut_slot_table *t)
{
    if (t->free_head != FUT_SLOT_NONE) {
        uint32_t i = t->free_head;
        t->free_head = t->slots[i].next_free;
        t->slots[i].gen = t->slots[i].gen + 1 < GEN_LIMIT ? t->slots[i].gen + 1 : 1;
        return i;
    }
    if (t->used == t->cap) {
        /* indexes stay below 2^31: the ready queue uses the top bit as the table's tag */
        uint32_t cap = t->cap ? t->cap * 2 : 256;
        struct fut_slot *slots;
        if (cap >= GEN_LIMIT || !(slots = realloc(t->slots, cap * sizeof *slots)))
            return FUT_SLOT_NONE;
        t->slots = slots;
        t->cap = cap;
    }
    t->slots[t->used].gen = 1;
    return t->used++;
}

uint32_t fut__slots_alloc(struct fut_slot_table *t, fut_callback cb, void *arg,
                          enum fut_slot_state state, fut_handle *h)
{
    uint32_t i = take_slot(t);
    if (i == FUT_SLOT_NONE)
        return i;
    struct fut_slot *s = &t->slots[i];
    s->cb = cb;
    s->arg = arg;
    s->state = (uint8_t)state;
    *h = t->tag | (uint64_t)s->gen << 32 | i;
    return i;
}

void fut__slots_free(struct fut_slot_table *t, uint32_t index)
{
    struct fut_slot *s = &t->slots[index];
    s->state = FUT_SLOT_FREE;
    s->cb = NULL;
    s->arg = NULL;
    s->next_free = t->free_head;
    t->free_head = index;
}

int fut__slots_find(const struct fut_slot_table *t, fut_handle h, uint32_t *index)
{
    if ((h & (1ULL << 63)) != t->tag)
        return FUT_EINVAL;
    uint32_t i = (uint32_t)h;
    uint32_t gen = (uint32_t)(h >> 32) & (GEN_LIMIT - 1);
    if (gen == 0 || i >= t->used || gen > t->slots[i].gen)
        return FUT_EINVAL;
    const struct fut_slot *s = &t->slots[i];
    if (gen < s->gen || (s->state != FUT_SLOT_READY && s->state != FUT_SLOT_TIMER))
        return FUT_ENOENT;
    *index = i;
    return 0;
}
