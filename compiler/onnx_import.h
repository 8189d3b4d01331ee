/* `cnnc import`: an ONNX model as a .net file and the values of its tensors (docs/interop.md). */
#ifndef CNN_ONNX_IMPORT_H
#define CNN_ONNX_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "ir.h"

/* A graph input given a value, as ONNX's backend tests pass the weights of their node tests:
 * the serialized TensorProto (an input_N.pb file) for the input called name. */
typedef struct cnn_onnx_binding {
    const char *name;
    const uint8_t *bytes;
    size_t len;
} cnn_onnx_binding;

/* The values of one layer's tensors, in the order its descriptor makes them (conv: kernel,
 * bias; batchnorm: gamma, beta, moving mean, moving variance), in cnnc's layouts. */
typedef struct cnn_import_layer {
    int n;
    const float *value[CNN_MAX_LAYER_PARAMS];
    long size[CNN_MAX_LAYER_PARAMS];
} cnn_import_layer;

typedef struct cnn_import {
    char *net;                 /* the .net file's text */
    int n_layers;              /* one per layer statement of net, in order */
    cnn_import_layer *layers;
    const char *input_name, *output_name; /* the graph's */
    int input_nchw;  /* the model's input is [N, C, H, W] ([N, C, L]: H = 1), cnnc's [N, H, W, C] */
    int output_nchw; /* the same for its output */
    int classifier;  /* the output is a dense layer's softmax: the network has a loss */
} cnn_import;

/* Reads the serialized model (bytes, len) into *out, its text and values in arena. name: the
 * model file's name, for the .net's comment. bindings (n_bindings of them, may be 0) give
 * values to graph inputs. Returns 0, or -1 with the reason in err: a node cnnc cannot
 * express, named with its op and attribute, or a malformed file. */
int cnn_onnx_import(const uint8_t *bytes, size_t len, const char *name,
                    const cnn_onnx_binding *bindings, int n_bindings, const char *version,
                    cnn_arena *arena, cnn_import *out, char *err, size_t errlen);

/* Sets the tensors of m (a model of the IR built from out->net) to the imported values;
 * -1 with the reason in err if a layer's tensors do not match. */
int cnn_import_set_tensors(const cnn_import *imp, const cnn_ir *ir, cnn_model *m, char *err,
                           size_t errlen);

#endif
