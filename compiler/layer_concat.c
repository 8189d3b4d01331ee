/* concat NAME...: the previous statement's output (or `from NAME`'s) and every named tensor
 * side by side along the channels, in that order (Keras Concatenate on the last axis). */
#include "layers.h"

static int infer(cnn_layer *L, cnn_diag *d)
{
    if (L->n_inputs < 2)
        return cnn_error(d, L->loc, "'concat' needs a tensor to join: %s",
                         cnn_layer_concat.usage);
    const cnn_shape first = L->ins[0];
    int64_t channels = 0;
    char a[48], b[48];
    cnn_shape_text(first, a, sizeof a);
    for (int k = 0; k < L->n_inputs; k++) {
        cnn_shape s = L->ins[k];
        if (s.rank != first.rank || s.h != first.h || s.w != first.w) {
            cnn_shape_text(s, b, sizeof b);
            cnn_error(d, L->ref_locs[k], "'concat' joins along the channels tensors of one "
                      "height and width: %s is %s, %s is %s", L->in_names[k], b,
                      L->in_names[0], a);
            cnn_note(d, L->in_locs[k], "%s (%s) is made here", L->in_names[k], b);
            cnn_note(d, L->in_locs[0], "%s (%s) is made here", L->in_names[0], a);
            return -1;
        }
        channels += s.c;
    }
    char what[48];
    snprintf(what, sizeof what, "%lld channels", (long long)channels);
    if (cnn_check_elems(d, L->loc, "concat's output", what, channels * first.h * first.w))
        return -1;
    L->out = first;
    L->out.c = (int)channels;
    return 0;
}

/* ---- code generation: each pixel's channels copied in, then out ---- */

static int gen_flags(const cnn_layer *L)
{
    (void)L;
    return GEN_MULTI;
}

/* Loops over the images' pixels (p) with each input's channels at in_k + p * C_k and the
 * output's at out + p * C; backward copies the other way, into the inputs' gradients. */
static void emit_copies(cnn_emitter *e, const cnn_gen_layer *g, int backward)
{
    const cnn_layer *L = g->L;
    int pixels = L->out.h * L->out.w, C = L->out.c;
    emit(e, "%sfloat *o = %s + %s;", backward ? "const " : "", backward ? g->dout : g->out,
         gen_times("b0", pixels * C));
    for (int k = 0; k < L->n_inputs; k++)
        if (!backward || g->dins[k])
            emit(e, "%sfloat *i%d = %s + %s;", backward ? "" : "const ", k,
                 backward ? g->dins[k] : g->ins[k], gen_times("b0", pixels * L->ins[k].c));
    emit_open(e, "for (long p = 0; p < (long)n * %d; p++)", pixels);
    int at = 0;
    for (int k = 0; k < L->n_inputs; k++) {
        int Ck = L->ins[k].c;
        if (!backward)
            emit(e, "memcpy(o + p * %d + %d, i%d + p * %d, sizeof(float) * %d);", C, at, k, Ck, Ck);
        else if (g->dins[k])
            emit(e, "memcpy(i%d + p * %d, o + p * %d + %d, sizeof(float) * %d);", k, Ck, C, at, Ck);
        at += Ck;
    }
    emit_close(e);
}

static void emit_forward(cnn_emitter *e, const cnn_gen_layer *g)
{
    emit_copies(e, g, 0);
}

static void emit_backward(cnn_emitter *e, const cnn_gen_layer *g)
{
    for (int k = 0; k < g->n_inputs; k++)
        if (g->dins[k]) {
            emit_copies(e, g, 1);
            return;
        }
}

const cnn_layer_desc cnn_layer_concat = {
    .keyword = "concat",
    .type = CNN_LAYER_CONCAT,
    .keras_name = "concatenate",
    .keras_type = "Concatenate",
    .usage = "concat NAME... [from NAME] (the previous output, or from's, then each NAME)",
    .max_positional = 0,
    .max_inputs = CNN_MAX_INPUTS,
    .infer = infer,
    .gen_flags = gen_flags,
    .emit_forward = emit_forward,
    .emit_backward = emit_backward,
};
