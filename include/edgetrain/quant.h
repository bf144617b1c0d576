/*
 * edgetrain quant: turns a trained float32 model into the two plans the
 * runtime (runtime/etrt.h) runs on a device, int8 and float32, and runs
 * those plans over feature rows on the host, with the very runtime code a
 * device runs.
 *
 *     et_quant_options o = et_quant_defaults();
 *     et_quant_result q;
 *     if (et_quant_convert(model, params, features, val_rows, n_val, &o, &q, &err) < 0) ...
 *     float *probs = malloc(n_test * classes * sizeof *probs);
 *     et_plan_predict(q.int8.bytes, q.int8.size, features, test_rows, n_test, probs, &err);
 *     et_quant_result_free(&q);
 *
 * Conversion (TensorFlow Lite's quantization spec, docs/FORMATS.md):
 * 1. Lowering: batch norm folds into the convolution before it
 *    (w' = w * gamma / sqrt(var + eps), b' = beta + (b - mean) * gamma /
 *    sqrt(var + eps)); ReLU and ReLU6 become the clamp of the op before them;
 *    dropout disappears; flatten becomes a reshape run in place; global
 *    average pooling an average pool over the whole input.
 * 2. Calibration: the float model (the training engine, inference mode) runs
 *    over the calibration rows (the validation split, at most
 *    max_calibration_samples of them, evenly spread); every activation
 *    tensor's range is its min/max (always containing 0), or, with
 *    ET_CALIBRATION_MSE, the clipping range that minimises the mean squared
 *    quantization error over a 2048-bin histogram.
 * 3. Weights: int8 symmetric per output channel (conv2d, depthwise, dense),
 *    scale max|w| / 127; bias int32 with scale input_scale * weight_scale.
 *    Bias correction (on by default) subtracts, per output channel, the mean
 *    shift that weight rounding causes on the calibration data.
 * 4. Requantization: every float scale ratio becomes a Q31 multiplier and a
 *    shift once (runtime/etrt_requant.h).
 * 5. Memory plan: every tensor and every kernel's scratch at an offset in one
 *    arena (src/profile/memplan.c).
 */
#ifndef EDGETRAIN_QUANT_H
#define EDGETRAIN_QUANT_H

#include "edgetrain/core.h"
#include "edgetrain/dsp.h"
#include "edgetrain/net.h"
#include "edgetrain/nn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum et_calibration {
    ET_CALIBRATION_MINMAX = 0, /* the observed min and max (TensorFlow Lite's default) */
    ET_CALIBRATION_MSE = 1,    /* the range with the least squared quantization error */
} et_calibration;

/* "minmax" or "mse"; "?" when unknown. */
const char *et_calibration_name(et_calibration c);

typedef struct et_quant_options {
    et_calibration calibration;
    bool bias_correction;
    size_t max_calibration_samples; /* 0 = all the rows given */
} et_quant_options;

/* minmax, bias correction on, at most 1000 calibration samples. */
et_quant_options et_quant_defaults(void);

/* One runtime plan: the bytes of an .etrt model (malloc'ed, 16-byte
 * aligned) and what the runtime needs to run it. */
typedef struct et_plan {
    uint8_t *bytes;
    size_t size;       /* bytes of the model (its flash: weights + parameters + op table) */
    size_t arena_size; /* bytes of RAM the runtime needs: activations + scratch */
    size_t input_bytes, output_bytes;
    int n_ops;
} et_plan;

typedef struct et_quant_result {
    et_plan int8;
    et_plan float32;
    size_t calibration_samples;
    size_t *calibration_rows; /* [calibration_samples] the rows calibrated on (indices into f) */
    et_fake_quant *ranges;    /* [n_ranges] every int8 activation's node, scale and zero point
                                 (for quantization-aware training) */
    size_t n_ranges;
    et_quant_options options;
} et_quant_result;

/* Converts model m with parameters params (et_model_totals_all(m).params
 * floats, the nn.h layout) into an int8 and a float32 plan, calibrating on
 * rows[0..n) of f (whose rows must have the model's input shape).
 * ET_EINVAL when the graph has a layer the runtime cannot run (the message
 * names it) or n is 0; ET_ENOMEM; ET_EINTR on Ctrl-C. */
et_status et_quant_convert(const et_model *m, const float *params, const et_features *f,
                           const size_t *rows, size_t n, const et_quant_options *opt,
                           et_quant_result *out, et_error *err);
void et_quant_result_free(et_quant_result *r);

/* The same plans for a model that has not been trained (the profiler and
 * the tuner use them to price a model before training it): params may be
 * NULL (all weights 0); every int8 tensor gets a placeholder scale and zero
 * point. Sizes, op list and the memory plan are exactly those of the trained
 * model's plans; the values they compute are meaningless. */
et_status et_quant_convert_uncalibrated(const et_model *m, const float *params,
                                        et_quant_result *out, et_error *err);

/* Runs an .etrt plan (int8 or float32) over feature rows rows[0..n) of f
 * with the runtime, one sample per invoke (batch 1, as on a device), OpenMP
 * threads over samples. Writes probs[n][classes]: the dequantized softmax
 * output for int8 plans. ET_EINVAL when the plan does not load (the
 * runtime's reason) or does not fit the features; ET_EINTR. */
et_status et_plan_predict(const uint8_t *plan, size_t size, const et_features *f,
                          const size_t *rows, size_t n, float *probs, et_error *err);

/* Reads an .etrt file into a 16-byte aligned buffer and checks it with the
 * runtime's loader. ET_EIO / ET_EINVAL (the file and the runtime's reason). */
et_status et_plan_load(const char *path, et_plan *out, et_error *err);
void et_plan_free(et_plan *p);

#ifdef __cplusplus
}
#endif
#endif
