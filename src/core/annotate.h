/* SPDX-License-Identifier: MIT */
/*
 * Internal: happens-before annotations for valgrind's thread checkers (helgrind, DRD).
 *
 * The checkers understand pthread mutexes and condition variables, not C11 atomics nor
 * the future's futex lock, so the library's lock-free hand-offs look like races to them.
 * These macros tell both tools what the atomics guarantee. They are compiled in only by
 * `configure --enable-valgrind-annotations` (FUT_VALGRIND_ANNOTATIONS, which needs
 * valgrind's headers): outside valgrind each costs a dozen instructions that do nothing,
 * a price the hot paths (state reads in spin loops) should not pay in normal builds.
 *
 *   FUT_HAPPENS_BEFORE(p) / FUT_HAPPENS_AFTER(p)   a release / acquire on object p
 *   FUT_NEW_MEMORY(p, n)   memory recycled by a cache: forget its earlier accesses
 *   FUT_ATOMIC_VAR(p)      *p is only ever accessed atomically: its own accesses are no
 *                          races (the checkers see plain loads and stores)
 */
#ifndef FUT_CORE_ANNOTATE_H
#define FUT_CORE_ANNOTATE_H

#ifdef FUT_VALGRIND_ANNOTATIONS
#define FUT_ANNOTATIONS 1
#endif

#ifdef FUT_ANNOTATIONS
#include <valgrind/helgrind.h>
#include <valgrind/drd.h>

#define FUT_CREQ2_(hg, drd, a, b)                                                         \
    do {                                                                                  \
        VALGRIND_DO_CLIENT_REQUEST_STMT(hg, (a), (b), 0, 0, 0);                           \
        VALGRIND_DO_CLIENT_REQUEST_STMT(drd, (a), (b), 0, 0, 0);                          \
    } while (0)

#define FUT_HAPPENS_BEFORE(p)                                                             \
    FUT_CREQ2_(_VG_USERREQ__HG_USERSO_SEND_PRE, VG_USERREQ__DRD_ANNOTATE_HAPPENS_BEFORE,  \
               (void *)(p), 0)
#define FUT_HAPPENS_AFTER(p)                                                              \
    FUT_CREQ2_(_VG_USERREQ__HG_USERSO_RECV_POST, VG_USERREQ__DRD_ANNOTATE_HAPPENS_AFTER,  \
               (void *)(p), 0)
#define FUT_ATOMIC_VAR(p)                                                                 \
    FUT_CREQ2_(_VG_USERREQ__HG_ARANGE_MAKE_UNTRACKED, VG_USERREQ__DRD_START_SUPPRESSION,  \
               (void *)(p), sizeof *(p))
/* helgrind's and DRD's "clean memory" requests share one code */
#define FUT_NEW_MEMORY(p, n) VALGRIND_HG_CLEAN_MEMORY((p), (n))
#else
#define FUT_HAPPENS_BEFORE(p) ((void)(p))
#define FUT_HAPPENS_AFTER(p)  ((void)(p))
#define FUT_NEW_MEMORY(p, n)  ((void)(p), (void)(n))
#define FUT_ATOMIC_VAR(p)     ((void)(p))
#endif

#endif
