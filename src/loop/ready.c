/* SPDX-License-Identifier: MIT */
/* The ready queue: a FIFO of slot indexes in linked blocks (ready.h). */
#include <stdlib.h>

#include "futures.h"
#include "loop/ready.h"

/* Makes room for `more` pushes that then cannot fail. */
int fut__ready_reserve(struct fut_ready *q, size_t more)
{
    size_t room = (q->tail ? FUT_READY_BLOCK - q->tail_pos : 0) + q->n_spare * FUT_READY_BLOCK;
    while (room < more) {
        struct fut_ready_block *b = malloc(sizeof *b);
        if (!b)
            return FUT_ENOMEM;
        b->next = q->spare;
        q->spare = b;
        q->n_spare++;
        room += FUT_READY_BLOCK;
    }
    return 0;
}

void fut__ready_recycle(struct fut_ready *q, struct fut_ready_block *b)
{
    if (q->n_spare >= 4) {  /* enough to absorb a burst without calling malloc */
        free(b);
        return;
    }
    b->next = q->spare;
    q->spare = b;
    q->n_spare++;
}

void fut__ready_destroy(struct fut_ready *q)
{
    struct fut_ready_block *lists[2] = { q->head, q->spare };
    for (int k = 0; k < 2; k++)
        while (lists[k]) {
            struct fut_ready_block *next = lists[k]->next;
            free(lists[k]);
            lists[k] = next;
        }
}
