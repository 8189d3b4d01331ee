/* Flush-to-zero for the whole process, set before any library starts its threads. */
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "cnnrt.h"

/* Denormal floats slow training severalfold and change no accuracy, so trainers flush them to
 * zero (FTZ/DAZ). Threads inherit the floating-point mode of the thread that creates them, and
 * OpenBLAS creates its workers while it loads, before main: a mode set in main misses them,
 * and the products they compute would meet denormals at full cost. An executable's
 * preinit_array runs before any library's initializer, so the mode is set there. Only programs
 * that reference cnn_flush_denormals_early link this object: trainers (through the command
 * line), cnnc and the benchmark, not programs that embed a network. */
const int cnn_flush_denormals_early = 1;

#if defined(__SSE__) && defined(__ELF__)
static void flush_denormals(int argc, char **argv, char **envp)
{
    (void)argc, (void)argv, (void)envp;
    _mm_setcsr(_mm_getcsr() | 0x8040);
}
__attribute__((section(".preinit_array"), used)) static void (*const preinit_flush)(int, char **,
                                                                                   char **) =
    flush_denormals;
#endif
