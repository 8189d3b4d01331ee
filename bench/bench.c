/* Times one network: training steps (forward, backward, Adam), batched inference, batch-1
 * latency. Linked with a network cnnc compiled (BENCH_MODEL names its NAME_model) or, with
 * BENCH_REFERENCE, with the interpreted reference. Prints `key value` lines for bench/run.sh.
 * usage: bench train|infer|latency THREADS [NET.net (reference only)]
 * BENCH_TILES=0|8|16 in the environment forces libcnnrt's products onto OpenBLAS, AVX2 or
 * AVX-512 tiles (as far as the CPU goes), to compare them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "cnnrt.h"
#include "timing.h"
#ifdef BENCH_REFERENCE
#include "ir.h"
#include "reference.h"
#endif

#define REPS 5

#ifndef BENCH_REFERENCE
cnn_model *BENCH_MODEL(void);
#endif

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench train|infer|latency THREADS [NET.net]\n");
        return 2;
    }
    const char *mode = argv[1];
    int threads = atoi(argv[2]);
    cnn_flush_denormals(); /* as the trainers do, before the pool starts */
    if (getenv("BENCH_TILES"))
        cnn_gemm_tiles(atoi(getenv("BENCH_TILES")));
    char err[160];
    if (cnn_set_threads(threads, err, sizeof err)) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
#ifdef BENCH_REFERENCE
    if (argc < 4)
        return 2;
    cnn_arena arena = {0};
    cnn_source src;
    cnn_ir ir;
    if (cnn_front_load(argv[3], &arena, NULL, &ir, &src, stderr))
        return 1;
    int size = strcmp(mode, "latency") == 0 ? 1 : strcmp(mode, "infer") == 0 ? 256 : 32;
    cnn_model *m = cnn_reference_new(&ir, size);
#else
    cnn_model *m = BENCH_MODEL();
#endif
    int batch = m->max_batch;
    cnn_rng rng;
    cnn_rng_seed(&rng, 1);
    cnn_init_tensors(m, &rng);
    cnn_zero_slots(m);
    size_t in = cnn_input_size(m);
    /* Synthetic images: the cost does not depend on the pixels (denormals are flushed). */
    float *x = malloc(sizeof(float) * in * (size_t)batch);
    int *labels = malloc(sizeof(int) * (size_t)batch);
    /* A loss mse network's targets: random values of its outputs' size. */
    float *targets = malloc(sizeof(float) * (size_t)m->n_classes * (size_t)batch);
    for (int i = 0; targets && i < m->n_classes * batch; i++)
        targets[i] = 0.5f;
    for (size_t i = 0; i < in * (size_t)batch; i++)
        x[i] = cnn_rng_uniform(&rng);
    for (int b = 0; b < batch; b++)
        labels[b] = (int)cnn_rng_below(&rng, (uint32_t)m->n_classes);
    cnn_train_cfg cfg = m->train;
    cnn_optimizer *opt = cnn_optimizer_new(m, &cfg);
    /* Each repetition runs for about a second (a tenth for the slow reference). */
#ifdef BENCH_REFERENCE
    double span = 2.0;
#else
    double span = 1.0;
#endif
    int training = strcmp(mode, "train") == 0;
    double rate[REPS];
    for (int rep = -1; rep < REPS; rep++) { /* rep -1 warms up */
        long images = 0;
        double t0 = now(), t;
        do {
            if (training) {
                cnn_zero_grad(m);
                m->ops->forward(m, x, batch, 1, &rng);
                m->ops->backward(m, labels, targets, batch);
                cnn_optimizer_step(opt, m, cfg.lr);
            } else
                m->ops->forward(m, x, batch, 0, NULL);
            images += batch;
            t = now();
        } while (t - t0 < (rep < 0 ? span / 4 : span));
        if (rep >= 0)
            rate[rep] = images / (t - t0);
    }
    double r = median(rate, REPS);
    printf("mode %s\nthreads %d\nbatch %d\nimages_per_second %.1f\n", mode, threads, batch, r);
    if (strcmp(mode, "latency") == 0)
        printf("microseconds_per_image %.1f\n", 1e6 / r);
    cnn_optimizer_free(opt);
    free(x);
    free(labels);
    free(targets);
    cnn_set_threads(1, err, sizeof err);
#ifdef BENCH_REFERENCE
    cnn_model_destroy(m);
    cnn_source_free(&src);
    cnn_arena_free(&arena);
#endif
    return 0;
}
