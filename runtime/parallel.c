/* The thread pool of compiled networks: one fork-join region at a time, with barriers inside. */
#define _GNU_SOURCE /* sched_getaffinity: the cores this process may use */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#if defined(__SSE__)
#include <immintrin.h>
#endif

#include <cblas.h>

#include "cnnrt.h"

/* Waiting is spinning first, then sleeping: a training step's regions and barriers follow each
 * other within microseconds, where a sleep and a wake-up would cost more than the work; but a
 * pool left idle (evaluation, I/O, a program that trains now and then) must not burn cores. */
#define SPINS 20000

static struct {
    int threads; /* the pool's size, the calling thread included */
    unsigned csr; /* the floating-point mode (flush-to-zero) of the thread that made the pool */
    pthread_t worker[CNN_MAX_THREADS];
    /* The current region. */
    cnn_part_fn fn;
    void *arg;
    int parts;
    atomic_uint region;   /* advanced to start a region */
    unsigned region_at_start; /* its value when the current workers were started */
    atomic_int finished;  /* workers done with the current region */
    atomic_uint barrier;  /* advanced each time a barrier opens */
    atomic_int arrived;   /* parts waiting at the current barrier */
    atomic_int stop;
    /* Sleeping waiters; whoever changes one of the words above wakes them. */
    atomic_int sleepers;
    pthread_mutex_t lock;
    pthread_cond_t wake;
} pool = {.threads = 1, .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static void relax(void)
{
#if defined(__SSE__)
    _mm_pause();
#endif
}

/* Returns once *word differs from old. */
static void wait_change(atomic_uint *word, unsigned old)
{
    for (int i = 0; i < SPINS; i++) {
        if (atomic_load_explicit(word, memory_order_acquire) != old)
            return;
        relax();
    }
    pthread_mutex_lock(&pool.lock);
    atomic_fetch_add(&pool.sleepers, 1);
    while (atomic_load(word) == old)
        pthread_cond_wait(&pool.wake, &pool.lock);
    atomic_fetch_sub(&pool.sleepers, 1);
    pthread_mutex_unlock(&pool.lock);
}

/* After changing a word others wait on (sequentially consistent, like the sleepers count, so
 * that either the sleeper sees the change or we see the sleeper). */
static void wake_all(void)
{
    if (atomic_load(&pool.sleepers) == 0)
        return;
    pthread_mutex_lock(&pool.lock);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
}

static void *worker_main(void *p)
{
    int id = (int)(size_t)p;
#if defined(__SSE__)
    _mm_setcsr(pool.csr);
#endif
    /* Regions before this worker existed are not its to answer. */
    unsigned seen = pool.region_at_start;
    for (;;) {
        wait_change(&pool.region, seen);
        seen = atomic_load(&pool.region);
        if (atomic_load(&pool.stop))
            return NULL;
        if (id < pool.parts)
            pool.fn(pool.arg, id, pool.parts);
        atomic_fetch_add_explicit(&pool.finished, 1, memory_order_release);
    }
}

static void stop_workers(void)
{
    if (pool.threads <= 1)
        return;
    atomic_store(&pool.stop, 1);
    atomic_fetch_add(&pool.region, 1);
    wake_all();
    for (int i = 1; i < pool.threads; i++)
        pthread_join(pool.worker[i], NULL);
    atomic_store(&pool.stop, 0);
    pool.threads = 1;
}

int cnn_set_threads(int threads, char *err, size_t errlen)
{
    if (threads < 1 || threads > CNN_MAX_THREADS) {
        snprintf(err, errlen, "--threads must be between 1 and %d, got %d", CNN_MAX_THREADS,
                 threads);
        return -1;
    }
    /* The pool splits the work; OpenBLAS's own threads on top would oversubscribe the cores. */
    openblas_set_num_threads(1);
    if (threads == pool.threads)
        return 0;
    stop_workers();
#if defined(__SSE__)
    pool.csr = _mm_getcsr();
#endif
    pool.region_at_start = atomic_load(&pool.region);
    for (int i = 1; i < threads; i++) {
        int rc = pthread_create(&pool.worker[i], NULL, worker_main, (void *)(size_t)i);
        if (rc) {
            pool.threads = i;
            stop_workers();
            snprintf(err, errlen, "cannot start thread %d of %d: %s", i + 1, threads,
                     strerror(rc));
            return -1;
        }
        pool.threads = i + 1;
    }
    return 0;
}

int cnn_get_threads(void)
{
    return pool.threads;
}

int cnn_default_threads(void)
{
    /* The cores this process may run on (taskset, a container's cpuset), not the machine's:
     * more threads than cores would spin at every barrier on a core another one needs. */
    long n = sysconf(_SC_NPROCESSORS_ONLN);
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        n = CPU_COUNT(&set);
#endif
    return n < 1 ? 1 : n > CNN_MAX_THREADS ? CNN_MAX_THREADS : (int)n;
}

void cnn_parallel(cnn_part_fn fn, void *arg, int max_parts)
{
    int parts = pool.threads < max_parts ? pool.threads : max_parts;
    if (parts <= 1) {
        pool.parts = 1;
        fn(arg, 0, 1);
        return;
    }
    pool.fn = fn;
    pool.arg = arg;
    pool.parts = parts;
    atomic_store(&pool.finished, 0);
    atomic_store(&pool.arrived, 0);
    atomic_fetch_add(&pool.region, 1);
    wake_all();
    fn(arg, 0, parts);
    /* Every worker answers each region, taking part or not, so the next region's fields are
     * free to change. */
    int i = 0;
    while (atomic_load_explicit(&pool.finished, memory_order_acquire) < pool.threads - 1)
        if (++i < SPINS)
            relax();
        else
            sched_yield();
    pool.parts = 1;
}

void cnn_barrier(void)
{
    if (pool.parts <= 1)
        return;
    unsigned gen = atomic_load(&pool.barrier);
    if (atomic_fetch_add(&pool.arrived, 1) + 1 == pool.parts) {
        atomic_store(&pool.arrived, 0);
        atomic_fetch_add(&pool.barrier, 1);
        wake_all();
        return;
    }
    wait_change(&pool.barrier, gen);
}
