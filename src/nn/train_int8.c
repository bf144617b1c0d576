/* The int8 model of a training run: post-training quantization with min/max
 * calibration; when int8 loses too much against float32, MSE clipping, then
 * quantization-aware fine-tuning (fake quantization in the training engine).
 * Every int8 accuracy here is computed by the runtime a device runs. */
#include "nn/train_internal.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QAT_DEFAULT_EPOCHS 3
#define QAT_LR_SHARE 0.1       /* fine-tuning runs at a tenth of the training rate */
#define INT8_FEW_VALIDATION 20 /* fewer validation samples: a warning before converting */

/* One int8 model and its validation figures. */
typedef struct candidate {
    char method[16]; /* "minmax", "mse", "qat" */
    et_quant_result q;
    et_metrics m;
    float *probs; /* [n_val][classes] */
    bool ok;
} candidate;

/* Releases what c holds; its method name stays for the record. */
static void candidate_free(candidate *c)
{
    et_quant_result_free(&c->q);
    et_metrics_free(&c->m);
    free(c->probs);
    c->probs = NULL;
    c->ok = false;
}

/* Converts params with calibration how and runs the int8 plan over the
 * validation split. */
static et_status try_convert(et_trainer *t, const et_model *model, const float *params,
                             const et_train_options *opt, et_calibration how, const char *method,
                             candidate *c, et_error *err)
{
    memset(c, 0, sizeof *c);
    snprintf(c->method, sizeof c->method, "%s", method);
    et_quant_options qo = opt->quant;
    qo.calibration = how;
    c->probs = malloc((t->n_val + 1) * t->classes * sizeof *c->probs);
    et_status rc = c->probs
                       ? et_quant_convert(model, params, t->f, t->val, t->n_val, &qo, &c->q, err)
                       : et_error_set(err, ET_ENOMEM, "out of memory");
    if (rc == ET_OK)
        rc =
            et_plan_predict(c->q.int8.bytes, c->q.int8.size, t->f, t->val, t->n_val, c->probs, err);
    if (rc == ET_OK)
        rc = et_metrics_compute(t->truth, c->probs, t->n_val, t->classes, t->ids, &c->m, err);
    c->ok = rc == ET_OK;
    if (rc < 0)
        candidate_free(c);
    return rc;
}

/* Fine-tunes the best epoch's weights with int8 fake quantization of the
 * weights and of the activations on the grids of `grid` (a post-training
 * conversion), keeping the epoch with the lowest validation loss (measured
 * with fake quantization on) in params. ET_EINTR when Ctrl-C came before
 * the first epoch ended. */
static et_status qat_finetune(et_trainer *t, const et_quant_result *grid,
                              const et_train_options *opt, float *params, et_error *err)
{
    et_net *net = t->net;
    size_t np = et_net_param_count(net);
    memcpy(et_net_params(net), t->best, np * sizeof(float));
    et_status rc = et_net_set_fake_quant(net, grid->ranges, grid->n_ranges, err);
    if (rc < 0)
        return rc;
    et_net_optimizer_reset(net);
    et_optimizer optim = opt->optimizer == ET_OPT_SGD ? et_optimizer_sgd(0.9) : et_optimizer_adam();
    int epochs = opt->qat_epochs > 0 ? opt->qat_epochs : QAT_DEFAULT_EPOCHS;
    double lr = t->lr * QAT_LR_SHARE, best_loss = INFINITY;
    int done = 0;
    uint64_t step = 0;
    for (int epoch = 1; rc == ET_OK && epoch <= epochs; epoch++) {
        uint64_t s = (uint64_t)t->imp->seed * 0x9E3779B97F4A7C15ull + 0x7161740000ull + epoch;
        et_trainer_shuffle(t, &s);
        et_progress bar;
        et_progress_begin(&bar, "int8 fine-tuning", t->n_train);
        bool stopped = false;
        for (size_t start = 0; start < t->n_train && rc == ET_OK; start += (size_t)t->batch) {
            size_t b =
                t->n_train - start < (size_t)t->batch ? t->n_train - start : (size_t)t->batch;
            et_trainer_fill_batch(t, start, b, &s);
            rc = et_net_forward(net, t->x, (int)b, true,
                                (uint64_t)t->imp->seed * 7000003ull + step++, err);
            if (rc == ET_OK)
                rc = et_net_backward(net, t->labels, opt->label_smoothing, NULL, NULL, err);
            if (rc == ET_OK)
                et_net_step(net, &optim, lr);
            et_progress_update(&bar, start + b);
            if (et_interrupted()) {
                stopped = true;
                break;
            }
        }
        et_progress_end(&bar);
        if (rc < 0 || stopped)
            break;
        /* The statistics the conversion folds in: of this epoch's weights,
         * fake-quantized as the int8 model will compute. */
        rc = et_trainer_precise_batchnorm(t, (uint64_t)t->imp->seed * 7000003ull + step, err);
        if (rc < 0)
            break;
        et_metrics m;
        rc = et_trainer_validate(t, &m, err);
        if (rc < 0)
            break;
        et_log_info(
            "int8 fine-tuning epoch %d/%d: val_loss %.4f  val_acc %.2f%% (fake-quantized)%s", epoch,
            epochs, m.loss, 100 * m.accuracy, m.loss < best_loss ? "  *" : "");
        if (m.loss < best_loss) {
            best_loss = m.loss;
            memcpy(params, et_net_params(net), np * sizeof(float));
        }
        et_metrics_free(&m);
        done++;
    }
    et_net_set_fake_quant(net, NULL, 0, NULL);
    if (rc == ET_EINTR)
        rc = ET_OK;
    if (rc == ET_OK && done == 0)
        rc = et_error_set(err, ET_EINTR, "int8 fine-tuning was interrupted before an epoch ended");
    et_interrupt_clear(); /* what was learnt so far is still converted and saved */
    return rc;
}

/* Keeps the better of best and c (by validation accuracy; best on ties) in
 * best and releases the other. */
static void keep_better(candidate *best, candidate *c)
{
    if (c->ok && c->m.accuracy > best->m.accuracy) {
        candidate_free(best);
        *best = *c;
    } else {
        candidate_free(c);
    }
}

static json_t *tried_json(const candidate *c, const char *error)
{
    if (!c->ok)
        return json_pack("{s:s,s:s}", "method", c->method, "error", error);
    return json_pack("{s:s,s:f,s:f}", "method", c->method, "accuracy", c->m.accuracy, "loss",
                     c->m.loss);
}

char *et_train_make_int8(et_trainer *t, const et_model *model, const et_train_options *opt,
                         et_train_result *out, et_quant_result *q)
{
    et_error err = {0};
    json_t *tried = json_array();
    const double f32 = out->validation.accuracy;
    float *f32_probs = malloc((t->n_val + 1) * t->classes * sizeof *f32_probs);
    candidate best = {0};
    if (t->n_val < INT8_FEW_VALIDATION)
        et_log_warn("int8: calibrating on only %zu validation sample%s: the activation ranges "
                    "may not cover new data, and the int8 accuracy and the fallback decision "
                    "rest on %s alone (import more data or raise learning.validation_split)",
                    t->n_val, t->n_val == 1 ? "" : "s", t->n_val == 1 ? "it" : "them");
    et_status rc = f32_probs ? ET_OK : et_error_set(&err, ET_ENOMEM, "out of memory");
    if (rc == ET_OK) {
        memcpy(f32_probs, t->probs, t->n_val * t->classes * sizeof *f32_probs);
        rc = try_convert(t, model, t->best, opt, opt->quant.calibration,
                         et_calibration_name(opt->quant.calibration), &best, &err);
        json_array_append_new(tried, tried_json(&best, err.msg));
    }
    /* The float32 runtime plan always comes from the float weights. */
    et_plan f32_plan = {0};
    if (rc == ET_OK) {
        f32_plan = best.q.float32;
        memset(&best.q.float32, 0, sizeof best.q.float32);
    }
    bool over = rc == ET_OK && f32 - best.m.accuracy > opt->int8_max_drop;
    out->quant_fallback = opt->quant_auto && over;
    if (out->quant_fallback && opt->quant.calibration == ET_CALIBRATION_MINMAX) {
        candidate c;
        et_error e = {0};
        try_convert(t, model, t->best, opt, ET_CALIBRATION_MSE, "mse", &c, &e);
        json_array_append_new(tried, tried_json(&c, e.msg));
        keep_better(&best, &c);
    }
    over = rc == ET_OK && f32 - best.m.accuracy > opt->int8_max_drop;
    if (rc == ET_OK && (opt->qat || (opt->quant_auto && over))) {
        out->quant_fallback = out->quant_fallback || (opt->quant_auto && over);
        candidate c = {0};
        et_error e = {0};
        float *params = malloc(et_net_param_count(t->net) * sizeof *params + 1);
        et_status qr = params ? qat_finetune(t, &best.q, opt, params, &e)
                              : et_error_set(&e, ET_ENOMEM, "out of memory");
        /* The fine-tuned weights are calibrated as the best post-training
         * model was. */
        if (qr == ET_OK)
            try_convert(t, model, params, opt, best.q.options.calibration, "qat", &c, &e);
        else
            snprintf(c.method, sizeof c.method, "qat");
        json_array_append_new(tried, tried_json(&c, e.msg));
        keep_better(&best, &c);
        free(params);
    }
    char *text = NULL;
    if (rc == ET_OK) {
        *q = best.q;
        memset(&best.q, 0, sizeof best.q);
        et_plan_free(&q->float32);
        q->float32 = f32_plan;
        out->has_int8 = true;
        out->validation_int8 = best.m;
        memset(&best.m, 0, sizeof best.m);
        out->agreement = et_metrics_agreement(f32_probs, best.probs, t->n_val, t->classes);
        snprintf(out->quant_path, sizeof out->quant_path, "%s", best.method);
        out->calibration_samples = q->calibration_samples;
        out->plan_int8 = q->int8;
        out->plan_int8.bytes = NULL;
        out->plan_float32 = q->float32;
        out->plan_float32.bytes = NULL;
        json_t *j = json_pack(
            "{s:s,s:s,s:b,s:I,s:f,s:b,s:f,s:O,s:{s:I,s:I},s:{s:I,s:I}}", "method", best.method,
            "calibration", et_calibration_name(q->options.calibration), "bias_correction",
            q->options.bias_correction, "calibration_samples", (json_int_t)q->calibration_samples,
            "max_drop", opt->int8_max_drop, "fallback", out->quant_fallback, "agreement",
            out->agreement, "tried", tried, "int8_plan", "bytes", (json_int_t)q->int8.size,
            "arena_bytes", (json_int_t)q->int8.arena_size, "float32_plan", "bytes",
            (json_int_t)q->float32.size, "arena_bytes", (json_int_t)q->float32.arena_size);
        text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        candidate_free(&best);
    } else {
        snprintf(out->quant_error, sizeof out->quant_error, "%s", err.msg);
        et_plan_free(&f32_plan);
    }
    json_decref(tried);
    free(f32_probs);
    return text;
}
