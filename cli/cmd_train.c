/* edgetrain train: trains the impulse's model and stores it as a model version. */
#include "cli.h"

#include "edgetrain/estimate.h"
#include "edgetrain/train.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_print_epoch(void *ctx, const et_epoch_stats *s)
{
    (void)ctx;
    if (et_log_get_level() > ET_LOG_INFO)
        return;
    fprintf(
        stderr,
        "epoch %3d/%d  loss %.4f  acc %5.1f%%  val_loss %.4f  val_acc %5.1f%%  %7.0f samples/s  "
        "%5.1fs%s\n",
        s->epoch, s->epochs, s->loss, 100 * s->accuracy, s->val_loss, 100 * s->val_accuracy,
        s->samples_per_s, s->seconds, s->best ? "  *" : "");
}

/* The confusion matrix and per-class figures as text. */
void cli_print_metrics(const et_metrics *m, const char *const *labels)
{
    printf("  accuracy %.2f%%  loss %.4f  macro F1 %.3f  (%zu samples)\n", 100 * m->accuracy,
           m->loss, m->macro_f1, m->n);
    printf("\n  %-16s", "true \\ predicted");
    for (size_t k = 0; k < m->classes; k++)
        printf(" %6.6s", labels[k]);
    printf("   precision recall   F1\n");
    for (size_t k = 0; k < m->classes; k++) {
        printf("  %-16.16s", labels[k]);
        for (size_t j = 0; j < m->classes; j++)
            printf(" %6lld", (long long)m->confusion[k * m->classes + j]);
        printf("   %9.3f %6.3f %5.3f\n", m->precision[k], m->recall[k], m->f1[k]);
    }
}

/* One line comparing float32 and int8 accuracy on the same samples. */
void cli_print_precision_summary(const et_metrics *f32, const et_metrics *q8, double agreement)
{
    printf("  float32 %.2f%%   int8 %.2f%%   (%+.2f points)   predictions agree on %.2f%%\n",
           100 * f32->accuracy, 100 * q8->accuracy, 100 * (q8->accuracy - f32->accuracy),
           100 * agreement);
}

int cmd_train(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONG_OPTIONS,
        {"epochs", required_argument, NULL, 'e'},
        {"batch-size", required_argument, NULL, 'b'},
        {"learning-rate", required_argument, NULL, 'r'},
        {"early-stopping", required_argument, NULL, 's'},
        {"optimizer", required_argument, NULL, 'o'},
        {"schedule", required_argument, NULL, 'S'},
        {"label-smoothing", required_argument, NULL, 'l'},
        {"model", required_argument, NULL, 'm'},
        {"alpha", required_argument, NULL, 'a'},
        {"no-int8", no_argument, NULL, 'N'},
        {"calibration", required_argument, NULL, 'C'},
        {"int8-max-drop", required_argument, NULL, 'D'},
        {"qat", no_argument, NULL, 'Q'},
        {"time-limit", required_argument, NULL, 'T'},
        {"max-time", required_argument, NULL, 'T'}, /* the earlier name */
        {"estimate", no_argument, NULL, 'X'},
        {"qat-epochs", required_argument, NULL, 'E'},
        {0},
    };
    et_train_options opt = et_train_defaults();
    const char *model = NULL, *alpha = NULL;
    bool help = false, limit_given = false;
    int o;
    while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (cli_common_option(c, o, &help))
            continue;
        char *end = NULL;
        switch (o) {
        case 'e':
            opt.epochs = (int)strtol(optarg, &end, 10);
            if (*end || opt.epochs < 1 || opt.epochs > 1000)
                return cli_usage_error(c, "train", "--epochs '%s': 1..1000", optarg);
            break;
        case 'b':
            opt.batch_size = (int)strtol(optarg, &end, 10);
            if (*end || opt.batch_size < 1 || opt.batch_size > 1024)
                return cli_usage_error(c, "train", "--batch-size '%s': 1..1024", optarg);
            break;
        case 'r':
            opt.learning_rate = strtod(optarg, &end);
            if (*end || !(opt.learning_rate > 0 && opt.learning_rate <= 1))
                return cli_usage_error(c, "train", "--learning-rate '%s': (0, 1]", optarg);
            break;
        case 's':
            opt.early_stopping = (int)strtol(optarg, &end, 10);
            if (*end || opt.early_stopping < 0)
                return cli_usage_error(c, "train", "--early-stopping '%s': epochs (0 = off)",
                                       optarg);
            break;
        case 'o':
            if (!strcmp(optarg, "adam"))
                opt.optimizer = ET_OPT_ADAM;
            else if (!strcmp(optarg, "sgd"))
                opt.optimizer = ET_OPT_SGD;
            else
                return cli_usage_error(c, "train", "--optimizer '%s': adam or sgd", optarg);
            break;
        case 'S':
            if (strcmp(optarg, "constant") && strcmp(optarg, "cosine"))
                return cli_usage_error(c, "train", "--schedule '%s': constant or cosine", optarg);
            opt.schedule = !strcmp(optarg, "cosine") ? ET_SCHEDULE_COSINE : ET_SCHEDULE_CONSTANT;
            break;
        case 'l':
            opt.label_smoothing = strtod(optarg, &end);
            if (*end || !(opt.label_smoothing >= 0 && opt.label_smoothing <= 0.5))
                return cli_usage_error(c, "train", "--label-smoothing '%s': 0..0.5", optarg);
            break;
        case 'm': model = optarg; break;
        case 'a': alpha = optarg; break;
        case 'N': opt.skip_int8 = true; break;
        case 'C':
            if (!strcmp(optarg, "minmax"))
                opt.quant.calibration = ET_CALIBRATION_MINMAX;
            else if (!strcmp(optarg, "mse"))
                opt.quant.calibration = ET_CALIBRATION_MSE;
            else
                return cli_usage_error(c, "train", "--calibration '%s': minmax or mse", optarg);
            opt.quant_auto = false; /* the user chose */
            break;
        case 'Q': opt.qat = true; break;
        case 'X': opt.estimate_only = true; break;
        case 'T': {
            et_error e = {0};
            limit_given = true;
            if (strcmp(optarg, "none") && et_parse_duration(optarg, &opt.max_seconds, &e) < 0)
                return cli_usage_error(c, "train", "--time-limit: %s, or none", e.msg);
            break;
        }
        case 'E':
            opt.qat_epochs = (int)strtol(optarg, &end, 10);
            if (*end || opt.qat_epochs < 1 || opt.qat_epochs > 100)
                return cli_usage_error(c, "train", "--qat-epochs '%s': 1..100", optarg);
            break;
        case 'D':
            opt.int8_max_drop = strtod(optarg, &end) / 100.0;
            if (*end || !(opt.int8_max_drop >= 0 && opt.int8_max_drop <= 1))
                return cli_usage_error(c, "train", "--int8-max-drop '%s': accuracy points, 0..100",
                                       optarg);
            break;
        default: return cli_usage_error(c, "train", "unknown option");
        }
    }
    if (help)
        return cli_help("train");
    if (optind < argc)
        return cli_usage_error(c, "train", "unexpected argument '%s'", argv[optind]);
    et_error err = {0};
    et_project *p = NULL;
    if (cli_open(c, &p, &err) < 0)
        return cli_fail(c, &err);
    /* The project's compute time limit, unless --time-limit says otherwise. */
    if (!limit_given && cli_time_limit_setting(p, &opt.max_seconds, &err) < 0) {
        et_project_close(p);
        return cli_fail(c, &err);
    }
    /* --model and --alpha change the impulse's learning block (a new impulse
     * version, as 'impulse set learning.model=... learning.alpha=...' would). */
    if (model || alpha) {
        et_impulse imp;
        int64_t version = 0;
        char a1[128], a2[128];
        snprintf(a1, sizeof a1, "learning.model=%s", model ? model : "");
        snprintf(a2, sizeof a2, "learning.alpha=%s", alpha ? alpha : "");
        et_status rc = et_impulse_current_stored(p, &imp, &version, "default for the data", &err);
        if (rc == ET_OK && model)
            rc = et_impulse_set(&imp, a1, &err);
        if (rc == ET_OK && alpha)
            rc = et_impulse_set(&imp, a2, &err);
        if (rc == ET_OK)
            rc = et_impulse_validate(&imp, &err);
        char note[300];
        snprintf(note, sizeof note, "train%s%s%s%s", model ? " --model " : "", model ? model : "",
                 alpha ? " --alpha " : "", alpha ? alpha : "");
        et_impulse cur;
        int64_t cur_version = 0;
        if (rc == ET_OK)
            rc = et_impulse_current(p, &cur, &cur_version, &err);
        char *x = rc == ET_OK ? et_impulse_to_json(&imp, false) : NULL;
        char *y = rc == ET_OK ? et_impulse_to_json(&cur, false) : NULL;
        if (rc == ET_OK && (!x || !y || strcmp(x, y)))
            rc = et_impulse_save_version(p, &imp, note, &version, &err);
        free(x);
        free(y);
        if (rc < 0) {
            et_project_close(p);
            return cli_fail(c, &err);
        }
    }
    et_train_result res;
    et_status rc = et_train(p, &opt, cli_print_epoch, NULL, &res, &err);
    et_project_close(p);
    if (rc < 0)
        return cli_fail(c, &err);
    if (opt.estimate_only) {
        char total[32];
        et_format_duration(res.estimated_seconds, total, sizeof total);
        if (c->json)
            cli_print_json(json_pack(
                "{s:f,s:I,s:I,s:I}", "estimated_seconds", res.estimated_seconds, "impulse_version",
                (json_int_t)res.impulse_version, "train_samples", (json_int_t)res.n_train,
                "validation_samples", (json_int_t)res.n_validation));
        else
            printf("Estimated training time: %s (nothing was trained)\n", total);
        et_train_result_free(&res);
        return 0;
    }
    if (c->json) {
        char *val = et_metrics_to_json(&res.validation, (const char *const *)res.labels);
        char *val8 = res.has_int8
                         ? et_metrics_to_json(&res.validation_int8, (const char *const *)res.labels)
                         : NULL;
        json_t *labels = json_array();
        for (size_t i = 0; i < res.n_labels; i++)
            json_array_append_new(labels, json_string(res.labels[i]));
        json_t *quant = json_null();
        if (res.has_int8)
            quant = json_pack("{s:s,s:b,s:I,s:f,s:{s:I,s:I},s:{s:I,s:I}}", "method", res.quant_path,
                              "fallback", res.quant_fallback, "calibration_samples",
                              (json_int_t)res.calibration_samples, "agreement", res.agreement,
                              "int8_plan", "bytes", (json_int_t)res.plan_int8.size, "arena_bytes",
                              (json_int_t)res.plan_int8.arena_size, "float32_plan", "bytes",
                              (json_int_t)res.plan_float32.size, "arena_bytes",
                              (json_int_t)res.plan_float32.arena_size);
        json_t *out = json_pack(
            "{s:I,s:I,s:I,s:i,s:i,s:i,s:b,s:b,s:f,s:f,s:I,s:I,s:o,s:{s:o?,s:o?},"
            "s:o,s:s?}",
            "model", (json_int_t)res.model_id, "model_id", (json_int_t)res.model_id,
            "impulse_version", (json_int_t)res.impulse_version, "epochs", res.epochs_run,
            "epochs_run", res.epochs_run, "best_epoch", res.best_epoch, "interrupted",
            res.interrupted, "time_limit_reached", res.time_limit_reached, "seconds", res.seconds,
            "samples_per_second", res.samples_per_s,
            "train_samples", (json_int_t)res.n_train, "validation_samples",
            (json_int_t)res.n_validation, "labels", labels, "validation", "float32",
            val ? json_loads(val, 0, NULL) : NULL, "int8", val8 ? json_loads(val8, 0, NULL) : NULL,
            "quantization", quant, "int8_error", res.quant_error[0] ? res.quant_error : NULL);
        json_object_set_new(out, "estimated_seconds", json_real(res.estimated_seconds));
        json_object_set_new(out, "estimated_seconds_after_epoch1",
                            res.estimated_after_epoch1 > 0 ? json_real(res.estimated_after_epoch1)
                                                           : json_null());
        cli_print_json(out);
        free(val);
        free(val8);
    } else {
        printf("Model %lld (impulse version %lld): best epoch %d of %d%s, %.1fs, %zu training "
               "and %zu validation samples.\n\nValidation, float32:\n",
               (long long)res.model_id, (long long)res.impulse_version, res.best_epoch,
               res.epochs_run,
               res.interrupted        ? " (interrupted: the best epoch so far was kept)"
               : res.time_limit_reached ? " (stopped at the compute time limit: the best epoch "
                                          "was kept)"
                                        : "",
               res.seconds,
               res.n_train, res.n_validation);
        cli_print_metrics(&res.validation, (const char *const *)res.labels);
        if (res.has_int8) {
            printf("\nValidation, int8 (computed by the runtime that runs on the device):\n");
            cli_print_metrics(&res.validation_int8, (const char *const *)res.labels);
            printf("\n");
            cli_print_precision_summary(&res.validation, &res.validation_int8, res.agreement);
            printf("  int8 model: %s (%s), calibrated on %zu validation samples%s; %zu bytes, "
                   "arena %zu bytes\n",
                   res.quant_path,
                   !strcmp(res.quant_path, "qat")   ? "quantization-aware fine-tuning"
                   : !strcmp(res.quant_path, "mse") ? "post-training, MSE clipping"
                                                    : "post-training, min/max ranges",
                   res.calibration_samples,
                   res.quant_fallback ? "; the fallbacks ran (int8 lost too much at first)"
                   : opt.qat          ? "; fine-tuning asked for with --qat"
                                      : "",
                   res.plan_int8.size, res.plan_int8.arena_size);
        } else {
            printf("\nint8: %s\n", res.quant_error[0] ? res.quant_error : "not made (--no-int8)");
        }
        printf("\nNext: edgetrain test   (the testing samples, float32 and int8)\n");
    }
    int status = res.interrupted ? 130 : 0;
    et_train_result_free(&res);
    return status;
}
