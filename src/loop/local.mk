# SPDX-License-Identifier: MIT
# src/loop: the event loop (loop, ready queue, timer heap, handles, loop futures).
# Uses src/core and the executor interface.
libfutures_la_SOURCES += \
	src/loop/handle.c src/loop/handle.h \
	src/loop/inbox.c \
	src/loop/io.c \
	src/loop/loop.c src/loop/loop.h \
	src/loop/loop_future.c \
	src/loop/ready.c src/loop/ready.h \
	src/loop/signal.c \
	src/loop/timer_heap.c src/loop/timer_heap.h
