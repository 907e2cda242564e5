/* SPDX-License-Identifier: MIT */
/*
 * Internal: the one intrusive FIFO of the library, in the manner of libuv's queue.h: the
 * node lives inside the queued object, so queueing never allocates, and the owner gets
 * back to its object with fut_container_of.
 *
 * Singly linked on purpose: every user (an executor's task queue, a future's done
 * callbacks, the future cache's chains) pushes at either end, pops from the front and
 * splices whole lists; none unlinks from the middle. A second pointer per node would cost
 * eight bytes in every live future of a million-task batch and buy nothing.
 *
 * Not thread-safe: the owner's lock (or a single owner thread) protects a list.
 */
#ifndef FUT_CORE_LIST_H
#define FUT_CORE_LIST_H

#include <stdbool.h>
#include <stddef.h>

#define fut_container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

struct fut_list_node {
    struct fut_list_node *next;
};

struct fut_list {
    struct fut_list_node *head, *tail;   /* both NULL when empty */
};

static inline bool fut_list_empty(const struct fut_list *l)
{
    return l->head == NULL;
}

static inline void fut_list_push_back(struct fut_list *l, struct fut_list_node *n)
{
    n->next = NULL;
    if (l->tail)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
}

static inline void fut_list_push_front(struct fut_list *l, struct fut_list_node *n)
{
    n->next = l->head;
    l->head = n;
    if (!l->tail)
        l->tail = n;
}

/* The first node, unlinked; NULL when the list is empty. */
static inline struct fut_list_node *fut_list_pop_front(struct fut_list *l)
{
    struct fut_list_node *n = l->head;
    if (n && !(l->head = n->next))
        l->tail = NULL;
    return n;
}

/* Moves every node of `from` to the back of `to`, in order; `from` ends empty. */
static inline void fut_list_splice_back(struct fut_list *to, struct fut_list *from)
{
    if (!from->head)
        return;
    if (to->tail)
        to->tail->next = from->head;
    else
        to->head = from->head;
    to->tail = from->tail;
    from->head = from->tail = NULL;
}

/* Takes the whole list, leaving it empty: the caller walks the chain from the result. */
static inline struct fut_list fut_list_take(struct fut_list *l)
{
    struct fut_list all = *l;
    l->head = l->tail = NULL;
    return all;
}

/* Iterates with `n` free to be unlinked or freed by the body. */
#define fut_list_for_each_safe(n, tmp, list)                                             \
    for ((n) = (list)->head; (n) && ((tmp) = (n)->next, 1); (n) = (tmp))

#endif
