/* Writes the seed inputs that the build makes for the fuzz targets (tests/fuzz/README.md):
 * fuzz_seeds DIR writes DIR/checkpoint/ (the fuzz network's checkpoints, with and without a
 * training state) and DIR/idx/ (small image and label files, plain and gzip). The .net seeds
 * are the repository's own files, copied by `make fuzz`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_net.h"
#include "ir.h"
#include "reference.h"

static int write_bytes(const char *path, const unsigned char *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(data, 1, n, f) == n;
    if (f && fclose(f))
        ok = 0;
    if (!ok)
        fprintf(stderr, "fuzz_seeds: cannot write %s\n", path);
    return ok ? 0 : -1;
}

/* One input of fuzz_idx: mode byte, the split, then the image file and the label file. */
static int idx_seed(const char *path, int mode, int n, int h, int w, int c)
{
    unsigned char buf[4096];
    size_t k = 3;
    int dims = c > 1 ? 4 : 3;
    unsigned char head[4] = {0, 0, 8, (unsigned char)dims};
    memcpy(buf + k, head, 4), k += 4;
    int d[4] = {n, h, w, c};
    for (int i = 0; i < dims; i++)
        for (int b = 3; b >= 0; b--)
            buf[k++] = (unsigned char)(d[i] >> (8 * b));
    for (int i = 0; i < n * h * w * c; i++)
        buf[k++] = (unsigned char)(i * 37);
    size_t split = k - 3;
    unsigned char lab[8] = {0, 0, 8, 1, 0, 0, 0, (unsigned char)n};
    memcpy(buf + k, lab, 8), k += 8;
    for (int i = 0; i < n; i++)
        buf[k++] = (unsigned char)(i % 3);
    buf[0] = (unsigned char)mode;
    buf[1] = (unsigned char)split;
    buf[2] = (unsigned char)(split >> 8);
    return write_bytes(path, buf, k);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_seeds DIR\n");
        return 2;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/checkpoint", argv[1]);
    mkdir(argv[1], 0777);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/idx", argv[1]);
    mkdir(path, 0777);

    cnn_source src;
    cnn_arena arena = {0};
    cnn_ir ir;
    cnn_diag d = {0};
    cnn_ast ast;
    if (cnn_source_from_string(&src, "fuzz.net", fuzz_net_text) ||
        cnn_parse_source(&src, &arena, &ast, &d) || cnn_ir_build(&ast, &src, &arena, NULL, &ir, &d))
        return 1;
    cnn_model *m = cnn_reference_new(&ir, 4);
    if (!m)
        return 1;
    cnn_rng rng;
    cnn_rng_seed(&rng, 7);
    cnn_init_tensors(m, &rng);
    cnn_zero_slots(m);
    cnn_train_state state = {.epoch = 3, .step = 42};
    char err[256];
    int rc = 0;
    snprintf(path, sizeof path, "%s/checkpoint/weights.ckpt", argv[1]);
    rc |= cnn_checkpoint_save(path, m, NULL, err, sizeof err);
    snprintf(path, sizeof path, "%s/checkpoint/resume.ckpt", argv[1]);
    rc |= cnn_checkpoint_save(path, m, &state, err, sizeof err);
    if (rc)
        fprintf(stderr, "fuzz_seeds: %s\n", err);
    cnn_model_destroy(m);
    cnn_arena_free(&arena);
    cnn_source_free(&src);

    const int modes[] = {0, 1, 2, 3, 4};
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/idx/gray_%d", argv[1], modes[i]);
        rc |= idx_seed(path, modes[i], 3, 4, 5, 1);
        snprintf(path, sizeof path, "%s/idx/rgb_%d", argv[1], modes[i]);
        rc |= idx_seed(path, modes[i], 2, 3, 3, 3);
    }
    return rc ? 1 : 0;
}
