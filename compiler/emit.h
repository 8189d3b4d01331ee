/* Writing readable C: lines at the current indentation, blocks that open and close, comments. */
#ifndef CNN_EMIT_H
#define CNN_EMIT_H

#include <stdio.h>

typedef struct cnn_emitter {
    FILE *out;
    int depth;
    int failed; /* a write failed: every write is checked, not only the stream's error flag */
} cnn_emitter;

/* Text as it is, no indentation or newline added (a block of lines written at once). */
void emit_text(cnn_emitter *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One line at the current indentation (the format has no trailing newline). */
void emit(cnn_emitter *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A bare block, for locals that live only in it; emit_close ends it. */
void emit_block(cnn_emitter *e);
/* "header {" and one level deeper. */
void emit_open(cnn_emitter *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One level shallower and "}" (or "};" for initializers). */
void emit_close(cnn_emitter *e);
void emit_close_semi(cnn_emitter *e);
void emit_blank(cnn_emitter *e);
/* A loop header whose body is the next statement: one level deeper, no brace. */
void emit_for(cnn_emitter *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Back out of `levels` brace-less loop headers. */
void emit_end_for(cnn_emitter *e, int levels);
/* A block comment, one line of text per call of emit_comment_line between begin and end. */
void emit_comment(cnn_emitter *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
