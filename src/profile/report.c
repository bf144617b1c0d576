/* Profiling a project's model: a stored model version's plans, or the
 * current impulse's plans built untrained; and the report as JSON. */
#include "edgetrain/profile.h"

#include "edgetrain/data.h"
#include "edgetrain/nn.h"
#include "edgetrain/quant.h"
#include "edgetrain/train.h"
#include "profile/profile_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Classes assumed when the project has no labels yet (as `model summary`). */
#define PROFILE_DEFAULT_CLASSES 2

void et_profile_report_free(et_profile_report *r)
{
    if (!r)
        return;
    for (int p = 0; p < ET_PRECISION_COUNT; p++) {
        et_plan_profile_free(&r->plan[p]);
        et_cost_free(&r->cost[p]);
    }
    memset(r, 0, sizeof *r);
}

/* Profiles and prices both plans (int8 first in q, as et_quant_result). */
static et_status price(const et_plan *int8, const et_plan *f32, const et_target *t,
                       const char *engine, et_profile_report *out, et_error *err)
{
    const et_plan *plans[ET_PRECISION_COUNT] = {int8, f32};
    for (int p = 0; p < ET_PRECISION_COUNT; p++) {
        et_status rc = et_plan_profile_create(plans[p]->bytes, plans[p]->size, &out->plan[p], err);
        if (rc == ET_OK && out->plan[p].precision != (et_precision)p)
            rc = et_error_set(err, ET_ECORRUPT, "the %s plan holds a %s model",
                              et_precision_name((et_precision)p),
                              et_precision_name(out->plan[p].precision));
        if (rc == ET_OK)
            rc = et_profile_cost(&out->plan[p], t, engine, &out->cost[p], err);
        if (rc < 0)
            return rc;
    }
    return ET_OK;
}

et_status et_profile_impulse(const et_impulse *imp, int classes, int channels, const et_target *t,
                             const char *engine, et_profile_report *out, et_error *err)
{
    memset(out, 0, sizeof *out);
    const et_engine_costs *e = NULL;
    et_status rc = et_target_engine(t, engine, &e, err);
    if (rc < 0)
        return rc;
    et_model *m = NULL;
    rc = et_model_create_from_impulse(imp, classes, channels, &m, err);
    if (rc < 0)
        return rc;
    et_quant_result q;
    memset(&q, 0, sizeof q);
    rc = et_quant_convert_uncalibrated(m, NULL, &q, err);
    if (rc == ET_OK) {
        out->subject = ET_PROFILE_IMPULSE;
        snprintf(out->architecture, sizeof out->architecture, "%s", et_model_name(imp->model));
        out->classes = classes;
        out->model_params = et_model_totals_all(m).params;
        rc = price(&q.int8, &q.float32, t, engine, out, err);
    }
    et_quant_result_free(&q);
    et_model_destroy(m);
    if (rc < 0)
        et_profile_report_free(out);
    return rc;
}

/* Input channels of the raw block: the most common channel count among the
 * samples, 3 without samples (as `model summary`). */
static int raw_channels(const et_data_report *r)
{
    int best = 0;
    for (int c = 1; c <= 4; c++)
        if (r->channels[c] > 0 && (best == 0 || r->channels[c] > r->channels[best]))
            best = c;
    return best ? best : 3;
}

/* The current impulse and what its model is built for: the project's
 * classes (PROFILE_DEFAULT_CLASSES, assumed, without labels) and channels. */
static et_status current_inputs(et_project *p, et_impulse *imp, int64_t *version, int *classes,
                                int *channels, bool *assumed, et_error *err)
{
    et_status rc = et_impulse_current(p, imp, version, err);
    if (rc < 0)
        return rc;
    et_data_report *r = NULL;
    if ((rc = et_data_report_create(p, false, &r, err)) < 0)
        return rc;
    *classes = (int)r->n_labels;
    *assumed = *classes == 0;
    if (*assumed)
        *classes = PROFILE_DEFAULT_CLASSES;
    *channels = et_impulse_channels(imp);
    if (*channels == 0)
        *channels = raw_channels(r);
    et_data_report_destroy(r);
    return ET_OK;
}

static et_status profile_current_impulse(et_project *p, const et_target *t, const char *engine,
                                         et_profile_report *out, et_error *err)
{
    et_impulse imp;
    int64_t version = 0;
    int classes = 0, channels = 0;
    bool assumed = false;
    et_status rc = current_inputs(p, &imp, &version, &classes, &channels, &assumed, err);
    if (rc == ET_OK)
        rc = et_profile_impulse(&imp, classes, channels, t, engine, out, err);
    if (rc == ET_OK) {
        out->impulse_version = version;
        out->classes_assumed = assumed;
    }
    return rc;
}

et_status et_profile_project_variants(et_project *p, const et_target *t, const char *engine,
                                      et_profile_variants *out, et_error *err)
{
    memset(out, 0, sizeof *out);
    const et_engine_costs *e = NULL;
    et_impulse imp;
    et_status rc = et_target_engine(t, engine, &e, err);
    if (rc == ET_OK)
        rc = current_inputs(p, &imp, &out->impulse_version, &out->classes, &out->channels,
                            &out->classes_assumed, err);
    if (rc < 0)
        return rc;
    out->height = imp.height;
    out->width = imp.width;
    const et_model_kind kinds[] = {ET_MODEL_MOBILENETV1, ET_MODEL_MOBILENETV2};
    int n = 1;
    for (int k = 0; k < 2; k++) {
        const double *alphas;
        n += (int)et_model_alphas(kinds[k], &alphas);
    }
    out->v = calloc((size_t)n, sizeof *out->v);
    if (!out->v)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    for (int k = -1; k < 2; k++) {
        const double *alphas = NULL;
        size_t n_alpha = k < 0 ? 1 : et_model_alphas(kinds[k], &alphas);
        for (size_t a = 0; a < n_alpha; a++) {
            et_impulse vi = imp;
            if (k >= 0) {
                if (imp.model == kinds[k] && fabs(imp.alpha - alphas[a]) < 1e-9)
                    continue; /* the current impulse, already first */
                vi.model = kinds[k];
                vi.alpha = alphas[a];
            }
            et_profile_variant *v = &out->v[out->n++];
            v->current = k < 0;
            v->model = vi.model;
            v->alpha = vi.model == ET_MODEL_CONV ? 0 : vi.alpha;
            et_error verr = {0};
            /* A variant that cannot be built (an input under a MobileNet's
             * minimum) is reported as such; the others are still priced. */
            et_status vr = et_impulse_validate(&vi, &verr);
            if (vr == ET_OK)
                vr = et_profile_impulse(&vi, out->classes, out->channels, t, engine, &v->report,
                                        &verr);
            if (vr == ET_ENOMEM || vr == ET_EINTR) {
                et_profile_variants_free(out);
                return et_error_set(err, vr, "%s", verr.msg);
            }
            if (vr < 0)
                snprintf(v->error, sizeof v->error, "%s", verr.msg);
            else
                v->report.impulse_version = out->impulse_version;
        }
    }
    return ET_OK;
}

void et_profile_variants_free(et_profile_variants *v)
{
    if (!v)
        return;
    for (int i = 0; i < v->n; i++)
        et_profile_report_free(&v->v[i].report);
    free(v->v);
    memset(v, 0, sizeof *v);
}

static et_status profile_model(et_project *p, et_loaded_model *m, const et_target *t,
                               const char *engine, et_profile_report *out, et_error *err)
{
    et_plan f32;
    memset(&f32, 0, sizeof f32);
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/models/%lld/model_float32.etrt", et_project_root(p),
             (long long)m->info.id);
    et_status rc = ET_OK;
    if (stat(path, &st) == 0)
        rc = et_plan_load(path, &f32, err);
    et_quant_result q;
    memset(&q, 0, sizeof q);
    bool rebuild = rc == ET_OK && (!f32.bytes || !m->int8.bytes);
    if (rebuild)
        rc = et_quant_convert_uncalibrated(m->model, m->params, &q, err);
    if (rc == ET_OK) {
        out->subject = ET_PROFILE_MODEL;
        out->model_id = m->info.id;
        out->impulse_version = m->info.impulse_version;
        snprintf(out->architecture, sizeof out->architecture, "%s",
                 et_model_name(m->impulse.model));
        out->classes = (int)m->n_labels;
        out->plans_rebuilt = rebuild;
        out->model_params = et_model_totals_all(m->model).params;
        rc = price(m->int8.bytes ? &m->int8 : &q.int8, f32.bytes ? &f32 : &q.float32, t, engine,
                   out, err);
    }
    et_quant_result_free(&q);
    et_plan_free(&f32);
    return rc;
}

et_status et_profile_project(et_project *p, et_profile_subject subject, int64_t model_id,
                             const et_target *t, const char *engine, et_profile_report *out,
                             et_error *err)
{
    memset(out, 0, sizeof *out);
    const et_engine_costs *e = NULL;
    et_status rc = et_target_engine(t, engine, &e, err);
    if (rc < 0 || subject == ET_PROFILE_IMPULSE)
        return rc < 0 ? rc : profile_current_impulse(p, t, engine, out, err);
    et_loaded_model m;
    memset(&m, 0, sizeof m);
    rc = et_model_store_load(p, subject == ET_PROFILE_MODEL ? model_id : 0, &m, err);
    if (rc == ET_ENOTFOUND && subject == ET_PROFILE_AUTO)
        return profile_current_impulse(p, t, engine, out, err);
    if (rc < 0)
        return rc;
    if (subject == ET_PROFILE_AUTO) {
        /* Only a model of the current impulse says what the impulse costs. */
        et_impulse imp;
        int64_t version = 0;
        rc = et_impulse_current(p, &imp, &version, err);
        if (rc == ET_OK && (version != m.info.impulse_version || !strcmp(m.info.status, "stale"))) {
            et_loaded_model_free(&m);
            return profile_current_impulse(p, t, engine, out, err);
        }
    }
    if (rc == ET_OK)
        rc = profile_model(p, &m, t, engine, out, err);
    et_loaded_model_free(&m);
    if (rc < 0)
        et_profile_report_free(out);
    return rc;
}

/* ------------------------------------------------------------------------
 * JSON.
 */

static json_t *layers_json(const et_plan_profile *pp, const et_cost *c)
{
    json_t *a = json_array();
    for (int i = 0; a && i < pp->n_layers; i++) {
        const et_layer_profile *l = &pp->layers[i];
        json_t *o = json_pack("{s:i,s:s,s:s,s:b,s:[iii],s:I,s:I,s:I,s:I,s:I,s:f}", "op", l->op,
                              "kind", l->op_name, "cost_kind", et_cost_kind_name(l->cost.kind),
                              "pointwise", l->pointwise, "output", l->out_h, l->out_w, l->out_c,
                              "macs", (json_int_t)l->cost.macs, "elements",
                              (json_int_t)l->cost.elements, "params", (json_int_t)l->params,
                              "weight_bytes", (json_int_t)l->weight_bytes, "quant_param_bytes",
                              (json_int_t)l->quant_bytes, "latency_ms", c->layer_ms[i]);
        if (o && l->k_h)
            json_object_set_new(o, "window", json_pack("[iii]", l->k_h, l->k_w, l->stride));
        if (o && l->cost.pooled) /* a conv2d_maxpool: the pool's taps */
            json_object_set_new(o, "pooled", json_integer((json_int_t)l->cost.pooled));
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *precision_json(const et_plan_profile *pp, const et_cost *c, bool layers)
{
    json_t *o = json_pack(
        "{s:s,s:f,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:b}", "engine", c->engine,
        "latency_ms", c->latency_ms, "ram_bytes", (json_int_t)c->ram_bytes, "input_bytes",
        (json_int_t)pp->input_bytes, "output_bytes", (json_int_t)pp->output_bytes, "rom_bytes",
        (json_int_t)c->flash_bytes, "plan_bytes", (json_int_t)pp->plan_bytes, "weight_bytes",
        (json_int_t)pp->weight_bytes, "quant_param_bytes", (json_int_t)pp->quant_bytes,
        "table_bytes", (json_int_t)pp->table_bytes, "code_bytes", (json_int_t)c->code_bytes, "macs",
        (json_int_t)pp->macs, "params", (json_int_t)pp->params, "fits_ram", c->fits_ram,
        "fits_flash", c->fits_flash);
    if (o && layers)
        json_object_set_new(o, "layers", layers_json(pp, c));
    return o;
}

char *et_profile_variants_to_json(const et_profile_variants *vs, const et_target *t)
{
    json_t *a = json_array();
    for (int i = 0; a && i < vs->n; i++) {
        const et_profile_variant *v = &vs->v[i];
        const et_profile_report *r = &v->report;
        json_t *o = json_pack("{s:s,s:b}", "model", et_model_name(v->model), "current", v->current);
        if (o && v->model != ET_MODEL_CONV)
            json_object_set_new(o, "alpha", json_real(v->alpha));
        if (o && v->error[0]) {
            json_object_set_new(o, "error", json_string(v->error));
        } else if (o) {
            for (int p = 0; p < ET_PRECISION_COUNT; p++)
                json_object_set_new(o, et_precision_name((et_precision)p),
                                    precision_json(&r->plan[p], &r->cost[p], false));
        }
        json_array_append_new(a, o);
    }
    json_t *o = json_pack("{s:s,s:I,s:[iii],s:i,s:b,s:o}", "target", t->name, "impulse_version",
                          (json_int_t)vs->impulse_version, "input", vs->height, vs->width,
                          vs->channels, "classes", vs->classes, "classes_assumed",
                          vs->classes_assumed, "variants", a);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(o);
    return s;
}

char *et_profile_report_to_json(const et_profile_report *r, const et_target *t, bool layers)
{
    json_t *o = json_pack(
        "{s:s,s:s,s:f,s:I,s:I,s:s,s:o,s:o,s:s,s:i,s:b,s:b,s:I,s:o,s:o}", "target", t->name,
        "engine", r->cost[ET_PRECISION_INT8].engine, "clock_hz", t->clock_hz, "target_ram_bytes",
        (json_int_t)t->ram_bytes, "target_flash_bytes", (json_int_t)t->flash_bytes, "profiled",
        r->subject == ET_PROFILE_MODEL ? "model" : "impulse", "model_id",
        r->model_id ? json_integer(r->model_id) : json_null(), "impulse_version",
        r->impulse_version ? json_integer(r->impulse_version) : json_null(), "architecture",
        r->architecture, "classes", r->classes, "classes_assumed", r->classes_assumed,
        "plans_rebuilt", r->plans_rebuilt, "model_params", (json_int_t)r->model_params, "float32",
        precision_json(&r->plan[ET_PRECISION_FLOAT32], &r->cost[ET_PRECISION_FLOAT32], layers),
        "int8", precision_json(&r->plan[ET_PRECISION_INT8], &r->cost[ET_PRECISION_INT8], layers));
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(o);
    return s;
}
