"""Shared machinery of the standalone benchmark scripts of this folder.

Each measurement runs in a process of its own: the driver starts the script
again with ``--worker SPEC`` (a JSON dict), with ``OMP_NUM_THREADS`` and the
BLAS thread variables set before the interpreter starts, so that the OpenMP,
BLAS and PyTorch thread pools of one measurement cannot disturb another. The
worker prints its result as one JSON line after ``RESULT_MARKER``.

Each worker also records how much CPU the rest of the machine used while it
was timing (``other_load``, in cores, from ``/proc/stat``); the driver waits
for a quiet machine before each attempt and retries measurements taken while
other processes were busy.
"""

import argparse
import gc
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

RESULT_MARKER = "@@result "
REPO_ROOT = Path(__file__).resolve().parents[1]
TORCH_INSTALL = "pip install torch==2.13.0"
MATMUL_SIZE = 2048


# ---------------------------------------------------------------------------
# Worker side
# ---------------------------------------------------------------------------


def import_seqclf():
    """Import seqclf and its compiled layers: installed package first, then
    the checkout."""
    try:
        import seqclf
        from seqclf import _layers
    except ImportError:
        if not (REPO_ROOT / "seqclf" / "__init__.py").is_file():
            raise
        for name in [m for m in sys.modules if m.split(".")[0] == "seqclf"]:
            del sys.modules[name]
        sys.path.insert(0, str(REPO_ROOT))
        import seqclf
        from seqclf import _layers
    return seqclf, _layers


def cell_registry():
    """The checkout's ``seqclf._cells`` (the cell registry), loaded from its
    file so that the driver needs neither an installed nor a built seqclf."""
    spec = importlib.util.spec_from_file_location(
        "_seqclf_cells", REPO_ROOT / "seqclf" / "_cells.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def machine_busy_seconds():
    """CPU seconds the whole machine spent busy (incl. steal), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    # user nice system idle iowait irq softirq steal ...
    ticks = [int(v) for v in fields[1:9]]
    busy = sum(ticks) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK")


def time_per_call(step, repeat, min_time, warmup_time, min_warmup_calls=2):
    """Seconds per call of ``step`` for each sample, calls per sample, and load.

    ``step`` is called until ``warmup_time`` has passed (at least
    ``min_warmup_calls`` times; no call at all when both are zero), then
    ``repeat`` samples are taken, each timing enough calls to last at least
    ``min_time`` seconds. The load is the CPU time (in cores) that the rest of
    the machine used while the samples were taken: the machine's busy time
    minus this process's CPU time, over the wall time.
    """
    start = time.perf_counter()
    n_calls = 0
    while n_calls < min_warmup_calls or time.perf_counter() - start < warmup_time:
        step()
        n_calls += 1
    if n_calls:
        per_call = (time.perf_counter() - start) / n_calls
        number = max(1, math.ceil(min_time / per_call))
    else:   # no warm-up asked for: one call per sample
        number = 1

    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        times = []
        busy0, cpu0 = machine_busy_seconds(), time.process_time()
        wall0 = time.perf_counter()
        for _ in range(repeat):
            start = time.perf_counter()
            for _ in range(number):
                step()
            times.append((time.perf_counter() - start) / number)
        busy1, cpu1 = machine_busy_seconds(), time.process_time()
        wall1 = time.perf_counter()
    finally:
        if gc_was_enabled:
            gc.enable()
    other_load = None
    if busy0 is not None:
        other_load = max(0.0, ((busy1 - busy0) - (cpu1 - cpu0)) / (wall1 - wall0))
    return times, number, other_load


def matmul_step(n_threads, seed):
    """NumPy float32 matmul of two 2048 x 2048 matrices on ``n_threads`` BLAS
    threads."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n_threads, user_api="blas")
    rng = np.random.default_rng(seed)
    n = MATMUL_SIZE
    A = rng.random((n, n), dtype=np.float32)
    B = rng.random((n, n), dtype=np.float32)
    C = np.empty((n, n), dtype=np.float32)

    def step():
        np.matmul(A, B, out=C)

    return step, {}


def machine_info():
    """Versions and machine facts."""
    info = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "n_cpus": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        seqclf, _ = import_seqclf()
        info["seqclf"] = getattr(seqclf, "__version__", "?")
        info["seqclf_file"] = seqclf.__file__
        try:
            from seqclf._openmp_helpers import openmp_enabled

            info["seqclf_openmp"] = bool(openmp_enabled())
        except ImportError:
            info["seqclf_openmp"] = None
    except ImportError as exc:
        info["seqclf_error"] = f"{type(exc).__name__}: {exc}"
    import numpy as np
    from threadpoolctl import threadpool_info

    info["numpy"] = np.__version__
    # After importing seqclf: its kernels call the BLAS that SciPy loads,
    # which need not be NumPy's.
    info["numpy_blas"] = [
        # The core is the kernel set OpenBLAS picked for this CPU (e.g. Haswell,
        # SkylakeX, Zen): it says which GEMM code ran.
        f"{p['internal_api']} {p.get('version')} ({p.get('threading_layer')}"
        + (f", core {p['architecture']}" if p.get("architecture") else "")
        + f", {os.path.basename(p.get('filepath', '?'))})"
        for p in threadpool_info()
        if p["user_api"] == "blas"
    ]
    if importlib.util.find_spec("torch") is not None:
        try:
            import torch

            info["torch"] = torch.__version__
        except Exception as exc:  # a broken install
            info["torch_error"] = f"{type(exc).__name__}: {exc}"
    return info


def report(result):
    """Print a worker's result where the driver looks for it."""
    print(RESULT_MARKER + json.dumps(result), flush=True)


# ---------------------------------------------------------------------------
# Driver side
# ---------------------------------------------------------------------------


def write_json(path, out, what="results"):
    """Write a run's results to ``path`` and say so."""
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
    print(f"{what} written to {path}")


def median(values):
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else 0.5 * (values[mid - 1] + values[mid])


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def spawn(script, spec, n_threads, blas_threads, timeout):
    """Run ``script --worker SPEC`` in a fresh process; return its result or None.

    ``OMP_NUM_THREADS`` is ``n_threads``; the BLAS libraries get
    ``blas_threads`` threads.
    """
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(n_threads)
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
        env[var] = str(blas_threads)
    cmd = [sys.executable, str(Path(script).resolve()), "--worker", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  worker timed out after {timeout} s: {spec}", file=sys.stderr)
        return None
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER):])
    tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
    print(f"  worker failed (exit {proc.returncode}): {spec}\n{tail}", file=sys.stderr)
    return None


def run_options(script, args, n_threads, blas_threads=1):
    """Run ``script``'s measurement on its own command-line options.

    For scripts whose worker takes the driver's parsed options (``args``, an
    ``argparse.Namespace`` with a ``timeout``) rather than a spec of its
    own: they go to the worker as its spec, on ``n_threads`` OpenMP threads.
    Returns the worker's result; exits if the worker fails.
    """
    spec = {k: v for k, v in vars(args).items() if k != "worker"}
    result = spawn(script, spec, n_threads, blas_threads, args.timeout)
    if result is None:
        sys.exit(1)
    return result


def wait_for_quiet(max_load, max_wait, window=0.25):
    """Wait (up to ``max_wait`` s) until other processes use <= ``max_load`` cores."""
    deadline = time.perf_counter() + max_wait
    while True:
        busy0, wall0 = machine_busy_seconds(), time.perf_counter()
        if busy0 is None:
            return
        time.sleep(window)
        load = (machine_busy_seconds() - busy0) / (time.perf_counter() - wall0)
        if load <= max_load or time.perf_counter() > deadline:
            return


def measure(script, spec, n_threads, blas_threads, args):
    """One measurement; retried while other processes load the machine.

    Each attempt first waits for the machine to be quiet (at most
    ``args.max_wait`` seconds). Up to ``args.tries`` attempts are made; the
    first whose other load is at most ``args.max_load`` cores is kept, else
    the quietest attempt.
    """
    best = None
    for attempt in range(1, max(1, args.tries) + 1):
        wait_for_quiet(args.max_load, args.max_wait)
        res = spawn(script, spec, n_threads, blas_threads, args.timeout)
        if res is None:
            return best
        res["attempts"] = attempt
        load = res.get("other_load")
        if best is None or (load is not None and load < best["other_load"]):
            best = res
        if load is None or load <= args.max_load:
            break
    return best


def measure_matmul(script, threads, args, timing):
    """NumPy's float32 matmul GFLOP/s at each thread count: ``{n: dict}``."""
    matmul = {}
    for n in threads:
        spec = {"kind": "matmul", "n_threads": n, **timing, "min_time": 0.0}
        res = measure(script, spec, n, n, args)
        if res is not None:
            t = median(res["times"])
            matmul[n] = {"seconds": t, "gflops": 2 * MATMUL_SIZE**3 / t / 1e9,
                         "times": res["times"], "other_load": res.get("other_load")}
            print(f"  matmul {n}T: {matmul[n]['gflops']:.1f} GFLOP/s", file=sys.stderr)
    return matmul


def add_common_arguments(parser):
    """The options shared by the comparison scripts: seed, retries, output."""
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tries", type=int, default=3,
                        help="attempts per measurement while the machine is busy "
                             "(default 3)")
    parser.add_argument("--max-load", type=float, default=0.25,
                        help="CPU cores used by other processes above which a "
                             "measurement is retried and flagged (default 0.25)")
    parser.add_argument("--max-wait", type=float, default=30.0,
                        help="seconds to wait for a quiet machine before each attempt "
                             "(default 30)")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds before a worker is abandoned")
    parser.add_argument("--json", metavar="PATH", default=None,
                        help="also write the configuration and all results to PATH")
    parser.add_argument("--worker", metavar="SPEC", default=None,
                        help=argparse.SUPPRESS)


def run_if_worker(args, run_worker):
    """In a worker process, run its measurement and return True."""
    if args.worker is None:
        return False
    run_worker(json.loads(args.worker))
    return True


def print_header(info):
    """Print the machine and library versions; return (have_seqclf, have_torch)."""
    have_seqclf = "seqclf" in info
    have_torch = "torch" in info
    print(f"CPU: {info.get('cpu', '?')}, {info.get('n_cpus', '?')} usable CPUs; "
          f"Python {info.get('python', '?')}, NumPy {info.get('numpy', '?')} "
          f"({', '.join(info.get('numpy_blas', [])) or 'BLAS ?'})")
    if have_seqclf:
        print(f"seqclf {info['seqclf']} from {info['seqclf_file']} "
              f"(OpenMP: {info.get('seqclf_openmp')})")
    else:
        print("NOTE: seqclf could not be imported "
              f"({info.get('seqclf_error', 'unknown error')}); build it first "
              "(pip install . or python setup.py build_ext --inplace). "
              "Timing PyTorch only.")
    if have_torch:
        print(f"PyTorch {info['torch']}")
    else:
        reason = info.get("torch_error", "not installed")
        print(f"NOTE: PyTorch is not available ({reason}); "
              f"`{TORCH_INSTALL}` to compare with it. Timing seqclf only.")
    return have_seqclf, have_torch


def print_table(headers, lines):
    """Print rows of strings as an aligned text table (first column left)."""
    widths = [max(len(h), *(len(line[i]) for line in lines))
              for i, h in enumerate(headers)]

    def fmt_row(cells):
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths))
        )

    print(fmt_row(headers))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print(fmt_row(line))
