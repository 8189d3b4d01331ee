/* The syntax tree of a .net file: statements made of a name, arguments and key=value options. */
#ifndef CNN_AST_H
#define CNN_AST_H

#include "arena.h"
#include "diag.h"
#include "source.h"

typedef enum { CNN_ARG_NUMBER, CNN_ARG_DIMS, CNN_ARG_WORD } cnn_arg_kind;

typedef struct cnn_arg {
    const char *key; /* NULL for a positional argument */
    cnn_loc key_loc;
    cnn_arg_kind kind;
    const char *text; /* the value as written */
    cnn_loc loc;      /* where the value starts */
    struct cnn_arg *next;
} cnn_arg;

typedef struct cnn_stmt {
    const char *word; /* "conv", "input", "train", ... */
    cnn_loc loc;
    cnn_arg *args;
    const char *label; /* NAME in `NAME = conv ...`, or NULL */
    cnn_loc label_loc;
    struct cnn_stmt *body; /* statements inside `train { }` */
    struct cnn_stmt *next;
} cnn_stmt;

typedef struct cnn_ast {
    cnn_stmt *first;
} cnn_ast;

/* Parses src into ast (allocated in arena). Returns 0, or -1 with the error in d. */
int cnn_parse_source(const cnn_source *src, cnn_arena *arena, cnn_ast *ast, cnn_diag *d);

#endif
