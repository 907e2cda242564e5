#!/bin/sh
# SPDX-License-Identifier: MIT
# The include rule of src/ (see src/README.md): dependencies point one way.
#   core     -> core                       (knows no backend)
#   thread   -> core
#   process  -> core, process
#   loop     -> core, loop                 (the executor interface is core/executor.h)
#   task     -> core, loop, task
#   mpi      -> core, process, mpi
# Internal includes are written "room/file.h"; a bare "file.h" other than the public
# headers is an error too, so that the rule cannot be dodged.
src=${srcdir:-$(dirname "$0")/..}/src
allowed() {
    case $1 in
        core) echo "core" ;;
        thread) echo "core thread" ;;
        process) echo "core process" ;;
        loop) echo "core loop" ;;
        task) echo "core loop task" ;;
        mpi) echo "core process mpi" ;;
    esac
}
bad=0
checked=0
for dir in "$src"/*/; do
    room=$(basename "$dir")
    ok=$(allowed "$room")
    if [ -z "$ok" ]; then
        echo "FAIL: src/$room is not a room: add it to tests/check_layout.sh and src/README.md"
        bad=$((bad + 1))
        continue
    fi
    for file in "$dir"*.[ch]; do
        [ -e "$file" ] || continue
        checked=$((checked + 1))
        targets=$(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$file")
        for target in $targets; do
            case $target in
                futures.h|futures_mpi.h) continue ;;
                */*) to=${target%%/*} ;;
                *) to="(none)" ;;
            esac
            case " $ok " in
                *" $to "*) ;;
                *) echo "FAIL: src/$room/$(basename "$file") includes \"$target\": src/$room may include only $ok"
                   bad=$((bad + 1)) ;;
            esac
        done
    done
done
if [ "$checked" -eq 0 ]; then
    echo "FAIL: no source files under $src"
    exit 1
fi
[ "$bad" -eq 0 ] || exit 1
echo "PASS: $checked files keep the include rule"
