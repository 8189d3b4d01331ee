/* State shared by the scanner and the parser while one file is read. */
#ifndef CNN_PARSE_STATE_H
#define CNN_PARSE_STATE_H

#include "ast.h"

typedef struct cnn_parse_state {
    const cnn_source *src;
    cnn_arena *arena;
    cnn_diag *diag;
    cnn_ast *ast;
    int line, col;      /* scanner position */
    int eof_newline;    /* the NL synthesized at end of file was sent */
    int in_block;       /* inside `train {` */
    cnn_loc block_loc;  /* where that `train` was */
} cnn_parse_state;

#endif
