#!/bin/sh
# make check runs every example once, with small arguments, so that an example that no
# longer builds or runs is caught here rather than by a reader of README.md. Run from the
# top of the build tree, as the test harness does.
set -eu

./examples/cpu_batch -n 6 -s 200000 -w 2
./examples/hash_files
# A file that cannot be read must be reported and must fail the run.
if ./examples/hash_files ./examples/no-such-file; then
    echo "smoke: hash_files succeeded on a missing file" >&2
    exit 1
fi
./examples/first_completed
