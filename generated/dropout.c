/* dropout: the network "dropout", compiled by cnnc 0.1.0 from models/dropout.net.
 * Do not edit: regenerate with `cnnc models/dropout.net -o FILE.c`.
 *
 * Input 28x28x1, 10 classes, 93,322 parameters (93,322 trainable), batches of up to 32.
 * Activations are [n][h][w][c] (channels last); kernels are in Keras' layouts,
 * conv [kh][kw][in][out] and dense [in][out]. Each layer has NAME_forward and
 * NAME_backward over a range of images, and NAME_grads, which accumulates the
 * parameters' gradients over the batch into their _grad buffers; all buffers are
 * static. Convolutions and dense layers are matrix products (im2col, then
 * libcnnrt's cnn_gemm_*); windows of few taps are computed directly. The threads
 * of libcnnrt's pool split each batch (forward_part, backward_part).
 * The model interface at the end (cnnrt.h) lets libcnnrt train and evaluate it.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cnnrt.h"

/* The network input of the last forward pass (the first layer's backward reads it), and
 * the size of the current batch (batchnorm's statistics cover all of it). */
static const float *x;
static int batch_n;

/* ==== conv2d_1 (Conv2D): conv 32 3x3 relu; pool 2
 *      models/dropout.net line 4; 28x28x1 -> 26x26x32, 320 parameters, 0.389 MFLOP per image
 */
static float conv2d_1_kernel[288]; /* 3x3x1x32 */
static float conv2d_1_kernel_grad[288];
static float conv2d_1_kernel_m[288], conv2d_1_kernel_v[288]; /* optimizer state */
static float conv2d_1_bias[32]; /* 32 */
static float conv2d_1_bias_grad[32];
static float conv2d_1_bias_m[32], conv2d_1_bias_v[32]; /* optimizer state */
static float conv2d_1_out[692224]; /* 32 x 21632 */
static float conv2d_1_dout[692224]; /* 32 x 21632 */
/* Each image's share of the kernel's gradient (rows: taps, then the bias), summed over the
 * batch after backward: no im2col, and no order that depends on threads. */
static float conv2d_1_grad_img[10240]; /* 32 x 320 */

static void conv2d_1_forward(float *out, const float *in, int b0, int n) {
    out += b0 * 21632;
    in += b0 * 784;
    /* A 9-tap window: each output pixel directly, its 32 channels in a local. */
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < 26; oy++)
            for (int ox = 0; ox < 26; ox++) {
                const float *win = in + (b * 28 + oy) * 28 + ox;
                float *o = out + ((b * 26 + oy) * 26 + ox) * 32;
                float acc[32];
                memcpy(acc, conv2d_1_bias, sizeof acc);
                for (int ky = 0; ky < 3; ky++)
                    for (int i = 0; i < 3; i++) /* kx and c */
                        for (int f = 0; f < 32; f++)
                            acc[f] += win[ky * 28 + i] * conv2d_1_kernel[(ky * 3 + i) * 32 + f];
                for (int i = 0; i < 32; i++) /* relu */
                    acc[i] = acc[i] > 0.0f ? acc[i] : 0.0f;
                memcpy(o, acc, sizeof acc);
            }
}

static void conv2d_1_backward(float *dout, const float *in, const float *out, int b0, int n) {
    dout += b0 * 21632;
    in += b0 * 784;
    out += b0 * 21632;
    float *grad_img = conv2d_1_grad_img + b0 * 320;
    for (int b = 0; b < n; b++) {
        float acc[10][32];
        memset(acc, 0, sizeof acc);
        for (int oy = 0; oy < 26; oy++)
            for (int ox = 0; ox < 26; ox++) {
                const float *win = in + (b * 28 + oy) * 28 + ox;
                float *d = dout + ((b * 26 + oy) * 26 + ox) * 32;
                const float *o = out + ((b * 26 + oy) * 26 + ox) * 32;
                for (int i = 0; i < 32; i++) /* relu' */
                    d[i] = o[i] > 0.0f ? d[i] : 0.0f;
                for (int ky = 0; ky < 3; ky++)
                    for (int i = 0; i < 3; i++) /* kx and c */
                        for (int f = 0; f < 32; f++)
                            acc[ky * 3 + i][f] += win[ky * 28 + i] * d[f];
                for (int f = 0; f < 32; f++)
                    acc[9][f] += d[f];
            }
        memcpy(grad_img + b * 320, acc, sizeof acc);
    }
}

static void conv2d_1_grads(const float *dout, int n, int part, int parts) {
    (void)dout; /* backward has read it */
    int r0 = 10 * part / parts, r1 = 10 * (part + 1) / parts;
    /* kernel_grad[r0..r1][32] (row 9: the bias) += the images' shares */
    for (int r = r0; r < r1; r++) {
        float *grad = r < 9 ? conv2d_1_kernel_grad + r * 32 : conv2d_1_bias_grad;
        for (int b = 0; b < n; b++)
            for (int f = 0; f < 32; f++)
                grad[f] += conv2d_1_grad_img[(b * 10 + r) * 32 + f];
    }
}

/* ==== max_pooling2d_1 (MaxPooling2D): conv 32 3x3 relu; pool 2
 *      models/dropout.net line 4; 26x26x32 -> 13x13x32, 0 parameters
 */
static float max_pooling2d_1_out[173056]; /* 32 x 5408 */
static float max_pooling2d_1_dout[173056]; /* 32 x 5408 */
/* Which tap of its window each output took (the first maximum), for backward. */
static unsigned char max_pooling2d_1_arg[173056]; /* 32 x 5408 */

static void max_pooling2d_1_forward(float *out, const float *in, int b0, int n) {
    out += b0 * 5408;
    in += b0 * 21632;
    unsigned char *winner = max_pooling2d_1_arg + b0 * 5408;
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < 13; oy++)
            for (int ox = 0; ox < 13; ox++) {
                const float *win = in + ((b * 26 + oy * 2) * 26 + ox * 2) * 32;
                int at = ((b * 13 + oy) * 13 + ox) * 32;
                for (int c = 0; c < 32; c++) {
                    float best = win[c];
                    int arg = 0;
                    if (win[32 + c] > best) { best = win[32 + c]; arg = 1; }
                    if (win[832 + c] > best) { best = win[832 + c]; arg = 2; }
                    if (win[864 + c] > best) { best = win[864 + c]; arg = 3; }
                    out[at + c] = best;
                    winner[at + c] = (unsigned char)arg;
                }
            }
}

static void max_pooling2d_1_backward(float *din, float *dout, int b0, int n) {
    din += b0 * 21632;
    dout += b0 * 5408;
    const unsigned char *winner = max_pooling2d_1_arg + b0 * 5408;
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < 13; oy++)
            for (int ox = 0; ox < 13; ox++) {
                float *win = din + ((b * 26 + oy * 2) * 26 + ox * 2) * 32;
                int at = ((b * 13 + oy) * 13 + ox) * 32;
                for (int c = 0; c < 32; c++) {
                    float d = dout[at + c];
                    int arg = winner[at + c];
                    win[0 + c] = arg == 0 ? d : 0.0f;
                    win[32 + c] = arg == 1 ? d : 0.0f;
                    win[832 + c] = arg == 2 ? d : 0.0f;
                    win[864 + c] = arg == 3 ? d : 0.0f;
                }
            }
}

/* ==== conv2d_2 (Conv2D): conv 64 3x3 relu
 *      models/dropout.net line 5; 13x13x32 -> 11x11x64, 18,496 parameters, 4.46 MFLOP per image
 */
static float conv2d_2_kernel[18432]; /* 3x3x32x64 */
static float conv2d_2_kernel_grad[18432];
static float conv2d_2_kernel_m[18432], conv2d_2_kernel_v[18432]; /* optimizer state */
static float conv2d_2_bias[64]; /* 64 */
static float conv2d_2_bias_grad[64];
static float conv2d_2_bias_m[64], conv2d_2_bias_v[64]; /* optimizer state */
static float conv2d_2_out[247808]; /* 32 x 7744 */
static float conv2d_2_dout[247808]; /* 32 x 7744 */
/* im2col of the batch: row (b, oy, ox) holds the 3x3x32 window under output
 * pixel (oy, ox). The kernel's gradient reads it again after backward. */
static float conv2d_2_cols[1115136]; /* 32 x 34848 */
static float conv2d_2_dcols[1115136]; /* 32 x 34848: the windows' gradients */
static float conv2d_2_kernel_t[18432]; /* the kernel transposed, for backward */

static void conv2d_2_transpose(int part, int parts) {
    for (int j = 64 * part / parts; j < 64 * (part + 1) / parts; j++)
        for (int i = 0; i < 288; i++)
            conv2d_2_kernel_t[j * 288 + i] = conv2d_2_kernel[i * 64 + j];
}

static void conv2d_2_forward(float *out, const float *in, int b0, int n) {
    out += b0 * 7744;
    in += b0 * 5408;
    float *cols = conv2d_2_cols + b0 * 34848;
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < 11; oy++)
            for (int ox = 0; ox < 11; ox++) {
                float *col = cols + ((b * 11 + oy) * 11 + ox) * 288;
                const float *win = in + ((b * 13 + oy) * 13 + ox) * 32;
                memcpy(col + 0, win + 0, sizeof(float) * 96); /* kernel row 0 */
                memcpy(col + 96, win + 416, sizeof(float) * 96); /* kernel row 1 */
                memcpy(col + 192, win + 832, sizeof(float) * 96); /* kernel row 2 */
            }
    /* out[n*121][64] = bias + cols[n*121][288] . kernel[288][64] */
    cnn_gemm_bias(n * 121, 64, 288, cols, 288, conv2d_2_kernel, 64, conv2d_2_bias, out, 64);
    for (int i = 0; i < n * 7744; i++) /* relu */
        out[i] = out[i] > 0.0f ? out[i] : 0.0f;
}

static void conv2d_2_backward(float *din, float *dout, const float *out, int b0, int n) {
    din += b0 * 5408;
    dout += b0 * 7744;
    out += b0 * 7744;
    for (int i = 0; i < n * 7744; i++) /* relu' */
        dout[i] = out[i] > 0.0f ? dout[i] : 0.0f;
    /* The windows' gradients, dout . kernel^T; then each row is added back onto
     * the input pixels it came from (col2im). */
    float *dcols = conv2d_2_dcols + b0 * 34848;
    cnn_gemm_bias(n * 121, 288, 64, dout, 64, conv2d_2_kernel_t, 288, NULL, dcols, 288);
    memset(din, 0, sizeof(float) * n * 5408);
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < 11; oy++)
            for (int ox = 0; ox < 11; ox++) {
                float *col = dcols + ((b * 11 + oy) * 11 + ox) * 288;
                float *win = din + ((b * 13 + oy) * 13 + ox) * 32;
                for (int i = 0; i < 96; i++) /* kernel row 0 */
                    win[0 + i] += col[0 + i];
                for (int i = 0; i < 96; i++) /* kernel row 1 */
                    win[416 + i] += col[96 + i];
                for (int i = 0; i < 96; i++) /* kernel row 2 */
                    win[832 + i] += col[192 + i];
            }
}

static void conv2d_2_grads(const float *dout, int n, int part, int parts) {
    int r0 = 288 * part / parts, r1 = 288 * (part + 1) / parts;
    /* kernel_grad[r0..r1][64] += cols[n*121][r0..r1]^T . dout[n*121][64] */
    if (r1 > r0)
        cnn_gemm_tn_acc(r1 - r0, 64, n * 121, conv2d_2_cols + r0, 288, dout, 64, conv2d_2_kernel_grad + r0 * 64, 64);
    {
        int j0 = 64 * part / parts, j1 = 64 * (part + 1) / parts;
        float sum[64] = {0};
        for (int r = 0; r < n * 121; r++)
            for (int j = j0; j < j1; j++)
                sum[j] += dout[r * 64 + j];
        for (int j = j0; j < j1; j++)
            conv2d_2_bias_grad[j] += sum[j];
    }
}

/* ==== dropout_1 (Dropout): dropout 0.25
 *      models/dropout.net line 6; 11x11x64 -> 11x11x64, 0 parameters
 */
static float dropout_1_out[247808]; /* 32 x 7744 */
static float dropout_1_dout[247808]; /* 32 x 7744 */
static float dropout_1_mask[247808]; /* 32 x 7744: 0 or 1/(1-rate), drawn in training */

static void dropout_1_forward(float *out, const float *in, int b0, int n, int training, cnn_rng *rng) {
    out += b0 * 7744;
    in += b0 * 7744;
    if (!training) {
        memcpy(out, in, sizeof(float) * n * 7744);
        return;
    }
    float *mask = dropout_1_mask + b0 * 7744;
    /* One draw per element in memory order, as every cnnc backend draws (cnnrt.h). */
    for (int i = 0; i < n * 7744; i++) {
        mask[i] = cnn_dropout_keep(rng, 0.25f) ? 1.3333334f : 0.0f;
        out[i] = in[i] * mask[i];
    }
}

static void dropout_1_backward(float *din, float *dout, int b0, int n) {
    din += b0 * 7744;
    dout += b0 * 7744;
    const float *mask = dropout_1_mask + b0 * 7744;
    for (int i = 0; i < n * 7744; i++)
        din[i] = dout[i] * mask[i];
}

/* ==== max_pooling2d_2 (MaxPooling2D): pool 2
 *      models/dropout.net line 7; 11x11x64 -> 5x5x64, 0 parameters
 */
static float max_pooling2d_2_out[51200]; /* 32 x 1600 */
static float max_pooling2d_2_dout[51200]; /* 32 x 1600 */
/* Which tap of its window each output took (the first maximum), for backward. */
static unsigned char max_pooling2d_2_arg[51200]; /* 32 x 1600 */
/* The taps' offsets from the window's first element. */
static const int max_pooling2d_2_tap[4] = {
    0, 64, 704, 768,
};

static void max_pooling2d_2_forward(float *out, const float *in, int b0, int n) {
    out += b0 * 1600;
    in += b0 * 7744;
    unsigned char *winner = max_pooling2d_2_arg + b0 * 1600;
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < 5; oy++)
            for (int ox = 0; ox < 5; ox++) {
                const float *win = in + ((b * 11 + oy * 2) * 11 + ox * 2) * 64;
                int at = ((b * 5 + oy) * 5 + ox) * 64;
                for (int c = 0; c < 64; c++) {
                    float best = win[c];
                    int arg = 0;
                    if (win[64 + c] > best) { best = win[64 + c]; arg = 1; }
                    if (win[704 + c] > best) { best = win[704 + c]; arg = 2; }
                    if (win[768 + c] > best) { best = win[768 + c]; arg = 3; }
                    out[at + c] = best;
                    winner[at + c] = (unsigned char)arg;
                }
            }
}

static void max_pooling2d_2_backward(float *din, float *dout, int b0, int n) {
    din += b0 * 7744;
    dout += b0 * 1600;
    const unsigned char *winner = max_pooling2d_2_arg + b0 * 1600;
    memset(din, 0, sizeof(float) * n * 7744);
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < 5; oy++)
            for (int ox = 0; ox < 5; ox++) {
                float *win = din + ((b * 11 + oy * 2) * 11 + ox * 2) * 64;
                int at = ((b * 5 + oy) * 5 + ox) * 64;
                for (int c = 0; c < 64; c++) {
                    win[max_pooling2d_2_tap[winner[at + c]] + c] += dout[at + c];
                }
            }
}

/* ==== conv2d_3 (Conv2D): conv 64 3x3 relu
 *      models/dropout.net line 8; 5x5x64 -> 3x3x64, 36,928 parameters, 0.664 MFLOP per image
 */
static float conv2d_3_kernel[36864]; /* 3x3x64x64 */
static float conv2d_3_kernel_grad[36864];
static float conv2d_3_kernel_m[36864], conv2d_3_kernel_v[36864]; /* optimizer state */
static float conv2d_3_bias[64]; /* 64 */
static float conv2d_3_bias_grad[64];
static float conv2d_3_bias_m[64], conv2d_3_bias_v[64]; /* optimizer state */
static float conv2d_3_out[18432]; /* 32 x 576 */
static float conv2d_3_dout[18432]; /* 32 x 576 */
/* im2col of the batch: row (b, oy, ox) holds the 3x3x64 window under output
 * pixel (oy, ox). The kernel's gradient reads it again after backward. */
static float conv2d_3_cols[165888]; /* 32 x 5184 */
static float conv2d_3_dcols[165888]; /* 32 x 5184: the windows' gradients */
static float conv2d_3_kernel_t[36864]; /* the kernel transposed, for backward */

static void conv2d_3_transpose(int part, int parts) {
    for (int j = 64 * part / parts; j < 64 * (part + 1) / parts; j++)
        for (int i = 0; i < 576; i++)
            conv2d_3_kernel_t[j * 576 + i] = conv2d_3_kernel[i * 64 + j];
}

static void conv2d_3_forward(float *out, const float *in, int b0, int n) {
    out += b0 * 576;
    in += b0 * 1600;
    float *cols = conv2d_3_cols + b0 * 5184;
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < 3; oy++)
            for (int ox = 0; ox < 3; ox++) {
                float *col = cols + ((b * 3 + oy) * 3 + ox) * 576;
                const float *win = in + ((b * 5 + oy) * 5 + ox) * 64;
                memcpy(col + 0, win + 0, sizeof(float) * 192); /* kernel row 0 */
                memcpy(col + 192, win + 320, sizeof(float) * 192); /* kernel row 1 */
                memcpy(col + 384, win + 640, sizeof(float) * 192); /* kernel row 2 */
            }
    /* out[n*9][64] = bias + cols[n*9][576] . kernel[576][64] */
    cnn_gemm_bias(n * 9, 64, 576, cols, 576, conv2d_3_kernel, 64, conv2d_3_bias, out, 64);
    for (int i = 0; i < n * 576; i++) /* relu */
        out[i] = out[i] > 0.0f ? out[i] : 0.0f;
}

static void conv2d_3_backward(float *din, float *dout, const float *out, int b0, int n) {
    din += b0 * 1600;
    dout += b0 * 576;
    out += b0 * 576;
    for (int i = 0; i < n * 576; i++) /* relu' */
        dout[i] = out[i] > 0.0f ? dout[i] : 0.0f;
    /* The windows' gradients, dout . kernel^T; then each row is added back onto
     * the input pixels it came from (col2im). */
    float *dcols = conv2d_3_dcols + b0 * 5184;
    cnn_gemm_bias(n * 9, 576, 64, dout, 64, conv2d_3_kernel_t, 576, NULL, dcols, 576);
    memset(din, 0, sizeof(float) * n * 1600);
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < 3; oy++)
            for (int ox = 0; ox < 3; ox++) {
                float *col = dcols + ((b * 3 + oy) * 3 + ox) * 576;
                float *win = din + ((b * 5 + oy) * 5 + ox) * 64;
                for (int i = 0; i < 192; i++) /* kernel row 0 */
                    win[0 + i] += col[0 + i];
                for (int i = 0; i < 192; i++) /* kernel row 1 */
                    win[320 + i] += col[192 + i];
                for (int i = 0; i < 192; i++) /* kernel row 2 */
                    win[640 + i] += col[384 + i];
            }
}

static void conv2d_3_grads(const float *dout, int n, int part, int parts) {
    int r0 = 576 * part / parts, r1 = 576 * (part + 1) / parts;
    /* kernel_grad[r0..r1][64] += cols[n*9][r0..r1]^T . dout[n*9][64] */
    if (r1 > r0)
        cnn_gemm_tn_acc(r1 - r0, 64, n * 9, conv2d_3_cols + r0, 576, dout, 64, conv2d_3_kernel_grad + r0 * 64, 64);
    {
        int j0 = 64 * part / parts, j1 = 64 * (part + 1) / parts;
        float sum[64] = {0};
        for (int r = 0; r < n * 9; r++)
            for (int j = j0; j < j1; j++)
                sum[j] += dout[r * 64 + j];
        for (int j = j0; j < j1; j++)
            conv2d_3_bias_grad[j] += sum[j];
    }
}

/* ==== flatten_1 (Flatten): flatten
 *      models/dropout.net line 9; 3x3x64 -> 576, 0 parameters
 */
/* Nothing to compute: in [n][h][w][c] order the data is already flat, so the
 * next layer reads conv2d_3_out directly. */

/* ==== dense_1 (Dense): dense 64 relu
 *      models/dropout.net line 10; 576 -> 64, 36,928 parameters, 0.0737 MFLOP per image
 */
static float dense_1_kernel[36864]; /* 576x64 */
static float dense_1_kernel_grad[36864];
static float dense_1_kernel_m[36864], dense_1_kernel_v[36864]; /* optimizer state */
static float dense_1_bias[64]; /* 64 */
static float dense_1_bias_grad[64];
static float dense_1_bias_m[64], dense_1_bias_v[64]; /* optimizer state */
static float dense_1_out[2048]; /* 32 x 64 */
static float dense_1_dout[2048]; /* 32 x 64 */
static float dense_1_kernel_t[36864]; /* the kernel transposed, for backward */

static void dense_1_transpose(int part, int parts) {
    for (int j = 64 * part / parts; j < 64 * (part + 1) / parts; j++)
        for (int i = 0; i < 576; i++)
            dense_1_kernel_t[j * 576 + i] = dense_1_kernel[i * 64 + j];
}

static void dense_1_forward(float *out, const float *in, int b0, int n) {
    out += b0 * 64;
    in += b0 * 576;
    /* out[n][64] = bias + in[n][576] . kernel[576][64] */
    cnn_gemm_bias(n, 64, 576, in, 576, dense_1_kernel, 64, dense_1_bias, out, 64);
    for (int i = 0; i < n * 64; i++) /* relu */
        out[i] = out[i] > 0.0f ? out[i] : 0.0f;
}

static void dense_1_backward(float *din, float *dout, const float *out, int b0, int n) {
    din += b0 * 576;
    dout += b0 * 64;
    out += b0 * 64;
    for (int i = 0; i < n * 64; i++) /* relu' */
        dout[i] = out[i] > 0.0f ? dout[i] : 0.0f;
    /* din[n][576] = dout . kernel^T */
    cnn_gemm_bias(n, 576, 64, dout, 64, dense_1_kernel_t, 576, NULL, din, 576);
}

static void dense_1_grads(const float *dout, const float *in, int n, int part, int parts) {
    int r0 = 576 * part / parts, r1 = 576 * (part + 1) / parts;
    /* kernel_grad[r0..r1][64] += in[n][r0..r1]^T . dout[n][64] */
    if (r1 > r0)
        cnn_gemm_tn_acc(r1 - r0, 64, n, in + r0, 576, dout, 64, dense_1_kernel_grad + r0 * 64, 64);
    {
        int j0 = 64 * part / parts, j1 = 64 * (part + 1) / parts;
        float sum[64] = {0};
        for (int r = 0; r < n; r++)
            for (int j = j0; j < j1; j++)
                sum[j] += dout[r * 64 + j];
        for (int j = j0; j < j1; j++)
            dense_1_bias_grad[j] += sum[j];
    }
}

/* ==== dense_2 (Dense): dense 10 softmax
 *      models/dropout.net line 11; 64 -> 10, 650 parameters, 0.00128 MFLOP per image
 */
static float dense_2_kernel[640]; /* 64x10 */
static float dense_2_kernel_grad[640];
static float dense_2_kernel_m[640], dense_2_kernel_v[640]; /* optimizer state */
static float dense_2_bias[10]; /* 10 */
static float dense_2_bias_grad[10];
static float dense_2_bias_m[10], dense_2_bias_v[10]; /* optimizer state */
static float dense_2_out[320]; /* 32 x 10 */
static float dense_2_dout[320]; /* 32 x 10 */
static float dense_2_logits[320]; /* 32 x 10: before softmax, for the loss */
static float dense_2_kernel_t[640]; /* the kernel transposed, for backward */

static void dense_2_transpose(int part, int parts) {
    for (int j = 10 * part / parts; j < 10 * (part + 1) / parts; j++)
        for (int i = 0; i < 64; i++)
            dense_2_kernel_t[j * 64 + i] = dense_2_kernel[i * 10 + j];
}

static void dense_2_forward(float *out, const float *in, int b0, int n) {
    out += b0 * 10;
    in += b0 * 64;
    float *logits = dense_2_logits + b0 * 10;
    /* logits[n][10] = bias + in[n][64] . kernel[64][10] */
    cnn_gemm_bias(n, 10, 64, in, 64, dense_2_kernel, 10, dense_2_bias, logits, 10);
    /* out = softmax(logits), row by row */
    for (int b = 0; b < n; b++) {
        const float *zb = logits + b * 10;
        float *p = out + b * 10, max = zb[0], sum = 0.0f;
        for (int j = 1; j < 10; j++)
            max = zb[j] > max ? zb[j] : max;
        for (int j = 0; j < 10; j++) {
            p[j] = expf(zb[j] - max);
            sum += p[j];
        }
        for (int j = 0; j < 10; j++)
            p[j] /= sum;
    }
}

static void dense_2_backward(float *din, float *dout, int b0, int n) {
    din += b0 * 64;
    dout += b0 * 10;
    /* din[n][64] = dout . kernel^T */
    cnn_gemm_bias(n, 64, 10, dout, 10, dense_2_kernel_t, 64, NULL, din, 64);
}

static void dense_2_grads(const float *dout, const float *in, int n, int part, int parts) {
    int r0 = 64 * part / parts, r1 = 64 * (part + 1) / parts;
    /* kernel_grad[r0..r1][10] += in[n][r0..r1]^T . dout[n][10] */
    if (r1 > r0)
        cnn_gemm_tn_acc(r1 - r0, 10, n, in + r0, 64, dout, 10, dense_2_kernel_grad + r0 * 10, 10);
    {
        int j0 = 10 * part / parts, j1 = 10 * (part + 1) / parts;
        float sum[10] = {0};
        for (int r = 0; r < n; r++)
            for (int j = j0; j < j1; j++)
                sum[j] += dout[r * 10 + j];
        for (int j = j0; j < j1; j++)
            dense_2_bias_grad[j] += sum[j];
    }
}

/* ==== the model interface of cnnrt.h ==== */

/* The rest of the current pass, for the threads' parts (cnn_parallel). */
static int batch_training;
static cnn_rng *batch_rng;
static const int *batch_labels;

/* One thread's share of a forward pass: images first .. end-1. */
static void forward_part(void *arg, int part, int parts) {
    (void)arg;
    int first = batch_n * part / parts, end = batch_n * (part + 1) / parts;
    /* 2 images at a time: one layer's buffers for them stay in cache for the next */
    for (int b0 = first; b0 < end; b0 += 2) {
        int n = end - b0 < 2 ? end - b0 : 2;
        conv2d_1_forward(conv2d_1_out, x, b0, n);
        max_pooling2d_1_forward(max_pooling2d_1_out, conv2d_1_out, b0, n);
        conv2d_2_forward(conv2d_2_out, max_pooling2d_1_out, b0, n);
    }
    cnn_barrier(); /* dropout_1 sees the whole batch, in one thread */
    if (part == 0)
        dropout_1_forward(dropout_1_out, conv2d_2_out, 0, batch_n, batch_training, batch_rng);
    cnn_barrier();
    /* 14 images at a time: one layer's buffers for them stay in cache for the next */
    for (int b0 = first; b0 < end; b0 += 14) {
        int n = end - b0 < 14 ? end - b0 : 14;
        max_pooling2d_2_forward(max_pooling2d_2_out, dropout_1_out, b0, n);
        conv2d_3_forward(conv2d_3_out, max_pooling2d_2_out, b0, n);
        dense_1_forward(dense_1_out, conv2d_3_out, b0, n);
        dense_2_forward(dense_2_out, dense_1_out, b0, n);
    }
}

static void forward(cnn_model *m, const float *input, int n, int training, cnn_rng *rng) {
    (void)m;
    x = input;
    batch_n = n;
    batch_training = training;
    batch_rng = rng;
    cnn_parallel(forward_part, NULL, n);
}

/* Mean cross-entropy from the logits: logsumexp(z) - z[label], in double. */
static double loss(cnn_model *m, const int *labels, const float *targets, int n) {
    (void)m, (void)targets;
    double total = 0.0;
    for (int b = 0; b < n; b++) {
        const float *z = dense_2_logits + b * 10;
        double max = z[0], sum = 0.0;
        for (int j = 1; j < 10; j++)
            if (z[j] > max)
                max = z[j];
        for (int j = 0; j < 10; j++)
            sum += exp(z[j] - max);
        total += max + log(sum) - z[labels[b]];
    }
    return total / n;
}

static void backward_part(void *arg, int part, int parts) {
    (void)arg;
    int first = batch_n * part / parts, end = batch_n * (part + 1) / parts;
    conv2d_2_transpose(part, parts);
    conv2d_3_transpose(part, parts);
    dense_1_transpose(part, parts);
    dense_2_transpose(part, parts);
    cnn_barrier(); /* the kernels, transposed since the last step */
    /* 14 images at a time: one layer's buffers for them stay in cache for the next */
    for (int b0 = first; b0 < end; b0 += 14) {
        int n = end - b0 < 14 ? end - b0 : 14;
        /* softmax with cross-entropy: d loss / d logits = (p - onehot(label)) / batch */
        for (int b = b0; b < b0 + n; b++)
            for (int j = 0; j < 10; j++)
                dense_2_dout[b * 10 + j] = (dense_2_out[b * 10 + j] - (j == batch_labels[b])) / (float)batch_n;
        dense_2_backward(dense_1_dout, dense_2_dout, b0, n);
        dense_1_backward(conv2d_3_dout, dense_1_dout, dense_1_out, b0, n);
        conv2d_3_backward(max_pooling2d_2_dout, conv2d_3_dout, conv2d_3_out, b0, n);
        max_pooling2d_2_backward(dropout_1_dout, max_pooling2d_2_dout, b0, n);
    }
    cnn_barrier(); /* dropout_1 sees the whole batch, in one thread */
    if (part == 0)
        dropout_1_backward(conv2d_2_dout, dropout_1_dout, 0, batch_n);
    cnn_barrier();
    /* 2 images at a time: one layer's buffers for them stay in cache for the next */
    for (int b0 = first; b0 < end; b0 += 2) {
        int n = end - b0 < 2 ? end - b0 : 2;
        conv2d_2_backward(max_pooling2d_1_dout, conv2d_2_dout, conv2d_2_out, b0, n);
        max_pooling2d_1_backward(conv2d_1_dout, max_pooling2d_1_dout, b0, n);
        conv2d_1_backward(conv2d_1_dout, x, conv2d_1_out, b0, n);
    }
    /* The parameters' gradients sum over every image: each part takes a share of rows. */
    cnn_barrier();
    dense_2_grads(dense_2_dout, dense_1_out, batch_n, part, parts);
    dense_1_grads(dense_1_dout, conv2d_3_out, batch_n, part, parts);
    conv2d_3_grads(conv2d_3_dout, batch_n, part, parts);
    conv2d_2_grads(conv2d_2_dout, batch_n, part, parts);
    conv2d_1_grads(conv2d_1_dout, batch_n, part, parts);
}

static void backward(cnn_model *m, const int *labels, const float *targets, int n) {
    (void)m, (void)targets;
    batch_labels = labels;
    batch_n = n;
    cnn_parallel(backward_part, NULL, n);
}

static void destroy(cnn_model *m) {
    (void)m; /* everything is static */
}

static cnn_tensor tensors[] = {
    {
        .name = "conv2d_1/kernel",
        .rank = 4,
        .dims = {3, 3, 1, 32},
        .size = 288,
        .value = conv2d_1_kernel,
        .grad = conv2d_1_kernel_grad,
        .slot = {conv2d_1_kernel_m, conv2d_1_kernel_v},
        .init = CNN_INIT_GLOROT_UNIFORM,
        .fan_in = 9,
        .fan_out = 288,
        .l1 = 0.0f,
        .l2 = 0.0f,
    },
    {
        .name = "conv2d_1/bias",
        .rank = 1,
        .dims = {32},
        .size = 32,
        .value = conv2d_1_bias,
        .grad = conv2d_1_bias_grad,
        .slot = {conv2d_1_bias_m, conv2d_1_bias_v},
        .init = CNN_INIT_ZEROS,
        .fan_in = 0,
        .fan_out = 0,
        .l1 = 0.0f,
        .l2 = 0.0f,
    },
    {
        .name = "conv2d_2/kernel",
        .rank = 4,
        .dims = {3, 3, 32, 64},
        .size = 18432,
        .value = conv2d_2_kernel,
        .grad = conv2d_2_kernel_grad,
        .slot = {conv2d_2_kernel_m, conv2d_2_kernel_v},
        .init = CNN_INIT_GLOROT_UNIFORM,
        .fan_in = 288,
        .fan_out = 576,
        .l1 = 0.0f,
        .l2 = 0.0f,
    },
    {
        .name = "conv2d_2/bias",
        .rank = 1,
        .dims = {64},
        .size = 64,
        .value = conv2d_2_bias,
        .grad = conv2d_2_bias_grad,
        .slot = {conv2d_2_bias_m, conv2d_2_bias_v},
        .init = CNN_INIT_ZEROS,
        .fan_in = 0,
        .fan_out = 0,
        .l1 = 0.0f,
        .l2 = 0.0f,
    },
    {
        .name = "conv2d_3/kernel",
        .rank = 4,
        .dims = {3, 3, 64, 64},
        .size = 36864,
        .value = conv2d_3_kernel,
        .grad = conv2d_3_kernel_grad,
        .slot = {conv2d_3_kernel_m, conv2d_3_kernel_v},
        .init = CNN_INIT_GLOROT_UNIFORM,
        .fan_in = 576,
        .fan_out = 576,
        .l1 = 0.0f,
        .l2 = 0.0f,
    },
    {
        .name = "conv2d_3/bias",
        .rank = 1,
        .dims = {64},
        .size = 64,
        .value = conv2d_3_bias,
        .grad = conv2d_3_bias_grad,
        .slot = {conv2d_3_bias_m, conv2d_3_bias_v},
        .init = CNN_INIT_ZEROS,
        .fan_in = 0,
        .fan_out = 0,
        .l1 = 0.0f,
        .l2 = 0.0f,
    },
    {
        .name = "dense_1/kernel",
        .rank = 2,
        .dims = {576, 64},
        .size = 36864,
        .value = dense_1_kernel,
        .grad = dense_1_kernel_grad,
        .slot = {dense_1_kernel_m, dense_1_kernel_v},
        .init = CNN_INIT_GLOROT_UNIFORM,
        .fan_in = 576,
        .fan_out = 64,
        .l1 = 0.0f,
        .l2 = 0.0f,
    },
    {
        .name = "dense_1/bias",
        .rank = 1,
        .dims = {64},
        .size = 64,
        .value = dense_1_bias,
        .grad = dense_1_bias_grad,
        .slot = {dense_1_bias_m, dense_1_bias_v},
        .init = CNN_INIT_ZEROS,
        .fan_in = 0,
        .fan_out = 0,
        .l1 = 0.0f,
        .l2 = 0.0f,
    },
    {
        .name = "dense_2/kernel",
        .rank = 2,
        .dims = {64, 10},
        .size = 640,
        .value = dense_2_kernel,
        .grad = dense_2_kernel_grad,
        .slot = {dense_2_kernel_m, dense_2_kernel_v},
        .init = CNN_INIT_GLOROT_UNIFORM,
        .fan_in = 64,
        .fan_out = 10,
        .l1 = 0.0f,
        .l2 = 0.0f,
    },
    {
        .name = "dense_2/bias",
        .rank = 1,
        .dims = {10},
        .size = 10,
        .value = dense_2_bias,
        .grad = dense_2_bias_grad,
        .slot = {dense_2_bias_m, dense_2_bias_v},
        .init = CNN_INIT_ZEROS,
        .fan_in = 0,
        .fan_out = 0,
        .l1 = 0.0f,
        .l2 = 0.0f,
    },
};

/* --check-numerics: the first layer of a pass that holds a NaN or an infinity. */
static int not_finite(const float *v, long count) {
    for (long i = 0; i < count; i++)
        if (!isfinite(v[i]))
            return 1;
    return 0;
}

static const char *first_not_finite(cnn_model *m, int n, int backward) {
    (void)m;
    if (!backward) {
        if (not_finite(conv2d_1_out, n * 21632L)) return "conv2d_1";
        if (not_finite(max_pooling2d_1_out, n * 5408L)) return "max_pooling2d_1";
        if (not_finite(conv2d_2_out, n * 7744L)) return "conv2d_2";
        if (not_finite(dropout_1_out, n * 7744L)) return "dropout_1";
        if (not_finite(max_pooling2d_2_out, n * 1600L)) return "max_pooling2d_2";
        if (not_finite(conv2d_3_out, n * 576L)) return "conv2d_3";
        if (not_finite(dense_1_out, n * 64L)) return "dense_1";
        if (not_finite(dense_2_out, n * 10L)) return "dense_2";
        return NULL;
    }
    if (not_finite(dense_2_dout, n * 10L)) return "dense_2";
    if (not_finite(dense_2_kernel_grad, 640L)) return "dense_2";
    if (not_finite(dense_2_bias_grad, 10L)) return "dense_2";
    if (not_finite(dense_1_dout, n * 64L)) return "dense_1";
    if (not_finite(dense_1_kernel_grad, 36864L)) return "dense_1";
    if (not_finite(dense_1_bias_grad, 64L)) return "dense_1";
    if (not_finite(conv2d_3_dout, n * 576L)) return "conv2d_3";
    if (not_finite(conv2d_3_kernel_grad, 36864L)) return "conv2d_3";
    if (not_finite(conv2d_3_bias_grad, 64L)) return "conv2d_3";
    if (not_finite(max_pooling2d_2_dout, n * 1600L)) return "max_pooling2d_2";
    if (not_finite(dropout_1_dout, n * 7744L)) return "dropout_1";
    if (not_finite(conv2d_2_dout, n * 7744L)) return "conv2d_2";
    if (not_finite(conv2d_2_kernel_grad, 18432L)) return "conv2d_2";
    if (not_finite(conv2d_2_bias_grad, 64L)) return "conv2d_2";
    if (not_finite(max_pooling2d_1_dout, n * 5408L)) return "max_pooling2d_1";
    if (not_finite(conv2d_1_dout, n * 21632L)) return "conv2d_1";
    if (not_finite(conv2d_1_kernel_grad, 288L)) return "conv2d_1";
    if (not_finite(conv2d_1_bias_grad, 32L)) return "conv2d_1";
    return NULL;
}

static const cnn_model_ops ops = {
    .forward = forward,
    .loss = loss,
    .backward = backward,
    .destroy = destroy,
    .first_not_finite = first_not_finite,
};

static cnn_model model = {
    .name = "dropout",
    .backend = "compiled",
    .in_h = 28,
    .in_w = 28,
    .in_c = 1,
    .n_classes = 10,
    .max_batch = 32,
    .n_tensors = (int)(sizeof tensors / sizeof tensors[0]),
    .tensors = tensors,
    .output = dense_2_out,
    /* the train { } block of models/dropout.net */
    .train = {.loss = CNN_LOSS_CROSSENTROPY, .optimizer = CNN_OPTIM_ADAM, .lr = 0.001,
              .momentum = 0, .nesterov = 0, .rho = 0.90000000000000002, .beta1 = 0.90000000000000002,
              .beta2 = 0.999, .eps = 9.9999999999999995e-08, .weight_decay = 0,
              .batch = 32, .epochs = 15, .validation = 0.20000000000000001, .schedule = CNN_SCHED_CONSTANT,
              .sched_every = 1, .sched_factor = 1, .sched_alpha = 0,
              .seed = 42u},
    .ops = &ops,
};

/* The network, ready for libcnnrt. There is one instance: its buffers are static. */
cnn_model *dropout_model(void) {
    return &model;
}

#ifndef CNNC_NO_MAIN
static cnn_model *make(void *ctx, int batch) {
    (void)ctx;
    if (batch > 32) {
        fprintf(stderr, "dropout: error: compiled for batches of up to 32, asked for %d "
                        "(regenerate with cnnc --batch N)\n", batch);
        return NULL;
    }
    return &model;
}

/* The same command line as `cnnc run models/dropout.net ...`. */
int main(int argc, char **argv) {
    return cnn_cli_main(argc, argv, make, NULL, &model.train);
}
#endif
