/* What a run writes for people and tools: CSV and JSON logs, confusion matrices, summaries. */
#ifndef CNN_REPORT_H
#define CNN_REPORT_H

#include <stdio.h>

#include "cnnrt.h"

/* Creates dir (and its parents); 0 or -1 with errno set. */
int cnn_mkdirs(const char *dir);
/* A file under dir opened for writing, with a message on stderr when it cannot be. */
FILE *cnn_log_open(const char *prog, const char *dir, const char *name);
/* Whether everything written to f, opened as dir/name, reached the file: flushes it, and on
 * a failure (a full disk) says so on stderr, naming the file; 0 or -1. */
int cnn_log_check(const char *prog, FILE *f, const char *dir, const char *name);
/* The same, then closes f (closing is checked too). NULL f: nothing to do, 0. */
int cnn_log_close(const char *prog, FILE *f, const char *dir, const char *name);

void cnn_write_epoch_csv_header(FILE *f);
/* One epoch's row; the accuracy columns empty where classifier is 0 (loss mse). */
void cnn_write_epoch_csv(FILE *f, const cnn_epoch_stats *s, int classifier);

/* The confusion matrix as a table for people, then the accuracy of each class. */
void cnn_print_confusion(FILE *out, const long *counts, int k, const char *const *names);
/* The same as CSV: a header of predicted class names, one row per true class. */
void cnn_write_confusion_csv(FILE *f, const long *counts, int k, const char *const *names);

/* JSON pieces: a string with escapes, an evaluation object, a confusion object. */
void cnn_json_string(FILE *f, const char *s);
void cnn_json_eval(FILE *f, const cnn_eval *e);
void cnn_json_confusion(FILE *f, const long *counts, int k, const char *const *names);

#endif
