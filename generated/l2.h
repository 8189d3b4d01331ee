/* l2.h: the public symbols of the network "l2", compiled by cnnc 0.1.0 from models/l2.net. */
#ifndef L2_H
#define L2_H

#include "cnnrt.h"

#define L2_BATCH 32     /* largest batch a forward pass takes */
#define L2_INPUT_H 28
#define L2_INPUT_W 28
#define L2_INPUT_C 1
#define L2_CLASSES 10

/* The network, ready for libcnnrt (one instance: its buffers are static). */
cnn_model *l2_model(void);

#endif
