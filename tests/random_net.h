/* Random valid .net files for the agreement tests: every layer kind, option and activation. */
#ifndef CNN_RANDOM_NET_H
#define CNN_RANDOM_NET_H

#include <stddef.h>

#include "cnnrt.h"

/* Writes one network's text into buf, drawn from rng: odd shapes, strides, padding, pools
 * that overlap or leave edges, batchnorm and dropout anywhere, regularizers, initializers,
 * every activation, and a train block with one of the optimizers. */
void random_net(cnn_rng *rng, char *buf, size_t cap);

/* Networks 0 .. n-1 of seed, each drawn from seed * 1000003 + i alone, written to
 * random-nets/PREFIX_SEED_I.net below the current directory, so that a failing one can be read
 * and run again; their paths, NULL-terminated (free_names), or NULL if one cannot be written. */
char **random_net_files(const char *prefix, unsigned long seed, int n);

#endif
