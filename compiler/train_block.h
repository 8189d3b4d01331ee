/* The `train { }` block: loss, optimizer, batch, epochs, validation, schedule, seed. */
#ifndef CNN_TRAIN_BLOCK_H
#define CNN_TRAIN_BLOCK_H

#include "ast.h"
#include "cnnrt.h"

/* Reads the block's statements over cfg (which holds the defaults). */
int cnn_train_block_parse(const cnn_stmt *block, cnn_train_cfg *cfg, cnn_diag *d);

#endif
