/* Optimizers with Keras' update rules: SGD (momentum, Nesterov), RMSprop, Adam, AdamW. */
#include <math.h>
#include <stdlib.h>

#include "cnnrt.h"

struct cnn_optimizer {
    cnn_train_cfg cfg;
    long step;       /* updates done so far */
    int n_tensors;
    float **slot1;   /* per tensor: sgd/rmsprop momentum, adam first moment */
    float **slot2;   /* per tensor: rmsprop mean square, adam second moment */
};

cnn_optimizer *cnn_optimizer_new(const cnn_model *m, const cnn_train_cfg *cfg)
{
    cnn_optimizer *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->cfg = *cfg;
    o->n_tensors = m->n_tensors;
    o->slot1 = calloc((size_t)m->n_tensors, sizeof(float *));
    o->slot2 = calloc((size_t)m->n_tensors, sizeof(float *));
    if (!o->slot1 || !o->slot2) {
        cnn_optimizer_free(o);
        return NULL;
    }
    for (int t = 0; t < m->n_tensors; t++) {
        if (!m->tensors[t].grad)
            continue;
        o->slot1[t] = calloc(m->tensors[t].size, sizeof(float));
        o->slot2[t] = calloc(m->tensors[t].size, sizeof(float));
        if (!o->slot1[t] || !o->slot2[t]) {
            cnn_optimizer_free(o);
            return NULL;
        }
    }
    return o;
}

void cnn_optimizer_free(cnn_optimizer *o)
{
    if (!o)
        return;
    for (int t = 0; t < o->n_tensors; t++) {
        if (o->slot1)
            free(o->slot1[t]);
        if (o->slot2)
            free(o->slot2[t]);
    }
    free(o->slot1);
    free(o->slot2);
    free(o);
}

void cnn_optimizer_step(cnn_optimizer *o, cnn_model *m, double lr)
{
    const cnn_train_cfg *c = &o->cfg;
    o->step++;
    /* Adam's bias corrections folded into the step size, as Keras does. */
    double alpha = lr * sqrt(1.0 - pow(c->beta2, (double)o->step)) /
                   (1.0 - pow(c->beta1, (double)o->step));
    for (int t = 0; t < m->n_tensors; t++) {
        cnn_tensor *T = &m->tensors[t];
        if (!T->grad)
            continue;
        float *w = T->value, *g = T->grad, *s1 = o->slot1[t], *s2 = o->slot2[t];
        size_t n = T->size;
        switch (c->optimizer) {
        case CNN_OPTIM_SGD:
            for (size_t i = 0; i < n; i++) {
                if (c->momentum == 0) {
                    w[i] -= (float)(lr * g[i]);
                    continue;
                }
                s1[i] = (float)(c->momentum * s1[i] - lr * g[i]);
                w[i] += c->nesterov ? (float)(c->momentum * s1[i] - lr * g[i]) : s1[i];
            }
            break;
        case CNN_OPTIM_RMSPROP:
            for (size_t i = 0; i < n; i++) {
                s2[i] = (float)(c->rho * s2[i] + (1.0 - c->rho) * g[i] * g[i]);
                double inc = lr * g[i] / (sqrt(s2[i]) + c->eps);
                if (c->momentum > 0) {
                    s1[i] = (float)(c->momentum * s1[i] + inc);
                    w[i] -= s1[i];
                } else
                    w[i] -= (float)inc;
            }
            break;
        case CNN_OPTIM_ADAMW:
        case CNN_OPTIM_ADAM:
            for (size_t i = 0; i < n; i++) {
                if (c->optimizer == CNN_OPTIM_ADAMW)
                    w[i] -= (float)(lr * c->weight_decay * w[i]);
                s1[i] = (float)(c->beta1 * s1[i] + (1.0 - c->beta1) * g[i]);
                s2[i] = (float)(c->beta2 * s2[i] + (1.0 - c->beta2) * g[i] * g[i]);
                w[i] -= (float)(alpha * s1[i] / (sqrt(s2[i]) + c->eps));
            }
            break;
        }
    }
}
