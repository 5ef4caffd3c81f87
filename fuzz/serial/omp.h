/* The fuzz builds compile the C core without OpenMP (clang's runtime differs from the GNU
 * one oneDNN uses): its parallel pragmas are ignored and these two calls answer for one
 * thread. Used by fuzz/build.sh only; the extension builds with -fopenmp. */
#ifndef V2T_FUZZ_SERIAL_OMP_H
#define V2T_FUZZ_SERIAL_OMP_H
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
#endif
