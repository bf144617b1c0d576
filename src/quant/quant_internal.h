/*
 * The converter's working form of a model: the graph the runtime will run
 * (batch norm folded, activations fused, dropout gone), still in float32,
 * with what calibration learns about each tensor.
 */
#ifndef ET_QUANT_INTERNAL_H
#define ET_QUANT_INTERNAL_H

#include "edgetrain/quant.h"
#include "etrt.h"

#define ET_QHIST_BINS 2048

typedef enum et_qact {
    ET_QACT_NONE = 0,
    ET_QACT_RELU,
    ET_QACT_RELU6,
} et_qact;

typedef struct et_qtensor {
    int h, w, c;
    int node;      /* the model node whose et_net output holds this tensor's values */
    int alias;     /* a reshape's output shares the memory of this tensor; -1 */
    int same_q_as; /* pooling, reshape: takes this tensor's scale and zero point; -1 */
    /* Calibration. */
    float lo, hi;
    double *ch_sum; /* [c] sums per channel, for bias correction */
    double count;   /* values summed per channel */
    uint64_t *hist; /* ET_QHIST_BINS over [lo, hi], ET_CALIBRATION_MSE only */
    /* Quantization. */
    float scale;
    int32_t zero_point;
} et_qtensor;

typedef struct et_qop {
    etrt_op_kind kind;
    int in[2], out; /* tensor indices; in[1] = -1 unless add */
    int node;       /* the model node it came from, for messages */
    int k_h, k_w, stride_h, stride_w, pad_top, pad_left, depth_multiplier;
    et_qact act;
    float *w; /* folded weights, runtime layout; NULL for ops without */
    size_t w_n;
    float *b; /* [out_c] folded bias (zeros when the layer had none) */
    int out_c;
} et_qop;

typedef struct et_qgraph {
    et_qop *ops;
    int n_ops;
    et_qtensor *t;
    int n_t;
    int input, output;
} et_qgraph;

/* Lowers model m with parameters params. ET_EINVAL names a layer the
 * runtime cannot run. */
et_status et_qgraph_lower(const et_model *m, const float *params, et_qgraph *g, et_error *err);
void et_qgraph_free(et_qgraph *g);

/* Where the converter and the host runner read samples: n rows of h x w x c
 * floats, row i at row(ctx, i). Lets tests feed arrays instead of a
 * project's feature cache. */
typedef struct et_row_source {
    const float *(*row)(const void *ctx, size_t i);
    const void *ctx;
    size_t n;
    int h, w, c;
} et_row_source;

/* A row source over rows[0..n) of a feature set; ctx is storage the source
 * points to (it must outlive the source). */
typedef struct et_feature_rows {
    const et_features *f;
    const size_t *rows;
} et_feature_rows;
et_row_source et_row_source_features(et_feature_rows *ctx, const et_features *f, const size_t *rows,
                                     size_t n);

/* Records ranges (and, for MSE, histograms) and channel means of every
 * tensor over the rows of src. */
et_status et_qgraph_calibrate(et_qgraph *g, const et_model *m, const float *params,
                              const et_row_source *src, et_calibration how, et_error *err);

/* et_plan_predict over a row source. */
et_status et_plan_predict_rows(const uint8_t *plan, size_t size, const et_row_source *src,
                               float *probs, et_error *err);

/* What et_qgraph_emit does beyond the plain plan. */
enum {
    ET_EMIT_BIAS_CORRECTION = 1, /* int8: subtract the calibrated mean rounding shift */
    ET_EMIT_UNFUSED = 2, /* keep each conv2d -> max pool as two ops (tests compare the two) */
};

/* Writes an .etrt plan of g: int8 (quantization parameters set) or float32.
 * A conv2d whose output only a max pool reads, with windows that do not
 * overlap vertically, becomes one ETRT_OP_CONV2D_MAXPOOL (its output tensor
 * is left out of the plan) unless flags has ET_EMIT_UNFUSED. */
et_status et_qgraph_emit(const et_qgraph *g, etrt_type type, unsigned flags, et_plan *out,
                         et_error *err);

#endif
