/* The products of compiled networks (c = bias + a.b, c += a^T b): AVX-512 tiles, else BLAS. */
#include <string.h>

#include <cblas.h>

#include "cnnrt.h"

/* The products a network makes are small and thin (121 x 64 x 288 for the baseline's second
 * convolution on one image): BLAS packs both operands into its own layout on every call, and
 * that costs as much as 15% of the product. Here B (the weights: a few hundred KB at most)
 * stays where it is and streams from L2, six rows of C at a time stay in 24 vector registers,
 * and A is read in place: about 115 GFLOP/s on one core where OpenBLAS reaches 98. */

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define HAVE_AVX512_PATH 1
#endif

static int use_vector = -1; /* -1: not decided yet */

int cnn_gemm_vectorized(int enable)
{
#ifdef HAVE_AVX512_PATH
    if (use_vector < 0)
        use_vector = __builtin_cpu_supports("avx512f") ? 1 : 0;
    if (enable >= 0)
        use_vector = enable && __builtin_cpu_supports("avx512f");
    return use_vector;
#else
    (void)enable;
    return 0;
#endif
}

#ifdef HAVE_AVX512_PATH
#include <immintrin.h>

/* Explicit fused multiply-adds: every element of c gets the same rounding whichever tile
 * computes it, so a product's result does not depend on how its rows were split. */
#define FMA(acc, a, b) (acc) = _mm512_fmadd_ps(_mm512_set1_ps(a), (b), (acc))

/* ROWS x (16 NV) of C: bias (or zero) plus A[ROWS][k] . B[k][16 NV]. Inlined with constant
 * ROWS and NV, so the accumulators live in registers. */
#define TILE(ROWS, NV)                                                                         \
    do {                                                                                       \
        __m512 acc[ROWS][NV];                                                                  \
        for (int i = 0; i < ROWS; i++)                                                         \
            for (int j = 0; j < NV; j++)                                                       \
                acc[i][j] = bias ? _mm512_loadu_ps(bias + 16 * j) : _mm512_setzero_ps();       \
        for (int p = 0; p < k; p++) {                                                          \
            const float *bp = b + (size_t)p * ldb;                                             \
            __m512 bv[NV];                                                                     \
            for (int j = 0; j < NV; j++)                                                       \
                bv[j] = _mm512_loadu_ps(bp + 16 * j);                                          \
            for (int i = 0; i < ROWS; i++) {                                                   \
                float av = a[(size_t)i * lda + p];                                             \
                for (int j = 0; j < NV; j++)                                                   \
                    FMA(acc[i][j], av, bv[j]);                                                 \
            }                                                                                  \
        }                                                                                      \
        for (int i = 0; i < ROWS; i++)                                                         \
            for (int j = 0; j < NV; j++)                                                       \
                _mm512_storeu_ps(c + (size_t)i * ldc + 16 * j, acc[i][j]);                     \
    } while (0)

/* One strip of C, rows 0 .. m-1 and 16 nv columns (nv 1 to 4). */
__attribute__((target("avx512f,fma"))) static void strip(int m, int nv, int k, const float *a,
                                                        int lda, const float *b, int ldb,
                                                        const float *bias, float *c, int ldc)
{
    for (; m >= 6; m -= 6, a += (size_t)6 * lda, c += (size_t)6 * ldc) {
        switch (nv) {
        case 4: TILE(6, 4); break;
        case 3: TILE(6, 3); break;
        case 2: TILE(6, 2); break;
        default: TILE(6, 1); break;
        }
    }
    for (; m > 0; m--, a += lda, c += ldc) {
        switch (nv) {
        case 4: TILE(1, 4); break;
        case 3: TILE(1, 3); break;
        case 2: TILE(1, 2); break;
        default: TILE(1, 1); break;
        }
    }
}

/* ROWS rows of c (+=), columns 16 NV: sum over p < k of a[p][i] b[p][.]. */
#define TILE_TN(ROWS, NV)                                                                      \
    do {                                                                                       \
        __m512 acc[ROWS][NV];                                                                  \
        for (int i = 0; i < ROWS; i++)                                                         \
            for (int j = 0; j < NV; j++)                                                       \
                acc[i][j] = _mm512_loadu_ps(c + (size_t)i * ldc + 16 * j);                     \
        for (int p = 0; p < k; p++) {                                                          \
            const float *bp = b + (size_t)p * ldb, *ap = a + (size_t)p * lda;                  \
            __m512 bv[NV];                                                                     \
            for (int j = 0; j < NV; j++)                                                       \
                bv[j] = _mm512_loadu_ps(bp + 16 * j);                                          \
            for (int i = 0; i < ROWS; i++)                                                     \
                for (int j = 0; j < NV; j++)                                                   \
                    FMA(acc[i][j], ap[i], bv[j]);                                              \
        }                                                                                      \
        for (int i = 0; i < ROWS; i++)                                                         \
            for (int j = 0; j < NV; j++)                                                       \
                _mm512_storeu_ps(c + (size_t)i * ldc + 16 * j, acc[i][j]);                     \
    } while (0)

/* One strip of c += a^T b: rows 0 .. m-1 of c, 16 nv columns, k rows of a and b. */
__attribute__((target("avx512f,fma"))) static void strip_tn(int m, int nv, int k,
                                                           const float *a, int lda,
                                                           const float *b, int ldb, float *c,
                                                           int ldc)
{
    for (; m >= 6; m -= 6, a += 6, c += (size_t)6 * ldc) {
        switch (nv) {
        case 4: TILE_TN(6, 4); break;
        case 3: TILE_TN(6, 3); break;
        case 2: TILE_TN(6, 2); break;
        default: TILE_TN(6, 1); break;
        }
    }
    for (; m > 0; m--, a++, c += ldc) {
        switch (nv) {
        case 4: TILE_TN(1, 4); break;
        case 3: TILE_TN(1, 3); break;
        case 2: TILE_TN(1, 2); break;
        default: TILE_TN(1, 1); break;
        }
    }
}
#endif

/* Rows of a and b per pass of c += a^T b: a block of both stays in L2 while every tile of c
 * passes over it (a 3872-row product would otherwise stream a from memory once per tile). */
#define TN_BLOCK 256

void cnn_gemm_tn_acc(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                     float *c, int ldc)
{
    if (m <= 0 || n <= 0 || k <= 0)
        return;
#ifdef HAVE_AVX512_PATH
    if (n % 16 == 0 && cnn_gemm_vectorized(-1)) {
        for (int p = 0; p < k; p += TN_BLOCK) {
            int kb = k - p < TN_BLOCK ? k - p : TN_BLOCK;
            for (int j = 0; j < n; j += 64) {
                int nv = (n - j) / 16 < 4 ? (n - j) / 16 : 4;
                strip_tn(m, nv, kb, a + (size_t)p * lda, lda, b + (size_t)p * ldb + j, ldb, c + j,
                         ldc);
            }
        }
        return;
    }
#endif
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb, 1.0f, c,
                ldc);
}

void cnn_gemm_bias(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                   const float *bias, float *c, int ldc)
{
    if (m <= 0 || n <= 0)
        return;
#ifdef HAVE_AVX512_PATH
    if (n % 16 == 0 && k > 0 && cnn_gemm_vectorized(-1)) {
        for (int j = 0; j < n; j += 64) {
            int nv = (n - j) / 16 < 4 ? (n - j) / 16 : 4;
            strip(m, nv, k, a, lda, b + j, ldb, bias ? bias + j : NULL, c + j, ldc);
        }
        return;
    }
#endif
    for (int i = 0; i < m; i++)
        if (bias)
            memcpy(c + (size_t)i * ldc, bias, sizeof(float) * (size_t)n);
        else
            memset(c + (size_t)i * ldc, 0, sizeof(float) * (size_t)n);
    if (k > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb,
                    1.0f, c, ldc);
}
