/* Vectorised elementwise math of the kernels: sigmoid and tanh over
 * contiguous arrays, and the gate math of one GRU or LSTM row (one sequence
 * at one step) in one pass.
 *
 * float: a Cephes-style polynomial exp and tanh, written branch-free so that
 * gcc vectorises the loops (with -O3 -fno-trapping-math). Relative error is a
 * few float32 ulp; NaN propagates, sigmoid(-inf) = 0, sigmoid(inf) = 1,
 * tanh(+-inf) = +-1.
 *
 * Levels: with gcc >= 12 on x86-64 the row functions are compiled three
 * times, for x86-64-v4 ("avx512"), x86-64-v3 ("avx2": AVX2 and FMA) and the
 * baseline, from the same always-inline bodies; no -march flag is needed.
 * seqclf_simd_select() copies one level's function pointers into
 * seqclf_vmath, once at import (the best level the CPU runs, or the one
 * SEQCLF_SIMD names, see seqclf/_simd.py), and each row call is one
 * indirect call through it, as with an ifunc. The table is per translation
 * unit: a module that includes this header and does not select runs the
 * baseline. Other compilers and architectures get the baseline level only.
 *
 * double: libm's exp and tanh, for accuracy (the float64 path is the one the
 * tests compare to the NumPy reference at 1e-10). Its GRU and LSTM rows and
 * the tanh-RNN backward row are dispatched like the float ones (their
 * arithmetic around libm is compiled per level); the rest are plain
 * functions.
 *
 * Sizes, offsets and loop counters are ptrdiff_t (Py_ssize_t's width), so
 * callers may pass int or Py_ssize_t and no index arithmetic can overflow.
 */
#ifndef SEQCLF_VMATH_H
#define SEQCLF_VMATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Inlined into each level's version, so that it is compiled for that level's
   instruction set. */
#if defined(__GNUC__)
#define SEQCLF_INLINE static inline __attribute__((always_inline))
#else
#define SEQCLF_INLINE static inline
#endif

/* Level numbers, as seqclf/_simd.py's LEVELS indexes them. */
#define SEQCLF_SIMD_BASELINE 0
#define SEQCLF_SIMD_AVX2 1
#define SEQCLF_SIMD_AVX512 2

/* gcc 12 is the first to know the x86-64-vN names in both target() and
   __builtin_cpu_supports(), so that the check matches what is compiled. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    (__GNUC__ >= 12)
#define SEQCLF_SIMD_X86 1
#define SEQCLF_TARGET_avx512 __attribute__((target("arch=x86-64-v4")))
#define SEQCLF_TARGET_avx2 __attribute__((target("arch=x86-64-v3")))
#else
#define SEQCLF_SIMD_X86 0
#endif
#define SEQCLF_TARGET_baseline

/* exp(x) for x <= 0. Below -87 (and at -inf) it returns 0; NaN gives NaN. */
SEQCLF_INLINE float seqclf_expneg_f(float x)
{
    float xc = x > -87.0f ? x : -87.0f;       /* NaN -> -87: keeps n defined */
    /* n = round(xc / ln 2) by the 1.5 * 2^23 trick: no float-to-int
       conversion, which would keep gcc from vectorising under AVX2 */
    float t = xc * 1.44269504088896341f + 12582912.0f;
    int32_t ti;
    memcpy(&ti, &t, sizeof(ti));
    float fn = t - 12582912.0f;
    int32_t bits = (ti - 0x4B400000 + 127) << 23;  /* 2^n, n in [-126, 0] */
    float scale;
    memcpy(&scale, &bits, sizeof(scale));
    /* r uses x, not xc, so that NaN propagates */
    float r = x - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    float z = r * r;
    float p = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r
                 + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r
               + 1.6666665459e-1f) * r + 5.0000001201e-1f;
    p = p * z + r + 1.0f;
    float y = p * scale;
    return x < -87.0f ? 0.0f : y;
}

SEQCLF_INLINE float seqclf_sigmoid1_f(float v)
{
    float e = seqclf_expneg_f(-fabsf(v));   /* in (0, 1]: no overflow */
    float s = 1.0f / (1.0f + e);
    return v >= 0.0f ? s : e * s;
}

SEQCLF_INLINE float seqclf_tanh1_f(float v)
{
    float a = fabsf(v);
    /* |x| < 0.625: odd polynomial (no cancellation near 0) */
    float z = v * v;
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z
                     - 5.37397155531e-2f) * z + 1.33314422036e-1f) * z
                   - 3.33332819422e-1f) * z * v + v;
    float t = seqclf_expneg_f(-2.0f * a);
    float big = copysignf((1.0f - t) / (1.0f + t), v);
    return a < 0.625f ? small : big;
}

SEQCLF_INLINE double seqclf_sigmoid1_d(double v)
{
    double e = exp(-fabs(v));
    double s = 1.0 / (1.0 + e);
    return v >= 0.0 ? s : e * s;
}

SEQCLF_INLINE double seqclf_tanh1_d(double v) { return tanh(v); }

/* Float loops run in blocks of SEQCLF_BLOCK values, which every level turns
 * into whole vectors. A shorter tail goes through a zero-padded block, so it
 * is vectorised too: with gcc's scalar epilogue, the 15 values past 16 of a
 * 31-unit layer cost as much as the first 16. */
#define SEQCLF_BLOCK 16

#define SEQCLF_BLOCKED_LOOP(n, FN, BODY_BLOCK, BODY_TAIL)                      \
    do {                                                                       \
        ptrdiff_t n_ = (n);                                                    \
        ptrdiff_t m_ = n_ - n_ % SEQCLF_BLOCK;                                 \
        for (ptrdiff_t i = 0; i < m_; i++) {                                   \
            BODY_BLOCK;                                                        \
        }                                                                      \
        if (m_ < n_) {                                                         \
            ptrdiff_t r_ = n_ - m_;                                            \
            float buf[SEQCLF_BLOCK] = {0};                                     \
            for (ptrdiff_t k = 0; k < r_; k++) {                               \
                ptrdiff_t i = m_ + k;                                          \
                BODY_TAIL;                                                     \
            }                                                                  \
            for (ptrdiff_t k = 0; k < SEQCLF_BLOCK; k++)                       \
                buf[k] = FN(buf[k]);                                           \
            memcpy(x + m_, buf, (size_t)r_ * sizeof(float));                   \
        }                                                                      \
    } while (0)

/* The bodies of the dispatched functions (the *_impl): always inline, and
 * compiled only as part of each level's version below. */

SEQCLF_INLINE void seqclf_sigmoid_f_impl(float *x, ptrdiff_t n)
{
    SEQCLF_BLOCKED_LOOP(n, seqclf_sigmoid1_f, x[i] = seqclf_sigmoid1_f(x[i]), buf[k] = x[i]);
}

SEQCLF_INLINE void seqclf_tanh_f_impl(float *x, ptrdiff_t n)
{
    SEQCLF_BLOCKED_LOOP(n, seqclf_tanh1_f, x[i] = seqclf_tanh1_f(x[i]), buf[k] = x[i]);
}

/* tanh-RNN forward math of one row: x = tanh(x + rec + b). */
SEQCLF_INLINE void seqclf_rnn_tanh_row_f_impl(ptrdiff_t n, float *restrict x,
                                              const float *restrict rec,
                                              const float *restrict b)
{
    SEQCLF_BLOCKED_LOOP(n, seqclf_tanh1_f, x[i] = seqclf_tanh1_f(x[i] + rec[i] + b[i]),
                        buf[k] = x[i] + rec[i] + b[i]);
}

/* Not dispatched: libm does the work. */
static void seqclf_rnn_tanh_row_d(ptrdiff_t n, double *restrict x,
                                  const double *restrict rec,
                                  const double *restrict b)
{
    for (ptrdiff_t i = 0; i < n; i++)
        x[i] = tanh(x[i] + rec[i] + b[i]);
}

static void seqclf_sigmoid_d(double *x, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        x[i] = seqclf_sigmoid1_d(x[i]);
}

static void seqclf_tanh_d(double *x, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        x[i] = seqclf_tanh1_d(x[i]);
}

/* tanh-RNN backward math of one row: drow and srow get dh * (1 - h^2), the
 * gradient w.r.t. the pre-activation, and dh is cleared for the recurrent
 * product's contribution. */
#define SEQCLF_RNN_TANH_BACKWARD_ROW(T, SUF)                                   \
SEQCLF_INLINE void seqclf_rnn_tanh_backward_row_##SUF##_impl(                  \
    ptrdiff_t H, const T *restrict h, T *restrict dh, T *restrict drow,       \
    T *restrict srow)                                                          \
{                                                                              \
    for (ptrdiff_t i = 0; i < H; i++) {                                        \
        T d = dh[i] * ((T)1 - h[i] * h[i]);                                    \
        drow[i] = d;                                                           \
        srow[i] = d;                                                           \
        dh[i] = 0;                                                             \
    }                                                                          \
}

SEQCLF_RNN_TANH_BACKWARD_ROW(float, f)
SEQCLF_RNN_TANH_BACKWARD_ROW(double, d)

/* LSTM forward math of one row (one sequence at one step) in one pass:
 * gates holds x W on entry and the activated gates (i, f, g, o) on exit;
 * rec = hm U, b the bias; c is c_{t-1} on entry and c_t on exit; h gets
 * h_t. Each gate block has its own restrict pointer so that gcc vectorises
 * without run-time overlap checks.
 */
#define SEQCLF_LSTM_FORWARD_ROW(T, SUF)                                        \
SEQCLF_INLINE void seqclf_lstm_forward_row_##SUF##_(                           \
    ptrdiff_t H, T *restrict xi, T *restrict xf, T *restrict xg,              \
    T *restrict xo, const T *restrict ri, const T *restrict rf,               \
    const T *restrict rg, const T *restrict ro, const T *restrict bi,         \
    const T *restrict bf, const T *restrict bg, const T *restrict bo,         \
    T *restrict c, T *restrict h)                                              \
{                                                                              \
    for (ptrdiff_t i = 0; i < H; i++) {                                        \
        T iv = seqclf_sigmoid1_##SUF(xi[i] + ri[i] + bi[i]);                   \
        T fv = seqclf_sigmoid1_##SUF(xf[i] + rf[i] + bf[i]);                   \
        T gv = seqclf_tanh1_##SUF(xg[i] + rg[i] + bg[i]);                      \
        T ov = seqclf_sigmoid1_##SUF(xo[i] + ro[i] + bo[i]);                   \
        T cv = fv * c[i] + iv * gv;                                            \
        xi[i] = iv;                                                            \
        xf[i] = fv;                                                            \
        xg[i] = gv;                                                            \
        xo[i] = ov;                                                            \
        c[i] = cv;                                                             \
        h[i] = ov * seqclf_tanh1_##SUF(cv);                                    \
    }                                                                          \
}                                                                              \
                                                                               \
SEQCLF_INLINE void seqclf_lstm_forward_row_##SUF##_impl(                       \
    ptrdiff_t H, T *gates, const T *rec, const T *b, T *c, T *h)               \
{                                                                              \
    seqclf_lstm_forward_row_##SUF##_(H, gates, gates + H, gates + 2 * H,      \
                                     gates + 3 * H, rec, rec + H,             \
                                     rec + 2 * H, rec + 3 * H, b, b + H,      \
                                     b + 2 * H, b + 3 * H, c, h);             \
}

SEQCLF_LSTM_FORWARD_ROW(float, f)
SEQCLF_LSTM_FORWARD_ROW(double, d)

/* Backward gate math of one LSTM row (one sequence at one step), with
 * restrict pointers so that gcc vectorises it without run-time overlap
 * checks: g = activated gates (i, f, g, o), tc = tanh(c_t), cp = c_{t-1},
 * dh = dL/dh_t; dc is dL/dc_t on entry and dL/dc_{t-1} on exit; drow gets
 * the gradient w.r.t. the four pre-activations.
 */
#define SEQCLF_LSTM_BACKWARD_ROW(T, SUF)                                       \
SEQCLF_INLINE void seqclf_lstm_backward_row_##SUF##_(                          \
    ptrdiff_t H, const T *restrict gi, const T *restrict gf,                  \
    const T *restrict gg, const T *restrict go, const T *restrict tc,         \
    const T *restrict cp, const T *restrict dh, T *restrict dc,               \
    T *restrict di, T *restrict df, T *restrict dg, T *restrict dout)          \
{                                                                              \
    for (ptrdiff_t i = 0; i < H; i++) {                                        \
        T dv = dh[i], iv = gi[i], fv = gf[i], gv = gg[i], ov = go[i];          \
        T t = tc[i];                                                           \
        T dct = dc[i] + dv * ov * ((T)1 - t * t);                              \
        di[i] = dct * gv * iv * ((T)1 - iv);                                   \
        df[i] = dct * cp[i] * fv * ((T)1 - fv);                                \
        dg[i] = dct * iv * ((T)1 - gv * gv);                                   \
        dout[i] = dv * t * ov * ((T)1 - ov);                                   \
        dc[i] = dct * fv;                                                      \
    }                                                                          \
}                                                                              \
                                                                               \
/* Each gate block through its own restrict pointer: offsets within one      \
   pointer would make gcc check for overlap at run time and, for small H,     \
   run the scalar loop. */                                                     \
SEQCLF_INLINE void seqclf_lstm_backward_row_##SUF##_impl(                      \
    ptrdiff_t H, const T *g, const T *tc, const T *cp, const T *dh, T *dc,    \
    T *drow)                                                                   \
{                                                                              \
    seqclf_lstm_backward_row_##SUF##_(H, g, g + H, g + 2 * H, g + 3 * H, tc,  \
                                      cp, dh, dc, drow, drow + H,              \
                                      drow + 2 * H, drow + 3 * H);             \
}

SEQCLF_LSTM_BACKWARD_ROW(float, f)
SEQCLF_LSTM_BACKWARD_ROW(double, d)


/* GRU forward math of one row in one pass: gates holds x W on entry and
 * (r, z, n) on exit; rec = hm U; b_ih, b_hh the biases; hn gets
 * hm U_n + b_hn; h is h_{t-1} (unmasked) on entry and h_t on exit. */
#define SEQCLF_GRU_FORWARD_ROW(T, SUF)                                         \
SEQCLF_INLINE void seqclf_gru_forward_row_##SUF##_(                            \
    ptrdiff_t H, T *restrict xr, T *restrict xz, T *restrict xn,              \
    const T *restrict rr, const T *restrict rz, const T *restrict rn,         \
    const T *restrict bir, const T *restrict biz, const T *restrict bin,      \
    const T *restrict bhr, const T *restrict bhz, const T *restrict bhn,      \
    T *restrict hn, T *restrict h)                                             \
{                                                                              \
    for (ptrdiff_t i = 0; i < H; i++) {                                        \
        T rv = seqclf_sigmoid1_##SUF(xr[i] + bir[i] + rr[i] + bhr[i]);         \
        T zv = seqclf_sigmoid1_##SUF(xz[i] + biz[i] + rz[i] + bhz[i]);         \
        T hnv = rn[i] + bhn[i];                                                \
        T nv = seqclf_tanh1_##SUF(xn[i] + bin[i] + rv * hnv);                  \
        xr[i] = rv;                                                            \
        xz[i] = zv;                                                            \
        xn[i] = nv;                                                            \
        hn[i] = hnv;                                                           \
        h[i] = ((T)1 - zv) * nv + zv * h[i];                                   \
    }                                                                          \
}                                                                              \
                                                                               \
SEQCLF_INLINE void seqclf_gru_forward_row_##SUF##_impl(                        \
    ptrdiff_t H, T *gates, const T *rec, const T *b_ih, const T *b_hh,        \
    T *hn, T *h)                                                               \
{                                                                              \
    seqclf_gru_forward_row_##SUF##_(H, gates, gates + H, gates + 2 * H, rec,  \
                                    rec + H, rec + 2 * H, b_ih, b_ih + H,     \
                                    b_ih + 2 * H, b_hh, b_hh + H,             \
                                    b_hh + 2 * H, hn, h);                     \
}

/* GRU backward math of one row: g = (r, z, n), hn = hm U_n + b_hn,
 * hp = h_{t-1} (unmasked); dh is dL/dh_t on entry and the part of
 * dL/dh_{t-1} through z * h_{t-1} on exit; drow gets the gradient w.r.t.
 * the input-side pre-activations, srow w.r.t. the recurrent-side ones
 * (their n block scaled by r) and drn that n block again. */
#define SEQCLF_GRU_BACKWARD_ROW(T, SUF)                                        \
SEQCLF_INLINE void seqclf_gru_backward_row_##SUF##_(                           \
    ptrdiff_t H, const T *restrict gr, const T *restrict gz,                  \
    const T *restrict gn, const T *restrict hn, const T *restrict hp,         \
    T *restrict dh, T *restrict dr_, T *restrict dz_, T *restrict dn_,        \
    T *restrict sr, T *restrict sz, T *restrict sn, T *restrict drn)           \
{                                                                              \
    for (ptrdiff_t i = 0; i < H; i++) {                                        \
        T dv = dh[i], rv = gr[i], zv = gz[i], nv = gn[i];                      \
        T dn = dv * ((T)1 - zv) * ((T)1 - nv * nv);                            \
        T dz = dv * (hp[i] - nv) * zv * ((T)1 - zv);                           \
        T dr = dn * hn[i] * rv * ((T)1 - rv);                                  \
        dr_[i] = dr;                                                           \
        dz_[i] = dz;                                                           \
        dn_[i] = dn;                                                           \
        sr[i] = dr;                                                            \
        sz[i] = dz;                                                            \
        sn[i] = dn * rv;                                                       \
        drn[i] = dn * rv;                                                      \
        dh[i] = dv * zv;                                                       \
    }                                                                          \
}                                                                              \
                                                                               \
SEQCLF_INLINE void seqclf_gru_backward_row_##SUF##_impl(                       \
    ptrdiff_t H, const T *g, const T *hn, const T *hp, T *dh, T *drow,        \
    T *srow, T *drn)                                                           \
{                                                                              \
    seqclf_gru_backward_row_##SUF##_(H, g, g + H, g + 2 * H, hn, hp, dh,      \
                                     drow, drow + H, drow + 2 * H, srow,      \
                                     srow + H, srow + 2 * H, drn);            \
}

SEQCLF_GRU_FORWARD_ROW(float, f)
SEQCLF_GRU_FORWARD_ROW(double, d)
SEQCLF_GRU_BACKWARD_ROW(float, f)
SEQCLF_GRU_BACKWARD_ROW(double, d)

/* ------------------------------------------------------------------------
 * Levels and dispatch
 * ------------------------------------------------------------------------ */

/* The dispatched functions: X(name, parameters, arguments). */
#define SEQCLF_DISPATCHED(X)                                                   \
    X(sigmoid_f, (float *x, ptrdiff_t n), (x, n))                              \
    X(tanh_f, (float *x, ptrdiff_t n), (x, n))                                 \
    X(rnn_tanh_row_f, (ptrdiff_t n, float *x, const float *rec,                \
                       const float *b), (n, x, rec, b))                        \
    X(rnn_tanh_backward_row_f, (ptrdiff_t H, const float *h, float *dh,        \
                                float *drow, float *srow),                     \
      (H, h, dh, drow, srow))                                                  \
    X(rnn_tanh_backward_row_d, (ptrdiff_t H, const double *h, double *dh,      \
                                double *drow, double *srow),                   \
      (H, h, dh, drow, srow))                                                  \
    X(lstm_forward_row_f, (ptrdiff_t H, float *gates, const float *rec,        \
                           const float *b, float *c, float *h),                \
      (H, gates, rec, b, c, h))                                                \
    X(lstm_forward_row_d, (ptrdiff_t H, double *gates, const double *rec,      \
                           const double *b, double *c, double *h),             \
      (H, gates, rec, b, c, h))                                                \
    X(lstm_backward_row_f, (ptrdiff_t H, const float *g, const float *tc,      \
                            const float *cp, const float *dh, float *dc,       \
                            float *drow), (H, g, tc, cp, dh, dc, drow))        \
    X(lstm_backward_row_d, (ptrdiff_t H, const double *g, const double *tc,    \
                            const double *cp, const double *dh, double *dc,    \
                            double *drow), (H, g, tc, cp, dh, dc, drow))       \
    X(gru_forward_row_f, (ptrdiff_t H, float *gates, const float *rec,         \
                          const float *b_ih, const float *b_hh, float *hn,     \
                          float *h), (H, gates, rec, b_ih, b_hh, hn, h))       \
    X(gru_forward_row_d, (ptrdiff_t H, double *gates, const double *rec,       \
                          const double *b_ih, const double *b_hh, double *hn,  \
                          double *h), (H, gates, rec, b_ih, b_hh, hn, h))      \
    X(gru_backward_row_f, (ptrdiff_t H, const float *g, const float *hn,       \
                           const float *hp, float *dh, float *drow,            \
                           float *srow, float *drn),                           \
      (H, g, hn, hp, dh, drow, srow, drn))                                     \
    X(gru_backward_row_d, (ptrdiff_t H, const double *g, const double *hn,     \
                           const double *hp, double *dh, double *drow,         \
                           double *srow, double *drn),                         \
      (H, g, hn, hp, dh, drow, srow, drn))

typedef struct {
#define SEQCLF_MEMBER_(NAME, PARAMS, ARGS) void (*NAME) PARAMS;
    SEQCLF_DISPATCHED(SEQCLF_MEMBER_)
#undef SEQCLF_MEMBER_
} seqclf_vmath_table;

/* One level: its version of each function (the body inlined and compiled
   for the level's target) and the table of them, seqclf_vmath_<LVL>. */
#define SEQCLF_VERSION_(LVL, NAME, PARAMS, ARGS)                               \
    SEQCLF_TARGET_##LVL static void seqclf_##NAME##_##LVL PARAMS               \
    {                                                                          \
        seqclf_##NAME##_impl ARGS;                                             \
    }
#define SEQCLF_VERSION_baseline_(NAME, P, A) SEQCLF_VERSION_(baseline, NAME, P, A)
#define SEQCLF_VERSION_avx2_(NAME, P, A) SEQCLF_VERSION_(avx2, NAME, P, A)
#define SEQCLF_VERSION_avx512_(NAME, P, A) SEQCLF_VERSION_(avx512, NAME, P, A)
#define SEQCLF_ENTRY_baseline_(NAME, P, A) seqclf_##NAME##_baseline,
#define SEQCLF_ENTRY_avx2_(NAME, P, A) seqclf_##NAME##_avx2,
#define SEQCLF_ENTRY_avx512_(NAME, P, A) seqclf_##NAME##_avx512,
#define SEQCLF_LEVEL_(LVL)                                                     \
    SEQCLF_DISPATCHED(SEQCLF_VERSION_##LVL##_)                                 \
    static const seqclf_vmath_table seqclf_vmath_##LVL = {                     \
        SEQCLF_DISPATCHED(SEQCLF_ENTRY_##LVL##_)                               \
    };

SEQCLF_LEVEL_(baseline)
#if SEQCLF_SIMD_X86
SEQCLF_LEVEL_(avx2)
SEQCLF_LEVEL_(avx512)
#endif

/* The level in use: a copy of its table, so that a call loads one pointer.
   Baseline until seqclf_simd_select() runs. */
static seqclf_vmath_table seqclf_vmath = {
    SEQCLF_DISPATCHED(SEQCLF_ENTRY_baseline_)
};
static int seqclf_simd_level_ = SEQCLF_SIMD_BASELINE;

/* The public names: one indirect call each. */
#define SEQCLF_CALL_(NAME, PARAMS, ARGS)                                       \
    static inline void seqclf_##NAME PARAMS { seqclf_vmath.NAME ARGS; }
SEQCLF_DISPATCHED(SEQCLF_CALL_)

/* Whether this build has `level` and the CPU (and OS) can run it. */
static int seqclf_simd_usable(int level)
{
    if (level == SEQCLF_SIMD_BASELINE)
        return 1;
#if SEQCLF_SIMD_X86
    __builtin_cpu_init();
    if (level == SEQCLF_SIMD_AVX2)
        return __builtin_cpu_supports("x86-64-v3") != 0;
    if (level == SEQCLF_SIMD_AVX512)
        return __builtin_cpu_supports("x86-64-v4") != 0;
#endif
    return 0;
}

/* Use `level` from now on; -1 (and no change) if it is not usable. Not
   thread-safe: call it before any kernel runs. */
static int seqclf_simd_select(int level)
{
    if (!seqclf_simd_usable(level))
        return -1;
    switch (level) {
#if SEQCLF_SIMD_X86
    case SEQCLF_SIMD_AVX512:
        seqclf_vmath = seqclf_vmath_avx512;
        break;
    case SEQCLF_SIMD_AVX2:
        seqclf_vmath = seqclf_vmath_avx2;
        break;
#endif
    default:
        seqclf_vmath = seqclf_vmath_baseline;
        break;
    }
    seqclf_simd_level_ = level;
    return 0;
}

static int seqclf_simd_level(void) { return seqclf_simd_level_; }

#endif
