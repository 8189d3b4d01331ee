/* cnnc: the command line. Compiles .net files to C, prints summaries, trains with the reference. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "cnnrt.h"
#include "codegen.h"
#include "ir.h"
#include "reference.h"
#include "summary.h"

static void usage(FILE *out)
{
    fputs("usage: cnnc FILE.net -o OUT.c [-H OUT.h] [--batch N]\n"
          "                                        compile to C (a trainer with main(), and\n"
          "                                        <name>_model() for embedding)\n"
          "       cnnc --summary FILE.net          print the layers, shapes, parameters, FLOPs\n"
          "       cnnc --check FILE.net            check the file; print nothing unless wrong\n"
          "       cnnc run FILE.net COMMAND [flags]\n"
          "                                        train, eval or predict with the interpreted\n"
          "                                        reference (cnnc run FILE.net --help)\n"
          "       cnnc plot DIR...                 pictures of the logs of runs (--log DIR)\n"
          "       cnnc plot --compare OUT.png DIR...  several runs on one chart\n"
          "       cnnc --version | --help\n",
          out);
}

static cnn_model *make_reference(void *ctx, int batch)
{
    /* Batch 0: no training, any size will do; larger batches evaluate a little faster. */
    cnn_model *m = cnn_reference_new(ctx, batch > 0 ? batch : 256);
    if (!m)
        fprintf(stderr, "cnnc: error: out of memory creating the network\n");
    return m;
}

typedef struct gen_job {
    const cnn_ir *ir;
    const cnn_source *src;
    cnn_gen_opts opts;
    int header;
} gen_job;

static int generate(FILE *f, const gen_job *job)
{
    return job->header ? cnn_generate_h(f, job->ir, &job->opts)
                       : cnn_generate_c(f, job->ir, job->src, &job->opts);
}

/* Writes through a temporary file renamed into place, so that a failure leaves no partial
 * output and an existing file intact. "-" is standard output. */
static int write_output(const char *path, const gen_job *job)
{
    if (strcmp(path, "-") == 0)
        return generate(stdout, job) || fflush(stdout) ? -1 : 0;
    size_t len = strlen(path);
    char *tmp = malloc(len + 16);
    if (!tmp)
        return -1;
    snprintf(tmp, len + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    int failed = !f;
    if (f) {
        failed = generate(f, job) != 0 || fflush(f) != 0 || fsync(fileno(f)) != 0;
        failed |= fclose(f) != 0;
    } else if (fd >= 0)
        close(fd);
    int saved = errno;
    if (!failed && rename(tmp, path) != 0) {
        saved = errno;
        failed = 1;
    }
    if (failed) {
        if (fd >= 0)
            unlink(tmp);
        fprintf(stderr, "cnnc: error: cannot write '%s': %s\n", path, strerror(saved));
    }
    free(tmp);
    return failed ? -1 : 0;
}

static int compile(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *header = NULL;
    long batch = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "-o") == 0 || strcmp(a, "-H") == 0 || strcmp(a, "--batch") == 0) &&
            i + 1 < argc) {
            const char *v = argv[++i];
            if (a[1] == 'o')
                out = v;
            else if (a[1] == 'H')
                header = v;
            else {
                char *end;
                batch = strtol(v, &end, 10);
                if (*end || batch < 1 || batch > 65536) {
                    fprintf(stderr, "cnnc: error: --batch needs a whole number from 1 to 65536, "
                                    "got '%s'\n", v);
                    return 2;
                }
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "cnnc: error: unknown option or missing value: '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!in)
            in = a;
        else {
            fprintf(stderr, "cnnc: error: more than one input file: '%s' and '%s'\n", in, a);
            return 2;
        }
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
    if (cnn_front_load(in, &arena, &ir, &src, stderr))
        status = 1;
    else {
        gen_job job = {.ir = &ir, .src = &src,
                       .opts = {.batch = batch ? (int)batch : ir.train.batch,
                                .version = CNNC_VERSION, .with_main = 1}};
        if (write_output(out, &job))
            status = 1;
        job.header = 1;
        if (!status && header && write_output(header, &job))
            status = 1;
    }
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
    int summary = strcmp(cmd, "--summary") == 0, check = strcmp(cmd, "--check") == 0,
        run = strcmp(cmd, "run") == 0;
    if (!(summary || check || run))
        return compile(argc, argv);
    if (argc < 3 || ((summary || check) && argc != 3)) {
        usage(stderr);
        return 2;
    }
    cnn_arena arena = {0};
    cnn_source src = {0};
    cnn_ir ir;
    int status = 0;
    if (cnn_front_load(argv[2], &arena, &ir, &src, stderr))
        status = 1;
    else if (summary)
        cnn_summary_print(stdout, &ir);
    else if (run) {
        if (argc < 4) {
            fprintf(stderr, "cnnc: error: 'run' needs a command after the file: train, eval or "
                            "predict\n");
            status = 2;
        } else
            status = cnn_cli_run("cnnc run", argc - 3, argv + 3, make_reference, &ir, &ir.train);
    }
    cnn_source_free(&src);
    cnn_arena_free(&arena);
    return status;
}
