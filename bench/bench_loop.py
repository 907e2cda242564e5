#!/usr/bin/env python3
"""asyncio's side of bench_loop: the same three measurements, printed as
`name min median max` lines that bench_loop.c reads (or that a person can)."""
import argparse
import asyncio
import concurrent.futures
import random
import statistics
import time


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    scale = 10 if args.quick else 1
    soon, timers, means, medians = [], [], [], []
    soon_loop = asyncio.new_event_loop()  # one loop, warmed up first, as bench_loop.c
    call_soon_rate(soon_loop, 1000000 // scale)
    for _ in range(args.runs):
        soon.append(call_soon_rate(soon_loop, 1000000 // scale))
        timers.append(timer_cpu(1000000 // scale))
        mean, median = round_trips(100000 // scale)
        means.append(mean)
        medians.append(median)
    soon_loop.close()
    for name, v in (("call_soon_per_s", soon), ("timer_cpu_us", timers),
                    ("trip_mean_us", means), ("trip_median_us", medians)):
        print(name, min(v), statistics.median(v), max(v))


if __name__ == "__main__":
    main()
