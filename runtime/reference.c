/* The interpreted reference: a backend that walks the IR with plain loops in double precision.
 * It is the yardstick for generated code, so it favours obvious correctness over speed and
 * shares no kernel with the code generator. Layouts: activations [n][h][w][c], conv kernels
 * [kh][kw][in][out], dense kernels [in][out], as Keras. */
#include "reference.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct ref_layer {
    const cnn_layer *L;
    size_t in_size, out_size; /* per image */
    double *pre;              /* conv, dense, activation: [n][out] before the activation */
    double *out;              /* [n][out] */
    double *dpre, *dout;      /* gradients of the loss with respect to pre and out */
    double *mask;             /* dropout: 0 or 1/(1-rate) per element of the last training pass */
    double *xhat, *invstd;    /* batchnorm: normalized input and 1/sqrt(var+eps) per channel */
    cnn_tensor *t[CNN_MAX_LAYER_PARAMS];
    double *gacc[CNN_MAX_LAYER_PARAMS]; /* double accumulators of the trainable tensors' grads */
} ref_layer;

typedef struct ref_model {
    cnn_model base;
    const cnn_ir *ir;
    ref_layer *layers;
    double *x;    /* the input batch in double */
    float *probs; /* [max_batch][n_classes]: the last layer's output (softmax or not) */
    int last_n;
    char *names;
} ref_model;

/* ---- activations ---- */

double cnn_reference_activation(cnn_act a, double x, double alpha)
{
    switch (a) {
    case CNN_ACT_RELU: return x > 0 ? x : 0;
    case CNN_ACT_LEAKY_RELU: return x > 0 ? x : alpha * x;
    case CNN_ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case CNN_ACT_TANH: return tanh(x);
    case CNN_ACT_LINEAR:
    case CNN_ACT_SOFTMAX: /* row-wise, below */
        break;
    }
    return x;
}

/* d act(x) / dx, from the input x and the output y = act(x). */
static double act_derivative(cnn_act a, double x, double y, double alpha)
{
    switch (a) {
    case CNN_ACT_RELU: return x > 0 ? 1 : 0;
    case CNN_ACT_LEAKY_RELU: return x > 0 ? 1 : alpha;
    case CNN_ACT_SIGMOID: return y * (1 - y);
    case CNN_ACT_TANH: return 1 - y * y;
    case CNN_ACT_LINEAR:
    case CNN_ACT_SOFTMAX: /* only on the last layer, where the loss gradient covers it */
        break;
    }
    return 1;
}

static void activate(const ref_layer *rl, int n)
{
    const cnn_layer *L = rl->L;
    size_t total = (size_t)n * rl->out_size;
    if (L->act != CNN_ACT_SOFTMAX) {
        for (size_t i = 0; i < total; i++)
            rl->out[i] = cnn_reference_activation(L->act, rl->pre[i], L->alpha);
        return;
    }
    for (int b = 0; b < n; b++) {
        const double *z = rl->pre + (size_t)b * rl->out_size;
        double *p = rl->out + (size_t)b * rl->out_size;
        double max = z[0], sum = 0;
        for (size_t j = 1; j < rl->out_size; j++)
            if (z[j] > max)
                max = z[j];
        for (size_t j = 0; j < rl->out_size; j++)
            sum += p[j] = exp(z[j] - max);
        for (size_t j = 0; j < rl->out_size; j++)
            p[j] /= sum;
    }
}

/* ---- conv: pre[b][oy][ox][f] = bias[f] + sum in[b][iy][ix][c] * K[ky][kx][c][f] ---- */

static void conv_forward(const ref_layer *rl, const double *in, int n)
{
    const cnn_layer *L = rl->L;
    int H = L->in.h, W = L->in.w, C = L->in.c, OH = L->out.h, OW = L->out.w, F = L->out.c;
    const float *K = rl->t[0]->value, *bias = L->use_bias ? rl->t[1]->value : NULL;
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                double *acc = rl->pre + (((size_t)b * OH + oy) * OW + ox) * F;
                for (int f = 0; f < F; f++)
                    acc[f] = bias ? bias[f] : 0.0;
                for (int ky = 0; ky < L->kh; ky++)
                    for (int kx = 0; kx < L->kw; kx++) {
                        int iy = oy * L->sh - L->pad_top + ky, ix = ox * L->sw - L->pad_left + kx;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                            continue; /* zero padding */
                        const double *px = in + (((size_t)b * H + iy) * W + ix) * C;
                        for (int c = 0; c < C; c++) {
                            const float *pk = K + (((size_t)ky * L->kw + kx) * C + c) * F;
                            for (int f = 0; f < F; f++)
                                acc[f] += px[c] * pk[f];
                        }
                    }
            }
}

static void conv_backward(const ref_layer *rl, const double *in, double *din, int n)
{
    const cnn_layer *L = rl->L;
    int H = L->in.h, W = L->in.w, C = L->in.c, OH = L->out.h, OW = L->out.w, F = L->out.c;
    const float *K = rl->t[0]->value;
    double *dK = rl->gacc[0], *dbias = L->use_bias ? rl->gacc[1] : NULL;
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                const double *g = rl->dpre + (((size_t)b * OH + oy) * OW + ox) * F;
                if (dbias)
                    for (int f = 0; f < F; f++)
                        dbias[f] += g[f];
                for (int ky = 0; ky < L->kh; ky++)
                    for (int kx = 0; kx < L->kw; kx++) {
                        int iy = oy * L->sh - L->pad_top + ky, ix = ox * L->sw - L->pad_left + kx;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                            continue;
                        size_t at = (((size_t)b * H + iy) * W + ix) * C;
                        for (int c = 0; c < C; c++) {
                            size_t k = (((size_t)ky * L->kw + kx) * C + c) * F;
                            double dx = 0;
                            for (int f = 0; f < F; f++) {
                                dK[k + f] += in[at + c] * g[f];
                                dx += K[k + f] * g[f];
                            }
                            if (din)
                                din[at + c] += dx;
                        }
                    }
            }
}

/* ---- dwconv: each input channel c with its own filters; output channel c * M + m ---- */

static void dwconv_forward(const ref_layer *rl, const double *in, int n)
{
    const cnn_layer *L = rl->L;
    int H = L->in.h, W = L->in.w, C = L->in.c, OH = L->out.h, OW = L->out.w, M = L->multiplier;
    const float *K = rl->t[0]->value, *bias = L->use_bias ? rl->t[1]->value : NULL;
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++)
                for (int c = 0; c < C; c++)
                    for (int m = 0; m < M; m++) {
                        int u = c * M + m;
                        double v = bias ? bias[u] : 0;
                        for (int ky = 0; ky < L->kh; ky++)
                            for (int kx = 0; kx < L->kw; kx++) {
                                int iy = oy * L->sh - L->pad_top + ky;
                                int ix = ox * L->sw - L->pad_left + kx;
                                if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                                    v += in[(((size_t)b * H + iy) * W + ix) * C + c] *
                                         K[((size_t)ky * L->kw + kx) * C * M + u];
                            }
                        rl->pre[(((size_t)b * OH + oy) * OW + ox) * C * M + u] = v;
                    }
}

static void dwconv_backward(const ref_layer *rl, const double *in, double *din, int n)
{
    const cnn_layer *L = rl->L;
    int H = L->in.h, W = L->in.w, C = L->in.c, OH = L->out.h, OW = L->out.w, M = L->multiplier;
    const float *K = rl->t[0]->value;
    double *dK = rl->gacc[0], *dbias = L->use_bias ? rl->gacc[1] : NULL;
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++)
                for (int c = 0; c < C; c++)
                    for (int m = 0; m < M; m++) {
                        int u = c * M + m;
                        double g = rl->dpre[(((size_t)b * OH + oy) * OW + ox) * C * M + u];
                        if (dbias)
                            dbias[u] += g;
                        for (int ky = 0; ky < L->kh; ky++)
                            for (int kx = 0; kx < L->kw; kx++) {
                                int iy = oy * L->sh - L->pad_top + ky;
                                int ix = ox * L->sw - L->pad_left + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                                    continue;
                                size_t at = (((size_t)b * H + iy) * W + ix) * C + c;
                                size_t k = ((size_t)ky * L->kw + kx) * C * M + u;
                                dK[k] += in[at] * g;
                                if (din)
                                    din[at] += K[k] * g;
                            }
                    }
}

/* ---- pool: max or mean over each window ---- */

/* Windows start pad_top rows and pad_left columns before the input (pad=same); taps outside
 * it are ignored by max and left out of avg's count, as TensorFlow's same pooling does. */
static void pool_forward(const ref_layer *rl, const double *in, int n)
{
    const cnn_layer *L = rl->L;
    int H = L->in.h, W = L->in.w, C = L->in.c, OH = L->out.h, OW = L->out.w;
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++)
                for (int c = 0; c < C; c++) {
                    double best = -INFINITY, sum = 0;
                    int count = 0;
                    for (int ky = 0; ky < L->kh; ky++)
                        for (int kx = 0; kx < L->kw; kx++) {
                            int iy = oy * L->sh - L->pad_top + ky, ix = ox * L->sw - L->pad_left + kx;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                                continue;
                            double v = in[(((size_t)b * H + iy) * W + ix) * C + c];
                            sum += v;
                            count++;
                            if (v > best)
                                best = v;
                        }
                    rl->out[(((size_t)b * OH + oy) * OW + ox) * C + c] =
                        L->pool == CNN_POOL_MAX ? best : sum / count;
                }
}

static void pool_backward(const ref_layer *rl, const double *in, double *din, int n)
{
    if (!din) /* the first layer, or nothing before it learns: no gradient to pass on */
        return;
    const cnn_layer *L = rl->L;
    int H = L->in.h, W = L->in.w, C = L->in.c, OH = L->out.h, OW = L->out.w;
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++)
                for (int c = 0; c < C; c++) {
                    double g = rl->dout[(((size_t)b * OH + oy) * OW + ox) * C + c];
                    size_t arg = 0;
                    double best = -INFINITY;
                    int count = 0;
                    for (int pass = 0; pass < 2; pass++) /* avg: count, then share */
                        for (int ky = 0; ky < L->kh; ky++)
                            for (int kx = 0; kx < L->kw; kx++) {
                                int iy = oy * L->sh - L->pad_top + ky;
                                int ix = ox * L->sw - L->pad_left + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                                    continue;
                                size_t at = (((size_t)b * H + iy) * W + ix) * C + c;
                                if (L->pool == CNN_POOL_AVG) {
                                    if (pass == 0)
                                        count++;
                                    else
                                        din[at] += g / count;
                                } else if (pass == 0 && in[at] > best) { /* ties: the first */
                                    best = in[at];
                                    arg = at;
                                }
                            }
                    if (L->pool == CNN_POOL_MAX)
                        din[arg] += g;
                }
}

/* ---- dropout ---- */

static void dropout_forward(const ref_layer *rl, const double *in, int n, int training,
                            cnn_rng *rng)
{
    size_t total = (size_t)n * rl->out_size;
    double scale = 1.0 / (1.0 - rl->L->rate);
    for (size_t i = 0; i < total; i++) {
        rl->mask[i] = training ? (cnn_dropout_keep(rng, rl->L->rate) ? scale : 0.0) : 1.0;
        rl->out[i] = in[i] * rl->mask[i];
    }
}

/* ---- batchnorm over the last axis ---- */

static void batchnorm_forward(const ref_layer *rl, const double *in, int n, int training)
{
    const cnn_layer *L = rl->L;
    int C = L->in.c;
    size_t per = (size_t)n * rl->in_size / C; /* values per channel */
    const float *gamma = rl->t[0]->value, *beta = rl->t[1]->value;
    float *mmean = rl->t[2]->value, *mvar = rl->t[3]->value;
    for (int c = 0; c < C; c++) {
        double mean, var;
        if (training) {
            double sum = 0, sq = 0;
            for (size_t i = 0; i < per; i++)
                sum += in[i * C + c];
            mean = sum / per;
            for (size_t i = 0; i < per; i++)
                sq += (in[i * C + c] - mean) * (in[i * C + c] - mean);
            var = sq / per; /* biased, as Keras normalizes */
            mmean[c] = (float)(mmean[c] * L->momentum + mean * (1.0 - L->momentum));
            mvar[c] = (float)(mvar[c] * L->momentum + var * (1.0 - L->momentum));
        } else {
            mean = mmean[c];
            var = mvar[c];
        }
        double invstd = 1.0 / sqrt(var + L->eps);
        rl->invstd[c] = invstd;
        for (size_t i = 0; i < per; i++) {
            double xhat = (in[i * C + c] - mean) * invstd;
            rl->xhat[i * C + c] = xhat;
            rl->out[i * C + c] = gamma[c] * xhat + beta[c];
        }
    }
}

static void batchnorm_backward(const ref_layer *rl, double *din, int n)
{
    const cnn_layer *L = rl->L;
    int C = L->in.c;
    size_t per = (size_t)n * rl->in_size / C;
    const float *gamma = rl->t[0]->value;
    double *dgamma = rl->gacc[0], *dbeta = rl->gacc[1];
    for (int c = 0; c < C; c++) {
        double sum_g = 0, sum_gx = 0;
        for (size_t i = 0; i < per; i++) {
            double g = rl->dout[i * C + c];
            sum_g += g;
            sum_gx += g * rl->xhat[i * C + c];
        }
        dgamma[c] += sum_gx;
        dbeta[c] += sum_g;
        if (!din)
            continue;
        /* dx = gamma*invstd/M * (M*g - sum(g) - xhat*sum(g*xhat)) */
        double k = gamma[c] * rl->invstd[c] / per;
        for (size_t i = 0; i < per; i++)
            din[i * C + c] += k * (per * rl->dout[i * C + c] - sum_g - rl->xhat[i * C + c] * sum_gx);
    }
}

/* ---- dense: pre[b][j] = bias[j] + sum_i in[b][i] * K[i][j] ---- */

static void dense_forward(const ref_layer *rl, const double *in, int n)
{
    const cnn_layer *L = rl->L;
    int I = L->in.c, U = L->out.c;
    const float *K = rl->t[0]->value, *bias = L->use_bias ? rl->t[1]->value : NULL;
    for (int b = 0; b < n; b++) {
        double *acc = rl->pre + (size_t)b * U;
        for (int j = 0; j < U; j++)
            acc[j] = bias ? bias[j] : 0.0;
        for (int i = 0; i < I; i++)
            for (int j = 0; j < U; j++)
                acc[j] += in[(size_t)b * I + i] * K[(size_t)i * U + j];
    }
}

static void dense_backward(const ref_layer *rl, const double *in, double *din, int n)
{
    const cnn_layer *L = rl->L;
    int I = L->in.c, U = L->out.c;
    const float *K = rl->t[0]->value;
    double *dK = rl->gacc[0], *dbias = L->use_bias ? rl->gacc[1] : NULL;
    for (int b = 0; b < n; b++) {
        const double *g = rl->dpre + (size_t)b * U;
        if (dbias)
            for (int j = 0; j < U; j++)
                dbias[j] += g[j];
        for (int i = 0; i < I; i++) {
            double x = in[(size_t)b * I + i], dx = 0;
            for (int j = 0; j < U; j++) {
                dK[(size_t)i * U + j] += x * g[j];
                dx += K[(size_t)i * U + j] * g[j];
            }
            if (din)
                din[(size_t)b * I + i] += dx;
        }
    }
}

/* ---- add, concat, gap: the layers that join tensors or pool them whole ---- */

static void add_forward(const ref_layer *rl, const double *const *ins, int n)
{
    size_t total = (size_t)n * rl->out_size;
    for (size_t i = 0; i < total; i++) {
        double v = 0;
        for (int k = 0; k < rl->L->n_inputs; k++)
            v += ins[k][i];
        rl->out[i] = v;
    }
}

static void add_backward(const ref_layer *rl, double *const *dins, int n)
{
    for (int k = 0; k < rl->L->n_inputs; k++)
        if (dins[k])
            for (size_t i = 0; i < (size_t)n * rl->out_size; i++)
                dins[k][i] += rl->dout[i];
}

/* Pixel p's channels of input k start at offset[k] of the output pixel's. */
static void concat_forward(const ref_layer *rl, const double *const *ins, int n)
{
    const cnn_layer *L = rl->L;
    size_t pixels = (size_t)n * L->out.h * L->out.w;
    for (size_t p = 0; p < pixels; p++) {
        int at = 0;
        for (int k = 0; k < L->n_inputs; k++) {
            int C = L->ins[k].c;
            for (int c = 0; c < C; c++)
                rl->out[p * L->out.c + at + c] = ins[k][p * C + c];
            at += C;
        }
    }
}

static void concat_backward(const ref_layer *rl, double *const *dins, int n)
{
    const cnn_layer *L = rl->L;
    size_t pixels = (size_t)n * L->out.h * L->out.w;
    for (size_t p = 0; p < pixels; p++) {
        int at = 0;
        for (int k = 0; k < L->n_inputs; k++) {
            int C = L->ins[k].c;
            for (int c = 0; dins[k] && c < C; c++)
                dins[k][p * C + c] += rl->dout[p * L->out.c + at + c];
            at += C;
        }
    }
}

static void gap_forward(const ref_layer *rl, const double *in, int n)
{
    const cnn_layer *L = rl->L;
    int C = L->in.c, HW = L->in.h * L->in.w;
    for (int b = 0; b < n; b++)
        for (int c = 0; c < C; c++) {
            double sum = 0;
            for (int p = 0; p < HW; p++)
                sum += in[((size_t)b * HW + p) * C + c];
            rl->out[(size_t)b * C + c] = sum / HW;
        }
}

static void gap_backward(const ref_layer *rl, double *din, int n)
{
    if (!din)
        return;
    const cnn_layer *L = rl->L;
    int C = L->in.c, HW = L->in.h * L->in.w;
    for (int b = 0; b < n; b++)
        for (int p = 0; p < HW; p++)
            for (int c = 0; c < C; c++)
                din[((size_t)b * HW + p) * C + c] += rl->dout[(size_t)b * C + c] / HW;
}

/* ---- the model interface ---- */

/* Input k of layer l and its gradient (NULL: the network's input, which needs none). */
static const double *input_of(const ref_model *R, const cnn_layer *L, int k)
{
    return L->inputs[k] >= 0 ? R->layers[L->inputs[k]].out : R->x;
}

static double *dinput_of(const ref_model *R, const cnn_layer *L, int k)
{
    return L->inputs[k] >= 0 ? R->layers[L->inputs[k]].dout : NULL;
}

static void ref_forward(cnn_model *m, const float *x, int n, int training, cnn_rng *rng)
{
    ref_model *R = (ref_model *)m;
    const cnn_ir *ir = R->ir;
    size_t in_size = cnn_input_size(m);
    for (size_t i = 0; i < (size_t)n * in_size; i++)
        R->x[i] = x[i];
    for (int l = 0; l < ir->n_layers; l++) {
        ref_layer *rl = &R->layers[l];
        const double *ins[CNN_MAX_INPUTS];
        for (int k = 0; k < rl->L->n_inputs; k++)
            ins[k] = input_of(R, rl->L, k);
        const double *in = ins[0];
        switch (rl->L->type) {
        case CNN_LAYER_CONV: conv_forward(rl, in, n); activate(rl, n); break;
        case CNN_LAYER_DWCONV: dwconv_forward(rl, in, n); activate(rl, n); break;
        case CNN_LAYER_DENSE: dense_forward(rl, in, n); activate(rl, n); break;
        case CNN_LAYER_POOL: pool_forward(rl, in, n); break;
        case CNN_LAYER_DROPOUT: dropout_forward(rl, in, n, training, rng); break;
        case CNN_LAYER_BATCHNORM: batchnorm_forward(rl, in, n, training); break;
        case CNN_LAYER_FLATTEN: memcpy(rl->out, in, sizeof(double) * n * rl->out_size); break;
        case CNN_LAYER_ACTIVATION:
            memcpy(rl->pre, in, sizeof(double) * n * rl->out_size);
            activate(rl, n);
            break;
        case CNN_LAYER_ADD: add_forward(rl, ins, n); break;
        case CNN_LAYER_CONCAT: concat_forward(rl, ins, n); break;
        case CNN_LAYER_GAP: gap_forward(rl, in, n); break;
        }
    }
    const double *out = R->layers[ir->n_layers - 1].out;
    for (size_t i = 0; i < (size_t)n * ir->n_classes; i++)
        R->probs[i] = (float)out[i];
    R->last_n = n;
}

static double ref_loss(cnn_model *m, const int *labels, const float *targets, int n)
{
    ref_model *R = (ref_model *)m;
    const ref_layer *last = &R->layers[R->ir->n_layers - 1];
    int K = R->ir->n_classes;
    double total = 0;
    if (R->ir->train.loss == CNN_LOSS_MSE) { /* Keras': the mean over outputs, then images */
        for (size_t i = 0; i < (size_t)n * K; i++) {
            double d = last->out[i] - targets[i];
            total += d * d;
        }
        return total / ((double)n * K);
    }
    for (int b = 0; b < n; b++) {
        /* -log softmax(z)[label] = logsumexp(z) - z[label], from the logits for accuracy. */
        const double *z = last->pre + (size_t)b * K;
        double max = z[0], sum = 0;
        for (int j = 1; j < K; j++)
            if (z[j] > max)
                max = z[j];
        for (int j = 0; j < K; j++)
            sum += exp(z[j] - max);
        total += max + log(sum) - z[labels[b]];
    }
    return total / n;
}

static void ref_backward(cnn_model *m, const int *labels, const float *targets, int n)
{
    ref_model *R = (ref_model *)m;
    const cnn_ir *ir = R->ir;
    int last = ir->n_layers - 1, K = ir->n_classes, mse = ir->train.loss == CNN_LOSS_MSE;
    ref_layer *top = &R->layers[last];
    /* Each layer adds its inputs' gradients to theirs: a tensor read twice gets both. */
    for (int l = 0; l < last; l++)
        memset(R->layers[l].dout, 0, sizeof(double) * n * R->layers[l].out_size);
    if (mse) /* d loss / d output = 2 (y - t) / (n K); then the last layer's activation */
        for (size_t i = 0; i < (size_t)n * K; i++)
            top->dout[i] = 2 * (top->out[i] - targets[i]) / ((double)n * K);
    else /* softmax and cross-entropy together: d loss / d logits = (p - onehot) / n */
        for (int b = 0; b < n; b++)
            for (int j = 0; j < K; j++)
                top->dpre[(size_t)b * K + j] =
                    (top->out[(size_t)b * K + j] - (j == labels[b])) / n;
    for (int l = last; l >= 0; l--) {
        ref_layer *rl = &R->layers[l];
        double *dins[CNN_MAX_INPUTS];
        for (int k = 0; k < rl->L->n_inputs; k++)
            dins[k] = dinput_of(R, rl->L, k);
        const double *in = input_of(R, rl->L, 0);
        double *din = dins[0]; /* NULL for the network's input: never needed */
        if (rl->pre && (l != last || mse))
            for (size_t i = 0; i < (size_t)n * rl->out_size; i++)
                rl->dpre[i] = rl->dout[i] *
                              act_derivative(rl->L->act, rl->pre[i], rl->out[i], rl->L->alpha);
        switch (rl->L->type) {
        case CNN_LAYER_CONV: conv_backward(rl, in, din, n); break;
        case CNN_LAYER_DWCONV: dwconv_backward(rl, in, din, n); break;
        case CNN_LAYER_DENSE: dense_backward(rl, in, din, n); break;
        case CNN_LAYER_POOL: pool_backward(rl, in, din, n); break;
        case CNN_LAYER_BATCHNORM: batchnorm_backward(rl, din, n); break;
        case CNN_LAYER_DROPOUT:
            if (din)
                for (size_t i = 0; i < (size_t)n * rl->in_size; i++)
                    din[i] += rl->dout[i] * rl->mask[i];
            break;
        case CNN_LAYER_FLATTEN:
            if (din)
                for (size_t i = 0; i < (size_t)n * rl->in_size; i++)
                    din[i] += rl->dout[i];
            break;
        case CNN_LAYER_ACTIVATION: /* dpre, above, holds dout times the derivative */
            if (din)
                for (size_t i = 0; i < (size_t)n * rl->in_size; i++)
                    din[i] += rl->dpre[i];
            break;
        case CNN_LAYER_ADD: add_backward(rl, dins, n); break;
        case CNN_LAYER_CONCAT: concat_backward(rl, dins, n); break;
        case CNN_LAYER_GAP: gap_backward(rl, din, n); break;
        }
    }
    /* Hand the double accumulators to the float gradients, and clear them for next time. */
    for (int l = 0; l <= last; l++) {
        ref_layer *rl = &R->layers[l];
        for (int p = 0; p < rl->L->n_params; p++) {
            if (!rl->gacc[p])
                continue;
            for (size_t i = 0; i < rl->t[p]->size; i++) {
                rl->t[p]->grad[i] += (float)rl->gacc[p][i];
                rl->gacc[p][i] = 0;
            }
        }
    }
}

static void ref_destroy(cnn_model *m)
{
    ref_model *R = (ref_model *)m;
    if (R->layers)
        for (int l = 0; l < R->ir->n_layers; l++) {
            ref_layer *rl = &R->layers[l];
            free(rl->pre);
            free(rl->out);
            free(rl->dpre);
            free(rl->dout);
            free(rl->mask);
            free(rl->xhat);
            free(rl->invstd);
            for (int p = 0; p < CNN_MAX_LAYER_PARAMS; p++)
                free(rl->gacc[p]);
        }
    if (m->tensors)
        for (int t = 0; t < m->n_tensors; t++) {
            free(m->tensors[t].value);
            free(m->tensors[t].grad);
            free(m->tensors[t].slot[0]);
            free(m->tensors[t].slot[1]);
        }
    free(m->tensors);
    free(R->layers);
    free(R->x);
    free(R->probs);
    free(R->names);
    free(R);
}

static int all_finite(const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return 0;
    return 1;
}

static const char *ref_first_not_finite(cnn_model *m, int n, int backward)
{
    ref_model *R = (ref_model *)m;
    int L = R->ir->n_layers;
    for (int k = 0; k < L; k++) {
        const ref_layer *rl = &R->layers[backward ? L - 1 - k : k];
        if (!all_finite(backward ? rl->dout : rl->out, (size_t)n * rl->out_size))
            return rl->L->name;
        for (int p = 0; backward && p < rl->L->n_params; p++)
            if (rl->t[p]->grad)
                for (size_t i = 0; i < rl->t[p]->size; i++)
                    if (!isfinite(rl->t[p]->grad[i]))
                        return rl->L->name;
    }
    return NULL;
}

const double *cnn_reference_values(const cnn_model *m, int layer, int pre)
{
    const ref_model *R = (const ref_model *)m;
    const ref_layer *rl = &R->layers[layer];
    return pre ? rl->pre : rl->out;
}

static const cnn_model_ops ref_ops = {
    .forward = ref_forward,
    .loss = ref_loss,
    .backward = ref_backward,
    .destroy = ref_destroy,
    .first_not_finite = ref_first_not_finite,
};

/* A network without a loss (loss none) is only run. */
static const cnn_model_ops ref_ops_forward_only = {
    .forward = ref_forward,
    .destroy = ref_destroy,
    .first_not_finite = ref_first_not_finite,
};

static void *zalloc(size_t count, size_t size, int *failed)
{
    void *p = calloc(count ? count : 1, size);
    if (!p)
        *failed = 1;
    return p;
}

cnn_model *cnn_reference_new(const cnn_ir *ir, int max_batch)
{
    ref_model *R = calloc(1, sizeof *R);
    if (!R)
        return NULL;
    cnn_model *m = &R->base;
    int failed = 0;
    R->ir = ir;
    m->ops = ir->train.loss == CNN_LOSS_NONE ? &ref_ops_forward_only : &ref_ops;
    m->name = ir->name;
    m->backend = "reference";
    m->in_h = ir->input.h;
    m->in_w = ir->input.w;
    m->in_c = ir->input.c;
    m->n_classes = ir->n_classes;
    m->max_batch = max_batch;
    m->train = ir->train;
    size_t B = (size_t)max_batch;

    int n_tensors = 0;
    for (int l = 0; l < ir->n_layers; l++)
        n_tensors += ir->layers[l].n_params;
    m->tensors = zalloc((size_t)n_tensors, sizeof(cnn_tensor), &failed);
    R->names = zalloc((size_t)n_tensors, 96, &failed);
    R->layers = zalloc((size_t)ir->n_layers, sizeof(ref_layer), &failed);
    R->x = zalloc(B * cnn_input_size(m), sizeof(double), &failed);
    R->probs = zalloc(B * (size_t)ir->n_classes, sizeof(float), &failed);
    if (failed) {
        ref_destroy(m);
        return NULL;
    }
    m->output = R->probs;
    for (int l = 0; l < ir->n_layers; l++) {
        const cnn_layer *L = &ir->layers[l];
        ref_layer *rl = &R->layers[l];
        rl->L = L;
        rl->in_size = (size_t)cnn_shape_size(L->in);
        rl->out_size = (size_t)cnn_shape_size(L->out);
        rl->out = zalloc(B * rl->out_size, sizeof(double), &failed);
        rl->dout = zalloc(B * rl->out_size, sizeof(double), &failed);
        if (L->type == CNN_LAYER_CONV || L->type == CNN_LAYER_DENSE ||
            L->type == CNN_LAYER_DWCONV || L->type == CNN_LAYER_ACTIVATION) {
            rl->pre = zalloc(B * rl->out_size, sizeof(double), &failed);
            rl->dpre = zalloc(B * rl->out_size, sizeof(double), &failed);
        }
        if (L->type == CNN_LAYER_DROPOUT)
            rl->mask = zalloc(B * rl->out_size, sizeof(double), &failed);
        if (L->type == CNN_LAYER_BATCHNORM) {
            rl->xhat = zalloc(B * rl->out_size, sizeof(double), &failed);
            rl->invstd = zalloc((size_t)L->in.c, sizeof(double), &failed);
        }
        for (int p = 0; p < L->n_params; p++) {
            const cnn_param *P = &L->params[p];
            cnn_tensor *T = &m->tensors[m->n_tensors];
            char *name = R->names + 96 * (size_t)m->n_tensors;
            m->n_tensors++;
            snprintf(name, 96, "%s/%s", L->name, P->suffix);
            T->name = name;
            T->rank = P->rank;
            memcpy(T->dims, P->dims, sizeof T->dims);
            T->size = (size_t)P->size;
            T->init = P->init;
            T->fan_in = P->fan_in;
            T->fan_out = P->fan_out;
            T->l1 = P->l1;
            T->l2 = P->l2;
            T->value = zalloc(T->size, sizeof(float), &failed);
            if (P->trainable) {
                T->grad = zalloc(T->size, sizeof(float), &failed);
                T->slot[0] = zalloc(T->size, sizeof(float), &failed);
                T->slot[1] = zalloc(T->size, sizeof(float), &failed);
                rl->gacc[p] = zalloc(T->size, sizeof(double), &failed);
            }
            rl->t[p] = T;
        }
        if (failed) {
            ref_destroy(m);
            return NULL;
        }
    }
    return m;
}
