/* Classification metrics. */
#include "edgetrain/metrics.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static size_t argmax(const float *p, size_t classes)
{
    size_t best = 0;
    for (size_t k = 1; k < classes; k++)
        if (p[k] > p[best])
            best = k;
    return best;
}

void et_metrics_free(et_metrics *m)
{
    if (!m)
        return;
    free(m->confusion);
    free(m->precision);
    free(m->recall);
    free(m->f1);
    free(m->wrong);
    memset(m, 0, sizeof *m);
}

et_status et_metrics_compute(const int32_t *truth, const float *probs, size_t n, size_t classes,
                             const int64_t *ids, et_metrics *out, et_error *err)
{
    memset(out, 0, sizeof *out);
    if (classes == 0)
        return et_error_set(err, ET_EINVAL, "metrics need at least one class");
    for (size_t i = 0; i < n; i++)
        if (truth[i] < 0 || (size_t)truth[i] >= classes)
            return et_error_set(err, ET_EINVAL, "row %zu: class %d is outside 0..%zu", i,
                                truth[i], classes - 1);
    out->n = n;
    out->classes = classes;
    out->confusion = calloc(classes * classes, sizeof *out->confusion);
    out->precision = calloc(classes, sizeof *out->precision);
    out->recall = calloc(classes, sizeof *out->recall);
    out->f1 = calloc(classes, sizeof *out->f1);
    out->wrong = malloc((n + 1) * sizeof *out->wrong);
    if (!out->confusion || !out->precision || !out->recall || !out->f1 || !out->wrong) {
        et_metrics_free(out);
        return et_error_set(err, ET_ENOMEM, "out of memory");
    }
    double loss = 0;
    size_t right = 0;
    for (size_t i = 0; i < n; i++) {
        const float *p = probs + i * classes;
        size_t pred = argmax(p, classes);
        out->confusion[(size_t)truth[i] * classes + pred]++;
        if (pred == (size_t)truth[i])
            right++;
        else
            out->wrong[out->n_wrong++] = ids ? ids[i] : (int64_t)i;
        loss -= log(fmax((double)p[truth[i]], 1e-7));
    }
    out->accuracy = n ? (double)right / (double)n : 0;
    out->loss = n ? loss / (double)n : 0;
    size_t with_samples = 0;
    for (size_t k = 0; k < classes; k++) {
        int64_t tp = out->confusion[k * classes + k], predicted = 0, actual = 0;
        for (size_t j = 0; j < classes; j++) {
            predicted += out->confusion[j * classes + k];
            actual += out->confusion[k * classes + j];
        }
        out->precision[k] = predicted ? (double)tp / (double)predicted : 0;
        out->recall[k] = actual ? (double)tp / (double)actual : 0;
        double s = out->precision[k] + out->recall[k];
        out->f1[k] = s > 0 ? 2 * out->precision[k] * out->recall[k] / s : 0;
        if (actual) {
            out->macro_f1 += out->f1[k];
            with_samples++;
        }
    }
    out->macro_f1 = with_samples ? out->macro_f1 / (double)with_samples : 0;
    return ET_OK;
}

double et_metrics_agreement(const float *probs_a, const float *probs_b, size_t n, size_t classes)
{
    size_t same = 0;
    for (size_t i = 0; i < n; i++)
        same += argmax(probs_a + i * classes, classes) == argmax(probs_b + i * classes, classes);
    return n ? (double)same / (double)n : 0;
}

char *et_metrics_to_json(const et_metrics *m, const char *const *label_names)
{
    json_t *confusion = json_array(), *per_class = json_array(), *wrong = json_array();
    json_t *f1 = json_object();
    for (size_t k = 0; k < m->classes; k++) {
        json_t *row = json_array();
        int64_t support = 0;
        for (size_t j = 0; j < m->classes; j++) {
            json_array_append_new(row, json_integer(m->confusion[k * m->classes + j]));
            support += m->confusion[k * m->classes + j];
        }
        json_array_append_new(confusion, row);
        char key[32];
        const char *name = label_names ? label_names[k] : NULL;
        if (!name) {
            snprintf(key, sizeof key, "%zu", k);
            name = key;
        }
        json_object_set_new(f1, name, json_real(m->f1[k]));
        json_array_append_new(per_class,
                              json_pack("{s:s,s:f,s:f,s:f,s:I}", "label",
                                        label_names ? label_names[k] : "", "precision",
                                        m->precision[k], "recall", m->recall[k], "f1", m->f1[k],
                                        "support", (json_int_t)support));
    }
    for (size_t i = 0; i < m->n_wrong; i++)
        json_array_append_new(wrong, json_integer(m->wrong[i]));
    json_t *o = json_pack("{s:I,s:f,s:f,s:f,s:o,s:o,s:o,s:o}", "samples", (json_int_t)m->n,
                          "accuracy", m->accuracy, "loss", m->loss, "macro_f1", m->macro_f1,
                          "confusion", confusion, "f1", f1, "classes", per_class,
                          "misclassified", wrong);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(o);
    return s;
}
