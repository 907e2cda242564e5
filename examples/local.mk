# The examples of README.md: built by plain `make`, never installed.
noinst_PROGRAMS += \
	examples/cpu_batch \
	examples/shared_counter \
	examples/hash_files \
	examples/first_completed
examples_cpu_batch_SOURCES = examples/cpu_batch.c examples/example_util.h
examples_cpu_batch_LDADD = libfutures.la
examples_shared_counter_SOURCES = examples/shared_counter.c examples/example_util.h
examples_shared_counter_LDADD = libfutures.la
examples_hash_files_SOURCES = examples/hash_files.c examples/example_util.h
examples_hash_files_LDADD = libfutures.la
examples_first_completed_SOURCES = examples/first_completed.c examples/example_util.h
examples_first_completed_LDADD = libfutures.la

# Each example runs once under make check (smoke.sh, with small arguments). shared_counter
# takes no arguments, so it is a test by itself, except in sanitizer builds: its unlocked
# half is a deliberate data race, which ThreadSanitizer rightly reports.
TESTS += examples/smoke.sh
if !SANITIZED
TESTS += examples/shared_counter
endif
EXTRA_DIST += examples/smoke.sh

# The event loop's examples (issue 4).
noinst_PROGRAMS += examples/async_print examples/gather_sleeps examples/line_server
examples_async_print_SOURCES = examples/async_print.c
examples_async_print_LDADD = libfutures.la
examples_gather_sleeps_SOURCES = examples/gather_sleeps.c
examples_gather_sleeps_LDADD = libfutures.la
examples_line_server_SOURCES = examples/line_server.c
examples_line_server_LDADD = libfutures.la

# process pool (issue 3)
noinst_PROGRAMS += examples/random_workers
examples_random_workers_SOURCES = examples/random_workers.c
examples_random_workers_LDADD = libfutures.la

# The MPI executor's example: built when libfutures-mpi is (run by examples/mpi_smoke.sh
# under mpirun -np 3; SKIP without MPI).
EXTRA_DIST += examples/mpi_smoke.sh examples/mpi_batch.c
TESTS += examples/mpi_smoke.sh
if HAVE_MPI
noinst_PROGRAMS += examples/mpi_batch
examples_mpi_batch_SOURCES = examples/mpi_batch.c
examples_mpi_batch_CFLAGS = $(AM_CFLAGS) $(MPI_CFLAGS)
examples_mpi_batch_LDADD = libfutures-mpi.la libfutures.la $(MPI_LIBS)
endif
