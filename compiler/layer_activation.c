/* activation NAME: an activation on its own, after a layer that has none of its own (Keras
 * Activation, LeakyReLU; PyTorch's Conv -> BatchNorm -> ReLU). */
#include <string.h>

#include "layers.h"

enum { O_ALPHA };
static const char *const options[] = {"alpha", NULL};

static int parse(cnn_layer *L, const cnn_stmt *s, const cnn_args *a, cnn_diag *d)
{
    if (a->n_pos < 1)
        return cnn_error(d, s->loc, "'activation' needs a name: %s", cnn_layer_activation.usage);
    if (cnn_parse_activation(L, a->pos[0], a->opt[O_ALPHA], d))
        return -1;
    /* The loss takes softmax's logits from the dense layer that computes them. */
    if (L->act == CNN_ACT_SOFTMAX)
        return cnn_error(d, L->act_loc, "softmax is the output layer's own activation: write "
                                        "it on the last dense layer ('dense 10 softmax')");
    return 0;
}

static int infer(cnn_layer *L, cnn_diag *d)
{
    (void)d;
    L->out = L->in;
    return 0;
}

/* ---- code generation ---- */

static int gen_flags(const cnn_layer *L)
{
    (void)L;
    return GEN_BWD_OUT; /* every derivative here follows from the output */
}

static void emit_forward(cnn_emitter *e, const cnn_gen_layer *g)
{
    long size = cnn_shape_size(g->L->out);
    char count[32];
    snprintf(count, sizeof count, "n * %ld", size);
    emit(e, "memcpy(out, in, sizeof(float) * n * %ld);", size);
    gen_activation_forward(e, g->L, "out", count);
}

static void emit_backward(cnn_emitter *e, const cnn_gen_layer *g)
{
    if (!g->din)
        return;
    long size = cnn_shape_size(g->L->out);
    char count[32];
    snprintf(count, sizeof count, "n * %ld", size);
    emit(e, "memcpy(din, dout, sizeof(float) * n * %ld);", size);
    gen_activation_backward(e, g->L, "din", "out", count);
}

const cnn_layer_desc cnn_layer_activation = {
    .keyword = "activation",
    .type = CNN_LAYER_ACTIVATION,
    .keras_name = "activation",
    .keras_type = "Activation",
    .usage = "activation relu|leaky_relu|sigmoid|tanh|linear [alpha=A]",
    .options = options,
    .max_positional = 1,
    .parse = parse,
    .infer = infer,
    .gen_flags = gen_flags,
    .emit_forward = emit_forward,
    .emit_backward = emit_backward,
};
