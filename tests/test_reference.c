/* The reference's forward pass and loss on tiny networks computed by hand. Each network ends
 * in `dense 2 softmax` whose second logit is 0, so log(p0/p1) reads back the first logit: a
 * weighted sum, with weights chosen here, of the layer under test. */
#include <math.h>
#include <string.h>

#include "reference.h"
#include "support.h"

typedef struct fixture {
    test_net net;
    cnn_model *m;
} fixture;

static void load(fixture *f, const char *text, int batch)
{
    assert_int_equal(test_net_from_string(&f->net, text), 0);
    f->m = cnn_reference_new(&f->net.ir, batch);
    assert_non_null(f->m);
    for (int i = 0; i < f->m->n_tensors; i++)
        memset(f->m->tensors[i].value, 0, f->m->tensors[i].size * sizeof(float));
}

static void unload(fixture *f)
{
    cnn_model_destroy(f->m);
    test_net_free(&f->net);
}

static cnn_tensor *tensor(fixture *f, const char *name)
{
    for (int i = 0; i < f->m->n_tensors; i++)
        if (strcmp(f->m->tensors[i].name, name) == 0)
            return &f->m->tensors[i];
    fail_msg("no tensor %s", name);
    return NULL;
}

/* Sets the read-out: first logit = sum_k a[k] * feature[k], second logit = 0. */
static void set_readout(fixture *f, const char *kernel, const double *a, int n)
{
    cnn_tensor *K = tensor(f, kernel);
    assert_int_equal(K->dims[0], n);
    for (int k = 0; k < n; k++)
        K->value[2 * k] = (float)a[k];
}

static double first_logit(const fixture *f, int image)
{
    const float *p = f->m->output + 2 * image;
    return log((double)p[0] / p[1]);
}

static void dense_softmax_and_loss(void **state)
{
    (void)state;
    fixture f;
    load(&f, "input 2\ndense 2 softmax\n", 1);
    float *K = tensor(&f, "dense_1/kernel")->value, *b = tensor(&f, "dense_1/bias")->value;
    K[0] = 1, K[1] = 2, K[2] = 3, K[3] = 4; /* [in][out] */
    b[0] = 0.5f, b[1] = -0.5f;
    float x[] = {1, 1};
    f.m->ops->forward(f.m, x, 1, 0, NULL);
    /* z = (1 + 3 + 0.5, 2 + 4 - 0.5) = (4.5, 5.5): p1 = 1 / (1 + e^-1). */
    assert_true(close_enough(f.m->output[1], 1 / (1 + exp(-1.0)), 1e-6, 0));
    assert_true(close_enough(f.m->output[0], 1 / (1 + exp(1.0)), 1e-6, 0));
    int label = 1;
    assert_true(close_enough(f.m->ops->loss(f.m, &label, NULL, 1), log(1 + exp(-1.0)), 1e-12, 0));
    label = 0;
    assert_true(close_enough(f.m->ops->loss(f.m, &label, NULL, 1), log(1 + exp(1.0)), 1e-12, 0));
    unload(&f);
}

static void zero_weights_give_log_k(void **state)
{
    (void)state;
    fixture f;
    load(&f, "input 3x3x2\nconv 2 3x3 relu\nflatten\ndense 7 softmax\n", 3);
    float x[3 * 18];
    for (int i = 0; i < 3 * 18; i++)
        x[i] = (float)i / 10;
    int labels[] = {0, 3, 6};
    f.m->ops->forward(f.m, x, 3, 0, NULL);
    assert_true(close_enough(f.m->ops->loss(f.m, labels, NULL, 3), log(7.0), 1e-12, 0));
    unload(&f);
}

static const double a4[] = {0.01, 0.02, 0.03, 0.04};

static void conv_valid_by_hand(void **state)
{
    (void)state;
    fixture f;
    load(&f, "input 3x3x1\nconv 1 2x2\nflatten\ndense 2 softmax\n", 1);
    float *K = tensor(&f, "conv2d_1/kernel")->value;
    K[0] = 1, K[3] = -1; /* [[1, 0], [0, -1]] */
    tensor(&f, "conv2d_1/bias")->value[0] = 0.5f;
    set_readout(&f, "dense_1/kernel", a4, 4);
    float x[] = {1, 2, 3, 4, 5, 6, 7, 8, 10};
    f.m->ops->forward(f.m, x, 1, 0, NULL);
    /* x[i][j] - x[i+1][j+1] + 0.5 = (-3.5, -3.5, -3.5, -4.5) */
    assert_true(close_enough(first_logit(&f, 0), -0.39, 1e-5, 1e-6));
    unload(&f);
}

static void conv_same_stride_by_hand(void **state)
{
    (void)state;
    fixture f;
    load(&f, "input 3x3x1\nconv 1 2x2 pad=same stride=2\nflatten\ndense 2 softmax\n", 1);
    float *K = tensor(&f, "conv2d_1/kernel")->value;
    K[0] = 1, K[3] = -1;
    tensor(&f, "conv2d_1/bias")->value[0] = 0.5f;
    set_readout(&f, "dense_1/kernel", a4, 4);
    float x[] = {1, 2, 3, 4, 5, 6, 7, 8, 10};
    f.m->ops->forward(f.m, x, 1, 0, NULL);
    /* One row/column of zeros after the input: outputs 1-5, 3-0, 7-0, 10-0, each + 0.5. */
    double want = 0.01 * -3.5 + 0.02 * 3.5 + 0.03 * 7.5 + 0.04 * 10.5;
    assert_true(close_enough(first_logit(&f, 0), want, 1e-5, 1e-6));
    unload(&f);
}

static void pooling_by_hand(void **state)
{
    (void)state;
    const char *nets[] = {"input 4x4x1\npool 2\nflatten\ndense 2 softmax\n",
                          "input 4x4x1\npool 2 avg\nflatten\ndense 2 softmax\n",
                          "input 4x4x1\npool 3 stride=1\nflatten\ndense 2 softmax\n"};
    /* x = 1..16 row by row: max (6, 8, 14, 16), mean (3.5, 5.5, 11.5, 13.5), 3x3 max
     * stride 1 (11, 12, 15, 16). */
    const double want[] = {0.06 + 0.16 + 0.42 + 0.64, 0.035 + 0.11 + 0.345 + 0.54,
                           0.11 + 0.24 + 0.45 + 0.64};
    float x[16];
    for (int i = 0; i < 16; i++)
        x[i] = (float)(i + 1);
    for (int n = 0; n < 3; n++) {
        fixture f;
        load(&f, nets[n], 1);
        set_readout(&f, "dense_1/kernel", a4, 4);
        f.m->ops->forward(f.m, x, 1, 0, NULL);
        assert_true(close_enough(first_logit(&f, 0), want[n], 1e-5, 1e-6));
        unload(&f);
    }
}

static void activations_by_hand(void **state)
{
    (void)state;
    const char *acts[] = {"linear", "relu", "leaky_relu", "sigmoid", "tanh"};
    const double in[] = {-2, -0.5, 0.5, 2};
    for (int n = 0; n < 5; n++) {
        char text[128];
        snprintf(text, sizeof text, "input 4\ndense 4 %s\ndense 2 softmax\n", acts[n]);
        fixture f;
        load(&f, text, 1);
        float *K = tensor(&f, "dense_1/kernel")->value;
        for (int i = 0; i < 4; i++)
            K[i * 4 + i] = 1; /* identity */
        set_readout(&f, "dense_2/kernel", a4, 4);
        float x[4] = {-2, -0.5f, 0.5f, 2};
        f.m->ops->forward(f.m, x, 1, 0, NULL);
        double want = 0;
        for (int k = 0; k < 4; k++) {
            double v = in[k];
            double y = n == 0 ? v : n == 1 ? (v > 0 ? v : 0) : n == 2 ? (v > 0 ? v : 0.3 * v)
                     : n == 3 ? 1 / (1 + exp(-v)) : tanh(v);
            want += a4[k] * y;
        }
        assert_true(close_enough(first_logit(&f, 0), want, 1e-5, 1e-6));
        unload(&f);
    }
}

static void dropout_follows_the_documented_stream(void **state)
{
    (void)state;
    fixture f;
    load(&f, "input 1000\ndropout 0.3\ndense 2 softmax\n", 1);
    cnn_tensor *K = tensor(&f, "dense_1/kernel");
    for (int k = 0; k < 1000; k++)
        K->value[2 * k] = 0.001f;
    float x[1000];
    for (int i = 0; i < 1000; i++)
        x[i] = 1;
    cnn_rng rng, mirror;
    cnn_rng_seed(&rng, 5);
    cnn_rng_seed(&mirror, 5);
    f.m->ops->forward(f.m, x, 1, 1, &rng);
    /* One uniform draw per element, kept when >= rate, kept values scaled by 1/(1-rate). */
    int kept = 0;
    for (int i = 0; i < 1000; i++)
        kept += cnn_rng_uniform(&mirror) >= 0.3f;
    assert_true(kept > 600 && kept < 800);
    assert_true(close_enough(first_logit(&f, 0), 0.001 * kept / (1 - 0.3f), 1e-5, 1e-6));
    /* Both streams advanced by exactly 1000 draws. */
    assert_true(cnn_rng_next(&rng) == cnn_rng_next(&mirror));
    /* Inference mode: identity. */
    f.m->ops->forward(f.m, x, 1, 0, NULL);
    assert_true(close_enough(first_logit(&f, 0), 1.0, 1e-5, 1e-6));
    unload(&f);
}

static void batchnorm_inference_uses_moving_statistics(void **state)
{
    (void)state;
    fixture f;
    load(&f, "input 2\nbatchnorm\ndense 2 softmax\n", 1);
    float *g = tensor(&f, "batch_normalization_1/gamma")->value;
    float *b = tensor(&f, "batch_normalization_1/beta")->value;
    float *mm = tensor(&f, "batch_normalization_1/moving_mean")->value;
    float *mv = tensor(&f, "batch_normalization_1/moving_variance")->value;
    g[0] = 2, g[1] = 3, b[0] = 0.5f, b[1] = -1, mm[0] = 1, mm[1] = 2, mv[0] = 4, mv[1] = 9;
    const double ones[] = {1, 1};
    set_readout(&f, "dense_1/kernel", ones, 2);
    float x[] = {3, 5};
    f.m->ops->forward(f.m, x, 1, 0, NULL);
    double want = 2 * (3 - 1) / sqrt(4.001) + 0.5 + 3 * (5 - 2) / sqrt(9.001) - 1;
    assert_true(close_enough(first_logit(&f, 0), want, 1e-5, 1e-6));
    unload(&f);
}

static void batchnorm_training_normalizes_and_updates(void **state)
{
    (void)state;
    fixture f;
    load(&f, "input 2\nbatchnorm momentum=0.9\ndense 2 softmax\n", 2);
    float *g = tensor(&f, "batch_normalization_1/gamma")->value;
    float *mm = tensor(&f, "batch_normalization_1/moving_mean")->value;
    float *mv = tensor(&f, "batch_normalization_1/moving_variance")->value;
    g[0] = g[1] = 1;
    mv[0] = mv[1] = 1;
    const double a[] = {1, 2};
    set_readout(&f, "dense_1/kernel", a, 2);
    float x[] = {1, 2, 3, 6}; /* two images: means (2, 4), biased variances (1, 4) */
    cnn_rng rng;
    cnn_rng_seed(&rng, 1);
    f.m->ops->forward(f.m, x, 2, 1, &rng);
    double want0 = -1 / sqrt(1.001) + 2 * (-2 / sqrt(4.001));
    assert_true(close_enough(first_logit(&f, 0), want0, 1e-5, 1e-6));
    assert_true(close_enough(first_logit(&f, 1), -want0, 1e-5, 1e-6));
    /* moving = 0.9 * moving + 0.1 * batch */
    assert_true(close_enough(mm[0], 0.2, 1e-6, 0) && close_enough(mm[1], 0.4, 1e-6, 0));
    assert_true(close_enough(mv[0], 1.0, 1e-6, 0) && close_enough(mv[1], 1.3, 1e-6, 0));
    unload(&f);
}

/* Networks without a loss (loss none) give their last layer's values: read them directly. */
static void concat_by_hand(void **state)
{
    (void)state;
    fixture f;
    load(&f, "input 2x1x2\na = activation relu\nt = activation tanh from input\n"
             "concat t input from a\ntrain { loss none }\n", 1);
    assert_int_equal(f.m->n_classes, 2 * 1 * 6);
    float x[] = {-1, 2, 0.5f, -3}; /* two pixels of two channels */
    f.m->ops->forward(f.m, x, 1, 0, NULL);
    for (int p = 0; p < 2; p++)
        for (int c = 0; c < 2; c++) {
            double v = x[2 * p + c];
            const float *o = f.m->output + 6 * p;
            assert_true(close_enough(o[c], v > 0 ? v : 0, 1e-7, 0));
            assert_true(close_enough(o[2 + c], tanh(v), 1e-7, 0));
            assert_true(close_enough(o[4 + c], v, 1e-7, 0));
        }
    unload(&f);
}

static void add_by_hand(void **state)
{
    (void)state;
    fixture f;
    /* The previous statement's output (s), then a, the input and a again. */
    load(&f, "input 3\na = activation relu\ns = activation sigmoid from input\n"
             "add a input a\ntrain { loss none }\n", 1);
    float x[] = {-2, 0.25f, 3};
    f.m->ops->forward(f.m, x, 1, 0, NULL);
    for (int i = 0; i < 3; i++) {
        double v = x[i], want = 1 / (1 + exp(-v)) + 2 * (v > 0 ? v : 0) + v;
        assert_true(close_enough(f.m->output[i], want, 1e-6, 0));
    }
    unload(&f);
}

static void gap_by_hand(void **state)
{
    (void)state;
    fixture f;
    load(&f, "input 2x3x2\ngap\ntrain { loss none }\n", 2);
    float x[2 * 12];
    for (int i = 0; i < 24; i++)
        x[i] = (float)(i * i % 7) - 2.5f;
    f.m->ops->forward(f.m, x, 2, 0, NULL);
    for (int b = 0; b < 2; b++)
        for (int c = 0; c < 2; c++) {
            double sum = 0;
            for (int p = 0; p < 6; p++)
                sum += x[12 * b + 2 * p + c];
            assert_true(close_enough(f.m->output[2 * b + c], sum / 6, 1e-6, 0));
        }
    unload(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dense_softmax_and_loss),
        cmocka_unit_test(zero_weights_give_log_k),
        cmocka_unit_test(conv_valid_by_hand),
        cmocka_unit_test(conv_same_stride_by_hand),
        cmocka_unit_test(pooling_by_hand),
        cmocka_unit_test(activations_by_hand),
        cmocka_unit_test(dropout_follows_the_documented_stream),
        cmocka_unit_test(batchnorm_inference_uses_moving_statistics),
        cmocka_unit_test(batchnorm_training_normalizes_and_updates),
        cmocka_unit_test(concat_by_hand),
        cmocka_unit_test(add_by_hand),
        cmocka_unit_test(gap_by_hand),
    };
    return cmocka_run_group_tests_name("reference forward", tests, NULL, NULL);
}
