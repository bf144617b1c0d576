/* edgetrain model summary: the layers, shapes, parameters and MACs of the
 * model that the project's current impulse builds. The classes are the
 * project's distinct labels (2 when there are none yet, said on stderr);
 * the input channels come from the processing block (for the raw block,
 * from the samples). */
#include "cli.h"

#include "edgetrain/nn.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Classes to build for when the project has no labels yet. */
#define MODEL_DEFAULT_CLASSES 2

/* Channels of the raw block's input: the most common channel count among
 * the samples (features refuse a mix), 3 without samples. */
static int raw_channels(const et_data_report *r)
{
    int best = 0;
    for (int c = 1; c <= 4; c++)
        if (r->channels[c] > 0 && (best == 0 || r->channels[c] > r->channels[best]))
            best = c;
    return best ? best : 3;
}

static int summary(cli *c, et_project *p)
{
    et_error err = {0};
    et_impulse imp;
    int64_t version = 0;
    if (et_impulse_current(p, &imp, &version, &err) < 0)
        return cli_fail(c, &err);
    et_data_report *r = NULL;
    if (et_data_report_create(p, false, &r, &err) < 0)
        return cli_fail(c, &err);
    int classes = (int)r->n_labels;
    bool assumed = classes == 0;
    if (assumed) {
        classes = MODEL_DEFAULT_CLASSES;
        et_log_info("note: the project has no labels yet; the summary assumes %d classes", classes);
    }
    int channels = et_impulse_channels(&imp);
    if (channels == 0)
        channels = raw_channels(r);
    et_data_report_destroy(r);

    et_model *m = NULL;
    if (et_model_create_from_impulse(&imp, classes, channels, &m, &err) < 0)
        return cli_fail(c, &err);
    int status = 0;
    if (c->json) {
        char *s = et_model_summary_json(m);
        json_t *o = s ? json_loads(s, 0, NULL) : NULL;
        free(s);
        if (o) {
            json_object_set_new(o, "impulse_version", json_integer((json_int_t)version));
            json_object_set_new(o, "classes_assumed", json_boolean(assumed));
        }
        cli_print_json(o);
        status = o ? 0 : 1;
    } else {
        char *s = et_model_summary_text(m);
        if (version)
            printf("Impulse version %lld\n", (long long)version);
        else
            printf("Impulse: the default for this project's data (not stored yet)\n");
        if (s)
            fputs(s, stdout);
        else
            fputs("edgetrain: out of memory\n", stderr);
        status = s ? 0 : 1;
        free(s);
    }
    et_model_destroy(m);
    return status;
}

int cmd_model(cli *c, int argc, char **argv)
{
    int status = cli_parse_plain(c, "model", argc, argv);
    if (status >= 0)
        return status;
    const char *sub = optind < argc ? argv[optind] : "summary";
    if (strcmp(sub, "summary"))
        return cli_usage_error(c, "model", "unknown sub-command '%s' (model summary)", sub);
    if (optind + 1 < argc)
        return cli_usage_error(c, "model", "unexpected argument '%s'", argv[optind + 1]);
    et_error err = {0};
    et_project *p = NULL;
    if (cli_open(c, &p, &err) < 0)
        return cli_fail(c, &err);
    status = summary(c, p);
    et_project_close(p);
    return status;
}
