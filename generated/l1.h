/* l1.h: the public symbols of the network "l1", compiled by cnnc 0.1.0 from models/l1.net. */
#ifndef L1_H
#define L1_H

#include "cnnrt.h"

#define L1_BATCH 32     /* largest batch a forward pass takes */
#define L1_INPUT_H 28
#define L1_INPUT_W 28
#define L1_INPUT_C 1
#define L1_CLASSES 10

/* The network, ready for libcnnrt (one instance: its buffers are static). */
cnn_model *l1_model(void);

#endif
