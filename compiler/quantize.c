/* Post-training int8 quantization (quantize.h, docs/deploy.md). All of it runs in cnnc, in
 * double; what it produces (int8 weights, int32 biases, multipliers, tables) is all the
 * device computes with. */
#include "quantize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"

int cnn_quant_calibrate(cnn_quant_ranges *r, const cnn_ir *ir, cnn_model *ref,
                        const cnn_dataset *ds, int n, cnn_arena *arena)
{
    int L = ir->n_layers;
    r->lo = cnn_arena_alloc(arena, sizeof(double) * (size_t)L);
    r->hi = cnn_arena_alloc(arena, sizeof(double) * (size_t)L);
    r->pre_lo = cnn_arena_alloc(arena, sizeof(double) * (size_t)L);
    r->pre_hi = cnn_arena_alloc(arena, sizeof(double) * (size_t)L);
    if (n > ds->n)
        n = ds->n;
    r->images = n;
    int B = ref->max_batch;
    float *x = malloc(sizeof(float) * cnn_input_size(ref) * (size_t)B);
    int *idx = malloc(sizeof(int) * (size_t)B), *labels = malloc(sizeof(int) * (size_t)B);
    if (!r->lo || !r->hi || !r->pre_lo || !r->pre_hi || !x || !idx || !labels) {
        free(x), free(idx), free(labels);
        return -1;
    }
    for (int l = 0; l < L; l++)
        r->lo[l] = r->pre_lo[l] = INFINITY, r->hi[l] = r->pre_hi[l] = -INFINITY;
    for (int b0 = 0; b0 < n; b0 += B) {
        int k = n - b0 < B ? n - b0 : B;
        for (int i = 0; i < k; i++)
            idx[i] = b0 + i;
        cnn_dataset_batch(ds, idx, k, x, labels);
        ref->ops->forward(ref, x, k, 0, NULL);
        for (int l = 0; l < L; l++) {
            const cnn_layer *Ly = &ir->layers[l];
            size_t size = (size_t)k * (size_t)cnn_shape_size(Ly->out);
            for (int pre = 0; pre < 2; pre++) {
                const double *v = cnn_reference_values(ref, l, pre);
                if (pre && !(Ly->type == CNN_LAYER_CONV || Ly->type == CNN_LAYER_DENSE ||
                             Ly->type == CNN_LAYER_DWCONV))
                    continue;
                double *lo = pre ? &r->pre_lo[l] : &r->lo[l], *hi = pre ? &r->pre_hi[l] : &r->hi[l];
                for (size_t i = 0; i < size; i++) {
                    if (v[i] < *lo)
                        *lo = v[i];
                    if (v[i] > *hi)
                        *hi = v[i];
                }
            }
        }
    }
    free(x), free(idx), free(labels);
    return 0;
}

cnn_qparams cnn_quant_params(double lo, double hi)
{
    if (!(lo <= hi)) /* no images: an empty range */
        lo = hi = 0;
    lo = lo < 0 ? lo : 0;
    hi = hi > 0 ? hi : 0;
    cnn_qparams q = {(hi - lo) / 255.0, -128};
    if (q.scale <= 0) {
        q.scale = 1;
        return q;
    }
    double z = -128 - lo / q.scale;
    q.zero = z < -128 ? -128 : z > 127 ? 127 : (int)lround(z);
    return q;
}

cnn_requant cnn_quant_multiplier(double real)
{
    cnn_requant r = {0, 31};
    if (!(real > 0))
        return r;
    int e;
    double m = frexp(real, &e); /* real = m * 2^e, m in [0.5, 1) */
    int64_t mult = llround(m * 2147483648.0);
    if (mult == 2147483648LL)
        mult /= 2, e++;
    int shift = 31 - e;
    if (shift > 62) /* below 2^-31: no int32 accumulator moves it */
        return r;
    if (shift < 1) { /* above 2^30: saturate (no layer needs it) */
        shift = 1;
        mult = INT32_MAX;
    }
    r.mult = (int32_t)mult;
    r.shift = shift;
    return r;
}

int32_t cnn_quant_apply(int32_t acc, cnn_requant r)
{
    /* floor(p / 2^shift + 1/2) in plain arithmetic: what the device computes with shifts. */
    int64_t p = (int64_t)acc * r.mult, d = (int64_t)1 << r.shift;
    int64_t q = (p + d / 2) / d;
    if ((p + d / 2) % d < 0) /* C's division truncates toward zero: floor for negatives */
        q--;
    return (int32_t)q;
}

static int8_t clamp8(double v)
{
    return (int8_t)(v < -128 ? -128 : v > 127 ? 127 : lround(v));
}

static int32_t clamp32(double v)
{
    return (int32_t)(v < -2147483647.0 ? -2147483647.0 : v > 2147483647.0 ? 2147483647.0 : llround(v));
}

/* Per-channel symmetric int8 weights: channel f of U, rows elements each at stride U in the
 * Keras layout, written to out[f][rows]; returns the channel's scale. */
static double quantize_channel(const float *w, long rows, int U, int f, int8_t *out)
{
    double most = 0;
    for (long i = 0; i < rows; i++)
        most = fmax(most, fabs(w[i * U + f]));
    double s = most > 0 ? most / 127.0 : 1.0;
    for (long i = 0; i < rows; i++)
        out[i] = clamp8(w[i * U + f] / s);
    return s;
}

/* The per-channel affine of a batchnorm (y = x * scale + shift) from in to out params. */
static int quantize_affine(const float *scale, const float *shift, int C, cnn_qparams in,
                           cnn_qparams out, int8_t **w, int32_t **b, cnn_requant **rq,
                           cnn_arena *a)
{
    *w = cnn_arena_alloc(a, (size_t)C);
    *b = cnn_arena_alloc(a, sizeof(int32_t) * (size_t)C);
    *rq = cnn_arena_alloc(a, sizeof(cnn_requant) * (size_t)C);
    if (!*w || !*b || !*rq)
        return -1;
    for (int c = 0; c < C; c++) {
        double s = quantize_channel(scale, 1, C, c, &(*w)[c]);
        (*b)[c] = clamp32(shift[c] / (in.scale * s));
        (*rq)[c] = cnn_quant_multiplier(in.scale * s / out.scale);
    }
    return 0;
}

static int layer_index(const cnn_ir *ir, const cnn_layer *L)
{
    return (int)(L - ir->layers);
}

int cnn_quant_act_is_table(cnn_act act)
{
    return act == CNN_ACT_LEAKY_RELU || act == CNN_ACT_SIGMOID || act == CNN_ACT_TANH;
}

/* The params of an op's values before and after its activation (pre, act), its table or its
 * clamp: from the ranges of layer l (its values before its own activation) or, where it took
 * an activation layer in, of range_of (its linear output) mapped through the activation. */
static void quantize_epilogue(cnn_quant_op *Q, const cnn_deploy_op *op,
                              const cnn_quant_ranges *r, int l, int range_of)
{
    Q->act = cnn_quant_params(r->lo[range_of], r->hi[range_of]);
    Q->table = cnn_quant_act_is_table(op->act);
    Q->pre = Q->table ? cnn_quant_params(r->pre_lo[l], r->pre_hi[l]) : Q->act;
    if (op->act_taken) {
        /* The values before the activation are range_of's; after it, the same values through
         * a non-decreasing function. */
        double lo = r->lo[range_of], hi = r->hi[range_of];
        Q->pre = cnn_quant_params(lo, hi);
        Q->act = cnn_quant_params(cnn_reference_activation(op->act, lo, op->alpha),
                                  cnn_reference_activation(op->act, hi, op->alpha));
        if (!Q->table)
            Q->pre = Q->act;
    }
    if (op->act == CNN_ACT_RELU)
        Q->lo = Q->act.zero;
    if (Q->table)
        for (int v = -128; v < 128; v++)
            Q->lut[v + 128] = clamp8(cnn_reference_activation(op->act, Q->pre.scale * (v - Q->pre.zero),
                                                              op->alpha) / Q->act.scale + Q->act.zero);
}

int cnn_quantize(cnn_quant *q, const cnn_deploy *dn, const cnn_quant_ranges *r, cnn_arena *a)
{
    const cnn_ir *ir = dn->ir;
    q->tensor = cnn_arena_alloc(a, sizeof *q->tensor * (size_t)dn->n_tensors);
    q->op = cnn_arena_alloc(a, sizeof *q->op * (size_t)dn->n_ops);
    if (!q->tensor || !q->op)
        return -1;
    /* The trainers feed byte / 255: exactly the int8 byte - 128 at scale 1/255. */
    q->tensor[0] = (cnn_qparams){1.0 / 255.0, -128};
    for (int i = 0; i < dn->n_ops; i++) {
        const cnn_deploy_op *op = &dn->ops[i];
        cnn_quant_op *Q = &q->op[i];
        const cnn_layer *L = op->L;
        int l = layer_index(ir, L);
        Q->in = q->tensor[op->in[0]];
        Q->lo = -128;
        if (op->kind == CNN_OP_POOL) {
            Q->act = Q->out = Q->in; /* max and mean keep the input's scale */
        } else if (op->kind == CNN_OP_ACTIVATION) {
            /* Every input value's output, looked up: exact to the output's rounding. */
            Q->pre = Q->in;
            Q->act = Q->out = cnn_quant_params(r->lo[l], r->hi[l]);
            Q->table = 1;
            for (int v = -128; v < 128; v++)
                Q->lut[v + 128] = clamp8(cnn_reference_activation(op->act, Q->in.scale * (v - Q->in.zero),
                                                                  op->alpha) / Q->out.scale + Q->out.zero);
        } else if (op->kind == CNN_OP_AFFINE) {
            Q->act = Q->out = cnn_quant_params(r->lo[l], r->hi[l]);
            if (quantize_affine(op->scale, op->shift, L->out.c, Q->in, Q->out, &Q->kernel,
                                &Q->bias, &Q->rq, a))
                return -1;
        } else if (op->kind == CNN_OP_CONCAT) {
            /* Each input's values at the output's scale: q = z + (q_k - z_k) * s_k / s. */
            Q->act = Q->out = cnn_quant_params(r->lo[l], r->hi[l]);
            for (int k = 0; k < op->n_in; k++) {
                Q->ins[k] = q->tensor[op->in[k]];
                Q->in_rq[k] = cnn_quant_multiplier(Q->ins[k].scale / Q->out.scale);
            }
        } else if (op->kind == CNN_OP_ADD) {
            /* TFLite's add: each input's q - z shifted left by CNN_QUANT_ADD_SHIFT bits, scaled
             * by s_k / (2 max s), the terms summed, and the sum requantized by
             * 2 max s / (2^CNN_QUANT_ADD_SHIFT s_pre). */
            double most = 0;
            for (int k = 0; k < op->n_in; k++) {
                Q->ins[k] = q->tensor[op->in[k]];
                most = fmax(most, Q->ins[k].scale);
            }
            for (int k = 0; k < op->n_in; k++)
                Q->in_rq[k] = cnn_quant_multiplier(Q->ins[k].scale / (2 * most));
            quantize_epilogue(Q, op, r, l, l);
            if (!(Q->rq = cnn_arena_alloc(a, sizeof(cnn_requant))))
                return -1;
            Q->rq[0] = cnn_quant_multiplier(2 * most / ((double)(1 << CNN_QUANT_ADD_SHIFT) *
                                                        Q->pre.scale));
            Q->out = Q->act;
        } else {
            int U = L->out.c;
            long rows = op->kernel_size / U;
            /* A folded batchnorm's output is what the op computes. */
            int range_of = l;
            for (int k = 0; k < op->n_layers; k++)
                if (op->folded && op->layers[k]->type == CNN_LAYER_BATCHNORM)
                    range_of = layer_index(ir, op->layers[k]);
            quantize_epilogue(Q, op, r, l, range_of);
            Q->kernel = cnn_arena_alloc(a, (size_t)op->kernel_size);
            Q->bias = cnn_arena_alloc(a, sizeof(int32_t) * (size_t)U);
            Q->rq = cnn_arena_alloc(a, sizeof(cnn_requant) * (size_t)U);
            Q->dequant = cnn_arena_alloc(a, sizeof(float) * (size_t)U);
            Q->bias_u8 = cnn_arena_alloc(a, sizeof(int32_t) * (size_t)U);
            if (!Q->kernel || !Q->bias || !Q->rq || !Q->dequant || !Q->bias_u8)
                return -1;
            for (int f = 0; f < U; f++) {
                double s = quantize_channel(op->kernel, rows, U, f, Q->kernel + (long)f * rows);
                Q->bias[f] = op->bias ? clamp32(op->bias[f] / (Q->in.scale * s)) : 0;
                int64_t sum = 0;
                for (long r = 0; r < rows; r++)
                    sum += Q->kernel[(long)f * rows + r];
                Q->bias_u8[f] = clamp32((double)(Q->bias[f] - (int64_t)(Q->in.zero + 128) * sum));
                Q->rq[f] = cnn_quant_multiplier(Q->in.scale * s / Q->pre.scale);
                Q->dequant[f] = (float)(Q->in.scale * s);
            }
            Q->out = Q->act;
            if (op->bn) {
                Q->out = cnn_quant_params(r->lo[layer_index(ir, op->bn)],
                                          r->hi[layer_index(ir, op->bn)]);
                if (quantize_affine(op->scale, op->shift, U, Q->act, Q->out, &Q->bn_w, &Q->bn_b,
                                    &Q->bn_rq, a))
                    return -1;
            }
        }
        q->tensor[op->out] = Q->out;
    }
    return 0;
}
