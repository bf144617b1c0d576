/* What the tuner's files share: the search space's layout and the trial
 * table's row access. Internal. */
#ifndef ET_TUNE_INTERNAL_H
#define ET_TUNE_INTERNAL_H

#include "edgetrain/tune.h"

#include "store/store_internal.h"

#define SPACE_MAX_ALTS 32     /* alternatives per key */
#define SPACE_MAX_LEARNING 16 /* learning alternatives */

/* One conv-layer alternative: filters per layer; kernels too when explicit
 * (given as "16:3,32:5" or objects), else drawn from the "kernel" key. */
typedef struct space_layers {
    int n;
    et_conv_layer layer[ET_MAX_CONV_LAYERS];
    bool kernels;
} space_layers;

typedef struct space_dense {
    int n;
    int units[ET_MAX_DENSE_LAYERS];
} space_dense;

/* Training keys: in "training" (for every learning alternative) or in one
 * alternative (overriding). A count of 0 means "not given". */
typedef struct space_training {
    int n_lr, n_epochs, n_batch, n_augment, n_dropout;
    double lr[SPACE_MAX_ALTS];
    int epochs[SPACE_MAX_ALTS];
    int batch[SPACE_MAX_ALTS];
    bool augment[SPACE_MAX_ALTS];
    double dropout[SPACE_MAX_ALTS];
} space_training;

typedef struct space_learning {
    et_model_kind model;
    int weight; /* relative chance of being drawn, >= 1 */
    int n_layers, n_kernel, n_dense, n_bn, n_alpha, n_head;
    space_layers layers[SPACE_MAX_ALTS];
    bool bn[SPACE_MAX_ALTS]; /* conv: learning.batch_norm */
    int kernel[SPACE_MAX_ALTS];
    space_dense dense[SPACE_MAX_ALTS];
    double alpha[SPACE_MAX_ALTS];
    int head[SPACE_MAX_ALTS];
    space_training t;
} space_learning;

struct et_tune_space {
    int n_size, n_resize, n_color, n_learning;
    int width[SPACE_MAX_ALTS], height[SPACE_MAX_ALTS];
    et_resize_mode resize[SPACE_MAX_ALTS];
    et_color color[SPACE_MAX_ALTS];
    space_learning learning[SPACE_MAX_LEARNING];
    space_training t;
};

/* Draws a candidate as et_tune_space_sample does; augment 0 or 1 then sets
 * learning.augment to that value when the drawn alternative offers it
 * (-1: drawn like the rest). The generator advances the same either way. */
void tune_space_sample_with(const et_tune_space *s, const et_impulse *base, int64_t seed,
                            uint64_t *rng, int augment, et_impulse *out);
/* Whether some learning alternative offers augmentation both off and on. */
bool tune_space_offers_both_augments(const et_tune_space *s);

/* Trial rows (trials.c). */
et_status tune_trial_read(et_project *p, int64_t id, et_tune_trial *out, et_error *err);
/* Every trial of a run, id order (no pareto). *out malloc'ed. */
et_status tune_trials_read(et_project *p, int64_t run_id, et_tune_trial **out, size_t *n,
                           et_error *err);
/* Sets pareto over trials[0..n) for objective o. */
void tune_mark_pareto(et_tune_trial *trials, size_t n, et_tune_objective o);
/* Runs a statement with "?" parameters bound from a printf-like spec:
 * 'i' int64, 'd' double, 's' text (NULL = NULL), 'n' NULL. Returns the
 * number of changed rows in *changes when not NULL. */
et_status tune_exec(et_project *p, et_error *err, int *changes, const char *sql, const char *types,
                    ...);

/* Warm starts (worker.c). The checkpoint of trial's state after epochs
 * epochs: cache/tune/run<R>/trial<ID>-e<EPOCHS>.ckpt (with trial 0: the run's
 * folder). */
void tune_checkpoint_path(et_project *p, int64_t run, int64_t trial, int epochs, char *out,
                          size_t n);
/* The epochs a trial's next rung takes over: its trained epochs when their
 * checkpoint is there, else 0 (it trains from scratch). */
int tune_warm_epochs(et_project *p, const et_tune_trial *tr);

/* How a trial that the scheduler's endgame sent on is known: its error
 * (note) starts with this (the worker appends to it, never replaces it). */
#define TUNE_ENDGAME_MARK "endgame:"

/* The endgame's epochs: how many more epochs (at most `most`) fit in
 * seconds, when one epoch is estimated at one_epoch seconds and two at
 * two_epochs (the difference is what each further epoch costs); 0 when not
 * even one fits. */
int tune_endgame_epochs(double seconds, double one_epoch, double two_epochs, int most);
/* The factor that scales an estimate of a model of one kind (conv,
 * MobileNetV1, V2) to the time it will take: what that kind's finished rungs
 * took against their raw estimates (measured_kind / estimated_kind), or, until
 * one of its rungs is done, what all kinds' took; 1 with nothing measured.
 * Kept within 0.05..20. The per-op rates err differently per architecture
 * (MobileNets' depthwise layers, adds and int8 evaluation cost more than they
 * price), so one factor for all would misprice one kind by the other's. */
double tune_time_ratio(double measured_kind, double estimated_kind, double measured_all,
                       double estimated_all);
/* Model-based sampling (sampler.c): what the run's judgements (promoted or
 * pruned at a rung) say about each alternative. */
typedef struct tune_model tune_model;
/* The model of the highest rung, min_level or later, at which at least
 * min_judged of trials were judged, both ways; NULL when no such rung has
 * that many (or out of memory): the draws are then at random. */
tune_model *tune_model_fit(const et_tune_trial *trials, size_t n, int min_judged, int min_level);
/* How much more an impulse like imp was promoted than pruned: the sum over
 * its alternatives of log(l / g), higher is better. */
double tune_model_score(const tune_model *m, const et_impulse *imp);
/* The rung the model learnt from, and its promoted and pruned counts. */
void tune_model_describe(const tune_model *m, int *level, int *good, int *bad);
void tune_model_free(tune_model *m);

/* Removes a trial's checkpoints (trial 0: every trial's, and the folder). */
void tune_checkpoints_remove(et_project *p, int64_t run, int64_t trial);

#endif
