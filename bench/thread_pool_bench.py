#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Python's concurrent.futures.ThreadPoolExecutor on the benchmarks of bench-thread-pool.

Prints records that bench-thread-pool --import adds to its table (see bench_util.h):
    @bench SECTION WORKERS IMPLEMENTATION METRIC VALUE...
    # note
Counts are smaller than the C defaults (Python is slower); rates, latencies and speedups
stay comparable.
"""
import argparse
import concurrent.futures as cf
import os
import sys
import time

IMPL = "py-ThreadPoolExecutor"
WARM_BATCHES = 2  # as bench-thread-pool
MASK = (1 << 64) - 1


def count(text):
    scale = {"k": 10**3, "m": 10**6, "g": 10**9}.get(text[-1:].lower(), 1)
    return int(text[:-1] if scale > 1 else text) * scale


def noop(arg=None):
    return arg


def xorshift_steps(seed, steps):
    """Same chain as bench_xorshift_steps() in bench_util.c."""
    x = seed | 1
    for _ in range(steps):
        x ^= (x << 13) & MASK
        x ^= x >> 7
        x ^= (x << 17) & MASK
    return x


def record(section, workers, metric, values):
    print("@bench %s %d %s %s %s" % (section, workers, IMPL, metric,
                                     " ".join("%.6g" % v for v in values)), flush=True)


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def percentile(sorted_values, p):
    """Nearest rank, as bench_percentile_sorted()."""
    n = len(sorted_values)
    rank = max(1, -(-p * n // 100))
    return sorted_values[min(n, int(rank)) - 1]


def warm_up(ex):
    cf.wait([ex.submit(noop) for _ in range(1000)])


def timed_batch(ex, tasks):
    start = time.perf_counter()
    fs = [ex.submit(noop) for _ in range(tasks)]
    cf.wait(fs)
    return tasks / (time.perf_counter() - start)


def cold_and_warm(workers, tasks):
    """In a fresh process (forked): the first batch of a new pool, then WARM_BATCHES."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        with cf.ThreadPoolExecutor(max_workers=workers) as ex:
            rates = [timed_batch(ex, tasks) for _ in range(1 + WARM_BATCHES)]
        os.write(w, " ".join(map(repr, rates)).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as inp:
        data = inp.read()
    os.waitpid(pid, 0)
    return [float(v) for v in data.split()]


def throughput(workers, args):
    """As bench-thread-pool: --repeat fresh processes, each a cold batch and warm ones."""
    cold, warm = [], []
    for _ in range(args.repeat):
        rates = cold_and_warm(workers, args.tasks)
        cold.append(rates[0])
        warm.extend(rates[1:])
    record("cold", workers, "tasks/s", cold)
    record("throughput", workers, "tasks/s", warm)


def round_trip(workers, args):
    runs = {"mean": [], "median": [], "p99": []}
    clock = time.perf_counter
    with cf.ThreadPoolExecutor(max_workers=workers) as ex:
        warm_up(ex)
        for _ in range(args.repeat):
            lat = []
            for _ in range(args.round_trips):
                start = clock()
                ex.submit(noop).result()
                lat.append((clock() - start) * 1e6)
            lat.sort()
            runs["mean"].append(sum(lat) / len(lat))
            runs["median"].append(median(lat))
            runs["p99"].append(percentile(lat, 99))
    for metric in ("mean", "median", "p99"):
        record("roundtrip", workers, metric, runs[metric])


def cpu_batch(ex, args):
    start = time.perf_counter()
    if ex is None:
        results = [xorshift_steps(i + 1, args.cpu_steps) for i in range(args.cpu_tasks)]
    else:
        results = list(ex.map(xorshift_steps, range(1, args.cpu_tasks + 1),
                              [args.cpu_steps] * args.cpu_tasks))
    return time.perf_counter() - start, results


def cpu(args):
    """Each speedup divides a sequential and a pool run timed back to back."""
    print("# cpu: %s runs %d tasks x %d steps (Python is slower: fewer steps)"
          % (IMPL, args.cpu_tasks, args.cpu_steps))
    for workers in args.workers:
        speedups = []
        with cf.ThreadPoolExecutor(max_workers=workers) as ex:
            warm_up(ex)
            for _ in range(args.repeat):
                sequential, expected = cpu_batch(None, args)
                elapsed, results = cpu_batch(ex, args)
                if results != expected:
                    sys.exit("cpu results differ")
                speedups.append(sequential / elapsed)
        record("cpu", workers, "speedup", speedups)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", default="2,4")
    p.add_argument("--tasks", type=count, default=100000)
    p.add_argument("--round-trips", type=count, default=10000)
    p.add_argument("--cpu-tasks", type=count, default=2 * len(os.sched_getaffinity(0)))
    p.add_argument("--cpu-steps", type=count, default=1000000)
    p.add_argument("--repeat", type=count, default=5)
    p.add_argument("--only", default="throughput,roundtrip,cpu")
    p.add_argument("--quick", action="store_true", help="a tenth of the counts")
    args = p.parse_args()
    args.workers = [int(w) for w in args.workers.split(",")]
    if args.quick:
        args.tasks //= 10
        args.round_trips //= 10
        args.cpu_steps //= 10
    print("# %s: Python %s, %d no-op tasks per throughput run, %d round trips per run"
          % (IMPL, sys.version.split()[0], args.tasks, args.round_trips), flush=True)
    for workers in args.workers:
        if "throughput" in args.only:
            throughput(workers, args)
        if "roundtrip" in args.only:
            round_trip(workers, args)
    if "cpu" in args.only:
        cpu(args)


if __name__ == "__main__":
    main()
