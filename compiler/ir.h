/* The typed IR of a network: layers with inferred shapes, parameter tensors and FLOP counts.
 * The summary, the interpreted reference and the code generator all read this one structure. */
#ifndef CNN_IR_H
#define CNN_IR_H

#include <stdint.h>

#include "arena.h"
#include "ast.h"
#include "cnnrt.h"
#include "diag.h"

typedef enum {
    CNN_LAYER_CONV,
    CNN_LAYER_POOL,
    CNN_LAYER_DROPOUT,
    CNN_LAYER_BATCHNORM,
    CNN_LAYER_FLATTEN,
    CNN_LAYER_DENSE,
    CNN_LAYER_ACTIVATION,
    CNN_LAYER_ADD,
    CNN_LAYER_CONCAT,
    CNN_LAYER_GAP,
    CNN_LAYER_DWCONV
} cnn_layer_type;

typedef enum {
    CNN_ACT_LINEAR,
    CNN_ACT_RELU,
    CNN_ACT_LEAKY_RELU,
    CNN_ACT_SIGMOID,
    CNN_ACT_TANH,
    CNN_ACT_SOFTMAX
} cnn_act;

typedef enum { CNN_POOL_MAX, CNN_POOL_AVG } cnn_pool_kind;

/* rank 3: h x w x c (channels last); rank 1: c features, h = w = 1. */
typedef struct cnn_shape {
    int rank, h, w, c;
} cnn_shape;

/* Elements per image. Every shape the IR accepts has at most CNN_MAX_ELEMS of them (sizes.c). */
static inline int64_t cnn_shape_size(cnn_shape s)
{
    return (int64_t)s.h * s.w * s.c;
}
/* "(None, 26, 26, 32)" as Keras prints it. */
void cnn_shape_keras(cnn_shape s, char *buf, size_t cap);
/* "26x26x32" or "576". */
void cnn_shape_text(cnn_shape s, char *buf, size_t cap);

#define CNN_MAX_LAYER_PARAMS 4
/* The most tensors one layer reads (add, concat). */
#define CNN_MAX_INPUTS 8

typedef struct cnn_param {
    const char *suffix; /* "kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance" */
    int rank;
    int dims[4];
    long size;
    cnn_init_kind init;
    int fan_in, fan_out;
    int trainable;
    float l1, l2;
} cnn_param;

typedef struct cnn_layer {
    cnn_layer_type type;
    const struct cnn_layer_desc *desc;
    char name[48];         /* Keras-style instance name: conv2d_1 */
    const char *type_name; /* Keras class: Conv2D */
    const char *name_prefix; /* Keras instance name prefix: conv2d */
    cnn_loc loc;           /* of the statement's first word */
    cnn_loc size_loc;      /* of the kernel or window size argument */
    cnn_loc act_loc;       /* of the activation name, if given */
    cnn_shape in, out;     /* in: the first input's shape */
    const char *in_from;   /* what makes the first input: a layer's name, or "input" */
    cnn_loc in_loc;        /* and its statement, for notes */
    /* What the layer reads, in order: the previous statement's output unless `from NAME`
     * says otherwise, then the tensors an add or concat names. Indices into the IR's layers,
     * always earlier ones (the graph is in topological order by construction); -1 is the
     * network's input. */
    int n_inputs;
    int inputs[CNN_MAX_INPUTS];
    cnn_shape ins[CNN_MAX_INPUTS];
    const char *in_names[CNN_MAX_INPUTS]; /* as in_from, per input */
    cnn_loc in_locs[CNN_MAX_INPUTS];      /* as in_loc, per input */
    cnn_loc ref_locs[CNN_MAX_INPUTS];     /* where the statement names each input (or its
                                             first word, for the previous statement's) */
    const char *label;     /* the name given in `NAME = ...`, or NULL */
    cnn_loc label_loc;
    int n_readers;         /* inputs of later layers that are this layer's output */
    int learns;            /* it or a layer before it on a path to it has trainable
                              parameters: a gradient must reach its output (with a loss) */

    int units;          /* conv filters, dense units; dwconv: channels times multiplier */
    int multiplier;     /* dwconv: output channels per input channel */
    int kh, kw, sh, sw; /* conv kernel or pool window, and strides */
    int pad_same;
    int pad_top, pad_left; /* zero rows/columns added before the input (pad=same) */
    int use_bias;
    cnn_init_kind init;
    float l1, l2;
    cnn_act act;
    float alpha;        /* leaky_relu slope */
    cnn_pool_kind pool; /* pool */
    float rate;         /* dropout */
    float momentum, eps; /* batchnorm */

    int n_params;
    cnn_param params[CNN_MAX_LAYER_PARAMS];
    long weights, trainable; /* parameter counts */
    double flops;            /* forward, one image: 2 per multiply-add */
} cnn_layer;

typedef struct cnn_ir {
    const char *name;        /* network name: a C identifier */
    const char *source_name; /* the .net file */
    cnn_shape input;
    cnn_loc input_loc; /* the input statement */
    int n_layers;
    cnn_layer *layers;     /* in topological order; the last one's output is the network's */
    int is_chain;          /* every layer reads only the one before it (the first: the input) */
    cnn_train_cfg train;
    int n_classes;
    long total_params, trainable_params;
    int64_t static_bytes;  /* the generated trainer's static buffers at static_batch (sizes.c) */
    int static_batch;
    double forward_flops; /* one image */
    double train_flops;   /* one image: forward, backward to inputs and to weights */
} cnn_ir;

/* What the size checks assume (sizes.h): the batch the code is compiled for (0: the file's
 * `train { batch }`), and the limit on the generated trainer's static memory (0: 2 GiB). */
typedef struct cnn_front_opts {
    int batch;
    int64_t max_memory;
} cnn_front_opts;

/* Builds the IR from a parsed file: every semantic, shape and size check happens here.
 * opts may be NULL (the defaults). */
int cnn_ir_build(const cnn_ast *ast, const cnn_source *src, cnn_arena *arena,
                 const cnn_front_opts *opts, cnn_ir *ir, cnn_diag *d);

/* Whether layer l is the softmax output of a classifier, whose backward begins with the
 * cross-entropy's gradient of its logits (the code generator and the size checks both follow
 * this rule; under loss mse the last layer is like any other, its output's gradient the
 * loss's). */
int cnn_softmax_output(const cnn_ir *ir, int l);
/* Whether a gradient flows back into input k of L: the network has a loss and the input is a
 * layer's output that learns (never the network's input). The code generator and the size
 * checks both follow this rule. */
int cnn_grad_into(const cnn_ir *ir, const cnn_layer *L, int k);
/* Whether that gradient needs a buffer of its own: the tensor has other readers, whose
 * gradients are added to it (the generated code sums them before its producer's backward). */
int cnn_grad_edge_own(const cnn_ir *ir, const cnn_layer *L, int k);

const char *cnn_act_name(cnn_act a);
/* Parses a file from disk into ir; on error prints the diagnostic to err and returns -1. */
int cnn_front_load(const char *path, cnn_arena *arena, const cnn_front_opts *opts, cnn_ir *ir,
                   cnn_source *src, FILE *err);
/* The same from a source already in memory (cnnc import's .net text). */
int cnn_front_build(const cnn_source *src, cnn_arena *arena, const cnn_front_opts *opts,
                    cnn_ir *ir, FILE *err);

#endif
