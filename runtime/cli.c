/* The command line shared by `cnnc run FILE.net ...` and compiled trainers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include <cblas.h>

#include "cnnrt.h"

#define DEFAULT_DATA_DIR "/usr/share/datasets/fashion-mnist"

typedef struct cli_opts {
    const char *data_dir;
    cnn_train_cfg cfg;
    int limit;
    int shuffle;
    int threads; /* 0: every core */
} cli_opts;

static void usage(FILE *out, const char *prog)
{
    fprintf(out,
            "usage: %s train [options]\n"
            "  --data DIR        directory of the four IDX files (default " DEFAULT_DATA_DIR ")\n"
            "  --epochs N        epochs (default: the .net file's train block)\n"
            "  --batch N         batch size\n"
            "  --lr X            learning rate\n"
            "  --validation F    fraction held out at the end of the training set\n"
            "  --seed N          seed for initialization, shuffling and dropout\n"
            "  --limit N         use only the first N training images\n"
            "  --no-shuffle      keep the file order in every epoch\n"
            "  --threads N       threads for the whole run, BLAS included (default: every core)\n",
            prog);
}

/* Parses a numeric flag value; prints what is wrong and returns -1 on a bad one. */
static int flag_number(const char *prog, const char *flag, const char *text, double min,
                       double max, int whole, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || v < min || v > max || (whole && v != (long)v)) {
        fprintf(stderr, "%s: error: %s needs %s between %g and %g, got '%s'\n", prog, flag,
                whole ? "a whole number" : "a number", min, max, text);
        return -1;
    }
    *out = v;
    return 0;
}

/* Returns 0 to go on, 1 after --help, -1 on a bad flag (already reported). */
static int parse_flags(const char *prog, int argc, char **argv, cli_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        double v;
        if (strcmp(f, "--no-shuffle") == 0) {
            o->shuffle = 0;
            continue;
        }
        if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
            usage(stdout, prog);
            return 1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "%s: error: unknown option or missing value: '%s'\n", prog, f);
            usage(stderr, prog);
            return -1;
        }
        const char *val = argv[++i];
        if (strcmp(f, "--data") == 0)
            o->data_dir = val;
        else if (strcmp(f, "--epochs") == 0) {
            if (flag_number(prog, f, val, 1, 1e6, 1, &v))
                return -1;
            o->cfg.epochs = (int)v;
        } else if (strcmp(f, "--batch") == 0) {
            if (flag_number(prog, f, val, 1, 65536, 1, &v))
                return -1;
            o->cfg.batch = (int)v;
        } else if (strcmp(f, "--lr") == 0) {
            if (flag_number(prog, f, val, 1e-12, 1e3, 0, &v))
                return -1;
            o->cfg.lr = v;
        } else if (strcmp(f, "--validation") == 0) {
            if (flag_number(prog, f, val, 0, 0.99, 0, &v))
                return -1;
            o->cfg.validation = v;
        } else if (strcmp(f, "--seed") == 0) {
            if (flag_number(prog, f, val, 0, 9007199254740992.0, 1, &v))
                return -1;
            o->cfg.seed = (uint64_t)v;
        } else if (strcmp(f, "--threads") == 0) {
            if (flag_number(prog, f, val, 1, 1024, 1, &v))
                return -1;
            o->threads = (int)v;
        } else if (strcmp(f, "--limit") == 0) {
            if (flag_number(prog, f, val, 1, 1e9, 1, &v))
                return -1;
            o->limit = (int)v;
        } else {
            fprintf(stderr, "%s: error: unknown option '%s'\n", prog, f);
            usage(stderr, prog);
            return -1;
        }
    }
    return 0;
}

/* DIR/NAME.gz if it exists, else DIR/NAME (the reader takes either). */
static void data_path(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s.gz", dir, name);
    if (access(out, R_OK) != 0)
        snprintf(out, cap, "%s/%s", dir, name);
}

static int load_split(cnn_dataset *ds, const char *dir, const char *images, const char *labels,
                      const char *prog)
{
    char ip[1024], lp[1024], err[1200];
    data_path(ip, sizeof ip, dir, images);
    data_path(lp, sizeof lp, dir, labels);
    if (cnn_dataset_load(ds, ip, lp, err, sizeof err)) {
        fprintf(stderr, "%s: error: %s\n", prog, err);
        if (strcmp(dir, DEFAULT_DATA_DIR) == 0)
            fprintf(stderr, "%s: the default data comes from Debian's package: "
                            "apt-get install dataset-fashion-mnist\n", prog);
        return -1;
    }
    return 0;
}

static int cmd_train(const char *prog, cli_opts *o, cnn_model_factory make, void *ctx)
{
#if defined(__SSE__)
    /* Flush denormals to zero: they slow training severalfold and change no accuracy. */
    _mm_setcsr(_mm_getcsr() | 0x8040);
#endif
    cnn_dataset train = {0}, test = {0};
    if (load_split(&train, o->data_dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", prog))
        return 1;
    cnn_model *m = make(ctx, o->cfg.batch);
    if (!m) {
        cnn_dataset_free(&train);
        return 1;
    }
    char err[1200];
    if (cnn_dataset_check(&train, m, err, sizeof err)) {
        fprintf(stderr, "%s: error: %s\n", prog, err);
        cnn_model_destroy(m);
        cnn_dataset_free(&train);
        return 1;
    }
    cnn_rng init_rng;
    cnn_rng_seed(&init_rng, o->cfg.seed);
    cnn_init_tensors(m, &init_rng);
    int n = o->limit > 0 && o->limit < train.n ? o->limit : train.n;
    /* Only BLAS runs in parallel today, so its thread count is the run's. */
    if (o->threads > 0)
        openblas_set_num_threads(o->threads);
    printf("%s: training '%s' (%s backend) on %d images from %s\n", prog, m->name, m->backend, n,
           o->data_dir);
    printf("%s: %d thread%s; BLAS: %s\n", prog, openblas_get_num_threads(),
           openblas_get_num_threads() == 1 ? "" : "s", openblas_get_config());
    printf("%s: %s lr %g, batch %d, %d epochs, validation %g, schedule %s, seed %llu\n", prog,
           cnn_optim_name(o->cfg.optimizer), o->cfg.lr, o->cfg.batch, o->cfg.epochs,
           o->cfg.validation, cnn_sched_name(o->cfg.schedule), (unsigned long long)o->cfg.seed);
    cnn_fit_opts fo = {.cfg = o->cfg, .limit = o->limit, .shuffle = o->shuffle, .log = stdout};
    int rc = cnn_fit(m, &train, &fo);
    if (rc == 0 && load_split(&test, o->data_dir, "t10k-images-idx3-ubyte",
                              "t10k-labels-idx1-ubyte", prog) == 0) {
        if (cnn_dataset_check(&test, m, err, sizeof err) == 0) {
            int *idx = malloc(sizeof(int) * (size_t)test.n);
            if (idx) {
                for (int i = 0; i < test.n; i++)
                    idx[i] = i;
                cnn_eval e = cnn_evaluate(m, &test, idx, test.n);
                printf("test: loss %.4f  accuracy %.4f  (%d images)\n", e.loss, e.accuracy, e.n);
                free(idx);
            }
        } else
            fprintf(stderr, "%s: error: %s\n", prog, err);
    }
    cnn_dataset_free(&test);
    cnn_dataset_free(&train);
    cnn_model_destroy(m);
    if (rc)
        fprintf(stderr, "%s: error: out of memory while training\n", prog);
    return rc ? 1 : 0;
}

int cnn_cli_run(const char *prog, int argc, char **argv, cnn_model_factory make, void *ctx,
                const cnn_train_cfg *cfg)
{
    cli_opts o = {.data_dir = DEFAULT_DATA_DIR, .cfg = *cfg, .shuffle = 1};
    if (argc < 1) {
        usage(stderr, prog);
        return 2;
    }
    if (strcmp(argv[0], "train") != 0) {
        fprintf(stderr, "%s: error: unknown command '%s'\n", prog, argv[0]);
        usage(stderr, prog);
        return 2;
    }
    int rc = parse_flags(prog, argc, argv, &o);
    if (rc)
        return rc < 0 ? 2 : 0;
    return cmd_train(prog, &o, make, ctx);
}

int cnn_cli_main(int argc, char **argv, cnn_model_factory make, void *ctx,
                 const cnn_train_cfg *cfg)
{
    const char *prog = argc > 0 ? strrchr(argv[0], '/') : NULL;
    prog = prog ? prog + 1 : (argc > 0 ? argv[0] : "trainer");
    return cnn_cli_run(prog, argc - 1, argv + 1, make, ctx, cfg);
}
