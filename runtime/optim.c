/* Optimizers with Keras' update rules: SGD (momentum, Nesterov), RMSprop, Adam, AdamW. */
#include <math.h>
#include <stdlib.h>

#include "cnnrt.h"

struct cnn_optimizer {
    cnn_train_cfg cfg;
    long step; /* updates done so far */
};

cnn_optimizer *cnn_optimizer_new(cnn_model *m, const cnn_train_cfg *cfg)
{
    cnn_optimizer *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->cfg = *cfg;
    (void)m;
    return o;
}

void cnn_optimizer_free(cnn_optimizer *o)
{
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
        float *w = T->value, *g = T->grad, *s1 = T->slot[0], *s2 = T->slot[1];
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

long cnn_optimizer_steps(const cnn_optimizer *o)
{
    return o->step;
}

void cnn_optimizer_set_steps(cnn_optimizer *o, long steps)
{
    o->step = steps;
}
