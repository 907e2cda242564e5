#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""asyncio's side of bench_tasks: each measurement in a fresh process (a new interpreter),
printed as `@bench SECTION 1 asyncio METRIC v1 v2 ...` records that bench_tasks imports.
The first (cold) run is dropped, as in bench_tasks."""
import argparse
import asyncio
import resource
import subprocess
import sys
import time


async def pingpong(n):
    async def player():
        for _ in range(n // 2):
            await asyncio.sleep(0)
    t0 = time.perf_counter()
    await asyncio.gather(player(), player())
    return (time.perf_counter() - t0) / n * 1e9


async def spawn(n):
    async def noop():
        return None
    t0 = time.perf_counter()
    done = 0
    while done < n:
        await asyncio.gather(*[asyncio.create_task(noop()) for _ in range(1000)])
        done += 1000
    return done / (time.perf_counter() - t0)


def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024


async def await_many(n):
    loop = asyncio.get_running_loop()
    rss0 = rss_kib()
    t0 = time.perf_counter()
    shared = loop.create_future()
    loop.call_later(0.01, shared.set_result, None)
    peak = [0]
    loop.call_later(0.005, lambda: peak.__setitem__(0, rss_kib()))

    async def sleeper():
        await shared
    await asyncio.gather(*[asyncio.create_task(sleeper()) for _ in range(n)])
    return time.perf_counter() - t0, (peak[0] - rss0) / n


def one(kind, n):
    if kind == "switch":
        print(asyncio.run(pingpong(n)))
    elif kind == "spawn":
        print(asyncio.run(spawn(n)))
    else:
        print(*asyncio.run(await_many(n)))


def runs(kind, n, repeat):
    values = []
    for _ in range(repeat + 1):
        out = subprocess.run([sys.executable, __file__, "--one", kind, str(n)],
                             capture_output=True, text=True, check=True).stdout.split()
        values.append([float(v) for v in out])
    return values[1:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--switches", type=int, default=200000)
    ap.add_argument("--spawn", type=int, default=100000)
    ap.add_argument("--wait", type=int, default=100000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--one", nargs=2)
    a = ap.parse_args()
    if a.one:
        one(a.one[0], int(a.one[1]))
        return
    v = runs("switch", a.switches, a.repeat)
    print("@bench switch 1 asyncio ns_per_switch", *[r[0] for r in v])
    v = runs("spawn", a.spawn, a.repeat)
    print("@bench spawn 1 asyncio tasks_per_s", *[r[0] for r in v])
    v = runs("await", a.wait, a.repeat)
    print("@bench await 1 asyncio total_s", *[r[0] for r in v])
    print("@bench await 1 asyncio rss_KiB_per_task", *[r[1] for r in v])
    print("# asyncio: Python %s" % sys.version.split()[0])


if __name__ == "__main__":
    main()
