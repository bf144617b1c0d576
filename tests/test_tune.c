/* The tuner: search spaces and their errors, budgets, the Pareto front,
 * pruning before training, successive halving, failed trials, resuming
 * after a kill, the same sequence for the same seed, and the tune list /
 * show / select / plot commands. Projects are tiny (12x12 grey pictures,
 * a few epochs), so that each test takes seconds. */
#include "testutil.h"

#include "edgetrain/estimate.h"
#include "edgetrain/train.h"
#include "edgetrain/tune.h"
#include "tune/tune_internal.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <omp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static json_t *parse_json(const char *out)
{
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    cr_assert(j, "stdout is not one JSON object (%s): %s", e.text, out);
    cr_assert(json_is_object(j));
    return j;
}

/* tu_db_int, waiting for the lock: polled while a tuner writes (testutil's open has
 * no busy timeout). */
static long db_int(const char *proj, const char *sql)
{
    char path[2100];
    snprintf(path, sizeof path, "%s/edgetrain.db", proj);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK, "%s", path);
    sqlite3_busy_timeout(db, 10000);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s: %s", sql, sqlite3_errmsg(db));
    long v = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Three classes of 12x12 grey pictures that a small conv net tells apart:
 * dark, bright and striped, every picture different. */
static const char *make_project(const char *dir, int per_class)
{
    static const char *const names[] = {"dark", "bright", "striped"};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < per_class; i++) {
            unsigned char file[32 + 144];
            int hn = snprintf((char *)file, 32, "P5\n12 12\n255\n");
            uint64_t s = (uint64_t)(k * 1000 + i + 1) * 0x9E3779B97F4A7C15ull;
            for (int j = 0; j < 144; j++) {
                s ^= s >> 29;
                s *= 0xBF58476D1CE4E5B9ull;
                int noise = (int)((s >> 40) % 24);
                file[hn + j] = (unsigned char)(k == 0   ? 20 + noise
                                               : k == 1 ? 210 + noise
                                                        : ((j / 12) % 2 ? 220 : 10) + noise);
            }
            char rel[64];
            snprintf(rel, sizeof rel, "in/%s/%03d.pgm", names[k], i);
            tu_write(tu_path(dir, rel), file, (size_t)hn + 144);
        }
    /* tu_path's buffers rotate: keep the project's path in one of our own. */
    static char proj[2048];
    snprintf(proj, sizeof proj, "%s", tu_path(dir, "proj"));
    cr_assert_eq(tu_run(NULL, NULL, "init", proj, NULL), 0);
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "import", tu_path(dir, "in"), NULL), 0);
    return proj;
}

static et_tune_space *space_of(const char *json)
{
    et_tune_space *s = NULL;
    et_error err = {0};
    cr_assert_eq(et_tune_space_parse(json, strlen(json), "test", &s, &err), 0, "%s", err.msg);
    return s;
}

static void space_error(const char *json, const char *a, const char *b)
{
    et_tune_space *s = NULL;
    et_error err = {0};
    cr_assert_eq(et_tune_space_parse(json, strlen(json), "space.json", &s, &err), ET_EINVAL,
                 "accepted: %s", json);
    cr_assert_null(s);
    cr_assert(strstr(err.msg, a), "'%s' not in: %s", a, err.msg);
    if (b)
        cr_assert(strstr(err.msg, b), "'%s' not in: %s", b, err.msg);
}

/* A tiny conv space: 1 layer of 4 or 8 filters, 3 epochs. */
static const char *tiny_space =
    "{\"input\": {\"size\": [12]}, \"processing\": {\"color\": [\"grayscale\"]},"
    " \"learning\": [{\"model\": \"conv\", \"conv_layers\": [[4], [8]], \"kernel\": [3],"
    "  \"dense_layers\": [[]], \"dropout\": [0.1]}],"
    " \"training\": {\"learning_rate\": [0.01, 0.02], \"epochs\": [3], \"batch_size\": [16],"
    "  \"augment\": [false]}}";

static const et_target *find_target(et_target_catalog **cat, const char *name)
{
    et_error err = {0};
    cr_assert_eq(et_targets_load(NULL, NULL, cat, &err), 0, "%s", err.msg);
    const et_target *t = et_targets_find(*cat, name);
    cr_assert(t, "no target %s", name);
    return t;
}

/* ------------------------------------------------------------------------
 * Spaces, sizes, the Pareto front.
 */
Test(tune, space_parses_and_round_trips)
{
    et_tune_space *s = space_of(
        "{\"input\": {\"size\": [32, [48, 40], 64], \"resize\": \"squash\"},"
        " \"processing\": {\"color\": [\"grayscale\", \"rgb\"]},"
        " \"learning\": [{\"model\": \"conv\", \"conv_layers\": [[16], [16, 32], \"8:5,16:3\"],"
        "   \"kernel\": [3, 5], \"dense_layers\": [[], [32]], \"batch_norm\": [false, true],"
        "   \"weight\": 2},"
        "  {\"model\": \"mobilenetv2\", \"alpha\": [0.1, 0.35], \"head_neurons\": [0, 16],"
        "   \"learning_rate\": 0.001}],"
        " \"training\": {\"learning_rate\": [0.0005, 0.002], \"epochs\": [10], \"augment\": "
        "[false, true], \"dropout\": [0.1, 0.25]}}");
    char *a = et_tune_space_to_json(s);
    cr_assert(a);
    et_tune_space *s2 = space_of(a);
    char *b = et_tune_space_to_json(s2);
    cr_assert_str_eq(a, b, "the canonical JSON parses to the same space");
    cr_assert(strstr(a, "\"batch_norm\""), "%s", a);
    /* conv: 3 sizes x 2 colours x 3 layer sets x 2 kernels x 2 dense x 2 batch norm x 2 lr x
     * 2 augment x 2 dropout; mobilenetv2: 3 sizes x 2 colours x 2 alphas x 2 heads x 1 lr x 2 x 2.
     */
    cr_assert_float_eq(et_tune_space_size(s),
                       3 * 2 * 3 * 2 * 2 * 2 * 2 * 2 * 2 + 3 * 2 * 2 * 2 * 2 * 2, 1e-9);
    cr_assert(et_tune_space_drop_rgb(s2));
    cr_assert_not(et_tune_space_drop_rgb(s2), "only once");
    free(a);
    free(b);
    et_tune_space_destroy(s);
    et_tune_space_destroy(s2);
}

Test(tune, space_errors_name_the_key_and_what_is_allowed)
{
    space_error("{\"input\": {\"size\": [32]", "space.json:1:", NULL);
    space_error("{\"inputs\": {}}", "unknown block 'inputs'", "input, processing, learning");
    space_error("{\"input\": {\"width\": [32]}}", "input.width", "size, resize");
    space_error("{\"input\": {\"resize\": [\"squash\", \"fill\"]}}", "input.resize[1]",
                "squash, fit-shortest, fit-longest");
    space_error("{\"input\": {\"size\": [4]}}", "input.size[0]", "8..512");
    space_error("{\"input\": {\"size\": []}}", "input.size", "at least one alternative");
    space_error("{\"processing\": {\"color\": [\"sepia\"]}}", "processing.color[0]",
                "rgb, grayscale");
    space_error("{\"learning\": [{\"alpha\": [0.35]}]}", "learning[0]", "'model' is required");
    space_error("{\"learning\": [{\"model\": \"resnet\"}]}", "learning[0].model",
                "conv, mobilenetv1, mobilenetv2");
    space_error("{\"learning\": [{\"model\": \"mobilenetv2\", \"alpha\": [0.35, 0.3]}]}",
                "learning[0].alpha[1]", "0.05, 0.1, 0.35");
    space_error("{\"learning\": [{\"model\": \"conv\", \"alpha\": [0.35]}]}", "learning[0].alpha",
                "mobilenetv1 and mobilenetv2 only");
    space_error("{\"learning\": [{\"model\": \"conv\", \"conv_layers\": [16, 32]}]}",
                "learning[0].conv_layers", "list of alternatives");
    space_error("{\"learning\": [{\"model\": \"conv\", \"conv_layers\": [[16, 2000]]}]}",
                "learning[0].conv_layers[0][1]", "1..1024");
    space_error("{\"learning\": {\"model\": \"conv\", \"conv_layers\": [\"16:9\"]}}",
                "learning[0].conv_layers[0]", "kernel 9");
    space_error("{\"learning\": [{\"model\": \"conv\", \"depth\": 3}]}", "learning[0].depth",
                "conv_layers");
    space_error("{\"learning\": [{\"model\": \"mobilenetv1\", \"batch_norm\": [true]}]}",
                "learning[0].batch_norm", "conv only");
    space_error("{\"learning\": [{\"model\": \"conv\", \"batch_norm\": [true, 1]}]}",
                "learning[0].batch_norm[1]", "true or false");
    space_error("{\"training\": {\"learning_rate\": [0]}}", "training.learning_rate[0]", "(0, 1]");
    space_error("{\"training\": {\"augment\": [\"yes\"]}}", "training.augment[0]", "true or false");
    space_error("{\"training\": {\"momentum\": [0.9]}}", "training.momentum", "learning_rate");
}

Test(tune, sizes_and_latencies)
{
    int64_t b = 0;
    double ms = 0;
    et_error err = {0};
    cr_assert_eq(et_parse_size("128k", &b, &err), 0);
    cr_assert_eq(b, 131072);
    cr_assert_eq(et_parse_size("128KiB", &b, &err), 0);
    cr_assert_eq(b, 131072);
    cr_assert_eq(et_parse_size("512KB", &b, &err), 0);
    cr_assert_eq(b, 524288);
    cr_assert_eq(et_parse_size("1.5M", &b, &err), 0);
    cr_assert_eq(b, 1572864);
    cr_assert_eq(et_parse_size("1000", &b, &err), 0);
    cr_assert_eq(b, 1000);
    cr_assert_eq(et_parse_size("12x", &b, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "'12x'") && strstr(err.msg, "KiB"), "%s", err.msg);
    cr_assert_eq(et_parse_size("0k", &b, &err), ET_EINVAL);
    cr_assert_eq(et_parse_size("lots", &b, &err), ET_EINVAL);
    cr_assert_eq(et_parse_latency("100ms", &ms, &err), 0);
    cr_assert_float_eq(ms, 100, 1e-9);
    cr_assert_eq(et_parse_latency("0.5s", &ms, &err), 0);
    cr_assert_float_eq(ms, 500, 1e-9);
    cr_assert_eq(et_parse_latency("250us", &ms, &err), 0);
    cr_assert_float_eq(ms, 0.25, 1e-9);
    cr_assert_eq(et_parse_latency("20", &ms, &err), 0);
    cr_assert_float_eq(ms, 20, 1e-9);
    cr_assert_eq(et_parse_latency("fast", &ms, &err), ET_EINVAL);
    cr_assert_eq(et_parse_latency("3 min", &ms, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "ms, s or us"), "%s", err.msg);
    et_tune_objective o;
    cr_assert_eq(et_tune_objective_parse("latency", &o, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "int8-accuracy, float32-accuracy"), "%s", err.msg);
}

Test(tune, pareto_front)
{
    /* a: best accuracy; b: fastest; c: smallest; d: dominated by a; e: equal to b (both
     * stay); f: invalid (no results) and would otherwise dominate everything. */
    double acc[] = {0.95, 0.90, 0.85, 0.94, 0.90, 0.99};
    double lat[] = {50, 10, 30, 60, 10, 1};
    double ram[] = {100, 80, 20, 120, 80, 1};
    bool valid[] = {true, true, true, true, true, false};
    bool front[6];
    et_pareto_front(acc, lat, ram, valid, 6, front);
    cr_assert(front[0] && front[1] && front[2]);
    cr_assert_not(front[3], "worse than a in all three");
    cr_assert(front[4], "a tie dominates nothing");
    cr_assert_not(front[5]);
    et_pareto_front(acc, lat, ram, NULL, 6, front);
    cr_assert(front[5] && !front[0] && !front[1] && !front[2], "valid NULL: all count");
}

Test(tune, drawing_is_seeded_and_mobilenets_get_sizes_they_take)
{
    et_tune_space *s =
        space_of("{\"input\": {\"size\": [16, 32, 48]},"
                 " \"learning\": [{\"model\": \"conv\", \"conv_layers\": [[4], [8], [4, 8]]},"
                 "  {\"model\": \"mobilenetv1\", \"alpha\": [0.1, 0.25]}],"
                 " \"training\": {\"learning_rate\": [0.001, 0.01]}}");
    et_impulse base = et_impulse_defaults();
    uint64_t r1 = 7, r2 = 7, r3 = 8;
    bool differs = false, saw_v1 = false;
    for (int i = 0; i < 40; i++) {
        et_impulse a, b, c;
        et_tune_space_sample(s, &base, 5, &r1, &a);
        et_tune_space_sample(s, &base, 5, &r2, &b);
        et_tune_space_sample(s, &base, 5, &r3, &c);
        char *ja = et_impulse_to_json(&a, false), *jb = et_impulse_to_json(&b, false),
             *jc = et_impulse_to_json(&c, false);
        cr_assert_str_eq(ja, jb);
        differs = differs || strcmp(ja, jc);
        cr_assert_eq(a.seed, 5);
        if (a.model == ET_MODEL_MOBILENETV1) {
            saw_v1 = true;
            cr_assert_geq(a.width, 32, "MobileNet drawn at %d px", a.width);
            et_error err = {0};
            cr_assert_eq(et_impulse_validate(&a, &err), 0, "%s", err.msg);
        }
        free(ja);
        free(jb);
        free(jc);
    }
    cr_assert(differs && saw_v1);
    et_tune_space_destroy(s);
}

Test(tune, default_and_current_spaces_fit_the_data, .timeout = 60)
{
    const char *dir = tu_tmpdir();
    const char *proj = make_project(dir, 6);
    et_project *p = tu_open(proj);
    et_tune_space *s = NULL;
    et_error err = {0};
    cr_assert_eq(et_tune_space_default(p, &s, &err), 0, "%s", err.msg);
    char *json = et_tune_space_to_json(s);
    /* 12 px grey pictures: only their own size, grayscale, conv nets of at most 3 layers
     * (12 / 2^3 = 1), no MobileNet (it takes 32 px and more). */
    json_t *j = json_loads(json, 0, NULL);
    cr_assert_eq(json_array_size(json_object_get(json_object_get(j, "input"), "size")), 1, "%s",
                 json);
    cr_assert_eq(json_array_size(json_object_get(json_object_get(j, "processing"), "color")), 1);
    cr_assert_eq(json_array_size(json_object_get(j, "learning")), 1, "%s", json);
    cr_assert_null(strstr(json, "mobilenet"));
    /* Batch norm always (free on the device); augmentation off and on. */
    json_t *bn = json_object_get(json_array_get(json_object_get(j, "learning"), 0), "batch_norm");
    cr_assert_eq(json_array_size(bn), 1, "%s", json);
    cr_assert(json_is_true(json_array_get(bn, 0)), "%s", json);
    cr_assert_eq(json_array_size(json_object_get(json_object_get(j, "training"), "augment")), 2,
                 "%s", json);
    json_t *alts =
        json_object_get(json_array_get(json_object_get(j, "learning"), 0), "conv_layers");
    size_t k;
    json_t *a;
    json_array_foreach(alts, k, a) cr_assert_leq(json_array_size(a), 3, "12 / 2^4 < 1: %s", json);
    json_decref(j);
    free(json);
    et_tune_space_destroy(s);
    et_impulse imp;
    int64_t version = 0;
    cr_assert_eq(et_impulse_current(p, &imp, &version, &err), 0);
    cr_assert_eq(et_tune_space_around(&imp, &s, &err), 0, "%s", err.msg);
    cr_assert_gt(et_tune_space_size(s), 10);
    /* Every candidate around a valid impulse is valid. */
    uint64_t rng = 1;
    for (int i = 0; i < 50; i++) {
        et_impulse c;
        et_tune_space_sample(s, &imp, 1, &rng, &c);
        cr_assert_eq(et_impulse_validate(&c, &err), 0, "%s", err.msg);
    }
    et_tune_space_destroy(s);
    et_project_close(p);
}

/* ------------------------------------------------------------------------
 * Runs in this process (the library).
 */
static int events_started;

/* make_project(dir, per_class) opened, and in *o the defaults to tune it
 * over space_json (*s; the caller destroys it) for cortex-m4f-80mhz (from
 * *cat, which the caller destroys). */
static et_project *space_tune(int per_class, const char *space_json, const char **proj,
                              et_tune_options *o, et_tune_space **s, et_target_catalog **cat)
{
    *proj = make_project(tu_tmpdir(), per_class);
    *o = et_tune_defaults();
    o->target = find_target(cat, "cortex-m4f-80mhz");
    *s = space_of(space_json);
    o->space = *s;
    return tu_open(*proj);
}

/* space_tune over tiny_space (4 candidates) with 10 pictures per label. */
static et_project *tiny_tune(const char **proj, et_tune_options *o, et_tune_space **s,
                             et_target_catalog **cat)
{
    return space_tune(10, tiny_space, proj, o, s, cat);
}

static void count_events(void *ctx, const et_tune_event *e)
{
    (void)ctx;
    events_started += e->kind == ET_TUNE_EVENT_STARTED;
}

Test(tune, over_budget_candidates_are_skipped_without_training, .timeout = 60)
{
    const char *proj;
    et_tune_options o;
    et_tune_space *s;
    et_target_catalog *cat = NULL;
    et_project *p = tiny_tune(&proj, &o, &s, &cat);
    o.max_trials = 4;
    o.max_ram_bytes = 64; /* nothing fits in 64 bytes */
    et_tune_summary sum;
    et_error err = {0};
    events_started = 0;
    cr_assert_eq(et_tune_run(p, &o, count_events, NULL, &sum, &err), 0, "%s", err.msg);
    cr_assert_eq(events_started, 0, "nothing was trained");
    cr_assert_eq(sum.counts[ET_TRIAL_SKIPPED], 4, "the space has 4 candidates, each drawn once");
    cr_assert_eq(sum.best_trial, 0);
    cr_assert(strstr(sum.stop_reason, "no candidate left") || strstr(sum.stop_reason, "fits"), "%s",
              sum.stop_reason);
    et_tune_trial *t = NULL;
    size_t n = 0;
    cr_assert_eq(et_tune_trials_list(p, sum.run_id, &t, &n, &err), 0);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(t[i].status, ET_TRIAL_SKIPPED);
        cr_assert_eq(t[i].attempts, 0);
        cr_assert_not(t[i].trained);
        cr_assert(t[i].profiled, "skipped trials keep their costs");
        cr_assert(strstr(t[i].error, "int8 RAM") && strstr(t[i].error, "over the 64 B budget by"),
                  "%s", t[i].error);
        cr_assert_not(t[i].pareto);
    }
    free(t);
    /* A latency budget names the latency. */
    o.max_ram_bytes = 0;
    o.max_latency_ms = 0.0001;
    cr_assert_eq(et_tune_run(p, &o, NULL, NULL, &sum, &err), 0, "%s", err.msg);
    cr_assert_eq(sum.counts[ET_TRIAL_SKIPPED], 4);
    et_tune_trial one;
    cr_assert_eq(et_tune_trial_get(p, sum.best_trial ? sum.best_trial : 5, &one, &err), 0, "%s",
                 err.msg);
    cr_assert(strstr(one.error, "int8 latency") && strstr(one.error, "ms budget"), "%s", one.error);
    et_tune_space_destroy(s);
    et_targets_destroy(cat);
    et_project_close(p);
}

Test(tune, a_time_budget_fits_the_brackets_or_skips_what_cannot_start, .timeout = 90)
{
    const char *dir = tu_tmpdir();
    const char *proj = make_project(dir, 10);
    et_project *p = tu_open(proj);
    et_target_catalog *cat = NULL;
    et_tune_options o = et_tune_defaults();
    o.target = find_target(&cat, "cortex-m4f-80mhz");
    /* 1000 epochs of 64 px pictures cannot train in 4 s on any machine: the brackets are
     * fitted to the time (fewer epochs), or, where not one epoch fits, nothing starts. */
    et_tune_space *big =
        space_of("{\"input\": {\"size\": [64]}, \"learning\": [{\"model\": \"conv\","
                 " \"conv_layers\": [[64, 128]]}], \"training\": {\"learning_rate\": [0.01, 0.02],"
                 " \"epochs\": [1000], \"batch_size\": [8]}}");
    o.space = big;
    o.time_budget_s = 4;
    et_tune_summary sum;
    et_error err = {0};
    double t0 = et_now_s();
    cr_assert_eq(et_tune_run(p, &o, NULL, NULL, &sum, &err), 0, "%s", err.msg);
    cr_assert_lt(et_now_s() - t0, 4 + 30, "the budget was respected, give or take a trial");
    et_tune_trial *t = NULL;
    size_t n = 0;
    cr_assert_eq(et_tune_trials_list(p, sum.run_id, &t, &n, &err), 0);
    for (size_t i = 0; i < n; i++) {
        cr_assert_lt(t[i].full_epochs, 1000, "trial %lld kept 1000 epochs", (long long)t[i].id);
        cr_assert_lt(t[i].epochs, 1000);
        cr_assert_eq(t[i].impulse.epochs, t[i].full_epochs,
                     "the trial's impulse is the one its run trains (select gives it)");
        cr_assert_eq(t[i].drawn_epochs, 1000, "what the space drew is kept");
    }
    if (n == 0)
        cr_assert(strstr(sum.stop_reason, "time budget"), "%s", sum.stop_reason);
    else
        cr_assert_eq(sum.counts[ET_TRIAL_FAILED], 0, "%s", t[0].error);
    free(t);
    et_tune_space_destroy(big);
    et_targets_destroy(cat);
    et_project_close(p);
}

Test(tune, endgame_epochs_fit_the_time_left)
{
    /* 10 s left, the first epoch 3 s (with the costs paid once), each
     * further one 2 s: 1 + floor(7 / 2) = 4 epochs. */
    cr_assert_eq(tune_endgame_epochs(10, 3, 5, 100), 4);
    cr_assert_eq(tune_endgame_epochs(10, 3, 5, 2), 2, "never beyond the impulse's epochs");
    cr_assert_eq(tune_endgame_epochs(2.9, 3, 5, 100), 0, "not even one epoch");
    cr_assert_eq(tune_endgame_epochs(10, 3, 5, 0), 0, "nothing left to train");
    cr_assert_eq(tune_endgame_epochs(10, 3, 3, 100), 0, "no estimate");
}

/* Estimates are scaled per model kind once that kind has finished a rung,
 * by all kinds' ratio before, and by nothing before any rung. */
Test(tune, time_ratio_is_learnt_per_model_kind)
{
    cr_assert_float_eq(tune_time_ratio(0, 0, 0, 0), 1.0, 1e-12, "nothing measured");
    cr_assert_float_eq(tune_time_ratio(0, 0, 30, 10), 3.0, 1e-12, "all kinds' ratio");
    cr_assert_float_eq(tune_time_ratio(50, 10, 30, 10), 5.0, 1e-12, "the kind's own ratio");
    cr_assert_float_eq(tune_time_ratio(1, 10, 30, 10), 0.1, 1e-12);
    cr_assert_float_eq(tune_time_ratio(1000, 1, 0, 0), 20.0, 1e-12, "capped");
    cr_assert_float_eq(tune_time_ratio(0.001, 1, 0, 0), 0.05, 1e-12, "floored");
}

/* Makes the machine's cached per-op rates `factor` times too slow, for
 * every thread count (the tuner times a job's share of the cores). */
static void slow_rates_down(double factor)
{
    int saved = omp_get_max_threads();
    for (int k = 1; k <= omp_get_num_procs(); k++) {
        omp_set_num_threads(k);
        et_machine_rates r;
        et_error err = {0};
        cr_assert_eq(et_machine_rates_get(&r, &err), 0, "%s", err.msg);
        char path[4200];
        snprintf(path, sizeof path, "%s/edgetrain/machine-%s.json", getenv("XDG_CACHE_HOME"),
                 r.key);
        json_t *j = json_load_file(path, 0, NULL);
        cr_assert_not_null(j, "%s", path);
        const char *key;
        json_t *v;
        json_object_foreach(j, key, v)
        {
            if (json_is_real(v) && strncmp(key, "model.", 6) && strcmp(key, "correction") &&
                strcmp(key, "seconds"))
                json_real_set(v, json_real_value(v) * factor);
        }
        cr_assert_eq(json_dump_file(j, path, 0), 0);
        json_decref(j);
    }
    omp_set_num_threads(saved);
}

/* Candidates are priced on real steps of their own model (et_model_timing),
 * not on the machine's per-op rates, which miss some models by several
 * times (5x5 convs). With rates made 10^8 times too slow, the rates would
 * say that not one epoch fits the budget; the run trains anyway, and
 * prices each rung near what it took. */
Test(tune, candidates_are_priced_on_their_own_timing, .timeout = 60)
{
    char cache[4096];
    snprintf(cache, sizeof cache, "%s", tu_path(tu_tmpdir(), "cache"));
    setenv("XDG_CACHE_HOME", cache, 1);
    slow_rates_down(1e8);
    const char *proj;
    et_tune_options o;
    et_tune_space *s;
    et_target_catalog *cat = NULL;
    et_project *p = tiny_tune(&proj, &o, &s, &cat);
    o.max_trials = 2;
    o.rungs = 1;
    o.time_budget_s = 60;
    et_tune_summary sum;
    et_error err = {0};
    cr_assert_eq(et_tune_run(p, &o, NULL, NULL, &sum, &err), 0, "%s", err.msg);
    cr_assert_eq(sum.counts[ET_TRIAL_DONE], 2, "%s", sum.stop_reason);
    et_tune_trial *t = NULL;
    size_t n = 0;
    cr_assert_eq(et_tune_trials_list(p, sum.run_id, &t, &n, &err), 0);
    cr_assert_eq(n, 2);
    for (size_t i = 0; i < n; i++) {
        /* What the rates say about the same model and epochs. */
        et_model *m = NULL;
        cr_assert_eq(et_model_create_from_impulse(&t[i].impulse, 3, 1, &m, &err), 0, "%s", err.msg);
        et_machine_rates r;
        cr_assert_eq(et_machine_rates_get(&r, &err), 0);
        et_train_estimate e;
        et_estimate_training(m, &r, 24, 6, t[i].epochs, true, &e);
        et_model_destroy(m);
        cr_assert_gt(e.seconds, o.time_budget_s, "the rates put trial %lld past the budget",
                     (long long)t[i].id);
        cr_assert_eq(t[i].full_epochs, 3, "not shrunk to fit: trial %lld", (long long)t[i].id);
        cr_assert_lt(t[i].estimated_seconds, e.seconds / 100, "trial %lld: %g s, rates %g s",
                     (long long)t[i].id, t[i].estimated_seconds, e.seconds);
    }
    free(t);
    et_tune_space_destroy(s);
    et_targets_destroy(cat);
    et_project_close(p);
}

/* A project of per_class pictures per label where a run over space_json
 * trained 2 trials to the end (2 rungs); the endgame tests resume it. */
static et_project *two_trials_done(int per_class, const char *space_json, const char **proj,
                                   et_target_catalog **cat, et_tune_space **s, et_tune_options *o)
{
    et_project *p = space_tune(per_class, space_json, proj, o, s, cat);
    o->max_trials = 2;
    o->rungs = 2;
    et_tune_summary sum;
    et_error err = {0};
    cr_assert_eq(et_tune_run(p, o, NULL, NULL, &sum, &err), 0, "%s", err.msg);
    cr_assert_eq(sum.counts[ET_TRIAL_DONE], 2);
    return p;
}

Test(tune, the_endgame_trains_the_leader_on, .timeout = 60)
{
    const char *proj = NULL;
    et_target_catalog *cat = NULL;
    et_tune_space *s = NULL;
    et_tune_options o;
    et_project *p = two_trials_done(
        20,
        "{\"input\": {\"size\": [12]}, \"processing\": {\"color\": [\"grayscale\"]},"
        " \"learning\": [{\"model\": \"conv\", \"conv_layers\": [[8]], \"dense_layers\": [[]],"
        "   \"dropout\": [0.1]}],"
        " \"training\": {\"learning_rate\": [0.01, 0.003], \"epochs\": [3],"
        "  \"batch_size\": [16], \"augment\": [false]}}",
        &proj, &cat, &s, &o);
    et_tune_summary sum;
    et_error err = {0};
    /* As if a time budget had cut both short at 3 of their runs' 12 epochs
     * (a last rung fitted to the time left, or a deadline: the estimates,
     * which a test cannot pin down, decide), and the run had been cut off;
     * it resumes with time to spare and nothing left to draw. */
    tu_db_exec(proj, "UPDATE tuner_trials SET full_epochs = 12");
    tu_db_exec(proj, "UPDATE tuner_runs SET status = 'interrupted'");
    et_tune_options r = et_tune_defaults();
    r.resume = true;
    r.target = o.target;
    r.time_budget_s = 120;
    cr_assert_eq(et_tune_run(p, &r, NULL, NULL, &sum, &err), 0, "%s", err.msg);
    /* Done in seconds of the 120: the run says it ended early, and why. */
    cr_assert(strstr(sum.stop_reason, "ended before the time budget: nothing left to train") &&
                  strstr(sum.stop_reason, "unused"),
              "%s", sum.stop_reason);
    et_tune_trial *t = NULL;
    size_t n = 0;
    cr_assert_eq(et_tune_trials_list(p, sum.run_id, &t, &n, &err), 0);
    cr_assert_eq(n, 2, "nothing new was drawn");
    /* The best first, then the other: each trained on to its 12 epochs. */
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(t[i].status, ET_TRIAL_DONE, "%s", t[i].error);
        cr_assert(strncmp(t[i].error, "endgame:", 8) == 0, "%s", t[i].error);
        cr_assert_eq(t[i].epochs, 12, "%s", t[i].history);
        json_t *h = json_loads(t[i].history, 0, NULL);
        cr_assert_eq(json_array_size(h), 2, "%s", t[i].history);
        cr_assert_eq(json_integer_value(json_object_get(json_array_get(h, 1), "epochs")), 12);
        json_decref(h);
    }
    free(t);
    et_tune_space_destroy(s);
    et_targets_destroy(cat);
    et_project_close(p);
}

/* In the endgame, with no run to finish and nothing training, the time left
 * trains new candidates in full (one per job) rather than going unused,
 * until the space has none left. */
Test(tune, the_endgame_fills_unused_time_with_new_candidates, .timeout = 60)
{
    const char *proj = NULL;
    et_target_catalog *cat = NULL;
    et_tune_space *s = NULL;
    et_tune_options o;
    et_project *p = two_trials_done(
        10,
        "{\"input\": {\"size\": [12]}, \"processing\": {\"color\": [\"grayscale\"]},"
        " \"learning\": [{\"model\": \"conv\", \"conv_layers\": [[4], [8]], \"dense_layers\": [[]],"
        "   \"dropout\": [0.1]}],"
        " \"training\": {\"learning_rate\": [0.01, 0.02, 0.03], \"epochs\": [3],"
        "  \"batch_size\": [16], \"augment\": [false]}}",
        &proj, &cat, &s, &o);
    et_tune_summary sum;
    et_error err = {0};
    /* Resumed, as if after 10 s, with a time budget whose endgame (the last
     * 99 % of it) has begun: both trials' runs are complete, so the endgame
     * has nothing to finish. */
    tu_db_exec(proj, "UPDATE tuner_runs SET status = 'interrupted', max_trials = 0, seconds = 10");
    et_tune_options r = et_tune_defaults();
    r.resume = true;
    r.target = o.target;
    r.time_budget_s = 120;
    r.endgame_share = 0.99;
    cr_assert_eq(et_tune_run(p, &r, NULL, NULL, &sum, &err), 0, "%s", err.msg);
    et_tune_trial *t = NULL;
    size_t n = 0;
    cr_assert_eq(et_tune_trials_list(p, sum.run_id, &t, &n, &err), 0);
    cr_assert_eq(n, 6, "the space's other 4 candidates were drawn");
    for (size_t i = 2; i < n; i++) {
        cr_assert_eq(t[i].status, ET_TRIAL_DONE, "trial %lld: %s", (long long)t[i].id, t[i].error);
        cr_assert_eq(t[i].rungs, 1, "trained in full, not judged");
        cr_assert_eq(t[i].epochs, 3, "its full epochs: %s", t[i].history);
    }
    cr_assert(strstr(sum.stop_reason, "ended before the time budget") &&
                  strstr(sum.stop_reason, "no candidate left"),
              "%s", sum.stop_reason);
    free(t);
    et_tune_space_destroy(s);
    et_targets_destroy(cat);
    et_project_close(p);
}

Test(tune, successive_halving_promotes_the_best_and_prunes_the_rest, .timeout = 90)
{
    const char *dir = tu_tmpdir();
    const char *proj = make_project(dir, 20);
    et_project *p = tu_open(proj);
    et_target_catalog *cat = NULL;
    et_tune_options o = et_tune_defaults();
    o.target = find_target(&cat, "cortex-m4f-80mhz");
    /* Three candidates; one learns nothing (a learning rate far too high). */
    et_tune_space *s = space_of(
        "{\"input\": {\"size\": [12]}, \"processing\": {\"color\": [\"grayscale\"]},"
        " \"learning\": [{\"model\": \"conv\", \"conv_layers\": [[8]], \"dense_layers\": [[]],"
        "   \"dropout\": [0.1]}],"
        " \"training\": {\"learning_rate\": [0.01, 0.003, 1.0], \"epochs\": [6],"
        "  \"batch_size\": [16], \"augment\": [false]}}");
    o.space = s;
    o.max_trials = 3;
    o.rungs = 2;
    o.min_steps = 1;
    et_tune_summary sum;
    et_error err = {0};
    cr_assert_eq(et_tune_run(p, &o, NULL, NULL, &sum, &err), 0, "%s", err.msg);
    cr_assert_eq(sum.counts[ET_TRIAL_DONE], 1, "one of 3 reaches the last rung");
    cr_assert_eq(sum.counts[ET_TRIAL_PRUNED], 2);
    et_tune_trial *t = NULL;
    size_t n = 0;
    cr_assert_eq(et_tune_trials_list(p, sum.run_id, &t, &n, &err), 0);
    cr_assert_eq(n, 3);
    const et_tune_trial *done = NULL;
    for (size_t i = 0; i < n; i++)
        if (t[i].status == ET_TRIAL_DONE)
            done = &t[i];
    cr_assert(done);
    cr_assert_eq(done->rung, 1);
    cr_assert_eq(done->rungs, 2);
    cr_assert_eq(done->epochs, 6, "the last rung trains the full epochs");
    cr_assert_eq(done->attempts, 2, "trained at both rungs");
    cr_assert_eq(sum.best_trial, done->id);
    json_t *h = json_loads(done->history, 0, NULL);
    cr_assert_eq(json_array_size(h), 2, "%s", done->history);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(h, 0), "epochs")), 2,
                 "rung 0: 6 / 3 epochs");
    /* Warm start: rung 1 went on from rung 0's weights, training epochs 3..6. */
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(h, 0), "from_epoch")), 0);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(h, 1), "from_epoch")), 2, "%s",
                 done->history);
    cr_assert_eq(done->from_epoch, 2);
    json_decref(h);
    /* Its two rungs are one run of its impulse: training that impulse
     * straight (what 'tune select' then 'train' does) gives the same figures. */
    et_train_options to = et_train_defaults();
    to.impulse = &done->impulse;
    to.no_save = true;
    to.skip_int8 = true;
    et_train_result straight;
    cr_assert_eq(et_train(p, &to, NULL, NULL, &straight, &err), 0, "%s", err.msg);
    cr_assert_eq(straight.validation.loss, done->val_loss[ET_PRECISION_FLOAT32], "%.9g vs %.9g",
                 straight.validation.loss, done->val_loss[ET_PRECISION_FLOAT32]);
    cr_assert_eq(straight.validation.accuracy, done->val_accuracy[ET_PRECISION_FLOAT32]);
    et_train_result_free(&straight);
    /* A finished run keeps no checkpoints. */
    char ckpt[2200];
    snprintf(ckpt, sizeof ckpt, "%s/cache/tune/run%lld", proj, (long long)sum.run_id);
    cr_assert_neq(access(ckpt, F_OK), 0, "%s is left", ckpt);
    for (size_t i = 0; i < n; i++) {
        if (t[i].status != ET_TRIAL_PRUNED)
            continue;
        cr_assert_eq(t[i].rung, 0);
        cr_assert_eq(t[i].epochs, 2);
        cr_assert(t[i].trained);
        cr_assert(strstr(t[i].error, "pruned after rung 1 of 2") &&
                      strstr(t[i].error, "its weights' average"),
                  "%s", t[i].error);
        /* Promotion compared the rung-0 figures of the weights' moving
         * average: the loser's was no better then. Only that rung measured
         * one; the last rung is judged on the trial's own figures. */
        json_t *hh = json_loads(t[i].history, 0, NULL);
        json_t *h0 = json_loads(done->history, 0, NULL);
        json_t *a = json_object_get(json_array_get(hh, 0), "average"),
               *a0 = json_object_get(json_array_get(h0, 0), "average");
        cr_assert(json_is_real(a) && json_is_real(a0), "%s", done->history);
        cr_assert_leq(json_real_value(a), json_real_value(a0));
        cr_assert_null(json_object_get(json_array_get(h0, 1), "average"), "%s", done->history);
        json_decref(hh);
        json_decref(h0);
        cr_assert_neq(t[i].impulse.learning_rate, done->impulse.learning_rate);
    }
    cr_assert_neq(done->impulse.learning_rate, 1.0, "the one that learns nothing is pruned");
    free(t);
    et_tune_space_destroy(s);
    et_targets_destroy(cat);
    et_project_close(p);
}

/* et_train's warm start: a checkpoint after 2 epochs, then 2 more on top of
 * it; a checkpoint of another impulse is refused with the file's name. */
/* make_project(dir, 12) opened, and its current impulse in *imp. */
static et_project *project_of_12(const char *dir, et_impulse *imp)
{
    et_project *p = tu_open(make_project(dir, 12));
    int64_t version = 0;
    et_error err = {0};
    cr_assert_eq(et_impulse_current(p, imp, &version, &err), 0, "%s", err.msg);
    return p;
}

/* Validation loss of each epoch (1..4) of a run, by et_train's callback. */
static void keep_val_loss(void *ctx, const et_epoch_stats *s)
{
    if (s->epoch >= 1 && s->epoch <= 4)
        ((double *)ctx)[s->epoch] = s->val_loss;
}

/* Trains o's impulse for 4 epochs straight, then as 2 + 2 epochs over one
 * 4-epoch schedule through checkpoint ckpt: the same figures, bit for bit,
 * the last two epochs' validation losses included. The first part differs
 * from a 2-epoch run's loss two_epoch_loss (when not 0): its rate decays
 * over 4 epochs. */
static void two_parts_are_one_run(et_project *p, et_train_options *o, const char *ckpt,
                                  double two_epoch_loss)
{
    et_error err = {0};
    double straight_val[5] = {0}, part_val[5] = {0};
    o->init_from = NULL;
    o->checkpoint_out = NULL;
    o->epochs = 4;
    o->schedule_epochs = 0;
    et_train_result straight, part1, part2;
    cr_assert_eq(et_train(p, o, keep_val_loss, straight_val, &straight, &err), 0, "%s", err.msg);
    o->epochs = 2;
    o->schedule_epochs = 4;
    o->checkpoint_out = ckpt;
    cr_assert_eq(et_train(p, o, NULL, NULL, &part1, &err), 0, "%s", err.msg);
    if (two_epoch_loss)
        cr_assert_neq(part1.validation.loss, two_epoch_loss,
                      "the first part's rate decays over 4 epochs, not 2");
    o->epochs = 4;
    o->init_from = ckpt;
    o->checkpoint_out = NULL;
    cr_assert_eq(et_train(p, o, keep_val_loss, part_val, &part2, &err), 0, "%s", err.msg);
    cr_assert_eq(part2.start_epoch, 2);
    for (int e = 3; e <= 4; e++)
        cr_assert_eq(part_val[e], straight_val[e], "epoch %d: %.9g vs %.9g", e, part_val[e],
                     straight_val[e]);
    cr_assert_eq(part2.best_epoch, straight.best_epoch);
    cr_assert_eq(part2.validation.loss, straight.validation.loss, "%.9g vs %.9g",
                 part2.validation.loss, straight.validation.loss);
    cr_assert_eq(part2.validation.accuracy, straight.validation.accuracy);
    et_train_result_free(&straight);
    et_train_result_free(&part1);
    et_train_result_free(&part2);
}

/* Quantization-aware fine-tuning of a net with batch norm: its statistics
 * are re-estimated after each fine-tuning epoch under fake quantization,
 * and the int8 model made from them predicts as the float32 one does on
 * this separable set. */
Test(tune, int8_fine_tuning_of_a_batch_norm_net, .timeout = 60)
{
    const char *dir = tu_tmpdir();
    et_impulse imp;
    et_project *p = project_of_12(dir, &imp);
    et_error err = {0};
    const char *const set[] = {"learning.model=mobilenetv2", "input.width=32", "input.height=32",
                               "learning.batch_size=8", "learning.learning_rate=0.005"};
    for (size_t i = 0; i < sizeof set / sizeof set[0]; i++)
        cr_assert_eq(et_impulse_set(&imp, set[i], &err), 0, "%s", err.msg);
    et_train_options o = et_train_defaults();
    o.impulse = &imp;
    o.no_save = true;
    o.epochs = 6;
    o.qat = true;
    o.qat_epochs = 2;
    et_train_result r;
    cr_assert_eq(et_train(p, &o, NULL, NULL, &r, &err), 0, "%s", err.msg);
    cr_assert(r.has_int8, "%s", r.quant_error);
    cr_assert(!strcmp(r.quant_path, "minmax") || !strcmp(r.quant_path, "mse") ||
                  !strcmp(r.quant_path, "qat"),
              "%s", r.quant_path);
    cr_assert_gt(r.validation.accuracy, 0.9, "float32 learns the three patterns");
    cr_assert_geq(r.agreement, 0.8, "int8 predicts as float32 does (%.3f)", r.agreement);
    et_train_result_free(&r);
    et_project_close(p);
}

Test(tune, train_goes_on_from_a_checkpoint, .timeout = 60)
{
    const char *dir = tu_tmpdir();
    et_impulse imp;
    et_project *p = project_of_12(dir, &imp);
    et_error err = {0};
    cr_assert_eq(et_impulse_set(&imp, "learning.conv_layers=4:3", &err), 0, "%s", err.msg);
    cr_assert_eq(et_impulse_set(&imp, "learning.batch_size=8", &err), 0, "%s", err.msg);
    char ckpt[2200], ckpt2[2200];
    snprintf(ckpt, sizeof ckpt, "%s/two.ckpt", dir);
    snprintf(ckpt2, sizeof ckpt2, "%s/four.ckpt", dir);
    et_train_options o = et_train_defaults();
    o.impulse = &imp;
    o.no_save = true;
    o.skip_int8 = true;
    o.epochs = 2;
    o.checkpoint_out = ckpt;
    et_train_result a, b, c;
    cr_assert_eq(et_train(p, &o, NULL, NULL, &a, &err), 0, "%s", err.msg);
    cr_assert_eq(a.start_epoch, 0);
    cr_assert_eq(a.epochs_run, 2);
    cr_assert_eq(access(ckpt, R_OK), 0);
    /* Two more epochs on top: only epochs 3 and 4 are trained. */
    o.epochs = 4;
    o.init_from = ckpt;
    o.checkpoint_out = ckpt2;
    cr_assert_eq(et_train(p, &o, NULL, NULL, &b, &err), 0, "%s", err.msg);
    cr_assert_eq(b.start_epoch, 2);
    cr_assert_eq(b.epochs_run, 4);
    cr_assert_geq(b.best_epoch, 1);
    /* The same again: the same result (deterministic). */
    o.checkpoint_out = NULL;
    cr_assert_eq(et_train(p, &o, NULL, NULL, &c, &err), 0, "%s", err.msg);
    cr_assert_eq(c.validation.loss, b.validation.loss);
    et_train_result_free(&c);
    /* Asked for no more epochs than it holds: nothing is trained, its best is measured. */
    o.init_from = ckpt2;
    o.epochs = 4;
    cr_assert_eq(et_train(p, &o, NULL, NULL, &c, &err), 0, "%s", err.msg);
    cr_assert_eq(c.start_epoch, 4);
    cr_assert_eq(c.epochs_run, 4);
    cr_assert_eq(c.best_epoch, b.best_epoch);
    cr_assert_eq(c.validation.loss, b.validation.loss, "the checkpoint keeps the best epoch");
    et_train_result_free(&c);
    /* A run in two parts over one schedule (the tuner's rungs) is the straight
     * run, bit for bit: weights, schedule, optimizer state and best epoch go
     * on; with batch norm too (its statistics are re-estimated each epoch). */
    two_parts_are_one_run(p, &o, ckpt, a.validation.loss);
    et_impulse v2 = imp;
    cr_assert_eq(et_impulse_set(&v2, "learning.model=mobilenetv2", &err), 0, "%s", err.msg);
    cr_assert_eq(et_impulse_set(&v2, "input.width=32", &err), 0, "%s", err.msg);
    cr_assert_eq(et_impulse_set(&v2, "input.height=32", &err), 0, "%s", err.msg);
    o.impulse = &v2;
    two_parts_are_one_run(p, &o, ckpt, 0);
    o.impulse = &imp;
    o.epochs = 4;
    /* A schedule shorter than the epochs trained: refused before any work. */
    o.init_from = NULL;
    o.schedule_epochs = 3;
    cr_assert_eq(et_train(p, &o, NULL, NULL, &c, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "schedule spans 3 epochs"), "%s", err.msg);
    o.schedule_epochs = 0;
    o.init_from = ckpt2;
    /* Another impulse: refused, naming the file. */
    cr_assert_eq(et_impulse_set(&imp, "learning.dropout=0.3", &err), 0, "%s", err.msg);
    cr_assert_eq(et_train(p, &o, NULL, NULL, &c, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "four.ckpt") && strstr(err.msg, "another impulse"), "%s", err.msg);
    /* Not a checkpoint at all. */
    tu_write(ckpt2, "hello", 5);
    cr_assert_eq(et_train(p, &o, NULL, NULL, &c, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "not an edgetrain checkpoint"), "%s", err.msg);
    et_train_result_free(&a);
    et_train_result_free(&b);
    et_project_close(p);
}

/* A deadline that has passed: the first epoch still ends, then training
 * stops with it (the tuner's time budget for a rung estimated too short). */
/* et_train's weight_average measures the moving average of the weights at
 * the end of the run, the same each time, and changes nothing else. */
Test(tune, train_measures_its_weights_average_and_changes_nothing_else, .timeout = 60)
{
    const char *proj = make_project(tu_tmpdir(), 10);
    et_project *p = tu_open(proj);
    et_impulse imp;
    et_error err = {0};
    cr_assert_eq(et_impulse_default_for(p, &imp, &err), 0, "%s", err.msg);
    imp.epochs = 3;
    imp.batch_size = 8;
    et_train_options o = et_train_defaults();
    o.impulse = &imp;
    o.no_save = true;
    o.skip_int8 = true;
    et_train_result plain, a, b;
    cr_assert_eq(et_train(p, &o, NULL, NULL, &plain, &err), 0, "%s", err.msg);
    cr_assert_not(plain.has_average);
    o.weight_average = true;
    cr_assert_eq(et_train(p, &o, NULL, NULL, &a, &err), 0, "%s", err.msg);
    cr_assert_eq(et_train(p, &o, NULL, NULL, &b, &err), 0, "%s", err.msg);
    cr_assert(a.has_average && b.has_average);
    cr_assert(a.average_accuracy >= 0 && a.average_accuracy <= 1, "%g", a.average_accuracy);
    cr_assert_eq(a.average_accuracy, b.average_accuracy, "seeded: the same average");
    cr_assert_eq(a.validation.loss, plain.validation.loss, "the run itself is unchanged");
    cr_assert_eq(a.validation.accuracy, plain.validation.accuracy);
    cr_assert_eq(a.best_epoch, plain.best_epoch);
    et_train_result_free(&plain);
    et_train_result_free(&a);
    et_train_result_free(&b);
    et_project_close(p);
}

Test(tune, train_stops_at_a_deadline_once_it_has_an_epoch, .timeout = 60)
{
    const char *dir = tu_tmpdir();
    et_impulse imp;
    et_project *p = project_of_12(dir, &imp);
    et_error err = {0};
    cr_assert_eq(et_impulse_set(&imp, "learning.conv_layers=4:3", &err), 0, "%s", err.msg);
    cr_assert_eq(et_impulse_set(&imp, "learning.batch_size=8", &err), 0, "%s", err.msg);
    et_train_options o = et_train_defaults();
    o.impulse = &imp;
    o.no_save = true;
    o.epochs = 5;
    o.deadline = 1; /* 1970 */
    et_train_result r;
    cr_assert_eq(et_train(p, &o, NULL, NULL, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.epochs_run, 1);
    cr_assert(r.deadline_reached);
    cr_assert(!r.interrupted);
    cr_assert(r.has_int8, "the best epoch is converted as usual: %s", r.quant_error);
    et_train_result_free(&r);
    et_project_close(p);
}

Test(tune, a_failing_trial_is_recorded_and_the_run_goes_on, .timeout = 60)
{
    const char *dir = tu_tmpdir();
    const char *proj = make_project(dir, 10);
    et_project *p = tu_open(proj);
    et_target_catalog *cat = NULL;
    et_tune_options o = et_tune_defaults();
    o.target = find_target(&cat, "cortex-m4f-80mhz");
    /* A batch larger than the training split fails in training; a MobileNet at 12 px
     * fails before it (too small for the model). */
    et_tune_space *s = space_of(
        "{\"input\": {\"size\": [12]}, \"processing\": {\"color\": [\"grayscale\"]},"
        " \"learning\": [{\"model\": \"conv\", \"conv_layers\": [[4]], \"dense_layers\": [[]],"
        "   \"batch_size\": [8, 900]},"
        "  {\"model\": \"mobilenetv2\", \"alpha\": [0.35]}],"
        " \"training\": {\"learning_rate\": [0.01], \"epochs\": [2], \"augment\": [false]}}");
    o.space = s;
    o.max_trials = 3;
    o.rungs = 1;
    et_tune_summary sum;
    et_error err = {0};
    cr_assert_eq(et_tune_run(p, &o, NULL, NULL, &sum, &err), 0, "%s", err.msg);
    cr_assert_eq(sum.counts[ET_TRIAL_DONE], 1, "the good one trains");
    cr_assert_eq(sum.counts[ET_TRIAL_FAILED], 2);
    et_tune_trial *t = NULL;
    size_t n = 0;
    cr_assert_eq(et_tune_trials_list(p, sum.run_id, &t, &n, &err), 0);
    bool batch = false, small = false;
    for (size_t i = 0; i < n; i++) {
        if (t[i].status != ET_TRIAL_FAILED)
            continue;
        if (strstr(t[i].error, "batch size 900")) {
            batch = true;
            cr_assert_eq(t[i].attempts, 1, "it was started");
        }
        if (strstr(t[i].error, "does not suit mobilenetv2")) {
            small = true;
            cr_assert_eq(t[i].attempts, 0, "never started");
            cr_assert_not(t[i].profiled);
        }
    }
    cr_assert(batch && small);
    /* Selecting a trial that never trained is refused; no impulse version is stored. */
    for (size_t i = 0; i < n; i++) {
        if (t[i].status != ET_TRIAL_FAILED)
            continue;
        int64_t version = 0;
        cr_assert_eq(et_tune_select(p, t[i].id, &version, NULL, &err), ET_EINVAL);
        cr_assert(strstr(err.msg, "never trained"), "%s", err.msg);
    }
    cr_assert_eq(tu_db_int(proj, "SELECT count(*) FROM impulses"), 0);
    free(t);
    et_tune_space_destroy(s);
    et_targets_destroy(cat);
    et_project_close(p);
}

/* The impulses a run drew, in draw order, as one string. */
/* The run's drawn impulses ("draw:json" lines), of one bracket (-1: all). */
static char *sequence(et_project *p, int64_t run, int bracket)
{
    et_tune_trial *t = NULL;
    size_t n = 0;
    et_error err = {0};
    cr_assert_eq(et_tune_trials_list(p, run, &t, &n, &err), 0);
    size_t cap = n * 4096 + 1, used = 0;
    char *s = calloc(cap, 1);
    for (size_t i = 0; i < n; i++)
        if (bracket < 0 || t[i].bracket == bracket)
            used += (size_t)snprintf(s + used, cap - used, "%d:%s\n", t[i].draw, t[i].impulse_json);
    free(t);
    return s;
}

Test(tune, the_same_seed_draws_the_same_trials, .timeout = 60)
{
    const char *dir = tu_tmpdir();
    const char *proj = make_project(dir, 8);
    et_project *p = tu_open(proj);
    et_target_catalog *cat = NULL;
    et_tune_options o = et_tune_defaults();
    o.target = find_target(&cat, "cortex-m4f-80mhz");
    et_tune_space *s =
        space_of("{\"input\": {\"size\": [12]},"
                 " \"learning\": [{\"model\": \"conv\", \"conv_layers\": [[2], [3], [4], [5], [6]],"
                 "   \"kernel\": [1, 3], \"dense_layers\": [[]]}],"
                 " \"training\": {\"learning_rate\": [0.01, 0.02, 0.03], \"epochs\": [1],"
                 " \"batch_size\": [4]}}");
    o.space = s;
    o.max_trials = 4;
    o.rungs = 1;
    o.seed = 11;
    et_tune_summary a, b, c;
    et_error err = {0};
    cr_assert_eq(et_tune_run(p, &o, NULL, NULL, &a, &err), 0, "%s", err.msg);
    cr_assert_eq(et_tune_run(p, &o, NULL, NULL, &b, &err), 0, "%s", err.msg);
    o.seed = 12;
    cr_assert_eq(et_tune_run(p, &o, NULL, NULL, &c, &err), 0, "%s", err.msg);
    char *sa = sequence(p, a.run_id, -1), *sb = sequence(p, b.run_id, -1),
         *sc = sequence(p, c.run_id, -1);
    cr_assert_str_eq(sa, sb);
    cr_assert_str_neq(sa, sc);
    cr_assert_eq(a.counts[ET_TRIAL_DONE], 4, "the trials train");
    cr_assert(strstr(sa, "\"seed\":11"), "the seed is the trials' learning.seed: %s", sa);
    free(sa);
    free(sb);
    free(sc);
    et_tune_space_destroy(s);
    et_targets_destroy(cat);
    et_project_close(p);
}

/* A trial judged by successive halving, for the model's tests. */
static et_tune_trial judged_trial(int rung, et_trial_status status, bool bn, int kernel, double lr)
{
    et_tune_trial t;
    memset(&t, 0, sizeof t);
    t.impulse = et_impulse_defaults();
    t.impulse.batch_norm = bn;
    for (int i = 0; i < t.impulse.n_conv; i++)
        t.impulse.conv[i].kernel = kernel;
    t.impulse.learning_rate = lr;
    t.rung = rung;
    t.rungs = 3;
    t.status = status;
    t.trained = true;
    return t;
}

Test(tune, model_based_sampling_favours_what_was_promoted)
{
    et_tune_trial t[32];
    int n = 0;
    /* Rung 0 of a bracket of 9: the three promoted have batch norm and 5x5
     * kernels, the six pruned have neither; skipped and failed trials are no
     * judgement. */
    for (int i = 0; i < 3; i++)
        t[n++] = judged_trial(1, ET_TRIAL_WAITING, true, 5, 0.001);
    for (int i = 0; i < 6; i++)
        t[n++] = judged_trial(0, ET_TRIAL_PRUNED, false, 3, 0.001);
    t[n++] = judged_trial(0, ET_TRIAL_SKIPPED, true, 5, 0.001);
    t[n++] = judged_trial(2, ET_TRIAL_FAILED, true, 5, 0.001);
    cr_assert_null(tune_model_fit(t, (size_t)n, 10, 0), "9 judged: too few for 10");
    cr_assert_null(tune_model_fit(t, (size_t)n, 8, 1), "nothing judged at rung 1 yet");
    tune_model *m = tune_model_fit(t, (size_t)n, 8, 0);
    cr_assert_not_null(m);
    int level, good, bad;
    tune_model_describe(m, &level, &good, &bad);
    cr_assert_eq(level, 0);
    cr_assert_eq(good, 3);
    cr_assert_eq(bad, 6);
    et_tune_trial bn5 = judged_trial(0, ET_TRIAL_PENDING, true, 5, 0.001);
    et_tune_trial bn3 = judged_trial(0, ET_TRIAL_PENDING, true, 3, 0.001);
    et_tune_trial plain3 = judged_trial(0, ET_TRIAL_PENDING, false, 3, 0.001);
    double s5 = tune_model_score(m, &bn5.impulse), s3 = tune_model_score(m, &bn3.impulse),
           p3 = tune_model_score(m, &plain3.impulse);
    cr_assert_gt(s5, s3, "5x5 kernels were promoted: %g against %g", s5, s3);
    cr_assert_gt(s3, p3, "batch norm was promoted: %g against %g", s3, p3);
    tune_model_free(m);
    /* Nobody promoted: nothing to learn. */
    cr_assert_null(tune_model_fit(t + 3, 6, 2, 0));
    /* Once rung 1 has judged enough (the 3 promoted above go on to rung 2 at
     * a high learning rate, 6 more are pruned at rung 1 at a low one), the
     * model learns from rung 1, the longer-trained judgement. */
    for (int i = 0; i < 3; i++)
        t[i] = judged_trial(2, ET_TRIAL_DONE, true, 5, 0.005);
    for (int i = 0; i < 6; i++)
        t[n++] = judged_trial(1, ET_TRIAL_PRUNED, true, 5, 0.0005);
    m = tune_model_fit(t, (size_t)n, 8, 0);
    cr_assert_not_null(m);
    tune_model_describe(m, &level, &good, &bad);
    cr_assert_eq(level, 1);
    cr_assert_eq(good, 3);
    cr_assert_eq(bad, 6);
    et_tune_trial fast = judged_trial(0, ET_TRIAL_PENDING, true, 5, 0.005);
    et_tune_trial slow = judged_trial(0, ET_TRIAL_PENDING, true, 5, 0.0005);
    cr_assert_gt(tune_model_score(m, &fast.impulse), tune_model_score(m, &slow.impulse));
    tune_model_free(m);
}

static int model_notes;

static void count_model_notes(void *ctx, const et_tune_event *e)
{
    (void)ctx;
    model_notes += e->kind == ET_TUNE_EVENT_NOTE && e->message && strstr(e->message, "draws by");
}

/* Brackets of 9 judge 3 at their second rung: the model (8 judged there)
 * draws the fourth bracket on. */
Test(tune, model_based_sampling_draws_once_the_second_rung_has_judged_enough, .timeout = 60)
{
    const char *proj = NULL;
    et_target_catalog *cat = NULL;
    et_tune_space *s = NULL;
    et_tune_options o;
    et_project *p = space_tune(
        8,
        "{\"input\": {\"size\": [12]},"
        " \"learning\": [{\"model\": \"conv\", \"conv_layers\": [[2], [3], [4], [5], [6]],"
        "   \"kernel\": [1, 3], \"dense_layers\": [[]], \"batch_norm\": [false, true]}],"
        " \"training\": {\"learning_rate\": [0.01, 0.02, 0.03], \"epochs\": [1],"
        " \"batch_size\": [4]}}",
        &proj, &o, &s, &cat);
    o.max_trials = 36; /* four brackets of 9 */
    o.seed = 5;
    o.sampler = ET_TUNE_SAMPLER_MODEL;
    et_tune_summary a, b, r;
    et_error err = {0};
    model_notes = 0;
    cr_assert_eq(et_tune_run(p, &o, count_model_notes, NULL, &a, &err), 0, "%s", err.msg);
    cr_assert_eq(model_notes, 1, "the fourth bracket, and only it, is drawn by the model");
    cr_assert_eq(et_tune_run(p, &o, NULL, NULL, &b, &err), 0, "%s", err.msg);
    o.sampler = ET_TUNE_SAMPLER_RANDOM;
    model_notes = 0;
    cr_assert_eq(et_tune_run(p, &o, count_model_notes, NULL, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(model_notes, 0);
    /* The same seed draws the same with the model; its first three brackets
     * are the random sampler's, its fourth is not. */
    for (int k = 0; k < 4; k++) {
        char *sa = sequence(p, a.run_id, k), *sb = sequence(p, b.run_id, k),
             *sr = sequence(p, r.run_id, k);
        cr_assert(strlen(sa) > 0, "bracket %d drew", k);
        cr_assert_str_eq(sa, sb, "bracket %d:\n%s\n%s", k, sa, sb);
        if (k < 3)
            cr_assert_str_eq(sa, sr);
        else
            cr_assert_str_neq(sa, sr);
        free(sa);
        free(sb);
        free(sr);
    }
    et_tune_run_info ia, ir;
    cr_assert_eq(et_tune_run_get(p, a.run_id, &ia, &err), 0, "%s", err.msg);
    cr_assert_eq(et_tune_run_get(p, r.run_id, &ir, &err), 0, "%s", err.msg);
    cr_assert_eq(ia.sampler, ET_TUNE_SAMPLER_MODEL);
    cr_assert_eq(ir.sampler, ET_TUNE_SAMPLER_RANDOM);
    et_tune_run_info_free(&ia);
    et_tune_run_info_free(&ir);
    et_tune_space_destroy(s);
    et_targets_destroy(cat);
    et_project_close(p);
}

static int augment_notes[3];
static void count_augment_notes(void *ctx, const et_tune_event *e)
{
    (void)ctx;
    if (e->kind == ET_TUNE_EVENT_NOTE && e->message) {
        augment_notes[0] += strstr(e->message, "train without augmentation (") != NULL;
        augment_notes[1] += strstr(e->message, "train with augmentation (") != NULL;
        augment_notes[2] += strstr(e->message, "are drawn from the whole space") != NULL;
    }
}

/* A space offering augmentation off and on: each bracket draws all its
 * candidates with one of them, in turn, the first without; a space offering
 * one value is drawn as it is. */
Test(tune, brackets_alternate_augmentation_when_the_space_offers_both, .timeout = 60)
{
    const char *proj = NULL;
    et_target_catalog *cat = NULL;
    et_tune_space *s = NULL;
    et_tune_options o;
    et_project *p = space_tune(
        8,
        "{\"input\": {\"size\": [12]},"
        " \"learning\": [{\"model\": \"conv\", \"conv_layers\": [[2], [3], [4], [5], [6]],"
        "   \"kernel\": [1, 3], \"dense_layers\": [[]]}],"
        " \"training\": {\"learning_rate\": [0.01, 0.02, 0.03], \"epochs\": [1],"
        " \"batch_size\": [4], \"augment\": [false, true]}}",
        &proj, &o, &s, &cat);
    o.max_trials = 27; /* three brackets of 9 */
    o.seed = 3;
    et_tune_summary a;
    et_error err = {0};
    memset(augment_notes, 0, sizeof augment_notes);
    cr_assert_eq(et_tune_run(p, &o, count_augment_notes, NULL, &a, &err), 0, "%s", err.msg);
    cr_assert_eq(augment_notes[0], 2, "brackets 0 and 2 said so");
    cr_assert_eq(augment_notes[1], 1, "bracket 1 said so");
    et_tune_trial *t = NULL;
    size_t n = 0;
    cr_assert_eq(et_tune_trials_list(p, a.run_id, &t, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 27);
    int per_bracket[3] = {0};
    for (size_t i = 0; i < n; i++) {
        cr_assert_lt(t[i].bracket, 3);
        per_bracket[t[i].bracket]++;
        cr_assert_eq(t[i].impulse.augment, t[i].bracket % 2 == 1, "trial %lld, bracket %d",
                     (long long)t[i].id, t[i].bracket);
    }
    for (int k = 0; k < 3; k++)
        cr_assert_eq(per_bracket[k], 9);
    free(t);
    et_tune_space_destroy(s);
    /* Augmentation always on: every bracket draws it, and no bracket says so. */
    s = space_of("{\"input\": {\"size\": [12]},"
                 " \"learning\": [{\"model\": \"conv\", \"conv_layers\": [[2], [3], [4], [5], [6]],"
                 "   \"kernel\": [1, 3], \"dense_layers\": [[]]}],"
                 " \"training\": {\"learning_rate\": [0.01, 0.02], \"epochs\": [1],"
                 " \"batch_size\": [4], \"augment\": [true]}}");
    o.space = s;
    o.max_trials = 18;
    memset(augment_notes, 0, sizeof augment_notes);
    cr_assert_eq(et_tune_run(p, &o, count_augment_notes, NULL, &a, &err), 0, "%s", err.msg);
    cr_assert_eq(augment_notes[0] + augment_notes[1] + augment_notes[2], 0);
    cr_assert_eq(et_tune_trials_list(p, a.run_id, &t, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 18);
    for (size_t i = 0; i < n; i++)
        cr_assert(t[i].impulse.augment, "trial %lld", (long long)t[i].id);
    free(t);
    et_tune_space_destroy(s);
    /* 4 candidates each way, brackets of 9: the first bracket's 4 without
     * augmentation leave it short, and the 4 with it fill it, rather than the
     * run ending with half of the space untried. */
    s = space_of("{\"input\": {\"size\": [12]},"
                 " \"learning\": [{\"model\": \"conv\", \"conv_layers\": [[2], [3]],"
                 "   \"kernel\": [1], \"dense_layers\": [[]]}],"
                 " \"training\": {\"learning_rate\": [0.01, 0.02], \"epochs\": [1],"
                 " \"batch_size\": [4], \"augment\": [false, true]}}");
    o.space = s;
    o.max_trials = 20; /* more than the space holds */
    memset(augment_notes, 0, sizeof augment_notes);
    cr_assert_eq(et_tune_run(p, &o, count_augment_notes, NULL, &a, &err), 0, "%s", err.msg);
    cr_assert_eq(augment_notes[2], 1, "the first bracket said so");
    cr_assert_eq(et_tune_trials_list(p, a.run_id, &t, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 8, "the whole space was tried");
    int with = 0;
    for (size_t i = 0; i < n; i++)
        with += t[i].impulse.augment;
    cr_assert_eq(with, 4);
    free(t);
    et_tune_space_destroy(s);
    et_targets_destroy(cat);
    et_project_close(p);
}

/* Hyperband: brackets of 9, 3 and 1 candidates over 3, 2 and 1 rungs, their
 * first rungs at 1/9, 1/3 and all of the epochs, then 9 again. */
Test(tune, hyperband_cycles_its_bracket_sizes, .timeout = 60)
{
    const char *proj = NULL;
    et_target_catalog *cat = NULL;
    et_tune_space *s = NULL;
    et_tune_options o;
    et_project *p = space_tune(
        8,
        "{\"input\": {\"size\": [12]},"
        " \"learning\": [{\"model\": \"conv\", \"conv_layers\": [[2], [3], [4], [5], [6]],"
        "   \"kernel\": [1, 3], \"dense_layers\": [[]]}],"
        " \"training\": {\"learning_rate\": [0.01, 0.02, 0.03], \"epochs\": [9],"
        " \"batch_size\": [4]}}",
        &proj, &o, &s, &cat);
    o.max_trials = 9 + 3 + 1 + 2;
    o.min_steps = 1;
    o.hyperband = true;
    o.seed = 3;
    et_tune_summary sum;
    et_error err = {0};
    cr_assert_eq(et_tune_run(p, &o, NULL, NULL, &sum, &err), 0, "%s", err.msg);
    et_tune_trial *t = NULL;
    size_t n = 0;
    cr_assert_eq(et_tune_trials_list(p, sum.run_id, &t, &n, &err), 0, "%s", err.msg);
    const int want_n[4] = {9, 3, 1, 2}, want_rungs[4] = {3, 2, 1, 1}, want_first[4] = {1, 3, 9, 9};
    int got_n[4] = {0};
    for (size_t i = 0; i < n; i++) {
        if (t[i].status == ET_TRIAL_SKIPPED || t[i].status == ET_TRIAL_FAILED)
            continue;
        int b = t[i].bracket;
        cr_assert(b >= 0 && b < 4, "bracket %d", b);
        got_n[b]++;
        cr_assert_eq(t[i].rungs, want_rungs[b], "trial %lld in bracket %d", (long long)t[i].id, b);
        json_t *h = json_loads(t[i].history, 0, NULL);
        cr_assert(json_array_size(h) >= 1, "trial %lld trained", (long long)t[i].id);
        cr_assert_eq(json_integer_value(json_object_get(json_array_get(h, 0), "epochs")),
                     want_first[b], "bracket %d's first rung", b);
        json_decref(h);
    }
    for (int b = 0; b < 4; b++)
        cr_assert_eq(got_n[b], want_n[b], "bracket %d admitted %d", b, got_n[b]);
    et_tune_run_info info;
    cr_assert_eq(et_tune_run_get(p, sum.run_id, &info, &err), 0, "%s", err.msg);
    cr_assert(info.hyperband);
    et_tune_run_info_free(&info);
    free(t);
    et_tune_space_destroy(s);
    et_targets_destroy(cat);
    et_project_close(p);
}

Test(tune, resume_reruns_cut_off_trials_and_keeps_finished_ones, .timeout = 90)
{
    const char *proj;
    et_tune_options o;
    et_tune_space *s;
    et_target_catalog *cat = NULL;
    et_project *p = tiny_tune(&proj, &o, &s, &cat);
    o.max_trials = 4;
    o.rungs = 1;
    et_tune_summary sum;
    et_error err = {0};
    cr_assert_eq(et_tune_run(p, &o, NULL, NULL, &sum, &err), 0, "%s", err.msg);
    cr_assert_eq(sum.counts[ET_TRIAL_DONE], 4);
    /* Pretend the run was killed while trial 3 trained and before trial 4 started. */
    tu_db_exec(proj, "UPDATE tuner_trials SET status = 'running' WHERE id = 3");
    tu_db_exec(proj, "UPDATE tuner_trials SET status = 'pending', attempts = 0, "
                     "val_f32_accuracy = NULL WHERE id = 4");
    tu_db_exec(proj, "UPDATE tuner_runs SET status = 'interrupted'");
    char before[2][64];
    for (int i = 0; i < 2; i++) {
        et_tune_trial t;
        cr_assert_eq(et_tune_trial_get(p, i + 1, &t, &err), 0);
        snprintf(before[i], sizeof before[i], "%s %d", t.finished_at, t.attempts);
    }
    et_tune_options r = et_tune_defaults();
    r.resume = true;
    r.target = o.target;
    cr_assert_eq(et_tune_run(p, &r, NULL, NULL, &sum, &err), 0, "%s", err.msg);
    cr_assert(sum.resumed);
    cr_assert_eq(sum.counts[ET_TRIAL_DONE], 4, "no trial lost");
    for (int i = 0; i < 2; i++) {
        et_tune_trial t;
        cr_assert_eq(et_tune_trial_get(p, i + 1, &t, &err), 0);
        char now[64];
        snprintf(now, sizeof now, "%s %d", t.finished_at, t.attempts);
        cr_assert_str_eq(now, before[i], "trial %d was run again", i + 1);
    }
    et_tune_trial t3, t4;
    cr_assert_eq(et_tune_trial_get(p, 3, &t3, &err), 0);
    cr_assert_eq(et_tune_trial_get(p, 4, &t4, &err), 0);
    cr_assert_eq(t3.attempts, 2, "the cut-off trial ran again");
    cr_assert_eq(t4.attempts, 1);
    cr_assert_eq(tu_db_int(proj, "SELECT count(*) FROM tuner_trials"), 4, "nothing drawn twice");
    cr_assert_eq(et_tune_run(p, &r, NULL, NULL, &sum, &err), ET_ENOTFOUND, "nothing to resume");
    et_tune_space_destroy(s);
    et_targets_destroy(cat);
    et_project_close(p);
}

/* Trials stored by an older edgetrain lack keys added since (here
 * learning.batch_norm): a resumed run still knows them, and draws none of
 * them again. */
Test(tune, resume_knows_trials_stored_before_a_key_existed, .timeout = 90)
{
    const char *proj;
    et_tune_options o;
    et_tune_space *s;
    et_target_catalog *cat = NULL;
    et_project *p = tiny_tune(&proj, &o, &s, &cat);
    o.max_trials = 2;
    o.rungs = 1;
    et_tune_summary sum;
    et_error err = {0};
    cr_assert_eq(et_tune_run(p, &o, NULL, NULL, &sum, &err), 0, "%s", err.msg);
    tu_db_exec(proj, "UPDATE tuner_trials SET impulse = json_remove(impulse, "
                     "'$.learning.batch_norm')");
    cr_assert_eq(tu_db_int(proj, "SELECT count(*) FROM tuner_trials WHERE impulse LIKE "
                                 "'%batch_norm%'"),
                 0);
    tu_db_exec(proj, "UPDATE tuner_runs SET status = 'interrupted', max_trials = 4");
    et_tune_options r = et_tune_defaults();
    r.resume = true;
    r.target = o.target;
    cr_assert_eq(et_tune_run(p, &r, NULL, NULL, &sum, &err), 0, "%s", err.msg);
    cr_assert_eq(tu_db_int(proj, "SELECT count(*) FROM tuner_trials"), 4);
    cr_assert_eq(tu_db_int(proj, "SELECT count(DISTINCT json_remove(impulse, "
                                 "'$.learning.batch_norm')) FROM tuner_trials"),
                 4, "a candidate was drawn twice");
    et_tune_space_destroy(s);
    et_targets_destroy(cat);
    et_project_close(p);
}

/* ------------------------------------------------------------------------
 * The command line (worker processes).
 */
Test(tune, cli_resumes_after_sigkill, .timeout = 120)
{
    const char *dir = tu_tmpdir();
    const char *proj = make_project(dir, 30);
    const char *space = tu_path(dir, "space.json");
    const char *json =
        "{\"input\": {\"size\": [12]}, \"processing\": {\"color\": [\"grayscale\"]},"
        " \"learning\": [{\"model\": \"conv\", \"conv_layers\": [[4], [6], [8], [10], [12]],"
        "   \"dense_layers\": [[]]}],"
        " \"training\": {\"learning_rate\": [0.01], \"epochs\": [40], \"batch_size\": [4]}}";
    tu_write(space, json, strlen(json));
    const char *cli = getenv("ET_CLI");
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execl(cli, cli, "-C", proj, "tune", "--trials", "5", "--space", space, "--jobs", "2",
              "--max-ram", "none", (char *)NULL);
        _exit(127);
    }
    /* Kill the tuner (not its workers: they end with it) once a trial has finished. */
    long finished = 0;
    /* Up to 100 s of the test's 120 (a loaded machine, sanitizers). */
    for (double t0 = et_now_s(); et_now_s() - t0 < 100 && finished == 0;) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
        finished = db_int(proj, "SELECT count(*) FROM tuner_trials WHERE status IN "
                                "('waiting', 'done', 'pruned')");
    }
    cr_assert_gt(finished, 0, "no trial finished");
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    cr_assert_eq(db_int(proj, "SELECT status = 'running' FROM tuner_runs"), 1,
                 "the run ended before the kill: nothing to resume");
    /* Remember the finished trials and how often each was started, then resume. */
    struct timespec ts = {0, 300 * 1000000L};
    nanosleep(&ts, NULL);
    char *out = NULL, *err = NULL;
    long attempts_before[6] = {0};
    for (int id = 1; id <= 5; id++) {
        char sql[160];
        snprintf(sql, sizeof sql,
                 "SELECT coalesce(max(attempts), -1) FROM tuner_trials WHERE id = %d AND status "
                 "IN ('waiting', 'done', 'pruned')",
                 id);
        attempts_before[id] = db_int(proj, sql);
    }
    cr_assert_eq(tu_run(&out, &err, "-C", proj, "tune", "--resume", "--json", NULL), 0, "%s", err);
    json_t *j = parse_json(out);
    cr_assert(json_is_true(json_object_get(j, "resumed")));
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "done");
    json_decref(j);
    free(out);
    free(err);
    cr_assert_eq(db_int(proj, "SELECT count(*) FROM tuner_trials WHERE attempts > 0"), 5,
                 "every trial trained, none lost");
    cr_assert_eq(db_int(proj, "SELECT count(*) FROM tuner_trials WHERE status IN ('pending', "
                              "'running', 'waiting')"),
                 0);
    cr_assert_eq(db_int(proj, "SELECT count(*) FROM tuner_runs"), 1);
    /* Trials finished before the kill were not trained again at that rung. */
    for (int id = 1; id <= 5; id++) {
        if (attempts_before[id] < 0)
            continue;
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT attempts - rung FROM tuner_trials WHERE id = %d", id);
        cr_assert_eq(db_int(proj, sql), 1, "trial %d trained twice at one rung", id);
    }
    cr_assert_eq(db_int(proj, "SELECT count(*) FROM tuner_trials WHERE attempts > 2"), 0);
}

/* The worker process of a trial (its command line names the project and the trial), or 0. */
static pid_t find_worker(const char *proj, long trial)
{
    DIR *d = opendir("/proc");
    pid_t found = 0;
    struct dirent *e;
    char want[64];
    snprintf(want, sizeof want, "%ld", trial);
    while (d && !found && (e = readdir(d))) {
        char path[300];
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        FILE *f = atoi(e->d_name) > 0 ? fopen(path, "rb") : NULL;
        if (!f)
            continue;
        char buf[8192];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        bool project = false, worker = false;
        for (size_t i = 0; i < n; i += strlen(buf + i) + 1) {
            project = project || !strcmp(buf + i, proj);
            if (!strcmp(buf + i, "--worker") && i + 9 < n)
                worker = !strcmp(buf + i + 9, want);
        }
        if (project && worker)
            found = (pid_t)atoi(e->d_name);
    }
    if (d)
        closedir(d);
    return found;
}

Test(tune, cli_a_worker_killed_like_by_oom_fails_its_trial_and_the_run_goes_on, .timeout = 120)
{
    const char *dir = tu_tmpdir();
    const char *proj = make_project(dir, 10);
    const char *space = tu_path(dir, "space.json");
    const char *json =
        "{\"input\": {\"size\": [12]}, \"processing\": {\"color\": [\"grayscale\"]},"
        " \"learning\": [{\"model\": \"conv\", \"conv_layers\": [[4]], \"dense_layers\": [[]]}],"
        " \"training\": {\"learning_rate\": [0.01], \"epochs\": [2, 1000], \"batch_size\": [4]}}";
    tu_write(space, json, strlen(json));
    const char *cli = getenv("ET_CLI");
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execl(cli, cli, "-C", proj, "tune", "--trials", "2", "--space", space, "--jobs", "1",
              "--max-ram", "none", (char *)NULL);
        _exit(127);
    }
    /* Kill the long trial's worker, as the out-of-memory killer would. */
    long trial = 0;
    pid_t w = 0;
    for (double t0 = et_now_s(); et_now_s() - t0 < 100 && !w;) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
        trial = db_int(proj, "SELECT coalesce(max(id), 0) FROM tuner_trials WHERE status = "
                             "'running' AND full_epochs = 1000");
        if (trial)
            w = find_worker(proj, trial);
    }
    cr_assert_gt(w, 0, "no worker found for the long trial");
    kill(w, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM tuner_trials WHERE id = %ld AND status = 'failed' AND error "
             "LIKE '%%killed by signal 9%%'",
             trial);
    cr_assert_eq(db_int(proj, sql), 1);
    cr_assert_eq(db_int(proj, "SELECT count(*) FROM tuner_trials WHERE status = 'done'"), 1,
                 "the other trial trained");
    cr_assert_eq(db_int(proj, "SELECT count(*) FROM tuner_runs WHERE status = 'done'"), 1);
}

Test(tune, cli_list_show_select_revert_and_plot, .timeout = 120)
{
    const char *dir = tu_tmpdir();
    const char *proj = make_project(dir, 10);
    const char *space = tu_path(dir, "space.json");
    tu_write(space, tiny_space, strlen(tiny_space));
    char *out = NULL, *err = NULL;
    cr_assert_eq(tu_run(&out, &err, "-C", proj, "tune", "--target", "cortex-m4f-80mhz", "--max-ram",
                        "128k", "--max-rom", "512k", "--max-latency", "500ms", "--trials", "3",
                        "--space", space, "--seed", "3", "--json", NULL),
                 0, "%s", err);
    cr_assert(strstr(err, "trial 1"), "progress on stderr: %s", err);
    json_t *j = parse_json(out);
    int64_t run = json_integer_value(json_object_get(j, "run"));
    cr_assert_eq(run, 1);
    json_t *settings = json_object_get(j, "settings");
    cr_assert_eq(
        json_integer_value(json_object_get(json_object_get(settings, "budgets"), "ram_bytes")),
        131072);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "counts"), "done")) +
                     json_integer_value(json_object_get(json_object_get(j, "counts"), "pruned")),
                 3);
    json_t *best = json_object_get(j, "best");
    cr_assert(json_is_object(best), "%s", out);
    int64_t best_id = json_integer_value(json_object_get(best, "id"));
    json_decref(j);
    free(out);
    free(err);

    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "tune", "list", "--json", NULL), 0);
    j = parse_json(out);
    json_t *trials = json_object_get(j, "trials");
    cr_assert_eq(json_array_size(trials), 3);
    json_t *first = json_array_get(trials, 0);
    cr_assert_eq(json_integer_value(json_object_get(first, "id")), best_id, "sorted by objective");
    static const char *const keys[] = {"id",   "status", "impulse", "validation", "float32",
                                       "int8", "pareto", "rung",    "epochs",     "train_seconds"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        cr_assert(json_object_get(first, keys[k]), "no '%s' in %s", keys[k], out);
    cr_assert(json_is_number(json_object_get(
        json_object_get(json_object_get(first, "validation"), "int8"), "accuracy")));
    cr_assert(json_is_number(json_object_get(json_object_get(first, "int8"), "latency_ms")));
    cr_assert(json_is_integer(json_object_get(json_object_get(first, "int8"), "ram_bytes")));
    cr_assert(json_is_integer(json_object_get(json_object_get(first, "float32"), "rom_bytes")));
    cr_assert(json_is_true(json_object_get(first, "pareto")), "the best is on the front");
    cr_assert(json_is_object(json_object_get(json_object_get(first, "impulse"), "learning")));
    json_decref(j);
    free(out);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "tune", "list", "--sort", "latency", NULL), 0);
    cr_assert(strstr(out, "Pareto front") && strstr(out, "LATENCY"), "%s", out);
    free(out);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "tune", "list", "--sort", "speed", NULL), 2);
    cr_assert(strstr(err, "speed") && strstr(err, "latency"), "%s", err);
    free(err);

    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)best_id);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "tune", "show", id, "--json", NULL), 0);
    j = parse_json(out);
    cr_assert_eq(json_integer_value(json_object_get(j, "id")), best_id);
    cr_assert(json_is_array(json_object_get(j, "history")));
    json_decref(j);
    free(out);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "tune", "show", "99", NULL), 2);
    cr_assert(strstr(err, "no tuner trial 99"), "%s", err);
    free(err);

    /* select: a new impulse version with the note; the one before can be reverted to. */
    cr_assert_eq(
        tu_run(&out, NULL, "-C", proj, "impulse", "set", "learning.epochs=7", "--json", NULL), 0);
    free(out);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "tune", "select", id, "--json", NULL), 0);
    j = parse_json(out);
    int64_t version = json_integer_value(json_object_get(j, "version"));
    int64_t previous = json_integer_value(json_object_get(j, "previous_version"));
    cr_assert_eq(version, previous + 1);
    json_decref(j);
    free(out);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "impulse", "history", "--json", NULL), 0);
    char note[64];
    snprintf(note, sizeof note, "tune select %lld", (long long)best_id);
    cr_assert(strstr(out, note), "%s", out);
    free(out);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "impulse", "--json", NULL), 0);
    j = parse_json(out);
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(json_object_get(j, "impulse"), "learning"), "epochs")),
                 3, "the trial's impulse: %s", out);
    json_decref(j);
    free(out);
    char prev[32];
    snprintf(prev, sizeof prev, "%lld", (long long)previous);
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "impulse", "revert", prev, NULL), 0);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "impulse", "--json", NULL), 0);
    j = parse_json(out);
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(json_object_get(j, "impulse"), "learning"), "epochs")),
                 7, "reverted: %s", out);
    json_decref(j);
    free(out);
    /* The text form names the trial and the training that follows. */
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "tune", "select", id, NULL), 0);
    snprintf(note, sizeof note, "is trial %lld's", (long long)best_id);
    cr_assert(strstr(out, note) && strstr(out, "Next: edgetrain train"), "%s", out);
    free(out);

    const char *svg = tu_path(dir, "tuner.svg"), *png = tu_path(dir, "tuner.png");
    cr_assert_eq(
        tu_run(&out, NULL, "-C", proj, "tune", "plot", "--out", svg, "--png", png, "--json", NULL),
        0);
    j = parse_json(out);
    cr_assert_eq(json_integer_value(json_object_get(j, "trials")), 3);
    json_decref(j);
    free(out);
    size_t n = 0;
    char *text = (char *)tu_read(svg, &n);
    cr_assert(strstr(text, "<svg") && strstr(text, "latency budget 500ms") &&
                  strstr(text, "RAM budget") && strstr(text, "<polyline"),
              "%s", text);
    free(text);
    unsigned char *bytes = tu_read(png, &n);
    cr_assert(n > 8 && !memcmp(bytes, "\x89PNG", 4));
    free(bytes);
}

Test(tune, cli_checks_its_arguments_before_any_work, .timeout = 60)
{
    const char *dir = tu_tmpdir();
    const char *proj = make_project(dir, 4);
    char *out = NULL, *err = NULL;
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "tune", "--max-ram", "12x", NULL), 2);
    cr_assert(strstr(err, "--max-ram") && strstr(err, "'12x'"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "tune", "--max-latency", "soon", NULL), 2);
    cr_assert(strstr(err, "--max-latency") && strstr(err, "soon"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "tune", "--time-budget", "forever", NULL), 2);
    cr_assert(strstr(err, "forever"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "tune", "--objective", "speed", NULL), 2);
    cr_assert(strstr(err, "int8-accuracy, float32-accuracy"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "tune", "--target", "z80", NULL), 2);
    cr_assert(strstr(err, "z80") && strstr(err, "cortex-m4f-80mhz"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "tune", "--jobs", "0", NULL), 2);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "tune", "--sampler", "smart", NULL), 2);
    cr_assert(strstr(err, "'smart'") && strstr(err, "model, random"), "%s", err);
    free(err);
    cr_assert_eq(
        tu_run(NULL, &err, "-C", proj, "tune", "--strategy", "random", "--sampler", "model", NULL),
        2);
    cr_assert(strstr(err, "--strategy halving"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "tune", "--strategy", "greedy", NULL), 2);
    cr_assert(strstr(err, "halving, hyperband, random"), "%s", err);
    free(err);
    const char *bad = tu_path(dir, "bad.json");
    const char *bad_text = "{\"input\": {\"size\": [32, \"big\"]}}";
    tu_write(bad, bad_text, strlen(bad_text));
    cr_assert_eq(
        tu_run(&out, &err, "-C", proj, "tune", "--trials", "1", "--space", bad, "--json", NULL), 2);
    cr_assert(strstr(err, "input.size[1]") && strstr(err, "bad.json"), "%s", err);
    json_t *j = parse_json(out);
    cr_assert(json_object_get(j, "error"));
    json_decref(j);
    free(out);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "tune", "--resume", "--target", "host", NULL), 2);
    cr_assert(strstr(err, "--resume"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "tune", "--resume", NULL), 2);
    cr_assert(strstr(err, "no unfinished tuner run"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "tune", "list", NULL), 2);
    cr_assert(strstr(err, "no tuner run yet"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "tune", "frobnicate", NULL), 2);
    cr_assert(strstr(err, "list, show, select, plot"), "%s", err);
    free(err);
    cr_assert_eq(tu_db_int(proj, "SELECT count(*) FROM tuner_runs"), 0, "nothing was started");
}
