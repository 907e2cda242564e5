# Benchmarks: built and run by `make bench` only, never by `make all`, `make check` or
# `make distcheck` (EXTRA_PROGRAMS are built on demand; their sources are still shipped).
BENCH_BINARIES = bench/bench-thread-pool
EXTRA_PROGRAMS += $(BENCH_BINARIES)
CLEANFILES += $(BENCH_BINARIES) bench/*.results

# Shared by every benchmark: clock, statistics, percentiles, isolation, results table.
BENCH_UTIL_SOURCES = bench/bench_util.c bench/bench_util.h
BENCH_PEER_CPPFLAGS =
BENCH_PEER_CFLAGS =
BENCH_PEER_LIBS =
if HAVE_GLIB
BENCH_PEER_CPPFLAGS += -DBENCH_HAVE_GLIB
BENCH_PEER_CFLAGS += $(GLIB_CFLAGS)
BENCH_PEER_LIBS += $(GLIB_LIBS)
endif
if HAVE_LIBUV
BENCH_PEER_CPPFLAGS += -DBENCH_HAVE_LIBUV
BENCH_PEER_CFLAGS += $(LIBUV_CFLAGS)
BENCH_PEER_LIBS += $(LIBUV_LIBS)
endif

bench_bench_thread_pool_SOURCES = bench/thread_pool_bench.c $(BENCH_UTIL_SOURCES)
bench_bench_thread_pool_CPPFLAGS = $(AM_CPPFLAGS) $(BENCH_PEER_CPPFLAGS)
bench_bench_thread_pool_CFLAGS = $(AM_CFLAGS) $(BENCH_PEER_CFLAGS)
bench_bench_thread_pool_LDADD = libfutures.la $(BENCH_PEER_LIBS) -lm

EXTRA_DIST += bench/README.md bench/run-benchmarks.sh bench/thread_pool_bench.py

# The event loop's benchmark (issue 4): built on request only (make bench/bench_loop).
EXTRA_DIST += bench/bench_loop.py
if HAVE_LIBUV
BENCH_BINARIES += bench/bench_loop
bench_bench_loop_SOURCES = bench/bench_loop.c
bench_bench_loop_CFLAGS = $(AM_CFLAGS) $(LIBUV_CFLAGS)
bench_bench_loop_LDADD = libfutures.la $(LIBUV_LIBS) -lm
endif

# The process pool (issue 3): bench_process_pool.py runs the C benchmark and Python's
# ProcessPoolExecutor / multiprocessing.Pool side by side.
BENCH_BINARIES += bench/bench_process_pool
bench_bench_process_pool_SOURCES = bench/bench_process_pool.c
bench_bench_process_pool_LDADD = libfutures.la -lm
EXTRA_DIST += bench/bench_process_pool.py

# BENCH_ARGS is passed to every benchmark, e.g. make bench BENCH_ARGS=--quick
bench: $(BENCH_BINARIES)
	$(AM_V_at)PYTHON='$(PYTHON)' MPIRUN='$(MPIRUN)' $(SHELL) $(srcdir)/bench/run-benchmarks.sh \
	    --bindir=bench --srcdir=$(srcdir)/bench $(BENCH_ARGS)

check-bench: bench

.PHONY: bench check-bench

# The MPI executor (libfutures-mpi): bench_mpi.py runs bench_mpi under mpirun -np 3 beside
# mpi4py.futures.MPICommExecutor (python3-mpi4py). Built by make bench when MPI is found.
EXTRA_DIST += bench/bench_mpi.py bench/bench_mpi.c
if HAVE_MPI
BENCH_BINARIES += bench/bench_mpi
bench_bench_mpi_SOURCES = bench/bench_mpi.c
bench_bench_mpi_CFLAGS = $(AM_CFLAGS) $(MPI_CFLAGS)
bench_bench_mpi_LDADD = libfutures-mpi.la libfutures.la $(MPI_LIBS)
endif
