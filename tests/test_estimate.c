/* Training-time estimates (src/profile/estimate.c): durations, the cached
 * machine figures, and estimates that grow with the work. */
#include "testutil.h"

#include "edgetrain/estimate.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

Test(estimate, durations_read_and_print)
{
    double s = 0;
    et_error err = {0};
    cr_assert_eq(et_parse_duration("90", &s, &err), ET_OK);
    cr_assert_float_eq(s, 90, 1e-9);
    cr_assert_eq(et_parse_duration("20m", &s, &err), ET_OK);
    cr_assert_float_eq(s, 1200, 1e-9);
    cr_assert_eq(et_parse_duration("1h30m", &s, &err), ET_OK);
    cr_assert_float_eq(s, 5400, 1e-9);
    cr_assert_eq(et_parse_duration("2.5h", &s, &err), ET_OK);
    cr_assert_float_eq(s, 9000, 1e-9);
    const char *bad[] = {"", "m", "20x", "-5m", "0", "1h-2m", "nan", "inf"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(et_parse_duration(bad[i], &s, &err), ET_EINVAL, "'%s' was accepted", bad[i]);
        cr_assert(strstr(err.msg, "not a duration"), "%s", err.msg);
    }
    char buf[32];
    et_format_duration(45.4, buf, sizeof buf);
    cr_assert_str_eq(buf, "45s");
    et_format_duration(0.04, buf, sizeof buf);
    cr_assert_str_eq(buf, "0.0s");
    et_format_duration(3.26, buf, sizeof buf);
    cr_assert_str_eq(buf, "3.3s");
    et_format_duration(9.96, buf, sizeof buf);
    cr_assert_str_eq(buf, "10s");
    et_format_duration_ms(2310, buf, sizeof buf);
    cr_assert_str_eq(buf, "38m 30s");
    et_format_duration_ms(1200, buf, sizeof buf);
    cr_assert_str_eq(buf, "20m 0s");
    et_format_duration_ms(45.4, buf, sizeof buf);
    cr_assert_str_eq(buf, "0m 45s");
    et_format_duration_ms(3725, buf, sizeof buf);
    cr_assert_str_eq(buf, "1h 2m 5s");
    et_format_duration(2310, buf, sizeof buf);
    cr_assert_str_eq(buf, "38m 30s");
    et_format_duration(3720, buf, sizeof buf);
    cr_assert_str_eq(buf, "1h 02m");
}

static et_model *model_of(int size, et_model_kind kind)
{
    et_impulse imp = et_impulse_defaults();
    imp.width = imp.height = size;
    imp.model = kind;
    imp.alpha = 0.35;
    et_model *m = NULL;
    et_error err = {0};
    cr_assert_eq(et_model_create_from_impulse(&imp, 10, 1, &m, &err), ET_OK, "%s", err.msg);
    return m;
}

Test(estimate, machine_figures_are_measured_once_then_cached, .timeout = 600)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", tu_path(tu_tmpdir(), "cache"));
    setenv("XDG_CACHE_HOME", dir, 1);
    et_machine_rates a, b;
    et_error err = {0};
    cr_assert_eq(et_machine_rates_get(&a, &err), ET_OK, "%s", err.msg);
    cr_assert_not(a.cached);
    cr_assert_gt(a.conv_mac_train, 0);
    cr_assert_gt(a.dense_mac_train, 0);
    cr_assert_gt(a.int8_mac, 0);
    cr_assert_float_eq(a.correction, 1.0, 1e-12);
    cr_assert_eq(et_machine_rates_get(&b, &err), ET_OK);
    cr_assert(b.cached, "the second call reads the cache");
    cr_assert_float_eq(b.conv_mac_train, a.conv_mac_train, 1e-18);
    /* A training that took twice the estimate moves the correction half way. */
    et_machine_rates_learn(&b, 20.0, 10.0);
    cr_assert_float_eq(b.correction, 1.5, 1e-12);
    et_machine_rates_learn(&b, 1.0, 0.01); /* too short to learn from */
    cr_assert_float_eq(b.correction, 1.5, 1e-12);
    et_machine_rates c;
    cr_assert_eq(et_machine_rates_get(&c, &err), ET_OK);
    cr_assert_float_eq(c.correction, 1.5, 1e-12);
    /* A damaged cache is measured again, not trusted. */
    char path[4300];
    snprintf(path, sizeof path, "%s/edgetrain/machine-%s.json", dir, a.key);
    tu_write(path, "{\"conv_mac_train\": \"fast\"}", 26);
    cr_assert_eq(et_machine_rates_get(&c, &err), ET_OK);
    cr_assert_not(c.cached);
}

Test(estimate, more_work_takes_longer)
{
    /* Fixed figures (a machine of about 10 GMAC/s), so that the test checks
     * the arithmetic and not the load on the machine running it. */
    et_machine_rates r = {.threads = 2, .correction = 1.0};
    r.conv_mac_train = r.pw_mac_train = r.dense_mac_train = 3e-10;
    r.conv_mac_infer = r.pw_mac_infer = r.dense_mac_infer = 1e-10;
    r.dw_mac_train = 1e-9;
    r.dw_mac_infer = 3e-10;
    r.conv_patch_train = 2e-9;
    r.conv_patch_infer = 1e-9;
    r.bn_elt_train = r.act_elt_train = r.pool_elt_train = 2e-9;
    r.bn_elt_infer = r.act_elt_infer = r.pool_elt_infer = 1e-9;
    r.int8_mac = 1e-10;
    et_model *small = model_of(28, ET_MODEL_CONV), *big = model_of(96, ET_MODEL_MOBILENETV2);
    et_train_estimate e1, e2, e3, e4;
    et_estimate_training(small, &r, 48000, 12000, 10, true, &e1);
    et_estimate_training(small, &r, 48000, 12000, 20, true, &e2);
    et_estimate_training(big, &r, 48000, 12000, 20, true, &e3);
    et_estimate_training(small, &r, 48000, 12000, 20, false, &e4);
    cr_assert_gt(e1.seconds, 0);
    cr_assert_gt(e2.train_seconds, 1.9 * e1.train_seconds);
    cr_assert_gt(e3.step_seconds, 5 * e2.step_seconds, "MobileNetV2 96x96 costs more per sample");
    cr_assert_eq(e4.int8_seconds, 0);
    cr_assert_float_eq(e2.seconds, e2.train_seconds + e2.validation_seconds + e2.int8_seconds,
                       1e-9);
    et_model_destroy(small);
    et_model_destroy(big);
}
