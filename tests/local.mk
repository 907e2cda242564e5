if HAVE_CHECK
# The event loop (issue 4).
check_PROGRAMS += tests/test_loop
TESTS += tests/test_loop
tests_test_loop_SOURCES = tests/test_loop.c
tests_test_loop_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_loop_LDADD = libfutures.la $(CHECK_LIBS) -lm
endif

# The line_server example checks itself (issue 4).
EXTRA_DIST += tests/line_server_selftest.sh
TESTS += tests/line_server_selftest.sh
