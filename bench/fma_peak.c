/* This machine's arithmetic ceiling: peak FP32 fused multiply-adds per second, per thread count,
 * in GFLOP/s (2 per lane per FMA). usage: fma_peak THREADS
 * Each thread runs 16 independent chains of vector FMAs held in registers, enough that the
 * FMA latency never limits (4 cycles times 2 units needs 8), each chain started from its own
 * value so that the compiler cannot merge them (the disassembly shows 16 vfmadd per loop:
 * `objdump -d fma_peak | grep -c vfmadd`: 32, 16 for each width). Both vector widths the CPU
 * has are measured and the faster counts (AVX-512 on the machines measured so far). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define ITERS 50000000L

/* 16 chains a[i] = a[i] * m + c: m just above 1 and c tiny keep them finite for ITERS. */
#define CHAINS(VEC, SET1, FMA, ADD)                                                            \
    VEC m = SET1(1.0000001f), c = SET1(1e-7f);                                                 \
    VEC a0 = SET1(seed + 0), a1 = SET1(seed + 1), a2 = SET1(seed + 2), a3 = SET1(seed + 3);    \
    VEC a4 = SET1(seed + 4), a5 = SET1(seed + 5), a6 = SET1(seed + 6), a7 = SET1(seed + 7);    \
    VEC a8 = SET1(seed + 8), a9 = SET1(seed + 9), a10 = SET1(seed + 10), a11 = SET1(seed + 11);\
    VEC a12 = SET1(seed + 12), a13 = SET1(seed + 13), a14 = SET1(seed + 14);                   \
    VEC a15 = SET1(seed + 15);                                                                 \
    for (long i = 0; i < ITERS; i++) {                                                         \
        a0 = FMA(a0, m, c), a1 = FMA(a1, m, c), a2 = FMA(a2, m, c), a3 = FMA(a3, m, c);        \
        a4 = FMA(a4, m, c), a5 = FMA(a5, m, c), a6 = FMA(a6, m, c), a7 = FMA(a7, m, c);        \
        a8 = FMA(a8, m, c), a9 = FMA(a9, m, c), a10 = FMA(a10, m, c), a11 = FMA(a11, m, c);    \
        a12 = FMA(a12, m, c), a13 = FMA(a13, m, c), a14 = FMA(a14, m, c);                      \
        a15 = FMA(a15, m, c);                                                                  \
    }                                                                                          \
    VEC s = ADD(ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7))),             \
                ADD(ADD(ADD(a8, a9), ADD(a10, a11)), ADD(ADD(a12, a13), ADD(a14, a15))));      \
    float out[sizeof(VEC) / sizeof(float)];                                                    \
    memcpy(out, &s, sizeof out);                                                               \
    return out[0]

#include <string.h>

#ifdef HAVE_X86
__attribute__((target("avx512f"))) static float chains512(float seed)
{
    CHAINS(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps);
}

__attribute__((target("avx2,fma"))) static float chains256(float seed)
{
    CHAINS(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps);
}
#endif

typedef struct job {
    int width; /* floats per vector */
    float seed, result;
} job;

static void *run(void *arg)
{
    job *j = arg;
#ifdef HAVE_X86
    j->result = j->width == 16 ? chains512(j->seed) : chains256(j->seed);
#endif
    return NULL;
}

/* GFLOP/s of `threads` threads at once, vectors of `width` floats. */
static double measure(int threads, int width)
{
    pthread_t tid[64];
    job jobs[64];
    double t0 = now();
    for (int t = 0; t < threads; t++) {
        jobs[t] = (job){width, (float)(t * 16), 0};
        if (pthread_create(&tid[t], NULL, run, &jobs[t]))
            return 0;
    }
    float sink = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        sink += jobs[t].result;
    }
    double seconds = now() - t0;
    if (sink != sink) /* the results are used: the chains cannot be dropped */
        fprintf(stderr, "fma_peak: NaN\n");
    return 2.0 * width * 16 * ITERS * threads / seconds / 1e9;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    if (threads < 1 || threads > 64) {
        fprintf(stderr, "usage: fma_peak THREADS (1 to 64)\n");
        return 1;
    }
#ifdef HAVE_X86
    double best[2] = {0, 0}; /* 256-bit, 512-bit: the best of three runs each */
    for (int rep = 0; rep < 3; rep++) {
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
            double g = measure(threads, 8);
            best[0] = g > best[0] ? g : best[0];
        }
        if (__builtin_cpu_supports("avx512f")) {
            double g = measure(threads, 16);
            best[1] = g > best[1] ? g : best[1];
        }
    }
    printf("threads %d\n", threads);
    printf("fma256_gflops %.1f\n", best[0]);
    printf("fma512_gflops %.1f\n", best[1]);
    printf("fma_gflops %.1f\n", best[0] > best[1] ? best[0] : best[1]);
    return best[0] > 0 || best[1] > 0 ? 0 : 1;
#else
    fprintf(stderr, "fma_peak: x86 vector FMAs only\n");
    return 1;
#endif
}
