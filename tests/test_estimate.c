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
    /* A correction learnt up to its bound: the figures are stale and are
     * measured again. */
    for (int i = 0; i < 8; i++)
        et_machine_rates_learn(&c, 100.0, 10.0);
    cr_assert_float_eq(c.correction, 4.0, 1e-12);
    cr_assert_eq(et_machine_rates_get(&c, &err), ET_OK);
    cr_assert_not(c.cached);
    cr_assert_float_eq(c.correction, 1.0, 1e-12);
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

Test(estimate, a_model_is_timed_once_then_cached, .timeout = 600)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", tu_path(tu_tmpdir(), "cache"));
    setenv("XDG_CACHE_HOME", dir, 1);
    et_model *m = model_of(28, ET_MODEL_CONV);
    et_machine_rates r;
    et_model_timing a, b, c;
    et_error err = {0};
    cr_assert_eq(et_model_timing_get(m, 0, &a, &err), ET_EINVAL);
    cr_assert_eq(et_machine_rates_get(&r, &err), ET_OK, "%s", err.msg);
    cr_assert_not(et_model_timing_cached(m, 8, &a), "nothing is timed by asking the cache");
    cr_assert_eq(et_model_timing_get(m, 8, &a, &err), ET_OK, "%s", err.msg);
    cr_assert_not(a.cached);
    cr_assert(et_model_timing_cached(m, 8, &b));
    cr_assert_float_eq(b.step, a.step, 1e-12 * a.step);
    cr_assert_not(et_model_timing_cached(m, 0, &b));
    cr_assert_eq(a.batch, 8);
    cr_assert_eq(a.infer_batch, 64, "validation runs at max(batch, 64), as et_train does");
    cr_assert(a.step > 0 && a.infer > 0 && a.qat_step > 0 && a.qat_infer > 0 && a.int8_sample > 0);
    cr_assert_eq(et_model_timing_get(m, 8, &b, &err), ET_OK);
    cr_assert(b.cached, "the second call reads the cache");
    cr_assert_float_eq(b.step, a.step, 1e-12 * a.step);
    cr_assert_float_eq(b.int8_sample, a.int8_sample, 1e-12 * a.int8_sample);
    /* Another batch size is another timing. */
    cr_assert_eq(et_model_timing_get(m, 16, &c, &err), ET_OK);
    cr_assert_not(c.cached);
    /* The timings share the machine's file with its rates, and neither
     * write loses the other. */
    et_machine_rates r2;
    cr_assert_eq(et_machine_rates_get(&r2, &err), ET_OK);
    cr_assert(r2.cached);
    et_machine_rates_learn(&r2, 20.0, 10.0);
    cr_assert_eq(et_model_timing_get(m, 8, &b, &err), ET_OK);
    cr_assert(b.cached);
    /* A training that took twice the estimate: the next one is priced at
     * what it measured. Short ones teach nothing. */
    et_model_timing_learn(m, &b, 0.4, 0.2);
    cr_assert_float_eq(b.step, a.step, 1e-12 * a.step);
    et_model_timing_learn(m, &b, 20.0, 10.0);
    cr_assert_float_eq(b.step, 2 * a.step, 1e-9 * a.step);
    cr_assert_float_eq(b.infer, 2 * a.infer, 1e-9 * a.infer);
    cr_assert_eq(et_model_timing_get(m, 8, &c, &err), ET_OK);
    cr_assert(c.cached);
    cr_assert_float_eq(c.step, 2 * a.step, 1e-9 * a.step);
    cr_assert_eq(et_machine_rates_get(&r2, &err), ET_OK);
    cr_assert(r2.cached);
    cr_assert_float_eq(r2.correction, 1.5, 1e-12);
    et_model_destroy(m);
}

/* A timing of 0.1 s per step of 32 samples, 0.05 s per validation pass of
 * 64: the arithmetic, not this machine. */
static et_model_timing fixed_timing(int batch, double step)
{
    return (et_model_timing){.batch = batch,
                             .infer_batch = batch > 64 ? batch : 64,
                             .threads = 2,
                             .step = step,
                             .infer = 0.05,
                             .qat_step = 1.5 * step,
                             .qat_infer = 0.06,
                             .int8_sample = 0.002,
                             .convert = 0.01};
}

Test(estimate, steps_batches_and_int8_from_a_timing)
{
    et_model *m = model_of(28, ET_MODEL_CONV);
    et_model_timing t32 = fixed_timing(32, 0.1), t128 = fixed_timing(128, 0.25);
    et_estimate_input in = {
        .n_train = 3200, .n_val = 640, .epochs = 5, .batch = 32, .int8 = true, .timing = &t32};
    et_train_estimate e, f, g, h;
    et_estimate(m, NULL, &in, &e);
    /* 100 steps an epoch, 10 validation passes after each epoch and once more. */
    cr_assert_float_eq(e.train_seconds, 5 * 100 * 0.1, 1e-9);
    cr_assert_float_eq(e.validation_seconds, 6 * 10 * 0.05, 1e-9);
    cr_assert_float_eq(e.step_seconds, 0.1 / 32, 1e-12);
    cr_assert_gt(e.int8_seconds, 640 * 0.002, "the int8 model runs over the validation split");
    cr_assert_float_eq(e.seconds, e.train_seconds + e.validation_seconds + e.int8_seconds, 1e-9);
    /* A larger batch: fewer steps, each dearer but cheaper per sample. */
    in.batch = 128;
    in.timing = &t128;
    et_estimate(m, NULL, &in, &f);
    cr_assert_float_eq(f.train_seconds, 5 * 25 * 0.25, 1e-9);
    cr_assert_lt(f.train_seconds, e.train_seconds);
    cr_assert_float_eq(f.validation_seconds, 6 * 5 * 0.05, 1e-9, "validation at batch 128");
    /* A last, partial batch costs its share. */
    in.n_train = 3216;
    in.batch = 32;
    in.timing = &t32;
    et_estimate(m, NULL, &in, &f);
    cr_assert_float_eq(f.train_seconds, 5 * 100.5 * 0.1, 1e-9);
    /* The fallbacks are priced apart; --qat moves the fine-tuning into the
     * total, and more fine-tuning epochs cost more. */
    in.n_train = 3200;
    cr_assert_gt(e.int8_fallback_seconds, 3 * 100 * 0.15, "3 epochs of fake-quantized steps");
    cr_assert_gt(e.int8_fallback_seconds, e.int8_qat_seconds, "MSE calibration first");
    cr_assert_gt(e.int8_qat_seconds, 3 * 100 * 0.15);
    in.qat = true;
    et_estimate(m, NULL, &in, &g);
    cr_assert_float_eq(g.int8_seconds - e.int8_seconds,
                       e.int8_fallback_seconds - g.int8_fallback_seconds, 1e-9);
    cr_assert_gt(g.int8_seconds, e.int8_seconds + 3 * 100 * 0.15);
    in.qat_epochs = 6;
    et_estimate(m, NULL, &in, &h);
    cr_assert_float_eq(h.int8_seconds - g.int8_seconds, 3 * (100 * 0.15 + 10 * 0.06), 1e-9);
    /* Without int8 nothing of it. */
    in.int8 = false;
    et_estimate(m, NULL, &in, &h);
    cr_assert_eq(h.int8_seconds, 0);
    cr_assert_eq(h.int8_fallback_seconds, 0);
    /* Nothing to price with: all zero, no crash. */
    in.timing = NULL;
    et_estimate(m, NULL, &in, &h);
    cr_assert_eq(h.seconds, 0);
    et_model_destroy(m);
}

/* A model with batch norm pays, after each epoch and each fine-tuning epoch,
 * forward passes over up to ET_PRECISE_BN_SAMPLES training rows. */
Test(estimate, batch_norm_statistics_are_priced)
{
    et_model *plain = model_of(28, ET_MODEL_CONV), *bn = NULL;
    et_impulse imp = et_impulse_defaults();
    imp.width = imp.height = 28;
    imp.batch_norm = true;
    et_error err = {0};
    cr_assert_eq(et_model_create_from_impulse(&imp, 10, 1, &bn, &err), ET_OK, "%s", err.msg);
    cr_assert(et_model_has_batchnorm(bn));
    cr_assert_not(et_model_has_batchnorm(plain));
    et_model_timing t = fixed_timing(32, 0.1);
    et_estimate_input in = {.n_train = 48000,
                            .n_val = 640,
                            .epochs = 5,
                            .batch = 32,
                            .int8 = true,
                            .qat = true,
                            .timing = &t};
    et_train_estimate a, b;
    et_estimate(plain, NULL, &in, &a);
    et_estimate(bn, NULL, &in, &b);
    /* 4096 rows = 64 passes of 64 at 0.05 s, per epoch (5) and per fine-tuning epoch (3). */
    cr_assert_float_eq(b.train_seconds - a.train_seconds, 5 * 64 * 0.05, 1e-9);
    cr_assert_float_eq(b.int8_seconds - a.int8_seconds, 3 * 64 * 0.05, 1e-9);
    in.n_train = 640; /* fewer rows than that: all of them */
    et_estimate(plain, NULL, &in, &a);
    et_estimate(bn, NULL, &in, &b);
    cr_assert_float_eq(b.train_seconds - a.train_seconds, 5 * 10 * 0.05, 1e-9);
    et_model_destroy(plain);
    et_model_destroy(bn);
}

Test(estimate, the_rates_path_is_et_estimate_training)
{
    et_machine_rates r = {.threads = 2, .correction = 2.0};
    r.conv_mac_train = r.pw_mac_train = r.dense_mac_train = 3e-10;
    r.conv_mac_infer = r.pw_mac_infer = r.dense_mac_infer = 1e-10;
    r.dw_mac_train = 1e-9;
    r.dw_mac_infer = 3e-10;
    r.bn_elt_train = r.act_elt_train = r.pool_elt_train = 2e-9;
    r.bn_elt_infer = r.act_elt_infer = r.pool_elt_infer = 1e-9;
    r.int8_mac = 1e-10;
    et_model *m = model_of(96, ET_MODEL_MOBILENETV2);
    et_train_estimate a, b, c;
    et_estimate_training(m, &r, 4800, 1200, 3, true, &a);
    et_estimate_input in = {.n_train = 4800, .n_val = 1200, .epochs = 3, .batch = 32, .int8 = true};
    et_estimate(m, &r, &in, &b);
    cr_assert_float_eq(a.seconds, b.seconds, 1e-9 * a.seconds);
    cr_assert_gt(b.int8_fallback_seconds, 0);
    /* The learnt correction scales training and validation. */
    r.correction = 1.0;
    et_estimate(m, &r, &in, &c);
    cr_assert_float_eq(b.train_seconds, 2 * c.train_seconds, 1e-9 * b.train_seconds);
    cr_assert_float_eq(b.validation_seconds, 2 * c.validation_seconds, 1e-9 * b.validation_seconds);
    et_model_destroy(m);
}
