/* `cnnc export`: the deploy network as one standalone C99 file and its header (export.h).
 * This file lays out the file (the header comment and plan, the weights, one function per
 * operation, the API); the arithmetic of each operation, float and int8, is docs/deploy.md. */
#include "export.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "codegen.h"
#include "sizes.h"
#include "summary.h"

typedef struct xp {
    cnn_emitter *e;
    const cnn_deploy *dn;
    const cnn_source *src;
    const cnn_export_opts *o;
    const cnn_export_sizes *s;
    const char *name; /* the network's: every symbol's prefix */
    char up[80];      /* the same in capitals: the macros' prefix */
    int int8;
} xp;

static void xp_init(xp *x, cnn_emitter *e, const cnn_deploy *dn, const cnn_export_opts *o,
                    const cnn_export_sizes *s)
{
    memset(x, 0, sizeof *x);
    x->e = e;
    x->dn = dn;
    x->o = o;
    x->s = s;
    x->name = dn->ir->name;
    x->int8 = o->quant != NULL;
    size_t i = 0;
    for (; x->name[i] && i + 1 < sizeof x->up; i++)
        x->up[i] = (char)toupper((unsigned char)x->name[i]);
    x->up[i] = '\0';
}

static int is_last(const cnn_deploy *dn, int i)
{
    return i == dn->n_ops - 1;
}

/* ---- sizes ---- */

static int64_t op_const_bytes(const cnn_deploy *dn, int i, int int8)
{
    const cnn_deploy_op *op = &dn->ops[i];
    int64_t U = op->L->out.c;
    if (op->kind == CNN_OP_POOL || (!int8 && (op->kind == CNN_OP_ADD || op->kind == CNN_OP_CONCAT)))
        return 0;
    if (op->kind == CNN_OP_CONCAT) /* each input's mult, shift */
        return 5 * op->n_in;
    if (op->kind == CNN_OP_ADD) /* each input's mult, shift; the sum's; the table */
        return 5 * (op->n_in + 1) + (cnn_quant_act_is_table(op->act) ? 256 : 0);
    if (op->kind == CNN_OP_ACTIVATION) /* int8: the table */
        return int8 ? 256 : 0;
    if (op->kind == CNN_OP_AFFINE) /* float: scale, shift; int8: weight, bias, mult, shift */
        return int8 ? U * (1 + 4 + 4 + 1) : U * 8;
    if (!int8)
        return 4 * (op->kernel_size + (op->has_bias ? U : 0) + (op->bn ? 2 * U : 0));
    int64_t b = op->kernel_size + 4 * U; /* kernel, bias */
    if (is_last(dn, i))
        b += 4 * U; /* dequant */
    else
        b += 5 * U; /* mult, shift */
    if (cnn_quant_act_is_table(op->act))
        b += 256;
    if (op->bn)
        b += U * 10;
    return b;
}

static int names_width(const cnn_export_opts *o, int k)
{
    int w = 0;
    for (int i = 0; o->class_names && i < k; i++)
        if ((int)strlen(o->class_names[i]) > w)
            w = (int)strlen(o->class_names[i]);
    return w + 1;
}

int cnn_export_sizes_of(cnn_deploy *dn, const cnn_export_opts *o, cnn_export_sizes *s,
                        cnn_arena *arena)
{
    int int8 = o->quant != NULL;
    memset(s, 0, sizeof *s);
    s->op_const = cnn_arena_alloc(arena, sizeof(int64_t) * (size_t)(dn->n_ops + 1));
    if (!s->op_const || (s->arena_bytes = cnn_deploy_plan(dn, int8 ? 1 : 4)) < 0)
        return -1;
    for (int i = 0; i < dn->n_ops; i++)
        s->const_bytes += s->op_const[i] = op_const_bytes(dn, i, int8);
    if (o->class_names)
        s->const_bytes += (int64_t)dn->ir->n_classes * names_width(o, dn->ir->n_classes);
    return 0;
}

/* ---- what an op is, in words ---- */

static void op_title(const cnn_deploy_op *op, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int k = 0; k < op->n_layers && n + 1 < cap; k++) {
        const cnn_layer *L = op->layers[k];
        if (L->type == CNN_LAYER_DROPOUT)
            continue;
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? " + " : "", L->name);
    }
}

/* The plan as text; -1 if a write failed (every one is checked). */
static int plan_lines(xp *x, FILE *f, const char *lead)
{
    int bad = 0;
    const cnn_deploy *dn = x->dn;
    const char *elem = x->int8 ? "int8" : "float";
    bad |= fprintf(f, "%s%-44s %-16s %12s %12s\n", lead, "operation", "output",
                   "flash bytes", "arena bytes") < 0;
    for (int i = 0; i < dn->n_ops; i++) {
        const cnn_deploy_op *op = &dn->ops[i];
        const cnn_deploy_tensor *t = &dn->tensors[op->out];
        char title[160], shape[48], ram[32];
        op_title(op, title, sizeof title);
        cnn_shape_text(t->shape, shape, sizeof shape);
        if (t->external)
            snprintf(ram, sizeof ram, "(caller's)");
        else
            snprintf(ram, sizeof ram, "%" PRId64, t->elems * (x->int8 ? 1 : 4));
        bad |= fprintf(f, "%s%-44s %-16s %12" PRId64 " %12s\n", lead, title, shape,
                       x->s->op_const[i], ram) < 0;
    }
    if (x->o->class_names)
        bad |= fprintf(f, "%s%-44s %-16s %12" PRId64 "\n", lead, "class names", "",
                       (int64_t)dn->ir->n_classes * names_width(x->o, dn->ir->n_classes)) < 0;
    char in_shape[48];
    cnn_shape_text(dn->ir->input, in_shape, sizeof in_shape);
    bad |= fprintf(f, "%sinput %s (%s) is in the arena too; tensors alive at once never share "
                      "bytes.\n", lead, in_shape, elem) < 0;
    bad |= fprintf(f, "%stotal: %" PRId64 " bytes of constants (flash, besides the code), %" PRId64
                      " bytes of arena (RAM: %s_WORKSPACE_BYTES)\n",
                   lead, x->s->const_bytes, x->s->arena_bytes, x->up) < 0;
    return bad ? -1 : 0;
}

int cnn_export_plan_print(FILE *out, const cnn_deploy *dn, const cnn_export_opts *o,
                          const cnn_export_sizes *s)
{
    xp x;
    cnn_emitter e = {out, 0, 0};
    xp_init(&x, &e, dn, o, s);
    int bad = fprintf(out, "%s: %s export, %d operations\n", dn->ir->name,
                      x.int8 ? "int8" : "float", dn->n_ops) < 0;
    return plan_lines(&x, out, "  ") || bad ? -1 : 0;
}

/* " - 5" or " + 128": a zero point taken off, without "- -128". */
static const char *minus(int zero)
{
    static char ring[4][16];
    static int next;
    char *b = ring[next++ % 4];
    snprintf(b, sizeof ring[0], zero < 0 ? " + %d" : " - %d", zero < 0 ? -zero : zero);
    return b;
}

/* ---- constant arrays ---- */

static void emit_floats(xp *x, const char *what, const char *sym, const float *v, int64_t n,
                        const char *comment)
{
    cnn_emitter *e = x->e;
    emit(e, "/* %s */", comment);
    emit_open(e, "static const float %s_%s_%s[%" PRId64 "] =", x->name, what, sym, n);
    for (int64_t i = 0; i < n; i += 8) {
        char line[512];
        size_t len = 0;
        for (int64_t j = i; j < n && j < i + 8; j++)
            len += (size_t)snprintf(line + len, sizeof line - len, "%s%s", j > i ? ", " : "",
                                    gen_float(v[j]));
        emit(e, "%s,", line);
    }
    emit_close_semi(e);
}

typedef enum { I8, I32, U8 } int_kind;

static void emit_ints(xp *x, const char *what, const char *sym, int_kind k, const void *v,
                      int64_t n, int stride, const char *comment)
{
    cnn_emitter *e = x->e;
    static const char *const types[] = {"int8_t", "int32_t", "uint8_t"};
    emit(e, "/* %s */", comment);
    emit_open(e, "static const %s %s_%s_%s[%" PRId64 "] =", types[k], x->name, what, sym, n);
    int per = k == I32 ? 8 : 16;
    for (int64_t i = 0; i < n; i += per) {
        char line[512];
        size_t len = 0;
        for (int64_t j = i; j < n && j < i + per; j++) {
            long val = k == I8 ? ((const int8_t *)v)[j * stride]
                       : k == U8 ? ((const uint8_t *)v)[j * stride]
                                 : (long)((const int32_t *)v)[j * stride];
            len += (size_t)snprintf(line + len, sizeof line - len, "%s%ld", j > i ? ", " : "", val);
        }
        emit(e, "%s,", line);
    }
    emit_close_semi(e);
}

static void emit_requant(xp *x, const char *what, const char *sym, const cnn_requant *rq, int n)
{
    int32_t *mult = malloc(sizeof(int32_t) * (size_t)n);
    uint8_t *shift = malloc((size_t)n);
    if (!mult || !shift) {
        x->e->failed = 1;
        free(mult), free(shift);
        return;
    }
    for (int i = 0; i < n; i++)
        mult[i] = rq[i].mult, shift[i] = (uint8_t)rq[i].shift;
    char name[64];
    snprintf(name, sizeof name, sym[0] ? "%s_mult" : "mult", sym);
    emit_ints(x, what, name, I32, mult, n, 1, "requantization: real multiplier = mult * 2^-shift");
    snprintf(name, sizeof name, sym[0] ? "%s_shift" : "shift", sym);
    emit_ints(x, what, name, U8, shift, n, 1, "and its shift");
    free(mult), free(shift);
}

/* ---- the epilogue: each output value from its accumulator (float: acc, int8: acc32) ---- */

/* Float: v = act(acc[f]); then the batchnorm; then into the destination `dst` (a store, or
 * the pool's reduction). */
static void emit_float_value_at(xp *x, const cnn_deploy_op *op, const char *src, const char *ch);

static void emit_float_value(xp *x, const cnn_deploy_op *op, const char *src)
{
    emit_float_value_at(x, op, src, "f");
}

/* The same for channel `ch` (a C expression). */
static void emit_float_value_at(xp *x, const cnn_deploy_op *op, const char *src, const char *ch)
{
    cnn_emitter *e = x->e;
    const cnn_layer *L = op->L;
    emit(e, "float v = %s;", src);
    switch (op->act) {
    case CNN_ACT_RELU: emit(e, "v = v > 0.0f ? v : 0.0f;"); break;
    case CNN_ACT_LEAKY_RELU: emit(e, "v = v > 0.0f ? v : %s * v;", gen_float(op->alpha)); break;
    case CNN_ACT_SIGMOID: emit(e, "v = 1.0f / (1.0f + expf(-v));"); break;
    case CNN_ACT_TANH: emit(e, "v = tanhf(v);"); break;
    case CNN_ACT_LINEAR:
    case CNN_ACT_SOFTMAX: break;
    }
    if (op->bn)
        emit(e, "v = v * %s_%s_scale[%s] + %s_%s_shift[%s]; /* %s */", x->name, L->name, ch,
             x->name, L->name, ch, op->bn->name);
}

/* Int8: q from the int32 acc of channel f, through the table or the clamp, then the
 * batchnorm's affine. */
static void emit_int8_value_at(xp *x, const cnn_deploy_op *op, const cnn_quant_op *Q,
                               const char *acc, const char *f);

static void emit_int8_value(xp *x, const cnn_deploy_op *op, const cnn_quant_op *Q, const char *acc)
{
    emit_int8_value_at(x, op, Q, acc, "f");
}

/* The same for channel `f` (a C expression). */
static void emit_int8_value_at(xp *x, const cnn_deploy_op *op, const cnn_quant_op *Q,
                               const char *acc, const char *f)
{
    cnn_emitter *e = x->e;
    const char *n = x->name, *ln = op->L->name;
    emit(e, "int32_t q = %s_requant(%s, %s_%s_mult[%s], %s_%s_shift[%s])%s;", n, acc, n, ln, f,
         n, ln, f, minus(-Q->pre.zero));
    if (Q->table) {
        emit(e, "q = %s_%s_table[%s_clamp(q, -128) + 128]; /* %s */", n, ln, n,
             cnn_act_name(op->act));
    } else
        emit(e, "q = %s_clamp(q, %d);%s", n, Q->lo, op->act == CNN_ACT_RELU ? " /* relu */" : "");
    if (op->bn)
        emit(e, "q = %s_clamp(%s_requant((q%s) * %s_%s_bn_w[%s] + %s_%s_bn_b[%s], "
                "%s_%s_bn_mult[%s], %s_%s_bn_shift[%s])%s, -128); /* %s */",
             n, n, minus(Q->act.zero), n, ln, f, n, ln, f, n, ln, f, n, ln, f,
             minus(-Q->out.zero), op->bn->name);
}

/* ---- conv ---- */

typedef struct conv_geo {
    int H, W, C, OH, OW, F, KH, KW, SH, SW, PT, PL, padded;
} conv_geo;

static conv_geo geo_of(const cnn_deploy_op *op)
{
    const cnn_layer *L = op->L;
    conv_geo g = {L->in.h, L->in.w, L->in.c, L->out.h, L->out.w, L->out.c, L->kh, L->kw,
                  L->sh, L->sw, L->pad_top, L->pad_left, 0};
    g.padded = L->pad_same && ((int64_t)(g.OH - 1) * g.SH + g.KH > g.H ||
                               (int64_t)(g.OW - 1) * g.SW + g.KW > g.W);
    return g;
}

/* The first input element under output pixel (oy, ox), kernel row ky, for an unpadded conv:
 * the KW*C elements from there on are the window's row ky. */
static void emit_row_start(cnn_emitter *e, const conv_geo *g, const char *type)
{
    char row[96];
    snprintf(row, sizeof row, "(%s + ky) * %d + %s", gen_times("oy", g->SH), g->W,
             gen_times("ox", g->SW));
    emit(e, "const %s *p = in + %s;", type, g->C == 1 ? row : gen_times(row, g->C));
}

/* Float: acc[F] of output pixel (oy, ox). Bias first, then the taps in (ky, kx, c) order, as
 * the reference adds them. */
/* A window of at most this many values makes an int8 dot product too short to pay for its
 * final sum across the vector: such convs run with the channels innermost instead, their
 * kernel stored [kh][kw][in][out] as the float one. */
#define INT8_DIRECT_MAX_TAPS 32

static int int8_channels_inner(const cnn_deploy_op *op)
{
    return (long)op->L->kh * op->L->kw * op->L->in.c <= INT8_DIRECT_MAX_TAPS;
}

/* acc[F] of output pixel (oy, ox), the channels innermost: float, or int32 from int8 with the
 * input's zero point taken off. The bias first, then the taps in (ky, kx, c) order, as the
 * reference adds them. */
static void emit_conv_pixel_channels(xp *x, const cnn_deploy_op *op, const cnn_quant_op *Q,
                                     const conv_geo *g)
{
    cnn_emitter *e = x->e;
    const char *n = x->name, *ln = op->L->name, *type = Q ? "int8_t" : "float";
    const char *acc = Q ? "int32_t" : "float";
    char value[64];
    snprintf(value, sizeof value, Q ? "(p[%%s]%s)" : "p[%%s]", Q ? minus(Q->in.zero) : "");
    emit(e, "%s acc[%d];", acc, g->F);
    emit(e, "for (int f = 0; f < %d; f++)", g->F);
    if (Q || op->has_bias)
        emit(e, "    acc[f] = %s_%s_bias[f];", n, ln);
    else
        emit(e, "    acc[f] = 0.0f;");
    emit_open(e, "for (int ky = 0; ky < %d; ky++)", g->KH);
    char v[64];
    if (!g->padded) {
        emit_row_start(e, g, type);
        emit(e, "const %s *k = %s_%s_kernel + ky * %d; /* [kx][c][f] of row ky */", type, n, ln,
             g->KW * g->C * g->F);
        emit_for(e, "for (int i = 0; i < %d; i++) /* kx, c */", g->KW * g->C);
        emit_for(e, "for (int f = 0; f < %d; f++)", g->F);
        snprintf(v, sizeof v, value, "i");
        emit(e, "acc[f] += %s * k[i * %d + f];", v, g->F);
        emit_end_for(e, 2);
    } else {
        emit(e, "int iy = %s + ky - %d;", gen_times("oy", g->SH), g->PT);
        emit(e, "if (iy < 0 || iy >= %d)", g->H);
        emit(e, "    continue; /* zero padding */");
        emit_open(e, "for (int kx = 0; kx < %d; kx++)", g->KW);
        emit(e, "int ix = %s + kx - %d;", gen_times("ox", g->SW), g->PL);
        emit(e, "if (ix < 0 || ix >= %d)", g->W);
        emit(e, "    continue;");
        emit(e, "const %s *p = in + (iy * %d + ix) * %d;", type, g->W, g->C);
        emit(e, "const %s *k = %s_%s_kernel + (ky * %d + kx) * %d;", type, n, ln, g->KW,
             g->C * g->F);
        emit_for(e, "for (int c = 0; c < %d; c++)", g->C);
        emit_for(e, "for (int f = 0; f < %d; f++)", g->F);
        snprintf(v, sizeof v, value, "c");
        emit(e, "acc[f] += %s * k[c * %d + f];", v, g->F);
        emit_end_for(e, 2);
        emit_close(e);
    }
    emit_close(e);
}

/* Filters computed together by the int8 conv: each window byte loaded serves this many. */
#define INT8_FILTERS 4

/* Where the int8 value of channel ch goes (q, or with max_first the raw accumulator acc). */
static void emit_int8_sink(xp *x, const cnn_deploy_op *op, const char *acc, const char *ch,
                           int max_first)
{
    cnn_emitter *e = x->e;
    if (max_first) {
        emit(e, "pooled[%s] = %s > pooled[%s] ? %s : pooled[%s];", ch, acc, ch, acc, ch);
        return;
    }
    emit_int8_value_at(x, op, &x->o->quant->op[op - x->dn->ops], acc, ch);
    if (!op->pool)
        emit(e, "o[%s] = (int8_t)q;", ch);
    else if (op->pool->pool == CNN_POOL_MAX)
        emit(e, "pooled[%s] = q > pooled[%s] ? q : pooled[%s];", ch, ch, ch);
    else
        emit(e, "pooled[%s] += q;", ch);
}

/* Int8, a window of more than INT8_DIRECT_MAX_TAPS values: the window under output pixel
 * (oy, ox) gathered as unsigned bytes q + 128 (the padding at the input's zero point), then
 * one dot product per filter, INT8_FILTERS filters at a time, with the kernel stored
 * [out][kh][kw][in] so that both run along memory; the input's zero point is in bias_u8. */
static void emit_conv_window_int8(xp *x, const cnn_deploy_op *op, const cnn_quant_op *Q,
                                  const conv_geo *g, int max_first)
{
    cnn_emitter *e = x->e;
    const char *n = x->name, *ln = op->L->name;
    int window = g->KH * g->KW * g->C, row = g->KW * g->C;
    emit(e, "uint8_t win[%d]; /* the window, q + 128 */", window);
    if (!g->padded) {
        emit_open(e, "for (int ky = 0; ky < %d; ky++)", g->KH);
        emit_row_start(e, g, "int8_t");
        emit(e, "for (int i = 0; i < %d; i++)", row);
        emit(e, "    win[ky * %d + i] = (uint8_t)(p[i] + 128);", row);
        emit_close(e);
    } else {
        emit_for(e, "for (int ky = 0; ky < %d; ky++)", g->KH);
        emit_open(e, "for (int kx = 0; kx < %d; kx++)", g->KW);
        emit(e, "int iy = %s + ky - %d, ix = %s + kx - %d;", gen_times("oy", g->SH), g->PT,
             gen_times("ox", g->SW), g->PL);
        emit(e, "uint8_t *w = win + (ky * %d + kx) * %d;", g->KW, g->C);
        emit(e, "if (iy < 0 || iy >= %d || ix < 0 || ix >= %d)", g->H, g->W);
        emit(e, "    for (int c = 0; c < %d; c++)", g->C);
        emit(e, "        w[c] = %d; /* zero padding: the input's zero point */", Q->in.zero + 128);
        emit(e, "else");
        emit(e, "    for (int c = 0; c < %d; c++)", g->C);
        emit(e, "        w[c] = (uint8_t)(in[(iy * %d + ix) * %d + c] + 128);", g->W, g->C);
        emit_close(e);
        emit_end_for(e, 1);
    }
    int full = g->F / INT8_FILTERS * INT8_FILTERS;
    if (full) {
        emit_open(e, "for (int f = 0; f < %d; f += %d)", full, INT8_FILTERS);
        emit(e, "const int8_t *k0 = %s_%s_kernel + f * %d, *k1 = k0 + %d, *k2 = k1 + %d, "
                "*k3 = k2 + %d;", n, ln, window, window, window, window);
        emit(e, "int32_t a0 = %s_%s_bias_u8[f], a1 = %s_%s_bias_u8[f + 1], "
                "a2 = %s_%s_bias_u8[f + 2], a3 = %s_%s_bias_u8[f + 3];", n, ln, n, ln, n, ln, n, ln);
        emit_open(e, "for (int i = 0; i < %d; i++)", window);
        emit(e, "int32_t v = win[i];");
        emit(e, "a0 += v * k0[i];");
        emit(e, "a1 += v * k1[i];");
        emit(e, "a2 += v * k2[i];");
        emit(e, "a3 += v * k3[i];");
        emit_close(e);
        for (int j = 0; j < INT8_FILTERS; j++) {
            char acc[8], ch[16];
            snprintf(acc, sizeof acc, "a%d", j);
            snprintf(ch, sizeof ch, j ? "f + %d" : "f", j);
            if (!max_first) /* each channel's q in its own block */
                emit_block(e);
            emit_int8_sink(x, op, acc, ch, max_first);
            if (!max_first)
                emit_close(e);
        }
        emit_close(e);
    }
    if (full < g->F) {
        emit_open(e, "for (int f = %d; f < %d; f++)", full, g->F);
        emit(e, "const int8_t *k = %s_%s_kernel + f * %d;", n, ln, window);
        emit(e, "int32_t acc = %s_%s_bias_u8[f];", n, ln);
        emit(e, "for (int i = 0; i < %d; i++)", window);
        emit(e, "    acc += win[i] * k[i];");
        emit_int8_sink(x, op, "acc", "f", max_first);
        emit_close(e);
    }
}

static void emit_op_comment(xp *x, int i)
{
    cnn_emitter *e = x->e;
    const cnn_deploy *dn = x->dn;
    const cnn_deploy_op *op = &dn->ops[i];
    char title[160], in[400], out[48];
    op_title(op, title, sizeof title);
    size_t n = 0;
    for (int k = 0; k < op->n_in; k++) {
        char one[48];
        cnn_shape_text(dn->tensors[op->in[k]].shape, one, sizeof one);
        n += (size_t)snprintf(in + n, sizeof in - n, "%s%s", k ? (op->kind == CNN_OP_ADD ? " + " : ", ") : "", one);
    }
    cnn_shape_text(dn->tensors[op->out].shape, out, sizeof out);
    emit_blank(e);
    emit(e, "/* ==== %s", title);
    int shown = -1;
    for (int k = 0; k < op->n_layers; k++) {
        const cnn_layer *L = op->layers[k];
        if (L->loc.line == shown)
            continue;
        shown = L->loc.line;
        size_t len;
        const char *line = cnn_source_line(x->src, L->loc.line, &len);
        emit(e, " *      %s line %d: %.*s", dn->ir->source_name, L->loc.line,
             line ? (int)len : 0, line ? line : "");
    }
    const char *elem = x->int8 ? "int8" : "float";
    const cnn_deploy_tensor *t = &dn->tensors[op->out];
    if (op->pool) {
        char mid[48];
        cnn_shape_text(op->conv_out, mid, sizeof mid);
        emit(e, " *      %s -> %s -> %s (the pool fused: the %s output is never stored)", in,
             mid, out, mid);
    } else if (op->kind == CNN_OP_CONCAT)
        emit(e, " *      %s -> %s (joined along the channels)", in, out);
    else
        emit(e, " *      %s -> %s", in, out);
    if (t->external)
        emit(e, " *      output: the caller's probabilities; %" PRId64 " bytes of constants",
             x->s->op_const[i]);
    else
        emit(e, " *      output: %" PRId64 " bytes of %s at arena offset %" PRId64
                "; %" PRId64 " bytes of constants",
             t->elems * (x->int8 ? 1 : 4), elem, t->offset, x->s->op_const[i]);
    if (op->folded)
        emit(e, " *      the batchnorm is folded into the kernel and bias (the layer is linear)");
    for (int k = 0; k < op->n_layers; k++)
        if (op->layers[k]->type == CNN_LAYER_DROPOUT)
            emit(e, " *      %s does nothing in inference", op->layers[k]->name);
    emit(e, " */");
}

/* The constants of op i. */
static void emit_op_constants(xp *x, int i)
{
    const cnn_deploy_op *op = &x->dn->ops[i];
    const cnn_layer *L = op->L;
    const char *ln = L->name;
    int U = L->out.c;
    char what[160];
    if (op->kind == CNN_OP_POOL || (op->kind == CNN_OP_ACTIVATION && !x->int8))
        return;
    if (op->kind == CNN_OP_ACTIVATION) {
        emit_ints(x, ln, "table", I8, x->o->quant->op[i].lut, 256, 1,
                  "the activation of every input value, from q + 128");
        return;
    }
    if (op->kind == CNN_OP_ADD || op->kind == CNN_OP_CONCAT) {
        if (!x->int8)
            return;
        const cnn_quant_op *Q = &x->o->quant->op[i];
        emit_requant(x, ln, "in", Q->in_rq, op->n_in);
        if (op->kind == CNN_OP_ADD) {
            emit_requant(x, ln, "", Q->rq, 1);
            if (Q->table)
                emit_ints(x, ln, "table", I8, Q->lut, 256, 1, "the activation, from q + 128");
        }
        return;
    }
    if (!x->int8) {
        if (op->kind == CNN_OP_AFFINE) {
            emit_floats(x, ln, "scale", op->scale, U, "gamma / sqrt(moving_variance + epsilon)");
            emit_floats(x, ln, "shift", op->shift, U, "beta - moving_mean * scale");
            return;
        }
        if (L->type == CNN_LAYER_CONV)
            snprintf(what, sizeof what, "kernel %dx%dx%dx%d [kh][kw][in][out]%s", L->kh, L->kw,
                     L->in.c, U, op->folded ? ", the batchnorm folded in" : ": the checkpoint's");
        else if (L->type == CNN_LAYER_DWCONV)
            snprintf(what, sizeof what, "kernel %dx%dx%dx%d [kh][kw][in][multiplier]%s", L->kh,
                     L->kw, L->in.c, L->multiplier,
                     op->folded ? ", the batchnorm folded in" : ": the checkpoint's");
        else
            snprintf(what, sizeof what, "kernel %dx%d [in][out]%s", L->in.c, U,
                     op->folded ? ", the batchnorm folded in" : ": the checkpoint's");
        emit_floats(x, ln, "kernel", op->kernel, op->kernel_size, what);
        if (op->has_bias)
            emit_floats(x, ln, "bias", op->bias, U, op->folded ? "bias, the batchnorm folded in"
                                                                : "bias: the checkpoint's");
        if (op->bn) {
            emit_floats(x, ln, "scale", op->scale, U, "the batchnorm: gamma / sqrt(var + eps)");
            emit_floats(x, ln, "shift", op->shift, U, "and beta - mean * scale");
        }
        return;
    }
    const cnn_quant_op *Q = &x->o->quant->op[i];
    if (op->kind == CNN_OP_AFFINE) {
        emit_ints(x, ln, "w", I8, Q->kernel, U, 1, "the batchnorm's scale, int8 per channel");
        emit_ints(x, ln, "b", I32, Q->bias, U, 1, "its shift in units of the input scale * w's");
        emit_requant(x, ln, "", Q->rq, U);
        return;
    }
    long rows = op->kernel_size / U;
    int bias_u8 = 1; /* the dot products read q + 128 */
    if (L->type == CNN_LAYER_DWCONV || (L->type == CNN_LAYER_CONV && int8_channels_inner(op))) {
        int8_t *t = malloc((size_t)op->kernel_size);
        if (!t) {
            x->e->failed = 1;
            return;
        }
        for (long r = 0; r < rows; r++)
            for (int f = 0; f < U; f++)
                t[r * U + f] = Q->kernel[f * rows + r];
        if (L->type == CNN_LAYER_DWCONV)
            snprintf(what, sizeof what, "kernel, int8 [kh][kw][out] = %dx%dx%d (out = in * %d + "
                                        "m), one scale per output channel", L->kh, L->kw, U,
                     L->multiplier);
        else
            snprintf(what, sizeof what, "kernel, int8 [kh][kw][in][out] = %dx%dx%dx%d, one "
                                        "scale per output channel", L->kh, L->kw, L->in.c, U);
        emit_ints(x, ln, "kernel", I8, t, op->kernel_size, 1, what);
        free(t);
        bias_u8 = 0;
    } else {
        if (L->type == CNN_LAYER_CONV)
            snprintf(what, sizeof what, "kernel, int8 [out][kh][kw][in] = %dx%dx%dx%d, one "
                                        "scale per output channel", U, L->kh, L->kw, L->in.c);
        else
            snprintf(what, sizeof what, "kernel, int8 [out][in] = %dx%ld, one scale per output",
                     U, rows);
        emit_ints(x, ln, "kernel", I8, Q->kernel, op->kernel_size, 1, what);
    }
    if (!bias_u8)
        emit_ints(x, ln, "bias", I32, Q->bias, U, 1,
                  "bias / (input scale * the channel's weight scale)");
    else
        emit_ints(x, ln, "bias_u8", I32, Q->bias_u8, U, 1,
                  "bias / (input scale * the channel's weight scale), less (input zero point + "
                  "128) * the channel's sum of weights: the inputs are read as q + 128");
    if (is_last(x->dn, i))
        emit_floats(x, ln, "dequant", Q->dequant, U, "logit = acc * dequant: the softmax is float");
    else
        emit_requant(x, ln, "", Q->rq, U);
    if (Q->table)
        emit_ints(x, ln, "table", I8, Q->lut, 256, 1, "the activation, from q + 128");
    if (op->bn) {
        emit_ints(x, ln, "bn_w", I8, Q->bn_w, U, 1, "the batchnorm after the activation");
        emit_ints(x, ln, "bn_b", I32, Q->bn_b, U, 1, "its shift");
        emit_requant(x, ln, "bn", Q->bn_rq, U);
    }
}

/* Where the value v (float) or q (int8) of channel f goes: stored at o[f], or into the pool's
 * reduction. */
static void emit_value_sink(xp *x, const cnn_deploy_op *op, int pooled)
{
    cnn_emitter *e = x->e;
    const char *v = x->int8 ? "q" : "v";
    if (!pooled)
        emit(e, "o[f] = %s%s;", x->int8 ? "(int8_t)" : "", v);
    else if (op->pool->pool == CNN_POOL_MAX)
        emit(e, "pooled[f] = %s > pooled[f] ? %s : pooled[f];", v, v);
    else
        emit(e, "pooled[f] += %s;", v);
}

static void emit_pool_store(xp *x, const cnn_layer *P, const char *o)
{
    cnn_emitter *e = x->e;
    int K = P->kh * P->kw;
    emit(e, "for (int f = 0; f < %d; f++)", P->out.c);
    if (P->pool == CNN_POOL_MAX)
        emit(e, "    %s[f] = %spooled[f];", o, x->int8 ? "(int8_t)" : "");
    else if (!x->int8)
        emit(e, "    %s[f] = pooled[f] / %s;", o, gen_float(K));
    else /* the mean, rounded half away from zero, at the input's scale */
        emit(e, "    %s[f] = (int8_t)((pooled[f] >= 0 ? pooled[f] + %d : pooled[f] - %d) / %d);",
             o, K / 2, K / 2, K);
}


/* Pixels computed together by the float conv: each kernel value loaded is used this many
 * times, and each pixel's accumulators for a block of channels stay in registers. */
#define CONV_PIXELS 4
/* Channels per block: 16 floats, two AVX vectors or one AVX-512 vector per pixel. */
#define CONV_BLOCK 16

/* One block of `width` channels from fb of the CONV_PIXELS pixels at p0.., then each valid
 * pixel's values into its sink. */
static void emit_conv_block(xp *x, const cnn_deploy_op *op, const conv_geo *g, int width,
                            const char *valid_fmt)
{
    cnn_emitter *e = x->e;
    const char *n = x->name, *ln = op->L->name;
    char decl[256] = "", init[256] = "";
    for (int t = 0; t < CONV_PIXELS; t++) {
        size_t d = strlen(decl), k = strlen(init);
        snprintf(decl + d, sizeof decl - d, "%sa%d[%d]", t ? ", " : "", t, width);
        snprintf(init + k, sizeof init - k, "a%d[f] = ", t);
    }
    emit(e, "float %s;", decl);
    emit(e, "for (int f = 0; f < %d; f++)", width);
    if (op->has_bias)
        emit(e, "    %s%s_%s_bias[fb + f];", init, n, ln);
    else
        emit(e, "    %s0.0f;", init);
    emit_open(e, "for (int ky = 0; ky < %d; ky++)", g->KH);
    emit(e, "const float *k = %s_%s_kernel + ky * %d + fb; /* [kx][c][f] of row ky */", n, ln,
         g->KW * g->C * g->F);
    for (int t = 0; t < CONV_PIXELS; t++)
        emit(e, "const float *r%d = p%d + ky * %d;", t, t, g->W * g->C);
    emit(e, "/* i: kx and c */");
    emit_open(e, "for (int i = 0; i < %d; i++)", g->KW * g->C);
    emit(e, "float x0 = r0[i], x1 = r1[i], x2 = r2[i], x3 = r3[i];");
    emit_open(e, "for (int f = 0; f < %d; f++)", width);
    emit(e, "float w = k[i * %d + f];", g->F);
    emit(e, "a0[f] += x0 * w;");
    emit(e, "a1[f] += x1 * w;");
    emit(e, "a2[f] += x2 * w;");
    emit(e, "a3[f] += x3 * w;");
    emit_close(e);
    emit_close(e);
    emit_close(e);
    emit_open(e, "for (int f = 0; f < %d; f++)", width);
    for (int t = 0; t < CONV_PIXELS; t++) {
        char src[16], valid[64];
        snprintf(src, sizeof src, "a%d[f]", t);
        snprintf(valid, sizeof valid, valid_fmt, t);
        if (t == 0)
            emit_block(e);
        else
            emit_open(e, "if (%s)", valid);
        emit_float_value_at(x, op, src, "fb + f");
        if (op->pool && op->pool->pool == CNN_POOL_MAX)
            emit(e, "pooled[fb + f] = v > pooled[fb + f] ? v : pooled[fb + f];");
        else if (op->pool)
            emit(e, "pooled[fb + f] += v;");
        else
            emit(e, "o%d[fb + f] = v;", t);
        emit_close(e);
    }
    emit_close(e);
}

/* Every block of channels: full ones in a loop, then the rest. */
static void emit_conv_blocks(xp *x, const cnn_deploy_op *op, const conv_geo *g,
                             const char *valid_fmt)
{
    cnn_emitter *e = x->e;
    int full = g->F / CONV_BLOCK * CONV_BLOCK, rest = g->F - full;
    if (full) {
        emit_open(e, "for (int fb = 0; fb < %d; fb += %d)", full, CONV_BLOCK);
        emit_conv_block(x, op, g, CONV_BLOCK, valid_fmt);
        emit_close(e);
    }
    if (rest) {
        emit_block(e);
        emit(e, "const int fb = %d;", full);
        emit_conv_block(x, op, g, rest, valid_fmt);
        emit_close(e);
    }
}

/* The output pixels whose windows lie inside the input, rows oy0..oy1-1 and columns
 * ox0..ox1-1 (all of them for an unpadded conv; empty where no window fits). */
typedef struct conv_interior {
    int oy0, oy1, ox0, ox1;
} conv_interior;

static int first_inside(int pad, int stride)
{
    return (pad + stride - 1) / stride;
}

static int end_inside(int in, int k, int pad, int stride, int out)
{
    int end = in - k + pad < 0 ? 0 : (in - k + pad) / stride + 1;
    return end < out ? end : out;
}

static conv_interior interior_of(const conv_geo *g)
{
    conv_interior r = {first_inside(g->PT, g->SH), end_inside(g->H, g->KH, g->PT, g->SH, g->OH),
                       first_inside(g->PL, g->SW), end_inside(g->W, g->KW, g->PL, g->SW, g->OW)};
    if (!g->padded)
        r = (conv_interior){0, g->OH, 0, g->OW};
    return r;
}

/* A float conv, CONV_PIXELS output pixels at a time over its interior (every pixel of an
 * unpadded one): the pixels of a fused pool's window, or consecutive pixels of the interior's
 * rows. A group that runs past the end repeats its last pixel, whose result it drops. */
static void emit_conv_float_blocked(xp *x, const cnn_deploy_op *op, const conv_geo *g)
{
    cnn_emitter *e = x->e;
    const cnn_layer *P = op->pool;
    emit(e, "/* %d output pixels at a time, %d channels at a time: each kernel value loaded is",
         CONV_PIXELS, CONV_BLOCK);
    emit(e, " * used %d times, and the accumulators stay in registers. */", CONV_PIXELS);
    if (P) {
        int win = P->kh * P->kw;
        emit_for(e, "for (int py = 0; py < %d; py++)", P->out.h);
        emit_open(e, "for (int px = 0; px < %d; px++)", P->out.w);
        emit(e, "float pooled[%d];", g->F);
        emit(e, "for (int f = 0; f < %d; f++)", g->F);
        emit(e, "    pooled[f] = %s;", P->pool == CNN_POOL_AVG ? "0.0f" : "-INFINITY");
        emit(e, "/* the window's pixels j, %d at a time */", CONV_PIXELS);
        emit_open(e, "for (int j = 0; j < %d; j += %d)", win, CONV_PIXELS);
        for (int t = 0; t < CONV_PIXELS; t++) {
            if (t == 0)
                emit(e, "int j0 = j;");
            else
                emit(e, "int j%d = j + %d < %d ? j + %d : %d;", t, t, win, t, win - 1);
            char row[128];
            snprintf(row, sizeof row, "(%s + j%d / %d) * %d + %s + j%d %% %d", gen_times("py", P->sh),
                     t, P->kw, g->W, gen_times("px", P->sw), t, P->kw);
            if (g->SH != 1 || g->SW != 1)
                snprintf(row, sizeof row, "((%s + j%d / %d) * %d) * %d + (%s + j%d %% %d) * %d",
                         gen_times("py", P->sh), t, P->kw, g->SH, g->W, gen_times("px", P->sw),
                         t, P->kw, g->SW);
            emit(e, "const float *p%d = in + (%s) * %d;", t, row, g->C);
        }
        char valid[64];
        snprintf(valid, sizeof valid, "j + %%d < %d", win);
        emit_conv_blocks(x, op, g, valid);
        emit_close(e);
        emit(e, "float *o = out + (py * %d + px) * %d;", P->out.w, g->F);
        emit_pool_store(x, P, "o");
        emit_close(e);
        emit_end_for(e, 1);
        return;
    }
    /* The pixels in row-major order q = oy * OW + ox, so that a group spans rows: a group
     * inside one short row would let the compiler see its pointers' constant distances and
     * pack the four pixels into one vector, which is slower. */
    conv_interior r = interior_of(g);
    int IW = r.ox1 - r.ox0, pixels = (r.oy1 - r.oy0) * IW;
    if (g->padded)
        emit(e, "/* the interior: output rows %d..%d, columns %d..%d, whose windows need no "
                "padding */", r.oy0, r.oy1 - 1, r.ox0, r.ox1 - 1);
    emit_open(e, "for (int q = 0; q < %d; q += %d)", pixels, CONV_PIXELS);
    for (int t = 0; t < CONV_PIXELS; t++) {
        if (t == 0)
            emit(e, "int q0 = q;");
        else
            emit(e, "int q%d = q + %d < %d ? q + %d : %d;", t, t, pixels, t, pixels - 1);
        char oy[48], ox[48];
        if (!g->padded) {
            snprintf(oy, sizeof oy, "q%d / %d", t, g->OW);
            snprintf(ox, sizeof ox, "q%d %% %d", t, g->OW);
            if (g->SH != 1)
                snprintf(oy, sizeof oy, "q%d / %d * %d", t, g->OW, g->SH);
            if (g->SW != 1)
                snprintf(ox, sizeof ox, "q%d %% %d * %d", t, g->OW, g->SW);
            emit(e, "const float *p%d = in + (%s * %d + %s) * %d;", t, oy, g->W, ox, g->C);
            emit(e, "float *o%d = out + q%d * %d;", t, t, g->F);
            continue;
        }
        /* The interior's pixel q: output (oy0 + q / IW, ox0 + q % IW); its window's first
         * input pixel, the padding taken off. */
        snprintf(oy, sizeof oy, "(%d + q%d / %d)", r.oy0, t, IW);
        snprintf(ox, sizeof ox, "(%d + q%d %% %d)", r.ox0, t, IW);
        emit(e, "const float *p%d = in + ((%s * %d - %d) * %d + %s * %d - %d) * %d;", t, oy,
             g->SH, g->PT, g->W, ox, g->SW, g->PL, g->C);
        emit(e, "float *o%d = out + (%s * %d + %s) * %d;", t, oy, g->OW, ox, g->F);
    }
    char valid[64];
    snprintf(valid, sizeof valid, "q + %%d < %d", pixels);
    emit_conv_blocks(x, op, g, valid);
    emit_close(e);
}

/* int8 with a max pool and nothing after the activation: requantization, clamp and the
 * activation's table are all non-decreasing, so the max of the window's int32 accumulators
 * gives the max of its values, requantized once instead of once per pixel. */
static int int8_max_first(const xp *x, const cnn_deploy_op *op)
{
    return x->int8 && op->pool && op->pool->pool == CNN_POOL_MAX && !op->bn &&
           !(op->act == CNN_ACT_LEAKY_RELU && op->alpha < 0);
}

static void emit_conv(xp *x, int i)
{
    cnn_emitter *e = x->e;
    const cnn_deploy_op *op = &x->dn->ops[i];
    const cnn_quant_op *Q = x->int8 ? &x->o->quant->op[i] : NULL;
    conv_geo g = geo_of(op);
    int max_first = int8_max_first(x, op);
    const char *type = x->int8 ? "int8_t" : "float", *acc_type = x->int8 ? "int32_t" : "float";
    emit_open(e, "static void %s_%s(const %s *in, %s *out)", x->name, op->L->name, type, type);
    const cnn_layer *P = op->pool;
    if (!x->int8 && !g.padded) {
        emit_conv_float_blocked(x, op, &g);
        emit_close(e);
        return;
    }
    /* A padded float conv: its interior blocked, then the border pixel by pixel below. */
    conv_interior inside = interior_of(&g);
    int blocked = !x->int8 && !P && inside.oy1 > inside.oy0 && inside.ox1 > inside.ox0;
    if (blocked)
        emit_conv_float_blocked(x, op, &g);
    if (P) {
        emit_for(e, "for (int py = 0; py < %d; py++)", P->out.h);
        emit_open(e, "for (int px = 0; px < %d; px++)", P->out.w);
        emit(e, "%s pooled[%d];", acc_type, g.F);
        emit(e, "for (int f = 0; f < %d; f++)", g.F);
        emit(e, "    pooled[f] = %s;", P->pool == CNN_POOL_AVG ? (x->int8 ? "0" : "0.0f")
                                   : max_first ? "-2147483647 - 1 /* the accumulators' max */"
                                   : x->int8   ? "-128" : "-INFINITY");
        emit_for(e, "for (int wy = 0; wy < %d; wy++)", P->kh);
        emit_open(e, "for (int wx = 0; wx < %d; wx++)", P->kw);
        emit(e, "int oy = %s + wy, ox = %s + wx;", gen_times("py", P->sh), gen_times("px", P->sw));
    } else {
        emit_for(e, "for (int oy = 0; oy < %d; oy++)", g.OH);
        emit_open(e, "for (int ox = 0; ox < %d; ox++)", g.OW);
        if (blocked) {
            emit(e, "if (oy >= %d && oy < %d && ox >= %d && ox < %d)", inside.oy0, inside.oy1,
                 inside.ox0, inside.ox1);
            emit(e, "    continue; /* the interior, done above */");
        }
        emit(e, "%s *o = out + (oy * %d + ox) * %d;", type, g.OW, g.F);
    }
    if (!x->int8) {
        emit_conv_pixel_channels(x, op, NULL, &g);
        emit_open(e, "for (int f = 0; f < %d; f++)", g.F);
        emit_float_value(x, op, "acc[f]");
    } else {
        if (int8_channels_inner(op)) {
            emit_conv_pixel_channels(x, op, Q, &g);
            emit_open(e, "for (int f = 0; f < %d; f++)", g.F);
            emit_int8_sink(x, op, "acc[f]", "f", max_first);
            emit_close(e);
        } else
            emit_conv_window_int8(x, op, Q, &g, max_first);
    }
    if (!x->int8) {
        emit_value_sink(x, op, P != NULL);
        emit_close(e);
    }
    if (P) {
        emit_close(e);
        emit_end_for(e, 1);
        emit(e, "%s *o = out + (py * %d + px) * %d;", type, P->out.w, g.F);
        if (max_first) {
            emit_open(e, "for (int f = 0; f < %d; f++)", g.F);
            emit_int8_value(x, op, Q, "pooled[f]");
            emit(e, "o[f] = (int8_t)q;");
            emit_close(e);
        } else
            emit_pool_store(x, P, "o");
    }
    emit_close(e);
    emit_end_for(e, 1);
    emit_close(e);
}

static void emit_softmax(xp *x, const char *logits, int K)
{
    cnn_emitter *e = x->e;
    emit(e, "/* softmax, shifted by the largest logit so that expf cannot overflow */");
    emit(e, "float most = %s[0], sum = 0.0f;", logits);
    emit(e, "for (int f = 1; f < %d; f++)", K);
    emit(e, "    most = %s[f] > most ? %s[f] : most;", logits, logits);
    emit_open(e, "for (int f = 0; f < %d; f++)", K);
    emit(e, "out[f] = expf(%s[f] - most);", logits);
    emit(e, "sum += out[f];");
    emit_close(e);
    emit(e, "for (int f = 0; f < %d; f++)", K);
    emit(e, "    out[f] /= sum;");
}

static void emit_dense(xp *x, int i)
{
    cnn_emitter *e = x->e;
    const cnn_deploy_op *op = &x->dn->ops[i];
    const cnn_layer *L = op->L;
    const char *n = x->name, *ln = L->name;
    /* The output layer's softmax (a network without a loss may end in another dense). */
    int I = L->in.c, U = L->out.c, last = is_last(x->dn, i) && op->act == CNN_ACT_SOFTMAX;
    const char *type = x->int8 ? "int8_t" : "float";
    emit_open(e, "static void %s_%s(const %s *in, %s *out)", n, ln, type,
              last ? "float" : type);
    if (!x->int8) {
        emit(e, "float acc[%d];", U);
        emit(e, "for (int f = 0; f < %d; f++)", U);
        emit(e, op->has_bias ? "    acc[f] = %s_%s_bias[f];" : "    acc[f] = 0.0f;%.0s%.0s", n, ln);
        emit(e, "for (int i = 0; i < %d; i++)", I);
        emit(e, "    for (int f = 0; f < %d; f++)", U);
        emit(e, "        acc[f] += in[i] * %s_%s_kernel[i * %d + f];", n, ln, U);
        if (last) {
            emit_softmax(x, "acc", U);
        } else {
            emit_open(e, "for (int f = 0; f < %d; f++)", U);
            emit_float_value(x, op, "acc[f]");
            emit(e, "out[f] = v;");
            emit_close(e);
        }
        emit_close(e);
        return;
    }
    const cnn_quant_op *Q = &x->o->quant->op[i];
    if (last)
        emit(e, "float logits[%d];", U);
    emit_open(e, "for (int f = 0; f < %d; f++)", U);
    emit(e, "int32_t acc = %s_%s_bias_u8[f];", n, ln);
    emit(e, "const int8_t *k = %s_%s_kernel + f * %d;", n, ln, I);
    emit(e, "for (int i = 0; i < %d; i++)", I);
    emit(e, "    acc += (in[i] + 128) * k[i]; /* q + 128: the zero point is in bias_u8 */");
    if (last)
        emit(e, "logits[f] = (float)acc * %s_%s_dequant[f];", n, ln);
    else {
        emit_int8_value(x, op, Q, "acc");
        emit(e, "out[f] = (int8_t)q;");
    }
    emit_close(e);
    if (last)
        emit_softmax(x, "logits", U);
    emit_close(e);
}

static void emit_pool(xp *x, int i)
{
    cnn_emitter *e = x->e;
    const cnn_deploy_op *op = &x->dn->ops[i];
    const cnn_layer *P = op->L;
    const char *type = x->int8 ? "int8_t" : "float", *acc_type = x->int8 ? "int32_t" : "float";
    int C = P->in.c, avg = P->pool == CNN_POOL_AVG;
    emit_open(e, "static void %s_%s(const %s *in, %s *out)", x->name, P->name, type, type);
    emit_for(e, "for (int py = 0; py < %d; py++)", P->out.h);
    emit_open(e, "for (int px = 0; px < %d; px++)", P->out.w);
    emit(e, "%s pooled[%d];", acc_type, C);
    emit(e, "for (int f = 0; f < %d; f++)", C);
    emit(e, "    pooled[f] = %s;", avg ? (x->int8 ? "0" : "0.0f")
                                       : (x->int8 ? "-128" : "-INFINITY"));
    if (P->pad_same) {
        /* TensorFlow's same pooling: taps in the padding are not values; max ignores them and
         * the mean leaves them out of its count. */
        if (avg)
            emit(e, "int count = 0;");
        emit_open(e, "for (int wy = 0; wy < %d; wy++)", P->kh);
        emit(e, "int iy = %s + wy - %d;", gen_times("py", P->sh), P->pad_top);
        emit(e, "if (iy < 0 || iy >= %d)", P->in.h);
        emit(e, "    continue;");
        emit_open(e, "for (int wx = 0; wx < %d; wx++)", P->kw);
        emit(e, "int ix = %s + wx - %d;", gen_times("px", P->sw), P->pad_left);
        emit(e, "if (ix < 0 || ix >= %d)", P->in.w);
        emit(e, "    continue;");
        if (avg)
            emit(e, "count++;");
        emit(e, "const %s *p = in + (iy * %d + ix) * %d;", type, P->in.w, C);
    } else {
        emit_for(e, "for (int wy = 0; wy < %d; wy++)", P->kh);
        emit_open(e, "for (int wx = 0; wx < %d; wx++)", P->kw);
        emit(e, "const %s *p = in + ((%s + wy) * %d + %s + wx) * %d;", type,
             gen_times("py", P->sh), P->in.w, gen_times("px", P->sw), C);
    }
    emit_open(e, "for (int f = 0; f < %d; f++)", C);
    if (!avg)
        emit(e, "pooled[f] = p[f] > pooled[f] ? p[f] : pooled[f];");
    else
        emit(e, "pooled[f] += p[f];");
    emit_close(e);
    emit_close(e);
    if (P->pad_same)
        emit_close(e);
    else
        emit_end_for(e, 1);
    emit(e, "%s *o = out + (py * %d + px) * %d;", type, P->out.w, C);
    if (!P->pad_same || !avg)
        emit_pool_store(x, P, "o");
    else if (!x->int8) {
        emit(e, "for (int f = 0; f < %d; f++)", C);
        emit(e, "    o[f] = pooled[f] / (float)count;");
    } else {
        emit(e, "for (int f = 0; f < %d; f++) /* the mean, rounded half away from zero */", C);
        emit(e, "    o[f] = (int8_t)((pooled[f] >= 0 ? pooled[f] + count / 2 : "
                "pooled[f] - count / 2) / count);");
    }
    emit_close(e);
    emit_end_for(e, 1);
    emit_close(e);
}

/* The arguments of op i's function: "const T *in" for one input, "const T *in0, ...". */
static void op_params(xp *x, const cnn_deploy_op *op, char *buf, size_t cap)
{
    const char *type = x->int8 ? "int8_t" : "float";
    size_t n = 0;
    buf[0] = '\0';
    for (int k = 0; k < op->n_in && n < cap; k++)
        n += (size_t)snprintf(buf + n, cap - n, op->n_in == 1 ? "const %s *in" : "%sconst %s *in%d",
                              k ? ", " : "", type, k);
}

/* Depthwise: output channel f = c * M + m reads input channel c alone. Each output pixel's
 * channels together, the taps in (ky, kx) order as the reference adds them; the kernel is
 * stored [kh][kw][out] (float: Keras' layout; int8: transposed so) for the channels to run
 * along memory. */
static void emit_dwconv(xp *x, int i)
{
    cnn_emitter *e = x->e;
    const cnn_deploy_op *op = &x->dn->ops[i];
    const cnn_quant_op *Q = x->int8 ? &x->o->quant->op[i] : NULL;
    const char *n = x->name, *ln = op->L->name;
    const char *type = x->int8 ? "int8_t" : "float", *acc_type = x->int8 ? "int32_t" : "float";
    conv_geo g = geo_of(op);
    int M = op->L->multiplier;
    emit_open(e, "static void %s_%s(const %s *in, %s *out)", n, ln, type, type);
    emit_for(e, "for (int oy = 0; oy < %d; oy++)", g.OH);
    emit_open(e, "for (int ox = 0; ox < %d; ox++)", g.OW);
    emit(e, "%s acc[%d];", acc_type, g.F);
    emit(e, "for (int f = 0; f < %d; f++)", g.F);
    if (Q || op->has_bias)
        emit(e, "    acc[f] = %s_%s_bias[f];", n, ln);
    else
        emit(e, "    acc[f] = 0.0f;");
    emit_open(e, "for (int ky = 0; ky < %d; ky++)", g.KH);
    emit(e, "int iy = %s + ky - %d;", gen_times("oy", g.SH), g.PT);
    if (g.padded) {
        emit(e, "if (iy < 0 || iy >= %d)", g.H);
        emit(e, "    continue; /* zero padding */");
    }
    emit_open(e, "for (int kx = 0; kx < %d; kx++)", g.KW);
    emit(e, "int ix = %s + kx - %d;", gen_times("ox", g.SW), g.PL);
    if (g.padded) {
        emit(e, "if (ix < 0 || ix >= %d)", g.W);
        emit(e, "    continue;");
    }
    emit(e, "const %s *p = in + (iy * %d + ix) * %d;", type, g.W, g.C);
    emit(e, "const %s *k = %s_%s_kernel + (ky * %d + kx) * %d;", type, n, ln, g.KW, g.F);
    char v[64];
    if (M == 1)
        snprintf(v, sizeof v, "p[f]");
    else
        snprintf(v, sizeof v, "p[f / %d]", M);
    emit(e, "for (int f = 0; f < %d; f++)", g.F);
    if (Q)
        emit(e, "    acc[f] += (%s%s) * k[f];", v, minus(Q->in.zero));
    else
        emit(e, "    acc[f] += %s * k[f];", v);
    emit_close(e);
    emit_close(e);
    emit(e, "%s *o = out + (oy * %d + ox) * %d;", type, g.OW, g.F);
    emit_open(e, "for (int f = 0; f < %d; f++)", g.F);
    if (Q) {
        emit_int8_value(x, op, Q, "acc[f]");
        emit(e, "o[f] = (int8_t)q;");
    } else {
        emit_float_value(x, op, "acc[f]");
        emit(e, "o[f] = v;");
    }
    emit_close(e);
    emit_close(e);
    emit_end_for(e, 1);
    emit_close(e);
}

/* The sum of the inputs, then the activation taken in. Int8 as TFLite adds: each q - z
 * shifted left by CNN_QUANT_ADD_SHIFT bits and rescaled to a common scale, the terms summed,
 * the sum requantized as an accumulator is. */
static void emit_add(xp *x, int i)
{
    cnn_emitter *e = x->e;
    const cnn_deploy_op *op = &x->dn->ops[i];
    const cnn_quant_op *Q = x->int8 ? &x->o->quant->op[i] : NULL;
    const char *n = x->name, *ln = op->L->name, *type = x->int8 ? "int8_t" : "float";
    char params[400], sum[800];
    op_params(x, op, params, sizeof params);
    emit_open(e, "static void %s_%s(%s, %s *out)", n, ln, params, type);
    emit_open(e, "for (int i = 0; i < %" PRId64 "; i++)", cnn_shape_size(op->L->out));
    if (!Q) {
        size_t len = 0;
        for (int k = 0; k < op->n_in; k++)
            len += (size_t)snprintf(sum + len, sizeof sum - len, "%sin%d[i]", k ? " + " : "", k);
        emit_float_value(x, op, sum);
        emit(e, "out[i] = v;");
    } else {
        emit(e, "int32_t acc = 0;");
        for (int k = 0; k < op->n_in; k++)
            emit(e, "acc += %s_requant((in%d[i]%s) * %d, %s_%s_in_mult[%d], %s_%s_in_shift[%d]);",
                 n, k, minus(Q->ins[k].zero), 1 << CNN_QUANT_ADD_SHIFT, n, ln, k, n, ln, k);
        emit_int8_value_at(x, op, Q, "acc", "0");
        emit(e, "out[i] = (int8_t)q;");
    }
    emit_close(e);
    emit_close(e);
}

/* The inputs side by side along the channels, each pixel's in order; int8: each rescaled to
 * the output's scale. */
static void emit_concat(xp *x, int i)
{
    cnn_emitter *e = x->e;
    const cnn_deploy_op *op = &x->dn->ops[i];
    const cnn_quant_op *Q = x->int8 ? &x->o->quant->op[i] : NULL;
    const char *n = x->name, *ln = op->L->name, *type = x->int8 ? "int8_t" : "float";
    char params[400];
    op_params(x, op, params, sizeof params);
    int C = op->L->out.c;
    emit_open(e, "static void %s_%s(%s, %s *out)", n, ln, params, type);
    emit_open(e, "for (int p = 0; p < %" PRId64 "; p++)", cnn_shape_size(op->L->out) / C);
    int at = 0;
    for (int k = 0; k < op->n_in; k++) {
        int Ck = x->dn->tensors[op->in[k]].shape.c;
        emit(e, "for (int c = 0; c < %d; c++)", Ck);
        if (!Q)
            emit(e, "    out[p * %d + %d + c] = in%d[p * %d + c];", C, at, k, Ck);
        else
            emit(e, "    out[p * %d + %d + c] = (int8_t)%s_clamp(%s_requant(in%d[p * %d + c]%s, "
                    "%s_%s_in_mult[%d], %s_%s_in_shift[%d])%s, -128);",
                 C, at, n, n, k, Ck, minus(Q->ins[k].zero), n, ln, k, n, ln, k,
                 minus(-Q->out.zero));
        at += Ck;
    }
    emit_close(e);
    emit_close(e);
}

static void emit_affine(xp *x, int i)
{
    cnn_emitter *e = x->e;
    const cnn_deploy_op *op = &x->dn->ops[i];
    const cnn_layer *B = op->L;
    const char *n = x->name, *ln = B->name, *type = x->int8 ? "int8_t" : "float";
    int C = B->in.c;
    int64_t pixels = cnn_shape_size(B->in) / C;
    emit_open(e, "static void %s_%s(const %s *in, %s *out)", n, ln, type, type);
    emit_for(e, "for (int i = 0; i < %" PRId64 "; i++) /* pixels */", pixels);
    emit_for(e, "for (int c = 0; c < %d; c++)", C);
    if (!x->int8)
        emit(e, "out[i * %d + c] = in[i * %d + c] * %s_%s_scale[c] + %s_%s_shift[c];", C, C, n,
             ln, n, ln);
    else {
        const cnn_quant_op *Q = &x->o->quant->op[i];
        emit(e, "out[i * %d + c] = (int8_t)%s_clamp(%s_requant((in[i * %d + c]%s) * "
                "%s_%s_w[c] + %s_%s_b[c], %s_%s_mult[c], %s_%s_shift[c])%s, -128);",
             C, n, n, C, minus(Q->in.zero), n, ln, n, ln, n, ln, n, ln, minus(-Q->out.zero));
    }
    emit_end_for(e, 2);
    emit_close(e);
}

static void emit_activation(xp *x, int i)
{
    cnn_emitter *e = x->e;
    const cnn_deploy_op *op = &x->dn->ops[i];
    const char *n = x->name, *ln = op->L->name, *type = x->int8 ? "int8_t" : "float";
    int64_t size = cnn_shape_size(op->L->out);
    emit_open(e, "static void %s_%s(const %s *in, %s *out)", n, ln, type, type);
    emit_open(e, "for (int i = 0; i < %" PRId64 "; i++)", size);
    if (x->int8) {
        emit(e, "out[i] = %s_%s_table[in[i] + 128]; /* %s */", n, ln, cnn_act_name(op->act));
    } else {
        emit_float_value(x, op, "in[i]");
        emit(e, "out[i] = v;");
    }
    emit_close(e);
    emit_close(e);
}

/* ---- the file ---- */

static void emit_banner(xp *x, const char *file_kind)
{
    cnn_emitter *e = x->e;
    const cnn_deploy *dn = x->dn;
    const cnn_ir *ir = dn->ir;
    char in[48];
    cnn_shape_text(ir->input, in, sizeof in);
    emit(e, "/* %s: the network %s, exported by cnnc %s for inference (%s).", file_kind, ir->name,
         x->o->version, x->int8 ? "int8" : "float32");
    emit(e, " * Source: %s; weights: %s (network fingerprint %016" PRIx64 ").", ir->source_name,
         x->o->weights_path, dn->fingerprint);
    if (x->int8)
        emit(e, " * Post-training int8: ranges from %d calibration images (docs/deploy.md).",
             x->o->calibration_images);
    emit(e, " * Input %s, channels last, values as the trainers feed them (bytes / 255);", in);
    if (ir->train.loss != CNN_LOSS_CROSSENTROPY)
        emit(e, " * output: the network's %d values (not a classifier's). Standalone C99: "
                "no allocation, no", ir->n_classes);
    else
        emit(e, " * output: the probabilities of the %d classes. Standalone C99: no allocation, no",
             ir->n_classes);
    emit(e, " * I/O, no threads, no library but <math.h>%s. */",
         x->int8 ? "'s expf" : "'s expf and tanhf");
}

static void emit_api_decls(xp *x)
{
    cnn_emitter *e = x->e;
    const char *n = x->name;
    const cnn_ir *ir = x->dn->ir;
    emit(e, "#define %s_INPUT_H %d", x->up, ir->input.h);
    emit(e, "#define %s_INPUT_W %d", x->up, ir->input.w);
    emit(e, "#define %s_INPUT_C %d", x->up, ir->input.c);
    emit(e, "#define %s_CLASSES %d", x->up, ir->n_classes);
    emit(e, "/* What %s_predict_ws needs: aligned for a float, never shared between calls in", n);
    emit(e, " * flight. The same bytes the plan above counts as the arena. */");
    emit(e, "#define %s_WORKSPACE_BYTES %" PRId64, x->up, x->s->arena_bytes);
    if (x->o->class_names)
        emit(e, "extern const char %s_class_names[%d][%d];", n, ir->n_classes,
             names_width(x->o, ir->n_classes));
    emit_blank(e);
    emit(e, "/* input: H*W*C floats; probabilities: CLASSES floats. Returns the top class. Uses");
    emit(e, " * one static workspace: not reentrant. */");
    emit(e, "int %s_predict(const float *input, float *probabilities);", n);
    emit(e, "/* The same from raw bytes, scaled as the trainers scale them (byte / 255). */");
    emit(e, "int %s_predict_u8(const unsigned char *pixels, float *probabilities);", n);
    emit(e, "/* Reentrant: the caller's workspace of %s_WORKSPACE_BYTES. */", x->up);
    emit(e, "int %s_predict_ws(void *workspace, const float *input, float *probabilities);", n);
    emit(e, "int %s_predict_u8_ws(void *workspace, const unsigned char *pixels, "
            "float *probabilities);", n);
}

int cnn_export_h(FILE *out, const cnn_deploy *dn, const cnn_export_opts *o,
                 const cnn_export_sizes *s)
{
    cnn_emitter e = {out, 0, 0};
    xp x;
    xp_init(&x, &e, dn, o, s);
    emit_banner(&x, "the header");
    emit(&e, "#ifndef %s_MODEL_H", x.up);
    emit(&e, "#define %s_MODEL_H", x.up);
    emit_blank(&e);
    emit(&e, "#ifdef __cplusplus");
    emit(&e, "extern \"C\" {");
    emit(&e, "#endif");
    emit_blank(&e);
    emit_api_decls(&x);
    emit_blank(&e);
    emit(&e, "#ifdef __cplusplus");
    emit(&e, "}");
    emit(&e, "#endif");
    emit(&e, "#endif");
    if (fflush(out) != 0)
        e.failed = 1;
    return e.failed ? -1 : 0;
}

static void emit_int8_helpers(xp *x)
{
    cnn_emitter *e = x->e;
    const char *n = x->name;
    emit_blank(e);
    emit(e, "/* floor(acc * mult * 2^-shift + 1/2): |acc| < 2^31 and mult < 2^31, so the product");
    emit(e, " * fits in 63 bits; offset by 2^63 it is never negative, and its shift is C99's");
    emit(e, " * unsigned one, without a branch, the same on every compiler. */");
    emit_open(e, "static int32_t %s_requant(int32_t acc, int32_t mult, int shift)", n);
    emit(e, "uint64_t p = (uint64_t)((int64_t)acc * mult) + ((uint64_t)1 << 63) +");
    emit(e, "             ((uint64_t)1 << (shift - 1));");
    emit(e, "return (int32_t)((int64_t)(p >> shift) - ((int64_t)1 << (63 - shift)));");
    emit_close(e);
    emit_blank(e);
    emit_open(e, "static int32_t %s_clamp(int32_t q, int32_t lo)", n);
    emit(e, "return q < lo ? lo : q > 127 ? 127 : q;");
    emit_close(e);
}

static const char *tensor_ptr(xp *x, int t, char *buf, size_t cap)
{
    snprintf(buf, cap, "t%d", t);
    return x->dn->tensors[t].external ? "out" : buf;
}

static void emit_api(xp *x)
{
    cnn_emitter *e = x->e;
    const cnn_deploy *dn = x->dn;
    const char *n = x->name, *type = x->int8 ? "int8_t" : "float";
    int64_t in_elems = dn->tensors[0].elems;
    int elem = x->int8 ? 1 : 4;
    emit_blank(e);
    emit(e, "/* The operations in order, from the input already in the arena (t0) to out. */");
    emit_open(e, "static int %s_run(void *workspace, float *out)", n);
    emit(e, "%s *arena = (%s *)workspace;", type, type);
    for (int t = 0; t < dn->n_tensors; t++) {
        const cnn_deploy_tensor *T = &dn->tensors[t];
        if (T->external)
            continue;
        char shape[48];
        cnn_shape_text(T->shape, shape, sizeof shape);
        emit(e, "%s *t%d = arena + %" PRId64 "; /* %s, bytes %" PRId64 "..%" PRId64 " */", type, t,
             T->offset / elem, shape, T->offset, T->offset + T->elems * elem);
    }
    for (int i = 0; i < dn->n_ops; i++) {
        const cnn_deploy_op *op = &dn->ops[i];
        char args[400], a[16];
        size_t len = 0;
        for (int k = 0; k < op->n_in; k++)
            len += (size_t)snprintf(args + len, sizeof args - len, "%s, ",
                                    tensor_ptr(x, op->in[k], a, sizeof a));
        emit(e, "%s_%s(%s%s);", n, op->L->name, args, tensor_ptr(x, op->out, a, sizeof a));
    }
    emit(e, "int top = 0;");
    emit(e, "for (int k = 1; k < %d; k++)", dn->ir->n_classes);
    emit(e, "    top = out[k] > out[top] ? k : top;");
    emit(e, "return top;");
    emit_close(e);

    emit_blank(e);
    emit_open(e, "int %s_predict_ws(void *workspace, const float *input, float *probabilities)", n);
    emit(e, "%s *t0 = (%s *)workspace + %" PRId64 "; /* the input's place in the arena */", type,
         type, dn->tensors[0].offset / elem);
    if (!x->int8) {
        emit(e, "for (int i = 0; i < %" PRId64 "; i++)", in_elems);
        emit(e, "    t0[i] = input[i];");
    } else {
        emit(e, "/* Quantized at scale 1/255, zero point -128: byte / 255 becomes byte - 128");
        emit(e, " * exactly; values outside [0, 1] are clamped. */");
        emit_open(e, "for (int i = 0; i < %" PRId64 "; i++)", in_elems);
        emit(e, "float v = input[i] * 255.0f;");
        emit(e, "v = v > 255.0f ? 255.0f : v >= 0.0f ? v : 0.0f;");
        emit(e, "t0[i] = (int8_t)((int32_t)(v + 0.5f) - 128);");
        emit_close(e);
    }
    emit(e, "return %s_run(workspace, probabilities);", n);
    emit_close(e);
    emit_blank(e);
    emit_open(e, "int %s_predict_u8_ws(void *workspace, const unsigned char *pixels, "
                 "float *probabilities)", n);
    emit(e, "%s *t0 = (%s *)workspace + %" PRId64 "; /* the input's place in the arena */", type,
         type, dn->tensors[0].offset / elem);
    emit(e, "for (int i = 0; i < %" PRId64 "; i++)", in_elems);
    if (!x->int8)
        emit(e, "    t0[i] = pixels[i] * (1.0f / 255.0f); /* as the trainers scale them */");
    else
        emit(e, "    t0[i] = (int8_t)(pixels[i] - 128);");
    emit(e, "return %s_run(workspace, probabilities);", n);
    emit_close(e);
    emit_blank(e);
    emit(e, "/* The non-reentrant variants' one workspace: the only memory this file writes. */");
    emit(e, "static float %s_workspace[%" PRId64 "];", n, (x->s->arena_bytes + 3) / 4);
    emit_blank(e);
    emit_open(e, "int %s_predict(const float *input, float *probabilities)", n);
    emit(e, "return %s_predict_ws(%s_workspace, input, probabilities);", n, n);
    emit_close(e);
    emit_blank(e);
    emit_open(e, "int %s_predict_u8(const unsigned char *pixels, float *probabilities)", n);
    emit(e, "return %s_predict_u8_ws(%s_workspace, pixels, probabilities);", n, n);
    emit_close(e);
}

int cnn_export_c(FILE *out, const cnn_deploy *dn, const cnn_source *src,
                 const cnn_export_opts *o, const cnn_export_sizes *s)
{
    cnn_emitter e = {out, 0, 0};
    xp x;
    xp_init(&x, &e, dn, o, s);
    x.src = src;
    emit_banner(&x, "this file");
    emit(&e, "/*");
    emit(&e, " * The plan: constants are flash, the arena is RAM.");
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem)
        return -1;
    int bad = plan_lines(&x, mem, " * ");
    if (fclose(mem) != 0 || bad) {
        free(text);
        return -1;
    }
    emit_text(&e, "%s", text);
    free(text);
    emit(&e, " */");
    emit(&e, "#include <math.h>");
    emit(&e, "#include <stdint.h>");
    emit_blank(&e);
    emit_api_decls(&x);
    if (o->class_names) {
        int k = dn->ir->n_classes;
        emit_blank(&e);
        emit_open(&e, "const char %s_class_names[%d][%d] =", x.name, k, names_width(o, k));
        for (int i = 0; i < k; i++) {
            char q[600];
            size_t m = 0;
            for (const char *c = o->class_names[i]; *c && m + 5 < sizeof q; c++) {
                if (*c == '"' || *c == '\\')
                    q[m++] = '\\';
                q[m++] = *c;
            }
            q[m] = '\0';
            emit(&e, "\"%s\",", q);
        }
        emit_close_semi(&e);
    }
    /* The requantization helpers, where an op requantizes (every kind but a pool and the last
     * dense, whose logits are float): an unused static function is a warning. */
    int requantizes = 0;
    for (int i = 0; i < dn->n_ops; i++)
        requantizes |= dn->ops[i].kind != CNN_OP_POOL && dn->ops[i].kind != CNN_OP_ACTIVATION &&
                       !is_last(dn, i);
    if (x.int8 && requantizes)
        emit_int8_helpers(&x);
    for (int i = 0; i < dn->n_ops; i++) {
        emit_op_comment(&x, i);
        emit_op_constants(&x, i);
        switch (dn->ops[i].kind) {
        case CNN_OP_CONV:
            if (dn->ops[i].L->type == CNN_LAYER_DWCONV)
                emit_dwconv(&x, i);
            else
                emit_conv(&x, i);
            break;
        case CNN_OP_ADD: emit_add(&x, i); break;
        case CNN_OP_CONCAT: emit_concat(&x, i); break;
        case CNN_OP_DENSE: emit_dense(&x, i); break;
        case CNN_OP_POOL: emit_pool(&x, i); break;
        case CNN_OP_AFFINE: emit_affine(&x, i); break;
        case CNN_OP_ACTIVATION: emit_activation(&x, i); break;
        }
    }
    emit_api(&x);
    if (fflush(out) != 0)
        e.failed = 1;
    return e.failed ? -1 : 0;
}
