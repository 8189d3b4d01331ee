/* Reading statement arguments: positional values and key=value options, checked and located. */
#include "options.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "suggest.h"

int cnn_args_split(const cnn_stmt *s, const char *const *keys, int max_pos, cnn_args *out,
                   cnn_diag *d)
{
    memset(out, 0, sizeof *out);
    int failed = 0; /* every wrong argument of the statement is reported */
    for (const cnn_arg *a = s->args; a; a = a->next) {
        if (!a->key) {
            if (out->n_pos >= max_pos)
                failed = cnn_error(d, a->loc, "unexpected argument '%s' to '%s'", a->text,
                                   s->word);
            else
                out->pos[out->n_pos++] = a;
            continue;
        }
        int k = 0;
        while (keys && keys[k] && strcmp(keys[k], a->key) != 0)
            k++;
        if (!keys || !keys[k]) {
            const char *near = keys ? cnn_suggest(a->key, keys) : NULL;
            if (near)
                failed = cnn_error(d, a->key_loc, "unknown option '%s' for '%s'; did you mean "
                                                  "'%s'?", a->key, s->word, near);
            else
                failed = cnn_error(d, a->key_loc, "unknown option '%s' for '%s'", a->key,
                                   s->word);
        } else if (out->opt[k]) {
            failed = cnn_error(d, a->key_loc, "duplicate option '%s'", a->key);
            cnn_note(d, out->opt[k]->key_loc, "'%s' first given here", a->key);
        } else
            out->opt[k] = a;
    }
    return failed;
}

static const char *kind_name(cnn_arg_kind k)
{
    return k == CNN_ARG_WORD ? "name" : k == CNN_ARG_DIMS ? "dimensions" : "number";
}

int cnn_arg_int(const cnn_arg *a, const char *what, long min, long max, long *out, cnn_diag *d)
{
    if (a->kind != CNN_ARG_NUMBER)
        return cnn_error(d, a->loc, "%s must be a whole number, got %s '%s'", what,
                         kind_name(a->kind), a->text);
    const char *p = a->text;
    if (*p == '+' || *p == '-')
        p++;
    if (strspn(p, "0123456789") != strlen(p))
        return cnn_error(d, a->loc, "%s must be a whole number, got '%s'", what, a->text);
    errno = 0;
    long v = strtol(a->text, NULL, 10);
    /* strtol saturates: a number past LONG_MAX is ERANGE, even where max is LONG_MAX. */
    if (v > max || (errno == ERANGE && v == LONG_MAX))
        return cnn_error(d, a->loc, "%s must be at most %ld, got %s", what, max, a->text);
    if (errno == ERANGE)
        return cnn_error(d, a->loc, "%s must be at least %ld, got %s", what, min, a->text);
    if (v < min)
        return cnn_error(d, a->loc, "%s must be at least %ld, got %s", what, min, a->text);
    *out = v;
    return 0;
}

int cnn_arg_real(const cnn_arg *a, const char *what, double min, double max, int flags,
                 double *out, cnn_diag *d)
{
    if (a->kind != CNN_ARG_NUMBER)
        return cnn_error(d, a->loc, "%s must be a number, got %s '%s'", what, kind_name(a->kind),
                         a->text);
    errno = 0;
    double v = strtod(a->text, NULL);
    if (errno == ERANGE)
        return cnn_error(d, a->loc, "%s %s is too %s for a number here", what, a->text,
                         fabs(v) > 1 ? "large" : "small");
    int low = (flags & CNN_MIN_OPEN) ? !(v > min) : !(v >= min);
    int high = (flags & CNN_MAX_OPEN) ? !(v < max) : !(v <= max);
    if (errno == ERANGE || !isfinite(v) || low || high) {
        if (isinf(max))
            return cnn_error(d, a->loc, "%s must be %s %g, got %s", what,
                             (flags & CNN_MIN_OPEN) ? "greater than" : "at least", min, a->text);
        return cnn_error(d, a->loc, "%s must be in %c%g, %g%c, got %s", what,
                         (flags & CNN_MIN_OPEN) ? '(' : '[', min, max,
                         (flags & CNN_MAX_OPEN) ? ')' : ']', a->text);
    }
    *out = v;
    return 0;
}

int cnn_arg_dims2(const cnn_arg *a, const char *what, int *h, int *w, cnn_diag *d)
{
    if (a->kind == CNN_ARG_NUMBER) {
        long v;
        if (cnn_arg_int(a, what, 1, 65536, &v, d))
            return -1;
        *h = *w = (int)v;
        return 0;
    }
    if (a->kind != CNN_ARG_DIMS)
        return cnn_error(d, a->loc, "%s must be HxW (like 3x3), got %s '%s'", what,
                         kind_name(a->kind), a->text);
    char *end;
    long hv = strtol(a->text, &end, 10);
    if (*end != 'x')
        return cnn_error(d, a->loc, "%s must be HxW, got '%s'", what, a->text);
    long wv = strtol(end + 1, &end, 10);
    if (*end != '\0')
        return cnn_error(d, a->loc, "%s must be HxW with two sizes, got '%s'", what, a->text);
    if (hv < 1 || wv < 1 || hv > 65536 || wv > 65536)
        return cnn_error(d, a->loc, "%s sizes must be between 1 and 65536, got '%s'", what, a->text);
    *h = (int)hv;
    *w = (int)wv;
    return 0;
}

int cnn_arg_choice(const cnn_arg *a, const char *what, const char *const *names, cnn_diag *d)
{
    if (a->kind == CNN_ARG_WORD)
        for (int i = 0; names[i]; i++)
            if (strcmp(names[i], a->text) == 0)
                return i;
    const char *near = a->kind == CNN_ARG_WORD ? cnn_suggest(a->text, names) : NULL;
    char list[256] = "";
    for (int i = 0; names[i]; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, names[i], sizeof list - strlen(list) - 1);
    }
    if (near)
        cnn_error(d, a->loc, "unknown %s '%s'; did you mean '%s'?", what, a->text, near);
    else
        cnn_error(d, a->loc, "unknown %s '%s' (expected one of: %s)", what, a->text, list);
    return -1;
}

cnn_loc cnn_arg_loc(const cnn_arg *a, const cnn_stmt *s)
{
    return a ? a->loc : s->loc;
}
