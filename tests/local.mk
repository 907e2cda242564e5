
# process pool (issue 3)
if HAVE_CHECK
TESTS += tests/test_process_pool
check_PROGRAMS += tests/test_process_pool
tests_test_process_pool_SOURCES = tests/test_process_pool.c
tests_test_process_pool_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_process_pool_LDADD = libfutures.la $(CHECK_LIBS) -lm
endif
