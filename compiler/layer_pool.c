/* pool S [max|avg]: 2-D pooling with a window of SxS (or HxW), stride = size by default. */
#include <string.h>

#include "layers.h"

enum { O_STRIDE, O_PAD };
static const char *const options[] = {"stride", "pad", NULL};
static const char *const kinds[] = {"max", "avg", NULL};
static const char *const pads[] = {"valid", "same", NULL};

static int parse(cnn_layer *L, const cnn_stmt *s, const cnn_args *a, cnn_diag *d)
{
    if (a->n_pos < 1)
        return cnn_error(d, s->loc, "'pool' needs a window size: %s", cnn_layer_pool.usage);
    if (cnn_arg_dims2(a->pos[0], "pool size", &L->kh, &L->kw, d))
        return -1;
    L->size_loc = a->pos[0]->loc;
    L->pool = CNN_POOL_MAX;
    if (a->n_pos > 1) {
        int k = cnn_arg_choice(a->pos[1], "pooling kind", kinds, d);
        if (k < 0)
            return -1;
        L->pool = (cnn_pool_kind)k;
    }
    L->sh = L->kh;
    L->sw = L->kw;
    if (a->opt[O_STRIDE] && cnn_arg_dims2(a->opt[O_STRIDE], "stride", &L->sh, &L->sw, d))
        return -1;
    if (a->opt[O_PAD]) {
        int k = cnn_arg_choice(a->opt[O_PAD], "padding", pads, d);
        if (k < 0)
            return -1;
        L->pad_same = k == 1;
    }
    if (L->pool == CNN_POOL_AVG) {
        L->type_name = "AveragePooling2D";
        L->name_prefix = "average_pooling2d";
    }
    return 0;
}

static int infer(cnn_layer *L, cnn_diag *d)
{
    char in[48];
    cnn_shape_text(L->in, in, sizeof in);
    if (L->in.rank != 3) {
        cnn_error(d, L->loc, "'pool' needs an HxWxC input, got %s after 'flatten'", in);
        cnn_note_input(L, d);
        return -1;
    }
    /* pad=same as TensorFlow's: ceil(in / stride), the padding ignored (max) or left out of
     * the count (avg), the odd row or column after. */
    int oh = cnn_conv_out_size(L->in.h, L->kh, L->sh, L->pad_same, &L->pad_top);
    int ow = cnn_conv_out_size(L->in.w, L->kw, L->sw, L->pad_same, &L->pad_left);
    if (oh < 1 || ow < 1) {
        cnn_error(d, L->size_loc, "pooling %dx%d leaves zero size: its input is %s", L->kh,
                  L->kw, in);
        cnn_note_input(L, d);
        return -1;
    }
    L->out = (cnn_shape){3, oh, ow, L->in.c};
    return 0;
}

/* ---- code generation: direct loops, the window unrolled; gap's too (its window is the
 * whole image) ---- */

int cnn_pool_gen_flags(const cnn_layer *L)
{
    (void)L;
    return 0; /* max pooling keeps the winners' positions; average needs nothing */
}

static const char *index_type(const cnn_layer *L)
{
    return L->kh * L->kw <= 256 ? "unsigned char" : "int";
}

/* Some windows reach past the input (pad=same where it pads): the padded loops below. */
static int padded(const cnn_layer *L)
{
    return L->pad_same && ((int64_t)(L->out.h - 1) * L->sh + L->kh > L->in.h ||
                           (int64_t)(L->out.w - 1) * L->sw + L->kw > L->in.w);
}

/* Opens the loops over every output element (b, oy, ox, c at `at + c`) and its window's taps
 * inside the input (t, at input offset `p`); close_padded ends them. */
static void open_padded(cnn_emitter *e, const cnn_layer *L)
{
    int C = L->in.c, OH = L->out.h, OW = L->out.w;
    emit_for(e, "for (int b = 0; b < n; b++)");
    emit_for(e, "for (int oy = 0; oy < %d; oy++)", OH);
    emit_open(e, "for (int ox = 0; ox < %d; ox++)", OW);
    emit(e, "int at = ((b * %d + oy) * %d + ox) * %d;", OH, OW, C);
    emit_open(e, "for (int c = 0; c < %d; c++)", C);
}

static void open_padded_taps(cnn_emitter *e, const cnn_layer *L)
{
    int H = L->in.h, W = L->in.w, C = L->in.c;
    emit_for(e, "for (int ky = 0, t = 0; ky < %d; ky++)", L->kh);
    emit_open(e, "for (int kx = 0; kx < %d; kx++, t++)", L->kw);
    emit(e, "int iy = %s - %d + ky, ix = %s - %d + kx;", gen_times("oy", L->sh), L->pad_top,
         gen_times("ox", L->sw), L->pad_left);
    emit(e, "if (iy < 0 || iy >= %d || ix < 0 || ix >= %d) continue;", H, W);
    emit(e, "int p = ((b * %d + iy) * %d + ix) * %d + c;", H, W, C);
}

static void emit_padded_forward(cnn_emitter *e, const cnn_gen_layer *g)
{
    const cnn_layer *L = g->L;
    int max = L->pool == CNN_POOL_MAX;
    if (max && g->din)
        emit(e, "%s *winner = %s_arg + %s;", L->kh * L->kw <= 256 ? "unsigned char" : "int",
             L->name, gen_times("b0", (int)cnn_shape_size(L->out)));
    open_padded(e, L);
    emit(e, max ? "float best = -INFINITY;" : "float sum = 0.0f;");
    emit(e, max ? "int arg = 0;" : "int count = 0;");
    emit_block(e);
    open_padded_taps(e, L);
    if (max)
        emit(e, "if (in[p] > best) { best = in[p]; arg = t; }");
    else {
        emit(e, "(void)t;");
        emit(e, "sum += in[p];");
        emit(e, "count++;");
    }
    emit_close(e);
    emit_end_for(e, 1);
    emit_close(e);
    if (max) {
        emit(e, "out[at + c] = best;");
        emit(e, g->din ? "winner[at + c] = (%s)arg;" : "(void)arg;",
             L->kh * L->kw <= 256 ? "unsigned char" : "int");
    } else
        emit(e, "out[at + c] = sum / (float)count; /* the padding is not counted */");
    emit_close(e);
    emit_close(e);
    emit_end_for(e, 2);
}

static void emit_padded_backward(cnn_emitter *e, const cnn_gen_layer *g)
{
    const cnn_layer *L = g->L;
    int max = L->pool == CNN_POOL_MAX;
    if (max)
        emit(e, "const %s *winner = %s_arg + %s;", L->kh * L->kw <= 256 ? "unsigned char" : "int",
             L->name, gen_times("b0", (int)cnn_shape_size(L->out)));
    emit(e, "memset(din, 0, sizeof(float) * n * %ld);", cnn_shape_size(L->in));
    open_padded(e, L);
    if (!max) { /* the window's share: dout over the taps inside the input */
        emit(e, "int count = 0;");
        emit_block(e);
        open_padded_taps(e, L);
        emit(e, "(void)t, (void)p;");
        emit(e, "count++;");
        emit_close(e);
        emit_end_for(e, 1);
        emit_close(e);
        emit(e, "float share = dout[at + c] / (float)count;");
    }
    emit_block(e);
    open_padded_taps(e, L);
    if (max)
        emit(e, "if (t == winner[at + c]) din[p] += dout[at + c];");
    else {
        emit(e, "(void)t;");
        emit(e, "din[p] += share;");
    }
    emit_close(e);
    emit_end_for(e, 1);
    emit_close(e);
    emit_close(e);
    emit_close(e);
    emit_end_for(e, 2);
}

/* The windows cover the input exactly once (2x2 windows, stride 2, even sizes). */
static int tiles(const cnn_layer *L)
{
    return L->sh == L->kh && L->sw == L->kw && (int64_t)L->out.h * L->kh == L->in.h &&
           (int64_t)L->out.w * L->kw == L->in.w;
}

int cnn_pool_buffers(const cnn_layer *L, int grad_in, int is_last, int backward, cnn_buffer *b)
{
    (void)backward;
    (void)is_last;
    if (L->pool != CNN_POOL_MAX || !grad_in)
        return 0;
    int taps = L->kh * L->kw <= 256;
    b[0] = (cnn_buffer){"argmax taps", cnn_shape_size(L->out), 0, taps ? 1 : 4, 1};
    if (tiles(L) || padded(L)) /* no table of offsets */
        return 1;
    b[1] = (cnn_buffer){"tap offsets", 0, (int64_t)L->kh * L->kw, 4, 1};
    return 2;
}

void cnn_pool_emit_buffers(cnn_emitter *e, const cnn_gen_layer *g)
{
    const cnn_layer *L = g->L;
    if (L->pool != CNN_POOL_MAX || !g->din)
        return;
    int C = L->in.c, W = L->in.w;
    emit(e, "/* Which tap of its window each output took (the first maximum), for backward. */");
    gen_array(e, index_type(L), gen_name(L, "arg"), g->batch, cnn_shape_size(L->out), NULL);
    if (tiles(L) || padded(L))
        return; /* tiled: backward writes every tap; padded: it finds each tap from its number */
    emit(e, "/* The taps' offsets from the window's first element. */");
    emit_open(e, "static const int %s_tap[%d] =", L->name, L->kh * L->kw);
    /* Ten to a line: any window size, no buffer to outgrow. */
    for (int t = 0, taps = L->kh * L->kw; t < taps; t += 10) {
        char row[160] = "";
        for (int i = t; i < taps && i < t + 10; i++)
            snprintf(row + strlen(row), sizeof row - strlen(row), "%d,%s",
                     ((i / L->kw) * W + i % L->kw) * C, i + 1 < taps && i + 1 < t + 10 ? " " : "");
        emit(e, "%s", row);
    }
    emit_close_semi(e);
}

/* Windows of more taps than this get loops instead of one line per tap. */
#define UNROLL_MAX_TAPS 32

/* Opens loops over the window's taps, with `off` the tap's offset from the window's first
 * element and `t` its number; close_taps ends them. */
static void open_taps(cnn_emitter *e, const cnn_layer *L)
{
    emit_for(e, "for (int ky = 0, t = 0; ky < %d; ky++)", L->kh);
    emit_open(e, "for (int kx = 0; kx < %d; kx++, t++)", L->kw);
    emit(e, "int off = (ky * %d + kx) * %d;", L->in.w, L->in.c);
}

static void close_taps(cnn_emitter *e)
{
    emit_close(e);
    emit_end_for(e, 1);
}

/* Loops over every output element, with `win` at its window's first element;
 * close_windows ends them. */
static void open_windows(cnn_emitter *e, const cnn_layer *L, int backward)
{
    int H = L->in.h, W = L->in.w, C = L->in.c, OH = L->out.h, OW = L->out.w;
    emit_for(e, "for (int b = 0; b < n; b++)");
    emit_for(e, "for (int oy = 0; oy < %d; oy++)", OH);
    emit_open(e, "for (int ox = 0; ox < %d; ox++)", OW);
    emit(e, "%sfloat *win = %s + ((b * %d + %s) * %d + %s) * %d;", backward ? "" : "const ",
         backward ? "din" : "in", H, gen_times("oy", L->sh), W, gen_times("ox", L->sw), C);
    emit(e, "int at = ((b * %d + oy) * %d + ox) * %d;", OH, OW, C);
}

static void close_windows(cnn_emitter *e)
{
    emit_close(e);
    emit_end_for(e, 2);
}

void cnn_pool_emit_forward(cnn_emitter *e, const cnn_gen_layer *g)
{
    const cnn_layer *L = g->L;
    if (padded(L)) {
        emit_padded_forward(e, g);
        return;
    }
    int W = L->in.w, C = L->in.c, taps = L->kh * L->kw;
    if (L->pool == CNN_POOL_MAX && g->din)
        emit(e, "%s *winner = %s_arg + %s;", index_type(L), L->name,
             gen_times("b0", (int)cnn_shape_size(L->out)));
    open_windows(e, L, 0);
    emit_open(e, "for (int c = 0; c < %d; c++)", C);
    if (L->pool == CNN_POOL_AVG && taps > UNROLL_MAX_TAPS) {
        emit(e, "float sum = 0.0f;");
        emit_block(e);
        open_taps(e, L);
        emit(e, "(void)t;");
        emit(e, "sum += win[off + c];");
        close_taps(e);
        emit_close(e);
        emit(e, "out[at + c] = sum * %s;", gen_float(1.0 / taps));
    } else if (L->pool == CNN_POOL_AVG) {
        char sum[2048] = ""; /* at most UNROLL_MAX_TAPS terms of 20 characters */
        size_t k = 0;
        for (int ky = 0; ky < L->kh; ky++)
            for (int kx = 0; kx < L->kw && k + 24 < sizeof sum; kx++)
                k += (size_t)snprintf(sum + k, sizeof sum - k, "%swin[%d + c]", k ? " + " : "",
                                      (ky * W + kx) * C);
        emit(e, "out[at + c] = (%s) * %s;", sum, gen_float(1.0 / taps));
    } else if (taps > UNROLL_MAX_TAPS) {
        emit(e, "float best = win[c];");
        if (g->din)
            emit(e, "int arg = 0;");
        emit_block(e);
        open_taps(e, L);
        if (g->din)
            emit(e, "if (win[off + c] > best) { best = win[off + c]; arg = t; }");
        else {
            emit(e, "(void)t;");
            emit(e, "best = win[off + c] > best ? win[off + c] : best;");
        }
        close_taps(e);
        emit_close(e);
        emit(e, "out[at + c] = best;");
        if (g->din)
            emit(e, "winner[at + c] = (%s)arg;", index_type(L));
    } else {
        emit(e, "float best = win[c];");
        if (g->din)
            emit(e, "int arg = 0;");
        for (int t = 1; t < taps; t++) {
            int off = ((t / L->kw) * W + t % L->kw) * C;
            if (g->din)
                emit(e, "if (win[%d + c] > best) { best = win[%d + c]; arg = %d; }", off, off, t);
            else
                emit(e, "best = win[%d + c] > best ? win[%d + c] : best;", off, off);
        }
        emit(e, "out[at + c] = best;");
        if (g->din)
            emit(e, "winner[at + c] = (%s)arg;", index_type(L));
    }
    emit_close(e);
    close_windows(e);
}

void cnn_pool_emit_backward(cnn_emitter *e, const cnn_gen_layer *g)
{
    const cnn_layer *L = g->L;
    if (padded(L)) {
        emit_padded_backward(e, g);
        return;
    }
    int W = L->in.w, C = L->in.c, taps = L->kh * L->kw;
    /* Windows that tile the input exactly write every input element once: assigned, with no
     * clearing pass first. Otherwise (overlaps, uncovered edges) clear, then add. */
    int tiled = tiles(L);
    const char *op = tiled ? "=" : "+=";
    if (L->pool == CNN_POOL_MAX)
        emit(e, "const %s *winner = %s_arg + %s;", index_type(L), L->name,
             gen_times("b0", (int)cnn_shape_size(L->out)));
    if (!tiled)
        emit(e, "memset(din, 0, sizeof(float) * n * %ld);", cnn_shape_size(L->in));
    open_windows(e, L, 1);
    emit_open(e, "for (int c = 0; c < %d; c++)", C);
    if (L->pool == CNN_POOL_MAX && tiled && taps > UNROLL_MAX_TAPS) {
        emit(e, "float d = dout[at + c];");
        emit(e, "int arg = winner[at + c];");
        open_taps(e, L);
        emit(e, "win[off + c] = arg == t ? d : 0.0f;");
        close_taps(e);
    } else if (L->pool == CNN_POOL_MAX && tiled) {
        emit(e, "float d = dout[at + c];");
        emit(e, "int arg = winner[at + c];");
        for (int t = 0; t < taps; t++)
            emit(e, "win[%d + c] = arg == %d ? d : 0.0f;", ((t / L->kw) * W + t % L->kw) * C, t);
    } else if (L->pool == CNN_POOL_MAX) {
        emit(e, "win[%s_tap[winner[at + c]] + c] += dout[at + c];", L->name);
    } else {
        emit(e, "float share = dout[at + c] * %s;", gen_float(1.0 / taps));
        if (taps > UNROLL_MAX_TAPS) {
            open_taps(e, L);
            emit(e, "(void)t;");
            emit(e, "win[off + c] %s share;", op);
            close_taps(e);
        } else {
            for (int ky = 0; ky < L->kh; ky++)
                for (int kx = 0; kx < L->kw; kx++)
                    emit(e, "win[%d + c] %s share;", (ky * W + kx) * C, op);
        }
    }
    emit_close(e);
    close_windows(e);
}

const cnn_layer_desc cnn_layer_pool = {
    .keyword = "pool",
    .type = CNN_LAYER_POOL,
    .keras_name = "max_pooling2d",
    .keras_type = "MaxPooling2D",
    .usage = "pool S [max|avg] [stride=S] [pad=valid|same]",
    .options = options,
    .max_positional = 2,
    .parse = parse,
    .infer = infer,
    .gen_flags = cnn_pool_gen_flags,
    .emit_buffers = cnn_pool_emit_buffers,
    .emit_forward = cnn_pool_emit_forward,
    .emit_backward = cnn_pool_emit_backward,
    .buffers = cnn_pool_buffers,
};
