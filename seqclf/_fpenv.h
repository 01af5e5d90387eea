/* Flush-to-zero and denormals-are-zero for the duration of a kernel call.
 *
 * Gradients that decay through long sequences become subnormal numbers,
 * which many x86-64 CPUs handle in microcode at tens to hundreds of cycles
 * per operation, so that without these modes a backward pass over long
 * sequences slows down step by step (what was measured with and without
 * them: docs/benchmarks.md, "Long sequences"). Each kernel thread calls
 * seqclf_fpenv_enter() before its arithmetic and seqclf_fpenv_leave() with
 * the value it returned after it, so that the caller's floating-point
 * environment (and that of the OpenMP pool's threads) is the same after a
 * call as before. The BLAS routines called in between run under the same
 * modes, since they run on the same thread.
 *
 * x86-64: MXCSR bits FTZ (15) and DAZ (6); only those two bits are
 * restored, so exception flags raised inside the call stay visible.
 * aarch64: FPCR bit FZ (24), which flushes both inputs and results.
 * Elsewhere both functions do nothing.
 */
#ifndef SEQCLF_FPENV_H
#define SEQCLF_FPENV_H

#if defined(__x86_64__) || defined(_M_X64) || \
    (defined(__i386__) && defined(__SSE2__))
#include <xmmintrin.h>
#define SEQCLF_FPENV_BITS 0x8040u

static inline unsigned long long seqclf_fpenv_get(void)
{
    return _mm_getcsr() & SEQCLF_FPENV_BITS;
}

static inline unsigned long long seqclf_fpenv_enter(void)
{
    unsigned int old = _mm_getcsr();
    if ((old & SEQCLF_FPENV_BITS) != SEQCLF_FPENV_BITS)
        _mm_setcsr(old | SEQCLF_FPENV_BITS);
    return old & SEQCLF_FPENV_BITS;
}

static inline void seqclf_fpenv_leave(unsigned long long saved)
{
    unsigned int now = _mm_getcsr();
    unsigned int want = (now & ~SEQCLF_FPENV_BITS) | (unsigned int)saved;
    if (want != now)
        _mm_setcsr(want);
}

#elif defined(__aarch64__) && defined(__GNUC__)
#define SEQCLF_FPENV_BITS (1ull << 24)

static inline unsigned long long seqclf_fpcr_read(void)
{
    unsigned long long r;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(r));
    return r;
}

static inline void seqclf_fpcr_write(unsigned long long r)
{
    __asm__ __volatile__("msr fpcr, %0" : : "r"(r));
}

static inline unsigned long long seqclf_fpenv_get(void)
{
    return seqclf_fpcr_read() & SEQCLF_FPENV_BITS;
}

static inline unsigned long long seqclf_fpenv_enter(void)
{
    unsigned long long old = seqclf_fpcr_read();
    if ((old & SEQCLF_FPENV_BITS) != SEQCLF_FPENV_BITS)
        seqclf_fpcr_write(old | SEQCLF_FPENV_BITS);
    return old & SEQCLF_FPENV_BITS;
}

static inline void seqclf_fpenv_leave(unsigned long long saved)
{
    unsigned long long now = seqclf_fpcr_read();
    unsigned long long want = (now & ~SEQCLF_FPENV_BITS) | saved;
    if (want != now)
        seqclf_fpcr_write(want);
}

#else
#define SEQCLF_FPENV_BITS 0ull
static inline unsigned long long seqclf_fpenv_get(void) { return 0; }
static inline unsigned long long seqclf_fpenv_enter(void) { return 0; }
static inline void seqclf_fpenv_leave(unsigned long long saved) { (void)saved; }
#endif

#endif
