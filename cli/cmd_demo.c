/* edgetrain demo [--dir DIR] [--source DIR]
 *
 * The workflow on Fashion-MNIST from the Debian package dataset-fashion-mnist.
 * Today: create the project, import the 70,000 images with their class names,
 * print the data report, store the default impulse, generate its features,
 * map 2,000 of them with the feature explorer, train the default conv net for
 * a few epochs (--epochs, default 3) and test it. Later steps (int8, profile,
 * tuner) join here as they land. Running it again reuses the project and its
 * caches (and trains a new model version). */
#include "cli.h"

#include "edgetrain/dsp.h"
#include "edgetrain/explore.h"
#include "edgetrain/train.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

static const char *const fashion_names[] = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                            "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                            "Bag",         "Ankle boot"};

int cmd_demo(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONG_OPTIONS,
        {"dir", required_argument, NULL, 'd'},
        {"source", required_argument, NULL, 's'},
        {"epochs", required_argument, NULL, 'e'},
        {0},
    };
    /* -C DIR names the demo project too; else ./edgetrain-demo. */
    const char *dir = strcmp(c->dir, ".") ? c->dir : "edgetrain-demo";
    const char *source = FASHION_MNIST_DIR;
    int epochs = 3;
    bool help = false;
    int o;
    while ((o = getopt_long(argc, argv, "hd:s:", longopts, NULL)) != -1) {
        if (cli_common_option(c, o, &help))
            continue;
        if (o == 'd')
            dir = optarg;
        else if (o == 's')
            source = optarg;
        else if (o == 'e' && (epochs = atoi(optarg)) >= 1 && epochs <= 1000)
            continue;
        else if (o == 'e')
            return cli_usage_error(c, "demo", "--epochs '%s': 1..1000", optarg);
        else
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
    et_status rc = et_project_init(dir, &err);
    if (rc < 0 && rc != ET_EEXIST)
        return cli_fail(c, &err);
    bool created = rc == ET_OK;
    et_project *p = NULL;
    if (et_project_open(dir, &p, &err) < 0)
        return cli_fail(c, &err);
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
    if (rc < 0 && rc != ET_EPROBLEMS) {
        et_project_close(p);
        return cli_fail(c, &err);
    }
    et_log_info("Imported %lld samples (%lld already there) from %s in %.1fs",
                (long long)res.imported, (long long)res.duplicates, source, seconds);
    et_data_report *r = NULL;
    if (et_data_report_create(p, false, &r, &err) < 0) {
        et_project_close(p);
        return cli_fail(c, &err);
    }
    /* The impulse: the default for the data, stored as a version. */
    et_impulse imp;
    int64_t version = 0;
    et_features_stats fs;
    rc = et_impulse_current_stored(p, &imp, &version, "default for the data (demo)", &err);
    if (rc == ET_OK)
        rc = et_features_update(p, &imp, version, &fs, &err);
    if (rc < 0) {
        et_data_report_destroy(r);
        et_project_close(p);
        return cli_fail(c, &err);
    }
    /* The feature explorer on a stratified 2,000-sample subset (about 5 s). */
    et_features *f = NULL;
    et_explore_result map = {0};
    et_explore_options eo = et_explore_defaults();
    eo.limit = 2000;
    char svg[4200], png[4200];
    snprintf(svg, sizeof svg, "%s/explorer.svg", et_project_root(p));
    snprintf(png, sizeof png, "%s/explorer.png", et_project_root(p));
    rc = et_features_open(p, &imp, &f, &err);
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
    if (rc < 0) {
        et_data_report_destroy(r);
        et_project_close(p);
        return cli_fail(c, &err);
    }
    /* Train a few epochs of the default conv net, then test it. */
    et_train_options to = et_train_defaults();
    to.epochs = epochs;
    et_train_result tr;
    et_loaded_model lm;
    et_eval_result test = {0};
    et_log_info("Training %s for %d epoch%s (edgetrain train runs the impulse's %d)",
                et_model_name(imp.model), epochs, epochs == 1 ? "" : "s", imp.epochs);
    rc = et_train(p, &to, cli_print_epoch, NULL, &tr, &err);
    if (rc == ET_OK) {
        rc = et_model_store_load(p, tr.model_id, &lm, &err);
        if (rc == ET_OK) {
            rc = et_evaluate(p, &lm, ET_TESTING, true, true, &test, &err);
            const char *const *ln = (const char *const *)lm.labels;
            char *tj = rc == ET_OK ? et_metrics_to_json(&test.float32, ln) : NULL;
            char *tq = rc == ET_OK && test.has_int8 ? et_metrics_to_json(&test.int8, ln) : NULL;
            if (tj)
                et_model_store_set_test(p, tr.model_id, tj, tq, NULL);
            free(tj);
            free(tq);
            et_loaded_model_free(&lm);
        }
        if (rc < 0)
            et_train_result_free(&tr);
    }
    if (rc < 0) {
        et_data_report_destroy(r);
        et_project_close(p);
        return cli_fail(c, &err);
    }
    char *imp_text = et_impulse_to_json(&imp, false);
    if (c->json) {
        json_t *o2 = json_pack(
            "{s:s,s:{s:I,s:I,s:I,s:f},s:o,s:{s:I,s:o?},s:{s:I,s:I,s:f,s:s},s:{s:s,s:s}}", "project",
            et_project_root(p), "import", "imported", (json_int_t)res.imported, "duplicates",
            (json_int_t)res.duplicates, "skipped", (json_int_t)res.skipped, "seconds", seconds,
            "data", cli_report_json(r), "impulse", "version", (json_int_t)version, "json",
            imp_text ? json_loads(imp_text, 0, NULL) : NULL, "features", "samples",
            (json_int_t)fs.samples, "computed", (json_int_t)fs.computed, "seconds", fs.seconds,
            "path", fs.path, "explorer", "svg", svg, "png", png);
        const char *const *ln = (const char *const *)tr.labels;
        char *vj = et_metrics_to_json(&tr.validation, ln);
        char *vq = tr.has_int8 ? et_metrics_to_json(&tr.validation_int8, ln) : NULL;
        char *tj = et_metrics_to_json(&test.float32, ln);
        char *tq = test.has_int8 ? et_metrics_to_json(&test.int8, ln) : NULL;
        json_object_set_new(o2, "train",
                            json_pack("{s:I,s:i,s:i,s:f,s:{s:o?,s:o?}}", "model_id",
                                      (json_int_t)tr.model_id, "epochs_run", tr.epochs_run,
                                      "best_epoch", tr.best_epoch, "seconds", tr.seconds,
                                      "validation", "float32",
                                      vj ? json_loads(vj, 0, NULL) : NULL, "int8",
                                      vq ? json_loads(vq, 0, NULL) : NULL));
        json_object_set_new(o2, "test",
                            json_pack("{s:o?,s:o?,s:o}", "float32",
                                      tj ? json_loads(tj, 0, NULL) : NULL, "int8",
                                      tq ? json_loads(tq, 0, NULL) : NULL, "agreement",
                                      test.has_int8 ? json_real(test.agreement) : json_null()));
        free(vj);
        free(vq);
        free(tj);
        free(tq);
        cli_print_json(o2);
    } else {
        printf("edgetrain demo: Fashion-MNIST in %s\n\n", et_project_root(p));
        cli_report_print(r);
        printf("\nImpulse version %lld: %dx%d %s, %s, learning block %s\n", (long long)version,
               imp.width, imp.height, et_resize_name(imp.resize),
               imp.color == ET_COLOR_GRAYSCALE ? "grayscale" : "rgb", et_model_name(imp.model));
        printf("Features: %lld samples (%lld computed now) in %s\n", (long long)fs.samples,
               (long long)fs.computed, fs.path);
        printf("Feature explorer: %s (open in a browser, hover a dot) and %s\n", svg, png);
        printf("\nModel %lld: %d epoch%s (best %d), %.0fs. Validation accuracy (float32) "
               "%.2f%%.\n\nTest, float32:\n",
               (long long)tr.model_id, tr.epochs_run, tr.epochs_run == 1 ? "" : "s",
               tr.best_epoch, tr.seconds, 100 * tr.validation.accuracy);
        cli_print_metrics(&test.float32, (const char *const *)tr.labels);
        if (test.has_int8) {
            printf("\nTest, int8 (computed by the runtime a device runs, model %zu bytes, "
                   "arena %zu bytes):\n",
                   tr.plan_int8.size, tr.plan_int8.arena_size);
            cli_print_metrics(&test.int8, (const char *const *)tr.labels);
            printf("\n");
            cli_print_precision_summary(&test.float32, &test.int8, test.agreement);
        } else {
            printf("\nint8: %s\n", tr.quant_error);
        }
        printf("\nLook around (profile: latency, RAM and flash on a device; tune: search models that fit):\n"
               "  edgetrain -C %s data list --label Sandal\n"
               "  edgetrain -C %s impulse preview 1 --out preview/\n"
               "  edgetrain -C %s model summary\n"
               "  edgetrain -C %s train          (the impulse's %d epochs)\n"
               "  edgetrain -C %s explore --embedding model\n",
               dir, dir, dir, dir, imp.epochs, dir);
    }
    int status = res.skipped ? 1 : 0;
    free(imp_text);
    et_eval_result_free(&test);
    et_train_result_free(&tr);
    et_data_report_destroy(r);
    et_project_close(p);
    return status;
}
