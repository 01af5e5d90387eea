# OpenMP runtime functions with serial stand-ins, so that every .pyx compiles
# with or without OpenMP (the build falls back to serial when the compiler has
# no working OpenMP).
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define SEQCLF_OPENMP_ENABLED 1
    #else
    #define SEQCLF_OPENMP_ENABLED 0
    static int omp_get_max_threads(void) { return 1; }
    static int omp_get_thread_num(void) { return 0; }
    #endif
    """
    bint SEQCLF_OPENMP_ENABLED
    int omp_get_max_threads() noexcept nogil
    int omp_get_thread_num() noexcept nogil
