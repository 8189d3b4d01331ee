/* Reading statement arguments: positional values and key=value options, checked and located. */
#ifndef CNN_OPTIONS_H
#define CNN_OPTIONS_H

#include "ast.h"

#define CNN_MAX_POSITIONAL 4
#define CNN_MAX_OPTIONS 8

/* A statement's arguments sorted out: pos[] in order, opt[k] for keys[k] (NULL if absent). */
typedef struct cnn_args {
    const cnn_arg *pos[CNN_MAX_POSITIONAL];
    int n_pos;
    const cnn_arg *opt[CNN_MAX_OPTIONS];
} cnn_args;

/* Splits s's arguments. keys: the options s accepts (NULL-terminated). Errors: an unknown key
 * (with "did you mean"), a repeated key, more than max_pos positional arguments. */
int cnn_args_split(const cnn_stmt *s, const char *const *keys, int max_pos, cnn_args *out,
                   cnn_diag *d);

/* Bounds for numbers: a range [min, max] with either end open. */
enum { CNN_MIN_OPEN = 1, CNN_MAX_OPEN = 2 };

/* A whole number in [min, max], named `what` in messages. */
int cnn_arg_int(const cnn_arg *a, const char *what, long min, long max, long *out, cnn_diag *d);
/* A real number within [min, max] (ends opened by flags). */
int cnn_arg_real(const cnn_arg *a, const char *what, double min, double max, int flags,
                 double *out, cnn_diag *d);
/* "HxW" or a single N meaning NxN, each in [1, max]. */
int cnn_arg_dims2(const cnn_arg *a, const char *what, int *h, int *w, cnn_diag *d);
/* One of the NULL-terminated names; returns its index or -1 (with "did you mean"). */
int cnn_arg_choice(const cnn_arg *a, const char *what, const char *const *names, cnn_diag *d);

/* The statement's location if `a` is missing, for "missing ..." messages. */
cnn_loc cnn_arg_loc(const cnn_arg *a, const cnn_stmt *s);

#endif
