/*
 * edgetrain tune: searches impulses (input size, colour, architecture,
 * training settings) for the one that is most accurate within a device's
 * budgets, the way a hosted studio's "EON tuner" does, on this machine.
 *
 *     et_tune_space *space = NULL;
 *     et_tune_space_default(p, &space, &err);           // or et_tune_space_load(path, ...)
 *     et_tune_options o = et_tune_defaults();
 *     o.target = et_targets_find(catalog, "cortex-m4f-80mhz");
 *     o.max_ram_bytes = 128 * 1024;
 *     o.max_latency_ms = 100;
 *     o.max_trials = 27;
 *     o.space = space;
 *     et_tune_summary s;
 *     if (et_tune_run(p, &o, print_event, NULL, &s, &err) == 0)
 *         printf("best: trial %lld\n", (long long)s.best_trial);
 *     et_tune_space_destroy(space);
 *
 * A run goes like this (docs/ARCHITECTURE.md, "Tuner"):
 * 1. Candidates are drawn from the search space (seeded: the same seed gives
 *    the same sequence) in brackets of eta^(rungs-1) candidates.
 * 2. Each candidate is priced before training: its untrained int8 and
 *    float32 plans (et_quant_convert_uncalibrated) are profiled on the target
 *    (edgetrain/profile.h). Over a budget: "skipped" with the reason; an
 *    impossible impulse: "failed" with the error. Neither is trained.
 * 3. Successive halving: every candidate of a bracket trains briefly (rung 0),
 *    the best 1/eta by the objective train longer (rung 1), and so on up to
 *    the candidate's full epochs; the others are "pruned". A promoted trial
 *    goes on from the weights its rung before left (a checkpoint under
 *    cache/tune/) and trains only the epochs beyond them, with et_train (no
 *    model version stored, int8 conversion without fallbacks).
 * 4. Every state change is written to the project database at once, so a run
 *    that is interrupted (Ctrl-C, kill) continues with et_tune_run(resume).
 *
 * Trials run in worker processes (worker_exe) or in this process. Statuses:
 * pending (waits to train at its rung), running, waiting (trained at its rung,
 * waits for the rest of its rung), done (trained at the last rung), pruned
 * (stopped early by the scheduler or the time budget), failed (the error is
 * recorded), skipped (over a budget before training).
 */
#ifndef EDGETRAIN_TUNE_H
#define EDGETRAIN_TUNE_H

#include "edgetrain/core.h"
#include "edgetrain/impulse.h"
#include "edgetrain/profile.h"
#include "edgetrain/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * Parsing budgets.
 */

/* Parses a size in bytes: "131072", "128k", "128K", "128KB", "128KiB" (all
 * 1024 bytes per k), "1.5M"/"1.5MiB" (1024 * 1024), "1G". Must be > 0.
 * ET_EINVAL names the text and the accepted forms. */
et_status et_parse_size(const char *text, int64_t *bytes, et_error *err);

/* Parses a latency into milliseconds: "100ms", "0.5s", "250us", "100" (ms).
 * Must be > 0. ET_EINVAL names the text. */
et_status et_parse_latency(const char *text, double *ms, et_error *err);

/* ------------------------------------------------------------------------
 * The search space (docs/FORMATS.md, "Search space JSON"): lists of
 * alternatives per block, for example
 *
 *     {"input":      {"size": [32, 48, 64], "resize": ["squash"]},
 *      "processing": {"color": ["grayscale", "rgb"]},
 *      "learning":   [{"model": "conv", "conv_layers": [[16], [16, 32]], "kernel": [3],
 *                      "dense_layers": [[], [32]], "dropout": [0.25]},
 *                     {"model": "mobilenetv2", "alpha": [0.1, 0.35], "head_neurons": [16]}],
 *      "training":   {"learning_rate": [0.001, 0.0005], "epochs": [20],
 *                     "augment": [false, true]}}
 *
 * A key left out keeps the project impulse's value.
 */
typedef struct et_tune_space et_tune_space;

/* Parses a space (text of n bytes; name, e.g. the file name, is used in
 * messages). Errors (ET_EINVAL) name the key path ("learning[1].alpha[0]"),
 * the value and what is allowed; JSON syntax errors name NAME:LINE:COLUMN. */
et_status et_tune_space_parse(const char *text, size_t n, const char *name, et_tune_space **out,
                              et_error *err);
/* Reads and parses a space file (at most 1 MiB). */
et_status et_tune_space_load(const char *path, et_tune_space **out, et_error *err);
/* The built-in space for image classification, fitted to the project's
 * data: input sizes up to 1.25x the images' size (32..160, plus the
 * images' own size when smaller), grayscale (and rgb when some sample has
 * colour), conv nets of 1 to 4 layers, MobileNetV1/V2 at small alphas
 * (when an input of at least 32 px is offered), learning rates, augmentation. */
et_status et_tune_space_default(et_project *p, et_tune_space **out, et_error *err);
/* Alternatives around one impulse: its input size x0.75/x1/x1.25, its colour
 * (and grayscale), its architecture with half / the same / double filters
 * (conv: also one layer fewer and one more; MobileNet: the neighbouring
 * alphas), head neurons, dropout and learning rate x0.5/x1/x2. */
et_status et_tune_space_around(const et_impulse *imp, et_tune_space **out, et_error *err);
void et_tune_space_destroy(et_tune_space *s);

/* The space in canonical JSON (every key a list), malloc'ed; NULL when out
 * of memory. Parsing it gives the same space. */
char *et_tune_space_to_json(const et_tune_space *s);
/* Number of distinct candidates the space describes. */
double et_tune_space_size(const et_tune_space *s);

/* Drops rgb from the colour alternatives when grayscale is offered too
 * (for data that is all single-channel, rgb adds cost and no information).
 * Returns true when something was dropped. */
bool et_tune_space_drop_rgb(et_tune_space *s);

/* Draws one candidate: base with the drawn alternatives applied, learning.seed
 * set to seed. *rng is the generator state (splitmix64), advanced. The result
 * is not validated: a combination may be impossible (et_impulse_validate). */
void et_tune_space_sample(const et_tune_space *s, const et_impulse *base, int64_t seed,
                          uint64_t *rng, et_impulse *out);

/* ------------------------------------------------------------------------
 * Trials.
 */
typedef enum et_trial_status {
    ET_TRIAL_PENDING = 0,
    ET_TRIAL_RUNNING = 1,
    ET_TRIAL_WAITING = 2,
    ET_TRIAL_DONE = 3,
    ET_TRIAL_FAILED = 4,
    ET_TRIAL_PRUNED = 5,
    ET_TRIAL_SKIPPED = 6,
} et_trial_status;
#define ET_TRIAL_STATUS_COUNT 7

/* "pending", "running", "waiting", "done", "failed", "pruned", "skipped". */
const char *et_trial_status_name(et_trial_status s);

typedef enum et_tune_objective {
    ET_TUNE_INT8_ACCURACY = 0,    /* validation accuracy of the int8 model (the runtime's) */
    ET_TUNE_FLOAT32_ACCURACY = 1, /* validation accuracy of the float32 model */
} et_tune_objective;

/* "int8-accuracy", "float32-accuracy"; and back (ET_EINVAL names the allowed values). */
const char *et_tune_objective_name(et_tune_objective o);
et_status et_tune_objective_parse(const char *s, et_tune_objective *out, et_error *err);
/* How successive halving draws a new bracket's candidates. */
typedef enum et_tune_sampler {
    ET_TUNE_SAMPLER_RANDOM = 0, /* all at random (the default) */
    ET_TUNE_SAMPLER_MODEL = 1,  /* once enough candidates were promoted or pruned at rung 2 or
                                   later, two in three are the best scored of several random
                                   draws by a model of those judgements (tree-structured Parzen
                                   estimator over the space's alternatives, as BOHB); the rest
                                   at random */
} et_tune_sampler;

/* "model", "random"; and back (ET_EINVAL names the allowed values). */
const char *et_tune_sampler_name(et_tune_sampler s);
et_status et_tune_sampler_parse(const char *s, et_tune_sampler *out, et_error *err);

/* The precision an objective is about (its budgets apply to that plan). */
et_precision et_tune_objective_precision(et_tune_objective o);

/* One trial: a candidate impulse and what is known about it. Arrays indexed
 * by et_precision (int8 first). */
typedef struct et_tune_trial {
    int64_t id, run_id;
    int bracket; /* 0-based, in the run */
    int draw;    /* order drawn in the run (0-based) */
    int rung;    /* the rung it trains (pending/running) or last trained at */
    int rungs;   /* rungs of its bracket (the last is rungs - 1) */
    et_trial_status status;
    char impulse_json[4096]; /* canonical impulse JSON (learning.epochs = the full epochs) */
    et_impulse impulse;      /* the impulse the trial stands for (epochs = full_epochs) */
    int64_t seed;            /* learning.seed */
    int full_epochs;         /* the epochs of its run: what its last rung ends at, and what
                                its learning-rate schedule spans */
    int drawn_epochs;        /* the epochs the space drew; more than full_epochs when its
                                bracket was fitted to the time budget */
    int rung_epochs;         /* epochs its current rung trains */
    int epochs;              /* epochs of the recorded results (0: not trained) */
    int from_epoch;          /* its last rung went on from the weights after this many
                                epochs (warm start from the rung before); 0: from scratch */
    double average;          /* the validation accuracy (float32) of the moving average of
                                the weights that its current rung measured (a rung before
                                the last: what a promotion judges it on); -1: none */
    int attempts;            /* times a rung of it was started */
    bool trained;            /* validation figures below are set */
    bool has_int8;
    double val_accuracy[ET_PRECISION_COUNT], val_loss[ET_PRECISION_COUNT];
    bool profiled; /* costs below are set */
    double latency_ms[ET_PRECISION_COUNT];
    int64_t ram_bytes[ET_PRECISION_COUNT], rom_bytes[ET_PRECISION_COUNT];
    int64_t params, macs;     /* of the int8 plan (after batch-norm folding) */
    double estimated_seconds; /* the estimate of its current rung */
    double train_seconds;     /* all its rungs together */
    char error[1024];         /* failed: the error; skipped and pruned: the reason */
    char history[2048];       /* JSON: [{"rung", "epochs", "from_epoch", "float32", "int8",
                                 "seconds", "at", "average"}], one per rung trained */
    bool pareto;              /* on the Pareto front of its run (et_tune_trials_list) */
    char created_at[32], finished_at[32];
} et_tune_trial;

/* The figure the objective ranks by (the validation accuracy of its
 * precision), or -1 when the trial has none. */
double et_tune_trial_objective(const et_tune_trial *t, et_tune_objective o);

/* The Pareto front over n points: front[i] is true when no other point is at
 * least as good in all three of accuracy (higher), latency and ram (lower)
 * and better in one. Points with valid[i] false (NULL: all valid) are never
 * on the front and dominate nothing. */
void et_pareto_front(const double *accuracy, const double *latency, const double *ram,
                     const bool *valid, size_t n, bool *front);

/* ------------------------------------------------------------------------
 * Runs.
 */
typedef struct et_tune_run_info {
    int64_t id;
    char status[16]; /* "running", "interrupted", "done", "failed" */
    char target[ET_TARGET_NAME_MAX], engine[ET_ENGINE_NAME_MAX];
    et_tune_objective objective;
    double max_latency_ms;                /* 0 = no budget */
    int64_t max_ram_bytes, max_rom_bytes; /* 0 = no budget */
    int max_trials;                       /* 0 = no limit */
    double time_budget_s;                 /* 0 = no limit */
    int64_t seed;
    int jobs;
    int eta, rungs, bracket_size; /* scheduler */
    et_tune_sampler sampler; /* random for random search and for runs begun before it existed */
    bool hyperband;          /* brackets cycle through their sizes (et_tune_options) */
    double seconds;          /* wall time spent, all sessions */
    char stop_reason[256];
    char created_at[32];
    int counts[ET_TRIAL_STATUS_COUNT]; /* trials per status */
    int64_t base_impulse_version;
    char *space_json; /* malloc'ed; et_tune_run_info_free */
} et_tune_run_info;

void et_tune_run_info_free(et_tune_run_info *r);

/* A run by id, or with id 0 the newest. ET_ENOTFOUND when there is none
 * (the message says to run 'edgetrain tune'). */
et_status et_tune_run_get(et_project *p, int64_t id, et_tune_run_info *out, et_error *err);

/* The trials of a run (id 0: the newest run), in id order, with pareto set
 * (over the trials with results, at the run objective's precision: accuracy,
 * latency, RAM). *out is malloc'ed (free it). */
et_status et_tune_trials_list(et_project *p, int64_t run_id, et_tune_trial **out, size_t *n,
                              et_error *err);

/* One trial by id (any run); pareto is computed over its run.
 * ET_ENOTFOUND when there is none. */
et_status et_tune_trial_get(et_project *p, int64_t id, et_tune_trial *out, et_error *err);

/* Stores trial id's impulse as the project's new impulse version, note
 * "tune select ID" (the previous version stays in the history). ET_EINVAL
 * when the trial has no results (skipped, failed, never trained). trial,
 * when not NULL, receives the trial as read (its pareto flag not computed). */
et_status et_tune_select(et_project *p, int64_t id, int64_t *version, et_tune_trial *trial,
                         et_error *err);

/* ------------------------------------------------------------------------
 * Running the tuner.
 */
typedef struct et_tune_options {
    const et_target *target;          /* borrowed; required for a new run */
    const et_target_catalog *catalog; /* resume: the run's target is looked up here
                                 (NULL: target must be the run's target) */
    const char *engine;               /* NULL: the target's default engine */
    double max_latency_ms;            /* 0 = no budget */
    int64_t max_ram_bytes;            /* 0 = no budget */
    int64_t max_rom_bytes;            /* 0 = no budget */
    int max_trials;                   /* candidates trained (skipped and failed ones do not
                                         count); 0 = no limit */
    double time_budget_s;             /* wall time for the run (all sessions); 0 = no limit.
                                         One of max_trials and time_budget_s is needed */
    const et_tune_space *space;       /* borrowed; NULL = et_tune_space_default */
    et_tune_objective objective;
    int jobs;     /* trials at once; 0 = et_tune_default_jobs() */
    int64_t seed; /* sampling and learning.seed; -1 = the impulse's seed */
    bool resume;  /* continue run resume_run (0: the newest unfinished) with
                     its stored settings; jobs, and max_trials and
                     time_budget_s when nonzero, replace the stored ones */
    int64_t resume_run;
    const char *worker_exe;  /* trials run as worker processes:
                                WORKER_EXE -q -C ROOT tune --worker TRIAL --threads N
                                --deadline UNIX_SECONDS (the CLI's hidden mode that calls
                                et_tune_worker);
                                NULL: in this process, one at a time */
    int eta;                 /* keep 1/eta per rung; 0 = 3 */
    int rungs;               /* rungs per bracket, 1..5; 0 = 3. 1 is plain random search:
                                every candidate trains its full epochs, none is pruned */
    et_tune_sampler sampler; /* successive halving's draws (default: random); random search
                                (rungs 1) always draws at random */
    bool hyperband;          /* Hyperband (--strategy hyperband): bracket b admits
                                eta^s candidates, s = (rungs-1) - b mod rungs, over s+1 rungs
                                (the first rung at full epochs / eta^s), so later brackets
                                judge fewer candidates later in their runs, down to one
                                trained in full; false: every bracket admits eta^(rungs-1) */
    int min_steps;           /* rung 0 trains at least this many batches (when the
                                candidate's epochs allow); 0 = 200 */
    double endgame_share;    /* successive halving with a time budget: the share of the
                                budget, at its end, in which no bracket is drawn and the
                                best trial trains on (scheduler.c, extend_best); 0 = 1/3.
                                Not stored with the run: a resumed run uses the default
                                unless given again */
    double first_share;      /* successive halving with a time budget: the share of the
                                drawing time (before the endgame) that the first bracket's
                                runs are fitted to, so that one run ends early (scheduler.c,
                                draw_bracket); 0 = 1/3. Not stored with the run */
} et_tune_options;

/* Objective int8 accuracy, seed -1, eta 3, 3 rungs, everything else 0. */
et_tune_options et_tune_defaults(void);

/* The jobs that pay off here (docs/ARCHITECTURE.md, "Tuner"): one per core
 * (OpenMP's thread count), at most 64; each worker gets the cores the others
 * leave. */
int et_tune_default_jobs(void);

typedef enum et_tune_event_kind {
    ET_TUNE_EVENT_NOTE = 0,     /* message: something the user should know */
    ET_TUNE_EVENT_DRAWN = 1,    /* a candidate was drawn (pending, skipped or failed) */
    ET_TUNE_EVENT_STARTED = 2,  /* a rung of a trial started */
    ET_TUNE_EVENT_FINISHED = 3, /* a rung finished (waiting, done or failed) */
    ET_TUNE_EVENT_PROMOTED = 4, /* promoted to the next rung */
    ET_TUNE_EVENT_PRUNED = 5,   /* stopped by the scheduler or the time budget */
} et_tune_event_kind;

typedef struct et_tune_event {
    et_tune_event_kind kind;
    const et_tune_trial *trial; /* NULL for notes */
    const char *message;        /* notes; the reason for pruning */
    int admitted, max_trials;   /* candidates admitted to training so far, the limit (0) */
    double elapsed_s, budget_s; /* run time so far, the budget (0) */
    int running;                /* trials training now */
} et_tune_event;

typedef void (*et_tune_event_fn)(void *ctx, const et_tune_event *e);

typedef struct et_tune_summary {
    int64_t run_id;
    bool resumed;
    int counts[ET_TRIAL_STATUS_COUNT];
    int64_t best_trial; /* highest objective among trials with results; 0 = none */
    double best_objective;
    double seconds;        /* this session */
    char stop_reason[256]; /* why the run ended ("3 trials trained", "time budget") */
} et_tune_summary;

/* Runs (or resumes) the tuner. The run and every trial are in the project
 * database as they change. ET_EINVAL for bad options or a space that does
 * not fit the project; ET_EINTR when interrupted (the run can be resumed);
 * a failing trial is recorded and does not stop the run. */
et_status et_tune_run(et_project *p, const et_tune_options *opt, et_tune_event_fn on_event,
                      void *ctx, et_tune_summary *out, et_error *err);

/* Runs one rung of trial id in this process with threads OpenMP threads
 * (0: leave as is): trains it, writes its results or its error to the
 * database. Only for a trial marked running; returns ET_EINTR (and marks it
 * pending again) when interrupted. deadline: the run's time budget ends
 * then (Unix seconds; 0 = none): the rung stops there once it has an epoch
 * (et_train_options.deadline) and records what it has. */
et_status et_tune_worker(et_project *p, int64_t trial_id, int threads, double deadline,
                         et_error *err);

/* ------------------------------------------------------------------------
 * Plot: accuracy (the objective's) against latency on the target, marker
 * area by RAM, the Pareto front drawn, the latency budget as a line and the
 * RAM budget as a reference marker. SVG (hover a marker for the trial), or
 * PNG (width_px x height_px). Written atomically.
 */
et_status et_tune_plot_svg(const char *path, const et_tune_run_info *run,
                           const et_tune_trial *trials, size_t n, et_error *err);
et_status et_tune_plot_png(const char *path, const et_tune_run_info *run,
                           const et_tune_trial *trials, size_t n, int width_px, int height_px,
                           et_error *err);

#ifdef __cplusplus
}
#endif
#endif
