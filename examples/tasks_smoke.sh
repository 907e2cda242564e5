#!/bin/sh
# SPDX-License-Identifier: MIT
# The coroutine-task examples, each once with small arguments, their output checked.
# Run from the top of the build tree, as the test harness does.
set -eu
fail() { echo "tasks_smoke: $*" >&2; exit 1; }

out=$(./examples/async_main 0.05)
echo "$out"
echo "$out" | grep -q '^hello$' || fail "async_main: no hello"
echo "$out" | grep -q '^world (after 0\.[0-9][0-9] s)$' || fail "async_main: no world"
echo "$out" | grep -q '^started at ' || fail "async_main: no start time"
echo "$out" | grep -q '^finished at ' || fail "async_main: no finish time"

out=$(./examples/ping_pong 3)
want=$(printf 'ping 0\npong 0\nping 1\npong 1\nping 2\npong 2')
[ "$out" = "$want" ] || fail "ping_pong printed: $out"

out=$(./examples/async_gather 0.05)
echo "$out"
[ "$(echo "$out" | grep -c 'done at')" -eq 15 ] || fail "async_gather: not 15 tasks done"
[ "$(echo "$out" | grep -c '^  all 5 done in')" -eq 3 ] || fail "async_gather: not 3 rounds"

out=$(./examples/async_fib 12)
echo "$out"
for pair in "8 21" "9 34" "10 55" "11 89" "12 144"; do
    set -- $pair
    [ "$(echo "$out" | grep -c "^  fib($1) = $2\$")" -eq 2 ] || fail "async_fib: fib($1)"
done

./examples/echo_server --self-test 8
