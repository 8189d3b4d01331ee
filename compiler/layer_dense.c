/* dense N [activation]: a fully connected layer over a flat input (Keras Dense). */
#include "layers.h"

enum { O_L1, O_L2, O_INIT, O_BIAS, O_ALPHA };
static const char *const options[] = {"l1", "l2", "init", "bias", "alpha", NULL};

static int parse(cnn_layer *L, const cnn_stmt *s, const cnn_args *a, cnn_diag *d)
{
    long units;
    if (a->n_pos < 1)
        return cnn_error(d, s->loc, "'dense' needs a number of units: %s", cnn_layer_dense.usage);
    if (cnn_arg_int(a->pos[0], "number of units", 1, 1 << 24, &units, d))
        return -1;
    L->units = (int)units;
    return cnn_parse_activation(L, a->n_pos > 1 ? a->pos[1] : NULL, a->opt[O_ALPHA], d) ||
           cnn_parse_weight_options(L, a->opt[O_L1], a->opt[O_L2], a->opt[O_INIT],
                                    a->opt[O_BIAS], d);
}

static int infer(cnn_layer *L, cnn_diag *d)
{
    if (L->in.rank != 1) {
        char in[48];
        cnn_shape_text(L->in, in, sizeof in);
        return cnn_error(d, L->loc, "'dense' needs a flat input, got %s; add 'flatten' before it",
                         in);
    }
    int n_in = L->in.c;
    L->out = (cnn_shape){1, 1, 1, L->units};
    cnn_param *k = cnn_layer_add_param(L, "kernel", 2, (int[]){n_in, L->units}, L->init, 1);
    k->fan_in = n_in;
    k->fan_out = L->units;
    k->l1 = L->l1;
    k->l2 = L->l2;
    if (L->use_bias)
        cnn_layer_add_param(L, "bias", 1, (int[]){L->units}, CNN_INIT_ZEROS, 1);
    L->flops = 2.0 * n_in * L->units;
    return 0;
}

const cnn_layer_desc cnn_layer_dense = {
    .keyword = "dense",
    .type = CNN_LAYER_DENSE,
    .keras_name = "dense",
    .keras_type = "Dense",
    .usage = "dense N [activation] [l1=] [l2=] [init=] [bias=]",
    .options = options,
    .max_positional = 2,
    .parse = parse,
    .infer = infer,
};
