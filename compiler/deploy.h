/* The inference-mode network that `cnnc export` writes: the IR's layers (a chain or any graph)
 * as operations on tensors, with trained weights, dropout gone, batchnorm folded into the
 * convolution or dense layer before it where that is exact (a linear one) or applied per
 * channel after its activation, and a pool fused into the convolution before it where their
 * windows do not overlap; a layer is taken into the op before it only where it is that op's
 * value's one reader. Layers whose output never reaches the network's are left out. Tensors
 * live in one arena planned from their lifetimes (memplan.h). */
#ifndef CNN_DEPLOY_H
#define CNN_DEPLOY_H

#include "arena.h"
#include "cnnrt.h"
#include "ir.h"

typedef enum {
    CNN_OP_CONV,  /* conv or dwconv, with its epilogue (activation, channel affine; conv: a
                     fused pool) */
    CNN_OP_DENSE, /* dense, with its epilogue (activation, channel affine) */
    CNN_OP_POOL,  /* a pool on its own */
    CNN_OP_AFFINE, /* a batchnorm on its own: x * scale[c] + shift[c] */
    CNN_OP_ACTIVATION, /* an activation layer no other op took in: act(x) */
    CNN_OP_ADD,   /* the sum of its inputs, with an activation taken in */
    CNN_OP_CONCAT /* its inputs joined along the channels */
} cnn_op_kind;

#define CNN_OP_MAX_LAYERS 8

typedef struct cnn_deploy_op {
    cnn_op_kind kind;
    const cnn_layer *L;    /* the layer the op computes (its first) */
    const cnn_layer *pool; /* conv: a pool applied to its output before it is stored */
    const cnn_layer *bn;   /* conv, dense: a batchnorm applied after the activation */
    int folded;            /* L's kernel and bias include a batchnorm (the layer is linear) */
    int n_layers;          /* the IR layers this op stands for, in order (for comments) */
    const cnn_layer *layers[CNN_OP_MAX_LAYERS];
    int n_in;              /* tensors read: L's inputs (add, concat: several) */
    int in[CNN_MAX_INPUTS], out; /* tensor indices */
    cnn_shape conv_out;    /* conv: its output before the fused pool */
    /* conv, dense, add: the activation applied to each value: the layer's own, or an
     * activation layer's taken in where the layer has none (after its folded batchnorm or a max pool:
     * max commutes with a non-decreasing function, so it is applied before the pool). */
    cnn_act act;
    float alpha;
    int act_taken;
    /* conv, dense: kernel in Keras' layout ([kh][kw][in][out] or [in][out]), bias (out;
     * zeros when the layer has none and nothing was folded in: has_bias says which). */
    const float *kernel, *bias;
    int has_bias;
    /* conv and dense with bn, and affine ops: per channel, y = x * scale + shift. */
    const float *scale, *shift;
    long kernel_size;
} cnn_deploy_op;

typedef struct cnn_deploy_tensor {
    cnn_shape shape;
    int64_t elems;
    int first, last; /* the ops that write it and read it last (input: -1 .. its reader) */
    int64_t offset;  /* bytes into the arena (memplan) */
    int external;    /* the network's output: the caller's probabilities, not in the arena */
} cnn_deploy_tensor;

typedef struct cnn_deploy {
    const cnn_ir *ir;
    int n_ops;
    cnn_deploy_op *ops;
    int n_tensors;
    cnn_deploy_tensor *tensors; /* [0] is the input */
    uint64_t fingerprint;
    long weights;               /* values stored (after folding) */
} cnn_deploy;

/* Builds the deploy network of ir from the values of m's tensors (a model of ir, its table in
 * ir's order: cnn_reference_new, then a checkpoint loaded into it). Everything is allocated
 * from arena. -1 when out of memory. */
int cnn_deploy_build(cnn_deploy *dn, const cnn_ir *ir, const cnn_model *m, cnn_arena *arena);

/* Lays the tensors out in one arena, elem_bytes per element (4: float, 1: int8), each at a
 * multiple of 16 bytes: sets their offsets, returns the arena's bytes (-1 when out of
 * memory). The external output is not in it. */
int64_t cnn_deploy_plan(cnn_deploy *dn, int elem_bytes);

#endif
