/* Shape inference and parameter counts, against hand-computed values and the study's table. */
#include <string.h>

#include "support.h"

typedef struct expect_layer {
    const char *name;
    int h, w, c; /* h = w = 0 for a flat output of c features */
    long params;
} expect_layer;

static void assert_layers(const cnn_ir *ir, const expect_layer *want, int n)
{
    assert_int_equal(ir->n_layers, n);
    for (int i = 0; i < n; i++) {
        const cnn_layer *L = &ir->layers[i];
        assert_string_equal(L->name, want[i].name);
        if (want[i].h == 0) {
            assert_int_equal(L->out.rank, 1);
        } else {
            assert_int_equal(L->out.rank, 3);
            assert_int_equal(L->out.h, want[i].h);
            assert_int_equal(L->out.w, want[i].w);
        }
        assert_int_equal(L->out.c, want[i].c);
        assert_int_equal(L->weights, want[i].params);
    }
}

static void load_model(test_net *t, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/models/%s.net", SOURCE_DIR, name);
    assert_int_equal(test_net_from_file(t, path), 0);
}

/* The study's model.summary() of the baseline, layer by layer. */
static const expect_layer baseline_table[] = {
    {"conv2d_1", 26, 26, 32, 320},    {"max_pooling2d_1", 13, 13, 32, 0},
    {"conv2d_2", 11, 11, 64, 18496},  {"max_pooling2d_2", 5, 5, 64, 0},
    {"conv2d_3", 3, 3, 64, 36928},    {"flatten_1", 0, 0, 576, 0},
    {"dense_1", 0, 0, 64, 36928},     {"dense_2", 0, 0, 10, 650},
};

static void baseline_matches_the_study(void **state)
{
    (void)state;
    test_net t;
    load_model(&t, "baseline");
    assert_layers(&t.ir, baseline_table, 8);
    assert_int_equal(t.ir.total_params, 93322);
    assert_int_equal(t.ir.trainable_params, 93322);
    assert_int_equal(t.ir.n_classes, 10);
    /* 2 FLOPs per multiply-add: 389,376 + 4,460,544 + 663,552 + 73,728 + 1,280. */
    assert_true(t.ir.forward_flops == 5588480.0);
    /* Three times the forward, less the first layer's input gradient. */
    assert_true(t.ir.train_flops == 3 * 5588480.0 - 389376.0);
    test_net_free(&t);
}

static void variants_keep_93322_parameters(void **state)
{
    (void)state;
    const char *names[] = {"dropout", "l1", "l2"};
    for (int i = 0; i < 3; i++) {
        test_net t;
        load_model(&t, names[i]);
        assert_int_equal(t.ir.total_params, 93322);
        assert_int_equal(t.ir.trainable_params, 93322);
        test_net_free(&t);
    }
    test_net t;
    load_model(&t, "dropout");
    assert_int_equal(t.ir.layers[3].type, CNN_LAYER_DROPOUT); /* after the 2nd conv */
    assert_int_equal(t.ir.layers[4].type, CNN_LAYER_POOL);
    test_net_free(&t);
    load_model(&t, "l2");
    assert_true(t.ir.layers[6].l2 == 0.001f && t.ir.layers[7].l2 == 0.001f);
    assert_true(t.ir.layers[0].l2 == 0.0f);
    test_net_free(&t);
}

static void batchnorm_counts_as_keras(void **state)
{
    (void)state;
    test_net t;
    load_model(&t, "batchnorm");
    /* 4 parameters per channel on 32 channels, 2 of them (moving mean, variance) frozen. */
    assert_int_equal(t.ir.total_params, 93322 + 4 * 32);
    assert_int_equal(t.ir.trainable_params, 93322 + 2 * 32);
    assert_int_equal(t.ir.total_params - t.ir.trainable_params, 64);
    assert_string_equal(t.ir.layers[1].name, "batch_normalization_1");
    assert_int_equal(t.ir.layers[1].weights, 128);
    test_net_free(&t);
}

static void same_padding_and_strides(void **state)
{
    (void)state;
    test_net t;
    assert_int_equal(test_net_from_string(&t, "input 28x28x1\n"
                                              "conv 8 3x3 relu pad=same stride=2\n" /* ceil(28/2) */
                                              "conv 4 4x4 pad=same\n"  /* even kernel, same size */
                                              "conv 4 3x3 stride=2\n"  /* (14-3)/2+1 = 6 */
                                              "pool 3 stride=1\n"      /* 6-3+1 = 4 */
                                              "pool 2 avg\n"           /* 2 */
                                              "flatten\ndense 10 softmax\n"),
                     0);
    static const expect_layer want[] = {
        {"conv2d_1", 14, 14, 8, 3 * 3 * 1 * 8 + 8},
        {"conv2d_2", 14, 14, 4, 4 * 4 * 8 * 4 + 4},
        {"conv2d_3", 6, 6, 4, 3 * 3 * 4 * 4 + 4},
        {"max_pooling2d_1", 4, 4, 4, 0},
        {"average_pooling2d_1", 2, 2, 4, 0},
        {"flatten_1", 0, 0, 16, 0},
        {"dense_1", 0, 0, 10, 16 * 10 + 10},
    };
    assert_layers(&t.ir, want, 7);
    /* TensorFlow pads the odd remainder after: 4x4 over 14 needs 3 rows, 1 before, 2 after. */
    assert_int_equal(t.ir.layers[1].pad_top, 1);
    assert_int_equal(t.ir.layers[1].pad_left, 1);
    /* 3x3 stride 2 over 28: out 14 needs (14-1)*2+3-28 = 1 row, 0 before. */
    assert_int_equal(t.ir.layers[0].pad_top, 0);
    test_net_free(&t);
}

static void non_square_and_multi_channel(void **state)
{
    (void)state;
    test_net t;
    assert_int_equal(test_net_from_string(&t, "input 32x24x3\n"
                                              "conv 16 5x3 relu\n"       /* 28x22 */
                                              "pool 2x3\n"               /* 14x7 */
                                              "conv 5 3x1 stride=2x1\n"  /* 6x7 */
                                              "flatten\n"
                                              "dense 7 relu bias=no\n"
                                              "batchnorm\n"
                                              "dense 3 softmax\n"),
                     0);
    static const expect_layer want[] = {
        {"conv2d_1", 28, 22, 16, 5 * 3 * 3 * 16 + 16},
        {"max_pooling2d_1", 14, 7, 16, 0},
        {"conv2d_2", 6, 7, 5, 3 * 1 * 16 * 5 + 5},
        {"flatten_1", 0, 0, 6 * 7 * 5, 0},
        {"dense_1", 0, 0, 7, 210 * 7},
        {"batch_normalization_1", 0, 0, 7, 4 * 7},
        {"dense_2", 0, 0, 3, 7 * 3 + 3},
    };
    assert_layers(&t.ir, want, 7);
    test_net_free(&t);
}

static void flat_input_without_conv(void **state)
{
    (void)state;
    test_net t;
    assert_int_equal(test_net_from_string(&t, "input 784\ndense 128 relu\ndropout 0.2\n"
                                              "dense 10 softmax\n"),
                     0);
    static const expect_layer want[] = {
        {"dense_1", 0, 0, 128, 784 * 128 + 128},
        {"dropout_1", 0, 0, 128, 0},
        {"dense_2", 0, 0, 10, 128 * 10 + 10},
    };
    assert_layers(&t.ir, want, 3);
    assert_int_equal(t.ir.total_params, 101770); /* Keras' classic MNIST MLP */
    test_net_free(&t);
}

static void tensor_layouts_are_keras(void **state)
{
    (void)state;
    test_net t;
    load_model(&t, "baseline");
    const cnn_param *k = &t.ir.layers[2].params[0];
    assert_string_equal(k->suffix, "kernel");
    int conv_dims[] = {3, 3, 32, 64}; /* kh x kw x in x out */
    assert_memory_equal(k->dims, conv_dims, sizeof conv_dims);
    assert_int_equal(k->fan_in, 3 * 3 * 32);
    assert_int_equal(k->fan_out, 3 * 3 * 64);
    const cnn_param *d = &t.ir.layers[6].params[0];
    int dense_dims[] = {576, 64}; /* in x out */
    assert_int_equal(d->rank, 2);
    assert_memory_equal(d->dims, dense_dims, sizeof dense_dims);
    assert_string_equal(t.ir.layers[6].params[1].suffix, "bias");
    test_net_free(&t);
}

static void summary_prints_the_totals(void **state)
{
    (void)state;
    char *argv[] = {CNNC_PATH, "--summary", SOURCE_DIR "/models/batchnorm.net", NULL};
    run_result r = run_program(argv);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "Total params: 93,450\n"));
    assert_non_null(strstr(r.out, "Trainable params: 93,386\n"));
    assert_non_null(strstr(r.out, "Non-trainable params: 64\n"));
    assert_non_null(strstr(r.out, "(None, 26, 26, 32)"));
    assert_non_null(strstr(r.out, "batch_normalization_1 (BatchNormalization)"));
    run_result_free(&r);
}

/* MLPerf Tiny's reference Keras models (mlcommons/tiny, benchmark/training/): the totals
 * their model.summary() prints, as the graph issue quotes them. */
static void tiny_models_match_keras(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        long total, frozen;
    } want[] = {
        {"models/tiny/resnet8.net", 78666, 480},
        {"models/tiny/ds_cnn.net", 24908, 1152},
        {"models/tiny/mobilenet_v1.net", 221794, 5472},
        {"models/tiny/autoencoder.net", 269992, 2064},
        /* ResNet-8's blocks on Fashion-MNIST's one channel: 16 * 9 * 2 fewer */
        {"models/graph/resnet_fashion.net", 78666 - 288, 480},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        test_net t;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", SOURCE_DIR, want[i].file);
        assert_int_equal(test_net_from_file(&t, path), 0);
        if (t.ir.total_params != want[i].total ||
            t.ir.total_params - t.ir.trainable_params != want[i].frozen)
            fail_msg("%s: %ld parameters (%ld non-trainable), Keras' %ld (%ld)", want[i].file,
                     t.ir.total_params, t.ir.total_params - t.ir.trainable_params,
                     want[i].total, want[i].frozen);
        test_net_free(&t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(baseline_matches_the_study),
        cmocka_unit_test(variants_keep_93322_parameters),
        cmocka_unit_test(batchnorm_counts_as_keras),
        cmocka_unit_test(same_padding_and_strides),
        cmocka_unit_test(non_square_and_multi_channel),
        cmocka_unit_test(flat_input_without_conv),
        cmocka_unit_test(tensor_layouts_are_keras),
        cmocka_unit_test(summary_prints_the_totals),
        cmocka_unit_test(tiny_models_match_keras),
    };
    return cmocka_run_group_tests_name("shapes", tests, NULL, NULL);
}
