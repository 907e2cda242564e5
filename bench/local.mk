# SPDX-License-Identifier: MIT
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

# The event loop's benchmark, beside libuv: part of `make bench` where libuv is found.
EXTRA_DIST += bench/bench_loop.py
if HAVE_LIBUV
BENCH_BINARIES += bench/bench_loop
bench_bench_loop_SOURCES = bench/bench_loop.c $(BENCH_UTIL_SOURCES)
bench_bench_loop_CFLAGS = $(AM_CFLAGS) $(LIBUV_CFLAGS)
bench_bench_loop_LDADD = libfutures.la $(LIBUV_LIBS) -lm
endif

# The process pool's benchmark: bench_process_pool.py runs the C benchmark and Python's
# ProcessPoolExecutor / multiprocessing.Pool side by side.
BENCH_BINARIES += bench/bench_process_pool
bench_bench_process_pool_SOURCES = bench/bench_process_pool.c $(BENCH_UTIL_SOURCES)
bench_bench_process_pool_LDADD = libfutures.la -lm
EXTRA_DIST += bench/bench_process_pool.py

# Coroutine tasks: bench_tasks runs its peers itself (a raw ucontext switch inside,
# bench_fcontext for Boost.Context when configure found it, bench_tasks.py for asyncio).
BENCH_BINARIES += bench/bench_tasks
bench_bench_tasks_SOURCES = bench/bench_tasks.c $(BENCH_UTIL_SOURCES)
bench_bench_tasks_LDADD = libfutures.la -lm
EXTRA_DIST += bench/bench_tasks.py bench/bench_fcontext.cpp
BENCH_PEER_TOOLS =
if HAVE_BOOST_CONTEXT
BENCH_PEER_TOOLS += bench/bench_fcontext
endif
CLEANFILES += bench/bench_fcontext
bench/bench_fcontext: bench/bench_fcontext.cpp
	$(AM_V_GEN)$(BENCH_CXX) -O2 -o $@ $(srcdir)/bench/bench_fcontext.cpp -lboost_context

# BENCH_ARGS is passed to every benchmark, e.g. make bench BENCH_ARGS=--quick
bench: $(BENCH_BINARIES) $(BENCH_PEER_TOOLS)
	$(AM_V_at)PYTHON='$(PYTHON)' MPIRUN='$(MPIRUN)' $(SHELL) $(srcdir)/bench/run-benchmarks.sh \
	    --bindir=bench --srcdir=$(srcdir)/bench $(BENCH_ARGS)

check-bench: bench

.PHONY: bench check-bench

# The MPI executor (libfutures-mpi): bench_mpi.py runs bench_mpi under mpirun -np 3 beside
# mpi4py.futures.MPICommExecutor (python3-mpi4py). Built by make bench when MPI is found.
EXTRA_DIST += bench/bench_mpi.py bench/bench_mpi.c
if HAVE_MPI
BENCH_BINARIES += bench/bench_mpi
bench_bench_mpi_SOURCES = bench/bench_mpi.c examples/crunch.h
bench_bench_mpi_CFLAGS = $(AM_CFLAGS) $(MPI_CFLAGS)
bench_bench_mpi_LDADD = libfutures-mpi.la libfutures.la $(MPI_LIBS)
endif
