/*
 * edgetrain estimate: how long training a model will take on this machine,
 * before it starts (printed by `edgetrain train`, used by the tuner to skip
 * what would not fit a time budget).
 *
 *     et_machine_rates r;
 *     et_machine_rates_get(&r, &err);          // measured once, then cached
 *     et_train_estimate e;
 *     et_estimate_training(model, &r, n_train, n_val, epochs, &e);
 *     printf("Estimated training time: %.0f s\n", e.seconds);
 *
 * The machine is measured by timing the fast training kernels (forward and
 * backward) on fixed shapes, one figure per op kind: seconds per
 * multiply-accumulate for conv2d (with a per-patch-element term for its
 * im2col), pointwise conv, depthwise conv and dense layers, seconds per
 * element for batch norm, activations, pooling and adds; and the int8
 * runtime's seconds per MAC. A model's step is then the sum over its layers.
 * The figures are cached in $XDG_CACHE_HOME/edgetrain (or ~/.cache/edgetrain)
 * under a key made of the CPU model, the thread count and the build, so a
 * new machine or a new build measures again (about a second). Each finished
 * training then corrects the figures (et_machine_rates_learn).
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
    double seconds;            /* the total */
    double train_seconds;      /* epochs x training samples, forward + backward */
    double validation_seconds; /* epochs x validation samples, forward */
    double int8_seconds;       /* calibration + the int8 model on the validation split */
    double step_seconds;       /* one training sample, forward + backward */
} et_train_estimate;

/* Estimates training model m for epochs over n_train samples, validating on
 * n_val after each epoch, then converting to int8 (calibration on at most
 * 1,000 validation samples, the int8 model run over all of them; the
 * fallbacks, which run only when int8 loses accuracy, are not counted). */
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
