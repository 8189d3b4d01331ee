/* Code generation: a .net network as one self-contained C file, specialized to its shapes.
 * This file lays out the file (header, buffers, the per-layer functions that each layer's
 * descriptor emits, the model interface, main); layer_*.c emit the layers themselves. */
#include "codegen.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "summary.h"

static const char *init_name(cnn_init_kind k)
{
    static const char *const names[] = {"CNN_INIT_ZEROS",          "CNN_INIT_ONES",
                                        "CNN_INIT_GLOROT_UNIFORM", "CNN_INIT_GLOROT_NORMAL",
                                        "CNN_INIT_HE_UNIFORM",     "CNN_INIT_HE_NORMAL"};
    return names[k];
}

/* ---- helpers for the layer emitters ---- */

/* The shortest decimal text that reads back to the same float: 0.99f, not 0.99000001. */
static void shortest(char *buf, size_t cap, double v)
{
    float f = (float)v;
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, cap, "%.*g", digits, (double)f);
        if ((float)strtod(buf, NULL) == f)
            break;
    }
    if (!strpbrk(buf, ".eni"))
        strncat(buf, ".0", cap - strlen(buf) - 1);
}

const char *gen_float(double v)
{
    static char ring[8][40];
    static int next;
    char *buf = ring[next++ % 8];
    shortest(buf, 38, v);
    strcat(buf, "f");
    return buf;
}

const char *gen_real(double v)
{
    static char ring[8][40];
    static int next;
    char *buf = ring[next++ % 8];
    shortest(buf, 40, v);
    return buf;
}

const char *gen_times(const char *var, int k)
{
    static char ring[8][64];
    static int next;
    char *buf = ring[next++ % 8];
    if (k == 1)
        snprintf(buf, 64, "%s", var);
    else
        snprintf(buf, 64, strchr(var, ' ') ? "(%s) * %d" : "%s * %d", var, k);
    return buf;
}

void gen_gemm_tn_acc(cnn_emitter *e, const char *m, const char *n, const char *k, const char *a,
                     const char *lda, const char *b, const char *ldb, const char *c,
                     const char *ldc)
{
    emit(e, "cnn_gemm_tn_acc(%s, %s, %s, %s, %s, %s, %s, %s, %s);", m, n, k, a, lda, b, ldb, c,
         ldc);
}

void gen_activation_forward(cnn_emitter *e, const cnn_layer *L, const char *buf,
                            const char *count)
{
    switch (L->act) {
    case CNN_ACT_LINEAR:
    case CNN_ACT_SOFTMAX: /* the output layer does its own */
        return;
    case CNN_ACT_RELU:
        emit(e, "for (int i = 0; i < %s; i++) /* relu */", count);
        emit(e, "    %s[i] = %s[i] > 0.0f ? %s[i] : 0.0f;", buf, buf, buf);
        return;
    case CNN_ACT_LEAKY_RELU:
        emit(e, "for (int i = 0; i < %s; i++) /* leaky_relu */", count);
        emit(e, "    %s[i] = %s[i] > 0.0f ? %s[i] : %s * %s[i];", buf, buf, buf, gen_float(L->alpha),
             buf);
        return;
    case CNN_ACT_SIGMOID:
        emit(e, "for (int i = 0; i < %s; i++) /* sigmoid */", count);
        emit(e, "    %s[i] = 1.0f / (1.0f + expf(-%s[i]));", buf, buf);
        return;
    case CNN_ACT_TANH:
        emit(e, "for (int i = 0; i < %s; i++) /* tanh */", count);
        emit(e, "    %s[i] = tanhf(%s[i]);", buf, buf);
        return;
    }
}

void gen_activation_backward(cnn_emitter *e, const cnn_layer *L, const char *dbuf,
                             const char *out, const char *count)
{
    switch (L->act) {
    case CNN_ACT_LINEAR:
    case CNN_ACT_SOFTMAX:
        return;
    /* Selects, not conditional stores: these loops vectorize. */
    case CNN_ACT_RELU:
        emit(e, "for (int i = 0; i < %s; i++) /* relu' */", count);
        emit(e, "    %s[i] = %s[i] > 0.0f ? %s[i] : 0.0f;", dbuf, out, dbuf);
        return;
    case CNN_ACT_LEAKY_RELU:
        emit(e, "for (int i = 0; i < %s; i++) /* leaky_relu' */", count);
        emit(e, "    %s[i] = %s[i] > 0.0f ? %s[i] : %s * %s[i];", dbuf, out, dbuf,
             gen_float(L->alpha), dbuf);
        return;
    case CNN_ACT_SIGMOID:
        emit(e, "for (int i = 0; i < %s; i++) /* sigmoid' = y (1 - y) */", count);
        emit(e, "    %s[i] *= %s[i] * (1.0f - %s[i]);", dbuf, out, out);
        return;
    case CNN_ACT_TANH:
        emit(e, "for (int i = 0; i < %s; i++) /* tanh' = 1 - y^2 */", count);
        emit(e, "    %s[i] *= 1.0f - %s[i] * %s[i];", dbuf, out, out);
        return;
    }
}

void gen_gemm_bias(cnn_emitter *e, const cnn_layer *L, const char *m, const char *n,
                   const char *k, const char *a, const char *lda, const char *b, const char *ldb,
                   const char *c, const char *ldc)
{
    char bias[64] = "NULL";
    if (L && L->use_bias)
        snprintf(bias, sizeof bias, "%s_bias", L->name);
    emit(e, "cnn_gemm_bias(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s);", m, n, k, a, lda, b, ldb, bias,
         c, ldc);
}

void gen_bias_grad(cnn_emitter *e, const cnn_layer *L, const char *dbuf, const char *rows)
{
    if (!L->use_bias)
        return;
    int u = L->out.c;
    /* This part's share of the units, summed in a local: the compiler cannot tell the
     * gradient buffers apart, and would otherwise store the bias gradient for every row. */
    emit_block(e);
    gen_share(e, "j", u);
    emit(e, "float sum[%d] = {0};", u);
    emit(e, "for (int r = 0; r < %s; r++)", rows);
    emit(e, "    for (int j = j0; j < j1; j++)");
    emit(e, "        sum[j] += %s[r * %d + j];", dbuf, u);
    emit(e, "for (int j = j0; j < j1; j++)");
    emit(e, "    %s_bias_grad[j] += sum[j];", L->name);
    emit_close(e);
}

const char *gen_name(const cnn_layer *L, const char *suffix)
{
    static char ring[8][96];
    static int next;
    char *buf = ring[next++ % 8];
    snprintf(buf, sizeof ring[0], "%s_%s", L->name, suffix);
    return buf;
}

void gen_array(cnn_emitter *e, const char *type, const char *name, int batch, int64_t per_image,
               const char *comment)
{
    long long n = batch ? (long long)batch * per_image : (long long)per_image;
    if (batch)
        emit(e, "static %s %s[%lld]; /* %d x %lld%s%s */", type, name, n, batch,
             (long long)per_image, comment ? ": " : "", comment ? comment : "");
    else if (comment)
        emit(e, "static %s %s[%lld]; /* %s */", type, name, n, comment);
    else
        emit(e, "static %s %s[%lld];", type, name, n);
}

void gen_share(cnn_emitter *e, const char *var, int count)
{
    emit(e, "int %s0 = %d * part / parts, %s1 = %d * (part + 1) / parts;", var, count, var, count);
}

/* ---- the file ---- */

typedef struct plan {
    const cnn_ir *ir;
    const cnn_source *src;
    const cnn_gen_opts *opts;
    char (*out)[64], (*dout)[64]; /* buffer names per layer ("" for none) */
    char (*din)[CNN_MAX_INPUTS][64]; /* where each input's gradient goes ("" for nowhere): the
                                        producer's dout, or the edge's own buffer when the
                                        tensor has other readers too */
    int *flags;
    int *dout_sums;                  /* its dout is the sum of its readers' own buffers */
    int *has_backward, *has_grads; /* which functions a layer got */
} plan;

/* The buffer layer l reads as input k: a layer's output, or the network's input x. */
static const char *in_name(const plan *P, int l, int k)
{
    int src = P->ir->layers[l].inputs[k];
    return src >= 0 ? P->out[src] : "x";
}

static void dims_text(const cnn_param *p, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < p->rank && k + 12 < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, i ? "x%d" : "%d", p->dims[i]);
}

static void emit_header(cnn_emitter *e, const plan *P)
{
    const cnn_ir *ir = P->ir;
    char total[32], trainable[32], in[48];
    cnn_format_count(ir->total_params, total, sizeof total);
    cnn_format_count(ir->trainable_params, trainable, sizeof trainable);
    cnn_shape_text(ir->input, in, sizeof in);
    emit_text(e,
            "/* %s: the network \"%s\", compiled by cnnc %s from %s.\n"
            " * Do not edit: regenerate with `cnnc %s -o FILE.c`.\n"
            " *\n"
            " * Input %s, %d classes, %s parameters (%s trainable), batches of up to %d.\n"
            " * Activations are [n][h][w][c] (channels last); kernels are in Keras' layouts,\n"
            " * conv [kh][kw][in][out] and dense [in][out]. Each layer has NAME_forward and\n"
            " * NAME_backward over a range of images, and NAME_grads, which accumulates the\n"
            " * parameters' gradients over the batch into their _grad buffers; all buffers are\n"
            " * static. Convolutions and dense layers are matrix products (im2col, then\n"
            " * libcnnrt's cnn_gemm_*); windows of few taps are computed directly. The threads\n"
            " * of libcnnrt's pool split each batch (forward_part, backward_part).\n"
            " * The model interface at the end (cnnrt.h) lets libcnnrt train and evaluate it.\n"
            " */\n",
            ir->name, ir->name, P->opts->version, ir->source_name, ir->source_name, in,
            ir->n_classes, total, trainable, P->opts->batch);
    emit(e, "#include <math.h>");
    emit(e, "#include <stdio.h>");
    emit(e, "#include <string.h>");
    emit_blank(e);
    emit(e, "#include \"cnnrt.h\"");
    emit_blank(e);
    emit(e, "/* The network input of the last forward pass (the first layer's backward reads it), and");
    emit(e, " * the size of the current batch (batchnorm's statistics cover all of it). */");
    emit(e, "static const float *x;");
    emit(e, "static int batch_n;");
}

/* NAME_kernel_t, the kernel [rows][units] as [units][rows], and the function that fills it
 * (each part a share of its rows): backward's products read it row by row. With `flip`, a
 * conv kernel [taps][in][units] as [taps - 1 - tap][units][in] instead. */
static void emit_kernel_transpose(cnn_emitter *e, const cnn_layer *L, int flip)
{
    int units = L->out.c, rows = (int)(L->params[0].size / units);
    gen_array(e, "float", gen_name(L, "kernel_t"), 0, L->params[0].size,
              flip ? "the kernel turned 180 degrees, its channels swapped, for backward"
                   : "the kernel transposed, for backward");
    emit_blank(e);
    emit_open(e, "static void %s_transpose(int part, int parts)", L->name);
    emit(e, "for (int j = %d * part / parts; j < %d * (part + 1) / parts; j++)", units, units);
    if (flip) {
        int taps = L->kh * L->kw, cin = L->in.c;
        emit(e, "    for (int t = 0; t < %d; t++)", taps);
        emit(e, "        for (int c = 0; c < %d; c++)", cin);
        emit(e, "            %s_kernel_t[((%d - t) * %d + j) * %d + c] = %s_kernel[(t * %d + c) * %d + j];",
             L->name, taps - 1, units, cin, L->name, cin, units);
    } else {
        emit(e, "    for (int i = 0; i < %d; i++)", rows);
        emit(e, "        %s_kernel_t[j * %d + i] = %s_kernel[i * %d + j];", L->name, rows,
             L->name, units);
    }
    emit_close(e);
}

static void emit_layer(cnn_emitter *e, const plan *P, int l)
{
    const cnn_ir *ir = P->ir;
    const cnn_layer *L = &ir->layers[l];
    const cnn_layer_desc *desc = L->desc;
    int flags = P->flags[l];
    size_t len;
    const char *line = cnn_source_line(P->src, L->loc.line, &len);
    char in[48], out[48], params[32];
    cnn_shape_text(L->in, in, sizeof in);
    cnn_shape_text(L->out, out, sizeof out);
    cnn_format_count(L->weights, params, sizeof params);

    emit_blank(e);
    emit(e, "/* ==== %s (%s): %.*s", L->name, L->type_name, line ? (int)len : 0, line ? line : "");
    char flops[48] = "";
    if (L->flops > 0)
        snprintf(flops, sizeof flops, ", %.3g MFLOP per image", L->flops / 1e6);
    emit(e, " *      %s line %d; %s -> %s, %s parameters%s", ir->source_name, L->loc.line, in,
         out, params, flops);
    if (L->n_inputs > 1 || L->inputs[0] != l - 1) { /* a graph: say what it reads */
        char reads[512] = "";
        for (int k = 0; k < L->n_inputs; k++)
            snprintf(reads + strlen(reads), sizeof reads - strlen(reads), "%s%s",
                     k ? ", " : "", L->in_names[k]);
        emit(e, " *      reads %s", reads);
    }
    emit(e, " */");
    for (int p = 0; p < L->n_params; p++) {
        const cnn_param *T = &L->params[p];
        char dims[64];
        dims_text(T, dims, sizeof dims);
        emit(e, "static float %s_%s[%ld]; /* %s */", L->name, T->suffix, T->size, dims);
        if (T->trainable) {
            emit(e, "static float %s_%s_grad[%ld];", L->name, T->suffix, T->size);
            emit(e, "static float %s_%s_m[%ld], %s_%s_v[%ld]; /* optimizer state */", L->name,
                 T->suffix, T->size, L->name, T->suffix, T->size);
        }
    }
    if (flags & GEN_ALIAS) {
        emit(e, "/* Nothing to compute: in [n][h][w][c] order the data is already flat, so the");
        emit(e, " * next layer reads %s directly. */",
             L->inputs[0] >= 0 ? in_name(P, l, 0) : "the input");
    }
    /* The gradients of inputs other layers read too: summed into theirs (NAME_dout_sum). */
    for (int k = 0; k < L->n_inputs; k++)
        if (cnn_grad_edge_own(ir, L, k))
            gen_array(e, "float", P->din[l][k], P->opts->batch, cnn_shape_size(L->ins[k]),
                      "this layer's share of its input's gradient");
    if (flags & GEN_ALIAS)
        return;
    long size = cnn_shape_size(L->out);
    gen_array(e, "float", P->out[l], P->opts->batch, size, NULL);
    if (P->dout[l][0])
        gen_array(e, "float", P->dout[l], P->opts->batch, size, NULL);
    cnn_gen_layer g = {
        .L = L,
        .in = in_name(P, l, 0),
        .din = P->din[l][0][0] ? P->din[l][0] : NULL,
        .out = "out",
        .dout = "dout",
        .n_inputs = L->n_inputs,
        .batch = P->opts->batch,
        .is_last = cnn_softmax_output(ir, l),
        .backward = ir->train.loss != CNN_LOSS_NONE,
    };
    for (int k = 0; k < L->n_inputs; k++) {
        g.ins[k] = in_name(P, l, k);
        g.dins[k] = P->din[l][k][0] ? P->din[l][k] : NULL;
    }
    if (desc->emit_buffers)
        desc->emit_buffers(e, &g);
    if ((flags & GEN_KERNEL_T) && g.din)
        emit_kernel_transpose(e, L, (flags & GEN_KERNEL_FLIP) != 0);
    int multi = (flags & GEN_MULTI) != 0;
    long in_size = cnn_shape_size(L->in);
    emit_blank(e);
    if (multi) {
        /* Several inputs: the functions use the buffers' own names. */
        g.out = P->out[l];
        g.dout = P->dout[l][0] ? P->dout[l] : NULL;
        emit_open(e, "static void %s_forward(int b0, int n)", L->name);
    } else {
        /* One input: inside the functions the buffers are parameters: out, in, dout, din. */
        g.in = "in";
        g.din = g.din ? "din" : NULL;
        emit_open(e, "static void %s_forward(float *out, const float *in, int b0, int n%s%s)",
                  L->name, (flags & GEN_FWD_TRAINING) ? ", int training" : "",
                  (flags & GEN_FWD_RNG) ? ", cnn_rng *rng" : "");
        emit(e, "out += %s;", gen_times("b0", (int)size));
        emit(e, "in += %s;", gen_times("b0", (int)in_size));
    }
    desc->emit_forward(e, &g);
    emit_close(e);
    if (desc->emit_forward_stats) {
        emit_blank(e);
        emit_open(e, "static void %s_forward_stats(const float *in, int b0, int n, int training)",
                  L->name);
        emit(e, "in += %s;", gen_times("b0", (int)in_size));
        desc->emit_forward_stats(e, &g);
        emit_close(e);
    }
    if (!P->dout[l][0])
        return;
    if (desc->emit_backward_stats) {
        emit_blank(e);
        emit_open(e, "static void %s_backward_stats(const float *dout, int b0, int n)", L->name);
        emit(e, "dout += %s;", gen_times("b0", (int)size));
        desc->emit_backward_stats(e, &g);
        emit_close(e);
    }
    /* Backward has nothing to do in some layers (a linear first layer): no function then. */
    char *body = NULL;
    size_t body_len = 0;
    FILE *mem = open_memstream(&body, &body_len);
    if (!mem) {
        e->failed = 1; /* never a file without this backward: the whole output fails */
        return;
    }
    cnn_emitter sub = {.out = mem, .depth = e->depth + 1};
    desc->emit_backward(&sub, &g);
    e->failed |= sub.failed | (fclose(mem) != 0);
    if (e->failed) {
        free(body);
        return;
    }
    P->has_backward[l] = body_len > 0;
    if (body_len > 0) {
        emit_blank(e);
        char args[160];
        snprintf(args, sizeof args, "%sfloat *dout%s%s, int b0, int n",
                 g.din ? "float *din, " : "", (flags & GEN_BWD_IN) ? ", const float *in" : "",
                 (flags & GEN_BWD_OUT) ? ", const float *out" : "");
        emit_open(e, "static void %s_backward(%s)", L->name, multi ? "int b0, int n" : args);
        if (g.din && !multi)
            emit(e, "din += %s;", gen_times("b0", (int)in_size));
        if (!multi)
            emit(e, "dout += %s;", gen_times("b0", (int)size));
        if ((flags & GEN_BWD_IN) && !multi)
            emit(e, "in += %s;", gen_times("b0", (int)in_size));
        if ((flags & GEN_BWD_OUT) && !multi)
            emit(e, "out += %s;", gen_times("b0", (int)size));
        emit_text(e, "%s", body);
        emit_close(e);
    }
    free(body);
    P->has_grads[l] = desc->emit_grads && L->trainable > 0;
    if (!P->has_grads[l])
        return;
    emit_blank(e);
    emit_open(e, "static void %s_grads(const float *dout%s, int n, int part, int parts)", L->name,
              (flags & GEN_GRAD_IN) ? ", const float *in" : "");
    desc->emit_grads(e, &g);
    emit_close(e);
}

/* The call of layer l's forward (backward) function for images b0 .. b0+n-1. */
static void emit_call(cnn_emitter *e, const plan *P, int l, int backward, const char *range)
{
    const cnn_ir *ir = P->ir;
    int f = P->flags[l];
    const char *name = ir->layers[l].name, *in = in_name(P, l, 0);
    if (f & GEN_MULTI) {
        emit(e, "%s_%s(%s);", name, backward ? "backward" : "forward", range);
        return;
    }
    if (!backward) {
        emit(e, "%s_forward(%s, %s, %s%s%s);", name, P->out[l], in, range,
             (f & GEN_FWD_TRAINING) ? ", batch_training" : "",
             (f & GEN_FWD_RNG) ? ", batch_rng" : "");
        return;
    }
    emit(e, "%s_backward(%s%s%s%s%s%s%s, %s);", name, P->din[l][0],
         P->din[l][0][0] ? ", " : "", P->dout[l], (f & GEN_BWD_IN) ? ", " : "",
         (f & GEN_BWD_IN) ? in : "", (f & GEN_BWD_OUT) ? ", " : "",
         (f & GEN_BWD_OUT) ? P->out[l] : "", range);
}

/* A layer with batch statistics: each thread sums its images, then, after a barrier, runs
 * the layer on them with the whole batch's sums. */
static void emit_stats_call(cnn_emitter *e, const plan *P, int l, int backward)
{
    const char *name = P->ir->layers[l].name;
    if (!backward)
        emit(e, "%s_forward_stats(%s, first, end - first, batch_training);", name,
             in_name(P, l, 0));
    else {
        if (P->dout_sums[l])
            emit(e, "%s_dout_sum(first, end - first);", name);
        emit(e, "%s_backward_stats(%s, first, end - first);", name, P->dout[l]);
    }
    emit(e, "cnn_barrier(); /* %s needs every image's sums */", name);
    emit_call(e, P, l, backward, "first, end - first");
}

/* Whether layer l ends a run of layers that go through the batch in chunks. */
static int splits_runs(const plan *P, int l, int backward)
{
    const cnn_layer_desc *d = P->ir->layers[l].desc;
    return (P->flags[l] & GEN_SERIAL) ||
           (backward ? d->emit_backward_stats != NULL : d->emit_forward_stats != NULL);
}

/* A layer that needs the whole batch: one thread runs it, the others wait on both sides. */
static void emit_serial_call(cnn_emitter *e, const plan *P, int l, int backward)
{
    if (backward && P->dout_sums[l])
        emit(e, "%s_dout_sum(first, end - first);", P->ir->layers[l].name);
    emit(e, "cnn_barrier(); /* %s sees the whole batch, in one thread */", P->ir->layers[l].name);
    emit(e, "if (part == 0)");
    e->depth++;
    emit_call(e, P, l, backward, "0, batch_n");
    e->depth--;
    emit(e, "cnn_barrier();");
}

/* How many images a chunk holds: as many as keep one layer's buffers for the chunk within
 * CHUNK_BYTES, so that each layer finds its input in the core's cache (L2: 1-2 MB). */
#define CHUNK_BYTES (512L * 1024)

static int chunk_images(const plan *P, int from, int to)
{
    long most = 1;
    for (int l = from; l <= to; l++) {
        const cnn_layer *L = &P->ir->layers[l];
        long floats = cnn_shape_size(L->in) + cnn_shape_size(L->out);
        if (L->desc->scratch_per_image)
            floats += L->desc->scratch_per_image(L);
        most = floats > most ? floats : most;
    }
    long chunk = CHUNK_BYTES / (most * (long)sizeof(float));
    return chunk < 1 ? 1 : chunk > P->opts->batch ? P->opts->batch : (int)chunk;
}

/* Layers from .. to (forward in order, backward in reverse, the loss's gradient first when
 * the output layer is among them), over this thread's images in chunks. */
static void emit_segment(cnn_emitter *e, const plan *P, int from, int to, int backward)
{
    const cnn_ir *ir = P->ir;
    int last = ir->n_layers - 1, K = ir->n_classes, chunk = chunk_images(P, from, to);
    if (chunk >= P->opts->batch) {
        emit_block(e);
        emit(e, "int b0 = first, n = end - first;");
    } else {
        emit(e, "/* %d images at a time: one layer's buffers for them stay in cache for the next */",
             chunk);
        emit_open(e, "for (int b0 = first; b0 < end; b0 += %d)", chunk);
        emit(e, "int n = end - b0 < %d ? end - b0 : %d;", chunk, chunk);
    }
    for (int k = 0; k <= to - from; k++) {
        int l = backward ? to - k : from + k;
        if (backward && P->dout_sums[l])
            emit(e, "%s_dout_sum(b0, n);", ir->layers[l].name);
        if (backward && l == last && cnn_softmax_output(ir, l)) {
            emit(e, "/* softmax with cross-entropy: d loss / d logits = (p - onehot(label)) / batch */");
            emit(e, "for (int b = b0; b < b0 + n; b++)");
            emit(e, "    for (int j = 0; j < %d; j++)", K);
            emit(e, "        %s[b * %d + j] = (%s[b * %d + j] - (j == batch_labels[b])) / (float)batch_n;",
                 P->dout[last], K, P->out[last], K);
        } else if (backward && l == last && P->dout[last][0]) {
            emit(e, "/* mean squared error: d loss / d out = 2 (out - target) / (batch * %d) */", K);
            emit(e, "for (int b = b0; b < b0 + n; b++)");
            emit(e, "    for (int j = 0; j < %d; j++)", K);
            emit(e, "        %s[b * %d + j] = 2.0f * (%s[b * %d + j] - batch_targets[b * %d + j]) / "
                    "((float)batch_n * %d);", P->dout[last], K, P->out[last], K, K, K);
        }
        if (P->flags[l] & GEN_ALIAS)
            continue;
        if (backward && !P->has_backward[l])
            continue;
        emit_call(e, P, l, backward, "b0, n");
    }
    emit_close(e);
}

/* Every layer of a pass, forward in order or backward in reverse: runs of layers through this
 * thread's images in chunks, split by the layers that see the whole batch or its statistics.
 * Backward skips the layers that have nothing to do, but not the output layer, whose run
 * begins with the loss's gradient. */
static void emit_pass(cnn_emitter *e, const plan *P, int backward)
{
    int last = P->ir->n_layers - 1, step = backward ? -1 : 1;
    for (int l = backward ? last : 0; l >= 0 && l <= last;) {
        int idle = backward ? !P->has_backward[l] && !P->dout_sums[l] && l != last
                            : (P->flags[l] & GEN_ALIAS) != 0;
        if (idle) {
            l += step;
            continue;
        }
        if (splits_runs(P, l, backward)) {
            if (P->flags[l] & GEN_SERIAL)
                emit_serial_call(e, P, l, backward);
            else
                emit_stats_call(e, P, l, backward);
            l += step;
            continue;
        }
        int end = l;
        while (end + step >= 0 && end + step <= last && !splits_runs(P, end + step, backward))
            end += step;
        emit_segment(e, P, backward ? end : l, backward ? l : end, backward);
        l = end + step;
    }
}

/* --check-numerics: each layer's output in forward order, then, in backward order, each
 * layer's output gradient and its parameters' gradients. */
static void emit_first_not_finite(cnn_emitter *e, const plan *P)
{
    const cnn_ir *ir = P->ir;
    emit_blank(e);
    emit(e, "/* --check-numerics: the first layer of a pass that holds a NaN or an infinity. */");
    emit_open(e, "static int not_finite(const float *v, long count)");
    emit(e, "for (long i = 0; i < count; i++)");
    emit(e, "    if (!isfinite(v[i]))");
    emit(e, "        return 1;");
    emit(e, "return 0;");
    emit_close(e);
    emit_blank(e);
    emit_open(e, "static const char *first_not_finite(cnn_model *m, int n, int backward)");
    emit(e, "(void)m;");
    emit_open(e, "if (!backward)");
    for (int l = 0; l < ir->n_layers; l++)
        if (!(P->flags[l] & GEN_ALIAS))
            emit(e, "if (not_finite(%s, n * %lldL)) return \"%s\";", P->out[l],
                 (long long)cnn_shape_size(ir->layers[l].out), ir->layers[l].name);
    emit(e, "return NULL;");
    emit_close(e);
    for (int l = ir->n_layers - 1; l >= 0; l--) {
        const cnn_layer *L = &ir->layers[l];
        if (P->dout[l][0] && !(P->flags[l] & GEN_ALIAS))
            emit(e, "if (not_finite(%s, n * %lldL)) return \"%s\";", P->dout[l],
                 (long long)cnn_shape_size(L->out), L->name);
        for (int p = 0; p < L->n_params; p++)
            if (L->params[p].trainable)
                emit(e, "if (not_finite(%s_%s_grad, %ldL)) return \"%s\";", L->name,
                     L->params[p].suffix, L->params[p].size, L->name);
    }
    emit(e, "return NULL;");
    emit_close(e);
}

/* NAME_dout_sum: a tensor several layers read gets, as its gradient, the sum of what each of
 * them left in its own buffer (added in the order of the file, so every run adds alike). */
static void emit_dout_sums(cnn_emitter *e, const plan *P)
{
    const cnn_ir *ir = P->ir;
    for (int l = 0; l < ir->n_layers; l++) {
        if (!P->dout_sums[l])
            continue;
        const cnn_layer *L = &ir->layers[l];
        long size = cnn_shape_size(L->out);
        char readers[512] = "";
        for (int r = l + 1; r < ir->n_layers; r++)
            for (int k = 0; k < ir->layers[r].n_inputs; k++)
                if (ir->layers[r].inputs[k] == l)
                    snprintf(readers + strlen(readers), sizeof readers - strlen(readers), "%s%s",
                             readers[0] ? ", " : "", ir->layers[r].name);
        emit_blank(e);
        emit(e, "/* %s's output is read by %s: its gradient is the sum of theirs. */", L->name,
             readers);
        emit_open(e, "static void %s_dout_sum(int b0, int n)", L->name);
        emit(e, "float *d = %s + %s;", P->dout[l], gen_times("b0", (int)size));
        int terms = 0;
        for (int r = l + 1; r < ir->n_layers; r++)
            for (int k = 0; k < ir->layers[r].n_inputs; k++)
                if (ir->layers[r].inputs[k] == l)
                    emit(e, "const float *s%d = %s + %s;", terms++, P->din[r][k],
                         gen_times("b0", (int)size));
        /* One statement per reader, however many: the sum s0 + s1 + ... in that order. */
        emit_open(e, "for (long i = 0; i < (long)n * %ld; i++)", size);
        emit(e, "float v = s0[i];");
        for (int t = 1; t < terms; t++)
            emit(e, "v += s%d[i];", t);
        emit(e, "d[i] = v;");
        emit_close(e);
        emit_close(e);
    }
}

static void emit_loss_backward(cnn_emitter *e, const plan *P);
static void emit_tensor_table(cnn_emitter *e, const plan *P);
static void emit_model(cnn_emitter *e, const plan *P);

static void emit_driver(cnn_emitter *e, const plan *P)
{
    const cnn_ir *ir = P->ir;
    int last = ir->n_layers - 1;

    emit_blank(e);
    emit(e, "/* ==== the model interface of cnnrt.h ==== */");
    emit_blank(e);
    int uses_training = 0, uses_rng = 0;
    for (int l = 0; l <= last; l++) {
        uses_training |= P->flags[l] & GEN_FWD_TRAINING;
        uses_rng |= P->flags[l] & GEN_FWD_RNG;
    }
    emit(e, "/* The rest of the current pass, for the threads' parts (cnn_parallel). */");
    if (uses_training)
        emit(e, "static int batch_training;");
    if (uses_rng)
        emit(e, "static cnn_rng *batch_rng;");
    int has_loss = ir->train.loss != CNN_LOSS_NONE;
    if (ir->train.loss == CNN_LOSS_CROSSENTROPY)
        emit(e, "static const int *batch_labels;");
    else if (has_loss)
        emit(e, "static const float *batch_targets;");
    emit_blank(e);
    emit(e, "/* One thread's share of a forward pass: images first .. end-1. */");
    emit_open(e, "static void forward_part(void *arg, int part, int parts)");
    emit(e, "(void)arg;");
    emit(e, "int first = batch_n * part / parts, end = batch_n * (part + 1) / parts;");
    int serial_only = 1; /* then no layer splits the images between the parts */
    for (int l = 0; l <= last; l++)
        serial_only &= (P->flags[l] & (GEN_SERIAL | GEN_ALIAS)) != 0;
    if (serial_only)
        emit(e, "(void)first, (void)end; /* every layer sees the whole batch */");
    emit_pass(e, P, 0);
    emit_close(e);
    emit_blank(e);
    emit_open(e, "static void forward(cnn_model *m, const float *input, int n, int training, cnn_rng *rng)");
    emit(e, "(void)m;");
    emit(e, "x = input;");
    emit(e, "batch_n = n;");
    if (uses_training)
        emit(e, "batch_training = training;");
    else
        emit(e, "(void)training;");
    if (uses_rng)
        emit(e, "batch_rng = rng;");
    else
        emit(e, "(void)rng;");
    emit(e, "cnn_parallel(forward_part, NULL, n);");
    emit_close(e);
    if (has_loss)
        emit_loss_backward(e, P);
    emit_blank(e);
    emit_open(e, "static void destroy(cnn_model *m)");
    emit(e, "(void)m; /* everything is static */");
    emit_close(e);
    emit_tensor_table(e, P);
    emit_first_not_finite(e, P);
    emit_blank(e);
    emit_open(e, "static const cnn_model_ops ops =");
    emit(e, "%s", has_loss ? ".forward = forward," : ".forward = forward, /* loss none: only run */");
    if (has_loss) {
        emit(e, ".loss = loss,");
        emit(e, ".backward = backward,");
    }
    emit(e, ".destroy = destroy,");
    emit(e, ".first_not_finite = first_not_finite,");
    emit_close_semi(e);
    emit_model(e, P);
}

/* loss(): Keras' mean squared error, the mean over the outputs, then over the images; in
 * double. */
static void emit_loss_mse(cnn_emitter *e, const plan *P)
{
    int last = P->ir->n_layers - 1, K = P->ir->n_classes;
    emit(e, "/* Mean squared error (Keras'): the mean over the %d outputs, then over the images; in "
            "double. */", K);
    emit_open(e, "static double loss(cnn_model *m, const int *labels, const float *targets, int n)");
    emit(e, "(void)m, (void)labels;");
    emit(e, "double total = 0.0;");
    emit_open(e, "for (long i = 0; i < (long)n * %d; i++)", K);
    emit(e, "double d = (double)%s[i] - targets[i];", P->out[last]);
    emit(e, "total += d * d;");
    emit_close(e);
    emit(e, "return total / ((double)n * %d);", K);
    emit_close(e);
}

/* loss(): the mean cross-entropy from the output layer's logits. */
static void emit_loss_crossentropy(cnn_emitter *e, const plan *P)
{
    const cnn_layer *top = &P->ir->layers[P->ir->n_layers - 1];
    int K = P->ir->n_classes;
    emit(e, "/* Mean cross-entropy from the logits: logsumexp(z) - z[label], in double. */");
    emit_open(e, "static double loss(cnn_model *m, const int *labels, const float *targets, int n)");
    emit(e, "(void)m, (void)targets;");
    emit(e, "double total = 0.0;");
    emit_open(e, "for (int b = 0; b < n; b++)");
    emit(e, "const float *z = %s_logits + b * %d;", top->name, K);
    emit(e, "double max = z[0], sum = 0.0;");
    emit(e, "for (int j = 1; j < %d; j++)", K);
    emit(e, "    if (z[j] > max)");
    emit(e, "        max = z[j];");
    emit(e, "for (int j = 0; j < %d; j++)", K);
    emit(e, "    sum += exp(z[j] - max);");
    emit(e, "total += max + log(sum) - z[labels[b]];");
    emit_close(e);
    emit(e, "return total / n;");
    emit_close(e);
}

/* The loss, and the backward pass that starts from its gradient. */
static void emit_loss_backward(cnn_emitter *e, const plan *P)
{
    const cnn_ir *ir = P->ir;
    int last = ir->n_layers - 1;
    emit_blank(e);
    if (ir->train.loss == CNN_LOSS_MSE)
        emit_loss_mse(e, P);
    else
        emit_loss_crossentropy(e, P);

    emit_blank(e);
    emit_open(e, "static void backward_part(void *arg, int part, int parts)");
    emit(e, "(void)arg;");
    emit(e, "int first = batch_n * part / parts, end = batch_n * (part + 1) / parts;");
    int transposes = 0;
    for (int l = 0; l <= last; l++)
        if ((P->flags[l] & GEN_KERNEL_T) && P->din[l][0][0] && P->has_backward[l]) {
            emit(e, "%s_transpose(part, parts);", ir->layers[l].name);
            transposes = 1;
        }
    if (transposes)
        emit(e, "cnn_barrier(); /* the kernels, transposed since the last step */");
    emit_pass(e, P, 1);
    emit(e, "/* The parameters' gradients sum over every image: each part takes a share of rows. */");
    emit(e, "cnn_barrier();");
    for (int l = last; l >= 0; l--) {
        if (!P->has_grads[l])
            continue;
        int f = P->flags[l];
        emit(e, "%s_grads(%s%s%s, batch_n, part, parts);", ir->layers[l].name, P->dout[l],
             (f & GEN_GRAD_IN) ? ", " : "", (f & GEN_GRAD_IN) ? in_name(P, l, 0) : "");
    }
    emit_close(e);
    emit_blank(e);
    emit_open(e, "static void backward(cnn_model *m, const int *labels, const float *targets, int n)");
    if (ir->train.loss == CNN_LOSS_MSE) {
        emit(e, "(void)m, (void)labels;");
        emit(e, "batch_targets = targets;");
    } else {
        emit(e, "(void)m, (void)targets;");
        emit(e, "batch_labels = labels;");
    }
    emit(e, "batch_n = n;");
    emit(e, "cnn_parallel(backward_part, NULL, n);");
    emit_close(e);
}

/* Every parameter tensor, for libcnnrt: the optimizer, checkpoints, initialization. */
static void emit_tensor_table(cnn_emitter *e, const plan *P)
{
    const cnn_ir *ir = P->ir;
    int last = ir->n_layers - 1;
    emit_blank(e);
    int n_tensors = 0;
    for (int l = 0; l <= last; l++)
        n_tensors += ir->layers[l].n_params;
    if (!n_tensors) { /* C has no empty arrays */
        emit(e, "/* No layer has parameters: no tensor table. */");
        return;
    }
    emit_open(e, "static cnn_tensor tensors[] =");
    for (int l = 0; l <= last; l++) {
        const cnn_layer *L = &ir->layers[l];
        for (int p = 0; p < L->n_params; p++) {
            const cnn_param *T = &L->params[p];
            char name[96], dims[64] = "";
            snprintf(name, sizeof name, "%s_%s", L->name, T->suffix);
            for (int i = 0; i < T->rank; i++) {
                char d[16];
                snprintf(d, sizeof d, i ? ", %d" : "%d", T->dims[i]);
                strcat(dims, d);
            }
            emit(e, "{");
            e->depth++;
            emit(e, ".name = \"%s/%s\",", L->name, T->suffix);
            emit(e, ".rank = %d,", T->rank);
            emit(e, ".dims = {%s},", dims);
            emit(e, ".size = %ld,", T->size);
            emit(e, ".value = %s,", name);
            if (T->trainable) {
                emit(e, ".grad = %s_grad,", name);
                emit(e, ".slot = {%s_m, %s_v},", name, name);
            }
            emit(e, ".init = %s,", init_name(T->init));
            emit(e, ".fan_in = %d,", T->fan_in);
            emit(e, ".fan_out = %d,", T->fan_out);
            emit(e, ".l1 = %s,", gen_float(T->l1));
            emit(e, ".l2 = %s,", gen_float(T->l2));
            e->depth--;
            emit(e, "},");
        }
    }
    emit_close_semi(e);
}

/* The model, and the trainer's main() with it. */
static void emit_model(cnn_emitter *e, const plan *P)
{
    const cnn_ir *ir = P->ir;
    int last = ir->n_layers - 1, K = ir->n_classes;
    const cnn_train_cfg *c = &ir->train;
    static const char *const optim[] = {"CNN_OPTIM_SGD", "CNN_OPTIM_RMSPROP", "CNN_OPTIM_ADAM",
                                        "CNN_OPTIM_ADAMW"};
    static const char *const sched[] = {"CNN_SCHED_CONSTANT", "CNN_SCHED_STEP",
                                        "CNN_SCHED_EXPONENTIAL", "CNN_SCHED_COSINE"};
    emit_blank(e);
    emit_open(e, "static cnn_model model =");
    emit(e, ".name = \"%s\",", ir->name);
    emit(e, ".backend = \"compiled\",");
    emit(e, ".in_h = %d,", ir->input.h);
    emit(e, ".in_w = %d,", ir->input.w);
    emit(e, ".in_c = %d,", ir->input.c);
    emit(e, ".n_classes = %d,", K);
    emit(e, ".max_batch = %d,", P->opts->batch);
    if (ir->total_params > 0) {
        emit(e, ".n_tensors = (int)(sizeof tensors / sizeof tensors[0]),");
        emit(e, ".tensors = tensors,");
    }
    emit(e, ".output = %s,", P->out[last]);
    emit(e, "/* the train { } block of %s */", ir->source_name);
    emit(e, ".train = {.loss = %s, .optimizer = %s, .lr = %.17g,",
         c->loss == CNN_LOSS_NONE ? "CNN_LOSS_NONE"
         : c->loss == CNN_LOSS_MSE ? "CNN_LOSS_MSE" : "CNN_LOSS_CROSSENTROPY",
         optim[c->optimizer], c->lr);
    emit(e, "          .momentum = %.17g, .nesterov = %d, .rho = %.17g, .beta1 = %.17g,",
         c->momentum, c->nesterov, c->rho, c->beta1);
    emit(e, "          .beta2 = %.17g, .eps = %.17g, .weight_decay = %.17g,", c->beta2, c->eps,
         c->weight_decay);
    emit(e, "          .batch = %d, .epochs = %d, .validation = %.17g, .schedule = %s,", c->batch,
         c->epochs, c->validation, sched[c->schedule]);
    emit(e, "          .sched_every = %d, .sched_factor = %.17g, .sched_alpha = %.17g,",
         c->sched_every, c->sched_factor, c->sched_alpha);
    emit(e, "          .seed = %lluu},", (unsigned long long)c->seed);
    emit(e, ".ops = &ops,");
    emit_close_semi(e);

    emit_blank(e);
    emit(e, "/* The network, ready for libcnnrt. There is one instance: its buffers are static. */");
    emit_open(e, "cnn_model *%s_model(void)", ir->name);
    emit(e, "return &model;");
    emit_close(e);

    if (!P->opts->with_main)
        return;
    emit_blank(e);
    emit(e, "#ifndef CNNC_NO_MAIN");
    emit_open(e, "static cnn_model *make(void *ctx, int batch)");
    emit(e, "(void)ctx;");
    emit_open(e, "if (batch > %d)", P->opts->batch);
    emit(e, "fprintf(stderr, \"%s: error: compiled for batches of up to %d, asked for %%d \"",
         ir->name, P->opts->batch);
    emit(e, "                \"(regenerate with cnnc --batch N)\\n\", batch);");
    emit(e, "return NULL;");
    emit_close(e);
    emit(e, "return &model;");
    emit_close(e);
    emit_blank(e);
    emit(e, "/* The same command line as `cnnc run %s ...`. */", ir->source_name);
    emit_open(e, "int main(int argc, char **argv)");
    emit(e, "return cnn_cli_main(argc, argv, make, NULL, &model.train);");
    emit_close(e);
    emit(e, "#endif");
}

int cnn_generate_c(FILE *out, const cnn_ir *ir, const cnn_source *src, const cnn_gen_opts *opts)
{
    int n = ir->n_layers;
    char (*outn)[64] = calloc((size_t)n, sizeof *outn);
    char (*doutn)[64] = calloc((size_t)n, sizeof *doutn);
    char (*dinn)[CNN_MAX_INPUTS][64] = calloc((size_t)n, sizeof *dinn);
    int *flags = calloc((size_t)n, sizeof *flags), *dout_sums = calloc((size_t)n, sizeof *dout_sums);
    int *has_backward = calloc((size_t)n, sizeof(int)), *has_grads = calloc((size_t)n, sizeof(int));
    if (!outn || !doutn || !dinn || !flags || !dout_sums || !has_backward || !has_grads) {
        free(outn), free(doutn), free(dinn), free(flags), free(dout_sums), free(has_backward),
            free(has_grads);
        return -1;
    }
    int has_loss = ir->train.loss != CNN_LOSS_NONE;
    for (int l = 0; l < n; l++) {
        const cnn_layer *L = &ir->layers[l];
        flags[l] = L->desc->gen_flags(L);
        /* Where each input's gradient goes: its producer's dout, unless other layers read the
         * tensor too; then a buffer of this layer's own, summed into the producer's. */
        for (int k = 0; k < L->n_inputs; k++)
            if (cnn_grad_edge_own(ir, L, k))
                snprintf(dinn[l][k], sizeof dinn[l][k], "%s_din%d", L->name, k);
            else if (cnn_grad_into(ir, L, k))
                snprintf(dinn[l][k], sizeof dinn[l][k], "%s", doutn[L->inputs[k]]);
        if (flags[l] & GEN_ALIAS) {
            snprintf(outn[l], sizeof outn[l], "%s", L->inputs[0] >= 0 ? outn[L->inputs[0]] : "x");
            snprintf(doutn[l], sizeof doutn[l], "%s", dinn[l][0]);
        } else {
            snprintf(outn[l], sizeof outn[l], "%s_out", L->name);
            /* A gradient reaches the output only if this layer or one before it learns;
             * none at all without a loss. */
            if (has_loss && L->learns)
                snprintf(doutn[l], sizeof doutn[l], "%s_dout", L->name);
        }
        dout_sums[l] = doutn[l][0] && L->n_readers > 1;
    }
    plan P = {.ir = ir, .src = src, .opts = opts, .out = outn, .dout = doutn, .din = dinn,
              .flags = flags, .dout_sums = dout_sums, .has_backward = has_backward,
              .has_grads = has_grads};
    cnn_emitter e = {.out = out};
    emit_header(&e, &P);
    for (int l = 0; l < n; l++)
        emit_layer(&e, &P, l);
    emit_dout_sums(&e, &P);
    emit_driver(&e, &P);
    free(outn), free(doutn), free(dinn), free(flags), free(dout_sums), free(has_backward),
        free(has_grads);
    return e.failed || ferror(out) ? -1 : 0;
}

int cnn_generate_h(FILE *out, const cnn_ir *ir, const cnn_gen_opts *opts)
{
    char guard[96];
    size_t k = 0;
    for (const char *p = ir->name; *p && k + 3 < sizeof guard; p++)
        guard[k++] = (char)toupper((unsigned char)*p);
    guard[k] = '\0';
    cnn_emitter e = {.out = out};
    emit(&e, "/* %s.h: the public symbols of the network \"%s\", compiled by cnnc %s from %s. */",
         ir->name, ir->name, opts->version, ir->source_name);
    emit(&e, "#ifndef %s_H", guard);
    emit(&e, "#define %s_H", guard);
    emit_blank(&e);
    emit(&e, "#include \"cnnrt.h\"");
    emit_blank(&e);
    emit(&e, "#define %s_BATCH %d     /* largest batch a forward pass takes */", guard, opts->batch);
    emit(&e, "#define %s_INPUT_H %d", guard, ir->input.h);
    emit(&e, "#define %s_INPUT_W %d", guard, ir->input.w);
    emit(&e, "#define %s_INPUT_C %d", guard, ir->input.c);
    emit(&e, "#define %s_CLASSES %d", guard, ir->n_classes);
    emit_blank(&e);
    emit(&e, "/* The network, ready for libcnnrt (one instance: its buffers are static). */");
    emit(&e, "cnn_model *%s_model(void);", ir->name);
    emit_blank(&e);
    emit(&e, "#endif");
    return e.failed || ferror(out) ? -1 : 0;
}
