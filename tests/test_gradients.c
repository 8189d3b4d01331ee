/* The reference's backward pass against central finite differences in double precision, for
 * every test network (tests/nets/, tests/graphs/) and every study model (models/): every layer
 * kind, activation and option, batchnorm in training mode, dropout with fixed masks, l1/l2, and
 * graphs: joins (add, concat), tensors read by several layers, branches from the input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "reference.h"
#include "support.h"

#define BATCH 4
/* Entries checked per tensor: all of a small one, a spread sample of a large one; the study
 * models (about 93k parameters, 20x the cost of a test network) get a smaller sample. */
#define MAX_CHECKS_PER_TENSOR 48
#define MAX_CHECKS_LARGE_NET 12

/* The objective the optimizer descends: the mean loss (cross-entropy against labels, or mean
 * squared error against targets) plus the l1/l2 penalty, with the dropout masks fixed by
 * reseeding the stream before every evaluation. */
static double objective(cnn_model *m, const float *x, const int *labels, const float *targets)
{
    cnn_rng rng;
    cnn_rng_seed(&rng, 99);
    m->ops->forward(m, x, BATCH, 1, &rng);
    return m->ops->loss(m, labels, targets, BATCH) + cnn_penalty(m);
}

static void check_network(void **state)
{
    const char *path = *state;
    test_net t;
    assert_int_equal(test_net_from_file(&t, path), 0);
    cnn_model *m = cnn_reference_new(&t.ir, BATCH);
    assert_non_null(m);

    cnn_rng rng;
    cnn_rng_seed(&rng, 7);
    cnn_init_tensors(m, &rng);
    /* Move every trainable value off its initial constant (zero biases, unit gammas), so that
     * no gradient is checked only at a special point. */
    perturb_trainable(m, &rng, 0.2f);
    size_t in_size = cnn_input_size(m);
    float *x = malloc(sizeof(float) * in_size * BATCH);
    int labels[BATCH];
    for (size_t i = 0; i < in_size * BATCH; i++)
        x[i] = cnn_rng_uniform(&rng);
    for (int b = 0; b < BATCH; b++)
        labels[b] = (int)cnn_rng_below(&rng, (uint32_t)m->n_classes);
    float *targets = malloc(sizeof(float) * (size_t)m->n_classes * BATCH);
    for (int i = 0; i < m->n_classes * BATCH; i++)
        targets[i] = cnn_rng_uniform(&rng) * 2 - 0.5f;

    cnn_zero_grad(m);
    objective(m, x, labels, targets);
    m->ops->backward(m, labels, targets, BATCH);
    cnn_penalty_grad(m);

    int checks = 0, failures = 0, kinks = 0;
    size_t max_checks = cnn_param_count(m, 0) > 10000 ? MAX_CHECKS_LARGE_NET : MAX_CHECKS_PER_TENSOR;
    for (int ti = 0; ti < m->n_tensors; ti++) {
        cnn_tensor *T = &m->tensors[ti];
        if (!T->grad)
            continue;
        double grad_norm = 0;
        size_t n = T->size < max_checks ? T->size : max_checks;
        for (size_t k = 0; k < n; k++) {
            /* All elements of small tensors; a spread sample of large ones, ends included. */
            size_t i = T->size <= max_checks ? k : k * (T->size - 1) / (n - 1);
            float w0 = T->value[i];
            float h = 1e-6f * (fabsf(w0) > 1 ? fabsf(w0) : 1);
            float up = w0 + h, down = w0 - h;
            double j_mid = objective(m, x, labels, targets);
            T->value[i] = up;
            double j_up = objective(m, x, labels, targets);
            T->value[i] = down;
            double j_down = objective(m, x, labels, targets);
            T->value[i] = w0;
            /* relu and max pooling have kinks; a large layer has many pre-activations, and one
             * within h of its kink makes the central difference meaningless there. The one-sided
             * slopes disagree exactly then: such entries are counted and bounded, not checked. */
            double left = (j_mid - j_down) / ((double)w0 - (double)down);
            double right = (j_up - j_mid) / ((double)up - (double)w0);
            if (!close_enough(left, right, 5e-5, 5e-8)) {
                kinks++;
                continue;
            }
            double numeric = (j_up - j_down) / ((double)up - (double)down);
            double analytic = T->grad[i];
            grad_norm += fabs(analytic);
            checks++;
            if (!close_enough(analytic, numeric, 1e-4, 1e-7)) {
                failures++;
                if (failures <= 10)
                    print_error("%s %s[%zu]: backward %.9g, finite difference %.9g\n", path,
                                T->name, i, analytic, numeric);
            }
        }
        /* A tensor whose gradient is all zero would pass vacuously. */
        if (grad_norm == 0)
            print_error("%s: %s has an all-zero gradient\n", path, T->name);
        assert_true(grad_norm > 0);
    }
    print_message("%s: %d gradient entries checked, %d beside a kink skipped\n",
                  strrchr(path, '/') + 1, checks, kinks);
    assert_int_equal(failures, 0);
    assert_true(kinks * 20 <= checks); /* at most 5% */
    free(x);
    free(targets);
    cnn_model_destroy(m);
    test_net_free(&t);
}

/* Every registered layer kind is in some network checked above: a descriptor added without
 * a test network fails here. */
static void every_layer_kind_is_checked(void **state)
{
    char **paths = *state;
    int missing = 0;
    for (int k = 0; cnn_layer_keywords[k]; k++) {
        int found = 0;
        for (int i = 0; paths[i] && !found; i++) {
            test_net t;
            assert_int_equal(test_net_from_file(&t, paths[i]), 0);
            for (int l = 0; l < t.ir.n_layers && !found; l++)
                found = strcmp(t.ir.layers[l].desc->keyword, cnn_layer_keywords[k]) == 0;
            test_net_free(&t);
        }
        if (!found) {
            print_error("layer kind '%s' is in no test network (tests/nets/, tests/graphs/)\n",
                        cnn_layer_keywords[k]);
            missing++;
        }
    }
    assert_int_equal(missing, 0);
}

int main(void)
{
    struct CMUnitTest *tests;
    char **paths;
    char **graphs = graph_nets();
    int n = network_tests(check_network, count_names(graphs) + 1, &tests, &paths);
    n += append_tests(tests + n, check_network, graphs);
    char **all = calloc((size_t)n + 1, sizeof *all); /* the paths, borrowed */
    for (int i = 0; all && i < n; i++)
        all[i] = tests[i].initial_state;
    tests[n++] = (struct CMUnitTest){"every_layer_kind_is_checked", every_layer_kind_is_checked,
                                     NULL, NULL, all};
    int failed = _cmocka_run_group_tests("gradients", tests, (size_t)n, NULL, NULL);
    free(tests);
    free_names(paths);
    free_names(graphs);
    free(all);
    return failed;
}
