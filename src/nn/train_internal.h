/* Shared by the training loop (train.c) and evaluation (evaluate.c). */
#ifndef ET_NN_TRAIN_INTERNAL_H
#define ET_NN_TRAIN_INTERNAL_H

#include "edgetrain/train.h"

/* Inference (no dropout, moving batch-norm statistics) over rows[0..n) of f
 * in batches of the net's max_batch, staged in batch_x (max_batch rows).
 * Copies per sample the output of node `node` (et_net_node_output), or with
 * node -1 the softmax probabilities, into out, one row after another.
 * ET_EINTR on Ctrl-C. */
et_status et_predict_rows(et_net *net, const et_features *f, const size_t *rows, size_t n,
                          float *batch_x, int node, float *out, et_error *err);

#endif
