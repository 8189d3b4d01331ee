/* dwconv KxK [activation]: depthwise 2-D convolution, each input channel convolved with its
 * own `multiplier` filters (Keras DepthwiseConv2D): output channel c * M + m is channel c's
 * m-th filter. The separable convolutions of MobileNet and DS-CNN are a dwconv, then a 1x1
 * conv. Not a matrix product: direct loops, the window's taps unrolled where they are few. */
#include "layers.h"

/* conv's seven options in conv's order (cnn_parse_conv_options), then this layer's own. */
enum { O_MULTIPLIER = 7 };
static const char *const options[] = {"stride", "pad", "l1", "l2", "init", "bias", "alpha",
                                      "multiplier", NULL};

static int parse(cnn_layer *L, const cnn_stmt *s, const cnn_args *a, cnn_diag *d)
{
    if (a->n_pos < 1)
        return cnn_error(d, s->loc, "'dwconv' needs a kernel size: %s", cnn_layer_dwconv.usage);
    if (cnn_arg_dims2(a->pos[0], "kernel size", &L->kh, &L->kw, d))
        return -1;
    L->size_loc = a->pos[0]->loc;
    long m = 1;
    if (a->opt[O_MULTIPLIER] &&
        cnn_arg_int(a->opt[O_MULTIPLIER], "depth multiplier", 1, 1 << 16, &m, d))
        return -1;
    L->multiplier = (int)m;
    return cnn_parse_conv_options(L, a, a->n_pos > 1 ? a->pos[1] : NULL, d);
}

static int infer(cnn_layer *L, cnn_diag *d)
{
    if (cnn_conv_window(L, d))
        return -1;
    int oh = L->out.h, ow = L->out.w;
    int64_t units = (int64_t)L->in.c * L->multiplier;
    char what[48];
    snprintf(what, sizeof what, "%d x %d channels", L->in.c, L->multiplier);
    if (cnn_check_elems(d, L->loc, "dwconv's output", what, units * oh * ow))
        return -1;
    L->units = (int)units;
    L->out.c = L->units;
    /* Keras' layout and fans: [kh][kw][in][multiplier], fan_in kh*kw*in, fan_out kh*kw*M. */
    cnn_param *k = cnn_layer_add_param(L, "depthwise_kernel", 4,
                                       (int[]){L->kh, L->kw, L->in.c, L->multiplier}, L->init,
                                       1, d);
    if (!k)
        return -1;
    k->fan_in = L->kh * L->kw * L->in.c;
    k->fan_out = L->kh * L->kw * L->multiplier;
    k->l1 = L->l1;
    k->l2 = L->l2;
    if (L->use_bias && !cnn_layer_add_param(L, "bias", 1, (int[]){L->units}, CNN_INIT_ZEROS, 1, d))
        return -1;
    L->flops = 2.0 * L->kh * L->kw * (double)cnn_shape_size(L->out);
    return 0;
}

/* ---- code generation ---- */

static int gen_flags(const cnn_layer *L)
{
    return (L->act != CNN_ACT_LINEAR ? GEN_BWD_OUT : 0) | GEN_GRAD_IN;
}

/* Channels per block of locals: each pixel's sums are kept in a local array (which nothing
 * else can alias, so the compiler makes vector code of it), a block of at most this many. */
#define DW_BLOCK 512

/* Opens the loops over the n images' pixels (b, Y, X over rows x cols) and their `count`
 * channels in blocks: V0 the block's first channel, len its size, acc[] its sums, each
 * started at `init` (an expression of the channel's index in the block, c). Four levels:
 * the caller closes them. */
static void open_channel_blocks(cnn_emitter *e, const char *y, const char *x, int rows,
                                int cols, const char *v0, int count, const char *init)
{
    int block = count < DW_BLOCK ? count : DW_BLOCK;
    emit_for(e, "for (int b = 0; b < n; b++)");
    emit_for(e, "for (int %s = 0; %s < %d; %s++)", y, y, rows, y);
    emit_for(e, "for (int %s = 0; %s < %d; %s++)", x, x, cols, x);
    emit_open(e, "for (int %s = 0; %s < %d; %s += %d)", v0, v0, count, v0, block);
    emit(e, "int len = %d - %s < %d ? %d - %s : %d;", count, v0, block, count, v0, block);
    emit(e, "float acc[%d];", block);
    emit(e, "for (int c = 0; c < len; c++)");
    emit(e, "    acc[c] = %s;", init);
}

/* out[pixel][u] = bias[u] + the sum over the window's taps (in order) of x[u / M] k[tap][u]:
 * each pixel's channels summed in a block of locals, then stored; the activation after. */
static void emit_forward(cnn_emitter *e, const cnn_gen_layer *g)
{
    const cnn_layer *L = g->L;
    int H = L->in.h, W = L->in.w, C = L->in.c, OH = L->out.h, OW = L->out.w, U = L->out.c;
    int M = L->multiplier;
    long size = cnn_shape_size(L->out);
    open_channel_blocks(e, "oy", "ox", OH, OW, "u0", U,
                        L->use_bias ? gen_name(L, "bias[u0 + c]") : "0.0f");
    emit_for(e, "for (int ky = 0; ky < %d; ky++)", L->kh);
    emit_open(e, "for (int kx = 0; kx < %d; kx++)", L->kw);
    emit(e, "int iy = %s - %d + ky, ix = %s - %d + kx;", gen_times("oy", L->sh), L->pad_top,
         gen_times("ox", L->sw), L->pad_left);
    if (L->pad_same)
        emit(e, "if (iy < 0 || iy >= %d || ix < 0 || ix >= %d) continue;", H, W);
    emit(e, "const float *x = in + ((b * %d + iy) * %d + ix) * %d;", H, W, C);
    emit(e, "const float *k = %s_depthwise_kernel + (ky * %d + kx) * %d + u0;", L->name, L->kw,
         U);
    emit(e, "for (int u = 0; u < len; u++)");
    if (M == 1)
        emit(e, "    acc[u] += x[u0 + u] * k[u];");
    else
        emit(e, "    acc[u] += x[(u0 + u) / %d] * k[u];", M);
    emit_close(e);
    emit_end_for(e, 1);
    emit(e, "memcpy(out + ((b * %d + oy) * %d + ox) * %d + u0, acc, sizeof(float) * len);", OH,
         OW, U);
    emit_close(e);
    emit_end_for(e, 3);
    char count[32];
    snprintf(count, sizeof count, "n * %ld", size);
    gen_activation_forward(e, L, "out", count);
}

/* dout becomes d loss / d pre-activation in place (NAME_grads reads it after); then each
 * input pixel gathers what its taps' output pixels send back (the output pixel that reads
 * it through tap (ky, kx) is at (iy + pad - ky) / stride, where that divides), its channels
 * in a block of locals. */
static void emit_backward(cnn_emitter *e, const cnn_gen_layer *g)
{
    const cnn_layer *L = g->L;
    int H = L->in.h, W = L->in.w, C = L->in.c, OH = L->out.h, OW = L->out.w, U = L->out.c;
    int M = L->multiplier;
    char count[32];
    snprintf(count, sizeof count, "n * %ld", cnn_shape_size(L->out));
    gen_activation_backward(e, L, "dout", "out", count);
    if (!g->din)
        return;
    open_channel_blocks(e, "iy", "ix", H, W, "c0", C, "0.0f");
    emit_for(e, "for (int ky = 0; ky < %d; ky++)", L->kh);
    emit_open(e, "for (int kx = 0; kx < %d; kx++)", L->kw);
    emit(e, "int ty = iy + %d - ky, tx = ix + %d - kx;", L->pad_top, L->pad_left);
    if (L->sh == 1 && L->sw == 1)
        emit(e, "if (ty < 0 || ty >= %d || tx < 0 || tx >= %d) continue;", OH, OW);
    else
        emit(e, "if (ty < 0 || tx < 0 || ty %% %d || tx %% %d || ty / %d >= %d || tx / %d >= %d) "
                "continue;", L->sh, L->sw, L->sh, OH, L->sw, OW);
    char oy[32], ox[32];
    snprintf(oy, sizeof oy, L->sh == 1 ? "ty" : "ty / %d", L->sh);
    snprintf(ox, sizeof ox, L->sw == 1 ? "tx" : "tx / %d", L->sw);
    emit(e, "const float *d = dout + ((b * %d + %s) * %d + %s) * %d + c0 * %d;", OH, oy, OW, ox,
         U, M);
    emit(e, "const float *k = %s_depthwise_kernel + (ky * %d + kx) * %d + c0 * %d;", L->name,
         L->kw, U, M);
    if (M == 1) {
        emit(e, "for (int c = 0; c < len; c++)");
        emit(e, "    acc[c] += d[c] * k[c];");
    } else {
        emit(e, "for (int c = 0; c < len; c++)");
        emit(e, "    for (int m = 0; m < %d; m++)", M);
        emit(e, "        acc[c] += d[c * %d + m] * k[c * %d + m];", M, M);
    }
    emit_close(e);
    emit_end_for(e, 1);
    emit(e, "memcpy(din + ((b * %d + iy) * %d + ix) * %d + c0, acc, sizeof(float) * len);", H, W,
         C);
    emit_close(e);
    emit_end_for(e, 3);
}

/* Each part takes a share of the output channels and goes through every image, pixel by
 * pixel and tap by tap, its channels innermost (contiguous: vector code): the sums run in one
 * order whatever the number of threads. */
static void emit_grads(cnn_emitter *e, const cnn_gen_layer *g)
{
    const cnn_layer *L = g->L;
    int H = L->in.h, W = L->in.w, C = L->in.c, OH = L->out.h, OW = L->out.w, U = L->out.c;
    int M = L->multiplier;
    gen_share(e, "u", U);
    if (L->use_bias) {
        emit(e, "for (int i = 0; i < n * %d; i++)", OH * OW);
        emit(e, "    for (int u = u0; u < u1; u++)");
        emit(e, "        %s_bias_grad[u] += dout[i * %d + u];", L->name, U);
    }
    emit_for(e, "for (int b = 0; b < n; b++)");
    emit_for(e, "for (int oy = 0; oy < %d; oy++)", OH);
    emit_open(e, "for (int ox = 0; ox < %d; ox++)", OW);
    emit(e, "const float *d = dout + ((b * %d + oy) * %d + ox) * %d;", OH, OW, U);
    emit_for(e, "for (int ky = 0; ky < %d; ky++)", L->kh);
    emit_open(e, "for (int kx = 0; kx < %d; kx++)", L->kw);
    emit(e, "int iy = %s - %d + ky, ix = %s - %d + kx;", gen_times("oy", L->sh), L->pad_top,
         gen_times("ox", L->sw), L->pad_left);
    if (L->pad_same)
        emit(e, "if (iy < 0 || iy >= %d || ix < 0 || ix >= %d) continue;", H, W);
    emit(e, "const float *x = in + ((b * %d + iy) * %d + ix) * %d;", H, W, C);
    emit(e, "float *dk = %s_depthwise_kernel_grad + (ky * %d + kx) * %d;", L->name, L->kw, U);
    emit(e, "for (int u = u0; u < u1; u++)");
    if (M == 1)
        emit(e, "    dk[u] += x[u] * d[u];");
    else
        emit(e, "    dk[u] += x[u / %d] * d[u];", M);
    emit_close(e);
    emit_end_for(e, 1);
    emit_close(e);
    emit_end_for(e, 2);
}

const cnn_layer_desc cnn_layer_dwconv = {
    .keyword = "dwconv",
    .type = CNN_LAYER_DWCONV,
    .keras_name = "depthwise_conv2d",
    .keras_type = "DepthwiseConv2D",
    .usage = "dwconv KxK [activation] [multiplier=M] [stride=S] [pad=valid|same] [l1=A] [l2=B] "
             "[init=NAME] [bias=yes|no]",
    .options = options,
    .max_positional = 2,
    .parse = parse,
    .infer = infer,
    .gen_flags = gen_flags,
    .emit_forward = emit_forward,
    .emit_backward = emit_backward,
    .emit_grads = emit_grads,
};
