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

/* One update, split between the threads of the pool: each part takes a slice of every tensor
 * (elements are independent, so the result does not depend on the split). */
typedef struct update {
    const cnn_train_cfg *cfg;
    cnn_model *m;
    double lr, alpha;
} update;

static void update_part(void *arg, int part, int parts)
{
    const update *u = arg;
    const cnn_train_cfg *c = u->cfg;
    double lr = u->lr, alpha = u->alpha;
    for (int t = 0; t < u->m->n_tensors; t++) {
        cnn_tensor *T = &u->m->tensors[t];
        if (!T->grad)
            continue;
        size_t lo = T->size * (size_t)part / (size_t)parts;
        size_t n = T->size * (size_t)(part + 1) / (size_t)parts - lo;
        float *w = T->value + lo, *g = T->grad + lo;
        float *s1 = T->slot[0] ? T->slot[0] + lo : NULL, *s2 = T->slot[1] ? T->slot[1] + lo : NULL;
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
        case CNN_OPTIM_ADAM: {
            /* Constants in locals and one test outside the loop, so that it vectorizes. */
            const double b1 = c->beta1, b2 = c->beta2, eps = c->eps;
            const double decay = c->optimizer == CNN_OPTIM_ADAMW ? lr * c->weight_decay : 0.0;
            if (decay != 0.0)
                for (size_t i = 0; i < n; i++)
                    w[i] -= (float)(decay * w[i]);
            for (size_t i = 0; i < n; i++) {
                s1[i] = (float)(b1 * s1[i] + (1.0 - b1) * g[i]);
                s2[i] = (float)(b2 * s2[i] + (1.0 - b2) * g[i] * g[i]);
                w[i] -= (float)(alpha * s1[i] / (sqrt(s2[i]) + eps));
            }
            break;
        }
        }
    }
}

void cnn_optimizer_step(cnn_optimizer *o, cnn_model *m, double lr)
{
    const cnn_train_cfg *c = &o->cfg;
    o->step++;
    /* Adam's bias corrections folded into the step size, as Keras does. */
    double alpha = lr * sqrt(1.0 - pow(c->beta2, (double)o->step)) /
                   (1.0 - pow(c->beta1, (double)o->step));
    update u = {.cfg = c, .m = m, .lr = lr, .alpha = alpha};
    /* Small models are not worth waking the pool for. */
    size_t total = cnn_param_count(m, 1);
    cnn_parallel(update_part, &u, total < 16384 ? 1 : CNN_MAX_THREADS);
}

long cnn_optimizer_steps(const cnn_optimizer *o)
{
    return o->step;
}

void cnn_optimizer_set_steps(cnn_optimizer *o, long steps)
{
    o->step = steps;
}
