/* The network the checkpoint target loads into: conv, batchnorm, pool, dropout, flatten,
 * dense, so that every kind of tensor, trainable or not, is in its table. */
#ifndef CNN_FUZZ_NET_H
#define CNN_FUZZ_NET_H

static const char fuzz_net_text[] = "network fuzz\ninput 6x6x1\nconv 2 3x3 relu\nbatchnorm\n"
                                    "pool 2\ndropout 0.5\nflatten\ndense 3 softmax\n";

#endif
