/* The inference-mode network of `cnnc export` (deploy.h): fusing, folding, the arena plan. */
#include "deploy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "memplan.h"

/* What the deploy network makes of each IR layer: dropout and flatten compute nothing in
 * inference (their output is their input's bytes), and a layer none of whose readers leads to
 * the network's output computes nothing anyone reads. */
typedef struct deploy_graph {
    const cnn_ir *ir;
    int *value; /* [n_layers]: the layer whose bytes layer l's output is (itself, or for an
                   alias the value of its input; -1: the network's input) */
    int *live;  /* [n_layers]: its output reaches the network's */
    int *readers; /* [n_layers]: live computing layers reading the value, counted per input,
                     plus one for the network's output */
    int *done;  /* [n_layers]: part of an op already */
    int *tensor; /* [n_layers]: the deploy tensor holding the value, once an op wrote it */
} deploy_graph;

static int is_alias(const cnn_layer *L)
{
    return L->type == CNN_LAYER_DROPOUT || L->type == CNN_LAYER_FLATTEN;
}

static int value_of(const deploy_graph *g, int input)
{
    return input < 0 ? -1 : g->value[input];
}

/* The one live computing layer that reads layer v's value, where it is the only reader, it
 * reads nothing else, and the value is not the network's output; else -1. An op takes such a
 * layer in: nothing else needs the value it would store. */
static int sole_reader(const deploy_graph *g, int v)
{
    if (g->readers[v] != 1)
        return -1;
    for (int r = v + 1; r < g->ir->n_layers; r++) {
        const cnn_layer *R = &g->ir->layers[r];
        if (!g->live[r] || is_alias(R) || value_of(g, R->inputs[0]) != v)
            continue;
        /* Through dropouts only: past a flatten the channels are not the layer's. */
        for (int a = R->inputs[0]; a != v; a = g->ir->layers[a].inputs[0])
            if (g->ir->layers[a].type == CNN_LAYER_FLATTEN)
                return -1;
        return R->n_inputs == 1 ? r : -1;
    }
    return -1;
}

/* Appends layer r to op's layers (for the comments), after the dropouts between it and the
 * value it reads, and marks it taken. */
static void take(deploy_graph *g, cnn_deploy_op *op, int r)
{
    const cnn_layer *R = &g->ir->layers[r];
    int between[CNN_OP_MAX_LAYERS], n = 0;
    for (int a = R->inputs[0]; a >= 0 && is_alias(&g->ir->layers[a]) && n < CNN_OP_MAX_LAYERS;
         a = g->ir->layers[a].inputs[0])
        if (g->ir->layers[a].type == CNN_LAYER_DROPOUT)
            between[n++] = a;
    while (n > 0 && op->n_layers < CNN_OP_MAX_LAYERS)
        op->layers[op->n_layers++] = &g->ir->layers[between[--n]];
    if (op->n_layers < CNN_OP_MAX_LAYERS)
        op->layers[op->n_layers++] = R;
    g->done[r] = 1;
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

/* The op takes in the activation layer that is the sole reader of its value, where it can: the
 * op has no activation yet and nothing after it that the activation would have to come before
 * (max commutes with a non-decreasing function, so one is applied before a max pool). */
static void take_activation(deploy_graph *g, cnn_deploy_op *op, int *v)
{
    int r = sole_reader(g, *v);
    const cnn_layer *A = r >= 0 ? &g->ir->layers[r] : NULL;
    if (!A || A->type != CNN_LAYER_ACTIVATION || op->act != CNN_ACT_LINEAR || op->bn ||
        (op->pool && op->pool->pool != CNN_POOL_MAX))
        return;
    op->act = A->act;
    op->alpha = A->alpha;
    op->act_taken = 1;
    take(g, op, r);
    *v = r;
}

/* The tensors of m (ir's model) of layer l. */
static void layer_tensors(const cnn_model *m, const int *first_tensor, const cnn_layer *L, int l,
                          cnn_tensor **t)
{
    for (int p = 0; p < L->n_params; p++)
        t[p] = &m->tensors[first_tensor[l] + p];
}

/* A conv, dwconv or dense op from layer l: a batchnorm after it folded in or applied per
 * channel, an activation taken in, and for a conv a pool whose windows tile. Returns the
 * layer whose value the op stores; -1 when out of memory. */
static int build_weighted(deploy_graph *g, cnn_deploy_op *op, const cnn_model *m,
                          const int *first_tensor, int l, cnn_arena *a)
{
    const cnn_ir *ir = g->ir;
    const cnn_layer *L = &ir->layers[l];
    cnn_tensor *lt[CNN_MAX_LAYER_PARAMS];
    layer_tensors(m, first_tensor, L, l, lt);
    int U = L->out.c, v = l;
    op->act = L->act;
    op->alpha = L->alpha;
    op->kind = L->type == CNN_LAYER_DENSE ? CNN_OP_DENSE : CNN_OP_CONV;
    op->kernel_size = lt[0]->size;
    op->has_bias = L->use_bias;
    const float *bias = L->use_bias ? lt[1]->value : NULL;
    int b = sole_reader(g, v);
    if (b >= 0 && ir->layers[b].type == CNN_LAYER_BATCHNORM) {
        const cnn_layer *B = &ir->layers[b];
        cnn_tensor *bt[CNN_MAX_LAYER_PARAMS];
        layer_tensors(m, first_tensor, B, b, bt);
        double *scale, *shift;
        if (bn_affine(B, bt, a, &scale, &shift))
            return -1;
        take(g, op, b);
        v = b;
        if (L->act == CNN_ACT_LINEAR) {
            /* Exact in real arithmetic: batchnorm of a linear map is a linear map. The kernel's
             * last axis is the output channel for conv, dwconv ([kh][kw][in][multiplier]) and
             * dense alike. */
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
            if (!(op->scale = to_floats(a, scale, U)) || !(op->shift = to_floats(a, shift, U)))
                return -1;
        }
    }
    if (!op->kernel) {
        op->kernel = lt[0]->value;
        op->bias = bias;
    }
    take_activation(g, op, &v);
    op->conv_out = L->out;
    int p = sole_reader(g, v);
    const cnn_layer *P = p >= 0 && ir->layers[p].type == CNN_LAYER_POOL ? &ir->layers[p] : NULL;
    /* Fused only where the windows tile: an overlapping pool would compute the convolution of
     * the shared pixels twice. */
    if (L->type == CNN_LAYER_CONV && P && !P->pad_same && P->sh >= P->kh && P->sw >= P->kw) {
        op->pool = P;
        take(g, op, p);
        v = p;
        take_activation(g, op, &v);
    }
    return v;
}

int cnn_deploy_build(cnn_deploy *dn, const cnn_ir *ir, const cnn_model *m, cnn_arena *a)
{
    memset(dn, 0, sizeof *dn);
    dn->ir = ir;
    dn->fingerprint = cnn_fingerprint(m);
    int NL = ir->n_layers;
    deploy_graph g = {ir, NULL, NULL, NULL, NULL, NULL};
    int *first_tensor = cnn_arena_alloc(a, sizeof(int) * (size_t)NL);
    int *ints = cnn_arena_alloc(a, sizeof(int) * 5 * (size_t)NL);
    dn->ops = cnn_arena_alloc(a, sizeof *dn->ops * (size_t)(NL + 1));
    dn->tensors = cnn_arena_alloc(a, sizeof *dn->tensors * (size_t)(NL + 2));
    if (!first_tensor || !ints || !dn->ops || !dn->tensors)
        return -1;
    memset(ints, 0, sizeof(int) * 5 * (size_t)NL);
    g.value = ints, g.live = ints + NL, g.readers = ints + 2 * NL, g.done = ints + 3 * NL;
    g.tensor = ints + 4 * NL;
    for (int l = 0, k = 0; l < NL; l++) {
        const cnn_layer *L = &ir->layers[l];
        first_tensor[l] = k;
        k += L->n_params;
        g.value[l] = is_alias(L) ? value_of(&g, L->inputs[0]) : l;
    }
    g.live[NL - 1] = 1;
    for (int l = NL - 1; l >= 0; l--)
        for (int k = 0; g.live[l] && k < ir->layers[l].n_inputs; k++)
            if (ir->layers[l].inputs[k] >= 0)
                g.live[ir->layers[l].inputs[k]] = 1;
    for (int l = 0; l < NL; l++)
        for (int k = 0; g.live[l] && !is_alias(&ir->layers[l]) && k < ir->layers[l].n_inputs; k++)
            if (value_of(&g, ir->layers[l].inputs[k]) >= 0)
                g.readers[value_of(&g, ir->layers[l].inputs[k])]++;
    int output = g.value[NL - 1]; /* -1 for a network that only reshapes its input */
    if (output >= 0)
        g.readers[output]++;

    dn->tensors[0] = (cnn_deploy_tensor){.shape = ir->input, .elems = cnn_shape_size(ir->input),
                                         .first = -1, .last = -1};
    dn->n_tensors = 1;
    for (int l = 0; l < NL; l++) {
        const cnn_layer *L = &ir->layers[l];
        if (!g.live[l] || g.done[l] || is_alias(L))
            continue;
        cnn_deploy_op *op = &dn->ops[dn->n_ops];
        memset(op, 0, sizeof *op);
        op->L = L;
        op->layers[op->n_layers++] = L;
        g.done[l] = 1;
        op->n_in = L->n_inputs;
        for (int k = 0; k < L->n_inputs; k++) {
            int v = value_of(&g, L->inputs[k]);
            op->in[k] = v < 0 ? 0 : g.tensor[v];
            dn->tensors[op->in[k]].last = dn->n_ops;
        }
        cnn_tensor *lt[CNN_MAX_LAYER_PARAMS];
        layer_tensors(m, first_tensor, L, l, lt);
        int v = l; /* the layer whose value the op stores */
        switch (L->type) {
        case CNN_LAYER_ACTIVATION:
            op->kind = CNN_OP_ACTIVATION;
            op->act = L->act;
            op->alpha = L->alpha;
            break;
        case CNN_LAYER_CONV:
        case CNN_LAYER_DWCONV:
        case CNN_LAYER_DENSE:
            if ((v = build_weighted(&g, op, m, first_tensor, l, a)) < 0)
                return -1;
            break;
        case CNN_LAYER_POOL:
        case CNN_LAYER_GAP:
            op->kind = CNN_OP_POOL; /* gap: a pool whose window is the image */
            break;
        case CNN_LAYER_BATCHNORM: {
            double *scale, *shift;
            op->kind = CNN_OP_AFFINE;
            if (bn_affine(L, lt, a, &scale, &shift) ||
                !(op->scale = to_floats(a, scale, L->out.c)) ||
                !(op->shift = to_floats(a, shift, L->out.c)))
                return -1;
            break;
        }
        case CNN_LAYER_ADD:
            op->kind = CNN_OP_ADD;
            take_activation(&g, op, &v);
            break;
        case CNN_LAYER_CONCAT:
            op->kind = CNN_OP_CONCAT;
            break;
        case CNN_LAYER_DROPOUT:
        case CNN_LAYER_FLATTEN:
            break; /* aliases: never here */
        }
        op->out = dn->n_tensors;
        g.tensor[v] = op->out;
        cnn_shape out = ir->layers[v].out;
        dn->tensors[dn->n_tensors++] = (cnn_deploy_tensor){
            .shape = out, .elems = cnn_shape_size(out), .first = dn->n_ops, .last = dn->n_ops};
        dn->n_ops++;
    }
    /* The network's output: the caller's buffer (the last dense's softmax for a classifier). */
    dn->tensors[output < 0 ? 0 : g.tensor[output]].external = 1;
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
