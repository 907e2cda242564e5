# The event loop's benchmark (issue 4): built on request only (make bench/bench_loop).
EXTRA_DIST += bench/bench_loop.py
if HAVE_LIBUV
EXTRA_PROGRAMS += bench/bench_loop
bench_bench_loop_SOURCES = bench/bench_loop.c
bench_bench_loop_CFLAGS = $(AM_CFLAGS) $(LIBUV_CFLAGS)
bench_bench_loop_LDADD = libfutures.la $(LIBUV_LIBS) -lm
endif

# process pool (issue 3): make bench-process-pool
EXTRA_PROGRAMS += bench/bench_process_pool
bench_bench_process_pool_SOURCES = bench/bench_process_pool.c
bench_bench_process_pool_LDADD = libfutures.la -lm
EXTRA_DIST += bench/bench_process_pool.py
CLEANFILES += bench/bench_process_pool$(EXEEXT)

bench-process-pool: bench/bench_process_pool$(EXEEXT)
	$(PYTHON) $(srcdir)/bench/bench_process_pool.py bench/bench_process_pool$(EXEEXT) $(BENCH_ARGS)

.PHONY: bench-process-pool
