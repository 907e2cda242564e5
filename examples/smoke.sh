#!/bin/sh
# SPDX-License-Identifier: MIT
# make check runs every example once, with small arguments, and checks its output, so
# that an example that no longer builds, runs or says what README.md shows is caught here
# rather than by a reader. Run from the top of the build tree, as the test harness does.
# (shared_counter and line_server run as tests of their own: see examples/local.mk and
# tests/line_server_selftest.sh.)
set -eu

out=$(mktemp "${TMPDIR:-/tmp}/smoke.XXXXXX")
trap 'rm -f "$out"' EXIT HUP INT TERM

# expect PATTERN: the last example's output (in $out) has a line matching PATTERN
expect() {
    if ! grep -q -- "$1" "$out"; then
        echo "smoke: expected a line matching '$1' in:" >&2
        cat "$out" >&2
        exit 1
    fi
}

./examples/cpu_batch -n 6 -s 200000 -w 2 >"$out"
expect '^threads: .*results match$'
expect '^processes: .*results match$'
expect '^  pool: 6 submitted, 6 completed, 0 failed, 0 cancelled$'

./examples/hash_files >"$out"
# A file that cannot be read must be reported and must fail the run.
if ./examples/hash_files ./examples/no-such-file >"$out" 2>&1; then
    echo "smoke: hash_files succeeded on a missing file" >&2
    exit 1
fi

./examples/first_completed >"$out"

./examples/async_print >"$out"
expect 'one$'
expect 'five$'

./examples/gather_sleeps >"$out"
expect '^10 sleeps totalling 5.5 s finished in'

./examples/random_workers >"$out"
expect '^parent [0-9]*: rand() would give'
expect '^worker [0-9]*: rand() [0-9]*'

# The GLib embedding, when GLib was found (configure builds it only then).
if [ -x ./examples/glib_embed ]; then
    ./examples/glib_embed >"$out"
    expect '^libfutures timer fired'
    expect '^executor task finished: 144$'
    expect '^libfutures call_soon_threadsafe from another thread arrived$'
    expect '^all 3 libfutures events handled'
fi

# signal_server stops cleanly on SIGTERM (its self-test) and on SIGINT from outside.
./examples/signal_server --self-test >"$out"
expect 'self-test reply HELLO: ok'
expect 'got SIGTERM'
expect '^signal_server: stopped cleanly$'
./examples/signal_server 0 >"$out" &
pid=$!
tries=0
until grep -q 'listening on' "$out"; do
    tries=$((tries + 1))
    if [ $tries -gt 1000 ]; then  # 100 s: only a hang gets here
        kill -KILL $pid 2>/dev/null
        echo "smoke: signal_server never listened" >&2
        exit 1
    fi
    sleep 0.1
done
kill -INT $pid
status=0
wait $pid || status=$?
if [ $status -ne 0 ]; then
    echo "smoke: signal_server exited $status after SIGINT" >&2
    cat "$out" >&2
    exit 1
fi
expect 'got SIGINT'
expect '^signal_server: stopped cleanly$'
