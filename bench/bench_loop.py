#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""asyncio's side of bench_loop: the same measurements, each run in a fresh process,
printed as `@bench SECTION WORKERS IMPLEMENTATION METRIC VALUE...` records that
bench_loop.c adds to its table (see bench/bench_util.h)."""
import argparse
import asyncio
import concurrent.futures
import json
import os
import random
import statistics
import time

WARM_RUNS = 2  # as bench_loop.c


def call_soon_rate(loop, n):
    count = 0

    def cb():
        nonlocal count
        count += 1

    t0 = time.perf_counter()
    for _ in range(n):
        loop.call_soon(cb)
    loop.call_soon(loop.stop)
    loop.run_forever()
    t = time.perf_counter() - t0
    assert count == n
    return n / t


def timer_cpu(n):
    loop = asyncio.new_event_loop()
    rng = random.Random(42)
    delays = [rng.random() for _ in range(n)]
    count = 0

    def cb():
        nonlocal count
        count += 1
        if count == n:
            loop.stop()

    c0 = time.process_time()
    for d in delays:
        loop.call_later(d, cb)
    loop.run_forever()
    c = time.process_time() - c0
    loop.close()
    return c / n * 1e6


def round_trips(n):
    loop = asyncio.new_event_loop()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=4)
    trips = []

    async def run():
        for _ in range(n):
            t0 = time.perf_counter()
            await loop.run_in_executor(pool, int)
            trips.append((time.perf_counter() - t0) * 1e6)

    loop.run_until_complete(run())
    loop.close()
    pool.shutdown()
    return statistics.mean(trips), statistics.median(trips)


def one_run(scale):
    """One fresh process's figures: call_soon cold then warm, timers, round trips."""
    loop = asyncio.new_event_loop()
    soon = [call_soon_rate(loop, 1000000 // scale) for _ in range(1 + WARM_RUNS)]
    loop.close()
    mean, median = round_trips(100000 // scale)
    return {"soon-cold": soon[:1], "soon": soon[1:], "timer": [timer_cpu(1000000 // scale)],
            "trip-mean": [mean], "trip-median": [median]}


def in_fresh_process(fn, *args):
    """fn(*args) in a forked child, its JSON result read back through a pipe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        with os.fdopen(w, "w") as out:
            json.dump(fn(*args), out)
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as inp:
        data = inp.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    scale = 10 if args.quick else 1
    results = {}
    for _ in range(args.runs):
        for key, values in in_fresh_process(one_run, scale).items():
            results.setdefault(key, []).extend(values)
    rows = (("soon-cold", "soon-cold", "cb/s"), ("soon", "soon", "cb/s"),
            ("timer", "timer", "us"), ("trip-mean", "trip", "mean"),
            ("trip-median", "trip", "median"))
    for key, section, metric in rows:
        print("@bench", section, 1, "asyncio", metric, *results[key])


if __name__ == "__main__":
    main()
