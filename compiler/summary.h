/* `cnnc --summary`: the Keras-style table of layers, shapes, parameters and FLOPs. */
#ifndef CNN_SUMMARY_H
#define CNN_SUMMARY_H

#include <stdio.h>

#include "ir.h"

void cnn_summary_print(FILE *out, const cnn_ir *ir);
/* 93322 -> "93,322" */
void cnn_format_count(long n, char *buf, size_t cap);

#endif
