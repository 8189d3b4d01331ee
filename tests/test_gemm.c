/* cnn_gemm_bias, cnn_gemm_tn_acc and cnn_conv_s1 against plain loops in double, through each
 * of their paths the CPU has (AVX-512 tiles, AVX2 tiles, OpenBLAS): every remainder of rows and
 * of vector groups and of columns (masked tiles), padded strides, with and without the bias,
 * and nothing written outside c's n columns; cnn_conv_s1 also bit for bit against the im2col
 * product it replaces. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

static int check_shape(int m, int n, int k, int with_bias, cnn_rng *rng)
{
    int lda = k + 3, ldb = n + 5, ldc = n + 7;
    float *a = malloc(sizeof(float) * (size_t)(m * lda + 1));
    float *b = malloc(sizeof(float) * (size_t)(k * ldb + 1));
    float *c = malloc(sizeof(float) * (size_t)(m * ldc + 1));
    float *bias = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < m * lda; i++)
        a[i] = cnn_rng_uniform(rng) - 0.5f;
    for (int i = 0; i < k * ldb; i++)
        b[i] = cnn_rng_uniform(rng) - 0.5f;
    for (int j = 0; j < n; j++)
        bias[j] = cnn_rng_uniform(rng);
    for (int i = 0; i < m * ldc; i++)
        c[i] = 1234.5f; /* what must survive outside the n columns, and be replaced inside */
    cnn_gemm_bias(m, n, k, a, lda, b, ldb, with_bias ? bias : NULL, c, ldc);
    int bad = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < ldc; j++) {
            double want = 1234.5;
            if (j < n) {
                want = with_bias ? bias[j] : 0.0;
                for (int p = 0; p < k; p++)
                    want += (double)a[i * lda + p] * b[p * ldb + j];
            }
            if (fabs(c[i * ldc + j] - want) > 1e-5 * (1 + sqrt((double)k))) {
                if (bad++ < 3)
                    print_error("m=%d n=%d k=%d bias=%d: c[%d][%d] = %.9g, want %.9g\n", m, n,
                                k, with_bias, i, j, c[i * ldc + j], want);
            }
        }
    free(a), free(b), free(c), free(bias);
    return bad;
}

/* c += a^T b, a [k][m] and b [k][n]: the weights' gradients. */
static int check_tn(int m, int n, int k, cnn_rng *rng)
{
    int lda = m + 3, ldb = n + 5, ldc = n + 7;
    float *a = malloc(sizeof(float) * (size_t)(k * lda));
    float *b = malloc(sizeof(float) * (size_t)(k * ldb));
    float *c = malloc(sizeof(float) * (size_t)(m * ldc));
    float *c0 = malloc(sizeof(float) * (size_t)(m * ldc));
    for (int i = 0; i < k * lda; i++)
        a[i] = cnn_rng_uniform(rng) - 0.5f;
    for (int i = 0; i < k * ldb; i++)
        b[i] = cnn_rng_uniform(rng) - 0.5f;
    for (int i = 0; i < m * ldc; i++)
        c[i] = c0[i] = cnn_rng_uniform(rng);
    cnn_gemm_tn_acc(m, n, k, a, lda, b, ldb, c, ldc);
    int bad = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < ldc; j++) {
            double want = c0[i * ldc + j];
            for (int p = 0; j < n && p < k; p++)
                want += (double)a[p * lda + i] * b[p * ldb + j];
            if (fabs(c[i * ldc + j] - want) > 1e-5 * (1 + sqrt((double)k)) && bad++ < 3)
                print_error("tn m=%d n=%d k=%d: c[%d][%d] = %.9g, want %.9g\n", m, n, k, i, j,
                            c[i * ldc + j], want);
        }
    free(a), free(b), free(c), free(c0);
    return bad;
}

/* A stride-1 convolution of a padded input (oh + kh - 1 rows of ow + kw - 1 pixels of k
 * channels): against the sum in double, and, on the tiles, bit for bit against im2col
 * followed by cnn_gemm_bias, the order it promises to keep. */
static int check_conv(int oh, int ow, int n, int kh, int kw, int k, int with_bias, cnn_rng *rng)
{
    int hp = oh + kh - 1, wp = ow + kw - 1, taps = kh * kw, guard = 37;
    size_t in_size = (size_t)hp * wp * k, out_size = (size_t)oh * ow * n;
    float *in = malloc(sizeof(float) * in_size);
    float *w = malloc(sizeof(float) * (size_t)taps * k * n);
    float *bias = malloc(sizeof(float) * (size_t)n);
    float *out = malloc(sizeof(float) * (out_size + guard));
    float *cols = malloc(sizeof(float) * (size_t)oh * ow * taps * k + 1);
    float *via_cols = malloc(sizeof(float) * out_size);
    for (size_t i = 0; i < in_size; i++)
        in[i] = cnn_rng_uniform(rng) - 0.5f;
    for (int i = 0; i < taps * k * n; i++)
        w[i] = cnn_rng_uniform(rng) - 0.5f;
    for (int j = 0; j < n; j++)
        bias[j] = cnn_rng_uniform(rng);
    for (size_t i = 0; i < out_size + guard; i++)
        out[i] = 1234.5f;
    const float *b = with_bias ? bias : NULL;
    cnn_conv_s1(oh, ow, n, kh, kw, k, in, w, b, out);
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++)
            for (int t = 0; t < taps; t++)
                memcpy(cols + ((size_t)(y * ow + x) * taps + t) * k,
                       in + ((size_t)(y + t / kw) * wp + x + t % kw) * k, sizeof(float) * k);
    cnn_gemm_bias(oh * ow, n, taps * k, cols, taps * k, w, n, b, via_cols, n);
    int bad = 0;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++)
            for (int j = 0; j < n; j++) {
                double want = with_bias ? bias[j] : 0.0;
                for (int t = 0; t < taps; t++)
                    for (int c = 0; c < k; c++)
                        want += (double)in[((size_t)(y + t / kw) * wp + x + t % kw) * k + c] *
                                w[((size_t)t * k + c) * n + j];
                size_t at = ((size_t)y * ow + x) * n + j;
                if (fabs(out[at] - want) > 1e-5 * (1 + sqrt((double)taps * k)) && bad++ < 3)
                    print_error("conv %dx%dx%d k%dx%d c%d: out[%d][%d][%d] = %.9g, want %.9g\n",
                                oh, ow, n, kh, kw, k, y, x, j, out[at], want);
                if (cnn_gemm_tiles(-1) > 0 && memcmp(&out[at], &via_cols[at], sizeof(float)) &&
                    bad++ < 3)
                    print_error("conv %dx%dx%d k%dx%d c%d: out[%d][%d][%d] = %.9g, im2col %.9g\n",
                                oh, ow, n, kh, kw, k, y, x, j, out[at], via_cols[at]);
            }
    for (int i = 0; i < guard; i++)
        if (out[out_size + i] != 1234.5f && bad++ < 3)
            print_error("conv %dx%dx%d: wrote past its output\n", oh, ow, n);
    free(in), free(w), free(bias), free(out), free(cols), free(via_cols);
    return bad;
}

static void convolutions_agree(void **state)
{
    (void)state;
    static const int ns[] = {16, 32, 48, 64, 80, 8, 3, 1, 17, 70};
    static const int sizes[][2] = {{1, 1}, {3, 3}, {5, 7}, {8, 8}, {13, 2}, {32, 32}};
    static const int kernels[][2] = {{1, 1}, {3, 3}, {2, 2}, {1, 5}, {5, 5}};
    cnn_rng rng;
    cnn_rng_seed(&rng, 9);
    int bad = 0, saved = cnn_gemm_tiles(-1);
    for (int w = 0; w <= 16; w += 8) {
        if (cnn_gemm_tiles(w) != w)
            continue;
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
            for (size_t ki = 0; ki < sizeof kernels / sizeof kernels[0]; ki++)
                for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
                    bad += check_conv(sizes[si][0], sizes[si][1], ns[ni], kernels[ki][0],
                                      kernels[ki][1], 1 + (int)(si + ni) % 3 * 7,
                                      (int)(si + ki + ni) % 2, &rng);
    }
    cnn_gemm_tiles(saved);
    assert_int_equal(bad, 0);
}

static void agrees_with_a_plain_loop(void **state)
{
    (void)state;
    /* Multiples of both vector widths, and remainders after every number of full vectors. */
    static const int ns[] = {8, 16, 24, 32, 48, 64, 80, 112, 128, 144, 288, 10, 3, 1, 7, 17, 33, 47, 70, 129};
    static const int ks[] = {1, 5, 64, 300, 700}; /* 700: more than one block of rows (tn) */
    cnn_rng rng;
    cnn_rng_seed(&rng, 8);
    int bad = 0, saved = cnn_gemm_tiles(-1);
    for (int w = 0; w <= 16; w += 8) { /* OpenBLAS, AVX2, AVX-512: as far as the CPU goes */
        if (cnn_gemm_tiles(w) != w)
            continue;
        for (int m = 1; m <= 30; m += m < 14 ? 1 : 5)
            for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
                for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
                    bad += check_shape(m, ns[ni], ks[ki], (m + (int)ki) % 2, &rng);
                    bad += check_tn(m, ns[ni], ks[ki], &rng);
                }
    }
    cnn_gemm_tiles(saved);
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(agrees_with_a_plain_loop),
        cmocka_unit_test(convolutions_agree),
    };
    return cmocka_run_group_tests_name("gemm", tests, NULL, NULL);
}
