/* Flush-to-zero: the floating-point mode trainers run in. */
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "cnnrt.h"

/* Denormal floats slow training severalfold and change no accuracy, so trainers flush them to
 * zero (FTZ/DAZ). The pool's workers copy the mode of the thread that starts them
 * (cnn_set_threads), and OpenBLAS runs in those threads, so setting it in main is enough. */
void cnn_flush_denormals(void)
{
#if defined(__SSE__)
    _mm_setcsr(_mm_getcsr() | 0x8040);
#endif
}
