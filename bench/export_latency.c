/* Times one standalone export (cnnc export) at batch 1: the median of 5 one-second runs of
 * BENCH_PREDICT_U8 on one image, one thread. Prints `microseconds_per_image N`. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 199309L
#endif
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int BENCH_PREDICT_U8(const unsigned char *pixels, float *probabilities);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

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
    qsort(t, 5, sizeof *t, by_value);
    printf("microseconds_per_image %.1f\n", t[2] * 1e6);
    return sink < 0;
}
