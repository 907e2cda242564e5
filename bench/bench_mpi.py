#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""MPI executor benchmark: libfutures-mpi side by side with mpi4py.futures.

Without --peer: runs `MPIRUN -np 3 bench_mpi` (the C side, JSON lines) and
`MPIRUN -np 3 python3 bench_mpi.py --peer` (mpi4py.futures.MPICommExecutor), RUNS times
each, every run a fresh MPI job; prints min/median/max of the warm runs, the cold first
run apart, and the ratios against the targets of the issue.

With --peer (under mpirun): the mpi4py side, one JSON line per measure.

Usage: bench_mpi.py [path/to/bench_mpi] [--quick] [--runs=N]
Environment: MPIRUN (default mpirun); Open MPI flags are added when it is Open MPI.
"""
import json
import os
import statistics
import subprocess
import sys
import time

RUNS = 4


def noop(x):
    return x


def peer(quick):
    from mpi4py import MPI
    from mpi4py.futures import MPICommExecutor

    def report(name, value, unit):
        print(json.dumps({"name": name, "value": value, "unit": unit}), flush=True)

    with MPICommExecutor(MPI.COMM_WORLD, root=0) as ex:
        if ex is None:
            return
        list(ex.map(noop, range(64)))
        n = 5000 if quick else 20000
        t = time.perf_counter()
        fs = [ex.submit(noop, i) for i in range(n)]
        for f in fs:
            f.result()
        report("submit_throughput", n / (time.perf_counter() - t), "tasks/s")
        m = 300 if quick else 2000
        t = time.perf_counter()
        for i in range(m):
            ex.submit(noop, i).result()
        report("round_trip", (time.perf_counter() - t) / m * 1e6, "us")
        items = 100000 if quick else 1000000
        t = time.perf_counter()
        list(ex.map(noop, range(items), chunksize=1000))
        report("map_auto_chunks", items / (time.perf_counter() - t), "items/s")


def mpirun_flags(mpirun):
    flags = ["-np", "3"]
    try:
        version = subprocess.run([mpirun, "--version"], capture_output=True, text=True).stdout
    except OSError:
        version = ""
    if "Open MPI" in version:
        flags.append("--oversubscribe")
        if os.geteuid() == 0:
            flags.append("--allow-run-as-root")
    return flags


def run_job(cmd, env):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise RuntimeError("%s failed" % " ".join(cmd))
    values = {}
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            d = json.loads(line)
            values[d["name"]] = d["value"]
    return values


def series(cmd, env, runs):
    results = [run_job(cmd, env) for _ in range(runs)]
    return results[0], results[1:] or results


# measure: (label, unit, higher is better, target ratio C/peer or absolute)
MEASURES = [
    ("submit_throughput", "tasks/s", True, "C >= 20x mpi4py"),
    ("round_trip", "us", False, "C <= 1/3 of mpi4py"),
    ("map_auto_chunks", "items/s", True, "C >= 5x mpi4py (chunksize=1000)"),
    ("cpu_speedup", "x", True, "C >= 1.8 with two worker ranks"),
]


def peer_python():
    """An interpreter that imports mpi4py: this one, else the system's (python3-mpi4py)."""
    for candidate in (os.environ.get("BENCH_MPI_PYTHON"), sys.executable, "/usr/bin/python3"):
        if candidate and subprocess.run([candidate, "-c", "import mpi4py.futures"],
                                        capture_output=True).returncode == 0:
            return candidate
    return None


def fmt(values):
    if not values:
        return "n/a"
    return "%.4g / %.4g / %.4g" % (min(values), statistics.median(values), max(values))


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    quick = "--quick" in sys.argv
    runs = RUNS
    for a in sys.argv[1:]:
        if a.startswith("--runs="):
            runs = max(1, int(a.split("=", 1)[1]))
    if "--peer" in sys.argv:
        peer(quick)
        return 0
    binary = args[0] if args else os.path.join(os.path.dirname(__file__), "bench_mpi")
    mpirun = os.environ.get("MPIRUN", "mpirun")
    env = dict(os.environ, OMPI_MCA_btl_vader_single_copy_mechanism="none")
    base = [mpirun] + mpirun_flags(mpirun)
    extra = ["--quick"] if quick else []
    c_cold, c_warm = series(base + [binary] + extra, env, runs)
    python = peer_python()
    p_cold, p_warm = {}, []
    if python is None:
        sys.stderr.write("mpi4py peer skipped: no interpreter here imports mpi4py\n")
    else:
        try:
            p_cold, p_warm = series(base + [python, os.path.abspath(__file__), "--peer"] + extra, env, runs)
        except RuntimeError as e:
            sys.stderr.write("mpi4py peer skipped: %s\n" % e)
    print("MPI executor, mpirun -np 3 (root + 2 worker ranks), %d runs each, fresh jobs" % runs)
    print("warm runs: min / median / max; cold = the first run\n")
    print("%-18s %-9s %-30s %-30s %-10s %s" % ("measure", "unit", "libfutures-mpi", "mpi4py.futures",
                                              "ratio", "target"))
    for name, unit, higher, target in MEASURES:
        c = [r[name] for r in c_warm if name in r]
        p = [r[name] for r in p_warm if name in r]
        ratio = "n/a"
        if c and p:
            cm, pm = statistics.median(c), statistics.median(p)
            ratio = "%.2fx" % (cm / pm if higher else pm / cm)
        print("%-18s %-9s %-30s %-30s %-10s %s" % (name, unit, fmt(c), fmt(p), ratio, target))
        print("%-18s %-9s %-30s %-30s" % ("  cold", "", "%.4g" % c_cold.get(name, float("nan")),
                                           "%.4g" % p_cold[name] if name in p_cold else "n/a"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
