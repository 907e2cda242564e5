#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs the thread pool benchmarks: the Python peer first, then bench-thread-pool, which
# prints one table with every implementation (see bench/README.md).
#
# usage: run-benchmarks.sh [--bindir=DIR] [--srcdir=DIR] [OPTION]...
#   --bindir  where bench-thread-pool was built (default: bench, as `make bench` does)
#   --srcdir  where thread_pool_bench.py lives (default: this script's directory)
#   OPTIONs go to bench-thread-pool (see its --help). --workers, --repeat, --only,
#   --cpu-tasks and --quick also go to the Python script; --py-tasks=N, --py-round-trips=N
#   and --py-cpu-steps=N set its own, smaller, counts.
# PYTHON names the interpreter (default python3); PYTHON=: skips the Python peer.
set -eu

bindir=bench
srcdir=$(dirname "$0")
c_args=
py_args=
for arg in "$@"; do
    case $arg in
    --bindir=*) bindir=${arg#--bindir=} ;;
    --srcdir=*) srcdir=${arg#--srcdir=} ;;
    --py-*) py_args="$py_args --${arg#--py-}" ;;
    --workers=*|--repeat=*|--only=*|--cpu-tasks=*|--quick)
        c_args="$c_args $arg"
        py_args="$py_args $arg" ;;
    *) c_args="$c_args $arg" ;;
    esac
done

bench=$bindir/bench-thread-pool
if [ ! -x "$bench" ]; then
    echo "run-benchmarks.sh: $bench is not built; run 'make bench'" >&2
    exit 1
fi

python=${PYTHON:-python3}
results=$bindir/thread-pool-python.results
: > "$results"
if [ "$python" = ":" ] || ! command -v "$python" >/dev/null 2>&1; then
    echo "# Python was not found: py-ThreadPoolExecutor skipped" > "$results"
else
    echo "running the Python peer ($python) ..." >&2
    # shellcheck disable=SC2086 # word splitting of the option lists is intended
    if ! "$python" "$srcdir/thread_pool_bench.py" $py_args > "$results"; then
        echo "# the Python benchmark failed: see its messages above" >> "$results"
    fi
fi

echo "running bench-thread-pool ..." >&2
status=0
# shellcheck disable=SC2086
"$bench" --import="$results" $c_args || status=1

# The event loop and the process pool have benchmarks of their own; each prints its table.
if [ -x "$bindir/bench_loop" ]; then
    echo >&2
    echo "running bench_loop ..." >&2
    "$bindir/bench_loop" --asyncio "$srcdir/bench_loop.py" || status=1
fi
if [ -x "$bindir/bench_tasks" ]; then
    echo >&2
    echo "running bench_tasks ..." >&2
    "$bindir/bench_tasks" --python="$python" --script="$srcdir/bench_tasks.py" \
        --fcontext="$bindir/bench_fcontext" || status=1
fi
if [ -x "$bindir/bench_process_pool" ] && [ "$python" != ":" ] &&
   command -v "$python" >/dev/null 2>&1; then
    echo >&2
    echo "running bench_process_pool ..." >&2
    "$python" "$srcdir/bench_process_pool.py" "$bindir/bench_process_pool" || status=1
fi
# The MPI executor (built when configure found MPI): beside mpi4py.futures, mpirun -np 3.
if [ -x "$bindir/bench_mpi" ] && [ "$python" != ":" ] && command -v "$python" >/dev/null 2>&1; then
    echo >&2
    echo "running bench_mpi ..." >&2
    "$python" "$srcdir/bench_mpi.py" "$bindir/bench_mpi" || status=1
fi
exit $status
