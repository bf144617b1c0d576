/* The tuner's scheduler: a run's settings, drawing and pricing candidates,
 * successive halving over brackets, worker processes, and resuming.
 *
 * Everything the scheduler knows is in the database (tuner_runs,
 * tuner_trials), written as it changes, so the loop below can start from any
 * state: a new run, or one that was interrupted or killed. Each pass of the
 * loop promotes the rungs that are complete, starts pending trials while a
 * job slot is free, draws a new bracket when nothing is pending, and waits
 * for a worker.
 *
 * Workers are separate processes (fork + exec of worker_exe) rather than
 * plain forks: GNU libgomp is not fork-safe, and a child forked after the
 * parent ran an OpenMP region (features, the machine's rates) hangs in its
 * first parallel region with more than one thread. A process also keeps a
 * trial that runs out of memory or crashes from taking the run with it. */
#include "tune/tune_internal.h"

#include "core/rng.h"
#include "edgetrain/estimate.h"
#include "edgetrain/train.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define MAX_JOBS 64
#define MAX_ATTEMPTS 3 /* a trial whose process died this often is failed */
#define EARLY_END_S 30 /* a run ending this much before its budget says so */
/* Model-based sampling (sampler.c): a model needs this many candidates judged
 * at one rung, the second or later (a bracket of 9 with eta 3 judges 3 at its
 * second rung); it scores this many random draws per candidate and keeps the
 * best, for this share of a bracket's candidates (the rest are drawn at
 * random, as BOHB's third). */
#define MODEL_MIN_JUDGED 8
#define MODEL_MIN_LEVEL 1
#define MODEL_CANDIDATES 24
#define MODEL_SHARE (2.0 / 3.0)

typedef struct slot {
    pid_t pid;
    int64_t trial;
    int threads;
    /* What its rung was priced at when it started (before the ratio), for
     * how many epochs, and whether on the model's own timing (learn()). */
    double raw;
    int epochs;
    bool timed;
} slot;

#define MODEL_KINDS (ET_MODEL_MOBILENETV2 + 1) /* et_model_kind's values */

typedef struct tuner {
    et_project *p;
    const et_tune_options *opt;
    et_tune_event_fn on_event;
    void *ctx;
    et_tune_summary *out;
    /* The run's settings. */
    int64_t run_id;
    et_tune_space *space;
    et_impulse base;
    const et_target *target;
    char engine[ET_ENGINE_NAME_MAX];
    et_tune_objective objective;
    double max_latency_ms;
    int64_t max_ram, max_rom;
    int max_trials;
    double budget_s;
    int64_t seed;
    int jobs, eta, rungs, min_steps;
    et_tune_sampler sampler;
    bool hyperband;
    double endgame_share; /* of budget_s: the endgame (extend_best) */
    double first_share;   /* of the drawing time: the first bracket's runs */
    int threads;          /* a job's share of the cores: what estimates assume */
    int cores;
    double seconds_before, t0;
    /* The data. */
    int classes, raw_channels;
    size_t n_train, n_val;
    et_machine_rates rates;
    /* Feature sets already brought up to date in this session. */
    char (*keys)[65];
    size_t n_keys;
    /* Workers. */
    slot slots[MAX_JOBS];
    int running;
    bool exhausted; /* the space gave no new candidate */
    /* What finished rungs took against their estimates, this session: the
     * estimates are scaled by the ratio, which covers what the machine's
     * rates miss (other load, jobs sharing memory bandwidth). */
    double est_sum, measured_sum;
    double est_kind[MODEL_KINDS], measured_kind[MODEL_KINDS]; /* the same, per et_model_kind */
    double est_timed, measured_timed; /* the rungs priced on their model's own timing */
    bool time_limited;                /* something was cut short, skipped or dropped for time */
    bool endgame_done; /* the endgame found no run to finish: the run ends when its trials do */
    bool filling;      /* the endgame had nothing to finish and nothing running: new candidates
                          are drawn, one per job, each trained in full in the time left */
    char stop[256];
} tuner;

static double elapsed(const tuner *t)
{
    return t->seconds_before + (et_now_s() - t->t0);
}

static double remaining(const tuner *t)
{
    return t->budget_s > 0 ? t->budget_s - elapsed(t) : INFINITY;
}

/* The time new brackets may use: with successive halving under a time
 * budget, the last endgame_share (a third) is kept for the endgame
 * (extend_best). */
static double drawing_time(const tuner *t)
{
    return t->rungs > 1 && t->budget_s > 0 && !t->filling
               ? remaining(t) - t->budget_s * t->endgame_share
               : remaining(t);
}

static void note(tuner *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(tuner *t, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (t->on_event) {
        et_tune_event e = {.kind = ET_TUNE_EVENT_NOTE, .message = msg};
        t->on_event(t->ctx, &e);
    }
}

static int admitted(tuner *t)
{
    sqlite3_stmt *st = NULL;
    int n = 0;
    if (sqlite3_prepare_v2(t->p->db,
                           "SELECT count(*) FROM tuner_trials WHERE run_id = ? AND status != "
                           "'skipped' AND NOT (status = 'failed' AND attempts = 0)",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, t->run_id);
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    return n;
}

/* Whether --trials candidates were admitted: nothing more is drawn. */
static bool trials_reached(tuner *t)
{
    return t->max_trials > 0 && admitted(t) >= t->max_trials;
}

static void emit(tuner *t, et_tune_event_kind kind, int64_t id, const char *message)
{
    if (!t->on_event)
        return;
    et_tune_trial *tr = malloc(sizeof *tr);
    et_error ignore = {0};
    if (!tr || tune_trial_read(t->p, id, tr, &ignore) < 0) {
        free(tr);
        return;
    }
    et_tune_event e = {.kind = kind,
                       .trial = tr,
                       .message = message,
                       .admitted = admitted(t),
                       .max_trials = t->max_trials,
                       .elapsed_s = elapsed(t),
                       .budget_s = t->budget_s,
                       .running = t->running};
    t->on_event(t->ctx, &e);
    free(tr);
}

static void save_seconds(tuner *t)
{
    et_error ignore = {0};
    tune_exec(t->p, &ignore, NULL, "UPDATE tuner_runs SET seconds = ? WHERE id = ?", "di",
              elapsed(t), t->run_id);
}

static void fmt_bytes(int64_t n, char *out, size_t size)
{
    if (n >= (int64_t)1 << 20)
        snprintf(out, size, "%.1f MiB", (double)n / (1 << 20));
    else if (n >= 1024)
        snprintf(out, size, "%.1f KiB", (double)n / 1024);
    else
        snprintf(out, size, "%lld B", (long long)n);
}

/* ------------------------------------------------------------------------
 * The data and the estimates.
 */
static et_status read_data(tuner *t, et_error *err)
{
    sqlite3_stmt *st = NULL;
    double share = t->base.validation_split;
    if (sqlite3_prepare_v2(
            t->p->db, "SELECT count(*) FROM samples WHERE category = 'training' GROUP BY label", -1,
            &st, NULL) != SQLITE_OK)
        return et_db_error(t->p, err, "counting samples");
    /* As train.c splits: per label, round(count x share) (at least 1 of 2 or more). */
    while (sqlite3_step(st) == SQLITE_ROW) {
        size_t g = (size_t)sqlite3_column_int64(st, 0);
        size_t v = (size_t)llround((double)g * share);
        if (v == 0 && g >= 2)
            v = 1;
        t->n_val += v;
        t->n_train += g - v;
    }
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(t->p->db, "SELECT count(DISTINCT label) FROM samples", -1, &st, NULL) !=
        SQLITE_OK)
        return et_db_error(t->p, err, "counting labels");
    if (sqlite3_step(st) == SQLITE_ROW)
        t->classes = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(t->p->db,
                           "SELECT channels FROM samples GROUP BY channels ORDER BY count(*) DESC "
                           "LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return et_db_error(t->p, err, "reading channels");
    t->raw_channels = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 3;
    sqlite3_finalize(st);
    if (t->classes < 2)
        return et_error_set(err, ET_EINVAL,
                            "the project has %d label%s; a classifier needs at least two "
                            "(edgetrain import ... --label OTHER)",
                            t->classes, t->classes == 1 ? "" : "s");
    if (t->n_train == 0 || t->n_val == 0)
        return et_error_set(err, ET_EINVAL,
                            "%zu training and %zu validation samples: import more training "
                            "samples",
                            t->n_train, t->n_val);
    /* The rates for a job's share of the threads. */
    int saved = omp_get_max_threads();
    omp_set_num_threads(t->threads);
    et_status rc = et_machine_rates_get(&t->rates, err);
    omp_set_num_threads(saved);
    /* The cached correction is learnt from every finished training, short ones
     * too, whose fixed costs the rates do not model: tests and tuner rungs on
     * tiny data have pushed it past 100 on the development machine. The tuner
     * learns its own ratio from its rungs (estimate()), so it starts near 1. */
    if (t->rates.correction > 3)
        t->rates.correction = 3;
    if (t->rates.correction < 1.0 / 3)
        t->rates.correction = 1.0 / 3;
    return rc;
}

static int channels_of(const tuner *t, const et_impulse *imp)
{
    int c = et_impulse_channels(imp);
    return c ? c : t->raw_channels;
}

/* Seconds of `epochs` epochs of imp on a job's threads, before any ratio.
 * Priced on the model's own timing (real steps of this model,
 * et_model_timing) when this machine has it: a worker that trained the model
 * left it in the cache, and otherwise the tuner times it now, when that
 * measures the model alone: on one thread (timed in CPU time, so the
 * workers' load does not count) or when nothing trains. Else on the
 * machine's per-op rates, which miss some models by 3x: a 5x5 conv takes
 * other kernels than the 3x3 ones the rates were timed on (runs 13 and 18 of
 * docs/BENCHMARKS.md put a first epoch of conv 16/32 5x5 at 204 s and 72 s;
 * it took 24 s). *timed says which. */
static double estimate_raw(const tuner *t, const et_impulse *imp, int epochs, bool *timed)
{
    *timed = false;
    et_model *m = NULL;
    et_error ignore = {0};
    if (et_model_create_from_impulse(imp, t->classes, channels_of(t, imp), &m, &ignore) < 0)
        return 0;
    int batch = imp->batch_size > 0 ? imp->batch_size : 32;
    et_model_timing timing;
    int saved = omp_get_max_threads();
    omp_set_num_threads(t->threads);
    bool alone = t->threads == 1 || t->running == 0;
    *timed = alone ? et_model_timing_get(m, batch, &timing, &ignore) == ET_OK
                   : et_model_timing_cached(m, batch, &timing);
    omp_set_num_threads(saved);
    et_estimate_input in = {.n_train = t->n_train,
                            .n_val = t->n_val,
                            .epochs = epochs,
                            .batch = batch,
                            .int8 = true,
                            .timing = *timed ? &timing : NULL};
    et_train_estimate e;
    et_estimate(m, &t->rates, &in, &e);
    et_model_destroy(m);
    return e.seconds;
}

double tune_time_ratio(double measured_kind, double estimated_kind, double measured_all,
                       double estimated_all)
{
    double ratio = estimated_kind > 0  ? measured_kind / estimated_kind
                   : estimated_all > 0 ? measured_all / estimated_all
                                       : 1;
    return ratio < 0.05 ? 0.05 : ratio > 20 ? 20 : ratio;
}

static int kind_index(const et_impulse *imp)
{
    int k = (int)imp->model;
    return k >= 0 && k < MODEL_KINDS ? k : 0;
}

/* What finished rungs took against their estimates: the model's own
 * timing misses only what running beside other jobs costs, one ratio for
 * all; the rates miss per kind of model. */
static double ratio_of(const tuner *t, const et_impulse *imp, bool timed)
{
    if (timed)
        return tune_time_ratio(t->measured_timed, t->est_timed, 0, 0);
    int k = kind_index(imp);
    return tune_time_ratio(t->measured_kind[k], t->est_kind[k], t->measured_sum, t->est_sum);
}

/* estimate(), keeping in s what it was priced at before the ratio (learn()). */
static double estimate_slot(const tuner *t, const et_impulse *imp, int epochs, slot *s)
{
    s->epochs = epochs;
    s->raw = estimate_raw(t, imp, epochs, &s->timed);
    return s->raw * ratio_of(t, imp, s->timed);
}

static double estimate(const tuner *t, const et_impulse *imp, int epochs)
{
    slot s;
    return estimate_slot(t, imp, epochs, &s);
}

/* A rung finished: what it took goes into the ratio. s: what it was priced
 * at when it started (its slot). */
static void learn(tuner *t, int64_t id, const slot *s)
{
    et_tune_trial *tr = malloc(sizeof *tr);
    et_error ignore = {0};
    if (tr && s->epochs > 0 && tune_trial_read(t->p, id, tr, &ignore) == ET_OK && tr->trained) {
        json_t *h = json_loads(tr->history, 0, NULL);
        json_t *last = json_array_get(h, json_array_size(h) ? json_array_size(h) - 1 : 0);
        double seconds = json_number_value(json_object_get(last, "seconds"));
        /* A warm-started rung trained only the epochs after from_epoch; one
         * that a deadline cut short, fewer than it was priced for. */
        int epochs = (int)json_integer_value(json_object_get(last, "epochs")) -
                     (int)json_integer_value(json_object_get(last, "from_epoch"));
        double raw = epochs > 0 ? s->raw * epochs / s->epochs : 0;
        if (seconds > 0 && raw > 0 && s->timed) {
            t->est_timed += raw;
            t->measured_timed += seconds;
        } else if (seconds > 0 && raw > 0) {
            t->est_sum += raw;
            t->measured_sum += seconds;
            t->est_kind[kind_index(&tr->impulse)] += raw;
            t->measured_kind[kind_index(&tr->impulse)] += seconds;
        }
        json_decref(h);
    }
    free(tr);
}

/* Epochs of rung k (of rungs) for a candidate whose last rung trains full
 * epochs: full / eta^(rungs-1-k), at least min_steps batches at rung 0,
 * never fewer than the rung before, full at the last rung. */
static int rung_epochs(const tuner *t, int full, int batch, int k, int rungs)
{
    int prev = 0;
    size_t steps = (t->n_train + (size_t)batch - 1) / (size_t)batch;
    for (int r = 0; r <= k; r++) {
        double div = pow(t->eta, rungs - 1 - r);
        int e = (int)lround(full / div);
        if (r == 0 && steps > 0 && (size_t)e * steps < (size_t)t->min_steps)
            e = (int)((t->min_steps + steps - 1) / steps);
        e = e < 1 ? 1 : e > full ? full : e;
        prev = e > prev ? e : prev;
    }
    return k == rungs - 1 ? full : prev;
}

/* What rung k of a candidate costs: the epochs beyond rung k-1's (a promoted
 * trial goes on from its weights), nothing when there are none. */
static double rung_cost(const tuner *t, const et_impulse *imp, int full, int k, int rungs)
{
    int e = rung_epochs(t, full, imp->batch_size, k, rungs);
    int before = k > 0 ? rung_epochs(t, full, imp->batch_size, k - 1, rungs) : 0;
    return e > before ? estimate(t, imp, e - before) : 0;
}

/* Rungs of a bracket that admitted n candidates: 1 + floor(log_eta n), at most the run's. */
static int bracket_rungs(const tuner *t, int n)
{
    int r = 1;
    for (int m = n; m >= t->eta && r < t->rungs; m /= t->eta)
        r++;
    return r;
}

static et_status ensure_features(tuner *t, const et_impulse *imp, et_error *err)
{
    char key[65];
    et_impulse_features_key(imp, key);
    for (size_t i = 0; i < t->n_keys; i++)
        if (!strcmp(t->keys[i], key))
            return ET_OK;
    et_features_stats fs;
    et_status rc = et_features_update(t->p, imp, 0, &fs, err);
    if (rc < 0)
        return rc;
    if (fs.computed > 0)
        note(t, "features %dx%d %s: %lld computed, %lld reused (%.1fs)", imp->width, imp->height,
             imp->processing == ET_PROCESSING_RAW ? "raw"
             : imp->color == ET_COLOR_RGB         ? "rgb"
                                                  : "grayscale",
             (long long)fs.computed, (long long)fs.reused, fs.seconds);
    char(*grown)[65] = realloc(t->keys, (t->n_keys + 1) * sizeof *grown);
    if (!grown)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    t->keys = grown;
    memcpy(t->keys[t->n_keys++], key, 65);
    return ET_OK;
}

/* ------------------------------------------------------------------------
 * Drawing a bracket.
 */
typedef struct drawn {
    et_impulse imp;
    int full; /* epochs of its last rung: the impulse's, or fewer to fit the time left */
    char *json;
    et_trial_status status;
    char error[1024];
    bool profiled;
    double latency[ET_PRECISION_COUNT];
    int64_t ram[ET_PRECISION_COUNT], rom[ET_PRECISION_COUNT];
    int64_t params, macs;
    double estimate;
} drawn;

/* Prices one candidate; sets status (pending, skipped or failed) and the reason. */
static void price(tuner *t, drawn *d)
{
    et_error e = {0};
    if (et_impulse_validate(&d->imp, &e) < 0) {
        d->status = ET_TRIAL_FAILED;
        snprintf(d->error, sizeof d->error, "%s", e.msg);
        return;
    }
    et_profile_report rep;
    if (et_profile_impulse(&d->imp, t->classes, channels_of(t, &d->imp), t->target, t->engine, &rep,
                           &e) < 0) {
        d->status = ET_TRIAL_FAILED;
        snprintf(d->error, sizeof d->error, "%s", e.msg);
        return;
    }
    d->profiled = true;
    for (int pr = 0; pr < ET_PRECISION_COUNT; pr++) {
        d->latency[pr] = rep.cost[pr].latency_ms;
        d->ram[pr] = (int64_t)rep.cost[pr].ram_bytes;
        d->rom[pr] = (int64_t)rep.cost[pr].flash_bytes;
    }
    d->params = rep.plan[ET_PRECISION_INT8].params;
    d->macs = rep.plan[ET_PRECISION_INT8].macs;
    et_profile_report_free(&rep);
    et_precision pr = et_tune_objective_precision(t->objective);
    const char *pn = et_precision_name(pr);
    size_t used = 0;
    char a[32], b[32], c[32];
    if (t->max_latency_ms > 0 && d->latency[pr] > t->max_latency_ms)
        used += (size_t)snprintf(d->error + used, sizeof d->error - used,
                                 "%s%s latency %.1f ms is over the %.4g ms budget by %.1f ms",
                                 used ? "; " : "", pn, d->latency[pr], t->max_latency_ms,
                                 d->latency[pr] - t->max_latency_ms);
    if (t->max_ram > 0 && d->ram[pr] > t->max_ram) {
        fmt_bytes(d->ram[pr], a, sizeof a);
        fmt_bytes(t->max_ram, b, sizeof b);
        fmt_bytes(d->ram[pr] - t->max_ram, c, sizeof c);
        used += (size_t)snprintf(d->error + used, sizeof d->error - used,
                                 "%s%s RAM %s is over the %s budget by %s", used ? "; " : "", pn, a,
                                 b, c);
    }
    if (t->max_rom > 0 && d->rom[pr] > t->max_rom) {
        fmt_bytes(d->rom[pr], a, sizeof a);
        fmt_bytes(t->max_rom, b, sizeof b);
        fmt_bytes(d->rom[pr] - t->max_rom, c, sizeof c);
        used += (size_t)snprintf(d->error + used, sizeof d->error - used,
                                 "%s%s flash %s is over the %s budget by %s", used ? "; " : "", pn,
                                 a, b, c);
    }
    d->status = used ? ET_TRIAL_SKIPPED : ET_TRIAL_PENDING;
}

static et_status insert_trial(tuner *t, int bracket, int draw, const drawn *d, int rungs,
                              int rung_ep, int64_t *id, et_error *err)
{
    sqlite3_stmt *st = NULL;
    const char *sql =
        "INSERT INTO tuner_trials(run_id, bracket, draw, rung, status, impulse, seed, "
        "full_epochs, rung_epochs, f32_latency_ms, f32_ram_bytes, f32_rom_bytes, "
        "int8_latency_ms, int8_ram_bytes, int8_rom_bytes, params, macs, estimated_seconds, error, "
        "finished_at, rungs) VALUES (?,?,?,0,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,"
        "CASE WHEN ?4 = 'pending' THEN '' ELSE strftime('%Y-%m-%dT%H:%M:%SZ','now') END, ?19)";
    if (sqlite3_prepare_v2(t->p->db, sql, -1, &st, NULL) != SQLITE_OK)
        return et_db_error(t->p, err, "recording a trial");
    sqlite3_bind_int64(st, 1, t->run_id);
    sqlite3_bind_int(st, 2, bracket);
    sqlite3_bind_int(st, 3, draw);
    sqlite3_bind_text(st, 4, et_trial_status_name(d->status), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, d->json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, d->imp.seed);
    sqlite3_bind_int(st, 7, d->full);
    sqlite3_bind_int(st, 8, rung_ep);
    if (d->profiled) {
        sqlite3_bind_double(st, 9, d->latency[ET_PRECISION_FLOAT32]);
        sqlite3_bind_int64(st, 10, d->ram[ET_PRECISION_FLOAT32]);
        sqlite3_bind_int64(st, 11, d->rom[ET_PRECISION_FLOAT32]);
        sqlite3_bind_double(st, 12, d->latency[ET_PRECISION_INT8]);
        sqlite3_bind_int64(st, 13, d->ram[ET_PRECISION_INT8]);
        sqlite3_bind_int64(st, 14, d->rom[ET_PRECISION_INT8]);
        sqlite3_bind_int64(st, 15, d->params);
        sqlite3_bind_int64(st, 16, d->macs);
    }
    sqlite3_bind_double(st, 17, d->estimate);
    sqlite3_bind_text(st, 18, d->error, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 19, rungs);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return et_db_error(t->p, err, "recording a trial");
    *id = sqlite3_last_insert_rowid(t->p->db);
    return ET_OK;
}

static void drawn_free(drawn *list, int n)
{
    for (int i = 0; i < n; i++)
        free(list[i].json);
    free(list);
}

/* Whether json is among the run's impulses (seen) or this bracket's draws so far. */
static bool drawn_before(char **seen, size_t n_seen, const drawn *list, int n, const char *json)
{
    for (size_t i = 0; i < n_seen; i++)
        if (!strcmp(seen[i], json))
            return true;
    for (int i = 0; i < n; i++)
        if (!strcmp(list[i].json, json))
            return true;
    return false;
}

/* Draws the next bracket: candidates until as many as the bracket takes are
 * admitted (or the draws run out), all recorded in one transaction. */
static et_status draw_bracket(tuner *t, int *n_admitted, et_error *err)
{
    *n_admitted = 0;
    int n_left = t->max_trials > 0 ? t->max_trials - admitted(t) : INT32_MAX;
    if (n_left <= 0)
        return ET_OK;
    /* What the run already holds: its impulses (no candidate twice), the last bracket and draw. */
    sqlite3_stmt *st = NULL;
    char **seen = NULL;
    size_t n_seen = 0, cap_seen = 0;
    int bracket = 0, draw = 0;
    if (sqlite3_prepare_v2(t->p->db,
                           "SELECT impulse, bracket, draw FROM tuner_trials WHERE run_id = ?", -1,
                           &st, NULL) != SQLITE_OK)
        return et_db_error(t->p, err, "reading the trials");
    sqlite3_bind_int64(st, 1, t->run_id);
    et_status rc = ET_OK;
    while (rc == ET_OK && sqlite3_step(st) == SQLITE_ROW) {
        if (n_seen == cap_seen) {
            cap_seen = cap_seen ? 2 * cap_seen : 64;
            char **grown = realloc(seen, cap_seen * sizeof *seen);
            if (!grown) {
                rc = et_error_set(err, ET_ENOMEM, "out of memory");
                break;
            }
            seen = grown;
        }
        /* In this version's canonical form: a run resumed by a newer edgetrain
         * (whose impulses have more keys) still knows what it tried. */
        const char *text = (const char *)sqlite3_column_text(st, 0);
        et_impulse stored;
        et_error ignored = {0};
        seen[n_seen] =
            text && et_impulse_from_json(text, strlen(text), "trial", &stored, &ignored) == ET_OK
                ? et_impulse_to_json(&stored, false)
                : strdup(text ? text : "");
        if (!seen[n_seen])
            rc = et_error_set(err, ET_ENOMEM, "out of memory");
        else
            n_seen++;
        if (sqlite3_column_int(st, 1) + 1 > bracket)
            bracket = sqlite3_column_int(st, 1) + 1;
        if (sqlite3_column_int(st, 2) + 1 > draw)
            draw = sqlite3_column_int(st, 2) + 1;
    }
    sqlite3_finalize(st);
    /* Successive halving: eta^(rungs-1) candidates a bracket. Hyperband
     * cycles s from rungs-1 down to 0: eta^s candidates, whose rungs
     * (bracket_rungs) are then s+1, the first at full epochs / eta^s. */
    int s_max = t->rungs - 1;
    int s = t->hyperband ? s_max - bracket % (s_max + 1) : s_max;
    int n_want = 1;
    for (int k = 0; k < s; k++)
        n_want *= t->eta;
    if (t->filling)
        n_want = t->jobs; /* one per job, one rung each (below) */
    n_want = n_want < n_left ? n_want : n_left;
    /* One generator per bracket: the same seed draws the same sequence. */
    uint64_t rng = (uint64_t)t->seed * 0x9E3779B97F4A7C15ull ^
                   (0xD1B54A32D192ED03ull * (uint64_t)(bracket + 1));
    /* What the run's judgements so far say (model-based sampling); none in
     * its first bracket, or with the random sampler. */
    tune_model *model = NULL;
    if (rc == ET_OK && t->sampler == ET_TUNE_SAMPLER_MODEL) {
        et_tune_trial *all = NULL;
        size_t n_all = 0;
        et_error ignored = {0};
        if (tune_trials_read(t->p, t->run_id, &all, &n_all, &ignored) >= 0)
            model = tune_model_fit(all, n_all, MODEL_MIN_JUDGED, MODEL_MIN_LEVEL);
        free(all);
    }
    /* A rung ranks candidates by what they reach after a few epochs, and
     * augmentation lowers that for reasons that do not hold at the end (the
     * training images are harder; the nets it helps go further). Ranked
     * together, augmented candidates lose the early rungs to ones that learn
     * the clean images faster, and seldom reach the epochs where they win.
     * So when the space offers both, a bracket draws its candidates all with
     * or all without it, in turn (the first without: the quicker start), and
     * each is judged among its like; the brackets' finalists, trained long,
     * are compared by the run. The endgame's candidates train in full
     * without a rung to lose, and are drawn as the space has them. */
    int augment = -1;
    if (!t->filling && t->rungs > 1 && tune_space_offers_both_augments(t->space))
        augment = bracket % 2;
    int max_tries = 20 * n_want + 100, tries = 0, dups = 0, over = 0, timed = 0, scored_n = 0;
    /* Room for a second round of tries (below). */
    drawn *list = calloc(2 * (size_t)max_tries, sizeof *list);
    int n = 0, stratum = augment, stratum_admitted = 0;
    if (!list && rc == ET_OK)
        rc = et_error_set(err, ET_ENOMEM, "out of memory");
    while (rc == ET_OK && *n_admitted < n_want) {
        if (tries >= max_tries) {
            /* The bracket's augmentation setting has nothing new left: the
             * rest are drawn from the whole space rather than ending the run
             * while the other setting still has candidates. */
            if (augment < 0 || dups == 0)
                break;
            stratum_admitted = *n_admitted;
            augment = -1;
            tries = dups = 0;
        }
        tries++;
        drawn *d = &list[n];
        /* One random draw, or the best scored of MODEL_CANDIDATES; draws
         * already in the run do not count. */
        bool scored = model && et_rng_unit(&rng) < MODEL_SHARE;
        double best = -INFINITY;
        for (int c = 0; c < (scored ? MODEL_CANDIDATES : 1); c++) {
            et_impulse imp;
            tune_space_sample_with(t->space, &t->base, t->seed, &rng, augment, &imp);
            char *json = et_impulse_to_json(&imp, false);
            if (!json) {
                rc = et_error_set(err, ET_ENOMEM, "out of memory");
                break;
            }
            double score = scored ? tune_model_score(model, &imp) : 0;
            if (drawn_before(seen, n_seen, list, n, json) || (d->json && score <= best)) {
                free(json);
                continue;
            }
            free(d->json);
            d->json = json;
            d->imp = imp;
            best = score;
        }
        if (rc == ET_OK && !d->json) {
            dups++;
            continue;
        }
        if (rc < 0) {
            free(d->json);
            d->json = NULL;
            break;
        }
        price(t, d);
        d->full = d->imp.epochs;
        if (d->status == ET_TRIAL_PENDING && estimate(t, &d->imp, 1) > drawing_time(t)) {
            /* Not even one epoch ends in the time left: not tried, and not recorded
             * (a resumed run with more time may draw it). */
            free(d->json);
            d->json = NULL;
            t->time_limited = true;
            if (++timed >= 20 && *n_admitted == 0)
                break;
            continue;
        }
        *n_admitted += d->status == ET_TRIAL_PENDING;
        scored_n += scored && d->status == ET_TRIAL_PENDING;
        over += d->status != ET_TRIAL_PENDING;
        n++;
    }
    if (model && scored_n > 0) {
        int level, good, bad;
        tune_model_describe(model, &level, &good, &bad);
        note(t,
             "bracket %d: %d of %d candidates are the best of %d draws by what rung %d's "
             "judgements favour (%d promoted, %d pruned); the rest are drawn at random",
             bracket, scored_n, *n_admitted, MODEL_CANDIDATES, level + 1, good, bad);
    }
    if (stratum >= 0 && augment >= 0 && *n_admitted > 0)
        note(t,
             "bracket %d: its candidates train %s augmentation (brackets alternate: a short "
             "rung ranks augmented candidates below ones that learn the clean images faster)",
             bracket, stratum ? "with" : "without");
    else if (stratum >= 0 && *n_admitted > 0)
        note(t,
             "bracket %d: %d candidates train %s augmentation, the space has no other; the "
             "other %d are drawn from the whole space",
             bracket, stratum_admitted, stratum ? "with" : "without",
             *n_admitted - stratum_admitted);
    tune_model_free(model);
    for (size_t i = 0; i < n_seen; i++)
        free(seen[i]);
    free(seen);
    if (rc == ET_OK && *n_admitted < n_want) {
        t->exhausted = true;
        char left[32];
        et_format_duration(fmax(0, remaining(t)), left, sizeof left);
        if (*n_admitted == 0 && timed > 0 && timed >= dups && timed >= over)
            snprintf(t->stop, sizeof t->stop,
                     "time budget reached: no candidate drawn could train an epoch in the %s left",
                     left);
        else if (*n_admitted == 0)
            snprintf(t->stop, sizeof t->stop,
                     dups > over ? "the search space has no candidate left to draw"
                                 : "no new candidate in %d draws fits the budgets",
                     tries);
    }
    int rungs = t->filling ? 1 : bracket_rungs(t, *n_admitted);
    /* With a time budget, the bracket is fitted to the time left (before the
     * endgame's third): its rungs, run jobs at a time, must end in 90% of it,
     * else every rung's epochs shrink in proportion: the trial's run (its
     * full epochs, which its learning-rate schedule spans) is then shorter
     * than the drawn impulse's, and it is that shorter impulse that the trial
     * stands for ('tune select' gives it). */
    if (rc == ET_OK && t->budget_s > 0 && *n_admitted > 0) {
        double total = 0;
        int admitted_n = *n_admitted;
        for (int k = 0; k < rungs; k++) {
            int nk = admitted_n;
            for (int j = 0; j < k; j++)
                nk /= t->eta;
            nk = nk < 1 ? 1 : nk;
            double mean = 0;
            for (int i = 0; i < n; i++)
                if (list[i].status == ET_TRIAL_PENDING)
                    mean += rung_cost(t, &list[i].imp, list[i].full, k, rungs) / admitted_n;
            total += ceil((double)nk / t->jobs) * mean;
        }
        /* Successive halving's first bracket gets a share of that time
         * (first_share, a third by default): a run that ends early (a usable
         * model within minutes, and estimates calibrated on whole rungs)
         * before the brackets after it take the rest. */
        double avail =
            0.9 * drawing_time(t) * (bracket == 0 && t->rungs > 1 ? t->first_share : 1.0);
        if (total > avail && total > 0) {
            for (int i = 0; i < n; i++) {
                int f = (int)floor(list[i].full * avail / total);
                list[i].full = f < 1 ? 1 : f;
            }
            /* Why the epochs are fewer than the space's: the user sees it, and
             * a run that shrank more than expected can be explained. */
            char need[32], have[32];
            et_format_duration(total, need, sizeof need);
            et_format_duration(avail, have, sizeof have);
            note(t,
                 "bracket %d: its rungs are estimated at %s, %s is available to it: every "
                 "candidate's epochs shrink to %.0f%% of the space's",
                 bracket, need, have, 100 * avail / total);
        }
    }
    if (rc == ET_OK && n > 0)
        rc = et_db_exec(t->p, "BEGIN IMMEDIATE", err);
    int64_t *ids = calloc((size_t)n + 1, sizeof *ids);
    if (rc == ET_OK && !ids)
        rc = et_error_set(err, ET_ENOMEM, "out of memory");
    for (int i = 0; rc == ET_OK && i < n; i++) {
        drawn *d = &list[i];
        int ep = 0;
        if (d->status == ET_TRIAL_PENDING) {
            ep = rung_epochs(t, d->full, d->imp.batch_size, 0, rungs);
            d->estimate = estimate(t, &d->imp, ep);
        }
        rc = insert_trial(t, bracket, draw + i, d, rungs, ep, &ids[i], err);
    }
    if (n > 0 && rc == ET_OK)
        rc = et_db_exec(t->p, "COMMIT", err);
    else if (n > 0)
        sqlite3_exec(t->p->db, "ROLLBACK", NULL, NULL, NULL);
    for (int i = 0; rc == ET_OK && i < n; i++)
        emit(t, ET_TUNE_EVENT_DRAWN, ids[i], NULL);
    free(ids);
    drawn_free(list, n);
    return rc;
}

/* ------------------------------------------------------------------------
 * Promotion.
 */
static int by_objective_objective; /* qsort has no context: set just before sorting */

static int by_objective(const void *a, const void *b)
{
    const et_tune_trial *x = a, *y = b;
    et_tune_objective o = (et_tune_objective)by_objective_objective;
    double ox = et_tune_trial_objective(x, o), oy = et_tune_trial_objective(y, o);
    if (ox != oy)
        return ox > oy ? -1 : 1;
    double fx = x->val_accuracy[ET_PRECISION_FLOAT32], fy = y->val_accuracy[ET_PRECISION_FLOAT32];
    if (fx != fy)
        return fx > fy ? -1 : 1;
    double lx = x->val_loss[ET_PRECISION_FLOAT32], ly = y->val_loss[ET_PRECISION_FLOAT32];
    if (lx != ly)
        return lx < ly ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* What a waiting trial is judged on at a promotion: the validation accuracy
 * of its weights' moving average when its rung measured one (a rung before
 * the last does: et_tune_worker), else its objective. Judged on the weights
 * themselves, an early rung favours what learns fast at a learning rate that
 * has barely begun to decay (low rates, no augmentation) over what ends
 * better; the average is nearer to where the decay takes the weights. */
static double judged_on(const et_tune_trial *x, et_tune_objective o)
{
    return x->average >= 0 ? x->average : et_tune_trial_objective(x, o);
}

/* Best first by judged_on, then as by_objective (by_objective_objective set). */
static int by_judgement(const void *a, const void *b)
{
    et_tune_objective o = (et_tune_objective)by_objective_objective;
    double x = judged_on(a, o), y = judged_on(b, o);
    if (x != y)
        return x > y ? -1 : 1;
    return by_objective(a, b);
}

/* Promotes every bracket whose lowest active rung is complete. *changed when
 * something moved. */
static et_status promote(tuner *t, bool *changed, et_error *err)
{
    *changed = false;
    et_tune_trial *all = NULL;
    size_t n = 0;
    et_status rc = tune_trials_read(t->p, t->run_id, &all, &n, err);
    if (rc < 0)
        return rc;
    int max_bracket = -1;
    for (size_t i = 0; i < n; i++)
        max_bracket = all[i].bracket > max_bracket ? all[i].bracket : max_bracket;
    et_tune_trial *cohort = malloc((n + 1) * sizeof *cohort);
    if (!cohort) {
        free(all);
        return et_error_set(err, ET_ENOMEM, "out of memory");
    }
    for (int b = 0; rc == ET_OK && b <= max_bracket; b++) {
        int k = 1 << 30;
        bool busy = false;
        for (size_t i = 0; i < n; i++)
            if (all[i].bracket == b &&
                (all[i].status == ET_TRIAL_PENDING || all[i].status == ET_TRIAL_RUNNING ||
                 all[i].status == ET_TRIAL_WAITING))
                k = all[i].rung < k ? all[i].rung : k;
        if (k == 1 << 30)
            continue; /* the bracket is finished */
        size_t nc = 0, entered = 0;
        for (size_t i = 0; i < n; i++) {
            const et_tune_trial *x = &all[i];
            if (x->bracket != b || x->rung != k)
                continue;
            busy = busy || x->status == ET_TRIAL_PENDING || x->status == ET_TRIAL_RUNNING;
            if (x->status == ET_TRIAL_WAITING)
                cohort[nc++] = *x;
            entered += x->status == ET_TRIAL_WAITING || x->status == ET_TRIAL_PRUNED ||
                       (x->status == ET_TRIAL_FAILED && x->attempts > 0);
        }
        if (busy || nc == 0)
            continue;
        *changed = true;
        int rungs = cohort[0].rungs;
        if (k >= rungs - 1) {
            for (size_t i = 0; rc == ET_OK && i < nc; i++) {
                rc = tune_exec(t->p, err, NULL,
                               "UPDATE tuner_trials SET status = 'done' WHERE id = ? AND status = "
                               "'waiting'",
                               "i", cohort[i].id);
            }
            continue;
        }
        by_objective_objective = (int)t->objective;
        qsort(cohort, nc, sizeof *cohort, by_judgement);
        bool average = true; /* every one judged on its weights' average */
        for (size_t i = 0; i < nc; i++)
            average = average && cohort[i].average >= 0;
        size_t keep = entered / (size_t)t->eta;
        keep = keep < 1 ? 1 : keep > nc ? nc : keep;
        /* With a time budget, the rest of the bracket must fit the time left, with
         * the estimates learnt from the rungs done. When it does not, the
         * intermediate rungs are dropped: the trials that would have reached the
         * last rung go there at once and train the epochs that fit (shrinking
         * every rung instead would leave the last one too short to matter). */
        int next = k + 1;
        int fit[SPACE_MAX_ALTS * 4] = {0};
        bool jump = false;
        if (t->budget_s > 0) {
            double total = 0;
            size_t nr = keep, final_n = keep;
            for (int r = k + 1; r < rungs; r++) {
                double mean = 0;
                for (size_t i = 0; i < keep; i++)
                    mean += rung_cost(t, &cohort[i].impulse, cohort[i].full_epochs, r, rungs) /
                            (double)keep;
                total += ceil((double)nr / t->jobs) * mean;
                final_n = nr;
                nr = nr / (size_t)t->eta ? nr / (size_t)t->eta : 1;
            }
            double avail = 0.9 * remaining(t);
            if (total > avail && next < rungs - 1) {
                jump = true;
                t->time_limited = true;
                next = rungs - 1;
                keep = final_n < keep ? final_n : keep;
                double slot = avail / ceil((double)keep / t->jobs);
                for (size_t i = 0; i < keep && i < sizeof fit / sizeof fit[0]; i++) {
                    /* The epochs beyond the warm start's that fit the slot. */
                    const et_tune_trial *x = &cohort[i];
                    int have = tune_warm_epochs(t->p, x), e = x->full_epochs;
                    double one = estimate(t, &x->impulse, 1);
                    double all = e > have ? estimate(t, &x->impulse, e - have) : 0;
                    if (all > slot && e - have > 1) {
                        double per = (all - one) / (e - have - 1);
                        e = per > 0 ? have + (int)floor((slot - (one - per)) / per) : e;
                    }
                    fit[i] = e < x->epochs ? x->epochs : e > x->full_epochs ? x->full_epochs : e;
                }
            }
        }
        for (size_t i = 0; rc == ET_OK && i < nc; i++) {
            const et_tune_trial *x = &cohort[i];
            if (i < keep) {
                /* A jump trains what fits of the trial's run; its full epochs (the
                 * schedule's span) stay, and the endgame may finish the run. */
                int ep = jump && i < sizeof fit / sizeof fit[0]
                             ? fit[i]
                             : rung_epochs(t, x->full_epochs, x->impulse.batch_size, next, rungs);
                /* Nothing to gain when the next rung trains no longer: it moves up as it is. */
                bool same = ep <= x->epochs;
                rc = tune_exec(t->p, err, NULL,
                               "UPDATE tuner_trials SET rung = ?, rung_epochs = ?, status = ? "
                               "WHERE id = ?",
                               "iisi", (int64_t)next, (int64_t)ep, same ? "waiting" : "pending",
                               x->id);
                if (rc == ET_OK)
                    emit(t, ET_TUNE_EVENT_PROMOTED, x->id, NULL);
            } else {
                char reason[320], own[96] = "";
                const char *metric =
                    t->objective == ET_TUNE_INT8_ACCURACY ? "int8 accuracy" : "float32 accuracy";
                if (average)
                    snprintf(own, sizeof own, " (%s %.2f%%)", metric,
                             100 * fmax(0, et_tune_trial_objective(x, t->objective)));
                snprintf(reason, sizeof reason,
                         "pruned after rung %d of %d (%d epochs): %s %.2f%%%s, the best %zu of "
                         "%zu reached %.2f%%%s",
                         k + 1, rungs, x->epochs, average ? "its weights' average" : metric,
                         100 * fmax(0, judged_on(x, t->objective)), own, keep, entered,
                         100 * judged_on(&cohort[keep - 1], t->objective),
                         jump ? " (the time left fits only the last rung)" : "");
                rc = tune_exec(t->p, err, NULL,
                               "UPDATE tuner_trials SET status = 'pruned', error = ? WHERE id = ?",
                               "si", reason, x->id);
                tune_checkpoints_remove(t->p, t->run_id, x->id);
                if (rc == ET_OK)
                    emit(t, ET_TUNE_EVENT_PRUNED, x->id, reason);
            }
        }
    }
    free(cohort);
    free(all);
    return rc;
}

static bool sent_on_by_endgame(const et_tune_trial *tr)
{
    return strncmp(tr->error, TUNE_ENDGAME_MARK, strlen(TUNE_ENDGAME_MARK)) == 0;
}

/* The endgame of a successive-halving run with a time budget. Once the last
 * endgame_share (a third) of the budget is reached, or no candidate is left
 * to draw (the space, --trials), no bracket is drawn: its candidates would
 * get through a short first rung at most. Instead the best trial whose run
 * was cut short of its full epochs (its last rung was fitted to the time
 * left, or a deadline stopped it) trains on from its weights towards them,
 * for the epochs that the time left holds, one trial at a time, then the
 * next best: the leader trained longer is worth more than new candidates
 * trained briefly. It goes on along the same schedule (its full epochs
 * stay), so what it reaches is what training its impulse gives.
 * The caller (loop) decides that the endgame has come. *extended: whether a
 * trial was set to go on. */
static et_status extend_best(tuner *t, bool *extended, et_error *err)
{
    *extended = false;
    et_tune_trial *all = NULL;
    size_t n = 0;
    et_status rc = tune_trials_read(t->p, t->run_id, &all, &n, err);
    if (rc < 0)
        return rc;
    size_t m = 0;
    bool going_on = false;
    for (size_t i = 0; i < n; i++) {
        const et_tune_trial *x = &all[i];
        /* One at a time: not while an extended trial still trains. */
        going_on = going_on || (x->status != ET_TRIAL_DONE && sent_on_by_endgame(x));
        if (x->status != ET_TRIAL_DONE || !x->trained || x->epochs >= x->full_epochs)
            continue;
        /* A trial whose last turn trained no epoch (the estimates were far
         * off) is not sent again. */
        json_t *h = json_loads(x->history, 0, NULL);
        json_t *last = json_array_get(h, json_array_size(h) ? json_array_size(h) - 1 : 0);
        bool stuck = last && json_integer_value(json_object_get(last, "epochs")) ==
                                 json_integer_value(json_object_get(last, "from_epoch"));
        json_decref(h);
        if (!stuck)
            all[m++] = *x;
    }
    if (!going_on && m > 0) {
        by_objective_objective = (int)t->objective;
        qsort(all, m, sizeof *all, by_objective);
        const et_tune_trial *x = &all[0];
        /* From its weights when they were kept, else from the start again. */
        int have = tune_warm_epochs(t->p, x);
        int more = tune_endgame_epochs(0.9 * remaining(t), estimate(t, &x->impulse, 1),
                                       estimate(t, &x->impulse, 2), x->full_epochs - have);
        if (have + more > x->epochs) {
            char why[200];
            snprintf(why, sizeof why,
                     TUNE_ENDGAME_MARK " the best trial cut short trained on to epoch %d of %d "
                                       "(from %s) in the last of the time budget",
                     have + more, x->full_epochs,
                     have ? "its weights" : "the start: its weights were gone");
            rc = tune_exec(t->p, err, NULL,
                           "UPDATE tuner_trials SET status = 'pending', rung_epochs = ?, "
                           "error = ? WHERE id = ? AND status = 'done'",
                           "isi", (int64_t)(have + more), why, x->id);
            if (rc == ET_OK) {
                *extended = true;
                note(t, "trial %lld: %s", (long long)x->id, why);
                emit(t, ET_TUNE_EVENT_PROMOTED, x->id, NULL);
            }
        }
    }
    free(all);
    return rc;
}

int tune_endgame_epochs(double seconds, double one_epoch, double two_epochs, int most)
{
    /* one_epoch holds the costs paid once (validation, int8 conversion); each
     * further epoch costs the difference. */
    double per = two_epochs - one_epoch;
    if (most <= 0 || seconds < one_epoch || per <= 0)
        return 0;
    double fit = 1 + floor((seconds - one_epoch) / per);
    return fit >= most ? most : (int)fit;
}

/* ------------------------------------------------------------------------
 * Starting and finishing trials.
 */
static et_status next_pending(tuner *t, int64_t *id, et_error *err)
{
    *id = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(t->p->db,
                           "SELECT id FROM tuner_trials WHERE run_id = ? AND status = 'pending' "
                           "ORDER BY bracket, id LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return et_db_error(t->p, err, "reading the trials");
    sqlite3_bind_int64(st, 1, t->run_id);
    if (sqlite3_step(st) == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return ET_OK;
}

extern char **environ;

/* The workers' environment: this one, with OpenMP threads that sleep rather
 * than spin while they wait (unless the user chose). Spinning threads of
 * several processes, or of a machine shared with other work, steal each
 * other's cores: measured 27 s against 7.6 s for the same training with two
 * threads on a loaded 2-core machine (docs/ARCHITECTURE.md, "Tuner"). */
static char **worker_env(void)
{
    size_t n = 0;
    bool set = false;
    for (; environ[n]; n++)
        set = set || !strncmp(environ[n], "OMP_WAIT_POLICY=", 16);
    char **env = malloc((n + 2) * sizeof *env);
    if (!env)
        return NULL;
    memcpy(env, environ, n * sizeof *env);
    if (!set)
        env[n++] = "OMP_WAIT_POLICY=passive";
    env[n] = NULL;
    return env;
}

/* Threads for a worker started now: the cores the running workers leave,
 * shared among the workers about to start; so a trial that trains alone
 * (the last rung) gets every core. */
static int threads_now(tuner *t)
{
    int used = 0;
    for (int i = 0; i < t->running; i++)
        used += t->slots[i].threads;
    sqlite3_stmt *st = NULL;
    int pending = 1;
    if (sqlite3_prepare_v2(t->p->db,
                           "SELECT count(*) FROM tuner_trials WHERE run_id = ? AND status = "
                           "'pending'",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, t->run_id);
        if (sqlite3_step(st) == SQLITE_ROW)
            pending = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    pending++; /* this one, already marked running */
    int starting = t->jobs - t->running < pending ? t->jobs - t->running : pending;
    int k = (t->cores - used) / (starting > 0 ? starting : 1);
    return k > 0 ? k : 1;
}

/* When trial tr must stop, on the wall clock (Unix seconds; 0: no budget):
 * a running rung stops there once it has an epoch, so one that was
 * estimated far too short cannot hold the run long past its budget. A first
 * rung stops where the endgame begins (drawing_time), so that it cannot eat
 * the time kept for training the best trial on; later rungs and the
 * endgame's trial at the end of the budget. */
static double deadline(const tuner *t, const et_tune_trial *tr)
{
    if (t->budget_s <= 0)
        return 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* A first rung started in the endgame (a filling candidate, or one
     * pending when the run was resumed there) has the time left. */
    bool first = tr->rung == 0 && !sent_on_by_endgame(tr) && drawing_time(t) > 0;
    double left = first ? drawing_time(t) : remaining(t);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9 + left;
}

static et_status spawn(tuner *t, const et_tune_trial *tr, int nthreads, pid_t *pid, et_error *err)
{
    int64_t id = tr->id;
    char trial[32], threads[16], until[32];
    snprintf(trial, sizeof trial, "%lld", (long long)id);
    snprintf(threads, sizeof threads, "%d", nthreads);
    snprintf(until, sizeof until, "%.3f", deadline(t, tr));
    char **env = worker_env();
    if (!env)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    const char *root = et_project_root(t->p);
    const char *exe = t->opt->worker_exe;
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t c = fork();
    if (c < 0) {
        free(env);
        return et_error_set(err, ET_ENOMEM, "cannot start a worker process: %s", strerror(errno));
    }
    if (c == 0) {
        /* Only async-signal-safe calls until exec. A worker dies with its tuner. */
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
#endif
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, STDOUT_FILENO);
        char *const argv[] = {(char *)exe, "-q",        "-C",    (char *)root, "tune", "--worker",
                              trial,       "--threads", threads, "--deadline", until,  NULL};
        execve(exe, argv, env);
        _exit(127);
    }
    (void)parent;
    free(env);
    *pid = c;
    return ET_OK;
}

/* A worker ended: when it left its trial running, it died without a word. */
static et_status reap(tuner *t, const slot *s, int status, et_error *err)
{
    int64_t id = s->trial;
    et_tune_trial tr;
    et_status rc = tune_trial_read(t->p, id, &tr, err);
    if (rc < 0)
        return rc;
    if (tr.status == ET_TRIAL_RUNNING && !et_interrupted()) {
        char why[256];
        if (WIFSIGNALED(status))
            snprintf(why, sizeof why, "the worker process was killed by signal %d (%s)%s",
                     WTERMSIG(status), strsignal(WTERMSIG(status)),
                     WTERMSIG(status) == SIGKILL ? "; out of memory?" : "");
        else
            snprintf(why, sizeof why, "the worker process exited with status %d",
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        rc = tune_exec(t->p, err, NULL,
                       "UPDATE tuner_trials SET status = 'failed', error = ?, finished_at = "
                       "strftime('%Y-%m-%dT%H:%M:%SZ','now') WHERE id = ? AND status = 'running'",
                       "si", why, id);
    } else if (tr.status == ET_TRIAL_RUNNING) {
        rc = tune_exec(t->p, err, NULL,
                       "UPDATE tuner_trials SET status = 'pending' WHERE id = ? AND status = "
                       "'running'",
                       "i", id);
    }
    if (rc == ET_OK && tr.status != ET_TRIAL_PENDING) {
        learn(t, id, s);
        emit(t, ET_TUNE_EVENT_FINISHED, id, NULL);
    }
    save_seconds(t);
    return rc;
}

/* Starts one pending trial (or skips it when it cannot fit the time left).
 * In this process, it also runs to the end. */
static et_status start(tuner *t, int64_t id, et_error *err)
{
    et_tune_trial tr;
    et_status rc = tune_trial_read(t->p, id, &tr, err);
    if (rc < 0)
        return rc;
    /* A promoted trial trains only the epochs beyond its checkpoint's. */
    int have = tune_warm_epochs(t->p, &tr);
    slot s = {.trial = id};
    double est = estimate_slot(t, &tr.impulse, tr.rung_epochs - have, &s);
    int epochs = tr.rung_epochs;
    char shortened[160] = "";
    if (est > remaining(t) && tr.trained && tr.rung_epochs - have > 1) {
        /* A later rung that does not fit trains the epochs that do, when that is
         * more than it has: a best trial trained shorter beats one left as it was. */
        double one = estimate(t, &tr.impulse, 1);
        double per = (est - one) / (tr.rung_epochs - have - 1);
        int fit = per > 0 ? have + (int)floor((remaining(t) - (one - per)) / per) : 0;
        if (fit > tr.epochs && fit < tr.rung_epochs) {
            snprintf(shortened, sizeof shortened,
                     "time budget: rung %d of %d trained %d of its %d epochs", tr.rung + 1,
                     tr.rungs, fit, tr.rung_epochs);
            epochs = fit;
            est = estimate_slot(t, &tr.impulse, fit - have, &s);
        }
    }
    if (shortened[0])
        t->time_limited = true;
    if (est > remaining(t)) {
        t->time_limited = true;
        char reason[256], need[32], left[32];
        et_format_duration(est, need, sizeof need);
        et_format_duration(fmax(0, remaining(t)), left, sizeof left);
        snprintf(reason, sizeof reason,
                 "time budget: rung %d of %d (%d epochs) needs about %s, %s left", tr.rung + 1,
                 tr.rungs, tr.rung_epochs, need, left);
        rc = tune_exec(t->p, err, NULL,
                       "UPDATE tuner_trials SET status = ?, error = ?, finished_at = "
                       "strftime('%Y-%m-%dT%H:%M:%SZ','now') WHERE id = ?",
                       "ssi", tr.trained ? "pruned" : "skipped", reason, id);
        tune_checkpoints_remove(t->p, t->run_id, id);
        if (rc == ET_OK)
            emit(t, ET_TUNE_EVENT_PRUNED, id, reason);
        return rc;
    }
    et_error fe = {0};
    rc = ensure_features(t, &tr.impulse, &fe);
    if (rc == ET_EINTR || rc == ET_EDB || rc == ET_ENOMEM) {
        *err = fe;
        return rc;
    }
    if (rc < 0) {
        rc = tune_exec(t->p, err, NULL,
                       "UPDATE tuner_trials SET status = 'failed', error = ?, finished_at = "
                       "strftime('%Y-%m-%dT%H:%M:%SZ','now') WHERE id = ?",
                       "si", fe.msg, id);
        if (rc == ET_OK)
            emit(t, ET_TUNE_EVENT_FINISHED, id, NULL);
        return rc;
    }
    rc = tune_exec(t->p, err, NULL,
                   "UPDATE tuner_trials SET status = 'running', attempts = attempts + 1, "
                   "estimated_seconds = ?, rung_epochs = ?, error = CASE WHEN ? = '' THEN error "
                   "ELSE ?3 END WHERE id = ? AND status = 'pending'",
                   "disi", est, (int64_t)epochs, shortened, id);
    if (rc < 0)
        return rc;
    if (t->opt->worker_exe) {
        pid_t pid = 0;
        int threads = threads_now(t);
        if ((rc = spawn(t, &tr, threads, &pid, err)) < 0) {
            tune_exec(t->p, NULL, NULL,
                      "UPDATE tuner_trials SET status = 'pending', attempts = attempts - 1 "
                      "WHERE id = ?",
                      "i", id);
            return rc;
        }
        s.pid = pid;
        s.threads = threads;
        t->slots[t->running++] = s;
        emit(t, ET_TUNE_EVENT_STARTED, id, NULL);
        return ET_OK;
    }
    t->running = 1;
    emit(t, ET_TUNE_EVENT_STARTED, id, NULL);
    rc = et_tune_worker(t->p, id, 0, deadline(t, &tr), err);
    t->running = 0;
    if (rc == ET_EINTR)
        et_interrupt_raise(); /* et_train clears the flag to save its model; the run stops */
    if (rc < 0)
        return rc;
    learn(t, id, &s);
    emit(t, ET_TUNE_EVENT_FINISHED, id, NULL);
    save_seconds(t);
    return ET_OK;
}

/* Waits until a worker ends (or Ctrl-C). */
static et_status wait_one(tuner *t, et_error *err)
{
    for (;;) {
        for (int i = 0; i < t->running; i++) {
            int status = 0;
            pid_t r = waitpid(t->slots[i].pid, &status, WNOHANG);
            if (r == t->slots[i].pid || (r < 0 && errno == ECHILD)) {
                slot done = t->slots[i];
                t->slots[i] = t->slots[--t->running];
                return reap(t, &done, r < 0 ? 0 : status, err);
            }
        }
        if (et_interrupted())
            return ET_OK;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Ctrl-C: every worker is told to stop and waited for; their trials go back
 * to pending. */
static void stop_workers(tuner *t)
{
    for (int i = 0; i < t->running; i++)
        kill(t->slots[i].pid, SIGTERM);
    for (int i = 0; i < t->running; i++) {
        int status = 0;
        while (waitpid(t->slots[i].pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    t->running = 0;
    tune_exec(t->p, NULL, NULL,
              "UPDATE tuner_trials SET status = 'pending' WHERE run_id = ? AND status = 'running'",
              "i", t->run_id);
}

/* ------------------------------------------------------------------------
 * A run's settings: a new run, or a stored one to resume.
 */
static et_status new_run(tuner *t, et_error *err)
{
    const et_tune_options *o = t->opt;
    if (!o->target)
        return et_error_set(err, ET_EINVAL,
                            "a target is needed (--target NAME; 'edgetrain targets' lists them)");
    t->target = o->target;
    const et_engine_costs *e = NULL;
    et_status rc = et_target_engine(t->target, o->engine, &e, err);
    if (rc < 0)
        return rc;
    snprintf(t->engine, sizeof t->engine, "%s", e->name);
    if (o->max_trials < 0 || o->time_budget_s < 0 || o->max_latency_ms < 0 ||
        o->max_ram_bytes < 0 || o->max_rom_bytes < 0)
        return et_error_set(err, ET_EINVAL, "budgets and limits cannot be negative");
    if (o->max_trials == 0 && o->time_budget_s == 0)
        return et_error_set(err, ET_EINVAL,
                            "give a number of trials or a time budget (--trials N, "
                            "--time-budget 30m)");
    t->max_latency_ms = o->max_latency_ms;
    t->max_ram = o->max_ram_bytes;
    t->max_rom = o->max_rom_bytes;
    t->max_trials = o->max_trials;
    t->budget_s = o->time_budget_s;
    t->objective = o->objective;
    t->eta = o->eta ? o->eta : 3;
    t->rungs = o->rungs ? o->rungs : 3;
    t->min_steps = o->min_steps ? o->min_steps : 200;
    /* Random search judges nothing: there is nothing for a model to learn. */
    t->sampler = t->rungs == 1 ? ET_TUNE_SAMPLER_RANDOM : o->sampler;
    t->hyperband = t->rungs > 1 && o->hyperband;
    if (t->eta < 2 || t->eta > 10 || t->rungs < 1 || t->rungs > 5 || t->min_steps < 0)
        return et_error_set(err, ET_EINVAL,
                            "scheduler: eta %d (2..10), rungs %d (1..5), min steps %d (>= 0)",
                            t->eta, t->rungs, t->min_steps);
    int64_t version = 0;
    if ((rc = et_impulse_current(t->p, &t->base, &version, err)) < 0)
        return rc;
    t->seed = o->seed >= 0 ? o->seed : t->base.seed;
    if (t->seed > 2147483647)
        return et_error_set(err, ET_EINVAL, "seed %lld: 0..2147483647", (long long)t->seed);
    if (o->space) {
        t->space = malloc(sizeof *t->space);
        if (!t->space)
            return et_error_set(err, ET_ENOMEM, "out of memory");
        memcpy(t->space, o->space, sizeof *t->space);
    } else if ((rc = et_tune_space_default(t->p, &t->space, err)) < 0) {
        return rc;
    }
    sqlite3_stmt *st = NULL;
    int max_channels = 3;
    if (sqlite3_prepare_v2(t->p->db, "SELECT coalesce(max(channels), 0) FROM samples", -1, &st,
                           NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        max_channels = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (max_channels < 3 && et_tune_space_drop_rgb(t->space))
        note(t, "every sample is grayscale: rgb left out of the space");
    char *space = et_tune_space_to_json(t->space);
    char *base = et_impulse_to_json(&t->base, false);
    if (!space || !base)
        rc = et_error_set(err, ET_ENOMEM, "out of memory");
    if (rc == ET_OK)
        rc = tune_exec(t->p, err, NULL,
                       "INSERT INTO tuner_runs(target, engine, objective, max_latency_ms, "
                       "max_ram_bytes, max_rom_bytes, max_trials, time_budget_s, seed, jobs, eta, "
                       "rungs, min_steps, space, base_impulse, base_impulse_version, pid, "
                       "sampler, hyperband) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       "sssdiiidiiiiissiisi", t->target->name, t->engine,
                       et_tune_objective_name(t->objective), t->max_latency_ms, t->max_ram,
                       t->max_rom, (int64_t)t->max_trials, t->budget_s, t->seed, (int64_t)t->jobs,
                       (int64_t)t->eta, (int64_t)t->rungs, (int64_t)t->min_steps, space, base,
                       version, (int64_t)getpid(), et_tune_sampler_name(t->sampler),
                       (int64_t)t->hyperband);
    free(space);
    free(base);
    if (rc == ET_OK)
        t->run_id = sqlite3_last_insert_rowid(t->p->db);
    return rc;
}

static et_status load_run(tuner *t, et_error *err)
{
    const et_tune_options *o = t->opt;
    sqlite3_stmt *st = NULL;
    int64_t id = o->resume_run;
    if (id == 0) {
        if (sqlite3_prepare_v2(t->p->db,
                               "SELECT coalesce(max(id), 0) FROM tuner_runs WHERE status != 'done'",
                               -1, &st, NULL) != SQLITE_OK)
            return et_db_error(t->p, err, "reading the tuner runs");
        if (sqlite3_step(st) == SQLITE_ROW)
            id = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        if (id == 0)
            return et_error_set(err, ET_ENOTFOUND,
                                "no unfinished tuner run to resume (start one with 'edgetrain "
                                "tune --target NAME')");
    }
    if (sqlite3_prepare_v2(t->p->db,
                           "SELECT status, target, engine, objective, max_latency_ms, "
                           "max_ram_bytes, max_rom_bytes, max_trials, time_budget_s, seed, eta, "
                           "rungs, min_steps, space, base_impulse, seconds, pid, jobs, sampler, "
                           "hyperband FROM tuner_runs WHERE id = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return et_db_error(t->p, err, "reading the tuner run");
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return et_error_set(err, ET_ENOTFOUND, "no tuner run %lld", (long long)id);
    }
    char status[16], target[ET_TARGET_NAME_MAX], objective[32];
    snprintf(status, sizeof status, "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(target, sizeof target, "%s", (const char *)sqlite3_column_text(st, 1));
    snprintf(t->engine, sizeof t->engine, "%s", (const char *)sqlite3_column_text(st, 2));
    snprintf(objective, sizeof objective, "%s", (const char *)sqlite3_column_text(st, 3));
    t->max_latency_ms = sqlite3_column_double(st, 4);
    t->max_ram = sqlite3_column_int64(st, 5);
    t->max_rom = sqlite3_column_int64(st, 6);
    t->max_trials = sqlite3_column_int(st, 7);
    t->budget_s = sqlite3_column_double(st, 8);
    t->seed = sqlite3_column_int64(st, 9);
    t->eta = sqlite3_column_int(st, 10);
    t->rungs = sqlite3_column_int(st, 11);
    t->min_steps = sqlite3_column_int(st, 12);
    char *space = strdup((const char *)sqlite3_column_text(st, 13));
    char *base = strdup((const char *)sqlite3_column_text(st, 14));
    t->seconds_before = sqlite3_column_double(st, 15);
    pid_t pid = (pid_t)sqlite3_column_int64(st, 16);
    int stored_jobs = sqlite3_column_int(st, 17);
    et_tune_sampler_parse((const char *)sqlite3_column_text(st, 18), &t->sampler, NULL);
    t->hyperband = sqlite3_column_int(st, 19) != 0;
    sqlite3_finalize(st);
    et_status rc = ET_OK;
    if (!space || !base)
        rc = et_error_set(err, ET_ENOMEM, "out of memory");
    if (rc == ET_OK && !strcmp(status, "done"))
        rc = et_error_set(err, ET_EINVAL, "tuner run %lld is finished; start a new one",
                          (long long)id);
    if (rc == ET_OK && !strcmp(status, "running") && pid > 0 && pid != getpid() &&
        (kill(pid, 0) == 0 || errno == EPERM))
        rc = et_error_set(err, ET_EEXIST,
                          "tuner run %lld is still running in process %d; stop it first",
                          (long long)id, (int)pid);
    if (rc == ET_OK)
        rc = et_tune_objective_parse(objective, &t->objective, err);
    if (rc == ET_OK)
        rc = et_tune_space_parse(space, strlen(space), "the run's stored space", &t->space, err);
    if (rc == ET_OK)
        rc = et_impulse_from_json(base, strlen(base), "the run's base impulse", &t->base, err);
    free(space);
    free(base);
    if (rc < 0)
        return rc;
    t->target = o->catalog ? et_targets_find(o->catalog, target) : NULL;
    if (!t->target && o->target && !strcmp(o->target->name, target))
        t->target = o->target;
    if (!t->target)
        return et_error_set(err, ET_ENOTFOUND,
                            "tuner run %lld was for target '%s', which the catalog no longer has",
                            (long long)id, target);
    t->run_id = id;
    t->out->resumed = true;
    if (o->max_trials > 0)
        t->max_trials = o->max_trials;
    if (o->time_budget_s > 0)
        t->budget_s = o->time_budget_s;
    if (o->jobs == 0)
        t->jobs = stored_jobs > 0 && stored_jobs <= MAX_JOBS ? stored_jobs : t->jobs;
    /* Trials left running were cut off: run them again, unless their
     * process has died with them too often. */
    char why[160];
    snprintf(why, sizeof why,
             "its process ended without a result %d times (killed, or out of memory?)",
             MAX_ATTEMPTS);
    rc = tune_exec(t->p, err, NULL,
                   "UPDATE tuner_trials SET status = CASE WHEN attempts >= ? THEN 'failed' ELSE "
                   "'pending' END, error = CASE WHEN attempts >= ? THEN ? ELSE error END "
                   "WHERE run_id = ? AND status = 'running'",
                   "iisi", (int64_t)MAX_ATTEMPTS, (int64_t)MAX_ATTEMPTS, why, id);
    if (rc == ET_OK)
        rc = tune_exec(t->p, err, NULL,
                       "UPDATE tuner_runs SET status = 'running', pid = ?, jobs = ?, max_trials = "
                       "?, time_budget_s = ? WHERE id = ?",
                       "iiidi", (int64_t)getpid(), (int64_t)t->jobs, (int64_t)t->max_trials,
                       t->budget_s, id);
    return rc;
}

/* ------------------------------------------------------------------------
 * The loop.
 */
static et_status loop(tuner *t, et_error *err)
{
    for (;;) {
        if (et_interrupted())
            return et_error_set(err, ET_EINTR,
                                "interrupted; continue with 'edgetrain tune --resume'");
        bool changed = true;
        et_status rc = ET_OK;
        while (rc == ET_OK && changed)
            rc = promote(t, &changed, err);
        int64_t id = 0;
        while (rc == ET_OK && t->running < t->jobs && !et_interrupted()) {
            if ((rc = next_pending(t, &id, err)) < 0 || id == 0)
                break;
            rc = start(t, id, err);
            if (!t->opt->worker_exe)
                break; /* ran to the end in this process: promote first */
        }
        if (rc < 0)
            return rc;
        if (et_interrupted())
            continue;
        if (!t->opt->worker_exe && id != 0)
            continue;
        /* Nothing pending: draw a bracket while the limits allow (also to fill
         * job slots that the current bracket's rung leaves idle); in the
         * endgame, train the leader on instead. */
        bool endgame = id == 0 && t->running < t->jobs && t->rungs > 1 && t->budget_s > 0 &&
                       remaining(t) > 0 &&
                       (t->filling || t->exhausted || drawing_time(t) <= 0 || trials_reached(t));
        if (endgame) {
            bool extended = false;
            if ((rc = extend_best(t, &extended, err)) < 0)
                return rc;
            if (extended)
                continue;
            /* Nothing to finish and nothing training: rather than leave the
             * time unused, new candidates, one per job, each trained in full
             * for the epochs that the time left holds. */
            if (t->running == 0 && !t->exhausted && remaining(t) >= EARLY_END_S &&
                !trials_reached(t)) {
                if (!t->filling) {
                    char left[32];
                    et_format_duration(remaining(t), left, sizeof left);
                    note(t,
                         "endgame: no run is left to finish; new candidates, one per job, "
                         "train in full in the %s left",
                         left);
                }
                t->filling = true;
                int n = 0;
                if ((rc = draw_bracket(t, &n, err)) < 0)
                    return rc;
                if (n > 0)
                    continue;
            }
            /* While a trial still trains, what it ends with may be worth
             * finishing, and its job's time may be filled: not decided yet. */
            if (t->running == 0) {
                if (!t->exhausted) {
                    t->exhausted = true; /* nothing new is drawn in the endgame */
                    snprintf(t->stop, sizeof t->stop, "time budget reached");
                }
                t->endgame_done = true;
            }
        } else if (id == 0 && t->running < t->jobs && !t->exhausted) {
            bool can = true;
            if (trials_reached(t)) {
                can = false;
                snprintf(t->stop, sizeof t->stop, "%d trials trained", t->max_trials);
            } else if (remaining(t) <= 0) {
                can = false;
                snprintf(t->stop, sizeof t->stop, "time budget reached");
            }
            if (can) {
                int n = 0;
                if ((rc = draw_bracket(t, &n, err)) < 0)
                    return rc;
                if (n > 0)
                    continue;
            }
        }
        if (t->running > 0) {
            if ((rc = wait_one(t, err)) < 0)
                return rc;
            continue;
        }
        /* Nothing runs and nothing can be drawn: promotions may still be due. */
        changed = false;
        if ((rc = promote(t, &changed, err)) < 0)
            return rc;
        if (!changed && (rc = next_pending(t, &id, err)) == ET_OK && id == 0)
            return ET_OK;
        if (rc < 0)
            return rc;
    }
}

et_status et_tune_run(et_project *p, const et_tune_options *opt, et_tune_event_fn on_event,
                      void *ctx, et_tune_summary *out, et_error *err)
{
    memset(out, 0, sizeof *out);
    et_tune_options defaults = et_tune_defaults();
    if (!opt)
        opt = &defaults;
    tuner t = {.p = p, .opt = opt, .on_event = on_event, .ctx = ctx, .out = out};
    t.jobs = opt->jobs > 0 ? opt->jobs : et_tune_default_jobs();
    if (t.jobs > MAX_JOBS)
        return et_error_set(err, ET_EINVAL, "jobs %d: at most %d", t.jobs, MAX_JOBS);
    if (!opt->worker_exe)
        t.jobs = 1;
    t.t0 = et_now_s();
    double session_t0 = t.t0;
    /* Not stored with the run: a resumed run takes them from opt too. */
    t.endgame_share =
        opt->endgame_share > 0 && opt->endgame_share < 1 ? opt->endgame_share : 1.0 / 3;
    t.first_share = opt->first_share > 0 && opt->first_share <= 1 ? opt->first_share : 1.0 / 3;
    et_status rc = opt->resume ? load_run(&t, err) : new_run(&t, err);
    if (!opt->worker_exe)
        t.jobs = 1; /* a resumed run's stored jobs need worker processes */
    if (rc == ET_OK) {
        t.cores = omp_get_max_threads();
        t.threads = t.jobs > 1 ? (t.cores / t.jobs > 0 ? t.cores / t.jobs : 1) : t.cores;
        rc = read_data(&t, err);
    }
    if (rc < 0) {
        if (t.run_id && !opt->resume)
            tune_exec(p, NULL, NULL,
                      "UPDATE tuner_runs SET status = 'failed', stop_reason = ? "
                      "WHERE id = ?",
                      "si", err ? err->msg : "", t.run_id);
        et_tune_space_destroy(t.space);
        return rc;
    }
    out->run_id = t.run_id;
    if (t.jobs > 1)
        note(&t, "%d jobs at once on %d cores", t.jobs, t.cores);
    rc = loop(&t, err);
    if (t.running > 0 || et_interrupted())
        stop_workers(&t);
    const char *status = rc == ET_OK ? "done" : rc == ET_EINTR ? "interrupted" : "failed";
    if (rc == ET_EINTR)
        snprintf(t.stop, sizeof t.stop, "interrupted");
    else if (rc < 0)
        snprintf(t.stop, sizeof t.stop, "%.250s", err ? err->msg : "failed");
    else if (t.endgame_done && remaining(&t) >= EARLY_END_S) {
        char left[32], why[160];
        et_format_duration(remaining(&t), left, sizeof left);
        /* Why nothing new was drawn: what the draw said, else the trial limit. */
        snprintf(why, sizeof why, "%.120s",
                 t.stop[0] && strcmp(t.stop, "time budget reached") ? t.stop
                 : trials_reached(&t) ? "every candidate --trials allows was drawn"
                                      : "no new candidate fits the time left");
        snprintf(t.stop, sizeof t.stop,
                 "ended before the time budget: nothing left to train (the best trials' runs "
                 "are complete; %.120s); %.20s unused",
                 why, left);
    } else if (!t.stop[0] || (t.time_limited && !strstr(t.stop, "time budget")))
        snprintf(t.stop, sizeof t.stop, "%s",
                 t.time_limited ? "time budget reached" : "every bracket finished");
    tune_exec(p, NULL, NULL,
              "UPDATE tuner_runs SET status = ?, stop_reason = ?, seconds = ?, pid = 0 WHERE id = "
              "?",
              "ssdi", status, t.stop, elapsed(&t), t.run_id);
    if (rc == ET_OK) /* a finished run is never resumed: its warm starts can go */
        tune_checkpoints_remove(p, t.run_id, 0);
    snprintf(out->stop_reason, sizeof out->stop_reason, "%s", t.stop);
    out->seconds = et_now_s() - session_t0;
    et_tune_trial *all = NULL;
    size_t n = 0;
    et_error ignore = {0};
    if (tune_trials_read(p, t.run_id, &all, &n, &ignore) == ET_OK) {
        /* The best: the highest objective; on a tie the faster, then the smaller. */
        et_precision pr = et_tune_objective_precision(t.objective);
        const et_tune_trial *best = NULL;
        for (size_t i = 0; i < n; i++) {
            const et_tune_trial *x = &all[i];
            out->counts[x->status]++;
            double v = et_tune_trial_objective(x, t.objective);
            if (v < 0)
                continue;
            double bv = best ? et_tune_trial_objective(best, t.objective) : -1;
            if (!best || v > bv ||
                (v == bv && (x->latency_ms[pr] < best->latency_ms[pr] ||
                             (x->latency_ms[pr] == best->latency_ms[pr] &&
                              x->ram_bytes[pr] < best->ram_bytes[pr]))))
                best = x;
        }
        if (best) {
            out->best_trial = best->id;
            out->best_objective = et_tune_trial_objective(best, t.objective);
        }
        free(all);
    }
    et_tune_space_destroy(t.space);
    free(t.keys);
    return rc;
}
