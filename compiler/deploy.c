/* The inference-mode network of `cnnc export` (deploy.h): fusing, folding, the arena plan. */
#include "deploy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "memplan.h"

/* The next layer after index l that computes something in inference (dropout is gone). */
static int next_live(const cnn_ir *ir, int l)
{
    while (l < ir->n_layers && ir->layers[l].type == CNN_LAYER_DROPOUT)
        l++;
    return l;
}

/* batchnorm in inference: y = gamma (x - mean) / sqrt(var + eps) + beta = x * scale + shift,
 * computed in double and rounded once, as the reference computes it in double. */
static int bn_affine(const cnn_layer *B, cnn_tensor *const *t, cnn_arena *a, double **scale,
                     double **shift)
{
    int C = B->out.c;
    *scale = cnn_arena_alloc(a, sizeof(double) * (size_t)C);
    *shift = cnn_arena_alloc(a, sizeof(double) * (size_t)C);
    if (!*scale || !*shift)
        return -1;
    const float *gamma = t[0]->value, *beta = t[1]->value, *mean = t[2]->value,
                *var = t[3]->value;
    for (int c = 0; c < C; c++) {
        double s = gamma[c] / sqrt((double)var[c] + B->eps);
        (*scale)[c] = s;
        (*shift)[c] = beta[c] - mean[c] * s;
    }
    return 0;
}

static float *to_floats(cnn_arena *a, const double *v, int n)
{
    float *f = cnn_arena_alloc(a, sizeof(float) * (size_t)n);
    if (f)
        for (int i = 0; i < n; i++)
            f[i] = (float)v[i];
    return f;
}

/* Whether layer l is an activation layer that the op can take in: the op has no activation
 * yet and nothing after it that the activation would have to come before. */
static const cnn_layer *takes_activation(const cnn_ir *ir, const cnn_deploy_op *op, int l)
{
    const cnn_layer *A = l < ir->n_layers ? &ir->layers[l] : NULL;
    if (!A || A->type != CNN_LAYER_ACTIVATION || op->act != CNN_ACT_LINEAR || op->bn)
        return NULL;
    return !op->pool || op->pool->pool == CNN_POOL_MAX ? A : NULL;
}

/* The op takes in the activation layer at or after l (past dropouts) where it can; returns
 * the layer to read next. */
static int take_activation(const cnn_ir *ir, cnn_deploy_op *op, int l)
{
    int next = next_live(ir, l);
    const cnn_layer *A = takes_activation(ir, op, next);
    if (!A)
        return l;
    op->act = A->act;
    op->alpha = A->alpha;
    op->act_taken = 1;
    if (op->n_layers < CNN_OP_MAX_LAYERS)
        op->layers[op->n_layers++] = A;
    return next + 1;
}

int cnn_deploy_build(cnn_deploy *dn, const cnn_ir *ir, const cnn_model *m, cnn_arena *a)
{
    memset(dn, 0, sizeof *dn);
    dn->ir = ir;
    dn->fingerprint = cnn_fingerprint(m);
    /* Each IR layer's first tensor in m's table. */
    int *first_tensor = cnn_arena_alloc(a, sizeof(int) * (size_t)(ir->n_layers + 1));
    dn->ops = cnn_arena_alloc(a, sizeof *dn->ops * (size_t)(ir->n_layers + 1));
    dn->tensors = cnn_arena_alloc(a, sizeof *dn->tensors * (size_t)(ir->n_layers + 2));
    if (!first_tensor || !dn->ops || !dn->tensors)
        return -1;
    for (int l = 0, k = 0; l < ir->n_layers; l++) {
        first_tensor[l] = k;
        k += ir->layers[l].n_params;
    }
    dn->tensors[0] = (cnn_deploy_tensor){.shape = ir->input, .elems = cnn_shape_size(ir->input),
                                         .first = -1, .last = -1};
    dn->n_tensors = 1;
    int cur = 0; /* the tensor the next op reads */
    for (int l = next_live(ir, 0); l < ir->n_layers; l = next_live(ir, l)) {
        const cnn_layer *L = &ir->layers[l];
        if (L->type == CNN_LAYER_FLATTEN) { /* the same bytes, read as a vector */
            l++;
            continue;
        }
        cnn_deploy_op *op = &dn->ops[dn->n_ops];
        memset(op, 0, sizeof *op);
        op->L = L;
        op->layers[op->n_layers++] = L;
        cnn_tensor *lt[CNN_MAX_LAYER_PARAMS];
        for (int p = 0; p < L->n_params; p++)
            lt[p] = &m->tensors[first_tensor[l] + p];
        l++;
        if (L->type == CNN_LAYER_ACTIVATION) {
            op->kind = CNN_OP_ACTIVATION;
            op->act = L->act;
            op->alpha = L->alpha;
        } else if (L->type == CNN_LAYER_CONV || L->type == CNN_LAYER_DENSE) {
            int U = L->out.c;
            op->act = L->act;
            op->alpha = L->alpha;
            op->kind = L->type == CNN_LAYER_CONV ? CNN_OP_CONV : CNN_OP_DENSE;
            op->kernel_size = lt[0]->size;
            op->has_bias = L->use_bias;
            const float *bias = L->use_bias ? lt[1]->value : NULL;
            int b = next_live(ir, l);
            const cnn_layer *B = b < ir->n_layers && ir->layers[b].type == CNN_LAYER_BATCHNORM
                                     ? &ir->layers[b] : NULL;
            if (B) {
                cnn_tensor *bt[CNN_MAX_LAYER_PARAMS];
                for (int p = 0; p < B->n_params; p++)
                    bt[p] = &m->tensors[first_tensor[b] + p];
                double *scale, *shift;
                if (bn_affine(B, bt, a, &scale, &shift))
                    return -1;
                for (int i = l; i <= b; i++)
                    if (op->n_layers < CNN_OP_MAX_LAYERS)
                        op->layers[op->n_layers++] = &ir->layers[i];
                l = b + 1;
                if (L->act == CNN_ACT_LINEAR) {
                    /* Exact in real arithmetic: batchnorm of a linear map is a linear map. */
                    float *k = cnn_arena_alloc(a, sizeof(float) * (size_t)op->kernel_size);
                    float *bb = cnn_arena_alloc(a, sizeof(float) * (size_t)U);
                    if (!k || !bb)
                        return -1;
                    for (long i = 0; i < op->kernel_size; i++)
                        k[i] = (float)(lt[0]->value[i] * scale[i % U]);
                    for (int f = 0; f < U; f++)
                        bb[f] = (float)(((bias ? bias[f] : 0.0) * scale[f]) + shift[f]);
                    op->kernel = k;
                    op->bias = bb;
                    op->has_bias = 1;
                    op->folded = 1;
                } else {
                    op->bn = B;
                    if (!(op->scale = to_floats(a, scale, U)) ||
                        !(op->shift = to_floats(a, shift, U)))
                        return -1;
                }
            }
            if (!op->kernel) {
                op->kernel = lt[0]->value;
                op->bias = bias;
            }
            l = take_activation(ir, op, l);
            op->conv_out = L->out;
            int p = next_live(ir, l);
            const cnn_layer *P = p < ir->n_layers && ir->layers[p].type == CNN_LAYER_POOL
                                     ? &ir->layers[p] : NULL;
            /* Fused only where the windows tile: an overlapping pool would compute the
             * convolution of the shared pixels twice. */
            if (op->kind == CNN_OP_CONV && P && P->sh >= P->kh && P->sw >= P->kw) {
                op->pool = P;
                for (int i = l; i <= p; i++)
                    if (op->n_layers < CNN_OP_MAX_LAYERS)
                        op->layers[op->n_layers++] = &ir->layers[i];
                l = p + 1;
                /* max(act(v)) = act(max(v)) for a non-decreasing act: taken before the pool. */
                l = take_activation(ir, op, l);
            }
        } else if (L->type == CNN_LAYER_POOL || L->type == CNN_LAYER_GAP) {
            op->kind = CNN_OP_POOL; /* gap: a pool whose window is the image */
        } else if (L->type == CNN_LAYER_BATCHNORM) {
            double *scale, *shift;
            op->kind = CNN_OP_AFFINE;
            if (bn_affine(L, lt, a, &scale, &shift) || !(op->scale = to_floats(a, scale, L->out.c)) ||
                !(op->shift = to_floats(a, shift, L->out.c)))
                return -1;
        }
        op->in = cur;
        op->out = dn->n_tensors;
        dn->tensors[cur].last = dn->n_ops;
        cnn_shape out = op->pool ? op->pool->out : L->out; /* batchnorm keeps the shape */
        dn->tensors[dn->n_tensors++] = (cnn_deploy_tensor){
            .shape = out, .elems = cnn_shape_size(out), .first = dn->n_ops, .last = dn->n_ops};
        cur = op->out;
        dn->n_ops++;
    }
    dn->tensors[cur].external = 1; /* the last dense's softmax: the caller's probabilities */
    for (int i = 0; i < dn->n_ops; i++) {
        const cnn_deploy_op *op = &dn->ops[i];
        dn->weights += op->kernel_size + (op->has_bias ? op->L->out.c : 0) +
                       (op->scale ? 2L * op->L->out.c : 0);
    }
    return 0;
}

int64_t cnn_deploy_plan(cnn_deploy *dn, int elem_bytes)
{
    cnn_plan_tensor *t = malloc(sizeof *t * (size_t)dn->n_tensors);
    if (!t)
        return -1;
    int n = 0;
    for (int i = 0; i < dn->n_tensors; i++) {
        const cnn_deploy_tensor *x = &dn->tensors[i];
        if (x->external)
            continue;
        /* The input is written before the first op: alive from step 0 as its reader is. */
        t[n++] = (cnn_plan_tensor){x->elems * elem_bytes, x->first < 0 ? 0 : x->first, x->last, 0};
    }
    int64_t size = cnn_plan_arena(t, n, 16);
    for (int i = 0, j = 0; i < dn->n_tensors; i++)
        if (!dn->tensors[i].external)
            dn->tensors[i].offset = t[j++].offset;
    free(t);
    return size;
}
