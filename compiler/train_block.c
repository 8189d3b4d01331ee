/* The `train { }` block: loss, optimizer, batch, epochs, validation, schedule, seed. */
#include "train_block.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#include "options.h"
#include "suggest.h"

static const char *const statements[] = {"loss",     "optimizer", "batch", "epochs",
                                          "validation", "schedule", "seed",  NULL};
enum { S_LOSS, S_OPTIMIZER, S_BATCH, S_EPOCHS, S_VALIDATION, S_SCHEDULE, S_SEED, S_COUNT };

static const char *const losses[] = {"crossentropy", "none", "mse", NULL};
static const char *const optimizers[] = {"sgd", "rmsprop", "adam", "adamw", NULL};
static const char *const schedules[] = {"constant", "step", "exponential", "cosine", NULL};
static const char *const yes_no[] = {"yes", "no", NULL};

/* The options of each optimizer, indexed by cnn_optim_kind. */
static const char *const sgd_keys[] = {"lr", "momentum", "nesterov", NULL};
static const char *const rmsprop_keys[] = {"lr", "rho", "momentum", "eps", NULL};
static const char *const adam_keys[] = {"lr", "beta1", "beta2", "eps", NULL};
static const char *const adamw_keys[] = {"lr", "beta1", "beta2", "eps", "weight_decay", NULL};
static const char *const *const optim_keys[] = {sgd_keys, rmsprop_keys, adam_keys, adamw_keys};

static const char *const constant_keys[] = {NULL};
static const char *const step_keys[] = {"every", "factor", NULL};
static const char *const exponential_keys[] = {"rate", "every", NULL};
static const char *const cosine_keys[] = {"alpha", NULL};
static const char *const *const sched_keys[] = {constant_keys, step_keys, exponential_keys,
                                                cosine_keys};

/* The option named key in a split whose keys are `keys`, or NULL. */
static const cnn_arg *opt(const cnn_args *a, const char *const *keys, const char *key)
{
    for (int i = 0; keys[i]; i++)
        if (strcmp(keys[i], key) == 0)
            return a->opt[i];
    return NULL;
}

static int real_opt(const cnn_args *a, const char *const *keys, const char *key, double min,
                    double max, int flags, double *out, cnn_diag *d)
{
    const cnn_arg *v = opt(a, keys, key);
    return v ? cnn_arg_real(v, key, min, max, flags, out, d) : 0;
}

static int parse_optimizer(const cnn_stmt *s, cnn_train_cfg *cfg, cnn_diag *d)
{
    if (!s->args || s->args->key)
        return cnn_error(d, s->loc, "'optimizer' needs a name: one of sgd, rmsprop, adam, adamw");
    int k = cnn_arg_choice(s->args, "optimizer", optimizers, d);
    if (k < 0)
        return -1;
    cnn_optim_defaults(cfg, (cnn_optim_kind)k);
    const char *const *keys = optim_keys[k];
    cnn_args a;
    if (cnn_args_split(s, keys, k == CNN_OPTIM_SGD ? 2 : 1, &a, d))
        return -1;
    if (a.n_pos > 1) { /* sgd's bare `nesterov` */
        if (a.pos[1]->kind != CNN_ARG_WORD || strcmp(a.pos[1]->text, "nesterov") != 0)
            return cnn_error(d, a.pos[1]->loc, "unexpected argument '%s' to 'optimizer sgd'",
                             a.pos[1]->text);
        if (opt(&a, keys, "nesterov"))
            return cnn_error(d, a.pos[1]->loc, "duplicate option 'nesterov'");
        cfg->nesterov = 1;
    }
    const cnn_arg *nesterov = k == CNN_OPTIM_SGD ? opt(&a, keys, "nesterov") : NULL;
    if (nesterov) {
        int yn = cnn_arg_choice(nesterov, "value for 'nesterov'", yes_no, d);
        if (yn < 0)
            return -1;
        cfg->nesterov = yn == 0;
    }
    return real_opt(&a, keys, "lr", 0, INFINITY, CNN_MIN_OPEN, &cfg->lr, d) ||
           real_opt(&a, keys, "momentum", 0, 1, CNN_MAX_OPEN, &cfg->momentum, d) ||
           real_opt(&a, keys, "rho", 0, 1, CNN_MAX_OPEN, &cfg->rho, d) ||
           real_opt(&a, keys, "beta1", 0, 1, CNN_MAX_OPEN, &cfg->beta1, d) ||
           real_opt(&a, keys, "beta2", 0, 1, CNN_MAX_OPEN, &cfg->beta2, d) ||
           real_opt(&a, keys, "eps", 0, 1, CNN_MIN_OPEN, &cfg->eps, d) ||
           real_opt(&a, keys, "weight_decay", 0, 1, 0, &cfg->weight_decay, d);
}

static int parse_schedule(const cnn_stmt *s, cnn_train_cfg *cfg, cnn_diag *d)
{
    if (!s->args || s->args->key)
        return cnn_error(d, s->loc,
                         "'schedule' needs a name: one of constant, step, exponential, cosine");
    int k = cnn_arg_choice(s->args, "schedule", schedules, d);
    if (k < 0)
        return -1;
    const char *const *keys = sched_keys[k];
    cnn_args a;
    if (cnn_args_split(s, keys, 1, &a, d))
        return -1;
    cfg->schedule = (cnn_sched_kind)k;
    cfg->sched_every = k == CNN_SCHED_STEP ? 5 : 1;
    cfg->sched_factor = k == CNN_SCHED_STEP ? 0.5 : 0.9;
    cfg->sched_alpha = 0;
    const cnn_arg *every = opt(&a, keys, "every");
    long e;
    if (every) {
        if (cnn_arg_int(every, "every", 1, 1000000, &e, d))
            return -1;
        cfg->sched_every = (int)e;
    }
    return real_opt(&a, keys, "factor", 0, 1, CNN_MIN_OPEN, &cfg->sched_factor, d) ||
           real_opt(&a, keys, "rate", 0, 1, CNN_MIN_OPEN, &cfg->sched_factor, d) ||
           real_opt(&a, keys, "alpha", 0, 1, 0, &cfg->sched_alpha, d);
}

/* Statements of one positional value: batch, epochs, validation, seed, loss. */
static int parse_single(const cnn_stmt *s, int which, cnn_train_cfg *cfg, cnn_diag *d)
{
    cnn_args a;
    if (cnn_args_split(s, NULL, 1, &a, d))
        return -1;
    if (a.n_pos < 1)
        return cnn_error(d, s->loc, "'%s' needs a value", s->word);
    long v;
    double r;
    switch (which) {
    case S_LOSS:
    {
        int k = cnn_arg_choice(a.pos[0], "loss", losses, d);
        if (k < 0)
            return -1;
        cfg->loss = k == 0 ? CNN_LOSS_CROSSENTROPY : k == 1 ? CNN_LOSS_NONE : CNN_LOSS_MSE;
        return 0;
    }
    case S_BATCH:
        if (cnn_arg_int(a.pos[0], "batch size", 1, 65536, &v, d))
            return -1;
        cfg->batch = (int)v;
        return 0;
    case S_EPOCHS:
        if (cnn_arg_int(a.pos[0], "number of epochs", 1, 1000000, &v, d))
            return -1;
        cfg->epochs = (int)v;
        return 0;
    case S_VALIDATION:
        if (cnn_arg_real(a.pos[0], "validation fraction", 0, 1, CNN_MAX_OPEN, &r, d))
            return -1;
        cfg->validation = r;
        return 0;
    default:
        if (cnn_arg_int(a.pos[0], "seed", 0, LONG_MAX, &v, d))
            return -1;
        cfg->seed = (uint64_t)v;
        return 0;
    }
}

int cnn_train_block_parse(const cnn_stmt *block, cnn_train_cfg *cfg, cnn_diag *d)
{
    const cnn_stmt *seen[S_COUNT] = {0};
    int failed = 0; /* every setting is checked, whatever failed before it */
    for (const cnn_stmt *s = block->body; s; s = s->next) {
        if (s->label)
            failed = cnn_error(d, s->label_loc, "a training setting has no output to name");
        int k = 0;
        while (statements[k] && strcmp(statements[k], s->word) != 0)
            k++;
        if (!statements[k]) {
            const char *near = cnn_suggest(s->word, statements);
            if (near)
                failed = cnn_error(d, s->loc, "unknown training setting '%s'; did you mean "
                                              "'%s'?", s->word, near);
            else
                failed = cnn_error(d, s->loc, "unknown training setting '%s' (expected loss, "
                                              "optimizer, batch, epochs, validation, schedule "
                                              "or seed)", s->word);
            continue;
        }
        if (seen[k]) {
            failed = cnn_error(d, s->loc, "duplicate '%s'", s->word);
            cnn_note(d, seen[k]->loc, "'%s' first given here", s->word);
            continue;
        }
        seen[k] = s;
        int rc = k == S_OPTIMIZER  ? parse_optimizer(s, cfg, d)
                 : k == S_SCHEDULE ? parse_schedule(s, cfg, d)
                                   : parse_single(s, k, cfg, d);
        if (rc)
            failed = -1;
    }
    return failed;
}
