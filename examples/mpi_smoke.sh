#!/bin/sh
# SPDX-License-Identifier: MIT
# make check runs examples/mpi_batch once under mpirun -np 3 with small arguments and checks
# its report; SKIP (77) when libfutures-mpi is not built. Flags as in tests/test_mpi.sh.
prog=./examples/mpi_batch
if [ ! -x "$prog" ] || [ -z "$MPIRUN" ]; then
    echo "SKIP: MPI not found at configure time"
    exit 77
fi
if [ -n "$FUT_SANITIZERS" ] && echo "$FUT_SANITIZERS" | grep -q thread; then
    export TSAN_OPTIONS="suppressions=${srcdir:-.}/tests/mpi-tsan.supp"
elif [ -n "$FUT_SANITIZERS" ]; then
    # as in tests/test_mpi.sh: name MPI's own allocations, suppress them
    export LSAN_OPTIONS="suppressions=${srcdir:-.}/tests/mpi.supp:print_suppressions=0"
    export ASAN_OPTIONS="fast_unwind_on_malloc=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    export OMPI_MCA_mca_base_component_disable_dlclose=1
fi
flags="-np 3"
if "$MPIRUN" --version 2>&1 | grep -q "Open MPI"; then
    flags="$flags --oversubscribe"
    [ "$(id -u)" -eq 0 ] && flags="$flags --allow-run-as-root"
    export OMPI_MCA_btl_vader_single_copy_mechanism=none
fi
# shellcheck disable=SC2086
out=$(timeout -k 10 120 "$MPIRUN" $flags "$prog" -n 8 -s 200000) || { echo "$out"; exit 1; }
echo "$out"
echo "$out" | grep -q "^sequential: 8 tasks" &&
    echo "$out" | grep -q "^mpi (2 worker ranks): .* speedup .*x, results match$" &&
    [ "$(echo "$out" | grep -c "^task .* done on rank [12] ")" -eq 8 ]
