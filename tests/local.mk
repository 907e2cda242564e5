# The Check test suite (thread pool, futures, waiting, map, argument checks) and the
# exported-symbols check. Each program is one area; tests/testutil.h holds shared helpers.
#
# Stress tests (1,000,000 tasks, concurrent submitters) shrink under sanitizers, under
# valgrind and with FUT_TEST_QUICK=1. `make check-valgrind` runs the programs under
# valgrind (Check's fork mode: valgrind follows each test's child), with Check's per-test
# timeouts stretched: memcheck runs code 20-50 times slower and one thread at a time.

EXTRA_DIST += tests/check_symbols.sh tests/check_layout.sh
TESTS += tests/check_symbols.sh tests/check_layout.sh

if HAVE_CHECK
FUT_CHECK_TESTS = \
	tests/test_future \
	tests/test_wait \
	tests/test_as_completed \
	tests/test_thread_pool \
	tests/test_map \
	tests/test_badinput \
	tests/test_loop
check_PROGRAMS += $(FUT_CHECK_TESTS)
TESTS += $(FUT_CHECK_TESTS)

tests_test_future_SOURCES = tests/test_future.c tests/testutil.h
tests_test_future_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_future_LDADD = libfutures.la $(CHECK_LIBS)

tests_test_wait_SOURCES = tests/test_wait.c tests/testutil.h
tests_test_wait_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_wait_LDADD = libfutures.la $(CHECK_LIBS)

tests_test_as_completed_SOURCES = tests/test_as_completed.c tests/testutil.h
tests_test_as_completed_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_as_completed_LDADD = libfutures.la $(CHECK_LIBS)

tests_test_thread_pool_SOURCES = tests/test_thread_pool.c tests/testutil.h
tests_test_thread_pool_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_thread_pool_LDADD = libfutures.la $(CHECK_LIBS)

tests_test_map_SOURCES = tests/test_map.c tests/testutil.h
tests_test_map_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_map_LDADD = libfutures.la $(CHECK_LIBS)

tests_test_badinput_SOURCES = tests/test_badinput.c tests/testutil.h
tests_test_badinput_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_badinput_LDADD = libfutures.la $(CHECK_LIBS)

# The event loop (issue 4).
tests_test_loop_SOURCES = tests/test_loop.c
tests_test_loop_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_loop_LDADD = libfutures.la $(CHECK_LIBS) -lm
endif

VALGRIND_FLAGS = -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=42
check-valgrind: $(FUT_CHECK_TESTS)
	@status=0; for t in $(FUT_CHECK_TESTS); do \
	    echo "valgrind $$t"; \
	    FUT_TEST_QUICK=1 CK_TIMEOUT_MULTIPLIER=20 $(LIBTOOL) --mode=execute valgrind $(VALGRIND_FLAGS) ./$$t || status=1; \
	done; exit $$status
.PHONY: check-valgrind

# The line_server example checks itself (issue 4).
EXTRA_DIST += tests/line_server_selftest.sh
TESTS += tests/line_server_selftest.sh

# process pool (issue 3)
if HAVE_CHECK
TESTS += tests/test_process_pool
check_PROGRAMS += tests/test_process_pool
tests_test_process_pool_SOURCES = tests/test_process_pool.c
tests_test_process_pool_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_process_pool_LDADD = libfutures.la $(CHECK_LIBS) -lm
endif

# The MPI executor: tests/test_mpi runs under mpirun -np 4 (tests/test_mpi.sh), SKIP when
# libfutures-mpi is not built. mpi_plugin.so is a module only the root loads.
EXTRA_DIST += tests/test_mpi.sh tests/mpi.supp tests/mpi-tsan.supp
TESTS += tests/test_mpi.sh
AM_TESTS_ENVIRONMENT = MPIRUN='$(MPIRUN)' FUT_SANITIZERS='$(SANITIZER_CFLAGS)'; \
	export MPIRUN FUT_SANITIZERS;
if HAVE_MPI
check_PROGRAMS += tests/test_mpi
tests_test_mpi_SOURCES = tests/test_mpi.c
tests_test_mpi_CFLAGS = $(AM_CFLAGS) $(MPI_CFLAGS)
tests_test_mpi_LDADD = libfutures-mpi.la libfutures.la $(MPI_LIBS) -ldl
check_LTLIBRARIES = tests/mpi_plugin.la
tests_mpi_plugin_la_SOURCES = tests/mpi_plugin.c
tests_mpi_plugin_la_LDFLAGS = -module -avoid-version -rpath /nowhere
endif
