/*
 * edgetrain train: training a model version for the project's impulse, the
 * stored model versions, and evaluating them.
 *
 *     et_train_options opt = et_train_defaults();
 *     et_train_result res;
 *     if (et_train(p, &opt, print_epoch, NULL, &res, &err) == 0)
 *         printf("model %lld: validation accuracy %.1f%%\n", (long long)res.model_id,
 *                100 * res.validation.accuracy);
 *     et_train_result_free(&res);
 *
 * A model version is a folder models/<id>/ (model.json, weights.npy, and the
 * runtime plans model_float32.etrt and model_int8.etrt) and a row in the
 * models table with its impulse, labels and metrics, float32 and int8.
 */
#ifndef EDGETRAIN_TRAIN_H
#define EDGETRAIN_TRAIN_H

#include "edgetrain/core.h"
#include "edgetrain/dsp.h"
#include "edgetrain/impulse.h"
#include "edgetrain/metrics.h"
#include "edgetrain/net.h"
#include "edgetrain/nn.h"
#include "edgetrain/quant.h"
#include "edgetrain/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * Stored model versions.
 */
typedef struct et_model_info {
    int64_t id;
    int64_t impulse_version;
    char precision[8]; /* "float32": the trained weights (every version also has an
                          int8 plan when has_int8) */
    char status[16];   /* "ready", "interrupted" (stopped early, best epoch kept), "stale" */
    int epochs_run, best_epoch;
    double seconds;
    double val_accuracy, val_loss;
    bool tested;
    double test_accuracy;
    bool has_int8; /* an int8 plan was made (quantization ran) */
    double val_accuracy_int8;
    bool tested_int8;
    double test_accuracy_int8;
    char created_at[32];
} et_model_info;

typedef struct et_model_save_args {
    const et_impulse *imp;
    int64_t impulse_version;
    const et_model *model;
    const float *params; /* et_model_totals_all(model).params floats */
    const char *const *labels;
    size_t n_labels;
    int epochs_run, best_epoch;
    double seconds;
    bool interrupted;
    const char *validation_json; /* et_metrics_to_json, or NULL */
    const char *history_json;    /* per-epoch figures, or NULL */
    const et_plan *plan_float32; /* runtime plans, or NULL when not converted */
    const et_plan *plan_int8;
    const char *validation_int8_json; /* et_metrics_to_json of the int8 plan, or NULL */
    const char *quantization_json;    /* how the int8 plan was made, or NULL */
    const int64_t *calibration_ids;   /* sample ids calibrated on, or NULL */
    size_t n_calibration;
} et_model_save_args;

/* Writes models/<id>/ and the models row (files first, then the row). */
et_status et_model_store_save(et_project *p, const et_model_save_args *args, int64_t *id,
                              et_error *err);

/* A stored model, loaded. Release with et_loaded_model_free. */
typedef struct et_loaded_model {
    et_model_info info;
    et_impulse impulse;
    et_model *model;
    float *params;
    size_t n_params;
    char **labels;
    size_t n_labels;
    et_plan int8; /* models/<id>/model_int8.etrt; bytes NULL when the version has none */
} et_loaded_model;

/* Loads model id, or with id 0 the newest float32 model that is not stale.
 * ET_ENOTFOUND (says to run 'edgetrain train') when there is none. */
et_status et_model_store_load(et_project *p, int64_t id, et_loaded_model *out, et_error *err);
void et_loaded_model_free(et_loaded_model *m);

typedef int (*et_model_info_fn)(void *ctx, const et_model_info *m);
/* Visits the stored models, newest first. */
et_status et_model_store_list(et_project *p, et_model_info_fn fn, void *ctx, et_error *err);
/* Records test metrics (JSON) with a model: float32, int8; NULL leaves one as it was. */
et_status et_model_store_set_test(et_project *p, int64_t id, const char *test_json,
                                  const char *test_int8_json, et_error *err);

/* ------------------------------------------------------------------------
 * Training.
 */
typedef struct et_train_options {
    int epochs;                  /* 0 = the impulse's learning.epochs */
    int batch_size;              /* 0 = the impulse's */
    double learning_rate;        /* 0 = the impulse's */
    int early_stopping;          /* stop after this many epochs without a lower validation
                                    loss; 0 = never */
    et_optimizer_kind optimizer; /* Adam (Keras defaults) or SGD with momentum 0.9 */
    int schedule;                /* the learning-rate schedule: -1 (et_train_defaults) = the
                                    impulse's learning.schedule, else an et_lr_schedule */
    double label_smoothing;      /* 0..0.5 */
    bool skip_int8;              /* no int8 conversion */
    et_quant_options quant;      /* calibration settings (et_quant_defaults) */
    bool quant_auto;             /* when min/max loses more than int8_max_drop: try MSE
                                    clipping, then quantization-aware fine-tuning; keep
                                    the best */
    double int8_max_drop;        /* accuracy (0..1) int8 may lose before the fallbacks
                                    run; 0.01 */
    bool qat;                    /* always run quantization-aware fine-tuning */
    double max_seconds;          /* the compute time limit: refuse (ET_EREFUSED) when the
                                    estimate is longer; while training, stop at the end of an
                                    epoch when the next one would end past it (the best epoch
                                    is kept; result.time_limit_reached). 0 = no limit */
    bool estimate_only;          /* stop after the estimate (nothing is trained or stored) */
    const et_impulse *impulse;   /* train this impulse (borrowed; impulse_version 0) instead of
                                    the project's current one; NULL = current */
    bool no_save;                /* measure only: no model version is stored (model_id 0) */
    int qat_epochs;              /* epochs of it; 0 = 3 */
    const char *init_from;       /* warm start: a checkpoint written by an earlier et_train of
                                    the same impulse (epochs aside), seed and data
                                    (checkpoint_out). Training goes on after its epochs with
                                    its last weights, its best epoch so far, its step count
                                    (dropout masks, batch order, the schedule), the
                                    optimizer's state and the early-stopping count; only the
                                    epochs beyond its own are trained (none when it has as
                                    many). With the same schedule_epochs this is the run that
                                    would have gone on without stopping, bit for bit.
                                    ET_EINVAL names the file when it does not match; NULL =
                                    from scratch */
    int schedule_epochs;         /* the epochs the learning-rate schedule spans; 0 = the epochs
                                    trained. More makes this run the first part of a longer
                                    one: the tuner's rungs of a trial all pass its full epochs,
                                    so each goes on decaying the rate where the one before left
                                    it. Fewer than the epochs trained is ET_EINVAL */
    const char *checkpoint_out;  /* write such a checkpoint here when the epochs end (not after
                                    Ctrl-C, nor when a deadline cut an epoch short); NULL =
                                    none */
    double deadline;             /* wall-clock time (Unix seconds, CLOCK_REALTIME) after which
                                    training stops once an epoch has ended: after the current
                                    batch (that epoch's batches are dropped) or the current
                                    epoch; the best epoch is kept and converted, as with early
                                    stopping (result.deadline_reached). 0 = none */
    bool weight_average;         /* also keep a moving average of the weights over this run's
                                    steps and measure it on the validation split at the end
                                    (result.average_accuracy): what the run's weights are
                                    heading to once the learning rate has decayed. The
                                    tuner judges a rung before the last by it. Nothing else
                                    changes: the model, checkpoint and figures are the
                                    run's own */
} et_train_options;

/* Adam, the impulse's learning-rate schedule, no early stopping, no smoothing; int8 with
 * min/max calibration, bias correction, MSE then QAT fallbacks above a
 * 1-point drop. */
et_train_options et_train_defaults(void);

typedef struct et_epoch_stats {
    int epoch, epochs;     /* 1-based */
    double loss, accuracy; /* on the training batches of this epoch */
    double val_loss, val_accuracy;
    double samples_per_s; /* training throughput of this epoch */
    double seconds;       /* this epoch, validation included */
    bool best;            /* lowest validation loss so far */
} et_epoch_stats;

typedef void (*et_epoch_fn)(void *ctx, const et_epoch_stats *s);

typedef struct et_train_result {
    int64_t model_id;
    int64_t impulse_version;
    int epochs_run, best_epoch;
    int start_epoch;         /* epochs taken over from init_from (0: from scratch); epochs
                                start_epoch + 1 .. epochs_run were trained now */
    bool interrupted;        /* Ctrl-C: stopped, the best epoch so far was kept */
    bool deadline_reached;   /* opt.deadline stopped it before its epochs */
    bool time_limit_reached; /* opt.max_seconds stopped it before its epochs */
    double seconds;
    double estimated_seconds;      /* the estimate printed before training (edgetrain/estimate.h) */
    double estimated_after_epoch1; /* the estimate refined with the first epoch's time; 0 */
    double samples_per_s;          /* mean training throughput over the epochs run */
    size_t n_train, n_validation;
    et_metrics validation; /* float32, best epoch, on the validation split */
    bool has_int8;
    et_metrics validation_int8; /* the int8 plan run by the runtime, same split */
    bool has_average;           /* opt.weight_average was measured */
    double average_accuracy;    /* float32 validation accuracy of the weights' moving average
                                   (batch-norm statistics re-estimated for it) */
    double agreement;           /* share of validation samples where both predict alike */
    char quant_path[16];        /* the int8 model kept: "minmax", "mse" (post-training
                                   calibration) or "qat" (fine-tuned with fake quantization) */
    bool quant_fallback;        /* the int8 drop was over int8_max_drop (fallback tried) */
    size_t calibration_samples;
    et_plan plan_float32, plan_int8; /* sizes only: bytes is NULL */
    char quant_error[1024];          /* why there is no int8 model (conversion failed), or "" */
    char **labels;                   /* class names, in class order */
    size_t n_labels;
} et_train_result;

/* Trains the project's current impulse (stored as a version first when it is
 * the default), reading the feature cache (brought up to date first). The
 * validation split is drawn from the training category, per label, seeded by
 * learning.seed. Keeps the epoch with the lowest validation loss and stores it
 * as a new model version. Same impulse, data and seed: the same model, with
 * any number of threads. */
et_status et_train(et_project *p, const et_train_options *opt, et_epoch_fn on_epoch, void *ctx,
                   et_train_result *out, et_error *err);
void et_train_result_free(et_train_result *r);

/* What et_evaluate measured. */
typedef struct et_eval_result {
    bool has_float32, has_int8;
    et_metrics float32; /* the training engine (inference mode) */
    et_metrics int8;    /* the int8 plan, run by the runtime (runtime/) */
    double agreement;   /* share of samples where both predict the same class */
    size_t unknown;     /* samples whose label the model does not know (left out) */
} et_eval_result;

/* Evaluates a loaded model on one category of the project's samples (their
 * features made with the model's impulse), float32 and/or int8 (when the
 * version has an int8 plan; ET_ENOTFOUND when int8 is asked for alone and
 * there is none). Release out with et_eval_result_free. */
et_status et_evaluate(et_project *p, const et_loaded_model *m, et_category category, bool float32,
                      bool int8, et_eval_result *out, et_error *err);
void et_eval_result_free(et_eval_result *r);

/* The node whose activations are the model's embedding: the input of the
 * classifier (the last dense layer), looking through dropout. */
int et_model_embedding_node(const et_model *m);

/* An et_embed_fn (edgetrain/explore.h) for a loaded model (ctx): the
 * penultimate-layer activations of the given feature rows. f must be a
 * feature set made with the model's impulse. */
et_status et_model_embed(void *ctx, const et_features *f, const size_t *rows, size_t n, float **out,
                         size_t *dims, et_error *err);

#ifdef __cplusplus
}
#endif
#endif
