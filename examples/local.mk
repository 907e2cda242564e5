# The event loop's examples (issue 4).
noinst_PROGRAMS += examples/async_print examples/gather_sleeps examples/line_server
examples_async_print_SOURCES = examples/async_print.c
examples_async_print_LDADD = libfutures.la
examples_gather_sleeps_SOURCES = examples/gather_sleeps.c
examples_gather_sleeps_LDADD = libfutures.la
examples_line_server_SOURCES = examples/line_server.c
examples_line_server_LDADD = libfutures.la
