/* The products of compiled networks (c = bias + a.b, c += a^T b): vector tiles of every width,
 * else (no AVX2) BLAS. */
#include <string.h>

#include <cblas.h>

#include "cnnrt.h"

/* The products a network makes are small and thin (121 x 64 x 288 for the baseline's second
 * convolution on one image): BLAS packs both operands into its own layout on every call, and
 * that costs as much as 15% of the product. Here B (the weights: a few hundred KB at most)
 * stays where it is and streams from L2, six rows of C at a time stay in vector registers
 * (24 with AVX-512, 12 with AVX2), and A is read in place: about 115 GFLOP/s on one core of
 * the machine where OpenBLAS reaches 98. Each CPU gets the widest tiles it has. */

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define HAVE_TILES 1
#endif

static int width = -1; /* floats per vector of the tiles in use; 0: OpenBLAS; -1: not decided */

static int widest(void)
{
#ifdef HAVE_TILES
    if (__builtin_cpu_supports("avx512f"))
        return 16;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return 8;
#endif
    return 0;
}

int cnn_gemm_tiles(int want)
{
    int best = widest();
    if (width < 0)
        width = best;
    if (want >= 0)
        width = want >= 16 ? best : want >= 8 && best >= 8 ? 8 : 0;
    return width;
}

#ifdef HAVE_TILES
#include <immintrin.h>

/* The tiles, written once for both vector widths: VEC the vector type, W its floats, and
 * LOAD, STORE, ZERO, FMA its operations. Explicit fused multiply-adds: every element of c
 * gets the same rounding whichever tile computes it, so a product's result does not depend
 * on how its rows were split between threads. */

/* ROWS x (W NV) of c = bias (or zero) + a[ROWS][k] . b[k][W NV]. LD and ST load and store
 * a vector: LOAD and STORE, or LOADM and STOREM for the last columns, fewer than W, under
 * `mask` (the same fused multiply-adds on every element, so the same bits either way). */
#define TILE(ROWS, NV, LD, ST)                                                                 \
    do {                                                                                       \
        VEC acc[ROWS][NV];                                                                     \
        for (int i = 0; i < ROWS; i++)                                                         \
            for (int j = 0; j < NV; j++)                                                       \
                acc[i][j] = bias ? LD(bias + W * j) : ZERO();                                  \
        for (int p = 0; p < k; p++) {                                                          \
            const float *bp = b + (size_t)p * ldb;                                             \
            VEC bv[NV];                                                                        \
            for (int j = 0; j < NV; j++)                                                       \
                bv[j] = LD(bp + W * j);                                                        \
            for (int i = 0; i < ROWS; i++)                                                     \
                for (int j = 0; j < NV; j++)                                                   \
                    acc[i][j] = FMA(a[(size_t)i * lda + p], bv[j], acc[i][j]);                 \
        }                                                                                      \
        for (int i = 0; i < ROWS; i++)                                                         \
            for (int j = 0; j < NV; j++)                                                       \
                ST(c + (size_t)i * ldc + W * j, acc[i][j]);                                    \
    } while (0)

/* ROWS rows of c (+=), columns W NV: the sum over p < k of a[p][i] b[p][.]. */
#define TILE_TN(ROWS, NV, LD, ST)                                                              \
    do {                                                                                       \
        VEC acc[ROWS][NV];                                                                     \
        for (int i = 0; i < ROWS; i++)                                                         \
            for (int j = 0; j < NV; j++)                                                       \
                acc[i][j] = LD(c + (size_t)i * ldc + W * j);                                   \
        for (int p = 0; p < k; p++) {                                                          \
            const float *bp = b + (size_t)p * ldb, *ap = a + (size_t)p * lda;                  \
            VEC bv[NV];                                                                        \
            for (int j = 0; j < NV; j++)                                                       \
                bv[j] = LD(bp + W * j);                                                        \
            for (int i = 0; i < ROWS; i++)                                                     \
                for (int j = 0; j < NV; j++)                                                   \
                    acc[i][j] = FMA(ap[i], bv[j], acc[i][j]);                                  \
        }                                                                                      \
        for (int i = 0; i < ROWS; i++)                                                         \
            for (int j = 0; j < NV; j++)                                                       \
                ST(c + (size_t)i * ldc + W * j, acc[i][j]);                                    \
    } while (0)

/* ROWS output pixels x (W NV) channels of a stride-1 convolution read from its padded input
 * (cnn_conv_s1): q0 .. q0+ROWS-1 count pixels along the padded rows of wp, a points at pixel
 * q0's first channel, and each tap (ky, kx) is a k-channel product from a + (ky wp + kx) k
 * with its k rows of b. Pixels in a row's last kw - 1 (x >= ow) are computed and dropped:
 * that keeps the rows of a evenly spaced. Taps, then channels, in im2col's order. */
#define TILE_CONV(ROWS, NV, LD, ST)                                                            \
    do {                                                                                       \
        VEC acc[ROWS][NV];                                                                     \
        for (int i = 0; i < ROWS; i++)                                                         \
            for (int j = 0; j < NV; j++)                                                       \
                acc[i][j] = bias ? LD(bias + W * j) : ZERO();                                  \
        const float *bp = b;                                                                   \
        for (int ky = 0; ky < kh; ky++)                                                        \
            for (int kx = 0; kx < kw; kx++) {                                                  \
                const float *at = a + ((size_t)ky * wp + kx) * k;                              \
                _Pragma("GCC unroll 4")                                                        \
                for (int p = 0; p < k; p++, bp += ldb) {                                       \
                    VEC bv[NV];                                                                \
                    for (int j = 0; j < NV; j++)                                               \
                        bv[j] = LD(bp + W * j);                                                \
                    for (int i = 0; i < ROWS; i++)                                             \
                        for (int j = 0; j < NV; j++)                                           \
                            acc[i][j] = FMA(at[(size_t)i * k + p], bv[j], acc[i][j]);          \
                }                                                                              \
            }                                                                                  \
        for (int i = 0; i < ROWS; i++) {                                                       \
            int y = (q0 + i) / wp, x = (q0 + i) % wp;                                          \
            if (x < ow)                                                                        \
                for (int j = 0; j < NV; j++)                                                   \
                    ST(c + ((size_t)y * ow + x) * ldc + W * j, acc[i][j]);                     \
        }                                                                                      \
    } while (0)

#define CONV_ROWS(R, NV, LD, ST)                                                               \
    do {                                                                                       \
        for (; q0 + (R) <= q_end; q0 += (R), a += (size_t)(R) * k)                             \
            TILE_CONV(R, NV, LD, ST);                                                          \
        for (; (R) > 4 && q0 + 4 <= q_end; q0 += 4, a += (size_t)4 * k)                        \
            TILE_CONV(4, NV, LD, ST);                                                          \
        for (; q0 < q_end; q0++, a += k)                                                       \
            TILE_CONV(1, NV, LD, ST);                                                          \
    } while (0)

/* One strip of output channels (as STRIP) over all q_end pixels of cnn_conv_s1. */
#define CONV_STRIP(NAME)                                                                       \
    static void NAME(int q_end, int nv, int rest, int kh, int kw, int wp, int ow, int k,       \
                     const float *a, const float *b, int ldb, const float *bias, float *c,     \
                     int ldc)                                                                  \
    {                                                                                          \
        MASK_T mask = MASK_OF(rest);                                                           \
        (void)mask;                                                                            \
        int q0 = 0;                                                                            \
        switch (nv) {                                                                          \
        case 4: CONV_ROWS(ROWS_4, 4, LOAD, STORE); break;                                      \
        case 3: CONV_ROWS(ROWS_3, 3, LOAD, STORE); break;                                      \
        case 2: CONV_ROWS(ROWS_2, 2, LOAD, STORE); break;                                      \
        case 1: CONV_ROWS(ROWS_1, 1, LOAD, STORE); break;                                      \
        default: CONV_ROWS(ROWS_1, 1, LOADM, STOREM); break;                                   \
        }                                                                                      \
    }

/* ROWS_LOOP(R, NV, LD, ST): the tiles of a strip, R rows at a time, then 4, then 1. */
#define ROWS_LOOP(TILE_OF, STEP_A, R, NV, LD, ST)                                              \
    do {                                                                                       \
        for (; m >= (R); m -= (R), a += (R) * (STEP_A), c += (size_t)(R) * ldc)                \
            TILE_OF(R, NV, LD, ST);                                                            \
        for (; (R) > 4 && m >= 4; m -= 4, a += 4 * (STEP_A), c += (size_t)4 * ldc)             \
            TILE_OF(4, NV, LD, ST);                                                            \
        for (; m > 0; m--, a += (STEP_A), c += ldc)                                            \
            TILE_OF(1, NV, LD, ST);                                                            \
    } while (0)

/* A strip of c, rows 0 .. m-1 and W nv columns (nv from 1 to NVMAX), or (nv = 0) the last
 * `rest` columns, fewer than W, under a mask. Rows per tile: ROWS_n for n vectors, enough
 * independent accumulators (8 or more) that the fused multiply-adds' latency never waits,
 * few enough to stay in registers. STEP_A is how far a moves for the next row of c. */
#define STRIP(NAME, TILE_OF, STEP_A)                                                           \
    static void NAME(int m, int nv, int rest, int k, const float *a, int lda, const float *b,  \
                     int ldb, const float *bias, float *c, int ldc)                            \
    {                                                                                          \
        (void)bias;                                                                            \
        MASK_T mask = MASK_OF(rest);                                                           \
        (void)mask;                                                                            \
        switch (nv) {                                                                          \
        case 4: ROWS_LOOP(TILE_OF, STEP_A, ROWS_4, 4, LOAD, STORE); break;                     \
        case 3: ROWS_LOOP(TILE_OF, STEP_A, ROWS_3, 3, LOAD, STORE); break;                     \
        case 2: ROWS_LOOP(TILE_OF, STEP_A, ROWS_2, 2, LOAD, STORE); break;                     \
        case 1: ROWS_LOOP(TILE_OF, STEP_A, ROWS_1, 1, LOAD, STORE); break;                     \
        default: ROWS_LOOP(TILE_OF, STEP_A, ROWS_1, 1, LOADM, STOREM); break;                  \
        }                                                                                      \
    }

/* AVX-512: 16 floats a vector, up to 4 vectors (64 columns) a strip: 24 accumulators of
 * 32 registers, 12 for one vector. */
#define ROWS_4 6
#define ROWS_3 8
#define ROWS_2 12
#define ROWS_1 12
#define VEC __m512
#define W 16
#define LOAD _mm512_loadu_ps
#define STORE _mm512_storeu_ps
#define ZERO _mm512_setzero_ps
#define FMA(x, v, acc) _mm512_fmadd_ps(_mm512_set1_ps(x), (v), (acc))
/* Masked lanes are neither read nor written: no fault past the end of a row. */
#define MASK_T __mmask16
#define MASK_OF(r) ((__mmask16)((1u << (r)) - 1))
#define LOADM(p) _mm512_maskz_loadu_ps(mask, (p))
#define STOREM(p, v) _mm512_mask_storeu_ps((p), mask, (v))
__attribute__((target("avx512f,fma"))) STRIP(strip16, TILE, lda)
__attribute__((target("avx512f,fma"))) STRIP(strip16_tn, TILE_TN, 1)
__attribute__((target("avx512f,fma"))) CONV_STRIP(conv_strip16)
#undef VEC
#undef W
#undef LOAD
#undef STORE
#undef ZERO
#undef FMA
#undef MASK_T
#undef MASK_OF
#undef LOADM
#undef STOREM
#undef ROWS_4
#undef ROWS_3
#undef ROWS_2
#undef ROWS_1

/* AVX2: 8 floats a vector, up to 2 vectors (16 columns) a strip: 12 accumulators of 16
 * registers (cases 3 and 4 never run). */
#define ROWS_4 1
#define ROWS_3 1
#define ROWS_2 6
#define ROWS_1 12
#define VEC __m256
#define W 8
#define LOAD _mm256_loadu_ps
#define STORE _mm256_storeu_ps
#define ZERO _mm256_setzero_ps
#define FMA(x, v, acc) _mm256_fmadd_ps(_mm256_set1_ps(x), (v), (acc))
/* Lane i is on when its mask element's top bit is: the first r of 8. */
#define MASK_T __m256i
#define MASK_OF(r) _mm256_cmpgt_epi32(_mm256_set1_epi32(r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define LOADM(p) _mm256_maskload_ps((p), mask)
#define STOREM(p, v) _mm256_maskstore_ps((p), mask, (v))
__attribute__((target("avx2,fma"))) STRIP(strip8, TILE, lda)
__attribute__((target("avx2,fma"))) STRIP(strip8_tn, TILE_TN, 1)
__attribute__((target("avx2,fma"))) CONV_STRIP(conv_strip8)
#undef VEC
#undef W
#undef LOAD
#undef STORE
#undef ZERO
#undef FMA
#undef MASK_T
#undef MASK_OF
#undef LOADM
#undef STOREM
#undef ROWS_4
#undef ROWS_3
#undef ROWS_2
#undef ROWS_1

typedef void strip_fn(int m, int nv, int rest, int k, const float *a, int lda, const float *b,
                      int ldb, const float *bias, float *c, int ldc);

typedef void conv_strip_fn(int q_end, int nv, int rest, int kh, int kw, int wp, int ow, int k,
                           const float *a, const float *b, int ldb, const float *bias, float *c,
                           int ldc);

/* Cuts c's n columns into strips of at most `most` vectors of w floats, then the last n % w
 * columns under a mask (b's and the bias's columns move with c's): every width is computed by
 * the tiles, so no product's bits depend on OpenBLAS. */
static void by_strips(strip_fn *strip, int w, int most, int m, int n, int k, const float *a,
                      int lda, const float *b, int ldb, const float *bias, float *c, int ldc)
{
    int full = n - n % w;
    for (int j = 0; j < full; j += w * most) {
        int nv = (full - j) / w < most ? (full - j) / w : most;
        strip(m, nv, 0, k, a, lda, b + j, ldb, bias ? bias + j : NULL, c + j, ldc);
    }
    if (full < n)
        strip(m, 0, n - full, k, a, lda, b + full, ldb, bias ? bias + full : NULL, c + full, ldc);
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
#ifdef HAVE_TILES
    int w = cnn_gemm_tiles(-1);
    if (w > 0) {
        for (int p = 0; p < k; p += TN_BLOCK) {
            int kb = k - p < TN_BLOCK ? k - p : TN_BLOCK;
            const float *ap = a + (size_t)p * lda, *bp = b + (size_t)p * ldb;
            if (w == 16)
                by_strips(strip16_tn, 16, 4, m, n, kb, ap, lda, bp, ldb, NULL, c, ldc);
            else
                by_strips(strip8_tn, 8, 2, m, n, kb, ap, lda, bp, ldb, NULL, c, ldc);
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
#ifdef HAVE_TILES
    int w = cnn_gemm_tiles(-1);
    if (w > 0 && k > 0) {
        if (w == 16)
            by_strips(strip16, 16, 4, m, n, k, a, lda, b, ldb, bias, c, ldc);
        else
            by_strips(strip8, 8, 2, m, n, k, a, lda, b, ldb, bias, c, ldc);
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

void cnn_conv_s1(int oh, int ow, int n, int kh, int kw, int k, const float *in, const float *w,
                 const float *bias, float *out)
{
    if (oh <= 0 || ow <= 0 || n <= 0)
        return;
    int wp = ow + kw - 1;
    /* The pixels from the first to the last one kept: the padded rows' dropped ends between. */
    int q_end = (oh - 1) * wp + ow;
#ifdef HAVE_TILES
    int vw = cnn_gemm_tiles(-1);
    if (vw > 0 && k > 0) {
        int most = vw == 16 ? 4 : 2, full = n - n % vw;
        conv_strip_fn *strip = vw == 16 ? conv_strip16 : conv_strip8;
        /* As by_strips: strips of `most` vectors, then the last n % vw columns masked. */
        for (int j = 0, nv = 0; j < n; j += nv * vw) {
            nv = (full - j) / vw < most ? (full - j) / vw : most;
            strip(q_end, nv, nv ? 0 : n - full, kh, kw, wp, ow, k, in, w + j, n,
                  bias ? bias + j : NULL, out + j, n);
            if (nv == 0)
                break;
        }
        return;
    }
#endif
    /* Without tiles: each output row as kh kw products of BLAS, added in tap order. */
    for (int y = 0; y < oh; y++) {
        float *o = out + (size_t)y * ow * n;
        for (int x = 0; x < ow; x++)
            if (bias)
                memcpy(o + (size_t)x * n, bias, sizeof(float) * (size_t)n);
            else
                memset(o + (size_t)x * n, 0, sizeof(float) * (size_t)n);
        for (int ky = 0; ky < kh && k > 0; ky++)
            for (int kx = 0; kx < kw; kx++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ow, n, k, 1.0f,
                            in + ((size_t)(y + ky) * wp + kx) * k, k,
                            w + (size_t)(ky * kw + kx) * k * n, n, 1.0f, o, n);
    }
}
