/* The registry of layer descriptors and the helpers that weighted layers share. */
#include "layers.h"

#include <math.h>
#include <string.h>

static const cnn_layer_desc *const all_layers[] = {
    &cnn_layer_conv,    &cnn_layer_pool,    &cnn_layer_dropout,
    &cnn_layer_batchnorm, &cnn_layer_flatten, &cnn_layer_dense, &cnn_layer_activation,
    &cnn_layer_add, &cnn_layer_concat, &cnn_layer_gap, &cnn_layer_dwconv, NULL,
};

const char *const cnn_layer_keywords[] = {CNN_LAYER_KEYWORDS, NULL};

const cnn_layer_desc *cnn_layer_find(const char *keyword)
{
    for (int i = 0; all_layers[i]; i++)
        if (strcmp(all_layers[i]->keyword, keyword) == 0)
            return all_layers[i];
    return NULL;
}

const cnn_layer_desc *cnn_layer_of_type(cnn_layer_type type)
{
    for (int i = 0; all_layers[i]; i++)
        if (all_layers[i]->type == type)
            return all_layers[i];
    return NULL;
}

void cnn_note_input(const cnn_layer *L, cnn_diag *d)
{
    char in[48];
    cnn_shape_text(L->in, in, sizeof in);
    if (strcmp(L->in_from, "input") == 0)
        cnn_note(d, L->in_loc, "the network's input is %s", in);
    else
        cnn_note(d, L->in_loc, "its input, %s, is the output of %s", in, L->in_from);
}

static const char *const act_names[] = {"linear", "relu", "leaky_relu", "sigmoid",
                                        "tanh",   "softmax", NULL};

const char *cnn_act_name(cnn_act a)
{
    return act_names[a];
}

int cnn_parse_activation(cnn_layer *L, const cnn_arg *word, const cnn_arg *alpha, cnn_diag *d)
{
    L->act = CNN_ACT_LINEAR;
    L->alpha = 0.3f; /* Keras' LeakyReLU default */
    if (word) {
        int k = cnn_arg_choice(word, "activation", act_names, d);
        if (k < 0)
            return -1;
        L->act = (cnn_act)k;
        L->act_loc = word->loc;
    }
    if (alpha) {
        if (L->act != CNN_ACT_LEAKY_RELU)
            return cnn_error(d, alpha->key_loc, "option 'alpha' applies only to leaky_relu");
        double v;
        if (cnn_arg_real(alpha, "alpha", 0, 1, 0, &v, d))
            return -1;
        L->alpha = (float)v;
    }
    return 0;
}

static const char *const init_names[] = {"glorot", "he", "glorot_uniform", "glorot_normal",
                                         "he_uniform", "he_normal", NULL};
static const cnn_init_kind init_kinds[] = {CNN_INIT_GLOROT_UNIFORM, CNN_INIT_HE_NORMAL,
                                           CNN_INIT_GLOROT_UNIFORM, CNN_INIT_GLOROT_NORMAL,
                                           CNN_INIT_HE_UNIFORM,     CNN_INIT_HE_NORMAL};
static const char *const yes_no[] = {"yes", "no", NULL};

int cnn_parse_weight_options(cnn_layer *L, const cnn_arg *l1, const cnn_arg *l2,
                             const cnn_arg *init, const cnn_arg *bias, cnn_diag *d)
{
    double v;
    L->init = CNN_INIT_GLOROT_UNIFORM;
    L->use_bias = 1;
    if (l1) {
        if (cnn_arg_real(l1, "l1", 0, INFINITY, 0, &v, d))
            return -1;
        L->l1 = (float)v;
    }
    if (l2) {
        if (cnn_arg_real(l2, "l2", 0, INFINITY, 0, &v, d))
            return -1;
        L->l2 = (float)v;
    }
    if (init) {
        int k = cnn_arg_choice(init, "initializer", init_names, d);
        if (k < 0)
            return -1;
        L->init = init_kinds[k];
    }
    if (bias) {
        int k = cnn_arg_choice(bias, "value for 'bias'", yes_no, d);
        if (k < 0)
            return -1;
        L->use_bias = k == 0;
    }
    return 0;
}

cnn_param *cnn_layer_add_param(cnn_layer *L, const char *suffix, int rank, const int *dims,
                               cnn_init_kind init, int trainable, cnn_diag *d)
{
    int64_t size = 1;
    char shape[96] = "";
    for (int i = 0; i < rank; i++) {
        size = cnn_mul64(size, dims[i]);
        snprintf(shape + strlen(shape), sizeof shape - strlen(shape), i ? "x%d" : "%d", dims[i]);
    }
    char what[96];
    snprintf(what, sizeof what, "%s's %s", L->name, suffix);
    if (cnn_check_elems(d, L->loc, what, shape, size))
        return NULL;
    cnn_param *p = &L->params[L->n_params++];
    memset(p, 0, sizeof *p);
    p->suffix = suffix;
    p->rank = rank;
    p->size = (long)size;
    for (int i = 0; i < rank; i++)
        p->dims[i] = dims[i];
    p->init = init;
    p->trainable = trainable;
    L->weights += p->size;
    if (trainable)
        L->trainable += p->size;
    return p;
}
