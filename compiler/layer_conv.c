/* conv N KxK [activation]: 2-D convolution over an HxWxC input (Keras Conv2D). */
#include "layers.h"

enum { O_STRIDE, O_PAD, O_L1, O_L2, O_INIT, O_BIAS, O_ALPHA };
static const char *const options[] = {"stride", "pad", "l1", "l2", "init", "bias", "alpha", NULL};
static const char *const pads[] = {"valid", "same", NULL};

static int parse(cnn_layer *L, const cnn_stmt *s, const cnn_args *a, cnn_diag *d)
{
    long filters;
    if (a->n_pos < 2)
        return cnn_error(d, s->loc, "'conv' needs a number of filters and a kernel size: %s",
                         cnn_layer_conv.usage);
    if (cnn_arg_int(a->pos[0], "number of filters", 1, 1 << 20, &filters, d) ||
        cnn_arg_dims2(a->pos[1], "kernel size", &L->kh, &L->kw, d))
        return -1;
    L->units = (int)filters;
    L->size_loc = a->pos[1]->loc;
    L->sh = L->sw = 1;
    if (a->opt[O_STRIDE] && cnn_arg_dims2(a->opt[O_STRIDE], "stride", &L->sh, &L->sw, d))
        return -1;
    if (a->opt[O_PAD]) {
        int k = cnn_arg_choice(a->opt[O_PAD], "padding", pads, d);
        if (k < 0)
            return -1;
        L->pad_same = k == 1;
    }
    return cnn_parse_activation(L, a->n_pos > 2 ? a->pos[2] : NULL, a->opt[O_ALPHA], d) ||
           cnn_parse_weight_options(L, a->opt[O_L1], a->opt[O_L2], a->opt[O_INIT],
                                    a->opt[O_BIAS], d);
}

/* Output size along one axis, and the zero padding before it, as Keras/TensorFlow define them. */
static int out_size(int in, int k, int stride, int same, int *pad_before)
{
    if (same) {
        int out = (in + stride - 1) / stride;
        int total = (out - 1) * stride + k - in;
        *pad_before = total > 0 ? total / 2 : 0;
        return out;
    }
    *pad_before = 0;
    return in < k ? 0 : (in - k) / stride + 1;
}

static int infer(cnn_layer *L, cnn_diag *d)
{
    char in[48];
    cnn_shape_text(L->in, in, sizeof in);
    if (L->in.rank != 3)
        return cnn_error(d, L->loc, "'conv' needs an HxWxC input, got %s after 'flatten'", in);
    int oh = out_size(L->in.h, L->kh, L->sh, L->pad_same, &L->pad_top);
    int ow = out_size(L->in.w, L->kw, L->sw, L->pad_same, &L->pad_left);
    if (oh < 1 || ow < 1)
        return cnn_error(d, L->size_loc, "kernel %dx%d is larger than its input %s", L->kh, L->kw,
                         in);
    L->out = (cnn_shape){3, oh, ow, L->units};
    int cin = L->in.c;
    cnn_param *k = cnn_layer_add_param(L, "kernel", 4, (int[]){L->kh, L->kw, cin, L->units},
                                       L->init, 1);
    k->fan_in = L->kh * L->kw * cin;
    k->fan_out = L->kh * L->kw * L->units;
    k->l1 = L->l1;
    k->l2 = L->l2;
    if (L->use_bias)
        cnn_layer_add_param(L, "bias", 1, (int[]){L->units}, CNN_INIT_ZEROS, 1);
    L->flops = 2.0 * L->kh * L->kw * cin * (double)cnn_shape_size(L->out);
    return 0;
}

const cnn_layer_desc cnn_layer_conv = {
    .keyword = "conv",
    .type = CNN_LAYER_CONV,
    .keras_name = "conv2d",
    .keras_type = "Conv2D",
    .usage = "conv N KxK [activation] [stride=S] [pad=valid|same] [l1=] [l2=] [init=] [bias=]",
    .options = options,
    .max_positional = 3,
    .parse = parse,
    .infer = infer,
};
