/* Post-training int8 quantization of a deploy network (docs/deploy.md): ranges seen on
 * calibration images, then per-tensor scales and zero points, per-channel symmetric int8
 * weights, int32 biases, and fixed-point multipliers, as TFLite and CMSIS-NN do it. */
#ifndef CNN_QUANTIZE_H
#define CNN_QUANTIZE_H

#include <stdint.h>

#include "cnnrt.h"
#include "deploy.h"

/* real = scale * (q - zero), q in [-128, 127] */
typedef struct cnn_qparams {
    double scale;
    int zero;
} cnn_qparams;

/* A real multiplier as mult * 2^-shift: mult in [2^30, 2^31) (0 for a multiplier too small to
 * matter), shift in [1, 62], so that (int64) acc * mult never overflows and the rounding
 * shift is defined. */
typedef struct cnn_requant {
    int32_t mult;
    int shift;
} cnn_requant;

/* The add's inputs are shifted left by this many bits before they are rescaled (TFLite's
 * left_shift): |q - z| < 2^8, so each term stays below 2^28 and eight of them below 2^31. */
#define CNN_QUANT_ADD_SHIFT 20

typedef struct cnn_quant_op {
    cnn_qparams in, pre, act, out; /* pre: before a table activation; act: after it */
    /* add, concat: each input's params, and its multiplier (concat: s_k / s_out; add:
     * s_k / (2 max s), applied after the left shift) */
    cnn_qparams ins[CNN_MAX_INPUTS];
    cnn_requant in_rq[CNN_MAX_INPUTS];
    int table;                     /* the activation is a 256-entry table (leaky_relu,
                                      sigmoid, tanh) from pre to act */
    int8_t lut[256];               /* indexed by q_pre + 128 */
    int lo;                        /* the lowest act value: relu clamps at act.zero */
    /* conv: kernel [out][kh][kw][in]; dwconv: [out][kh][kw]; dense: [out][in]; affine op: [c] */
    int8_t *kernel;
    int32_t *bias;
    /* conv and dense: the bias for inputs read as unsigned bytes, q + 128, as the dot products
     * read them: bias - (in.zero + 128) * (the channel's sum of weights), exactly. */
    int32_t *bias_u8;
    cnn_requant *rq;      /* per output channel: acc to pre (table) or to act; add: one, the
                             sum of its rescaled inputs to pre */
    float *dequant;       /* the last dense: logits = acc * dequant[j] */
    /* conv and dense with a batchnorm after the activation, as an affine op's are */
    int8_t *bn_w;
    int32_t *bn_b;
    cnn_requant *bn_rq;
} cnn_quant_op;

/* What the calibration images made each IR layer compute: min and max of its output, and of
 * its values before the activation (conv, dense). */
typedef struct cnn_quant_ranges {
    double *lo, *hi, *pre_lo, *pre_hi; /* [n_layers] */
    int images;
} cnn_quant_ranges;

typedef struct cnn_quant {
    cnn_qparams *tensor; /* [n_tensors] */
    cnn_quant_op *op;    /* [n_ops] */
} cnn_quant;

/* Runs the reference model ref (of ir, with the weights, max_batch images at a time) on the
 * first n images of ds and records the ranges. -1 when out of memory. */
int cnn_quant_calibrate(cnn_quant_ranges *r, const cnn_ir *ir, cnn_model *ref,
                        const cnn_dataset *ds, int n, cnn_arena *arena);

/* Quantizes dn from the ranges. -1 when out of memory. */
int cnn_quantize(cnn_quant *q, const cnn_deploy *dn, const cnn_quant_ranges *r,
                 cnn_arena *arena);

/* Whether an op's activation is a 256-entry int8 table (leaky_relu, sigmoid, tanh) rather than
 * a clamp: what the quantizer builds and the export's sizes count. */
int cnn_quant_act_is_table(cnn_act act);
/* The requantization of a real multiplier (exposed for tests). */
cnn_requant cnn_quant_multiplier(double real);
/* round(acc * mult * 2^-shift), halves up (floor of x + 1/2): the device's arithmetic,
 * written with a division instead of its shifts. */
int32_t cnn_quant_apply(int32_t acc, cnn_requant r);
/* Scale and zero point covering [lo, hi] (widened to include 0). */
cnn_qparams cnn_quant_params(double lo, double hi);

#endif
