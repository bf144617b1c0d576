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
    bool help = false;
    int o;
    while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (cli_common_option(c, o, &help))
            continue;
        if (o == 'm' && cli_parse_id(optarg, &id))
            continue;
        if (o == 'm')
            return cli_usage_error(c, "test", "--model '%s' is not a model id", optarg);
        if (o == 'f')
            continue;
        if (o == 'i')
            return cli_usage_error(c, "test", "--int8: int8 models are not available yet "
                                              "(quantization is the next milestone)");
        return cli_usage_error(c, "test", "unknown option");
    }
    if (help)
        return cli_help("test");
    if (optind < argc)
        return cli_usage_error(c, "test", "unexpected argument '%s'", argv[optind]);
    et_error err = {0};
    et_project *p = NULL;
    if (cli_open(c, &p, &err) < 0)
        return cli_fail(c, &err);
    et_loaded_model m;
    et_metrics met = {0};
    size_t unknown = 0;
    et_status rc = et_model_store_load(p, id, &m, &err);
    if (rc == ET_OK)
        rc = et_evaluate(p, &m, ET_TESTING, &met, &unknown, &err);
    char *json = rc == ET_OK ? et_metrics_to_json(&met, (const char *const *)m.labels) : NULL;
    if (rc == ET_OK)
        rc = et_model_store_set_test(p, m.info.id, json, &err);
    et_project_close(p);
    int status = 0;
    if (rc < 0) {
        status = cli_fail(c, &err);
    } else if (c->json) {
        cli_print_json(json_pack("{s:I,s:I,s:I,s:s,s:I,s:o?,s:n}", "model", (json_int_t)m.info.id,
                                 "model_id", (json_int_t)m.info.id, "samples", (json_int_t)met.n,
                                 "status", m.info.status, "unknown_labels", (json_int_t)unknown,
                                 "float32", json ? json_loads(json, 0, NULL) : NULL, "int8"));
    } else {
        printf("Model %lld on the testing samples, float32:\n", (long long)m.info.id);
        cli_print_metrics(&met, (const char *const *)m.labels);
        if (unknown)
            printf("\n%zu testing samples have labels this model was not trained on; they were "
                   "left out (train again to include them).\n",
                   unknown);
        if (!strcmp(m.info.status, "stale"))
            printf("\nNote: the impulse changed since this model was trained (it is stale).\n");
        printf("\nint8: not available yet (quantization is the next milestone).\n");
    }
    free(json);
    et_metrics_free(&met);
    if (rc == ET_OK || m.model)
        et_loaded_model_free(&m);
    return status;
}
