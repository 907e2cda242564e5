# SPDX-License-Identifier: MIT
# src/thread: the thread pool. Uses src/core.
libfutures_la_SOURCES += src/thread/thread_pool.c
