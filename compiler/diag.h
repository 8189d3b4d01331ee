/* Diagnostics: every error of a compilation with its location and notes, printed in one place. */
#ifndef CNN_DIAG_H
#define CNN_DIAG_H
#include <stdio.h>

#include "source.h"

typedef struct cnn_loc {
    int line, col; /* 1-based; line 0 means "no location" */
    int len;       /* columns the offending token spans (0 or 1: the caret alone) */
} cnn_loc;

/* One run reports at most this many errors, then says it stops. */
#define CNN_MAX_ERRORS 20

typedef enum { CNN_DIAG_ERROR, CNN_DIAG_NOTE, CNN_DIAG_WARNING } cnn_diag_kind;

typedef struct cnn_diag_entry {
    cnn_diag_kind kind;
    cnn_loc loc;
    char msg[512];
} cnn_diag_entry;

typedef struct cnn_diag {
    int failed;   /* errors recorded */
    int warnings; /* warnings recorded: printed, but the file is still good */
    int too_many; /* an error past CNN_MAX_ERRORS was dropped */
    int n;
    cnn_diag_entry entries[CNN_MAX_ERRORS * 3]; /* errors, each followed by its notes */
    int notes_open; /* the last error was recorded: notes attach to it */
} cnn_diag;

/* Records an error (up to CNN_MAX_ERRORS of them); returns -1. */
int cnn_error(cnn_diag *d, cnn_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Records a warning (notes attach to it as to an error); the compilation goes on. */
void cnn_warning(cnn_diag *d, cnn_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Attaches a note to the error just recorded (dropped with it when it was not). */
void cnn_note(cnn_diag *d, cnn_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prints each entry as "file:line:col: error: msg" (or warning:, note:), the source line and a caret
 * under the span (^~~~), then "too many errors; stopping" where errors were dropped, and
 * "N errors generated." (or "N warnings generated." when there is no error). */
void cnn_diag_print(FILE *out, const cnn_source *src, const cnn_diag *d);

#endif
