/* cnn_gemm_bias and cnn_gemm_tn_acc against a plain triple loop in double, through each of
 * their paths the CPU has (AVX-512 tiles, AVX2 tiles, OpenBLAS): every remainder of rows and
 * of vector groups and of columns (masked tiles), padded strides, with and without the bias,
 * and nothing written outside c's n columns. */
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
        for (int m = 1; m <= 14; m++)
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
    };
    return cmocka_run_group_tests_name("gemm", tests, NULL, NULL);
}
