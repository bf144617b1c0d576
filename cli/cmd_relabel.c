/* edgetrain relabel ID LABEL */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

int cmd_relabel(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONG_OPTIONS, {0}};
    bool help = false;
    int o;
    while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1)
        if (!cli_common_option(c, o, &help))
            return cli_usage_error(c, "relabel", "unknown option");
    if (help)
        return cli_help("relabel");
    int64_t id = 0;
    if (argc - optind != 2)
        return cli_usage_error(c, "relabel", "relabel takes a sample id and a label");
    if (!cli_parse_id(argv[optind], &id))
        return cli_usage_error(c, "relabel", "'%s' is not a sample id", argv[optind]);
    const char *label = argv[optind + 1];
    et_error err = {0};
    et_project *p = NULL;
    if (cli_open(c, &p, &err) < 0)
        return cli_fail(c, &err);
    et_sample before;
    et_status rc = et_sample_get(p, id, &before, &err);
    if (rc == ET_OK)
        rc = et_sample_relabel(p, id, label, &err);
    et_project_close(p);
    if (rc < 0)
        return cli_fail(c, &err);
    if (c->json)
        cli_print_json(json_pack("{s:I,s:s,s:s}", "id", (json_int_t)id, "label", label,
                                 "previous_label", before.label));
    else
        printf("Sample %lld: '%s' -> '%s'\n", (long long)id, before.label, label);
    return 0;
}
