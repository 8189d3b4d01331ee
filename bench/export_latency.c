/* Times one standalone export (cnnc export) at batch 1: the median of 5 one-second runs of
 * BENCH_PREDICT_U8 on one image, one thread. Prints `microseconds_per_image N`. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 199309L
#endif
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "timing.h"

int BENCH_PREDICT_U8(const unsigned char *pixels, float *probabilities);

int main(void)
{
    /* Larger than any network's input and classes. */
    static unsigned char pixels[1 << 20];
    static float probabilities[1 << 16];
    for (int i = 0; i < (1 << 20); i++)
        pixels[i] = (unsigned char)(i * 37 % 251);
    volatile int sink = 0;
    double t[5];
    for (int r = 0; r < 5; r++) {
        long n = 0;
        double t0 = now(), t1;
        do {
            sink += BENCH_PREDICT_U8(pixels, probabilities);
            n++;
        } while ((t1 = now()) - t0 < 1.0);
        t[r] = (t1 - t0) / n;
    }
    printf("microseconds_per_image %.1f\n", median(t, 5) * 1e6);
    return sink < 0;
}
