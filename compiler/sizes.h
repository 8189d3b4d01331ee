/* Sizes of the generated code in 64-bit arithmetic: element limits, static memory, one place. */
#ifndef CNN_SIZES_H
#define CNN_SIZES_H

#include <stdint.h>

#include "ir.h"

/* The generated code indexes its buffers with int: no buffer, at the compiled batch size, may
 * hold more elements than this. */
#define CNN_MAX_ELEMS INT32_MAX
/* Static memory of a generated trainer unless --max-memory says otherwise: 2 GiB. */
#define CNN_DEFAULT_MAX_MEMORY ((int64_t)2 << 30)

/* One static buffer of the generated trainer: per_image elements for each image of the
 * batch, plus fixed ones, each of elem_bytes bytes. */
typedef struct cnn_buffer {
    const char *what; /* "im2col rows", "dropout mask", ... */
    int64_t per_image, fixed;
    int elem_bytes;
    int copies; /* buffers of this shape (a parameter: value, gradient, two optimizer slots) */
} cnn_buffer;

#define CNN_MAX_LAYER_BUFFERS 8

/* a * b, or -1 when either is negative or the product exceeds INT64_MAX. */
int64_t cnn_mul64(int64_t a, int64_t b);

/* Checks that a tensor created by the statement at loc has at most CNN_MAX_ELEMS elements per
 * image: the error names the tensor (`what`, like "conv2d_1's output"), its shape and count. */
int cnn_check_elems(cnn_diag *d, cnn_loc loc, const char *what, const char *shape, int64_t count);

/* Every buffer of the generated trainer at this batch size within CNN_MAX_ELEMS elements, and
 * their total within max_bytes; sets ir->static_bytes and ir->static_batch. The error is
 * located at the statement whose layer owns the offending buffer. */
int cnn_ir_check_sizes(cnn_ir *ir, int batch, int64_t max_bytes, cnn_diag *d);

/* "2.00 GiB", "21.3 MiB", "900 bytes". */
void cnn_format_bytes(int64_t n, char *buf, size_t cap);

#endif
