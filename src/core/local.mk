# SPDX-License-Identifier: MIT
# src/core: futures, waiting, bytes, the task context, the executor interface and fut_map.
# Knows no backend (see src/README.md for the include rule).
lib_LTLIBRARIES = libfutures.la
libfutures_la_SOURCES = \
	src/core/annotate.h \
	src/core/as_completed.c \
	src/core/backend.c src/core/backend.h \
	src/core/bytes.c src/core/bytes_impl.h src/core/bytes_shared.c src/core/bytes_shared.h \
	src/core/clock.c src/core/clock.h \
	src/core/error.c \
	src/core/executor.c src/core/executor.h \
	src/core/fork.c src/core/fork.h \
	src/core/future.c src/core/future.h \
	src/core/future_cache.c src/core/future_cache.h \
	src/core/list.h \
	src/core/map.c \
	src/core/poller.c src/core/poller.h \
	src/core/spin.c src/core/spin.h \
	src/core/task_context.c src/core/task_context.h \
	src/core/version.c \
	src/core/wait.c \
	src/core/waiter.c src/core/waiter.h
libfutures_la_CFLAGS = $(AM_CFLAGS) $(ANNOTATE_CFLAGS) -fvisibility=hidden
# Exported symbols and their versions: src/libfutures.sym (see its head to add one).
libfutures_la_LDFLAGS = -version-info $(FUT_LT_VERSION) \
	-Wl,--version-script=$(top_srcdir)/src/libfutures.sym
libfutures_la_DEPENDENCIES = $(top_srcdir)/src/libfutures.sym
EXTRA_DIST += src/libfutures.sym
libfutures_la_LIBADD = -lm
