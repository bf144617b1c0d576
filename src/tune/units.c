/* Small pieces of the tuner's vocabulary: sizes and latencies as people
 * write them, status and objective names, the defaults. */
#include "tune/tune_internal.h"

#include <ctype.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

et_status et_parse_size(const char *text, int64_t *bytes, et_error *err)
{
    const char *forms = "bytes, or k/M/G with an optional B or iB (128k = 128 KiB = 131072 bytes)";
    char *end = NULL;
    double v = text ? strtod(text, &end) : NAN;
    if (!text || end == text || !isfinite(v))
        return et_error_set(err, ET_EINVAL, "'%s' is not a size: expected %s", text ? text : "",
                            forms);
    while (*end == ' ')
        end++;
    double unit = 1;
    if (*end) {
        char u = (char)toupper((unsigned char)*end);
        unit = u == 'K' ? 1024.0 : u == 'M' ? 1048576.0 : u == 'G' ? 1073741824.0 : 0;
        if (unit == 0 && u == 'B' && end[1] == '\0')
            unit = 1;
        else if (unit == 0)
            return et_error_set(err, ET_EINVAL, "'%s': unknown unit '%s'; expected %s", text, end,
                                forms);
        else if (end[1] && strcasecmp(end + 1, "b") && strcasecmp(end + 1, "ib"))
            return et_error_set(err, ET_EINVAL, "'%s': unknown unit '%s'; expected %s", text, end,
                                forms);
    }
    double b = v * unit;
    if (!(b >= 1) || b > 9e18)
        return et_error_set(err, ET_EINVAL, "'%s': a size must be at least 1 byte", text);
    *bytes = (int64_t)llround(b);
    return ET_OK;
}

et_status et_parse_latency(const char *text, double *ms, et_error *err)
{
    char *end = NULL;
    double v = text ? strtod(text, &end) : NAN;
    if (!text || end == text || !isfinite(v))
        return et_error_set(err, ET_EINVAL,
                            "'%s' is not a latency: expected e.g. 100ms, 0.5s, 250us or 100 (ms)",
                            text ? text : "");
    while (*end == ' ')
        end++;
    double scale = !*end || !strcasecmp(end, "ms") ? 1
                   : !strcasecmp(end, "s")         ? 1000
                   : !strcasecmp(end, "us")        ? 0.001
                                                   : 0;
    if (scale == 0)
        return et_error_set(err, ET_EINVAL, "'%s': unknown unit '%s'; expected ms, s or us", text,
                            end);
    if (!(v > 0))
        return et_error_set(err, ET_EINVAL, "'%s': a latency must be more than 0", text);
    *ms = v * scale;
    return ET_OK;
}

static const char *const status_names[ET_TRIAL_STATUS_COUNT] = {
    "pending", "running", "waiting", "done", "failed", "pruned", "skipped"};

const char *et_trial_status_name(et_trial_status s)
{
    return (unsigned)s < ET_TRIAL_STATUS_COUNT ? status_names[s] : "?";
}

const char *et_tune_objective_name(et_tune_objective o)
{
    return o == ET_TUNE_FLOAT32_ACCURACY ? "float32-accuracy" : "int8-accuracy";
}

et_status et_tune_objective_parse(const char *s, et_tune_objective *out, et_error *err)
{
    if (s && !strcmp(s, "int8-accuracy"))
        *out = ET_TUNE_INT8_ACCURACY;
    else if (s && !strcmp(s, "float32-accuracy"))
        *out = ET_TUNE_FLOAT32_ACCURACY;
    else
        return et_error_set(err, ET_EINVAL,
                            "objective '%s': allowed values are int8-accuracy, float32-accuracy",
                            s ? s : "");
    return ET_OK;
}

const char *et_tune_sampler_name(et_tune_sampler s)
{
    return s == ET_TUNE_SAMPLER_RANDOM ? "random" : "model";
}

et_status et_tune_sampler_parse(const char *s, et_tune_sampler *out, et_error *err)
{
    if (s && !strcmp(s, "model"))
        *out = ET_TUNE_SAMPLER_MODEL;
    else if (s && !strcmp(s, "random"))
        *out = ET_TUNE_SAMPLER_RANDOM;
    else
        return et_error_set(err, ET_EINVAL, "sampler '%s': allowed values are model, random",
                            s ? s : "");
    return ET_OK;
}

et_precision et_tune_objective_precision(et_tune_objective o)
{
    return o == ET_TUNE_FLOAT32_ACCURACY ? ET_PRECISION_FLOAT32 : ET_PRECISION_INT8;
}

et_tune_options et_tune_defaults(void)
{
    return (et_tune_options){.objective = ET_TUNE_INT8_ACCURACY, .seed = -1, .eta = 3, .rungs = 3};
}

/* Measured (docs/ARCHITECTURE.md, "Tuner"): trials in separate processes
 * with one thread each scale with the cores (they share nothing), while one
 * trial's OpenMP threads synchronise at every layer, which pays off less for
 * the small models a tuner mostly trains and collapses when the machine is
 * shared. A trial that trains alone still gets every core (threads_now in
 * scheduler.c). */
int et_tune_default_jobs(void)
{
    int cores = omp_get_max_threads();
    return cores < 1 ? 1 : cores > 64 ? 64 : cores;
}

double et_tune_trial_objective(const et_tune_trial *t, et_tune_objective o)
{
    if (!t->trained)
        return -1;
    if (o == ET_TUNE_INT8_ACCURACY)
        return t->has_int8 ? t->val_accuracy[ET_PRECISION_INT8] : -1;
    return t->val_accuracy[ET_PRECISION_FLOAT32];
}

void et_pareto_front(const double *accuracy, const double *latency, const double *ram,
                     const bool *valid, size_t n, bool *front)
{
    for (size_t i = 0; i < n; i++) {
        front[i] = !valid || valid[i];
        for (size_t j = 0; j < n && front[i]; j++) {
            if (j == i || (valid && !valid[j]))
                continue;
            bool no_worse =
                accuracy[j] >= accuracy[i] && latency[j] <= latency[i] && ram[j] <= ram[i];
            bool better = accuracy[j] > accuracy[i] || latency[j] < latency[i] || ram[j] < ram[i];
            if (no_worse && better)
                front[i] = false;
        }
    }
}
