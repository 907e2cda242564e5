# SPDX-License-Identifier: MIT
# src/mpi: the MPI executor, an optional library of its own (libfutures-mpi), built when
# configure finds an MPI C compiler. It is compiled with CC and the flags MPI's compiler
# wrapper reports (MPI_CFLAGS / MPI_LIBS), and links against libfutures.la, whose internals
# it reaches through core/backend.h's hook table only.
lib_LTLIBRARIES += libfutures-mpi.la
include_HEADERS += include/futures_mpi.h
pkgconfig_DATA += futures-mpi.pc
libfutures_mpi_la_SOURCES = \
	src/mpi/mpi_pool.c src/mpi/mpi_pool.h \
	src/mpi/objects.c src/mpi/objects.h \
	src/mpi/protocol.h \
	src/mpi/root.c src/mpi/root.h src/mpi/link.c \
	src/mpi/worker.c
libfutures_mpi_la_CFLAGS = $(AM_CFLAGS) $(MPI_CFLAGS) -fvisibility=hidden
libfutures_mpi_la_LDFLAGS = -version-info $(FUT_LT_VERSION) -export-symbols-regex '^fut_mpi_'
libfutures_mpi_la_LIBADD = libfutures.la $(MPI_LIBS) -ldl
