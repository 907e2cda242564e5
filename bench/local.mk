# The event loop's benchmark (issue 4): built on request only (make bench/bench_loop).
EXTRA_DIST += bench/bench_loop.py
if HAVE_LIBUV
EXTRA_PROGRAMS += bench/bench_loop
bench_bench_loop_SOURCES = bench/bench_loop.c
bench_bench_loop_CFLAGS = $(AM_CFLAGS) $(LIBUV_CFLAGS)
bench_bench_loop_LDADD = libfutures.la $(LIBUV_LIBS) -lm
endif
