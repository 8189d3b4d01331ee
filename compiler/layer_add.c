/* add NAME...: the element-wise sum of the previous statement's output (or `from NAME`'s) and
 * every named tensor, all of one shape (Keras Add): the join of a residual block. */
#include <string.h>

#include "layers.h"

static int infer(cnn_layer *L, cnn_diag *d)
{
    if (L->n_inputs < 2)
        return cnn_error(d, L->loc, "'add' needs a tensor to add: %s", cnn_layer_add.usage);
    char a[48], b[48];
    cnn_shape_text(L->ins[0], a, sizeof a);
    for (int k = 1; k < L->n_inputs; k++) {
        cnn_shape s = L->ins[k];
        if (s.rank == L->ins[0].rank && s.h == L->ins[0].h && s.w == L->ins[0].w &&
            s.c == L->ins[0].c)
            continue;
        cnn_shape_text(s, b, sizeof b);
        cnn_error(d, L->ref_locs[k], "'add' needs tensors of one shape: %s is %s, %s is %s",
                  L->in_names[k], b, L->in_names[0], a);
        cnn_note(d, L->in_locs[k], "%s (%s) is made here", L->in_names[k], b);
        cnn_note(d, L->in_locs[0], "%s (%s) is made here", L->in_names[0], a);
        return -1;
    }
    L->out = L->ins[0];
    return 0;
}

/* ---- code generation: one loop over the batch's elements ---- */

static int gen_flags(const cnn_layer *L)
{
    (void)L;
    return GEN_MULTI;
}

static void emit_forward(cnn_emitter *e, const cnn_gen_layer *g)
{
    long size = cnn_shape_size(g->L->out);
    char sum[512] = "";
    emit(e, "float *out = %s + %s;", g->out, gen_times("b0", (int)size));
    for (int k = 0; k < g->n_inputs; k++) {
        emit(e, "const float *in%d = %s + %s;", k, g->ins[k], gen_times("b0", (int)size));
        snprintf(sum + strlen(sum), sizeof sum - strlen(sum), "%sin%d[i]", k ? " + " : "", k);
    }
    emit(e, "for (long i = 0; i < (long)n * %ld; i++)", size);
    emit(e, "    out[i] = %s;", sum);
}

/* Each input's gradient is the output's. */
static void emit_backward(cnn_emitter *e, const cnn_gen_layer *g)
{
    long size = cnn_shape_size(g->L->out);
    for (int k = 0; k < g->n_inputs; k++)
        if (g->dins[k])
            emit(e, "memcpy(%s + %s, %s + %s, sizeof(float) * n * %ld);", g->dins[k],
                 gen_times("b0", (int)size), g->dout, gen_times("b0", (int)size), size);
}

const cnn_layer_desc cnn_layer_add = {
    .keyword = "add",
    .type = CNN_LAYER_ADD,
    .keras_name = "add",
    .keras_type = "Add",
    .usage = "add NAME... [from NAME] (the previous output, or from's, plus each NAME)",
    .max_positional = 0,
    .max_inputs = CNN_MAX_INPUTS,
    .infer = infer,
    .gen_flags = gen_flags,
    .emit_forward = emit_forward,
    .emit_backward = emit_backward,
};
