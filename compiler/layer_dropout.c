/* dropout RATE: inverted dropout in training, identity in inference (Keras Dropout). */
#include "layers.h"

static int parse(cnn_layer *L, const cnn_stmt *s, const cnn_args *a, cnn_diag *d)
{
    double rate;
    if (a->n_pos < 1)
        return cnn_error(d, s->loc, "'dropout' needs a rate: %s", cnn_layer_dropout.usage);
    if (cnn_arg_real(a->pos[0], "dropout rate", 0, 1, CNN_MAX_OPEN, &rate, d))
        return -1;
    L->rate = (float)rate;
    return 0;
}

static int infer(cnn_layer *L, cnn_diag *d)
{
    (void)d;
    L->out = L->in;
    return 0;
}

const cnn_layer_desc cnn_layer_dropout = {
    .keyword = "dropout",
    .type = CNN_LAYER_DROPOUT,
    .keras_name = "dropout",
    .keras_type = "Dropout",
    .usage = "dropout RATE (0 <= RATE < 1)",
    .options = NULL,
    .max_positional = 1,
    .parse = parse,
    .infer = infer,
};
