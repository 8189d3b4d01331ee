/* Diagnostics: the first error of a compilation, with its location, printed in one place. */
#include "diag.h"

#include <stdarg.h>

int cnn_error(cnn_diag *d, cnn_loc loc, const char *fmt, ...)
{
    if (d->failed)
        return -1;
    d->failed = 1;
    d->loc = loc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
    return -1;
}

void cnn_diag_print(FILE *out, const cnn_source *src, const cnn_diag *d)
{
    if (d->loc.line <= 0) {
        fprintf(out, "%s: error: %s\n", src->name, d->msg);
        return;
    }
    fprintf(out, "%s:%d:%d: error: %s\n", src->name, d->loc.line, d->loc.col, d->msg);
    size_t len;
    const char *line = cnn_source_line(src, d->loc.line, &len);
    if (!line)
        return;
    fprintf(out, "  %.*s\n  ", (int)len, line);
    /* Tabs are echoed as tabs so the caret lines up under them. */
    for (int i = 0; i + 1 < d->loc.col && (size_t)i < len; i++)
        fputc(line[i] == '\t' ? '\t' : ' ', out);
    fputs("^\n", out);
}
