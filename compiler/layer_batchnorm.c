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
    (void)d;
    L->out = L->in;
    int c = L->in.c;
    cnn_layer_add_param(L, "gamma", 1, &c, CNN_INIT_ONES, 1);
    cnn_layer_add_param(L, "beta", 1, &c, CNN_INIT_ZEROS, 1);
    cnn_layer_add_param(L, "moving_mean", 1, &c, CNN_INIT_ZEROS, 0);
    cnn_layer_add_param(L, "moving_variance", 1, &c, CNN_INIT_ONES, 0);
    return 0;
}

/* ---- code generation: direct loops over [rows][channels], statistics in double ---- */

static int gen_flags(const cnn_layer *L)
{
    (void)L;
    return GEN_FWD_TRAINING | GEN_SERIAL; /* batch statistics */
}

static void emit_buffers(cnn_emitter *e, const cnn_gen_layer *g)
{
    const cnn_layer *L = g->L;
    emit(e, "static float %s_xhat[%d * %ld]; /* normalized input of the last pass */", L->name,
         g->batch, cnn_shape_size(L->out));
    emit(e, "static float %s_invstd[%d];     /* 1/sqrt(var + eps) per channel */", L->name,
         L->in.c);
}

static void emit_forward(cnn_emitter *e, const cnn_gen_layer *g)
{
    const cnn_layer *L = g->L;
    int C = L->in.c;
    long per_image = cnn_shape_size(L->in) / C;
    const char *N = L->name;
    emit(e, "int rows = n * %ld;", per_image);
    emit_open(e, "if (training)");
    emit(e, "float *xhat = %s_xhat + %s;", N, gen_times("b0", (int)cnn_shape_size(L->in)));
    emit(e, "double mean[%d] = {0}, var[%d] = {0};", C, C);
    emit(e, "for (int r = 0; r < rows; r++)");
    emit(e, "    for (int c = 0; c < %d; c++)", C);
    emit(e, "        mean[c] += in[r * %d + c];", C);
    emit(e, "for (int c = 0; c < %d; c++)", C);
    emit(e, "    mean[c] /= rows;");
    emit_open(e, "for (int r = 0; r < rows; r++)");
    emit_open(e, "for (int c = 0; c < %d; c++)", C);
    emit(e, "double d = in[r * %d + c] - mean[c];", C);
    emit(e, "var[c] += d * d;");
    emit_close(e);
    emit_close(e);
    emit_open(e, "for (int c = 0; c < %d; c++)", C);
    emit(e, "var[c] /= rows; /* biased, as Keras normalizes */");
    /* momentum and its complement as written in the .net file: 0.99 and 0.01 */
    char keep[40], take[40];
    snprintf(keep, sizeof keep, "%s", gen_real(L->momentum));
    snprintf(take, sizeof take, "%s", gen_real(1.0 - strtod(keep, NULL)));
    emit(e, "%s_invstd[c] = (float)(1.0 / sqrt(var[c] + %s));", N, gen_real(L->eps));
    emit(e, "%s_moving_mean[c] = (float)(%s_moving_mean[c] * %s + mean[c] * %s);", N, N, keep,
         take);
    emit(e, "%s_moving_variance[c] = (float)(%s_moving_variance[c] * %s + var[c] * %s);", N, N,
         keep, take);
    emit_close(e);
    emit_for(e, "for (int r = 0; r < rows; r++)");
    emit_open(e, "for (int c = 0; c < %d; c++)", C);
    emit(e, "float v = (float)((in[r * %d + c] - mean[c]) * %s_invstd[c]);", C, N);
    emit(e, "xhat[r * %d + c] = v;", C);
    emit(e, "out[r * %d + c] = %s_gamma[c] * v + %s_beta[c];", C, N, N);
    emit_close(e);
    emit_end_for(e, 1);
    emit(e, "return;");
    emit_close(e);
    emit(e, "/* Inference: the moving statistics. */");
    emit(e, "for (int c = 0; c < %d; c++)", C);
    emit(e, "    %s_invstd[c] = 1.0f / sqrtf(%s_moving_variance[c] + %s);", N, N, gen_float(L->eps));
    emit(e, "for (int r = 0; r < rows; r++)");
    emit(e, "    for (int c = 0; c < %d; c++)", C);
    emit(e, "        out[r * %d + c] = %s_gamma[c] * (in[r * %d + c] - %s_moving_mean[c]) * "
            "%s_invstd[c] + %s_beta[c];", C, N, C, N, N, N);
}

static void emit_backward(cnn_emitter *e, const cnn_gen_layer *g)
{
    const cnn_layer *L = g->L;
    int C = L->in.c;
    long per_image = cnn_shape_size(L->in) / C;
    const char *N = L->name;
    emit(e, "int rows = n * %ld;", per_image);
    emit(e, "const float *xhat = %s_xhat + %s;", N, gen_times("b0", (int)cnn_shape_size(L->in)));
    emit(e, "double sum_g[%d] = {0}, sum_gx[%d] = {0};", C, C);
    emit_for(e, "for (int r = 0; r < rows; r++)");
    emit_open(e, "for (int c = 0; c < %d; c++)", C);
    emit(e, "sum_g[c] += dout[r * %d + c];", C);
    emit(e, "sum_gx[c] += dout[r * %d + c] * xhat[r * %d + c];", C, C);
    emit_close(e);
    emit_end_for(e, 1);
    emit_open(e, "for (int c = 0; c < %d; c++)", C);
    emit(e, "%s_gamma_grad[c] += (float)sum_gx[c];", N);
    emit(e, "%s_beta_grad[c] += (float)sum_g[c];", N);
    emit_close(e);
    if (!g->din)
        return;
    emit(e, "/* din = gamma invstd / rows * (rows dout - sum(dout) - xhat sum(dout xhat)) */");
    emit_for(e, "for (int r = 0; r < rows; r++)");
    emit_open(e, "for (int c = 0; c < %d; c++)", C);
    emit(e, "double k = (double)%s_gamma[c] * %s_invstd[c] / rows;", N, N);
    emit(e, "din[r * %d + c] = (float)(k * ((double)rows * dout[r * %d + c] - sum_g[c] - "
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
};
