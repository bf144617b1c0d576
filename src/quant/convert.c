/* et_quant_convert: lower, calibrate, emit the int8 and the float32 plans. */
#include "quant/quant_internal.h"

#include <stdlib.h>
#include <string.h>

const char *et_calibration_name(et_calibration c)
{
    switch (c) {
    case ET_CALIBRATION_MINMAX: return "minmax";
    case ET_CALIBRATION_MSE: return "mse";
    }
    return "?";
}

et_quant_options et_quant_defaults(void)
{
    et_quant_options o = {.calibration = ET_CALIBRATION_MINMAX,
                          .bias_correction = true,
                          .max_calibration_samples = 1000};
    return o;
}

void et_quant_result_free(et_quant_result *r)
{
    if (!r)
        return;
    et_plan_free(&r->int8);
    et_plan_free(&r->float32);
    free(r->calibration_rows);
    r->calibration_rows = NULL;
    free(r->ranges);
    r->ranges = NULL;
}

et_status et_quant_convert(const et_model *m, const float *params, const et_features *f,
                           const size_t *rows, size_t n, const et_quant_options *opt,
                           et_quant_result *out, et_error *err)
{
    memset(out, 0, sizeof *out);
    et_quant_options o = opt ? *opt : et_quant_defaults();
    if (n == 0)
        return et_error_set(err, ET_EINVAL,
                            "quantization needs calibration samples (the "
                            "validation split is empty)");
    /* An even spread over the rows given (they come shuffled per label). */
    size_t take =
        o.max_calibration_samples && n > o.max_calibration_samples ? o.max_calibration_samples : n;
    size_t *sel = malloc(take * sizeof *sel);
    if (!sel)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    for (size_t i = 0; i < take; i++)
        sel[i] = rows[(size_t)((double)i * (double)n / (double)take)];
    et_qgraph g;
    et_status rc = et_qgraph_lower(m, params, &g, err);
    if (rc == ET_OK) {
        et_feature_rows ctx;
        et_row_source src = et_row_source_features(&ctx, f, sel, take);
        rc = et_qgraph_calibrate(&g, m, params, &src, o.calibration, err);
    }
    if (rc == ET_OK)
        rc = et_qgraph_emit(&g, ETRT_INT8, o.bias_correction ? ET_EMIT_BIAS_CORRECTION : 0, &out->int8,
                            err);
    if (rc == ET_OK)
        rc = et_qgraph_emit(&g, ETRT_FLOAT32, 0, &out->float32, err);
    /* The activations' grids, for quantization-aware training: every tensor
     * but the softmax output (a probability the loss needs unrounded) and
     * reshapes (the same values as their input). */
    out->ranges = rc == ET_OK ? calloc((size_t)g.n_t + 1, sizeof *out->ranges) : NULL;
    if (rc == ET_OK && !out->ranges)
        rc = et_error_set(err, ET_ENOMEM, "out of memory");
    for (int k = 0; rc == ET_OK && k < g.n_t; k++)
        if (k != g.output && g.t[k].alias < 0)
            out->ranges[out->n_ranges++] =
                (et_fake_quant){g.t[k].node, g.t[k].scale, g.t[k].zero_point};
    et_qgraph_free(&g);
    out->calibration_rows = sel;
    out->calibration_samples = take;
    out->options = o;
    if (rc < 0)
        et_quant_result_free(out);
    return rc;
}

et_status et_quant_convert_uncalibrated(const et_model *m, const float *params,
                                        et_quant_result *out, et_error *err)
{
    memset(out, 0, sizeof *out);
    out->options = et_quant_defaults();
    size_t n = (size_t)et_model_totals_all(m).params;
    float *zeros = params ? NULL : calloc(n + 1, sizeof *zeros);
    if (!params && !zeros)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    et_qgraph g;
    et_status rc = et_qgraph_lower(m, params ? params : zeros, &g, err);
    for (int k = 0; rc == ET_OK && k < g.n_t; k++) {
        g.t[k].scale = 1.0f / 128.0f;
        g.t[k].zero_point = 0;
    }
    if (rc == ET_OK) {
        g.t[g.output].scale = 1.0f / 256.0f;
        g.t[g.output].zero_point = -128;
        rc = et_qgraph_emit(&g, ETRT_INT8, 0, &out->int8, err);
    }
    if (rc == ET_OK)
        rc = et_qgraph_emit(&g, ETRT_FLOAT32, 0, &out->float32, err);
    et_qgraph_free(&g);
    free(zeros);
    if (rc < 0)
        et_quant_result_free(out);
    return rc;
}
