/* The training loop: validation split, epochs of shuffled (optionally
 * augmented) batches, the best epoch by validation loss, early stopping,
 * Ctrl-C, and the stored model version. */
#include "edgetrain/train.h"

#include "edgetrain/dsp.h"
#include "edgetrain/estimate.h"

#include "core/fsutil.h"
#include "core/rng.h"
#include "nn/train_internal.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

et_train_options et_train_defaults(void)
{
    return (et_train_options){.optimizer = ET_OPT_ADAM,
                              .schedule = -1,
                              .quant = et_quant_defaults(),
                              .quant_auto = true,
                              .int8_max_drop = 0.01};
}

void et_train_result_free(et_train_result *r)
{
    if (!r)
        return;
    et_metrics_free(&r->validation);
    et_metrics_free(&r->validation_int8);
    for (size_t i = 0; i < r->n_labels; i++)
        free(r->labels[i]);
    free(r->labels);
    memset(r, 0, sizeof *r);
}

static void shuffle(size_t *a, size_t n, uint64_t *s)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(et_splitmix64(s) % i);
        size_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

/* Training rows split into train and validation, per label: each label's
 * rows are shuffled with the seed and round(count * share) of them (at
 * least one when the label has two or more) go to validation. */
static et_status split_rows(const et_features *f, double share, uint64_t seed, size_t **train,
                            size_t *n_train, size_t **val, size_t *n_val, et_error *err)
{
    size_t rows = et_features_rows(f), labels = et_features_n_labels(f);
    *train = malloc((rows + 1) * sizeof **train);
    *val = malloc((rows + 1) * sizeof **val);
    size_t *group = malloc((rows + 1) * sizeof *group);
    if (!*train || !*val || !group) {
        free(group);
        return et_error_set(err, ET_ENOMEM, "out of memory");
    }
    *n_train = *n_val = 0;
    for (size_t l = 0; l < labels; l++) {
        size_t g = 0;
        for (size_t i = 0; i < rows; i++)
            if (et_features_category(f, i) == ET_TRAINING && (size_t)et_features_label(f, i) == l)
                group[g++] = i;
        uint64_t s = seed * 0x100000001B3ull + l;
        shuffle(group, g, &s);
        size_t v = (size_t)llround((double)g * share);
        if (v == 0 && g >= 2)
            v = 1;
        for (size_t i = 0; i < g; i++) {
            if (i < v)
                (*val)[(*n_val)++] = group[i];
            else
                (*train)[(*n_train)++] = group[i];
        }
    }
    free(group);
    return ET_OK;
}

/* Random horizontal flip, zoom 1..1.2x with a random crop (bilinear), and
 * brightness +-0.2 (image block features are in 0..1 and stay there). */
static void augment(float *dst, const float *src, int h, int w, int c, bool clamp, uint64_t *s)
{
    bool flip = et_rng_unit(s) < 0.5;
    double zoom = 1.0 + 0.2 * et_rng_unit(s);
    double ch = h / zoom, cw = w / zoom;
    double y0 = (h - ch) * et_rng_unit(s), x0 = (w - cw) * et_rng_unit(s);
    float bright = (float)(0.4 * et_rng_unit(s) - 0.2);
    for (int y = 0; y < h; y++) {
        double sy = y0 + (y + 0.5) * ch / h - 0.5;
        int ya = (int)floor(sy);
        double fy = sy - ya;
        int y1 = ya < 0    ? 0
                 : ya >= h ? h - 1
                           : ya,
            y2 = ya + 1 >= h  ? h - 1
                 : ya + 1 < 0 ? 0
                              : ya + 1;
        for (int x = 0; x < w; x++) {
            int xo = flip ? w - 1 - x : x;
            double sx = x0 + (xo + 0.5) * cw / w - 0.5;
            int xa = (int)floor(sx);
            double fx = sx - xa;
            int x1 = xa < 0    ? 0
                     : xa >= w ? w - 1
                               : xa,
                x2 = xa + 1 >= w  ? w - 1
                     : xa + 1 < 0 ? 0
                                  : xa + 1;
            for (int k = 0; k < c; k++) {
                double v = (1 - fy) * ((1 - fx) * src[((size_t)y1 * w + x1) * c + k] +
                                       fx * src[((size_t)y1 * w + x2) * c + k]) +
                           fy * ((1 - fx) * src[((size_t)y2 * w + x1) * c + k] +
                                 fx * src[((size_t)y2 * w + x2) * c + k]);
                float out = (float)v + bright;
                if (clamp)
                    out = out < 0 ? 0 : out > 1 ? 1 : out;
                dst[((size_t)y * w + x) * c + k] = out;
            }
        }
    }
}

et_status et_trainer_validate(et_trainer *t, et_metrics *m, et_error *err)
{
    et_status rc = et_predict_rows(t->net, t->f, t->val, t->n_val, t->x, -1, t->probs, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < t->n_val; i++) {
        t->truth[i] = et_features_label(t->f, t->val[i]);
        t->ids[i] = et_features_id(t->f, t->val[i]);
    }
    return et_metrics_compute(t->truth, t->probs, t->n_val, t->classes, t->ids, m, err);
}

void et_trainer_fill_batch(et_trainer *t, size_t start, size_t b, uint64_t *s)
{
    for (size_t i = 0; i < b; i++) {
        size_t row = t->train[start + i];
        if (t->imp->augment)
            augment(t->x + i * t->row_floats, et_features_row(t->f, row), t->h, t->w, t->c,
                    t->clamp, s);
        else
            memcpy(t->x + i * t->row_floats, et_features_row(t->f, row),
                   t->row_floats * sizeof(float));
        t->labels[i] = et_features_label(t->f, row);
    }
}

/* Re-estimates the batch-norm moving statistics for the weights the epoch
 * ended with, before they are evaluated: the plain average of the batch
 * statistics over the first ET_PRECISE_BN_SAMPLES training rows in the
 * epoch's order, unaugmented (what inference sees). The moving averages of
 * training (Keras' momentum 0.999 in MobileNetV2) lag the weights by about
 * a thousand steps: judged by them, a MobileNetV2 after one epoch looks worse
 * than it is (at 32 px, Adam 0.002: validation loss 1.13 against 0.52,
 * docs/BENCHMARKS.md), which misleads the best-epoch choice and the tuner's
 * early rungs. Afterwards the warm-up restarts, so a run resumed from a
 * checkpoint trains as the straight run does. ET_PRECISE_BN_SAMPLES (nn.h)
 * is enough for every channel's statistics (PreciseBN, Wu & Johnson 2021,
 * uses some 10^4 on ImageNet), a few percent of an epoch's time as forward
 * passes alone; the training-time estimate counts them. */
et_status et_trainer_precise_batchnorm(et_trainer *t, uint64_t seed, et_error *err)
{
    if (!et_model_has_batchnorm(et_net_model(t->net)))
        return ET_OK;
    et_net_bn_restart(t->net);
    size_t n = t->n_train < ET_PRECISE_BN_SAMPLES ? t->n_train : ET_PRECISE_BN_SAMPLES;
    et_status rc = ET_OK;
    for (size_t start = 0; start < n && rc == ET_OK; start += (size_t)t->batch) {
        size_t b = n - start < (size_t)t->batch ? n - start : (size_t)t->batch;
        for (size_t i = 0; i < b; i++)
            memcpy(t->x + i * t->row_floats, et_features_row(t->f, t->train[start + i]),
                   t->row_floats * sizeof(float));
        rc = et_net_forward(t->net, t->x, (int)b, true, seed + start, err);
    }
    et_net_bn_restart(t->net);
    return rc;
}

void et_trainer_shuffle(et_trainer *t, uint64_t *s)
{
    shuffle(t->train, t->n_train, s);
}

/* ------------------------------------------------------------------------
 * Checkpoints (warm starts): the state at the end of a run's epochs, so that
 * a later run of the same impulse goes on from there. One file, host byte
 * order (it is read back on the machine that wrote it):
 *   "ETCKPT2\n", u64 params, i32 epochs_run, best_epoch, since_best, 0,
 *   i64 steps, f64 best_loss, u64 n_train, n_val, u32 length, the impulse's
 *   canonical JSON with epochs 0 (length bytes), f32 last[params],
 *   f32 best[params], f32 optimizer state[2][params] (Adam's m and v).
 * With the optimizer's state and step count, a run continued from its
 * checkpoint over the same schedule (schedule_epochs) is the run that would
 * have gone on without stopping, bit for bit. Version 1 (without the state)
 * is refused as "not an edgetrain checkpoint"; the tuner then trains from
 * scratch.
 */
#define CKPT_MAGIC "ETCKPT2\n"
#define CKPT_HEAD (8 + 8 + 16 + 8 + 8 + 16 + 4)

typedef struct checkpoint {
    int epochs_run, best_epoch, since_best;
    int64_t steps;
    double best_loss;
} checkpoint;

/* The impulse as a checkpoint names it: every field but the epochs. */
static char *ckpt_impulse(const et_impulse *imp)
{
    et_impulse k = *imp;
    k.epochs = 0;
    return et_impulse_to_json(&k, false);
}

static et_status ckpt_save(const char *path, const et_trainer *t, const checkpoint *c,
                           et_error *err)
{
    char *json = ckpt_impulse(t->imp);
    size_t np = et_net_param_count(t->net), jl = json ? strlen(json) : 0;
    size_t size = CKPT_HEAD + jl + 4 * np * sizeof(float);
    unsigned char *b = json ? malloc(size) : NULL;
    if (!b) {
        free(json);
        return et_error_set(err, ET_ENOMEM, "out of memory");
    }
    uint64_t u64[3] = {np, t->n_train, t->n_val};
    int32_t i32[4] = {c->epochs_run, c->best_epoch, c->since_best, 0};
    uint32_t len = (uint32_t)jl;
    unsigned char *w = b;
    memcpy(w, CKPT_MAGIC, 8), w += 8;
    memcpy(w, &u64[0], 8), w += 8;
    memcpy(w, i32, 16), w += 16;
    memcpy(w, &c->steps, 8), w += 8;
    memcpy(w, &c->best_loss, 8), w += 8;
    memcpy(w, &u64[1], 16), w += 16;
    memcpy(w, &len, 4), w += 4;
    memcpy(w, json, jl), w += jl;
    memcpy(w, et_net_params(t->net), np * sizeof(float)), w += np * sizeof(float);
    memcpy(w, t->best, np * sizeof(float)), w += np * sizeof(float);
    memcpy(w, et_net_optimizer_state(t->net, 0), np * sizeof(float)), w += np * sizeof(float);
    memcpy(w, et_net_optimizer_state(t->net, 1), np * sizeof(float));
    et_status rc = et_write_file_atomic(path, b, size, err);
    free(b);
    free(json);
    return rc;
}

/* The epochs a checkpoint holds, from its header (0 when it cannot be read:
 * ckpt_load then says why). */
static int ckpt_epochs(const char *path)
{
    unsigned char head[32];
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(head, 1, sizeof head, f) : 0;
    if (f)
        fclose(f);
    int32_t epochs = 0;
    if (got == sizeof head && !memcmp(head, CKPT_MAGIC, 8))
        memcpy(&epochs, head + 16, 4);
    return epochs > 0 ? epochs : 0;
}

/* Loads checkpoint path into the net's parameters and t->best; ET_EINVAL
 * (naming the file) when it was made for another impulse, data or build. */
static et_status ckpt_load(const char *path, et_trainer *t, checkpoint *c, et_error *err)
{
    unsigned char *b = NULL;
    size_t size = 0, np = et_net_param_count(t->net);
    et_status rc = et_read_file(path, ((size_t)1 << 30) + 4 * np * sizeof(float), &b, &size, err);
    if (rc < 0)
        return rc;
    char *json = ckpt_impulse(t->imp);
    uint64_t u64[3] = {0};
    int32_t i32[4] = {0};
    uint32_t len = 0;
    const char *why = NULL;
    if (!json)
        rc = et_error_set(err, ET_ENOMEM, "out of memory");
    else if (size < CKPT_HEAD || memcmp(b, CKPT_MAGIC, 8))
        why = "not an edgetrain checkpoint";
    if (rc == ET_OK && !why) {
        const unsigned char *r = b + 8;
        memcpy(&u64[0], r, 8), r += 8;
        memcpy(i32, r, 16), r += 16;
        memcpy(&c->steps, r, 8), r += 8;
        memcpy(&c->best_loss, r, 8), r += 8;
        memcpy(&u64[1], r, 16), r += 16;
        memcpy(&len, r, 4);
        if (u64[0] != np) /* first: the size below is only computed for the net's own */
            why = "made for another model";
        else if (size != CKPT_HEAD + (size_t)len + 4 * np * sizeof(float))
            why = "truncated or padded";
        else if (len != strlen(json) || memcmp(b + CKPT_HEAD, json, len))
            why = "made for another impulse";
        else if (u64[1] != t->n_train || u64[2] != t->n_val)
            why = "made for other data (the training or validation split differs)";
        else if (i32[0] < 1 || i32[1] < 1 || i32[1] > i32[0] || i32[2] < 0 || c->steps < 0)
            why = "its epoch counts are out of range";
    }
    if (rc == ET_OK && why)
        rc = et_error_set(err, ET_EINVAL, "checkpoint %s: %s; train without it", path, why);
    if (rc == ET_OK) {
        const unsigned char *r = b + CKPT_HEAD + len;
        memcpy(et_net_params(t->net), r, np * sizeof(float));
        memcpy(t->best, r + np * sizeof(float), np * sizeof(float));
        memcpy(et_net_optimizer_state(t->net, 0), r + 2 * np * sizeof(float), np * sizeof(float));
        memcpy(et_net_optimizer_state(t->net, 1), r + 3 * np * sizeof(float), np * sizeof(float));
        et_net_set_steps(t->net, c->steps);
        c->epochs_run = i32[0];
        c->best_epoch = i32[1];
        c->since_best = i32[2];
    }
    free(json);
    free(b);
    return rc;
}

/* The seed of epoch e's shuffle (1-based): each epoch shuffles the order the
 * one before left. */
static uint64_t epoch_shuffle_seed(const et_impulse *imp, int e)
{
    return (uint64_t)imp->seed * 0x9E3779B97F4A7C15ull + (uint64_t)e;
}

static bool past_deadline(const et_train_options *opt)
{
    if (opt->deadline <= 0)
        return false;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9 > opt->deadline;
}

static void trainer_free(et_trainer *t)
{
    et_net_destroy(t->net);
    free(t->train);
    free(t->val);
    free(t->x);
    free(t->probs);
    free(t->best);
    free(t->labels);
    free(t->truth);
    free(t->ids);
}

/* The weights' moving average (opt.weight_average), after update k (from
 * 1) of a run with horizon h steps: the plain mean of the first h updates,
 * then an exponential average with weight 1/h, so the first weights of the
 * run count for little by its end. */
static void average_update(float *avg, const float *p, size_t n, long k, double h)
{
    float w = (float)(1.0 / (k < h ? (double)k : h));
    for (size_t i = 0; i < n; i++)
        avg[i] += w * (p[i] - avg[i]);
}

/* The validation accuracy of the averaged weights: swapped in, their
 * batch-norm statistics re-estimated (precise batch norm: averaged
 * statistics do not belong to averaged weights), measured, swapped back. */
static et_status average_accuracy(et_trainer *t, const float *avg, uint64_t seed, double *acc,
                                  et_error *err)
{
    size_t n = et_net_param_count(t->net);
    float *p = et_net_params(t->net), *keep = malloc(n * sizeof *keep + 1);
    if (!keep)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    memcpy(keep, p, n * sizeof *p);
    memcpy(p, avg, n * sizeof *p);
    et_status rc = et_trainer_precise_batchnorm(t, seed, err);
    et_metrics m;
    if (rc == ET_OK)
        rc = et_trainer_validate(t, &m, err);
    if (rc == ET_OK) {
        *acc = m.accuracy;
        et_metrics_free(&m);
    }
    memcpy(p, keep, n * sizeof *p);
    free(keep);
    return rc;
}

et_status et_train(et_project *p, const et_train_options *opt, et_epoch_fn on_epoch, void *ctx,
                   et_train_result *out, et_error *err)
{
    memset(out, 0, sizeof *out);
    et_train_options defaults = et_train_defaults();
    if (!opt)
        opt = &defaults;
    double t0 = et_now_s();
    et_impulse imp;
    int64_t version = 0;
    et_status rc = ET_OK;
    if (opt->impulse) {
        imp = *opt->impulse;
        rc = et_impulse_validate(&imp, err);
    } else {
        rc = et_impulse_current_stored(p, &imp, &version, "default for the data", err);
    }
    if (rc < 0)
        return rc;
    int epochs = opt->epochs > 0 ? opt->epochs : imp.epochs;
    int batch = opt->batch_size > 0 ? opt->batch_size : imp.batch_size;
    double lr = opt->learning_rate > 0 ? opt->learning_rate : imp.learning_rate;
    bool cosine = (opt->schedule >= 0 ? opt->schedule : (int)imp.schedule) == ET_SCHEDULE_COSINE;
    if (opt->schedule_epochs != 0 && opt->schedule_epochs < epochs)
        return et_error_set(err, ET_EINVAL,
                            "the schedule spans %d epochs, fewer than the %d to train; it "
                            "must span at least as many",
                            opt->schedule_epochs, epochs);
    if (opt->label_smoothing < 0 || opt->label_smoothing > 0.5)
        return et_error_set(err, ET_EINVAL, "label smoothing %g is outside 0..0.5",
                            opt->label_smoothing);
    et_features_stats fs;
    et_features *f = NULL;
    rc = et_features_update(p, &imp, version, &fs, err);
    if (rc == ET_OK)
        rc = et_features_open(p, &imp, &f, err);
    if (rc < 0)
        return rc;
    et_trainer t = {.f = f, .imp = &imp, .batch = batch, .lr = lr};
    t.classes = et_features_n_labels(f);
    et_features_shape(f, &t.h, &t.w, &t.c);
    t.row_floats = (size_t)t.h * t.w * t.c;
    et_model *model = NULL;
    if (t.classes < 2)
        rc = et_error_set(err, ET_EINVAL,
                          "the project has %zu label%s; a classifier needs at "
                          "least two (edgetrain import ... --label OTHER)",
                          t.classes, t.classes == 1 ? "" : "s");
    if (rc == ET_OK)
        rc = split_rows(f, imp.validation_split, (uint64_t)imp.seed, &t.train, &t.n_train, &t.val,
                        &t.n_val, err);
    if (rc == ET_OK && (t.n_train == 0 || t.n_val == 0))
        rc = et_error_set(err, ET_EINVAL,
                          "%zu training and %zu validation samples: import more training samples",
                          t.n_train, t.n_val);
    if (rc == ET_OK && (size_t)batch > t.n_train)
        rc = et_error_set(
            err, ET_EINVAL,
            "batch size %d is larger than the %zu training samples (after the "
            "validation split); use --batch-size or learning.batch_size of at most %zu",
            batch, t.n_train, t.n_train);
    if (rc == ET_OK)
        rc = et_model_create_from_impulse(&imp, (int)t.classes, t.c, &model, err);
    /* A warm start trains only the epochs beyond the checkpoint's. */
    int start = opt->init_from ? ckpt_epochs(opt->init_from) : 0;
    start = start > epochs ? epochs : start;
    /* The estimate, before any training work: printed, and a limit enforced. */
    et_train_estimate est = {0}, est_rates = {0};
    et_machine_rates rates = {0};
    et_model_timing timing = {0};
    if (rc == ET_OK) {
        rc = et_machine_rates_get(&rates, err);
        if (rc == ET_OK)
            rc = et_model_timing_get(model, batch, &timing, err);
        if (rc == ET_OK) {
            et_estimate_input ei = {.n_train = t.n_train,
                                    .n_val = t.n_val,
                                    .epochs = epochs - start,
                                    .batch = batch,
                                    .int8 = !opt->skip_int8,
                                    .qat = opt->qat,
                                    .qat_epochs = opt->qat_epochs,
                                    .timing = &timing};
            et_estimate(model, &rates, &ei, &est);
            ei.timing = NULL; /* what the per-op rates say, for them to learn from */
            et_estimate(model, &rates, &ei, &est_rates);
            est.seconds += et_now_s() - t0; /* counted from the start, as out->seconds is */
            out->estimated_seconds = est.seconds;
            char total[32], limit[32], fallback[128] = "";
            et_format_duration(est.seconds, total, sizeof total);
            if (est.int8_fallback_seconds > 0) {
                double mse = est.int8_fallback_seconds - (opt->qat ? 0 : est.int8_qat_seconds);
                char qat[32];
                et_format_duration(mse, limit, sizeof limit);
                et_format_duration(est.int8_qat_seconds, qat, sizeof qat);
                snprintf(fallback, sizeof fallback,
                         "; if int8 loses accuracy, MSE calibration adds %s%s%s", limit,
                         opt->qat ? "" : " and fine-tuning ", opt->qat ? "" : qat);
            }
            et_log_info(
                "Estimated training time: %s (%d epoch%s of %zu samples, validation on %zu%s%s)",
                total, epochs - start, epochs - start == 1 ? "" : "s", t.n_train, t.n_val,
                opt->skip_int8 ? "" : ", int8 conversion", fallback);
            if (opt->max_seconds > 0 && est.seconds > opt->max_seconds) {
                et_format_duration_ms(est.seconds, total, sizeof total);
                et_format_duration_ms(opt->max_seconds, limit, sizeof limit);
                et_log_info("hint: train fewer epochs, a smaller input or a lighter model "
                            "(edgetrain profile), or raise the limit (--time-limit, or "
                            "edgetrain settings time_limit=...)");
                rc = et_error_set(err, ET_EREFUSED,
                                  "Estimated training time (%s) is larger than compute time "
                                  "limit (%s)",
                                  total, limit);
            }
        }
    }
    if (rc == ET_OK && opt->estimate_only) {
        out->n_train = t.n_train;
        out->n_validation = t.n_val;
        out->impulse_version = version;
        et_features_close(f);
        et_model_destroy(model);
        trainer_free(&t);
        return ET_OK;
    }
    int max_batch = batch > 64 ? batch : 64;
    if (rc == ET_OK)
        rc = et_net_create(model, max_batch, &t.net, err);
    if (rc == ET_OK) {
        t.x = malloc((size_t)max_batch * t.row_floats * sizeof *t.x);
        t.probs = malloc((t.n_val + 1) * t.classes * sizeof *t.probs);
        t.best = malloc(et_net_param_count(t.net) * sizeof *t.best + 1);
        t.labels = malloc((size_t)max_batch * sizeof *t.labels);
        t.truth = malloc((t.n_val + 1) * sizeof *t.truth);
        t.ids = malloc((t.n_val + 1) * sizeof *t.ids);
        if (!t.x || !t.probs || !t.best || !t.labels || !t.truth || !t.ids)
            rc = et_error_set(err, ET_ENOMEM, "out of memory");
    }
    et_optimizer optim = opt->optimizer == ET_OPT_SGD ? et_optimizer_sgd(0.9) : et_optimizer_adam();
    t.clamp = imp.processing == ET_PROCESSING_IMAGE;
    const int steps_per_epoch = (int)((t.n_train + (size_t)batch - 1) / (size_t)batch);
    /* The schedule spans schedule_epochs when given: this run is then the
     * first part of a longer one (a tuner's rung). */
    const int total_steps =
        steps_per_epoch * (opt->schedule_epochs > 0 ? opt->schedule_epochs : epochs);
    double best_loss = INFINITY;
    int since_best = 0, step = 0;
    char *history_text = NULL;
    size_t hist_cap = (size_t)epochs * 160 + 16, hist_len = 0;
    history_text = rc == ET_OK ? malloc(hist_cap) : NULL;
    if (rc == ET_OK && !history_text)
        rc = et_error_set(err, ET_ENOMEM, "out of memory");
    if (history_text)
        hist_len = (size_t)snprintf(history_text, hist_cap, "[");
    if (rc == ET_OK)
        et_net_init(t.net, (uint64_t)imp.seed);
    if (rc == ET_OK && opt->init_from) {
        /* Go on where the checkpoint ended: its weights, its best epoch, its
         * steps, and the batch order its epochs left (each epoch shuffles the
         * order the one before left). */
        checkpoint c = {0};
        rc = ckpt_load(opt->init_from, &t, &c, err);
        if (rc == ET_OK) {
            start = c.epochs_run > epochs ? epochs : c.epochs_run;
            best_loss = c.best_loss;
            out->best_epoch = c.best_epoch;
            out->epochs_run = start;
            out->start_epoch = start;
            since_best = c.since_best;
            step = (int)c.steps;
            for (int e = 1; e <= c.epochs_run; e++) {
                uint64_t s = epoch_shuffle_seed(&imp, e);
                et_trainer_shuffle(&t, &s);
            }
            et_log_info("Warm start from %s: epoch %d (best %d)", opt->init_from, c.epochs_run,
                        c.best_epoch);
        }
    }
    /* The weights' moving average: its horizon a quarter of this run's steps. */
    float *avg = NULL;
    long avg_steps = 0;
    double avg_horizon = fmax(1.0, steps_per_epoch * (double)(epochs - start) / 4);
    if (rc == ET_OK && opt->weight_average) {
        /* Set to the weights: the first update's weight is 1, but a NaN
         * left in fresh memory would survive it. */
        if ((avg = malloc(et_net_param_count(t.net) * sizeof *avg + 1)))
            memcpy(avg, et_net_params(t.net), et_net_param_count(t.net) * sizeof *avg);
        else
            rc = et_error_set(err, ET_ENOMEM, "out of memory");
    }
    double loop_t0 = et_now_s();
    for (int epoch = start + 1; rc == ET_OK && epoch <= epochs; epoch++) {
        double e0 = et_now_s();
        uint64_t s = epoch_shuffle_seed(&imp, epoch);
        et_trainer_shuffle(&t, &s);
        double loss_sum = 0;
        size_t right = 0, seen = 0;
        et_progress bar;
        et_progress_begin(&bar, "training", t.n_train);
        for (size_t start = 0; start < t.n_train && rc == ET_OK; start += (size_t)batch) {
            size_t b = t.n_train - start < (size_t)batch ? t.n_train - start : (size_t)batch;
            et_trainer_fill_batch(&t, start, b, &s);
            double loss = 0;
            rc = et_net_forward(t.net, t.x, (int)b, true,
                                (uint64_t)imp.seed * 1000003ull + (uint64_t)step, err);
            if (rc == ET_OK)
                rc = et_net_backward(t.net, t.labels, opt->label_smoothing, NULL, &loss, err);
            if (rc < 0)
                break;
            const float *pr = et_net_probs(t.net);
            for (size_t i = 0; i < b; i++) {
                size_t best_k = 0;
                for (size_t k = 1; k < t.classes; k++)
                    if (pr[i * t.classes + k] > pr[i * t.classes + best_k])
                        best_k = k;
                right += best_k == (size_t)t.labels[i];
            }
            double rate = cosine ? et_lr_cosine(lr, step, total_steps)
                                 : et_lr_constant(lr, step, total_steps);
            et_net_step(t.net, &optim, rate);
            step++;
            if (avg)
                average_update(avg, et_net_params(t.net), et_net_param_count(t.net), ++avg_steps,
                               avg_horizon);
            loss_sum += loss * (double)b;
            seen += b;
            et_progress_update(&bar, seen);
            if (et_interrupted()) {
                out->interrupted = true;
                break;
            }
            if (past_deadline(opt) && out->best_epoch > 0) {
                out->deadline_reached = true; /* this epoch's batches so far are dropped */
                break;
            }
        }
        et_progress_end(&bar);
        if (rc < 0 || out->interrupted || out->deadline_reached)
            break;
        double train_s = et_now_s() - e0;
        rc =
            et_trainer_precise_batchnorm(&t, (uint64_t)imp.seed * 1000003ull + (uint64_t)step, err);
        if (rc < 0)
            break;
        et_metrics m;
        rc = et_trainer_validate(&t, &m, err);
        if (rc == ET_EINTR) {
            out->interrupted = true;
            rc = ET_OK;
            break;
        }
        if (rc < 0)
            break;
        out->epochs_run = epoch;
        if (epoch == start + 1 && epochs > epoch) {
            double e1 = et_now_s() - e0;
            out->estimated_after_epoch1 =
                (et_now_s() - t0) + e1 * (epochs - epoch) + est.int8_seconds;
            char total[32], left[32];
            et_format_duration(out->estimated_after_epoch1, total, sizeof total);
            et_format_duration(e1 * (epochs - epoch) + est.int8_seconds, left, sizeof left);
            et_log_info("After epoch %d: estimated training time %s (%s left)", epoch, total, left);
        }
        et_epoch_stats es = {.epoch = epoch,
                             .epochs = epochs,
                             .loss = loss_sum / (double)seen,
                             .accuracy = (double)right / (double)seen,
                             .val_loss = m.loss,
                             .val_accuracy = m.accuracy,
                             .samples_per_s = (double)seen / train_s,
                             .seconds = et_now_s() - e0,
                             .best = m.loss < best_loss};
        et_metrics_free(&m);
        out->samples_per_s += (es.samples_per_s - out->samples_per_s) / (epoch - start);
        if (es.best) {
            best_loss = es.val_loss;
            out->best_epoch = epoch;
            since_best = 0;
            memcpy(t.best, et_net_params(t.net), et_net_param_count(t.net) * sizeof(float));
        } else {
            since_best++;
        }
        hist_len += (size_t)snprintf(history_text + hist_len, hist_cap - hist_len,
                                     "%s{\"epoch\":%d,\"loss\":%.6g,\"accuracy\":%.6g,"
                                     "\"val_loss\":%.6g,\"val_accuracy\":%.6g,"
                                     "\"samples_per_s\":%.1f}",
                                     epoch > start + 1 ? "," : "", epoch, es.loss, es.accuracy,
                                     es.val_loss, es.val_accuracy, es.samples_per_s);
        if (on_epoch)
            on_epoch(ctx, &es);
        if (past_deadline(opt)) {
            out->deadline_reached = epoch < epochs;
            break;
        }
        /* The compute time limit: the next epoch would end past it. */
        if (opt->max_seconds > 0 && epoch < epochs &&
            et_now_s() - t0 + es.seconds > opt->max_seconds) {
            char limit[32];
            et_format_duration_ms(opt->max_seconds, limit, sizeof limit);
            et_log_warn("stopped after epoch %d of %d: the next epoch would end past the "
                        "compute time limit (%s); the best epoch (%d) is kept",
                        epoch, epochs, limit, out->best_epoch);
            out->time_limit_reached = true;
            break;
        }
        if (opt->early_stopping > 0 && since_best >= opt->early_stopping)
            break;
    }
    /* Teach the estimate what the epochs really took (full runs only). */
    int trained = out->epochs_run - start;
    if (rc == ET_OK && !out->interrupted && trained > 0 && est.seconds > 0) {
        double share = (epochs - start) / (epochs - start + 1.0) / (epochs - start);
        double measured = et_now_s() - loop_t0;
        et_machine_rates_learn(
            &rates, measured,
            (est_rates.train_seconds / (epochs - start) + est_rates.validation_seconds * share) *
                trained);
        et_model_timing_learn(
            model, &timing, measured,
            (est.train_seconds / (epochs - start) + est.validation_seconds * share) * trained);
    }
    /* The checkpoint holds the last epoch's weights (the loop's state), so it
     * is written before the best epoch's replace them; not when a deadline
     * cut an epoch short (the weights are then part of an epoch). */
    bool mid_epoch = out->deadline_reached && step != steps_per_epoch * out->epochs_run;
    if (rc == ET_OK && !out->interrupted && !mid_epoch && opt->checkpoint_out &&
        out->best_epoch > 0) {
        checkpoint c = {.epochs_run = out->epochs_run,
                        .best_epoch = out->best_epoch,
                        .since_best = since_best,
                        .steps = step,
                        .best_loss = best_loss};
        rc = ckpt_save(opt->checkpoint_out, &t, &c, err);
    }
    if (rc == ET_OK && avg && avg_steps > 0 && !out->interrupted) {
        rc = average_accuracy(&t, avg, (uint64_t)imp.seed * 1000003ull + (uint64_t)step,
                              &out->average_accuracy, err);
        out->has_average = rc == ET_OK;
        if (rc == ET_EINTR) {
            out->interrupted = true;
            rc = ET_OK;
        }
    }
    free(avg);
    if (rc == ET_OK && out->best_epoch == 0)
        rc = et_error_set(err, ET_EINTR, "interrupted before the first epoch ended; nothing saved");
    if (rc == ET_OK) {
        /* The best epoch's weights, measured again for the record. */
        memcpy(et_net_params(t.net), t.best, et_net_param_count(t.net) * sizeof(float));
        et_interrupt_clear(); /* the model is saved even after Ctrl-C */
        rc = et_trainer_validate(&t, &out->validation, err);
    }
    if (rc == ET_OK) {
        snprintf(history_text + hist_len, hist_cap - hist_len, "]");
        out->n_labels = t.classes;
        out->labels = calloc(t.classes + 1, sizeof *out->labels);
        for (size_t i = 0; out->labels && i < t.classes; i++)
            out->labels[i] = strdup(et_features_label_name(f, i));
        char *val_json = et_metrics_to_json(&out->validation, (const char *const *)out->labels);
        et_quant_result q = {0};
        char *quant_json = NULL, *val_int8_json = NULL;
        int64_t *cal_ids = NULL;
        if (out->interrupted)
            snprintf(out->quant_error, sizeof out->quant_error,
                     "skipped: training was interrupted");
        else if (!opt->skip_int8) {
            quant_json = et_train_make_int8(&t, model, opt, out, &q);
            if (out->has_int8)
                val_int8_json =
                    et_metrics_to_json(&out->validation_int8, (const char *const *)out->labels);
        }
        if (out->has_int8) {
            cal_ids = malloc((q.calibration_samples + 1) * sizeof *cal_ids);
            for (size_t i = 0; cal_ids && i < q.calibration_samples; i++)
                cal_ids[i] = et_features_id(f, q.calibration_rows[i]);
        }
        out->seconds = et_now_s() - t0;
        et_model_save_args a = {.imp = &imp,
                                .impulse_version = version,
                                .model = model,
                                .params = t.best,
                                .labels = (const char *const *)out->labels,
                                .n_labels = t.classes,
                                .epochs_run = out->epochs_run,
                                .best_epoch = out->best_epoch,
                                .seconds = out->seconds,
                                .interrupted = out->interrupted,
                                .validation_json = val_json,
                                .history_json = history_text,
                                .plan_float32 = out->has_int8 ? &q.float32 : NULL,
                                .plan_int8 = out->has_int8 ? &q.int8 : NULL,
                                .validation_int8_json = val_int8_json,
                                .quantization_json = quant_json,
                                .calibration_ids = cal_ids,
                                .n_calibration = cal_ids ? q.calibration_samples : 0};
        if (!out->labels)
            rc = et_error_set(err, ET_ENOMEM, "out of memory");
        else if (!opt->no_save)
            rc = et_model_store_save(p, &a, &out->model_id, err);
        free(val_json);
        free(val_int8_json);
        free(quant_json);
        free(cal_ids);
        et_quant_result_free(&q);
    }
    out->impulse_version = version;
    out->n_train = t.n_train;
    out->n_validation = t.n_val;
    free(history_text);
    trainer_free(&t);
    et_model_destroy(model);
    et_features_close(f);
    if (rc < 0) {
        bool keep_interrupt = out->interrupted;
        et_train_result_free(out);
        out->interrupted = keep_interrupt;
    }
    return rc;
}
