/* The command line shared by `cnnc run FILE.net ...` and compiled trainers:
 * train, eval and predict, with their flags. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "cnnrt.h"
#include "report.h"



typedef struct cli {
    const char *prog, *command;
    cnn_train_cfg cfg;
    const char *data_dir;
    const char *train_images, *train_labels, *test_images, *test_labels;
    const char *train_targets, *test_targets; /* loss mse */
    const char *classes_file, *save, *load, *log_dir;
    int limit, shuffle, threads, kfold, resume, check_numerics;
    char **class_names; /* n_classes of them */
    int n_names;
} cli;

static void usage(FILE *out, const char *prog)
{
    fprintf(out,
            "usage: %s train [options]     train; then evaluate on the test set\n"
            "       %s eval --load FILE    loss, accuracy and confusion matrix on the test set\n"
            "       %s predict --load FILE the class of each test image, as CSV\n"
            "       %s plot DIR...         pictures of the logs in each DIR (--log's)\n"
            "       %s plot --compare OUT.png DIR...  their accuracy and loss on one chart\n"
            "data:\n"
            "  --data DIR            the four IDX files (default " CNN_DEFAULT_DATA_DIR ")\n"
            "  --train-images FILE --train-labels FILE --test-images FILE --test-labels FILE\n"
            "                        (images: IDX of bytes, scaled by 1/255, or of float32)\n"
            "  --train-targets FILE --test-targets FILE\n"
            "                        loss mse: IDX of float32 (or bytes, scaled) targets, one row\n"
            "                        per image; without them the images are the targets\n"
            "  --limit N             use only the first N images (training set; test set for\n"
            "                        predict)\n"
            "  --classes FILE        class names, one per line (default: Fashion-MNIST's)\n"
            "training (these override the .net file's train block):\n"
            "  --epochs N --batch N --lr X --validation F --seed N\n"
            "  --schedule S          constant | step[:EVERY[:FACTOR]] | exponential[:RATE[:EVERY]]\n"
            "                        | cosine[:ALPHA]\n"
            "  --no-shuffle          keep the file order in every epoch\n"
            "  --kfold K             K-fold cross-validation on the training set\n"
            "  --check-numerics      after every pass, stop at the first layer whose output or\n"
            "                        gradient is NaN or infinite, and name it\n"
            "checkpoints:\n"
            "  --save FILE           after every epoch (atomically)\n"
            "  --load FILE           start from these weights (train) or use them (eval, predict)\n"
            "  --resume              continue the run saved in --load (or --save): epochs,\n"
            "                        optimizer state and random streams\n"
            "output:\n"
            "  --log DIR             epochs.csv, run.json, confusion.csv (eval.json for eval)\n"
            "  --threads N           threads splitting each batch (default: the cores it may use)\n",
            prog, prog, prog, prog, prog);
}

static int bad_flag(cli *c, const char *flag, const char *val, const char *want)
{
    fprintf(stderr, "%s: error: %s needs %s, got '%s'\n", c->prog, flag, want, val);
    return -1;
}

static int number(cli *c, const char *flag, const char *text, double min, double max, int whole,
                  double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || v < min || v > max || (whole && v != floor(v))) {
        char want[96];
        snprintf(want, sizeof want, "%s from %g to %g", whole ? "a whole number" : "a number", min,
                 max);
        return bad_flag(c, flag, text, want);
    }
    *out = v;
    return 0;
}

/* Returns 0 to go on, 1 after --help, -1 on a bad flag (already reported). */
static int parse_flags(cli *c, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        double v;
        if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
            usage(stdout, c->prog);
            return 1;
        }
        if (strcmp(f, "--no-shuffle") == 0) {
            c->shuffle = 0;
            continue;
        }
        if (strcmp(f, "--resume") == 0) {
            c->resume = 1;
            continue;
        }
        if (strcmp(f, "--check-numerics") == 0) {
            c->check_numerics = 1;
            continue;
        }
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        struct {
            const char *name;
            const char **dst;
            const char *what;
        } paths[] = {{"--data", &c->data_dir, "a directory"},
                     {"--train-images", &c->train_images, "a file"},
                     {"--train-labels", &c->train_labels, "a file"},
                     {"--test-images", &c->test_images, "a file"},
                     {"--test-labels", &c->test_labels, "a file"},
                     {"--train-targets", &c->train_targets, "a file"},
                     {"--test-targets", &c->test_targets, "a file"},
                     {"--classes", &c->classes_file, "a file"},
                     {"--save", &c->save, "a file"},
                     {"--load", &c->load, "a file"},
                     {"--log", &c->log_dir, "a directory"}};
        int matched = 0;
        for (size_t k = 0; k < sizeof paths / sizeof paths[0]; k++)
            if (strcmp(f, paths[k].name) == 0) {
                if (!val) {
                    fprintf(stderr, "%s: error: %s needs %s\n", c->prog, f, paths[k].what);
                    return -1;
                }
                *paths[k].dst = val;
                matched = 1;
            }
        if (matched) {
            i++;
            continue;
        }
        int numeric = strcmp(f, "--epochs") == 0 || strcmp(f, "--batch") == 0 ||
                      strcmp(f, "--lr") == 0 || strcmp(f, "--validation") == 0 ||
                      strcmp(f, "--seed") == 0 || strcmp(f, "--limit") == 0 ||
                      strcmp(f, "--threads") == 0 || strcmp(f, "--kfold") == 0 ||
                      strcmp(f, "--schedule") == 0;
        if (!numeric) {
            fprintf(stderr, "%s: error: unknown option '%s'\n", c->prog, f);
            usage(stderr, c->prog);
            return -1;
        }
        if (!val) {
            fprintf(stderr, "%s: error: %s needs %s\n", c->prog, f,
                    strcmp(f, "--schedule") == 0 ? "a schedule (like step:5:0.5)"
                    : strcmp(f, "--lr") == 0 || strcmp(f, "--validation") == 0 ? "a number"
                                                                              : "a whole number");
            return -1;
        }
        i++;
        if (strcmp(f, "--schedule") == 0) {
            if (cnn_schedule_parse(&c->cfg, val))
                return bad_flag(c, f, val, "constant, step[:EVERY[:FACTOR]], "
                                           "exponential[:RATE[:EVERY]] or cosine[:ALPHA]");
            continue;
        }
        if (strcmp(f, "--lr") == 0) {
            if (number(c, f, val, 1e-12, 1e3, 0, &v))
                return -1;
            c->cfg.lr = v;
            continue;
        }
        if (strcmp(f, "--validation") == 0) {
            if (number(c, f, val, 0, 0.99, 0, &v))
                return -1;
            c->cfg.validation = v;
            continue;
        }
        double max = strcmp(f, "--seed") == 0 ? 9007199254740992.0 : 1e9;
        double min = strcmp(f, "--seed") == 0 ? 0 : strcmp(f, "--kfold") == 0 ? 2 : 1;
        if (number(c, f, val, min, max, 1, &v))
            return -1;
        if (strcmp(f, "--epochs") == 0)
            c->cfg.epochs = (int)v;
        else if (strcmp(f, "--batch") == 0)
            c->cfg.batch = (int)v;
        else if (strcmp(f, "--seed") == 0)
            c->cfg.seed = (uint64_t)v;
        else if (strcmp(f, "--limit") == 0)
            c->limit = (int)v;
        else if (strcmp(f, "--threads") == 0)
            c->threads = (int)v;
        else
            c->kfold = (int)v;
    }
    return 0;
}

/* ---- data ---- */

void cnn_data_file(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s.gz", dir, name);
    if (access(out, R_OK) != 0)
        snprintf(out, cap, "%s/%s", dir, name);
}

static int load_split(cli *c, cnn_dataset *ds, int test, int labeled, const cnn_model *m)
{
    char ip[1024], lp[1024], err[1200];
    const char *images = test ? c->test_images : c->train_images;
    const char *labels = test ? c->test_labels : c->train_labels;
    const char *targets = test ? c->test_targets : c->train_targets;
    int mse = m->train.loss == CNN_LOSS_MSE; /* targets, not labels */
    if (targets && !mse) {
        fprintf(stderr, "%s: error: %s: targets are for networks trained with loss mse, and %s "
                        "is a classifier (its labels: --%s-labels)\n", c->prog, targets,
                m->name, test ? "test" : "train");
        return -1;
    }
    cnn_data_file(ip, sizeof ip, c->data_dir, test ? "t10k-images-idx3-ubyte" : "train-images-idx3-ubyte");
    cnn_data_file(lp, sizeof lp, c->data_dir, test ? "t10k-labels-idx1-ubyte" : "train-labels-idx1-ubyte");
    if (cnn_dataset_load(ds, images ? images : ip,
                         labeled && !mse ? (labels ? labels : lp) : NULL, err, sizeof err) ||
        (mse && targets && cnn_dataset_load_targets(ds, targets, err, sizeof err)) ||
        cnn_dataset_check(ds, m, err, sizeof err)) {
        fprintf(stderr, "%s: error: %s\n", c->prog, err);
        if (strcmp(c->data_dir, CNN_DEFAULT_DATA_DIR) == 0 && !images && access(ip, R_OK) != 0)
            fprintf(stderr, "%s: the default data comes from Debian's package: "
                            "apt-get install dataset-fashion-mnist\n", c->prog);
        cnn_dataset_free(ds);
        return -1;
    }
    return 0;
}

static int load_class_names(cli *c, int k)
{
    char err[1200];
    if (c->classes_file) {
        c->class_names = cnn_class_names_load(c->classes_file, k, err, sizeof err);
        if (!c->class_names) {
            fprintf(stderr, "%s: error: %s\n", c->prog, err);
            return -1;
        }
        c->n_names = k;
        return 0;
    }
    c->class_names = calloc((size_t)k + 1, sizeof *c->class_names);
    if (!c->class_names)
        return -1;
    if (k == 10) {
        for (int i = 0; i < 10; i++)
            c->class_names[i] = strdup(cnn_fashion_mnist_classes[i]);
    } else
        for (int i = 0; i < k; i++) {
            char name[24];
            snprintf(name, sizeof name, "class %d", i);
            c->class_names[i] = strdup(name);
        }
    c->n_names = k;
    return 0;
}

/* ---- plot ---- */

int cnn_plot_cli(const char *prog, int argc, char **argv)
{
    const char *compare = NULL;
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "--compare") == 0) {
        compare = argv[2];
        first = 3;
    }
    if (first >= argc) {
        fprintf(stderr, "%s: error: plot needs run directories (what --log wrote)\n", prog);
        return 2;
    }
    char err[1400], written[4096];
    if (compare) {
        if (cnn_plot_compare(compare, argc - first, argv + first, err, sizeof err)) {
            fprintf(stderr, "%s: error: %s\n", prog, err);
            return 1;
        }
        printf("%s: wrote %s\n", prog, compare);
        return 0;
    }
    for (int i = first; i < argc; i++) {
        if (cnn_plot_run(argv[i], written, sizeof written, err, sizeof err)) {
            fprintf(stderr, "%s: error: %s\n", prog, err);
            return 1;
        }
        printf("%s: wrote %s\n", prog, written);
    }
    return 0;
}

/* After a logged run: its pictures, if gnuplot is there; never a reason to fail the run. */
static void plot_after_run(const cli *c, const cnn_model *m)
{
    if (!c->log_dir)
        return;
    if (m->train.loss == CNN_LOSS_MSE) {
        printf("%s: note: no pictures: the charts are a classifier's; this loss mse run's "
               "losses are in %s/epochs.csv\n", c->prog, c->log_dir);
        return;
    }
    char err[1400], written[4096];
    if (!cnn_have_gnuplot()) {
        printf("%s: note: no pictures: gnuplot is not installed (apt-get install gnuplot-nox)\n",
               c->prog);
        return;
    }
    if (cnn_plot_run(c->log_dir, written, sizeof written, err, sizeof err))
        printf("%s: note: no pictures: %s\n", c->prog, err);
    else
        printf("%s: wrote %s\n", c->prog, written);
}

/* ---- train ---- */

typedef struct run {
    cli *c;
    cnn_model *m;
    FILE *csv;
    int failed;
} run;

static int on_epoch(const cnn_epoch_stats *s, const cnn_optimizer *o, void *ctx)
{
    (void)o;
    run *r = ctx;
    /* The checkpoint first: a log that cannot be written stops the run with it saved. */
    if (r->c->save) {
        char err[1200];
        if (cnn_checkpoint_save(r->c->save, r->m, s->state, err, sizeof err)) {
            fprintf(stderr, "%s: error: %s\n", r->c->prog, err);
            return 1;
        }
    }
    if (r->csv) {
        cnn_write_epoch_csv(r->csv, s, r->m->train.loss == CNN_LOSS_CROSSENTROPY);
        if (cnn_log_check(r->c->prog, r->csv, r->c->log_dir, "epochs.csv"))
            return 1;
    }
    return 0;
}

static void json_config(FILE *f, const cli *c, const cnn_model *m)
{
    const cnn_train_cfg *t = &c->cfg;
    fputs("  \"network\": ", f);
    cnn_json_string(f, m->name);
    fputs(",\n  \"backend\": ", f);
    cnn_json_string(f, m->backend);
    fprintf(f, ",\n  \"parameters\": %zu,\n  \"trainable_parameters\": %zu,\n",
            cnn_param_count(m, 0), cnn_param_count(m, 1));
    fprintf(f, "  \"threads\": %d,\n  \"blas\": ", cnn_get_threads());
    cnn_json_string(f, openblas_get_config());
    fprintf(f, ",\n  \"config\": {\"optimizer\": \"%s\", \"lr\": %.9g, \"batch\": %d, "
               "\"epochs\": %d, \"validation\": %.9g, \"schedule\": \"%s\", \"seed\": %llu, "
               "\"limit\": %d, \"shuffle\": %s},\n",
            cnn_optim_name(t->optimizer), t->lr, t->batch, t->epochs, t->validation,
            cnn_sched_name(t->schedule), (unsigned long long)t->seed, c->limit,
            c->shuffle ? "true" : "false");
}

static void print_header(const cli *c, const cnn_model *m, int n)
{
    printf("%s: %s '%s' (%s backend) on %d images; %d thread%s; BLAS: %s\n", c->prog,
           strcmp(c->command, "train") == 0 ? "training" : "evaluating", m->name, m->backend, n,
           cnn_get_threads(), cnn_get_threads() == 1 ? "" : "s",
           openblas_get_config());
}

/* Test-set evaluation with the confusion matrix, printed and (with --log) written. */
static int evaluate_test(cli *c, cnn_model *m, const cnn_dataset *test, FILE *json, cnn_eval *out)
{
    int k = m->n_classes;
    long *conf = calloc((size_t)k * k, sizeof *conf);
    int *idx = malloc(sizeof(int) * (size_t)test->n);
    if (!conf || !idx) {
        free(conf);
        free(idx);
        return -1;
    }
    for (int i = 0; i < test->n; i++)
        idx[i] = i;
    cnn_eval e = cnn_evaluate(m, test, idx, test->n, conf);
    if (m->train.loss == CNN_LOSS_MSE) { /* no classes: the loss says it all */
        printf("test: loss %.6g (mean squared error)  (%d images)\n", e.loss, e.n);
        if (json) {
            fputs("  \"test\": ", json);
            cnn_json_eval(json, &e);
            fputs(",\n", json);
        }
        if (out)
            *out = e;
        free(conf);
        free(idx);
        return 0;
    }
    printf("test: loss %.4f  accuracy %.4f  (%d images)\n", e.loss, e.accuracy, e.n);
    cnn_print_confusion(stdout, conf, k, (const char *const *)c->class_names);
    if (json) {
        fputs("  \"test\": ", json);
        cnn_json_eval(json, &e);
        fputs(",\n  \"confusion\": ", json);
        cnn_json_confusion(json, conf, k, (const char *const *)c->class_names);
        fputs(",\n", json);
    }
    int rc = 0;
    if (c->log_dir) {
        FILE *f = cnn_log_open(c->prog, c->log_dir, "confusion.csv");
        if (f)
            cnn_write_confusion_csv(f, conf, k, (const char *const *)c->class_names);
        rc = !f || cnn_log_close(c->prog, f, c->log_dir, "confusion.csv") ? -1 : 0;
    }
    if (out)
        *out = e;
    free(conf);
    free(idx);
    return rc;
}

static int kfold(cli *c, cnn_model *m, const cnn_dataset *train, FILE *json)
{
    int n = c->limit > 0 && c->limit < train->n ? c->limit : train->n, K = c->kfold;
    int *tr = malloc(sizeof(int) * (size_t)n), *va = malloc(sizeof(int) * (size_t)n);
    double *acc = calloc((size_t)K, sizeof(double)), *loss = calloc((size_t)K, sizeof(double));
    FILE *csv = c->log_dir ? cnn_log_open(c->prog, c->log_dir, "kfold.csv") : NULL;
    int rc = 0;
    if (c->log_dir && !csv)
        rc = 1;
    else if (!tr || !va || !acc || !loss) {
        rc = -1;
        goto done;
    }
    if (csv)
        fputs("fold,loss,accuracy,images\n", csv);
    printf("%s: %d-fold cross-validation on %d images, %d epochs per fold\n", c->prog, K, n,
           c->cfg.epochs);
    for (int f = 0; f < K; f++) {
        int n_tr, n_va;
        cnn_kfold_split(n, K, f, c->cfg.seed, tr, &n_tr, va, &n_va);
        /* A fresh network per fold. */
        cnn_rng init;
        cnn_rng_seed(&init, c->cfg.seed + (uint64_t)f);
        cnn_init_tensors(m, &init);
        cnn_fit_opts fo = {.cfg = c->cfg, .shuffle = c->shuffle, .log = stdout,
                           .progress = isatty(1), .idx = tr, .n_idx = n_tr, .val = va,
                           .n_val = n_va, .check_numerics = c->check_numerics};
        fo.cfg.seed = c->cfg.seed + (uint64_t)f;
        printf("fold %d/%d: training on %d images, validating on %d\n", f + 1, K, n_tr, n_va);
        if ((rc = cnn_fit(m, train, &fo)) != 0)
            goto done;
        cnn_eval e = cnn_evaluate(m, train, va, n_va, NULL);
        acc[f] = e.accuracy;
        loss[f] = e.loss;
        printf("fold %d/%d: loss %.4f  accuracy %.4f\n", f + 1, K, e.loss, e.accuracy);
        if (csv) {
            fprintf(csv, "%d,%.6f,%.6f,%d\n", f + 1, e.loss, e.accuracy, n_va);
            if (cnn_log_check(c->prog, csv, c->log_dir, "kfold.csv")) {
                rc = 1;
                goto done;
            }
        }
    }
    double ma = 0, ml = 0, sa = 0, sl = 0;
    for (int f = 0; f < K; f++) {
        ma += acc[f] / K;
        ml += loss[f] / K;
    }
    for (int f = 0; f < K; f++) {
        sa += (acc[f] - ma) * (acc[f] - ma) / K;
        sl += (loss[f] - ml) * (loss[f] - ml) / K;
    }
    printf("%d-fold: accuracy %.4f +- %.4f, loss %.4f +- %.4f (mean +- std over folds)\n", K, ma,
           sqrt(sa), ml, sqrt(sl));
    if (json) {
        fprintf(json, "  \"kfold\": {\"k\": %d, \"folds\": [", K);
        for (int f = 0; f < K; f++)
            fprintf(json, "%s{\"loss\": %.6f, \"accuracy\": %.6f}", f ? ", " : "", loss[f], acc[f]);
        fprintf(json, "], \"mean_accuracy\": %.6f, \"std_accuracy\": %.6f, \"mean_loss\": %.6f, "
                      "\"std_loss\": %.6f},\n", ma, sqrt(sa), ml, sqrt(sl));
    }
done:
    if (cnn_log_close(c->prog, csv, c->log_dir, "kfold.csv") && rc == 0)
        rc = 1;
    free(tr);
    free(va);
    free(acc);
    free(loss);
    return rc;
}

/* A resumed run continues its log: epochs.csv keeps its header and the rows of the epochs the
 * checkpoint has (a row written after the last checkpoint would be done again), then grows. */
static FILE *reopen_epochs_csv(const cli *c, int epochs_done)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/epochs.csv", c->log_dir);
    FILE *old = fopen(path, "r");
    char *kept = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&kept, &len);
    if (!mem) {
        if (old)
            fclose(old);
        return NULL;
    }
    char line[512];
    int header = 0;
    while (old && fgets(line, sizeof line, old)) {
        if (!header) {
            header = 1;
            fputs(line, mem);
        } else if (atoi(line) >= 1 && atoi(line) <= epochs_done)
            fputs(line, mem);
    }
    if (old)
        fclose(old);
    fclose(mem);
    FILE *f = cnn_log_open(c->prog, c->log_dir, "epochs.csv");
    if (f) {
        if (header)
            fwrite(kept, 1, len, f);
        else
            cnn_write_epoch_csv_header(f);
        fflush(f);
    }
    free(kept);
    return f;
}

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmd_train(cli *c, cnn_model *m)
{
    cnn_dataset train = {0}, test = {0};
    if (load_split(c, &train, 0, 1, m))
        return 1;
    int have_test = load_split(c, &test, 1, 1, m) == 0;
    int status = 1, n_used = c->limit > 0 && c->limit < train.n ? c->limit : train.n;
    if (c->limit > 0 && c->limit < c->cfg.batch) {
        fprintf(stderr, "%s: error: --limit %d is less than one batch (%d images)\n", c->prog,
                c->limit, c->cfg.batch);
        goto early;
    }
    if (c->kfold > n_used) {
        fprintf(stderr, "%s: error: --kfold %d needs at least %d images, and there are %d\n",
                c->prog, c->kfold, c->kfold, n_used);
        goto early;
    }
    if (c->kfold && m->train.loss == CNN_LOSS_MSE) {
        fprintf(stderr, "%s: error: --kfold reports each fold's accuracy, and %s (loss mse) has "
                        "none; it trains with a validation split\n", c->prog, m->name);
        goto early;
    }
    if (!have_test)
        fprintf(stderr, "%s: note: no test set, so no test evaluation at the end\n", c->prog);
    print_header(c, m, n_used);
    FILE *json = NULL;
    run r = {.c = c, .m = m};
    cnn_train_state resume;
    int resuming = 0;
    const char *from = c->load ? c->load : (c->resume ? c->save : NULL);
    if (c->resume && !from) {
        fprintf(stderr, "%s: error: --resume needs a checkpoint: --load FILE or --save FILE\n",
                c->prog);
        goto done;
    }
    if (from && !(c->resume && !c->load && access(from, F_OK) != 0)) {
        char err[1200];
        int has_state = 0;
        if (cnn_checkpoint_load(from, m, &resume, &has_state, err, sizeof err)) {
            fprintf(stderr, "%s: error: %s\n", c->prog, err);
            goto done;
        }
        if (c->resume && !has_state) {
            fprintf(stderr, "%s: error: %s: has weights but no training state to resume\n",
                    c->prog, from);
            goto done;
        }
        resuming = c->resume;
        printf("%s: %s %s\n", c->prog, resuming ? "resuming from" : "starting from", from);
        if (resuming)
            printf("%s: %d of %d epochs were done\n", c->prog, resume.epoch, c->cfg.epochs);
    } else {
        cnn_rng init;
        cnn_rng_seed(&init, c->cfg.seed);
        cnn_init_tensors(m, &init);
    }
    if (c->log_dir) {
        if (cnn_mkdirs(c->log_dir)) {
            fprintf(stderr, "%s: error: cannot create %s: %s\n", c->prog, c->log_dir,
                    strerror(errno));
            goto done;
        }
        json = cnn_log_open(c->prog, c->log_dir, "run.json");
        if (!c->kfold)
            r.csv = resuming ? reopen_epochs_csv(c, resume.epoch)
                             : cnn_log_open(c->prog, c->log_dir, "epochs.csv");
        if (r.csv && !resuming)
            cnn_write_epoch_csv_header(r.csv);
        if (!json || (!c->kfold && !r.csv))
            goto done; /* cnn_log_open said which file */
    }
    printf("%s: %s lr %g, batch %d, %d epochs, validation %g, schedule %s, seed %llu\n", c->prog,
           cnn_optim_name(c->cfg.optimizer), c->cfg.lr, c->cfg.batch, c->cfg.epochs,
           c->cfg.validation, cnn_sched_name(c->cfg.schedule), (unsigned long long)c->cfg.seed);
    if (json) {
        fputs("{\n", json);
        json_config(json, c, m);
    }
    double t0 = wall();
    int rc;
    if (c->kfold)
        rc = kfold(c, m, &train, json);
    else {
        struct cnn_fit_stop stop;
        cnn_fit_opts fo = {.cfg = c->cfg, .limit = c->limit, .shuffle = c->shuffle, .log = stdout,
                           .progress = isatty(1), .resume = resuming ? &resume : NULL,
                           .on_epoch = on_epoch, .ctx = &r, .stop = &stop,
                           .check_numerics = c->check_numerics};
        rc = cnn_fit(m, &train, &fo);
        if (rc == CNN_FIT_NOT_FINITE) {
            if (stop.layer)
                fprintf(stderr, "%s: error: %s's %s holds NaN or infinity in epoch %d, batch %d "
                                "of %d: training stopped\n", c->prog, stop.layer,
                        stop.in_backward ? "gradient" : "output", stop.epoch, stop.batch,
                        stop.batches);
            else
                fprintf(stderr, "%s: error: the loss became %s in epoch %d, batch %d of %d: "
                                "training stopped\n", c->prog,
                        isnan(stop.loss) ? "NaN" : "infinite", stop.epoch, stop.batch,
                        stop.batches);
            if (c->save && stop.epoch > 1)
                fprintf(stderr, "%s: %s holds the weights after epoch %d\n", c->prog, c->save,
                        stop.epoch - 1);
            fprintf(stderr, "%s: a lower --lr, or another optimizer, may train it\n", c->prog);
        }
    }
    if (rc == -1)
        fprintf(stderr, "%s: error: out of memory while training\n", c->prog);
    if (rc)
        goto done;
    cnn_eval te;
    if (have_test && !c->kfold && evaluate_test(c, m, &test, json, &te))
        goto done;
    if (json)
        fprintf(json, "  \"seconds\": %.3f\n}\n", wall() - t0);
    status = 0;
    if (cnn_log_close(c->prog, json, c->log_dir, "run.json"))
        status = 1;
    json = NULL;
    if (cnn_log_close(c->prog, r.csv, c->log_dir, "epochs.csv"))
        status = 1;
    r.csv = NULL;
    if (status == 0)
        plot_after_run(c, m);
done:
    if (json)
        fclose(json);
    if (r.csv)
        fclose(r.csv);
early:
    cnn_dataset_free(&test);
    cnn_dataset_free(&train);
    return status;
}

/* ---- eval, predict ---- */

static int load_weights(cli *c, cnn_model *m)
{
    if (!c->load) {
        fprintf(stderr, "%s: error: %s needs the weights: --load FILE\n", c->prog, c->command);
        return -1;
    }
    char err[1200];
    if (cnn_checkpoint_load(c->load, m, NULL, NULL, err, sizeof err)) {
        fprintf(stderr, "%s: error: %s\n", c->prog, err);
        return -1;
    }
    return 0;
}

static int cmd_eval(cli *c, cnn_model *m)
{
    cnn_dataset test = {0};
    if (load_weights(c, m) || load_split(c, &test, 1, 1, m))
        return 1;
    print_header(c, m, test.n);
    FILE *json = NULL;
    if (c->log_dir && cnn_mkdirs(c->log_dir) == 0)
        json = cnn_log_open(c->prog, c->log_dir, "eval.json");
    if (json) {
        fputs("{\n  \"checkpoint\": ", json);
        cnn_json_string(json, c->load);
        fputs(",\n", json);
        json_config(json, c, m);
    }
    int rc = evaluate_test(c, m, &test, json, NULL);
    if (json) {
        fputs("  \"done\": true\n}\n", json);
        if (cnn_log_close(c->prog, json, c->log_dir, "eval.json"))
            rc = -1;
    }
    if (!rc)
        plot_after_run(c, m);
    cnn_dataset_free(&test);
    return rc ? 1 : 0;
}

static int cmd_predict(cli *c, cnn_model *m)
{
    cnn_dataset ds = {0};
    /* Labels are optional: given --test-images alone, predict unlabeled images. */
    int labeled = !(c->test_images && !c->test_labels) && m->ops->loss &&
                  m->train.loss == CNN_LOSS_CROSSENTROPY;
    if (load_weights(c, m) || load_split(c, &ds, 1, labeled, m))
        return 1;
    int n = c->limit > 0 && c->limit < ds.n ? c->limit : ds.n;
    float *x = malloc(sizeof(float) * cnn_input_size(m) * (size_t)m->max_batch);
    int *idx = malloc(sizeof(int) * (size_t)m->max_batch), *labels = malloc(sizeof(int) * (size_t)m->max_batch);
    if (!x || !idx || !labels) {
        free(x), free(idx), free(labels);
        cnn_dataset_free(&ds);
        return 1;
    }
    /* Without a classifier's loss the output is not a class's probabilities: all of it, as it
     * is. */
    int classifier = m->train.loss == CNN_LOSS_CROSSENTROPY && m->ops->loss;
    if (!classifier) {
        printf("index");
        for (int j = 0; j < m->n_classes; j++)
            printf(",output_%d", j);
        putchar('\n');
    } else
        printf("index,predicted,class,probability%s\n", labeled ? ",label" : "");
    for (int start = 0; start < n; start += m->max_batch) {
        int bn = n - start < m->max_batch ? n - start : m->max_batch;
        for (int b = 0; b < bn; b++)
            idx[b] = start + b;
        cnn_dataset_batch(&ds, idx, bn, x, labels);
        m->ops->forward(m, x, bn, 0, NULL);
        for (int b = 0; b < bn && !classifier; b++) {
            printf("%d", start + b);
            for (int j = 0; j < m->n_classes; j++)
                printf(",%.9g", m->output[(size_t)b * m->n_classes + j]);
            putchar('\n');
        }
        for (int b = 0; b < bn && classifier; b++) {
            int p = cnn_predicted(m, b);
            printf("%d,%d,%s,%.6f", start + b, p, c->class_names[p],
                   m->output[(size_t)b * m->n_classes + p]);
            if (labeled)
                printf(",%d", labels[b]);
            putchar('\n');
        }
    }
    free(x), free(idx), free(labels);
    cnn_dataset_free(&ds);
    return 0;
}

int cnn_cli_run(const char *prog, int argc, char **argv, cnn_model_factory make, void *ctx,
                const cnn_train_cfg *cfg)
{
    cli c = {.prog = prog, .cfg = *cfg, .data_dir = CNN_DEFAULT_DATA_DIR, .shuffle = 1};
    if (argc < 1) {
        usage(stderr, prog);
        return 2;
    }
    c.command = argv[0];
    int (*cmd)(cli *, cnn_model *) = strcmp(argv[0], "train") == 0   ? cmd_train
                                     : strcmp(argv[0], "eval") == 0    ? cmd_eval
                                     : strcmp(argv[0], "predict") == 0 ? cmd_predict
                                                                       : NULL;
    if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        usage(stdout, prog);
        return 0;
    }
    if (strcmp(argv[0], "--version") == 0) {
        printf("%s (cnnc %s)\n", prog, CNNC_VERSION);
        return 0;
    }
    if (strcmp(argv[0], "plot") == 0) /* needs no network */
        return cnn_plot_cli(prog, argc, argv);
    if (!cmd) {
        fprintf(stderr, "%s: error: unknown command '%s' (train, eval or predict)\n", prog, argv[0]);
        usage(stderr, prog);
        return 2;
    }
    int rc = parse_flags(&c, argc, argv);
    if (rc)
        return rc < 0 ? 2 : 0;
    cnn_flush_denormals(); /* before the pool starts: its workers copy the mode */
    char err[160];
    if (cnn_set_threads(c.threads > 0 ? c.threads : cnn_default_threads(), err, sizeof err)) {
        fprintf(stderr, "%s: error: %s\n", prog, err);
        return 2;
    }
    cnn_model *m = make(ctx, cmd == cmd_train ? c.cfg.batch : 0);
    if (!m) {
        cnn_set_threads(1, err, sizeof err);
        return 1;
    }
    if (!m->ops->loss && cmd != cmd_predict) {
        fprintf(stderr, "%s: error: %s has no training loss (its train { } block says loss "
                        "none): it can predict, printing its outputs, but not %s\n", prog,
                m->name, c.command);
        cnn_set_threads(1, err, sizeof err);
        cnn_model_destroy(m);
        return 1;
    }
    int classifier = m->train.loss == CNN_LOSS_CROSSENTROPY && m->ops->loss;
    int status = !classifier ? cmd(&c, m) : load_class_names(&c, m->n_classes) ? 1 : cmd(&c, m);
    cnn_set_threads(1, err, sizeof err); /* joins the workers */
    for (int i = 0; c.class_names && i < c.n_names && i < m->n_classes; i++)
        free(c.class_names[i]);
    free(c.class_names);
    cnn_model_destroy(m);
    return status;
}

int cnn_cli_main(int argc, char **argv, cnn_model_factory make, void *ctx,
                 const cnn_train_cfg *cfg)
{
    const char *prog = argc > 0 ? strrchr(argv[0], '/') : NULL;
    prog = prog ? prog + 1 : (argc > 0 ? argv[0] : "trainer");
    return cnn_cli_run(prog, argc - 1, argv + 1, make, ctx, cfg);
}
