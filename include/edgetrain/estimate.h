/*
 * edgetrain estimate: how long training a model will take on this machine,
 * before it starts (printed by `edgetrain train`, used by the tuner to skip
 * what would not fit a time budget).
 *
 *     et_model_timing t;
 *     et_model_timing_get(model, 32, &t, &err);   // the model's own step, timed
 *     et_estimate_input in = {.n_train = n, .n_val = v, .epochs = 20, .batch = 32,
 *                             .int8 = true, .timing = &t};
 *     et_train_estimate e;
 *     et_estimate(model, NULL, &in, &e);
 *     printf("Estimated training time: %.0f s\n", e.seconds);
 *
 * Two ways to price a step:
 * - et_model_timing (what `train` uses): the model itself is built in the
 *   training engine at the training batch size and a few real steps are
 *   timed (forward, backward, Adam), then inference passes at the
 *   validation batch, steps with int8 fake quantization (the fallbacks'
 *   fine-tuning) and the model's untrained int8 plan on the runtime: 0.2 s
 *   for the default conv net and 1-2 s for MobileNetV2 a0.35 96x96 on the
 *   2-core development machine. Cached per model and batch size; each
 *   finished training replaces it by what it measured.
 *   The tuner prices its candidates this way too (docs/ARCHITECTURE.md).
 * - et_machine_rates (the tuner's fallback, when it cannot time a model
 *   alone): the fast training kernels timed on fixed shapes, one figure per
 *   op kind: seconds
 *   per multiply-accumulate for conv2d (with a per-patch-element term for
 *   its im2col), pointwise conv, depthwise conv and dense layers, seconds per
 *   element for batch norm, activations, pooling and adds; and the int8
 *   runtime's seconds per MAC. A model's step is then the sum over its
 *   layers. Measured on the development machine this misses the real step by
 *   0.6-2x (shapes unlike the model's, fusions the engine makes), 5x5 convs
 *   (other kernels than the 3x3 ones timed) by 3-8x, and the int8
 *   plan's time by up to 30x (MobileNetV2's depthwise and pointwise ops).
 * Both are cached in $XDG_CACHE_HOME/edgetrain (or ~/.cache/edgetrain) under
 * a key made of the CPU model, the thread count and the build (and the model
 * and batch for timings), so a new machine or build measures again. Each
 * finished training corrects them (et_machine_rates_learn,
 * et_model_timing_learn).
 */
#ifndef EDGETRAIN_ESTIMATE_H
#define EDGETRAIN_ESTIMATE_H

#include "edgetrain/core.h"
#include "edgetrain/nn.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Seconds per unit of work on this machine with all its threads; "train"
 * figures are forward + backward, "infer" forward only. */
typedef struct et_machine_rates {
    char key[17]; /* 16 hex digits: CPU, threads, build */
    int threads;
    double conv_mac_train, conv_mac_infer;     /* per MAC, k > 1 */
    double conv_patch_train, conv_patch_infer; /* per im2col element (pixels x k*k*in_c) */
    double pw_mac_train, pw_mac_infer;         /* 1x1 conv, per MAC */
    double dw_mac_train, dw_mac_infer;         /* depthwise, per MAC */
    double dense_mac_train, dense_mac_infer;   /* per MAC */
    double bn_elt_train, bn_elt_infer;         /* per output element */
    double act_elt_train, act_elt_infer;       /* ReLU, ReLU6, add, dropout: per element */
    double pool_elt_train, pool_elt_infer;     /* pooling: per input element */
    double int8_mac;                           /* the runtime's int8 kernels, one thread, per MAC */
    double correction; /* learnt from finished trainings: measured / estimated
                          (1 after a fresh measurement) */
    double seconds;    /* what measuring took */
    bool cached;       /* read from the cache */
} et_machine_rates;

/* The rates of this machine: from the cache when its key matches, else
 * measured now and written to the cache (a cache that cannot be written is
 * not an error). ET_ENOMEM. */
et_status et_machine_rates_get(et_machine_rates *out, et_error *err);

/* Measures now, ignoring and not touching the cache. */
et_status et_machine_rates_measure(et_machine_rates *out, et_error *err);

/* Learns from a finished training: moves r->correction half way towards
 * measured / estimated (seconds of the same work, the estimate made with r)
 * and writes the cache, so that the next estimate on this machine is closer.
 * Measuring kernels alone misses what a whole step costs (memory traffic
 * between layers, other load on the machine); this closes the gap. */
void et_machine_rates_learn(et_machine_rates *r, double measured, double estimated);

typedef struct et_train_estimate {
    double seconds;               /* the total */
    double train_seconds;         /* epochs x training steps: forward, backward, optimizer;
                                     with batch norm, the statistics pass after each epoch */
    double validation_seconds;    /* (epochs + 1) x validation samples, forward */
    double int8_seconds;          /* calibration + the int8 model on the validation split (and
                                     quantization-aware fine-tuning when it is asked for) */
    double step_seconds;          /* one training sample, forward + backward (+ its share of a
                                     step's fixed costs) */
    double int8_fallback_seconds; /* not in seconds: what the int8 fallbacks add when they run
                                     (int8 lost too much accuracy): MSE calibration, then, if
                                     int8 still loses too much, int8_qat_seconds; 0 without
                                     int8 */
    double int8_qat_seconds;      /* quantization-aware fine-tuning and its conversion: in
                                     int8_seconds when it is asked for (qat), else in
                                     int8_fallback_seconds */
} et_train_estimate;

/* One model's costs on this machine at one batch size, timed on the model
 * itself in the training engine and the int8 runtime. Seconds. */
typedef struct et_model_timing {
    int batch;          /* the training batch timed */
    int infer_batch;    /* the validation batch: max(batch, 64), as et_train runs it */
    int threads;        /* OpenMP threads when it was timed */
    double step;        /* one training step of `batch` samples: forward, backward, Adam */
    double infer;       /* one inference pass of infer_batch samples */
    double qat_step;    /* a training step with int8 fake quantization on */
    double qat_infer;   /* an inference pass of infer_batch samples with it on */
    double int8_sample; /* the int8 plan on the runtime, per sample, samples spread over the
                           threads (as et_plan_predict runs them) */
    double convert;     /* lowering the model and emitting its int8 and float32 plans,
                           without the calibration passes */
    double seconds;     /* what measuring took */
    bool cached;        /* read from the cache */
} et_model_timing;

/* The timing of model m at training batch size batch (1..65536): from the
 * cache (this machine's file) when it holds one for the model's shapes and
 * this batch, else measured now and written there (a cache that cannot be
 * written is not an error). ET_EINVAL for a bad batch; ET_ENOMEM; an error
 * of the engine or the converter for a model they cannot run. */
et_status et_model_timing_get(const et_model *m, int batch, et_model_timing *out, et_error *err);

/* The timing of model m at batch from the cache only: false when there is
 * none (nothing is measured). */
bool et_model_timing_cached(const et_model *m, int batch, et_model_timing *out);

/* Measures now, ignoring and not touching the cache. On one OpenMP thread
 * the steps are timed in the thread's CPU time, so that other processes on
 * the cores do not stretch them; on more, on the wall clock. */
et_status et_model_timing_measure(const et_model *m, int batch, et_model_timing *out,
                                  et_error *err);

/* Learns from a finished training of m: scales t's training and validation
 * figures by measured / estimated (seconds of the same epochs, estimated
 * with t; runs under 0.5 s teach nothing) and writes t to the cache, so that
 * the next training of this model prices what this one measured. */
void et_model_timing_learn(const et_model *m, et_model_timing *t, double measured,
                           double estimated);

/* What a training run is. */
typedef struct et_estimate_input {
    size_t n_train, n_val; /* samples after the validation split */
    int epochs;
    int batch;                     /* training batch size; 0 = 32 */
    bool int8;                     /* the int8 model is made after training */
    bool qat;                      /* quantization-aware fine-tuning always runs (--qat) */
    int qat_epochs;                /* epochs of it; 0 = 3 */
    const et_model_timing *timing; /* the model's own timing at this batch (preferred), or
                                      NULL: priced from the per-op-kind rates */
} et_estimate_input;

/* Estimates training model m as described by in: epochs over n_train
 * samples in steps of batch (a model with batch norm then re-estimates its
 * statistics over up to ET_PRECISE_BN_SAMPLES of them), validating on n_val
 * after each epoch and once more at the end, then (int8) converting to
 * int8: calibration on at most 1,000 validation samples, the int8 model run
 * over all of them. The
 * fallbacks run only when int8 loses accuracy: they are in
 * int8_fallback_seconds, not in seconds. With a timing, r may be NULL; with
 * none, r must be given and its correction is applied. */
void et_estimate(const et_model *m, const et_machine_rates *r, const et_estimate_input *in,
                 et_train_estimate *out);

/* et_estimate from the per-op-kind rates at batch 32, no forced
 * fine-tuning. */
void et_estimate_training(const et_model *m, const et_machine_rates *r, size_t n_train,
                          size_t n_val, int epochs, bool int8, et_train_estimate *out);

/* "3m 20s", "45s", "1h 02m": a duration for people. Writes at most n bytes. */
void et_format_duration(double seconds, char *buf, size_t n);

/* Minutes and seconds, hours when needed: "38m 30s", "20m 0s", "0m 45s",
 * "1h 2m 5s" (the compute-limit message's format). Writes at most n bytes. */
void et_format_duration_ms(double seconds, char *buf, size_t n);

/* Parses "90", "90s", "20m", "1h", "1h30m", "2.5h" into seconds (> 0).
 * ET_EINVAL names the text. */
et_status et_parse_duration(const char *text, double *seconds, et_error *err);

#ifdef __cplusplus
}
#endif
#endif
