
# process pool (issue 3)
noinst_PROGRAMS += examples/random_workers
examples_random_workers_SOURCES = examples/random_workers.c
examples_random_workers_LDADD = libfutures.la
