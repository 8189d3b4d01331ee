/* libcnnrt: the runtime every cnnc backend shares (model interface, RNG, data, training). */
#ifndef CNNRT_H
#define CNNRT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- Random numbers: one seeded stream (xoshiro256**) for init, shuffling and dropout. ---- */
typedef struct cnn_rng {
    uint64_t s[4];
} cnn_rng;

void cnn_rng_seed(cnn_rng *r, uint64_t seed);
uint64_t cnn_rng_next(cnn_rng *r);
/* Uniform in [0, 1) with 24 random bits: exactly representable as float. */
float cnn_rng_uniform(cnn_rng *r);
/* Standard normal (Box-Muller on two uniforms). */
double cnn_rng_normal(cnn_rng *r);
/* Uniform integer in [0, n), without modulo bias. */
uint32_t cnn_rng_below(cnn_rng *r, uint32_t n);

/* Dropout masks: every backend draws them the same way, so one seed gives one set of masks.
 * In a training forward pass the dropout layers draw in network order; each draws one
 * cnn_rng_uniform() per element of its [n][h][w][c] input in memory order, and keeps the
 * element (scaled by 1/(1-rate)) when the draw is >= rate. */
static inline int cnn_dropout_keep(cnn_rng *r, float rate)
{
    return cnn_rng_uniform(r) >= rate;
}

/* ---- Training configuration: what a .net file's `train { }` block says. ---- */
/* crossentropy: a classifier (softmax outputs against labels); mse: mean squared error of the
 * outputs against float targets (regression, autoencoders); none: a network that is only run
 * (an imported one whose output is not a classifier's). */
typedef enum { CNN_LOSS_CROSSENTROPY, CNN_LOSS_NONE, CNN_LOSS_MSE } cnn_loss_kind;
typedef enum { CNN_OPTIM_SGD, CNN_OPTIM_RMSPROP, CNN_OPTIM_ADAM, CNN_OPTIM_ADAMW } cnn_optim_kind;
typedef enum {
    CNN_SCHED_CONSTANT,
    CNN_SCHED_STEP,
    CNN_SCHED_EXPONENTIAL,
    CNN_SCHED_COSINE
} cnn_sched_kind;

typedef struct cnn_train_cfg {
    cnn_loss_kind loss;
    cnn_optim_kind optimizer;
    double lr;
    double momentum;     /* sgd, rmsprop */
    int nesterov;        /* sgd */
    double rho;          /* rmsprop */
    double beta1, beta2; /* adam, adamw */
    double eps;          /* rmsprop, adam, adamw */
    double weight_decay; /* adamw */
    int batch, epochs;
    double validation; /* fraction of the training set held out at its end */
    cnn_sched_kind schedule;
    int sched_every;     /* step, exponential: epochs per decay */
    double sched_factor; /* step: lr multiplier; exponential: decay rate */
    double sched_alpha;  /* cosine: final lr as a fraction of the initial one */
    uint64_t seed;
} cnn_train_cfg;

/* Keras' defaults for `kind` (learning rate, betas, epsilon, ...) on top of cfg. */
void cnn_optim_defaults(cnn_train_cfg *cfg, cnn_optim_kind kind);
/* A whole default configuration: Adam 0.001, batch 32, 1 epoch, no validation, seed 1. */
void cnn_train_cfg_defaults(cnn_train_cfg *cfg);
const char *cnn_optim_name(cnn_optim_kind kind);
const char *cnn_sched_name(cnn_sched_kind kind);

/* ---- Tensors and the model interface that every backend implements. ---- */
typedef enum {
    CNN_INIT_ZEROS,
    CNN_INIT_ONES,
    CNN_INIT_GLOROT_UNIFORM,
    CNN_INIT_GLOROT_NORMAL,
    CNN_INIT_HE_UNIFORM,
    CNN_INIT_HE_NORMAL
} cnn_init_kind;

typedef struct cnn_tensor {
    const char *name; /* Keras-style, "conv2d_1/kernel" */
    int rank;
    int dims[4]; /* Keras layouts: conv kh x kw x in x out, dense in x out */
    size_t size;
    float *value;
    float *grad; /* NULL for non-trainable state (batchnorm moving statistics) */
    /* Optimizer state of a trainable tensor, owned by the backend so that generated code keeps
     * it in static buffers and checkpoints find it: SGD/RMSprop momentum and Adam's first
     * moment in slot[0], RMSprop's and Adam's second moment in slot[1]. */
    float *slot[2];
    cnn_init_kind init;
    int fan_in, fan_out;
    float l1, l2; /* regularization of this tensor, 0 when none */
} cnn_tensor;

typedef struct cnn_model cnn_model;

typedef struct cnn_model_ops {
    /* Runs n <= max_batch images x[n][h][w][c] forward into model->output[n][n_classes].
     * training != 0: dropout draws from rng, batchnorm normalizes with batch statistics and
     * updates its moving averages. training == 0: rng may be NULL. */
    void (*forward)(cnn_model *m, const float *x, int n, int training, cnn_rng *rng);
    /* The mean loss of the last forward pass, without regularization: cross-entropy against
     * labels[n], or (loss mse) the mean over images of the mean over outputs of the squared
     * difference from targets[n][n_classes]; each loss reads only its own argument. NULL,
     * with backward, in a network without a loss (loss none): it is only run, and cnn_fit and
     * cnn_evaluate refuse it. */
    double (*loss)(cnn_model *m, const int *labels, const float *targets, int n);
    /* Adds d(mean loss)/d(tensor) of the last forward pass into every trainable tensor's grad.
     * The caller zeroes the gradients first (cnn_zero_grad). */
    void (*backward)(cnn_model *m, const int *labels, const float *targets, int n);
    void (*destroy)(cnn_model *m);
    /* For --check-numerics: the name of the first layer, in the order of the pass, whose
     * output of the last forward pass (backward = 0), or whose output's or parameters'
     * gradient of the last backward pass (backward = 1), holds a NaN or an infinity over the
     * n images; NULL if none does. */
    const char *(*first_not_finite)(cnn_model *m, int n, int backward);
} cnn_model_ops;

struct cnn_model {
    const char *name;
    const char *backend; /* "reference" or "compiled" */
    int in_h, in_w, in_c;
    int n_classes;
    int max_batch;
    int n_tensors;
    cnn_tensor *tensors;
    const float *output; /* [max_batch][n_classes], filled by forward */
    cnn_train_cfg train; /* the network's `train { }` block */
    const cnn_model_ops *ops;
};

static inline size_t cnn_input_size(const cnn_model *m)
{
    return (size_t)m->in_h * (size_t)m->in_w * (size_t)m->in_c;
}
void cnn_model_destroy(cnn_model *m);
void cnn_zero_grad(cnn_model *m);
/* Clears the optimizer state (momentum, moments) of every tensor. */
void cnn_zero_slots(cnn_model *m);
/* Initializes every tensor by its init kind (Keras' initializers) from rng. */
void cnn_init_tensors(cnn_model *m, cnn_rng *rng);
/* Copies every tensor value from src to dst; -1 if their tensor tables differ. */
int cnn_copy_tensors(cnn_model *dst, const cnn_model *src);
size_t cnn_param_count(const cnn_model *m, int trainable_only);
/* The regularization term sum(l1*|w| + l2*w^2) over all tensors. */
double cnn_penalty(const cnn_model *m);
/* Adds the gradient of cnn_penalty into every trainable tensor's grad. */
void cnn_penalty_grad(cnn_model *m);

/* ---- Data ---- */
typedef struct cnn_dataset {
    int n, h, w, c;
    uint8_t *images; /* n x h x w x c bytes (scaled by 1/255), or NULL: */
    float *values;   /* n x h x w x c floats, from an IDX file of float32, used as they are */
    uint8_t *labels; /* n */
    /* loss mse: n x target_size floats (an IDX file of float32, or of bytes scaled by 1/255),
     * or NULL: the images are the targets (an autoencoder) */
    float *targets;
    int target_size;
    char images_path[512], labels_path[512], targets_path[512]; /* for messages */
} cnn_dataset;

/* Loads an IDX image file (n x h x w, n x h x w x c, or n x features: bytes or float32) and
 * an idx1 label file, gzip-compressed or plain. labels_path may be NULL for unlabeled images
 * (labels all 0). On failure writes a message naming the file into err. */
int cnn_dataset_load(cnn_dataset *ds, const char *images_path, const char *labels_path,
                     char *err, size_t errlen);
/* Loads the targets of loss mse: an IDX file of n rows (bytes scaled by 1/255, or float32),
 * any shape after the first dimension. */
int cnn_dataset_load_targets(cnn_dataset *ds, const char *path, char *err, size_t errlen);
/* The targets of images idx[0..n) into t[n][size]: the targets file's rows, or the images
 * themselves as cnn_dataset_batch scales them (size must then be the image's). */
void cnn_dataset_targets(const cnn_dataset *ds, const int *idx, int n, float *t);
void cnn_dataset_free(cnn_dataset *ds);
/* Checks that ds fits m: image shape and labels below n_classes, or for loss mse targets of
 * the output's size (the images' own where there is no targets file); the message names the
 * file. */
int cnn_dataset_check(const cnn_dataset *ds, const cnn_model *m, char *err, size_t errlen);
/* The Fashion-MNIST class names, the default for 10-class networks. */
extern const char *const cnn_fashion_mnist_classes[10];
/* Splits n items into k folds after a seeded shuffle: fold `fold` (about n/k items) into val,
 * the rest into train (both in shuffled order). Every item is in exactly one fold. */
void cnn_kfold_split(int n, int k, int fold, uint64_t seed, int *train, int *n_train, int *val,
                     int *n_val);
/* Where the trainers look for the four IDX files without --data: Debian's package. */
#define CNN_DEFAULT_DATA_DIR "/usr/share/datasets/fashion-mnist"
/* DIR/NAME.gz if it exists, else DIR/NAME (the reader takes either). */
void cnn_data_file(char *out, size_t cap, const char *dir, const char *name);
/* The class names of a --classes file: one per line, blank lines skipped, exactly k of them;
 * NULL-terminated, free with cnn_class_names_free. NULL with a message naming the file. */
char **cnn_class_names_load(const char *path, int k, char *err, size_t errlen);
void cnn_class_names_free(char **names);
/* Images idx[0..n) as floats into x: bytes scaled to [0, 1], float32 files as they are. */
void cnn_dataset_batch(const cnn_dataset *ds, const int *idx, int n, float *x, int *labels);

/* ---- Optimizers and schedules ---- */
typedef struct cnn_optimizer cnn_optimizer;
/* An optimizer for m; it works on the model's slots as they are (cnn_zero_slots first for a
 * fresh start, a checkpoint's for a resumed one). */
cnn_optimizer *cnn_optimizer_new(cnn_model *m, const cnn_train_cfg *cfg);
/* Updates done so far (Adam's bias correction depends on it); set when resuming. */
long cnn_optimizer_steps(const cnn_optimizer *o);
void cnn_optimizer_set_steps(cnn_optimizer *o, long steps);
/* One update of every trainable tensor from its grad, at learning rate lr. */
void cnn_optimizer_step(cnn_optimizer *o, cnn_model *m, double lr);
void cnn_optimizer_free(cnn_optimizer *o);
/* The learning rate of epoch (0-based) under cfg's schedule. */
double cnn_schedule_lr(const cnn_train_cfg *cfg, int epoch);
/* Reads a schedule from a flag: constant | step[:EVERY[:FACTOR]] | exponential[:RATE[:EVERY]]
 * | cosine[:ALPHA]. Returns -1 (and leaves cfg alone) if the text is not one. */
int cnn_schedule_parse(cnn_train_cfg *cfg, const char *text);

/* ---- Training and evaluation ---- */
typedef struct cnn_eval {
    double loss; /* the mean loss plus regularization */
    double accuracy; /* top-1; NaN for a network trained with loss mse */
    int n;
} cnn_eval;

/* Where a training run stands, for checkpoints and --resume: with the same seed, a resumed run
 * continues exactly as the uninterrupted one would have. */
typedef struct cnn_train_state {
    int epoch;     /* epochs completed */
    long step;     /* optimizer updates done */
    cnn_rng shuffle, dropout;
} cnn_train_state;

typedef struct cnn_epoch_stats {
    int epoch; /* 1-based */
    double lr;
    cnn_eval train, val;
    double seconds;
    const cnn_train_state *state; /* after this epoch */
} cnn_epoch_stats;

/* Evaluates images idx[0..n) of ds in inference mode. confusion, if not NULL, receives
 * n_classes x n_classes counts [true][predicted] (added to, not cleared). */
cnn_eval cnn_evaluate(cnn_model *m, const cnn_dataset *ds, const int *idx, int n, long *confusion);
/* The predicted class of row b of m->output. */
int cnn_predicted(const cnn_model *m, int b);

typedef struct cnn_fit_opts {
    cnn_train_cfg cfg;
    int limit;    /* use only the first `limit` training images, 0 = all */
    int shuffle;  /* reshuffle every epoch from the seed */
    FILE *log;    /* one line per epoch; NULL for silence */
    int progress; /* redraw a progress bar on log while an epoch runs (for terminals) */
    /* Train on idx[0..n_idx) and validate on val[0..n_val) instead of the split of the first
     * `limit` images (k-fold cross-validation). */
    const int *idx, *val;
    int n_idx, n_val;
    /* Continue from here (epochs completed, optimizer steps, random streams); NULL: fresh. */
    const cnn_train_state *resume;
    /* Called after every epoch; a non-zero return stops training with that status. */
    int (*on_epoch)(const cnn_epoch_stats *s, const cnn_optimizer *o, void *ctx);
    void *ctx;
    /* Where training stopped on a loss that is not finite (when cnn_fit returns
     * CNN_FIT_NOT_FINITE); may be NULL. */
    struct cnn_fit_stop {
        int epoch, batch, batches; /* 1-based, of batches in the epoch */
        double loss;
        const char *layer; /* with check_numerics: where it first went wrong, or NULL */
        int in_backward;   /* that layer's gradient (1) or its output (0) */
    } *stop;
    /* After every forward and backward pass, look for the first layer that is not finite
     * (first_not_finite), and stop there as on a loss that is not. */
    int check_numerics;
} cnn_fit_opts;

/* cnn_fit's status when a batch's loss became NaN or infinite: it stops at once, before the
 * optimizer takes the step, so no weight and no checkpoint holds what that batch did. */
#define CNN_FIT_NOT_FINITE (-2)

/* Trains m on ds (validation = the last cfg.validation of the used images). Returns 0, -1 when
 * out of memory or m has no loss, CNN_FIT_NOT_FINITE, or what on_epoch returned. */
int cnn_fit(cnn_model *m, const cnn_dataset *ds, const cnn_fit_opts *opts);

/* Writes len bytes to path through path.tmp.XXXXXX beside it, fsync, rename, and an fsync of
 * the directory: a crash leaves the old file or the new one, never a mix; the file gets the
 * usual permissions (0666 less the umask). Returns 0 or -1 with a message naming path. */
int cnn_write_atomically(const char *path, const void *data, size_t len, char *err,
                         size_t errlen);

/* ---- Keras weight files (docs/interop.md) ---- */
/* Whether path names a Keras weight file: it ends in .h5 (Keras 2's save_weights layout) or
 * .weights.h5 (Keras 3's). cnn_checkpoint_load and _save then read and write it so. */
int cnn_keras_is_h5(const char *path);
/* The network's layers with tensors, in order, from the file's layers with weights (Keras 2:
 * its layer_names and weight_names; Keras 3: layers/NAME/vars/I, NAME as Keras 3 names the
 * layer); every shape checked, m unchanged on any error. */
int cnn_keras_load(const char *path, cnn_model *m, char *err, size_t errlen);
/* The weights (no optimizer state) in the layout Keras' load_weights reads, atomically. */
int cnn_keras_save(const char *path, const cnn_model *m, char *err, size_t errlen);

/* ---- Checkpoints (docs/checkpoint.md) ---- */
/* A stable 64-bit fingerprint of the network: its name and its tensor table (names, shapes). */
uint64_t cnn_fingerprint(const cnn_model *m);
/* Writes every tensor of m (and, with state, the optimizer slots and the training state) to
 * path atomically: a temporary file, fsync, rename. Returns 0 or -1 with a message in err. */
int cnn_checkpoint_save(const char *path, const cnn_model *m, const cnn_train_state *state,
                        char *err, size_t errlen);
/* Reads a checkpoint into m; state (if not NULL) receives the training state, and has_state
 * whether the file had one. Refuses another network's checkpoint, a truncated or corrupt
 * file, with a message naming the file. m is unchanged on failure. */
int cnn_checkpoint_load(const char *path, cnn_model *m, cnn_train_state *state, int *has_state,
                        char *err, size_t errlen);

/* ---- Pictures (gnuplot) ---- */
int cnn_have_gnuplot(void);
/* Draws training.png, confusion.png and kfold.png in dir from the logs found there; written
 * receives the files' names. -1 with a message (naming the log) when a log is malformed or
 * gnuplot is missing. */
int cnn_plot_run(const char *dir, char *written, size_t wlen, char *err, size_t errlen);
/* One chart comparing the runs' validation (else training) accuracy and loss per epoch. */
int cnn_plot_compare(const char *png, int n, char *const *dirs, char *err, size_t errlen);

/* ---- Threads (runtime/parallel.c) ----
 * Compiled networks split each batch between the threads of one process-wide pool; OpenBLAS
 * then runs single-threaded inside each of them. Not for the interpreted reference. */
#define CNN_MAX_THREADS 64
/* Sizes the pool (1: no worker threads) and sets OpenBLAS to one thread. The workers take the
 * floating-point mode of the calling thread. -1 with a message on failure. */
int cnn_set_threads(int threads, char *err, size_t errlen);
int cnn_get_threads(void);
/* The cores this process may use (its CPU affinity), at most CNN_MAX_THREADS: the command
 * line's default. */
int cnn_default_threads(void);
/* fn(arg, part, parts) once for each part = 0 .. parts-1, concurrently, the caller taking
 * part 0; parts = min(pool size, max_parts). Returns when all are done. Not reentrant. */
typedef void (*cnn_part_fn)(void *arg, int part, int parts);
void cnn_parallel(cnn_part_fn fn, void *arg, int max_parts);
/* Inside fn: returns when every part of the region has reached it. */
void cnn_barrier(void);

/* ---- Matrix products (runtime/gemm.c) ----
 * c[m][n] = bias + a[m][k] . b[k][n], row-major with leading dimensions; bias (n values, one
 * per column) may be NULL for zero. Vector tiles (AVX-512, else AVX2) when the CPU has them
 * and n is a multiple of the vector width, else OpenBLAS. */
void cnn_gemm_bias(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                   const float *bias, float *c, int ldc);
/* c[m][n] += a^T . b with a [k][m] and b [k][n] (gradients of weights: sums over images). */
void cnn_gemm_tn_acc(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                     float *c, int ldc);
/* A stride-1 convolution of one image with no im2col: out[y][x][0..n) = bias + the sum over
 * taps (ky, kx) and channels c < k of in[y + ky][x + kx][c] . w[ky][kx][c][0..n), for y < oh,
 * x < ow; `in` is the input with its padding already around it, oh + kh - 1 rows of
 * ow + kw - 1 pixels of k channels. Each element sums in the order of the im2col product
 * (taps, then channels, from the bias), so either gives the same bits. */
void cnn_conv_s1(int oh, int ow, int n, int kh, int kw, int k, const float *in, const float *w,
                 const float *bias, float *out);
/* The tiles' vector width in floats (16: AVX-512, 8: AVX2, 0: OpenBLAS instead). want >= 0
 * sets it, for tests: 0 forces OpenBLAS, 8 or 16 the widest tiles the CPU has up to that;
 * -1 only asks. */
int cnn_gemm_tiles(int want);

/* ---- Command line shared by `cnnc run` and compiled trainers ---- */
/* Makes a model for batch size `batch`; NULL with a message on stderr on failure. */
typedef cnn_model *(*cnn_model_factory)(void *ctx, int batch);
/* Runs `train ...` etc. as given in argv (argv[0] is the subcommand). Returns an exit status. */
int cnn_cli_run(const char *prog, int argc, char **argv, cnn_model_factory make, void *ctx,
                const cnn_train_cfg *cfg);
/* Flush-to-zero (FTZ/DAZ) in the calling thread, before cnn_set_threads starts the pool. */
void cnn_flush_denormals(void);
/* `plot [--compare OUT.png] DIR...` (argv[0] is "plot"). */
int cnn_plot_cli(const char *prog, int argc, char **argv);
/* main() of a compiled trainer: `PROG train ...`, the same commands as `cnnc run FILE.net`. */
int cnn_cli_main(int argc, char **argv, cnn_model_factory make, void *ctx,
                 const cnn_train_cfg *cfg);

#endif
