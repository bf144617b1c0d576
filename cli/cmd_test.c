/* edgetrain test: evaluates a model version on the testing samples. */
#include "cli.h"

#include "edgetrain/train.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_test(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONG_OPTIONS,
        {"model", required_argument, NULL, 'm'},
        {"float32", no_argument, NULL, 'f'},
        {"int8", no_argument, NULL, 'i'},
        {0},
    };
    int64_t id = 0;
    bool help = false, want_f32 = false, want_int8 = false;
    int o;
    while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (cli_common_option(c, o, &help))
            continue;
        if (o == 'm' && cli_parse_id(optarg, &id))
            continue;
        if (o == 'm')
            return cli_usage_error(c, "test", "--model '%s' is not a model id", optarg);
        if (o == 'f') {
            want_f32 = true;
            continue;
        }
        if (o == 'i') {
            want_int8 = true;
            continue;
        }
        return cli_usage_error(c, "test", "unknown option");
    }
    if (help)
        return cli_help("test");
    if (optind < argc)
        return cli_usage_error(c, "test", "unexpected argument '%s'", argv[optind]);
    if (!want_f32 && !want_int8)
        want_f32 = want_int8 = true; /* both by default */
    et_error err = {0};
    et_project *p = NULL;
    if (cli_open(c, &p, &err) < 0)
        return cli_fail(c, &err);
    et_loaded_model m;
    et_eval_result ev = {0};
    et_status rc = et_model_store_load(p, id, &m, &err);
    if (rc == ET_OK)
        rc = et_evaluate(p, &m, ET_TESTING, want_f32, want_int8, &ev, &err);
    const char *const *labels = rc == ET_OK ? (const char *const *)m.labels : NULL;
    char *jf = rc == ET_OK && ev.has_float32 ? et_metrics_to_json(&ev.float32, labels) : NULL;
    char *jq = rc == ET_OK && ev.has_int8 ? et_metrics_to_json(&ev.int8, labels) : NULL;
    if (rc == ET_OK)
        rc = et_model_store_set_test(p, m.info.id, jf, jq, &err);
    et_project_close(p);
    int status = 0;
    size_t samples = ev.has_float32 ? ev.float32.n : ev.int8.n;
    if (rc < 0) {
        status = cli_fail(c, &err);
    } else if (c->json) {
        json_t *agree = ev.has_float32 && ev.has_int8 ? json_real(ev.agreement) : json_null();
        cli_print_json(json_pack("{s:I,s:I,s:I,s:s,s:I,s:o?,s:o?,s:o}", "model",
                                 (json_int_t)m.info.id, "model_id", (json_int_t)m.info.id,
                                 "samples", (json_int_t)samples, "status", m.info.status,
                                 "unknown_labels", (json_int_t)ev.unknown, "float32",
                                 jf ? json_loads(jf, 0, NULL) : NULL, "int8",
                                 jq ? json_loads(jq, 0, NULL) : NULL, "agreement", agree));
    } else {
        if (ev.has_float32) {
            printf("Model %lld on the testing samples, float32:\n", (long long)m.info.id);
            cli_print_metrics(&ev.float32, labels);
        }
        if (ev.has_int8) {
            printf("%sModel %lld on the testing samples, int8 (the runtime's own result):\n",
                   ev.has_float32 ? "\n" : "", (long long)m.info.id);
            cli_print_metrics(&ev.int8, labels);
        } else if (want_int8) {
            printf("\nint8: model %lld has no int8 version (trained with --no-int8 or before "
                   "int8 existed).\n",
                   (long long)m.info.id);
        }
        if (ev.has_float32 && ev.has_int8) {
            printf("\n");
            cli_print_precision_summary(&ev.float32, &ev.int8, ev.agreement);
        }
        if (ev.unknown)
            printf("\n%zu testing samples have labels this model was not trained on; they were "
                   "left out (train again to include them).\n",
                   ev.unknown);
        if (!strcmp(m.info.status, "stale"))
            printf("\nNote: the impulse changed since this model was trained (it is stale).\n");
    }
    free(jf);
    free(jq);
    et_eval_result_free(&ev);
    if (rc == ET_OK || m.model)
        et_loaded_model_free(&m);
    return status;
}
