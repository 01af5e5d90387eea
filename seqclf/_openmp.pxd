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


cdef enum:
    # Elements of work per thread below which a parallel region runs on
    # fewer threads: waking a thread costs more than a pass over so few.
    MIN_ELEMENTS_PER_THREAD = 32768


cdef inline int region_threads(int n_threads, Py_ssize_t n_items,
                               Py_ssize_t n_elements) noexcept nogil:
    """Threads for a parallel region of ``n_items`` independent work items
    (``n_elements`` elements in all): at most ``n_threads``, never more
    than there are items (an idle thread still stays in OpenMP's pool, and
    starting it can fail under a process or memory limit, which libgomp
    answers by ending the process), and at least 1."""
    cdef Py_ssize_t n = min(<Py_ssize_t> n_threads, n_items,
                            n_elements // MIN_ELEMENTS_PER_THREAD)
    return <int> max(<Py_ssize_t> 1, n)
