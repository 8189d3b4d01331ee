/* TEMPLATE for a new layer kind: copy to compiler/layer_KIND.c and follow the checklist.
 * (This file is compiled by the tests, never linked, so that it keeps up with layers.h.)
 *
 * Checklist, in the order that keeps every build green:
 *  1. ir.h: a CNN_LAYER_KIND value. The compiler then names every switch that must handle it
 *     (-Wswitch: the reference, cnnc onnx); handle each one or refuse the kind there with an
 *     error that names the layer.
 *  2. This file: the descriptor (keyword, Keras names, usage, options), parse (NULL when the
 *     statement takes no arguments), infer (check the input shape with a note at the input,
 *     set L->out, the parameters with cnn_layer_add_param, L->flops for conv-like work).
 *  3. layers.h: extern the descriptor, and add its keyword to CNN_LAYER_KEYWORDS (the one list:
 *     the statements, "did you mean", the error listing the layers); layers.c: one line in
 *     all_layers; compiler/CMakeLists.txt: the file.
 *  4. runtime/reference.c: its forward and backward in plain loops, double precision, adding
 *     (+=) into its inputs' gradients. No code shared with the generator: it is the yardstick.
 *  5. Code generation here: gen_flags, emit_forward, emit_backward (assign din: a tensor read
 *     by several layers gets each share in a buffer of its own, codegen.c sums them), and
 *     emit_grads, emit_buffers with buffers (the same buffers, counted by sizes.c),
 *     scratch_per_image where it has them.
 *  6. Tests: a network using it in tests/nets/ (a chain) or tests/graphs/ (a graph). That alone
 *     puts it under finite differences (test_gradients, which fails while a registered kind is
 *     in no test network), the generated code against the reference (test_codegen), the
 *     static memory figure (test_sizes) and, for chains, the export and ONNX tests. Add a
 *     by-hand forward check to test_reference.c and its errors to tests/bad/.
 *  7. docs/language.md (the layer table, its Keras equivalent), tests/fuzz/front.dict (its
 *     keyword and options).
 */
#include "layers.h"

enum { O_SCALE };
static const char *const options[] = {"scale", NULL};

static int parse(cnn_layer *L, const cnn_stmt *s, const cnn_args *a, cnn_diag *d)
{
    (void)s;
    double v = 1;
    if (a->opt[O_SCALE] && cnn_arg_real(a->opt[O_SCALE], "scale", 0, 1e6, 0, &v, d))
        return -1;
    L->alpha = (float)v; /* a field of cnn_layer (ir.h) holds what the statement says */
    return 0;
}

static int infer(cnn_layer *L, cnn_diag *d)
{
    if (L->in.rank != 3) {
        cnn_error(d, L->loc, "'template' needs an HxWxC input");
        cnn_note_input(L, d);
        return -1;
    }
    L->out = L->in;
    return 0;
}

static int gen_flags(const cnn_layer *L)
{
    (void)L;
    return 0;
}

static void emit_forward(cnn_emitter *e, const cnn_gen_layer *g)
{
    long size = cnn_shape_size(g->L->out);
    emit(e, "for (long i = 0; i < (long)n * %ld; i++)", size);
    emit(e, "    out[i] = %s * in[i];", gen_float(g->L->alpha));
}

static void emit_backward(cnn_emitter *e, const cnn_gen_layer *g)
{
    if (!g->din)
        return;
    long size = cnn_shape_size(g->L->out);
    emit(e, "for (long i = 0; i < (long)n * %ld; i++)", size);
    emit(e, "    din[i] = %s * dout[i];", gen_float(g->L->alpha));
}

const cnn_layer_desc cnn_layer_template = {
    .keyword = "template",
    .type = CNN_LAYER_ACTIVATION, /* its own CNN_LAYER_KIND (step 1) */
    .keras_name = "template",
    .keras_type = "Template",
    .usage = "template [scale=S]",
    .options = options,
    .max_positional = 0,
    .parse = parse,
    .infer = infer,
    .gen_flags = gen_flags,
    .emit_forward = emit_forward,
    .emit_backward = emit_backward,
};
