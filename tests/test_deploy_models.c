/* The five study networks and a residual one (models/graph/resnet_fashion.net: adds, a 1x1
 * projection, gap), trained on Fashion-MNIST by their compiled trainers, exported: on
 * all 10,000 test images the float export must give the reference's probabilities to 1e-5 and
 * the trainer's `predict` (class and probability), and the int8 export must pick the float
 * export's class on at least 99% of them and lose at most 0.3 points of accuracy.
 * CNNC_DEPLOY_EPOCHS sets the training (default 2; scripts/deploy_table.sh trains the study's
 * 15 and writes docs/deploy.md's table from CNNC_DEPLOY_REPORT). Skipped without the data. */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reference.h"
#include "support.h"

#define DIR TEST_DATA_DIR
#define TESTS 10000

static char tmpdir[] = "/tmp/cnnc-deploy-XXXXXX";
static cnn_dataset test_set;
static int epochs = 2;
static FILE *report;

typedef int (*predict_u8_fn)(const unsigned char *, float *);

static run_result run_ok(char *const argv[], const char *what)
{
    run_result r = run_program(argv);
    if (r.status != 0)
        fail_msg("%s failed (%d):\n%s", what, r.status, r.err ? r.err : "");
    return r;
}

/* A model's name: its file's stem ("graph/resnet_fashion": resnet_fashion). */
static const char *name_of(const char *model)
{
    const char *slash = strrchr(model, '/');
    return slash ? slash + 1 : model;
}

static predict_u8_fn build(const char *model, const char *ckpt, const char *tag, char **flags,
                           void **so_handle, long *flash, long *ram)
{
    char net[600], c_file[600], so[600];
    snprintf(net, sizeof net, "%s/models/%s.net", SOURCE_DIR, model);
    snprintf(c_file, sizeof c_file, "%s/%s_%s.c", tmpdir, name_of(model), tag);
    snprintf(so, sizeof so, "%s/%s_%s.so", tmpdir, name_of(model), tag);
    char *argv[20] = {CNNC_PATH, "export", net, "--weights", (char *)ckpt, "-o", c_file, "--plan"};
    int n = 8;
    for (int i = 0; flags && flags[i]; i++)
        argv[n++] = flags[i];
    argv[n] = NULL;
    run_result r = run_ok(argv, "cnnc export");
    const char *total = strstr(r.out, "total:");
    assert_non_null(total);
    assert_int_equal(sscanf(total, "total: %ld bytes of constants (flash, besides the code), %ld",
                            flash, ram), 2);
    run_result_free(&r);
    char *cc[] = {TEST_CC, "-std=c99", "-O2", "-fPIC", "-shared", c_file, "-o", so, "-lm", NULL};
    r = run_ok(cc, TEST_CC);
    run_result_free(&r);
    *so_handle = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(*so_handle);
    char sym[96];
    snprintf(sym, sizeof sym, "%s_predict_u8", name_of(model));
    predict_u8_fn f = (predict_u8_fn)(uintptr_t)dlsym(*so_handle, sym);
    assert_non_null(f);
    return f;
}

static void model_test(void **state)
{
    const char *model = *state;
    if (!test_set.n) {
        print_message("no Fashion-MNIST in " DIR " (apt-get install dataset-fashion-mnist)\n");
        skip();
    }
    if (TEST_SANITIZE[0]) {
        print_message("the Release build checks the figures; this build checks memory\n");
        skip();
    }
    char trainer[600], ckpt[600], ep[16];
    snprintf(trainer, sizeof trainer, "%s/%s", TRAINER_DIR, name_of(model));
    snprintf(ckpt, sizeof ckpt, "%s/%s.ckpt", tmpdir, name_of(model));
    snprintf(ep, sizeof ep, "%d", epochs);
    char *train[] = {trainer, "train", "--data", DIR, "--epochs", ep, "--save", ckpt, NULL};
    run_result r = run_ok(train, "training");
    run_result_free(&r);
    char *predict[] = {trainer, "predict", "--data", DIR, "--load", ckpt, NULL};
    run_result csv = run_ok(predict, "predict");

    void *fso, *qso;
    long fflash, fram, qflash, qram;
    predict_u8_fn fpredict = build(model, ckpt, "float", NULL, &fso, &fflash, &fram);
    char *int8[] = {"--int8", "--calibrate", "1000", "--data", DIR, NULL};
    predict_u8_fn qpredict = build(model, ckpt, "int8", int8, &qso, &qflash, &qram);

    /* The reference with the same weights, in batches. */
    test_net t;
    char net[600];
    snprintf(net, sizeof net, "%s/models/%s.net", SOURCE_DIR, model);
    assert_int_equal(test_net_from_file(&t, net), 0);
    enum { B = 200 };
    cnn_model *ref = cnn_reference_new(&t.ir, B);
    char err[1200];
    assert_int_equal(cnn_checkpoint_load(ckpt, ref, NULL, NULL, err, sizeof err), 0);
    int K = ref->n_classes, P = (int)cnn_input_size(ref);
    float *x = malloc(sizeof(float) * (size_t)P * B);
    int idx[B], labels[B];

    int agree = 0, fcorrect = 0, qcorrect = 0, tcorrect = 0, far = 0, trainer_off = 0;
    double worst = 0, worst_trainer = 0;
    const char *line = strchr(csv.out, '\n') + 1;
    for (int b0 = 0; b0 < TESTS; b0 += B) {
        for (int i = 0; i < B; i++)
            idx[i] = b0 + i;
        cnn_dataset_batch(&test_set, idx, B, x, labels);
        ref->ops->forward(ref, x, B, 0, NULL);
        for (int i = 0; i < B; i++) {
            const unsigned char *img = test_set.images + (size_t)(b0 + i) * P;
            float fp[64], qp[64];
            int ft = fpredict(img, fp), qt = qpredict(img, qp);
            for (int k = 0; k < K; k++) {
                double d = fabs((double)fp[k] - ref->output[i * K + k]);
                worst = fmax(worst, d);
                far += d > 1e-5;
            }
            int index, cls, label;
            double prob;
            if (sscanf(line, "%d,%d,%*[^,],%lf,%d", &index, &cls, &prob, &label) != 4 ||
                index != b0 + i)
                fail_msg("%s: predict's line %d: %.60s", name_of(model), b0 + i, line);
            line = strchr(line, '\n') + 1;
            /* predict prints 6 decimals: half a unit of the last one besides the 1e-5. */
            double dp = fabs(fp[cls] - prob);
            worst_trainer = fmax(worst_trainer, dp);
            trainer_off += cls != ft || dp > 1e-5 + 5e-7;
            agree += ft == qt;
            fcorrect += ft == labels[i];
            qcorrect += qt == labels[i];
            tcorrect += cls == labels[i];
        }
    }
    double facc = fcorrect / (double)TESTS, qacc = qcorrect / (double)TESTS;
    print_message("%s after %d epochs: float export accuracy %.4f (the trainer's %.4f), int8 "
                  "%.4f; int8 picks the float class on %.2f%%; float vs reference: largest "
                  "difference %.2g; vs predict %.2g\n",
                  name_of(model), epochs, facc, tcorrect / (double)TESTS, qacc,
                  100.0 * agree / TESTS, worst, worst_trainer);
    if (report)
        fprintf(report, "| %s | %.4f | %.4f | %+.4f | %.2f%% | %ld + %ld | %ld + %ld |\n",
                name_of(model), facc, qacc, qacc - facc, 100.0 * agree / TESTS, fflash, fram,
                qflash, qram);
    if (far)
        fail_msg("%s: %d probabilities of the float export differ from the reference by more "
                 "than 1e-5 (largest %.3g)", model, far, worst);
    if (trainer_off)
        fail_msg("%s: on %d images the float export's class or probability is not the "
                 "trainer's predict", model, trainer_off);
    assert_true(agree >= TESTS * 99 / 100);
    assert_true(facc - qacc <= 0.003);
    free(x);
    cnn_model_destroy(ref);
    test_net_free(&t);
    dlclose(fso);
    dlclose(qso);
    run_result_free(&csv);
}

static int setup(void **state)
{
    (void)state;
    const char *e = getenv("CNNC_DEPLOY_EPOCHS"), *rep = getenv("CNNC_DEPLOY_REPORT");
    if (e)
        epochs = atoi(e);
    if (rep && !(report = fopen(rep, "a")))
        return -1;
    char err[1200];
    if (!mkdtemp(tmpdir))
        return -1;
    if (access(DIR "/t10k-images-idx3-ubyte.gz", R_OK) == 0 &&
        cnn_dataset_load(&test_set, DIR "/t10k-images-idx3-ubyte.gz",
                         DIR "/t10k-labels-idx1-ubyte.gz", err, sizeof err))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (report)
        fclose(report);
    cnn_dataset_free(&test_set);
    return remove_tree(tmpdir);
}

int main(void)
{
    /* The study's five, and a residual network (adds, a 1x1 projection, gap): a graph. */
    static const char *const models[] = {"baseline", "dropout", "l1", "l2", "batchnorm",
                                         "graph/resnet_fashion"};
    enum { N = sizeof models / sizeof *models };
    struct CMUnitTest tests[N];
    for (int i = 0; i < N; i++)
        tests[i] = (struct CMUnitTest){name_of(models[i]), model_test, NULL, NULL,
                                       (void *)models[i]};
    return cmocka_run_group_tests_name("the study's networks, exported", tests, setup, teardown);
}
