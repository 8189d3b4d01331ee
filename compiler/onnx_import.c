/* `cnnc import`: an ONNX model (a graph of the layers cnnc has) as a .net file and its tensors.
 * The graph is read with protobuf-c from Debian's onnx.proto, as cnnc onnx writes it. Nodes
 * are taken in the file's order (ONNX's is topological); a node that reads a value other than
 * the one before it reads it `from` that value's statement, named in the .net file; Add, Sum
 * and Concat of computed values are cnnc's add and concat. A node is taken into the statement
 * before it (an activation, a MatMul's bias, the softmax) only where nothing else reads that
 * statement's output. Layouts turn from ONNX's NCHW to cnnc's channels last: conv kernels
 * [F][C][KH][KW] to [KH][KW][C][F], and after a flatten of an NCHW tensor the first dense
 * kernel's rows (and a batchnorm's channels before it) are permuted from CHW to HWC order.
 * A 1-D tensor [N, C, L] (Conv1d's) is an image of height 1, [N, 1, L, C] in cnnc.
 * What cnnc cannot express exactly is an error naming the node, its op and the attribute. */
#include "onnx_import.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "onnx.pb-c.h"

/* One layer statement of the .net file being made. */
typedef struct stmt {
    cnn_layer_type type;
    char args[96];  /* after the keyword: "32 3x3", "2 avg", "0.25" */
    char opts[160]; /* " stride=2 pad=same bias=no", " momentum=0.9 eps=1e-05" */
    char label[48]; /* "NAME = " before it, where a later statement reads its output */
    char from[48];  /* " from NAME" after it: it reads another statement's output */
    cnn_act act;
    float alpha;
    int from_matmul; /* dense from a MatMul: an Add after it may be its bias */
    cnn_import_layer t;
} stmt;

/* The value the next node must read: its ONNX shape and how it maps onto cnnc's. */
typedef struct value {
    const char *name;
    int rank;        /* 4: an image tensor, 3: a 1-D one (h = 1), 2: features */
    int h, w, c;     /* rank 4 and 3: cnnc's HxWxC; rank 2: c features */
    int nhwc;        /* rank 4: ONNX's dims are [N, H, W, C] (after a Transpose), not NCHW */
    int *perm;       /* rank 2 after a flatten of NCHW: cnnc's feature j is ONNX's perm[j] */
    int stmt;        /* the statement whose output it is; -1: the network's input */
} value;

/* A tensor given a value: an initializer, a bound input, or a Constant node's output. */
typedef struct known {
    const char *name;
    const Onnx__TensorProto *t;
} known;

typedef struct im {
    cnn_arena *a;
    char *err;
    size_t errlen;
    const Onnx__GraphProto *g;
    int64_t opset;
    known *known;
    int n_known, cap_known;
    stmt *s;
    int n_stmt, cap_stmt;
    value cur;                 /* the value the node reads as its input 0 */
    value *vals;               /* every value computed so far, by name */
    int n_vals, cap_vals;
    const Onnx__NodeProto *nd; /* the node being read, for messages */
    int64_t pending_pad[4];    /* a Pad node's top, left, bottom, right, for the next Conv */
    const Onnx__NodeProto *pad_node;
    int done;                  /* a Softmax ended the network */
    int from_cnnc;             /* written by cnnc onnx: its activation layers stay layers */
    Onnx__TensorProto **bound; /* the bindings, unpacked (freed at the end) */
    int n_bound;
} im;

static int fail(im *x, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (x->nd)
        snprintf(x->err, x->errlen, "node '%s' (%s): %s", x->nd->name && *x->nd->name
                 ? x->nd->name : x->nd->output && x->nd->n_output ? x->nd->output[0] : "?",
                 x->nd->op_type ? x->nd->op_type : "?", msg);
    else
        snprintf(x->err, x->errlen, "%s", msg);
    return -1;
}

static int oom(im *x)
{
    x->nd = NULL;
    return fail(x, "out of memory");
}

static int is(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static int empty(const char *s)
{
    return !s || !*s;
}

/* ---- attributes ---- */

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *nd, const char *name)
{
    for (size_t i = 0; i < nd->n_attribute; i++)
        if (is(nd->attribute[i]->name, name))
            return nd->attribute[i];
    return NULL;
}

/* Every attribute of the node is one of allowed (NULL-terminated): an attribute cnnc does not
 * read would otherwise change the meaning unseen. */
static int only_attrs(im *x, const char *const *allowed)
{
    for (size_t i = 0; i < x->nd->n_attribute; i++) {
        const char *n = x->nd->attribute[i]->name;
        int ok = 0;
        for (int k = 0; allowed[k] && !ok; k++)
            ok = is(n, allowed[k]);
        if (!ok)
            return fail(x, "attribute '%s' is not one cnnc can express", n ? n : "?");
    }
    return 0;
}

static int64_t attr_int(const Onnx__NodeProto *nd, const char *name, int64_t dflt)
{
    const Onnx__AttributeProto *at = attr(nd, name);
    return at && at->has_i ? at->i : dflt;
}

static float attr_float(const Onnx__NodeProto *nd, const char *name, float dflt)
{
    const Onnx__AttributeProto *at = attr(nd, name);
    return at && at->has_f ? at->f : dflt;
}

/* Spatial attributes of a 2-D op read from a 1-D one's (rank 3: one value per end, for the
 * width): kernel_shape [K] is 1xK, pads [b, e] are [0, b, 0, e]. */
static int attr_ints(im *x, const char *name, int n, const int64_t *dflt, int64_t *v);

static int attr_spatial(im *x, const char *name, int n, const int64_t *dflt, int64_t *v)
{
    if (x->cur.rank != 3)
        return attr_ints(x, name, n, dflt, v);
    /* The width's defaults: dflt[1] (and for pads, the end's, dflt[3]). */
    int64_t one[2], d1[2] = {dflt[1], n == 4 ? dflt[3] : 0};
    if (attr_ints(x, name, n / 2, d1, one))
        return -1;
    if (n == 4) { /* pads */
        v[0] = 0, v[1] = one[0], v[2] = 0, v[3] = one[1];
    } else {
        v[0] = 1, v[1] = one[0];
    }
    return 0;
}

/* The ints of attribute name, which must have n of them; dflt (n values) when absent. */
static int attr_ints(im *x, const char *name, int n, const int64_t *dflt, int64_t *v)
{
    const Onnx__AttributeProto *at = attr(x->nd, name);
    if (!at) {
        memcpy(v, dflt, sizeof(int64_t) * (size_t)n);
        return 0;
    }
    if ((int)at->n_ints != n)
        return fail(x, "attribute '%s' has %d values, and its input's rank needs %d", name,
                    (int)at->n_ints, n);
    if (n) /* protobuf-c leaves an empty list NULL */
        memcpy(v, at->ints, sizeof(int64_t) * (size_t)n);
    return 0;
}

static const char *attr_string(const Onnx__NodeProto *nd, const char *name, const char *dflt,
                               char *buf, size_t cap)
{
    const Onnx__AttributeProto *at = attr(nd, name);
    if (!at || !at->has_s)
        return dflt;
    size_t n = at->s.len < cap - 1 ? at->s.len : cap - 1;
    if (n)
        memcpy(buf, at->s.data, n);
    buf[n] = '\0';
    return buf;
}

static void ints_text(const int64_t *v, int n, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, i ? ", %lld" : "%lld", (long long)v[i]);
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
}

/* ---- tensors with values ---- */

static const Onnx__TensorProto *find_known(const im *x, const char *name)
{
    for (int i = x->n_known - 1; i >= 0; i--)
        if (is(x->known[i].name, name))
            return x->known[i].t;
    return NULL;
}

/* The array arr of n elements of `size` bytes, with room for one more: itself, or a copy twice
 * as large from the arena (*cap updated). NULL, with the error, when out of memory. */
static void *room_for_one(im *x, void *arr, int n, int *cap, size_t size)
{
    if (n < *cap)
        return arr;
    int more = *cap ? 2 * *cap : 32;
    void *p = cnn_arena_alloc(x->a, size * (size_t)more);
    if (!p) {
        oom(x);
        return NULL;
    }
    if (n)
        memcpy(p, arr, size * (size_t)n);
    *cap = more;
    return p;
}

static int add_known(im *x, const char *name, const Onnx__TensorProto *t)
{
    known *k = room_for_one(x, x->known, x->n_known, &x->cap_known, sizeof *k);
    if (!k)
        return -1;
    x->known = k;
    x->known[x->n_known++] = (known){name, t};
    return 0;
}

static int64_t elems(const Onnx__TensorProto *t)
{
    int64_t n = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        /* Past 2^40 elements no tensor is real; checked before the product can overflow. */
        if (t->dims[i] < 0 || (t->dims[i] > 0 && n > (INT64_C(1) << 40) / t->dims[i]))
            return -1;
        n *= t->dims[i];
    }
    return n;
}

/* The float values of tensor t (named what in messages), count of them, from float_data or
 * raw_data (little-endian, as ONNX stores it and as every target of cnnc is). */
static const float *floats_of(im *x, const Onnx__TensorProto *t, const char *what, int64_t *count)
{
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        fail(x, "%s's values are in an external file, which cnnc does not read", what);
        return NULL;
    }
    if (!t->has_data_type || t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
        fail(x, "%s is not a float tensor (data type %d)", what, (int)t->data_type);
        return NULL;
    }
    int64_t n = elems(t);
    if (n < 0) {
        fail(x, "%s has a negative or too large dimension", what);
        return NULL;
    }
    *count = n;
    if (t->has_raw_data && t->raw_data.len) {
        if ((int64_t)t->raw_data.len != n * 4) {
            fail(x, "%s holds %zu bytes for %lld floats", what, t->raw_data.len, (long long)n);
            return NULL;
        }
        float *v = cnn_arena_alloc(x->a, (size_t)n * 4 + 4);
        if (!v) {
            oom(x);
            return NULL;
        }
        memcpy(v, t->raw_data.data, (size_t)n * 4);
        return v;
    }
    if ((int64_t)t->n_float_data != n) {
        fail(x, "%s holds %zu floats for its %lld elements", what, t->n_float_data, (long long)n);
        return NULL;
    }
    return t->float_data;
}

/* The int64 values of t (a shape or pads input). */
static int ints_of(im *x, const Onnx__TensorProto *t, const char *what, int64_t *v, int max,
                   int *count)
{
    int64_t n = elems(t);
    if (!t->has_data_type || t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || n < 0 ||
        n > max)
        return fail(x, "%s is not an int64 tensor of at most %d values", what, max);
    *count = (int)n;
    if (t->has_raw_data && t->raw_data.len) {
        if ((int64_t)t->raw_data.len != n * 8)
            return fail(x, "%s holds %zu bytes for %lld int64 values", what, t->raw_data.len,
                        (long long)n);
        memcpy(v, t->raw_data.data, (size_t)n * 8);
        return 0;
    }
    if ((int64_t)t->n_int64_data != n)
        return fail(x, "%s holds %zu values for its %lld elements", what, t->n_int64_data,
                    (long long)n);
    if (n) /* an empty tensor's list may be NULL, which memcpy must never see */
        memcpy(v, t->int64_data, (size_t)n * 8);
    return 0;
}

/* Input k of the node as a known tensor, or NULL with the error (required) or without
 * (optional and absent). */
static const Onnx__TensorProto *input_const(im *x, size_t k, const char *what, int required)
{
    if (k >= x->nd->n_input || empty(x->nd->input[k])) {
        if (required)
            fail(x, "it has no %s", what);
        return NULL;
    }
    const Onnx__TensorProto *t = find_known(x, x->nd->input[k]);
    if (!t)
        fail(x, "its %s '%s' is computed in the graph; cnnc needs it as a constant "
                "(an initializer)", what, x->nd->input[k]);
    return t;
}

/* A float constant input with exactly the given dims (n of them); NULL after the error. */
static const float *input_floats(im *x, size_t k, const char *what, const int64_t *dims, int n,
                                 int required)
{
    const Onnx__TensorProto *t = input_const(x, k, what, required);
    if (!t)
        return NULL;
    int ok = (int)t->n_dims == n;
    for (int i = 0; ok && i < n; i++)
        ok = t->dims[i] == dims[i];
    /* A bias or a per-channel vector may come as [1, U]. */
    if (!ok && n == 1 && t->n_dims == 2 && t->dims[0] == 1 && t->dims[1] == dims[0])
        ok = 1;
    if (!ok) {
        char want[96], got[96];
        ints_text(dims, n, want, sizeof want);
        ints_text(t->dims, (int)t->n_dims, got, sizeof got);
        fail(x, "its %s has shape %s, and cnnc expects %s here", what, got, want);
        return NULL;
    }
    int64_t count;
    return floats_of(x, t, what, &count);
}

/* ---- values and statements ---- */

/* How many inputs of the graph's nodes, and outputs of the graph, name this value. */
static int readers(const im *x, const char *name)
{
    int n = 0;
    for (size_t i = 0; i < x->g->n_node; i++)
        for (size_t k = 0; k < x->g->node[i]->n_input; k++)
            n += is(x->g->node[i]->input[k], name);
    for (size_t i = 0; i < x->g->n_output; i++)
        n += is(x->g->output[i]->name, name);
    return n;
}

static const value *find_value(const im *x, const char *name)
{
    for (int i = x->n_vals - 1; i >= 0; i--)
        if (is(x->vals[i].name, name))
            return &x->vals[i];
    return NULL;
}

/* Records the current value under its name. */
static int keep_value(im *x)
{
    if (find_value(x, x->cur.name))
        return 0;
    value *v = room_for_one(x, x->vals, x->n_vals, &x->cap_vals, sizeof *v);
    if (!v)
        return -1;
    x->vals = v;
    x->vals[x->n_vals++] = x->cur;
    return 0;
}

/* Whether the node may change the last statement rather than add one (take in an activation,
 * a bias, the softmax): it reads that statement's output, which nothing else reads under any
 * of its names. */
static int fusable(const im *x)
{
    if (!x->n_stmt || x->cur.stmt != x->n_stmt - 1)
        return 0;
    int names = 0, reads = 0;
    for (int i = 0; i < x->n_vals; i++)
        if (x->vals[i].stmt == x->cur.stmt) {
            names++;
            reads += readers(x, x->vals[i].name);
        }
    return reads == names;
}

static int is_identifier(const char *s);

/* Words a label cannot be: the statements', the activations' and the options' words. */
static int reserved(const char *w)
{
    static const char *const words[] = {"input", "from", "network", "train", "linear", "relu",
                                        "leaky_relu", "sigmoid", "tanh", "softmax", "avg",
                                        "max", "same", "valid", "loss", NULL};
    if (cnn_layer_find(w))
        return 1;
    for (int i = 0; words[i]; i++)
        if (is(words[i], w))
            return 1;
    return 0;
}

/* The name of statement i's output in the .net file ("input" for the network's input): its
 * ONNX value's name made an identifier, unique, or "vN". */
static const char *label_of(im *x, int i)
{
    if (i < 0)
        return "input";
    stmt *s = &x->s[i];
    if (s->label[0])
        return s->label;
    const char *name = NULL;
    for (int k = 0; k < x->n_vals; k++)
        if (x->vals[k].stmt == i)
            name = x->vals[k].name;
    char buf[48];
    size_t n = 0;
    for (const char *c = name ? name : ""; *c && n + 1 < 40; c++) {
        char ch = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                          (*c >= '0' && *c <= '9') ? *c : '_';
        if (ch == '_' && (n == 0 || buf[n - 1] == '_'))
            continue;
        buf[n++] = ch;
    }
    while (n && buf[n - 1] == '_')
        n--;
    buf[n] = '\0';
    /* PyTorch names a node's output NODE_output_0: the node's name says it. */
    static const char suffix[] = "_output_0";
    if (n > sizeof suffix - 1 && is(buf + n - (sizeof suffix - 1), suffix))
        buf[n - (sizeof suffix - 1)] = '\0';
    int taken = !is_identifier(buf) || reserved(buf);
    for (int k = 0; k < x->n_stmt && !taken; k++)
        taken = is(x->s[k].label, buf);
    if (taken)
        snprintf(buf, sizeof buf, "v%d", i + 1);
    snprintf(s->label, sizeof s->label, "%s", buf);
    return s->label;
}

static stmt *add_stmt(im *x, cnn_layer_type type)
{
    stmt *grown = room_for_one(x, x->s, x->n_stmt, &x->cap_stmt, sizeof *grown);
    if (!grown)
        return NULL;
    x->s = grown;
    stmt *s = &x->s[x->n_stmt];
    memset(s, 0, sizeof *s);
    s->type = type;
    /* It reads the current value: the previous statement's output, or another named. */
    if (x->cur.stmt != x->n_stmt - 1)
        snprintf(s->from, sizeof s->from, "%s", label_of(x, x->cur.stmt));
    x->n_stmt++;
    return s;
}

static float *alloc_floats(im *x, long n)
{
    float *v = cnn_arena_alloc(x->a, sizeof(float) * (size_t)(n ? n : 1));
    if (!v)
        oom(x);
    return v;
}

static void add_tensor(stmt *s, const float *v, long n)
{
    s->t.value[s->t.n] = v;
    s->t.size[s->t.n++] = n;
}

/* The shortest decimal that reads back (through a double, as the .net parser reads numbers)
 * as exactly the float v: imported values keep their bits. */
static void float_text(float v, char *buf, size_t cap)
{
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, cap, "%.*g", p, (double)v);
        if ((float)strtod(buf, NULL) == v)
            return;
    }
    snprintf(buf, cap, "%.9g", (double)v);
}

/* An option " key=value" appended to s->opts. */
static void add_opt(stmt *s, const char *key, const char *val)
{
    size_t k = strlen(s->opts);
    snprintf(s->opts + k, sizeof s->opts - k, " %s=%s", key, val);
}

static void add_float_opt(stmt *s, const char *key, float v)
{
    char buf[32];
    float_text(v, buf, sizeof buf);
    add_opt(s, key, buf);
}

/* The node reads the current value as input 0 and makes output 0; the next one reads that. */
static int chain(im *x)
{
    if (x->nd->n_input < 1 || !is(x->nd->input[0], x->cur.name))
        return fail(x, "it reads '%s', which no node before it computes",
                    x->nd->n_input ? x->nd->input[0] : "nothing");
    if (x->nd->n_output < 1 || empty(x->nd->output[0]))
        return fail(x, "it has no output");
    for (size_t k = 1; k < x->nd->n_output; k++)
        if (!empty(x->nd->output[k]))
            return fail(x, "its output %zu ('%s') is used, and cnnc computes only the first",
                        k, x->nd->output[k]);
    x->cur.name = x->nd->output[0];
    return 0;
}

static int need_rank(im *x, int rank)
{
    if (x->cur.rank != rank)
        return fail(x, "it needs a rank-%d input, and its input has rank %d", rank, x->cur.rank);
    return 0;
}

/* An image (rank 4) or a 1-D tensor (rank 3), channels first as ONNX's ops read them. */
static int need_image(im *x)
{
    if (x->cur.rank != 4 && x->cur.rank != 3)
        return fail(x, "it needs an [N, C, H, W] or [N, C, L] input, and its input has rank %d",
                    x->cur.rank);
    if (x->cur.nhwc)
        return fail(x, "its input is channels-last after a Transpose; ONNX's %s reads NCHW",
                    x->nd->op_type);
    return 0;
}

/* A value with a flat layout again (the first dense layer read the permutation). */
static void clear_perm(im *x)
{
    x->cur.perm = NULL;
}

/* v (n features in ONNX's order) in cnnc's order. */
static const float *permuted(im *x, const float *v, int n)
{
    if (!x->cur.perm || !v)
        return v;
    float *p = alloc_floats(x, n);
    if (p)
        for (int j = 0; j < n; j++)
            p[j] = v[x->cur.perm[j]];
    return p;
}

/* ---- the ops ---- */

/* Padding along one axis: 0 valid, 1 same, 2 both (same pads nothing here), -1 neither. */
static int pad_kind(int64_t in, int64_t k, int64_t s, int64_t before, int64_t after)
{
    int64_t out = (in + s - 1) / s, total = (out - 1) * s + k - in;
    if (total < 0)
        total = 0;
    int same = before == total / 2 && after == total - total / 2;
    int valid = before == 0 && after == 0;
    return valid ? (same ? 2 : 0) : same ? 1 : -1;
}

static int op_conv(im *x)
{
    static const char *const allowed[] = {"kernel_shape", "strides", "pads", "dilations",
                                          "group", "auto_pad", NULL};
    if (only_attrs(x, allowed) || need_image(x))
        return -1;
    const Onnx__TensorProto *W = input_const(x, 1, "weight", 1);
    if (!W)
        return -1;
    if ((int)W->n_dims != x->cur.rank)
        return fail(x, "its weight has rank %d, and its input %d", (int)W->n_dims, x->cur.rank);
    int one_d = x->cur.rank == 3;
    int64_t F = W->dims[0], C = x->cur.c, KH = one_d ? 1 : W->dims[2],
            KW = one_d ? W->dims[2] : W->dims[3];
    int64_t group = attr_int(x->nd, "group", 1);
    /* A group per input channel, each of M filters of one channel: cnnc's dwconv, whose
     * output channel c * M + m is ONNX's too. Other groupings cnnc has no layer for. */
    int depthwise = group == C && C > 1 && W->dims[1] == 1 && F % C == 0;
    if (group != 1 && !depthwise)
        return fail(x, "attribute 'group' = %lld: cnnc has depthwise convolutions (a group per "
                       "input channel) and ungrouped ones, not other groupings",
                    (long long)group);
    if (W->dims[1] != (depthwise ? 1 : C))
        return fail(x, "its weight has %lld input channels, and its input %lld",
                    (long long)W->dims[1], (long long)C);
    int64_t ks[2], st[2], dil[2], pads[4];
    char buf[64];
    if (attr_spatial(x, "kernel_shape", 2, (int64_t[]){KH, KW}, ks) ||
        attr_spatial(x, "strides", 2, (int64_t[]){1, 1}, st) ||
        attr_spatial(x, "dilations", 2, (int64_t[]){1, 1}, dil) ||
        attr_spatial(x, "pads", 4, (int64_t[]){0, 0, 0, 0}, pads))
        return -1;
    if (ks[0] != KH || ks[1] != KW)
        return fail(x, "attribute 'kernel_shape' disagrees with its weight's shape");
    if (dil[0] != 1 || dil[1] != 1) {
        ints_text(dil, 2, buf, sizeof buf);
        return fail(x, "attribute 'dilations' = %s: cnnc's convolutions are not dilated", buf);
    }
    if (st[0] < 1 || st[1] < 1 || KH < 1 || KW < 1 || F < 1 || F > 1 << 20 || KH > 1 << 16 ||
        KW > 1 << 16 || st[0] > 1 << 16 || st[1] > 1 << 16)
        return fail(x, "its kernel, strides or filter count are out of range");
    const char *ap = attr_string(x->nd, "auto_pad", "NOTSET", buf, sizeof buf);
    int in_h = x->cur.h, in_w = x->cur.w, same;
    if (x->pad_node) {
        in_h -= (int)(x->pending_pad[0] + x->pending_pad[2]);
        in_w -= (int)(x->pending_pad[1] + x->pending_pad[3]);
    }
    if (is(ap, "NOTSET")) {
        for (int i = 0; i < 4; i++)
            pads[i] += x->pad_node ? x->pending_pad[i] : 0;
        int kh = pad_kind(in_h, KH, st[0], pads[0], pads[2]);
        int kw = pad_kind(in_w, KW, st[1], pads[1], pads[3]);
        /* Both axes valid, or both same (2: either fits). */
        if (kh < 0 || kw < 0 || (kh == 0 && kw == 1) || (kh == 1 && kw == 0)) {
            ints_text(pads, 4, buf, sizeof buf);
            return fail(x, "pads %s%s (top, left, bottom, right) on a %dx%d input: cnnc pads "
                           "nothing (valid) or as TensorFlow's same, the odd row or column "
                           "after", buf, x->pad_node ? ", with the Pad before it," : "", in_h,
                        in_w);
        }
        same = kh == 1 || kw == 1;
    } else if (is(ap, "VALID")) {
        same = 0;
    } else if (is(ap, "SAME_UPPER") || is(ap, "SAME_LOWER")) {
        same = 1;
        int64_t th = ((in_h + st[0] - 1) / st[0] - 1) * st[0] + KH - in_h;
        int64_t tw = ((in_w + st[1] - 1) / st[1] - 1) * st[1] + KW - in_w;
        if (is(ap, "SAME_LOWER") && ((th > 0 && th % 2) || (tw > 0 && tw % 2)))
            return fail(x, "auto_pad SAME_LOWER puts the odd row or column before the input, "
                           "and cnnc's same padding after it");
    } else
        return fail(x, "attribute 'auto_pad' = '%s' is not one cnnc knows", ap);
    if (x->pad_node && !same)
        return fail(x, "the Pad before it pads, and the convolution then is not cnnc's same");
    x->pad_node = NULL;
    const float *w = floats_of(x, W, "weight", &(int64_t){0});
    if (!w)
        return -1;
    const float *b = input_floats(x, 2, "bias", (int64_t[]){F}, 1, 0);
    if (!b && !empty(x->err))
        return -1;
    stmt *s = add_stmt(x, depthwise ? CNN_LAYER_DWCONV : CNN_LAYER_CONV);
    /* [F][C][KH][KW], or [F][C][KW] for 1-D: the same order with KH = 1. Depthwise:
     * [F][1][KH][KW] to [KH][KW][C][M], output channel f = c * M + m in both. */
    long k_size = (long)(KH * KW * (depthwise ? 1 : C) * F);
    float *k = alloc_floats(x, k_size);
    if (!s || !k)
        return -1;
    if (depthwise)
        for (int64_t f = 0; f < F; f++)
            for (int64_t ky = 0; ky < KH; ky++)
                for (int64_t kx = 0; kx < KW; kx++)
                    k[(ky * KW + kx) * F + f] = w[(f * KH + ky) * KW + kx];
    else
        for (int64_t f = 0; f < F; f++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t ky = 0; ky < KH; ky++)
                    for (int64_t kx = 0; kx < KW; kx++)
                        k[((ky * KW + kx) * C + c) * F + f] = w[((f * C + c) * KH + ky) * KW + kx];
    if (depthwise)
        snprintf(s->args, sizeof s->args, "%lldx%lld", (long long)KH, (long long)KW);
    else
        snprintf(s->args, sizeof s->args, "%lld %lldx%lld", (long long)F, (long long)KH,
                 (long long)KW);
    if (depthwise && F != C) {
        char mv[32];
        snprintf(mv, sizeof mv, "%lld", (long long)(F / C));
        add_opt(s, "multiplier", mv);
    }
    if (st[0] != 1 || st[1] != 1) {
        char sv[48];
        snprintf(sv, sizeof sv, st[0] == st[1] ? "%lld" : "%lldx%lld", (long long)st[0],
                 (long long)st[1]);
        add_opt(s, "stride", sv);
    }
    if (same)
        add_opt(s, "pad", "same");
    add_tensor(s, k, k_size);
    if (b)
        add_tensor(s, b, (long)F);
    else
        add_opt(s, "bias", "no");
    if (chain(x))
        return -1;
    int oh = same ? (int)((in_h + st[0] - 1) / st[0]) : (int)((in_h - KH) / st[0] + 1);
    int ow = same ? (int)((in_w + st[1] - 1) / st[1]) : (int)((in_w - KW) / st[1] + 1);
    if (oh < 1 || ow < 1)
        return fail(x, "its kernel is larger than its input");
    x->cur.h = oh, x->cur.w = ow, x->cur.c = (int)F;
    return 0;
}

static int op_pad(im *x)
{
    static const char *const allowed[] = {"mode", "pads", "value", NULL};
    if (only_attrs(x, allowed) || need_image(x))
        return -1;
    char buf[32];
    if (!is(attr_string(x->nd, "mode", "constant", buf, sizeof buf), "constant"))
        return fail(x, "mode '%s': cnnc pads with zeros only", buf);
    int64_t p[8];
    int n = 0, r = x->cur.rank;
    float value = attr_float(x->nd, "value", 0);
    if (x->opset >= 11) {
        const Onnx__TensorProto *t = input_const(x, 1, "pads", 1);
        if (!t || ints_of(x, t, "pads", p, 8, &n))
            return -1;
        const Onnx__TensorProto *v = input_const(x, 2, "constant value", 0);
        int64_t cnt;
        const float *vf = v ? floats_of(x, v, "constant value", &cnt) : NULL;
        if (v && (!vf || cnt != 1))
            return vf ? fail(x, "its constant value is not one number") : -1;
        value = vf ? vf[0] : 0;
        if (x->nd->n_input > 3 && !empty(x->nd->input[3]))
            return fail(x, "it pads only some axes (an 'axes' input), which cnnc does not read");
    } else {
        const Onnx__AttributeProto *at = attr(x->nd, "pads");
        n = at ? (int)at->n_ints : 0;
        if (n > 8)
            return fail(x, "attribute 'pads' has %d values", n);
        if (n)
            memcpy(p, at->ints, sizeof(int64_t) * (size_t)n);
    }
    if (n != 2 * r)
        return fail(x, "it pads %d axes' ends; its rank-%d input has %d", n, r, 2 * r);
    if (value != 0)
        return fail(x, "it pads with %g: cnnc's same padding pads with zeros", (double)value);
    /* Begins then ends, per axis: N, C, (H,) W. */
    int64_t top = r == 4 ? p[2] : 0, left = p[r - 1], bottom = r == 4 ? p[6] : 0,
            right = p[2 * r - 1];
    if (p[0] || p[1] || p[r] || p[r + 1] || top < 0 || left < 0 || bottom < 0 || right < 0)
        return fail(x, "it pads the batch or channel axis, or crops: only the rows and columns "
                       "before a convolution can be cnnc's same padding");
    if (!top && !left && !bottom && !right) /* pads nothing: PyTorch writes these */
        return chain(x);
    if (x->pad_node)
        return fail(x, "two Pad nodes in a row");
    x->pending_pad[0] = top, x->pending_pad[1] = left, x->pending_pad[2] = bottom,
    x->pending_pad[3] = right;
    x->pad_node = x->nd;
    if (chain(x))
        return -1;
    x->cur.h += (int)(top + bottom);
    x->cur.w += (int)(left + right);
    return 0;
}

static int op_pool(im *x, int avg)
{
    static const char *const allowed[] = {"kernel_shape", "strides", "pads", "dilations",
                                          "auto_pad", "ceil_mode", "storage_order",
                                          "count_include_pad", NULL};
    if (only_attrs(x, allowed) || need_image(x))
        return -1;
    int64_t ks[2], st[2], dil[2], pads[4];
    char buf[64];
    if (!attr(x->nd, "kernel_shape"))
        return fail(x, "it has no kernel_shape");
    if (attr_spatial(x, "kernel_shape", 2, (int64_t[]){1, 1}, ks) ||
        attr_spatial(x, "strides", 2, (int64_t[]){1, 1}, st) ||
        attr_spatial(x, "dilations", 2, (int64_t[]){1, 1}, dil) ||
        attr_spatial(x, "pads", 4, (int64_t[]){0, 0, 0, 0}, pads))
        return -1;
    if (dil[0] != 1 || dil[1] != 1)
        return fail(x, "attribute 'dilations': cnnc's pools are not dilated");
    if (pads[0] || pads[1] || pads[2] || pads[3]) {
        ints_text(pads, 4, buf, sizeof buf);
        return fail(x, "attribute 'pads' = %s: cnnc's pools pad only as TensorFlow's same "
                       "(auto_pad SAME_UPPER)", buf);
    }
    const char *ap = attr_string(x->nd, "auto_pad", "NOTSET", buf, sizeof buf);
    int same = is(ap, "SAME_UPPER");
    if (!is(ap, "NOTSET") && !is(ap, "VALID") && !same)
        return fail(x, "attribute 'auto_pad' = '%s': cnnc's pools pad only as TensorFlow's "
                       "same (SAME_UPPER)", ap);
    if (same && avg && attr_int(x->nd, "count_include_pad", 0))
        return fail(x, "attribute 'count_include_pad' = 1 averages the padding in; cnnc's same "
                       "pooling leaves it out, as TensorFlow's");
    if (ks[0] < 1 || ks[1] < 1 || st[0] < 1 || st[1] < 1 ||
        (!same && (ks[0] > x->cur.h || ks[1] > x->cur.w)))
        return fail(x, "its window %lldx%lld (strides %lldx%lld) does not fit its %dx%d input",
                    (long long)ks[0], (long long)ks[1], (long long)st[0], (long long)st[1],
                    x->cur.h, x->cur.w);
    /* ceil_mode changes the output only where the windows do not end at the edge. */
    if (!same && attr_int(x->nd, "ceil_mode", 0) &&
        ((x->cur.h - ks[0]) % st[0] || (x->cur.w - ks[1]) % st[1]))
        return fail(x, "attribute 'ceil_mode' = 1 adds a partial window, and cnnc's pools have "
                       "only whole ones");
    stmt *s = add_stmt(x, CNN_LAYER_POOL);
    if (!s)
        return -1;
    snprintf(s->args, sizeof s->args, "%lldx%lld%s", (long long)ks[0], (long long)ks[1],
             avg ? " avg" : "");
    if (st[0] != ks[0] || st[1] != ks[1]) {
        char sv[48];
        snprintf(sv, sizeof sv, st[0] == st[1] ? "%lld" : "%lldx%lld", (long long)st[0],
                 (long long)st[1]);
        add_opt(s, "stride", sv);
    }
    if (same)
        add_opt(s, "pad", "same");
    if (chain(x))
        return -1;
    x->cur.h = same ? (int)((x->cur.h + st[0] - 1) / st[0]) : (int)((x->cur.h - ks[0]) / st[0] + 1);
    x->cur.w = same ? (int)((x->cur.w + st[1] - 1) / st[1]) : (int)((x->cur.w - ks[1]) / st[1] + 1);
    return 0;
}

/* N x C x 1 x 1, which cnnc's gap gives as the vector of C features a Flatten would make. */
static int op_gap(im *x)
{
    if (only_attrs(x, (const char *const[]){NULL}) || need_image(x))
        return -1;
    if (!add_stmt(x, CNN_LAYER_GAP) || chain(x))
        return -1;
    x->cur.rank = 2;
    x->cur.h = x->cur.w = 1;
    return 0;
}

static int op_batchnorm(im *x)
{
    static const char *const allowed[] = {"epsilon", "momentum", "spatial", "training_mode",
                                          "is_test", "consumed_inputs", NULL};
    if (only_attrs(x, allowed))
        return -1;
    if (x->cur.rank != 2 && need_image(x))
        return -1;
    if (attr_int(x->nd, "spatial", 1) != 1)
        return fail(x, "attribute 'spatial' = 0 normalizes each pixel apart; cnnc's batchnorm "
                       "normalizes each channel");
    if (attr_int(x->nd, "training_mode", 0) != 0)
        return fail(x, "attribute 'training_mode' = 1: cnnc imports the inference graph");
    int C = x->cur.c;
    const int64_t dims[1] = {C};
    const float *v[4];
    static const char *const what[4] = {"scale", "bias (B)", "mean", "variance"};
    for (int i = 0; i < 4; i++)
        if (!(v[i] = input_floats(x, (size_t)i + 1, what[i], dims, 1, 1)))
            return -1;
    float eps = attr_float(x->nd, "epsilon", 1e-5f), mom = attr_float(x->nd, "momentum", 0.9f);
    if (!(eps > 0) || !(mom >= 0 && mom < 1))
        return fail(x, "epsilon %g or momentum %g out of cnnc's ranges (eps > 0, 0 <= momentum "
                       "< 1)", (double)eps, (double)mom);
    stmt *s = add_stmt(x, CNN_LAYER_BATCHNORM);
    if (!s)
        return -1;
    if (mom != 0.99f)
        add_float_opt(s, "momentum", mom);
    if (eps != 0.001f)
        add_float_opt(s, "eps", eps);
    for (int i = 0; i < 4; i++) {
        const float *p = x->cur.rank == 2 ? permuted(x, v[i], C) : v[i];
        if (!p)
            return -1;
        add_tensor(s, p, C);
    }
    return chain(x);
}

static int op_flatten(im *x)
{
    static const char *const allowed[] = {"axis", NULL};
    if (only_attrs(x, allowed))
        return -1;
    if (attr_int(x->nd, "axis", 1) != 1)
        return fail(x, "attribute 'axis' = %lld: cnnc flattens everything but the batch",
                    (long long)attr_int(x->nd, "axis", 1));
    if (x->cur.rank == 2)
        return chain(x);
    stmt *s = add_stmt(x, CNN_LAYER_FLATTEN);
    if (!s)
        return -1;
    int H = x->cur.h, W = x->cur.w, C = x->cur.c;
    if (!x->cur.nhwc) {
        /* ONNX flattens C, H, W (C, L: H = 1); cnnc H, W, C: cnnc's feature (y, x, c) is ONNX's (c, y, x). */
        int *perm = cnn_arena_alloc(x->a, sizeof(int) * (size_t)H * W * C);
        if (!perm)
            return oom(x);
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++)
                for (int c = 0; c < C; c++)
                    perm[(y * W + xx) * C + c] = (c * H + y) * W + xx;
        x->cur.perm = perm;
    }
    if (chain(x))
        return -1;
    x->cur.rank = 2;
    x->cur.c = H * W * C;
    x->cur.h = x->cur.w = 1;
    return 0;
}

/* A Reshape to [N, features]: PyTorch's x.view(x.size(0), -1) with the shape a constant. */
static int op_reshape(im *x)
{
    static const char *const allowed[] = {"allowzero", NULL};
    if (only_attrs(x, allowed))
        return -1;
    const Onnx__TensorProto *t = input_const(x, 1, "shape", 1);
    int64_t sh[8];
    int n;
    if (!t || ints_of(x, t, "shape", sh, 8, &n))
        return -1;
    int64_t F = (int64_t)x->cur.h * x->cur.w * x->cur.c;
    int allowzero = (int)attr_int(x->nd, "allowzero", 0);
    int flat = n == 2 && ((sh[0] == 0 && !allowzero) || sh[0] == -1 || sh[0] >= 1) &&
               (sh[1] == F || (sh[1] == -1 && sh[0] != -1));
    if (!flat) {
        char buf[96];
        ints_text(sh, n, buf, sizeof buf);
        return fail(x, "shape %s: cnnc reshapes only to [batch, %lld] (a flatten)", buf,
                    (long long)F);
    }
    if (x->cur.rank == 2)
        return chain(x);
    return op_flatten(x);
}

static int op_gemm(im *x)
{
    static const char *const allowed[] = {"alpha", "beta", "transA", "transB", "broadcast",
                                          NULL};
    if (only_attrs(x, allowed) || need_rank(x, 2))
        return -1;
    if (attr_float(x->nd, "alpha", 1) != 1 || attr_float(x->nd, "beta", 1) != 1 ||
        attr_int(x->nd, "transA", 0) != 0)
        return fail(x, "alpha, beta or transA other than 1, 1, 0: cnnc's dense layer is "
                       "x W + b");
    const Onnx__TensorProto *B = input_const(x, 1, "weight (B)", 1);
    if (!B)
        return -1;
    int transB = (int)attr_int(x->nd, "transB", 0);
    if (B->n_dims != 2)
        return fail(x, "its weight has rank %d, not 2", (int)B->n_dims);
    int64_t I = transB ? B->dims[1] : B->dims[0], U = transB ? B->dims[0] : B->dims[1];
    if (I != x->cur.c)
        return fail(x, "its weight takes %lld inputs, and its input has %d", (long long)I,
                    x->cur.c);
    if (U < 1 || U > 1 << 24)
        return fail(x, "its unit count %lld is out of range", (long long)U);
    const float *w = floats_of(x, B, "weight (B)", &(int64_t){0});
    if (!w)
        return -1;
    const float *b = input_floats(x, 2, "bias (C)", (int64_t[]){U}, 1, 0);
    if (!b && !empty(x->err))
        return -1;
    stmt *s = add_stmt(x, CNN_LAYER_DENSE);
    float *k = alloc_floats(x, (long)(I * U));
    if (!s || !k)
        return -1;
    for (int64_t i = 0; i < I; i++) {
        int64_t src = x->cur.perm ? x->cur.perm[i] : i;
        for (int64_t j = 0; j < U; j++)
            k[i * U + j] = transB ? w[j * I + src] : w[src * U + j];
    }
    snprintf(s->args, sizeof s->args, "%lld", (long long)U);
    add_tensor(s, k, (long)(I * U));
    if (b)
        add_tensor(s, b, (long)U);
    else
        add_opt(s, "bias", "no");
    clear_perm(x);
    if (chain(x))
        return -1;
    x->cur.c = (int)U;
    return 0;
}

/* MatMul(x, W) as a dense layer without a bias; an Add of a constant after it is its bias. */
static int op_matmul(im *x)
{
    static const char *const none[] = {NULL};
    if (only_attrs(x, none) || need_rank(x, 2))
        return -1;
    const Onnx__TensorProto *B = input_const(x, 1, "weight", 1);
    if (!B)
        return -1;
    if (B->n_dims != 2 || B->dims[0] != x->cur.c || B->dims[1] < 1 || B->dims[1] > 1 << 24)
        return fail(x, "its weight is not [%d, units]", x->cur.c);
    int64_t I = B->dims[0], U = B->dims[1];
    const float *w = floats_of(x, B, "weight", &(int64_t){0});
    stmt *s = w ? add_stmt(x, CNN_LAYER_DENSE) : NULL;
    float *k = s ? alloc_floats(x, (long)(I * U)) : NULL;
    if (!k)
        return -1;
    for (int64_t i = 0; i < I; i++)
        for (int64_t j = 0; j < U; j++)
            k[i * U + j] = w[(x->cur.perm ? x->cur.perm[i] : i) * U + j];
    snprintf(s->args, sizeof s->args, "%lld", (long long)U);
    add_opt(s, "bias", "no");
    add_tensor(s, k, (long)(I * U));
    s->from_matmul = 1;
    clear_perm(x);
    if (chain(x))
        return -1;
    x->cur.c = (int)U;
    return 0;
}

/* Add, Sum, Concat of computed values: cnnc's add and concat. The first operand is the value
 * read as input 0; the others are named by their statements' labels. */
static int op_join(im *x, cnn_layer_type type)
{
    int n = (int)x->nd->n_input, concat = type == CNN_LAYER_CONCAT;
    if (n < 2 || n > CNN_MAX_INPUTS)
        return fail(x, "it joins %d tensors; cnnc's %s takes 2 to %d", n,
                    concat ? "concat" : "add", CNN_MAX_INPUTS);
    if (concat) {
        static const char *const allowed[] = {"axis", NULL};
        if (only_attrs(x, allowed))
            return -1;
        int64_t axis = attr_int(x->nd, "axis", 1), r = x->cur.rank;
        int channels = x->cur.nhwc ? axis == 3 || axis == -1
                                   : axis == 1 || axis == 1 - r;
        if (!channels)
            return fail(x, "attribute 'axis' = %lld: cnnc's concat joins channels (features)",
                        (long long)axis);
    }
    int c = x->cur.c;
    char ops[CNN_MAX_INPUTS][48];
    for (int k = 1; k < n; k++) {
        const value *v = find_value(x, x->nd->input[k]);
        if (!v)
            return fail(x, "its input '%s' is no value a node before it computes (cnnc adds a "
                           "constant only as the bias after a MatMul)", x->nd->input[k]);
        int same_perm = v->perm == x->cur.perm ||
                        (!concat && v->perm && x->cur.perm &&
                         !memcmp(v->perm, x->cur.perm, sizeof(int) * (size_t)c));
        if (v->rank != x->cur.rank || v->nhwc != x->cur.nhwc || v->h != x->cur.h ||
            v->w != x->cur.w || (!concat && v->c != x->cur.c) || !same_perm)
            return fail(x, "its inputs '%s' and '%s' differ in shape or layout%s",
                        x->nd->input[0], x->nd->input[k],
                        concat ? " (cnnc joins channels of images of one size, or features "
                                 "not flattened from NCHW)" : "");
        snprintf(ops[k], sizeof ops[k], "%s", label_of(x, v->stmt));
        c += v->c;
    }
    if (concat && x->cur.perm)
        return fail(x, "it joins features flattened from NCHW, in another order than cnnc's");
    stmt *st = add_stmt(x, type);
    if (!st)
        return -1;
    size_t len = 0;
    for (int k = 1; k < n; k++)
        len += (size_t)snprintf(st->args + len, sizeof st->args - len, "%s%s", k > 1 ? " " : "",
                                ops[k]);
    if (len >= sizeof st->args)
        return fail(x, "its inputs' names are too long");
    if (chain(x))
        return -1;
    if (concat)
        x->cur.c = c;
    return 0;
}

/* An Add with a constant is the bias of the MatMul before it; of two computed values, add. */
static int op_add(im *x)
{
    int k_const = x->nd->n_input != 2 ? -1 : find_known(x, x->nd->input[0]) ? 0
                                          : find_known(x, x->nd->input[1]) ? 1 : -1;
    if (k_const < 0)
        return op_join(x, CNN_LAYER_ADD);
    if (k_const == 0) { /* the value is the second operand */
        const value *v = find_value(x, x->nd->input[1]);
        if (!v)
            return fail(x, "it reads '%s', which no node before it computes", x->nd->input[1]);
        x->cur = *v;
    }
    stmt *s = fusable(x) ? &x->s[x->n_stmt - 1] : NULL;
    if (!s || !s->from_matmul || s->act != CNN_ACT_LINEAR)
        return fail(x, "cnnc imports an Add of a constant only as the bias after a MatMul "
                       "whose output nothing else reads");
    const float *b = input_floats(x, (size_t)k_const, "bias", (int64_t[]){x->cur.c}, 1, 1);
    if (!b)
        return -1;
    s->from_matmul = 0;
    s->opts[0] = '\0'; /* no longer bias=no */
    add_tensor(s, b, x->cur.c);
    if (x->nd->n_output < 1 || empty(x->nd->output[0]))
        return fail(x, "it has no output");
    x->cur.name = x->nd->output[0];
    return 0;
}

static int op_dropout(im *x)
{
    static const char *const allowed[] = {"ratio", "seed", "is_test", "consumed_inputs", NULL};
    if (only_attrs(x, allowed))
        return -1;
    float ratio = attr_float(x->nd, "ratio", 0.5f);
    if (x->opset >= 12) {
        const Onnx__TensorProto *r = input_const(x, 1, "ratio", 0);
        int64_t n;
        const float *v = r ? floats_of(x, r, "ratio", &n) : NULL;
        if (r && (!v || n != 1))
            return v ? fail(x, "its ratio is not one number") : -1;
        ratio = v ? v[0] : 0.5f;
        const Onnx__TensorProto *tm = input_const(x, 2, "training_mode", 0);
        int is_false = tm && ((tm->has_raw_data && tm->raw_data.len == 1 && !tm->raw_data.data[0]) ||
                              (tm->n_int32_data == 1 && tm->int32_data[0] == 0));
        if (tm && !is_false)
            return fail(x, "its training_mode is not false: cnnc imports the inference graph");
    }
    if (!empty(x->err))
        return -1;
    if (!(ratio >= 0 && ratio < 1))
        return fail(x, "ratio %g: cnnc's dropout needs 0 <= rate < 1", (double)ratio);
    stmt *s = add_stmt(x, CNN_LAYER_DROPOUT);
    if (!s)
        return -1;
    float_text(ratio, s->args, sizeof s->args);
    return chain(x);
}

/* Relu, LeakyRelu, Sigmoid, Tanh: taken into the conv or dense layer just before it where that
 * has none, else an activation statement. */
static int op_activation(im *x, cnn_act act)
{
    /* consumed_inputs: operator sets before 6, a hint for memory reuse. */
    static const char *const alpha[] = {"alpha", "consumed_inputs", NULL},
                             *const none[] = {"consumed_inputs", NULL};
    if (only_attrs(x, act == CNN_ACT_LEAKY_RELU ? alpha : none))
        return -1;
    float a = attr_float(x->nd, "alpha", 0.01f); /* ONNX's LeakyRelu default */
    if (act == CNN_ACT_LEAKY_RELU && !(a >= 0 && a <= 1))
        return fail(x, "alpha %g: cnnc's leaky_relu needs 0 <= alpha <= 1", (double)a);
    stmt *s = x->n_stmt ? &x->s[x->n_stmt - 1] : NULL;
    /* cnnc onnx names a layer's own activation "LAYER/relu", an activation layer "LAYER". */
    const char *slash = x->nd->name ? strrchr(x->nd->name, '/') : NULL;
    int own = !x->from_cnnc || (slash && strcmp(slash + 1, cnn_act_name(act)) == 0);
    if (!s || !fusable(x) ||
        !(s->type == CNN_LAYER_CONV || s->type == CNN_LAYER_DWCONV ||
          s->type == CNN_LAYER_DENSE) ||
        s->act != CNN_ACT_LINEAR || !own)
        s = add_stmt(x, CNN_LAYER_ACTIVATION);
    if (!s)
        return -1;
    s->from_matmul = 0; /* a bias after the activation is not the dense layer's */
    s->act = act;
    s->alpha = a;
    return chain(x);
}

static int op_softmax(im *x)
{
    static const char *const allowed[] = {"axis", NULL};
    if (only_attrs(x, allowed) || need_rank(x, 2))
        return -1;
    int64_t axis = attr_int(x->nd, "axis", x->opset >= 13 ? -1 : 1);
    if (axis != 1 && axis != -1)
        return fail(x, "attribute 'axis' = %lld: cnnc's softmax is over the features",
                    (long long)axis);
    stmt *s = x->n_stmt ? &x->s[x->n_stmt - 1] : NULL;
    if (!s || !fusable(x) || s->type != CNN_LAYER_DENSE || s->act != CNN_ACT_LINEAR)
        return fail(x, "cnnc's softmax is the activation of a dense layer whose output nothing "
                       "else reads, and this one follows %s", s ? "another layer" : "the input");
    s->act = CNN_ACT_SOFTMAX;
    s->from_matmul = 0;
    x->done = 1;
    return chain(x);
}

static int op_transpose(im *x)
{
    static const char *const allowed[] = {"perm", NULL};
    if (only_attrs(x, allowed))
        return -1;
    int64_t p[4];
    if (x->cur.rank != 4 || attr_ints(x, "perm", 4, (int64_t[]){3, 2, 1, 0}, p))
        return x->cur.rank != 4 ? fail(x, "cnnc transposes only image tensors") : -1;
    int to_nchw = p[0] == 0 && p[1] == 3 && p[2] == 1 && p[3] == 2;
    int to_nhwc = p[0] == 0 && p[1] == 2 && p[2] == 3 && p[3] == 1;
    if (!((to_nchw && x->cur.nhwc) || (to_nhwc && !x->cur.nhwc))) {
        char buf[64];
        ints_text(p, 4, buf, sizeof buf);
        return fail(x, "perm %s: cnnc takes a Transpose only between channels-last and "
                       "channels-first", buf);
    }
    x->cur.nhwc = to_nhwc;
    return chain(x);
}

static int op_identity(im *x)
{
    static const char *const none[] = {NULL};
    if (only_attrs(x, none))
        return -1;
    /* Of a constant (PyTorch copies parameters so): another name for it. */
    const Onnx__TensorProto *t = x->nd->n_input == 1 ? find_known(x, x->nd->input[0]) : NULL;
    if (t && x->nd->n_output == 1)
        return add_known(x, x->nd->output[0], t);
    return chain(x);
}

static int op_constant(im *x)
{
    const Onnx__AttributeProto *v = attr(x->nd, "value");
    if (x->nd->n_attribute != 1 || !v || !v->t || x->nd->n_output != 1)
        return fail(x, "cnnc reads a Constant only with a tensor 'value'");
    return add_known(x, x->nd->output[0], v->t);
}

/* ---- the graph ---- */

static int dispatch(im *x)
{
    const char *op = x->nd->op_type;
    if (!empty(x->nd->domain) && !is(x->nd->domain, "ai.onnx"))
        return fail(x, "domain '%s' is not ONNX's own", x->nd->domain);
    if (is(op, "Constant"))
        return op_constant(x);
    if (is(op, "Identity"))
        return op_identity(x);
    if (x->done)
        return fail(x, "it comes after the softmax, which must end a cnnc network");
    if (x->pad_node && (!is(op, "Conv") || x->nd->n_input < 1 ||
                        !is(x->nd->input[0], x->cur.name) || readers(x, x->cur.name) != 1)) {
        x->nd = x->pad_node;
        return fail(x, "cnnc takes a Pad only just before a Conv, as its same padding");
    }
    if (is(op, "Conv")) return op_conv(x);
    if (is(op, "Pad")) return op_pad(x);
    if (is(op, "MaxPool")) return op_pool(x, 0);
    if (is(op, "AveragePool")) return op_pool(x, 1);
    if (is(op, "GlobalAveragePool")) return op_gap(x);
    if (is(op, "BatchNormalization")) return op_batchnorm(x);
    if (is(op, "Flatten")) return op_flatten(x);
    if (is(op, "Reshape")) return op_reshape(x);
    if (is(op, "Gemm")) return op_gemm(x);
    if (is(op, "MatMul")) return op_matmul(x);
    if (is(op, "Add")) return op_add(x);
    if (is(op, "Sum")) return op_join(x, CNN_LAYER_ADD);
    if (is(op, "Concat")) return op_join(x, CNN_LAYER_CONCAT);
    if (is(op, "Dropout")) return op_dropout(x);
    if (is(op, "Relu")) return op_activation(x, CNN_ACT_RELU);
    if (is(op, "LeakyRelu")) return op_activation(x, CNN_ACT_LEAKY_RELU);
    if (is(op, "Sigmoid")) return op_activation(x, CNN_ACT_SIGMOID);
    if (is(op, "Tanh")) return op_activation(x, CNN_ACT_TANH);
    if (is(op, "Softmax")) return op_softmax(x);
    if (is(op, "Transpose")) return op_transpose(x);
    return fail(x, "cnnc has no layer for the op %s (it imports Conv, Pad, MaxPool, AveragePool, "
                   "GlobalAveragePool, BatchNormalization, Flatten, Reshape, Gemm, MatMul, Add, Sum, "
                   "Concat, Dropout, Relu, LeakyRelu, Sigmoid, Tanh, Softmax, Transpose, Identity, Constant)",
                op ? op : "?");
}

/* One node: the value it reads as input 0 becomes the current one (a value computed before,
 * not only the last), the op adds or changes a statement, and its output is recorded. */
static int node(im *x)
{
    if (x->nd->n_input >= 1 && !is(x->nd->input[0], x->cur.name) && !x->pad_node) {
        const value *v = find_value(x, x->nd->input[0]);
        if (v)
            x->cur = *v;
    }
    int before = x->n_stmt;
    if (dispatch(x))
        return -1;
    if (x->n_stmt != before)
        x->cur.stmt = x->n_stmt - 1;
    return keep_value(x);
}

/* The fixed dims of a graph value's tensor type (the batch may be symbolic); -1 if none. */
static int value_dims(const Onnx__ValueInfoProto *v, int64_t *d, int max)
{
    if (!v->type || v->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
        !v->type->tensor_type || !v->type->tensor_type->shape)
        return -1;
    const Onnx__TensorShapeProto *s = v->type->tensor_type->shape;
    if ((int)s->n_dim > max)
        return -1;
    for (size_t i = 0; i < s->n_dim; i++)
        d[i] = s->dim[i]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                   ? s->dim[i]->dim_value : -1;
    return (int)s->n_dim;
}

static int start(im *x, const Onnx__ModelProto *m, const cnn_onnx_binding *bind, int n_bind)
{
    const Onnx__GraphProto *g = x->g;
    x->opset = -1;
    for (size_t i = 0; i < m->n_opset_import; i++)
        if (empty(m->opset_import[i]->domain) || is(m->opset_import[i]->domain, "ai.onnx"))
            x->opset = m->opset_import[i]->version;
    /* What each op means in these (its attributes and inputs) is what the ops below read. */
    if (x->opset < 1 || x->opset > 18)
        return fail(x, "the model imports ONNX's operator set %lld; cnnc reads 1 to 18",
                    (long long)x->opset);
    for (size_t i = 0; i < g->n_initializer; i++)
        if (add_known(x, g->initializer[i]->name, g->initializer[i]))
            return -1;
    x->bound = n_bind ? calloc((size_t)n_bind, sizeof *x->bound) : NULL;
    if (n_bind && !x->bound)
        return oom(x);
    for (int b = 0; b < n_bind; b++) {
        Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, bind[b].len, bind[b].bytes);
        if (!t)
            return fail(x, "the value bound to '%s' is not a serialized ONNX tensor",
                        bind[b].name);
        x->bound[x->n_bound++] = t;
        if (add_known(x, bind[b].name, t))
            return -1;
    }
    const Onnx__ValueInfoProto *in = NULL;
    for (size_t i = 0; i < g->n_input; i++) {
        if (find_known(x, g->input[i]->name))
            continue;
        if (in)
            return fail(x, "the graph has two inputs without values, '%s' and '%s': cnnc "
                           "networks take one image tensor", in->name, g->input[i]->name);
        in = g->input[i];
    }
    if (!in)
        return fail(x, "the graph has no input without a value");
    if (empty(in->name))
        return fail(x, "the graph's input has no name");
    if (g->n_output == 1 && empty(g->output[0]->name))
        return fail(x, "the graph's output has no name");
    if (g->n_output != 1)
        return fail(x, "the graph has more than one output (a cnnc network has one): %zu",
                    g->n_output);
    int64_t d[4];
    int rank = value_dims(in, d, 4);
    if (in->type && in->type->tensor_type && in->type->tensor_type->elem_type !=
                                                 ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return fail(x, "the input '%s' is not a float tensor", in->name);
    if (rank < 2 || rank > 4)
        return fail(x, "the input '%s' has rank %d: cnnc takes images [N, C, H, W], 1-D "
                       "signals [N, C, L] or features [N, F]", in->name, rank);
    for (int i = 1; i < rank; i++)
        if (d[i] < 1 || d[i] > 1 << 20)
            return fail(x, "the input '%s' has no fixed size along axis %d", in->name, i);
    x->cur = (value){.name = in->name, .rank = rank, .stmt = -1};
    if (rank == 2) {
        x->cur.h = x->cur.w = 1;
        x->cur.c = (int)d[1];
        return 0;
    }
    if (rank == 3) {
        x->cur.h = 1;
        x->cur.w = (int)d[2];
        x->cur.c = (int)d[1];
        return 0;
    }
    /* [N, H, W, C] when the graph first turns it to NCHW (cnnc's own export does). */
    const Onnx__NodeProto *first = g->n_node ? g->node[0] : NULL;
    const Onnx__AttributeProto *p = first && is(first->op_type, "Transpose") ? attr(first, "perm")
                                                                           : NULL;
    x->cur.nhwc = p && p->n_ints == 4 && p->ints[0] == 0 && p->ints[1] == 3 && p->ints[2] == 1 &&
                  p->ints[3] == 2 && first->n_input && is(first->input[0], in->name);
    x->cur.h = (int)(x->cur.nhwc ? d[1] : d[2]);
    x->cur.w = (int)(x->cur.nhwc ? d[2] : d[3]);
    x->cur.c = (int)(x->cur.nhwc ? d[3] : d[1]);
    return 0;
}

static int is_identifier(const char *s)
{
    if (empty(s) || strlen(s) > 40 || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                                        *s == '_'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    return 1;
}

/* The .net text, written through put: one failed write fails it all. */
typedef struct writer {
    FILE *f;
    int failed;
} writer;

static void put(writer *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (vfprintf(w->f, fmt, ap) < 0)
        w->failed = 1;
    va_end(ap);
}

static int write_net(im *x, const Onnx__ModelProto *m, const char *name, const char *version,
                     cnn_import *out, const value *in)
{
    char *text = NULL;
    size_t len = 0;
    writer w = {open_memstream(&text, &len), 0};
    if (!w.f)
        return oom(x);
    put(&w, "# Imported by cnnc %s from %s (producer %s %s, operator set %lld).\n", version,
            name, empty(m->producer_name) ? "unknown" : m->producer_name,
            empty(m->producer_version) ? "" : m->producer_version, (long long)x->opset);
    if (in->rank == 4 && out->input_nchw)
        put(&w, "# The model's input '%s' is [N, %d, %d, %d] (NCHW); this network takes the "
                   "same images channels last.\n", out->input_name, in->c, in->h, in->w);
    if (in->rank == 3)
        put(&w, "# The model's input '%s' is [N, %d, %d] (channels, length); this network "
                   "takes it as images of height 1, channels last.\n", out->input_name, in->c,
                in->w);
    if (is_identifier(x->g->name))
        put(&w, "network %s\n", x->g->name);
    if (in->rank == 2)
        put(&w, "input %d\n", in->c);
    else
        put(&w, "input %dx%dx%d\n", in->h, in->w, in->c);
    for (int i = 0; i < x->n_stmt; i++) {
        const stmt *s = &x->s[i];
        if (s->label[0])
            put(&w, "%s = ", s->label);
        put(&w, "%s", cnn_layer_of_type(s->type)->keyword);
        if (s->args[0])
            put(&w, " %s", s->args);
        if (s->act != CNN_ACT_LINEAR || s->type == CNN_LAYER_ACTIVATION)
            put(&w, " %s", cnn_act_name(s->act));
        if (s->act == CNN_ACT_LEAKY_RELU) {
            char a[32];
            float_text(s->alpha, a, sizeof a);
            put(&w, " alpha=%s", a);
        }
        put(&w, "%s%s%s\n", s->opts, s->from[0] ? " from " : "", s->from);
    }
    if (!out->classifier)
        put(&w, "\n# The output is not a softmax classifier: no training loss.\n"
                   "train { loss none }\n");
    if ((fclose(w.f) != 0) | w.failed) {
        free(text);
        return oom(x);
    }
    out->net = cnn_arena_strdup(x->a, text);
    free(text);
    return out->net ? 0 : oom(x);
}

int cnn_onnx_import(const uint8_t *bytes, size_t len, const char *name,
                    const cnn_onnx_binding *bindings, int n_bindings, const char *version,
                    cnn_arena *arena, cnn_import *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    err[0] = '\0';
    im x = {.a = arena, .err = err, .errlen = errlen};
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, bytes);
    if (!m)
        return fail(&x, "not an ONNX model (the protobuf does not parse)");
    int rc = -1;
    if (!m->graph) {
        fail(&x, "the model has no graph");
        goto done;
    }
    x.g = m->graph;
    x.from_cnnc = is(m->producer_name, "cnnc");
    if (start(&x, m, bindings, n_bindings) || keep_value(&x))
        goto done;
    out->input_name = cnn_arena_strdup(arena, x.cur.name);
    out->input_nchw = x.cur.rank >= 3 && !x.cur.nhwc;
    value in = x.cur;
    for (size_t i = 0; i < x.g->n_node; i++) {
        x.nd = x.g->node[i];
        if (node(&x))
            goto done;
    }
    if (x.pad_node) {
        x.nd = x.pad_node;
        fail(&x, "cnnc takes a Pad only just before a Conv, as its same padding");
        goto done;
    }
    x.nd = NULL;
    if (!is(x.cur.name, x.g->output[0]->name)) {
        fail(&x, "the graph's output '%s' is not the last node's output '%s'",
             x.g->output[0]->name, x.cur.name);
        goto done;
    }
    if (!x.n_stmt) {
        fail(&x, "the graph computes nothing cnnc has a layer for");
        goto done;
    }
    if (x.cur.stmt != x.n_stmt - 1) {
        fail(&x, "the graph's output '%s' is not what its last layer computes: a cnnc network's "
                 "output is its last layer's", x.cur.name);
        goto done;
    }
    if (x.cur.perm) {
        fail(&x, "the output is an NCHW tensor flattened, in channel, row, column order; cnnc "
                 "flattens in row, column, channel order (Keras'), which only a dense layer "
                 "after it can make up for");
        goto done;
    }
    out->output_name = cnn_arena_strdup(arena, x.cur.name);
    out->output_nchw = x.cur.rank >= 3 && !x.cur.nhwc;
    out->classifier = x.done;
    /* The values live in the model's unpacked memory: copied into the arena before it goes. */
    out->n_layers = x.n_stmt;
    out->layers = cnn_arena_alloc(arena, sizeof *out->layers * (size_t)x.n_stmt);
    if (!out->layers) {
        oom(&x);
        goto done;
    }
    for (int s = 0; s < x.n_stmt; s++) {
        cnn_import_layer *L = &out->layers[s];
        *L = x.s[s].t;
        for (int k = 0; k < L->n; k++) {
            float *v = alloc_floats(&x, L->size[k]);
            if (!v)
                goto done;
            memcpy(v, L->value[k], sizeof(float) * (size_t)L->size[k]);
            L->value[k] = v;
        }
    }
    if (write_net(&x, m, name, version, out, &in))
        goto done;
    rc = 0;
done:
    for (int b = 0; b < x.n_bound; b++)
        onnx__tensor_proto__free_unpacked(x.bound[b], NULL);
    free(x.bound);
    onnx__model_proto__free_unpacked(m, NULL);
    return rc;
}

int cnn_import_set_tensors(const cnn_import *imp, const cnn_ir *ir, cnn_model *m, char *err,
                           size_t errlen)
{
    if (ir->n_layers != imp->n_layers) {
        snprintf(err, errlen, "the imported network has %d layers, and its .net file %d",
                 imp->n_layers, ir->n_layers);
        return -1;
    }
    int k = 0;
    for (int l = 0; l < ir->n_layers; l++) {
        const cnn_layer *L = &ir->layers[l];
        const cnn_import_layer *I = &imp->layers[l];
        if (L->n_params != I->n) {
            snprintf(err, errlen, "%s has %d tensors, and the model gives it %d", L->name,
                     L->n_params, I->n);
            return -1;
        }
        for (int p = 0; p < L->n_params; p++, k++) {
            cnn_tensor *t = &m->tensors[k];
            if ((long)t->size != I->size[p]) {
                snprintf(err, errlen, "%s has %zu values, and the model gives it %ld", t->name,
                         t->size, I->size[p]);
                return -1;
            }
            memcpy(t->value, I->value[p], sizeof(float) * t->size);
        }
    }
    return 0;
}
