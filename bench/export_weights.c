/* Weights and calibration images for timing the standalone export: the network's initial
 * weights (seed 1) as a checkpoint, and 100 random images as an IDX file. Speed does not
 * depend on what the values are. usage: export_weights NET.net OUT.ckpt OUT-images */
#include <stdio.h>

#include "reference.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: export_weights NET.net OUT.ckpt OUT-images\n");
        return 2;
    }
    cnn_arena arena = {0};
    cnn_source src = {0};
    cnn_ir ir;
    if (cnn_front_load(argv[1], &arena, NULL, &ir, &src, stderr))
        return 1;
    cnn_model *m = cnn_reference_new(&ir, 1);
    cnn_rng rng;
    cnn_rng_seed(&rng, 1);
    cnn_init_tensors(m, &rng);
    char err[1200];
    int status = cnn_checkpoint_save(argv[2], m, NULL, err, sizeof err);
    if (status)
        fprintf(stderr, "export_weights: %s\n", err);
    FILE *f = fopen(argv[3], "wb");
    unsigned char head[20] = {0, 0, 8, 4, 0, 0, 0, 100};
    int dims[3] = {ir.input.h, ir.input.w, ir.input.c};
    for (int d = 0; d < 3; d++)
        for (int b = 0; b < 4; b++)
            head[8 + 4 * d + b] = (unsigned char)(dims[d] >> (24 - 8 * b));
    if (!f || fwrite(head, 1, 20, f) != 20)
        status = 1;
    for (long i = 0; f && i < 100L * ir.input.h * ir.input.w * ir.input.c; i++)
        fputc((int)cnn_rng_below(&rng, 256), f);
    if (!f || fclose(f)) {
        fprintf(stderr, "export_weights: cannot write %s\n", argv[3]);
        status = 1;
    }
    cnn_model_destroy(m);
    cnn_source_free(&src);
    cnn_arena_free(&arena);
    return status ? 1 : 0;
}
