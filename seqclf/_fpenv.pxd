# Flush-to-zero / denormals-are-zero around the kernels' arithmetic (see
# _fpenv.h): every thread that computes calls fpenv_enter() first and
# fpenv_leave() with its result last.
cdef extern from "_fpenv.h" nogil:
    unsigned long long FPENV_BITS "SEQCLF_FPENV_BITS"
    unsigned long long fpenv_get "seqclf_fpenv_get"() noexcept
    unsigned long long fpenv_enter "seqclf_fpenv_enter"() noexcept
    void fpenv_leave "seqclf_fpenv_leave"(unsigned long long saved) noexcept
