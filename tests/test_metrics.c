/* metrics: accuracy, loss, confusion, precision/recall/F1, agreement. */
#include "testutil.h"

#include "edgetrain/metrics.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

Test(metrics, hand_computed_case)
{
    /* 5 samples, 3 classes. Predictions: 0,0,1,2,2 for truths 0,1,1,2,0. */
    const int32_t truth[] = {0, 1, 1, 2, 0};
    const float probs[] = {0.7f, 0.2f, 0.1f, 0.5f, 0.4f, 0.1f, 0.1f, 0.8f, 0.1f,
                           0.2f, 0.2f, 0.6f, 0.1f, 0.3f, 0.6f};
    const int64_t ids[] = {10, 11, 12, 13, 14};
    et_metrics m;
    et_error err = {0};
    cr_assert_eq(et_metrics_compute(truth, probs, 5, 3, ids, &m, &err), 0, "%s", err.msg);
    cr_assert_float_eq(m.accuracy, 3.0 / 5.0, 1e-12);
    double loss = -(log(0.7) + log(0.4) + log(0.8) + log(0.6) + log(0.1)) / 5;
    cr_assert_float_eq(m.loss, loss, 1e-6);
    const int64_t confusion[] = {1, 0, 1, 1, 1, 0, 0, 0, 1};
    cr_assert_arr_eq(m.confusion, confusion, sizeof confusion);
    cr_assert_float_eq(m.precision[0], 0.5, 1e-12);
    cr_assert_float_eq(m.recall[0], 0.5, 1e-12);
    cr_assert_float_eq(m.precision[1], 1.0, 1e-12);
    cr_assert_float_eq(m.recall[1], 0.5, 1e-12);
    cr_assert_float_eq(m.f1[1], 2.0 / 3.0, 1e-12);
    cr_assert_float_eq(m.precision[2], 0.5, 1e-12);
    cr_assert_float_eq(m.recall[2], 1.0, 1e-12);
    cr_assert_eq(m.n_wrong, 2);
    cr_assert_eq(m.wrong[0], 11);
    cr_assert_eq(m.wrong[1], 14);
    const char *names[] = {"a", "b", "c"};
    char *json = et_metrics_to_json(&m, names);
    cr_assert(strstr(json, "\"misclassified\":[11,14]"), "%s", json);
    cr_assert(strstr(json, "\"label\":\"b\""), "%s", json);
    free(json);
    et_metrics_free(&m);
}

Test(metrics, bad_input_and_agreement)
{
    const int32_t truth[] = {0, 3};
    const float probs[] = {1, 0, 0, 1};
    et_metrics m;
    et_error err = {0};
    cr_assert_eq(et_metrics_compute(truth, probs, 2, 2, NULL, &m, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "row 1"), "%s", err.msg);
    const float other[] = {0.9f, 0.1f, 0.8f, 0.2f};
    cr_assert_float_eq(et_metrics_agreement(probs, other, 2, 2), 0.5, 1e-12);
    cr_assert_eq(et_metrics_compute(truth, probs, 0, 2, NULL, &m, &err), 0);
    cr_assert_float_eq(m.accuracy, 0.0, 1e-12);
    et_metrics_free(&m);
}
