#!/bin/sh
# SPDX-License-Identifier: MIT
# check-pages.sh: checks the libfutures manual pages.
#
# Usage: man/check-pages.sh [SRCDIR]
# (SRCDIR: the source tree; default: $srcdir, which make check sets, else .)
#
#  1. every public function declared in include/futures.h (every "fut_NAME(") has a
#     page man/man3/fut_NAME.3 (a real page or a ".so man3/PAGE.3" link to one);
#  2. every page under man/man3 and man/man7 renders with groff without any warning
#     (groff -man -ww -z); a ".so" link holds its .so line only, and its target exists
#     (as a page of man3 or man7, which renders in its own turn);
#  3. unless CHECK_EXAMPLES=no, the EXAMPLES section of every real page compiles:
#     it is extracted, unescaped and passed to "$CC -fsyntax-only -I SRCDIR/include"
#     (CC defaults to cc; the step is skipped when no compiler is found).
#
# Prints one line per problem and exits 1 if there was any, 77 (automake's SKIP) if
# groff is missing, else 0.
set -u

srcdir=${1:-${srcdir:-.}}
header=$srcdir/include/futures.h
mandir=$srcdir/man
status=0

fail() {
    echo "check-pages: $*" >&2
    status=1
}

if ! test -r "$header"; then
    echo "check-pages: no $header" >&2
    exit 1
fi
if ! command -v groff >/dev/null 2>&1; then
    echo "check-pages: groff not found, skipping" >&2
    exit 77
fi

# 1. a page for every public function
# (an identifier fut_NAME directly followed by "(": a declaration or a call, not the
# "(*fut_fn)(" of a function pointer type, nor a comment's bare "fut_")
functions=$(grep -oE '(^|[^A-Za-z0-9_])fut_[a-z0-9_]+[[:space:]]*\(' "$header" |
            sed -E 's/^[^f]*(fut_[a-z0-9_]+).*/\1/' | sort -u)
for fn in $functions; do
    test -f "$mandir/man3/$fn.3" || fail "missing page man/man3/$fn.3 for $fn()"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-pages.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT HUP INT TERM

# futures.h includes the configure-generated futures_version.h: it is in the build tree
# (${top_builddir}/include, or ./include under make check); outside a build, a copy of its
# template with zeroes for the numbers lets the examples compile.
mkdir -p "$tmp/include"
sed 's/@FUT_VERSION_[A-Z]*@/0/g' "$srcdir/include/futures_version.h.in" \
    >"$tmp/include/futures_version.h" 2>/dev/null

# 2. every page renders without warnings (from man/, where .so paths are relative to).
# A link renders as its target does, and the target is a page of man3 or man7, rendered
# in its own turn: a link is checked for its target and for holding nothing else.
# (Shell built-ins only, outside groff: a fork per page would cost more than the check.)
real_pages=
for page in "$mandir"/man3/*.3 "$mandir"/man7/*.7; do
    test -f "$page" || continue
    rel=${page#"$mandir"/}
    first= second=
    { IFS= read -r first; IFS= read -r second || test -n "$second"; } <"$page"
    has_second=$?
    target=
    case $first in
    .so*)
        target=${first#.so}
        while case $target in " "*) true ;; *) false ;; esac; do target=${target# }; done
        ;;
    esac
    if test -n "$target"; then
        case $target in
        man3/*.3 | man7/*.7) test -f "$mandir/$target" ||
                                 fail "$rel: .so target $target does not exist" ;;
        *) fail "$rel: .so target $target is not a page of man3 or man7" ;;
        esac
        test $has_second -ne 0 || fail "$rel: lines after its .so line"
        continue
    fi
    real_pages="$real_pages $page"
    if ! (cd "$mandir" && LC_ALL=C groff -man -Tutf8 -ww -z "$rel") >"$tmp/warnings" 2>&1 ||
            test -s "$tmp/warnings"; then
        fail "$rel: groff warnings:"
        sed 's/^/    /' "$tmp/warnings" >&2
    fi
done

# 3. the examples compile: every .EX/.EE block after .SH EXAMPLES (or EXAMPLE) of a page
# without .so, concatenated and unescaped into one file per page, and all of them given
# to one compiler run; where that fails, each file again, to name the pages at fault.
cc=${CC:-cc}
example_pages=$(test -n "$real_pages" && grep -L '^\.so' $real_pages)
if test "${CHECK_EXAMPLES:-yes}" != no && test -n "$example_pages" &&
        command -v "${cc%% *}" >/dev/null 2>&1; then
    mkdir "$tmp/examples" || exit 1
    awk -v dir="$tmp/examples" '
        FNR == 1 {
            n = split(FILENAME, part, "/")
            out = dir "/" part[n] ".c"
            printf "" > out
            in_examples = 0
            in_ex = 0
        }
        /^\.SH/ { in_examples = ($0 ~ /^\.SH "?EXAMPLES?"?$/) }
        in_examples && /^\.EE/ { in_ex = 0; next }
        in_examples && in_ex { print > out }
        in_examples && /^\.EX/ { in_ex = 1 }
    ' $example_pages
    sed -i -e 's/\\e/\\/g' -e 's/\\-/-/g' -e "s/\\\\(aq/'/g" \
           -e 's/\\(dq/"/g' -e 's/\\&//g' "$tmp"/examples/*.c
    programs=
    for page in $example_pages; do
        rel=${page#"$mandir"/}
        program=$tmp/examples/${page##*/}.c
        if test -s "$program" && test -z "${MPI_CFLAGS:-}" &&
                grep -q 'futures_mpi\.h' "$program"; then
            :  # libfutures-mpi's pages compile only where MPI was found
        elif test -s "$program"; then
            programs="$programs $program"
        else
            fail "$rel: no EXAMPLES program"
        fi
    done
    compile() {
        $cc -std=gnu11 -Wall -Werror -fsyntax-only -I"$srcdir/include" \
            -I"${top_builddir:-.}/include" -I"$tmp/include" ${MPI_CFLAGS:-} -x c "$@"
    }
    if test -n "$programs" && ! compile $programs >/dev/null 2>&1; then
        for page in $example_pages; do
            program=$tmp/examples/${page##*/}.c
            test -s "$program" || continue
            if ! compile "$program" >"$tmp/cc.log" 2>&1; then
                fail "${page#"$mandir"/}: the EXAMPLES program does not compile:"
                sed 's/^/    /' "$tmp/cc.log" >&2
            fi
        done
    fi
fi

exit $status
