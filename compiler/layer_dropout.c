/* dropout RATE: inverted dropout in training, identity in inference (Keras Dropout). */
#include "layers.h"

static int parse(cnn_layer *L, const cnn_stmt *s, const cnn_args *a, cnn_diag *d)
{
    double rate;
    if (a->n_pos < 1)
        return cnn_error(d, s->loc, "'dropout' needs a rate: %s", cnn_layer_dropout.usage);
    if (cnn_arg_real(a->pos[0], "dropout rate", 0, 1, CNN_MAX_OPEN, &rate, d))
        return -1;
    L->rate = (float)rate;
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
    return GEN_FWD_TRAINING | GEN_FWD_RNG | GEN_SERIAL; /* one random sequence */
}

static void emit_buffers(cnn_emitter *e, const cnn_gen_layer *g)
{
    gen_array(e, "float", gen_name(g->L, "mask"), g->batch, cnn_shape_size(g->L->out),
              "0 or 1/(1-rate), drawn in training");
}

static int buffers(const cnn_layer *L, int grad_in, int is_last, int backward, cnn_buffer *b)
{
    (void)backward;
    (void)grad_in, (void)is_last;
    b[0] = (cnn_buffer){"dropout mask", cnn_shape_size(L->out), 0, 4, 1};
    return 1;
}

static void emit_forward(cnn_emitter *e, const cnn_gen_layer *g)
{
    const cnn_layer *L = g->L;
    long size = cnn_shape_size(L->out);
    emit_open(e, "if (!training)");
    emit(e, "memcpy(out, in, sizeof(float) * n * %ld);", size);
    emit(e, "return;");
    emit_close(e);
    emit(e, "float *mask = %s_mask + %s;", L->name, gen_times("b0", (int)size));
    emit(e, "/* One draw per element in memory order, as every cnnc backend draws (cnnrt.h). */");
    emit_open(e, "for (int i = 0; i < n * %ld; i++)", size);
    emit(e, "mask[i] = cnn_dropout_keep(rng, %s) ? %s : 0.0f;", gen_float(L->rate),
         gen_float(1.0 / (1.0 - L->rate)));
    emit(e, "out[i] = in[i] * mask[i];");
    emit_close(e);
}

static void emit_backward(cnn_emitter *e, const cnn_gen_layer *g)
{
    if (!g->din)
        return;
    long size = cnn_shape_size(g->L->out);
    emit(e, "const float *mask = %s_mask + %s;", g->L->name, gen_times("b0", (int)size));
    emit(e, "for (int i = 0; i < n * %ld; i++)", size);
    emit(e, "    din[i] = dout[i] * mask[i];");
}

const cnn_layer_desc cnn_layer_dropout = {
    .keyword = "dropout",
    .type = CNN_LAYER_DROPOUT,
    .keras_name = "dropout",
    .keras_type = "Dropout",
    .usage = "dropout RATE (0 <= RATE < 1)",
    .options = NULL,
    .max_positional = 1,
    .parse = parse,
    .infer = infer,
    .gen_flags = gen_flags,
    .emit_buffers = emit_buffers,
    .emit_forward = emit_forward,
    .emit_backward = emit_backward,
    .buffers = buffers,
};
