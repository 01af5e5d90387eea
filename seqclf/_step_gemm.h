/* The per-step recurrent products of the kernels, C (m x n) = A (m x k) @ B
 * (k x n), by register-blocked micro-kernels on B packed once per call.
 *
 * Forward, B is U (H x G): rec = h_{t-1} U for a chunk of sequences.
 * Backward, B is U^T (G x H): dh_{t-1} = dpre U^T. Both run at every step on
 * a chunk of at most a few tens of rows, too small for BLAS's packing to pay
 * and below the sizes its per-CPU small-matrix paths are tuned for. Here U
 * is packed once per kernel call into panels of NR columns (k x NR each,
 * zero-padded at the right edge) and each step streams the panels through an
 * MR x NR tile of accumulators held in vector registers: per depth index,
 * NR / VW vector loads of the panel, MR broadcasts of A and MR * NR / VW
 * fused multiply-adds.
 *
 * Levels (the gate math's, _vmath.h; the same one is selected for both):
 *   avx512: 16 float / 8 double lanes, MR = 8 rows x 2 vectors (32 registers)
 *   avx2:    8 float / 4 double lanes, MR = 6 rows x 2 vectors (16 registers)
 *   baseline, other compilers and architectures: no micro-kernel; the
 *   kernels keep calling BLAS (_blas.pxd's gemm_step).
 * The body is written once with GCC vector extensions and compiled per level;
 * a multiply-add is contracted into one FMA instruction (gcc's default
 * -ffp-contract=fast for GNU C), which rounds once.
 *
 * Summation order: each entry of C is sum_p A[i, p] B[p, j] accumulated in p
 * order, 0 to k - 1, with one rounding per FMA; it depends on the shapes and
 * the level only, never on the thread count or on which rows share a tile.
 * BLAS's order (and so the last bits) differs.
 */
#ifndef SEQCLF_STEP_GEMM_H
#define SEQCLF_STEP_GEMM_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
/* A block per thread needs POSIX threads' keys (to free it at thread exit)
   and a thread-local storage class. */
#if (defined(__unix__) || defined(__APPLE__)) && defined(__GNUC__)
#include <pthread.h>
#define SEQCLF_PACK_CACHE 1
#define SEQCLF_PACK_TLS __thread
#else
#define SEQCLF_PACK_CACHE 0
#endif

#include "_vmath.h"

/* The largest tile height of any level: the accumulator arrays are sized
   for it, and rows past a tile's height are dead code the compiler drops. */
#define SEQCLF_MR_MAX 8

/* Pack B (k x n; B[p, j] at B[p * ldb + j], or at B[j * ldb + p] when trans)
 * into panels of nr columns: entry (p, c) of panel q at
 * Bp[(q * k + p) * nr + c], zero where q * nr + c >= n. Bp holds
 * seqclf_step_packed_size(k, n, nr) values. */
#define SEQCLF_STEP_PACK(T, SUF)                                               \
static void seqclf_step_pack_##SUF(ptrdiff_t k, ptrdiff_t n, const T *B,       \
                                   ptrdiff_t ldb, int trans, ptrdiff_t nr,     \
                                   T *Bp)                                      \
{                                                                              \
    for (ptrdiff_t q = 0; q * nr < n; q++) {                                   \
        T *panel = Bp + q * k * nr;                                            \
        ptrdiff_t nc = n - q * nr < nr ? n - q * nr : nr;                      \
        for (ptrdiff_t p = 0; p < k; p++) {                                    \
            T *row = panel + p * nr;                                           \
            for (ptrdiff_t c = 0; c < nc; c++) {                               \
                ptrdiff_t j = q * nr + c;                                      \
                row[c] = trans ? B[j * ldb + p] : B[p * ldb + j];              \
            }                                                                  \
            for (ptrdiff_t c = nc; c < nr; c++)                                \
                row[c] = 0;                                                    \
        }                                                                      \
    }                                                                          \
}
SEQCLF_STEP_PACK(float, f)
SEQCLF_STEP_PACK(double, d)

static inline ptrdiff_t seqclf_step_packed_size(ptrdiff_t k, ptrdiff_t n,
                                                ptrdiff_t nr)
{
    return nr > 0 ? (n + nr - 1) / nr * nr * k : 0;
}

/* Memory of a packed operand, 64-byte aligned; NULL when out of memory.
 * Each thread that calls the kernels keeps its block between calls (grown
 * when a larger one is asked for, freed when the thread exits). Made and
 * freed by malloc at every call, the block raised glibc's dynamic mmap
 * threshold, after which the batch's other buffers came from the heap and
 * the freed heap was kept (a GRU 2x256 fit's peak resident set grew from
 * 52 MB to as much as 65 MB); mapped and unmapped at every call instead,
 * it made a one-sequence prediction take twice as long. A second block
 * asked for while the thread's block is in use is allocated for that call
 * alone. */
#if SEQCLF_PACK_CACHE
static pthread_key_t seqclf_pack_key;
static pthread_once_t seqclf_pack_once = PTHREAD_ONCE_INIT;
static void seqclf_pack_make_key(void) { pthread_key_create(&seqclf_pack_key, free); }
static SEQCLF_PACK_TLS void *seqclf_pack_block = NULL;
static SEQCLF_PACK_TLS size_t seqclf_pack_bytes = 0;
static SEQCLF_PACK_TLS int seqclf_pack_busy = 0;
#endif

static void *seqclf_pack_alloc(size_t bytes)
{
    void *p = NULL;
#if SEQCLF_PACK_CACHE
    if (!seqclf_pack_busy) {
        if (seqclf_pack_bytes < bytes || seqclf_pack_block == NULL) {
            pthread_once(&seqclf_pack_once, seqclf_pack_make_key);
            if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0)
                return NULL;
            free(seqclf_pack_block);
            seqclf_pack_block = p;
            seqclf_pack_bytes = bytes;
            /* freed by the key's destructor when the thread exits */
            pthread_setspecific(seqclf_pack_key, p);
        }
        seqclf_pack_busy = 1;
        return seqclf_pack_block;
    }
#endif
    return posix_memalign(&p, 64, bytes) == 0 ? p : NULL;
}

static void seqclf_pack_free(void *p)
{
    if (p == NULL)
        return;
#if SEQCLF_PACK_CACHE
    if (p == seqclf_pack_block) {
        seqclf_pack_busy = 0;
        return;
    }
#endif
    free(p);
}

#if SEQCLF_SIMD_X86

/* One tile: rows 0..mr-1 of A (mr a constant at each call, so that the
 * loops over rows and vectors unroll and the accumulators live in
 * registers) times one panel, written to the first nc columns of C. */
#define SEQCLF_STEP_TILE(T, SUF, LVL, VW, NV)                                  \
typedef T seqclf_v##SUF##_##LVL                                                \
    __attribute__((vector_size((VW) * sizeof(T)), aligned(sizeof(T))));       \
SEQCLF_INLINE void seqclf_step_tile_##SUF##_##LVL(                             \
    const int mr, ptrdiff_t k, const T *restrict A, ptrdiff_t lda,             \
    const T *restrict panel, T *restrict C, ptrdiff_t ldc, ptrdiff_t nc)       \
{                                                                              \
    typedef seqclf_v##SUF##_##LVL V;                                           \
    V acc[SEQCLF_MR_MAX][NV];                                                  \
    for (int r = 0; r < mr; r++)                                               \
        for (int v = 0; v < (NV); v++)                                         \
            acc[r][v] = (V){0};                                                \
    for (ptrdiff_t p = 0; p < k; p++) {                                        \
        V b[NV];                                                               \
        for (int v = 0; v < (NV); v++)                                         \
            b[v] = *(const V *)(panel + p * (VW) * (NV) + v * (VW));           \
        for (int r = 0; r < mr; r++) {                                         \
            T a = A[r * lda + p];                                              \
            for (int v = 0; v < (NV); v++)                                     \
                acc[r][v] += b[v] * a;                                         \
        }                                                                      \
    }                                                                          \
    if (nc == (VW) * (NV)) {                                                   \
        for (int r = 0; r < mr; r++)                                           \
            for (int v = 0; v < (NV); v++)                                     \
                *(V *)(C + r * ldc + v * (VW)) = acc[r][v];                    \
    } else {                                                                   \
        for (int r = 0; r < mr; r++) {                                         \
            T buf[(VW) * (NV)];                                                \
            for (int v = 0; v < (NV); v++)                                     \
                *(V *)(buf + v * (VW)) = acc[r][v];                            \
            memcpy(C + r * ldc, buf, (size_t)nc * sizeof(T));                  \
        }                                                                      \
    }                                                                          \
}

#define SEQCLF_STEP_TILE_CASE(SUF, LVL, R)                                     \
    case R:                                                                    \
        seqclf_step_tile_##SUF##_##LVL(R, k, A + i * lda, lda, panel,          \
                                       C + i * ldc + j0, ldc, nc);             \
        break;

/* C = A @ B for every m, n, k (k may be 0: C is zeroed), B packed by
 * seqclf_step_pack with nr = VW * NV. Panels outermost: one panel
 * (k x nr) stays in L1 while every row tile of A passes over it. */
#define SEQCLF_STEP_GEMM(T, SUF, LVL, VW, NV, MR)                              \
SEQCLF_STEP_TILE(T, SUF, LVL, VW, NV)                                          \
SEQCLF_TARGET_##LVL static void seqclf_step_gemm_##SUF##_##LVL(                \
    ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *A, ptrdiff_t lda,          \
    const T *Bp, T *C, ptrdiff_t ldc)                                          \
{                                                                              \
    const ptrdiff_t nr = (VW) * (NV);                                          \
    for (ptrdiff_t j0 = 0; j0 < n; j0 += nr) {                                 \
        const T *panel = Bp + (j0 / nr) * k * nr;                              \
        ptrdiff_t nc = n - j0 < nr ? n - j0 : nr;                              \
        ptrdiff_t i = 0;                                                       \
        for (; i + (MR) <= m; i += (MR))                                       \
            seqclf_step_tile_##SUF##_##LVL(MR, k, A + i * lda, lda, panel,     \
                                           C + i * ldc + j0, ldc, nc);         \
        switch (m - i) {                                                       \
            SEQCLF_STEP_TILE_CASE(SUF, LVL, 1)                                 \
            SEQCLF_STEP_TILE_CASE(SUF, LVL, 2)                                 \
            SEQCLF_STEP_TILE_CASE(SUF, LVL, 3)                                 \
            SEQCLF_STEP_TILE_CASE(SUF, LVL, 4)                                 \
            SEQCLF_STEP_TILE_CASE(SUF, LVL, 5)                                 \
            SEQCLF_STEP_TILE_CASE(SUF, LVL, 6)                                 \
            SEQCLF_STEP_TILE_CASE(SUF, LVL, 7)                                 \
            default:                                                           \
                break;                                                         \
        }                                                                      \
    }                                                                          \
}

SEQCLF_STEP_GEMM(float, f, avx2, 8, 2, 6)
SEQCLF_STEP_GEMM(double, d, avx2, 4, 2, 6)
SEQCLF_STEP_GEMM(float, f, avx512, 16, 2, 8)
SEQCLF_STEP_GEMM(double, d, avx512, 8, 2, 8)

#endif /* SEQCLF_SIMD_X86 */

typedef void (*seqclf_step_gemm_f_fn)(ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                      const float *, ptrdiff_t, const float *,
                                      float *, ptrdiff_t);
typedef void (*seqclf_step_gemm_d_fn)(ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                      const double *, ptrdiff_t,
                                      const double *, double *, ptrdiff_t);

/* The micro-kernels in use and their panel widths; nr 0 (and NULL) means
   none: the kernels call BLAS. None until seqclf_step_select() runs. */
static struct {
    ptrdiff_t nr_f, nr_d;
    seqclf_step_gemm_f_fn gemm_f;
    seqclf_step_gemm_d_fn gemm_d;
} seqclf_step_ = {0, 0, NULL, NULL};

/* Use the micro-kernels of gate-math level `level` (a usable one, see
   seqclf_simd_select), or none if `level` has none or `enabled` is 0. Not
   thread-safe: call it while no kernel runs. */
static void seqclf_step_select(int level, int enabled)
{
    seqclf_step_.nr_f = 0;
    seqclf_step_.nr_d = 0;
    seqclf_step_.gemm_f = NULL;
    seqclf_step_.gemm_d = NULL;
    if (!enabled)
        return;
#if SEQCLF_SIMD_X86
    if (level == SEQCLF_SIMD_AVX512) {
        seqclf_step_.nr_f = 32;
        seqclf_step_.nr_d = 16;
        seqclf_step_.gemm_f = seqclf_step_gemm_f_avx512;
        seqclf_step_.gemm_d = seqclf_step_gemm_d_avx512;
    } else if (level == SEQCLF_SIMD_AVX2) {
        seqclf_step_.nr_f = 16;
        seqclf_step_.nr_d = 8;
        seqclf_step_.gemm_f = seqclf_step_gemm_f_avx2;
        seqclf_step_.gemm_d = seqclf_step_gemm_d_avx2;
    }
#else
    (void)level;
#endif
}

static inline ptrdiff_t seqclf_step_nr_f(void) { return seqclf_step_.nr_f; }
static inline ptrdiff_t seqclf_step_nr_d(void) { return seqclf_step_.nr_d; }

static inline void seqclf_step_gemm_f(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                      const float *A, ptrdiff_t lda,
                                      const float *Bp, float *C, ptrdiff_t ldc)
{
    seqclf_step_.gemm_f(m, n, k, A, lda, Bp, C, ldc);
}

static inline void seqclf_step_gemm_d(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                      const double *A, ptrdiff_t lda,
                                      const double *Bp, double *C,
                                      ptrdiff_t ldc)
{
    seqclf_step_.gemm_d(m, n, k, A, lda, Bp, C, ldc);
}

#endif
