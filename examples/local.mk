# SPDX-License-Identifier: MIT
# The examples of README.md and of the event loop and process pool: built by plain `make`,
# never installed.
noinst_PROGRAMS += \
	examples/cpu_batch \
	examples/shared_counter \
	examples/hash_files \
	examples/first_completed \
	examples/async_print \
	examples/gather_sleeps \
	examples/line_server \
	examples/random_workers
examples_cpu_batch_SOURCES = examples/cpu_batch.c examples/example_util.h
examples_cpu_batch_LDADD = libfutures.la
examples_shared_counter_SOURCES = examples/shared_counter.c examples/example_util.h
examples_shared_counter_LDADD = libfutures.la
examples_hash_files_SOURCES = examples/hash_files.c examples/example_util.h
examples_hash_files_LDADD = libfutures.la
examples_first_completed_SOURCES = examples/first_completed.c examples/example_util.h
examples_first_completed_LDADD = libfutures.la
examples_async_print_SOURCES = examples/async_print.c
examples_async_print_LDADD = libfutures.la
examples_gather_sleeps_SOURCES = examples/gather_sleeps.c
examples_gather_sleeps_LDADD = libfutures.la
examples_line_server_SOURCES = examples/line_server.c examples/net_util.h
examples_line_server_LDADD = libfutures.la
examples_random_workers_SOURCES = examples/random_workers.c
examples_random_workers_LDADD = libfutures.la

# The examples of README.md run once under make check (smoke.sh, with small arguments);
# line_server checks itself (tests/line_server_selftest.sh). shared_counter takes no
# arguments, so it is a test by itself, except in sanitizer builds: its unlocked half is a
# deliberate data race, which ThreadSanitizer rightly reports.
TESTS += examples/smoke.sh
if !SANITIZED
TESTS += examples/shared_counter
endif
EXTRA_DIST += examples/smoke.sh

# Embedding the loop in GLib's main loop (issue 10): built only when GLib is found.
if HAVE_GLIB
noinst_PROGRAMS += examples/glib_embed
examples_glib_embed_SOURCES = examples/glib_embed.c
examples_glib_embed_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
examples_glib_embed_LDADD = libfutures.la $(GLIB_LIBS) -lm
endif

# A server that stops cleanly on SIGINT and SIGTERM (issue 10).
noinst_PROGRAMS += examples/signal_server
examples_signal_server_SOURCES = examples/signal_server.c examples/net_util.h
examples_signal_server_LDADD = libfutures.la

# Coroutine tasks (src/task): run by tasks_smoke.sh with small arguments, output checked.
noinst_PROGRAMS += examples/async_main examples/async_gather examples/ping_pong \
	examples/async_fib examples/echo_server
examples_async_main_SOURCES = examples/async_main.c
examples_async_main_LDADD = libfutures.la
examples_async_gather_SOURCES = examples/async_gather.c
examples_async_gather_LDADD = libfutures.la
examples_ping_pong_SOURCES = examples/ping_pong.c
examples_ping_pong_LDADD = libfutures.la
examples_async_fib_SOURCES = examples/async_fib.c
examples_async_fib_LDADD = libfutures.la
examples_echo_server_SOURCES = examples/echo_server.c examples/net_util.h
examples_echo_server_LDADD = libfutures.la
TESTS += examples/tasks_smoke.sh
EXTRA_DIST += examples/tasks_smoke.sh

# The MPI executor's example: built when libfutures-mpi is (run by examples/mpi_smoke.sh
# under mpirun -np 3; SKIP without MPI).
EXTRA_DIST += examples/mpi_smoke.sh examples/mpi_batch.c examples/crunch.h
TESTS += examples/mpi_smoke.sh
if HAVE_MPI
noinst_PROGRAMS += examples/mpi_batch
examples_mpi_batch_SOURCES = examples/mpi_batch.c examples/crunch.h
examples_mpi_batch_CFLAGS = $(AM_CFLAGS) $(MPI_CFLAGS)
examples_mpi_batch_LDADD = libfutures-mpi.la libfutures.la $(MPI_LIBS)
endif
