/* Random valid .net files for the agreement tests: every layer kind, option and activation. */
#ifndef CNN_RANDOM_NET_H
#define CNN_RANDOM_NET_H

#include <stddef.h>

#include "cnnrt.h"

/* Writes one network's text into buf, drawn from rng: odd shapes, strides, padding, pools
 * that overlap or leave edges, batchnorm and dropout anywhere, regularizers, initializers,
 * every activation, and a train block with one of the optimizers. */
void random_net(cnn_rng *rng, char *buf, size_t cap);

#endif
