# SPDX-License-Identifier: MIT
# src/process: the fork-based process pool (pool, dispatcher, fork server, workers, wire).
# Uses src/core.
libfutures_la_SOURCES += \
	src/process/channel.c \
	src/process/dispatcher.c \
	src/process/fd_registry.c src/process/fd_registry.h \
	src/process/fork_client.c \
	src/process/fork_server.c src/process/fork_server.h \
	src/process/pool.c src/process/pool.h \
	src/process/ring.c src/process/ring.h \
	src/process/wire.c src/process/wire.h \
	src/process/worker.c src/process/worker.h
