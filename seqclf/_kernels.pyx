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
E. IN / OUT. Arrays are marked IN (read only, const), OUT (overwritten,
   allocated by the caller) or IN-cache (written by the training forward,
   read by the backward); _kernels.pxd marks each field of a LayerCall.
   Kernels create no NumPy arrays; the only memory they allocate is
   per-call scratch (one block per thread), one weight-gradient slot per
   chunk (both laid out by _scratch_layout) and U packed for the per-step
   products.
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
   naming the sizes asked for (_check_scratch). One function lays out the
   scratch (_scratch_layout: every region's offset, each block's and slot's
   size, with overflow checks); the chunks, the passes' allocations, the
   size check and the out-of-memory messages all read its result.
K. Calling convention. This module holds the nogil kernels, one nogil pass
   per direction and batch, declared in _kernels.pxd for compiled callers
   such as seqclf._plan's training plan:
       forward_pass(<floating*> NULL, &call, &config)
       backward_pass(<floating*> NULL, &call, &config)
   where call is a LayerCall (cell code, direction, sizes N, T, F, H and
   the arrays' pointers: one direction of one layer on one batch) and
   config a PassConfig (threads, and the thread split and compute
   precision, each with one value implemented today; a pass refuses any
   other); the NULL dummy's type picks the float or double
   specialisation. A pass returns PASS_OK, PASS_NO_MEMORY or
   PASS_UNSUPPORTED and writes nothing unless PASS_OK. Two typed entry
   points, forward and backward, take a cell code of CELL_CODES and the
   arrays as typed memoryviews, check nothing but the sizes (J) and build
   both structs. seqclf._layers is the interface: it takes the arguments of
   seqclf.reference, checks them (types, shapes, aliasing) and allocates
   what the caller does not provide. The entry points that exist for tests
   and benchmarks only (gate math, per-step products, floating-point
   modes) are in seqclf._kernels_testing.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset

import sys

from ._cells import BLAS_INT_MAX

from ._activations cimport (
    gru_backward_row, gru_forward_row, lstm_backward_row, lstm_forward_row,
    rnn_tanh_backward_row, rnn_tanh_row, tanh_,
)
from ._blas cimport gemm, gemm_step
from ._step_gemm cimport step_gemm, step_nr, step_pack, seqclf_step_packed_size
from ._step_gemm cimport seqclf_pack_alloc, seqclf_pack_free, seqclf_step_select
from ._fpenv cimport fpenv_enter, fpenv_leave
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
    turned off with ``seqclf._kernels_testing.use_own_step_products``.
    """
    return "own" if step_nr(<float> 0) > 0 else "blas"


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
# Scratch layout (nogil)
# ---------------------------------------------------------------------------

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX

# Offsets and sizes count elements of the pass's dtype. A chunk's regions
# have rows = min(CHUNK_SIZE, N) rows, so that a batch smaller than a chunk
# gets scratch for its own sequences only.

cdef struct ForwardScratch:
    # One thread's block in the forward pass.
    Py_ssize_t rec          # (rows, G) recurrent products
    Py_ssize_t h            # (rows, H) state
    Py_ssize_t hm           # (rows, H) masked state
    Py_ssize_t c            # (rows, H) LSTM cell state
    Py_ssize_t tmp          # (H,)
    Py_ssize_t xp           # (rows, T, G) projections; empty in training
    Py_ssize_t size         # elements of the block

cdef struct BackwardScratch:
    # One thread's block in the backward pass.
    Py_ssize_t dpre         # (rows, T, G) gradients of the pre-activations
    Py_ssize_t dstep        # (rows, G) those of one step
    Py_ssize_t dh           # (rows, H)
    Py_ssize_t dc           # (rows, H) LSTM
    Py_ssize_t dhp          # (rows, H) dstep U^T
    Py_ssize_t tmp          # (H,)
    Py_ssize_t zeros        # (H,)
    Py_ssize_t xh           # (rows, T, F + H): [X, h_prev]
    Py_ssize_t drn          # (rows, T, H) GRU, empty for the other cells
    Py_ssize_t size         # elements of the block

cdef struct GradientSlot:
    # One chunk's weight gradients; the slots are summed in chunk order.
    Py_ssize_t dW           # (F, G)
    Py_ssize_t dU           # (H, G), right after dW: one GEMM writes both
    Py_ssize_t db           # (G,)
    Py_ssize_t db_hh        # (G,)
    Py_ssize_t size         # elements of the slot

cdef struct ScratchLayout:
    Py_ssize_t rows         # min(CHUNK_SIZE, N)
    Py_ssize_t n_chunks
    ForwardScratch forward  # of a training or inference pass, as asked
    BackwardScratch backward
    GradientSlot slot


cdef inline Py_ssize_t _place(Py_ssize_t* end, Py_ssize_t a, Py_ssize_t b,
                              Py_ssize_t c) noexcept nogil:
    """Offset of a region of a x b x c elements placed at end[0], which moves
    past it; end[0] becomes -1 for good once a size would overflow."""
    cdef Py_ssize_t at = end[0], n = a
    if at < 0 or (n != 0 and b > PY_SSIZE_T_MAX // n):
        end[0] = -1
        return 0
    n = n * b
    if n != 0 and c > PY_SSIZE_T_MAX // n:
        end[0] = -1
        return 0
    n = n * c
    if n > PY_SSIZE_T_MAX - at:
        end[0] = -1
        return 0
    end[0] = at + n
    return at


cdef int _scratch_layout(ScratchLayout* s, int cell, bint training,
                         Py_ssize_t N, Py_ssize_t T, Py_ssize_t F,
                         Py_ssize_t H) noexcept nogil:
    """Lay out the scratch of a pass over N >= 1 sequences.

    The one definition of the scratch: the chunks address their regions,
    the passes allocate, _check_scratch checks and the out-of-memory
    messages count bytes by it. Returns 0, or -1 when a size would not fit
    a Py_ssize_t (s is then not usable).
    """
    cdef Py_ssize_t G = _n_gates(cell) * H
    cdef Py_ssize_t CM = min(<Py_ssize_t> CHUNK_SIZE, N)
    cdef Py_ssize_t end = 0
    s.rows = CM
    s.n_chunks = (N + CHUNK_SIZE - 1) // CHUNK_SIZE

    s.forward.rec = _place(&end, CM, 1, G)
    s.forward.h = _place(&end, CM, 1, H)
    s.forward.hm = _place(&end, CM, 1, H)
    s.forward.c = _place(&end, CM, 1, H)
    s.forward.tmp = _place(&end, 1, 1, H)
    # In training the projections go straight into the caches.
    s.forward.xp = _place(&end, CM, T, 0 if training else G)
    s.forward.size = end

    end = 0
    s.backward.dpre = _place(&end, CM, T, G)
    s.backward.dstep = _place(&end, CM, 1, G)
    s.backward.dh = _place(&end, CM, 1, H)
    s.backward.dc = _place(&end, CM, 1, H)
    s.backward.dhp = _place(&end, CM, 1, H)
    s.backward.tmp = _place(&end, 1, 1, H)
    s.backward.zeros = _place(&end, 1, 1, H)
    s.backward.xh = _place(&end, CM, T, F + H)
    s.backward.drn = _place(&end, CM, T, H if cell == GRU else 0)
    s.backward.size = end

    end = 0
    s.slot.dW = _place(&end, F, 1, G)
    s.slot.dU = _place(&end, H, 1, G)
    s.slot.db = _place(&end, 1, 1, G)
    s.slot.db_hh = _place(&end, 1, 1, G)
    s.slot.size = end
    if s.forward.size < 0 or s.backward.size < 0 or s.slot.size < 0:
        return -1
    return 0


cdef inline int _n_workers(const PassConfig* config,
                           const ScratchLayout* layout) noexcept nogil:
    """Threads of a pass: one chunk each at most."""
    return <int> min(<Py_ssize_t> config.n_threads, layout.n_chunks)


cdef inline bint _implemented(const PassConfig* config) noexcept nogil:
    return (config.n_threads >= 1 and config.split == SPLIT_CHUNKS
            and config.precision == PRECISION_DTYPE)


# ---------------------------------------------------------------------------
# Per-chunk work (nogil)
# ---------------------------------------------------------------------------

cdef void _forward_chunk(
    const LayerCall* call,          # the pass's arrays and sizes
    const ScratchLayout* layout,
    const floating* Up,             # IN U packed for step_gemm, or NULL
    Py_ssize_t n0, Py_ssize_t C,    # the chunk: C sequences from n0
    floating* work,                 # this thread's scratch block
) noexcept nogil:
    cdef int cell = call.cell
    cdef bint reverse = call.reverse
    cdef Py_ssize_t T = call.T, F = call.F, H = call.H
    cdef Py_ssize_t G = _n_gates(cell) * H
    cdef const floating* X = <const floating*> call.X
    cdef const Py_ssize_t* lengths = call.lengths
    cdef const floating* W = <const floating*> call.W
    cdef const floating* U = <const floating*> call.U
    cdef const floating* b = <const floating*> call.b
    cdef const floating* b_hh = <const floating*> call.b_hh
    cdef const floating* mask = <const floating*> call.mask
    cdef floating* h_last = <floating*> call.h_last
    cdef floating* h_seq = <floating*> call.h_seq
    cdef floating* h_prev = <floating*> call.h_prev
    cdef floating* gates = <floating*> call.gates
    cdef floating* aux = <floating*> call.aux
    cdef bint training = h_prev != NULL
    cdef floating* rec = work + layout.forward.rec
    cdef floating* h = work + layout.forward.h
    cdef floating* hm = work + layout.forward.hm
    cdef floating* c = work + layout.forward.c
    cdef floating* tmp = work + layout.forward.tmp
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
        xp = work + layout.forward.xp

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
    const LayerCall* call,          # the pass's arrays and sizes
    const ScratchLayout* layout,
    const floating* UTp,            # IN U^T packed for step_gemm, or NULL
    Py_ssize_t n0, Py_ssize_t C,    # the chunk: C sequences from n0
    floating* slot,                 # OUT this chunk's gradient slot
    floating* work,                 # this thread's scratch block
) noexcept nogil:
    cdef int cell = call.cell
    cdef bint reverse = call.reverse
    cdef Py_ssize_t T = call.T, F = call.F, H = call.H
    cdef Py_ssize_t G = _n_gates(cell) * H
    cdef Py_ssize_t CT = C * T
    cdef Py_ssize_t FH = F + H
    cdef const floating* X = <const floating*> call.X
    cdef const Py_ssize_t* lengths = call.lengths
    cdef const floating* W = <const floating*> call.W
    cdef const floating* U = <const floating*> call.U
    cdef const floating* mask = <const floating*> call.mask
    cdef const floating* h_seq = <const floating*> call.h_seq
    cdef const floating* h_prev = <const floating*> call.h_prev
    cdef const floating* gates = <const floating*> call.gates
    cdef const floating* aux = <const floating*> call.aux
    cdef const floating* dh_last = <const floating*> call.dh_last
    cdef const floating* dh_seq = <const floating*> call.dh_seq
    cdef floating* dX = <floating*> call.dX
    cdef floating* dW = slot + layout.slot.dW
    cdef floating* dU = slot + layout.slot.dU
    cdef floating* db = slot + layout.slot.db
    cdef floating* db_hh = slot + layout.slot.db_hh
    cdef floating* dpre = work + layout.backward.dpre
    cdef floating* dstep = work + layout.backward.dstep
    cdef floating* dh = work + layout.backward.dh
    cdef floating* dc = work + layout.backward.dc
    cdef floating* dhp = work + layout.backward.dhp
    cdef floating* tmp = work + layout.backward.tmp
    cdef floating* zeros = work + layout.backward.zeros
    cdef floating* xh = work + layout.backward.xh
    cdef floating* drn = work + layout.backward.drn
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

cdef int forward_pass(floating* dummy, const LayerCall* call,
                      const PassConfig* config) noexcept nogil:
    """One forward pass over call.N >= 1 sequences (see :func:`forward`).

    h_prev NULL is inference. The sizes must have passed _check_scratch.
    Returns PASS_OK, PASS_UNSUPPORTED for a configuration not implemented
    or PASS_NO_MEMORY when the scratch memory could not be allocated;
    nothing is written but on PASS_OK.
    """
    cdef ScratchLayout layout
    cdef const ScratchLayout* lay = &layout
    cdef Py_ssize_t N = call.N, H = call.H, G = _n_gates(call.cell) * call.H
    cdef Py_ssize_t ci, n0, C
    cdef int n_workers, tid
    cdef unsigned long long fp
    cdef floating* Up = NULL
    cdef floating* work
    cdef bint use_own
    if not _implemented(config):
        return PASS_UNSUPPORTED
    if _scratch_layout(&layout, call.cell, call.h_prev != NULL, N, call.T,
                       call.F, H) != 0:
        return PASS_NO_MEMORY
    n_workers = _n_workers(config, lay)
    work = <floating*> malloc(
        <size_t> (n_workers * layout.forward.size) * sizeof(floating))
    # One sequence: BLAS's matrix-vector product reads U once per step, where
    # packing it first would add a pass over U to every call (latency).
    use_own = step_nr(<floating> 0) > 0 and N > 1
    if use_own:
        Up = _packed_steps(<floating*> NULL, False, H, G,
                           <const floating*> call.U)
    if work == NULL or (Up == NULL and use_own):
        free(work)
        seqclf_pack_free(Up)
        return PASS_NO_MEMORY
    for ci in prange(layout.n_chunks, num_threads=n_workers,
                     schedule="static"):
        fp = fpenv_enter()
        tid = omp_get_thread_num()
        n0 = ci * CHUNK_SIZE
        C = min(<Py_ssize_t> CHUNK_SIZE, N - n0)
        _forward_chunk(call, lay, Up, n0, C, work + tid * lay.forward.size)
        fpenv_leave(fp)
    free(work)
    seqclf_pack_free(Up)
    return PASS_OK


cdef int backward_pass(floating* dummy, const LayerCall* call,
                       const PassConfig* config) noexcept nogil:
    """One BPTT pass over call.N >= 1 sequences (see :func:`backward`);
    returns as :func:`forward_pass` does."""
    cdef ScratchLayout layout
    cdef const ScratchLayout* lay = &layout
    cdef Py_ssize_t N = call.N, F = call.F, H = call.H
    cdef Py_ssize_t G = _n_gates(call.cell) * H
    cdef Py_ssize_t ci, n0, C, n_chunks, slot_size
    cdef int n_workers, tid
    cdef unsigned long long fp
    cdef floating* work
    cdef floating* slots
    cdef floating* UTp
    if not _implemented(config):
        return PASS_UNSUPPORTED
    if _scratch_layout(&layout, call.cell, True, N, call.T, F, H) != 0:
        return PASS_NO_MEMORY
    n_workers = _n_workers(config, lay)
    n_chunks = layout.n_chunks
    slot_size = layout.slot.size
    work = <floating*> malloc(
        <size_t> (n_workers * layout.backward.size) * sizeof(floating))
    slots = <floating*> malloc(
        <size_t> (n_chunks * slot_size) * sizeof(floating))
    UTp = _packed_steps(<floating*> NULL, True, H, G, <const floating*> call.U)
    if (work == NULL or slots == NULL
            or (UTp == NULL and step_nr(<floating> 0) > 0)):
        free(work)
        free(slots)
        seqclf_pack_free(UTp)
        return PASS_NO_MEMORY
    for ci in prange(n_chunks, num_threads=n_workers, schedule="static"):
        fp = fpenv_enter()
        tid = omp_get_thread_num()
        n0 = ci * CHUNK_SIZE
        C = min(<Py_ssize_t> CHUNK_SIZE, N - n0)
        _backward_chunk(call, lay, UTp, n0, C, slots + ci * slot_size,
                        work + tid * lay.backward.size)
        fpenv_leave(fp)
    _sum_slots(slots, n_chunks, slot_size, layout.slot.dW, F * G,
               <floating*> call.dW, config.n_threads)
    _sum_slots(slots, n_chunks, slot_size, layout.slot.dU, H * G,
               <floating*> call.dU, config.n_threads)
    _sum_slots(slots, n_chunks, slot_size, layout.slot.db, G,
               <floating*> call.db, config.n_threads)
    if call.db_hh != NULL:
        _sum_slots(slots, n_chunks, slot_size, layout.slot.db_hh, G,
                   <floating*> call.db_hh, config.n_threads)
    free(work)
    free(slots)
    seqclf_pack_free(UTp)
    return PASS_OK


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
    cdef PassConfig config = pass_config(n_threads)
    cdef LayerCall call
    cdef int rc
    if N == 0:
        return
    _check_scratch(cell, h_prev is not None, False, N, T, F, H, n_threads,
                   sizeof(floating))
    memset(&call, 0, sizeof(call))     # what the forward does not read: NULL
    call.cell, call.reverse = cell, reverse
    call.N, call.T, call.F, call.H = N, T, F, H
    call.X, call.lengths = &X[0, 0, 0], &lengths[0]
    call.W, call.U, call.b = &W[0, 0], &U[0, 0], &b[0]
    call.b_hh = &b_hh[0] if b_hh is not None else NULL
    call.mask = &mask[0, 0] if mask is not None else NULL
    call.h_last = &h_last[0, 0]
    call.h_seq = &h_seq[0, 0, 0] if h_seq is not None else NULL
    call.h_prev = &h_prev[0, 0, 0] if h_prev is not None else NULL
    call.gates = &gates[0, 0, 0] if gates is not None else NULL
    call.aux = &aux[0, 0, 0] if aux is not None else NULL
    with nogil:
        rc = forward_pass(<floating*> NULL, &call, &config)
    if rc != PASS_OK:
        raise _pass_error(rc, False, &call, &config, sizeof(floating))


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
    cdef PassConfig config = pass_config(n_threads)
    cdef LayerCall call
    cdef int rc
    if N == 0:
        return
    _check_scratch(cell, True, True, N, T, F, H, n_threads, sizeof(floating))
    memset(&call, 0, sizeof(call))     # what the backward does not read: NULL
    call.cell, call.reverse = cell, reverse
    call.N, call.T, call.F, call.H = N, T, F, H
    call.X, call.lengths = &X[0, 0, 0], &lengths[0]
    call.W, call.U = &W[0, 0], &U[0, 0]
    call.mask = &mask[0, 0] if mask is not None else NULL
    # The caches are only read: the casts drop the const that the fields,
    # forward outputs too, cannot carry.
    call.h_seq = <void*> &h_seq[0, 0, 0]
    call.h_prev = <void*> &h_prev[0, 0, 0]
    call.gates = <void*> &gates[0, 0, 0] if gates is not None else NULL
    call.aux = <void*> &aux[0, 0, 0] if aux is not None else NULL
    call.dh_last = &dh_last[0, 0] if dh_last is not None else NULL
    call.dh_seq = &dh_seq[0, 0, 0] if dh_seq is not None else NULL
    call.dW, call.dU, call.db = &dW[0, 0], &dU[0, 0], &db[0]
    call.db_hh = &db_hh[0] if db_hh is not None else NULL
    call.dX = &dX[0, 0, 0] if dX is not None else NULL
    with nogil:
        rc = backward_pass(<floating*> NULL, &call, &config)
    if rc != PASS_OK:
        raise _pass_error(rc, True, &call, &config, sizeof(floating))


cdef object _pass_error(int rc, bint backward, const LayerCall* call,
                        const PassConfig* config, size_t itemsize):
    """The exception for a pass's return code rc (not PASS_OK)."""
    cdef ScratchLayout layout
    what = "backward" if backward else "forward"
    if rc == PASS_UNSUPPORTED:
        return ValueError(
            f"The {what} pass does not implement n_threads={config.n_threads}"
            f", thread split {<int> config.split}, precision "
            f"{<int> config.precision}.")
    N, T, F, H = call.N, call.T, call.F, call.H
    _scratch_layout(&layout, call.cell, backward or call.h_prev != NULL,
                    N, T, F, H)
    # The scratch, and U packed for the per-step products (counted as 2 H G).
    G = _n_gates(call.cell) * H
    n_bytes = (_scratch_bytes(&layout, backward, config.n_threads, itemsize)
               + 2 * H * G * itemsize)
    return MemoryError(_scratch_message(what, N, T, F, H, n_bytes))


def _scratch_message(what, N, T, F, H, n_bytes):
    return (
        f"Cannot allocate {n_bytes / 2**30:.3g} GiB ({n_bytes} bytes) of "
        f"scratch memory for the {what} pass of {N} sequences of {T} steps "
        f"({F} features, {H} units)."
    )


cdef object _scratch_bytes(const ScratchLayout* layout, bint backward,
                           object n_threads, object itemsize):
    """Bytes of scratch of one pass by the layout: its threads' blocks, and
    in the backward the chunks' gradient slots (Python integers: exact)."""
    cdef object n_chunks = layout.n_chunks
    n_workers = max(1, min(n_threads, n_chunks))
    if backward:
        return (n_workers * layout.backward.size
                + n_chunks * layout.slot.size) * itemsize
    return n_workers * layout.forward.size * itemsize


# Checks of the size arithmetic, in Python integers (which cannot overflow).
_SSIZE_MAX = sys.maxsize


def _check_scratch(cell, training, backward, N, T, F, H, n_threads, itemsize):
    """Scratch elements per thread of one call, after checking every size.

    Raises ValueError when a dimension passed to BLAS (an int) would not fit
    in an int, and MemoryError when the scratch memory's size in bytes is not
    representable; both before any work, naming what was asked for.
    """
    cdef ScratchLayout layout
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
    # The bytes in Python integers; a region past a Py_ssize_t fails the
    # layout's own check, and is past addressing too.
    laid_out = _scratch_layout(&layout, cell, training, N, T, F, H) == 0
    if laid_out:
        total = _scratch_bytes(&layout, backward, n_threads, itemsize)
    if not laid_out or total > _SSIZE_MAX:
        raise MemoryError(
            f"The {'backward' if backward else 'forward'} pass of {N} sequences "
            f"of {T} steps ({F} features, {H} units) would need "
            f"{total if laid_out else f'more than {_SSIZE_MAX}'} bytes of "
            f"scratch memory, more than can be addressed."
        )
    return layout.backward.size if backward else layout.forward.size


# ---------------------------------------------------------------------------
# For seqclf._kernels_testing (see _kernels.pxd)
# ---------------------------------------------------------------------------

cdef bint select_step_products(bint own) noexcept nogil:
    """Turn the per-step micro-kernels on (where there are some) or off;
    returns the previous setting. Not thread-safe: call it while no kernel
    runs."""
    cdef bint previous = step_nr(<float> 0) > 0
    seqclf_step_select(seqclf_simd_level(), own)
    return previous


cdef int run_step_product(bint transpose, Py_ssize_t repeat, Py_ssize_t m,
                          const floating* A, Py_ssize_t H, Py_ssize_t G,
                          const floating* U, floating* out) noexcept nogil:
    """out = A @ U (m, G), or A @ U^T (m, H) with transpose, repeat times
    by the per-step product path, under the kernels' flush modes; U packed
    as the passes pack it. Returns 0, or -1 when the packed operand cannot
    be allocated."""
    cdef Py_ssize_t k = G if transpose else H
    cdef Py_ssize_t n = H if transpose else G
    cdef Py_ssize_t _r
    cdef unsigned long long fp
    cdef floating* Up = _packed_steps(<floating*> NULL, transpose, H, G, U)
    if Up == NULL and step_nr(<floating> 0) > 0:
        return -1
    fp = fpenv_enter()
    for _r in range(repeat):
        if Up != NULL:
            step_gemm(m, n, k, A, k, Up, out, n)
        elif k == 0:
            memset(out, 0, m * n * sizeof(floating))
        else:
            gemm_step(transpose, m, n, k, A, k, U, G, out, n)
    fpenv_leave(fp)
    seqclf_pack_free(Up)
    return 0
