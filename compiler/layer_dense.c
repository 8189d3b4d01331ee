/* dense N [activation]: a fully connected layer over a flat input (Keras Dense). */
#include "layers.h"

enum { O_L1, O_L2, O_INIT, O_BIAS, O_ALPHA };
static const char *const options[] = {"l1", "l2", "init", "bias", "alpha", NULL};

static int parse(cnn_layer *L, const cnn_stmt *s, const cnn_args *a, cnn_diag *d)
{
    long units;
    if (a->n_pos < 1)
        return cnn_error(d, s->loc, "'dense' needs a number of units: %s", cnn_layer_dense.usage);
    if (cnn_arg_int(a->pos[0], "number of units", 1, 1 << 24, &units, d))
        return -1;
    L->units = (int)units;
    return cnn_parse_activation(L, a->n_pos > 1 ? a->pos[1] : NULL, a->opt[O_ALPHA], d) ||
           cnn_parse_weight_options(L, a->opt[O_L1], a->opt[O_L2], a->opt[O_INIT],
                                    a->opt[O_BIAS], d);
}

static int infer(cnn_layer *L, cnn_diag *d)
{
    if (L->in.rank != 1) {
        char in[48];
        cnn_shape_text(L->in, in, sizeof in);
        cnn_error(d, L->loc, "'dense' needs a flat input, got %s; add 'flatten' before it", in);
        cnn_note_input(L, d);
        return -1;
    }
    int n_in = L->in.c;
    L->out = (cnn_shape){1, 1, 1, L->units};
    cnn_param *k = cnn_layer_add_param(L, "kernel", 2, (int[]){n_in, L->units}, L->init, 1, d);
    if (!k)
        return -1;
    k->fan_in = n_in;
    k->fan_out = L->units;
    k->l1 = L->l1;
    k->l2 = L->l2;
    if (L->use_bias && !cnn_layer_add_param(L, "bias", 1, (int[]){L->units}, CNN_INIT_ZEROS, 1, d))
        return -1;
    L->flops = 2.0 * n_in * L->units;
    return 0;
}

/* ---- code generation: one matrix product across the batch ---- */

static int gen_flags(const cnn_layer *L)
{
    /* The kernel's gradient needs the input; the activation's derivative needs the output
     * (softmax is folded into the loss's gradient). */
    int needs_out = L->act != CNN_ACT_LINEAR && L->act != CNN_ACT_SOFTMAX;
    return GEN_GRAD_IN | GEN_KERNEL_T | (needs_out ? GEN_BWD_OUT : 0);
}

static void emit_buffers(cnn_emitter *e, const cnn_gen_layer *g)
{
    if (g->is_last)
        gen_array(e, "float", gen_name(g->L, "logits"), g->batch, g->L->out.c,
                  "before softmax, for the loss");
}

static int buffers(const cnn_layer *L, int grad_in, int is_last, int backward, cnn_buffer *b)
{
    (void)backward;
    (void)grad_in;
    if (!is_last)
        return 0;
    b[0] = (cnn_buffer){"logits", L->out.c, 0, 4, 1};
    return 1;
}

static void emit_forward(cnn_emitter *e, const cnn_gen_layer *g)
{
    const cnn_layer *L = g->L;
    int I = L->in.c, U = L->out.c;
    char i[16], u[16], kernel[64], z[64], count[32];
    snprintf(i, sizeof i, "%d", I);
    snprintf(u, sizeof u, "%d", U);
    snprintf(kernel, sizeof kernel, "%s_kernel", L->name);
    snprintf(z, sizeof z, "%s", g->is_last ? "logits" : "out");
    snprintf(count, sizeof count, "n * %d", U);
    if (g->is_last)
        emit(e, "float *logits = %s_logits + %s;", L->name, gen_times("b0", U));
    emit(e, "/* %s[n][%d] = bias + in[n][%d] . kernel[%d][%d] */", g->is_last ? "logits" : "out",
         U, I, I, U);
    gen_gemm_bias(e, L, "n", u, i, "in", i, kernel, u, z, u);
    if (!g->is_last) {
        gen_activation_forward(e, L, "out", count);
        return;
    }
    emit(e, "/* out = softmax(logits), row by row */");
    emit_open(e, "for (int b = 0; b < n; b++)");
    emit(e, "const float *zb = %s + b * %d;", z, U);
    emit(e, "float *p = out + b * %d, max = zb[0], sum = 0.0f;", U);
    emit(e, "for (int j = 1; j < %d; j++)", U);
    emit(e, "    max = zb[j] > max ? zb[j] : max;");
    emit_open(e, "for (int j = 0; j < %d; j++)", U);
    emit(e, "p[j] = expf(zb[j] - max);");
    emit(e, "sum += p[j];");
    emit_close(e);
    emit(e, "for (int j = 0; j < %d; j++)", U);
    emit(e, "    p[j] /= sum;");
    emit_close(e);
}

static void emit_backward(cnn_emitter *e, const cnn_gen_layer *g)
{
    const cnn_layer *L = g->L;
    int I = L->in.c, U = L->out.c;
    char i[16], u[16], kernel[64], count[32];
    snprintf(i, sizeof i, "%d", I);
    snprintf(u, sizeof u, "%d", U);
    snprintf(kernel, sizeof kernel, "%s_kernel", L->name);
    snprintf(count, sizeof count, "n * %d", U);
    if (!g->is_last)
        gen_activation_backward(e, L, "dout", "out", count);
    if (!g->din)
        return;
    emit(e, "/* din[n][%d] = dout . kernel^T */", I);
    snprintf(kernel, sizeof kernel, "%s_kernel_t", L->name);
    gen_gemm_bias(e, NULL, "n", i, u, "dout", u, kernel, i, "din", i);
}

static void emit_grads(cnn_emitter *e, const cnn_gen_layer *g)
{
    const cnn_layer *L = g->L;
    int I = L->in.c, U = L->out.c;
    char i[16], u[16], kgrad[64];
    snprintf(i, sizeof i, "%d", I);
    snprintf(u, sizeof u, "%d", U);
    snprintf(kgrad, sizeof kgrad, "%s_kernel_grad + %s", L->name, gen_times("r0", U));
    gen_share(e, "r", I);
    emit(e, "/* kernel_grad[r0..r1][%d] += in[n][r0..r1]^T . dout[n][%d] */", U, U);
    emit(e, "if (r1 > r0)");
    e->depth++;
    gen_gemm_tn_acc(e, "r1 - r0", u, "n", "in + r0", i, "dout", u, kgrad, u);
    e->depth--;
    gen_bias_grad(e, L, "dout", "n");
}

const cnn_layer_desc cnn_layer_dense = {
    .keyword = "dense",
    .type = CNN_LAYER_DENSE,
    .keras_name = "dense",
    .keras_type = "Dense",
    .usage = "dense N [activation] [l1=] [l2=] [init=] [bias=]",
    .options = options,
    .max_positional = 2,
    .parse = parse,
    .infer = infer,
    .gen_flags = gen_flags,
    .emit_buffers = emit_buffers,
    .emit_forward = emit_forward,
    .emit_backward = emit_backward,
    .emit_grads = emit_grads,
    .buffers = buffers,
};
