/* libcnnrt against hand-computed values: every optimizer's update, every schedule, the l1/l2
 * penalty and its gradient, the confusion matrix and the k-fold split on hand-made data, and
 * the determinism of two seeded training runs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"
#include "support.h"

/* A one-tensor model with w = (1, -2) and a fixed gradient (0.5, -0.25): enough to drive the
 * optimizers, which only read the tensor table. */
typedef struct fake {
    cnn_model m;
    cnn_tensor t;
    float w[2], g[2], s0[2], s1[2];
} fake;

static void fake_init(fake *f)
{
    memset(f, 0, sizeof *f);
    f->w[0] = 1, f->w[1] = -2;
    f->g[0] = 0.5f, f->g[1] = -0.25f;
    f->t = (cnn_tensor){.name = "w", .rank = 1, .dims = {2}, .size = 2, .value = f->w,
                        .grad = f->g, .slot = {f->s0, f->s1}};
    f->m.n_tensors = 1;
    f->m.tensors = &f->t;
}

/* Runs `steps` updates with the same gradient and checks w against the hand values. */
static void check_optimizer(cnn_optim_kind kind, double lr, double momentum, int nesterov,
                            int steps, double want0, double want1)
{
    fake f;
    fake_init(&f);
    cnn_train_cfg cfg;
    cnn_train_cfg_defaults(&cfg);
    cnn_optim_defaults(&cfg, kind);
    cfg.momentum = momentum;
    cfg.nesterov = nesterov;
    cnn_optimizer *o = cnn_optimizer_new(&f.m, &cfg);
    assert_non_null(o);
    for (int s = 0; s < steps; s++)
        cnn_optimizer_step(o, &f.m, lr);
    assert_int_equal(cnn_optimizer_steps(o), steps);
    if (!close_enough(f.w[0], want0, 1e-6, 1e-7) || !close_enough(f.w[1], want1, 1e-6, 1e-7))
        fail_msg("%s: w = (%.9f, %.9f), want (%.9f, %.9f)", cnn_optim_name(kind), f.w[0], f.w[1],
                 want0, want1);
    cnn_optimizer_free(o);
}

static void sgd_steps(void **state)
{
    (void)state;
    /* w - lr g */
    check_optimizer(CNN_OPTIM_SGD, 0.1, 0, 0, 1, 0.95, -1.975);
    /* v = 0.9 v - 0.1 g; w += v: v1 = -0.05, v2 = -0.095, w = 1 - 0.05 - 0.095 */
    check_optimizer(CNN_OPTIM_SGD, 0.1, 0.9, 0, 2, 0.855, -2 + 0.025 + 0.0475);
    /* Nesterov: w += 0.9 v - 0.1 g after v's update: 1 - 0.095 - 0.1355 */
    check_optimizer(CNN_OPTIM_SGD, 0.1, 0.9, 1, 2, 0.7695, -2 + 0.0475 + 0.06775);
}

static void rmsprop_steps(void **state)
{
    (void)state;
    /* a = 0.1 g^2; w -= 0.01 g / (sqrt(a) + 1e-7) */
    check_optimizer(CNN_OPTIM_RMSPROP, 0.01, 0, 0, 1, 0.968377243398, -1.968377263398);
    /* with momentum 0.5, two steps: mom = 0.5 mom + increment; w -= mom */
    check_optimizer(CNN_OPTIM_RMSPROP, 0.01, 0.5, 0, 2, 0.929624302237, -1.929624342763);
}

static void adam_steps(void **state)
{
    (void)state;
    /* m = 0.1 g, v = 0.001 g^2, alpha = lr sqrt(1 - 0.999) / (1 - 0.9); w -= alpha m /
     * (sqrt(v) + 1e-7): about lr, less the epsilon's share */
    check_optimizer(CNN_OPTIM_ADAM, 0.001, 0, 0, 1, 0.999000006325, -1.999000012649);
    check_optimizer(CNN_OPTIM_ADAM, 0.001, 0, 0, 2, 0.998000010798, -1.998000021595);
    /* AdamW first decays w by lr * 0.004 * w, then takes Adam's step */
    check_optimizer(CNN_OPTIM_ADAMW, 0.001, 0, 0, 1, 0.998996006325, -1.998992012649);
}

static void schedules(void **state)
{
    (void)state;
    cnn_train_cfg c;
    cnn_train_cfg_defaults(&c);
    c.lr = 0.001;
    c.epochs = 10;
    assert_true(cnn_schedule_lr(&c, 7) == 0.001); /* constant */
    assert_int_equal(cnn_schedule_parse(&c, "step"), 0);
    assert_int_equal(c.sched_every, 5);
    assert_true(c.sched_factor == 0.5);
    double step[] = {0.001, 0.001, 0.001, 0.001, 0.001, 0.0005, 0.0005, 0.0005, 0.0005, 0.0005};
    for (int e = 0; e < 10; e++)
        assert_true(close_enough(cnn_schedule_lr(&c, e), step[e], 1e-12, 0));
    assert_true(close_enough(cnn_schedule_lr(&c, 10), 0.00025, 1e-12, 0));
    assert_true(close_enough(cnn_schedule_lr(&c, 14), 0.00025, 1e-12, 0));
    assert_true(close_enough(cnn_schedule_lr(&c, 15), 0.000125, 1e-12, 0));
    assert_int_equal(cnn_schedule_parse(&c, "step:3:0.1"), 0);
    assert_true(close_enough(cnn_schedule_lr(&c, 6), 0.00001, 1e-9, 0)); /* 0.001 * 0.1^2 */
    assert_int_equal(cnn_schedule_parse(&c, "exponential:0.9"), 0);
    assert_true(close_enough(cnn_schedule_lr(&c, 2), 0.00081, 1e-12, 0));
    assert_int_equal(cnn_schedule_parse(&c, "exponential:0.5:2"), 0);
    assert_true(close_enough(cnn_schedule_lr(&c, 1), 0.001 * sqrt(0.5), 1e-12, 0));
    assert_int_equal(cnn_schedule_parse(&c, "cosine"), 0);
    assert_true(close_enough(cnn_schedule_lr(&c, 0), 0.001, 1e-12, 0));
    assert_true(close_enough(cnn_schedule_lr(&c, 5), 0.0005, 1e-12, 0)); /* half way */
    assert_int_equal(cnn_schedule_parse(&c, "cosine:0.1"), 0);
    assert_true(close_enough(cnn_schedule_lr(&c, 5), 0.001 * (0.1 + 0.9 * 0.5), 1e-12, 0));
    const char *bad[] = {"linear", "step:0", "step:2:1.5", "step:2.5", "cosine:2", "constant:1",
                         "step:", "exponential:0.9:1:3", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (cnn_schedule_parse(&c, bad[i]) != -1)
            fail_msg("accepted the schedule '%s'", bad[i]);
    assert_int_equal(c.schedule, CNN_SCHED_COSINE); /* unchanged by the bad ones */
}

static void penalty_and_its_gradient(void **state)
{
    (void)state;
    fake f;
    fake_init(&f);
    f.t.l1 = 0.1f;
    f.t.l2 = 0.01f;
    /* 0.1 (|1| + |-2|) + 0.01 (1 + 4) */
    assert_true(close_enough(cnn_penalty(&f.m), 0.35, 1e-7, 0));
    f.g[0] = f.g[1] = 0;
    cnn_penalty_grad(&f.m);
    /* l1 sign(w) + 2 l2 w */
    assert_true(close_enough(f.g[0], 0.12, 1e-6, 0));
    assert_true(close_enough(f.g[1], -0.14, 1e-6, 0));
    f.w[0] = 0; /* d|w| at 0 is taken as 0 */
    f.g[0] = 0;
    cnn_penalty_grad(&f.m);
    assert_true(f.g[0] == 0.0f);
}

/* A "network" of 1x1x1 images whose prediction is the image's byte (so 0..k-1): the
 * confusion matrix of any labels is then known by hand. */
typedef struct oracle {
    cnn_model m;
    float out[16 * 3];
} oracle;

static void oracle_forward(cnn_model *m, const float *x, int n, int training, cnn_rng *rng)
{
    (void)training, (void)rng;
    oracle *o = (oracle *)m;
    for (int b = 0; b < n; b++)
        for (int j = 0; j < 3; j++)
            o->out[b * 3 + j] = (int)lroundf(x[b] * 255.0f) == j ? 0.8f : 0.1f;
}

static double oracle_loss(cnn_model *m, const int *labels, const float *targets, int n)
{
    (void)targets;
    double total = 0;
    for (int b = 0; b < n; b++)
        total -= log(m->output[b * 3 + labels[b]]);
    return total / n;
}

static const cnn_model_ops oracle_ops = {.forward = oracle_forward, .loss = oracle_loss};

static void confusion_matrix_by_hand(void **state)
{
    (void)state;
    oracle o = {.m = {.name = "oracle", .in_h = 1, .in_w = 1, .in_c = 1, .n_classes = 3,
                      .max_batch = 4, .ops = &oracle_ops}};
    o.m.output = o.out;
    /* predictions 0 0 1 2 2 2 1 0 ; labels 0 1 1 2 2 0 1 0 */
    uint8_t images[] = {0, 0, 1, 2, 2, 2, 1, 0}, labels[] = {0, 1, 1, 2, 2, 0, 1, 0};
    cnn_dataset ds = {.n = 8, .h = 1, .w = 1, .c = 1, .images = images, .labels = labels};
    int idx[] = {0, 1, 2, 3, 4, 5, 6, 7};
    long conf[9] = {0};
    cnn_eval e = cnn_evaluate(&o.m, &ds, idx, 8, conf);
    long want[9] = {2, 0, 1, /* true 0: predicted 0, 0, 2 */
                    1, 2, 0, /* true 1: predicted 0, 1, 1 */
                    0, 0, 2}; /* true 2: predicted 2, 2 */
    assert_memory_equal(conf, want, sizeof want);
    assert_true(e.accuracy == 6.0 / 8.0);
    /* 6 right at p = 0.8, 2 wrong at p = 0.1, in batches of 4 */
    assert_true(close_enough(e.loss, (-6 * log(0.8f) - 2 * log(0.1f)) / 8, 1e-6, 0));
    assert_int_equal(e.n, 8);
}

static void kfold_partitions(void **state)
{
    (void)state;
    int n = 10, k = 3, seen[10] = {0}, tr[10], va[10], ntr, nva, sizes = 0;
    for (int f = 0; f < k; f++) {
        cnn_kfold_split(n, k, f, 7, tr, &ntr, va, &nva);
        assert_int_equal(ntr + nva, n);
        assert_true(nva == 3 || nva == 4);
        sizes += nva;
        int in_val[10] = {0};
        for (int i = 0; i < nva; i++) {
            seen[va[i]]++;
            in_val[va[i]] = 1;
        }
        for (int i = 0; i < ntr; i++)
            assert_int_equal(in_val[tr[i]], 0); /* train and validation are disjoint */
    }
    assert_int_equal(sizes, n);
    for (int i = 0; i < n; i++)
        assert_int_equal(seen[i], 1); /* every item in exactly one fold */
    int again_tr[10], again_va[10], a, b;
    cnn_kfold_split(n, k, 1, 7, again_tr, &a, again_va, &b);
    cnn_kfold_split(n, k, 1, 7, tr, &ntr, va, &nva);
    assert_memory_equal(again_va, va, sizeof(int) * (size_t)nva); /* a function of the seed */
}

/* Two runs with one seed are bit-identical: dropout, batchnorm, shuffling, Adam, l1/l2. */
static void seeded_runs_are_identical(void **state)
{
    (void)state;
    enum { N = 96 };
    uint8_t *images = malloc(N * 12 * 12 * 3), labels[N];
    cnn_rng rng;
    cnn_rng_seed(&rng, 1);
    for (int i = 0; i < N * 12 * 12 * 3; i++)
        images[i] = (uint8_t)cnn_rng_below(&rng, 256);
    for (int i = 0; i < N; i++)
        labels[i] = (uint8_t)cnn_rng_below(&rng, 4);
    cnn_dataset ds = {.n = N, .h = 12, .w = 12, .c = 3, .images = images, .labels = labels};
    test_net t;
    assert_int_equal(test_net_from_file(&t, SOURCE_DIR "/tests/nets/deep_mix.net"), 0);
    float *first = NULL;
    size_t total = 0;
    for (int run = 0; run < 2; run++) {
        cnn_model *m = cnn_reference_new(&t.ir, 8);
        cnn_rng init;
        cnn_rng_seed(&init, 9);
        cnn_init_tensors(m, &init);
        total = cnn_param_count(m, 0);
        float *initial = malloc(sizeof(float) * total), *q = initial;
        for (int i = 0; i < m->n_tensors; i++) {
            memcpy(q, m->tensors[i].value, sizeof(float) * m->tensors[i].size);
            q += m->tensors[i].size;
        }
        cnn_fit_opts o = {.cfg = t.ir.train, .shuffle = 1};
        o.cfg.batch = 8;
        o.cfg.epochs = 2;
        o.cfg.validation = 0.25;
        o.cfg.seed = 9;
        assert_int_equal(cnn_fit(m, &ds, &o), 0);
        float *all = malloc(sizeof(float) * total), *p = all;
        q = initial;
        for (int i = 0; i < m->n_tensors; i++) {
            size_t n = m->tensors[i].size;
            memcpy(p, m->tensors[i].value, sizeof(float) * n);
            /* It did train: every trainable tensor moved from where initialization left it
             * (the moving statistics, not trainable, move too, through training passes). */
            if (m->tensors[i].grad && memcmp(p, q, sizeof(float) * n) == 0)
                fail_msg("%s did not change in training", m->tensors[i].name);
            p += n;
            q += n;
        }
        free(initial);
        if (run == 0)
            first = all;
        else {
            assert_memory_equal(first, all, sizeof(float) * total);
            free(all);
        }
        cnn_model_destroy(m);
    }
    free(first);
    free(images);
    test_net_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sgd_steps),
        cmocka_unit_test(rmsprop_steps),
        cmocka_unit_test(adam_steps),
        cmocka_unit_test(schedules),
        cmocka_unit_test(penalty_and_its_gradient),
        cmocka_unit_test(confusion_matrix_by_hand),
        cmocka_unit_test(kfold_partitions),
        cmocka_unit_test(seeded_runs_are_identical),
    };
    return cmocka_run_group_tests_name("runtime", tests, NULL, NULL);
}
