/* baseline.h: the public symbols of the network "baseline", compiled by cnnc 0.1.0 from models/baseline.net. */
#ifndef BASELINE_H
#define BASELINE_H

#include "cnnrt.h"

#define BASELINE_BATCH 32     /* largest batch a forward pass takes */
#define BASELINE_INPUT_H 28
#define BASELINE_INPUT_W 28
#define BASELINE_INPUT_C 1
#define BASELINE_CLASSES 10

/* The network, ready for libcnnrt (one instance: its buffers are static). */
cnn_model *baseline_model(void);

#endif
