/* Layer descriptors: one per layer kind, each in its own layer_*.c file.
 * Adding a layer kind means one new descriptor file, one line in layers.c, and its tests. */
#ifndef CNN_LAYERS_H
#define CNN_LAYERS_H

#include "codegen.h"
#include "ir.h"
#include "options.h"
#include "sizes.h"

/* What a layer's generated functions take beyond the buffers and the images' range. */
enum {
    GEN_FWD_TRAINING = 1, /* forward: int training */
    GEN_FWD_RNG = 2,      /* forward: cnn_rng *rng (dropout) */
    GEN_GRAD_IN = 4,      /* grads: const float *in (dense: the kernel's gradient) */
    GEN_BWD_OUT = 8,      /* backward: const float *out (the activation's derivative) */
    GEN_ALIAS = 16,       /* no code: the output is the input buffer (flatten) */
    GEN_SERIAL = 32,      /* forward and backward see the whole batch at once, in one thread
                             (dropout: one random sequence; batch statistics have their own
                             hooks below) */
    GEN_BWD_IN = 64,      /* backward: const float *in (a direct conv's kernel gradient) */
    GEN_KERNEL_T = 128,   /* backward reads NAME_kernel_t, the [rows][units] kernel transposed
                             at the start of each backward pass */
    GEN_MULTI = 256,      /* it reads several tensors: its functions take only the images'
                             range (b0, n) and use the buffers' global names (g->ins, g->dins,
                             g->out, g->dout) */
    GEN_KERNEL_FLIP = 512 /* with GEN_KERNEL_T: NAME_kernel_t is the conv kernel turned 180
                             degrees with its channels swapped, [kh][kw][units][in] (the
                             kernel of the convolution that gives the input's gradient) */
};

typedef struct cnn_layer_desc {
    const char *keyword;        /* the statement that makes this layer: "conv" */
    cnn_layer_type type;
    const char *keras_name;     /* instance name prefix: "conv2d" */
    const char *keras_type;     /* class name in summaries: "Conv2D" */
    const char *usage;          /* shown when required arguments are missing */
    const char *const *options; /* the key=value options it accepts, NULL-terminated */
    int max_positional;
    int max_inputs;             /* tensors it reads (add, concat: several); 0 means 1 */
    /* Reads the statement's arguments into L (L->in is already known). NULL: it takes none
     * (its inputs, for add and concat, are read before: ir.c). */
    int (*parse)(cnn_layer *L, const cnn_stmt *s, const cnn_args *args, cnn_diag *d);
    /* Checks L->in, then sets L->out, the parameter tensors and the forward FLOPs. */
    int (*infer)(cnn_layer *L, cnn_diag *d);

    /* Code generation. The flags say which arguments the generated functions take.
     * The batch is split between threads: NAME_forward and NAME_backward see n images
     * starting at image b0, with out, in, dout and din already pointing at image b0 (a
     * layer's own per-image buffers it offsets itself); GEN_SERIAL layers get the whole
     * batch. NAME_grads then adds the parameters' gradients over the whole batch, each of
     * `parts` threads one share of the rows (`part`); it reads dout after backward. */
    int (*gen_flags)(const cnn_layer *L);
    /* Static buffers the layer needs besides its output and gradient (may be NULL). */
    void (*emit_buffers)(cnn_emitter *e, const cnn_gen_layer *g);
    /* Bodies of NAME_forward, NAME_backward (may emit nothing) and NAME_grads (NULL when
     * the layer has no trainable parameters or computes their gradients in backward). */
    void (*emit_forward)(cnn_emitter *e, const cnn_gen_layer *g);
    void (*emit_backward)(cnn_emitter *e, const cnn_gen_layer *g);
    void (*emit_grads)(cnn_emitter *e, const cnn_gen_layer *g);
    /* For layers that need batch statistics (may be NULL): bodies of NAME_forward_stats and
     * NAME_backward_stats, which see the same images as NAME_forward and NAME_backward and
     * run just before them, a barrier between, so that these find every image's share. */
    void (*emit_forward_stats)(cnn_emitter *e, const cnn_gen_layer *g);
    void (*emit_backward_stats)(cnn_emitter *e, const cnn_gen_layer *g);
    /* Floats of per-image buffers the layer works through besides its input and output (conv:
     * its im2col rows), for sizing the chunks of images that keep a pass in cache. May be
     * NULL: none. */
    long (*scratch_per_image)(const cnn_layer *L);
    /* The static buffers emit_buffers declares, for the size checks and the memory figure
     * (sizes.c); returns how many it wrote to out (at most CNN_MAX_LAYER_BUFFERS). grad_in: a
     * gradient flows into the layer's input (cnn_gen_layer's din); backward: the network has
     * a backward pass (cnn_gen_layer's backward). May be NULL: none. */
    int (*buffers)(const cnn_layer *L, int grad_in, int is_last, int backward, cnn_buffer *out);
} cnn_layer_desc;

extern const cnn_layer_desc cnn_layer_conv, cnn_layer_pool, cnn_layer_dropout,
    cnn_layer_batchnorm, cnn_layer_flatten, cnn_layer_dense, cnn_layer_activation,
    cnn_layer_add, cnn_layer_concat, cnn_layer_gap, cnn_layer_dwconv;

/* The one list of layer keywords, for the registry's lists and the statements' (ir.c). */
#define CNN_LAYER_KEYWORDS                                                                 \
    "conv", "pool", "dropout", "batchnorm", "flatten", "dense", "activation", "add", "concat", \
        "gap", "dwconv"

/* The descriptor for a statement keyword, or NULL. */
const cnn_layer_desc *cnn_layer_find(const char *keyword);
/* The descriptor of a layer kind (never NULL for a kind the IR has). */
const cnn_layer_desc *cnn_layer_of_type(cnn_layer_type type);
/* Every layer keyword, NULL-terminated, for "did you mean". */
extern const char *const cnn_layer_keywords[];

/* After an error about a layer's input: a note at the statement that made that input. */
void cnn_note_input(const cnn_layer *L, cnn_diag *d);

/* Pooling's code generation, shared by pool and gap (an average pool over the whole image):
 * they read L's pool, kh, kw, sh and sw. */
int cnn_pool_gen_flags(const cnn_layer *L);
int cnn_pool_buffers(const cnn_layer *L, int grad_in, int is_last, int backward, cnn_buffer *b);
void cnn_pool_emit_buffers(cnn_emitter *e, const cnn_gen_layer *g);
void cnn_pool_emit_forward(cnn_emitter *e, const cnn_gen_layer *g);
void cnn_pool_emit_backward(cnn_emitter *e, const cnn_gen_layer *g);

/* Conv's options, shared with dwconv, whose option list starts with conv's seven in order:
 * stride=, pad=, l1=, l2=, init=, bias=, alpha=, and the activation word act (may be NULL). */
int cnn_parse_conv_options(cnn_layer *L, const cnn_args *a, const cnn_arg *act, cnn_diag *d);
/* A windowed layer's output height and width (L->out, channels 0) and padding from L's kernel,
 * strides and padding, with the error (at the kernel, a note at the input) where its input is
 * not an image or the kernel does not fit. */
int cnn_conv_window(cnn_layer *L, cnn_diag *d);
/* Output size along one axis and the zero padding before it, as TensorFlow defines them. */
int cnn_conv_out_size(int in, int k, int stride, int same, int *pad_before);

/* Helpers shared by the descriptors of weighted layers (conv, dense). */
/* Activation from an optional positional word, plus the `alpha` option. */
int cnn_parse_activation(cnn_layer *L, const cnn_arg *word, const cnn_arg *alpha, cnn_diag *d);
/* The l1=, l2=, init=, bias= options. */
int cnn_parse_weight_options(cnn_layer *L, const cnn_arg *l1, const cnn_arg *l2,
                             const cnn_arg *init, const cnn_arg *bias, cnn_diag *d);
/* Appends a parameter tensor to L; NULL, with the error in d, if it has more than
 * CNN_MAX_ELEMS elements. */
cnn_param *cnn_layer_add_param(cnn_layer *L, const char *suffix, int rank, const int *dims,
                               cnn_init_kind init, int trainable, cnn_diag *d);

#endif
