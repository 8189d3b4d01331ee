/* Building the IR from the syntax tree: statements to layers, shape inference, totals. */
#include "ir.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "sizes.h"
#include "suggest.h"
#include "train_block.h"

void cnn_shape_keras(cnn_shape s, char *buf, size_t cap)
{
    if (s.rank == 1)
        snprintf(buf, cap, "(None, %d)", s.c);
    else
        snprintf(buf, cap, "(None, %d, %d, %d)", s.h, s.w, s.c);
}

void cnn_shape_text(cnn_shape s, char *buf, size_t cap)
{
    if (s.rank == 1)
        snprintf(buf, cap, "%d", s.c);
    else
        snprintf(buf, cap, "%dx%dx%d", s.h, s.w, s.c);
}

/* The network name when the file has no `network` statement: its stem, as a C identifier.
 * NULL when out of memory. */
static const char *name_from_path(const char *path, cnn_arena *arena)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strcspn(base, ".");
    if (n == 0)
        return "net";
    char *name = cnn_arena_alloc(arena, n + 5);
    if (!name)
        return NULL;
    size_t j = 0;
    if (isdigit((unsigned char)base[0]))
        for (const char *p = "net_"; *p; p++)
            name[j++] = *p;
    for (size_t i = 0; i < n; i++)
        name[j++] = isalnum((unsigned char)base[i]) ? base[i] : '_';
    name[j] = '\0';
    return name;
}

static int parse_input(const cnn_stmt *s, cnn_shape *shape, cnn_diag *d)
{
    cnn_args a;
    if (cnn_args_split(s, NULL, 1, &a, d))
        return -1;
    if (a.n_pos < 1)
        return cnn_error(d, s->loc, "'input' needs a shape: input HxWxC (or HxW, or N features)");
    const cnn_arg *v = a.pos[0];
    if (v->kind == CNN_ARG_NUMBER) {
        long n;
        if (cnn_arg_int(v, "input size", 1, 1 << 24, &n, d))
            return -1;
        *shape = (cnn_shape){1, 1, 1, (int)n};
        return 0;
    }
    if (v->kind != CNN_ARG_DIMS)
        return cnn_error(d, v->loc, "input shape must be HxWxC (like 28x28x1), got '%s'", v->text);
    long dims[4] = {0};
    int n = 0;
    const char *p = v->text;
    while (*p && n < 4) {
        char *end;
        dims[n++] = strtol(p, &end, 10);
        p = *end == 'x' ? end + 1 : end;
    }
    if (*p || n < 2 || n > 3)
        return cnn_error(d, v->loc, "input shape must be HxWxC (like 28x28x1), got '%s'", v->text);
    for (int i = 0; i < n; i++)
        if (dims[i] < 1 || dims[i] > (i < 2 ? 65536 : 1 << 24))
            return cnn_error(d, v->loc, "input sizes must be between 1 and 65536 (channels: "
                                        "1 << 24), got '%s'", v->text);
    *shape = (cnn_shape){3, (int)dims[0], (int)dims[1], n == 3 ? (int)dims[2] : 1};
    return cnn_check_elems(d, v->loc, "input", v->text, cnn_shape_size(*shape));
}

static int parse_network(const cnn_stmt *s, const char **name, cnn_diag *d)
{
    cnn_args a;
    if (cnn_args_split(s, NULL, 1, &a, d))
        return -1;
    if (a.n_pos < 1)
        return cnn_error(d, s->loc, "'network' needs a name");
    if (a.pos[0]->kind != CNN_ARG_WORD)
        return cnn_error(d, a.pos[0]->loc, "network name must start with a letter, got '%s'",
                         a.pos[0]->text);
    *name = a.pos[0]->text;
    return 0;
}

/* Keras numbers instances per prefix: conv2d_1, conv2d_2, ... */
static void name_layer(cnn_layer *L, const cnn_layer *layers, int index)
{
    int count = 1;
    for (int i = 0; i < index; i++)
        if (strcmp(layers[i].name_prefix, L->name_prefix) == 0)
            count++;
    snprintf(L->name, sizeof L->name, "%s_%d", L->name_prefix, count);
}

static const char *const top_keywords[] = {"network", "input", "train", CNN_LAYER_KEYWORDS,
                                           NULL};

/* The layer whose output `a` names (-1: the network's input), or -2 with the error. s is the
 * statement that names it, ir->n_layers the layers before it. */
static int resolve(const cnn_ir *ir, const cnn_stmt *s, const cnn_arg *a, cnn_arena *arena,
                   cnn_diag *d)
{
    if (strcmp(a->text, "input") == 0)
        return -1;
    for (int i = ir->n_layers - 1; i >= 0; i--)
        if (ir->layers[i].label && strcmp(ir->layers[i].label, a->text) == 0)
            return i;
    for (const cnn_stmt *t = s; t; t = t->next)
        if (t->label && strcmp(t->label, a->text) == 0) {
            cnn_error(d, a->loc, "'%s' is used before it is defined", a->text);
            cnn_note(d, t->label_loc, "'%s' is defined here: a layer reads only outputs "
                                      "defined above it", a->text);
            return -2;
        }
    const char **names = cnn_arena_alloc(arena, sizeof *names * (size_t)(ir->n_layers + 2));
    const char *near = NULL;
    if (names) {
        int n = 0;
        names[n++] = "input";
        for (int i = 0; i < ir->n_layers; i++)
            if (ir->layers[i].label)
                names[n++] = ir->layers[i].label;
        names[n] = NULL;
        near = cnn_suggest(a->text, names);
    }
    if (near)
        return cnn_error(d, a->loc, "unknown name '%s'; did you mean '%s'?", a->text, near), -2;
    return cnn_error(d, a->loc, "unknown name '%s': name a layer's output with 'NAME = %s ...' "
                                "above, or read the network's with 'input'",
                     a->text, s->word), -2;
}

/* Checks the statement's `NAME =`: not a word the language reads as a tensor already, and
 * not given twice. */
static int check_label(const cnn_ir *ir, const cnn_stmt *s, cnn_diag *d)
{
    if (strcmp(s->label, "input") == 0 || strcmp(s->label, "from") == 0)
        return cnn_error(d, s->label_loc, "'%s' cannot name an output: it is a word of the "
                                          "language", s->label);
    for (int i = 0; i < ir->n_layers; i++)
        if (ir->layers[i].label && strcmp(ir->layers[i].label, s->label) == 0) {
            cnn_error(d, s->label_loc, "'%s' names two outputs", s->label);
            cnn_note(d, ir->layers[i].label_loc, "'%s' first names this one", s->label);
            return -1;
        }
    return 0;
}

/* Takes the statement's inputs out of its arguments: `from NAME` (what replaces the previous
 * statement's output) and, for a layer that reads several tensors, every other positional
 * name. Sets L's inputs and *rest to the arguments left for the descriptor. */
static int take_inputs(cnn_ir *ir, cnn_layer *L, const cnn_stmt *s, int max_inputs,
                       cnn_arena *arena, cnn_arg **rest, cnn_diag *d)
{
    const cnn_arg *from = NULL, *named[CNN_MAX_INPUTS];
    int n_named = 0, failed = 0, too_many = 0;
    cnn_arg *head = NULL, **tail = &head;
    for (const cnn_arg *a = s->args; a; a = a->next) {
        if (a->key && strcmp(a->key, "from") == 0) {
            failed |= cnn_error(d, a->key_loc, "write 'from %s', without '='", a->text);
            continue;
        }
        if (!a->key && a->kind == CNN_ARG_WORD && strcmp(a->text, "from") == 0) {
            const cnn_arg *what = a->next;
            if (!what || what->key || what->kind != CNN_ARG_WORD) {
                failed |= cnn_error(d, what && !what->key ? what->loc : a->loc,
                                    "'from' needs the name of an output defined above "
                                    "(or 'input')");
                continue;
            }
            if (from) {
                cnn_error(d, a->loc, "'from' given twice");
                cnn_note(d, from->loc, "first given here");
                failed = 1;
            }
            from = what;
            a = what;
            continue;
        }
        if (max_inputs > 1 && !a->key && a->kind == CNN_ARG_WORD) {
            if (n_named + 1 >= max_inputs) {
                if (!too_many)
                    failed |= cnn_error(d, a->loc, "'%s' reads at most %d tensors", s->word,
                                        max_inputs);
                too_many = 1;
                continue;
            }
            named[n_named++] = a;
            continue;
        }
        cnn_arg *copy = cnn_arena_alloc(arena, sizeof *copy);
        if (!copy)
            return cnn_error(d, s->loc, "out of memory");
        *copy = *a;
        copy->next = NULL;
        *tail = copy;
        tail = &copy->next;
    }
    *rest = head;
    int previous = ir->n_layers - 1; /* -1: the network's input */
    L->n_inputs = 0;
    for (int k = -1; k < n_named; k++) {
        const cnn_arg *a = k < 0 ? from : named[k];
        int src = a ? resolve(ir, s, a, arena, d) : previous;
        if (src == -2) {
            failed = 1;
            continue;
        }
        int i = L->n_inputs++;
        L->inputs[i] = src;
        L->ref_locs[i] = a ? a->loc : s->loc;
        if (src >= 0) {
            L->ins[i] = ir->layers[src].out;
            L->in_names[i] = ir->layers[src].name;
            L->in_locs[i] = ir->layers[src].loc;
            ir->layers[src].n_readers++;
        } else {
            L->ins[i] = ir->input;
            L->in_names[i] = "input";
            L->in_locs[i] = ir->input_loc;
        }
    }
    if (failed)
        return -1;
    L->in = L->ins[0];
    L->in_from = L->in_names[0];
    L->in_loc = L->in_locs[0];
    return 0;
}

/* Reads a layer statement; with shapes_known, also infers its shapes. Without (an earlier
 * error left its input unknown), only the statement's own arguments are checked: an error
 * that follows from an earlier one is not reported. */
static int build_layer(cnn_ir *ir, const cnn_stmt *s, const cnn_layer_desc *desc,
                       int shapes_known, cnn_arena *arena, cnn_diag *d)
{
    cnn_layer *L = &ir->layers[ir->n_layers];
    L->desc = desc;
    L->type = desc->type;
    L->loc = s->loc;
    L->type_name = desc->keras_type;
    L->name_prefix = desc->keras_name;
    int failed = 0;
    if (s->label && check_label(ir, s, d) == 0) {
        L->label = s->label;
        L->label_loc = s->label_loc;
    } else if (s->label)
        failed = 1;
    cnn_stmt own = *s;
    cnn_args args;
    failed |= take_inputs(ir, L, s, desc->max_inputs ? desc->max_inputs : 1, arena, &own.args,
                          d) != 0;
    failed |= cnn_args_split(&own, desc->options, desc->max_positional, &args, d) ||
              (desc->parse && desc->parse(L, &own, &args, d));
    name_layer(L, ir->layers, ir->n_layers); /* after parse: pool's name depends on its kind */
    ir->n_layers++;
    if (failed || !shapes_known || desc->infer(L, d))
        return -1;
    char out[48], what[96];
    cnn_shape_text(L->out, out, sizeof out);
    snprintf(what, sizeof what, "%s's output", L->name);
    return cnn_check_elems(d, L->loc, what, out, cnn_shape_size(L->out));
}

/* The graph's shape: whether it is a chain, and a warning for every output nothing reads
 * (but the network's). */
static void check_graph(cnn_ir *ir, cnn_diag *d)
{
    ir->is_chain = 1;
    for (int l = 0; l < ir->n_layers; l++) {
        cnn_layer *L = &ir->layers[l];
        L->learns = L->trainable > 0;
        for (int k = 0; k < L->n_inputs; k++)
            L->learns |= L->inputs[k] >= 0 && ir->layers[L->inputs[k]].learns;
        if (L->n_inputs != 1 || L->inputs[0] != l - 1)
            ir->is_chain = 0;
        if (L->n_readers == 0 && l != ir->n_layers - 1) {
            cnn_warning(d, L->label ? L->label_loc : L->loc,
                        "the output of %s is never read: it does not reach the network's "
                        "output", L->name);
            cnn_note(d, ir->layers[ir->n_layers - 1].loc, "the network's output is the last "
                     "layer's, %s", ir->layers[ir->n_layers - 1].name);
        }
    }
}

int cnn_softmax_output(const cnn_ir *ir, int l)
{
    return l == ir->n_layers - 1 && ir->train.loss == CNN_LOSS_CROSSENTROPY;
}

int cnn_grad_into(const cnn_ir *ir, const cnn_layer *L, int k)
{
    return ir->train.loss != CNN_LOSS_NONE && L->inputs[k] >= 0 &&
           ir->layers[L->inputs[k]].learns;
}

int cnn_grad_edge_own(const cnn_ir *ir, const cnn_layer *L, int k)
{
    return cnn_grad_into(ir, L, k) && ir->layers[L->inputs[k]].n_readers > 1;
}

/* Checks that only the last layer has softmax, and that it does (cross-entropy needs it),
 * unless the network has no loss: then its output is whatever the last layer makes. */
static int check_output(cnn_ir *ir, cnn_diag *d)
{
    for (int i = 0; i < ir->n_layers - 1; i++)
        if (ir->layers[i].act == CNN_ACT_SOFTMAX)
            return cnn_error(d, ir->layers[i].act_loc,
                             "softmax is allowed only on the last layer (it feeds the "
                             "crossentropy loss)");
    const cnn_layer *last = &ir->layers[ir->n_layers - 1];
    if (ir->train.loss == CNN_LOSS_MSE && last->act == CNN_ACT_SOFTMAX)
        return cnn_error(d, last->act_loc, "softmax goes with the crossentropy loss; a network "
                         "trained with loss mse ends in another activation (linear, for "
                         "example)");
    if (ir->train.loss != CNN_LOSS_CROSSENTROPY) {
        ir->n_classes = (int)cnn_shape_size(last->out); /* checked against CNN_MAX_ELEMS */
        return 0;
    }
    if (last->out.rank != 1 || last->act != CNN_ACT_SOFTMAX)
        return cnn_error(d, last->loc,
                         "the last layer must end in softmax for the crossentropy loss "
                         "(for example 'dense 10 softmax'; or 'loss none' in train { } for a "
                         "network that is only run)");
    if (last->out.c < 2)
        return cnn_error(d, last->loc, "a classifier needs at least 2 classes, got %d",
                         last->out.c);
    ir->n_classes = last->out.c;
    return 0;
}

int cnn_ir_build(const cnn_ast *ast, const cnn_source *src, cnn_arena *arena,
                 const cnn_front_opts *opts, cnn_ir *ir, cnn_diag *d)
{
    memset(ir, 0, sizeof *ir);
    ir->source_name = src->name;
    ir->name = name_from_path(src->name, arena);
    cnn_train_cfg_defaults(&ir->train);
    int count = 0;
    for (const cnn_stmt *s = ast->first; s; s = s->next)
        count++;
    ir->layers = cnn_arena_alloc(arena, sizeof(cnn_layer) * (size_t)(count ? count : 1));
    if (!ir->layers || !ir->name)
        return cnn_error(d, (cnn_loc){0, 0, 0}, "out of memory");

    /* Every statement is checked, whatever failed before it; shapes only while every earlier
     * statement was right (a syntax error dropped a statement: no shape can be trusted). */
    int parse_failed = d->failed, shapes_known = !parse_failed, missing_input = 0;
    const cnn_stmt *input = NULL, *network = NULL, *train = NULL;
    for (const cnn_stmt *s = ast->first; s; s = s->next) {
        const cnn_stmt **once = strcmp(s->word, "network") == 0 ? &network
                              : strcmp(s->word, "input") == 0   ? &input
                              : strcmp(s->word, "train") == 0   ? &train
                                                                : NULL;
        if (once && s->label)
            cnn_error(d, s->label_loc, "only a layer's output can be named; the network's "
                                       "input is 'input'");
        if (once) {
            if (*once) {
                cnn_error(d, s->loc, "duplicate '%s'", s->word);
                cnn_note(d, (*once)->loc, "'%s' first given here", s->word);
                continue;
            }
            *once = s;
            if (once == &network)
                parse_network(s, &ir->name, d);
            else if (once == &input) {
                ir->input_loc = s->loc;
                if (parse_input(s, &ir->input, d))
                    shapes_known = 0;
            } else
                cnn_train_block_parse(s, &ir->train, d);
            continue;
        }
        const cnn_layer_desc *desc = cnn_layer_find(s->word);
        if (!desc) {
            const char *near = cnn_suggest(s->word, top_keywords);
            if (near)
                cnn_error(d, s->loc, "unknown layer '%s'; did you mean '%s'?", s->word, near);
            else {
                char list[256] = "";
                for (int k = 0; cnn_layer_keywords[k]; k++)
                    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                             k ? ", " : "", cnn_layer_keywords[k]);
                cnn_error(d, s->loc, "unknown layer '%s' (layers are %s)", s->word, list);
            }
            shapes_known = 0;
            missing_input |= !input; /* the unknown word may have been meant as 'input' */
            continue;
        }
        /* Not after a syntax error: the statement it dropped may have been the input. */
        if (!input && !missing_input && !parse_failed) {
            cnn_error(d, s->loc, "missing 'input HxWxC' before the first layer");
            shapes_known = 0;
            missing_input = 1;
        }
        if (build_layer(ir, s, desc, shapes_known, arena, d))
            shapes_known = 0;
    }
    if (!input && !missing_input && !parse_failed)
        return cnn_error(d, (cnn_loc){1, 1, 0}, "missing 'input HxWxC': the network has no input");
    if (input && ir->n_layers == 0 && !d->failed)
        return cnn_error(d, input->loc, "the network has no layers after 'input'");
    if (d->failed || check_output(ir, d))
        return -1;
    check_graph(ir, d);

    double first_weighted = 0;
    for (int i = 0; i < ir->n_layers; i++) {
        const cnn_layer *L = &ir->layers[i];
        ir->total_params += L->weights;
        ir->trainable_params += L->trainable;
        ir->forward_flops += L->flops;
        if (first_weighted == 0)
            first_weighted = L->flops;
    }
    /* Backward costs two forwards (inputs and weights), except that the first weighted layer
     * needs no gradient for its input. */
    ir->train_flops = 3 * ir->forward_flops - first_weighted;
    int batch = opts && opts->batch ? opts->batch : ir->train.batch;
    int64_t max_memory = opts && opts->max_memory ? opts->max_memory : CNN_DEFAULT_MAX_MEMORY;
    return cnn_ir_check_sizes(ir, batch, max_memory, d);
}
