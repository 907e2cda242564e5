#!/bin/sh
# SPDX-License-Identifier: MIT
# The shared library exports exactly the public API:
#  1. the set of dynamic symbols it defines equals the set of FUT_API functions declared
#     in the public headers (a function declared but not exported fails, and so does an
#     exported function no header declares);
#  2. every exported symbol carries a LIBFUTURES_x.y version (src/libfutures.sym), and the
#     version script lists exactly the declared functions.
# Run from the top build directory (as make check does, with $srcdir set), or give the
# library as $1 and the source tree as $2.
lib=${1:-${top_builddir:-.}/.libs/libfutures.so}
src=${2:-${srcdir:-.}}
script=$src/src/libfutures.sym
if [ ! -e "$lib" ]; then
    echo "SKIP: $lib not found (static-only build?)"
    exit 77
fi
if ! command -v nm >/dev/null 2>&1; then
    echo "SKIP: nm not found"
    exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/check_symbols.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT HUP INT TERM
status=0

# The public headers of libfutures (the MPI executor's header belongs to libfutures-mpi).
# src/core/backend.h declares the one exported internal: libfutures-mpi's hook table.
headers=$(ls "$src"/include/futures.h "$src"/include/futures_*.h "$src"/src/core/backend.h \
          2>/dev/null | grep -v mpi)
# A declaration: FUT_API, a return type, the name and its "(" on the same line.
cat $headers | grep -oE 'FUT_API[^(]*[^A-Za-z0-9_]fut_[a-z0-9_]+[[:space:]]*\(' |
    grep -oE 'fut_[a-z0-9_]+[[:space:]]*\($' | tr -d '( ' | sort -u >"$tmp/declared"
if [ ! -s "$tmp/declared" ]; then
    echo "FAIL: no FUT_API function found in $headers"
    exit 1
fi

nm -D --defined-only "$lib" | awk 'NF >= 3 && $2 ~ /^[TWiV]$/ { print $3 }' \
    >"$tmp/exported_versioned"
sed 's/@.*//' "$tmp/exported_versioned" | sort -u >"$tmp/exported"

missing=$(comm -23 "$tmp/declared" "$tmp/exported")
extra=$(comm -13 "$tmp/declared" "$tmp/exported")
if [ -n "$missing" ]; then
    echo "FAIL: declared FUT_API in the header but not exported (add to src/libfutures.sym):"
    printf '  %s\n' $missing
    status=1
fi
if [ -n "$extra" ]; then
    echo "FAIL: exported but not declared FUT_API in the header:"
    printf '  %s\n' $extra
    status=1
fi
# Data symbols (nm types B, D, R) are no part of the API either.
data=$(nm -D --defined-only "$lib" | awk 'NF >= 3 && $2 ~ /^[BDRbdr]$/ && $3 !~ /^LIBFUTURES_/ { print $3 }')
if [ -n "$data" ]; then
    echo "FAIL: exported data symbols:"
    printf '  %s\n' $data
    status=1
fi

# Every function carries a version node of ours.
unversioned=$(grep -v '@LIBFUTURES_[0-9][0-9.]*$' "$tmp/exported_versioned" | grep -v '@@LIBFUTURES_')
if [ -n "$unversioned" ]; then
    echo "FAIL: exported without a LIBFUTURES_ version:"
    printf '  %s\n' $unversioned
    status=1
fi

# The version script names the declared functions, no more and no fewer.
if [ -r "$script" ]; then
    sed -e 's|/\*.*\*/||' -e '/^[[:space:]]*\*/d' -e '/^\/\*/d' "$script" |
        grep -oE '^[[:space:]]*fut_[a-z0-9_]+;' | tr -d ' ;\t' | sort >"$tmp/listed"
    dup=$(uniq -d "$tmp/listed")
    if [ -n "$dup" ]; then
        echo "FAIL: listed twice in $script:"
        printf '  %s\n' $dup
        status=1
    fi
    sort -u "$tmp/listed" -o "$tmp/listed"
    if ! cmp -s "$tmp/listed" "$tmp/declared"; then
        echo "FAIL: $script and the header's FUT_API functions differ:"
        comm -3 "$tmp/listed" "$tmp/declared" | sed 's/^\t/  header only: /; t; s/^/  script only: /'
        status=1
    fi
else
    echo "FAIL: no version script $script"
    status=1
fi

[ $status -eq 0 ] && echo "PASS: $(wc -l <"$tmp/exported") symbols exported, each declared FUT_API and versioned"
exit $status
