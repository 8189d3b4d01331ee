/* The training loop and evaluation, shared by every backend through the model interface. */
#include <math.h>
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

int cnn_predicted(const cnn_model *m, int b)
{
    const float *p = m->output + (size_t)b * m->n_classes;
    int best = 0;
    for (int i = 1; i < m->n_classes; i++)
        if (p[i] > p[best])
            best = i;
    return best;
}

/* The targets of a batch for loss mse (labels for a classifier), into t; NULL if not mse. */
static float *targets_of(const cnn_model *m, const cnn_dataset *ds, const int *idx, int n,
                         float *t)
{
    if (m->train.loss != CNN_LOSS_MSE)
        return NULL;
    cnn_dataset_targets(ds, idx, n, t);
    return t;
}

cnn_eval cnn_evaluate(cnn_model *m, const cnn_dataset *ds, const int *idx, int n, long *confusion)
{
    cnn_eval e = {0};
    if (!m->ops->loss)
        return e; /* no loss, no accuracy: evaluated nothing */
    int classifier = m->train.loss == CNN_LOSS_CROSSENTROPY;
    float *x = malloc(sizeof(float) * cnn_input_size(m) * (size_t)m->max_batch);
    int *labels = malloc(sizeof(int) * (size_t)m->max_batch);
    float *t = malloc(sizeof(float) * (size_t)m->n_classes * (size_t)m->max_batch);
    if (!x || !labels || !t || n <= 0) {
        free(x), free(labels), free(t);
        return e;
    }
    double loss = 0;
    int correct = 0;
    for (int start = 0; start < n; start += m->max_batch) {
        int bn = n - start < m->max_batch ? n - start : m->max_batch;
        cnn_dataset_batch(ds, idx + start, bn, x, labels);
        m->ops->forward(m, x, bn, 0, NULL);
        loss += m->ops->loss(m, labels, targets_of(m, ds, idx + start, bn, t), bn) * bn;
        for (int b = 0; b < bn && classifier; b++) {
            int p = cnn_predicted(m, b);
            correct += p == labels[b];
            if (confusion)
                confusion[labels[b] * m->n_classes + p]++;
        }
    }
    free(x), free(labels), free(t);
    e.n = n;
    e.loss = loss / n + cnn_penalty(m);
    e.accuracy = classifier ? (double)correct / n : NAN; /* loss mse: none */
    return e;
}

/* A fresh permutation each epoch, so that it depends on the stream's state alone (which is
 * what a checkpoint keeps). */
static void shuffle(int *order, const int *idx, int n, cnn_rng *rng)
{
    memcpy(order, idx, sizeof(int) * (size_t)n);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)cnn_rng_below(rng, (uint32_t)i + 1);
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

static void progress(FILE *out, int epoch, int epochs, int done, int total, double elapsed,
                     double loss, double acc, int classifier)
{
    int width = 24, filled = total ? (int)((long)width * done / total) : width;
    char bar[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '=' : (i == filled ? '>' : '.');
    bar[width] = '\0';
    double eta = done ? elapsed * (total - done) / done : 0;
    fprintf(out, "\repoch %d/%d %6d/%d [%s] %s %3.0fs  loss %.4f", epoch, epochs, done, total,
            bar, done < total ? "ETA" : "in ", done < total ? eta : elapsed, loss);
    if (classifier)
        fprintf(out, "  accuracy %.4f", acc);
    fflush(out);
}

int cnn_fit(cnn_model *m, const cnn_dataset *ds, const cnn_fit_opts *opts)
{
    const cnn_train_cfg *cfg = &opts->cfg;
    if (!m->ops->loss)
        return -1;
    int n = opts->limit > 0 && opts->limit < ds->n ? opts->limit : ds->n;
    int *split = NULL;
    const int *train_idx = opts->idx, *val_idx = opts->val;
    int n_train = opts->n_idx, n_val = opts->n_val;
    if (!train_idx) {
        /* As Keras' validation_split: the last fraction of the data, before any shuffling. */
        n_train = (int)((double)n * (1.0 - cfg->validation));
        n_val = n - n_train;
        split = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
        if (!split)
            return -1;
        for (int i = 0; i < n; i++)
            split[i] = i;
        train_idx = split;
        val_idx = split + n_train;
    }
    int batch = cfg->batch < m->max_batch ? cfg->batch : m->max_batch;
    int classifier = m->train.loss == CNN_LOSS_CROSSENTROPY;
    int *order = malloc(sizeof(int) * (size_t)(n_train > 0 ? n_train : 1));
    float *x = malloc(sizeof(float) * cnn_input_size(m) * (size_t)batch);
    int *labels = malloc(sizeof(int) * (size_t)batch);
    float *tbuf = malloc(sizeof(float) * (size_t)m->n_classes * (size_t)batch);
    cnn_optimizer *opt = cnn_optimizer_new(m, cfg);
    int rc = 0;
    if (!order || !x || !labels || !tbuf || !opt) {
        rc = -1;
        goto done;
    }
    cnn_train_state st = {0};
    if (opts->resume) {
        st = *opts->resume;
        cnn_optimizer_set_steps(opt, st.step);
    } else {
        cnn_zero_slots(m);
        cnn_rng_seed(&st.shuffle, cfg->seed ^ SHUFFLE_STREAM);
        cnn_rng_seed(&st.dropout, cfg->seed ^ DROPOUT_STREAM);
    }
    for (int epoch = st.epoch; epoch < cfg->epochs; epoch++) {
        double t0 = now_seconds();
        double lr = cnn_schedule_lr(cfg, epoch);
        if (opts->shuffle)
            shuffle(order, train_idx, n_train, &st.shuffle);
        else
            memcpy(order, train_idx, sizeof(int) * (size_t)n_train);
        double loss_sum = 0;
        int correct = 0;
        double last_draw = 0;
        for (int start = 0; start < n_train; start += batch) {
            int bn = n_train - start < batch ? n_train - start : batch;
            cnn_dataset_batch(ds, order + start, bn, x, labels);
            const float *targets = targets_of(m, ds, order + start, bn, tbuf);
            cnn_zero_grad(m);
            m->ops->forward(m, x, bn, 1, &st.dropout);
            /* Keras reports the running mean of the optimized loss, penalty included. */
            double batch_loss = m->ops->loss(m, labels, targets, bn) + cnn_penalty(m);
            for (int b = 0; b < bn && classifier; b++)
                correct += cnn_predicted(m, b) == labels[b];
            /* A loss that is not finite stops training before the step: no weight and no
             * checkpoint gets what this batch did. --check-numerics also names the first
             * layer whose output, or then whose gradient, went wrong. */
            const char *layer = opts->check_numerics ? m->ops->first_not_finite(m, bn, 0) : NULL;
            int in_backward = 0;
            if (!layer && isfinite(batch_loss)) {
                m->ops->backward(m, labels, targets, bn);
                cnn_penalty_grad(m);
                if (opts->check_numerics && (layer = m->ops->first_not_finite(m, bn, 1)))
                    in_backward = 1;
            }
            if (!isfinite(batch_loss) || layer) {
                if (opts->stop)
                    *opts->stop = (struct cnn_fit_stop){epoch + 1, start / batch + 1,
                                                        (n_train + batch - 1) / batch, batch_loss,
                                                        layer, in_backward};
                if (opts->progress && opts->log)
                    fputs("\n", opts->log);
                rc = CNN_FIT_NOT_FINITE;
                goto done;
            }
            loss_sum += batch_loss * bn;
            cnn_optimizer_step(opt, m, lr);
            double t = now_seconds();
            if (opts->progress && opts->log && t - last_draw > 0.1) {
                int done = start + bn;
                progress(opts->log, epoch + 1, cfg->epochs, done, n_train, t - t0,
                         loss_sum / done, (double)correct / done, classifier);
                last_draw = t;
            }
        }
        st.epoch = epoch + 1;
        st.step = cnn_optimizer_steps(opt);
        cnn_epoch_stats s = {.epoch = epoch + 1, .lr = lr, .state = &st};
        s.train.n = n_train;
        s.train.loss = n_train ? loss_sum / n_train : 0;
        s.train.accuracy = !classifier ? NAN : n_train ? (double)correct / n_train : 0;
        if (n_val > 0)
            s.val = cnn_evaluate(m, ds, val_idx, n_val, NULL);
        s.seconds = now_seconds() - t0;
        if (opts->log) {
            if (opts->progress)
                fputs("\r\033[K", opts->log);
            fprintf(opts->log, "epoch %d/%d  lr %.6g  loss %.4f", s.epoch, cfg->epochs, lr,
                    s.train.loss);
            if (classifier)
                fprintf(opts->log, "  accuracy %.4f", s.train.accuracy);
            if (n_val > 0)
                fprintf(opts->log, "  val_loss %.4f", s.val.loss);
            if (n_val > 0 && classifier)
                fprintf(opts->log, "  val_accuracy %.4f", s.val.accuracy);
            fprintf(opts->log, "  %.1fs\n", s.seconds);
            fflush(opts->log);
        }
        if (opts->on_epoch && (rc = opts->on_epoch(&s, opt, opts->ctx)) != 0)
            break;
    }
done:
    free(split);
    free(order);
    free(x);
    free(labels);
    free(tbuf);
    cnn_optimizer_free(opt);
    return rc;
}
