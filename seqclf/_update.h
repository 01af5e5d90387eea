/* The optimizers' elementwise updates over contiguous vectors, compiled per
 * x86-64 level as _vmath.h compiles the gate math (x86-64-v4, x86-64-v3,
 * baseline; one level only with other compilers and architectures) and
 * selected once, by seqclf_update_select().
 *
 * Each update is the sequence of NumPy operations that seqclf/_optim.py's
 * docstrings write, one rounding per operation. That holds at every level
 * only without floating-point contraction: setup.py compiles seqclf._train,
 * the one module including this header, with -ffp-contract=off (no fused
 * multiply-add) and -fno-math-errno (sqrt may then vectorise; errno is never
 * read).
 */
#ifndef SEQCLF_UPDATE_H
#define SEQCLF_UPDATE_H

#include "_vmath.h"

#if defined(__GNUC__)
#define SEQCLF_RESTRICT __restrict__
#else
#define SEQCLF_RESTRICT
#endif

/* Adam: m = b1 m + c1 g; v = b2 v + c2 g^2; p += neg_lr m / (sqrt(v) + eps) */
#define SEQCLF_ADAM_IMPL_(SUF, T, SQRT)                                         \
    SEQCLF_INLINE void seqclf_adam_##SUF##_impl(                                \
        ptrdiff_t n, T *SEQCLF_RESTRICT p, const T *SEQCLF_RESTRICT g,          \
        T *SEQCLF_RESTRICT m, T *SEQCLF_RESTRICT v, T b1, T c1, T b2, T c2,     \
        T eps, T neg_lr)                                                        \
    {                                                                           \
        for (ptrdiff_t i = 0; i < n; i++) {                                     \
            T gi = g[i];                                                        \
            T mi = m[i] * b1;                                                   \
            T t = gi * c1;                                                      \
            mi = mi + t;                                                        \
            T vi = v[i] * b2;                                                   \
            t = gi * gi;                                                        \
            t = t * c2;                                                         \
            vi = vi + t;                                                        \
            m[i] = mi;                                                          \
            v[i] = vi;                                                          \
            t = SQRT(vi);                                                       \
            t = t + eps;                                                        \
            t = mi / t;                                                         \
            t = t * neg_lr;                                                     \
            p[i] = p[i] + t;                                                    \
        }                                                                       \
    }

/* SGD: t = neg_lr g; v = mu v + t; p += t + mu v (Nesterov) or p += v */
#define SEQCLF_SGD_IMPL_(SUF, T)                                                \
    SEQCLF_INLINE void seqclf_sgd_##SUF##_impl(                                 \
        ptrdiff_t n, T *SEQCLF_RESTRICT p, const T *SEQCLF_RESTRICT g,          \
        T *SEQCLF_RESTRICT vel, T neg_lr, T mu, int nesterov)                   \
    {                                                                           \
        if (nesterov) {                                                         \
            for (ptrdiff_t i = 0; i < n; i++) {                                 \
                T t = g[i] * neg_lr;                                            \
                T vi = vel[i] * mu;                                             \
                vi = vi + t;                                                    \
                vel[i] = vi;                                                    \
                T pi = p[i] + t;                                                \
                t = vi * mu;                                                    \
                p[i] = pi + t;                                                  \
            }                                                                   \
        } else {                                                                \
            for (ptrdiff_t i = 0; i < n; i++) {                                 \
                T t = g[i] * neg_lr;                                            \
                T vi = vel[i] * mu;                                             \
                vi = vi + t;                                                    \
                vel[i] = vi;                                                    \
                p[i] = p[i] + vi;                                               \
            }                                                                   \
        }                                                                       \
    }

SEQCLF_ADAM_IMPL_(f, float, sqrtf)
SEQCLF_ADAM_IMPL_(d, double, sqrt)
SEQCLF_SGD_IMPL_(f, float)
SEQCLF_SGD_IMPL_(d, double)

#define SEQCLF_ADAM_PARAMS_(T)                                                  \
    (ptrdiff_t n, T *p, const T *g, T *m, T *v, T b1, T c1, T b2, T c2, T eps, \
     T neg_lr)
#define SEQCLF_ADAM_ARGS_ (n, p, g, m, v, b1, c1, b2, c2, eps, neg_lr)
#define SEQCLF_SGD_PARAMS_(T)                                                   \
    (ptrdiff_t n, T *p, const T *g, T *vel, T neg_lr, T mu, int nesterov)
#define SEQCLF_SGD_ARGS_ (n, p, g, vel, neg_lr, mu, nesterov)

#define SEQCLF_UPDATE_LEVEL_(LVL)                                               \
    SEQCLF_TARGET_##LVL static void seqclf_adam_f_##LVL SEQCLF_ADAM_PARAMS_(   \
        float) { seqclf_adam_f_impl SEQCLF_ADAM_ARGS_; }                        \
    SEQCLF_TARGET_##LVL static void seqclf_adam_d_##LVL SEQCLF_ADAM_PARAMS_(   \
        double) { seqclf_adam_d_impl SEQCLF_ADAM_ARGS_; }                       \
    SEQCLF_TARGET_##LVL static void seqclf_sgd_f_##LVL SEQCLF_SGD_PARAMS_(     \
        float) { seqclf_sgd_f_impl SEQCLF_SGD_ARGS_; }                          \
    SEQCLF_TARGET_##LVL static void seqclf_sgd_d_##LVL SEQCLF_SGD_PARAMS_(     \
        double) { seqclf_sgd_d_impl SEQCLF_SGD_ARGS_; }

SEQCLF_UPDATE_LEVEL_(baseline)
#if SEQCLF_SIMD_X86
SEQCLF_UPDATE_LEVEL_(avx2)
SEQCLF_UPDATE_LEVEL_(avx512)
#endif

typedef struct {
    void (*adam_f) SEQCLF_ADAM_PARAMS_(float);
    void (*adam_d) SEQCLF_ADAM_PARAMS_(double);
    void (*sgd_f) SEQCLF_SGD_PARAMS_(float);
    void (*sgd_d) SEQCLF_SGD_PARAMS_(double);
} seqclf_update_table;

#define SEQCLF_UPDATE_TABLE_(LVL)                                               \
    { seqclf_adam_f_##LVL, seqclf_adam_d_##LVL, seqclf_sgd_f_##LVL,            \
      seqclf_sgd_d_##LVL }

static seqclf_update_table seqclf_update = SEQCLF_UPDATE_TABLE_(baseline);

/* The public names: one indirect call each. */
static inline void seqclf_adam_f SEQCLF_ADAM_PARAMS_(float)
{ seqclf_update.adam_f SEQCLF_ADAM_ARGS_; }
static inline void seqclf_adam_d SEQCLF_ADAM_PARAMS_(double)
{ seqclf_update.adam_d SEQCLF_ADAM_ARGS_; }
static inline void seqclf_sgd_f SEQCLF_SGD_PARAMS_(float)
{ seqclf_update.sgd_f SEQCLF_SGD_ARGS_; }
static inline void seqclf_sgd_d SEQCLF_SGD_PARAMS_(double)
{ seqclf_update.sgd_d SEQCLF_SGD_ARGS_; }

/* Use `level` (a SEQCLF_SIMD_* number the CPU runs) from now on. Not
   thread-safe: called once, at import. */
static void seqclf_update_select(int level)
{
#if SEQCLF_SIMD_X86
    static const seqclf_update_table avx2 = SEQCLF_UPDATE_TABLE_(avx2);
    static const seqclf_update_table avx512 = SEQCLF_UPDATE_TABLE_(avx512);
    if (level == SEQCLF_SIMD_AVX512 && seqclf_simd_usable(level))
        seqclf_update = avx512;
    else if (level == SEQCLF_SIMD_AVX2 && seqclf_simd_usable(level))
        seqclf_update = avx2;
    else
#endif
    {
        static const seqclf_update_table baseline = SEQCLF_UPDATE_TABLE_(baseline);
        (void)level;
        seqclf_update = baseline;
    }
}

#endif
