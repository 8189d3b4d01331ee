/* The thread pool (runtime/parallel.c): every part runs once, barriers hold, workers take the
 * caller's flush-to-zero, an idle pool wakes, bad sizes are refused, and the optimizer's
 * split between threads changes no bit of its result. */
#define _GNU_SOURCE /* sched_setaffinity */
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "support.h"

static void set_threads(int n)
{
    char err[160];
    assert_int_equal(cnn_set_threads(n, err, sizeof err), 0);
    assert_int_equal(cnn_get_threads(), n);
}

typedef struct record {
    atomic_int runs[8];
    atomic_int parts_seen[8];
} record;

static void note_part(void *arg, int part, int parts)
{
    record *r = arg;
    atomic_fetch_add(&r->runs[part], 1);
    atomic_store(&r->parts_seen[part], parts);
}

/* With 3 threads: max_parts 10 gives 3 parts, 2 gives 2, 1 runs in the caller. */
static void every_part_runs_once(void **state)
{
    (void)state;
    set_threads(3);
    int caps[] = {10, 3, 2, 1};
    int want[] = {3, 3, 2, 1};
    for (int k = 0; k < 4; k++) {
        record r;
        memset(&r, 0, sizeof r);
        cnn_parallel(note_part, &r, caps[k]);
        for (int p = 0; p < 8; p++) {
            assert_int_equal(atomic_load(&r.runs[p]), p < want[k] ? 1 : 0);
            if (p < want[k])
                assert_int_equal(atomic_load(&r.parts_seen[p]), want[k]);
        }
    }
    set_threads(1);
}

/* Each round, every part writes its slot, waits, then reads every slot: a barrier that let a
 * part through early would show it an older round. */
enum { ROUNDS = 2000 };
typedef struct rounds {
    atomic_int slot[4];
    atomic_int wrong;
} rounds;

static void round_trip(void *arg, int part, int parts)
{
    rounds *r = arg;
    for (int i = 1; i <= ROUNDS; i++) {
        atomic_store(&r->slot[part], i);
        cnn_barrier();
        for (int p = 0; p < parts; p++)
            if (atomic_load(&r->slot[p]) != i)
                atomic_fetch_add(&r->wrong, 1);
        cnn_barrier();
    }
}

static void barriers_hold(void **state)
{
    (void)state;
    for (int threads = 2; threads <= 4; threads++) {
        set_threads(threads);
        rounds r;
        memset(&r, 0, sizeof r);
        cnn_parallel(round_trip, &r, threads);
        assert_int_equal(atomic_load(&r.wrong), 0);
        for (int p = 0; p < threads; p++)
            assert_int_equal(atomic_load(&r.slot[p]), ROUNDS);
    }
    set_threads(1);
}

/* A pool left idle long enough to fall asleep still answers the next region. */
static void idle_pool_wakes(void **state)
{
    (void)state;
    set_threads(2);
    for (int k = 0; k < 3; k++) {
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
        record r;
        memset(&r, 0, sizeof r);
        cnn_parallel(note_part, &r, 2);
        assert_int_equal(atomic_load(&r.runs[0]) + atomic_load(&r.runs[1]), 2);
        rounds b;
        memset(&b, 0, sizeof b);
        cnn_parallel(round_trip, &b, 2);
        assert_int_equal(atomic_load(&b.wrong), 0);
    }
    set_threads(1);
}

#if defined(__SSE__)
static void flushes(void *arg, int part, int parts)
{
    (void)parts;
    atomic_int *flushed = arg;
    volatile float tiny = 1e-30f, scale = 1e-10f; /* the product, 1e-40, is denormal */
    if ((float)(tiny * scale) == 0.0f && (_mm_getcsr() & 0x8040) == 0x8040)
        atomic_fetch_add(&flushed[part], 1);
}

/* Workers started after the caller set flush-to-zero run with it too. */
static void workers_take_flush_to_zero(void **state)
{
    (void)state;
    unsigned saved = _mm_getcsr();
    cnn_flush_denormals();
    set_threads(2);
    atomic_int flushed[2] = {0, 0};
    cnn_parallel(flushes, flushed, 2);
    assert_int_equal(atomic_load(&flushed[0]), 1);
    assert_int_equal(atomic_load(&flushed[1]), 1);
    set_threads(1);
    _mm_setcsr(saved);
}
#endif

static void bad_sizes_are_refused(void **state)
{
    (void)state;
    char err[160];
    assert_int_equal(cnn_set_threads(0, err, sizeof err), -1);
    assert_non_null(strstr(err, "between 1 and"));
    assert_int_equal(cnn_set_threads(CNN_MAX_THREADS + 1, err, sizeof err), -1);
    assert_int_equal(cnn_get_threads(), 1);
    assert_true(cnn_default_threads() >= 1 && cnn_default_threads() <= CNN_MAX_THREADS);
}

/* Confined to one core (as by taskset), the default is one thread. */
static void default_follows_affinity(void **state)
{
    (void)state;
#ifdef CPU_COUNT
    cpu_set_t saved, one;
    assert_int_equal(sched_getaffinity(0, sizeof saved, &saved), 0);
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &saved)) {
            CPU_SET(c, &one);
            break;
        }
    assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
    int threads = cnn_default_threads();
    assert_int_equal(sched_setaffinity(0, sizeof saved, &saved), 0);
    assert_int_equal(threads, 1);
#else
    skip();
#endif
}

/* Adam on 50,001 parameters (enough to be split), with 1, 2 and 3 threads: the same bits. */
static void optimizer_split_changes_nothing(void **state)
{
    (void)state;
    enum { N = 50001, STEPS = 3 };
    float *result[3];
    for (int threads = 1; threads <= 3; threads++) {
        float *w = malloc(sizeof(float) * N), *g = malloc(sizeof(float) * N);
        float *m = calloc(N, sizeof(float)), *v = calloc(N, sizeof(float));
        cnn_tensor t = {.name = "w", .rank = 1, .dims = {N}, .size = N, .value = w, .grad = g,
                        .slot = {m, v}};
        cnn_model model = {.name = "split", .n_tensors = 1, .tensors = &t};
        cnn_rng rng;
        cnn_rng_seed(&rng, 4);
        for (int i = 0; i < N; i++)
            w[i] = cnn_rng_uniform(&rng) - 0.5f;
        cnn_train_cfg cfg;
        memset(&cfg, 0, sizeof cfg);
        cnn_optim_defaults(&cfg, CNN_OPTIM_ADAM);
        set_threads(threads);
        cnn_optimizer *o = cnn_optimizer_new(&model, &cfg);
        for (int s = 0; s < STEPS; s++) {
            for (int i = 0; i < N; i++)
                g[i] = cnn_rng_uniform(&rng) - 0.5f;
            cnn_optimizer_step(o, &model, 1e-3);
        }
        cnn_optimizer_free(o);
        result[threads - 1] = w;
        free(g), free(m), free(v);
    }
    set_threads(1);
    assert_memory_equal(result[0], result[1], sizeof(float) * N);
    assert_memory_equal(result[0], result[2], sizeof(float) * N);
    for (int k = 0; k < 3; k++)
        free(result[k]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_part_runs_once),
        cmocka_unit_test(barriers_hold),
        cmocka_unit_test(idle_pool_wakes),
#if defined(__SSE__)
        cmocka_unit_test(workers_take_flush_to_zero),
#endif
        cmocka_unit_test(bad_sizes_are_refused),
        cmocka_unit_test(default_follows_affinity),
        cmocka_unit_test(optimizer_split_changes_nothing),
    };
    return cmocka_run_group_tests_name("parallel", tests, NULL, NULL);
}
