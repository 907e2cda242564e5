
# process pool (issue 3): make bench-process-pool
EXTRA_PROGRAMS += bench/bench_process_pool
bench_bench_process_pool_SOURCES = bench/bench_process_pool.c
bench_bench_process_pool_LDADD = libfutures.la -lm
EXTRA_DIST += bench/bench_process_pool.py
CLEANFILES += bench/bench_process_pool$(EXEEXT)

bench-process-pool: bench/bench_process_pool$(EXEEXT)
	$(PYTHON) $(srcdir)/bench/bench_process_pool.py bench/bench_process_pool$(EXEEXT) $(BENCH_ARGS)

.PHONY: bench-process-pool
