#!/usr/bin/env python
"""Count the instructions of one training batch and one predict batch.

Usage (from the repository root)::

    python benchmarks/count_instructions.py [--configs lstm128 gru128 ...]
                                            [--json PATH] [--compare BEFORE.json]
                                            [--runs 2]

Timings on a shared machine are noisy; instruction counts are not. This
script runs one Python process under valgrind's callgrind with
instrumentation off from the start (``--instr-atstart=no``), so that the
interpreter's start-up, the imports, the data and the model's construction
cost nothing. A small helper library, compiled when the script runs from a
few lines of C on ``<valgrind/callgrind.h>``, turns instrumentation on and
off around the counted code through ``ctypes``. For each configuration:

* ``train``: one mini-batch as ``RNNClassifier.fit`` runs it: one call of
  the network's training plan (``RecurrentNetwork.plan``, run by
  ``TrainingPlan.run``) for a batch of one sequence order drawn per run:
  gathering its rows, forward, loss, backward, the checks and Adam's
  update, with the plan made once beforehand, as a fit makes it once.
  Builds without ``RecurrentNetwork.plan`` (from before the one training
  engine) are refused: count them with the script of their own tree;
* ``predict``: one batch of ``predict_proba``'s computation
  (``RNNClassifier._forward_outputs``: forward pass, head, softmax).

The estimator is first fitted on one batch (so that the optimizer has its
state), and each phase runs once uncounted (warm-up) before the counted
run. Float32, one thread (``OMP_NUM_THREADS=1``, ``OPENBLAS_NUM_THREADS=1``
and ``PYTHONHASHSEED=0`` in the counted process).

Configurations: ``lstm128``, ``gru128`` and ``rnn31`` (tanh RNN, 31 units)
on MNIST-shaped batches of 128 (28 steps x 28 features), and ``gru64_t1024``
(GRU of 64 units, 1,024 steps x 8 features, batch 64).

``--keep-dumps DIR`` keeps callgrind's dump files (one per phase) for
``callgrind_annotate``. ``--json PATH`` writes the counts; ``--compare
BEFORE.json`` prints the ratios of this run's counts to those of an earlier
one. ``--runs 2`` counts twice and prints the largest difference between the
runs (two runs of one command agreed to within 0.01%). A configuration's
count moves by about 0.2% with the configurations counted before it in the
same process, so
compare runs of the same ``--configs``.

valgrind does not emulate the flush-to-zero and denormals-are-zero modes of
MXCSR (it warns when code sets them and computes with subnormals as they
are): the counts are of the instructions executed, not of the time the CPU
spends on subnormal operands, which ``compare_torch_long.py`` measures.

Under callgrind the code runs tens of times slower than natively, and the
start-up (uninstrumented) several times slower: a run takes minutes, most
of it the GRU at 1,024 steps, and far longer on a loaded machine;
``--configs`` picks a subset.

seqclf is imported as ``_peer.import_seqclf`` does (installed package, else
this checkout); ``PYTHONPATH`` chooses another build.
"""

import argparse
import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import _peer

# name: (cell, hidden sizes, steps, features, batch)
CONFIGS = {
    "lstm128": ("lstm", (128,), 28, 28, 128),
    "gru128": ("gru", (128,), 28, 28, 128),
    "rnn31": ("rnn", (31,), 28, 28, 128),
    "gru64_t1024": ("gru", (64,), 1024, 8, 64),
}
PHASES = ("train", "predict")
N_CLASSES = 10

HELPER_C = r"""
#include <valgrind/callgrind.h>
int cg_running(void) { return RUNNING_ON_VALGRIND; }
void cg_start(void) { CALLGRIND_START_INSTRUMENTATION; }
void cg_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }
void cg_zero(void) { CALLGRIND_ZERO_STATS; }
void cg_dump(const char *name) { CALLGRIND_DUMP_STATS_AT(name); }
"""


def _label(name):
    cell, hidden, steps, features, batch = CONFIGS[name]
    kind = {"rnn": "tanh-RNN", "gru": "GRU", "lstm": "LSTM"}[cell]
    return f"{kind} {hidden[0]}, {steps} x {features}, batch {batch}"


# ---------------------------------------------------------------------------
# Counted process (runs under callgrind)
# ---------------------------------------------------------------------------


def run_child(helper, names):
    """Run every configuration's phases, each between zero and dump."""
    import numpy as np

    warnings.simplefilter("ignore")     # ConvergenceWarning after one batch
    cg = ctypes.CDLL(helper)
    if not cg.cg_running():
        raise SystemExit("the counted process must run under valgrind")
    seqclf, _ = _peer.import_seqclf()

    def counted(name, phase, step):
        step()                              # warm-up, not counted
        cg.cg_zero()
        cg.cg_start()
        step()
        cg.cg_stop()
        cg.cg_dump(f"{name}/{phase}".encode())

    # The phases run the bodies of fit's and predict_proba's loops, which
    # those take under seqclf's BLAS limit: taken here once, outside the
    # counted runs (BLAS is on one thread by the environment already).
    from seqclf._openmp_helpers import single_threaded_blas

    single_threaded_blas().acquire()
    for name in names:
        cell, hidden, steps, features, batch = CONFIGS[name]
        rng = np.random.default_rng(0)
        X = rng.random((batch, steps, features), dtype=np.float32)
        y = rng.integers(0, N_CLASSES, size=batch)
        y[:N_CLASSES] = np.arange(N_CLASSES)   # every class present
        clf = seqclf.RNNClassifier(cell, hidden, batch_size=batch, max_iter=1,
                                   random_state=0).fit(X, y)
        net = clf._network
        lengths = np.full(batch, steps, dtype=np.intp)
        y_idx = np.searchsorted(clf.classes_, y).astype(np.intp)
        rs = np.random.RandomState(0)

        if not hasattr(net, "plan"):
            raise SystemExit("this build has no RecurrentNetwork.plan: count "
                             "it with benchmarks/count_instructions.py of "
                             "its own tree")
        plan = net.plan(X, lengths, y_idx, None, batch, clf._optimizer,
                        alpha=clf.alpha, clip_norm=clf.clip_norm)

        def train_batch():
            # One batch in one call of the plan, as fit's groups run them
            # (no dropout: the plan takes no draws).
            order = rs.permutation(batch).astype(np.intp)
            plan.run(order, 0, 1, 1)

        def predict_batch():
            clf._forward_outputs(X, lengths, 1)

        counted(name, "train", train_batch)
        counted(name, "predict", predict_batch)


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------


def build_helper(folder):
    """Compile the instrumentation helper into ``folder``; return its path."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("no C compiler found (set CC)")
    src = Path(folder) / "cgctl.c"
    lib = Path(folder) / "libcgctl.so"
    src.write_text(HELPER_C)
    proc = subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(lib), str(src)],
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"compiling the callgrind helper failed (is valgrind's "
                         f"callgrind.h installed?):\n{proc.stderr}")
    return str(lib)


def parse_dumps(folder):
    """``{(config, phase): instructions}`` from callgrind's dump files."""
    counts = {}
    for path in sorted(Path(folder).glob("callgrind.out*")):
        trigger, total = None, None
        with open(path) as f:
            for line in f:
                if line.startswith("desc: Trigger:"):
                    trigger = line.split(":", 2)[2].strip()
                elif line.startswith("totals:"):
                    # Not "summary:", which is wrong in a dump taken after
                    # instrumentation was stopped.
                    total = int(line.split()[1])
        prefix = "Client Request: "
        if trigger and trigger.startswith(prefix) and total is not None:
            name, phase = trigger[len(prefix):].split("/")
            counts[name, phase] = total
    return counts


def count_once(names, timeout, keep=None):
    """One callgrind run over ``names``: ``{(config, phase): instructions}``.

    With ``keep`` (a folder), callgrind's dump files are copied there.
    """
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt install valgrind)")
    with tempfile.TemporaryDirectory(prefix="seqclf-cg-") as tmp:
        helper = build_helper(tmp)
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                   MKL_NUM_THREADS="1", BLIS_NUM_THREADS="1", PYTHONHASHSEED="0")
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
               f"--callgrind-out-file={tmp}/callgrind.out",
               sys.executable, str(Path(__file__).resolve()),
               "--child", helper, "--configs", *names]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                              timeout=timeout)
        if proc.returncode:
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            raise SystemExit("the counted process failed "
                             f"(exit {proc.returncode}):\n{tail}")
        counts = parse_dumps(tmp)
        if keep is not None:
            Path(keep).mkdir(parents=True, exist_ok=True)
            for path in Path(tmp).glob("callgrind.out.*"):
                shutil.copy(path, keep)
    missing = [(n, p) for n in names for p in PHASES if (n, p) not in counts]
    if missing:
        raise SystemExit(f"no callgrind dump for {missing}")
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Instructions of one training batch and one predict batch "
                    "(callgrind).")
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS),
                        default=list(CONFIGS), help="configurations (default: all)")
    parser.add_argument("--runs", type=int, default=1,
                        help="count this many times and print the largest "
                             "difference between runs (default 1)")
    parser.add_argument("--json", metavar="PATH", default=None,
                        help="write the counts to PATH")
    parser.add_argument("--compare", metavar="BEFORE", default=None,
                        help="a JSON file of an earlier run: print this run / that run")
    parser.add_argument("--keep-dumps", metavar="DIR", default=None,
                        help="keep callgrind's dump files in DIR/run<i> (for "
                             "callgrind_annotate: where the instructions go)")
    parser.add_argument("--timeout", type=float, default=3600,
                        help="seconds before the counted process is abandoned")
    parser.add_argument("--child", metavar="HELPER", default=None,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        run_child(args.child, args.configs)
        return 0

    info = _peer.machine_info()
    print(f"CPU: {info.get('cpu', '?')}; Python {info['python']}, NumPy "
          f"{info['numpy']} ({', '.join(info.get('numpy_blas', [])) or 'BLAS ?'})")
    if "seqclf" not in info:
        raise SystemExit(f"seqclf could not be imported ({info.get('seqclf_error')}); "
                         "build it first (python setup.py build_ext --inplace)")
    print(f"seqclf {info['seqclf']} from {info['seqclf_file']}")
    vg = subprocess.run(["valgrind", "--version"], capture_output=True, text=True)
    print(f"{vg.stdout.strip()} --tool=callgrind, float32, 1 thread; one warm-up "
          "run of each phase before the counted one", flush=True)

    runs, seconds = [], []
    for i in range(max(1, args.runs)):
        tic = time.perf_counter()
        keep = (None if args.keep_dumps is None
                else Path(args.keep_dumps) / f"run{i + 1}")
        runs.append(count_once(args.configs, args.timeout, keep))
        seconds.append(time.perf_counter() - tic)
        print(f"  run {i + 1}: {seconds[-1]:.0f} s", file=sys.stderr, flush=True)
    counts = runs[0]

    before = None
    if args.compare:
        with open(args.compare) as f:
            before = json.load(f)["counts"]

    headers = ["config", "phase", "instructions", "per sample-step"]
    if len(runs) > 1:
        headers.append("spread")
    if before is not None:
        headers += ["before", "after/before"]
    lines = []
    for name in args.configs:
        _, _, steps, _, batch = CONFIGS[name]
        for phase in PHASES:
            n = counts[name, phase]
            line = [f"{name} ({_label(name)})", phase, f"{n:,}",
                    f"{n / (batch * steps):,.0f}"]
            if len(runs) > 1:
                values = [r[name, phase] for r in runs]
                line.append(f"{(max(values) - min(values)) / min(values):.4%}")
            if before is not None:
                b = before.get(name, {}).get(phase)
                line += ["-" if b is None else f"{b:,}",
                         "-" if b is None else f"{n / b:.3f}"]
            lines.append(line)
    print()
    _peer.print_table(headers, lines)
    print("per sample-step: instructions / (batch x steps); spread: (max - min) / min "
          "over the runs")

    if args.json:
        out = {"info": info, "valgrind": vg.stdout.strip(), "seconds": seconds,
               "configs": {n: {"cell": c[0], "hidden": list(c[1]), "steps": c[2],
                               "features": c[3], "batch": c[4]}
                           for n, c in CONFIGS.items() if n in args.configs},
               "counts": {n: {p: counts[n, p] for p in PHASES} for n in args.configs},
               "runs": [{n: {p: r[n, p] for p in PHASES} for n in args.configs}
                        for r in runs]}
        _peer.write_json(args.json, out, "counts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
