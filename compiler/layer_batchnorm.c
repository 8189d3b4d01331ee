/* batchnorm: batch normalization over the last axis (Keras BatchNormalization). */
#include "layers.h"

enum { O_MOMENTUM, O_EPS };
static const char *const options[] = {"momentum", "eps", NULL};

static int parse(cnn_layer *L, const cnn_stmt *s, const cnn_args *a, cnn_diag *d)
{
    (void)s;
    double v;
    L->momentum = 0.99f; /* Keras' defaults */
    L->eps = 0.001f;
    if (a->opt[O_MOMENTUM]) {
        if (cnn_arg_real(a->opt[O_MOMENTUM], "momentum", 0, 1, 0, &v, d))
            return -1;
        L->momentum = (float)v;
    }
    if (a->opt[O_EPS]) {
        if (cnn_arg_real(a->opt[O_EPS], "eps", 0, 1, CNN_MIN_OPEN, &v, d))
            return -1;
        L->eps = (float)v;
    }
    return 0;
}

static int infer(cnn_layer *L, cnn_diag *d)
{
    (void)d;
    L->out = L->in;
    int c = L->in.c;
    cnn_layer_add_param(L, "gamma", 1, &c, CNN_INIT_ONES, 1);
    cnn_layer_add_param(L, "beta", 1, &c, CNN_INIT_ZEROS, 1);
    cnn_layer_add_param(L, "moving_mean", 1, &c, CNN_INIT_ZEROS, 0);
    cnn_layer_add_param(L, "moving_variance", 1, &c, CNN_INIT_ONES, 0);
    return 0;
}

const cnn_layer_desc cnn_layer_batchnorm = {
    .keyword = "batchnorm",
    .type = CNN_LAYER_BATCHNORM,
    .keras_name = "batch_normalization",
    .keras_type = "BatchNormalization",
    .usage = "batchnorm [momentum=0.99] [eps=0.001]",
    .options = options,
    .max_positional = 0,
    .parse = parse,
    .infer = infer,
};
