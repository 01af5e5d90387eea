"""Forward and backpropagation-through-time kernels for recurrent layers.

Design
------
A. Shapes. A batch is X (N, T, F): N sequences of T steps of F features,
   C-contiguous, float32 or float64 (one fused type; every array of a call
   has X's dtype). lengths (N,) intp, 1 <= lengths[n] <= T. A layer has H
   units and G = n_gates * H pre-activation columns: W (F, G), U (H, G).
B. Gate order. tanh/relu RNN: one block, bias b (H). GRU: r, z, n, biases
   b_ih and b_hh (3H each; the reset gate multiplies h U_n + b_hn). LSTM:
   i, f, g, o, bias b (4H). W is PyTorch's weight_ih transposed and U its
   weight_hh transposed. Zero initial state.
C. Lengths. Positions >= lengths[n] are padding: their outputs are zero,
   the state stays frozen at the last valid step, their content in X is
   never read (gradients included) and their dX is zero. The reverse
   direction runs from each sequence's own last valid step back to 0 and
   writes outputs at the original positions.
D. Recurrent dropout. An optional mask (N, H), fixed over the sequence,
   multiplies h_{t-1} before the U product only (Keras 3).
E. IN / OUT. Arguments are marked IN (read only, const), OUT (overwritten,
   allocated by the caller) or IN-cache (written by the training forward,
   read by the backward). Kernels create no NumPy arrays; the only memory
   they allocate is per-call scratch (one block per thread) and one
   weight-gradient slot per chunk.
F. Threads. The batch is cut into chunks of CHUNK_SIZE sequences (fixed: it
   does not depend on the thread count). prange hands whole chunks to
   threads (num_threads given explicitly); each chunk runs its whole
   sequence: one BLAS GEMM (single-threaded) for the input projections of
   all its steps, one small product per step for the recurrence, and in the
   backward pass one BLAS GEMM for [dW; dU] and one for dX over all its
   steps. The per-step products (h_{t-1} U forward, dpre U^T backward) run
   in seqclf's own micro-kernels (_step_gemm.h: AVX2 and AVX-512, on U
   packed once per call and shared by the threads), or, where there are
   none (baseline x86-64, other architectures and compilers), in BLAS GEMMs
   in column blocks that OpenBLAS runs unpacked (_blas.pxd); the two sum in
   different orders, so results differ in the last bits. Each chunk
   writes its weight gradients into its own slot; the slots are then summed
   element by element in chunk order. The elementwise gate math of one
   sequence at one step runs in one vectorised pass (_vmath.h: polynomial
   sigmoid/tanh in float32, libm in float64, compiled for AVX-512, AVX2 and
   baseline x86-64, one picked at import for the CPU; SEQCLF_SIMD forces
   one for testing, see seqclf/_simd.py).
G. Determinism. Results are bit-identical for any thread count: a chunk's
   arithmetic does not depend on which thread runs it, and there is no
   floating-point reduction across threads.
H. Scaling. Parallelism is bounded by N / CHUNK_SIZE: a batch of 128 feeds
   8 threads and a batch of 32 only 2, so on 16 cores one would either cut
   chunks smaller (smaller, less efficient GEMMs per step) or split each
   step's GEMM across threads with a barrier per step (more
   synchronisation); both keep the fixed-chunk determinism as long as the
   partition does not depend on the thread count. The final sum of the
   per-chunk weight gradients is already parallel over their elements.
I. Subnormals. Every thread runs its share of a call with flush-to-zero and
   denormals-are-zero set (MXCSR on x86-64, FPCR.FZ on aarch64; _fpenv.h),
   BLAS calls included, and restores its previous modes before the call
   returns. Gradients decaying through long sequences would otherwise
   become subnormal, which many CPUs (Intel's among them) process in slow
   microcode. So a result or input below the smallest normal number
   (1.2e-38 in float32, 2.2e-308 in float64) counts as zero, where the
   NumPy reference keeps it.
J. Sizes. No C int holds a size, offset or loop bound: they are Py_ssize_t.
   BLAS takes int dimensions, so the entry points check that every
   dimension passed to it (chunk rows x steps, gate columns, F + H) fits,
   and that the scratch memory's size is representable, before any work,
   naming the sizes asked for (_check_scratch).
K. Calling convention. This module holds the nogil kernels, one nogil pass
   per direction and batch (forward_pass, backward_pass: pointers and
   sizes, declared in _kernels.pxd for compiled callers such as
   seqclf._train's training loop) and two typed entry points, forward and
   backward, which take a cell code of CELL_CODES and the arrays as typed
   memoryviews and check nothing but the sizes (J). seqclf._layers is the
   interface: it takes the arguments of seqclf.reference, checks them
   (types, shapes, aliasing) and allocates what the caller does not
   provide.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset

import sys

import numpy as np

from ._cells import BLAS_INT_MAX

from ._activations cimport (
    gru_backward_row, gru_forward_row, lstm_backward_row, lstm_forward_row,
    rnn_tanh_backward_row, rnn_tanh_row, sigmoid_, tanh_,
)
from ._blas cimport gemm, gemm_step
from ._step_gemm cimport step_gemm, step_nr, step_pack, seqclf_step_packed_size
from ._step_gemm cimport seqclf_pack_alloc, seqclf_pack_free, seqclf_step_select
from ._fpenv cimport FPENV_BITS, fpenv_enter, fpenv_get, fpenv_leave
from ._openmp cimport omp_get_thread_num, region_threads

# Sequences per chunk, chosen by measurement: builds at SEQCLF_CHUNK_SIZE=8,
# 16 and 32 timed forward + backward calls of LSTM, GRU and tanh-RNN layers
# (batches 32 to 128, 1 and 2 threads, float32, MNIST-row shapes); 16 was
# never far from the best, a chunk's caches stay in L2 and a batch of 32, 64
# or 128 splits evenly into 2, 4 or 8 chunks. The figures are on the
# documentation's benchmarks page (docs/benchmarks.md, "Chunk size").
# SEQCLF_CHUNK_SIZE (a C macro, set from the environment by setup.py) exists
# only to measure other sizes.
cdef extern from *:
    """
    #ifndef SEQCLF_CHUNK_SIZE
    #define SEQCLF_CHUNK_SIZE 16
    #endif
    """
    int CHUNK_SIZE "SEQCLF_CHUNK_SIZE"

cdef enum:
    RNN_TANH = 0
    RNN_RELU = 1
    GRU = 2
    LSTM = 3

# The kernel of each (cell, activation) of the registry (seqclf/_cells.py).
CELL_CODES = {("rnn", "tanh"): RNN_TANH, ("rnn", "relu"): RNN_RELU,
              ("gru", "tanh"): GRU, ("lstm", "tanh"): LSTM}


# The float32 gate-math level, chosen once (SEQCLF_SIMD: see seqclf/_simd.py).
from ._activations cimport seqclf_simd_level, simd_init, simd_level_name

simd_init()
# The per-step products' micro-kernels of the same level (_step_gemm.h).
seqclf_step_select(seqclf_simd_level(), 1)


def simd_level():
    """Gate-math level in use: ``"avx512"``, ``"avx2"`` or ``"baseline"``."""
    return simd_level_name()


def step_products():
    """What runs the per-step recurrent products: ``"own"`` or ``"blas"``.

    ``"own"`` is seqclf's micro-kernels (_step_gemm.h: AVX2 and AVX-512
    levels on x86-64); ``"blas"`` is BLAS's GEMM in column blocks, used at
    the baseline level, on other architectures and compilers, or when
    turned off with :func:`_use_own_step_products`.
    """
    return "own" if step_nr(<float> 0) > 0 else "blas"


def _use_own_step_products(bint own):
    """Turn seqclf's per-step micro-kernels on (where there are some) or off.

    A testing and benchmarking aid, so that one build runs both paths;
    returns the previous setting. Not thread-safe: call it while no kernel
    runs.
    """
    previous = step_nr(<float> 0) > 0
    seqclf_step_select(seqclf_simd_level(), own)
    return previous


cdef floating* _packed_steps(floating* dummy, bint backward, Py_ssize_t H,
                             Py_ssize_t G, const floating* U) noexcept nogil:
    """U packed for the forward (h U) or backward (d U^T) step products.

    NULL when no micro-kernel applies (the caller then uses BLAS) or when
    the memory is not available (the caller raises MemoryError).
    """
    cdef void* p
    if step_nr(<floating> 0) == 0:
        return NULL
    # 64-byte aligned: each panel row is whole vectors.
    p = seqclf_pack_alloc(_packed_bytes(dummy, backward, H, G))
    if p == NULL:
        return NULL
    step_pack(G if backward else H, H if backward else G, U, G, backward,
              <floating*> p)
    return <floating*> p


cdef size_t _packed_bytes(floating* dummy, bint backward, Py_ssize_t H,
                          Py_ssize_t G) noexcept nogil:
    return <size_t> seqclf_step_packed_size(
        G if backward else H, H if backward else G,
        step_nr(<floating> 0)) * sizeof(floating)


def chunk_size():
    """Number of sequences per chunk, the unit of work of one thread."""
    return CHUNK_SIZE


cdef inline Py_ssize_t _n_gates(int cell) noexcept nogil:
    if cell == GRU:
        return 3
    if cell == LSTM:
        return 4
    return 1


# ---------------------------------------------------------------------------
# Per-chunk work (nogil)
# ---------------------------------------------------------------------------

# The layouts of the scratch blocks below and their sizes in
# _check_scratch must agree (CM = min(CHUNK_SIZE, N) rows per chunk).
cdef void _forward_chunk(
    int cell, bint reverse, Py_ssize_t n0, Py_ssize_t CM, Py_ssize_t C,
    Py_ssize_t T, Py_ssize_t F, Py_ssize_t H,
    const floating* X,              # IN (N, T, F)
    const Py_ssize_t* lengths,      # IN (N,)
    const floating* W,              # IN (F, G)
    const floating* U,              # IN (H, G)
    const floating* Up,             # IN U packed for step_gemm, or NULL
    const floating* b,              # IN (G,): b, or b_ih for the GRU
    const floating* b_hh,           # IN (G,) GRU only, else NULL
    const floating* mask,           # IN (N, H) or NULL
    floating* h_last,               # OUT (N, H)
    floating* h_seq,                # OUT (N, T, H) or NULL (inference)
    floating* h_prev,               # OUT cache (N, T, H), NULL for inference
    floating* gates,                # OUT cache (N, T, G), GRU/LSTM training
    floating* aux,                  # OUT cache (N, T, H): GRU hn, LSTM c_seq
    floating* work,                 # scratch, sized by _check_scratch
) noexcept nogil:
    cdef Py_ssize_t G = _n_gates(cell) * H
    cdef bint training = h_prev != NULL
    cdef floating* rec = work                   # (C, G) recurrent products
    cdef floating* h = rec + CM * G             # (C, H) state
    cdef floating* hm = h + CM * H              # (C, H) masked state
    cdef floating* c = hm + CM * H              # (C, H) LSTM cell state
    cdef floating* tmp = c + CM * H             # (H,)
    cdef floating* xp                           # (C, T, G) projections
    cdef floating* hin = hm if mask != NULL else h
    cdef floating* xrow
    cdef floating* hrow
    cdef floating* crow
    cdef const floating* rrow
    cdef const floating* mrow
    cdef Py_ssize_t i, j, k, L, pos, n, off, kmax = 0

    # Where the input projections go: in training they are turned into the
    # cached gates (GRU/LSTM) or outputs (RNN) in place.
    if training and cell >= GRU:
        xp = gates + n0 * T * G
    elif training:
        xp = h_seq + n0 * T * H
    else:
        xp = tmp + H

    # Input projections of all steps at once: (C*T, F) @ (F, G).
    gemm(False, False, C * T, G, F, 1, X + n0 * T * F, F, W, G, 0, xp, G)

    memset(h, 0, C * H * sizeof(floating))
    memset(c, 0, C * H * sizeof(floating))
    for j in range(C):
        kmax = max(kmax, lengths[n0 + j])

    for k in range(kmax):
        if mask != NULL:
            for j in range(C):
                mrow = mask + (n0 + j) * H
                for i in range(H):
                    hm[j * H + i] = h[j * H + i] * mrow[i]
        if Up != NULL:
            step_gemm(C, G, H, hin, H, Up, rec, G)
        else:
            gemm_step(False, C, G, H, hin, H, U, G, rec, G)

        for j in range(C):
            n = n0 + j
            L = lengths[n]
            if k >= L:
                continue        # past the end: state frozen
            pos = L - 1 - k if reverse else k
            off = n * T + pos
            xrow = xp + (j * T + pos) * G
            rrow = rec + j * G
            hrow = h + j * H
            if training:
                memcpy(h_prev + off * H, hin + j * H, H * sizeof(floating))

            if cell == RNN_TANH:
                rnn_tanh_row(H, xrow, rrow, b)
                memcpy(hrow, xrow, H * sizeof(floating))
            elif cell == RNN_RELU:
                for i in range(H):
                    xrow[i] = xrow[i] + rrow[i] + b[i]
                    # NaN stays NaN
                    xrow[i] = 0 if xrow[i] < 0 else xrow[i]
                memcpy(hrow, xrow, H * sizeof(floating))
            elif cell == GRU:
                # hn goes straight into its cache when training
                gru_forward_row(H, xrow, rrow, b, b_hh,
                                aux + off * H if training else tmp, hrow)
            else:
                crow = c + j * H
                lstm_forward_row(H, xrow, rrow, b, crow, hrow)
                if training:
                    memcpy(aux + off * H, crow, H * sizeof(floating))

            if h_seq != NULL and not (training and cell <= RNN_RELU):
                memcpy(h_seq + off * H, hrow, H * sizeof(floating))

    for j in range(C):
        n = n0 + j
        L = lengths[n]
        memcpy(h_last + n * H, h + j * H, H * sizeof(floating))
        if L < T:
            # Padding: zero outputs, and zero caches so that the backward
            # pass's all-steps GEMMs read finite zeros there.
            if h_seq != NULL:
                memset(h_seq + (n * T + L) * H, 0, (T - L) * H * sizeof(floating))
            if training:
                memset(h_prev + (n * T + L) * H, 0, (T - L) * H * sizeof(floating))
                if cell >= GRU:
                    memset(gates + (n * T + L) * G, 0, (T - L) * G * sizeof(floating))
                    memset(aux + (n * T + L) * H, 0, (T - L) * H * sizeof(floating))


cdef void _backward_chunk(
    int cell, bint reverse, Py_ssize_t n0, Py_ssize_t CM, Py_ssize_t C,
    Py_ssize_t T, Py_ssize_t F, Py_ssize_t H,
    const floating* X,              # IN (N, T, F)
    const Py_ssize_t* lengths,      # IN (N,)
    const floating* W,              # IN (F, G)
    const floating* U,              # IN (H, G)
    const floating* UTp,            # IN U^T packed for step_gemm, or NULL
    const floating* mask,           # IN (N, H) or NULL
    const floating* h_seq,          # IN cache (N, T, H)
    const floating* h_prev,         # IN cache (N, T, H)
    const floating* gates,          # IN cache (N, T, G), GRU/LSTM
    const floating* aux,            # IN cache (N, T, H): GRU hn, LSTM c_seq
    const floating* dh_last,        # IN (N, H) or NULL
    const floating* dh_seq,         # IN (N, T, H) or NULL
    floating* slot,                 # OUT this chunk's dW | dU | db | db_hh
    floating* dX,                   # OUT (N, T, F) or NULL
    floating* work,                 # scratch, sized by _check_scratch
) noexcept nogil:
    cdef Py_ssize_t G = _n_gates(cell) * H
    cdef Py_ssize_t CT = C * T
    cdef Py_ssize_t FH = F + H
    cdef floating* dW = slot
    cdef floating* dU = dW + F * G
    cdef floating* db = dU + H * G
    cdef floating* db_hh = db + G
    cdef floating* dpre = work                 # (C, T, G)
    cdef floating* dstep = dpre + CM * T * G   # (C, G)
    cdef floating* dh = dstep + CM * G         # (C, H)
    cdef floating* dc = dh + CM * H            # (C, H)
    cdef floating* dhp = dc + CM * H           # (C, H)
    cdef floating* tmp = dhp + CM * H          # (H,)
    cdef floating* zeros = tmp + H             # (H,)
    cdef floating* xh = zeros + H              # (C, T, F + H)
    cdef floating* drn = xh + CM * T * FH      # (C, T, H) GRU
    cdef const floating* Xc = X + n0 * T * F
    cdef const floating* g
    cdef const floating* hv
    cdef const floating* hp
    cdef const floating* cp
    cdef const floating* mrow
    cdef floating* drow
    cdef floating* srow
    cdef floating* dhrow
    cdef floating* dcrow
    cdef Py_ssize_t i, j, k, L, pos, prev, n, off, r, kmax = 0
    memset(zeros, 0, H * sizeof(floating))
    memset(dc, 0, C * H * sizeof(floating))
    memset(dstep, 0, C * G * sizeof(floating))
    for j in range(C):
        n = n0 + j
        L = lengths[n]
        kmax = max(kmax, L)
        if dh_last != NULL:
            memcpy(dh + j * H, dh_last + n * H, H * sizeof(floating))
        else:
            memset(dh + j * H, 0, H * sizeof(floating))
        if L < T:
            memset(dpre + (j * T + L) * G, 0, (T - L) * G * sizeof(floating))
            if cell == GRU:
                memset(drn + (j * T + L) * H, 0, (T - L) * H * sizeof(floating))

    for k in range(kmax - 1, -1, -1):
        for j in range(C):
            n = n0 + j
            L = lengths[n]
            if k >= L:
                continue        # frozen state: its gradient passes unchanged
            pos = L - 1 - k if reverse else k
            prev = pos + 1 if reverse else pos - 1
            off = n * T + pos
            drow = dpre + (j * T + pos) * G
            srow = dstep + j * G
            dhrow = dh + j * H
            if dh_seq != NULL:
                for i in range(H):
                    dhrow[i] = dhrow[i] + dh_seq[off * H + i]
            hv = h_seq + off * H

            if cell == RNN_TANH:
                rnn_tanh_backward_row(H, hv, dhrow, drow, srow)
            elif cell == RNN_RELU:
                for i in range(H):
                    drow[i] = dhrow[i] if hv[i] > 0 else 0
                memcpy(srow, drow, G * sizeof(floating))
                memset(dhrow, 0, H * sizeof(floating))
            elif cell == GRU:
                g = gates + off * G
                if k == 0:
                    hp = zeros
                else:
                    hp = h_seq + (n * T + prev) * H
                # dhrow becomes the part of dL/dh_{t-1} through z * h_{t-1}
                gru_backward_row(H, g, aux + off * H, hp, dhrow, drow, srow,
                                 drn + (j * T + pos) * H)
            else:
                g = gates + off * G
                if k == 0:
                    cp = zeros
                else:
                    cp = aux + (n * T + prev) * H
                memcpy(tmp, aux + off * H, H * sizeof(floating))
                tanh_(tmp, H)
                dcrow = dc + j * H
                lstm_backward_row(H, g, tmp, cp, dhrow, dcrow, drow)
                memcpy(srow, drow, G * sizeof(floating))
                memset(dhrow, 0, H * sizeof(floating))

        # Gradient through the recurrent product: dstep (C, G) @ U^T.
        if UTp != NULL:
            step_gemm(C, H, G, dstep, G, UTp, dhp, H)
        else:
            gemm_step(True, C, H, G, dstep, G, U, G, dhp, H)
        for j in range(C):
            n = n0 + j
            if k >= lengths[n]:
                continue
            dhrow = dh + j * H
            if mask != NULL:
                mrow = mask + n * H
                for i in range(H):
                    dhrow[i] = dhrow[i] + dhp[j * H + i] * mrow[i]
            else:
                for i in range(H):
                    dhrow[i] = dhrow[i] + dhp[j * H + i]

    # Weight gradients over all steps at once, [dW; dU] = [X, h_prev]^T dpre
    # (dW and dU are adjacent in the slot): one GEMM packs dpre once. Padding
    # rows of dpre and h_prev are zero; padding in X may hold anything (NaN
    # included), so the copy zeroes it.
    for r in range(CT):
        j = r // T
        if r - j * T < lengths[n0 + j]:
            memcpy(xh + r * FH, Xc + r * F, F * sizeof(floating))
        else:
            memset(xh + r * FH, 0, F * sizeof(floating))
        memcpy(xh + r * FH + F, h_prev + (n0 * T + r) * H, H * sizeof(floating))
    if cell == GRU:
        # r and z blocks of U share dpre; the n block uses drn = dn * r
        gemm(True, False, FH, 2 * H, CT, 1, xh, FH, dpre, G, 0, dW, G)
        gemm(True, False, F, H, CT, 1, xh, FH, dpre + 2 * H, G, 0, dW + 2 * H, G)
        gemm(True, False, H, H, CT, 1, xh + F, FH, drn, H, 0, dU + 2 * H, G)
    else:
        gemm(True, False, FH, G, CT, 1, xh, FH, dpre, G, 0, dW, G)

    memset(db, 0, G * sizeof(floating))
    for r in range(CT):
        for i in range(G):
            db[i] = db[i] + dpre[r * G + i]
    if cell == GRU:
        memcpy(db_hh, db, 2 * H * sizeof(floating))
        memset(db_hh + 2 * H, 0, H * sizeof(floating))
        for r in range(CT):
            for i in range(H):
                db_hh[2 * H + i] = db_hh[2 * H + i] + drn[r * H + i]

    if dX != NULL:
        gemm(False, True, CT, F, G, 1, dpre, G, W, G, 0, dX + n0 * T * F, F)


cdef void _sum_slots(const floating* slots, Py_ssize_t n_chunks,
                     Py_ssize_t slot_size, Py_ssize_t start, Py_ssize_t size,
                     floating* out, int n_threads) noexcept nogil:
    """out[e] = sum over chunks, in chunk order, of slots[chunk][start + e]."""
    cdef Py_ssize_t e, ci
    cdef floating acc
    cdef unsigned long long fp
    # One block of elements per thread, so that the modes are set once each.
    cdef int n_blocks = region_threads(n_threads, size, size * n_chunks)
    cdef Py_ssize_t blk, lo, hi
    for blk in prange(n_blocks, num_threads=n_blocks, schedule="static"):
        fp = fpenv_enter()
        lo = blk * size // n_blocks
        hi = (blk + 1) * size // n_blocks
        for e in range(lo, hi):
            acc = slots[start + e]
            for ci in range(1, n_chunks):
                acc = acc + slots[ci * slot_size + start + e]
            out[e] = acc
        fpenv_leave(fp)


# ---------------------------------------------------------------------------
# Batch passes (nogil, fused over float / double)
# ---------------------------------------------------------------------------

cdef Py_ssize_t scratch_elems(int cell, bint training, bint backward,
                              Py_ssize_t N, Py_ssize_t T, Py_ssize_t F,
                              Py_ssize_t H) noexcept nogil:
    """Scratch elements per thread of one pass: _check_scratch's formula,
    for sizes it has accepted (then nothing here overflows)."""
    cdef Py_ssize_t G = _n_gates(cell) * H
    cdef Py_ssize_t CM = min(<Py_ssize_t> CHUNK_SIZE, N)
    cdef Py_ssize_t work
    if backward:
        work = CM * T * G + CM * G + 3 * CM * H + 2 * H + CM * T * (F + H)
        if cell == GRU:
            work += CM * T * H
        return work
    return CM * G + 3 * CM * H + H + (0 if training else CM * T * G)


cdef int forward_pass(
    int cell, bint reverse, int n_threads,
    Py_ssize_t N, Py_ssize_t T, Py_ssize_t F, Py_ssize_t H,
    const floating* X, const Py_ssize_t* lengths, const floating* W,
    const floating* U, const floating* b, const floating* b_hh,
    const floating* mask, floating* h_last, floating* h_seq,
    floating* h_prev, floating* gates, floating* aux,
) noexcept nogil:
    """One forward pass over N >= 1 sequences (see :func:`forward`).

    Pointers as _forward_chunk's (h_prev NULL for inference); the sizes
    must have passed _check_scratch. Returns 0, or -1 when the scratch
    memory could not be allocated (nothing is written then).
    """
    cdef Py_ssize_t CM = min(<Py_ssize_t> CHUNK_SIZE, N)
    cdef Py_ssize_t n_chunks = (N + CHUNK_SIZE - 1) // CHUNK_SIZE
    cdef int n_workers = <int> min(<Py_ssize_t> n_threads, n_chunks)
    cdef Py_ssize_t G = _n_gates(cell) * H
    cdef Py_ssize_t work_size = scratch_elems(cell, h_prev != NULL, False,
                                              N, T, F, H)
    cdef Py_ssize_t ci, n0, C
    cdef int tid
    cdef unsigned long long fp
    cdef floating* Up = NULL
    cdef floating* work = <floating*> malloc(
        <size_t> (n_workers * work_size) * sizeof(floating))
    # One sequence: BLAS's matrix-vector product reads U once per step, where
    # packing it first would add a pass over U to every call (latency).
    cdef bint use_own = step_nr(<floating> 0) > 0 and N > 1
    if use_own:
        Up = _packed_steps(<floating*> NULL, False, H, G, U)
    if work == NULL or (Up == NULL and use_own):
        free(work)
        seqclf_pack_free(Up)
        return -1
    for ci in prange(n_chunks, num_threads=n_workers, schedule="static"):
        fp = fpenv_enter()
        tid = omp_get_thread_num()
        n0 = ci * CHUNK_SIZE
        C = min(<Py_ssize_t> CHUNK_SIZE, N - n0)
        _forward_chunk(
            cell, reverse, n0, CM, C, T, F, H, X, lengths, W, U, Up, b, b_hh,
            mask, h_last, h_seq, h_prev, gates, aux, work + tid * work_size,
        )
        fpenv_leave(fp)
    free(work)
    seqclf_pack_free(Up)
    return 0


cdef int backward_pass(
    int cell, bint reverse, int n_threads,
    Py_ssize_t N, Py_ssize_t T, Py_ssize_t F, Py_ssize_t H,
    const floating* X, const Py_ssize_t* lengths, const floating* W,
    const floating* U, const floating* mask, const floating* h_seq,
    const floating* h_prev, const floating* gates, const floating* aux,
    const floating* dh_last, const floating* dh_seq, floating* dW,
    floating* dU, floating* db, floating* db_hh, floating* dX,
) noexcept nogil:
    """One BPTT pass over N >= 1 sequences (see :func:`backward`); returns
    0, or -1 when the scratch memory could not be allocated."""
    cdef Py_ssize_t G = _n_gates(cell) * H
    cdef Py_ssize_t CM = min(<Py_ssize_t> CHUNK_SIZE, N)
    cdef Py_ssize_t n_chunks = (N + CHUNK_SIZE - 1) // CHUNK_SIZE
    cdef int n_workers = <int> min(<Py_ssize_t> n_threads, n_chunks)
    cdef Py_ssize_t slot_size = F * G + H * G + 2 * G
    cdef Py_ssize_t work_size = scratch_elems(cell, True, True, N, T, F, H)
    cdef Py_ssize_t ci, n0, C
    cdef int tid
    cdef unsigned long long fp
    cdef floating* work = <floating*> malloc(
        <size_t> (n_workers * work_size) * sizeof(floating))
    cdef floating* slots = <floating*> malloc(
        <size_t> (n_chunks * slot_size) * sizeof(floating))
    cdef floating* UTp = _packed_steps(<floating*> NULL, True, H, G, U)
    if (work == NULL or slots == NULL
            or (UTp == NULL and step_nr(<floating> 0) > 0)):
        free(work)
        free(slots)
        seqclf_pack_free(UTp)
        return -1
    for ci in prange(n_chunks, num_threads=n_workers, schedule="static"):
        fp = fpenv_enter()
        tid = omp_get_thread_num()
        n0 = ci * CHUNK_SIZE
        C = min(<Py_ssize_t> CHUNK_SIZE, N - n0)
        _backward_chunk(
            cell, reverse, n0, CM, C, T, F, H, X, lengths, W, U, UTp, mask,
            h_seq, h_prev, gates, aux, dh_last, dh_seq,
            slots + ci * slot_size, dX, work + tid * work_size,
        )
        fpenv_leave(fp)
    _sum_slots(slots, n_chunks, slot_size, 0, F * G, dW, n_threads)
    _sum_slots(slots, n_chunks, slot_size, F * G, H * G, dU, n_threads)
    _sum_slots(slots, n_chunks, slot_size, F * G + H * G, G, db, n_threads)
    if db_hh != NULL:
        _sum_slots(slots, n_chunks, slot_size, F * G + H * G + G, G, db_hh,
                   n_threads)
    free(work)
    free(slots)
    seqclf_pack_free(UTp)
    return 0


# ---------------------------------------------------------------------------
# Typed entry points
# ---------------------------------------------------------------------------

def forward(
    int cell, bint reverse, int n_threads,
    const floating[:, :, ::1] X,
    const Py_ssize_t[::1] lengths,
    const floating[:, ::1] W,
    const floating[:, ::1] U,
    const floating[::1] b,
    const floating[::1] b_hh,
    const floating[:, ::1] mask,
    floating[:, ::1] h_last,
    floating[:, :, ::1] h_seq,
    floating[:, :, ::1] h_prev,
    floating[:, :, ::1] gates,
    floating[:, :, ::1] aux,
):
    """One forward pass: the typed entry point behind seqclf._layers.forward.

    Shapes, dtypes and aliasing are not checked here but in seqclf._layers;
    h_prev, gates and aux are None for inference (and gates, aux for the
    RNN), h_seq may be None for inference, b_hh is None but for the GRU.
    """
    cdef Py_ssize_t N = X.shape[0], T = X.shape[1], F = X.shape[2]
    cdef Py_ssize_t H = U.shape[0]
    cdef Py_ssize_t G = _n_gates(cell) * H
    cdef int rc
    if N == 0:
        return
    work_size = _check_scratch(cell, h_prev is not None, False, N, T, F, H,
                               n_threads, sizeof(floating))
    with nogil:
        rc = forward_pass(
            cell, reverse, n_threads, N, T, F, H, &X[0, 0, 0], &lengths[0],
            &W[0, 0], &U[0, 0], &b[0],
            &b_hh[0] if b_hh is not None else NULL,
            &mask[0, 0] if mask is not None else NULL, &h_last[0, 0],
            &h_seq[0, 0, 0] if h_seq is not None else NULL,
            &h_prev[0, 0, 0] if h_prev is not None else NULL,
            &gates[0, 0, 0] if gates is not None else NULL,
            &aux[0, 0, 0] if aux is not None else NULL)
    if rc != 0:
        n_workers = min(n_threads, (N + CHUNK_SIZE - 1) // CHUNK_SIZE)
        raise MemoryError(_scratch_message(
            "forward", N, T, F, H, (n_workers * work_size + 2 * H * G)
            * sizeof(floating)))


def backward(
    int cell, bint reverse, int n_threads,
    const floating[:, :, ::1] X,
    const Py_ssize_t[::1] lengths,
    const floating[:, ::1] W,
    const floating[:, ::1] U,
    const floating[:, ::1] mask,
    const floating[:, :, ::1] h_seq,
    const floating[:, :, ::1] h_prev,
    const floating[:, :, ::1] gates,
    const floating[:, :, ::1] aux,
    const floating[:, ::1] dh_last,
    const floating[:, :, ::1] dh_seq,
    floating[:, ::1] dW,
    floating[:, ::1] dU,
    floating[::1] db,
    floating[::1] db_hh,
    floating[:, :, ::1] dX,
):
    """One BPTT pass: the typed entry point behind seqclf._layers.backward.

    Unchecked like :func:`forward`; dh_last or dh_seq may be None (not
    both), dX None skips the input gradient, db_hh is None but for the GRU.
    """
    cdef Py_ssize_t N = X.shape[0], T = X.shape[1], F = X.shape[2]
    cdef Py_ssize_t H = U.shape[0]
    cdef Py_ssize_t G = _n_gates(cell) * H
    cdef int rc
    if N == 0:
        return
    work_size = _check_scratch(cell, True, True, N, T, F, H, n_threads,
                               sizeof(floating))
    with nogil:
        rc = backward_pass(
            cell, reverse, n_threads, N, T, F, H, &X[0, 0, 0], &lengths[0],
            &W[0, 0], &U[0, 0], &mask[0, 0] if mask is not None else NULL,
            &h_seq[0, 0, 0], &h_prev[0, 0, 0],
            &gates[0, 0, 0] if gates is not None else NULL,
            &aux[0, 0, 0] if aux is not None else NULL,
            &dh_last[0, 0] if dh_last is not None else NULL,
            &dh_seq[0, 0, 0] if dh_seq is not None else NULL,
            &dW[0, 0], &dU[0, 0], &db[0],
            &db_hh[0] if db_hh is not None else NULL,
            &dX[0, 0, 0] if dX is not None else NULL)
    if rc != 0:
        n_chunks = (N + CHUNK_SIZE - 1) // CHUNK_SIZE
        n_workers = min(n_threads, n_chunks)
        raise MemoryError(_scratch_message(
            "backward", N, T, F, H,
            (n_workers * work_size + n_chunks * (F * G + H * G + 2 * G)
             + 2 * H * G) * sizeof(floating)))


def _scratch_message(what, N, T, F, H, n_bytes):
    return (
        f"Cannot allocate {n_bytes / 2**30:.3g} GiB ({n_bytes} bytes) of "
        f"scratch memory for the {what} pass of {N} sequences of {T} steps "
        f"({F} features, {H} units)."
    )


# Checks of the size arithmetic, in Python integers (which cannot overflow).
_SSIZE_MAX = sys.maxsize


def _check_scratch(cell, training, backward, N, T, F, H, n_threads, itemsize):
    """Scratch elements per thread of one call, after checking every size.

    Raises ValueError when a dimension passed to BLAS (an int) would not fit
    in an int, and MemoryError when the scratch memory's size in bytes is not
    representable; both before any work, naming what was asked for.
    """
    G = _n_gates(cell) * H
    CM = min(CHUNK_SIZE, N)
    blas_dims = {
        "sequences per chunk x n_steps": CM * T,
        "gate columns (n_gates x n_hidden)": G,
        "n_features + n_hidden": F + H,
    }
    for name, value in blas_dims.items():
        if value > BLAS_INT_MAX:
            raise ValueError(
                f"{N} sequences of {T} steps with {F} features and {H} units "
                f"are too large for BLAS: {name} = {value} exceeds the largest "
                f"int ({BLAS_INT_MAX})."
            )
    n_chunks = -(-N // CHUNK_SIZE)
    if backward:
        work = CM * T * G + CM * G + 3 * CM * H + 2 * H + CM * T * (F + H)
        if cell == GRU:
            work += CM * T * H
        extra = n_chunks * (F * G + H * G + 2 * G)    # the gradient slots
    else:
        work = CM * G + 3 * CM * H + H + (0 if training else CM * T * G)
        extra = 0
    n_workers = max(1, min(n_threads, n_chunks))
    total = (n_workers * work + extra) * itemsize
    if total > _SSIZE_MAX:
        raise MemoryError(
            f"The {'backward' if backward else 'forward'} pass of {N} sequences "
            f"of {T} steps ({F} features, {H} units) would need {total} bytes "
            f"of scratch memory, more than can be addressed."
        )
    return work


def _fp_flush_modes():
    """Flush-to-zero / denormals-are-zero bits of the calling thread.

    Returns the bits of the floating-point control register that the kernels
    set during a call (0 when none are set; see ``_flush_mode_bits``).
    Exposed for tests that check the caller's environment is unchanged.
    """
    return int(fpenv_get())


def _flush_mode_bits():
    """The control-register bits the kernels set (0 where not supported)."""
    return int(FPENV_BITS)


def _fp_flush_modes_of_threads(int n_threads):
    """The flush modes of each thread of an OpenMP region of n_threads."""
    cdef int i
    cdef Py_ssize_t[::1] out = np.zeros(n_threads, dtype=np.intp)
    with nogil:
        for i in prange(n_threads, num_threads=n_threads, schedule="static", chunksize=1):
            out[i] = <Py_ssize_t> fpenv_get()
    return [int(v) for v in out]


def _gate_math(x, name):
    """Apply the kernels' ``"sigmoid"`` or ``"tanh"`` to a 1-D array in place.

    Exposed for tests of the vectorised float32 approximations.
    """
    if not isinstance(x, np.ndarray) or x.ndim != 1 or not x.flags.c_contiguous:
        raise ValueError("x must be a 1-D C-contiguous numpy.ndarray.")
    if name not in ("sigmoid", "tanh"):
        raise ValueError(f"name must be 'sigmoid' or 'tanh', got {name!r}.")
    if x.dtype != np.float32 and x.dtype != np.float64:
        raise TypeError(f"x must be float32 or float64, got {x.dtype}.")
    _gate_math_impl(x, name == "sigmoid")


def _gate_math_impl(floating[::1] x, bint sigmoid):
    if x.shape[0] == 0:
        return
    cdef unsigned long long fp = fpenv_enter()
    if sigmoid:
        sigmoid_(&x[0], x.shape[0])
    else:
        tanh_(&x[0], x.shape[0])
    fpenv_leave(fp)


def _step_product(A, U, bint transpose, Py_ssize_t repeat=1):
    """A @ U, or A @ U.T with ``transpose``, by the per-step product path.

    The path :func:`step_products` names: seqclf's micro-kernel on U packed
    as the kernels pack it, or BLAS's blocked GEMM. Exposed for tests (and
    timing, ``repeat`` times); A (m, k) and U 2-D C-contiguous arrays of
    one float dtype.
    """
    if not all(isinstance(a, np.ndarray) and a.ndim == 2 and a.flags.c_contiguous
               for a in (A, U)):
        raise ValueError("A and U must be 2-D C-contiguous numpy.ndarrays.")
    if A.dtype != U.dtype or A.dtype not in (np.float32, np.float64):
        raise TypeError("A and U must be both float32 or both float64.")
    k, n = (U.shape[1], U.shape[0]) if transpose else U.shape
    if A.shape[1] != k:
        raise ValueError(f"A has {A.shape[1]} columns, the product needs {k}.")
    if repeat < 1:
        raise ValueError("repeat must be at least 1.")
    out = np.empty((A.shape[0], n), dtype=A.dtype)
    if out.size:
        _step_product_impl(A, U, transpose, repeat, out)
    return out


def _step_product_impl(const floating[:, ::1] A, const floating[:, ::1] U,
                       bint transpose, Py_ssize_t repeat, floating[:, ::1] out):
    cdef Py_ssize_t m = A.shape[0], k = A.shape[1], n = out.shape[1]
    cdef Py_ssize_t H = U.shape[0], G = U.shape[1], _r
    cdef floating* Up = NULL
    cdef unsigned long long fp
    Up = _packed_steps(<floating*> NULL, transpose, H, G, &U[0, 0])
    if Up == NULL and step_nr(<floating> 0) > 0:
        raise MemoryError("Cannot allocate the packed operand.")
    fp = fpenv_enter()
    with nogil:
        for _r in range(repeat):
            if Up != NULL:
                step_gemm(m, n, k, &A[0, 0], k, Up, &out[0, 0], n)
            elif k == 0:
                memset(&out[0, 0], 0, m * n * sizeof(floating))
            else:
                gemm_step(transpose, m, n, k, &A[0, 0], k, &U[0, 0], G, &out[0, 0], n)
    fpenv_leave(fp)
    seqclf_pack_free(Up)
