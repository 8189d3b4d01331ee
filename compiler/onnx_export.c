/* `cnnc onnx`: a trained network as an ONNX model (IR 7, opset 13), written with protobuf-c
 * from the onnx.proto Debian ships. Inference mode: a dropout is a Dropout node (the identity
 * in inference; kept with its rate for cnnc import), batchnorm a BatchNormalization node with
 * its moving statistics. The input is [N, H, W, C] as cnnc feeds
 * it; a Transpose makes it NCHW for the convolutions and another makes it channels-last again
 * before Flatten, so that the dense kernels keep Keras' row order. */
#include "onnx_export.h"

#include <string.h>

#include "onnx.pb-c.h"

typedef struct ox {
    cnn_arena *a;
    Onnx__GraphProto *g;
    size_t cap_nodes, cap_inits;
    int failed;
} ox;

static void *alloc(ox *x, size_t size)
{
    void *p = cnn_arena_alloc(x->a, size ? size : 1);
    if (!p)
        x->failed = 1;
    return p;
}

static char *str(ox *x, const char *fmt, const char *a, const char *b)
{
    char buf[160];
    snprintf(buf, sizeof buf, fmt, a, b);
    char *s = cnn_arena_strdup(x->a, buf);
    if (!s)
        x->failed = 1;
    return s;
}

/* An attribute named name of the given type, its value still to set. */
static Onnx__AttributeProto *attr(ox *x, const char *name, Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *at = alloc(x, sizeof *at);
    if (x->failed)
        return NULL;
    onnx__attribute_proto__init(at);
    at->name = (char *)name;
    at->has_type = 1;
    at->type = type;
    return at;
}

static Onnx__AttributeProto *attr_ints(ox *x, const char *name, const int64_t *v, size_t n)
{
    Onnx__AttributeProto *at = attr(x, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *ints = alloc(x, sizeof(int64_t) * n);
    if (x->failed)
        return NULL;
    memcpy(ints, v, sizeof(int64_t) * n);
    at->n_ints = n;
    at->ints = ints;
    return at;
}

static Onnx__AttributeProto *attr_int(ox *x, const char *name, int64_t v)
{
    Onnx__AttributeProto *at = attr(x, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (at)
        at->has_i = 1, at->i = v;
    return at;
}

static Onnx__AttributeProto *attr_float(ox *x, const char *name, float v)
{
    Onnx__AttributeProto *at = attr(x, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (at)
        at->has_f = 1, at->f = v;
    return at;
}

/* A node op(inputs) -> output, named name, with up to 4 attributes (NULL-terminated). */
static void node(ox *x, const char *op, const char *name, const char *const *inputs, int n_in,
                 const char *output, Onnx__AttributeProto *const *attrs)
{
    Onnx__NodeProto *nd = alloc(x, sizeof *nd);
    char **in = alloc(x, sizeof(char *) * (size_t)n_in);
    char **out = alloc(x, sizeof(char *));
    Onnx__AttributeProto **at = alloc(x, sizeof *at * 4);
    if (x->failed || x->g->n_node >= x->cap_nodes) {
        x->failed = 1;
        return;
    }
    onnx__node_proto__init(nd);
    nd->op_type = (char *)op;
    nd->name = (char *)name;
    for (int i = 0; i < n_in; i++)
        in[i] = (char *)inputs[i];
    nd->n_input = (size_t)n_in;
    nd->input = in;
    out[0] = (char *)output;
    nd->n_output = 1;
    nd->output = out;
    size_t n = 0;
    for (; attrs && attrs[n] && n < 4; n++)
        at[n] = attrs[n];
    nd->n_attribute = n;
    nd->attribute = at;
    x->g->node[x->g->n_node++] = nd;
}

/* A float initializer of shape dims[rank] holding v. */
static void initializer(ox *x, const char *name, const int64_t *dims, int rank, float *v)
{
    Onnx__TensorProto *t = alloc(x, sizeof *t);
    int64_t *d = alloc(x, sizeof(int64_t) * (size_t)rank);
    if (x->failed || x->g->n_initializer >= x->cap_inits) {
        x->failed = 1;
        return;
    }
    onnx__tensor_proto__init(t);
    t->name = (char *)name;
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    size_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= (size_t)(d[i] = dims[i]);
    t->n_dims = (size_t)rank;
    t->dims = d;
    t->n_float_data = n;
    t->float_data = v;
    x->g->initializer[x->g->n_initializer++] = t;
}

/* A float tensor value of shape [N, dims...] with N the dynamic batch. */
static Onnx__ValueInfoProto *value_info(ox *x, const char *name, const int64_t *dims, int rank)
{
    Onnx__ValueInfoProto *v = alloc(x, sizeof *v);
    Onnx__TypeProto *type = alloc(x, sizeof *type);
    Onnx__TypeProto__Tensor *tt = alloc(x, sizeof *tt);
    Onnx__TensorShapeProto *shape = alloc(x, sizeof *shape);
    Onnx__TensorShapeProto__Dimension **dim = alloc(x, sizeof *dim * (size_t)(rank + 1));
    for (int i = 0; i <= rank && !x->failed; i++) {
        dim[i] = alloc(x, sizeof **dim);
        if (x->failed)
            break;
        onnx__tensor_shape_proto__dimension__init(dim[i]);
        if (i == 0) {
            dim[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dim[i]->dim_param = "N";
        } else {
            dim[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim[i]->dim_value = dims[i - 1];
        }
    }
    if (x->failed)
        return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(type);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(shape);
    shape->n_dim = (size_t)rank + 1;
    shape->dim = dim;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = shape;
    type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    type->tensor_type = tt;
    v->name = (char *)name;
    v->type = type;
    return v;
}

/* A conv's, dwconv's or pool's padding: TensorFlow's same is auto_pad SAME_UPPER, said so
 * (where it pads nothing on this input, pads alone could not tell it from valid), the odd row
 * or column after as cnnc pads; valid is zero pads. */
static Onnx__AttributeProto *padding(ox *x, const cnn_layer *L)
{
    if (!L->pad_same)
        return attr_ints(x, "pads", (int64_t[]){0, 0, 0, 0}, 4);
    Onnx__AttributeProto *same = attr(x, "auto_pad", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    if (same)
        same->has_s = 1, same->s.data = (uint8_t *)"SAME_UPPER", same->s.len = 10;
    return same;
}

/* The activation of layer L after its value cur; returns the new value's name: the layer's
 * for an activation layer, "LAYER/relu" for a conv's or dense layer's own. */
static const char *activation(ox *x, const cnn_layer *L, const char *cur)
{
    static const char *const ops[] = {[CNN_ACT_RELU] = "Relu", [CNN_ACT_LEAKY_RELU] = "LeakyRelu",
                                      [CNN_ACT_SIGMOID] = "Sigmoid", [CNN_ACT_TANH] = "Tanh",
                                      [CNN_ACT_SOFTMAX] = "Softmax"};
    if (L->act == CNN_ACT_LINEAR)
        return cur;
    const char *name = L->type == CNN_LAYER_ACTIVATION
                           ? str(x, "%s%s", L->name, "")
                           : str(x, "%s/%s", L->name, cnn_act_name(L->act));
    Onnx__AttributeProto *at[2] = {NULL, NULL};
    if (L->act == CNN_ACT_LEAKY_RELU)
        at[0] = attr_float(x, "alpha", L->alpha);
    if (L->act == CNN_ACT_SOFTMAX)
        at[0] = attr_int(x, "axis", 1);
    node(x, ops[L->act], name, (const char *[]){cur}, 1, name, at);
    return name;
}

static float *floats(ox *x, size_t n)
{
    return alloc(x, sizeof(float) * n);
}

int cnn_onnx_export(const cnn_ir *ir, const cnn_model *m, const char *version, cnn_arena *a,
                    uint8_t **bytes, size_t *len)
{
    ox x = {.a = a};
    Onnx__ModelProto *model = alloc(&x, sizeof *model);
    Onnx__GraphProto *g = alloc(&x, sizeof *g);
    Onnx__OperatorSetIdProto *opset = alloc(&x, sizeof *opset);
    Onnx__OperatorSetIdProto **opsets = alloc(&x, sizeof *opsets);
    if (x.failed)
        return -1;
    onnx__model_proto__init(model);
    onnx__graph_proto__init(g);
    onnx__operator_set_id_proto__init(opset);
    x.g = g;
    x.cap_nodes = (size_t)ir->n_layers * 3 + 4;
    x.cap_inits = (size_t)ir->n_layers * 4 + 4; /* at most 4 per layer (batchnorm) */
    g->node = alloc(&x, sizeof *g->node * x.cap_nodes);
    g->initializer = alloc(&x, sizeof *g->initializer * x.cap_inits);
    g->input = alloc(&x, sizeof *g->input);
    g->output = alloc(&x, sizeof *g->output);
    g->name = (char *)ir->name;

    cnn_shape in = ir->input;
    int rank3 = in.rank == 3;
    int64_t in_dims[3] = {in.h, in.w, in.c}, one[1] = {in.c};
    g->input[0] = value_info(&x, "input", rank3 ? in_dims : one, rank3 ? 3 : 1);
    g->n_input = 1;
    /* Every image is NCHW between the input's transpose and a flatten's (or the output's);
     * vectors are [N, C]. vals[l] names layer l's output value. */
    const char *input = "input";
    if (rank3) {
        node(&x, "Transpose", "input/to_nchw", (const char *[]){input}, 1, "input/nchw",
             (Onnx__AttributeProto *[]){attr_ints(&x, "perm", (int64_t[]){0, 3, 1, 2}, 4), NULL});
        input = "input/nchw";
    }
    const char **vals = alloc(&x, sizeof *vals * (size_t)(ir->n_layers ? ir->n_layers : 1));
    const char *cur = input;
    int k = 0; /* m's tensor table, in IR order */
    for (int l = 0; l < ir->n_layers && !x.failed; l++) {
        const cnn_layer *L = &ir->layers[l];
        cnn_tensor *t = &m->tensors[k];
        k += L->n_params;
        const char *ins[CNN_MAX_INPUTS];
        for (int i = 0; i < L->n_inputs; i++)
            ins[i] = L->inputs[i] >= 0 ? vals[L->inputs[i]] : input;
        cur = ins[0];
        switch (L->type) {
        case CNN_LAYER_DROPOUT: {
            /* Nothing in inference, but kept with its rate: cnnc import gives it back. */
            const char *out = str(&x, "%s%s", L->name, ""), *rn = str(&x, "%s/ratio%s", L->name, "");
            float *ratio = floats(&x, 1);
            if (x.failed)
                break;
            ratio[0] = L->rate;
            initializer(&x, rn, NULL, 0, ratio);
            node(&x, "Dropout", out, (const char *[]){cur, rn}, 2, out, NULL);
            cur = out;
            break;
        }
        case CNN_LAYER_ACTIVATION:
            cur = activation(&x, L, cur);
            break;
        case CNN_LAYER_CONV: {
            int KH = L->kh, KW = L->kw, C = L->in.c, F = L->out.c;
            float *w = floats(&x, (size_t)KH * KW * C * F);
            if (x.failed)
                break;
            for (int ky = 0; ky < KH; ky++)
                for (int kx = 0; kx < KW; kx++)
                    for (int c = 0; c < C; c++)
                        for (int f = 0; f < F; f++)
                            w[((f * C + c) * KH + ky) * KW + kx] =
                                t[0].value[((ky * KW + kx) * C + c) * F + f];
            const char *wn = str(&x, "%s/kernel%s", L->name, ""), *bn = str(&x, "%s/bias%s", L->name, "");
            initializer(&x, wn, (int64_t[]){F, C, KH, KW}, 4, w);
            if (L->use_bias)
                initializer(&x, bn, (int64_t[]){F}, 1, t[1].value);
            const char *out = str(&x, "%s%s", L->name, "");
            node(&x, "Conv", out, (const char *[]){cur, wn, bn}, L->use_bias ? 3 : 2, out,
                 (Onnx__AttributeProto *[]){
                     attr_ints(&x, "kernel_shape", (int64_t[]){KH, KW}, 2),
                     attr_ints(&x, "strides", (int64_t[]){L->sh, L->sw}, 2),
                     padding(&x, L), NULL});
            cur = activation(&x, L, out);
            break;
        }
        case CNN_LAYER_DWCONV: {
            /* A Conv with a group per input channel: output channel c * M + m is group c's
             * m-th, as in cnnc, so the kernel [kh][kw][C][M] is [C * M][1][kh][kw]. */
            int KH = L->kh, KW = L->kw, U = L->out.c;
            float *w = floats(&x, (size_t)KH * KW * U);
            if (x.failed)
                break;
            for (int u = 0; u < U; u++)
                for (int ky = 0; ky < KH; ky++)
                    for (int kx = 0; kx < KW; kx++)
                        w[(u * KH + ky) * KW + kx] = t[0].value[(ky * KW + kx) * U + u];
            const char *wn = str(&x, "%s/depthwise_kernel%s", L->name, ""),
                       *bn = str(&x, "%s/bias%s", L->name, "");
            initializer(&x, wn, (int64_t[]){U, 1, KH, KW}, 4, w);
            if (L->use_bias)
                initializer(&x, bn, (int64_t[]){U}, 1, t[1].value);
            const char *out = str(&x, "%s%s", L->name, "");
            node(&x, "Conv", out, (const char *[]){cur, wn, bn}, L->use_bias ? 3 : 2, out,
                 (Onnx__AttributeProto *[]){
                     attr_ints(&x, "kernel_shape", (int64_t[]){KH, KW}, 2),
                     attr_ints(&x, "strides", (int64_t[]){L->sh, L->sw}, 2),
                     padding(&x, L), attr_int(&x, "group", L->in.c), NULL});
            cur = activation(&x, L, out);
            break;
        }
        case CNN_LAYER_POOL: {
            const char *out = str(&x, "%s%s", L->name, "");
            /* AveragePool's count_include_pad is 0 (ONNX's default), as TensorFlow's same */
            node(&x, L->pool == CNN_POOL_MAX ? "MaxPool" : "AveragePool", out,
                 (const char *[]){cur}, 1, out,
                 (Onnx__AttributeProto *[]){
                     attr_ints(&x, "kernel_shape", (int64_t[]){L->kh, L->kw}, 2),
                     attr_ints(&x, "strides", (int64_t[]){L->sh, L->sw}, 2),
                     L->pad_same ? padding(&x, L) : NULL, NULL});
            cur = out;
            break;
        }
        case CNN_LAYER_BATCHNORM: {
            int C = L->out.c;
            static const char *const suffix[4] = {"gamma", "beta", "moving_mean",
                                                  "moving_variance"};
            const char *names[5] = {cur};
            for (int p = 0; p < 4; p++) {
                names[p + 1] = str(&x, "%s/%s", L->name, suffix[p]);
                initializer(&x, names[p + 1], (int64_t[]){C}, 1, t[p].value);
            }
            const char *out = str(&x, "%s%s", L->name, "");
            node(&x, "BatchNormalization", out, names, 5, out,
                 (Onnx__AttributeProto *[]){attr_float(&x, "epsilon", L->eps),
                                            attr_float(&x, "momentum", L->momentum), NULL});
            cur = out;
            break;
        }
        case CNN_LAYER_FLATTEN: {
            /* Back to channels last, then flat: the order Keras' Flatten has. */
            if (L->in.rank == 3) {
                const char *nhwc = str(&x, "%s/nhwc", L->name, "");
                node(&x, "Transpose", str(&x, "%s/to_nhwc", L->name, ""), (const char *[]){cur},
                     1, nhwc,
                     (Onnx__AttributeProto *[]){
                         attr_ints(&x, "perm", (int64_t[]){0, 2, 3, 1}, 4), NULL});
                cur = nhwc;
            }
            const char *out = str(&x, "%s%s", L->name, "");
            node(&x, "Flatten", out, (const char *[]){cur}, 1, out,
                 (Onnx__AttributeProto *[]){attr_int(&x, "axis", 1), NULL});
            cur = out;
            break;
        }
        case CNN_LAYER_DENSE: {
            int I = L->in.c, U = L->out.c;
            /* out x in with transB = 1: OpenCV 4.6 rejects a Gemm with transB = 0 and a bias. */
            float *w = floats(&x, (size_t)I * U);
            if (x.failed)
                break;
            for (int i = 0; i < I; i++)
                for (int j = 0; j < U; j++)
                    w[(size_t)j * I + i] = t[0].value[(size_t)i * U + j];
            const char *wn = str(&x, "%s/kernel%s", L->name, ""), *bn = str(&x, "%s/bias%s", L->name, "");
            initializer(&x, wn, (int64_t[]){U, I}, 2, w);
            if (L->use_bias)
                initializer(&x, bn, (int64_t[]){U}, 1, t[1].value);
            const char *out = str(&x, "%s%s", L->name, "");
            node(&x, "Gemm", out, (const char *[]){cur, wn, bn}, L->use_bias ? 3 : 2, out,
                 (Onnx__AttributeProto *[]){attr_int(&x, "transB", 1), NULL});
            cur = activation(&x, L, out);
            break;
        }
        case CNN_LAYER_GAP: {
            /* N x C x 1 x 1, then N x C as cnnc's vector. */
            const char *pooled = str(&x, "%s/pooled", L->name, ""), *out = str(&x, "%s%s", L->name, "");
            node(&x, "GlobalAveragePool", pooled, (const char *[]){cur}, 1, pooled, NULL);
            node(&x, "Flatten", out, (const char *[]){pooled}, 1, out,
                 (Onnx__AttributeProto *[]){attr_int(&x, "axis", 1), NULL});
            cur = out;
            break;
        }
        case CNN_LAYER_ADD: { /* Add takes two operands, Sum any number */
            const char *out = str(&x, "%s%s", L->name, "");
            node(&x, L->n_inputs == 2 ? "Add" : "Sum", out, ins, L->n_inputs, out, NULL);
            cur = out;
            break;
        }
        case CNN_LAYER_CONCAT: { /* channels: axis 1 of NCHW, and of [N, C] */
            const char *out = str(&x, "%s%s", L->name, "");
            node(&x, "Concat", out, ins, L->n_inputs, out,
                 (Onnx__AttributeProto *[]){attr_int(&x, "axis", 1), NULL});
            cur = out;
            break;
        }
        }
        if (vals)
            vals[l] = cur;
    }
    /* A network without a loss may end on an image: channels last again, as cnnc's output. */
    cnn_shape o = ir->layers[ir->n_layers - 1].out;
    if (o.rank == 3) {
        node(&x, "Transpose", "output/to_nhwc", (const char *[]){cur}, 1, "output",
             (Onnx__AttributeProto *[]){attr_ints(&x, "perm", (int64_t[]){0, 2, 3, 1}, 4), NULL});
        cur = "output";
    }
    g->output[0] = o.rank == 3 ? value_info(&x, cur, (int64_t[]){o.h, o.w, o.c}, 3)
                               : value_info(&x, cur, (int64_t[]){o.c}, 1);
    g->n_output = 1;
    if (x.failed)
        return -1;
    opset->domain = "";
    opset->has_version = 1;
    opset->version = 13;
    opsets[0] = opset;
    model->has_ir_version = 1;
    model->ir_version = 7;
    model->n_opset_import = 1;
    model->opset_import = opsets;
    model->producer_name = "cnnc";
    model->producer_version = (char *)version;
    model->graph = g;
    *len = onnx__model_proto__get_packed_size(model);
    *bytes = cnn_arena_alloc(a, *len ? *len : 1);
    if (!*bytes)
        return -1;
    onnx__model_proto__pack(model, *bytes);
    return 0;
}
