#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Process pool benchmark, libfutures side by side with Python.

Runs bench_process_pool (the C side, JSON lines) and the same measurements with
concurrent.futures.ProcessPoolExecutor (fork context) and multiprocessing.Pool.map with
chunksize 1000, 5 runs each; prints min/median/max and the ratios. The _cold figures
time the first batch of a pool created in a fresh process, each run (the headline).
The 64 MiB rows (result, first result, result reusing freed memory, memcpy into fresh and
into reused memory) are printed against the pipe copy with issue 11's targets.

Usage: bench_process_pool.py [path/to/bench_process_pool] [--quick]
"""
import concurrent.futures as cf
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time

RUNS = 5


def noop(x):
    return x


def in_fresh_process(fn, *args):
    """fn(*args) in a forked child; its float result read back through a pipe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, repr(fn(*args)).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as inp:
        data = inp.read()
    os.waitpid(pid, 0)
    return float(data)


def cold_submit(n, cpus):
    with cf.ProcessPoolExecutor(cpus, mp_context=mp.get_context("fork")) as ex:
        t = time.perf_counter()
        fs = [ex.submit(noop, i) for i in range(n)]
        for f in fs:
            f.result()
        return n / (time.perf_counter() - t)


def cold_map(n, cpus):
    with mp.get_context("fork").Pool(cpus) as pool:
        t = time.perf_counter()
        pool.map(noop, range(n), chunksize=1000)
        return n / (time.perf_counter() - t)


def python_side(quick):
    ctx = mp.get_context("fork")
    cpus = len(os.sched_getaffinity(0))
    out = {}
    n = 5000 if quick else 20000
    out["submit_throughput_cold"] = [in_fresh_process(cold_submit, n, cpus)
                                     for _ in range(RUNS)]
    out["map_1M_auto_chunks_cold"] = [in_fresh_process(cold_map, 1000000, cpus)
                                      for _ in range(RUNS)]
    with cf.ProcessPoolExecutor(cpus, mp_context=ctx) as ex:
        list(ex.map(noop, range(cpus * 4)))
        runs = []
        for _ in range(RUNS):
            t = time.perf_counter()
            fs = [ex.submit(noop, i) for i in range(n)]
            for f in fs:
                f.result()
            runs.append(n / (time.perf_counter() - t))
        out["submit_throughput"] = runs
    with cf.ProcessPoolExecutor(1, mp_context=ctx) as ex:
        ex.submit(noop, 0).result()
        m = 300 if quick else 1000
        runs = []
        for _ in range(RUNS):
            t = time.perf_counter()
            for i in range(m):
                ex.submit(noop, i).result()
            runs.append((time.perf_counter() - t) / m * 1e6)
        out["round_trip"] = runs
    with ctx.Pool(cpus) as pool:
        items = range(1000000)
        runs = []
        for _ in range(RUNS):
            t = time.perf_counter()
            pool.map(noop, items, chunksize=1000)
            runs.append(len(items) / (time.perf_counter() - t))
        out["map_1M_auto_chunks"] = runs
    return out


def stats(v):
    return min(v), statistics.median(v), max(v)


def print_shared_memory_ratios(c):
    """Issue 11's targets for a 64 MiB fut_bytes result, on medians: 2x a plain pipe copy,
    10x when the pool reuses freed shared memory; memcpy into fresh and into reused memory
    are the two bounds on this guest."""
    if "pipe_copy_64MiB" not in c:
        return
    pipe = statistics.median(c["pipe_copy_64MiB"]["runs"])
    rows = [("result_64MiB", "warm result", 2), ("result_64MiB_first", "first result of a fresh process", None),
            ("result_64MiB_reuse", "result reusing freed memory", 10),
            ("argument_64MiB_first", "first argument (fut_submit_copy)", None),
            ("argument_64MiB_reuse", "argument reusing freed memory", None),
            ("memcpy_64MiB_fresh", "memcpy into fresh memory", None),
            ("memcpy_64MiB_reused", "memcpy into reused memory", None)]
    for name, what, target in rows:
        if name not in c or pipe <= 0:
            continue
        ratio = statistics.median(c[name]["runs"]) / pipe
        goal = f" (target {target}x: {'met' if ratio >= target else 'not met'})" if target else ""
        print(f"{what:<34} {ratio:6.2f}x the pipe copy{goal}")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    quick = "--quick" in sys.argv
    binary = args[0] if args else os.path.join(os.path.dirname(__file__), "bench_process_pool")
    cmd = [binary] + (["--quick"] if quick else [])
    c_lines = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()
    c = {d["name"]: d for d in map(json.loads, c_lines)}
    py = python_side(quick)

    print(f"{'measure':<22} {'unit':<8} {'libfutures min/median/max':>34} {'python min/median/max':>34} {'ratio':>8}")
    higher_better = {"submit_throughput": True, "round_trip": False, "map_1M_auto_chunks": True,
                     "submit_throughput_cold": True, "map_1M_auto_chunks_cold": True}
    for name, d in c.items():
        lo, med, hi = stats(d["runs"])
        line = f"{name:<22} {d['unit']:<8} {lo:>10.4g} {med:>11.4g} {hi:>11.4g}"
        if name in py:
            plo, pmed, phi = stats(py[name])
            ratio = med / pmed if higher_better[name] else pmed / med
            line += f" {plo:>10.4g} {pmed:>11.4g} {phi:>11.4g} {ratio:>7.1f}x"
        print(line)
    if "result_64MiB" in c and "pipe_copy_64MiB" in c:
        r = statistics.median(c["result_64MiB"]["runs"]) / statistics.median(c["pipe_copy_64MiB"]["runs"])
        print(f"64 MiB result at {r:.0%} of a plain pipe copy")
    print_shared_memory_ratios(c)
    print("ratios: throughput and map = libfutures/python; round trip = python/libfutures")


if __name__ == "__main__":
    main()
