/* `cnnc onnx`: a trained network as an ONNX model file (docs/interop.md). */
#ifndef CNN_ONNX_EXPORT_H
#define CNN_ONNX_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "cnnrt.h"
#include "ir.h"

/* The serialized ONNX model of ir with m's weights (m: a model of ir, its tensor table in ir's
 * order), in *bytes (from arena) and *len. -1 when out of memory. */
int cnn_onnx_export(const cnn_ir *ir, const cnn_model *m, const char *version, cnn_arena *arena,
                    uint8_t **bytes, size_t *len);

#endif
