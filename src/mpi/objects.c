/* SPDX-License-Identifier: MIT */
/* ELF objects by build-id, path and extent: dl_iterate_phdr on both sides. */
#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpi/objects.h"

/* What one walk of the program headers learns about an object. */
struct object_facts {
    uintptr_t bias;
    uint64_t extent;
    uint32_t build_id_len;
    uint8_t build_id[FUT_MPI_BUILD_ID_MAX];
};

static void read_build_id(const struct dl_phdr_info *info, const ElfW(Phdr) *ph, struct object_facts *facts)
{
    const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
    const char *end = p + ph->p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
        const ElfW(Nhdr) *note = (const ElfW(Nhdr) *)p;
        size_t name_len = (note->n_namesz + 3) & ~(size_t)3;
        size_t desc_len = (note->n_descsz + 3) & ~(size_t)3;
        const char *name = p + sizeof *note;
        const char *desc = name + name_len;
        if (desc + desc_len > end)
            return;
        if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 && memcmp(name, "GNU", 4) == 0 &&
            note->n_descsz <= FUT_MPI_BUILD_ID_MAX) {
            facts->build_id_len = note->n_descsz;
            memcpy(facts->build_id, desc, note->n_descsz);
            return;
        }
        p = desc + desc_len;
    }
}

static void collect_facts(const struct dl_phdr_info *info, struct object_facts *facts)
{
    *facts = (struct object_facts){ .bias = info->dlpi_addr };
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && ph->p_vaddr + ph->p_memsz > facts->extent)
            facts->extent = ph->p_vaddr + ph->p_memsz;
        if (ph->p_type == PT_NOTE && !facts->build_id_len)
            read_build_id(info, ph, facts);
    }
}

/* ---- the root: naming functions ------------------------------------------------------ */

struct find_address {
    uintptr_t address;
    unsigned index;                /* objects seen so far: 0 is the main program */
    bool found, is_main;
    struct object_facts facts;
    char *path;                    /* malloc'd */
};

static int find_address_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct find_address *fa = arg;
    unsigned index = fa->index++;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X) ||
            fa->address < start || fa->address - start >= ph->p_memsz)
            continue;
        fa->found = true;
        fa->is_main = index == 0;
        collect_facts(info, &fa->facts);
        fa->path = strdup(info->dlpi_name ? info->dlpi_name : "");
        return 1;
    }
    return 0;
}

static char *main_program_path(void)
{
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return strdup("(the main program)");
    buf[n] = '\0';
    return strdup(buf);
}

void fut__mpi_objects_init(struct fut__mpi_objects *t)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->lock, NULL);
}

void fut__mpi_objects_destroy(struct fut__mpi_objects *t)
{
    for (uint32_t i = 0; i < t->count; i++)
        free(t->items[i].wire);
    free(t->items);
    pthread_mutex_destroy(&t->lock);
}

const struct fut__mpi_object *fut__mpi_objects_get(struct fut__mpi_objects *t, uint32_t i)
{
    pthread_mutex_lock(&t->lock);
    const struct fut__mpi_object *o = i < t->count ? &t->items[i] : NULL;
    pthread_mutex_unlock(&t->lock);
    return o;
}

static int add_object_locked(struct fut__mpi_objects *t, struct find_address *fa, uint32_t *object)
{
    for (uint32_t i = 0; i < t->count; i++) {
        if (t->items[i].bias == fa->facts.bias) {
            *object = i;
            return 0;
        }
    }
    if (t->count == t->capacity) {
        /* items never move once added: readers hold pointers without the lock */
        return FUT_ENOMEM;
    }
    if (fa->is_main) {
        free(fa->path);
        fa->path = main_program_path();
    }
    if (!fa->path)
        return FUT_ENOMEM;
    size_t len = sizeof(struct fut__mpi_object_wire) + strlen(fa->path) + 1;
    struct fut__mpi_object_wire *wire = calloc(1, len);
    if (!wire)
        return FUT_ENOMEM;
    wire->extent = fa->facts.extent;
    wire->build_id_len = fa->facts.build_id_len;
    memcpy(wire->build_id, fa->facts.build_id, sizeof wire->build_id);
    wire->is_main = fa->is_main;
    strcpy(wire->path, fa->path);
    t->items[t->count] = (struct fut__mpi_object){ .bias = fa->facts.bias, .wire_len = len, .wire = wire };
    *object = t->count++;
    return 0;
}

int fut__mpi_objects_name(struct fut__mpi_objects *t, uintptr_t fn, uint32_t *object, uint64_t *offset)
{
    size_t slot = (fn >> 4) % FUT_MPI_FN_CACHE;
    pthread_mutex_lock(&t->lock);
    if (t->cache[slot].fn == fn && fn) {
        *object = t->cache[slot].object;
        *offset = t->cache[slot].offset;
        pthread_mutex_unlock(&t->lock);
        return 0;
    }
    if (!t->items) {
        /* a fixed table, so that an object's description never moves */
        t->capacity = 1024;
        if (!(t->items = calloc(t->capacity, sizeof *t->items))) {
            pthread_mutex_unlock(&t->lock);
            return FUT_ENOMEM;
        }
    }
    struct find_address fa = { .address = fn };
    dl_iterate_phdr(find_address_cb, &fa);
    int rc = FUT_EINVAL;
    if (fa.found && (rc = add_object_locked(t, &fa, object)) == 0) {
        *offset = fn - fa.facts.bias;
        t->cache[slot].fn = fn;
        t->cache[slot].object = *object;
        t->cache[slot].offset = *offset;
    }
    pthread_mutex_unlock(&t->lock);
    free(fa.path);
    return rc;
}

/* ---- a worker: finding the root's objects among its own ----------------------------- */

struct find_object {
    const struct fut__mpi_object_wire *wire;
    unsigned index;
    bool found;
    struct object_facts facts;
};

static int find_object_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct find_object *fo = arg;
    unsigned index = fo->index++;
    bool same = fo->wire->is_main ? index == 0
                                  : index != 0 && info->dlpi_name && strcmp(info->dlpi_name, fo->wire->path) == 0;
    if (!same)
        return 0;
    fo->found = true;
    collect_facts(info, &fo->facts);
    return 1;
}

int fut__mpi_resolver_add(struct fut__mpi_resolver *r, uint32_t i, struct fut__mpi_object_wire *wire, size_t len)
{
    if (i != r->count || len < sizeof *wire || ((char *)wire)[len - 1] != '\0' ||
        wire->build_id_len > FUT_MPI_BUILD_ID_MAX)
        return FUT_EINVAL;  /* objects arrive numbered in order, NUL-terminated */
    struct fut__mpi_resolved *items = realloc(r->items, (r->count + 1) * sizeof *items);
    if (!items)
        return FUT_ENOMEM;
    r->items = items;
    items[r->count++] = (struct fut__mpi_resolved){ .wire = wire };
    return 0;
}

static void resolve(struct fut__mpi_resolver *r, struct fut__mpi_resolved *o)
{
    struct find_object fo = { .wire = o->wire };
    dl_iterate_phdr(find_object_cb, &fo);
    o->resolved = true;
    const char *why = NULL;
    if (!fo.found)
        why = "is not loaded in this rank (load the same objects on every rank)";
    else if (o->wire->build_id_len && fo.facts.build_id_len &&
             (o->wire->build_id_len != fo.facts.build_id_len ||
              memcmp(o->wire->build_id, fo.facts.build_id, fo.facts.build_id_len) != 0))
        why = "differs from the root's (another build-id)";
    else if (o->wire->extent != fo.facts.extent)
        why = "differs from the root's (another size)";
    if (!why) {
        o->bias = fo.facts.bias;
        o->usable = true;
        return;
    }
    if (asprintf(&o->error, "task function's object %s %s: rank %d cannot run it", o->wire->path, why,
                 r->rank) < 0)
        o->error = NULL;
}

int fut__mpi_resolver_find(struct fut__mpi_resolver *r, uint32_t object, uint64_t offset,
                           uintptr_t *fn, char **message)
{
    *message = NULL;
    if (object >= r->count) {
        if (asprintf(message, "rank %d: the root named object %u, which it never described", r->rank,
                     object) < 0)
            *message = NULL;
        return FUT_EBROKEN;
    }
    struct fut__mpi_resolved *o = &r->items[object];
    if (!o->resolved)
        resolve(r, o);
    if (!o->usable) {
        *message = strdup(o->error ? o->error : "task function's object is not usable in this rank");
        return FUT_EINVAL;
    }
    if (offset >= o->wire->extent) {
        if (asprintf(message, "rank %d: offset %#llx lies outside %s", r->rank, (unsigned long long)offset,
                     o->wire->path) < 0)
            *message = NULL;
        return FUT_EINVAL;
    }
    *fn = o->bias + (uintptr_t)offset;
    return 0;
}

void fut__mpi_resolver_destroy(struct fut__mpi_resolver *r)
{
    for (uint32_t i = 0; i < r->count; i++) {
        free(r->items[i].wire);
        free(r->items[i].error);
    }
    free(r->items);
    r->items = NULL;
    r->count = 0;
}
