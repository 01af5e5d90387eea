"""A first run of seqclf's kernels: ``python -m seqclf``.

Checks the compiled kernels against the NumPy reference on a small batch and
times one forward + backward pass of each cell on MNIST-row shaped data
(28 steps x 28 features), with 1 thread and with all usable threads.
"""

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from . import _kernels, reference
from ._cells import cache_shapes, param_shapes
from ._openmp_helpers import effective_n_threads, openmp_enabled

CELLS = ("rnn", "gru", "lstm")


def _run(cell, X, lengths, params, caches, grads, h_last, dh_last, n_threads):
    p, c, g = params, caches, grads
    if cell == "rnn":
        _kernels.rnn_forward(X, lengths, p["W"], p["U"], p["b"], h_last,
                             c["h_seq"], c["h_prev"], n_threads=n_threads)
        _kernels.rnn_backward(X, lengths, p["W"], p["U"], c["h_seq"],
                              c["h_prev"], dh_last, None, g["W"], g["U"],
                              g["b"], None, n_threads=n_threads)
    elif cell == "gru":
        _kernels.gru_forward(X, lengths, p["W"], p["U"], p["b_ih"], p["b_hh"],
                             h_last, c["h_seq"], c["h_prev"], c["gates"],
                             c["hn"], n_threads=n_threads)
        _kernels.gru_backward(X, lengths, p["W"], p["U"], c["h_seq"],
                              c["h_prev"], c["gates"], c["hn"], dh_last, None,
                              g["W"], g["U"], g["b_ih"], g["b_hh"], None,
                              n_threads=n_threads)
    else:
        _kernels.lstm_forward(X, lengths, p["W"], p["U"], p["b"], h_last,
                              c["h_seq"], c["h_prev"], c["gates"], c["c_seq"],
                              n_threads=n_threads)
        _kernels.lstm_backward(X, lengths, p["W"], p["U"], c["h_seq"],
                               c["h_prev"], c["gates"], c["c_seq"], dh_last,
                               None, g["W"], g["U"], g["b"], None,
                               n_threads=n_threads)


def _setup(cell, n, T, F, H, dtype, rng):
    X = rng.standard_normal((n, T, F)).astype(dtype)
    lengths = np.full(n, T, dtype=np.intp)
    params = reference.init_params(cell, F, H, random_state=rng, dtype=dtype,
                                   scale=1 / np.sqrt(H))
    caches = {k: np.empty(s, dtype) for k, s in cache_shapes(cell, n, T, H).items()}
    grads = {k: np.empty(s, dtype) for k, s in param_shapes(cell, F, H).items()}
    h_last = np.empty((n, H), dtype)
    dh_last = rng.standard_normal((n, H)).astype(dtype)
    return X, lengths, params, caches, grads, h_last, dh_last


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m seqclf", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=128, help="hidden units")
    parser.add_argument("--batch", type=int, default=128, help="sequences per batch")
    parser.add_argument("--repeat", type=int, default=10, help="timed repeats")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    n_threads = effective_n_threads()
    print(f"seqclf: OpenMP {'on' if openmp_enabled() else 'off'}, "
          f"{n_threads} usable thread(s)")

    # 1. Agreement with the NumPy reference (float64, unequal lengths).
    for cell in CELLS:
        X, lengths, params, caches, grads, h_last, dh_last = _setup(
            cell, 40, 7, 5, 6, np.float64, rng)
        lengths = rng.integers(1, 8, size=40).astype(np.intp)
        with threadpool_limits(1, user_api="blas"):
            _run(cell, X, lengths, params, caches, grads, h_last, dh_last, n_threads)
        ref_h, _, cache = reference.forward(cell, X, lengths, params)
        ref_g, _ = reference.backward(cell, X, lengths, params, cache, dh_last)
        err = max(np.max(np.abs(h_last - ref_h)),
                  *(np.max(np.abs(grads[k] - ref_g[k])) for k in ref_g))
        print(f"{cell:>4}: kernels vs NumPy reference, max abs difference {err:.1e}")

    # 2. Forward + backward time per batch on MNIST-row shapes, float32.
    T = F = 28
    print(f"\nforward + backward, batch {args.batch}, {T} steps x {F} features, "
          f"{args.hidden} units, float32 (median of {args.repeat})")
    thread_counts = sorted({1, n_threads})
    for cell in CELLS:
        setup = _setup(cell, args.batch, T, F, args.hidden, np.float32, rng)
        times = []
        for nt in thread_counts:
            with threadpool_limits(1, user_api="blas"):
                _run(cell, *setup, nt)          # warm-up
                ts = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    _run(cell, *setup, nt)
                    ts.append(time.perf_counter() - t0)
            times.append(float(np.median(ts)))
        cols = "  ".join(
            f"{nt} thread(s): {t * 1e3:7.2f} ms ({args.batch / t:8.0f} seq/s)"
            for nt, t in zip(thread_counts, times))
        print(f"{cell:>4}: {cols}")


if __name__ == "__main__":
    main()
