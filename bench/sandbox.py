"""Sandbox cost per execution: executions/s and p50/p99 latency of four ways to run untrusted code.

Not a test and not a shipped command. Run from the repository root (as root, with firejail and bubblewrap
installed; a runner that cannot start on this host is reported as n/a):

    .venv/bin/python bench/sandbox.py [--num 60] [--concurrency 2] [--json]

Workloads: (a) ``print(1)``, (b) ``import numpy`` plus a small computation, (c) a sympy ``solve``, (d) a
RecursionError 10^6 frames deep, uncaught (``plain`` and ``pool`` only, ``--num-deep`` runs: what a runaway
program costs inside the sandbox against outside). Runners, each driven by ``--concurrency`` client threads:

* ``plain``    — ``python -c`` in a subprocess, no isolation (the venv interpreter);
* ``firejail`` — firejail per call, Code-R1 style: ``--net=none`` plus ``--rlimit-as/cpu/fsize/nproc``, and
  ``--private-tmp``; ``--private`` itself is left out because it hides ``/root``, where this interpreter lives
  (the row ``firejail-private`` measures the full ``--net=none --private`` profile on ``/usr/bin/python3``
  for (a), which has no numpy or sympy);
* ``bwrap``    — bubblewrap per call with the same allowlisted root, namespaces and uid drop as the pool;
* ``pool``     — ``SandboxPool`` with 2 zygote workers (numpy and sympy preloaded, each request's child forked
  from the worker's zygote ahead of the request), full isolation.

A markdown table goes to stdout (or JSON lines with ``--json``), with the host's 1-minute load average when
each row started: the other jobs on the host slow every runner, and not equally. Ratios compare with
``firejail`` on the same workload, by executions/s and by CPU time per execution (this process, its children
and the pool's workers with all their descendants; less load-dependent, not independent).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from r1ci_cli.sandbox import SandboxOptions, SandboxPool, isolation  # noqa: E402
from r1ci_cli.sandbox.layout import compute_layout  # noqa: E402
from r1ci_cli.sandbox.limits import request_rlimits, CgroupSlot  # noqa: E402

WORKLOADS = {
    "a": "print(1)",
    "b": "import numpy as np\nm = np.arange(16.0).reshape(4, 4) + np.eye(4)\nprint(round(float(np.linalg.det(m)), 3))",
    "c": "import sympy as sp\nx = sp.Symbol('x')\nprint(sp.solve(x**2 - 5*x + 6, x))",
    "d": "import sys\nsys.setrecursionlimit(1_100_000)\ndef f(n):\n    return f(n + 1)\nf(0)",
}
# The runners of a workload that not all runners run; d fails on purpose (an uncaught RecursionError).
ONLY = {"d": ("plain", "pool")}
_RECURSION_ERROR = "RecursionError: maximum recursion depth exceeded"
TIMEOUT_S = 60.0
RLIMITS = ["--rlimit-as=4294967296", "--rlimit-cpu=61", "--rlimit-fsize=67108864", "--rlimit-nproc=256"]


def _check(proc: subprocess.CompletedProcess) -> None:
    if proc.returncode != 0 and not proc.stderr.rstrip().endswith(_RECURSION_ERROR.encode()):
        raise RuntimeError(proc.stderr.decode(errors="replace")[-400:])


def plain_runner() -> Callable[[str], None]:
    def run(code: str) -> None:
        _check(subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=TIMEOUT_S, cwd="/tmp"))
    return run


def firejail_runner(private: bool) -> Callable[[str], None]:
    if not shutil.which("firejail"):
        raise RuntimeError("firejail is not installed")
    base = ["firejail", "--quiet", "--noprofile", "--net=none", *RLIMITS]
    if private:
        def run(code: str) -> None:
            _check(subprocess.run([*base, "--private", "/usr/bin/python3", "-c", code], capture_output=True,
                                  timeout=TIMEOUT_S, cwd="/tmp"))
    else:
        def run(code: str) -> None:
            _check(subprocess.run([*base, "--private-tmp", sys.executable, "-c", code], capture_output=True,
                                  timeout=TIMEOUT_S, cwd="/tmp"))
    return run


def bwrap_runner() -> Callable[[str], None]:
    if not shutil.which("bwrap"):
        raise RuntimeError("bwrap is not installed")
    import numpy  # noqa: F401 - the layout binds the roots of these modules
    import sympy  # noqa: F401

    layout = compute_layout(("numpy", "sympy"))
    limits = request_rlimits(TIMEOUT_S, 1024, 64, 256, 64, CgroupSlot(None, None, ()), 0)
    limits.pop("RLIMIT_AS")
    argv = isolation.bwrap_argv(layout, 65534, 65534, 64, limits)
    argv[-1] = json.dumps({**json.loads(argv[-1]), "ready_fd": None})

    def run(code: str) -> None:
        _check(subprocess.run(argv, input=isolation.runner_stdin(code.encode()), capture_output=True,
                              timeout=TIMEOUT_S, cwd="/"))
    return run


def _descendants(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    children = [int(x) for x in handle.read().split()]
                found += children
                stack += children
        except OSError:
            pass
    return found


def cpu_seconds(worker_pids: list[int]) -> float:
    """CPU time of this process, its reaped children, and the pool's workers with all their descendants (each
    with its reaped children: a zygote reaps the requests' children).

    Wall time depends on what else the host runs; CPU time much less so (not at all only on an idle host).
    """
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in [p for w in worker_pids for p in (w, *_descendants(w))]:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15]) / ticks  # utime, stime, cutime, cstime
        except OSError:
            pass
    return total


def measure(run: Callable[[str], None], code: str, num: int, concurrency: int,
            worker_pids: list[int]) -> dict[str, float]:
    def timed(_i: int) -> float:
        start = time.perf_counter()
        run(code)
        return time.perf_counter() - start

    run(code)  # warm the page cache and, for the pool, the worker
    cpu_start = cpu_seconds(worker_pids)
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as executor:
        latencies = sorted(executor.map(timed, range(num)))
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds(worker_pids) - cpu_start
    return {"per_s": num / elapsed, "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
            "cpu_ms": cpu / num * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num", type=int, default=60, help="executions per runner and workload")
    parser.add_argument("--concurrency", type=int, default=2, help="client threads (the pool has 2 workers)")
    parser.add_argument("--num-deep", type=int, default=3, help="executions of workload d per runner")
    parser.add_argument("--workloads", default="".join(WORKLOADS), help="which workloads, e.g. ab")
    parser.add_argument("--json", action="store_true", help="JSON lines instead of a markdown table")
    args = parser.parse_args()
    load_at_start = os.getloadavg()[0]

    pool = SandboxPool(SandboxOptions(workers=2, isolation="zygote", preload=("numpy", "sympy")))
    runners: dict[str, Callable[[str], None] | str] = {}
    for name, make in (("plain", plain_runner), ("firejail", lambda: firejail_runner(False)),
                       ("firejail-private", lambda: firejail_runner(True)), ("bwrap", bwrap_runner),
                       ("pool", lambda: lambda code: _pool_run(pool, code))):
        try:
            runners[name] = make()
        except RuntimeError as err:
            runners[name] = f"n/a ({err})"
    rows = []
    try:
        for workload, code in WORKLOADS.items():
            if workload not in args.workloads:
                continue
            for name, run in runners.items():
                if (name == "firejail-private" and workload != "a") or name not in ONLY.get(workload, (name,)):
                    continue
                row = {"workload": workload, "runner": name, "load": os.getloadavg()[0]}
                if isinstance(run, str):
                    row["error"] = run
                else:
                    try:
                        pids = [p for p in pool.worker_pids if p] if name == "pool" else []
                        num = args.num_deep if workload == "d" else args.num
                        row.update(measure(run, code, num, args.concurrency, pids))
                        if name == "bwrap":
                            # bwrap's sandboxed process is reaped inside its PID namespace, out of our
                            # RUSAGE_CHILDREN: its CPU time cannot be seen from here.
                            row["cpu_ms"] = None
                    except (RuntimeError, subprocess.TimeoutExpired) as err:
                        row["error"] = str(err)[-200:]
                rows.append(row)
    finally:
        pool.close()
    baseline = {r["workload"]: r for r in rows if r["runner"] == "firejail" and "per_s" in r}
    baseline.update({r["workload"]: r for r in rows if r["workload"] in ONLY and r["runner"] == "plain"})
    for row in rows:
        base = baseline.get(row["workload"])
        if base and "per_s" in row:
            row["vs_firejail"] = row["per_s"] / base["per_s"]
            if row["cpu_ms"]:
                row["cpu_vs_firejail"] = base["cpu_ms"] / row["cpu_ms"]
    if args.json:
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
        return
    host = (f"{platform.node() or 'host'}: {os.cpu_count()} cores, {platform.platform()}, "
            f"load {load_at_start:.1f} at start and {os.getloadavg()[0]:.1f} at end, {time.strftime('%Y-%m-%d')}")
    sys.stdout.write(f"Sandbox benchmark ({host}; {args.num} runs ({args.num_deep} of d), {args.concurrency} "
                     "client threads; ratios against firejail, and for d against plain)\n\n")
    sys.stdout.write("| workload | runner | load | executions/s | p50 ms | p99 ms | CPU ms/exec | × firejail "
                     "(exec/s) | × firejail (CPU) |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
    for row in rows:
        if "error" in row:
            sys.stdout.write(f"| {row['workload']} | {row['runner']} | {row['load']:.1f} | {row['error']} "
                             "| | | | | |\n")
        else:
            ratio = f"{row['vs_firejail']:.1f}" if "vs_firejail" in row else ""
            cpu_ratio = f"{row['cpu_vs_firejail']:.1f}" if "cpu_vs_firejail" in row else ""
            cpu = f"{row['cpu_ms']:.1f}" if row["cpu_ms"] is not None else "n/a"
            sys.stdout.write(f"| {row['workload']} | {row['runner']} | {row['load']:.1f} | {row['per_s']:.1f} | "
                             f"{row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {cpu} | {ratio} | {cpu_ratio} |\n")


def _pool_run(pool: SandboxPool, code: str) -> None:
    result = pool.run(code)
    if result.status != "ok" and not result.stderr.rstrip().endswith(_RECURSION_ERROR):
        raise RuntimeError(f"{result.status}: {result.stderr[-300:]}")


if __name__ == "__main__":
    main()
