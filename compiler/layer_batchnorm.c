/* batchnorm: batch normalization over the last axis (Keras BatchNormalization). */
#include <stdlib.h>

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
    L->out = L->in;
    int c = L->in.c;
    /* c is an input's channel count: at most CNN_MAX_ELEMS, so none of these fails. */
    if (!cnn_layer_add_param(L, "gamma", 1, &c, CNN_INIT_ONES, 1, d) ||
        !cnn_layer_add_param(L, "beta", 1, &c, CNN_INIT_ZEROS, 1, d) ||
        !cnn_layer_add_param(L, "moving_mean", 1, &c, CNN_INIT_ZEROS, 0, d) ||
        !cnn_layer_add_param(L, "moving_variance", 1, &c, CNN_INIT_ONES, 0, d))
        return -1;
    return 0;
}

/* ---- code generation: direct loops over [rows][channels], statistics in double ----
 * Each thread first sums its own images, image by image (NAME_forward_stats, then
 * NAME_backward_stats); after a barrier every thread adds the images' sums in image order
 * (the same totals whatever the split) and normalizes its own images. */

static int gen_flags(const cnn_layer *L)
{
    (void)L;
    return GEN_FWD_TRAINING;
}

static void emit_buffers(cnn_emitter *e, const cnn_gen_layer *g)
{
    const cnn_layer *L = g->L;
    gen_array(e, "float", gen_name(L, "xhat"), g->batch, cnn_shape_size(L->out),
              "normalized input of the last pass");
    gen_array(e, "float", gen_name(L, "invstd"), 0, L->in.c, "1/sqrt(var + eps) per channel");
    emit(e, "/* Each image's two sums per channel: of x and x^2 in forward, of dout and");
    emit(e, " * dout xhat in backward. */");
    gen_array(e, "double", gen_name(L, "image_sums"), g->batch, 2 * (int64_t)L->in.c, NULL);
}

static int buffers(const cnn_layer *L, int grad_in, int is_last, int backward, cnn_buffer *b)
{
    (void)backward;
    (void)grad_in, (void)is_last;
    b[0] = (cnn_buffer){"normalized input", cnn_shape_size(L->out), 0, 4, 1};
    b[1] = (cnn_buffer){"inverse deviations", 0, L->in.c, 4, 1};
    b[2] = (cnn_buffer){"per-image sums", 2 * (int64_t)L->in.c, 0, 8, 1};
    return 3;
}

/* The loops over this part's images, with s and q the image's two sums per channel; `term_s`
 * and `term_q` are what each element adds (`i` its index in the image). */
static void emit_image_sums(cnn_emitter *e, const cnn_layer *L, const char *term_s,
                            const char *term_q)
{
    int C = L->in.c;
    long per_image = cnn_shape_size(L->in);
    emit_open(e, "for (int b = 0; b < n; b++)");
    emit(e, "double *s = %s_image_sums + (b0 + b) * %d, *q = s + %d;", L->name, 2 * C, C);
    emit(e, "memset(s, 0, sizeof(double) * %d);", 2 * C);
    emit_for(e, "for (long i = b * %ldL; i < (b + 1) * %ldL; i += %d)", per_image, per_image, C);
    emit_open(e, "for (int c = 0; c < %d; c++)", C);
    emit(e, "s[c] += %s;", term_s);
    emit(e, "q[c] += %s;", term_q);
    emit_close(e);
    emit_end_for(e, 1);
    emit_close(e);
}

/* Totals of the two sums over every image of the batch, in image order. */
static void emit_totals(cnn_emitter *e, const cnn_layer *L, const char *s, const char *q)
{
    int C = L->in.c;
    emit(e, "double %s[%d] = {0}, %s[%d] = {0};", s, C, q, C);
    emit(e, "for (int b = 0; b < batch_n; b++)");
    emit(e, "    for (int c = 0; c < %d; c++) {", C);
    emit(e, "        %s[c] += %s_image_sums[b * %d + c];", s, L->name, 2 * C);
    emit(e, "        %s[c] += %s_image_sums[b * %d + %d + c];", q, L->name, 2 * C, C);
    emit(e, "    }");
}

static void emit_forward_stats(cnn_emitter *e, const cnn_gen_layer *g)
{
    emit(e, "if (!training)");
    emit(e, "    return;");
    emit_image_sums(e, g->L, "in[i + c]", "(double)in[i + c] * in[i + c]");
}

static void emit_forward(cnn_emitter *e, const cnn_gen_layer *g)
{
    const cnn_layer *L = g->L;
    int C = L->in.c;
    long per_image = cnn_shape_size(L->in) / C;
    const char *N = L->name;
    emit(e, "long rows = n * %ldL;", per_image);
    emit(e, "float invstd[%d];", C);
    emit_open(e, "if (training)");
    emit(e, "float *xhat = %s_xhat + %s;", N, gen_times("b0", (int)cnn_shape_size(L->in)));
    emit_totals(e, L, "mean", "var");
    emit(e, "double count = (double)batch_n * %ld;", per_image);
    /* momentum and its complement as written in the .net file: 0.99 and 0.01 */
    char keep[40], take[40];
    snprintf(keep, sizeof keep, "%s", gen_real(L->momentum));
    snprintf(take, sizeof take, "%s", gen_real(1.0 - strtod(keep, NULL)));
    emit_open(e, "for (int c = 0; c < %d; c++)", C);
    emit(e, "mean[c] /= count;");
    emit(e, "var[c] = var[c] / count - mean[c] * mean[c]; /* biased, as Keras normalizes */");
    emit(e, "var[c] = var[c] > 0.0 ? var[c] : 0.0;");
    emit(e, "invstd[c] = (float)(1.0 / sqrt(var[c] + %s));", gen_real(L->eps));
    emit_close(e);
    emit(e, "/* One part records what backward and inference read. */");
    emit_open(e, "if (b0 == 0)");
    emit_open(e, "for (int c = 0; c < %d; c++)", C);
    emit(e, "%s_invstd[c] = invstd[c];", N);
    emit(e, "%s_moving_mean[c] = (float)(%s_moving_mean[c] * %s + mean[c] * %s);", N, N, keep,
         take);
    emit(e, "%s_moving_variance[c] = (float)(%s_moving_variance[c] * %s + var[c] * %s);", N, N,
         keep, take);
    emit_close(e);
    emit_close(e);
    emit_for(e, "for (long r = 0; r < rows; r++)");
    emit_open(e, "for (int c = 0; c < %d; c++)", C);
    emit(e, "float v = (float)((in[r * %d + c] - mean[c]) * invstd[c]);", C);
    emit(e, "xhat[r * %d + c] = v;", C);
    emit(e, "out[r * %d + c] = %s_gamma[c] * v + %s_beta[c];", C, N, N);
    emit_close(e);
    emit_end_for(e, 1);
    emit(e, "return;");
    emit_close(e);
    emit(e, "/* Inference: the moving statistics. */");
    emit(e, "for (int c = 0; c < %d; c++)", C);
    emit(e, "    invstd[c] = 1.0f / sqrtf(%s_moving_variance[c] + %s);", N, gen_float(L->eps));
    emit(e, "for (long r = 0; r < rows; r++)");
    emit(e, "    for (int c = 0; c < %d; c++)", C);
    emit(e, "        out[r * %d + c] = %s_gamma[c] * (in[r * %d + c] - %s_moving_mean[c]) * "
            "invstd[c] + %s_beta[c];", C, N, C, N, N);
}

static void emit_backward_stats(cnn_emitter *e, const cnn_gen_layer *g)
{
    const cnn_layer *L = g->L;
    emit(e, "const float *xhat = %s_xhat + %s;", L->name,
         gen_times("b0", (int)cnn_shape_size(L->in)));
    emit_image_sums(e, L, "dout[i + c]", "(double)dout[i + c] * xhat[i + c]");
}

static void emit_backward(cnn_emitter *e, const cnn_gen_layer *g)
{
    const cnn_layer *L = g->L;
    int C = L->in.c;
    long per_image = cnn_shape_size(L->in) / C;
    const char *N = L->name;
    emit_totals(e, L, "sum_g", "sum_gx");
    emit(e, "/* One part adds the parameters' gradients. */");
    emit_open(e, "if (b0 == 0)");
    emit_open(e, "for (int c = 0; c < %d; c++)", C);
    emit(e, "%s_gamma_grad[c] += (float)sum_gx[c];", N);
    emit(e, "%s_beta_grad[c] += (float)sum_g[c];", N);
    emit_close(e);
    emit_close(e);
    if (!g->din) { /* the first layer: its statistics' sums were all it needed of dout */
        emit(e, "(void)dout, (void)n;");
        return;
    }
    emit(e, "const float *xhat = %s_xhat + %s;", N, gen_times("b0", (int)cnn_shape_size(L->in)));
    emit(e, "double count = (double)batch_n * %ld;", per_image);
    emit(e, "/* din = gamma invstd / count * (count dout - sum(dout) - xhat sum(dout xhat)) */");
    emit_for(e, "for (long r = 0; r < n * %ldL; r++)", per_image);
    emit_open(e, "for (int c = 0; c < %d; c++)", C);
    emit(e, "double k = (double)%s_gamma[c] * %s_invstd[c] / count;", N, N);
    emit(e, "din[r * %d + c] = (float)(k * (count * dout[r * %d + c] - sum_g[c] - "
            "xhat[r * %d + c] * sum_gx[c]));", C, C, C);
    emit_close(e);
    emit_end_for(e, 1);
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
    .gen_flags = gen_flags,
    .emit_buffers = emit_buffers,
    .emit_forward = emit_forward,
    .emit_backward = emit_backward,
    .emit_forward_stats = emit_forward_stats,
    .emit_backward_stats = emit_backward_stats,
    .buffers = buffers,
};
