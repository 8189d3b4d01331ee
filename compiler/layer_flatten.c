/* flatten: HxWxC to H*W*C features in height-width-channel order (Keras Flatten). */
#include "layers.h"

static int infer(cnn_layer *L, cnn_diag *d)
{
    /* Every shape's size already fits an int (cnn_check_elems in ir.c); checked anyway, so
     * that a shape let through elsewhere cannot wrap here. */
    int64_t n = cnn_shape_size(L->in);
    char in[48];
    cnn_shape_text(L->in, in, sizeof in);
    if (cnn_check_elems(d, L->loc, "flatten's input", in, n))
        return -1;
    L->out = (cnn_shape){1, 1, 1, (int)n};
    return 0;
}

static int gen_flags(const cnn_layer *L)
{
    (void)L;
    return GEN_ALIAS; /* [n][h][w][c] is already [n][h*w*c] */
}

const cnn_layer_desc cnn_layer_flatten = {
    .keyword = "flatten",
    .type = CNN_LAYER_FLATTEN,
    .keras_name = "flatten",
    .keras_type = "Flatten",
    .usage = "flatten",
    .options = NULL,
    .max_positional = 0,
    .infer = infer,
    .gen_flags = gen_flags,
};
