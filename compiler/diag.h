/* Diagnostics: the first error of a compilation, with its location, printed in one place. */
#ifndef CNN_DIAG_H
#define CNN_DIAG_H
#include <stdio.h>

#include "source.h"

typedef struct cnn_loc {
    int line, col; /* 1-based; line 0 means "no location" */
} cnn_loc;

typedef struct cnn_diag {
    int failed;
    cnn_loc loc;
    char msg[512];
} cnn_diag;

/* Records an error unless one is already recorded (the first error wins); returns -1. */
int cnn_error(cnn_diag *d, cnn_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prints "file:line:col: error: msg", then the source line and a caret under the column. */
void cnn_diag_print(FILE *out, const cnn_source *src, const cnn_diag *d);

#endif
