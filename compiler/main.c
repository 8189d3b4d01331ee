/* cnnc: the command line. Checks .net files, prints summaries, trains with the reference. */
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "cnnrt.h"
#include "ir.h"
#include "reference.h"
#include "summary.h"

static void usage(FILE *out)
{
    fputs("usage: cnnc --summary FILE.net          print the layers, shapes, parameters, FLOPs\n"
          "       cnnc --check FILE.net            check the file; print nothing unless wrong\n"
          "       cnnc run FILE.net train [flags]  train with the interpreted reference\n"
          "                                        (cnnc run FILE.net train --help for flags)\n"
          "       cnnc --version | --help\n",
          out);
}

static cnn_model *make_reference(void *ctx, int batch)
{
    cnn_model *m = cnn_reference_new(ctx, batch);
    if (!m)
        fprintf(stderr, "cnnc: error: out of memory creating the network\n");
    return m;
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
    int summary = strcmp(cmd, "--summary") == 0, check = strcmp(cmd, "--check") == 0,
        run = strcmp(cmd, "run") == 0;
    if (!(summary || check || run) || argc < 3 || ((summary || check) && argc != 3)) {
        if (!(summary || check || run))
            fprintf(stderr, "cnnc: error: unknown command '%s'\n", cmd);
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
            fprintf(stderr, "cnnc: error: 'run' needs a command after the file: train\n");
            status = 2;
        } else
            status = cnn_cli_run("cnnc run", argc - 3, argv + 3, make_reference, &ir, &ir.train);
    }
    cnn_source_free(&src);
    cnn_arena_free(&arena);
    return status;
}
