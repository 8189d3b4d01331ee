/* Model-wide helpers over the tensor table: defaults, init, gradients, regularization. */
#include <math.h>
#include <string.h>

#include "cnnrt.h"

void cnn_optim_defaults(cnn_train_cfg *cfg, cnn_optim_kind kind)
{
    /* Keras' defaults for each optimizer. */
    cfg->optimizer = kind;
    cfg->lr = kind == CNN_OPTIM_SGD ? 0.01 : 0.001;
    cfg->momentum = 0.0;
    cfg->nesterov = 0;
    cfg->rho = 0.9;
    cfg->beta1 = 0.9;
    cfg->beta2 = 0.999;
    cfg->eps = 1e-7;
    cfg->weight_decay = kind == CNN_OPTIM_ADAMW ? 0.004 : 0.0;
}

void cnn_train_cfg_defaults(cnn_train_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->loss = CNN_LOSS_CROSSENTROPY;
    cnn_optim_defaults(cfg, CNN_OPTIM_ADAM);
    cfg->batch = 32;
    cfg->epochs = 1;
    cfg->validation = 0.0;
    cfg->schedule = CNN_SCHED_CONSTANT;
    cfg->sched_every = 1;
    cfg->sched_factor = 1.0;
    cfg->seed = 1;
}

const char *cnn_optim_name(cnn_optim_kind kind)
{
    static const char *const names[] = {"sgd", "rmsprop", "adam", "adamw"};
    return names[kind];
}

const char *cnn_sched_name(cnn_sched_kind kind)
{
    static const char *const names[] = {"constant", "step", "exponential", "cosine"};
    return names[kind];
}

void cnn_model_destroy(cnn_model *m)
{
    if (m)
        m->ops->destroy(m);
}

void cnn_zero_grad(cnn_model *m)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].grad)
            memset(m->tensors[i].grad, 0, m->tensors[i].size * sizeof(float));
}

void cnn_zero_slots(cnn_model *m)
{
    for (int t = 0; t < m->n_tensors; t++)
        for (int k = 0; k < 2; k++)
            if (m->tensors[t].slot[k])
                memset(m->tensors[t].slot[k], 0, m->tensors[t].size * sizeof(float));
}

/* Keras' truncated normal: redraw beyond two standard deviations, and widen the stddev by
 * 1/0.8796 so that the truncated distribution keeps the intended variance. */
static float truncated_normal(cnn_rng *rng, double stddev)
{
    double z;
    do
        z = cnn_rng_normal(rng);
    while (fabs(z) > 2.0);
    return (float)(z * stddev / 0.87962566103423978);
}

void cnn_init_tensors(cnn_model *m, cnn_rng *rng)
{
    for (int t = 0; t < m->n_tensors; t++) {
        cnn_tensor *T = &m->tensors[t];
        double fan_in = T->fan_in, fan_out = T->fan_out;
        for (size_t i = 0; i < T->size; i++) {
            float v = 0;
            switch (T->init) {
            case CNN_INIT_ZEROS: v = 0; break;
            case CNN_INIT_ONES: v = 1; break;
            case CNN_INIT_GLOROT_UNIFORM: {
                double limit = sqrt(6.0 / (fan_in + fan_out));
                v = (float)((2.0 * cnn_rng_uniform(rng) - 1.0) * limit);
                break;
            }
            case CNN_INIT_GLOROT_NORMAL: v = truncated_normal(rng, sqrt(2.0 / (fan_in + fan_out))); break;
            case CNN_INIT_HE_UNIFORM: {
                double limit = sqrt(6.0 / fan_in);
                v = (float)((2.0 * cnn_rng_uniform(rng) - 1.0) * limit);
                break;
            }
            case CNN_INIT_HE_NORMAL: v = truncated_normal(rng, sqrt(2.0 / fan_in)); break;
            }
            T->value[i] = v;
        }
    }
}

int cnn_copy_tensors(cnn_model *dst, const cnn_model *src)
{
    if (dst->n_tensors != src->n_tensors)
        return -1;
    for (int t = 0; t < src->n_tensors; t++)
        if (dst->tensors[t].size != src->tensors[t].size ||
            strcmp(dst->tensors[t].name, src->tensors[t].name) != 0)
            return -1;
    for (int t = 0; t < src->n_tensors; t++)
        memcpy(dst->tensors[t].value, src->tensors[t].value, src->tensors[t].size * sizeof(float));
    return 0;
}

size_t cnn_param_count(const cnn_model *m, int trainable_only)
{
    size_t n = 0;
    for (int t = 0; t < m->n_tensors; t++)
        if (!trainable_only || m->tensors[t].grad)
            n += m->tensors[t].size;
    return n;
}

double cnn_penalty(const cnn_model *m)
{
    double total = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        const cnn_tensor *T = &m->tensors[t];
        if (T->l1 == 0 && T->l2 == 0)
            continue;
        double s1 = 0, s2 = 0;
        for (size_t i = 0; i < T->size; i++) {
            s1 += fabs(T->value[i]);
            s2 += (double)T->value[i] * T->value[i];
        }
        total += T->l1 * s1 + T->l2 * s2;
    }
    return total;
}

void cnn_penalty_grad(cnn_model *m)
{
    for (int t = 0; t < m->n_tensors; t++) {
        cnn_tensor *T = &m->tensors[t];
        if (!T->grad || (T->l1 == 0 && T->l2 == 0))
            continue;
        for (size_t i = 0; i < T->size; i++) {
            float w = T->value[i];
            /* d|w|/dw is taken as 0 at w == 0, as TensorFlow's sign() does. */
            float sign = (float)((w > 0) - (w < 0));
            T->grad[i] += T->l1 * sign + 2.0f * T->l2 * w;
        }
    }
}
