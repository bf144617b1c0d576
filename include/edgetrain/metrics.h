/*
 * edgetrain metrics: accuracy, loss, confusion matrix, precision / recall /
 * F1 per class, and the samples a model got wrong.
 *
 *     et_metrics m;
 *     et_metrics_compute(truth, probs, n, classes, ids, &m, &err);
 *     printf("accuracy %.1f%%\n", 100 * m.accuracy);
 *     et_metrics_free(&m);
 */
#ifndef EDGETRAIN_METRICS_H
#define EDGETRAIN_METRICS_H

#include "edgetrain/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct et_metrics {
    size_t n;            /* samples evaluated */
    size_t classes;
    double accuracy;     /* share of argmax(probs) == truth; 0 when n is 0 */
    double loss;         /* mean cross-entropy -log(max(p_truth, 1e-7)) */
    int64_t *confusion;  /* classes x classes, row = true class, column = predicted */
    double *precision;   /* per class; 0 when the class was never predicted */
    double *recall;      /* per class; 0 when the class has no samples */
    double *f1;          /* per class; 0 when precision + recall is 0 */
    double macro_f1;     /* mean F1 over the classes that have samples */
    int64_t *wrong;      /* ids of misclassified samples, in input order */
    size_t n_wrong;
} et_metrics;

/* Computes the metrics of n predictions.
 *   truth  n class indices in 0..classes-1
 *   probs  n x classes probabilities (rows need not sum exactly to 1)
 *   ids    n sample ids for the misclassified list, or NULL (then indices)
 * Everything in out is malloc'ed; release with et_metrics_free.
 * ET_EINVAL when a truth value is out of range (the message names the row). */
et_status et_metrics_compute(const int32_t *truth, const float *probs, size_t n, size_t classes,
                             const int64_t *ids, et_metrics *out, et_error *err);

/* Share of rows where two prediction sets agree on the argmax (e.g. float32
 * against int8). */
double et_metrics_agreement(const float *probs_a, const float *probs_b, size_t n, size_t classes);

/* JSON object: {"samples", "accuracy", "loss", "macro_f1", "confusion": [[...]],
 * "f1": {"<label>": f1}, "classes": [{"label", "precision", "recall", "f1", "support"}],
 * "misclassified": [ids]}.
 * label_names: classes names (borrowed). Returns a malloc'ed string or NULL. */
char *et_metrics_to_json(const et_metrics *m, const char *const *label_names);

void et_metrics_free(et_metrics *m);

#ifdef __cplusplus
}
#endif
#endif
