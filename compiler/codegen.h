/* Code generation: a .net network as one self-contained C file, specialized to its shapes. */
#ifndef CNN_CODEGEN_H
#define CNN_CODEGEN_H

#include <stdio.h>

#include "emit.h"
#include "ir.h"

typedef struct cnn_gen_opts {
    int batch;             /* the compile-time batch size */
    const char *version;   /* cnnc's, named in the header comment */
    int with_main;         /* emit main() (guarded by CNNC_NO_MAIN) */
} cnn_gen_opts;

/* What a layer's emitters know about its place in the network. */
typedef struct cnn_gen_layer {
    const cnn_layer *L;
    const char *in;   /* the input buffer's C name ("x" for the network input) */
    const char *din;  /* its gradient buffer, NULL when no gradient flows there */
    const char *out;  /* this layer's output buffer */
    const char *dout; /* and its gradient */
    /* Every input of a layer that reads several (add, concat: GEN_MULTI), by the global
     * names of their buffers, and where each one's gradient goes (NULL: nowhere). */
    int n_inputs;
    const char *ins[CNN_MAX_INPUTS];
    const char *dins[CNN_MAX_INPUTS];
    int batch;
    int is_last;      /* the softmax output layer: dout holds d loss / d logits */
    int backward;     /* the network has a backward pass (it has a loss) */
} cnn_gen_layer;

/* Emits the whole C file for ir. Returns -1 if writing failed. */
int cnn_generate_c(FILE *out, const cnn_ir *ir, const cnn_source *src, const cnn_gen_opts *opts);
/* Emits the header declaring the network's public symbols. */
int cnn_generate_h(FILE *out, const cnn_ir *ir, const cnn_gen_opts *opts);

/* Helpers for the layer emitters. */
/* A float literal for v that C reads back exactly ("0.0f", "0.300000012f", "1e-07f");
 * the text lives until eight more calls. */
const char *gen_float(double v);
/* The same as a double literal (no suffix): for arithmetic done in double. */
const char *gen_real(double v);
/* "var * k", or just "var" when k is 1: index expressions without noise. */
const char *gen_times(const char *var, int k);
/* c += a^T . b (cnn_gemm_tn_acc of libcnnrt): the weights' gradients. */
void gen_gemm_tn_acc(cnn_emitter *e, const char *m, const char *n, const char *k, const char *a,
                     const char *lda, const char *b, const char *ldb, const char *c,
                     const char *ldc);
/* Applies the activation in place to count elements of buf (count: a C expression). */
void gen_activation_forward(cnn_emitter *e, const cnn_layer *L, const char *buf,
                            const char *count);
/* Multiplies dbuf by the activation's derivative, computed from the output out. */
void gen_activation_backward(cnn_emitter *e, const cnn_layer *L, const char *dbuf,
                             const char *out, const char *count);
/* c = bias + a.b (cnn_gemm_bias of libcnnrt), with the layer's bias or none. */
void gen_gemm_bias(cnn_emitter *e, const cnn_layer *L, const char *m, const char *n,
                   const char *k, const char *a, const char *lda, const char *b, const char *ldb,
                   const char *c, const char *ldc);
/* In NAME_grads: sums the rows of the gradient into this part's share of the bias gradient. */
void gen_bias_grad(cnn_emitter *e, const cnn_layer *L, const char *dbuf, const char *rows);
/* "LAYER_SUFFIX", a buffer's C name; the text lives until eight more calls. */
const char *gen_name(const cnn_layer *L, const char *suffix);
/* "static TYPE NAME[N];" and a comment "B x M: comment", with N = batch * per_image computed in 64 bits
 * (batch 0: N = per_image, no factors shown). Sizes are checked before generation (sizes.c):
 * one that was not would print as a number too large to compile, never as a wrapped one. */
void gen_array(cnn_emitter *e, const char *type, const char *name, int batch, int64_t per_image,
               const char *comment);
/* In NAME_grads: declares VAR0 and VAR1, this part's share of count rows or columns
 * (gen_share(e, "r", 288): int r0 = 288 * part / parts, r1 = ...). */
void gen_share(cnn_emitter *e, const char *var, int count);

#endif
