# SPDX-License-Identifier: MIT
# The Check test suite (futures, waiting, as_completed, thread pool, map, argument checks,
# event loop, process pool), the exported-symbols and include-rule checks, and the
# line_server example's self-test. Each program is one area; tests/testutil.h holds shared
# helpers.
#
# Stress tests (1,000,000 tasks, concurrent submitters) shrink under sanitizers, under
# valgrind and with FUT_TEST_QUICK=1.

EXTRA_DIST += tests/check_symbols.sh tests/check_layout.sh tests/line_server_selftest.sh
TESTS += tests/check_symbols.sh tests/check_layout.sh tests/line_server_selftest.sh

# The Check programs: tests/NAME.c each (automake's default source), on tests/testutil.h.
# The longest, the process pool, comes first so that `make -j check` runs the others
# beside it instead of after it.
FUT_CHECK_TESTS = \
	tests/test_process_pool \
	tests/test_future \
	tests/test_wait \
	tests/test_as_completed \
	tests/test_thread_pool \
	tests/test_map \
	tests/test_badinput \
	tests/test_loop \
	tests/test_enomem
EXTRA_DIST += tests/testutil.h

# Their build settings, written once: automake has no per-directory flags, so the
# programs take the defaults (LDADD, AM_CFLAGS), which no other program of the tree uses
# for linking (every other program has its own _LDADD). Check's compiler flags (its
# include path and -pthread, which every object here already gets) join AM_CFLAGS;
# per-program _CFLAGS would have to be repeated for each program.
if HAVE_CHECK
check_PROGRAMS += $(FUT_CHECK_TESTS)
TESTS += $(FUT_CHECK_TESTS)
endif
AM_CFLAGS += $(CHECK_CFLAGS)
LDADD = libfutures.la $(CHECK_LIBS) -lm

# `make check-valgrind` runs the Check programs under memcheck, with Check's per-test
# timeouts stretched: memcheck runs code 20-50 times slower and one thread at a time.
# Valgrind follows forks, so in Check's fork mode it checks each test in its own child.
# The programs of FUT_CHECK_FORKING_TESTS fork processes that never free what they inherit
# (the process pool's fork server and workers, which leave with _exit): valgrind keeps
# silent in every child of theirs (--child-silent-after-fork=yes) and their tests run in
# the test process itself (CK_FORK=no), where memcheck sees them. Check's per-test
# timeouts need fork mode, so CI's time limit on the stage bounds these.
FUT_CHECK_FORKING_TESTS = tests/test_process_pool
VALGRIND_FLAGS = -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=42
check-valgrind: $(FUT_CHECK_TESTS)
	@status=0; for t in $(FUT_CHECK_TESTS); do \
	    case " $(FUT_CHECK_FORKING_TESTS) " in \
	    *" $$t "*) fork=no; forks=--child-silent-after-fork=yes ;; \
	    *) fork=yes; forks= ;; \
	    esac; \
	    echo "valgrind $$t"; \
	    CK_FORK=$$fork FUT_TEST_QUICK=1 CK_TIMEOUT_MULTIPLIER=20 \
	        $(LIBTOOL) --mode=execute valgrind $(VALGRIND_FLAGS) $$forks ./$$t || status=1; \
	done; exit $$status
.PHONY: check-valgrind

# The hostile pass: hangs, crossed results, limits, forged messages, each case bounded in
# time. Not under check-valgrind: its cases are hang detectors with time limits that
# memcheck's slowdown would trip.
if HAVE_CHECK
check_PROGRAMS += tests/test_hostile
TESTS += tests/test_hostile
endif

# fut_executor_get_stats and the version functions (issue 10)
if HAVE_CHECK
TESTS += tests/test_stats
check_PROGRAMS += tests/test_stats
tests_test_stats_SOURCES = tests/test_stats.c tests/testutil.h
tests_test_stats_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_stats_LDADD = libfutures.la $(CHECK_LIBS)
endif

# Embedding the loop and its signal handlers (issue 10)
if HAVE_CHECK
TESTS += tests/test_embed
check_PROGRAMS += tests/test_embed
tests_test_embed_SOURCES = tests/test_embed.c tests/testutil.h
tests_test_embed_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_embed_LDADD = libfutures.la $(CHECK_LIBS) -lm
endif

# Fork safety: inherited pools and loops in a forked child (issue 10)
if HAVE_CHECK
TESTS += tests/test_fork
check_PROGRAMS += tests/test_fork
tests_test_fork_SOURCES = tests/test_fork.c tests/testutil.h
tests_test_fork_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_fork_LDADD = libfutures.la $(CHECK_LIBS)
endif

# Coroutine tasks (src/task), and the loop's ordering rules they rely on.
if HAVE_CHECK
FUT_CHECK_TESTS += tests/test_task
tests_test_task_SOURCES = tests/test_task.c tests/testutil.h
tests_test_task_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_task_LDADD = libfutures.la $(CHECK_LIBS) -lm
endif

# The MPI executor: tests/test_mpi runs under mpirun -np 4 (tests/test_mpi.sh), SKIP when
# libfutures-mpi is not built. mpi_plugin.so is a module only the root loads.
EXTRA_DIST += tests/test_mpi.sh tests/mpi.supp tests/mpi-tsan.supp
TESTS += tests/test_mpi.sh
AM_TESTS_ENVIRONMENT = MPIRUN='$(MPIRUN)' FUT_SANITIZERS='$(SANITIZER_CFLAGS)' \
	MPI_CFLAGS='$(MPI_CFLAGS)'; export MPIRUN FUT_SANITIZERS MPI_CFLAGS;
if HAVE_MPI
check_PROGRAMS += tests/test_mpi
tests_test_mpi_SOURCES = tests/test_mpi.c
tests_test_mpi_CFLAGS = $(AM_CFLAGS) $(MPI_CFLAGS)
tests_test_mpi_LDADD = libfutures-mpi.la libfutures.la $(MPI_LIBS) -ldl
check_LTLIBRARIES = tests/mpi_plugin.la
tests_mpi_plugin_la_SOURCES = tests/mpi_plugin.c
tests_mpi_plugin_la_LDFLAGS = -module -avoid-version -rpath /nowhere
endif

# The process pool's shared-memory channel (issue 11): a worker scribbling over its own
# rings, SIGKILL at pseudo-random points of a stream of inline and out-of-line payloads,
# no mapping or descriptor left over. Each case is a hang detector in a forked child with
# a time limit, so, like test_hostile, not under check-valgrind.
if HAVE_CHECK
check_PROGRAMS += tests/test_process_channel
TESTS += tests/test_process_channel
endif

# Shared-memory fut_bytes buffers (issue 11), reached through the backend hook table.
if HAVE_CHECK
FUT_CHECK_TESTS += tests/test_bytes_shared
tests_test_bytes_shared_SOURCES = tests/test_bytes_shared.c tests/testutil.h
tests_test_bytes_shared_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_bytes_shared_LDADD = libfutures.la $(CHECK_LIBS)
endif

# The process pool under stress and faults (issue 11, reliability): create/free cycles,
# stopped and killed workers, payloads around the shared-memory threshold. Each case runs
# in a bounded forked child, so it stays out of check-valgrind like test_hostile.
if HAVE_CHECK
check_PROGRAMS += tests/test_process_stress
TESTS += tests/test_process_stress
endif
