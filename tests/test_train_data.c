/* The reference trains the baseline on 2,000 Fashion-MNIST images and clearly beats chance.
 * Skipped (and reported as skipped) when the dataset-fashion-mnist package is absent. */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "reference.h"
#include "support.h"

#define DIR TEST_DATA_DIR

static int record_loss(const cnn_epoch_stats *s, const cnn_optimizer *o, void *ctx)
{
    (void)o;
    *(double *)ctx = s->train.loss;
    return 0;
}

static void reference_learns_fashion_mnist(void **state)
{
    (void)state;
    if (access(DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        print_message("no Fashion-MNIST in " DIR " (apt-get install dataset-fashion-mnist)\n");
        skip();
    }
    char err[1200];
    cnn_dataset train, test;
    if (cnn_dataset_load(&train, DIR "/train-images-idx3-ubyte.gz",
                         DIR "/train-labels-idx1-ubyte.gz", err, sizeof err) ||
        cnn_dataset_load(&test, DIR "/t10k-images-idx3-ubyte.gz", DIR "/t10k-labels-idx1-ubyte.gz",
                         err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(train.n, 60000);
    assert_int_equal(test.n, 10000);

    test_net t;
    assert_int_equal(test_net_from_file(&t, SOURCE_DIR "/models/baseline.net"), 0);
    cnn_model *m = cnn_reference_new(&t.ir, 32);
    assert_non_null(m);
    assert_int_equal(cnn_dataset_check(&train, m, err, sizeof err), 0);
    cnn_rng rng;
    cnn_rng_seed(&rng, 42);
    cnn_init_tensors(m, &rng);

    double epoch_loss = 0;
    cnn_fit_opts opts = {.cfg = t.ir.train, .limit = 2000, .shuffle = 1, .log = stdout,
                         .on_epoch = record_loss, .ctx = &epoch_loss};
    opts.cfg.epochs = 1;
    opts.cfg.validation = 0;
    assert_int_equal(cnn_fit(m, &train, &opts), 0);

    int idx[1000];
    for (int i = 0; i < 1000; i++)
        idx[i] = i;
    cnn_eval e = cnn_evaluate(m, &test, idx, 1000, NULL);
    print_message("after one epoch on 2,000 images: training loss %.4f, test accuracy %.4f "
                  "(loss %.4f) on 1,000 test images\n", epoch_loss, e.accuracy, e.loss);
    /* Chance is 0.10 accuracy and loss ln 10 = 2.30. */
    assert_true(epoch_loss < log(10.0));
    assert_true(e.accuracy > 0.5);
    assert_true(e.loss < 1.5);

    cnn_model_destroy(m);
    test_net_free(&t);
    cnn_dataset_free(&train);
    cnn_dataset_free(&test);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(reference_learns_fashion_mnist)};
    return cmocka_run_group_tests_name("training on data", tests, NULL, NULL);
}
