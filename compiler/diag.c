/* Diagnostics: every error of a compilation with its location and notes, printed in one place. */
#include "diag.h"

#include <stdarg.h>

static void record(cnn_diag *d, cnn_diag_kind kind, cnn_loc loc, const char *fmt, va_list ap)
{
    int cap = (int)(sizeof d->entries / sizeof d->entries[0]);
    if (d->n >= cap)
        return;
    cnn_diag_entry *e = &d->entries[d->n++];
    e->kind = kind;
    e->loc = loc;
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
}

int cnn_error(cnn_diag *d, cnn_loc loc, const char *fmt, ...)
{
    if (d->failed >= CNN_MAX_ERRORS) {
        d->too_many = 1;
        d->notes_open = 0;
        return -1;
    }
    d->failed++;
    d->notes_open = 1;
    va_list ap;
    va_start(ap, fmt);
    record(d, CNN_DIAG_ERROR, loc, fmt, ap);
    va_end(ap);
    return -1;
}

void cnn_warning(cnn_diag *d, cnn_loc loc, const char *fmt, ...)
{
    int cap = (int)(sizeof d->entries / sizeof d->entries[0]);
    /* Warnings never take the room errors need: at most a tenth of the entries. */
    if (d->warnings >= cap / 10) {
        d->notes_open = 0;
        return;
    }
    d->warnings++;
    d->notes_open = 1;
    va_list ap;
    va_start(ap, fmt);
    record(d, CNN_DIAG_WARNING, loc, fmt, ap);
    va_end(ap);
}

void cnn_note(cnn_diag *d, cnn_loc loc, const char *fmt, ...)
{
    if (!d->notes_open)
        return;
    va_list ap;
    va_start(ap, fmt);
    record(d, CNN_DIAG_NOTE, loc, fmt, ap);
    va_end(ap);
}

/* The source line, control characters shown as '?' so that the terminal shows what the file
 * has and the caret stays under it; then the caret and its span. */
static void print_excerpt(FILE *out, const cnn_source *src, cnn_loc loc)
{
    size_t len;
    const char *line = cnn_source_line(src, loc.line, &len);
    if (!line)
        return;
    fputs("  ", out);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        fputc(c == '\t' || c >= 0x20 ? c : '?', out);
    }
    fputs("\n  ", out);
    /* Tabs are echoed as tabs so the caret lines up under them. */
    for (int i = 0; i + 1 < loc.col && (size_t)i < len; i++)
        fputc(line[i] == '\t' ? '\t' : ' ', out);
    fputc('^', out);
    for (int i = 1; i < loc.len && (size_t)(loc.col - 1 + i) < len; i++)
        fputc('~', out);
    fputc('\n', out);
}

static int loc_before(cnn_loc a, cnn_loc b)
{
    return a.line < b.line || (a.line == b.line && a.col < b.col);
}

static void print_entry(FILE *out, const cnn_source *src, const cnn_diag_entry *e)
{
    const char *kind = e->kind == CNN_DIAG_ERROR     ? "error"
                     : e->kind == CNN_DIAG_WARNING ? "warning"
                                                   : "note";
    if (e->loc.line <= 0) {
        fprintf(out, "%s: %s: %s\n", src->name, kind, e->msg);
        return;
    }
    fprintf(out, "%s:%d:%d: %s: %s\n", src->name, e->loc.line, e->loc.col, kind, e->msg);
    print_excerpt(out, src, e->loc);
}

void cnn_diag_print(FILE *out, const cnn_source *src, const cnn_diag *d)
{
    /* In the order of the file: the parser's errors are found before the checks that follow
     * it. Each error keeps its notes; errors at one place keep the order they were found in. */
    int order[sizeof d->entries / sizeof d->entries[0]], n = 0;
    for (int i = 0; i < d->n; i++) {
        if (d->entries[i].kind == CNN_DIAG_NOTE)
            continue;
        int j = n++;
        while (j > 0 && loc_before(d->entries[i].loc, d->entries[order[j - 1]].loc)) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    for (int k = 0; k < n; k++) {
        print_entry(out, src, &d->entries[order[k]]);
        for (int i = order[k] + 1; i < d->n && d->entries[i].kind == CNN_DIAG_NOTE; i++)
            print_entry(out, src, &d->entries[i]);
    }
    if (d->too_many)
        fprintf(out, "%s: error: too many errors; stopping\n", src->name);
    if (d->failed)
        fprintf(out, "%d error%s generated.\n", d->failed, d->failed == 1 ? "" : "s");
    else if (d->warnings)
        fprintf(out, "%d warning%s generated.\n", d->warnings, d->warnings == 1 ? "" : "s");
}
