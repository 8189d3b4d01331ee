/* cnnc: the command line. Compiles .net files to C, prints summaries, trains with the reference. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "cnnrt.h"
#include "codegen.h"
#include "export.h"
#include "onnx_export.h"
#include "onnx_import.h"
#include "ir.h"
#include "reference.h"
#include "sizes.h"
#include "summary.h"

static void usage(FILE *out)
{
    fputs("usage: cnnc FILE.net -o OUT.c [-H OUT.h] [--batch N] [--max-memory BYTES]\n"
          "                                        compile to C (a trainer with main(), and\n"
          "                                        <name>_model() for embedding)\n"
          "       cnnc --summary FILE.net          print the layers, shapes, parameters, FLOPs\n"
          "       cnnc --check FILE.net            check the file; print nothing unless wrong\n"
          "         (both also take --batch N and --max-memory BYTES: the batch the sizes are\n"
          "         checked at, default the file's; the limit on the trainer's static memory,\n"
          "         default 2G; BYTES may end in K, M or G)\n"
          "       cnnc run [--max-memory BYTES] FILE.net COMMAND [flags]\n"
          "                                        train, eval or predict with the interpreted\n"
          "                                        reference (cnnc run FILE.net --help)\n"
          "       cnnc export FILE.net --weights W.ckpt -o NAME.c [-H NAME.h] [--plan]\n"
          "                  [--classes FILE] [--int8 [--calibrate N] [--data DIR | --train-images F]]\n"
          "                                        the trained network as standalone C99 for\n"
          "                                        inference, float or int8 (docs/deploy.md)\n"
          "       cnnc onnx FILE.net --weights W.ckpt -o NAME.onnx\n"
          "                                        the trained network as an ONNX model\n"
          "       cnnc import NAME.onnx -o NAME.net [--weights NAME.ckpt]\n"
          "                                        an ONNX model as a .net file and a\n"
          "                                        checkpoint (docs/interop.md)\n"
          "       cnnc plot DIR...                 pictures of the logs of runs (--log DIR)\n"
          "       cnnc plot --compare OUT.png DIR...  several runs on one chart\n"
          "       cnnc --version | --help\n",
          out);
}

/* What `cnnc run` needs to make the reference at the batch its flags ask for. */
typedef struct ref_ctx {
    cnn_ir *ir;
    const cnn_source *src;
    cnn_front_opts opts;
} ref_ctx;

static cnn_model *make_reference(void *ctx, int batch)
{
    ref_ctx *r = ctx;
    /* Batch 0: no training, any size will do; larger batches evaluate a little faster. */
    if (batch <= 0)
        batch = r->ir->train.batch > 256 ? r->ir->train.batch : 256;
    /* The reference holds the same buffers as the generated code, at the batch asked for:
     * the same limits apply. */
    cnn_diag d = {0};
    if (cnn_ir_check_sizes(r->ir, batch, r->opts.max_memory ? r->opts.max_memory
                                                            : CNN_DEFAULT_MAX_MEMORY, &d)) {
        cnn_diag_print(stderr, r->src, &d);
        return NULL;
    }
    cnn_model *m = cnn_reference_new(r->ir, batch);
    if (!m)
        fprintf(stderr, "cnnc: error: out of memory creating the network\n");
    return m;
}

/* "2147483648", "512M", "2G": bytes, K/M/G binary. -1 if malformed or out of range. */
static int64_t parse_bytes(const char *v)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    int shift = *end == 'K' || *end == 'k' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
    if (shift)
        end++;
    if (end == v || *end || errno || n < 1 || n > (INT64_MAX >> shift))
        return -1;
    return (int64_t)n << shift;
}

/* The flags every command that reads a .net file takes: --batch N and --max-memory BYTES.
 * Returns 1 if argv[*i] was one (its value consumed), 0 if not, -1 after an error. */
static int front_flag(int argc, char **argv, int *i, cnn_front_opts *opts)
{
    const char *a = argv[*i];
    int batch = strcmp(a, "--batch") == 0, memory = strcmp(a, "--max-memory") == 0;
    if (!batch && !memory)
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "cnnc: error: %s needs %s\n", a, batch ? "a batch size" : "a number of bytes");
        return -1;
    }
    const char *v = argv[++*i];
    if (batch) {
        char *end;
        long n = strtol(v, &end, 10);
        if (end == v || *end || n < 1 || n > 65536) {
            fprintf(stderr, "cnnc: error: --batch needs a whole number from 1 to 65536, got "
                            "'%s'\n", v);
            return -1;
        }
        opts->batch = (int)n;
    } else if ((opts->max_memory = parse_bytes(v)) < 0) {
        fprintf(stderr, "cnnc: error: --max-memory needs a number of bytes (like 4G or "
                        "1073741824), got '%s'\n", v);
        return -1;
    }
    return 1;
}

/* A word that is not a flag: the input file, or an error if there is one already or it looks
 * like a flag. Returns 0, or the exit status 2 after the message. */
static int take_input(const char *a, const char **in)
{
    if (a[0] == '-' && a[1]) {
        fprintf(stderr, "cnnc: error: unknown option '%s'\n", a);
        usage(stderr);
        return 2;
    }
    if (*in) {
        fprintf(stderr, "cnnc: error: more than one input file: '%s' and '%s'\n", *in, a);
        return 2;
    }
    *in = a;
    return 0;
}

/* A flag that takes a value, as in "-o FILE": where its value goes and what it is called in the
 * error when it is missing. A command's flags are a table of these ending in {NULL}. */
typedef struct value_flag {
    const char *name, *what;
    const char **value;
} value_flag;

/* Returns the index in flags of argv[*i] with its value stored (and consumed), -1 if argv[*i] is
 * none of them, -2 after the error that its value is missing. */
static int take_value_flag(int argc, char **argv, int *i, const value_flag *flags)
{
    for (int k = 0; flags[k].name; k++) {
        if (strcmp(argv[*i], flags[k].name) != 0)
            continue;
        if (*i + 1 >= argc) {
            fprintf(stderr, "cnnc: error: %s needs %s\n", flags[k].name, flags[k].what);
            return -2;
        }
        *flags[k].value = argv[++*i];
        return k;
    }
    return -1;
}

typedef struct gen_job {
    const cnn_ir *ir;
    const cnn_source *src;
    cnn_gen_opts opts;
    int header;
} gen_job;

static int generate(FILE *f, const void *arg)
{
    const gen_job *job = arg;
    return job->header ? cnn_generate_h(f, job->ir, &job->opts)
                       : cnn_generate_c(f, job->ir, job->src, &job->opts);
}

/* Generates into memory, then writes atomically (libcnnrt's cnn_write_atomically): a failure
 * anywhere leaves no partial output and an existing file intact. "-" is standard output. */
static int write_output(const char *path, int (*generate)(FILE *, const void *), const void *job)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    int failed = !mem || generate(mem, job) != 0;
    if (mem && fclose(mem) != 0)
        failed = 1;
    char err[1200];
    if (failed)
        snprintf(err, sizeof err, "%s: out of memory while generating it", path);
    else if (strcmp(path, "-") == 0) {
        failed = fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0;
        if (failed)
            snprintf(err, sizeof err, "standard output: %s", strerror(errno));
    } else
        failed = cnn_write_atomically(path, text, len, err, sizeof err) != 0;
    if (failed)
        fprintf(stderr, "cnnc: error: %s\n", err);
    free(text);
    return failed ? -1 : 0;
}

static int compile(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *header = NULL;
    cnn_front_opts opts = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int front = front_flag(argc, argv, &i, &opts);
        if (front < 0)
            return 2;
        if (front)
            continue;
        const value_flag flags[] = {{"-o", "a file name", &out}, {"-H", "a file name", &header},
                                    {NULL, NULL, NULL}};
        int v = take_value_flag(argc, argv, &i, flags);
        if (v == -2 || (v == -1 && take_input(a, &in)))
            return 2;
    }
    if (!in || !out) {
        fprintf(stderr, "cnnc: error: %s\n", !in ? "no input file" : "no output file (-o OUT.c)");
        usage(stderr);
        return 2;
    }
    cnn_arena arena = {0};
    cnn_source src = {0};
    cnn_ir ir;
    int status = 0;
    if (cnn_front_load(in, &arena, &opts, &ir, &src, stderr))
        status = 1;
    else {
        gen_job job = {.ir = &ir, .src = &src,
                       .opts = {.batch = ir.static_batch,
                                .version = CNNC_VERSION, .with_main = 1}};
        if (write_output(out, generate, &job))
            status = 1;
        job.header = 1;
        if (!status && header && write_output(header, generate, &job))
            status = 1;
    }
    cnn_source_free(&src);
    cnn_arena_free(&arena);
    return status;
}

/* The network of `in` with the weights of checkpoint `weights`, for cnnc export and cnnc onnx:
 * a reference model of batch 1 holding them. NULL after printing why. */
static cnn_model *load_trained(const char *in, const char *weights, cnn_arena *arena,
                               cnn_ir *ir, cnn_source *src)
{
    char err[1400];
    if (cnn_front_load(in, arena, NULL, ir, src, stderr))
        return NULL;
    cnn_model *m = cnn_reference_new(ir, 1);
    if (!m) {
        fprintf(stderr, "cnnc: error: out of memory creating the network\n");
        return NULL;
    }
    if (cnn_checkpoint_load(weights, m, NULL, NULL, err, sizeof err)) {
        fprintf(stderr, "cnnc: error: %s\n", err);
        cnn_model_destroy(m);
        return NULL;
    }
    return m;
}

typedef struct export_job {
    const cnn_deploy *dn;
    const cnn_source *src;
    const cnn_export_opts *opts;
    const cnn_export_sizes *sizes;
    int header;
} export_job;

static int export_generate(FILE *f, const void *arg)
{
    const export_job *j = arg;
    return j->header ? cnn_export_h(f, j->dn, j->opts, j->sizes)
                     : cnn_export_c(f, j->dn, j->src, j->opts, j->sizes);
}

/* The first n images of the calibration set into ranges: the trainers' training images. */
static int calibrate(cnn_quant_ranges *r, const cnn_ir *ir, const cnn_model *weights,
                     const char *data_dir, const char *images, int n, cnn_arena *arena)
{
    char path[1024], err[1200];
    cnn_data_file(path, sizeof path, data_dir, "train-images-idx3-ubyte");
    cnn_dataset ds = {0};
    if (cnn_dataset_load(&ds, images ? images : path, NULL, err, sizeof err) ||
        cnn_dataset_check(&ds, weights, err, sizeof err)) {
        fprintf(stderr, "cnnc: error: %s\n", err);
        cnn_dataset_free(&ds);
        return -1;
    }
    if (ds.n < n) {
        fprintf(stderr, "cnnc: error: --calibrate %d: %s has only %d images\n", n,
                ds.images_path, ds.n);
        cnn_dataset_free(&ds);
        return -1;
    }
    int status = 0;
    cnn_model *ref = cnn_reference_new(ir, 100);
    if (!ref || cnn_copy_tensors(ref, weights) ||
        cnn_quant_calibrate(r, ir, ref, &ds, n, arena)) {
        fprintf(stderr, "cnnc: error: out of memory calibrating\n");
        status = -1;
    }
    cnn_model_destroy(ref);
    cnn_dataset_free(&ds);
    return status;
}

static int export_main(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *header = NULL, *weights = NULL, *classes = NULL,
               *data_dir = CNN_DEFAULT_DATA_DIR, *images = NULL;
    int int8 = 0, plan = 0, n_calibrate = 1000, calib_flag = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *calibrate_n = NULL;
        const value_flag flags[] = {
            {"-o", "a file name", &out}, {"-H", "a file name", &header},
            {"--weights", "a file name", &weights}, {"--classes", "a file name", &classes},
            {"--data", "a directory", &data_dir}, {"--train-images", "a file name", &images},
            {"--calibrate", "a number of images", &calibrate_n}, {NULL, NULL, NULL}};
        int v = take_value_flag(argc, argv, &i, flags);
        if (v == -2)
            return 2;
        if (v >= 4)
            calib_flag = 1;
        if (v == 6) {
            char *end;
            long n = strtol(calibrate_n, &end, 10);
            if (end == calibrate_n || *end || n < 1 || n > 1000000) {
                fprintf(stderr, "cnnc: error: --calibrate needs a number of images from 1 to "
                                "1000000, got '%s'\n", calibrate_n);
                return 2;
            }
            n_calibrate = (int)n;
        }
        if (v >= 0)
            continue;
        if (strcmp(a, "--int8") == 0)
            int8 = 1;
        else if (strcmp(a, "--plan") == 0)
            plan = 1;
        else if (take_input(a, &in))
            return 2;
    }
    const char *missing = !in ? "no input file" : !weights ? "no weights (--weights W.ckpt)"
                          : !out && !plan ? "no output file (-o NAME.c) and no --plan" : NULL;
    if (missing || (calib_flag && !int8)) {
        fprintf(stderr, "cnnc: error: %s\n",
                missing ? missing : "--calibrate, --data and --train-images are for --int8");
        usage(stderr);
        return 2;
    }
    cnn_arena arena = {0};
    cnn_source src = {0};
    cnn_ir ir;
    cnn_model *m = NULL;
    char **names = NULL;
    int status = 1;
    char err[1400];
    if (!(m = load_trained(in, weights, &arena, &ir, &src)))
        goto done;
    if (classes && !(names = cnn_class_names_load(classes, ir.n_classes, err, sizeof err))) {
        fprintf(stderr, "cnnc: error: %s\n", err);
        goto done;
    }
    cnn_deploy dn;
    cnn_quant quant;
    cnn_quant_ranges ranges;
    cnn_export_opts opts = {.version = CNNC_VERSION, .weights_path = weights,
                            .class_names = names};
    cnn_export_sizes sizes;
    if (int8 && ir.train.loss != CNN_LOSS_CROSSENTROPY) {
        fprintf(stderr, "cnnc: error: %s: --int8 exports classifiers (the last dense layer's "
                        "logits dequantized for the softmax), and this network is not one "
                        "(loss %s)\n", in, ir.train.loss == CNN_LOSS_MSE ? "mse" : "none");
        goto done;
    }
    if (cnn_deploy_build(&dn, &ir, m, &arena)) {
        fprintf(stderr, "cnnc: error: out of memory\n");
        goto done;
    }
    if (dn.n_ops == 0) {
        fprintf(stderr, "cnnc: error: %s computes nothing in inference (only flatten and "
                        "dropout): nothing to export\n", in);
        goto done;
    }
    if (int8) {
        if (calibrate(&ranges, &ir, m, data_dir, images, n_calibrate, &arena))
            goto done;
        if (cnn_quantize(&quant, &dn, &ranges, &arena)) {
            fprintf(stderr, "cnnc: error: out of memory\n");
            goto done;
        }
        opts.quant = &quant;
        opts.calibration_images = ranges.images;
    }
    if (cnn_export_sizes_of(&dn, &opts, &sizes, &arena)) {
        fprintf(stderr, "cnnc: error: out of memory\n");
        goto done;
    }
    if (plan && (cnn_export_plan_print(stdout, &dn, &opts, &sizes) || fflush(stdout) != 0)) {
        fprintf(stderr, "cnnc: error: standard output: %s\n", strerror(errno));
        goto done;
    }
    export_job job = {&dn, &src, &opts, &sizes, 0};
    if (out && write_output(out, export_generate, &job))
        goto done;
    job.header = 1;
    if (header && write_output(header, export_generate, &job))
        goto done;
    status = 0;
done:
    cnn_class_names_free(names);
    cnn_model_destroy(m);
    cnn_source_free(&src);
    cnn_arena_free(&arena);
    return status;
}

typedef struct bytes_job {
    const uint8_t *bytes;
    size_t len;
} bytes_job;

static int write_bytes(FILE *f, const void *arg)
{
    const bytes_job *j = arg;
    return fwrite(j->bytes, 1, j->len, f) == j->len ? 0 : -1;
}

/* The flags of cnnc onnx and cnnc import: the input, -o OUT and --weights FILE, in any order.
 * Returns 0, or -1 after the message. */
static int input_out_weights(int argc, char **argv, const char **in, const char **out,
                             const char **weights)
{
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const value_flag flags[] = {{"-o", "a file name", out},
                                    {"--weights", "a file name", weights}, {NULL, NULL, NULL}};
        int v = take_value_flag(argc, argv, &i, flags);
        if (v == -2 || (v == -1 && take_input(a, in)))
            return -1;
    }
    return 0;
}

/* cnnc onnx FILE.net --weights W.ckpt -o NAME.onnx */
static int onnx_main(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *weights = NULL;
    if (input_out_weights(argc, argv, &in, &out, &weights))
        return 2;
    const char *missing = !in ? "no input file" : !weights ? "no weights (--weights W.ckpt)"
                          : !out ? "no output file (-o NAME.onnx)" : NULL;
    if (missing) {
        fprintf(stderr, "cnnc: error: %s\n", missing);
        usage(stderr);
        return 2;
    }
    cnn_arena arena = {0};
    cnn_source src = {0};
    cnn_ir ir;
    cnn_model *m = NULL;
    int status = 1;
    bytes_job job;
    if (!(m = load_trained(in, weights, &arena, &ir, &src)))
        goto done;
    uint8_t *bytes;
    if (cnn_onnx_export(&ir, m, CNNC_VERSION, &arena, &bytes, &job.len)) {
        fprintf(stderr, "cnnc: error: out of memory\n");
        goto done;
    }
    job.bytes = bytes;
    if (write_output(out, write_bytes, &job))
        goto done;
    status = 0;
done:
    cnn_model_destroy(m);
    cnn_source_free(&src);
    cnn_arena_free(&arena);
    return status;
}

/* cnnc import NAME.onnx -o NAME.net [--weights NAME.ckpt] */
static int import_main(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *weights = NULL;
    if (input_out_weights(argc, argv, &in, &out, &weights))
        return 2;
    if (!in || !out) {
        fprintf(stderr, "cnnc: error: %s\n", !in ? "no input file" : "no output file (-o NAME.net)");
        usage(stderr);
        return 2;
    }
    cnn_arena arena = {0};
    cnn_source file = {0}, src = {0};
    cnn_import imp;
    cnn_ir ir;
    cnn_model *m = NULL;
    int status = 1;
    char err[1400];
    if (cnn_source_read(&file, in)) {
        fprintf(stderr, "cnnc: error: %s: cannot read the file: %s\n", in, strerror(errno));
        goto done;
    }
    const char *base = strrchr(in, '/');
    if (cnn_onnx_import((const uint8_t *)file.text, file.len, base ? base + 1 : in, NULL, 0,
                        CNNC_VERSION, &arena, &imp, err, sizeof err)) {
        fprintf(stderr, "cnnc: error: %s: %s\n", in, err);
        goto done;
    }
    /* The network checked as a .net file is: what cnnc will read back. */
    if (cnn_source_from_string(&src, out, imp.net)) {
        fprintf(stderr, "cnnc: error: out of memory\n");
        goto done;
    }
    if (cnn_front_build(&src, &arena, NULL, &ir, stderr)) {
        fprintf(stderr, "cnnc: error: %s: the network made of it does not check (above)\n", in);
        goto done;
    }
    if (weights) {
        if (!(m = cnn_reference_new(&ir, 1))) {
            fprintf(stderr, "cnnc: error: out of memory creating the network\n");
            goto done;
        }
        if (cnn_import_set_tensors(&imp, &ir, m, err, sizeof err) ||
            cnn_checkpoint_save(weights, m, NULL, err, sizeof err)) {
            fprintf(stderr, "cnnc: error: %s\n", err);
            goto done;
        }
    }
    bytes_job job = {.bytes = (const uint8_t *)imp.net, .len = strlen(imp.net)};
    if (write_output(out, write_bytes, &job))
        goto done;
    status = 0;
done:
    cnn_model_destroy(m);
    cnn_source_free(&file);
    cnn_source_free(&src);
    cnn_arena_free(&arena);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("cnnc %s\n", CNNC_VERSION);
        return 0;
    }
    if (strcmp(cmd, "plot") == 0)
        return cnn_plot_cli("cnnc", argc - 1, argv + 1);
    if (strcmp(cmd, "export") == 0)
        return export_main(argc, argv);
    if (strcmp(cmd, "onnx") == 0)
        return onnx_main(argc, argv);
    if (strcmp(cmd, "import") == 0)
        return import_main(argc, argv);
    int summary = strcmp(cmd, "--summary") == 0, check = strcmp(cmd, "--check") == 0,
        run = strcmp(cmd, "run") == 0;
    if (!(summary || check || run))
        return compile(argc, argv);
    /* --summary and --check: [--batch N] [--max-memory BYTES] FILE, in any order;
     * run: [--max-memory BYTES] FILE COMMAND [flags], the trainer's flags after the file. */
    cnn_front_opts opts = {0};
    const char *file = NULL;
    int i = 2;
    for (; i < argc && !file; i++) {
        int front = front_flag(argc, argv, &i, &opts);
        if (front < 0)
            return 2;
        if (front)
            continue;
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "cnnc: error: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
        file = argv[i];
    }
    if (!file || (!run && i < argc)) {
        usage(stderr);
        return 2;
    }
    cnn_arena arena = {0};
    cnn_source src = {0};
    cnn_ir ir;
    int status = 0;
    if (cnn_front_load(file, &arena, &opts, &ir, &src, stderr))
        status = 1;
    else if (summary)
        cnn_summary_print(stdout, &ir);
    else if (run) {
        if (i >= argc) {
            fprintf(stderr, "cnnc: error: 'run' needs a command after the file: train, eval or "
                            "predict\n");
            status = 2;
        } else {
            ref_ctx ctx = {.ir = &ir, .src = &src, .opts = opts};
            status = cnn_cli_run("cnnc run", argc - i, argv + i, make_reference, &ctx, &ir.train);
        }
    }
    cnn_source_free(&src);
    cnn_arena_free(&arena);
    return status;
}
