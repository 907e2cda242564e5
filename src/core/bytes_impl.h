/* SPDX-License-Identifier: MIT */
/*
 * Internal to bytes.c and bytes_shared.c: the header every fut_bytes buffer has right
 * before its data, and the registry of unclaimed buffers.
 *
 * The header is process-private memory in both kinds of buffer: a shared buffer's header
 * sits at the end of a private page mapped just before the memfd's pages (bytes_shared.c),
 * so no other process can change the length or the kind this process reads.
 */
#ifndef FUT_BYTES_IMPL_H
#define FUT_BYTES_IMPL_H

#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum bytes_kind {
    FUT_BYTES_PLAIN = 0,           /* malloc'd: header then data */
    FUT_BYTES_SHARED = 0x5348,     /* a memfd's pages (bytes_shared.c) */
};

/* Still 16 bytes where max_align_t is: `kind` fills what was padding. */
struct fut_bytes_header {
    alignas(max_align_t) size_t len;
    uint32_t kind;
};

static inline struct fut_bytes_header *fut__bytes_header(const void *b)
{
    return (struct fut_bytes_header *)b - 1;
}

/* bytes.c: the registry (fut__bytes_claim finds what these add). */
int  fut__bytes_registry_add(void *b);
bool fut__bytes_registry_remove(void *b);

/* bytes_shared.c: fut_bytes_free of a shared buffer (already out of the registry). */
void fut__bytes_shared_free(void *b);
/* Whether fut_bytes_new of len bytes should take fut__bytes_new_shared. */
bool fut__bytes_wants_shared(size_t len);

#endif
