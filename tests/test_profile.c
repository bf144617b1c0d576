/* The profile module: the device catalog and target-file validation, plan
 * costs by hand, the latency model against published latencies, and the
 * targets/profile commands on a project. */
#include "testutil.h"

#include "edgetrain/profile.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static et_target_catalog *builtin(void)
{
    et_error err = {0};
    et_target_catalog *c = NULL;
    cr_assert_eq(et_targets_load(NULL, NULL, &c, &err), ET_OK, "%s", err.msg);
    return c;
}

/* ------------------------------------------------------------------------
 * The catalog.
 */

Test(catalog, parses_and_every_target_has_sources)
{
    et_target_catalog *c = builtin();
    static const char *const required[] = {"cortex-m0plus-48mhz",    "cortex-m4f-80mhz",
                                           "cortex-m4f-120mhz",      "cortex-m7-216mhz",
                                           "cortex-m7-480mhz",       "cortex-m33-160mhz",
                                           "esp32-s3-240mhz",        "rp2040-133mhz",
                                           "cortex-a53-1200mhz",     "host",
                                           ET_PROFILE_DEFAULT_TARGET};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++)
        cr_assert(et_targets_find(c, required[i]), "%s is in the catalog", required[i]);
    for (int i = 0; i < et_targets_count(c); i++) {
        const et_target *t = et_targets_get(c, i);
        cr_assert_gt(t->n_sources, 0, "%s has sources", t->name);
        for (int s = 0; s < t->n_sources; s++) {
            cr_assert(t->sources[s].url && t->sources[s].url[0], "%s source %d url", t->name, s);
            cr_assert(t->sources[s].note && strlen(t->sources[s].note) > 20,
                      "%s source %d says what it says", t->name, s);
        }
        cr_assert_gt(t->clock_hz, 0);
        cr_assert_str_eq(t->origin, "built-in");
        const et_engine_costs *e = NULL;
        cr_assert_eq(et_target_engine(t, NULL, &e, NULL), ET_OK, "%s default engine", t->name);
        for (int k = 0; k < t->n_engines; k++)
            for (int p = 0; p < ET_PRECISION_COUNT; p++)
                for (int kind = 0; kind < ET_COST_MAC_KINDS; kind++)
                    cr_assert_gt(t->engines[k].cycles[p][kind], 0, "%s %s", t->name,
                                 t->engines[k].name);
    }
    /* The Arm targets offer both engines of the issue. */
    const et_target *m4 = et_targets_find(c, "cortex-m4f-120mhz");
    const et_engine_costs *e = NULL;
    cr_assert_eq(et_target_engine(m4, "tflm-reference", &e, NULL), ET_OK);
    cr_assert_eq(et_target_engine(m4, "cmsis-nn", &e, NULL), ET_OK);
    et_error err = {0};
    cr_assert_eq(et_target_engine(m4, "esp-nn", &e, &err), ET_ENOTFOUND);
    cr_assert(strstr(err.msg, "tflm-reference") && strstr(err.msg, "cmsis-nn"), "%s", err.msg);
    cr_assert_eq(et_targets_lookup(c, "cortex-m9", &m4, &err), ET_ENOTFOUND);
    cr_assert(strstr(err.msg, "cortex-m9") && strstr(err.msg, "rp2040-133mhz"), "%s", err.msg);
    char *json = et_targets_to_json(c);
    cr_assert(json && strstr(json, "\"default_target\":\"cortex-m4f-80mhz\""));
    free(json);
    et_targets_destroy(c);
}

/* A one-target file with one key's value replaced (or removed with NULL). */
static char *target_file(const char *key, const char *value)
{
    const char *fields[][2] = {
        {"name", "\"my-board\""},
        {"description", "\"a board\""},
        {"clock_hz", "64000000"},
        {"ram_bytes", "65536"},
        {"flash_bytes", "262144"},
        {"engines", "{\"cmsis-nn\": {\"int8\": {\"conv\": 4, \"depthwise\": 5, \"pointwise\": "
                    "4, \"dense\": 4}, \"float32\": {\"conv\": 8, \"depthwise\": 9, "
                    "\"pointwise\": 8, \"dense\": 8}}}"},
        {"sources", "[{\"url\": \"lab notebook p. 12\", \"note\": \"measured\"}]"},
    };
    char *out = malloc(4096);
    size_t used = (size_t)snprintf(out, 4096, "{\"targets\": [{");
    bool first = true;
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        const char *v = key && !strcmp(fields[i][0], key) ? value : fields[i][1];
        if (!v)
            continue;
        used += (size_t)snprintf(out + used, 4096 - used, "%s\n  \"%s\": %s", first ? "" : ",",
                                 fields[i][0], v);
        first = false;
    }
    if (key && !strcmp(key, "extra"))
        used += (size_t)snprintf(out + used, 4096 - used, ",\n  \"clok_hz\": 1");
    snprintf(out + used, 4096 - used, "}]}\n");
    return out;
}

/* Adds text to a fresh catalog; returns the status and the message. */
static et_status add(const char *text, et_error *err)
{
    et_target_catalog *c = et_targets_create();
    memset(err, 0, sizeof *err);
    et_status rc = et_targets_add_json(c, text, strlen(text), "mine.json", err);
    et_targets_destroy(c);
    return rc;
}

static void expect_bad(const char *key, const char *value, const char *needle)
{
    char *text = target_file(key, value);
    et_error err;
    cr_assert_eq(add(text, &err), ET_EINVAL, "%s=%s is refused", key, value ? value : "(none)");
    cr_assert(strstr(err.msg, "mine.json"), "names the file: %s", err.msg);
    cr_assert(strstr(err.msg, needle), "'%s' in: %s", needle, err.msg);
    free(text);
}

Test(catalog, user_files_are_checked_with_clear_errors)
{
    char *ok = target_file(NULL, NULL);
    et_error err;
    cr_assert_eq(add(ok, &err), ET_OK, "%s", err.msg);
    free(ok);
    expect_bad("clock_hz", "-5", "key 'clock_hz': -5 is not allowed; give the clock in Hz");
    expect_bad("clock_hz", NULL, "key 'clock_hz' is missing");
    expect_bad("clock_hz", "\"80MHz\"", "key 'clock_hz': \"80MHz\" is not allowed");
    expect_bad("ram_bytes", "1.5", "key 'ram_bytes': 1.5 is not allowed; give a whole number");
    expect_bad("name", "\"Cortex M4\"", "'Cortex M4' is not allowed; use 1 to 63 lowercase");
    expect_bad("sources", NULL, "key 'sources' is missing; every figure needs its source");
    expect_bad("sources", "[{\"url\": \"x\"}]", "sources[0]: key 'note' is missing");
    expect_bad("extra", "", "unknown key 'clok_hz' in a target; allowed: name, description");
    expect_bad("engines",
               "{\"cmsis-nn\": {\"int8\": {\"conv\": 4, \"depthwise\": 5, "
               "\"pointwise\": 4, \"dense\": 4}}}",
               "engine 'cmsis-nn': key 'float32' is missing");
    expect_bad("engines",
               "{\"cmsis-nn\": {\"int8\": {\"conv\": 0, \"depthwise\": 5, "
               "\"pointwise\": 4, \"dense\": 4}, \"float32\": {\"conv\": 1, "
               "\"depthwise\": 1, \"pointwise\": 1, \"dense\": 1}}}",
               "engine 'cmsis-nn', int8: key 'conv': 0 is not allowed; give cycles per MAC");
    expect_bad("engines",
               "{\"cmsis-nn\": {\"int8\": {\"conv\": 1, \"depthwise\": 1, "
               "\"pointwise\": 1, \"dense\": 1, \"relu\": 2}, \"float32\": {\"conv\": "
               "1, \"depthwise\": 1, \"pointwise\": 1, \"dense\": 1}}}",
               "unknown key 'relu' in a cost figure object");
    /* Where it is: the target's index and name. */
    expect_bad("clock_hz", "0", "targets[0] ('my-board')");

    /* Bad JSON: file, line and column. */
    cr_assert_eq(add("{\"targets\": [\n  {\"name\": \"x\",,}\n]}", &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "mine.json:2:") && strstr(err.msg, "bad JSON"), "%s", err.msg);
    cr_assert_eq(add("[1, 2]", &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "must be a JSON object"), "%s", err.msg);
    cr_assert_eq(add("{\"targets\": []}", &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "key 'targets' must be an array of 1 to"), "%s", err.msg);

    /* One name twice in a file; a default engine the target lacks. */
    char *one = target_file(NULL, NULL);
    char twice[9000];
    one[strlen(one) - 3] = '\0'; /* drop "]}\n" */
    snprintf(twice, sizeof twice, "%s, %s]}", one, strchr(one, '[') + 1);
    cr_assert_eq(add(twice, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "the name 'my-board' is already used by targets[0]"), "%s", err.msg);
    free(one);
    char *def = target_file("name", "\"my-board\", \"default_engine\": \"esp-nn\"");
    cr_assert_eq(add(def, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "'esp-nn' is not one of the target's engines"), "%s", err.msg);
    free(def);
}

Test(catalog, project_and_user_files_add_and_replace)
{
    const char *dir = tu_tmpdir();
    char *mine = target_file(NULL, NULL);
    tu_write(tu_path(dir, "proj/targets.json"), mine, strlen(mine));
    free(mine);
    /* A user file may correct a built-in target: same name, its own figures. */
    char *fix = target_file("name", "\"cortex-m4f-80mhz\"");
    tu_write(tu_path(dir, "fix.json"), fix, strlen(fix));
    free(fix);
    et_error err = {0};
    et_target_catalog *c = NULL;
    cr_assert_eq(et_targets_load(tu_path(dir, "fix.json"), tu_path(dir, "proj"), &c, &err), ET_OK,
                 "%s", err.msg);
    const et_target *t = et_targets_find(c, "my-board");
    cr_assert(t);
    cr_assert(strstr(t->origin, "proj/targets.json"), "%s", t->origin);
    cr_assert_eq(t->ram_bytes, 65536);
    t = et_targets_find(c, "cortex-m4f-80mhz");
    cr_assert(strstr(t->origin, "fix.json"));
    cr_assert_float_eq(t->clock_hz, 64e6, 1);
    cr_assert_eq(et_targets_count(c), 11, "replaced, not added");
    et_targets_destroy(c);
    /* A --targets file that is missing is an error naming it. */
    cr_assert_lt(et_targets_load(tu_path(dir, "nope.json"), NULL, &c, &err), 0);
    cr_assert(strstr(err.msg, "nope.json"), "%s", err.msg);
}

/* ------------------------------------------------------------------------
 * Plan costs by hand.
 */

/* Conv 4 filters 3x3 (same) + ReLU + MaxPool 2 + Flatten + Dense 2 + Softmax
 * on 8x8x1: the smallest conv net the impulse builds. */
static et_quant_result small_plans(void)
{
    et_impulse imp = et_impulse_defaults();
    imp.width = imp.height = 8;
    imp.color = ET_COLOR_GRAYSCALE;
    imp.n_conv = 1;
    imp.conv[0].filters = 4;
    imp.conv[0].kernel = 3;
    imp.n_dense = 0;
    et_error err = {0};
    et_model *m = NULL;
    cr_assert_eq(et_model_create_from_impulse(&imp, 2, 1, &m, &err), ET_OK, "%s", err.msg);
    et_quant_result q;
    cr_assert_eq(et_quant_convert_uncalibrated(m, NULL, &q, &err), ET_OK, "%s", err.msg);
    et_model_destroy(m);
    return q;
}

Test(plan, flash_and_ram_of_a_small_model_by_hand)
{
    et_quant_result q = small_plans();
    et_plan_profile p8, pf;
    et_error err = {0};
    cr_assert_eq(et_plan_profile_create(q.int8.bytes, q.int8.size, &p8, &err), ET_OK, "%s",
                 err.msg);
    cr_assert_eq(et_plan_profile_create(q.float32.bytes, q.float32.size, &pf, &err), ET_OK);
    /* Ops: conv2d_maxpool (the conv with ReLU folded in, and the pool after
     * it), reshape (flatten), fully_connected, softmax. */
    cr_assert_eq(p8.n_layers, 4);
    cr_assert_str_eq(p8.layers[0].op_name, "conv2d_maxpool");
    cr_assert_str_eq(p8.layers[1].op_name, "reshape");
    cr_assert_eq(p8.layers[0].cost.kind, ET_COST_CONV);
    cr_assert_eq(p8.layers[2].cost.kind, ET_COST_DENSE);
    cr_assert_eq(p8.layers[0].out_h, 4, "the fused op's output is the pool's");
    /* MACs: 8*8*4*3*3*1 = 2304 conv + 64*2 = 128 dense. */
    cr_assert_eq(p8.macs, 2432);
    cr_assert_eq(p8.layers[0].cost.pooled, 4 * 4 * 4 * 2 * 2, "pool taps");
    /* Parameters after folding: conv 36 + 4 bias, dense 128 + 2 bias. */
    cr_assert_eq(p8.params, 170);
    /* int8: weights 1 byte, biases int32: 36 + 16 + 128 + 8 = 188; one int32
     * multiplier and shift per output channel: (4 + 2) * 8 = 48. */
    cr_assert_eq(p8.weight_bytes, 188);
    cr_assert_eq(p8.quant_bytes, 48);
    /* The .etrt, every block 16-byte aligned: header 64, 5 tensor records of
     * 32 (the conv's own output is not one: to 224), 4 op records of 120 (to
     * 704), then conv weights 36 (to 740, padded to 752), bias 16, multipliers
     * 16, shifts 16 (to 800), dense weights 128 (to 928), bias 8 (to 936,
     * padded to 944), multipliers 8 (to 952, padded to 960), shifts 8: 968. */
    cr_assert_eq(p8.table_bytes, 64 + 5 * 32 + 4 * 120);
    cr_assert_eq(p8.plan_bytes, 968);
    cr_assert_eq(p8.plan_bytes, q.int8.size);
    /* float32: weights 4 bytes, no multipliers: 704 + 144 conv weights + 16
     * bias (to 864) + 512 dense weights + 8 bias = 1384. */
    cr_assert_eq(pf.weight_bytes, 144 + 16 + 512 + 8);
    cr_assert_eq(pf.quant_bytes, 0);
    cr_assert_eq(pf.plan_bytes, 1384);
    /* RAM, greedy by size with 16-byte alignment. The fused op's scratch is
     * two conv rows (2*8*4 = 64 B) and the conv's patch (3*3*1 int16 = 18 ->
     * 20 B): 84 -> 96 B at 0 (op 0); the input (64 B, op 0) at 96; the pooled
     * tensor (64 B, ops 0-2, shared by the reshape) at 160; the dense and
     * softmax outputs (2 B -> 16 each, ops 2-3) at 0 and 16: 224 bytes. The
     * conv's whole output (256 B) never exists. */
    cr_assert_eq(p8.arena_bytes, 224);
    cr_assert_eq(p8.input_bytes, 64);
    /* float32: scratch 256 + 36 = 292 -> 304 at 0, input and pool 256 at 304
     * and 560: 816. */
    cr_assert_eq(pf.arena_bytes, 816);
    cr_assert_eq(pf.input_bytes, 256);

    /* Flash on a Cortex-M4: the plan + the runtime's loader (5500 B) and the
     * kernels used, int8: conv 2158, pool 792 and the fused op's glue 518,
     * dense 316, softmax 1214, input quantization 210; float32: conv 582,
     * pool 956, glue 542, dense 208, softmax 252. */
    cr_assert_eq(et_runtime_code_bytes(&p8, "armv7e-m"),
                 5500 + 2158 + 792 + 518 + 316 + 1214 + 210);
    cr_assert_eq(et_runtime_code_bytes(&pf, "armv7e-m"), 5500 + 582 + 956 + 542 + 208 + 252);
    et_target_catalog *c = builtin();
    const et_target *t = et_targets_find(c, "cortex-m4f-80mhz");
    et_cost cost;
    cr_assert_eq(et_profile_cost(&p8, t, NULL, &cost, &err), ET_OK, "%s", err.msg);
    cr_assert_str_eq(cost.engine, "cmsis-nn");
    cr_assert_eq(cost.ram_bytes, 224);
    cr_assert_eq(cost.flash_bytes, 968 + 10708);
    cr_assert(cost.fits_ram && cost.fits_flash);
    /* Latency: 2304 conv MACs x 3.74 + 128 dense MACs x 3.74 cycles at 80 MHz. */
    cr_assert_float_eq(cost.latency_ms, 2432 * 3.74 / 80e6 * 1e3, 1e-9);
    double sum = 0;
    for (int i = 0; i < cost.n_layers; i++)
        sum += cost.layer_ms[i];
    cr_assert_float_eq(sum, cost.latency_ms, 1e-9);
    et_cost_free(&cost);
    et_targets_destroy(c);
    et_plan_profile_free(&p8);
    et_plan_profile_free(&pf);
    et_quant_result_free(&q);
}

Test(plan, latency_of_layer_descriptions_by_hand)
{
    et_engine_costs e;
    memset(&e, 0, sizeof e);
    e.cycles[ET_PRECISION_INT8][ET_COST_CONV] = 2;
    e.cycles[ET_PRECISION_INT8][ET_COST_POINTWISE] = 1;
    e.cycles[ET_PRECISION_INT8][ET_COST_POOL] = 0.5;
    e.op_overhead[ET_PRECISION_INT8] = 10;
    et_layer_desc l[3] = {et_layer_conv(2, 2, 5, 3, 3, 1), et_layer_conv(2, 2, 5, 1, 1, 5),
                          et_layer_pool(1, 1, 5, 2, 2)};
    cr_assert_eq(l[0].macs, 180);
    cr_assert_eq(l[1].kind, ET_COST_POINTWISE);
    cr_assert_eq(l[1].macs, 100);
    cr_assert_eq(l[2].elements, 20);
    double cycles[3];
    /* (180*2 + 10) + (100*1 + 10) + (20*0.5 + 10) = 500 cycles at 1 MHz. */
    cr_assert_float_eq(et_latency_ms(l, 3, &e, ET_PRECISION_INT8, 1e6, cycles), 0.5, 1e-12);
    cr_assert_float_eq(cycles[0], 370, 1e-9);
    cr_assert_float_eq(cycles[2], 20, 1e-9);
}

/* ------------------------------------------------------------------------
 * The latency model against published latencies (within 25%).
 */

static double predict(const et_target_catalog *c, const char *target, const char *engine,
                      const et_layer_desc *l, int n)
{
    const et_target *t = et_targets_find(c, target);
    const et_engine_costs *e = NULL;
    cr_assert(t, "%s", target);
    cr_assert_eq(et_target_engine(t, engine, &e, NULL), ET_OK, "%s on %s", engine, target);
    return et_latency_ms(l, n, e, ET_PRECISION_INT8, t->clock_hz, NULL);
}

static void expect_close(const char *what, double predicted, double published)
{
    double error = (predicted - published) / published;
    fprintf(stderr, "%-58s published %7.1f ms, predicted %7.1f ms (%+.1f%%)\n", what, published,
            predicted, 100 * error);
    cr_assert_leq(fabs(error), 0.25, "%s: predicted %.1f ms, published %.1f ms", what, predicted,
                  published);
}

/* The int8 layers of an impulse's model, from its plan. */
static et_layer_desc *impulse_layers(et_model_kind kind, double alpha, int size, int channels,
                                     int classes, int *n, int64_t *macs)
{
    et_impulse imp = et_impulse_defaults();
    imp.model = kind;
    imp.alpha = alpha;
    imp.width = imp.height = size;
    imp.head_neurons = 0;
    imp.dropout = 0;
    et_error err = {0};
    et_model *m = NULL;
    cr_assert_eq(et_model_create_from_impulse(&imp, classes, channels, &m, &err), ET_OK, "%s",
                 err.msg);
    et_quant_result q;
    cr_assert_eq(et_quant_convert_uncalibrated(m, NULL, &q, &err), ET_OK, "%s", err.msg);
    et_plan_profile p;
    cr_assert_eq(et_plan_profile_create(q.int8.bytes, q.int8.size, &p, &err), ET_OK, "%s", err.msg);
    cr_assert_eq(p.macs, et_model_totals_all(m).macs, "the plan keeps every MAC of the graph");
    et_layer_desc *l = et_plan_profile_layers(&p);
    *n = p.n_layers;
    *macs = p.macs;
    et_plan_profile_free(&p);
    et_quant_result_free(&q);
    et_model_destroy(m);
    return l;
}

/* MLPerf Tiny Visual Wake Words: MobileNetV1 alpha 0.25 on 96x96x3, 2
 * classes (Banbury et al. 2021, arXiv:2106.07597; the benchmark's input is
 * 27,648 bytes = 96*96*3). edgetrain's Keras-style MobileNetV1 with no
 * hidden head layer has the same 27 conv/depthwise/pointwise layers and a
 * 256->2 dense; its MACs, 7,489,664, are the benchmark model's (conv
 * 497,664 + depthwise 798,336 + pointwise 6,193,152 + dense 512). On the
 * NUCLEO-L4R5ZI (Cortex-M4, 120 MHz):
 * - TFLM 2.3.1 reference kernels, MLPerf Tiny v0.5 reference submission,
 *   1.665 inf./s = 600.6 ms:
 *   github.com/mlcommons/tiny_results_v0.5/blob/main/closed/reference/results/Nucleo-L4R5ZI/vww/performance/results.txt
 * - CMSIS-NN kernels (microTVM, OctoML), MLPerf Tiny v1.0, 3.320 inf./s = 301.2 ms:
 *   github.com/mlcommons/tiny_results_v1.0/blob/main/closed/OctoML/results/microtvm_cmsis_nn/NUCLEO_L4R5ZI/vww/performance/results.txt
 * The 99 ms quoted in issue 6 as "an optimized engine" is Plumerai's
 * proprietary engine (v1.1, 10.126 inf./s), which edgetrain does not model.
 * These two figures and ResNet-8's set the Cortex-M4 constants (see
 * data/targets.json), so this checks the MAC counts and the plan walk;
 * MobileNetV2 on the Cortex-M7 below is the held-out check. */
Test(latency, mlperf_tiny_vww_mobilenetv1_on_cortex_m4)
{
    et_target_catalog *c = builtin();
    int n = 0;
    int64_t macs = 0;
    et_layer_desc *l = impulse_layers(ET_MODEL_MOBILENETV1, 0.25, 96, 3, 2, &n, &macs);
    cr_assert_eq(macs, 7489664);
    expect_close("VWW MobileNetV1 a0.25, M4 120 MHz, tflm-reference",
                 predict(c, "cortex-m4f-120mhz", "tflm-reference", l, n), 1000 / 1.665);
    expect_close("VWW MobileNetV1 a0.25, M4 120 MHz, cmsis-nn",
                 predict(c, "cortex-m4f-120mhz", "cmsis-nn", l, n), 1000 / 3.320);
    free(l);
    et_targets_destroy(c);
}

/* MLPerf Tiny image classification: ResNet-8 on CIFAR-10 32x32x3, as
 * github.com/mlcommons/tiny/blob/bceb91c5ad2e2deb295547d81505721d3a87d578/benchmark/training/image_classification/keras_model.py
 * (resnet_v1_eembc: 16, 32, 64 filters, 'same' padding, 1x1 stride-2
 * shortcut convs, average pool, dense 10), described by hand since
 * edgetrain does not build it. On the NUCLEO-L4R5ZI (120 MHz):
 * - TFLM reference, v0.5: 1.420 inf./s = 704.2 ms
 *   (.../tiny_results_v0.5/.../Nucleo-L4R5ZI/ic/performance/results.txt)
 * - CMSIS-NN (microTVM), v1.0: 2.567 inf./s = 389.6 ms
 *   (.../tiny_results_v1.0/.../microtvm_cmsis_nn/NUCLEO_L4R5ZI/ic/performance/results.txt)
 * The "168 ms" of issue 6 is Plumerai's engine (v1.1, 5.961 inf./s). */
Test(latency, mlperf_tiny_resnet8_on_cortex_m4)
{
    et_layer_desc l[] = {
        et_layer_conv(32, 32, 16, 3, 3, 3),
        /* stack 1 */
        et_layer_conv(32, 32, 16, 3, 3, 16),
        et_layer_conv(32, 32, 16, 3, 3, 16),
        et_layer_add(32 * 32 * 16),
        /* stack 2: 3x3 stride 2, 3x3, 1x1 stride-2 shortcut */
        et_layer_conv(16, 16, 32, 3, 3, 16),
        et_layer_conv(16, 16, 32, 3, 3, 32),
        et_layer_conv(16, 16, 32, 1, 1, 16),
        et_layer_add(16 * 16 * 32),
        /* stack 3 */
        et_layer_conv(8, 8, 64, 3, 3, 32),
        et_layer_conv(8, 8, 64, 3, 3, 64),
        et_layer_conv(8, 8, 64, 1, 1, 32),
        et_layer_add(8 * 8 * 64),
        et_layer_pool(1, 1, 64, 8, 8),
        et_layer_dense(64, 10),
        et_layer_softmax(10),
    };
    int n = (int)(sizeof l / sizeof *l);
    int64_t macs = 0;
    for (int i = 0; i < n; i++)
        macs += l[i].macs;
    cr_assert_eq(macs, 12501632);
    et_target_catalog *c = builtin();
    expect_close("ResNet-8 (MLPerf Tiny IC), M4 120 MHz, tflm-reference",
                 predict(c, "cortex-m4f-120mhz", "tflm-reference", l, n), 1000 / 1.420);
    expect_close("ResNet-8 (MLPerf Tiny IC), M4 120 MHz, cmsis-nn",
                 predict(c, "cortex-m4f-120mhz", "cmsis-nn", l, n), 1000 / 2.567);
    et_targets_destroy(c);
}

/* Held out: MobileNetV2 alpha 0.30, 80x80x3, 1000 classes on the
 * STM32F746G-Discovery (Cortex-M7, 216 MHz), TensorFlow Lite for
 * Microcontrollers 2.5 with CMSIS-NN: 129 ms
 * (https://blog.plumerai.com/2021/10/cortex-m-inference-software/). The
 * Cortex-M7 figures come from the M4's and a cycle ratio measured with
 * another engine on both boards; this latency was not used to set them.
 * edgetrain's MobileNetV2 is Keras's (last conv 1280, then global average
 * pooling and a 1280->1000 dense): 8,970,112 MACs. */
Test(latency, mobilenetv2_on_cortex_m7_held_out)
{
    et_target_catalog *c = builtin();
    int n = 0;
    int64_t macs = 0;
    et_layer_desc *l = impulse_layers(ET_MODEL_MOBILENETV2, 0.30, 80, 3, 1000, &n, &macs);
    cr_assert_eq(macs, 8970112);
    expect_close("MobileNetV2 a0.30 80x80, M7 216 MHz, cmsis-nn (held out)",
                 predict(c, "cortex-m7-216mhz", "cmsis-nn", l, n), 129);
    free(l);
    et_targets_destroy(c);
}

/* TFLM's person detection model (MobileNetV1 alpha 0.25, 96x96x1, 2
 * classes; tensorflow/tflite-micro person_detection/training_a_model.md:
 * 7,157,888 MACs):
 * - ESP32-S3 at 240 MHz: 2,300 ms without ESP-NN, 54 ms with it
 *   (https://github.com/espressif/esp-tflite-micro/blob/master/README.md);
 * - Raspberry Pi Pico (RP2040, 133 MHz): 2,200 ms (Eben Upton's slides, as
 *   reported at hocdirect.co.uk/2021/03/08/next-pi-silicon-...).
 * These set those targets' constants: a consistency check. */
Test(latency, person_detection_on_esp32s3_and_rp2040)
{
    et_target_catalog *c = builtin();
    int n = 0;
    int64_t macs = 0;
    et_layer_desc *l = impulse_layers(ET_MODEL_MOBILENETV1, 0.25, 96, 1, 2, &n, &macs);
    cr_assert_eq(macs, 7157888);
    expect_close("person detection, ESP32-S3 240 MHz, esp-nn",
                 predict(c, "esp32-s3-240mhz", "esp-nn", l, n), 54);
    expect_close("person detection, ESP32-S3 240 MHz, tflm-reference",
                 predict(c, "esp32-s3-240mhz", "tflm-reference", l, n), 2300);
    expect_close("person detection, RP2040 133 MHz, cmsis-nn",
                 predict(c, "rp2040-133mhz", NULL, l, n), 2200);
    free(l);
    et_targets_destroy(c);
}

/* ------------------------------------------------------------------------
 * The commands, as a user meets them.
 */

static json_t *parse_json(const char *out)
{
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    cr_assert(j, "stdout is not one JSON object (%s): %s", e.text, out);
    cr_assert(json_is_object(j));
    return j;
}

static json_t *get(json_t *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *tok = strtok(buf, "."); tok && o; tok = strtok(NULL, "."))
        o = json_object_get(o, tok);
    cr_assert(o, "%s is missing", path);
    return o;
}

/* Three classes of 12x12 grayscale pictures, imported. */
static const char *small_project(const char *dir)
{
    static const char *const names[] = {"dark", "bright", "striped"};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 12; i++) {
            unsigned char file[32 + 144];
            int hn = snprintf((char *)file, 32, "P5\n12 12\n255\n");
            for (int j = 0; j < 144; j++)
                file[hn + j] = (unsigned char)(k == 0   ? 20 + (j * 7 + i) % 23
                                               : k == 1 ? 220 + (j + i) % 30
                                                        : ((j / 12) % 2 ? 230 : 10));
            char rel[64];
            snprintf(rel, sizeof rel, "in/%s/%03d.pgm", names[k], i);
            tu_write(tu_path(dir, rel), file, (size_t)hn + 144);
        }
    const char *proj = tu_path(dir, "proj");
    cr_assert_eq(tu_run(NULL, NULL, "init", proj, NULL), 0);
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "import", tu_path(dir, "in"), NULL), 0);
    return proj;
}

Test(cli, targets_lists_and_checks_files, .timeout = 60)
{
    const char *dir = tu_tmpdir();
    char *out = NULL, *err = NULL;
    cr_assert_eq(tu_run(&out, NULL, "targets", NULL), 0);
    cr_assert(strstr(out, "cortex-m4f-120mhz") && strstr(out, "120 MHz") &&
                  strstr(out, "640 KiB") && strstr(out, "cmsis-nn, tflm-reference"),
              "%s", out);
    free(out);
    cr_assert_eq(tu_run(&out, NULL, "targets", "--json", NULL), 0);
    json_t *j = parse_json(out);
    cr_assert_geq(json_array_size(get(j, "targets")), 10);
    cr_assert_str_eq(json_string_value(get(j, "default_target")), "cortex-m4f-80mhz");
    json_decref(j);
    free(out);
    cr_assert_eq(tu_run(&out, NULL, "targets", "rp2040-133mhz", "--json", NULL), 0);
    j = parse_json(out);
    cr_assert_eq(json_integer_value(get(j, "target.ram_bytes")), 270336);
    cr_assert_gt(json_array_size(get(j, "target.sources")), 0);
    json_decref(j);
    free(out);
    cr_assert_eq(tu_run(&out, NULL, "targets", "cortex-m7-216mhz", NULL), 0);
    cr_assert(strstr(out, "Sources:") && strstr(out, "blog.plumerai.com"), "%s", out);
    free(out);

    const char *bad = "{\"targets\": [{\"name\": \"x\"}]}";
    tu_write(tu_path(dir, "bad.json"), bad, strlen(bad));
    cr_assert_eq(
        tu_run(&out, &err, "targets", "--targets", tu_path(dir, "bad.json"), "--json", NULL), 2);
    cr_assert(strstr(err, "bad.json: targets[0] ('x'): key 'description' is missing"), "%s", err);
    j = parse_json(out);
    cr_assert_str_eq(json_string_value(get(j, "error.code")), "bad input");
    json_decref(j);
    free(out);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "targets", "no-such-board", NULL), 2);
    cr_assert(strstr(err, "no target 'no-such-board'; known targets:"), "%s", err);
    free(err);
}

Test(cli, profile_impulse_then_model, .timeout = 110)
{
    const char *dir = tu_tmpdir();
    const char *proj = small_project(dir);
    char *out = NULL, *err = NULL;
    /* Before training: the impulse, priced untrained. */
    cr_assert_eq(tu_run(&out, &err, "-C", proj, "profile", "--json", NULL), 0, "%s", err);
    json_t *j = parse_json(out);
    cr_assert_str_eq(json_string_value(get(j, "profiled")), "impulse");
    cr_assert_str_eq(json_string_value(get(j, "target")), "cortex-m4f-80mhz");
    cr_assert_str_eq(json_string_value(get(j, "engine")), "cmsis-nn");
    cr_assert(json_is_null(get(j, "model_id")));
    cr_assert_eq(json_integer_value(get(j, "classes")), 3);
    for (int p = 0; p < 2; p++) {
        json_t *x = get(j, p ? "int8" : "float32");
        cr_assert_gt(json_real_value(get(x, "latency_ms")), 0);
        cr_assert_gt(json_integer_value(get(x, "ram_bytes")),
                     json_integer_value(get(x, "input_bytes")));
        cr_assert_gt(json_integer_value(get(x, "rom_bytes")),
                     json_integer_value(get(x, "plan_bytes")));
        cr_assert_gt(json_integer_value(get(x, "macs")), 0);
        cr_assert_gt(json_integer_value(get(x, "params")), 0);
        cr_assert(json_is_true(get(x, "fits_ram")));
        cr_assert(!json_object_get(x, "layers"), "layers only with --verbose");
    }
    cr_assert_eq(json_integer_value(get(j, "int8.input_bytes")), 12 * 12);
    cr_assert_eq(json_integer_value(get(j, "float32.input_bytes")), 12 * 12 * 4);
    json_int_t macs = json_integer_value(get(j, "int8.macs"));
    json_decref(j);
    free(out);
    free(err);

    /* After training: the model version's stored plans, same shapes. */
    cr_assert_eq(
        tu_run(NULL, &err, "-C", proj, "train", "--epochs", "1", "--batch-size", "8", NULL), 0,
        "%s", err);
    free(err);
    cr_assert_eq(tu_run(&out, &err, "-C", proj, "profile", "--verbose", "--json", "--target",
                        "cortex-m7-216mhz", "--engine", "tflm-reference", NULL),
                 0, "%s", err);
    j = parse_json(out);
    cr_assert_str_eq(json_string_value(get(j, "profiled")), "model");
    cr_assert_eq(json_integer_value(get(j, "model_id")), 1);
    cr_assert(json_is_false(get(j, "plans_rebuilt")));
    cr_assert_str_eq(json_string_value(get(j, "engine")), "tflm-reference");
    cr_assert_eq(json_integer_value(get(j, "int8.macs")), macs);
    json_t *layers = get(j, "int8.layers");
    cr_assert_gt(json_array_size(layers), 3);
    cr_assert_str_eq(json_string_value(get(json_array_get(layers, 0), "kind")), "conv2d_maxpool");
    json_decref(j);
    free(out);
    free(err);

    /* Text, with the per-layer table. */
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "profile", "--verbose", NULL), 0);
    cr_assert(strstr(out, "Model 1") && strstr(out, "peak RAM") && strstr(out, "of which input") &&
                  strstr(out, "int8 layers") && strstr(out, "fully_connected"),
              "%s", out);
    free(out);

    /* A changed impulse makes the model stale: the impulse is profiled
     * again, and --model still prices the stored version. */
    cr_assert_eq(
        tu_run(NULL, NULL, "-C", proj, "impulse", "set", "input.width=16", "input.height=16", NULL),
        0);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "profile", "--json", NULL), 0);
    j = parse_json(out);
    cr_assert_str_eq(json_string_value(get(j, "profiled")), "impulse");
    cr_assert_eq(json_integer_value(get(j, "int8.input_bytes")), 16 * 16);
    json_decref(j);
    free(out);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "profile", "--model", "1", "--json", NULL), 0);
    j = parse_json(out);
    cr_assert_str_eq(json_string_value(get(j, "profiled")), "model");
    cr_assert_eq(json_integer_value(get(j, "int8.input_bytes")), 12 * 12);
    json_decref(j);
    free(out);

    /* Bad usage: exit 2, the message says what is allowed. */
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "profile", "--target", "cortex-m9", NULL), 2);
    cr_assert(strstr(err, "known targets"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "profile", "--engine", "esp-nn", NULL), 2);
    cr_assert(strstr(err, "has no figures for engine 'esp-nn'; it has:"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "profile", "--model", "9", NULL), 2);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "profile", "--model", "1", "--impulse", NULL), 2);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", dir, "profile", NULL), 2, "not a project");
    free(err);

    /* A project's own targets.json is read. */
    const char *mine = "{\"targets\": [{\"name\": \"tiny-board\", \"description\": \"4 KB\", "
                       "\"clock_hz\": 8e6, \"ram_bytes\": 4096, \"flash_bytes\": 16384, "
                       "\"engines\": {\"c\": {\"int8\": {\"conv\": 50, \"depthwise\": 50, "
                       "\"pointwise\": 50, \"dense\": 50}, \"float32\": {\"conv\": 90, "
                       "\"depthwise\": 90, \"pointwise\": 90, \"dense\": 90}}}, \"sources\": "
                       "[{\"url\": \"datasheet\", \"note\": \"a guess for the test\"}]}]}";
    tu_write(tu_path(proj, "targets.json"), mine, strlen(mine));
    cr_assert_eq(
        tu_run(&out, NULL, "-C", proj, "profile", "--target", "tiny-board", "--json", NULL), 0);
    j = parse_json(out);
    cr_assert(json_is_false(get(j, "float32.fits_ram")), "the float32 arena exceeds 4 KB");
    json_decref(j);
    free(out);
}

/* A user with a small board sees, before training, which MobileNet widths
 * fit: the current impulse, then every other width, each priced as
 * `profile --impulse` would price it. */
Test(cli, profile_variants_before_training, .timeout = 60)
{
    const char *dir = tu_tmpdir();
    const char *proj = small_project(dir);
    char *out = NULL, *err = NULL;
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "impulse", "set", "input.width=48",
                        "input.height=48", NULL),
                 0);
    cr_assert_eq(tu_run(&out, &err, "-C", proj, "profile", "--variants", "--json", "--target",
                        "cortex-m0plus-48mhz", NULL),
                 0, "%s", err);
    json_t *j = parse_json(out);
    json_t *v = get(j, "variants");
    /* The conv net, 7 MobileNetV1 and 6 MobileNetV2 widths. */
    cr_assert_eq(json_array_size(v), 14);
    cr_assert(json_is_true(get(json_array_get(v, 0), "current")));
    cr_assert_str_eq(json_string_value(get(json_array_get(v, 0), "model")), "conv");
    cr_assert_eq(json_integer_value(json_array_get(get(j, "input"), 0)), 48);
    cr_assert_eq(json_integer_value(get(j, "classes")), 3);
    int fit = 0, too_big = 0;
    json_int_t v1_025_macs = 0, v1_025_ram = 0;
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *x = json_array_get(v, i);
        cr_assert(!json_object_get(x, "error"), "%s", json_string_value(get(x, "error")));
        bool fits = json_is_true(get(x, "int8.fits_ram")) && json_is_true(get(x, "int8.fits_flash"));
        fit += fits;
        too_big += !fits;
        if (!strcmp(json_string_value(get(x, "model")), "mobilenetv1") &&
            fabs(json_real_value(get(x, "alpha")) - 0.25) < 1e-9) {
            v1_025_macs = json_integer_value(get(x, "int8.macs"));
            v1_025_ram = json_integer_value(get(x, "int8.ram_bytes"));
        }
    }
    /* 32 KiB of RAM and 256 KiB of flash: the small widths fit, the large do not. */
    cr_assert(fit > 0 && too_big > 0, "%d fit, %d do not", fit, too_big);
    json_decref(j);
    free(out);
    free(err);
    /* The same figures as pricing that impulse itself. */
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "impulse", "set", "learning.model=mobilenetv1",
                        "learning.alpha=0.25", NULL),
                 0);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "profile", "--impulse", "--json", "--target",
                        "cortex-m0plus-48mhz", NULL),
                 0);
    j = parse_json(out);
    cr_assert_eq(json_integer_value(get(j, "int8.macs")), v1_025_macs);
    cr_assert_eq(json_integer_value(get(j, "int8.ram_bytes")), v1_025_ram);
    json_decref(j);
    free(out);
    /* Now the current impulse is that MobileNet: listed once, first. */
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "profile", "--variants", NULL), 0);
    cr_assert(strstr(out, "mobilenetv1 a0.25 *") && strstr(out, "mobilenetv2 a0.35") &&
                  !strstr(out, "conv"),
              "%s", out);
    free(out);
    /* Too small an input for a MobileNet: said per line, the command still succeeds. */
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "impulse", "set", "learning.model=conv",
                        "input.width=28", "input.height=28", NULL),
                 0);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "profile", "--variants", NULL), 0);
    cr_assert(strstr(out, "does not suit mobilenetv2"), "%s", out);
    free(out);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "profile", "--variants", "--model", "1", NULL), 2);
    cr_assert(strstr(err, "--variants"), "%s", err);
    free(err);
}
