/* The interpreted reference: a backend that walks the IR with plain loops in double precision. */
#ifndef CNN_REFERENCE_H
#define CNN_REFERENCE_H

#include "cnnrt.h"
#include "ir.h"

/* A model for ir taking batches of up to max_batch images; ir must outlive it. Tensors are
 * allocated but not initialized (cnn_init_tensors does that). NULL when out of memory. */
cnn_model *cnn_reference_new(const cnn_ir *ir, int max_batch);

/* act(x) in double, as the reference computes it (softmax, row-wise, is not one: x itself). */
double cnn_reference_activation(cnn_act a, double x, double alpha);

/* After a forward pass of n images: layer `layer`'s output [n][out] (pre = 0), or for conv and
 * dense its values before the activation (pre = 1; NULL for other kinds). For calibrating the
 * int8 export from what the network computes. */
const double *cnn_reference_values(const cnn_model *m, int layer, int pre);

#endif
