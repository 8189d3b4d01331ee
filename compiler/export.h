/* `cnnc export`: a trained network as standalone C99 for inference (docs/deploy.md), float or
 * int8, with its activations in one arena planned at compile time. */
#ifndef CNN_EXPORT_H
#define CNN_EXPORT_H

#include <stdio.h>

#include "deploy.h"
#include "quantize.h"
#include "source.h"

typedef struct cnn_export_opts {
    const char *version;      /* cnnc's */
    const char *weights_path; /* the checkpoint, named in the header comment */
    const cnn_quant *quant;   /* int8 (with the calibration's image count), or NULL: float */
    int calibration_images;
    char *const *class_names; /* n_classes names, or NULL */
} cnn_export_opts;

/* The sizes the export's plan reports: constant data (weights, biases, multipliers, tables,
 * names: flash) and the arena (RAM), in bytes, and per op. */
typedef struct cnn_export_sizes {
    int64_t const_bytes, arena_bytes;
    int64_t *op_const; /* [n_ops] */
} cnn_export_sizes;

/* Plans dn's arena for the export's element type and counts its bytes; -1 out of memory. */
int cnn_export_sizes_of(cnn_deploy *dn, const cnn_export_opts *o, cnn_export_sizes *s,
                        cnn_arena *arena);
/* Writes the .c or .h; -1 when a write failed. dn must have been planned (sizes_of). */
int cnn_export_c(FILE *out, const cnn_deploy *dn, const cnn_source *src,
                 const cnn_export_opts *o, const cnn_export_sizes *s);
int cnn_export_h(FILE *out, const cnn_deploy *dn, const cnn_export_opts *o,
                 const cnn_export_sizes *s);
/* `cnnc export --plan`: per op, its flash and RAM bytes, and the totals; -1 if a write
 * failed. */
int cnn_export_plan_print(FILE *out, const cnn_deploy *dn, const cnn_export_opts *o,
                          const cnn_export_sizes *s);

#endif
