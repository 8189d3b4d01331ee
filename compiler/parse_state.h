/* State shared by the scanner and the parser while one file is read. */
#ifndef CNN_PARSE_STATE_H
#define CNN_PARSE_STATE_H

#include <setjmp.h>

#include "ast.h"

typedef struct cnn_parse_state {
    const cnn_source *src;
    cnn_arena *arena;
    cnn_diag *diag;
    cnn_ast *ast;
    int line, col;      /* scanner position */
    int eof_newline;    /* the NL synthesized at end of file was sent */
    int lex_error;      /* the scanner reported the token it returns as ERROR */
    int lex_error_line; /* the line of its last report */
    int in_block;       /* inside `train {` */
    int nested_blocks;  /* `train {` reported as nested: the scanner ends their '}' as a line */
    cnn_loc block_loc;  /* where that `train` was */
    jmp_buf fatal;      /* flex's fatal errors (out of memory) come back here, not exit() */
} cnn_parse_state;

#endif
