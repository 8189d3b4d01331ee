/* dropout.h: the public symbols of the network "dropout", compiled by cnnc 0.1.0 from models/dropout.net. */
#ifndef DROPOUT_H
#define DROPOUT_H

#include "cnnrt.h"

#define DROPOUT_BATCH 32     /* largest batch a forward pass takes */
#define DROPOUT_INPUT_H 28
#define DROPOUT_INPUT_W 28
#define DROPOUT_INPUT_C 1
#define DROPOUT_CLASSES 10

/* The network, ready for libcnnrt (one instance: its buffers are static). */
cnn_model *dropout_model(void);

#endif
