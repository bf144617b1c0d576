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

/* One training run's state: the net, the data split and the buffers the
 * epochs share (train.c fills it; train_int8.c reuses it). */
typedef struct et_trainer {
    et_net *net;
    const et_features *f;
    const et_impulse *imp;
    size_t *train, n_train, *val, n_val; /* feature rows */
    size_t classes, row_floats;
    int h, w, c, batch;
    double lr;       /* the run's base learning rate */
    bool clamp;      /* augmentation keeps image features in 0..1 */
    float *x;        /* [max_batch][row_floats] staging */
    float *probs;    /* [n_val][classes]: the last et_trainer_validate's predictions */
    float *best;     /* the best epoch's parameters */
    int32_t *labels; /* [max_batch] of the batch in x */
    int32_t *truth;  /* [n_val] */
    int64_t *ids;    /* [n_val] sample ids */
} et_trainer;

/* Shuffles the training rows (in place) with the generator state s. */
void et_trainer_shuffle(et_trainer *t, uint64_t *s);

/* Stages training rows train[start .. start + b) into x and labels,
 * augmented when the impulse says so (draws from s). */
void et_trainer_fill_batch(et_trainer *t, size_t start, size_t b, uint64_t *s);

/* For a net with batch norm, re-estimates its moving statistics for the
 * current weights from the first training rows in their current order
 * (precise batch norm, train.c); seed draws the dropout masks of those
 * forward passes, which change nothing. ET_OK at once without batch norm. */
et_status et_trainer_precise_batchnorm(et_trainer *t, uint64_t seed, et_error *err);

/* Inference over the validation rows with the net's current parameters:
 * probs, truth, ids and the metrics m (release with et_metrics_free). */
et_status et_trainer_validate(et_trainer *t, et_metrics *m, et_error *err);

/* After training (t->best holds the best epoch, t->probs its validation
 * predictions): the int8 model. Min/max calibration first; when int8 loses
 * more than opt->int8_max_drop, MSE clipping, then quantization-aware
 * fine-tuning, keeping the best int8 model (the float32 model stays the
 * best epoch). Fills out's int8 fields and q; returns the JSON record of
 * what was done (malloc'ed), or NULL with out->quant_error set when no int8
 * model could be made (training still succeeds). */
char *et_train_make_int8(et_trainer *t, const et_model *model, const et_train_options *opt,
                         et_train_result *out, et_quant_result *q);

#endif
