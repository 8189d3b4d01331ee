/* batchnorm.h: the public symbols of the network "batchnorm", compiled by cnnc 0.1.0 from models/batchnorm.net. */
#ifndef BATCHNORM_H
#define BATCHNORM_H

#include "cnnrt.h"

#define BATCHNORM_BATCH 32     /* largest batch a forward pass takes */
#define BATCHNORM_INPUT_H 28
#define BATCHNORM_INPUT_W 28
#define BATCHNORM_INPUT_C 1
#define BATCHNORM_CLASSES 10

/* The network, ready for libcnnrt (one instance: its buffers are static). */
cnn_model *batchnorm_model(void);

#endif
