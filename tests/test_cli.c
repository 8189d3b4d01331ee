/* The trainers' command line, through `cnnc run` on a tiny network and IDX files written here:
 * train with checkpoints and logs, an interrupted run resumed to the very same bytes, eval,
 * predict, class names, and the errors of bad flags and missing data; a loss mse network on
 * float32 data, its targets the inputs or a file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

static char dir[] = "/tmp/cnnc-cli-XXXXXX";
static char net[600], data[600];

static char *at(const char *name)
{
    static char buf[6][700];
    static int next;
    char *p = buf[next++ % 6];
    snprintf(p, 700, "%s/%s", dir, name);
    return p;
}

static void write_idx(const char *name, int n, int images)
{
    FILE *f = fopen(at(name), "wb");
    assert_non_null(f);
    unsigned char head[16] = {0, 0, 8, (unsigned char)(images ? 3 : 1), 0, 0, 0, (unsigned char)n,
                              0, 0, 0, 4, 0, 0, 0, 4};
    fwrite(head, 1, images ? 16 : 8, f);
    /* Class c: a bright pixel at 5c, so the network can learn it. */
    for (int i = 0; i < n; i++) {
        int c = i % 3;
        if (!images) {
            fputc(c, f);
            continue;
        }
        for (int p = 0; p < 16; p++)
            fputc(p == 5 * c ? 250 : (i * 7 + p * 13) % 40, f);
    }
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(data, sizeof data, "%s/data", dir);
    mkdir(data, 0777);
    write_idx("data/train-images-idx3-ubyte", 96, 1);
    write_idx("data/train-labels-idx1-ubyte", 96, 0);
    write_idx("data/t10k-images-idx3-ubyte", 24, 1);
    write_idx("data/t10k-labels-idx1-ubyte", 24, 0);
    snprintf(net, sizeof net, "%s/tiny.net", dir);
    FILE *f = fopen(net, "w");
    fputs("input 4x4x1\nconv 2 3x3 relu\nflatten\ndropout 0.2\ndense 3 softmax\n"
          "train { epochs 3; batch 8; validation 0.25; seed 5 }\n", f);
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return remove_tree(dir);
}

/* cnnc run tiny.net ARGS... --data DIR */
static run_result cli(const char *const *args)
{
    char *argv[32] = {CNNC_PATH, "run", net};
    int n = 3;
    for (; *args; args++)
        argv[n++] = (char *)*args;
    argv[n++] = "--data";
    argv[n++] = data;
    argv[n] = NULL;
    return run_program(argv);
}

/* The tests run in order: this one writes the checkpoint the later ones read. */
static void train_saves_logs_and_evaluates(void **state)
{
    (void)state;
    run_result r = cli((const char *[]){"train", "--save", at("full.ckpt"), "--log", at("log"),
                                        NULL});
    assert_int_equal(r.status, 0);
    /* The first line names backend, threads and BLAS. */
    assert_non_null(strstr(r.out, "training 'tiny' (reference backend) on 96 images; "));
    assert_non_null(strstr(r.out, "BLAS: "));
    assert_non_null(strstr(r.out, "epoch 3/3"));
    assert_non_null(strstr(r.out, "test: loss "));
    assert_non_null(strstr(r.out, "confusion matrix (rows: true class, columns: predicted class)"));
    run_result_free(&r);
    size_t len;
    char *csv = read_whole_file(at("log/epochs.csv"), &len);
    assert_non_null(csv);
    assert_true(strncmp(csv, "epoch,lr,loss,accuracy,val_loss,val_accuracy,seconds\n1,", 55) == 0);
    assert_non_null(strstr(csv, "\n3,0.001,"));
    free(csv);
    char *json = read_whole_file(at("log/run.json"), &len);
    assert_non_null(strstr(json, "\"network\": \"tiny\""));
    assert_non_null(strstr(json, "\"test\": {\"loss\": "));
    assert_non_null(strstr(json, "\"per_class_accuracy\": ["));
    free(json);
    char *conf = read_whole_file(at("log/confusion.csv"), &len);
    assert_true(strncmp(conf, "true\\predicted,class 0,class 1,class 2\n", 39) == 0);
    free(conf);
}

static void interrupted_run_resumes_to_the_same_bytes(void **state)
{
    (void)state;
    /* 2 epochs, then --resume to 3: the checkpoint must equal the uninterrupted run's. */
    run_result r = cli((const char *[]){"train", "--epochs", "2", "--save", at("part.ckpt"),
                                        "--log", at("part"), NULL});
    assert_int_equal(r.status, 0);
    run_result_free(&r);
    r = cli((const char *[]){"train", "--save", at("part.ckpt"), "--resume", "--log", at("part"),
                             NULL});
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "resuming from"));
    assert_non_null(strstr(r.out, "2 of 3 epochs were done"));
    assert_null(strstr(r.out, "epoch 1/3"));
    run_result_free(&r);
    size_t la, lb;
    char *a = read_whole_file(at("full.ckpt"), &la), *b = read_whole_file(at("part.ckpt"), &lb);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
    /* And the log reads as one run: three epochs, one header. */
    char *csv = read_whole_file(at("part/epochs.csv"), &la);
    int lines = 0;
    for (char *p = csv; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 4);
    free(csv);
}

static void eval_and_predict(void **state)
{
    (void)state;
    run_result r = cli((const char *[]){"eval", "--load", at("full.ckpt"), NULL});
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "(24 images)"));
    assert_non_null(strstr(r.out, "accuracy per class:"));
    run_result_free(&r);
    FILE *f = fopen(at("names.txt"), "w");
    fputs("low\nmiddle\nhigh\n", f);
    fclose(f);
    r = cli((const char *[]){"predict", "--load", at("full.ckpt"), "--limit", "5", "--classes",
                             at("names.txt"), NULL});
    assert_int_equal(r.status, 0);
    assert_true(strncmp(r.out, "index,predicted,class,probability,label\n0,", 42) == 0);
    int lines = 0;
    for (char *p = r.out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 6);
    assert_true(strstr(r.out, ",low,") || strstr(r.out, ",middle,") || strstr(r.out, ",high,"));
    run_result_free(&r);
}

static void errors_are_clear(void **state)
{
    (void)state;
    const struct {
        const char *args[8];
        int status;
        const char *message;
    } cases[] = {
        {{"train", "--epochs", "0", NULL}, 2, "--epochs needs a whole number from 1 to"},
        {{"train", "--lr", "fast", NULL}, 2, "--lr needs a number from"},
        {{"train", "--schedule", "sometimes", NULL}, 2, "--schedule needs constant, step"},
        {{"train", "--frobnicate", NULL}, 2, "unknown option '--frobnicate'"},
        {{"fly", NULL}, 2, "unknown command 'fly' (train, eval or predict)"},
        {{"eval", NULL}, 1, "eval needs the weights: --load FILE"},
        {{"eval", "--load", "/nonexistent.ckpt", NULL}, 1, "/nonexistent.ckpt: cannot open"},
        {{"train", "--resume", NULL}, 1, "--resume needs a checkpoint"},
        {{"train", "--train-images", "/nonexistent-images", NULL}, 1,
         "/nonexistent-images: cannot open"},
        /* 72 training images (96 less a quarter), batches of 8. */
        {{"train", "--limit", "5", NULL}, 1, "error: --limit 5 is less than one batch (8 images)"},
        {{"train", "--kfold", "50", "--limit", "40", NULL}, 1,
         "error: --kfold 50 needs at least 50 images, and there are 40"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_result r = cli(cases[i].args);
        if (r.status != cases[i].status || !strstr(r.err, cases[i].message))
            fail_msg("case %zu: status %d, stderr '%s'; wanted %d and '%s'", i, r.status, r.err,
                     cases[i].status, cases[i].message);
        run_result_free(&r);
    }
    FILE *f = fopen(at("two.txt"), "w");
    fputs("a\nb\n", f);
    fclose(f);
    run_result r = cli((const char *[]){"eval", "--load", at("full.ckpt"), "--classes",
                                        at("two.txt"), NULL});
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "two.txt: names 2 classes, the network has 3"));
    run_result_free(&r);
}

/* A flag at the end of the line, without its value, says what it needs. */
static void flags_need_values(void **state)
{
    (void)state;
    const char *cases[][2] = {{"--data", "--data needs a directory"},
                              {"--log", "--log needs a directory"},
                              {"--save", "--save needs a file"},
                              {"--test-images", "--test-images needs a file"},
                              {"--epochs", "--epochs needs a whole number"},
                              {"--lr", "--lr needs a number"},
                              {"--schedule", "--schedule needs a schedule (like step:5:0.5)"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[] = {CNNC_PATH, "run", net, "train", (char *)cases[i][0], NULL};
        run_result r = run_program(argv);
        char want[128];
        snprintf(want, sizeof want, "cnnc run: error: %s\n", cases[i][1]);
        assert_int_equal(r.status, 2);
        assert_string_equal(r.err, want);
        run_result_free(&r);
    }
}

/* The trainers answer --version with cnnc's. */
static void version(void **state)
{
    (void)state;
    char *cnnc[] = {CNNC_PATH, "--version", NULL};
    run_result a = run_program(cnnc);
    assert_int_equal(a.status, 0);
    assert_true(strncmp(a.out, "cnnc ", 5) == 0);
    char want[128];
    snprintf(want, sizeof want, "cnnc run (%.*s)\n", (int)strcspn(a.out, "\n"), a.out);
    char *run[] = {CNNC_PATH, "run", net, "--version", NULL};
    run_result b = run_program(run);
    assert_int_equal(b.status, 0);
    assert_string_equal(b.out, want);
    run_result_free(&a);
    run_result_free(&b);
}

/* Weights that grow five-fold each step (sgd, lr 1, l2=3: w <- w - 6w) overflow float after
 * about 56 steps, 12 to an epoch: the loss is NaN in the fifth epoch. Training stops there with
 * status 1, and the checkpoint of the fourth is whole. */
static void diverging_loss_stops_training(void **state)
{
    (void)state;
    char div[700];
    snprintf(div, sizeof div, "%s", at("div.net"));
    FILE *f = fopen(div, "w");
    assert_non_null(f);
    fputs("input 4x4x1\nflatten\ndense 3 softmax l2=3\n"
          "train { epochs 8; batch 8; seed 5; optimizer sgd lr=1 }\n", f);
    fclose(f);
    char *train[] = {CNNC_PATH, "run", div, "train", "--save", at("div.ckpt"), "--data", data,
                     NULL};
    run_result r = run_program(train);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "cnnc run: error: the loss became NaN in epoch 5, batch "));
    assert_non_null(strstr(r.out, "epoch 4/8"));
    assert_null(strstr(r.out, "epoch 5/8"));
    run_result_free(&r);
    char *eval[] = {CNNC_PATH, "run", div, "eval", "--load", at("div.ckpt"), "--data", data, NULL};
    r = run_program(eval);
    assert_int_equal(r.status, 0);
    run_result_free(&r);

    /* --check-numerics names the layer, and finds it a batch sooner: the step that overflows
     * the weights makes the gradient infinite in its own backward pass, the loss only in the
     * next forward one. */
    char *check[] = {CNNC_PATH, "run", div, "train", "--check-numerics", "--data", data, NULL};
    r = run_program(check);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "cnnc run: error: dense_1's gradient holds NaN or infinity in "
                                  "epoch 5, batch "));
    int loss_batch = 0, layer_batch = 0;
    run_result again = run_program(train);
    const char *p = strstr(again.err, ", batch "), *q = strstr(r.err, ", batch ");
    assert_true(p && q);
    loss_batch = atoi(p + 8);
    layer_batch = atoi(q + 8);
    assert_int_equal(layer_batch, loss_batch - 1);
    run_result_free(&again);
    run_result_free(&r);
}

/* A log on a full disk (/dev/full behind the file's name): an error naming the file, status
 * 1, and the checkpoint, written first, whole. */
static void full_disk_is_an_error(void **state)
{
    (void)state;
    char logs[700];
    snprintf(logs, sizeof logs, "%s", at("full-logs"));
    mkdir(logs, 0777);
    char link[800];
    snprintf(link, sizeof link, "%s/epochs.csv", logs);
    assert_int_equal(symlink("/dev/full", link), 0);
    run_result r = cli((const char *[]){"train", "--epochs", "1", "--log", logs, "--save",
                                        at("full-disk.ckpt"), NULL});
    assert_int_equal(r.status, 1);
    char want[900];
    snprintf(want, sizeof want, "cannot write %s/epochs.csv: No space left on device", logs);
    assert_non_null(strstr(r.err, want));
    run_result_free(&r);
    r = cli((const char *[]){"eval", "--load", at("full-disk.ckpt"), NULL});
    assert_int_equal(r.status, 0);
    run_result_free(&r);
}

/* Files a run writes get 0666 less the umask, as any program's do (mkstemp alone: 0600). */
static void files_follow_the_umask(void **state)
{
    (void)state;
    mode_t old = umask(027);
    run_result r = cli((const char *[]){"train", "--epochs", "1", "--save", at("umask.ckpt"),
                                        NULL});
    assert_int_equal(r.status, 0);
    run_result_free(&r);
    char *gen[] = {CNNC_PATH, net, "-o", at("umask.c"), NULL};
    r = run_program(gen);
    assert_int_equal(r.status, 0);
    run_result_free(&r);
    umask(old);
    struct stat st;
    assert_int_equal(stat(at("umask.ckpt"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    assert_int_equal(stat(at("umask.c"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
}

/* A gnuplot that dies before reading its script: the pictures fail with a message, the
 * process is not killed by SIGPIPE. The log is long (4,000 epochs, over 200 KB inlined into
 * the script), so the write blocks on the full pipe until the fake exits and then fails: no
 * race with the fake's start. `cnnc plot` draws through the same code as a finished run. */
static void dying_gnuplot_cannot_kill_a_run(void **state)
{
    (void)state;
    char bin[700], fake[800], logs[700], csv[800];
    snprintf(bin, sizeof bin, "%s", at("fakebin"));
    mkdir(bin, 0777);
    snprintf(fake, sizeof fake, "%s/gnuplot", bin);
    FILE *f = fopen(fake, "w");
    assert_non_null(f);
    fputs("#!/bin/sh\nexit 1\n", f);
    fclose(f);
    chmod(fake, 0755);
    snprintf(logs, sizeof logs, "%s", at("long-run"));
    mkdir(logs, 0777);
    snprintf(csv, sizeof csv, "%s/epochs.csv", logs);
    f = fopen(csv, "w");
    assert_non_null(f);
    fputs("epoch,lr,loss,accuracy,val_loss,val_accuracy,seconds\n", f);
    for (int e = 1; e <= 4000; e++)
        fprintf(f, "%d,0.001,%.6f,%.6f,%.6f,%.6f,1.000\n", e, 1.0 / e, 1 - 1.0 / e, 1.1 / e,
                1 - 1.1 / e);
    fclose(f);
    char path[1024];
    snprintf(path, sizeof path, "%s:/usr/bin:/bin", bin);
    char *argv[] = {CNNC_PATH, "plot", logs, NULL};
    run_result r = run_program_path(path, argv);
    assert_int_equal(r.status, 1); /* -1 if a signal had ended it */
    assert_non_null(strstr(r.err, "gnuplot failed"));
    run_result_free(&r);
}

/* ---- loss mse ---- */

#define MSE_FEATURES 12
/* Smooth rows (a sine with a phase per row): what the autoencoder can learn to compress. */
static void mse_rows(float *v, int n, int offset)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < MSE_FEATURES; j++)
            v[i * MSE_FEATURES + j] = 0.5f + 0.4f * sinf(0.5f * j + 0.37f * (float)(i + offset));
}

static run_result mse_run(const char *const *args)
{
    char *argv[32] = {CNNC_PATH, "run", SOURCE_DIR "/tests/nets/mse_dense.net"};
    int n = 3;
    for (; *args; args++)
        argv[n++] = (char *)*args;
    argv[n] = NULL;
    return run_program(argv);
}

/* The mean squared error of predict's printed outputs against rows, in double. */
static double mse_of_predictions(const char *csv, const float *want, int n)
{
    const char *line = strchr(csv, '\n'); /* past the header */
    double total = 0;
    for (int i = 0; i < n; i++) {
        assert_non_null(line);
        const char *p = line + 1;
        assert_int_equal(atoi(p), i);
        for (int j = 0; j < MSE_FEATURES; j++) {
            p = strchr(p, ',');
            assert_non_null(p);
            double d = strtod(++p, NULL) - want[i * MSE_FEATURES + j];
            total += d * d;
        }
        line = strchr(p, '\n');
    }
    return total / ((double)n * MSE_FEATURES);
}

/* An autoencoder on float32 IDX data, the images its own targets: the loss falls, no accuracy
 * is reported anywhere, and the test loss it prints is the mean squared error of the outputs
 * predict prints, recomputed here. Then a targets file of other values, and the errors. */
static void mse_trains_on_float_data(void **state)
{
    (void)state;
    float train[64 * MSE_FEATURES], test[16 * MSE_FEATURES], other[16 * MSE_FEATURES];
    mse_rows(train, 64, 0);
    mse_rows(test, 16, 100);
    for (int i = 0; i < 16 * MSE_FEATURES; i++)
        other[i] = 1 - test[i];
    assert_int_equal(write_idx_floats(at("mse-train"), 64, MSE_FEATURES, train), 0);
    assert_int_equal(write_idx_floats(at("mse-test"), 16, MSE_FEATURES, test), 0);
    assert_int_equal(write_idx_floats(at("mse-other"), 16, MSE_FEATURES, other), 0);
    run_result r = mse_run((const char *[]){"train", "--train-images", at("mse-train"),
                                            "--test-images", at("mse-test"), "--epochs", "40",
                                            "--batch", "8", "--lr", "0.01", "--validation", "0.25",
                                            "--save", at("mse.ckpt"), "--log", at("mse-log"),
                                            NULL});
    if (r.status != 0)
        fail_msg("train: %s", r.err);
    assert_null(strstr(r.out, "accuracy"));
    assert_non_null(strstr(r.out, "val_loss "));
    double first, last, printed;
    const char *e1 = strstr(r.out, "epoch 1/40");
    const char *e40 = strstr(r.out, "epoch 40/40");
    assert_true(e1 && e40);
    assert_int_equal(sscanf(strstr(e1, "loss ") + 5, "%lf", &first), 1);
    assert_int_equal(sscanf(strstr(e40, "loss ") + 5, "%lf", &last), 1);
    if (!(last < first / 4))
        fail_msg("the loss went from %g to %g in 40 epochs", first, last);
    const char *t = strstr(r.out, "test: loss ");
    assert_non_null(t);
    assert_int_equal(sscanf(t + 11, "%lf", &printed), 1);
    assert_non_null(strstr(t, "(mean squared error)"));
    run_result_free(&r);
    size_t len;
    char *csv = read_whole_file(at("mse-log/epochs.csv"), &len);
    assert_non_null(csv);
    assert_non_null(strstr(csv, "\n40,0.01,")); /* then loss,,val_loss,,seconds */
    const char *row = strstr(csv, "\n40,0.01,") + 9;
    row = strchr(row, ',');
    assert_true(row && row[1] == ',');
    free(csv);
    char *json = read_whole_file(at("mse-log/run.json"), &len);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"test\": {\"loss\": "));
    assert_null(strstr(json, "accuracy"));
    free(json);

    /* predict prints every output; their mean squared error is the loss eval printed. */
    r = mse_run((const char *[]){"predict", "--load", at("mse.ckpt"), "--test-images",
                                 at("mse-test"), NULL});
    if (r.status != 0)
        fail_msg("predict: %s", r.err);
    assert_true(strncmp(r.out, "index,output_0,output_1,", 24) == 0);
    double recomputed = mse_of_predictions(r.out, test, 16);
    run_result_free(&r);
    if (fabs(recomputed - printed) > 1e-5 * printed + 1e-9)
        fail_msg("test loss printed %.9g, recomputed from predict's outputs %.9g", printed,
                 recomputed);

    /* Targets from a file: eval against them. */
    r = mse_run((const char *[]){"eval", "--load", at("mse.ckpt"), "--test-images",
                                 at("mse-test"), "--test-targets", at("mse-other"), NULL});
    if (r.status != 0)
        fail_msg("eval: %s", r.err);
    assert_int_equal(sscanf(strstr(r.out, "test: loss ") + 11, "%lf", &printed), 1);
    run_result_free(&r);
    r = mse_run((const char *[]){"predict", "--load", at("mse.ckpt"), "--test-images",
                                 at("mse-test"), NULL});
    recomputed = mse_of_predictions(r.out, other, 16);
    run_result_free(&r);
    if (fabs(recomputed - printed) > 1e-5 * printed + 1e-9)
        fail_msg("test loss against the targets file %.9g, recomputed %.9g", printed, recomputed);

    /* Errors: k-fold, targets of the wrong size, a value that is not a number, targets for a
     * classifier. */
    r = cli((const char *[]){"eval", "--load", at("full.ckpt"), "--test-targets", at("mse-test"),
                             NULL});
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "mse-test: targets are for networks trained with loss mse, "
                                  "and tiny is a classifier"));
    run_result_free(&r);
    r = mse_run((const char *[]){"train", "--train-images", at("mse-train"), "--kfold", "3",
                                 NULL});
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "--kfold reports each fold's accuracy"));
    run_result_free(&r);
    float few[16 * 4] = {0};
    assert_int_equal(write_idx_floats(at("mse-few"), 16, 4, few), 0);
    r = mse_run((const char *[]){"eval", "--load", at("mse.ckpt"), "--test-images",
                                 at("mse-test"), "--test-targets", at("mse-few"), NULL});
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "mse-few: targets of 4 values, and network 'mse_dense' has 12 "
                                  "outputs"));
    run_result_free(&r);
    test[3] = NAN;
    assert_int_equal(write_idx_floats(at("mse-nan"), 16, MSE_FEATURES, test), 0);
    r = mse_run((const char *[]){"eval", "--load", at("mse.ckpt"), "--test-images", at("mse-nan"),
                                 NULL});
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "mse-nan: value 3 is not a finite number"));
    run_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(train_saves_logs_and_evaluates),
        cmocka_unit_test(interrupted_run_resumes_to_the_same_bytes),
        cmocka_unit_test(eval_and_predict),
        cmocka_unit_test(errors_are_clear),
        cmocka_unit_test(flags_need_values),
        cmocka_unit_test(version),
        cmocka_unit_test(diverging_loss_stops_training),
        cmocka_unit_test(full_disk_is_an_error),
        cmocka_unit_test(files_follow_the_umask),
        cmocka_unit_test(dying_gnuplot_cannot_kill_a_run),
        cmocka_unit_test(mse_trains_on_float_data),
    };
    return cmocka_run_group_tests_name("command line", tests, setup, teardown);
}
