/* Writing readable C: lines at the current indentation, blocks that open and close, comments. */
#include "emit.h"

#include <stdarg.h>

/* One line: indentation, prefix, the formatted text, suffix and newline. */
static void line(cnn_emitter *e, const char *prefix, const char *suffix, const char *fmt,
                 va_list ap)
{
    for (int i = 0; i < e->depth; i++)
        e->failed |= fputs("    ", e->out) == EOF;
    e->failed |= fputs(prefix, e->out) == EOF;
    e->failed |= vfprintf(e->out, fmt, ap) < 0;
    e->failed |= fputs(suffix, e->out) == EOF;
    e->failed |= fputc('\n', e->out) == EOF;
}

void emit_text(cnn_emitter *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    e->failed |= vfprintf(e->out, fmt, ap) < 0;
    va_end(ap);
}

#define LINE(prefix, suffix)                                                                   \
    do {                                                                                       \
        va_list ap;                                                                            \
        va_start(ap, fmt);                                                                     \
        line(e, prefix, suffix, fmt, ap);                                                      \
        va_end(ap);                                                                            \
    } while (0)

void emit(cnn_emitter *e, const char *fmt, ...)
{
    LINE("", "");
}

void emit_open(cnn_emitter *e, const char *fmt, ...)
{
    LINE("", " {");
    e->depth++;
}

void emit_block(cnn_emitter *e)
{
    emit(e, "{");
    e->depth++;
}

void emit_for(cnn_emitter *e, const char *fmt, ...)
{
    LINE("", "");
    e->depth++;
}

void emit_comment(cnn_emitter *e, const char *fmt, ...)
{
    LINE("/* ", " */");
}

void emit_close(cnn_emitter *e)
{
    e->depth--;
    emit(e, "}");
}

void emit_close_semi(cnn_emitter *e)
{
    e->depth--;
    emit(e, "};");
}

void emit_end_for(cnn_emitter *e, int levels)
{
    e->depth -= levels;
}

void emit_blank(cnn_emitter *e)
{
    e->failed |= fputc('\n', e->out) == EOF;
}
