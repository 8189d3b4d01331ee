/* The scanner and parser on every construct of docs/language.md: separators, comments,
 * options in any order, every layer and training setting, with the values they produce. */
#include <math.h>
#include <string.h>

#include "support.h"

static const char *const baseline_newlines =
    "input 28x28x1\n"
    "conv 32 3x3 relu\npool 2\nconv 64 3x3 relu\npool 2\nconv 64 3x3 relu\n"
    "flatten\ndense 64 relu\ndense 10 softmax\n";

/* Two networks are the same when every layer has the same kind, shapes and settings. */
static void assert_same_layers(const cnn_ir *a, const cnn_ir *b)
{
    assert_int_equal(a->n_layers, b->n_layers);
    for (int i = 0; i < a->n_layers; i++) {
        const cnn_layer *x = &a->layers[i], *y = &b->layers[i];
        assert_int_equal(x->type, y->type);
        assert_string_equal(x->name, y->name);
        assert_memory_equal(&x->out, &y->out, sizeof x->out);
        assert_int_equal(x->units, y->units);
        assert_int_equal(x->kh, y->kh);
        assert_int_equal(x->kw, y->kw);
        assert_int_equal(x->sh, y->sh);
        assert_int_equal(x->sw, y->sw);
        assert_int_equal(x->pad_same, y->pad_same);
        assert_int_equal(x->act, y->act);
        assert_int_equal(x->weights, y->weights);
    }
}

static void semicolons_and_newlines_are_the_same(void **state)
{
    (void)state;
    test_net a, b;
    assert_int_equal(test_net_from_string(&a, baseline_newlines), 0);
    assert_int_equal(test_net_from_string(&b, "input 28x28x1; conv 32 3x3 relu; pool 2; conv 64 "
                                              "3x3 relu; pool 2; conv 64 3x3 relu; flatten; "
                                              "dense 64 relu; dense 10 softmax"),
                     0);
    assert_same_layers(&a.ir, &b.ir);
    assert_int_equal(a.ir.n_layers, 8);
    test_net_free(&a);
    test_net_free(&b);
}

static void comments_blank_lines_and_crlf(void **state)
{
    (void)state;
    test_net a, b;
    assert_int_equal(test_net_from_string(&a, baseline_newlines), 0);
    assert_int_equal(
        test_net_from_string(&b, "# a comment line\r\n\r\n   input 28x28x1   # trailing\r\n"
                                 "conv 32 3x3 relu;;; pool 2 # two statements\r\n"
                                 "\tconv 64 3x3 relu ; pool 2\r\n\n\nconv 64 3x3 relu\r\n"
                                 "flatten # conv -> dense\r\ndense 64 relu\r\ndense 10 softmax"),
        0);
    assert_same_layers(&a.ir, &b.ir);
    test_net_free(&a);
    test_net_free(&b);
}

static void options_in_any_order(void **state)
{
    (void)state;
    test_net a, b, c;
    const char *tail = "\nflatten\ndense 10 softmax\n";
    char text[512];
    snprintf(text, sizeof text, "input 28x28x3\nconv 8 5x3 relu stride=2 pad=same l2=0.01%s", tail);
    assert_int_equal(test_net_from_string(&a, text), 0);
    snprintf(text, sizeof text, "input 28x28x3\nconv l2=0.01 8 pad=same 5x3 stride=2 relu%s", tail);
    assert_int_equal(test_net_from_string(&b, text), 0);
    snprintf(text, sizeof text, "input 28x28x3\nconv 8 pad=same 5x3 l2=0.01 relu stride=2x2%s", tail);
    assert_int_equal(test_net_from_string(&c, text), 0);
    assert_same_layers(&a.ir, &b.ir);
    assert_same_layers(&a.ir, &c.ir);
    assert_true(fabsf(b.ir.layers[0].l2 - 0.01f) < 1e-9f);
    assert_int_equal(a.ir.layers[0].kh, 5);
    assert_int_equal(a.ir.layers[0].kw, 3);
    test_net_free(&a);
    test_net_free(&b);
    test_net_free(&c);
}

static void every_layer_option(void **state)
{
    (void)state;
    test_net t;
    assert_int_equal(
        test_net_from_string(&t, "network everything\n"
                                 "input 20x20x2\n"
                                 "conv 4 3 leaky_relu alpha=0.2 init=he bias=no l1=0.5\n"
                                 "batchnorm momentum=0.9 eps=0.01\n"
                                 "pool 2 avg stride=1\n"
                                 "pool 3x2 max\n"
                                 "dropout 0.25\n"
                                 "flatten\n"
                                 "dense 16 tanh init=glorot_normal\n"
                                 "dense 8 sigmoid init=he_uniform l2=0.125\n"
                                 "dense 8 linear bias=yes\n"
                                 "dense 3 softmax\n"),
        0);
    const cnn_ir *ir = &t.ir;
    assert_string_equal(ir->name, "everything");
    const cnn_layer *L = ir->layers;
    assert_int_equal(L[0].type, CNN_LAYER_CONV);
    assert_int_equal(L[0].kh, 3);
    assert_int_equal(L[0].kw, 3);
    assert_int_equal(L[0].act, CNN_ACT_LEAKY_RELU);
    assert_true(fabsf(L[0].alpha - 0.2f) < 1e-7f);
    assert_int_equal(L[0].init, CNN_INIT_HE_NORMAL);
    assert_int_equal(L[0].use_bias, 0);
    assert_int_equal(L[0].n_params, 1);
    assert_true(L[0].l1 == 0.5f);
    assert_int_equal(L[1].type, CNN_LAYER_BATCHNORM);
    assert_true(fabsf(L[1].momentum - 0.9f) < 1e-7f && fabsf(L[1].eps - 0.01f) < 1e-9f);
    assert_int_equal(L[2].pool, CNN_POOL_AVG);
    assert_string_equal(L[2].name, "average_pooling2d_1");
    assert_int_equal(L[2].sh, 1);
    assert_int_equal(L[3].pool, CNN_POOL_MAX);
    assert_string_equal(L[3].name, "max_pooling2d_1");
    assert_int_equal(L[3].kh, 3);
    assert_int_equal(L[3].kw, 2);
    assert_int_equal(L[3].sh, 3);
    assert_int_equal(L[3].sw, 2);
    assert_true(fabsf(L[4].rate - 0.25f) < 1e-9f);
    assert_int_equal(L[6].act, CNN_ACT_TANH);
    assert_int_equal(L[6].init, CNN_INIT_GLOROT_NORMAL);
    assert_int_equal(L[7].act, CNN_ACT_SIGMOID);
    assert_int_equal(L[7].init, CNN_INIT_HE_UNIFORM);
    assert_true(L[7].params[0].l2 == 0.125f);
    assert_int_equal(L[8].act, CNN_ACT_LINEAR);
    assert_int_equal(L[8].use_bias, 1);
    assert_string_equal(L[9].name, "dense_4");
    test_net_free(&t);
}

static void defaults_follow_keras(void **state)
{
    (void)state;
    test_net t;
    assert_int_equal(test_net_from_string(&t, "input 8x8x1\nconv 2 3x3\nbatchnorm\nflatten\n"
                                              "dense 2 softmax\n"),
                     0);
    const cnn_layer *conv = &t.ir.layers[0], *bn = &t.ir.layers[1];
    assert_int_equal(conv->act, CNN_ACT_LINEAR);
    assert_int_equal(conv->init, CNN_INIT_GLOROT_UNIFORM);
    assert_int_equal(conv->use_bias, 1);
    assert_int_equal(conv->pad_same, 0);
    assert_int_equal(conv->sh, 1);
    assert_true(bn->momentum == 0.99f && bn->eps == 0.001f);
    const cnn_train_cfg *c = &t.ir.train;
    assert_int_equal(c->optimizer, CNN_OPTIM_ADAM);
    assert_true(c->lr == 0.001 && c->beta1 == 0.9 && c->beta2 == 0.999 && c->eps == 1e-7);
    assert_int_equal(c->batch, 32);
    assert_int_equal(c->schedule, CNN_SCHED_CONSTANT);
    /* The network name defaults to the file's stem ("test.net" here). */
    assert_string_equal(t.ir.name, "test");
    test_net_free(&t);
}

static void train_block_settings(void **state)
{
    (void)state;
    test_net t;
    assert_int_equal(test_net_from_string(&t, "input 4\ndense 2 softmax\n"
                                              "train {\n"
                                              "  loss crossentropy   # the only loss\n"
                                              "  optimizer sgd lr=0.05 momentum=0.9 nesterov\n"
                                              "  batch 64; epochs 15\n"
                                              "  validation 0.2\n"
                                              "  schedule step every=5 factor=0.5\n"
                                              "  seed 1234\n"
                                              "}\n"),
                     0);
    const cnn_train_cfg *c = &t.ir.train;
    assert_int_equal(c->optimizer, CNN_OPTIM_SGD);
    assert_true(c->lr == 0.05 && c->momentum == 0.9);
    assert_int_equal(c->nesterov, 1);
    assert_int_equal(c->batch, 64);
    assert_int_equal(c->epochs, 15);
    assert_true(c->validation == 0.2);
    assert_int_equal(c->schedule, CNN_SCHED_STEP);
    assert_int_equal(c->sched_every, 5);
    assert_true(c->sched_factor == 0.5);
    assert_int_equal(c->seed, 1234);
    test_net_free(&t);
}

static void train_block_on_one_line_and_other_optimizers(void **state)
{
    (void)state;
    test_net t;
    assert_int_equal(test_net_from_string(&t, "input 4\ndense 2 softmax\ntrain { optimizer rmsprop "
                                              "rho=0.8 eps=1e-6; schedule cosine alpha=0.1 }"),
                     0);
    assert_int_equal(t.ir.train.optimizer, CNN_OPTIM_RMSPROP);
    assert_true(t.ir.train.lr == 0.001 && t.ir.train.rho == 0.8 && t.ir.train.eps == 1e-6);
    assert_int_equal(t.ir.train.schedule, CNN_SCHED_COSINE);
    assert_true(t.ir.train.sched_alpha == 0.1);
    test_net_free(&t);

    assert_int_equal(test_net_from_string(&t, "input 4\ndense 2 softmax\ntrain\n{\n"
                                              "optimizer adamw weight_decay=0.01 beta1=0.8 "
                                              "beta2=0.99\nschedule exponential rate=0.9\n"
                                              "optimizer_unused_line_guard 1\n}\n"),
                     -1);
    test_net_free(&t);

    assert_int_equal(test_net_from_string(&t, "input 4\ndense 2 softmax\ntrain\n{\n"
                                              "optimizer adamw weight_decay=0.01 beta1=0.8 "
                                              "beta2=0.99\nschedule exponential rate=0.9 every=2\n}\n"),
                     0);
    assert_int_equal(t.ir.train.optimizer, CNN_OPTIM_ADAMW);
    assert_true(t.ir.train.weight_decay == 0.01 && t.ir.train.beta1 == 0.8 &&
                t.ir.train.beta2 == 0.99);
    assert_int_equal(t.ir.train.schedule, CNN_SCHED_EXPONENTIAL);
    assert_true(t.ir.train.sched_factor == 0.9);
    assert_int_equal(t.ir.train.sched_every, 2);
    test_net_free(&t);
}

static void input_forms(void **state)
{
    (void)state;
    test_net t;
    assert_int_equal(test_net_from_string(&t, "input 28x20\nflatten\ndense 2 softmax"), 0);
    assert_int_equal(t.ir.input.rank, 3);
    assert_int_equal(t.ir.input.h, 28);
    assert_int_equal(t.ir.input.w, 20);
    assert_int_equal(t.ir.input.c, 1);
    test_net_free(&t);
    assert_int_equal(test_net_from_string(&t, "input 784\ndense 2 softmax"), 0);
    assert_int_equal(t.ir.input.rank, 1);
    assert_int_equal(t.ir.input.c, 784);
    test_net_free(&t);
}

static void numbers_in_every_spelling(void **state)
{
    (void)state;
    test_net t;
    assert_int_equal(test_net_from_string(&t, "input 4\ndense 2 softmax l2=1e-3 l1=.5\n"
                                              "train { optimizer adam lr=+2E-4 }"),
                     0);
    assert_true(t.ir.layers[0].l2 == 1e-3f);
    assert_true(t.ir.layers[0].l1 == 0.5f);
    assert_true(t.ir.train.lr == 2e-4);
    test_net_free(&t);
}

static void network_name_from_file_stem(void **state)
{
    (void)state;
    test_net t;
    assert_int_equal(test_net_from_file(&t, SOURCE_DIR "/tests/nets/dense_only.net"), 0);
    assert_string_equal(t.ir.name, "dense_only");
    test_net_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(semicolons_and_newlines_are_the_same),
        cmocka_unit_test(comments_blank_lines_and_crlf),
        cmocka_unit_test(options_in_any_order),
        cmocka_unit_test(every_layer_option),
        cmocka_unit_test(defaults_follow_keras),
        cmocka_unit_test(train_block_settings),
        cmocka_unit_test(train_block_on_one_line_and_other_optimizers),
        cmocka_unit_test(input_forms),
        cmocka_unit_test(numbers_in_every_spelling),
        cmocka_unit_test(network_name_from_file_stem),
    };
    return cmocka_run_group_tests_name("parser", tests, NULL, NULL);
}
