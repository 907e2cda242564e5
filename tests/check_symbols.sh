#!/bin/sh
# The shared library exports only the public API: every dynamic symbol it defines is
# named fut_<something> (never fut__internal, never a helper of another prefix).
# Run from the top build directory (as make check does), or give the library as $1.
lib=${1:-${top_builddir:-.}/.libs/libfutures.so}
if [ ! -e "$lib" ]; then
    echo "SKIP: $lib not found (static-only build?)"
    exit 77
fi
symbols=$(nm -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }' | sed 's/@.*//' | sort -u)
if [ -z "$symbols" ]; then
    echo "FAIL: no defined dynamic symbols in $lib"
    exit 1
fi
bad=$(printf '%s\n' "$symbols" | grep -v '^fut_[a-z]')
if [ -n "$bad" ]; then
    echo "FAIL: $lib exports symbols outside the fut_ API:"
    printf '  %s\n' $bad
    exit 1
fi
for required in fut_submit fut_future_new fut_wait fut_map fut_strerror; do
    if ! printf '%s\n' "$symbols" | grep -qx "$required"; then
        echo "FAIL: $lib does not export $required"
        exit 1
    fi
done
echo "PASS: $(printf '%s\n' "$symbols" | wc -l) symbols, all fut_*"
