/* Writing readable C: lines at the current indentation, blocks that open and close, comments. */
#include "emit.h"

#include <stdarg.h>

static void indent(cnn_emitter *e)
{
    for (int i = 0; i < e->depth; i++)
        fputs("    ", e->out);
}

void emit(cnn_emitter *e, const char *fmt, ...)
{
    indent(e);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(e->out, fmt, ap);
    va_end(ap);
    fputc('\n', e->out);
}

void emit_open(cnn_emitter *e, const char *fmt, ...)
{
    indent(e);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(e->out, fmt, ap);
    va_end(ap);
    fputs(" {\n", e->out);
    e->depth++;
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

void emit_blank(cnn_emitter *e)
{
    fputc('\n', e->out);
}

void emit_comment(cnn_emitter *e, const char *fmt, ...)
{
    indent(e);
    fputs("/* ", e->out);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(e->out, fmt, ap);
    va_end(ap);
    fputs(" */\n", e->out);
}

void emit_for(cnn_emitter *e, const char *fmt, ...)
{
    indent(e);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(e->out, fmt, ap);
    va_end(ap);
    fputc('\n', e->out);
    e->depth++;
}

void emit_end_for(cnn_emitter *e, int levels)
{
    e->depth -= levels;
}
