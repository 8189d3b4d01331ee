/* The training loop and evaluation, shared by every backend through the model interface. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cnnrt.h"

/* Distinct streams from one seed: shuffling and dropout must not perturb each other. */
#define SHUFFLE_STREAM 0x5348554646ULL
#define DROPOUT_STREAM 0x44524f50ULL

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int argmax(const float *p, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (p[i] > p[best])
            best = i;
    return best;
}

static int count_correct(const cnn_model *m, const int *labels, int n)
{
    int correct = 0;
    for (int b = 0; b < n; b++)
        correct += argmax(m->output + (size_t)b * m->n_classes, m->n_classes) == labels[b];
    return correct;
}

cnn_eval cnn_evaluate(cnn_model *m, const cnn_dataset *ds, const int *idx, int n)
{
    cnn_eval e = {0};
    float *x = malloc(sizeof(float) * cnn_input_size(m) * (size_t)m->max_batch);
    int *labels = malloc(sizeof(int) * (size_t)m->max_batch);
    if (!x || !labels || n <= 0) {
        free(x);
        free(labels);
        return e;
    }
    double loss = 0;
    int correct = 0;
    for (int start = 0; start < n; start += m->max_batch) {
        int bn = n - start < m->max_batch ? n - start : m->max_batch;
        cnn_dataset_batch(ds, idx + start, bn, x, labels);
        m->ops->forward(m, x, bn, 0, NULL);
        loss += m->ops->loss(m, labels, bn) * bn;
        correct += count_correct(m, labels, bn);
    }
    free(x);
    free(labels);
    e.n = n;
    e.loss = loss / n + cnn_penalty(m);
    e.accuracy = (double)correct / n;
    return e;
}

static void shuffle(int *idx, int n, cnn_rng *rng)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)cnn_rng_below(rng, (uint32_t)i + 1);
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

int cnn_fit(cnn_model *m, const cnn_dataset *ds, const cnn_fit_opts *opts)
{
    const cnn_train_cfg *cfg = &opts->cfg;
    int n = opts->limit > 0 && opts->limit < ds->n ? opts->limit : ds->n;
    /* As Keras' validation_split: the last fraction of the data, before any shuffling. */
    int n_train = (int)((double)n * (1.0 - cfg->validation));
    int n_val = n - n_train;
    int batch = cfg->batch < m->max_batch ? cfg->batch : m->max_batch;
    int *idx = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    float *x = malloc(sizeof(float) * cnn_input_size(m) * (size_t)batch);
    int *labels = malloc(sizeof(int) * (size_t)batch);
    cnn_optimizer *opt = cnn_optimizer_new(m, cfg);
    if (!idx || !x || !labels || !opt) {
        free(idx);
        free(x);
        free(labels);
        cnn_optimizer_free(opt);
        return -1;
    }
    for (int i = 0; i < n; i++)
        idx[i] = i;
    cnn_rng shuffle_rng, dropout_rng;
    cnn_rng_seed(&shuffle_rng, cfg->seed ^ SHUFFLE_STREAM);
    cnn_rng_seed(&dropout_rng, cfg->seed ^ DROPOUT_STREAM);

    for (int epoch = 0; epoch < cfg->epochs; epoch++) {
        double t0 = now_seconds();
        double lr = cnn_schedule_lr(cfg, epoch);
        if (opts->shuffle)
            shuffle(idx, n_train, &shuffle_rng);
        double loss_sum = 0;
        int correct = 0;
        for (int start = 0; start < n_train; start += batch) {
            int bn = n_train - start < batch ? n_train - start : batch;
            cnn_dataset_batch(ds, idx + start, bn, x, labels);
            cnn_zero_grad(m);
            m->ops->forward(m, x, bn, 1, &dropout_rng);
            /* Keras reports the running mean of the optimized loss, penalty included. */
            loss_sum += (m->ops->loss(m, labels, bn) + cnn_penalty(m)) * bn;
            correct += count_correct(m, labels, bn);
            m->ops->backward(m, labels, bn);
            cnn_penalty_grad(m);
            cnn_optimizer_step(opt, m, lr);
        }
        cnn_epoch_stats s = {.epoch = epoch + 1, .lr = lr};
        s.train.n = n_train;
        s.train.loss = n_train ? loss_sum / n_train : 0;
        s.train.accuracy = n_train ? (double)correct / n_train : 0;
        if (n_val > 0)
            s.val = cnn_evaluate(m, ds, idx + n_train, n_val);
        s.seconds = now_seconds() - t0;
        if (opts->log) {
            fprintf(opts->log, "epoch %d/%d  lr %.6g  loss %.4f  accuracy %.4f", s.epoch,
                    cfg->epochs, lr, s.train.loss, s.train.accuracy);
            if (n_val > 0)
                fprintf(opts->log, "  val_loss %.4f  val_accuracy %.4f", s.val.loss,
                        s.val.accuracy);
            fprintf(opts->log, "  %.1fs\n", s.seconds);
            fflush(opts->log);
        }
        if (opts->on_epoch)
            opts->on_epoch(&s, opts->ctx);
    }
    free(idx);
    free(x);
    free(labels);
    cnn_optimizer_free(opt);
    return 0;
}
