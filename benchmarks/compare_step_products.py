#!/usr/bin/env python
"""Time the kernels with seqclf's per-step micro-kernels and with BLAS's.

Usage (from the repository root, after ``python setup.py build_ext --inplace``)::

    python benchmarks/compare_step_products.py [--threads 1 2] [--repeat 7]
                                               [--min-time 0.3]

The per-step recurrent products (``h U`` forward, ``dpre U^T`` backward) run
in seqclf's micro-kernels (seqclf/_step_gemm.h) at the AVX2 and AVX-512
levels, and in BLAS GEMMs otherwise. One build has both paths:
``seqclf._kernels_testing.use_own_step_products`` switches between them in
one process, so this script compares them within one run, alternating the
two paths sample by sample so that a change in the machine's load hits both.

Part 1, the products alone: GFLOP/s of
``seqclf._kernels_testing.step_product`` on the shapes of a chunk of 16
sequences (and of one sequence), best of 5, operands in cache, one thread.

Part 2, a layer's forward (training) + backward pass per batch of synthetic
MNIST rows (28 steps x 28 features, float32), as compare_torch_kernels.py
times it: median milliseconds of ``--repeat`` samples per path.

The machine may be shared and noisy: read the ratios of one run.
"""

import argparse
import math
import time

import numpy as np

import _peer

LAYERS = [("rnn", 31, 128), ("rnn", 128, 128), ("gru", 32, 32), ("gru", 128, 128),
          ("lstm", 32, 32), ("lstm", 128, 128), ("lstm", 256, 128)]
PRODUCTS = [(16, 128, 512), (16, 256, 1024), (16, 31, 31), (16, 32, 128),
            (16, 128, 128), (1, 128, 512)]


def products(testing):
    rng = np.random.default_rng(0)
    print("products alone, 1 thread (GFLOP/s, best of 5)")
    print(f"{'rows x k @ k x n':>24}  {'own':>7}  {'BLAS':>7}")
    for m, H, G in PRODUCTS:
        for transpose in (False, True):
            U = rng.standard_normal((H, G)).astype(np.float32)
            k, n = (G, H) if transpose else (H, G)
            A = rng.standard_normal((m, k)).astype(np.float32)
            rep = max(1, int(2e8 / (m * H * G)))
            speed = {}
            for own in (True, False):
                testing.use_own_step_products(own)
                testing.step_product(A, U, transpose, rep)
                best = math.inf
                for _ in range(5):
                    t0 = time.perf_counter()
                    testing.step_product(A, U, transpose, rep)
                    best = min(best, (time.perf_counter() - t0) / rep)
                speed[own] = 2 * m * H * G / best / 1e9
            shape = f"{m}x{k} @ {k}x{n}"
            print(f"{shape:>24}  {speed[True]:7.1f}  {speed[False]:7.1f}")
    testing.use_own_step_products(True)


def layers_timing(testing, threads, repeat, min_time):
    # The same batch, layer and calls as compare_torch_kernels.py times.
    from compare_torch_kernels import _seqclf_step

    print("\nforward + backward per batch (ms, median)")
    print(f"{'cell':>5} {'H':>4} {'batch':>5} {'threads':>7}  {'own':>8}  {'BLAS':>8}"
          f"  {'BLAS/own':>8}")
    for n_threads in threads:
        for cell, H, batch in LAYERS:
            step, _ = _seqclf_step(cell, H, n_threads, batch, seed=0)
            times = {True: [], False: []}
            for own in (True, False):           # warm-up of both paths
                testing.use_own_step_products(own)
                step()
                step()
            for _ in range(repeat):
                for own in (True, False):
                    testing.use_own_step_products(own)
                    n, t0 = 0, time.perf_counter()
                    while time.perf_counter() - t0 < min_time:
                        step()
                        n += 1
                    times[own].append((time.perf_counter() - t0) / n * 1e3)
            testing.use_own_step_products(True)
            own, blas = np.median(times[True]), np.median(times[False])
            print(f"{cell:>5} {H:>4} {batch:>5} {n_threads:>7}  {own:8.3f}  {blas:8.3f}"
                  f"  {blas / own:8.2f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.3)
    args = parser.parse_args()
    _peer.import_seqclf()
    from seqclf import _kernels, _kernels_testing
    from seqclf._openmp_helpers import single_threaded_blas

    _peer.print_header(_peer.machine_info())
    print(f"gate-math level {_kernels.simd_level()}, step products "
          f"{_kernels.step_products()}")
    if _kernels.step_products() != "own":
        raise SystemExit("No micro-kernel on this CPU or build: nothing to compare.")
    with single_threaded_blas():
        products(_kernels_testing)
        layers_timing(_kernels_testing, args.threads, args.repeat, args.min_time)


if __name__ == "__main__":
    main()
