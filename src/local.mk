lib_LTLIBRARIES = libfutures.la
libfutures_la_SOURCES = \
	src/as_completed.c \
	src/bytes.c \
	src/clock.c src/clock.h \
	src/error.c \
	src/executor.c src/executor.h \
	src/loop.c src/loop.h \
	src/loop_future.c \
	src/loop_handle.c src/loop_handle.h \
	src/future.c src/future.h \
	src/future_cache.c src/future_cache.h \
	src/map.c \
	src/spin.c src/spin.h \
	src/task.c src/task.h \
	src/thread_pool.c \
	src/timer_heap.c src/timer_heap.h \
	src/wait.c \
	src/waiter.c src/waiter.h
libfutures_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden
libfutures_la_LDFLAGS = -version-info $(FUT_LT_VERSION) -export-symbols-regex '^fut_[a-z]'
libfutures_la_LIBADD = -lm

# process pool (issue 3)
libfutures_la_SOURCES += \
	src/process_forkserver.c src/process_forkserver.h \
	src/process_pool.c \
	src/process_worker.c src/process_worker.h \
	src/wire.c src/wire.h
