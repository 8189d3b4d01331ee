/* pool S [max|avg]: 2-D pooling with a window of SxS (or HxW), stride = size by default. */
#include "layers.h"

enum { O_STRIDE };
static const char *const options[] = {"stride", NULL};
static const char *const kinds[] = {"max", "avg", NULL};

static int parse(cnn_layer *L, const cnn_stmt *s, const cnn_args *a, cnn_diag *d)
{
    if (a->n_pos < 1)
        return cnn_error(d, s->loc, "'pool' needs a window size: %s", cnn_layer_pool.usage);
    if (cnn_arg_dims2(a->pos[0], "pool size", &L->kh, &L->kw, d))
        return -1;
    L->size_loc = a->pos[0]->loc;
    L->pool = CNN_POOL_MAX;
    if (a->n_pos > 1) {
        int k = cnn_arg_choice(a->pos[1], "pooling kind", kinds, d);
        if (k < 0)
            return -1;
        L->pool = (cnn_pool_kind)k;
    }
    L->sh = L->kh;
    L->sw = L->kw;
    if (a->opt[O_STRIDE] && cnn_arg_dims2(a->opt[O_STRIDE], "stride", &L->sh, &L->sw, d))
        return -1;
    if (L->pool == CNN_POOL_AVG) {
        L->type_name = "AveragePooling2D";
        L->name_prefix = "average_pooling2d";
    }
    return 0;
}

static int infer(cnn_layer *L, cnn_diag *d)
{
    char in[48];
    cnn_shape_text(L->in, in, sizeof in);
    if (L->in.rank != 3)
        return cnn_error(d, L->loc, "'pool' needs an HxWxC input, got %s after 'flatten'", in);
    int oh = L->in.h < L->kh ? 0 : (L->in.h - L->kh) / L->sh + 1;
    int ow = L->in.w < L->kw ? 0 : (L->in.w - L->kw) / L->sw + 1;
    if (oh < 1 || ow < 1)
        return cnn_error(d, L->size_loc, "pooling %dx%d leaves zero size: its input is %s", L->kh,
                         L->kw, in);
    L->out = (cnn_shape){3, oh, ow, L->in.c};
    return 0;
}

const cnn_layer_desc cnn_layer_pool = {
    .keyword = "pool",
    .type = CNN_LAYER_POOL,
    .keras_name = "max_pooling2d",
    .keras_type = "MaxPooling2D",
    .usage = "pool S [max|avg] [stride=S]",
    .options = options,
    .max_positional = 2,
    .parse = parse,
    .infer = infer,
};
