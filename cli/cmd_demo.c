/* edgetrain demo [--dir DIR] [--source DIR] [--epochs N] [--no-tune]
 *                [--tune-time DURATION] [--tune-trials N]
 *
 * The workflow on Fashion-MNIST from the Debian package dataset-fashion-mnist:
 * create the project, import the 70,000 images with their class names, print
 * the data report, store the default impulse, generate its features, map
 * 2,000 of them with the feature explorer, train the default conv net for a
 * few epochs (--epochs, default 3) and test it (float32 and int8). Then a
 * short tune (3 minutes) for cortex-m4f-80mhz within 128 KB of RAM, 512 KB of
 * flash and 500 ms, over a small space of conv nets; the best trial is
 * selected, retrained for the same epochs and tested, and a table compares
 * it with the default impulse. Running it again reuses the project and its
 * caches: it goes back to the default impulse first, so each run compares
 * the same starting point. */
#include "cli.h"

#include "edgetrain/dsp.h"
#include "edgetrain/estimate.h"
#include "edgetrain/explore.h"
#include "edgetrain/train.h"
#include "edgetrain/tune.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* The tune's target and budgets: issue 7's benchmark setting. */
#define DEMO_TARGET "cortex-m4f-80mhz"
/* The boards the trained default model is profiled on. */
static const char *const profile_targets[] = {"cortex-m4f-80mhz", "cortex-m7-216mhz"};
#define N_PROFILE_TARGETS (sizeof profile_targets / sizeof profile_targets[0])
#define DEMO_MAX_RAM (128 * 1024)
#define DEMO_MAX_ROM (512 * 1024)
#define DEMO_MAX_LATENCY_MS 500.0

static const char *const fashion_names[] = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                            "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                            "Bag",         "Ankle boot"};

/* The demo's search space: conv nets that train in seconds per epoch on a
 * laptop (no MobileNets, no augmentation), and the default impulse's input
 * and epochs (no "input" or "epochs" key: the time budget shortens the
 * epochs trials train; 'train' after the demo trains the selected impulse's
 * own). 160 candidates. */
static const char demo_space[] =
    "{\"learning\": [{\"model\": \"conv\", \"conv_layers\": [[16], [32], [16, 32], [32, 16], "
    "[32, 64]], \"kernel\": [3, 5], \"dense_layers\": [[], [32]], \"dropout\": [0.1, 0.25]}], "
    "\"training\": {\"learning_rate\": [0.0005, 0.001, 0.002, 0.005], \"augment\": [false]}}";

/* One side of the before/after table: a trained, tested model version. */
typedef struct demo_model {
    et_impulse imp;
    int64_t impulse_version;
    et_train_result tr;
    et_eval_result test;
    bool profiled;
    double latency_ms;
    int64_t ram, flash; /* of the int8 model on the target */
} demo_model;

static void demo_model_free(demo_model *m)
{
    et_train_result_free(&m->tr);
    et_eval_result_free(&m->test);
}

/* Trains the current impulse for epochs (a new model version), tests it on
 * the testing split (both precisions; stored with the version) and prices
 * its int8 plan on target (when not NULL). */
static et_status train_and_test(et_project *p, int epochs, const et_target *target, demo_model *m,
                                et_error *err)
{
    et_train_options to = et_train_defaults();
    to.epochs = epochs;
    et_log_info("Training %s for %d epoch%s (edgetrain train runs the impulse's %d)",
                et_model_name(m->imp.model), epochs, epochs == 1 ? "" : "s", m->imp.epochs);
    et_status rc = et_train(p, &to, cli_print_epoch, NULL, &m->tr, err);
    if (rc < 0)
        return rc;
    et_loaded_model lm;
    rc = et_model_store_load(p, m->tr.model_id, &lm, err);
    if (rc < 0)
        return rc;
    rc = et_evaluate(p, &lm, ET_TESTING, true, true, &m->test, err);
    const char *const *ln = (const char *const *)lm.labels;
    char *tj = rc == ET_OK ? et_metrics_to_json(&m->test.float32, ln) : NULL;
    char *tq = rc == ET_OK && m->test.has_int8 ? et_metrics_to_json(&m->test.int8, ln) : NULL;
    if (tj)
        et_model_store_set_test(p, m->tr.model_id, tj, tq, NULL);
    free(tj);
    free(tq);
    et_loaded_model_free(&lm);
    if (rc < 0 || !target)
        return rc;
    et_profile_report rep;
    et_error pe = {0};
    if (et_profile_project(p, ET_PROFILE_MODEL, m->tr.model_id, target, NULL, &rep, &pe) == ET_OK) {
        m->profiled = true;
        m->latency_ms = rep.cost[ET_PRECISION_INT8].latency_ms;
        m->ram = (int64_t)rep.cost[ET_PRECISION_INT8].ram_bytes;
        m->flash = (int64_t)rep.cost[ET_PRECISION_INT8].flash_bytes;
        et_profile_report_free(&rep);
    } else {
        et_log_warn("profiling model %lld on %s: %s", (long long)m->tr.model_id, target->name,
                    pe.msg);
    }
    return ET_OK;
}

/* The tune step's outcome. */
typedef struct demo_tune {
    bool ran;
    et_tune_summary s;
    int64_t selected_version; /* 0: nothing selected (no trial had results) */
    demo_model after;
} demo_tune;

/* Tunes (budget seconds, at most trials candidates when > 0), selects the
 * best trial and retrains it for epochs. ET_EINTR on Ctrl-C. */
static et_status tune_select_retrain(cli *c, et_project *p, const et_target *target, int epochs,
                                     double budget, int trials, demo_tune *d, et_error *err)
{
    et_tune_space *space = NULL;
    et_status rc =
        et_tune_space_parse(demo_space, strlen(demo_space), "the demo's space", &space, err);
    if (rc < 0)
        return rc;
    et_tune_options o = et_tune_defaults();
    o.target = target;
    o.max_ram_bytes = DEMO_MAX_RAM;
    o.max_rom_bytes = DEMO_MAX_ROM;
    o.max_latency_ms = DEMO_MAX_LATENCY_MS;
    o.time_budget_s = budget;
    o.max_trials = trials;
    o.space = space;
    char exe[PATH_MAX];
    o.worker_exe = cli_self_exe(c, exe, sizeof exe);
    char took[32];
    et_format_duration(budget, took, sizeof took);
    et_log_info("Tuning for %s: %s, RAM 128 KiB, flash 512 KiB, latency 500 ms; conv nets "
                "(edgetrain tune searches a larger space)",
                took, DEMO_TARGET);
    d->ran = true;
    rc = et_tune_run(p, &o, cli_tune_event, NULL, &d->s, err);
    et_tune_space_destroy(space);
    if (rc < 0 || d->s.best_trial == 0)
        return rc;
    if ((rc = et_tune_select(p, d->s.best_trial, &d->selected_version, NULL, err)) < 0)
        return rc;
    int64_t v = 0;
    if ((rc = et_impulse_current(p, &d->after.imp, &v, err)) < 0)
        return rc;
    d->after.impulse_version = v;
    et_log_info("Selected trial %lld (impulse version %lld); retraining it",
                (long long)d->s.best_trial, (long long)v);
    return train_and_test(p, epochs, target, &d->after, err);
}

static json_t *model_json(const demo_model *m)
{
    char *imp = et_impulse_to_json(&m->imp, false);
    json_t *o = json_pack("{s:I,s:I,s:o,s:{s:f,s:o},s:o,s:o,s:o}", "impulse_version",
                          (json_int_t)m->impulse_version, "model_id", (json_int_t)m->tr.model_id,
                          "impulse", imp ? json_loads(imp, 0, NULL) : json_null(), "test",
                          "float32", m->test.float32.accuracy, "int8",
                          m->test.has_int8 ? json_real(m->test.int8.accuracy) : json_null(),
                          "latency_ms", m->profiled ? json_real(m->latency_ms) : json_null(),
                          "ram_bytes", m->profiled ? json_integer(m->ram) : json_null(),
                          "rom_bytes", m->profiled ? json_integer(m->flash) : json_null());
    free(imp);
    return o;
}

static void print_row(const char *name, const demo_model *m)
{
    char model[160], input[64], i8[16] = "-", lat[24] = "-", ram[24] = "-", rom[24] = "-";
    cli_describe_model(&m->imp, model, sizeof model);
    cli_describe_input(&m->imp, input, sizeof input);
    if (m->test.has_int8)
        snprintf(i8, sizeof i8, "%.2f%%", 100 * m->test.int8.accuracy);
    if (m->profiled) {
        snprintf(lat, sizeof lat, "%.1f ms", m->latency_ms);
        cli_format_bytes(m->ram, ram, sizeof ram);
        cli_format_bytes(m->flash, rom, sizeof rom);
    }
    printf("  %-9s %7.2f%% %8s %10s %10s %10s  %s, %s\n", name, 100 * m->test.float32.accuracy, i8,
           lat, ram, rom, input, model);
}

static void print_tune(const demo_tune *d, const demo_model *before, int epochs, const char *dir)
{
    const et_tune_summary *s = &d->s;
    char took[32];
    et_format_duration(s->seconds, took, sizeof took);
    int n = 0;
    for (int k = 0; k < ET_TRIAL_STATUS_COUNT; k++)
        n += s->counts[k];
    printf("\nTuner run %lld: %d trials in %s (%s): %d done, %d pruned (stopped early), %d "
           "skipped (over a budget or the time left), %d failed.\n",
           (long long)s->run_id, n, took, s->stop_reason, s->counts[ET_TRIAL_DONE],
           s->counts[ET_TRIAL_PRUNED], s->counts[ET_TRIAL_SKIPPED], s->counts[ET_TRIAL_FAILED]);
    if (!d->selected_version) {
        printf("No trial was trained within the budgets: the default impulse stays.\n");
        return;
    }
    printf("Best: trial %lld (int8 validation accuracy %.2f%%), selected as impulse version "
           "%lld and retrained for %d epoch%s (model %lld).\n",
           (long long)s->best_trial, 100 * s->best_objective, (long long)d->selected_version,
           epochs, epochs == 1 ? "" : "s", (long long)d->after.tr.model_id);
    printf("\nBefore and after, %d epoch%s each: accuracy on the %zu testing images; latency, "
           "RAM and flash of the int8 model on %s (budgets 500 ms, 128 KiB, 512 KiB):\n\n",
           epochs, epochs == 1 ? "" : "s", before->test.float32.n, DEMO_TARGET);
    printf("  %-9s %8s %8s %10s %10s %10s  %s\n", "", "FLOAT32", "INT8", "LATENCY", "RAM", "FLASH",
           "IMPULSE");
    print_row("default", before);
    print_row("selected", &d->after);
    printf("\nMore: edgetrain -C %s tune list   (all trials, the Pareto front)\n"
           "      edgetrain -C %s train       (the selected impulse's %d epochs)\n"
           "      edgetrain -C %s impulse revert %lld   (back to the default impulse)\n",
           dir, dir, d->after.imp.epochs, dir, (long long)before->impulse_version);
}

/* The default impulse for the data as the current version: stored when none
 * is, or again when a version differs from it (a previous demo's 'tune
 * select', or the user's changes). */
static et_status use_default_impulse(et_project *p, et_impulse *imp, int64_t *version,
                                     et_error *err)
{
    const char *note = "default for the data (demo)";
    et_status rc = et_impulse_current_stored(p, imp, version, note, err);
    et_impulse dflt;
    if (rc == ET_OK)
        rc = et_impulse_default_for(p, &dflt, err);
    if (rc < 0)
        return rc;
    char *a = et_impulse_to_json(imp, false), *b = et_impulse_to_json(&dflt, false);
    if (!a || !b)
        rc = et_error_set(err, ET_ENOMEM, "out of memory");
    else if (strcmp(a, b)) {
        et_log_info("Impulse version %lld is not the default: storing the default again",
                    (long long)*version);
        rc = et_impulse_save_version(p, &dflt, note, version, err);
        if (rc == ET_OK)
            *imp = dflt;
    }
    free(a);
    free(b);
    return rc;
}

/* The profile of model version id on each of profile_targets: prints a
 * table, or returns the JSON array (NULL on failure, which is only warned
 * about: the demo goes on). */
static json_t *demo_profiles(et_project *p, const et_target_catalog *cat, int64_t id, bool json)
{
    json_t *arr = json ? json_array() : NULL;
    if (!json)
        printf("\nWhat model %lld costs on a device (edgetrain profile):\n"
               "  %-18s %-8s %12s %10s %10s\n",
               (long long)id, "target", "", "latency", "RAM", "flash");
    for (size_t k = 0; k < N_PROFILE_TARGETS; k++) {
        const et_target *t = NULL;
        et_profile_report rep;
        et_error e = {0};
        if (et_targets_lookup(cat, profile_targets[k], &t, &e) < 0 ||
            et_profile_project(p, ET_PROFILE_MODEL, id, t, NULL, &rep, &e) < 0) {
            et_log_warn("profiling model %lld on %s: %s", (long long)id, profile_targets[k], e.msg);
            continue;
        }
        json_t *one = arr ? json_pack("{s:s}", "target", profile_targets[k]) : NULL;
        for (int q = 0; q < ET_PRECISION_COUNT; q++) {
            const et_cost *c = &rep.cost[q];
            const char *name = q == ET_PRECISION_INT8 ? "int8" : "float32";
            if (one)
                json_object_set_new(one, name,
                                    json_pack("{s:f,s:I,s:I,s:b,s:b}", "latency_ms", c->latency_ms,
                                              "ram_bytes", (json_int_t)c->ram_bytes, "rom_bytes",
                                              (json_int_t)c->flash_bytes, "fits_ram", c->fits_ram,
                                              "fits_rom", c->fits_flash));
            else
                printf("  %-18s %-8s %9.1f ms %6.1f KiB%s %6.1f KiB%s\n",
                       q == 0 ? profile_targets[k] : "", name, c->latency_ms,
                       (double)c->ram_bytes / 1024, c->fits_ram ? " " : "!",
                       (double)c->flash_bytes / 1024, c->fits_flash ? " " : "!");
        }
        if (one)
            json_array_append_new(arr, one);
        et_profile_report_free(&rep);
    }
    if (!json)
        printf("  (! = over the board's memory)\n");
    return arr;
}

int cmd_demo(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONG_OPTIONS,
        {"dir", required_argument, NULL, 'd'},
        {"source", required_argument, NULL, 's'},
        {"epochs", required_argument, NULL, 'e'},
        {"no-tune", no_argument, NULL, 'N'},
        {"tune-time", required_argument, NULL, 'B'},
        {"tune-trials", required_argument, NULL, 'n'},
        {0},
    };
    /* -C DIR names the demo project too; else ./edgetrain-demo. */
    const char *dir = strcmp(c->dir, ".") ? c->dir : "edgetrain-demo";
    const char *source = FASHION_MNIST_DIR;
    int epochs = 3, tune_trials = 0;
    double tune_time = 180;
    bool help = false, tune = true;
    int o;
    while ((o = getopt_long(argc, argv, "hd:s:", longopts, NULL)) != -1) {
        if (cli_common_option(c, o, &help))
            continue;
        et_error e = {0};
        char *end = NULL;
        if (o == 'd')
            dir = optarg;
        else if (o == 's')
            source = optarg;
        else if (o == 'e' && (epochs = atoi(optarg)) >= 1 && epochs <= 1000)
            continue;
        else if (o == 'e')
            return cli_usage_error(c, "demo", "--epochs '%s': 1..1000", optarg);
        else if (o == 'N')
            tune = false;
        else if (o == 'B' && et_parse_duration(optarg, &tune_time, &e) < 0)
            return cli_usage_error(c, "demo", "--tune-time: %s", e.msg);
        else if (o == 'B' && tune_time <= 0)
            return cli_usage_error(c, "demo", "--tune-time '%s': more than 0", optarg);
        else if (o == 'n' &&
                 ((tune_trials = (int)strtol(optarg, &end, 10)) < 1 || *end || tune_trials > 10000))
            return cli_usage_error(c, "demo", "--tune-trials '%s': 1..10000", optarg);
        else if (o != 'B' && o != 'n')
            return cli_usage_error(c, "demo", "unknown option");
    }
    if (help)
        return cli_help("demo");
    if (optind < argc)
        return cli_usage_error(c, "demo", "unexpected argument '%s'", argv[optind]);
    et_error err = {0};
    struct stat st;
    if (stat(source, &st) != 0) {
        et_error_set(&err, ET_ENOTFOUND,
                     "%s not found: install the Debian package dataset-fashion-mnist "
                     "(scripts/setup.sh does), or pass --source DIR",
                     source);
        return cli_fail(c, &err);
    }
    et_target_catalog *cat = NULL;
    const et_target *target = NULL;
    if (cli_load_targets(c, NULL, &cat, &err) < 0 ||
        et_targets_lookup(cat, DEMO_TARGET, &target, &err) < 0) {
        et_targets_destroy(cat);
        return cli_fail(c, &err);
    }
    et_status rc = et_project_init(dir, &err);
    if (rc < 0 && rc != ET_EEXIST) {
        et_targets_destroy(cat);
        return cli_fail(c, &err);
    }
    bool created = rc == ET_OK;
    et_project *p = NULL;
    if (et_project_open(dir, &p, &err) < 0) {
        et_targets_destroy(cat);
        return cli_fail(c, &err);
    }
    et_log_info("%s project %s", created ? "Created" : "Using the existing", et_project_root(p));

    et_import_options opt = et_import_defaults();
    opt.label_names = fashion_names;
    opt.n_label_names = sizeof fashion_names / sizeof fashion_names[0];
    opt.arguments = c->command_line;
    et_import_result res;
    const char *paths[] = {source};
    double t0 = et_now_s();
    rc = et_import(p, paths, 1, &opt, NULL, NULL, &res, &err);
    double seconds = et_now_s() - t0;
    et_data_report *r = NULL;
    demo_model before = {0};
    demo_tune dt = {0};
    char *imp_text = NULL;
    char svg[4200], png[4200];
    et_features_stats fs = {0};
    if (rc == ET_EPROBLEMS)
        rc = ET_OK;
    if (rc == ET_OK) {
        et_log_info("Imported %lld samples (%lld already there) from %s in %.1fs",
                    (long long)res.imported, (long long)res.duplicates, source, seconds);
        rc = et_data_report_create(p, false, &r, &err);
    }
    /* The impulse: the default for the data, stored as a version. */
    if (rc == ET_OK)
        rc = use_default_impulse(p, &before.imp, &before.impulse_version, &err);
    if (rc == ET_OK)
        rc = et_features_update(p, &before.imp, before.impulse_version, &fs, &err);
    /* The feature explorer on a stratified 2,000-sample subset (about 5 s). */
    snprintf(svg, sizeof svg, "%s/explorer.svg", et_project_root(p));
    snprintf(png, sizeof png, "%s/explorer.png", et_project_root(p));
    if (rc == ET_OK) {
        et_features *f = NULL;
        et_explore_result map = {0};
        et_explore_options eo = et_explore_defaults();
        eo.limit = 2000;
        rc = et_features_open(p, &before.imp, &f, &err);
        if (rc == ET_OK)
            rc = et_explore_run(p, f, &eo, &map, &err);
        const char **names = f ? calloc(et_features_n_labels(f) + 1, sizeof *names) : NULL;
        for (size_t i = 0; names && i < et_features_n_labels(f); i++)
            names[i] = et_features_label_name(f, i);
        if (rc == ET_OK)
            rc = et_map_write_svg(svg, map.points, map.n, names, et_features_n_labels(f),
                                  "Fashion-MNIST: t-SNE of 2,000 samples", &err);
        if (rc == ET_OK)
            rc = et_map_write_png(png, map.points, map.n, names, et_features_n_labels(f),
                                  "Fashion-MNIST: t-SNE of 2,000 samples", 1200, 900, &err);
        free(names);
        et_explore_result_free(&map);
        et_features_close(f);
    }
    /* Train a few epochs of the default conv net, then test it. */
    if (rc == ET_OK)
        rc = train_and_test(p, epochs, target, &before, &err);
    if (rc == ET_OK)
        imp_text = et_impulse_to_json(&before.imp, false);
    /* The tune, the selected trial retrained. */
    if (rc == ET_OK && tune)
        rc = tune_select_retrain(c, p, target, epochs, tune_time, tune_trials, &dt, &err);
    if (rc < 0) {
        int status = cli_fail(c, &err); /* 130 when interrupted */
        free(imp_text);
        demo_model_free(&before);
        demo_model_free(&dt.after);
        et_data_report_destroy(r);
        et_project_close(p);
        et_targets_destroy(cat);
        return status;
    }
    const et_train_result *tr = &before.tr;
    const et_eval_result *test = &before.test;
    if (c->json) {
        json_t *o2 = json_pack(
            "{s:s,s:{s:I,s:I,s:I,s:f},s:o,s:{s:I,s:o?},s:{s:I,s:I,s:f,s:s},s:{s:s,s:s}}", "project",
            et_project_root(p), "import", "imported", (json_int_t)res.imported, "duplicates",
            (json_int_t)res.duplicates, "skipped", (json_int_t)res.skipped, "seconds", seconds,
            "data", cli_report_json(r), "impulse", "version", (json_int_t)before.impulse_version,
            "json", imp_text ? json_loads(imp_text, 0, NULL) : NULL, "features", "samples",
            (json_int_t)fs.samples, "computed", (json_int_t)fs.computed, "seconds", fs.seconds,
            "path", fs.path, "explorer", "svg", svg, "png", png);
        const char *const *ln = (const char *const *)tr->labels;
        char *vj = et_metrics_to_json(&tr->validation, ln);
        char *vq = tr->has_int8 ? et_metrics_to_json(&tr->validation_int8, ln) : NULL;
        char *tj = et_metrics_to_json(&test->float32, ln);
        char *tq = test->has_int8 ? et_metrics_to_json(&test->int8, ln) : NULL;
        json_object_set_new(o2, "train",
                            json_pack("{s:I,s:i,s:i,s:f,s:{s:o?,s:o?}}", "model_id",
                                      (json_int_t)tr->model_id, "epochs_run", tr->epochs_run,
                                      "best_epoch", tr->best_epoch, "seconds", tr->seconds,
                                      "validation", "float32", vj ? json_loads(vj, 0, NULL) : NULL,
                                      "int8", vq ? json_loads(vq, 0, NULL) : NULL));
        json_object_set_new(o2, "test",
                            json_pack("{s:o?,s:o?,s:o}", "float32",
                                      tj ? json_loads(tj, 0, NULL) : NULL, "int8",
                                      tq ? json_loads(tq, 0, NULL) : NULL, "agreement",
                                      test->has_int8 ? json_real(test->agreement) : json_null()));
        free(vj);
        free(vq);
        free(tj);
        free(tq);
        json_t *tune_j = json_null();
        if (dt.ran) {
            json_t *counts = json_object();
            for (int k = 0; k < ET_TRIAL_STATUS_COUNT; k++)
                json_object_set_new(counts, et_trial_status_name((et_trial_status)k),
                                    json_integer(dt.s.counts[k]));
            tune_j = json_pack(
                "{s:I,s:s,s:f,s:o,s:o,s:o}", "run", (json_int_t)dt.s.run_id, "stop_reason",
                dt.s.stop_reason, "seconds", dt.s.seconds, "counts", counts, "best_trial",
                dt.s.best_trial ? json_integer(dt.s.best_trial) : json_null(), "comparison",
                json_pack("{s:o,s:o}", "default", model_json(&before), "selected",
                          dt.selected_version ? model_json(&dt.after) : json_null()));
        }
        json_object_set_new(o2, "tune", tune_j);
        json_object_set_new(o2, "profile", demo_profiles(p, cat, tr->model_id, true));
        cli_print_json(o2);
    } else {
        printf("edgetrain demo: Fashion-MNIST in %s\n\n", et_project_root(p));
        cli_report_print(r);
        printf("\nImpulse version %lld: %dx%d %s, %s, learning block %s\n",
               (long long)before.impulse_version, before.imp.width, before.imp.height,
               et_resize_name(before.imp.resize),
               before.imp.color == ET_COLOR_GRAYSCALE ? "grayscale" : "rgb",
               et_model_name(before.imp.model));
        printf("Features: %lld samples (%lld computed now) in %s\n", (long long)fs.samples,
               (long long)fs.computed, fs.path);
        printf("Feature explorer: %s (open in a browser, hover a dot) and %s\n", svg, png);
        printf("\nModel %lld: %d epoch%s (best %d), %.0fs. Validation accuracy (float32) "
               "%.2f%%.\n\nTest, float32:\n",
               (long long)tr->model_id, tr->epochs_run, tr->epochs_run == 1 ? "" : "s",
               tr->best_epoch, tr->seconds, 100 * tr->validation.accuracy);
        cli_print_metrics(&test->float32, (const char *const *)tr->labels);
        if (test->has_int8) {
            printf("\nTest, int8 (computed by the runtime a device runs, model %zu bytes, "
                   "arena %zu bytes):\n",
                   tr->plan_int8.size, tr->plan_int8.arena_size);
            cli_print_metrics(&test->int8, (const char *const *)tr->labels);
            printf("\n");
            cli_print_precision_summary(&test->float32, &test->int8, test->agreement);
        } else {
            printf("\nint8: %s\n", tr->quant_error);
        }
        json_decref(demo_profiles(p, cat, tr->model_id, false));
        if (dt.ran)
            print_tune(&dt, &before, epochs, dir);
        printf("\nLook around (profile: latency, RAM and flash on a device; tune: search models "
               "that fit):\n"
               "  edgetrain -C %s data list --label Sandal\n"
               "  edgetrain -C %s impulse preview 1 --out preview/\n"
               "  edgetrain -C %s model summary\n"
               "  edgetrain -C %s profile --target %s\n"
               "  edgetrain -C %s explore --embedding model\n",
               dir, dir, dir, dir, DEMO_TARGET, dir);
    }
    int status = res.skipped ? 1 : 0;
    free(imp_text);
    demo_model_free(&before);
    demo_model_free(&dt.after);
    et_data_report_destroy(r);
    et_project_close(p);
    et_targets_destroy(cat);
    return status;
}
