/* conv N KxK [activation]: 2-D convolution over an HxWxC input (Keras Conv2D). */
#include "layers.h"

/* The first seven are every windowed weighted layer's (cnn_parse_conv_options; dwconv too). */
enum { O_STRIDE, O_PAD, O_L1, O_L2, O_INIT, O_BIAS, O_ALPHA };
static const char *const options[] = {"stride", "pad", "l1", "l2", "init", "bias", "alpha", NULL};
static const char *const pads[] = {"valid", "same", NULL};

int cnn_parse_conv_options(cnn_layer *L, const cnn_args *a, const cnn_arg *act, cnn_diag *d)
{
    L->sh = L->sw = 1;
    if (a->opt[O_STRIDE] && cnn_arg_dims2(a->opt[O_STRIDE], "stride", &L->sh, &L->sw, d))
        return -1;
    if (a->opt[O_PAD]) {
        int k = cnn_arg_choice(a->opt[O_PAD], "padding", pads, d);
        if (k < 0)
            return -1;
        L->pad_same = k == 1;
    }
    return cnn_parse_activation(L, act, a->opt[O_ALPHA], d) ||
           cnn_parse_weight_options(L, a->opt[O_L1], a->opt[O_L2], a->opt[O_INIT],
                                    a->opt[O_BIAS], d);
}

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
    return cnn_parse_conv_options(L, a, a->n_pos > 2 ? a->pos[2] : NULL, d);
}

int cnn_conv_out_size(int in, int k, int stride, int same, int *pad_before)
{
    if (same) {
        int out = (int)(((int64_t)in + stride - 1) / stride);
        int64_t total = (int64_t)(out - 1) * stride + k - in; /* up to 2^32: in 64 bits */
        *pad_before = total > 0 ? (int)(total / 2) : 0;
        return out;
    }
    *pad_before = 0;
    return in < k ? 0 : (in - k) / stride + 1;
}

int cnn_conv_window(cnn_layer *L, cnn_diag *d)
{
    char in[48];
    cnn_shape_text(L->in, in, sizeof in);
    if (L->in.rank != 3) {
        cnn_error(d, L->loc, "'%s' needs an HxWxC input, got %s after 'flatten'",
                  L->desc->keyword, in);
        cnn_note_input(L, d);
        return -1;
    }
    int oh = cnn_conv_out_size(L->in.h, L->kh, L->sh, L->pad_same, &L->pad_top);
    int ow = cnn_conv_out_size(L->in.w, L->kw, L->sw, L->pad_same, &L->pad_left);
    if (oh < 1 || ow < 1) {
        cnn_error(d, L->size_loc, "kernel %dx%d is larger than its input %s", L->kh, L->kw, in);
        cnn_note_input(L, d);
        return -1;
    }
    L->out = (cnn_shape){3, oh, ow, 0};
    return 0;
}

static int infer(cnn_layer *L, cnn_diag *d)
{
    if (cnn_conv_window(L, d))
        return -1;
    L->out.c = L->units;
    int cin = L->in.c;
    cnn_param *k = cnn_layer_add_param(L, "kernel", 4, (int[]){L->kh, L->kw, cin, L->units},
                                       L->init, 1, d);
    if (!k)
        return -1;
    /* Both at most the kernel's size, which fits an int. */
    k->fan_in = (int)(k->size / L->units);
    k->fan_out = (int)(k->size / cin);
    k->l1 = L->l1;
    k->l2 = L->l2;
    if (L->use_bias && !cnn_layer_add_param(L, "bias", 1, (int[]){L->units}, CNN_INIT_ZEROS, 1, d))
        return -1;
    L->flops = 2.0 * L->kh * L->kw * cin * (double)cnn_shape_size(L->out);
    return 0;
}


/* ---- code generation: im2col across the batch, then one matrix product; or, for padded
 * stride-1 layers, a convolution read straight from a padded copy of each image ---- */

/* Windows of at most this many taps (a first layer on gray or RGB images) make a matrix
 * product too thin to pay for im2col and BLAS's packing; such layers are computed directly,
 * with the window's taps unrolled and each pixel's channels kept in a local accumulator. */
#define DIRECT_MAX_TAPS 32

static int direct(const cnn_layer *L);
static int padded_s1(const cnn_layer *L);

static int gen_flags(const cnn_layer *L)
{
    return (L->act != CNN_ACT_LINEAR ? GEN_BWD_OUT : 0) | (direct(L) ? GEN_BWD_IN : 0) |
           GEN_KERNEL_T | (padded_s1(L) ? GEN_KERNEL_FLIP : 0);
}

typedef struct conv_dims {
    int H, W, C, OH, OW, F, P, KKC, ROW; /* P output pixels, KKC window size, ROW = kw*c */
    int padded;
    /* Padded stride-1 layers: the padded input's rows and pixels per row (the output's
     * gradient, padded for the input's, has the same), and the gradient's top and left pads. */
    int HP, WP, GT, GL;
} conv_dims;

static conv_dims dims_of(const cnn_layer *L)
{
    conv_dims d = {L->in.h, L->in.w, L->in.c, L->out.h, L->out.w, L->out.c, 0, 0, 0, 0,
                   0, 0, 0, 0};
    d.P = d.OH * d.OW;
    d.KKC = L->kh * L->kw * d.C;
    d.ROW = L->kw * d.C;
    /* pad=same with a 1x1 kernel or an exact fit adds nothing. */
    int64_t need_h = (int64_t)(d.OH - 1) * L->sh + L->kh;
    int64_t need_w = (int64_t)(d.OW - 1) * L->sw + L->kw;
    d.padded = L->pad_same && (need_h > d.H || need_w > d.W);
    d.HP = d.OH + L->kh - 1;
    d.WP = d.OW + L->kw - 1;
    d.GT = L->kh - 1 - L->pad_top;
    d.GL = L->kw - 1 - L->pad_left;
    return d;
}

/* The C expressions the emitters pass around: rows of the products for n images, their
 * element count, the window size, the filter count, the kernel and its transpose. */
typedef struct conv_text {
    char rows[32], count[32], kkc[16], f[16], kernel[64], kernel_t[64];
} conv_text;

static conv_text text_of(const cnn_layer *L, const conv_dims *d)
{
    conv_text t;
    snprintf(t.rows, sizeof t.rows, "n * %d", d->P);
    snprintf(t.count, sizeof t.count, "n * %d", d->P * d->F);
    snprintf(t.kkc, sizeof t.kkc, "%d", d->KKC);
    snprintf(t.f, sizeof t.f, "%d", d->F);
    snprintf(t.kernel, sizeof t.kernel, "%s_kernel", L->name);
    snprintf(t.kernel_t, sizeof t.kernel_t, "%s_kernel_t", L->name);
    return t;
}

static int direct(const cnn_layer *L)
{
    conv_dims d = dims_of(L);
    return d.KKC <= DIRECT_MAX_TAPS && !d.padded;
}

/* Padding and stride 1 (ResNet's 3x3 layers): im2col would copy each pixel kh kw times and
 * col2im add it back as often; a padded copy of each image is all cnn_conv_s1 needs, and the
 * same function gives the input's gradient. Stride 1 keeps a padded row's pixels one step
 * apart; strided layers keep im2col. */
static int padded_s1(const cnn_layer *L)
{
    conv_dims d = dims_of(L);
    return d.padded && L->sh == 1 && L->sw == 1;
}

static void emit_buffers(cnn_emitter *e, const cnn_gen_layer *g)
{
    const cnn_layer *L = g->L;
    conv_dims d = dims_of(L);
    if (padded_s1(L)) {
        emit(e, "/* Each image with its padding (%d rows of %d pixels): forward reads it, and the",
             d.HP, d.WP);
        emit(e, " * kernel's gradient again after backward. The borders stay zero. */");
        gen_array(e, "float", gen_name(L, "in_pad"), g->batch, (int64_t)d.HP * d.WP * d.C, NULL);
        if (g->backward)
            gen_array(e, "float", gen_name(L, "dout_pad"), g->batch, (int64_t)d.HP * d.WP * d.F,
                      "the output's gradient, padded as the input's convolution needs");
        return;
    }
    if (!direct(L)) {
        emit(e, "/* im2col of the batch: row (b, oy, ox) holds the %dx%dx%d window under "
                "output", L->kh, L->kw, d.C);
        emit(e, " * pixel (oy, ox). The kernel's gradient reads it again after backward. */");
        gen_array(e, "float", gen_name(L, "cols"), g->batch, (int64_t)d.P * d.KKC, NULL);
    } else if (g->backward) {
        emit(e, "/* Each image's share of the kernel's gradient (rows: taps%s), summed over the",
             L->use_bias ? ", then the bias" : "");
        emit(e, " * batch after backward: no im2col, and no order that depends on threads. */");
        gen_array(e, "float", gen_name(L, "grad_img"), g->batch,
                  ((int64_t)d.KKC + L->use_bias) * d.F, NULL);
    }
    if (g->din)
        gen_array(e, "float", gen_name(L, "dcols"), g->batch, (int64_t)d.P * d.KKC,
                  "the windows' gradients");
    if (!d.padded)
        return;
    emit_blank(e);
    emit(e, "/* One pixel's channels into a window row, zeros where it falls in the padding. */");
    emit_open(e, "static void %s_gather(float *dst, const float *in, int b, int iy, int ix)",
              L->name);
    emit(e, "if (iy < 0 || iy >= %d || ix < 0 || ix >= %d)", d.H, d.W);
    emit(e, "    memset(dst, 0, sizeof(float) * %d);", d.C);
    emit(e, "else");
    emit(e, "    memcpy(dst, in + ((b * %d + iy) * %d + ix) * %d, sizeof(float) * %d);", d.H, d.W,
         d.C, d.C);
    emit_close(e);
    if (!g->din)
        return;
    emit_blank(e);
    emit(e, "/* The reverse: a window row's gradient added back, the padding's dropped. */");
    emit_open(e, "static void %s_scatter(float *din, const float *src, int b, int iy, int ix)",
              L->name);
    emit(e, "if (iy < 0 || iy >= %d || ix < 0 || ix >= %d)", d.H, d.W);
    emit(e, "    return;");
    emit(e, "float *dst = din + ((b * %d + iy) * %d + ix) * %d;", d.H, d.W, d.C);
    emit(e, "for (int c = 0; c < %d; c++)", d.C);
    emit(e, "    dst[c] += src[c];");
    emit_close(e);
}

/* The loops over every output pixel of every image; close_pixels ends them. */
static void open_pixel_loops(cnn_emitter *e, const conv_dims *d)
{
    emit_for(e, "for (int b = 0; b < n; b++)");
    emit_for(e, "for (int oy = 0; oy < %d; oy++)", d->OH);
    emit_open(e, "for (int ox = 0; ox < %d; ox++)", d->OW);
}

/* The window's first input element for output pixel (oy, ox) of image b, as `win`: in the
 * input (gather, read-only) or in its gradient (scatter). */
static void emit_window_start(cnn_emitter *e, const cnn_layer *L, const conv_dims *d, int gather)
{
    char pixel[96];
    snprintf(pixel, sizeof pixel, "(b * %d + %s) * %d + %s", d->H, gen_times("oy", L->sh), d->W,
             gen_times("ox", L->sw));
    emit(e, "%sfloat *win = %s + %s;", gather ? "const " : "", gather ? "in" : "din",
         d->C == 1 ? pixel : gen_times(pixel, d->C));
}

/* The loops over every output pixel of every image, with `col` at its row of cols;
 * close_pixels ends them. */
static void open_pixels(cnn_emitter *e, const conv_dims *d, const char *cols)
{
    open_pixel_loops(e, d);
    emit(e, "float *col = %s + ((b * %d + oy) * %d + ox) * %d;", cols, d->OH, d->OW, d->KKC);
}

/* Copies the window under (oy, ox) into col (gather), or adds col back onto it (scatter):
 * one line per kernel row when nothing is padded, else one per kernel tap. Unrolled. */
static void emit_window(cnn_emitter *e, const cnn_layer *L, const conv_dims *d, int gather)
{
    if (d->padded) {
        for (int ky = 0; ky < L->kh; ky++)
            for (int kx = 0; kx < L->kw; kx++) {
                int at = (ky * L->kw + kx) * d->C, dy = ky - L->pad_top, dx = kx - L->pad_left;
                if (gather)
                    emit(e, "%s_gather(col + %d, in, b, %s + %d, %s + %d);", L->name, at,
                         gen_times("oy", L->sh), dy, gen_times("ox", L->sw), dx);
                else
                    emit(e, "%s_scatter(din, col + %d, b, %s + %d, %s + %d);", L->name, at,
                         gen_times("oy", L->sh), dy, gen_times("ox", L->sw), dx);
            }
        return;
    }
    emit_window_start(e, L, d, gather);
    for (int ky = 0; ky < L->kh; ky++) {
        int from = ky * d->W * d->C, to = ky * d->ROW;
        if (gather) {
            emit(e, "memcpy(col + %d, win + %d, sizeof(float) * %d); /* kernel row %d */", to,
                 from, d->ROW, ky);
            continue;
        }
        emit(e, "for (int i = 0; i < %d; i++) /* kernel row %d */", d->ROW, ky);
        emit(e, "    win[%d + i] += col[%d + i];", from, to);
    }
}

static void close_pixels(cnn_emitter *e)
{
    emit_close(e);
    emit_end_for(e, 2);
}


static void emit_direct_forward(cnn_emitter *e, const cnn_layer *L, const conv_dims *d)
{
    emit(e, "/* A %d-tap window: each output pixel directly, its %d channels in a local. */",
         d->KKC, d->F);
    open_pixel_loops(e, d);
    emit_window_start(e, L, d, 1);
    emit(e, "float *o = out + ((b * %d + oy) * %d + ox) * %d;", d->OH, d->OW, d->F);
    emit(e, "float acc[%d];", d->F);
    if (L->use_bias)
        emit(e, "memcpy(acc, %s_bias, sizeof acc);", L->name);
    else
        emit(e, "memset(acc, 0, sizeof acc);");
    emit_for(e, "for (int ky = 0; ky < %d; ky++)", L->kh);
    emit_for(e, "for (int i = 0; i < %d; i++) /* kx and c */", d->ROW);
    emit_for(e, "for (int f = 0; f < %d; f++)", d->F);
    emit(e, "acc[f] += win[ky * %d + i] * %s_kernel[(ky * %d + i) * %d + f];", d->W * d->C,
         L->name, d->ROW, d->F);
    emit_end_for(e, 3);
    char count[16];
    snprintf(count, sizeof count, "%d", d->F);
    gen_activation_forward(e, L, "acc", count);
    emit(e, "memcpy(o, acc, sizeof acc);");
    close_pixels(e);
}

/* In backward, for direct layers: the activation's derivative, then each image's share of
 * the kernel's (and bias's) gradient, pixel by pixel, in locals. */
static void emit_direct_backward(cnn_emitter *e, const cnn_layer *L, const conv_dims *d)
{
    int rows = d->KKC + L->use_bias;
    emit(e, "float *grad_img = %s_grad_img + b0 * %d;", L->name, rows * d->F);
    emit_open(e, "for (int b = 0; b < n; b++)");
    emit(e, "float acc[%d][%d];", rows, d->F);
    emit(e, "memset(acc, 0, sizeof acc);");
    emit_for(e, "for (int oy = 0; oy < %d; oy++)", d->OH);
    emit_open(e, "for (int ox = 0; ox < %d; ox++)", d->OW);
    emit_window_start(e, L, d, 1);
    emit(e, "float *d = dout + ((b * %d + oy) * %d + ox) * %d;", d->OH, d->OW, d->F);
    if (L->act != CNN_ACT_LINEAR) {
        char count[16];
        snprintf(count, sizeof count, "%d", d->F);
        emit(e, "const float *o = out + ((b * %d + oy) * %d + ox) * %d;", d->OH, d->OW, d->F);
        gen_activation_backward(e, L, "d", "o", count);
    }
    emit_for(e, "for (int ky = 0; ky < %d; ky++)", L->kh);
    emit_for(e, "for (int i = 0; i < %d; i++) /* kx and c */", d->ROW);
    emit_for(e, "for (int f = 0; f < %d; f++)", d->F);
    emit(e, "acc[ky * %d + i][f] += win[ky * %d + i] * d[f];", d->ROW, d->W * d->C);
    emit_end_for(e, 3);
    if (L->use_bias) {
        emit(e, "for (int f = 0; f < %d; f++)", d->F);
        emit(e, "    acc[%d][f] += d[f];", d->KKC);
    }
    emit_close(e);
    emit_end_for(e, 1);
    emit(e, "memcpy(grad_img + b * %d, acc, sizeof acc);", rows * d->F);
    emit_close(e);
}

/* Rows r0 .. r1-1 of the gradients: the images' shares summed. */
static void emit_direct_grad(cnn_emitter *e, const cnn_layer *L, const conv_dims *d)
{
    int rows = d->KKC + L->use_bias;
    emit(e, "(void)dout; /* backward has read it */");
    gen_share(e, "r", rows);
    emit(e, "/* kernel_grad[r0..r1][%d] (row %d: the bias) += the images' shares */", d->F,
         d->KKC);
    emit_open(e, "for (int r = r0; r < r1; r++)");
    if (L->use_bias)
        emit(e, "float *grad = r < %d ? %s_kernel_grad + r * %d : %s_bias_grad;", d->KKC,
             L->name, d->F, L->name);
    else
        emit(e, "float *grad = %s_kernel_grad + r * %d;", L->name, d->F);
    emit(e, "for (int b = 0; b < n; b++)");
    emit(e, "    for (int f = 0; f < %d; f++)", d->F);
    emit(e, "        grad[f] += %s_grad_img[(b * %d + r) * %d + f];", L->name, rows, d->F);
    emit_close(e);
}

/* Inside the loop over images b: image b of `src` (rows of `w` pixels of `c` channels) into
 * its padded buffer `dst` (rows of d->WP pixels), `top` rows and `left` pixels in. */
static void emit_pad_copy(cnn_emitter *e, const conv_dims *d, const char *dst, const char *src,
                          int rows, int w, int c, int top, int left)
{
    emit(e, "for (int y = 0; y < %d; y++)", rows);
    emit(e, "    memcpy(%s + (y + %d) * %d + %d, %s + (b * %d + y) * %d, sizeof(float) * %d);", dst,
         top, d->WP * c, left * c, src, rows, w * c, w * c);
}

/* Forward of a padded stride-1 layer: each image copied into its padded buffer, then
 * convolved from there. */
static void emit_s1_forward(cnn_emitter *e, const cnn_layer *L, const conv_dims *d)
{
    emit_open(e, "for (int b = 0; b < n; b++)");
    emit(e, "float *pad = %s_in_pad + (b0 + b) * %d;", L->name, d->HP * d->WP * d->C);
    emit_pad_copy(e, d, "pad", "in", d->H, d->W, d->C, L->pad_top, L->pad_left);
    emit(e, "/* out[%d][%d][%d] = bias + pad (%dx%dx%d) * kernel[%d][%d][%d][%d] */", d->OH, d->OW,
         d->F, d->HP, d->WP, d->C, L->kh, L->kw, d->C, d->F);
    emit(e, "cnn_conv_s1(%d, %d, %d, %d, %d, %d, pad, %s_kernel, %s, out + b * %d);", d->OH,
         d->OW, d->F, L->kh, L->kw, d->C, L->name, L->use_bias ? gen_name(L, "bias") : "NULL",
         d->P * d->F);
    emit_close(e);
}

/* Backward: the output's gradient padded (top and left kh-1-pad, kw-1-pad), then the input's
 * gradient as its convolution with the kernel turned 180 degrees. */
static void emit_s1_backward(cnn_emitter *e, const cnn_gen_layer *g, const conv_dims *d)
{
    const cnn_layer *L = g->L;
    emit_open(e, "for (int b = 0; b < n; b++)");
    emit(e, "float *dpad = %s_dout_pad + (b0 + b) * %d;", L->name, d->HP * d->WP * d->F);
    emit_pad_copy(e, d, "dpad", "dout", d->OH, d->OW, d->F, d->GT, d->GL);
    if (g->din) {
        emit(e, "/* din[%d][%d][%d] = dpad (%dx%dx%d) * kernel_t[%d][%d][%d][%d] */", d->H, d->W,
             d->C, d->HP, d->WP, d->F, L->kh, L->kw, d->F, d->C);
        emit(e, "cnn_conv_s1(%d, %d, %d, %d, %d, %d, dpad, %s_kernel_t, NULL, din + b * %d);",
             d->H, d->W, d->C, L->kh, L->kw, d->F, L->name, d->H * d->W * d->C);
    }
    emit_close(e);
}

/* The kernel's gradient, rows r0 .. r1-1 (tap, channel): for each image and tap, the padded
 * input shifted by the tap against the padded output gradient, over the padded rows' pixels
 * (the dropped ones meet the gradient's zero border): the pixels' order of the im2col
 * product, so the same sums. */
static void emit_s1_grads(cnn_emitter *e, const cnn_layer *L, const conv_dims *d)
{
    int q = (d->OH - 1) * d->WP + d->OW;
    gen_share(e, "r", d->KKC);
    emit_open(e, "for (int b = 0; b < n; b++)");
    emit(e, "const float *pad = %s_in_pad + b * %d;", L->name, d->HP * d->WP * d->C);
    emit(e, "const float *dpad = %s_dout_pad + b * %d + %d;", L->name, d->HP * d->WP * d->F,
         (d->GT * d->WP + d->GL) * d->F);
    emit_open(e, "for (int t = r0 / %d; t * %d < r1; t++)", d->C, d->C);
    emit(e, "int c0 = r0 > t * %d ? r0 - t * %d : 0;", d->C, d->C);
    emit(e, "int c1 = r1 < (t + 1) * %d ? r1 - t * %d : %d;", d->C, d->C, d->C);
    emit(e, "/* kernel_grad[t][c0..c1][%d] += pad[tap t][%d][c0..c1]^T . dpad[%d][%d] */", d->F,
         q, q, d->F);
    emit(e, "cnn_gemm_tn_acc(c1 - c0, %d, %d, pad + (t / %d * %d + t %% %d) * %d + c0, %d, dpad, "
            "%d, %s_kernel_grad + (t * %d + c0) * %d, %d);",
         d->F, q, L->kw, d->WP, L->kw, d->C, d->C, d->F, L->name, d->C, d->F, d->F);
    emit_close(e);
    emit_close(e);
}

static void emit_forward(cnn_emitter *e, const cnn_gen_layer *g)
{
    const cnn_layer *L = g->L;
    conv_dims d = dims_of(L);
    conv_text t = text_of(L, &d);
    if (padded_s1(L)) {
        emit_s1_forward(e, L, &d);
        gen_activation_forward(e, L, "out", t.count);
        return;
    }
    if (direct(L)) {
        emit_direct_forward(e, L, &d);
        return;
    }
    emit(e, "float *cols = %s_cols + b0 * %d;", L->name, d.P * d.KKC);
    open_pixels(e, &d, "cols");
    emit_window(e, L, &d, 1);
    close_pixels(e);
    emit(e, "/* out[n*%d][%d] = bias + cols[n*%d][%d] . kernel[%d][%d] */", d.P, d.F, d.P, d.KKC,
         d.KKC, d.F);
    gen_gemm_bias(e, L, t.rows, t.f, t.kkc, "cols", t.kkc, t.kernel, t.f, "out", t.f);
    gen_activation_forward(e, L, "out", t.count);
}

static void emit_backward(cnn_emitter *e, const cnn_gen_layer *g)
{
    const cnn_layer *L = g->L;
    conv_dims d = dims_of(L);
    conv_text t = text_of(L, &d);
    if (direct(L))
        emit_direct_backward(e, L, &d);
    else
        gen_activation_backward(e, L, "dout", "out", t.count);
    if (padded_s1(L)) {
        emit_s1_backward(e, g, &d);
        return;
    }
    if (!g->din)
        return;
    emit(e, "/* The windows' gradients, dout . kernel^T; then each row is added back onto");
    emit(e, " * the input pixels it came from (col2im). */");
    emit(e, "float *dcols = %s_dcols + b0 * %d;", L->name, d.P * d.KKC);
    gen_gemm_bias(e, NULL, t.rows, t.kkc, t.f, "dout", t.f, t.kernel_t, t.kkc, "dcols", t.kkc);
    emit(e, "memset(din, 0, sizeof(float) * n * %d);", d.H * d.W * d.C);
    open_pixels(e, &d, "dcols");
    emit_window(e, L, &d, 0);
    close_pixels(e);
}

static void emit_grads(cnn_emitter *e, const cnn_gen_layer *g)
{
    const cnn_layer *L = g->L;
    conv_dims d = dims_of(L);
    conv_text t = text_of(L, &d);
    char cols[64], kgrad[64];
    snprintf(cols, sizeof cols, "%s_cols + r0", L->name);
    snprintf(kgrad, sizeof kgrad, "%s_kernel_grad + %s", L->name, gen_times("r0", d.F));
    if (direct(L)) {
        emit_direct_grad(e, L, &d);
        return;
    }
    if (padded_s1(L)) {
        if (!L->use_bias)
            emit(e, "(void)dout; /* the padded copy holds it */");
        emit_s1_grads(e, L, &d);
        gen_bias_grad(e, L, "dout", t.rows);
        return;
    }
    gen_share(e, "r", d.KKC);
    emit(e, "/* kernel_grad[r0..r1][%d] += cols[n*%d][r0..r1]^T . dout[n*%d][%d] */", d.F, d.P,
         d.P, d.F);
    emit(e, "if (r1 > r0)");
    e->depth++;
    gen_gemm_tn_acc(e, "r1 - r0", t.f, t.rows, cols, t.kkc, "dout", t.f, kgrad, t.f);
    e->depth--;
    gen_bias_grad(e, L, "dout", t.rows);
}

static long scratch_per_image(const cnn_layer *L)
{
    conv_dims d = dims_of(L);
    if (padded_s1(L))
        return (long)d.HP * d.WP * d.C;
    return direct(L) ? 0 : (long)d.P * d.KKC;
}

static int buffers(const cnn_layer *L, int grad_in, int is_last, int backward, cnn_buffer *b)
{
    (void)is_last;
    conv_dims d = dims_of(L);
    int n = 0;
    int64_t window = (int64_t)d.P * d.KKC;
    if (padded_s1(L)) {
        b[n++] = (cnn_buffer){"padded inputs", (int64_t)d.HP * d.WP * d.C, 0, 4, 1};
        if (backward)
            b[n++] = (cnn_buffer){"padded output gradients", (int64_t)d.HP * d.WP * d.F, 0, 4, 1};
        return n;
    }
    if (!direct(L))
        b[n++] = (cnn_buffer){"im2col rows", window, 0, 4, 1};
    else if (backward)
        b[n++] = (cnn_buffer){"per-image kernel gradients",
                              ((int64_t)d.KKC + L->use_bias) * d.F, 0, 4, 1};
    if (grad_in)
        b[n++] = (cnn_buffer){"windows' gradients", window, 0, 4, 1};
    return n;
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
    .gen_flags = gen_flags,
    .emit_buffers = emit_buffers,
    .emit_forward = emit_forward,
    .emit_backward = emit_backward,
    .emit_grads = emit_grads,
    .scratch_per_image = scratch_per_image,
    .buffers = buffers,
};
