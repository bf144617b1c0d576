/* Calibration: the float model runs over the calibration rows (the training
 * engine in inference mode, fast kernels) and every tensor of the lowered
 * graph records its range, its channel sums and, for MSE clipping, a
 * histogram. Then each tensor gets its int8 scale and zero point. */
#include "quant/quant_internal.h"

#include "edgetrain/net.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CALIB_BATCH 64

typedef et_status (*visit_fn)(et_qtensor *t, const float *v, size_t rows, et_error *err);

static et_status visit_range(et_qtensor *t, const float *v, size_t rows, et_error *err)
{
    size_t c = (size_t)t->c;
    for (size_t r = 0; r < rows; r++)
        for (size_t k = 0; k < c; k++) {
            float x = v[r * c + k];
            if (!isfinite(x))
                return et_error_set(err, ET_EINVAL,
                                    "calibration: the model computes a non-finite value in "
                                    "layer %d; retrain it",
                                    t->node);
            if (x < t->lo)
                t->lo = x;
            if (x > t->hi)
                t->hi = x;
            t->ch_sum[k] += x;
        }
    t->count += (double)rows;
    return ET_OK;
}

static et_status visit_hist(et_qtensor *t, const float *v, size_t rows, et_error *err)
{
    (void)err;
    size_t n = rows * (size_t)t->c;
    double span = (double)t->hi - t->lo;
    for (size_t i = 0; i < n; i++) {
        double at = span > 0 ? (v[i] - t->lo) / span * ET_QHIST_BINS : 0;
        int b = at < 0 ? 0 : at >= ET_QHIST_BINS ? ET_QHIST_BINS - 1 : (int)at;
        t->hist[b]++;
    }
    return ET_OK;
}

/* One pass of the float model over the rows; fn sees every tensor's values. */
static et_status pass(et_qgraph *g, et_net *net, const et_row_source *src, float *x, visit_fn fn,
                      et_error *err)
{
    size_t row_floats = (size_t)src->h * src->w * src->c, n = src->n;
    for (size_t start = 0; start < n; start += CALIB_BATCH) {
        size_t b = n - start < CALIB_BATCH ? n - start : CALIB_BATCH;
        for (size_t i = 0; i < b; i++)
            memcpy(x + i * row_floats, src->row(src->ctx, start + i), row_floats * sizeof(float));
        et_status rc = et_net_forward(net, x, (int)b, false, 0, err);
        for (int k = 0; rc == ET_OK && k < g->n_t; k++) {
            et_qtensor *t = &g->t[k];
            rc = fn(t, et_net_node_output(net, t->node), b * (size_t)t->h * t->w, err);
        }
        if (rc < 0)
            return rc;
        if (et_interrupted())
            return et_error_set(err, ET_EINTR, "interrupted");
    }
    return ET_OK;
}

/* Quantization error (squared, summed over the histogram) of the range
 * [lo, hi] for values spread as the histogram over [t->lo, t->hi]. Each
 * bin's values are taken at its centre. */
static double range_error(const et_qtensor *t, double lo, double hi)
{
    double scale = (hi - lo) / 255.0, bin = ((double)t->hi - t->lo) / ET_QHIST_BINS, e = 0;
    for (int b = 0; b < ET_QHIST_BINS; b++) {
        if (!t->hist[b])
            continue;
        double v = t->lo + (b + 0.5) * bin, q;
        if (v < lo)
            q = lo;
        else if (v > hi)
            q = hi;
        else
            q = lo + round((v - lo) / scale) * scale;
        e += (double)t->hist[b] * (v - q) * (v - q);
    }
    return e;
}

/* The clipping range with the least error: the ends move in by the same
 * share of their distance from 0, in 1/128 steps down to a quarter. */
static void choose_mse_range(et_qtensor *t)
{
    double best_lo = t->lo, best_hi = t->hi, best = range_error(t, t->lo, t->hi);
    for (int s = 1; s <= 96; s++) {
        double k = 1.0 - s / 128.0, lo = t->lo * k, hi = t->hi * k;
        if (hi - lo <= 0)
            break;
        double e = range_error(t, lo, hi);
        if (e < best) {
            best = e;
            best_lo = lo;
            best_hi = hi;
        }
    }
    t->lo = (float)best_lo;
    t->hi = (float)best_hi;
}

/* scale and zero point of a range, TFLite's way: the range always holds 0,
 * and 0 is exactly representable (the zero point is rounded, the scale kept). */
static void set_qparams(et_qtensor *t)
{
    double lo = t->lo < 0 ? t->lo : 0, hi = t->hi > 0 ? t->hi : 0;
    if (hi - lo < 1e-8)
        hi = lo + 1e-8;
    double scale = (hi - lo) / 255.0;
    double zp = -128.0 - lo / scale;
    t->scale = (float)scale;
    t->zero_point = zp < -128 ? -128 : zp > 127 ? 127 : (int32_t)lround(zp);
}

et_status et_qgraph_calibrate(et_qgraph *g, const et_model *m, const float *params,
                              const et_row_source *src, et_calibration how, et_error *err)
{
    if (src->n == 0)
        return et_error_set(err, ET_EINVAL, "calibration needs at least one sample");
    int h = src->h, w = src->w, c = src->c;
    et_shape in = et_model_input_shape(m);
    if (in.h != h || in.w != w || in.c != c)
        return et_error_set(err, ET_EINVAL,
                            "the features (%dx%dx%d) do not fit the model (%dx%dx%d)", h, w, c,
                            in.h, in.w, in.c);
    for (int k = 0; k < g->n_t; k++) {
        et_qtensor *t = &g->t[k];
        t->lo = FLT_MAX;
        t->hi = -FLT_MAX;
        t->count = 0;
        free(t->ch_sum);
        t->ch_sum = calloc((size_t)t->c, sizeof *t->ch_sum);
        if (!t->ch_sum)
            return et_error_set(err, ET_ENOMEM, "out of memory");
    }
    /* An inference net that keeps the outputs of the lowered graph's tensors. */
    et_net *net = NULL;
    float *x = malloc((size_t)CALIB_BATCH * h * w * c * sizeof *x);
    int *keep = malloc((size_t)(g->n_t + 1) * sizeof *keep);
    for (int k = 0; keep && k < g->n_t; k++)
        keep[k] = g->t[k].node;
    et_status rc = x && keep ? et_net_create_inference(m, CALIB_BATCH, keep, g->n_t, &net, err)
                             : et_error_set(err, ET_ENOMEM, "out of memory");
    free(keep);
    if (rc == ET_OK) {
        memcpy(et_net_params(net), params, et_net_param_count(net) * sizeof(float));
        rc = pass(g, net, src, x, visit_range, err);
    }
    if (rc == ET_OK && how == ET_CALIBRATION_MSE) {
        for (int k = 0; rc == ET_OK && k < g->n_t; k++) {
            free(g->t[k].hist);
            g->t[k].hist = calloc(ET_QHIST_BINS, sizeof *g->t[k].hist);
            if (!g->t[k].hist)
                rc = et_error_set(err, ET_ENOMEM, "out of memory");
        }
        if (rc == ET_OK)
            rc = pass(g, net, src, x, visit_hist, err);
        /* The model's input keeps its full range: clipping pixels saves nothing. */
        for (int k = 0; rc == ET_OK && k < g->n_t; k++)
            if (k != g->input)
                choose_mse_range(&g->t[k]);
    }
    et_net_destroy(net);
    free(x);
    if (rc < 0)
        return rc;
    for (int k = 0; k < g->n_t; k++)
        set_qparams(&g->t[k]);
    /* Tensors that must share their input's parameters take them (in graph
     * order, so chains resolve); the softmax output is fixed by the spec. */
    for (int k = 0; k < g->n_t; k++)
        if (g->t[k].same_q_as >= 0) {
            g->t[k].scale = g->t[g->t[k].same_q_as].scale;
            g->t[k].zero_point = g->t[g->t[k].same_q_as].zero_point;
        }
    g->t[g->output].scale = 1.0f / 256.0f;
    g->t[g->output].zero_point = -128;
    return ET_OK;
}
